//! Rules for one-argument primitives: value and first derivative.

use num_traits::Float;

use super::Interaction;
use crate::Scalar;

/// A one-argument primitive. [`Unary::apply`] gives its value and derivative.
///
/// Conventions at points where the derivative does not exist (each is tested):
/// - `Abs` at 0: derivative 0 (the least-norm subgradient).
/// - `Sqrt` and `Cbrt` at 0: derivative `+inf` (the one-sided limit); an engine multiplies
///   it only by a non-zero tangent, so a constant input never turns into NaN.
/// - `Floor`, `Ceil`, `Round`, `Trunc`, `Signum`: derivative 0 everywhere, including at
///   their jumps. `Fract`: derivative 1 everywhere.
/// - Outside a function's real domain (`Ln` of a negative, `Asin` beyond ±1) value and
///   derivative are NaN, as the plain float would be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    /// `1/x`.
    Recip,
    /// `√x`.
    Sqrt,
    /// `∛x`.
    Cbrt,
    /// `eˣ`.
    Exp,
    /// `2ˣ`.
    Exp2,
    /// `eˣ − 1`.
    ExpM1,
    /// Natural logarithm.
    Ln,
    /// Base-2 logarithm.
    Log2,
    /// Base-10 logarithm.
    Log10,
    /// `ln(1 + x)`.
    Ln1p,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Arcsine.
    Asin,
    /// Arccosine.
    Acos,
    /// Arctangent.
    Atan,
    /// Hyperbolic sine.
    Sinh,
    /// Hyperbolic cosine.
    Cosh,
    /// Hyperbolic tangent.
    Tanh,
    /// Inverse hyperbolic sine.
    Asinh,
    /// Inverse hyperbolic cosine.
    Acosh,
    /// Inverse hyperbolic tangent.
    Atanh,
    /// Absolute value.
    Abs,
    /// Sign (`Float::signum`: ±1, NaN for NaN).
    Signum,
    /// Round down.
    Floor,
    /// Round up.
    Ceil,
    /// Round half away from zero.
    Round,
    /// Round toward zero.
    Trunc,
    /// `x − trunc(x)`.
    Fract,
    /// Radians to degrees.
    ToDegrees,
    /// Degrees to radians.
    ToRadians,
    /// Integer power `xⁿ`.
    Powi(i32),
}

impl Unary {
    /// Every primitive once (`powi` as `Powi(3)`): for tests and tools that must cover
    /// them all (a unit test keeps it complete).
    #[doc(hidden)]
    pub const ALL: [Unary; 32] = [
        Unary::Recip,
        Unary::Sqrt,
        Unary::Cbrt,
        Unary::Exp,
        Unary::Exp2,
        Unary::ExpM1,
        Unary::Ln,
        Unary::Log2,
        Unary::Log10,
        Unary::Ln1p,
        Unary::Sin,
        Unary::Cos,
        Unary::Tan,
        Unary::Asin,
        Unary::Acos,
        Unary::Atan,
        Unary::Sinh,
        Unary::Cosh,
        Unary::Tanh,
        Unary::Asinh,
        Unary::Acosh,
        Unary::Atanh,
        Unary::Abs,
        Unary::Signum,
        Unary::Floor,
        Unary::Ceil,
        Unary::Round,
        Unary::Trunc,
        Unary::Fract,
        Unary::ToDegrees,
        Unary::ToRadians,
        Unary::Powi(3),
    ];

    /// Value and derivative of the primitive at `x`, both in `T`'s arithmetic.
    #[inline(always)]
    pub fn apply<T: Scalar>(self, x: T) -> (T, T) {
        let one = T::one();
        match self {
            Unary::Recip => {
                let r = Float::recip(x);
                (r, -(r * r))
            }
            Unary::Sqrt => {
                let s = Float::sqrt(x);
                (s, T::cst(0.5) / s)
            }
            Unary::Cbrt => {
                let c = Float::cbrt(x);
                (c, Float::recip(T::cst(3.0) * c * c))
            }
            Unary::Exp => {
                let e = Float::exp(x);
                (e, e)
            }
            Unary::Exp2 => {
                let e = Float::exp2(x);
                (e, e * T::LN_2())
            }
            Unary::ExpM1 => {
                let e = Float::exp_m1(x);
                (e, e + one)
            }
            Unary::Ln => in_domain(Float::ln(x), Float::recip(x)),
            Unary::Log2 => in_domain(Float::log2(x), Float::recip(x * T::LN_2())),
            Unary::Log10 => in_domain(Float::log10(x), Float::recip(x * T::LN_10())),
            Unary::Ln1p => in_domain(Float::ln_1p(x), Float::recip(one + x)),
            Unary::Sin => Float::sin_cos(x),
            Unary::Cos => {
                let (s, c) = Float::sin_cos(x);
                (c, -s)
            }
            Unary::Tan => {
                let t = Float::tan(x);
                (t, one + t * t)
            }
            Unary::Asin => (
                Float::asin(x),
                Float::recip(Float::sqrt((one - x) * (one + x))),
            ),
            Unary::Acos => (
                Float::acos(x),
                -Float::recip(Float::sqrt((one - x) * (one + x))),
            ),
            Unary::Atan => (Float::atan(x), Float::recip(one + x * x)),
            Unary::Sinh => (Float::sinh(x), Float::cosh(x)),
            Unary::Cosh => (Float::cosh(x), Float::sinh(x)),
            Unary::Tanh => {
                let t = Float::tanh(x);
                // sech² = (1 − t)(1 + t): both factors are exact near saturation, where
                // 1 − t² would lose the digits that t still has.
                (t, (one - t) * (one + t))
            }
            Unary::Asinh => (Float::asinh(x), Float::recip(Float::sqrt(x * x + one))),
            Unary::Acosh => (
                Float::acosh(x),
                Float::recip(Float::sqrt((x - one) * (x + one))),
            ),
            Unary::Atanh => in_domain(Float::atanh(x), Float::recip((one - x) * (one + x))),
            Unary::Abs => {
                let slope = if x > T::zero() {
                    one
                } else if x < T::zero() {
                    -one
                } else if Float::is_nan(x) {
                    x
                } else {
                    T::zero()
                };
                (Float::abs(x), slope)
            }
            Unary::Signum => (Float::signum(x), T::zero()),
            Unary::Floor => (Float::floor(x), T::zero()),
            Unary::Ceil => (Float::ceil(x), T::zero()),
            Unary::Round => (Float::round(x), T::zero()),
            Unary::Trunc => (Float::trunc(x), T::zero()),
            Unary::Fract => (Float::fract(x), one),
            Unary::ToDegrees => {
                let k = T::cst(180.0 / std::f64::consts::PI);
                (Float::to_degrees(x), k)
            }
            Unary::ToRadians => {
                let k = T::cst(std::f64::consts::PI / 180.0);
                (Float::to_radians(x), k)
            }
            Unary::Powi(n) => match n {
                0 => (one, T::zero()),
                1 => (x, one),
                2 => (x * x, x + x),
                i32::MIN => {
                    let v = Float::powi(x, n);
                    (v, T::cst(n as f64) * v / x)
                }
                _ => (Float::powi(x, n), T::cst(n as f64) * Float::powi(x, n - 1)),
            },
        }
    }

    /// Which second partial may be non-zero, and whether the value depends on `x` at all:
    /// the fact sparsity detection reads. Rounding and sign (and `powi(0)`) are
    /// [`Interaction::Constant`] (derivative zero everywhere); `abs`, `fract`, the angle
    /// conversions and `powi(1)` are [`Interaction::Linear`] (piecewise linear); the rest
    /// are nonlinear in `x` (`aa`).
    #[inline]
    pub fn interaction(self) -> Interaction {
        match self {
            Unary::Signum | Unary::Floor | Unary::Ceil | Unary::Round | Unary::Trunc => {
                Interaction::Constant
            }
            Unary::Powi(0) => Interaction::Constant,
            Unary::Abs | Unary::Fract | Unary::ToDegrees | Unary::ToRadians | Unary::Powi(1) => {
                Interaction::Linear
            }
            Unary::Recip
            | Unary::Sqrt
            | Unary::Cbrt
            | Unary::Exp
            | Unary::Exp2
            | Unary::ExpM1
            | Unary::Ln
            | Unary::Log2
            | Unary::Log10
            | Unary::Ln1p
            | Unary::Sin
            | Unary::Cos
            | Unary::Tan
            | Unary::Asin
            | Unary::Acos
            | Unary::Atan
            | Unary::Sinh
            | Unary::Cosh
            | Unary::Tanh
            | Unary::Asinh
            | Unary::Acosh
            | Unary::Atanh
            | Unary::Powi(_) => Interaction::NONLINEAR_A,
        }
    }

    /// True for primitives whose derivative is zero everywhere (rounding, sign, `powi(0)`):
    /// [`Unary::interaction`] is [`Interaction::Constant`].
    #[inline]
    pub fn is_locally_constant(self) -> bool {
        self.interaction() == Interaction::Constant
    }
}

/// `(value, derivative)`, with the derivative NaN wherever the value is: outside a
/// function's domain the formula for the derivative may still give a finite number.
#[inline(always)]
fn in_domain<T: Scalar>(value: T, derivative: T) -> (T, T) {
    if Float::is_nan(value) {
        (value, value)
    } else {
        (value, derivative)
    }
}

#[cfg(test)]
mod tests {
    use super::Unary::{self, *};

    /// `Unary::ALL` lists every variant once: the match fails to compile when a variant
    /// is added, and its new index is then missing from `ALL`.
    #[test]
    fn all_lists_every_primitive_once() {
        let index = |op: Unary| match op {
            Recip => 0,
            Sqrt => 1,
            Cbrt => 2,
            Exp => 3,
            Exp2 => 4,
            ExpM1 => 5,
            Ln => 6,
            Log2 => 7,
            Log10 => 8,
            Ln1p => 9,
            Sin => 10,
            Cos => 11,
            Tan => 12,
            Asin => 13,
            Acos => 14,
            Atan => 15,
            Sinh => 16,
            Cosh => 17,
            Tanh => 18,
            Asinh => 19,
            Acosh => 20,
            Atanh => 21,
            Abs => 22,
            Signum => 23,
            Floor => 24,
            Ceil => 25,
            Round => 26,
            Trunc => 27,
            Fract => 28,
            ToDegrees => 29,
            ToRadians => 30,
            Powi(_) => 31,
        };
        let mut seen: Vec<usize> = Unary::ALL.iter().map(|&op| index(op)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..Unary::ALL.len()).collect::<Vec<_>>());
    }
}
