//! Tests `src/reverse/`. Zygote's limits of reverse mode, lifted: `limits.rs`.
//!
//! The reverse-mode public API, used the way a user would: functions written once, generic
//! over `num_traits::Float`, differentiated by every reverse API and checked against
//! analytic derivatives and against forward mode run on the very same code.
//!
//! Beside the happy paths: misuse (a variable outside its recording) must be a clear panic,
//! never a wrong number; a panic must leave the thread's tape usable; threads must not
//! disturb each other; recorded functions must never return the derivative of a stale
//! branch; and reverse mode must nest with forward and with itself.
//!
//! Also: a stale variable, printed, kept past 2³² recordings, or used on a rayon thread;
//! functions of no inputs.

mod limits;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use faer::Mat;
use mixad::forward::{self, Dual};
use mixad::reverse::{self, BranchChanged, Var};
use num_traits::Float;

use crate::common::empty::{f, f0, g, none, EMPTY};
use crate::common::{assert_close, k, panic_text, rosenbrock};

// ---------------------------------------------------------------------------------------
// User code, written once
// ---------------------------------------------------------------------------------------

/// Data of [`logistic_loss`]: rows `a_i` and labels `y_i = ±1`.
const FEATURES: [[f64; 3]; 4] = [
    [1.0, -0.5, 2.0],
    [0.3, 1.2, -1.0],
    [-2.0, 0.4, 0.7],
    [0.5, 0.5, 0.5],
];
const LABELS: [f64; 4] = [1.0, -1.0, 1.0, -1.0];
const RIDGE: f64 = 0.1;

/// `Σ ln(1 + exp(−y_i a_i·w)) + λ/2 ‖w‖²`.
fn logistic_loss<T: Float>(w: &[T]) -> T {
    let data = FEATURES.iter().zip(LABELS);
    let loss = data.fold(T::zero(), |acc, (a, y)| {
        let margin = a
            .iter()
            .zip(w)
            .fold(T::zero(), |s, (&aj, &wj)| s + k::<T>(aj) * wj)
            * k(y);
        acc + (-margin).exp().ln_1p()
    });
    let norm2 = w.iter().fold(T::zero(), |s, &wj| s + wj * wj);
    loss + k::<T>(RIDGE / 2.0) * norm2
}

/// Every family of primitive: exp, ln, trig, inverse trig, hyperbolic, sqrt, powf, atan2,
/// hypot, abs, max. Defined for `x1 > 0`, `|x0| < 2`.
fn every_family<T: Float>(x: &[T]) -> T {
    let (x0, x1, x2) = (x[0], x[1], x[2]);
    x0.exp() * x1.ln()
        + x0.sin() * x1.cos()
        + x2.tan()
        + (x0 * x2).sinh()
        + x1.cosh()
        + (x0 + x1).tanh()
        + x1.powf(x2)
        + x0.atan2(x1)
        + x1.hypot(x2)
        + (x2 - x0).abs()
        + x0.max(x1 * x2)
        + (x0 * k(0.5)).asin()
        + x1.sqrt()
}

/// `f: R³ → R⁴`.
fn vector_fn<T: Float>(x: &[T]) -> Vec<T> {
    let one = T::one();
    vec![
        x[0] * x[1] * x[2],
        x[0].sin() + x[1] * x[1],
        x[2].exp() / (one + x[0] * x[0]),
        x[1].hypot(x[2]),
    ]
}

/// A small function with a hand-derived Hessian ([`hess_fn_hessian`]).
fn hess_fn<T: Float>(x: &[T]) -> T {
    x[0] * x[0] * x[1] + (x[1] * x[2]).sin() + (x[0] * x[2]).exp()
}

// ---------------------------------------------------------------------------------------
// Reference derivatives
// ---------------------------------------------------------------------------------------

fn rosenbrock_grad(x: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    for i in 1..x.len() {
        let (a, b) = (x[i - 1], x[i]);
        g[i - 1] += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a);
        g[i] += 200.0 * (b - a * a);
    }
    g
}

fn logistic_grad(w: &[f64]) -> Vec<f64> {
    let mut g: Vec<f64> = w.iter().map(|wj| RIDGE * wj).collect();
    for (a, y) in FEATURES.iter().zip(LABELS) {
        let margin = y * a.iter().zip(w).map(|(aj, wj)| aj * wj).sum::<f64>();
        let sigma = 1.0 / (1.0 + margin.exp()); // σ(−m)
        for (gj, aj) in g.iter_mut().zip(a) {
            *gj -= y * aj * sigma;
        }
    }
    g
}

fn every_family_grad(x: &[f64]) -> Vec<f64> {
    let (x0, x1, x2) = (x[0], x[1], x[2]);
    let sech2 = 1.0 - (x0 + x1).tanh().powi(2);
    let r2 = x0 * x0 + x1 * x1;
    let h = x1.hypot(x2);
    let s = (x2 - x0).signum();
    let first_wins = x0 > x1 * x2;
    let (dmax0, dmax1, dmax2) = if first_wins {
        (1.0, 0.0, 0.0)
    } else {
        (0.0, x2, x1)
    };
    vec![
        x0.exp() * x1.ln() + x0.cos() * x1.cos() + x2 * (x0 * x2).cosh() + sech2 + x1 / r2 - s
            + dmax0
            + 0.5 / (1.0 - x0 * x0 / 4.0).sqrt(),
        x0.exp() / x1 - x0.sin() * x1.sin() + x1.sinh() + sech2 + x2 * x1.powf(x2 - 1.0) - x0 / r2
            + x1 / h
            + dmax1
            + 0.5 / x1.sqrt(),
        1.0 + x2.tan().powi(2) + x0 * (x0 * x2).cosh() + x1.powf(x2) * x1.ln() + x2 / h + s + dmax2,
    ]
}

fn hess_fn_grad(x: &[f64]) -> Vec<f64> {
    let (a, b, c) = (x[0], x[1], x[2]);
    let e = (a * c).exp();
    vec![
        2.0 * a * b + c * e,
        a * a + c * (b * c).cos(),
        b * (b * c).cos() + a * e,
    ]
}

fn hess_fn_hessian(x: &[f64]) -> [[f64; 3]; 3] {
    let (a, b, c) = (x[0], x[1], x[2]);
    let e = (a * c).exp();
    let (s, co) = (b * c).sin_cos();
    let h01 = 2.0 * a;
    let h02 = e * (1.0 + a * c);
    let h12 = co - b * c * s;
    [
        [2.0 * b + c * c * e, h01, h02],
        [h01, -c * c * s, h12],
        [h02, h12, -b * b * s + a * a * e],
    ]
}

fn mat_vec(h: &[[f64; 3]; 3], v: &[f64]) -> Vec<f64> {
    h.iter()
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

/// `ȳᵀ J` from a Jacobian.
fn transpose_times(j: &Mat<f64>, ybar: &[f64]) -> Vec<f64> {
    (0..j.ncols())
        .map(|c| (0..j.nrows()).map(|r| ybar[r] * j[(r, c)]).sum())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Analytic comparisons: rounding only.
const TOL: f64 = 1e-13;

#[track_caller]
fn assert_mats_close(got: &Mat<f64>, want: &Mat<f64>, tol: f64, what: &str) {
    assert_eq!(
        (got.nrows(), got.ncols()),
        (want.nrows(), want.ncols()),
        "{what}: shapes differ"
    );
    for r in 0..want.nrows() {
        let row = |m: &Mat<f64>| (0..m.ncols()).map(|c| m[(r, c)]).collect::<Vec<_>>();
        assert_close(&row(got), &row(want), tol, &format!("{what} row {r}"));
    }
}

/// Runs `f`, which must panic with a message containing `needle`.
#[track_caller]
fn expect_panic<R>(needle: &str, f: impl FnOnce() -> R) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic mentioning {needle:?}, but nothing panicked"),
        Err(payload) => {
            let text = panic_text(&*payload);
            assert!(
                text.contains(needle),
                "panic message {text:?} does not mention {needle:?}"
            );
        }
    }
}

/// Misuse mixad may either reject with a clear panic (its message names the recording) or
/// answer correctly: `Some(result)` if `f` returned, `None` after a clear panic. An unclear
/// panic (an arithmetic overflow, an index out of bounds) fails the test.
#[track_caller]
fn clear_panic_or<R>(f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            let text = panic_text(&*payload);
            assert!(
                text.contains("recording"),
                "misuse panicked, but with an unclear message: {text:?}"
            );
            None
        }
    }
}

/// Panic messages from `src/reverse/tape.rs`.
const FOREIGN_VAR: &str = "mixad: a reverse variable from a recording that has finished was used";
const OTHER_THREAD: &str =
    "mixad: a reverse variable was used on another thread than its recording's";
const OUTER_VAR: &str = "mixad: a variable of an outer recording was used inside an inner \
                         recording of the same type";
const NO_RECORDING: &str = "mixad: a reverse variable was used with no recording active";
const FOREIGN_OUTPUT: &str = "reverse::gradient: the function returned a variable that does not \
                              belong to this recording";

/// Points at which [`every_family`] is defined; between them `max` and `abs` switch sides.
const FAMILY_POINTS: [[f64; 3]; 3] = [[0.7, 1.3, -0.4], [-0.6, 2.1, 0.9], [1.1, 0.8, 0.3]];

// ---------------------------------------------------------------------------------------
// 1. Gradients: analytic, and the same code in forward mode
// ---------------------------------------------------------------------------------------

/// Checks value, reverse gradient (against `want`) and forward gradient at `x`.
macro_rules! check_gradient {
    ($f:ident, $want:expr, $x:expr) => {{
        let x: &[f64] = $x;
        let (value, g) = reverse::value_and_gradient($f, x);
        let what = concat!(stringify!($f), " gradient");
        assert_close(&[value], &[$f(x)], 1e-15, concat!(stringify!($f), " value"));
        assert_close(&g, &$want(x), TOL, what);
        assert_eq!(
            reverse::gradient($f, x),
            g,
            "{what}: gradient vs value_and_gradient"
        );
        assert_eq!(mixad::gradient($f, x), g, "{what}: crate-root re-export");
        let fwd = forward::gradient($f, x);
        assert_close(
            &g,
            &fwd,
            1e-14,
            concat!(stringify!($f), " reverse vs forward"),
        );
    }};
}

#[test]
fn gradient_matches_analytic_and_forward_mode() {
    for x in [
        vec![1.2, 1.0, 0.8],
        vec![-1.5, 2.0, 0.25, -0.75, 3.0, 1.0, -2.0, 0.5, 1.5, -1.0, 0.1],
    ] {
        check_gradient!(rosenbrock, rosenbrock_grad, &x);
    }
    for w in [[0.0, 0.0, 0.0], [0.4, -1.3, 0.9], [3.0, 2.0, -4.0]] {
        check_gradient!(logistic_loss, logistic_grad, &w);
    }
    for x in FAMILY_POINTS {
        check_gradient!(every_family, every_family_grad, &x);
    }
    for x in [[0.3, -0.7, 1.1], [-1.0, 0.5, 0.25]] {
        check_gradient!(hess_fn, hess_fn_grad, &x);
    }
}

#[test]
fn gradient_of_a_function_of_no_inputs_is_empty() {
    let (v, g) = reverse::value_and_gradient(|_| Var::constant(2.5), &[]);
    assert_eq!((v, g), (2.5, vec![]));
}

// ---------------------------------------------------------------------------------------
// 2. VJP, Jacobian, pullback
// ---------------------------------------------------------------------------------------

const VEC_POINTS: [[f64; 3]; 2] = [[0.5, -1.2, 0.3], [2.0, 0.7, -1.1]];

#[test]
fn jacobian_matches_forward_mode() {
    for x in VEC_POINTS {
        let rev = reverse::jacobian(vector_fn, &x);
        let fwd = forward::jacobian(vector_fn, &x);
        assert_eq!((rev.nrows(), rev.ncols()), (4, 3));
        assert_mats_close(&rev, &fwd, 1e-14, "reverse vs forward Jacobian");
        // One entry by hand: ∂(x0 x1 x2)/∂x1 = x0 x2.
        assert_eq!(rev[(0, 1)], x[0] * x[2]);
    }
}

/// Cotangents with zeros, negatives and repeats.
fn cotangents() -> Vec<[f64; 4]> {
    (0..20)
        .map(|i| {
            let t = i as f64;
            [
                (0.3 * t).sin(),
                (0.7 * t + 1.0).cos(),
                t - 10.0,
                (i % 3) as f64,
            ]
        })
        .collect()
}

#[test]
fn vjp_matches_forward_jacobian() {
    for x in VEC_POINTS {
        let j = forward::jacobian(vector_fn, &x);
        for ybar in cotangents() {
            let (y, xbar) = reverse::vjp(vector_fn, &x, &ybar);
            assert_eq!(y, vector_fn(&x));
            assert_close(&xbar, &transpose_times(&j, &ybar), TOL, "vjp");
        }
    }
}

#[test]
fn pullback_applied_many_times_matches_forward_jacobian() {
    for x in VEC_POINTS {
        let j = forward::jacobian(vector_fn, &x);
        let (y, pb) = reverse::pullback(vector_fn, &x);
        assert_eq!(y, vector_fn(&x));
        assert_eq!((pb.input_len(), pb.output_len()), (3, 4));
        // Other recordings on this thread in between must not disturb the kept pullback.
        let _ = reverse::gradient(rosenbrock, &[1.0, 2.0, 3.0]);
        for ybar in cotangents() {
            assert_close(
                &pb.apply(&ybar),
                &transpose_times(&j, &ybar),
                TOL,
                "pullback",
            );
        }
        // It is plain data: another thread can apply it.
        let ybar = [1.0, -2.0, 0.5, 3.0];
        let there = std::thread::scope(|s| s.spawn(|| pb.apply(&ybar)).join().unwrap());
        assert_eq!(there, pb.apply(&ybar));
    }
}

#[test]
fn vjp_and_jacobian_with_repeated_constant_and_input_outputs() {
    // Outputs: an input itself, the same variable twice, a constant.
    let f = |x: &[Var<f64>]| {
        let p = x[1] * x[2];
        vec![x[0], p, p, Var::constant(7.0)]
    };
    let x = [2.0, 3.0, 5.0];
    let j = reverse::jacobian(f, &x);
    let want = [
        [1.0, 0.0, 0.0],
        [0.0, 5.0, 3.0],
        [0.0, 5.0, 3.0],
        [0.0, 0.0, 0.0],
    ];
    for (r, row) in want.iter().enumerate() {
        for (c, &w) in row.iter().enumerate() {
            assert_eq!(j[(r, c)], w, "J[{r},{c}]");
        }
    }
    let (y, xbar) = reverse::vjp(f, &x, &[1.0, 10.0, 100.0, 1000.0]);
    assert_eq!(y, vec![2.0, 15.0, 15.0, 7.0]);
    assert_eq!(xbar, vec![1.0, 550.0, 330.0]);
    let (_, pb) = reverse::pullback(f, &x);
    assert_eq!(pb.apply(&[1.0, 10.0, 100.0, 1000.0]), xbar);
}

#[test]
#[should_panic(
    expected = "reverse::vjp: f returned 4 outputs but the cotangent ybar has 3 entries"
)]
fn vjp_with_a_cotangent_of_the_wrong_length_panics() {
    reverse::vjp(vector_fn, &VEC_POINTS[0], &[1.0, 2.0, 3.0]);
}

#[test]
#[should_panic(expected = "Pullback::apply: the cotangent has 5 entries but f has 4 outputs")]
fn pullback_with_a_cotangent_of_the_wrong_length_panics() {
    let (_, pb) = reverse::pullback(vector_fn, &VEC_POINTS[0]);
    pb.apply(&[1.0; 5]);
}

// ---------------------------------------------------------------------------------------
// 3. Constants
// ---------------------------------------------------------------------------------------

fn constant_fn<T: Float>(x: &[T]) -> T {
    // Work on the inputs whose result is thrown away, then a constant.
    let _unused = x.iter().fold(T::zero(), |a, &b| a + b.sin());
    k(4.25)
}

fn first_input<T: Float>(x: &[T]) -> T {
    x[0]
}

#[test]
fn constant_output_gives_zero_gradient() {
    let x = [0.3, -1.0, 2.0];
    assert_eq!(
        reverse::value_and_gradient(constant_fn, &x),
        (4.25, vec![0.0; 3])
    );
    // Locally constant primitives too.
    let g = reverse::gradient(|v| v[0].floor() + v[1].signum() * v[2].round(), &x);
    assert_eq!(g, vec![0.0; 3]);
    let mut rec = mixad::record(constant_fn, &x);
    assert_eq!(
        rec.value_and_gradient(&[5.0, 6.0, 7.0]),
        (4.25, vec![0.0; 3])
    );
}

#[test]
fn returning_an_input_gives_a_unit_vector() {
    let x = [0.3, -1.0, 2.0];
    assert_eq!(
        reverse::value_and_gradient(first_input, &x),
        (0.3, vec![1.0, 0.0, 0.0])
    );
    let mut rec = mixad::record(first_input, &x);
    assert_eq!(
        rec.value_and_gradient(&[9.0, 8.0, 7.0]),
        (9.0, vec![1.0, 0.0, 0.0])
    );
}

// ---------------------------------------------------------------------------------------
// 4. Nesting reverse inside reverse (same type, unrelated data)
// ---------------------------------------------------------------------------------------

#[test]
fn gradient_inside_a_differentiated_function() {
    let data = [0.5, 0.25, 1.5];
    let w = rosenbrock_grad(&data);
    let x = [0.4, -0.9, 1.7];
    let (value, g) = reverse::value_and_gradient(
        |x| {
            let before = x[0] * x[1]; // outer nodes recorded before the inner recording
            let inner = reverse::gradient(rosenbrock, &data);
            // Two levels deep: a gradient inside the inner function too.
            let inner2 = reverse::gradient(
                |y| {
                    let deeper = reverse::gradient(|z| z[0] * z[0], &[3.0])[0]; // 6
                    y[0] * deeper
                },
                &[1.0],
            );
            let after = x[0].sin() * x[2]; // outer nodes recorded after it
            before + after + x[0] * inner[0] + x[1] * inner[1] + x[2] * inner[2] - x[2] * inner2[0]
        },
        &x,
    );
    let want_value =
        x[0] * x[1] + x[0].sin() * x[2] + x[0] * w[0] + x[1] * w[1] + x[2] * w[2] - x[2] * 6.0;
    assert_close(&[value], &[want_value], 1e-15, "value");
    let want = [
        x[1] + x[0].cos() * x[2] + w[0],
        x[0] + w[1],
        x[0].sin() + w[2] - 6.0,
    ];
    assert_close(&g, &want, TOL, "outer gradient");
}

// ---------------------------------------------------------------------------------------
// 5. Misuse is a clear panic, never a wrong number
// ---------------------------------------------------------------------------------------

/// A variable of a finished recording, smuggled out through a `Cell`.
fn leak_a_variable() -> Var<f64> {
    let leak = Cell::new(None);
    reverse::gradient(
        |x| {
            leak.set(Some(x[0]));
            x[0] * x[0]
        },
        &[10.0],
    );
    leak.get().expect("the closure ran")
}

#[test]
fn leaked_variable_used_in_another_gradient_panics() {
    let leaked = leak_a_variable();
    expect_panic(FOREIGN_VAR, || {
        reverse::gradient(|x| x[0] * leaked, &[2.0]);
    });
    expect_panic(FOREIGN_VAR, || {
        reverse::gradient(|x| x[0] + leaked.sin(), &[2.0]);
    });
    expect_panic(FOREIGN_VAR, || {
        reverse::gradient(|x| x[0] + leaked * 3.0, &[2.0]);
    });
    expect_panic(FOREIGN_OUTPUT, || {
        reverse::gradient(|_| leaked, &[2.0]);
    });
    expect_panic(NO_RECORDING, || leaked * 2.0);
    // Nothing was corrupted: the next gradient is right.
    assert_eq!(
        reverse::gradient(|x| x[0] * x[1], &[2.0, 3.0]),
        vec![3.0, 2.0]
    );
}

#[test]
fn outer_variable_used_inside_an_inner_recording_of_the_same_type_panics() {
    expect_panic(OUTER_VAR, || {
        reverse::gradient(
            |x| {
                let inner = reverse::gradient(|y| y[0] * x[0], &[1.0]);
                x[0] * inner[0]
            },
            &[2.0],
        )
    });
    expect_panic(OUTER_VAR, || {
        reverse::gradient(
            |x| {
                reverse::vjp(|y| vec![y[0], x[0].exp()], &[1.0], &[1.0, 1.0]);
                x[0]
            },
            &[2.0],
        )
    });
    assert_eq!(
        reverse::gradient(|x| x[0] * x[1], &[2.0, 3.0]),
        vec![3.0, 2.0]
    );
}

#[test]
fn inner_variable_used_after_its_recording_ended_panics() {
    // The inner variable's node index is a live index of the outer recording once the
    // outer one records more: only its recording id can tell them apart.
    expect_panic(FOREIGN_VAR, || {
        reverse::gradient(
            |x| {
                let escaped = Cell::new(None);
                reverse::gradient(
                    |y| {
                        escaped.set(Some(y[0]));
                        y[0] * y[0]
                    },
                    &[1.0],
                );
                let busy = x[0] * x[0] + x[0].sin() + x[0].cos(); // reuses the inner indices
                busy * escaped.get().expect("the inner closure ran")
            },
            &[2.0],
        )
    });
}

#[test]
fn variable_moved_to_another_thread_panics_there() {
    let g = reverse::gradient(
        |x| {
            let v = x[0];
            let outcome = std::thread::scope(|s| {
                s.spawn(move || reverse::gradient(|y| y[0] * v, &[2.0]))
                    .join()
            });
            let text = panic_text(&*outcome.expect_err("using v on another thread must panic"));
            assert!(text.contains(OTHER_THREAD), "unexpected message {text:?}");
            // This thread's recording is untouched.
            x[0] * x[0]
        },
        &[3.0],
    );
    assert_eq!(g, vec![6.0]);
}

/// Two branches with different derivatives; which one is right depends on `x1 > leaked`.
#[test]
fn leaked_variable_compared_inside_a_recorded_function_is_never_a_stale_branch() {
    let leaked = leak_a_variable(); // value 10
    let outcome = clear_panic_or(|| {
        let mut rec = mixad::record(
            |x| {
                if x[1] > leaked {
                    x[0] * x[1]
                } else {
                    x[0] + x[1]
                }
            },
            &[0.0, 20.0],
        );
        rec.gradient(&[0.0, 5.0]) // 5 < 10: the second branch
    });
    if let Some(g) = outcome {
        assert_eq!(g, vec![1.0, 1.0], "derivative of the wrong branch");
    }
}

#[test]
fn outer_variable_compared_inside_an_inner_recorded_function_is_never_a_stale_branch() {
    let outcome = clear_panic_or(|| {
        reverse::gradient(
            |x| {
                let t = x[0] * 2.0; // 1.0; the last outer node before the inner recording
                let mut inner = mixad::record(
                    move |y: &[Var<f64>]| {
                        if y[0] > t {
                            y[0] * 3.0
                        } else {
                            y[0] * 5.0
                        }
                    },
                    &[2.0],
                );
                let slope = inner.gradient(&[0.5])[0]; // 0.5 < 1: slope 5
                x[0] * slope
            },
            &[0.5],
        )
    });
    if let Some(g) = outcome {
        assert_eq!(g, vec![5.0], "derivative of the wrong branch");
    }
}

// ---------------------------------------------------------------------------------------
// 6. Panic safety
// ---------------------------------------------------------------------------------------

/// The thread's tape is in a clean state: no recording is left open (a variable leaked
/// from the failed call is reported as used with *no* recording active), and gradients,
/// nested ones included, are right.
#[track_caller]
fn assert_tape_is_clean(leaked: Option<Var<f64>>) {
    if let Some(v) = leaked {
        expect_panic(NO_RECORDING, || v + 1.0);
    }
    let x = [1.2, 1.0, 0.8];
    assert_close(
        &reverse::gradient(rosenbrock, &x),
        &rosenbrock_grad(&x),
        TOL,
        "gradient after a panic",
    );
    let g = reverse::gradient(
        |v| v[0] * reverse::gradient(|y| y[0] * y[0] * y[0], &[2.0])[0],
        &[1.5],
    );
    assert_eq!(g, vec![12.0]);
}

#[test]
fn panic_in_the_users_function_leaves_the_tape_clean() {
    let leak = Cell::new(None);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        reverse::gradient(
            |x| {
                let y = x[0].exp() * x[1];
                leak.set(Some(y));
                if y.value() > 0.0 {
                    panic!("user failure halfway through");
                }
                y
            },
            &[0.5, 2.0],
        )
    }));
    assert!(outcome.is_err());
    assert_tape_is_clean(leak.get());
}

#[test]
fn panic_in_a_nested_recording_caught_inside_the_outer_function() {
    let g = reverse::gradient(
        |x| {
            let before = x[0] * x[1];
            let inner = catch_unwind(|| {
                reverse::gradient(
                    |y| {
                        let t = y[0] * y[0];
                        if t.value() > 0.0 {
                            panic!("inner failure");
                        }
                        t
                    },
                    &[3.0],
                )
            });
            assert!(inner.is_err());
            before + x[1].sin()
        },
        &[2.0, 0.5],
    );
    assert_close(&g, &[0.5, 2.0 + 0.5f64.cos()], TOL, "outer gradient");
    assert_tape_is_clean(None);
}

#[test]
fn panic_in_a_nested_recording_propagating_out_of_both() {
    let leak = Cell::new(None);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        reverse::gradient(
            |x| {
                let outer = x[0] * x[0];
                leak.set(Some(outer));
                let g = reverse::gradient(
                    |y| {
                        let _ = y[0].ln();
                        panic!("inner failure")
                    },
                    &[3.0],
                );
                outer * g[0]
            },
            &[2.0],
        )
    }));
    assert!(outcome.is_err());
    assert_tape_is_clean(leak.get());
}

// ---------------------------------------------------------------------------------------
// 7. Threads
// ---------------------------------------------------------------------------------------

#[test]
fn many_threads_computing_different_gradients_at_once() {
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                let shift = 0.1 * t as f64;
                let mut rec = mixad::record(logistic_loss, &[0.0, 0.0, 0.0]);
                for i in 0..150 {
                    let u = 0.01 * i as f64;
                    let x: Vec<f64> = (0..5).map(|j| shift + u - 0.3 * j as f64).collect();
                    assert_close(
                        &reverse::gradient(rosenbrock, &x),
                        &rosenbrock_grad(&x),
                        TOL,
                        "rosenbrock on a thread",
                    );
                    // x2 < 0 < x0 throughout: no tie in max or abs.
                    let p = [
                        0.3 + 0.5 * shift + 0.1 * u,
                        1.0 + u,
                        -0.2 - 0.5 * shift - 0.2 * u,
                    ];
                    assert_close(
                        &reverse::gradient(every_family, &p),
                        &every_family_grad(&p),
                        TOL,
                        "every_family on a thread",
                    );
                    // Nested: the inner gradient of hess_fn, dotted with x[0..3].
                    let g = reverse::gradient(
                        |v| {
                            let inner = reverse::gradient(hess_fn, &p);
                            v[0] * inner[0] + v[1] * inner[1] + v[2] * inner[2]
                        },
                        &x[..3],
                    );
                    assert_close(&g, &hess_fn_grad(&p), TOL, "nested on a thread");
                    let w = [shift, -u, 1.0 - shift];
                    assert_close(&rec.gradient(&w), &logistic_grad(&w), TOL, "recorded");
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------
// 8. Recordings (mixad::record)
// ---------------------------------------------------------------------------------------

#[test]
fn recorded_replay_equals_fresh_gradient() {
    let mut rec = mixad::record(rosenbrock, &[1.2, 1.0, 0.8, -0.5]);
    for i in 0..10 {
        let x: Vec<f64> = (0..4).map(|j| (0.4 * (i + j) as f64).sin() * 2.0).collect();
        let fresh = reverse::value_and_gradient(rosenbrock, &x);
        assert_eq!(rec.value_and_gradient(&x), fresh);
        assert_eq!(rec.gradient(&x), fresh.1);
        assert_close(&fresh.1, &rosenbrock_grad(&x), TOL, "rosenbrock");
    }
    assert_eq!(rec.rerecord_count(), 0);
    assert!(!rec.is_empty());

    let mut rec = mixad::record(logistic_loss, &[0.0; 3]);
    for w in [[0.4, -1.3, 0.9], [3.0, 2.0, -4.0]] {
        assert_eq!(
            rec.value_and_gradient(&w),
            reverse::value_and_gradient(logistic_loss, &w)
        );
    }
    assert_eq!(rec.rerecord_count(), 0);
}

#[test]
fn recorded_max_and_abs_replay_correctly_without_rerecording() {
    // Across FAMILY_POINTS, max picks the other argument and abs the other sign; the
    // rules are re-evaluated at replay, so no guard is needed.
    let mut rec = mixad::record(every_family, &FAMILY_POINTS[0]);
    for x in FAMILY_POINTS.iter().chain(FAMILY_POINTS.iter().rev()) {
        assert_close(&rec.gradient(x), &every_family_grad(x), TOL, "every_family");
    }
    assert_eq!(rec.rerecord_count(), 0);
    let f = |x: &[Var<f64>]| x[0].max(x[1]) * x[2].abs() + (x[0] - x[1]).abs().min(x[2]);
    let mut rec = mixad::record(f, &[2.0, 1.0, 3.0]);
    // Recorded with max → x0, |x0 − x1| → +, min → |x0 − x1|. Here: max → x1 and
    // |x0 − x1| → −; then also |x2| → − and min → x2.
    assert_eq!(
        rec.value_and_gradient(&[1.0, 2.0, 3.0]),
        (7.0, vec![-1.0, 4.0, 2.0])
    );
    assert_eq!(
        rec.value_and_gradient(&[1.0, 2.0, -3.0]),
        (3.0, vec![0.0, 3.0, -1.0])
    );
    assert_eq!(rec.rerecord_count(), 0);
    assert_eq!(rec.guard_count(), 0);
}

/// Records `f` at `at`, then asks at `flip`, where a decision goes the other way and the
/// derivative is `want`: the fallible API must refuse, the re-recording one must give
/// `want` (the new branch's derivative) and agree with a fresh gradient, and going back
/// must re-record again.
#[track_caller]
fn check_branch_flip<F>(f: F, at: &[f64], flip: &[f64], want: &[f64])
where
    F: FnMut(&[Var<f64>]) -> Var<f64> + Clone,
{
    let fresh_at = reverse::value_and_gradient(f.clone(), at);
    let fresh_flip = reverse::value_and_gradient(f.clone(), flip);
    assert_close(
        &fresh_flip.1,
        want,
        TOL,
        "fresh gradient at the flipped point",
    );
    assert!(
        fresh_at.1 != fresh_flip.1,
        "the test needs branches with different derivatives"
    );

    let mut rec = mixad::record(f, at);
    assert!(rec.guard_count() > 0, "a decision must leave a guard");
    let guards = rec.guard_count();
    assert_eq!(
        rec.try_value_and_gradient(flip),
        Err(BranchChanged { guards }),
        "try_value_and_gradient must refuse a changed branch"
    );
    assert_eq!(rec.rerecord_count(), 0);
    assert_eq!(rec.try_value_and_gradient(at), Ok(fresh_at.clone()));

    let mut grad = vec![f64::NAN; at.len()];
    let value = rec.value_and_gradient_into(flip, &mut grad);
    assert_eq!(
        (value, grad),
        fresh_flip,
        "re-recorded at the flipped point"
    );
    assert_eq!(rec.rerecord_count(), 1);
    assert_eq!(rec.try_value_and_gradient(flip), Ok(fresh_flip));
    assert_eq!(
        rec.value_and_gradient(at),
        fresh_at,
        "back to the first branch"
    );
    assert_eq!(rec.rerecord_count(), 2);
}

fn if_on_a_value<T: Float>(x: &[T]) -> T {
    let p = x[0] * x[1];
    if p > x[2] {
        p.sin()
    } else {
        x[2].exp() * x[0]
    }
}

fn less_than<T: Float>(x: &[T]) -> T {
    if x[0] < x[1] {
        x[0] * x[0] * x[1]
    } else {
        x[0] - x[1].powi(3)
    }
}

/// Doubles `x0` until it reaches 10: `x0 · 2^k` with a data-dependent `k`.
fn double_until_ten<T: Float>(x: &[T]) -> T {
    let mut y = x[0];
    while y < k(10.0) {
        y = y * k(2.0);
    }
    y * x[1]
}

fn decided_by_to_f64<T: Float>(x: &[T]) -> T {
    if x[0].to_f64().expect("finite") < 0.5 {
        x[0] * x[1]
    } else {
        x[1].powi(2)
    }
}

fn decided_by_value(x: &[Var<f64>]) -> Var<f64> {
    if x[0].value() > 1.0 {
        x[0].ln() * x[1]
    } else {
        x[0] - x[1]
    }
}

#[test]
fn recorded_if_on_a_value_flips() {
    let (a, b) = ([1.0, 2.0, 0.5], [1.0, 0.2, 0.5]);
    let e = 0.5f64.exp();
    check_branch_flip(if_on_a_value, &a, &b, &[e, 0.0, e]);
    assert_close(
        &reverse::gradient(if_on_a_value, &a),
        &[2.0 * 2.0f64.cos(), 2.0f64.cos(), 0.0],
        TOL,
        "first branch",
    );
}

#[test]
fn recorded_less_than_flips() {
    check_branch_flip(less_than, &[1.0, 2.0], &[3.0, 2.0], &[1.0, -12.0]);
}

#[test]
fn recorded_while_loop_with_a_changed_trip_count_rerecords() {
    // 1.5 → 3 → 6 → 12: factor 8. 3 → 6 → 12: factor 4.
    check_branch_flip(double_until_ten, &[1.5, 1.0], &[3.0, 1.0], &[4.0, 12.0]);
    // Same trip count (1.6 → 12.8): replayed, not re-recorded.
    let mut rec = mixad::record(double_until_ten, &[1.5, 1.0]);
    assert_eq!(
        rec.value_and_gradient(&[1.6, 2.0]),
        (25.6, vec![16.0, 12.8])
    );
    assert_eq!(rec.rerecord_count(), 0);
}

#[test]
fn recorded_to_f64_decision_flips() {
    check_branch_flip(decided_by_to_f64, &[0.25, 3.0], &[0.75, 3.0], &[0.0, 6.0]);
}

#[test]
fn recorded_value_decision_flips() {
    check_branch_flip(
        decided_by_value,
        &[0.5, 3.0],
        &[2.0, 3.0],
        &[1.5, 2.0f64.ln()],
    );
    // A plain value leaving mixad is guarded by its exact value: the same branch at a new
    // point still re-records, and the fallible API refuses.
    let mut rec = mixad::record(decided_by_value, &[2.0, 3.0]);
    assert!(rec.try_value_and_gradient(&[3.0, 3.0]).is_err());
    assert_eq!(rec.gradient(&[3.0, 4.0]), vec![4.0 / 3.0, 3.0f64.ln()]);
    assert_eq!(rec.rerecord_count(), 1);
}

#[test]
fn recorded_integer_trip_count_rerecords_only_when_it_changes() {
    // x1^n with n = trunc(x0), by repeated multiplication.
    fn power_loop<T: Float>(x: &[T]) -> T {
        let n = x[0].to_i64().expect("finite");
        let mut y = T::one();
        for _ in 0..n {
            y = y * x[1];
        }
        y
    }
    let mut rec = mixad::record(power_loop, &[3.2, 2.0]);
    assert_eq!(rec.gradient(&[3.7, 1.5]), vec![0.0, 3.0 * 2.25]);
    assert_eq!(rec.rerecord_count(), 0);
    assert_eq!(rec.gradient(&[4.1, 1.5]), vec![0.0, 4.0 * 3.375]);
    assert_eq!(rec.rerecord_count(), 1);
}

#[test]
fn recorded_function_moved_to_another_thread_replays_and_rerecords_there() {
    let mut rec = mixad::record(less_than, &[1.0, 2.0]);
    let grads = std::thread::scope(|s| {
        s.spawn(move || {
            let same = rec.gradient(&[0.5, 3.0]); // replayed
            let flipped = rec.gradient(&[3.0, 2.0]); // re-recorded on this thread
            (same, flipped, rec.rerecord_count())
        })
        .join()
        .unwrap()
    });
    assert_eq!(grads, (vec![3.0, 0.25], vec![1.0, -12.0], 1));
}

#[test]
fn branch_changed_explains_itself() {
    let mut rec = mixad::record(less_than, &[1.0, 2.0]);
    let err = rec.try_value_and_gradient(&[3.0, 2.0]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("goes the other way") && text.contains("record again"),
        "{text}"
    );
}

#[test]
#[should_panic(expected = "gradient: the function was recorded with 3 inputs, called with 2")]
fn recorded_with_the_wrong_number_of_inputs_panics() {
    let mut rec = mixad::record(rosenbrock, &[1.0, 2.0, 3.0]);
    rec.gradient(&[1.0, 2.0]);
}

#[test]
#[should_panic(expected = "gradient: the gradient buffer has 2 entries, expected 3")]
fn recorded_with_a_gradient_buffer_of_the_wrong_length_panics() {
    let mut rec = mixad::record(rosenbrock, &[1.0, 2.0, 3.0]);
    rec.value_and_gradient_into(&[1.0, 2.0, 3.0], &mut [0.0; 2]);
}

/// A decision inside an inner (non-recorded) gradient that reads an outer variable: the
/// outer recorded function must still see it flip.
#[test]
fn recorded_function_with_a_decision_inside_a_nested_gradient() {
    let f = |x: &[Var<f64>]| {
        let slope = reverse::gradient(
            |y| {
                if x[0] > Var::constant(0.0) {
                    y[0] * 3.0
                } else {
                    y[0] * 5.0
                }
            },
            &[1.0],
        )[0];
        x[0] * x[1] * slope
    };
    assert_eq!(reverse::gradient(f, &[-1.0, 2.0]), vec![10.0, -5.0]);
    let outcome = clear_panic_or(|| {
        let mut rec = mixad::record(f, &[1.0, 2.0]);
        rec.gradient(&[-1.0, 2.0])
    });
    if let Some(g) = outcome {
        assert_eq!(g, vec![10.0, -5.0], "derivative of the stale branch");
    }
}

// ---------------------------------------------------------------------------------------
// 9. Reverse mode nested with forward and with itself: Hessians
// ---------------------------------------------------------------------------------------

const HESS_POINT: [f64; 3] = [0.3, -0.7, 1.1];
const DIRECTION: [f64; 3] = [0.5, -1.0, 2.0];

#[test]
fn reverse_over_forward_gives_gradient_and_hessian_vector_product() {
    // Var<Dual<f64>>: the value part of the gradient is ∇f, the tangent part H·v.
    let xd: Vec<Dual<f64>> = HESS_POINT
        .iter()
        .zip(DIRECTION)
        .map(|(&x, v)| Dual::new(x, v))
        .collect();
    let (value, g) = reverse::value_and_gradient(hess_fn, &xd);
    assert_close(&[value.value], &[hess_fn(&HESS_POINT)], 1e-15, "value");
    let hv = mat_vec(&hess_fn_hessian(&HESS_POINT), &DIRECTION);
    let grad = hess_fn_grad(&HESS_POINT);
    assert_close(
        &[value.tangent],
        &[grad.iter().zip(DIRECTION).map(|(a, b)| a * b).sum()],
        TOL,
        "∇f·v",
    );
    assert_close(
        &g.iter().map(|d| d.value).collect::<Vec<_>>(),
        &grad,
        TOL,
        "∇f",
    );
    assert_close(
        &g.iter().map(|d| d.tangent).collect::<Vec<_>>(),
        &hv,
        TOL,
        "H·v",
    );
}

#[test]
fn forward_over_reverse_gives_hessian_vector_product() {
    // Dual<Var<f64>>: differentiate the directional derivative ∇f·v in reverse.
    let (dd, g) = reverse::value_and_gradient(
        |x| {
            let xd: Vec<Dual<Var<f64>>> = x
                .iter()
                .zip(DIRECTION)
                .map(|(&xi, vi)| Dual::new(xi, Var::constant(vi)))
                .collect();
            hess_fn(&xd).tangent
        },
        &HESS_POINT,
    );
    let grad = hess_fn_grad(&HESS_POINT);
    let want_dd: f64 = grad.iter().zip(DIRECTION).map(|(a, b)| a * b).sum();
    assert_close(&[dd], &[want_dd], TOL, "∇f·v");
    let hv = mat_vec(&hess_fn_hessian(&HESS_POINT), &DIRECTION);
    assert_close(&g, &hv, TOL, "H·v");
}

#[test]
fn reverse_over_reverse_gives_the_hessian() {
    let h = hess_fn_hessian(&HESS_POINT);
    // Row by row: the outer gradient of one entry of the inner gradient (at S = Var<f64>).
    for (i, row) in h.iter().enumerate() {
        let g = reverse::gradient(|x| reverse::gradient(hess_fn, x)[i], &HESS_POINT);
        assert_close(&g, row, TOL, &format!("Hessian row {i}"));
    }
    // All at once: the Jacobian of the inner gradient.
    let j = reverse::jacobian(|x| reverse::gradient(hess_fn, x), &HESS_POINT);
    let want = Mat::from_fn(3, 3, |r, c| h[r][c]);
    assert_mats_close(&j, &want, TOL, "Hessian");
    // And against an independent route: forward over reverse along each unit vector.
    let rosen_x = [1.2, 1.0, 0.8, -0.4];
    let jr = reverse::jacobian(|x| reverse::gradient(rosenbrock, x), &rosen_x);
    let jf = forward::jacobian(|x| reverse::gradient(rosenbrock, x), &rosen_x);
    assert_mats_close(&jr, &jf, TOL, "rosenbrock Hessian: rr vs fr");
}

/// Exercises the thread-local tape slots (`src/reverse/slot.rs`, the crate's `unsafe`): each
/// new thread allocates its tapes on first use (here at three value types, nested), and
/// frees them at exit; a hundred short-lived threads in a row all get correct gradients.
#[test]
fn tapes_are_allocated_per_thread_and_freed_at_thread_exit() {
    use mixad::forward::Dual;
    for t in 0..100 {
        let x0 = 1.0 + t as f64 * 0.01;
        let (g, hv) = std::thread::spawn(move || {
            let g = reverse::gradient(|x| x[0] * x[0] * x[0], &[x0]);
            let hv = reverse::gradient(|x| x[0] * x[0] * x[0], &[Dual::new(x0, 1.0)]);
            let rr = reverse::gradient(
                |x: &[Var<f64>]| reverse::gradient(|y| y[0] * y[0] * y[0], x)[0],
                &[x0],
            );
            assert!((rr[0] - 6.0 * x0).abs() < 1e-12, "{rr:?}");
            (g, hv)
        })
        .join()
        .expect("thread finished");
        assert!((g[0] - 3.0 * x0 * x0).abs() < 1e-12, "{g:?}");
        assert!((hv[0].tangent - 6.0 * x0).abs() < 1e-12, "{hv:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Stale variables: printed, kept past 2³² recordings, used on another thread.
// ---------------------------------------------------------------------------------------

/// Printing a variable kept past its recording neither panics nor records anything.
#[test]
fn printing_a_stale_variable_does_not_panic() {
    let kept = Cell::new(None);
    mixad::gradient(
        |x| {
            kept.set(Some(x[0]));
            x[0] * x[0]
        },
        &[3.0],
    );
    let v = kept.get().expect("the closure ran");
    assert_eq!(format!("{v}"), "3");
    assert!(format!("{v:?}").contains('3'));
}

#[test]
fn a_stale_variable_is_caught_after_the_tape_renews_its_ids() {
    let kept = Cell::new(None);
    mixad::gradient(
        |x| {
            kept.set(Some(x[0]));
            x[0] * x[0]
        },
        &[3.0],
    );
    let stale = kept.get().expect("the closure ran");
    // What 2³² recordings would do: the next recording takes a new tape number.
    reverse::exhaust_recording_sequence::<f64>();
    let err = catch_unwind(AssertUnwindSafe(|| {
        mixad::gradient(|x| x[0] * stale, &[2.0])
    }))
    .expect_err("a stale variable must be refused");
    let text = panic_text(&*err);
    assert!(
        text.contains("from a recording that has finished"),
        "{text}"
    );
    // Recording goes on normally under the new number.
    assert_eq!(
        mixad::gradient(|x| x[0] * x[1], &[2.0, 3.0]),
        vec![3.0, 2.0]
    );
}

#[test]
fn a_variable_used_on_a_rayon_thread_says_so() {
    use rayon::prelude::*;
    let err = catch_unwind(AssertUnwindSafe(|| {
        mixad::gradient(
            |x| {
                let parts: Vec<Var<f64>> = x.par_iter().map(|v| v.sin()).collect();
                parts.into_iter().fold(Var::constant(0.0), |a, b| a + b)
            },
            &[1.0, 2.0, 3.0, 4.0],
        )
    }))
    .expect_err("a variable used on a rayon thread must panic");
    let text = panic_text(&*err);
    assert!(
        text.contains("used on another thread than its recording's"),
        "unexpected message: {text}"
    );
    // This thread's tape is clean afterwards.
    assert_eq!(
        mixad::gradient(|x| x[0] * x[1], &[2.0, 3.0]),
        vec![3.0, 2.0]
    );
}

// ---------------------------------------------------------------------------------------
// Functions of no inputs: the value, and empty derivatives
// ---------------------------------------------------------------------------------------

#[test]
fn reverse_mode_apis_give_the_value_and_empty_derivatives() {
    assert_eq!(mixad::gradient(f, EMPTY), none());
    assert_eq!(mixad::value_and_gradient(f, EMPTY), (f0(), none()));
    let (y, xbar) = reverse::vjp(g, EMPTY, &[1.0, 2.0]);
    assert_eq!((y, xbar), (vec![2.0 * f0(), -1.0], none()));
    let j = reverse::jacobian(g, EMPTY);
    assert_eq!((j.nrows(), j.ncols()), (2, 0));
    let (y, pb) = reverse::pullback(g, EMPTY);
    assert_eq!(y, vec![2.0 * f0(), -1.0]);
    assert_eq!(pb.apply(&[1.0, 1.0]), none());
    let mut rec = mixad::record(f, EMPTY);
    assert_eq!((rec.input_count(), rec.output_count()), (0, 1));
    for _ in 0..3 {
        assert_eq!(rec.value_and_gradient(EMPTY), (f0(), none()));
        assert_eq!(rec.try_value_and_gradient(EMPTY), Ok((f0(), none())));
        assert_eq!(rec.value(EMPTY), f0());
        assert_eq!(rec.value_and_gradient_into(EMPTY, &mut []), f0());
    }
    assert_eq!(rec.rerecord_count(), 0);
}
