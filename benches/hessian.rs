//! Hessian and Hessian-vector-product benchmarks: mixad against echidna 0.15, num-dual 0.15
//! and a central finite-difference Hessian, side by side.
//!
//! One criterion group per case (`rosen_n10` … `mlp_n1001`); inside each group, one
//! benchmark per tool:
//!
//! | id | what is timed |
//! |---|---|
//! | `f` | the function alone at `f64` |
//! | `mixad_hvp` | `mixad::hvp` (one-shot: record at `Var<Dual<f64>>`, one sweep) |
//! | `mixad_hvp_prepared` | `Recording::hvp` (recorded once outside the loop) |
//! | `echidna_hvp` | `BytecodeTape::hvp_with_buf` (recorded once outside the loop) |
//! | `mixad_hessian_1t` | `Recording::value_gradient_hessian_into`, `Parallelism::Serial` |
//! | `mixad_hessian_all` | the same with `threads: None` (rayon's global pool) |
//! | `mixad_hessian` | `mixad::hessian` (one-shot: record, sweeps, `faer::Mat`) |
//! | `echidna_hessian` | `BytecodeTape::hessian` (recorded once; one sweep per column) |
//! | `echidna_hessian_8` | `BytecodeTape::hessian_vec::<8>` (8 columns per sweep) |
//! | `echidna_hessian_par` | `BytecodeTape::hessian_par` (rayon, one sweep per column) |
//! | `num_dual_hessian` | `num_dual::hessian` with `Dual2DVec64` |
//! | `fd_hessian` | central differences of mixad's recorded gradient (2n gradients) |
//!
//! A further group per size, `nested_particle_pN`, times the outer gradient of an inner
//! forward-mode gradient: mixad's translated reverse over forward (`mixad::nested::gradient`
//! under `mixad::reverse::gradient`) against plain taping of the dual arithmetic
//! (`mixad::forward::gradient` at `S = Var<f64>` under `mixad::reverse::gradient`).
//!
//! Combinations that would take more than about half a second per call are left out (see
//! [`limits`]). After criterion, ratio tables are printed from a plain median-of-batches
//! timer (criterion does not hand its estimates back to the caller). `MIXAD_RATIOS=0` skips
//! the tables, `MIXAD_RATIOS=only` skips criterion and prints only the tables. A positional
//! filter argument (as for criterion, but matched as a plain substring) applies to both.
//!
//! Every tool's result is checked against mixad's and echidna's before anything is timed,
//! so a fast wrong answer cannot slip into the tables.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use mixad::faer::Mat;
use mixad::forward::{DualVec, LANES};
use mixad::Function;
use mixad::{Options, Parallelism};
use nalgebra::DVector;
use num_dual::{Dual2DVec64, DualNum};
use num_traits::Float;

mod common;
use common::{fmt_us, DenseLog, Lcg, Logistic, Objective, Rosenbrock};

// ---------------------------------------------------------------------------------------
// The functions, written once.

/// Inputs per row of the MLP's dataset.
const MLP_IN: usize = 3;
/// Rows of the MLP's dataset.
const MLP_ROWS: usize = 32;

/// Mean squared error of a one-hidden-layer tanh network `ŷ = w₂ᵀ tanh(W₁a + b₁) + b₂` on a
/// fixed dataset; the parameters `(W₁ row-major, b₁, w₂, b₂)` are the inputs, so a hidden
/// width `h` gives `n = h·(MLP_IN + 2) + 1` (h = 2, 6, 20, 60, 200: n = 11 … 1001).
struct Mlp {
    features: Vec<f64>,
    targets: Vec<f64>,
    hidden: usize,
}

impl Mlp {
    fn new(hidden: usize, seed: u64) -> Self {
        let mut rng = Lcg(seed);
        let features: Vec<f64> = (0..MLP_ROWS * MLP_IN).map(|_| rng.uniform()).collect();
        let targets = features
            .chunks_exact(MLP_IN)
            .map(|a| (3.0 * a[0]).sin() * a[1] + 0.5 * a[2])
            .collect();
        Mlp {
            features,
            targets,
            hidden,
        }
    }

    fn n(&self) -> usize {
        self.hidden * (MLP_IN + 2) + 1
    }
}

impl Objective for Mlp {
    fn eval<T: Float>(&self, p: &[T]) -> T {
        let h = self.hidden;
        let (w1, rest) = p.split_at(h * MLP_IN);
        let (b1, rest) = rest.split_at(h);
        let (w2, b2) = rest.split_at(h);
        let mut loss = T::zero();
        for (a, &y) in self.features.chunks_exact(MLP_IN).zip(&self.targets) {
            let mut out = b2[0];
            for k in 0..h {
                let mut z = b1[k];
                for j in 0..MLP_IN {
                    z = z + w1[k * MLP_IN + j] * T::from(a[j]).unwrap();
                }
                out = out + w2[k] * z.tanh();
            }
            let r = out - T::from(y).unwrap();
            loss = loss + r * r;
        }
        loss * T::from(1.0 / MLP_ROWS as f64).unwrap()
    }

    fn eval_num_dual<T: DualNum<Primitive = f64>>(&self, p: &[T]) -> T {
        let h = self.hidden;
        let (w1, rest) = p.split_at(h * MLP_IN);
        let (b1, rest) = rest.split_at(h);
        let (w2, b2) = rest.split_at(h);
        let mut loss = T::from(0.0);
        for (a, &y) in self.features.chunks_exact(MLP_IN).zip(&self.targets) {
            let mut out = b2[0].clone();
            for k in 0..h {
                let mut z = b1[k].clone();
                for j in 0..MLP_IN {
                    z += w1[k * MLP_IN + j].clone() * a[j];
                }
                out += w2[k].clone() * z.tanh();
            }
            let r = out - y;
            loss += r.clone() * r;
        }
        loss * (1.0 / MLP_ROWS as f64)
    }
}

// ---------------------------------------------------------------------------------------
// The cases and the variants timed for each.

const SIZES: [usize; 5] = [10, 30, 100, 300, 1000];
const LOGISTIC_ROWS: usize = 200;
/// MLP hidden widths: parameter counts 11, 31, 101, 301, 1001.
const MLP_HIDDEN: [usize; 5] = [2, 6, 20, 60, 200];

/// Largest `n` at which each (slow) tool runs for one function; beyond it one call would
/// take more than about half a second on a 2-core machine.
#[derive(Clone, Copy)]
struct Limits {
    /// mixad's dense Hessians (prepared and one-shot).
    mixad: usize,
    /// echidna's one-column-per-sweep Hessians (`hessian`, `hessian_par`).
    echidna: usize,
    /// echidna's 8-lane Hessian.
    echidna_8: usize,
    num_dual: usize,
    fd: usize,
}

fn limits(function: &str) -> Limits {
    match function {
        "rosen" | "dense" => Limits {
            mixad: usize::MAX,
            echidna: usize::MAX,
            echidna_8: usize::MAX,
            num_dual: 300,
            fd: usize::MAX,
        },
        // A tape of 200·2n entries, mostly linear: one-column sweeps and finite differences
        // pass 1.5 s at n = 300, and n = 1000 is out of reach for every dense Hessian.
        "logistic" => Limits {
            mixad: 300,
            echidna: 100,
            echidna_8: 300,
            num_dual: 300,
            fd: 100,
        },
        // At n = 1001, one-column sweeps and finite differences take 3-4 s per call and
        // num-dual passes 1 s from n = 301.
        _ => Limits {
            mixad: usize::MAX,
            echidna: 301,
            echidna_8: usize::MAX,
            num_dual: 101,
            fd: 301,
        },
    }
}

/// Something that times closures: criterion, or the median timer of the ratio tables.
trait Sink {
    fn run<R, F: FnMut() -> R>(&mut self, tool: &'static str, f: F);
}

fn rosen_point(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 + 0.4 * (i as f64).cos()).collect()
}

fn dense_point(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.3 * (0.9 * i as f64).sin()).collect()
}

fn small_point(n: usize, scale: f64, seed: u64) -> Vec<f64> {
    let mut rng = Lcg(seed);
    (0..n).map(|_| scale * rng.uniform()).collect()
}

/// The direction of every HVP.
fn direction(n: usize) -> Vec<f64> {
    (0..n).map(|i| (0.7 * i as f64).cos()).collect()
}

/// One case: an objective at a point, with the limits of its function.
enum Case<'a> {
    Rosen(&'a [f64]),
    Dense(&'a [f64]),
    Logistic(&'a Logistic, &'a [f64]),
    Mlp(&'a Mlp, &'a [f64]),
    Nested(&'a Particles),
}

impl Case<'_> {
    fn n(&self) -> usize {
        match *self {
            Case::Rosen(x) | Case::Dense(x) | Case::Logistic(_, x) | Case::Mlp(_, x) => x.len(),
            Case::Nested(p) => p.points.len() / 2,
        }
    }

    fn run<S: Sink>(&self, sink: &mut S) {
        match *self {
            Case::Rosen(x) => run_variants(sink, &Rosenbrock, x, limits("rosen")),
            Case::Dense(x) => run_variants(sink, &DenseLog, x, limits("dense")),
            Case::Logistic(obj, x) => run_variants(sink, obj, x, limits("logistic")),
            Case::Mlp(obj, x) => run_variants(sink, obj, x, limits("mlp")),
            Case::Nested(p) => run_nested(sink, p),
        }
    }
}

/// Every case, by name; `wanted` says which names to build at all.
fn for_each_case(wanted: impl Fn(&str) -> bool, mut visit: impl FnMut(&str, Case<'_>)) {
    for n in SIZES {
        let name = format!("rosen_n{n}");
        if wanted(&name) {
            visit(&name, Case::Rosen(&rosen_point(n)));
        }
    }
    for n in SIZES {
        let name = format!("dense_n{n}");
        if wanted(&name) {
            visit(&name, Case::Dense(&dense_point(n)));
        }
    }
    for n in SIZES {
        let name = format!("logistic_n{n}");
        if wanted(&name) {
            let obj = Logistic::new(LOGISTIC_ROWS, n, 12345);
            visit(&name, Case::Logistic(&obj, &small_point(n, 0.1, 7)));
        }
    }
    for h in MLP_HIDDEN {
        let obj = Mlp::new(h, 4242);
        let name = format!("mlp_n{}", obj.n());
        if wanted(&name) {
            visit(&name, Case::Mlp(&obj, &small_point(obj.n(), 0.5, 99)));
        }
    }
    for points in [30, 300] {
        let name = format!("nested_particle_p{points}");
        if wanted(&name) {
            visit(&name, Case::Nested(&Particles::new(points)));
        }
    }
}

/// Checks every tool against mixad's and echidna's Hessians, then times each variant.
fn run_variants<S: Sink, O: Objective>(sink: &mut S, obj: &O, x: &[f64], lim: Limits) {
    let n = x.len();
    let v = direction(n);
    check(obj, x, &v, lim);

    sink.run("f", || obj.eval(black_box(x)));

    // ---- Hessian-vector products.
    sink.run("mixad_hvp", || {
        mixad::hvp(|p| obj.eval(p), black_box(x), black_box(&v))
    });
    let serial = Options {
        parallelism: Parallelism::Serial,
        ..Options::default()
    };
    let mut prepared_1t = mixad::record_with(|p| obj.eval(p), x, serial);
    sink.run("mixad_hvp_prepared", || {
        prepared_1t.hvp(black_box(x), black_box(&v))
    });
    let (tape, _) = echidna::record(|p| obj.eval(p), x);
    let (mut duals, mut adjoints) = (Vec::new(), Vec::new());
    sink.run("echidna_hvp", || {
        tape.hvp_with_buf(black_box(x), black_box(&v), &mut duals, &mut adjoints)
    });

    // ---- Dense Hessians.
    let (mut grad, mut hess) = (vec![0.0; n], Mat::zeros(n, n));
    if n <= lim.mixad {
        sink.run("mixad_hessian_1t", || {
            let value =
                prepared_1t.value_gradient_hessian_into(black_box(x), &mut grad, hess.as_mut());
            black_box(&hess);
            value
        });
        let mut prepared_all = mixad::record(|p| obj.eval(p), x);
        sink.run("mixad_hessian_all", || {
            let value =
                prepared_all.value_gradient_hessian_into(black_box(x), &mut grad, hess.as_mut());
            black_box(&hess);
            value
        });
        assert_eq!(
            prepared_1t.rerecord_count(),
            0,
            "the objectives have no branches"
        );
        assert_eq!(
            prepared_all.rerecord_count(),
            0,
            "the objectives have no branches"
        );
        sink.run("mixad_hessian", || {
            mixad::hessian(|p| obj.eval(p), black_box(x))
        });
    }
    if n <= lim.echidna {
        sink.run("echidna_hessian", || tape.hessian(black_box(x)));
    }
    if n <= lim.echidna_8 {
        sink.run("echidna_hessian_8", || tape.hessian_vec::<8>(black_box(x)));
    }
    if n <= lim.echidna {
        sink.run("echidna_hessian_par", || tape.hessian_par(black_box(x)));
    }
    if n <= lim.num_dual {
        let xv = DVector::from_column_slice(x);
        sink.run("num_dual_hessian", || {
            num_dual::hessian(
                |p: DVector<Dual2DVec64>| obj.eval_num_dual(p.as_slice()),
                black_box(&xv),
            )
        });
    }
    if n <= lim.fd {
        let mut rec = mixad::record(|p| obj.eval(p), x);
        let mut fd = FdHessian::new(n);
        let mut fd_hess = vec![0.0; n * n];
        sink.run("fd_hessian", || {
            fd.compute(
                |p, g| {
                    rec.value_and_gradient_into(p, g);
                },
                black_box(x),
                &mut fd_hess,
            );
            black_box(&fd_hess);
        });
    }
}

/// Central differences of a gradient, column by column, then symmetrized:
/// `H[:, j] ≈ (∇f(x + hⱼeⱼ) − ∇f(x − hⱼeⱼ)) / 2hⱼ` with `hⱼ = ε^(1/3)·max(1, |xⱼ|)`.
struct FdHessian {
    point: Vec<f64>,
    plus: Vec<f64>,
    minus: Vec<f64>,
}

impl FdHessian {
    fn new(n: usize) -> Self {
        FdHessian {
            point: vec![0.0; n],
            plus: vec![0.0; n],
            minus: vec![0.0; n],
        }
    }

    /// Writes the Hessian column-major into `out` (`n²` entries).
    fn compute(&mut self, mut grad: impl FnMut(&[f64], &mut [f64]), x: &[f64], out: &mut [f64]) {
        let n = x.len();
        self.point.copy_from_slice(x);
        for j in 0..n {
            let h = f64::EPSILON.cbrt() * x[j].abs().max(1.0);
            self.point[j] = x[j] + h;
            grad(&self.point, &mut self.plus);
            self.point[j] = x[j] - h;
            grad(&self.point, &mut self.minus);
            self.point[j] = x[j];
            let col = &mut out[j * n..(j + 1) * n];
            for ((c, p), m) in col.iter_mut().zip(&self.plus).zip(&self.minus) {
                *c = (p - m) / (2.0 * h);
            }
        }
        for j in 0..n {
            for i in j + 1..n {
                let mean = 0.5 * (out[j * n + i] + out[i * n + j]);
                out[j * n + i] = mean;
                out[i * n + j] = mean;
            }
        }
    }
}

/// Panics unless `got` matches `want` to `tol` relative to the largest entry of `want`.
fn assert_close(tool: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{tool}: length");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol * scale,
            "{tool}: entry {i} = {a:e}, expected {b:e} (scale {scale:e})"
        );
    }
}

fn rows_to_col_major(h: &[Vec<f64>]) -> Vec<f64> {
    let n = h.len();
    let mut out = vec![0.0; n * n];
    for (i, row) in h.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            out[j * n + i] = v;
        }
    }
    out
}

/// Every tool's HVP and Hessian, against mixad's and echidna's.
fn check<O: Objective>(obj: &O, x: &[f64], v: &[f64], lim: Limits) {
    const TOL: f64 = 1e-9;
    let n = x.len();
    let (tape, _) = echidna::record(|p| obj.eval(p), x);
    let (_, hv_echidna) = tape.hvp(x, v);
    assert_close(
        "mixad_hvp",
        &mixad::hvp(|p| obj.eval(p), x, v),
        &hv_echidna,
        TOL,
    );
    let mut prepared = mixad::record(|p| obj.eval(p), x);
    assert_close("mixad_hvp_prepared", &prepared.hvp(x, v), &hv_echidna, TOL);
    if n > lim.mixad {
        return;
    }
    let h = mixad::hessian(|p| obj.eval(p), x);
    let reference: Vec<f64> = (0..n * n).map(|k| h[(k % n, k / n)]).collect();
    let hv: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| reference[j * n + i] * v[j]).sum())
        .collect();
    assert_close("mixad_hessian · v", &hv, &hv_echidna, TOL);
    let col_major = |h: &Mat<f64>| -> Vec<f64> { (0..n * n).map(|k| h[(k % n, k / n)]).collect() };
    let mut grad = vec![0.0; n];
    let mut hess = Mat::zeros(n, n);
    prepared.value_gradient_hessian_into(x, &mut grad, hess.as_mut());
    assert_close("mixad_hessian_all", &col_major(&hess), &reference, TOL);
    let mut serial = mixad::record_with(
        |p| obj.eval(p),
        x,
        Options {
            parallelism: Parallelism::Serial,
            ..Options::default()
        },
    );
    serial.value_gradient_hessian_into(x, &mut grad, hess.as_mut());
    assert_close("mixad_hessian_1t", &col_major(&hess), &reference, TOL);
    if n <= lim.echidna {
        let (_, _, he) = tape.hessian(x);
        assert_close("echidna_hessian", &rows_to_col_major(&he), &reference, TOL);
        let (_, _, he) = tape.hessian_par(x);
        assert_close(
            "echidna_hessian_par",
            &rows_to_col_major(&he),
            &reference,
            TOL,
        );
    }
    if n <= lim.echidna_8 {
        let (_, _, he) = tape.hessian_vec::<8>(x);
        assert_close(
            "echidna_hessian_8",
            &rows_to_col_major(&he),
            &reference,
            TOL,
        );
    }
    if n <= lim.num_dual {
        let (_, _, hn) = num_dual::hessian(
            |p: DVector<Dual2DVec64>| obj.eval_num_dual(p.as_slice()),
            &DVector::from_column_slice(x),
        );
        let hn: Vec<f64> = hn.iter().copied().collect(); // nalgebra: column-major
        assert_close("num_dual_hessian", &hn, &reference, TOL);
    }
    if n <= lim.fd {
        let mut rec = mixad::record(|p| obj.eval(p), x);
        let mut fd_hess = vec![0.0; n * n];
        FdHessian::new(n).compute(
            |p, g| {
                rec.value_and_gradient_into(p, g);
            },
            x,
            &mut fd_hess,
        );
        assert_close("fd_hessian", &fd_hess, &reference, 1e-5);
    }
}

// ---------------------------------------------------------------------------------------
// Reverse over forward: translated against plain taping.

/// `p(x; w) = 1/‖x − (10, 10 − w)‖ + 1/‖x − (10, 0)‖`: two unit charges, one moved by `w`.
struct Potential;

/// Evaluated on `(x₀, x₁, w)`: `x` followed by the parameter, as `mixad::nested` passes them.
impl Function for Potential {
    fn eval<T: mixad::Scalar>(&self, z: &[T]) -> T {
        let (x, w) = z.split_at(2);
        let ten = T::cst(10.0);
        let dx = x[0] - ten;
        let dy1 = x[1] - (ten - w[0]);
        let dy2 = x[1];
        Float::recip(Float::sqrt(dx * dx + dy1 * dy1))
            + Float::recip(Float::sqrt(dx * dx + dy2 * dy2))
    }
}

/// Evaluation points for `F(w) = Σₖ ∂p/∂x₀(xₖ; w)`, uniform in [0, 5]², stored `(x₀, x₁)`.
struct Particles {
    points: Vec<f64>,
    w: f64,
}

impl Particles {
    fn new(count: usize) -> Self {
        let mut rng = Lcg(2024);
        Particles {
            points: (0..2 * count).map(|_| 2.5 + 2.5 * rng.uniform()).collect(),
            w: 1.5,
        }
    }

    /// `F(w)` at any scalar, the inner gradients by `mixad::nested::gradient` (translated
    /// under reverse mode, plain forward mode otherwise).
    fn translated<S: mixad::Scalar>(&self, w: &[S]) -> S {
        let mut sum = S::zero();
        for pt in self.points.chunks_exact(2) {
            let x = [S::cst(pt[0]), S::cst(pt[1])];
            sum += mixad::nested::gradient(&Potential, &x, w)[0];
        }
        sum
    }

    /// `F(w)` with the inner gradients by `mixad::forward::gradient` at `S` (under reverse
    /// mode, `S = Var<f64>`: every dual operation is taped).
    fn taped<S: mixad::Scalar>(&self, w: &[S]) -> S {
        let params = [DualVec::<S, LANES>::constant(w[0])];
        let mut sum = S::zero();
        for pt in self.points.chunks_exact(2) {
            let x = [S::cst(pt[0]), S::cst(pt[1])];
            sum += mixad::forward::gradient(|xd| Potential.eval(&[xd[0], xd[1], params[0]]), &x)[0];
        }
        sum
    }
}

fn run_nested<S: Sink>(sink: &mut S, p: &Particles) {
    let w = [p.w];
    let translated = mixad::reverse::gradient(|v| p.translated(v), &w)[0];
    let taped = mixad::reverse::gradient(|v| p.taped(v), &w)[0];
    let h = 1e-5;
    let fd = (p.translated(&[p.w + h]) - p.translated(&[p.w - h])) / (2.0 * h);
    assert!(
        (translated - taped).abs() <= 1e-12 * taped.abs().max(1.0),
        "nested: translated {translated:e} vs taped {taped:e}"
    );
    assert!(
        (translated - fd).abs() <= 1e-6 * fd.abs().max(1.0),
        "nested: translated {translated:e} vs central difference {fd:e}"
    );

    sink.run("f", || p.translated(black_box(&w)));
    sink.run("translated", || {
        mixad::reverse::gradient(|v| p.translated(v), black_box(&w))
    });
    sink.run("taped", || {
        mixad::reverse::gradient(|v| p.taped(v), black_box(&w))
    });
}

// ---------------------------------------------------------------------------------------
// Sinks.

struct CriterionSink<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
}

impl Sink for CriterionSink<'_, '_> {
    fn run<R, F: FnMut() -> R>(&mut self, tool: &'static str, mut f: F) {
        self.group.bench_function(tool, |b| b.iter(&mut f));
    }
}

/// Median-of-batches timer: each batch runs long enough (≥ 2 ms) to swamp timer overhead;
/// the median over the batches, divided by the batch size, is the figure. Slow tools get
/// fewer batches (at least 5) so that each stays near a second.
struct MedianSink {
    case: String,
    filter: Option<String>,
    rows: Vec<(String, &'static str, f64)>,
}

impl Sink for MedianSink {
    fn run<R, F: FnMut() -> R>(&mut self, tool: &'static str, mut f: F) {
        const BATCH: Duration = Duration::from_millis(2);
        const BUDGET: Duration = Duration::from_millis(1000);
        const MAX_BATCHES: usize = 31;
        let id = format!("{}/{tool}", self.case);
        if tool != "f"
            && self
                .filter
                .as_ref()
                .is_some_and(|p| !id.contains(p.as_str()))
        {
            return;
        }
        // Warm up and size the batch.
        let mut iters = 1u64;
        let batch_time = loop {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            let elapsed = t.elapsed();
            if elapsed >= BATCH || iters >= 1 << 30 {
                break elapsed;
            }
            iters *= 2;
        };
        let batches =
            ((BUDGET.as_secs_f64() / batch_time.as_secs_f64()) as usize).clamp(5, MAX_BATCHES);
        let mut per_call: Vec<f64> = (0..batches)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(f());
                }
                t.elapsed().as_secs_f64() * 1e6 / iters as f64
            })
            .collect();
        per_call.sort_by(f64::total_cmp);
        self.rows
            .push((self.case.clone(), tool, per_call[batches / 2]));
    }
}

// ---------------------------------------------------------------------------------------
// Main: criterion groups, then the ratio tables.

/// Whether a case is built at all under a filter: when the filter's case part (before any
/// `/`) is part of the case's name, or the filter names a tool (then every case is built).
fn case_wanted(case: &str, filter: Option<&str>) -> bool {
    const TOOLS: [&str; 14] = [
        "f",
        "mixad_hvp",
        "mixad_hvp_prepared",
        "echidna_hvp",
        "mixad_hessian_1t",
        "mixad_hessian_all",
        "mixad_hessian",
        "echidna_hessian",
        "echidna_hessian_8",
        "echidna_hessian_par",
        "num_dual_hessian",
        "fd_hessian",
        "translated",
        "taped",
    ];
    match filter {
        None => true,
        Some(p) if p.contains('/') => case.contains(p.split('/').next().unwrap_or(p)),
        Some(p) => case.contains(p) || TOOLS.iter().any(|t| t.contains(p)),
    }
}

fn criterion_groups(c: &mut Criterion, filter: Option<&str>) {
    for_each_case(
        |case| case_wanted(case, filter),
        |case, run| {
            let mut group = c.benchmark_group(case);
            // From n = 300 on, some tools take 10-500 ms per call: flat sampling with 10
            // samples keeps each near a second or two.
            let large = run.n() >= 300;
            group
                .sample_size(if large { 10 } else { 20 })
                .sampling_mode(if large {
                    SamplingMode::Flat
                } else {
                    SamplingMode::Auto
                })
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_millis(1000));
            run.run(&mut CriterionSink { group: &mut group });
            group.finish();
        },
    );
}

fn ratio_tables(filter: Option<String>) {
    let mut sink = MedianSink {
        case: String::new(),
        filter: filter.clone(),
        rows: Vec::new(),
    };
    for_each_case(
        |case| case_wanted(case, filter.as_deref()),
        |case, run| {
            sink.case = case.to_string();
            run.run(&mut sink);
        },
    );
    let mut cases: Vec<&str> = Vec::new();
    for (case, _, _) in &sink.rows {
        if !cases.contains(&case.as_str()) {
            cases.push(case);
        }
    }
    let get = |case: &str, tool: &str| {
        sink.rows
            .iter()
            .find(|(c, t, _)| c == case && *t == tool)
            .map(|r| r.2)
    };
    let cell = |t: Option<f64>| t.map_or("—".to_string(), fmt_us);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.1}", a / b),
        _ => "—".to_string(),
    };
    let min = |ts: &[Option<f64>]| ts.iter().flatten().copied().reduce(f64::min);

    println!();
    println!("Ratio tables: median of 5-31 batches of >= 2 ms (about 1 s per tool).");
    println!();
    println!("HVP: µs [× f of the same case]");
    println!();
    println!("| case | f | mixad_hvp | mixad_hvp_prepared | echidna_hvp |");
    println!("|---|--:|--:|--:|--:|");
    for &case in cases.iter().filter(|c| !c.starts_with("nested")) {
        let f = get(case, "f");
        let with_ratio = |tool: &str| match (get(case, tool), f) {
            (Some(t), Some(f)) => format!("{} [{:.1}]", fmt_us(t), t / f),
            (t, _) => cell(t),
        };
        println!(
            "| {case} | {} | {} | {} | {} |",
            cell(f),
            with_ratio("mixad_hvp"),
            with_ratio("mixad_hvp_prepared"),
            with_ratio("echidna_hvp"),
        );
    }

    println!();
    println!("Dense Hessian: µs; speedups = other tool's time / mixad's (mixad best = the");
    println!("faster of 1 thread and all threads; serial = echidna_hessian_8 / mixad 1t)");
    println!();
    println!(
        "| case | mixad 1t | mixad all | mixad one-shot | echidna | echidna 8 lanes | \
         echidna par | num-dual | FD | vs echidna | vs echidna best | serial vs echidna 8 | \
         vs num-dual | 1t / all |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for &case in cases.iter().filter(|c| !c.starts_with("nested")) {
        let t1 = get(case, "mixad_hessian_1t");
        let tall = get(case, "mixad_hessian_all");
        if t1.is_none() && tall.is_none() {
            continue;
        }
        let best = min(&[t1, tall]);
        let e = get(case, "echidna_hessian");
        let e8 = get(case, "echidna_hessian_8");
        let epar = get(case, "echidna_hessian_par");
        let nd = get(case, "num_dual_hessian");
        println!(
            "| {case} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(t1),
            cell(tall),
            cell(get(case, "mixad_hessian")),
            cell(e),
            cell(e8),
            cell(epar),
            cell(nd),
            cell(get(case, "fd_hessian")),
            ratio(e, best),
            ratio(min(&[e, e8, epar]), best),
            ratio(e8, t1),
            ratio(nd, best),
            ratio(t1, tall),
        );
    }

    if cases.iter().any(|c| c.starts_with("nested")) {
        println!();
        println!("Reverse over forward: µs [× f]");
        println!();
        println!("| case | f | translated | taped | taped / translated |");
        println!("|---|--:|--:|--:|--:|");
        for &case in cases.iter().filter(|c| c.starts_with("nested")) {
            let f = get(case, "f");
            let (tr, tp) = (get(case, "translated"), get(case, "taped"));
            let with_ratio = |t: Option<f64>| match (t, f) {
                (Some(t), Some(f)) => format!("{} [{:.1}]", fmt_us(t), t / f),
                (t, _) => cell(t),
            };
            println!(
                "| {case} | {} | {} | {} | {} |",
                cell(f),
                with_ratio(tr),
                with_ratio(tp),
                ratio(tp, tr),
            );
        }
    }
}

fn main() {
    let args = common::bench_args();
    let filter = args.filter;
    if args.criterion {
        let mut c = Criterion::default().configure_from_args();
        criterion_groups(&mut c, filter.as_deref());
        c.final_summary();
    }
    if args.ratios {
        ratio_tables(filter);
    }
}
