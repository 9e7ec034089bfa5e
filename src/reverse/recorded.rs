//! [`Recorded`]: record a function once, then evaluate value and gradient at new points
//! without re-running it, guarded against branches that would go the other way.

use std::fmt;

use crate::reverse::program::{Program, Workspace};
use crate::reverse::recording::Session;
use crate::reverse::Var;
use crate::Scalar;

/// A function recorded once and replayed at new points. Made by [`record`].
///
/// Every decision the function took from a tracked value while recording (a comparison,
/// a `while` condition, a predicate such as `is_nan` or `is_zero`, an `approx`
/// comparison, a conversion to a plain number, printing, the `Err` of a block operation
/// in [`crate::linalg`], a custom rule's panic caught inside the function) is kept as a
/// *branch guard*. At a new point the replay checks them all; if any would go the
/// other way, [`Recorded::value_and_gradient`] re-records at the new point (so the result
/// is always the derivative of the branch actually taken there), and
/// [`Recorded::try_value_and_gradient`] returns [`BranchChanged`] instead. Piecewise
/// primitives (`max`, `abs`, `floor`, …) need no guard: the replay re-evaluates their rule
/// at the new point.
///
/// A replay does not call the closure: side effects in `f` happen only when it records.
/// A decision taken from an extracted value (`Var::value`, `to_f64`) is guarded by that
/// exact value, so such a function re-records at every new point.
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T {
///     if x[0] > T::zero() { x[0] * x[1] } else { x[1].powi(2) }
/// }
/// let mut rec = mixad::reverse::record(|x| f(x), &[1.0, 3.0]);
/// assert_eq!(rec.value_and_gradient(&[2.0, 5.0]), (10.0, vec![5.0, 2.0])); // replayed
/// assert_eq!(rec.rerecord_count(), 0);
/// assert_eq!(rec.value_and_gradient(&[-1.0, 5.0]), (25.0, vec![0.0, 10.0])); // branch flipped
/// assert_eq!(rec.rerecord_count(), 1);
/// assert!(rec.try_value_and_gradient(&[1.0, 5.0]).is_err()); // opted out of re-recording
/// ```
pub struct Recorded<F> {
    replay: Replayer<F>,
    workspace: Workspace<f64>,
}

/// A recording together with the function it came from: replays at new points, and
/// re-records where a branch guard fails. Shared by [`Recorded`] and the prepared Hessian.
pub(crate) struct Replayer<F> {
    f: F,
    pub(crate) program: Program,
    rerecords: usize,
    /// The derivative order the replays need of custom rules (1: gradients, 2: Hessians),
    /// and the API asking, for the error message when a rule lacks it.
    order: usize,
    context: &'static str,
}

impl<F> Replayer<F>
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    /// Records `f` at `x`, for replays that need derivatives of order `order` (checked
    /// against the custom rules `f` calls; `context` names the API in the message).
    pub(crate) fn new(mut f: F, x: &[f64], order: usize, context: &'static str) -> Self {
        let program = record_program(&mut f, x);
        program.require_custom_order(order, context);
        Replayer {
            f,
            program,
            rerecords: 0,
            order,
            context,
        }
    }

    /// Evaluates values and partials at `inputs` (whose primal values are `x`) into `ws`,
    /// re-recording at `x` first if a branch guard fails there.
    pub(crate) fn forward<U: Scalar>(&mut self, x: &[f64], inputs: &[U], ws: &mut Workspace<U>) {
        if !self.program.forward(inputs, ws) {
            self.program = record_program(&mut self.f, x);
            self.program.require_custom_order(self.order, self.context);
            self.rerecords += 1;
            let holds = self.program.forward(inputs, ws);
            // Never return the values of a replay that failed: a fresh recording that fails
            // its own guards at the same point means `f` decides differently each time.
            assert!(
                holds,
                "{}: the function, recorded again at this point, takes a different branch \
                 when replayed there at once (is it deterministic? a decision on a random \
                 number, the clock or a counter cannot be replayed)",
                self.context
            );
        }
    }

    /// How many times a changed branch forced a new recording.
    pub(crate) fn rerecords(&self) -> usize {
        self.rerecords
    }
}

/// A guard of a [`Recorded`] function would go the other way at the requested point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchChanged {
    /// How many guards the recording holds.
    pub guards: usize,
}

impl fmt::Display for BranchChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a branch taken when the function was recorded goes the other way at this point \
             (one of {} guards failed); record again at this point",
            self.guards
        )
    }
}

impl std::error::Error for BranchChanged {}

/// Records `f: Rⁿ → R` at `x` for replay at other points. See [`Recorded`].
pub fn record<F>(f: F, x: &[f64]) -> Recorded<F>
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    Recorded {
        replay: Replayer::new(f, x, 1, "reverse::record"),
        workspace: Workspace::new(),
    }
}

pub(crate) fn record_program<F>(f: &mut F, x: &[f64]) -> Program
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    let session = Session::<f64>::begin(true);
    let inputs = session.inputs(x);
    let y = f(&inputs);
    session.check_output(&y, "reverse::record");
    let (id, start) = (session.id(), session.start());
    session.finish(|tape, log| {
        let log = log.expect("a logging recording has a log");
        Program::new(id, &tape.nodes, start, *log, x.len(), &y)
    })
}

impl<F> Recorded<F>
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    /// `(f(x), ∇f(x))`, replaying the recording; re-records if a branch changed.
    ///
    /// # Panics
    /// If `x` has a different length than the point first recorded.
    pub fn value_and_gradient(&mut self, x: &[f64]) -> (f64, Vec<f64>) {
        let mut grad = vec![0.0; x.len()];
        let value = self.value_and_gradient_into(x, &mut grad);
        (value, grad)
    }

    /// `∇f(x)`; see [`Recorded::value_and_gradient`].
    pub fn gradient(&mut self, x: &[f64]) -> Vec<f64> {
        self.value_and_gradient(x).1
    }

    /// Writes `∇f(x)` into `grad` and returns `f(x)`; allocates nothing once warm.
    ///
    /// # Panics
    /// If `x` or `grad` has a different length than the point first recorded.
    pub fn value_and_gradient_into(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.check_lengths(x, grad);
        self.replay.forward(x, x, &mut self.workspace);
        self.replay.program.backward(&mut self.workspace, grad);
        self.replay.program.output(&self.workspace)
    }

    /// Like [`Recorded::value_and_gradient`], but never re-records: returns
    /// [`BranchChanged`] when a branch would go the other way at `x`.
    pub fn try_value_and_gradient(&mut self, x: &[f64]) -> Result<(f64, Vec<f64>), BranchChanged> {
        let mut grad = vec![0.0; x.len()];
        self.check_lengths(x, &grad);
        if !self.replay.program.forward(x, &mut self.workspace) {
            return Err(BranchChanged {
                guards: self.replay.program.guard_count(),
            });
        }
        self.replay.program.backward(&mut self.workspace, &mut grad);
        Ok((self.replay.program.output(&self.workspace), grad))
    }

    /// How many times a changed branch forced a new recording.
    pub fn rerecord_count(&self) -> usize {
        self.replay.rerecords()
    }

    /// Number of operations in the current recording (inputs included).
    pub fn len(&self) -> usize {
        self.replay.program.len() - 1
    }

    /// True if the recording holds no operation (a function of no inputs returning a
    /// constant).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of branch guards in the current recording.
    pub fn guard_count(&self) -> usize {
        self.replay.program.guard_count()
    }

    fn check_lengths(&self, x: &[f64], grad: &[f64]) {
        let n = self.replay.program.inputs();
        assert_eq!(
            x.len(),
            n,
            "Recorded: the function was recorded with {n} inputs, called with {}",
            x.len()
        );
        assert_eq!(
            grad.len(),
            n,
            "Recorded: the gradient buffer has {} entries, expected {n}",
            grad.len()
        );
    }
}
