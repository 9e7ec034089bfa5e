//! Hessians and Hessian-vector products as forward over reverse.
//!
//! (Being built: see issue 4.)
