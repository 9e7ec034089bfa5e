//! One-shot reverse-mode APIs: gradient, fallible gradient, VJP, Jacobian.
//!
//! Each records the user's function once on this thread's tape, sweeps it backward, and
//! clears the recording; nothing outlives the call.

use faer::Mat;

use crate::chain::{nan_vjp, value_is_nan, Chain};
use crate::reverse::recording::Session;
use crate::reverse::tape::TapeScalar;
use crate::reverse::Var;

/// Gradient of `f: Rⁿ → R` at `x`: one recording, one backward sweep.
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T { x[0] * x[1].sin() }
/// let g = mixad::reverse::gradient(|x| f(x), &[2.0, 0.5]);
/// assert_eq!(g, vec![0.5f64.sin(), 2.0 * 0.5f64.cos()]);
/// ```
pub fn gradient<S: TapeScalar, F>(f: F, x: &[S]) -> Vec<S>
where
    F: FnOnce(&[Var<S>]) -> Var<S>,
{
    value_and_gradient(f, x).1
}

/// `(f(x), ∇f(x))` for `f: Rⁿ → R`.
///
/// ```
/// let (v, g) = mixad::reverse::value_and_gradient(|x| x[0] * x[1], &[3.0, 4.0]);
/// assert_eq!((v, g), (12.0, vec![4.0, 3.0]));
/// ```
pub fn value_and_gradient<S: TapeScalar, F>(f: F, x: &[S]) -> (S, Vec<S>)
where
    F: FnOnce(&[Var<S>]) -> Var<S>,
{
    let result: Result<_, std::convert::Infallible> = try_value_and_gradient(|v| Ok(f(v)), x);
    match result {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// Gradient of a fallible `f`: the `Ok` path is differentiated, an `Err` is returned as is.
///
/// ```
/// use num_traits::Float;
/// fn safe_log<T: Float>(x: &[T]) -> Result<T, String> {
///     if x[0] <= T::zero() { return Err("log of a non-positive number".into()); }
///     Ok(x[0].ln())
/// }
/// assert_eq!(mixad::reverse::try_gradient(|x| safe_log(x), &[2.0]), Ok(vec![0.5]));
/// assert!(mixad::reverse::try_gradient(|x| safe_log(x), &[-1.0]).is_err());
/// ```
pub fn try_gradient<S: TapeScalar, E, F>(f: F, x: &[S]) -> Result<Vec<S>, E>
where
    F: FnOnce(&[Var<S>]) -> Result<Var<S>, E>,
{
    try_value_and_gradient(f, x).map(|(_, g)| g)
}

/// `(f(x), ∇f(x))` for a fallible `f`; an `Err` from `f` is returned unchanged.
pub fn try_value_and_gradient<S: TapeScalar, E, F>(f: F, x: &[S]) -> Result<(S, Vec<S>), E>
where
    F: FnOnce(&[Var<S>]) -> Result<Var<S>, E>,
{
    let session = Session::<S>::begin(false);
    let inputs = session.inputs(x);
    let y = f(&inputs)?;
    session.check_output(&y, "reverse::gradient");
    let start = session.start();
    Ok(session.finish(|tape, _| {
        let adjoints = tape.sweep(start, |adj| adj[y.index() as usize] = S::one());
        let first = start as usize;
        let mut grad = adjoints[first..first + x.len()].to_vec();
        if value_is_nan(&y.primal()) {
            // The NaN convention, also for a constant NaN output (no node carries it).
            grad.fill(S::nan_everywhere());
        }
        (y.primal(), grad)
    }))
}

/// Vector-Jacobian product of `f: Rⁿ → Rᵐ`: returns `(f(x), ȳᵀ J(x))`.
///
/// # Panics
/// If `ybar` and the output of `f` differ in length.
///
/// ```
/// let (y, xbar) = mixad::reverse::vjp(|x| vec![x[0] * x[1], x[0] + x[1]], &[2.0, 3.0], &[1.0, 10.0]);
/// assert_eq!(y, vec![6.0, 5.0]);
/// assert_eq!(xbar, vec![3.0 + 10.0, 2.0 + 10.0]);
/// ```
pub fn vjp<S: TapeScalar, F, R>(f: F, x: &[S], ybar: &[S]) -> (Vec<S>, Vec<S>)
where
    F: FnOnce(&[Var<S>]) -> R,
    R: AsRef<[Var<S>]>,
{
    let (session, out) = Session::<S>::record_outputs("reverse::vjp", f, x);
    let out = out.as_ref();
    assert_eq!(
        out.len(),
        ybar.len(),
        "reverse::vjp: f returned {} outputs but the cotangent ybar has {} entries",
        out.len(),
        ybar.len()
    );
    let start = session.start();
    session.finish(|tape, _| {
        let adjoints = tape.sweep(start, |adj| {
            for (y, &w) in out.iter().zip(ybar) {
                adj[y.index() as usize] += w;
            }
        });
        let first = start as usize;
        let values: Vec<S> = out.iter().map(|y| y.primal()).collect();
        let mut xbar = adjoints[first..first + x.len()].to_vec();
        nan_vjp(&values, ybar, &mut xbar);
        (values, xbar)
    })
}

/// Jacobian (`m × n`) of `f: Rⁿ → Rᵐ`: one recording, one backward sweep per output. An
/// empty `x` gives the `m × 0` matrix.
///
/// ```
/// let j = mixad::reverse::jacobian(|x| vec![x[0] * x[1], x[0] - x[1]], &[2.0, 3.0]);
/// assert_eq!(j[(0, 0)], 3.0);
/// assert_eq!(j[(1, 1)], -1.0);
/// ```
pub fn jacobian<F, R>(f: F, x: &[f64]) -> Mat<f64>
where
    F: FnOnce(&[Var<f64>]) -> R,
    R: AsRef<[Var<f64>]>,
{
    let (session, out) = Session::<f64>::record_outputs("reverse::jacobian", f, x);
    let out = out.as_ref();
    let start = session.start();
    let n = x.len();
    session.finish(|tape, _| {
        let mut jac = Mat::zeros(out.len(), n);
        for (i, y) in out.iter().enumerate() {
            let adjoints = tape.sweep(start, |adj| adj[y.index() as usize] = 1.0);
            let nan = value_is_nan(&y.primal());
            for j in 0..n {
                jac[(i, j)] = if nan {
                    f64::NAN
                } else {
                    adjoints[start as usize + j]
                };
            }
        }
        jac
    })
}
