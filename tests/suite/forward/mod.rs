//! Tests `src/forward/`. Tags (perturbation confusion): `tag.rs`.
//!
//! The forward-mode public API, used the way a user would: functions written once, generic
//! over `num_traits::Float` (or nalgebra's `RealField`), differentiated by every forward
//! API and checked against analytic derivatives and central finite differences of the very
//! same code run on plain `f64`.
//!
//! Also: functions of no inputs.

mod tag;

use mixad::forward::{self, Dual, LANES};
use nalgebra::{DMatrix, DVector, RealField};
use num_traits::Float;

use crate::common::empty::{f, f0, g, none, EMPTY};
use crate::common::{assert_close, k, rosenbrock};

// ---------------------------------------------------------------------------------------
// User code, written once
// ---------------------------------------------------------------------------------------

/// A smooth function of any number of inputs using exp, ln, sin, sqrt, tanh and powf.
fn smooth<T: Float>(x: &[T]) -> T {
    let (one, two) = (T::one(), k::<T>(2.0));
    let sq = x.iter().fold(T::zero(), |a, &b| a + b * b);
    let terms = x.iter().enumerate().fold(T::zero(), |acc, (i, &xi)| {
        let next = x[(i + 1) % x.len()];
        let w = k::<T>(0.3 * (i + 1) as f64);
        acc + (w * xi).exp() * (xi * next).sin() + (two + xi * next).ln()
    });
    terms
        + (one + sq).sqrt() * x.first().map_or(T::zero(), |&x0| x0.tanh())
        + (one + sq).powf(k(0.75))
}

/// `f: Rⁿ → R⁴`, defined for every `n` including 0.
fn vector_fn<T: Float>(x: &[T]) -> Vec<T> {
    let one = T::one();
    let sum = x.iter().fold(T::zero(), |a, &b| a + b);
    let sq = x.iter().fold(T::zero(), |a, &b| a + b * b);
    let weighted = x
        .iter()
        .enumerate()
        .fold(T::zero(), |a, (i, &b)| a + k::<T>(0.1 * (i + 1) as f64) * b);
    vec![
        sq,
        weighted.exp() * sum.cos(),
        (one + sq).sqrt() * (k::<T>(3.0) + weighted.sin()).ln(),
        smooth(x),
    ]
}

/// `x + t·v`, for differentiating along a line.
fn line<T: Float>(x: &[f64], v: &[f64], t: T) -> Vec<T> {
    x.iter()
        .zip(v)
        .map(|(&a, &b)| k::<T>(a) + t * k::<T>(b))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Reference derivatives
// ---------------------------------------------------------------------------------------

/// Analytic gradient of [`rosenbrock`].
fn rosenbrock_grad(x: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    for i in 1..x.len() {
        let (a, b) = (x[i - 1], x[i]);
        g[i - 1] += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a);
        g[i] += 200.0 * (b - a * a);
    }
    g
}

/// Analytic Hessian-vector product of [`rosenbrock`].
fn rosenbrock_hv(x: &[f64], v: &[f64]) -> Vec<f64> {
    let mut hv = vec![0.0; x.len()];
    for i in 1..x.len() {
        let (a, b) = (x[i - 1], x[i]);
        hv[i - 1] += (1200.0 * a * a - 400.0 * b + 2.0) * v[i - 1] - 400.0 * a * v[i];
        hv[i] += -400.0 * a * v[i - 1] + 200.0 * v[i];
    }
    hv
}

/// Central finite differences: `cols[j][i] ≈ ∂f_i/∂x_j`.
fn fd_columns(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<Vec<f64>> {
    let h = 1e-6;
    (0..x.len())
        .map(|j| {
            let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
            xp[j] += h;
            xm[j] -= h;
            let (fp, fm) = (f(&xp), f(&xm));
            fp.iter()
                .zip(&fm)
                .map(|(p, m)| (p - m) / (2.0 * h))
                .collect()
        })
        .collect()
}

fn fd_gradient(f: fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    fd_columns(|x| vec![f(x)], x)
        .into_iter()
        .map(|c| c[0])
        .collect()
}

fn fd_derivative(f: impl Fn(f64) -> f64, t: f64) -> f64 {
    fd_columns(|t| vec![f(t[0])], &[t])[0][0]
}

/// `J·v` from finite-difference columns.
fn fd_jvp(f: fn(&[f64]) -> Vec<f64>, x: &[f64], v: &[f64]) -> Vec<f64> {
    let cols = fd_columns(f, x);
    let m = f(x).len();
    (0..m)
        .map(|i| cols.iter().zip(v).map(|(c, vj)| c[i] * vj).sum())
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A deterministic test point with entries in roughly [-1.2, 1.2].
fn point(n: usize) -> Vec<f64> {
    (0..n).map(|i| 1.2 * (1.3 * i as f64 + 0.4).sin()).collect()
}

fn direction(n: usize) -> Vec<f64> {
    (0..n).map(|i| (0.7 * i as f64 - 0.2).cos()).collect()
}

/// Finite differences at `h = 1e-6` are good to about 1e-8 relative on these functions.
const FD_TOL: f64 = 1e-6;
/// Analytic comparisons: rounding only.
const EXACT_TOL: f64 = 1e-12;

// ---------------------------------------------------------------------------------------
// 1. Every forward API on the same user functions
// ---------------------------------------------------------------------------------------

#[test]
fn derivative_along_a_line_is_the_directional_derivative() {
    let (x, v) = (point(6), direction(6));
    let along = |t| rosenbrock(&line(&x, &v, t));
    let (value, d) = forward::value_and_derivative(along, 0.0);
    assert_close(&[value], &[rosenbrock(&x)], 1e-15, "rosenbrock value");
    assert_close(
        &[d],
        &[dot(&rosenbrock_grad(&x), &v)],
        EXACT_TOL,
        "rosenbrock ∇f·v",
    );
    assert_eq!(forward::derivative(along, 0.0), d);

    let along = |t| smooth(&line(&x, &v, t));
    let (value, d) = forward::value_and_derivative(along, 0.25);
    assert_close(
        &[value],
        &[smooth(&line(&x, &v, 0.25))],
        1e-15,
        "smooth value",
    );
    let fd = fd_derivative(|t| smooth(&line(&x, &v, t)), 0.25);
    assert_close(&[d], &[fd], FD_TOL, "smooth directional derivative");
}

#[test]
fn derivative_of_a_scalar_function() {
    // g(t) = smooth([t, t², 1 − t]): exercises the whole rule table through one variable.
    fn g<T: Float>(t: T) -> T {
        smooth(&[t, t * t, T::one() - t])
    }
    for t in [-0.9, -0.1, 0.3, 1.1] {
        let d = forward::derivative(g, t);
        assert_close(&[d], &[fd_derivative(g, t)], FD_TOL, &format!("g'({t})"));
    }
}

#[test]
fn second_derivative_along_a_line_is_the_hessian_quadratic_form() {
    let (x, v) = (point(5), direction(5));
    let d2 = forward::second_derivative(|t| rosenbrock(&line(&x, &v, t)), 0.0);
    assert_close(&[d2], &[dot(&v, &rosenbrock_hv(&x, &v))], EXACT_TOL, "vᵀHv");

    // For `smooth`: finite differences of the (independently checked) first derivative.
    let d2 = forward::second_derivative(|t| smooth(&line(&x, &v, t)), 0.1);
    let first = |t| forward::derivative(|s| smooth(&line(&x, &v, s)), t);
    assert_close(
        &[d2],
        &[fd_derivative(first, 0.1)],
        FD_TOL,
        "smooth second derivative",
    );
}

#[test]
fn second_derivative_where_an_intermediate_first_derivative_vanishes() {
    // At x = 0 the inner x² has first-order tangent 0 but second-order tangent 2: the
    // engine must not mistake that half-zero tangent for "no derivative".
    // (e^{x²})'' = (2 + 4x²) e^{x²}, (sin x²)'' = 2 cos x² − 4x² sin x².
    for x in [0.0, 0.6] {
        let exp_sq = forward::second_derivative(|x| (x * x).exp(), x);
        let sin_sq = forward::second_derivative(|x| (x * x).sin(), x);
        let want_exp = (2.0 + 4.0 * x * x) * (x * x).exp();
        let want_sin = 2.0 * (x * x).cos() - 4.0 * x * x * (x * x).sin();
        let got = [exp_sq, sin_sq];
        assert_close(&got, &[want_exp, want_sin], EXACT_TOL, &format!("x={x}"));
    }
}

#[test]
fn plain_f64_constants_mix_with_duals_on_either_side() {
    // Closures on concrete dual types can use f64 literals directly.
    // f(x) = 3x² − x/2 + 1 − 2/x + 0.5(x − 4): f' = 6x + 2/x².
    let (x, f) = (1.5, |x| {
        3.0 * x * x - x / 2.0 + 1.0 - 2.0 / x + (x - 4.0) * 0.5
    });
    assert_close(
        &[forward::derivative(f, x)],
        &[6.0 * x + 2.0 / (x * x)],
        EXACT_TOL,
        "f'",
    );
    let d2 = forward::second_derivative(|x| 2.0 / x + x * x * 0.5 - 1.0, x);
    assert_close(
        &[d2],
        &[4.0 / (x * x * x) + 1.0],
        EXACT_TOL,
        "(2/x + x²/2 − 1)''",
    );
    // Compound assignment on DualVec: g = ((2·x0·x1 − 1)/4 + 0.5)·3, ∇g = (1.5·x1, 1.5·x0).
    let g = forward::gradient(
        |x| {
            let mut acc = x[0] * x[1];
            acc *= 2.0;
            acc -= 1.0;
            acc /= 4.0;
            acc += 0.5;
            acc * 3.0
        },
        &[2.0, 3.0],
    );
    assert_close(&g, &[4.5, 3.0], EXACT_TOL, "∇g");
}

#[test]
fn jvp_matches_finite_differences_and_the_analytic_gradient() {
    for n in [1, 3, 9] {
        let (x, v) = (point(n), direction(n));
        let (y, jv) = forward::jvp(vector_fn, &x, &v);
        assert_close(&y, &vector_fn(&x), 1e-15, "jvp value");
        assert_close(
            &jv,
            &fd_jvp(vector_fn, &x, &v),
            FD_TOL,
            &format!("jvp n={n}"),
        );
    }
    let (x, v) = (point(7), direction(7));
    let (y, jv) = forward::jvp(|x| [rosenbrock(x)], &x, &v);
    assert_close(&y, &[rosenbrock(&x)], 1e-15, "rosenbrock value");
    assert_close(
        &jv,
        &[dot(&rosenbrock_grad(&x), &v)],
        EXACT_TOL,
        "rosenbrock jvp",
    );
}

#[test]
fn gradient_of_rosenbrock_is_analytic_for_every_size() {
    // 1..=3 and the sweep boundaries around multiples of LANES.
    for n in [1, 2, 3, 7, 8, 9, 15, 16, 17, 20, 33] {
        let x = point(n);
        let want = rosenbrock_grad(&x);
        let g = forward::gradient(rosenbrock, &x);
        assert_close(&g, &want, EXACT_TOL, &format!("gradient n={n}"));
        let g = forward::gradient_with_lanes::<4, f64>(rosenbrock, &x);
        assert_close(&g, &want, EXACT_TOL, &format!("4 lanes, n={n}"));
        let g = forward::gradient_with_lanes::<16, f64>(rosenbrock, &x);
        assert_close(&g, &want, EXACT_TOL, &format!("16 lanes, n={n}"));
    }
    // At the minimum the gradient is exactly zero.
    assert_eq!(forward::gradient(rosenbrock, &[1.0; 11]), vec![0.0; 11]);
}

#[test]
fn gradient_of_smooth_matches_finite_differences() {
    for n in [1, 2, 5, 8, 12, 19] {
        let x = point(n);
        let g = forward::gradient(smooth, &x);
        assert_close(&g, &fd_gradient(smooth, &x), FD_TOL, &format!("n={n}"));
    }
}

#[test]
fn jacobian_is_m_by_n_and_matches_finite_differences() {
    for n in [1, 2, 8, 9, 13, 17] {
        let x = point(n);
        let j = forward::jacobian(vector_fn, &x);
        assert_eq!((j.nrows(), j.ncols()), (4, n), "shape for n={n}");
        for (col, fd) in fd_columns(vector_fn, &x).iter().enumerate() {
            let got: Vec<f64> = (0..4).map(|row| j[(row, col)]).collect();
            assert_close(&got, fd, FD_TOL, &format!("n={n} column {col}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. Chunk size does not change the gradient
// ---------------------------------------------------------------------------------------

/// Every lane count gives bitwise the gradient of one lane, which matches `reference`.
macro_rules! assert_lane_invariant {
    ($f:expr, $x:expr, $reference:expr, $tol:expr) => {{
        let (x, reference): (&[f64], &[f64]) = ($x, $reference);
        let base = forward::gradient_with_lanes::<1, f64>($f, x);
        assert_close(&base, reference, $tol, "1 lane");
        let bits = |v: &[f64]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
        let others = [
            forward::gradient_with_lanes::<2, f64>($f, x),
            forward::gradient_with_lanes::<3, f64>($f, x),
            forward::gradient_with_lanes::<4, f64>($f, x),
            forward::gradient_with_lanes::<8, f64>($f, x),
            forward::gradient_with_lanes::<16, f64>($f, x),
            forward::gradient($f, x),
        ];
        for (k, g) in others.iter().enumerate() {
            assert_eq!(
                bits(g),
                bits(&base),
                "n={} variant {k}: {g:?} vs {base:?}",
                x.len()
            );
        }
    }};
}

#[test]
fn every_lane_count_gives_the_same_gradient() {
    for n in [1, 2, 5, 8, 9, 20, 33] {
        let x = point(n);
        assert_lane_invariant!(rosenbrock, &x, &rosenbrock_grad(&x), EXACT_TOL);
        // Against reverse mode: finite differences lose digits at the larger n.
        assert_lane_invariant!(smooth, &x, &mixad::gradient(smooth, &x), 1e-12);
        assert_close(
            &mixad::gradient(smooth, &x),
            &fd_gradient(smooth, &x),
            1e-5,
            "FD",
        );
    }
}

#[test]
fn the_lane_count_follows_n() {
    use mixad::forward::{lanes_for, LANE_COUNTS};
    let chosen: Vec<usize> = [0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 1000]
        .map(lanes_for)
        .to_vec();
    assert_eq!(chosen, vec![1, 1, 2, 4, 4, 8, 8, 16, 16, 8, 8]);
    for n in 0..100 {
        let l = lanes_for(n);
        assert!(LANE_COUNTS.contains(&l), "n={n}: {l} lanes");
        assert!(
            n > 16 || l >= n,
            "n={n}: {l} lanes cannot hold every direction"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. Misuse panics with a clear message
// ---------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "forward::jvp: x has 2 entries but the direction v has 3")]
fn jvp_rejects_a_direction_of_the_wrong_length() {
    forward::jvp(vector_fn, &[1.0, 2.0], &[1.0, 0.0, 0.0]);
}

#[test]
#[should_panic(expected = "forward::jacobian: f returned 1 outputs in one sweep and 2 in another")]
fn jacobian_rejects_an_output_length_that_changes_between_sweeps() {
    let mut sweeps = 0;
    forward::jacobian(
        |x| {
            sweeps += 1;
            vec![x[0]; sweeps]
        },
        &point(LANES + 1),
    );
}

// ---------------------------------------------------------------------------------------
// 4. Empty input
// ---------------------------------------------------------------------------------------

#[test]
fn empty_input_gives_empty_derivatives() {
    let empty: &[f64] = &[];
    assert!(forward::gradient(smooth, empty).is_empty());
    assert!(forward::gradient_with_lanes::<1, f64>(rosenbrock, empty).is_empty());
    assert!(forward::gradient_with_lanes::<16, f64>(rosenbrock, empty).is_empty());
    let j = forward::jacobian(vector_fn, empty);
    assert_eq!((j.nrows(), j.ncols()), (4, 0));

    let (y, jv) = forward::jvp(vector_fn, empty, empty);
    assert_close(&y, &vector_fn::<f64>(&[]), 0.0, "value at n=0");
    assert_eq!(jv, vec![0.0; 4]);
}

// ---------------------------------------------------------------------------------------
// 5. nalgebra decompositions on dual numbers
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Solver {
    Cholesky,
    Lu,
    Qr,
}

fn cst<T: RealField + Copy>(v: f64) -> T {
    nalgebra::convert(v)
}

/// A symmetric, diagonally dominant (so SPD) `A(t)` and `b(t)` for `t` near 0.
fn system<T: RealField + Copy>(t: T) -> (DMatrix<T>, DVector<T>) {
    let off = cst::<T>(1.0) + t * t;
    let s = t.sin();
    #[rustfmt::skip]
    let a = DMatrix::from_row_slice(3, 3, &[
        cst::<T>(4.0) + t, off,                      s,
        off,               cst::<T>(3.0) + t.exp(),  cst(0.5),
        s,                 cst(0.5),                 cst::<T>(5.0) - t,
    ]);
    let b = DVector::from_column_slice(&[cst::<T>(1.0) + t, t.cos(), t * t * t - cst(2.0)]);
    (a, b)
}

/// `x(t) = A(t)⁻¹ b(t)` through one of nalgebra's decompositions.
fn solve<T: RealField + Copy>(t: T, solver: Solver) -> DVector<T> {
    let (a, b) = system(t);
    match solver {
        Solver::Cholesky => a.cholesky().expect("A(t) is SPD").solve(&b),
        Solver::Lu => a.lu().solve(&b).expect("A(t) is invertible"),
        Solver::Qr => a.qr().solve(&b).expect("A(t) is invertible"),
    }
}

#[test]
fn nalgebra_solves_differentiate_correctly() {
    let t0 = 0.3;
    let x0 = solve(t0, Solver::Lu);
    // A', b' at t0 from the (separately tested) elementwise rules: the implicit-function
    // identity A x' = b' − A' x then checks the solve itself.
    let (a_dual, b_dual) = system(Dual::variable(t0));
    let (a, a_dot) = (a_dual.map(|e| e.value), a_dual.map(|e| e.tangent));
    let b_dot = b_dual.map(|e| e.tangent);
    for solver in [Solver::Cholesky, Solver::Lu, Solver::Qr] {
        let mut x_dot = DVector::zeros(3);
        for i in 0..3 {
            let (xi, dxi) = forward::value_and_derivative(|t| solve(t, solver)[i], t0);
            assert_close(&[xi], &[x0[i]], 1e-14, &format!("{solver:?} x[{i}]"));
            let fd = fd_derivative(|t| solve(t, solver)[i], t0);
            assert_close(&[dxi], &[fd], FD_TOL, &format!("{solver:?} dx[{i}]/dt"));
            x_dot[i] = dxi;
        }
        let residual = &a * &x_dot - (&b_dot - &a_dot * &x0);
        assert!(
            residual.amax() < 1e-13,
            "{solver:?}: A x' ≠ b' − A' x: {residual}"
        );
    }
}

/// `bᵀ A⁻¹ b` with `A = L Lᵀ + I`, `L` lower-triangular filled from `p` (10 entries, 4×4).
fn quadratic_form_by_cholesky<T: RealField + Copy>(p: &[T]) -> T {
    const D: usize = 4;
    assert_eq!(p.len(), D * (D + 1) / 2);
    let mut l = DMatrix::<T>::zeros(D, D);
    let lower = (0..D).flat_map(|i| (0..=i).map(move |j| (i, j)));
    for ((i, j), &pk) in lower.zip(p) {
        l[(i, j)] = pk;
    }
    let a = &l * l.transpose() + DMatrix::identity(D, D);
    let b = DVector::from_fn(D, |i, _| p[i].sin() + cst(2.0));
    let x = a.cholesky().expect("L Lᵀ + I is SPD").solve(&b);
    b.dot(&x)
}

#[test]
fn gradient_through_a_cholesky_solve_on_dual_vec() {
    let p = point(10);
    let g = forward::gradient(quadratic_form_by_cholesky, &p);
    let fd = fd_gradient(quadratic_form_by_cholesky, &p);
    assert_close(&g, &fd, FD_TOL, "∇ bᵀA⁻¹b");
    // Chunked differently, the same numbers.
    let g1 = forward::gradient_with_lanes::<1, f64>(quadratic_form_by_cholesky, &p);
    assert_close(&g1, &g, 1e-14, "1 lane vs 8");
}

// ---------------------------------------------------------------------------------------
// 6. Nesting
// ---------------------------------------------------------------------------------------

/// Lifts an outer-level dual into the inner call's number type as a constant: the inner
/// derivative must see it as not depending on its own variable.
fn lift(x: Dual<f64>) -> Dual<Dual<f64>> {
    Dual::new(x, Dual::new(0.0, 0.0))
}

#[test]
fn nested_derivative_has_no_perturbation_confusion() {
    // d/dx [ x · d/dy (x + y) |_{y=1} ] = d/dx [x · 1] = 1; confusing the two
    // perturbations gives 2.
    let d = forward::derivative(
        |x| x * forward::derivative(|y| lift(x) + y, Dual::new(1.0, 0.0)),
        0.7,
    );
    assert_eq!(d, 1.0);
}

#[test]
fn nested_derivative_gives_the_mixed_partial() {
    // f(x, y) = sin(xy) + x²y³, ∂²f/∂x∂y = cos(xy) − xy·sin(xy) + 6xy².
    fn f<T: Float>(x: T, y: T) -> T {
        (x * y).sin() + x * x * y.powi(3)
    }
    let (x0, y0) = (0.8, -1.3);
    let mixed = forward::derivative(
        |x| forward::derivative(|y| f(lift(x), y), Dual::new(y0, 0.0)),
        x0,
    );
    let xy = x0 * y0;
    let want = xy.cos() - xy * xy.sin() + 6.0 * x0 * y0 * y0;
    assert_close(&[mixed], &[want], EXACT_TOL, "∂²f/∂x∂y");

    // Without a captured variable no lifting is needed; it is forward over forward.
    let g = |t| smooth(&[t, t * t]);
    let twice = forward::derivative(|t| forward::derivative(g, t), 0.4);
    assert_close(
        &[twice],
        &[forward::second_derivative(g, 0.4)],
        1e-14,
        "f'' two ways",
    );
}

#[test]
fn jvp_of_a_gradient_and_jacobian_of_a_gradient_give_the_hessian() {
    let (x, v) = (point(11), direction(11));
    // Forward over forward: the gradient at S = Dual<f64> is differentiated along v.
    let (g, hv) = forward::jvp(|x| forward::gradient(rosenbrock, x), &x, &v);
    assert_close(&g, &rosenbrock_grad(&x), EXACT_TOL, "gradient as jvp value");
    assert_close(&hv, &rosenbrock_hv(&x, &v), EXACT_TOL, "Hv");

    // And at S = DualVec<f64, 8>: the full Hessian, column by column.
    let h = forward::jacobian(|x| forward::gradient(rosenbrock, x), &x);
    for col in 0..x.len() {
        let e: Vec<f64> = (0..x.len())
            .map(|i| if i == col { 1.0 } else { 0.0 })
            .collect();
        let got: Vec<f64> = (0..x.len()).map(|row| h[(row, col)]).collect();
        assert_close(
            &got,
            &rosenbrock_hv(&x, &e),
            EXACT_TOL,
            &format!("H column {col}"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// 7. num-dual interoperability
// ---------------------------------------------------------------------------------------

#[test]
fn num_dual_conversions_round_trip() {
    let theirs = num_dual::Dual64::new(1.5, -2.25);
    let ours: Dual<f64> = theirs.into();
    assert_eq!((ours.value, ours.tangent), (1.5, -2.25));
    let back = num_dual::Dual64::from(ours);
    assert_eq!((back.re, back.eps), (1.5, -2.25));
    let ours = Dual::from(num_dual::Dual64::from(Dual::new(-0.0, f64::INFINITY)));
    assert_eq!(
        (ours.value.to_bits(), ours.tangent),
        ((-0.0f64).to_bits(), f64::INFINITY)
    );
}

#[test]
fn num_dual_and_mixad_agree_through_the_same_generic_solve() {
    let t0 = 0.3;
    let theirs = solve(num_dual::Dual64::from_re(t0).derivative(), Solver::Cholesky);
    let ours = solve(Dual::variable(t0), Solver::Cholesky);
    for (i, (&a, &b)) in theirs.iter().zip(ours.iter()).enumerate() {
        let converted = Dual::from(a);
        assert_close(&[converted.value], &[b.value], 1e-15, &format!("x[{i}]"));
        assert_close(
            &[converted.tangent],
            &[b.tangent],
            1e-13,
            &format!("x'[{i}]"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Lanes that follow n: a `Function` is evaluated at the lane count each level needs
// ---------------------------------------------------------------------------------------

use mixad::Function;
use std::cell::RefCell;

thread_local! {
    /// The scalar types `Inner` was evaluated at, innermost call last.
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// g(y) = y₀²·y₁ + sin(y₁): ∇g = (2y₀y₁, y₀² + cos y₁).
struct Inner;
impl mixad::Function for Inner {
    fn eval<S: mixad::Scalar>(&self, y: &[S]) -> S {
        SEEN.with(|s| s.borrow_mut().push(std::any::type_name::<S>().to_string()));
        y[0] * y[0] * y[1] + Float::sin(y[1])
    }
}

/// f(x) = ∂g/∂y₀ · ∂g/∂y₁ at y = x, by a forward gradient inside a forward gradient.
struct Outer;
impl mixad::Function for Outer {
    fn eval<S: mixad::Scalar>(&self, x: &[S]) -> S {
        let g = forward::gradient_of(&Inner, x);
        g[0] * g[1]
    }
}

#[test]
fn gradient_of_a_function_picks_its_lanes_from_n_at_every_level() {
    let x = [0.7, -1.3];
    let (a, b) = (x[0], x[1]);
    SEEN.with(|s| s.borrow_mut().clear());
    let g = forward::gradient_of(&Outer, &x);
    // f = 2ab·(a² + cos b): ∂f/∂a = 2b(a² + cos b) + 4a²b, ∂f/∂b = 2a(a² + cos b) − 2ab sin b.
    let want = [
        2.0 * b * (a * a + b.cos()) + 4.0 * a * a * b,
        2.0 * a * (a * a + b.cos()) - 2.0 * a * b * b.sin(),
    ];
    assert_close(&g, &want, 1e-14, "forward over forward through gradient_of");
    // Two inputs at both levels: 2 lanes each (3 × 3 numbers), not 8 × 8.
    let seen = SEEN.with(|s| s.borrow().clone());
    assert_eq!(seen.len(), 1, "one sweep of each level: {seen:?}");
    assert!(
        seen[0].ends_with("DualVec<mixad::forward::dual_vec::DualVec<f64, 2>, 2>"),
        "inner evaluated at {}",
        seen[0]
    );
    // The same numbers as the closure form on 8 lanes.
    let by_closure = forward::gradient(
        |x| {
            let g = forward::gradient(|y| Inner.eval(y), x);
            g[0] * g[1]
        },
        &x,
    );
    assert_close(&g, &by_closure, 1e-15, "gradient_of vs gradient");
}

#[test]
fn gradient_of_and_jacobian_of_match_the_closure_forms_at_every_size() {
    struct Rosen;
    impl mixad::Function for Rosen {
        fn eval<S: mixad::Scalar>(&self, x: &[S]) -> S {
            rosenbrock(x)
        }
    }
    struct Vector;
    impl mixad::VectorFunction for Vector {
        fn eval<S: mixad::Scalar>(&self, x: &[S]) -> Vec<S> {
            vector_fn(x)
        }
    }
    for n in [0, 1, 2, 3, 5, 8, 9, 16, 17, 40] {
        let x = point(n);
        let g = forward::gradient_of(&Rosen, &x);
        assert_close(&g, &rosenbrock_grad(&x), EXACT_TOL, &format!("n={n}"));
        let j = forward::jacobian_of(&Vector, &x);
        let want = forward::jacobian(vector_fn, &x);
        assert_eq!((j.nrows(), j.ncols()), (want.nrows(), want.ncols()));
        for r in 0..j.nrows() {
            for c in 0..j.ncols() {
                assert_eq!(j[(r, c)], want[(r, c)], "n={n}: J[{r}, {c}]");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Functions of no inputs: the value, and empty derivatives
// ---------------------------------------------------------------------------------------

#[test]
fn forward_mode_apis_give_the_value_and_empty_derivatives() {
    assert_eq!(forward::gradient(f, EMPTY), none());
    let j = forward::jacobian(g, EMPTY);
    assert_eq!((j.nrows(), j.ncols()), (2, 0));
    let (y, jv) = forward::jvp(g, EMPTY, EMPTY);
    assert_eq!((y, jv), (vec![2.0 * f0(), -1.0], vec![0.0, 0.0]));
}
