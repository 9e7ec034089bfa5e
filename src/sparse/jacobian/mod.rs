//! Sparse Jacobians of `F: Rⁿ → Rᵐ` from one recording: dependency detection, bipartite
//! colouring, compressed forward or reverse sweeps.
//!
//! For the constraint Jacobians of large optimisation problems (interior-point solvers ask
//! for the structure once and the values at every iterate), and for Newton's method on
//! large sparse systems:
//!
//! 1. `F` is recorded once at `f64`, and the pattern is detected from that recording: which
//!    inputs each output depends on (`pattern.rs`), from the rules' facts about which
//!    operands each primitive depends on.
//! 2. The pattern is coloured (`bipartite.rs`): columns that share a row get different
//!    colours (for forward sweeps), or rows that share a column (for reverse sweeps);
//!    [`JacobianDirection`] says which, by default the one with fewer colours.
//! 3. Each point replays the recording once per colour group: forward in `DualVec`
//!    tangent lanes (up to 16 colours per replay), or one `f64` replay and one reverse
//!    sweep per colour; every entry is read from the sweep of its colour (`plan.rs`).
//!
//! [`sparse_jacobian`] does it once; [`crate::Recording::sparse_jacobian`] keeps the plan
//! (pattern, colouring, buffers) for new points, re-recording and re-detecting where a
//! branch of `F` goes the other way. The result, [`SparseJacobian`], gives triplets,
//! compressed rows and columns, a dense matrix and faer's sparse matrices.
//!
//! NaN convention, as in the dense Jacobian: an output whose value is NaN has NaN at every
//! stored entry of its row.
//!
//! ```
//! use num_traits::Float;
//! // Broyden tridiagonal residuals: Fᵢ = (3 − 2xᵢ)xᵢ − xᵢ₋₁ − 2xᵢ₊₁ + 1.
//! fn broyden<T: Float>(x: &[T]) -> Vec<T> {
//!     let n = x.len();
//!     let c = |v: f64| T::from(v).unwrap();
//!     (0..n)
//!         .map(|i| {
//!             let left = if i > 0 { x[i - 1] } else { T::zero() };
//!             let right = if i + 1 < n { x[i + 1] } else { T::zero() };
//!             (c(3.0) - c(2.0) * x[i]) * x[i] - left - c(2.0) * right + c(1.0)
//!         })
//!         .collect()
//! }
//! let x = vec![-1.0; 1000];
//! let mut rec = mixad::record(|x| broyden(x), &x);
//! let j = rec.sparse_jacobian(&x);
//! assert_eq!(j.nnz(), 3 * 1000 - 2);
//! assert_eq!(rec.jacobian_colour_count(), 3); // three sweeps, whatever n
//! assert_eq!((j.get(5, 4), j.get(5, 5), j.get(5, 6)), (-1.0, 7.0, -2.0));
//! ```

mod bipartite;
mod matrix;
mod pattern;
mod plan;

pub use matrix::SparseJacobian;
pub use pattern::JacobianPattern;
pub use plan::JacobianDirection;
pub(crate) use plan::JacobianPlan;

use crate::reverse::Var;

/// The sparse Jacobian `∂F/∂x` (`m × n`) with the default options. For many points,
/// record once: [`crate::Recording::sparse_jacobian`].
///
/// ```
/// use mixad::reverse::Var;
/// // Arrowhead: Fᵢ = xᵢ · xₙ₋₁ for i < n − 1.
/// let f = |x: &[Var<f64>]| {
///     let n = x.len();
///     (0..n - 1).map(|i| x[i] * x[n - 1]).collect::<Vec<_>>()
/// };
/// let j = mixad::sparse_jacobian(f, &[1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(j.nnz(), 6);
/// assert_eq!((j.get(1, 1), j.get(1, 3), j.get(1, 0)), (4.0, 2.0, 0.0));
/// ```
///
/// An empty `x` (or `F` returning no outputs) gives the empty Jacobian.
pub fn sparse_jacobian<F>(f: F, x: &[f64]) -> SparseJacobian
where
    F: FnMut(&[Var<f64>]) -> Vec<Var<f64>>,
{
    crate::record(f, x).sparse_jacobian(x)
}
