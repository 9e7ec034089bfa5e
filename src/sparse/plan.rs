//! The reusable sparse-Hessian plan: pattern, colouring, per-thread sweep state and the
//! compressed product buffer of one recording, built once; each new point costs only the
//! sweeps. A [`crate::Recording`] keeps one once its first sparse Hessian is asked for, and
//! rebuilds it when a changed branch re-records the function.

use std::sync::{Arc, Mutex};

use crate::forward::width::MAX_LANES;
use crate::lanes::{LaneWorkers, Sweeps};
use crate::parallel::Pool;
use crate::reverse::program::Program;
use crate::sparse::acyclic;
use crate::sparse::colouring::{self, Colouring};
use crate::sparse::pattern::{self, SparsityPattern};

/// How a sparse Hessian's pattern is coloured ([`crate::Options::colouring`]).
///
/// ```
/// use mixad::{ColouringKind, Options};
/// use num_traits::Float;
/// let options = Options { colouring: ColouringKind::Acyclic, ..Options::default() };
/// let mut rec = mixad::record_with(|x| (x[0] * x[1] * x[2]).sin(), &[1.0; 3], options);
/// let h = rec.sparse_hessian(&[0.5; 3]);
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

/// The sparse Hessian's plan for one program: rebuilt when a branch guard forces a new
/// recording.
pub(crate) struct SparsePlan {
    /// Id of the program it was built for.
    program: u64,
    pattern: Arc<SparsityPattern>,
    colouring: Colouring,
    lanes: usize,
    workers: LaneWorkers,
    compressed: Vec<f64>,
}

impl SparsePlan {
    /// Detects the pattern of `program` (the Hessian of any weighted sum of its outputs)
    /// with respect to its inputs, colours it, and prepares `lanes` colours per sweep
    /// (`None`: chosen from the colour count) on `threads` threads.
    pub(crate) fn new(
        program: &Program,
        kind: ColouringKind,
        lanes: Option<usize>,
        threads: usize,
    ) -> Self {
        let pattern = pattern::detect(program, program.inputs());
        let colouring = match kind {
            ColouringKind::Star => {
                let c = colouring::star(&pattern);
                debug_assert!(colouring::recovers_directly(&pattern, &c));
                c
            }
            ColouringKind::Acyclic => acyclic::acyclic(&pattern),
        };
        let lanes = lanes.unwrap_or_else(|| auto_lanes(colouring.count));
        SparsePlan {
            program: program.id(),
            pattern: Arc::new(pattern),
            colouring,
            lanes,
            workers: LaneWorkers::new(lanes, threads),
            compressed: Vec::new(),
        }
    }

    /// True if the plan was built for `program`.
    pub(crate) fn fits(&self, program: &Program) -> bool {
        self.program == program.id()
    }

    /// The pattern: the order of the values.
    pub(crate) fn pattern(&self) -> &Arc<SparsityPattern> {
        &self.pattern
    }

    /// Colours: Hessian-vector products per point.
    pub(crate) fn colour_count(&self) -> usize {
        self.colouring.count
    }

    /// The Hessian of `Σ wₖ Fₖ` at `x` (guards already checked there, `colour_count() > 0`):
    /// its values in the pattern's order into `values` (resized to the pattern), its
    /// gradient into `grad`; returns its value.
    pub(crate) fn sweep(
        &mut self,
        program: &Program,
        x: &[f64],
        weights: &[f64],
        grad: &mut [f64],
        values: &mut Vec<f64>,
        pool: &Pool,
    ) -> f64 {
        let n = x.len();
        let colours = self.colouring.count;
        debug_assert!(colours > 0);
        self.compressed.resize(n * colours, 0.0);
        let count = colours.div_ceil(self.lanes);
        let first = Mutex::new((grad, 0.0));
        let sweeps = Sweeps {
            program,
            x,
            groups: &self.colouring.colours,
            lanes: self.lanes,
            workers: &self.workers,
            weights,
        };
        let compressed = &mut self.compressed;
        pool.run(count, program.len() * count, |serial| {
            sweeps.run(compressed, serial, Some(&first))
        });
        let (_, value) = first.into_inner().unwrap_or_else(|p| p.into_inner());
        self.colouring.recover(&self.compressed, values);
        value
    }
}

/// Lanes per sweep: all colours in one sweep when they fit in 16 lanes, else 16 per sweep
/// (sweeps then run in parallel), wider than [`crate::forward::lanes_for`]'s 8 on purpose. The sweeps of a large recording are bound by memory
/// traffic, so one wide sweep beats several narrow parallel ones: at n = 10⁶ (extended
/// Rosenbrock, 3 colours, 2 cores) one 4-lane sweep took 650 ms, two parallel 2-lane
/// sweeps 900 ms.
fn auto_lanes(colours: usize) -> usize {
    colours.max(1).next_power_of_two().min(MAX_LANES)
}
