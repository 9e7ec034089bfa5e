//! Tests `src/chain.rs`'s NaN convention: a NaN value never comes with finite derivatives,
//! in any mode (one-shot and recorded gradients, dense and sparse Hessians, HVPs, Jacobian
//! rows, nested and translated derivatives), while a NaN that an operation drops, or one off
//! the output path, changes nothing. More sources of NaN: `nan_sources.rs`.

// `x − x` is the point: a NaN built from variables.
#![allow(clippy::eq_op)]
// `|x| f(x)` picks the scalar type each API needs, as user code does.
#![allow(clippy::redundant_closure)]

mod nan_sources;

use mixad::forward::{self, Dual};
use mixad::reverse;
use mixad::Scalar;
use num_traits::Float;

use crate::common::{all_nan, dense};

fn zero_over_zero<S: Scalar>(x: &[S]) -> S {
    (x[0] - x[0]) / (x[1] - x[1]) + x[0] * x[1] + x[2]
}

fn root_of_negative<S: Scalar>(x: &[S]) -> S {
    Float::sqrt(x[0] - S::cst(2.0)) * x[1] + x[2] * x[2]
}

fn constant_nan<S: Scalar>(_x: &[S]) -> S {
    S::nan()
}

macro_rules! assert_nan_everywhere {
    ($f:path) => {{
        let x = [1.0, 2.0, 3.0];
        let what = stringify!($f);
        let (v, g) = mixad::value_and_gradient(|x| $f(x), &x);
        assert!(v.is_nan(), "{what}: value {v}");
        all_nan(&g, &format!("{what}: reverse gradient"));
        all_nan(
            &forward::gradient(|x| $f(x), &x),
            &format!("{what}: forward gradient"),
        );
        let (_, g, h) = mixad::value_gradient_hessian(|x| $f(x), &x);
        all_nan(&g, &format!("{what}: Hessian's gradient"));
        all_nan(&dense(&h), &format!("{what}: dense Hessian"));
        let sparse = mixad::sparse_hessian(|x| $f(x), &x);
        all_nan(sparse.values(), &format!("{what}: sparse Hessian"));
        all_nan(
            &mixad::hvp(|x| $f(x), &x, &[1.0, 0.5, 0.0]),
            &format!("{what}: hvp"),
        );
        let mut prepared = mixad::record(|x| $f(x), &[5.0, 6.0, 7.0]);
        all_nan(
            &prepared.hvp(&x, &[0.0, 1.0, 1.0]),
            &format!("{what}: recorded hvp"),
        );
        all_nan(
            &dense(&prepared.hessian(&x)),
            &format!("{what}: recorded Hessian"),
        );
        let mut rec = mixad::record(|x| $f(x), &[5.0, 6.0, 7.0]);
        all_nan(&rec.gradient(&x), &format!("{what}: recorded gradient"));
        // Forward over forward, reverse over reverse, forward over reverse.
        let ff =
            forward::second_derivative(|t| $f(&[t, Dual::constant(Dual::constant(2.0)), t]), 1.0);
        assert!(ff.is_nan(), "{what}: forward over forward {ff}");
        let rr = reverse::gradient(|y| reverse::gradient(|z| $f(z), y)[1], &x);
        all_nan(&rr, &format!("{what}: reverse over reverse"));
        let fr = forward::jvp(|y| reverse::gradient(|z| $f(z), y), &x, &[0.0, 1.0, 0.0]).1;
        all_nan(&fr, &format!("{what}: forward over reverse"));
    }};
}

#[test]
fn a_nan_value_never_comes_with_finite_derivatives() {
    assert_nan_everywhere!(zero_over_zero);
    assert_nan_everywhere!(root_of_negative);
    assert_nan_everywhere!(constant_nan);
}

/// Vector outputs: a NaN output's row of the Jacobian is NaN, in every Jacobian API; a
/// vector-Jacobian product is NaN when a NaN output has a weight.
#[test]
fn a_nan_output_has_a_nan_jacobian_row() {
    fn g<S: Scalar>(x: &[S]) -> Vec<S> {
        vec![
            x[0] * x[1],
            (x[0] - x[0]) / (x[1] - x[1]),
            S::nan() + x[1] * S::zero(),
        ]
    }
    let x = [1.0, 2.0];
    let fj = forward::jacobian(|x| g(x), &x);
    let rj = reverse::jacobian(|x| g(x), &x);
    for j in [fj, rj] {
        assert_eq!((j[(0, 0)], j[(0, 1)]), (2.0, 1.0));
        all_nan(&[j[(1, 0)], j[(1, 1)], j[(2, 0)], j[(2, 1)]], "NaN rows");
    }
    let (_, jv) = forward::jvp(|x| g(x), &x, &[1.0, 1.0]);
    assert_eq!(jv[0], 3.0);
    all_nan(&jv[1..], "jvp of NaN outputs");
    let (_, vj) = reverse::vjp(|x| g(x), &x, &[1.0, 0.0, 0.0]);
    assert_eq!(vj, vec![2.0, 1.0]);
    let (_, vj) = reverse::vjp(|x| g(x), &x, &[1.0, 1.0, 0.0]);
    all_nan(&vj, "vjp weighting a NaN output");
    let (_, pb) = reverse::pullback(|x| g(x), &x);
    assert_eq!(pb.apply(&[1.0, 0.0, 0.0]), vec![2.0, 1.0]);
    all_nan(
        &pb.apply(&[0.0, 0.0, 1.0]),
        "pullback weighting a NaN output",
    );
}

/// The nested (translated) APIs follow the same convention.
#[test]
fn nested_inner_derivatives_of_a_nan_are_nan() {
    struct ZeroOverZero;
    /// Evaluated on `(x, p)`.
    impl mixad::Function for ZeroOverZero {
        fn eval<T: mixad::Scalar>(&self, z: &[T]) -> T {
            let (x, p) = (z[0], z[1]);
            (x - x) / (p - p) + x
        }
    }
    let g = mixad::gradient(
        |x| mixad::nested::gradient(&ZeroOverZero, &x[..1], &x[1..])[0] * x[0],
        &[1.0, 2.0],
    );
    all_nan(&g, "reverse over translated forward");
    let d = forward::derivative(
        |x: Dual<f64>| mixad::nested::derivative(&ZeroOverZero, x, &[Dual::constant(2.0)]),
        1.0,
    );
    assert!(d.is_nan(), "forward over forward: {d}");
}

/// A NaN that an operation drops (`max` of NaN and a number is the number) leaves the
/// derivatives of the result alone, identically in every mode.
#[test]
fn a_nan_dropped_by_max_is_dropped_in_every_mode() {
    fn f<S: Scalar>(x: &[S]) -> S {
        let nan = (x[0] - x[0]) / (x[0] - x[0]);
        Float::max(nan, x[1] * x[1]) + x[0]
    }
    let x = [1.0, 3.0];
    assert_eq!(mixad::gradient(|x| f(x), &x), vec![1.0, 6.0]);
    assert_eq!(forward::gradient(|x| f(x), &x), vec![1.0, 6.0]);
    let h = dense(&mixad::hessian(|x| f(x), &x));
    assert_eq!(h, vec![0.0, 0.0, 0.0, 2.0]);
    assert_eq!(mixad::hvp(|x| f(x), &x, &[0.0, 1.0]), vec![0.0, 2.0]);
}

/// A NaN that does not reach the output leaves the derivatives alone.
#[test]
fn a_nan_off_the_output_path_changes_nothing() {
    fn f<S: Scalar>(x: &[S]) -> S {
        let unused = (x[0] - x[0]) / (x[1] - x[1]);
        if unused.is_nan() {
            x[0] * x[1]
        } else {
            x[0]
        }
    }
    let h = mixad::hessian(|x| f(x), &[1.0, 2.0]);
    assert_eq!(dense(&h), vec![0.0, 1.0, 1.0, 0.0]);
    assert_eq!(mixad::gradient(|x| f(x), &[1.0, 2.0]), vec![2.0, 1.0]);
    assert_eq!(forward::gradient(|x| f(x), &[1.0, 2.0]), vec![2.0, 1.0]);
}

#[test]
fn nan_in_some_outputs_of_a_recorded_jacobian() {
    fn g<S: Scalar>(x: &[S]) -> Vec<S> {
        vec![
            x[0] * x[1],
            Float::powf(x[0] - S::cst(5.0), x[1]),
            mixad::linalg::norm(&vec![x[0], Float::ln(x[1] - S::cst(9.0))]),
        ]
    }
    let x = [1.5, 2.5];
    let fj = forward::jacobian(|x| g(x), &x);
    let rj = reverse::jacobian(|x| g(x), &x);
    for j in [fj, rj] {
        assert_eq!((j[(0, 0)], j[(0, 1)]), (2.5, 1.5));
        all_nan(&[j[(1, 0)], j[(1, 1)], j[(2, 0)], j[(2, 1)]], "NaN rows");
    }
}
