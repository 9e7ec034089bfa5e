//! Shrunk programs from `tests/differential.rs`, kept as plain tests: each runs every
//! property of `programs::checks` on one fixed case, which must pass (not merely be
//! skipped as outside what the property can judge).
//!
//! To keep a new failure: copy the printed program into a doc comment, build the same
//! `Program` from `programs::{Stmt, Expr, …}`, and add the points it failed at.
//!
//! None of these is a mixad bug: each is a case that once broke the harness's own
//! reasoning (which branch a replay must re-record, how close modes must agree) or that a
//! deliberately broken mixad fails, so they guard both the library and the properties.

mod programs;

use mixad::rules::Binary;
use proptest::test_runner::TestCaseError;

use programs::checks::{check_differences, check_modes, check_replay, Case};
use programs::{Assign, BinOp, Dom, Expr, Program, Stmt};

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
            Stmt::Push(Expr::Bin(BinOp::AbsSub, 0, 1)),
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
