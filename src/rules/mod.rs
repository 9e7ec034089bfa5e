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
//! To add a primitive: add a variant to [`Unary`] or [`Binary`], write its value and
//! partials in `apply`, document its convention at non-differentiable points, and route
//! the public method to it in `src/facade.rs`. Every engine picks it up unchanged.

mod binary;
mod unary;

pub use binary::Binary;
pub use unary::Unary;
