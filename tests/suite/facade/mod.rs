//! Tests `src/facade.rs`: nalgebra on AD numbers. Values the façade must keep equal to
//! `f64`'s: `values.rs`.
//!
//! nalgebra's decompositions and predicates on AD numbers behave exactly as on `f64`, in
//! every mode, at points with exact zeros and at exactly singular matrices.
//!
//! Each probe is one generic function of `x: &[T]`, `T: RealField + Copy` ([`Probe::f`]): it
//! builds a small matrix from `x`, runs one of nalgebra's decompositions or predicates and
//! reduces the result to a number, with a smooth fallback wherever nalgebra says `None` or
//! `false`. Probes: `try_inverse` (2×2, 3×3, 4×4 closed forms, 5×5 by LU), `lu()` with
//! `solve`, `is_invertible`, `try_inverse`, `determinant`, `full_piv_lu`, `qr()` with
//! `solve`, `r`, `q`, `is_invertible`, `col_piv_qr`, `cholesky`, `symmetric_eigen`, `svd`
//! (nalgebra's general, 3×3 and 2×2 paths), `is_zero`/`is_one` on scalars and matrices,
//! and `approx::relative_eq` choosing the algorithm. Points: generic ones, and ones with
//! exact zeros (diagonal, permutation, identity) or exactly singular (`[[1, 2], [2, 4]]`,
//! a zero column, rank one, zero).
//!
//! At every point of every probe:
//! - values and `Some`/`None`: identical to `f64` (NaN for NaN) in reverse mode
//!   (`Var<f64>`), `forward::gradient` (`DualVec`), `forward::jvp` and `forward::derivative`
//!   (`Dual`), the dense Hessian, `hvp`, the sparse Hessian, reverse over forward
//!   (`reverse::gradient` at `S = Dual<f64>`), forward over reverse (`forward::jvp` at
//!   `S = Var<f64>` inside `reverse::gradient`), forward over forward and reverse over
//!   reverse;
//! - first derivatives: every mode agrees with reverse mode; second derivatives: every
//!   mode agrees with the dense Hessian; and both agree with finite differences
//!   (`mixad::check`) where the probe is smooth, with the fallback's or hand-written
//!   derivatives on the branch taken ([`Regime`] says which applies where);
//! - recordings: `mixad::record`'s gradient, dense Hessian and sparse Hessian, recorded at
//!   each point and evaluated at every other, give what a fresh call gives there; where a
//!   `Some`/`None` or `true`/`false` flips, the recording refuses (`try_value_and_gradient`)
//!   and re-records once (`rerecord_count`).
//!
//! At non-smooth points of the algorithms (a Householder reflection of a zero vector, the
//! norm of a zero column), nested modes' first derivatives can be NaN where the `f64`
//! modes' are finite: a mixad bug, kept as the ignored
//! `nested_first_derivatives_equal_the_f64_ones_at_degenerate_points`.

mod values;

use std::cell::Cell;

use mixad::forward::{self, Dual};
use mixad::reverse::{self, Var};
use nalgebra::{DMatrix, DVector, Matrix2, Matrix3, RealField};
use num_traits::{One, Zero};

// ---------------------------------------------------------------------------------------
// User code, written once
// ---------------------------------------------------------------------------------------

fn c<T: RealField + Copy>(v: f64) -> T {
    nalgebra::convert(v)
}

/// `Σ w_k v_k` with distinct weights, so no entry can cancel another.
fn weigh<'a, T: RealField + Copy>(v: impl IntoIterator<Item = &'a T>) -> T {
    v.into_iter().enumerate().fold(T::zero(), |s, (k, &e)| {
        s + e * c::<T>(1.0 + 0.25 * k as f64)
    })
}

/// What a probe returns when nalgebra says `None`/`false`: `Σ (k+1)/2 x_k² − 10`.
fn fallback<T: RealField + Copy>(x: &[T]) -> T {
    x.iter().enumerate().fold(c(-10.0), |s, (k, &e)| {
        s + c::<T>(0.5 * (k + 1) as f64) * e * e
    })
}

fn fallback_gradient(x: &[f64]) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(k, e)| (k + 1) as f64 * e)
        .collect()
}

/// `[[x0, x1, x2], [x3, x4, x5], [x6, x7, x8]]`.
fn general3<T: RealField + Copy>(x: &[T]) -> DMatrix<T> {
    DMatrix::from_row_slice(3, 3, &x[..9])
}

/// `[[x0, x1, x2], [x1, x3, x4], [x2, x4, x5]]`.
fn symmetric3<T: RealField + Copy>(x: &[T]) -> DMatrix<T> {
    let idx = [0, 1, 2, 1, 3, 4, 2, 4, 5];
    DMatrix::from_row_slice(3, 3, &idx.map(|i| x[i]))
}

/// `[[A, 0], [0, I]]`, `n × n`: nalgebra inverts `n ≤ 4` in closed form, larger by LU.
fn embedded<T: RealField + Copy>(a: &DMatrix<T>, n: usize) -> DMatrix<T> {
    DMatrix::from_fn(n, n, |i, j| {
        if i < a.nrows() && j < a.ncols() {
            a[(i, j)]
        } else if i == j {
            T::one()
        } else {
            T::zero()
        }
    })
}

fn rhs<T: RealField + Copy>() -> DVector<T> {
    DVector::from_column_slice(&[c(1.0), c(-2.0), c(0.5)])
}

/// Each probe: a decomposition, its predicate, and a reduction to one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// `Matrix2::try_inverse` (closed form, `determinant.is_zero()`).
    Inverse2,
    /// `DMatrix` 3×3 `try_inverse` (closed form).
    Inverse3,
    /// `DMatrix` 4×4 `try_inverse` (cofactors).
    Inverse4,
    /// `DMatrix` 5×5 `try_inverse` (LU with partial pivoting, `try_invert_to`).
    Inverse5,
    /// `lu().solve(b)`.
    LuSolve,
    /// `lu().is_invertible()`, then `lu().try_inverse()`.
    LuInvertible,
    /// `lu().determinant()` (always defined) plus `Matrix::determinant`.
    LuDeterminant,
    /// `full_piv_lu()`: `is_invertible`, `determinant`, `solve`.
    FullPivLu,
    /// `qr().solve(b)`.
    QrSolve,
    /// `qr().r()` and `qr().q()` (always defined), `qr().is_invertible()`.
    QrFactors,
    /// `col_piv_qr()`: `solve`, `r()`, `determinant`.
    ColPivQr,
    /// `cholesky()` (Option): `l()`, `solve`, `determinant`.
    Cholesky,
    /// `symmetric_eigen().eigenvalues`: `tr A + tr A²/2 + tr A³/10` by the eigenvalues.
    SymmetricEigen,
    /// `DMatrix` 3×3 `svd(true, true)` (general bidiagonal path): sorted singular values
    /// and `U Σ Vᵀ`.
    Svd,
    /// `Matrix3::svd(true, true)` (nalgebra's special 3×3 path).
    Svd3,
    /// `Matrix2::svd(true, true)` (nalgebra's special 2×2 path).
    Svd2,
    /// `is_zero` / `is_one` on the scalars and on a `Matrix2`.
    ZeroOne,
    /// `approx::relative_eq` on matrices picks the algorithm: symmetric eigen if `A ≈ Aᵀ`.
    Approx,
}

impl Probe {
    /// The decomposition's reduction, `None` where nalgebra says it cannot.
    fn parts<T: RealField + Copy>(self, x: &[T]) -> Option<T> {
        match self {
            Probe::Inverse2 => Matrix2::from_row_slice(x)
                .try_inverse()
                .map(|inv| weigh(inv.iter())),
            Probe::Inverse3 => general3(x).try_inverse().map(|inv| weigh(inv.iter())),
            Probe::Inverse4 => embedded(&general3(x), 4)
                .try_inverse()
                .map(|inv| weigh(inv.iter())),
            Probe::Inverse5 => embedded(&general3(x), 5)
                .try_inverse()
                .map(|inv| weigh(inv.iter())),
            Probe::LuSolve => general3(x).lu().solve(&rhs()).map(|s| weigh(s.iter())),
            Probe::LuInvertible => {
                let lu = general3(x).lu();
                if lu.is_invertible() {
                    let inv = lu.try_inverse().expect("is_invertible promised an inverse");
                    Some(weigh(inv.iter()))
                } else {
                    None
                }
            }
            Probe::LuDeterminant => {
                let a = general3(x);
                Some(a.clone().lu().determinant() + c::<T>(0.5) * a.determinant())
            }
            Probe::FullPivLu => {
                let lu = general3(x).full_piv_lu();
                let det = lu.determinant();
                if lu.is_invertible() {
                    let s = lu.solve(&rhs()).expect("is_invertible promised a solve");
                    Some(det + weigh(s.iter()))
                } else {
                    None
                }
            }
            Probe::QrSolve => general3(x).qr().solve(&rhs()).map(|s| weigh(s.iter())),
            Probe::QrFactors => {
                let qr = general3(x).qr();
                let r = weigh(qr.r().iter());
                let q = weigh(qr.q().iter());
                let flag = if qr.is_invertible() { c(1.0) } else { c(-1.0) };
                Some(r + q * c(0.5) + flag)
            }
            Probe::ColPivQr => {
                let qr = general3(x).col_piv_qr();
                let r = weigh(qr.r().iter());
                let det = qr.determinant();
                qr.solve(&rhs()).map(|s| weigh(s.iter()) + r + det)
            }
            Probe::Cholesky => symmetric3(x).cholesky().map(|ch| {
                let s = ch.solve(&rhs());
                weigh(ch.l().iter()) + weigh(s.iter()) + ch.determinant()
            }),
            Probe::SymmetricEigen => Some(eigen_invariants(symmetric3(x))),
            Probe::Svd => {
                let svd = general3(x).svd(true, true);
                let sigma = weigh(svd.singular_values.iter());
                let back = svd.recompose().expect("U and Vᵀ were asked for");
                Some(sigma + weigh(back.iter()))
            }
            Probe::Svd3 => {
                let svd = Matrix3::from_row_slice(x).svd(true, true);
                let sigma = weigh(svd.singular_values.iter());
                let back = svd.recompose().expect("U and Vᵀ were asked for");
                Some(sigma + weigh(back.iter()))
            }
            Probe::Svd2 => {
                let svd = Matrix2::from_row_slice(x).svd(true, true);
                let sigma = weigh(svd.singular_values.iter());
                let back = svd.recompose().expect("U and Vᵀ were asked for");
                Some(sigma + weigh(back.iter()))
            }
            Probe::ZeroOne => zero_one(x),
            Probe::Approx => {
                let a = general3(x);
                let eps = c::<T>(1e-12);
                if a.relative_eq(&a.transpose(), eps, eps) {
                    Some(eigen_invariants(a))
                } else {
                    None
                }
            }
        }
    }

    /// The probe as user code: the reduction, or the fallback.
    fn f<T: RealField + Copy>(self, x: &[T]) -> T {
        self.parts(x).unwrap_or_else(|| fallback(x))
    }

    /// The decisions that pick the probe's branch at `f64`: a recording made where they
    /// differ must not be replayed.
    fn branch(self, x: &[f64]) -> Vec<bool> {
        let mut b = vec![self.parts(x).is_some()];
        match self {
            Probe::ZeroOne => b.extend(x.iter().flat_map(|e| [*e == 0.0, *e == 1.0])),
            Probe::QrFactors => b.push(general3(x).qr().is_invertible()),
            _ => {}
        }
        b
    }

    fn points(self) -> Vec<Point> {
        match self {
            Probe::Inverse2 | Probe::Svd2 | Probe::ZeroOne => points2(),
            Probe::Cholesky | Probe::SymmetricEigen => points_sym3(),
            _ => points3(),
        }
    }

    /// What the derivatives at `point` can be checked against.
    fn regime(self, point: &Point) -> Regime {
        if self.parts(&point.x).is_none() {
            return Regime::Fallback;
        }
        match (self, point.kind) {
            (Probe::ZeroOne, _) => Regime::Analytic,
            // Only symmetric matrices take the eigen branch: every such point is on the
            // boundary of the branch.
            (Probe::Approx, _) => Regime::Degenerate,
            (_, Kind::Generic) => Regime::Smooth,
            // At A = 0 nalgebra skips scaling A by 1/max|aᵢⱼ| but still multiplies the
            // eigenvalues by max|aᵢⱼ| = 0: a zero gradient on that branch.
            (Probe::SymmetricEigen, _) if point.name == "zero" => Regime::Degenerate,
            // An exact zero below the diagonal deflates the tridiagonal QR iteration.
            (Probe::SymmetricEigen, _) => Regime::FirstOrder,
            // Ties between column norms: the pivot order (so R) jumps nearby.
            (Probe::ColPivQr, _) if point.name == "identity" => Regime::Degenerate,
            // LU's last pivot is an exact 0 here: the determinant is still LU's product of
            // pivots, with the cofactors as its gradient.
            (Probe::LuDeterminant, _) if point.name == "row 2 = 2 row 1" => Regime::Smooth,
            // Householder reflections of zero vectors are skipped; repeated singular values.
            (Probe::Svd | Probe::Svd3, _) => Regime::Degenerate,
            (Probe::Svd2, _) if point.name == "identity" => Regime::Degenerate,
            (_, Kind::Zeros) => Regime::Smooth,
            (_, Kind::Singular) => Regime::Degenerate,
        }
    }
}

/// What a point is for a probe's derivatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Regime {
    /// The probe is smooth around the point: every mode's first and second derivatives
    /// agree, and agree with finite differences.
    Smooth,
    /// First derivatives are the function's (finite differences apply); second derivatives
    /// are those of the branch the algorithm took at an exact zero (a deflation), which
    /// every mode agrees on.
    FirstOrder,
    /// The fallback branch: the fallback's derivatives, in every mode.
    Fallback,
    /// [`Probe::ZeroOne`]: the derivatives of the branch taken, written out by hand.
    Analytic,
    /// A non-smooth point of the algorithm (a Householder reflection of a zero vector, the
    /// norm of a zero column, a pivot of size 1e-16, a branch boundary): the values in
    /// every mode, and the first derivatives of the `f64`-level modes, must still agree.
    Degenerate,
}

/// `tr A + tr A²/2 + tr A³/10` of a symmetric `A`, through its eigenvalues.
fn eigen_invariants<T: RealField + Copy>(a: DMatrix<T>) -> T {
    let eig = a.symmetric_eigen();
    eig.eigenvalues.iter().fold(T::zero(), |s, &l| {
        s + l + c::<T>(0.5) * l * l + c::<T>(0.1) * l * l * l
    })
}

/// `is_zero` and `is_one` on a `Matrix2` and on its entries: `None` for the zero matrix,
/// `x0 x3 + 5 (x1 − x2)` for the identity, else a sum of one term per entry.
fn zero_one<T: RealField + Copy>(x: &[T]) -> Option<T> {
    let m = Matrix2::from_row_slice(x);
    if m.is_zero() {
        return None;
    }
    if m.is_one() {
        return Some(x[0] * x[3] + c::<T>(5.0) * (x[1] - x[2]));
    }
    Some(
        x.iter()
            .enumerate()
            .fold(T::zero(), |s, (k, &e)| s + zero_one_term(k, e)),
    )
}

/// `w (e + 2)` where `e` is 0, `w e³` where it is 1, else `w sin e`, with `w = k + 1`.
fn zero_one_term<T: RealField + Copy>(k: usize, e: T) -> T {
    let w = c::<T>(1.0 + k as f64);
    if e.is_zero() {
        w * (e + c(2.0))
    } else if e.is_one() {
        w * e * e * e
    } else {
        w * e.sin()
    }
}

/// The gradient and Hessian (row-major) of the branch [`zero_one`] takes at `x` (not the
/// zero matrix).
fn zero_one_derivatives(x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut h = vec![0.0; 16];
    if x == [1.0, 0.0, 0.0, 1.0] {
        h[3] = 1.0;
        h[12] = 1.0;
        return (vec![x[3], 5.0, -5.0, x[0]], h);
    }
    let g = x
        .iter()
        .enumerate()
        .map(|(k, &e)| {
            let w = 1.0 + k as f64;
            let (d1, d2) = if e == 0.0 {
                (w, 0.0)
            } else if e == 1.0 {
                (3.0 * w, 6.0 * w)
            } else {
                (w * e.cos(), -w * e.sin())
            };
            h[5 * k] = d2;
            d1
        })
        .collect();
    (g, h)
}

fn fallback_hessian(n: usize) -> Vec<f64> {
    (0..n * n)
        .map(|k| {
            if k / n == k % n {
                (k / n + 1) as f64
            } else {
                0.0
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Points
// ---------------------------------------------------------------------------------------

/// What the matrix built from a point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No exact zeros, no structure.
    Generic,
    /// Exact zeros (diagonal, permutation, identity), but invertible.
    Zeros,
    /// Exactly singular.
    Singular,
}

struct Point {
    name: &'static str,
    x: Vec<f64>,
    kind: Kind,
}

fn pt(name: &'static str, x: &[f64], kind: Kind) -> Point {
    Point {
        name,
        x: x.to_vec(),
        kind,
    }
}

/// 2×2, row-major.
fn points2() -> Vec<Point> {
    vec![
        pt("generic", &[1.3, -0.4, 0.7, 2.1], Kind::Generic),
        pt("diagonal", &[2.0, 0.0, 0.0, 3.0], Kind::Zeros),
        pt("anti-diagonal", &[0.0, 1.5, -2.0, 0.0], Kind::Zeros),
        pt("identity", &[1.0, 0.0, 0.0, 1.0], Kind::Zeros),
        pt("[[1, 2], [2, 4]]", &[1.0, 2.0, 2.0, 4.0], Kind::Singular),
        pt("zero column", &[0.0, 1.0, 0.0, 2.0], Kind::Singular),
        pt("zero", &[0.0; 4], Kind::Singular),
    ]
}

/// 3×3, row-major.
fn points3() -> Vec<Point> {
    #[rustfmt::skip]
    let v = vec![
        pt("generic", &[1.3, -0.4, 0.2, 0.7, 2.1, -0.9, 0.5, 0.3, 1.7], Kind::Generic),
        pt("symmetric", &[4.0, 1.0, 0.5, 1.0, 3.0, -0.3, 0.5, -0.3, 2.0], Kind::Generic),
        pt("diagonal", &[2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, -1.0], Kind::Zeros),
        pt("permutation", &[0.0, 2.0, 0.0, 0.0, 0.0, -3.0, 1.5, 0.0, 0.0], Kind::Zeros),
        pt("identity", &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], Kind::Zeros),
        // Exactly singular for LU; QR and SVD see a 7e-16 pivot.
        pt("row 2 = 2 row 1", &[1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 1.0, 0.0, 1.0], Kind::Singular),
        pt("zero column", &[0.0, 1.0, 2.0, 0.0, 3.0, 1.0, 0.0, -1.0, 4.0], Kind::Singular),
        pt("rank one", &[1.0, 2.0, 0.0, 2.0, 4.0, 0.0, 0.0, 0.0, 0.0], Kind::Singular),
        pt("zero", &[0.0; 9], Kind::Singular),
    ];
    v
}

/// Symmetric 3×3 from its upper triangle `[a00, a01, a02, a11, a12, a22]`.
fn points_sym3() -> Vec<Point> {
    #[rustfmt::skip]
    let v = vec![
        pt("generic SPD", &[4.0, 1.0, 0.5, 3.0, -0.3, 2.0], Kind::Generic),
        pt("diagonal", &[3.0, 0.0, 0.0, 2.0, 0.0, 1.0], Kind::Zeros),
        pt("2 I", &[2.0, 0.0, 0.0, 2.0, 0.0, 2.0], Kind::Zeros),
        pt("indefinite", &[1.0, 2.0, 0.0, 1.0, 0.0, 1.0], Kind::Zeros),
        pt("singular PSD", &[1.0, 2.0, 0.0, 4.0, 0.0, 1.0], Kind::Singular),
        pt("zero diagonal", &[0.0, 1.0, 0.0, 0.0, 0.0, 1.0], Kind::Zeros),
        pt("zero", &[0.0; 6], Kind::Singular),
    ];
    v
}

// ---------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------

/// The same value: identical bits, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn identical(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(*x, *y))
}

/// Every entry within `tol` relative to the largest finite entry of `want` (at least 1);
/// NaN exactly where `want` has NaN.
fn close(got: &[f64], want: &[f64], tol: f64) -> bool {
    let scale = want
        .iter()
        .filter(|w| w.is_finite())
        .fold(1.0f64, |m, w| m.max(w.abs()));
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| same(*g, *w) || (g - w).abs() <= tol * scale)
}

/// Collects every failure of one probe, so a run reports all of them at once.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    #[track_caller]
    fn assert_none(self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{what}: {} failures:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

fn mat_vec(h: &[f64], v: &[f64]) -> Vec<f64> {
    h.chunks(v.len()).map(|row| dot(row, v)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Row-major entries.
fn entries(h: &faer::Mat<f64>) -> Vec<f64> {
    let n = h.nrows();
    (0..n * n).map(|k| h[(k / n, k % n)]).collect()
}

// ---------------------------------------------------------------------------------------
// Every mode at one point
// ---------------------------------------------------------------------------------------

/// A direction for JVPs and HVPs.
fn direction(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 - 0.3 * i as f64).collect()
}

/// `p.f(x)`, noting in `some` whether nalgebra answered `Some`/`true` at this type.
fn noting<T: RealField + Copy>(p: Probe, x: &[T], some: &Cell<Option<bool>>) -> T {
    let parts = p.parts(x);
    some.set(Some(parts.is_some()));
    parts.unwrap_or_else(|| fallback(x))
}

/// One mode's answers at a point.
struct Answer {
    mode: &'static str,
    value: f64,
    /// Whether nalgebra answered `Some`/`true` at this mode's type.
    some: Option<bool>,
    /// `∇f`, where the mode gives it.
    gradient: Option<Vec<f64>>,
    /// `∇f·v`, where the mode gives it.
    slope: Option<f64>,
    /// `H·v`, where the mode gives it.
    hv: Option<Vec<f64>>,
    /// `vᵀHv`, where the mode gives it.
    vhv: Option<f64>,
    /// The full Hessian, row-major, where the mode gives it.
    hessian: Option<Vec<f64>>,
    /// Whether the mode's first derivatives are computed in nested arithmetic (the value
    /// part of a dual, a dual-valued adjoint) rather than in `f64`.
    nested: bool,
}

impl Answer {
    fn new(mode: &'static str, value: f64, some: &Cell<Option<bool>>) -> Self {
        Answer {
            mode,
            value,
            some: some.take(),
            gradient: None,
            slope: None,
            hv: None,
            vhv: None,
            hessian: None,
            nested: false,
        }
    }
}

/// Runs `p` at `x` in every mode.
fn every_mode(p: Probe, x: &[f64], d: &[f64]) -> Vec<Answer> {
    let some = Cell::new(None);
    let mut out = Vec::new();

    // Reverse (Var<f64>).
    let (v, g) = mixad::value_and_gradient(|z| noting(p, z, &some), x);
    let mut a = Answer::new("reverse", v, &some);
    a.gradient = Some(g);
    out.push(a);

    // Forward, DualVec lanes.
    let mut fv = f64::NAN;
    let g = forward::gradient(
        |z| {
            let y = noting(p, z, &some);
            fv = y.value;
            y
        },
        x,
    );
    let mut a = Answer::new("forward::gradient", fv, &some);
    a.gradient = Some(g);
    out.push(a);

    // Forward, one Dual: jvp, and derivative along the line x + t v.
    let (y, jv) = forward::jvp(|z| [noting(p, z, &some)], x, d);
    let mut a = Answer::new("forward::jvp", y[0], &some);
    a.slope = Some(jv[0]);
    out.push(a);
    let (y, dy) = forward::value_and_derivative(
        |t| {
            let z: Vec<Dual<f64>> = x
                .iter()
                .zip(d)
                .map(|(&xi, &di)| Dual::constant(xi) + t * di)
                .collect();
            noting(p, &z, &some)
        },
        0.0,
    );
    let mut a = Answer::new("forward::derivative", y, &some);
    a.slope = Some(dy);
    out.push(a);

    // Dense Hessian.
    let (v, g, h) = mixad::value_gradient_hessian(|z| noting(p, z, &some), x);
    let mut a = Answer::new("hessian", v, &some);
    a.gradient = Some(g);
    a.hessian = Some(entries(&h));
    out.push(a);

    // HVP (Var<Dual<f64>>).
    let (v, g, hv) = mixad::value_gradient_hvp(|z| noting(p, z, &some), x, d);
    let mut a = Answer::new("hvp", v, &some);
    a.gradient = Some(g);
    a.hv = Some(hv);
    a.nested = true;
    out.push(a);

    // Sparse Hessian: the one-shot API and a recording's value and gradient.
    let h = mixad::sparse_hessian(|z| noting(p, z, &some), x);
    let (v, g, _) = mixad::record(|z| noting(p, z, &some), x).value_gradient_sparse_hessian(x);
    let mut a = Answer::new("sparse_hessian", v, &some);
    a.gradient = Some(g);
    a.hessian = Some(entries(&h.to_dense()));
    a.nested = true;
    out.push(a);

    // Reverse over forward: reverse::gradient at S = Dual<f64>, inputs x + v ε.
    let seeded: Vec<Dual<f64>> = x.iter().zip(d).map(|(&a, &b)| Dual::new(a, b)).collect();
    let (y, g) = reverse::value_and_gradient(|z: &[Var<Dual<f64>>]| noting(p, z, &some), &seeded);
    let mut a = Answer::new("reverse at Dual", y.value, &some);
    a.slope = Some(y.tangent);
    a.gradient = Some(g.iter().map(|e| e.value).collect());
    a.hv = Some(g.iter().map(|e| e.tangent).collect());
    a.nested = true;
    out.push(a);

    // Forward over reverse: forward::jvp at S = Var<f64> inside reverse::gradient.
    let mut inner = f64::NAN;
    let (slope, hv) = reverse::value_and_gradient(
        |z: &[Var<f64>]| {
            let dz: Vec<Var<f64>> = d.iter().map(|&e| Var::constant(e)).collect();
            let (y, jv) = forward::jvp(|w| [noting(p, w, &some)], z, &dz);
            inner = y[0].value();
            jv[0]
        },
        x,
    );
    let mut a = Answer::new("jvp inside reverse", inner, &some);
    a.slope = Some(slope);
    a.hv = Some(hv);
    a.nested = true;
    out.push(a);

    // Forward over forward, seeded by hand: vᵀHv.
    let dd: Vec<Dual<Dual<f64>>> = x
        .iter()
        .zip(d)
        .map(|(&a, &b)| Dual::new(Dual::new(a, b), Dual::new(b, 0.0)))
        .collect();
    let y = noting(p, &dd, &some);
    let mut a = Answer::new("Dual<Dual>", y.value.value, &some);
    a.slope = Some(y.value.tangent);
    a.vhv = Some(y.tangent.tangent);
    out.push(a);

    // Reverse over reverse: H·v as the gradient of ∇f·v.
    let mut inner = (f64::NAN, vec![]);
    let hv = reverse::gradient(
        |z: &[Var<f64>]| {
            let (y, g) = reverse::value_and_gradient(|w: &[Var<Var<f64>>]| noting(p, w, &some), z);
            inner = (y.value(), g.iter().map(|e| e.value()).collect());
            g.iter()
                .zip(d)
                .fold(Var::constant(0.0), |s, (&gi, &di)| s + gi * di)
        },
        x,
    );
    let mut a = Answer::new("reverse over reverse", inner.0, &some);
    a.gradient = Some(inner.1);
    a.hv = Some(hv);
    a.nested = true;
    out.push(a);
    out
}

/// Every mode's value, `Some`/`None`, derivatives at one point, against `f64`, against
/// each other and against what [`Probe::regime`] says they must be.
fn check_point(p: Probe, point: &Point, fails: &mut Failures) {
    let x = &point.x[..];
    let n = x.len();
    let d = direction(n);
    let regime = p.regime(point);
    let want = p.f::<f64>(x);
    let want_some = p.parts::<f64>(x).is_some();
    let answers = every_mode(p, x, &d);
    let at = |mode: &str| format!("{p:?} at {} ({mode}, {regime:?})", point.name);

    // Values and branches: in every mode, at every point.
    for a in &answers {
        fails.check(same(a.value, want), || {
            format!("{}: value {:e}, f64 {want:e}", at(a.mode), a.value)
        });
        fails.check(a.some == Some(want_some), || {
            format!("{}: Some {:?}, f64 {want_some}", at(a.mode), a.some)
        });
    }

    // First derivatives: every f64-level mode agrees with reverse mode at every point;
    // nested ones too except at a degenerate point (see `nested_first_derivatives_...`).
    let grad = answers[0]
        .gradient
        .clone()
        .expect("reverse gives a gradient");
    let slope = dot(&grad, &d);
    for a in &answers {
        if a.nested && regime == Regime::Degenerate {
            continue;
        }
        if let Some(g) = &a.gradient {
            fails.check(close(g, &grad, 1e-10), || {
                format!("{}: gradient {g:?}, reverse {grad:?}", at(a.mode))
            });
        }
        if let Some(s) = a.slope {
            fails.check(close(&[s], &[slope], 1e-10), || {
                format!("{}: ∇f·v {s:e}, reverse {slope:e}", at(a.mode))
            });
        }
    }
    if regime == Regime::Degenerate {
        return;
    }

    // Second derivatives: every mode agrees with the dense Hessian.
    let h = answers[4].hessian.clone().expect("the dense Hessian");
    let hd = mat_vec(&h, &d);
    let vhv = dot(&d, &hd);
    for a in &answers {
        if let Some(g) = &a.hessian {
            fails.check(close(g, &h, 1e-10), || {
                format!("{}: Hessian {g:?}, dense {h:?}", at(a.mode))
            });
        }
        if let Some(hv) = &a.hv {
            fails.check(close(hv, &hd, 1e-10), || {
                format!("{}: H·v {hv:?}, dense {hd:?}", at(a.mode))
            });
        }
        if let Some(s) = a.vhv {
            fails.check(close(&[s], &[vhv], 1e-10), || {
                format!("{}: vᵀHv {s:e}, dense {vhv:e}", at(a.mode))
            });
        }
    }

    // ... and with an independent reference.
    match regime {
        Regime::Fallback => {
            let want_g = fallback_gradient(x);
            fails.check(close(&grad, &want_g, 1e-15), || {
                format!(
                    "{}: gradient {grad:?}, fallback's {want_g:?}",
                    at("fallback")
                )
            });
            fails.check(close(&h, &fallback_hessian(n), 1e-15), || {
                format!("{}: Hessian {h:?}, fallback's", at("fallback"))
            });
        }
        Regime::Analytic => {
            let (want_g, want_h) = zero_one_derivatives(x);
            fails.check(close(&grad, &want_g, 1e-15), || {
                format!("{}: gradient {grad:?}, by hand {want_g:?}", at("analytic"))
            });
            fails.check(close(&h, &want_h, 1e-15), || {
                format!("{}: Hessian {h:?}, by hand {want_h:?}", at("analytic"))
            });
        }
        Regime::Smooth | Regime::FirstOrder => {
            let report = mixad::check::check_gradient(|z| p.f(z), x);
            fails.check(report.passed(), || {
                format!("{}: gradient\n{report}", at("finite differences"))
            });
            if regime == Regime::Smooth {
                let report = mixad::check::check_hessian(|z| p.f(z), x);
                fails.check(report.passed(), || {
                    format!("{}: Hessian\n{report}", at("finite differences"))
                });
            }
        }
        Regime::Degenerate => unreachable!(),
    }
}

// ---------------------------------------------------------------------------------------
// Recordings replayed elsewhere
// ---------------------------------------------------------------------------------------

/// Recorded at every point, evaluated at every other: exactly what a fresh call gives
/// there, and a changed branch (`Some` ↔ `None`, `true` ↔ `false`) is refused by
/// `try_value_and_gradient` and re-recorded.
fn check_recordings(p: Probe, fails: &mut Failures) {
    let points = p.points();
    let fresh: Vec<_> = points
        .iter()
        .map(|q| reverse::value_and_gradient(|z| p.f(z), &q.x))
        .collect();
    let fresh_h: Vec<_> = points
        .iter()
        .map(|q| mixad::value_gradient_hessian(|z| p.f(z), &q.x))
        .collect();
    let fresh_s: Vec<_> = points
        .iter()
        .map(|q| {
            let (v, g, h) = mixad::record(|z| p.f(z), &q.x).value_gradient_sparse_hessian(&q.x);
            (v, g, entries(&h.to_dense()))
        })
        .collect();
    let mut flips = 0;
    for (i, a) in points.iter().enumerate() {
        for (j, b) in points.iter().enumerate() {
            let at = |mode: &str| {
                format!(
                    "{p:?} recorded at {}, evaluated at {} ({mode})",
                    a.name, b.name
                )
            };
            let flipped = p.branch(&a.x) != p.branch(&b.x);
            flips += flipped as usize;
            let want = p.f::<f64>(&b.x);

            let mut rec = mixad::record(|z| p.f(z), &a.x);
            if flipped {
                let refused = rec.try_value_and_gradient(&b.x).is_err();
                fails.check(refused, || format!("{}: not refused", at("record")));
            }
            let (v, g) = rec.value_and_gradient(&b.x);
            fails.check(same(v, want), || {
                format!("{}: value {v:e}, f64 {want:e}", at("record"))
            });
            fails.check(identical(&g, &fresh[j].1), || {
                format!("{}: gradient {g:?}, fresh {:?}", at("record"), fresh[j].1)
            });
            let rerecords = rec.rerecord_count();
            if flipped {
                fails.check(rerecords == 1, || {
                    format!("{}: rerecord_count {rerecords}, not 1", at("record"))
                });
            }
            if i == j {
                fails.check(rerecords == 0, || {
                    format!("{}: re-recorded at its own point", at("record"))
                });
            }

            let mut prep = mixad::record(|z| p.f(z), &a.x);
            let (v, g, h) = prep.value_gradient_hessian(&b.x);
            fails.check(same(v, want), || {
                format!("{}: value {v:e}, f64 {want:e}", at("record: hessian"))
            });
            fails.check(identical(&g, &fresh_h[j].1), || {
                format!(
                    "{}: gradient {g:?}, fresh {:?}",
                    at("record: hessian"),
                    fresh_h[j].1
                )
            });
            let (h, want_h) = (entries(&h), entries(&fresh_h[j].2));
            fails.check(close(&h, &want_h, 1e-13), || {
                format!("{}: Hessian {h:?}, fresh {want_h:?}", at("record: hessian"))
            });
            if flipped || i == j {
                let rerecords = prep.rerecord_count();
                fails.check(rerecords == flipped as usize, || {
                    format!("{}: rerecord_count {rerecords}", at("record: hessian"))
                });
            }

            let mut plan = mixad::record(|z| p.f(z), &a.x);
            let (v, g, h) = plan.value_gradient_sparse_hessian(&b.x);
            fails.check(same(v, want), || {
                format!(
                    "{}: value {v:e}, f64 {want:e}",
                    at("record: sparse_hessian")
                )
            });
            fails.check(identical(&g, &fresh_s[j].1), || {
                format!(
                    "{}: gradient {g:?}, fresh {:?}",
                    at("record: sparse_hessian"),
                    fresh_s[j].1
                )
            });
            let h = entries(&h.to_dense());
            fails.check(close(&h, &fresh_s[j].2, 1e-13), || {
                format!(
                    "{}: Hessian {h:?}, fresh {:?}",
                    at("record: sparse_hessian"),
                    fresh_s[j].2
                )
            });
            if flipped || i == j {
                let rerecords = plan.rerecord_count();
                fails.check(rerecords == flipped as usize, || {
                    format!(
                        "{}: rerecord_count {rerecords}",
                        at("record: sparse_hessian")
                    )
                });
            }
        }
    }
    let decides = !matches!(
        p,
        Probe::LuDeterminant | Probe::SymmetricEigen | Probe::Svd | Probe::Svd3 | Probe::Svd2
    );
    fails.check(!decides || flips > 0, || {
        format!("{p:?}: the points never flip its branch")
    });
}

fn run(p: Probe) {
    let mut fails = Failures::default();
    for point in p.points() {
        check_point(p, &point, &mut fails);
    }
    check_recordings(p, &mut fails);
    fails.assert_none(&format!("{p:?}"));
}

macro_rules! probe_tests {
    ($($name:ident => $probe:ident;)+) => {
        $(
            #[test]
            fn $name() {
                run(Probe::$probe);
            }
        )+

        /// Every probe.
        const ALL: &[Probe] = &[$(Probe::$probe),+];
    };
}

probe_tests! {
    try_inverse_2x2 => Inverse2;
    try_inverse_3x3 => Inverse3;
    try_inverse_4x4 => Inverse4;
    try_inverse_5x5_by_lu => Inverse5;
    lu_solve => LuSolve;
    lu_is_invertible_and_try_inverse => LuInvertible;
    lu_determinant => LuDeterminant;
    full_piv_lu => FullPivLu;
    qr_solve => QrSolve;
    qr_r_q_and_is_invertible => QrFactors;
    col_piv_qr => ColPivQr;
    cholesky => Cholesky;
    symmetric_eigen => SymmetricEigen;
    svd_general => Svd;
    svd_3x3 => Svd3;
    svd_2x2 => Svd2;
    is_zero_and_is_one => ZeroOne;
    approx_relative_eq => Approx;
}

// ---------------------------------------------------------------------------------------
// A mixad bug: nested first derivatives at an infinite partial
// ---------------------------------------------------------------------------------------

/// `|x₀|·x₁`, computed as nalgebra computes a column norm, `√(x₀²)·x₁`: differentiable at
/// the origin with gradient 0, which every `f64`-level mode gives.
fn norm_times<T: RealField + Copy>(x: &[T]) -> T {
    (x[0] * x[0]).sqrt() * x[1]
}

/// The same first derivatives from nested arithmetic as from `f64` arithmetic.
///
/// At `x₀ = 0`, `√(x₀²)` has the local partial `+∞`. In `f64` modes it meets an exact
/// zero and is skipped (`reverse_sweep` skips a zero adjoint, `forward::dual::chain_term` a
/// zero tangent), so the gradient is the right 0. In a nested mode the zero it meets is
/// only zero in its value part (`Dual(0, ṫ)` as the adjoint of `√(x₀²)` in `Var<Dual>`, a
/// recorded `Var(0)` as the tangent of `x₀²` in `Dual<Var>`), so `Scalar::is_exact_zero`
/// is false, nothing is skipped, and the value part becomes `0·∞ = NaN`: the first
/// derivatives `mixad::value_gradient_hvp`, `Recording::value_gradient_sparse_hessian`,
/// `forward::jvp` at `S = Var<f64>` and reverse over reverse return are NaN where
/// `mixad::gradient` returns finite numbers. nalgebra's QR and SVD hit it on every zero
/// column or exactly diagonal input.
#[test]
#[ignore = "mixad bug: nested modes give NaN first derivatives where f64 modes give finite ones (0·∞ at sqrt(0): the zero-skip tests the whole nested number, not its value part)"]
fn nested_first_derivatives_equal_the_f64_ones_at_degenerate_points() {
    let mut fails = Failures::default();
    let (x, d) = ([0.0, 0.0], [1.0, 1.0]);
    let want = mixad::gradient(norm_times, &x);
    assert_eq!(want, [0.0, 0.0], "f64 reverse mode");
    assert_eq!(forward::gradient(norm_times, &x), want, "f64 forward");
    assert_eq!(
        forward::jvp(|z| [norm_times(z)], &x, &d).1,
        [0.0],
        "f64 jvp"
    );
    let g = mixad::value_gradient_hvp(norm_times, &x, &d).1;
    fails.check(identical(&g, &want), || {
        format!("|x₀|·x₁ at 0: value_gradient_hvp's gradient {g:?}, gradient {want:?}")
    });
    let g = mixad::record(norm_times, &x)
        .value_gradient_sparse_hessian(&x)
        .1;
    fails.check(identical(&g, &want), || {
        format!("|x₀|·x₁ at 0: value_gradient_sparse_hessian's gradient {g:?}, gradient {want:?}")
    });
    let slope = reverse::value_and_gradient(
        |z: &[Var<f64>]| {
            let dz = [Var::constant(d[0]), Var::constant(d[1])];
            forward::jvp(|w| [norm_times(w)], z, &dz).1[0]
        },
        &x,
    )
    .0;
    fails.check(slope == 0.0, || {
        format!("|x₀|·x₁ at 0: forward::jvp at Var<f64> gives ∇f·v = {slope:e}, f64 gives 0")
    });

    // Every nalgebra probe at its degenerate points.
    for &p in ALL {
        for point in p.points() {
            if p.regime(&point) != Regime::Degenerate {
                continue;
            }
            let d = direction(point.x.len());
            let answers = every_mode(p, &point.x, &d);
            let grad = answers[0]
                .gradient
                .clone()
                .expect("reverse gives a gradient");
            let slope = dot(&grad, &d);
            for a in answers.iter().filter(|a| a.nested) {
                let at = || format!("{p:?} at {} ({})", point.name, a.mode);
                if let Some(g) = &a.gradient {
                    fails.check(close(g, &grad, 1e-10), || {
                        format!("{}: gradient {g:?}, reverse {grad:?}", at())
                    });
                }
                if let Some(s) = a.slope {
                    fails.check(close(&[s], &[slope], 1e-10), || {
                        format!("{}: ∇f·v {s:e}, reverse {slope:e}", at())
                    });
                }
            }
        }
    }
    fails.assert_none("nested first derivatives");
}
