//! Tests `src/nested/`. The translation of reverse over forward: `translate.rs`.
//!
//! Modes inside modes, through the public generic APIs only: `forward::{derivative, jvp}`
//! and `reverse::gradient` called at the scalar type of an enclosing differentiation.
//!
//! Naming: `fr` is forward over reverse (the outer differentiation is forward mode, the
//! inner one, run at `S = Dual<f64>`, is reverse mode), and so on. Every test is written
//! once against the small [`Mode`] abstraction below and instantiated for every
//! combination that mixad's tapes support.
//!
//! Lifting: a value of the outer type `S` that an inner closure captures must be turned
//! into the inner type; that is `Dual::new(s, S::zero())` for forward mode and
//! `Var::constant(s)` for reverse mode ([`Mode::lift`]).

mod translate;

use std::cell::Cell;
use std::marker::PhantomData;

use mixad::forward::{self, Dual};
use mixad::reverse::{self, TapeScalar, Var};
use mixad::Scalar;
use num_traits::{Float, One, Zero};

fn k<T: Float>(v: f64) -> T {
    T::from(v).expect("every Float converts from f64")
}

// ---------------------------------------------------------------------------------------
// One interface over both modes, at any scalar S
// ---------------------------------------------------------------------------------------

/// A differentiation mode at scalar `S`: what its closures see (`In`), how a captured `S`
/// is lifted into that type, and gradient / derivative.
trait Mode<S: Scalar> {
    type In: Scalar;
    fn lift(s: S) -> Self::In;
    fn grad(f: impl FnMut(&[Self::In]) -> Self::In, x: &[S]) -> Vec<S>;
    fn deriv(f: impl FnMut(Self::In) -> Self::In, x: S) -> S;
}

/// Forward mode: one `forward::jvp` per input for gradients, `forward::derivative`.
struct Fwd;
/// Reverse mode: `reverse::gradient`.
struct Rev;

impl<S: Scalar> Mode<S> for Fwd {
    type In = Dual<S>;
    fn lift(s: S) -> Dual<S> {
        Dual::new(s, S::zero())
    }
    fn grad(mut f: impl FnMut(&[Dual<S>]) -> Dual<S>, x: &[S]) -> Vec<S> {
        (0..x.len())
            .map(|i| {
                let e: Vec<S> = (0..x.len())
                    .map(|j| if i == j { S::one() } else { S::zero() })
                    .collect();
                forward::jvp(|d| [f(d)], x, &e).1[0]
            })
            .collect()
    }
    fn deriv(f: impl FnMut(Dual<S>) -> Dual<S>, x: S) -> S {
        forward::derivative(f, x)
    }
}

impl<S: TapeScalar> Mode<S> for Rev {
    type In = Var<S>;
    fn lift(s: S) -> Var<S> {
        Var::constant(s)
    }
    fn grad(f: impl FnMut(&[Var<S>]) -> Var<S>, x: &[S]) -> Vec<S> {
        reverse::gradient(f, x)
    }
    fn deriv(mut f: impl FnMut(Var<S>) -> Var<S>, x: S) -> S {
        reverse::gradient(|v| f(v[0]), &[x])[0]
    }
}

/// The scalar an outer mode `O` (at `f64`) hands to the function it differentiates.
type Outer<O> = <O as Mode<f64>>::In;

#[track_caller]
fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: got {got:e}, expected {want:e}"
    );
}

/// Instantiates the generic check `$check` (its type parameters are modes) once per listed
/// combination, as one `#[test]` each.
macro_rules! combos {
    ($check:ident: $($name:ident => [$($mode:ty),+];)+) => {
        mod $check {
            use super::*;
            $(
                #[test]
                fn $name() {
                    super::$check::<$($mode),+>();
                }
            )+
        }
    };
}

// ---------------------------------------------------------------------------------------
// Second order: the Hessian in every nesting
// ---------------------------------------------------------------------------------------

/// `f(x, y) = x²y + sin(x)y³`.
fn small<T: Float>(v: &[T]) -> T {
    let (x, y) = (v[0], v[1]);
    x * x * y + x.sin() * y * y * y
}

fn small_hessian(v: [f64; 2]) -> [[f64; 2]; 2] {
    let (x, y) = (v[0], v[1]);
    let xy = 2.0 * x + 3.0 * x.cos() * y * y;
    [[2.0 * y - x.sin() * y.powi(3), xy], [xy, 6.0 * x.sin() * y]]
}

/// The Hessian as the outer mode's gradient of each entry of the inner mode's gradient.
fn nested_hessian<O: Mode<f64>, I: Mode<Outer<O>>>(x: [f64; 2]) -> [[f64; 2]; 2] {
    let row = |i: usize| O::grad(|xo| I::grad(small, xo)[i], &x);
    let (r0, r1) = (row(0), row(1));
    [[r0[0], r0[1]], [r1[0], r1[1]]]
}

fn hessian_in_every_nesting<O: Mode<f64>, I: Mode<Outer<O>>>() {
    for x in [[0.7, -1.3], [2.0, 0.5], [-1.1, 2.2]] {
        let got = nested_hessian::<O, I>(x);
        let want = small_hessian(x);
        let crate_h = mixad::hessian(small, &x);
        for i in 0..2 {
            for j in 0..2 {
                let what = format!("H[{i}][{j}] at {x:?}");
                assert_close(got[i][j], want[i][j], 1e-15, &what);
                assert_close(got[i][j], crate_h[(i, j)], 1e-15, &what);
            }
        }
    }
}

combos!(hessian_in_every_nesting:
    ff => [Fwd, Fwd];
    fr => [Fwd, Rev];
    rf => [Rev, Fwd];
    rr => [Rev, Rev];
);

// ---------------------------------------------------------------------------------------
// Third order
// ---------------------------------------------------------------------------------------

/// `g(x) = eˣ sin x`, `g''' = 2eˣ (cos x − sin x)`.
fn third_derivative<A, B, C>()
where
    A: Mode<f64>,
    B: Mode<Outer<A>>,
    C: Mode<<B as Mode<Outer<A>>>::In>,
{
    for x0 in [-0.7, 0.0, 1.3] {
        let got = A::deriv(|x| B::deriv(|y| C::deriv(|z| z.exp() * z.sin(), y), x), x0);
        let want = 2.0 * f64::exp(x0) * (x0.cos() - x0.sin());
        assert_close(got, want, 1e-14, &format!("g'''({x0})"));
    }
}

// The other two orders, rfr and rrr, need a tape for `Dual<Var<f64>>` / `Var<Var<f64>>`,
// which mixad does not provide (and a user crate cannot add: orphan rule); they do not
// compile.
combos!(third_derivative:
    fff => [Fwd, Fwd, Fwd];
    ffr => [Fwd, Fwd, Rev];
    frf => [Fwd, Rev, Fwd];
    frr => [Fwd, Rev, Rev];
    rff => [Rev, Fwd, Fwd];
    rrf => [Rev, Rev, Fwd];
);

#[test]
fn second_derivative_api_nested_in_derivative() {
    // forward::derivative over forward::second_derivative: Dual<Dual<Dual<f64>>>.
    let x0 = 0.4;
    let got = forward::derivative(|x| forward::second_derivative(|z| z.exp() * z.sin(), x), x0);
    assert_close(
        got,
        2.0 * f64::exp(x0) * (x0.cos() - x0.sin()),
        1e-15,
        "g'''",
    );
}

/// A cubic: `x₀³ + 2x₀²x₁ + x₁x₂² − x₁³ + 3x₀x₁x₂`.
fn cubic<T: Float>(x: &[T]) -> T {
    let (a, b, c) = (x[0], x[1], x[2]);
    a * a * a + k::<T>(2.0) * a * a * b + b * c * c - b * b * b + k::<T>(3.0) * a * b * c
}

/// `∇²cubic(x)`.
fn cubic_hessian(x: [f64; 3]) -> [[f64; 3]; 3] {
    let (h01, h12) = (4.0 * x[0] + 3.0 * x[2], 2.0 * x[2] + 3.0 * x[0]);
    [
        [6.0 * x[0] + 4.0 * x[1], h01, 3.0 * x[1]],
        [h01, -6.0 * x[1], h12],
        [3.0 * x[1], h12, 2.0 * x[1]],
    ]
}

/// `vᵀ ∇²cubic(x) v`.
fn cubic_quadratic_form(x: [f64; 3], v: [f64; 3]) -> f64 {
    let h = cubic_hessian(x);
    (0..3)
        .map(|i| (0..3).map(|j| v[i] * h[i][j] * v[j]).sum::<f64>())
        .sum()
}

/// `∇ₓ (vᵀ ∇²cubic(x) v) = ∇³cubic[v, v, ·]`, constant in `x`.
fn cubic_third(v: [f64; 3]) -> [f64; 3] {
    [
        6.0 * v[0] * v[0] + 8.0 * v[0] * v[1] + 6.0 * v[1] * v[2],
        4.0 * v[0] * v[0] + 6.0 * v[0] * v[2] - 6.0 * v[1] * v[1] + 2.0 * v[2] * v[2],
        6.0 * v[0] * v[1] + 4.0 * v[1] * v[2],
    ]
}

/// `H(x)·v = d/dt ∇f(x + tv)` at `t = 0`: mode `A` differentiates in `t`, mode `B` takes the
/// gradient inside (so `A = Fwd, B = Rev` is the classic forward over reverse).
fn hvp_by<S: Scalar, A: Mode<S>, B: Mode<A::In>>(x: &[S], v: &[S]) -> Vec<S> {
    (0..x.len())
        .map(|i| {
            A::deriv(
                |t| {
                    let p: Vec<A::In> = x
                        .iter()
                        .zip(v)
                        .map(|(&xi, &vi)| A::lift(xi) + t * A::lift(vi))
                        .collect();
                    B::grad(cubic, &p)[i]
                },
                S::zero(),
            )
        })
        .collect()
}

fn hvp_in_every_nesting<A: Mode<f64>, B: Mode<Outer<A>>>() {
    let v = [0.5, -1.5, 2.0];
    for x in [[0.3, -0.2, 1.1], [-2.0, 1.0, 0.5]] {
        let hv = hvp_by::<f64, A, B>(&x, &v);
        let reference = mixad::hvp(cubic, &x, &v);
        let h = cubic_hessian(x);
        for i in 0..3 {
            let what = format!("(Hv)[{i}] at {x:?}");
            let exact: f64 = (0..3).map(|j| h[i][j] * v[j]).sum();
            assert_close(hv[i], exact, 1e-14, &what);
            assert_close(hv[i], reference[i], 1e-14, &what);
        }
        let q: f64 = hv.iter().zip(&v).map(|(a, b)| a * b).sum();
        assert_close(q, cubic_quadratic_form(x, v), 1e-14, "vᵀHv");
    }
}

combos!(hvp_in_every_nesting:
    ff => [Fwd, Fwd];
    fr => [Fwd, Rev];
    rf => [Rev, Fwd];
    rr => [Rev, Rev];
);

/// The gradient of an HVP: `∇ₓ (vᵀ H(x) v)` by mode `O`, around the HVP by `A` over `B`.
fn gradient_of_hvp<O, A, B>()
where
    O: Mode<f64>,
    A: Mode<Outer<O>>,
    B: Mode<<A as Mode<Outer<O>>>::In>,
{
    let v = [0.5, -1.5, 2.0];
    for x in [[0.3, -0.2, 1.1], [-2.0, 1.0, 0.5]] {
        let value = Cell::new(f64::NAN);
        let got = O::grad(
            |xo| {
                let vo: Vec<Outer<O>> = v.iter().map(|&vi| O::lift(vi)).collect();
                let hv = hvp_by::<Outer<O>, A, B>(xo, &vo);
                let q = hv
                    .iter()
                    .zip(&vo)
                    .fold(Outer::<O>::zero(), |s, (&a, &b)| s + a * b);
                value.set(q.value_f64());
                q
            },
            &x,
        );
        assert_close(value.get(), cubic_quadratic_form(x, v), 1e-14, "vᵀHv");
        let want = cubic_third(v);
        for i in 0..3 {
            assert_close(got[i], want[i], 1e-14, &format!("∇(vᵀHv)[{i}] at {x:?}"));
        }
    }
}

// Outer mode, then the HVP's two modes. Missing: r(fr) and r(rr), which would need a
// tape for `Dual<Var<f64>>` / `Var<Var<f64>>`: `Mode<S> for Rev` needs `S: TapeScalar`,
// mixad implements it for neither, and a user crate cannot (orphan rule).
combos!(gradient_of_hvp:
    f_ff => [Fwd, Fwd, Fwd];
    f_fr => [Fwd, Fwd, Rev];
    f_rf => [Fwd, Rev, Fwd];
    f_rr => [Fwd, Rev, Rev];
    r_ff => [Rev, Fwd, Fwd];
    r_rf => [Rev, Rev, Fwd];
);

#[test]
fn forward_over_hvp_with_hand_seeded_duals() {
    // reverse::gradient at Dual<Dual<f64>>: the inner dual carries direction u, the outer
    // one direction w, so the gradient's entries are
    // ∇f + ε H·u + δ H·w + εδ ∇³f[u, w, ·].
    let x = [0.3, -0.2, 1.1];
    let (u, w) = ([1.0, 0.5, -2.0], [0.5, -1.5, 2.0]);
    let seeds: Vec<Dual<Dual<f64>>> = (0..3)
        .map(|i| Dual::new(Dual::new(x[i], u[i]), Dual::new(w[i], 0.0)))
        .collect();
    let g = reverse::gradient(cubic, &seeds);
    let hu = mixad::hvp(cubic, &x, &u);
    let hw = mixad::hvp(cubic, &x, &w);
    let g64 = reverse::gradient(cubic, &x);
    // ∇³f[u, w, ·] by polarisation of the analytic ∇³f[v, v, ·].
    let (p, m) = (cubic_third(add(u, w, 1.0)), cubic_third(add(u, w, -1.0)));
    for i in 0..3 {
        assert_eq!(g[i].value.value, g64[i], "gradient");
        assert_close(g[i].value.tangent, hu[i], 1e-14, "H·u");
        assert_close(g[i].tangent.value, hw[i], 1e-14, "H·w");
        assert_close(
            g[i].tangent.tangent,
            (p[i] - m[i]) / 4.0,
            1e-14,
            "∇³f[u, w]",
        );
    }
}

fn add(a: [f64; 3], b: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]]
}

// ---------------------------------------------------------------------------------------
// Perturbation confusion
// ---------------------------------------------------------------------------------------

fn no_perturbation_confusion<O: Mode<f64>, I: Mode<Outer<O>>>() {
    let one = Outer::<O>::one();
    // d/dx [x · d/dy (x + y)|_{y=1}] = 1 (perturbation confusion gives 2).
    let d = O::deriv(|x| x * I::deriv(|y| I::lift(x) + y, one), 1.0);
    assert_eq!(d, 1.0);
    // d/dx [x · d/dy (x y)|_{y=1}] = 2x, here at x = 4.
    let d = O::deriv(|x| x * I::deriv(|y| I::lift(x) * y, one), 4.0);
    assert_eq!(d, 8.0);
    // ∇ᵥ [(Σv) · d/dy (y ‖v‖)|_{y=1}] = ‖v‖·1 + (Σv) v/‖v‖ = (9.2, 10.6) at v = (3, 4).
    let g = O::grad(
        |v| {
            let norm = (I::lift(v[0]) * I::lift(v[0]) + I::lift(v[1]) * I::lift(v[1])).sqrt();
            (v[0] + v[1]) * I::deriv(|y| y * norm, one)
        },
        &[3.0, 4.0],
    );
    assert_close(g[0], 9.2, 1e-15, "∂/∂v₀");
    assert_close(g[1], 10.6, 1e-15, "∂/∂v₁");
}

combos!(no_perturbation_confusion:
    ff => [Fwd, Fwd];
    fr => [Fwd, Rev];
    rf => [Rev, Fwd];
    rr => [Rev, Rev];
);

/// ForwardDiff.jl issue 313, made recursive: a function whose body differentiates (a
/// lower level of) itself with a closure capturing its own argument. The recursion depth
/// is a type (each level works one dual deeper), the closure's capture is lifted.
///
/// `L₀(c, y) = c y²`, `Lₖ₊₁(c, y) = c · y · ∂/∂z Lₖ(y, z)|_{z = y}`, so
/// `L₁(c, y) = 2cy³` and `L₂(c, y) = 6cy⁴`.
trait Level {
    fn call<S: Scalar>(c: S, y: S) -> S;
}

struct Base;
struct Nest<L>(PhantomData<L>);

impl Level for Base {
    fn call<S: Scalar>(c: S, y: S) -> S {
        c * y * y
    }
}

impl<L: Level> Level for Nest<L> {
    fn call<S: Scalar>(c: S, y: S) -> S {
        let captured = Dual::new(y, S::zero());
        c * y * forward::derivative(|z| L::call(captured, z), y)
    }
}

fn recursive_closure_capture<O: Mode<f64>>() {
    for y in [1.0, 1.5, -0.7] {
        // d/dy L₁(y, y) = d/dy 2y⁴ and d/dy L₂(y, y) = d/dy 6y⁵.
        let once = O::deriv(|t| Nest::<Base>::call(t, t), y);
        assert_close(once, 8.0 * y * y * y, 1e-14, "once nested");
        let twice = O::deriv(|t| Nest::<Nest<Base>>::call(t, t), y);
        assert_close(twice, 30.0 * y.powi(4), 1e-14, "twice nested");
    }
}

combos!(recursive_closure_capture:
    forward_outside => [Fwd];
    reverse_outside => [Rev];
);

// ---------------------------------------------------------------------------------------
// Saddle point: gradient descent through an inner gradient ascent
// ---------------------------------------------------------------------------------------

trait Saddle {
    fn f<T: Float>(x: &[T], y: &[T]) -> T;
}

/// The literal `f(x, y) = (x₁² + y₁²) − (x₂² + y₁²)`: `y` cancels, so the inner max is
/// attained everywhere (ascent never moves) and the outer min is unbounded below in `x₂`.
struct Literal;

impl Saddle for Literal {
    fn f<T: Float>(x: &[T], y: &[T]) -> T {
        (x[0] * x[0] + y[0] * y[0]) - (x[1] * x[1] + y[0] * y[0])
    }
}

/// `f(x, y) = ‖x‖² − ‖y‖² + xᵀBy + aᵀx`, `B = [[1, 1], [0, 1]]`, `a = (−2, 1)`:
/// strictly concave in `y` (`y* = Bᵀx/2`), and `φ(x) = max_y f = ‖x‖² + aᵀx + ‖Bᵀx‖²/4` is
/// strictly convex with minimiser `x* = −(2I + BBᵀ/2)⁻¹a = (22, −16)/29`, where
/// `y* = (11, 3)/29`.
struct Coupled;

impl Saddle for Coupled {
    fn f<T: Float>(x: &[T], y: &[T]) -> T {
        x[0] * x[0] + x[1] * x[1] - y[0] * y[0] - y[1] * y[1]
            + x[0] * (y[0] + y[1])
            + x[1] * y[1]
            + k::<T>(-2.0) * x[0]
            + x[1]
    }
}

const ASCENT_RATE: f64 = 0.25;

/// `steps` of gradient ascent on `y ↦ f(x, y)` from `y = 0`, with `I`'s gradient.
fn inner_argmax<S: Scalar, I: Mode<S>, P: Saddle>(x: &[S], steps: usize) -> Vec<S> {
    let eta = k::<S>(ASCENT_RATE);
    let mut y = vec![S::zero(); 2];
    for _ in 0..steps {
        let g = I::grad(
            |yi| {
                let xl: Vec<I::In> = x.iter().map(|&a| I::lift(a)).collect();
                P::f(&xl, yi)
            },
            &y,
        );
        for (yj, gj) in y.iter_mut().zip(g) {
            *yj += eta * gj;
        }
    }
    y
}

/// `∇ₓ f(x, y_K(x))`, differentiating through the `K = inner_steps` ascent steps.
fn outer_gradient<O: Mode<f64>, I: Mode<Outer<O>>, P: Saddle>(
    x: &[f64],
    inner_steps: usize,
) -> Vec<f64> {
    O::grad(
        |xo| {
            let y = inner_argmax::<_, I, P>(xo, inner_steps);
            P::f(xo, &y)
        },
        x,
    )
}

/// The outer gradient-descent trajectory.
fn descend<O: Mode<f64>, I: Mode<Outer<O>>, P: Saddle>(
    x0: [f64; 2],
    rate: f64,
    outer_steps: usize,
    inner_steps: usize,
) -> Vec<[f64; 2]> {
    let mut x = x0;
    let mut path = vec![x];
    for _ in 0..outer_steps {
        let g = outer_gradient::<O, I, P>(&x, inner_steps);
        x = [x[0] - rate * g[0], x[1] - rate * g[1]];
        path.push(x);
    }
    path
}

#[track_caller]
fn assert_paths_agree(got: &[[f64; 2]], want: &[[f64; 2]], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (step, (g, w)) in got.iter().zip(want).enumerate() {
        for i in 0..2 {
            assert_close(g[i], w[i], tol, &format!("step {step}, coordinate {i}"));
        }
    }
}

fn saddle_point<O: Mode<f64>, I: Mode<Outer<O>> + Mode<f64>>() {
    // Converged inner problem: 0.5⁶⁰ of the initial error left.
    let path = descend::<O, I, Coupled>([1.0, 1.0], 0.3, 40, 60);
    let reference = descend::<Fwd, Fwd, Coupled>([1.0, 1.0], 0.3, 40, 60);
    assert_paths_agree(&path, &reference, 1e-10);
    let x = path[path.len() - 1];
    assert_close(x[0], 22.0 / 29.0, 1e-10, "x₁*");
    assert_close(x[1], -16.0 / 29.0, 1e-10, "x₂*");
    let y = inner_argmax::<f64, I, Coupled>(&x, 60);
    assert_close(y[0], 11.0 / 29.0, 1e-10, "y₁*");
    assert_close(y[1], 3.0 / 29.0, 1e-10, "y₂*");

    // The outer gradient goes *through* the ascent: with K = 3 steps,
    // y_K = c Bᵀx/2 with c = 1 − (1 − 2η)^K, f(x, y_K(x)) = ‖x‖² + aᵀx + (c/2 − c²/4)‖Bᵀx‖²
    // and its gradient is 2x + a + (c − c²/2) BBᵀx. Holding y_K fixed would give
    // 2x + a + (c/2) BBᵀx instead.
    let x = [1.5, 0.5];
    let c = 1.0 - (1.0 - 2.0 * ASCENT_RATE).powi(3);
    let bbt_x = [2.0 * x[0] + x[1], x[0] + x[1]];
    let through = c - c * c / 2.0;
    let want = [
        2.0 * x[0] - 2.0 + through * bbt_x[0],
        2.0 * x[1] + 1.0 + through * bbt_x[1],
    ];
    let held = [
        2.0 * x[0] - 2.0 + c / 2.0 * bbt_x[0],
        2.0 * x[1] + 1.0 + c / 2.0 * bbt_x[1],
    ];
    let g = outer_gradient::<O, I, Coupled>(&x, 3);
    for i in 0..2 {
        assert!((want[i] - held[i]).abs() > 0.01);
        assert_close(
            g[i],
            want[i],
            1e-14,
            &format!("∂/∂x{i} through 3 ascent steps"),
        );
    }
}

combos!(saddle_point:
    ff => [Fwd, Fwd];
    fr => [Fwd, Rev];
    rf => [Rev, Fwd];
    rr => [Rev, Rev];
);

fn literal_saddle_is_degenerate<O: Mode<f64>, I: Mode<Outer<O>> + Mode<f64>>() {
    let x = [0.6, -0.4];
    // y never moves: ∇_y f = 0 everywhere.
    assert_eq!(inner_argmax::<f64, I, Literal>(&x, 5), vec![0.0, 0.0]);
    assert_eq!(outer_gradient::<O, I, Literal>(&x, 5), vec![1.2, 0.8]);
    // Descent: x₁ ← (1 − 2α) x₁ → 0, x₂ ← (1 + 2α) x₂ → −∞.
    let (rate, steps) = (0.1, 30);
    let path = descend::<O, I, Literal>(x, rate, steps, 5);
    let closed: Vec<[f64; 2]> = (0..=steps as i32)
        .map(|n| {
            [
                x[0] * (1.0 - 2.0 * rate).powi(n),
                x[1] * (1.0 + 2.0 * rate).powi(n),
            ]
        })
        .collect();
    assert_paths_agree(&path, &closed, 1e-13);
    assert!(path[steps][1] < -50.0, "the outer problem is unbounded");
}

combos!(literal_saddle_is_degenerate:
    ff => [Fwd, Fwd];
    fr => [Fwd, Rev];
    rf => [Rev, Fwd];
    rr => [Rev, Rev];
);

// ---------------------------------------------------------------------------------------
// Charged particle: the outer d/dw through an Euler simulation driven by an inner ∇ₓp
// ---------------------------------------------------------------------------------------

/// `p(x; w) = 1/‖x − (10, 10 − w)‖ + 1/‖x − (10, 0)‖`.
fn potential<T: Float>(x: &[T], w: T) -> T {
    let ten = k::<T>(10.0);
    let r1 = ((x[0] - ten).powi(2) + (x[1] - (ten - w)).powi(2)).sqrt();
    let r2 = ((x[0] - ten).powi(2) + x[1].powi(2)).sqrt();
    r1.recip() + r2.recip()
}

const DT: f64 = 0.01;

/// `x₀(t_f)²`: explicit Euler under the force `−∇ₓp(x; w)` (taken by mode `I`) from
/// `(0, 8)` with velocity `(0.75, 0)` until the particle crosses the x-axis, the crossing
/// point linearly interpolated.
fn miss<S: Scalar, I: Mode<S>>(w: S) -> S {
    let dt = k::<S>(DT);
    let (mut x, mut v) = ([S::zero(), k::<S>(8.0)], [k::<S>(0.75), S::zero()]);
    for _ in 0..100_000 {
        let wl = I::lift(w);
        let grad_p = I::grad(|xi| potential(xi, wl), &x);
        let next = [x[0] + dt * v[0], x[1] + dt * v[1]];
        if next[1] < S::zero() {
            let s = x[1] / (x[1] - next[1]);
            let x_final = x[0] + s * (next[0] - x[0]);
            return x_final * x_final;
        }
        v = [v[0] - dt * grad_p[0], v[1] - dt * grad_p[1]];
        x = next;
    }
    panic!("the particle never reached the x-axis");
}

/// A few gradient-descent steps on `w`; returns `(w, d miss/dw)` at each step.
fn particle_descent<O: Mode<f64>, I: Mode<Outer<O>>>() -> Vec<(f64, f64)> {
    let mut w = 0.0;
    let mut path = Vec::new();
    for _ in 0..4 {
        let d = O::deriv(|wo| miss::<_, I>(wo), w);
        path.push((w, d));
        w -= 0.003 * d;
    }
    path
}

fn particle<O: Mode<f64>, I: Mode<Outer<O>> + Mode<f64>>() {
    let path = particle_descent::<O, I>();
    let reference = particle_descent::<Fwd, Fwd>();
    for (step, (&(w, d), &(w_ref, d_ref))) in path.iter().zip(&reference).enumerate() {
        assert_close(w, w_ref, 1e-10, &format!("w at step {step}"));
        assert_close(d, d_ref, 1e-10, &format!("dmiss/dw at step {step}"));
        // Central differences of the whole simulation at f64.
        let h = 1e-6;
        let fd = (miss::<f64, I>(w + h) - miss::<f64, I>(w - h)) / (2.0 * h);
        assert_close(
            d,
            fd,
            1e-6,
            &format!("dmiss/dw vs finite differences at step {step}"),
        );
    }
    // Descent makes progress: x₀(t_f)² ≈ 2.56 at w = 0.
    let last = path[path.len() - 1].0;
    let (start, end) = (miss::<f64, I>(0.0), miss::<f64, I>(last));
    assert!(start > 2.5 && end < 0.5 * start, "{start} → {end}");
}

combos!(particle:
    ff => [Fwd, Fwd];
    fr => [Fwd, Rev];
    rf => [Rev, Fwd];
    rr => [Rev, Rev];
);

// ---------------------------------------------------------------------------------------
// The same perturbation-confusion examples written the natural way: the inner call made
// at the *same* scalar type as the outer one (`1.0` makes it `f64`), the captured outer
// variable used as is. A correct library must give the right number or refuse (panic);
// a wrong number is the bug. (Mixed natural forms, `x: Dual<f64>` inside a reverse-mode
// closure over `Var<f64>` or the other way round, do not compile, which is fine.)
// ---------------------------------------------------------------------------------------

/// Right answer, or a panic; never a wrong number.
#[track_caller]
/// Either the right number or mixad's perturbation-confusion panic; any other panic (an
/// index out of bounds, an unrelated assertion) fails the test.
fn right_or_refused(run: impl FnOnce() -> f64 + std::panic::UnwindSafe, want: f64) {
    match std::panic::catch_unwind(run) {
        Ok(got) => assert_eq!(got, want, "silently wrong nested derivative"),
        Err(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("<a panic without a message>");
            assert!(
                text.contains("mixad: perturbation confusion"),
                "refused, but not by the perturbation-confusion check: {text}"
            );
        }
    }
}

#[test]
#[should_panic(
    expected = "a variable of an outer recording was used inside an inner recording of the same type"
)]
fn reverse_inside_reverse_at_the_same_type_refuses() {
    let _ = reverse::gradient(
        |x| x[0] * reverse::gradient(|y| x[0] + y[0], &[1.0])[0],
        &[1.0],
    );
}

#[test]
fn forward_inside_forward_at_the_same_type_is_not_confused() {
    // d/dx [x · d/dy (x + y)|_{y=1}] at x = 1 is 1.
    right_or_refused(
        || forward::derivative(|x| x * forward::derivative(|y| x + y, 1.0), 1.0),
        1.0,
    );
    // d/dx [x · d/dy (x y)|_{y=1}] at x = 4 is 2x = 8.
    right_or_refused(
        || forward::derivative(|x| x * forward::derivative(|y| x * y, 1.0), 4.0),
        8.0,
    );
}

/// Third order through tapes at every level: reverse over forward over reverse (the
/// gradient of an HVP computed as forward over reverse) and reverse over reverse over
/// reverse, for f(x) = x₀³x₁ + x₁⁴, whose third derivatives are constant or linear.
#[test]
fn third_order_through_tapes_at_every_level() {
    use mixad::forward::Dual;
    use mixad::reverse::{self, Var};
    fn f<T: num_traits::Float>(x: &[T]) -> T {
        x[0].powi(3) * x[1] + x[1].powi(4)
    }
    let x0 = [1.5, -0.5];
    let v = [1.0, 2.0];
    // g(x) = vᵀ∇²f(x)v = 6x₀x₁v₀² + 6x₀²v₀v₁ + 12x₁²v₁²; ∇g = (6x₁v₀² + 12x₀v₀v₁, 6x₀v₀² + 24x₁v₁²).
    let expected = [
        6.0 * x0[1] * v[0] * v[0] + 12.0 * x0[0] * v[0] * v[1],
        6.0 * x0[0] * v[0] * v[0] + 24.0 * x0[1] * v[1] * v[1],
    ];
    // r(fr): outer reverse; inner HVP as reverse at S = Dual<Var<f64>>.
    let rfr = reverse::gradient(
        |x: &[Var<f64>]| {
            let seeded: Vec<Dual<Var<f64>>> = x
                .iter()
                .zip(v)
                .map(|(&xi, vi)| Dual::new(xi, Var::constant(vi)))
                .collect();
            let g = reverse::gradient(f, &seeded);
            g.iter()
                .zip(v)
                .map(|(gi, vi)| gi.tangent * vi)
                .fold(Var::constant(0.0), |a, b| a + b)
        },
        &x0,
    );
    // rrr: three nested reverse gradients, contracted with v at each inner level.
    let rrr = reverse::gradient(
        |x: &[Var<f64>]| {
            let hv = reverse::gradient(
                |y: &[Var<Var<f64>>]| {
                    let g = reverse::gradient(f, y);
                    g.iter()
                        .zip(v)
                        .map(|(gi, vi)| *gi * Var::constant(Var::constant(vi)))
                        .fold(Var::constant(Var::constant(0.0)), |a, b| a + b)
                },
                x,
            );
            hv.iter()
                .zip(v)
                .map(|(h, vi)| *h * vi)
                .fold(Var::constant(0.0), |a, b| a + b)
        },
        &x0,
    );
    for (got, name) in [(rfr, "rfr"), (rrr, "rrr")] {
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-12, "{name}: {got:?} vs {expected:?}");
        }
    }
}

/// Third order, the last case: the HVP (forward over reverse) of a function that
/// itself calls forward mode, both by plain nesting and through the translated path.
/// F(x) = x₀ · d/dt [t³ x₁] at t = x₀ = 3 x₀³ x₁, so ∇²F = [[18 x₀x₁, 9x₀²], [9x₀², 0]].
#[test]
fn hvp_of_a_function_that_calls_forward_mode() {
    use mixad::forward::{self, Dual};
    use mixad::nested;
    use mixad::reverse::Var;
    use mixad::Function;

    struct Cube;
    /// Evaluated on `(t, p)`.
    impl Function for Cube {
        fn eval<T: mixad::Scalar>(&self, z: &[T]) -> T {
            z[0] * z[0] * z[0] * z[1]
        }
    }

    let (x, v) = ([1.5, -2.0], [0.5, 1.25]);
    let h = [
        [18.0 * x[0] * x[1], 9.0 * x[0] * x[0]],
        [9.0 * x[0] * x[0], 0.0],
    ];
    let expected: Vec<f64> = (0..2).map(|i| h[i][0] * v[0] + h[i][1] * v[1]).collect();

    let plain = mixad::hvp(
        |z: &[Var<Dual<f64>>]| {
            let x1 = Dual::constant(z[1]);
            z[0] * forward::derivative(|t| t * t * t * x1, z[0])
        },
        &x,
        &v,
    );
    let translated = mixad::hvp(
        |z: &[Var<Dual<f64>>]| z[0] * nested::derivative(&Cube, z[0], &[z[1]]),
        &x,
        &v,
    );
    for (got, name) in [(plain, "plain"), (translated, "translated")] {
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-12, "{name}: {got:?} vs {expected:?}");
        }
    }
}
