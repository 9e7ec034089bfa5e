//! Tests `src/recording.rs`. Its guards: `guards.rs`, `decisions.rs`.
//!
//! `mixad::Recording`: one recording serving every operator. Gradient, HVP, dense and
//! sparse Hessians from one recording equal the one-shot functions at points other than
//! the one recorded; a vector recording's Jacobian and VJP equal `mixad::reverse`'s; a
//! Lagrangian recording equals the dense Hessians of `f` and each constraint combined by
//! hand; a branch flip is seen by every operator (each returns the fresh result, the
//! recording is made again once); and a buffer of the wrong length panics at once, naming
//! the buffer.
//!
//! Also: a variable memoised by the function across re-recordings is refused; a vector
//! recording of no inputs.

mod decisions;
mod guards;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::common::empty::{f0, g, none, EMPTY};
use crate::common::{k, panic_message, panic_text, quiet_panics, random_vec, rosenbrock};
use faer::Mat;
use mixad::reverse::{self, Var};
use mixad::{Recording, SparseHessian};
use num_traits::Float;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const TOL: f64 = 1e-14;

#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= TOL * (1.0 + want.abs()),
        "{what}: got {got:e}, want {want:e}"
    );
}

#[track_caller]
fn close_vec(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        close(g, w, &format!("{what}[{i}]"));
    }
}

#[track_caller]
fn close_mat(got: &Mat<f64>, want: &Mat<f64>, what: &str) {
    assert_eq!(
        (got.nrows(), got.ncols()),
        (want.nrows(), want.ncols()),
        "{what}: shape"
    );
    for j in 0..want.ncols() {
        for i in 0..want.nrows() {
            close(got[(i, j)], want[(i, j)], &format!("{what} ({i}, {j})"));
        }
    }
}

/// Same pattern (exactly) and values within `TOL`.
#[track_caller]
fn close_sparse(got: &SparseHessian, want: &SparseHessian, what: &str) {
    assert_eq!(got.dim(), want.dim(), "{what}: dimension");
    assert_eq!(
        (got.rows(), got.cols()),
        (want.rows(), want.cols()),
        "{what}: pattern"
    );
    close_vec(got.values(), want.values(), what);
}

/// Extended Rosenbrock plus `Σ sin(xᵢ·xᵢ₊₂)`: a banded Hessian (bandwidth 2).
fn banded<T: Float>(x: &[T]) -> T {
    x.windows(3)
        .fold(rosenbrock(x), |s, w| s + (w[0] * w[2]).sin())
}

/// Three outputs of four inputs.
fn vector<T: Float>(x: &[T]) -> Vec<T> {
    vec![
        x[0] * x[1] + x[2].sin(),
        x[1].exp() * x[3],
        x[0] * x[0] - x[3] * x[2].cos(),
    ]
}

// ---------------------------------------------------------------------------------------
// One recording, every operator
// ---------------------------------------------------------------------------------------

#[test]
fn one_recording_serves_gradient_hvp_dense_and_sparse_hessians_at_several_points() {
    let n = 7;
    let mut rec = mixad::record(banded, &random_vec(1, n));
    assert_eq!((rec.input_count(), rec.output_count()), (n, 1));
    assert!(!rec.is_empty());
    // Buffers for the `_into` forms, reused at every point.
    let (mut grad, mut hv) = (vec![0.0; n], vec![0.0; n]);
    let mut dense = Mat::zeros(n, n);
    let mut sparse = SparseHessian::default();
    for s in 0..4u64 {
        let x = random_vec(10 + s, n);
        let v = random_vec(20 + s, n);
        let (y, g) = mixad::value_and_gradient(banded, &x);
        let want_hv = mixad::hvp(banded, &x, &v);
        let want_h = mixad::hessian(banded, &x);
        let want_s = mixad::sparse_hessian(banded, &x);
        // The operators in a different order at each point: no operator relies on
        // another having run first.
        for op in 0..5 {
            match (op + s as usize) % 5 {
                0 => {
                    close(rec.value(&x), y, "value");
                    let (ry, rg) = rec.value_and_gradient(&x);
                    close(ry, y, "value_and_gradient");
                    close_vec(&rg, &g, "gradient");
                    close_vec(&rec.gradient(&x), &g, "gradient");
                    close(rec.value_and_gradient_into(&x, &mut grad), y, "_into value");
                    close_vec(&grad, &g, "value_and_gradient_into");
                }
                1 => {
                    close_vec(&rec.hvp(&x, &v), &want_hv, "hvp");
                    let (ry, rg, rhv) = rec.value_gradient_hvp(&x, &v);
                    close(ry, y, "value_gradient_hvp value");
                    close_vec(&rg, &g, "value_gradient_hvp gradient");
                    close_vec(&rhv, &want_hv, "value_gradient_hvp");
                    let ry = rec.value_gradient_hvp_into(&x, &v, &mut grad, &mut hv);
                    close(ry, y, "value_gradient_hvp_into value");
                    close_vec(&grad, &g, "value_gradient_hvp_into gradient");
                    close_vec(&hv, &want_hv, "value_gradient_hvp_into");
                }
                2 => {
                    close_mat(&rec.hessian(&x), &want_h, "hessian");
                    let (ry, rg, rh) = rec.value_gradient_hessian(&x);
                    close(ry, y, "value_gradient_hessian value");
                    close_vec(&rg, &g, "value_gradient_hessian gradient");
                    close_mat(&rh, &want_h, "value_gradient_hessian");
                    let ry = rec.value_gradient_hessian_into(&x, &mut grad, dense.as_mut());
                    close(ry, y, "value_gradient_hessian_into value");
                    close_vec(&grad, &g, "value_gradient_hessian_into gradient");
                    close_mat(&dense, &want_h, "value_gradient_hessian_into");
                }
                3 => {
                    close_sparse(&rec.sparse_hessian(&x), &want_s, "sparse_hessian");
                    let (ry, rg, rs) = rec.value_gradient_sparse_hessian(&x);
                    close(ry, y, "value_gradient_sparse_hessian value");
                    close_vec(&rg, &g, "value_gradient_sparse_hessian gradient");
                    close_sparse(&rs, &want_s, "value_gradient_sparse_hessian");
                    let ry = rec.value_gradient_sparse_hessian_into(&x, &mut grad, &mut sparse);
                    close(ry, y, "value_gradient_sparse_hessian_into value");
                    close_vec(&grad, &g, "value_gradient_sparse_hessian_into gradient");
                    close_sparse(&sparse, &want_s, "value_gradient_sparse_hessian_into");
                    // The sparse Hessian is the dense one's lower triangle.
                    close_mat(&sparse.to_dense(), &want_h, "sparse vs dense");
                }
                _ => {
                    // Both Hessians from the same recording agree with each other.
                    let h = rec.hessian(&x);
                    close_mat(&rec.sparse_hessian(&x).to_dense(), &h, "sparse vs dense");
                    let hv_from_h: Vec<f64> = (0..n)
                        .map(|i| (0..n).map(|j| h[(i, j)] * v[j]).sum())
                        .collect();
                    let got = rec.hvp(&x, &v);
                    for (a, b) in got.iter().zip(&hv_from_h) {
                        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "H·v: {a} vs {b}");
                    }
                }
            }
        }
    }
    // Banded with bandwidth 2: the diagonal and two sub-diagonals.
    assert_eq!(rec.sparsity_pattern().nnz(), n + (n - 1) + (n - 2));
    assert_eq!(rec.rerecord_count(), 0, "no branch: never recorded again");
    assert_eq!(rec.detection_count(), 1, "the pattern is detected once");
    assert_eq!(rec.guard_count(), 0);
}

#[test]
fn a_vector_recordings_jacobian_and_vjp_equal_reverse_modes() {
    let mut rec = mixad::record(vector, &[0.5, -0.3, 1.2, 0.8]);
    assert_eq!((rec.input_count(), rec.output_count()), (4, 3));
    for s in 0..4u64 {
        let x = random_vec(30 + s, 4);
        let want_j = reverse::jacobian(vector, &x);
        assert_eq!((want_j.nrows(), want_j.ncols()), (3, 4));
        close_mat(&mixad::jacobian(vector, &x), &want_j, "mixad::jacobian");
        close_mat(&rec.jacobian(&x), &want_j, "jacobian");
        let (values, j) = rec.values_and_jacobian(&x);
        let want_y = vector(&x);
        close_vec(&values, &want_y, "values_and_jacobian values");
        close_mat(&j, &want_j, "values_and_jacobian");
        close_vec(&rec.values(&x), &want_y, "values");
        let mut y = vec![0.0; 3];
        rec.values_into(&x, &mut y);
        close_vec(&y, &want_y, "values_into");
        let mut y = vec![0.0; 3];
        let mut j = Mat::zeros(3, 4);
        rec.values_and_jacobian_into(&x, &mut y, j.as_mut());
        close_vec(&y, &want_y, "values_and_jacobian_into values");
        close_mat(&j, &want_j, "values_and_jacobian_into");
        for t in 0..3u64 {
            let w = random_vec(40 + 3 * s + t, 3);
            let (ry, want) = reverse::vjp(vector, &x, &w);
            close_vec(&ry, &want_y, "reverse::vjp values");
            close_vec(&rec.vjp(&x, &w), &want, "vjp");
            // wᵀJ by hand, from the Jacobian.
            let by_hand: Vec<f64> = (0..4)
                .map(|c| (0..3).map(|r| w[r] * want_j[(r, c)]).sum())
                .collect();
            close_vec(&rec.vjp(&x, &w), &by_hand, "vjp vs wᵀJ");
        }
    }
    assert_eq!(rec.rerecord_count(), 0);
}

/// The objective of the Lagrangian tests.
fn objective<T: Float>(x: &[T]) -> T {
    x[0] * x[0] * x[1] + x[2].exp() + (x[1] * x[3]).sin()
}

/// The constraints: quadratic, transcendental and linear.
fn constraints<T: Float>(x: &[T]) -> Vec<T> {
    vec![
        x[0] * x[2] - k(1.0),
        x[1].sin() + x[3] * x[3],
        x[3] + x[0] * k(2.0),
        (x[0] * x[1] * x[2]).cos(),
    ]
}

#[test]
fn record_lagrangian_equals_the_dense_hessians_of_f_and_g_combined_by_hand() {
    let x0 = [0.7, -1.3, 0.4, 2.0];
    let mut rec = mixad::record_lagrangian(objective, constraints, &x0, Default::default());
    assert_eq!((rec.input_count(), rec.output_count()), (4, 5));
    let mut into = SparseHessian::default();
    for s in 0..3u64 {
        let x = random_vec(50 + s, 4);
        let hf = mixad::hessian(objective, &x);
        let hg: Vec<Mat<f64>> = (0..4)
            .map(|i| mixad::hessian(|z| constraints(z)[i], &x))
            .collect();
        let (f, g) = (objective(&x), constraints(&x));
        let mut values = vec![f];
        values.extend(&g);
        close_vec(&rec.values(&x), &values, "values: f, then g");
        for (sigma, lambda) in [
            (1.0, [2.0, -0.5, 3.0, 0.25]),
            (0.0, [1.0, 1.0, 1.0, 1.0]),
            (2.5, [0.0, 4.0, -1.0, 0.0]),
        ] {
            let mut want = Mat::zeros(4, 4);
            for j in 0..4 {
                for i in 0..4 {
                    want[(i, j)] =
                        sigma * hf[(i, j)] + (0..4).map(|c| lambda[c] * hg[c][(i, j)]).sum::<f64>();
                }
            }
            let what = format!("σ = {sigma}, λ = {lambda:?} at {x:?}");
            let h = rec.lagrangian_hessian(&x, sigma, &lambda);
            close_mat(&h.to_dense(), &want, &what);
            let value = rec.lagrangian_hessian_into(&x, sigma, &lambda, &mut into);
            close_sparse(&into, &h, &what);
            let want_value = sigma * f + (0..4).map(|c| lambda[c] * g[c]).sum::<f64>();
            close(value, want_value, &format!("{what}: value"));
            // The one-shot function agrees.
            let one_shot =
                mixad::sparse::lagrangian_hessian(objective, constraints, &x, sigma, &lambda);
            close_sparse(&one_shot, &h, &format!("{what}: one-shot"));
        }
    }
    assert_eq!((rec.rerecord_count(), rec.detection_count()), (0, 1));
}

#[test]
#[should_panic(expected = "returned 3 outputs when recorded again, 2 when first recorded")]
fn a_constraint_count_that_changes_at_a_re_recording_panics() {
    let f = |x: &[Var<f64>]| x[0] * x[1];
    let g = |x: &[Var<f64>]| {
        if x[0] > Var::constant(0.0) {
            vec![x[0] * x[0]]
        } else {
            vec![x[0] * x[0], x[1] * x[1]]
        }
    };
    let mut rec = mixad::record_lagrangian(f, g, &[1.0, 1.0], Default::default());
    rec.lagrangian_hessian(&[1.0, 2.0], 1.0, &[1.0]);
    rec.lagrangian_hessian(&[-1.0, 2.0], 1.0, &[1.0]);
}

// ---------------------------------------------------------------------------------------
// A branch flip, through every operator
// ---------------------------------------------------------------------------------------

/// `x₀x₁ + x₂² + sin x₁` where `x₀ > 0`, else `x₀²x₁ + x₁x₂`: the branches differ in value,
/// gradient, Hessian and sparsity pattern.
fn branchy<T: Float>(x: &[T]) -> T {
    if x[0] > T::zero() {
        x[0] * x[1] + x[2] * x[2] + x[1].sin()
    } else {
        x[0] * x[0] * x[1] + x[1] * x[2]
    }
}

/// Two outputs whose formulas change with the sign of `x₀`.
fn branchy_vector<T: Float>(x: &[T]) -> Vec<T> {
    if x[0] > T::zero() {
        vec![x[0] * x[1] * x[2], x[2] * x[2]]
    } else {
        vec![x[0] * x[0], x[1] * x[2].sin()]
    }
}

/// Recorded on the positive branch, evaluated on the negative one.
const P: [f64; 3] = [1.0, 2.0, 3.0];
const P2: [f64; 3] = [0.5, -1.0, 2.0];
const Q: [f64; 3] = [-1.5, 0.5, -2.0];
const V: [f64; 3] = [0.3, -1.0, 2.0];

fn recorded() -> Recording<impl FnMut(&[Var<f64>]) -> Var<f64>> {
    mixad::record(branchy, &P)
}

/// Runs `op` at a second point of the recorded branch (state warm, nothing re-recorded),
/// then across the flip (fresh result, one re-recording), then again there (no new one).
fn across_the_flip<F, R>(
    name: &str,
    rec: &mut Recording<F>,
    mut op: impl FnMut(&mut Recording<F>, &[f64]) -> R,
    fresh: impl Fn(&[f64]) -> R,
    same: impl Fn(&R, &R, &str),
) where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    let before = op(rec, &P2);
    same(
        &before,
        &fresh(&P2),
        &format!("{name} on the recorded branch"),
    );
    assert_eq!(rec.rerecord_count(), 0, "{name}: replayed");
    let after = op(rec, &Q);
    same(&after, &fresh(&Q), &format!("{name} across the flip"));
    assert_eq!(rec.rerecord_count(), 1, "{name}: recorded again once");
    let again = op(rec, &Q);
    same(&again, &fresh(&Q), &format!("{name} again"));
    assert_eq!(
        rec.rerecord_count(),
        1,
        "{name}: the new recording replayed"
    );
}

fn same_f64(a: &f64, b: &f64, what: &str) {
    close(*a, *b, what);
}

#[allow(clippy::ptr_arg)] // the operators return `Vec`, the comparator takes it as is
fn same_vec(a: &Vec<f64>, b: &Vec<f64>, what: &str) {
    close_vec(a, b, what);
}

fn same_mat(a: &Mat<f64>, b: &Mat<f64>, what: &str) {
    close_mat(a, b, what);
}

fn same_sparse(a: &SparseHessian, b: &SparseHessian, what: &str) {
    close_sparse(a, b, what);
}

#[test]
fn a_branch_flip_is_seen_by_every_scalar_operator() {
    // The test points separate the branches.
    let (pos, neg) = (
        mixad::sparse_hessian(branchy, &P2),
        mixad::sparse_hessian(branchy, &Q),
    );
    assert_ne!(
        pos.triplets().map(|(r, c, _)| (r, c)).collect::<Vec<_>>(),
        neg.triplets().map(|(r, c, _)| (r, c)).collect::<Vec<_>>()
    );
    assert_ne!(
        mixad::gradient(branchy, &Q),
        reverse::gradient(|x: &[Var<f64>]| x[0] * x[1] + x[2] * x[2] + x[1].sin(), &Q)
    );

    across_the_flip(
        "value",
        &mut recorded(),
        |r, x| r.value(x),
        branchy,
        same_f64,
    );
    across_the_flip(
        "gradient",
        &mut recorded(),
        |r, x| r.gradient(x),
        |x| mixad::gradient(branchy, x),
        same_vec,
    );
    across_the_flip(
        "value_and_gradient_into",
        &mut recorded(),
        |r, x| {
            let mut g = vec![f64::NAN; 3];
            let y = r.value_and_gradient_into(x, &mut g);
            g.push(y);
            g
        },
        |x| {
            let (y, mut g) = mixad::value_and_gradient(branchy, x);
            g.push(y);
            g
        },
        same_vec,
    );
    across_the_flip(
        "hvp",
        &mut recorded(),
        |r, x| r.hvp(x, &V),
        |x| mixad::hvp(branchy, x, &V),
        same_vec,
    );
    across_the_flip(
        "value_gradient_hvp_into",
        &mut recorded(),
        |r, x| {
            let (mut g, mut hv) = (vec![f64::NAN; 3], vec![f64::NAN; 3]);
            let y = r.value_gradient_hvp_into(x, &V, &mut g, &mut hv);
            g.extend(hv);
            g.push(y);
            g
        },
        |x| {
            let (y, mut g, hv) = mixad::value_gradient_hvp(branchy, x, &V);
            g.extend(hv);
            g.push(y);
            g
        },
        same_vec,
    );
    across_the_flip(
        "hessian",
        &mut recorded(),
        |r, x| r.hessian(x),
        |x| mixad::hessian(branchy, x),
        same_mat,
    );
    across_the_flip(
        "value_gradient_hessian_into",
        &mut recorded(),
        |r, x| {
            let (mut g, mut h) = (vec![f64::NAN; 3], Mat::from_fn(3, 3, |_, _| f64::NAN));
            let y = r.value_gradient_hessian_into(x, &mut g, h.as_mut());
            (y, g, h)
        },
        |x| mixad::value_gradient_hessian(branchy, x),
        |a, b, what| {
            close(a.0, b.0, what);
            close_vec(&a.1, &b.1, what);
            close_mat(&a.2, &b.2, what);
        },
    );
    let mut rec = recorded();
    across_the_flip(
        "sparse_hessian",
        &mut rec,
        |r, x| r.sparse_hessian(x),
        |x| mixad::sparse_hessian(branchy, x),
        same_sparse,
    );
    assert_eq!(
        rec.detection_count(),
        2,
        "the pattern is detected again after the flip"
    );
    let mut rec = recorded();
    let mut buffer = SparseHessian::default();
    across_the_flip(
        "value_gradient_sparse_hessian_into",
        &mut rec,
        |r, x| {
            let mut g = vec![f64::NAN; 3];
            let y = r.value_gradient_sparse_hessian_into(x, &mut g, &mut buffer);
            (y, g, buffer.clone())
        },
        |x| {
            let (y, g) = mixad::value_and_gradient(branchy, x);
            (y, g, mixad::sparse_hessian(branchy, x))
        },
        |a, b, what| {
            close(a.0, b.0, what);
            close_vec(&a.1, &b.1, what);
            close_sparse(&a.2, &b.2, what);
        },
    );
    assert_eq!(rec.detection_count(), 2);

    // The refusing gradient refuses and records nothing.
    let mut rec = recorded();
    assert!(rec.try_value_and_gradient(&Q).is_err());
    assert!(rec.try_value_and_gradient(&P2).is_ok());
    assert_eq!(rec.rerecord_count(), 0);
}

#[test]
fn after_a_flip_every_operator_uses_the_one_new_recording() {
    // The first operator at the new point records again; all the others replay that.
    let mut rec = recorded();
    close_mat(
        &rec.hessian(&P2),
        &mixad::hessian(branchy, &P2),
        "dense, warm",
    );
    close_sparse(
        &rec.sparse_hessian(&P2),
        &mixad::sparse_hessian(branchy, &P2),
        "sparse, warm",
    );
    assert_eq!(rec.rerecord_count(), 0);
    close_vec(&rec.hvp(&Q, &V), &mixad::hvp(branchy, &Q, &V), "hvp");
    assert_eq!(rec.rerecord_count(), 1);
    close_vec(&rec.gradient(&Q), &mixad::gradient(branchy, &Q), "gradient");
    close_mat(&rec.hessian(&Q), &mixad::hessian(branchy, &Q), "dense");
    close_sparse(
        &rec.sparse_hessian(&Q),
        &mixad::sparse_hessian(branchy, &Q),
        "sparse",
    );
    close(rec.value(&Q), branchy(&Q), "value");
    assert_eq!(rec.rerecord_count(), 1);
    assert_eq!(rec.detection_count(), 2);
    // And back.
    close_sparse(
        &rec.sparse_hessian(&P),
        &mixad::sparse_hessian(branchy, &P),
        "sparse, back",
    );
    close_mat(
        &rec.hessian(&P),
        &mixad::hessian(branchy, &P),
        "dense, back",
    );
    assert_eq!((rec.rerecord_count(), rec.detection_count()), (2, 3));
}

#[test]
fn a_branch_flip_is_seen_by_every_vector_operator() {
    let w = [0.7, -1.1];
    let (sigma, lambda) = (0.5, [2.0, -3.0]);
    let lagrangian_by_hand = |x: &[f64]| {
        let hf = mixad::hessian(branchy, x);
        let hg: Vec<Mat<f64>> = (0..2)
            .map(|i| mixad::hessian(|z| branchy_vector(z)[i], x))
            .collect();
        Mat::from_fn(3, 3, |r, c| {
            sigma * hf[(r, c)] + lambda[0] * hg[0][(r, c)] + lambda[1] * hg[1][(r, c)]
        })
    };
    // values
    let mut rec = mixad::record(branchy_vector, &P);
    for (x, count) in [(P2, 0), (Q, 1), (Q, 1)] {
        close_vec(&rec.values(&x), &branchy_vector(&x), "values");
        assert_eq!(rec.rerecord_count(), count, "values at {x:?}");
    }
    // jacobian
    let mut rec = mixad::record(branchy_vector, &P);
    for (x, count) in [(P2, 0), (Q, 1), (Q, 1)] {
        close_mat(
            &rec.jacobian(&x),
            &reverse::jacobian(branchy_vector, &x),
            "jacobian",
        );
        assert_eq!(rec.rerecord_count(), count, "jacobian at {x:?}");
    }
    // values_and_jacobian_into
    let mut rec = mixad::record(branchy_vector, &P);
    for (x, count) in [(P2, 0), (Q, 1), (Q, 1)] {
        let (mut y, mut j) = (vec![f64::NAN; 2], Mat::from_fn(2, 3, |_, _| f64::NAN));
        rec.values_and_jacobian_into(&x, &mut y, j.as_mut());
        close_vec(&y, &branchy_vector(&x), "values_and_jacobian_into values");
        close_mat(
            &j,
            &reverse::jacobian(branchy_vector, &x),
            "values_and_jacobian_into",
        );
        assert_eq!(
            rec.rerecord_count(),
            count,
            "values_and_jacobian_into at {x:?}"
        );
    }
    // vjp
    let mut rec = mixad::record(branchy_vector, &P);
    for (x, count) in [(P2, 0), (Q, 1), (Q, 1)] {
        close_vec(
            &rec.vjp(&x, &w),
            &reverse::vjp(branchy_vector, &x, &w).1,
            "vjp",
        );
        assert_eq!(rec.rerecord_count(), count, "vjp at {x:?}");
    }
    // lagrangian_hessian
    let mut rec = mixad::record_lagrangian(branchy, branchy_vector, &P, Default::default());
    for (x, count, detections) in [(P2, 0, 1), (Q, 1, 2), (Q, 1, 2)] {
        let h = rec.lagrangian_hessian(&x, sigma, &lambda);
        close_mat(&h.to_dense(), &lagrangian_by_hand(&x), "lagrangian_hessian");
        assert_eq!(
            (rec.rerecord_count(), rec.detection_count()),
            (count, detections),
            "lagrangian_hessian at {x:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Buffers of the wrong length
// ---------------------------------------------------------------------------------------

#[track_caller]
fn assert_says(got: String, want: &str) {
    assert!(got.contains(want), "{got:?} does not say {want:?}");
}

#[test]
fn a_buffer_of_the_wrong_length_panics_at_once_naming_it() {
    // Every call is at a point across the flip: a check made after the replay would have
    // recorded the function again (and called it). Nothing is.
    let calls = Cell::new(0);
    let f = |x: &[Var<f64>]| {
        calls.set(calls.get() + 1);
        branchy(x)
    };
    let mut rec = mixad::record(f, &P);
    assert_says(
        panic_message(|| {
            rec.value_and_gradient_into(&Q, &mut [0.0; 2]);
        }),
        "gradient: the gradient buffer has 2 entries, expected 3",
    );
    assert_says(
        panic_message(|| {
            rec.value_gradient_hvp_into(&Q, &V, &mut [0.0; 4], &mut [0.0; 3]);
        }),
        "hvp: the gradient buffer has 4 entries, expected 3",
    );
    assert_says(
        panic_message(|| {
            rec.value_gradient_hvp_into(&Q, &V, &mut [0.0; 3], &mut [0.0; 2]);
        }),
        "hvp: the product buffer has 2 entries, expected 3",
    );
    assert_says(
        panic_message(|| {
            rec.value_gradient_hessian_into(&Q, &mut [], Mat::zeros(3, 3).as_mut());
        }),
        "hessian: the gradient buffer has 0 entries, expected 3",
    );
    assert_says(
        panic_message(|| {
            rec.value_gradient_hessian_into(&Q, &mut [0.0; 3], Mat::zeros(3, 2).as_mut());
        }),
        "hessian: the Hessian buffer is 3 × 2, expected 3 × 3",
    );
    assert_says(
        panic_message(|| {
            let mut h = SparseHessian::default();
            rec.value_gradient_sparse_hessian_into(&Q, &mut [0.0; 2], &mut h);
        }),
        "sparse_hessian: the gradient buffer has 2 entries, expected 3",
    );
    assert_eq!(
        (rec.rerecord_count(), calls.get()),
        (0, 1),
        "checked before any replay"
    );
    // The recording is intact: at the flipped point it records again, once.
    close_vec(&rec.gradient(&Q), &mixad::gradient(branchy, &Q), "after");
    assert_eq!((rec.rerecord_count(), calls.get()), (1, 2));

    // A vector recording's buffers.
    let calls = Cell::new(0);
    let g = |x: &[Var<f64>]| {
        calls.set(calls.get() + 1);
        branchy_vector(x)
    };
    let mut rec = mixad::record(g, &P);
    assert_says(
        panic_message(|| rec.values_into(&Q, &mut [0.0; 3])),
        "values: the output buffer has 3 entries, expected 2",
    );
    assert_says(
        panic_message(|| {
            rec.values_and_jacobian_into(&Q, &mut [0.0; 1], Mat::zeros(2, 3).as_mut())
        }),
        "jacobian: the output buffer has 1 entries, expected 2",
    );
    assert_says(
        panic_message(|| {
            rec.values_and_jacobian_into(&Q, &mut [0.0; 2], Mat::zeros(3, 2).as_mut())
        }),
        "jacobian: the Jacobian buffer is 3 × 2, expected 2 × 3",
    );
    assert_says(
        panic_message(|| {
            rec.vjp(&Q, &[1.0, 2.0, 3.0]);
        }),
        "vjp: the cotangent buffer has 3 entries, expected 2",
    );
    assert_eq!(
        (rec.rerecord_count(), calls.get()),
        (0, 1),
        "checked before any replay"
    );
}

#[test]
#[should_panic(expected = "gradient: the function was recorded with 3 inputs, called with 2")]
fn a_point_of_the_wrong_length_panics() {
    recorded().gradient(&[1.0, 2.0]);
}

// ---------------------------------------------------------------------------------------
// A variable memoised by the closure across re-recordings.
// ---------------------------------------------------------------------------------------

#[test]
fn a_variable_memoised_across_re_recordings_is_refused() {
    let kept: Cell<Option<Var<f64>>> = Cell::new(None);
    let f = |x: &[Var<f64>]| {
        let c = kept.get().unwrap_or_else(|| {
            let c = x[0] * x[0];
            kept.set(Some(c));
            c
        });
        if x[1] > Var::constant(0.0) {
            c * x[1]
        } else {
            c - x[1]
        }
    };
    let mut rec = mixad::record(f, &[1.0, 2.0]);
    // Same branch: replayed, f not called.
    assert_eq!(rec.gradient(&[3.0, 2.0]), vec![12.0, 9.0]);
    // Branch flips: f is called again and meets the stale c.
    let r = quiet_panics(|| catch_unwind(AssertUnwindSafe(|| rec.gradient(&[3.0, -2.0]))));
    let err = r.expect_err("a stale memoised variable must be refused");
    assert!(
        panic_text(&*err).contains("recording"),
        "{}",
        panic_text(&*err)
    );
}

// ---------------------------------------------------------------------------------------
// Functions of no inputs: the value, and empty derivatives
// ---------------------------------------------------------------------------------------

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
