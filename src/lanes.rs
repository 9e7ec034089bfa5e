//! Replaying a recording with `N` tangent lanes per sweep, one worker per rayon thread: the
//! forward-over-reverse sweep shared by dense Hessian columns ([`crate::hessian`]) and
//! compressed sparse Hessians ([`crate::sparse`]).
//!
//! A sweep seeds input `i` with a 1 in lane `groups[i] − first` (when that lane exists),
//! replays the program at `DualVec<f64, N>` and reads each lane's adjoint tangents: `H·s`
//! for the seed vector `s` of each lane. The dense Hessian's groups are the columns
//! themselves (`groups[i] = i`); a sparse Hessian's are the colours.

use std::sync::Mutex;

use rayon::prelude::*;

use crate::forward::tag::fresh_tag;
use crate::forward::DualVec;
use crate::reverse::program::{Program, Workspace};

/// Per-thread sweep state for one lane count.
pub(crate) struct LaneWorker<const N: usize> {
    workspace: Workspace<DualVec<f64, N>>,
    inputs: Vec<DualVec<f64, N>>,
    adjoints: Vec<DualVec<f64, N>>,
}

impl<const N: usize> LaneWorker<N> {
    fn new() -> Self {
        LaneWorker {
            workspace: Workspace::new(),
            inputs: Vec::new(),
            adjoints: Vec::new(),
        }
    }

    /// One sweep for groups `first..first + cols.len()/n` (`n = groups.len()`), their
    /// products written column by column into `cols`; the gradient into `out`, with the
    /// value `Σ wₖ Fₖ`, if given.
    fn sweep(&mut self, job: &Sweeps<'_>, first: usize, cols: &mut [f64], out: Option<&Out<'_>>) {
        let n = job.groups.len();
        let count = cols.len() / n;
        debug_assert!(count <= N);
        let tag = fresh_tag();
        self.inputs.clear();
        self.inputs.extend(job.x.iter().enumerate().map(|(i, &v)| {
            let mut t = [0.0; N];
            if i < n {
                let lane = (job.groups[i] as usize).wrapping_sub(first);
                if lane < count {
                    t[lane] = 1.0;
                }
            }
            DualVec::tagged(v, t, tag)
        }));
        self.adjoints
            .resize(job.x.len(), DualVec::new(0.0, [0.0; N]));
        let holds = job.program.forward(&self.inputs, &mut self.workspace);
        // The guards were checked at this point by an f64 replay; what can still fail is a
        // block operation whose f64 kernel (faer) accepted a matrix its generic loop rejects
        // (one on the edge of positive definiteness). Never return a half-swept column.
        assert!(
            holds,
            "mixad: a factorisation that succeeded at f64 failed in a Hessian sweep (a matrix \
             on the edge of positive definiteness?)"
        );
        job.program
            .backward_weighted(&mut self.workspace, job.weights, &mut self.adjoints);
        for (lane, col) in cols.chunks_mut(n).enumerate() {
            for (h, a) in col.iter_mut().zip(&self.adjoints) {
                *h = a.tangents[lane];
            }
        }
        if let Some(out) = out {
            let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
            for (g, a) in out.0.iter_mut().zip(&self.adjoints) {
                *g = a.value;
            }
            out.1 = job
                .weights
                .iter()
                .enumerate()
                .map(|(k, &w)| w * job.program.output_at(&self.workspace, k).value)
                .sum();
        }
    }
}

/// Where the first sweep writes the gradient and the value.
pub(crate) type Out<'g> = Mutex<(&'g mut [f64], f64)>;

/// One mutex-guarded worker per thread, for one lane count (1, 2, 4, 8 or 16).
pub(crate) enum LaneWorkers {
    L1(Vec<Mutex<LaneWorker<1>>>),
    L2(Vec<Mutex<LaneWorker<2>>>),
    L4(Vec<Mutex<LaneWorker<4>>>),
    L8(Vec<Mutex<LaneWorker<8>>>),
    L16(Vec<Mutex<LaneWorker<16>>>),
}

impl LaneWorkers {
    /// Workers for `lanes` lanes per sweep (rounded up to 1, 2, 4, 8, 16) on `threads`.
    pub(crate) fn new(lanes: usize, threads: usize) -> Self {
        fn make<const N: usize>(threads: usize) -> Vec<Mutex<LaneWorker<N>>> {
            (0..threads.max(1))
                .map(|_| Mutex::new(LaneWorker::new()))
                .collect()
        }
        match lanes {
            1 => LaneWorkers::L1(make(threads)),
            2 => LaneWorkers::L2(make(threads)),
            3..=4 => LaneWorkers::L4(make(threads)),
            5..=8 => LaneWorkers::L8(make(threads)),
            _ => LaneWorkers::L16(make(threads)),
        }
    }

    fn sweep(
        &self,
        worker: usize,
        job: &Sweeps<'_>,
        first: usize,
        cols: &mut [f64],
        out: Option<&Out<'_>>,
    ) {
        fn run<const N: usize>(
            pool: &[Mutex<LaneWorker<N>>],
            worker: usize,
            job: &Sweeps<'_>,
            first: usize,
            cols: &mut [f64],
            out: Option<&Out<'_>>,
        ) {
            let mut w = pool[worker % pool.len()]
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            w.sweep(job, first, cols, out);
        }
        match self {
            LaneWorkers::L1(p) => run(p, worker, job, first, cols, out),
            LaneWorkers::L2(p) => run(p, worker, job, first, cols, out),
            LaneWorkers::L4(p) => run(p, worker, job, first, cols, out),
            LaneWorkers::L8(p) => run(p, worker, job, first, cols, out),
            LaneWorkers::L16(p) => run(p, worker, job, first, cols, out),
        }
    }
}

/// The sweeps of one point: `program` at `x`, products for every group.
pub(crate) struct Sweeps<'a> {
    pub(crate) program: &'a Program,
    pub(crate) x: &'a [f64],
    /// Per differentiated input, its group (column or colour); later inputs get no seed.
    pub(crate) groups: &'a [u32],
    /// Groups per sweep.
    pub(crate) lanes: usize,
    pub(crate) workers: &'a LaneWorkers,
    /// The outputs' adjoint seeds: the sweeps differentiate `Σ wₖ Fₖ` (`[1]` for a scalar
    /// function, `[σ, λ…]` for a Lagrangian).
    pub(crate) weights: &'a [f64],
}

impl Sweeps<'_> {
    /// Fills `products` (column-major, `n` rows, one column per group) with one sweep per
    /// `lanes` groups, serially or in parallel on the current rayon pool; the first sweep
    /// also writes the gradient and value into `out`, if given.
    pub(crate) fn run(&self, products: &mut [f64], serial: bool, out: Option<&Out<'_>>) {
        let block = self.groups.len() * self.lanes;
        let sweep = |(s, cols): (usize, &mut [f64])| {
            let worker = if serial {
                0
            } else {
                rayon::current_thread_index().unwrap_or(0)
            };
            let out = if s == 0 { out } else { None };
            self.workers.sweep(worker, self, s * self.lanes, cols, out);
        };
        if serial {
            products.chunks_mut(block).enumerate().for_each(sweep);
        } else {
            products.par_chunks_mut(block).enumerate().for_each(sweep);
        }
    }
}
