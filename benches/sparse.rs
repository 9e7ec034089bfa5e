//! Sparse-Hessian benchmarks: mixad's plan against echidna 0.15's sparse Hessian, on four
//! structured problems at n = 10³ … 10⁶.
//!
//! Problems: extended Rosenbrock (tridiagonal), ARWHEAD `Σ (xᵢ² + xₙ²)² − 4xᵢ + 3`
//! (arrowhead), Broyden tridiagonal (pentadiagonal Hessian) and a 2-D grid energy
//! `Σ_edges (u_p − u_q)² + Σ u_p⁴` (five-point stencil; n rounded to a square).
//!
//! Per case, before criterion, one line of structure: stored entries, colours and sweeps,
//! the plan's cost (record + detect + colour, timed once) against the first point's, and
//! echidna's detection + colouring. Then one criterion group per case:
//!
//! | id | what is timed |
//! |---|---|
//! | `mixad_point` | `Recording::value_gradient_sparse_hessian_into` (plan reused) |
//! | `mixad_point_acyclic` | the same with `ColouringKind::Acyclic` (substitution) |
//! | `mixad_plan` | `mixad::record` + `sparsity_pattern` (record, detect, colour; n ≤ 10⁵) |
//! | `echidna_point` | `BytecodeTape::sparse_hessian_with_pattern` (pattern, colouring reused) |
//! | `echidna_par` | `BytecodeTape::sparse_hessian_par` (rayon; detects every call; n ≤ 10⁴) |
//!
//! echidna colours by distance-2 colouring, which needs n colours on an arrowhead, so its
//! ARWHEAD cases stop at n = 10³. Its detection grows quadratically with n (41.8 s for
//! Rosenbrock at n = 10⁵), so from n = 10⁵ on `echidna_point` runs on mixad's pattern
//! (identical at n ≤ 10⁴, where both are detected and compared) with echidna's colouring. Every case checks echidna's values against mixad's before
//! timing. A positional argument filters cases by substring (as criterion's filter).
//!
//! Run: `cargo bench -p mixad-benches --bench sparse` (about ten minutes on two cores).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use num_traits::Float;

mod common;
use common::{Lcg, Objective, Rosenbrock};

/// A benchmark function written once, generic over `num_traits::Float`.
trait Problem {
    fn eval<T: Float>(&self, x: &[T]) -> T;
}

struct ExtendedRosenbrock;

impl Problem for ExtendedRosenbrock {
    fn eval<T: Float>(&self, x: &[T]) -> T {
        Rosenbrock.eval(x)
    }
}

/// ARWHEAD: `Σ_{i<n} (xᵢ² + xₙ²)² − 4xᵢ + 3`.
struct Arwhead;

impl Problem for Arwhead {
    fn eval<T: Float>(&self, x: &[T]) -> T {
        let n = x.len();
        let (three, four) = (T::from(3.0).unwrap(), T::from(4.0).unwrap());
        let last = x[n - 1] * x[n - 1];
        let mut sum = T::zero();
        for &xi in &x[..n - 1] {
            let q = xi * xi + last;
            sum = sum + q * q - four * xi + three;
        }
        sum
    }
}

/// Broyden tridiagonal: `Σ ((3 − 2xᵢ)xᵢ − xᵢ₋₁ − 2xᵢ₊₁ + 1)²` with `x₀ = xₙ₊₁ = 0`.
struct BroydenTridiagonal;

impl Problem for BroydenTridiagonal {
    fn eval<T: Float>(&self, x: &[T]) -> T {
        let n = x.len();
        let (one, two, three) = (T::one(), T::from(2.0).unwrap(), T::from(3.0).unwrap());
        let mut sum = T::zero();
        for i in 0..n {
            let mut r = (three - two * x[i]) * x[i] + one;
            if i > 0 {
                r = r - x[i - 1];
            }
            if i + 1 < n {
                r = r - two * x[i + 1];
            }
            sum = sum + r * r;
        }
        sum
    }
}

/// 2-D grid energy on a `side × side` grid: `Σ_edges (u_p − u_q)² + Σ u_p⁴`.
struct Grid {
    side: usize,
}

impl Problem for Grid {
    fn eval<T: Float>(&self, u: &[T]) -> T {
        let s = self.side;
        let mut sum = T::zero();
        for r in 0..s {
            for c in 0..s {
                let p = r * s + c;
                let sq = u[p] * u[p];
                sum = sum + sq * sq;
                if c + 1 < s {
                    let d = u[p] - u[p + 1];
                    sum = sum + d * d;
                }
                if r + 1 < s {
                    let d = u[p] - u[p + s];
                    sum = sum + d * d;
                }
            }
        }
        sum
    }
}

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

fn bench_case<P: Problem>(c: &mut Criterion, filter: Option<&str>, name: &str, p: &P, n: usize) {
    let id = format!("sparse_{name}_n{n}");
    if filter.is_some_and(|f| !id.contains(f)) {
        return;
    }
    let mut rng = Lcg(n as u64);
    let x: Vec<f64> = (0..n).map(|_| 0.5 + 0.5 * rng.uniform()).collect();
    let f = |v: &[mixad::reverse::Var<f64>]| p.eval(v);

    let t = Instant::now();
    let mut plan = mixad::record(f, &x);
    plan.sparsity_pattern();
    let plan_time = t.elapsed();
    let mut grad = vec![0.0; n];
    let mut sparse = mixad::SparseHessian::default();
    let t = Instant::now();
    plan.value_gradient_sparse_hessian_into(&x, &mut grad, &mut sparse);
    let first_point = t.elapsed();
    let values = sparse.values().to_vec();
    let colours = plan.colour_count();

    let echidna = name != "arwhead" || n <= 1_000;
    let mut line = format!(
        "{id}: nnz {}, mixad {} colours, plan {:.1} ms, first point {:.1} ms",
        sparse.nnz(),
        colours,
        ms(plan_time),
        ms(first_point),
    );
    let mut echidna_state = None;
    if echidna {
        let (tape, _) = echidna::record(|v| p.eval(v), &x);
        // echidna's detection grows quadratically (41.8 s at n = 10⁵ for Rosenbrock): from
        // n = 10⁵ on, its per-point sweeps are timed on mixad's pattern (same entries on
        // these problems; checked at smaller n) with echidna's own colouring.
        let t = Instant::now();
        let pattern = if n <= 10_000 {
            tape.detect_sparsity()
        } else {
            let mut entries: Vec<(u32, u32)> = sparse
                .rows()
                .iter()
                .zip(sparse.cols())
                .map(|(&r, &c)| (r as u32, c as u32))
                .collect();
            entries.sort_unstable();
            echidna::SparsityPattern {
                dim: n,
                rows: entries.iter().map(|e| e.0).collect(),
                cols: entries.iter().map(|e| e.1).collect(),
            }
        };
        if n <= 10_000 {
            assert_eq!(pattern.nnz(), sparse.nnz(), "{id}: same pattern");
        }
        let (colours, count) = echidna::sparse::greedy_coloring(&pattern);
        let detect = t.elapsed();
        let (_, _, ev) = tape.sparse_hessian_with_pattern(&x, &pattern, &colours, count);
        let h = mixad::sparse::SparsityPattern::clone(plan.sparsity_pattern());
        for ((&r, &c), &v) in pattern.rows.iter().zip(&pattern.cols).zip(&ev) {
            let got = h_value(&h, &values, r as usize, c as usize);
            assert!(
                (got - v).abs() <= 1e-9 * (1.0 + v.abs()),
                "{id}: mixad ({r}, {c}) = {got}, echidna {v}"
            );
        }
        let what = if n <= 10_000 {
            "detect + colour"
        } else {
            "colour"
        };
        line += &format!("; echidna {count} colours, {what} {:.1} ms", ms(detect));
        echidna_state = Some((tape, pattern, colours, count));
    }
    println!("{line}");

    let mut group = c.benchmark_group(&id);
    let large = n >= 100_000;
    group
        .sample_size(10)
        .sampling_mode(if large {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        })
        .warm_up_time(Duration::from_millis(if large { 100 } else { 300 }))
        .measurement_time(Duration::from_millis(if large { 2000 } else { 1000 }));
    group.bench_function("mixad_point", |b| {
        b.iter(|| plan.value_gradient_sparse_hessian_into(black_box(&x), &mut grad, &mut sparse))
    });
    // Acyclic colouring: fewer colours, recovery by substitution.
    let acyclic = mixad::Options {
        colouring: mixad::ColouringKind::Acyclic,
        ..Default::default()
    };
    let mut acyclic_plan = mixad::record_with(f, &x, acyclic);
    let mut acyclic_values = mixad::SparseHessian::default();
    acyclic_plan.value_gradient_sparse_hessian_into(&x, &mut grad, &mut acyclic_values);
    for (a, b) in acyclic_values.values().iter().zip(&values) {
        assert!(
            (a - b).abs() <= 1e-8 * (1.0 + b.abs()),
            "{id}: acyclic recovery"
        );
    }
    println!(
        "{id}: acyclic colouring {} colours",
        acyclic_plan.colour_count()
    );
    group.bench_function("mixad_point_acyclic", |b| {
        b.iter(|| {
            acyclic_plan.value_gradient_sparse_hessian_into(
                black_box(&x),
                &mut grad,
                &mut acyclic_values,
            )
        })
    });
    if n <= 100_000 {
        group.bench_function("mixad_plan", |b| {
            b.iter(|| {
                let mut rec = mixad::record(f, black_box(&x));
                rec.sparsity_pattern();
                rec
            })
        });
    }
    if let Some((tape, pattern, colours, count)) = &echidna_state {
        group.bench_function("echidna_point", |b| {
            b.iter(|| tape.sparse_hessian_with_pattern(black_box(&x), pattern, colours, *count))
        });
        if n <= 10_000 {
            group.bench_function("echidna_par", |b| {
                b.iter(|| tape.sparse_hessian_par(black_box(&x)))
            });
        }
    }
    group.finish();
}

/// mixad's value at `(r, c)` (either triangle).
fn h_value(p: &mixad::sparse::SparsityPattern, values: &[f64], r: usize, c: usize) -> f64 {
    let (r, c) = if r >= c { (r, c) } else { (c, r) };
    let range = p.col_ptr()[c]..p.col_ptr()[c + 1];
    match p.rows()[range.clone()].binary_search(&r) {
        Ok(k) => values[range.start + k],
        Err(_) => 0.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args = common::bench_args();
    let filter = args.filter.as_deref();
    let mut c = Criterion::default().configure_from_args();
    // Rosenbrock at n = 100: the size of JAX's compiled dense Hessian in PEERS.md (31.8 µs).
    bench_case(&mut c, filter, "small_rosenbrock", &ExtendedRosenbrock, 100);
    for n in SIZES {
        bench_case(&mut c, filter, "rosenbrock", &ExtendedRosenbrock, n);
        bench_case(&mut c, filter, "arwhead", &Arwhead, n);
        bench_case(&mut c, filter, "broyden", &BroydenTridiagonal, n);
        let side = (n as f64).sqrt().round() as usize;
        bench_case(&mut c, filter, "grid", &Grid { side }, side * side);
    }
    c.final_summary();
}
