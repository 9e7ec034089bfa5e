//! Fast access to this thread's tape from every recorded operation.
//!
//! Every operation on a `Var` needs this thread's tape. A `thread_local!` holding the tape
//! itself has a destructor, so each access goes through a lazy-initialisation check that
//! the compiler does not inline; measured with callgrind on extended Rosenbrock, that access
//! was the largest single cost of recording. Instead, [`TapeSlot`] is a destructor-free
//! thread-local holding a raw pointer (one `fs:`-relative load), and the tape is owned by a
//! second, ordinary thread-local ([`TapeOwner`]) that frees it when the thread exits.

use std::cell::Cell;
use std::ptr;
use std::thread::LocalKey;

use crate::reverse::tape::Tape;
use crate::Scalar;

/// The per-thread, per-type slot: a pointer to the tape (null until first use).
pub struct TapeSlot<T> {
    tape: Cell<*mut Tape<T>>,
}

impl<T> TapeSlot<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        TapeSlot {
            tape: Cell::new(ptr::null_mut()),
        }
    }
}

impl<T> Default for TapeSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Owns a thread's tape and frees it at thread exit, clearing the slot first.
pub struct TapeOwner<T: 'static> {
    tape: Cell<*mut Tape<T>>,
    slot: &'static LocalKey<TapeSlot<T>>,
}

impl<T: 'static> TapeOwner<T> {
    /// An owner that will clear `slot` when it is dropped.
    pub fn new(slot: &'static LocalKey<TapeSlot<T>>) -> Self {
        TapeOwner {
            tape: Cell::new(ptr::null_mut()),
            slot,
        }
    }
}

impl<T: 'static> Drop for TapeOwner<T> {
    fn drop(&mut self) {
        let tape = self.tape.replace(ptr::null_mut());
        if tape.is_null() {
            return;
        }
        // The slot has no destructor, so it is still accessible here.
        let _ = self.slot.try_with(|s| s.tape.set(ptr::null_mut()));
        // SAFETY: `tape` came from `Box::into_raw` in `allocate` and is freed only here,
        // once; the slot no longer points to it, and nothing uses it any more (a thread's
        // locals are destroyed after all its code has finished running).
        drop(unsafe { Box::from_raw(tape) });
    }
}

/// This thread's tape for `T`, allocated on first use. The pointer stays valid until the
/// thread exits; dereferencing it is the caller's responsibility (see
/// `crate::reverse::tape::with_tape`).
#[inline(always)]
pub fn slot_tape<T: Scalar>(
    slot: &'static LocalKey<TapeSlot<T>>,
    owner: &'static LocalKey<TapeOwner<T>>,
) -> *mut Tape<T> {
    let tape = slot.with(|s| s.tape.get());
    if tape.is_null() {
        allocate(slot, owner)
    } else {
        tape
    }
}

#[cold]
#[inline(never)]
fn allocate<T: Scalar>(
    slot: &'static LocalKey<TapeSlot<T>>,
    owner: &'static LocalKey<TapeOwner<T>>,
) -> *mut Tape<T> {
    let tape = Box::into_raw(Box::new(Tape::new()));
    owner.with(|o| o.tape.set(tape));
    slot.with(|s| s.tape.set(tape));
    tape
}
