//! The node layout of a tape and the reverse sweep over it.
//!
//! A [`Node`] holds the indices of its (at most two) operands and the local partials of
//! its value with respect to them: its pullback. Index 0 is the *sink*: constants point
//! there, and whatever flows into it is discarded, so every node has exactly two operand
//! slots and the sweep has no branches on arity. At `f64` a node is 24 bytes. Block
//! operations ([`TapeBlock`]) sit beside the nodes and are pulled back when the sweep
//! passes their outputs. The live tape ([`crate::reverse::Tape`]), a standalone
//! [`crate::reverse::Pullback`] and a replayed program all sweep with these functions.

use crate::rules::linalg::{BlockOp, Saved};
use crate::Scalar;

/// One recorded operation: operand indices and the partials with respect to them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<T> {
    pub(crate) args: [u32; 2],
    pub(crate) partials: [T; 2],
}

impl<T: Scalar> Node<T> {
    /// A node with no operands: an input, or the sink.
    #[inline(always)]
    pub(crate) fn leaf() -> Self {
        Node {
            args: [0, 0],
            partials: [T::zero(), T::zero()],
        }
    }
}

/// A block operation on the tape (see [`crate::rules::linalg`]): its outputs are the
/// `op.output_len()` leaf nodes from `first_out`; the reverse sweep applies its pullback
/// when it reaches them, adding into the adjoints of `args`.
#[derive(Clone, Debug)]
pub(crate) struct TapeBlock<T> {
    pub(crate) op: BlockOp,
    /// Node index per input entry (0 for a constant).
    pub(crate) args: Vec<u32>,
    pub(crate) saved: Saved<T>,
    pub(crate) first_out: u32,
}

impl<T: Scalar> TapeBlock<T> {
    /// Adds the block's pullback of the adjoints of its outputs into `adjoints`.
    pub(crate) fn pull(&self, adjoints: &mut [T]) {
        pull_block(
            &self.op,
            &self.saved,
            self.first_out,
            self.args.iter().copied(),
            adjoints,
        );
    }
}

/// Applies a block's pullback: reads the adjoints of the outputs (from `first_out`), adds
/// `Jᵀȳ` into the adjoints of `args`. Skipped when every output adjoint is zero.
pub(crate) fn pull_block<T: Scalar>(
    op: &BlockOp,
    saved: &Saved<T>,
    first_out: u32,
    args: impl Iterator<Item = u32>,
    adjoints: &mut [T],
) {
    let out = first_out as usize..first_out as usize + op.output_len();
    if adjoints[out.clone()].iter().all(|a| a.is_exact_zero()) {
        return;
    }
    let mut xbar = vec![T::zero(); op.input_len()];
    op.pullback(saved, &adjoints[out], &mut xbar);
    for (a, g) in args.zip(xbar) {
        adjoints[a as usize] += g;
    }
}

/// The index a node of a segment starting at `start` gets in a standalone copy of the
/// segment (sink at 0, the segment's first node at 1).
#[inline(always)]
pub(crate) fn rebase(index: u32, start: u32) -> u32 {
    if index == 0 {
        0
    } else {
        index - start + 1
    }
}

/// A standalone copy of the segment of `nodes` starting at `start`: sink at 0, indices
/// rebased.
pub(crate) fn copy_segment<T: Scalar>(nodes: &[Node<T>], start: u32) -> Vec<Node<T>> {
    let segment = &nodes[start as usize..];
    let mut copy = Vec::with_capacity(segment.len() + 1);
    copy.push(Node::leaf());
    copy.extend(segment.iter().map(|n| Node {
        args: [rebase(n.args[0], start), rebase(n.args[1], start)],
        partials: n.partials,
    }));
    copy
}

/// The blocks of a segment starting at `start`, indices rebased as [`copy_segment`] does.
pub(crate) fn copy_blocks<T: Scalar>(blocks: &[TapeBlock<T>], start: u32) -> Vec<TapeBlock<T>> {
    blocks
        .iter()
        .filter(|b| b.first_out >= start)
        .map(|b| TapeBlock {
            op: b.op,
            args: b.args.iter().map(|&a| rebase(a, start)).collect(),
            saved: b.saved.clone(),
            first_out: rebase(b.first_out, start),
        })
        .collect()
}

/// [`reverse_sweep`] over `nodes` from the end back to `first`, applying each block's
/// pullback (`pull(index, block, adjoints)`) once the sweep has passed its outputs.
/// `blocks` are in node order; `first_out` gives a block's first output node.
#[inline]
pub(crate) fn sweep_with_blocks<T: Scalar, B>(
    nodes: &[Node<T>],
    first: usize,
    adjoints: &mut [T],
    blocks: &[B],
    first_out: impl Fn(&B) -> usize,
    mut pull: impl FnMut(usize, &B, &mut [T]),
) {
    let mut top = nodes.len();
    for (k, b) in blocks.iter().enumerate().rev() {
        let start = first_out(b);
        if start < first {
            break;
        }
        reverse_sweep(&nodes[..top], start, adjoints);
        pull(k, b, adjoints);
        top = start;
    }
    reverse_sweep(&nodes[..top], first, adjoints);
}

/// Propagates adjoints from the end of `nodes` back to node `first`.
///
/// A zero adjoint is skipped, so a node whose value does not reach the output contributes
/// nothing even if its partials are infinite or NaN.
#[inline]
pub(crate) fn reverse_sweep<T: Scalar>(nodes: &[Node<T>], first: usize, adjoints: &mut [T]) {
    assert!(adjoints.len() >= nodes.len(), "adjoint buffer too short");
    for i in (first..nodes.len()).rev() {
        let a = adjoints[i];
        if a.is_exact_zero() {
            continue;
        }
        let node = &nodes[i];
        let [i0, i1] = node.args;
        adjoints[i0 as usize] += node.partials[0] * a;
        adjoints[i1 as usize] += node.partials[1] * a;
    }
}
