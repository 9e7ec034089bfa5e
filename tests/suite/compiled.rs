//! Compiled replays (`src/compiled/`): the compiled gradient equals the interpreted one to
//! the bit on every kind of step, guards still re-record, tiering compiles only after
//! enough replays, what is not compiled says why, and compiled recordings work from many
//! threads. (Declared only with the `jit` feature.)

use std::sync::{Arc, Mutex};

use mixad::reverse::Var;
use mixad::{Interpreted, Recording, ReplayMode, COMPILE_AFTER};
use num_traits::Float;

/// The same `f64` to the bit; any NaN equals any NaN (Rust leaves a NaN's sign unspecified).
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn points(n: usize, count: usize) -> Vec<Vec<f64>> {
    (0..count)
        .map(|p| {
            (0..n)
                .map(|i| 0.8 + 0.3 * ((i * 7 + p * 13) as f64 * 0.37).sin())
                .collect()
        })
        .collect()
}

/// Records `f` twice at `x0`; compiles one (which must succeed), and checks at every point
/// that its value and gradient equal the other's interpreted replay to the bit.
fn compiled_equals_interpreted<F>(what: &str, f: F, at: &[Vec<f64>])
where
    F: FnMut(&[Var<f64>]) -> Var<f64> + Clone,
{
    let mut compiled = mixad::record(f.clone(), &at[0]);
    let mut interpreted = mixad::record(f, &at[0]);
    compiled
        .compile()
        .unwrap_or_else(|why| panic!("{what}: not compiled: {why}"));
    assert!(matches!(
        compiled.replay_mode(),
        ReplayMode::Compiled { .. }
    ));
    for x in at {
        let (v, g) = compiled.value_and_gradient(x);
        // `try_value_and_gradient` always interprets.
        let (vi, gi) = interpreted.try_value_and_gradient(x).expect("no branches");
        assert!(same(v, vi), "{what}: value {v} vs {vi}");
        for (k, (a, b)) in g.iter().zip(&gi).enumerate() {
            assert!(same(*a, *b), "{what}: ∂{k} {a} vs {b} at {x:?}");
        }
    }
}

fn rosen<T: Float>(x: &[T]) -> T {
    (0..x.len() - 1)
        .map(|i| {
            let a = x[i + 1] - x[i] * x[i];
            let b = T::one() - x[i];
            T::from(100.0).unwrap() * a * a + b * b
        })
        .fold(T::zero(), |s, t| s + t)
}

#[test]
fn rosenbrock_compiled_equals_interpreted() {
    for n in [2, 3, 10, 257] {
        compiled_equals_interpreted("rosen", |x: &[Var<f64>]| rosen(x), &points(n, 4));
    }
}

/// Every one-argument primitive, traced or called, inside a loop and in straight code.
#[test]
fn every_unary_primitive_compiled_equals_interpreted() {
    let f = |x: &[Var<f64>]| {
        let mut s = Var::constant(0.0);
        for (i, &xi) in x.iter().enumerate() {
            let u = xi * 0.5 + 0.1; // in (0, 1): every primitive's domain
            let t = u.sqrt() + u.recip() + u.cbrt() + u.exp() + u.exp2() + u.exp_m1();
            let t = t + u.ln() + u.log2() + u.log10() + u.ln_1p() + u.sin() + u.cos();
            let t = t + u.tan() + u.asin() + u.acos() + u.atan() + u.sinh() + u.cosh();
            let t = t + u.tanh() + u.asinh() + (u + 1.0).acosh() + u.atanh() + (u - 0.5).abs();
            let t = t + (u - 0.5).signum() + (u * 9.0).floor() + (u * 9.0).ceil();
            let t = t + (u * 9.0).round() + (u * 9.0).trunc() + (u * 9.0).fract();
            let t = t + u.to_degrees() + u.to_radians() + u.powi(3) + u.powi(-2) + u.powi(2);
            s += t * (i as f64 + 1.0);
        }
        s
    };
    compiled_equals_interpreted("unary", f, &points(9, 3));
}

/// Every two-argument primitive, with constant and variable operands.
#[test]
fn every_binary_primitive_compiled_equals_interpreted() {
    let f = |x: &[Var<f64>]| {
        let mut s = Var::constant(0.0);
        for w in x.windows(2) {
            let (a, b) = (w[0], w[1]);
            let t = a * b + a / b + a % b + a.powf(b) + a.atan2(b) + a.hypot(b);
            let t = t + a.max(b) + a.min(b) + a.abs_sub(b) + a.powf(Var::constant(2.5));
            s = s + t - a * 3.0;
            s = -s;
        }
        s
    };
    compiled_equals_interpreted("binary", f, &points(12, 3));
}

/// The logistic loss of the anchor functions: per-iteration constants from the table.
#[test]
fn logistic_loss_compiled_equals_interpreted() {
    let (m, n) = (30, 12);
    let a = move |j: usize, k: usize| (0.37 * (j + 1) as f64 + 1.3 * (k + 1) as f64).sin();
    let f = move |w: &[Var<f64>]| {
        let mut loss = Var::constant(0.0);
        for j in 0..m {
            let y = if j % 2 == 0 { 1.0 } else { -1.0 };
            let mut z = Var::constant(0.0);
            for (k, wk) in w.iter().enumerate() {
                z += *wk * a(j, k);
            }
            loss += (-(z * y)).exp().ln_1p();
        }
        loss + w
            .iter()
            .map(|v| *v * *v)
            .fold(Var::constant(0.0), |s, t| s + t)
            * 0.05
    };
    compiled_equals_interpreted("logistic", f, &points(n, 3));
}

/// Overflow, zero adjoints meeting infinite partials, and NaN values: the NaN convention
/// and the skipped zero adjoints behave as in the interpreter.
#[test]
fn non_finite_values_compiled_equal_interpreted() {
    let f = |x: &[Var<f64>]| {
        let dead = (x[0] - x[0]).sqrt(); // value 0, derivative ∞, never reaches the output
        let big = (x[1] * 800.0).exp(); // overflows at x₁ ≥ 0.9
        let _ = dead;
        big * 0.0 + x[2].ln() + x[0] * x[1]
    };
    let at = vec![
        vec![1.0, 0.5, 2.0],
        vec![1.0, 0.95, 2.0],
        vec![1.0, 0.5, -1.0], // ln of a negative: NaN value, NaN gradient
        vec![0.0, 0.0, 0.0],
    ];
    compiled_equals_interpreted("non-finite", f, &at);
}

/// Inside rolled loops, iterations whose partials are all finite drop the zero-adjoint
/// skip (it changes no bit there) and the others keep it: an infinite or NaN partial
/// behind a zero adjoint must still contribute nothing, iteration by iteration, in loops
/// whose iterations mix both kinds.
#[test]
fn zero_adjoints_behind_infinite_partials_in_loops_contribute_nothing() {
    let f = |x: &[Var<f64>]| {
        let mut s = Var::constant(0.0);
        for &xi in x {
            // sqrt'(0) = ∞ behind a zero adjoint where x_i = 1 or x_i = 2; a NaN value
            // (sqrt of a negative) where x_i < 1 or x_i > 2 reaches the sum.
            let dead = (xi - 1.0).sqrt() * 0.0 + (2.0 - xi).sqrt() * 0.0;
            s = s + dead + xi * xi;
        }
        s
    };
    let n = 24;
    let mut at = vec![vec![1.0; n], vec![2.0; n], vec![0.0; n]];
    // Iterations of both kinds in one sweep, the infinite ones at the loop's ends too.
    at.push((0..n).map(|i| [1.0, 1.5, 2.0][i % 3]).collect());
    at.push(
        (0..n)
            .map(|i| if i % 7 == 3 { -1.0 } else { 1.5 })
            .collect(),
    );
    compiled_equals_interpreted("zero adjoints", f, &at);
    let mut rec = mixad::record(f, &at[0]);
    rec.compile().unwrap();
    assert!(rec.loop_coverage() > 0.8, "the test is about loops");
    let g = rec.gradient(&at[3]);
    for (i, gi) in g.iter().enumerate() {
        assert_eq!(*gi, 2.0 * at[3][i], "∂{i}");
    }
}

/// Loops whose iterations read earlier iterations in every way the rolling allows: the
/// previous one (a running sum or a recurrence, carried in registers), two back, a value
/// of the first iteration read by all later ones, and a carried value also read after
/// the loop. Compiled must equal interpreted to the bit, including the NaN convention.
#[test]
fn loops_reading_earlier_iterations_compiled_equal_interpreted() {
    let two_back = |x: &[Var<f64>]| {
        let (mut a, mut b) = (x[0], x[1]);
        for &xi in &x[2..] {
            let c = b.sin() * 0.5 + a * xi;
            (a, b) = (b, c);
        }
        a * 2.0 + b
    };
    let first_reused = |x: &[Var<f64>]| {
        let y0 = x[0] * x[0];
        let mut s = y0;
        for &xi in &x[1..] {
            let y = xi * xi;
            s = s + y * y0 + (y - s).tanh();
        }
        s
    };
    let carried_and_read_after = |x: &[Var<f64>]| {
        let mut s = Var::constant(0.0);
        let mut partial = Vec::new();
        for &xi in x {
            s = s * 0.9 + (xi - 1.0).powi(2);
            partial.push(s);
        }
        partial[x.len() / 2] * partial[x.len() / 3] + s.exp()
    };
    // The node before the loop is both the running sum's start (read one period back by
    // the first iteration) and read by every iteration as an invariant.
    let start_reused = |x: &[Var<f64>]| {
        let a = x[0] * 1.5;
        let mut s = a;
        for &xi in &x[1..] {
            s = xi * a + s * 0.9;
        }
        s
    };
    let n = 30;
    let pts = points(n, 3);
    compiled_equals_interpreted("start reused", start_reused, &pts);
    compiled_equals_interpreted("two back", two_back, &pts);
    compiled_equals_interpreted("first reused", first_reused, &pts);
    compiled_equals_interpreted("carried and read after", carried_and_read_after, &pts);
    let mut nan = pts[0].clone();
    nan[n / 2] = f64::NAN;
    compiled_equals_interpreted("two back, NaN", two_back, &[pts[0].clone(), nan.clone()]);
    compiled_equals_interpreted(
        "carried, NaN",
        carried_and_read_after,
        &[pts[0].clone(), nan],
    );
}

/// A guard that fails at a new point records again there, compiled or not, and the
/// new recording starts uncompiled.
#[test]
fn a_branch_flip_records_again_and_starts_uncompiled() {
    let f = |x: &[Var<f64>]| {
        let mut s = Var::constant(0.0);
        for &xi in x {
            s += if xi > Var::constant(0.0) {
                xi * xi
            } else {
                -xi * 3.0
            };
        }
        s
    };
    let mut rec = mixad::record(f, &[1.0; 20]);
    rec.compile().unwrap();
    assert_eq!(rec.gradient(&[2.0; 20]), vec![4.0; 20]);
    assert_eq!(rec.rerecord_count(), 0);
    let mut x = vec![2.0; 20];
    x[7] = -1.0;
    let g = rec.gradient(&x);
    assert_eq!(g[7], -3.0);
    assert_eq!(g[0], 4.0);
    assert_eq!(rec.rerecord_count(), 1);
    // The replay that recorded again counted for the old recording.
    assert_eq!(
        rec.replay_mode(),
        ReplayMode::Interpreted(Interpreted::NotYet { replays: 0 })
    );
}

/// A recording compiles itself only after `COMPILE_AFTER` gradient replays.
#[test]
fn tiering_compiles_after_enough_replays() {
    let mut rec = mixad::record(|x: &[Var<f64>]| rosen(x), &[1.0; 50]);
    let x = vec![1.1; 50];
    for k in 1..=COMPILE_AFTER {
        rec.gradient(&x);
        assert_eq!(
            rec.replay_mode(),
            ReplayMode::Interpreted(Interpreted::NotYet { replays: k })
        );
    }
    let before = rec.gradient(&x);
    assert!(
        matches!(rec.replay_mode(), ReplayMode::Compiled { loop_coverage } if loop_coverage > 0.9)
    );
    assert_eq!(rec.gradient(&x), before);
}

/// What is not compiled says why, and still gives the right gradient.
#[test]
fn recordings_with_calls_stay_interpreted_and_say_why() {
    let f = |x: &[Var<f64>]| mixad::linalg::dot(&x.to_vec(), &x.to_vec());
    let mut rec = mixad::record(f, &[1.0, 2.0, 3.0]);
    assert_eq!(rec.compile(), Err(Interpreted::HasCalls));
    for _ in 0..=COMPILE_AFTER {
        assert_eq!(rec.gradient(&[1.0, 2.0, 3.0]), vec![2.0, 4.0, 6.0]);
    }
    assert_eq!(
        rec.replay_mode(),
        ReplayMode::Interpreted(Interpreted::HasCalls)
    );
    assert!(Interpreted::HasCalls
        .to_string()
        .contains("custom rules or block operations"));
}

/// Long straight-line recordings (no repetition) are not compiled.
#[test]
fn recordings_without_repetition_are_not_compiled() {
    let f = |x: &[Var<f64>]| {
        // A chain whose every step reads a different earlier node: nothing affine.
        let mut v = vec![x[0], x[1]];
        let mut state = 1u64;
        for k in 0..25_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = v[(state >> 33) as usize % v.len()];
            let b = v[v.len() - 1];
            v.push(if k % 3 == 0 { a * b } else { a + b * 0.5 });
        }
        v[v.len() - 1].tanh()
    };
    let mut rec = mixad::record(f, &[0.1, 0.2]);
    match rec.compile() {
        Err(Interpreted::TooLittleRepetition { straight, .. }) => assert!(straight > 20_000),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Compiled recordings used from many threads: one per thread, and one shared behind a
/// mutex; every result equals the single-threaded interpreted one.
#[test]
fn compiled_recordings_work_from_many_threads() {
    let n = 64;
    let x = points(n, 1).remove(0);
    let want = mixad::record(|v: &[Var<f64>]| rosen(v), &x)
        .try_value_and_gradient(&x)
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (x, want) = (&x, &want);
            s.spawn(move || {
                let mut rec = mixad::record(|v: &[Var<f64>]| rosen(v), x);
                rec.compile().unwrap();
                for _ in 0..50 {
                    assert_eq!(&rec.value_and_gradient(x), want);
                }
            });
        }
    });
    type Rosen = fn(&[Var<f64>]) -> Var<f64>;
    let shared: Arc<Mutex<Recording<Rosen>>> =
        Arc::new(Mutex::new(mixad::record(rosen::<Var<f64>> as Rosen, &x)));
    shared.lock().unwrap().compile().unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (shared, x, want) = (&shared, &x, &want);
            s.spawn(move || {
                for _ in 0..50 {
                    assert_eq!(&shared.lock().unwrap().value_and_gradient(x), want);
                }
            });
        }
    });
    // A compiled recording moved to another thread and dropped there frees its code.
    let mut rec = mixad::record(|v: &[Var<f64>]| rosen(v), &x);
    rec.compile().unwrap();
    std::thread::spawn(move || drop(rec)).join().unwrap();
}

/// Many compiled recordings made and dropped: each frees its code (run under a leak
/// checker this shows; here it must at least not crash or slow to a halt).
#[test]
fn compiled_recordings_are_freed_on_drop() {
    for k in 0..200 {
        let mut rec = mixad::record(|v: &[Var<f64>]| rosen(v), &[1.0 + k as f64 * 1e-3; 8]);
        rec.compile().unwrap();
        assert!(rec.gradient(&[1.0; 8]).iter().all(|g| g.is_finite()));
    }
}

/// The Jacobian, VJP and weighted operators of vector functions use the compiled sweep
/// with other seeds: they equal the interpreted ones.
#[test]
fn vector_function_operators_use_the_compiled_sweep_correctly() {
    let f = |x: &[Var<f64>]| -> Vec<Var<f64>> {
        (0..x.len() - 1)
            .map(|i| x[i] * x[i + 1] - (x[i] * 2.0).sin())
            .collect()
    };
    let x: Vec<f64> = points(30, 1).remove(0);
    let mut compiled = mixad::record(f, &x);
    let mut interpreted = mixad::record(f, &x);
    compiled.compile().unwrap();
    let w: Vec<f64> = (0..29).map(|i| (i as f64).cos()).collect();
    assert_eq!(compiled.vjp(&x, &w), interpreted.vjp(&x, &w));
    let (jc, ji) = (compiled.jacobian(&x), interpreted.jacobian(&x));
    for i in 0..29 {
        for j in 0..30 {
            assert!(same(jc[(i, j)], ji[(i, j)]), "J[{i},{j}]");
        }
    }
}
