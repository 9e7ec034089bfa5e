//! Real Rust, differentiated as written: the limits of a source-transforming reverse mode
//! (array mutation, error handling, mutable structs, rebinding, data-dependent loops,
//! early return, and a recorded tape whose branch flips). Each gradient is checked against
//! the exact value or against `mixad::check` (finite differences).
//!
//! Run with `cargo run --release --example mutation`; exits non-zero if a check fails.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mixad::check::check_gradient;
use mixad::record;
use mixad::reverse::try_gradient;
use num_traits::Float;

fn c<T: Float>(v: f64) -> T {
    T::from(v).unwrap()
}

// Array mutation: a copy doubled in place, Σ (2xᵢ)²; exact gradient 8xᵢ.
fn doubled<T: Float>(x: &[T]) -> T {
    let mut v = x.to_vec();
    v.iter_mut().for_each(|e| *e = *e * c(2.0));
    v.iter().fold(T::zero(), |s, &e| s + e * e)
}

// push, sort and pop on a Vec of tracked numbers.
fn push_sort_pop<T: Float>(x: &[T]) -> T {
    let mut v = x.to_vec();
    v.push(x[0] * x[1]);
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let largest = v.pop().unwrap();
    let weighted = v.iter().enumerate().map(|(i, &e)| e * c(i as f64));
    largest.sin() + weighted.fold(T::zero(), |s, e| s + e)
}

// A non-mutating g(y) around a mutating kernel: running sums in place, then Σ Sᵢ².
fn g_mut<T: Float>(buf: &mut [T], y: &[T]) {
    buf.copy_from_slice(y);
    (1..buf.len()).for_each(|i| buf[i] = buf[i] + buf[i - 1]);
}
fn g<T: Float>(y: &[T]) -> T {
    let mut buf = vec![T::zero(); y.len()];
    g_mut(&mut buf, y);
    buf.iter().fold(T::zero(), |s, &e| s + e * e)
}

// Error handling with `?`: √x₀ · ln x₁, an `Err` outside the domain.
fn fallible<T: Float>(x: &[T]) -> Result<T, &'static str> {
    let root = (x[0] >= T::zero()).then(|| x[0].sqrt());
    let log = (x[1] > T::zero()).then(|| x[1].ln());
    Ok(root.ok_or("sqrt of a negative")? * log.ok_or("ln of a non-positive")?)
}

// A panic caught inside the function, with a fallback formula x₀² + x₁.
fn with_fallback<T: Float>(x: &[T]) -> T {
    let risky = || {
        assert!(x[0] >= T::zero(), "negative input");
        x[0].sqrt() * x[1]
    };
    catch_unwind(AssertUnwindSafe(risky)).unwrap_or_else(|_| x[0] * x[0] + x[1])
}

// A mutable struct updated in place: Welford's running mean and variance.
struct Stats<T> {
    n: T,
    mean: T,
    m2: T,
}
impl<T: Float> Stats<T> {
    fn push(&mut self, v: T) {
        self.n = self.n + T::one();
        let d = v - self.mean;
        self.mean = self.mean + d / self.n;
        self.m2 = self.m2 + d * (v - self.mean);
    }
}
fn variance<T: Float>(x: &[T]) -> T {
    let (n, mean, m2) = (T::zero(), T::zero(), T::zero());
    let mut stats = Stats { n, mean, m2 };
    x.iter().for_each(|&v| stats.push(v));
    stats.m2 / (stats.n - T::one())
}

// Rebinding in a loop: tot = x + x² + … + x⁵.
fn rebound<T: Float>(x: &[T]) -> T {
    let mut tot = T::zero();
    for n in 1..=5 {
        tot = tot + x[0].powi(n);
    }
    tot
}

// A while loop whose trip count depends on the data: Newton's iteration for √a.
fn newton_sqrt<T: Float>(x: &[T]) -> T {
    let (a, mut y) = (x[0], x[0]);
    while (y * y - a).abs() > c::<T>(1e-15) * a {
        y = (y + a / y) * c(0.5);
    }
    y
}

// Early return from a loop: v²·(i + 1) for the first entry above 1.
fn first_large<T: Float>(x: &[T]) -> T {
    for (i, &v) in x.iter().enumerate() {
        if v > T::one() {
            return v * v * c(i as f64 + 1.0);
        }
    }
    x.iter().fold(T::zero(), |s, &v| s + v)
}

// A branch on tracked values: ln(x₀x₁) when x₀x₁ > 1, else x₀ − x₁².
fn branchy<T: Float>(x: &[T]) -> T {
    let p = x[0] * x[1];
    if p > T::one() {
        p.ln()
    } else {
        x[0] - x[1] * x[1]
    }
}

/// Prints one row per case and remembers whether every row passed.
struct Table(bool);
impl Table {
    fn row(&mut self, case: &str, reference: &str, result: String, ok: bool) {
        self.0 &= ok;
        let verdict = if ok { "OK" } else { "WRONG" };
        println!("{case:<36} {reference:<13} {result:<28} {verdict}");
    }
    /// A gradient against the exact one, to rounding.
    fn exact(&mut self, case: &str, got: &[f64], want: &[f64]) {
        let rel = |(g, w): (&f64, &f64)| (g - w).abs() / (1.0 + w.abs());
        let err = got.iter().zip(want).map(rel).fold(0.0, f64::max);
        let ok = got.len() == want.len() && err < 1e-12;
        self.row(case, "exact", format!("max rel. error {err:.1e}"), ok);
    }
}

fn main() {
    let mut t = Table(true);
    println!(
        "{:<36} {:<13} {:<28} verdict",
        "case", "reference", "result"
    );
    let x = [0.5, -1.25, 3.0];
    let grad = mixad::gradient(doubled, &x);
    t.exact("Vec doubled in place", &grad, &x.map(|v| 8.0 * v));
    let report = check_gradient(push_sort_pop, &[0.3, -1.1, 2.0]);
    let err = report.worst().map_or(0.0, |w| w.rel_error);
    let (result, ok) = (format!("max rel. error {err:.1e}"), report.passed());
    t.row("Vec push, sort_by, pop", "mixad::check", result, ok);
    // ∂/∂yⱼ Σᵢ Sᵢ² = 2 Σ_{i ≥ j} Sᵢ, with running sums S = (1, −1, −0.5, 3.5).
    let grad = mixad::gradient(g, &[1.0, -2.0, 0.5, 4.0]);
    let want = [6.0, 4.0, 6.0, 7.0];
    t.exact("g(y) calling g_mut(&mut buf, &y)", &grad, &want);

    let e = std::f64::consts::E;
    let grad = try_gradient(fallible, &[4.0, e]).unwrap_or_default();
    t.exact("`?` + try_gradient, Ok path", &grad, &[0.25, 2.0 / e]);
    let err = try_gradient(fallible, &[-4.0, e]);
    let (result, ok) = (format!("{err:?}"), err == Err("sqrt of a negative"));
    t.row("`?` + try_gradient, Err path", "Err", result, ok);
    std::panic::set_hook(Box::new(|_| {})); // silence the message of the caught panic
    let grad = mixad::gradient(with_fallback, &[-1.5, 2.0]);
    let _ = std::panic::take_hook();
    t.exact("catch_unwind, fallback x₀² + x₁", &grad, &[-3.0, 1.0]);
    let grad = mixad::gradient(with_fallback, &[4.0, 3.0]);
    t.exact("catch_unwind, no panic: √x₀·x₁", &grad, &[0.75, 2.0]);

    let x = [1.0, 2.5, -0.5, 4.0];
    let mean = x.iter().sum::<f64>() / 4.0;
    let grad = mixad::gradient(variance, &x);
    let want = x.map(|v| 2.0 * (v - mean) / 3.0);
    t.exact("struct updated in place", &grad, &want);
    let want: f64 = (1..=5).map(|n| n as f64 * 1.3f64.powi(n - 1)).sum();
    let grad = mixad::gradient(rebound, &[1.3]);
    t.exact("rebinding: tot = tot + x.powi(n)", &grad, &[want]);
    for a in [2.0, 1e6] {
        let case = format!("while loop: Newton √a, a = {a:e}");
        let grad = mixad::gradient(newton_sqrt, &[a]);
        t.exact(&case, &grad, &[0.5 / a.sqrt()]);
    }
    let grad = mixad::gradient(first_large, &[0.5, 2.0, 3.0]);
    t.exact("early return from a loop", &grad, &[0.0, 8.0, 0.0]);

    // Recorded at (2, 3), replayed elsewhere: the guard on x₀x₁ > 1 re-records when it flips.
    let mut rec = record(branchy, &[2.0, 3.0]);
    for (x, want, count) in [([1.0, 4.0], [1.0, 0.25], 0), ([0.5, 1.0], [1.0, -2.0], 1)] {
        let branch = ["x₀ − x₁²", "ln(x₀x₁)"][usize::from(x[0] * x[1] > 1.0)];
        let (case, grad) = (format!("recorded, at {x:?}: {branch}"), rec.gradient(&x));
        t.exact(&case, &grad, &want);
        let result = format!("rerecord_count = {}", rec.rerecord_count());
        let ok = rec.rerecord_count() == count;
        t.row("  … re-recorded?", "count", result, ok);
    }

    if t.0 {
        println!("\nevery gradient is right");
    } else {
        println!("\nsome gradients are WRONG");
        std::process::exit(1);
    }
}
