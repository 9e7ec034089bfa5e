//! Reverse over forward, translated into forward over forward: an inner forward-mode call
//! ([`crate::nested`]) made on reverse variables becomes one tape node per output, whose
//! partials come from a forward-over-forward evaluation instead of taping the dual
//! arithmetic.

use super::tape::with_tape;
use super::{TapeScalar, Var};
use crate::chain::value_is_nan;
use crate::forward::inner::derivatives_by_forward;
use crate::forward::tag::fresh_tag;
use crate::forward::width::{lanes_for, with_lanes};
use crate::forward::{Dual, DualVec};
use crate::Function;

/// Reverse mode's version: `∇ₓ g` (or `∇ₓ g·v`) as tape nodes.
///
/// For each output (each `∂g/∂xᵢ`, or the one directional derivative), its value and its
/// partials with respect to every `z = (x, params)` are computed at `T` by forward over
/// forward (`Dual<DualVec<T, N>>`, `N` chosen from `z`'s length: the dual seeds `eᵢ` or
/// `v`, the lanes seed `z`), then
/// recorded as one linear combination of the operands. For a direction, the partials with
/// respect to `v` are `∇ₓ g`, read from the same evaluations. A recording that logs a
/// replayable program tapes the inner call instead, since a replay cannot re-run generic
/// code.
pub(crate) fn translated_derivatives<T: TapeScalar, G: Function + ?Sized>(
    g: &G,
    x: &[Var<T>],
    params: &[Var<T>],
    direction: Option<&[Var<T>]>,
) -> Vec<Var<T>> {
    if with_tape::<T, _>(|t| t.is_logging()) {
        return derivatives_by_forward(g, x, params, direction);
    }
    let lanes = lanes_for(x.len() + params.len());
    with_lanes!(lanes, N => translated_in_lanes::<N, T, G>(g, x, params, direction))
}

/// [`translated_derivatives`] with `LANES` entries of `z` per evaluation.
fn translated_in_lanes<const LANES: usize, T: TapeScalar, G: Function + ?Sized>(
    g: &G,
    x: &[Var<T>],
    params: &[Var<T>],
    direction: Option<&[Var<T>]>,
) -> Vec<Var<T>> {
    let n = x.len();
    let z: Vec<Var<T>> = x.iter().chain(params).copied().collect();
    let (inner, outer) = (fresh_tag(), fresh_tag());
    let mut inputs: Vec<Dual<DualVec<T, LANES>>> = z
        .iter()
        .map(|v| {
            Dual::tagged(
                DualVec::tagged(v.primal_value(), [T::zero(); LANES], inner),
                DualVec::tagged(T::zero(), [T::zero(); LANES], inner),
                outer,
            )
        })
        .collect();
    // One output per seed of the dual part: eᵢ for a gradient, v for a directional one.
    let seeds: Vec<Vec<T>> = match direction {
        None => (0..n)
            .map(|i| {
                (0..n)
                    .map(|k| if k == i { T::one() } else { T::zero() })
                    .collect()
            })
            .collect(),
        Some(v) => vec![v.iter().map(|d| d.primal_value()).collect()],
    };
    let mut operands = z.clone();
    if let Some(v) = direction {
        operands.extend_from_slice(v);
    }
    let mut partials = vec![T::zero(); operands.len()];
    let mut out = Vec::with_capacity(seeds.len());
    for seed in &seeds {
        for (input, &s) in inputs.iter_mut().zip(seed) {
            input.tangent.value = s;
        }
        let mut value = T::zero();
        for start in (0..z.len()).step_by(LANES) {
            let end = (start + LANES).min(z.len());
            for (lane, input) in inputs[start..end].iter_mut().enumerate() {
                input.value.tangents[lane] = T::one();
            }
            let r = g.eval(&inputs);
            value = r.tangent.value;
            partials[start..end].copy_from_slice(&r.tangent.tangents[..end - start]);
            if value_is_nan(&r.value.value) {
                // The NaN convention (see `crate::chain`): NaN with NaN partials.
                value = T::nan_everywhere();
                partials.fill(T::nan_everywhere());
            }
            if direction.is_some() {
                // ∂(∇g·v)/∂vₖ = ∂g/∂xₖ, for the x lanes of this chunk.
                for k in start..end.min(n) {
                    partials[z.len() + k] = r.value.tangents[k - start];
                }
            }
            for input in &mut inputs[start..end] {
                input.value.tangents = [T::zero(); LANES];
            }
        }
        out.push(Var::linear_combination(value, &operands, &partials));
    }
    out
}
