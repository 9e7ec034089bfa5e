//! Loop rolling: finding the loops of the user's code again in a recorded [`Program`].
//!
//! A recording is straight-line: `Σᵢ 100(xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)²` at n = 10⁴ is some
//! 80 000 nodes, but they are 10⁴ copies of one 8-node body. [`roll`] finds such runs:
//! consecutive blocks of `period` nodes whose steps are identical and whose operands are
//! affine in the block number `t`:
//!
//! - node `first + stride·t`: the same node every time (`stride = 0`, loop-invariant), an
//!   input or earlier node walked with a stride (`x[a·t + b]`), or, with
//!   `stride = period`, a fixed distance back from the node that reads it (a value of the
//!   same or an earlier iteration: a running sum is carried this way);
//! - a constant, either the same in every iteration or one value per iteration, read from
//!   the loop's table (a data-fitting loss has different data in every row: without the
//!   table nothing would roll).
//!
//! A code generator emits one loop per [`Loop`] and straight-line code (or the
//! interpreter) for the rest; the fraction of nodes inside loops is the rolling's
//! [`Rolled::coverage`].
//!
//! The search is near-linear in the recording's length: candidate periods come from the
//! next occurrence of the same short sequence of steps (one hash pass), only a few are
//! tried at each position, and the total comparison work has a budget proportional to the
//! length, after which the rest stays straight-line. Custom-rule calls and block
//! operations are never inside a loop. Loops inside loops (an MLP's units inside its
//! samples) are not formed yet: the innermost repetition that covers the most nodes is
//! rolled, and the enclosing repetition stays a sequence of loops.

// The loops' layout is read by the tests now and by the code generator to come.
#![cfg_attr(not(test), allow(dead_code))]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::reverse::program::Program;
use crate::reverse::step::{Operand, Step};

/// Fewest iterations worth a loop.
const MIN_ITERATIONS: usize = 3;
/// Fewest nodes a loop must cover.
const MIN_COVERED: usize = 12;
/// Longest loop body considered.
const MAX_PERIOD: usize = 4096;
/// Candidate periods tried at one position (successive next occurrences).
const MAX_HOPS: usize = 12;
/// Length of the step sequences hashed to find candidate periods.
const GRAM: usize = 4;
/// Comparison work allowed per node of the recording before the search gives up.
const WORK_PER_NODE: usize = 64;
/// Operand distances up to this are part of a step's hash key (nearer structure is
/// more specific); farther operands count as "far".
const NEAR: u32 = 32;

/// How iteration `t` of a loop finds one operand slot of a body node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LoopOperand {
    /// The step does not read this slot.
    Unused,
    /// Node `first + stride·t`. With `stride` equal to the loop's period it is a fixed
    /// distance back from the reading node (a value of this or an earlier iteration);
    /// otherwise it lies before the loop for every `t` (an input, a loop-invariant node).
    Node { first: u32, stride: i64 },
    /// The same constant in every iteration.
    Const(f64),
    /// One constant per iteration: column `c` of the loop's table.
    Table(u32),
}

/// A run of `iterations` consecutive copies of one body of `period` nodes.
#[derive(Clone, Debug)]
pub(crate) struct Loop {
    /// The first node of iteration 0.
    pub(crate) start: u32,
    /// Nodes per iteration.
    pub(crate) period: u32,
    /// Number of iterations.
    pub(crate) iterations: u32,
    /// Per body node, its step and its two operand slots.
    pub(crate) body: Vec<(Step, [LoopOperand; 2])>,
    /// Constants that differ between iterations: `iterations` rows of `columns` values.
    pub(crate) table: Vec<f64>,
    /// Columns of `table`.
    pub(crate) columns: u32,
}

impl Loop {
    /// Nodes covered.
    pub(crate) fn len(&self) -> usize {
        self.period as usize * self.iterations as usize
    }
}

/// A stretch of the recording: nodes evaluated one by one, or a loop.
#[derive(Clone, Debug)]
pub(crate) enum Piece {
    /// Nodes `start..end`, in order.
    Straight { start: u32, end: u32 },
    /// A rolled run.
    Loop(Loop),
}

/// One node as a replay reads it: its index, its step and its two operand slots.
pub(crate) type NodeView = (usize, Step, [Option<Operand<f64>>; 2]);

/// A program's nodes after the inputs, as straight stretches and loops, in order.
#[derive(Clone, Debug)]
pub(crate) struct Rolled {
    pub(crate) pieces: Vec<Piece>,
    /// The first node after the inputs.
    first: u32,
    /// Nodes in the program, the sink and inputs included.
    len: u32,
    /// Comparison work the search did (near-linear in `len`; tests check it).
    pub(crate) work: usize,
}

impl Rolled {
    /// Fraction of the nodes after the inputs that lie inside loops (0 for an empty
    /// program).
    pub(crate) fn coverage(&self) -> f64 {
        let total = (self.len - self.first) as usize;
        if total == 0 {
            return 0.0;
        }
        let looped: usize = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Loop(l) => l.len(),
                Piece::Straight { .. } => 0,
            })
            .sum();
        looped as f64 / total as f64
    }

    /// The loops, in order.
    pub(crate) fn loops(&self) -> impl Iterator<Item = &Loop> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Loop(l) => Some(l),
            Piece::Straight { .. } => None,
        })
    }

    /// Every node after the inputs as the rolled description says it is: its index, step
    /// and operand slots, expanded loop by loop. A faithful rolling reproduces the
    /// program's own nodes exactly (the tests check it).
    pub(crate) fn unrolled(&self, program: &Program) -> Vec<NodeView> {
        let mut out = Vec::with_capacity((self.len - self.first) as usize);
        for piece in &self.pieces {
            match piece {
                Piece::Straight { start, end } => {
                    for i in *start as usize..*end as usize {
                        out.push((i, program.step(i), [program.slot(i, 0), program.slot(i, 1)]));
                    }
                }
                Piece::Loop(l) => {
                    for t in 0..l.iterations as usize {
                        for (j, (step, slots)) in l.body.iter().enumerate() {
                            let i = l.start as usize + t * l.period as usize + j;
                            let slot = |s: LoopOperand| match s {
                                LoopOperand::Unused => None,
                                LoopOperand::Node { first, stride } => {
                                    Some(Operand::Node((first as i64 + stride * t as i64) as u32))
                                }
                                LoopOperand::Const(c) => Some(Operand::Const(c)),
                                LoopOperand::Table(c) => Some(Operand::Const(
                                    l.table[t * l.columns as usize + c as usize],
                                )),
                            };
                            out.push((i, *step, [slot(slots[0]), slot(slots[1])]));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Rolls `program`'s nodes into loops where they repeat; see the module docs.
pub(crate) fn roll(program: &Program) -> Rolled {
    let len = program.len();
    let first = program.inputs() + 1;
    let keys: Vec<u64> = (0..len).map(|i| step_key(program, i)).collect();
    let next = next_occurrences(&keys, first);
    let mut budget = WORK_PER_NODE * len;
    let mut work = 0;
    let mut pieces = Vec::new();
    let mut straight_from = first;
    let mut i = first;
    while i < len {
        let mut best: Option<Loop> = None;
        if budget > 0 && program.step(i).is_arithmetic() {
            let mut j = i;
            for _ in 0..MAX_HOPS {
                let Some(n) = next[j] else { break };
                j = n as usize;
                let period = j - i;
                if period > MAX_PERIOD || i + 2 * period > len {
                    break;
                }
                if best.as_ref().is_some_and(|b| b.len() >= len - i) {
                    break;
                }
                let mut spent = 0;
                let found = try_loop(program, i, period, &mut spent);
                work += spent;
                budget = budget.saturating_sub(spent);
                if let Some(l) = found {
                    if best.as_ref().is_none_or(|b| l.len() > b.len()) {
                        best = Some(l);
                    }
                }
                if budget == 0 {
                    break;
                }
            }
        }
        match best {
            Some(l) if l.iterations as usize >= MIN_ITERATIONS && l.len() >= MIN_COVERED => {
                if straight_from < i {
                    pieces.push(Piece::Straight {
                        start: straight_from as u32,
                        end: i as u32,
                    });
                }
                i += l.len();
                straight_from = i;
                pieces.push(Piece::Loop(l));
            }
            _ => i += 1,
        }
    }
    if straight_from < len {
        pieces.push(Piece::Straight {
            start: straight_from as u32,
            end: len as u32,
        });
    }
    Rolled {
        pieces,
        first: first as u32,
        len: len as u32,
        work,
    }
}

/// A hash of what node `i` does and the shape of its operands: its step, which slots are
/// constants, inputs or nodes, and the distance back to near operand nodes. Nodes that
/// cannot be in a loop get a key of their own.
fn step_key(program: &Program, i: usize) -> u64 {
    let mut h = Fx::default();
    let step = program.step(i);
    if !step.is_arithmetic() {
        (u64::MAX, i).hash(&mut h);
        return h.finish();
    }
    step.hash(&mut h);
    for k in 0..2 {
        match program.slot(i, k) {
            None => 0u32.hash(&mut h),
            Some(Operand::Const(_)) => 1u32.hash(&mut h),
            Some(Operand::Node(a)) if a as usize <= program.inputs() => 2u32.hash(&mut h),
            Some(Operand::Node(a)) => {
                let back = i as u32 - a;
                (3 + back.min(NEAR + 1)).hash(&mut h);
            }
        }
    }
    h.finish()
}

/// A fast non-cryptographic hasher (multiply–rotate, as in rustc's own `FxHasher`): the
/// keys are the program's own step codes, nothing adversarial, and the search hashes every
/// node twice.
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
    fn write_i32(&mut self, n: i32) {
        self.write_u64(n as u32 as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Per node `i ≥ first`, the next node at which the same [`GRAM`] keys start again.
fn next_occurrences(keys: &[u64], first: usize) -> Vec<Option<u32>> {
    let len = keys.len();
    let mut next = vec![None; len];
    if len < first + GRAM {
        return next;
    }
    let gram = |i: usize| {
        let mut h = Fx::default();
        for k in &keys[i..i + GRAM] {
            h.write_u64(*k);
        }
        h.finish()
    };
    let mut seen: HashMap<u64, u32, BuildHasherDefault<Fx>> =
        HashMap::with_capacity_and_hasher(len / 4, Default::default());
    for i in (first..=len - GRAM).rev() {
        let g = gram(i);
        next[i] = seen.insert(g, i as u32);
    }
    next
}

/// The longest loop of body `start..start + period` found by repeating the body from
/// `start`, or `None` if it does not repeat twice. `work` counts the comparisons.
fn try_loop(program: &Program, start: usize, period: usize, work: &mut usize) -> Option<Loop> {
    let len = program.len();
    // The body's slots, from iterations 0 and 1.
    let mut body: Vec<(Step, [LoopOperand; 2])> = Vec::with_capacity(period);
    for j in 0..period {
        *work += 1;
        let (a, b) = (start + j, start + period + j);
        let step = program.step(a);
        if !step.is_arithmetic() || program.step(b) != step {
            return None;
        }
        let mut slots = [LoopOperand::Unused; 2];
        for (k, slot) in slots.iter_mut().enumerate() {
            *slot = match (program.slot(a, k), program.slot(b, k)) {
                (None, None) => LoopOperand::Unused,
                (Some(Operand::Const(c0)), Some(Operand::Const(c1))) => {
                    if c0.to_bits() == c1.to_bits() {
                        LoopOperand::Const(c0)
                    } else {
                        LoopOperand::Table(0)
                    }
                }
                (Some(Operand::Node(n0)), Some(Operand::Node(n1))) => {
                    let stride = n1 as i64 - n0 as i64;
                    // A node of the loop itself can only be read at a fixed distance.
                    if stride != period as i64 && n0.max(n1) as usize >= start {
                        return None;
                    }
                    LoopOperand::Node { first: n0, stride }
                }
                _ => return None,
            };
        }
        body.push((step, slots));
    }
    // Further iterations, while they match.
    let mut iterations = 2;
    'grow: while start + (iterations + 1) * period <= len {
        let t = iterations;
        for (j, (step, slots)) in body.iter_mut().enumerate() {
            *work += 1;
            let i = start + t * period + j;
            if program.step(i) != *step {
                break 'grow;
            }
            for (k, slot) in slots.iter_mut().enumerate() {
                let ok = match (*slot, program.slot(i, k)) {
                    (LoopOperand::Unused, None) => true,
                    (LoopOperand::Const(c0), Some(Operand::Const(c))) => {
                        if c.to_bits() != c0.to_bits() {
                            *slot = LoopOperand::Table(0);
                        }
                        true
                    }
                    (LoopOperand::Table(_), Some(Operand::Const(_))) => true,
                    (LoopOperand::Node { first, stride }, Some(Operand::Node(n))) => {
                        let want = first as i64 + stride * t as i64;
                        want == n as i64 && (stride == period as i64 || (n as usize) < start)
                    }
                    _ => false,
                };
                if !ok {
                    break 'grow;
                }
            }
        }
        iterations += 1;
    }
    // The table: one column per slot whose constant varies, one row per iteration.
    let mut columns = 0u32;
    let mut sources = Vec::new();
    for (j, (_, slots)) in body.iter_mut().enumerate() {
        for (k, slot) in slots.iter_mut().enumerate() {
            if let LoopOperand::Table(c) = slot {
                *c = columns;
                columns += 1;
                sources.push((j, k));
            }
        }
    }
    let mut table = Vec::with_capacity(iterations * columns as usize);
    for t in 0..iterations {
        for &(j, k) in &sources {
            match program.slot(start + t * period + j, k) {
                Some(Operand::Const(c)) => table.push(c),
                _ => unreachable!("a table slot holds a constant in every iteration"),
            }
        }
    }
    Some(Loop {
        start: start as u32,
        period: period as u32,
        iterations: iterations as u32,
        body,
        table,
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reverse::{record_program, Var};
    use num_traits::Float;

    fn program_of(mut f: impl FnMut(&[Var<f64>]) -> Var<f64>, x: &[f64]) -> Program {
        record_program(&mut f, x, "test")
    }

    /// Rolls `program`, checks that the rolled description reproduces every node exactly
    /// and that the search stayed within its linear budget; returns the rolling.
    fn rolled(program: &Program) -> Rolled {
        let r = roll(program);
        let nodes = r.unrolled(program);
        let first = program.inputs() + 1;
        assert_eq!(nodes.len(), program.len() - first, "every node once");
        for (k, (i, step, slots)) in nodes.iter().enumerate() {
            assert_eq!(*i, first + k, "nodes in order");
            assert_eq!(*step, program.step(*i), "step of node {i}");
            for (s, &slot) in slots.iter().enumerate() {
                let want = program.slot(*i, s);
                let same = match (slot, want) {
                    (None, None) => true,
                    (Some(Operand::Node(a)), Some(Operand::Node(b))) => a == b,
                    (Some(Operand::Const(a)), Some(Operand::Const(b))) => {
                        a.to_bits() == b.to_bits()
                    }
                    _ => false,
                };
                assert!(
                    same,
                    "node {i} slot {s}: rolled {slot:?}, recorded {want:?}"
                );
            }
        }
        assert!(
            r.work <= WORK_PER_NODE * program.len(),
            "work {} over budget",
            r.work
        );
        r
    }

    fn rosen<T: Float>(x: &[T]) -> T {
        (0..x.len() - 1)
            .map(|i| {
                let a = x[i + 1] - x[i] * x[i];
                let b = T::one() - x[i];
                T::from(100.0).unwrap() * a * a + b * b
            })
            .fold(T::zero(), |s, t| s + t)
    }

    fn start(n: usize) -> Vec<f64> {
        (0..n).map(|i| 1.2 + 0.1 * (i as f64).sin()).collect()
    }

    #[test]
    fn rosenbrock_is_one_loop() {
        for n in [10, 100, 1000] {
            let p = program_of(rosen::<Var<f64>>, &start(n));
            let r = rolled(&p);
            let loops: Vec<&Loop> = r.loops().collect();
            assert_eq!(loops.len(), 1, "n = {n}: {:?}", r.pieces.len());
            assert!(loops[0].iterations as usize >= n - 3, "n = {n}");
            // Every term but the first (which adds to the constant 0, not to a node).
            let want = (n - 2) as f64 / (n - 1) as f64;
            assert!(
                r.coverage() >= want - 1e-12,
                "n = {n}: coverage {}",
                r.coverage()
            );
            // x[i] and x[i + 1] are walked with stride 1.
            assert!(loops[0].body.iter().any(|(_, s)| s
                .iter()
                .any(|o| matches!(o, LoopOperand::Node { stride: 1, .. }))));
        }
    }

    /// The logistic loss of the anchor functions: its data differ in every row, so the
    /// inner products roll only through the per-iteration constant table.
    #[test]
    fn logistic_rolls_its_rows_with_a_constant_table() {
        let (m, n) = (200, 100);
        let a = |j: usize, k: usize| (0.37 * (j + 1) as f64 + 1.3 * (k + 1) as f64).sin();
        let f = |w: &[Var<f64>]| {
            let mut loss = Var::constant(0.0);
            for j in 0..m {
                let y = if j % 2 == 0 { 1.0 } else { -1.0 };
                let mut z = Var::constant(0.0);
                for (k, wk) in w.iter().enumerate() {
                    z += *wk * a(j, k);
                }
                loss += (-(z * y)).exp().ln_1p();
            }
            let reg: Var<f64> = w
                .iter()
                .map(|v| *v * *v)
                .fold(Var::constant(0.0), |s, t| s + t);
            loss + reg * 0.05
        };
        let w: Vec<f64> = (0..n).map(|k| 0.1 * (k as f64).cos()).collect();
        let p = program_of(f, &w);
        let r = rolled(&p);
        assert!(r.coverage() > 0.9, "coverage {}", r.coverage());
        assert!(r
            .loops()
            .any(|l| l.columns > 0 && l.table.len() == l.iterations as usize * l.columns as usize));
    }

    /// The MLP of the anchor functions: each sample's hidden units roll.
    #[test]
    fn mlp_rolls_its_units() {
        let h = 10;
        let f = |th: &[Var<f64>]| {
            let (w1, rest) = th.split_at(8 * h);
            let (b1, rest) = rest.split_at(h);
            let (w2, b2) = rest.split_at(h);
            let mut loss = Var::constant(0.0);
            for s in 0..32 {
                let mut out = b2[0];
                for r in 0..h {
                    let mut a = b1[r];
                    for k in 0..8 {
                        a += w1[r * 8 + k] * (0.1 + 0.5 * s as f64 + 0.3 * k as f64).sin();
                    }
                    out += w2[r] * a.tanh();
                }
                let e = out - (0.7 * s as f64).cos();
                loss += e * e;
            }
            loss * (0.5 / 32.0)
        };
        let th: Vec<f64> = (0..10 * h + 1)
            .map(|i| 0.3 * (0.7 * i as f64 + 0.1).sin())
            .collect();
        let r = rolled(&program_of(f, &th));
        assert!(r.coverage() > 0.8, "coverage {}", r.coverage());
    }

    /// A 2-D grid energy: rows roll (the row ends break the stride).
    #[test]
    fn grid_energy_rolls_its_rows() {
        let m = 30;
        let f = |u: &[Var<f64>]| {
            let mut e = Var::constant(0.0);
            for i in 0..m - 1 {
                for j in 0..m - 1 {
                    let c = u[i * m + j];
                    let dx = u[i * m + j + 1] - c;
                    let dy = u[(i + 1) * m + j] - c;
                    e += (dx * dx + dy * dy + 1.0).sqrt();
                }
            }
            e
        };
        let u: Vec<f64> = (0..m * m).map(|i| (i as f64 * 0.1).sin()).collect();
        let r = rolled(&program_of(f, &u));
        assert!(r.coverage() > 0.8, "coverage {}", r.coverage());
    }

    /// A function without repetition: nothing rolls, and the search stays linear.
    #[test]
    fn nothing_repeats_nothing_rolls() {
        let f = |x: &[Var<f64>]| {
            let a = x[0].sin() * x[1];
            let b = a.exp() - x[2].ln();
            let c = (b / x[3]).tanh() + x[0].atan2(x[1]);
            let d = c.powi(3) * x[2].sqrt() - a.cosh();
            d.max(x[3]) + b.abs()
        };
        let p = program_of(f, &[0.5, 1.5, 2.5, 3.5]);
        let r = rolled(&p);
        assert_eq!(r.coverage(), 0.0);
        assert!(matches!(r.pieces[..], [Piece::Straight { .. }]));
    }

    /// Identical steps whose operands jump around (a permutation of the inputs) are not
    /// affine: nothing rolls, and the work stays within the linear budget although every
    /// position has many candidate periods.
    #[test]
    fn identical_steps_with_scattered_operands_stay_straight_within_budget() {
        let n = 2000;
        // A Fisher–Yates shuffle driven by xorshift: no stride survives more than by chance.
        let mut perm: Vec<usize> = (0..n).collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for i in (1..n).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            perm.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let f = |x: &[Var<f64>]| {
            perm.iter()
                .map(|&i| x[i] * x[i])
                .fold(Var::constant(0.0), |s, t| s + t)
        };
        let r = rolled(&program_of(f, &vec![1.0; n]));
        assert!(r.coverage() < 0.05, "coverage {}", r.coverage());
    }

    /// A recording with custom calls and block operations between repeated terms: those
    /// stay outside loops, the terms around them roll.
    #[test]
    fn block_operations_are_never_inside_loops() {
        let f = |x: &[Var<f64>]| {
            let mut s = crate::linalg::dot(&x[..4].to_vec(), &x[4..8].to_vec());
            for i in 0..x.len() - 1 {
                s += (x[i + 1] - x[i]).powi(2);
            }
            s * crate::linalg::sum(&x[..3].to_vec())
        };
        let p = program_of(f, &start(60));
        let r = rolled(&p);
        assert!(r.coverage() > 0.8, "coverage {}", r.coverage());
        for l in r.loops() {
            assert!(l.body.iter().all(|(s, _)| s.is_arithmetic()));
        }
    }
}
