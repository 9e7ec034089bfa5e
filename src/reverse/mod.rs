//! Reverse mode: a pullback tape and the gradient APIs built on it.
//!
//! (Being built: see issue 3.)
