//! The properties the differential tests check, as functions of one [`Case`], shared by
//! the random tests (`differential/mod.rs`) and the kept regressions
//! (`differential/regressions.rs`). Each returns a proptest `TestCaseError` on failure, or a
//! rejection when the case is outside what the property can judge (a point on a kink,
//! non-finite values, …).

use std::fmt;

use faer::Mat;
use mixad::check::{self, CheckOptions, CheckReport};
use mixad::forward::{self, Dual};
use mixad::nested;
use mixad::reverse::{self, Var};
use mixad::rules::CustomRule;
use mixad::sparse::ColouringKind;
use mixad::{Function, VectorFunction};
use mixad::{Options, Parallelism};
use proptest::prelude::*;

use super::{Program, Trace};

/// One random case: a program, a point, a second point, and a direction.
#[derive(Clone)]
pub struct Case {
    /// The program.
    pub program: Program,
    /// The point.
    pub x: Vec<f64>,
    /// Second point for replays: near `x` (small step) or anywhere.
    pub x2: Vec<f64>,
    /// A direction for Hessian-vector products.
    pub v: Vec<f64>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n{}", self.program)?;
        writeln!(f, "let x = {:?};", self.x)?;
        writeln!(f, "let x2 = {:?};", self.x2)?;
        write!(f, "let v = {:?};", self.v)
    }
}

/// `|a − b| ≤ rtol·max(|a|, |b|) + atol`, NaN never close.
pub fn close(a: f64, b: f64, rtol: f64, atol: f64) -> bool {
    (a - b).abs() <= rtol * a.abs().max(b.abs()) + atol
}

/// Largest magnitude among the values (an absolute scale for cancellation errors).
pub fn scale(values: &[f64]) -> f64 {
    values.iter().fold(1.0, |m, v| m.max(v.abs()))
}

/// Tight tolerance between modes: different modes sum the same products in different
/// orders, so they agree to rounding, relative to the largest entry.
pub const MODES: f64 = 1e-9;

/// The mode tolerance at a point whose operands come within `margin` of a singularity:
/// near one, derivative terms grow like `1/margin²` and cancel, leaving rounding errors
/// of that size (for example `atan2(x, x)`, constant, but with partials `±1/(2x)`).
pub fn modes_tol(margin: f64) -> f64 {
    MODES * margin.recip().powi(2).max(1.0)
}

/// Cases whose intermediate values exceed this are skipped: their derivatives are
/// differences of terms up to this large, and rounding errors of that size are no signal.
pub const PEAK: f64 = 1e6;

/// Where modes are compared, to a tolerance far tighter than the differences', values and
/// their first derivatives (slopes, [`Program::slope`]) must stay below this. Each mode
/// rounds differently, and its errors grow with products of values, slopes and adjoints:
/// a reverse sweep, say, accumulates `v·(w − w)` as `+a` and `−a` into `w`'s adjoint with
/// `a` of the size of two values multiplied, and reverse over reverse differentiates that
/// rounding. Beyond this bound the relative tolerance cannot follow them.
pub const MODES_PEAK: f64 = 1e4;

/// Every entry of `got` within `tol` of `want`, relative to the largest of `want`.
pub fn assert_vec(got: &[f64], want: &[f64], tol: f64, what: &str) -> Result<(), TestCaseError> {
    assert_near(got, want, tol, 0.0, what)
}

/// [`assert_vec`] with the absolute tolerance relative to at least `size` (the program's
/// largest intermediate value: derivatives that cancel terms that large keep their
/// rounding errors).
pub fn assert_near(
    got: &[f64],
    want: &[f64],
    tol: f64,
    size: f64,
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "{}: lengths differ", what);
    let atol = tol * scale(want).max(size);
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

pub fn to_rows(h: &Mat<f64>) -> Vec<f64> {
    let n = h.nrows();
    (0..n * n).map(|k| h[(k / n, k % n)]).collect()
}

pub fn all_finite(values: &[f64]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// Forward-mode gradient at any scalar, one `jvp` per input (as in `nested/mod.rs`).
pub fn fwd_grad<S: mixad::Scalar>(f: impl Fn(&[Dual<S>]) -> Dual<S>, x: &[S]) -> Vec<S> {
    (0..x.len())
        .map(|i| forward::jvp(|d: &[Dual<S>]| [f(d)], x, &unit::<S>(x.len(), i)).1[0])
        .collect()
}

/// The `i`-th basis vector of `Sⁿ`.
pub fn unit<S: mixad::Scalar>(n: usize, i: usize) -> Vec<S> {
    (0..n)
        .map(|j| if i == j { S::one() } else { S::zero() })
        .collect()
}

/// A program as an inner function of `mixad::nested` (no parameters: it sees `x` only).
struct Inner<'a>(&'a Program);

impl Function for Inner<'_> {
    fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T {
        self.0.run(x)
    }
}

/// The Hessian, row-major, in every nesting of the generic APIs.
pub fn nested_hessians(p: &Program, x: &[f64]) -> Vec<(&'static str, Vec<f64>)> {
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
    let mut all = vec![
        ("forward over forward", ff),
        ("forward over reverse", fr),
        ("reverse over forward", rf),
        ("reverse over reverse", rr),
    ];
    // Reverse over forward again, through `mixad::nested::gradient`: the inner forward
    // computation becomes one tape node per output, its partials from forward over forward.
    let translated =
        rows(&|i| reverse::gradient(|xo: &[Var<f64>]| nested::gradient(&Inner(p), xo, &[])[i], x));
    all.push(("reverse over translated forward", translated));
    all
}

/// Hessian-vector product `H·v` of a row-major `H`, and the scale of its rounding error.
pub fn mat_vec(h: &[f64], v: &[f64]) -> (Vec<f64>, f64) {
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
pub fn assert_symmetric(h: &[f64], n: usize, what: &str) -> Result<(), TestCaseError> {
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

pub fn check_modes(c: &Case) -> Result<(), TestCaseError> {
    let (p, x) = (&c.program, c.x.as_slice());
    let n = x.len();
    let f = |v: &[Var<f64>]| p.run(v);
    let (y, trace) = p.trace(x);
    prop_assume!(!trace.undefined && trace.margin > 1e-3 && trace.peak < MODES_PEAK);
    prop_assume!(p.slope(x) < MODES_PEAK);
    let tol = modes_tol(trace.margin);
    let size = trace.peak;
    let (y_rev, g) = reverse::value_and_gradient(f, x);
    prop_assume!(y.is_finite());
    // Before the gradient may skip the case: a decision taken otherwise than at f64 (an
    // `is_zero` that saw a derivative, say) can divide by zero and make it non-finite.
    prop_assert!(
        close(y_rev, y, 1e-14, 0.0),
        "reverse value {} vs f64 {}",
        y_rev,
        y
    );
    prop_assume!(all_finite(&g));

    let by_lanes = [
        (1, forward::gradient_with_lanes::<1, f64>(|d| p.run(d), x)),
        (2, forward::gradient_with_lanes::<2, f64>(|d| p.run(d), x)),
        (3, forward::gradient_with_lanes::<3, f64>(|d| p.run(d), x)),
        (8, forward::gradient(|d| p.run(d), x)),
        (16, forward::gradient_with_lanes::<16, f64>(|d| p.run(d), x)),
    ];
    for (lanes, gf) in by_lanes {
        assert_near(
            &gf,
            &g,
            tol,
            size,
            &format!("forward gradient, {lanes} lanes"),
        )?;
    }
    let mut rec = mixad::record(f, x);
    let (y_rec, g_rec) = rec.value_and_gradient(x);
    prop_assert!(
        close(y_rec, y, 1e-14, 0.0),
        "recorded value {} vs {}",
        y_rec,
        y
    );
    assert_near(&g_rec, &g, tol, size, "recorded gradient")?;
    // The compiled replay (where the recording compiles) equals the interpreted one to the
    // bit; NaNs are compared as NaN.
    let immediately = Options {
        compile: mixad::Compile::Immediately,
        ..Options::default()
    };
    let mut compiled = mixad::record_with(f, x, immediately);
    let (y_c, g_c) = compiled.value_and_gradient(x);
    let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    prop_assert!(same(y_c, y_rec), "compiled value {} vs {}", y_c, y_rec);
    for (k, (a, b)) in g_c.iter().zip(&g_rec).enumerate() {
        prop_assert!(same(*a, *b), "compiled ∂{} {} vs interpreted {}", k, a, b);
    }

    // The reference Hessian: serial, one column per sweep.
    let serial = |lanes| Options {
        lanes: Some(lanes),
        parallelism: Parallelism::Serial,
        ..Options::default()
    };
    let (y_h, g_h, h) = mixad::record_with(f, x, serial(1)).value_gradient_hessian(x);
    let h = to_rows(&h);
    prop_assume!(all_finite(&h));
    prop_assert!(
        close(y_h, y, 1e-14, 0.0),
        "Hessian's value {} vs {}",
        y_h,
        y
    );
    assert_near(&g_h, &g, tol, size, "Hessian's gradient")?;
    assert_symmetric(&h, n, "Hessian, serial, 1 lane")?;

    let mut variants: Vec<(String, Options)> = [2, 4, 8, 16]
        .into_iter()
        .filter(|&k| k <= n.next_power_of_two())
        .map(|k| (format!("serial, {k} lanes"), serial(k)))
        .collect();
    for lanes in [Some(1), Some(4), None] {
        let options = Options {
            lanes,
            parallelism: Parallelism::Threads(std::num::NonZeroUsize::new(2).unwrap()),
            ..Options::default()
        };
        variants.push((format!("2 threads, lanes {lanes:?}"), options));
    }
    for (what, options) in variants {
        let hk = to_rows(&mixad::record_with(f, x, options).hessian(x));
        assert_symmetric(&hk, n, &what)?;
        assert_near(&hk, &h, tol, size, &format!("Hessian, {what}"))?;
    }
    let h_default = to_rows(&mixad::hessian(f, x));
    assert_symmetric(&h_default, n, "mixad::hessian")?;
    assert_near(&h_default, &h, tol, size, "mixad::hessian")?;

    let (hv_want, hv_size) = mat_vec(&h, &c.v);
    let hv = mixad::hvp(|v: &[Var<Dual<f64>>]| p.run(v), x, &c.v);
    let hv_recorded = mixad::record_with(f, x, serial(1)).hvp(x, &c.v);
    for (what, got) in [("hvp", hv), ("recorded hvp", hv_recorded)] {
        for (i, (&a, &b)) in got.iter().zip(&hv_want).enumerate() {
            prop_assert!(
                close(a, b, tol, tol * hv_size.max(size)),
                "{}[{}]: {:e} vs H·v {:e}",
                what,
                i,
                a,
                b
            );
        }
    }

    for (what, hn) in nested_hessians(p, x) {
        assert_near(&hn, &h, tol, size, &format!("Hessian, {what}"))?;
    }

    // Sparse Hessians, both colourings: the same values as the dense Hessian, and a
    // pattern that never misses an entry the dense Hessian has.
    for colouring in [ColouringKind::Star, ColouringKind::Acyclic] {
        let options = Options {
            colouring,
            ..Options::default()
        };
        let sh = mixad::record_with(f, x, options).sparse_hessian(x);
        let what = format!("sparse Hessian, {colouring:?}");
        assert_near(&to_rows(&sh.to_dense()), &h, tol, size, &what)?;
        for (k, &hk) in h.iter().enumerate() {
            prop_assert!(
                hk == 0.0 || sh.pattern().contains(k / n, k % n),
                "{}: pattern misses ({}, {}) = {:e}",
                what,
                k / n,
                k % n,
                hk
            );
        }
    }

    // The whole program as one opaque custom rule (value at f64, gradient generic): every
    // mode through the rule's derivative tensors must give the same derivatives.
    let rule = CustomRule::generic(
        "program",
        n,
        {
            let p = p.clone();
            move |x: &[f64]| p.run(x)
        },
        ProgramGradient(p.clone()),
    );
    let g_rule = mixad::gradient(|v| rule.call(v), x);
    assert_near(&g_rule, &g, tol, size, "gradient through a custom rule")?;
    let h_rule = to_rows(&mixad::hessian(|v| rule.call(v), x));
    assert_near(&h_rule, &h, tol, size, "Hessian through a custom rule")?;
    let hv_rule = mixad::hvp(|v| rule.call(v), x, &c.v);
    for (i, (&a, &b)) in hv_rule.iter().zip(&hv_want).enumerate() {
        prop_assert!(
            close(a, b, tol, tol * hv_size.max(size)),
            "hvp through a custom rule [{}]: {:e} vs H·v {:e}",
            i,
            a,
            b
        );
    }
    Ok(())
}

/// A program's gradient, written generically (forward mode at any scalar type), so the
/// program can stand as a custom rule differentiable to any order.
struct ProgramGradient(Program);

impl VectorFunction for ProgramGradient {
    fn eval<T: mixad::Scalar>(&self, x: &[T]) -> Vec<T> {
        forward::gradient(|d| self.0.run(d), x)
    }
}

/// Looser tolerance against finite differences (Richardson-extrapolated, step `1e-3`:
/// truncation error `O(h⁴)` times fifth derivatives, plus rounding `ε·|f|/h`, which
/// [`rounding`] adds).
pub const DIFFERENCES: f64 = 1e-6;

/// The rounding error of a Richardson-extrapolated difference at step `h` of a function
/// whose evaluation sums terms up to `size`: each evaluation is off by some `ε·size`
/// (a few dozen roundings), the difference divides that by `h`, and the extrapolation
/// weighs it up again.
pub fn rounding(size: f64, h: f64) -> f64 {
    64.0 * f64::EPSILON * size / h
}

/// Claimed derivatives against the differences of `mixad::check` at the two [`STEPS`]:
/// each entry must match the finer difference within the tolerance plus twice the gap
/// between the two differences (an estimate of their own truncation error: where the
/// function's high derivatives are large, the differences are too coarse to judge).
/// Where the two differ by more than 0.1 %, the step does not resolve the function (it
/// oscillates or bends faster), and that entry is not judged.
///
/// `noise` is the differences' own rounding error (see [`rounding`]), added to the
/// tolerance.
pub fn assert_differences(
    coarse: &CheckReport,
    fine: &CheckReport,
    noise: f64,
) -> Result<(), TestCaseError> {
    let claimed: Vec<f64> = fine.components.iter().map(|c| c.claimed).collect();
    let atol = DIFFERENCES * scale(&claimed) + noise;
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
            "{} entry {:?} off (differences at the two steps differ by {:e})\n{}",
            fine.what,
            f.index,
            gap,
            fine
        );
    }
    Ok(())
}

/// Starting steps of the two difference checks. `mixad::check` searches downward from
/// its starting step by halving, so two steps a power of two apart would share most of
/// their search and their gap would estimate nothing: these are 10/3 apart.
pub const STEPS: [f64; 2] = [1e-3, 3e-4];

/// True when every point `mixad::check` evaluates (x ± h·eⱼ, x ± h/2·eⱼ from the larger
/// step down)
/// lies on `x`'s smooth piece and moves no rule's operand by more than 0.2 (beyond
/// that, a difference does not resolve an oscillating or sharply bending function).
pub fn resolved(p: &Program, x: &[f64], trace: &Trace) -> bool {
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
pub fn check_differences(c: &Case) -> Result<(), TestCaseError> {
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
    // The gradient's differences difference values up to the peak; the Hessian's
    // difference the gradient, whose terms reach the largest slope too.
    let h = STEPS[1];
    assert_differences(&coarse.0, &fine.0, rounding(trace.peak, h))?;
    let slope = p.slope(x);
    assert_differences(&coarse.1, &fine.1, rounding(trace.peak.max(slope), h))
}

/// A recording made at `x` and replayed at `x2` gives exactly what a fresh evaluation at
/// `x2` gives, re-recording exactly when a comparison goes the other way there.
pub fn check_replay(c: &Case) -> Result<(), TestCaseError> {
    let (p, x, x2) = (&c.program, c.x.as_slice(), c.x2.as_slice());
    let f = |v: &[Var<f64>]| p.run(v);
    let (_, at_x) = p.trace(x);
    let (_, at_x2) = p.trace(x2);
    // The traces tell which decisions a recording takes from f64's values: mixad's values
    // are f64's, overflows and NaNs included (see `max_of_two_infinities` and
    // `abs_sub_of_nan` in differential_regressions.rs), so its decisions are too.
    let flipped = at_x.flow != at_x2.flow;
    let (y2, g2) = reverse::value_and_gradient(f, x2);
    prop_assume!(!at_x2.undefined && y2.is_finite() && all_finite(&g2));

    // Interpreted, and compiled from the first replay on (where the recording compiles).
    let (y1, g1) = reverse::value_and_gradient(f, x);
    for compile in [mixad::Compile::Never, mixad::Compile::Immediately] {
        let options = Options {
            compile,
            ..Options::default()
        };
        let mut rec = mixad::record_with(f, x, options);
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
        // And back at x: a second flip, if the first was one.
        prop_assume!(!at_x.undefined && y1.is_finite() && all_finite(&g1));
        let (y_back, g_back) = rec.value_and_gradient(x);
        prop_assert_eq!(rec.rerecord_count(), 2 * usize::from(flipped));
        prop_assert!(
            close(y_back, y1, 1e-14, 0.0),
            "replayed value {} vs {}",
            y_back,
            y1
        );
        assert_vec(&g_back, &g1, 1e-14, "gradient replayed back at x")?;
    }
    // A recording of a derivative: ∂f/∂x₀ by an inner reverse sweep (Var<Var<f64>>)
    // and by inner forward mode (Dual<Var<f64>>), recorded at x and replayed at x2. The
    // inner comparisons reach the outer recording's guards through the primal values.
    let inner_rev = |xo: &[Var<f64>]| reverse::gradient(|xi: &[Var<Var<f64>>]| p.run(xi), xo)[0];
    let inner_fwd = |xo: &[Var<f64>]| fwd_grad(|xi: &[Dual<Var<f64>>]| p.run(xi), xo)[0];
    let fresh_rev = reverse::gradient(inner_rev, x2);
    let fresh_fwd = reverse::gradient(inner_fwd, x2);
    prop_assume!(all_finite(&fresh_rev) && all_finite(&fresh_fwd));
    let mut rec_rev = mixad::record(inner_rev, x);
    let mut rec_fwd = mixad::record(inner_fwd, x);
    for (what, rec, fresh) in [
        ("inner reverse", rec_rev.gradient(x2), fresh_rev),
        ("inner forward", rec_fwd.gradient(x2), fresh_fwd),
    ] {
        assert_vec(
            &rec,
            &fresh,
            1e-14,
            &format!("recorded gradient of ∂f/∂x₀ by {what}, replayed"),
        )?;
    }
    // Here the rules themselves run at Var<f64>, and their own comparisons (max's, the
    // special cases of powf, hypot, abs, …) are guarded too: more re-recordings are fine
    // (one at most, to x2), fewer than the flipped branches are not.
    for rec in [rec_rev.rerecord_count(), rec_fwd.rerecord_count()] {
        prop_assert!(
            rec <= 1 && (rec == 1 || !flipped),
            "re-recorded {} times; a comparison flipped: {}",
            rec,
            flipped
        );
    }
    // The refusing variant refuses exactly when a branch flipped.
    let refused = mixad::record(f, x).try_value_and_gradient(x2).is_err();
    prop_assert_eq!(
        refused,
        flipped,
        "try_value_and_gradient refused: {}",
        refused
    );

    let h2 = to_rows(&mixad::hessian(f, x2));
    prop_assume!(all_finite(&h2));
    let mut prepared = mixad::record(f, x);
    let (y_p, g_p, h_p) = prepared.value_gradient_hessian(x2);
    prop_assert_eq!(prepared.rerecord_count(), usize::from(flipped));
    prop_assert!(
        close(y_p, y2, 1e-14, 0.0),
        "recorded value {} vs {}",
        y_p,
        y2
    );
    assert_vec(&g_p, &g2, 1e-14, "recorded gradient")?;
    assert_vec(&to_rows(&h_p), &h2, 1e-14, "recorded Hessian")?;
    // Two threads, one column per sweep; there and back.
    let two = Options {
        lanes: Some(1),
        parallelism: Parallelism::Threads(std::num::NonZeroUsize::new(2).unwrap()),
        ..Options::default()
    };
    let mut parallel = mixad::record_with(f, x, two);
    let h_par = to_rows(&parallel.hessian(x2));
    assert_vec(&h_par, &h2, 1e-14, "recorded Hessian, 2 threads")?;
    let h1 = to_rows(&mixad::hessian(f, x));
    prop_assume!(all_finite(&h1));
    let h_back = to_rows(&parallel.hessian(x));
    prop_assert_eq!(parallel.rerecord_count(), 2 * usize::from(flipped));
    assert_vec(&h_back, &h1, 1e-14, "recorded Hessian back at x, 2 threads")?;
    let hv = mixad::record(f, x).hvp(x2, &c.v);
    let hv_fresh = mixad::hvp(|v: &[Var<Dual<f64>>]| p.run(v), x2, &c.v);
    assert_vec(&hv, &hv_fresh, 1e-14, "recorded hvp")?;
    Ok(())
}
