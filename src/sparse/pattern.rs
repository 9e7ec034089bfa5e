//! Hessian sparsity detection from one recording.
//!
//! The Hessian of `f` is `Σ_v ā_v · J_vᵀ ∇²φ_v J_v` over the recorded operations `v`
//! (`ā_v` the adjoint of `v`, `φ_v` its rule, `J_v` the Jacobian of its operands with respect
//! to the inputs). So an entry `(i, j)` can only be non-zero if some operation that reaches
//! the output has a non-zero second partial in two operands (or one operand twice) that
//! depend on `i` and `j`. Linear operations (`+`, `−`, scaling, `abs`, `max`, …) only
//! propagate dependence; nonlinear ones create interactions between the dependence sets of
//! their operands. The result is a superset of the true non-zeros on the recorded path.
//!
//! Which operation is which is the rules' to say ([`crate::rules::Interaction`], and per
//! group of a block operation's outputs [`crate::rules::OutputGroup`]); this module only
//! follows the recording and applies those facts. A block output depends on the inputs
//! its group names, not on the whole block, and pairs only what its group pairs (`sum` and
//! products with a constant factor pair nothing; `dot` pairs matching entries).
//!
//! Dependence sets are computed only where an interaction needs them: a long chain of
//! additions that only feeds the output (the sum in `Σ gᵢ(x)`) never materialises a set,
//! and a set is freed as soon as its last reader has used it.

use crate::reverse::program::Program;
use crate::reverse::step::Step;
use crate::rules::{Interaction, OutputGroup, Pairs, Positions};

/// The sparsity pattern of a Hessian: the lower triangle (`row ≥ col`), sorted by column
/// and then row, diagonal entries included where they may be non-zero.
///
/// ```
/// use num_traits::Float;
/// fn f<T: Float>(x: &[T]) -> T { x[0] * x[1] + x[2].sin() }
/// let h = mixad::sparse_hessian(|x| f(x), &[1.0, 2.0, 3.0]);
/// let p = h.pattern();
/// assert_eq!(p.dim(), 3);
/// assert_eq!((p.rows(), p.cols()), (&[1, 2][..], &[0, 2][..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparsityPattern {
    n: usize,
    rows: Vec<usize>,
    cols: Vec<usize>,
    /// Start of each column's entries in `rows`, `n + 1` entries.
    col_ptr: Vec<usize>,
}

impl SparsityPattern {
    /// The pattern of the `0 × 0` Hessian.
    pub(crate) fn empty() -> Self {
        Self::from_keys(0, &[])
    }

    /// Builds a pattern from lower-triangle keys `(col << 32) | row`, sorted and unique.
    fn from_keys(n: usize, keys: &[u64]) -> Self {
        let mut rows = Vec::with_capacity(keys.len());
        let mut cols = Vec::with_capacity(keys.len());
        let mut col_ptr = vec![0; n + 1];
        for &key in keys {
            let (c, r) = ((key >> 32) as usize, (key & 0xFFFF_FFFF) as usize);
            rows.push(r);
            cols.push(c);
            col_ptr[c + 1] += 1;
        }
        for c in 0..n {
            col_ptr[c + 1] += col_ptr[c];
        }
        SparsityPattern {
            n,
            rows,
            cols,
            col_ptr,
        }
    }

    /// The Hessian is `dim × dim`.
    pub fn dim(&self) -> usize {
        self.n
    }

    /// Number of stored lower-triangle entries.
    pub fn nnz(&self) -> usize {
        self.rows.len()
    }

    /// Row of each entry (`row ≥ col`).
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// Column of each entry.
    pub fn cols(&self) -> &[usize] {
        &self.cols
    }

    /// Column pointers of the lower triangle in compressed-column form (`dim + 1` entries):
    /// column `j`'s entries are `col_ptr[j]..col_ptr[j + 1]`.
    pub fn col_ptr(&self) -> &[usize] {
        &self.col_ptr
    }

    /// True if `(i, j)` (either triangle) may be non-zero.
    pub fn contains(&self, i: usize, j: usize) -> bool {
        self.position(i, j).is_some()
    }

    /// Index of `(i, j)` (either triangle) among the stored entries.
    pub(crate) fn position(&self, i: usize, j: usize) -> Option<usize> {
        let (r, c) = if i >= j { (i, j) } else { (j, i) };
        if c >= self.n {
            return None;
        }
        let range = self.col_ptr[c]..self.col_ptr[c + 1];
        self.rows[range.clone()]
            .binary_search(&r)
            .ok()
            .map(|k| range.start + k)
    }
}

/// What detection knows about a node: its rule's interaction fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// An ordinary node (two operand slots `a`, `b`) and its rule's fact.
    Scalar(Interaction),
    /// The first output of group `group` of the block operation `Step::Block(block)`
    /// ([`crate::rules::BlockOp::output_group`]): its operands are the block inputs the
    /// group depends on, its interactions the group's pairs. A group with no dependence
    /// (constant outputs) is `Scalar(Constant)` instead.
    Group { block: u32, group: u32 },
    /// A later output of a group: the same dependence as the group's first output
    /// (node `first`), read from it as if linear in it. The group's pairs are counted once,
    /// at `first`, which reaches the output whenever any output of the group does.
    Member(u32),
}

impl Kind {
    pub(super) fn depends(self) -> bool {
        self != Kind::Scalar(Interaction::Constant)
    }
}

/// Every node's [`Kind`], from the rules' facts.
pub(super) fn kinds(program: &Program, first: usize) -> Vec<Kind> {
    let len = program.len();
    let mut kinds = vec![Kind::Scalar(Interaction::Linear); len];
    for i in first..len {
        match program.step(i) {
            Step::Block(block) => {
                let op = program.block_op(block);
                let mut covered = 0;
                for (g, group) in op.output_groups().enumerate() {
                    covered += group.outputs.count;
                    let head = i + group.outputs.start;
                    for o in group.outputs.iter() {
                        kinds[i + o] = if !group.depends_on_any() {
                            Kind::Scalar(Interaction::Constant)
                        } else if i + o == head {
                            Kind::Group {
                                block,
                                group: g as u32,
                            }
                        } else {
                            Kind::Member(head as u32)
                        };
                    }
                }
                debug_assert_eq!(covered, op.output_len(), "{op:?}: groups miss outputs");
            }
            // Set at the block's first output, above.
            Step::BlockOutput => {}
            step => kinds[i] = Kind::Scalar(step.interaction()),
        }
    }
    kinds
}

/// The two operand slots detection follows from an ordinary node or a group member.
fn slots(program: &Program, i: usize, kind: Kind) -> [Option<u32>; 2] {
    match kind {
        Kind::Member(first) => [Some(first), None],
        Kind::Group { .. } => [None, None],
        Kind::Scalar(_) => program.node_operands(i),
    }
}

/// The input positions of a group's dependence mapped to nodes (constants left out):
/// the operands detection follows from a group's first output.
fn group_operands(
    program: &Program,
    block: u32,
    depends: [Positions; 2],
) -> impl Iterator<Item = u32> + '_ {
    depends
        .into_iter()
        .flat_map(|d| d.iter())
        .filter_map(move |p| program.block_input(block, p))
}

/// The operands detection follows from node `i`, without allocating.
pub(super) fn operands(program: &Program, i: usize, kind: Kind) -> impl Iterator<Item = u32> + '_ {
    let group = match kind {
        Kind::Group { block, group } => Some((
            block,
            program.block_op(block).output_group(group as usize).depends,
        )),
        _ => None,
    };
    slots(program, i, kind).into_iter().flatten().chain(
        group
            .into_iter()
            .flat_map(move |(block, depends)| group_operands(program, block, depends)),
    )
}

const NONE: u32 = u32::MAX;

/// Dependence sets (sorted input indices) of the nodes that need one, with slots recycled
/// once a set's last reader is done.
struct Sets {
    slot: Vec<u32>,
    pool: Vec<Vec<u32>>,
    free: Vec<u32>,
    /// Readers still to come, per node.
    readers: Vec<u32>,
    /// `vars[i] == i`: the singleton sets of the inputs, borrowed as slices.
    vars: Vec<u32>,
    n_vars: usize,
}

impl Sets {
    fn get(&self, node: u32) -> &[u32] {
        let i = node as usize;
        if (1..=self.n_vars).contains(&i) {
            return &self.vars[i - 1..i];
        }
        match self.slot[i] {
            NONE => &[],
            s => &self.pool[s as usize],
        }
    }

    fn read(&mut self, node: u32) {
        let i = node as usize;
        self.readers[i] -= 1;
        if self.readers[i] == 0 && self.slot[i] != NONE {
            let s = self.slot[i];
            self.pool[s as usize].clear();
            self.free.push(s);
            self.slot[i] = NONE;
        }
    }

    fn store(&mut self, node: usize, build: impl FnOnce(&Self, &mut Vec<u32>)) {
        let s = self.free.pop().unwrap_or_else(|| {
            self.pool.push(Vec::new());
            (self.pool.len() - 1) as u32
        });
        let mut set = std::mem::take(&mut self.pool[s as usize]);
        build(self, &mut set);
        self.pool[s as usize] = set;
        self.slot[node] = s;
    }
}

/// Sorted union of two sorted sets into `out`.
pub(crate) fn union_into(a: &[u32], b: &[u32], out: &mut Vec<u32>) {
    out.clear();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

#[inline]
fn key(i: u32, j: u32) -> u64 {
    let (r, c) = if i >= j { (i, j) } else { (j, i) };
    (u64::from(c) << 32) | u64::from(r)
}

/// Every pair of `a × b`, lower triangle.
fn cross(a: &[u32], b: &[u32], keys: &mut Vec<u64>) {
    for &i in a {
        keys.extend(b.iter().map(|&j| key(i, j)));
    }
}

/// Every pair of `a × a`, lower triangle only.
fn square(a: &[u32], keys: &mut Vec<u64>) {
    for (k, &i) in a.iter().enumerate() {
        keys.extend(a[..=k].iter().map(|&j| key(i, j)));
    }
}

/// The Hessian pattern of `program` with respect to its first `n_vars` inputs (later
/// inputs are parameters: they carry no dependence, e.g. Lagrange multipliers).
pub(crate) fn detect(program: &Program, n_vars: usize) -> SparsityPattern {
    let len = program.len();
    let first = program.inputs() + 1;
    let kinds = kinds(program, first);

    // Nodes whose adjoint may be non-zero: those reaching the output.
    let mut reach = vec![false; len];
    for out in program.output_nodes() {
        reach[out as usize] = true;
    }
    for i in (first..len).rev() {
        if reach[i] && kinds[i].depends() {
            for a in operands(program, i, kinds[i]) {
                reach[a as usize] = true;
            }
        }
    }

    // Nodes whose dependence set is needed: operands of interactions, and (transitively)
    // operands of nodes whose set is needed. `readers` counts the reads of each set.
    let mut needed = vec![false; len];
    let mut readers = vec![0u32; len];
    let mut mark = |needed: &mut [bool], x: u32, r: u32| {
        if r > 0 {
            needed[x as usize] = true;
            readers[x as usize] += r;
        }
    };
    for i in (first..len).rev() {
        let kind = kinds[i];
        if let Kind::Group { block, group } = kind {
            let g = program.block_op(block).output_group(group as usize);
            let r = group_reads(&g, reach[i], needed[i]);
            for x in group_operands(program, block, g.depends) {
                mark(&mut needed, x, r);
            }
        } else {
            let [a, b] = slots(program, i, kind);
            let [ra, rb] = reads(slot_interaction(kind), reach[i], needed[i]);
            for (x, r) in [(a, ra), (b, rb)] {
                if let Some(x) = x {
                    mark(&mut needed, x, r);
                }
            }
        }
    }

    let mut sets = Sets {
        slot: vec![NONE; len],
        pool: Vec::new(),
        free: Vec::new(),
        readers,
        vars: (0..n_vars as u32).collect(),
        n_vars,
    };
    let mut keys: Vec<u64> = Vec::new();
    let mut compact_at = 1 << 20;
    // Scratch for blocks: the union of one or two position sets' dependence, and the
    // `All` pairs already emitted for the current block (groups of one block often state
    // the same pair, e.g. every column of a solve `A × A`).
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let mut emitted: (u32, Vec<(Positions, Positions)>) = (u32::MAX, Vec::new());
    for i in first..len {
        let kind = kinds[i];
        if let Kind::Group { block, group } = kind {
            let g = program.block_op(block).output_group(group as usize);
            if reach[i] {
                if emitted.0 != block {
                    emitted = (block, Vec::new());
                }
                for pairs in g.pairs {
                    match pairs {
                        Pairs::None => {}
                        Pairs::All(p, q) => {
                            if emitted.1.contains(&(p, q)) {
                                continue;
                            }
                            emitted.1.push((p, q));
                            gather(&sets, program, block, [p, Positions::EMPTY], &mut left);
                            if p == q {
                                square(&left, &mut keys);
                            } else {
                                gather(&sets, program, block, [q, Positions::EMPTY], &mut right);
                                cross(&left, &right, &mut keys);
                            }
                        }
                        Pairs::Zip(p, q) => {
                            debug_assert_eq!(p.count, q.count);
                            for t in 0..p.count.min(q.count) {
                                let x = program.block_input(block, p.get(t));
                                let y = program.block_input(block, q.get(t));
                                if let (Some(x), Some(y)) = (x, y) {
                                    cross(sets.get(x), sets.get(y), &mut keys);
                                }
                            }
                        }
                    }
                }
            }
            if needed[i] {
                gather(&sets, program, block, g.depends, &mut left);
                sets.store(i, |_, out| out.extend_from_slice(&left));
            }
            // Every read of the operands' sets at this node is done.
            let r = group_reads(&g, reach[i], needed[i]);
            for x in group_operands(program, block, g.depends) {
                for _ in 0..r {
                    sets.read(x);
                }
            }
        } else {
            let interaction = slot_interaction(kind);
            let [a, b] = slots(program, i, kind);
            if reach[i] {
                if let Interaction::Nonlinear { aa, ab, bb } = interaction {
                    let sa = a.map_or(&[][..], |a| sets.get(a));
                    let sb = b.map_or(&[][..], |b| sets.get(b));
                    if aa {
                        square(sa, &mut keys);
                    }
                    if ab {
                        cross(sa, sb, &mut keys);
                    }
                    if bb {
                        square(sb, &mut keys);
                    }
                }
            }
            if needed[i] && interaction.depends() {
                sets.store(i, |s, out| {
                    let sa = a.map_or(&[][..], |a| s.get(a));
                    let sb = b.map_or(&[][..], |b| s.get(b));
                    union_into(sa, sb, out);
                });
            }
            // Every read of the operands' sets at this node is done.
            let [ra, rb] = reads(interaction, reach[i], needed[i]);
            for (x, r) in [(a, ra), (b, rb)] {
                if let Some(x) = x {
                    for _ in 0..r {
                        sets.read(x);
                    }
                }
            }
        }
        if keys.len() > compact_at {
            compact(&mut keys);
            compact_at = compact_at.max(2 * keys.len());
        }
    }
    compact(&mut keys);
    SparsityPattern::from_keys(n_vars, &keys)
}

/// The fact detection applies to a node's two slots: its rule's, or linear for a group
/// member (which only copies its group's dependence).
fn slot_interaction(kind: Kind) -> Interaction {
    match kind {
        Kind::Scalar(interaction) => interaction,
        Kind::Member(_) | Kind::Group { .. } => Interaction::Linear,
    }
}

/// The sorted union of the dependence sets of the block inputs at `positions`.
fn gather(
    sets: &Sets,
    program: &Program,
    block: u32,
    positions: [Positions; 2],
    out: &mut Vec<u32>,
) {
    out.clear();
    for x in group_operands(program, block, positions) {
        out.extend_from_slice(sets.get(x));
    }
    out.sort_unstable();
    out.dedup();
}

/// How many times node `i` reads the dependence sets of its operands `[a, b]`: once to
/// build its own set (if needed), once more for an interaction the operand takes part in.
fn reads(interaction: Interaction, reach: bool, needed: bool) -> [u32; 2] {
    let build = u32::from(needed && interaction.depends());
    match (reach, interaction) {
        (true, Interaction::Nonlinear { aa, ab, bb }) => {
            [build + u32::from(aa || ab), build + u32::from(ab || bb)]
        }
        _ => [build, build],
    }
}

/// How many times a group's first output reads each of its operands' sets (per
/// occurrence): once, when it builds its own set or emits the group's pairs (both read
/// before any set is released).
fn group_reads(group: &OutputGroup, reach: bool, needed: bool) -> u32 {
    u32::from(needed || (reach && group.is_nonlinear()))
}

fn compact(keys: &mut Vec<u64>) {
    keys.sort_unstable();
    keys.dedup();
}
