//! How compiled code computes each primitive's *value* (its partials come from tracing
//! the rule itself; see the compiled-replay module): as one machine instruction where
//! that instruction is exactly the `f64` operation the rule uses, otherwise as a call to
//! the rule at `f64`. Either way compiled and interpreted values agree to the bit.

// Read by the code generator, which the `jit` feature builds.
#![cfg_attr(not(feature = "jit"), allow(dead_code))]

use super::{Binary, Unary};

/// How compiled code computes a primitive's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueLowering {
    /// `a · b` (IEEE multiplication, as `f64`'s `*`).
    Mul,
    /// `a / b` (IEEE division).
    Div,
    /// `√a` (IEEE square root, as `f64::sqrt`).
    Sqrt,
    /// `1 / a` (`f64::recip` is this division).
    Recip,
    /// A call to the rule at `f64`.
    Call,
}

impl Unary {
    /// How compiled code computes this primitive's value.
    pub(crate) fn value_lowering(self) -> ValueLowering {
        match self {
            Unary::Sqrt => ValueLowering::Sqrt,
            Unary::Recip => ValueLowering::Recip,
            _ => ValueLowering::Call,
        }
    }
}

impl Binary {
    /// How compiled code computes this primitive's value.
    pub(crate) fn value_lowering(self) -> ValueLowering {
        match self {
            Binary::Mul => ValueLowering::Mul,
            Binary::Div => ValueLowering::Div,
            _ => ValueLowering::Call,
        }
    }
}
