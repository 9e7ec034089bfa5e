//! Pieces shared by the benches: deterministic data, number formatting, and the command
//! line (criterion's filter, and `MIXAD_RATIOS` choosing criterion, the ratio table, or
//! both).

// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use num_dual::DualNum;
use num_traits::Float;

/// Knuth's MMIX LCG; the top 53 bits give a uniform in [−1, 1).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next uniform number in [−1, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Microseconds with as many decimals as the magnitude warrants.
pub fn fmt_us(us: f64) -> String {
    if us < 1.0 {
        format!("{us:.3}")
    } else if us < 100.0 {
        format!("{us:.2}")
    } else {
        format!("{us:.0}")
    }
}

/// What the command line asks of a bench.
pub struct BenchArgs {
    /// Criterion's filter (the first positional argument), if any.
    pub filter: Option<String>,
    /// Run criterion's groups (`MIXAD_RATIOS` is not `only`).
    pub criterion: bool,
    /// Print the ratio table afterwards (not `--test`/`--list`, `MIXAD_RATIOS` is not `0`).
    pub ratios: bool,
}

/// Reads the command line and `MIXAD_RATIOS`.
pub fn bench_args() -> BenchArgs {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The first positional argument is criterion's filter; flags taking a value are
    // skipped with their value.
    let mut filter = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a.starts_with("--") {
            let takes_value = !matches!(
                a.as_str(),
                "--bench"
                    | "--test"
                    | "--list"
                    | "--exact"
                    | "--verbose"
                    | "--quiet"
                    | "--noplot"
                    | "--ignored"
                    | "--discard-baseline"
                    | "--quick"
            ) && !a.contains('=');
            if takes_value {
                it.next();
            }
        } else if !a.starts_with('-') {
            filter = Some(a.clone());
            break;
        }
    }
    let test_mode = args.iter().any(|a| a == "--test" || a == "--list");
    let ratios = std::env::var("MIXAD_RATIOS").unwrap_or_default();
    BenchArgs {
        filter,
        criterion: ratios != "only",
        ratios: !test_mode && ratios != "0",
    }
}

/// A benchmark function, written once generic over `num_traits::Float` (mixad and
/// echidna) and once for num-dual, whose dual types do not implement `num_traits::Float`.
pub trait Objective {
    fn eval<T: Float>(&self, x: &[T]) -> T;
    fn eval_num_dual<T: DualNum<Primitive = f64>>(&self, x: &[T]) -> T;
}

/// Extended Rosenbrock `Σ 100(x[i+1]−x[i]²)² + (1−x[i])²` (tridiagonal Hessian).
pub struct Rosenbrock;

impl Objective for Rosenbrock {
    fn eval<T: Float>(&self, x: &[T]) -> T {
        let one = T::one();
        let hundred = T::from(100.0).unwrap();
        let mut sum = T::zero();
        for i in 0..x.len() - 1 {
            let a = x[i + 1] - x[i] * x[i];
            let b = one - x[i];
            sum = sum + hundred * a * a + b * b;
        }
        sum
    }

    fn eval_num_dual<T: DualNum<Primitive = f64>>(&self, x: &[T]) -> T {
        let mut sum = T::from(0.0);
        for i in 0..x.len() - 1 {
            let a = x[i + 1].clone() - x[i].clone() * &x[i];
            let b = T::from(1.0) - &x[i];
            sum += a.clone() * &a * 100.0 + b.clone() * &b;
        }
        sum
    }
}

/// `ln(1 + ‖x‖²) + Σ sin(xᵢ)·xᵢ₊₁`: the logarithm makes the Hessian dense.
pub struct DenseLog;

impl Objective for DenseLog {
    fn eval<T: Float>(&self, x: &[T]) -> T {
        let mut sq = T::zero();
        for &v in x {
            sq = sq + v * v;
        }
        let mut sum = (T::one() + sq).ln();
        for i in 0..x.len() - 1 {
            sum = sum + x[i].sin() * x[i + 1];
        }
        sum
    }

    fn eval_num_dual<T: DualNum<Primitive = f64>>(&self, x: &[T]) -> T {
        let mut sq = T::from(0.0);
        for v in x {
            sq += v.clone() * v;
        }
        let mut sum = (sq + 1.0).ln();
        for i in 0..x.len() - 1 {
            sum += x[i].sin() * &x[i + 1];
        }
        sum
    }
}

/// Logistic-regression loss `Σ ln(1 + exp(−yᵢ·aᵢᵀx))`, rows of `a` stored contiguously.
pub struct Logistic {
    pub a: Vec<f64>,
    pub y: Vec<f64>,
    pub n: usize,
}

impl Logistic {
    /// `rows × n` features uniform in [−1, 1) and labels ±1, from a tiny LCG.
    pub fn new(rows: usize, n: usize, seed: u64) -> Self {
        let mut rng = Lcg(seed);
        let a = (0..rows * n).map(|_| rng.uniform()).collect();
        let y = (0..rows)
            .map(|_| if rng.uniform() >= 0.0 { 1.0 } else { -1.0 })
            .collect();
        Logistic { a, y, n }
    }
}

impl Objective for Logistic {
    fn eval<T: Float>(&self, x: &[T]) -> T {
        let one = T::one();
        let mut loss = T::zero();
        for (row, &y) in self.a.chunks_exact(self.n).zip(&self.y) {
            let mut z = T::zero();
            for j in 0..self.n {
                z = z + x[j] * T::from(row[j]).unwrap();
            }
            loss = loss + (one + (z * T::from(-y).unwrap()).exp()).ln();
        }
        loss
    }

    fn eval_num_dual<T: DualNum<Primitive = f64>>(&self, x: &[T]) -> T {
        let mut loss = T::from(0.0);
        for (row, &y) in self.a.chunks_exact(self.n).zip(&self.y) {
            let mut z = T::from(0.0);
            for j in 0..self.n {
                z += x[j].clone() * row[j];
            }
            loss += ((z * -y).exp() + 1.0).ln();
        }
        loss
    }
}
