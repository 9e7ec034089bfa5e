//! Rules traced into expressions: how the code generator learns a primitive's partials
//! without a second copy of any derivative formula.
//!
//! [`Traced`] is a scalar whose arithmetic records what it computes instead of computing
//! it. Evaluating a rule of [`crate::rules`] (`Unary::apply`, `Binary::apply`) at `Traced`
//! yields the rule's value and partials as a small expression DAG ([`RuleTrace`]) over its
//! arguments: arithmetic (`+`, `−`, `·`, scaling, negation) and the *values* of
//! primitives (the value of `tanh` at some expression), which the code generator lowers
//! as [`crate::rules`] says ([`crate::rules::ValueLowering`]). Adding a primitive stays
//! one edit in `src/rules/`.
//!
//! A rule that decides something from its argument's value (`abs`, `max`, a domain check
//! such as `ln`'s) cannot be traced: the decision would be fixed at trace time. `Traced`
//! notices every such read (comparisons, predicates and conversions are reported to
//! [`Chain::observe`]; any other read of a value goes through [`Chain::primal`]), and
//! [`trace_unary`] / [`trace_binary`] return `None`; the code generator then calls the
//! rule itself at `f64`.

// Read by the code generator (feature `jit`) and the tests.
#![cfg_attr(not(any(test, feature = "jit")), allow(dead_code))]

use std::cell::RefCell;
use std::fmt;

use crate::chain::{Chain, Decision};
use crate::rules::{Binary, BlockError, BlockOp, CustomRule, Unary};

/// One node of a traced expression; operands are indices of earlier nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Expr {
    /// Argument `k` of the rule.
    Arg(u8),
    /// A constant.
    Const(f64),
    /// `a + b`.
    Add(u32, u32),
    /// `a − b`.
    Sub(u32, u32),
    /// `−a`.
    Neg(u32),
    /// `a · c` for a constant `c`.
    Scale(u32, f64),
    /// The value of a one-argument primitive.
    Unary(Unary, u32),
    /// The value of a two-argument primitive.
    Binary(Binary, u32, u32),
}

/// A rule's value and partials as one expression DAG over its arguments.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RuleTrace {
    /// Nodes in evaluation order.
    pub(crate) exprs: Vec<Expr>,
    /// The node holding the value.
    pub(crate) value: u32,
    /// The nodes holding the partials (for a one-argument rule, the second is unused).
    pub(crate) partials: [u32; 2],
}

impl RuleTrace {
    /// Evaluates the trace at `f64` the way compiled code does: arithmetic as `f64`
    /// arithmetic, a primitive's value from its rule. Returns the value and partials.
    #[cfg(test)]
    pub(crate) fn eval(&self, args: [f64; 2]) -> (f64, [f64; 2]) {
        let mut v: Vec<f64> = Vec::with_capacity(self.exprs.len());
        for e in &self.exprs {
            let x = match *e {
                Expr::Arg(k) => args[k as usize],
                Expr::Const(c) => c,
                Expr::Add(a, b) => v[a as usize] + v[b as usize],
                Expr::Sub(a, b) => v[a as usize] - v[b as usize],
                Expr::Neg(a) => -v[a as usize],
                Expr::Scale(a, c) => v[a as usize] * c,
                Expr::Unary(op, a) => op.apply(v[a as usize]).0,
                Expr::Binary(op, a, b) => op.apply(v[a as usize], v[b as usize]).0,
            };
            v.push(x);
        }
        let at = |k: u32| v[k as usize];
        (at(self.value), [at(self.partials[0]), at(self.partials[1])])
    }
}

/// The trace under construction on this thread.
struct Builder {
    exprs: Vec<Expr>,
    /// Set when the rule read a value (it decides from it): the trace is not valid.
    decided: bool,
}

thread_local! {
    static BUILDER: RefCell<Option<Builder>> = const { RefCell::new(None) };
}

/// A scalar that records the expressions computed on it (see the module docs). Only
/// meaningful inside [`trace_unary`] or [`trace_binary`].
#[derive(Clone, Copy)]
pub(crate) struct Traced(u32);

impl Traced {
    fn push(e: Expr) -> Traced {
        BUILDER.with(|b| {
            let mut b = b.borrow_mut();
            let b = b
                .as_mut()
                .expect("a Traced number is used only while tracing a rule");
            b.exprs.push(e);
            Traced((b.exprs.len() - 1) as u32)
        })
    }

    /// The constant this node holds, if it is one.
    fn constant_value(self) -> Option<f64> {
        BUILDER.with(|b| match b.borrow().as_ref()?.exprs.get(self.0 as usize)? {
            Expr::Const(c) => Some(*c),
            _ => None,
        })
    }

    fn decide() {
        BUILDER.with(|b| {
            if let Some(b) = b.borrow_mut().as_mut() {
                b.decided = true;
            }
        });
    }

    /// Folds an operation on constants at `f64`, the arithmetic compiled code would do.
    fn fold(e: Expr, args: &[Traced], at: impl FnOnce(&[f64]) -> f64) -> Traced {
        let consts: Option<Vec<f64>> = args.iter().map(|a| a.constant_value()).collect();
        match consts {
            Some(c) => Traced::push(Expr::Const(at(&c))),
            None => Traced::push(e),
        }
    }
}

/// Traces `body` on fresh arguments; `None` if the rule read a value.
fn trace(arity: u8, body: impl FnOnce(&[Traced]) -> (Traced, [Traced; 2])) -> Option<RuleTrace> {
    BUILDER.with(|b| {
        let previous = b.borrow_mut().replace(Builder {
            exprs: Vec::new(),
            decided: false,
        });
        assert!(previous.is_none(), "rule traces do not nest");
    });
    let args: Vec<Traced> = (0..arity).map(|k| Traced::push(Expr::Arg(k))).collect();
    let (value, partials) = body(&args);
    let built = BUILDER.with(|b| b.borrow_mut().take().expect("the trace begun above"));
    (!built.decided).then_some(RuleTrace {
        exprs: built.exprs,
        value: value.0,
        partials: [partials[0].0, partials[1].0],
    })
}

/// The trace of a one-argument rule; `None` if the rule decides from its argument.
pub(crate) fn trace_unary(op: Unary) -> Option<RuleTrace> {
    trace(1, |x| {
        let (v, d) = op.apply(x[0]);
        (v, [d, d])
    })
}

/// The trace of a two-argument rule; `None` if the rule decides from its arguments.
pub(crate) fn trace_binary(op: Binary) -> Option<RuleTrace> {
    trace(2, |x| {
        let (v, da, db) = op.apply(x[0], x[1]);
        (v, [da, db])
    })
}

impl Chain for Traced {
    type Primal = f64;

    fn constant(value: f64) -> Self {
        Traced::push(Expr::Const(value))
    }

    fn primal(&self) -> f64 {
        // Reading a value is deciding from it, unless it is a constant.
        self.constant_value().unwrap_or_else(|| {
            Traced::decide();
            f64::NAN
        })
    }

    fn is_constant(&self) -> bool {
        self.constant_value().is_some()
    }

    fn all_finite(&self) -> bool {
        self.constant_value().is_some_and(f64::is_finite)
    }

    fn unary(self, op: Unary) -> Self {
        Traced::fold(Expr::Unary(op, self.0), &[self], |c| op.apply(c[0]).0)
    }

    fn binary(self, rhs: Self, op: Binary) -> Self {
        Traced::fold(Expr::Binary(op, self.0, rhs.0), &[self, rhs], |c| {
            op.apply(c[0], c[1]).0
        })
    }

    fn add(self, rhs: Self) -> Self {
        Traced::fold(Expr::Add(self.0, rhs.0), &[self, rhs], |c| c[0] + c[1])
    }

    fn sub(self, rhs: Self) -> Self {
        Traced::fold(Expr::Sub(self.0, rhs.0), &[self, rhs], |c| c[0] - c[1])
    }

    fn neg(self) -> Self {
        Traced::fold(Expr::Neg(self.0), &[self], |c| -c[0])
    }

    fn scale(self, c: f64) -> Self {
        Traced::fold(Expr::Scale(self.0, c), &[self], |v| v[0] * c)
    }

    fn combine_partials(_: f64, _: &[Self], _: &[f64]) -> Self {
        unreachable!("the unary and binary rules do not combine partials")
    }

    fn custom_level(_: &CustomRule, _: usize, _: &[Self], _: &mut [Self]) {
        unreachable!("custom rules are not traced")
    }

    fn block(_: &BlockOp, _: &[Self]) -> Result<Vec<Self>, BlockError> {
        unreachable!("block operations are not traced")
    }

    fn inner_derivatives<G: crate::Function + ?Sized>(
        _: &G,
        _: &[Self],
        _: &[Self],
        _: Option<&[Self]>,
    ) -> Vec<Self> {
        unreachable!("nested calls are not traced")
    }

    fn observe(&self, _: Decision<'_, Self>) {
        Traced::decide();
    }
}

impl fmt::Debug for Traced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Traced(#{})", self.0)
    }
}

impl fmt::Display for Traced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

crate::impl_scalar_traits!([] Traced);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every one-argument primitive, `powi` at several exponents.
    fn all_unary() -> Vec<Unary> {
        let powi = [0, 1, 2, -2, 7, i32::MIN].map(Unary::Powi);
        Unary::ALL.into_iter().chain(powi).collect()
    }

    fn all_binary() -> Vec<Binary> {
        Binary::ALL.to_vec()
    }

    /// The same `f64`, to the bit; any NaN equals any NaN (Rust leaves a NaN's sign and
    /// payload unspecified, so even the same expression compiled twice may differ there).
    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    const POINTS: [f64; 12] = [
        -3.5,
        -1.0,
        -0.3,
        -0.0,
        0.0,
        1e-300,
        0.4,
        0.999_999_9,
        1.0,
        2.5,
        40.0,
        f64::INFINITY,
    ];

    #[test]
    fn traced_unary_rules_agree_with_the_rules_to_the_bit() {
        let mut traced = 0;
        for op in all_unary() {
            let Some(t) = trace_unary(op) else { continue };
            traced += 1;
            for x in POINTS.into_iter().chain([f64::NAN, -f64::INFINITY]) {
                let (v, d) = op.apply(x);
                let (tv, td) = t.eval([x, 0.0]);
                assert!(same(tv, v), "{op:?} value at {x}: {tv} vs {v}");
                assert!(same(td[0], d), "{op:?} derivative at {x}: {} vs {d}", td[0]);
            }
        }
        // The smooth primitives trace (the domain-checked and piecewise ones need not).
        assert!(traced >= 15, "only {traced} unary rules traced");
        for op in [
            Unary::Recip,
            Unary::Exp,
            Unary::Sin,
            Unary::Tanh,
            Unary::Powi(2),
        ] {
            assert!(trace_unary(op).is_some(), "{op:?} should trace");
        }
    }

    #[test]
    fn traced_binary_rules_agree_with_the_rules_to_the_bit() {
        for op in all_binary() {
            let Some(t) = trace_binary(op) else { continue };
            for a in POINTS {
                for b in POINTS {
                    let (v, da, db) = op.apply(a, b);
                    let (tv, td) = t.eval([a, b]);
                    assert!(same(tv, v), "{op:?} value at ({a}, {b})");
                    assert!(same(td[0], da), "{op:?} ∂a at ({a}, {b})");
                    assert!(same(td[1], db), "{op:?} ∂b at ({a}, {b})");
                }
            }
        }
        assert!(trace_binary(Binary::Mul).is_some());
        assert!(trace_binary(Binary::Div).is_some());
    }

    /// Rules that decide from their argument's value are refused, not traced wrongly.
    #[test]
    fn rules_that_decide_are_not_traced() {
        for op in [Unary::Abs, Unary::Ln, Unary::Atanh] {
            assert!(
                trace_unary(op).is_none(),
                "{op:?} decides from its argument"
            );
        }
        for op in [Binary::Max, Binary::Min, Binary::Hypot, Binary::Powf] {
            assert!(
                trace_binary(op).is_none(),
                "{op:?} decides from its arguments"
            );
        }
    }

    #[test]
    fn multiplication_traces_to_its_two_operands() {
        let t = trace_binary(Binary::Mul).unwrap();
        assert_eq!(t.exprs[t.value as usize], Expr::Binary(Binary::Mul, 0, 1));
        assert_eq!(t.exprs[t.partials[0] as usize], Expr::Arg(1));
        assert_eq!(t.exprs[t.partials[1] as usize], Expr::Arg(0));
    }
}
