//! Linear algebra on AD numbers, one block operation per call.
//!
//! Each function takes and returns faer or nalgebra matrices (or `Vec`s as column vectors)
//! of any scalar type, and is a single primitive to mixad: under reverse mode one tape
//! node holding the operation's pullback, not `O(n³)` scalar nodes; under forward mode the
//! operation evaluated in dual arithmetic. The formulas ([`crate::rules::linalg`]) are
//! written in the scalar's own arithmetic, so every operation is differentiable to any
//! order (Hessians, HVPs, nesting).
//!
//! ```
//! use nalgebra::{DMatrix, DVector};
//! // Gaussian negative log-likelihood (up to a constant) of y under N(0, Σ(θ)).
//! fn nll<S: mixad::Scalar>(theta: &[S], y: &[f64]) -> S {
//!     let n = y.len();
//!     let sigma = DMatrix::from_fn(n, n, |i, j| {
//!         let d = S::cst((i as f64 - j as f64).abs());
//!         let diag = if i == j { theta[1] } else { S::zero() };
//!         theta[0] * num_traits::Float::exp(-d) + diag
//!     });
//!     let y = DVector::from_iterator(n, y.iter().map(|&v| S::cst(v)));
//!     let alpha = mixad::linalg::cholesky_solve(&sigma, &y).unwrap();
//!     let half = S::cst(0.5);
//!     half * mixad::linalg::dot(&y, &alpha) + half * mixad::linalg::log_det_spd(&sigma).unwrap()
//! }
//! let y = [0.3, -0.1, 0.8, 0.2];
//! let g = mixad::gradient(|t| nll(t, &y), &[1.0, 0.5]);
//! let report = mixad::check::check_gradient(|t| nll(t, &y), &[1.0, 0.5]);
//! assert!(report.passed(), "{report}");
//! let h = mixad::hessian(|t| nll(t, &y), &[1.0, 0.5]);
//! assert!((h[(0, 1)] - h[(1, 0)]).abs() == 0.0);
//! # let _ = g;
//! ```
//!
//! Conventions (see [`crate::rules::linalg`]): the SPD operations use the symmetric part of
//! their matrix; a failed factorisation is an `Err` ([`BlockError`]); mismatched shapes
//! panic with a message naming the operation and the shapes.

use crate::rules::linalg::{BlockError, BlockOp};
use crate::Scalar;

/// A dense matrix type the linear-algebra functions accept and return.
///
/// Implemented for nalgebra's `DMatrix` and `DVector`, faer's `Mat` and `Col`, and `Vec`
/// (a column vector).
pub trait Matrix<S>: Sized {
    /// `(rows, columns)`.
    fn shape(&self) -> (usize, usize);
    /// The entries, row by row.
    fn to_row_major(&self) -> Vec<S>;
    /// A matrix of this type from entries row by row.
    fn from_row_major(rows: usize, cols: usize, data: Vec<S>) -> Self;
}

/// The entries of a `rows × cols` matrix read by `get(i, j)`, row by row.
fn row_major<S>((rows, cols): (usize, usize), get: impl Fn(usize, usize) -> S) -> Vec<S> {
    (0..rows * cols).map(|k| get(k / cols, k % cols)).collect()
}

impl<S: Scalar> Matrix<S> for nalgebra::DMatrix<S> {
    fn shape(&self) -> (usize, usize) {
        (self.nrows(), self.ncols())
    }
    fn to_row_major(&self) -> Vec<S> {
        row_major(self.shape(), |i, j| self[(i, j)])
    }
    fn from_row_major(rows: usize, cols: usize, data: Vec<S>) -> Self {
        nalgebra::DMatrix::from_row_slice(rows, cols, &data)
    }
}

impl<S: Scalar> Matrix<S> for nalgebra::DVector<S> {
    fn shape(&self) -> (usize, usize) {
        (self.len(), 1)
    }
    fn to_row_major(&self) -> Vec<S> {
        self.iter().copied().collect()
    }
    fn from_row_major(rows: usize, cols: usize, data: Vec<S>) -> Self {
        assert_eq!(cols, 1, "a DVector holds one column, not {cols}");
        nalgebra::DVector::from_vec(data[..rows].to_vec())
    }
}

impl<S: Scalar> Matrix<S> for faer::Mat<S> {
    fn shape(&self) -> (usize, usize) {
        (self.nrows(), self.ncols())
    }
    fn to_row_major(&self) -> Vec<S> {
        row_major(self.shape(), |i, j| self[(i, j)])
    }
    fn from_row_major(rows: usize, cols: usize, data: Vec<S>) -> Self {
        faer::Mat::from_fn(rows, cols, |i, j| data[i * cols + j])
    }
}

impl<S: Scalar> Matrix<S> for faer::Col<S> {
    fn shape(&self) -> (usize, usize) {
        (self.nrows(), 1)
    }
    fn to_row_major(&self) -> Vec<S> {
        (0..self.nrows()).map(|i| self[i]).collect()
    }
    fn from_row_major(rows: usize, cols: usize, data: Vec<S>) -> Self {
        assert_eq!(cols, 1, "a faer Col holds one column, not {cols}");
        faer::Col::from_fn(rows, |i| data[i])
    }
}

impl<S: Scalar> Matrix<S> for Vec<S> {
    fn shape(&self) -> (usize, usize) {
        (self.len(), 1)
    }
    fn to_row_major(&self) -> Vec<S> {
        self.clone()
    }
    fn from_row_major(_rows: usize, cols: usize, data: Vec<S>) -> Self {
        assert_eq!(cols, 1, "a Vec holds one column, not {cols}");
        data
    }
}

/// Runs `op` on the concatenated entries of `parts`.
fn run<S: Scalar>(op: BlockOp, parts: &[Vec<S>]) -> Result<Vec<S>, BlockError> {
    let x: Vec<S> = parts.concat();
    debug_assert_eq!(x.len(), op.input_len());
    S::block(&op, &x)
}

fn expect_ok<S>(r: Result<Vec<S>, BlockError>) -> Vec<S> {
    r.expect("operations that cannot fail")
}

fn square<S>(a: &impl Matrix<S>, what: &str) -> usize {
    let (r, c) = a.shape();
    assert_eq!(r, c, "linalg::{what}: the matrix is {r} × {c}, not square");
    r
}

fn vector<S>(x: &impl Matrix<S>, what: &str) -> usize {
    let (r, c) = x.shape();
    assert_eq!(
        c, 1,
        "linalg::{what}: expected a column vector, got {r} × {c}"
    );
    r
}

/// `A x`.
///
/// # Panics
/// If `x` is not a column vector with as many entries as `A` has columns.
pub fn matvec<S: Scalar, V: Matrix<S>>(a: &impl Matrix<S>, x: &V) -> V {
    let (rows, cols) = a.shape();
    let n = vector(x, "matvec");
    assert_eq!(
        n, cols,
        "linalg::matvec: A is {rows} × {cols} but x has {n} entries"
    );
    let y = expect_ok(run(
        BlockOp::MatVec { rows, cols },
        &[a.to_row_major(), x.to_row_major()],
    ));
    V::from_row_major(rows, 1, y)
}

/// `A B`.
///
/// # Panics
/// If the inner dimensions differ.
pub fn matmul<S: Scalar, M: Matrix<S>>(a: &M, b: &M) -> M {
    let ((rows, inner), (inner_b, cols)) = (a.shape(), b.shape());
    assert_eq!(
        inner, inner_b,
        "linalg::matmul: A is {rows} × {inner} but B is {inner_b} × {cols}"
    );
    let c = expect_ok(run(
        BlockOp::MatMul { rows, inner, cols },
        &[a.to_row_major(), b.to_row_major()],
    ));
    M::from_row_major(rows, cols, c)
}

/// `x · y`.
///
/// # Panics
/// If the lengths differ or either is not a column vector.
pub fn dot<S: Scalar, V: Matrix<S>>(x: &V, y: &V) -> S {
    let (n, m) = (vector(x, "dot"), vector(y, "dot"));
    assert_eq!(n, m, "linalg::dot: x has {n} entries but y has {m}");
    expect_ok(run(
        BlockOp::Dot { len: n },
        &[x.to_row_major(), y.to_row_major()],
    ))[0]
}

/// `Σ xᵢ` over every entry.
pub fn sum<S: Scalar>(x: &impl Matrix<S>) -> S {
    let (r, c) = x.shape();
    expect_ok(run(BlockOp::Sum { len: r * c }, &[x.to_row_major()]))[0]
}

/// The Euclidean (Frobenius, for a matrix) norm; its gradient and Hessian at 0 are 0 (as
/// `hypot`'s at the origin), and an empty matrix has norm 0.
///
/// Computed scaled, like `hypot`, so no square overflows or underflows: the value,
/// gradient and Hessian are accurate in every mode wherever they are representable (for
/// the Hessian, `‖x‖` from about 1e-300 to 1e300), even with entries of very different
/// magnitudes.
///
/// ```
/// let x: Vec<f64> = vec![3e-300, -4e-300];
/// assert!((mixad::linalg::norm(&x) - 5e-300).abs() < 1e-314);
/// let g: Vec<f64> = mixad::gradient(|v| mixad::linalg::norm(&v.to_vec()), &[3e300, 4e300]);
/// assert!((g[0] - 0.6).abs() < 1e-15 && (g[1] - 0.8).abs() < 1e-15);
/// ```
pub fn norm<S: Scalar>(x: &impl Matrix<S>) -> S {
    let (r, c) = x.shape();
    expect_ok(run(BlockOp::Norm { len: r * c }, &[x.to_row_major()]))[0]
}

/// `xᵀ A x`.
///
/// # Panics
/// If `A` is not square or `x` does not match it.
pub fn quad_form<S: Scalar, V: Matrix<S>>(a: &impl Matrix<S>, x: &V) -> S {
    let n = square(a, "quad_form");
    let m = vector(x, "quad_form");
    assert_eq!(
        n, m,
        "linalg::quad_form: A is {n} × {n} but x has {m} entries"
    );
    expect_ok(run(
        BlockOp::QuadForm { n },
        &[a.to_row_major(), x.to_row_major()],
    ))[0]
}

fn rhs_shape<S>(n: usize, b: &impl Matrix<S>, what: &str) -> usize {
    let (r, c) = b.shape();
    assert_eq!(r, n, "linalg::{what}: A is {n} × {n} but B has {r} rows");
    c
}

/// `A⁻¹ B` (LU with partial pivoting); `B` may be a vector or a matrix.
///
/// # Errors
/// [`BlockError::Singular`] if `A` is singular.
///
/// # Panics
/// If `A` is not square or `B` has the wrong number of rows.
pub fn solve<S: Scalar, B: Matrix<S>>(a: &impl Matrix<S>, b: &B) -> Result<B, BlockError> {
    let n = square(a, "solve");
    let cols = rhs_shape(n, b, "solve");
    let x = run(
        BlockOp::Solve { n, cols },
        &[a.to_row_major(), b.to_row_major()],
    )?;
    Ok(B::from_row_major(n, cols, x))
}

/// The lower-triangular Cholesky factor `L` of SPD `A` (`L Lᵀ = A`), zeros above the
/// diagonal. Uses the symmetric part of `A`.
///
/// # Errors
/// [`BlockError::NotPositiveDefinite`] if `A` is not positive definite.
pub fn cholesky<S: Scalar, M: Matrix<S>>(a: &M) -> Result<M, BlockError> {
    let n = square(a, "cholesky");
    let l = run(BlockOp::Cholesky { n }, &[a.to_row_major()])?;
    Ok(M::from_row_major(n, n, l))
}

/// `A⁻¹ B` for SPD `A`, through its Cholesky factor.
///
/// # Errors
/// [`BlockError::NotPositiveDefinite`] if `A` is not positive definite.
pub fn cholesky_solve<S: Scalar, B: Matrix<S>>(a: &impl Matrix<S>, b: &B) -> Result<B, BlockError> {
    let n = square(a, "cholesky_solve");
    let cols = rhs_shape(n, b, "cholesky_solve");
    let x = run(
        BlockOp::CholeskySolve { n, cols },
        &[a.to_row_major(), b.to_row_major()],
    )?;
    Ok(B::from_row_major(n, cols, x))
}

/// `ln det A` for SPD `A` (twice the sum of the logs of the Cholesky factor's diagonal).
///
/// # Errors
/// [`BlockError::NotPositiveDefinite`] if `A` is not positive definite.
pub fn log_det_spd<S: Scalar>(a: &impl Matrix<S>) -> Result<S, BlockError> {
    let n = square(a, "log_det_spd");
    Ok(run(BlockOp::LogDetSpd { n }, &[a.to_row_major()])?[0])
}

/// `ln |det A|` (LU).
///
/// # Errors
/// [`BlockError::Singular`] if `A` is singular.
pub fn log_abs_det<S: Scalar>(a: &impl Matrix<S>) -> Result<S, BlockError> {
    let n = square(a, "log_abs_det");
    Ok(run(BlockOp::LogAbsDet { n }, &[a.to_row_major()])?[0])
}

/// `A⁻¹` (LU).
///
/// # Errors
/// [`BlockError::Singular`] if `A` is singular.
pub fn inverse<S: Scalar, M: Matrix<S>>(a: &M) -> Result<M, BlockError> {
    let n = square(a, "inverse");
    let inv = run(BlockOp::Inverse { n }, &[a.to_row_major()])?;
    Ok(M::from_row_major(n, n, inv))
}
