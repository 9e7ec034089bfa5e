//! Hessians and Hessian-vector products, computed as forward over reverse.
//!
//! - [`hvp`] and [`value_gradient_hvp`]: one reverse sweep whose values carry one tangent
//!   (`Var<Dual<f64>>`): `H·v` at a small multiple of the cost of `f`, no `n × n` work.
//! - [`hessian`] and [`value_gradient_hessian`]: `f` is recorded once at `f64`; the
//!   recording is then replayed with `N` tangent lanes per sweep (`DualVec<f64, N>`), each
//!   sweep giving `N` columns. Sweeps run in parallel with rayon, and the result is made
//!   exactly symmetric.
//! - [`prepare`]: the same for solvers that ask at a new point every iteration. The
//!   recording, buffers and per-thread state are reused (no allocation in steady state),
//!   and branch guards re-record wherever a decision in `f` would go the other way.
//!
//! Replaying the recording instead of re-running `f` is what lets the closure stay a
//! plain `|x| f(x)` at one type while the sweeps use whatever lane count fits `n`.

use faer::Mat;

use crate::forward::tag::fresh_tag;
use crate::forward::Dual;
use crate::lanes::{LaneWorkers, Sweeps};
use crate::reverse::program::Workspace;
use crate::reverse::{self, Replayer, Var};

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
/// `x` gives the `0 × 0` matrix.
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
    prepare(f, x, HessianOptions::default()).value_gradient_hessian(x)
}

/// Options for [`prepare`]: tangent lanes per sweep and threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HessianOptions {
    /// Hessian columns per sweep, `1..=16`; `None` chooses from `n`.
    pub chunk: Option<usize>,
    /// Threads for the sweeps: `Some(1)` is serial, `Some(t)` a pool of `t` threads; `None`
    /// uses rayon's global pool when the work is large enough to pay for it (at least
    /// [`PARALLEL_WORK`] node-sweeps), else runs serially.
    pub threads: Option<usize>,
}

/// A Hessian prepared for repeated use at new points (see the module docs).
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T { (x[0] - x[1]).powi(4) + x[1] * x[1] }
/// let mut h = mixad::hessian::prepare(|x| f(x), &[0.0, 0.0], Default::default());
/// for &p in &[[1.0, 0.0], [2.0, 1.0]] {
///     let (_, g, hess) = h.value_gradient_hessian(&p);
///     let d = p[0] - p[1];
///     assert_eq!(g[0], 4.0 * d.powi(3));
///     assert_eq!(hess[(0, 0)], 12.0 * d * d);
///     assert_eq!(h.hvp(&p, &[1.0, 1.0]), vec![0.0, 2.0]);
/// }
/// ```
pub struct PreparedHessian<F> {
    replay: Replayer<F>,
    n: usize,
    chunk: usize,
    workers: LaneWorkers,
    /// Input `i` is Hessian column `i`: the sweeps' groups.
    columns: Vec<u32>,
    pool: Option<rayon::ThreadPool>,
    serial: bool,
    primal: Workspace<f64>,
    tangent: Workspace<Dual<f64>>,
    tangent_io: (Vec<Dual<f64>>, Vec<Dual<f64>>),
}

/// Records `f` at `x` and prepares Hessian sweeps with `options`.
///
/// An empty `x` is a function of no inputs: the plan then gives `f()`, an empty gradient
/// and the `0 × 0` Hessian at every (empty) point.
///
/// # Panics
/// If `options.chunk` is outside `1..=16`, or `options.threads` is 0.
pub fn prepare<F>(f: F, x: &[f64], options: HessianOptions) -> PreparedHessian<F>
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    let n = x.len();
    let chunk = options.chunk.unwrap_or_else(|| auto_chunk(n));
    assert!(
        (1..=MAX_LANES).contains(&chunk),
        "hessian: chunk size {chunk} is outside 1..={MAX_LANES}"
    );
    assert!(
        options.threads != Some(0),
        "hessian: threads must be at least 1"
    );
    let serial = options.threads == Some(1);
    let pool = match options.threads {
        Some(t) if t > 1 => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .expect("hessian: could not start the thread pool"),
        ),
        _ => None,
    };
    let threads = if serial {
        1
    } else {
        pool.as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    };
    PreparedHessian {
        replay: Replayer::new(f, x, 2, "mixad::hessian"),
        n,
        chunk,
        workers: LaneWorkers::new(chunk, threads),
        columns: (0..n as u32).collect(),
        pool,
        serial,
        primal: Workspace::new(),
        tangent: Workspace::new(),
        tangent_io: (Vec::new(), Vec::new()),
    }
}

/// Below this many node-sweeps (recording length × sweeps) a Hessian with default threads
/// runs serially: measured on 2 cores, handing the sweeps to rayon then costs more than it
/// saves (n = 30 was 1.7–2.5× slower in parallel; n = 100 faster).
pub const PARALLEL_WORK: usize = 4_000;

/// Largest chunk: lanes of the widest tangent type the sweeps use.
const MAX_LANES: usize = 16;

/// Columns per sweep chosen from `n`: all at once when they fit in 16 lanes, else 8 (1 for
/// `n = 0`, where there are no sweeps).
fn auto_chunk(n: usize) -> usize {
    if n <= MAX_LANES {
        n.max(1)
    } else {
        8
    }
}

fn check_direction(x: &[f64], v: &[f64], api: &str) {
    assert_eq!(
        x.len(),
        v.len(),
        "{api}: x has {} entries but the direction v has {}",
        x.len(),
        v.len()
    );
}

impl<F> PreparedHessian<F>
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    /// The dense Hessian at `x`.
    pub fn hessian(&mut self, x: &[f64]) -> Mat<f64> {
        self.value_gradient_hessian(x).2
    }

    /// `(f(x), ∇f(x), ∇²f(x))` at `x`.
    ///
    /// # Panics
    /// If `x` has a different length than the point first recorded.
    pub fn value_gradient_hessian(&mut self, x: &[f64]) -> (f64, Vec<f64>, Mat<f64>) {
        let mut grad = vec![0.0; self.n];
        let mut columns = vec![0.0; self.n * self.n];
        let value = self.value_gradient_hessian_into(x, &mut grad, &mut columns);
        let h = Mat::from_fn(self.n, self.n, |i, j| columns[j * self.n + i]);
        (value, grad, h)
    }

    /// Writes `∇f(x)` into `grad` and `∇²f(x)` column-major into `hessian` (`n²` entries)
    /// and returns `f(x)`. Allocates nothing once warm.
    ///
    /// # Panics
    /// If a buffer or `x` has the wrong length.
    pub fn value_gradient_hessian_into(
        &mut self,
        x: &[f64],
        grad: &mut [f64],
        hessian: &mut [f64],
    ) -> f64 {
        let n = self.n;
        assert_eq!(
            x.len(),
            n,
            "hessian: recorded with {n} inputs, called with {}",
            x.len()
        );
        assert_eq!(
            grad.len(),
            n,
            "hessian: gradient buffer has {} entries, expected {n}",
            grad.len()
        );
        assert_eq!(
            hessian.len(),
            n * n,
            "hessian: Hessian buffer has {} entries, expected {}",
            hessian.len(),
            n * n
        );
        let value = self.primal_sweep(x, grad);
        if n == 0 {
            // A function of no inputs: its value, and no columns to sweep for.
            return value;
        }
        let sweeps = n.div_ceil(self.chunk);
        let small = self.pool.is_none() && self.replay.program.len() * sweeps < PARALLEL_WORK;
        let serial = self.serial || small;
        let sweeps = Sweeps {
            program: &self.replay.program,
            x,
            groups: &self.columns,
            lanes: self.chunk,
            workers: &self.workers,
        };
        match &self.pool {
            Some(pool) => pool.install(|| sweeps.run(hessian, serial, None)),
            None => sweeps.run(hessian, serial, None),
        }
        symmetrize(hessian, n);
        value
    }

    /// `∇²f(x)·v` in one sweep of the recording.
    pub fn hvp(&mut self, x: &[f64], v: &[f64]) -> Vec<f64> {
        self.value_gradient_hvp(x, v).2
    }

    /// `(f(x), ∇f(x), ∇²f(x)·v)` in one sweep of the recording.
    ///
    /// # Panics
    /// If `x` or `v` has a different length than the point first recorded.
    pub fn value_gradient_hvp(&mut self, x: &[f64], v: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        let mut grad = vec![0.0; x.len()];
        let mut hv = vec![0.0; x.len()];
        let value = self.value_gradient_hvp_into(x, v, &mut grad, &mut hv);
        (value, grad, hv)
    }

    /// Writes `∇f(x)` into `grad` and `∇²f(x)·v` into `hv` and returns `f(x)`; allocates
    /// nothing once warm.
    ///
    /// # Panics
    /// If `x`, `v`, `grad` or `hv` has a different length than the point first recorded.
    pub fn value_gradient_hvp_into(
        &mut self,
        x: &[f64],
        v: &[f64],
        grad: &mut [f64],
        hv: &mut [f64],
    ) -> f64 {
        check_direction(x, v, "hvp");
        let n = self.n;
        assert_eq!(
            x.len(),
            n,
            "hvp: recorded with {n} inputs, called with {}",
            x.len()
        );
        assert_eq!(
            grad.len(),
            n,
            "hvp: gradient buffer has {} entries, expected {n}",
            grad.len()
        );
        assert_eq!(
            hv.len(),
            n,
            "hvp: product buffer has {} entries, expected {n}",
            hv.len()
        );
        let (inputs, out) = &mut self.tangent_io;
        inputs.clear();
        let tag = fresh_tag();
        inputs.extend(x.iter().zip(v).map(|(&a, &b)| Dual::tagged(a, b, tag)));
        out.resize(n, Dual::new(0.0, 0.0));
        // One sweep gives value, gradient and H·v, and checks the guards on the way: no
        // separate f64 sweep.
        self.replay.forward(x, inputs, &mut self.tangent);
        self.replay.program.backward(&mut self.tangent, out);
        for ((g, h), d) in grad.iter_mut().zip(hv.iter_mut()).zip(out.iter()) {
            *g = d.value;
            *h = d.tangent;
        }
        self.replay.program.output(&self.tangent).value
    }

    /// Writes `∇f(x)` into `grad` and returns `f(x)`: one `f64` sweep of the recording.
    ///
    /// # Panics
    /// If `x` or `grad` has a different length than the point first recorded.
    pub fn value_gradient_into(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        let n = self.n;
        assert_eq!(
            x.len(),
            n,
            "gradient: recorded with {n} inputs, called with {}",
            x.len()
        );
        assert_eq!(
            grad.len(),
            n,
            "gradient: buffer has {} entries, expected {n}",
            grad.len()
        );
        self.primal_sweep(x, grad)
    }

    /// How many times a changed branch forced a new recording.
    pub fn rerecord_count(&self) -> usize {
        self.replay.rerecords()
    }

    /// Columns per sweep.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Replays at `f64`, re-recording first if a branch guard fails; writes the gradient.
    fn primal_sweep(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.replay.forward(x, x, &mut self.primal);
        self.replay.program.backward(&mut self.primal, grad);
        self.replay.program.output(&self.primal)
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
