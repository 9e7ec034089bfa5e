//! Tests `src/argmin.rs`, the `argmin` feature.
//!
//! The `argmin` feature: derivatives through the adapter against mixad's direct APIs and
//! analytic values, errors, the prepared Hessian's reuse, and solves to the Rosenbrock
//! minimum with argmin's Newton, Newton-CG and trust regions.
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::common::{assert_close, rosenbrock};
use argmin::core::{
    ArgminError, CostFunction, Executor, Gradient, Hessian, State, TerminationReason,
};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::newton::{Newton, NewtonCG};
use argmin::solver::quasinewton::LBFGS;
use argmin::solver::trustregion::{CauchyPoint, Dogleg, Steihaug, TrustRegion};
use argmin_math::{ArgminDot, ArgminInv};
use mixad::argmin::{AutoDiff, DenseHessian, NonFinite, Quantity};
use mixad::Function;
use mixad::{Options, Parallelism, Scalar};
use num_traits::Float;

/// Extended Rosenbrock as a generic cost.
struct Rosen;
impl Function for Rosen {
    fn eval<T: Scalar>(&self, x: &[T]) -> T {
        rosenbrock(x)
    }
}

/// Analytic gradient of extended Rosenbrock.
fn rosen_grad(x: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    for i in 0..x.len() - 1 {
        let r = x[i + 1] - x[i] * x[i];
        g[i] += -400.0 * x[i] * r - 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * r;
    }
    g
}

/// Analytic Hessian of extended Rosenbrock (tridiagonal), as rows.
fn rosen_hess(x: &[f64]) -> Vec<Vec<f64>> {
    let n = x.len();
    let mut h = vec![vec![0.0; n]; n];
    for i in 0..n - 1 {
        h[i][i] += 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
        h[i][i + 1] -= 400.0 * x[i];
        h[i + 1][i] -= 400.0 * x[i];
        h[i + 1][i + 1] += 200.0;
    }
    h
}

fn points() -> Vec<Vec<f64>> {
    vec![
        vec![-1.2, 1.0],
        vec![0.3, -0.7, 2.0],
        vec![1.5, 0.25, -0.5, 0.8, 1.1, -2.0, 0.0],
    ]
}

fn assert_rows_close(got: &[Vec<f64>], want: &[Vec<f64>], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_close(g, w, tol, &format!("{what} row {i}"));
    }
}

#[test]
fn cost_and_gradient_match_direct_apis_and_analytic() {
    let problem = AutoDiff::new(Rosen);
    for x in points() {
        assert_eq!(problem.cost(&x).unwrap(), rosenbrock(&x));
        let g = problem.gradient(&x).unwrap();
        assert_eq!(
            g,
            mixad::gradient(rosenbrock, &x),
            "same as mixad::gradient"
        );
        assert_close(&g, &rosen_grad(&x), 1e-13, "gradient vs analytic");
    }
}

#[test]
fn hessian_one_shot_and_prepared_match_direct_api_and_analytic() {
    let one_shot = AutoDiff::new(Rosen);
    let prepared = AutoDiff::prepared(Rosen, Options::default());
    let serial_lane1 = AutoDiff::prepared(
        Rosen,
        Options {
            lanes: Some(1),
            parallelism: Parallelism::Serial,
            ..Options::default()
        },
    );
    for x in points() {
        let n = x.len();
        let direct = mixad::hessian(rosenbrock, &x);
        let direct: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| direct[(i, j)]).collect())
            .collect();
        let want = rosen_hess(&x);
        for (name, p) in [
            ("one-shot", &one_shot),
            ("prepared", &prepared),
            ("1 lane, serial", &serial_lane1),
        ] {
            let h = p.hessian(&x).unwrap();
            assert_eq!(h, direct, "{name}: same as mixad::hessian");
            assert_rows_close(&h, &want, 1e-13, name);
            for (i, row) in h.iter().enumerate() {
                for (j, &hij) in row.iter().enumerate() {
                    assert_eq!(hij, h[j][i], "{name}: exactly symmetric at ({i}, {j})");
                }
            }
        }
    }
    // The points change length, so the prepared Hessians recorded anew each time; none of
    // that counts as a branch re-recording.
    assert_eq!(prepared.rerecord_count(), 0);
}

#[test]
fn prepared_hessian_is_replayed_and_rerecorded_on_a_branch_flip() {
    /// `|x₀|³ + x₀x₁` written with a branch, so the recording holds a guard on `x₀ ≥ 0`.
    struct Branchy;
    impl Function for Branchy {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let c = if x[0] >= T::zero() {
                Float::powi(x[0], 3)
            } else {
                -Float::powi(x[0], 3)
            };
            c + x[0] * x[1]
        }
    }
    let want = |x: &[f64]| vec![vec![6.0 * x[0].abs(), 1.0], vec![1.0, 0.0]];
    let problem = AutoDiff::prepared(Branchy, Options::default());
    for x in [[1.0, 2.0], [2.0, -1.0], [0.5, 0.0]] {
        assert_eq!(problem.hessian(&x.to_vec()).unwrap(), want(&x));
    }
    assert_eq!(problem.rerecord_count(), 0, "same branch: replayed");
    assert_eq!(
        problem.hessian(&vec![-2.0, 1.0]).unwrap(),
        want(&[-2.0, 1.0])
    );
    assert_eq!(
        problem.rerecord_count(),
        1,
        "branch flipped: recorded again"
    );
    assert_eq!(
        problem.hessian(&vec![-3.0, 1.0]).unwrap(),
        want(&[-3.0, 1.0])
    );
    assert_eq!(problem.rerecord_count(), 1);
    // The one-shot adapter gets the same values and never re-records.
    let one_shot = AutoDiff::new(Branchy);
    assert_eq!(
        one_shot.hessian(&vec![-2.0, 1.0]).unwrap(),
        want(&[-2.0, 1.0])
    );
    assert_eq!(one_shot.rerecord_count(), 0);
}

#[test]
fn a_borrowed_cost_with_data_works() {
    /// Σ wᵢ (xᵢ − cᵢ)⁴ over data the cost owns.
    struct Weighted {
        w: Vec<f64>,
        c: Vec<f64>,
    }
    impl Function for Weighted {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            x.iter()
                .zip(self.w.iter().zip(&self.c))
                .fold(T::zero(), |s, (&xi, (&w, &c))| {
                    s + T::cst(w) * Float::powi(xi - T::cst(c), 4)
                })
        }
    }
    let data = Weighted {
        w: vec![1.0, 2.0, 0.5],
        c: vec![0.0, 1.0, -1.0],
    };
    let problem = AutoDiff::new(&data);
    let x = vec![1.0, 3.0, 1.0];
    assert_eq!(problem.cost(&x).unwrap(), 1.0 + 2.0 * 16.0 + 0.5 * 16.0);
    assert_eq!(
        problem.gradient(&x).unwrap(),
        vec![4.0, 2.0 * 4.0 * 8.0, 0.5 * 4.0 * 8.0]
    );
    assert_eq!(
        problem.hessian(&x).unwrap(),
        vec![
            vec![12.0, 0.0, 0.0],
            vec![0.0, 2.0 * 48.0, 0.0],
            vec![0.0, 0.0, 0.5 * 48.0]
        ]
    );
    assert_eq!(problem.inner().w, data.w);
}

/// `ln(x₀) + x₁²`: NaN below 0, −∞ at 0, and an infinite gradient there.
struct Log;
impl Function for Log {
    fn eval<T: Scalar>(&self, x: &[T]) -> T {
        Float::ln(x[0]) + x[1] * x[1]
    }
}

fn non_finite(err: argmin::core::Error) -> NonFinite {
    err.downcast_ref::<NonFinite>()
        .unwrap_or_else(|| panic!("expected a NonFinite, got: {err}"))
        .clone()
}

#[test]
fn non_finite_values_are_argmin_errors_that_say_what_and_where() {
    let problem = AutoDiff::new(Log);
    assert!(problem.cost(&vec![1.0, 2.0]).is_ok());

    let e = problem.cost(&vec![-1.0, 2.0]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "mixad::argmin: cost is NaN at x = [-1.0, 2.0]"
    );
    let e = non_finite(e);
    assert_eq!(e.quantity, Quantity::Cost);
    assert!(e.value.is_nan());
    assert_eq!(e.x, vec![-1.0, 2.0]);

    let e = non_finite(problem.cost(&vec![0.0, 2.0]).unwrap_err());
    assert_eq!((e.quantity, e.value), (Quantity::Cost, f64::NEG_INFINITY));

    let e = non_finite(problem.gradient(&vec![0.0, 2.0]).unwrap_err());
    assert_eq!(
        (e.quantity, e.value),
        (Quantity::Gradient { index: 0 }, f64::INFINITY)
    );

    for p in [
        AutoDiff::new(Log),
        AutoDiff::prepared(Log, Options::default()),
    ] {
        let e = non_finite(p.hessian(&vec![0.0, 2.0]).unwrap_err());
        assert_eq!(
            (e.quantity, e.value),
            (Quantity::Hessian { row: 0, col: 0 }, f64::NEG_INFINITY)
        );
        // Finite again at the next point.
        assert_eq!(
            p.hessian(&vec![2.0, 2.0]).unwrap(),
            vec![vec![-0.25, 0.0], vec![0.0, 2.0]]
        );
    }
}

#[test]
fn plus_infinity_cost_is_passed_on_and_long_points_are_elided() {
    struct Barrier;
    impl Function for Barrier {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            if x[0] > T::one() {
                T::infinity()
            } else {
                x[0] * x[0]
            }
        }
    }
    assert_eq!(
        AutoDiff::new(Barrier).cost(&vec![2.0]).unwrap(),
        f64::INFINITY
    );

    let x: Vec<f64> = (0..10).map(f64::from).collect();
    let mut x_nan = x.clone();
    x_nan[0] = f64::NAN;
    let e = AutoDiff::new(Rosen).gradient(&x_nan).unwrap_err();
    assert_eq!(
        e.to_string(),
        "mixad::argmin: gradient entry 0 is NaN at x = [NaN, 1.0, 2.0, 3.0, 4.0, 5.0] \
         (first 6 of 10 entries)"
    );
}

#[test]
fn empty_parameters_are_an_invalid_parameter_error() {
    for p in [
        AutoDiff::new(Rosen),
        AutoDiff::prepared(Rosen, Options::default()),
    ] {
        for e in [
            p.gradient(&vec![]).unwrap_err(),
            p.hessian(&vec![]).unwrap_err(),
        ] {
            assert!(
                matches!(
                    e.downcast_ref::<ArgminError>(),
                    Some(ArgminError::InvalidParameter { .. })
                ),
                "{e}"
            );
            assert!(e.to_string().contains("x is empty"), "{e}");
        }
    }
}

#[test]
fn prepared_hessian_recovers_after_a_panic_in_the_cost() {
    /// Panics for x₀ > 10 (a bug in the user's cost, say). The comparison is a branch
    /// guard, so crossing 10 re-records, and the re-recording panics.
    struct Fragile;
    impl Function for Fragile {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            if x[0] > T::cst(10.0) {
                panic!("x0 out of range");
            }
            x[0] * x[0] * x[1]
        }
    }
    let want = |x: &[f64]| vec![vec![2.0 * x[1], 2.0 * x[0]], vec![2.0 * x[0], 0.0]];
    let problem = AutoDiff::prepared(Fragile, Options::default());
    assert_eq!(problem.hessian(&vec![2.0, 3.0]).unwrap(), want(&[2.0, 3.0]));
    let panicked = catch_unwind(AssertUnwindSafe(|| problem.hessian(&vec![11.0, 1.0])));
    assert!(
        panicked.is_err(),
        "the re-recording ran the cost at x0 = 11"
    );
    // The panic poisoned the lock mid-recording; the next call records afresh and is right.
    for x in [[1.0, 5.0], [-4.0, 0.5]] {
        assert_eq!(problem.hessian(&x.to_vec()).unwrap(), want(&x));
    }
}

#[test]
fn adapter_is_send_and_sync() {
    fn check<T: Send + Sync>(_: &T) {}
    check(&AutoDiff::new(Rosen));
    check(&AutoDiff::prepared(Rosen, Options::default()));
}

fn assert_at_minimum(x: &[f64], tol: f64, what: &str) {
    for (i, &xi) in x.iter().enumerate() {
        assert!((xi - 1.0).abs() < tol, "{what}: x[{i}] = {xi}, want 1");
    }
}

#[test]
fn newton_with_an_invertible_hessian_solves_rosenbrock() {
    for problem in [
        AutoDiff::new(Rosen).invertible(),
        AutoDiff::prepared(Rosen, Options::default()).invertible(),
    ] {
        let res = Executor::new(problem, Newton::<f64>::new())
            .configure(|s| s.param(vec![-1.2, 1.0]).max_iters(10))
            .run()
            .unwrap();
        assert_at_minimum(res.state().get_best_param().unwrap(), 1e-12, "Newton");
        assert_eq!(res.problem.counts["hessian_count"], 10);
    }
}

#[test]
fn lbfgs_on_the_adapters_gradient_solves_rosenbrock() {
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 5);
    let res = Executor::new(AutoDiff::new(Rosen), solver)
        .configure(|s| s.param(vec![-1.2, 1.0]).max_iters(200))
        .run()
        .unwrap();
    assert_at_minimum(res.state().get_best_param().unwrap(), 1e-6, "L-BFGS");
    assert!(!res.problem.counts.contains_key("hessian_count"));
}

#[test]
fn trust_region_dogleg_solves_rosenbrock() {
    let solver: TrustRegion<Dogleg<f64>, f64> = TrustRegion::new(Dogleg::new());
    let res = Executor::new(AutoDiff::new(Rosen).invertible(), solver)
        .configure(|s| s.param(vec![-1.2, 1.0]).max_iters(100).target_cost(1e-20))
        .run()
        .unwrap();
    let state = res.state();
    assert_eq!(
        state.get_termination_reason(),
        Some(&TerminationReason::TargetCostReached)
    );
    assert_at_minimum(state.get_best_param().unwrap(), 1e-9, "dogleg");
}

#[test]
fn newton_cg_with_line_search_descends_on_rosenbrock() {
    // argmin 0.11's Newton-CG cuts its inner CG short near the minimum (see the example), so
    // it creeps along the valley: check that it runs on the adapter's Hessian and gets
    // well down, not that it converges tightly.
    let solver = NewtonCG::new(MoreThuenteLineSearch::new());
    let res = Executor::new(AutoDiff::new(Rosen), solver)
        .configure(|s| s.param(vec![-1.2, 1.0]).max_iters(100))
        .run()
        .unwrap();
    let state = res.state();
    assert!(
        state.get_best_cost() < 1e-3,
        "cost {}",
        state.get_best_cost()
    );
    assert_at_minimum(state.get_best_param().unwrap(), 0.05, "Newton-CG");
    assert!(res.problem.counts["hessian_count"] > 0);
}

#[test]
fn dense_hessian_inverse_and_product() {
    // A symmetric positive definite 5×5 and its inverse: H·H⁻¹·v = v.
    let n = 5;
    let h: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j {
                        4.0 + i as f64
                    } else {
                        1.0 / (1.0 + (i + j) as f64)
                    }
                })
                .collect()
        })
        .collect();
    let h = DenseHessian(h);
    let inv = h.inv().unwrap();
    for k in 0..n {
        let e: Vec<f64> = (0..n).map(|i| if i == k { 1.0 } else { 0.0 }).collect();
        assert_close(&h.dot(&inv.dot(&e)), &e, 1e-14, "H·H⁻¹·e");
    }
    // Needs a row swap: zero on the diagonal.
    let swap = DenseHessian(vec![vec![0.0, 2.0], vec![2.0, 1.0]]);
    assert_close(
        &swap.dot(&swap.inv().unwrap().dot(&vec![3.0, -1.0])),
        &[3.0, -1.0],
        1e-15,
        "swap",
    );
    // Singular, and NaN: errors with text, not garbage.
    for bad in [
        vec![vec![1.0, 2.0], vec![2.0, 4.0]],
        vec![vec![f64::NAN, 0.0], vec![0.0, 1.0]],
    ] {
        let e = DenseHessian(bad).inv().unwrap_err();
        assert!(e.to_string().contains("singular"), "{e}");
    }
}

#[test]
fn trust_region_steihaug_solves_extended_rosenbrock_with_a_prepared_hessian() {
    let n = 20;
    // From (−1.2, 1, −1.2, …) chained Rosenbrock ends at its local minimum near
    // (−1, 1, 1, …); this start leads to the global one.
    let x0: Vec<f64> = (0..n).map(|i| 0.5 + 0.1 * (i % 3) as f64).collect();
    let solver = TrustRegion::new(Steihaug::new().with_max_iters(2 * n as u64));
    let res = Executor::new(AutoDiff::prepared(Rosen, Options::default()), solver)
        .configure(|s| s.param(x0).max_iters(500).target_cost(1e-20))
        .run()
        .unwrap();
    let state = res.state();
    assert_eq!(
        state.get_termination_reason(),
        Some(&TerminationReason::TargetCostReached),
        "cost {:e} after {} iterations at {:?}, counts {:?}",
        state.get_best_cost(),
        state.get_iter(),
        state.get_best_param(),
        res.problem.counts
    );
    assert_at_minimum(state.get_best_param().unwrap(), 1e-8, "trust region");
    let problem = res.problem.problem.as_ref().unwrap();
    assert_eq!(problem.rerecord_count(), 0, "Rosenbrock has no branch");
    assert!(res.problem.counts["hessian_count"] > 1);
}

#[test]
fn trust_region_cauchy_point_makes_progress() {
    // The Cauchy point is steepest descent inside the region: slow on Rosenbrock, but it
    // must decrease the cost from the start with the adapter's Hessian.
    let solver = TrustRegion::new(CauchyPoint::new());
    let x0 = vec![-1.2, 1.0];
    let f0 = rosenbrock(&x0);
    let res = Executor::new(AutoDiff::new(Rosen), solver)
        .configure(|s| s.param(x0).max_iters(50))
        .run()
        .unwrap();
    assert!(
        res.state().get_best_cost() < 0.5 * f0,
        "{} vs {f0}",
        res.state().get_best_cost()
    );
}

#[test]
fn a_nan_during_a_solve_stops_it_with_the_error() {
    // Starting in the NaN region: the first cost evaluation fails, and argmin returns the
    // adapter's error rather than iterating on NaN.
    let solver = TrustRegion::new(Steihaug::new());
    let err = Executor::new(AutoDiff::new(Log), solver)
        .configure(|s| s.param(vec![-1.0, 1.0]).max_iters(10))
        .run()
        .err()
        .expect("a NaN cost stops the solver");
    let e = non_finite(err);
    assert!(e.value.is_nan(), "{e}");
    assert_eq!(e.x, vec![-1.0, 1.0]);
}
