//! Helpers shared by the test modules: plain constants in generic code, reference
//! functions, tolerance-based comparisons and panic capture; [`empty`] holds the functions
//! of no inputs, [`programs`] the random programs of the differential tests.

pub mod empty;
pub mod programs;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use num_traits::Float;

/// Deterministic numbers in `[-1, 1)`.
pub fn rng(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// `n` deterministic numbers in `[-1, 1)`.
pub fn random_vec(seed: u64, n: usize) -> Vec<f64> {
    let mut r = rng(seed);
    (0..n).map(|_| r()).collect()
}

/// The constant `v` in any `Float` type.
pub fn k<T: Float>(v: f64) -> T {
    T::from(v).expect("every Float converts from f64")
}

/// Extended Rosenbrock: `Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²`.
pub fn rosenbrock<T: Float>(x: &[T]) -> T {
    let (one, hundred) = (T::one(), k::<T>(100.0));
    x.windows(2)
        .map(|w| hundred * (w[1] - w[0] * w[0]).powi(2) + (one - w[0]).powi(2))
        .fold(T::zero(), |a, b| a + b)
}

/// Every entry within `tol` relative to `1 + |want|`.
#[track_caller]
pub fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w} (diff {:e})",
            (g - w).abs()
        );
    }
}

/// `½ Σ (vᵀ tanh(W x + b) + c − y)²` over `data`, for `d` inputs and `h` hidden units; the
/// parameters `p` are `W` and `b` row by row (`h·(d + 1)`), then `v` (`h`), then `c`.
pub fn mlp_loss<T: Float>(p: &[T], data: &[(Vec<f64>, f64)], d: usize, h: usize) -> T {
    let (layer, head) = p.split_at(h * (d + 1));
    let (v, c) = (&head[..h], head[h]);
    data.iter().fold(T::zero(), |acc, (x, y)| {
        let out = layer.chunks(d + 1).zip(v).fold(c, |o, (wb, &vj)| {
            let u = x
                .iter()
                .zip(wb)
                .fold(wb[d], |s, (&xi, &wi)| s + k::<T>(xi) * wi);
            o + vj * u.tanh()
        });
        let r = out - k::<T>(*y);
        acc + k::<T>(0.5) * r * r
    })
}

/// The sparse Hessian equals the dense one entry for entry (within `tol` relative to the
/// largest entry), and its pattern covers every non-zero of the dense one.
#[track_caller]
pub fn assert_matches_dense(
    h: &mixad::SparseHessian,
    dense: &mixad::faer::Mat<f64>,
    tol: f64,
    what: &str,
) {
    let n = dense.nrows();
    assert_eq!(h.dim(), n, "{what}: dimension");
    let mut scale: f64 = 1.0;
    for j in 0..n {
        for i in 0..n {
            scale = scale.max(dense[(i, j)].abs());
        }
    }
    let sparse = h.to_dense();
    for j in 0..n {
        for i in 0..n {
            let (s, d) = (sparse[(i, j)], dense[(i, j)]);
            assert!(
                (s - d).abs() <= tol * scale,
                "{what}: entry ({i}, {j}) is {s:e}, dense says {d:e}"
            );
            if d != 0.0 {
                assert!(
                    h.pattern().contains(i, j),
                    "{what}: the pattern misses the non-zero ({i}, {j}) = {d:e}"
                );
            }
        }
    }
    for (r, c, _) in h.triplets() {
        assert!(r >= c, "{what}: triplet ({r}, {c}) is above the diagonal");
    }
}

/// `got` equals `want` within `1e-9 · (1 + |want|)`; NaN matches NaN only.
#[track_caller]
pub fn same(got: f64, want: f64, what: &str) {
    let ok = if want.is_nan() {
        got.is_nan()
    } else {
        (got - want).abs() <= 1e-9 * (1.0 + want.abs())
    };
    assert!(ok, "{what}: got {got}, want {want}");
}

/// [`same`] entry by entry.
#[track_caller]
pub fn same_all(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        same(g, w, &format!("{what}[{i}]"));
    }
}
/// Every entry of a matrix, row by row.
pub fn dense(h: &faer::Mat<f64>) -> Vec<f64> {
    (0..h.nrows())
        .flat_map(|i| (0..h.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| h[(i, j)])
        .collect()
}

#[track_caller]
pub fn all_nan(v: &[f64], what: &str) {
    assert!(v.iter().all(|d| d.is_nan()), "{what}: {v:?} is not all NaN");
}

/// A panic's message, whether it was formatted or a literal.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<non-string panic payload>".into())
}

/// Runs `f`, which must panic, and returns the panic's message.
#[track_caller]
pub fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    panic_text(&*err)
}

/// Runs `f` with the default panic hook silenced (expected panics, caught by the code under
/// test, would otherwise fill the test output), restoring it after. One lock for the whole
/// binary: two tests swapping the hook at once could leave it silenced.
pub fn quiet_panics<R>(f: impl FnOnce() -> R) -> R {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    match result {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e),
    }
}
