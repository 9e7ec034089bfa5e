//! Shrunk programs from the random differential tests (`differential/mod.rs`), kept as
//! plain tests: each runs every property of `programs::checks` on one fixed case, which
//! must pass (not merely be skipped as outside what the property can judge).
//!
//! To keep a new failure: copy the printed program into a doc comment, build the same
//! `Program` from `programs::{Stmt, Expr, …}`, and add the points it failed at.
//!
//! None of these is a mixad bug: each is a case that once broke the harness's own
//! reasoning (which branch a replay must re-record, how close modes must agree) or that a
//! deliberately broken mixad fails, so they guard both the library and the properties.

use crate::common::programs;

use mixad::rules::{Binary, Unary};
use proptest::test_runner::TestCaseError;

use programs::checks::{check_differences, check_modes, check_replay, Case};
use programs::{
    Assign, BinOp, Block, Cmp, Cond, Dom, Expr, Fallible, Program, Rhs, Stmt, UnOp, Zeroish,
};

/// One property of a case.
type Check = fn(&Case) -> Result<(), TestCaseError>;

/// Runs every property on the case; a failure or a skip panics with the case printed.
fn must_pass(case: Case) {
    let checks: [(&str, Check); 3] = [
        ("modes agree", check_modes),
        ("finite differences agree", check_differences),
        ("replay never stale", check_replay),
    ];
    for (name, check) in checks {
        match check(&case) {
            Ok(()) => {}
            Err(TestCaseError::Fail(why)) => panic!("{name} failed: {why}\n{case:?}"),
            Err(TestCaseError::Reject(why)) => panic!("{name} skipped the case: {why}\n{case:?}"),
        }
    }
}

fn case(program: Program, x: &[f64], x2: &[f64], v: &[f64]) -> Case {
    Case {
        program,
        x: x.to_vec(),
        x2: x2.to_vec(),
        v: v.to_vec(),
    }
}

/// A loop whose condition holds with equality at `x` (`0 < 0` is false) and strictly at
/// `x2`: the replay must see the loop now runs. Skipping one guard in
/// `Program::guards_hold` made exactly this case fail.
/// ```text
/// let mut k = 0;
/// while k < 1 && v[0] < c::<T>(0.0) {
///     v[0] += c::<T>(0.25);
///     k += 1;
/// }
/// ```
#[test]
fn loop_entered_at_the_second_point() {
    let program = Program {
        n: 1,
        body: vec![Stmt::Loop {
            s: 0,
            bound: 0.0,
            step: 0.25,
            max: 1,
            body: vec![],
        }],
    };
    // From the tie itself (finite differences cannot judge there) …
    check_replay(&case(program.clone(), &[0.0], &[-1.0 / 64.0], &[1.0])).unwrap();
    // … and from a point off it.
    must_pass(case(program, &[0.5], &[-1.0 / 64.0], &[1.0]));
}

/// `abs_sub` (a `max` with 0) under a recording of a derivative: the rule itself runs at
/// `Var<f64>`, so its own comparison is a guard; moving off the tie re-records.
/// ```text
/// v.push(v[0] + v[0]); // v[1]
/// v.push(Float::abs_sub(v[0], v[1])); // v[2]
/// ```
#[test]
fn abs_sub_leaving_a_tie_in_a_recorded_derivative() {
    let program = Program {
        n: 1,
        body: vec![
            Stmt::Push(Expr::Bin(BinOp::Add, 0, 0)),
            Stmt::Push(Expr::Bin(
                BinOp::Rule(Binary::AbsSub, Dom::Any, Dom::Any),
                0,
                1,
            )),
        ],
    };
    let c = case(program, &[0.0], &[1.0 / 64.0], &[1.0]);
    // At the tie itself finite differences cannot judge; modes and replays can.
    check_modes(&c).unwrap();
    check_replay(&c).unwrap();
}

/// `powf` with exponent 0 at the recording point: the rule's special case for `b = 0` is a
/// comparison on the exponent, guarded in a recorded derivative.
/// ```text
/// v[0] = Float::powf(c::<T>(0.25) + v[0] * v[0], v[0]);
/// ```
#[test]
fn powf_leaving_a_zero_exponent() {
    let program = Program {
        n: 1,
        body: vec![Stmt::Update(
            0,
            Assign::Set,
            Expr::Bin(BinOp::Rule(Binary::Powf, Dom::Above(0.25), Dom::Any), 0, 0),
        )],
    };
    must_pass(case(program.clone(), &[0.0], &[-1.0 / 64.0], &[1.0]));
    must_pass(case(program, &[0.75], &[0.0], &[-1.0]));
}

/// `%` of a value that is a multiple of the divisor up to rounding (`a − a % b`, then
/// `% b` again): `fmod` comes back `≈ b` or `0` depending on rounding, so `x` can be an
/// isolated point whose whole stencil lies on another piece. The trace once took `%`'s
/// piece as `trunc(a / b)` with a rounded division, which said `3` at `x` and at every
/// stencil point where `fmod` took quotient `2` at `x`: the differences of the piece with
/// quotient 3 (`v[3] ≈ 0`) were then held against the derivative at `x`, where
/// `v[3] ≈ b` enters `v[3] *= v[1]`, and failed.
/// ```text
/// v.push(v[0] * c::<T>(1.0) + c::<T>(0.0)); // v[1]
/// v[0] = v[0] * c::<T>(5.0) + c::<T>(0.0);
/// v.push(v[0] % (c::<T>(0.5) + v[1] * v[1])); // v[2]
/// let e = v[2] * c::<T>(1.0) + c::<T>(0.0);
/// v[0] -= e;
/// v.push(v[0] % (c::<T>(0.5) + v[1] * v[1])); // v[3]
/// let e = v[1] * c::<T>(1.0) + c::<T>(0.0);
/// v[3] *= e;
/// ```
#[test]
fn rem_of_a_rounded_multiple() {
    let rem = Expr::Bin(BinOp::Rule(Binary::Rem, Dom::Any, Dom::Above(0.5)), 0, 1);
    let program = Program {
        n: 1,
        body: vec![
            Stmt::Push(Expr::Un(UnOp::Affine(1.0, 0.0), 0)),
            Stmt::Update(0, Assign::Set, Expr::Un(UnOp::Affine(5.0, 0.0), 0)),
            Stmt::Push(rem),
            Stmt::Update(0, Assign::Sub, Expr::Un(UnOp::Affine(1.0, 0.0), 2)),
            Stmt::Push(rem),
            Stmt::Update(3, Assign::Mul, Expr::Un(UnOp::Affine(1.0, 0.0), 1)),
        ],
    };
    let c = case(program, &[0.84475], &[0.8125], &[1.0]);
    // The stencil is not on x's piece: the differences may only skip.
    if let Err(TestCaseError::Fail(why)) = check_differences(&c) {
        panic!("finite differences failed: {why}\n{c:?}");
    }
    check_modes(&c).unwrap();
    check_replay(&c).unwrap();
}

/// `is_zero` of a value that is zero with a non-zero derivative (`fract(4x)` at `x = ¼`,
/// slope 4): every type must take the branch `f64` takes, looking at the value only. A
/// mixad whose `is_zero` also asked for a zero derivative divides by zero here, and the
/// reverse value (NaN) differs from `f64`'s.
/// ```text
/// v.push({ let z = Float::fract(v[0] * c::<T>(4.0)); if num_traits::Zero::is_zero(&z) { Float::sin(v[0]) } else { v[0] / z } }); // v[1]
/// ```
#[test]
fn is_zero_of_a_zero_with_a_slope() {
    let program = Program {
        n: 1,
        body: vec![Stmt::Push(Expr::ZeroOr {
            z: Zeroish::Fract(0, 4.0),
            y: 0,
            alt: UnOp::Rule(Unary::Sin, Dom::Any),
            f: 0,
        })],
    };
    // At the zero (finite differences cannot judge there) and off it, there and back.
    let c = case(program.clone(), &[0.25], &[0.25 + 1.0 / 64.0], &[1.0]);
    check_modes(&c).unwrap();
    check_replay(&c).unwrap();
    must_pass(case(program, &[0.375], &[0.25], &[1.0]));
}

/// A block operation whose outcome flips between the points, both ways: `log_det_spd` of
/// `[[x + ½, x], [x, x + ½]]` (eigenvalues `½ + 2x` and `½`) succeeds for `x > −¼`, and
/// its `Err` is handled by a fallback with another derivative. The recording made where it
/// succeeded must record again where it fails (a block that fails at a replay point is a
/// failed guard), and the one made where it failed (a `Fails` guard) where it succeeds.
/// ```text
/// v.push({ let m = nalgebra::DMatrix::from_row_slice(2, 2, &[v[0] + c::<T>(0.5), v[0], v[0], v[0] + c::<T>(0.5)]); match mixad::linalg::log_det_spd(&m) { Ok(y) => y, Err(_) => Float::sin(v[0]) } }); // v[1]
/// ```
#[test]
fn block_operation_failing_at_one_point() {
    let block = Block {
        op: Fallible::LogDetSpd,
        m: [0; 4],
        shift: 0.5,
        rhs: 0,
    };
    let program = Program {
        n: 1,
        body: vec![Stmt::Push(Expr::Try(
            block,
            UnOp::Rule(Unary::Sin, Dom::Any),
            0,
        ))],
    };
    must_pass(case(program.clone(), &[0.5], &[-0.5], &[1.0]));
    must_pass(case(program, &[-0.5], &[0.5], &[1.0]));
}

/// Values within bounds, derivatives not: `v[0]` (≈ −5·10⁵) moves at ≈ −5·10⁸ per unit
/// of `x`, so `v[3] = sin(v[0])·v[2]` has a second derivative near 4·10²¹, which
/// `v[5] = v[4] − v[3]` cancels in the sum, leaving a Hessian of 1.7·10¹¹ that modes get
/// only to their rounding errors (≈ 10⁴ apart). With values alone bounded (`PEAK`), modes
/// were held to 1e-9 here and failed; the slopes are bounded too (`Program::slope`).
/// ```text
/// v.push(Float::to_degrees(v[0])); // v[1]
/// v.push({ let z = Float::fract(v[0] * c::<T>(1.0)); if num_traits::Zero::is_zero(&z) { Float::recip(c::<T>(0.25) + v[0] * v[0]) } else { v[1] / z } }); // v[2]
/// let e = Float::hypot(v[0], v[1]);
/// v[2] *= e;
/// v.push({ let z = Float::fract(v[1] * c::<T>(4.0)); if num_traits::Zero::is_zero(&z) { Float::recip(c::<T>(0.25) + v[0] * v[0]) } else { v[0] / z } }); // v[3]
/// if v[2] < v[0] {
/// } else {
///     let e = Float::powf(c::<T>(0.25) + v[2] * v[2], c::<T>(0.75) * Float::tanh(v[3]));
///     v[0] -= e;
///     v[3] = Float::sin(v[0]);
/// }
/// v.push(Float::recip(c::<T>(0.25) + v[0] * v[0])); // v[4]
/// v.push(v[0] + v[1]); // v[5]
/// v.push(Float::hypot(v[0], v[0])); // v[6]
/// if v[0] < v[0] {
/// } else {
///     let e = v[2] % (c::<T>(0.25) + v[0] * v[0]);
///     v[3] *= e;
/// }
/// v[5] = v[4] - v[3];
/// v.push(Float::floor(v[0])); // v[7]
/// let mut k = 0;
/// while k < 1 && v[4] < c::<T>(0.0) {
///     v[4] += c::<T>(0.25);
///     k += 1;
/// }
/// ```
#[test]
fn cancelling_huge_second_derivatives() {
    let recip = UnOp::Rule(Unary::Recip, Dom::Above(0.25));
    let rule = |r, a, b| BinOp::Rule(r, a, b);
    let program = Program {
        n: 1,
        body: vec![
            Stmt::Push(Expr::Un(UnOp::Rule(Unary::ToDegrees, Dom::Any), 0)),
            Stmt::Push(Expr::ZeroOr {
                z: Zeroish::Fract(0, 1.0),
                y: 1,
                alt: recip,
                f: 0,
            }),
            Stmt::Update(
                2,
                Assign::Mul,
                Expr::Bin(rule(Binary::Hypot, Dom::Any, Dom::Any), 0, 1),
            ),
            Stmt::Push(Expr::ZeroOr {
                z: Zeroish::Fract(1, 4.0),
                y: 0,
                alt: recip,
                f: 0,
            }),
            Stmt::If {
                cond: Cond::Cmp(2, Cmp::Lt, Rhs::Slot(0)),
                then: vec![],
                els: vec![
                    Stmt::Update(
                        0,
                        Assign::Sub,
                        Expr::Bin(
                            rule(Binary::Powf, Dom::Above(0.25), Dom::Squash(0.75)),
                            2,
                            3,
                        ),
                    ),
                    Stmt::Update(
                        3,
                        Assign::Set,
                        Expr::Un(UnOp::Rule(Unary::Sin, Dom::Any), 0),
                    ),
                ],
            },
            Stmt::Push(Expr::Un(recip, 0)),
            Stmt::Push(Expr::Bin(BinOp::Add, 0, 1)),
            Stmt::Push(Expr::Bin(rule(Binary::Hypot, Dom::Any, Dom::Any), 0, 0)),
            Stmt::If {
                cond: Cond::Cmp(0, Cmp::Lt, Rhs::Slot(0)),
                then: vec![],
                els: vec![Stmt::Update(
                    3,
                    Assign::Mul,
                    Expr::Bin(rule(Binary::Rem, Dom::Any, Dom::Above(0.25)), 2, 0),
                )],
            },
            Stmt::Update(5, Assign::Set, Expr::Bin(BinOp::Sub, 4, 3)),
            Stmt::Push(Expr::Un(UnOp::Rule(Unary::Floor, Dom::Any), 0)),
            Stmt::Loop {
                s: 4,
                bound: 0.0,
                step: 0.25,
                max: 1,
                body: vec![],
            },
        ],
    };
    let c = case(program, &[-1.4002404258878978], &[0.0], &[0.0]);
    // Modes cannot judge here (they may only skip); replays must be exact all the same.
    if let Err(TestCaseError::Fail(why)) = check_modes(&c) {
        panic!("modes failed: {why}\n{c:?}");
    }
    check_replay(&c).unwrap();
}

/// `asin(¼·sin(v[1]))` with `v[1] ≈ 6190` moving by ≈ 21 per step of `x`: the mapped
/// operand stays in `[−¼, ¼]` while `sin` goes round several times within the stencil.
/// The trace once recorded only mapped operands, so the stencil counted as resolved and
/// the differences, of an oscillation they cannot follow, failed.
/// ```text
/// let e = Float::to_degrees(v[0]);
/// v[0] *= e;
/// v.push(v[0] * v[0]); // v[1]
/// v.push(Float::asin(c::<T>(0.25) * Float::sin(v[1]))); // v[2]
/// ```
#[test]
fn oscillation_inside_a_domain_map() {
    let program = Program {
        n: 1,
        body: vec![
            Stmt::Update(
                0,
                Assign::Mul,
                Expr::Un(UnOp::Rule(Unary::ToDegrees, Dom::Any), 0),
            ),
            Stmt::Push(Expr::Bin(
                BinOp::Rule(Binary::Mul, Dom::Any, Dom::Any),
                0,
                0,
            )),
            Stmt::Push(Expr::Un(UnOp::Rule(Unary::Asin, Dom::Wave(0.25)), 1)),
        ],
    };
    let c = case(program, &[-1.171875], &[0.0], &[0.0]);
    if let Err(TestCaseError::Fail(why)) = check_differences(&c) {
        panic!("finite differences failed: {why}\n{c:?}");
    }
    // Its slopes exceed what modes are judged at (`MODES_PEAK`): they may only skip.
    if let Err(TestCaseError::Fail(why)) = check_modes(&c) {
        panic!("modes failed: {why}\n{c:?}");
    }
    check_replay(&c).unwrap();
}

/// A program's value at every engine against `f64`'s (NaN equal to NaN): the value and
/// its derivatives come from one evaluation.
fn same_value_as_f64(program: &Program, x: &[f64]) {
    use mixad::forward::Dual;
    use mixad::reverse::Var;
    let want = program.trace(x).0;
    let same = |a: f64| a.to_bits() == want.to_bits() || (a.is_nan() && want.is_nan());
    let reverse = mixad::reverse::value_and_gradient(|v: &[Var<f64>]| program.run(v), x).0;
    let dual: Vec<Dual<f64>> = x.iter().map(|&a| Dual::variable(a)).collect();
    let forward = program.run(&dual).value;
    assert!(
        same(reverse) && same(forward),
        "at {x:?}: f64 {want}, reverse {reverse}, forward {forward}\n{program}"
    );
}

/// `exp` four times: `∞` at `x = 1.5` (finite at `x ≤ 0.6`).
fn overflow() -> Vec<Stmt> {
    let exp = Stmt::Update(
        0,
        Assign::Set,
        Expr::Un(UnOp::Rule(Unary::Exp, Dom::Any), 0),
    );
    vec![exp.clone(), exp.clone(), exp.clone(), exp]
}

/// mixad's `max`/`min` at a tie of two infinities: `f64`'s `max(∞, ∞)` is `∞`, mixad's
/// tie rule `b − (b − a)/2` gave `∞ − NaN = NaN`, in every engine (now the tie of two
/// infinities is the infinity). Found by
/// `replay_never_stale`: in a recording made where a program overflowed, the comparison
/// `v[0] < v[1]` below is unordered (`∞ < NaN`) where `f64` says equal, so a replay at a
/// finite point where they are equal records again though no decision changed (the
/// property now skips points where a value is not finite).
/// ```text
/// v[0] = Float::exp(v[0]); // four times
/// v.push(Float::max(v[0], v[0])); // v[1]
/// if v[0] < v[1] {
/// } else {
/// }
/// ```
#[test]
fn max_of_two_infinities() {
    use mixad::forward::Dual;
    use num_traits::Float;
    let inf = f64::INFINITY;
    let max = Float::max(Dual::new(inf, 1.0), Dual::new(inf, 0.0)).value;
    let min = Float::min(Dual::new(-inf, 1.0), Dual::new(-inf, 0.0)).value;
    assert!(
        max == inf && min == -inf,
        "max(∞, ∞) = {max}, min(−∞, −∞) = {min}"
    );
    let mut body = overflow();
    body.push(Stmt::Push(Expr::Bin(
        BinOp::Rule(Binary::Max, Dom::Any, Dom::Any),
        0,
        0,
    )));
    body.push(Stmt::If {
        cond: Cond::Cmp(0, Cmp::Lt, Rhs::Slot(1)),
        then: vec![],
        els: vec![],
    });
    same_value_as_f64(&Program { n: 1, body }, &[1.5]);
}

/// mixad's `abs_sub` of NaN: `num_traits`' `f64::abs_sub(NaN, NaN)` is NaN, mixad's was
/// 0 in every engine, being `max(a − b, 0)`, whose `max` drops a NaN as `f64::max` does
/// (now `abs_sub` is a rule of its own, `Binary::AbsSub`). Found by `replay_never_stale`: `v[0] < v[0]` after it is unordered on `f64` and equal in
/// mixad, so the property expected a recording to record again where mixad (rightly, for
/// its values) did not.
/// ```text
/// v[0] = Float::exp(v[0]); // four times: ∞
/// v[0] = v[0] - v[0]; // NaN
/// v.push(Float::abs_sub(v[0], v[0])); // v[1]
/// v[0] = v[1] * c::<T>(0.0) + c::<T>(0.0); // the NaN gone but through v[1]
/// ```
#[test]
fn abs_sub_of_nan() {
    let mut body = overflow();
    body.push(Stmt::Update(0, Assign::Set, Expr::Bin(BinOp::Sub, 0, 0)));
    body.push(Stmt::Push(Expr::Bin(
        BinOp::Rule(Binary::AbsSub, Dom::Any, Dom::Any),
        0,
        0,
    )));
    body.push(Stmt::Update(
        0,
        Assign::Set,
        Expr::Un(UnOp::Affine(0.0, 0.0), 1),
    ));
    same_value_as_f64(&Program { n: 1, body }, &[1.5]);
}
