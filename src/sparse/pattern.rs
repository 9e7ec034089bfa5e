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
//! Dependence sets are computed only where an interaction needs them: a long chain of
//! additions that only feeds the output (the sum in `Σ gᵢ(x)`) never materialises a set,
//! and a set is freed as soon as its last reader has used it.

use crate::reverse::program::{Program, Step};
use crate::rules::{Binary, Unary};

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

/// How an operation combines the dependence of its operands `a` and `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Derivative zero everywhere (rounding, sign): nothing depends on the operands.
    Constant,
    /// Linear, or piecewise linear: dependence is the union, no interaction.
    Linear,
    /// Nonlinear: which second partials may be non-zero (`∂²/∂a²`, `∂²/∂a∂b`, `∂²/∂b²`);
    /// dependence is the union.
    Nonlinear { aa: bool, ab: bool, bb: bool },
    /// A block operation's first output: any number of operands (the block's inputs), every
    /// pair of them may interact. The block's other outputs are `Linear` in the node before.
    Block,
}

const ALL: Kind = Kind::Nonlinear {
    aa: true,
    ab: true,
    bb: true,
};

/// The one place that says which operations are linear and which interact, and how.
/// Anything not listed is conservatively nonlinear in all its operands, so a new kind of
/// step keeps the pattern a superset.
pub(crate) fn classify(step: Step) -> Kind {
    match step {
        Step::Input => Kind::Linear,
        Step::Add | Step::Sub | Step::Neg | Step::Scale => Kind::Linear,
        Step::Unary(u) => match u {
            Unary::Signum | Unary::Floor | Unary::Ceil | Unary::Round | Unary::Trunc => {
                Kind::Constant
            }
            Unary::Powi(0) => Kind::Constant,
            Unary::Abs | Unary::Fract | Unary::ToDegrees | Unary::ToRadians | Unary::Powi(1) => {
                Kind::Linear
            }
            _ => Kind::Nonlinear {
                aa: true,
                ab: false,
                bb: false,
            },
        },
        Step::Binary(b) => match b {
            // Piecewise linear: the partials are locally constant.
            Binary::Max | Binary::Min | Binary::AbsSub | Binary::Rem => Kind::Linear,
            Binary::Mul => Kind::Nonlinear {
                aa: false,
                ab: true,
                bb: false,
            },
            // a/b is linear in a.
            Binary::Div => Kind::Nonlinear {
                aa: false,
                ab: true,
                bb: true,
            },
            _ => ALL,
        },
        Step::Block(_) => Kind::Block,
        #[allow(unreachable_patterns)]
        _ => ALL,
    }
}

/// The operands detection follows from node `i`: the two slots of an ordinary node, a
/// block's inputs at its first output, and the previous output at its other outputs (so
/// every output of a block depends on all its inputs).
fn operands_of(program: &Program, i: usize) -> Vec<u32> {
    match program.step(i) {
        Step::Block(_) => program.block_operands(i),
        Step::BlockOutput => vec![(i - 1) as u32],
        _ => program.node_operands(i).into_iter().flatten().collect(),
    }
}

/// [`operands_of`] without allocating for ordinary nodes (blocks are rare).
enum Operands {
    Two([Option<u32>; 2]),
    Many(Vec<u32>),
}

impl Operands {
    fn of(program: &Program, i: usize) -> Self {
        match program.step(i) {
            Step::Block(_) | Step::BlockOutput => Operands::Many(operands_of(program, i)),
            _ => Operands::Two(program.node_operands(i)),
        }
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let (two, many): (&[Option<u32>], &[u32]) = match self {
            Operands::Two(t) => (t, &[]),
            Operands::Many(m) => (&[], m),
        };
        two.iter().flatten().copied().chain(many.iter().copied())
    }
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
fn union_into(a: &[u32], b: &[u32], out: &mut Vec<u32>) {
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
    let kinds: Vec<Kind> = (0..len)
        .map(|i| {
            if i < first {
                Kind::Linear
            } else {
                classify(program.step(i))
            }
        })
        .collect();

    // Nodes whose adjoint may be non-zero: those reaching the output.
    let mut reach = vec![false; len];
    for out in program.output_nodes() {
        reach[out as usize] = true;
    }
    for i in (first..len).rev() {
        if reach[i] && kinds[i] != Kind::Constant {
            for a in Operands::of(program, i).iter() {
                reach[a as usize] = true;
            }
        }
    }

    // Nodes whose dependence set is needed: operands of interactions, and (transitively)
    // operands of nodes whose set is needed. `readers` counts the reads of each set.
    let mut needed = vec![false; len];
    let mut readers = vec![0u32; len];
    for i in (first..len).rev() {
        let ops = Operands::of(program, i);
        let r = reads(kinds[i], reach[i], needed[i]);
        for (k, x) in ops.iter().enumerate() {
            let r = r[k.min(1)];
            if r > 0 {
                needed[x as usize] = true;
                readers[x as usize] += r;
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
    let mut union = Vec::new();
    for i in first..len {
        let kind = kinds[i];
        if let Operands::Many(ops) = Operands::of(program, i) {
            // A block output: the union of its operands' sets, every pair interacting.
            let mut all: Vec<u32> = Vec::new();
            for &x in &ops {
                union_into(&all, sets.get(x), &mut union);
                std::mem::swap(&mut all, &mut union);
            }
            if reach[i] && kind == Kind::Block {
                square(&all, &mut keys);
            }
            if needed[i] {
                sets.store(i, |_, out| out.extend_from_slice(&all));
            }
            let r = reads(kind, reach[i], needed[i]);
            for (k, &x) in ops.iter().enumerate() {
                for _ in 0..r[k.min(1)] {
                    sets.read(x);
                }
            }
            continue;
        }
        let [a, b] = program.node_operands(i);
        if reach[i] {
            if let Kind::Nonlinear { aa, ab, bb } = kind {
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
        if needed[i] && kind != Kind::Constant {
            sets.store(i, |s, out| {
                let sa = a.map_or(&[][..], |a| s.get(a));
                let sb = b.map_or(&[][..], |b| s.get(b));
                union_into(sa, sb, out);
            });
        }
        // Every read of the operands' sets at this node is done.
        let [ra, rb] = reads(kind, reach[i], needed[i]);
        for (x, r) in [(a, ra), (b, rb)] {
            if let Some(x) = x {
                for _ in 0..r {
                    sets.read(x);
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

/// How many times node `i` reads the dependence sets of its operands `[a, b]`: once to
/// build its own set (if needed), once more for an interaction the operand takes part in.
/// A block reads every operand the same number of times (the second entry).
fn reads(kind: Kind, reach: bool, needed: bool) -> [u32; 2] {
    let build = u32::from(needed && kind != Kind::Constant);
    match (reach, kind) {
        (true, Kind::Nonlinear { aa, ab, bb }) => {
            [build + u32::from(aa || ab), build + u32::from(ab || bb)]
        }
        (true, Kind::Block) => [build + 1, build + 1],
        _ => [build, build],
    }
}

fn compact(keys: &mut Vec<u64>) {
    keys.sort_unstable();
    keys.dedup();
}
