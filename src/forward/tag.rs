//! Perturbation tags: how forward mode refuses to confuse two derivatives of the same type.
//!
//! A dual made by a forward API (`derivative`, `jvp`, `gradient`, the Hessian sweeps)
//! carries a tag unique to that call; duals made by hand (`Dual::new`, `Dual::variable`)
//! and constants carry tag 0, which mixes with anything. Combining two duals with different
//! non-zero tags means a value captured from one differentiation was used inside another
//! of the same type, where its tangent would be silently added to the wrong derivative
//! (ForwardDiff.jl's perturbation confusion): mixad panics instead. The correct nesting
//! lifts the captured value one level up (`Dual::constant(x)`), giving each level its own
//! type.

use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_TAG: AtomicU32 = AtomicU32::new(1);

/// A tag no other differentiation in this process has (0 is never returned).
pub(crate) fn fresh_tag() -> u32 {
    loop {
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        if tag != 0 {
            return tag;
        }
    }
}

/// The tag of a result of `a`'s and `b`'s operands.
///
/// # Panics
/// If both are non-zero and differ (see the module docs).
#[inline(always)]
pub(crate) fn merge(a: u32, b: u32) -> u32 {
    if a == b || b == 0 {
        a
    } else if a == 0 {
        b
    } else {
        confused()
    }
}

#[cold]
#[inline(never)]
fn confused() -> ! {
    panic!(
        "mixad: perturbation confusion: a dual number from one forward-mode differentiation \
         was combined with one from another differentiation of the same type (typically a \
         value captured by a nested derivative's closure). Lift the captured value into the \
         inner call's type, e.g. `Dual::constant(x)`, and start the inner call from a value \
         of that type, so each level has its own type"
    )
}
