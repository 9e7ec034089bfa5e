//! Modes inside modes: forward over reverse, reverse over forward, and deeper nestings.
//!
//! (Being built: see issue 4.)
