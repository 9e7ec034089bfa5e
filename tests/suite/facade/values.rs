//! Operations of the trait façade (`src/facade.rs`) whose value at an AD type must equal
//! `f64`'s (integer conversions, `abs_sub`, `clamp`, `ComplexField::argument`), at NaN, `-0`
//! and ordinary values: a value that differs means the derivative returned is another
//! function's.

use mixad::forward;
use mixad::Scalar;
use num_traits::Float;

use crate::common::{all_nan, same};

/// The value of generic `f` at f64 and through reverse, forward and Hessian modes.
macro_rules! values_agree_with_f64 {
    ($f:path, $x:expr) => {{
        let x: Vec<f64> = $x.to_vec();
        let plain = $f(&x[..]);
        let (rv, rg) = mixad::value_and_gradient(|x| $f(x), &x);
        let (dv, _) = forward::jvp(|y| vec![$f(y)], &x, &vec![1.0; x.len()]);
        let (hv, _, _) = mixad::value_gradient_hvp(|x| $f(x), &x, &vec![1.0; x.len()]);
        let what = format!("{} at {:?}", stringify!($f), x);
        same(rv, plain, &format!("{what}: reverse value vs f64"));
        same(dv[0], plain, &format!("{what}: forward value vs f64"));
        same(hv, plain, &format!("{what}: hvp value vs f64"));
        if plain.is_nan() {
            all_nan(&rg, &format!("{what}: gradient of a NaN f64 value"));
        }
    }};
}

fn via_to_i128<S: Scalar>(v: &[S]) -> S {
    match v[0].to_i128() {
        Some(k) => v[0] * S::cst((k % 7) as f64 + 1.0),
        None => v[0] * v[0],
    }
}

fn via_to_u128<S: Scalar>(v: &[S]) -> S {
    match v[0].to_u128() {
        Some(_) => v[0] * S::cst(2.0),
        None => v[0] * v[0],
    }
}

#[test]
fn to_i128_and_to_u128_agree_with_f64() {
    values_agree_with_f64!(via_to_i128, [1e20]);
    values_agree_with_f64!(via_to_u128, [1e20]);
}

fn via_abs_sub<S: Scalar>(v: &[S]) -> S {
    #[allow(deprecated)]
    let d = Float::abs_sub(Float::sqrt(v[0] - S::cst(5.0)), v[1]);
    d + v[0] * v[1]
}

#[test]
fn abs_sub_of_nan_agrees_with_f64() {
    values_agree_with_f64!(via_abs_sub, [1.0, 2.0]);
}

fn via_real_field_clamp<S: Scalar>(v: &[S]) -> S {
    let c = nalgebra::RealField::clamp(Float::ln(v[0]), S::zero(), S::one());
    c * v[1] + v[1]
}

#[test]
fn real_field_clamp_of_nan_agrees_with_f64() {
    values_agree_with_f64!(via_real_field_clamp, [-1.0, 2.0]);
}

fn via_argument<S: Scalar>(v: &[S]) -> S {
    let z = v[0] * S::zero() * S::cst(-1.0); // −0.0 for x0 > 0
    nalgebra::ComplexField::argument(z) + v[0]
}

#[test]
fn complex_argument_of_negative_zero_agrees_with_f64() {
    values_agree_with_f64!(via_argument, [1.0]);
}

#[test]
fn clamp_and_abs_sub_agree_with_f64_on_ordinary_values() {
    values_agree_with_f64!(via_real_field_clamp, [2.0, 2.0]);
    values_agree_with_f64!(via_real_field_clamp, [9.0, 2.0]);
    values_agree_with_f64!(via_abs_sub, [30.0, 2.0]);
    values_agree_with_f64!(via_to_i128, [1e10]);
}
