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
//! Rules also state each primitive's *interaction facts* ([`Interaction`]): whether its
//! output depends on its operands at all, and which second partials may be non-zero.
//! Block operations state them per group of outputs ([`OutputGroup`]): the inputs those
//! outputs depend on and the input pairs that interact ([`Pairs`]). Sparsity detection
//! ([`crate::sparse`]) reads these facts and restates none; a fact may over-state, never
//! under-state.
//!
//! To add a primitive: add a variant to [`Unary`] or [`Binary`], write its value and
//! partials in `apply`, state its interaction facts in `interaction`, document its
//! convention at non-differentiable points, and route the public method to it in
//! `src/facade.rs`. Every engine, and sparsity detection, picks it up unchanged. A block
//! operation ([`BlockOp`]) states its facts in `output_group_count` and `output_group`.

mod binary;
pub mod custom;
mod interaction;
pub mod linalg;
mod lowering;
mod unary;

pub use binary::Binary;
pub use custom::{CustomRule, VectorRuleBuilder};
pub use interaction::{Interaction, OutputGroup, Pairs, Positions};
pub use linalg::{BlockError, BlockOp};
#[cfg(feature = "jit")]
pub(crate) use lowering::ValueLowering;
pub use unary::Unary;
