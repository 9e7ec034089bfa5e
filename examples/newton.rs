//! Newton's method with exact Hessians against gradient descent, on the extended
//! Rosenbrock function in n = 1000 variables. The objective is written once, generic over
//! `num_traits::Float`; mixad gives its gradient and its dense Hessian, and faer solves
//! the Newton system by Cholesky.
//!
//! Run with `cargo run --release --example newton`; exits non-zero if Newton does not
//! reach the minimiser (all ones).

use std::time::{Duration, Instant};

use mixad::faer::prelude::*;
use mixad::faer::{Mat, MatRef, Side};
use num_traits::Float;

const N: usize = 1000;
const TOL: f64 = 1e-8;

/// Extended Rosenbrock: Σᵢ 100(x₂ᵢ − x₂ᵢ₋₁²)² + (1 − x₂ᵢ₋₁)², minimum 0 at (1, …, 1).
fn rosenbrock<T: Float>(x: &[T]) -> T {
    let hundred = T::from(100.0).unwrap();
    x.chunks_exact(2).fold(T::zero(), |s, p| {
        s + hundred * (p[1] - p[0] * p[0]).powi(2) + (T::one() - p[0]).powi(2)
    })
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// Backtracking (Armijo) line search along the descent direction `d`: the first step
/// t = 1, ½, ¼, … with f(x + t·d) ≤ f(x) + 10⁻⁴·t·gᵀd. Returns (t, x + t·d).
fn line_search(x: &[f64], fx: f64, g: &[f64], d: &[f64]) -> (f64, Vec<f64>) {
    let slope: f64 = g.iter().zip(d).map(|(a, b)| a * b).sum();
    let mut t = 1.0;
    loop {
        let trial: Vec<f64> = x.iter().zip(d).map(|(a, b)| a + t * b).collect();
        if rosenbrock(&trial) <= fx + 1e-4 * t * slope || t < 1e-20 {
            return (t, trial);
        }
        t *= 0.5;
    }
}

/// Solves (H + μI)·d = −g by Cholesky, μ = 0 if that works, else growing from
/// β − min Hᵢᵢ (β = 10⁻³·max |Hᵢᵢ|) until H + μI is positive definite (Levenberg-style
/// fallback, Nocedal & Wright Alg. 3.3). Returns (d, μ).
fn newton_direction(h: MatRef<'_, f64>, g: &[f64]) -> (Vec<f64>, f64) {
    let n = g.len();
    let rhs = Mat::from_fn(n, 1, |i, _| -g[i]);
    let diag = (0..n).map(|i| h[(i, i)]);
    let (lo, hi) = diag.fold((f64::MAX, 0.0f64), |(l, u), d| (l.min(d), u.max(d.abs())));
    let beta = 1e-3 * hi.max(1.0);
    let (mut a, mut mu) = (h.to_owned(), 0.0);
    loop {
        if let Ok(llt) = a.llt(Side::Lower) {
            let d = llt.solve(&rhs);
            return ((0..n).map(|i| d[(i, 0)]).collect(), mu);
        }
        mu = if mu == 0.0 {
            (beta - lo).max(beta)
        } else {
            2.0 * mu
        };
        for i in 0..n {
            a[(i, i)] = h[(i, i)] + mu;
        }
    }
}

fn main() {
    // The classic start: (−1.2, 1) in every pair.
    let x0: Vec<f64> = (0..N)
        .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
        .collect();

    // Newton: record f once; every iteration replays the recording for g and H.
    println!("Newton, n = {N}: exact Hessian (mixad) + Cholesky (faer)");
    println!(
        "{:>5} {:>14} {:>11} {:>9} {:>8}",
        "iter", "f(x)", "‖g‖", "shift μ", "step"
    );
    let clock = Instant::now();
    let mut x = x0.clone();
    let mut recording = mixad::record(rosenbrock, &x);
    let (mut g, mut h) = (vec![0.0; N], Mat::zeros(N, N));
    let mut newton_iters = 0;
    loop {
        let fx = recording.value_gradient_hessian_into(&x, &mut g, h.as_mut());
        print!("{newton_iters:>5} {fx:>14.6e} {:>11.3e}", norm(&g));
        if norm(&g) < TOL || newton_iters == 200 {
            println!();
            break;
        }
        let (d, mu) = newton_direction(h.as_ref(), &g);
        let (t, next) = line_search(&x, fx, &g, &d);
        println!(" {mu:>9.1e} {t:>8.4}");
        x = next;
        newton_iters += 1;
    }
    let newton_time = clock.elapsed();
    let newton_err = x.iter().fold(0.0, |m: f64, v| m.max((v - 1.0).abs()));
    let newton_ok = norm(&g) < TOL && newton_err < 1e-6;

    // Gradient descent with the same line search, for as long as Newton took. Newton needs
    // ~20 iterations where descent needs ~10⁴; per iteration Newton pays for a dense n×n
    // Hessian and an O(n³) Cholesky (this Hessian is block diagonal: see newton_cg.rs for
    // Hessian-vector products instead), descent only for one gradient.
    println!("\ngradient descent (mixad::value_and_gradient), same line search, same time budget");
    println!("{:>7} {:>14} {:>11}", "iter", "f(x)", "‖g‖");
    let clock = Instant::now();
    let mut x = x0;
    let (mut gd_iters, mut report_at, mut f_at_newton_iters) = (0usize, 1usize, f64::NAN);
    let (mut fx, mut g) = mixad::value_and_gradient(rosenbrock, &x);
    while clock.elapsed() < newton_time {
        if gd_iters == 0 || gd_iters + 1 == report_at {
            println!("{gd_iters:>7} {fx:>14.6e} {:>11.3e}", norm(&g));
            report_at *= 10;
        }
        if gd_iters == newton_iters {
            f_at_newton_iters = fx;
        }
        let d: Vec<f64> = g.iter().map(|v| -v).collect();
        x = line_search(&x, fx, &g, &d).1;
        (fx, g) = mixad::value_and_gradient(rosenbrock, &x);
        gd_iters += 1;
    }
    println!("{gd_iters:>7} {fx:>14.6e} {:>11.3e}", norm(&g));
    let gd_err = x.iter().fold(0.0, |m: f64, v| m.max((v - 1.0).abs()));

    println!(
        "\n{:<18} {:>6} {:>9} {:>12}",
        "method", "iters", "time", "max|x − 1|"
    );
    let row = |name: &str, iters: usize, time: Duration, err: f64| {
        let ms = time.as_secs_f64() * 1e3;
        println!("{name:<18} {iters:>6} {ms:>7.0}ms {err:>12.2e}");
    };
    row("Newton", newton_iters, newton_time, newton_err);
    row("gradient descent", gd_iters, clock.elapsed(), gd_err);
    println!(
        "after {newton_iters} iterations gradient descent is still at f = {f_at_newton_iters:.3e}"
    );
    if newton_ok {
        println!("\nNewton reached the minimiser (all ones, ‖g‖ < {TOL:e})");
    } else {
        println!("\nNewton did NOT converge to the minimiser");
        std::process::exit(1);
    }
}
