//! # mixad: mixed-mode automatic differentiation
//!
//! Write a function once, generic over `num_traits::Float` (or nalgebra's `RealField`), and
//! differentiate it in any mode:
//!
//! ```
//! use num_traits::Float;
//!
//! fn rosenbrock<T: Float>(x: &[T]) -> T {
//!     let (one, hundred) = (T::one(), T::from(100.0).unwrap());
//!     x.windows(2)
//!         .map(|w| hundred * (w[1] - w[0] * w[0]).powi(2) + (one - w[0]).powi(2))
//!         .fold(T::zero(), |a, b| a + b)
//! }
//!
//! let x = [1.2, 1.0, 0.8];
//! let g = mixad::forward::gradient(|x| rosenbrock(x), &x);
//! assert!((g[0] - (-400.0 * 1.2 * (1.0 - 1.44) - 2.0 * (1.0 - 1.2))).abs() < 1e-12);
//! ```
//!
//! ## Map
//! - [`Scalar`]: the trait every differentiable number implements (`f64`, `f32`, every AD
//!   number and every nesting of them).
//! - [`rules`]: what each primitive's derivative is, written once for every engine.
//! - [`forward`]: dual numbers and forward-mode APIs.
//! - [`reverse`]: the tape and reverse-mode APIs.
//! - [`nested`]: modes inside modes.
//! - [`hessian`](mod@hessian): Hessians and Hessian-vector products.
//! - [`linalg`]: matrix operations on AD numbers as single block operations.
//! - [`sparse`]: sparse Hessians (pattern detection, star colouring, compressed sweeps)
//!   and Hessians of Lagrangians.
//! - [`check`]: derivatives (mixad's or hand-written) against finite differences.
//! - `argmin` (cargo feature `argmin`): argmin's solvers on a cost written once as generic
//!   code, with mixad's gradients and Hessians.
//!
//! `docs/ARCHITECTURE.md` in the repository draws the whole map.

#![warn(missing_docs)]

#[cfg(feature = "argmin")]
pub mod argmin;
pub mod chain;
pub mod check;
#[doc(hidden)]
pub mod facade;
pub mod forward;
pub mod hessian;
mod lanes;
pub mod linalg;
pub mod nested;
pub mod reverse;
pub mod rules;
mod scalar;
pub mod sparse;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use chain::Chain;
pub use hessian::{hessian, hvp, value_gradient_hessian, value_gradient_hvp};
pub use reverse::{gradient, value_and_gradient};
pub use scalar::Scalar;
pub use sparse::sparse_hessian;
