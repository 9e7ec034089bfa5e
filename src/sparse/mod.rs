//! Sparse Hessians: sparsity detection, star colouring, compressed forward-over-reverse;
//! sparse Jacobians ([`sparse_jacobian`], module [`jacobian`]).
//!
//! For large problems whose Hessian is mostly zeros (a dense `10⁶ × 10⁶` one does not fit in
//! memory) — the Newton and interior-point solvers' case:
//!
//! 1. `f` is recorded once at `f64`, and the pattern is detected from that recording: which
//!    pairs of inputs meet in a nonlinear operation (a superset of the non-zeros on that
//!    path; `pattern.rs`).
//! 2. The pattern is star-coloured (`colouring.rs`): inputs of one colour never share a row
//!    in a way that would mix two entries, so one Hessian-vector product per colour gives
//!    every entry directly. [`ColouringKind::Acyclic`] uses fewer colours and recovers the
//!    entries by substitution (`acyclic.rs`).
//! 3. Each point replays the recording with several colours per sweep as `DualVec` tangent
//!    lanes, sweeps in parallel with rayon, and reads every entry from its product.
//!
//! [`sparse_hessian`] does it once; [`crate::Recording::sparse_hessian`] keeps the plan
//! (recording, pattern, colouring, buffers) for new points, re-recording and re-detecting
//! where a branch of `f` goes the other way. [`lagrangian_hessian`] and
//! [`crate::record_lagrangian`] give `σ∇²f + Σ λᵢ∇²gᵢ` for constrained problems.
//! The result, [`SparseHessian`], holds the lower triangle as `(row, col, value)` triplets
//! and converts to faer's sparse matrices.
//!
//! ```
//! use num_traits::Float;
//! // ARWHEAD: Σ (xᵢ² + xₙ²)² − 4xᵢ + 3, an arrowhead Hessian.
//! fn arwhead<T: Float>(x: &[T]) -> T {
//!     let n = x.len();
//!     let (three, four) = (T::from(3.0).unwrap(), T::from(4.0).unwrap());
//!     (0..n - 1).fold(T::zero(), |s, i| {
//!         s + (x[i] * x[i] + x[n - 1] * x[n - 1]).powi(2) - four * x[i] + three
//!     })
//! }
//! let x = vec![1.0; 1000];
//! let mut rec = mixad::record(|x| arwhead(x), &x);
//! let h = rec.sparse_hessian(&x);
//! assert_eq!(rec.colour_count(), 2);
//! assert_eq!(h.nnz(), 2 * 999 + 1); // diagonal and last row
//! assert_eq!(h.get(999, 0), 8.0); // ∂²/∂x₀∂xₙ = 8 x₀ xₙ
//! ```

mod acyclic;
mod colouring;
pub mod jacobian;
mod lagrangian;
mod matrix;
mod pattern;
mod plan;

pub(crate) use jacobian::JacobianPlan;
pub use jacobian::{sparse_jacobian, JacobianDirection, JacobianPattern, SparseJacobian};
pub use lagrangian::lagrangian_hessian;
pub use matrix::SparseHessian;
pub use pattern::SparsityPattern;
pub use plan::ColouringKind;
pub(crate) use plan::SparsePlan;

use crate::reverse::Var;

/// The sparse Hessian `∇²f(x)`, lower triangle, with the default options. An empty `x`
/// gives the empty `0 × 0` Hessian. For many points, record once:
/// [`crate::Recording::sparse_hessian`].
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T {
///     x.windows(2).fold(T::zero(), |s, w| s + T::from(100.0).unwrap() * (w[1] - w[0] * w[0]).powi(2))
/// }
/// let h = mixad::sparse_hessian(|x| f(x), &[1.0, 1.0, 1.0]);
/// assert_eq!(h.nnz(), 5); // tridiagonal: 3 diagonal + 2 below
/// assert_eq!(h.get(1, 0), -400.0);
/// ```
pub fn sparse_hessian<F>(f: F, x: &[f64]) -> SparseHessian
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    crate::record(f, x).sparse_hessian(x)
}
