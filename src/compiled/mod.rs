//! Compiled replays (being built): what turns a recorded program into machine code.
//!
//! An interpreted replay pays a few nanoseconds of dispatch per node; a compiled one pays
//! for compilation once, and only pays it back when the recording's repetition is rolled
//! into loops first (straight-line code of many thousands of nodes compiles slowly and
//! runs no faster than the interpreter). This module holds that first stage,
//! [`rolling`]: the loops of a recording, and how much of it they cover
//! ([`crate::Recording::loop_coverage`]).

pub(crate) mod rolling;
pub(crate) mod trace;
