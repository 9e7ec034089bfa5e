//! Random programs for differential testing: a small language of straight-line code,
//! in-place updates of a `Vec`, `if`s and data-dependent loops over every rule in
//! `mixad::rules`, with an interpreter generic over the scalar (any `mixad::Scalar`; a
//! bare `num_traits::Float` for programs that need nothing more, see [`Ext`]), a proptest
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
//! are the legitimate kinks (`abs`, `max`/`min`, rounding, `%`, `atan2`'s cut) and every
//! decision a recording guards: the interpreter reports each in a [`Trace`], so a test can
//! tell whether two points lie on the same smooth piece and whether a replay must record
//! again. The decisions are
//! - an `if` on a comparison (`<`, `<=`, … of two slots or a slot and a constant), on
//!   `is_sign_negative`, on an `approx` comparison of two slots (`abs_diff_eq`,
//!   `relative_eq`, `ulps_eq`; [`Approx`]: tolerances on the values' scale, so both outcomes
//!   are common), or on `Zero::is_zero` of a value that is exactly zero at some points
//!   ([`Zeroish`]: `fract(v·2ᵏ)` on the grid the points often lie on, `max(v, 0)`, `v − k`);
//! - a loop's test (`while v[s] < bound`);
//! - the classic guarded division `if z.is_zero() { alt } else { y / z }` ([`Expr::ZeroOr`]);
//! - whether a fallible block operation of `mixad::linalg` (`log_det_spd`, `cholesky`,
//!   `cholesky_solve`, `log_abs_det`, `solve`, `inverse`) on a 2×2 matrix of slots
//!   succeeds, its `Err` handled by a fallback formula ([`Expr::Try`], [`Block`]: matrices
//!   that are indefinite or singular on a region of the points).
//!
//! Not generated: `f32`, multi-output functions (Jacobians, `vjp`), third-order nestings,
//! conversions of a value to a plain number (`to_f64`, `Scalar::value_f64`, printing a
//! `Var`: each re-records wherever the value differs, that is at every new point, by
//! design), custom rules inside a program (the whole program stands as one in
//! `checks::check_modes`, but no program calls one, so a custom rule that panics and is
//! caught is not generated), block operations that cannot fail (`matvec`, `dot`, …),
//! matrices larger than 2×2 (so never faer's kernels, which `f64` uses from 32×32), NaN or
//! infinite inputs, and operands exactly at a rule's singularity (domains keep them away;
//! the few that land there are skipped).

pub mod checks;

use std::cmp::Ordering;
use std::fmt;

use mixad::forward::Dual;
use mixad::rules::{Binary, Unary};
use num_traits::Float;
use proptest::prelude::*;
use proptest::strategy::{NewTree, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::sync::Arc;

/// The constant `v` at type `T` (printed as `c::<T>(v)`, with
/// `fn c<T: Scalar>(v: f64) -> T { T::cst(v) }`; the interpreter's arithmetic asks only for
/// `Float`).
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
    /// `{ let z = z; if z.is_zero() { alt(v[f]) } else { v[y] / z } }`: the classic
    /// guard of a division.
    ZeroOr {
        /// The divisor, exactly zero at some points.
        z: Zeroish,
        /// The dividend's slot.
        y: usize,
        /// The value where `z` is zero: `alt(v[f])`.
        alt: UnOp,
        /// Its operand's slot.
        f: usize,
    },
    /// `match block(..) { Ok(y) => y, Err(_) => alt(v[f]) }`: a fallible block operation
    /// with a fallback formula.
    Try(Block, UnOp, usize),
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
}

/// A tolerance of an `approx` comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tol {
    /// `c(k)`.
    Const(f64),
    /// `c(k) * v[j] * v[j]`: a tolerance that is itself a tracked value, so the joint
    /// decision reads three tracked operands.
    Square(usize, f64),
}

/// An `approx` comparison of `v[a]` with `v[b]`: one decision taken from all its operands
/// (tolerances included), which a recording guards jointly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Approx {
    /// `AbsDiffEq::abs_diff_eq(&v[a], &v[b], eps)`, `eps` of the values' order (¼ to 2).
    AbsDiff(Tol),
    /// `RelativeEq::relative_eq(&v[a], &v[b], eps, c(max_relative))`, `eps` small enough
    /// that the relative test often decides.
    Relative(Tol, f64),
    /// `UlpsEq::ulps_eq(&v[a], &(v[a] + v[b] * c(k) - v[b] * c(k)), c(eps), max_ulps)`:
    /// `v[a]` against itself rounded through `v[b]·k`, which comes back exact (on the
    /// 1/64 grid), a few ULPs off, or many (`k` large), so the outcome changes between
    /// points. `eps` is 0 or `f64::EPSILON`, so the ULP count decides.
    Ulps(f64, u32, f64),
}

impl Approx {
    fn kind(self) -> Kind {
        match self {
            Approx::AbsDiff(_) => Kind::AbsDiffEq,
            Approx::Relative(..) => Kind::RelativeEq,
            Approx::Ulps(..) => Kind::UlpsEq,
        }
    }
}

/// A value that is exactly zero at some of the generated points (grid points, half-lines),
/// for `is_zero` to decide on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Zeroish {
    /// `Float::fract(v[a] * c(m))`: zero where `v[a]·m` is an integer (an input on the
    /// 1/64 grid often is), where its derivative is `m`, not zero: `is_zero` must look at
    /// the value only.
    Fract(usize, f64),
    /// `Float::max(v[a], c(0))`: zero wherever `v[a] ≤ 0`.
    Relu(usize),
    /// `v[a] - c(k)`: zero where `v[a]` is the constant (a grid point), derivative 1.
    Shift(usize, f64),
}

/// The condition of an `if`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cond {
    /// `v[a] cmp rhs`.
    Cmp(usize, Cmp, Rhs),
    /// `Float::is_sign_negative(v[a])` (a decision a recording guards by inspecting the
    /// value).
    SignNegative(usize),
    /// An `approx` comparison of `v[a]` and `v[b]`.
    Approx(Approx, usize, usize),
    /// `Zero::is_zero(&z)`.
    IsZero(Zeroish),
}

/// A fallible block operation of `mixad::linalg` on a 2×2 matrix, reduced to a scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fallible {
    /// `log_det_spd(A)` (Cholesky: fails unless the symmetric part is positive definite).
    LogDetSpd,
    /// The sum of the entries of `cholesky(A)`.
    Cholesky,
    /// The sum of `cholesky_solve(A, b)`.
    CholeskySolve,
    /// `log_abs_det(A)` (LU: fails on an exactly zero pivot).
    LogAbsDet,
    /// The sum of `solve(A, b)`.
    Solve,
    /// The sum of the entries of `inverse(A)`.
    Inverse,
}

impl Fallible {
    /// Cholesky-based (fails on a region: not positive definite), as opposed to LU-based
    /// (fails on an exactly singular matrix).
    pub fn spd(self) -> bool {
        matches!(
            self,
            Fallible::LogDetSpd | Fallible::Cholesky | Fallible::CholeskySolve
        )
    }

    fn name(self) -> &'static str {
        match self {
            Fallible::LogDetSpd => "log_det_spd",
            Fallible::Cholesky => "cholesky",
            Fallible::CholeskySolve => "cholesky_solve",
            Fallible::LogAbsDet => "log_abs_det",
            Fallible::Solve => "solve",
            Fallible::Inverse => "inverse",
        }
    }

    /// Takes the right-hand side `b`.
    fn solves(self) -> bool {
        matches!(self, Fallible::Solve | Fallible::CholeskySolve)
    }

    /// Returns a matrix or vector (summed), not a scalar.
    fn summed(self) -> bool {
        !matches!(self, Fallible::LogDetSpd | Fallible::LogAbsDet)
    }
}

/// A block operation's operands: the matrix `A` (2×2, row by row) and the right-hand side
/// `b = [v[rhs], 1]` of the solves.
///
/// Cholesky-based operations take `A = [[v[m₀] + k, v[m₁]], [v[m₂], v[m₃] + k]]` (the shift
/// `k ≥ 0` makes positive definiteness likelier), which fails on a region. LU-based ones
/// take `A = [[max(v[m₀], 0), v[m₁]], [max(v[m₂], 0), v[m₃]]]`, whose first column is
/// exactly zero (singular) on a region too, not only on a null set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Block {
    /// The operation.
    pub op: Fallible,
    /// Slots of `A`'s entries, row by row.
    pub m: [usize; 4],
    /// Added to the diagonal of a Cholesky-based operation's matrix.
    pub shift: f64,
    /// Slot of `b`'s first entry.
    pub rhs: usize,
}

/// A kind of decision other than an order comparison, for coverage statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `if Float::is_sign_negative(..)`.
    SignNegative,
    /// `if approx::AbsDiffEq::abs_diff_eq(..)`.
    AbsDiffEq,
    /// `if approx::RelativeEq::relative_eq(..)`.
    RelativeEq,
    /// `if approx::UlpsEq::ulps_eq(..)`.
    UlpsEq,
    /// `if Zero::is_zero(..) { .. } else { .. }` (statements).
    IsZero,
    /// `if z.is_zero() { alt } else { y / z }` (an expression).
    ZeroOrDivide,
    /// A block operation's `Ok` (true) or `Err` (false), handled by a fallback.
    Block(Fallible),
}

/// One decision, as a recording guards it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    /// The order of two values (an `if`'s comparison, a loop's test).
    Order(Option<Ordering>),
    /// The outcome of a predicate (`is_sign_negative`, `approx`, `is_zero`) or whether a
    /// block operation succeeded.
    Holds(Kind, bool),
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `v.push(e)` (top level only).
    Push(Expr),
    /// `v[i] op= e`.
    Update(usize, Assign, Expr),
    /// `if cond { then } else { els }`.
    If {
        /// The condition.
        cond: Cond,
        /// Taken when the condition holds.
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
    /// Every decision taken from tracked values (what a recording guards), in order.
    pub flow: Vec<Decided>,
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
    /// Largest magnitude of any value's derivative along the evaluation's direction, when
    /// evaluated at `Dual<f64>` ([`Program::slope`]; else 0). Second derivatives are then
    /// differences of products of such slopes, and carry their rounding errors.
    pub slope: f64,
    /// Every value computed on the way was finite (no overflow, no NaN).
    pub finite: bool,
    /// Every operand of a rule (after its domain map, and before it for `Dom::Wave`), in
    /// order.
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
            slope: 0.0,
            finite: true,
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

    /// Notes a value computed on the way (its size, and its slope where `ext` sees one).
    fn value<T: Float, E: Ext<T>>(&mut self, a: T, ext: E) {
        let seen = self.see(a);
        self.peak = self.peak.max(seen.abs());
        self.finite &= seen.is_finite();
        self.slope = self.slope.max(ext.slope(a));
    }

    /// An operand before its domain map: `k·sin(a)` oscillates in `a`, so a step that
    /// moves `a` by much resolves nothing even where the mapped operand stays small.
    fn raw_operand<T: Float>(&mut self, dom: Dom, a: T) {
        if let Dom::Wave(_) = dom {
            let seen = self.see(a);
            self.args.push(seen);
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

/// What a program needs of its scalar beyond `Float`: `approx`'s comparisons and
/// `mixad::linalg`'s block operations. [`Full`] provides them at every `mixad::Scalar`.
pub trait Ext<T>: Copy {
    /// `approx::AbsDiffEq::abs_diff_eq(&a, &b, eps)`.
    fn abs_diff_eq(self, a: T, b: T, eps: T) -> bool;
    /// `approx::RelativeEq::relative_eq(&a, &b, eps, max_relative)`.
    fn relative_eq(self, a: T, b: T, eps: T, max_relative: T) -> bool;
    /// `approx::UlpsEq::ulps_eq(&a, &b, eps, max_ulps)`.
    fn ulps_eq(self, a: T, b: T, eps: T, max_ulps: u32) -> bool;
    /// The block operation on the 2×2 matrix `m` (row by row) and right-hand side `b`,
    /// reduced to a scalar, or `None` where it fails.
    fn block(self, op: Fallible, m: [T; 4], b: [T; 2]) -> Option<T>;
    /// The magnitude of `a`'s derivative, where this extension sees one (else 0).
    fn slope(self, _a: T) -> f64 {
        0.0
    }
}

/// [`Ext`] at every `mixad::Scalar`: the real `approx` traits and `mixad::linalg`.
#[derive(Clone, Copy)]
pub struct Full;

impl<T: mixad::Scalar> Ext<T> for Full {
    fn abs_diff_eq(self, a: T, b: T, eps: T) -> bool {
        approx::AbsDiffEq::abs_diff_eq(&a, &b, eps)
    }
    fn relative_eq(self, a: T, b: T, eps: T, max_relative: T) -> bool {
        approx::RelativeEq::relative_eq(&a, &b, eps, max_relative)
    }
    fn ulps_eq(self, a: T, b: T, eps: T, max_ulps: u32) -> bool {
        approx::UlpsEq::ulps_eq(&a, &b, eps, max_ulps)
    }
    fn block(self, op: Fallible, m: [T; 4], b: [T; 2]) -> Option<T> {
        use mixad::linalg;
        use nalgebra::{DMatrix, DVector};
        let m = DMatrix::from_row_slice(2, 2, &m);
        let b = DVector::from_row_slice(&b);
        // The printed program sums the same way (column by column).
        match op {
            Fallible::LogDetSpd => linalg::log_det_spd(&m).ok(),
            Fallible::LogAbsDet => linalg::log_abs_det(&m).ok(),
            Fallible::Cholesky => linalg::cholesky(&m)
                .ok()
                .map(|y| y.iter().fold(T::zero(), |s, &e| s + e)),
            Fallible::Inverse => linalg::inverse(&m)
                .ok()
                .map(|y| y.iter().fold(T::zero(), |s, &e| s + e)),
            Fallible::Solve => linalg::solve(&m, &b)
                .ok()
                .map(|y| y.iter().fold(T::zero(), |s, &e| s + e)),
            Fallible::CholeskySolve => linalg::cholesky_solve(&m, &b)
                .ok()
                .map(|y| y.iter().fold(T::zero(), |s, &e| s + e)),
        }
    }
}

/// [`Ext`] at `Dual<f64>` that also reads tangents ([`Program::slope`]).
#[derive(Clone, Copy)]
pub struct Slopes;

impl Ext<Dual<f64>> for Slopes {
    fn abs_diff_eq(self, a: Dual<f64>, b: Dual<f64>, eps: Dual<f64>) -> bool {
        Full.abs_diff_eq(a, b, eps)
    }
    fn relative_eq(self, a: Dual<f64>, b: Dual<f64>, eps: Dual<f64>, r: Dual<f64>) -> bool {
        Full.relative_eq(a, b, eps, r)
    }
    fn ulps_eq(self, a: Dual<f64>, b: Dual<f64>, eps: Dual<f64>, n: u32) -> bool {
        Full.ulps_eq(a, b, eps, n)
    }
    fn block(self, op: Fallible, m: [Dual<f64>; 4], b: [Dual<f64>; 2]) -> Option<Dual<f64>> {
        Full.block(op, m, b)
    }
    fn slope(self, a: Dual<f64>) -> f64 {
        a.tangent.abs()
    }
}

impl Program {
    /// The program's value at `x`, at any scalar type.
    pub fn run<T: mixad::Scalar>(&self, x: &[T]) -> T {
        self.run_traced(x, &mut Trace::off(), Full)
    }

    /// The value and what was decided on the way.
    pub fn trace(&self, x: &[f64]) -> (f64, Trace) {
        let mut trace = Trace::on();
        let y = self.run_traced(x, &mut trace, Full);
        (y, trace)
    }

    /// The largest magnitude of any intermediate value's partial derivative with respect to
    /// any input (the output's included), by forward mode at `Dual<f64>`, one input at a
    /// time. Where it is large, second derivatives are differences of large products and
    /// modes agree only to their rounding errors, whatever the values.
    pub fn slope(&self, x: &[f64]) -> f64 {
        (0..x.len())
            .map(|i| {
                let seeded: Vec<Dual<f64>> = x
                    .iter()
                    .enumerate()
                    .map(|(j, &a)| Dual::new(a, if i == j { 1.0 } else { 0.0 }))
                    .collect();
                let mut trace = Trace::off();
                let y = self.run_traced(&seeded, &mut trace, Slopes);
                trace.slope.max(y.tangent.abs())
            })
            .fold(0.0, f64::max)
    }

    /// [`Program::run`], recording decisions in `trace`.
    fn run_traced<T: Float, E: Ext<T>>(&self, x: &[T], trace: &mut Trace, ext: E) -> T {
        assert_eq!(x.len(), self.n, "program of {} inputs", self.n);
        let mut v: Vec<T> = x.to_vec();
        for s in &self.body {
            exec(s, &mut v, trace, ext);
        }
        v.iter().fold(T::zero(), |acc, &a| acc + a)
    }

    /// Number of statements, blocks included (a size for the shrinker's eyes).
    // No test calls it: it is for looking at a shrunk case.
    #[allow(dead_code)]
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

fn exec<T: Float, E: Ext<T>>(s: &Stmt, v: &mut Vec<T>, tr: &mut Trace, ext: E) {
    let len = v.len();
    match s {
        Stmt::Push(e) => {
            let y = eval(e, v, tr, ext);
            v.push(y);
        }
        Stmt::Update(i, op, e) => {
            let y = eval(e, v, tr, ext);
            let i = i % len;
            match op {
                Assign::Set => v[i] = y,
                // `v[i] op= y` for AD numbers (`Float` has no `AddAssign`).
                Assign::Add => v[i] = v[i] + y,
                Assign::Sub => v[i] = v[i] - y,
                Assign::Mul => v[i] = v[i] * y,
            }
            tr.value(v[i], ext);
        }
        Stmt::If { cond, then, els } => {
            let holds = test(cond, v, tr, ext);
            for s in if holds { then } else { els } {
                exec(s, v, tr, ext);
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
                tr.flow.push(Decided::Order(seen.partial_cmp(bound)));
                v[s] < c(*bound)
            } {
                for st in body {
                    exec(st, v, tr, ext);
                }
                v[s] = v[s] + c(*step);
                k += 1;
            }
        }
    }
}

/// Whether an `if`'s condition holds.
fn test<T: Float, E: Ext<T>>(cond: &Cond, v: &[T], tr: &mut Trace, ext: E) -> bool {
    let len = v.len();
    match *cond {
        Cond::Cmp(a, cmp, rhs) => {
            let a = v[a % len];
            let b = match rhs {
                Rhs::Slot(j) => v[j % len],
                Rhs::Const(k) => c(k),
            };
            let (x, y) = (tr.see(a), tr.see(b));
            tr.flow.push(Decided::Order(x.partial_cmp(&y)));
            match cmp {
                Cmp::Lt => a < b,
                Cmp::Le => a <= b,
                Cmp::Gt => a > b,
                Cmp::Ge => a >= b,
            }
        }
        Cond::SignNegative(a) => {
            let a = v[a % len];
            let negative = Float::is_sign_negative(a);
            let seen = tr.see(a);
            // The sign of a zero is not a value every type agrees on: f64's
            // `max(-0.0, 0.0)` may give either, mixad's tie rule gives `+0`.
            tr.undefined |= seen == 0.0;
            tr.flow
                .push(Decided::Holds(Kind::SignNegative, seen.is_sign_negative()));
            negative
        }
        Cond::Approx(t, a, b) => {
            let (a, b) = (v[a % len], v[b % len]);
            let holds = match t {
                Approx::AbsDiff(eps) => ext.abs_diff_eq(a, b, eps.eval(v)),
                Approx::Relative(eps, r) => ext.relative_eq(a, b, eps.eval(v), c(r)),
                Approx::Ulps(eps, n, k) => ext.ulps_eq(a, a + b * c(k) - b * c(k), c(eps), n),
            };
            tr.flow.push(Decided::Holds(t.kind(), holds));
            holds
        }
        Cond::IsZero(z) => {
            let z = z.eval(v, tr, ext);
            let zero = num_traits::Zero::is_zero(&z);
            tr.flow.push(Decided::Holds(Kind::IsZero, zero));
            zero
        }
    }
}

impl Tol {
    fn eval<T: Float>(self, v: &[T]) -> T {
        match self {
            Tol::Const(k) => c(k),
            Tol::Square(j, k) => c::<T>(k) * v[j % v.len()] * v[j % v.len()],
        }
    }
}

impl Zeroish {
    fn eval<T: Float, E: Ext<T>>(self, v: &[T], tr: &mut Trace, ext: E) -> T {
        let len = v.len();
        let z = match self {
            Zeroish::Fract(a, m) => {
                unary(UnOp::Rule(Unary::Fract, Dom::Any), v[a % len] * c(m), tr)
            }
            Zeroish::Relu(a) => relu(v[a % len], tr),
            Zeroish::Shift(a, k) => v[a % len] - c(k),
        };
        tr.value(z, ext);
        z
    }
}

/// `Float::max(a, c(0))`, traced as the rule it is.
fn relu<T: Float>(a: T, tr: &mut Trace) -> T {
    binary(BinOp::Rule(Binary::Max, Dom::Any, Dom::Any), a, c(0.0), tr)
}

fn eval<T: Float, E: Ext<T>>(e: &Expr, v: &[T], tr: &mut Trace, ext: E) -> T {
    let len = v.len();
    let y = match *e {
        Expr::Un(op, a) => unary(op, v[a % len], tr),
        Expr::Bin(op, a, b) => binary(op, v[a % len], v[b % len], tr),
        Expr::ZeroOr { z, y, alt, f } => {
            let z = z.eval(v, tr, ext);
            let zero = num_traits::Zero::is_zero(&z);
            tr.flow.push(Decided::Holds(Kind::ZeroOrDivide, zero));
            if zero {
                unary(alt, v[f % len], tr)
            } else {
                binary(
                    BinOp::Rule(Binary::Div, Dom::Any, Dom::Any),
                    v[y % len],
                    z,
                    tr,
                )
            }
        }
        Expr::Try(b, alt, f) => match block(&b, v, tr, ext) {
            Some(y) => y,
            None => unary(alt, v[f % len], tr),
        },
    };
    tr.value(y, ext);
    y
}

/// A block operation on its operands (see [`Block`]), `None` where it fails.
fn block<T: Float, E: Ext<T>>(b: &Block, v: &[T], tr: &mut Trace, ext: E) -> Option<T> {
    let len = v.len();
    let e = |i: usize| v[b.m[i] % len];
    let m = if b.op.spd() {
        let k = c::<T>(b.shift);
        [e(0) + k, e(1), e(2), e(3) + k]
    } else {
        [relu(e(0), tr), e(1), relu(e(2), tr), e(3)]
    };
    let y = ext.block(b.op, m, [v[b.rhs % len], c(1.0)]);
    tr.flow.push(Decided::Holds(Kind::Block(b.op), y.is_some()));
    if y.is_some() {
        // Relative distance to the singular matrices, 1/κ (derivatives through A⁻¹ carry
        // rounding errors of κ²ε relative to their size): the extreme eigenvalues' ratio
        // of the symmetric part, or |det| / ‖A‖²_F = σ_min σ_max / ‖A‖²_F ≤ σ_min / σ_max.
        let [p, q, r, s] = m.map(|a| tr.see(a));
        let distance = if b.op.spd() {
            let (mid, half) = (0.5 * (p + s), (0.5 * (p - s)).hypot(0.5 * (q + r)));
            (mid - half) / (mid + half)
        } else {
            (p * s - q * r) / (p * p + q * q + r * r + s * s)
        };
        if tr.on {
            tr.near(distance);
        }
    }
    y
}

fn unary<T: Float>(op: UnOp, a: T, tr: &mut Trace) -> T {
    let (u, dom) = match op {
        UnOp::Neg => return -a,
        UnOp::Affine(m, s) => return a * c(m) + c(s),
        UnOp::Rule(u, dom) => (u, dom),
    };
    tr.raw_operand(dom, a);
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
        BinOp::Rule(r, da, db) => (r, da, db),
    };
    tr.raw_operand(da, a);
    tr.raw_operand(db, b);
    let (a, b) = (da.apply(a), db.apply(b));
    let (x, y) = (tr.see(a), tr.see(b));
    tr.args.extend([x, y]);
    match r {
        Binary::Div => tr.near(y),
        Binary::Rem => {
            tr.near(y);
            // The quotient `fmod` takes, exactly: `trunc(x / y)` rounds, and where `x` is
            // a multiple of `y` up to rounding it says `n` where `fmod` took `n − 1`.
            tr.piece(((x - x % y) / y).round());
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
        Binary::Max | Binary::Min | Binary::AbsSub => tr.sign(x - y),
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
        Binary::AbsSub => Float::abs_sub(a, b),
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
    let binary = [Mul, Div, Rem, Powf, Atan2, Hypot, Max, Min, AbsSub];
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
        let mut out = Vec::new();
        self.walk(&mut |e| match e {
            Expr::Un(UnOp::Rule(u, _), _) => out.push(rule_name(*u)),
            Expr::Bin(BinOp::Rule(r, _, _), _, _) => out.push(format!("{r:?}")),
            _ => {}
        });
        out
    }

    /// The kinds of decision this program can take besides order comparisons (each
    /// `approx` comparison, `is_zero` and block operation drawn, once per site).
    pub fn kinds(&self) -> Vec<Kind> {
        let mut out = Vec::new();
        fn walk(b: &[Stmt], out: &mut Vec<Kind>) {
            for s in b {
                match s {
                    Stmt::Push(e) | Stmt::Update(_, _, e) => match e {
                        Expr::ZeroOr { .. } => out.push(Kind::ZeroOrDivide),
                        Expr::Try(b, ..) => out.push(Kind::Block(b.op)),
                        _ => {}
                    },
                    Stmt::If { cond, then, els } => {
                        match cond {
                            Cond::SignNegative(_) => out.push(Kind::SignNegative),
                            Cond::Approx(t, ..) => out.push(t.kind()),
                            Cond::IsZero(_) => out.push(Kind::IsZero),
                            Cond::Cmp(..) => {}
                        }
                        walk(then, out);
                        walk(els, out);
                    }
                    Stmt::Loop { body, .. } => walk(body, out),
                }
            }
        }
        walk(&self.body, &mut out);
        out
    }

    /// Calls `f` on every expression, fallback formulas included.
    fn walk(&self, f: &mut impl FnMut(&Expr)) {
        fn walk(b: &[Stmt], f: &mut impl FnMut(&Expr)) {
            for s in b {
                match s {
                    Stmt::Push(e) | Stmt::Update(_, _, e) => {
                        f(e);
                        match *e {
                            Expr::ZeroOr { alt, f: a, .. } | Expr::Try(_, alt, a) => {
                                f(&Expr::Un(alt, a))
                            }
                            _ => {}
                        }
                    }
                    Stmt::If { then, els, .. } => {
                        walk(then, f);
                        walk(els, f);
                    }
                    Stmt::Loop { body, .. } => walk(body, f),
                }
            }
        }
        walk(&self.body, f)
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
        Binary::AbsSub => "abs_sub",
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
        Expr::ZeroOr { z, y, alt, f } => format!(
            "{{ let z = {}; if num_traits::Zero::is_zero(&z) {{ {} }} else {{ {} / z }} }}",
            show_zeroish(z, len),
            show_expr(&Expr::Un(alt, f), len),
            slot(y)
        ),
        Expr::Try(b, alt, f) => {
            let op = b.op;
            let m = if op.spd() {
                let k = format!("c::<T>({:?})", b.shift);
                let [p, q, r, s] = b.m.map(slot);
                format!("[{p} + {k}, {q}, {r}, {s} + {k}]")
            } else {
                let relu = |i: usize| format!("Float::max({}, c::<T>(0.0))", slot(i));
                let [p, q, r, s] = b.m;
                format!("[{}, {}, {}, {}]", relu(p), slot(q), relu(r), slot(s))
            };
            let rhs = if op.solves() {
                format!(
                    ", &nalgebra::DVector::from_row_slice(&[{}, c::<T>(1.0)])",
                    slot(b.rhs)
                )
            } else {
                String::new()
            };
            let ok = if op.summed() {
                "y.iter().fold(T::zero(), |s, &e| s + e)"
            } else {
                "y"
            };
            format!(
                "{{ let m = nalgebra::DMatrix::from_row_slice(2, 2, &{m}); \
                 match mixad::linalg::{}(&m{rhs}) {{ Ok(y) => {ok}, Err(_) => {} }} }}",
                op.name(),
                show_expr(&Expr::Un(alt, f), len)
            )
        }
    }
}

fn show_zeroish(z: Zeroish, len: usize) -> String {
    match z {
        Zeroish::Fract(a, m) => format!("Float::fract(v[{}] * c::<T>({m:?}))", a % len),
        Zeroish::Relu(a) => format!("Float::max(v[{}], c::<T>(0.0))", a % len),
        Zeroish::Shift(a, k) => format!("v[{}] - c::<T>({k:?})", a % len),
    }
}

fn show_tol(t: Tol, len: usize) -> String {
    match t {
        Tol::Const(k) => format!("c::<T>({k:?})"),
        Tol::Square(j, k) => format!("c::<T>({k:?}) * v[{j}] * v[{j}]", j = j % len),
    }
}

fn show_cond(cond: &Cond, len: usize) -> String {
    let slot = |i: usize| format!("v[{}]", i % len);
    match *cond {
        Cond::Cmp(a, cmp, rhs) => {
            let cmp = match cmp {
                Cmp::Lt => "<",
                Cmp::Le => "<=",
                Cmp::Gt => ">",
                Cmp::Ge => ">=",
            };
            let rhs = match rhs {
                Rhs::Slot(j) => slot(j),
                Rhs::Const(k) => format!("c::<T>({k:?})"),
            };
            format!("{} {cmp} {rhs}", slot(a))
        }
        Cond::SignNegative(a) => format!("Float::is_sign_negative({})", slot(a)),
        Cond::Approx(Approx::AbsDiff(eps), a, b) => format!(
            "approx::AbsDiffEq::abs_diff_eq(&{}, &{}, {})",
            slot(a),
            slot(b),
            show_tol(eps, len)
        ),
        Cond::Approx(Approx::Relative(eps, r), a, b) => format!(
            "approx::RelativeEq::relative_eq(&{}, &{}, {}, c::<T>({r:?}))",
            slot(a),
            slot(b),
            show_tol(eps, len)
        ),
        Cond::Approx(Approx::Ulps(eps, n, k), a, b) => format!(
            "approx::UlpsEq::ulps_eq(&{a}, &({a} + {b} * c::<T>({k:?}) - {b} * c::<T>({k:?})), \
             c::<T>({eps:?}), {n})",
            a = slot(a),
            b = slot(b)
        ),
        Cond::IsZero(z @ Zeroish::Shift(..)) => {
            format!("num_traits::Zero::is_zero(&({}))", show_zeroish(z, len))
        }
        Cond::IsZero(z) => format!("num_traits::Zero::is_zero(&{})", show_zeroish(z, len)),
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
            Stmt::If { cond, then, els } => {
                writeln!(f, "{pad}if {} {{", show_cond(cond, *len))?;
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

/// The program as a Rust function (with `fn c<T: Scalar>(v: f64) -> T { T::cst(v) }`, and
/// `approx`, `nalgebra`, `num_traits` and `num_traits::Float` in scope).
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

/// `prop_oneof!` at the cost of one arm. proptest's unions give every arm before the picked
/// one a lazily built tree that holds a clone of the runner (its config and a fresh RNG):
/// with a union at every operation, rule and condition, that was most of the time the
/// suite spent generating programs. `OneOf` builds only the picked arm's tree and draws a
/// seed with it; shrinking moves to earlier arms as a union does (see
/// [`OneOfTree::simplify`]), building each from that seed when it gets there.
pub struct OneOf<T>(Arc<[(u32, BoxedStrategy<T>)]>);

/// `one_of![w₁ => s₁, w₂ => s₂, …]` or `one_of![s₁, s₂, …]`: a [`OneOf`].
macro_rules! one_of {
    ($($w:expr => $s:expr),+ $(,)?) => {
        OneOf::new(vec![$(($w, $s.boxed())),+])
    };
    ($($s:expr),+ $(,)?) => {
        OneOf::new(vec![$((1, $s.boxed())),+])
    };
}

impl<T: fmt::Debug> OneOf<T> {
    fn new(arms: Vec<(u32, BoxedStrategy<T>)>) -> Self {
        assert!(
            arms.iter().any(|&(w, _)| w > 0),
            "one_of! needs a positive weight"
        );
        OneOf(arms.into())
    }
}

impl<T> Clone for OneOf<T> {
    fn clone(&self) -> Self {
        OneOf(Arc::clone(&self.0))
    }
}

impl<T> fmt::Debug for OneOf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OneOf({} arms)", self.0.len())
    }
}

impl<T: fmt::Debug> Strategy for OneOf<T> {
    type Tree = OneOfTree<T>;
    type Value = T;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let total: u64 = self.0.iter().map(|&(w, _)| u64::from(w)).sum();
        let mut r = runner.rng().next_u64() % total;
        let pick = self
            .0
            .iter()
            .position(|&(w, _)| {
                let here = r < u64::from(w);
                r = r.wrapping_sub(u64::from(w));
                here
            })
            .expect("r < total");
        let seed = runner.rng().next_u64();
        let tree = self.0[pick].1.new_tree(runner)?;
        let mut trees: Vec<Arm<T>> = (0..self.0.len()).map(|_| Arm::Unbuilt).collect();
        trees[pick] = Arm::Built(tree);
        Ok(OneOfTree {
            arms: Arc::clone(&self.0),
            trees,
            seed,
            pick,
            min_pick: 0,
            prev_pick: None,
        })
    }
}

/// One arm's tree in a [`OneOfTree`].
enum Arm<T> {
    /// Not needed yet.
    Unbuilt,
    /// Its strategy rejected every value.
    Failed,
    /// Built.
    Built(Box<dyn ValueTree<Value = T>>),
}

/// The value tree of a [`OneOf`]: proptest's union tree, arms built on demand.
pub struct OneOfTree<T> {
    arms: Arc<[(u32, BoxedStrategy<T>)]>,
    trees: Vec<Arm<T>>,
    seed: u64,
    pick: usize,
    min_pick: usize,
    prev_pick: Option<usize>,
}

impl<T: fmt::Debug> OneOfTree<T> {
    fn tree(&mut self, i: usize) -> &mut Box<dyn ValueTree<Value = T>> {
        match &mut self.trees[i] {
            Arm::Built(tree) => tree,
            _ => unreachable!("arm {i} is picked, so built"),
        }
    }

    /// Builds arm `i` if it is not yet; true when it is built.
    fn build(&mut self, i: usize) -> bool {
        if let Arm::Unbuilt = self.trees[i] {
            let mut seed = [0u8; 16];
            seed[..8].copy_from_slice(&self.seed.to_le_bytes());
            seed[8..].copy_from_slice(&(i as u64).to_le_bytes());
            let rng = TestRng::from_seed(RngAlgorithm::XorShift, &seed);
            let mut runner = TestRunner::new_with_rng(Config::default(), rng);
            self.trees[i] = match self.arms[i].1.new_tree(&mut runner) {
                Ok(tree) => Arm::Built(tree),
                Err(_) => Arm::Failed,
            };
        }
        matches!(self.trees[i], Arm::Built(_))
    }
}

impl<T: fmt::Debug> ValueTree for OneOfTree<T> {
    type Value = T;

    fn current(&self) -> T {
        match &self.trees[self.pick] {
            Arm::Built(tree) => tree.current(),
            _ => unreachable!("the picked arm is built"),
        }
    }

    /// Simplifies the picked arm; when it cannot, moves to the nearest earlier arm that
    /// builds (arms are listed simplest first), as proptest's union does.
    fn simplify(&mut self) -> bool {
        if self.tree(self.pick).simplify() {
            self.prev_pick = None;
            return true;
        }
        if self.pick == self.min_pick {
            return false;
        }
        self.prev_pick = Some(self.pick);
        let mut next = self.pick;
        while next > self.min_pick {
            next -= 1;
            if self.build(next) {
                self.pick = next;
                return true;
            }
        }
        false
    }

    fn complicate(&mut self) -> bool {
        if let Some(pick) = self.prev_pick.take() {
            self.pick = pick;
            self.min_pick = pick;
            true
        } else {
            self.tree(self.pick).complicate()
        }
    }
}

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
    one_of![
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
    one_of![
        rule(Recip, either_sign().boxed()),
        rule(Sqrt, positive().boxed()),
        rule(Cbrt, one_of![any, either_sign()].boxed()),
        rule(Exp, one_of![any, squash.clone()].boxed()),
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
        rule(Sinh, one_of![any, squash.clone()].boxed()),
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
    one_of![
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
    one_of![
        Just(BinOp::Add),
        Just(BinOp::Sub),
        rule(Mul, any().boxed(), any().boxed()),
        rule(Div, any().boxed(), either_sign().boxed()),
        rule(Rem, any().boxed(), either_sign().boxed()),
        rule(
            Powf,
            positive().boxed(),
            one_of![any(), quarter(2, 8).prop_map(Dom::Squash)].boxed()
        ),
        rule(Atan2, any().boxed(), any().boxed()),
        rule(Hypot, any().boxed(), any().boxed()),
        rule(Max, any().boxed(), any().boxed()),
        rule(Min, any().boxed(), any().boxed()),
        rule(AbsSub, any().boxed(), any().boxed()),
    ]
}

/// A value exactly zero at some points: `fract(v·m)` (m a power of two, so zero on a
/// grid the points often lie on), `max(v, 0)` (a half-line), `v − k` (a grid point).
fn zeroish() -> impl Strategy<Value = Zeroish> {
    let power = one_of![Just(1.0), Just(2.0), Just(4.0), Just(8.0)];
    one_of![
        (slot(), power).prop_map(|(a, m)| Zeroish::Fract(a, m)),
        slot().prop_map(Zeroish::Relu),
        (slot(), quarter(-8, 8)).prop_map(|(a, k)| Zeroish::Shift(a, k)),
    ]
}

/// A fallible block operation with its operands.
fn block_op() -> impl Strategy<Value = Block> {
    use Fallible::*;
    let op = one_of![
        Just(LogDetSpd),
        Just(Cholesky),
        Just(CholeskySolve),
        Just(LogAbsDet),
        Just(Solve),
        Just(Inverse)
    ];
    (op, [slot(), slot(), slot(), slot()], quarter(0, 8), slot())
        .prop_map(|(op, m, shift, rhs)| Block { op, m, shift, rhs })
}

fn expr() -> impl Strategy<Value = Expr> {
    one_of![
        10 => (unary_op(), slot()).prop_map(|(op, a)| Expr::Un(op, a)),
        10 => (binary_op(), slot(), slot()).prop_map(|(op, a, b)| Expr::Bin(op, a, b)),
        1 => (zeroish(), slot(), unary_op(), slot())
            .prop_map(|(z, y, alt, f)| Expr::ZeroOr { z, y, alt, f }),
        2 => (block_op(), unary_op(), slot()).prop_map(|(b, alt, f)| Expr::Try(b, alt, f)),
    ]
}

fn update() -> impl Strategy<Value = Stmt> {
    let assign = one_of![
        Just(Assign::Set),
        Just(Assign::Add),
        Just(Assign::Sub),
        Just(Assign::Mul)
    ];
    (slot(), assign, expr()).prop_map(|(i, op, e)| Stmt::Update(i, op, e))
}

fn cmp() -> impl Strategy<Value = Cmp> {
    one_of![Just(Cmp::Lt), Just(Cmp::Le), Just(Cmp::Gt), Just(Cmp::Ge)]
}

fn rhs() -> impl Strategy<Value = Rhs> {
    one_of![
        slot().prop_map(Rhs::Slot),
        quarter(-8, 8).prop_map(Rhs::Const),
    ]
}

/// An `approx` comparison, tolerances on the scale of the values (inputs lie in
/// `[-2, 2]`), so that both outcomes are common and often differ between two points.
fn approx_test() -> impl Strategy<Value = Approx> {
    let tol = |lo, hi| {
        one_of![
            3 => quarter(lo, hi).prop_map(Tol::Const),
            1 => (slot(), quarter(lo, hi)).prop_map(|(j, k)| Tol::Square(j, k)),
        ]
    };
    // relative_eq: an absolute tolerance of at most 1/8, so the relative test decides.
    let small = (0i32..=2).prop_map(|k| Tol::Const(f64::from(k) / 16.0));
    one_of![
        tol(1, 8).prop_map(Approx::AbsDiff),
        (one_of![3 => small, 1 => tol(0, 1)], quarter(1, 2))
            .prop_map(|(eps, r)| Approx::Relative(eps, r)),
        (
            one_of![Just(0.0), Just(f64::EPSILON)],
            0u32..=4,
            one_of![Just(1.0), Just(64.0), Just(4096.0)]
        )
            .prop_map(|(eps, n, k)| Approx::Ulps(eps, n, k)),
    ]
}

fn cond() -> impl Strategy<Value = Cond> {
    one_of![
        8 => (slot(), cmp(), rhs()).prop_map(|(a, cmp, rhs)| Cond::Cmp(a, cmp, rhs)),
        1 => slot().prop_map(Cond::SignNegative),
        3 => (approx_test(), slot(), slot()).prop_map(|(t, a, b)| Cond::Approx(t, a, b)),
        1 => zeroish().prop_map(Cond::IsZero),
    ]
}

/// Statements allowed inside a block: in-place updates, and (one level down) an `if`.
fn block_stmt(depth: u32) -> BoxedStrategy<Stmt> {
    if depth == 0 {
        return update().boxed();
    }
    let inner = || prop::collection::vec(block_stmt(depth - 1), 0..=2);
    one_of![
        3 => update(),
        1 => (cond(), inner(), inner()).prop_map(|(cond, then, els)| {
            Stmt::If { cond, then, els }
        }),
    ]
    .boxed()
}

fn top_stmt() -> impl Strategy<Value = Stmt> {
    let block = || prop::collection::vec(block_stmt(1), 0..=3);
    one_of![
        5 => expr().prop_map(Stmt::Push),
        3 => update(),
        2 => (cond(), block(), block()).prop_map(|(cond, then, els)| {
            Stmt::If { cond, then, els }
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
    one_of![
        prop::collection::vec((-128i32..=128).prop_map(|k| f64::from(k) / 64.0), n),
        prop::collection::vec(-2.0f64..2.0, n),
    ]
}
