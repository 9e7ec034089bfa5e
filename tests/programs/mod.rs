//! Random programs for differential testing: a small language of straight-line code,
//! in-place updates of a `Vec`, `if`s and data-dependent loops over every rule in
//! `mixad::rules`, with an interpreter generic over `num_traits::Float`, a proptest
//! generator, and a `Display` that prints a program as the Rust function it stands for
//! (the printed function compiles and computes the same values, bit for bit).
//!
//! Every program reads its inputs into `v: Vec<T>`; top-level statements push new values or
//! update `v` in place; blocks (`if`, `while`) only update in place, so `v` has the same
//! length on every path. Slot indices are stored raw and taken modulo `v.len()` where they
//! are used, so a program stays valid whatever the shrinker removes.
//!
//! Domains are guarded by construction ([`Dom`]): `ln` sees `b + a²`, `asin` sees
//! `k·sin(a)` with `k < 1`, `tan` sees `k·tanh(a)` with `k < π/2`, and so on (`exp` and
//! `sinh` sometimes see their operand raw; overflowing cases are skipped). What remains
//! are the legitimate kinks (`abs`, `max`/`min`, rounding, `%`, `atan2`'s cut, every
//! comparison): the interpreter reports each decision in a [`Trace`], so a test can tell
//! whether two points lie on the same smooth piece.
//!
//! Not generated: `f32`, multi-output functions (Jacobians, `vjp`), third-order nestings,
//! conversions of a value to a plain number (`to_f64`, which re-records at every point by
//! design), NaN or infinite inputs, and operands exactly at a rule's singularity (domains
//! keep them away; the few that land there are skipped).

// Each test crate uses only part of this module.
#![allow(dead_code)]

pub mod checks;

use std::cmp::Ordering;
use std::fmt;

use mixad::rules::{Binary, Unary};
use num_traits::Float;
use proptest::prelude::*;

/// The constant `v` at type `T` (printed as `c::<T>(v)`, with
/// `fn c<T: Float>(v: f64) -> T { T::cst(v) }`; the interpreter asks only for `Float`).
pub fn c<T: Float>(v: f64) -> T {
    T::from(v).expect("every Float converts from f64")
}

/// How an operand is mapped into its operation's domain before the operation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dom {
    /// The operand as is.
    Any,
    /// `b + a²`: at least `b`.
    Above(f64),
    /// `-(b + a²)`: at most `-b`.
    Below(f64),
    /// `k·tanh(a)`: in `(-k, k)`.
    Squash(f64),
    /// `k·sin(a)`: in `[-k, k]`.
    Wave(f64),
}

impl Dom {
    fn apply<T: Float>(self, a: T) -> T {
        match self {
            Dom::Any => a,
            Dom::Above(b) => c::<T>(b) + a * a,
            Dom::Below(b) => -(c::<T>(b) + a * a),
            Dom::Squash(k) => c::<T>(k) * Float::tanh(a),
            Dom::Wave(k) => c::<T>(k) * Float::sin(a),
        }
    }

    fn show(self, a: &str) -> String {
        match self {
            Dom::Any => a.to_string(),
            Dom::Above(b) => format!("c::<T>({b:?}) + {a} * {a}"),
            Dom::Below(b) => format!("-(c::<T>({b:?}) + {a} * {a})"),
            Dom::Squash(k) => format!("c::<T>({k:?}) * Float::tanh({a})"),
            Dom::Wave(k) => format!("c::<T>({k:?}) * Float::sin({a})"),
        }
    }
}

/// A one-operand operation: a rule (or negation, or an affine map with constants) applied
/// to a guarded slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnOp {
    /// A primitive of `mixad::rules::Unary`.
    Rule(Unary, Dom),
    /// `-a`.
    Neg,
    /// `a·m + s` (scaling and shifting by constants: the engines' linear structure).
    Affine(f64, f64),
}

/// A two-operand operation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a.abs_sub(b)` = `max(a − b, 0)` (a composition in the facade).
    AbsSub,
    /// A primitive of `mixad::rules::Binary`, each operand guarded.
    Rule(Binary, Dom, Dom),
}

/// An expression: one operation on slots of `v`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expr {
    /// `op(v[a])`.
    Un(UnOp, usize),
    /// `op(v[a], v[b])`.
    Bin(BinOp, usize, usize),
}

/// How an update combines the old slot with the expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assign {
    /// `v[i] = e`.
    Set,
    /// `v[i] += e`.
    Add,
    /// `v[i] -= e`.
    Sub,
    /// `v[i] *= e`.
    Mul,
}

/// A comparison in an `if`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// The right-hand side of a comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rhs {
    /// Another slot.
    Slot(usize),
    /// A constant.
    Const(f64),
    /// No comparison: the condition is the predicate `v[a].is_sign_negative()` (a
    /// decision a recording guards by inspecting the value); the `Cmp` is unused.
    SignNegative,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `v.push(e)` (top level only).
    Push(Expr),
    /// `v[i] op= e`.
    Update(usize, Assign, Expr),
    /// `if v[a] cmp rhs { then } else { els }`.
    If {
        /// Compared slot.
        a: usize,
        /// The comparison.
        cmp: Cmp,
        /// What it is compared with.
        rhs: Rhs,
        /// Taken when the comparison holds.
        then: Vec<Stmt>,
        /// Taken otherwise.
        els: Vec<Stmt>,
    },
    /// `while k < max && v[s] < c(bound) { body; v[s] += c(step); k += 1 }`: the trip
    /// count depends on `v[s]` (and on whatever the body does to it).
    Loop {
        /// The slot counting up.
        s: usize,
        /// The bound it counts to.
        bound: f64,
        /// Its increment per trip (positive).
        step: f64,
        /// At most this many trips.
        max: u8,
        /// Updates done each trip.
        body: Vec<Stmt>,
    },
}

/// A program `Rⁿ → R`: its statements, then the sum of all slots.
#[derive(Clone, PartialEq)]
pub struct Program {
    /// Number of inputs.
    pub n: usize,
    /// The statements.
    pub body: Vec<Stmt>,
}

/// What one evaluation decided, observed on the `f64` values at the bottom of `T`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Outcome of every comparison of tracked values (what a recording guards), in order.
    pub flow: Vec<Option<Ordering>>,
    /// The piece every piecewise primitive was on (`abs`'s sign, `floor`'s value, …).
    pub pieces: Vec<i64>,
    /// Smallest distance of an operand to a singularity of its operation (`cbrt` at 0,
    /// `hypot` at the origin, `ln` at 0, …); finite differences are unreliable near one.
    pub margin: f64,
    /// Some operand sat exactly where its operation's derivative is undefined (NaN or
    /// infinite by convention: `atan2(0, 0)`, `cbrt(0)`, …), where modes may legitimately
    /// differ in how `0 · NaN` comes out; or a branch tested the sign of a zero.
    pub undefined: bool,
    /// Largest magnitude of any value computed on the way. Where it dwarfs the output,
    /// derivatives are differences of large terms and carry their rounding errors.
    pub peak: f64,
    /// Every operand of a rule (after its domain map), in order.
    pub args: Vec<f64>,
    /// Whether values are looked at (only at `f64`: at an AD type, `to_f64` would itself
    /// be a decision a recording guards).
    on: bool,
}

impl Trace {
    /// A trace that looks at nothing (for evaluations at AD types).
    fn off() -> Self {
        Trace {
            on: false,
            ..Trace::on()
        }
    }

    fn on() -> Self {
        Trace {
            on: true,
            flow: Vec::new(),
            pieces: Vec::new(),
            margin: f64::INFINITY,
            undefined: false,
            peak: 0.0,
            args: Vec::new(),
        }
    }

    /// The `f64` value of `a` when this trace looks (else 0).
    fn see<T: Float>(&self, a: T) -> f64 {
        if self.on {
            a.to_f64().unwrap_or(f64::NAN)
        } else {
            0.0
        }
    }

    /// An operand at `distance` from a singularity of its operation.
    fn near(&mut self, distance: f64) {
        self.margin = self.margin.min(distance.abs());
        self.undefined |= distance == 0.0;
    }

    fn piece(&mut self, p: f64) {
        // NaN and huge values are their own piece; the cast saturates.
        self.pieces
            .push(if p.is_nan() { i64::MIN } else { p as i64 });
    }

    fn sign(&mut self, a: f64) {
        self.pieces.push(match a.partial_cmp(&0.0) {
            Some(Ordering::Less) => -1,
            Some(Ordering::Equal) => 0,
            Some(Ordering::Greater) => 1,
            None => i64::MIN,
        });
    }

    /// Largest change of a rule's operand between two evaluations on the same piece: a
    /// finite-difference step that moves one by much resolves nothing.
    pub fn largest_move(&self, other: &Trace) -> f64 {
        self.args
            .iter()
            .zip(&other.args)
            .fold(0.0, |m, (a, b)| m.max((a - b).abs()))
    }

    /// True when both evaluations took every decision the same way.
    pub fn same_piece(&self, other: &Trace) -> bool {
        self.flow == other.flow && self.pieces == other.pieces
    }
}

impl Program {
    /// The program's value at `x`, at any scalar type.
    pub fn run<T: Float>(&self, x: &[T]) -> T {
        self.run_traced(x, &mut Trace::off())
    }

    /// The value and what was decided on the way.
    pub fn trace(&self, x: &[f64]) -> (f64, Trace) {
        let mut trace = Trace::on();
        let y = self.run_traced(x, &mut trace);
        (y, trace)
    }

    /// [`Program::run`], recording decisions in `trace`.
    fn run_traced<T: Float>(&self, x: &[T], trace: &mut Trace) -> T {
        assert_eq!(x.len(), self.n, "program of {} inputs", self.n);
        let mut v: Vec<T> = x.to_vec();
        for s in &self.body {
            exec(s, &mut v, trace);
        }
        v.iter().fold(T::zero(), |acc, &a| acc + a)
    }

    /// Number of statements, blocks included (a size for the shrinker's eyes).
    pub fn size(&self) -> usize {
        fn count(b: &[Stmt]) -> usize {
            b.iter()
                .map(|s| match s {
                    Stmt::If { then, els, .. } => 1 + count(then) + count(els),
                    Stmt::Loop { body, .. } => 1 + count(body),
                    _ => 1,
                })
                .sum()
        }
        count(&self.body)
    }
}

fn exec<T: Float>(s: &Stmt, v: &mut Vec<T>, tr: &mut Trace) {
    let len = v.len();
    match s {
        Stmt::Push(e) => {
            let y = eval(e, v, tr);
            v.push(y);
        }
        Stmt::Update(i, op, e) => {
            let y = eval(e, v, tr);
            let i = i % len;
            match op {
                Assign::Set => v[i] = y,
                // `v[i] op= y` for AD numbers (`Float` has no `AddAssign`).
                Assign::Add => v[i] = v[i] + y,
                Assign::Sub => v[i] = v[i] - y,
                Assign::Mul => v[i] = v[i] * y,
            }
            let seen = tr.see(v[i]);
            tr.peak = tr.peak.max(seen.abs());
        }
        Stmt::If {
            a,
            cmp,
            rhs,
            then,
            els,
        } => {
            let a = v[a % len];
            let b = match rhs {
                Rhs::Slot(j) => v[j % len],
                Rhs::Const(k) => c(*k),
                Rhs::SignNegative => {
                    let negative = Float::is_sign_negative(a);
                    let seen = tr.see(a);
                    // The sign of a zero is not a value every type agrees on: f64's
                    // `max(-0.0, 0.0)` may give either, mixad's tie rule gives `+0`.
                    tr.undefined |= seen == 0.0;
                    tr.flow.push(Some(if seen.is_sign_negative() {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }));
                    for s in if negative { then } else { els } {
                        exec(s, v, tr);
                    }
                    return;
                }
            };
            let (x, y) = (tr.see(a), tr.see(b));
            tr.flow.push(x.partial_cmp(&y));
            let holds = match cmp {
                Cmp::Lt => a < b,
                Cmp::Le => a <= b,
                Cmp::Gt => a > b,
                Cmp::Ge => a >= b,
            };
            for s in if holds { then } else { els } {
                exec(s, v, tr);
            }
        }
        Stmt::Loop {
            s,
            bound,
            step,
            max,
            body,
        } => {
            let s = s % len;
            let mut k = 0;
            while k < *max && {
                let seen = tr.see(v[s]);
                tr.flow.push(seen.partial_cmp(bound));
                v[s] < c(*bound)
            } {
                for st in body {
                    exec(st, v, tr);
                }
                v[s] = v[s] + c(*step);
                k += 1;
            }
        }
    }
}

fn eval<T: Float>(e: &Expr, v: &[T], tr: &mut Trace) -> T {
    let len = v.len();
    let y = match *e {
        Expr::Un(op, a) => unary(op, v[a % len], tr),
        Expr::Bin(op, a, b) => binary(op, v[a % len], v[b % len], tr),
    };
    let seen = tr.see(y);
    tr.peak = tr.peak.max(seen.abs());
    y
}

fn unary<T: Float>(op: UnOp, a: T, tr: &mut Trace) -> T {
    let (u, dom) = match op {
        UnOp::Neg => return -a,
        UnOp::Affine(m, s) => return a * c(m) + c(s),
        UnOp::Rule(u, dom) => (u, dom),
    };
    let a = dom.apply(a);
    let x = tr.see(a);
    tr.args.push(x);
    match u {
        Unary::Recip | Unary::Cbrt | Unary::Ln | Unary::Log2 | Unary::Log10 | Unary::Sqrt => {
            tr.near(x)
        }
        Unary::Powi(n) if n < 0 => tr.near(x),
        Unary::Ln1p => tr.near(x + 1.0),
        Unary::Asin | Unary::Acos | Unary::Atanh => tr.near(1.0 - x.abs()),
        Unary::Acosh => tr.near(x - 1.0),
        Unary::Tan => tr.near(x.cos()),
        Unary::Abs => tr.sign(x),
        Unary::Signum => {
            // signum(±0) = ±1: a signed zero decides, and its sign after a max/min tie is
            // unspecified for f64.
            tr.sign(x);
            tr.near(x);
        }
        Unary::Floor => tr.piece(x.floor()),
        Unary::Ceil => tr.piece(x.ceil()),
        Unary::Round => tr.piece(x.round()),
        Unary::Trunc | Unary::Fract => tr.piece(x.trunc()),
        _ => {}
    }
    match u {
        Unary::Recip => Float::recip(a),
        Unary::Sqrt => Float::sqrt(a),
        Unary::Cbrt => Float::cbrt(a),
        Unary::Exp => Float::exp(a),
        Unary::Exp2 => Float::exp2(a),
        Unary::ExpM1 => Float::exp_m1(a),
        Unary::Ln => Float::ln(a),
        Unary::Log2 => Float::log2(a),
        Unary::Log10 => Float::log10(a),
        Unary::Ln1p => Float::ln_1p(a),
        Unary::Sin => Float::sin(a),
        Unary::Cos => Float::cos(a),
        Unary::Tan => Float::tan(a),
        Unary::Asin => Float::asin(a),
        Unary::Acos => Float::acos(a),
        Unary::Atan => Float::atan(a),
        Unary::Sinh => Float::sinh(a),
        Unary::Cosh => Float::cosh(a),
        Unary::Tanh => Float::tanh(a),
        Unary::Asinh => Float::asinh(a),
        Unary::Acosh => Float::acosh(a),
        Unary::Atanh => Float::atanh(a),
        Unary::Abs => Float::abs(a),
        Unary::Signum => Float::signum(a),
        Unary::Floor => Float::floor(a),
        Unary::Ceil => Float::ceil(a),
        Unary::Round => Float::round(a),
        Unary::Trunc => Float::trunc(a),
        Unary::Fract => Float::fract(a),
        Unary::ToDegrees => Float::to_degrees(a),
        Unary::ToRadians => Float::to_radians(a),
        Unary::Powi(n) => Float::powi(a, n),
    }
}

fn binary<T: Float>(op: BinOp, a: T, b: T, tr: &mut Trace) -> T {
    let (r, da, db) = match op {
        BinOp::Add => return a + b,
        BinOp::Sub => return a - b,
        BinOp::AbsSub => {
            let (x, y) = (tr.see(a), tr.see(b));
            tr.sign(x - y);
            return Float::abs_sub(a, b);
        }
        BinOp::Rule(r, da, db) => (r, da, db),
    };
    let (a, b) = (da.apply(a), db.apply(b));
    let (x, y) = (tr.see(a), tr.see(b));
    tr.args.extend([x, y]);
    match r {
        Binary::Div => tr.near(y),
        Binary::Rem => {
            tr.near(y);
            tr.piece((x / y).trunc());
        }
        Binary::Powf => tr.near(x),
        Binary::Atan2 => {
            tr.near(x.hypot(y));
            if y < 0.0 {
                // The branch cut: ±π by the sign of x, which a signed zero decides (and
                // `max(-0.0, 0.0)`'s sign is unspecified for f64).
                tr.sign(x);
                tr.near(x);
            }
        }
        // At the origin hypot's partials are 0 by convention, not undefined.
        Binary::Hypot => tr.margin = tr.margin.min(x.hypot(y)),
        Binary::Max | Binary::Min => tr.sign(x - y),
        Binary::Mul => {}
    }
    match r {
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::Rem => a % b,
        Binary::Powf => Float::powf(a, b),
        Binary::Atan2 => Float::atan2(a, b),
        Binary::Hypot => Float::hypot(a, b),
        Binary::Max => Float::max(a, b),
        Binary::Min => Float::min(a, b),
    }
}

/// The names of every rule (`Unary`, `Binary`) the generator can draw; `powi` once.
pub fn all_rules() -> (Vec<String>, Vec<String>) {
    use Unary::*;
    let unary = [
        Recip,
        Sqrt,
        Cbrt,
        Exp,
        Exp2,
        ExpM1,
        Ln,
        Log2,
        Log10,
        Ln1p,
        Sin,
        Cos,
        Tan,
        Asin,
        Acos,
        Atan,
        Sinh,
        Cosh,
        Tanh,
        Asinh,
        Acosh,
        Atanh,
        Abs,
        Signum,
        Floor,
        Ceil,
        Round,
        Trunc,
        Fract,
        ToDegrees,
        ToRadians,
        Powi(0),
    ];
    use Binary::*;
    let binary = [Mul, Div, Rem, Powf, Atan2, Hypot, Max, Min];
    (
        unary.iter().map(|&u| rule_name(u)).collect(),
        binary.iter().map(|b| format!("{b:?}")).collect(),
    )
}

fn rule_name(u: Unary) -> String {
    match u {
        Unary::Powi(_) => "Powi".to_string(),
        u => format!("{u:?}"),
    }
}

impl Program {
    /// The names of the rules this program uses (as in [`all_rules`]).
    pub fn rules(&self) -> Vec<String> {
        fn walk(b: &[Stmt], out: &mut Vec<String>) {
            for s in b {
                match s {
                    Stmt::Push(e) | Stmt::Update(_, _, e) => match e {
                        Expr::Un(UnOp::Rule(u, _), _) => out.push(rule_name(*u)),
                        Expr::Bin(BinOp::Rule(r, _, _), _, _) => out.push(format!("{r:?}")),
                        _ => {}
                    },
                    Stmt::If { then, els, .. } => {
                        walk(then, out);
                        walk(els, out);
                    }
                    Stmt::Loop { body, .. } => walk(body, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.body, &mut out);
        out
    }
}

// ---------------------------------------------------------------------------------------
// Printing as Rust
// ---------------------------------------------------------------------------------------

fn unary_name(u: Unary) -> &'static str {
    match u {
        Unary::Recip => "recip",
        Unary::Sqrt => "sqrt",
        Unary::Cbrt => "cbrt",
        Unary::Exp => "exp",
        Unary::Exp2 => "exp2",
        Unary::ExpM1 => "exp_m1",
        Unary::Ln => "ln",
        Unary::Log2 => "log2",
        Unary::Log10 => "log10",
        Unary::Ln1p => "ln_1p",
        Unary::Sin => "sin",
        Unary::Cos => "cos",
        Unary::Tan => "tan",
        Unary::Asin => "asin",
        Unary::Acos => "acos",
        Unary::Atan => "atan",
        Unary::Sinh => "sinh",
        Unary::Cosh => "cosh",
        Unary::Tanh => "tanh",
        Unary::Asinh => "asinh",
        Unary::Acosh => "acosh",
        Unary::Atanh => "atanh",
        Unary::Abs => "abs",
        Unary::Signum => "signum",
        Unary::Floor => "floor",
        Unary::Ceil => "ceil",
        Unary::Round => "round",
        Unary::Trunc => "trunc",
        Unary::Fract => "fract",
        Unary::ToDegrees => "to_degrees",
        Unary::ToRadians => "to_radians",
        Unary::Powi(_) => "powi",
    }
}

fn binary_name(b: Binary) -> &'static str {
    match b {
        Binary::Mul => "*",
        Binary::Div => "/",
        Binary::Rem => "%",
        Binary::Powf => "powf",
        Binary::Atan2 => "atan2",
        Binary::Hypot => "hypot",
        Binary::Max => "max",
        Binary::Min => "min",
    }
}

fn show_expr(e: &Expr, len: usize) -> String {
    let slot = |i: usize| format!("v[{}]", i % len);
    match *e {
        Expr::Un(UnOp::Neg, a) => format!("-{}", slot(a)),
        Expr::Un(UnOp::Affine(m, s), a) => format!("{} * c::<T>({m:?}) + c::<T>({s:?})", slot(a)),
        Expr::Un(UnOp::Rule(u, dom), a) => {
            let arg = dom.show(&slot(a));
            match u {
                Unary::Powi(n) => format!("Float::powi({arg}, {n})"),
                _ => format!("Float::{}({arg})", unary_name(u)),
            }
        }
        Expr::Bin(BinOp::Add, a, b) => format!("{} + {}", slot(a), slot(b)),
        Expr::Bin(BinOp::Sub, a, b) => format!("{} - {}", slot(a), slot(b)),
        Expr::Bin(BinOp::AbsSub, a, b) => format!("Float::abs_sub({}, {})", slot(a), slot(b)),
        Expr::Bin(BinOp::Rule(r, da, db), a, b) => {
            let (x, y) = (da.show(&slot(a)), db.show(&slot(b)));
            let paren = |s: String, d: Dom| {
                if d == Dom::Any {
                    s
                } else {
                    format!("({s})")
                }
            };
            match r {
                Binary::Mul | Binary::Div | Binary::Rem => {
                    format!("{} {} {}", paren(x, da), binary_name(r), paren(y, db))
                }
                _ => format!("Float::{}({x}, {y})", binary_name(r)),
            }
        }
    }
}

fn show_block(
    f: &mut fmt::Formatter<'_>,
    body: &[Stmt],
    len: &mut usize,
    depth: usize,
) -> fmt::Result {
    let pad = "    ".repeat(depth);
    for s in body {
        match s {
            Stmt::Push(e) => {
                writeln!(f, "{pad}v.push({}); // v[{}]", show_expr(e, *len), *len)?;
                *len += 1;
            }
            Stmt::Update(i, op, e) => {
                let op = match op {
                    Assign::Set => "=",
                    Assign::Add => "+=",
                    Assign::Sub => "-=",
                    Assign::Mul => "*=",
                };
                let (i, e) = (i % *len, show_expr(e, *len));
                if op == "=" {
                    writeln!(f, "{pad}v[{i}] = {e};")?;
                } else {
                    // A compound assignment cannot borrow `v` on both sides.
                    writeln!(f, "{pad}let e = {e};")?;
                    writeln!(f, "{pad}v[{i}] {op} e;")?;
                }
            }
            Stmt::If {
                a,
                cmp,
                rhs,
                then,
                els,
            } => {
                let cmp = match cmp {
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                };
                let a = a % *len;
                match rhs {
                    Rhs::Slot(j) => writeln!(f, "{pad}if v[{a}] {cmp} v[{}] {{", j % *len)?,
                    Rhs::Const(k) => writeln!(f, "{pad}if v[{a}] {cmp} c::<T>({k:?}) {{")?,
                    Rhs::SignNegative => writeln!(f, "{pad}if Float::is_sign_negative(v[{a}]) {{")?,
                }
                show_block(f, then, len, depth + 1)?;
                writeln!(f, "{pad}}} else {{")?;
                show_block(f, els, len, depth + 1)?;
                writeln!(f, "{pad}}}")?;
            }
            Stmt::Loop {
                s,
                bound,
                step,
                max,
                body,
            } => {
                let s = s % *len;
                writeln!(f, "{pad}let mut k = 0;")?;
                writeln!(f, "{pad}while k < {max} && v[{s}] < c::<T>({bound:?}) {{")?;
                show_block(f, body, len, depth + 1)?;
                writeln!(f, "{pad}    v[{s}] += c::<T>({step:?});")?;
                writeln!(f, "{pad}    k += 1;")?;
                writeln!(f, "{pad}}}")?;
            }
        }
    }
    Ok(())
}

/// The program as a Rust function (with `fn c<T: Float>(v: f64) -> T { T::cst(v) }`).
impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fn program<T: Scalar>(x: &[T]) -> T {{")?;
        writeln!(
            f,
            "    let mut v: Vec<T> = x.to_vec(); // {} inputs",
            self.n
        )?;
        let mut len = self.n;
        show_block(f, &self.body, &mut len, 1)?;
        writeln!(f, "    v.iter().fold(T::zero(), |acc, &a| acc + a)")?;
        write!(f, "}}")
    }
}

/// Prints as Rust, so proptest's "minimal failing input" is a readable program.
impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// ---------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------

/// A constant `k/4` for `k` in `lo..=hi` (shrinks toward `lo/4`, prints short).
fn quarter(lo: i32, hi: i32) -> impl Strategy<Value = f64> + Clone {
    (lo..=hi).prop_map(|k| f64::from(k) / 4.0)
}

/// A slot index (taken modulo the length where used; shrinks toward `v[0]`).
fn slot() -> impl Strategy<Value = usize> + Clone {
    0usize..64
}

fn positive() -> impl Strategy<Value = Dom> + Clone {
    quarter(1, 8).prop_map(Dom::Above)
}

fn either_sign() -> impl Strategy<Value = Dom> + Clone {
    prop_oneof![
        quarter(1, 8).prop_map(Dom::Above),
        quarter(1, 8).prop_map(Dom::Below)
    ]
}

/// Every rule of `mixad::rules::Unary`, each with a domain it is smooth (or piecewise
/// smooth) on.
fn unary_rule() -> impl Strategy<Value = UnOp> {
    use Unary::*;
    let any = Just(Dom::Any);
    let squash = quarter(2, 12).prop_map(Dom::Squash);
    let unit = quarter(1, 3).prop_map(Dom::Wave);
    let rule = |u: Unary, d: BoxedStrategy<Dom>| d.prop_map(move |d| UnOp::Rule(u, d));
    prop_oneof![
        rule(Recip, either_sign().boxed()),
        rule(Sqrt, positive().boxed()),
        rule(Cbrt, prop_oneof![any, either_sign()].boxed()),
        rule(Exp, prop_oneof![any, squash.clone()].boxed()),
        rule(Exp2, squash.clone().boxed()),
        rule(ExpM1, squash.clone().boxed()),
        rule(Ln, positive().boxed()),
        rule(Log2, positive().boxed()),
        rule(Log10, positive().boxed()),
        rule(Ln1p, quarter(-3, 4).prop_map(Dom::Above).boxed()),
        rule(Sin, any.boxed()),
        rule(Cos, any.boxed()),
        rule(Tan, quarter(1, 5).prop_map(Dom::Squash).boxed()),
        rule(Asin, unit.clone().boxed()),
        rule(Acos, unit.clone().boxed()),
        rule(Atan, any.boxed()),
        rule(Sinh, prop_oneof![any, squash.clone()].boxed()),
        rule(Cosh, squash.clone().boxed()),
        rule(Tanh, any.boxed()),
        rule(Asinh, any.boxed()),
        rule(Acosh, quarter(5, 12).prop_map(Dom::Above).boxed()),
        rule(Atanh, unit.boxed()),
        rule(Abs, any.boxed()),
        rule(Signum, any.boxed()),
        rule(Floor, any.boxed()),
        rule(Ceil, any.boxed()),
        rule(Round, any.boxed()),
        rule(Trunc, any.boxed()),
        rule(Fract, any.boxed()),
        rule(ToDegrees, any.boxed()),
        rule(ToRadians, any.boxed()),
        (0i32..=5).prop_map(|n| UnOp::Rule(Powi(n), Dom::Any)),
        ((-3i32..=-1), either_sign()).prop_map(|(n, d)| UnOp::Rule(Powi(n), d)),
    ]
}

fn unary_op() -> impl Strategy<Value = UnOp> {
    prop_oneof![
        8 => unary_rule(),
        1 => Just(UnOp::Neg),
        1 => (quarter(-8, 8), quarter(-8, 8)).prop_map(|(m, s)| UnOp::Affine(m, s)),
    ]
}

/// Every rule of `mixad::rules::Binary`, plus the linear operations.
fn binary_op() -> impl Strategy<Value = BinOp> {
    use Binary::*;
    let any = || Just(Dom::Any);
    let rule = |b: Binary, da: BoxedStrategy<Dom>, db: BoxedStrategy<Dom>| {
        (da, db).prop_map(move |(da, db)| BinOp::Rule(b, da, db))
    };
    prop_oneof![
        Just(BinOp::Add),
        Just(BinOp::Sub),
        Just(BinOp::AbsSub),
        rule(Mul, any().boxed(), any().boxed()),
        rule(Div, any().boxed(), either_sign().boxed()),
        rule(Rem, any().boxed(), either_sign().boxed()),
        rule(
            Powf,
            positive().boxed(),
            prop_oneof![any(), quarter(2, 8).prop_map(Dom::Squash)].boxed()
        ),
        rule(Atan2, any().boxed(), any().boxed()),
        rule(Hypot, any().boxed(), any().boxed()),
        rule(Max, any().boxed(), any().boxed()),
        rule(Min, any().boxed(), any().boxed()),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (unary_op(), slot()).prop_map(|(op, a)| Expr::Un(op, a)),
        (binary_op(), slot(), slot()).prop_map(|(op, a, b)| Expr::Bin(op, a, b)),
    ]
}

fn update() -> impl Strategy<Value = Stmt> {
    let assign = prop_oneof![
        Just(Assign::Set),
        Just(Assign::Add),
        Just(Assign::Sub),
        Just(Assign::Mul)
    ];
    (slot(), assign, expr()).prop_map(|(i, op, e)| Stmt::Update(i, op, e))
}

fn cmp() -> impl Strategy<Value = Cmp> {
    prop_oneof![Just(Cmp::Lt), Just(Cmp::Le), Just(Cmp::Gt), Just(Cmp::Ge)]
}

fn rhs() -> impl Strategy<Value = Rhs> {
    prop_oneof![
        4 => slot().prop_map(Rhs::Slot),
        4 => quarter(-8, 8).prop_map(Rhs::Const),
        1 => Just(Rhs::SignNegative),
    ]
}

/// Statements allowed inside a block: in-place updates, and (one level down) an `if`.
fn block_stmt(depth: u32) -> BoxedStrategy<Stmt> {
    if depth == 0 {
        return update().boxed();
    }
    let inner = || prop::collection::vec(block_stmt(depth - 1), 0..=2);
    prop_oneof![
        3 => update(),
        1 => (slot(), cmp(), rhs(), inner(), inner()).prop_map(|(a, cmp, rhs, then, els)| {
            Stmt::If { a, cmp, rhs, then, els }
        }),
    ]
    .boxed()
}

fn top_stmt() -> impl Strategy<Value = Stmt> {
    let block = || prop::collection::vec(block_stmt(1), 0..=3);
    prop_oneof![
        5 => expr().prop_map(Stmt::Push),
        3 => update(),
        2 => (slot(), cmp(), rhs(), block(), block()).prop_map(|(a, cmp, rhs, then, els)| {
            Stmt::If { a, cmp, rhs, then, els }
        }),
        2 => (slot(), quarter(-4, 8), quarter(1, 6), 1u8..=4, block()).prop_map(
            |(s, bound, step, max, body)| Stmt::Loop { s, bound, step, max, body }
        ),
    ]
}

/// Programs of 1..=8 inputs and up to `len` top-level statements.
pub fn program(len: usize) -> impl Strategy<Value = Program> {
    (1usize..=8, prop::collection::vec(top_stmt(), 1..=len))
        .prop_map(|(n, body)| Program { n, body })
}

/// A point in `[-2, 2]ⁿ`: on a grid of 1/64 (short to print, shrinks toward 0, often
/// lands on ties and kinks) or anywhere.
pub fn point(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec((-128i32..=128).prop_map(|k| f64::from(k) / 64.0), n),
        prop::collection::vec(-2.0f64..2.0, n),
    ]
}
