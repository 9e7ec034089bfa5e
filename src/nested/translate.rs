//! Inner forward-mode calls, translated to forward over forward under reverse mode.

use num_traits::Float;

use crate::forward::tag::fresh_tag;
use crate::forward::{Dual, DualVec};
use crate::reverse::tape::with_tape;
use crate::reverse::{TapeScalar, Var};
use crate::Scalar;

/// Tangent lanes per inner evaluation.
const LANES: usize = 8;

/// A scalar function of `x` and parameters, written once for every scalar type, so that
/// mixad can evaluate it at whatever type a translation needs.
///
/// ```
/// use num_traits::Float;
/// /// p(x; w) = w / ‖x‖: the parameters carry values captured from the outer computation.
/// struct Potential;
/// impl mixad::nested::InnerFn for Potential {
///     fn eval<T: Float>(&self, x: &[T], w: &[T]) -> T {
///         w[0] / (x[0] * x[0] + x[1] * x[1]).sqrt()
///     }
/// }
/// // d/dw of the force ∂p/∂x₀ at x = (3, 4): ∂²p/∂x₀∂w = −x₀/‖x‖³.
/// let dforce = mixad::reverse::gradient(
///     |w| mixad::nested::gradient(&Potential, &[3.0.into(), 4.0.into()], w)[0],
///     &[2.0],
/// );
/// assert!((dforce[0] - (-3.0 / 125.0)).abs() < 1e-15);
/// ```
pub trait InnerFn {
    /// `g(x; params)`.
    fn eval<T: Float>(&self, x: &[T], params: &[T]) -> T;
}

/// `∂g/∂x (x; params)` for scalar `x`; see [`gradient`].
pub fn derivative<S: Scalar, G: InnerFn + ?Sized>(g: &G, x: S, params: &[S]) -> S {
    S::inner_gradient(g, &[x], params)[0]
}

/// `∇ₓ g(x; params)`: forward mode at plain floats and duals; under reverse mode, one tape
/// node per component with partials from forward over forward (the dual arithmetic of
/// the inner call is not taped), differentiated with respect to `x` and `params`.
pub fn gradient<S: Scalar, G: InnerFn + ?Sized>(g: &G, x: &[S], params: &[S]) -> Vec<S> {
    S::inner_gradient(g, x, params)
}

/// `∇ₓ g` by forward mode at `S` itself, `LANES` directions per evaluation.
pub(crate) fn gradient_by_forward<S: Scalar, G: InnerFn + ?Sized>(
    g: &G,
    x: &[S],
    params: &[S],
) -> Vec<S> {
    let tag = fresh_tag();
    let lift = |v: S| DualVec::<S, LANES>::tagged(v, [S::zero(); LANES], tag);
    let mut xs: Vec<DualVec<S, LANES>> = x.iter().map(|&v| lift(v)).collect();
    let ps: Vec<DualVec<S, LANES>> = params.iter().map(|&v| lift(v)).collect();
    let mut grad = Vec::with_capacity(x.len());
    for start in (0..x.len()).step_by(LANES) {
        let end = (start + LANES).min(x.len());
        for (lane, xi) in xs[start..end].iter_mut().enumerate() {
            xi.tangents[lane] = S::one();
        }
        let r = g.eval(&xs, &ps);
        grad.extend_from_slice(&r.tangents[..end - start]);
        for xi in &mut xs[start..end] {
            xi.tangents = [S::zero(); LANES];
        }
    }
    grad
}

/// Reverse mode's version: `∇ₓ g` as tape nodes.
///
/// For each component `i`, the value `∂g/∂xᵢ` and its partials with respect to every
/// `z = (x, params)` are computed at `T` by forward over forward (`Dual<DualVec<T, 8>>`:
/// the inner dual seeds `xᵢ`, the lanes seed `z`), then recorded as one linear
/// combination of the operands. A recording that logs a replayable program tapes the
/// inner call instead, since a replay cannot re-run generic code.
pub(crate) fn translated_gradient<T: TapeScalar, G: InnerFn + ?Sized>(
    g: &G,
    x: &[Var<T>],
    params: &[Var<T>],
) -> Vec<Var<T>> {
    if with_tape::<T, _>(|t| t.is_logging()) {
        return gradient_by_forward(g, x, params);
    }
    let operands: Vec<Var<T>> = x.iter().chain(params).copied().collect();
    let values: Vec<T> = operands.iter().map(|v| v.primal_value()).collect();
    let nz = operands.len();
    let mut partials = vec![T::zero(); nz];
    let (inner, outer) = (fresh_tag(), fresh_tag());
    let mut inputs: Vec<Dual<DualVec<T, LANES>>> = values
        .iter()
        .map(|&v| {
            Dual::tagged(
                DualVec::tagged(v, [T::zero(); LANES], inner),
                DualVec::tagged(T::zero(), [T::zero(); LANES], inner),
                outer,
            )
        })
        .collect();
    let mut out = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        inputs[i].tangent.value = T::one();
        let mut derivative = T::zero();
        for start in (0..nz).step_by(LANES) {
            let end = (start + LANES).min(nz);
            for (lane, z) in inputs[start..end].iter_mut().enumerate() {
                z.value.tangents[lane] = T::one();
            }
            let (xs, ps) = inputs.split_at(x.len());
            let r = g.eval(xs, ps);
            derivative = r.tangent.value;
            partials[start..end].copy_from_slice(&r.tangent.tangents[..end - start]);
            for z in &mut inputs[start..end] {
                z.value.tangents = [T::zero(); LANES];
            }
        }
        inputs[i].tangent.value = T::zero();
        out.push(Var::linear_combination(derivative, &operands, &partials));
    }
    out
}
