//! Foreign code made differentiable: C functions called through `extern "C"`.
//!
//! Run with `cargo run --release --example foreign`.
//!
//! 1. The seed's foreign call: `clock() · x`, where the clock comes from C. A foreign
//!    *value* needs no rule: it is a constant to mixad, in every mode.
//! 2. C's `erf` as a custom rule with its first and second derivatives: gradients,
//!    Hessians and HVPs through it, checked against finite differences.
//! 3. The same `erf` with its derivative written generically: any nesting depth (here a
//!    third derivative).
//! 4. C's `lgamma` with digamma and trigamma written in Rust.
//! 5. What happens when a Hessian goes through a rule that only has first derivatives.

use std::os::raw::c_long;

use mixad::rules::CustomRule;
use mixad::{Scalar, VectorFunction};
use num_traits::Float;

extern "C" {
    fn clock() -> c_long;
    fn erf(x: f64) -> f64;
    fn lgamma(x: f64) -> f64;
}

fn c_clock() -> f64 {
    // SAFETY: C's `clock` takes no arguments and only reads the process's CPU time.
    unsafe { clock() as f64 }
}

fn c_erf(x: f64) -> f64 {
    // SAFETY: `erf` from the C math library is a pure function of a double.
    unsafe { erf(x) }
}

fn c_lgamma(x: f64) -> f64 {
    // SAFETY: `lgamma` is a function of a double; it also sets the global `signgam`, which
    // nothing here reads.
    unsafe { lgamma(x) }
}

/// erf′(x) = 2/√π · e^(−x²), written once for every scalar type.
struct ErfDerivative;

impl VectorFunction for ErfDerivative {
    fn eval<T: Scalar>(&self, x: &[T]) -> Vec<T> {
        vec![T::cst(std::f64::consts::FRAC_2_SQRT_PI) * Float::exp(-x[0] * x[0])]
    }
}

/// ψ(x), the digamma function (d/dx ln Γ), by recurrence up to x ≥ 10 and the asymptotic
/// series there (x > 0).
fn digamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    shift + x.ln()
        - 0.5 / x
        - r * (1.0 / 12.0
            - r * (1.0 / 120.0 - r * (1.0 / 252.0 - r * (1.0 / 240.0 - r * (1.0 / 132.0)))))
}

/// ψ′(x), the trigamma function, the same way.
fn trigamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    shift
        + 1.0 / x
        + r / 2.0
        + r / x
            * (1.0 / 6.0 - r * (1.0 / 30.0 - r * (1.0 / 42.0 - r * (1.0 / 30.0 - r * 5.0 / 66.0))))
}

fn main() {
    // 1. clock() · x: the C value is a constant; its derivative is the clock reading.
    let tick = c_clock();
    let g = mixad::gradient(|x| x[0] * tick, &[2.0]);
    let h = mixad::hessian(|x| x[0] * x[0] * tick, &[2.0]);
    println!("1. d/dx [clock()·x] = {} (clock() read {tick})", g[0]);
    println!("   d²/dx² [clock()·x²] = {} = 2·clock()", h[(0, 0)]);

    // 2. erf from C, with two derivatives: everything up to Hessians works.
    let erf_rule = CustomRule::unary(
        "erf",
        &[
            c_erf,
            |x| std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
            |x| -2.0 * x * std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
        ],
    );
    println!(
        "\n2. erf(0.5) = {:.16} (known: 0.5204998778130465)",
        erf_rule.call1(0.5)
    );
    for report in mixad::check::check_rule(&erf_rule, &[0.5]) {
        let worst = report.worst().map_or(0.0, |w| w.rel_error);
        let verdict = if report.passed() { "passed" } else { "FAILED" };
        println!(
            "   {}: {verdict} (worst relative error {worst:.1e})",
            report.what
        );
    }
    // A function of two variables through the rule: f(x, y) = erf(x·y)·y.
    let f = |v: &[mixad::reverse::Var<f64>]| erf_rule.call1(v[0] * v[1]) * v[1];
    let p = [0.3, 1.2];
    let h = mixad::hessian(f, &p);
    println!(
        "   Hessian of erf(xy)·y at {p:?}: [[{:.6}, {:.6}], [{:.6}, {:.6}]]",
        h[(0, 0)],
        h[(0, 1)],
        h[(1, 0)],
        h[(1, 1)]
    );
    let report = mixad::check::check_hessian(f, &p);
    println!(
        "   Hessian against finite differences of the gradient: {}",
        if report.passed() { "passed" } else { "FAILED" }
    );
    let hv = mixad::hvp(|v| erf_rule.call1(v[0] * v[1]) * v[1], &p, &[1.0, -1.0]);
    println!("   H·(1, −1) = ({:.6}, {:.6})", hv[0], hv[1]);

    // 3. erf with a generic derivative: differentiable to any nesting depth.
    let erf_any = CustomRule::generic("erf", 1, |x| c_erf(x[0]), ErfDerivative);
    let x = 0.5f64;
    let third = mixad::forward::derivative(
        |t: mixad::forward::Dual<f64>| mixad::forward::second_derivative(|s| erf_any.call1(s), t),
        x,
    );
    let exact = (4.0 * x * x - 2.0) * std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
    println!("\n3. erf‴(0.5) = {third:.15} (exact {exact:.15})");

    // 4. lgamma from C with digamma and trigamma from Rust.
    let lgamma_rule = CustomRule::unary("lgamma", &[c_lgamma, digamma, trigamma]);
    let euler_gamma = 0.577_215_664_901_532_9;
    println!(
        "\n4. d/dx lgamma at 1 = {:.15} (−γ = {:.15})",
        mixad::forward::derivative(|t| lgamma_rule.call1(t), 1.0),
        -euler_gamma
    );
    println!(
        "   d²/dx² lgamma at 1 = {:.15} (π²/6 = {:.15})",
        mixad::forward::second_derivative(|t| lgamma_rule.call1(t), 1.0),
        std::f64::consts::PI.powi(2) / 6.0
    );
    // The log-likelihood of a gamma distribution's shape k for data d: Σ (k−1) ln d − d −
    // lgamma(k) (scale 1); its Newton step needs the second derivative through lgamma.
    let data = [0.8, 1.9, 2.4, 3.1, 1.2];
    let loglik = |k: &[mixad::reverse::Var<f64>]| {
        data.iter()
            .fold(mixad::reverse::Var::constant(0.0), |s, &d| {
                s + (k[0] - 1.0) * d.ln() - d - lgamma_rule.call1(k[0])
            })
    };
    let mut k = 1.0;
    for _ in 0..6 {
        let (_, g, h) = mixad::value_gradient_hessian(loglik, &[k]);
        k -= g[0] / h[(0, 0)];
    }
    println!("   gamma shape by Newton through lgamma: k = {k:.12}");

    // 5. A rule with first derivatives only, inside a Hessian: a clear error, never zeros.
    let first_only = CustomRule::unary(
        "erf_first_order",
        &[c_erf, |x| std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp()],
    );
    println!(
        "\n5. gradient through a first-order rule: {:?}",
        mixad::gradient(|v| first_only.call1(v[0]), &[0.5])
    );
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(|| mixad::hessian(|v| first_only.call1(v[0]), &[0.5]));
    let _ = std::panic::take_hook();
    match outcome {
        Ok(_) => println!("   unexpected: a Hessian through a first-order rule"),
        Err(e) => println!(
            "   Hessian through it is refused:\n   {}",
            e.downcast_ref::<String>()
                .map_or("(no message)", |s| s.as_str())
        ),
    }
}
