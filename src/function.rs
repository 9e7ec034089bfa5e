//! A function written once, generic over the scalar, that every operator and mode accepts.
//!
//! Implement [`Function`] (`f: Rⁿ → R`) or [`VectorFunction`] (`F: Rⁿ → Rᵐ`) once on your
//! own type, and the same value serves every mode:
//!
//! - the one-shot operators and [`crate::record`] take a closure at one scalar type;
//!   [`Function::closure`] (or [`VectorFunction::closure`]) hands one out at whatever type
//!   the operator asks for: `mixad::gradient(f.closure(), &x)`,
//!   `mixad::hvp(f.closure(), &x, &v)`, `mixad::record(f.closure(), &x)`, …;
//! - [`crate::nested`] takes `&f` directly and evaluates it on `x` followed by the
//!   parameters it captures from the outer computation;
//! - `mixad::argmin::AutoDiff::new(f)` (cargo feature `argmin`) takes `f` as argmin's cost;
//! - [`crate::rules::CustomRule::generic`] takes a [`VectorFunction`] as the gradient of an
//!   opaque function, and [`crate::rules::VectorRuleBuilder::generic_pullback`] one as a
//!   pullback `(x, ȳ) ↦ J(x)ᵀȳ`.
//!
//! ```
//! use mixad::Function;
//! use num_traits::Float;
//!
//! /// f(x) = Σ (xᵢ − cᵢ)⁴: the data lives in the struct.
//! struct Quartic { c: Vec<f64> }
//! impl Function for Quartic {
//!     fn eval<S: mixad::Scalar>(&self, x: &[S]) -> S {
//!         x.iter().zip(&self.c).fold(S::zero(), |s, (&xi, &ci)| s + Float::powi(xi - S::cst(ci), 4))
//!     }
//! }
//!
//! let f = Quartic { c: vec![1.0, -1.0] };
//! let x = [2.0, 1.0];
//! assert_eq!(f.eval(&x), 1.0 + 16.0);
//! assert_eq!(mixad::gradient(f.closure(), &x), vec![4.0, 32.0]);       // reverse
//! assert_eq!(mixad::forward::gradient(f.closure(), &x), vec![4.0, 32.0]); // forward
//! assert_eq!(mixad::hvp(f.closure(), &x, &[1.0, 1.0]), vec![12.0, 48.0]);
//! let h = mixad::hessian(f.closure(), &x);
//! assert_eq!((h[(0, 0)], h[(0, 1)], h[(1, 1)]), (12.0, 0.0, 48.0));
//! let mut rec = mixad::record(f.closure(), &x);
//! assert_eq!(rec.gradient(&[0.0, 0.0]), vec![-4.0, 4.0]);
//! ```

use std::rc::Rc;
use std::sync::Arc;

use crate::Scalar;

/// A scalar function `f: Rⁿ → R` written once for every scalar type mixad uses (`f64`,
/// every AD number and every nesting of them). See the [module docs](self) for where it
/// is accepted.
///
/// The bound is [`Scalar`], so the body can use `S::cst(c)` for constants, nalgebra, and
/// mixad's [`crate::linalg`]; code bounded by `num_traits::Float` can be called as it is.
/// Methods that `Float` and nalgebra's `RealField` both have (such as `sin`) are written
/// `Float::sin(x)` inside a body bounded by `Scalar`.
///
/// Implemented for `&F`, `Box<F>`, `Rc<F>` and `Arc<F>` of a `Function` `F`, so a borrowed
/// or shared function is one too.
///
/// ```
/// use mixad::Function;
/// /// f(x, y) = x²y.
/// struct Product;
/// impl Function for Product {
///     fn eval<S: mixad::Scalar>(&self, x: &[S]) -> S { x[0] * x[0] * x[1] }
/// }
/// assert_eq!(mixad::gradient(Product.closure(), &[3.0, 2.0]), vec![12.0, 9.0]);
/// let jacobian_of_gradient = mixad::hessian(Product.closure(), &[3.0, 2.0]);
/// assert_eq!(jacobian_of_gradient[(0, 1)], 6.0);
/// ```
pub trait Function {
    /// `f(x)` at the scalar type `S`.
    fn eval<S: Scalar>(&self, x: &[S]) -> S;

    /// `f` as a closure at one scalar type, the form every one-shot operator and
    /// [`crate::record`] take; `S` is inferred from the operator.
    ///
    /// ```
    /// use mixad::Function;
    /// struct Cube;
    /// impl Function for Cube {
    ///     fn eval<S: mixad::Scalar>(&self, x: &[S]) -> S { x[0] * x[0] * x[0] }
    /// }
    /// assert_eq!(mixad::gradient(Cube.closure(), &[2.0]), vec![12.0]);
    /// assert_eq!(mixad::hvp(Cube.closure(), &[2.0], &[1.0]), vec![12.0]);
    /// assert_eq!(mixad::forward::derivative(|t| Cube.eval(&[t]), 2.0), 12.0);
    /// ```
    fn closure<S: Scalar>(&self) -> impl Fn(&[S]) -> S + '_ {
        move |x| self.eval(x)
    }
}

/// A vector function `F: Rⁿ → Rᵐ` written once for every scalar type, like [`Function`].
///
/// `eval` returns a new `Vec` of the `m` outputs (as the closures of
/// [`crate::jacobian`] and [`crate::record`] do); `m` must not depend on `x`. Returning a
/// vector rather than writing into a buffer keeps the body an ordinary expression, and the
/// allocation is small next to any derivative sweep.
///
/// ```
/// use mixad::VectorFunction;
/// /// F(a, b) = (a·b, a − b).
/// struct Pair;
/// impl VectorFunction for Pair {
///     fn eval<S: mixad::Scalar>(&self, x: &[S]) -> Vec<S> { vec![x[0] * x[1], x[0] - x[1]] }
/// }
/// let j = mixad::jacobian(Pair.closure(), &[2.0, 3.0]);
/// assert_eq!((j[(0, 0)], j[(0, 1)], j[(1, 0)], j[(1, 1)]), (3.0, 2.0, 1.0, -1.0));
/// let mut rec = mixad::record(Pair.closure(), &[2.0, 3.0]);
/// assert_eq!(rec.values(&[4.0, 1.0]), vec![4.0, 3.0]);
/// ```
pub trait VectorFunction {
    /// `F(x)` at the scalar type `S`: the `m` outputs.
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S>;

    /// `F` as a closure at one scalar type, the form [`crate::jacobian`],
    /// [`crate::reverse::vjp`], [`crate::forward::jvp`] and [`crate::record`] take.
    ///
    /// ```
    /// use mixad::VectorFunction;
    /// struct Swap;
    /// impl VectorFunction for Swap {
    ///     fn eval<S: mixad::Scalar>(&self, x: &[S]) -> Vec<S> { vec![x[1], x[0]] }
    /// }
    /// let (y, xbar) = mixad::reverse::vjp(Swap.closure(), &[1.0, 2.0], &[10.0, 20.0]);
    /// assert_eq!((y, xbar), (vec![2.0, 1.0], vec![20.0, 10.0]));
    /// ```
    fn closure<S: Scalar>(&self) -> impl Fn(&[S]) -> Vec<S> + '_ {
        move |x| self.eval(x)
    }
}

macro_rules! forward_impls {
    ($($ptr:ty),*) => {$(
        impl<F: Function + ?Sized> Function for $ptr {
            fn eval<S: Scalar>(&self, x: &[S]) -> S {
                (**self).eval(x)
            }
        }
        impl<F: VectorFunction + ?Sized> VectorFunction for $ptr {
            fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
                (**self).eval(x)
            }
        }
    )*};
}

forward_impls!(&F, Box<F>, Rc<F>, Arc<F>);
