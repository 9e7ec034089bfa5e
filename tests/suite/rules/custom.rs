//! Tests `src/rules/custom.rs`.
//!
//! Custom rules: opaque `f64` code (C functions, a black-box solve) made differentiable,
//! checked in every mode against analytic values, built-in rules and finite differences,
//! and the clear errors when a rule lacks an order a computation needs.
//!
//! Also: custom rules inside replays, nestings and recorded Hessians (level-1 calls, vector
//! rules, many inputs, `f32`), and a rule whose derivative level panics under a
//! `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::LazyLock;

use crate::common::assert_close as close;
use crate::common::{assert_close, dense, panic_message, quiet_panics, same, same_all};
use mixad::forward::{self, Dual};
use mixad::linalg;
use mixad::reverse::{self, Var};
use mixad::rules::CustomRule;
use mixad::{check, Options, Parallelism, Scalar, VectorFunction};
use num_traits::Float;

extern "C" {
    fn erf(x: f64) -> f64;
}

/// The C library's `erf`.
fn c_erf(x: f64) -> f64 {
    // SAFETY: `erf` from the platform's C math library is a pure function of a double.
    unsafe { erf(x) }
}

const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

fn erf1(x: f64) -> f64 {
    TWO_OVER_SQRT_PI * (-x * x).exp()
}

fn erf2(x: f64) -> f64 {
    -2.0 * x * erf1(x)
}

fn erf3(x: f64) -> f64 {
    (4.0 * x * x - 2.0) * erf1(x)
}

fn erf_rule() -> CustomRule {
    CustomRule::unary("erf", &[c_erf, erf1, erf2])
}

struct ErfDerivative;
impl VectorFunction for ErfDerivative {
    fn eval<T: Scalar>(&self, x: &[T]) -> Vec<T> {
        vec![T::cst(TWO_OVER_SQRT_PI) * Float::exp(-x[0] * x[0])]
    }
}

fn erf_generic() -> CustomRule {
    CustomRule::generic("erf", 1, |x| c_erf(x[0]), ErfDerivative)
}

#[test]
fn erf_rule_has_known_values_and_passes_its_own_check() {
    let rule = erf_rule();
    assert!((rule.call1(0.5) - 0.520_499_877_813_046_5).abs() < 1e-15);
    assert_eq!(rule.call1(0.0), 0.0);
    for x in [-1.3, 0.0, 0.4, 2.0] {
        for report in check::check_rule(&rule, &[x]) {
            assert!(report.passed(), "{report}");
        }
    }
    assert_eq!(rule.order(), 2);
    assert_eq!((rule.inputs(), rule.outputs()), (1, 1));
}

#[test]
fn erf_rule_in_every_first_and_second_order_mode() {
    let rule = erf_rule();
    let x = 0.7;
    // f(x, y) = erf(x·y) + y: ∂f/∂x = y·erf′(xy), ∂²f/∂x² = y²·erf″(xy), ∂²f/∂x∂y = erf′ + xy·erf″.
    let p = [x, 1.5];
    let xy = p[0] * p[1];
    let want_grad = [p[1] * erf1(xy), p[0] * erf1(xy) + 1.0];
    let h01 = erf1(xy) + xy * erf2(xy);
    let want_hess = [p[1] * p[1] * erf2(xy), h01, h01, p[0] * p[0] * erf2(xy)];
    let f = |v: &[Var<f64>]| rule.call1(v[0] * v[1]) + v[1];

    // Forward: one and two levels.
    assert!((forward::derivative(|t| rule.call1(t), x) - erf1(x)).abs() < 1e-15);
    assert!((forward::second_derivative(|t| rule.call1(t), x) - erf2(x)).abs() < 1e-15);
    let fg = forward::gradient(|v| rule.call1(v[0] * v[1]) + v[1], &p);
    assert_close(&fg, &want_grad, 1e-14, "forward gradient");

    // Reverse, recorded replay at a second point, Hessian, HVP.
    assert_close(
        &mixad::gradient(f, &p),
        &want_grad,
        1e-14,
        "reverse gradient",
    );
    let mut rec = mixad::record(f, &[0.1, 0.2]);
    let (value, g) = rec.value_and_gradient(&p);
    assert!((value - (c_erf(xy) + p[1])).abs() < 1e-15);
    assert_close(&g, &want_grad, 1e-14, "replayed gradient");
    assert_eq!(rec.rerecord_count(), 0);
    let h = mixad::hessian(f, &p);
    let dense: Vec<f64> = (0..4).map(|k| h[(k / 2, k % 2)]).collect();
    assert_close(&dense, &want_hess, 1e-14, "dense Hessian");
    let serial = mixad::record_with(
        f,
        &p,
        mixad::Options {
            parallelism: mixad::Parallelism::Serial,
            lanes: Some(1),
            ..Default::default()
        },
    )
    .hessian(&p);
    assert_eq!(serial, h);
    let hv = mixad::hvp(|v| rule.call1(v[0] * v[1]) + v[1], &p, &[1.0, 0.0]);
    assert_close(&hv, &want_hess[..2], 1e-14, "hvp");

    // Nestings for the second derivative ∂²f/∂x²: forward over forward, reverse over
    // reverse, forward over reverse, reverse over forward.
    let d2 = want_hess[0];
    let ff = forward::second_derivative(|t| rule.call1(t * p[1]) + p[1], x);
    assert!((ff - d2).abs() < 1e-14, "forward over forward");
    let rr = reverse::gradient(
        |v: &[Var<f64>]| {
            reverse::gradient(|w: &[Var<Var<f64>>]| rule.call1(w[0] * p[1]), &[v[0]])[0]
        },
        &[x],
    )[0];
    assert!((rr - d2).abs() < 1e-14, "reverse over reverse");
    let fr = forward::derivative(
        |t: Dual<f64>| reverse::gradient(|w| rule.call1(w[0] * p[1]), &[t])[0],
        x,
    );
    assert!((fr - d2).abs() < 1e-14, "forward over reverse");
    let rf = reverse::gradient(
        |v: &[Var<f64>]| forward::derivative(|s| rule.call1(s * p[1]), v[0]),
        &[x],
    )[0];
    assert!((rf - d2).abs() < 1e-14, "reverse over forward");
}

#[test]
fn tabulated_rule_agrees_with_finite_differences_through_mixad() {
    let rule = erf_rule();
    let f = |v: &[Var<f64>]| rule.call1(v[0].sin() * v[1]) * v[0];
    let p = [0.3, -0.8];
    let report = check::check_gradient(f, &p);
    assert!(report.passed(), "{report}");
    let report = check::check_hessian(f, &p);
    assert!(report.passed(), "{report}");
}

#[test]
fn generic_derivative_gives_third_and_fourth_order() {
    let rule = erf_generic();
    let x = 0.45;
    let d3 = forward::derivative(
        |t: Dual<f64>| forward::second_derivative(|s| rule.call1(s), t),
        x,
    );
    assert!((d3 - erf3(x)).abs() < 1e-14, "third derivative {d3}");
    // Fourth: a second derivative of a second derivative.
    let d4 = forward::second_derivative(
        |t: Dual<Dual<f64>>| forward::second_derivative(|s| rule.call1(s), t),
        x,
    );
    let want4 = (12.0 * x - 8.0 * x * x * x) * erf1(x);
    assert!(
        (d4 - want4).abs() < 1e-13,
        "fourth derivative {d4} vs {want4}"
    );
    // A fifth is beyond what the generic derivative provides: a clear panic.
    let msg = panic_message(|| {
        forward::derivative(
            |u: Dual<f64>| {
                forward::second_derivative(
                    |t: Dual<Dual<Dual<f64>>>| forward::second_derivative(|s| rule.call1(s), t),
                    u,
                )
            },
            x,
        );
    });
    assert!(msg.contains("`erf`") && msg.contains("order 5"), "{msg}");
    // A Hessian through the generic rule.
    let h = mixad::hessian(|v| rule.call1(v[0] * v[1]), &[0.4, 1.1]);
    let xy: f64 = 0.4 * 1.1;
    assert!((h[(0, 0)] - 1.1 * 1.1 * erf2(xy)).abs() < 1e-14);
    assert!((h[(0, 1)] - (erf1(xy) + xy * erf2(xy))).abs() < 1e-14);
    for report in check::check_rule(&rule, &[x]) {
        assert!(report.passed(), "{report}");
    }
    assert_eq!(check::check_rule(&rule, &[x]).len(), 4);
}

/// `clock_scale(x) = c·x` for an opaque constant: first derivatives only.
fn first_order_rule() -> CustomRule {
    CustomRule::unary("clock_scale", &[|x| 3.0 * x, |_| 3.0])
}

#[test]
fn first_order_rule_works_for_gradients_and_refuses_second_order_by_name() {
    let rule = first_order_rule();
    assert_eq!(
        mixad::gradient(|v| rule.call1(v[0]) * v[0], &[2.0]),
        vec![12.0]
    );
    assert_eq!(forward::derivative(|t| rule.call1(t), 5.0), 3.0);
    let mut rec = mixad::record(|v| rule.call1(v[0] * v[1]), &[1.0, 1.0]);
    assert_eq!(rec.value_and_gradient(&[2.0, 4.0]).1, vec![12.0, 6.0]);

    // Dense Hessian: refused before any sweep, naming the API.
    let msg = panic_message(|| {
        mixad::hessian(|v| rule.call1(v[0]) * v[0], &[2.0]);
    });
    assert!(
        msg.contains("custom rule `clock_scale`")
            && msg.contains("first derivatives only")
            && msg.contains("mixad::hessian needs order 2"),
        "{msg}"
    );
    // HVP, forward second derivative, reverse over reverse: refused at the rule call.
    for msg in [
        panic_message(|| {
            mixad::hvp(|v| rule.call1(v[0]), &[2.0], &[1.0]);
        }),
        panic_message(|| {
            forward::second_derivative(|t| rule.call1(t), 2.0);
        }),
        panic_message(|| {
            reverse::gradient(
                |v: &[Var<f64>]| reverse::gradient(|w: &[Var<Var<f64>>]| rule.call1(w[0]), v)[0],
                &[2.0],
            );
        }),
    ] {
        assert!(
            msg.contains("`clock_scale`") && msg.contains("needs order 2"),
            "{msg}"
        );
    }
    // A constant input needs no derivative: no error even at second order.
    let d2 = forward::second_derivative(
        |t| rule.call1(Dual::constant(Dual::constant(2.0))) * t * t,
        1.0,
    );
    assert_eq!(d2, 12.0);
}

#[test]
fn value_only_rule_refuses_any_derivative_and_mistakes_are_named() {
    let rule = CustomRule::vector("black_box", 2, 1, |x, y| y[0] = x[0] * x[1]).build();
    assert_eq!(rule.order(), 0);
    assert_eq!(rule.call(&[2.0, 3.0]), 6.0);
    let msg = panic_message(|| {
        mixad::gradient(|v| rule.call(v), &[2.0, 3.0]);
    });
    assert!(msg.contains("`black_box` provides no derivatives"), "{msg}");
    let msg = panic_message(|| {
        rule.call(&[1.0]);
    });
    assert!(
        msg.contains("`black_box` takes 2 inputs but was called with 1"),
        "{msg}"
    );
    let two = CustomRule::vector("pair", 1, 2, |x, y| y.copy_from_slice(&[x[0], x[0]])).build();
    let msg = panic_message(|| {
        two.call(&[1.0]);
    });
    assert!(msg.contains("`pair` has 2 outputs: use call_vec"), "{msg}");
}

/// hypot(a, b) as a two-input rule with its tensors written out.
fn hypot_rule() -> CustomRule {
    CustomRule::scalar("hypot", 2, 2, |x, k, out| {
        let (a, b) = (x[0], x[1]);
        let r = a.hypot(b);
        match k {
            0 => out[0] = r,
            1 => out.copy_from_slice(&[a / r, b / r]),
            _ => {
                let r3 = r * r * r;
                out.copy_from_slice(&[b * b / r3, -a * b / r3, -a * b / r3, a * a / r3]);
            }
        }
    })
}

#[test]
fn two_input_rule_matches_the_built_in_rule_in_every_hessian_path() {
    let rule = hypot_rule();
    for report in check::check_rule(&rule, &[0.6, -1.7]) {
        assert!(report.passed(), "{report}");
    }
    fn by_builtin<T: Float>(v: &[T]) -> T {
        v[0].hypot(v[1] * v[2]) * v[2].exp()
    }
    let by_rule = |v: &[Var<f64>]| rule.call2(v[0], v[1] * v[2]) * v[2].exp();
    let p = [0.6, -1.7, 0.3];
    let want = mixad::hessian(by_builtin, &p);
    let got = mixad::hessian(by_rule, &p);
    for i in 0..3 {
        for j in 0..3 {
            assert!((got[(i, j)] - want[(i, j)]).abs() < 1e-13, "({i},{j})");
        }
    }
    let (_, g, hv) = mixad::value_gradient_hvp(
        |v| rule.call2(v[0], v[1] * v[2]) * v[2].exp(),
        &p,
        &[0.5, 1.0, -2.0],
    );
    let (_, g_want, hv_want) = mixad::value_gradient_hvp(by_builtin, &p, &[0.5, 1.0, -2.0]);
    assert_close(&g, &g_want, 1e-14, "gradient");
    assert_close(&hv, &hv_want, 1e-13, "hvp");
}

#[test]
fn constant_operands_and_branches_replay_correctly() {
    let rule = hypot_rule();
    // One operand is a constant captured at recording time; the other varies. The branch on
    // the rule's output must be guarded.
    let f = |v: &[Var<f64>]| {
        let r = rule.call2(v[0], Var::constant(4.0));
        if r > Var::constant(5.0) {
            r * v[1]
        } else {
            r + v[1]
        }
    };
    let mut rec = mixad::record(f, &[2.5, 2.0]);
    // Replay in the same branch.
    let (y, g) = rec.value_and_gradient(&[2.0, 3.0]);
    let r = 2.0f64.hypot(4.0);
    assert!((y - (r + 3.0)).abs() < 1e-15);
    assert_close(&g, &[2.0 / r, 1.0], 1e-15, "same branch");
    assert_eq!(rec.rerecord_count(), 0);
    // hypot(4, 4) > 5: the other branch, re-recorded.
    let (y, g) = rec.value_and_gradient(&[4.0, 3.0]);
    let r = 4.0f64.hypot(4.0);
    assert!((y - r * 3.0).abs() < 1e-14);
    assert_close(&g, &[3.0 * 4.0 / r, r], 1e-14, "flipped branch");
    assert_eq!(rec.rerecord_count(), 1);
    // Hessian replay with the constant operand.
    let mut prepared = mixad::record(f, &[2.0, 3.0]);
    let h = prepared.hessian(&[2.0, 3.0]);
    let r = 2.0f64.hypot(4.0);
    assert!((h[(0, 0)] - 16.0 / (r * r * r)).abs() < 1e-15);
    assert_eq!((h[(0, 1)], h[(1, 1)]), (0.0, 0.0));
}

/// Solves `A y = b` (row-major `k × k`) by Gaussian elimination with partial pivoting,
/// written generically so the same code serves as the rule's `f64` black box and as the
/// reference differentiated by mixad directly.
fn solve<T: Float>(a: &[T], b: &[T]) -> Vec<T> {
    let k = b.len();
    let mut m: Vec<T> = a.to_vec();
    let mut y: Vec<T> = b.to_vec();
    for c in 0..k {
        let pivot = (c..k)
            .max_by(|&i, &j| m[i * k + c].abs().partial_cmp(&m[j * k + c].abs()).unwrap())
            .unwrap();
        for j in 0..k {
            m.swap(c * k + j, pivot * k + j);
        }
        y.swap(c, pivot);
        for r in c + 1..k {
            let factor = m[r * k + c] / m[c * k + c];
            for j in c..k {
                m[r * k + j] = m[r * k + j] - factor * m[c * k + j];
            }
            y[r] = y[r] - factor * y[c];
        }
    }
    for r in (0..k).rev() {
        let mut s = y[r];
        for j in r + 1..k {
            s = s - m[r * k + j] * y[j];
        }
        y[r] = s / m[r * k + r];
    }
    y
}

fn transpose(a: &[f64], k: usize) -> Vec<f64> {
    (0..k * k).map(|i| a[(i % k) * k + i / k]).collect()
}

/// `y = A⁻¹b` with inputs `(A row-major, b)`, as a black box with its pullback
/// (`b̄ = λ = A⁻ᵀȳ`, `Ā = −λyᵀ`) and second-order rule.
fn solve_rule(k: usize) -> CustomRule {
    let split = move |x: &[f64]| (x[..k * k].to_vec(), x[k * k..].to_vec());
    CustomRule::vector("linear_solve", k * k + k, k, move |x, y| {
        let (a, b) = split(x);
        y.copy_from_slice(&solve(&a, &b));
    })
    .pullback(move |x, ybar, xbar| {
        let (a, b) = split(x);
        let y = solve(&a, &b);
        let lambda = solve(&transpose(&a, k), ybar);
        for i in 0..k {
            for j in 0..k {
                xbar[i * k + j] = -lambda[i] * y[j];
            }
        }
        xbar[k * k..].copy_from_slice(&lambda);
    })
    .second_order(move |x, ybar, v, out| {
        // Along (Ȧ, ḃ): ẏ = A⁻¹(ḃ − Ȧy), λ̇ = −A⁻ᵀȦᵀλ; d(b̄) = λ̇, d(Ā) = −(λ̇yᵀ + λẏᵀ).
        let (a, b) = split(x);
        let (da, db) = split(v);
        let y = solve(&a, &b);
        let at = transpose(&a, k);
        let lambda = solve(&at, ybar);
        let rhs: Vec<f64> = (0..k)
            .map(|i| db[i] - (0..k).map(|j| da[i * k + j] * y[j]).sum::<f64>())
            .collect();
        let dy = solve(&a, &rhs);
        let dat_lambda: Vec<f64> = (0..k)
            .map(|i| -(0..k).map(|j| da[j * k + i] * lambda[j]).sum::<f64>())
            .collect();
        let dlambda = solve(&at, &dat_lambda);
        for i in 0..k {
            for j in 0..k {
                out[i * k + j] = -(dlambda[i] * y[j] + lambda[i] * dy[j]);
            }
        }
        out[k * k..].copy_from_slice(&dlambda);
    })
    .build()
}

/// A test point: a well-conditioned `A` and `b`.
fn solve_point(k: usize) -> Vec<f64> {
    let mut x = Vec::new();
    for i in 0..k {
        for j in 0..k {
            x.push(if i == j {
                4.0 + i as f64
            } else {
                0.3 * (i + 2 * j) as f64 - 0.5
            });
        }
    }
    x.extend((0..k).map(|i| 1.0 - 0.4 * i as f64));
    x
}

#[test]
fn black_box_linear_solve_gradient_and_hessian_match_the_differentiated_solver() {
    let k = 3;
    let rule = solve_rule(k);
    let x = solve_point(k);
    for report in check::check_rule(&rule, &x) {
        assert!(report.passed(), "{report}");
    }
    // f(A, b) = ‖y‖² + sin(y₀)·y₂ with y = A⁻¹b.
    fn objective<T: Float>(y: &[T]) -> T {
        y.iter().fold(T::zero(), |s, &v| s + v * v) + y[0].sin() * y[2]
    }
    let by_rule = |v: &[Var<f64>]| objective(&rule.call_vec(v));
    fn by_solver<T: Float>(v: &[T]) -> T {
        let k = 3;
        objective(&solve(&v[..k * k], &v[k * k..]))
    }
    let g = mixad::gradient(by_rule, &x);
    assert_close(&g, &mixad::gradient(by_solver, &x), 1e-13, "gradient");
    let h = mixad::hessian(by_rule, &x);
    let want = mixad::hessian(by_solver, &x);
    let n = x.len();
    for i in 0..n {
        for j in 0..n {
            assert!(
                (h[(i, j)] - want[(i, j)]).abs() < 1e-12 * (1.0 + want[(i, j)].abs()),
                "H[{i},{j}] = {} vs {}",
                h[(i, j)],
                want[(i, j)]
            );
        }
    }
    let report = check::check_hessian(by_rule, &x);
    assert!(report.passed(), "{report}");
    // The HVP (reverse over a dual tape) agrees with a Hessian column.
    let e5: Vec<f64> = (0..n).map(|i| if i == 5 { 1.0 } else { 0.0 }).collect();
    let hv = mixad::hvp(|v| objective(&rule.call_vec(v)), &x, &e5);
    let col: Vec<f64> = (0..n).map(|i| want[(i, 5)]).collect();
    assert_close(&hv, &col, 1e-12, "hvp column 5");
}

#[test]
fn pushforward_only_vector_rule_gives_the_same_gradient() {
    let k = 2;
    let by_pullback = solve_rule(k);
    let split = move |x: &[f64]| (x[..k * k].to_vec(), x[k * k..].to_vec());
    let by_pushforward = CustomRule::vector("linear_solve_jvp", k * k + k, k, move |x, y| {
        let (a, b) = split(x);
        y.copy_from_slice(&solve(&a, &b));
    })
    .pushforward(move |x, v, ydot| {
        let (a, b) = split(x);
        let (da, db) = split(v);
        let y = solve(&a, &b);
        let rhs: Vec<f64> = (0..k)
            .map(|i| db[i] - (0..k).map(|j| da[i * k + j] * y[j]).sum::<f64>())
            .collect();
        ydot.copy_from_slice(&solve(&a, &rhs));
    })
    .build();
    assert_eq!(by_pushforward.order(), 1);
    let x = solve_point(k);
    let f = |r: &CustomRule| {
        mixad::gradient(
            |v| {
                let y = r.call_vec(v);
                y[0] * y[1].exp()
            },
            &x,
        )
    };
    assert_close(&f(&by_pushforward), &f(&by_pullback), 1e-14, "gradient");
}

/// `F(a, b) = (a·b, a/b)` with its pullback `(x, ȳ) ↦ J(x)ᵀȳ` written generically.
struct ProdQuot;
impl VectorFunction for ProdQuot {
    fn eval<T: Scalar>(&self, z: &[T]) -> Vec<T> {
        let (x, ybar) = z.split_at(2);
        let (a, b) = (x[0], x[1]);
        vec![
            ybar[0] * b + ybar[1] / b,
            ybar[0] * a - ybar[1] * a / (b * b),
        ]
    }
}

#[test]
fn generic_pullback_vector_rule_matches_the_same_code_differentiated_directly() {
    let rule = CustomRule::vector("prod_quot", 2, 2, |x, y| {
        y[0] = x[0] * x[1];
        y[1] = x[0] / x[1];
    })
    .generic_pullback(ProdQuot);
    fn direct<T: Float>(v: &[T]) -> T {
        let (p, q) = (v[0] * v[1], v[0] / v[1]);
        p.sin() * q + q * q * q
    }
    let via_rule = |v: &[Var<f64>]| {
        let y = rule.call_vec(v);
        y[0].sin() * y[1] + y[1] * y[1] * y[1]
    };
    let x = [0.8, 1.3];
    let h = mixad::hessian(via_rule, &x);
    let want = mixad::hessian(direct, &x);
    for i in 0..2 {
        for j in 0..2 {
            assert!((h[(i, j)] - want[(i, j)]).abs() < 1e-13, "({i},{j})");
        }
    }
    // Third order: d³/da³ of y₁ = a/b is 0, of y₀³-free parts via nesting.
    let d3 = forward::derivative(
        |a: Dual<f64>| {
            forward::second_derivative(
                |s| {
                    let b = Dual::constant(Dual::constant(Dual::constant(1.3)));
                    let y = rule.call_vec(&[s, b]);
                    y[0] * y[0] * y[0]
                },
                a,
            )
        },
        0.8,
    );
    // (1.3a)³ → d³/da³ = 6·1.3³.
    assert!((d3 - 6.0 * 1.3f64.powi(3)).abs() < 1e-12, "{d3}");
    for report in check::check_rule(&rule, &x) {
        assert!(report.passed(), "{report}");
    }
}

#[test]
fn recording_of_a_derivative_through_a_rule_replays_at_the_higher_level() {
    // Inside the recording the rule is applied at Dual<Var<f64>>, so the tape holds calls at
    // level 0 (the value) and level 1 (the derivative): the replay must use both.
    let rule = erf_generic();
    let f =
        |v: &[Var<f64>]| forward::derivative(|t| rule.call1(t * Dual::constant(v[1])), v[0]) * v[0];
    // g(a, b) = b·erf′(ab)·a
    let want = |a: f64, b: f64| {
        let ab = a * b;
        vec![
            b * erf1(ab) + a * b * b * erf2(ab),
            a * erf1(ab) + a * a * b * erf2(ab),
        ]
    };
    let mut rec = mixad::record(f, &[0.2, 0.9]);
    for p in [[0.5, 1.3], [-0.7, 0.4]] {
        let (_, g) = rec.value_and_gradient(&p);
        assert_close(&g, &want(p[0], p[1]), 1e-14, "replayed level-1 call");
    }
    assert_eq!(rec.rerecord_count(), 0);
    let h = mixad::hessian(f, &[0.5, 1.3]);
    let report = check::check_hessian(f, &[0.5, 1.3]);
    assert!(report.passed(), "{report}");
    assert_eq!(h[(0, 1)], h[(1, 0)]);
}

// ---------------------------------------------------------------------------------------
// Custom rules inside replays, nestings and recorded Hessians.
// ---------------------------------------------------------------------------------------

/// g(a, b) = a·b², with derivative tensors to order 3.
fn ab2() -> CustomRule {
    CustomRule::scalar("ab2", 2, 3, |x, k, out| {
        let (a, b) = (x[0], x[1]);
        match k {
            0 => out[0] = a * b * b,
            1 => out.copy_from_slice(&[b * b, 2.0 * a * b]),
            2 => out.copy_from_slice(&[0.0, 2.0 * b, 2.0 * b, 2.0 * a]),
            _ => {
                // ∂³: only the (a,b,b) permutations are 2, (b,b,b) and (a,a,·) are 0.
                out.fill(0.0);
                out[0b011] = 2.0;
                out[0b101] = 2.0;
                out[0b110] = 2.0;
            }
        }
    })
}

/// f(a, b) = ∂g/∂b (a, b) = 2ab for g = a·b², with the derivative taken by a forward dual
/// inside a recording: the rule runs at `Dual<Var<f64>>`, so the tape holds a level-1 call
/// with two entries (∂g/∂a, ∂g/∂b); the derivative uses the second one.
fn d_ab2_db(rule: &CustomRule, v: &[Var<f64>]) -> Var<f64> {
    forward::derivative(|t| rule.call2(Dual::constant(v[0]), t), v[1])
}

#[test]
fn level_one_call_of_a_two_input_rule_directly() {
    let rule = ab2();
    let g = reverse::gradient(|v| d_ab2_db(&rule, v), &[3.0, 5.0]);
    close(&g, &[10.0, 6.0], 1e-15, "gradient of 2ab");
}

#[test]
fn level_one_call_of_a_two_input_rule_replayed_by_record() {
    let rule = ab2();
    let mut rec = mixad::record(|v| d_ab2_db(&rule, v), &[1.0, 2.0]);
    let (value, g) = rec.value_and_gradient(&[3.0, 5.0]);
    assert_eq!(value, 30.0, "replayed value of 2ab at (3, 5)");
    close(&g, &[10.0, 6.0], 1e-15, "replayed gradient of 2ab");
}

#[test]
fn level_one_call_of_a_two_input_rule_in_hessian_and_recorded_hessian() {
    let rule = ab2();
    // ∇²(2ab) = [[0, 2], [2, 0]].
    let h = mixad::hessian(|v| d_ab2_db(&rule, v), &[3.0, 5.0]);
    close(&dense(&h), &[0.0, 2.0, 2.0, 0.0], 1e-15, "hessian() of 2ab");
    let mut prepared = mixad::record(|v| d_ab2_db(&rule, v), &[1.0, 2.0]);
    let h = prepared.hessian(&[3.0, 5.0]);
    close(
        &dense(&h),
        &[0.0, 2.0, 2.0, 0.0],
        1e-15,
        "recorded Hessian of 2ab",
    );
}

/// F(a, b, c) = (a·b, b·c, a + c²) with pullback and second-order map.
fn three_by_three() -> CustomRule {
    CustomRule::vector("f33", 3, 3, |x, y| {
        y[0] = x[0] * x[1];
        y[1] = x[1] * x[2];
        y[2] = x[0] + x[2] * x[2];
    })
    .pullback(|x, yb, xb| {
        xb[0] = yb[0] * x[1] + yb[2];
        xb[1] = yb[0] * x[0] + yb[1] * x[2];
        xb[2] = yb[1] * x[1] + yb[2] * 2.0 * x[2];
    })
    .second_order(|_x, yb, v, out| {
        // ∇²(ȳ·F) = [[0, ȳ0, 0], [ȳ0, 0, ȳ1], [0, ȳ1, 2ȳ2]]
        out[0] = yb[0] * v[1];
        out[1] = yb[0] * v[0] + yb[1] * v[2];
        out[2] = yb[1] * v[1] + 2.0 * yb[2] * v[2];
    })
    .build()
}

fn uses_f33<S: Scalar>(rule: &CustomRule, x: &[S]) -> S {
    // A constant operand in the middle and the outputs mixed nonlinearly.
    let y = rule.call_vec(&[x[0], S::cst(0.7) * x[1], x[2]]);
    let z = rule.call_vec(&[y[2], S::cst(1.5), x[0]]);
    y[0] * y[1] + Float::sin(y[2]) + z[0] * z[2] + z[1]
}

#[test]
fn vector_rule_with_three_outputs_in_recorded_hessian_and_replay() {
    let rule = three_by_three();
    for report in check::check_rule(&rule, &[0.3, -0.4, 0.9]) {
        assert!(report.passed(), "{report}");
    }
    let f = |v: &[Var<f64>]| uses_f33(&rule, v);
    let mut prepared = mixad::record_with(
        f,
        &[0.1, 0.2, 0.3],
        Options {
            lanes: Some(2),
            parallelism: Parallelism::Threads(std::num::NonZeroUsize::new(2).unwrap()),
            ..Default::default()
        },
    );
    let mut rec = mixad::record(f, &[0.1, 0.2, 0.3]);
    for p in [[0.4, -0.6, 1.1], [-0.3, 0.8, 0.5]] {
        let reference = check::check_hessian(f, &p);
        assert!(reference.passed(), "{reference}");
        let h = prepared.hessian(&p);
        let direct = mixad::hessian(f, &p);
        close(
            &dense(&h),
            &dense(&direct),
            1e-13,
            "recorded vs direct Hessian",
        );
        let g = rec.gradient(&p);
        let fd = check::check_gradient_of(f, |_: &[f64]| g.clone(), &p);
        assert!(fd.passed(), "{fd}");
    }
}

#[test]
fn rule_with_many_inputs_heap_buffers_in_hessian() {
    // g(x) = Π xᵢ over 6 inputs (beyond the inline buffer), with its Hessian.
    let rule = CustomRule::scalar("prod6", 6, 2, |x, k, out| {
        let n = x.len();
        let prod_except = |skip: &[usize]| {
            (0..n)
                .filter(|i| !skip.contains(i))
                .fold(1.0, |p, i| p * x[i])
        };
        match k {
            0 => out[0] = prod_except(&[]),
            1 => (0..n).for_each(|i| out[i] = prod_except(&[i])),
            _ => {
                for i in 0..n {
                    for j in 0..n {
                        out[i * n + j] = if i == j { 0.0 } else { prod_except(&[i, j]) };
                    }
                }
            }
        }
    });
    let f = |v: &[Var<f64>]| rule.call(v) * v[0];
    let x = [0.5, 1.5, -0.7, 1.1, 0.9, 1.3];
    let report = check::check_hessian(f, &x);
    assert!(report.passed(), "{report}");
    let mut prepared = mixad::record(f, &x);
    let h = prepared.hessian(&x);
    close(
        &dense(&h),
        &dense(&mixad::hessian(f, &x)),
        1e-14,
        "recorded",
    );
}

#[test]
fn custom_rule_in_reverse_over_reverse_with_two_inputs() {
    let rule = ab2();
    // Row 1 of ∇²(a·b²) = (2b, 2a).
    let row = reverse::gradient(
        |v: &[Var<f64>]| reverse::gradient(|w: &[Var<Var<f64>>]| rule.call2(w[0], w[1]), v)[1],
        &[3.0, 5.0],
    );
    close(&row, &[10.0, 6.0], 1e-15, "reverse over reverse");
}

#[test]
fn custom_rule_at_f32() {
    let rule = ab2();
    let g = reverse::gradient(|v: &[Var<f32>]| rule.call2(v[0], v[1]), &[3.0f32, 5.0]);
    assert_eq!(g, vec![25.0f32, 30.0]);
    let d = forward::derivative(|t: Dual<f32>| rule.call2(t, Dual::constant(5.0)), 3.0f32);
    assert_eq!(d, 25.0);
    // Blocks on the f32 tape: ∇(x·x + Σx) = 2x + 1.
    let g = reverse::gradient(
        |v: &[Var<f32>]| linalg::dot(&v.to_vec(), &v.to_vec()) + linalg::sum(&v.to_vec()),
        &[1.0f32, -2.0],
    );
    assert_eq!(g, vec![3.0f32, -3.0]);
}

#[test]
fn level_one_call_of_a_vector_rule_in_hvp() {
    // F(a, b) = (a·b, a + b²) through a dual inside the recording: f = ∂/∂b (F0 + F1²).
    struct V22;
    impl mixad::VectorFunction for V22 {
        fn eval<T: Scalar>(&self, z: &[T]) -> Vec<T> {
            let (x, yb) = z.split_at(2);
            vec![
                yb[0] * x[1] + yb[1],
                yb[0] * x[0] + yb[1] * T::cst(2.0) * x[1],
            ]
        }
    }
    let rule = CustomRule::vector("v22", 2, 2, |x, y| {
        y[0] = x[0] * x[1];
        y[1] = x[0] + x[1] * x[1];
    })
    .generic_pullback(V22);
    fn generic<S: Scalar>(rule: &CustomRule, v: &[S]) -> S {
        forward::derivative(
            |t| {
                let y = rule.call_vec(&[Dual::constant(v[0]), t]);
                y[0] + y[1] * y[1]
            },
            v[1],
        )
    }
    let f = |v: &[Var<f64>]| generic(&rule, v);
    // f(a, b) = a + 2(a + b²)·2b = a + 4ab + 4b³.
    let x = [0.7, -0.4];
    let g = reverse::gradient(f, &x);
    let (a, b) = (x[0], x[1]);
    close(
        &g,
        &[1.0 + 4.0 * b, 4.0 * a + 12.0 * b * b],
        1e-14,
        "direct",
    );
    let hv = mixad::hvp(|v: &[Var<Dual<f64>>]| generic(&rule, v), &x, &[1.0, 0.0]);
    close(&hv, &[0.0, 4.0], 1e-14, "hvp");
    let mut prepared = mixad::record(f, &[0.1, 0.2]);
    close(
        &prepared.hvp(&x, &[1.0, 0.0]),
        &[0.0, 4.0],
        1e-14,
        "recorded hvp",
    );
    let mut rec = mixad::record(f, &[0.1, 0.2]);
    close(&rec.gradient(&x), &g, 1e-14, "replay");
}

#[test]
fn custom_rule_output_in_a_guard_replays_both_branches() {
    let rule = ab2();
    let f = |v: &[Var<f64>]| {
        let g = rule.call2(v[0], v[1]);
        if g > Var::constant(1.0) {
            g * v[0]
        } else {
            g + v[1]
        }
    };
    let mut rec = mixad::record(f, &[2.0, 1.0]); // g = 2 > 1
    let g = rec.gradient(&[0.1, 1.0]); // g = 0.1: other branch
    close(&g, &[1.0, 2.0 * 0.1 + 1.0], 1e-15, "other branch");
    let g = rec.gradient(&[2.0, 1.0]);
    // g·a = a²b²: (2ab², 2a²b)
    close(&g, &[4.0, 8.0], 1e-15, "first branch");
}

#[test]
fn vector_rule_with_pushforward_only_and_two_outputs_in_reverse_and_replay() {
    let rule = CustomRule::vector("polar", 2, 2, |x, y| {
        y[0] = x[0] * x[1].cos();
        y[1] = x[0] * x[1].sin();
    })
    .pushforward(|x, v, out| {
        out[0] = v[0] * x[1].cos() - x[0] * x[1].sin() * v[1];
        out[1] = v[0] * x[1].sin() + x[0] * x[1].cos() * v[1];
    })
    .build();
    let f = |v: &[Var<f64>]| {
        let y = rule.call_vec(&[v[0], v[1]]);
        y[0] * y[0] * y[1] + y[1]
    };
    let x = [1.3, 0.4];
    let g = reverse::gradient(f, &x);
    let fd = check::check_gradient_of(f, |_: &[f64]| g.clone(), &x);
    assert!(fd.passed(), "{fd}");
    let mut rec = mixad::record(f, &[0.2, 0.9]);
    close(&rec.gradient(&x), &g, 1e-14, "replay");
}

// ---------------------------------------------------------------------------------------
// A custom rule whose *derivative* level panics where its value and first derivative
// are fine: f at f64 takes the rule's branch; the one-shot HVP evaluates the rule one
// level deeper, and the panic reaches the function's `catch_unwind`. The HVP must fail
// loudly, never return the fallback's value and derivatives.
// ---------------------------------------------------------------------------------------

/// `x³`, derivatives to order 3, but its level 2 (second derivative) panics for x < 0.
static CUBE_SECOND_ON_POSITIVES: LazyLock<CustomRule> = LazyLock::new(|| {
    CustomRule::scalar("cube_second_on_positives", 1, 3, |x, k, out| {
        assert!(k < 2 || x[0] >= 0.0, "level {k} undefined at {}", x[0]);
        out[0] = match k {
            0 => x[0].powi(3),
            1 => 3.0 * x[0] * x[0],
            2 => 6.0 * x[0],
            _ => 6.0,
        };
    })
});

fn rule_level2_or_fallback<S: Scalar>(v: &[S]) -> S {
    match catch_unwind(AssertUnwindSafe(|| CUBE_SECOND_ON_POSITIVES.call1(v[0]))) {
        Ok(c) => c * v[1],
        Err(_) => Float::sin(v[0]) * v[1] * v[1],
    }
}

// `|x| f(x)` picks the scalar type each API needs, as user code does.
#[allow(clippy::redundant_closure)]
#[test]
fn custom_rule_panicking_at_a_derivative_level() {
    let x = [-0.5, 2.0];
    let (v, g) = quiet_panics(|| mixad::value_and_gradient(|x| rule_level2_or_fallback(x), &x));
    same(v, -0.125 * 2.0, "f64 takes the rule");
    same_all(
        &g,
        &[3.0 * 0.25 * 2.0, -0.125],
        "f64 gradient of the rule branch",
    );
    let r = quiet_panics(|| {
        catch_unwind(AssertUnwindSafe(|| {
            mixad::value_gradient_hvp(|x| rule_level2_or_fallback(x), &x, &[1.0, 0.0])
        }))
    });
    // Loud failure is acceptable (the rule has no second derivative here): a panic, or
    // NaN where the missing derivative is needed; a fallback's numbers are not.
    if let Ok((hv_value, hv_grad, hv)) = r {
        same(hv_value, v, "one-shot HVP value vs f(x)");
        same_all(&hv_grad, &g, "one-shot HVP gradient");
        assert!(hv[0].is_nan(), "needs the missing order: {}", hv[0]);
        same(
            hv[1],
            3.0 * 0.25,
            "one-shot HVP (first order of the rule only)",
        );
    }
    let ff = quiet_panics(|| {
        catch_unwind(AssertUnwindSafe(|| {
            forward::second_derivative(
                |t| rule_level2_or_fallback(&[t, Dual::constant(Dual::constant(2.0))]),
                -0.5,
            )
        }))
    });
    if let Ok(d2) = ff {
        assert!(
            d2.is_nan(),
            "forward over forward needs the missing order: {d2}"
        );
    }
}
