//! Pieces shared by the benches: deterministic data, number formatting, and the command
//! line (criterion's filter, and `MIXAD_RATIOS` choosing criterion, the ratio table, or
//! both).

// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

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
