//! Custom rules: derivatives supplied by the user for code mixad cannot see into.
//!
//! Foreign functions (`extern "C"`), code written only for `f64`, and black-box solvers
//! cannot run on AD numbers. A [`CustomRule`] wraps such code with its derivatives, given
//! in one of four ways:
//!
//! | constructor | the user gives | orders available |
//! |---|---|---|
//! | [`CustomRule::unary`] | `f, f′, f″, …` as `fn(f64) -> f64` | as many as given |
//! | [`CustomRule::scalar`] | `g: Rⁿ → R` and its derivative tensors up to a stated order | the stated order |
//! | [`CustomRule::generic`] | the value at `f64`, the gradient written generically (a [`VectorFunction`] `x ↦ ∇g(x)`) | up to [`GENERIC_MAX_ORDER`] |
//! | [`CustomRule::vector`] | `F: Rⁿ → Rᵐ` with a pullback and/or pushforward, optionally a second-order rule or a generic pullback (a [`VectorFunction`] `(x, ȳ) ↦ J(x)ᵀȳ`) | 1, 2, or up to [`GENERIC_MAX_ORDER`] |
//!
//! The same rule then works at every scalar type: `f64`, forward duals, reverse variables,
//! Hessians, HVPs and any nesting. Internally a rule is a tower of derivative tensors
//! `DᵏF(x)` at `f64`; an AD number `S` over a primal `P` takes its value from level `k` at
//! `P` and its partials from level `k + 1` at `P`, so each level of nesting asks for one
//! more derivative. When a computation needs an order the rule does not provide (a Hessian
//! through a first-order rule), mixad panics with a message naming the rule and the
//! missing order, at the call of the rule (or, for [`crate::hessian()`], before any sweep);
//! it never substitutes zero or constant partials.
//!
//! ```
//! use mixad::rules::CustomRule;
//! // An opaque f64 function with its first and second derivatives.
//! let cube = CustomRule::unary("cube", &[|x| x * x * x, |x| 3.0 * x * x, |x| 6.0 * x]);
//! let g = mixad::gradient(|x| cube.call1(x[0]) * x[1], &[2.0, 5.0]);
//! assert_eq!(g, vec![60.0, 8.0]);
//! let h = mixad::hessian(|x| cube.call1(x[0]), &[2.0]);
//! assert_eq!(h[(0, 0)], 12.0);
//! ```

use std::fmt;
use std::sync::Arc;

use super::Interaction;
use crate::forward::Dual;
use crate::{Scalar, VectorFunction};

/// The highest derivative order a rule with a generic derivative provides: the generic
/// code is differentiated by nesting forward duals up to this depth at `f64`.
pub const GENERIC_MAX_ORDER: usize = 4;

type ValueFn = dyn Fn(&[f64], &mut [f64]) + Send + Sync;
type LevelFn = dyn Fn(&[f64], usize, &mut [f64]) + Send + Sync;
type PullbackFn = dyn Fn(&[f64], &[f64], &mut [f64]) + Send + Sync;
type SecondOrderFn = dyn Fn(&[f64], &[f64], &[f64], &mut [f64]) + Send + Sync;

/// How a rule's derivative tensors are computed at `f64`.
enum Source {
    /// `f, f′, f″, …` of a one-argument function.
    Unary(Vec<fn(f64) -> f64>),
    /// Level `k` tensor written by the user directly.
    Levels(Box<LevelFn>),
    /// Value at `f64`, derivatives from a generic pullback (nested duals).
    Generic {
        value: Box<ValueFn>,
        pullback: Box<dyn ErasedPullback>,
    },
    /// Value, first-order maps, optional second-order map.
    Vector {
        value: Box<ValueFn>,
        pullback: Option<Box<PullbackFn>>,
        pushforward: Option<Box<PullbackFn>>,
        second_order: Option<Box<SecondOrderFn>>,
    },
}

struct Inner {
    name: String,
    inputs: usize,
    outputs: usize,
    /// Highest derivative order available.
    order: usize,
    source: Source,
}

/// A user-supplied differentiable primitive; see the [module docs](self).
///
/// Cheap to clone (shared). Call it on any scalar type with [`CustomRule::call`],
/// [`CustomRule::call1`], [`CustomRule::call2`] or, for several outputs,
/// [`CustomRule::call_vec`].
#[derive(Clone)]
pub struct CustomRule {
    inner: Arc<Inner>,
}

// A rule is immutable once built, so a panic inside it (such as a missing order) leaves
// nothing half-updated for code that catches the panic; user closures with interior
// mutability are the user's to keep consistent, as with any callback.
impl std::panic::UnwindSafe for CustomRule {}
impl std::panic::RefUnwindSafe for CustomRule {}

impl fmt::Debug for CustomRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CustomRule({:?}: R^{} -> R^{}, derivatives to order {})",
            self.inner.name, self.inner.inputs, self.inner.outputs, self.inner.order
        )
    }
}

impl CustomRule {
    /// The interaction fact of every custom rule: mixad cannot see into the user's code,
    /// so each output depends on every input and every pair of inputs may interact.
    /// (Recorded as a chain of two-operand nodes, each nonlinear in both operands, this
    /// makes every pair of the call's inputs interact.)
    pub const INTERACTION: Interaction = Interaction::ALL;

    fn from_inner(inner: Inner) -> Self {
        assert!(
            inner.inputs > 0 && inner.outputs > 0,
            "custom rule `{}`: needs at least one input and one output",
            inner.name
        );
        CustomRule {
            inner: Arc::new(inner),
        }
    }

    /// A one-argument rule from its value and derivatives: `derivatives = [f, f′, f″, …]`.
    /// Derivatives up to order `derivatives.len() - 1` are available.
    ///
    /// ```
    /// // exp written by hand, to third order.
    /// let e = mixad::rules::CustomRule::unary("exp", &[f64::exp, f64::exp, f64::exp, f64::exp]);
    /// assert_eq!(mixad::forward::second_derivative(|x| e.call1(x), 0.0), 1.0);
    /// ```
    ///
    /// # Panics
    /// If `derivatives` is empty.
    pub fn unary(name: &str, derivatives: &[fn(f64) -> f64]) -> Self {
        assert!(
            !derivatives.is_empty(),
            "custom rule `{name}`: give at least the function itself"
        );
        CustomRule::from_inner(Inner {
            name: name.to_owned(),
            inputs: 1,
            outputs: 1,
            order: derivatives.len() - 1,
            source: Source::Unary(derivatives.to_vec()),
        })
    }

    /// A rule for `g: Rⁿ → R` (`n = inputs`) from its derivative tensors up to `order`.
    ///
    /// `levels(x, k, out)` writes the `k`-th derivative tensor at `x` into `out`
    /// (`nᵏ` entries, row-major: `out[(j₁·n + j₂)·n + …] = ∂ᵏg/∂x_{j₁}∂x_{j₂}…`); mixad
    /// asks only for `k ≤ order`.
    ///
    /// ```
    /// // g(a, b) = a·b², with gradient and Hessian.
    /// let g = mixad::rules::CustomRule::scalar("ab2", 2, 2, |x, k, out| {
    ///     let (a, b) = (x[0], x[1]);
    ///     match k {
    ///         0 => out[0] = a * b * b,
    ///         1 => out.copy_from_slice(&[b * b, 2.0 * a * b]),
    ///         _ => out.copy_from_slice(&[0.0, 2.0 * b, 2.0 * b, 2.0 * a]),
    ///     }
    /// });
    /// let h = mixad::hessian(|x| g.call2(x[0], x[1]), &[3.0, 2.0]);
    /// assert_eq!((h[(0, 1)], h[(1, 1)]), (4.0, 6.0));
    /// ```
    pub fn scalar(
        name: &str,
        inputs: usize,
        order: usize,
        levels: impl Fn(&[f64], usize, &mut [f64]) + Send + Sync + 'static,
    ) -> Self {
        CustomRule::from_inner(Inner {
            name: name.to_owned(),
            inputs,
            outputs: 1,
            order,
            source: Source::Levels(Box::new(levels)),
        })
    }

    /// A rule for `g: Rⁿ → R` whose value is opaque `f64` code and whose gradient is
    /// written generically, as the [`VectorFunction`] `x ↦ ∇g(x)` (`n` inputs, `n`
    /// outputs): derivatives to [`GENERIC_MAX_ORDER`] come from differentiating it.
    ///
    /// ```
    /// use mixad::rules::CustomRule;
    /// use mixad::{Scalar, VectorFunction};
    /// use num_traits::Float;
    /// /// ∇ sin = cos.
    /// struct SinPrime;
    /// impl VectorFunction for SinPrime {
    ///     fn eval<T: Scalar>(&self, x: &[T]) -> Vec<T> { vec![Float::cos(x[0])] }
    /// }
    /// let sin = CustomRule::generic("sin", 1, |x| x[0].sin(), SinPrime);
    /// let d3 = mixad::forward::derivative(
    ///     |x| mixad::forward::second_derivative(|y| sin.call1(y), x), 0.5);
    /// assert!((d3 + 0.5f64.cos()).abs() < 1e-15);
    /// ```
    ///
    /// # Panics
    /// When differentiated, if `gradient` returns other than `inputs` entries.
    pub fn generic<G: VectorFunction + Send + Sync + 'static>(
        name: &str,
        inputs: usize,
        value: impl Fn(&[f64]) -> f64 + Send + Sync + 'static,
        gradient: G,
    ) -> Self {
        CustomRule::from_inner(Inner {
            name: name.to_owned(),
            inputs,
            outputs: 1,
            order: GENERIC_MAX_ORDER,
            source: Source::Generic {
                value: Box::new(move |x, y| y[0] = value(x)),
                pullback: Box::new(GradientAsPullback {
                    name: name.to_owned(),
                    gradient,
                }),
            },
        })
    }

    /// Starts a rule for `F: Rⁿ → Rᵐ` (`n = inputs`, `m = outputs`) from its value
    /// `value(x, y)`; add derivatives with the returned builder.
    ///
    /// ```
    /// // F(a, b) = (a + b, a·b) with its pullback J(x)ᵀȳ.
    /// let f = mixad::rules::CustomRule::vector("sum_prod", 2, 2, |x, y| {
    ///     y[0] = x[0] + x[1];
    ///     y[1] = x[0] * x[1];
    /// })
    /// .pullback(|x, yb, xb| {
    ///     xb[0] = yb[0] + yb[1] * x[1];
    ///     xb[1] = yb[0] + yb[1] * x[0];
    /// })
    /// .build();
    /// let g = mixad::gradient(|x| { let y = f.call_vec(x); y[0] * y[1] }, &[2.0, 3.0]);
    /// // (a + b)·a·b: ∂/∂a = ab + (a + b)b
    /// assert_eq!(g, vec![6.0 + 15.0, 6.0 + 10.0]);
    /// ```
    pub fn vector(
        name: &str,
        inputs: usize,
        outputs: usize,
        value: impl Fn(&[f64], &mut [f64]) + Send + Sync + 'static,
    ) -> VectorRuleBuilder {
        VectorRuleBuilder {
            name: name.to_owned(),
            inputs,
            outputs,
            value: Box::new(value),
            pullback: None,
            pushforward: None,
            second_order: None,
        }
    }

    /// The name given at construction (used in error messages).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of inputs `n`.
    pub fn inputs(&self) -> usize {
        self.inner.inputs
    }

    /// Number of outputs `m`.
    pub fn outputs(&self) -> usize {
        self.inner.outputs
    }

    /// The highest derivative order the rule provides.
    pub fn order(&self) -> usize {
        self.inner.order
    }

    /// `g(x)` for a rule with one output, at any scalar type.
    ///
    /// # Panics
    /// If `x.len()` is not the rule's input count, the rule has several outputs, or the
    /// computation needs a derivative order the rule does not provide.
    pub fn call<S: Scalar>(&self, x: &[S]) -> S {
        assert_eq!(
            self.inner.outputs, 1,
            "custom rule `{}` has {} outputs: use call_vec",
            self.inner.name, self.inner.outputs
        );
        self.check_inputs(x.len());
        let mut out = [S::zero()];
        S::custom_level(self, 0, x, &mut out);
        out[0]
    }

    /// `g(x)` for a one-input, one-output rule.
    pub fn call1<S: Scalar>(&self, x: S) -> S {
        self.call(&[x])
    }

    /// `g(a, b)` for a two-input, one-output rule.
    pub fn call2<S: Scalar>(&self, a: S, b: S) -> S {
        self.call(&[a, b])
    }

    /// `F(x)`, all `m` outputs, at any scalar type.
    ///
    /// # Panics
    /// As [`CustomRule::call`] (any output count is accepted).
    pub fn call_vec<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        self.check_inputs(x.len());
        let mut out = vec![S::zero(); self.inner.outputs];
        S::custom_level(self, 0, x, &mut out);
        out
    }

    fn check_inputs(&self, got: usize) {
        assert_eq!(
            got, self.inner.inputs,
            "custom rule `{}` takes {} inputs but was called with {}",
            self.inner.name, self.inner.inputs, got
        );
    }

    /// Number of entries of the level-`k` tensor: `m·nᵏ`.
    pub(crate) fn level_len(&self, k: usize) -> usize {
        self.inner.outputs * self.inner.inputs.pow(k as u32)
    }

    /// Panics with the rule's name unless derivatives of order `k` are available;
    /// `context` says what asked for them.
    pub(crate) fn require_order(&self, k: usize, context: &str) {
        if k > self.inner.order {
            self.missing_order(k, context);
        }
    }

    #[cold]
    #[inline(never)]
    fn missing_order(&self, k: usize, context: &str) -> ! {
        let have = match self.inner.order {
            0 => "no derivatives".to_owned(),
            1 => "first derivatives only".to_owned(),
            o => format!("derivatives up to order {o}"),
        };
        panic!(
            "mixad: custom rule `{}` provides {have}, but {context} needs order {k}. Give the \
             rule higher derivatives (more functions to CustomRule::unary, a higher order to \
             CustomRule::scalar, a second-order rule to a vector rule) or a generic \
             derivative (CustomRule::generic, VectorRuleBuilder::generic_pullback)",
            self.inner.name
        )
    }

    /// Writes the level-`k` tensor `DᵏF(x)` at `f64` into `out` (`m·nᵏ` entries).
    pub(crate) fn level_f64(&self, x: &[f64], k: usize, out: &mut [f64]) {
        self.require_order(k, "this computation");
        debug_assert_eq!(out.len(), self.level_len(k));
        let n = self.inner.inputs;
        match &self.inner.source {
            Source::Unary(d) => out[0] = d[k](x[0]),
            Source::Levels(levels) => levels(x, k, out),
            Source::Generic { value, pullback } => {
                if k == 0 {
                    value(x, out)
                } else {
                    pullback.level(x, self.inner.outputs, k, out)
                }
            }
            Source::Vector {
                value,
                pullback,
                pushforward,
                second_order,
            } => match k {
                0 => value(x, out),
                1 => {
                    let m = self.inner.outputs;
                    if let Some(pb) = pullback {
                        let mut ybar = vec![0.0; m];
                        for i in 0..m {
                            ybar[i] = 1.0;
                            out[i * n..(i + 1) * n].fill(0.0);
                            pb(x, &ybar, &mut out[i * n..(i + 1) * n]);
                            ybar[i] = 0.0;
                        }
                    } else if let Some(pf) = pushforward {
                        let (mut v, mut col) = (vec![0.0; n], vec![0.0; m]);
                        for j in 0..n {
                            v[j] = 1.0;
                            col.fill(0.0);
                            pf(x, &v, &mut col);
                            v[j] = 0.0;
                            for i in 0..m {
                                out[i * n + j] = col[i];
                            }
                        }
                    }
                }
                _ => {
                    let second = second_order
                        .as_ref()
                        .expect("order checked: a vector rule of order 2 has a second-order map");
                    let m = self.inner.outputs;
                    let (mut ybar, mut v) = (vec![0.0; m], vec![0.0; n]);
                    let mut hv = vec![0.0; n];
                    for i in 0..m {
                        ybar[i] = 1.0;
                        for j2 in 0..n {
                            v[j2] = 1.0;
                            hv.fill(0.0);
                            second(x, &ybar, &v, &mut hv);
                            v[j2] = 0.0;
                            for (j1, h) in hv.iter().enumerate() {
                                out[(i * n + j1) * n + j2] = *h;
                            }
                        }
                        ybar[i] = 0.0;
                    }
                }
            },
        }
    }
}

/// Adds derivatives to a vector rule started by [`CustomRule::vector`].
pub struct VectorRuleBuilder {
    name: String,
    inputs: usize,
    outputs: usize,
    value: Box<ValueFn>,
    pullback: Option<Box<PullbackFn>>,
    pushforward: Option<Box<PullbackFn>>,
    second_order: Option<Box<SecondOrderFn>>,
}

impl VectorRuleBuilder {
    /// The pullback (vector–Jacobian product): `pullback(x, ȳ, x̄)` writes `J(x)ᵀȳ` (the
    /// buffer arrives zeroed, so accumulating into it is also right).
    pub fn pullback(
        mut self,
        pullback: impl Fn(&[f64], &[f64], &mut [f64]) + Send + Sync + 'static,
    ) -> Self {
        self.pullback = Some(Box::new(pullback));
        self
    }

    /// The pushforward (Jacobian–vector product): `pushforward(x, ẋ, ẏ)` writes `J(x)ẋ`.
    pub fn pushforward(
        mut self,
        pushforward: impl Fn(&[f64], &[f64], &mut [f64]) + Send + Sync + 'static,
    ) -> Self {
        self.pushforward = Some(Box::new(pushforward));
        self
    }

    /// The second-order rule: `second_order(x, ȳ, v, out)` writes `∇²(ȳ·F)(x)·v`, the
    /// Hessian-vector product of the scalar function `ȳ·F`. With it the rule has
    /// derivatives to order 2 (Hessians, HVPs).
    pub fn second_order(
        mut self,
        hvp: impl Fn(&[f64], &[f64], &[f64], &mut [f64]) + Send + Sync + 'static,
    ) -> Self {
        self.second_order = Some(Box::new(hvp));
        self
    }

    /// A pullback written generically: derivatives to [`GENERIC_MAX_ORDER`] (it replaces
    /// the other derivative maps).
    ///
    /// The pullback is the [`VectorFunction`] `(x, ȳ) ↦ J(x)ᵀȳ`: it is evaluated on the
    /// `n + m` entries `[x₀, …, xₙ₋₁, ȳ₀, …, ȳₘ₋₁]` and returns the `n` entries of `x̄`
    /// (as [`crate::nested`] passes parameters after `x`). mixad differentiates it in `x`
    /// only; `ȳ` arrives as unit vectors.
    ///
    /// ```
    /// use mixad::rules::CustomRule;
    /// use mixad::{Scalar, VectorFunction};
    /// /// F(a, b) = (a·b, a/b): J(x)ᵀȳ = (ȳ₀b + ȳ₁/b, ȳ₀a − ȳ₁a/b²).
    /// struct ProdQuotPullback;
    /// impl VectorFunction for ProdQuotPullback {
    ///     fn eval<T: Scalar>(&self, z: &[T]) -> Vec<T> {
    ///         let (x, ybar) = z.split_at(2);
    ///         let (a, b) = (x[0], x[1]);
    ///         vec![ybar[0] * b + ybar[1] / b, ybar[0] * a - ybar[1] * a / (b * b)]
    ///     }
    /// }
    /// let f = CustomRule::vector("prod_quot", 2, 2, |x, y| {
    ///     y[0] = x[0] * x[1];
    ///     y[1] = x[0] / x[1];
    /// })
    /// .generic_pullback(ProdQuotPullback);
    /// // Σ F = ab + a/b: ∂²/∂b² = 2a/b³.
    /// let h = mixad::hessian(|x| { let y = f.call_vec(x); y[0] + y[1] }, &[3.0, 2.0]);
    /// assert_eq!(h[(1, 1)], 2.0 * 3.0 / 8.0);
    /// ```
    ///
    /// # Panics
    /// When differentiated, if `pullback` returns other than `n` entries.
    pub fn generic_pullback<G: VectorFunction + Send + Sync + 'static>(
        self,
        pullback: G,
    ) -> CustomRule {
        CustomRule::from_inner(Inner {
            name: self.name.clone(),
            inputs: self.inputs,
            outputs: self.outputs,
            order: GENERIC_MAX_ORDER,
            source: Source::Generic {
                value: self.value,
                pullback: Box::new(ConcatPullback {
                    name: self.name,
                    pullback,
                }),
            },
        })
    }

    /// The finished rule.
    pub fn build(self) -> CustomRule {
        let first = self.pullback.is_some() || self.pushforward.is_some();
        assert!(
            first || self.second_order.is_none(),
            "custom rule `{}`: a second-order rule needs a pullback or pushforward too",
            self.name
        );
        let order = match (first, self.second_order.is_some()) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        };
        CustomRule::from_inner(Inner {
            name: self.name,
            inputs: self.inputs,
            outputs: self.outputs,
            order,
            source: Source::Vector {
                value: self.value,
                pullback: self.pullback,
                pushforward: self.pushforward,
                second_order: self.second_order,
            },
        })
    }
}

/// A generic pullback behind a trait object: evaluates level `k ≥ 1` tensors by running
/// the pullback at `f64` nested in `k − 1` forward duals.
trait ErasedPullback: Send + Sync {
    fn level(&self, x: &[f64], outputs: usize, k: usize, out: &mut [f64]);
}

/// A pullback `x̄ = J(x)ᵀȳ` at any scalar type: what the derivative tensors of a rule with
/// a generic derivative are computed from. Implemented by the two adapters below, one per
/// shape of [`VectorFunction`] the user gives.
trait GenericPullback {
    /// Writes `J(x)ᵀ ȳ` into `xbar` (length `n`); `ybar` has length `m`.
    fn pullback<T: Scalar>(&self, x: &[T], ybar: &[T], xbar: &mut [T]);
}

/// Panics unless a user's generic derivative returned `want` entries.
fn check_len(name: &str, what: &str, got: usize, want: usize) {
    assert_eq!(
        got, want,
        "custom rule `{name}`: its generic {what} returned {got} entries but the rule has \
         {want} inputs"
    );
}

/// The gradient `x ↦ ∇g(x)` of a one-output rule, as the pullback `ȳ₀∇g(x)`.
struct GradientAsPullback<G> {
    name: String,
    gradient: G,
}

impl<G: VectorFunction> GenericPullback for GradientAsPullback<G> {
    fn pullback<T: Scalar>(&self, x: &[T], ybar: &[T], xbar: &mut [T]) {
        let grad = self.gradient.eval(x);
        check_len(&self.name, "gradient", grad.len(), xbar.len());
        for (out, g) in xbar.iter_mut().zip(grad) {
            *out = g * ybar[0];
        }
    }
}

impl<G: VectorFunction + Send + Sync> ErasedPullback for GradientAsPullback<G> {
    fn level(&self, x: &[f64], outputs: usize, k: usize, out: &mut [f64]) {
        generic_level(self, x, outputs, k, out)
    }
}

/// The pullback `(x, ȳ) ↦ J(x)ᵀȳ` of a vector rule, evaluated on `x` followed by `ȳ`.
struct ConcatPullback<G> {
    name: String,
    pullback: G,
}

impl<G: VectorFunction> GenericPullback for ConcatPullback<G> {
    fn pullback<T: Scalar>(&self, x: &[T], ybar: &[T], xbar: &mut [T]) {
        let z: Vec<T> = x.iter().chain(ybar).copied().collect();
        let result = self.pullback.eval(&z);
        check_len(&self.name, "pullback", result.len(), xbar.len());
        xbar.copy_from_slice(&result);
    }
}

impl<G: VectorFunction + Send + Sync> ErasedPullback for ConcatPullback<G> {
    fn level(&self, x: &[f64], outputs: usize, k: usize, out: &mut [f64]) {
        generic_level(self, x, outputs, k, out)
    }
}

/// A scalar type used to differentiate generic derivative code: `f64`, or a forward dual
/// over one (one seeded direction per nesting level).
trait Level: Scalar {
    /// `x` with direction `e_{seeds[l]}` on nesting level `l` (innermost first).
    fn lift(x: &[f64], seeds: &[usize]) -> Vec<Self>;
    /// The mixed derivative along every level's direction.
    fn pick(&self) -> f64;
}

impl Level for f64 {
    fn lift(x: &[f64], _seeds: &[usize]) -> Vec<Self> {
        x.to_vec()
    }
    fn pick(&self) -> f64 {
        *self
    }
}

impl<L: Level> Level for Dual<L> {
    fn lift(x: &[f64], seeds: &[usize]) -> Vec<Self> {
        let (last, inner) = seeds.split_last().expect("one seed per level");
        L::lift(x, inner)
            .into_iter()
            .enumerate()
            .map(|(j, v)| Dual::new(v, if j == *last { L::one() } else { L::zero() }))
            .collect()
    }
    fn pick(&self) -> f64 {
        self.tangent.pick()
    }
}

/// Level-`k` tensor of `F` from its generic pullback: for every output `i` and every
/// choice of the last `k − 1` indices, one pullback with `ȳ = eᵢ` at the nested type
/// seeded along those indices gives the first index's row.
fn generic_level<G: GenericPullback>(g: &G, x: &[f64], outputs: usize, k: usize, out: &mut [f64]) {
    match k {
        1 => generic_level_at::<f64, G>(g, x, outputs, k, out),
        2 => generic_level_at::<Dual<f64>, G>(g, x, outputs, k, out),
        3 => generic_level_at::<Dual<Dual<f64>>, G>(g, x, outputs, k, out),
        4 => generic_level_at::<Dual<Dual<Dual<f64>>>, G>(g, x, outputs, k, out),
        _ => unreachable!("order checked against GENERIC_MAX_ORDER"),
    }
}

fn generic_level_at<L: Level, G: GenericPullback>(
    g: &G,
    x: &[f64],
    outputs: usize,
    k: usize,
    out: &mut [f64],
) {
    let n = x.len();
    let combos = n.pow(k as u32 - 1);
    let mut seeds = vec![0usize; k - 1];
    let mut ybar = vec![L::zero(); outputs];
    let mut xbar = vec![L::zero(); n];
    for i in 0..outputs {
        ybar[i] = L::one();
        for c in 0..combos {
            // Digits of c (base n) are the indices j₂…j_k, j_k least significant.
            let mut rest = c;
            for s in seeds.iter_mut().rev() {
                *s = rest % n;
                rest /= n;
            }
            let xs = L::lift(x, &seeds);
            xbar.fill(L::zero());
            g.pullback(&xs, &ybar, &mut xbar);
            for (j1, v) in xbar.iter().enumerate() {
                out[(i * n + j1) * combos + c] = v.pick();
            }
        }
        ybar[i] = L::zero();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_levels_match_analytic_tensors() {
        struct Cubic;
        impl VectorFunction for Cubic {
            // g(a, b) = a²b³: ∇g = (2ab³, 3a²b²)
            fn eval<T: Scalar>(&self, x: &[T]) -> Vec<T> {
                let (a, b) = (x[0], x[1]);
                vec![a * b * b * b * T::cst(2.0), a * a * b * b * T::cst(3.0)]
            }
        }
        let rule = CustomRule::generic("a2b3", 2, |x| x[0] * x[0] * x[1].powi(3), Cubic);
        let (a, b) = (1.5, -2.0);
        let mut h = [0.0; 4];
        rule.level_f64(&[a, b], 2, &mut h);
        let hab = 6.0 * a * b * b;
        assert_eq!(h, [2.0 * b * b * b, hab, hab, 6.0 * a * a * b]);
        let mut t = [0.0; 8];
        rule.level_f64(&[a, b], 3, &mut t);
        // ∂³/∂a∂b∂b = 12ab at index (0,1,1) = 3; ∂³/∂b³ = 6a² at 7; ∂³/∂a³ = 0.
        assert_eq!(t[3], 12.0 * a * b);
        assert_eq!(t[7], 6.0 * a * a);
        assert_eq!(t[0], 0.0);
    }
}
