//! Tests `src/hessian.rs`.
//!
//! Hessians and Hessian-vector products (`mixad::hessian`), used the way a user would:
//! functions written once, generic over `num_traits::Float`, checked against hand-derived
//! Hessians and against central finite differences of the reverse-mode gradient of the
//! very same code. Also: exact symmetry, agreement between every entry point (one-shot,
//! a `mixad::Recording`, HVP, every lane count and parallelism), branches re-recorded at
//! new points, and the panics promised for misuse.
//!
//! Also: functions of no inputs, one-shot and recorded.

use crate::common::empty::{assert_0x0, f, f0, none, EMPTY};
use crate::common::{k, mlp_loss, random_vec, rng};
use faer::Mat;
use mixad::forward::Dual;
use mixad::reverse::{self, Var};
use mixad::{Options, Parallelism};
use num_traits::Float;
use std::num::NonZeroUsize;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn unit(n: usize, j: usize) -> Vec<f64> {
    (0..n).map(|i| if i == j { 1.0 } else { 0.0 }).collect()
}

fn max_abs(m: &Mat<f64>) -> f64 {
    let mut s: f64 = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            s = s.max(m[(i, j)].abs());
        }
    }
    s
}

/// Every entry within `tol · max(1, max |want|)`.
#[track_caller]
fn assert_mat_close(got: &Mat<f64>, want: &Mat<f64>, tol: f64, what: &str) {
    assert_eq!(
        (got.nrows(), got.ncols()),
        (want.nrows(), want.ncols()),
        "{what}: shape"
    );
    let bound = tol * max_abs(want).max(1.0);
    for i in 0..want.nrows() {
        for j in 0..want.ncols() {
            let (g, w) = (got[(i, j)], want[(i, j)]);
            assert!(
                (g - w).abs() <= bound,
                "{what}: entry ({i}, {j}) is {g:e}, expected {w:e} (bound {bound:e})"
            );
        }
    }
}

#[track_caller]
fn assert_vec_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}: entry {i} is {g:e}, expected {w:e} (bound {:e})",
            tol * scale
        );
    }
}

#[track_caller]
fn assert_bitwise_symmetric(h: &Mat<f64>, what: &str) {
    assert_eq!(h.nrows(), h.ncols(), "{what}: square");
    for i in 0..h.nrows() {
        for j in 0..i {
            assert_eq!(
                h[(i, j)].to_bits(),
                h[(j, i)].to_bits(),
                "{what}: h[({i}, {j})] = {:e} but h[({j}, {i})] = {:e}",
                h[(i, j)],
                h[(j, i)]
            );
        }
    }
}

#[track_caller]
fn assert_mat_identical(got: &Mat<f64>, want: &Mat<f64>, what: &str) {
    assert_eq!((got.nrows(), got.ncols()), (want.nrows(), want.ncols()));
    for i in 0..want.nrows() {
        for j in 0..want.ncols() {
            assert_eq!(
                got[(i, j)].to_bits(),
                want[(i, j)].to_bits(),
                "{what}: entry ({i}, {j}) is {:e}, expected {:e}",
                got[(i, j)],
                want[(i, j)]
            );
        }
    }
}

fn mat_vec(h: &Mat<f64>, v: &[f64]) -> Vec<f64> {
    (0..h.nrows())
        .map(|i| (0..h.ncols()).map(|j| h[(i, j)] * v[j]).sum())
        .collect()
}

/// Adds `v` to `h[(i, j)]` and, off the diagonal, to `h[(j, i)]`.
fn add_sym(h: &mut Mat<f64>, i: usize, j: usize, v: f64) {
    h[(i, j)] += v;
    if i != j {
        h[(j, i)] += v;
    }
}

// ---------------------------------------------------------------------------------------
// Test problems: user code written once, with hand-derived Hessians
// ---------------------------------------------------------------------------------------

trait Problem {
    fn f<T: Float>(&self, x: &[T]) -> T;
    /// The Hessian derived by hand.
    fn analytic(&self, x: &[f64]) -> Mat<f64>;
    fn points(&self) -> Vec<Vec<f64>>;
}

/// Central differences of the reverse-mode gradient (the same generic `f`, at `f64`).
fn fd_hessian<P: Problem>(p: &P, x: &[f64]) -> Mat<f64> {
    let n = x.len();
    let mut h = Mat::zeros(n, n);
    for j in 0..n {
        let col = fd_directional(p, x, &unit(n, j));
        for i in 0..n {
            h[(i, j)] = col[i];
        }
    }
    h
}

/// `(∇f(x + εv) − ∇f(x − εv)) / 2ε`.
fn fd_directional<P: Problem>(p: &P, x: &[f64], v: &[f64]) -> Vec<f64> {
    let scale = x.iter().fold(1.0f64, |m, a| m.max(a.abs()));
    let eps = 1e-5 * scale;
    let shifted = |s: f64| -> Vec<f64> { x.iter().zip(v).map(|(a, b)| a + s * b).collect() };
    let gp = reverse::gradient(|z| p.f(z), &shifted(eps));
    let gm = reverse::gradient(|z| p.f(z), &shifted(-eps));
    gp.iter()
        .zip(&gm)
        .map(|(a, b)| (a - b) / (2.0 * eps))
        .collect()
}

/// Extended Rosenbrock: `Σ_pairs 100 (x_{2i+1} − x_{2i}²)² + (1 − x_{2i})²`.
struct ExtendedRosenbrock {
    n: usize,
}

impl Problem for ExtendedRosenbrock {
    fn f<T: Float>(&self, x: &[T]) -> T {
        x.chunks(2).fold(T::zero(), |acc, p| {
            acc + k::<T>(100.0) * (p[1] - p[0] * p[0]).powi(2) + (T::one() - p[0]).powi(2)
        })
    }
    fn analytic(&self, x: &[f64]) -> Mat<f64> {
        let mut h = Mat::zeros(self.n, self.n);
        for i in (0..self.n).step_by(2) {
            let (a, b) = (x[i], x[i + 1]);
            add_sym(&mut h, i, i, 1200.0 * a * a - 400.0 * b + 2.0);
            add_sym(&mut h, i, i + 1, -400.0 * a);
            add_sym(&mut h, i + 1, i + 1, 200.0);
        }
        h
    }
    fn points(&self) -> Vec<Vec<f64>> {
        let classic = (0..self.n)
            .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
            .collect();
        vec![classic, vec![1.0; self.n], random_vec(1, self.n)]
    }
}

/// `ln(1 + ‖x‖²) + Σ sin(xᵢ) xᵢ₊₁`.
struct LogNormSin {
    n: usize,
}

impl Problem for LogNormSin {
    fn f<T: Float>(&self, x: &[T]) -> T {
        let sq = x.iter().fold(T::zero(), |a, &b| a + b * b);
        let chain = x.windows(2).fold(T::zero(), |a, w| a + w[0].sin() * w[1]);
        (T::one() + sq).ln() + chain
    }
    fn analytic(&self, x: &[f64]) -> Mat<f64> {
        let n = self.n;
        let s = 1.0 + x.iter().map(|a| a * a).sum::<f64>();
        let mut h = Mat::from_fn(n, n, |i, j| {
            let diag = if i == j { 2.0 / s } else { 0.0 };
            diag - 4.0 * x[i] * x[j] / (s * s)
        });
        for i in 0..n.saturating_sub(1) {
            add_sym(&mut h, i, i, -x[i].sin() * x[i + 1]);
            add_sym(&mut h, i, i + 1, x[i].cos());
        }
        h
    }
    fn points(&self) -> Vec<Vec<f64>> {
        vec![
            random_vec(2, self.n),
            random_vec(3, self.n).iter().map(|a| 3.0 * a).collect(),
        ]
    }
}

/// L2-regularised logistic-regression loss `Σₖ ln(1 + e^{zₖ}) − yₖ zₖ + λ/2 ‖w‖²`,
/// `zₖ = aₖᵀ w`.
struct Logistic {
    features: Vec<Vec<f64>>,
    labels: Vec<f64>,
    lambda: f64,
}

impl Logistic {
    fn new(samples: usize, dim: usize) -> Self {
        let mut r = rng(4);
        let features: Vec<Vec<f64>> = (0..samples)
            .map(|_| (0..dim).map(|_| 2.0 * r()).collect())
            .collect();
        let labels = (0..samples)
            .map(|_| if r() > 0.0 { 1.0 } else { 0.0 })
            .collect();
        Logistic {
            features,
            labels,
            lambda: 0.1,
        }
    }
}

impl Problem for Logistic {
    fn f<T: Float>(&self, w: &[T]) -> T {
        let data = self.features.iter().zip(&self.labels);
        let loss = data.fold(T::zero(), |acc, (a, &y)| {
            let z = a
                .iter()
                .zip(w)
                .fold(T::zero(), |s, (&ai, &wi)| s + k::<T>(ai) * wi);
            acc + (T::one() + z.exp()).ln() - k::<T>(y) * z
        });
        let ridge = w.iter().fold(T::zero(), |s, &wi| s + wi * wi);
        loss + k::<T>(0.5 * self.lambda) * ridge
    }
    fn analytic(&self, w: &[f64]) -> Mat<f64> {
        let n = w.len();
        let mut h = Mat::from_fn(n, n, |i, j| if i == j { self.lambda } else { 0.0 });
        for a in &self.features {
            let z: f64 = a.iter().zip(w).map(|(x, y)| x * y).sum();
            let s = 1.0 / (1.0 + (-z).exp());
            for i in 0..n {
                for j in 0..n {
                    h[(i, j)] += s * (1.0 - s) * a[i] * a[j];
                }
            }
        }
        h
    }
    fn points(&self) -> Vec<Vec<f64>> {
        let d = self.features[0].len();
        vec![vec![0.0; d], random_vec(5, d)]
    }
}

/// Squared-error loss of a one-hidden-layer tanh network:
/// `½ Σₖ (vᵀ tanh(W xₖ + b) + c − yₖ)²`, parameters laid out as
/// `[W₀ b₀, W₁ b₁, …, v, c]` (each hidden unit's weights followed by its bias).
struct Mlp {
    inputs: usize,
    hidden: usize,
    data: Vec<(Vec<f64>, f64)>,
}

impl Mlp {
    fn new(inputs: usize, hidden: usize, samples: usize) -> Self {
        let mut r = rng(6);
        let data = (0..samples)
            .map(|_| ((0..inputs).map(|_| r()).collect(), r()))
            .collect();
        Mlp {
            inputs,
            hidden,
            data,
        }
    }
    fn n(&self) -> usize {
        self.hidden * (self.inputs + 1) + self.hidden + 1
    }
}

impl Problem for Mlp {
    fn f<T: Float>(&self, p: &[T]) -> T {
        mlp_loss(p, &self.data, self.inputs, self.hidden)
    }
    fn analytic(&self, p: &[f64]) -> Mat<f64> {
        let (d, h, n) = (self.inputs, self.hidden, self.n());
        let v_at = h * (d + 1);
        let c_at = v_at + h;
        let mut hess = Mat::zeros(n, n);
        for (x, y) in &self.data {
            // Augmented input (x, 1): the bias is the weight of a constant input.
            let xa: Vec<f64> = x.iter().copied().chain([1.0]).collect();
            let t: Vec<f64> = (0..h)
                .map(|j| {
                    let w = &p[j * (d + 1)..(j + 1) * (d + 1)];
                    w.iter().zip(&xa).map(|(a, b)| a * b).sum::<f64>().tanh()
                })
                .collect();
            let out: f64 = (0..h).map(|j| p[v_at + j] * t[j]).sum::<f64>() + p[c_at];
            let r = out - y;
            // ∇out and ∇²out.
            let mut grad = vec![0.0; n];
            let mut second = Mat::zeros(n, n);
            for j in 0..h {
                let (vj, s) = (p[v_at + j], 1.0 - t[j] * t[j]);
                for i in 0..=d {
                    grad[j * (d + 1) + i] = vj * s * xa[i];
                    add_sym(&mut second, j * (d + 1) + i, v_at + j, s * xa[i]);
                    for l in 0..=d {
                        second[(j * (d + 1) + i, j * (d + 1) + l)] +=
                            vj * (-2.0 * t[j] * s) * xa[i] * xa[l];
                    }
                }
                grad[v_at + j] = t[j];
            }
            grad[c_at] = 1.0;
            // Hessian of ½r²: ∇out ∇outᵀ + r ∇²out.
            for i in 0..n {
                for l in 0..n {
                    hess[(i, l)] += grad[i] * grad[l] + r * second[(i, l)];
                }
            }
        }
        hess
    }
    fn points(&self) -> Vec<Vec<f64>> {
        vec![random_vec(7, self.n()), random_vec(8, self.n())]
    }
}

/// `exp(x₀x₁) + ln x₂ + x₀^x₂ + atan2(x₁, x₃) + hypot(x₂, x₃) + √(x₀x₄)`.
struct Elementary;

impl Problem for Elementary {
    fn f<T: Float>(&self, x: &[T]) -> T {
        (x[0] * x[1]).exp()
            + x[2].ln()
            + x[0].powf(x[2])
            + x[1].atan2(x[3])
            + x[2].hypot(x[3])
            + (x[0] * x[4]).sqrt()
    }
    fn analytic(&self, x: &[f64]) -> Mat<f64> {
        let mut h = Mat::zeros(5, 5);
        // exp(x₀x₁)
        let e = (x[0] * x[1]).exp();
        add_sym(&mut h, 0, 0, x[1] * x[1] * e);
        add_sym(&mut h, 0, 1, (1.0 + x[0] * x[1]) * e);
        add_sym(&mut h, 1, 1, x[0] * x[0] * e);
        // ln x₂
        add_sym(&mut h, 2, 2, -1.0 / (x[2] * x[2]));
        // a^b, a = x₀, b = x₂
        let (a, b) = (x[0], x[2]);
        add_sym(&mut h, 0, 0, b * (b - 1.0) * a.powf(b - 2.0));
        add_sym(&mut h, 0, 2, a.powf(b - 1.0) * (1.0 + b * a.ln()));
        add_sym(&mut h, 2, 2, a.powf(b) * a.ln() * a.ln());
        // atan2(y, x), y = x₁, x = x₃
        let (yy, xx) = (x[1], x[3]);
        let r4 = (yy * yy + xx * xx).powi(2);
        add_sym(&mut h, 1, 1, -2.0 * xx * yy / r4);
        add_sym(&mut h, 3, 3, 2.0 * xx * yy / r4);
        add_sym(&mut h, 1, 3, (yy * yy - xx * xx) / r4);
        // hypot(a, b), a = x₂, b = x₃
        let (a, b) = (x[2], x[3]);
        let r3 = a.hypot(b).powi(3);
        add_sym(&mut h, 2, 2, b * b / r3);
        add_sym(&mut h, 3, 3, a * a / r3);
        add_sym(&mut h, 2, 3, -a * b / r3);
        // √(ab), a = x₀, b = x₄
        let (a, b) = (x[0], x[4]);
        let s = (a * b).sqrt();
        add_sym(&mut h, 0, 0, -0.25 * b * b / s.powi(3));
        add_sym(&mut h, 4, 4, -0.25 * a * a / s.powi(3));
        add_sym(&mut h, 0, 4, 0.25 / s);
        h
    }
    fn points(&self) -> Vec<Vec<f64>> {
        vec![
            vec![0.7, -0.4, 1.3, 0.9, 2.1],
            vec![1.5, 0.3, 0.6, -1.2, 0.8],
        ]
    }
}

// ---------------------------------------------------------------------------------------
// Hessians and HVPs against analytic values and finite differences
// ---------------------------------------------------------------------------------------

/// Everything the one-shot APIs promise, at every point of `p`.
fn check_problem<P: Problem>(p: &P) {
    for x in p.points() {
        let n = x.len();
        let exact = p.analytic(&x);
        let fd = fd_hessian(p, &x);
        // The hand-derived Hessian itself is right (guards the test, not the crate).
        assert_mat_close(&fd, &exact, 1e-6, "finite differences vs analytic");

        let (value, grad, h) = mixad::value_gradient_hessian(|z| p.f(z), &x);
        assert_mat_close(&h, &exact, 1e-12, "value_gradient_hessian vs analytic");
        assert_mat_close(
            &h,
            &fd,
            1e-6,
            "value_gradient_hessian vs finite differences",
        );
        assert_bitwise_symmetric(&h, "value_gradient_hessian");
        assert_mat_identical(&mixad::hessian(|z| p.f(z), &x), &h, "hessian vs vgh");

        // Value and gradient: exactly reverse mode's.
        let (rv, rg) = reverse::value_and_gradient(|z| p.f(z), &x);
        assert_eq!(value.to_bits(), rv.to_bits(), "value vs reverse mode");
        assert_eq!(grad, rg, "gradient vs reverse mode");
        assert_eq!(value, p.f(&x), "value vs plain f64 evaluation");

        // Column j is the HVP with the j-th unit vector.
        for j in 0..n {
            let hv = mixad::hvp(|z| p.f(z), &x, &unit(n, j));
            let col: Vec<f64> = (0..n).map(|i| h[(i, j)]).collect();
            assert_vec_close(&hv, &col, 1e-13, "hvp(e_j) vs Hessian column");
        }

        // An arbitrary direction.
        let v = random_vec(n as u64 + 11, n);
        let (hv_value, hv_grad, hv) = mixad::value_gradient_hvp(|z| p.f(z), &x, &v);
        assert_eq!(
            hv_value.to_bits(),
            rv.to_bits(),
            "hvp value vs reverse mode"
        );
        assert_eq!(hv_grad, rg, "hvp gradient vs reverse mode");
        assert_vec_close(&hv, &mat_vec(&exact, &v), 1e-12, "hvp vs analytic H·v");
        assert_vec_close(
            &hv,
            &fd_directional(p, &x, &v),
            1e-6,
            "hvp vs finite differences",
        );
    }
}

#[test]
fn extended_rosenbrock() {
    check_problem(&ExtendedRosenbrock { n: 6 });
}

#[test]
fn log_norm_plus_sine_chain() {
    check_problem(&LogNormSin { n: 7 });
}

#[test]
fn logistic_regression_loss() {
    check_problem(&Logistic::new(12, 4));
}

#[test]
fn tanh_mlp_loss() {
    check_problem(&Mlp::new(2, 3, 5));
}

#[test]
fn exp_ln_powf_atan2_hypot_sqrt() {
    check_problem(&Elementary);
}

/// A function whose body takes a reverse-mode gradient (on the `Var<f64>` tape):
/// `½ ‖∇g(x)‖²` with `g = x₀³/3 + x₁³/3 + x₀x₁`, so `∇g = (x₀² + x₁, x₁² + x₀)`.
struct GradientNorm;

impl Problem for GradientNorm {
    /// The closed form `½ ((x₀² + x₁)² + (x₁² + x₀)²)`, for finite differences.
    fn f<T: Float>(&self, x: &[T]) -> T {
        let ga = x[0] * x[0] + x[1];
        let gb = x[1] * x[1] + x[0];
        k::<T>(0.5) * (ga * ga + gb * gb)
    }
    fn analytic(&self, x: &[f64]) -> Mat<f64> {
        let (a, b) = (x[0] * x[0] + x[1], x[1] * x[1] + x[0]);
        let mut h = Mat::zeros(2, 2);
        add_sym(&mut h, 0, 0, 4.0 * x[0] * x[0] + 2.0 * a + 1.0);
        add_sym(&mut h, 0, 1, 2.0 * x[0] + 2.0 * x[1]);
        add_sym(&mut h, 1, 1, 4.0 * x[1] * x[1] + 2.0 * b + 1.0);
        h
    }
    fn points(&self) -> Vec<Vec<f64>> {
        vec![vec![0.3, -0.8], vec![1.1, 0.4]]
    }
}

#[test]
fn hessian_of_a_function_that_takes_a_gradient_inside() {
    // The closure differentiates g by reverse mode *inside* the recorded function (at
    // Var<f64>, on the Var<f64> tape), then the Hessian replays that recording.
    let g = |z: &[Var<Var<f64>>]| {
        let third = 1.0 / 3.0;
        z[0] * z[0] * z[0] * third + z[1] * z[1] * z[1] * third + z[0] * z[1]
    };
    let f = |x: &[Var<f64>]| {
        let grad = reverse::gradient(g, x);
        (grad[0] * grad[0] + grad[1] * grad[1]) * 0.5
    };
    let p = GradientNorm;
    let mut prepared = mixad::record(f, &p.points()[0]);
    for x in p.points() {
        let exact = p.analytic(&x);
        assert_mat_close(&mixad::hessian(f, &x), &exact, 1e-13, "one-shot");
        assert_mat_close(&prepared.hessian(&x), &exact, 1e-13, "prepared");
        assert_mat_close(&fd_hessian(&p, &x), &exact, 1e-6, "finite differences");
        let g_one = reverse::gradient(|z| p.f(z), &x);
        let (_, g_prep, _) = prepared.value_gradient_hessian(&x);
        assert_vec_close(&g_prep, &g_one, 1e-14, "gradient");
    }
    assert_eq!(prepared.rerecord_count(), 0);
}

#[test]
fn linear_and_constant_functions_have_zero_hessians() {
    let x = [0.5, -2.0, 3.0];
    let h = mixad::hessian(|z| z[0] * 2.0 - z[1] + z[2] * 7.0, &x);
    assert_mat_identical(&h, &Mat::zeros(3, 3), "linear");
    let (v, g, h) = mixad::value_gradient_hessian(|_| Var::constant(4.0), &x);
    assert_eq!((v, g), (4.0, vec![0.0; 3]));
    assert_mat_identical(&h, &Mat::zeros(3, 3), "constant");
    // An input that is never used: its row and column are zero.
    let h = mixad::hessian(|z| z[0] * z[0] * z[2], &x);
    let want = Mat::from_fn(3, 3, |i, j| match (i, j) {
        (0, 0) => 2.0 * x[2],
        (0, 2) | (2, 0) => 2.0 * x[0],
        _ => 0.0,
    });
    assert_mat_identical(&h, &want, "unused input");
}

// ---------------------------------------------------------------------------------------
// Lane counts and parallelism
// ---------------------------------------------------------------------------------------

#[test]
fn every_lane_count_and_parallelism_gives_the_same_hessian() {
    for n in [1usize, 5, 17, 40] {
        let p = LogNormSin { n };
        let x = random_vec(20 + n as u64, n);
        let exact = p.analytic(&x);
        let reference = mixad::record_with(
            |z| p.f(z),
            &x,
            Options {
                lanes: Some(1),
                parallelism: Parallelism::Serial,
                ..Options::default()
            },
        )
        .hessian(&x);
        assert_mat_close(&reference, &exact, 1e-12, "1 lane, serial vs analytic");
        let lane_counts = [1, 2, 4, 8, 16].map(Some).into_iter().chain([None]);
        for lanes in lane_counts {
            for parallelism in [
                Parallelism::Serial,
                threads(1),
                threads(2),
                Parallelism::Auto,
            ] {
                let options = Options {
                    lanes,
                    parallelism,
                    ..Options::default()
                };
                let mut prepared = mixad::record_with(|z| p.f(z), &x, options);
                if let Some(l) = lanes {
                    assert_eq!(prepared.hessian_lanes(), l);
                }
                let what = format!("n = {n}, {options:?}");
                let h = prepared.hessian(&x);
                assert_mat_close(&h, &reference, 1e-13, &what);
                assert_bitwise_symmetric(&h, &what);
                // Again (warm buffers), and at a second point.
                assert_mat_identical(&prepared.hessian(&x), &h, &what);
                let y: Vec<f64> = x.iter().map(|a| 0.5 - a).collect();
                assert_mat_close(&prepared.hessian(&y), &p.analytic(&y), 1e-12, &what);
            }
        }
    }
}

#[test]
fn recording_with_global_pool_used_inside_a_larger_pool() {
    // Per-thread buffers are sized for the pool seen when the Hessian is first asked for;
    // the sweeps may later run on a pool with more threads.
    let p = LogNormSin { n: 40 };
    let x = random_vec(30, 40);
    let mut prepared = mixad::record(|z| p.f(z), &x);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(5)
        .build()
        .unwrap();
    let h = pool.install(|| prepared.hessian(&x));
    assert_mat_close(&h, &p.analytic(&x), 1e-12, "inside a 5-thread pool");
}

// ---------------------------------------------------------------------------------------
// A recording: new points, branches
// ---------------------------------------------------------------------------------------

/// `Parallelism::Threads(t)`.
fn threads(t: usize) -> Parallelism {
    Parallelism::Threads(NonZeroUsize::new(t).unwrap())
}

/// A recording at new points equals the one-shot APIs there.
fn check_prepared<P: Problem>(p: &P, options: Options) {
    let points = p.points();
    let mut prepared = mixad::record_with(|z| p.f(z), &points[0], options);
    let n = points[0].len();
    for (s, x) in points.iter().enumerate() {
        let x: Vec<f64> = x.iter().map(|a| a * (1.0 + 0.1 * s as f64)).collect();
        let one_shot = mixad::value_gradient_hessian(|z| p.f(z), &x);
        let prepared_out = prepared.value_gradient_hessian(&x);
        assert_eq!(prepared_out.0.to_bits(), one_shot.0.to_bits(), "value");
        assert_eq!(prepared_out.1, one_shot.1, "gradient");
        assert_mat_close(&prepared_out.2, &one_shot.2, 1e-14, "Hessian vs one-shot");
        assert_mat_close(&prepared.hessian(&x), &p.analytic(&x), 1e-12, "vs analytic");

        // The `_into` form writes the same numbers into a caller's matrix.
        let mut grad = vec![f64::NAN; n];
        let mut hess = Mat::from_fn(n, n, |_, _| f64::NAN);
        let value = prepared.value_gradient_hessian_into(&x, &mut grad, hess.as_mut());
        assert_eq!(value.to_bits(), one_shot.0.to_bits());
        assert_eq!(grad, one_shot.1);
        assert_mat_identical(&hess, &prepared_out.2, "value_gradient_hessian_into");
        // So does the gradient alone.
        let mut grad = vec![f64::NAN; n];
        let value = prepared.value_and_gradient_into(&x, &mut grad);
        assert_eq!(
            value.to_bits(),
            one_shot.0.to_bits(),
            "value_and_gradient_into"
        );
        assert_eq!(grad, one_shot.1, "value_and_gradient_into");

        // HVPs.
        let v = random_vec(40 + s as u64, n);
        let (hv_value, hv_grad, hv) = prepared.value_gradient_hvp(&x, &v);
        let (ov, og, ohv) = mixad::value_gradient_hvp(|z| p.f(z), &x, &v);
        assert_eq!(hv_value.to_bits(), ov.to_bits(), "hvp value");
        assert_eq!(hv_grad, og, "hvp gradient");
        assert_vec_close(&hv, &ohv, 1e-13, "prepared hvp vs one-shot");
        assert_vec_close(&prepared.hvp(&x, &v), &ohv, 1e-13, "prepared hvp");
    }
    assert_eq!(
        prepared.rerecord_count(),
        0,
        "no branches: never re-recorded"
    );
}

#[test]
fn recording_equals_one_shot_at_new_points() {
    let serial = Options {
        parallelism: Parallelism::Serial,
        ..Options::default()
    };
    // Fewer lanes than columns, on two threads (was an odd chunk of 3).
    let four_lanes = Options {
        lanes: Some(4),
        parallelism: threads(2),
        ..Options::default()
    };
    for options in [Options::default(), serial, four_lanes] {
        check_prepared(&ExtendedRosenbrock { n: 6 }, options);
        check_prepared(&Logistic::new(12, 4), options);
        check_prepared(&Mlp::new(2, 3, 5), options);
        check_prepared(&Elementary, options);
    }
}

/// `x₀³x₁ + x₁²` where `x₀ > 0`, else `x₀²x₁² + 3x₀`.
fn branchy<T: Float>(x: &[T]) -> T {
    if x[0] > T::zero() {
        x[0].powi(3) * x[1] + x[1] * x[1]
    } else {
        x[0] * x[0] * x[1] * x[1] + k::<T>(3.0) * x[0]
    }
}

fn branchy_hessian(x: &[f64], positive: bool) -> Mat<f64> {
    let (a, b) = (x[0], x[1]);
    let entries = if positive {
        [6.0 * a * b, 3.0 * a * a, 2.0]
    } else {
        [2.0 * b * b, 4.0 * a * b, 2.0 * a * a]
    };
    Mat::from_fn(2, 2, |i, j| entries[i + j])
}

/// Distinguishes two Hessians clearly: a stale one must not pass for the fresh one.
fn assert_differs(a: &Mat<f64>, b: &Mat<f64>) {
    let mut diff = a.clone();
    diff -= b;
    assert!(
        max_abs(&diff) > 1e-3,
        "test points do not separate the branches"
    );
}

#[test]
fn recording_follows_an_if_branch_at_new_points() {
    let points: [([f64; 2], bool, usize); 6] = [
        // (point, branch taken, rerecord count after evaluating there)
        ([1.5, -0.5], true, 0),
        ([0.7, 2.0], true, 0),
        ([-0.8, 1.3], false, 1),
        ([-2.0, 0.4], false, 1),
        ([0.9, 1.1], true, 2),
        ([-0.3, -1.7], false, 3),
    ];
    for options in [
        Options::default(),
        Options {
            lanes: Some(1),
            parallelism: threads(2),
            ..Options::default()
        },
    ] {
        let mut prepared = mixad::record_with(branchy, &[1.0, 1.0], options);
        for (x, positive, rerecords) in points {
            let want = branchy_hessian(&x, positive);
            assert_differs(&want, &branchy_hessian(&x, !positive));
            let (value, grad, h) = prepared.value_gradient_hessian(&x);
            assert_mat_close(&h, &want, 1e-14, &format!("Hessian at {x:?}"));
            assert_eq!(value, branchy(&x));
            assert_eq!(grad, reverse::gradient(branchy, &x));
            assert_eq!(prepared.rerecord_count(), rerecords, "at {x:?}");
        }
        // The HVP path checks the guards too.
        let x = [2.0, 0.5];
        let hv = prepared.hvp(&x, &[1.0, -1.0]);
        assert_vec_close(
            &hv,
            &mat_vec(&branchy_hessian(&x, true), &[1.0, -1.0]),
            1e-14,
            "hvp after the branch flipped",
        );
        assert_eq!(prepared.rerecord_count(), 4);
    }
}

/// `s + x₀²` where `s = x₀·x₁ᵏ` after a `while s < 100 { s *= x₁ }` loop.
fn looped<T: Float>(x: &[T]) -> T {
    let mut s = x[0];
    while s < k::<T>(100.0) {
        s = s * x[1];
    }
    s + x[0] * x[0]
}

fn trip_count(x: &[f64]) -> i32 {
    let (mut s, mut trips) = (x[0], 0);
    while s < 100.0 {
        s *= x[1];
        trips += 1;
    }
    trips
}

fn looped_hessian(x: &[f64], trips: i32) -> Mat<f64> {
    let (a, b, m) = (x[0], x[1], trips as f64);
    let entries = [
        2.0,
        m * b.powi(trips - 1),
        m * (m - 1.0) * a * b.powi(trips - 2),
    ];
    Mat::from_fn(2, 2, |i, j| entries[i + j])
}

#[test]
fn recording_follows_a_data_dependent_while_loop() {
    // (point, trip count, rerecord count after evaluating there)
    let points: [([f64; 2], i32, usize); 6] = [
        ([1.0, 3.0], 5, 0),
        ([1.1, 3.0], 5, 0),
        ([1.0, 5.0], 3, 1),
        ([2.0, 3.0], 4, 2),
        ([1.0, 3.2], 4, 2),
        ([1.0, 12.0], 2, 3),
    ];
    let mut prepared = mixad::record(looped, &[1.0, 3.0]);
    for (x, trips, rerecords) in points {
        assert_eq!(trip_count(&x), trips, "test data");
        let want = looped_hessian(&x, trips);
        let stale = looped_hessian(&x, trip_count(&[1.0, 3.0]));
        if trips != 5 {
            assert_differs(&want, &stale);
        }
        assert_mat_close(&prepared.hessian(&x), &want, 1e-14, &format!("at {x:?}"));
        assert_mat_close(&mixad::hessian(looped, &x), &want, 1e-14, "one-shot");
        assert_eq!(prepared.rerecord_count(), rerecords, "at {x:?}");
    }
}

#[test]
fn recording_rerecords_when_a_value_read_as_a_plain_number_changes() {
    // `to_f64` turns x₀ into a constant of the recording: a replay at another x₀ would
    // use the stale constant, so the conversion must act as a guard.
    fn f<T: Float>(x: &[T]) -> T {
        let c = x[0].to_f64().unwrap();
        x[1] * x[1] * k::<T>(c) + x[0] * x[0]
    }
    let mut prepared = mixad::record(f, &[1.0, 1.0]);
    for (i, c) in [2.0, -3.0, 0.5].into_iter().enumerate() {
        let h = prepared.hessian(&[c, 0.7]);
        let want = Mat::from_fn(2, 2, |i, j| match (i, j) {
            (0, 0) => 2.0,
            (1, 1) => 2.0 * c,
            _ => 0.0,
        });
        assert_mat_close(&h, &want, 1e-15, &format!("x0 = {c}"));
        assert_eq!(prepared.rerecord_count(), i + 1);
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
#[should_panic(expected = "hvp: x has 2 entries but the direction v has 3")]
fn hvp_with_a_longer_direction_panics() {
    let _ = mixad::hvp(product, &[1.0, 2.0], &[1.0, 0.0, 0.0]);
}

#[test]
#[should_panic(expected = "hvp: x has 2 entries but the direction v has 1")]
fn value_gradient_hvp_with_a_shorter_direction_panics() {
    let _ = mixad::value_gradient_hvp(product, &[1.0, 2.0], &[1.0]);
}

fn record_with_lanes(lanes: Option<usize>, parallelism: Parallelism) {
    let options = Options {
        lanes,
        parallelism,
        ..Options::default()
    };
    let _ = mixad::record_with(product, &[1.0, 2.0], options);
}

#[test]
#[should_panic(expected = "mixad::record: lanes must be 1, 2, 4, 8 or 16, not 0")]
fn zero_lanes_panics() {
    record_with_lanes(Some(0), Parallelism::Auto);
}

#[test]
#[should_panic(expected = "mixad::record: lanes must be 1, 2, 4, 8 or 16, not 17")]
fn seventeen_lanes_panics() {
    record_with_lanes(Some(17), Parallelism::Serial);
}

#[test]
#[should_panic(expected = "mixad::record: lanes must be 1, 2, 4, 8 or 16, not 3")]
fn three_lanes_panics() {
    // A chunk of 3 columns was allowed before lanes became 1, 2, 4, 8 or 16.
    record_with_lanes(Some(3), Parallelism::Auto);
}

// Zero threads can no longer be asked for: `Parallelism::Threads` holds a `NonZeroUsize`.

fn prepared_product() -> mixad::Recording<impl FnMut(&[Var<f64>]) -> Var<f64>> {
    mixad::record(product, &[1.0, 2.0])
}

#[test]
#[should_panic(expected = "hessian: the function was recorded with 2 inputs, called with 3")]
fn recorded_hessian_with_a_longer_point_panics() {
    let _ = prepared_product().hessian(&[1.0, 2.0, 3.0]);
}

#[test]
#[should_panic(expected = "hessian: the function was recorded with 2 inputs, called with 1")]
fn recorded_value_gradient_hessian_with_a_shorter_point_panics() {
    let _ = prepared_product().value_gradient_hessian(&[1.0]);
}

#[test]
#[should_panic(expected = "hvp: the function was recorded with 2 inputs, called with 3")]
fn recorded_hvp_with_a_longer_point_panics() {
    let _ = prepared_product().hvp(&[1.0, 2.0, 3.0], &[1.0, 0.0, 0.0]);
}

#[test]
#[should_panic(expected = "hvp: x has 2 entries but the direction v has 3")]
fn recorded_hvp_with_a_longer_direction_panics() {
    let _ = prepared_product().value_gradient_hvp(&[1.0, 2.0], &[1.0, 0.0, 0.0]);
}

#[test]
#[should_panic(expected = "hessian: the Hessian buffer is 2 × 1, expected 2 × 2")]
fn recorded_into_with_a_narrow_hessian_buffer_panics() {
    let mut grad = [0.0; 2];
    let mut hess = Mat::zeros(2, 1);
    prepared_product().value_gradient_hessian_into(&[1.0, 2.0], &mut grad, hess.as_mut());
}

#[test]
#[should_panic(expected = "hessian: the gradient buffer has 1 entries, expected 2")]
fn recorded_into_with_a_short_gradient_buffer_panics() {
    let mut grad = [0.0; 1];
    let mut hess = Mat::zeros(2, 2);
    prepared_product().value_gradient_hessian_into(&[1.0, 2.0], &mut grad, hess.as_mut());
}

#[test]
#[should_panic(expected = "gradient: the gradient buffer has 3 entries, expected 2")]
fn recorded_gradient_into_with_a_long_buffer_panics() {
    let mut grad = [0.0; 3];
    prepared_product().value_and_gradient_into(&[1.0, 2.0], &mut grad);
}

#[test]
fn a_panic_inside_f_leaves_the_tapes_usable() {
    let boom = std::panic::catch_unwind(|| {
        mixad::hessian(
            |z: &[Var<f64>]| {
                let y = z[0] * z[1];
                if y.value() > 0.0 {
                    panic!("user panic");
                }
                y
            },
            &[1.0, 1.0],
        )
    });
    assert!(boom.is_err());
    let boom = std::panic::catch_unwind(|| {
        mixad::hvp(
            |z: &[Var<Dual<f64>>]| -> Var<Dual<f64>> { panic!("user panic {:?}", z[0]) },
            &[1.0],
            &[1.0],
        )
    });
    assert!(boom.is_err());
    let x = [0.3, -0.2, 0.9];
    let p = LogNormSin { n: 3 };
    assert_mat_close(
        &mixad::hessian(|z| p.f(z), &x),
        &p.analytic(&x),
        1e-12,
        "after",
    );
    assert_vec_close(
        &mixad::hvp(|z| p.f(z), &x, &[0.0, 1.0, 0.0]),
        &mat_vec(&p.analytic(&x), &[0.0, 1.0, 0.0]),
        1e-12,
        "after",
    );
}

// ---------------------------------------------------------------------------------------
// Functions of no inputs: the value, and empty derivatives
// ---------------------------------------------------------------------------------------

#[test]
fn hessian_vector_products_are_empty() {
    assert_eq!(mixad::hvp(f, EMPTY, EMPTY), none());
    assert_eq!(
        mixad::value_gradient_hvp(f, EMPTY, EMPTY),
        (f0(), none(), none())
    );
}

#[test]
fn dense_hessians_are_0x0() {
    assert_0x0(&mixad::hessian(f, EMPTY));
    let (v, grad, h) = mixad::value_gradient_hessian(f, EMPTY);
    assert_eq!((v, grad), (f0(), none()));
    assert_0x0(&h);
}

#[test]
fn a_recorded_hessian_works_at_the_empty_point_repeatedly() {
    let options = [
        Options::default(),
        Options {
            lanes: Some(1),
            parallelism: Parallelism::Serial,
            ..Options::default()
        },
        Options {
            lanes: Some(16),
            parallelism: Parallelism::Threads(NonZeroUsize::new(2).unwrap()),
            ..Options::default()
        },
    ];
    for options in options {
        let mut p = mixad::record_with(f, EMPTY, options);
        for _ in 0..3 {
            let (v, grad, h) = p.value_gradient_hessian(EMPTY);
            assert_eq!((v, grad), (f0(), none()));
            assert_0x0(&h);
            assert_0x0(&p.hessian(EMPTY));
            assert_eq!(p.hvp(EMPTY, EMPTY), none());
            assert_eq!(p.value_gradient_hvp(EMPTY, EMPTY), (f0(), none(), none()));
            let mut h = Mat::zeros(0, 0);
            assert_eq!(
                p.value_gradient_hessian_into(EMPTY, &mut [], h.as_mut()),
                f0()
            );
            assert_eq!(
                p.value_gradient_hvp_into(EMPTY, EMPTY, &mut [], &mut []),
                f0()
            );
            assert_eq!(p.value_and_gradient_into(EMPTY, &mut []), f0());
        }
        assert_eq!(p.rerecord_count(), 0);
    }
}

#[test]
#[should_panic(expected = "hessian: the function was recorded with 0 inputs, called with 1")]
fn a_hessian_recorded_at_the_empty_point_rejects_a_longer_point() {
    mixad::record(f, EMPTY).hessian(&[1.0]);
}
