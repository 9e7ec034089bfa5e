//! Tests `src/rules/` (`unary.rs`, `binary.rs`). Custom rules: `custom.rs`.
//!
//! Every derivative rule, checked through the public `num_traits::Float` interface of
//! forward duals.
//!
//! Each differentiable `Float` method (plus the operators and `%`) is written once as a
//! generic function `fn f<T: Float>(x: T) -> T` and evaluated on a tower of duals:
//! `f64` (the value), `Dual<f64>` (first derivative), `Dual<Dual<f64>>` (second) and, for a
//! few rules, `Dual<Dual<Dual<f64>>>` (third). Every level is seeded along `x` at every
//! tangent, so the coefficient of a product of `k` distinct infinitesimals is the `k`-th
//! derivative; *all* coefficients of a level are checked, so the levels must agree with each
//! other (`.value.tangent == .tangent.value`) as well as with the analytic formula.
//!
//! Checks, per rule and per point:
//! - every coefficient against a hand-written analytic derivative (tight tolerance);
//! - the top derivative of each level against a central finite difference of the level
//!   below (`h = 1e-6·max(1, |x|)`, loose tolerance);
//! - for two-argument rules, both partials and the whole Hessian (`∂²/∂a²`, `∂²/∂a∂b` in
//!   both seeding orders, `∂²/∂b²`).
//!
//! Separate tests pin the documented conventions at non-differentiable points (see the doc
//! comments of `src/rules/*.rs`), `Dual<f32>`, comparisons, and arithmetic with plain `f64`.
//! A test marked `` documents a defect in the library, not in the test.

mod custom;

use std::f64::consts::{LN_10, LN_2, PI};

use mixad::forward::Dual;
use mixad::Scalar;
use num_traits::Float;

type D1 = Dual<f64>;
type D2 = Dual<D1>;
type D3 = Dual<D2>;
type F1 = fn(D1) -> D1;
type F2 = fn(D2) -> D2;
type G1 = fn(D1, D1) -> D1;

/// Relative tolerance against analytic formulas (rounding differences only).
const EXACT: f64 = 1e-12;
/// Relative tolerance against central finite differences.
const FD: f64 = 1e-6;

// ---------------------------------------------------------------------------------------
// Towers of duals: seeding and reading every coefficient.
// ---------------------------------------------------------------------------------------

/// A number type in the tower `f64`, `Dual<f64>`, `Dual<Dual<f64>>`, ….
trait Tower: Copy {
    /// Number of nested dual levels (0 for `f64`).
    const DEPTH: usize;
    /// The input `x` with tangent `dirs[l]` at level `l` (level 0 is innermost).
    fn seed(x: f64, dirs: &[f64]) -> Self;
    /// All `2^DEPTH` coefficients; bit `l` of an index means "differentiated at level `l`".
    fn push_coeffs(self, out: &mut Vec<f64>);
}

impl Tower for f64 {
    const DEPTH: usize = 0;
    fn seed(x: f64, _: &[f64]) -> Self {
        x
    }
    fn push_coeffs(self, out: &mut Vec<f64>) {
        out.push(self);
    }
}

impl<T: Tower + Scalar> Tower for Dual<T> {
    const DEPTH: usize = T::DEPTH + 1;
    fn seed(x: f64, dirs: &[f64]) -> Self {
        Dual::new(T::seed(x, dirs), T::cst(dirs[T::DEPTH]))
    }
    fn push_coeffs(self, out: &mut Vec<f64>) {
        self.value.push_coeffs(out);
        self.tangent.push_coeffs(out);
    }
}

fn coeffs<D: Tower>(y: D) -> Vec<f64> {
    let mut out = Vec::with_capacity(1 << D::DEPTH);
    y.push_coeffs(&mut out);
    out
}

/// A constant of any `Float` type.
fn k<T: Float>(c: f64) -> T {
    T::from(c).unwrap()
}

/// `got ≈ want` to relative tolerance `rel` (absolute below magnitude 1); NaN and infinities
/// must match exactly.
fn close(got: f64, want: f64, rel: f64) -> bool {
    if want.is_nan() || want.is_infinite() {
        return got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
    }
    (got - want).abs() <= rel * want.abs().max(1.0)
}

#[track_caller]
fn assert_close(got: f64, want: f64, rel: f64, what: impl FnOnce() -> String) {
    assert!(
        close(got, want, rel),
        "{}: got {got:e}, want {want:e}",
        what()
    );
}

/// Central difference of `g` at `x`.
fn central(g: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = 1e-6 * x.abs().max(1.0);
    (g(x + h) - g(x - h)) / (2.0 * h)
}

// ---------------------------------------------------------------------------------------
// One-argument rules.
// ---------------------------------------------------------------------------------------

const ONES: [f64; 3] = [1.0; 3];

/// One generic function instantiated at every level of the tower.
struct UnaryAt {
    f0: fn(f64) -> f64,
    f1: F1,
    f2: F2,
    f3: fn(D3) -> D3,
}

fn unary_coeffs<D: Tower>(f: fn(D) -> D, x: f64) -> Vec<f64> {
    coeffs(f(D::seed(x, &ONES[..D::DEPTH])))
}

/// Every coefficient of `f` at `x` against `want[order]` (`want[0]` is the value).
fn check_unary_level<D: Tower>(f: fn(D) -> D, x: f64, want: &[f64], name: &str) {
    for (mask, got) in unary_coeffs(f, x).into_iter().enumerate() {
        let order = mask.count_ones() as usize;
        assert_close(got, want[order], EXACT, || {
            format!(
                "{name}({x}): depth {}, coefficient {mask:#b} (order {order})",
                D::DEPTH
            )
        });
    }
}

/// The highest derivative at level `Hi` against a central difference of the one below.
fn check_unary_fd<Lo: Tower, Hi: Tower>(lo: fn(Lo) -> Lo, hi: fn(Hi) -> Hi, x: f64, name: &str) {
    let top = |c: Vec<f64>| c[c.len() - 1];
    let fd = central(|t| top(unary_coeffs(lo, t)), x);
    assert_close(top(unary_coeffs(hi, x)), fd, FD, || {
        format!(
            "{name}({x}): order-{} derivative vs finite difference",
            Hi::DEPTH
        )
    });
}

/// `derivs(x)` is `[f', f'']` or `[f', f'', f''']`; the third level is checked in the latter case.
fn check_unary(name: &str, fns: &UnaryAt, points: &[f64], derivs: impl Fn(f64) -> Vec<f64>) {
    for &x in points {
        let mut want = vec![(fns.f0)(x)];
        want.extend(derivs(x));
        check_unary_level(fns.f1, x, &want, name);
        check_unary_level(fns.f2, x, &want, name);
        check_unary_fd(fns.f0, fns.f1, x, name);
        check_unary_fd(fns.f1, fns.f2, x, name);
        if want.len() > 3 {
            check_unary_level(fns.f3, x, &want, name);
            check_unary_fd(fns.f2, fns.f3, x, name);
        }
    }
}

/// `name(x) = generic body; at [points]; derivs [f', f'' (, f''')];` — one test per rule.
macro_rules! unary_rules {
    ($($name:ident($x:ident) = $f:expr; at [$($p:expr),+ $(,)?]; derivs [$($d:expr),+ $(,)?];)+) => {$(
        #[test]
        fn $name() {
            fn f<T: Float>($x: T) -> T {
                $f
            }
            let fns = UnaryAt { f0: f::<f64>, f1: f::<D1>, f2: f::<D2>, f3: f::<D3> };
            check_unary(stringify!($name), &fns, &[$($p),+], |$x: f64| {
                let _ = $x;
                vec![$($d),+]
            });
        }
    )+};
}

mod unary {
    use super::*;

    unary_rules! {
        neg(x) = -x; at [-1.5, 0.0, 2.0]; derivs [-1.0, 0.0];
        recip(x) = x.recip(); at [-3.0, -0.5, 0.25, 2.0]; derivs [-1.0 / (x * x), 2.0 / x.powi(3)];
        powi_0(x) = x.powi(0); at [-1.5, 0.0, 2.0]; derivs [0.0, 0.0];
        powi_1(x) = x.powi(1); at [-1.5, 0.0, 2.0]; derivs [1.0, 0.0];
        powi_2(x) = x.powi(2); at [-1.5, 0.0, 2.0]; derivs [2.0 * x, 2.0];
        powi_3(x) = x.powi(3); at [-1.5, 0.0, 2.0]; derivs [3.0 * x * x, 6.0 * x, 6.0];
        powi_7(x) = x.powi(7); at [-1.5, 0.3, 2.0]; derivs [7.0 * x.powi(6), 42.0 * x.powi(5)];
        powi_neg3(x) = x.powi(-3); at [-2.0, -0.5, 0.7, 3.0];
            derivs [-3.0 / x.powi(4), 12.0 / x.powi(5), -60.0 / x.powi(6)];
        powf_const_exponent(x) = x.powf(k(2.5)); at [0.3, 1.0, 4.0];
            derivs [2.5 * x.powf(1.5), 3.75 * x.sqrt()];
        // A constant integer exponent is fine at a negative base: (-2)^3 has derivative 12.
        powf_const_int_exponent(x) = x.powf(k(3.0)); at [-2.0, -0.7, 1.3];
            derivs [3.0 * x * x, 6.0 * x, 6.0];
        powf_const_base(x) = k::<T>(0.5).powf(x); at [-1.5, 0.0, 2.0];
            derivs [-(0.5f64.powf(x)) * LN_2, 0.5f64.powf(x) * LN_2 * LN_2];
        sqrt(x) = x.sqrt(); at [0.01, 0.5, 4.0, 100.0];
            derivs [0.5 / x.sqrt(), -0.25 / x.powf(1.5), 0.375 / x.powf(2.5)];
        cbrt(x) = x.cbrt(); at [-8.0, -0.3, 0.5, 27.0];
            derivs [1.0 / (3.0 * x.cbrt().powi(2)), -2.0 / (9.0 * x.cbrt().powi(5))];
        exp(x) = x.exp(); at [-3.0, 0.0, 1.5, 5.0]; derivs [x.exp(), x.exp(), x.exp()];
        exp2(x) = x.exp2(); at [-2.5, 0.0, 3.0]; derivs [x.exp2() * LN_2, x.exp2() * LN_2 * LN_2];
        exp_m1(x) = x.exp_m1(); at [-1.0, 0.0, 1e-8, 2.0]; derivs [x.exp(), x.exp()];
        ln(x) = x.ln(); at [0.1, 1.0, 7.5]; derivs [1.0 / x, -1.0 / (x * x), 2.0 / x.powi(3)];
        log2(x) = x.log2(); at [0.1, 1.0, 7.5]; derivs [1.0 / (x * LN_2), -1.0 / (x * x * LN_2)];
        log10(x) = x.log10(); at [0.1, 1.0, 7.5];
            derivs [1.0 / (x * LN_10), -1.0 / (x * x * LN_10)];
        log_const_base(x) = x.log(k(3.0)); at [0.1, 1.0, 7.5];
            derivs [1.0 / (x * 3f64.ln()), -1.0 / (x * x * 3f64.ln())];
        ln_1p(x) = x.ln_1p(); at [-0.5, 0.0, 1e-9, 3.0];
            derivs [1.0 / (1.0 + x), -1.0 / (1.0 + x).powi(2)];
        sin(x) = x.sin(); at [-2.0, 0.0, 0.5, 3.0]; derivs [x.cos(), -x.sin(), -x.cos()];
        cos(x) = x.cos(); at [-2.0, 0.0, 0.5, 3.0]; derivs [-x.sin(), -x.cos()];
        tan(x) = x.tan(); at [-1.2, 0.0, 0.7, 2.0];
            derivs [1.0 / x.cos().powi(2), 2.0 * x.tan() / x.cos().powi(2)];
        sin_cos_sin(x) = x.sin_cos().0; at [-2.0, 0.0, 0.5, 3.0]; derivs [x.cos(), -x.sin()];
        sin_cos_cos(x) = x.sin_cos().1; at [-2.0, 0.0, 0.5, 3.0]; derivs [-x.sin(), -x.cos()];
        asin(x) = x.asin(); at [-0.9, 0.0, 0.4, 0.95];
            derivs [1.0 / (1.0 - x * x).sqrt(), x / (1.0 - x * x).powf(1.5)];
        acos(x) = x.acos(); at [-0.9, 0.0, 0.4, 0.95];
            derivs [-1.0 / (1.0 - x * x).sqrt(), -x / (1.0 - x * x).powf(1.5)];
        atan(x) = x.atan(); at [-3.0, 0.0, 0.5, 10.0];
            derivs [
                1.0 / (1.0 + x * x),
                -2.0 * x / (1.0 + x * x).powi(2),
                (6.0 * x * x - 2.0) / (1.0 + x * x).powi(3),
            ];
        sinh(x) = x.sinh(); at [-2.0, 0.0, 0.3, 4.0]; derivs [x.cosh(), x.sinh()];
        cosh(x) = x.cosh(); at [-2.0, 0.0, 0.3, 4.0]; derivs [x.sinh(), x.cosh()];
        tanh(x) = x.tanh(); at [-2.0, 0.0, 0.3, 4.0];
            derivs [
                1.0 / x.cosh().powi(2),
                -2.0 * x.tanh() / x.cosh().powi(2),
                (6.0 * x.tanh().powi(2) - 2.0) / x.cosh().powi(2),
            ];
        asinh(x) = x.asinh(); at [-5.0, 0.0, 0.7, 20.0];
            derivs [1.0 / (x * x + 1.0).sqrt(), -x / (x * x + 1.0).powf(1.5)];
        acosh(x) = x.acosh(); at [1.1, 2.0, 50.0];
            derivs [1.0 / (x * x - 1.0).sqrt(), -x / (x * x - 1.0).powf(1.5)];
        atanh(x) = x.atanh(); at [-0.9, 0.0, 0.5];
            derivs [1.0 / (1.0 - x * x), 2.0 * x / (1.0 - x * x).powi(2)];
        abs(x) = x.abs(); at [-2.5, -0.1, 0.1, 3.0]; derivs [x.signum(), 0.0];
        signum(x) = x.signum(); at [-2.0, -0.1, 0.1, 3.0]; derivs [0.0, 0.0];
        floor(x) = x.floor(); at [-2.7, -0.3, 0.2, 3.6]; derivs [0.0, 0.0];
        ceil(x) = x.ceil(); at [-2.7, -0.3, 0.2, 3.6]; derivs [0.0, 0.0];
        round(x) = x.round(); at [-2.7, -0.3, 0.2, 3.6]; derivs [0.0, 0.0];
        trunc(x) = x.trunc(); at [-2.7, -0.3, 0.2, 3.6]; derivs [0.0, 0.0];
        fract(x) = x.fract(); at [-2.7, -0.3, 0.2, 3.6]; derivs [1.0, 0.0];
        to_degrees(x) = x.to_degrees(); at [-1.0, 0.0, 2.5]; derivs [180.0 / PI, 0.0];
        to_radians(x) = x.to_radians(); at [-90.0, 0.0, 30.0]; derivs [PI / 180.0, 0.0];
        clamp(x) = x.clamp(k(-1.0), k(2.0)); at [-3.0, 0.5, 1.9, 4.0];
            derivs [if (-1.0..=2.0).contains(&x) { 1.0 } else { 0.0 }, 0.0];
    }
}

// ---------------------------------------------------------------------------------------
// Two-argument rules.
// ---------------------------------------------------------------------------------------

/// One generic two-argument function instantiated at every level of the tower.
struct BinaryAt {
    f0: fn(f64, f64) -> f64,
    f1: fn(D1, D1) -> D1,
    f2: fn(D2, D2) -> D2,
}

/// Coefficients of `f(a, b)` when level `l` differentiates along `b` if bit `l` of
/// `along_b` is set and along `a` otherwise.
fn binary_coeffs<D: Tower>(f: fn(D, D) -> D, a: f64, b: f64, along_b: usize) -> Vec<f64> {
    let db: Vec<f64> = (0..D::DEPTH).map(|l| (along_b >> l & 1) as f64).collect();
    let da: Vec<f64> = db.iter().map(|d| 1.0 - d).collect();
    coeffs(f(D::seed(a, &da), D::seed(b, &db)))
}

/// Every coefficient, for every assignment of levels to arguments, against the analytic
/// partials `want = [f, f_a, f_b, f_aa, f_ab, f_bb]`.
fn check_binary_level<D: Tower>(f: fn(D, D) -> D, a: f64, b: f64, want: &[f64; 6], name: &str) {
    for along_b in 0..1usize << D::DEPTH {
        for (mask, got) in binary_coeffs(f, a, b, along_b).into_iter().enumerate() {
            let nb = (mask & along_b).count_ones();
            let na = mask.count_ones() - nb;
            let (index, partial) = match (na, nb) {
                (0, 0) => (0, "f"),
                (1, 0) => (1, "∂f/∂a"),
                (0, 1) => (2, "∂f/∂b"),
                (2, 0) => (3, "∂²f/∂a²"),
                (1, 1) => (4, "∂²f/∂a∂b"),
                _ => (5, "∂²f/∂b²"),
            };
            assert_close(got, want[index], EXACT, || {
                format!("{name}({a}, {b}): {partial} (depth {}, levels along b {along_b:#b}, coefficient {mask:#b})", D::DEPTH)
            });
        }
    }
}

/// The highest partials at level `Hi` against central differences of the level below.
fn check_binary_fd<Lo: Tower, Hi: Tower>(
    lo: fn(Lo, Lo) -> Lo,
    hi: fn(Hi, Hi) -> Hi,
    (a, b): (f64, f64),
    name: &str,
) {
    let top = |c: Vec<f64>| c[c.len() - 1];
    for along_b in 0..1usize << Hi::DEPTH {
        let below = along_b & ((1 << Lo::DEPTH) - 1);
        let fd = if along_b >> Lo::DEPTH & 1 == 1 {
            central(|t| top(binary_coeffs(lo, a, t, below)), b)
        } else {
            central(|t| top(binary_coeffs(lo, t, b, below)), a)
        };
        assert_close(top(binary_coeffs(hi, a, b, along_b)), fd, FD, || {
            format!(
                "{name}({a}, {b}): depth {}, levels along b {along_b:#b}, vs finite difference",
                Hi::DEPTH
            )
        });
    }
}

/// `partials(a, b)` is `[f_a, f_b, f_aa, f_ab, f_bb]`.
fn check_binary(
    name: &str,
    fns: &BinaryAt,
    points: &[(f64, f64)],
    partials: impl Fn(f64, f64) -> [f64; 5],
) {
    for &(a, b) in points {
        let [fa, fb, faa, fab, fbb] = partials(a, b);
        let want = [(fns.f0)(a, b), fa, fb, faa, fab, fbb];
        check_binary_level(fns.f1, a, b, &want, name);
        check_binary_level(fns.f2, a, b, &want, name);
        check_binary_fd(fns.f0, fns.f1, (a, b), name);
        check_binary_fd(fns.f1, fns.f2, (a, b), name);
    }
}

/// `name(a, b) = generic body; at [(a, b), …]; partials { … [f_a, f_b, f_aa, f_ab, f_bb] }`.
macro_rules! binary_rules {
    ($($name:ident($a:ident, $b:ident) = $f:expr; at [$(($pa:expr, $pb:expr)),+ $(,)?]; partials $p:block)+) => {$(
        #[test]
        fn $name() {
            fn f<T: Float>($a: T, $b: T) -> T {
                $f
            }
            let fns = BinaryAt { f0: f::<f64>, f1: f::<D1>, f2: f::<D2> };
            check_binary(stringify!($name), &fns, &[$(($pa, $pb)),+], |$a: f64, $b: f64| -> [f64; 5] {
                let _ = ($a, $b);
                $p
            });
        }
    )+};
}

/// `[1, 0, …]` when the first argument is selected, `[0, 1, …]` otherwise; Hessian zero.
fn select_partials(first: bool) -> [f64; 5] {
    let g = if first { 1.0 } else { 0.0 };
    [g, 1.0 - g, 0.0, 0.0, 0.0]
}

mod binary {
    use super::*;

    binary_rules! {
        add(a, b) = a + b; at [(2.0, -3.0), (0.5, 4.0)]; partials { [1.0, 1.0, 0.0, 0.0, 0.0] }
        sub(a, b) = a - b; at [(2.0, -3.0), (0.5, 4.0)]; partials { [1.0, -1.0, 0.0, 0.0, 0.0] }
        mul(a, b) = a * b; at [(2.0, -3.0), (0.5, 4.0), (0.0, 1.5)]; partials { [b, a, 0.0, 1.0, 0.0] }
        div(a, b) = a / b; at [(1.5, 2.0), (-3.0, 0.5), (2.0, -4.0)];
            partials { [1.0 / b, -a / (b * b), 0.0, -1.0 / (b * b), 2.0 * a / b.powi(3)] }
        rem(a, b) = a % b; at [(5.5, 2.0), (-7.3, 2.5), (7.3, -2.5), (1.0, 3.0)];
            partials { [1.0, -(a / b).trunc(), 0.0, 0.0, 0.0] }
        powf(a, b) = a.powf(b); at [(2.0, 3.0), (0.5, -1.5), (3.0, 0.5), (1.0, 2.5)];
            partials {
                let (v, l) = (a.powf(b), a.ln());
                [
                    b * a.powf(b - 1.0),
                    v * l,
                    b * (b - 1.0) * a.powf(b - 2.0),
                    a.powf(b - 1.0) * (1.0 + b * l),
                    v * l * l,
                ]
            }
        log(a, b) = a.log(b); at [(2.0, 3.0), (0.5, 10.0), (5.0, 0.3)];
            partials {
                let (la, lb) = (a.ln(), b.ln());
                [
                    1.0 / (a * lb),
                    -la / (b * lb * lb),
                    -1.0 / (a * a * lb),
                    -1.0 / (a * b * lb * lb),
                    la * (lb + 2.0) / (b * b * lb.powi(3)),
                ]
            }
        atan2(a, b) = a.atan2(b); at [(1.0, 2.0), (-1.0, -1.0), (2.0, -0.5), (0.3, 0.0)];
            partials {
                let r = a * a + b * b;
                [b / r, -a / r, -2.0 * a * b / (r * r), (a * a - b * b) / (r * r), 2.0 * a * b / (r * r)]
            }
        hypot(a, b) = a.hypot(b); at [(3.0, 4.0), (-1.0, 2.0), (0.5, -0.1), (2.0, 0.0)];
            partials {
                let h = a.hypot(b);
                let h3 = h.powi(3);
                [a / h, b / h, b * b / h3, -a * b / h3, a * a / h3]
            }
        max(a, b) = a.max(b); at [(2.0, 1.0), (-1.0, 3.0), (0.5, -0.5), (-2.0, -1.5)];
            partials { select_partials(a > b) }
        min(a, b) = a.min(b); at [(2.0, 1.0), (-1.0, 3.0), (0.5, -0.5), (-2.0, -1.5)];
            partials { select_partials(a < b) }
        abs_sub(a, b) = {
            #[allow(deprecated)]
            let d = a.abs_sub(b);
            d
        };
            at [(3.0, 1.0), (-1.0, 2.0), (0.5, -4.0)];
            partials { if a > b { [1.0, -1.0, 0.0, 0.0, 0.0] } else { [0.0; 5] } }
        copysign(a, b) = a.copysign(b); at [(2.0, 3.0), (2.0, -3.0), (-1.5, 0.5), (-1.5, -4.0)];
            partials { [a.signum() * b.signum(), 0.0, 0.0, 0.0, 0.0] }
        mul_add_factors(a, b) = a.mul_add(b, k(3.0)); at [(2.0, -1.5), (0.5, 4.0)];
            partials { [b, a, 0.0, 1.0, 0.0] }
        mul_add_addend(a, b) = k::<T>(2.0).mul_add(a, b); at [(2.0, -1.5), (0.5, 4.0)];
            partials { [2.0, 1.0, 0.0, 0.0, 0.0] }
        // 5 clamped to [a, b]: a when 5 < a, b when 5 > b, constant inside.
        clamp_bounds(a, b) = k::<T>(5.0).clamp(a, b); at [(6.0, 8.0), (1.0, 3.0), (1.0, 8.0)];
            partials { [f64::from(5.0 < a), f64::from(5.0 > b), 0.0, 0.0, 0.0] }
    }
}

// ---------------------------------------------------------------------------------------
// Conventions at non-differentiable points (documented in src/rules/*.rs).
// ---------------------------------------------------------------------------------------

/// `(value, derivative)` of a one-argument function seeded at `x`.
fn d1(f: F1, x: f64) -> (f64, f64) {
    let y = f(Dual::variable(x));
    (y.value, y.tangent)
}

/// `(f, ∂f/∂a, ∂f/∂b)` of a two-argument function, seeding each argument in turn.
fn grad(f: G1, a: f64, b: f64) -> (f64, f64, f64) {
    let ya = f(Dual::variable(a), Dual::new(b, 0.0));
    let yb = f(Dual::new(a, 0.0), Dual::variable(b));
    assert_eq!(ya.value.to_bits(), yb.value.to_bits());
    (ya.value, ya.tangent, yb.tangent)
}

/// Coefficients `[f, f', f', f'']` of a one-argument function on `Dual<Dual<f64>>`.
fn second(f: F2, x: f64) -> Vec<f64> {
    unary_coeffs(f, x)
}

/// One closure body instantiated at `Dual<f64>` and `Dual<Dual<f64>>`.
struct Levels {
    f1: F1,
    f2: F2,
}

macro_rules! levels {
    (|$x:ident| $e:expr) => {
        Levels {
            f1: |$x: D1| $e,
            f2: |$x: D2| $e,
        }
    };
}

#[test]
fn abs_has_derivative_zero_at_zero() {
    for x in [0.0, -0.0] {
        assert_eq!(d1(|x| x.abs(), x), (0.0, 0.0));
        assert_eq!(second(|x| x.abs(), x), [0.0; 4]);
    }
}

#[test]
fn sqrt_and_cbrt_at_zero_are_infinite_for_a_variable_and_zero_for_a_constant() {
    for Levels { f1, f2 } in [levels!(|x| x.sqrt()), levels!(|x| x.cbrt())] {
        assert_eq!(d1(f1, 0.0), (0.0, f64::INFINITY));
        assert_eq!(second(f2, 0.0)[..3], [0.0, f64::INFINITY, f64::INFINITY]);
        // A constant 0 carries tangent 0, and 0 · inf must not turn into NaN.
        let c = f1(Dual::new(0.0, 0.0));
        assert_eq!((c.value, c.tangent), (0.0, 0.0));
        let c2 = f2(Dual::new(Dual::new(0.0, 0.0), Dual::new(0.0, 0.0)));
        assert_eq!(coeffs(c2), [0.0; 4]);
        // Also when the constant comes out of arithmetic on a variable: sqrt(x·0).
        let x = Dual::variable(3.0);
        assert_eq!(f1(x * 0.0).tangent, 0.0);
    }
}

#[test]
fn max_and_min_split_a_tie_evenly() {
    let rules: [(G1, Levels); 2] = [
        (|a, b| a.max(b), levels!(|x| x.max(x))),
        (|a, b| a.min(b), levels!(|x| x.min(x))),
    ];
    for (f, same) in rules {
        assert_eq!(grad(f, 1.5, 1.5), (1.5, 0.5, 0.5));
        // d/dx max(x, x) = 1, and nothing curves.
        assert_eq!(d1(same.f1, 1.5), (1.5, 1.0));
        assert_eq!(second(same.f2, 1.5), [1.5, 1.0, 1.0, 0.0]);
    }
}

#[test]
fn a_tie_of_two_huge_equal_values_does_not_overflow() {
    // The tie's mean was once (a + b)/2: max(1e308, 1e308) gave +inf in every mode.
    let big = 1.0e308;
    type V = mixad::reverse::Var<f64>;
    for f in [|a: V, b: V| a.max(b), |a: V, b: V| a.min(b)] {
        let (y, g) = mixad::reverse::value_and_gradient(|v| f(v[0], v[1]), &[big, big]);
        assert_eq!((y, g), (big, vec![0.5, 0.5]));
    }
    let d = mixad::forward::derivative(|x| x.max(x * 1.0), -big);
    assert_eq!(d, 1.0);
    // Equal subnormals and negative zeros come back unchanged.
    let tiny = f64::from_bits(1);
    let y = mixad::reverse::value_and_gradient(|v| v[0].max(v[1]), &[tiny, tiny]).0;
    assert_eq!(y, tiny);
    let y = mixad::reverse::value_and_gradient(|v| v[0].min(v[1]), &[-0.0, -0.0]).0;
    assert!(y == 0.0 && y.is_sign_negative());
    assert_eq!(Dual::new(big, 1.0).max(Dual::new(big, 3.0)).value, big);
}

#[test]
fn max_and_min_tie_agree_across_nesting_levels() {
    // max(x, 2x − 1) at x = 1 is a tie; by the 1/2 convention its derivative is
    // (1 + 2)/2 = 1.5, and `.value.tangent` of Dual<Dual> must equal `.tangent.value`.
    fn f<T: Float>(x: T) -> T {
        x.max(x + x - T::one())
    }
    fn g<T: Float>(x: T) -> T {
        x.min(x + x - T::one())
    }
    for (f1, f2) in [(f::<D1> as F1, f::<D2> as F2), (g::<D1>, g::<D2>)] {
        assert_eq!(d1(f1, 1.0), (1.0, 1.5));
        let c = second(f2, 1.0);
        assert_eq!(c[1], c[2], ".value.tangent vs .tangent.value");
        assert_eq!(c[..3], [1.0, 1.5, 1.5]);
    }
}

#[test]
fn max_and_min_ignore_a_nan_argument() {
    let nan = f64::NAN;
    for f in [|a: D1, b: D1| a.max(b), |a: D1, b: D1| a.min(b)] {
        assert_eq!(grad(f, 2.0, nan), (2.0, 1.0, 0.0));
        assert_eq!(grad(f, nan, 2.0), (2.0, 0.0, 1.0));
    }
}

#[test]
fn rounding_has_derivative_zero_even_at_its_jumps_and_fract_has_one() {
    let rules = [
        (levels!(|x| x.floor()), 0.0),
        (levels!(|x| x.ceil()), 0.0),
        (levels!(|x| x.round()), 0.0),
        (levels!(|x| x.trunc()), 0.0),
        (levels!(|x| x.signum()), 0.0),
        (levels!(|x| x.fract()), 1.0),
    ];
    for (Levels { f1, f2 }, slope) in rules {
        for x in [-3.0, -2.5, -1.0, 0.0, 0.5, 2.0, 2.5] {
            let (v, d) = d1(f1, x);
            assert_eq!(d, slope, "at {x}");
            let c = second(f2, x);
            assert_eq!(c, [v, slope, slope, 0.0], "at {x}");
        }
    }
}

#[test]
fn hypot_at_origin_has_zero_partials() {
    assert_eq!(grad(|a, b| a.hypot(b), 0.0, 0.0), (0.0, 0.0, 0.0));
    let x = Dual::variable(0.0);
    assert_eq!(d1(|x| x.hypot(x), 0.0), (0.0, 0.0));
    assert_eq!(x.hypot(-x).tangent, 0.0);
}

#[test]
fn atan2_at_origin_has_nan_partials_but_constants_stay_constant() {
    let (v, da, db) = grad(|a, b| a.atan2(b), 0.0, 0.0);
    assert_eq!(v, 0.0);
    assert!(da.is_nan() && db.is_nan(), "got {da}, {db}");
    let c = Dual::new(0.0, 0.0).atan2(Dual::new(0.0, 0.0));
    assert_eq!((c.value, c.tangent), (0.0, 0.0));
}

#[test]
fn powf_at_zero_base_and_positive_exponent() {
    for y in [0.5, 2.0, 3.0] {
        // d/dy 0^y = 0 for y > 0 (0^y is identically 0 there).
        assert_eq!(d1(|y| Dual::new(0.0, 0.0).powf(y), y), (0.0, 0.0));
        let (v, _, db) = grad(|a, b| a.powf(b), 0.0, y);
        assert_eq!((v, db), (0.0, 0.0));
    }
    // d/dx x^b at 0: b·0^(b−1), zero for b > 1 and infinite for b < 1.
    assert_eq!(grad(|a, b| a.powf(b), 0.0, 2.0).1, 0.0);
    assert_eq!(grad(|a, b| a.powf(b), 0.0, 0.5).1, f64::INFINITY);
    assert_eq!(second(|x| x.powf(k(2.5)), 0.0), [0.0; 4]);
}

#[test]
fn powf_with_constant_exponent_is_finite_at_negative_base() {
    let cube = |x: D2| x.powf(k(3.0));
    assert_eq!(d1(|x| x.powf(k(3.0)), -2.0), (-8.0, 12.0));
    assert_eq!(second(cube, -2.0), [-8.0, 12.0, 12.0, -12.0]);
    assert_eq!(d1(|x| x.powf(k(2.0)), -3.0), (9.0, -6.0));
    assert_eq!(d1(|x| x.powf(k(0.0)), -2.0), (1.0, 0.0));
    // Both variable: ∂/∂a is still the ordinary b·a^(b−1); ∂/∂b is NaN (documented).
    let (v, da, db) = grad(|a, b| a.powf(b), -2.0, 3.0);
    assert_eq!((v, da), (-8.0, 12.0));
    assert!(db.is_nan(), "∂/∂b at a negative base: got {db}");
}

#[test]
fn powf_at_zero_exponent_has_zero_base_partial() {
    for a in [2.0, 0.5, -2.0] {
        let (v, da, _) = grad(|a, b| a.powf(b), a, 0.0);
        assert_eq!((v, da), (1.0, 0.0));
    }
}

#[test]
fn powf_mixed_partial_at_zero_exponent() {
    let f = |a: D2, b: D2| a.powf(b);
    for along_b in [0b01, 0b10] {
        let c = binary_coeffs(f, 2.0, 0.0, along_b);
        assert_close(c[3], 0.5, EXACT, || {
            format!("∂²f/∂a∂b, levels along b {along_b:#b}")
        });
    }
}

/// Rules evaluated outside their real domain whose value or derivative is not NaN.
fn not_nan_outside_domain(rules: &[(&str, F1, f64)]) -> Vec<String> {
    let mut offenders = Vec::new();
    for &(name, f, x) in rules {
        let (v, d) = d1(f, x);
        if !(v.is_nan() && d.is_nan()) {
            offenders.push(format!("{name}({x}) = ({v}, {d})"));
        }
    }
    offenders
}

#[test]
fn outside_the_domain_value_and_derivative_are_nan() {
    let offenders = not_nan_outside_domain(&[
        ("sqrt", |x| x.sqrt(), -4.0),
        ("asin", |x| x.asin(), 2.0),
        ("acos", |x| x.acos(), -1.5),
        ("acosh", |x| x.acosh(), 0.5),
        ("powf", |x| x.powf(k(0.5)), -1.0),
        ("powf", |x| k::<D1>(-2.0).powf(x), 0.5),
    ]);
    assert!(offenders.is_empty(), "{offenders:?}");
}

#[test]
fn logarithms_and_atanh_outside_the_domain_are_nan() {
    let offenders = not_nan_outside_domain(&[
        ("ln", |x| x.ln(), -1.0),
        ("log2", |x| x.log2(), -1.0),
        ("log10", |x| x.log10(), -1.0),
        ("log", |x| x.log(k(3.0)), -1.0),
        ("ln_1p", |x| x.ln_1p(), -2.0),
        ("atanh", |x| x.atanh(), 1.5),
        ("atanh", |x| x.atanh(), -3.0),
    ]);
    assert!(offenders.is_empty(), "{offenders:?}");
}

#[test]
fn powi_at_extreme_exponent() {
    // n = i32::MIN cannot form n − 1; the derivative is still n·x^(n−1).
    let n = i32::MIN;
    assert_eq!(d1(|x| x.powi(i32::MIN), 1.0), (1.0, n as f64));
    assert_eq!(d1(|x| x.powi(i32::MIN), -1.0), (1.0, -(n as f64)));
}

// ---------------------------------------------------------------------------------------
// f32, comparisons, arithmetic with plain f64.
// ---------------------------------------------------------------------------------------

#[test]
fn dual_f32_sine_matches_cosine() {
    for x in [-2.0f32, 0.0, 0.5, 3.0] {
        let y = Dual::variable(x).sin();
        assert!((y.value - x.sin()).abs() <= f32::EPSILON, "value at {x}");
        assert!(
            (y.tangent - x.cos()).abs() <= 2.0 * f32::EPSILON,
            "derivative at {x}: {}",
            y.tangent
        );
    }
}

#[test]
fn comparisons_act_on_primal_values_only() {
    let (a, b) = (Dual::new(1.0, 5.0), Dual::new(2.0, -5.0));
    assert_eq!(
        [a < b, a <= b, b > a, b >= a, a == b, a != b],
        [true, true, true, true, false, true]
    );
    assert_eq!(a.partial_cmp(&b), Some(std::cmp::Ordering::Less));
    assert_eq!(Dual::new(1.0, 5.0), Dual::new(1.0, -3.0));
    assert!(Dual::new(f64::NAN, 0.0).partial_cmp(&a).is_none());
    let (p, q): (D2, D2) = (
        Dual::new(Dual::new(1.0, 7.0), Dual::new(3.0, 1.0)),
        Dual::new(Dual::new(1.0, 0.0), Dual::new(0.0, 0.0)),
    );
    assert_eq!([p == q, p <= q, p >= q, p < q], [true, true, true, false]);
    assert!(Dual::new(Dual::new(0.5, 9.0), Dual::new(9.0, 9.0)) < q);
}

/// `x => expression with plain f64 operands; value, derivative, second derivative`.
macro_rules! mixed_arithmetic {
    ($at:ident = $x0:expr; $($x:ident => $e:expr, [$($want:expr),+];)+) => {{
        let $at: f64 = $x0;
        $(
            let want = [$($want),+];
            let Levels { f1, f2 } = levels!(|$x| $e);
            check_unary_level(f1, $at, &want, stringify!($e));
            check_unary_level(f2, $at, &want, stringify!($e));
        )+
    }};
}

#[test]
fn arithmetic_with_plain_f64_on_either_side() {
    mixed_arithmetic! { x = 1.5;
        x => 2.0 * x, [3.0, 2.0, 0.0];
        x => x * 2.0, [3.0, 2.0, 0.0];
        x => x + 1.0, [2.5, 1.0, 0.0];
        x => 1.0 + x, [2.5, 1.0, 0.0];
        x => 1.0 - x, [-0.5, -1.0, 0.0];
        x => x - 1.0, [0.5, 1.0, 0.0];
        x => 3.0 / x, [2.0, -3.0 / (x * x), 6.0 / x.powi(3)];
        x => x / 2.0, [0.75, 0.5, 0.0];
        x => { let mut y = x; y += 1.0; y *= 4.0; y -= 2.0; y /= 8.0; y }, [1.0, 0.5, 0.0];
    }
}

#[test]
fn a_tie_of_two_equal_infinities_is_that_infinity() {
    // The tie's mean b − (b − a)/2 was once ∞ − NaN = NaN, where f64 says ∞.
    let inf = f64::INFINITY;
    for (a, want) in [(inf, inf), (-inf, -inf)] {
        for f in [|a: D1, b: D1| a.max(b), |a: D1, b: D1| a.min(b)] {
            assert_eq!(grad(f, a, a).0, want);
        }
        type V = mixad::reverse::Var<f64>;
        for f in [|a: V, b: V| a.max(b), |a: V, b: V| a.min(b)] {
            let y = mixad::reverse::value_and_gradient(|v| f(v[0], v[1]), &[a, a]).0;
            assert_eq!(y, want);
        }
        let y: D2 = Float::max(D2::variable(D1::variable(a)), D2::variable(D1::variable(a)));
        assert_eq!(y.value.value, want);
    }
}

#[test]
fn abs_sub_is_fdim_at_its_edges() {
    #[allow(deprecated)]
    fn f<T: Float>(a: T, b: T) -> T {
        a.abs_sub(b)
    }
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    // Values as f64's abs_sub (C's fdim) gives them, NaN included.
    for (a, b) in [
        (3.0, 1.0),
        (1.0, 3.0),
        (2.0, 2.0),
        (-0.0, 0.0),
        (inf, inf),
        (inf, 1.0),
        (1.0, inf),
        (nan, 1.0),
        (1.0, nan),
        (nan, nan),
    ] {
        #[allow(deprecated)]
        let want = a.abs_sub(b);
        let same = |y: f64| y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan());
        let forward = grad(f::<D1>, a, b).0;
        let reverse = mixad::reverse::value_and_gradient(|v| f(v[0], v[1]), &[a, b]).0;
        let nested: D2 = f(D2::variable(D1::variable(a)), D2::constant(D1::constant(b)));
        assert!(
            same(forward) && same(reverse) && same(nested.value.value),
            "abs_sub({a}, {b}): f64 {want}, forward {forward}, reverse {reverse}, nested {}",
            nested.value.value
        );
    }
    // At the tie, the max convention: partials ½ and −½; so d/dx abs_sub(2x, x + 1) at
    // x = 1 is (2 − 1)/2, with no curvature, at every level.
    assert_eq!(grad(f::<D1>, 2.0, 2.0), (0.0, 0.5, -0.5));
    fn tie<T: Float>(x: T) -> T {
        f(x + x, x + T::one())
    }
    assert_eq!(d1(tie::<D1>, 1.0), (0.0, 0.5));
    assert_eq!(second(tie::<D2>, 1.0), [0.0, 0.5, 0.5, 0.0]);
    // A NaN argument gives NaN partials, not a silent 0.
    let (_, da, db) = grad(f::<D1>, nan, 1.0);
    assert!(da.is_nan() && db.is_nan());
}
