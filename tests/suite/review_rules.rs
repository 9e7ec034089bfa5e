//! Review of issue 5 (custom rules and linear-algebra block rules): adversarial cases for
//! replays, nesting, recordings that end early, and API edges. Each test asserts the
//! mathematically correct result. The four that failed when written (a level-k custom call
//! replayed only in part, a zero-size block in a recording) were fixed and now run.

use mixad::forward::{self, Dual};
use mixad::linalg;
use mixad::reverse::{self, Var};
use mixad::rules::CustomRule;
use mixad::{check, Options, Parallelism, Scalar};
use nalgebra::{DMatrix, DVector};
use num_traits::Float;

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: entry {k}: got {g}, want {w} (all: {got:?} vs {want:?})"
        );
    }
}

fn dense(h: &faer::Mat<f64>) -> Vec<f64> {
    (0..h.nrows())
        .flat_map(|i| (0..h.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| h[(i, j)])
        .collect()
}

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

// ---------------------------------------------------------------------------------------
// Custom rules inside replays
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Block operations: replays, pullbacks, Jacobians, recordings that end early
// ---------------------------------------------------------------------------------------

fn a2<S: Scalar>(v: &[S]) -> DMatrix<S> {
    DMatrix::from_row_slice(
        2,
        2,
        &[
            v[0] + S::cst(3.0),
            v[1],
            S::cst(0.5),
            v[0] * v[1] + S::cst(2.0),
        ],
    )
}

#[test]
fn jacobian_and_vjp_through_solve_with_a_constant_right_hand_side() {
    let f = |v: &[Var<f64>]| {
        let b = DVector::from_vec(vec![Var::constant(1.0), Var::constant(-2.0)]);
        linalg::solve(&a2(v), &b)
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>()
    };
    let x = [0.4, -0.3];
    let report = check::check_jacobian(f, &x);
    assert!(report.passed(), "{report}");
    let j = reverse::jacobian(f, &x);
    let (_, xbar) = reverse::vjp(f, &x, &[2.0, -1.0]);
    let want: Vec<f64> = (0..2).map(|c| 2.0 * j[(0, c)] - j[(1, c)]).collect();
    close(&xbar, &want, 1e-14, "vjp vs jacobian");
}

#[test]
fn pullback_with_blocks_and_constant_inputs_applied_twice() {
    let x = [0.4, -0.3];
    let (y, pb) = reverse::pullback(
        |v: &[Var<f64>]| {
            let a = a2(v);
            let inv = linalg::inverse(&a).unwrap();
            let c = DVector::from_vec(vec![Var::constant(2.0), v[1]]);
            vec![
                linalg::quad_form(&inv, &c),
                linalg::log_abs_det(&a).unwrap(),
            ]
        },
        &x,
    );
    assert_eq!(y.len(), 2);
    let f = |v: &[Var<f64>]| {
        let a = a2(v);
        let inv = linalg::inverse(&a).unwrap();
        let c = DVector::from_vec(vec![Var::constant(2.0), v[1]]);
        vec![
            linalg::quad_form(&inv, &c),
            linalg::log_abs_det(&a).unwrap(),
        ]
    };
    let j = reverse::jacobian(f, &x);
    let report = check::check_jacobian(f, &x);
    assert!(report.passed(), "{report}");
    for ybar in [[1.0, 0.0], [0.3, -2.0]] {
        let got = pb.apply(&ybar);
        let want: Vec<f64> = (0..2)
            .map(|c| ybar[0] * j[(0, c)] + ybar[1] * j[(1, c)])
            .collect();
        close(&got, &want, 1e-13, "pullback apply");
    }
}

#[test]
fn recording_ending_in_a_panic_after_a_block_leaves_no_stale_block() {
    let r = std::panic::catch_unwind(|| {
        reverse::gradient(
            |v: &[Var<f64>]| {
                let s = linalg::sum(&v.to_vec());
                let _ = linalg::norm(&v.to_vec());
                if s.value() > 0.0 {
                    panic!("user code fails after the blocks");
                }
                s
            },
            &[1.0, 2.0, 3.0],
        )
    });
    assert!(r.is_err());
    // A fresh recording whose nodes reuse the indices of the stale blocks' outputs.
    let g = reverse::gradient(|v: &[Var<f64>]| v[0] * v[1] * v[2] * v[0], &[1.0, 2.0, 3.0]);
    close(&g, &[12.0, 3.0, 2.0], 1e-15, "after a panicking recording");
    let g = reverse::gradient(
        |v: &[Var<f64>]| linalg::dot(&v.to_vec(), &v.to_vec()) * v[0],
        &[1.0, 2.0, 3.0],
    );
    // (x·x)·x0: ∂/∂x0 = 2x0² + x·x, ∂/∂xi = 2xi·x0
    close(
        &g,
        &[16.0, 4.0, 6.0],
        1e-15,
        "blocks after a panicking recording",
    );
}

#[test]
fn inner_recording_of_the_same_type_with_blocks_inside_an_outer_one_with_blocks() {
    let outer = |v: &[Var<f64>]| {
        let y = linalg::matvec(&a2(v), &DVector::from_vec(vec![v[0], v[1]]));
        // An inner, independent recording on the same tape type, with its own blocks.
        let inner = reverse::gradient(
            |w: &[Var<f64>]| {
                let m = a2(w);
                linalg::log_abs_det(&m).unwrap() + linalg::sum(&w.to_vec())
            },
            &[0.2, 0.1],
        );
        let c = DVector::from_vec(vec![Var::constant(inner[0]), Var::constant(inner[1])]);
        let z = linalg::dot(&y, &c);
        z * linalg::norm(&y)
    };
    let x = [0.4, -0.3];
    let report = check::check_gradient(outer, &x);
    assert!(report.passed(), "{report}");
    let mut rec = mixad::record(outer, &x);
    for p in [[0.1, 0.6], [-0.5, 0.2]] {
        let g = rec.gradient(&p);
        let fd = check::check_gradient_of(outer, |_: &[f64]| g.clone(), &p);
        assert!(fd.passed(), "replay: {fd}");
    }
    let (_, pb) = reverse::pullback(|v: &[Var<f64>]| vec![outer(v)], &x);
    let g = reverse::gradient(outer, &x);
    close(&pb.apply(&[1.0]), &g, 1e-14, "pullback");
}

#[test]
fn block_outputs_in_guards_and_partly_constant_blocks_replay() {
    // A constant matrix (from the closure) times a vector of variables, then a guard on a
    // block output.
    let a = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, -1.0, 0.5]);
    let f = |v: &[Var<f64>]| {
        let am = a.map(Var::constant);
        let y = linalg::matvec(&am, &DVector::from_vec(vec![v[0], v[1]]));
        let s = linalg::sum(&y); // 0·x0 + 2.5 x1
        if s > Var::constant(0.0) {
            s * y[0]
        } else {
            y[1] * y[1]
        }
    };
    let mut rec = mixad::record(f, &[1.0, 1.0]);
    for p in [[1.0, 1.0], [0.5, -1.0], [2.0, 3.0]] {
        let g = rec.gradient(&p);
        let fd = check::check_gradient_of(f, |_: &[f64]| g.clone(), &p);
        assert!(fd.passed(), "at {p:?}: {fd}");
    }
    assert_eq!(rec.rerecord_count(), 2);
}

#[test]
fn blocks_whose_inputs_are_all_constant_inside_a_recording() {
    let f = |v: &[Var<f64>]| {
        let k = DMatrix::from_row_slice(2, 2, &[2.0, 0.3, 0.3, 1.0]).map(Var::constant);
        let ld = linalg::log_det_spd(&k).unwrap();
        let kinv = linalg::inverse(&k).unwrap();
        let x = DVector::from_vec(vec![v[0], v[1]]);
        ld * linalg::quad_form(&kinv, &x)
    };
    let x = [0.4, -0.3];
    let mut rec = mixad::record(f, &x);
    let h = mixad::hessian(f, &x);
    let report = check::check_hessian(f, &x);
    assert!(report.passed(), "{report}");
    let g = rec.gradient(&[1.0, 2.0]);
    let fd = check::check_gradient_of(f, |_: &[f64]| g.clone(), &[1.0, 2.0]);
    assert!(fd.passed(), "{fd}");
    assert_eq!(h[(0, 1)], h[(1, 0)]);
}

#[test]
fn blocks_in_a_recorded_hessian_with_several_threads() {
    let f = |v: &[Var<f64>]| {
        let m = DMatrix::from_fn(4, 4, |i, j| {
            let base = if i == j {
                Var::constant(3.0)
            } else {
                Var::constant(0.1)
            };
            base + v[(i + j) % v.len()] * v[(i * j) % v.len()]
        });
        let b = DVector::from_fn(4, |i, _| v[i % v.len()]);
        let x = linalg::cholesky_solve(&m, &b).unwrap();
        linalg::dot(&b, &x) + linalg::log_det_spd(&m).unwrap()
    };
    let x = [0.3, -0.2, 0.5, 0.1, -0.4];
    let report = check::check_hessian(f, &x);
    assert!(report.passed(), "{report}");
    let mut prepared = mixad::record_with(
        f,
        &x,
        Options {
            lanes: Some(1),
            parallelism: Parallelism::Threads(std::num::NonZeroUsize::new(2).unwrap()),
            ..Default::default()
        },
    );
    let h = prepared.hessian(&x);
    close(&dense(&h), &dense(&mixad::hessian(f, &x)), 1e-12, "threads");
}

#[test]
fn empty_block_in_a_recording() {
    // Generic code with an empty constraint block: A is 0 × 2.
    let f = |v: &[Var<f64>]| {
        let a = DMatrix::<Var<f64>>::zeros(0, 2);
        let y = linalg::matvec(&a, &DVector::from_vec(vec![v[0], v[1]]));
        linalg::sum(&y) + v[0] * v[1]
    };
    let g = reverse::gradient(f, &[2.0, 3.0]);
    close(&g, &[3.0, 2.0], 0.0, "direct");
    let mut rec = mixad::record(f, &[2.0, 3.0]);
    close(&rec.gradient(&[5.0, 7.0]), &[7.0, 5.0], 0.0, "replay");
}

#[test]
fn faer_sized_blocks_agree_with_forward_directional_derivatives() {
    // n = 40: the f64 tape's forward and pullback use faer (n³ ≥ 2¹⁵); forward duals run
    // the generic loops. ∇f·d must match the dual's directional derivative.
    let n = 40;
    let base: Vec<f64> = (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            let s = ((i * 7 + j * 13) % 11) as f64 / 11.0 - 0.5;
            if i == j {
                s + n as f64
            } else {
                0.2 * s
            }
        })
        .collect();
    let dir: Vec<f64> = (0..n * n)
        .map(|k| ((k * 31 % 17) as f64 / 17.0) - 0.5)
        .collect();
    fn f<S: Scalar>(v: &[S], n: usize) -> S {
        let m = DMatrix::from_row_slice(n, n, v);
        let l = linalg::cholesky(&m).unwrap();
        let inv = linalg::inverse(&m).unwrap();
        let w = DVector::from_fn(n, |i, _| S::cst(1.0 + i as f64 / n as f64));
        let x = linalg::solve(&m, &w).unwrap();
        let p = linalg::matmul(&l, &inv);
        linalg::sum(&p) + linalg::dot(&w, &x) + linalg::log_abs_det(&m).unwrap() + linalg::norm(&l)
    }
    let g = reverse::gradient(|v: &[Var<f64>]| f(v, n), &base);
    let along: f64 = g.iter().zip(&dir).map(|(a, b)| a * b).sum();
    let duals: Vec<Dual<f64>> = base
        .iter()
        .zip(&dir)
        .map(|(&b, &d)| Dual::new(b, d))
        .collect();
    let fd = f(&duals, n);
    let want = fd.tangent;
    assert!(
        (along - want).abs() <= 1e-9 * (1.0 + want.abs()),
        "∇f·d = {along}, dual = {want}"
    );
}

#[test]
fn norm_at_zero_has_derivative_zero_in_forward_mode_as_documented() {
    let d = forward::derivative(|t| linalg::norm(&vec![t, Dual::constant(0.0)]), 0.0);
    assert_eq!(d, 0.0, "forward");
    let g = reverse::gradient(|v: &[Var<f64>]| linalg::norm(&v.to_vec()), &[0.0, 0.0]);
    assert_eq!(g, vec![0.0, 0.0], "reverse");
}

#[test]
fn cholesky_of_an_unsymmetric_matrix_uses_its_symmetric_part_in_every_mode() {
    let f = |v: &[Var<f64>]| {
        let m = DMatrix::from_row_slice(
            2,
            2,
            &[
                v[0] + Var::constant(2.0),
                v[1],
                Var::constant(0.0),
                Var::constant(1.5),
            ],
        );
        let l = linalg::cholesky(&m).unwrap();
        l[(1, 0)] * l[(1, 1)] + l[(0, 0)]
    };
    let x = [0.3, 0.4];
    let report = check::check_gradient(f, &x);
    assert!(report.passed(), "{report}");
    let report = check::check_hessian(f, &x);
    assert!(report.passed(), "{report}");
}

#[test]
fn pullback_taken_inside_an_outer_recording_with_blocks() {
    // The outer recording has blocks before the inner pullback's segment starts; the
    // pullback must copy only its own blocks, rebased.
    let outer = reverse::gradient(
        |v: &[Var<f64>]| {
            let before = linalg::dot(&v.to_vec(), &v.to_vec());
            let (_, pb) = reverse::pullback(
                |w: &[Var<f64>]| {
                    let m = a2(w);
                    let inv = linalg::inverse(&m).unwrap();
                    vec![linalg::sum(&inv), linalg::norm(&w.to_vec())]
                },
                &[0.4, -0.3],
            );
            let g = pb.apply(&[1.0, 2.0]);
            // Reference: the same by jacobian.
            let j = reverse::jacobian(
                |w: &[Var<f64>]| {
                    let m = a2(w);
                    let inv = linalg::inverse(&m).unwrap();
                    vec![linalg::sum(&inv), linalg::norm(&w.to_vec())]
                },
                &[0.4, -0.3],
            );
            let want: Vec<f64> = (0..2).map(|c| j[(0, c)] + 2.0 * j[(1, c)]).collect();
            close(&g, &want, 1e-14, "inner pullback");
            let after = linalg::sum(&v.to_vec());
            before * Var::constant(g[0]) + after
        },
        &[1.0, 2.0],
    );
    assert_eq!(outer.len(), 2);
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

#[test]
fn order_zero_rule_check_rule_reports_nothing_to_check() {
    // Documenting the behaviour: a value-only rule yields no reports (vacuously passing).
    let rule = CustomRule::vector("v", 1, 1, |x, y| y[0] = x[0]).build();
    assert!(check::check_rule(&rule, &[1.0]).is_empty());
}
