//! The guards of a recording (`src/recording.rs`, the replay of `src/reverse/`): each
//! decision a replay must guard (a block operation's `Err`, a custom rule's panic caught by
//! the function, `approx` comparisons, `is_zero`, `value_f64`, printed values), recorded on
//! one side and called on the other, gives what a fresh evaluation gives in every replaying
//! mode: a recording's gradient, dense Hessian (serial and on two threads), HVP and sparse
//! Hessian, a Lagrangian recording's Hessian and a recording of a nested forward derivative;
//! in both directions. More decisions, through fewer modes: `decisions.rs`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::LazyLock;

use mixad::forward::{self, Dual};
use mixad::reverse::{self, Var};
use mixad::rules::CustomRule;
use mixad::Scalar;
use nalgebra::DMatrix;
use num_traits::{Float, One, Zero};

use crate::common::{dense, quiet_panics};

// ---------------------------------------------------------------------------------------
// The harness: every replaying mode against a fresh evaluation.
// ---------------------------------------------------------------------------------------

/// `got` equals `want` to rounding (NaN matches NaN only).
#[track_caller]
fn same(got: f64, want: f64, what: &str) {
    let ok = if want.is_nan() {
        got.is_nan()
    } else {
        (got - want).abs() <= 1e-12 * (1.0 + want.abs())
    };
    assert!(ok, "{what}: got {got}, want {want}");
}

#[track_caller]
fn same_all(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        same(g, w, &format!("{what}[{i}]"));
    }
}

/// Checks every replaying mode of the generic function `$f`, recorded at `$a` and called
/// at `$b`, against fresh evaluations at `$b`; returns how many modes re-recorded.
macro_rules! assert_replays_fresh {
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

        // A recording's gradient.
        let mut rec = mixad::record(|x| $f(x), a);
        let (rv, rg) = rec.value_and_gradient(b);
        same(rv, v, &what("recording value"));
        same_all(&rg, &g, &what("recording gradient"));
        rerecords += rec.rerecord_count();

        // A recording's dense Hessian, serial and on two threads; its HVP and gradient.
        for parallelism in [
            mixad::Parallelism::Serial,
            mixad::Parallelism::Threads(std::num::NonZeroUsize::new(2).unwrap()),
        ] {
            let options = mixad::Options {
                parallelism,
                ..Default::default()
            };
            let mut prepared = mixad::record_with(|x| $f(x), a, options);
            let (pv, pg, ph) = prepared.value_gradient_hessian(b);
            same(pv, v, &what("recorded Hessian value"));
            same_all(&pg, &g, &what("recorded Hessian gradient"));
            same_all(&dense(&ph), &h, &what("recorded Hessian"));
            let mut prepared = mixad::record_with(|x| $f(x), a, options);
            for j in 0..n {
                let e: Vec<f64> = (0..n).map(|i| (i == j) as u8 as f64).collect();
                let (hv_value, hv_grad, hv) = prepared.value_gradient_hvp(b, &e);
                same(hv_value, v, &what("recorded HVP value"));
                same_all(&hv_grad, &g, &what("recorded HVP gradient"));
                let column: Vec<f64> = (0..n).map(|i| h[i * n + j]).collect();
                same_all(&hv, &column, &what("recorded HVP"));
                same_all(&mixad::hvp(|x| $f(x), b, &e), &column, &what("fresh HVP"));
            }
            let mut prepared = mixad::record_with(|x| $f(x), a, options);
            let mut pg = vec![0.0; n];
            same(
                prepared.value_and_gradient_into(b, &mut pg),
                v,
                &what("recorded gradient value"),
            );
            same_all(&pg, &g, &what("recorded gradient"));
            rerecords += prepared.rerecord_count();
        }

        // A recording's sparse Hessian, and a Lagrangian recording (f as objective and as
        // a constraint).
        for parallelism in [mixad::Parallelism::Serial, mixad::Parallelism::Auto] {
            let options = mixad::Options {
                parallelism,
                ..Default::default()
            };
            let mut plan = mixad::record_with(|x| $f(x), a, options);
            let (sv, sg, sh) = plan.value_gradient_sparse_hessian(b);
            same(sv, v, &what("sparse value"));
            same_all(&sg, &g, &what("sparse gradient"));
            same_all(&dense(&sh.to_dense()), &h, &what("sparse Hessian"));
            let fresh_sparse = mixad::sparse_hessian(|x| $f(x), b);
            same_all(
                &dense(&fresh_sparse.to_dense()),
                &h,
                &what("fresh sparse Hessian"),
            );
            let mut lagrangian = mixad::record_lagrangian(|x| $f(x), |x| vec![$f(x)], a, options);
            let lh = lagrangian.lagrangian_hessian(b, 0.5, &[2.0]);
            let want: Vec<f64> = h.iter().map(|v| 2.5 * v).collect();
            same_all(&dense(&lh.to_dense()), &want, &what("Lagrangian Hessian"));
        }

        // A nested derivative, recorded: the directional derivative of f along e₀ by
        // forward mode over the recording's variables.
        let e0: Vec<f64> = (0..n).map(|i| (i == 0) as u8 as f64).collect();
        let nested = |x: &[Var<f64>]| {
            let dir: Vec<Var<f64>> = e0.iter().map(|&d| Var::constant(d)).collect();
            forward::jvp(|y| vec![$f(y)], x, &dir).1[0]
        };
        let (nv, ng) = mixad::value_and_gradient(nested, b);
        let mut rec = mixad::record(nested, a);
        let (rv, rg) = rec.value_and_gradient(b);
        same(rv, nv, &what("recorded nested derivative"));
        same_all(&rg, &ng, &what("recorded nested derivative's gradient"));
        same(nv, g[0], &what("nested derivative = ∂f/∂x₀"));
        same_all(
            &ng,
            &(0..n).map(|j| h[j]).collect::<Vec<_>>(),
            &what("nested gradient = H row 0"),
        );
        rerecords += rec.rerecord_count();
        rerecords
    }};
}

/// Both directions: recorded at `a` and called at `b`, and the other way round; each must
/// re-record (the decision flips between the points).
macro_rules! assert_guarded {
    ($f:path, $a:expr, $b:expr) => {{
        let a: Vec<f64> = $a.to_vec();
        let b: Vec<f64> = $b.to_vec();
        assert!(
            assert_replays_fresh!($f, a, b) > 0,
            "{}: no re-recording from {a:?} to {b:?}",
            stringify!($f)
        );
        assert!(
            assert_replays_fresh!($f, b, a) > 0,
            "{}: no re-recording from {b:?} to {a:?}",
            stringify!($f)
        );
        // Same side: replays without re-recording.
        assert_eq!(
            assert_replays_fresh!($f, a, a),
            0,
            "{}: re-recorded at its own point",
            stringify!($f)
        );
    }};
}

// ---------------------------------------------------------------------------------------
// A block operation's failure is a guarded decision.
// ---------------------------------------------------------------------------------------

/// `ln det [[1, x₀], [x₀, 1]] · x₁` where the matrix is SPD (|x₀| < 1), else a fallback.
fn log_det_or_fallback<S: Scalar>(v: &[S]) -> S {
    let one = S::one();
    let a = DMatrix::from_row_slice(2, 2, &[one, v[0], v[0], one]);
    match mixad::linalg::log_det_spd(&a) {
        Ok(ld) => ld * v[1],
        Err(_) => v[0] * v[0] * v[1],
    }
}

/// The Cholesky factor's (1, 1) entry where `[[x₀, x₁], [x₁, 2]]` is SPD, else a fallback.
fn cholesky_or_fallback<S: Scalar>(v: &[S]) -> S {
    let a = DMatrix::from_row_slice(2, 2, &[v[0], v[1], v[1], S::cst(2.0)]);
    match mixad::linalg::cholesky(&a) {
        Ok(l) => l[(1, 1)] * l[(1, 0)] + l[(0, 0)],
        Err(_) => Float::sin(v[0]) * v[1],
    }
}

/// The solution of `[[x₀, 1], [1, x₀]] y = [x₁, 1]` (LU), summed; singular at x₀ = ±1.
fn solve_or_fallback<S: Scalar>(v: &[S]) -> S {
    let one = S::one();
    let a = DMatrix::from_row_slice(2, 2, &[v[0], one, one, v[0]]);
    let b = vec![v[1], one];
    match mixad::linalg::solve(&a, &b) {
        Ok(y) => y[0] * y[1] + y[0],
        Err(_) => v[1] * v[1] * v[0],
    }
}

/// The inverse's entries, weighted; singular at x₀·x₁ = 1.
fn inverse_or_fallback<S: Scalar>(v: &[S]) -> S {
    let one = S::one();
    let a = DMatrix::from_row_slice(2, 2, &[v[0], one, one, v[1]]);
    match mixad::linalg::inverse(&a) {
        Ok(inv) => inv[(0, 0)] + S::cst(3.0) * inv[(0, 1)] * inv[(1, 1)],
        Err(_) => Float::exp(v[0] - v[1]),
    }
}

/// ln|det| through LU; singular at x₀ = x₁.
fn log_abs_det_or_fallback<S: Scalar>(v: &[S]) -> S {
    let a = DMatrix::from_row_slice(2, 2, &[v[0], v[1], S::one(), S::one()]);
    match mixad::linalg::log_abs_det(&a) {
        Ok(ld) => ld * v[0],
        Err(_) => v[0] * v[1],
    }
}

/// `Ok` inside, and the fallback's value used only when the operation fails *outside*
/// the recording's point: the example.
#[test]
fn block_failure_example_from_the_report() {
    let f = |v: &[Var<f64>]| log_det_or_fallback(v);
    let mut rec = mixad::record(f, &[1.5, 2.0]);
    let g = rec.gradient(&[0.5, 2.0]);
    let fresh = mixad::gradient(f, &[0.5, 2.0]);
    same_all(&g, &fresh, "replayed where the factorisation succeeds");
    same(fresh[0], -2.0 * 0.5 / (1.0 - 0.25) * 2.0, "analytic ∂/∂x₀");
    same(fresh[1], (0.75f64).ln(), "analytic ∂/∂x₁");
    assert_eq!(rec.rerecord_count(), 1);
}

#[test]
fn block_failures_are_guarded_in_every_mode() {
    assert_guarded!(log_det_or_fallback, [1.5, 2.0], [0.5, 2.0]);
    assert_guarded!(cholesky_or_fallback, [0.5, 1.5], [3.0, 1.5]);
    assert_guarded!(solve_or_fallback, [1.0, 2.0], [2.0, 2.0]);
    assert_guarded!(inverse_or_fallback, [2.0, 0.5], [2.0, 0.75]);
    assert_guarded!(log_abs_det_or_fallback, [0.7, 0.7], [0.7, 0.2]);
}

/// A `Result` propagated with `?` out of `try_gradient` is the same decision.
#[test]
fn block_failure_through_try_gradient_is_fresh_each_call() {
    let f = |v: &[Var<f64>]| {
        let a =
            DMatrix::from_row_slice(2, 2, &[Var::constant(1.0), v[0], v[0], Var::constant(1.0)]);
        mixad::linalg::log_det_spd(&a).map(|ld| ld * v[1])
    };
    assert!(reverse::try_gradient(f, &[1.5, 2.0]).is_err());
    let g = reverse::try_gradient(f, &[0.5, 2.0]).expect("SPD at 0.5");
    same(g[1], 0.75f64.ln(), "∂/∂x₁");
}

// ---------------------------------------------------------------------------------------
// A panic caught by the function (custom rule) is a guarded decision.
// ---------------------------------------------------------------------------------------

/// `x³` for `x ≥ 0`, with derivatives to order 3; panics for `x < 0` (opaque code with a
/// domain).
static CUBE_ON_POSITIVES: LazyLock<CustomRule> = LazyLock::new(|| {
    CustomRule::scalar("cube_on_positives", 1, 3, |x, k, out| {
        assert!(x[0] >= 0.0, "cube_on_positives: x = {} is negative", x[0]);
        out[0] = match k {
            0 => x[0].powi(3),
            1 => 3.0 * x[0] * x[0],
            2 => 6.0 * x[0],
            _ => 6.0,
        };
    })
});

/// The rule where it succeeds, a fallback formula where it panics.
fn rule_or_fallback<S: Scalar>(v: &[S]) -> S {
    let attempt = catch_unwind(AssertUnwindSafe(|| CUBE_ON_POSITIVES.call1(v[0])));
    match attempt {
        Ok(c) => c * v[1],
        Err(_) => Float::sin(v[0]) * v[1] * v[1],
    }
}

#[test]
fn caught_custom_rule_panics_are_guarded_in_every_mode() {
    quiet_panics(|| assert_guarded!(rule_or_fallback, [-0.5, 2.0], [0.5, 2.0]));
}

#[test]
fn caught_custom_rule_panic_example_from_the_report() {
    quiet_panics(|| {
        let f = |v: &[Var<f64>]| rule_or_fallback(v);
        let mut rec = mixad::record(f, &[0.5, 2.0]);
        let fresh = mixad::gradient(f, &[-0.5, 2.0]);
        same_all(
            &rec.gradient(&[-0.5, 2.0]),
            &fresh,
            "recorded where the rule succeeds",
        );
        same(fresh[0], (-0.5f64).cos() * 4.0, "the fallback's derivative");
        let mut h = mixad::record(f, &[0.5, 2.0]);
        let (_, g, _) = h.value_gradient_hessian(&[-0.5, 2.0]);
        same_all(&g, &fresh, "recorded Hessian's gradient");
    });
}

// ---------------------------------------------------------------------------------------
// Decisions on values that leave mixad as plain data.
// ---------------------------------------------------------------------------------------

fn branch_on_abs_diff_eq<S: Scalar>(v: &[S]) -> S {
    if v[0].abs_diff_eq(&v[1], S::cst(0.25)) {
        v[0] * v[1]
    } else {
        v[0] * v[0] + v[1]
    }
}

fn branch_on_relative_eq<S: Scalar>(v: &[S]) -> S {
    if v[0].relative_eq(&v[1], S::cst(1e-3), S::cst(0.1)) {
        Float::exp(v[0]) * v[1]
    } else {
        v[0] - v[1] * v[1]
    }
}

fn branch_on_ulps_eq<S: Scalar>(v: &[S]) -> S {
    if v[0].ulps_eq(&(v[1] * v[1]), S::cst(0.0), 4) {
        v[0] * S::cst(3.0)
    } else {
        v[0] * v[1]
    }
}

/// The tolerance itself is an input: a joint decision over all three operands.
fn branch_on_a_variable_epsilon<S: Scalar>(v: &[S]) -> S {
    if v[0].abs_diff_eq(&S::one(), v[1]) {
        v[0] * v[1]
    } else {
        Float::cos(v[0]) + v[1]
    }
}

fn branch_on_value_f64<S: Scalar>(v: &[S]) -> S {
    if v[0].value_f64() > 0.5 {
        v[0] * v[1]
    } else {
        v[1] * v[1]
    }
}

fn branch_on_display<S: Scalar>(v: &[S]) -> S {
    if format!("{}", v[0]).starts_with('-') {
        v[0] * v[1]
    } else {
        v[1] * v[1] * v[0]
    }
}

fn branch_on_debug<S: Scalar>(v: &[S]) -> S {
    if format!("{:?}", v[0]).contains('-') {
        v[0] * v[0] * v[1]
    } else {
        v[1] * v[0]
    }
}

#[test]
fn approx_comparisons_are_guarded_in_every_mode() {
    assert_guarded!(branch_on_abs_diff_eq, [1.0, 1.1], [1.0, 2.0]);
    assert_guarded!(branch_on_relative_eq, [1.0, 1.05], [1.0, 1.5]);
    assert_guarded!(branch_on_ulps_eq, [4.0, 2.0], [4.5, 2.0]);
    assert_guarded!(branch_on_a_variable_epsilon, [1.2, 0.5], [1.2, 0.1]);
}

#[test]
fn value_f64_and_printed_values_are_guarded_in_every_mode() {
    assert_guarded!(branch_on_value_f64, [1.0, 2.0], [0.25, 2.0]);
    assert_guarded!(branch_on_display, [-1.0, 2.0], [1.0, 2.0]);
    assert_guarded!(branch_on_debug, [-1.0, 2.0], [1.0, 2.0]);
}

/// `Chain::primal` is the engine interface: it reads the value *without* a guard
/// (documented). A branch on it replays the recorded branch; the guarded ways to read a
/// value re-record.
#[test]
fn chain_primal_is_documented_as_unguarded() {
    use mixad::Chain;
    let f = |v: &[Var<f64>]| {
        if Chain::primal(&v[0]) > 0.0 {
            v[0] * v[1]
        } else {
            v[1] * v[1]
        }
    };
    let mut rec = mixad::record(f, &[1.0, 2.0]);
    assert_eq!(rec.guard_count(), 0);
    // The stale branch, exactly as documented: ∂/∂x₀ of x₀x₁ at x₁ = 2.
    assert_eq!(rec.gradient(&[-1.0, 2.0]), vec![2.0, -1.0]);
    assert_eq!(rec.rerecord_count(), 0);
}

// ---------------------------------------------------------------------------------------
// `is_zero` agrees with f64 and is guarded.
// ---------------------------------------------------------------------------------------

fn divide_unless_zero<S: Scalar>(v: &[S]) -> S {
    let d = v[0] - S::one();
    if d.is_zero() {
        v[1] * v[1]
    } else {
        v[1] / d
    }
}

#[test]
fn is_zero_looks_at_the_value_in_every_engine() {
    // A variable whose value is 0 is zero, as on f64, whatever its derivative.
    let g = mixad::gradient(
        |x| {
            assert!(x[0].is_zero());
            assert!(!(x[0] + 1.0).is_zero());
            assert!((x[0] + 1.0).is_one());
            x[0]
        },
        &[0.0],
    );
    assert_eq!(g, vec![1.0]);
    let d = forward::derivative(
        |x: Dual<f64>| {
            assert!(x.is_zero());
            assert!(Dual::new(0.0, 5.0).is_zero());
            assert!(!Dual::new(1.0, 0.0).is_zero());
            x
        },
        0.0,
    );
    assert_eq!(d, 1.0);
    let h = mixad::hessian(divide_unless_zero, &[1.0, 3.0]);
    assert_eq!(dense(&h), vec![0.0, 0.0, 0.0, 2.0]);
}

#[test]
fn is_zero_is_guarded_in_every_mode() {
    assert_guarded!(divide_unless_zero, [1.0, 3.0], [2.0, 3.0]);
}
