//! What a step of a recording means: how a node's value is computed from its operands
//! ([`Step`]), which operand slots it reads, the layout of a custom-rule call's chain of
//! nodes, guard operands, and the operations whose failure a recording depends on.
//!
//! The tape logs steps ([`crate::reverse::tape`]), the replay re-evaluates them
//! ([`crate::reverse::program`]) and sparsity detection reads their operands
//! ([`crate::sparse`]); each asks this module, and the rules in [`crate::rules`], rather
//! than restating a step's meaning.

use crate::chain::catch_quietly;
use crate::reverse::node::rebase;
use crate::rules::linalg::BlockOp;
use crate::rules::{Binary, CustomRule, Interaction, Unary};
use crate::Scalar;

/// How a node's value is computed from its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    Input,
    Unary(Unary),
    Binary(Binary),
    Add,
    Sub,
    Neg,
    /// Multiplication by the constant in operand slot 1.
    Scale,
    /// The first node of a custom-rule call (index into the program's calls). A call at
    /// level `k` of a rule with `n` inputs and `m` outputs is `m·nᵏ` consecutive chains of
    /// `max(n − 1, 1)` nodes, one per entry of `DᵏF`: the chain's first node has operands
    /// `x₀, x₁` (for `n = 1`, `x₀` and the sink), each later one the previous node and the
    /// next `xⱼ`.
    Custom(u32),
    /// Any other node of a custom-rule call; filled in by the call's first node.
    CustomLink,
    /// The first output node of a block operation (index into the program's blocks).
    /// Outputs are leaves; the block's inputs are listed with the block.
    Block(u32),
    /// Any other output node of a block operation.
    BlockOutput,
}

/// A block operation in a recording: the operation and its inputs (per input entry, a
/// node index or `CONST | k`).
#[derive(Clone, Debug)]
pub(crate) struct ProgramBlock {
    pub(crate) op: BlockOp,
    pub(crate) args: Vec<u32>,
    pub(crate) first_out: u32,
}

/// A custom-rule call in a recording: the rule and the derivative level it was applied at.
#[derive(Clone, Debug)]
pub(crate) struct CustomCall {
    pub(crate) rule: CustomRule,
    pub(crate) level: usize,
}

/// A guard operand: a node, or a constant.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Operand<T> {
    Node(u32),
    Const(T),
}

impl<T: Scalar> Operand<T> {
    pub(crate) fn rebase(self, start: u32) -> Self {
        match self {
            Operand::Node(i) => Operand::Node(rebase(i, start)),
            c => c,
        }
    }
}

impl Step {
    /// Which of the two operand slots the step reads.
    pub(crate) fn operands_used(self) -> [bool; 2] {
        match self {
            Step::Input | Step::Block(_) | Step::BlockOutput => [false, false],
            Step::Unary(_) | Step::Neg => [true, false],
            Step::Binary(_) | Step::Add | Step::Sub | Step::Scale => [true, true],
            Step::Custom(_) | Step::CustomLink => [true, true],
        }
    }

    /// Whether the step is plain arithmetic on its two operand slots, evaluated from its
    /// rule alone: custom-rule calls and block operations are not (their values come
    /// from the call as a whole).
    pub(crate) fn is_arithmetic(self) -> bool {
        !matches!(
            self,
            Step::Input | Step::Custom(_) | Step::CustomLink | Step::Block(_) | Step::BlockOutput
        )
    }

    /// Which of the step's operands interact, for sparsity detection: from its rule for
    /// unary, binary and custom steps; sums, differences, negation and scaling by a
    /// constant are the engines' vector-space structure rather than rules, so linear.
    /// Block outputs get their facts from the block's output groups, not from here.
    pub(crate) fn interaction(self) -> Interaction {
        match self {
            Step::Unary(u) => u.interaction(),
            Step::Binary(b) => b.interaction(),
            Step::Custom(_) | Step::CustomLink => CustomRule::INTERACTION,
            Step::Input | Step::Add | Step::Sub | Step::Neg | Step::Scale => Interaction::Linear,
            Step::Block(_) | Step::BlockOutput => Interaction::ALL,
        }
    }
}

/// An operation whose failure a recording can depend on (a function that handles the
/// failure takes another branch).
#[derive(Clone, Debug)]
pub(crate) enum Fallible {
    /// A block operation returned `Err`.
    Block(BlockOp),
    /// A custom rule panicked when asked for level `level` (its value; a derivative that
    /// panics is NaN instead, see `chain::custom_partials`).
    Custom { rule: CustomRule, level: usize },
}

impl Fallible {
    /// Whether the operation fails at the plain values `x`.
    pub(crate) fn fails(&self, x: &[f64]) -> bool {
        match self {
            Fallible::Block(op) => op.forward(x).is_err(),
            Fallible::Custom { rule, level } => {
                // Only the value level can fail (a derivative that panics is NaN).
                let mut v = vec![0.0; rule.level_len(*level)];
                catch_quietly(|| rule.level_f64(x, *level, &mut v)).is_none()
            }
        }
    }
}
