//! Tests `src/check.rs`.
//!
//! `mixad::check`: correct derivatives pass, wrong ones (the negative controls) are caught
//! at the right component, and the report reads well.
//!
//! The second half covers functions whose correct derivatives a fixed-step check called
//! WRONG: badly scaled coefficients, a logarithm near zero, steep and fast-oscillating
//! functions, and cancellation against a large value. Each must pass in every checker it
//! applies to, with its mistakes still caught; what differences cannot decide must be
//! inconclusive, never WRONG.
//!
//! Also: a rule of order 0 gives `check_rule` nothing to check.

use mixad::check::{
    self, check_gradient, check_gradient_of, check_gradient_with, check_hessian, check_hessian_of,
    check_jacobian, check_rule, CheckOptions, CheckReport, Reason, Verdict,
};
use mixad::rules::CustomRule;
use num_traits::Float;

fn f<T: Float>(x: &[T]) -> T {
    let two = T::one() + T::one();
    x[0].sin() * x[1].exp() + (x[2] * x[0]).powi(2) / two + x[1].atan2(x[2] + two)
}

fn g<T: Float>(x: &[T]) -> Vec<T> {
    vec![x[0] * x[1], x[1].tanh() + x[2], (x[0] * x[2]).exp()]
}

const X: [f64; 3] = [0.4, -0.3, 1.1];

/// The indices of the components a report found wrong.
fn wrong_components(report: &CheckReport) -> Vec<(usize, usize)> {
    report
        .components
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.index)
        .collect()
}

/// f's gradient written by hand, with an optional mistake in component 2.
fn hand_gradient(x: &[f64], mistake: f64) -> Vec<f64> {
    let r = x[1] * x[1] + (x[2] + 2.0) * (x[2] + 2.0);
    vec![
        x[0].cos() * x[1].exp() + x[2] * x[2] * x[0],
        x[0].sin() * x[1].exp() + (x[2] + 2.0) / r,
        x[0] * x[0] * x[2] - x[1] / r + mistake,
    ]
}

#[test]
fn mixads_own_derivatives_pass() {
    for report in [
        check_gradient(f, &X),
        check_hessian(f, &X),
        check_jacobian(g, &X),
    ] {
        assert!(report.passed(), "{report}");
        assert!(
            report.components.iter().all(|c| c.rel_error < 1e-8),
            "{report}"
        );
    }
}

#[test]
fn a_correct_hand_written_gradient_passes() {
    let report = check_gradient_of(f, |x| hand_gradient(x, 0.0), &X);
    assert!(report.passed(), "{report}");
    assert_eq!(report.components.len(), 3);
}

#[test]
fn negative_control_a_wrong_hand_written_gradient_is_caught_at_its_component() {
    let report = check_gradient_of(f, |x| hand_gradient(x, 1e-3), &X);
    assert!(!report.passed());
    let bad = wrong_components(&report);
    assert_eq!(bad, vec![(2, 0)]);
    assert_eq!(report.worst().unwrap().index, (2, 0));
    let text = report.to_string();
    assert!(
        text.contains("FAILED") && text.contains("WRONG") && text.contains("worst: (2,0)"),
        "{text}"
    );
}

#[test]
fn negative_control_a_wrong_hand_written_derivative_of_a_cube_is_caught() {
    // h(x) = x³ with its derivative claimed as 2x² (should be 3x²), as a hand-written
    // gradient.
    let report = check_gradient_of(|x| x[0].powi(3), |x| vec![2.0 * x[0] * x[0]], &[1.5]);
    assert!(!report.passed(), "{report}");
    let c = report.components[0];
    assert!(
        (c.finite_difference - 3.0 * 1.5 * 1.5).abs() < 1e-9,
        "{report}"
    );
    assert_eq!(c.claimed, 2.0 * 1.5 * 1.5);
}

#[test]
fn negative_control_a_wrong_rule_inside_the_function_is_caught() {
    // A custom rule for x³ whose derivative is wrong (2x² where 3x² is right), used inside
    // the function: mixad's own gradient inherits the mistake, and the check against
    // finite differences catches it at the component that goes through the rule.
    let cube = CustomRule::unary("cube", &[|x| x * x * x, |x| 2.0 * x * x]);
    let report = check_gradient(|x| cube.call1(x[0]) + x[1] * x[1], &[1.5, 0.5]);
    assert!(!report.passed(), "{report}");
    let bad = wrong_components(&report);
    assert_eq!(bad.len(), 1, "{report}");
    assert_eq!(bad[0].0, 0, "{report}");
    let c = report.components.iter().find(|c| !c.ok).unwrap();
    assert_eq!(c.claimed, 2.0 * 1.5 * 1.5);
    assert!(
        (c.finite_difference - 3.0 * 1.5 * 1.5).abs() < 1e-6,
        "{report}"
    );
}

#[test]
fn hand_written_hessian_checked_against_mixads_gradient() {
    let grad = |x: &[f64]| mixad::gradient(f, x);
    let exact = |x: &[f64]| {
        let h = mixad::hessian(f, x);
        (0..9).map(|k| h[(k / 3, k % 3)]).collect::<Vec<f64>>()
    };
    assert!(check_hessian_of(grad, exact, &X).passed());
    let wrong = |x: &[f64]| {
        let mut h = exact(x);
        h[1] += 0.01; // breaks symmetry: (0,1) wrong, (1,0) right
        h
    };
    let report = check_hessian_of(grad, wrong, &X);
    let bad = wrong_components(&report);
    assert_eq!(bad, vec![(0, 1)], "{report}");
}

#[test]
#[should_panic(expected = "the claimed gradient has 2 entries for 3 inputs")]
fn a_gradient_of_the_wrong_length_is_a_clear_error() {
    check_gradient_of(f, |_| vec![0.0, 0.0], &X);
}

// ---------------------------------------------------------------------------------------
// Functions a fixed step cannot difference.

/// `v` at type `T`.
fn c<T: Float>(v: f64) -> T {
    T::from(v).unwrap()
}

/// Badly scaled coefficients: `1e8·x₀² + 1e-8·x₁²`.
fn scaled<T: Float>(x: &[T]) -> T {
    c::<T>(1e8) * x[0] * x[0] + c::<T>(1e-8) * x[1] * x[1]
}

fn scaled_gradient(x: &[f64]) -> Vec<f64> {
    vec![2e8 * x[0], 2e-8 * x[1]]
}

/// Badly scaled and coupled: `1e8·x₀² + x₀·x₁ + 1e-8·x₁²` (the Hessian's `(0, 1)` entry
/// is a difference of the huge `∂f/∂x₀`).
fn coupled<T: Float>(x: &[T]) -> T {
    scaled(x) + x[0] * x[1]
}

fn coupled_gradient(x: &[f64]) -> Vec<f64> {
    vec![2e8 * x[0] + x[1], x[0] + 2e-8 * x[1]]
}

const COUPLED_HESSIAN: [f64; 4] = [2e8, 1.0, 1.0, 2e-8];

const SCALED_X: [f64; 2] = [0.7, 1.3];

/// `ln x` at `1e-4`: a step of `1e-3` reaches below zero.
fn ln<T: Float>(x: &[T]) -> T {
    x[0].ln()
}

const LN_X: [f64; 1] = [1e-4];

/// `exp(1e3·x)`: curvature far beyond the step.
fn steep<T: Float>(x: &[T]) -> T {
    (c::<T>(1e3) * x[0]).exp()
}

const STEEP_X: [f64; 1] = [0.01];

/// `sin(1e4·x)`: a period shorter than the step.
fn wave<T: Float>(x: &[T]) -> T {
    (c::<T>(1e4) * x[0]).sin()
}

const WAVE_X: [f64; 1] = [0.3];

/// `1e10 + x²`: the value's rounding swamps small steps.
fn offset<T: Float>(x: &[T]) -> T {
    c::<T>(1e10) + x[0] * x[0]
}

/// `1e10·x + x³/3`, whose gradient `1e10 + x²` is `offset`: cancellation in the
/// differences of the gradient, for the Hessian checks.
fn offset_antiderivative<T: Float>(x: &[T]) -> T {
    c::<T>(1e10) * x[0] + x[0] * x[0] * x[0] / c::<T>(3.0)
}

const OFFSET_X: [f64; 1] = [0.5];

/// The components whose verdict is WRONG.
fn wrong(report: &CheckReport) -> Vec<(usize, usize)> {
    report
        .components
        .iter()
        .filter(|c| c.verdict == Verdict::Wrong)
        .map(|c| c.index)
        .collect()
}

/// The coarsest step behind a component's estimate.
fn coarsest_step(report: &CheckReport, k: usize) -> f64 {
    let c = report.components[k];
    c.step * 2f64.powi(c.levels as i32)
}

#[test]
fn gradients_of_badly_scaled_steep_and_offset_functions_pass() {
    let scaled_report = check_gradient(scaled, &SCALED_X);
    let ln_report = check_gradient(ln, &LN_X);
    let wave_report = check_gradient(wave, &WAVE_X);
    let offset_report = check_gradient(offset, &OFFSET_X);
    for report in [
        &scaled_report,
        &ln_report,
        &check_gradient(steep, &STEEP_X),
        &wave_report,
        &offset_report,
    ] {
        assert!(report.passed(), "{report}");
        assert_eq!(report.verdict(), Verdict::Ok);
    }
    // Each component chose its own step: the huge coefficient at the first step, the
    // tiny one (whose change is below the value's rounding at small steps) far larger.
    assert!(scaled_report.components[0].step <= 1e-3, "{scaled_report}");
    assert!(scaled_report.components[1].step > 1.0, "{scaled_report}");
    assert!(offset_report.components[0].step > 1.0, "{offset_report}");
    // The logarithm's stencil stayed right of zero, the sine's within a period.
    assert!(coarsest_step(&ln_report, 0) < 1e-4, "{ln_report}");
    assert!(coarsest_step(&wave_report, 0) < 2.0 * std::f64::consts::PI * 1e-4);
}

#[test]
fn hand_written_gradients_pass_and_their_mistakes_are_caught() {
    let ln_gradient = |x: &[f64]| vec![1.0 / x[0]];
    let steep_gradient = |x: &[f64]| vec![1e3 * (1e3 * x[0]).exp()];
    let wave_gradient = |x: &[f64]| vec![1e4 * (1e4 * x[0]).cos()];
    let offset_gradient = |x: &[f64]| vec![2.0 * x[0]];
    for report in [
        check_gradient_of(scaled, scaled_gradient, &SCALED_X),
        check_gradient_of(ln, ln_gradient, &LN_X),
        check_gradient_of(steep, steep_gradient, &STEEP_X),
        check_gradient_of(wave, wave_gradient, &WAVE_X),
        check_gradient_of(offset, offset_gradient, &OFFSET_X),
    ] {
        assert!(report.passed(), "{report}");
    }

    // Negative controls, each WRONG (not inconclusive) at its component only.
    let off_by_a_percent = |x: &[f64]| {
        let mut g = scaled_gradient(x);
        g[0] *= 1.01;
        g
    };
    let report = check_gradient_of(scaled, off_by_a_percent, &SCALED_X);
    assert_eq!(wrong(&report), vec![(0, 0)], "{report}");
    assert_eq!(report.components[1].verdict, Verdict::Ok, "{report}");
    assert_eq!(report.worst().unwrap().index, (0, 0));
    let cases = [
        check_gradient_of(ln, |x| vec![-1.0 / x[0]], &LN_X),
        check_gradient_of(steep, |x| vec![2.0 * steep_gradient(x)[0]], &STEEP_X),
        check_gradient_of(wave, |x| vec![-wave_gradient(x)[0]], &WAVE_X),
        check_gradient_of(offset, |x| vec![1.01 * offset_gradient(x)[0]], &OFFSET_X),
    ];
    for report in cases {
        assert_eq!(wrong(&report), vec![(0, 0)], "{report}");
        assert!(report.is_wrong() && !report.passed());
        assert_eq!(report.verdict(), Verdict::Wrong);
    }
}

#[test]
fn hessians_of_badly_scaled_steep_and_offset_functions_pass() {
    for report in [
        check_hessian(coupled, &SCALED_X),
        check_hessian(ln, &LN_X),
        check_hessian(steep, &STEEP_X),
        check_hessian(wave, &WAVE_X),
        check_hessian(offset_antiderivative, &OFFSET_X),
    ] {
        assert!(report.passed(), "{report}");
    }
}

#[test]
fn hand_written_hessians_pass_and_a_wrong_entry_is_caught() {
    let exact = |_: &[f64]| COUPLED_HESSIAN.to_vec();
    let report = check_hessian_of(coupled_gradient, exact, &SCALED_X);
    assert!(report.passed(), "{report}");
    // One entry off by 1 %, in the row of the huge coefficient: (0,1) only.
    let wrong_entry = |_: &[f64]| {
        let mut h = COUPLED_HESSIAN.to_vec();
        h[1] *= 1.01;
        h
    };
    let report = check_hessian_of(coupled_gradient, wrong_entry, &SCALED_X);
    assert_eq!(wrong(&report), vec![(0, 1)], "{report}");
    // The huge diagonal entry off by 1 %.
    let wrong_diagonal = |_: &[f64]| {
        let mut h = COUPLED_HESSIAN.to_vec();
        h[0] *= 1.01;
        h
    };
    let report = check_hessian_of(coupled_gradient, wrong_diagonal, &SCALED_X);
    assert_eq!(wrong(&report), vec![(0, 0)], "{report}");

    // One-dimensional cases: the right second derivative passes, a mistake is WRONG.
    type Gradient = fn(&[f64]) -> Vec<f64>;
    type Second = fn(f64) -> f64;
    let cases: [(Gradient, Second, f64, f64); 4] = [
        (|x| vec![1.0 / x[0]], |x| -1.0 / (x * x), LN_X[0], -1.0),
        (
            |x| vec![1e3 * (1e3 * x[0]).exp()],
            |x| 1e6 * (1e3 * x).exp(),
            STEEP_X[0],
            2.0,
        ),
        (
            |x| vec![1e4 * (1e4 * x[0]).cos()],
            |x| -1e8 * (1e4 * x).sin(),
            WAVE_X[0],
            -1.0,
        ),
        (|x| vec![1e10 + x[0] * x[0]], |x| 2.0 * x, OFFSET_X[0], 1.01),
    ];
    for (gradient, second, x, mistake) in cases {
        let report = check_hessian_of(gradient, |p| vec![second(p[0])], &[x]);
        assert!(report.passed(), "{report}");
        let report = check_hessian_of(gradient, |p| vec![mistake * second(p[0])], &[x]);
        assert_eq!(wrong(&report), vec![(0, 0)], "{report}");
    }
}

/// Every difficult function as one output of `F: R⁶ → R⁵`.
fn everything<T: Float>(x: &[T]) -> Vec<T> {
    vec![
        scaled(&x[0..2]),
        ln(&x[2..3]),
        steep(&x[3..4]),
        wave(&x[4..5]),
        offset(&x[5..6]),
    ]
}

const EVERYTHING_X: [f64; 6] = [
    SCALED_X[0],
    SCALED_X[1],
    LN_X[0],
    STEEP_X[0],
    WAVE_X[0],
    OFFSET_X[0],
];

#[test]
fn jacobian_judges_every_output_with_its_own_step() {
    let report = check_jacobian(everything, &EVERYTHING_X);
    assert!(!report.is_wrong(), "{report}");
    for comp in &report.components {
        let (i, j) = comp.index;
        if i < 4 || j == 5 {
            assert_eq!(comp.verdict, Verdict::Ok, "{report}");
        } else {
            // `1e10 + x₅²` does not depend on x₀…x₄: its value does not move at any step,
            // but with rounding of 2e-6 in the value no step up to `max_step` bounds the
            // derivative within atol = 1e-8. Honest: inconclusive, never WRONG.
            assert_eq!(
                comp.verdict,
                Verdict::Inconclusive(Reason::NotConverged),
                "{report}"
            );
            assert_eq!(comp.finite_difference, 0.0);
        }
    }
    // Along x₂ the logarithm shrank its step below x₂ = 1e-4 while the other outputs kept
    // the first step.
    let n = EVERYTHING_X.len();
    assert!(coarsest_step(&report, n + 2) < 1e-4, "{report}");
    assert!(coarsest_step(&report, 3 * n + 2) >= 1e-3, "{report}");
}

/// `F(a, b) = (ln a, exp(1e3·b))` as a vector rule, with an optional mistake in the
/// pullback's `∂F₁/∂b`.
fn vector_rule(mistake: f64) -> CustomRule {
    CustomRule::vector("ln_exp", 2, 2, |x, y| {
        y[0] = x[0].ln();
        y[1] = (1e3 * x[1]).exp();
    })
    .pullback(move |x, yb, xb| {
        xb[0] = yb[0] / x[0];
        xb[1] = yb[1] * 1e3 * (1e3 * x[1]).exp() * mistake;
    })
    .build()
}

#[test]
fn jacobian_through_a_wrong_vector_rule_is_caught() {
    let x = [LN_X[0], STEEP_X[0]];
    let right = vector_rule(1.0);
    let report = check_jacobian(|v| right.call_vec(v), &x);
    assert!(report.passed(), "{report}");
    for report in check_rule(&right, &x) {
        assert!(report.passed(), "{report}");
    }
    let wrong_rule = vector_rule(0.5);
    let report = check_jacobian(|v| wrong_rule.call_vec(v), &x);
    assert_eq!(wrong(&report), vec![(1, 1)], "{report}");
    let reports = check_rule(&wrong_rule, &x);
    assert_eq!(wrong(&reports[0]), vec![(1, 1)], "{}", reports[0]);
}

/// `1e8·x₀² + 1e-8·x₁²` as a scalar rule with gradient and Hessian, the gradient's first
/// entry scaled by `mistake`.
fn scaled_rule(mistake: f64) -> CustomRule {
    CustomRule::scalar("scaled", 2, 2, move |x, k, out| match k {
        0 => out[0] = scaled(x),
        1 => out.copy_from_slice(&[2e8 * x[0] * mistake, 2e-8 * x[1]]),
        _ => out.copy_from_slice(&[2e8, 0.0, 0.0, 2e-8]),
    })
}

#[test]
fn check_rule_passes_difficult_rules() {
    let rules = [
        (
            CustomRule::unary("ln", &[f64::ln, |x| 1.0 / x, |x| -1.0 / (x * x)]),
            LN_X[0],
        ),
        (
            CustomRule::unary(
                "steep",
                &[
                    |x| (1e3 * x).exp(),
                    |x| 1e3 * (1e3 * x).exp(),
                    |x| 1e6 * (1e3 * x).exp(),
                ],
            ),
            STEEP_X[0],
        ),
        (
            CustomRule::unary(
                "wave",
                &[
                    |x| (1e4 * x).sin(),
                    |x| 1e4 * (1e4 * x).cos(),
                    |x| -1e8 * (1e4 * x).sin(),
                ],
            ),
            WAVE_X[0],
        ),
        (
            CustomRule::unary("offset", &[|x| 1e10 + x * x, |x| 2.0 * x, |_| 2.0]),
            OFFSET_X[0],
        ),
    ];
    for (rule, x) in &rules {
        let reports = check_rule(rule, &[*x]);
        assert_eq!(reports.len(), 2);
        for report in reports {
            assert!(report.passed(), "{rule:?}: {report}");
        }
    }
    for report in check_rule(&scaled_rule(1.0), &SCALED_X) {
        assert!(report.passed(), "{report}");
    }
}

#[test]
fn check_rule_catches_the_wrong_order_of_difficult_rules() {
    // ln with the second derivative's sign flipped: order 1 passes, order 2 is WRONG.
    let ln_rule = CustomRule::unary("ln", &[f64::ln, |x| 1.0 / x, |x| 1.0 / (x * x)]);
    let reports = check_rule(&ln_rule, &LN_X);
    assert!(reports[0].passed(), "{}", reports[0]);
    assert_eq!(wrong(&reports[1]), vec![(0, 0)], "{}", reports[1]);
    // exp(1e3·x) with a first derivative off by a factor 2: order 1 WRONG; order 2 is
    // checked against the (wrong) first derivative, so it is WRONG too.
    let steep_rule = CustomRule::unary(
        "steep",
        &[
            |x| (1e3 * x).exp(),
            |x| 2e3 * (1e3 * x).exp(),
            |x| 1e6 * (1e3 * x).exp(),
        ],
    );
    let reports = check_rule(&steep_rule, &STEEP_X);
    assert_eq!(wrong(&reports[0]), vec![(0, 0)], "{}", reports[0]);
    assert_eq!(wrong(&reports[1]), vec![(0, 0)], "{}", reports[1]);
    // 1e10 + x² with a derivative off by 1 %.
    let offset_rule = CustomRule::unary("offset", &[|x| 1e10 + x * x, |x| 2.02 * x, |_| 2.02]);
    let reports = check_rule(&offset_rule, &OFFSET_X);
    assert_eq!(wrong(&reports[0]), vec![(0, 0)], "{}", reports[0]);
    // The badly scaled rule with ∂/∂x₀ off by 1 %: WRONG, not inconclusive; the tiny
    // coefficient's entry is still verified.
    let reports = check_rule(&scaled_rule(1.01), &SCALED_X);
    assert_eq!(wrong(&reports[0]), vec![(0, 0)], "{}", reports[0]);
    assert_eq!(
        reports[0].components[1].verdict,
        Verdict::Ok,
        "{}",
        reports[0]
    );
    // Order 2 differences the wrong gradient: its (0,0) entry disagrees.
    assert_eq!(wrong(&reports[1]), vec![(0, 0)], "{}", reports[1]);
}

#[test]
fn what_differences_cannot_decide_is_inconclusive_not_wrong() {
    // Kept to small steps, the tiny coefficient's derivative (2.6e-8) is below the
    // rounding of the value (1e8): inconclusive, and says so.
    let small = CheckOptions {
        max_step: 1e-3,
        ..CheckOptions::default()
    };
    let report = check_gradient_with(scaled, &SCALED_X, small);
    assert_eq!(report.components[0].verdict, Verdict::Ok, "{report}");
    assert_eq!(
        report.components[1].verdict,
        Verdict::Inconclusive(Reason::NotConverged),
        "{report}"
    );
    assert!(!report.passed() && !report.is_wrong());
    assert_eq!(
        report.verdict(),
        Verdict::Inconclusive(Reason::NotConverged)
    );
    assert_eq!(report.worst().unwrap().index, (1, 0));
    assert!(report.components.iter().all(|c| c.step <= 1e-3));
    let text = report.to_string();
    assert!(
        text.contains("INCONCLUSIVE")
            && text.contains("inconclusive: finite differences did not converge")
            && !text.contains("WRONG"),
        "{text}"
    );

    // A mistake elsewhere in the same report is still WRONG, and dominates the verdict.
    let sign_error = |x: &[f64]| vec![-2e8 * x[0], 2e-8 * x[1]];
    let report = mixad::check::check_gradient_of_with(scaled, sign_error, &SCALED_X, small);
    assert_eq!(wrong(&report), vec![(0, 0)], "{report}");
    assert_eq!(report.verdict(), Verdict::Wrong);
    assert_eq!(report.worst().unwrap().index, (0, 0));

    // Not finite at x: nothing to difference.
    let report = check_gradient(|x| x[0].sqrt(), &[-1.0]);
    assert_eq!(
        report.verdict(),
        Verdict::Inconclusive(Reason::NotFiniteAtX),
        "{report}"
    );
    assert!(report.to_string().contains("function not finite at x"));

    // Finite at x but nowhere near it: every step is shrunk until none is left.
    let report = check_gradient(|x| (-(x[0] - 1.0).powi(2)).sqrt(), &[1.0]);
    assert_eq!(
        report.verdict(),
        Verdict::Inconclusive(Reason::NoFiniteStep),
        "{report}"
    );
    assert!(report.components[0].finite_difference.is_nan());

    // A NaN claimed for a smooth function is WRONG, not inconclusive.
    let report = check_gradient_of(ln, |_| vec![f64::NAN], &[2.0]);
    assert_eq!(wrong(&report), vec![(0, 0)], "{report}");
}

#[test]
fn the_report_shows_each_components_steps_and_error() {
    let report = check_gradient(ln, &LN_X);
    let comp = report.components[0];
    assert!(comp.fd_error > 0.0 && comp.fd_error <= comp.tolerance / 2.0);
    assert!(comp.levels >= 2 && comp.step > 0.0);
    let text = report.to_string();
    let steps = format!(
        "{:.1e}..{:.1e}",
        comp.step,
        comp.step * 2f64.powi(comp.levels as i32)
    );
    assert!(
        text.contains("fd err") && text.contains("steps") && text.contains(&steps),
        "{text}"
    );
}

#[test]
fn order_zero_rule_check_rule_reports_nothing_to_check() {
    // Documenting the behaviour: a value-only rule yields no reports (vacuously passing).
    let rule = CustomRule::vector("v", 1, 1, |x, y| y[0] = x[0]).build();
    assert!(check::check_rule(&rule, &[1.0]).is_empty());
}
