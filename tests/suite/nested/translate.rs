//! Tests `src/nested/translate.rs`.
//!
//! Reverse over forward translated to forward over forward (`mixad::nested`): the inner
//! call becomes tape nodes whose partials come from a `Dual<DualVec>` evaluation, and the
//! result (with respect to `x` *and* the captured `params`) equals plain taping of the
//! forward call and the analytic value, in every mode and inside recorded functions.

use mixad::forward::{self, Dual};
use mixad::nested;
use mixad::reverse::{self, Var};
use mixad::Function;
use num_traits::Float;

/// p(x; w) = w₀ / ‖x − (1, w₁)‖ + x₀²x₁: an inner function with captured parameters,
/// evaluated on `(x₀, x₁, w₀, w₁)`.
struct Potential;

impl Function for Potential {
    fn eval<T: mixad::Scalar>(&self, z: &[T]) -> T {
        let (x, w) = z.split_at(2);
        potential(x, w)
    }
}

/// The same function as generic code, for plain taping through `forward`.
fn potential<T: Float>(x: &[T], w: &[T]) -> T {
    let dy = x[1] - w[1];
    let r = ((x[0] - T::one()).powi(2) + dy * dy).sqrt();
    w[0] / r + x[0] * x[0] * x[1]
}

const X: [f64; 2] = [2.5, -0.5];
const W: [f64; 2] = [1.5, 0.75];
const V: [f64; 2] = [0.3, -1.2];

/// Outer objective: Σ ∂p/∂xᵢ + ∇p·v, through the translated path.
fn outer_translated<S: mixad::Scalar>(z: &[S]) -> S {
    let (x, w) = z.split_at(2);
    let g = nested::gradient(&Potential, x, w);
    let v: Vec<S> = V.iter().map(|&c| S::cst(c)).collect();
    g[0] + g[1] + nested::jvp(&Potential, x, &v, w)
}

/// The same objective, taping the dual arithmetic of forward::gradient/jvp at S = Var.
fn outer_taped(z: &[Var<f64>]) -> Var<f64> {
    let (x, w) = z.split_at(2);
    let g = forward::gradient(
        |xs| {
            let ws: Vec<_> = w
                .iter()
                .map(|&c| mixad::forward::DualVec::constant(c))
                .collect();
            potential(xs, &ws)
        },
        x,
    );
    let v: Vec<Var<f64>> = V.iter().map(|&c| Var::constant(c)).collect();
    let (_, jv) = forward::jvp(
        |xs| {
            let ws: Vec<_> = w.iter().map(|&c| Dual::constant(c)).collect();
            [potential(xs, &ws)]
        },
        x,
        &v,
    );
    g[0] + g[1] + jv[0]
}

fn point() -> Vec<f64> {
    X.iter().chain(&W).copied().collect()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

#[test]
fn translated_equals_plain_taping_and_finite_differences() {
    let z = point();
    let translated = reverse::gradient(outer_translated, &z);
    let taped = reverse::gradient(outer_taped, &z);
    assert_close(&translated, &taped, 1e-13);
    // Central differences of the objective evaluated at f64 (forward mode inside).
    let h = 1e-6;
    let fd: Vec<f64> = (0..4)
        .map(|k| {
            let (mut up, mut down) = (z.clone(), z.clone());
            up[k] += h;
            down[k] -= h;
            (outer_translated(&up) - outer_translated(&down)) / (2.0 * h)
        })
        .collect();
    assert_close(&translated, &fd, 1e-7);
    // The captured parameters (last two) really get a gradient.
    assert!(translated[2].abs() > 1e-3 && translated[3].abs() > 1e-3);
}

#[test]
fn direction_variables_get_their_partials() {
    // d/dv (∇p·v) = ∇p.
    let vd = reverse::gradient(
        |v: &[Var<f64>]| {
            let xs: Vec<Var<f64>> = X.iter().map(|&c| Var::constant(c)).collect();
            let ws: Vec<Var<f64>> = W.iter().map(|&c| Var::constant(c)).collect();
            nested::jvp(&Potential, &xs, v, &ws)
        },
        &V,
    );
    let grad = forward::gradient(
        |xs| {
            let ws: Vec<_> = W
                .iter()
                .map(|&c| mixad::forward::DualVec::constant(c))
                .collect();
            potential(xs, &ws)
        },
        &X,
    );
    assert_close(&vd, &grad, 1e-13);
}

#[test]
fn every_outer_mode_agrees() {
    let z = point();
    let reverse_outer = reverse::gradient(outer_translated, &z);
    let forward_outer = forward::gradient(outer_translated, &z);
    assert_close(&forward_outer, &reverse_outer, 1e-13);
    let derivative = nested::derivative(&Scalarized, 0.7, &[1.5, 0.75]);
    assert!(
        (derivative - (-1.5 * (0.7 - 1.0) / (0.7f64 - 1.0).powi(2).sqrt().powi(3))).abs() < 1e-12
    );
}

/// p restricted to x₁ = w₁ (so r = |x₀ − 1|).
struct Scalarized;

/// Evaluated on `(x₀, w₀, w₁)`.
impl Function for Scalarized {
    fn eval<T: mixad::Scalar>(&self, z: &[T]) -> T {
        z[1] / Float::abs(z[0] - T::one())
    }
}

#[test]
fn recorded_functions_tape_the_inner_call_and_replay_correctly() {
    let z = point();
    let mut rec = mixad::record(outer_translated, &z);
    let shifted: Vec<f64> = z.iter().map(|v| v + 0.1).collect();
    let replayed = rec.gradient(&shifted);
    assert_eq!(rec.rerecord_count(), 0);
    assert_close(&replayed, &reverse::gradient(outer_taped, &shifted), 1e-12);
}

#[test]
#[should_panic(expected = "nested::jvp: x has 2 entries but the direction v has 1")]
fn jvp_checks_the_direction_length() {
    nested::jvp(&Potential, &X, &[1.0], &W);
}
