//! Tests `src/sparse/pattern.rs`.
//!
//! Sparsity detection (`mixad::sparse`'s pattern) reads the rules' interaction facts:
//! linear blocks (`sum`, products with a constant factor) add no Hessian entries, `dot` of
//! two variable vectors only pairs matching entries, and every block operation's sparse
//! Hessian equals the dense one with a pattern that covers every non-zero.

use crate::common::{assert_matches_dense, random_vec, rng};
use mixad::linalg;
use mixad::reverse::Var;
use mixad::rules::{BlockOp, Interaction, Pairs};
use mixad::sparse::SparsityPattern;
use nalgebra::DMatrix;
use num_traits::Float;

type V = Var<f64>;

fn c(v: f64) -> V {
    Var::constant(v)
}

/// `Σ xᵢ³`: the diagonal, so every test function has it.
fn cubes(x: &[V]) -> V {
    x.iter().fold(c(0.0), |s, &v| s + v * v * v)
}

/// The pattern holds exactly `entries` (lower triangle, `row ≥ col`).
#[track_caller]
fn assert_exactly(p: &SparsityPattern, mut entries: Vec<(usize, usize)>, what: &str) {
    entries.sort_by_key(|&(r, col)| (col, r));
    entries.dedup();
    let got: Vec<(usize, usize)> = p
        .rows()
        .iter()
        .copied()
        .zip(p.cols().iter().copied())
        .collect();
    assert_eq!(
        got.len(),
        entries.len(),
        "{what}: {} entries, want {}",
        got.len(),
        entries.len()
    );
    assert_eq!(got, entries, "{what}: pattern");
}

fn diagonal(n: usize) -> Vec<(usize, usize)> {
    (0..n).map(|i| (i, i)).collect()
}

/// A constant `rows × cols` matrix, no entry zero.
fn constant_matrix(rows: usize, cols: usize, seed: u64) -> DMatrix<V> {
    let mut r = rng(seed);
    DMatrix::from_fn(rows, cols, |_, _| c(1.5 + r()))
}

// ---------------------------------------------------------------------------------------
// Linear blocks add nothing; bilinear blocks pair matching entries only
// ---------------------------------------------------------------------------------------

const N: usize = 100;

#[test]
fn sum_plus_cubes_is_exactly_the_diagonal() {
    let f = |x: &[V]| linalg::sum(&x.to_vec()) + cubes(x);
    let h = mixad::sparse_hessian(f, &random_vec(1, N));
    assert_exactly(h.pattern(), diagonal(N), "sum");
}

#[test]
fn dot_with_a_constant_vector_is_exactly_the_diagonal() {
    let w: Vec<V> = random_vec(2, N).into_iter().map(c).collect();
    let f = |x: &[V]| linalg::dot(&x.to_vec(), &w) + linalg::dot(&w, &x.to_vec()) + cubes(x);
    let h = mixad::sparse_hessian(f, &random_vec(3, N));
    assert_exactly(h.pattern(), diagonal(N), "dot with a constant");
}

#[test]
fn matvec_by_a_constant_matrix_is_exactly_the_diagonal() {
    let a = constant_matrix(7, N, 4);
    let f = |x: &[V]| {
        let y = linalg::matvec(&a, &x.to_vec());
        linalg::sum(&y) + cubes(x)
    };
    let h = mixad::sparse_hessian(f, &random_vec(5, N));
    assert_exactly(h.pattern(), diagonal(N), "matvec by a constant");
    // A nonlinear function of each output pairs what the output depends on: here all of x.
    let a10 = constant_matrix(3, 10, 5);
    let g = |x: &[V]| {
        let y = linalg::matvec(&a10, &x[..10].to_vec());
        y[0].sin() + cubes(x)
    };
    let h = mixad::sparse_hessian(g, &random_vec(6, N));
    let mut want = diagonal(N);
    want.extend((0..10).flat_map(|i| (0..=i).map(move |j| (i, j))));
    assert_exactly(h.pattern(), want, "sin of a matvec output");
}

#[test]
fn matmul_by_a_constant_matrix_adds_nothing() {
    // X (4 × 25, variable) times a constant 25 × 3.
    let b = constant_matrix(25, 3, 7);
    let f = |x: &[V]| {
        let xm = DMatrix::from_row_slice(4, 25, x);
        linalg::sum(&linalg::matmul(&xm, &b)) + cubes(x)
    };
    let h = mixad::sparse_hessian(f, &random_vec(8, N));
    assert_exactly(h.pattern(), diagonal(N), "matmul by a constant");
}

#[test]
fn dot_of_two_variable_halves_pairs_matching_entries() {
    let m = N / 2;
    let f = |x: &[V]| linalg::dot(&x[..m].to_vec(), &x[m..].to_vec()) + cubes(x);
    let h = mixad::sparse_hessian(f, &random_vec(9, N));
    let mut want = diagonal(N);
    want.extend((0..m).map(|i| (m + i, i)));
    assert_exactly(h.pattern(), want, "dot of two halves");
    // dot(x, x): the diagonal only.
    let g = |x: &[V]| linalg::dot(&x.to_vec(), &x.to_vec());
    let h = mixad::sparse_hessian(g, &random_vec(10, N));
    assert_exactly(h.pattern(), diagonal(N), "dot(x, x)");
}

#[test]
fn variable_matvec_and_matmul_pair_each_entry_with_its_factor() {
    // y = A x, A 3 × 4 (inputs 0..12), x (inputs 12..16); Σ y is Σᵢⱼ aᵢⱼ xⱼ.
    let f = |t: &[V]| {
        let a = DMatrix::from_row_slice(3, 4, &t[..12]);
        linalg::sum(&linalg::matvec(&a, &t[12..].to_vec()))
    };
    let h = mixad::sparse_hessian(f, &random_vec(11, 16));
    let want = (0..12).map(|k| (12 + k % 4, k)).collect();
    assert_exactly(h.pattern(), want, "Σ A x");
    // C = A B, A 2 × 3 (0..6), B 3 × 2 (6..12); Σ C pairs aᵢₖ with every bₖⱼ.
    let g = |t: &[V]| {
        let a = DMatrix::from_row_slice(2, 3, &t[..6]);
        let b = DMatrix::from_row_slice(3, 2, &t[6..]);
        linalg::sum(&linalg::matmul(&a, &b))
    };
    let h = mixad::sparse_hessian(g, &random_vec(12, 12));
    let want = (0..6)
        .flat_map(|ka| (0..2).map(move |j| (6 + (ka % 3) * 2 + j, ka)))
        .collect();
    assert_exactly(h.pattern(), want, "Σ A B");
}

#[test]
fn a_solve_by_a_constant_matrix_is_linear_and_columns_stay_apart() {
    let n = 4;
    let a = DMatrix::from_fn(n, n, |i, j| c(if i == j { 5.0 } else { 0.5 }));
    // B is 4 × 2: column 0 is inputs 0, 2, 4, 6; column 1 is 1, 3, 5, 7.
    let f = |t: &[V]| {
        let b = DMatrix::from_row_slice(n, 2, t);
        let x = linalg::solve(&a, &b).unwrap();
        linalg::sum(&x) + x[(0, 0)].powi(2) + x[(1, 1)].powi(2)
    };
    let h = mixad::sparse_hessian(f, &random_vec(13, 2 * n));
    let column = |j: usize| (0..n).map(move |r| 2 * r + j);
    let want = (0..2)
        .flat_map(|j| {
            column(j).flat_map(move |p| column(j).filter(move |&q| q <= p).map(move |q| (p, q)))
        })
        .collect();
    assert_exactly(h.pattern(), want, "solve by a constant");
}

#[test]
fn constant_entries_of_a_cholesky_factor_carry_nothing() {
    // sin of the factor's zero above the diagonal is a constant.
    let f = |t: &[V]| {
        let a = DMatrix::from_fn(2, 2, |i, j| {
            if i == j {
                t[2 * i + j] + c(4.0)
            } else {
                t[2 * i + j]
            }
        });
        let l = linalg::cholesky(&a).unwrap();
        l[(0, 1)].sin() + cubes(t)
    };
    let h = mixad::sparse_hessian(f, &random_vec(14, 4));
    assert_exactly(h.pattern(), diagonal(4), "Cholesky's upper zeros");
}

// ---------------------------------------------------------------------------------------
// Every block operation: sparse equals dense, the pattern covers every non-zero
// ---------------------------------------------------------------------------------------

/// A 3 × 3 matrix of inputs, diagonally dominant (so non-singular and, by its symmetric
/// part, positive definite for entries in `[-1, 1)`).
fn dominant(t: &[V]) -> DMatrix<V> {
    DMatrix::from_fn(3, 3, |i, j| {
        if i == j {
            t[3 * i + j] + c(4.0)
        } else {
            t[3 * i + j]
        }
    })
}

/// A vector of inputs.
fn vector(t: &[V]) -> Vec<V> {
    t.to_vec()
}

/// The outputs of each block operation on inputs `t`, with the number of inputs it reads.
/// Some inputs pass through a nonlinear map first, so both the rules' pairs and the
/// dependence they carry matter. `t` has 18 entries; the operation uses a prefix.
fn block_outputs(op: &str, t: &[V]) -> Vec<V> {
    let m = |t: &[V]| dominant(t);
    let bent: Vec<V> = t
        .iter()
        .enumerate()
        .map(|(k, &v)| if k % 4 == 3 { v + v * v * c(0.1) } else { v })
        .collect();
    let t = &bent[..];
    match op {
        "matvec" => linalg::matvec(
            &DMatrix::from_row_slice(3, 4, &t[..12]),
            &vector(&t[12..16]),
        ),
        "matvec_const_x" => {
            let x: Vec<V> = [0.5, -1.0, 2.0, 0.25].into_iter().map(c).collect();
            linalg::matvec(&DMatrix::from_row_slice(3, 4, &t[..12]), &x)
        }
        "matmul" => {
            let a = DMatrix::from_row_slice(2, 3, &t[..6]);
            let b = DMatrix::from_row_slice(3, 4, &t[6..18]);
            linalg::matmul(&a, &b).iter().copied().collect()
        }
        "dot" => vec![linalg::dot(&vector(&t[..5]), &vector(&t[5..10]))],
        "sum" => vec![linalg::sum(&vector(&t[..6]))],
        "norm" => vec![linalg::norm(&vector(&t[..5]))],
        "quad_form" => vec![linalg::quad_form(&m(&t[..9]), &vector(&t[9..12]))],
        "solve" => {
            let b = DMatrix::from_row_slice(3, 2, &t[9..15]);
            linalg::solve(&m(&t[..9]), &b)
                .unwrap()
                .iter()
                .copied()
                .collect()
        }
        "cholesky" => linalg::cholesky(&m(&t[..9]))
            .unwrap()
            .iter()
            .copied()
            .collect(),
        "cholesky_solve" => {
            let b = DMatrix::from_row_slice(3, 2, &t[9..15]);
            linalg::cholesky_solve(&m(&t[..9]), &b)
                .unwrap()
                .iter()
                .copied()
                .collect()
        }
        "log_det_spd" => vec![linalg::log_det_spd(&m(&t[..9])).unwrap()],
        "log_abs_det" => vec![linalg::log_abs_det(&m(&t[..9])).unwrap()],
        "inverse" => linalg::inverse(&m(&t[..9]))
            .unwrap()
            .iter()
            .copied()
            .collect(),
        _ => unreachable!("{op}"),
    }
}

const OPS: [&str; 13] = [
    "matvec",
    "matvec_const_x",
    "matmul",
    "dot",
    "sum",
    "norm",
    "quad_form",
    "solve",
    "cholesky",
    "cholesky_solve",
    "log_det_spd",
    "log_abs_det",
    "inverse",
];

/// Two ways to finish: a weighted sum of the outputs (only the rules' pairs contribute),
/// and a nonlinear function of some outputs (their dependence multiplies out).
fn finish(outputs: &[V], nonlinear: bool) -> V {
    outputs.iter().enumerate().fold(c(0.0), |s, (k, &y)| {
        let w = c(0.5 + 0.25 * k as f64);
        if nonlinear && k % 2 == 0 {
            s + (y * w).sin()
        } else {
            s + y * w
        }
    })
}

#[test]
fn every_block_operation_sparse_equals_dense_and_covers_its_non_zeros() {
    for op in OPS {
        for nonlinear in [false, true] {
            let f = |t: &[V]| finish(&block_outputs(op, t), nonlinear);
            for seed in 0..4 {
                let x: Vec<f64> = random_vec(100 + seed, 18).iter().map(|v| 0.8 * v).collect();
                let dense = mixad::hessian(f, &x);
                let what = format!("{op} (nonlinear finish: {nonlinear}, seed {seed})");
                assert_matches_dense(&mixad::sparse_hessian(f, &x), &dense, 1e-12, &what);
                // The pattern is detected at the first point; it covers the non-zeros at
                // every other point too.
                let mut recording = mixad::record(f, &random_vec(99, 18));
                let pattern = recording.sparsity_pattern();
                for (i, j) in (0..18).flat_map(|i| (0..18).map(move |j| (i, j))) {
                    if dense[(i, j)] != 0.0 {
                        assert!(
                            pattern.contains(i, j),
                            "{what}: the pattern at another point misses ({i}, {j})"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn block_patterns_stay_sparse_where_the_rules_say_so() {
    // The weighted sum of the outputs: only the rules' pairs (through the inputs' own
    // dependence, which is one input each, or itself for every fourth).
    let nnz = |op: &str| {
        let f = |t: &[V]| finish(&block_outputs(op, t), false);
        mixad::sparse_hessian(f, &random_vec(7, 18)).pattern().nnz()
    };
    // Diagonal entries from the bent inputs (3, 7, 11, 15) the operation reads.
    assert_eq!(nnz("sum"), 1, "sum: t₃'s own curvature");
    assert_eq!(nnz("matvec_const_x"), 3, "matvec by a constant x");
    // Σ wᵢ Σⱼ aᵢⱼ xⱼ: 12 pairs, plus the bent inputs 3, 7, 11, 15.
    assert_eq!(nnz("matvec"), 12 + 4, "matvec");
    // 5 matching pairs, plus the bent inputs 3 and 7.
    assert_eq!(nnz("dot"), 5 + 2, "dot");
}

// ---------------------------------------------------------------------------------------
// The facts themselves
// ---------------------------------------------------------------------------------------

fn all_ops() -> Vec<BlockOp> {
    let mut ops = Vec::new();
    for n in 0..4 {
        for m in 0..4 {
            ops.push(BlockOp::MatVec { rows: n, cols: m });
            ops.push(BlockOp::Solve { n, cols: m });
            ops.push(BlockOp::CholeskySolve { n, cols: m });
            for k in 0..3 {
                ops.push(BlockOp::MatMul {
                    rows: n,
                    inner: m,
                    cols: k,
                });
            }
        }
        ops.extend([
            BlockOp::Dot { len: n },
            BlockOp::Sum { len: n },
            BlockOp::Norm { len: n },
            BlockOp::QuadForm { n },
            BlockOp::Cholesky { n },
            BlockOp::LogDetSpd { n },
            BlockOp::LogAbsDet { n },
            BlockOp::Inverse { n },
        ]);
    }
    ops
}

#[test]
fn output_groups_partition_the_outputs_and_pair_only_what_they_depend_on() {
    for op in all_ops() {
        let mut seen = vec![0; op.output_len()];
        for g in op.output_groups() {
            for o in g.outputs.iter() {
                seen[o] += 1;
            }
            assert!(
                g.outputs.iter().all(|o| o >= g.outputs.start),
                "{op:?}: a group starts at its smallest output"
            );
            let depends = |p: usize| g.depends.iter().any(|d| d.contains(p));
            assert!(
                g.dependence().all(|p| p < op.input_len()),
                "{op:?}: dependence in range"
            );
            for pairs in g.pairs {
                let (p, q) = match pairs {
                    Pairs::None => continue,
                    Pairs::All(p, q) => (p, q),
                    Pairs::Zip(p, q) => {
                        assert_eq!(p.count, q.count, "{op:?}: zipped sets of one size");
                        (p, q)
                    }
                };
                assert!(
                    p.iter().chain(q.iter()).all(depends),
                    "{op:?}: {pairs:?} outside the group's dependence"
                );
            }
        }
        assert!(
            seen.iter().all(|&s| s == 1),
            "{op:?}: outputs covered once each"
        );
    }
    assert!(BlockOp::Sum { len: 5 }.is_linear());
    assert!(!BlockOp::Dot { len: 5 }.is_linear());
}

#[test]
fn block_dependence_covers_every_non_zero_partial() {
    // One output's pullback at a random point: its non-zero partials lie in the
    // group's dependence.
    let mut r = rng(21);
    for op in all_ops() {
        let n = match op {
            BlockOp::Cholesky { n }
            | BlockOp::LogDetSpd { n }
            | BlockOp::LogAbsDet { n }
            | BlockOp::Inverse { n }
            | BlockOp::QuadForm { n }
            | BlockOp::Solve { n, .. }
            | BlockOp::CholeskySolve { n, .. } => n,
            _ => 0,
        };
        let mut x: Vec<f64> = (0..op.input_len()).map(|_| r()).collect();
        for i in 0..n {
            x[i * n + i] += 4.0;
        }
        let Ok(saved) = op.forward(&x) else {
            panic!("{op:?}: fails at a dominant matrix")
        };
        for g in op.output_groups() {
            for o in g.outputs.iter() {
                let mut ybar = vec![0.0; op.output_len()];
                ybar[o] = 1.0;
                let mut xbar = vec![0.0; op.input_len()];
                op.pullback(&saved, &ybar, &mut xbar);
                for (p, &d) in xbar.iter().enumerate() {
                    if d != 0.0 {
                        assert!(
                            g.depends.iter().any(|s| s.contains(p)),
                            "{op:?}: output {o} has partial {d:e} in input {p} outside its group"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn scalar_rules_state_their_facts() {
    use mixad::rules::{Binary, Unary};
    assert_eq!(Unary::Floor.interaction(), Interaction::Constant);
    assert_eq!(Unary::Powi(0).interaction(), Interaction::Constant);
    assert!(Unary::Powi(0).is_locally_constant());
    assert_eq!(Unary::Abs.interaction(), Interaction::Linear);
    assert_eq!(Unary::Exp.interaction(), Interaction::NONLINEAR_A);
    assert_eq!(Binary::Max.interaction(), Interaction::Linear);
    assert_eq!(
        Binary::Mul.interaction(),
        Interaction::Nonlinear {
            aa: false,
            ab: true,
            bb: false
        }
    );
    assert_eq!(Binary::Hypot.interaction(), Interaction::ALL);
    assert!(!Interaction::Constant.depends());
}

/// Before the rules stated block facts, any block operation paired all its inputs; the
/// sizes of the cases of issue 13 at n = 50.
#[test]
fn pattern_sizes_at_fifty() {
    let n = 50;
    let w: Vec<V> = random_vec(2, n).into_iter().map(c).collect();
    let a = constant_matrix(5, n, 4);
    let sizes = [
        mixad::sparse_hessian(|x| linalg::sum(&x.to_vec()) + cubes(x), &random_vec(1, n)),
        mixad::sparse_hessian(
            |x| linalg::dot(&x.to_vec(), &w) + cubes(x),
            &random_vec(1, n),
        ),
        mixad::sparse_hessian(
            |x| linalg::sum(&linalg::matvec(&a, &x.to_vec())) + cubes(x),
            &random_vec(1, n),
        ),
        mixad::sparse_hessian(
            |x| linalg::dot(&x[..n / 2].to_vec(), &x[n / 2..].to_vec()) + cubes(x),
            &random_vec(1, n),
        ),
    ]
    .map(|h| h.pattern().nnz());
    println!("sum, dot with a constant, matvec by a constant, dot of halves: {sizes:?}");
    assert_eq!(sizes, [n, n, n, n + n / 2]);
}
