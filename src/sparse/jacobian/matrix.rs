//! [`SparseJacobian`]: the values of a Jacobian in its pattern, and conversions.

use std::sync::Arc;

use faer::sparse::{SparseColMat, SparseRowMat, SymbolicSparseColMat, SymbolicSparseRowMat};
use faer::Mat;

use crate::sparse::jacobian::pattern::JacobianPattern;

/// A sparse `m × n` Jacobian `∂F/∂x`: its pattern ([`JacobianPattern`], compressed rows)
/// and one value per stored entry, in the pattern's order (row by row, columns sorted).
///
/// ```
/// use mixad::reverse::Var;
/// use num_traits::Float;
/// let f = |x: &[Var<f64>]| vec![x[0] * x[1], x[2].exp()];
/// let j = mixad::sparse_jacobian(f, &[2.0, 3.0, 0.0]);
/// assert_eq!((j.nrows(), j.ncols(), j.nnz()), (2, 3, 3));
/// let t: Vec<_> = j.triplets().collect();
/// assert_eq!(t, vec![(0, 0, 3.0), (0, 1, 2.0), (1, 2, 1.0)]);
/// assert_eq!(j.get(1, 0), 0.0); // outside the pattern
/// assert_eq!(j.to_dense()[(0, 1)], 2.0);
/// assert_eq!(j.to_faer().compute_nnz(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct SparseJacobian {
    pattern: Arc<JacobianPattern>,
    values: Vec<f64>,
}

/// The empty `0 × 0` Jacobian: a buffer for
/// [`crate::Recording::values_and_sparse_jacobian_into`] to fill.
impl Default for SparseJacobian {
    fn default() -> Self {
        SparseJacobian {
            pattern: Arc::new(JacobianPattern::empty()),
            values: Vec::new(),
        }
    }
}

impl SparseJacobian {
    /// Takes `pattern` (if it is not already this Jacobian's) and returns the values to
    /// refill, resized to the pattern.
    pub(crate) fn refill(&mut self, pattern: &Arc<JacobianPattern>) -> &mut [f64] {
        if !Arc::ptr_eq(&self.pattern, pattern) {
            self.pattern = pattern.clone();
        }
        self.values.resize(pattern.nnz(), 0.0);
        &mut self.values
    }

    /// Number of rows (outputs), `m`.
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[0]; 4], &[1.0]);
    /// assert_eq!(j.nrows(), 4);
    /// ```
    pub fn nrows(&self) -> usize {
        self.pattern.nrows()
    }

    /// Number of columns (inputs), `n`.
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[0]; 4], &[1.0, 2.0]);
    /// assert_eq!(j.ncols(), 2);
    /// ```
    pub fn ncols(&self) -> usize {
        self.pattern.ncols()
    }

    /// Number of stored entries.
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[0] * x[1]; 4], &[1.0, 2.0]);
    /// assert_eq!(j.nnz(), 8);
    /// ```
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The pattern (shared by every Jacobian of the same plan).
    ///
    /// ```
    /// use num_traits::Float;
    /// let j = mixad::sparse_jacobian(|x| vec![x[1].sin()], &[1.0, 2.0]);
    /// assert_eq!(j.pattern().row(0), &[1]);
    /// ```
    pub fn pattern(&self) -> &JacobianPattern {
        &self.pattern
    }

    /// Row pointers of the compressed-row form (`m + 1` entries).
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[0] * x[1], x[1]], &[1.0, 2.0]);
    /// assert_eq!(j.row_ptr(), &[0, 2, 3]);
    /// ```
    pub fn row_ptr(&self) -> &[usize] {
        self.pattern.row_ptr()
    }

    /// Column of each stored entry (compressed-row order).
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[0] * x[1], x[1]], &[1.0, 2.0]);
    /// assert_eq!(j.col_idx(), &[0, 1, 1]);
    /// ```
    pub fn col_idx(&self) -> &[usize] {
        self.pattern.col_idx()
    }

    /// Value of each stored entry (compressed-row order).
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[0] * x[1], x[1]], &[3.0, 2.0]);
    /// assert_eq!(j.values(), &[2.0, 3.0, 1.0]);
    /// ```
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The stored entries as `(row, col, value)`, row by row (the layout of IPOPT's
    /// `eval_jac_g`, with `iRow`/`jCol` from the first call reused).
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[1], x[0] * 2.0], &[3.0, 2.0]);
    /// let t: Vec<_> = j.triplets().collect();
    /// assert_eq!(t, vec![(0, 1, 1.0), (1, 0, 2.0)]);
    /// ```
    pub fn triplets(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        self.pattern
            .entries()
            .zip(&self.values)
            .map(|((i, j), &v)| (i, j, v))
    }

    /// Entry `(i, j)` (0 outside the pattern).
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[1] * x[1]], &[3.0, 2.0]);
    /// assert_eq!((j.get(0, 0), j.get(0, 1)), (0.0, 4.0));
    /// ```
    ///
    /// # Panics
    /// If `i` or `j` is out of range.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        let (m, n) = (self.nrows(), self.ncols());
        assert!(
            i < m && j < n,
            "SparseJacobian::get: ({i}, {j}) is outside a {m} × {n} matrix"
        );
        self.pattern.position(i, j).map_or(0.0, |k| self.values[k])
    }

    /// The compressed-column form `(col_ptr, row_idx, values)`: column `j`'s entries are
    /// `col_ptr[j]..col_ptr[j + 1]`, rows sorted.
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[1], x[0] * x[1]], &[3.0, 2.0]);
    /// let (col_ptr, row_idx, values) = j.to_csc();
    /// assert_eq!(col_ptr, vec![0, 1, 3]);
    /// assert_eq!(row_idx, vec![1, 0, 1]);
    /// assert_eq!(values, vec![2.0, 1.0, 3.0]);
    /// ```
    pub fn to_csc(&self) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
        let (col_ptr, row_idx, perm) = self.pattern.csc();
        let values = perm.iter().map(|&k| self.values[k]).collect();
        (col_ptr, row_idx, values)
    }

    /// The dense `m × n` matrix (for small problems and tests).
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[1], x[0] * x[1]], &[3.0, 2.0]);
    /// let d = j.to_dense();
    /// assert_eq!((d[(0, 0)], d[(0, 1)], d[(1, 0)], d[(1, 1)]), (0.0, 1.0, 2.0, 3.0));
    /// ```
    pub fn to_dense(&self) -> Mat<f64> {
        let mut d = Mat::zeros(self.nrows(), self.ncols());
        for (i, j, v) in self.triplets() {
            d[(i, j)] = v;
        }
        d
    }

    /// A faer compressed-column matrix.
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[1], x[0] * x[1]], &[3.0, 2.0]);
    /// let a = j.to_faer();
    /// assert_eq!((a.nrows(), a.ncols(), a.compute_nnz()), (2, 2, 3));
    /// ```
    pub fn to_faer(&self) -> SparseColMat<usize, f64> {
        let (col_ptr, row_idx, values) = self.to_csc();
        let symbolic =
            SymbolicSparseColMat::new_checked(self.nrows(), self.ncols(), col_ptr, None, row_idx);
        SparseColMat::new(symbolic, values)
    }

    /// A faer compressed-row matrix (no reordering: the Jacobian's own layout).
    ///
    /// ```
    /// let j = mixad::sparse_jacobian(|x| vec![x[1], x[0] * x[1]], &[3.0, 2.0]);
    /// assert_eq!(j.to_faer_rows().compute_nnz(), 3);
    /// ```
    pub fn to_faer_rows(&self) -> SparseRowMat<usize, f64> {
        let symbolic = SymbolicSparseRowMat::new_checked(
            self.nrows(),
            self.ncols(),
            self.row_ptr().to_vec(),
            None,
            self.col_idx().to_vec(),
        );
        SparseRowMat::new(symbolic, self.values.clone())
    }
}
