//! Derivative checking: AD (or a hand-written derivative) against finite differences.
//!
//! - [`check_gradient`], [`check_hessian`], [`check_jacobian`]: mixad's own derivatives of
//!   generic code, against differences of the same code's values (of its gradient, for the
//!   Hessian).
//! - [`check_gradient_of`], [`check_hessian_of`]: any closure claiming to be `∇f` or `∇²f`
//!   (a hand-written derivative), against differences of `f` or of a gradient.
//! - [`check_rule`]: every derivative order a [`CustomRule`] provides, against differences
//!   of the order below.
//!
//! Each has a `_with` variant taking [`CheckOptions`]. The result is a [`CheckReport`]:
//! per component the claimed value, the finite-difference estimate with its own error
//! estimate and the steps behind it, and a [`Verdict`]. It prints as a table.
//!
//! # Verdicts
//!
//! With `fd` the estimate, `e` its estimated error and `tol = atol + rtol·max(|claimed|,
//! |fd|)`, a component is
//!
//! - **ok** when every derivative the differences allow is within tolerance of the claim:
//!   `|claimed − fd| + 2e ≤ tol`;
//! - **WRONG** when none is: `|claimed − fd| − 2e > tol` (a non-finite claim is WRONG
//!   wherever the differences converge);
//! - **inconclusive** otherwise, with a [`Reason`]: the differences did not converge
//!   closely enough to tell (their error is too large for the tolerance), or the function
//!   is not finite at `x` or at the steps tried. Finite differences cannot judge such a
//!   component, so the check neither accepts nor accuses it.
//!
//! [`CheckReport::passed`] is strict: true only when *every* component is ok, so
//! `assert!(report.passed())` never accepts what was not verified. To ask only whether
//! anything is wrong, use [`CheckReport::is_wrong`]; [`CheckReport::verdict`] gives the
//! overall [`Verdict`] (WRONG if any component is, else inconclusive if any is, else ok).
//!
//! # How the steps are chosen
//!
//! Each component gets its own step, chosen from the function's scale and curvature by
//! Ridders' method. Along input `xⱼ` the check takes central differences
//! `D(h) = (g(x + h·eⱼ) − g(x − h·eⱼ)) / 2h` at the steps `h = step·max(1, |xⱼ|)`, `h/2`,
//! `h/4`, … and extrapolates them to `h → 0` (Richardson, two to six levels, so that every
//! estimate rests on at least three steps). An estimate's error `e` is ten times how far
//! its last extrapolation moved it, and never less than the rounding error of its finest
//! difference, `2ε·|g|/h`; the estimate with the smallest error wins.
//!
//! The descent stops once rounding dominates (no smaller step can do better), once a
//! converged estimate gets worse at the next step or three steps have not improved it,
//! or at `min_step·max(1, |xⱼ|)`. Rounding *inside* `g` can exceed what its value shows
//! (a gradient computed with cancellation, for [`check_hessian`]), and at small steps it
//! can make `g` look smooth with a wrong slope; so the descent does not wander into it,
//! an estimate already within the tolerance is only replaced by one that agrees with it,
//! and a step where `g` stops changing at all, after twice that step changed it by dozens
//! of ulps, ends the descent. Where a stencil point is not finite (a logarithm stepped
//! below zero), that component's search restarts at the next, smaller step, so no
//! estimate uses a point where the function is not finite.
//!
//! A component still inconclusive after the descent because of the rounding of `g`'s
//! value (its error within a small multiple of that rounding floor), and finite at every
//! step, is then searched upwards, `2h`, `4h`, … up to `max_step·max(1, |xⱼ|)`:
//! cancellation against a large value (`1e10 + x²`) or a tiny coefficient next to a huge
//! one (`1e8·x₀² + 1e-8·x₁²`) swamps small steps in rounding, and only larger ones resolve
//! the derivative. Larger steps see more of the function (a kink, a jump), so their estimate
//! is used only where it agrees with the small steps' one within both errors. The ascent
//! stops once the component is ok, at a non-finite value, at a disagreement, or when three
//! larger steps have not improved the estimate. Set `max_step = step` to keep every
//! evaluation within `step·max(1, |xⱼ|)` of `x`.
//!
//! Every output of `g` is differenced at the same steps, each with its own best estimate;
//! the report gives, per component, the finest step used and the number of extrapolation
//! levels (the estimate combines the steps `step·2ᵏ`, `k = 0..=levels`). Finite
//! differences can only be as good as `g`: where rounding inside `g` is far above its
//! value's and `g` is locally linear across the steps tried, no step resolves the
//! derivative and the check may still call a right claim WRONG.
//!
//! ```
//! use mixad::check::{self, CheckOptions, Reason, Verdict};
//! use num_traits::Float;
//! fn f<T: Float>(x: &[T]) -> T { x[0].sin() * x[1].exp() }
//! let report = check::check_gradient(|x| f(x), &[0.3, -0.2]);
//! assert!(report.passed(), "{report}");
//!
//! // A hand-written gradient with a sign error is caught.
//! let wrong = |x: &[f64]| vec![x[0].cos() * x[1].exp(), -x[0].sin() * x[1].exp()];
//! let report = check::check_gradient_of(|x| f(x), wrong, &[0.3, -0.2]);
//! assert!(report.is_wrong() && !report.passed());
//! assert_eq!(report.worst().unwrap().index, (1, 0));
//!
//! // 1e-8·x₁² next to 1e8·x₀²: the value's rounding (about 1e-8) hides ∂f/∂x₁ = 2e-8
//! // at small steps. Kept to small steps, the check cannot tell: inconclusive, not WRONG.
//! fn scaled<T: Float>(x: &[T]) -> T {
//!     let c = |v: f64| T::from(v).unwrap();
//!     c(1e8) * x[0] * x[0] + c(1e-8) * x[1] * x[1]
//! }
//! let small = CheckOptions { max_step: 1e-3, ..CheckOptions::default() };
//! let report = check::check_gradient_with(|x| scaled(x), &[1.0, 1.0], small);
//! assert!(!report.passed() && !report.is_wrong());
//! assert_eq!(report.verdict(), Verdict::Inconclusive(Reason::NotConverged));
//! assert_eq!(report.components[0].verdict, Verdict::Ok);
//! // With the default options the search grows the step for x₁ until it resolves it.
//! let report = check::check_gradient(|x| scaled(x), &[1.0, 1.0]);
//! assert!(report.passed(), "{report}");
//! assert!(report.components[1].step > 1.0);
//! ```

use std::fmt;

use crate::reverse::{self, Var};
use crate::rules::CustomRule;

/// Ratio between successive steps of the search.
const RATIO: f64 = 2.0;
/// Fewest Richardson extrapolation levels in an estimate: its error estimate then compares
/// differences at three steps at least (two can agree by accident, across a jump).
const MIN_LEVELS: usize = 2;
/// Most Richardson extrapolation levels in one estimate.
const MAX_LEVELS: usize = 6;
/// Steps without a better estimate that end a search (see `settled`).
const PATIENCE: usize = 3;
/// A step whose best error is this many times the best so far is "worse" (see `settled`).
const SAFE: f64 = 2.0;
/// Verdicts allow the estimate this many times its error estimate.
const MARGIN: f64 = 2.0;
/// Rounding floor of a central difference, in units of `ε·|g|/h`.
const ROUNDING: f64 = 2.0;
/// An estimate's error is this many times its last Richardson step's change: the change
/// between two noisy estimates can be small by chance, and the smallest error of many
/// entries is chosen (numdifftools uses a factor of about 12 for the same reason).
const SAFETY: f64 = 10.0;
/// The descent's estimate is limited by the rounding of `g`'s value, and worth an ascent,
/// when its error is at most this many times its rounding floor.
const ROUNDING_LIMITED: f64 = 64.0;

/// Tolerances and the range of steps of a check.
///
/// Steps are relative: along `xⱼ` the actual step is the option times `max(1, |xⱼ|)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckOptions {
    /// First step of the search, which descends from it by halving.
    pub step: f64,
    /// Smallest step the search descends to.
    pub min_step: f64,
    /// Largest step the search may grow to when smaller steps cannot decide (see the
    /// [module docs](self)). At most `step` (for example equal to it) keeps every
    /// evaluation within `step·max(1, |xⱼ|)` of `x`.
    pub max_step: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance (for components near zero).
    pub atol: f64,
}

impl Default for CheckOptions {
    /// `step` 1e-3, `min_step` 1e-10, `max_step` 1e2, `rtol` 1e-6, `atol` 1e-8.
    fn default() -> Self {
        CheckOptions {
            step: 1e-3,
            min_step: 1e-10,
            max_step: 1e2,
            rtol: 1e-6,
            atol: 1e-8,
        }
    }
}

impl CheckOptions {
    /// `atol + rtol·max(|claimed|, |fd|)`.
    fn tolerance(&self, claimed: f64, fd: f64) -> f64 {
        self.atol + self.rtol * claimed.abs().max(fd.abs())
    }
}

/// Why finite differences could not judge a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The differenced function (the function, its gradient for a Hessian, the order
    /// below for a rule) is not finite at `x`.
    NotFiniteAtX,
    /// The differenced function is not finite at `x ± h·eⱼ` for the smallest steps tried.
    NoFiniteStep,
    /// The differences did not converge: their error estimate is too large for the
    /// tolerance to tell the claim right or wrong.
    NotConverged,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::NotFiniteAtX => "function not finite at x",
            Reason::NoFiniteStep => "function not finite at the steps tried",
            Reason::NotConverged => "finite differences did not converge",
        })
    }
}

/// The judgement of a component, or of a whole report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Verified: every derivative the differences allow is within tolerance of the claim.
    Ok,
    /// Finite differences cannot tell, for the given reason.
    Inconclusive(Reason),
    /// Wrong: no derivative the differences allow is within tolerance of the claim.
    Wrong,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ok => f.write_str("ok"),
            Verdict::Inconclusive(reason) => write!(f, "inconclusive: {reason}"),
            Verdict::Wrong => f.write_str("WRONG"),
        }
    }
}

/// One compared component.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Component {
    /// `(row, column)`: `(i, 0)` for a gradient entry.
    pub index: (usize, usize),
    /// The derivative being checked.
    pub claimed: f64,
    /// The finite-difference estimate (NaN when there is none).
    pub finite_difference: f64,
    /// Estimated error of `finite_difference`, on the safe side: ten times the change made
    /// by its last Richardson extrapolation, at least the rounding error of its finest
    /// difference (infinite when there is no estimate).
    pub fd_error: f64,
    /// The finest step of the differences behind the estimate (NaN when there is none).
    pub step: f64,
    /// Richardson levels of the estimate: it combines differences at `step`, `2·step`, …,
    /// `2^levels·step`.
    pub levels: usize,
    /// `|claimed − finite_difference|`.
    pub abs_error: f64,
    /// `abs_error / max(|claimed|, |finite_difference|)` (0 when both are 0).
    pub rel_error: f64,
    /// The tolerance `atol + rtol·max(|claimed|, |finite_difference|)`.
    pub tolerance: f64,
    /// The verdict; see the [module docs](self).
    pub verdict: Verdict,
    /// `verdict == Verdict::Ok`.
    pub ok: bool,
}

impl Component {
    /// How serious the component is: its verdict class, then its error over its tolerance.
    fn badness(&self) -> (u8, f64) {
        let class = match self.verdict {
            Verdict::Ok => 0,
            Verdict::Inconclusive(_) => 1,
            Verdict::Wrong => 2,
        };
        let ratio = self.abs_error / self.tolerance;
        (class, if ratio.is_nan() { f64::INFINITY } else { ratio })
    }
}

/// The result of a check: every component and a verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    /// What was checked (`"gradient"`, `"Hessian"`, …).
    pub what: &'static str,
    /// Every component, row-major.
    pub components: Vec<Component>,
    /// The options used.
    pub options: CheckOptions,
}

impl CheckReport {
    fn new(what: &'static str, options: CheckOptions) -> Self {
        CheckReport {
            what,
            components: Vec::new(),
            options,
        }
    }

    fn push(&mut self, index: (usize, usize), claimed: f64, outcome: Outcome) {
        let Outcome { estimate, verdict } = outcome;
        let (fd, fd_error, step, levels) = match estimate {
            Some(e) => (e.value, e.error, e.step, e.levels),
            None => (f64::NAN, f64::INFINITY, f64::NAN, 0),
        };
        let abs_error = (claimed - fd).abs();
        let scale = claimed.abs().max(fd.abs());
        self.components.push(Component {
            index,
            claimed,
            finite_difference: fd,
            fd_error,
            step,
            levels,
            abs_error,
            rel_error: if scale == 0.0 { 0.0 } else { abs_error / scale },
            tolerance: self.options.tolerance(claimed, fd),
            verdict,
            ok: verdict == Verdict::Ok,
        });
    }

    /// True when every component is verified ok. Strict: an inconclusive component makes
    /// it false (use [`CheckReport::is_wrong`] to ask only whether something is wrong).
    pub fn passed(&self) -> bool {
        self.components.iter().all(|c| c.ok)
    }

    /// True when some component is WRONG (inconclusive ones do not count).
    pub fn is_wrong(&self) -> bool {
        self.components.iter().any(|c| c.verdict == Verdict::Wrong)
    }

    /// The overall verdict: [`Verdict::Wrong`] if any component is wrong, else the first
    /// inconclusive component's, else [`Verdict::Ok`].
    pub fn verdict(&self) -> Verdict {
        if self.is_wrong() {
            return Verdict::Wrong;
        }
        self.components
            .iter()
            .map(|c| c.verdict)
            .find(|v| *v != Verdict::Ok)
            .unwrap_or(Verdict::Ok)
    }

    /// The most serious component, if any: of the wrong ones if there are, else of the
    /// inconclusive ones, else of all, the one with the largest error relative to its
    /// tolerance.
    pub fn worst(&self) -> Option<&Component> {
        self.components.iter().max_by(|a, b| {
            let (a, b) = (a.badness(), b.badness());
            a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))
        })
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count =
            |p: fn(&Verdict) -> bool| self.components.iter().filter(|c| p(&c.verdict)).count();
        let wrong = count(|v| *v == Verdict::Wrong);
        let inconclusive = count(|v| matches!(v, Verdict::Inconclusive(_)));
        let status = match self.verdict() {
            Verdict::Ok => "PASSED",
            Verdict::Inconclusive(_) => "INCONCLUSIVE",
            Verdict::Wrong => "FAILED",
        };
        writeln!(
            f,
            "{} check: {} ({} wrong, {} inconclusive of {} components; rtol {:.0e}, atol {:.0e})",
            self.what,
            status,
            wrong,
            inconclusive,
            self.components.len(),
            self.options.rtol,
            self.options.atol
        )?;
        writeln!(
            f,
            "{:>10} {:>22} {:>22} {:>9} {:>9} {:>9} {:>17}  verdict",
            "index", "claimed", "finite difference", "abs err", "rel err", "fd err", "steps"
        )?;
        for c in &self.components {
            let steps = if c.step.is_nan() {
                "-".to_string()
            } else {
                format!(
                    "{:.1e}..{:.1e}",
                    c.step,
                    c.step * RATIO.powi(c.levels as i32)
                )
            };
            writeln!(
                f,
                "{:>10} {:>22.15e} {:>22.15e} {:>9.2e} {:>9.2e} {:>9.2e} {:>17}  {}",
                format!("({},{})", c.index.0, c.index.1),
                c.claimed,
                c.finite_difference,
                c.abs_error,
                c.rel_error,
                c.fd_error,
                steps,
                c.verdict
            )?;
        }
        if let Some(w) = self.worst() {
            write!(
                f,
                "worst: ({},{}) with relative error {:.2e} ({})",
                w.index.0, w.index.1, w.rel_error, w.verdict
            )?;
        }
        Ok(())
    }
}

/// A finite-difference estimate of one component.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    value: f64,
    /// Estimated error: `SAFETY` times the last extrapolation's change, at least the
    /// rounding floor.
    error: f64,
    /// Finest step behind the estimate.
    step: f64,
    /// Richardson levels.
    levels: usize,
    /// Rounding floor of the finest difference.
    floor: f64,
}

/// An estimate and its verdict.
struct Outcome {
    estimate: Option<Estimate>,
    verdict: Verdict,
}

/// Central differences of every output of `g` along `xⱼ` at one step.
struct Row {
    /// The step actually taken: half the distance between the two stencil points.
    h: f64,
    /// `(g(x + h·eⱼ) − g(x − h·eⱼ)) / 2h` per output; NaN where a stencil value (or the
    /// difference) is not finite.
    d: Vec<f64>,
    /// Rounding floor of `d` per output: `ROUNDING·ε·max |g|/h` over `x` and the stencil.
    floor: Vec<f64>,
}

/// The differences at step `h`, or `None` when `h` does not move `xⱼ`.
fn row(
    g: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    x: &[f64],
    j: usize,
    h: f64,
    at_x: &[f64],
) -> Option<Row> {
    let (up, down) = (x[j] + h, x[j] - h);
    let h = (up - down) / 2.0;
    if h.is_nan() || h <= 0.0 {
        return None;
    }
    let mut p = x.to_vec();
    p[j] = up;
    let gu = g(&p);
    p[j] = down;
    let gd = g(&p);
    let mut d = Vec::with_capacity(at_x.len());
    let mut floor = Vec::with_capacity(at_x.len());
    for ((&u, &l), &v) in gu.iter().zip(&gd).zip(at_x) {
        let diff = (u - l) / (2.0 * h);
        let finite = u.is_finite() && l.is_finite() && diff.is_finite();
        d.push(if finite { diff } else { f64::NAN });
        floor.push(ROUNDING * f64::EPSILON * u.abs().max(l.abs()).max(v.abs()) / h);
    }
    Some(Row { h, d, floor })
}

/// The best entry of a Ridders tableau.
#[derive(Clone, Copy, Debug)]
struct Best {
    estimate: Estimate,
    /// Index (in the run) of the coarsest row the estimate uses.
    top: usize,
    /// Index of its finest row.
    row: usize,
}

/// Ridders' tableau for output `i` over `rows` (coarsest first, all finite for `i`): the
/// entry with the smallest error, except that once the best is within the tolerance
/// `tol(value)`, a later (finer) entry must also agree with it within both errors. Noise
/// inside `g` beyond rounding of its value can make `g` locally linear at small steps, and
/// the differences there agree among themselves on a wrong slope; the coarser steps,
/// where that noise is small against the change of `g`, already settled the value.
/// Without any entry of `MIN_LEVELS` levels, the deepest entry of the last row stands in,
/// with an infinite error. Also returns the smallest error of the last row's entries.
fn tableau(rows: &[&Row], i: usize, tol: impl Fn(f64) -> f64) -> (Option<Best>, f64) {
    let mut prev = [0.0; MAX_LEVELS + 1];
    let mut best: Option<Best> = None;
    let mut row_error = f64::INFINITY;
    for (k, r) in rows.iter().enumerate() {
        let mut cur = [0.0; MAX_LEVELS + 1];
        cur[0] = r.d[i];
        row_error = f64::INFINITY;
        for l in 1..=k.min(MAX_LEVELS) {
            // Neville's recurrence for a polynomial in h², at the steps actually taken.
            let ratio = rows[k - l].h / r.h;
            cur[l] = cur[l - 1] + (cur[l - 1] - prev[l - 1]) / (ratio * ratio - 1.0);
            let change = (cur[l] - cur[l - 1])
                .abs()
                .max((cur[l] - prev[l - 1]).abs());
            if l < MIN_LEVELS || !change.is_finite() {
                continue;
            }
            let error = (SAFETY * change).max(r.floor[i]);
            row_error = row_error.min(error);
            let better = best.is_none_or(|b| {
                let (v, e) = (b.estimate.value, b.estimate.error);
                error < e && (e > tol(v) || (cur[l] - v).abs() <= MARGIN * (error + e))
            });
            if better {
                best = Some(Best {
                    estimate: Estimate {
                        value: cur[l],
                        error,
                        step: r.h,
                        levels: l,
                        floor: r.floor[i],
                    },
                    top: k - l,
                    row: k,
                });
            }
        }
        prev = cur;
        if best.is_none() || best.is_some_and(|b| b.estimate.error.is_infinite()) {
            let l = k.min(MAX_LEVELS);
            best = Some(Best {
                estimate: Estimate {
                    value: cur[l],
                    error: f64::INFINITY,
                    step: r.h,
                    levels: l,
                    floor: r.floor[i],
                },
                top: k - l,
                row: k,
            });
        }
    }
    (best, row_error)
}

/// The descent over `rows` steps may stop: rounding already dominates the last step
/// (smaller ones can only be worse), or the estimate has converged and the last step made
/// it worse (Ridders' rule: the first sign of noise) or `PATIENCE` steps did not improve
/// it. Going on would only pile up chances for noise in `g` (rounding inside it, beyond
/// what its value shows) to agree with itself by accident.
fn settled(best: &Best, rows: usize, row_error: f64, last_floor: f64, tol: f64) -> bool {
    let e = best.estimate.error;
    let converged = e <= 0.1 * best.estimate.value.abs() + tol;
    last_floor >= e || (converged && (row_error >= SAFE * e || rows >= best.row + 1 + PATIENCE))
}

fn judge(claimed: f64, estimate: Option<Estimate>, reason: Reason, o: &CheckOptions) -> Verdict {
    let Some(e) = estimate else {
        return Verdict::Inconclusive(reason);
    };
    let margin = MARGIN * e.error;
    if !claimed.is_finite() {
        // No finite claim can be wrong by an infinite amount; a converged estimate shows
        // the derivative is finite, so a non-finite claim is wrong.
        return if margin <= o.tolerance(0.0, e.value) {
            Verdict::Wrong
        } else {
            Verdict::Inconclusive(Reason::NotConverged)
        };
    }
    let tol = o.tolerance(claimed, e.value);
    let diff = (claimed - e.value).abs();
    if diff + margin <= tol {
        Verdict::Ok
    } else if diff - margin > tol {
        Verdict::Wrong
    } else {
        Verdict::Inconclusive(Reason::NotConverged)
    }
}

/// The search of one output along `xⱼ`.
#[derive(Clone, Copy)]
struct Track {
    /// First descent row of the current finite run.
    start: usize,
    /// Descent rows this output uses (one past the last).
    end: usize,
    /// The descent is over for this output.
    done: bool,
    best: Option<Best>,
}

/// Estimates and verdicts of column `j` of the derivative of `g: Rⁿ → Rᵐ`: every output's
/// derivative along `xⱼ`, against `claims` (length `m`); `at_x` is `g(x)`.
fn column(
    g: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    x: &[f64],
    j: usize,
    at_x: &[f64],
    claims: &[f64],
    o: &CheckOptions,
) -> Vec<Outcome> {
    let scale = x[j].abs().max(1.0);
    let mut tracks: Vec<Track> = at_x
        .iter()
        .map(|v| Track {
            start: 0,
            end: 0,
            done: !v.is_finite(),
            best: None,
        })
        .collect();

    // Descent: h, h/2, h/4, … for every output still searching.
    let mut rows: Vec<Row> = Vec::new();
    let mut h = o.step * scale;
    while h >= o.min_step * scale && tracks.iter().any(|t| !t.done) {
        let Some(r) = row(g, x, j, h, at_x) else {
            break;
        };
        rows.push(r);
        let last = rows.len() - 1;
        for (i, t) in tracks.iter_mut().enumerate().filter(|(_, t)| !t.done) {
            t.end = last + 1;
            if rows[last].d[i].is_nan() {
                // A stencil point where g is not finite: shrink the step for this output.
                t.start = last + 1;
                t.best = None;
                continue;
            }
            if rows[last].d[i] == 0.0
                && last > t.start
                && rows[last - 1].d[i].abs() > 16.0 * rows[last - 1].floor[i]
            {
                // g(x + h) = g(x − h) exactly, where twice the step changed g by dozens of
                // its ulps: g is resolved more coarsely than its value shows (rounding
                // inside it), and smaller steps would see only that rounding.
                t.end = last;
                t.done = true;
                continue;
            }
            let run: Vec<&Row> = rows[t.start..].iter().collect();
            let (best, row_error) = tableau(&run, i, |v| o.tolerance(claims[i], v));
            t.best = best;
            if let Some(b) = best {
                let tol = o.tolerance(claims[i], b.estimate.value);
                t.done = settled(&b, run.len(), row_error, rows[last].floor[i], tol);
            }
        }
        h /= RATIO;
    }

    let judged = |t: &Track, i: usize| {
        let reason = if !at_x[i].is_finite() {
            Reason::NotFiniteAtX
        } else if t.end > 0 && rows[t.end - 1].d[i].is_nan() {
            Reason::NoFiniteStep
        } else {
            Reason::NotConverged
        };
        judge(claims[i], t.best.map(|b| b.estimate), reason, o)
    };

    // Ascent: 2h, 4h, … for outputs the descent could not decide because of the rounding
    // of g's value, finite at every step, each with the descent's estimate, which larger
    // steps must agree with. (Noise inside g beyond its value's rounding is left alone:
    // larger steps trade it for truncation error no estimate can see.)
    let mut climbing: Vec<(usize, Estimate)> = (0..claims.len())
        .filter_map(|i| {
            let t = &tracks[i];
            let undecided = judged(t, i) == Verdict::Inconclusive(Reason::NotConverged);
            let e = t.best?.estimate;
            let limited = e.error <= ROUNDING_LIMITED * e.floor;
            (t.start == 0 && undecided && limited).then_some((i, e))
        })
        .collect();
    let mut up: Vec<Row> = Vec::new();
    let mut h = o.step * scale * RATIO;
    while !climbing.is_empty() && h <= o.max_step * scale {
        let Some(r) = row(g, x, j, h, at_x) else {
            break;
        };
        up.push(r);
        climbing.retain(|&(i, small)| {
            if up[up.len() - 1].d[i].is_nan() {
                return false;
            }
            let t = &mut tracks[i];
            let run: Vec<&Row> = up.iter().rev().chain(&rows[..t.end]).collect();
            let (best, _) = tableau(&run, i, |v| o.tolerance(claims[i], v));
            // Larger steps see more of the function: across a jump or a kink they can
            // agree among themselves on a wrong value. Trust them only within the error
            // of the small steps' estimate.
            let consistent = best.is_some_and(|b| {
                let e = b.estimate;
                (e.value - small.value).abs() <= MARGIN * (e.error + small.error)
            });
            if !consistent {
                return false;
            }
            t.best = best;
            // Climb on until verified, or until three larger steps have not helped: a
            // verdict of WRONG is refined while larger steps still improve the estimate.
            let stale = best.is_some_and(|b| b.top >= PATIENCE);
            judged(t, i) != Verdict::Ok && !stale
        });
        h *= RATIO;
    }

    tracks
        .iter()
        .enumerate()
        .map(|(i, t)| Outcome {
            estimate: t.best.map(|b| b.estimate),
            verdict: judged(t, i),
        })
        .collect()
}

/// Compares a claimed row-major `m × n` derivative of `g: Rⁿ → Rᵐ` (`n = x.len()`) with
/// finite differences of `g`; component `(i, j)` of the report is `index(i, j)`.
fn compare(
    what: &'static str,
    g: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    claimed: &[f64],
    x: &[f64],
    options: CheckOptions,
    index: fn(usize, usize) -> (usize, usize),
) -> CheckReport {
    let n = x.len();
    let m = claimed.len().checked_div(n).unwrap_or(0);
    let mut report = CheckReport::new(what, options);
    if m == 0 {
        return report;
    }
    let at_x = g(x);
    assert_eq!(
        at_x.len(),
        m,
        "{what} check: the differenced function returns {} values, expected {m}",
        at_x.len()
    );
    let columns: Vec<Vec<Outcome>> = (0..n)
        .map(|j| {
            let claims: Vec<f64> = (0..m).map(|i| claimed[i * n + j]).collect();
            column(g, x, j, &at_x, &claims, &options)
        })
        .collect();
    let mut columns: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
    for i in 0..m {
        for (j, column) in columns.iter_mut().enumerate() {
            let outcome = column.next().expect("one outcome per output");
            report.push(index(i, j), claimed[i * n + j], outcome);
        }
    }
    report
}

fn value_of<F>(f: &mut F, x: &[f64]) -> f64
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    reverse::value_and_gradient(|v| f(v), x).0
}

/// mixad's gradient of `f` against finite differences of `f`'s values.
pub fn check_gradient<F>(f: F, x: &[f64]) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    check_gradient_with(f, x, CheckOptions::default())
}

/// [`check_gradient`] with explicit options.
pub fn check_gradient_with<F>(mut f: F, x: &[f64], options: CheckOptions) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    let grad = reverse::gradient(|v| f(v), x);
    compare_gradient(&mut f, &grad, x, options)
}

/// A claimed gradient (for example hand-written) against finite differences of `f`.
///
/// # Panics
/// If `gradient` returns a vector of the wrong length.
pub fn check_gradient_of<F, G>(f: F, gradient: G, x: &[f64]) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
    G: FnOnce(&[f64]) -> Vec<f64>,
{
    check_gradient_of_with(f, gradient, x, CheckOptions::default())
}

/// [`check_gradient_of`] with explicit options.
///
/// # Panics
/// If `gradient` returns a vector of the wrong length.
pub fn check_gradient_of_with<F, G>(
    mut f: F,
    gradient: G,
    x: &[f64],
    options: CheckOptions,
) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
    G: FnOnce(&[f64]) -> Vec<f64>,
{
    let claimed = gradient(x);
    assert_eq!(
        claimed.len(),
        x.len(),
        "check_gradient_of: the claimed gradient has {} entries for {} inputs",
        claimed.len(),
        x.len()
    );
    compare_gradient(&mut f, &claimed, x, options)
}

fn compare_gradient<F>(f: &mut F, claimed: &[f64], x: &[f64], options: CheckOptions) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    let mut values = |p: &[f64]| vec![value_of(f, p)];
    compare("gradient", &mut values, claimed, x, options, |_, j| (j, 0))
}

/// mixad's Hessian of `f` against finite differences of mixad's gradient (check the
/// gradient first with [`check_gradient`]).
pub fn check_hessian<F>(f: F, x: &[f64]) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    check_hessian_with(f, x, CheckOptions::default())
}

/// [`check_hessian`] with explicit options.
pub fn check_hessian_with<F>(mut f: F, x: &[f64], options: CheckOptions) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    let h = crate::hessian(|v| f(v), x);
    let n = x.len();
    let claimed: Vec<f64> = (0..n * n).map(|k| h[(k / n, k % n)]).collect();
    let mut grad = |p: &[f64]| reverse::gradient(|v| f(v), p);
    compare("Hessian", &mut grad, &claimed, x, options, |i, j| (i, j))
}

/// A claimed Hessian (row-major `n × n`, for example hand-written) against finite
/// differences of a gradient (mixad's or another claimed one).
///
/// # Panics
/// If `hessian` does not return `n²` entries, or `gradient` not `n`.
pub fn check_hessian_of<G, H>(gradient: G, hessian: H, x: &[f64]) -> CheckReport
where
    G: FnMut(&[f64]) -> Vec<f64>,
    H: FnOnce(&[f64]) -> Vec<f64>,
{
    check_hessian_of_with(gradient, hessian, x, CheckOptions::default())
}

/// [`check_hessian_of`] with explicit options.
///
/// # Panics
/// If `hessian` does not return `n²` entries, or `gradient` not `n`.
pub fn check_hessian_of_with<G, H>(
    mut gradient: G,
    hessian: H,
    x: &[f64],
    options: CheckOptions,
) -> CheckReport
where
    G: FnMut(&[f64]) -> Vec<f64>,
    H: FnOnce(&[f64]) -> Vec<f64>,
{
    let claimed = hessian(x);
    let n = x.len();
    assert_eq!(
        claimed.len(),
        n * n,
        "check_hessian_of: the claimed Hessian has {} entries, expected {n}² = {}",
        claimed.len(),
        n * n
    );
    compare("Hessian", &mut gradient, &claimed, x, options, |i, j| {
        (i, j)
    })
}

/// mixad's Jacobian of `f: Rⁿ → Rᵐ` against finite differences of `f`'s values.
pub fn check_jacobian<F, R>(f: F, x: &[f64]) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> R,
    R: AsRef<[Var<f64>]>,
{
    check_jacobian_with(f, x, CheckOptions::default())
}

/// [`check_jacobian`] with explicit options.
pub fn check_jacobian_with<F, R>(mut f: F, x: &[f64], options: CheckOptions) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> R,
    R: AsRef<[Var<f64>]>,
{
    let j = reverse::jacobian(|v| f(v), x);
    let (m, n) = (j.nrows(), j.ncols());
    let claimed: Vec<f64> = (0..m * n).map(|k| j[(k / n, k % n)]).collect();
    let mut values = |p: &[f64]| reverse::vjp(|v| f(v), p, &vec![0.0; m]).0;
    compare("Jacobian", &mut values, &claimed, x, options, |i, j| (i, j))
}

/// Every derivative order a custom rule provides, each against finite differences of the
/// order below (order 1 against the values, order 2 against order 1, …): one report per
/// order. Component `(i, j)` compares `∂/∂xⱼ` of entry `i` of the order below (row-major
/// over outputs and earlier derivative indices). A rule without derivatives (order 0) has
/// nothing to check: the result is empty.
///
/// ```
/// use mixad::rules::CustomRule;
/// let good = CustomRule::unary("sin", &[f64::sin, f64::cos, |x| -x.sin()]);
/// assert!(mixad::check::check_rule(&good, &[0.7]).iter().all(|r| r.passed()));
/// // A second derivative with the wrong sign is caught at order 2.
/// let bad = CustomRule::unary("sin", &[f64::sin, f64::cos, f64::sin]);
/// let reports = mixad::check::check_rule(&bad, &[0.7]);
/// assert!(reports[0].passed() && reports[1].is_wrong());
/// ```
///
/// # Panics
/// If `x.len()` is not the rule's input count.
pub fn check_rule(rule: &CustomRule, x: &[f64]) -> Vec<CheckReport> {
    check_rule_with(rule, x, CheckOptions::default())
}

/// [`check_rule`] with explicit options.
///
/// # Panics
/// If `x.len()` is not the rule's input count.
pub fn check_rule_with(rule: &CustomRule, x: &[f64], options: CheckOptions) -> Vec<CheckReport> {
    assert_eq!(
        x.len(),
        rule.inputs(),
        "check_rule: custom rule `{}` takes {} inputs but x has {}",
        rule.name(),
        rule.inputs(),
        x.len()
    );
    (1..=rule.order())
        .map(|k| {
            let mut claimed = vec![0.0; rule.level_len(k)];
            rule.level_f64(x, k, &mut claimed);
            let mut below = |p: &[f64]| {
                let mut v = vec![0.0; rule.level_len(k - 1)];
                rule.level_f64(p, k - 1, &mut v);
                v
            };
            let what = match k {
                1 => "custom rule, first derivatives",
                2 => "custom rule, second derivatives",
                3 => "custom rule, third derivatives",
                _ => "custom rule, higher derivatives",
            };
            compare(what, &mut below, &claimed, x, options, |i, j| (i, j))
        })
        .collect()
}
