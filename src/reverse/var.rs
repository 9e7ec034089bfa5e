//! [`Var`]: the reverse-mode variable, and how it records rules onto the tape.

use std::fmt;

use crate::chain::{Chain, CustomParts, Decision};
use std::panic::AssertUnwindSafe;

use crate::reverse::step::{Fallible, Operand, Step};
use crate::reverse::tape::{tape_mut, with_tape, TapeScalar};
use crate::rules::{Binary, BlockError, BlockOp, CustomRule, Unary};
use crate::Scalar;

/// A reverse-mode variable: a value plus its place on the thread's tape.
///
/// `Copy`, 24 bytes at `f64`. Every operation on a `Var` appends one node (operands and
/// local partials) to the tape; constants (`Var::constant`, plain `f64` operands) are never
/// recorded. `T` may be a forward dual (`Var<DualVec<f64, 8>>` is how Hessian columns are
/// computed) or a `Var` itself (reverse over reverse).
///
/// A `Var` is valid only inside the recording that created it (the closure passed to
/// [`crate::reverse::gradient`] and its siblings); using it anywhere else panics with a
/// message saying so, never gives a wrong number.
#[derive(Clone, Copy)]
pub struct Var<T> {
    value: T,
    index: u32,
    recording: u64,
}

impl<T: Scalar> Var<T> {
    /// A constant: no derivative, never recorded.
    #[inline(always)]
    pub fn constant(value: T) -> Self {
        Var {
            value,
            index: 0,
            recording: 0,
        }
    }

    /// The node index on the tape (0 for a constant).
    #[inline(always)]
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The id of the recording this variable belongs to (0 for a constant).
    #[inline(always)]
    pub(crate) fn recording(&self) -> u64 {
        self.recording
    }

    #[inline(always)]
    pub(crate) fn from_parts(value: T, index: u32, recording: u64) -> Self {
        Var {
            value,
            index,
            recording,
        }
    }

    /// The value, without reporting a decision (for mixad's own bookkeeping).
    #[inline(always)]
    pub(crate) fn primal_value(&self) -> T {
        self.value
    }

    /// This variable as a guard operand of recording `id`: a node of that recording, or
    /// (a constant, or a variable of another recording) a constant value.
    #[inline]
    pub(crate) fn operand_in(&self, id: u64) -> Operand<T> {
        if self.index == 0 || self.recording != id {
            Operand::Const(self.value)
        } else {
            Operand::Node(self.index)
        }
    }

    /// This variable as an operand of its own recording.
    #[inline]
    pub(crate) fn operand(&self) -> Operand<T> {
        if self.index == 0 {
            Operand::Const(self.value)
        } else {
            Operand::Node(self.index)
        }
    }
}

impl<T: TapeScalar> Var<T> {
    /// The value, as a plain number of type `T` (derivative information dropped).
    ///
    /// Inside a [`crate::record`]ed function, a decision taken from this value is
    /// guarded like a comparison: the recording is redone wherever the value differs.
    #[inline]
    pub fn value(&self) -> T {
        crate::facade::observe(self, self.value.untracked_f64().to_bits(), |x: &Var<T>| {
            x.value.untracked_f64().to_bits()
        });
        self.value
    }

    /// Records a node whose operands belong to `recording` and returns its variable.
    #[inline(always)]
    fn record(
        value: T,
        recording: u64,
        args: [u32; 2],
        partials: [T; 2],
        step: Step,
        consts: [T; 2],
    ) -> Self {
        // Straight-line code rather than a `with_tape` closure: the closure would not be
        // inlined at each of the many call sites, and the call dominated the cost.
        // SAFETY: this reference is the only one to the tape while it lives (the code below
        // runs no user code and records nothing on this tape; see `with_tape`).
        let tape = unsafe { tape_mut::<T>() };
        tape.check(recording);
        let index = tape.push(args, partials);
        if tape.is_logging() {
            tape.log_step(step, consts);
        }
        Var::from_parts(value, index, recording)
    }

    /// Records a node with two variable operands.
    #[inline(always)]
    fn record_pair(value: T, a: Self, b: Self, partials: [T; 2], step: Step) -> Self {
        // SAFETY: as in `record`.
        let tape = unsafe { tape_mut::<T>() };
        tape.check2(a.recording, b.recording);
        let index = tape.push([a.index, b.index], partials);
        if tape.is_logging() {
            tape.log_step(step, [T::zero(), T::zero()]);
        }
        Var::from_parts(value, index, a.recording)
    }

    /// A variable with the given value and partials `∂value/∂operands[k] = partials[k]`,
    /// recorded as a chain of two-operand nodes (constants skipped).
    pub(crate) fn linear_combination(value: T, operands: &[Self], partials: &[T]) -> Self {
        debug_assert_eq!(operands.len(), partials.len());
        let one = T::one();
        let zero = T::zero();
        let mut terms = operands.iter().zip(partials).filter(|(v, _)| v.index != 0);
        let Some((&first, &p0)) = terms.next() else {
            return Var::constant(value);
        };
        let mut acc = match terms.next() {
            None => {
                return Var::record(
                    value,
                    first.recording,
                    [first.index, 0],
                    [p0, zero],
                    Step::Add,
                    [zero, zero],
                )
            }
            Some((&second, &p1)) => Var::record_pair(value, first, second, [p0, p1], Step::Add),
        };
        for (&v, &p) in terms {
            acc = Var::record_pair(value, acc, v, [one, p], Step::Add);
        }
        acc
    }

    /// Records a custom-rule call in a recording made for replay, in the layout
    /// `Step::Custom` documents (every operand in place, constants included, so the replay
    /// finds them): one chain of nodes per output.
    fn record_custom_call(
        rule: &CustomRule,
        level: usize,
        x: &[Self],
        values: &[T],
        partials: &[T],
        out: &mut [Self],
    ) {
        let zero = T::zero();
        let n = x.len();
        let recording = x.iter().find(|v| v.index != 0).map_or(0, |v| v.recording);
        with_tape::<T, _>(|tape| {
            for v in x.iter().filter(|v| v.index != 0) {
                tape.check(v.recording);
            }
            // Each operand slot that is a constant logs its value, as for built-in steps.
            let slot = |v: &Var<T>| if v.index == 0 { v.value } else { zero };
            let call = tape.log_custom(rule, level);
            for (e, o) in out.iter_mut().enumerate() {
                let row = &partials[e * n..(e + 1) * n];
                let first = if e == 0 {
                    Step::Custom(call)
                } else {
                    Step::CustomLink
                };
                let mut last = if n == 1 {
                    let index = tape.push([x[0].index, 0], [row[0], zero]);
                    tape.log_step(first, [slot(&x[0]), zero]);
                    index
                } else {
                    let index = tape.push([x[0].index, x[1].index], [row[0], row[1]]);
                    tape.log_step(first, [slot(&x[0]), slot(&x[1])]);
                    index
                };
                for t in 2..n {
                    last = tape.push([last, x[t].index], [T::one(), row[t]]);
                    tape.log_step(Step::CustomLink, [zero, slot(&x[t])]);
                }
                *o = Var::from_parts(values[e], last, recording);
            }
        });
    }

    /// Records `value` with partials `pa`, `pb` against `self` and `rhs`, skipping constant
    /// operands (their partial is never needed, even if infinite or NaN).
    #[inline(always)]
    fn combine(self, rhs: Self, value: T, pa: T, pb: T, step: Step) -> Self {
        let zero = T::zero();
        match (self.index, rhs.index) {
            (0, 0) => Var::constant(value),
            (_, 0) => Var::record(
                value,
                self.recording,
                [self.index, 0],
                [pa, zero],
                step,
                [zero, rhs.value],
            ),
            (0, _) => Var::record(
                value,
                rhs.recording,
                [0, rhs.index],
                [zero, pb],
                step,
                [self.value, zero],
            ),
            _ => Var::record_pair(value, self, rhs, [pa, pb], step),
        }
    }
}

impl<T: TapeScalar> Chain for Var<T> {
    type Primal = T;

    #[inline(always)]
    fn constant(value: T) -> Self {
        Var::constant(value)
    }

    #[inline(always)]
    fn primal(&self) -> T {
        self.value
    }

    #[inline(always)]
    fn is_constant(&self) -> bool {
        self.index == 0 && self.value.is_constant()
    }

    #[inline(always)]
    fn all_finite(&self) -> bool {
        self.value.all_finite()
    }

    #[inline(always)]
    fn unary(self, op: Unary) -> Self {
        let (value, d) = op.apply(self.value);
        if self.index == 0 {
            return Var::constant(value);
        }
        let zero = T::zero();
        Var::record(
            value,
            self.recording,
            [self.index, 0],
            [d, zero],
            Step::Unary(op),
            [zero, zero],
        )
    }

    #[inline(always)]
    fn binary(self, rhs: Self, op: Binary) -> Self {
        let (value, da, db) = op.apply(self.value, rhs.value);
        self.combine(rhs, value, da, db, Step::Binary(op))
    }

    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        let one = T::one();
        self.combine(rhs, self.value + rhs.value, one, one, Step::Add)
    }

    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        let one = T::one();
        self.combine(rhs, self.value - rhs.value, one, -one, Step::Sub)
    }

    #[inline(always)]
    fn neg(self) -> Self {
        if self.index == 0 {
            return Var::constant(-self.value);
        }
        let zero = T::zero();
        Var::record(
            -self.value,
            self.recording,
            [self.index, 0],
            [-T::one(), zero],
            Step::Neg,
            [zero, zero],
        )
    }

    #[inline(always)]
    fn scale(self, c: T) -> Self {
        if self.index == 0 {
            return Var::constant(self.value * c);
        }
        let zero = T::zero();
        Var::record(
            self.value * c,
            self.recording,
            [self.index, 0],
            [c, zero],
            Step::Scale,
            [zero, c],
        )
    }

    fn inner_derivatives<G: crate::Function + ?Sized>(
        g: &G,
        x: &[Self],
        params: &[Self],
        direction: Option<&[Self]>,
    ) -> Vec<Self> {
        super::translate::translated_derivatives(g, x, params, direction)
    }

    fn combine_partials(value: T, operands: &[Self], partials: &[T]) -> Self {
        Var::linear_combination(value, operands, partials)
    }

    fn block(op: &BlockOp, x: &[Self]) -> Result<Vec<Self>, BlockError> {
        let values: Vec<T> = x.iter().map(|v| v.value).collect();
        let saved = match op.forward(&values) {
            Ok(saved) => saved,
            Err(e) => {
                // The function may handle the error with another formula: a replay where
                // the operation succeeds must not reuse that branch.
                with_tape::<T, _>(|tape| tape.record_failure(&Fallible::Block(*op), x));
                return Err(e);
            }
        };
        if op.output_len() == 0 {
            // Nothing to record (an empty matrix): a block with no output node would have
            // no step for a replay to find it by.
            return Ok(Vec::new());
        }
        let Some(recording) = x.iter().find(|v| v.index != 0).map(|v| v.recording) else {
            return Ok(saved.outputs.into_iter().map(Var::constant).collect());
        };
        let outputs = saved.outputs.clone();
        let first = with_tape::<T, _>(|tape| {
            for v in x.iter().filter(|v| v.index != 0) {
                tape.check(v.recording);
            }
            let args = x.iter().map(|v| v.index).collect();
            tape.push_block(*op, args, &values, saved)
        });
        Ok(outputs
            .into_iter()
            .enumerate()
            .map(|(k, v)| Var::from_parts(v, first + k as u32, recording))
            .collect())
    }

    fn custom_level(rule: &CustomRule, k: usize, x: &[Self], out: &mut [Self]) {
        let parts =
            match std::panic::catch_unwind(AssertUnwindSafe(|| CustomParts::new(rule, k, x))) {
                Ok(parts) => parts,
                Err(panic) => {
                    // The function may catch the panic and use another formula: a replay where
                    // the rule succeeds must not reuse that branch.
                    let what = Fallible::Custom {
                        rule: rule.clone(),
                        level: k,
                    };
                    with_tape::<T, _>(|tape| tape.record_failure(&what, x));
                    std::panic::resume_unwind(panic)
                }
            };
        let Some(d) = &parts.partials else {
            for (o, &v) in out.iter_mut().zip(parts.values.iter()) {
                *o = Var::constant(v);
            }
            return;
        };
        if with_tape::<T, _>(|t| t.is_logging()) {
            Var::record_custom_call(rule, k, x, &parts.values, d, out);
        } else {
            let n = x.len();
            for (e, o) in out.iter_mut().enumerate() {
                *o = Var::linear_combination(parts.values[e], x, &d[e * n..(e + 1) * n]);
            }
        }
    }

    #[inline]
    fn observe(&self, decision: Decision<'_, Self>) {
        let involves_variable = self.index != 0
            || match &decision {
                Decision::Compare { other, .. } => other.index != 0,
                Decision::Inspect { .. } => false,
                Decision::Joint { others, .. } => others.iter().any(|o| o.index != 0),
            };
        if !involves_variable {
            return;
        }
        with_tape::<T, _>(|tape| tape.record_decision(self, decision));
    }
}

crate::impl_scalar_traits!([T: TapeScalar] Var<T>);

impl<T: TapeScalar> Var<T> {
    /// Printing hands the value out as text: inside a recorded function that is a
    /// decision like [`Var::value`], guarded by the exact value. Never panics: a variable
    /// whose recording is no longer active (kept past its closure) prints without a guard.
    fn observe_printed(&self) {
        if self.index == 0 {
            return;
        }
        let seen = self.value.untracked_f64().to_bits();
        let probe = |x: &Var<T>| x.value.untracked_f64().to_bits();
        with_tape::<T, _>(|tape| {
            if tape.is_active(self.recording) {
                tape.record_decision(self, Decision::Inspect { seen, probe });
            }
        });
    }
}

/// Prints the value. Inside a [`crate::record`]ed function this is a guarded
/// decision (the text depends on the value): the recording is redone wherever the value
/// differs.
impl<T: TapeScalar> fmt::Display for Var<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.observe_printed();
        fmt::Display::fmt(&self.value, f)
    }
}

/// Prints the value and node; guarded like [`fmt::Display`].
impl<T: TapeScalar> fmt::Debug for Var<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.observe_printed();
        if self.index == 0 {
            write!(f, "Var(const {:?})", self.value)
        } else {
            write!(f, "Var({:?} @ node {})", self.value, self.index)
        }
    }
}

/// A constant (no derivative).
impl<T: Scalar> From<T> for Var<T> {
    fn from(value: T) -> Self {
        Var::constant(value)
    }
}
