//! Inner forward-mode calls, translated to forward over forward under reverse mode.

use crate::chain::value_is_nan;
use crate::forward::tag::fresh_tag;
use crate::forward::width::{lanes_for, with_lanes};
use crate::forward::{Dual, DualVec};
use crate::reverse::tape::with_tape;
use crate::reverse::{TapeScalar, Var};
use crate::{Function, Scalar};

/// `∂g/∂x (x; params)` for scalar `x`, where `g` is evaluated on `[x, params…]`; see
/// [`gradient`].
///
/// ```
/// use mixad::Function;
/// /// g(t; p) = p·t³.
/// struct Cube;
/// impl Function for Cube {
///     fn eval<S: mixad::Scalar>(&self, z: &[S]) -> S { z[1] * z[0] * z[0] * z[0] }
/// }
/// // d/dp of ∂g/∂t at t = 2: 3t² = 12, by reverse mode over the translated inner call.
/// let d = mixad::reverse::gradient(|p| mixad::nested::derivative(&Cube, 2.0.into(), p), &[5.0]);
/// assert_eq!(d, vec![12.0]);
/// ```
pub fn derivative<S: Scalar, G: Function + ?Sized>(g: &G, x: S, params: &[S]) -> S {
    S::inner_derivatives(g, &[x], params, None)[0]
}

/// `∇ₓ g(x; params)·v`, the directional derivative (`g` evaluated on `[x, params…]`): one
/// forward sweep at plain floats and
/// duals; under reverse mode one tape node whose partials with respect to `x`, `params`
/// and `v` come from forward over forward.
///
/// # Panics
/// If `x` and `v` differ in length.
pub fn jvp<S: Scalar, G: Function + ?Sized>(g: &G, x: &[S], v: &[S], params: &[S]) -> S {
    assert_eq!(
        x.len(),
        v.len(),
        "nested::jvp: x has {} entries but the direction v has {}",
        x.len(),
        v.len()
    );
    S::inner_derivatives(g, x, params, Some(v))[0]
}

/// `∇ₓ g(x; params)`: forward mode at plain floats and duals; under reverse mode, one tape
/// node per component with partials from forward over forward (the dual arithmetic of
/// the inner call is not taped), differentiated with respect to `x` and `params`.
///
/// `g` is a [`Function`] of `x` followed by the parameters: it is evaluated on the slice
/// `[x₀, …, xₙ₋₁, params₀, …]`, and only the first `x.len()` entries are differentiated.
///
/// ```
/// use mixad::Function;
/// /// p(x; w) = w / ‖x‖: the parameters carry values captured from the outer computation.
/// struct Potential;
/// impl Function for Potential {
///     fn eval<S: mixad::Scalar>(&self, z: &[S]) -> S {
///         let (x, w) = z.split_at(2);
///         w[0] / num_traits::Float::sqrt(x[0] * x[0] + x[1] * x[1])
///     }
/// }
/// // d/dw of the force ∂p/∂x₀ at x = (3, 4): ∂²p/∂x₀∂w = −x₀/‖x‖³.
/// let dforce = mixad::reverse::gradient(
///     |w| mixad::nested::gradient(&Potential, &[3.0.into(), 4.0.into()], w)[0],
///     &[2.0f64],
/// );
/// assert!((dforce[0] - (-3.0 / 125.0)).abs() < 1e-15);
/// ```
pub fn gradient<S: Scalar, G: Function + ?Sized>(g: &G, x: &[S], params: &[S]) -> Vec<S> {
    S::inner_derivatives(g, x, params, None)
}

/// `∇ₓ g` (or `[∇ₓ g·v]` given a direction) by forward mode at `S` itself.
pub(crate) fn derivatives_by_forward<S: Scalar, G: Function + ?Sized>(
    g: &G,
    x: &[S],
    params: &[S],
    direction: Option<&[S]>,
) -> Vec<S> {
    match direction {
        None => gradient_by_forward(g, x, params),
        Some(v) => {
            let mut zs: Vec<Dual<S>> = Dual::seed_direction(x, v);
            zs.extend(params.iter().map(|&p| Dual::constant(p)));
            let r = g.eval(&zs);
            // The NaN convention (see `crate::chain`).
            vec![if value_is_nan(&r.value) {
                S::nan_everywhere()
            } else {
                r.tangent
            }]
        }
    }
}

/// `∇ₓ g` by forward mode at `S` itself, the lanes per evaluation chosen from `x.len()`.
fn gradient_by_forward<S: Scalar, G: Function + ?Sized>(g: &G, x: &[S], params: &[S]) -> Vec<S> {
    with_lanes!(lanes_for(x.len()), N => gradient_in_lanes::<N, S, G>(g, x, params))
}

/// [`gradient_by_forward`] with `LANES` directions per evaluation.
fn gradient_in_lanes<const LANES: usize, S: Scalar, G: Function + ?Sized>(
    g: &G,
    x: &[S],
    params: &[S],
) -> Vec<S> {
    let tag = fresh_tag();
    let lift = |v: S| DualVec::<S, LANES>::tagged(v, [S::zero(); LANES], tag);
    // x followed by params: only the first x.len() entries are seeded.
    let mut zs: Vec<DualVec<S, LANES>> = x.iter().chain(params).map(|&v| lift(v)).collect();
    let mut grad = Vec::with_capacity(x.len());
    for start in (0..x.len()).step_by(LANES) {
        let end = (start + LANES).min(x.len());
        for (lane, xi) in zs[start..end].iter_mut().enumerate() {
            xi.tangents[lane] = S::one();
        }
        let r = g.eval(&zs);
        if value_is_nan(&r.value) {
            // The NaN convention (see `crate::chain`).
            return vec![S::nan_everywhere(); x.len()];
        }
        grad.extend_from_slice(&r.tangents[..end - start]);
        for xi in &mut zs[start..end] {
            xi.tangents = [S::zero(); LANES];
        }
    }
    grad
}

/// Reverse mode's version: `∇ₓ g` (or `∇ₓ g·v`) as tape nodes.
///
/// For each output (each `∂g/∂xᵢ`, or the one directional derivative), its value and its
/// partials with respect to every `z = (x, params)` are computed at `T` by forward over
/// forward (`Dual<DualVec<T, N>>`, `N` chosen from `z`'s length: the dual seeds `eᵢ` or
/// `v`, the lanes seed `z`), then
/// recorded as one linear combination of the operands. For a direction, the partials with
/// respect to `v` are `∇ₓ g`, read from the same evaluations. A recording that logs a
/// replayable program tapes the inner call instead, since a replay cannot re-run generic
/// code.
pub(crate) fn translated_derivatives<T: TapeScalar, G: Function + ?Sized>(
    g: &G,
    x: &[Var<T>],
    params: &[Var<T>],
    direction: Option<&[Var<T>]>,
) -> Vec<Var<T>> {
    if with_tape::<T, _>(|t| t.is_logging()) {
        return derivatives_by_forward(g, x, params, direction);
    }
    let lanes = lanes_for(x.len() + params.len());
    with_lanes!(lanes, N => translated_in_lanes::<N, T, G>(g, x, params, direction))
}

/// [`translated_derivatives`] with `LANES` entries of `z` per evaluation.
fn translated_in_lanes<const LANES: usize, T: TapeScalar, G: Function + ?Sized>(
    g: &G,
    x: &[Var<T>],
    params: &[Var<T>],
    direction: Option<&[Var<T>]>,
) -> Vec<Var<T>> {
    let n = x.len();
    let z: Vec<Var<T>> = x.iter().chain(params).copied().collect();
    let (inner, outer) = (fresh_tag(), fresh_tag());
    let mut inputs: Vec<Dual<DualVec<T, LANES>>> = z
        .iter()
        .map(|v| {
            Dual::tagged(
                DualVec::tagged(v.primal_value(), [T::zero(); LANES], inner),
                DualVec::tagged(T::zero(), [T::zero(); LANES], inner),
                outer,
            )
        })
        .collect();
    // One output per seed of the dual part: eᵢ for a gradient, v for a directional one.
    let seeds: Vec<Vec<T>> = match direction {
        None => (0..n)
            .map(|i| {
                (0..n)
                    .map(|k| if k == i { T::one() } else { T::zero() })
                    .collect()
            })
            .collect(),
        Some(v) => vec![v.iter().map(|d| d.primal_value()).collect()],
    };
    let mut operands = z.clone();
    if let Some(v) = direction {
        operands.extend_from_slice(v);
    }
    let mut partials = vec![T::zero(); operands.len()];
    let mut out = Vec::with_capacity(seeds.len());
    for seed in &seeds {
        for (input, &s) in inputs.iter_mut().zip(seed) {
            input.tangent.value = s;
        }
        let mut value = T::zero();
        for start in (0..z.len()).step_by(LANES) {
            let end = (start + LANES).min(z.len());
            for (lane, input) in inputs[start..end].iter_mut().enumerate() {
                input.value.tangents[lane] = T::one();
            }
            let r = g.eval(&inputs);
            value = r.tangent.value;
            partials[start..end].copy_from_slice(&r.tangent.tangents[..end - start]);
            if value_is_nan(&r.value.value) {
                // The NaN convention (see `crate::chain`): NaN with NaN partials.
                value = T::nan_everywhere();
                partials.fill(T::nan_everywhere());
            }
            if direction.is_some() {
                // ∂(∇g·v)/∂vₖ = ∂g/∂xₖ, for the x lanes of this chunk.
                for k in start..end.min(n) {
                    partials[z.len() + k] = r.value.tangents[k - start];
                }
            }
            for input in &mut inputs[start..end] {
                input.value.tangents = [T::zero(); LANES];
            }
        }
        out.push(Var::linear_combination(value, &operands, &partials));
    }
    out
}
