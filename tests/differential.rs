//! Differential testing: random programs (see `programs/mod.rs`) differentiated in every
//! mode must agree with each other, with finite differences, and across replays. The
//! properties themselves are in `programs/checks.rs`.
//!
//! Properties, each its own test:
//! - `modes_agree`: value at `f64`; the gradient by forward mode at every chunk size, by
//!   reverse mode, and by a recording; the Hessian serial and on two threads at several
//!   chunk sizes, by `hvp` (plain and prepared), and nested (forward over forward, forward
//!   over reverse, reverse over forward, reverse over reverse, reverse over translated
//!   forward) all agree to a tight tolerance, and every Hessian is exactly symmetric.
//! - `finite_differences_agree`: gradient and Hessian against `mixad::check`'s
//!   Richardson-extrapolated differences at two steps, when every point of the stencils
//!   lies on the same smooth piece as `x`.
//! - `replay_never_stale`: a recording, a prepared Hessian (serial and on two threads) and
//!   recordings of a derivative, replayed at a second point and back, give what a fresh
//!   evaluation gives; they re-record exactly when a branch went the other way.
//! - `generator_covers_its_ground`: the generator draws every rule, and most cases pass
//!   each property's filters (none of the above is vacuous).
//!
//! A failure prints the shrunk program as a Rust function and the points. Keep it as a
//! regression test in `differential_regressions.rs`. `MIXAD_PROPTEST_CASES` sets the
//! number of cases of every property (a soak run):
//! `MIXAD_PROPTEST_CASES=50000 cargo test --release --test differential`.

mod programs;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use programs::checks::{check_differences, check_modes, check_replay, resolved, Case, PEAK};
use programs::{point, program};

fn case(len: usize) -> impl Strategy<Value = Case> {
    // Points are drawn for the largest n and cut to the program's: a flat map from the
    // program to its points would shrink poorly.
    (program(len), point(8), point(8), point(8), any::<bool>()).prop_map(
        |(program, x, far, v, near)| {
            let n = program.n;
            let x2 = if near {
                x.iter().zip(&far).map(|(a, d)| a + d / 64.0).collect()
            } else {
                far
            };
            let cut = |p: Vec<f64>| p[..n].to_vec();
            Case {
                program,
                x: cut(x),
                x2: cut(x2),
                v: cut(v),
            }
        },
    )
}

/// Cases per property: `default`, or `MIXAD_PROPTEST_CASES` when set.
fn config(default: u32) -> Config {
    let cases = std::env::var("MIXAD_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        // Shrunk failures are kept as plain tests in differential_regressions.rs.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_global_rejects: cases.saturating_mul(4).max(1024),
        ..Config::default()
    }
}

/// Largest statement count of a generated program.
const LEN: usize = 20;

// Default case counts, sized for CI: about 15 s of the suite on two cores (modes are the
// dearest, ~2 ms a case). MIXAD_PROPTEST_CASES overrides all three for a soak run.

proptest! {
    #![proptest_config(config(6_000))]

    /// Every mode of differentiation gives the same value, gradient and Hessian.
    #[test]
    fn modes_agree(c in case(LEN)) {
        check_modes(&c)?;
    }
}

proptest! {
    #![proptest_config(config(12_000))]

    /// Gradients and Hessians match finite differences on smooth pieces.
    #[test]
    fn finite_differences_agree(c in case(LEN)) {
        check_differences(&c)?;
    }
}

proptest! {
    #![proptest_config(config(10_000))]

    /// Replayed recordings are never stale.
    #[test]
    fn replay_never_stale(c in case(LEN)) {
        check_replay(&c)?;
    }
}

/// The generator's reach: over a fixed sample, every rule is drawn, and most cases get
/// past each property's filters, so none of the properties above is vacuous.
#[test]
fn generator_covers_its_ground() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = case(LEN);
    let (mut total, mut modes, mut smooth, mut flipped, mut loops) = (0, 0, 0, 0, 0);
    let mut rules = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        total += 1;
        rules.extend(c.program.rules());
        let (y, t) = c.program.trace(&c.x);
        if y.is_finite() && !t.undefined && t.margin > 1e-3 && t.peak < PEAK {
            modes += 1;
        }
        if y.is_finite() && t.margin > 0.1 && t.peak < PEAK && resolved(&c.program, &c.x, &t) {
            smooth += 1;
        }
        if t.flow != c.program.trace(&c.x2).1.flow {
            flipped += 1;
        }
        if t.flow.len() > 1 {
            loops += 1;
        }
    }
    eprintln!(
        "{total} cases: {modes} past the mode filter, {smooth} past the smoothness filter, \
         {flipped} flip a branch at the second point, {loops} take two decisions or more; \
         {} distinct operations",
        rules.len()
    );
    let (unary, binary) = programs::all_rules();
    for r in unary.iter().chain(&binary) {
        assert!(rules.contains(r), "{r} never drawn");
    }
    assert!(modes * 10 > total * 8, "too few cases checked across modes");
    assert!(
        smooth * 10 > total * 6,
        "too few cases checked against differences"
    );
    assert!(flipped * 5 > total, "too few replays cross a branch");
    assert!(loops * 5 > total, "too few programs branch more than once");
}
