//! Gradient benchmarks: mixad against echidna 0.15 and num-dual 0.15, side by side.
//!
//! One criterion group per case (`rosen_n10` … `rosen_n100000`, `logistic_n100`); inside
//! each group, one benchmark per tool:
//!
//! | id | what is timed |
//! |---|---|
//! | `f` | the function alone at `f64` |
//! | `mixad_reverse` | `mixad::reverse::gradient` (one-shot: record, sweep, clear) |
//! | `mixad_recorded` | `Recording::value_and_gradient_into`, interpreted (recorded once outside the loop, `Compile::Never`) |
//! | `mixad_compiled` | the same, compiled (`Compile::Immediately`; compilation outside the loop) |
//! | `mixad_forward` | `mixad::forward::gradient` (⌈n/8⌉ sweeps; n ≤ 1000 only) |
//! | `echidna_grad` | `echidna::grad` (one-shot) |
//! | `echidna_tape` | `BytecodeTape::gradient_with_buf` (recorded once outside the loop) |
//! | `num_dual` | `num_dual::gradient` with `DualDVec64` (n ≤ 1000 only) |
//!
//! After criterion, a ratio table `case | tool | µs | ×f` is printed from a plain
//! median-of-batches timer (criterion does not hand its estimates back to the caller).
//! `MIXAD_RATIOS=0` skips the table, `MIXAD_RATIOS=only` skips criterion and prints only
//! the table. A positional filter argument (as for criterion) applies to both.
//!
//! Every tool's gradient is checked against the hand-written gradient before anything is
//! timed, so a fast wrong answer cannot slip into the table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use nalgebra::DVector;
use num_dual::DualDVec64;

mod common;
use common::{fmt_us, Lcg, Logistic, Objective, Rosenbrock};

// ---------------------------------------------------------------------------------------
// The functions, written once.

/// A benchmark function whose gradient is also written by hand, to check every tool.
trait ExactGradient: Objective {
    fn exact_gradient(&self, x: &[f64]) -> Vec<f64>;
}

impl ExactGradient for Rosenbrock {
    fn exact_gradient(&self, x: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; x.len()];
        for i in 0..x.len() - 1 {
            let a = x[i + 1] - x[i] * x[i];
            g[i] += -400.0 * x[i] * a - 2.0 * (1.0 - x[i]);
            g[i + 1] += 200.0 * a;
        }
        g
    }
}

impl ExactGradient for Logistic {
    fn exact_gradient(&self, x: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; self.n];
        for (row, &y) in self.a.chunks_exact(self.n).zip(&self.y) {
            let z: f64 = row.iter().zip(x).map(|(a, b)| a * b).sum();
            let m = -y * z;
            let sigma = 1.0 / (1.0 + (-m).exp());
            for j in 0..self.n {
                g[j] += sigma * -y * row[j];
            }
        }
        g
    }
}

// ---------------------------------------------------------------------------------------
// The cases and the variants timed for each.

/// Above this many inputs, forward-mode tools (O(n) sweeps) are left out.
const FORWARD_MAX_N: usize = 1000;
const ROSEN_SIZES: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
const LOGISTIC_ROWS: usize = 200;
const LOGISTIC_N: usize = 100;

/// Something that times closures: criterion, or the median timer of the ratio table.
trait Sink {
    fn run<R, F: FnMut() -> R>(&mut self, tool: &'static str, f: F);
}

fn rosen_point(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 + 0.4 * (i as f64).cos()).collect()
}

fn logistic_point(n: usize) -> Vec<f64> {
    let mut rng = Lcg(7);
    (0..n).map(|_| 0.1 * rng.uniform()).collect()
}

/// One case: Rosenbrock or the logistic loss, at a point.
enum Case<'a> {
    Rosen(&'a [f64]),
    Logistic(&'a Logistic, &'a [f64]),
}

impl Case<'_> {
    fn n(&self) -> usize {
        match *self {
            Case::Rosen(x) | Case::Logistic(_, x) => x.len(),
        }
    }

    fn run<S: Sink>(&self, sink: &mut S) {
        match *self {
            Case::Rosen(x) => run_variants(sink, &Rosenbrock, x),
            Case::Logistic(obj, x) => run_variants(sink, obj, x),
        }
    }
}

/// Every case, by name.
fn for_each_case(mut visit: impl FnMut(&str, Case<'_>)) {
    for n in ROSEN_SIZES {
        let x = rosen_point(n);
        visit(&format!("rosen_n{n}"), Case::Rosen(&x));
    }
    let logistic = Logistic::new(LOGISTIC_ROWS, LOGISTIC_N, 12345);
    let x = logistic_point(LOGISTIC_N);
    visit(
        &format!("logistic_n{LOGISTIC_N}"),
        Case::Logistic(&logistic, &x),
    );
}

/// Checks every tool's gradient against the exact one, then times each variant.
fn run_variants<S: Sink, O: ExactGradient>(sink: &mut S, obj: &O, x: &[f64]) {
    let n = x.len();
    let forward = n <= FORWARD_MAX_N;
    check_gradients(obj, x, forward);

    sink.run("f", || obj.eval(black_box(x)));

    sink.run("mixad_reverse", || {
        mixad::reverse::gradient(|v| obj.eval(v), black_box(x))
    });

    for (tool, compile) in [
        ("mixad_recorded", mixad::Compile::Never),
        ("mixad_compiled", mixad::Compile::Immediately),
    ] {
        let options = mixad::Options {
            compile,
            ..Default::default()
        };
        let mut rec = mixad::record_with(|v| obj.eval(v), x, options);
        let mut grad = vec![0.0; n];
        rec.value_and_gradient_into(x, &mut grad);
        let compiled = matches!(rec.replay_mode(), mixad::ReplayMode::Compiled { .. });
        assert_eq!(
            compiled,
            compile == mixad::Compile::Immediately,
            "{tool}: {:?}",
            rec.replay_mode()
        );
        sink.run(tool, || {
            let value = rec.value_and_gradient_into(black_box(x), &mut grad);
            black_box(&grad);
            value
        });
        assert_eq!(
            rec.rerecord_count(),
            0,
            "Rosenbrock/logistic have no branches"
        );
    }

    if forward {
        sink.run("mixad_forward", || {
            mixad::forward::gradient(|v| obj.eval(v), black_box(x))
        });
    }

    sink.run("echidna_grad", || {
        echidna::grad(|v| obj.eval(v), black_box(x))
    });

    let (mut tape, _) = echidna::record(|v| obj.eval(v), x);
    let mut adjoints = Vec::new();
    sink.run("echidna_tape", || {
        tape.gradient_with_buf(black_box(x), &mut adjoints)
    });

    if forward {
        let xv = DVector::from_column_slice(x);
        sink.run("num_dual", || {
            num_dual::gradient(
                |v: DVector<DualDVec64>| obj.eval_num_dual(v.as_slice()),
                black_box(&xv),
            )
        });
    }
}

fn check_gradients<O: ExactGradient>(obj: &O, x: &[f64], forward: bool) {
    let exact = obj.exact_gradient(x);
    let close = |tool: &str, g: &[f64]| {
        assert_eq!(g.len(), exact.len(), "{tool}: gradient length");
        let scale = exact.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in g.iter().zip(&exact).enumerate() {
            assert!(
                (a - b).abs() <= 1e-10 * scale,
                "{tool}: gradient[{i}] = {a}, exact {b}"
            );
        }
    };
    close(
        "mixad_reverse",
        &mixad::reverse::gradient(|v| obj.eval(v), x),
    );
    let mut rec = mixad::record(|v| obj.eval(v), x);
    let shifted: Vec<f64> = x.iter().map(|v| v + 0.01).collect();
    let mut g = vec![0.0; x.len()];
    rec.value_and_gradient_into(&shifted, &mut g);
    let exact_shifted = obj.exact_gradient(&shifted);
    for (a, b) in g.iter().zip(&exact_shifted) {
        assert!((a - b).abs() <= 1e-10 * b.abs().max(1.0), "mixad_recorded");
    }
    let options = mixad::Options {
        compile: mixad::Compile::Immediately,
        ..Default::default()
    };
    let mut compiled = mixad::record_with(|v| obj.eval(v), x, options);
    close("mixad_compiled", &compiled.gradient(x));
    close("echidna_grad", &echidna::grad(|v| obj.eval(v), x));
    let (mut tape, _) = echidna::record(|v| obj.eval(v), x);
    close("echidna_tape", &tape.gradient(x));
    if forward {
        close(
            "mixad_forward",
            &mixad::forward::gradient(|v| obj.eval(v), x),
        );
        let (_, g) = num_dual::gradient(
            |v: DVector<DualDVec64>| obj.eval_num_dual(v.as_slice()),
            &DVector::from_column_slice(x),
        );
        close("num_dual", g.as_slice());
    }
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
/// the median over the batches, divided by the batch size, is the figure.
struct MedianSink {
    case: String,
    filter: Option<String>,
    /// (case, tool, median µs, fastest batch µs)
    rows: Vec<(String, &'static str, f64, f64)>,
}

impl Sink for MedianSink {
    fn run<R, F: FnMut() -> R>(&mut self, tool: &'static str, mut f: F) {
        const BATCH: Duration = Duration::from_millis(2);
        const BATCHES: usize = 31;
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
        loop {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            if t.elapsed() >= BATCH || iters >= 1 << 30 {
                break;
            }
            iters *= 2;
        }
        let mut per_call: Vec<f64> = (0..BATCHES)
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
            .push((self.case.clone(), tool, per_call[BATCHES / 2], per_call[0]));
    }
}

// ---------------------------------------------------------------------------------------
// Main: criterion groups, then the ratio table.

fn criterion_groups(c: &mut Criterion) {
    for_each_case(|case, run| {
        let mut group = c.benchmark_group(case);
        // At n = 10⁵ one gradient takes 10-30 ms: fewer samples keep each tool near 2 s.
        let large = run.n() >= 100_000;
        group
            .sample_size(if large { 10 } else { 20 })
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_millis(if large { 2000 } else { 1500 }));
        run.run(&mut CriterionSink { group: &mut group });
        group.finish();
    });
}

fn ratio_table(filter: Option<String>) {
    let mut sink = MedianSink {
        case: String::new(),
        filter,
        rows: Vec::new(),
    };
    for_each_case(|case, run| {
        sink.case = case.to_string();
        run.run(&mut sink);
    });
    println!();
    println!(
        "Ratio table: µs per call, median of 31 batches of >= 2 ms; ×f = time / time of f \
         (same case). The fastest batch is shown too: on a loaded machine it is the steadier \
         estimate of the uncontended cost."
    );
    println!();
    println!("| case | tool | µs | ×f | fastest µs | ×f (fastest) |");
    println!("|---|---|--:|--:|--:|--:|");
    let (mut f_med, mut f_min) = (f64::NAN, f64::NAN);
    for (case, tool, med, min) in &sink.rows {
        if *tool == "f" {
            (f_med, f_min) = (*med, *min);
        }
        println!(
            "| {case} | {tool} | {} | {:.1} | {} | {:.1} |",
            fmt_us(*med),
            med / f_med,
            fmt_us(*min),
            min / f_min
        );
    }
}

fn main() {
    let args = common::bench_args();
    let filter = args.filter;
    if args.criterion {
        let mut c = Criterion::default().configure_from_args();
        criterion_groups(&mut c);
        c.final_summary();
    }
    if args.ratios {
        ratio_table(filter);
    }
}
