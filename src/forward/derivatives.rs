//! Forward-mode APIs: derivative, second derivative, JVP, chunked gradient, Jacobian.

use faer::Mat;

use crate::chain::value_is_nan;
use crate::forward::tag::{check_result, fresh_tag};
use crate::forward::width::{lanes_for, with_lanes};
use crate::forward::{Dual, DualVec};
use crate::{Function, Scalar, VectorFunction};

/// Tangent lanes per sweep of the closure forms [`gradient`] and [`jacobian`]: a closure
/// has one type, so its lane count is fixed (see [`gradient_with_lanes`]).
pub const LANES: usize = 8;

/// `f'(x)` for `f: R → R`, in one forward sweep.
///
/// ```
/// use num_traits::Float;
/// let d = mixad::forward::derivative(|x| x.sin() * x, 2.0);
/// assert!((d - (2.0f64.cos() * 2.0 + 2.0f64.sin())).abs() < 1e-15);
/// ```
pub fn derivative<S: Scalar, F>(f: F, x: S) -> S
where
    F: FnOnce(Dual<S>) -> Dual<S>,
{
    value_and_derivative(f, x).1
}

/// `(f(x), f'(x))` for `f: R → R`, in one forward sweep.
pub fn value_and_derivative<S: Scalar, F>(f: F, x: S) -> (S, S)
where
    F: FnOnce(Dual<S>) -> Dual<S>,
{
    let tag = fresh_tag();
    let y = f(Dual::tagged(x, S::one(), tag));
    check_result(y.tag, tag, "forward::derivative");
    if value_is_nan(&y.value) {
        // The NaN convention, also for a constant NaN result.
        return (y.value, S::nan_everywhere());
    }
    (y.value, y.tangent)
}

/// `f''(x)` for `f: R → R`, by forward over forward (`Dual<Dual<S>>`).
///
/// ```
/// use num_traits::Float;
/// let d2 = mixad::forward::second_derivative(|x| x.powi(3), 2.0);
/// assert_eq!(d2, 12.0);
/// ```
pub fn second_derivative<S: Scalar, F>(f: F, x: S) -> S
where
    F: FnOnce(Dual<Dual<S>>) -> Dual<Dual<S>>,
{
    let (inner, outer) = (fresh_tag(), fresh_tag());
    let seed = Dual::tagged(
        Dual::tagged(x, S::one(), inner),
        Dual::tagged(S::one(), S::zero(), inner),
        outer,
    );
    let y = f(seed);
    check_result(y.tag, outer, "forward::second_derivative");
    check_result(y.value.tag, inner, "forward::second_derivative");
    check_result(y.tangent.tag, inner, "forward::second_derivative");
    if value_is_nan(&y.value) {
        // The NaN convention, also for a constant NaN result.
        return S::nan_everywhere();
    }
    y.tangent.tangent
}

/// Jacobian-vector product of `f: Rⁿ → Rᵐ`: returns `(f(x), J(x)·v)` in one sweep.
///
/// # Panics
/// If `x` and `v` differ in length.
///
/// ```
/// let (y, jv) = mixad::forward::jvp(|x| vec![x[0] * x[1], x[0] + x[1]], &[2.0, 3.0], &[1.0, 0.0]);
/// assert_eq!(y, vec![6.0, 5.0]);
/// assert_eq!(jv, vec![3.0, 1.0]);
/// ```
pub fn jvp<S: Scalar, F, R>(f: F, x: &[S], v: &[S]) -> (Vec<S>, Vec<S>)
where
    F: FnOnce(&[Dual<S>]) -> R,
    R: AsRef<[Dual<S>]>,
{
    assert_eq!(
        x.len(),
        v.len(),
        "forward::jvp: x has {} entries but the direction v has {}",
        x.len(),
        v.len()
    );
    let inputs: Vec<Dual<S>> = Dual::seed_direction(x, v);
    let tag = inputs.first().map_or(0, |d| d.tag);
    let out = f(&inputs);
    out.as_ref()
        .iter()
        .map(|y| {
            check_result(y.tag, tag, "forward::jvp");
            if value_is_nan(&y.value) {
                // The NaN convention, also for a constant NaN output.
                return (y.value, S::nan_everywhere());
            }
            (y.value, y.tangent)
        })
        .unzip()
}

/// Gradient of `f: Rⁿ → R` by forward mode, [`LANES`] directions per sweep.
///
/// A closure has one type, so its lane count is fixed: 8 here, any of 1, 2, 4, 8, 16 with
/// [`gradient_with_lanes`]. Pass a [`Function`] to [`gradient_of`] and the lane count
/// follows `n` ([`lanes_for`]) at every level of nesting.
///
/// Costs `⌈n/8⌉` sweeps; prefer [`crate::reverse`] for large `n`. An empty `x` gives an
/// empty gradient without evaluating `f` (no sweep is needed).
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T { x[0] * x[1].exp() }
/// let g = mixad::forward::gradient(|x| f(x), &[2.0, 0.0]);
/// assert_eq!(g, vec![1.0, 2.0]);
/// ```
pub fn gradient<S: Scalar, F>(f: F, x: &[S]) -> Vec<S>
where
    F: FnMut(&[DualVec<S, LANES>]) -> DualVec<S, LANES>,
{
    gradient_with_lanes::<LANES, S>(f, x)
}

/// [`gradient`] with `N` directions per sweep (`N` ≥ 1; mixad's own sweeps use 1, 2, 4, 8
/// or 16). The directions are spread evenly over the fewest sweeps.
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T { x[0] * x[1].exp() }
/// let g = mixad::forward::gradient_with_lanes::<2, f64>(|x| f(x), &[2.0, 0.0]);
/// assert_eq!(g, vec![1.0, 2.0]);
/// ```
pub fn gradient_with_lanes<const N: usize, S: Scalar>(
    mut f: impl FnMut(&[DualVec<S, N>]) -> DualVec<S, N>,
    x: &[S],
) -> Vec<S> {
    const { assert!(N >= 1, "a sweep needs at least one lane") };
    let chunk = spread(x.len(), N);
    let mut grad = Vec::with_capacity(x.len());
    let mut inputs = tagged_inputs::<S, N>(x);
    for start in (0..x.len()).step_by(chunk) {
        let end = (start + chunk).min(x.len());
        seed(&mut inputs, start, end);
        let y = f(&inputs);
        check_result(y.tag, inputs[start].tag, "forward::gradient");
        if value_is_nan(&y.value) {
            // The NaN convention, also for a constant NaN result.
            return vec![S::nan_everywhere(); x.len()];
        }
        grad.extend_from_slice(&y.tangents[..end - start]);
        unseed(&mut inputs, start, end);
    }
    grad
}

/// Gradient of a [`Function`] by forward mode, the lane count chosen from `n` by
/// [`lanes_for`]: a 2-input gradient sweeps once on 2 lanes, a 100-input one 13 times on 8.
/// Called inside another forward computation it chooses again for its own `n`, so a
/// forward-over-forward gradient carries the lanes each level needs.
///
/// ```
/// use mixad::Function;
/// /// f(x) = x₀·e^{x₁}.
/// struct F;
/// impl Function for F {
///     fn eval<S: mixad::Scalar>(&self, x: &[S]) -> S { x[0] * num_traits::Float::exp(x[1]) }
/// }
/// assert_eq!(mixad::forward::gradient_of(&F, &[2.0, 0.0]), vec![1.0, 2.0]);
/// ```
pub fn gradient_of<S: Scalar>(f: &impl Function, x: &[S]) -> Vec<S> {
    with_lanes!(lanes_for(x.len()), N => gradient_with_lanes::<N, S>(|d| f.eval(d), x))
}

/// The directions per sweep for `n` directions on `lanes` lanes: the fewest sweeps, spread
/// evenly over the lanes.
fn spread(n: usize, lanes: usize) -> usize {
    if n == 0 {
        return 1;
    }
    let sweeps = n.div_ceil(lanes);
    n.div_ceil(sweeps)
}

/// Jacobian (`m × n`) of `f: Rⁿ → Rᵐ` by forward mode at `f64`, [`LANES`] columns per
/// sweep ([`jacobian_with_lanes`] names another count; [`jacobian_of`] chooses it from
/// `n`). An empty `x` gives the `m × 0` matrix (`f` is evaluated once, for `m`).
///
/// ```
/// let j = mixad::forward::jacobian(|x| vec![x[0] * x[1], x[0] - x[1]], &[2.0, 3.0]);
/// assert_eq!((j.nrows(), j.ncols()), (2, 2));
/// assert_eq!(j[(0, 0)], 3.0);
/// assert_eq!(j[(1, 1)], -1.0);
/// ```
pub fn jacobian<F, R>(f: F, x: &[f64]) -> Mat<f64>
where
    F: FnMut(&[DualVec<f64, LANES>]) -> R,
    R: AsRef<[DualVec<f64, LANES>]>,
{
    jacobian_with_lanes::<LANES, R>(f, x)
}

/// [`jacobian`] with `N` columns per sweep (`N` ≥ 1), spread evenly over the fewest
/// sweeps.
///
/// # Panics
/// If `f` returns a different number of outputs in two sweeps.
pub fn jacobian_with_lanes<const N: usize, R>(
    mut f: impl FnMut(&[DualVec<f64, N>]) -> R,
    x: &[f64],
) -> Mat<f64>
where
    R: AsRef<[DualVec<f64, N>]>,
{
    const { assert!(N >= 1, "a sweep needs at least one lane") };
    let n = x.len();
    let chunk = spread(n, N);
    let mut inputs = tagged_inputs::<f64, N>(x);
    if n == 0 {
        let m = f(&inputs).as_ref().len();
        return Mat::zeros(m, 0);
    }
    let mut jac: Option<Mat<f64>> = None;
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        seed(&mut inputs, start, end);
        let out = f(&inputs);
        let out = out.as_ref();
        let jac = jac.get_or_insert_with(|| Mat::zeros(out.len(), n));
        assert_eq!(
            out.len(),
            jac.nrows(),
            "forward::jacobian: f returned {} outputs in one sweep and {} in another",
            jac.nrows(),
            out.len()
        );
        for (i, y) in out.iter().enumerate() {
            check_result(y.tag, inputs[start].tag, "forward::jacobian");
            let nan = value_is_nan(&y.value);
            for j in start..end {
                jac[(i, j)] = if nan { f64::NAN } else { y.tangents[j - start] };
            }
        }
        unseed(&mut inputs, start, end);
    }
    jac.expect("n > 0 means at least one sweep")
}

/// Jacobian of a [`VectorFunction`] by forward mode at `f64`, the lane count chosen from
/// `n` by [`lanes_for`].
///
/// ```
/// use mixad::VectorFunction;
/// /// F(a, b) = (a·b, a − b).
/// struct Pair;
/// impl VectorFunction for Pair {
///     fn eval<S: mixad::Scalar>(&self, x: &[S]) -> Vec<S> { vec![x[0] * x[1], x[0] - x[1]] }
/// }
/// let j = mixad::forward::jacobian_of(&Pair, &[2.0, 3.0]);
/// assert_eq!((j[(0, 0)], j[(0, 1)], j[(1, 0)], j[(1, 1)]), (3.0, 2.0, 1.0, -1.0));
/// ```
pub fn jacobian_of(f: &impl VectorFunction, x: &[f64]) -> Mat<f64> {
    with_lanes!(lanes_for(x.len()), N => jacobian_with_lanes::<N, _>(|d| f.eval(d), x))
}

/// `x` as duals of one fresh differentiation, all tangents zero.
fn tagged_inputs<S: Scalar, const N: usize>(x: &[S]) -> Vec<DualVec<S, N>> {
    let tag = fresh_tag();
    x.iter()
        .map(|&v| DualVec::tagged(v, [S::zero(); N], tag))
        .collect()
}

/// Seeds inputs `start..end` in lanes `0..end - start` for one sweep, under a fresh tag:
/// each sweep is its own differentiation, so a dual kept from an earlier sweep (in an
/// `FnMut` closure's state), whose lanes meant other inputs, is caught when it reaches
/// this sweep's result.
fn seed<S: Scalar, const N: usize>(inputs: &mut [DualVec<S, N>], start: usize, end: usize) {
    let tag = fresh_tag();
    for input in inputs.iter_mut() {
        input.tag = tag;
    }
    for (lane, input) in inputs[start..end].iter_mut().enumerate() {
        input.tangents[lane] = S::one();
    }
}

fn unseed<S: Scalar, const N: usize>(inputs: &mut [DualVec<S, N>], start: usize, end: usize) {
    for input in &mut inputs[start..end] {
        input.tangents = [S::zero(); N];
    }
}
