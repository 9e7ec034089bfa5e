//! Compiled replays: a recorded program turned into machine code for its gradient.
//!
//! An interpreted replay pays a few nanoseconds of dispatch per node; a compiled one pays
//! for compilation once, and only pays it back when the recording's repetition is rolled
//! into loops first (straight-line code of many thousands of nodes compiles slowly and
//! runs no faster than the interpreter). The stages, in order:
//!
//! - [`rolling`]: the loops of a recording, and how much of it they cover
//!   ([`crate::Recording::loop_coverage`]);
//! - [`trace`]: each rule's value and partials as an expression, read off the rule itself;
//! - `codegen` (feature `jit`): Cranelift code for the forward and reverse sweeps;
//! - `tier`: when a recording compiles, and what it says about it ([`ReplayMode`]).

#[cfg(feature = "jit")]
pub(crate) mod codegen;
pub(crate) mod rolling;
mod tier;
pub(crate) mod trace;

pub(crate) use tier::Tier;
pub use tier::{Compile, Interpreted, ReplayMode, COMPILE_AFTER};
