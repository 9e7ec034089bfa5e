//! Functions of no inputs (an empty `x`) in every API: the value is `f()`, evaluated (a
//! function of no inputs still has a value); the derivatives are empty (an empty gradient
//! or product, a `0 × 0` Hessian, an empty sparse pattern); and a `mixad::Recording` works
//! at the empty point, again and again, through every operator.

use crate::common::k;
use faer::Mat;
use mixad::forward;
use mixad::reverse::{self, Var};
use mixad::sparse::{self, ColouringKind, SparseHessian};
use mixad::{Options, Parallelism};
use num_traits::Float;
use std::num::NonZeroUsize;

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
    let mut rec = mixad::record(f, EMPTY);
    assert_eq!((rec.input_count(), rec.output_count()), (0, 1));
    for _ in 0..3 {
        assert_eq!(rec.value_and_gradient(EMPTY), (f0(), none()));
        assert_eq!(rec.try_value_and_gradient(EMPTY), Ok((f0(), none())));
        assert_eq!(rec.value(EMPTY), f0());
        assert_eq!(rec.value_and_gradient_into(EMPTY, &mut []), f0());
    }
    assert_eq!(rec.rerecord_count(), 0);
}

#[test]
fn a_vector_recording_works_at_the_empty_point_repeatedly() {
    let mut rec = mixad::record(g, EMPTY);
    assert_eq!((rec.input_count(), rec.output_count()), (0, 2));
    let y = vec![2.0 * f0(), -1.0];
    for _ in 0..3 {
        assert_eq!(rec.values(EMPTY), y);
        let (values, j) = rec.values_and_jacobian(EMPTY);
        assert_eq!(values, y);
        assert_eq!((j.nrows(), j.ncols()), (2, 0));
        let j = rec.jacobian(EMPTY);
        assert_eq!((j.nrows(), j.ncols()), (2, 0));
        assert_eq!(rec.vjp(EMPTY, &[1.0, 2.0]), none());
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
fn a_recorded_hessian_works_at_the_empty_point_repeatedly() {
    let options = [
        Options::default(),
        Options {
            lanes: Some(1),
            parallelism: Parallelism::Serial,
            ..Options::default()
        },
        Options {
            lanes: Some(16),
            parallelism: Parallelism::Threads(NonZeroUsize::new(2).unwrap()),
            ..Options::default()
        },
    ];
    for options in options {
        let mut p = mixad::record_with(f, EMPTY, options);
        for _ in 0..3 {
            let (v, grad, h) = p.value_gradient_hessian(EMPTY);
            assert_eq!((v, grad), (f0(), none()));
            assert_0x0(&h);
            assert_0x0(&p.hessian(EMPTY));
            assert_eq!(p.hvp(EMPTY, EMPTY), none());
            assert_eq!(p.value_gradient_hvp(EMPTY, EMPTY), (f0(), none(), none()));
            let mut h = Mat::zeros(0, 0);
            assert_eq!(
                p.value_gradient_hessian_into(EMPTY, &mut [], h.as_mut()),
                f0()
            );
            assert_eq!(
                p.value_gradient_hvp_into(EMPTY, EMPTY, &mut [], &mut []),
                f0()
            );
            assert_eq!(p.value_and_gradient_into(EMPTY, &mut []), f0());
        }
        assert_eq!(p.rerecord_count(), 0);
    }
}

#[test]
#[should_panic(expected = "hessian: the function was recorded with 0 inputs, called with 1")]
fn a_hessian_recorded_at_the_empty_point_rejects_a_longer_point() {
    mixad::record(f, EMPTY).hessian(&[1.0]);
}

#[test]
fn sparse_hessians_are_empty() {
    assert_empty_sparse(&mixad::sparse_hessian(f, EMPTY));
}

/// A sparse Hessian buffer holding stale entries (2 of them), to be overwritten.
fn stale_sparse() -> SparseHessian {
    let h = mixad::sparse_hessian(|x| x[0] * x[1] + x[0] * x[0], &[1.0, 2.0]);
    assert_eq!(h.nnz(), 2);
    h
}

#[test]
fn a_recorded_sparse_hessian_works_at_the_empty_point_repeatedly() {
    let options = [
        Options::default(),
        Options {
            colouring: ColouringKind::Acyclic,
            ..Default::default()
        },
        Options {
            lanes: Some(16),
            parallelism: Parallelism::Threads(NonZeroUsize::new(2).unwrap()),
            ..Default::default()
        },
    ];
    for options in options {
        let mut plan = mixad::record_with(f, EMPTY, options);
        // (The sweep count is no longer observable: with no colours there are no sweeps.)
        assert_eq!(plan.colour_count(), 0);
        let pattern = plan.sparsity_pattern();
        assert_eq!((pattern.dim(), pattern.nnz()), (0, 0));
        for _ in 0..3 {
            let (v, grad, h) = plan.value_gradient_sparse_hessian(EMPTY);
            assert_eq!((v, grad), (f0(), none()));
            assert_empty_sparse(&h);
            assert_empty_sparse(&plan.sparse_hessian(EMPTY));
            let mut h = stale_sparse();
            let v = plan.value_gradient_sparse_hessian_into(EMPTY, &mut [], &mut h);
            assert_eq!(v, f0());
            assert_empty_sparse(&h);
        }
        assert_eq!((plan.detection_count(), plan.rerecord_count()), (1, 0));
    }
}

#[test]
#[should_panic(expected = "sparse_hessian: the function was recorded with 0 inputs, called with 2")]
fn a_sparse_hessian_recorded_at_the_empty_point_rejects_a_longer_point() {
    mixad::record(f, EMPTY).sparse_hessian(&[1.0, 2.0]);
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
    let mut plan = mixad::record_lagrangian(f, g, EMPTY, Default::default());
    assert_eq!((plan.colour_count(), plan.sparsity_pattern().nnz()), (0, 0));
    for (sigma, lambda) in [(1.0, [1.0, 1.0]), (0.5, [-2.0, 3.0]), (0.0, [0.0, 0.0])] {
        assert_empty_sparse(&plan.lagrangian_hessian(EMPTY, sigma, &lambda));
        let mut h = stale_sparse();
        let value = plan.lagrangian_hessian_into(EMPTY, sigma, &lambda, &mut h);
        assert_empty_sparse(&h);
        let want = sigma * f0() + lambda[0] * (2.0 * f0()) - lambda[1];
        assert!(
            (value - want).abs() <= 1e-14 * want.abs().max(1.0),
            "{value} vs {want}"
        );
    }
}
