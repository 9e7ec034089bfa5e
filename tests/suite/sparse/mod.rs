//! Tests `src/sparse/`. Sparsity detection: `pattern.rs`; sparse Jacobians: `jacobian.rs`.
//!
//! Sparse Hessians (`mixad::sparse`): equal to the dense Hessian on every Hessian test
//! function, a pattern that never misses a non-zero and is tight on structured problems,
//! small colour counts on banded, arrowhead, block-diagonal and grid structures, one
//! `mixad::Recording` reused at new points and across changed branches, Lagrangians
//! against hand-derived values, faer conversions, and the panics promised for misuse.
//!
//! Also: functions of no inputs, one-shot, recorded and Lagrangian.

mod jacobian;
mod pattern;

use crate::common::empty::{assert_0x0, f, f0, g, none, EMPTY};
use crate::common::{assert_matches_dense, k, mlp_loss, random_vec, rng, rosenbrock};
use mixad::reverse::{self, Var};
use mixad::sparse::{self, ColouringKind, SparseHessian};
use mixad::{Options, Parallelism};
use num_traits::Float;
use std::num::NonZeroUsize;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// `Parallelism::Threads(t)`.
fn threads(t: usize) -> Parallelism {
    Parallelism::Threads(NonZeroUsize::new(t).unwrap())
}

/// Every lane count and parallelism with both colourings, plus the defaults.
fn all_options() -> Vec<Options> {
    let mut all = vec![
        Options::default(),
        Options {
            colouring: ColouringKind::Acyclic,
            ..Default::default()
        },
    ];
    for lanes in [1, 2, 4, 8, 16] {
        for parallelism in [Parallelism::Serial, threads(2), Parallelism::Auto] {
            for colouring in [ColouringKind::Star, ColouringKind::Acyclic] {
                all.push(Options {
                    lanes: Some(lanes),
                    parallelism,
                    colouring,
                    ..Options::default()
                });
            }
        }
    }
    all
}

const ACYCLIC: Options = Options {
    lanes: None,
    parallelism: Parallelism::Auto,
    colouring: ColouringKind::Acyclic,
    compile: mixad::Compile::Auto,
};

/// Colours of the star and the acyclic colouring of `f`'s pattern at `x`.
fn colour_counts<F>(f: F, x: &[f64]) -> (usize, usize)
where
    F: Fn(&[Var<f64>]) -> Var<f64> + Copy,
{
    (
        mixad::record(f, x).colour_count(),
        mixad::record_with(f, x, ACYCLIC).colour_count(),
    )
}

/// One-shot, and one recording per option at every point, against `mixad::hessian`.
fn check<F>(f: F, points: &[Vec<f64>], what: &str)
where
    F: Fn(&[Var<f64>]) -> Var<f64> + Copy,
{
    for x in points {
        let dense = mixad::hessian(f, x);
        assert_matches_dense(&mixad::sparse_hessian(f, x), &dense, 1e-13, what);
    }
    for options in all_options() {
        let mut plan = mixad::record_with(f, &points[0], options);
        for x in points {
            let dense = mixad::hessian(f, x);
            let (value, grad, h) = plan.value_gradient_sparse_hessian(x);
            let (v_ref, g_ref) = reverse::value_and_gradient(f, x);
            assert_matches_dense(&h, &dense, 1e-13, &format!("{what}, {options:?}"));
            assert!(
                (value - v_ref).abs() <= 1e-13 * (1.0 + v_ref.abs()),
                "{what}: value"
            );
            for (a, b) in grad.iter().zip(&g_ref) {
                assert!((a - b).abs() <= 1e-13 * (1.0 + b.abs()), "{what}: gradient");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The Hessian test functions (`hessian.rs`), sparse against dense
// ---------------------------------------------------------------------------------------

fn extended_rosenbrock<T: Float>(x: &[T]) -> T {
    x.chunks(2).fold(T::zero(), |acc, p| {
        acc + k::<T>(100.0) * (p[1] - p[0] * p[0]).powi(2) + (T::one() - p[0]).powi(2)
    })
}

fn log_norm_sin<T: Float>(x: &[T]) -> T {
    let sq = x.iter().fold(T::zero(), |a, &b| a + b * b);
    let chain = x.windows(2).fold(T::zero(), |a, w| a + w[0].sin() * w[1]);
    (T::one() + sq).ln() + chain
}

fn logistic<T: Float>(w: &[T]) -> T {
    let mut r = rng(4);
    let dim = w.len();
    let mut loss = T::zero();
    for _ in 0..12 {
        let a: Vec<f64> = (0..dim).map(|_| 2.0 * r()).collect();
        let y = if r() > 0.0 { 1.0 } else { 0.0 };
        let z = a
            .iter()
            .zip(w)
            .fold(T::zero(), |s, (&ai, &wi)| s + k::<T>(ai) * wi);
        loss = loss + (T::one() + z.exp()).ln() - k::<T>(y) * z;
    }
    loss + k::<T>(0.05) * w.iter().fold(T::zero(), |s, &wi| s + wi * wi)
}

/// `½ Σ (vᵀ tanh(W x + b) + c − y)²` with 2 inputs and 3 hidden units.
fn mlp<T: Float>(p: &[T]) -> T {
    let (d, h) = (2, 3);
    let mut r = rng(6);
    let data: Vec<(Vec<f64>, f64)> = (0..5)
        .map(|_| ((0..d).map(|_| r()).collect(), r()))
        .collect();
    mlp_loss(p, &data, d, h)
}

fn elementary<T: Float>(x: &[T]) -> T {
    (x[0] * x[1]).exp()
        + x[2].ln()
        + x[0].powf(x[2])
        + x[1].atan2(x[3])
        + x[2].hypot(x[3])
        + (x[0] * x[4]).sqrt()
}

#[test]
fn extended_rosenbrock_sparse_equals_dense() {
    let n = 10;
    let classic: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
        .collect();
    check(
        extended_rosenbrock,
        &[classic, vec![1.0; n], random_vec(1, n)],
        "extended Rosenbrock",
    );
    // Block-diagonal 2 × 2: exactly the pattern, two colours.
    let mut plan = mixad::record(extended_rosenbrock, &vec![1.0; n]);
    assert_eq!(plan.sparsity_pattern().nnz(), 3 * n / 2);
    assert_eq!(plan.colour_count(), 2);
}

#[test]
fn chained_rosenbrock_sparse_equals_dense() {
    let n = 12;
    check(
        rosenbrock,
        &[random_vec(11, n), vec![1.0; n]],
        "chained Rosenbrock",
    );
    let mut plan = mixad::record(rosenbrock, &vec![1.0; n]);
    assert_eq!(plan.sparsity_pattern().nnz(), 2 * n - 1, "tridiagonal");
    assert_eq!(plan.colour_count(), 3);
}

#[test]
fn log_norm_plus_sine_chain_sparse_equals_dense() {
    let n = 7;
    let scaled: Vec<f64> = random_vec(3, n).iter().map(|a| 3.0 * a).collect();
    check(
        log_norm_sin,
        &[random_vec(2, n), scaled],
        "ln-norm + sine chain",
    );
    // The logarithm of the norm couples everything: dense.
    let mut plan = mixad::record(log_norm_sin, &random_vec(2, n));
    assert_eq!(plan.sparsity_pattern().nnz(), n * (n + 1) / 2);
    assert_eq!(plan.colour_count(), n);
}

#[test]
fn logistic_regression_sparse_equals_dense() {
    check(logistic, &[vec![0.0; 4], random_vec(5, 4)], "logistic");
}

#[test]
fn tanh_mlp_sparse_equals_dense() {
    check(mlp, &[random_vec(7, 13), random_vec(8, 13)], "tanh MLP");
}

#[test]
fn elementary_functions_sparse_equal_dense() {
    check(
        elementary,
        &[
            vec![0.7, -0.4, 1.3, 0.9, 2.1],
            vec![1.5, 0.3, 0.6, -1.2, 0.8],
        ],
        "elementary",
    );
    // Exactly the hand-derived pattern: (0,0) (1,0) (1,1) (2,0) (2,2) (3,1) (3,2) (3,3)
    // (4,0) (4,4).
    let h = mixad::sparse_hessian(elementary, &[0.7, -0.4, 1.3, 0.9, 2.1]);
    let entries: Vec<(usize, usize)> = h.triplets().map(|(r, c, _)| (r, c)).collect();
    assert_eq!(
        entries,
        vec![
            (0, 0),
            (1, 0),
            (2, 0),
            (4, 0),
            (1, 1),
            (3, 1),
            (2, 2),
            (3, 2),
            (3, 3),
            (4, 4)
        ]
    );
}

#[test]
fn hessian_of_a_function_that_takes_a_gradient_inside() {
    let g = |z: &[Var<Var<f64>>]| {
        let third = 1.0 / 3.0;
        z[0] * z[0] * z[0] * third + z[1] * z[1] * z[1] * third + z[0] * z[1]
    };
    let f = move |x: &[Var<f64>]| {
        let grad = reverse::gradient(g, x);
        (grad[0] * grad[0] + grad[1] * grad[1]) * 0.5
    };
    check(f, &[vec![0.3, -0.8], vec![1.1, 0.4]], "gradient inside");
}

#[test]
fn linear_constant_and_unused_inputs() {
    let x = [0.5, -2.0, 3.0];
    let linear = |z: &[Var<f64>]| z[0] * 2.0 - z[1] + z[2] * 7.0;
    let (v, g, h) = mixad::record(linear, &x).value_gradient_sparse_hessian(&x);
    assert_eq!(
        (v, g, h.nnz()),
        (1.0 - (-2.0) + 21.0 - 0.0, vec![2.0, -1.0, 7.0], 0)
    );
    let constant = |_: &[Var<f64>]| Var::constant(4.0);
    let (v, g, h) = mixad::record(constant, &x).value_gradient_sparse_hessian(&x);
    assert_eq!((v, g, h.nnz()), (4.0, vec![0.0; 3], 0));
    // Piecewise-linear operations and rounding add nothing.
    let piecewise =
        |z: &[Var<f64>]| z[0].abs() + z[1].max(z[2]) + z[0].floor() * z[0] + z[1].signum() * z[1];
    assert_eq!(mixad::sparse_hessian(piecewise, &x).nnz(), 0);
    // An input that is never used: no entries in its row or column.
    let h = mixad::sparse_hessian(|z| z[0] * z[0] * z[2], &x);
    let entries: Vec<_> = h.triplets().collect();
    assert_eq!(entries, vec![(0, 0, 2.0 * x[2]), (2, 0, 2.0 * x[0])]);
}

// ---------------------------------------------------------------------------------------
// Structures: tight patterns, small colour counts
// ---------------------------------------------------------------------------------------

/// `Σ_i Σ_{0<d≤b} sin(xᵢ + x_{i+d})` plus `Σ xᵢ⁴`: a band of half-width `b`.
fn banded(b: usize) -> impl Fn(&[Var<f64>]) -> Var<f64> + Copy {
    move |x: &[Var<f64>]| {
        let n = x.len();
        let mut s = x.iter().fold(Var::constant(0.0), |s, &v| s + v.powi(4));
        for i in 0..n {
            for d in 1..=b {
                if i + d < n {
                    s += (x[i] + x[i + d]).sin();
                }
            }
        }
        s
    }
}

fn arwhead<T: Float>(x: &[T]) -> T {
    let n = x.len();
    (0..n - 1).fold(T::zero(), |s, i| {
        s + (x[i] * x[i] + x[n - 1] * x[n - 1]).powi(2) - k::<T>(4.0) * x[i] + k::<T>(3.0)
    })
}

/// Dense blocks of `size`: `Σ_blocks exp(Σ block)`.
fn block_diagonal(size: usize) -> impl Fn(&[Var<f64>]) -> Var<f64> + Copy {
    move |x: &[Var<f64>]| {
        x.chunks(size).fold(Var::constant(0.0), |s, block| {
            s + block.iter().fold(Var::constant(0.0), |a, &v| a + v).exp()
        })
    }
}

/// A `side × side` grid energy: `Σ (u_p − u_q)⁴` over neighbouring points, plus `Σ u⁴`.
fn grid(side: usize) -> impl Fn(&[Var<f64>]) -> Var<f64> + Copy {
    move |u: &[Var<f64>]| {
        let mut s = u.iter().fold(Var::constant(0.0), |s, &v| s + v.powi(4));
        for r in 0..side {
            for c in 0..side {
                let p = r * side + c;
                if c + 1 < side {
                    s += (u[p] - u[p + 1]).powi(4);
                }
                if r + 1 < side {
                    s += (u[p] - u[p + side]).powi(4);
                }
            }
        }
        s
    }
}

#[test]
fn banded_patterns_are_tight_and_few_colours() {
    let n = 40;
    for (b, max_colours) in [(1, 3), (2, 5), (3, 7)] {
        let f = banded(b);
        let x = random_vec(20 + b as u64, n);
        check(f, std::slice::from_ref(&x), &format!("band {b}"));
        let mut plan = mixad::record(f, &x);
        let nnz: usize = (0..=b).map(|d| n - d).sum();
        assert_eq!(
            plan.sparsity_pattern().nnz(),
            nnz,
            "band {b}: tight pattern"
        );
        let colours = plan.colour_count();
        assert!(
            colours <= max_colours,
            "band {b}: {colours} colours, expected at most {max_colours}"
        );
    }
}

#[test]
fn arrowhead_pattern_is_tight_and_two_colours() {
    for n in [5, 100, 10_000] {
        let x = random_vec(30, n);
        if n <= 100 {
            check(arwhead, std::slice::from_ref(&x), "ARWHEAD");
        }
        let mut plan = mixad::record(arwhead, &x);
        assert_eq!(
            plan.sparsity_pattern().nnz(),
            2 * n - 1,
            "diagonal and last row"
        );
        assert_eq!(plan.colour_count(), 2, "n = {n}");
    }
    // Hub first: the same two colours.
    let reversed = |x: &[Var<f64>]| {
        let r: Vec<Var<f64>> = x.iter().rev().copied().collect();
        arwhead(&r)
    };
    let x = random_vec(31, 50);
    check(reversed, std::slice::from_ref(&x), "reversed ARWHEAD");
    assert_eq!(mixad::record(reversed, &x).colour_count(), 2);
}

#[test]
fn block_diagonal_uses_one_colour_per_block_column() {
    for size in [1, 3, 4, 7] {
        let f = block_diagonal(size);
        let x: Vec<f64> = random_vec(40, 7 * size).iter().map(|v| 0.1 * v).collect();
        check(f, std::slice::from_ref(&x), &format!("blocks of {size}"));
        let mut plan = mixad::record(f, &x);
        assert_eq!(plan.sparsity_pattern().nnz(), 7 * size * (size + 1) / 2);
        assert_eq!(plan.colour_count(), size, "blocks of {size}");
    }
}

#[test]
fn grid_energy_is_tight_and_few_colours() {
    let side = 12;
    let f = grid(side);
    let x = random_vec(50, side * side);
    check(f, std::slice::from_ref(&x), "grid");
    let mut plan = mixad::record(f, &x);
    let edges = 2 * side * (side - 1);
    assert_eq!(plan.sparsity_pattern().nnz(), side * side + edges);
    // The grid's star chromatic number is 5; the greedy colouring in natural order uses 7.
    let colours = plan.colour_count();
    assert!(colours <= 7, "grid: {colours} colours");
}

#[test]
fn acyclic_colouring_uses_no_more_colours_than_star() {
    // (structure, star colours, acyclic colours) in natural order.
    let x = random_vec(80, 144);
    let cases = [
        ("tridiagonal", colour_counts(banded(1), &x), (3, 2)),
        ("band 2", colour_counts(banded(2), &x), (5, 3)),
        ("arrowhead", colour_counts(arwhead, &x), (2, 2)),
        ("grid", colour_counts(grid(12), &x), (7, 4)),
        ("blocks of 4", colour_counts(block_diagonal(4), &x), (4, 4)),
    ];
    for (what, got, want) in cases {
        assert!(got.1 <= got.0, "{what}: acyclic {} > star {}", got.1, got.0);
        assert_eq!(got, want, "{what}: (star, acyclic) colours");
    }
}

#[test]
fn acyclic_recovery_keeps_precision_on_a_large_arrowhead() {
    // The hub's cell sums every off-diagonal entry: taking one entry as that long a
    // difference would lose digits, so each is read from its leaf's cell instead.
    let x: Vec<f64> = random_vec(90, 100_000).iter().map(|v| 1.0 + v).collect();
    let star = mixad::record(arwhead, &x).sparse_hessian(&x);
    let acyclic = mixad::record_with(arwhead, &x, ACYCLIC).sparse_hessian(&x);
    for (a, s) in acyclic.values().iter().zip(star.values()) {
        assert!((a - s).abs() <= 1e-13 * s.abs().max(1.0), "{a} vs {s}");
    }
}

#[test]
fn random_graphs_recover_every_entry() {
    // Σ sin(xᵢ·xⱼ) over random edges, some vertices of high degree: the colouring must
    // recover every entry directly whatever the structure.
    for seed in 0..12u64 {
        let mut r = rng(100 + seed);
        let n = 30 + (seed as usize) * 3;
        let hubs = (seed % 3) as usize;
        let mut edges: Vec<(usize, usize)> = (0..2 * n)
            .map(|_| {
                let i = ((r() + 1.0) * 0.5 * n as f64) as usize % n;
                let j = ((r() + 1.0) * 0.5 * n as f64) as usize % n;
                (i, j)
            })
            .collect();
        for h in 0..hubs {
            edges.extend((0..n).step_by(2).map(|j| (h * 7 % n, j)));
        }
        let f = |x: &[Var<f64>]| {
            edges
                .iter()
                .fold(Var::constant(0.0), |s, &(i, j)| s + (x[i] * x[j]).sin())
        };
        let x = random_vec(200 + seed, n);
        let dense = mixad::hessian(f, &x);
        for options in [
            Options::default(),
            Options {
                lanes: Some(1),
                parallelism: threads(2),
                ..Default::default()
            },
            ACYCLIC,
        ] {
            let h = mixad::record_with(f, &x, options).sparse_hessian(&x);
            assert_matches_dense(&h, &dense, 1e-13, &format!("random graph {seed}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Recordings: new points, changed branches
// ---------------------------------------------------------------------------------------

/// `x₀x₁ + x₂²` where `x₀ > 0`, else `x₀² + x₁x₂`: the branches have different patterns.
fn branchy<T: Float>(x: &[T]) -> T {
    if x[0] > T::zero() {
        x[0] * x[1] + x[2] * x[2]
    } else {
        x[0] * x[0] + x[1] * x[2]
    }
}

#[test]
fn a_changed_branch_redoes_detection() {
    let mut plan = mixad::record(branchy, &[1.0, 2.0, 3.0]);
    assert_eq!(plan.detection_count(), 0, "no sparse Hessian asked for yet");
    let positive = [(1, 0), (2, 2)];
    let negative = [(0, 0), (2, 1)];
    let entries = |h: &SparseHessian| -> Vec<(usize, usize)> {
        h.triplets().map(|(r, c, _)| (r, c)).collect()
    };
    for (x, want, detections) in [
        ([1.0, 2.0, 3.0], &positive, 1),
        ([2.0, -1.0, 0.5], &positive, 1),
        ([-1.0, 2.0, 3.0], &negative, 2),
        ([-3.0, 0.0, 1.0], &negative, 2),
        ([0.5, 2.0, 3.0], &positive, 3),
    ] {
        let h = plan.sparse_hessian(&x);
        assert_eq!(entries(&h), want.to_vec(), "at {x:?}");
        assert_matches_dense(&h, &mixad::hessian(branchy, &x), 1e-15, "branchy");
        assert_eq!(plan.detection_count(), detections, "at {x:?}");
        assert_eq!(plan.rerecord_count(), detections - 1);
    }
}

#[test]
fn a_data_dependent_loop_redoes_detection() {
    // s = x₀·x₁ᵏ with k from a while loop: the pattern is the same, the values change.
    fn looped<T: Float>(x: &[T]) -> T {
        let mut s = x[0];
        while s < k::<T>(100.0) {
            s = s * x[1];
        }
        s + x[0] * x[0]
    }
    let mut plan = mixad::record(looped, &[1.0, 3.0]);
    for x in [[1.0, 3.0], [1.0, 5.0], [2.0, 3.0], [1.0, 12.0]] {
        let h = plan.sparse_hessian(&x);
        assert_matches_dense(&h, &mixad::hessian(looped, &x), 1e-13, &format!("{x:?}"));
    }
    assert_eq!(plan.detection_count(), 4);
}

#[test]
fn steady_state_into_reuses_buffers() {
    let n = 200;
    let mut plan = mixad::record(rosenbrock, &vec![1.0; n]);
    let mut grad = vec![0.0; n];
    let mut h = SparseHessian::default();
    plan.value_gradient_sparse_hessian_into(&random_vec(60, n), &mut grad, &mut h);
    let ptr = h.values().as_ptr();
    for seed in 61..65 {
        let x = random_vec(seed, n);
        let value = plan.value_gradient_sparse_hessian_into(&x, &mut grad, &mut h);
        assert_eq!(h.values().as_ptr(), ptr, "values buffer reused");
        let dense = mixad::hessian(rosenbrock, &x);
        let pattern = plan.sparsity_pattern();
        assert_eq!((h.rows(), h.cols()), (pattern.rows(), pattern.cols()));
        for ((&v, &r), &c) in h.values().iter().zip(pattern.rows()).zip(pattern.cols()) {
            let d = dense[(r, c)];
            assert!(
                (v - d).abs() <= 1e-12 * (1.0 + d.abs()),
                "({r}, {c}): {v} vs {d}"
            );
        }
        assert!((value - rosenbrock(&x)).abs() < 1e-12 * value.abs().max(1.0));
    }
}

// ---------------------------------------------------------------------------------------
// Lagrangians
// ---------------------------------------------------------------------------------------

#[test]
fn lagrangian_against_hand_derived_values() {
    // f = x₀² x₁ + eˣ², g₀ = x₀ x₂ − 1, g₁ = sin(x₁) + x₃², g₂ = x₃ (linear).
    let f = |x: &[Var<f64>]| x[0] * x[0] * x[1] + x[2].exp();
    let g = |x: &[Var<f64>]| vec![x[0] * x[2] - 1.0, x[1].sin() + x[3] * x[3], x[3]];
    let x = [0.7, -1.3, 0.4, 2.0];
    let mut plan = mixad::record_lagrangian(f, g, &x, Default::default());
    // Joint pattern: (0,0) (1,0) (2,0) (1,1) (2,2) (3,3).
    let joint = plan.sparsity_pattern();
    let pattern: Vec<(usize, usize)> = joint
        .rows()
        .iter()
        .zip(joint.cols())
        .map(|(&r, &c)| (r, c))
        .collect();
    assert_eq!(
        pattern,
        vec![(0, 0), (1, 0), (2, 0), (1, 1), (2, 2), (3, 3)]
    );
    assert_eq!(plan.colour_count(), 2); // a star around x₀, and x₃ alone
    for (sigma, lambda) in [
        (1.0, [2.0, -0.5, 3.0]),
        (0.0, [1.0, 1.0, 1.0]),
        (2.5, [0.0, 4.0, -1.0]),
    ] {
        for x in [x, [-0.2, 0.9, 1.1, -0.6]] {
            let h = plan.lagrangian_hessian(&x, sigma, &lambda);
            let want = [
                (0, 0, sigma * 2.0 * x[1]),
                (1, 0, sigma * 2.0 * x[0]),
                (2, 0, lambda[0]),
                (1, 1, -lambda[1] * x[1].sin()),
                (2, 2, sigma * x[2].exp()),
                (3, 3, 2.0 * lambda[1]),
            ];
            for (r, c, w) in want {
                let got = h.get(r, c);
                assert!(
                    (got - w).abs() <= 1e-14 * (1.0 + w.abs()),
                    "σ = {sigma}, λ = {lambda:?}: ({r}, {c}) is {got}, want {w}"
                );
            }
            let one_shot = sparse::lagrangian_hessian(f, g, &x, sigma, &lambda);
            assert_eq!(one_shot.values(), h.values());
            // The `_into` form fills a caller's buffer and returns the Lagrangian's value.
            let mut into = SparseHessian::default();
            let value = plan.lagrangian_hessian_into(&x, sigma, &lambda, &mut into);
            assert_eq!(into.values(), h.values());
            let want_value = sigma * (x[0] * x[0] * x[1] + x[2].exp())
                + lambda[0] * (x[0] * x[2] - 1.0)
                + lambda[1] * (x[1].sin() + x[3] * x[3])
                + lambda[2] * x[3];
            assert!(
                (value - want_value).abs() <= 1e-14 * (1.0 + want_value.abs()),
                "Lagrangian value {value}, want {want_value}"
            );
        }
    }
}

#[test]
#[should_panic(
    expected = "lagrangian_hessian: recorded with 2 constraints, called with 1 multipliers"
)]
fn lagrangian_with_wrong_multiplier_count_panics() {
    let f = |x: &[Var<f64>]| x[0] * x[1];
    let g = |x: &[Var<f64>]| vec![x[0] * x[0], x[1] * x[1]];
    mixad::record_lagrangian(f, g, &[1.0, 1.0], Default::default()).lagrangian_hessian(
        &[1.0, 1.0],
        1.0,
        &[1.0],
    );
}

#[test]
#[should_panic(
    expected = "lagrangian_hessian: recorded with 2 constraints, called with 3 multipliers"
)]
fn lagrangian_with_wrong_constraint_count_panics() {
    let f = |x: &[Var<f64>]| x[0] * x[1];
    let g = |x: &[Var<f64>]| vec![x[0] * x[0], x[1] * x[1]];
    sparse::lagrangian_hessian(f, g, &[1.0, 1.0], 1.0, &[1.0, 2.0, 3.0]);
}

// ---------------------------------------------------------------------------------------
// faer conversions
// ---------------------------------------------------------------------------------------

#[test]
fn faer_conversions_hold_the_same_matrix() {
    let x = random_vec(70, 9);
    let h = mixad::sparse_hessian(log_norm_sin, &x);
    let dense = h.to_dense();
    let full = h.to_faer().to_dense();
    let lower = h.to_faer_lower().to_dense();
    for i in 0..9 {
        for j in 0..9 {
            assert_eq!(full[(i, j)], dense[(i, j)]);
            assert_eq!(lower[(i, j)], if i >= j { dense[(i, j)] } else { 0.0 });
        }
    }
}

// ---------------------------------------------------------------------------------------
// Misuse
// ---------------------------------------------------------------------------------------

fn product<T: Float>(x: &[T]) -> T {
    x.iter().fold(T::one(), |a, &b| a * b)
}

// An empty `x` is not misuse: see the functions of no inputs at the end of this file.

#[test]
#[should_panic(expected = "sparse_hessian: the function was recorded with 3 inputs, called with 4")]
fn recorded_with_a_longer_point_panics() {
    mixad::record(product, &[1.0; 3]).sparse_hessian(&[1.0; 4]);
}

#[test]
#[should_panic(expected = "sparse_hessian: the gradient buffer has 2 entries, expected 3")]
fn recorded_into_with_a_short_gradient_panics() {
    let mut plan = mixad::record(product, &[1.0; 3]);
    let mut h = SparseHessian::default();
    plan.value_gradient_sparse_hessian_into(&[1.0; 3], &mut [0.0; 2], &mut h);
}

#[test]
#[should_panic(expected = "mixad::record: lanes must be 1, 2, 4, 8 or 16, not 3")]
fn three_lanes_panics() {
    let options = Options {
        lanes: Some(3),
        ..Default::default()
    };
    mixad::record_with(product, &[1.0; 3], options);
}

// Zero threads can no longer be asked for: `Parallelism::Threads` holds a `NonZeroUsize`.

#[test]
#[should_panic(expected = "outside a 3 × 3 matrix")]
fn get_out_of_range_panics() {
    mixad::sparse_hessian(product, &[1.0; 3]).get(3, 0);
}

/// A sparse problem with a block operation (a quadratic form on inputs 2..5) and custom
/// rules (a two-input rule on inputs 6 and 7, a generic one-input rule on input 0) inside.
fn with_blocks_and_custom_rules<'a>(
    rule2: &'a mixad::rules::CustomRule,
    rule1: &'a mixad::rules::CustomRule,
) -> impl Fn(&[Var<f64>]) -> Var<f64> + 'a {
    move |x: &[Var<f64>]| {
        let a =
            nalgebra::DMatrix::from_fn(3, 3, |i, j| Var::constant(if i == j { 2.0 } else { 0.3 }));
        let v = nalgebra::DVector::from_iterator(3, x[2..5].iter().copied());
        let q = mixad::linalg::quad_form(&a, &v);
        let chol = mixad::linalg::cholesky(&nalgebra::DMatrix::from_fn(2, 2, |i, j| {
            if i == j {
                x[8 + i] * x[8 + i] + 1.0
            } else {
                x[8] * 0.1
            }
        }))
        .unwrap();
        q.sin() + rule2.call2(x[6], x[7]) + rule1.call1(x[0]) * x[1] + x[5] * 3.0 + chol[(1, 1)]
    }
}

#[test]
fn blocks_and_custom_rules_give_a_superset_pattern_and_the_dense_values() {
    let rule2 = mixad::rules::CustomRule::scalar("ab2", 2, 2, |x, k, out| {
        let (a, b) = (x[0], x[1]);
        match k {
            0 => out[0] = a * b * b,
            1 => out.copy_from_slice(&[b * b, 2.0 * a * b]),
            _ => out.copy_from_slice(&[0.0, 2.0 * b, 2.0 * b, 2.0 * a]),
        }
    });
    let rule1 = mixad::rules::CustomRule::unary("exp", &[f64::exp, f64::exp, f64::exp]);
    let f = with_blocks_and_custom_rules(&rule2, &rule1);
    let x = random_vec(11, 10);
    let dense = mixad::hessian(&f, &x);
    for options in all_options() {
        let h = mixad::record_with(&f, &x, options).sparse_hessian(&x);
        assert_matches_dense(&h, &dense, 1e-12, "blocks and custom rules");
    }
    // The block and the rules interact only within their own inputs.
    let h = mixad::sparse_hessian(&f, &x);
    let p = h.pattern();
    assert!(p.contains(2, 4) && p.contains(6, 7) && p.contains(0, 1) && p.contains(8, 9));
    assert!(!p.contains(1, 2) && !p.contains(4, 6) && !p.contains(5, 5) && !p.contains(0, 9));
}

// ---------------------------------------------------------------------------------------
// Functions of no inputs: the value, and empty derivatives
// ---------------------------------------------------------------------------------------

#[track_caller]
fn assert_empty_sparse(h: &SparseHessian) {
    assert_eq!((h.dim(), h.nnz()), (0, 0));
    assert!(h.rows().is_empty() && h.cols().is_empty() && h.values().is_empty());
    assert_eq!(h.triplets().count(), 0);
    let p = h.pattern();
    assert_eq!((p.dim(), p.nnz(), p.col_ptr()), (0, 0, &[0][..]));
    assert!(!p.contains(0, 0));
    assert_0x0(&h.to_dense());
    let lower = h.to_faer_lower();
    assert_eq!(
        (lower.nrows(), lower.ncols(), lower.compute_nnz()),
        (0, 0, 0)
    );
    let full = h.to_faer();
    assert_eq!((full.nrows(), full.ncols(), full.compute_nnz()), (0, 0, 0));
}

#[test]
fn sparse_hessians_are_empty() {
    assert_empty_sparse(&mixad::sparse_hessian(f, EMPTY));
}

/// A sparse Hessian buffer holding stale entries (2 of them), to be overwritten.
fn stale_sparse() -> SparseHessian {
    let h = mixad::sparse_hessian(|x| x[0] * x[1] + x[0] * x[0], &[1.0, 2.0]);
    assert_eq!(h.nnz(), 2);
    h
}

#[test]
fn a_recorded_sparse_hessian_works_at_the_empty_point_repeatedly() {
    let options = [
        Options::default(),
        Options {
            colouring: ColouringKind::Acyclic,
            ..Default::default()
        },
        Options {
            lanes: Some(16),
            parallelism: Parallelism::Threads(NonZeroUsize::new(2).unwrap()),
            ..Default::default()
        },
    ];
    for options in options {
        let mut plan = mixad::record_with(f, EMPTY, options);
        // (The sweep count is no longer observable: with no colours there are no sweeps.)
        assert_eq!(plan.colour_count(), 0);
        let pattern = plan.sparsity_pattern();
        assert_eq!((pattern.dim(), pattern.nnz()), (0, 0));
        for _ in 0..3 {
            let (v, grad, h) = plan.value_gradient_sparse_hessian(EMPTY);
            assert_eq!((v, grad), (f0(), none()));
            assert_empty_sparse(&h);
            assert_empty_sparse(&plan.sparse_hessian(EMPTY));
            let mut h = stale_sparse();
            let v = plan.value_gradient_sparse_hessian_into(EMPTY, &mut [], &mut h);
            assert_eq!(v, f0());
            assert_empty_sparse(&h);
        }
        assert_eq!((plan.detection_count(), plan.rerecord_count()), (1, 0));
    }
}

#[test]
#[should_panic(expected = "sparse_hessian: the function was recorded with 0 inputs, called with 2")]
fn a_sparse_hessian_recorded_at_the_empty_point_rejects_a_longer_point() {
    mixad::record(f, EMPTY).sparse_hessian(&[1.0, 2.0]);
}

#[test]
fn lagrangian_hessians_of_no_variables_are_empty() {
    assert_empty_sparse(&sparse::lagrangian_hessian(f, g, EMPTY, 2.0, &[1.0, -3.0]));
    assert_empty_sparse(&sparse::lagrangian_hessian(
        f,
        |_: &[Var<f64>]| Vec::new(),
        EMPTY,
        1.0,
        &[],
    ));
    let mut plan = mixad::record_lagrangian(f, g, EMPTY, Default::default());
    assert_eq!((plan.colour_count(), plan.sparsity_pattern().nnz()), (0, 0));
    for (sigma, lambda) in [(1.0, [1.0, 1.0]), (0.5, [-2.0, 3.0]), (0.0, [0.0, 0.0])] {
        assert_empty_sparse(&plan.lagrangian_hessian(EMPTY, sigma, &lambda));
        let mut h = stale_sparse();
        let value = plan.lagrangian_hessian_into(EMPTY, sigma, &lambda, &mut h);
        assert_empty_sparse(&h);
        let want = sigma * f0() + lambda[0] * (2.0 * f0()) - lambda[1];
        assert!(
            (value - want).abs() <= 1e-14 * want.abs().max(1.0),
            "{value} vs {want}"
        );
    }
}
