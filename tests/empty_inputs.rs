//! Functions of no inputs (an empty `x`) in every API: the value is `f()`, evaluated (a
//! function of no inputs still has a value); the derivatives are empty (an empty gradient
//! or product, a `0 × 0` Hessian, an empty sparse pattern); and prepared objects work at the
//! empty point, again and again.

mod common;

use common::k;
use faer::Mat;
use mixad::forward;
use mixad::hessian::{self, HessianOptions};
use mixad::reverse::{self, Var};
use mixad::sparse::{self, ColouringKind, SparseHessian, SparseOptions};
use num_traits::Float;

const EMPTY: &[f64] = &[];

/// `e^1.5 + Σ xᵢ³`: at the empty point, `e^1.5` (not 0, and not a plain constant output).
fn f<T: Float>(x: &[T]) -> T {
    x.iter().fold(k::<T>(1.5).exp(), |s, &v| s + v * v * v)
}

fn f0() -> f64 {
    1.5f64.exp()
}

/// Two outputs: `(2 f(x), Σ xᵢ − 1)`.
fn g<T: Float>(x: &[T]) -> Vec<T> {
    vec![f(x) * k(2.0), x.iter().fold(k(-1.0), |s, &v| s + v)]
}

fn none() -> Vec<f64> {
    Vec::new()
}

#[track_caller]
fn assert_0x0(h: &Mat<f64>) {
    assert_eq!((h.nrows(), h.ncols()), (0, 0));
}

#[track_caller]
fn assert_empty_sparse(h: &SparseHessian) {
    assert_eq!((h.dim(), h.nnz()), (0, 0));
    assert!(h.rows().is_empty() && h.cols().is_empty() && h.values().is_empty());
    assert_eq!(h.triplets().count(), 0);
    let p = h.pattern();
    assert_eq!((p.dim(), p.nnz(), p.col_ptr()), (0, 0, &[0][..]));
    assert!(!p.contains(0, 0));
    assert_0x0(&h.to_dense());
    let lower = h.to_faer_lower();
    assert_eq!(
        (lower.nrows(), lower.ncols(), lower.compute_nnz()),
        (0, 0, 0)
    );
    let full = h.to_faer();
    assert_eq!((full.nrows(), full.ncols(), full.compute_nnz()), (0, 0, 0));
}

#[test]
fn reverse_mode_apis_give_the_value_and_empty_derivatives() {
    assert_eq!(mixad::gradient(f, EMPTY), none());
    assert_eq!(mixad::value_and_gradient(f, EMPTY), (f0(), none()));
    let (y, xbar) = reverse::vjp(g, EMPTY, &[1.0, 2.0]);
    assert_eq!((y, xbar), (vec![2.0 * f0(), -1.0], none()));
    let j = reverse::jacobian(g, EMPTY);
    assert_eq!((j.nrows(), j.ncols()), (2, 0));
    let (y, pb) = reverse::pullback(g, EMPTY);
    assert_eq!(y, vec![2.0 * f0(), -1.0]);
    assert_eq!(pb.apply(&[1.0, 1.0]), none());
    let mut rec = reverse::record(f, EMPTY);
    for _ in 0..3 {
        assert_eq!(rec.value_and_gradient(EMPTY), (f0(), none()));
        assert_eq!(rec.try_value_and_gradient(EMPTY), Ok((f0(), none())));
    }
    assert_eq!(rec.rerecord_count(), 0);
}

#[test]
fn forward_mode_apis_give_the_value_and_empty_derivatives() {
    assert_eq!(forward::gradient(f, EMPTY), none());
    let j = forward::jacobian(g, EMPTY);
    assert_eq!((j.nrows(), j.ncols()), (2, 0));
    let (y, jv) = forward::jvp(g, EMPTY, EMPTY);
    assert_eq!((y, jv), (vec![2.0 * f0(), -1.0], vec![0.0, 0.0]));
}

#[test]
fn hessian_vector_products_are_empty() {
    assert_eq!(mixad::hvp(f, EMPTY, EMPTY), none());
    assert_eq!(
        mixad::value_gradient_hvp(f, EMPTY, EMPTY),
        (f0(), none(), none())
    );
}

#[test]
fn dense_hessians_are_0x0() {
    assert_0x0(&mixad::hessian(f, EMPTY));
    let (v, grad, h) = mixad::value_gradient_hessian(f, EMPTY);
    assert_eq!((v, grad), (f0(), none()));
    assert_0x0(&h);
}

#[test]
fn a_prepared_hessian_works_at_the_empty_point_repeatedly() {
    let options = [
        HessianOptions::default(),
        HessianOptions {
            chunk: Some(1),
            threads: Some(1),
        },
        HessianOptions {
            chunk: Some(16),
            threads: Some(2),
        },
    ];
    for options in options {
        let mut p = hessian::prepare(f, EMPTY, options);
        for _ in 0..3 {
            let (v, grad, h) = p.value_gradient_hessian(EMPTY);
            assert_eq!((v, grad), (f0(), none()));
            assert_0x0(&h);
            assert_0x0(&p.hessian(EMPTY));
            assert_eq!(p.hvp(EMPTY, EMPTY), none());
            assert_eq!(p.value_gradient_hvp(EMPTY, EMPTY), (f0(), none(), none()));
            assert_eq!(p.value_gradient_hessian_into(EMPTY, &mut [], &mut []), f0());
            assert_eq!(
                p.value_gradient_hvp_into(EMPTY, EMPTY, &mut [], &mut []),
                f0()
            );
            assert_eq!(p.value_gradient_into(EMPTY, &mut []), f0());
        }
        assert_eq!(p.rerecord_count(), 0);
    }
}

#[test]
#[should_panic(expected = "hessian: recorded with 0 inputs, called with 1")]
fn a_hessian_prepared_at_the_empty_point_rejects_a_longer_point() {
    hessian::prepare(f, EMPTY, HessianOptions::default()).hessian(&[1.0]);
}

#[test]
fn sparse_hessians_are_empty() {
    assert_empty_sparse(&mixad::sparse_hessian(f, EMPTY));
}

#[test]
fn a_prepared_sparse_hessian_works_at_the_empty_point_repeatedly() {
    let options = [
        SparseOptions::default(),
        SparseOptions {
            colouring: ColouringKind::Acyclic,
            ..Default::default()
        },
        SparseOptions {
            lanes: Some(16),
            threads: Some(2),
            ..Default::default()
        },
    ];
    for options in options {
        let mut plan = sparse::prepare(f, EMPTY, options);
        assert_eq!((plan.colour_count(), plan.sweep_count()), (0, 0));
        assert_eq!((plan.pattern().dim(), plan.pattern().nnz()), (0, 0));
        for _ in 0..3 {
            let (v, grad, h) = plan.value_gradient_hessian(EMPTY);
            assert_eq!((v, grad), (f0(), none()));
            assert_empty_sparse(&h);
            assert_empty_sparse(&plan.hessian(EMPTY));
            let mut values = vec![1.0; 3];
            let v = plan.value_gradient_hessian_into(EMPTY, &mut [], &mut values);
            assert_eq!((v, values), (f0(), none()));
        }
        assert_eq!((plan.detection_count(), plan.rerecord_count()), (1, 0));
    }
}

#[test]
#[should_panic(expected = "sparse_hessian: recorded with 0 inputs, called with 2")]
fn a_sparse_hessian_prepared_at_the_empty_point_rejects_a_longer_point() {
    sparse::prepare(f, EMPTY, Default::default()).hessian(&[1.0, 2.0]);
}

#[test]
fn lagrangian_hessians_of_no_variables_are_empty() {
    assert_empty_sparse(&sparse::lagrangian_hessian(f, g, EMPTY, 2.0, &[1.0, -3.0]));
    assert_empty_sparse(&sparse::lagrangian_hessian(
        f,
        |_: &[Var<f64>]| Vec::new(),
        EMPTY,
        1.0,
        &[],
    ));
    let mut plan = sparse::prepare_lagrangian(f, g, EMPTY, 2, Default::default());
    assert_eq!((plan.colour_count(), plan.pattern().nnz()), (0, 0));
    for (sigma, lambda) in [(1.0, [1.0, 1.0]), (0.5, [-2.0, 3.0]), (0.0, [0.0, 0.0])] {
        assert_empty_sparse(&plan.hessian(EMPTY, sigma, &lambda));
        let mut values = vec![1.0; 2];
        plan.values_into(EMPTY, sigma, &lambda, &mut values);
        assert_eq!(values, none());
    }
}
