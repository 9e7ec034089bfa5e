//! Hessians and Hessian-vector products, computed as forward over reverse.
//!
//! - [`hvp`] and [`value_gradient_hvp`]: one reverse sweep whose values carry one tangent
//!   (`Var<Dual<f64>>`): `H·v` at a small multiple of the cost of `f`, no `n × n` work.
//! - [`hessian`] and [`value_gradient_hessian`]: `f` is recorded once at `f64`; the
//!   recording is then replayed with `N` tangent lanes per sweep (`DualVec<f64, N>`), each
//!   sweep giving `N` columns. Sweeps run in parallel with rayon, and the result is made
//!   exactly symmetric.
//! - For solvers that ask at a new point every iteration, [`crate::record`] keeps the
//!   recording, buffers and per-thread state ([`crate::Recording::hessian`]); branch guards
//!   re-record wherever a decision in `f` would go the other way.
//!
//! Replaying the recording instead of re-running `f` is what lets the closure stay a
//! plain `|x| f(x)` at one type while the sweeps use whatever lane count fits `n`.

use faer::Mat;

use crate::forward::width::lanes_for;
use crate::forward::Dual;
use crate::lanes::{LaneWorkers, Sweeps};
use crate::parallel::Pool;
use crate::reverse::program::Program;
use crate::reverse::{self, Var};

/// Hessian-vector product `∇²f(x)·v` in one forward-over-reverse sweep (empty for an
/// empty `x`).
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T { x[0] * x[0] * x[1] + x[1].sin() }
/// let hv = mixad::hvp(|x| f(x), &[1.0, 2.0], &[1.0, 0.0]);
/// assert_eq!(hv, vec![2.0 * 2.0, 2.0 * 1.0]); // first column of the Hessian
/// ```
///
/// # Panics
/// If `x` and `v` differ in length.
pub fn hvp<F>(f: F, x: &[f64], v: &[f64]) -> Vec<f64>
where
    F: FnOnce(&[Var<Dual<f64>>]) -> Var<Dual<f64>>,
{
    value_gradient_hvp(f, x, v).2
}

/// `(f(x), ∇f(x), ∇²f(x)·v)` from the same single sweep; an empty `x` gives `f()` and two
/// empty vectors.
///
/// # Panics
/// If `x` and `v` differ in length.
pub fn value_gradient_hvp<F>(f: F, x: &[f64], v: &[f64]) -> (f64, Vec<f64>, Vec<f64>)
where
    F: FnOnce(&[Var<Dual<f64>>]) -> Var<Dual<f64>>,
{
    check_direction(x, v, "hvp");
    let seeded: Vec<Dual<f64>> = Dual::seed_direction(x, v);
    let (y, g) = reverse::value_and_gradient(f, &seeded);
    let (grad, hv) = g.iter().map(|d| (d.value, d.tangent)).unzip();
    (y.value, grad, hv)
}

/// Dense Hessian `∇²f(x)` (`n × n`, exactly symmetric), with the default options. An empty
/// `x` gives the `0 × 0` matrix. For many points, record once: [`crate::Recording::hessian`].
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T { x[0] * x[0] * x[1] + x[1].exp() }
/// let h = mixad::hessian(|x| f(x), &[1.0, 0.0]);
/// assert_eq!((h[(0, 0)], h[(0, 1)], h[(1, 0)], h[(1, 1)]), (0.0, 2.0, 2.0, 1.0));
/// ```
pub fn hessian<F>(f: F, x: &[f64]) -> Mat<f64>
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    value_gradient_hessian(f, x).2
}

/// `(f(x), ∇f(x), ∇²f(x))` from the same sweeps. An empty `x` gives `f()`, an empty
/// gradient and the `0 × 0` matrix.
pub fn value_gradient_hessian<F>(f: F, x: &[f64]) -> (f64, Vec<f64>, Mat<f64>)
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    crate::record(f, x).value_gradient_hessian(x)
}

pub(crate) fn check_direction(x: &[f64], v: &[f64], api: &str) {
    assert_eq!(
        x.len(),
        v.len(),
        "{api}: x has {} entries but the direction v has {}",
        x.len(),
        v.len()
    );
}

/// The dense Hessian's sweep state for one recording: lanes, per-thread workers and the
/// column buffer. Kept by a [`crate::Recording`] once its first Hessian is asked for.
pub(crate) struct DenseColumns {
    lanes: usize,
    workers: LaneWorkers,
    /// Input `i` is Hessian column `i`: the sweeps' groups.
    columns: Vec<u32>,
    /// The Hessian, column-major.
    buffer: Vec<f64>,
}

impl DenseColumns {
    /// Sweep state for `n` columns, `lanes` per sweep (`None`: chosen from `n`), on
    /// `threads` threads.
    pub(crate) fn new(n: usize, lanes: Option<usize>, threads: usize) -> Self {
        let lanes = lanes.unwrap_or_else(|| lanes_for(n));
        DenseColumns {
            lanes,
            workers: LaneWorkers::new(lanes, threads),
            columns: (0..n as u32).collect(),
            buffer: Vec::new(),
        }
    }

    /// Columns per sweep.
    pub(crate) fn lanes(&self) -> usize {
        self.lanes
    }

    /// The Hessian of `Σ wₖ Fₖ` at `x` (the guards already checked there), exactly
    /// symmetric, into the column-major buffer; returns it.
    pub(crate) fn sweep(
        &mut self,
        program: &Program,
        x: &[f64],
        weights: &[f64],
        pool: &Pool,
    ) -> &[f64] {
        let n = self.columns.len();
        self.buffer.resize(n * n, 0.0);
        if n == 0 {
            return &self.buffer;
        }
        let count = n.div_ceil(self.lanes);
        let sweeps = Sweeps {
            program,
            x,
            groups: &self.columns,
            lanes: self.lanes,
            workers: &self.workers,
            weights,
        };
        let buffer = &mut self.buffer;
        pool.run(count, program.len() * count, |serial| {
            sweeps.run(buffer, serial, None)
        });
        symmetrize(&mut self.buffer, n);
        &self.buffer
    }
}

/// Makes the column-major `n × n` matrix exactly symmetric: `(H + Hᵀ)/2`.
fn symmetrize(h: &mut [f64], n: usize) {
    for j in 0..n {
        for i in j + 1..n {
            let mean = 0.5 * (h[j * n + i] + h[i * n + j]);
            h[j * n + i] = mean;
            h[i * n + j] = mean;
        }
    }
}
