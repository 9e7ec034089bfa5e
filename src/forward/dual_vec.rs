//! [`DualVec`]: a dual number with `N` tangents, for `N` directions in one sweep.

use std::fmt;

use crate::chain::Chain;
use crate::forward::dual::chain_term;
use crate::forward::tag::{merge, Tag};
use crate::rules::{Binary, Unary};
use crate::Scalar;

/// A dual number with `N` tangent lanes: `value + Σ tangents[k]·εₖ`.
///
/// The lanes are a plain array so the compiler vectorises the per-lane loops. Used for
/// chunked gradients and Jacobians ([`crate::forward::gradient`]) and, as the value type of
/// a reverse variable, for Hessian columns.
///
/// ```
/// use mixad::forward::DualVec;
/// let x = DualVec::<f64, 2>::variable(3.0, 0);
/// let y = DualVec::<f64, 2>::variable(4.0, 1);
/// let r = x * y;
/// assert_eq!(r.tangents, [4.0, 3.0]);
/// ```
#[derive(Clone, Copy)]
pub struct DualVec<T, const N: usize> {
    /// The primal value.
    pub value: T,
    /// The derivative along each of the `N` seeded directions.
    pub tangents: [T; N],
    /// Which differentiation this dual belongs to (0: made by hand or constant); see
    /// `forward::tag`.
    pub(crate) tag: Tag,
}

impl<T: Scalar, const N: usize> DualVec<T, N> {
    /// A dual with the given value and tangents.
    #[inline(always)]
    pub fn new(value: T, tangents: [T; N]) -> Self {
        DualVec {
            value,
            tangents,
            tag: 0,
        }
    }

    /// A dual belonging to the differentiation tagged `tag`.
    #[inline(always)]
    pub(crate) fn tagged(value: T, tangents: [T; N], tag: Tag) -> Self {
        DualVec {
            value,
            tangents,
            tag,
        }
    }

    /// A constant: all tangents 0.
    #[inline(always)]
    pub fn constant(value: T) -> Self {
        DualVec::new(value, [T::zero(); N])
    }

    /// The `lane`-th independent variable: tangent 1 in that lane, 0 elsewhere.
    ///
    /// # Panics
    /// If `lane >= N`.
    #[inline]
    pub fn variable(value: T, lane: usize) -> Self {
        assert!(
            lane < N,
            "DualVec::variable: lane {lane} out of range for {N} lanes"
        );
        let mut tangents = [T::zero(); N];
        tangents[lane] = T::one();
        DualVec::new(value, tangents)
    }

    #[inline(always)]
    fn map(self, value: T, f: impl Fn(T) -> T) -> Self {
        let mut tangents = self.tangents;
        for t in tangents.iter_mut() {
            *t = f(*t);
        }
        DualVec::tagged(value, tangents, self.tag)
    }
}

impl<T: Scalar, const N: usize> Chain for DualVec<T, N> {
    type Primal = T;

    #[inline(always)]
    fn constant(value: T) -> Self {
        DualVec::new(value, [T::zero(); N])
    }

    fn nan_everywhere() -> Self {
        DualVec::new(T::nan_everywhere(), [T::nan_everywhere(); N])
    }

    #[inline(always)]
    fn primal(&self) -> T {
        self.value
    }

    #[inline]
    fn is_constant(&self) -> bool {
        self.tangents.iter().all(|t| t.is_exact_zero()) && self.value.is_constant()
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
        self.value.all_finite() && self.tangents.iter().all(|t| t.all_finite())
    }

    #[inline(always)]
    fn unary(self, op: Unary) -> Self {
        let (v, d) = op.apply(self.value);
        if d.all_finite() {
            // A finite derivative times a zero tangent is already 0: a plain lane loop.
            self.map(v, |t| d * t)
        } else {
            self.map(v, |t| chain_term(d, t))
        }
    }

    #[inline(always)]
    fn binary(self, rhs: Self, op: Binary) -> Self {
        let tag = merge(self.tag, rhs.tag);
        let (v, da, db) = op.apply(self.value, rhs.value);
        let mut tangents = self.tangents;
        if da.all_finite() && db.all_finite() {
            for (t, r) in tangents.iter_mut().zip(rhs.tangents.iter()) {
                *t = da * *t + db * *r;
            }
        } else {
            for (t, r) in tangents.iter_mut().zip(rhs.tangents.iter()) {
                *t = chain_term(da, *t) + chain_term(db, *r);
            }
        }
        DualVec::tagged(v, tangents, tag)
    }

    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        let mut tangents = self.tangents;
        for (t, r) in tangents.iter_mut().zip(rhs.tangents.iter()) {
            *t += *r;
        }
        DualVec::tagged(self.value + rhs.value, tangents, merge(self.tag, rhs.tag))
    }

    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        let mut tangents = self.tangents;
        for (t, r) in tangents.iter_mut().zip(rhs.tangents.iter()) {
            *t -= *r;
        }
        DualVec::tagged(self.value - rhs.value, tangents, merge(self.tag, rhs.tag))
    }

    #[inline(always)]
    fn neg(self) -> Self {
        self.map(-self.value, |t| -t)
    }

    #[inline(always)]
    fn scale(self, c: T) -> Self {
        self.map(self.value * c, |t| t * c)
    }

    fn combine_partials(value: T, operands: &[Self], partials: &[T]) -> Self {
        let mut tag = 0;
        let mut tangents = [T::zero(); N];
        for (x, &d) in operands.iter().zip(partials) {
            tag = merge(tag, x.tag);
            for (t, &xt) in tangents.iter_mut().zip(x.tangents.iter()) {
                *t += chain_term(d, xt);
            }
        }
        DualVec::tagged(value, tangents, tag)
    }
}

crate::impl_scalar_traits!([T: Scalar, const N: usize] DualVec<T, N>);

impl<T: Scalar, const N: usize> fmt::Display for DualVec<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)?;
        for (k, t) in self.tangents.iter().enumerate() {
            write!(f, " + {t}ε{k}")?;
        }
        Ok(())
    }
}

impl<T: Scalar, const N: usize> fmt::Debug for DualVec<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DualVec({:?}, {:?})", self.value, self.tangents)
    }
}

/// A constant (no derivative).
impl<T: Scalar, const N: usize> From<T> for DualVec<T, N> {
    fn from(value: T) -> Self {
        <Self as Chain>::constant(value)
    }
}
