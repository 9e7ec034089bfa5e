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
//!
//! A foreign dual can also reach a call's result without ever meeting the call's own
//! inputs (returned as is, or through unary operations and constant scaling, which merge no
//! tags): every forward API therefore checks the tag of what the function returns
//! ([`check_result`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// A differentiation's tag: 64 bits, so tags never repeat in a process (at one new tag per
/// nanosecond, 2⁶⁴ take 585 years).
pub(crate) type Tag = u64;

static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

/// Test hook: skips `count` tags, as `count` forward calls would (so tests can check that
/// tags do not repeat after 2³² calls).
#[doc(hidden)]
pub fn skip_tags(count: u64) {
    NEXT_TAG.fetch_add(count, Ordering::Relaxed);
}

/// A tag no other differentiation in this process has (0 is never returned).
pub(crate) fn fresh_tag() -> Tag {
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
pub(crate) fn merge(a: Tag, b: Tag) -> Tag {
    if a == b || b == 0 {
        a
    } else if a == 0 {
        b
    } else {
        confused()
    }
}

/// Checks a value a forward call returns: its tag must be the call's own (or 0, a
/// constant or a dual made by hand). A foreign tag means a dual captured from another
/// differentiation of the same type (an outer call's variable, or one that escaped an
/// earlier call) reached the result through operations that never met the call's own
/// inputs (unary operations, scaling by constants, or returning it as is), where its
/// tangent would be read as this call's derivative.
///
/// # Panics
/// On a foreign tag, naming `api`.
#[inline(always)]
pub(crate) fn check_result(found: Tag, own: Tag, api: &str) {
    if found != own && found != 0 {
        foreign_result(api)
    }
}

#[cold]
#[inline(never)]
fn foreign_result(api: &str) -> ! {
    panic!(
        "mixad: perturbation confusion in {api}: the function returned a dual number that \
         belongs to another forward-mode differentiation of the same type (a value captured \
         from an outer call, or one that escaped an earlier call); its tangent is not this \
         call's derivative. Lift the captured value into the inner call's type, e.g. \
         `Dual::constant(x)`, so each level has its own type"
    )
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
