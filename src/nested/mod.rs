//! Modes inside modes.
//!
//! Every API of [`crate::forward`], [`crate::reverse`] and [`crate::hessian`](mod@crate::hessian) is generic
//! over the scalar, so nestings compose directly: `reverse::gradient` at `S = Var<f64>`
//! inside another `reverse::gradient` is reverse over reverse, `forward::derivative` at
//! `S = Var<f64>` inside `reverse::gradient` is reverse over forward, and so on. Each level
//! has its own type, so perturbations of different levels are never confused; a captured
//! outer value is lifted into the inner type (`Dual::constant(x)`, `Var::constant(x)`).
//! Forgetting to lift (an inner call started at the outer type, capturing an outer dual or
//! variable) is caught at run time and panics with a message saying so: duals made by the
//! forward APIs carry a per-call tag, reverse variables a recording id.
//!
//! This module adds the *translation* of reverse over forward into forward over forward:
//! [`derivative`], [`gradient`] and [`jvp`] take an inner function written generically (a
//! [`crate::Function`], evaluated on `x` followed by `params`) together with the outer
//! values it captures (`params`). Under reverse mode the inner forward computation is not
//! taped; it becomes one node per output whose partials (with respect to `x` *and* `params`) come from a forward-over-forward
//! evaluation. Under forward mode, or at plain floats, it is evaluated directly. Plain
//! closures keep working with the generic APIs wherever no translation is wanted.

mod translate;

pub use translate::{derivative, gradient, jvp};
pub(crate) use translate::{derivatives_by_forward, translated_derivatives};
