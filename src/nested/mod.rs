//! Modes inside modes.
//!
//! Every API of [`crate::forward`], [`crate::reverse`] and [`crate::hessian`](mod@crate::hessian) is generic
//! over the scalar, so nestings compose directly: `reverse::gradient` at `S = Var<f64>`
//! inside another `reverse::gradient` is reverse over reverse, `forward::derivative` at
//! `S = Var<f64>` inside `reverse::gradient` is reverse over forward, and so on. Each level
//! has its own type, so perturbations of different levels are never confused; a captured
//! outer value is lifted into the inner type (`Dual::constant(x)`, `Var::constant(x)`).
//! Forgetting to lift (an inner call started at the outer type, capturing an outer dual or
//! variable) is caught at run time and panics with a message saying so: duals made by the
//! forward APIs carry a per-call tag, reverse variables a recording id.
//!
//! This module adds the *translation* of reverse over forward into forward over forward:
//! [`derivative`], [`gradient`] and [`jvp`] take an inner function written generically (a
//! [`crate::Function`], evaluated on `x` followed by `params`) together with the outer
//! values it captures (`params`). Under reverse mode the inner forward computation is not
//! taped; it becomes one node per output whose partials (with respect to `x` *and* `params`) come from a forward-over-forward
//! evaluation. Under forward mode, or at plain floats, it is evaluated directly. Plain
//! closures keep working with the generic APIs wherever no translation is wanted.

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
