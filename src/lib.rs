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
//! A function that carries data implements [`Function`] once, and that one value serves
//! every operator and mode (see [Functions](#functions)):
//!
//! ```
//! use mixad::Function;
//! use num_traits::Float;
//!
//! struct Rosenbrock { a: f64 }
//! impl Function for Rosenbrock {
//!     fn eval<S: mixad::Scalar>(&self, x: &[S]) -> S {
//!         Float::powi(S::cst(self.a) - x[0], 2) + S::cst(100.0) * Float::powi(x[1] - x[0] * x[0], 2)
//!     }
//! }
//! let f = Rosenbrock { a: 1.0 };
//! let x = [1.0, 1.0];
//! assert_eq!(mixad::gradient(f.closure(), &x), vec![0.0, 0.0]);
//! assert_eq!(mixad::hvp(f.closure(), &x, &[1.0, 0.0]), vec![802.0, -400.0]);
//! assert_eq!(mixad::record(f.closure(), &x).hessian(&x)[(1, 1)], 200.0);
//! ```
//!
//! ## Operators
//!
//! One vocabulary across the crate. Every operator exists as a one-shot function (the
//! quick path: records, evaluates once, drops the recording) and as a method of a
//! [`Recording`] (record once with [`record`], then evaluate at many points: guards
//! re-record where a branch flips, every buffer is reused). `f: Rⁿ → R` returns a
//! `Var<f64>`, `F: Rⁿ → Rᵐ` a `Vec<Var<f64>>`: a closure, or `f.closure()` of a
//! [`Function`] (`F.closure()` of a [`VectorFunction`]).
//!
//! | Operator | One-shot | On a [`Recording`] | Returns |
//! |---|---|---|---|
//! | value | — | `value(x)` / `values(x)` | `f64` / `Vec<f64>` |
//! | gradient | [`gradient`]`(f, x)` | `gradient(x)` | `Vec<f64>` |
//! | value and gradient | [`value_and_gradient`] | `value_and_gradient(x)` | `(f64, Vec<f64>)` |
//! | Hessian-vector product | [`hvp`]`(f, x, v)` | `hvp(x, v)` | `Vec<f64>` |
//! | … with value and gradient | [`value_gradient_hvp`] | `value_gradient_hvp(x, v)` | `(f64, Vec<f64>, Vec<f64>)` |
//! | dense Hessian | [`hessian`](fn@hessian)`(f, x)` | `hessian(x)` | [`faer::Mat<f64>`] |
//! | … with value and gradient | [`value_gradient_hessian`] | `value_gradient_hessian(x)` | `(f64, Vec<f64>, Mat<f64>)` |
//! | sparse Hessian | [`sparse_hessian`]`(f, x)` | `sparse_hessian(x)` | [`SparseHessian`] |
//! | … with value and gradient | — | `value_gradient_sparse_hessian(x)` | `(f64, Vec<f64>, SparseHessian)` |
//! | Jacobian | [`jacobian`]`(F, x)` | `jacobian(x)` | `Mat<f64>` (`m × n`) |
//! | … with values | — | `values_and_jacobian(x)` | `(Vec<f64>, Mat<f64>)` |
//! | sparse Jacobian | [`sparse_jacobian`]`(F, x)` | `sparse_jacobian(x)` | [`SparseJacobian`] (`m × n`) |
//! | … with values | — | `values_and_sparse_jacobian(x)` | `(Vec<f64>, SparseJacobian)` |
//! | vector-Jacobian product | [`reverse::vjp`] | `vjp(x, w)` | `Vec<f64>` (one-shot: `(F(x), wᵀJ)`) |
//! | Lagrangian Hessian | [`sparse::lagrangian_hessian`] | `lagrangian_hessian(x, σ, λ)` ([`record_lagrangian`]) | `SparseHessian` |
//! | derivative, JVP (forward) | [`forward::derivative`], [`forward::jvp`] | — | `S`, `Vec<S>` |
//! | gradient, Jacobian (forward) | [`forward::gradient_of`]`(&f, x)`, [`forward::jacobian_of`]`(&F, x)`: lanes chosen from `n` | — | `Vec<S>`, `Mat<f64>` |
//!
//! Conventions, the same everywhere:
//! - **Names**: `value_and_gradient`, `value_gradient_hvp`, `value_gradient_hessian`: what
//!   comes back, in that order.
//! - **`_into`**: every method above has an `_into` form (`value_and_gradient_into`,
//!   `value_gradient_hvp_into`, `value_gradient_hessian_into`,
//!   `value_gradient_sparse_hessian_into`, `values_into`, `values_and_jacobian_into`,
//!   `values_and_sparse_jacobian_into`, `lagrangian_hessian_into`) that fills caller buffers of the right length (slices for
//!   vectors, a [`faer::MatMut`] for matrices, a [`SparseHessian`] for sparse ones) and
//!   returns the value. A buffer of the wrong size panics at once, naming it.
//! - **Matrices**: [`faer`] in and out, re-exported as [`mixad::faer`](faer) so your faer
//!   is mixad's. Dense Hessians and Jacobians are `faer::Mat<f64>`; sparse Hessians are
//!   lower-triangle triplets that convert to faer's sparse matrices; sparse Jacobians are
//!   compressed rows that give triplets, compressed columns and faer's sparse matrices.
//! - **Options** ([`Options`], set once at [`record_with`]): `lanes` (tangent lanes per
//!   Hessian sweep: 1, 2, 4, 8 or 16, or `None` to choose from the problem),
//!   `parallelism` ([`Parallelism`]; the pool policy lives in one module) and `colouring`
//!   ([`ColouringKind`]), `compile` ([`Compile`]: when gradient replays become machine
//!   code).
//! - **Introspection**, on every [`Recording`]: `input_count`, `output_count`, `len`,
//!   `guard_count`, `rerecord_count`, `detection_count`, `loop_coverage`, `replay_mode`
//!   (compiled or interpreted, and why), `sparsity_pattern`,
//!   `colour_count`, `options`; for vector functions also `jacobian_pattern`,
//!   `jacobian_colour_count`, `jacobian_direction` (set by `set_jacobian_direction`).
//! - **Generic**: the one-shot forward and reverse functions are generic over the scalar,
//!   so they nest; recordings and Hessians are at `f64` (their sweeps use duals inside).
//!
//! ## Functions
//!
//! Every operator above takes `f` as a closure at the one scalar type it differentiates
//! at (`hvp` at `Var<Dual<f64>>`, `gradient` at `Var<f64>`, …), so a closure serves one
//! operator. A function written once for every scalar type implements [`Function`]
//! (`fn eval<S: Scalar>(&self, x: &[S]) -> S`) or [`VectorFunction`] (`-> Vec<S>`), and
//! the same value then goes everywhere:
//!
//! | Where | How |
//! |---|---|
//! | every operator of the table, [`forward`], [`reverse`], [`check`] | `f.closure()`: `gradient(f.closure(), x)`, `hvp(f.closure(), x, v)`, `jacobian(F.closure(), x)` |
//! | [`record`] / [`record_with`] | `record(f.closure(), x)` |
//! | [`nested`] | `nested::gradient(&f, x, params)` (`f` sees `x` followed by `params`) |
//! | `argmin` (feature) | `argmin::AutoDiff::new(f)` |
//! | [`rules::CustomRule::generic`] | the gradient `x ↦ ∇g(x)` as a [`VectorFunction`] |
//! | [`rules::VectorRuleBuilder::generic_pullback`] | the pullback `(x, ȳ) ↦ J(x)ᵀȳ` as a [`VectorFunction`] |
//!
//! `x.max(y)` on an AD number with both `num_traits::Float` and nalgebra's `RealField` in
//! scope is ambiguous (error E0034: both traits have `max`): write `Float::max(x, y)` (or
//! `RealField::max`), as you would for `f64` with both in scope.
//!
//! ```compile_fail,E0034
//! use nalgebra::RealField;
//! use num_traits::Float;
//!
//! fn larger<T: Float + RealField>(x: T, y: T) -> T {
//!     x.max(y) // E0034: `Float::max` or `RealField::max`?
//! }
//! ```
//!
//! Naming the trait, or importing only one of the two, compiles:
//!
//! ```
//! use nalgebra::RealField;
//! use num_traits::Float;
//!
//! fn larger<T: Float + RealField>(x: T, y: T) -> T {
//!     Float::max(x, y)
//! }
//! assert_eq!(mixad::gradient(|v| larger(v[0], v[1]), &[1.0, 2.0]), vec![0.0, 1.0]);
//! ```
//!
//! ## Map
//! - [`Scalar`]: the trait every differentiable number implements (`f64`, `f32`, every AD
//!   number and every nesting of them).
//! - [`Function`], [`VectorFunction`] ([`function`](mod@function)): a function written
//!   once for every scalar type, which every operator and mode accepts.
//! - [`rules`]: what each primitive's derivative is, written once for every engine.
//! - [`forward`]: dual numbers and forward-mode APIs.
//! - [`reverse`]: the tape and reverse-mode APIs.
//! - [`nested`]: modes inside modes.
//! - [`Recording`] ([`record`]): one recording, every operator.
//! - [`hessian`](mod@hessian): Hessians and Hessian-vector products.
//! - [`Parallelism`]: how sweeps use threads.
//! - [`linalg`]: matrix operations on AD numbers as single block operations.
//! - [`sparse`]: sparse Hessians (pattern detection, star colouring, compressed sweeps),
//!   Hessians of Lagrangians, and sparse Jacobians ([`sparse::jacobian`]: dependency
//!   detection, bipartite colouring, compressed forward or reverse sweeps).
//! - [`check`]: derivatives (mixad's or hand-written) against finite differences.
//! - `argmin` (cargo feature `argmin`): argmin's solvers on a cost written once as a
//!   [`Function`], with mixad's gradients and Hessians.
//!
//! `docs/ARCHITECTURE.md` in the repository draws the whole map.

#![warn(missing_docs)]

#[cfg(feature = "argmin")]
pub mod argmin;
pub mod chain;
pub mod check;
mod compiled;
#[doc(hidden)]
pub mod facade;
pub mod forward;
pub mod function;
pub mod hessian;
mod lanes;
pub mod linalg;
pub mod nested;
mod parallel;
mod recording;
pub mod reverse;
pub mod rules;
mod scalar;
pub mod sparse;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// faer, the dense and sparse matrices mixad takes and returns: use `mixad::faer` so your
/// faer is mixad's version.
pub use faer;

pub use chain::Chain;
pub use compiled::{Compile, Interpreted, ReplayMode, COMPILE_AFTER};
pub use function::{Function, VectorFunction};
pub use hessian::{hessian, hvp, value_gradient_hessian, value_gradient_hvp};
pub use parallel::{Parallelism, PARALLEL_WORK};
pub use recording::{
    record, record_lagrangian, record_with, JointFunction, Lagrangian, Options, Recording,
};
pub use reverse::{gradient, jacobian, value_and_gradient};
pub use scalar::Scalar;
pub use sparse::{sparse_hessian, sparse_jacobian, ColouringKind, SparseHessian, SparseJacobian};
