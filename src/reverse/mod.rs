//! Reverse mode: a pullback tape and the gradient APIs built on it.
//!
//! Running the user's function on [`Var`]s records one node per operation on a
//! thread-local [`Tape`]: the indices of its operands and its local partials (taken from
//! [`crate::rules`]). One backward sweep then accumulates the gradient, at a cost that is a
//! small multiple of `f` whatever the number of inputs.
//!
//! - One-shot: [`gradient`], [`value_and_gradient`], [`try_gradient`], [`vjp`],
//!   [`jacobian`], [`pullback`] (keeps the recording to pull back many cotangents).
//! - Record once, replay many times: [`crate::record`] gives a [`crate::Recording`] whose branch
//!   guards re-record whenever a decision would go the other way.
//!
//! Real Rust differentiates as written: mutation of slices, `Vec`s, struct fields and
//! nalgebra matrices, `?` and early returns, loops with data-dependent trip counts,
//! `catch_unwind` inside the function. A panic leaves the tape clean for the next call.
//! Recordings nest (a gradient inside a differentiated function works); a variable used
//! outside its recording panics with a message saying so.

mod gradient;
pub(crate) mod node;
pub(crate) mod program;
mod pullback;
mod recording;
mod replayer;
mod slot;
pub(crate) mod step;
pub(crate) mod tape;
mod translate;
mod var;

pub use gradient::{
    gradient, jacobian, try_gradient, try_value_and_gradient, value_and_gradient, vjp,
};
pub use pullback::{pullback, Pullback};
#[cfg(test)]
pub(crate) use replayer::record_program;
pub(crate) use replayer::Replayer;
pub use replayer::{BranchChanged, Outputs};
#[doc(hidden)]
pub use slot::{slot_tape, TapeOwner, TapeSlot};
#[doc(hidden)]
pub use tape::exhaust_recording_sequence;
pub use tape::{Tape, TapeScalar};
pub use var::Var;
