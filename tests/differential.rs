//! Differential testing: random programs (see `programs/mod.rs`) differentiated in every
//! mode must agree with each other, with finite differences, and across replays.
//!
//! Properties, each its own test:
//! - [`modes_agree`]: value at `f64`; the gradient by forward mode at every chunk size, by
//!   reverse mode, and by a recording replayed; the Hessian serial and parallel at several
//!   chunk sizes, by `hvp`, and nested (forward over forward, forward over reverse, reverse
//!   over forward, reverse over reverse) all agree to a tight tolerance, and the Hessian is
//!   exactly symmetric.
//! - [`finite_differences_agree`]: gradient and Hessian against `mixad::check`'s
//!   Richardson-extrapolated differences, when every point of the stencil lies on the same
//!   smooth piece as `x`.
//! - [`replay_never_stale`]: a recording (and a prepared Hessian) replayed at a second
//!   point gives what a fresh recording there gives; it re-records exactly when a
//!   comparison went the other way.
//!
//! A failure prints the shrunk program as a Rust function and the points. Keep it as a
//! regression test in `differential_regressions.rs`. Set `MIXAD_PROPTEST_CASES` to run more
//! cases (a soak run): `MIXAD_PROPTEST_CASES=20000 cargo test --release --test differential`.

mod programs;

use std::fmt;

use faer::Mat;
use mixad::check::{self, CheckOptions, CheckReport};
use mixad::forward::{self, Dual};
use mixad::hessian::{self, HessianOptions};
use mixad::reverse::{self, Var};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use programs::{point, program, Program};

/// One random case: a program, a point, a second point, and a direction.
#[derive(Clone)]
pub struct Case {
    program: Program,
    x: Vec<f64>,
    /// Second point for replays: near `x` (small step) or anywhere.
    x2: Vec<f64>,
    v: Vec<f64>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n{}", self.program)?;
        writeln!(f, "let x = {:?};", self.x)?;
        writeln!(f, "let x2 = {:?};", self.x2)?;
        write!(f, "let v = {:?};", self.v)
    }
}

fn case(len: usize) -> impl Strategy<Value = Case> {
    // Points are drawn for the largest n and cut to the program's: a flat map from the
    // program to its points would shrink poorly.
    (program(len), point(8), point(8), point(8), any::<bool>()).prop_map(
        |(program, x, far, v, near)| {
            let n = program.n;
            let x2 = if near {
                x.iter().zip(&far).map(|(a, d)| a + d / 64.0).collect()
            } else {
                far
            };
            let cut = |p: Vec<f64>| p[..n].to_vec();
            Case {
                program,
                x: cut(x),
                x2: cut(x2),
                v: cut(v),
            }
        },
    )
}

/// Cases per property: `default`, or `MIXAD_PROPTEST_CASES` when set.
fn config(default: u32) -> Config {
    let cases = std::env::var("MIXAD_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        // Shrunk failures are kept as plain tests in differential_regressions.rs.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_global_rejects: cases.saturating_mul(4).max(1024),
        ..Config::default()
    }
}

/// `|a − b| ≤ rtol·max(|a|, |b|) + atol`, NaN never close.
fn close(a: f64, b: f64, rtol: f64, atol: f64) -> bool {
    (a - b).abs() <= rtol * a.abs().max(b.abs()) + atol
}

/// Largest magnitude among the values (an absolute scale for cancellation errors).
fn scale(values: &[f64]) -> f64 {
    values.iter().fold(1.0, |m, v| m.max(v.abs()))
}

/// Tight tolerance between modes: different modes sum the same products in different
/// orders, so they agree to rounding, relative to the largest entry.
const MODES: f64 = 1e-9;

/// The mode tolerance at a point whose operands come within `margin` of a singularity:
/// near one, derivative terms grow like `1/margin²` and cancel, leaving rounding errors
/// of that size (for example `atan2(x, x)`, constant, but with partials `±1/(2x)`).
fn modes_tol(margin: f64) -> f64 {
    MODES * margin.recip().powi(2).max(1.0)
}

/// Cases whose intermediate values exceed this are skipped: their derivatives are
/// differences of terms up to this large, and rounding errors of that size are no signal.
const PEAK: f64 = 1e6;

/// Every entry of `got` within `tol` of `want`, relative to the largest of `want`.
fn assert_vec(got: &[f64], want: &[f64], tol: f64, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "{}: lengths differ", what);
    let atol = tol * scale(want);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        prop_assert!(
            close(g, w, tol, atol),
            "{}[{}]: got {:e}, want {:e}\n got {:?}\nwant {:?}",
            what,
            i,
            g,
            w,
            got,
            want
        );
    }
    Ok(())
}

fn to_rows(h: &Mat<f64>) -> Vec<f64> {
    let n = h.nrows();
    (0..n * n).map(|k| h[(k / n, k % n)]).collect()
}

fn all_finite(values: &[f64]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// Forward-mode gradient at any scalar, one `jvp` per input (as in tests/nesting.rs).
fn fwd_grad<S: mixad::Scalar>(f: impl Fn(&[Dual<S>]) -> Dual<S>, x: &[S]) -> Vec<S> {
    (0..x.len())
        .map(|i| forward::jvp(|d: &[Dual<S>]| [f(d)], x, &unit::<S>(x.len(), i)).1[0])
        .collect()
}

/// The `i`-th basis vector of `Sⁿ`.
fn unit<S: mixad::Scalar>(n: usize, i: usize) -> Vec<S> {
    (0..n)
        .map(|j| if i == j { S::one() } else { S::zero() })
        .collect()
}

/// The Hessian, row-major, in every nesting of the generic APIs.
fn nested_hessians(p: &Program, x: &[f64]) -> Vec<(&'static str, Vec<f64>)> {
    let n = x.len();
    let rows = |row: &dyn Fn(usize) -> Vec<f64>| (0..n).flat_map(row).collect::<Vec<f64>>();
    let ff = rows(&|i| {
        fwd_grad(
            |xo: &[Dual<f64>]| fwd_grad(|xi: &[Dual<Dual<f64>>]| p.run(xi), xo)[i],
            x,
        )
    });
    // Column j = H·eⱼ: forward (outer) over reverse (inner), at Var<Dual<f64>>.
    let cols: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            let inner = |xo: &[Dual<f64>]| reverse::gradient(|xi: &[Var<Dual<f64>>]| p.run(xi), xo);
            forward::jvp(inner, x, &unit(n, j)).1
        })
        .collect();
    let fr = (0..n * n).map(|k| cols[k % n][k / n]).collect();
    let rf = rows(&|i| {
        reverse::gradient(
            |xo: &[Var<f64>]| fwd_grad(|xi: &[Dual<Var<f64>>]| p.run(xi), xo)[i],
            x,
        )
    });
    let rr = rows(&|i| {
        reverse::gradient(
            |xo: &[Var<f64>]| reverse::gradient(|xi: &[Var<Var<f64>>]| p.run(xi), xo)[i],
            x,
        )
    });
    vec![
        ("forward over forward", ff),
        ("forward over reverse", fr),
        ("reverse over forward", rf),
        ("reverse over reverse", rr),
    ]
}

/// Hessian-vector product `H·v` of a row-major `H`, and the scale of its rounding error.
fn mat_vec(h: &[f64], v: &[f64]) -> (Vec<f64>, f64) {
    let n = v.len();
    let hv = (0..n)
        .map(|i| (0..n).map(|j| h[i * n + j] * v[j]).sum())
        .collect();
    let size = (0..n)
        .map(|i| (0..n).map(|j| (h[i * n + j] * v[j]).abs()).sum::<f64>())
        .fold(1.0, f64::max);
    (hv, size)
}

/// Asserts `h` (row-major `n × n`) is exactly symmetric.
fn assert_symmetric(h: &[f64], n: usize, what: &str) -> Result<(), TestCaseError> {
    for i in 0..n {
        for j in 0..i {
            prop_assert!(
                h[i * n + j].to_bits() == h[j * n + i].to_bits(),
                "{}: H[{}][{}] = {:e} but H[{}][{}] = {:e}",
                what,
                i,
                j,
                h[i * n + j],
                j,
                i,
                h[j * n + i]
            );
        }
    }
    Ok(())
}

fn check_modes(c: &Case) -> Result<(), TestCaseError> {
    let (p, x) = (&c.program, c.x.as_slice());
    let n = x.len();
    let f = |v: &[Var<f64>]| p.run(v);
    let (y, trace) = p.trace(x);
    prop_assume!(!trace.undefined && trace.margin > 1e-3 && trace.peak < PEAK);
    let tol = modes_tol(trace.margin);
    let (y_rev, g) = reverse::value_and_gradient(f, x);
    prop_assume!(y.is_finite() && all_finite(&g));
    prop_assert!(
        close(y_rev, y, 1e-14, 0.0),
        "reverse value {} vs f64 {}",
        y_rev,
        y
    );

    for chunk in 1..=forward::LANES {
        let gf = forward::gradient_with_chunk(|d| p.run(d), x, chunk);
        assert_vec(&gf, &g, tol, &format!("forward gradient, chunk {chunk}"))?;
    }
    let mut rec = reverse::record(f, x);
    let (y_rec, g_rec) = rec.value_and_gradient(x);
    prop_assert!(
        close(y_rec, y, 1e-14, 0.0),
        "recorded value {} vs {}",
        y_rec,
        y
    );
    assert_vec(&g_rec, &g, tol, "recorded gradient")?;

    // The reference Hessian: serial, one column per sweep.
    let serial = |chunk| HessianOptions {
        chunk: Some(chunk),
        threads: Some(1),
    };
    let (y_h, g_h, h) = hessian::prepare(f, x, serial(1)).value_gradient_hessian(x);
    let h = to_rows(&h);
    prop_assume!(all_finite(&h));
    prop_assert!(
        close(y_h, y, 1e-14, 0.0),
        "Hessian's value {} vs {}",
        y_h,
        y
    );
    assert_vec(&g_h, &g, tol, "Hessian's gradient")?;
    assert_symmetric(&h, n, "Hessian, serial, chunk 1")?;

    let mut variants: Vec<(String, HessianOptions)> = [2, 3, 4, 8, 16]
        .into_iter()
        .filter(|&k| k <= n.next_power_of_two())
        .map(|k| (format!("serial, chunk {k}"), serial(k)))
        .collect();
    for chunk in [Some(1), Some(3), None] {
        let options = HessianOptions {
            chunk,
            threads: Some(2),
        };
        variants.push((format!("2 threads, chunk {chunk:?}"), options));
    }
    for (what, options) in variants {
        let hk = to_rows(&hessian::prepare(f, x, options).hessian(x));
        assert_symmetric(&hk, n, &what)?;
        assert_vec(&hk, &h, tol, &format!("Hessian, {what}"))?;
    }
    let h_default = to_rows(&mixad::hessian(f, x));
    assert_symmetric(&h_default, n, "mixad::hessian")?;
    assert_vec(&h_default, &h, tol, "mixad::hessian")?;

    let (hv_want, size) = mat_vec(&h, &c.v);
    let hv = mixad::hvp(|v: &[Var<Dual<f64>>]| p.run(v), x, &c.v);
    let hv_prepared = hessian::prepare(f, x, serial(1)).hvp(x, &c.v);
    for (what, got) in [("hvp", hv), ("prepared hvp", hv_prepared)] {
        for (i, (&a, &b)) in got.iter().zip(&hv_want).enumerate() {
            prop_assert!(
                close(a, b, tol, tol * size),
                "{}[{}]: {:e} vs H·v {:e}",
                what,
                i,
                a,
                b
            );
        }
    }

    for (what, hn) in nested_hessians(p, x) {
        assert_vec(&hn, &h, tol, &format!("Hessian, {what}"))?;
    }

    // Custom rules and sparse Hessians (being written concurrently): when they land, run
    // the program through them here and compare with `g` and `h` at `MODES`.
    // TODO(custom rules): a program op that calls a custom rule (e.g. a user `sin`
    //   with hand-written partials), checked against the built-in one.
    // TODO(sparse Hessian): the sparse Hessian of `p` (pattern detected from the
    //   recording) against `h`, entry by entry, including its structural zeros.
    Ok(())
}

/// Looser tolerance against finite differences (Richardson-extrapolated, step `1e-3`:
/// truncation error `O(h⁴)` times fifth derivatives, plus rounding `ε·|f|/h`).
const DIFFERENCES: f64 = 1e-6;

/// Claimed derivatives against the differences of `mixad::check` at steps `h` and `h/2`:
/// each entry must match the finer difference within the tolerance plus twice the gap
/// between the two differences (an estimate of their own truncation error: where the
/// function's high derivatives are large, the differences are too coarse to judge).
/// Where the two differ by more than 0.1 %, the step does not resolve the function (it
/// oscillates or bends faster), and that entry is not judged.
fn assert_differences(coarse: &CheckReport, fine: &CheckReport) -> Result<(), TestCaseError> {
    let claimed: Vec<f64> = fine.components.iter().map(|c| c.claimed).collect();
    let atol = DIFFERENCES * scale(&claimed);
    for (c, f) in coarse.components.iter().zip(&fine.components) {
        let gap = (c.finite_difference - f.finite_difference).abs();
        if gap > 1e-3 * (f.finite_difference.abs() + atol) {
            continue;
        }
        prop_assert!(
            close(
                f.claimed,
                f.finite_difference,
                DIFFERENCES,
                atol + 2.0 * gap
            ),
            "{} entry {:?} off (differences at h and h/2 differ by {:e})\n{}",
            fine.what,
            f.index,
            gap,
            fine
        );
    }
    Ok(())
}

/// Steps of the two difference checks.
const STEPS: [f64; 2] = [1e-3, 5e-4];

/// True when every point `mixad::check` evaluates (x ± h·eⱼ, x ± h/2·eⱼ at both steps)
/// lies on `x`'s smooth piece and moves no rule's operand by more than 0.2 (beyond
/// that, a difference does not resolve an oscillating or sharply bending function).
fn resolved(p: &Program, x: &[f64], trace: &programs::Trace) -> bool {
    (0..x.len()).all(|j| {
        let h = STEPS[0] * x[j].abs().max(1.0);
        [-1.0, -0.5, -0.25, 0.25, 0.5, 1.0].iter().all(|s| {
            let mut q = x.to_vec();
            q[j] += s * h;
            let (_, near) = p.trace(&q);
            near.same_piece(trace) && near.largest_move(trace) < 0.2
        })
    })
}

/// Gradient and Hessian against `mixad::check` when the whole stencil lies on `x`'s
/// smooth piece, away from singularities.
fn check_differences(c: &Case) -> Result<(), TestCaseError> {
    let (p, x) = (&c.program, c.x.as_slice());
    let f = |v: &[Var<f64>]| p.run(v);
    let (y, trace) = p.trace(x);
    prop_assume!(y.is_finite() && trace.margin > 0.1 && trace.peak < PEAK);
    prop_assume!(resolved(p, x, &trace));
    let g = reverse::gradient(f, x);
    let h = to_rows(&mixad::hessian(f, x));
    prop_assume!(all_finite(&g) && all_finite(&h));

    let [coarse, fine] = STEPS.map(|step| {
        let options = CheckOptions {
            step,
            ..CheckOptions::default()
        };
        (
            check::check_gradient_with(f, x, options),
            check::check_hessian_of_with(|q| reverse::gradient(f, q), |_| h.clone(), x, options),
        )
    });
    assert_differences(&coarse.0, &fine.0)?;
    assert_differences(&coarse.1, &fine.1)
}

/// A recording made at `x` and replayed at `x2` gives exactly what a fresh evaluation at
/// `x2` gives, re-recording exactly when a comparison goes the other way there.
fn check_replay(c: &Case) -> Result<(), TestCaseError> {
    let (p, x, x2) = (&c.program, c.x.as_slice(), c.x2.as_slice());
    let f = |v: &[Var<f64>]| p.run(v);
    let (_, at_x) = p.trace(x);
    let (_, at_x2) = p.trace(x2);
    let flipped = at_x.flow != at_x2.flow;
    let (y2, g2) = reverse::value_and_gradient(f, x2);
    prop_assume!(!at_x2.undefined && y2.is_finite() && all_finite(&g2));

    let mut rec = reverse::record(f, x);
    let (y_rec, g_rec) = rec.value_and_gradient(x2);
    prop_assert_eq!(
        rec.rerecord_count(),
        usize::from(flipped),
        "re-recorded {} times; a comparison flipped: {}",
        rec.rerecord_count(),
        flipped
    );
    prop_assert!(
        close(y_rec, y2, 1e-14, 0.0),
        "replayed value {} vs {}",
        y_rec,
        y2
    );
    assert_vec(&g_rec, &g2, 1e-14, "replayed gradient")?;
    // The refusing variant refuses exactly when a branch flipped.
    let refused = reverse::record(f, x).try_value_and_gradient(x2).is_err();
    prop_assert_eq!(
        refused,
        flipped,
        "try_value_and_gradient refused: {}",
        refused
    );

    let h2 = to_rows(&mixad::hessian(f, x2));
    prop_assume!(all_finite(&h2));
    let mut prepared = hessian::prepare(f, x, HessianOptions::default());
    let (y_p, g_p, h_p) = prepared.value_gradient_hessian(x2);
    prop_assert_eq!(prepared.rerecord_count(), usize::from(flipped));
    prop_assert!(
        close(y_p, y2, 1e-14, 0.0),
        "prepared value {} vs {}",
        y_p,
        y2
    );
    assert_vec(&g_p, &g2, 1e-14, "prepared gradient")?;
    assert_vec(&to_rows(&h_p), &h2, 1e-14, "prepared Hessian")?;
    let hv = hessian::prepare(f, x, HessianOptions::default()).hvp(x2, &c.v);
    let hv_fresh = mixad::hvp(|v: &[Var<Dual<f64>>]| p.run(v), x2, &c.v);
    assert_vec(&hv, &hv_fresh, 1e-14, "prepared hvp")?;
    Ok(())
}

/// Largest statement count of a generated program.
const LEN: usize = 12;

proptest! {
    #![proptest_config(config(64))]

    /// Every mode of differentiation gives the same value, gradient and Hessian.
    #[test]
    fn modes_agree(c in case(LEN)) {
        check_modes(&c)?;
    }

    /// Gradients and Hessians match finite differences on smooth pieces.
    #[test]
    fn finite_differences_agree(c in case(LEN)) {
        check_differences(&c)?;
    }

    /// Replayed recordings are never stale.
    #[test]
    fn replay_never_stale(c in case(LEN)) {
        check_replay(&c)?;
    }
}

/// The generator's reach: over a fixed sample, every rule is drawn, and most cases get
/// past each property's filters, so none of the properties above is vacuous.
#[test]
fn generator_covers_its_ground() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = case(LEN);
    let (mut total, mut modes, mut smooth, mut flipped, mut loops) = (0, 0, 0, 0, 0);
    let mut rules = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        total += 1;
        rules.extend(c.program.rules());
        let (y, t) = c.program.trace(&c.x);
        if y.is_finite() && !t.undefined && t.margin > 1e-3 && t.peak < PEAK {
            modes += 1;
        }
        if y.is_finite() && t.margin > 0.1 && t.peak < PEAK && resolved(&c.program, &c.x, &t) {
            smooth += 1;
        }
        if t.flow != c.program.trace(&c.x2).1.flow {
            flipped += 1;
        }
        if t.flow.len() > 1 {
            loops += 1;
        }
    }
    eprintln!(
        "{total} cases: {modes} past the mode filter, {smooth} past the smoothness filter, \
         {flipped} flip a branch at the second point, {loops} take two decisions or more; \
         {} distinct operations",
        rules.len()
    );
    let (unary, binary) = programs::all_rules();
    for r in unary.iter().chain(&binary) {
        assert!(rules.contains(r), "{r} never drawn");
    }
    assert!(modes * 10 > total * 8, "too few cases checked across modes");
    assert!(
        smooth * 10 > total * 6,
        "too few cases checked against differences"
    );
    assert!(flipped * 5 > total, "too few replays cross a branch");
    assert!(loops * 5 > total, "too few programs branch more than once");
}
