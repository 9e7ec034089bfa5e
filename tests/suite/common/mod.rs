//! Helpers shared by the test modules: plain constants in generic code, reference
//! functions, and tolerance-based comparisons; [`programs`] holds the random programs of the
//! differential tests.

pub mod programs;

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
