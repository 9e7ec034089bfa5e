//! Tests `src/reverse/` on user code as written.
//!
//! The documented limits of a source-transformation reverse-mode AD (Zygote's list:
//! array mutation, try/catch, foreign calls, mutable structs, rebinding, data-dependent
//! control flow), each written the way a Rust user writes it and differentiated by
//! mixad's reverse mode, with an exact (analytic) expected gradient.
//!
//! mixad records operations as they execute rather than transforming source, so none of
//! these needs a wrapper type or a rewrite: user functions are plain generic Rust,
//! `fn f<T: Float>(...)` (or nalgebra's `RealField` for matrix code), wherever the test
//! does not need `Var` itself.

use std::cell::Cell;
use std::os::raw::c_long;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mixad::reverse::{self, Var};
use nalgebra::{DMatrix, DVector, RealField};
use num_traits::Float;

use crate::common::{assert_close, k};

/// Rounding only.
const TOL: f64 = 1e-14;

/// Reverse-mode value and gradient of `f` at `x` against `f64` value and `want`, exactly
/// (every case below is chosen so the arithmetic is exact in binary floating point) or
/// to rounding (`tol > 0`).
#[track_caller]
fn check<F>(what: &str, f: F, x: &[f64], value: f64, want: &[f64], tol: f64)
where
    F: FnOnce(&[Var<f64>]) -> Var<f64>,
{
    let (v, g) = reverse::value_and_gradient(f, x);
    if tol == 0.0 {
        assert_eq!((v, g.as_slice()), (value, want), "{what}");
    } else {
        assert_close(&[v], &[value], tol, what);
        assert_close(&g, want, tol, what);
    }
}

// =======================================================================================
// 1. Array mutation
// =======================================================================================

/// Doubles a copy of the inputs in place, then `Σ v_i²`: gradient `8 x_i`.
fn double_in_place<T: Float>(x: &[T]) -> T {
    let mut v = x.to_vec();
    for e in v.iter_mut() {
        *e = *e * k(2.0);
    }
    v.iter().fold(T::zero(), |s, &e| s + e * e)
}

#[test]
fn doubling_a_slice_in_place() {
    let x = [0.5, -1.25, 3.0];
    let want: Vec<f64> = x.iter().map(|v| 8.0 * v).collect();
    check(
        "double",
        double_in_place,
        &x,
        double_in_place(&x),
        &want,
        0.0,
    );
    // On `Var` directly, with a plain `f64` factor and compound assignment.
    let g = reverse::gradient(
        |x| {
            let mut v = x.to_vec();
            for e in v.iter_mut() {
                *e *= 2.0;
            }
            v[0] * v[1] + v[2]
        },
        &x,
    );
    assert_eq!(g, vec![4.0 * x[1], 4.0 * x[0], 2.0]);
}

/// Mutating kernel: running sums in place, `buf[i] = y_0 + … + y_i`.
fn running_sums_mut<T: Float>(buf: &mut [T], y: &[T]) {
    buf.copy_from_slice(y);
    for i in 1..buf.len() {
        buf[i] = buf[i] + buf[i - 1];
    }
}

/// Non-mutating wrapper: allocates, calls the mutating kernel, returns `Σ S_i²`.
fn sum_of_squared_running_sums<T: Float>(y: &[T]) -> T {
    let mut buf = vec![T::zero(); y.len()];
    running_sums_mut(&mut buf, y);
    buf.iter().fold(T::zero(), |s, &e| s + e * e)
}

#[test]
fn non_mutating_function_calling_a_mutating_kernel() {
    let y = [1.0, -2.0, 0.5, 4.0];
    // ∂/∂y_j Σ_i S_i² = Σ_{i ≥ j} 2 S_i.
    let sums = [1.0, -1.0, -0.5, 3.5];
    let want: Vec<f64> = (0..4)
        .map(|j| sums[j..].iter().map(|s| 2.0 * s).sum())
        .collect();
    let value = sums.iter().map(|s| s * s).sum();
    check(
        "running sums",
        sum_of_squared_running_sums,
        &y,
        value,
        &want,
        0.0,
    );
}

/// `Σ (i + 1) v_i²`: tells apart which input ended where.
fn weighted_squares<T: Float>(v: &[T]) -> T {
    v.iter()
        .enumerate()
        .fold(T::zero(), |s, (i, &e)| s + k::<T>((i + 1) as f64) * e * e)
}

fn with_push<T: Float>(x: &[T]) -> T {
    let mut v = Vec::new();
    for &xi in x {
        v.push(xi * xi);
    }
    v.push(x[0] * x[1]);
    v.into_iter().fold(T::zero(), |s, e| s + e)
}

fn with_pop<T: Float>(x: &[T]) -> T {
    let mut v = x.to_vec();
    let last = v.pop().expect("non-empty");
    last * v.into_iter().fold(T::zero(), |s, e| s + e)
}

fn with_insert<T: Float>(x: &[T]) -> T {
    let mut v = x.to_vec();
    v.insert(1, x[0] * x[2]);
    // v = [x0, x0 x2, x1, x2], weights 1..4.
    v.iter()
        .enumerate()
        .fold(T::zero(), |s, (i, &e)| s + k::<T>((i + 1) as f64) * e)
}

fn with_swap<T: Float>(x: &[T]) -> T {
    let mut v = x.to_vec();
    v.swap(0, 2);
    weighted_squares(&v)
}

fn with_sort<T: Float>(x: &[T]) -> T {
    let mut v = x.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    weighted_squares(&v)
}

#[test]
fn vec_push_pop_insert_swap_sort() {
    let x = [3.0, -1.5, 0.5];
    let (x0, x1, x2) = (x[0], x[1], x[2]);
    type Case = (
        &'static str,
        fn(&[Var<f64>]) -> Var<f64>,
        fn(&[f64]) -> f64,
        [f64; 3],
    );
    let cases: [Case; 5] = [
        (
            "push",
            with_push,
            with_push,
            [2.0 * x0 + x1, 2.0 * x1 + x0, 2.0 * x2],
        ),
        ("pop", with_pop, with_pop, [x2, x2, x0 + x1]),
        (
            "insert",
            with_insert,
            with_insert,
            [1.0 + 2.0 * x2, 3.0, 2.0 * x0 + 4.0],
        ),
        // v = [x2, x1, x0]
        ("swap", with_swap, with_swap, [6.0 * x0, 4.0 * x1, 2.0 * x2]),
        // sorted: [x1, x2, x0]
        (
            "sort_by",
            with_sort,
            with_sort,
            [6.0 * x0, 2.0 * x1, 4.0 * x2],
        ),
    ];
    for (what, on_var, on_f64, want) in cases {
        check(what, on_var, &x, on_f64(&x), &want, 0.0);
    }
}

fn with_copy_from_slice<T: Float>(x: &[T]) -> T {
    let mut buf = [T::zero(); 4];
    buf[1..3].copy_from_slice(&x[..2]);
    buf[0] = x[2];
    buf[3] = x[0] * x[1];
    // x2 x0 + x1 x0 x1
    buf[0] * buf[1] + buf[2] * buf[3]
}

#[test]
fn copy_from_slice_into_a_buffer() {
    let x = [1.5, -2.0, 0.25];
    let want = [x[2] + x[1] * x[1], 2.0 * x[0] * x[1], x[0]];
    check(
        "copy_from_slice",
        with_copy_from_slice,
        &x,
        with_copy_from_slice(&x),
        &want,
        0.0,
    );
}

// ---------------------------------------------------------------------------------------
// In-place nalgebra updates on DMatrix<Var<f64>>
// ---------------------------------------------------------------------------------------

/// `trace(A B)` with `C = A B` written by `mul_to` into a preallocated matrix.
fn trace_of_product<T: RealField + Copy>(x: &[T]) -> T {
    let a = DMatrix::from_row_slice(2, 2, &x[..4]);
    let b = DMatrix::from_row_slice(2, 2, &x[4..8]);
    let mut c = DMatrix::zeros(2, 2);
    a.mul_to(&b, &mut c);
    c.trace()
}

/// `‖A + B‖²_F` with `A += &B` in place.
fn norm_of_sum<T: RealField + Copy>(x: &[T]) -> T {
    let mut m = DMatrix::from_row_slice(2, 2, &x[..4]);
    let n = DMatrix::from_row_slice(2, 2, &x[4..8]);
    m += &n;
    m.iter().fold(T::zero(), |s, &e| s + e * e)
}

/// `det` of `[[x0, x1], [x2, x3]]` after its second column is overwritten by
/// `(x4², x5)`: `x0 x5 − x4² x2`. `x1` and `x3` no longer matter.
fn det_after_set_column<T: RealField + Copy>(x: &[T]) -> T {
    let mut m = DMatrix::from_row_slice(2, 2, &x[..4]);
    m.set_column(1, &DVector::from_vec(vec![x[4] * x[4], x[5]]));
    m.determinant()
}

#[test]
fn nalgebra_in_place_updates() {
    let x = [1.0, 2.0, -0.5, 3.0, 0.25, -4.0, 1.5, 2.0];
    // ∂ trace(AB)/∂A_ij = B_ji and ∂/∂B_ij = A_ji (row-major: A_ij = x[2i + j]).
    let tr_want = [x[4], x[6], x[5], x[7], x[0], x[2], x[1], x[3]];
    let tr_value = x[0] * x[4] + x[1] * x[6] + x[2] * x[5] + x[3] * x[7];
    check("mul_to", trace_of_product, &x, tr_value, &tr_want, 0.0);

    let sum: Vec<f64> = (0..4).map(|i| x[i] + x[i + 4]).collect();
    let ns_want: Vec<f64> = sum.iter().chain(&sum).map(|s| 2.0 * s).collect();
    let ns_value = sum.iter().map(|s| s * s).sum();
    check("+=", norm_of_sum, &x, ns_value, &ns_want, 0.0);

    let y = &x[..6];
    let det_want = [y[5], 0.0, -y[4] * y[4], 0.0, -2.0 * y[4] * y[2], y[0]];
    let det_value = y[0] * y[5] - y[4] * y[4] * y[2];
    check(
        "set_column",
        det_after_set_column,
        y,
        det_value,
        &det_want,
        0.0,
    );
}

// =======================================================================================
// 2. Error handling
// =======================================================================================

#[derive(Clone, Debug, PartialEq)]
enum DomainError {
    NegativeSqrt(f64),
    NonPositiveLn(f64),
}

fn checked_sqrt<T: Float>(v: T) -> Result<T, DomainError> {
    if v < T::zero() {
        return Err(DomainError::NegativeSqrt(v.to_f64().expect("finite")));
    }
    Ok(v.sqrt())
}

fn checked_ln<T: Float>(v: T) -> Result<T, DomainError> {
    if v <= T::zero() {
        return Err(DomainError::NonPositiveLn(v.to_f64().expect("finite")));
    }
    Ok(v.ln())
}

/// `√x0 · ln x1`, failing through `?`.
fn fallible<T: Float>(x: &[T]) -> Result<T, DomainError> {
    let r = checked_sqrt(x[0])?;
    let l = checked_ln(x[1])?;
    Ok(r * l)
}

#[test]
fn question_mark_on_result() {
    let x = [4.0, 8.0];
    let (r, l) = (2.0, 8.0f64.ln());
    let want = [l / (2.0 * r), r / x[1]];
    let (v, g) = reverse::try_value_and_gradient(fallible, &x).expect("in the domain");
    assert_close(&[v], &[r * l], TOL, "value");
    assert_close(&g, &want, TOL, "gradient of the Ok path");
    assert_eq!(reverse::try_gradient(fallible, &x), Ok(g));

    // The Err is returned unchanged, whichever `?` produced it.
    assert_eq!(
        reverse::try_gradient(fallible, &[-1.5, 8.0]),
        Err(DomainError::NegativeSqrt(-1.5))
    );
    assert_eq!(
        reverse::try_value_and_gradient(fallible, &[4.0, -0.25]),
        Err(DomainError::NonPositiveLn(-0.25))
    );
    // And the tape is clean afterwards.
    assert_eq!(
        reverse::gradient(|v| v[0] * v[1], &[2.0, 3.0]),
        vec![3.0, 2.0]
    );
}

/// A routine that gives up (panics) when `s = x0 x1 + e^{x2}` exceeds 10, after having
/// recorded work on the tape; with `nested`, it panics inside an inner recording.
fn risky<T: Float>(x: &[T], nested: bool) -> T {
    let s = x[0] * x[1] + x[2].exp();
    if s > k(10.0) {
        if nested {
            reverse::gradient(
                |y| {
                    let _ = y[0].sin() * y[0];
                    panic!("ill-conditioned (inner)")
                },
                &[1.0],
            );
        }
        panic!("ill-conditioned");
    }
    s.sqrt()
}

/// `risky`, or `ln(s)` if it panicked.
fn with_fallback<T: Float>(x: &[T], nested: bool) -> T {
    catch_unwind(AssertUnwindSafe(|| risky(x, nested)))
        .unwrap_or_else(|_| (x[0] * x[1] + x[2].exp()).ln())
}

#[test]
fn catch_unwind_inside_the_function_differentiates_the_fallback() {
    let x = [3.0, 2.5, 1.0];
    let s = x[0] * x[1] + x[2].exp(); // 10.27…: risky panics
    let want = [x[1] / s, x[0] / s, x[2].exp() / s];
    for nested in [false, true] {
        check(
            "fallback",
            |v| with_fallback(v, nested),
            &x,
            s.ln(),
            &want,
            TOL,
        );
    }
    // Below the threshold the first formula is differentiated.
    let x = [1.0, 2.0, 0.5];
    let s = x[0] * x[1] + x[2].exp();
    let d = 0.5 / s.sqrt();
    let want = [x[1] * d, x[0] * d, x[2].exp() * d];
    check(
        "no fallback",
        |v| with_fallback(v, true),
        &x,
        s.sqrt(),
        &want,
        TOL,
    );
}

// =======================================================================================
// 3. Foreign calls
// =======================================================================================

extern "C" {
    /// C's `clock()` (`clock_t` is a `long` on the platforms this runs on).
    fn clock() -> c_long;
    /// libm's `cbrt`, standing in for any foreign numerical routine.
    fn cbrt(x: f64) -> f64;
}

/// `c · x` for a value `c` read from outside (recorded in `seen`): the derivative is `c`.
fn scaled_by<T: Float>(x: &[T], read: impl FnOnce() -> f64, seen: &Cell<f64>) -> T {
    let c = read();
    seen.set(c);
    k::<T>(c) * x[0]
}

#[test]
fn clock_value_times_x() {
    type Reader = (&'static str, fn() -> f64);
    let readers: [Reader; 2] = [
        ("libc clock()", || unsafe { clock() } as f64),
        ("SystemTime", || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs_f64()
        }),
    ];
    for (what, read) in readers {
        let seen = Cell::new(f64::NAN);
        let g = reverse::gradient(|v| scaled_by(v, read, &seen), &[0.75]);
        assert!(seen.get().is_finite(), "{what}: clock not read");
        assert_eq!(g, vec![seen.get()], "{what}: derivative is the value used");
    }
}

/// Passing only the value to a foreign routine: `cbrt(x.value())` returns a plain `f64`,
/// and wrapping it back with `Var::constant` gives a number with no derivative
/// information. The foreign code ran on a number, not on the tape, so nothing connects its
/// result to `x` and the derivative is lost: mixad cannot see inside it. (A custom-rule
/// mechanism, where the user supplies the foreign routine's derivative, comes later.) The
/// route through mixad's own `cbrt` keeps the derivative.
#[test]
fn foreign_routine_on_the_value_only_gives_a_constant() {
    let x = 8.0;
    let (v, g) =
        reverse::value_and_gradient(|x| Var::constant(unsafe { cbrt(x[0].value()) }), &[x]);
    assert_eq!((v, g), (2.0, vec![0.0]), "a constant: derivative zero");
    let (v, g) = reverse::value_and_gradient(|x| x[0].cbrt(), &[x]);
    assert_eq!((v, g), (2.0, vec![1.0 / 12.0]), "mixad's cbrt: 1/(3·4)");
}

// =======================================================================================
// 4. Mutable structs
// =======================================================================================

/// Running statistics, updated field by field.
struct Stats<T> {
    n: usize,
    sum: T,
    sum_sq: T,
}

impl<T: Float> Stats<T> {
    fn new() -> Self {
        Stats {
            n: 0,
            sum: T::zero(),
            sum_sq: T::zero(),
        }
    }

    fn push(&mut self, v: T) {
        self.n += 1;
        self.sum = self.sum + v;
        self.sum_sq = self.sum_sq + v * v;
    }

    /// Population variance.
    fn variance(&self) -> T {
        let n = k::<T>(self.n as f64);
        let mean = self.sum / n;
        self.sum_sq / n - mean * mean
    }
}

fn variance<T: Float>(x: &[T]) -> T {
    let mut stats = Stats::new();
    for &v in x {
        stats.push(v);
    }
    stats.variance()
}

/// A struct holding a `Vec` and a scalar, both updated in place through `&mut self`.
struct Layer<T> {
    weights: Vec<T>,
    bias: T,
}

impl<T: Float> Layer<T> {
    fn scale(&mut self, s: T) {
        for w in &mut self.weights {
            *w = *w * s;
        }
        self.bias = self.bias + s;
    }
}

/// `x0 x1 x3² + x2 + x3`.
fn layer_fn<T: Float>(x: &[T]) -> T {
    let mut layer = Layer {
        weights: x[..2].to_vec(),
        bias: x[2],
    };
    layer.scale(x[3]);
    layer.weights[0] * layer.weights[1] + layer.bias
}

#[test]
fn struct_fields_updated_in_place() {
    let x = [1.0, 2.5, -3.0, 0.5];
    let mean = x.iter().sum::<f64>() / 4.0;
    let want: Vec<f64> = x.iter().map(|v| 2.0 * (v - mean) / 4.0).collect();
    check("Stats", variance, &x, variance(&x), &want, TOL);

    let want = [
        x[1] * x[3] * x[3],
        x[0] * x[3] * x[3],
        1.0,
        2.0 * x[0] * x[1] * x[3] + 1.0,
    ];
    check("Layer", layer_fn, &x, layer_fn(&x), &want, 0.0);
}

// =======================================================================================
// 5. Rebinding
// =======================================================================================

/// `Σ_{1..n} xⁿ = n xⁿ` by rebinding an accumulator.
fn rebound_sum<T: Float>(x: T, n: i32) -> T {
    let mut tot = T::zero();
    for _ in 0..n {
        tot = tot + x.powi(n);
    }
    tot
}

/// A `FnMut` closure rebinding captured state, called several times:
/// `x0² + x1² + (x0 x1)²`.
fn closure_state<T: Float>(x: &[T]) -> T {
    let mut acc = T::zero();
    let mut add_square = |v: T| acc = acc + v * v;
    add_square(x[0]);
    add_square(x[1]);
    add_square(x[0] * x[1]);
    // Shadowing rebinds too.
    let acc = acc * k(0.5);
    acc + acc
}

#[test]
fn rebinding_an_accumulator_and_captured_state() {
    let (x, n) = (1.5, 5);
    // d/dx n xⁿ = n² xⁿ⁻¹.
    let want = [25.0 * 1.5f64.powi(4)];
    check(
        "tot = tot + x^n",
        |v| rebound_sum(v[0], n),
        &[x],
        rebound_sum(x, n),
        &want,
        0.0,
    );

    let x = [1.5, -2.0];
    let want = [
        2.0 * x[0] + 2.0 * x[0] * x[1] * x[1],
        2.0 * x[1] + 2.0 * x[0] * x[0] * x[1],
    ];
    check(
        "FnMut closure",
        closure_state,
        &x,
        closure_state(&x),
        &want,
        0.0,
    );
}

// =======================================================================================
// 6. Control flow
// =======================================================================================

fn branchy<T: Float>(x: &[T]) -> T {
    if x[0] > x[1] {
        x[0] * x[0] * x[1]
    } else {
        x[1].powi(3) - x[0]
    }
}

#[test]
fn if_on_values() {
    let x = [2.0, 1.5];
    check(
        "then",
        branchy,
        &x,
        branchy(&x),
        &[2.0 * x[0] * x[1], x[0] * x[0]],
        0.0,
    );
    let x = [1.0, 1.5];
    check(
        "else",
        branchy,
        &x,
        branchy(&x),
        &[-1.0, 3.0 * x[1] * x[1]],
        0.0,
    );
}

/// `√a` by Newton's iteration, stopped by a data-dependent test; counts its steps.
fn newton_sqrt<T: Float>(a: T, steps: &Cell<usize>) -> T {
    let half = k::<T>(0.5);
    let mut y = a.max(T::one());
    steps.set(0);
    while (y * y - a).abs() > k::<T>(4.0 * f64::EPSILON) * a && steps.get() < 100 {
        y = half * (y + a / y);
        steps.set(steps.get() + 1);
    }
    y
}

#[test]
fn while_loop_with_a_data_dependent_trip_count() {
    let mut trip_counts = Vec::new();
    for a in [2.0, 0.01, 1e6] {
        let steps = Cell::new(0);
        let (v, g) = reverse::value_and_gradient(|x| newton_sqrt(x[0], &steps), &[a]);
        trip_counts.push(steps.get());
        assert!(steps.get() < 100, "Newton did not converge at {a}");
        assert_close(&[v], &[a.sqrt()], 1e-15, "√a");
        let want = 0.5 / a.sqrt();
        assert!(
            (g[0] - want).abs() <= 1e-12 * want,
            "d√a/da at {a}: got {}, want {want}",
            g[0]
        );
    }
    trip_counts.dedup();
    assert!(
        trip_counts.len() > 1,
        "trip counts {trip_counts:?} should differ"
    );
}

/// Returns early from the loop at the first negative entry: `v²`; else the product.
fn early_return<T: Float>(x: &[T]) -> T {
    for &v in x {
        if v < T::zero() {
            return v * v;
        }
    }
    x.iter().fold(T::one(), |p, &v| p * v)
}

#[test]
fn early_return_from_a_loop() {
    let x = [2.0, -3.0, -5.0];
    check("early", early_return, &x, 9.0, &[0.0, -6.0, 0.0], 0.0);
    let x = [2.0, 3.0, 0.5];
    check("late", early_return, &x, 3.0, &[1.5, 1.0, 6.0], 0.0);
}
