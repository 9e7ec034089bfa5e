//! The engine interface: how an AD number carries a rule's partials through the chain rule.
//!
//! Every AD number type (forward duals, reverse variables) implements [`Chain`] and
//! nothing else by hand; `src/facade.rs` then derives all of `num_traits::Float`,
//! nalgebra's `RealField` and the operator traits from it. An engine applies a rule from
//! [`crate::rules`] by evaluating it at its primal value and combining the returned
//! partials with its own derivative representation (tangents for forward mode, a tape
//! node for reverse mode). It never contains a derivative formula.
//!
//! **NaN convention.** A NaN value never comes with finite derivatives: every API that
//! returns a value with derivatives returns NaN derivatives (`Scalar::nan_everywhere`,
//! NaN at every level) for an output whose value is NaN. Without it, engines that skip
//! zero tangents would give `(x − x)/(y − y)` zero second derivatives in
//! forward-over-reverse Hessians while its gradient is NaN. The rule sits at the results,
//! not in every operation: an intermediate NaN that an operation drops (`max` of NaN and a
//! number) leaves the derivatives of what it drops into alone, the same in every mode.
//! `value_is_nan` is the one test.

use std::cmp::Ordering;

use crate::rules::{Binary, CustomRule, Unary};
use crate::Scalar;

/// A control-flow decision taken from a number's value.
///
/// Reverse mode's recorded functions remember these as branch guards: when a decision
/// would go the other way at a new point, the recording is redone.
#[derive(Debug)]
pub enum Decision<'a, X> {
    /// `self` was compared with `other` (any of `<`, `==`, `partial_cmp`, …).
    Compare {
        /// The other operand.
        other: &'a X,
        /// The outcome of `partial_cmp` on the primal values.
        outcome: Option<Ordering>,
    },
    /// A predicate on the value alone (`is_nan`, `is_sign_negative`, `classify`, …) or a
    /// conversion to a plain number (`to_f64`, `to_i64`, …).
    Inspect {
        /// A summary of what was observed: equal summaries mean the same decision.
        seen: u64,
        /// Recomputes `seen` for another number (used when checking a guard at a new point).
        probe: fn(&X) -> u64,
    },
    /// A decision taken from several numbers at once (`approx`'s `abs_diff_eq`,
    /// `relative_eq`, `ulps_eq`): `self` first, then `others`.
    Joint {
        /// The other numbers the decision read, in order.
        others: &'a [X],
        /// A plain parameter of the decision (a ULP count), passed back to `probe`.
        param: u64,
        /// A summary of what was observed: equal summaries mean the same decision.
        seen: u64,
        /// Recomputes `seen` from the plain `f64` values of all the numbers (`self` first)
        /// and `param`.
        probe: fn(&[f64], u64) -> u64,
    },
}

impl<X> Clone for Decision<'_, X> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<X> Copy for Decision<'_, X> {}

/// How an AD number applies rules; implemented once per engine.
pub trait Chain: Copy + Send + Sync + 'static {
    /// The number one level down (`f64` for `Dual<f64>`, `Dual<f64>` for `Dual<Dual<f64>>`).
    type Primal: Scalar;

    /// A constant: carries no derivative and is never recorded.
    fn constant(value: Self::Primal) -> Self;

    /// NaN in the value and every derivative part (see the NaN convention in the module
    /// docs). Engines whose derivative parts are numbers (duals) override it.
    #[doc(hidden)]
    fn nan_everywhere() -> Self {
        Self::constant(<Self::Primal as Scalar>::nan_everywhere())
    }

    /// The value one level down (derivative information dropped).
    ///
    /// The engine interface: unlike every other way of reading a value (comparisons,
    /// predicates, `value_f64`, `to_f64`, printing), this is **not** reported as a
    /// decision, so a recorded function that branches on it replays the recorded branch
    /// at every point. Use it in engines and rules, never to decide in a user function.
    fn primal(&self) -> Self::Primal;

    /// True when this number carries no derivative information.
    fn is_constant(&self) -> bool;

    /// True when the value and all derivative parts, at every level, are finite.
    fn all_finite(&self) -> bool;

    /// Apply a one-argument rule.
    fn unary(self, op: Unary) -> Self;

    /// Apply a two-argument rule.
    fn binary(self, rhs: Self, op: Binary) -> Self;

    /// `self + rhs` (tangent-space structure, not a rule).
    fn add(self, rhs: Self) -> Self;

    /// `self - rhs`.
    fn sub(self, rhs: Self) -> Self;

    /// `-self`.
    fn neg(self) -> Self;

    /// `self · c` for a constant `c`.
    fn scale(self, c: Self::Primal) -> Self;

    /// A number with value `value` whose local partials are `∂value/∂operands[j] =
    /// partials[j]` (the chain rule for a custom rule). Constant operands' partials are
    /// never used, even if infinite or NaN.
    fn combine_partials(value: Self::Primal, operands: &[Self], partials: &[Self::Primal]) -> Self;

    /// Applies level `k` of a custom rule (`DᵏF`, `m·nᵏ` entries into `out`) at this type:
    /// values from level `k` at the primal type, partials from level `k + 1`.
    #[doc(hidden)]
    fn custom_level(rule: &CustomRule, k: usize, x: &[Self], out: &mut [Self])
    where
        Self: Scalar,
    {
        let parts = CustomParts::new(rule, k, x);
        let n = x.len();
        for (e, o) in out.iter_mut().enumerate() {
            *o = match &parts.partials {
                None => Self::constant(parts.values[e]),
                Some(d) => Self::combine_partials(parts.values[e], x, &d[e * n..(e + 1) * n]),
            };
        }
    }

    /// A linear-algebra block operation at this type: forward engines evaluate it in
    /// their own arithmetic, or, for the operations
    /// [`BlockOp::value_and_partials`](crate::rules::BlockOp::value_and_partials) covers,
    /// apply its value and partials one level down like a scalar rule; reverse mode
    /// records one node.
    #[doc(hidden)]
    fn block(op: &crate::rules::BlockOp, x: &[Self]) -> Result<Vec<Self>, crate::rules::BlockError>
    where
        Self: Scalar,
    {
        if op.applies_by_partials() {
            let primals: Vec<Self::Primal> = x.iter().map(Chain::primal).collect();
            if let Some((value, partials)) = op.value_and_partials(&primals) {
                return Ok(vec![Self::combine_partials(value, x, &partials)]);
            }
        }
        op.forward(x).map(|saved| saved.outputs)
    }

    /// `∇ₓ g(x; params)`, or `∇ₓ g·v` given a direction, of a generic inner function at
    /// this type (see [`crate::nested`]). Forward engines evaluate it directly; reverse
    /// mode replaces the inner forward computation by tape nodes.
    #[doc(hidden)]
    fn inner_derivatives<G: crate::Function + ?Sized>(
        g: &G,
        x: &[Self],
        params: &[Self],
        direction: Option<&[Self]>,
    ) -> Vec<Self>
    where
        Self: Scalar;

    /// Told of every control-flow decision made from this number's value; reverse mode
    /// records it as a branch guard. Forward engines ignore it.
    #[inline(always)]
    fn observe(&self, decision: Decision<'_, Self>) {
        let _ = decision;
    }
}

/// Whether an operation's value is NaN, so its derivatives must be NaN too (the NaN
/// convention in the module docs). Reads the value without reporting a decision.
#[inline(always)]
pub(crate) fn value_is_nan<T: Scalar>(value: &T) -> bool {
    value.untracked_f64().is_nan()
}

/// The NaN convention for a vector-Jacobian product `ȳᵀJ` written into `out`: all NaN when
/// an output whose weight is not zero is NaN.
pub(crate) fn nan_vjp<S: Scalar>(values: &[S], weights: &[S], out: &mut [S]) {
    let nan = values
        .iter()
        .zip(weights)
        .any(|(v, w)| value_is_nan(v) && !w.is_exact_zero());
    if nan {
        out.fill(S::nan_everywhere());
    }
}

/// A custom rule's level-`k` values and level-`k + 1` partials at an engine's primal type.
pub(crate) struct CustomParts<P> {
    /// `DᵏF` at the primals (`m·nᵏ` entries).
    pub(crate) values: Buf<P>,
    /// `Dᵏ⁺¹F` at the primals, or `None` when every operand is constant (no derivative is
    /// needed, so none is asked of the rule).
    pub(crate) partials: Option<Buf<P>>,
}

impl<P: Scalar> CustomParts<P> {
    /// Evaluates the rule one level down from `x`.
    pub(crate) fn new<S: Chain<Primal = P>>(rule: &CustomRule, k: usize, x: &[S]) -> Self {
        let mut primals = Buf::zeros(x.len());
        for (p, v) in primals.iter_mut().zip(x) {
            *p = v.primal();
        }
        let mut values = Buf::zeros(rule.level_len(k));
        P::custom_level(rule, k, &primals, &mut values);
        let partials = if x.iter().all(Chain::is_constant) {
            None
        } else {
            Some(custom_partials(rule, k, &primals))
        };
        CustomParts { values, partials }
    }
}

/// Level `k + 1` of a custom rule at `primals` (the partials of level `k`). A rule whose
/// code panics here, at a point where level `k` succeeded, gives NaN partials: a
/// derivative that cannot be computed is NaN, and the panic never reaches the user's
/// function, which would otherwise take its error branch in derivative modes only (where
/// the plain value took the rule's). A rule that lacks the order panics as usual.
pub(crate) fn custom_partials<P: Scalar>(rule: &CustomRule, k: usize, primals: &[P]) -> Buf<P> {
    rule.require_order(k + 1 + P::derivative_depth(), "this derivative");
    let mut d = Buf::zeros(rule.level_len(k + 1));
    if catch_quietly(|| P::custom_level(rule, k + 1, primals, &mut d)).is_none() {
        d.fill(P::nan_everywhere());
    }
    d
}

/// Runs `f`, returning `None` if it panics: where mixad evaluates code that may panic
/// (custom rules) and treats the panic as "this operation fails here".
pub(crate) fn catch_quietly<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// Entries kept inline by [`Buf`].
const INLINE: usize = 4;

/// A scratch buffer of scalars on the stack up to [`INLINE`] entries (a small custom
/// rule's operands and partials), on the heap beyond: custom-rule calls of small rules
/// allocate nothing.
pub(crate) enum Buf<P> {
    Inline([P; INLINE], usize),
    Heap(Vec<P>),
}

impl<P: Scalar> Buf<P> {
    /// `len` zeros.
    pub(crate) fn zeros(len: usize) -> Self {
        if len <= INLINE {
            Buf::Inline([P::zero(); INLINE], len)
        } else {
            Buf::Heap(vec![P::zero(); len])
        }
    }
}

impl<P> std::ops::Deref for Buf<P> {
    type Target = [P];
    fn deref(&self) -> &[P] {
        match self {
            Buf::Inline(a, len) => &a[..*len],
            Buf::Heap(v) => v,
        }
    }
}

impl<P> std::ops::DerefMut for Buf<P> {
    fn deref_mut(&mut self) -> &mut [P] {
        match self {
            Buf::Inline(a, len) => &mut a[..*len],
            Buf::Heap(v) => v,
        }
    }
}
