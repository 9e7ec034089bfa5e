//! Rules for two-argument primitives: value and both partial derivatives.

use num_traits::Float;

use super::Interaction;
use crate::Scalar;

/// A two-argument primitive `f(a, b)`. [`Binary::apply`] gives `(f, ∂f/∂a, ∂f/∂b)`.
///
/// Conventions at points where a partial does not exist (each is tested):
/// - `Max`/`Min` at a tie: each argument gets 1/2 (so `max(x, x)` has derivative 1), and the
///   value is their mean (`±∞` for two equal infinities, as in `f64`). A NaN argument is
///   ignored, as `Float::max` ignores it.
/// - `AbsSub` (`fdim`, the positive difference `max(a − b, 0)`): at a tie partials `½, −½`
///   (the `Max` convention), value `+0` for two equal infinities; NaN for a NaN argument,
///   as `f64`'s `abs_sub` gives.
/// - `Hypot` at the origin: partials 0 (the least-norm subgradient, as for `abs`).
/// - `Atan2` at the origin: partials NaN (the function jumps there).
/// - `Powf` (`aᵇ`): `∂/∂b = aᵇ ln a` for `a > 0`; 0 at `a = 0, b > 0` (the limit); NaN for
///   a negative base, where `aᵇ` is not real near integer `b`. `∂/∂a = b·aᵇ⁻¹`, 0 when
///   `b = 0`. An engine skips the partial of a constant operand, so `x.powf(3.0)` at a
///   negative `x` has the ordinary derivative.
/// - `Rem` (`a % b`): `∂/∂a = 1`, `∂/∂b = −trunc(a/b)`, the derivative of the piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// Remainder `a % b`.
    Rem,
    /// `aᵇ`.
    Powf,
    /// `atan2(a, b)`: the angle of the point `(b, a)`.
    Atan2,
    /// `√(a² + b²)`.
    Hypot,
    /// The larger argument.
    Max,
    /// The smaller argument.
    Min,
    /// The positive difference `max(a − b, 0)` (C's `fdim`, `Float::abs_sub`); NaN if
    /// either argument is.
    AbsSub,
}

impl Binary {
    /// Every primitive once: for tests and tools that must cover them all (a unit test
    /// keeps it complete).
    #[doc(hidden)]
    pub const ALL: [Binary; 9] = [
        Binary::Mul,
        Binary::Div,
        Binary::Rem,
        Binary::Powf,
        Binary::Atan2,
        Binary::Hypot,
        Binary::Max,
        Binary::Min,
        Binary::AbsSub,
    ];

    /// Value and the two partials at `(a, b)`, in `T`'s arithmetic.
    #[inline(always)]
    pub fn apply<T: Scalar>(self, a: T, b: T) -> (T, T, T) {
        let zero = T::zero();
        let one = T::one();
        match self {
            Binary::Mul => (a * b, b, a),
            Binary::Div => {
                let r = Float::recip(b);
                let v = a / b;
                (v, r, -(v * r))
            }
            Binary::Rem => (a % b, one, -Float::trunc(a / b)),
            Binary::Powf => {
                let v = Float::powf(a, b);
                // b·aᵇ⁻¹, except 0 at a = b = 0 where the formula would be 0·∞. Testing
                // b = 0 alone would drop b's own tangent from the mixed second partial.
                let da = if b == zero && a == zero {
                    zero
                } else {
                    b * Float::powf(a, b - one)
                };
                let db = if a > zero {
                    v * Float::ln(a)
                } else if a == zero && b > zero {
                    zero
                } else {
                    T::nan()
                };
                (v, da, db)
            }
            Binary::Atan2 => {
                let r = Float::recip(a * a + b * b);
                (Float::atan2(a, b), b * r, -(a * r))
            }
            Binary::Hypot => {
                let h = Float::hypot(a, b);
                if h == zero {
                    (h, zero, zero)
                } else {
                    (h, a / h, b / h)
                }
            }
            Binary::Max => {
                if a > b || Float::is_nan(b) {
                    (a, one, zero)
                } else if a < b || Float::is_nan(a) {
                    (b, zero, one)
                } else {
                    tie(a, b)
                }
            }
            Binary::Min => {
                if a < b || Float::is_nan(b) {
                    (a, one, zero)
                } else if a > b || Float::is_nan(a) {
                    (b, zero, one)
                } else {
                    tie(a, b)
                }
            }
            Binary::AbsSub => {
                let d = a - b;
                if a > b {
                    (d, one, -one)
                } else if a < b || (a == b && Float::is_nan(d)) {
                    // Below the tie, and two equal infinities: `fdim` gives +0.
                    (zero, zero, zero)
                } else if a == b {
                    // `+ 0` makes `fdim(−0, +0)`'s value `+0`, as `f64`'s.
                    let half = T::cst(0.5);
                    (d * half + zero, half, -half)
                } else {
                    // A NaN argument.
                    (d, d, d)
                }
            }
        }
    }
}

impl Binary {
    /// Which second partials may be non-zero: the fact sparsity detection reads. `max`,
    /// `min`, `abs_sub` and `%` are piecewise linear ([`Interaction::Linear`]: their
    /// partials are locally constant); `a·b` is bilinear (`ab` only); `a/b` is linear in
    /// `a` (no `aa`); `powf`, `atan2` and `hypot` may have every second partial.
    #[inline]
    pub fn interaction(self) -> Interaction {
        match self {
            Binary::Max | Binary::Min | Binary::AbsSub | Binary::Rem => Interaction::Linear,
            Binary::Mul => Interaction::Nonlinear {
                aa: false,
                ab: true,
                bb: false,
            },
            Binary::Div => Interaction::Nonlinear {
                aa: false,
                ab: true,
                bb: true,
            },
            Binary::Powf | Binary::Atan2 | Binary::Hypot => Interaction::ALL,
        }
    }
}

/// `max`/`min` at a tie: the mean of the arguments (equal in value, but their own
/// derivatives may differ under nesting) with partials 1/2 each, so every nesting level
/// sees the same convention. Written `b − (b − a)/2`: two equal huge values do not
/// overflow (as `(a + b)/2` would), two equal subnormals are not rounded away (as
/// `a/2 + b/2` would), and `max(−0, −0)` stays `−0`. Two equal infinities, whose
/// difference is NaN, give the infinity itself.
#[inline(always)]
fn tie<T: Scalar>(a: T, b: T) -> (T, T, T) {
    let half = T::cst(0.5);
    let gap = b - a;
    if Float::is_nan(gap) {
        (b, half, half)
    } else {
        (b - gap * half, half, half)
    }
}

#[cfg(test)]
mod tests {
    use super::Binary::{self, *};

    /// `Binary::ALL` lists every variant once (see the same test for `Unary`).
    #[test]
    fn all_lists_every_primitive_once() {
        let index = |op: Binary| match op {
            Mul => 0,
            Div => 1,
            Rem => 2,
            Powf => 3,
            Atan2 => 4,
            Hypot => 5,
            Max => 6,
            Min => 7,
            AbsSub => 8,
        };
        let mut seen: Vec<usize> = Binary::ALL.iter().map(|&op| index(op)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..Binary::ALL.len()).collect::<Vec<_>>());
    }
}
