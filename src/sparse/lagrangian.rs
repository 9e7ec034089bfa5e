//! Hessians of Lagrangians `σ∇²f(x) + Σ λᵢ∇²gᵢ(x)`, for constrained (interior-point) solvers.
//!
//! `f` and the constraints `g` are recorded together as one function `x ↦ (f(x), g(x))`
//! ([`crate::record_lagrangian`]); the Lagrangian's Hessian is the Hessian of the outputs
//! weighted by `(σ, λ)`, seeded in the reverse sweep. The joint pattern is the union of the
//! patterns of `f` and every `gᵢ`, detected once, and new multipliers cost nothing more
//! than a new point.

use crate::reverse::Var;
use crate::sparse::SparseHessian;

/// The sparse Hessian of the Lagrangian `σ∇²f(x) + Σ λᵢ∇²gᵢ(x)` (lower triangle, the joint
/// pattern of `f` and every constraint). For many points, record once:
/// [`crate::record_lagrangian`].
///
/// ```
/// let f = |x: &[mixad::reverse::Var<f64>]| x[0] * x[0] * x[0];
/// let g = |x: &[mixad::reverse::Var<f64>]| vec![x[0] * x[1]];
/// let h = mixad::sparse::lagrangian_hessian(f, g, &[2.0, 1.0], 0.5, &[4.0]);
/// assert_eq!((h.get(0, 0), h.get(1, 0), h.get(1, 1)), (6.0, 4.0, 0.0));
/// ```
///
/// An empty `x` gives the empty `0 × 0` Hessian.
///
/// # Panics
/// If `g` returns a different number of constraints than `lambda` has.
pub fn lagrangian_hessian<F, G>(f: F, g: G, x: &[f64], sigma: f64, lambda: &[f64]) -> SparseHessian
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
    G: FnMut(&[Var<f64>]) -> Vec<Var<f64>>,
{
    crate::record_lagrangian(f, g, x, Default::default()).lagrangian_hessian(x, sigma, lambda)
}
