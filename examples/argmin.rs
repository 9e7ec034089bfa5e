//! argmin's Newton and trust-region solvers on Rosenbrock, with the cost written once as
//! generic code and its gradient and Hessian computed by mixad (`mixad::argmin`).
//!
//! Run: `cargo run --release --features argmin --example argmin`

use std::time::Instant;

use argmin::core::observers::{Observe, ObserverMode};
use argmin::core::{Error, Executor, Gradient, IterState, OptimizationResult, State, KV};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::newton::{Newton, NewtonCG};
use argmin::solver::trustregion::{Dogleg, Steihaug, TrustRegion};
use mixad::argmin::AutoDiff;
use mixad::Function;
use num_traits::Float;

/// Extended Rosenbrock `Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²`, plain generic code.
fn rosenbrock<T: Float>(x: &[T]) -> T {
    let (one, hundred) = (T::one(), T::from(100.0).unwrap());
    x.windows(2).fold(T::zero(), |s, w| {
        s + hundred * (w[1] - w[0] * w[0]).powi(2) + (one - w[0]).powi(2)
    })
}

/// The cost argmin sees. This impl is all the derivative code there is.
struct Rosenbrock;
impl Function for Rosenbrock {
    fn eval<T: mixad::Scalar>(&self, x: &[T]) -> T {
        rosenbrock(x)
    }
}

/// argmin's state with parameter and gradient `Vec<f64>` and Hessian `H`.
type St<H> = IterState<Vec<f64>, Vec<f64>, (), H, (), f64>;

/// Prints one line per iteration of a 2-D run: the point and the cost there (computed
/// here: argmin's `Newton` never evaluates the cost).
struct Table;
impl<H> Observe<St<H>> for Table {
    fn observe_init(&mut self, name: &str, _state: &St<H>, _kv: &KV) -> Result<(), Error> {
        println!("  {name}");
        println!(
            "  {:>4}  {:>12}  {:>12}  {:>11}",
            "iter", "x0", "x1", "f(x)"
        );
        Ok(())
    }
    fn observe_iter(&mut self, state: &St<H>, _kv: &KV) -> Result<(), Error> {
        let x = state.get_param().expect("the solvers keep the point");
        let f = rosenbrock(x);
        println!(
            "  {:>4}  {:>12.8}  {:>12.8}  {f:>11.3e}",
            state.get_iter(),
            x[0],
            x[1]
        );
        Ok(())
    }
}

/// Two summary lines: iterations, why it stopped, distance to the minimum, evaluations.
fn report<C: Function, H, S>(
    label: &str,
    result: &OptimizationResult<AutoDiff<C, H>, S, St<H>>,
    seconds: f64,
) -> Result<(), Error> {
    let state = result.state();
    let x = state.get_best_param().expect("a best point");
    let problem = result
        .problem
        .problem
        .as_ref()
        .expect("the problem is returned");
    let grad_norm = problem
        .gradient(x)?
        .iter()
        .map(|g| g * g)
        .sum::<f64>()
        .sqrt();
    let off = x.iter().map(|xi| (xi - 1.0).abs()).fold(0.0, f64::max);
    let count = |k: &str| result.problem.counts.get(k).copied().unwrap_or(0);
    println!(
        "  {label:<26} {:>3} iterations ({}): f = {:.1e}, ‖∇f‖ = {grad_norm:.1e}, \
         max|xᵢ − 1| = {off:.1e}",
        state.get_iter(),
        state
            .get_termination_reason()
            .map_or("not terminated", |r| r.text()),
        rosenbrock(x),
    );
    println!(
        "  {:<26} {} costs, {} gradients, {} Hessians, {} re-recordings, {:.1} ms",
        "",
        count("cost_count"),
        count("gradient_count"),
        count("hessian_count"),
        problem.rerecord_count(),
        seconds * 1e3,
    );
    Ok(())
}

/// argmin's trust region has no convergence test of its own: it stops at `max_iters` or
/// at a target cost, so the runs below give it a target of 1e-20 (the minimum is 0).
const TARGET: f64 = 1e-20;

fn main() -> Result<(), Error> {
    println!(
        "Rosenbrock 100 (y − x²)² + (1 − x)² from (−1.2, 1); the minimum is f = 0 at (1, 1).\n"
    );
    let start = vec![-1.2, 1.0];

    // Newton: x ← x − H⁻¹∇f, no line search. argmin inverts the Hessian, so it gets a
    // `DenseHessian` (`.invertible()`); a prepared Hessian reuses one recording.
    let problem = AutoDiff::prepared(Rosenbrock, mixad::Options::default()).invertible();
    let t = Instant::now();
    let res = Executor::new(problem, Newton::<f64>::new())
        .configure(|s| s.param(start.clone()).max_iters(8))
        .add_observer(Table, ObserverMode::Always)
        .run()?;
    report("Newton (8 steps)", &res, t.elapsed().as_secs_f64())?;
    println!();

    // Trust region with Steihaug's truncated CG: only products with the Hessian, so the
    // plain `Vec<Vec<f64>>` Hessian of `AutoDiff::new` does.
    let t = Instant::now();
    let solver = TrustRegion::new(Steihaug::new());
    let res = Executor::new(AutoDiff::new(Rosenbrock), solver)
        .configure(|s| s.param(start.clone()).max_iters(100).target_cost(TARGET))
        .add_observer(Table, ObserverMode::Always)
        .run()?;
    report("trust region (Steihaug)", &res, t.elapsed().as_secs_f64())?;
    println!();

    // Trust region with the dogleg step, which inverts the Hessian.
    let t = Instant::now();
    let solver: TrustRegion<Dogleg<f64>, f64> = TrustRegion::new(Dogleg::new());
    let res = Executor::new(AutoDiff::new(Rosenbrock).invertible(), solver)
        .configure(|s| s.param(start.clone()).max_iters(100).target_cost(TARGET))
        .run()?;
    report("trust region (dogleg)", &res, t.elapsed().as_secs_f64())?;

    // Newton-CG with a Moré–Thuente line search. In argmin 0.11 its inner CG stops when
    // ‖r‖² ≤ min(½, √‖∇f‖)·‖∇f‖, which holds after one CG step once ‖∇f‖ < 1: near the
    // minimum its steps are scaled steepest descent, and it creeps along the valley.
    let t = Instant::now();
    let solver = NewtonCG::new(MoreThuenteLineSearch::new());
    let res = Executor::new(AutoDiff::new(Rosenbrock), solver)
        .configure(|s| s.param(start.clone()).max_iters(100).target_cost(TARGET))
        .run()?;
    report("Newton-CG + line search", &res, t.elapsed().as_secs_f64())?;
    Ok(())
}
