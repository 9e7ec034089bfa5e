//! Parallelism: how the sweeps of one evaluation (dense Hessian columns, sparse Hessian
//! colours) are spread over threads. The one place that decides when to go parallel and
//! which pool to use.
//!
//! [`Parallelism::Auto`] (the default) runs the sweeps on rayon's global pool when the
//! work is large enough to pay for handing it out (at least [`PARALLEL_WORK`]
//! node-sweeps), else serially. [`Parallelism::Serial`] never starts a thread;
//! [`Parallelism::Threads`] uses a pool of its own with that many threads. faer's
//! `Par` converts: `Par::Seq` is `Serial`, `Par::Rayon(t)` is `Threads(t)`.

use std::num::NonZeroUsize;

/// How the sweeps of one evaluation are spread over threads (see the module docs).
///
/// ```
/// use mixad::{Options, Parallelism};
/// let options = Options { parallelism: Parallelism::Serial, ..Options::default() };
/// let mut rec = mixad::record_with(|x| x[0] * x[1], &[1.0, 2.0], options);
/// assert_eq!(rec.hessian(&[3.0, 4.0])[(1, 0)], 1.0);
/// let from_faer: Parallelism = mixad::faer::Par::Seq.into();
/// assert_eq!(from_faer, Parallelism::Serial);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Parallelism {
    /// rayon's global pool when the work is at least [`PARALLEL_WORK`] node-sweeps, else
    /// serial.
    #[default]
    Auto,
    /// One thread, the caller's.
    Serial,
    /// A pool of this many threads, owned by the prepared object (1 is serial).
    Threads(NonZeroUsize),
}

impl From<faer::Par> for Parallelism {
    fn from(par: faer::Par) -> Self {
        match par {
            faer::Par::Seq => Parallelism::Serial,
            faer::Par::Rayon(t) => Parallelism::Threads(t),
        }
    }
}

/// Below this many node-sweeps (recording length × sweeps), [`Parallelism::Auto`] runs
/// serially: measured on 2 cores, handing the sweeps to rayon then costs more than it
/// saves (a dense Hessian at n = 30 was 1.7–2.5× slower in parallel; n = 100 faster).
pub const PARALLEL_WORK: usize = 4_000;

/// A [`Parallelism`] made concrete: the pool (if owned) and the thread count.
pub(crate) struct Pool {
    parallelism: Parallelism,
    own: Option<rayon::ThreadPool>,
}

impl Pool {
    /// The pool for `parallelism`; `context` names the API in the message if the pool
    /// cannot start.
    pub(crate) fn new(parallelism: Parallelism, context: &str) -> Self {
        let own = match parallelism {
            Parallelism::Threads(t) if t.get() > 1 => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t.get())
                    .build()
                    .unwrap_or_else(|e| panic!("{context}: could not start {t} threads: {e}")),
            ),
            _ => None,
        };
        Pool { parallelism, own }
    }

    /// Threads the sweeps may run on (one worker's state per thread).
    pub(crate) fn threads(&self) -> usize {
        match (&self.own, self.parallelism) {
            (Some(p), _) => p.current_num_threads(),
            (None, Parallelism::Auto) => rayon::current_num_threads(),
            (None, _) => 1,
        }
    }

    /// Runs `job(serial)`: `serial` is true when the `sweeps` sweeps of `work` node-sweeps
    /// in total should run on the caller's thread, else `job` runs inside the pool.
    pub(crate) fn run<R: Send>(
        &self,
        sweeps: usize,
        work: usize,
        job: impl FnOnce(bool) -> R + Send,
    ) -> R {
        if sweeps <= 1 {
            return job(true);
        }
        match (&self.own, self.parallelism) {
            (Some(pool), _) => pool.install(|| job(false)),
            (None, Parallelism::Auto) => job(work < PARALLEL_WORK),
            (None, _) => job(true),
        }
    }
}
