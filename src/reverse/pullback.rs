//! [`Pullback`]: a recorded `f: Rⁿ → Rᵐ` kept so cotangents can be pulled back many times.

use crate::chain::{nan_vjp, Chain};
use crate::reverse::node::{copy_blocks, copy_segment, rebase, sweep_with_blocks, Node, TapeBlock};
use crate::reverse::recording::Session;
use crate::reverse::tape::TapeScalar;
use crate::reverse::Var;

/// The pullback of `f` at a point: maps any cotangent `ȳ ∈ Rᵐ` to `x̄ = ȳᵀ J ∈ Rⁿ`
/// without re-running `f`. Made by [`pullback`].
#[derive(Clone, Debug)]
pub struct Pullback<S> {
    /// Node 0 is the sink; nodes `1..=inputs` are the inputs.
    nodes: Vec<Node<S>>,
    blocks: Vec<TapeBlock<S>>,
    inputs: usize,
    outputs: Vec<u32>,
    /// The outputs' values (for the NaN convention).
    values: Vec<S>,
}

impl<S: TapeScalar> Pullback<S> {
    /// Number of inputs `n`.
    pub fn input_len(&self) -> usize {
        self.inputs
    }

    /// Number of outputs `m`.
    pub fn output_len(&self) -> usize {
        self.outputs.len()
    }

    /// `ȳᵀ J`: one backward sweep over the kept recording.
    ///
    /// # Panics
    /// If `ybar` does not have one entry per output.
    pub fn apply(&self, ybar: &[S]) -> Vec<S> {
        assert_eq!(
            ybar.len(),
            self.outputs.len(),
            "Pullback::apply: the cotangent has {} entries but f has {} outputs",
            ybar.len(),
            self.outputs.len()
        );
        let mut adjoints = vec![S::zero(); self.nodes.len()];
        for (&y, &w) in self.outputs.iter().zip(ybar) {
            adjoints[y as usize] += w;
        }
        sweep_with_blocks(
            &self.nodes,
            self.inputs + 1,
            &mut adjoints,
            &self.blocks,
            |b| b.first_out as usize,
            |_, b, adjoints| b.pull(adjoints),
        );
        let mut xbar = adjoints[1..=self.inputs].to_vec();
        nan_vjp(&self.values, ybar, &mut xbar);
        xbar
    }
}

/// Records `f: Rⁿ → Rᵐ` at `x`; returns `f(x)` and its [`Pullback`].
///
/// ```
/// use num_traits::Float;
/// let (y, pb) = mixad::reverse::pullback(|x| vec![x[0] * x[1], x[1].powi(2)], &[2.0, 3.0]);
/// assert_eq!(y, vec![6.0, 9.0]);
/// assert_eq!(pb.apply(&[1.0, 0.0]), vec![3.0, 2.0]);
/// assert_eq!(pb.apply(&[0.0, 1.0]), vec![0.0, 6.0]);
/// ```
pub fn pullback<S: TapeScalar, F, R>(f: F, x: &[S]) -> (Vec<S>, Pullback<S>)
where
    F: FnOnce(&[Var<S>]) -> R,
    R: AsRef<[Var<S>]>,
{
    let (session, out) = Session::<S>::record_outputs("reverse::pullback", f, x);
    let out = out.as_ref();
    let start = session.start();
    session.finish(|tape, _| {
        let nodes = copy_segment(&tape.nodes, start);
        let pullback = Pullback {
            nodes,
            blocks: copy_blocks(&tape.blocks, start),
            inputs: x.len(),
            outputs: out.iter().map(|y| rebase(y.index(), start)).collect(),
            values: out.iter().map(|y| y.primal()).collect(),
        };
        (pullback.values.clone(), pullback)
    })
}
