//! NaNs from more sources (`inf − inf`, `0·∞`, `powf` of a negative base, a NaN inside a
//! block operation, one multiplied by zero): never with finite derivatives, through every
//! API, zero directions and Lagrangians included (`src/chain.rs`'s NaN convention).

// `x − x`: a NaN built from variables.
#![allow(clippy::eq_op)]

use mixad::forward::{self, Dual};
use mixad::reverse;
use mixad::Scalar;
use num_traits::Float;

use crate::common::{all_nan, dense};

fn inf_minus_inf<S: Scalar>(x: &[S]) -> S {
    let big = x[0] * S::cst(1e308) * S::cst(10.0); // +inf
    (big - big) + x[1] * x[2]
}

fn zero_times_inf<S: Scalar>(x: &[S]) -> S {
    (x[0] - S::one()) * S::infinity() + x[1] * x[2]
}

fn powf_negative_base<S: Scalar>(x: &[S]) -> S {
    Float::powf(x[0] - S::cst(2.0), x[1] * S::cst(0.25)) + x[2] * x[2]
}

fn norm_with_nan<S: Scalar>(x: &[S]) -> S {
    let v = vec![x[0], Float::sqrt(x[1] - S::cst(5.0)), x[2]];
    mixad::linalg::norm(&v) * x[0]
}

fn nan_via_block_then_dropped_by_mul_zero<S: Scalar>(x: &[S]) -> S {
    let v = vec![x[0], Float::ln(-x[1]), x[2]];
    mixad::linalg::dot(&v, &v) * S::zero() + x[0] * x[1] * x[2]
}

macro_rules! assert_nan_everywhere {
    ($f:path) => {{
        let x = [1.0, 2.0, 3.0];
        let what = stringify!($f);
        let (v, g) = mixad::value_and_gradient(|x| $f(x), &x);
        assert!(v.is_nan(), "{what}: value {v}");
        all_nan(&g, &format!("{what}: reverse gradient"));
        all_nan(
            &forward::gradient(|x| $f(x), &x),
            &format!("{what}: forward gradient"),
        );
        let (_, g, h) = mixad::value_gradient_hessian(|x| $f(x), &x);
        all_nan(&g, &format!("{what}: Hessian's gradient"));
        all_nan(&dense(&h), &format!("{what}: dense Hessian"));
        all_nan(
            mixad::sparse_hessian(|x| $f(x), &x).values(),
            &format!("{what}: sparse"),
        );
        all_nan(
            &mixad::hvp(|x| $f(x), &x, &[0.0, 0.0, 0.0]),
            &format!("{what}: hvp zero dir"),
        );
        all_nan(
            &mixad::hvp(|x| $f(x), &x, &[0.0, 0.0, 1.0]),
            &format!("{what}: hvp"),
        );
        let mut prepared = mixad::record(|x| $f(x), &[5.0, 6.0, 7.0]);
        all_nan(
            &prepared.hvp(&x, &[0.0, 0.0, 0.0]),
            &format!("{what}: recorded hvp zero dir"),
        );
        all_nan(
            &prepared.hvp(&x, &[0.0, 0.0, 1.0]),
            &format!("{what}: recorded hvp"),
        );
        let mut plan = mixad::record(|x| $f(x), &[5.0, 6.0, 7.0]);
        all_nan(
            plan.sparse_hessian(&x).values(),
            &format!("{what}: recorded sparse Hessian"),
        );
        let mut rec = mixad::record(|x| $f(x), &[5.0, 6.0, 7.0]);
        all_nan(&rec.gradient(&x), &format!("{what}: recorded gradient"));
        let ff =
            forward::second_derivative(|t| $f(&[t, Dual::constant(Dual::constant(2.0)), t]), 1.0);
        assert!(ff.is_nan(), "{what}: forward over forward {ff}");
        let rr = reverse::gradient(|y| reverse::gradient(|z| $f(z), y)[2], &x);
        all_nan(&rr, &format!("{what}: reverse over reverse"));
        let fr = forward::jvp(|y| reverse::gradient(|z| $f(z), y), &x, &[0.0, 0.0, 1.0]).1;
        all_nan(&fr, &format!("{what}: forward over reverse"));
        let lh =
            mixad::sparse::lagrangian_hessian(|x| x[2] * x[2], |x| vec![$f(x)], &x, 1.0, &[0.5]);
        all_nan(
            lh.values(),
            &format!("{what}: Lagrangian, NaN constraint weighted"),
        );
    }};
}

#[test]
fn more_nan_sources_never_come_with_finite_derivatives() {
    assert_nan_everywhere!(inf_minus_inf);
    assert_nan_everywhere!(zero_times_inf);
    assert_nan_everywhere!(powf_negative_base);
    assert_nan_everywhere!(norm_with_nan);
    assert_nan_everywhere!(nan_via_block_then_dropped_by_mul_zero);
}
