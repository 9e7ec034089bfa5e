//! Tests `src/sparse/jacobian/`: sparse Jacobians of `F: Rⁿ → Rᵐ`.
//!
//! Every case checks, in both sweep directions and the automatic choice, the values
//! against the dense Jacobian of the same recording and against central finite
//! differences, and the pattern against the known structure (exactly, where the structure
//! is exact). Also: colour counts on banded, stencil and arrowhead structures, re-detection
//! after a branch flips, the NaN convention, empty Jacobians, conversions, and the panics
//! promised for misuse.

use crate::common::{panic_message, random_vec};
use faer::Mat;
use mixad::linalg;
use mixad::reverse::Var;
use mixad::sparse::{JacobianDirection, JacobianPattern, SparseJacobian};
use mixad::Recording;
use nalgebra::DMatrix;
use num_traits::Float;

type V = Var<f64>;
type VecRecording<F> = Recording<F, Vec<V>>;

const DIRECTIONS: [JacobianDirection; 3] = [
    JacobianDirection::Auto,
    JacobianDirection::Forward,
    JacobianDirection::Reverse,
];

fn c(v: f64) -> V {
    Var::constant(v)
}

/// Central differences of `f` at `x`, `m × n`.
fn finite_differences(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Mat<f64> {
    let m = f(x).len();
    let mut j = Mat::zeros(m, x.len());
    for k in 0..x.len() {
        let h = 1e-6 * (1.0 + x[k].abs());
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[k] += h;
        xm[k] -= h;
        let (yp, ym) = (f(&xp), f(&xm));
        for i in 0..m {
            j[(i, k)] = (yp[i] - ym[i]) / (2.0 * h);
        }
    }
    j
}

/// `got` equals `want` (NaN equals NaN) within a relative `tol`.
#[track_caller]
fn assert_near(got: f64, want: f64, tol: f64, what: &str) {
    let ok = (got.is_nan() && want.is_nan()) || (got - want).abs() <= tol * (1.0 + want.abs());
    assert!(ok, "{what}: got {got}, want {want}");
}

/// The sparse Jacobian against the dense one of the same recording: equal on the
/// pattern, zero outside it.
#[track_caller]
fn assert_matches_dense(j: &SparseJacobian, dense: &Mat<f64>, what: &str) {
    assert_eq!(
        (j.nrows(), j.ncols()),
        (dense.nrows(), dense.ncols()),
        "{what}: shape"
    );
    for i in 0..j.nrows() {
        for k in 0..j.ncols() {
            let want = dense[(i, k)];
            if j.pattern().contains(i, k) {
                assert_near(j.get(i, k), want, 1e-13, &format!("{what}: ({i}, {k})"));
            } else {
                assert_eq!(want, 0.0, "{what}: ({i}, {k}) is outside the pattern");
            }
        }
    }
}

#[track_caller]
fn assert_matches(a: &Mat<f64>, b: &Mat<f64>, tol: f64, what: &str) {
    assert_eq!(
        (a.nrows(), a.ncols()),
        (b.nrows(), b.ncols()),
        "{what}: shape"
    );
    for i in 0..a.nrows() {
        for k in 0..a.ncols() {
            assert_near(a[(i, k)], b[(i, k)], tol, &format!("{what}: ({i}, {k})"));
        }
    }
}

/// The pattern is exactly `rows` (each sorted).
#[track_caller]
fn assert_pattern(p: &JacobianPattern, rows: &[Vec<usize>], what: &str) {
    assert_eq!(p.nrows(), rows.len(), "{what}: rows");
    for (i, want) in rows.iter().enumerate() {
        assert_eq!(p.row(i), &want[..], "{what}: row {i}");
    }
}

/// Checks `F` in every direction at every point: values against the dense Jacobian and
/// finite differences, the pattern against `rows` (if given); returns the colour count of
/// each direction (`[auto, forward, reverse]`).
#[track_caller]
fn check<F>(
    f: F,
    plain: impl Fn(&[f64]) -> Vec<f64>,
    points: &[Vec<f64>],
    rows: Option<&[Vec<usize>]>,
    what: &str,
) -> [usize; 3]
where
    F: FnMut(&[V]) -> Vec<V> + Clone,
{
    let mut colours = [0; 3];
    for (d, direction) in DIRECTIONS.into_iter().enumerate() {
        let mut rec = mixad::record(f.clone(), &points[0]);
        rec.set_jacobian_direction(direction);
        let mut dense_rec = mixad::record(f.clone(), &points[0]);
        let mut buffer = SparseJacobian::default();
        let mut y = vec![0.0; rec.output_count()];
        for (p, x) in points.iter().enumerate() {
            let what = format!("{what}, {direction:?}, point {p}");
            let (dense_y, dense) = dense_rec.values_and_jacobian(x);
            let j = rec.sparse_jacobian(x);
            assert_matches_dense(&j, &dense, &what);
            assert_matches(&j.to_dense(), &finite_differences(&plain, x), 1e-6, &what);
            rec.values_and_sparse_jacobian_into(x, &mut y, &mut buffer);
            assert_eq!(y, dense_y, "{what}: values");
            assert_eq!(buffer.values(), j.values(), "{what}: into");
            if let Some(rows) = rows {
                assert_pattern(j.pattern(), rows, &what);
            }
        }
        assert_eq!(rec.detection_count(), 1, "{what}: detections");
        colours[d] = rec.jacobian_colour_count();
        if direction != JacobianDirection::Auto {
            assert_eq!(rec.jacobian_direction(), direction);
        }
    }
    // Auto takes the direction with fewer colours.
    assert_eq!(
        colours[0],
        colours[1].min(colours[2]),
        "{what}: auto colours"
    );
    colours
}

// ---------------------------------------------------------------------------------------
// Structured problems
// ---------------------------------------------------------------------------------------

/// Broyden tridiagonal residuals `Fᵢ = (3 − 2xᵢ)xᵢ − xᵢ₋₁ − 2xᵢ₊₁ + 1`.
fn broyden<T: Float>(x: &[T]) -> Vec<T> {
    let n = x.len();
    let k = |v: f64| T::from(v).unwrap();
    (0..n)
        .map(|i| {
            let mut r = (k(3.0) - k(2.0) * x[i]) * x[i] + k(1.0);
            if i > 0 {
                r = r - x[i - 1];
            }
            if i + 1 < n {
                r = r - k(2.0) * x[i + 1];
            }
            r
        })
        .collect()
}

fn tridiagonal(n: usize) -> Vec<Vec<usize>> {
    (0..n)
        .map(|i| (i.saturating_sub(1)..(i + 2).min(n)).collect())
        .collect()
}

#[test]
fn broyden_tridiagonal_takes_three_colours() {
    let n = 40;
    let points = [random_vec(1, n), random_vec(2, n), vec![-1.0; n]];
    let colours = check(
        |x: &[V]| broyden(x),
        broyden,
        &points,
        Some(&tridiagonal(n)),
        "broyden",
    );
    assert_eq!(colours, [3, 3, 3]);
}

/// The residuals of the Bratu problem `−Δu = λeᵘ` on a `k × k` grid (five-point stencil,
/// zero boundary).
fn bratu<T: Float>(u: &[T], k: usize) -> Vec<T> {
    let h2 = T::from(1.0 / ((k + 1) * (k + 1)) as f64).unwrap();
    let (four, lambda) = (T::from(4.0).unwrap(), T::from(6.0).unwrap());
    let at = |a: usize, b: usize| u[a * k + b];
    let mut r = Vec::with_capacity(k * k);
    for a in 0..k {
        for b in 0..k {
            let mut s = four * at(a, b);
            if a > 0 {
                s = s - at(a - 1, b);
            }
            if a + 1 < k {
                s = s - at(a + 1, b);
            }
            if b > 0 {
                s = s - at(a, b - 1);
            }
            if b + 1 < k {
                s = s - at(a, b + 1);
            }
            r.push(s - h2 * lambda * at(a, b).exp());
        }
    }
    r
}

fn stencil(k: usize) -> Vec<Vec<usize>> {
    let mut rows = Vec::new();
    for a in 0..k {
        for b in 0..k {
            let r = a * k + b;
            let mut row = vec![r];
            if a > 0 {
                row.push(r - k);
            }
            if a + 1 < k {
                row.push(r + k);
            }
            if b > 0 {
                row.push(r - 1);
            }
            if b + 1 < k {
                row.push(r + 1);
            }
            row.sort_unstable();
            rows.push(row);
        }
    }
    rows
}

#[test]
fn five_point_stencil_takes_at_most_max_row_plus_one_colours() {
    let k = 12;
    let points = [random_vec(3, k * k), vec![0.5; k * k]];
    let rows = stencil(k);
    let colours = check(
        move |x: &[V]| bratu(x, k),
        move |x| bratu(x, k),
        &points,
        Some(&rows),
        "stencil",
    );
    // Five entries a row: at least 5 colours, and no more than 5 + 1 (here the optimum).
    assert!(colours.iter().all(|&c| (5..=6).contains(&c)), "{colours:?}");
}

#[test]
fn arrowheads_go_the_way_of_their_thin_side() {
    let n = 30;
    // A dense last column: forward sweeps, two colours.
    let column = |x: &[V]| {
        let n = x.len();
        (0..n - 1)
            .map(|i| x[i] * x[n - 1] + x[i].sin())
            .collect::<Vec<_>>()
    };
    let column_f64 = |x: &[f64]| {
        let n = x.len();
        (0..n - 1).map(|i| x[i] * x[n - 1] + x[i].sin()).collect()
    };
    let rows: Vec<Vec<usize>> = (0..n - 1).map(|i| vec![i, n - 1]).collect();
    let colours = check(
        column,
        column_f64,
        &[random_vec(4, n)],
        Some(&rows),
        "column",
    );
    assert_eq!(colours, [2, 2, n - 1]);
    let mut rec = mixad::record(column, &random_vec(4, n));
    assert_eq!(rec.jacobian_direction(), JacobianDirection::Forward);

    // A dense last row: reverse sweeps, two colours.
    let row = |x: &[V]| {
        let n = x.len();
        let mut out: Vec<V> = (0..n - 1).map(|i| x[i] * x[i]).collect();
        out.push(x.iter().fold(c(0.0), |s, &v| s + v.cos()));
        out
    };
    let row_f64 = |x: &[f64]| {
        let n = x.len();
        let mut out: Vec<f64> = (0..n - 1).map(|i| x[i] * x[i]).collect();
        out.push(x.iter().map(|v| v.cos()).sum());
        out
    };
    let mut rows: Vec<Vec<usize>> = (0..n - 1).map(|i| vec![i]).collect();
    rows.push((0..n).collect());
    let colours = check(row, row_f64, &[random_vec(5, n)], Some(&rows), "row");
    assert_eq!(colours, [2, n, 2]);
    let mut rec = mixad::record(row, &random_vec(5, n));
    assert_eq!(rec.jacobian_direction(), JacobianDirection::Reverse);
}

#[test]
fn a_dense_jacobian_is_dense() {
    let (m, n) = (4, 5);
    let a: Vec<f64> = random_vec(6, m * n);
    let f = |x: &[V]| {
        (0..m)
            .map(|i| (0..n).fold(c(0.0), |s, j| s + x[j] * a[i * n + j]).sin())
            .collect::<Vec<_>>()
    };
    let plain = |x: &[f64]| {
        (0..m)
            .map(|i| (0..n).map(|j| x[j] * a[i * n + j]).sum::<f64>().sin())
            .collect()
    };
    let rows = vec![(0..n).collect::<Vec<_>>(); m];
    let colours = check(f, plain, &[random_vec(7, n)], Some(&rows), "dense");
    assert_eq!(colours, [m, n, m]);
}

#[test]
fn tall_and_wide_jacobians() {
    // m > n: 7 outputs of 3 inputs.
    let tall = |x: &[V]| {
        (0..7)
            .map(|i| x[i % 3] * x[(i + 1) % 3].exp() + c(i as f64))
            .collect::<Vec<_>>()
    };
    let tall_f64 = |x: &[f64]| {
        (0..7)
            .map(|i| x[i % 3] * x[(i + 1) % 3].exp() + i as f64)
            .collect()
    };
    let rows: Vec<Vec<usize>> = (0..7)
        .map(|i| {
            let mut r = vec![i % 3, (i + 1) % 3];
            r.sort_unstable();
            r
        })
        .collect();
    check(
        tall,
        tall_f64,
        &[random_vec(8, 3), random_vec(9, 3)],
        Some(&rows),
        "tall",
    );
    // m < n: 2 outputs of 6 inputs.
    let wide = |x: &[V]| vec![x[0] * x[2] * x[4], (x[1] + x[3]).atan2(x[5])];
    let wide_f64 = |x: &[f64]| vec![x[0] * x[2] * x[4], (x[1] + x[3]).atan2(x[5])];
    let rows = [vec![0, 2, 4], vec![1, 3, 5]];
    let colours = check(wide, wide_f64, &[random_vec(10, 6)], Some(&rows), "wide");
    assert_eq!(colours, [1, 3, 1]);
}

#[test]
fn outputs_that_are_constants_or_inputs() {
    let f = |x: &[V]| {
        vec![
            x[1],
            c(2.5),
            x[0].floor() * x[2] + x[0].signum(),
            x[2] - x[2],
            x[1],
            x[0] * 0.0 + 1.0,
        ]
    };
    let plain = |x: &[f64]| {
        vec![
            x[1],
            2.5,
            x[0].floor() * x[2] + x[0].signum(),
            x[2] - x[2],
            x[1],
            x[0] * 0.0 + 1.0,
        ]
    };
    // floor and signum depend on nothing; `x₂ − x₂` and `x₀ · 0` are zero but recorded.
    let rows = [vec![1], vec![], vec![2], vec![2], vec![1], vec![0]];
    check(f, plain, &[vec![0.3, 1.5, -2.0]], Some(&rows), "constants");
}

#[test]
fn block_operations_depend_on_their_groups_inputs() {
    let n = 8;
    let mut r = crate::common::rng(11);
    let af = DMatrix::from_fn(3, 4, |_, _| 1.5 + r());
    let a = af.map(c);
    let f = |x: &[V]| {
        let y = linalg::matvec(&a, &x[2..6].to_vec());
        let mut out: Vec<V> = y.iter().map(|v| v.sin()).collect();
        out.push(linalg::dot(&x[..2].to_vec(), &x[6..].to_vec()));
        out
    };
    let plain = |x: &[f64]| {
        let mut out: Vec<f64> = (0..3)
            .map(|i| (0..4).map(|k| af[(i, k)] * x[2 + k]).sum::<f64>().sin())
            .collect();
        out.push(x[0] * x[6] + x[1] * x[7]);
        out
    };
    let rows = [
        vec![2, 3, 4, 5],
        vec![2, 3, 4, 5],
        vec![2, 3, 4, 5],
        vec![0, 1, 6, 7],
    ];
    check(f, plain, &[random_vec(12, n)], Some(&rows), "blocks");
}

// ---------------------------------------------------------------------------------------
// Branches, NaN, reuse
// ---------------------------------------------------------------------------------------

fn branchy<T: Float>(x: &[T]) -> Vec<T> {
    if x[0] > T::zero() {
        vec![x[0] * x[1], x[2].sin(), x[3]]
    } else {
        vec![x[1] * x[2] * x[3], x[0].exp(), x[0] + x[3]]
    }
}

#[test]
fn a_flipped_branch_is_detected_again() {
    let points = [
        vec![1.0, 2.0, 3.0, 4.0],
        vec![0.5, -2.0, 1.0, 3.0],
        vec![-1.0, 2.0, 3.0, 4.0],
        vec![-2.0, 1.0, -3.0, 0.5],
        vec![2.0, 2.0, 3.0, 4.0],
    ];
    for direction in DIRECTIONS {
        let mut rec = mixad::record(|x: &[V]| branchy(x), &points[0]);
        rec.set_jacobian_direction(direction);
        let mut buffer = SparseJacobian::default();
        let mut y = vec![0.0; 3];
        for (p, x) in points.iter().enumerate() {
            let what = format!("{direction:?}, point {p}");
            rec.values_and_sparse_jacobian_into(x, &mut y, &mut buffer);
            let dense = mixad::jacobian(|x: &[V]| branchy(x), x);
            assert_matches_dense(&buffer, &dense, &what);
            assert_matches(
                &buffer.to_dense(),
                &finite_differences(branchy, x),
                1e-6,
                &what,
            );
            assert_eq!(y, branchy(x), "{what}");
            let want = if x[0] > 0.0 {
                [vec![0, 1], vec![2], vec![3]]
            } else {
                [vec![1, 2, 3], vec![0], vec![0, 3]]
            };
            assert_pattern(buffer.pattern(), &want, &what);
            assert_pattern(rec.jacobian_pattern(), &want, &what);
        }
        // Recorded at points 0, 2 and 4: three detections.
        assert_eq!(rec.rerecord_count(), 2, "{direction:?}");
        assert_eq!(rec.detection_count(), 3, "{direction:?}");
    }
}

#[test]
fn a_nan_output_has_a_nan_row_and_spoils_no_other() {
    // Rows 0 and 2 share no input: in reverse they are one sweep, and row 0's NaN must
    // not reach row 2.
    let f = |x: &[V]| vec![x[0].sqrt() * x[1], x[1] + x[2], x[2].ln() * x[3]];
    let plain = |x: &[f64]| vec![x[0].sqrt() * x[1], x[1] + x[2], x[2].ln() * x[3]];
    let rows = [vec![0, 1], vec![1, 2], vec![2, 3]];
    for x in [vec![-1.0, 2.0, 3.0, 4.0], vec![4.0, 2.0, -3.0, 4.0]] {
        for direction in DIRECTIONS {
            let what = format!("{direction:?} at {x:?}");
            let mut rec = mixad::record(f, &[1.0; 4]);
            rec.set_jacobian_direction(direction);
            let (y, j) = rec.values_and_sparse_jacobian(&x);
            if direction == JacobianDirection::Reverse {
                // Rows 0 and 2 in one sweep.
                assert_eq!(rec.jacobian_colour_count(), 2, "{what}");
            }
            let dense = rec.jacobian(&x);
            assert_pattern(j.pattern(), &rows, &what);
            for (i, row) in rows.iter().enumerate() {
                let nan = plain(&x)[i].is_nan();
                assert_eq!(y[i].is_nan(), nan, "{what}");
                for &k in row {
                    assert_eq!(j.get(i, k).is_nan(), nan, "{what}: ({i}, {k})");
                    assert_near(j.get(i, k), dense[(i, k)], 1e-15, &what);
                }
            }
        }
    }
    // A NaN that enters through a partial only (the value is finite) is the sweep's own.
    let g = |x: &[V]| vec![x[0].sqrt() * x[1]];
    let j = mixad::sparse_jacobian(g, &[0.0, 0.0]);
    let dense = mixad::jacobian(g, &[0.0, 0.0]);
    assert_eq!(j.get(0, 1), dense[(0, 1)]);
}

#[test]
fn one_recording_serves_many_points_without_new_detections() {
    let n = 25;
    let mut rec = mixad::record(|x: &[V]| broyden(x), &vec![0.0; n]);
    let mut buffer = SparseJacobian::default();
    let mut y = vec![0.0; n];
    for seed in 0..5 {
        let x = random_vec(20 + seed, n);
        rec.values_and_sparse_jacobian_into(&x, &mut y, &mut buffer);
        assert_matches_dense(&buffer, &rec.jacobian(&x), "reuse");
    }
    assert_eq!(rec.detection_count(), 1);
    // A sparse Hessian on the same recording detects its own pattern once.
    assert_eq!(
        rec.lagrangian_hessian(&vec![0.0; n], 0.0, &vec![1.0; n - 1])
            .dim(),
        n
    );
    assert_eq!(rec.detection_count(), 2);
    // Changing the direction colours again (and detects again), results unchanged.
    let x = random_vec(30, n);
    let before = rec.sparse_jacobian(&x);
    rec.set_jacobian_direction(JacobianDirection::Forward);
    let after = rec.sparse_jacobian(&x);
    assert_eq!(rec.detection_count(), 3);
    for (a, b) in before.values().iter().zip(after.values()) {
        assert_near(*a, *b, 1e-14, "direction change");
    }
}

#[test]
fn a_long_dense_row_is_detected_in_linear_time() {
    // Σ xᵢ as a chain of additions: one set grown in place, not copied at every step.
    let n = 200_000;
    let f = |x: &[V]| {
        vec![
            x.iter().fold(c(0.0), |s, &v| s + v),
            x[0] * x[n - 1],
            x.iter().rev().fold(c(1.0), |s, &v| s * v.sin()),
        ]
    };
    let mut rec = mixad::record(f, &vec![0.5; n]);
    let p = rec.jacobian_pattern();
    assert_eq!(p.row(0).len(), n);
    assert_eq!(p.row(1), &[0, n - 1]);
    assert_eq!(p.row(2).len(), n);
    assert_eq!(rec.jacobian_direction(), JacobianDirection::Reverse);
    assert_eq!(rec.jacobian_colour_count(), 3);
    let j = rec.sparse_jacobian(&vec![0.5; n]);
    assert_eq!(j.get(0, 77), 1.0);
    assert_eq!(j.get(1, n - 1), 0.5);
}

// ---------------------------------------------------------------------------------------
// Conversions, empty Jacobians, misuse
// ---------------------------------------------------------------------------------------

#[test]
fn conversions_agree() {
    let k = 4;
    let x = random_vec(13, k * k);
    let j = mixad::sparse_jacobian(|x: &[V]| bratu(x, k), &x);
    let dense = j.to_dense();
    let triplets: Vec<_> = j.triplets().collect();
    assert_eq!(triplets.len(), j.nnz());
    for &(r, col, v) in &triplets {
        assert_eq!(dense[(r, col)], v);
    }
    let (col_ptr, row_idx, values) = j.to_csc();
    assert_eq!(col_ptr.len(), k * k + 1);
    for col in 0..k * k {
        let rows = &row_idx[col_ptr[col]..col_ptr[col + 1]];
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        for (t, &r) in rows.iter().enumerate() {
            assert_eq!(values[col_ptr[col] + t], dense[(r, col)]);
        }
    }
    let faer_cols = j.to_faer().to_dense();
    let faer_rows = j.to_faer_rows().to_dense();
    assert_matches(&faer_cols, &dense, 0.0, "faer columns");
    assert_matches(&faer_rows, &dense, 0.0, "faer rows");
    // The row-major layout of `row_ptr` / `col_idx` / `values`.
    for i in 0..j.nrows() {
        for t in j.row_ptr()[i]..j.row_ptr()[i + 1] {
            assert_eq!(j.values()[t], dense[(i, j.col_idx()[t])]);
        }
    }
}

#[test]
fn empty_jacobians() {
    // No inputs.
    let f = |_: &[V]| vec![c(1.0), c(2.0)];
    let j = mixad::sparse_jacobian(f, &[]);
    assert_eq!((j.nrows(), j.ncols(), j.nnz()), (2, 0, 0));
    let mut rec = mixad::record(f, &[]);
    let (y, j) = rec.values_and_sparse_jacobian(&[]);
    assert_eq!((y, j.to_dense().nrows()), (vec![1.0, 2.0], 2));
    assert_eq!(rec.jacobian_colour_count(), 0);
    // No outputs.
    let g = |_: &[V]| Vec::<V>::new();
    let j = mixad::sparse_jacobian(g, &[1.0, 2.0]);
    assert_eq!((j.nrows(), j.ncols(), j.nnz()), (0, 2, 0));
    assert_eq!(j.to_faer().ncols(), 2);
    // Neither.
    let j = mixad::sparse_jacobian(g, &[]);
    assert_eq!((j.nrows(), j.ncols()), (0, 0));
    let j = SparseJacobian::default();
    assert_eq!((j.nrows(), j.ncols(), j.nnz()), (0, 0, 0));
}

#[test]
fn misuse_panics_at_the_boundary() {
    let f = |x: &[V]| vec![x[0] * x[1], x[2]];
    let mut rec: VecRecording<_> = mixad::record(f, &[1.0, 2.0, 3.0]);
    let msg = panic_message(|| {
        rec.sparse_jacobian(&[1.0, 2.0]);
    });
    assert!(
        msg.contains("sparse_jacobian") && msg.contains("recorded with 3 inputs, called with 2"),
        "{msg}"
    );
    let msg = panic_message(|| {
        rec.values_and_sparse_jacobian_into(
            &[1.0; 3],
            &mut [0.0; 3],
            &mut SparseJacobian::default(),
        );
    });
    assert!(
        msg.contains("output buffer has 3 entries, expected 2"),
        "{msg}"
    );
    let j = rec.sparse_jacobian(&[1.0; 3]);
    let msg = panic_message(|| {
        j.get(2, 0);
    });
    assert!(msg.contains("outside a 2 × 3 matrix"), "{msg}");
    // A function whose output count changes on re-recording.
    let g = |x: &[V]| {
        if x[0] > c(0.0) {
            vec![x[0]]
        } else {
            vec![x[0], x[0]]
        }
    };
    let mut rec = mixad::record(g, &[1.0]);
    let msg = panic_message(|| {
        rec.sparse_jacobian(&[-1.0]);
    });
    assert!(msg.contains("outputs"), "{msg}");
}

#[test]
fn custom_rules_of_first_order_sweep_in_reverse() {
    use mixad::rules::CustomRule;
    let rule = CustomRule::unary("clock_scale", &[|x| 3.0 * x, |_| 3.0]);
    let n = 12;
    // A dense last column: forward would take 2 colours, but a forward replay needs the
    // rule's second derivatives.
    let f = |x: &[V]| {
        (0..n - 1)
            .map(|i| rule.call1(x[i]) * x[n - 1])
            .collect::<Vec<_>>()
    };
    let x = random_vec(14, n);
    let mut rec = mixad::record(f, &x);
    assert_eq!(rec.jacobian_direction(), JacobianDirection::Reverse);
    let j = rec.sparse_jacobian(&x);
    assert_matches_dense(&j, &rec.jacobian(&x), "custom rule");
    assert_eq!(j.get(3, 3), 3.0 * x[n - 1]);
    rec.set_jacobian_direction(JacobianDirection::Forward);
    let msg = panic_message(|| {
        rec.sparse_jacobian(&x);
    });
    assert!(
        msg.contains("clock_scale") && msg.contains("mixad::sparse_jacobian (forward)"),
        "{msg}"
    );
}
