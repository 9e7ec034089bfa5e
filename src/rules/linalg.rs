//! Block rules: linear-algebra operations as single primitives, with their pullbacks.
//!
//! A [`BlockOp`] maps a block of inputs (matrix and vector entries, row-major) to a block
//! of outputs. Like the scalar rules, its value and its pullback are written once in
//! `T`'s own arithmetic, so evaluating them at a dual differentiates them: every block
//! rule is differentiable to any order. Reverse mode records one tape node per operation
//! (not one per scalar multiply-add), forward mode evaluates the value at the dual type.
//!
//! Conventions:
//! - Matrices are row-major slices; a vector is an `n × 1` matrix.
//! - Symmetric positive definite (SPD) operations (`Cholesky`, `CholeskySolve`,
//!   `LogDetSpd`) use the symmetric part `½(A + Aᵀ)` of their matrix argument, so their
//!   gradient with respect to `A` is symmetric (each off-diagonal pair shares it).
//! - `Norm` at the zero vector has gradient 0 and Hessian 0 (the least-norm subgradient, as
//!   `hypot` has at the origin). It is computed as `‖s x‖ / s` for a power of two `s` chosen
//!   from the largest `|xᵢ|` (as `hypot` scales), its gradient as `s x / ‖s x‖`: no square
//!   overflows or underflows, so the value and derivatives are accurate for any `‖x‖` whose
//!   derivatives are representable (1e-300 to 1e300 for the Hessian). The choice of `s` is
//!   not a branch decision (scaling by a power of two is exact), and the empty vector has
//!   norm 0.
//! - Pivot choices (LU) are made from `f64` values and are not branch decisions: the
//!   result does not depend on them.

use num_traits::Float;

use super::{OutputGroup, Pairs, Positions};
use crate::Scalar;

/// A linear-algebra block operation and its dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOp {
    /// `y = A x`: inputs `A` (`rows × cols`), `x` (`cols`); output `y` (`rows`).
    MatVec {
        /// Rows of `A`.
        rows: usize,
        /// Columns of `A`.
        cols: usize,
    },
    /// `C = A B`: inputs `A` (`rows × inner`), `B` (`inner × cols`); output `C`.
    MatMul {
        /// Rows of `A` and `C`.
        rows: usize,
        /// Columns of `A`, rows of `B`.
        inner: usize,
        /// Columns of `B` and `C`.
        cols: usize,
    },
    /// `s = x · y` for two vectors of length `len`.
    Dot {
        /// Length of each vector.
        len: usize,
    },
    /// `s = Σ xᵢ`.
    Sum {
        /// Length of `x`.
        len: usize,
    },
    /// `s = ‖x‖₂`.
    Norm {
        /// Length of `x`.
        len: usize,
    },
    /// `s = xᵀ A x`: inputs `A` (`n × n`), `x` (`n`).
    QuadForm {
        /// Dimension.
        n: usize,
    },
    /// `X = A⁻¹ B` by LU with partial pivoting: inputs `A` (`n × n`), `B` (`n × cols`).
    Solve {
        /// Dimension of `A`.
        n: usize,
        /// Columns of `B`.
        cols: usize,
    },
    /// `L` with `L Lᵀ = A` (lower triangular, zeros above): input `A` (`n × n`, SPD).
    Cholesky {
        /// Dimension.
        n: usize,
    },
    /// `X = A⁻¹ B` through the Cholesky factor: inputs `A` (`n × n`, SPD), `B`.
    CholeskySolve {
        /// Dimension of `A`.
        n: usize,
        /// Columns of `B`.
        cols: usize,
    },
    /// `ln det A` for SPD `A`.
    LogDetSpd {
        /// Dimension.
        n: usize,
    },
    /// `ln |det A|` by LU.
    LogAbsDet {
        /// Dimension.
        n: usize,
    },
    /// `A⁻¹` by LU.
    Inverse {
        /// Dimension.
        n: usize,
    },
}

/// Why a block operation could not be evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The matrix is singular (an exact zero pivot in LU).
    Singular,
    /// The matrix is not positive definite (a non-positive pivot in Cholesky).
    NotPositiveDefinite,
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockError::Singular => write!(f, "the matrix is singular"),
            BlockError::NotPositiveDefinite => write!(f, "the matrix is not positive definite"),
        }
    }
}

impl std::error::Error for BlockError {}

impl BlockOp {
    /// Number of input entries.
    pub fn input_len(&self) -> usize {
        match *self {
            BlockOp::MatVec { rows, cols } => rows * cols + cols,
            BlockOp::MatMul { rows, inner, cols } => rows * inner + inner * cols,
            BlockOp::Dot { len } => 2 * len,
            BlockOp::Sum { len } | BlockOp::Norm { len } => len,
            BlockOp::QuadForm { n } => n * n + n,
            BlockOp::Solve { n, cols } | BlockOp::CholeskySolve { n, cols } => n * n + n * cols,
            BlockOp::Cholesky { n }
            | BlockOp::LogDetSpd { n }
            | BlockOp::LogAbsDet { n }
            | BlockOp::Inverse { n } => n * n,
        }
    }

    /// Number of output entries.
    pub fn output_len(&self) -> usize {
        match *self {
            BlockOp::MatVec { rows, .. } => rows,
            BlockOp::MatMul { rows, cols, .. } => rows * cols,
            BlockOp::Dot { .. }
            | BlockOp::Sum { .. }
            | BlockOp::Norm { .. }
            | BlockOp::QuadForm { .. }
            | BlockOp::LogDetSpd { .. }
            | BlockOp::LogAbsDet { .. } => 1,
            BlockOp::Solve { n, cols } | BlockOp::CholeskySolve { n, cols } => n * cols,
            BlockOp::Cholesky { n } | BlockOp::Inverse { n } => n * n,
        }
    }

    /// Whether evaluating the operation can return an error (a factorisation that fails).
    pub fn can_fail(&self) -> bool {
        matches!(
            self,
            BlockOp::Solve { .. }
                | BlockOp::Cholesky { .. }
                | BlockOp::CholeskySolve { .. }
                | BlockOp::LogDetSpd { .. }
                | BlockOp::LogAbsDet { .. }
                | BlockOp::Inverse { .. }
        )
    }

    /// Whether the operation is linear in its inputs taken together (its Hessian is zero):
    /// no [`OutputGroup`] states a pair.
    pub fn is_linear(&self) -> bool {
        self.output_groups().all(|g| !g.is_nonlinear())
    }

    /// The number of [`OutputGroup`]s [`BlockOp::output_group`] describes.
    pub fn output_group_count(&self) -> usize {
        if self.output_len() == 0 {
            return 0;
        }
        match *self {
            BlockOp::MatVec { rows, .. } => rows,
            BlockOp::MatMul { rows, cols, .. } => rows * cols,
            BlockOp::Solve { cols, .. } | BlockOp::CholeskySolve { cols, .. } => cols,
            BlockOp::Cholesky { n } => 2 * n - 1,
            BlockOp::Dot { .. }
            | BlockOp::Sum { .. }
            | BlockOp::Norm { .. }
            | BlockOp::QuadForm { .. }
            | BlockOp::LogDetSpd { .. }
            | BlockOp::LogAbsDet { .. }
            | BlockOp::Inverse { .. } => 1,
        }
    }

    /// The interaction facts of the operation's outputs, group `g` of
    /// [`BlockOp::output_group_count`]: which inputs those outputs depend on and which
    /// input pairs their second partials involve (positions as in [`BlockOp::forward`]'s
    /// inputs and outputs). The groups partition the outputs. Sparsity detection reads
    /// these facts; a Jacobian's pattern follows from the dependence alone.
    ///
    /// - `MatVec`, `MatMul`: each output `yᵢ = Σₖ aᵢₖ xₖ` on its own, depending on row `i`
    ///   of `A` and the matching column of the right factor, bilinear across matching
    ///   entries only (`Zip`): a constant factor leaves the output linear.
    /// - `Dot`: bilinear across matching entries `aᵢ × bᵢ` only. `Sum`: linear.
    /// - `Norm`: every pair. `QuadForm`: every pair of `x`, and `A × x` (over-stated: only
    ///   `aᵢⱼ × xᵢ` and `aᵢⱼ × xⱼ` interact); linear in `A` alone.
    /// - `Solve`, `CholeskySolve`: column `j` of `X` depends on all of `A` and column `j`
    ///   of `B`; every pair of `A` and every `A × B` pair interact, `B` alone is linear.
    /// - `Cholesky`: each row's entries on and below the diagonal depend on all of `A`,
    ///   every pair interacting (over-stated: row `i` only depends on the leading
    ///   `(i+1) × (i+1)` block); the zeros above the diagonal are constant.
    /// - `LogDetSpd`, `LogAbsDet`, `Inverse`: every output on all of `A`, every pair.
    ///
    /// # Panics
    /// If `g` is not below [`BlockOp::output_group_count`].
    pub fn output_group(&self, g: usize) -> OutputGroup {
        assert!(
            g < self.output_group_count(),
            "{self:?}: output group {g} out of range"
        );
        let none = Positions::EMPTY;
        let all_in = Positions::range(0, self.input_len());
        let group = |outputs, depends, pairs| OutputGroup {
            outputs,
            depends,
            pairs,
        };
        let single = Positions::range(g, g + 1);
        match *self {
            BlockOp::MatVec { rows, cols } => {
                let a_row = Positions::range(g * cols, (g + 1) * cols);
                let x = Positions::range(rows * cols, rows * cols + cols);
                group(single, [a_row, x], [Pairs::Zip(a_row, x), Pairs::None])
            }
            BlockOp::MatMul { rows, inner, cols } => {
                let (i, j) = (g / cols, g % cols);
                let a_row = Positions::range(i * inner, (i + 1) * inner);
                let b_col = Positions::strided(rows * inner + j, cols, inner);
                group(
                    single,
                    [a_row, b_col],
                    [Pairs::Zip(a_row, b_col), Pairs::None],
                )
            }
            BlockOp::Dot { len } => {
                let (a, b) = (Positions::range(0, len), Positions::range(len, 2 * len));
                group(single, [a, b], [Pairs::Zip(a, b), Pairs::None])
            }
            BlockOp::Sum { .. } => group(single, [all_in, none], [Pairs::None; 2]),
            BlockOp::Norm { .. } => group(
                single,
                [all_in, none],
                [Pairs::All(all_in, all_in), Pairs::None],
            ),
            BlockOp::QuadForm { n } => {
                let (a, x) = (
                    Positions::range(0, n * n),
                    Positions::range(n * n, n * n + n),
                );
                group(single, [a, x], [Pairs::All(x, x), Pairs::All(a, x)])
            }
            BlockOp::Solve { n, cols } | BlockOp::CholeskySolve { n, cols } => {
                let a = Positions::range(0, n * n);
                let b_col = Positions::strided(n * n + g, cols, n);
                group(
                    Positions::strided(g, cols, n),
                    [a, b_col],
                    [Pairs::All(a, a), Pairs::All(a, b_col)],
                )
            }
            BlockOp::Cholesky { n } => {
                if g < n {
                    // Row g on and below the diagonal.
                    group(
                        Positions::range(g * n, g * n + g + 1),
                        [all_in, none],
                        [Pairs::All(all_in, all_in), Pairs::None],
                    )
                } else {
                    // Row i above the diagonal: constant zeros.
                    let i = g - n;
                    group(
                        Positions::range(i * n + i + 1, (i + 1) * n),
                        [none; 2],
                        [Pairs::None; 2],
                    )
                }
            }
            BlockOp::LogDetSpd { .. } | BlockOp::LogAbsDet { .. } | BlockOp::Inverse { .. } => {
                group(
                    Positions::range(0, self.output_len()),
                    [all_in, none],
                    [Pairs::All(all_in, all_in), Pairs::None],
                )
            }
        }
    }

    /// Every [`OutputGroup`] of the operation, in order.
    pub fn output_groups(&self) -> impl Iterator<Item = OutputGroup> + '_ {
        (0..self.output_group_count()).map(move |g| self.output_group(g))
    }

    /// Evaluates the operation: returns the outputs and the state the pullback needs
    /// (inputs, outputs and any factorisation), all at `T`.
    pub fn forward<T: Scalar>(&self, x: &[T]) -> Result<Saved<T>, BlockError> {
        debug_assert_eq!(x.len(), self.input_len());
        let mut extra = Vec::new();
        let outputs = match *self {
            BlockOp::MatVec { rows, cols } => {
                matmul(&x[..rows * cols], &x[rows * cols..], rows, cols, 1)
            }
            BlockOp::MatMul { rows, inner, cols } => {
                matmul(&x[..rows * inner], &x[rows * inner..], rows, inner, cols)
            }
            BlockOp::Dot { len } => vec![dot(&x[..len], &x[len..])],
            BlockOp::Sum { .. } => vec![x.iter().fold(T::zero(), |s, &v| s + v)],
            BlockOp::Norm { .. } => {
                let (s, ys) = scaled_norm(x);
                extra = vec![T::cst(s), ys];
                vec![ys * T::cst(1.0 / s)]
            }
            BlockOp::QuadForm { n } => {
                let ax = matmul(&x[..n * n], &x[n * n..], n, n, 1);
                vec![dot(&x[n * n..], &ax)]
            }
            BlockOp::Solve { n, cols } => {
                if let Some(xf) = big_f64(x, n) {
                    // f64 at size: faer's LU; the pullback factors again (extra stays empty).
                    let out = faer_lu_solve(&xf[..n * n], &xf[n * n..], n, cols, false)?;
                    return Ok(Saved {
                        inputs: x.to_vec(),
                        outputs: from_f64(out),
                        extra: Vec::new(),
                    });
                }
                let f = Lu::new(&x[..n * n], n)?;
                let out = f.solve(&x[n * n..], cols, false);
                extra = f.into_saved();
                out
            }
            BlockOp::Cholesky { n } => cholesky(&x[..n * n], n)?,
            BlockOp::CholeskySolve { n, cols } => {
                let l = cholesky(&x[..n * n], n)?;
                let out = cholesky_solve(&l, &x[n * n..], n, cols);
                extra = l;
                out
            }
            BlockOp::LogDetSpd { n } => {
                let l = cholesky(&x[..n * n], n)?;
                let s = (0..n).fold(T::zero(), |s, i| s + Float::ln(l[i * n + i]));
                extra = l;
                vec![s + s]
            }
            BlockOp::LogAbsDet { n } => {
                if let Some(xf) = big_f64(x, n) {
                    let lu = faer_lu(&xf, n)?;
                    let u = lu.U();
                    let s: f64 = (0..n).map(|i| u[(i, i)].abs().ln()).sum();
                    return Ok(Saved {
                        inputs: x.to_vec(),
                        outputs: vec![T::cst(s)],
                        extra: Vec::new(),
                    });
                }
                let f = Lu::new(&x[..n * n], n)?;
                let s = (0..n).fold(T::zero(), |s, i| s + Float::ln(Float::abs(f.lu[i * n + i])));
                extra = f.into_saved();
                vec![s]
            }
            BlockOp::Inverse { n } => {
                if let Some(xf) = big_f64(x, n) {
                    from_f64(faer_lu_solve(&xf, &identity(n), n, n, false)?)
                } else {
                    let f = Lu::new(&x[..n * n], n)?;
                    f.solve(&identity(n), n, false)
                }
            }
        };
        Ok(Saved {
            inputs: x.to_vec(),
            outputs,
            extra,
        })
    }

    /// Whether forward engines apply this operation through
    /// [`BlockOp::value_and_partials`] (which then gives `Some`).
    #[doc(hidden)]
    pub fn applies_by_partials(&self) -> bool {
        matches!(self, BlockOp::Norm { .. })
    }

    /// For forward engines: the output and its partials one level down, at the primal
    /// type `T`, for the operations a forward engine should apply as one rule (the way it
    /// applies a scalar rule) rather than by evaluating [`BlockOp::forward`] in its own
    /// arithmetic; `None` for the others.
    ///
    /// `Norm` is one: the `k`-th derivatives of its scaled intermediate `‖s x‖` are of size
    /// `sᵏ`, one order more than `‖x‖`'s own, so a second derivative by forward over forward
    /// would overflow (at `‖x‖ = 1e-300`) or underflow (at `1e300`) inside the sum even
    /// though the result is representable. Applied as value and partials, each level only
    /// needs the partials `s x / ‖s x‖` one order down, whose size matches. The value comes
    /// from `T`'s own [`Scalar::block`], so nesting recurses level by level.
    #[doc(hidden)]
    pub fn value_and_partials<T: Scalar>(&self, x: &[T]) -> Option<(T, Vec<T>)> {
        debug_assert_eq!(x.len(), self.input_len());
        match *self {
            BlockOp::Norm { .. } => {
                let y = T::block(self, x).expect("a norm is always defined")[0];
                let (s, ys) = scaled_norm(x);
                let mut partials = vec![T::zero(); x.len()];
                norm_pullback(x, T::cst(s), ys, T::one(), &mut partials);
                Some((y, partials))
            }
            _ => None,
        }
    }

    /// Adds `J(x)ᵀ ȳ` to `xbar`, where `ybar` are the outputs' adjoints.
    pub fn pullback<T: Scalar>(&self, saved: &Saved<T>, ybar: &[T], xbar: &mut [T]) {
        let x = &saved.inputs[..];
        let y = &saved.outputs[..];
        match *self {
            BlockOp::MatVec { rows, cols } => {
                let (a, v) = x.split_at(rows * cols);
                let (abar, vbar) = xbar.split_at_mut(rows * cols);
                outer_add(abar, ybar, v, T::one());
                add_into(vbar, &matmul_tn(a, ybar, rows, cols, 1));
            }
            BlockOp::MatMul { rows, inner, cols } => {
                let (a, b) = x.split_at(rows * inner);
                let (abar, bbar) = xbar.split_at_mut(rows * inner);
                add_into(abar, &matmul_nt(ybar, b, rows, cols, inner));
                add_into(bbar, &matmul_tn(a, ybar, rows, inner, cols));
            }
            BlockOp::Dot { len } => {
                let s = ybar[0];
                for i in 0..len {
                    xbar[i] += s * x[len + i];
                    xbar[len + i] += s * x[i];
                }
            }
            BlockOp::Sum { .. } => {
                for g in xbar.iter_mut() {
                    *g += ybar[0];
                }
            }
            BlockOp::Norm { .. } => {
                norm_pullback(x, saved.extra[0], saved.extra[1], ybar[0], xbar);
            }
            BlockOp::QuadForm { n } => {
                let (a, v) = x.split_at(n * n);
                let (abar, vbar) = xbar.split_at_mut(n * n);
                outer_add(abar, v, v, ybar[0]);
                let av = matmul(a, v, n, n, 1);
                let atv = matmul_tn(a, v, n, n, 1);
                for i in 0..n {
                    vbar[i] += ybar[0] * (av[i] + atv[i]);
                }
            }
            BlockOp::Solve { n, cols } => {
                // Λ = A⁻ᵀ X̄; B̄ += Λ; Ā −= Λ Xᵀ.
                let lambda = if saved.extra.is_empty() {
                    lu_solve_f64_again(&x[..n * n], ybar, n, cols)
                } else {
                    Lu::from_saved(&saved.extra, n).solve(ybar, cols, true)
                };
                let (abar, bbar) = xbar.split_at_mut(n * n);
                add_into(bbar, &lambda);
                sub_into(abar, &matmul_nt(&lambda, y, n, cols, n));
            }
            BlockOp::Cholesky { n } => {
                // Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹), Φ: lower triangle with the diagonal halved.
                // Entries above the diagonal are constant zeros: their adjoints do not flow.
                let l = y;
                let lbar: Vec<T> = (0..n * n)
                    .map(|k| if k % n > k / n { T::zero() } else { ybar[k] })
                    .collect();
                let mut p = matmul_tn(l, &lbar, n, n, n);
                let half = T::cst(0.5);
                for i in 0..n {
                    for j in 0..n {
                        if j > i {
                            p[i * n + j] = T::zero();
                        } else if j == i {
                            p[i * n + j] *= half;
                        }
                    }
                }
                // S = L⁻ᵀ P L⁻¹: solve Lᵀ Z = P, then S Lᵀ... S = Z L⁻¹ ⇔ Sᵀ = L⁻ᵀ Zᵀ.
                let z = lower_solve(l, &p, n, n, true);
                let st = lower_solve(l, &transpose(&z, n, n), n, n, true);
                add_sym(&mut xbar[..n * n], &st, n, half);
            }
            BlockOp::CholeskySolve { n, cols } => {
                let l = &saved.extra;
                let lambda = cholesky_solve(l, ybar, n, cols);
                let (abar, bbar) = xbar.split_at_mut(n * n);
                add_into(bbar, &lambda);
                let g = matmul_nt(&lambda, y, n, cols, n);
                add_sym(abar, &g, n, -T::cst(0.5));
            }
            BlockOp::LogDetSpd { n } => {
                // Ā = ȳ A⁻¹ (symmetric).
                let inv = cholesky_solve(&saved.extra, &identity(n), n, n);
                for (g, v) in xbar.iter_mut().zip(inv) {
                    *g += ybar[0] * v;
                }
            }
            BlockOp::LogAbsDet { n } => {
                // Ā = ȳ A⁻ᵀ.
                let inv_t = if saved.extra.is_empty() {
                    lu_solve_f64_again(x, &identity(n), n, n)
                } else {
                    Lu::from_saved(&saved.extra, n).solve(&identity(n), n, true)
                };
                for (g, v) in xbar.iter_mut().zip(inv_t) {
                    *g += ybar[0] * v;
                }
            }
            BlockOp::Inverse { n } => {
                // Ā = −Bᵀ B̄ Bᵀ with B = A⁻¹.
                let t = matmul_tn(y, ybar, n, n, n);
                sub_into(&mut xbar[..n * n], &matmul_nt(&t, y, n, n, n));
            }
        }
    }
}

/// What a block operation's pullback needs: its inputs, outputs and any factorisation.
#[derive(Clone, Debug, Default)]
pub struct Saved<T> {
    /// The input entries.
    pub inputs: Vec<T>,
    /// The output entries.
    pub outputs: Vec<T>,
    /// Operation-specific state (an LU or Cholesky factor; a norm's scale `s` and `‖s x‖`).
    pub extra: Vec<T>,
}

/// The entries as `f64` when `T` is `f64` (exactly), so the `f64` paths can hand the
/// work to faer's blocked kernels; `None` for AD types, which run the generic loops.
fn as_f64<T: Scalar>(x: &[T]) -> Option<Vec<f64>> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>())
        .then(|| x.iter().map(|v| v.untracked_f64()).collect())
}

fn from_f64<T: Scalar>(x: impl IntoIterator<Item = f64>) -> Vec<T> {
    x.into_iter().map(T::cst).collect()
}

fn faer_mat(a: &[f64], rows: usize, cols: usize) -> faer::Mat<f64> {
    faer::Mat::from_fn(rows, cols, |i, j| a[i * cols + j])
}

fn row_major_of<T: Scalar>(m: faer::MatRef<'_, f64>) -> Vec<T> {
    let (r, c) = (m.nrows(), m.ncols());
    from_f64((0..r * c).map(|k| m[(k / c, k % c)]))
}

/// Below this many multiply-adds the generic loops beat converting to faer.
const FAER_WORK: usize = 1 << 15;

/// The entries as `f64` when `T` is `f64` and the `n × n` factorisation is big enough for
/// faer to pay.
fn big_f64<T: Scalar>(x: &[T], n: usize) -> Option<Vec<f64>> {
    if n * n * n >= FAER_WORK {
        as_f64(x)
    } else {
        None
    }
}

/// Which factorisation a [`faer_verdict`] is about.
#[derive(Clone, Copy)]
enum Factor {
    Cholesky,
    Lu,
}

/// At an AD type, for a size `f64` hands to faer: faer's verdict (success or the error) on
/// the primal values, which the generic loops then follow, so every mode takes the branch
/// the `f64` evaluation takes. faer and the generic loops can disagree on a matrix at the
/// edge of positive definiteness or singularity (rounding), and a function that handles
/// the `Err` would otherwise take one branch in its gradient and the other in its Hessian.
/// `None` at `f64` itself and for sizes the generic loops handle at every type.
fn faer_verdict<T: Scalar>(a: &[T], n: usize, factor: Factor) -> Option<Result<(), BlockError>> {
    if n * n * n < FAER_WORK || std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>() {
        return None;
    }
    let af: Vec<f64> = a.iter().map(|v| v.untracked_f64()).collect();
    Some(match factor {
        Factor::Cholesky => faer::Mat::from_fn(n, n, |i, j| 0.5 * (af[i * n + j] + af[j * n + i]))
            .llt(faer::Side::Lower)
            .map(|_| ())
            .map_err(|_| BlockError::NotPositiveDefinite),
        Factor::Lu => faer_lu(&af, n).map(|_| ()),
    })
}

/// faer's partial-pivoting LU of `a`, or `Singular` on an exact zero pivot (faer itself
/// would divide by it).
fn faer_lu(a: &[f64], n: usize) -> Result<faer::linalg::solvers::PartialPivLu<f64>, BlockError> {
    let lu = faer_mat(a, n, n).partial_piv_lu();
    let u = lu.U();
    if (0..n).any(|i| u[(i, i)] == 0.0) {
        return Err(BlockError::Singular);
    }
    Ok(lu)
}

/// `A⁻¹ B` (or `A⁻ᵀ B`) by faer's LU, `B` with `cols` columns.
fn faer_lu_solve(
    a: &[f64],
    b: &[f64],
    n: usize,
    cols: usize,
    transposed: bool,
) -> Result<Vec<f64>, BlockError> {
    use faer::linalg::solvers::Solve;
    let lu = faer_lu(a, n)?;
    let rhs = faer_mat(b, n, cols);
    let x = if transposed {
        lu.solve_transpose(&rhs)
    } else {
        lu.solve(&rhs)
    };
    Ok(row_major_of(x.as_ref()))
}

/// The pullback's `A⁻ᵀ B` for a block whose forward pass used faer (only at `f64`, so the
/// conversions are exact). The forward pass succeeded, so `A` is not singular.
fn lu_solve_f64_again<T: Scalar>(a: &[T], b: &[T], n: usize, cols: usize) -> Vec<T> {
    let af: Vec<f64> = a.iter().map(|v| v.untracked_f64()).collect();
    let bf: Vec<f64> = b.iter().map(|v| v.untracked_f64()).collect();
    from_f64(faer_lu_solve(&af, &bf, n, cols, true).expect("factorised in the forward pass"))
}

/// The power of two `s` a norm scales `x` by: `s · max|xᵢ|` in `[1, 2)`, with `s` kept in
/// `[2⁻¹⁰²², 2¹⁰²³]` (a subnormal maximum still scales to at least `2⁻⁵²`); 1 when every
/// entry is 0 or the maximum is infinite or NaN.
///
/// Read from the values without reporting a decision: `s` only changes rounding (scaling
/// by a power of two is exact), never the result a branch would change, so a recording
/// need not guard it, and a replay at another magnitude simply picks another `s`.
fn norm_scale<T: Scalar>(x: &[T]) -> f64 {
    let m = x.iter().fold(0.0f64, |m, v| m.max(v.untracked_f64().abs()));
    if m == 0.0 || !m.is_finite() {
        return 1.0;
    }
    // ⌊log₂ m⌋ from the bits, subnormals included.
    let bits = m.to_bits();
    let biased = (bits >> 52) as i32;
    let exponent = if biased == 0 {
        -1074 + (63 - bits.leading_zeros() as i32)
    } else {
        biased - 1023
    };
    let k = (-exponent).clamp(-1022, 1023);
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `(s, ‖s x‖)` with `s` from [`norm_scale`] (applied as a constant): every `s xᵢ` is
/// below 4 in magnitude and the largest at least `2⁻⁵²`, so the sum of squares neither
/// overflows nor underflows to 0, and its value and first-order tangents stay in range.
fn scaled_norm<T: Scalar>(x: &[T]) -> (f64, T) {
    let s = norm_scale(x);
    let sc = T::cst(s);
    let sum = x.iter().fold(T::zero(), |acc, &v| {
        let u = sc * v;
        acc + u * u
    });
    (s, Float::sqrt(sum))
}

/// `xbar += ȳ · s x / ‖s x‖` (`ys = ‖s x‖`): the norm's pullback, formed from scaled
/// numbers only. Dividing by `ys` (of order 1) rather than by `‖x‖` keeps the division's
/// partials (`1/b`, `−(a/b)/b`) of order 1 too, so a dual `T` gets representable tangents
/// wherever the Hessian is. Nothing at the zero vector (`ys = 0` only there): gradient 0,
/// and the Hessian a dual `T` carries is 0 too, as for `hypot` at the origin. The test is a
/// comparison in `T`, so a recording that tapes this pullback (reverse over reverse) guards
/// it, and a replay across the origin re-records.
fn norm_pullback<T: Scalar>(x: &[T], s: T, ys: T, ybar: T, xbar: &mut [T]) {
    if ys == T::zero() {
        return;
    }
    let r = ybar / ys;
    for (g, &v) in xbar.iter_mut().zip(x) {
        *g += r * (s * v);
    }
}

fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |s, (&x, &y)| s + x * y)
}

fn identity<T: Scalar>(n: usize) -> Vec<T> {
    (0..n * n)
        .map(|k| if k / n == k % n { T::one() } else { T::zero() })
        .collect()
}

fn transpose<T: Scalar>(a: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..rows * cols)
        .map(|k| a[(k % rows) * cols + k / rows])
        .collect()
}

/// `A B` for `A` (`r × k`), `B` (`k × c`).
fn matmul<T: Scalar>(a: &[T], b: &[T], r: usize, k: usize, c: usize) -> Vec<T> {
    if r * k * c >= FAER_WORK {
        if let (Some(af), Some(bf)) = (as_f64(a), as_f64(b)) {
            return row_major_of((faer_mat(&af, r, k) * faer_mat(&bf, k, c)).as_ref());
        }
    }
    let mut out = vec![T::zero(); r * c];
    for i in 0..r {
        for p in 0..k {
            let aip = a[i * k + p];
            for j in 0..c {
                out[i * c + j] += aip * b[p * c + j];
            }
        }
    }
    out
}

/// `Aᵀ B` for `A` (`r × k`), `B` (`r × c`): a `k × c` result (an `O(rk)` transpose, then
/// [`matmul`]).
fn matmul_tn<T: Scalar>(a: &[T], b: &[T], r: usize, k: usize, c: usize) -> Vec<T> {
    matmul(&transpose(a, r, k), b, k, r, c)
}

/// `A Bᵀ` for `A` (`r × k`), `B` (`c × k`): an `r × c` result.
fn matmul_nt<T: Scalar>(a: &[T], b: &[T], r: usize, k: usize, c: usize) -> Vec<T> {
    matmul(a, &transpose(b, c, k), r, k, c)
}

/// `out += s · u vᵀ`.
fn outer_add<T: Scalar>(out: &mut [T], u: &[T], v: &[T], s: T) {
    let c = v.len();
    for (i, &ui) in u.iter().enumerate() {
        let w = s * ui;
        for (j, &vj) in v.iter().enumerate() {
            out[i * c + j] += w * vj;
        }
    }
}

fn add_into<T: Scalar>(out: &mut [T], v: &[T]) {
    for (o, &x) in out.iter_mut().zip(v) {
        *o += x;
    }
}

fn sub_into<T: Scalar>(out: &mut [T], v: &[T]) {
    for (o, &x) in out.iter_mut().zip(v) {
        *o -= x;
    }
}

/// `out += s · (G + Gᵀ)` for square `G`.
fn add_sym<T: Scalar>(out: &mut [T], g: &[T], n: usize, s: T) {
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] += s * (g[i * n + j] + g[j * n + i]);
        }
    }
}

/// The Cholesky factor of the symmetric part of `a`.
fn cholesky<T: Scalar>(a: &[T], n: usize) -> Result<Vec<T>, BlockError> {
    if n * n * n >= FAER_WORK {
        if let Some(af) = as_f64(a) {
            let sym = faer::Mat::from_fn(n, n, |i, j| 0.5 * (af[i * n + j] + af[j * n + i]));
            let llt = sym
                .llt(faer::Side::Lower)
                .map_err(|_| BlockError::NotPositiveDefinite)?;
            let l = llt.L();
            return Ok(from_f64((0..n * n).map(|k| {
                if k % n > k / n {
                    0.0
                } else {
                    l[(k / n, k % n)]
                }
            })));
        }
    }
    let trusted = match faer_verdict(a, n, Factor::Cholesky) {
        Some(Err(e)) => return Err(e),
        Some(Ok(())) => true,
        None => false,
    };
    let half = T::cst(0.5);
    let mut l = vec![T::zero(); n * n];
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= l[j * n + k] * l[j * n + k];
        }
        // NaN fails too. A comparison of `T`s, so under a reverse recording (nested modes)
        // the outcome is a guarded decision like any other.
        // When faer decided (`trusted`), a pivot it accepted is used as it is (a NaN
        // factor at worst, never the other branch).
        if d.partial_cmp(&T::zero()) != Some(std::cmp::Ordering::Greater) && !trusted {
            return Err(BlockError::NotPositiveDefinite);
        }
        let ljj = Float::sqrt(d);
        l[j * n + j] = ljj;
        for i in j + 1..n {
            let mut s = (a[i * n + j] + a[j * n + i]) * half;
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            l[i * n + j] = s / ljj;
        }
    }
    Ok(l)
}

/// Solves `L Y = B` (or `Lᵀ Y = B` when `transposed`) for lower-triangular `L`, `B` of
/// `cols` columns. Works on whole rows of `Y`, so the inner loops are contiguous.
fn lower_solve<T: Scalar>(l: &[T], b: &[T], n: usize, cols: usize, transposed: bool) -> Vec<T> {
    if n * n * cols >= FAER_WORK {
        if let (Some(lf), Some(bf)) = (as_f64(l), as_f64(b)) {
            let lm = faer_mat(&lf, n, n);
            let mut y = faer_mat(&bf, n, cols);
            let par = faer::Par::Seq;
            if transposed {
                faer::linalg::triangular_solve::solve_upper_triangular_in_place(
                    lm.transpose(),
                    y.as_mut(),
                    par,
                );
            } else {
                faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                    lm.as_ref(),
                    y.as_mut(),
                    par,
                );
            }
            return row_major_of(y.as_ref());
        }
    }
    let mut y = b.to_vec();
    let order: Vec<usize> = if transposed {
        (0..n).rev().collect()
    } else {
        (0..n).collect()
    };
    for &i in &order {
        let (done, rest) = if transposed {
            let (head, tail) = y.split_at_mut((i + 1) * cols);
            (tail, &mut head[i * cols..])
        } else {
            let (head, tail) = y.split_at_mut(i * cols);
            (head, &mut tail[..cols])
        };
        // Row i minus the contributions of the rows already solved.
        let solved = if transposed { i + 1..n } else { 0..i };
        for k in solved {
            let coef = if transposed {
                l[k * n + i]
            } else {
                l[i * n + k]
            };
            let offset = if transposed {
                (k - i - 1) * cols
            } else {
                k * cols
            };
            for (r, &yk) in rest.iter_mut().zip(&done[offset..offset + cols]) {
                *r -= coef * yk;
            }
        }
        let inv = T::one() / l[i * n + i];
        for r in rest.iter_mut() {
            *r *= inv;
        }
    }
    y
}

/// `A⁻¹ B` from `A`'s Cholesky factor.
fn cholesky_solve<T: Scalar>(l: &[T], b: &[T], n: usize, cols: usize) -> Vec<T> {
    let y = lower_solve(l, b, n, cols, false);
    lower_solve(l, &y, n, cols, true)
}

/// An LU factorisation with partial pivoting: `P A = L U`, `L` unit lower.
struct Lu<T> {
    n: usize,
    lu: Vec<T>,
    /// Row `i` of `P A` is row `perm[i]` of `A`.
    perm: Vec<usize>,
}

impl<T: Scalar> Lu<T> {
    fn new(a: &[T], n: usize) -> Result<Self, BlockError> {
        let trusted = match faer_verdict(a, n, Factor::Lu) {
            Some(Err(e)) => return Err(e),
            Some(Ok(())) => true,
            None => false,
        };
        let mut lu = a.to_vec();
        let mut perm: Vec<usize> = (0..n).collect();
        for c in 0..n {
            // Comparisons of `T`s, so under a reverse recording (nested modes) the pivot
            // choice and the singularity test are guarded decisions like any other. The
            // last largest |entry| wins.
            let mut pivot = c;
            for r in c + 1..n {
                if Float::abs(lu[r * n + c]) >= Float::abs(lu[pivot * n + c]) {
                    pivot = r;
                }
            }
            if num_traits::Zero::is_zero(&lu[pivot * n + c]) && !trusted {
                return Err(BlockError::Singular);
            }
            if pivot != c {
                for j in 0..n {
                    lu.swap(c * n + j, pivot * n + j);
                }
                perm.swap(c, pivot);
            }
            let d = lu[c * n + c];
            for r in c + 1..n {
                let f = lu[r * n + c] / d;
                lu[r * n + c] = f;
                for j in c + 1..n {
                    let u = lu[c * n + j];
                    lu[r * n + j] -= f * u;
                }
            }
        }
        Ok(Lu { n, lu, perm })
    }

    /// `A⁻¹ B` (or `A⁻ᵀ B` when `transposed`), `B` with `cols` columns.
    fn solve(&self, b: &[T], cols: usize, transposed: bool) -> Vec<T> {
        let n = self.n;
        let lu = &self.lu;
        // Row operations on Y: row i -= coef · row k, then row i *= scale.
        let row_sub = |y: &mut [T], i: usize, k: usize, coef: T| {
            let (dst, src) = if i > k {
                let (head, tail) = y.split_at_mut(i * cols);
                (&mut tail[..cols], &head[k * cols..(k + 1) * cols])
            } else {
                let (head, tail) = y.split_at_mut(k * cols);
                (&mut head[i * cols..(i + 1) * cols], &tail[..cols])
            };
            for (d, &s) in dst.iter_mut().zip(src) {
                *d -= coef * s;
            }
        };
        let row_scale = |y: &mut [T], i: usize, scale: T| {
            for v in &mut y[i * cols..(i + 1) * cols] {
                *v *= scale;
            }
        };
        if !transposed {
            // L U x = P b.
            let mut y = vec![T::zero(); n * cols];
            for i in 0..n {
                y[i * cols..(i + 1) * cols]
                    .copy_from_slice(&b[self.perm[i] * cols..(self.perm[i] + 1) * cols]);
            }
            for i in 0..n {
                for k in 0..i {
                    row_sub(&mut y, i, k, lu[i * n + k]);
                }
            }
            for i in (0..n).rev() {
                for k in i + 1..n {
                    row_sub(&mut y, i, k, lu[i * n + k]);
                }
                row_scale(&mut y, i, T::one() / lu[i * n + i]);
            }
            y
        } else {
            // Aᵀ = Uᵀ Lᵀ P: solve Uᵀ z = b, Lᵀ w = z, x = Pᵀ w.
            let mut z = b.to_vec();
            for i in 0..n {
                for k in 0..i {
                    row_sub(&mut z, i, k, lu[k * n + i]);
                }
                row_scale(&mut z, i, T::one() / lu[i * n + i]);
            }
            for i in (0..n).rev() {
                for k in i + 1..n {
                    row_sub(&mut z, i, k, lu[k * n + i]);
                }
            }
            let mut y = vec![T::zero(); n * cols];
            for i in 0..n {
                y[self.perm[i] * cols..(self.perm[i] + 1) * cols]
                    .copy_from_slice(&z[i * cols..(i + 1) * cols]);
            }
            y
        }
    }

    /// The factor as saved state: the `n²` entries, then the permutation as numbers.
    fn into_saved(self) -> Vec<T> {
        let mut saved = self.lu;
        saved.extend(self.perm.iter().map(|&p| T::cst(p as f64)));
        saved
    }

    fn from_saved(saved: &[T], n: usize) -> Self {
        Lu {
            n,
            lu: saved[..n * n].to_vec(),
            perm: saved[n * n..]
                .iter()
                .map(|p| p.untracked_f64() as usize)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn lu_solves_and_transposed_solves() {
        let a = [0.0, 2.0, 1.0, 3.0, 1.0, 0.0, 1.0, 1.0, 4.0];
        let b = [1.0, 2.0, 3.0];
        let f = Lu::new(&a, 3).unwrap();
        let x = f.solve(&b, 1, false);
        assert!(close(&matmul(&a, &x, 3, 3, 1), &b, 1e-14));
        let xt = f.solve(&b, 1, true);
        assert!(close(&matmul_tn(&a, &xt, 3, 3, 1), &b, 1e-14));
        assert_eq!(
            Lu::new(&[1.0, 2.0, 2.0, 4.0], 2).err(),
            Some(BlockError::Singular)
        );
    }

    #[test]
    fn cholesky_reconstructs_and_rejects_indefinite() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        assert!(close(&matmul_nt(&l, &l, 3, 3, 3), &a, 1e-14));
        assert_eq!(
            cholesky(&[1.0, 2.0, 2.0, 1.0], 2).err(),
            Some(BlockError::NotPositiveDefinite)
        );
    }
}
