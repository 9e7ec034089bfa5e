//! Interaction facts: which operands of a primitive its output depends on, and which pairs
//! of them its second derivatives involve.
//!
//! Each rule states these facts beside its value and partials ([`Unary::interaction`],
//! [`Binary::interaction`], [`BlockOp::output_groups`], [`CustomRule::INTERACTION`]);
//! sparsity detection ([`crate::sparse`]) reads them and restates none. A fact may
//! over-state (a pair that may interact but never does only costs a stored zero) but must
//! never under-state: a missing pair would be a silently wrong sparse Hessian.
//!
//! [`Unary::interaction`]: crate::rules::Unary::interaction
//! [`Binary::interaction`]: crate::rules::Binary::interaction
//! [`BlockOp::output_groups`]: crate::rules::BlockOp::output_groups
//! [`CustomRule::INTERACTION`]: crate::rules::CustomRule::INTERACTION

/// How a scalar primitive `f(a)` or `f(a, b)` uses its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interaction {
    /// Derivative zero everywhere (rounding, sign): the output depends on no operand.
    Constant,
    /// Linear or piecewise linear (the partials are locally constant): the output depends
    /// on every operand, no second partial is non-zero.
    Linear,
    /// Nonlinear: the output depends on every operand, and these second partials may be
    /// non-zero: `∂²f/∂a²`, `∂²f/∂a∂b`, `∂²f/∂b²`.
    Nonlinear {
        /// `∂²f/∂a²`.
        aa: bool,
        /// `∂²f/∂a∂b`.
        ab: bool,
        /// `∂²f/∂b²`.
        bb: bool,
    },
}

impl Interaction {
    /// Every second partial may be non-zero (the conservative fact).
    pub const ALL: Interaction = Interaction::Nonlinear {
        aa: true,
        ab: true,
        bb: true,
    };

    /// Nonlinear in `a` alone (a one-argument primitive, or `f(a, b)` linear in `b` with no
    /// mixed term).
    pub const NONLINEAR_A: Interaction = Interaction::Nonlinear {
        aa: true,
        ab: false,
        bb: false,
    };

    /// Whether the output depends on its operands at all (false only for `Constant`).
    pub fn depends(self) -> bool {
        self != Interaction::Constant
    }
}

/// A set of positions in a block operation's inputs or outputs (row-major entries):
/// `count` positions `start, start + step, start + 2·step, …`. A row of a row-major
/// `r × c` matrix is `step = 1`, a column `step = c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Positions {
    /// The first position.
    pub start: usize,
    /// The distance between consecutive positions (at least 1).
    pub step: usize,
    /// The number of positions.
    pub count: usize,
}

impl Positions {
    /// The empty set.
    pub const EMPTY: Positions = Positions {
        start: 0,
        step: 1,
        count: 0,
    };

    /// The contiguous positions `start..end`.
    pub const fn range(start: usize, end: usize) -> Self {
        Positions {
            start,
            step: 1,
            count: end.saturating_sub(start),
        }
    }

    /// `count` positions from `start`, `step` apart.
    pub const fn strided(start: usize, step: usize, count: usize) -> Self {
        Positions { start, step, count }
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.count == 0
    }

    /// The `t`-th position (`t < count`).
    pub fn get(self, t: usize) -> usize {
        debug_assert!(t < self.count);
        self.start + t * self.step
    }

    /// The positions in increasing order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..self.count).map(move |t| self.start + t * self.step)
    }

    /// Whether `p` is one of the positions.
    pub fn contains(self, p: usize) -> bool {
        let step = self.step.max(1);
        p >= self.start
            && (p - self.start).is_multiple_of(step)
            && (p - self.start) / step < self.count
    }
}

/// Pairs of a block's input positions whose second partial may be non-zero for an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pairs {
    /// No pair.
    None,
    /// Every pair `(p, q)` with `p` in the first set and `q` in the second. A set paired
    /// with itself means every pair within it, each position with itself included.
    All(Positions, Positions),
    /// Only the matching pairs `(first.get(t), second.get(t))` (both sets the same size):
    /// a bilinear form such as `Σ aₜ bₜ`.
    Zip(Positions, Positions),
}

impl Pairs {
    /// Whether no pair is stated.
    pub fn is_empty(self) -> bool {
        match self {
            Pairs::None => true,
            Pairs::All(p, q) => p.is_empty() || q.is_empty(),
            Pairs::Zip(p, _) => p.is_empty(),
        }
    }
}

/// Outputs of a block operation that share their facts: each of them depends on (at most)
/// the inputs in `depends`, and its second partials are zero outside `pairs` (every pair
/// lies within `depends`). A group with no dependence holds outputs with derivative zero
/// (constant entries, such as the zeros above a Cholesky factor's diagonal).
///
/// [`BlockOp::output_groups`](crate::rules::BlockOp::output_groups) partitions a block's
/// outputs into groups: every output is in exactly one, and the smallest output of a group
/// is `outputs.start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutputGroup {
    /// The outputs in the group.
    pub outputs: Positions,
    /// The inputs each output of the group may depend on (unused entries empty).
    pub depends: [Positions; 2],
    /// The input pairs whose second partial may be non-zero for an output of the group
    /// (unused entries [`Pairs::None`]).
    pub pairs: [Pairs; 2],
}

impl OutputGroup {
    /// Whether the group's outputs depend on any input.
    pub fn depends_on_any(&self) -> bool {
        self.depends.iter().any(|d| !d.is_empty())
    }

    /// Whether some second partial may be non-zero.
    pub fn is_nonlinear(&self) -> bool {
        self.pairs.iter().any(|p| !p.is_empty())
    }

    /// The input positions the group's outputs may depend on (a position may repeat if
    /// the sets overlap).
    pub fn dependence(&self) -> impl Iterator<Item = usize> + '_ {
        self.depends.iter().flat_map(|d| d.iter())
    }
}
