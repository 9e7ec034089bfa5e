//! [`Replayer`]: a recording together with the function it came from. It replays the
//! recording at new points and records the function again wherever a branch guard fails,
//! so a replay never returns the derivative of a branch the function would not take.
//! [`crate::Recording`] builds every operator on it.

use std::fmt;

use crate::reverse::program::{Program, Workspace};
use crate::reverse::recording::Session;
use crate::reverse::Var;
use crate::Scalar;

/// What a recorded function returns: one variable (`f: Rⁿ → R`) or a vector of them
/// (`F: Rⁿ → Rᵐ`). Implemented for `Var<f64>` and `Vec<Var<f64>>`; not meant to be
/// implemented elsewhere.
pub trait Outputs {
    /// The output variables, in order.
    fn vars(&self) -> &[Var<f64>];
}

impl Outputs for Var<f64> {
    fn vars(&self) -> &[Var<f64>] {
        std::slice::from_ref(self)
    }
}

impl Outputs for Vec<Var<f64>> {
    fn vars(&self) -> &[Var<f64>] {
        self
    }
}

/// A recording together with the function it came from: replays at new points, and
/// re-records where a branch guard fails.
pub(crate) struct Replayer<F> {
    f: F,
    pub(crate) program: Program,
    rerecords: usize,
    /// The derivative order the current operator needs of custom rules (1: gradients,
    /// Jacobians; 2: Hessians), and the API asking, for the error message when a rule
    /// lacks it.
    order: usize,
    context: &'static str,
    /// The order the current program's custom rules were checked to.
    checked: usize,
    /// The number of outputs of the first recording: every later one must have as many.
    outputs: usize,
}

impl<F, O> Replayer<F>
where
    F: FnMut(&[Var<f64>]) -> O,
    O: Outputs,
{
    /// Records `f` at `x`; `context` names the API in messages.
    pub(crate) fn new(mut f: F, x: &[f64], context: &'static str) -> Self {
        let program = record_program(&mut f, x, context);
        let outputs = program.output_count();
        Replayer {
            f,
            program,
            rerecords: 0,
            order: 0,
            context,
            checked: 0,
            outputs,
        }
    }

    /// Declares what the next replays are for: derivatives of order `order`, asked by
    /// `context`. Panics, naming the rule, if a custom rule of the current recording does
    /// not provide them.
    pub(crate) fn require(&mut self, order: usize, context: &'static str) {
        self.order = order;
        self.context = context;
        if self.checked < order {
            self.program.require_custom_order(order, context);
            self.checked = order;
        }
    }

    /// Evaluates values and partials at `inputs` (whose primal values are `x`) into `ws`,
    /// re-recording at `x` first if a branch guard fails there.
    pub(crate) fn forward<U: Scalar>(&mut self, x: &[f64], inputs: &[U], ws: &mut Workspace<U>) {
        if !self.program.forward(inputs, ws) {
            self.rerecord(x);
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

    /// Records `f` again at `x` (a guard failed there).
    fn rerecord(&mut self, x: &[f64]) {
        let program = record_program(&mut self.f, x, self.context);
        assert_eq!(
            program.output_count(),
            self.outputs,
            "{}: the function returned {} outputs when recorded again, {} when first recorded",
            self.context,
            program.output_count(),
            self.outputs
        );
        self.program = program;
        self.rerecords += 1;
        self.checked = 0;
        let (order, context) = (self.order, self.context);
        self.require(order, context);
    }

    /// How many times a changed branch forced a new recording.
    pub(crate) fn rerecords(&self) -> usize {
        self.rerecords
    }
}

/// A guard of a recording would go the other way at the requested point: returned by
/// [`crate::Recording::try_value_and_gradient`], which does not record again.
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

/// Runs `f` at `x` in a logging recording and returns the replayable program.
pub(crate) fn record_program<F, O>(f: &mut F, x: &[f64], context: &str) -> Program
where
    F: FnMut(&[Var<f64>]) -> O,
    O: Outputs,
{
    let session = Session::<f64>::begin(true);
    let inputs = session.inputs(x);
    let y = f(&inputs);
    for v in y.vars() {
        session.check_output(v, context);
    }
    let (id, start) = (session.id(), session.start());
    session.finish(|tape, log| {
        let log = log.expect("a logging recording has a log");
        Program::new(id, &tape.nodes, start, *log, x.len(), y.vars())
    })
}
