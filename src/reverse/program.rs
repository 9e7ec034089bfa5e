//! Replayable programs: what a recording logs so it can be re-evaluated at new points.
//!
//! A recording made by [`crate::record`] logs, beside the tape, the [`Step`] that
//! produced each node and every control-flow decision (a [`Guard`]). A finished
//! [`Program`] re-evaluates values and partials at a new point by applying the same rules,
//! in any scalar type (plain `f64` for gradients, duals for Hessian-vector products and
//! Hessian columns), and reports whether every guard still holds; when one does not, the
//! caller re-records instead of returning the derivative of the wrong branch.

use std::cmp::Ordering;

use crate::chain::{catch_quietly, custom_partials, value_is_nan, Decision};
use crate::reverse::node::{pull_block, rebase, sweep_with_blocks, Node};
use crate::reverse::step::{CustomCall, Fallible, Operand, ProgramBlock, Step};
use crate::reverse::Var;
use crate::rules::linalg::{BlockOp, Saved};
use crate::rules::CustomRule;
use crate::Scalar;

/// A block operation as logged: node indices (0 for a constant) and the constants' values.
struct LoggedBlock<T> {
    op: BlockOp,
    args: Vec<u32>,
    consts: Vec<T>,
}

/// Marks a program operand as an index into its constants rather than a node.
const CONST: u32 = 1 << 31;

/// A control-flow decision taken during recording, and what it saw.
#[derive(Clone, Debug)]
pub(crate) enum Guard<T> {
    Compare {
        lhs: Operand<T>,
        rhs: Operand<T>,
        outcome: Option<Ordering>,
    },
    Inspect {
        of: Operand<T>,
        seen: u64,
        probe: fn(&Var<T>) -> u64,
    },
    /// A decision read from several numbers at once (an `approx` comparison).
    Joint {
        of: Vec<Operand<T>>,
        param: u64,
        seen: u64,
        probe: fn(&[f64], u64) -> u64,
    },
    /// An operation that failed (a block operation's `Err`, a custom rule that panicked)
    /// when recorded; it holds while the operation still fails at the new point.
    Fails { what: Fallible, of: Vec<Operand<T>> },
}

/// What a logging recording collects beside its tape segment.
pub(crate) struct ProgramLog<T> {
    start: u32,
    steps: Vec<Step>,
    consts: Vec<[T; 2]>,
    guards: Vec<Guard<T>>,
    customs: Vec<CustomCall>,
    blocks: Vec<LoggedBlock<T>>,
}

impl<T: Scalar> ProgramLog<T> {
    pub(crate) fn new(start: u32) -> Self {
        ProgramLog {
            start,
            steps: Vec::new(),
            consts: Vec::new(),
            guards: Vec::new(),
            customs: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// Logs a block operation; returns the index its first output's step refers to.
    pub(crate) fn block(&mut self, op: BlockOp, args: &[u32], consts: &[T]) -> u32 {
        self.blocks.push(LoggedBlock {
            op,
            args: args.to_vec(),
            consts: consts.to_vec(),
        });
        (self.blocks.len() - 1) as u32
    }

    /// Logs a custom-rule call; returns the index its first node's step refers to.
    pub(crate) fn custom(&mut self, rule: &CustomRule, level: usize) -> u32 {
        self.customs.push(CustomCall {
            rule: rule.clone(),
            level,
        });
        (self.customs.len() - 1) as u32
    }

    /// Logs the step of the node just pushed; `consts` fills the operand slots that are
    /// constants (the sink).
    #[inline(always)]
    pub(crate) fn step(&mut self, step: Step, consts: [T; 2]) {
        self.steps.push(step);
        self.consts.push(consts);
    }

    /// Logs a decision taken from `x`'s value, in the recording with id `id`: operands of
    /// other recordings are constants from its point of view.
    pub(crate) fn guard(&mut self, id: u64, x: &Var<T>, decision: Decision<'_, Var<T>>) {
        let guard = match decision {
            Decision::Compare { other, outcome } => Guard::Compare {
                lhs: x.operand_in(id),
                rhs: other.operand_in(id),
                outcome,
            },
            Decision::Inspect { seen, probe } => Guard::Inspect {
                of: x.operand_in(id),
                seen,
                probe,
            },
            Decision::Joint {
                others,
                param,
                seen,
                probe,
            } => Guard::Joint {
                of: std::iter::once(x)
                    .chain(others)
                    .map(|v| v.operand_in(id))
                    .collect(),
                param,
                seen,
                probe,
            },
        };
        self.guards.push(guard);
    }

    /// Logs that `what`, applied to `x`, failed, in the recording with id `id`.
    pub(crate) fn failure(&mut self, id: u64, what: Fallible, x: &[Var<T>]) {
        self.guards.push(Guard::Fails {
            what,
            of: x.iter().map(|v| v.operand_in(id)).collect(),
        });
    }
}

/// A finished recording of `f: Rⁿ → R` at `f64`, replayable at new points.
///
/// Node 0 is the sink, nodes `1..=n` the inputs.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    /// The id of the recording it came from; workspaces use it to know their layout.
    id: u64,
    /// Per node, its two operands: a node index, or `CONST | k` for `constants[k]`.
    operands: Vec<[u32; 2]>,
    steps: Vec<Step>,
    /// The constant operands, only for the nodes that have one.
    constants: Vec<f64>,
    guards: Vec<Guard<f64>>,
    /// The custom-rule calls that `Step::Custom` refers to.
    customs: Vec<CustomCall>,
    /// The block operations that `Step::Block` refers to, in node order.
    blocks: Vec<ProgramBlock>,
    inputs: usize,
    /// The function's outputs (one for `f: Rⁿ → R`): a node, or a constant.
    outputs: Vec<Operand<f64>>,
}

impl Program {
    /// Builds a program from a tape segment starting at `start` and its log.
    pub(crate) fn new(
        id: u64,
        nodes: &[Node<f64>],
        start: u32,
        log: ProgramLog<f64>,
        inputs: usize,
        outputs: &[Var<f64>],
    ) -> Self {
        debug_assert_eq!(log.start, start);
        let segment = &nodes[start as usize..];
        assert!(
            segment.len() < CONST as usize,
            "mixad::record: a recording of {} operations is too long to replay",
            segment.len()
        );
        let mut steps = Vec::with_capacity(segment.len() + 1);
        steps.push(Step::Input);
        steps.extend_from_slice(&log.steps);
        assert_eq!(
            steps.len(),
            segment.len() + 1,
            "program log out of step with its tape"
        );
        let mut constants = Vec::new();
        let mut operands = Vec::with_capacity(segment.len() + 1);
        operands.push([0, 0]);
        for ((node, step), consts) in segment.iter().zip(&steps[1..]).zip(&log.consts) {
            let used = step.operands_used();
            let mut slot = |k: usize| {
                let arg = node.args[k];
                if arg != 0 || !used[k] {
                    rebase(arg, start)
                } else {
                    constants.push(consts[k]);
                    CONST | (constants.len() - 1) as u32
                }
            };
            operands.push([slot(0), slot(1)]);
        }
        let mut first_outs = steps
            .iter()
            .enumerate()
            .filter_map(|(i, st)| matches!(st, Step::Block(_)).then_some(i as u32));
        let blocks = log
            .blocks
            .iter()
            .map(|b| {
                let args = b
                    .args
                    .iter()
                    .zip(&b.consts)
                    .map(|(&a, &c)| {
                        if a != 0 {
                            rebase(a, start)
                        } else {
                            constants.push(c);
                            CONST | (constants.len() - 1) as u32
                        }
                    })
                    .collect();
                ProgramBlock {
                    op: b.op,
                    args,
                    first_out: first_outs.next().expect("one Step::Block per logged block"),
                }
            })
            .collect();
        let rebase_all = |of: &[Operand<f64>]| of.iter().map(|o| o.rebase(start)).collect();
        let guards = log
            .guards
            .iter()
            .map(|g| match g {
                Guard::Compare { lhs, rhs, outcome } => Guard::Compare {
                    lhs: lhs.rebase(start),
                    rhs: rhs.rebase(start),
                    outcome: *outcome,
                },
                Guard::Inspect { of, seen, probe } => Guard::Inspect {
                    of: of.rebase(start),
                    seen: *seen,
                    probe: *probe,
                },
                Guard::Joint {
                    of,
                    param,
                    seen,
                    probe,
                } => Guard::Joint {
                    of: rebase_all(of),
                    param: *param,
                    seen: *seen,
                    probe: *probe,
                },
                Guard::Fails { what, of } => Guard::Fails {
                    what: what.clone(),
                    of: rebase_all(of),
                },
            })
            .collect();
        Program {
            id,
            operands,
            steps,
            constants,
            guards,
            customs: log.customs,
            blocks,
            inputs,
            outputs: outputs.iter().map(|y| y.operand().rebase(start)).collect(),
        }
    }

    /// Panics, naming the rule, unless every custom rule in the program provides
    /// derivatives to `order` beyond the level it was called at (a gradient replay needs
    /// 1, a Hessian replay 2); `context` names the API asking.
    pub(crate) fn require_custom_order(&self, order: usize, context: &str) {
        for call in &self.customs {
            call.rule.require_order(call.level + order, context);
        }
    }

    /// Replays the custom-rule call whose first node is `i`: evaluates the rule at `U` and
    /// fills the values and partials of all its nodes.
    fn replay_custom<U: Scalar>(
        &self,
        call: u32,
        i: usize,
        values: &mut [U],
        nodes: &mut [Node<U>],
    ) {
        let CustomCall { rule, level } = &self.customs[call as usize];
        let n = rule.inputs();
        let entries = rule.level_len(*level);
        let chain = n.saturating_sub(1).max(1);
        let operand = |k: u32| {
            if k & CONST != 0 {
                U::cst(self.constants[(k & !CONST) as usize])
            } else {
                values[k as usize]
            }
        };
        let mut x = Vec::with_capacity(n);
        x.push(operand(self.operands[i][0]));
        if n >= 2 {
            x.push(operand(self.operands[i][1]));
            x.extend((1..n - 1).map(|t| operand(self.operands[i + t][1])));
        }
        let mut v = vec![U::zero(); rule.level_len(*level)];
        U::custom_level(rule, *level, &x, &mut v);
        let d = custom_partials(rule, *level, &x);
        for e in 0..entries {
            let base = i + e * chain;
            values[base..base + chain].fill(v[e]);
            let row = &d[e * n..(e + 1) * n];
            if n == 1 {
                nodes[base].partials = [row[0], U::zero()];
            } else {
                nodes[base].partials = [row[0], row[1]];
                for t in 1..n - 1 {
                    nodes[base + t].partials = [U::one(), row[t + 1]];
                }
            }
        }
    }

    /// Number of inputs.
    pub(crate) fn inputs(&self) -> usize {
        self.inputs
    }

    /// Number of nodes, the sink included.
    pub(crate) fn len(&self) -> usize {
        self.operands.len()
    }

    /// Number of guards.
    pub(crate) fn guard_count(&self) -> usize {
        self.guards.len()
    }

    /// Whether the program calls out: custom rules or block operations.
    pub(crate) fn has_calls(&self) -> bool {
        !self.customs.is_empty() || !self.blocks.is_empty()
    }

    /// Whether a replay at a new point can fail: a guard, a block operation that can
    /// return `Err`, or a custom rule (which may panic). A program that cannot fail needs
    /// no `f64` check before sweeps at other scalar types.
    pub(crate) fn can_fail(&self) -> bool {
        !self.guards.is_empty()
            || !self.customs.is_empty()
            || self.blocks.iter().any(|b| b.op.can_fail())
    }

    /// Evaluates values and partials at `x` into `ws`; returns false if a guard fails.
    pub(crate) fn forward<U: Scalar>(&self, x: &[U], ws: &mut Workspace<U>) -> bool {
        assert_eq!(
            x.len(),
            self.inputs,
            "program replayed with the wrong number of inputs"
        );
        ws.prepare(self);
        let values = &mut ws.values;
        let nodes = &mut ws.nodes;
        values[1..=self.inputs].copy_from_slice(x);
        let zero = U::zero();
        let one = U::one();
        let operand = |values: &[U], k: u32| {
            if k & CONST != 0 {
                U::cst(self.constants[(k & !CONST) as usize])
            } else {
                values[k as usize]
            }
        };
        for i in self.inputs + 1..self.operands.len() {
            match self.steps[i] {
                Step::Custom(call) => {
                    // A rule that panics at this point fails like a guard: the caller
                    // re-records, and the function handles the panic itself (or not).
                    if catch_quietly(|| self.replay_custom(call, i, values, nodes)).is_none() {
                        return false;
                    }
                    continue;
                }
                Step::CustomLink | Step::BlockOutput => continue,
                Step::Block(block) => {
                    let b = &self.blocks[block as usize];
                    let args: Vec<U> = b.args.iter().map(|&k| operand(values, k)).collect();
                    match b.op.forward(&args) {
                        Ok(saved) => {
                            let first = b.first_out as usize;
                            values[first..first + saved.outputs.len()]
                                .copy_from_slice(&saved.outputs);
                            ws.saved[block as usize] = saved;
                        }
                        // The operation fails at this point (a matrix no longer positive
                        // definite, say): like a failed guard, the caller re-records and
                        // the function sees the error itself.
                        Err(_) => return false,
                    }
                    continue;
                }
                _ => {}
            }
            let [a, b] = self.operands[i];
            let va = operand(values, a);
            let vb = operand(values, b);
            let (v, pa, pb) = match self.steps[i] {
                Step::Unary(op) => {
                    let (v, d) = op.apply(va);
                    (v, d, zero)
                }
                Step::Binary(op) => op.apply(va, vb),
                Step::Add => (va + vb, one, one),
                Step::Sub => (va - vb, one, -one),
                Step::Neg => (-va, -one, zero),
                Step::Scale => (va * vb, vb, zero),
                Step::Input
                | Step::Custom(_)
                | Step::CustomLink
                | Step::Block(_)
                | Step::BlockOutput => {
                    unreachable!("inputs come first; custom calls and blocks are handled above")
                }
            };
            values[i] = v;
            nodes[i].partials = [pa, pb];
        }
        self.guards_hold(values)
    }

    fn value_of<U: Scalar>(values: &[U], op: &Operand<f64>) -> f64 {
        match *op {
            Operand::Node(i) => values[i as usize].untracked_f64(),
            Operand::Const(c) => c,
        }
    }

    /// The nodes whose values the guards read.
    pub(crate) fn guard_nodes(&self) -> Vec<u32> {
        let mut nodes = Vec::new();
        let mut add = |o: &Operand<f64>| {
            if let Operand::Node(i) = *o {
                nodes.push(i);
            }
        };
        for g in &self.guards {
            match g {
                Guard::Compare { lhs, rhs, .. } => {
                    add(lhs);
                    add(rhs);
                }
                Guard::Inspect { of, .. } => add(of),
                Guard::Joint { of, .. } | Guard::Fails { of, .. } => of.iter().for_each(&mut add),
            }
        }
        nodes
    }

    fn guards_hold<U: Scalar>(&self, values: &[U]) -> bool {
        self.guards.iter().all(|g| match g {
            Guard::Compare { lhs, rhs, outcome } => {
                Self::value_of(values, lhs).partial_cmp(&Self::value_of(values, rhs)) == *outcome
            }
            Guard::Inspect { of, seen, probe } => {
                probe(&Var::constant(Self::value_of(values, of))) == *seen
            }
            Guard::Joint {
                of,
                param,
                seen,
                probe,
            } => {
                let v: Vec<f64> = of.iter().map(|o| Self::value_of(values, o)).collect();
                probe(&v, *param) == *seen
            }
            Guard::Fails { what, of } => {
                let v: Vec<f64> = of.iter().map(|o| Self::value_of(values, o)).collect();
                what.fails(&v)
            }
        })
    }

    /// The first output's value after [`Program::forward`] (the value of `f: Rⁿ → R`).
    pub(crate) fn output<U: Scalar>(&self, ws: &Workspace<U>) -> U {
        self.output_at(ws, 0)
    }

    /// Output `k`'s value after [`Program::forward`].
    pub(crate) fn output_at<U: Scalar>(&self, ws: &Workspace<U>, k: usize) -> U {
        match self.outputs[k] {
            Operand::Node(i) => ws.values[i as usize],
            Operand::Const(c) => U::cst(c),
        }
    }

    /// Number of outputs.
    pub(crate) fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// After [`Program::forward`]: sweeps back from the (first) output with adjoint 1 and
    /// writes the gradient into `grad`.
    pub(crate) fn backward<U: Scalar>(&self, ws: &mut Workspace<U>, grad: &mut [U]) {
        self.backward_weighted(ws, &[1.0], grad);
    }

    /// After [`Program::forward`]: sweeps back from the outputs with adjoints `weights`
    /// (one per output) and writes `Σ wₖ ∇Fₖ` into `grad`. Outputs with weight 0 are not
    /// seeded, so their NaNs do not reach `grad`.
    pub(crate) fn backward_weighted<U: Scalar>(
        &self,
        ws: &mut Workspace<U>,
        weights: &[f64],
        grad: &mut [U],
    ) {
        self.backward_with(ws, weights, grad, true, |program, ws| {
            let saved = &ws.saved;
            sweep_with_blocks(
                &ws.nodes,
                program.inputs + 1,
                &mut ws.adjoints,
                &program.blocks,
                |b| b.first_out as usize,
                |k, b, adjoints| {
                    let sink = |a: &u32| if a & CONST != 0 { 0 } else { *a };
                    pull_block(
                        &b.op,
                        &saved[k],
                        b.first_out,
                        b.args.iter().map(sink),
                        adjoints,
                    );
                },
            );
        });
    }

    /// [`Program::forward`] at `f64` with the node values computed by `sweep` (compiled
    /// code) instead of the interpreter: `sweep` gets the value buffer, one entry per node,
    /// with the inputs in place, and fills in at least the values the guards and outputs
    /// read; it also gets the adjoint buffer and zeroes every adjoint its reverse sweep
    /// reads from memory, except the inputs' (see [`Program::backward_by`]). Returns false
    /// if a guard fails.
    #[cfg(feature = "jit")]
    pub(crate) fn forward_by(
        &self,
        x: &[f64],
        ws: &mut Workspace<f64>,
        sweep: impl FnOnce(&mut [f64], &mut [f64]),
    ) -> bool {
        assert_eq!(
            x.len(),
            self.inputs,
            "program replayed with the wrong number of inputs"
        );
        ws.prepare(self);
        ws.values[1..=self.inputs].copy_from_slice(x);
        sweep(&mut ws.values, &mut ws.adjoints);
        self.guards_hold(&ws.values)
    }

    /// [`Program::backward_weighted`] at `f64` with the reverse sweep done by `sweep`
    /// (compiled code), after [`Program::forward_by`]: it gets the values and the adjoint
    /// buffer, one entry per node, with the outputs seeded, and propagates them back to the
    /// inputs. Only the inputs' adjoints are zeroed here: the forward sweep zeroed the
    /// others it reads, so a call costs no pass over the whole buffer.
    #[cfg(feature = "jit")]
    pub(crate) fn backward_by(
        &self,
        ws: &mut Workspace<f64>,
        weights: &[f64],
        grad: &mut [f64],
        sweep: impl FnOnce(&[f64], &mut [f64]),
    ) {
        self.backward_with(ws, weights, grad, false, |_, ws| {
            sweep(&ws.values, &mut ws.adjoints)
        });
    }

    /// Zeroes the adjoints (all of them, or with `clear_all` false only the sink's and the
    /// inputs'), seeds the outputs' adjoints with `weights`, runs `sweep`, and reads the
    /// gradient out under the NaN convention.
    fn backward_with<U: Scalar>(
        &self,
        ws: &mut Workspace<U>,
        weights: &[f64],
        grad: &mut [U],
        clear_all: bool,
        sweep: impl FnOnce(&Self, &mut Workspace<U>),
    ) {
        debug_assert_eq!(weights.len(), self.outputs.len());
        if clear_all {
            ws.adjoints.fill(U::zero());
        } else {
            ws.adjoints[..=self.inputs].fill(U::zero());
        }
        let mut nan = false;
        for (k, (out, &w)) in self.outputs.iter().zip(weights).enumerate() {
            if w == 0.0 {
                continue;
            }
            if let Operand::Node(i) = *out {
                let adjoint = &mut ws.adjoints[i as usize];
                *adjoint += U::cst(w);
            }
            nan |= value_is_nan(&self.output_at(ws, k));
        }
        sweep(self, ws);
        grad.copy_from_slice(&ws.adjoints[1..=self.inputs]);
        if nan {
            // The NaN convention, also when an output is a constant NaN (no node to carry
            // it): a NaN value never comes with finite derivatives.
            grad.fill(U::nan_everywhere());
        }
    }

    // --- Structure accessors for sparsity detection (`crate::sparse`). ---------------

    /// The step of node `i`.
    pub(crate) fn step(&self, i: usize) -> Step {
        self.steps[i]
    }

    /// The node operands of node `i`: `None` for an unused slot or a constant.
    pub(crate) fn node_operands(&self, i: usize) -> [Option<u32>; 2] {
        let used = self.steps[i].operands_used();
        let [a, b] = self.operands[i];
        let node = |k: u32, used: bool| (used && k & CONST == 0 && k != 0).then_some(k);
        [node(a, used[0]), node(b, used[1])]
    }

    /// Operand slot `k` of node `i` as the replay reads it: a node, a constant's value,
    /// or `None` for a slot the step does not read.
    pub(crate) fn slot(&self, i: usize, k: usize) -> Option<Operand<f64>> {
        if !self.steps[i].operands_used()[k] {
            return None;
        }
        let a = self.operands[i][k];
        Some(if a & CONST != 0 {
            Operand::Const(self.constants[(a & !CONST) as usize])
        } else {
            Operand::Node(a)
        })
    }

    /// The block operation logged as `Step::Block(k)`.
    pub(crate) fn block_op(&self, k: u32) -> BlockOp {
        self.blocks[k as usize].op
    }

    /// Input `p` of the block operation logged as `Step::Block(k)`: its node, or `None`
    /// for a constant.
    pub(crate) fn block_input(&self, k: u32, p: usize) -> Option<u32> {
        let a = self.blocks[k as usize].args[p];
        (a & CONST == 0 && a != 0).then_some(a)
    }

    /// The output nodes (outputs that are constants left out).
    pub(crate) fn output_nodes(&self) -> impl Iterator<Item = u32> + '_ {
        self.outputs.iter().filter_map(|o| match *o {
            Operand::Node(i) => Some(i),
            Operand::Const(_) => None,
        })
    }

    /// Output `k`'s node, or `None` for an output that is a constant.
    pub(crate) fn output_node(&self, k: usize) -> Option<u32> {
        match self.outputs[k] {
            Operand::Node(i) => Some(i),
            Operand::Const(_) => None,
        }
    }

    /// Whether every custom rule in the program provides derivatives to `order` beyond the
    /// level it was called at ([`Program::require_custom_order`] without the panic).
    pub(crate) fn custom_order_available(&self, order: usize) -> bool {
        self.customs
            .iter()
            .all(|call| call.level + order <= call.rule.order())
    }

    /// The id of the recording this program came from (changes on every re-recording).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

/// Buffers for replaying a [`Program`] at scalar type `U`; reused across calls.
#[derive(Clone, Debug, Default)]
pub(crate) struct Workspace<U> {
    /// The id of the program the buffers are laid out for (0: none).
    program: u64,
    values: Vec<U>,
    nodes: Vec<Node<U>>,
    adjoints: Vec<U>,
    /// Per block operation, what its pullback needs.
    saved: Vec<Saved<U>>,
}

impl<U: Scalar> Workspace<U> {
    /// An empty workspace; sized on first use.
    pub(crate) fn new() -> Self {
        Workspace {
            program: 0,
            values: Vec::new(),
            nodes: Vec::new(),
            adjoints: Vec::new(),
            saved: Vec::new(),
        }
    }

    fn prepare(&mut self, program: &Program) {
        let len = program.len();
        if self.program != program.id {
            self.program = program.id;
            self.nodes.clear();
            // Constant operands point at the sink in the sweep.
            let sink = |k: u32| if k & CONST != 0 { 0 } else { k };
            self.nodes
                .extend(program.operands.iter().map(|&[a, b]| Node {
                    args: [sink(a), sink(b)],
                    partials: [U::zero(), U::zero()],
                }));
            self.values.clear();
            self.values.resize(len, U::zero());
            self.adjoints.clear();
            self.adjoints.resize(len, U::zero());
            self.saved.clear();
            self.saved.resize_with(program.blocks.len(), Saved::default);
        }
    }
}
