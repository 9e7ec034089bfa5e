//! Quickstart: write a function once, generic over `num_traits::Float`, and let mixad
//! differentiate it. Every derivative below is checked against central finite differences.
//!
//! Run with `cargo run --release --example quickstart`; exits non-zero if a check fails.

use mixad::forward;
use num_traits::Float;

// A tiny data set for logistic regression: two features per sample, labels 0/1.
const X0: [f64; 6] = [0.5, 1.5, -1.0, 2.0, -0.3, 0.8];
const X1: [f64; 6] = [1.0, -0.5, 0.3, 1.2, -1.5, 0.1];
const Y: [f64; 6] = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0];

/// Lifts a plain constant into whatever number type the code runs on.
fn c<T: Float>(v: f64) -> T {
    T::from(v).unwrap()
}

/// The logits `z_i = w0·x0_i + w1·x1_i + b` of every sample, for weights `w = [w0, w1, b]`.
fn logits<T: Float>(w: &[T]) -> impl Iterator<Item = T> + '_ {
    (0..Y.len()).map(|i| w[0] * c(X0[i]) + w[1] * c(X1[i]) + w[2])
}

/// Mean logistic loss `ln(1 + eᶻ) − y·z` plus a small L2 penalty: a function R³ → R.
/// Written once, it runs on f64 and on every mixad number type.
fn loss<T: Float>(w: &[T]) -> T {
    let nll = logits(w).zip(Y).fold(T::zero(), |acc, (z, y)| {
        acc + z.exp().ln_1p() - c::<T>(y) * z
    });
    nll / c(Y.len() as f64) + c::<T>(0.01) * (w[0] * w[0] + w[1] * w[1])
}

/// The model's predicted probabilities σ(z): a function R³ → R⁶.
fn predictions<T: Float>(w: &[T]) -> Vec<T> {
    logits(w)
        .map(|z| T::one() / (T::one() + (-z).exp()))
        .collect()
}

/// A function of one variable.
fn bump<T: Float>(t: T) -> T {
    (t.sin() * t).exp() / (T::one() + t * t).sqrt()
}

/// Central finite differences of `f: Rⁿ → Rᵐ`, as the columns ∂f/∂xⱼ laid end to end.
fn finite_diff(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    let mut out = Vec::new();
    for j in 0..x.len() {
        let (mut up, mut down) = (x.to_vec(), x.to_vec());
        up[j] += h;
        down[j] -= h;
        let (f_up, f_down) = (f(&up), f(&down));
        out.extend(f_up.iter().zip(f_down).map(|(u, d)| (u - d) / (2.0 * h)));
    }
    out
}

/// Prints one row of the results table and remembers whether every row passed.
struct Checks {
    all_ok: bool,
}

impl Checks {
    fn compare(&mut self, what: &str, ad: &[f64], fd: &[f64]) {
        let err = ad
            .iter()
            .zip(fd)
            .fold(0.0, |m: f64, (a, f)| m.max((a - f).abs()));
        let scale = fd.iter().fold(1.0, |m: f64, f| m.max(f.abs()));
        let ok = ad.len() == fd.len() && err <= 1e-5 * scale;
        self.all_ok &= ok;
        let verdict = if ok { "OK" } else { "MISMATCH" };
        println!("{what:<38} {err:>14.3e}   {verdict}");
    }
}

fn main() {
    let w = [0.4, -0.7, 0.1];
    let t = 0.8;
    println!("loss(w) at w = {w:?}: {:.12}", loss(&w));
    println!("bump(t) at t = {t}:   {:.12}\n", bump(t));
    println!("{:<38} {:>14}   result", "check", "max |AD − FD|");
    let mut checks = Checks { all_ok: true };

    // Derivative of a function of one variable: one forward sweep with a dual number.
    let d = forward::derivative(bump, t);
    let fd = finite_diff(|x| vec![bump(x[0])], &[t]);
    checks.compare("bump'(t)   forward::derivative", &[d], &fd);

    // Second derivative: forward over forward. Checked against differences of bump itself.
    let d2 = forward::second_derivative(bump, t);
    let h = 1e-4;
    let fd2 = (bump(t + h) - 2.0 * bump(t) + bump(t - h)) / (h * h);
    checks.compare("bump''(t)  forward::second_derivative", &[d2], &[fd2]);

    // Gradient of R³ → R: up to 8 directions per sweep (`forward::LANES`).
    let g = forward::gradient(loss, &w);
    let fd = finite_diff(|w| vec![loss(w)], &w);
    checks.compare("∇loss(w)   forward::gradient", &g, &fd);

    // Jacobian of R³ → R⁶, returned as a 6×3 `faer::Mat<f64>`.
    let jac = forward::jacobian(predictions, &w);
    let columns: Vec<f64> = (0..3)
        .flat_map(|j| (0..6).map(move |i| (i, j)))
        .map(|ij| jac[ij])
        .collect();
    let fd = finite_diff(predictions, &w);
    checks.compare("J(w)       forward::jacobian, 6×3", &columns, &fd);

    // Reverse mode: one recording and one backward sweep, whatever the number of inputs.
    let (value, g) = mixad::value_and_gradient(loss, &w);
    let fd = finite_diff(|w| vec![loss(w)], &w);
    checks.compare("∇loss(w)   reverse::value_and_gradient", &g, &fd);
    assert_eq!(value, loss(&w));

    // Hessian-vector product and dense Hessian: forward over reverse, checked against
    // finite differences of the reverse-mode gradient.
    let v = [1.0, -2.0, 0.5];
    let hv = mixad::hvp(loss, &w, &v);
    let fd_h = finite_diff(|w| mixad::gradient(loss, w), &w);
    let fd_hv: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|j| fd_h[j * 3 + i] * v[j]).sum())
        .collect();
    checks.compare("∇²loss(w)·v  mixad::hvp", &hv, &fd_hv);
    let hess = mixad::hessian(loss, &w);
    let columns: Vec<f64> = (0..3)
        .flat_map(|j| (0..3).map(move |i| (i, j)))
        .map(|ij| hess[ij])
        .collect();
    checks.compare("∇²loss(w)  mixad::hessian, 3×3", &columns, &fd_h);

    if checks.all_ok {
        println!("\nall derivatives agree with finite differences");
    } else {
        println!("\nsome derivatives disagree with finite differences");
        std::process::exit(1);
    }
}
