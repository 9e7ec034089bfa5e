//! mixad's integration tests, compiled as one binary: one module per module of `src/` it
//! tests, laid out as `src/` is (`forward/` tests `src/forward/`, `sparse/pattern.rs` tests
//! `src/sparse/pattern.rs`, …). Helpers shared between modules are in `common`.
//!
//! Run one module with a filter: `cargo test --release --test suite recording::`.

mod common;

#[cfg(feature = "argmin")]
mod argmin;
mod chain;
mod check;
#[cfg(feature = "jit")]
mod compiled;
mod differential;
mod facade;
mod forward;
mod function;
mod hessian;
mod linalg;
mod nested;
mod recording;
mod reverse;
mod rules;
mod sparse;
