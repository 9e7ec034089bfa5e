//! What custom and block rules cost and gain.
//!
//! Groups:
//!
//! | group | ids | what is timed |
//! |---|---|---|
//! | `gp_nll_nN` | `f` | the Gaussian-process negative log-likelihood at `f64` (nalgebra's Cholesky) |
//! | | `mixad_block` | its gradient (3 kernel parameters) with `mixad::linalg` block rules |
//! | | `mixad_scalarised` | the same gradient with nalgebra's Cholesky run on `Var<f64>` (one tape node per scalar operation) |
//! | | `mixad_block_hessian` | the 3 × 3 Hessian with block rules |
//! | `custom_erf_n1000` | `builtin` | gradient of `Σ g(xᵢ)·xᵢ` with `g = exp` (a built-in rule) |
//! | | `custom_rule` | the same with `g` = C's `erf` as a `CustomRule` (per-call overhead of a custom rule) |
//!
//! After criterion, a ratio table is printed from a plain median-of-batches timer
//! (`MIXAD_RATIOS=0` skips it, `MIXAD_RATIOS=only` prints only the table). Results of the
//! two gradient paths are compared before anything is timed.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use mixad::reverse::Var;
use mixad::rules::CustomRule;
use mixad::Scalar;
use nalgebra::{DMatrix, DVector};
use num_traits::Float;

mod common;
use common::{bench_args, fmt_us, Lcg};

/// A Gaussian process on `n` sorted points with a squared-exponential kernel.
struct Gp {
    t: Vec<f64>,
    y: Vec<f64>,
}

impl Gp {
    fn new(n: usize) -> Self {
        let mut rng = Lcg(7 + n as u64);
        let t: Vec<f64> = (0..n).map(|i| i as f64 / n as f64 * 10.0).collect();
        let y = t.iter().map(|&s| s.sin() + 0.1 * rng.uniform()).collect();
        Gp { t, y }
    }

    /// `K(θ) = a² exp(−(tᵢ − tⱼ)²/(2ℓ²)) + (σ² + 10⁻⁶) I` for `θ = (a, ℓ, σ)`.
    fn kernel<S: Scalar>(&self, theta: &[S]) -> DMatrix<S> {
        let n = self.t.len();
        let (a2, inv) = (theta[0] * theta[0], S::cst(-0.5) / (theta[1] * theta[1]));
        let noise = theta[2] * theta[2] + S::cst(1e-6);
        DMatrix::from_fn(n, n, |i, j| {
            let d = self.t[i] - self.t[j];
            let k = a2 * Float::exp(inv * S::cst(d * d));
            if i == j {
                k + noise
            } else {
                k
            }
        })
    }

    /// `½ yᵀK⁻¹y + ½ ln det K` with block rules.
    fn nll_block<S: Scalar>(&self, theta: &[S]) -> S {
        let k = self.kernel(theta);
        let y = DVector::from_iterator(self.y.len(), self.y.iter().map(|&v| S::cst(v)));
        let alpha = mixad::linalg::cholesky_solve(&k, &y).expect("SPD kernel");
        let logdet = mixad::linalg::log_det_spd(&k).expect("SPD kernel");
        S::cst(0.5) * (mixad::linalg::dot(&y, &alpha) + logdet)
    }

    /// The same with nalgebra's Cholesky on the scalar type.
    fn nll_scalar<S: Scalar>(&self, theta: &[S]) -> S {
        let chol = self.kernel(theta).cholesky().expect("SPD kernel");
        let y = DVector::from_iterator(self.y.len(), self.y.iter().map(|&v| S::cst(v)));
        let alpha = chol.solve(&y);
        let l = chol.l();
        let logdet = (0..self.y.len()).fold(S::zero(), |s, i| s + Float::ln(l[(i, i)]));
        S::cst(0.5) * y.dot(&alpha) + logdet
    }
}

const THETA: [f64; 3] = [1.2, 0.8, 0.3];

extern "C" {
    fn erf(x: f64) -> f64;
}

fn c_erf(x: f64) -> f64 {
    // SAFETY: `erf` from the C math library is a pure function of a double.
    unsafe { erf(x) }
}

fn erf_rule() -> CustomRule {
    CustomRule::unary(
        "erf",
        &[
            c_erf,
            |x| std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
            |x| -2.0 * x * std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
        ],
    )
}

fn sum_g(x: &[Var<f64>], g: impl Fn(Var<f64>) -> Var<f64>) -> Var<f64> {
    x.iter().fold(Var::constant(0.0), |s, &v| s + g(v) * v)
}

/// Median over batches of the time of one call of `f`, in microseconds.
fn median_us(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    let once = start.elapsed().as_secs_f64();
    let per_batch = ((0.02 / once.max(1e-9)) as usize).clamp(1, 100_000);
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / per_batch as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args = bench_args();
    let sizes = [100usize, 500];
    let gps: Vec<Gp> = sizes.iter().map(|&n| Gp::new(n)).collect();
    for gp in &gps {
        let a = mixad::gradient(|t| gp.nll_block(t), &THETA);
        let b = mixad::gradient(|t| gp.nll_scalar(t), &THETA);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-8 * (1.0 + y.abs()), "{a:?} vs {b:?}");
        }
    }
    let rule = erf_rule();
    let xs: Vec<f64> = {
        let mut rng = Lcg(3);
        (0..1000).map(|_| rng.uniform()).collect()
    };
    let wanted = |id: &str| args.filter.as_deref().is_none_or(|f| id.contains(f));

    if args.criterion {
        let mut c = Criterion::default().configure_from_args();
        for (gp, n) in gps.iter().zip(sizes) {
            let name = format!("gp_nll_n{n}");
            if !wanted(&name) {
                continue;
            }
            let mut group = c.benchmark_group(&name);
            group.sample_size(10);
            group.bench_function("f", |b| b.iter(|| gp.nll_scalar(black_box(&THETA[..]))));
            group.bench_function("mixad_block", |b| {
                b.iter(|| mixad::gradient(|t| gp.nll_block(t), black_box(&THETA)))
            });
            group.bench_function("mixad_scalarised", |b| {
                b.iter(|| mixad::gradient(|t| gp.nll_scalar(t), black_box(&THETA)))
            });
            group.bench_function("mixad_block_hessian", |b| {
                b.iter(|| mixad::hessian(|t| gp.nll_block(t), black_box(&THETA)))
            });
            group.finish();
        }
        if wanted("custom_erf_n1000") {
            let mut group = c.benchmark_group("custom_erf_n1000");
            group.bench_function("builtin", |b| {
                b.iter(|| mixad::gradient(|x| sum_g(x, |v| v.exp()), black_box(&xs)))
            });
            group.bench_function("custom_rule", |b| {
                b.iter(|| mixad::gradient(|x| sum_g(x, |v| rule.call1(v)), black_box(&xs)))
            });
            group.finish();
        }
        c.final_summary();
    }

    if args.ratios {
        println!("\nRatios (median of batches, µs):");
        println!(
            "{:<18} {:>10} {:>12} {:>14} {:>12} {:>14} {:>16}",
            "case", "f", "block grad", "scalar grad", "block / f", "scalar / f", "scalar / block"
        );
        for (gp, n) in gps.iter().zip(sizes) {
            let name = format!("gp_nll_n{n}");
            if !wanted(&name) {
                continue;
            }
            let f = median_us(|| {
                black_box(gp.nll_scalar(black_box(&THETA[..])));
            });
            let block = median_us(|| {
                black_box(mixad::gradient(|t| gp.nll_block(t), black_box(&THETA)));
            });
            let scalar = median_us(|| {
                black_box(mixad::gradient(|t| gp.nll_scalar(t), black_box(&THETA)));
            });
            println!(
                "{:<18} {:>10} {:>12} {:>14} {:>12.1} {:>14.1} {:>16.1}",
                name,
                fmt_us(f),
                fmt_us(block),
                fmt_us(scalar),
                block / f,
                scalar / f,
                scalar / block
            );
        }
        if wanted("custom_erf_n1000") {
            let builtin = median_us(|| {
                black_box(mixad::gradient(|x| sum_g(x, |v| v.exp()), black_box(&xs)));
            });
            let custom = median_us(|| {
                black_box(mixad::gradient(
                    |x| sum_g(x, |v| rule.call1(v)),
                    black_box(&xs),
                ));
            });
            println!(
                "custom_erf_n1000: built-in rule {} µs, custom rule {} µs ({:.2}×)",
                fmt_us(builtin),
                fmt_us(custom),
                custom / builtin
            );
        }
    }
}
