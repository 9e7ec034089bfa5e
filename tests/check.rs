//! `mixad::check`: correct derivatives pass, wrong ones (the negative controls) are caught
//! at the right component, and the report reads well.

use mixad::check::{
    check_gradient, check_gradient_of, check_hessian, check_hessian_of, check_jacobian,
};
use num_traits::Float;

fn f<T: Float>(x: &[T]) -> T {
    let two = T::one() + T::one();
    x[0].sin() * x[1].exp() + (x[2] * x[0]).powi(2) / two + x[1].atan2(x[2] + two)
}

fn g<T: Float>(x: &[T]) -> Vec<T> {
    vec![x[0] * x[1], x[1].tanh() + x[2], (x[0] * x[2]).exp()]
}

const X: [f64; 3] = [0.4, -0.3, 1.1];

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
    let bad: Vec<_> = report
        .components
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.index)
        .collect();
    assert_eq!(bad, vec![(2, 0)]);
    assert_eq!(report.worst().unwrap().index, (2, 0));
    let text = report.to_string();
    assert!(
        text.contains("FAILED") && text.contains("WRONG") && text.contains("worst: (2,0)"),
        "{text}"
    );
}

#[test]
fn negative_control_a_wrong_rule_inside_the_function_is_caught() {
    // A "rule" whose derivative is wrong: value x³ but its derivative claimed as 2x², smuggled
    // in as a hand-written gradient of h(x) = x³.
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
    let bad: Vec<_> = report
        .components
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.index)
        .collect();
    assert_eq!(bad, vec![(0, 1)], "{report}");
}

#[test]
#[should_panic(expected = "the claimed gradient has 2 entries for 3 inputs")]
fn a_gradient_of_the_wrong_length_is_a_clear_error() {
    check_gradient_of(f, |_| vec![0.0, 0.0], &X);
}
