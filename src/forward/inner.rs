//! Forward-mode derivatives of a generic inner function at any scalar: what
//! [`crate::nested`]'s APIs compute at plain floats and duals, and what reverse mode's
//! translation falls back to when its recording must stay replayable.

use super::tag::fresh_tag;
use super::width::{lanes_for, with_lanes};
use super::{Dual, DualVec};
use crate::chain::value_is_nan;
use crate::{Function, Scalar};

/// `∇ₓ g` (or `[∇ₓ g·v]` given a direction) by forward mode at `S` itself.
pub(crate) fn derivatives_by_forward<S: Scalar, G: Function + ?Sized>(
    g: &G,
    x: &[S],
    params: &[S],
    direction: Option<&[S]>,
) -> Vec<S> {
    match direction {
        None => gradient_by_forward(g, x, params),
        Some(v) => {
            let mut zs: Vec<Dual<S>> = Dual::seed_direction(x, v);
            zs.extend(params.iter().map(|&p| Dual::constant(p)));
            let r = g.eval(&zs);
            // The NaN convention (see `crate::chain`).
            vec![if value_is_nan(&r.value) {
                S::nan_everywhere()
            } else {
                r.tangent
            }]
        }
    }
}

/// `∇ₓ g` by forward mode at `S` itself, the lanes per evaluation chosen from `x.len()`.
fn gradient_by_forward<S: Scalar, G: Function + ?Sized>(g: &G, x: &[S], params: &[S]) -> Vec<S> {
    with_lanes!(lanes_for(x.len()), N => gradient_in_lanes::<N, S, G>(g, x, params))
}

/// [`gradient_by_forward`] with `LANES` directions per evaluation.
fn gradient_in_lanes<const LANES: usize, S: Scalar, G: Function + ?Sized>(
    g: &G,
    x: &[S],
    params: &[S],
) -> Vec<S> {
    let tag = fresh_tag();
    let lift = |v: S| DualVec::<S, LANES>::tagged(v, [S::zero(); LANES], tag);
    // x followed by params: only the first x.len() entries are seeded.
    let mut zs: Vec<DualVec<S, LANES>> = x.iter().chain(params).map(|&v| lift(v)).collect();
    let mut grad = Vec::with_capacity(x.len());
    for start in (0..x.len()).step_by(LANES) {
        let end = (start + LANES).min(x.len());
        for (lane, xi) in zs[start..end].iter_mut().enumerate() {
            xi.tangents[lane] = S::one();
        }
        let r = g.eval(&zs);
        if value_is_nan(&r.value) {
            // The NaN convention (see `crate::chain`).
            return vec![S::nan_everywhere(); x.len()];
        }
        grad.extend_from_slice(&r.tangents[..end - start]);
        for xi in &mut zs[start..end] {
            xi.tangents = [S::zero(); LANES];
        }
    }
    grad
}
