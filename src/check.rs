//! Derivative checking: AD (or a hand-written derivative) against finite differences.
//!
//! Each check compares every component against a central difference with step
//! `h·max(1, |xᵢ|)`, improved by one Richardson extrapolation (`(4·D(h/2) − D(h))/3`, error
//! `O(h⁴)`), and reports per component the two values, the absolute and relative error,
//! and a verdict; [`CheckReport`] prints as a readable table with the worst component.
//!
//! - [`check_gradient`], [`check_hessian`], [`check_jacobian`]: mixad's own derivatives of
//!   generic code, against differences of the same code's values.
//! - [`check_gradient_of`], [`check_hessian_of`]: any closure claiming to be `∇f` or `∇²f`
//!   (a hand-written derivative), against differences of `f` or of the claimed gradient.
//! - [`check_rule`]: every derivative order a [`CustomRule`] provides, against differences
//!   of the order below.
//!
//! ```
//! use num_traits::Float;
//! fn f<T: Float>(x: &[T]) -> T { x[0].sin() * x[1].exp() }
//! let report = mixad::check::check_gradient(|x| f(x), &[0.3, -0.2]);
//! assert!(report.passed(), "{report}");
//!
//! // A hand-written gradient with a sign error is caught.
//! let wrong = |x: &[f64]| vec![x[0].cos() * x[1].exp(), -x[0].sin() * x[1].exp()];
//! let report = mixad::check::check_gradient_of(|x| f(x), wrong, &[0.3, -0.2]);
//! assert!(!report.passed());
//! assert_eq!(report.worst().unwrap().index, (1, 0));
//! ```

use std::fmt;

use crate::reverse::{self, Var};
use crate::rules::CustomRule;

/// Tolerances and step of a check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckOptions {
    /// Base step `h` (scaled by `max(1, |xᵢ|)`).
    pub step: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance (for components near zero).
    pub atol: f64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            step: 1e-3,
            rtol: 1e-6,
            atol: 1e-8,
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
    /// The finite-difference estimate.
    pub finite_difference: f64,
    /// `|claimed − finite_difference|`.
    pub abs_error: f64,
    /// `abs_error / max(|claimed|, |finite_difference|)` (0 when both are 0).
    pub rel_error: f64,
    /// Within tolerance: `abs_error ≤ atol + rtol·max(|claimed|, |fd|)`.
    pub ok: bool,
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

    fn push(&mut self, index: (usize, usize), claimed: f64, fd: f64) {
        let abs_error = (claimed - fd).abs();
        let scale = claimed.abs().max(fd.abs());
        let rel_error = if scale == 0.0 { 0.0 } else { abs_error / scale };
        let ok = abs_error <= self.options.atol + self.options.rtol * scale;
        self.components.push(Component {
            index,
            claimed,
            finite_difference: fd,
            abs_error,
            rel_error,
            ok: ok && !claimed.is_nan() && !fd.is_nan(),
        });
    }

    /// True when every component is within tolerance.
    pub fn passed(&self) -> bool {
        self.components.iter().all(|c| c.ok)
    }

    /// The component with the largest error relative to the tolerance, if any.
    pub fn worst(&self) -> Option<&Component> {
        let badness = |c: &Component| {
            let tol = self.options.atol
                + self.options.rtol * c.claimed.abs().max(c.finite_difference.abs());
            if c.abs_error.is_nan() {
                f64::INFINITY
            } else {
                c.abs_error / tol
            }
        };
        self.components
            .iter()
            .max_by(|a, b| badness(a).total_cmp(&badness(b)))
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.components.iter().filter(|c| !c.ok).count();
        writeln!(
            f,
            "{} check: {} ({} of {} components outside rtol {:.0e} / atol {:.0e})",
            self.what,
            if failed == 0 { "PASSED" } else { "FAILED" },
            failed,
            self.components.len(),
            self.options.rtol,
            self.options.atol
        )?;
        writeln!(
            f,
            "{:>10} {:>22} {:>22} {:>10} {:>10}  verdict",
            "index", "claimed", "finite difference", "abs err", "rel err"
        )?;
        for c in &self.components {
            writeln!(
                f,
                "{:>10} {:>22.15e} {:>22.15e} {:>10.2e} {:>10.2e}  {}",
                format!("({},{})", c.index.0, c.index.1),
                c.claimed,
                c.finite_difference,
                c.abs_error,
                c.rel_error,
                if c.ok { "ok" } else { "WRONG" }
            )?;
        }
        if let Some(w) = self.worst() {
            write!(
                f,
                "worst: ({},{}) with relative error {:.2e}",
                w.index.0, w.index.1, w.rel_error
            )?;
        }
        Ok(())
    }
}

/// Richardson-extrapolated central difference of every output of `g` along `xⱼ`.
fn difference(
    g: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    x: &[f64],
    j: usize,
    options: &CheckOptions,
) -> Vec<f64> {
    let h = options.step * x[j].abs().max(1.0);
    let mut central = |h: f64| {
        let mut p = x.to_vec();
        p[j] = x[j] + h;
        let up = g(&p);
        p[j] = x[j] - h;
        let down = g(&p);
        up.iter()
            .zip(&down)
            .map(|(u, d)| (u - d) / (2.0 * h))
            .collect::<Vec<f64>>()
    };
    let coarse = central(h);
    let fine = central(h / 2.0);
    fine.iter()
        .zip(&coarse)
        .map(|(f, c)| (4.0 * f - c) / 3.0)
        .collect()
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
    compare_gradient("gradient", &mut f, &grad, x, options)
}

/// A claimed gradient (for example hand-written) against finite differences of `f`.
///
/// # Panics
/// If `gradient` returns a vector of the wrong length.
pub fn check_gradient_of<F, G>(mut f: F, gradient: G, x: &[f64]) -> CheckReport
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
    compare_gradient("gradient", &mut f, &claimed, x, CheckOptions::default())
}

fn compare_gradient<F>(
    what: &'static str,
    f: &mut F,
    claimed: &[f64],
    x: &[f64],
    options: CheckOptions,
) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    let mut report = CheckReport::new(what, options);
    let mut values = |p: &[f64]| vec![value_of(f, p)];
    for (j, &c) in claimed.iter().enumerate() {
        let fd = difference(&mut values, x, j, &options)[0];
        report.push((j, 0), c, fd);
    }
    report
}

/// mixad's Hessian of `f` against finite differences of mixad's gradient (check the
/// gradient first with [`check_gradient`]).
pub fn check_hessian<F>(mut f: F, x: &[f64]) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    let h = crate::hessian(|v| f(v), x);
    let n = x.len();
    let claimed: Vec<f64> = (0..n * n).map(|k| h[(k / n, k % n)]).collect();
    let mut grad = |p: &[f64]| reverse::gradient(|v| f(v), p);
    compare_matrix("Hessian", &mut grad, &claimed, x, CheckOptions::default())
}

/// A claimed Hessian (row-major `n × n`, for example hand-written) against finite
/// differences of a gradient (mixad's or another claimed one).
///
/// # Panics
/// If `hessian` does not return `n²` entries.
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
/// If `hessian` does not return `n²` entries.
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
    compare_matrix("Hessian", &mut gradient, &claimed, x, options)
}

/// mixad's Jacobian of `f: Rⁿ → Rᵐ` against finite differences of `f`'s values.
pub fn check_jacobian<F, R>(mut f: F, x: &[f64]) -> CheckReport
where
    F: FnMut(&[Var<f64>]) -> R,
    R: AsRef<[Var<f64>]>,
{
    let j = reverse::jacobian(|v| f(v), x);
    let (m, n) = (j.nrows(), j.ncols());
    let claimed: Vec<f64> = (0..m * n).map(|k| j[(k / n, k % n)]).collect();
    let mut values = |p: &[f64]| reverse::vjp(|v| f(v), p, &vec![0.0; m]).0;
    compare_matrix(
        "Jacobian",
        &mut values,
        &claimed,
        x,
        CheckOptions::default(),
    )
}

/// Compares a row-major `m × n` matrix with the differences of `g: Rⁿ → Rᵐ`.
fn compare_matrix(
    what: &'static str,
    g: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    claimed: &[f64],
    x: &[f64],
    options: CheckOptions,
) -> CheckReport {
    let n = x.len();
    let m = claimed.len().checked_div(n).unwrap_or(0);
    let mut report = CheckReport::new(what, options);
    let columns: Vec<Vec<f64>> = (0..n).map(|j| difference(g, x, j, &options)).collect();
    for i in 0..m {
        for (j, column) in columns.iter().enumerate() {
            report.push((i, j), claimed[i * n + j], column[i]);
        }
    }
    report
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
/// assert!(reports[0].passed() && !reports[1].passed());
/// ```
///
/// # Panics
/// If `x.len()` is not the rule's input count.
pub fn check_rule(rule: &CustomRule, x: &[f64]) -> Vec<CheckReport> {
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
            compare_matrix(what, &mut below, &claimed, x, CheckOptions::default())
        })
        .collect()
}
