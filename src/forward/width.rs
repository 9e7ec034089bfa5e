//! How many tangent lanes a [`DualVec`](crate::forward::DualVec) sweep carries: one policy
//! for every engine that seeds directions in lanes (forward gradients and Jacobians, the
//! nested translation, dense Hessian columns, sparse Hessian colours).
//!
//! A lane count is one of [`LANE_COUNTS`]; the automatic choice follows the number of
//! directions `n`: all of them in one sweep when they fit in 16 lanes (rounded up to a lane
//! count, so a 2-input gradient carries 2 lanes, not 8), else 8 lanes per sweep, where the
//! tangents of one number still fit in a few vector registers. Nesting applies the policy
//! at each level on its own `n`, so a forward-over-forward gradient of 2 inputs runs on
//! `DualVec<DualVec<f64, 2>, 2>` (9 numbers), not on 8 × 8 lanes (81).

/// The lane counts a sweep can use, for every engine and option.
pub const LANE_COUNTS: [usize; 5] = [1, 2, 4, 8, 16];

/// The widest lane count.
pub(crate) const MAX_LANES: usize = 16;

/// The lane count chosen for `n` directions: all at once when they fit in 16 lanes
/// (rounded up to a lane count), else 8 per sweep.
///
/// ```
/// use mixad::forward::lanes_for;
/// assert_eq!([lanes_for(1), lanes_for(2), lanes_for(3), lanes_for(9), lanes_for(100)], [1, 2, 4, 16, 8]);
/// ```
pub fn lanes_for(n: usize) -> usize {
    if n <= MAX_LANES {
        n.max(1).next_power_of_two()
    } else {
        8
    }
}

/// Panics unless `lanes` is one of [`LANE_COUNTS`], naming `api`.
pub(crate) fn check_lanes(lanes: usize, api: &str) {
    assert!(
        LANE_COUNTS.contains(&lanes),
        "{api}: lanes must be 1, 2, 4, 8 or 16, not {lanes}"
    );
}

/// Evaluates `$body` with the const `$n` bound to the lane count `$lanes` (one of
/// [`LANE_COUNTS`]): the one place a run-time lane count becomes a type.
macro_rules! with_lanes {
    ($lanes:expr, $n:ident => $body:expr) => {
        match $lanes {
            1 => {
                const $n: usize = 1;
                $body
            }
            2 => {
                const $n: usize = 2;
                $body
            }
            4 => {
                const $n: usize = 4;
                $body
            }
            8 => {
                const $n: usize = 8;
                $body
            }
            16 => {
                const $n: usize = 16;
                $body
            }
            other => unreachable!("mixad: {other} is not a lane count"),
        }
    };
}
pub(crate) use with_lanes;
