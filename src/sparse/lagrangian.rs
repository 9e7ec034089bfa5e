//! Hessians of Lagrangians `σ∇²f(x) + Σ λᵢ∇²gᵢ(x)`, for constrained (interior-point) solvers.
//!
//! `f` and the constraints `g` are recorded together as one function of `(x, σ, λ)` in
//! which `σ` and `λ` are parameters: they carry no tangent and no dependence, so the joint
//! pattern is the union of the patterns of `f` and every `gᵢ`, computed once, and new
//! multipliers cost nothing more than a new point.

use crate::reverse::Var;
use crate::sparse::plan::{build, PreparedSparseHessian, SparseOptions};
use crate::sparse::SparseHessian;

type Joint<'f> = Box<dyn FnMut(&[Var<f64>]) -> Var<f64> + 'f>;

/// A Lagrangian Hessian prepared for repeated use: made by [`prepare_lagrangian`].
///
/// ```
/// // min x₀x₁ subject to x₀² + x₁² = 1, x₀x₁² ≥ 0.
/// let f = |x: &[mixad::reverse::Var<f64>]| x[0] * x[1];
/// let g = |x: &[mixad::reverse::Var<f64>]| vec![x[0] * x[0] + x[1] * x[1], x[0] * x[1] * x[1]];
/// let mut plan = mixad::sparse::prepare_lagrangian(f, g, &[0.5, 0.5], 2, Default::default());
/// let h = plan.hessian(&[1.0, 2.0], 1.0, &[3.0, 0.5]);
/// // σ·[[0,1],[1,0]] + 3·[[2,0],[0,2]] + 0.5·[[0, 2x₁],[2x₁, 2x₀]]
/// assert_eq!((h.get(0, 0), h.get(1, 0), h.get(1, 1)), (6.0, 3.0, 7.0));
/// ```
pub struct PreparedLagrangianHessian<'f> {
    plan: PreparedSparseHessian<Joint<'f>>,
    n: usize,
    m: usize,
    inputs: Vec<f64>,
    grad: Vec<f64>,
}

/// The sparse Hessian of the Lagrangian `σ∇²f(x) + Σ λᵢ∇²gᵢ(x)` (lower triangle, the joint
/// pattern of `f` and every constraint).
///
/// ```
/// let f = |x: &[mixad::reverse::Var<f64>]| x[0] * x[0] * x[0];
/// let g = |x: &[mixad::reverse::Var<f64>]| vec![x[0] * x[1]];
/// let h = mixad::sparse::lagrangian_hessian(f, g, &[2.0, 1.0], 0.5, &[4.0]);
/// assert_eq!((h.get(0, 0), h.get(1, 0), h.get(1, 1)), (6.0, 4.0, 0.0));
/// ```
///
/// An empty `x` gives the empty `0 × 0` Hessian.
///
/// # Panics
/// If `g` returns a different number of constraints than `lambda` has.
pub fn lagrangian_hessian<F, G>(f: F, g: G, x: &[f64], sigma: f64, lambda: &[f64]) -> SparseHessian
where
    F: FnMut(&[Var<f64>]) -> Var<f64>,
    G: FnMut(&[Var<f64>]) -> Vec<Var<f64>>,
{
    prepare_lagrangian(f, g, x, lambda.len(), SparseOptions::default()).hessian(x, sigma, lambda)
}

/// Records the Lagrangian of `f` and the `m` constraints `g` at `x`, detects the joint
/// pattern and colours it (see [`PreparedLagrangianHessian`]).
///
/// An empty `x` (constraints and objective of no variables) gives a plan whose Hessian is
/// the empty `0 × 0` matrix at every (empty) point and multipliers.
///
/// # Panics
/// If an option is out of range (see [`crate::sparse::prepare`]), or `g` returns other than
/// `m` constraints.
pub fn prepare_lagrangian<'f, F, G>(
    mut f: F,
    mut g: G,
    x: &[f64],
    m: usize,
    options: SparseOptions,
) -> PreparedLagrangianHessian<'f>
where
    F: FnMut(&[Var<f64>]) -> Var<f64> + 'f,
    G: FnMut(&[Var<f64>]) -> Vec<Var<f64>> + 'f,
{
    let n = x.len();
    let joint: Joint<'f> = Box::new(move |z: &[Var<f64>]| {
        let (x, p) = z.split_at(n);
        let constraints = g(x);
        assert_eq!(
            constraints.len(),
            m,
            "lagrangian_hessian: g returned {} constraints, expected {m}",
            constraints.len()
        );
        constraints
            .into_iter()
            .zip(&p[1..])
            .fold(p[0] * f(x), |l, (gi, &lambda)| l + lambda * gi)
    });
    // Record with σ = 1 and λ = 1; they are inputs, so any values replay.
    let mut inputs = x.to_vec();
    inputs.extend(std::iter::repeat_n(1.0, m + 1));
    let plan = build(joint, &inputs, n, options, "lagrangian_hessian");
    PreparedLagrangianHessian {
        plan,
        n,
        m,
        inputs,
        grad: vec![0.0; n],
    }
}

impl PreparedLagrangianHessian<'_> {
    /// `σ∇²f(x) + Σ λᵢ∇²gᵢ(x)`.
    ///
    /// # Panics
    /// If `x` or `lambda` has a different length than at preparation.
    pub fn hessian(&mut self, x: &[f64], sigma: f64, lambda: &[f64]) -> SparseHessian {
        let mut values = Vec::new();
        self.values_into(x, sigma, lambda, &mut values);
        SparseHessian::new(self.plan.shared_pattern(), values)
    }

    /// Writes the Hessian's values, in the order of
    /// [`PreparedLagrangianHessian::pattern`], into `values`; allocates nothing once warm.
    ///
    /// # Panics
    /// If `x` or `lambda` has a different length than at preparation.
    pub fn values_into(&mut self, x: &[f64], sigma: f64, lambda: &[f64], values: &mut Vec<f64>) {
        let (n, m) = (self.n, self.m);
        assert_eq!(
            x.len(),
            n,
            "lagrangian_hessian: prepared with {n} variables, called with {}",
            x.len()
        );
        assert_eq!(
            lambda.len(),
            m,
            "lagrangian_hessian: prepared with {m} constraints, called with {} multipliers",
            lambda.len()
        );
        self.inputs[..n].copy_from_slice(x);
        self.inputs[n] = sigma;
        self.inputs[n + 1..].copy_from_slice(lambda);
        self.plan.evaluate(&self.inputs, &mut self.grad, values);
    }

    /// The joint pattern of `f` and the constraints: the order of the values.
    pub fn pattern(&self) -> &crate::sparse::SparsityPattern {
        self.plan.pattern()
    }

    /// Colours of the joint pattern: Hessian-vector products per point.
    pub fn colour_count(&self) -> usize {
        self.plan.colour_count()
    }
}
