//! Nested differentiation: the saddle point min over x ∈ R² of max over y ∈ R² of f(x, y).
//! The inner max is found by gradient ascent in y, the outer min by gradient descent in x
//! whose gradient goes *through* the ascent loop. Each of the two gradients is taken by
//! forward or reverse mode, giving four combinations (ff, fr, rf, rr: outer mode first),
//! plus reverse over `mixad::nested::gradient`, which translates the inner forward-mode
//! call into forward over forward instead of taping it.
//!
//! Run with `cargo run --release --example nested`; exits non-zero if the results differ.

use mixad::forward::{self, DualVec, LANES};
use mixad::reverse::{self, TapeScalar, Var};
use mixad::{Function, Scalar};
use num_traits::Float;

/// The f(x, y) = (x₁² + y₁²) − (x₂² + y₁²) does not depend on y (y₁² cancels), so
/// the inner max is flat and the outer min unbounded (x₂ → ±∞). We use the coupled variant
/// of `tests/suite/nested/mod.rs`: f = ‖x‖² − ‖y‖² + x₁(y₁ + y₂) + x₂y₂ − 2x₁ + x₂,
/// strictly concave in y, with saddle point x* = (22, −16)/29, y* = (11, 3)/29.
fn f<T: Float>(x: &[T], y: &[T]) -> T {
    let (two, coupling) = (T::from(2.0).unwrap(), x[0] * (y[0] + y[1]) + x[1] * y[1]);
    x[0] * x[0] + x[1] * x[1] - y[0] * y[0] - y[1] * y[1] + coupling - two * x[0] + x[1]
}

const ASCENT_RATE: f64 = 0.25; // inner error shrinks by ½ per step
const ASCENT_STEPS: usize = 60;
const DESCENT_RATE: f64 = 0.3;
const DESCENT_STEPS: usize = 40;

/// A mode at scalar `S`: the number type its closures see, how a captured `S` is lifted
/// into it (a constant: no derivative at this level), and a gradient.
trait Mode<S: Scalar> {
    type In: Scalar;
    fn lift(s: S) -> Self::In;
    fn grad(f: impl FnMut(&[Self::In]) -> Self::In, x: &[S]) -> Vec<S>;
}
struct Fwd;
struct Rev;
impl<S: Scalar> Mode<S> for Fwd {
    type In = DualVec<S, LANES>;
    fn lift(s: S) -> Self::In {
        DualVec::constant(s)
    }
    fn grad(f: impl FnMut(&[Self::In]) -> Self::In, x: &[S]) -> Vec<S> {
        forward::gradient(f, x)
    }
}
impl<S: TapeScalar> Mode<S> for Rev {
    type In = Var<S>;
    fn lift(s: S) -> Self::In {
        Var::constant(s)
    }
    fn grad(f: impl FnMut(&[Self::In]) -> Self::In, x: &[S]) -> Vec<S> {
        reverse::gradient(f, x)
    }
}

/// `steps` of gradient ascent y ← y + η·grad_y(y) from y = 0.
fn ascend<S: Scalar>(mut grad_y: impl FnMut(&[S]) -> Vec<S>, steps: usize) -> Vec<S> {
    let (mut y, eta) = (vec![S::zero(); 2], S::cst(ASCENT_RATE));
    for _ in 0..steps {
        let g = grad_y(&y);
        y = vec![y[0] + eta * g[0], y[1] + eta * g[1]];
    }
    y
}

/// argmax over y of f(x, y) by gradient ascent, the gradients in y taken by mode `I`.
fn argmax<S: Scalar, I: Mode<S>>(x: &[S], steps: usize) -> Vec<S> {
    // x comes from the outer computation: lift it so the inner gradient treats it as a
    // constant while it keeps its own outer derivative.
    let x_in: Vec<I::In> = x.iter().map(|&v| I::lift(v)).collect();
    ascend(|y| I::grad(|y_in| f(&x_in, y_in), y), steps)
}

/// The same with `mixad::nested::gradient`: x is passed as parameters, no lifting. The
/// inner function sees y followed by x.
struct Inner;
impl Function for Inner {
    fn eval<T: Scalar>(&self, yx: &[T]) -> T {
        let (y, x) = yx.split_at(2);
        f(x, y)
    }
}
fn argmax_translated<S: Scalar>(x: &[S], steps: usize) -> Vec<S> {
    ascend(|y| mixad::nested::gradient(&Inner, y, x), steps)
}

/// Gradient descent in x from (1, 1), `grad(x, K)` being ∇ₓ f(x, y_K(x)).
fn descend(mut grad: impl FnMut(&[f64], usize) -> Vec<f64>) -> [f64; 2] {
    let mut x = [1.0, 1.0];
    for _ in 0..DESCENT_STEPS {
        let g = grad(&x, ASCENT_STEPS);
        x = [x[0] - DESCENT_RATE * g[0], x[1] - DESCENT_RATE * g[1]];
    }
    x
}

/// ∇ₓ f(x, y_K(x)) with outer mode `O` and inner mode `I`, through K ascent steps.
fn outer_grad<O: Mode<f64>, I: Mode<O::In>>(x: &[f64], k: usize) -> Vec<f64> {
    O::grad(|xo| f(xo, &argmax::<_, I>(xo, k)), x)
}
fn outer_grad_translated(x: &[f64], k: usize) -> Vec<f64> {
    reverse::gradient(|xo| f(xo, &argmax_translated(xo, k)), x)
}

/// One row of the table: a label, the value from each mode, the exact value. Tracks the
/// largest difference from the exact value and from the first mode (ff).
fn row(label: &str, values: &[f64], exact: f64, worst: &mut f64) {
    print!("{label:<7}");
    for v in values {
        print!("{v:>19.15}");
        *worst = worst.max((v - exact).abs()).max((v - values[0]).abs());
    }
    println!("{exact:>19.15}");
}

fn main() {
    type Grad = fn(&[f64], usize) -> Vec<f64>;
    let modes: [(&str, Grad); 5] = [
        ("ff", outer_grad::<Fwd, Fwd>),
        ("fr", outer_grad::<Fwd, Rev>),
        ("rf", outer_grad::<Rev, Fwd>),
        ("rr", outer_grad::<Rev, Rev>),
        ("rf via nested", outer_grad_translated),
    ];
    print!("{:<7}", "");
    modes.iter().for_each(|(name, _)| print!("{name:>19}"));
    println!("{:>19}", "exact");

    // The saddle point from every combination; y at the final x by plain ascent.
    let results: Vec<[f64; 4]> = modes
        .iter()
        .map(|&(_, grad)| {
            let x = descend(grad);
            let y = argmax::<f64, Fwd>(&x, ASCENT_STEPS);
            [x[0], x[1], y[0], y[1]]
        })
        .collect();
    let exact = [22.0 / 29.0, -16.0 / 29.0, 11.0 / 29.0, 3.0 / 29.0];
    let mut worst: f64 = 0.0;
    for (i, label) in ["x₁*", "x₂*", "y₁*", "y₂*"].iter().enumerate() {
        let values: Vec<f64> = results.iter().map(|r| r[i]).collect();
        row(label, &values, exact[i], &mut worst);
    }

    // One outer gradient through K = 3 ascent steps, at x = (1.5, 0.5). Going through the
    // loop (y₃ depends on x) gives 2x + a + (c − c²/2)·BBᵀx with c = 1 − ½³,
    // B = [[1, 1], [0, 1]], a = (−2, 1); holding y₃ fixed would give (c/2)·BBᵀx instead.
    let (x, c) = ([1.5, 0.5], 1.0 - 0.5f64.powi(3));
    let (bbt_x, a) = ([2.0 * x[0] + x[1], x[0] + x[1]], [-2.0, 1.0]);
    let through = |i: usize, s: f64| 2.0 * x[i] + a[i] + s * bbt_x[i];
    let grads: Vec<Vec<f64>> = modes.iter().map(|(_, grad)| grad(&x, 3)).collect();
    println!("\ngradient of f(x, y₃(x)) through 3 ascent steps, at x = {x:?}");
    for (i, label) in ["∂/∂x₁", "∂/∂x₂"].iter().enumerate() {
        let exact = through(i, c - c * c / 2.0);
        let values: Vec<f64> = grads.iter().map(|g| g[i]).collect();
        row(label, &values, exact, &mut worst);
    }
    let held = [through(0, c / 2.0), through(1, c / 2.0)];
    println!("(holding y₃ fixed instead would give {held:?})");

    println!("\nlargest difference between modes or from the exact values: {worst:.1e}");
    if worst > 1e-10 {
        println!("the mode combinations DISAGREE");
        std::process::exit(1);
    }
    println!("all mode combinations agree to 1e-10");
}
