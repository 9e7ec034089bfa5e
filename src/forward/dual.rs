//! [`Dual`]: a dual number with one tangent, the forward-mode engine for one direction.

use std::fmt;

use crate::chain::Chain;
use crate::forward::tag::{merge, Tag};
use crate::rules::{Binary, Unary};
use crate::Scalar;

/// A dual number `value + tangent·ε` (ε² = 0): carries one directional derivative.
///
/// `T` may itself be an AD number, so `Dual<Dual<f64>>` gives second derivatives and
/// `Dual<Var<f64>>` a forward sweep over a reverse tape.
///
/// ```
/// use mixad::forward::Dual;
/// use num_traits::Float;
/// let x = Dual::variable(2.0);
/// let y = x * x.sin() + 1.0;
/// assert_eq!(y.value, 2.0 * 2.0f64.sin() + 1.0);
/// assert!((y.tangent - (2.0f64.sin() + 2.0 * 2.0f64.cos())).abs() < 1e-15);
/// ```
#[derive(Clone, Copy)]
pub struct Dual<T> {
    /// The primal value.
    pub value: T,
    /// The derivative along the seeded direction.
    pub tangent: T,
    /// Which differentiation this dual belongs to (0: made by hand or constant); see
    /// `forward::tag`.
    pub(crate) tag: Tag,
}

impl<T: Scalar> Dual<T> {
    /// A dual with the given value and tangent.
    #[inline(always)]
    pub fn new(value: T, tangent: T) -> Self {
        Dual {
            value,
            tangent,
            tag: 0,
        }
    }

    /// `x + v·ε` component-wise, as the inputs of one fresh differentiation along `v`.
    pub(crate) fn seed_direction(x: &[T], v: &[T]) -> Vec<Self> {
        let tag = crate::forward::tag::fresh_tag();
        x.iter()
            .zip(v)
            .map(|(&a, &b)| Dual::tagged(a, b, tag))
            .collect()
    }

    /// A dual belonging to the differentiation tagged `tag`.
    #[inline(always)]
    pub(crate) fn tagged(value: T, tangent: T, tag: Tag) -> Self {
        Dual {
            value,
            tangent,
            tag,
        }
    }

    /// A constant: tangent 0. Use it to lift a value captured from an outer computation
    /// into a nested one (`Dual::constant(x)` where `x: Dual<f64>` gives a
    /// `Dual<Dual<f64>>` that keeps `x`'s own derivative).
    #[inline(always)]
    pub fn constant(value: T) -> Self {
        Dual::new(value, T::zero())
    }

    /// The independent variable: tangent 1.
    #[inline(always)]
    pub fn variable(value: T) -> Self {
        Dual::new(value, T::one())
    }
}

/// `d · t`, but 0 when the tangent `t` is zero even if `d` is infinite or NaN: a quantity
/// that does not move has derivative 0 whatever its local slope.
#[inline(always)]
pub(crate) fn chain_term<T: Scalar>(d: T, t: T) -> T {
    if t.is_exact_zero() {
        T::zero()
    } else {
        d * t
    }
}

impl<T: Scalar> Chain for Dual<T> {
    type Primal = T;

    #[inline(always)]
    fn constant(value: T) -> Self {
        Dual::new(value, T::zero())
    }

    fn nan_everywhere() -> Self {
        Dual::new(T::nan_everywhere(), T::nan_everywhere())
    }

    #[inline(always)]
    fn primal(&self) -> T {
        self.value
    }

    #[inline]
    fn is_constant(&self) -> bool {
        self.tangent.is_exact_zero() && self.value.is_constant()
    }

    fn inner_derivatives<G: crate::Function + ?Sized>(
        g: &G,
        x: &[Self],
        params: &[Self],
        direction: Option<&[Self]>,
    ) -> Vec<Self> {
        super::inner::derivatives_by_forward(g, x, params, direction)
    }

    #[inline(always)]
    fn all_finite(&self) -> bool {
        self.value.all_finite() && self.tangent.all_finite()
    }

    #[inline(always)]
    fn unary(self, op: Unary) -> Self {
        let (v, d) = op.apply(self.value);
        Dual::tagged(v, chain_term(d, self.tangent), self.tag)
    }

    #[inline(always)]
    fn binary(self, rhs: Self, op: Binary) -> Self {
        let tag = merge(self.tag, rhs.tag);
        let (v, da, db) = op.apply(self.value, rhs.value);
        Dual::tagged(
            v,
            chain_term(da, self.tangent) + chain_term(db, rhs.tangent),
            tag,
        )
    }

    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        let tag = merge(self.tag, rhs.tag);
        Dual::tagged(self.value + rhs.value, self.tangent + rhs.tangent, tag)
    }

    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        let tag = merge(self.tag, rhs.tag);
        Dual::tagged(self.value - rhs.value, self.tangent - rhs.tangent, tag)
    }

    #[inline(always)]
    fn neg(self) -> Self {
        Dual::tagged(-self.value, -self.tangent, self.tag)
    }

    #[inline(always)]
    fn scale(self, c: T) -> Self {
        Dual::tagged(self.value * c, self.tangent * c, self.tag)
    }

    fn combine_partials(value: T, operands: &[Self], partials: &[T]) -> Self {
        let mut tag = 0;
        let mut tangent = T::zero();
        for (x, &d) in operands.iter().zip(partials) {
            tag = merge(tag, x.tag);
            tangent += chain_term(d, x.tangent);
        }
        Dual::tagged(value, tangent, tag)
    }
}

crate::impl_scalar_traits!([T: Scalar] Dual<T>);

impl<T: Scalar> fmt::Display for Dual<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} + {}ε", self.value, self.tangent)
    }
}

impl<T: Scalar> fmt::Debug for Dual<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dual({:?}, {:?})", self.value, self.tangent)
    }
}

impl From<num_dual::Dual64> for Dual<f64> {
    fn from(d: num_dual::Dual64) -> Self {
        Dual::new(d.re, d.eps)
    }
}

impl From<Dual<f64>> for num_dual::Dual64 {
    fn from(d: Dual<f64>) -> Self {
        num_dual::Dual64::new(d.value, d.tangent)
    }
}

/// A constant (no derivative).
impl<T: Scalar> From<T> for Dual<T> {
    fn from(value: T) -> Self {
        <Self as Chain>::constant(value)
    }
}
