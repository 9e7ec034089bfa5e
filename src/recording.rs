//! [`Recording`]: a function recorded once, and every operator replayed from it.
//!
//! [`record`] runs `f` once on reverse-mode variables and keeps what it did as a replayable
//! program guarded by every decision `f` took. Each operator (gradient, Hessian-vector
//! product, dense and sparse Hessian, Jacobian, Lagrangian Hessian) replays that program
//! at the scalar type it needs and keeps its own state inside (workspaces, lane workers,
//! the sparse plan), so a solver asking at a new point every iteration allocates nothing
//! once warm. Where a decision would go the other way at a new point, `f` is recorded
//! again there and every operator's state follows the new program.

use std::marker::PhantomData;

use faer::{Mat, MatMut};

use crate::compiled::{Compile, Interpreted, ReplayMode, Tier};
use crate::forward::tag::fresh_tag;
use crate::forward::width::{check_lanes, lanes_for};
use crate::forward::Dual;
use crate::hessian::{check_direction, DenseColumns};
use crate::parallel::{Parallelism, Pool};
use crate::reverse::program::Workspace;
use crate::reverse::{BranchChanged, Outputs, Replayer, Var};
use crate::sparse::{
    ColouringKind, JacobianDirection, JacobianPattern, JacobianPlan, SparseHessian, SparseJacobian,
    SparsePlan, SparsityPattern,
};

/// Options of a [`Recording`], set once: tangent lanes per sweep, parallelism, colouring.
///
/// ```
/// use mixad::{ColouringKind, Options, Parallelism};
/// let options = Options {
///     lanes: Some(4),
///     parallelism: Parallelism::Serial,
///     colouring: ColouringKind::Acyclic,
///     ..Options::default()
/// };
/// let mut rec = mixad::record_with(|x| x[0] * x[1] * x[2], &[1.0; 3], options);
/// assert_eq!(rec.hessian(&[1.0, 2.0, 3.0])[(2, 1)], 1.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Tangent lanes per sweep of a Hessian (dense columns, sparse colours) and of a
    /// forward sparse Jacobian (column colours): 1, 2, 4, 8 or 16. `None` chooses from the
    /// problem: every column (colour) in one sweep when they fit in 16 lanes, else 8
    /// columns (16 colours) per sweep.
    pub lanes: Option<usize>,
    /// How the sweeps of one evaluation are spread over threads.
    pub parallelism: Parallelism,
    /// How a sparse Hessian's pattern is coloured.
    pub colouring: ColouringKind,
    /// When the gradient replays are compiled to machine code (see
    /// [`Recording::replay_mode`]).
    pub compile: Compile,
}

impl Options {
    fn validate(&self, api: &str) {
        if let Some(l) = self.lanes {
            check_lanes(l, api);
        }
    }
}

/// A function recorded once and replayed by every operator (see the module docs and the
/// operator table in the crate docs). Made by [`record`], [`record_with`] or
/// [`record_lagrangian`].
///
/// `O` is what the function returns: `Var<f64>` for `f: Rⁿ → R` (gradient, HVP, dense
/// and sparse Hessians) or `Vec<Var<f64>>` for `F: Rⁿ → Rᵐ` (values, Jacobian, VJP,
/// Lagrangian Hessian).
///
/// Every decision the function took from a tracked value while recording (a comparison,
/// a `while` condition, a predicate such as `is_nan` or `is_zero`, an `approx`
/// comparison, a conversion to a plain number, printing, the `Err` of a block operation
/// in [`crate::linalg`], a custom rule's panic caught inside the function) is kept as a
/// *branch guard*. At a new point every operator checks them; if one would go the other
/// way, the function is recorded again at the new point (so the result is always the
/// derivative of the branch actually taken there), and
/// [`Recording::try_value_and_gradient`] returns [`BranchChanged`] instead. Piecewise
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
/// let mut rec = mixad::record(|x| f(x), &[1.0, 3.0]);
/// assert_eq!(rec.value_and_gradient(&[2.0, 5.0]), (10.0, vec![5.0, 2.0])); // replayed
/// assert_eq!(rec.hvp(&[2.0, 5.0], &[1.0, 0.0]), vec![0.0, 1.0]);
/// assert_eq!(rec.hessian(&[2.0, 5.0])[(1, 0)], 1.0);
/// assert_eq!(rec.rerecord_count(), 0);
/// assert_eq!(rec.value_and_gradient(&[-1.0, 5.0]), (25.0, vec![0.0, 10.0])); // branch flipped
/// assert_eq!(rec.rerecord_count(), 1);
/// assert!(rec.try_value_and_gradient(&[1.0, 5.0]).is_err()); // opted out of re-recording
/// ```
pub struct Recording<F, O = Var<f64>> {
    replay: Replayer<F>,
    options: Options,
    pool: Pool,
    /// Inputs of the function.
    n: usize,
    primal: Workspace<f64>,
    tangent: Workspace<Dual<f64>>,
    tangent_inputs: Vec<Dual<f64>>,
    tangent_adjoints: Vec<Dual<f64>>,
    /// Output seeds of the current operator (`[1]` for a scalar function).
    weights: Vec<f64>,
    /// A gradient no caller asked for (the Lagrangian's), or a Jacobian row.
    scratch: Vec<f64>,
    dense: Option<DenseColumns>,
    sparse: Option<SparsePlan>,
    /// The sparse Jacobian's plan, and the direction asked for.
    jacobian: Option<JacobianPlan>,
    jacobian_direction: JacobianDirection,
    /// Compiled code for the gradient replays, once they pay (see [`Recording::replay_mode`]).
    tier: Tier,
    detections: usize,
    _output: PhantomData<fn() -> O>,
}

/// Records `f` at `x` with the default [`Options`]; see [`Recording`].
///
/// An empty `x` is a function of no inputs: every operator then gives `f()` and empty
/// derivatives.
pub fn record<F, O>(f: F, x: &[f64]) -> Recording<F, O>
where
    F: FnMut(&[Var<f64>]) -> O,
    O: Outputs,
{
    record_with(f, x, Options::default())
}

/// Records `f` at `x` with `options`; see [`Recording`].
///
/// # Panics
/// If `options.lanes` is not 1, 2, 4, 8 or 16.
pub fn record_with<F, O>(f: F, x: &[f64], options: Options) -> Recording<F, O>
where
    F: FnMut(&[Var<f64>]) -> O,
    O: Outputs,
{
    options.validate("mixad::record");
    Recording {
        replay: Replayer::new(f, x, "mixad::record"),
        options,
        pool: Pool::new(options.parallelism, "mixad::record"),
        n: x.len(),
        primal: Workspace::new(),
        tangent: Workspace::new(),
        tangent_inputs: Vec::new(),
        tangent_adjoints: Vec::new(),
        weights: Vec::new(),
        scratch: Vec::new(),
        dense: None,
        sparse: None,
        jacobian: None,
        jacobian_direction: JacobianDirection::Auto,
        tier: Tier::new(options.compile),
        detections: 0,
        _output: PhantomData,
    }
}

/// The recording of a constrained problem's objective `f` and constraints `g` together,
/// for the Hessian of the Lagrangian `σ∇²f(x) + Σ λᵢ∇²gᵢ(x)`
/// ([`Recording::lagrangian_hessian`]): output 0 is `f`, outputs `1..=m` are `g`.
pub type Lagrangian<'f> = Recording<JointFunction<'f>, Vec<Var<f64>>>;

/// The boxed joint function `x ↦ (f(x), g(x))` a [`Lagrangian`] recording replays.
pub type JointFunction<'f> = Box<dyn FnMut(&[Var<f64>]) -> Vec<Var<f64>> + 'f>;

/// Records the objective `f` and the constraints `g` at `x` as one function
/// `x ↦ (f(x), g(x))`; the joint sparsity pattern of the Lagrangian's Hessian is detected
/// once (see [`Recording::lagrangian_hessian`]).
///
/// ```
/// // min x₀x₁ subject to x₀² + x₁² = 1, x₀x₁² ≥ 0.
/// let f = |x: &[mixad::reverse::Var<f64>]| x[0] * x[1];
/// let g = |x: &[mixad::reverse::Var<f64>]| vec![x[0] * x[0] + x[1] * x[1], x[0] * x[1] * x[1]];
/// let mut rec = mixad::record_lagrangian(f, g, &[0.5, 0.5], Default::default());
/// let h = rec.lagrangian_hessian(&[1.0, 2.0], 1.0, &[3.0, 0.5]);
/// // σ·[[0,1],[1,0]] + 3·[[2,0],[0,2]] + 0.5·[[0, 2x₁],[2x₁, 2x₀]]
/// assert_eq!((h.get(0, 0), h.get(1, 0), h.get(1, 1)), (6.0, 3.0, 7.0));
/// assert_eq!(rec.values(&[1.0, 2.0]), vec![2.0, 5.0, 4.0]); // f, then g
/// ```
///
/// # Panics
/// If `options.lanes` is out of range; at any later call, if `g` returns a different
/// number of constraints than when first recorded.
pub fn record_lagrangian<'f, F, G>(
    mut f: F,
    mut g: G,
    x: &[f64],
    options: Options,
) -> Lagrangian<'f>
where
    F: FnMut(&[Var<f64>]) -> Var<f64> + 'f,
    G: FnMut(&[Var<f64>]) -> Vec<Var<f64>> + 'f,
{
    let joint: JointFunction<'f> = Box::new(move |x| {
        let mut out = vec![f(x)];
        out.extend(g(x));
        out
    });
    record_with(joint, x, options)
}

// --- Every recording: introspection and the shared sweeps. ---------------------------

impl<F, O> Recording<F, O>
where
    F: FnMut(&[Var<f64>]) -> O,
    O: Outputs,
{
    /// Number of inputs (the length of every `x`).
    pub fn input_count(&self) -> usize {
        self.n
    }

    /// Number of outputs (1 for `f: Rⁿ → R`).
    pub fn output_count(&self) -> usize {
        self.replay.program.output_count()
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

    /// How many times a changed branch forced a new recording.
    pub fn rerecord_count(&self) -> usize {
        self.replay.rerecords()
    }

    /// The fraction of the current recording's operations that lie inside loops found
    /// again in it: consecutive copies of one body of operations whose operands step
    /// through the inputs and earlier results affinely, the runs a compiled replay runs
    /// as loops (see the crate's compiled-replay module). 0 for a recording without
    /// operations; computed afresh at each call, in time near-linear in the recording's
    /// length.
    ///
    /// ```
    /// use num_traits::Float;
    /// // Extended Rosenbrock: 99 copies of one term.
    /// let rosen = |x: &[mixad::reverse::Var<f64>]| {
    ///     (0..x.len() - 1)
    ///         .map(|i| 100.0 * (x[i + 1] - x[i] * x[i]).powi(2) + (1.0 - x[i]).powi(2))
    ///         .fold(x[0] * 0.0, |s, t| s + t)
    /// };
    /// let rec = mixad::record(rosen, &[1.2; 100]);
    /// assert!(rec.loop_coverage() > 0.95);
    /// ```
    pub fn loop_coverage(&self) -> f64 {
        crate::compiled::rolling::roll(&self.replay.program).coverage()
    }

    /// How the gradient replays run (value and gradient, and the gradient parts of the
    /// Jacobian, VJP and Lagrangian operators): interpreted, and why, or compiled to
    /// machine code. A recording compiles itself after [`crate::COMPILE_AFTER`] gradient
    /// replays where compiled code pays (feature `jit`, on by default), or at
    /// [`Recording::compile`]; a re-recording starts again uncompiled.
    ///
    /// ```
    /// use mixad::{Interpreted, ReplayMode};
    /// let mut rec = mixad::record(|x| x[0] * x[1], &[1.0, 2.0]);
    /// assert_eq!(rec.replay_mode(), ReplayMode::Interpreted(Interpreted::NotYet { replays: 0 }));
    /// # #[cfg(feature = "jit")] {
    /// rec.compile().unwrap();
    /// assert!(matches!(rec.replay_mode(), ReplayMode::Compiled { .. }));
    /// assert_eq!(rec.gradient(&[3.0, 4.0]), vec![4.0, 3.0]);
    /// # }
    /// ```
    pub fn replay_mode(&self) -> ReplayMode {
        self.tier.mode(&self.replay.program)
    }

    /// Compiles the current recording's gradient replays now instead of after
    /// [`crate::COMPILE_AFTER`] replays. `Err` says why they stay interpreted (see
    /// [`Interpreted`]); results are the same either way.
    pub fn compile(&mut self) -> Result<(), Interpreted> {
        self.tier.compile(&self.replay.program)
    }

    /// How many times a sparse Hessian's or sparse Jacobian's pattern was detected: 0
    /// before the first sparse Hessian or Jacobian, then 1 for each, plus one per
    /// re-recording that a sparse Hessian or Jacobian met.
    pub fn detection_count(&self) -> usize {
        self.detections
    }

    /// The options set at recording.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The sparsity pattern of the Hessian (of `Σ wₖ Fₖ` for any weights, for a vector
    /// function) in the current recording: the order of a sparse Hessian's values.
    /// Detected and coloured on first use.
    pub fn sparsity_pattern(&mut self) -> &SparsityPattern {
        self.sparse_plan()
    }

    /// Colours of the sparse Hessian's pattern: Hessian-vector products per point.
    pub fn colour_count(&mut self) -> usize {
        self.sparse_plan();
        self.sparse.as_ref().map_or(0, SparsePlan::colour_count)
    }

    /// Panics unless `x` has the recorded number of inputs.
    fn check_x(&self, x: &[f64], api: &str) {
        let n = self.n;
        assert_eq!(
            x.len(),
            n,
            "{api}: the function was recorded with {n} inputs, called with {}",
            x.len()
        );
    }

    /// The sparse plan for the current program, built (or rebuilt) if needed.
    fn sparse_plan(&mut self) -> &SparsityPattern {
        let fits = self
            .sparse
            .as_ref()
            .is_some_and(|p| p.fits(&self.replay.program));
        if !fits {
            self.sparse = Some(SparsePlan::new(
                &self.replay.program,
                self.options.colouring,
                self.options.lanes,
                self.pool.threads(),
            ));
            self.detections += 1;
        }
        self.sparse.as_ref().expect("just built").pattern()
    }

    /// One `f64` sweep: values (re-recording where a guard fails), then `Σ wₖ ∇Fₖ` into
    /// `grad` for `self.weights`; returns `Σ wₖ Fₖ`.
    fn primal_sweep(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        #[cfg(feature = "jit")]
        if let Some(code) = self.tier.code_for(&self.replay.program) {
            let program = &self.replay.program;
            if program.forward_by(x, &mut self.primal, |values, adjoints| {
                code.forward(values, adjoints)
            }) {
                program.backward_by(&mut self.primal, &self.weights, grad, |values, adjoints| {
                    code.reverse(values, adjoints)
                });
                return self.weighted_value();
            }
            // A guard fails at `x`: the interpreted path below records again.
        }
        self.replay.forward(x, x, &mut self.primal);
        let program = &self.replay.program;
        program.backward_weighted(&mut self.primal, &self.weights, grad);
        self.weighted_value()
    }

    /// `Σ wₖ Fₖ` after an `f64` forward sweep.
    fn weighted_value(&self) -> f64 {
        let program = &self.replay.program;
        self.weights
            .iter()
            .enumerate()
            .map(|(k, &w)| {
                let y = program.output_at(&self.primal, k);
                if w == 1.0 {
                    y
                } else {
                    w * y
                }
            })
            .sum()
    }

    /// The sparse Hessian of `Σ wₖ Fₖ` (for `self.weights`) at `x`, into `h`; its gradient
    /// into `grad`; returns its value.
    fn sparse_sweep(&mut self, x: &[f64], grad: &mut [f64], h: &mut SparseHessian) -> f64 {
        self.replay.require(2, "mixad::sparse_hessian");
        if self.replay.program.can_fail() || self.sparse.is_none() {
            // The f64 replay checks the guards (and that every factorisation and custom
            // rule still succeeds) and re-records where one fails.
            self.replay.forward(x, x, &mut self.primal);
        }
        self.sparse_plan();
        let plan = self.sparse.as_mut().expect("built above");
        let values = h.refill(plan.pattern());
        if plan.colour_count() == 0 {
            // No second derivatives: value and gradient from one f64 sweep.
            values.clear();
            return self.primal_sweep(x, grad);
        }
        plan.sweep(
            &self.replay.program,
            x,
            &self.weights,
            grad,
            values,
            &self.pool,
        )
    }

    fn set_weights(&mut self, weights: impl IntoIterator<Item = f64>) {
        self.weights.clear();
        self.weights.extend(weights);
    }
}

// --- Scalar functions `f: Rⁿ → R`. -------------------------------------------------

impl<F> Recording<F, Var<f64>>
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
{
    /// `f(x)`: one `f64` replay, no derivative.
    pub fn value(&mut self, x: &[f64]) -> f64 {
        self.check_x(x, "value");
        self.replay.forward(x, x, &mut self.primal);
        self.replay.program.output(&self.primal)
    }

    /// `∇f(x)`; see [`Recording::value_and_gradient`].
    pub fn gradient(&mut self, x: &[f64]) -> Vec<f64> {
        self.value_and_gradient(x).1
    }

    /// `(f(x), ∇f(x))`: one replay at `f64` and one reverse sweep.
    ///
    /// # Panics
    /// If `x` has a different length than the point first recorded.
    pub fn value_and_gradient(&mut self, x: &[f64]) -> (f64, Vec<f64>) {
        let mut grad = vec![0.0; x.len()];
        let value = self.value_and_gradient_into(x, &mut grad);
        (value, grad)
    }

    /// Writes `∇f(x)` into `grad` and returns `f(x)`; allocates nothing once warm.
    ///
    /// # Panics
    /// If `x` or `grad` has a different length than the point first recorded.
    pub fn value_and_gradient_into(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.check_x(x, "gradient");
        check_buffer(grad.len(), self.n, "gradient", "gradient");
        self.replay.require(1, "mixad::gradient");
        self.set_weights([1.0]);
        self.primal_sweep(x, grad)
    }

    /// Like [`Recording::value_and_gradient`], but never re-records: returns
    /// [`BranchChanged`] when a branch would go the other way at `x`.
    pub fn try_value_and_gradient(&mut self, x: &[f64]) -> Result<(f64, Vec<f64>), BranchChanged> {
        self.check_x(x, "gradient");
        self.replay.require(1, "mixad::gradient");
        let program = &self.replay.program;
        if !program.forward(x, &mut self.primal) {
            return Err(BranchChanged {
                guards: program.guard_count(),
            });
        }
        let mut grad = vec![0.0; x.len()];
        program.backward(&mut self.primal, &mut grad);
        Ok((program.output(&self.primal), grad))
    }

    /// `∇²f(x)·v` in one forward-over-reverse sweep of the recording.
    pub fn hvp(&mut self, x: &[f64], v: &[f64]) -> Vec<f64> {
        self.value_gradient_hvp(x, v).2
    }

    /// `(f(x), ∇f(x), ∇²f(x)·v)` in one sweep of the recording.
    ///
    /// # Panics
    /// If `x` or `v` has a different length than the point first recorded.
    pub fn value_gradient_hvp(&mut self, x: &[f64], v: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        let mut grad = vec![0.0; x.len()];
        let mut hv = vec![0.0; x.len()];
        let value = self.value_gradient_hvp_into(x, v, &mut grad, &mut hv);
        (value, grad, hv)
    }

    /// Writes `∇f(x)` into `grad` and `∇²f(x)·v` into `hv` and returns `f(x)`; allocates
    /// nothing once warm.
    ///
    /// # Panics
    /// If `x`, `v`, `grad` or `hv` has a different length than the point first recorded.
    pub fn value_gradient_hvp_into(
        &mut self,
        x: &[f64],
        v: &[f64],
        grad: &mut [f64],
        hv: &mut [f64],
    ) -> f64 {
        self.check_x(x, "hvp");
        check_direction(x, v, "hvp");
        check_buffer(grad.len(), self.n, "hvp", "gradient");
        check_buffer(hv.len(), self.n, "hvp", "product");
        self.replay.require(2, "mixad::hvp");
        let tag = fresh_tag();
        self.tangent_inputs.clear();
        self.tangent_inputs
            .extend(x.iter().zip(v).map(|(&a, &b)| Dual::tagged(a, b, tag)));
        self.tangent_adjoints.resize(self.n, Dual::new(0.0, 0.0));
        // One sweep gives value, gradient and H·v, and checks the guards on the way: no
        // separate f64 sweep.
        self.replay
            .forward(x, &self.tangent_inputs, &mut self.tangent);
        let program = &self.replay.program;
        program.backward(&mut self.tangent, &mut self.tangent_adjoints);
        for ((g, h), d) in grad
            .iter_mut()
            .zip(hv.iter_mut())
            .zip(&self.tangent_adjoints)
        {
            *g = d.value;
            *h = d.tangent;
        }
        program.output(&self.tangent).value
    }

    /// The dense Hessian `∇²f(x)` (`n × n`, exactly symmetric).
    pub fn hessian(&mut self, x: &[f64]) -> Mat<f64> {
        self.value_gradient_hessian(x).2
    }

    /// `(f(x), ∇f(x), ∇²f(x))` from the same sweeps.
    ///
    /// # Panics
    /// If `x` has a different length than the point first recorded.
    pub fn value_gradient_hessian(&mut self, x: &[f64]) -> (f64, Vec<f64>, Mat<f64>) {
        let n = self.n;
        let mut grad = vec![0.0; n];
        let mut h = Mat::zeros(n, n);
        let value = self.value_gradient_hessian_into(x, &mut grad, h.as_mut());
        (value, grad, h)
    }

    /// Writes `∇f(x)` into `grad` and `∇²f(x)` into `hessian` (`n × n`) and returns `f(x)`.
    /// Allocates nothing once warm.
    ///
    /// ```
    /// use mixad::faer::Mat;
    /// let mut rec = mixad::record(|x| x[0] * x[0] * x[1], &[1.0, 1.0]);
    /// let (mut g, mut h) = (vec![0.0; 2], Mat::zeros(2, 2));
    /// let y = rec.value_gradient_hessian_into(&[3.0, 2.0], &mut g, h.as_mut());
    /// assert_eq!((y, g[0], h[(0, 1)]), (18.0, 12.0, 6.0));
    /// ```
    ///
    /// # Panics
    /// If `x`, `grad` or `hessian` has the wrong size.
    pub fn value_gradient_hessian_into(
        &mut self,
        x: &[f64],
        grad: &mut [f64],
        mut hessian: MatMut<'_, f64>,
    ) -> f64 {
        let n = self.n;
        self.check_x(x, "hessian");
        check_buffer(grad.len(), n, "hessian", "gradient");
        assert!(
            hessian.nrows() == n && hessian.ncols() == n,
            "hessian: the Hessian buffer is {} × {}, expected {n} × {n}",
            hessian.nrows(),
            hessian.ncols()
        );
        self.replay.require(2, "mixad::hessian");
        self.set_weights([1.0]);
        let value = self.primal_sweep(x, grad);
        let (lanes, threads) = (self.options.lanes, self.pool.threads());
        let dense = self
            .dense
            .get_or_insert_with(|| DenseColumns::new(n, lanes, threads));
        let columns = dense.sweep(&self.replay.program, x, &self.weights, &self.pool);
        for j in 0..n {
            for i in 0..n {
                hessian[(i, j)] = columns[j * n + i];
            }
        }
        value
    }

    /// Columns per sweep of the dense Hessian.
    pub fn hessian_lanes(&self) -> usize {
        self.dense.as_ref().map_or_else(
            || self.options.lanes.unwrap_or_else(|| lanes_for(self.n)),
            DenseColumns::lanes,
        )
    }

    /// The sparse Hessian `∇²f(x)`, lower triangle, in the pattern detected from the
    /// recording ([`Recording::sparsity_pattern`]).
    ///
    /// ```
    /// use num_traits::Float;
    /// // ARWHEAD: Σ (xᵢ² + xₙ²)² − 4xᵢ + 3, an arrowhead Hessian.
    /// fn arwhead<T: Float>(x: &[T]) -> T {
    ///     let n = x.len();
    ///     let (three, four) = (T::from(3.0).unwrap(), T::from(4.0).unwrap());
    ///     (0..n - 1).fold(T::zero(), |s, i| {
    ///         s + (x[i] * x[i] + x[n - 1] * x[n - 1]).powi(2) - four * x[i] + three
    ///     })
    /// }
    /// let x = vec![1.0; 1000];
    /// let mut rec = mixad::record(|x| arwhead(x), &x);
    /// let h = rec.sparse_hessian(&x);
    /// assert_eq!(rec.colour_count(), 2);
    /// assert_eq!(h.nnz(), 2 * 999 + 1); // diagonal and last row
    /// assert_eq!(h.get(999, 0), 8.0); // ∂²/∂x₀∂xₙ = 8 x₀ xₙ
    /// ```
    pub fn sparse_hessian(&mut self, x: &[f64]) -> SparseHessian {
        self.value_gradient_sparse_hessian(x).2
    }

    /// `(f(x), ∇f(x), ∇²f(x))` with the Hessian sparse, from the same sweeps.
    ///
    /// # Panics
    /// If `x` has a different length than the point first recorded.
    pub fn value_gradient_sparse_hessian(&mut self, x: &[f64]) -> (f64, Vec<f64>, SparseHessian) {
        let mut grad = vec![0.0; self.n];
        let mut h = SparseHessian::default();
        let value = self.value_gradient_sparse_hessian_into(x, &mut grad, &mut h);
        (value, grad, h)
    }

    /// Writes `∇f(x)` into `grad` and the sparse Hessian into `hessian` (any
    /// [`SparseHessian`], e.g. `SparseHessian::default()`: it takes the current pattern)
    /// and returns `f(x)`. Allocates nothing once warm, unless a changed branch changed the
    /// pattern.
    ///
    /// # Panics
    /// If `x` or `grad` has a different length than the point first recorded.
    pub fn value_gradient_sparse_hessian_into(
        &mut self,
        x: &[f64],
        grad: &mut [f64],
        hessian: &mut SparseHessian,
    ) -> f64 {
        self.check_x(x, "sparse_hessian");
        check_buffer(grad.len(), self.n, "sparse_hessian", "gradient");
        self.set_weights([1.0]);
        self.sparse_sweep(x, grad, hessian)
    }
}

// --- Vector functions `F: Rⁿ → Rᵐ`. ------------------------------------------------

impl<F> Recording<F, Vec<Var<f64>>>
where
    F: FnMut(&[Var<f64>]) -> Vec<Var<f64>>,
{
    /// `F(x)`: one `f64` replay, no derivative.
    pub fn values(&mut self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; self.output_count()];
        self.values_into(x, &mut y);
        y
    }

    /// Writes `F(x)` into `y` (`m` entries).
    ///
    /// # Panics
    /// If `x` or `y` has the wrong length.
    pub fn values_into(&mut self, x: &[f64], y: &mut [f64]) {
        self.check_x(x, "values");
        check_buffer(y.len(), self.output_count(), "values", "output");
        self.replay.forward(x, x, &mut self.primal);
        self.read_outputs(y);
    }

    /// The Jacobian `∂F/∂x` (`m × n`).
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0] * x[1], x[0] + x[1]], &[1.0, 1.0]);
    /// let j = rec.jacobian(&[2.0, 3.0]);
    /// assert_eq!((j[(0, 0)], j[(0, 1)], j[(1, 0)], j[(1, 1)]), (3.0, 2.0, 1.0, 1.0));
    /// ```
    pub fn jacobian(&mut self, x: &[f64]) -> Mat<f64> {
        self.values_and_jacobian(x).1
    }

    /// `(F(x), ∂F/∂x)`.
    pub fn values_and_jacobian(&mut self, x: &[f64]) -> (Vec<f64>, Mat<f64>) {
        let m = self.output_count();
        let mut y = vec![0.0; m];
        let mut j = Mat::zeros(m, self.n);
        self.values_and_jacobian_into(x, &mut y, j.as_mut());
        (y, j)
    }

    /// Writes `F(x)` into `y` and `∂F/∂x` into `jacobian` (`m × n`): one `f64` replay and
    /// one reverse sweep per output.
    ///
    /// # Panics
    /// If `x`, `y` or `jacobian` has the wrong size.
    pub fn values_and_jacobian_into(
        &mut self,
        x: &[f64],
        y: &mut [f64],
        mut jacobian: MatMut<'_, f64>,
    ) {
        let (n, m) = (self.n, self.output_count());
        self.check_x(x, "jacobian");
        check_buffer(y.len(), m, "jacobian", "output");
        assert!(
            jacobian.nrows() == m && jacobian.ncols() == n,
            "jacobian: the Jacobian buffer is {} × {}, expected {m} × {n}",
            jacobian.nrows(),
            jacobian.ncols()
        );
        self.replay.require(1, "mixad::jacobian");
        self.replay.forward(x, x, &mut self.primal);
        self.read_outputs(y);
        let mut row = std::mem::take(&mut self.scratch);
        row.resize(n, 0.0);
        for i in 0..m {
            self.set_weights((0..m).map(|k| f64::from(u8::from(k == i))));
            let program = &self.replay.program;
            program.backward_weighted(&mut self.primal, &self.weights, &mut row);
            for (j, &d) in row.iter().enumerate() {
                jacobian[(i, j)] = d;
            }
        }
        self.scratch = row;
    }

    /// `wᵀ ∂F/∂x = Σ wₖ ∇Fₖ(x)`, the vector-Jacobian product: one replay and one reverse
    /// sweep.
    ///
    /// # Panics
    /// If `x` or `w` has the wrong length.
    pub fn vjp(&mut self, x: &[f64], w: &[f64]) -> Vec<f64> {
        self.check_x(x, "vjp");
        check_buffer(w.len(), self.output_count(), "vjp", "cotangent");
        self.replay.require(1, "mixad::vjp");
        self.set_weights(w.iter().copied());
        let mut grad = vec![0.0; self.n];
        self.primal_sweep(x, &mut grad);
        grad
    }

    /// The sparse Hessian of `σF₀ + Σ λᵢFᵢ₊₁`: for a recording made by
    /// [`record_lagrangian`], the Lagrangian `σ∇²f(x) + Σ λᵢ∇²gᵢ(x)` (lower triangle, the
    /// joint pattern of `f` and every constraint).
    ///
    /// # Panics
    /// If `x` has the wrong length, or `lambda` has other than `m − 1` entries.
    pub fn lagrangian_hessian(&mut self, x: &[f64], sigma: f64, lambda: &[f64]) -> SparseHessian {
        let mut h = SparseHessian::default();
        self.lagrangian_hessian_into(x, sigma, lambda, &mut h);
        h
    }

    /// Writes the Lagrangian's sparse Hessian (see [`Recording::lagrangian_hessian`]) into
    /// `hessian` and returns the Lagrangian's value `σF₀ + Σ λᵢFᵢ₊₁`; allocates nothing
    /// once warm.
    ///
    /// # Panics
    /// If `x` has the wrong length, or `lambda` has other than `m − 1` entries.
    pub fn lagrangian_hessian_into(
        &mut self,
        x: &[f64],
        sigma: f64,
        lambda: &[f64],
        hessian: &mut SparseHessian,
    ) -> f64 {
        self.check_x(x, "lagrangian_hessian");
        let m = self.output_count().saturating_sub(1);
        assert_eq!(
            lambda.len(),
            m,
            "lagrangian_hessian: recorded with {m} constraints, called with {} multipliers",
            lambda.len()
        );
        self.set_weights(std::iter::once(sigma).chain(lambda.iter().copied()));
        let mut grad = std::mem::take(&mut self.scratch);
        grad.resize(self.n, 0.0);
        let value = self.sparse_sweep(x, &mut grad, hessian);
        self.scratch = grad;
        value
    }

    /// The sparse Jacobian `∂F/∂x` (`m × n`) in the pattern detected from the recording
    /// ([`Recording::jacobian_pattern`]); see [`crate::sparse::jacobian`].
    ///
    /// ```
    /// use mixad::reverse::Var;
    /// // Fᵢ = xᵢ² − xᵢ₊₁: a bidiagonal Jacobian.
    /// let f = |x: &[Var<f64>]| (0..x.len() - 1).map(|i| x[i] * x[i] - x[i + 1]).collect::<Vec<_>>();
    /// let mut rec = mixad::record(f, &[1.0; 5]);
    /// let j = rec.sparse_jacobian(&[1.0, 2.0, 3.0, 4.0, 5.0]);
    /// assert_eq!((j.nrows(), j.ncols(), j.nnz()), (4, 5, 8));
    /// assert_eq!((j.get(2, 2), j.get(2, 3)), (6.0, -1.0));
    /// assert_eq!(rec.jacobian_colour_count(), 2);
    /// ```
    ///
    /// # Panics
    /// If `x` has a different length than the point first recorded.
    pub fn sparse_jacobian(&mut self, x: &[f64]) -> SparseJacobian {
        self.values_and_sparse_jacobian(x).1
    }

    /// `(F(x), ∂F/∂x)` with the Jacobian sparse, from the same sweeps.
    ///
    /// ```
    /// use num_traits::Float;
    /// let mut rec = mixad::record(|x| vec![x[0] * x[1], x[1].exp()], &[1.0, 0.0]);
    /// let (y, j) = rec.values_and_sparse_jacobian(&[3.0, 0.0]);
    /// assert_eq!(y, vec![0.0, 1.0]);
    /// assert_eq!(j.values(), &[0.0, 3.0, 1.0]);
    /// ```
    ///
    /// # Panics
    /// If `x` has a different length than the point first recorded.
    pub fn values_and_sparse_jacobian(&mut self, x: &[f64]) -> (Vec<f64>, SparseJacobian) {
        let mut y = vec![0.0; self.output_count()];
        let mut j = SparseJacobian::default();
        self.values_and_sparse_jacobian_into(x, &mut y, &mut j);
        (y, j)
    }

    /// Writes `F(x)` into `y` and the sparse Jacobian into `jacobian` (any
    /// [`SparseJacobian`], e.g. `SparseJacobian::default()`: it takes the current
    /// pattern). Allocates nothing once warm, unless a changed branch changed the pattern.
    ///
    /// ```
    /// use mixad::SparseJacobian;
    /// use num_traits::Float;
    /// let mut rec = mixad::record(|x| vec![x[0].sin(), x[0] * x[1]], &[0.0, 1.0]);
    /// let (mut y, mut j) = (vec![0.0; 2], SparseJacobian::default());
    /// for t in 0..3 {
    ///     let x = [0.0, t as f64];
    ///     rec.values_and_sparse_jacobian_into(&x, &mut y, &mut j);
    ///     assert_eq!(j.get(1, 0), t as f64);
    /// }
    /// assert_eq!(rec.detection_count(), 1);
    /// ```
    ///
    /// # Panics
    /// If `x` or `y` has the wrong length.
    pub fn values_and_sparse_jacobian_into(
        &mut self,
        x: &[f64],
        y: &mut [f64],
        jacobian: &mut SparseJacobian,
    ) {
        self.check_x(x, "sparse_jacobian");
        check_buffer(y.len(), self.output_count(), "sparse_jacobian", "output");
        self.replay.require(1, "mixad::sparse_jacobian");
        // The f64 replay checks the guards (re-recording where one fails) before the plan
        // is looked at, so the plan always belongs to the current program.
        self.replay.forward(x, x, &mut self.primal);
        self.read_outputs(y);
        self.jacobian_plan();
        let plan = self.jacobian.as_mut().expect("built above");
        let values = jacobian.refill(plan.pattern());
        plan.sweep(&self.replay.program, x, &mut self.primal, values);
    }

    /// The sparsity pattern of the Jacobian in the current recording: the order of a
    /// sparse Jacobian's values. Detected and coloured on first use.
    ///
    /// ```
    /// use num_traits::Float;
    /// let mut rec = mixad::record(|x| vec![x[0] * x[1], x[1].floor() + x[2]], &[1.0; 3]);
    /// let p = rec.jacobian_pattern();
    /// assert_eq!(p.row(0), &[0, 1]);
    /// assert_eq!(p.row(1), &[2]); // floor has derivative 0 everywhere
    /// ```
    pub fn jacobian_pattern(&mut self) -> &JacobianPattern {
        self.jacobian_plan()
    }

    /// Colours of the sparse Jacobian's pattern in its direction: reverse sweeps (row
    /// colours) or tangent lanes (column colours) per point.
    ///
    /// ```
    /// let mut rec = mixad::record(|x| x.iter().map(|&v| v * v).collect::<Vec<_>>(), &[1.0; 50]);
    /// assert_eq!(rec.jacobian_colour_count(), 1); // diagonal: one sweep
    /// ```
    pub fn jacobian_colour_count(&mut self) -> usize {
        self.jacobian_plan();
        self.jacobian.as_ref().map_or(0, JacobianPlan::colour_count)
    }

    /// The direction the sparse Jacobian sweeps in: [`JacobianDirection::Forward`] or
    /// [`JacobianDirection::Reverse`] (what [`JacobianDirection::Auto`] chose).
    ///
    /// ```
    /// use mixad::sparse::JacobianDirection;
    /// // One output of every input: rows do not share a sweep's inputs, so reverse.
    /// let mut rec = mixad::record(|x| vec![x[0] * x[1] * x[2]], &[1.0; 3]);
    /// assert_eq!(rec.jacobian_direction(), JacobianDirection::Reverse);
    /// ```
    pub fn jacobian_direction(&mut self) -> JacobianDirection {
        self.jacobian_plan();
        self.jacobian
            .as_ref()
            .map_or(JacobianDirection::Reverse, JacobianPlan::direction)
    }

    /// Sets the direction of the sparse Jacobian's sweeps (default
    /// [`JacobianDirection::Auto`]); the next sparse Jacobian colours the pattern again.
    ///
    /// ```
    /// use mixad::sparse::JacobianDirection;
    /// let mut rec = mixad::record(|x| vec![x[0] * x[1], x[1] - x[0]], &[1.0; 2]);
    /// rec.set_jacobian_direction(JacobianDirection::Forward);
    /// assert_eq!(rec.jacobian_direction(), JacobianDirection::Forward);
    /// assert_eq!(rec.sparse_jacobian(&[2.0, 3.0]).values(), &[3.0, 2.0, -1.0, 1.0]);
    /// ```
    ///
    /// # Panics
    /// At the next sparse Jacobian, if the direction is `Forward` and a custom rule of the
    /// recording provides first derivatives only (forward replays need second ones).
    pub fn set_jacobian_direction(&mut self, direction: JacobianDirection) {
        self.jacobian_direction = direction;
    }

    /// The sparse Jacobian's plan for the current program and direction, built (or
    /// rebuilt) if needed.
    fn jacobian_plan(&mut self) -> &JacobianPattern {
        let direction = self.jacobian_direction;
        let fits = self
            .jacobian
            .as_ref()
            .is_some_and(|p| p.fits(&self.replay.program, direction));
        if !fits {
            if direction == JacobianDirection::Forward {
                self.replay.require(2, "mixad::sparse_jacobian (forward)");
            }
            self.jacobian = Some(JacobianPlan::new(
                &self.replay.program,
                direction,
                self.options.lanes,
            ));
            self.detections += 1;
        }
        self.jacobian.as_ref().expect("just built").pattern()
    }

    fn read_outputs(&self, y: &mut [f64]) {
        let program = &self.replay.program;
        for (k, v) in y.iter_mut().enumerate() {
            *v = program.output_at(&self.primal, k);
        }
    }
}

/// Panics unless a caller's buffer has the expected length.
fn check_buffer(len: usize, expected: usize, api: &str, what: &str) {
    assert_eq!(
        len, expected,
        "{api}: the {what} buffer has {len} entries, expected {expected}"
    );
}
