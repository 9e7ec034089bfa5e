//! The scalar trait family: what every number mixad differentiates through implements.
//!
//! [`Scalar`] is implemented by `f64`, `f32`, the forward duals of [`crate::forward`], the
//! reverse variables of [`crate::reverse`], and every nesting of them. It bundles the
//! `num_traits` traits (so code written once as `fn f<T: Float>(x: &[T]) -> T` runs on any
//! of them) with nalgebra's [`RealField`] (so nalgebra's decompositions run on AD numbers).
//!
//! Rules in [`crate::rules`] are written against this trait, which is what makes every rule
//! differentiable to any order: a rule evaluated at `Dual<f64>` differentiates itself.

use std::fmt::{Debug, Display};

use nalgebra::RealField;
use num_traits::{Float, FloatConst, FromPrimitive, NumCast, Signed};

/// A real number mixad can differentiate through: a plain float or any AD number.
///
/// Generic code should usually ask only for `num_traits::Float` (or nalgebra's
/// `RealField`); `Scalar` is the bound mixad's own APIs use. Because it has both `Float`
/// and `RealField` as supertraits, method calls that exist in both (such as `sin`) must
/// be written `Float::sin(x)` inside code bounded by `Scalar`.
pub trait Scalar:
    Float
    + FloatConst
    + FromPrimitive
    + NumCast
    + Signed
    + RealField
    + Default
    + Debug
    + Display
    + Copy
    + Send
    + Sync
    + 'static
{
    /// The constant `c` as this type (exact for `f64`, rounded for `f32`); never recorded.
    fn cst(c: f64) -> Self;

    /// The plain `f64` value at the bottom of any nesting (tangents dropped).
    ///
    /// The value leaves mixad as plain data, so inside a [`crate::record`]ed
    /// function it is a guarded decision: the recording is redone wherever the value
    /// differs (like [`crate::reverse::Var::value`]).
    fn value_f64(&self) -> f64;

    /// [`Scalar::value_f64`] without reporting a decision: mixad's own bookkeeping (guard
    /// checks, NaN propagation), never a branch of the user's function.
    #[doc(hidden)]
    fn untracked_f64(&self) -> f64;

    /// True when the value is zero and no derivative part at any level is non-zero: a
    /// structural zero, which engines may skip (a zero tangent, a zero adjoint). Not a
    /// decision: unlike `Zero::is_zero` (which looks at the value only, as on `f64`), it is
    /// never recorded as a guard.
    #[doc(hidden)]
    fn is_exact_zero(&self) -> bool;

    /// NaN in the value and in every derivative part at every level: what an operation
    /// whose value is NaN carries (see [`crate::chain`]'s NaN convention).
    #[doc(hidden)]
    fn nan_everywhere() -> Self;

    /// How many derivative levels this type carries below its value (0 for plain floats,
    /// one more per AD level): a custom rule evaluated at level `k` here needs its
    /// derivatives to order `k + derivative_depth()`.
    #[doc(hidden)]
    fn derivative_depth() -> usize;

    /// True when this number carries no derivative information at any level.
    ///
    /// Plain floats always do; a dual is constant when all its tangents are zero, a
    /// reverse variable when it is not on a tape. Engines skip the chain-rule term of a
    /// constant operand, so an infinite local derivative (such as `sqrt` at 0) times a zero
    /// tangent gives 0, not NaN.
    fn is_constant(&self) -> bool;

    /// True when the value and every derivative part at every level are finite. Engines
    /// use it to take the fast path: a finite local derivative times a zero tangent is
    /// already 0, so only a non-finite one needs zero tangents skipped.
    #[doc(hidden)]
    fn all_finite(&self) -> bool;

    /// `∇ₓ g(x; params)` (no direction) or `∇ₓ g·v` (direction `v`) for a generic inner
    /// function, as [`crate::nested`] computes it at this type: directly in forward mode,
    /// except on a reverse variable, where it becomes tape nodes whose partials come from
    /// forward over forward.
    #[doc(hidden)]
    fn inner_derivatives<G: crate::Function + ?Sized>(
        g: &G,
        x: &[Self],
        params: &[Self],
        direction: Option<&[Self]>,
    ) -> Vec<Self> {
        crate::forward::inner::derivatives_by_forward(g, x, params, direction)
    }

    /// Level `k` (`DᵏF`) of a custom rule at this type; see [`crate::rules::CustomRule`].
    #[doc(hidden)]
    fn custom_level(rule: &crate::rules::CustomRule, k: usize, x: &[Self], out: &mut [Self]);

    /// A linear-algebra block operation at this type (see [`crate::linalg`]): evaluated
    /// directly, except on a reverse variable, where it is one tape node.
    #[doc(hidden)]
    fn block(
        op: &crate::rules::BlockOp,
        x: &[Self],
    ) -> Result<Vec<Self>, crate::rules::BlockError> {
        op.forward(x).map(|saved| saved.outputs)
    }
}

impl Scalar for f64 {
    fn custom_level(rule: &crate::rules::CustomRule, k: usize, x: &[Self], out: &mut [Self]) {
        rule.level_f64(x, k, out)
    }
    #[inline(always)]
    fn cst(c: f64) -> Self {
        c
    }
    #[inline(always)]
    fn value_f64(&self) -> f64 {
        *self
    }
    #[inline(always)]
    fn untracked_f64(&self) -> f64 {
        *self
    }
    #[inline(always)]
    fn is_exact_zero(&self) -> bool {
        *self == 0.0
    }
    #[inline(always)]
    fn nan_everywhere() -> Self {
        Self::NAN
    }
    #[inline(always)]
    fn derivative_depth() -> usize {
        0
    }
    #[inline(always)]
    fn is_constant(&self) -> bool {
        true
    }
    #[inline(always)]
    fn all_finite(&self) -> bool {
        self.is_finite()
    }
}

impl Scalar for f32 {
    fn custom_level(rule: &crate::rules::CustomRule, k: usize, x: &[Self], out: &mut [Self]) {
        let wide: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let mut result = vec![0.0; out.len()];
        rule.level_f64(&wide, k, &mut result);
        for (o, r) in out.iter_mut().zip(result) {
            *o = r as f32;
        }
    }
    #[inline(always)]
    fn cst(c: f64) -> Self {
        c as f32
    }
    #[inline(always)]
    fn value_f64(&self) -> f64 {
        *self as f64
    }
    #[inline(always)]
    fn untracked_f64(&self) -> f64 {
        *self as f64
    }
    #[inline(always)]
    fn is_exact_zero(&self) -> bool {
        *self == 0.0
    }
    #[inline(always)]
    fn nan_everywhere() -> Self {
        Self::NAN
    }
    #[inline(always)]
    fn derivative_depth() -> usize {
        0
    }
    #[inline(always)]
    fn is_constant(&self) -> bool {
        true
    }
    #[inline(always)]
    fn all_finite(&self) -> bool {
        self.is_finite()
    }
}
