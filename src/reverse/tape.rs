//! The tape: a thread-local, append-only list of nodes, one per recorded operation (the
//! node layout and the sweep are in [`crate::reverse::node`]).
//!
//! Each value type has its own thread-local tape ([`TapeScalar`]). Recordings nest: an
//! active recording is a *segment* of the tape, identified by a process-unique id that its
//! variables carry, so a variable used outside its recording is caught, not misread.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use crate::chain::Decision;
use crate::reverse::node::{sweep_with_blocks, Node, TapeBlock};
use crate::reverse::program::ProgramLog;
use crate::reverse::step::{Fallible, Step};
use crate::reverse::Var;
use crate::rules::linalg::{BlockOp, Saved};
use crate::Scalar;

/// An active recording on a tape.
struct Segment<T> {
    start: u32,
    id: u64,
    log: Option<Box<ProgramLog<T>>>,
}

/// The per-thread, per-value-type tape. Buffers are kept between recordings, so a
/// recording in steady state allocates nothing.
pub struct Tape<T> {
    pub(crate) nodes: Vec<Node<T>>,
    /// Block operations, in node order.
    pub(crate) blocks: Vec<TapeBlock<T>>,
    adjoints: Vec<T>,
    segments: Vec<Segment<T>>,
    /// Id of the innermost active recording (0: none).
    current: u64,
    /// This tape's number: the high 32 bits of its recordings' ids (0 until the first
    /// recording). Other threads' tapes have other numbers, so a variable that crossed
    /// threads is told apart from one whose recording finished.
    number: u64,
    /// Numbers this tape used before (it takes a new one every 2³² recordings).
    old_numbers: Vec<u64>,
    /// The low 32 bits of the next recording's id.
    next_sequence: u64,
    /// Whether the innermost recording also logs a replayable program.
    logging: bool,
}

/// The next tape number (see `Tape::number`).
static NEXT_TAPE_NUMBER: AtomicU64 = AtomicU64::new(1);

impl<T: Scalar> Default for Tape<T> {
    fn default() -> Self {
        Tape::new()
    }
}

impl<T: Scalar> Tape<T> {
    /// An empty tape; the sink is added when the first recording begins.
    pub const fn new() -> Self {
        Tape {
            nodes: Vec::new(),
            blocks: Vec::new(),
            adjoints: Vec::new(),
            segments: Vec::new(),
            current: 0,
            number: 0,
            old_numbers: Vec::new(),
            next_sequence: 1 << 32,
            logging: false,
        }
    }

    /// A recording id no recording in this process had: this tape's number in the high 32
    /// bits, a sequence number in the low 32. Ids never repeat (a tape takes a new number
    /// after 2³² recordings), so a stale variable is always told apart.
    fn fresh_id(&mut self) -> u64 {
        if self.next_sequence >= 1 << 32 {
            let number = NEXT_TAPE_NUMBER.fetch_add(1, AtomicOrdering::Relaxed);
            assert!(
                number < 1 << 32,
                "mixad: 2^32 tape numbers used up; recording ids would repeat"
            );
            if self.number != 0 {
                self.old_numbers.push(self.number);
            }
            self.number = number;
            self.next_sequence = 1;
        }
        let id = self.number << 32 | self.next_sequence;
        self.next_sequence += 1;
        id
    }

    /// Whether recording `id` was made on this tape (this thread).
    fn made_here(&self, id: u64) -> bool {
        let number = id >> 32;
        number == self.number || self.old_numbers.contains(&number)
    }

    /// Opens a recording; returns its id and the index of its first node.
    pub(crate) fn begin(&mut self, log: bool) -> (u64, u32) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::leaf());
        }
        let id = self.fresh_id();
        let start = self.nodes.len() as u32;
        self.segments.push(Segment {
            start,
            id,
            log: log.then(|| Box::new(ProgramLog::new(start))),
        });
        self.current = id;
        self.logging = log;
        (id, start)
    }

    /// Takes the program log of recording `id` (which stops logging).
    pub(crate) fn take_log(&mut self, id: u64) -> Option<Box<ProgramLog<T>>> {
        let seg = self.segments.iter_mut().rev().find(|s| s.id == id)?;
        let log = seg.log.take();
        if self.current == id {
            self.logging = false;
        }
        log
    }

    /// Closes recording `id`, dropping its nodes.
    ///
    /// Recordings close innermost first; if an inner one was left open (it cannot be, with
    /// the RAII guard, but a bug must not corrupt the tape) it is closed too.
    pub(crate) fn end(&mut self, id: u64) {
        if !self.segments.iter().any(|s| s.id == id) {
            return;
        }
        while let Some(seg) = self.segments.pop() {
            self.nodes.truncate(seg.start as usize);
            while self.blocks.last().is_some_and(|b| b.first_out >= seg.start) {
                self.blocks.pop();
            }
            if seg.id == id {
                break;
            }
        }
        match self.segments.last() {
            Some(seg) => {
                self.current = seg.id;
                self.logging = seg.log.is_some();
            }
            None => {
                self.current = 0;
                self.logging = false;
            }
        }
    }

    /// Whether recording `id` is active on this tape (innermost or not).
    pub(crate) fn is_active(&self, id: u64) -> bool {
        self.segments.iter().any(|s| s.id == id)
    }

    /// Panics unless `recording` is the innermost active recording.
    #[inline(always)]
    pub(crate) fn check(&self, recording: u64) {
        if recording != self.current {
            self.mismatch(recording);
        }
    }

    #[cold]
    #[inline(never)]
    fn mismatch(&self, recording: u64) -> ! {
        if !self.made_here(recording) {
            panic!(
                "mixad: a reverse variable was used on another thread than its recording's \
                 (each thread records on its own tape; a variable sent to a rayon or std \
                 thread inside the function cannot be recorded there). Do the arithmetic on \
                 variables on the recording's thread, or differentiate the work of each \
                 thread separately and combine the results"
            );
        }
        if self.current == 0 {
            panic!(
                "mixad: a reverse variable was used with no recording active; variables live \
                 only inside the closure passed to reverse::gradient (or a sibling API)"
            );
        }
        if self.segments.iter().any(|s| s.id == recording) {
            panic!(
                "mixad: a variable of an outer recording was used inside an inner recording of \
                 the same type; its derivative would be lost. Differentiate the inner function \
                 at the outer variable's type instead (nested modes)"
            );
        }
        panic!(
            "mixad: a reverse variable from a recording that has finished was used; \
             variables live only inside their own recording"
        );
    }

    /// Panics unless both `a` and `b` are the innermost active recording.
    #[inline(always)]
    pub(crate) fn check2(&self, a: u64, b: u64) {
        if (a ^ self.current) | (b ^ self.current) != 0 {
            self.mismatch(if a != self.current { a } else { b });
        }
    }

    /// Handles a decision taken from `x` (and, for a comparison, another variable).
    ///
    /// Every variable involved must belong to an active recording (else the same clear
    /// panic as arithmetic gives). Each active recording that logs a program and owns one
    /// of the variables keeps the decision as a branch guard, whether or not it is the
    /// innermost: a decision on an outer variable taken inside a nested gradient still
    /// guards the outer recording.
    pub(crate) fn record_decision(&mut self, x: &Var<T>, decision: Decision<'_, Var<T>>) {
        let others: &[Var<T>] = match &decision {
            Decision::Compare { other, .. } => std::slice::from_ref(*other),
            Decision::Inspect { .. } => &[],
            Decision::Joint { others, .. } => others,
        };
        let variables = || std::iter::once(x).chain(others);
        for v in variables() {
            if v.index() != 0 && !self.segments.iter().any(|s| s.id == v.recording()) {
                self.mismatch(v.recording());
            }
        }
        for seg in &mut self.segments {
            let Some(log) = seg.log.as_deref_mut() else {
                continue;
            };
            let owns = |v: &Var<T>| v.index() != 0 && v.recording() == seg.id;
            if variables().any(owns) {
                log.guard(seg.id, x, decision);
            }
        }
    }

    /// Handles the failure of `what` on inputs `x` (a block operation's `Err`, a custom
    /// rule's panic): each active recording that logs a program and owns one of `x` keeps
    /// it as a guard, so a replay where the operation succeeds records again.
    #[cold]
    pub(crate) fn record_failure(&mut self, what: &Fallible, x: &[Var<T>]) {
        for seg in &mut self.segments {
            let Some(log) = seg.log.as_deref_mut() else {
                continue;
            };
            if x.iter().any(|v| v.index() != 0 && v.recording() == seg.id) {
                log.failure(seg.id, what.clone(), x);
            }
        }
    }

    /// Logs the step of the node just pushed (kept out of line: only recordings made for
    /// replay log).
    #[cold]
    #[inline(never)]
    pub(crate) fn log_step(&mut self, step: Step, consts: [T; 2]) {
        if let Some(log) = self.log() {
            log.step(step, consts);
        }
    }

    /// Logs a custom-rule call in the innermost recording's program (if it logs one);
    /// returns the index the call's first `Step::Custom` refers to.
    #[cold]
    #[inline(never)]
    pub(crate) fn log_custom(&mut self, rule: &crate::rules::CustomRule, level: usize) -> u32 {
        self.log().map_or(0, |log| log.custom(rule, level))
    }

    /// Appends a node and returns its index.
    #[inline(always)]
    pub(crate) fn push(&mut self, args: [u32; 2], partials: [T; 2]) -> u32 {
        let index = self.nodes.len();
        if index >= u32::MAX as usize {
            too_long();
        }
        self.nodes.push(Node { args, partials });
        index as u32
    }

    /// Records a block operation: pushes its output nodes (leaves; logged as
    /// `Step::Block` / `Step::BlockOutput` in a logging recording, with `consts` the
    /// values of constant inputs) and returns the first output's index.
    pub(crate) fn push_block(
        &mut self,
        op: BlockOp,
        args: Vec<u32>,
        consts: &[T],
        saved: Saved<T>,
    ) -> u32 {
        let first_out = self.nodes.len() as u32;
        let logged = self.log().map(|log| log.block(op, &args, consts));
        for k in 0..op.output_len() {
            self.push([0, 0], [T::zero(), T::zero()]);
            if let Some(block) = logged {
                let step = if k == 0 {
                    Step::Block(block)
                } else {
                    Step::BlockOutput
                };
                self.log_step(step, [T::zero(), T::zero()]);
            }
        }
        self.blocks.push(TapeBlock {
            op,
            args,
            saved,
            first_out,
        });
        first_out
    }

    /// Whether the innermost recording logs a replayable program.
    #[inline(always)]
    pub(crate) fn is_logging(&self) -> bool {
        self.logging
    }

    /// The program log of the innermost recording, if it logs one.
    #[inline(always)]
    pub(crate) fn log(&mut self) -> Option<&mut ProgramLog<T>> {
        if self.logging {
            self.segments.last_mut().and_then(|s| s.log.as_deref_mut())
        } else {
            None
        }
    }

    /// Sweeps nodes `first..` in reverse, with `seed` setting the initial adjoints, and
    /// returns the adjoint buffer (indexed by node).
    pub(crate) fn sweep(&mut self, first: u32, seed: impl FnOnce(&mut [T])) -> &[T] {
        let len = self.nodes.len();
        if self.adjoints.len() < len {
            self.adjoints.resize(len, T::zero());
        }
        // Only this recording's range (and the sink) is cleared: outer recordings' entries
        // are not in use while an inner one sweeps, and clearing them would make nested
        // gradients quadratic.
        self.adjoints[first as usize..len].fill(T::zero());
        self.adjoints[0] = T::zero();
        seed(&mut self.adjoints[..len]);
        sweep_with_blocks(
            &self.nodes,
            first as usize,
            &mut self.adjoints[..len],
            &self.blocks,
            |b| b.first_out as usize,
            |_, b, adjoints| b.pull(adjoints),
        );
        &self.adjoints[..len]
    }
}

#[cold]
#[inline(never)]
fn too_long() -> ! {
    panic!("mixad: a recording exceeded 2^32 - 1 operations")
}

/// Test hook: makes this thread's tape for `T` take a new tape number at its next
/// recording, as it does after 2³² recordings (so tests can check that variables of the
/// old number are still told apart).
#[doc(hidden)]
pub fn exhaust_recording_sequence<T: TapeScalar>() {
    with_tape::<T, _>(|t| t.next_sequence = 1 << 32);
}

/// A value type with its own thread-local tape, so `Var<Self>` can record.
///
/// Implemented for `f64`, `f32`, the duals mixad's nested modes use, `Var<f64>`,
/// `Var<Dual<f64>>`, `Var<Var<f64>>` and `Dual<Var<f64>>` (so third-order nestings such as
/// reverse over forward over reverse have a tape at every level).
/// [`crate::impl_tape_scalar!`] adds a scalar type of the caller's own crate (the orphan
/// rule keeps other crates from adding combinations of mixad's types: ask for them here).
pub trait TapeScalar: Scalar {
    /// This thread's tape for `Self` (mixad's own bookkeeping; see `with_tape`).
    #[doc(hidden)]
    fn tape_ptr() -> *mut Tape<Self>;
}

/// Runs `f` with this thread's tape for `T`.
///
/// Crate-internal discipline that makes this sound: every closure passed here is mixad's
/// own code that never calls user code, never re-enters `with_tape` for the same type, and
/// does arithmetic only on `T`'s parts, whose operations record on *other* tapes
/// (`Var<f64>`'s arithmetic uses the `f64` tape, never the `Var<f64>` tape). So no two
/// `&mut` to one tape are ever live. Crate-private: user code cannot call it.
#[inline(always)]
pub(crate) fn with_tape<T: TapeScalar, R>(f: impl FnOnce(&mut Tape<T>) -> R) -> R {
    // SAFETY: the pointer is valid for the life of this thread (see `slot_tape`), and by
    // the discipline above this is the only live reference to the tape.
    f(unsafe { &mut *T::tape_ptr() })
}

/// This thread's tape for `T`, for straight-line hot paths where a closure would not inline.
///
/// # Safety
/// The caller must not let the returned reference overlap any other reference to the same
/// tape (from this function or [`with_tape`]): it must not call user code or re-enter the
/// tape while holding it.
#[inline(always)]
pub(crate) unsafe fn tape_mut<'a, T: TapeScalar>() -> &'a mut Tape<T> {
    // SAFETY: the pointer is valid for the life of this thread (see `slot_tape`); the
    // caller guarantees exclusivity.
    unsafe { &mut *T::tape_ptr() }
}

/// Gives a concrete scalar type its own thread-local tape (implements [`TapeScalar`]).
///
/// mixad does this for the types it lists; a crate with its own scalar type `MyScalar`
/// (implementing [`Scalar`]) writes `mixad::impl_tape_scalar!(MyScalar);`.
#[macro_export]
macro_rules! impl_tape_scalar {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::reverse::TapeScalar for $t {
            #[inline(always)]
            fn tape_ptr() -> *mut $crate::reverse::Tape<Self> {
                ::std::thread_local! {
                    static SLOT: $crate::reverse::TapeSlot<$t> =
                        const { $crate::reverse::TapeSlot::new() };
                    static OWNER: $crate::reverse::TapeOwner<$t> =
                        $crate::reverse::TapeOwner::new(&SLOT);
                }
                $crate::reverse::slot_tape(&SLOT, &OWNER)
            }
        }
    )*};
}

use crate::forward::{Dual, DualVec};

impl_tape_scalar!(
    f64,
    f32,
    Dual<f64>,
    Dual<f32>,
    Dual<Dual<f64>>,
    DualVec<f64, 1>,
    DualVec<f64, 2>,
    DualVec<f64, 4>,
    DualVec<f64, 8>,
    DualVec<f64, 16>,
    Var<f64>,
    Var<Dual<f64>>,
    Var<Var<f64>>,
    Dual<Var<f64>>,
);
