//! Truncated Newton (Newton–CG) on the extended Rosenbrock function in n = 100 000
//! variables, with Hessian-vector products only: the dense Hessian would take 80 GB,
//! each product H·p costs a small multiple of f.
//!
//! `mixad::record` records f once (no n × n storage: buffers for dense columns
//! are only sized when a Hessian is asked for); `value_gradient_hvp_into` then replays
//! the recording for ∇f and H·p without allocating. The inner conjugate-gradient solve
//! of H·d = −∇f stops on a relative residual and exits on negative curvature.
//!
//! Run with `cargo run --release --example newton_cg`; exits non-zero if the solver does
//! not reach the minimiser (all ones).

use std::time::Instant;

use num_traits::Float;

const N: usize = 100_000;
const TOL: f64 = 1e-8;
const MAX_CG: usize = 100;

/// Extended Rosenbrock: Σᵢ 100(x₂ᵢ − x₂ᵢ₋₁²)² + (1 − x₂ᵢ₋₁)², minimum 0 at (1, …, 1).
fn rosenbrock<T: Float>(x: &[T]) -> T {
    let hundred = T::from(100.0).unwrap();
    x.chunks_exact(2).fold(T::zero(), |s, p| {
        s + hundred * (p[1] - p[0] * p[0]).powi(2) + (T::one() - p[0]).powi(2)
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Backtracking (Armijo) line search: the first t = 1, ½, … with enough decrease.
fn line_search(x: &mut [f64], fx: f64, g: &[f64], d: &[f64], trial: &mut [f64]) -> f64 {
    let slope = dot(g, d);
    let mut t = 1.0;
    loop {
        for ((y, a), b) in trial.iter_mut().zip(&*x).zip(d) {
            *y = a + t * b;
        }
        if rosenbrock(trial) <= fx + 1e-4 * t * slope || t < 1e-20 {
            x.copy_from_slice(trial);
            return t;
        }
        t *= 0.5;
    }
}

fn main() {
    // A start that differs from pair to pair (around the classic (−1.2, 1)), so that H has
    // many distinct eigenvalues and CG has real work to do; with identical pairs H has two
    // and CG would stop after two products.
    let mut x: Vec<f64> = (0..N)
        .map(|i| match i % 2 {
            0 => -1.2 + 0.5 * (i as f64).sin(),
            _ => 1.0 + 0.5 * (i as f64).cos(),
        })
        .collect();
    let clock = Instant::now();
    let mut h = mixad::record(rosenbrock, &x);
    let (mut g, mut scratch, mut trial) = (vec![0.0; N], vec![0.0; N], vec![0.0; N]);
    let (zero, mut d, mut r, mut p, mut hp) = (
        vec![0.0; N],
        vec![0.0; N],
        vec![0.0; N],
        vec![0.0; N],
        vec![0.0; N],
    );
    let (mut outer, mut products) = (0, 0);

    println!("truncated Newton, n = {N}, Hessian-vector products from mixad");
    println!(
        "{:>5} {:>14} {:>11} {:>4} {:>10} {:>8}",
        "iter", "f(x)", "‖g‖", "CG", "CG exit", "step"
    );
    loop {
        // ∇f(x): the same call with the direction 0 (H·0 is discarded).
        let fx = h.value_gradient_hvp_into(&x, &zero, &mut g, &mut scratch);
        let gnorm = dot(&g, &g).sqrt();
        print!("{outer:>5} {fx:>14.6e} {gnorm:>11.3e}");
        if gnorm < TOL || outer == 100 {
            println!();
            break;
        }
        // CG on H·d = −g from d = 0, to the forcing tolerance η‖g‖, η = min(½, √‖g‖).
        let tol = gnorm.sqrt().min(0.5) * gnorm;
        d.fill(0.0);
        r.iter_mut().zip(&g).for_each(|(ri, gi)| *ri = -gi);
        p.copy_from_slice(&r);
        let mut rr = dot(&r, &r);
        let (mut cg, mut exit) = (0, "max iters");
        while cg < MAX_CG {
            h.value_gradient_hvp_into(&x, &p, &mut scratch, &mut hp);
            (cg, products) = (cg + 1, products + 1);
            let curvature = dot(&p, &hp);
            if curvature <= 0.0 {
                // Negative curvature along p: keep the descent direction built so far
                // (or −g if there is none yet).
                if cg == 1 {
                    d.copy_from_slice(&r);
                }
                exit = "neg curv";
                break;
            }
            let alpha = rr / curvature;
            for i in 0..N {
                d[i] += alpha * p[i];
                r[i] -= alpha * hp[i];
            }
            let rr_next = dot(&r, &r);
            if rr_next.sqrt() <= tol {
                exit = "residual";
                break;
            }
            let beta = rr_next / rr;
            p.iter_mut()
                .zip(&r)
                .for_each(|(pi, ri)| *pi = ri + beta * *pi);
            rr = rr_next;
        }
        let t = line_search(&mut x, fx, &g, &d, &mut trial);
        println!(" {cg:>4} {exit:>10} {t:>8.4}");
        outer += 1;
    }
    let elapsed = clock.elapsed();
    let err = x.iter().fold(0.0, |m: f64, v| m.max((v - 1.0).abs()));
    let gnorm = dot(&g, &g).sqrt();
    println!(
        "\n{outer} Newton iterations, {products} Hessian-vector products, {:.2} s \
         ({:.1} ms per product incl. the rest of CG)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / products.max(1) as f64
    );
    println!(
        "max |xᵢ − 1| = {err:.2e}, re-recordings: {}",
        h.rerecord_count()
    );
    if gnorm < TOL && err < 1e-6 {
        println!("converged to the minimiser (all ones, ‖g‖ < {TOL:e})");
    } else {
        println!("did NOT converge to the minimiser");
        std::process::exit(1);
    }
}
