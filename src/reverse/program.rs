//! Replayable programs: what a recording logs so it can be re-evaluated at new points.
//!
//! A recording made by [`crate::reverse::record`] logs, beside the tape, the [`Step`] that
//! produced each node and every control-flow decision (a [`Guard`]). A finished
//! [`Program`] re-evaluates values and partials at a new point by applying the same rules,
//! in any scalar type (plain `f64` for gradients, duals for Hessian-vector products and
//! Hessian columns), and reports whether every guard still holds; when one does not, the
//! caller re-records instead of returning the derivative of the wrong branch.

use std::cmp::Ordering;

use crate::chain::Decision;
use crate::reverse::tape::{rebase, reverse_sweep, Node};
use crate::reverse::Var;
use crate::rules::{Binary, Unary};
use crate::Scalar;

/// How a node's value is computed from its operands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Step {
    Input,
    Unary(Unary),
    Binary(Binary),
    Add,
    Sub,
    Neg,
    /// Multiplication by the constant in operand slot 1.
    Scale,
}

/// A guard operand: a node, or a constant.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Operand<T> {
    Node(u32),
    Const(T),
}

impl<T: Scalar> Operand<T> {
    fn rebase(self, start: u32) -> Self {
        match self {
            Operand::Node(i) => Operand::Node(rebase(i, start)),
            c => c,
        }
    }
}

impl Step {
    /// Which of the two operand slots the step reads.
    fn operands_used(self) -> [bool; 2] {
        match self {
            Step::Input => [false, false],
            Step::Unary(_) | Step::Neg => [true, false],
            Step::Binary(_) | Step::Add | Step::Sub | Step::Scale => [true, true],
        }
    }
}

/// Marks a program operand as an index into its constants rather than a node.
const CONST: u32 = 1 << 31;

/// A control-flow decision taken during recording, and what it saw.
#[derive(Clone, Copy, Debug)]
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
}

/// What a logging recording collects beside its tape segment.
pub(crate) struct ProgramLog<T> {
    start: u32,
    steps: Vec<Step>,
    consts: Vec<[T; 2]>,
    guards: Vec<Guard<T>>,
}

impl<T: Scalar> ProgramLog<T> {
    pub(crate) fn new(start: u32) -> Self {
        ProgramLog {
            start,
            steps: Vec::new(),
            consts: Vec::new(),
            guards: Vec::new(),
        }
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
    pub(crate) fn guard(&mut self, id: u32, x: &Var<T>, decision: Decision<'_, Var<T>>) {
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
        };
        self.guards.push(guard);
    }
}

/// A finished recording of `f: Rⁿ → R` at `f64`, replayable at new points.
///
/// Node 0 is the sink, nodes `1..=n` the inputs.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    /// The id of the recording it came from; workspaces use it to know their layout.
    id: u32,
    /// Per node, its two operands: a node index, or `CONST | k` for `constants[k]`.
    operands: Vec<[u32; 2]>,
    steps: Vec<Step>,
    /// The constant operands, only for the nodes that have one.
    constants: Vec<f64>,
    guards: Vec<Guard<f64>>,
    inputs: usize,
    output: Operand<f64>,
}

impl Program {
    /// Builds a program from a tape segment starting at `start` and its log.
    pub(crate) fn new(
        id: u32,
        nodes: &[Node<f64>],
        start: u32,
        log: ProgramLog<f64>,
        inputs: usize,
        output: &Var<f64>,
    ) -> Self {
        debug_assert_eq!(log.start, start);
        let segment = &nodes[start as usize..];
        assert!(
            segment.len() < CONST as usize,
            "reverse::record: a recording of {} operations is too long to replay",
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
        let guards = log
            .guards
            .iter()
            .map(|g| match *g {
                Guard::Compare { lhs, rhs, outcome } => Guard::Compare {
                    lhs: lhs.rebase(start),
                    rhs: rhs.rebase(start),
                    outcome,
                },
                Guard::Inspect { of, seen, probe } => Guard::Inspect {
                    of: of.rebase(start),
                    seen,
                    probe,
                },
            })
            .collect();
        Program {
            id,
            operands,
            steps,
            constants,
            guards,
            inputs,
            output: output.operand().rebase(start),
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
                Step::Input => unreachable!("inputs come first"),
            };
            values[i] = v;
            nodes[i].partials = [pa, pb];
        }
        self.guards_hold(values)
    }

    fn value_of<U: Scalar>(values: &[U], op: &Operand<f64>) -> f64 {
        match *op {
            Operand::Node(i) => values[i as usize].value_f64(),
            Operand::Const(c) => c,
        }
    }

    fn guards_hold<U: Scalar>(&self, values: &[U]) -> bool {
        self.guards.iter().all(|g| match g {
            Guard::Compare { lhs, rhs, outcome } => {
                Self::value_of(values, lhs).partial_cmp(&Self::value_of(values, rhs)) == *outcome
            }
            Guard::Inspect { of, seen, probe } => {
                probe(&Var::constant(Self::value_of(values, of))) == *seen
            }
        })
    }

    /// The output value after [`Program::forward`].
    pub(crate) fn output<U: Scalar>(&self, ws: &Workspace<U>) -> U {
        match self.output {
            Operand::Node(i) => ws.values[i as usize],
            Operand::Const(c) => U::cst(c),
        }
    }

    /// After [`Program::forward`]: sweeps back from the output with adjoint 1 and writes
    /// the gradient into `grad`.
    pub(crate) fn backward<U: Scalar>(&self, ws: &mut Workspace<U>, grad: &mut [U]) {
        ws.adjoints.fill(U::zero());
        if let Operand::Node(i) = self.output {
            ws.adjoints[i as usize] = U::one();
        }
        reverse_sweep(&ws.nodes, self.inputs + 1, &mut ws.adjoints);
        grad.copy_from_slice(&ws.adjoints[1..=self.inputs]);
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

    /// The output node, or `None` when the output is a constant.
    pub(crate) fn output_node(&self) -> Option<u32> {
        match self.output {
            Operand::Node(i) => Some(i),
            Operand::Const(_) => None,
        }
    }

    /// The id of the recording this program came from (changes on every re-recording).
    pub(crate) fn id(&self) -> u32 {
        self.id
    }
}

/// Buffers for replaying a [`Program`] at scalar type `U`; reused across calls.
#[derive(Clone, Debug, Default)]
pub(crate) struct Workspace<U> {
    /// The id of the program the buffers are laid out for (0: none).
    program: u32,
    values: Vec<U>,
    nodes: Vec<Node<U>>,
    adjoints: Vec<U>,
}

impl<U: Scalar> Workspace<U> {
    /// An empty workspace; sized on first use.
    pub(crate) fn new() -> Self {
        Workspace {
            program: 0,
            values: Vec::new(),
            nodes: Vec::new(),
            adjoints: Vec::new(),
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
        }
    }
}
