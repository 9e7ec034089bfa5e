//! Forward mode: dual numbers and the APIs built on them.
//!
//! A forward sweep runs the user's function once on [`Dual`] (one direction) or
//! [`DualVec`] (`N` directions) numbers; every operation carries tangents alongside values.
//! Cost is a small multiple of the function per sweep, so forward mode suits few inputs
//! (derivatives, JVPs, Jacobians of narrow functions) and is the inner mode of Hessians.
//!
//! All APIs take closures, typically `|x| f(x)` around user code generic over
//! `num_traits::Float`, and are generic over the input scalar `S` so they nest: the
//! derivative of a function that itself calls [`derivative`] is computed at `S = Dual<f64>`.

mod derivatives;
mod dual;
mod dual_vec;
pub(crate) mod inner;
pub(crate) mod tag;
pub(crate) mod width;

pub use derivatives::{
    derivative, gradient, gradient_of, gradient_with_lanes, jacobian, jacobian_of,
    jacobian_with_lanes, jvp, second_derivative, value_and_derivative, LANES,
};
pub use dual::Dual;
pub use dual_vec::DualVec;
#[doc(hidden)]
pub use tag::skip_tags;
pub use width::{lanes_for, LANE_COUNTS};
