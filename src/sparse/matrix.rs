//! [`SparseHessian`]: the lower-triangle triplets of a Hessian, and conversions to faer.

use std::sync::Arc;

use faer::sparse::{SparseColMat, SymbolicSparseColMat, Triplet};
use faer::Mat;

use crate::sparse::pattern::SparsityPattern;

/// A symmetric sparse Hessian stored as its lower triangle: triplets `(row, col, value)`
/// with `row ≥ col`, sorted by column then row (the layout IPOPT's `eval_h` asks for).
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T { x[0] * x[0] * x[1] + x[2].exp() }
/// let h = mixad::sparse_hessian(|x| f(x), &[1.0, 2.0, 0.0]);
/// let t: Vec<_> = h.triplets().collect();
/// assert_eq!(t, vec![(0, 0, 4.0), (1, 0, 2.0), (2, 2, 1.0)]);
/// assert_eq!(h.get(0, 1), 2.0); // either triangle
/// let dense = h.to_dense();
/// assert_eq!(dense[(0, 1)], 2.0);
/// let lower = h.to_faer_lower(); // for faer's sparse Cholesky
/// assert_eq!(lower.compute_nnz(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct SparseHessian {
    pattern: Arc<SparsityPattern>,
    values: Vec<f64>,
}

/// The empty `0 × 0` Hessian: a buffer for the `_into` operators to fill
/// ([`crate::Recording::value_gradient_sparse_hessian_into`]).
impl Default for SparseHessian {
    fn default() -> Self {
        SparseHessian {
            pattern: Arc::new(SparsityPattern::empty()),
            values: Vec::new(),
        }
    }
}

impl SparseHessian {
    /// Takes `pattern` (if it is not already this Hessian's) and returns the values to
    /// refill in its order; allocates only when the pattern grew.
    pub(crate) fn refill(&mut self, pattern: &Arc<SparsityPattern>) -> &mut Vec<f64> {
        if !Arc::ptr_eq(&self.pattern, pattern) {
            self.pattern = pattern.clone();
        }
        &mut self.values
    }

    /// The Hessian is `dim × dim`.
    pub fn dim(&self) -> usize {
        self.pattern.dim()
    }

    /// Number of stored (lower-triangle) entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Row of each stored entry.
    pub fn rows(&self) -> &[usize] {
        self.pattern.rows()
    }

    /// Column of each stored entry.
    pub fn cols(&self) -> &[usize] {
        self.pattern.cols()
    }

    /// Value of each stored entry.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The pattern (shared by every Hessian of the same plan).
    pub fn pattern(&self) -> &SparsityPattern {
        &self.pattern
    }

    /// The stored entries as `(row, col, value)`, `row ≥ col`.
    pub fn triplets(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        self.rows()
            .iter()
            .zip(self.cols())
            .zip(&self.values)
            .map(|((&r, &c), &v)| (r, c, v))
    }

    /// Entry `(i, j)` of the full symmetric matrix (0 outside the pattern).
    ///
    /// # Panics
    /// If `i` or `j` is out of range.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        let n = self.dim();
        assert!(
            i < n && j < n,
            "SparseHessian::get: ({i}, {j}) is outside a {n} × {n} matrix"
        );
        self.pattern.position(i, j).map_or(0.0, |k| self.values[k])
    }

    /// The full symmetric matrix, dense (for small problems and tests).
    pub fn to_dense(&self) -> Mat<f64> {
        let n = self.dim();
        let mut m = Mat::zeros(n, n);
        for (r, c, v) in self.triplets() {
            m[(r, c)] = v;
            m[(c, r)] = v;
        }
        m
    }

    /// The lower triangle as a faer compressed-column matrix (what
    /// `SparseColMatRef::sp_cholesky(Side::Lower)` reads).
    pub fn to_faer_lower(&self) -> SparseColMat<usize, f64> {
        let n = self.dim();
        let symbolic = SymbolicSparseColMat::new_checked(
            n,
            n,
            self.pattern.col_ptr().to_vec(),
            None,
            self.rows().to_vec(),
        );
        SparseColMat::new(symbolic, self.values.clone())
    }

    /// The full symmetric matrix (both triangles) as a faer compressed-column matrix.
    pub fn to_faer(&self) -> SparseColMat<usize, f64> {
        let n = self.dim();
        let mut triplets = Vec::with_capacity(2 * self.nnz());
        for (r, c, v) in self.triplets() {
            triplets.push(Triplet::new(r, c, v));
            if r != c {
                triplets.push(Triplet::new(c, r, v));
            }
        }
        SparseColMat::try_new_from_triplets(n, n, &triplets)
            .expect("a Hessian pattern has no duplicate entries")
    }
}
