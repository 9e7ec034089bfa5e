//! Functions of no inputs (an empty `x`), for the tests that every API gives the value
//! `f()`, evaluated (a function of no inputs still has a value), and empty derivatives (an
//! empty gradient or product, a `0 × 0` Hessian, an empty sparse pattern).

use faer::Mat;
use num_traits::Float;

use super::k;

pub const EMPTY: &[f64] = &[];

/// `e^1.5 + Σ xᵢ³`: at the empty point, `e^1.5` (not 0, and not a plain constant output).
pub fn f<T: Float>(x: &[T]) -> T {
    x.iter().fold(k::<T>(1.5).exp(), |s, &v| s + v * v * v)
}

pub fn f0() -> f64 {
    1.5f64.exp()
}

/// Two outputs: `(2 f(x), Σ xᵢ − 1)`.
pub fn g<T: Float>(x: &[T]) -> Vec<T> {
    vec![f(x) * k(2.0), x.iter().fold(k(-1.0), |s, &v| s + v)]
}

pub fn none() -> Vec<f64> {
    Vec::new()
}

#[track_caller]
pub fn assert_0x0(h: &Mat<f64>) {
    assert_eq!((h.nrows(), h.ncols()), (0, 0));
}
