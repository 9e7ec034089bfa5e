//! [argmin](https://docs.rs/argmin/0.11) solvers driven by mixad's derivatives
//! (cargo feature `argmin`).
//!
//! Write the cost once as generic code by implementing [`crate::Function`], wrap it in
//! [`AutoDiff`], and hand that to argmin's `Executor`. [`AutoDiff`] implements argmin's
//! `CostFunction` (the cost at `f64`), `Gradient` (reverse mode, [`crate::gradient()`]) and
//! `Hessian` (forward over reverse, [`crate::hessian()`], or a reused recording with
//! [`AutoDiff::prepared`]).
//!
//! Parameters and gradients are `Vec<f64>`, Hessians `Vec<Vec<f64>>` (row `i` is
//! `∂²f/∂xᵢ∂x`, exactly symmetric), all through argmin-math's `vec` backend, which this feature enables. Plain
//! vectors keep argmin's supported nalgebra and faer versions out of mixad's way (mixad uses
//! newer ones than argmin 0.11 supports).
//!
//! Which argmin solvers fit: those built on cost and gradient (such as `LBFGS` and
//! `SteepestDescent` with a line search), and the second-order solvers whose Hessian only
//! needs products with vectors: `TrustRegion` with the `Steihaug` or `CauchyPoint`
//! subproblem, and `NewtonCG` (Newton with a conjugate-gradient inner solve and a line
//! search; in argmin 0.11 its inner solve stops after one step once the gradient norm is
//! below 1, so it converges slowly near a minimum). argmin's plain `Newton` and the
//! `Dogleg` subproblem invert the Hessian (`ArgminInv`), which the `vec` backend does not
//! implement for `Vec<Vec<f64>>`: for them, [`AutoDiff::invertible`] hands out Hessians as a
//! [`DenseHessian`] instead.
//!
//! A non-finite cost, gradient or Hessian stops the solver with an argmin error whose
//! source is a [`NonFinite`], naming the quantity, the entry and the point. A cost of `+∞`
//! is the exception: it is passed on, so a trust region or line search can back off from a
//! point outside the function's domain.
//!
//! ```
//! use argmin::core::{Executor, State};
//! use argmin::solver::trustregion::{Steihaug, TrustRegion};
//! use mixad::argmin::AutoDiff;
//! use mixad::Function;
//! use num_traits::Float;
//!
//! // Plain generic code, as for the rest of mixad.
//! fn rosenbrock<T: Float>(x: &[T]) -> T {
//!     let (one, hundred) = (T::one(), T::from(100.0).unwrap());
//!     hundred * (x[1] - x[0] * x[0]).powi(2) + (one - x[0]).powi(2)
//! }
//!
//! struct Rosenbrock;
//! impl Function for Rosenbrock {
//!     fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T {
//!         rosenbrock(x)
//!     }
//! }
//!
//! // argmin's trust region stops at max_iters or a target cost (the minimum is 0).
//! let solver = TrustRegion::new(Steihaug::new());
//! let result = Executor::new(AutoDiff::new(Rosenbrock), solver)
//!     .configure(|state| state.param(vec![-1.2, 1.0]).max_iters(100).target_cost(1e-20))
//!     .run()
//!     .unwrap();
//! let x = result.state().get_best_param().unwrap();
//! assert!((x[0] - 1.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

use ::argmin::core::{CostFunction, Error, Gradient, Hessian};
use argmin_math::{ArgminDot, ArgminInv};

use crate::reverse::Var;
use crate::Function;
use crate::{Options, Recording};

/// A cost (a [`Function`]) as an argmin problem: implements argmin's `CostFunction`,
/// `Gradient` and `Hessian` with `Param = Vec<f64>`, `Gradient = Vec<f64>` and
/// `Hessian = H`: `Vec<Vec<f64>>` by default, [`DenseHessian`] after
/// [`AutoDiff::invertible`].
///
/// - `cost`: the cost evaluated at `f64`.
/// - `gradient`: one reverse sweep ([`crate::gradient()`]), recorded afresh at each point.
/// - `hessian`: with [`AutoDiff::new`], a dense Hessian recorded afresh at each point
///   ([`crate::hessian()`]). With [`AutoDiff::prepared`], one recording is kept and replayed
///   at each new point ([`crate::Recording::hessian`]), re-recorded only where a branch in the
///   cost goes the other way. That saves the recording and the buffers at every
///   iteration, which matters most for small `n`.
///
/// See the [module docs](self) for which solvers fit and for errors.
///
/// ```
/// use argmin::core::{CostFunction, Gradient, Hessian};
/// use mixad::argmin::AutoDiff;
/// use mixad::Function;
///
/// struct Cubic;
/// impl Function for Cubic {
///     fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T { x[0] * x[0] * x[1] + x[1] }
/// }
/// let problem = AutoDiff::new(Cubic);
/// let x = vec![2.0, 3.0];
/// assert_eq!(problem.cost(&x).unwrap(), 15.0);
/// assert_eq!(problem.gradient(&x).unwrap(), vec![12.0, 5.0]);
/// assert_eq!(problem.hessian(&x).unwrap(), vec![vec![6.0, 4.0], vec![4.0, 0.0]]);
/// ```
pub struct AutoDiff<C, H = Vec<Vec<f64>>> {
    cost: Arc<C>,
    prepared: Option<Mutex<Prepared>>,
    hessian_type: PhantomData<fn() -> H>,
}

/// The cost as the closure a prepared Hessian records and re-records.
type Objective = Box<dyn FnMut(&[Var<f64>]) -> Var<f64> + Send>;

/// A reused Hessian recording, made at the first call (the point fixes `n`).
struct Prepared {
    make: Box<dyn Fn() -> Objective + Send + Sync>,
    options: Options,
    hessian: Option<Recording<Objective>>,
    /// Inputs of the current recording, and re-recordings of earlier ones.
    n: usize,
    earlier_rerecords: usize,
}

impl<C: Function> AutoDiff<C> {
    /// Wraps `cost`; Hessians are recorded afresh at every point. A borrowed [`Function`]
    /// is a `Function` too: `AutoDiff::new(&my_cost)` leaves `my_cost` with the caller, and
    /// the same `my_cost` serves mixad's other operators.
    ///
    /// ```
    /// use argmin::core::{CostFunction, Gradient};
    /// use mixad::argmin::AutoDiff;
    /// use mixad::Function;
    ///
    /// struct Sum;
    /// impl Function for Sum {
    ///     fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T { x.iter().fold(T::zero(), |a, &b| a + b) }
    /// }
    /// assert_eq!(AutoDiff::new(Sum).gradient(&vec![5.0; 3]).unwrap(), vec![1.0; 3]);
    /// let sum = Sum;
    /// assert_eq!(AutoDiff::new(&sum).cost(&vec![3.0, 4.0]).unwrap(), 7.0);
    /// assert_eq!(mixad::hvp(sum.closure(), &[1.0, 2.0], &[1.0, 1.0]), vec![0.0, 0.0]); // still ours
    /// ```
    pub fn new(cost: C) -> Self {
        AutoDiff {
            cost: Arc::new(cost),
            prepared: None,
            hessian_type: PhantomData,
        }
    }

    /// Wraps `cost`, keeping one Hessian recording for every call (see [`AutoDiff`]);
    /// `options` chooses lanes per sweep and parallelism as for [`crate::record_with`].
    ///
    /// The recording is made at the first `hessian` call, and again if a later call has a
    /// different number of parameters. The cost must be `Send + Sync + 'static`, because
    /// the recording keeps a handle to it for re-recording.
    ///
    /// ```
    /// use argmin::core::Hessian;
    /// use mixad::argmin::AutoDiff;
    /// use mixad::Function;
    /// use num_traits::Float;
    ///
    /// struct Quartic;
    /// impl Function for Quartic {
    ///     fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T { Float::powi(x[0], 4) + x[0] * x[1] }
    /// }
    /// let problem = AutoDiff::prepared(Quartic, Default::default());
    /// for t in [1.0, 2.0, 3.0] {
    ///     let h = problem.hessian(&vec![t, 0.0]).unwrap();
    ///     assert_eq!(h, vec![vec![12.0 * t * t, 1.0], vec![1.0, 0.0]]);
    /// }
    /// assert_eq!(problem.rerecord_count(), 0); // one recording, replayed three times
    /// ```
    pub fn prepared(cost: C, options: Options) -> Self
    where
        C: Send + Sync + 'static,
    {
        let cost = Arc::new(cost);
        let shared = Arc::clone(&cost);
        let make = Box::new(move || -> Objective {
            let c = Arc::clone(&shared);
            Box::new(move |x: &[Var<f64>]| c.eval(x))
        });
        AutoDiff {
            cost,
            prepared: Some(Mutex::new(Prepared {
                make,
                options,
                hessian: None,
                n: 0,
                earlier_rerecords: 0,
            })),
            hessian_type: PhantomData,
        }
    }
}

impl<C: Function, H> AutoDiff<C, H> {
    /// The same problem with Hessians as a [`DenseHessian`], which argmin can invert: for
    /// argmin's plain `Newton` and the `Dogleg` trust-region step.
    ///
    /// ```
    /// use argmin::core::{Executor, State};
    /// use argmin::solver::newton::Newton;
    /// use mixad::argmin::AutoDiff;
    /// use mixad::Function;
    ///
    /// struct Bowl;
    /// impl Function for Bowl {
    ///     fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T {
    ///         let (a, b) = (x[0] - T::cst(3.0), x[1] + T::cst(1.0));
    ///         a * a + T::cst(10.0) * b * b + a * b
    ///     }
    /// }
    /// let result = Executor::new(AutoDiff::new(Bowl).invertible(), Newton::<f64>::new())
    ///     .configure(|state| state.param(vec![0.0, 0.0]).max_iters(1))
    ///     .run()
    ///     .unwrap();
    /// // A quadratic: one Newton step lands on the minimum.
    /// let x = result.state().get_best_param().unwrap();
    /// assert!((x[0] - 3.0).abs() < 1e-12 && (x[1] + 1.0).abs() < 1e-12);
    /// ```
    pub fn invertible(self) -> AutoDiff<C, DenseHessian> {
        AutoDiff {
            cost: self.cost,
            prepared: self.prepared,
            hessian_type: PhantomData,
        }
    }

    /// The wrapped cost.
    ///
    /// ```
    /// use mixad::argmin::AutoDiff;
    /// use mixad::Function;
    ///
    /// struct Scaled(f64);
    /// impl Function for Scaled {
    ///     fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T { T::cst(self.0) * x[0] }
    /// }
    /// assert_eq!(AutoDiff::new(Scaled(2.5)).inner().0, 2.5);
    /// ```
    pub fn inner(&self) -> &C {
        &self.cost
    }

    /// How many times a branch in the cost going the other way forced the prepared Hessian
    /// to record again; always 0 for [`AutoDiff::new`].
    ///
    /// ```
    /// use argmin::core::Hessian;
    /// use mixad::argmin::AutoDiff;
    /// use mixad::Function;
    /// use num_traits::Float;
    ///
    /// /// `x²` for `x ≥ 0`, `x⁴` below: the branch is a guard in the recording.
    /// fn kinked<T: Float>(x: T) -> T {
    ///     if x >= T::zero() { x * x } else { x.powi(4) }
    /// }
    /// struct Kinked;
    /// impl Function for Kinked {
    ///     fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T { kinked(x[0]) }
    /// }
    /// let problem = AutoDiff::prepared(Kinked, Default::default());
    /// assert_eq!(problem.hessian(&vec![1.0]).unwrap(), vec![vec![2.0]]);
    /// assert_eq!(problem.hessian(&vec![-1.0]).unwrap(), vec![vec![12.0]]); // re-recorded
    /// assert_eq!(problem.rerecord_count(), 1);
    /// ```
    pub fn rerecord_count(&self) -> usize {
        self.prepared.as_ref().map_or(0, |p| {
            let p = lock(p);
            p.earlier_rerecords + p.hessian.as_ref().map_or(0, |h| h.rerecord_count())
        })
    }
}

impl<C: Function, H> CostFunction for AutoDiff<C, H> {
    type Param = Vec<f64>;
    type Output = f64;

    /// The cost at `f64`. A NaN or `−∞` is an error ([`NonFinite`]); `+∞` is returned.
    fn cost(&self, x: &Self::Param) -> Result<f64, Error> {
        let value = self.cost.eval(x);
        if value.is_nan() || value == f64::NEG_INFINITY {
            return Err(NonFinite::new(Quantity::Cost, value, x).into());
        }
        Ok(value)
    }
}

impl<C: Function, H> Gradient for AutoDiff<C, H> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    /// `∇f(x)` by one reverse sweep; a non-finite entry is an error ([`NonFinite`]).
    fn gradient(&self, x: &Self::Param) -> Result<Vec<f64>, Error> {
        check_not_empty(x, "gradient")?;
        let grad = crate::gradient(|v| self.cost.eval(v), x);
        check_gradient(&grad, x)?;
        Ok(grad)
    }
}

impl<C: Function, H: HessianForm> Hessian for AutoDiff<C, H> {
    type Param = Vec<f64>;
    type Hessian = H;

    /// `∇²f(x)` as rows, exactly symmetric; a non-finite entry is an error
    /// ([`NonFinite`]).
    fn hessian(&self, x: &Self::Param) -> Result<H, Error> {
        check_not_empty(x, "Hessian")?;
        let n = x.len();
        let rows: Vec<Vec<f64>> = match &self.prepared {
            None => {
                let h = crate::hessian(|v| self.cost.eval(v), x);
                (0..n)
                    .map(|i| (0..n).map(|j| h[(i, j)]).collect())
                    .collect()
            }
            Some(prepared) => {
                let mut guard = lock(prepared);
                let p = &mut *guard;
                if p.hessian.is_none() || p.n != n {
                    if let Some(old) = p.hessian.take() {
                        p.earlier_rerecords += old.rerecord_count();
                    }
                    p.hessian = Some(crate::record_with((p.make)(), x, p.options));
                    p.n = n;
                }
                let h = p.hessian.as_mut().expect("prepared just above");
                let hess = h.hessian(x);
                (0..n)
                    .map(|i| (0..n).map(|j| hess[(i, j)]).collect())
                    .collect()
            }
        };
        for (i, row) in rows.iter().enumerate() {
            if let Some((j, &value)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(NonFinite::new(Quantity::Hessian { row: i, col: j }, value, x).into());
            }
        }
        Ok(H::from_rows(rows))
    }
}

/// How an [`AutoDiff`] hands Hessians to argmin: `Vec<Vec<f64>>` (the default, argmin-math's
/// `vec` backend) or [`DenseHessian`] (see [`AutoDiff::invertible`]). Sealed: implemented
/// for these two only.
///
/// ```
/// use mixad::argmin::{DenseHessian, HessianForm};
/// let rows = vec![vec![2.0, 1.0], vec![1.0, 3.0]];
/// assert_eq!(DenseHessian::from_rows(rows.clone()), DenseHessian(rows.clone()));
/// assert_eq!(<Vec<Vec<f64>>>::from_rows(rows.clone()), rows);
/// ```
pub trait HessianForm: sealed::Sealed + Sized {
    /// Builds the Hessian from its rows.
    fn from_rows(rows: Vec<Vec<f64>>) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for Vec<Vec<f64>> {}
    impl Sealed for super::DenseHessian {}
}

impl HessianForm for Vec<Vec<f64>> {
    fn from_rows(rows: Vec<Vec<f64>>) -> Self {
        rows
    }
}

impl HessianForm for DenseHessian {
    fn from_rows(rows: Vec<Vec<f64>>) -> Self {
        DenseHessian(rows)
    }
}

/// A dense Hessian as rows that argmin can multiply with a `Vec<f64>` and invert
/// (`ArgminDot`, `ArgminInv`), which `Vec<Vec<f64>>` cannot be in argmin-math's `vec`
/// backend. Made by [`AutoDiff::invertible`]; argmin's `Newton` and `Dogleg` need it.
///
/// The inverse is by Gauss–Jordan elimination with partial pivoting; a singular (or
/// numerically singular) Hessian is an argmin error.
///
/// ```
/// use argmin_math::{ArgminDot, ArgminInv};
/// use mixad::argmin::DenseHessian;
///
/// let h = DenseHessian(vec![vec![2.0, 1.0], vec![1.0, 1.0]]);
/// assert_eq!(h.dot(&vec![1.0, 2.0]), vec![4.0, 3.0]);
/// let inv = h.inv().unwrap();
/// assert_eq!(inv, DenseHessian(vec![vec![1.0, -1.0], vec![-1.0, 2.0]]));
/// assert_eq!(inv.dot(&vec![4.0, 3.0]), vec![1.0, 2.0]);
/// assert!(DenseHessian(vec![vec![1.0, 2.0], vec![2.0, 4.0]]).inv().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DenseHessian(pub Vec<Vec<f64>>);

impl ArgminDot<Vec<f64>, Vec<f64>> for DenseHessian {
    fn dot(&self, v: &Vec<f64>) -> Vec<f64> {
        self.0
            .iter()
            .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
            .collect()
    }
}

impl ArgminInv<DenseHessian> for DenseHessian {
    fn inv(&self) -> Result<DenseHessian, Error> {
        let n = self.0.len();
        // [A | I] reduced to [I | A⁻¹].
        let mut a: Vec<Vec<f64>> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let mut r = row.clone();
                r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
                r
            })
            .collect();
        let scale = self.0.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                .expect("col < n");
            let usable = a[pivot][col].abs() > scale * n as f64 * f64::EPSILON; // false on NaN
            if !usable {
                return Err(::argmin::core::ArgminError::InvalidParameter {
                    text: format!(
                        "mixad::argmin: the Hessian is singular (pivot {:e} in column {col}), \
                         so it has no inverse",
                        a[pivot][col]
                    ),
                }
                .into());
            }
            a.swap(col, pivot);
            let p = a[col][col];
            a[col].iter_mut().for_each(|v| *v /= p);
            let pivot_row = a[col].clone();
            for (i, row) in a.iter_mut().enumerate() {
                if i != col && row[col] != 0.0 {
                    let factor = row[col];
                    row.iter_mut()
                        .zip(&pivot_row)
                        .for_each(|(v, &pv)| *v -= factor * pv);
                }
            }
        }
        Ok(DenseHessian(
            a.into_iter().map(|r| r[n..].to_vec()).collect(),
        ))
    }
}

/// Locks a prepared Hessian. After a panic inside the cost (a poisoned lock) the
/// recording may be half made, so it is dropped and made again at the next call.
fn lock(p: &Mutex<Prepared>) -> MutexGuard<'_, Prepared> {
    p.lock().unwrap_or_else(|poisoned| {
        p.clear_poison();
        let mut guard = poisoned.into_inner();
        guard.hessian = None;
        guard
    })
}

fn check_not_empty(x: &[f64], what: &str) -> Result<(), Error> {
    if x.is_empty() {
        return Err(::argmin::core::ArgminError::InvalidParameter {
            text: format!("mixad::argmin: the {what} of a function of no parameters (x is empty)"),
        }
        .into());
    }
    Ok(())
}

fn check_gradient(grad: &[f64], x: &[f64]) -> Result<(), Error> {
    match grad.iter().position(|g| !g.is_finite()) {
        Some(i) => Err(NonFinite::new(Quantity::Gradient { index: i }, grad[i], x).into()),
        None => Ok(()),
    }
}

/// Which quantity of the cost was not finite; part of [`NonFinite`].
///
/// ```
/// use mixad::argmin::Quantity;
/// assert_eq!(Quantity::Hessian { row: 0, col: 1 }.to_string(), "Hessian entry (0, 1)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// The cost itself.
    Cost,
    /// One entry of the gradient.
    Gradient {
        /// Its index.
        index: usize,
    },
    /// One entry of the Hessian.
    Hessian {
        /// Its row.
        row: usize,
        /// Its column.
        col: usize,
    },
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Cost => write!(f, "cost"),
            Quantity::Gradient { index } => write!(f, "gradient entry {index}"),
            Quantity::Hessian { row, col } => write!(f, "Hessian entry ({row}, {col})"),
        }
    }
}

/// The error an [`AutoDiff`] returns when the cost (NaN or `−∞`), a gradient entry or a
/// Hessian entry is not finite. argmin passes it on as its `Error`; get it back with
/// `downcast_ref`.
///
/// ```
/// use argmin::core::Gradient;
/// use mixad::argmin::{AutoDiff, NonFinite, Quantity};
/// use mixad::Function;
/// use num_traits::Float;
///
/// struct Root;
/// impl Function for Root {
///     fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T { Float::sqrt(x[0]) + x[1] }
/// }
/// let err = AutoDiff::new(Root).gradient(&vec![0.0, 1.0]).unwrap_err();
/// let e = err.downcast_ref::<NonFinite>().unwrap();
/// assert_eq!((e.quantity, e.value), (Quantity::Gradient { index: 0 }, f64::INFINITY));
/// assert_eq!(
///     err.to_string(),
///     "mixad::argmin: gradient entry 0 is inf at x = [0.0, 1.0]",
/// );
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NonFinite {
    /// What was not finite.
    pub quantity: Quantity,
    /// Its value: NaN or ±∞.
    pub value: f64,
    /// The point.
    pub x: Vec<f64>,
}

impl NonFinite {
    fn new(quantity: Quantity, value: f64, x: &[f64]) -> Self {
        NonFinite {
            quantity,
            value,
            x: x.to_vec(),
        }
    }
}

/// Entries of `x` a message shows before eliding the rest.
const SHOWN: usize = 6;

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mixad::argmin: {} is {} at x = ",
            self.quantity, self.value
        )?;
        if self.x.len() <= SHOWN {
            write!(f, "{:?}", self.x)
        } else {
            write!(
                f,
                "{:?} (first {SHOWN} of {} entries)",
                &self.x[..SHOWN],
                self.x.len()
            )
        }
    }
}

impl std::error::Error for NonFinite {}
