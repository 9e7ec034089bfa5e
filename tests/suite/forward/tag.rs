//! Forward tags (`src/forward/tag.rs`): a dual from another call, captured or escaped, is
//! refused as perturbation confusion, never mixed into this call's tangents, through unary
//! code, returned values, the sweeps of one call and nestings; tags do not repeat after 2³²
//! calls; hand-made duals (tag 0) mix freely.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mixad::forward::{self, Dual, DualVec};
use mixad::reverse::Var;
use num_traits::Float;

use crate::common::{panic_text, same_all};

// ---------------------------------------------------------------------------------------
// Perturbation confusion through unary-only or captured-return code.
// ---------------------------------------------------------------------------------------

const CONFUSION: &str = "perturbation confusion";

#[track_caller]
fn expect_confusion<R>(f: impl FnOnce() -> R) {
    let err = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a perturbation-confusion panic"),
        Err(e) => e,
    };
    let text = panic_text(&*err);
    assert!(text.contains(CONFUSION), "unexpected message: {text}");
}

#[test]
fn captured_dual_returned_by_an_inner_derivative_panics() {
    // The report's example: the inner function returns the captured x.
    expect_confusion(|| {
        forward::derivative(
            |x: Dual<f64>| {
                let inner: f64 = forward::derivative(|_y: Dual<f64>| x, 1.0);
                x * Dual::constant(inner)
            },
            1.0,
        )
    });
    // Through unary operations and constant scaling only.
    expect_confusion(|| {
        forward::derivative(
            |x: Dual<f64>| {
                let inner: f64 = forward::derivative(|_y: Dual<f64>| x.sin() * 2.0, 1.0);
                x * Dual::constant(inner)
            },
            1.0,
        )
    });
    expect_confusion(|| {
        forward::derivative(
            |x: Dual<f64>| {
                let inner = forward::second_derivative(|_y| Dual::constant(x.exp()), 1.0);
                x * Dual::constant(inner)
            },
            1.0,
        )
    });
}

#[test]
fn captured_dual_returned_by_gradient_jvp_and_jacobian_panics() {
    expect_confusion(|| {
        forward::gradient(
            |x| {
                let inner = forward::gradient(|_y| x[0].cos(), &[1.0, 2.0]);
                x[0] * inner[0]
            },
            &[1.0],
        )
    });
    expect_confusion(|| {
        forward::jvp(
            |x: &[Dual<f64>]| {
                let (_, jv) = forward::jvp(|_y: &[Dual<f64>]| vec![x[0] * 3.0], &[1.0], &[1.0]);
                vec![x[0] * jv[0]]
            },
            &[2.0],
            &[1.0],
        )
    });
    expect_confusion(|| {
        forward::jvp(
            |x: &[Dual<f64>]| {
                let (_, jv) = forward::jvp(|_y: &[Dual<f64>]| vec![-x[0]], &[1.0], &[1.0]);
                vec![x[0] * jv[0]]
            },
            &[2.0],
            &[1.0],
        )
    });
}

#[test]
fn a_dual_that_escaped_an_earlier_call_panics() {
    let escaped = Cell::new(None);
    forward::derivative(
        |x: Dual<f64>| {
            escaped.set(Some(x));
            x * x
        },
        1.0,
    );
    let e = escaped.get().expect("the closure ran");
    expect_confusion(|| forward::derivative(|_y: Dual<f64>| e.sin(), 2.0));
    expect_confusion(|| forward::derivative(|_y: Dual<f64>| e, 2.0));
    expect_confusion(|| forward::derivative(|y: Dual<f64>| y * e, 2.0));
    // Lifting the captured value is the correct nesting and still works.
    let d = forward::derivative(
        |x: Dual<f64>| {
            let inner = forward::derivative(
                |y: Dual<Dual<f64>>| y * Dual::constant(x),
                Dual::constant(1.0),
            );
            inner * x
        },
        3.0,
    );
    assert_eq!(d, 6.0); // d/dx (x · x)
}

/// The natural but wrong nesting (the inner call started at the same type as the outer
/// one, capturing the outer dual) is refused with a clear message, never answered wrongly.
#[test]
#[should_panic(expected = "perturbation confusion")]
fn same_type_nested_forward_calls_are_refused() {
    forward::derivative(|x| x * forward::derivative(|y| x + y, 1.0), 1.0);
}

/// Hand-made duals (tag 0) still mix freely: a directional derivative along (1, 1).
#[test]
fn hand_made_duals_mix_freely() {
    use mixad::forward::Dual;
    let (x, y) = (Dual::variable(2.0), Dual::variable(3.0));
    let r = x * y;
    assert_eq!((r.value, r.tangent), (6.0, 5.0));
}

// ---------------------------------------------------------------------------------------
// A dual that escaped an earlier sweep of the same call (memoised in an `FnMut`
// closure): `forward::gradient` and `forward::jacobian` must refuse it, not read its
// tangent lanes (seeded for other inputs) as this sweep's.
// ---------------------------------------------------------------------------------------

#[test]
fn forward_gradient_dual_escaping_an_earlier_sweep() {
    let cache: Cell<Option<DualVec<f64, 1>>> = Cell::new(None);
    let r = catch_unwind(AssertUnwindSafe(|| {
        forward::gradient_with_lanes::<1, f64>(
            |x| {
                let c = match cache.get() {
                    Some(c) => c,
                    None => {
                        let c = x[0].exp();
                        cache.set(Some(c));
                        c
                    }
                };
                c * x[1]
            },
            &[0.0, 3.0],
        )
    }));
    match r {
        Err(e) => assert!(panic_text(&*e).contains("perturbation confusion")),
        // d/dx (e^x0 x1) = [3, 1]; the stale lane gives [3, 4].
        Ok(g) => assert_eq!(g, vec![3.0, 1.0], "silently wrong gradient"),
    }
}

#[test]
fn forward_gradient_default_chunks_dual_escaping_an_earlier_sweep() {
    let cache: Cell<Option<DualVec<f64, 8>>> = Cell::new(None);
    let x = [0.5; 9];
    let r = catch_unwind(AssertUnwindSafe(|| {
        forward::gradient(
            |x| {
                let c = cache.get().unwrap_or_else(|| {
                    let c = x[0].sin() + x[1];
                    cache.set(Some(c));
                    c
                });
                x.iter().fold(c, |s, &v| s + v * v)
            },
            &x,
        )
    }));
    match r {
        Err(e) => assert!(panic_text(&*e).contains("perturbation confusion")),
        Ok(g) => {
            let want = mixad::gradient(
                |x| Float::sin(x[0]) + x[1] + x.iter().fold(Var::constant(0.0), |s, &v| s + v * v),
                &x,
            );
            same_all(&g, &want, "silently wrong gradient");
        }
    }
}

#[test]
fn forward_jacobian_dual_escaping_an_earlier_sweep() {
    let cache: Cell<Option<DualVec<f64, 8>>> = Cell::new(None);
    let x: Vec<f64> = (0..10).map(|i| i as f64 * 0.1).collect();
    let r = catch_unwind(AssertUnwindSafe(|| {
        forward::jacobian(
            |x| {
                let c = cache.get().unwrap_or_else(|| {
                    let c = x[1] * x[1];
                    cache.set(Some(c));
                    c
                });
                vec![c + x[9]]
            },
            &x,
        )
    }));
    match r {
        Err(e) => assert!(panic_text(&*e).contains("perturbation confusion")),
        Ok(j) => {
            // d/dx (x1² + x9) = [0, 0.2, 0, …, 0, 1] at x1 = 0.1; the second sweep
            // (inputs 5..9 in lanes 0..4) reads the stale lane 1 of x1² as column 6's.
            let row: Vec<f64> = (0..10).map(|k| j[(0, k)]).collect();
            let mut want = vec![0.0; 10];
            want[1] = 0.2;
            want[9] = 1.0;
            same_all(&row, &want, "silently wrong Jacobian");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tags through nestings, and after many calls.
// ---------------------------------------------------------------------------------------

#[test]
fn second_derivative_returning_a_captured_inner_dual_panics() {
    let r = catch_unwind(AssertUnwindSafe(|| {
        forward::derivative(
            |x: Dual<f64>| {
                let inner = forward::second_derivative(
                    |t: Dual<Dual<f64>>| {
                        Dual::new(x, Dual::constant(0.0)) + t * Dual::constant(Dual::constant(0.0))
                    },
                    1.0,
                );
                x * Dual::constant(inner)
            },
            1.0,
        )
    }));
    assert!(
        r.is_err(),
        "a captured outer dual inside a Dual<Dual> result must be refused"
    );
}

#[test]
fn an_escaped_dual_vec_from_an_earlier_call_panics() {
    let kept: Cell<Option<DualVec<f64, 8>>> = Cell::new(None);
    forward::gradient(
        |x| {
            kept.set(Some(x[0]));
            x[0] * x[1]
        },
        &[1.0, 2.0],
    );
    let e = kept.get().unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        forward::gradient(|x| x[0] + e.sin(), &[1.0, 2.0])
    }));
    assert!(r.is_err());
}

#[test]
fn a_dual_memoised_across_jvp_calls_is_refused() {
    let kept: Cell<Option<Dual<f64>>> = Cell::new(None);
    let call = |x: f64| {
        forward::jvp(
            |y: &[Dual<f64>]| {
                let c = kept.get().unwrap_or_else(|| {
                    let c = y[0] * y[0];
                    kept.set(Some(c));
                    c
                });
                vec![c * y[0]]
            },
            &[x],
            &[1.0],
        )
    };
    call(1.0);
    let r = catch_unwind(AssertUnwindSafe(|| call(2.0)));
    assert!(
        r.is_err(),
        "a dual from an earlier jvp call must be refused"
    );
}

#[test]
fn forward_tags_do_not_repeat_after_two_to_the_32_calls() {
    let escaped = Cell::new(None);
    forward::derivative(
        |x: Dual<f64>| {
            escaped.set(Some(x));
            x
        },
        1.0,
    );
    let e = escaped.get().expect("the closure ran");
    // 2³² − 1 more calls' worth of tags: a 32-bit tag would now come round to `e`'s.
    forward::skip_tags((1 << 32) - 1);
    expect_confusion(|| forward::derivative(|y: Dual<f64>| y * e, 2.0));
}
