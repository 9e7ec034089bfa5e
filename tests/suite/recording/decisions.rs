//! Which operations are decisions a recording guards (`src/recording.rs`, reported by the
//! trait façade, `src/facade.rs`, and the block operations), beyond the kinds `guards.rs`
//! covers in every mode: the façade's comparisons, predicates and conversions (integer
//! conversions, `integer_decode`, `partial_cmp` with a NaN, `max_by`, `sort_by`, `is_one`,
//! `classify`, `copysign`, `convert_unchecked`, `clamp`, `try_sqrt`), block failures with
//! faer inputs or from a NaN, and decisions inside nested derivatives. Each function is
//! recorded on one side of its decision and replayed on the other (gradient, dense and
//! sparse Hessians, HVP, Lagrangian) against a fresh evaluation.

// `|x| f(x)` picks the scalar type each API needs, as user code does.
#![allow(clippy::redundant_closure)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::LazyLock;

use mixad::forward::{self, Dual};
use mixad::reverse::{self, Var};
use mixad::rules::CustomRule;
use mixad::Scalar;
use nalgebra::DMatrix;
use num_traits::{Float, Zero};

use crate::common::{dense, quiet_panics, same, same_all};

// ---------------------------------------------------------------------------------------
// The harness: replays against fresh evaluations.
// ---------------------------------------------------------------------------------------

/// Every replaying mode of `$f` recorded at `$a`, called at `$b`, against fresh
/// evaluations at `$b`; returns how many modes re-recorded.
macro_rules! replays_fresh {
    ($f:path, $a:expr, $b:expr) => {{
        let a: &[f64] = &$a;
        let b: &[f64] = &$b;
        let n = b.len();
        let what = |mode: &str| {
            format!(
                "{} recorded at {a:?}, called at {b:?}: {mode}",
                stringify!($f)
            )
        };
        let (v, g, h) = mixad::value_gradient_hessian(|x| $f(x), b);
        let (v_fresh, g_fresh) = mixad::value_and_gradient(|x| $f(x), b);
        same(v, v_fresh, &what("fresh value (hessian vs gradient)"));
        same_all(&g, &g_fresh, &what("fresh gradient (hessian vs gradient)"));
        let h = dense(&h);
        let mut rerecords = 0;
        let mut rec = mixad::record(|x| $f(x), a);
        let (rv, rg) = rec.value_and_gradient(b);
        same(rv, v, &what("recording value"));
        same_all(&rg, &g, &what("recording gradient"));
        rerecords += rec.rerecord_count();
        let mut prepared = mixad::record(|x| $f(x), a);
        let (pv, pg, ph) = prepared.value_gradient_hessian(b);
        same(pv, v, &what("recorded value"));
        same_all(&pg, &g, &what("recorded gradient"));
        same_all(&dense(&ph), &h, &what("recorded Hessian"));
        rerecords += prepared.rerecord_count();
        let mut prepared = mixad::record(|x| $f(x), a);
        for j in 0..n {
            let e: Vec<f64> = (0..n).map(|i| (i == j) as u8 as f64).collect();
            let (hv_value, hv_grad, hv) = prepared.value_gradient_hvp(b, &e);
            same(hv_value, v, &what("recorded HVP value"));
            same_all(&hv_grad, &g, &what("recorded HVP gradient"));
            let column: Vec<f64> = (0..n).map(|i| h[i * n + j]).collect();
            same_all(&hv, &column, &what("recorded HVP"));
            let (fv, _, fhv) = mixad::value_gradient_hvp(|x| $f(x), b, &e);
            same(fv, v, &what("fresh HVP value"));
            same_all(&fhv, &column, &what("fresh HVP"));
        }
        rerecords += prepared.rerecord_count();
        let mut plan = mixad::record(|x| $f(x), a);
        let (sv, sg, sh) = plan.value_gradient_sparse_hessian(b);
        same(sv, v, &what("sparse value"));
        same_all(&sg, &g, &what("sparse gradient"));
        same_all(&dense(&sh.to_dense()), &h, &what("sparse Hessian"));
        rerecords += plan.rerecord_count();
        let mut lagrangian =
            mixad::record_lagrangian(|x| $f(x), |x| vec![$f(x)], a, Default::default());
        let lh = lagrangian.lagrangian_hessian(b, 0.5, &[2.0]);
        let want: Vec<f64> = h.iter().map(|v| 2.5 * v).collect();
        same_all(&dense(&lh.to_dense()), &want, &what("Lagrangian Hessian"));
        rerecords
    }};
}

macro_rules! assert_guarded {
    ($f:path, $a:expr, $b:expr) => {{
        let a: Vec<f64> = $a.to_vec();
        let b: Vec<f64> = $b.to_vec();
        assert!(
            replays_fresh!($f, a, b) > 0,
            "{}: no re-recording from {a:?} to {b:?}",
            stringify!($f)
        );
        assert!(
            replays_fresh!($f, b, a) > 0,
            "{}: no re-recording from {b:?} to {a:?}",
            stringify!($f)
        );
        assert_eq!(
            replays_fresh!($f, a, a),
            0,
            "{}: re-recorded at its own point",
            stringify!($f)
        );
    }};
}

/// The recorded gradient at `b` (recorded at `a`) against a fresh gradient at `b`.
macro_rules! recorded_vs_fresh {
    ($f:path, $a:expr, $b:expr) => {{
        let a: &[f64] = &$a;
        let b: &[f64] = &$b;
        let fresh = mixad::value_and_gradient(|x| $f(x), b);
        let mut rec = mixad::record(|x| $f(x), a);
        let replayed = rec.value_and_gradient(b);
        (fresh, replayed, rec.rerecord_count())
    }};
}
// ---------------------------------------------------------------------------------------
// Integer conversions: `to_i64` and every conversion routed through it (`to_i32`,
// `to_i16`, `to_i8`, `to_isize`, `to_i128`, `NumCast` into signed integers) tell
// `Some(-1)` from `None` in their guard (once both summarised as `u64::MAX`).
// ---------------------------------------------------------------------------------------

fn branch_on_to_i32<S: Scalar>(v: &[S]) -> S {
    match v[0].to_i32() {
        Some(k) => v[1] * S::cst(k as f64) + v[0],
        None => v[1] * v[1],
    }
}

#[test]
fn to_i32_none_vs_minus_one_is_guarded() {
    // Recorded at x0 = -1.5 (to_i32 = Some(-1)), called at x0 = 1e19 (to_i32 = None).
    let ((fv, fg), (rv, rg), rerecords) =
        recorded_vs_fresh!(branch_on_to_i32, [-1.5, 2.0], [1e19, 2.0]);
    assert_eq!(fg, vec![0.0, 4.0], "fresh: the None branch");
    same(rv, fv, "Recorded value (replayed the Some(-1) branch)");
    same_all(&rg, &fg, "Recorded gradient (replayed the Some(-1) branch)");
    assert!(rerecords > 0, "no re-recording");
}

// The reviewed part that holds: Some(k) for other k, and the round trip.
#[test]
fn to_i32_other_values_are_guarded() {
    assert_guarded!(branch_on_to_i32, [2.5, 2.0], [1e19, 2.0]);
    assert_guarded!(branch_on_to_i32, [-2.5, 2.0], [-1.5, 2.0]);
}

// ---------------------------------------------------------------------------------------
// `integer_decode`: its guard tells every decode apart (a summary
// `mantissa ^ exponent << 48 ^ sign << 40` once let the mantissa's bits 40..52 collide
// with the sign).
// ---------------------------------------------------------------------------------------

fn branch_on_decoded_sign<S: Scalar>(v: &[S]) -> S {
    let (_, _, sign) = Float::integer_decode(v[0]);
    if sign > 0 {
        v[0] * v[1]
    } else {
        v[1] * v[1]
    }
}

/// A number whose `integer_decode` differs from 1.5's (negative sign) but whose summary
/// `mantissa ^ (exponent as u16 as u64) << 48 ^ (sign as u8 as u64) << 40` is equal.
fn decode_twin_of_one_and_a_half() -> f64 {
    let m = 0x18_0000_0000_0000u64 ^ (((1u8 ^ 0xFFu8) as u64) << 40);
    -(m as f64) * 2f64.powi(-52)
}

#[test]
fn integer_decode_sign_is_guarded() {
    let y = decode_twin_of_one_and_a_half();
    assert_eq!(Float::integer_decode(y).2, -1);
    let ((fv, fg), (rv, rg), _) = recorded_vs_fresh!(branch_on_decoded_sign, [1.5, 2.0], [y, 2.0]);
    assert_eq!(fg, vec![0.0, 4.0]);
    same(rv, fv, "Recorded value");
    same_all(
        &rg,
        &fg,
        "Recorded gradient (replayed the positive-sign branch)",
    );
}

#[test]
fn integer_decode_ordinary_flips_are_guarded() {
    assert_guarded!(branch_on_decoded_sign, [1.5, 2.0], [-1.5, 2.0]);
}

// ---------------------------------------------------------------------------------------
// Block failures: faer `Mat` inputs, a NaN entry, inside nested derivatives.
// ---------------------------------------------------------------------------------------

fn faer_cholesky_solve_or_fallback<S: Scalar>(v: &[S]) -> S {
    let a = faer::Mat::from_fn(2, 2, |i, j| match (i, j) {
        (0, 0) => v[0],
        (1, 1) => S::cst(2.0),
        _ => v[1],
    });
    let b = faer::Col::from_fn(2, |i| if i == 0 { v[1] } else { S::one() });
    match mixad::linalg::cholesky_solve(&a, &b) {
        Ok(y) => y[0] * y[1] + y[0],
        Err(_) => v[0] * v[1] * v[1],
    }
}

fn faer_log_abs_det_or_fallback<S: Scalar>(v: &[S]) -> S {
    let a = faer::Mat::from_fn(2, 2, |i, j| match (i, j) {
        (0, 0) => v[0],
        (0, 1) => v[1],
        _ => S::one(),
    });
    match mixad::linalg::log_abs_det(&a) {
        Ok(ld) => ld * v[0],
        Err(_) => v[0] * v[1],
    }
}

fn faer_inverse_or_fallback<S: Scalar>(v: &[S]) -> S {
    let a = faer::Mat::from_fn(2, 2, |i, j| match (i, j) {
        (0, 0) => v[0],
        (1, 1) => v[1],
        _ => S::one(),
    });
    match mixad::linalg::inverse(&a) {
        Ok(inv) => inv[(0, 0)] + S::cst(3.0) * inv[(0, 1)] * inv[(1, 1)],
        Err(_) => Float::exp(v[0] - v[1]),
    }
}

/// A NaN entry makes Cholesky fail (NaN pivot) and the fallback runs.
fn cholesky_nan_or_fallback<S: Scalar>(v: &[S]) -> S {
    let d = Float::sqrt(v[0]); // NaN for x0 < 0
    let a = DMatrix::from_row_slice(2, 2, &[d + S::cst(3.0), v[1], v[1], S::cst(2.0)]);
    match mixad::linalg::cholesky(&a) {
        Ok(l) => l[(1, 1)] * v[1],
        Err(_) => v[1] * v[1],
    }
}

#[test]
fn faer_matrix_inputs_are_guarded() {
    assert_guarded!(faer_cholesky_solve_or_fallback, [0.5, 0.25], [0.5, 1.5]);
    assert_guarded!(faer_log_abs_det_or_fallback, [0.7, 0.7], [0.7, 0.2]);
    assert_guarded!(faer_inverse_or_fallback, [2.0, 0.5], [2.0, 0.75]);
}

#[test]
fn nan_making_a_block_fail_is_guarded() {
    let ((fv, fg), (rv, rg), n) =
        recorded_vs_fresh!(cholesky_nan_or_fallback, [1.0, 0.5], [-1.0, 0.5]);
    assert_eq!(fg, vec![0.0, 1.0]);
    same(rv, fv, "value");
    same_all(&rg, &fg, "gradient");
    assert_eq!(n, 1);
    let ((fv, fg), (rv, rg), n) =
        recorded_vs_fresh!(cholesky_nan_or_fallback, [-1.0, 0.5], [1.0, 0.5]);
    same(rv, fv, "value back");
    same_all(&rg, &fg, "gradient back");
    assert_eq!(n, 1);
}

fn log_det_or_fallback_generic<S: Scalar>(v: &[S]) -> S {
    let one = S::one();
    let a = DMatrix::from_row_slice(2, 2, &[one, v[0], v[0], one]);
    match mixad::linalg::log_det_spd(&a) {
        Ok(ld) => ld * v[1],
        Err(_) => v[0] * v[0] * v[1],
    }
}

/// A block failure inside a nested derivative inside a recording: forward over reverse
/// (`Dual<Var<f64>>`) and reverse over reverse (`Var<Var<f64>>`).
#[test]
fn block_failure_inside_nested_derivatives_in_a_recording() {
    // forward over reverse: ∂f/∂x0 through jvp, recorded.
    let fr = |x: &[Var<f64>]| {
        let dir = [Var::constant(1.0), Var::constant(0.0)];
        forward::jvp(|y| vec![log_det_or_fallback_generic(y)], x, &dir).1[0]
    };
    // reverse over reverse: ∂f/∂x0 through an inner gradient, recorded.
    let rr = |x: &[Var<f64>]| reverse::gradient(|y| log_det_or_fallback_generic(y), x)[0];
    for (a, b) in [([1.5, 2.0], [0.5, 2.0]), ([0.5, 2.0], [1.5, 2.0])] {
        for (name, f) in [("fr", &fr as &dyn Fn(&[Var<f64>]) -> Var<f64>), ("rr", &rr)] {
            let fresh = mixad::value_and_gradient(|x| f(x), &b);
            let mut rec = mixad::record(|x| f(x), &a);
            let got = rec.value_and_gradient(&b);
            same(got.0, fresh.0, &format!("{name} value {a:?}->{b:?}"));
            same_all(&got.1, &fresh.1, &format!("{name} gradient {a:?}->{b:?}"));
            assert!(rec.rerecord_count() > 0, "{name} re-records");
            // And the recorded Hessian of the nested derivative.
            let (_, _, h) = mixad::value_gradient_hessian(|x| f(x), &b);
            let mut p = mixad::record(|x| f(x), &a);
            same_all(
                &dense(&p.hessian(&b)),
                &dense(&h),
                &format!("{name} recorded Hessian"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Comparisons, predicates and conversions.
// ---------------------------------------------------------------------------------------

fn branch_on_nan_compare<S: Scalar>(v: &[S]) -> S {
    let q = Float::ln(v[0]); // NaN for x0 < 0
    if q < v[1] || q.partial_cmp(&v[1]).is_none() {
        v[1] * v[1]
    } else {
        v[0] * v[1]
    }
}

fn branch_on_max_by<S: Scalar>(v: &[S]) -> S {
    let best = v
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap())
        .unwrap()
        .0;
    v[best] * v[best] * S::cst(best as f64 + 1.0)
}

fn branch_on_sort<S: Scalar>(v: &[S]) -> S {
    let mut w = v.to_vec();
    w.sort_by(|a, b| a.partial_cmp(b).unwrap());
    w[0] * S::cst(3.0) + w[1] * w[2]
}

fn branch_on_is_one<S: Scalar>(v: &[S]) -> S {
    if (v[0] * v[1]).is_one() {
        v[0] + v[1]
    } else {
        v[0] * v[0] * v[1]
    }
}

fn branch_on_classify<S: Scalar>(v: &[S]) -> S {
    let t = v[0] * S::cst(1e-310);
    if Float::classify(t) == std::num::FpCategory::Subnormal {
        v[0] * v[1]
    } else {
        v[1] * v[1]
    }
}

fn branch_on_copysign<S: Scalar>(v: &[S]) -> S {
    let c = nalgebra::RealField::copysign(v[1], v[0]);
    c * v[1] * v[1] + v[0]
}

fn branch_on_to_u8<S: Scalar>(v: &[S]) -> S {
    match v[0].to_u8() {
        Some(k) => v[1] * S::cst(k as f64),
        None => v[1] * v[1] * v[0],
    }
}

fn branch_on_to_usize<S: Scalar>(v: &[S]) -> S {
    let k = v[0].to_usize().unwrap_or(7).min(5);
    Float::powi(v[1], k as i32 + 1)
}

fn branch_on_try_convert<S: Scalar>(v: &[S]) -> S {
    let plain: f64 = nalgebra::convert_unchecked(v[0]);
    if plain > 0.5 {
        v[0] * v[1]
    } else {
        v[1] * v[1]
    }
}

fn branch_on_clamp<S: Scalar>(v: &[S]) -> S {
    let c = Float::clamp(v[0], S::zero(), S::one());
    c * v[1] + v[0] * v[0]
}

fn branch_on_try_sqrt<S: Scalar>(v: &[S]) -> S {
    match nalgebra::ComplexField::try_sqrt(v[0]) {
        Some(r) => r * v[1],
        None => v[1] * v[1],
    }
}

#[test]
fn comparisons_predicates_and_conversions_are_guarded() {
    assert_guarded!(branch_on_nan_compare, [2.0, 0.1], [-1.0, 0.1]);
    assert_guarded!(branch_on_nan_compare, [2.0, 0.1], [2.0, 1.0]);
    assert_guarded!(branch_on_max_by, [1.0, 2.0, 0.5], [3.0, 2.0, 0.5]);
    assert_guarded!(branch_on_sort, [1.0, 2.0, 3.0], [3.0, 2.0, 1.0]);
    assert_guarded!(branch_on_is_one, [0.5, 2.0], [0.5, 3.0]);
    assert_guarded!(branch_on_classify, [1.0, 2.0], [1e10, 2.0]);
    assert_guarded!(branch_on_copysign, [1.0, 2.0], [-1.0, 2.0]);
    assert_guarded!(branch_on_to_u8, [3.5, 2.0], [-3.5, 2.0]);
    assert_guarded!(branch_on_to_u8, [3.5, 2.0], [300.0, 2.0]);
    assert_guarded!(branch_on_to_usize, [2.5, 1.5], [1e30, 1.5]);
    assert_guarded!(branch_on_try_convert, [1.0, 2.0], [0.25, 2.0]);
    assert_guarded!(branch_on_clamp, [0.5, 2.0], [1.5, 2.0]);
    assert_guarded!(branch_on_try_sqrt, [0.5, 2.0], [-0.5, 2.0]);
}

/// Decisions on `Dual<Var<f64>>` (forward over reverse) inside a recording.
fn fr_decides<S: Scalar>(v: &[S]) -> S {
    let x0 = v[0];
    let x1 = v[1];
    let d = forward::derivative(
        |t: Dual<S>| {
            let u = t * Dual::constant(x1);
            if u.value_f64() > 1.0
                || format!("{u}").starts_with('-')
                || (u - Dual::constant(S::one())).is_zero()
            {
                u * u
            } else {
                Float::sin(u)
            }
        },
        x0,
    );
    d * x1
}

#[test]
fn decisions_on_forward_over_reverse_in_a_recording_are_guarded() {
    for (a, b) in [
        ([0.5, 1.0], [2.0, 1.0]),
        ([2.0, 1.0], [0.5, 1.0]),
        ([0.5, 1.0], [-0.5, 1.0]),
        ([0.5, 1.0], [1.0, 1.0]),
    ] {
        let ((fv, fg), (rv, rg), n) = recorded_vs_fresh!(fr_decides, a, b);
        same(rv, fv, &format!("{a:?}->{b:?} value"));
        same_all(&rg, &fg, &format!("{a:?}->{b:?} gradient"));
        assert!(n > 0);
    }
}

// ---------------------------------------------------------------------------------------
// A rule panicking at its value level, caught, in a nested context.
// ---------------------------------------------------------------------------------------

static CUBE_ON_POSITIVES: LazyLock<CustomRule> = LazyLock::new(|| {
    CustomRule::scalar("cube_on_positives_review", 1, 3, |x, k, out| {
        assert!(x[0] >= 0.0, "negative");
        out[0] = match k {
            0 => x[0].powi(3),
            1 => 3.0 * x[0] * x[0],
            2 => 6.0 * x[0],
            _ => 6.0,
        };
    })
});

fn rule_or_fallback<S: Scalar>(v: &[S]) -> S {
    match catch_unwind(AssertUnwindSafe(|| CUBE_ON_POSITIVES.call1(v[0]))) {
        Ok(c) => c * v[1],
        Err(_) => Float::sin(v[0]) * v[1] * v[1],
    }
}

#[test]
fn caught_rule_panic_inside_nested_forward_in_a_recording() {
    quiet_panics(|| {
        let f = |x: &[Var<f64>]| {
            let dir = [Var::constant(1.0), Var::constant(0.0)];
            forward::jvp(|y| vec![rule_or_fallback(y)], x, &dir).1[0]
        };
        for (a, b) in [([0.5, 2.0], [-0.5, 2.0]), ([-0.5, 2.0], [0.5, 2.0])] {
            let fresh = mixad::value_and_gradient(|x| f(x), &b);
            let mut rec = mixad::record(|x| f(x), &a);
            let got = rec.value_and_gradient(&b);
            same(got.0, fresh.0, "value");
            same_all(&got.1, &fresh.1, "gradient");
        }
    });
}
