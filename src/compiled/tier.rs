//! When a recording's gradient replays switch from the interpreter to compiled code, and
//! what a recording says about it ([`ReplayMode`]).
//!
//! Compiling costs milliseconds, so a recording compiles only once it has been replayed
//! [`COMPILE_AFTER`] times (a caller making fewer calls never pays for it), or when asked
//! ([`crate::Recording::compile`]). It is refused, and the interpreter keeps the work,
//! where compiled code would not pay: a recording calling custom rules or block
//! operations (not compiled yet), or one whose straight-line stretches outside rolled
//! loops are too long (straight-line code of many thousands of operations compiles
//! slowly and runs no faster than the interpreter). A re-recording starts the count
//! again; the code of the old recording is freed.

use std::fmt;

#[cfg(feature = "jit")]
use super::codegen::{compile, Code};
use super::rolling::{roll, Piece};
use crate::reverse::program::Program;

/// Gradient replays of one recording before it is compiled.
pub const COMPILE_AFTER: usize = 10;

/// Most operations outside rolled loops that a compiled recording may have.
const MAX_STRAIGHT: usize = 20_000;

/// When a recording's gradient replays are compiled ([`crate::Options::compile`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compile {
    /// After [`COMPILE_AFTER`] gradient replays of the same recording, where compiled
    /// code pays.
    #[default]
    Auto,
    /// At the first gradient replay, where compiled code pays.
    Immediately,
    /// Never: every replay is interpreted.
    Never,
}

/// How a recording's gradient replays run: [`crate::Recording::replay_mode`].
#[derive(Clone, Debug, PartialEq)]
pub enum ReplayMode {
    /// By the interpreter, for the reason given.
    Interpreted(Interpreted),
    /// By machine code generated for this recording; `loop_coverage` is the fraction of
    /// its operations that run inside loops.
    Compiled {
        /// See [`crate::Recording::loop_coverage`].
        loop_coverage: f64,
    },
}

/// Why a recording's replays are interpreted.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Interpreted {
    /// Not compiled yet: compiled after [`COMPILE_AFTER`] gradient replays of the same
    /// recording; `replays` so far.
    NotYet {
        /// Gradient replays of the current recording so far.
        replays: usize,
    },
    /// mixad was built without its `jit` feature.
    FeatureOff,
    /// Compilation is turned off in the recording's options ([`Compile::Never`]).
    Disabled,
    /// The recording calls custom rules or linear-algebra block operations, which the
    /// code generator does not handle yet.
    HasCalls,
    /// Too much of the recording lies outside loops for compiled code to pay off.
    TooLittleRepetition {
        /// Operations outside rolled loops.
        straight: usize,
        /// The fraction inside loops.
        loop_coverage: f64,
    },
    /// The code generator failed, or does not support this host (its message).
    Backend(String),
}

impl fmt::Display for Interpreted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interpreted::NotYet { replays } => write!(
                f,
                "not compiled yet ({replays} of {COMPILE_AFTER} gradient replays before compiling)"
            ),
            Interpreted::FeatureOff => write!(f, "mixad was built without its `jit` feature"),
            Interpreted::Disabled => write!(f, "compilation is turned off in the options"),
            Interpreted::HasCalls => write!(
                f,
                "the recording calls custom rules or block operations, which are not compiled yet"
            ),
            Interpreted::TooLittleRepetition {
                straight,
                loop_coverage,
            } => write!(
                f,
                "{straight} operations lie outside loops ({:.1} % inside): compiling would not pay",
                100.0 * loop_coverage
            ),
            Interpreted::Backend(m) => write!(f, "the code generator failed: {m}"),
        }
    }
}

impl std::error::Error for Interpreted {}

/// The compilation state of one recording.
pub(crate) struct Tier {
    policy: Compile,
    /// The id of the program the state is for.
    program: u64,
    replays: usize,
    state: State,
}

enum State {
    Counting,
    #[cfg(feature = "jit")]
    Ready(Box<Code>, f64),
    Refused(Interpreted),
}

impl Tier {
    pub(crate) fn new(policy: Compile) -> Self {
        Tier {
            policy,
            program: 0,
            replays: 0,
            state: State::Counting,
        }
    }

    /// Follows a re-recording: a new program starts uncompiled.
    fn follow(&mut self, program: &Program) {
        if self.program != program.id() {
            *self = Tier {
                program: program.id(),
                ..Tier::new(self.policy)
            };
        }
    }

    /// Counts one gradient replay of `program` and returns its compiled code, compiling it
    /// on the replay after [`COMPILE_AFTER`].
    #[cfg(feature = "jit")]
    pub(crate) fn code_for(&mut self, program: &Program) -> Option<&mut Code> {
        self.follow(program);
        self.replays += 1;
        let due = match self.policy {
            Compile::Auto => self.replays > COMPILE_AFTER,
            Compile::Immediately => true,
            Compile::Never => false,
        };
        if due && matches!(self.state, State::Counting) {
            let _ = self.compile(program);
        }
        match &mut self.state {
            State::Ready(code, _) => Some(code),
            _ => None,
        }
    }

    /// Compiles `program` now (if not done or refused already).
    pub(crate) fn compile(&mut self, program: &Program) -> Result<(), Interpreted> {
        self.follow(program);
        if matches!(self.state, State::Counting) {
            self.state = match prepare(program) {
                Ok(state) => state,
                Err(why) => State::Refused(why),
            };
        }
        match &self.state {
            State::Refused(why) => Err(why.clone()),
            _ => Ok(()),
        }
    }

    /// How `program`'s gradient replays run.
    pub(crate) fn mode(&self, program: &Program) -> ReplayMode {
        if self.policy == Compile::Never && matches!(self.state, State::Counting) {
            return ReplayMode::Interpreted(Interpreted::Disabled);
        }
        if self.program != program.id() {
            return ReplayMode::Interpreted(if cfg!(feature = "jit") {
                Interpreted::NotYet { replays: 0 }
            } else {
                Interpreted::FeatureOff
            });
        }
        match &self.state {
            State::Counting if !cfg!(feature = "jit") => {
                ReplayMode::Interpreted(Interpreted::FeatureOff)
            }
            State::Counting => ReplayMode::Interpreted(Interpreted::NotYet {
                replays: self.replays,
            }),
            #[cfg(feature = "jit")]
            State::Ready(_, coverage) => ReplayMode::Compiled {
                loop_coverage: *coverage,
            },
            State::Refused(why) => ReplayMode::Interpreted(why.clone()),
        }
    }
}

/// Rolls and compiles `program`, or says why not.
fn prepare(program: &Program) -> Result<State, Interpreted> {
    if !cfg!(feature = "jit") {
        return Err(Interpreted::FeatureOff);
    }
    if program.has_calls() {
        return Err(Interpreted::HasCalls);
    }
    let rolled = roll(program);
    let straight: usize = rolled
        .pieces
        .iter()
        .map(|p| match p {
            Piece::Straight { start, end } => (end - start) as usize,
            Piece::Loop(_) => 0,
        })
        .sum();
    if straight > MAX_STRAIGHT {
        return Err(Interpreted::TooLittleRepetition {
            straight,
            loop_coverage: rolled.coverage(),
        });
    }
    #[cfg(feature = "jit")]
    {
        let code = compile(program, &rolled).map_err(Interpreted::Backend)?;
        Ok(State::Ready(Box::new(code), rolled.coverage()))
    }
    #[cfg(not(feature = "jit"))]
    unreachable!("refused above without the jit feature")
}
