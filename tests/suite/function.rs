//! Tests `src/function.rs`.
//!
//! One `mixad::Function` (and one `mixad::VectorFunction`), written once, through every
//! operator and mode: gradient (reverse and forward), HVP, dense and sparse Hessians, a
//! recording replayed at new points, nesting, argmin and custom rules, each against the
//! analytic derivatives.

use std::rc::Rc;
use std::sync::Arc;

use crate::common::assert_close;
use mixad::faer::Mat;
use mixad::forward::{self, Dual};
use mixad::reverse::{self, Var};
use mixad::rules::CustomRule;
use mixad::{Function, Scalar, VectorFunction};
use num_traits::Float;

/// `f(x₀, x₁) = a·x₀³x₁ + x₁² + b·e^{x₀}`: data in the struct, the body written once.
struct Cubic {
    a: f64,
    b: f64,
}

impl Function for Cubic {
    fn eval<S: Scalar>(&self, x: &[S]) -> S {
        S::cst(self.a) * x[0] * x[0] * x[0] * x[1] + x[1] * x[1] + S::cst(self.b) * Float::exp(x[0])
    }
}

const F: Cubic = Cubic { a: 1.5, b: -0.5 };
const X: [f64; 2] = [0.7, -1.3];
const V: [f64; 2] = [0.4, 2.0];

fn value(x: &[f64]) -> f64 {
    F.a * x[0].powi(3) * x[1] + x[1] * x[1] + F.b * x[0].exp()
}

fn gradient(x: &[f64]) -> Vec<f64> {
    vec![
        3.0 * F.a * x[0] * x[0] * x[1] + F.b * x[0].exp(),
        F.a * x[0].powi(3) + 2.0 * x[1],
    ]
}

/// Row-major.
fn hessian(x: &[f64]) -> [f64; 4] {
    let off = 3.0 * F.a * x[0] * x[0];
    [6.0 * F.a * x[0] * x[1] + F.b * x[0].exp(), off, off, 2.0]
}

fn hvp(x: &[f64], v: &[f64]) -> Vec<f64> {
    let h = hessian(x);
    vec![h[0] * v[0] + h[1] * v[1], h[2] * v[0] + h[3] * v[1]]
}

fn rows(h: &Mat<f64>) -> Vec<f64> {
    let n = h.nrows();
    (0..n * n).map(|k| h[(k / n, k % n)]).collect()
}

const TOL: f64 = 1e-13;

#[test]
fn eval_at_f64_f32_and_every_ad_number() {
    assert_close(&[F.eval(&X)], &[value(&X)], TOL, "f64");
    let x32 = [X[0] as f32, X[1] as f32];
    assert!((F.eval(&x32) as f64 - value(&X)).abs() < 1e-5, "f32");
    let d = F.eval(&[Dual::new(X[0], 1.0), Dual::constant(X[1])]);
    assert_close(
        &[d.value, d.tangent],
        &[value(&X), gradient(&X)[0]],
        TOL,
        "Dual",
    );
}

#[test]
fn gradient_in_reverse_and_forward_mode() {
    assert_close(
        &mixad::gradient(F.closure(), &X),
        &gradient(&X),
        TOL,
        "reverse",
    );
    let (v, g) = mixad::value_and_gradient(F.closure(), &X);
    assert_close(&[v], &[value(&X)], TOL, "value");
    assert_close(&g, &gradient(&X), TOL, "value_and_gradient");
    assert_close(
        &forward::gradient(F.closure(), &X),
        &gradient(&X),
        TOL,
        "forward",
    );
    let (y, xbar) = reverse::vjp(|x| [F.eval(x)], &X, &[2.0]);
    assert_close(&y, &[value(&X)], TOL, "vjp value");
    let twice: Vec<f64> = gradient(&X).iter().map(|g| 2.0 * g).collect();
    assert_close(&xbar, &twice, TOL, "vjp");
}

#[test]
fn hvp_dense_and_sparse_hessians() {
    assert_close(&mixad::hvp(F.closure(), &X, &V), &hvp(&X, &V), TOL, "hvp");
    let (v, g, hv) = mixad::value_gradient_hvp(F.closure(), &X, &V);
    assert_close(&[v], &[value(&X)], TOL, "value");
    assert_close(&g, &gradient(&X), TOL, "gradient");
    assert_close(&hv, &hvp(&X, &V), TOL, "value_gradient_hvp");
    let h = mixad::hessian(F.closure(), &X);
    assert_close(&rows(&h), &hessian(&X), TOL, "hessian");
    let sparse = mixad::sparse_hessian(F.closure(), &X);
    assert_close(
        &rows(&sparse.to_dense()),
        &hessian(&X),
        TOL,
        "sparse_hessian",
    );
}

#[test]
fn one_recording_replayed_at_new_points() {
    let mut rec = mixad::record(F.closure(), &X);
    for x in [[0.7, -1.3], [-0.2, 0.9], [1.4, 2.5]] {
        assert_close(&[rec.value(&x)], &[value(&x)], TOL, "value");
        assert_close(&rec.gradient(&x), &gradient(&x), TOL, "gradient");
        assert_close(&rec.hvp(&x, &V), &hvp(&x, &V), TOL, "hvp");
        assert_close(&rows(&rec.hessian(&x)), &hessian(&x), TOL, "hessian");
        let sparse = rec.sparse_hessian(&x).to_dense();
        assert_close(&rows(&sparse), &hessian(&x), TOL, "sparse");
    }
    assert_eq!(rec.rerecord_count(), 0);
}

#[test]
fn borrowed_boxed_and_shared_functions_are_functions() {
    fn grad_of(f: impl Function) -> Vec<f64> {
        mixad::gradient(f.closure(), &X)
    }
    let want = gradient(&X);
    assert_close(&grad_of(&F), &want, TOL, "&F");
    assert_close(
        &grad_of(Box::new(Cubic { a: F.a, b: F.b })),
        &want,
        TOL,
        "Box",
    );
    assert_close(
        &grad_of(Rc::new(Cubic { a: F.a, b: F.b })),
        &want,
        TOL,
        "Rc",
    );
    assert_close(
        &grad_of(Arc::new(Cubic { a: F.a, b: F.b })),
        &want,
        TOL,
        "Arc",
    );
}

/// `mixad::nested` evaluates the function on `x` followed by the parameters: here `x₀` is
/// differentiated and `x₁` is a parameter captured from the outer computation.
#[test]
fn nested_inner_derivative_in_every_outer_mode() {
    let df_dx0 = |z: &[Var<f64>]| mixad::nested::gradient(&F, &z[..1], &z[1..])[0];
    // ∇(∂f/∂x₀) is the Hessian's first row, whichever mode runs outside.
    let row0 = &hessian(&X)[..2];
    assert_close(&reverse::gradient(df_dx0, &X), row0, TOL, "reverse outside");
    let fwd = forward::gradient(|z| mixad::nested::derivative(&F, z[0], &z[1..]), &X);
    assert_close(&fwd, row0, TOL, "forward outside");
    assert_close(
        &[mixad::nested::derivative(&F, X[0], &X[1..])],
        &gradient(&X)[..1],
        TOL,
        "at f64",
    );
    let jv = reverse::gradient(
        |z: &[Var<f64>]| {
            let v = [Var::constant(V[0]), Var::constant(V[1])];
            mixad::nested::jvp(&F, z, &v, &[])
        },
        &X,
    );
    assert_close(&jv, &hvp(&X, &V), TOL, "reverse over nested::jvp");
    // Recorded and replayed: the translated inner call is taped in a recording.
    let mut rec = mixad::record(df_dx0, &X);
    let y = [-0.4, 1.1];
    assert_close(&rec.gradient(&y), &hessian(&y)[..2], TOL, "recorded");
}

/// The gradient of a `Function`, itself a `VectorFunction` (forward mode inside), so the
/// same `Cubic` stands as a custom rule whose derivatives come from differentiating it.
struct GradientOf<F>(F);

impl<F: Function> VectorFunction for GradientOf<F> {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        forward::gradient(self.0.closure(), x)
    }
}

#[test]
fn custom_rule_with_a_generic_gradient() {
    let rule = CustomRule::generic(
        "cubic",
        2,
        |x| F.eval(x),
        GradientOf(Cubic { a: F.a, b: F.b }),
    );
    let through = |x: &[Var<f64>]| rule.call(x);
    assert_close(
        &mixad::gradient(through, &X),
        &gradient(&X),
        TOL,
        "gradient",
    );
    let h = mixad::hessian(|x| rule.call(x), &X);
    assert_close(&rows(&h), &hessian(&X), TOL, "hessian");
    let hv = mixad::hvp(|x| rule.call(x), &X, &V);
    assert_close(&hv, &hvp(&X, &V), TOL, "hvp");
    // Third order: ∂³f/∂x₀³ = 6a·x₁ + b·e^{x₀}.
    let d3 = forward::derivative(
        |t: Dual<f64>| forward::second_derivative(|s| rule.call(&[s, Scalar::cst(X[1])]), t),
        X[0],
    );
    assert_close(
        &[d3],
        &[6.0 * F.a * X[1] + F.b * X[0].exp()],
        1e-12,
        "third",
    );
}

/// `F(x) = (f(x), x₀·x₁)` and its Jacobian.
struct Pair;

impl VectorFunction for Pair {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        vec![F.eval(x), x[0] * x[1]]
    }
}

fn jacobian(x: &[f64]) -> Vec<f64> {
    let g = gradient(x);
    vec![g[0], g[1], x[1], x[0]]
}

/// `(x, ȳ) ↦ J(x)ᵀȳ` of [`Pair`], written from the analytic gradient.
struct PairPullback;

impl VectorFunction for PairPullback {
    fn eval<S: Scalar>(&self, z: &[S]) -> Vec<S> {
        let (x, ybar) = z.split_at(2);
        let (a, b) = (S::cst(F.a), S::cst(F.b));
        let g0 = S::cst(3.0) * a * x[0] * x[0] * x[1] + b * Float::exp(x[0]);
        let g1 = a * x[0] * x[0] * x[0] + S::cst(2.0) * x[1];
        vec![ybar[0] * g0 + ybar[1] * x[1], ybar[0] * g1 + ybar[1] * x[0]]
    }
}

#[test]
fn vector_function_jacobian_recording_and_generic_pullback() {
    let j = mixad::jacobian(Pair.closure(), &X);
    assert_close(&rows_of(&j), &jacobian(&X), TOL, "jacobian");
    let jf = forward::jacobian(Pair.closure(), &X);
    assert_close(&rows_of(&jf), &jacobian(&X), TOL, "forward jacobian");
    let mut rec = mixad::record(Pair.closure(), &X);
    let y = [1.2, 0.3];
    assert_close(&rec.values(&y), &[value(&y), y[0] * y[1]], TOL, "values");
    assert_close(
        &rows_of(&rec.jacobian(&y)),
        &jacobian(&y),
        TOL,
        "recorded jacobian",
    );

    let rule = CustomRule::vector("pair", 2, 2, |x, y| {
        let v = Pair.eval(x);
        y.copy_from_slice(&v);
    })
    .generic_pullback(PairPullback);
    // The first output through the rule has f's Hessian.
    let h = mixad::hessian(|x| rule.call_vec(x)[0], &X);
    assert_close(
        &rows(&h),
        &hessian(&X),
        TOL,
        "hessian through the pullback rule",
    );
    // The second output, x₀x₁: Hessian [[0, 1], [1, 0]].
    let h = mixad::hessian(|x| rule.call_vec(x)[1], &X);
    assert_close(&rows(&h), &[0.0, 1.0, 1.0, 0.0], TOL, "second output");
}

fn rows_of(m: &Mat<f64>) -> Vec<f64> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
        .collect()
}

#[cfg(feature = "argmin")]
#[test]
fn argmin_problem_from_the_same_function() {
    use argmin::core::{CostFunction, Gradient, Hessian};
    use mixad::argmin::AutoDiff;

    let expect_rows = |x: &[f64]| {
        let h = hessian(x);
        vec![vec![h[0], h[1]], vec![h[2], h[3]]]
    };
    for problem in [
        AutoDiff::new(&F),
        AutoDiff::prepared(&F, Default::default()),
    ] {
        for x in [X.to_vec(), vec![-0.2, 0.9]] {
            assert_close(&[problem.cost(&x).unwrap()], &[value(&x)], TOL, "cost");
            assert_close(
                &problem.gradient(&x).unwrap(),
                &gradient(&x),
                TOL,
                "gradient",
            );
            let h = problem.hessian(&x).unwrap();
            assert_close(&h.concat(), &expect_rows(&x).concat(), TOL, "hessian");
        }
    }
}
