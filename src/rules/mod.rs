//! Rules: the one place that says what each primitive's derivative is.
//!
//! A rule takes the primal inputs of a primitive and returns its value and its local
//! partial derivatives, computed with the [`Scalar`](crate::Scalar) operations of the
//! input type. Engines ([`crate::forward`], [`crate::reverse`]) never contain derivative
//! formulas: they carry a rule's partials through the chain rule. Because the partials are
//! themselves computed in `T`'s arithmetic, evaluating a rule at `T = Dual<f64>`
//! differentiates the rule, which is why every rule is differentiable to any order.
//!
//! Linear structure (`+`, `-`, negation, scaling by a constant) is not a rule: it is the
//! vector-space structure of tangents, owned by each engine.
//!
//! [`custom`] holds rules the user supplies for code mixad cannot see into (foreign
//! functions, `f64`-only code, black-box solvers): their derivatives come from the user, at
//! `f64`, and engines apply them the same way.
//!
//! To add a primitive: add a variant to [`Unary`] or [`Binary`], write its value and
//! partials in `apply`, document its convention at non-differentiable points, and route
//! the public method to it in `src/facade.rs`. Every engine picks it up unchanged.

mod binary;
pub mod custom;
pub mod linalg;
mod unary;

pub use binary::Binary;
pub use custom::{CustomRule, GenericGradient, GenericPullback, VectorRuleBuilder};
pub use linalg::{BlockError, BlockOp};
pub use unary::Unary;
