//! [`Session`]: one active recording on this thread's tape, closed on drop.
//!
//! Dropping the session (normally, or while a panic unwinds through the user's function)
//! truncates the tape back to where the recording began, so a panic never leaves nodes
//! behind for the next recording.

use std::marker::PhantomData;

use crate::reverse::program::ProgramLog;
use crate::reverse::tape::{with_tape, Tape, TapeScalar};
use crate::reverse::Var;

/// An active recording. Not `Send`: it belongs to this thread's tape.
pub(crate) struct Session<S: TapeScalar> {
    id: u64,
    start: u32,
    open: bool,
    _thread_bound: PhantomData<*const S>,
}

impl<S: TapeScalar> Session<S> {
    /// Opens a recording; `log` also logs a replayable program.
    pub(crate) fn begin(log: bool) -> Self {
        let (id, start) = with_tape::<S, _>(|t| t.begin(log));
        Session {
            id,
            start,
            open: true,
            _thread_bound: PhantomData,
        }
    }

    /// Opens a (non-logging) recording and runs `f: Rⁿ → Rᵐ` on fresh inputs `x`;
    /// panics (naming `api`) unless every output belongs to this recording.
    pub(crate) fn record_outputs<F, R>(api: &str, f: F, x: &[S]) -> (Self, R)
    where
        F: FnOnce(&[Var<S>]) -> R,
        R: AsRef<[Var<S>]>,
    {
        let session = Session::begin(false);
        let inputs = session.inputs(x);
        let out = f(&inputs);
        for y in out.as_ref() {
            session.check_output(y, api);
        }
        (session, out)
    }

    /// The index of the recording's first node (its first input).
    pub(crate) fn start(&self) -> u32 {
        self.start
    }

    /// The recording's id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Records the inputs: one leaf node each.
    pub(crate) fn inputs(&self, x: &[S]) -> Vec<Var<S>> {
        with_tape::<S, _>(|t| {
            t.check(self.id);
            x.iter()
                .map(|&v| {
                    let index = t.push([0, 0], [S::zero(), S::zero()]);
                    if let Some(log) = t.log() {
                        log.step(crate::reverse::step::Step::Input, [S::zero(), S::zero()]);
                    }
                    Var::from_parts(v, index, self.id)
                })
                .collect()
        })
    }

    /// Panics unless `y` is a constant or a variable of this recording.
    pub(crate) fn check_output(&self, y: &Var<S>, api: &str) {
        assert!(
            y.index() == 0 || y.recording() == self.id,
            "{api}: the function returned a variable that does not belong to this recording \
             (a variable kept from another recording)"
        );
    }

    /// Runs `f` on the tape (still holding the recording), then closes the recording.
    pub(crate) fn finish<R>(
        mut self,
        f: impl FnOnce(&mut Tape<S>, Option<Box<ProgramLog<S>>>) -> R,
    ) -> R {
        self.open = false;
        let id = self.id;
        with_tape::<S, _>(|t| {
            let log = t.take_log(id);
            let r = f(t, log);
            t.end(id);
            r
        })
    }
}

impl<S: TapeScalar> Drop for Session<S> {
    fn drop(&mut self) {
        if self.open {
            let id = self.id;
            with_tape::<S, _>(|t| {
                t.end(id);
            });
        }
    }
}
