//! The trait façade: every standard numeric trait, derived once from [`Chain`].
//!
//! [`crate::impl_scalar_traits!`] implements, for one AD number type, the operators (with plain
//! `f64` on either side), `num_traits` (`Float`, `FloatConst`, `NumCast`, `FromPrimitive`,
//! `ToPrimitive`, `Signed`, …), `approx`, and nalgebra/simba's `RealField` and
//! `ComplexField`, all in terms of the type's [`Chain`] implementation and the rules in
//! [`crate::rules`]. Engines therefore implement only `Chain`; a new primitive is routed
//! here once and reaches every engine.
//!
//! Conventions: comparisons, predicates and conversions act on primal values and are
//! reported to [`Chain::observe`] (reverse mode turns them into branch guards); conversions
//! to plain numbers drop derivative information.

#[allow(unused_imports)]
pub(crate) use crate::chain::{Chain, Decision};

/// Implements every scalar trait for an AD number type that implements [`Chain`].
///
/// Usage: `impl_scalar_traits!([T: Scalar] Dual<T>);` — the bracket holds the impl generics.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_scalar_traits {
    ([$($gen:tt)*] $t:ty) => {
        // ---------- operators ----------
        impl<$($gen)*> ::std::ops::Add for $t {
            type Output = Self;
            #[inline(always)]
            fn add(self, rhs: Self) -> Self { $crate::chain::Chain::add(self, rhs) }
        }
        impl<$($gen)*> ::std::ops::Sub for $t {
            type Output = Self;
            #[inline(always)]
            fn sub(self, rhs: Self) -> Self { $crate::chain::Chain::sub(self, rhs) }
        }
        impl<$($gen)*> ::std::ops::Mul for $t {
            type Output = Self;
            #[inline(always)]
            fn mul(self, rhs: Self) -> Self {
                $crate::chain::Chain::binary(self, rhs, $crate::rules::Binary::Mul)
            }
        }
        impl<$($gen)*> ::std::ops::Div for $t {
            type Output = Self;
            #[inline(always)]
            fn div(self, rhs: Self) -> Self {
                $crate::chain::Chain::binary(self, rhs, $crate::rules::Binary::Div)
            }
        }
        impl<$($gen)*> ::std::ops::Rem for $t {
            type Output = Self;
            #[inline(always)]
            fn rem(self, rhs: Self) -> Self {
                $crate::chain::Chain::binary(self, rhs, $crate::rules::Binary::Rem)
            }
        }
        impl<$($gen)*> ::std::ops::Neg for $t {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self { $crate::chain::Chain::neg(self) }
        }
        impl<$($gen)*> ::std::ops::AddAssign for $t {
            #[inline(always)]
            fn add_assign(&mut self, rhs: Self) { *self = *self + rhs; }
        }
        impl<$($gen)*> ::std::ops::SubAssign for $t {
            #[inline(always)]
            fn sub_assign(&mut self, rhs: Self) { *self = *self - rhs; }
        }
        impl<$($gen)*> ::std::ops::MulAssign for $t {
            #[inline(always)]
            fn mul_assign(&mut self, rhs: Self) { *self = *self * rhs; }
        }
        impl<$($gen)*> ::std::ops::DivAssign for $t {
            #[inline(always)]
            fn div_assign(&mut self, rhs: Self) { *self = *self / rhs; }
        }
        impl<$($gen)*> ::std::ops::RemAssign for $t {
            #[inline(always)]
            fn rem_assign(&mut self, rhs: Self) { *self = *self % rhs; }
        }
        // With a plain f64 on either side: the f64 is a constant.
        impl<$($gen)*> ::std::ops::Add<f64> for $t {
            type Output = Self;
            #[inline(always)]
            fn add(self, rhs: f64) -> Self { self + <Self as $crate::Scalar>::cst(rhs) }
        }
        impl<$($gen)*> ::std::ops::Add<$t> for f64 {
            type Output = $t;
            #[inline(always)]
            fn add(self, rhs: $t) -> $t { <$t as $crate::Scalar>::cst(self) + rhs }
        }
        impl<$($gen)*> ::std::ops::Sub<f64> for $t {
            type Output = Self;
            #[inline(always)]
            fn sub(self, rhs: f64) -> Self { self - <Self as $crate::Scalar>::cst(rhs) }
        }
        impl<$($gen)*> ::std::ops::Sub<$t> for f64 {
            type Output = $t;
            #[inline(always)]
            fn sub(self, rhs: $t) -> $t { <$t as $crate::Scalar>::cst(self) - rhs }
        }
        impl<$($gen)*> ::std::ops::Mul<f64> for $t {
            type Output = Self;
            #[inline(always)]
            fn mul(self, rhs: f64) -> Self {
                $crate::chain::Chain::scale(self, <<$t as $crate::chain::Chain>::Primal as $crate::Scalar>::cst(rhs))
            }
        }
        impl<$($gen)*> ::std::ops::Mul<$t> for f64 {
            type Output = $t;
            #[inline(always)]
            fn mul(self, rhs: $t) -> $t { rhs * self }
        }
        impl<$($gen)*> ::std::ops::Div<f64> for $t {
            type Output = Self;
            #[inline(always)]
            fn div(self, rhs: f64) -> Self { self / <Self as $crate::Scalar>::cst(rhs) }
        }
        impl<$($gen)*> ::std::ops::Div<$t> for f64 {
            type Output = $t;
            #[inline(always)]
            fn div(self, rhs: $t) -> $t { <$t as $crate::Scalar>::cst(self) / rhs }
        }
        impl<$($gen)*> ::std::ops::AddAssign<f64> for $t {
            #[inline(always)]
            fn add_assign(&mut self, rhs: f64) { *self = *self + rhs; }
        }
        impl<$($gen)*> ::std::ops::SubAssign<f64> for $t {
            #[inline(always)]
            fn sub_assign(&mut self, rhs: f64) { *self = *self - rhs; }
        }
        impl<$($gen)*> ::std::ops::MulAssign<f64> for $t {
            #[inline(always)]
            fn mul_assign(&mut self, rhs: f64) { *self = *self * rhs; }
        }
        impl<$($gen)*> ::std::ops::DivAssign<f64> for $t {
            #[inline(always)]
            fn div_assign(&mut self, rhs: f64) { *self = *self / rhs; }
        }
        impl<$($gen)*> ::std::iter::Sum for $t {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                iter.fold(<Self as ::num_traits::Zero>::zero(), |a, b| a + b)
            }
        }
        impl<'a, $($gen)*> ::std::iter::Sum<&'a $t> for $t {
            fn sum<I: Iterator<Item = &'a $t>>(iter: I) -> Self {
                iter.fold(<Self as ::num_traits::Zero>::zero(), |a, b| a + *b)
            }
        }
        impl<$($gen)*> ::std::iter::Product for $t {
            fn product<I: Iterator<Item = Self>>(iter: I) -> Self {
                iter.fold(<Self as ::num_traits::One>::one(), |a, b| a * b)
            }
        }
        impl<'a, $($gen)*> ::std::iter::Product<&'a $t> for $t {
            fn product<I: Iterator<Item = &'a $t>>(iter: I) -> Self {
                iter.fold(<Self as ::num_traits::One>::one(), |a, b| a * *b)
            }
        }

        // ---------- comparisons (on primal values, reported as decisions) ----------
        impl<$($gen)*> ::std::cmp::PartialEq for $t {
            #[inline]
            fn eq(&self, other: &Self) -> bool {
                ::std::cmp::PartialOrd::partial_cmp(self, other) == Some(::std::cmp::Ordering::Equal)
            }
        }
        impl<$($gen)*> ::std::cmp::PartialOrd for $t {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> Option<::std::cmp::Ordering> {
                let outcome = $crate::chain::Chain::primal(self)
                    .partial_cmp(&$crate::chain::Chain::primal(other));
                $crate::chain::Chain::observe(self, $crate::chain::Decision::Compare { other, outcome });
                outcome
            }
        }
        impl<$($gen)*> ::std::default::Default for $t {
            #[inline]
            fn default() -> Self { <Self as ::num_traits::Zero>::zero() }
        }

        // ---------- num-traits ----------
        impl<$($gen)*> ::num_traits::Zero for $t {
            #[inline(always)]
            fn zero() -> Self {
                <$t as $crate::chain::Chain>::constant(::num_traits::Zero::zero())
            }
            /// True when the value is zero, as on `f64` (whatever the derivative parts);
            /// a decision, guarded in recordings.
            #[inline]
            fn is_zero(&self) -> bool {
                let r = ::num_traits::Zero::is_zero(&$crate::chain::Chain::primal(self));
                $crate::facade::observe(self, r as u64, |x: &$t| ::num_traits::Zero::is_zero(&$crate::chain::Chain::primal(x)) as u64);
                r
            }
        }
        impl<$($gen)*> ::num_traits::One for $t {
            #[inline(always)]
            fn one() -> Self {
                <$t as $crate::chain::Chain>::constant(::num_traits::One::one())
            }
        }
        impl<$($gen)*> ::num_traits::Num for $t {
            type FromStrRadixErr = <<$t as $crate::chain::Chain>::Primal as ::num_traits::Num>::FromStrRadixErr;
            fn from_str_radix(s: &str, radix: u32) -> Result<Self, Self::FromStrRadixErr> {
                <<$t as $crate::chain::Chain>::Primal as ::num_traits::Num>::from_str_radix(s, radix)
                    .map(<$t as $crate::chain::Chain>::constant)
            }
        }
        impl<$($gen)*> ::num_traits::ToPrimitive for $t {
            fn to_i64(&self) -> Option<i64> {
                let v = ::num_traits::ToPrimitive::to_i64(&$crate::chain::Chain::primal(self));
                $crate::facade::observe(self, $crate::facade::integer_summary(v), |x: &$t| $crate::facade::integer_summary(::num_traits::ToPrimitive::to_i64(&$crate::chain::Chain::primal(x))));
                v
            }
            fn to_i128(&self) -> Option<i128> {
                let v = ::num_traits::ToPrimitive::to_i128(&$crate::chain::Chain::primal(self));
                $crate::facade::observe(self, $crate::facade::integer_summary(v), |x: &$t| $crate::facade::integer_summary(::num_traits::ToPrimitive::to_i128(&$crate::chain::Chain::primal(x))));
                v
            }
            fn to_u128(&self) -> Option<u128> {
                let v = ::num_traits::ToPrimitive::to_u128(&$crate::chain::Chain::primal(self));
                $crate::facade::observe(self, $crate::facade::integer_summary(v), |x: &$t| $crate::facade::integer_summary(::num_traits::ToPrimitive::to_u128(&$crate::chain::Chain::primal(x))));
                v
            }
            fn to_u64(&self) -> Option<u64> {
                let v = ::num_traits::ToPrimitive::to_u64(&$crate::chain::Chain::primal(self));
                $crate::facade::observe(self, $crate::facade::integer_summary(v), |x: &$t| $crate::facade::integer_summary(::num_traits::ToPrimitive::to_u64(&$crate::chain::Chain::primal(x))));
                v
            }
            fn to_f64(&self) -> Option<f64> {
                let v = ::num_traits::ToPrimitive::to_f64(&$crate::chain::Chain::primal(self));
                $crate::facade::observe(self, v.map_or(u64::MAX, f64::to_bits), |x: &$t| ::num_traits::ToPrimitive::to_f64(&$crate::chain::Chain::primal(x)).map_or(u64::MAX, f64::to_bits));
                v
            }
            fn to_f32(&self) -> Option<f32> {
                let v = ::num_traits::ToPrimitive::to_f32(&$crate::chain::Chain::primal(self));
                $crate::facade::observe(self, v.map_or(u64::MAX, |v| v.to_bits() as u64), |x: &$t| ::num_traits::ToPrimitive::to_f32(&$crate::chain::Chain::primal(x)).map_or(u64::MAX, |v| v.to_bits() as u64));
                v
            }
        }
        impl<$($gen)*> ::num_traits::NumCast for $t {
            fn from<AnyPrimitive: ::num_traits::ToPrimitive>(n: AnyPrimitive) -> Option<Self> {
                <<$t as $crate::chain::Chain>::Primal as ::num_traits::NumCast>::from(n)
                    .map(<$t as $crate::chain::Chain>::constant)
            }
        }
        impl<$($gen)*> ::num_traits::FromPrimitive for $t {
            fn from_i64(n: i64) -> Option<Self> {
                <<$t as $crate::chain::Chain>::Primal as ::num_traits::FromPrimitive>::from_i64(n)
                    .map(<$t as $crate::chain::Chain>::constant)
            }
            fn from_u64(n: u64) -> Option<Self> {
                <<$t as $crate::chain::Chain>::Primal as ::num_traits::FromPrimitive>::from_u64(n)
                    .map(<$t as $crate::chain::Chain>::constant)
            }
            fn from_f64(n: f64) -> Option<Self> {
                Some(<Self as $crate::Scalar>::cst(n))
            }
            fn from_f32(n: f32) -> Option<Self> {
                Some(<Self as $crate::Scalar>::cst(n as f64))
            }
        }
        impl<$($gen)*> ::num_traits::Signed for $t {
            #[inline]
            fn abs(&self) -> Self { ::num_traits::Float::abs(*self) }
            #[inline]
            fn abs_sub(&self, other: &Self) -> Self {
                #[allow(deprecated)]
                ::num_traits::Float::abs_sub(*self, *other)
            }
            #[inline]
            fn signum(&self) -> Self { ::num_traits::Float::signum(*self) }
            #[inline]
            fn is_positive(&self) -> bool { ::num_traits::Float::is_sign_positive(*self) }
            #[inline]
            fn is_negative(&self) -> bool { ::num_traits::Float::is_sign_negative(*self) }
        }
        impl<$($gen)*> ::num_traits::FloatConst for $t {
            fn E() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::E) }
            fn FRAC_1_PI() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::FRAC_1_PI) }
            fn FRAC_1_SQRT_2() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::FRAC_1_SQRT_2) }
            fn FRAC_2_PI() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::FRAC_2_PI) }
            fn FRAC_2_SQRT_PI() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::FRAC_2_SQRT_PI) }
            fn FRAC_PI_2() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::FRAC_PI_2) }
            fn FRAC_PI_3() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::FRAC_PI_3) }
            fn FRAC_PI_4() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::FRAC_PI_4) }
            fn FRAC_PI_6() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::FRAC_PI_6) }
            fn FRAC_PI_8() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::FRAC_PI_8) }
            fn LN_10() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::LN_10) }
            fn LN_2() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::LN_2) }
            fn LOG10_E() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::LOG10_E) }
            fn LOG2_E() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::LOG2_E) }
            fn PI() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::PI) }
            fn SQRT_2() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::SQRT_2) }
            fn TAU() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::TAU) }
            fn LOG10_2() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::LOG10_2) }
            fn LOG2_10() -> Self { <Self as $crate::Scalar>::cst(::std::f64::consts::LOG2_10) }
        }
        impl<$($gen)*> ::num_traits::Float for $t {
            fn nan() -> Self { <$t as $crate::chain::Chain>::constant(::num_traits::Float::nan()) }
            fn infinity() -> Self { <$t as $crate::chain::Chain>::constant(::num_traits::Float::infinity()) }
            fn neg_infinity() -> Self { <$t as $crate::chain::Chain>::constant(::num_traits::Float::neg_infinity()) }
            fn neg_zero() -> Self { <$t as $crate::chain::Chain>::constant(::num_traits::Float::neg_zero()) }
            fn min_value() -> Self { <$t as $crate::chain::Chain>::constant(::num_traits::Float::min_value()) }
            fn min_positive_value() -> Self { <$t as $crate::chain::Chain>::constant(::num_traits::Float::min_positive_value()) }
            fn epsilon() -> Self { <$t as $crate::chain::Chain>::constant(::num_traits::Float::epsilon()) }
            fn max_value() -> Self { <$t as $crate::chain::Chain>::constant(::num_traits::Float::max_value()) }
            fn is_nan(self) -> bool {
                let r = ::num_traits::Float::is_nan($crate::chain::Chain::primal(&self));
                $crate::facade::observe(&self, r as u64, |x: &$t| ::num_traits::Float::is_nan($crate::chain::Chain::primal(x)) as u64);
                r
            }
            fn is_infinite(self) -> bool {
                let r = ::num_traits::Float::is_infinite($crate::chain::Chain::primal(&self));
                $crate::facade::observe(&self, r as u64, |x: &$t| ::num_traits::Float::is_infinite($crate::chain::Chain::primal(x)) as u64);
                r
            }
            fn is_finite(self) -> bool {
                let r = ::num_traits::Float::is_finite($crate::chain::Chain::primal(&self));
                $crate::facade::observe(&self, r as u64, |x: &$t| ::num_traits::Float::is_finite($crate::chain::Chain::primal(x)) as u64);
                r
            }
            fn is_normal(self) -> bool {
                let r = ::num_traits::Float::is_normal($crate::chain::Chain::primal(&self));
                $crate::facade::observe(&self, r as u64, |x: &$t| ::num_traits::Float::is_normal($crate::chain::Chain::primal(x)) as u64);
                r
            }
            fn is_subnormal(self) -> bool {
                let r = ::num_traits::Float::is_subnormal($crate::chain::Chain::primal(&self));
                $crate::facade::observe(&self, r as u64, |x: &$t| ::num_traits::Float::is_subnormal($crate::chain::Chain::primal(x)) as u64);
                r
            }
            fn classify(self) -> ::std::num::FpCategory {
                let r = ::num_traits::Float::classify($crate::chain::Chain::primal(&self));
                $crate::facade::observe(&self, r as u64, |x: &$t| ::num_traits::Float::classify($crate::chain::Chain::primal(x)) as u64);
                r
            }
            fn is_sign_positive(self) -> bool {
                let r = ::num_traits::Float::is_sign_positive($crate::chain::Chain::primal(&self));
                $crate::facade::observe(&self, r as u64, |x: &$t| ::num_traits::Float::is_sign_positive($crate::chain::Chain::primal(x)) as u64);
                r
            }
            fn is_sign_negative(self) -> bool {
                let r = ::num_traits::Float::is_sign_negative($crate::chain::Chain::primal(&self));
                $crate::facade::observe(&self, r as u64, |x: &$t| ::num_traits::Float::is_sign_negative($crate::chain::Chain::primal(x)) as u64);
                r
            }
            fn integer_decode(self) -> (u64, i16, i8) {
                let r = ::num_traits::Float::integer_decode($crate::chain::Chain::primal(&self));
                // The decoded parts are a function of the value's bits: guard by the bits.
                $crate::facade::observe(&self, $crate::Scalar::untracked_f64(&self).to_bits(), |x: &$t| {
                    $crate::Scalar::untracked_f64(x).to_bits()
                });
                r
            }
            #[inline] fn floor(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Floor) }
            #[inline] fn ceil(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Ceil) }
            #[inline] fn round(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Round) }
            #[inline] fn trunc(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Trunc) }
            #[inline] fn fract(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Fract) }
            #[inline] fn abs(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Abs) }
            #[inline] fn signum(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Signum) }
            #[inline] fn mul_add(self, a: Self, b: Self) -> Self { self * a + b }
            #[inline] fn recip(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Recip) }
            #[inline] fn powi(self, n: i32) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Powi(n)) }
            #[inline] fn powf(self, n: Self) -> Self { $crate::chain::Chain::binary(self, n, $crate::rules::Binary::Powf) }
            #[inline] fn sqrt(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Sqrt) }
            #[inline] fn exp(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Exp) }
            #[inline] fn exp2(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Exp2) }
            #[inline] fn ln(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Ln) }
            #[inline] fn log(self, base: Self) -> Self { ::num_traits::Float::ln(self) / ::num_traits::Float::ln(base) }
            #[inline] fn log2(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Log2) }
            #[inline] fn log10(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Log10) }
            #[inline] fn to_degrees(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::ToDegrees) }
            #[inline] fn to_radians(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::ToRadians) }
            #[inline] fn max(self, other: Self) -> Self { $crate::chain::Chain::binary(self, other, $crate::rules::Binary::Max) }
            #[inline] fn min(self, other: Self) -> Self { $crate::chain::Chain::binary(self, other, $crate::rules::Binary::Min) }
            /// `max(self − other, 0)` (`fdim`): a piecewise rule, replayed without a guard,
            /// NaN where an argument is NaN, as on `f64`.
            #[inline] fn abs_sub(self, other: Self) -> Self { $crate::chain::Chain::binary(self, other, $crate::rules::Binary::AbsSub) }
            #[inline] fn cbrt(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Cbrt) }
            #[inline] fn hypot(self, other: Self) -> Self { $crate::chain::Chain::binary(self, other, $crate::rules::Binary::Hypot) }
            #[inline] fn sin(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Sin) }
            #[inline] fn cos(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Cos) }
            #[inline] fn tan(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Tan) }
            #[inline] fn asin(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Asin) }
            #[inline] fn acos(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Acos) }
            #[inline] fn atan(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Atan) }
            #[inline] fn atan2(self, other: Self) -> Self { $crate::chain::Chain::binary(self, other, $crate::rules::Binary::Atan2) }
            #[inline] fn sin_cos(self) -> (Self, Self) {
                ($crate::chain::Chain::unary(self, $crate::rules::Unary::Sin), $crate::chain::Chain::unary(self, $crate::rules::Unary::Cos))
            }
            #[inline] fn exp_m1(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::ExpM1) }
            #[inline] fn ln_1p(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Ln1p) }
            #[inline] fn sinh(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Sinh) }
            #[inline] fn cosh(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Cosh) }
            #[inline] fn tanh(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Tanh) }
            #[inline] fn asinh(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Asinh) }
            #[inline] fn acosh(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Acosh) }
            #[inline] fn atanh(self) -> Self { $crate::chain::Chain::unary(self, $crate::rules::Unary::Atanh) }
        }

        // ---------- approx (on primal values, reported as joint decisions) ----------
        impl<$($gen)*> ::approx::AbsDiffEq for $t {
            type Epsilon = Self;
            fn default_epsilon() -> Self { <Self as ::num_traits::Float>::epsilon() }
            fn abs_diff_eq(&self, other: &Self, epsilon: Self) -> bool {
                let r = ::approx::AbsDiffEq::abs_diff_eq(
                    &$crate::chain::Chain::primal(self),
                    &$crate::chain::Chain::primal(other),
                    $crate::chain::Chain::primal(&epsilon),
                );
                $crate::facade::observe_joint(self, &[*other, epsilon], 0, r, $crate::facade::abs_diff_eq_probe);
                r
            }
        }
        impl<$($gen)*> ::approx::RelativeEq for $t {
            fn default_max_relative() -> Self { <Self as ::num_traits::Float>::epsilon() }
            fn relative_eq(&self, other: &Self, epsilon: Self, max_relative: Self) -> bool {
                let r = ::approx::RelativeEq::relative_eq(
                    &$crate::chain::Chain::primal(self),
                    &$crate::chain::Chain::primal(other),
                    $crate::chain::Chain::primal(&epsilon),
                    $crate::chain::Chain::primal(&max_relative),
                );
                $crate::facade::observe_joint(self, &[*other, epsilon, max_relative], 0, r, $crate::facade::relative_eq_probe);
                r
            }
        }
        impl<$($gen)*> ::approx::UlpsEq for $t {
            fn default_max_ulps() -> u32 { 4 }
            fn ulps_eq(&self, other: &Self, epsilon: Self, max_ulps: u32) -> bool {
                let r = ::approx::UlpsEq::ulps_eq(
                    &$crate::chain::Chain::primal(self),
                    &$crate::chain::Chain::primal(other),
                    $crate::chain::Chain::primal(&epsilon),
                    max_ulps,
                );
                $crate::facade::observe_joint(self, &[*other, epsilon], max_ulps as u64, r, $crate::facade::ulps_eq_probe);
                r
            }
        }

        // ---------- simba / nalgebra ----------
        impl<$($gen)*> ::simba::simd::SimdValue for $t {
            const LANES: usize = 1;
            type Element = Self;
            type SimdBool = bool;
            #[inline(always)] fn splat(val: Self) -> Self { val }
            #[inline(always)] fn extract(&self, _: usize) -> Self { *self }
            #[inline(always)] unsafe fn extract_unchecked(&self, _: usize) -> Self { *self }
            #[inline(always)] fn replace(&mut self, _: usize, val: Self) { *self = val }
            #[inline(always)] unsafe fn replace_unchecked(&mut self, _: usize, val: Self) { *self = val }
            #[inline(always)] fn select(self, cond: bool, other: Self) -> Self { if cond { self } else { other } }
        }
        impl<$($gen)*> ::simba::scalar::Field for $t {}
        impl<$($gen)*> ::simba::scalar::SubsetOf<$t> for $t {
            #[inline] fn to_superset(&self) -> $t { *self }
            #[inline] fn from_superset_unchecked(element: &$t) -> Self { *element }
            #[inline] fn is_in_subset(_: &$t) -> bool { true }
        }
        impl<$($gen)*> ::simba::scalar::SubsetOf<$t> for f64 {
            #[inline] fn to_superset(&self) -> $t { <$t as $crate::Scalar>::cst(*self) }
            #[inline] fn from_superset_unchecked(element: &$t) -> f64 { $crate::Scalar::value_f64(element) }
            #[inline] fn is_in_subset(element: &$t) -> bool { $crate::Scalar::is_constant(element) }
        }
        impl<$($gen)*> ::simba::scalar::SubsetOf<$t> for f32 {
            #[inline] fn to_superset(&self) -> $t { <$t as $crate::Scalar>::cst(*self as f64) }
            #[inline] fn from_superset_unchecked(element: &$t) -> f32 { $crate::Scalar::value_f64(element) as f32 }
            #[inline] fn is_in_subset(element: &$t) -> bool { $crate::Scalar::is_constant(element) }
        }
        impl<$($gen)*> ::simba::scalar::ComplexField for $t {
            type RealField = Self;
            #[inline] fn from_real(re: Self) -> Self { re }
            #[inline] fn real(self) -> Self { self }
            #[inline] fn imaginary(self) -> Self { <Self as ::num_traits::Zero>::zero() }
            #[inline] fn modulus(self) -> Self { ::num_traits::Float::abs(self) }
            #[inline] fn modulus_squared(self) -> Self { self * self }
            /// As on `f64`: 0 for `self ≥ 0` (−0 included), π otherwise (NaN included).
            #[inline] fn argument(self) -> Self {
                if self >= <Self as ::num_traits::Zero>::zero() {
                    <Self as ::num_traits::Zero>::zero()
                } else {
                    <Self as ::num_traits::FloatConst>::PI()
                }
            }
            #[inline] fn norm1(self) -> Self { ::num_traits::Float::abs(self) }
            #[inline] fn scale(self, factor: Self) -> Self { self * factor }
            #[inline] fn unscale(self, factor: Self) -> Self { self / factor }
            #[inline] fn floor(self) -> Self { ::num_traits::Float::floor(self) }
            #[inline] fn ceil(self) -> Self { ::num_traits::Float::ceil(self) }
            #[inline] fn round(self) -> Self { ::num_traits::Float::round(self) }
            #[inline] fn trunc(self) -> Self { ::num_traits::Float::trunc(self) }
            #[inline] fn fract(self) -> Self { ::num_traits::Float::fract(self) }
            #[inline] fn mul_add(self, a: Self, b: Self) -> Self { ::num_traits::Float::mul_add(self, a, b) }
            #[inline] fn abs(self) -> Self { ::num_traits::Float::abs(self) }
            #[inline] fn hypot(self, other: Self) -> Self { ::num_traits::Float::hypot(self, other) }
            #[inline] fn recip(self) -> Self { ::num_traits::Float::recip(self) }
            #[inline] fn conjugate(self) -> Self { self }
            #[inline] fn sin(self) -> Self { ::num_traits::Float::sin(self) }
            #[inline] fn cos(self) -> Self { ::num_traits::Float::cos(self) }
            #[inline] fn sin_cos(self) -> (Self, Self) { ::num_traits::Float::sin_cos(self) }
            #[inline] fn tan(self) -> Self { ::num_traits::Float::tan(self) }
            #[inline] fn asin(self) -> Self { ::num_traits::Float::asin(self) }
            #[inline] fn acos(self) -> Self { ::num_traits::Float::acos(self) }
            #[inline] fn atan(self) -> Self { ::num_traits::Float::atan(self) }
            #[inline] fn sinh(self) -> Self { ::num_traits::Float::sinh(self) }
            #[inline] fn cosh(self) -> Self { ::num_traits::Float::cosh(self) }
            #[inline] fn tanh(self) -> Self { ::num_traits::Float::tanh(self) }
            #[inline] fn asinh(self) -> Self { ::num_traits::Float::asinh(self) }
            #[inline] fn acosh(self) -> Self { ::num_traits::Float::acosh(self) }
            #[inline] fn atanh(self) -> Self { ::num_traits::Float::atanh(self) }
            #[inline] fn log(self, base: Self) -> Self { ::num_traits::Float::log(self, base) }
            #[inline] fn log2(self) -> Self { ::num_traits::Float::log2(self) }
            #[inline] fn log10(self) -> Self { ::num_traits::Float::log10(self) }
            #[inline] fn ln(self) -> Self { ::num_traits::Float::ln(self) }
            #[inline] fn ln_1p(self) -> Self { ::num_traits::Float::ln_1p(self) }
            #[inline] fn sqrt(self) -> Self { ::num_traits::Float::sqrt(self) }
            #[inline] fn exp(self) -> Self { ::num_traits::Float::exp(self) }
            #[inline] fn exp2(self) -> Self { ::num_traits::Float::exp2(self) }
            #[inline] fn exp_m1(self) -> Self { ::num_traits::Float::exp_m1(self) }
            #[inline] fn powi(self, n: i32) -> Self { ::num_traits::Float::powi(self, n) }
            #[inline] fn powf(self, n: Self) -> Self { ::num_traits::Float::powf(self, n) }
            #[inline] fn powc(self, n: Self) -> Self { ::num_traits::Float::powf(self, n) }
            #[inline] fn cbrt(self) -> Self { ::num_traits::Float::cbrt(self) }
            #[inline] fn is_finite(&self) -> bool { ::num_traits::Float::is_finite(*self) }
            #[inline] fn try_sqrt(self) -> Option<Self> {
                if self >= <Self as ::num_traits::Zero>::zero() {
                    Some(::num_traits::Float::sqrt(self))
                } else {
                    None
                }
            }
            #[inline] fn signum(self) -> Self { ::num_traits::Float::signum(self) }
        }
        impl<$($gen)*> ::simba::scalar::RealField for $t {
            #[inline] fn is_sign_positive(&self) -> bool { ::num_traits::Float::is_sign_positive(*self) }
            #[inline] fn is_sign_negative(&self) -> bool { ::num_traits::Float::is_sign_negative(*self) }
            #[inline] fn copysign(self, sign: Self) -> Self {
                if ::num_traits::Float::is_sign_negative(self) == ::num_traits::Float::is_sign_negative(sign) {
                    self
                } else {
                    -self
                }
            }
            #[inline] fn max(self, other: Self) -> Self { ::num_traits::Float::max(self, other) }
            #[inline] fn min(self, other: Self) -> Self { ::num_traits::Float::min(self, other) }
            /// As on `f64`: `min` below, `max` above, else `self` (a NaN stays NaN).
            #[inline] fn clamp(self, min: Self, max: Self) -> Self {
                if self < min { min } else if self > max { max } else { self }
            }
            #[inline] fn atan2(self, other: Self) -> Self { ::num_traits::Float::atan2(self, other) }
            fn min_value() -> Option<Self> { Some(<Self as ::num_traits::Float>::min_value()) }
            fn max_value() -> Option<Self> { Some(<Self as ::num_traits::Float>::max_value()) }
            fn pi() -> Self { <Self as ::num_traits::FloatConst>::PI() }
            fn two_pi() -> Self { <Self as ::num_traits::FloatConst>::TAU() }
            fn frac_pi_2() -> Self { <Self as ::num_traits::FloatConst>::FRAC_PI_2() }
            fn frac_pi_3() -> Self { <Self as ::num_traits::FloatConst>::FRAC_PI_3() }
            fn frac_pi_4() -> Self { <Self as ::num_traits::FloatConst>::FRAC_PI_4() }
            fn frac_pi_6() -> Self { <Self as ::num_traits::FloatConst>::FRAC_PI_6() }
            fn frac_pi_8() -> Self { <Self as ::num_traits::FloatConst>::FRAC_PI_8() }
            fn frac_1_pi() -> Self { <Self as ::num_traits::FloatConst>::FRAC_1_PI() }
            fn frac_2_pi() -> Self { <Self as ::num_traits::FloatConst>::FRAC_2_PI() }
            fn frac_2_sqrt_pi() -> Self { <Self as ::num_traits::FloatConst>::FRAC_2_SQRT_PI() }
            fn e() -> Self { <Self as ::num_traits::FloatConst>::E() }
            fn log2_e() -> Self { <Self as ::num_traits::FloatConst>::LOG2_E() }
            fn log10_e() -> Self { <Self as ::num_traits::FloatConst>::LOG10_E() }
            fn ln_2() -> Self { <Self as ::num_traits::FloatConst>::LN_2() }
            fn ln_10() -> Self { <Self as ::num_traits::FloatConst>::LN_10() }
        }

        impl<$($gen)*> $crate::Scalar for $t {
            #[inline(always)]
            fn cst(c: f64) -> Self {
                <$t as $crate::chain::Chain>::constant(<<$t as $crate::chain::Chain>::Primal as $crate::Scalar>::cst(c))
            }
            #[inline]
            fn value_f64(&self) -> f64 {
                let v = $crate::Scalar::value_f64(&$crate::chain::Chain::primal(self));
                $crate::facade::observe(self, v.to_bits(), |x: &$t| $crate::Scalar::untracked_f64(x).to_bits());
                v
            }
            #[inline]
            fn untracked_f64(&self) -> f64 {
                $crate::Scalar::untracked_f64(&$crate::chain::Chain::primal(self))
            }
            #[inline]
            fn derivative_depth() -> usize {
                <<$t as $crate::chain::Chain>::Primal as $crate::Scalar>::derivative_depth() + 1
            }
            #[inline]
            fn nan_everywhere() -> Self {
                <$t as $crate::chain::Chain>::nan_everywhere()
            }
            #[inline]
            fn is_exact_zero(&self) -> bool {
                $crate::chain::Chain::is_constant(self)
                    && $crate::Scalar::is_exact_zero(&$crate::chain::Chain::primal(self))
            }
            #[inline]
            fn is_constant(&self) -> bool {
                $crate::chain::Chain::is_constant(self)
            }
            #[inline(always)]
            fn all_finite(&self) -> bool {
                $crate::chain::Chain::all_finite(self)
            }
            fn inner_derivatives<G: $crate::Function + ?Sized>(
                g: &G,
                x: &[Self],
                params: &[Self],
        direction: Option<&[Self]>,
            ) -> Vec<Self> {
                <$t as $crate::chain::Chain>::inner_derivatives(g, x, params, direction)
            }
            fn custom_level(
                rule: &$crate::rules::CustomRule,
                k: usize,
                x: &[Self],
                out: &mut [Self],
            ) {
                <$t as $crate::chain::Chain>::custom_level(rule, k, x, out)
            }
            fn block(
                op: &$crate::rules::BlockOp,
                x: &[Self],
            ) -> Result<Vec<Self>, $crate::rules::BlockError> {
                <$t as $crate::chain::Chain>::block(op, x)
            }
        }
    };
}

/// Reports to `x`'s engine that a decision was taken from its value; `probe` computes
/// what the decision saw, for `x` now and for other values later.
#[doc(hidden)]
#[inline]
pub fn observe<X: Chain>(x: &X, seen: u64, probe: fn(&X) -> u64) {
    x.observe(Decision::Inspect { seen, probe });
}

/// Reports to `x`'s engine a decision taken from `x` and `others` together (an `approx`
/// comparison) whose outcome was `outcome`; `probe` recomputes it from plain values.
#[doc(hidden)]
#[inline]
pub fn observe_joint<X: Chain>(
    x: &X,
    others: &[X],
    param: u64,
    outcome: bool,
    probe: fn(&[f64], u64) -> u64,
) {
    x.observe(Decision::Joint {
        others,
        param,
        seen: outcome as u64,
        probe,
    });
}

/// `approx::AbsDiffEq::abs_diff_eq` on plain values `[a, b, epsilon]`, for guards.
#[doc(hidden)]
pub fn abs_diff_eq_probe(v: &[f64], _: u64) -> u64 {
    approx::AbsDiffEq::abs_diff_eq(&v[0], &v[1], v[2]) as u64
}

/// `approx::RelativeEq::relative_eq` on plain values `[a, b, epsilon, max_relative]`.
#[doc(hidden)]
pub fn relative_eq_probe(v: &[f64], _: u64) -> u64 {
    approx::RelativeEq::relative_eq(&v[0], &v[1], v[2], v[3]) as u64
}

/// `approx::UlpsEq::ulps_eq` on plain values `[a, b, epsilon]` with `max_ulps`.
#[doc(hidden)]
pub fn ulps_eq_probe(v: &[f64], max_ulps: u64) -> u64 {
    approx::UlpsEq::ulps_eq(&v[0], &v[1], v[2], max_ulps as u32) as u64
}

/// One number summarising a conversion to an integer, for guards, without collisions: a
/// converted float is an integer an `f64` holds exactly, so its `f64` bits identify it, and
/// `None` is a NaN pattern no integer has.
#[doc(hidden)]
#[inline]
pub fn integer_summary<I: num_traits::ToPrimitive>(v: Option<I>) -> u64 {
    v.and_then(|k| k.to_f64())
        .map_or(f64::NAN.to_bits(), |k| (k + 0.0).to_bits())
}
