//! The reusable sparse-Hessian plan: recording, pattern, colouring, per-thread sweep state
//! and the compressed product buffer, built once; each new point costs only the sweeps.

use std::sync::{Arc, Mutex};

use crate::hessian::PARALLEL_WORK;
use crate::lanes::{LaneWorkers, Sweeps};
use crate::reverse::program::{Program, Workspace};
use crate::reverse::{Replayer, Var};
use crate::sparse::acyclic;
use crate::sparse::colouring::{self, Colouring};
use crate::sparse::matrix::SparseHessian;
use crate::sparse::pattern::{self, SparsityPattern};

/// Options for [`prepare`](crate::sparse::prepare): colours per sweep and threads.
///
/// ```
/// use mixad::sparse::SparseOptions;
/// let serial = SparseOptions { threads: Some(1), ..Default::default() };
/// let h = mixad::sparse::prepare(|x| x[0] * x[1], &[1.0, 2.0], serial).hessian(&[3.0, 4.0]);
/// assert_eq!(h.get(1, 0), 1.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SparseOptions {
    /// Colours per sweep (tangent lanes), one of 1, 2, 4, 8, 16; `None`: all colours in one
    /// sweep when they fit in 16 lanes, else 16 per sweep.
    pub lanes: Option<usize>,
    /// Threads for the sweeps: `Some(1)` is serial, `Some(t)` a pool of `t` threads; `None`
    /// uses rayon's global pool when the work is large enough to pay for it.
    pub threads: Option<usize>,
    /// How the pattern is coloured: star (default) or acyclic.
    pub colouring: ColouringKind,
}

/// The colouring of a [`SparseOptions`].
///
/// ```
/// use mixad::sparse::{ColouringKind, SparseOptions};
/// use num_traits::Float;
/// let options = SparseOptions { colouring: ColouringKind::Acyclic, ..Default::default() };
/// let h = mixad::sparse::prepare(|x| (x[0] * x[1] * x[2]).sin(), &[1.0; 3], options).hessian(&[0.5; 3]);
/// assert!((h.get(0, 0) + 0.125f64.sin() * 0.0625).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColouringKind {
    /// Star colouring: every entry read directly from one product.
    #[default]
    Star,
    /// Acyclic colouring: possibly fewer colours (products), entries recovered by
    /// substitution along two-coloured trees; colouring costs more.
    Acyclic,
}

/// What depends on the recording: rebuilt when a branch guard forces a new one.
struct Structure {
    /// Id of the program it was built for.
    program: u64,
    pattern: Arc<SparsityPattern>,
    colouring: Colouring,
    lanes: usize,
}

/// A sparse Hessian prepared for repeated use at new points: made by
/// [`prepare`](crate::sparse::prepare).
///
/// The first call records `f`, detects the pattern and colours it; later points replay the
/// recording in `⌈colours / lanes⌉` compressed sweeps. If a branch of `f` goes the other
/// way at a new point, `f` is recorded again there and the pattern and colouring are
/// rebuilt ([`PreparedSparseHessian::detection_count`] counts them).
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T { x.windows(2).fold(T::zero(), |s, w| s + (w[1] - w[0]).powi(4)) }
/// let mut plan = mixad::sparse::prepare(|x| f(x), &[0.0; 100], Default::default());
/// assert_eq!(plan.colour_count(), 3); // tridiagonal
/// let mut values = Vec::new();
/// let mut grad = vec![0.0; 100];
/// let x: Vec<f64> = (0..100).map(|i| (i as f64).sin()).collect();
/// plan.value_gradient_hessian_into(&x, &mut grad, &mut values); // no allocation once warm
/// assert_eq!(values.len(), plan.pattern().nnz());
/// ```
pub struct PreparedSparseHessian<F> {
    replay: Replayer<F>,
    /// Variables: the first `n` inputs of the recording; the rest are parameters.
    n: usize,
    options: SparseOptions,
    threads: usize,
    pool: Option<rayon::ThreadPool>,
    structure: Structure,
    workers: LaneWorkers,
    primal: Workspace<f64>,
    primal_grad: Vec<f64>,
    compressed: Vec<f64>,
    detections: usize,
}

/// Records `f` at `inputs` and builds the plan for the Hessian with respect to the first
/// `n` inputs (the rest are parameters with no tangent).
pub(crate) fn build<F>(
    f: F,
    inputs: &[f64],
    n: usize,
    options: SparseOptions,
    api: &str,
) -> PreparedSparseHessian<F>
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    if let Some(l) = options.lanes {
        assert!(
            matches!(l, 1 | 2 | 4 | 8 | 16),
            "{api}: lanes must be 1, 2, 4, 8 or 16, not {l}"
        );
    }
    assert!(
        options.threads != Some(0),
        "{api}: threads must be at least 1"
    );
    let pool = match options.threads {
        Some(t) if t > 1 => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .expect("sparse: could not start the thread pool"),
        ),
        _ => None,
    };
    let threads = match (&pool, options.threads) {
        (_, Some(1)) => 1,
        (Some(p), _) => p.current_num_threads(),
        (None, _) => rayon::current_num_threads(),
    };
    let replay = Replayer::new(f, inputs, 2, "mixad::sparse_hessian");
    let structure = analyse(&replay.program, n, options);
    let workers = LaneWorkers::new(structure.lanes, threads);
    PreparedSparseHessian {
        replay,
        n,
        options,
        threads,
        pool,
        structure,
        workers,
        primal: Workspace::new(),
        primal_grad: Vec::new(),
        compressed: Vec::new(),
        detections: 1,
    }
}

/// Pattern, colouring and lane count for `program`.
fn analyse(program: &Program, n: usize, options: SparseOptions) -> Structure {
    let pattern = pattern::detect(program, n);
    let colouring = match options.colouring {
        ColouringKind::Star => {
            let c = colouring::star(&pattern);
            debug_assert!(colouring::recovers_directly(&pattern, &c));
            c
        }
        ColouringKind::Acyclic => acyclic::acyclic(&pattern),
    };
    let lanes = options.lanes.unwrap_or_else(|| auto_lanes(colouring.count));
    Structure {
        program: program.id(),
        pattern: Arc::new(pattern),
        colouring,
        lanes,
    }
}

/// Lanes per sweep: all colours in one sweep when they fit in 16 lanes, else 16 per sweep
/// (sweeps then run in parallel). The sweeps of a large recording are bound by memory
/// traffic, so one wide sweep beats several narrow parallel ones: at n = 10⁶ (extended
/// Rosenbrock, 3 colours, 2 cores) one 4-lane sweep took 650 ms, two parallel 2-lane
/// sweeps 900 ms.
fn auto_lanes(colours: usize) -> usize {
    colours.max(1).next_power_of_two().min(16)
}

impl<F> PreparedSparseHessian<F>
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    /// The sparse Hessian at `x`.
    ///
    /// # Panics
    /// If `x` has a different length than the point first recorded.
    pub fn hessian(&mut self, x: &[f64]) -> SparseHessian {
        self.value_gradient_hessian(x).2
    }

    /// `(f(x), ∇f(x), ∇²f(x))` at `x`, from the same sweeps.
    ///
    /// # Panics
    /// If `x` has a different length than the point first recorded.
    pub fn value_gradient_hessian(&mut self, x: &[f64]) -> (f64, Vec<f64>, SparseHessian) {
        let mut grad = vec![0.0; self.n];
        let mut values = Vec::new();
        let value = self.value_gradient_hessian_into(x, &mut grad, &mut values);
        let h = SparseHessian::new(self.structure.pattern.clone(), values);
        (value, grad, h)
    }

    /// Writes `∇f(x)` into `grad` and the Hessian's values, in the order of
    /// [`PreparedSparseHessian::pattern`], into `values` (resized to its length), and
    /// returns `f(x)`. Allocates nothing once warm, unless a changed branch rebuilt the
    /// pattern.
    ///
    /// # Panics
    /// If `x` or `grad` has a different length than the point first recorded.
    pub fn value_gradient_hessian_into(
        &mut self,
        x: &[f64],
        grad: &mut [f64],
        values: &mut Vec<f64>,
    ) -> f64 {
        let n = self.n;
        let inputs = self.replay.program.inputs();
        assert_eq!(
            x.len(),
            inputs,
            "sparse_hessian: recorded with {inputs} inputs, called with {}",
            x.len()
        );
        assert_eq!(
            grad.len(),
            n,
            "sparse_hessian: gradient buffer has {} entries, expected {n}",
            grad.len()
        );
        self.evaluate(x, grad, values)
    }

    /// The pattern of the current recording: the order of the values.
    pub fn pattern(&self) -> &SparsityPattern {
        &self.structure.pattern
    }

    /// The pattern, shared (cheap to clone).
    pub(crate) fn shared_pattern(&self) -> Arc<SparsityPattern> {
        self.structure.pattern.clone()
    }

    /// Colours of the current colouring: Hessian-vector products per point.
    pub fn colour_count(&self) -> usize {
        self.structure.colouring.count
    }

    /// Colours per sweep.
    pub fn lanes(&self) -> usize {
        self.structure.lanes
    }

    /// Sweeps per point: `⌈colours / lanes⌉`.
    pub fn sweep_count(&self) -> usize {
        self.structure
            .colouring
            .count
            .div_ceil(self.structure.lanes)
    }

    /// How many times the pattern was detected: 1, plus one per changed branch.
    pub fn detection_count(&self) -> usize {
        self.detections
    }

    /// How many times a changed branch forced a new recording.
    pub fn rerecord_count(&self) -> usize {
        self.replay.rerecords()
    }

    /// The core: guards, sweeps, recovery. `x` holds all inputs (variables, then
    /// parameters); lengths are checked by the caller.
    pub(crate) fn evaluate(&mut self, x: &[f64], grad: &mut [f64], values: &mut Vec<f64>) -> f64 {
        let n = self.n;
        if self.replay.program.can_fail() {
            // The f64 replay checks the guards (and that every factorisation and custom
            // rule still succeeds) and re-records where one fails.
            self.replay.forward(x, x, &mut self.primal);
            if self.replay.program.id() != self.structure.program {
                self.structure = analyse(&self.replay.program, n, self.options);
                self.workers = LaneWorkers::new(self.structure.lanes, self.threads);
                self.detections += 1;
            }
        }
        let program = &self.replay.program;
        let colours = self.structure.colouring.count;
        let value = if colours == 0 {
            // No second derivatives: value and gradient from one f64 sweep.
            self.replay.forward(x, x, &mut self.primal);
            let program = &self.replay.program;
            self.primal_grad.resize(x.len(), 0.0);
            program.backward(&mut self.primal, &mut self.primal_grad);
            grad.copy_from_slice(&self.primal_grad[..n]);
            program.output(&self.primal)
        } else {
            self.compressed.resize(n * colours, 0.0);
            let lanes = self.structure.lanes;
            let sweeps = colours.div_ceil(lanes);
            let serial = self.options.threads == Some(1)
                || sweeps == 1
                || (self.pool.is_none() && program.len() * sweeps < PARALLEL_WORK);
            let first = Mutex::new((grad, 0.0));
            let sweeps = Sweeps {
                program,
                x,
                groups: &self.structure.colouring.colours,
                lanes,
                workers: &self.workers,
            };
            let compressed = &mut self.compressed;
            match &self.pool {
                Some(pool) if !serial => {
                    pool.install(|| sweeps.run(compressed, false, Some(&first)))
                }
                _ => sweeps.run(compressed, serial, Some(&first)),
            }
            let (_, value) = first.into_inner().unwrap_or_else(|p| p.into_inner());
            value
        };
        self.structure.colouring.recover(&self.compressed, values);
        value
    }
}
