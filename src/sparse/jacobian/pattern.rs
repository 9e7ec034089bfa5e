//! [`JacobianPattern`] and its detection from one recording.
//!
//! Entry `(i, j)` of `∂F/∂x` can only be non-zero if output `i` depends on input `j`
//! through operations whose partials are not structurally zero. Detection walks the
//! recording once, forward, and gives every node that reaches an output the sorted set of
//! inputs it depends on: the union of its operands' sets. Which operands a node reads, and
//! whether it depends on them at all, is the rules' to say (the same facts the Hessian's
//! detection reads: [`crate::rules::Interaction`], block operations' output groups);
//! rounding and sign (`floor`, `signum`, …) depend on nothing, so what they feed gets no
//! entry from them. The result is a superset of the non-zeros on the recorded path.
//!
//! Cost: linear in the recording's length times the average set size. A set is freed (its
//! buffer recycled) after its last reader, and a reader that is the last one takes its
//! operand's buffer over instead of copying it, so a chain of additions (a dense row
//! `Σ xⱼ`) grows one set in place rather than copying it at every step.

use crate::reverse::program::Program;
use crate::sparse::pattern::{kinds, operands, union_into, Kind};

/// The sparsity pattern of an `m × n` Jacobian, in compressed-row form: row `i`'s
/// columns are `col_idx()[row_ptr()[i]..row_ptr()[i + 1]]`, sorted and unique.
///
/// ```
/// use mixad::reverse::Var;
/// use num_traits::Float;
/// let f = |x: &[Var<f64>]| vec![x[0] * x[1], x[2].sin(), x[1] + 1.0];
/// let mut rec = mixad::record(f, &[1.0, 2.0, 3.0]);
/// let p = rec.jacobian_pattern();
/// assert_eq!((p.nrows(), p.ncols(), p.nnz()), (3, 3, 4));
/// assert_eq!(p.row_ptr(), &[0, 2, 3, 4]);
/// assert_eq!(p.col_idx(), &[0, 1, 2, 1]);
/// assert!(p.contains(0, 1) && !p.contains(2, 0));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JacobianPattern {
    m: usize,
    n: usize,
    row_ptr: Vec<usize>,
    col_idx: Vec<usize>,
}

impl JacobianPattern {
    /// The pattern of the `0 × 0` Jacobian.
    pub(crate) fn empty() -> Self {
        JacobianPattern {
            m: 0,
            n: 0,
            row_ptr: vec![0],
            col_idx: Vec::new(),
        }
    }

    /// Builds a pattern from compressed rows (each row sorted and unique).
    pub(crate) fn from_csr(m: usize, n: usize, row_ptr: Vec<usize>, col_idx: Vec<usize>) -> Self {
        debug_assert_eq!(row_ptr.len(), m + 1);
        debug_assert!((0..m).all(|i| {
            let row = &col_idx[row_ptr[i]..row_ptr[i + 1]];
            row.windows(2).all(|w| w[0] < w[1]) && row.iter().all(|&j| j < n)
        }));
        JacobianPattern {
            m,
            n,
            row_ptr,
            col_idx,
        }
    }

    /// Number of rows (outputs), `m`.
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0]; 3], &[1.0, 2.0]);
    /// assert_eq!(rec.jacobian_pattern().nrows(), 3);
    /// ```
    pub fn nrows(&self) -> usize {
        self.m
    }

    /// Number of columns (inputs), `n`.
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0]; 3], &[1.0, 2.0]);
    /// assert_eq!(rec.jacobian_pattern().ncols(), 2);
    /// ```
    pub fn ncols(&self) -> usize {
        self.n
    }

    /// Number of stored entries.
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0] * x[1], x[1]], &[1.0, 2.0]);
    /// assert_eq!(rec.jacobian_pattern().nnz(), 3);
    /// ```
    pub fn nnz(&self) -> usize {
        self.col_idx.len()
    }

    /// Row pointers (`m + 1` entries): row `i`'s entries are `row_ptr[i]..row_ptr[i + 1]`.
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0] * x[1], x[1]], &[1.0, 2.0]);
    /// assert_eq!(rec.jacobian_pattern().row_ptr(), &[0, 2, 3]);
    /// ```
    pub fn row_ptr(&self) -> &[usize] {
        &self.row_ptr
    }

    /// Column of each stored entry, row by row, sorted within a row.
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[1] * x[0], x[1]], &[1.0, 2.0]);
    /// assert_eq!(rec.jacobian_pattern().col_idx(), &[0, 1, 1]);
    /// ```
    pub fn col_idx(&self) -> &[usize] {
        &self.col_idx
    }

    /// The columns of row `i`, sorted.
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0], x[2] * x[1]], &[1.0, 2.0, 3.0]);
    /// assert_eq!(rec.jacobian_pattern().row(1), &[1, 2]);
    /// ```
    ///
    /// # Panics
    /// If `i ≥ m`.
    pub fn row(&self, i: usize) -> &[usize] {
        assert!(
            i < self.m,
            "JacobianPattern::row: row {i} of a {}-row pattern",
            self.m
        );
        &self.col_idx[self.row_ptr[i]..self.row_ptr[i + 1]]
    }

    /// The stored entries as `(row, col)`, row by row.
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0], x[2] * x[1]], &[1.0, 2.0, 3.0]);
    /// let e: Vec<_> = rec.jacobian_pattern().entries().collect();
    /// assert_eq!(e, vec![(0, 0), (1, 1), (1, 2)]);
    /// ```
    pub fn entries(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.m).flat_map(move |i| {
            self.col_idx[self.row_ptr[i]..self.row_ptr[i + 1]]
                .iter()
                .map(move |&j| (i, j))
        })
    }

    /// True if `(i, j)` may be non-zero (false outside the matrix).
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0], x[2] * x[1]], &[1.0, 2.0, 3.0]);
    /// let p = rec.jacobian_pattern();
    /// assert!(p.contains(1, 2) && !p.contains(0, 2) && !p.contains(5, 0));
    /// ```
    pub fn contains(&self, i: usize, j: usize) -> bool {
        self.position(i, j).is_some()
    }

    /// Index of `(i, j)` among the stored entries.
    pub(crate) fn position(&self, i: usize, j: usize) -> Option<usize> {
        if i >= self.m {
            return None;
        }
        let start = self.row_ptr[i];
        self.col_idx[start..self.row_ptr[i + 1]]
            .binary_search(&j)
            .ok()
            .map(|k| start + k)
    }

    /// The largest number of entries in a row: a lower bound on the colours of any
    /// column colouring (the columns of one row all differ).
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0], x[2] * x[1]], &[1.0, 2.0, 3.0]);
    /// assert_eq!(rec.jacobian_pattern().max_row_len(), 2);
    /// ```
    pub fn max_row_len(&self) -> usize {
        self.row_ptr
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0)
    }

    /// The largest number of entries in a column: a lower bound on the colours of any
    /// row colouring.
    ///
    /// ```
    /// let mut rec = mixad::record(|x| vec![x[0], x[0] * x[1]], &[1.0, 2.0]);
    /// assert_eq!(rec.jacobian_pattern().max_col_len(), 2);
    /// ```
    pub fn max_col_len(&self) -> usize {
        self.col_counts().into_iter().max().unwrap_or(0)
    }

    fn col_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n];
        for &j in &self.col_idx {
            counts[j] += 1;
        }
        counts
    }

    /// The compressed-column form: `(col_ptr, row_idx, perm)`, where `perm[k]` is the
    /// index (in row order) of the `k`-th entry in column order.
    pub(crate) fn csc(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        let mut col_ptr = vec![0; self.n + 1];
        for &j in &self.col_idx {
            col_ptr[j + 1] += 1;
        }
        for j in 0..self.n {
            col_ptr[j + 1] += col_ptr[j];
        }
        let mut fill = col_ptr.clone();
        let mut row_idx = vec![0; self.nnz()];
        let mut perm = vec![0; self.nnz()];
        for i in 0..self.m {
            for k in self.row_ptr[i]..self.row_ptr[i + 1] {
                let j = self.col_idx[k];
                row_idx[fill[j]] = i;
                perm[fill[j]] = k;
                fill[j] += 1;
            }
        }
        (col_ptr, row_idx, perm)
    }
}

const NONE: u32 = u32::MAX;

/// Dependence sets of the nodes still to be read, in recycled buffers.
struct Sets {
    /// Per node, its set's buffer in `pool` (`NONE`: empty, or not kept).
    slot: Vec<u32>,
    pool: Vec<Vec<u32>>,
    free: Vec<u32>,
    /// Per node, the nodes still to read its set (each reader once).
    readers: Vec<u32>,
    /// `vars[j] == j`: the inputs' singleton sets, borrowed as slices.
    vars: Vec<u32>,
}

impl Sets {
    fn get(&self, node: u32) -> &[u32] {
        let i = node as usize;
        if (1..=self.vars.len()).contains(&i) {
            return &self.vars[i - 1..i];
        }
        match self.slot[i] {
            NONE => &[],
            s => &self.pool[s as usize],
        }
    }

    /// A fresh empty buffer.
    fn alloc(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            self.pool.push(Vec::new());
            (self.pool.len() - 1) as u32
        })
    }

    /// One reader of `node`'s set is done.
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
}

/// Merges sorted `b` into sorted `a` (`scratch` a spare buffer).
fn merge_into(a: &mut Vec<u32>, b: &[u32], scratch: &mut Vec<u32>) {
    if b.is_empty() {
        return;
    }
    if a.last().is_none_or(|&l| l < b[0]) {
        a.extend_from_slice(b);
        return;
    }
    if b.len() <= 4 {
        for &e in b {
            if let Err(p) = a.binary_search(&e) {
                a.insert(p, e);
            }
        }
        return;
    }
    union_into(a, b, scratch);
    std::mem::swap(a, scratch);
}

/// The Jacobian pattern of every output of `program` with respect to its inputs.
pub(crate) fn detect(program: &Program) -> JacobianPattern {
    let len = program.len();
    let n = program.inputs();
    let m = program.output_count();
    let first = n + 1;
    let kinds = kinds(program, first);

    // Backward: the nodes that reach an output through operations that depend on their
    // operands, and of each such node its distinct operands (node `i`'s are
    // `op_list[op_ptr[i + 1 − first]..op_ptr[i − first]]`, laid out back to front); the
    // readers of each set. A node's reach is final when the pass gets to it.
    let mut reach = vec![false; len];
    for k in 0..m {
        if let Some(o) = program.output_node(k) {
            reach[o as usize] = true;
        }
    }
    let mut readers = vec![0u32; len];
    let mut op_ptr: Vec<u32> = vec![0; len - first + 1];
    let mut op_list: Vec<u32> = Vec::with_capacity(2 * (len - first));
    for i in (first..len).rev() {
        let kind = kinds[i];
        if reach[i] && kind.depends() {
            let start = op_list.len();
            match kind {
                Kind::Scalar(_) => op_list.extend(program.node_operands(i).into_iter().flatten()),
                _ => op_list.extend(operands(program, i, kind)),
            }
            let ops = &mut op_list[start..];
            if ops.len() > 1 {
                ops.sort_unstable();
                let mut kept = 1;
                for t in 1..ops.len() {
                    if ops[t] != ops[kept - 1] {
                        ops[kept] = ops[t];
                        kept += 1;
                    }
                }
                op_list.truncate(start + kept);
            }
            for &a in &op_list[start..] {
                reach[a as usize] = true;
                readers[a as usize] += 1;
            }
        }
        op_ptr[i - first] = op_list.len() as u32;
    }

    // The rows of each output node (several outputs may be one node).
    let mut rows_of: Vec<(u32, u32)> = (0..m)
        .filter_map(|k| program.output_node(k).map(|o| (o, k as u32)))
        .collect();
    rows_of.sort_unstable();
    let mut next_row = 0;
    // Row `k`'s columns: `flat[spans[k].0..spans[k].1]`.
    let mut spans = vec![(0usize, 0usize); m];
    let mut flat: Vec<u32> = Vec::new();
    let mut emit = |node: usize, set: &[u32], next_row: &mut usize, flat: &mut Vec<u32>| {
        while *next_row < rows_of.len() && (rows_of[*next_row].0 as usize) < node {
            *next_row += 1;
        }
        while *next_row < rows_of.len() && rows_of[*next_row].0 as usize == node {
            let k = rows_of[*next_row].1 as usize;
            spans[k] = (flat.len(), flat.len() + set.len());
            flat.extend_from_slice(set);
            *next_row += 1;
        }
    };

    let mut sets = Sets {
        slot: vec![NONE; len],
        pool: Vec::new(),
        free: Vec::new(),
        readers,
        vars: (0..n as u32).collect(),
    };
    // Outputs that are inputs.
    for j in 1..first {
        emit(j, &[(j - 1) as u32], &mut next_row, &mut flat);
    }
    let mut scratch = Vec::new();
    for i in first..len {
        let ops = &op_list[op_ptr[i - first + 1] as usize..op_ptr[i - first] as usize];
        if ops.is_empty() {
            // Depends on nothing (or reaches no output): no set.
            continue;
        }
        // Take over the largest set this node is the last reader of; else a fresh buffer.
        let base = ops
            .iter()
            .copied()
            .filter(|&a| sets.readers[a as usize] == 1 && sets.slot[a as usize] != NONE)
            .max_by_key(|&a| sets.get(a).len());
        let s = match base {
            Some(a) => {
                let s = sets.slot[a as usize];
                sets.slot[a as usize] = NONE;
                s
            }
            None => sets.alloc(),
        };
        let mut set = std::mem::take(&mut sets.pool[s as usize]);
        for &a in ops {
            if Some(a) != base {
                merge_into(&mut set, sets.get(a), &mut scratch);
            }
        }
        emit(i, &set, &mut next_row, &mut flat);
        sets.pool[s as usize] = set;
        if sets.readers[i] > 0 {
            sets.slot[i] = s;
        } else {
            sets.pool[s as usize].clear();
            sets.free.push(s);
        }
        for &a in ops {
            sets.read(a);
        }
    }

    let mut row_ptr = Vec::with_capacity(m + 1);
    row_ptr.push(0);
    let mut col_idx = Vec::with_capacity(flat.len());
    for &(a, b) in &spans {
        col_idx.extend(flat[a..b].iter().map(|&j| j as usize));
        row_ptr.push(col_idx.len());
    }
    JacobianPattern::from_csr(m, n, row_ptr, col_idx)
}
