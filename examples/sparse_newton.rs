//! Newton's method on a quarter-million-variable problem: the sparse Hessian from mixad,
//! the Newton step from faer's sparse Cholesky.
//!
//! The energy of a nonlinear membrane on a 500 × 500 grid,
//!   E(u) = Σ_edges ½ (u_p − u_q)² + Σ_p (¼ u_p⁴ + ½ u_p² − b_p u_p),
//! is strictly convex; its Hessian is the grid Laplacian plus a diagonal, five non-zeros
//! per row. A dense Hessian would need 500 GB.
//!
//! Run: `cargo run --release --example sparse_newton`

use std::time::Instant;

use mixad::faer::linalg::solvers::Solve;
use mixad::faer::{Col, Side};
use num_traits::Float;

const SIDE: usize = 500;

/// The membrane energy, written once for any `Float` (here `f64` and mixad's `Var<f64>`).
fn energy<T: Float>(u: &[T], load: &[f64]) -> T {
    let (half, quarter) = (T::from(0.5).unwrap(), T::from(0.25).unwrap());
    let mut e = T::zero();
    for r in 0..SIDE {
        for c in 0..SIDE {
            let p = r * SIDE + c;
            let up = u[p];
            e = e + quarter * up.powi(4) + half * up * up - T::from(load[p]).unwrap() * up;
            if c + 1 < SIDE {
                e = e + half * (up - u[p + 1]).powi(2);
            }
            if r + 1 < SIDE {
                e = e + half * (up - u[p + SIDE]).powi(2);
            }
        }
    }
    e
}

fn main() {
    let n = SIDE * SIDE;
    // A load that pushes up in the middle of the membrane and down near one corner.
    let load: Vec<f64> = (0..n)
        .map(|p| {
            let (x, y) = (
                (p % SIDE) as f64 / SIDE as f64,
                (p / SIDE) as f64 / SIDE as f64,
            );
            10.0 * (-40.0 * ((x - 0.5).powi(2) + (y - 0.5).powi(2))).exp()
                - 5.0 * (-80.0 * ((x - 0.1).powi(2) + (y - 0.1).powi(2))).exp()
        })
        .collect();
    let mut u = vec![0.0; n];

    // The plan: record once, detect the pattern, colour it.
    let t = Instant::now();
    let mut plan = mixad::record(|v| energy(v, &load), &u);
    let pattern_entries = plan.sparsity_pattern().nnz();
    println!(
        "n = {n}: {} stored Hessian entries, {} colours, plan built in {:.2} s",
        pattern_entries,
        plan.colour_count(),
        t.elapsed().as_secs_f64()
    );

    for iteration in 0..8 {
        // Value, gradient and Hessian at u: the sweeps only, the plan is reused.
        let t = Instant::now();
        let (e, grad, h) = plan.value_gradient_sparse_hessian(&u);
        let hessian_time = t.elapsed().as_secs_f64();
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        println!(
            "iteration {iteration}: E = {e:.10e}, |∇E| = {norm:.3e} (Hessian {hessian_time:.2} s)"
        );
        if norm < 1e-8 {
            break;
        }
        // Solve H·step = −∇E with faer's sparse Cholesky on the lower triangle.
        let t = Instant::now();
        let llt = h
            .to_faer_lower()
            .sp_cholesky(Side::Lower)
            .expect("the membrane's Hessian is positive definite");
        let rhs = Col::from_fn(n, |i| -grad[i]);
        let step = llt.solve(&rhs);
        let solve_time = t.elapsed().as_secs_f64();
        // Backtrack until the energy decreases (plain f64 evaluations of the same code).
        let mut alpha = 1.0;
        let trial = loop {
            let trial: Vec<f64> = u
                .iter()
                .zip(step.iter())
                .map(|(a, s)| a + alpha * s)
                .collect();
            if energy(&trial, &load) < e || alpha < 1e-4 {
                break trial;
            }
            alpha *= 0.5;
        };
        u = trial;
        println!("             Newton step solved in {solve_time:.2} s, step length {alpha}");
    }
    let peak = u.iter().cloned().fold(f64::MIN, f64::max);
    let dip = u.iter().cloned().fold(f64::MAX, f64::min);
    println!("membrane: highest point {peak:.4}, lowest {dip:.4}");
}
