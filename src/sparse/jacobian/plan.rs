//! The reusable sparse-Jacobian plan of one recording: pattern, colouring, direction and
//! sweep buffers, built once; each point then costs one `f64` replay plus one reverse
//! sweep per row colour, or one `DualVec` replay per `lanes` column colours.

use std::sync::Arc;

use crate::forward::tag::fresh_tag;
use crate::forward::width::MAX_LANES;
use crate::forward::DualVec;
use crate::reverse::program::{Program, Workspace};
use crate::sparse::jacobian::bipartite::{self, Bipartite, UNCOLOURED};
use crate::sparse::jacobian::pattern::{self, JacobianPattern};

/// Which sweeps a sparse Jacobian is computed by
/// ([`crate::Recording::set_jacobian_direction`]).
///
/// - `Forward`: the columns are coloured (columns sharing a row differ) and each point
///   replays the recording in `DualVec` tangent lanes, one lane per colour (16 colours
///   per replay at most); entry `(i, j)` is output `i`'s tangent in the lane of `j`'s
///   colour.
/// - `Reverse`: the rows are coloured (rows sharing a column differ); each point replays
///   the recording once at `f64` and sweeps back once per colour, seeding the outputs of
///   that colour with 1; entry `(i, j)` is input `j`'s adjoint in the sweep of `i`'s
///   colour.
/// - `Auto` (the default): the direction with fewer colours; on a tie, `Reverse` (an
///   `f64` reverse sweep per colour costs less than a lane of dual arithmetic in every
///   operation). A recording with custom rules that provide first derivatives only can
///   only go in reverse.
///
/// At points where a partial is infinite the two directions can differ where the dense
/// forward and reverse Jacobians differ (`√(x²)` at 0: forward skips the zero tangent and
/// gives 0, reverse multiplies ∞ by 0 and gives NaN); elsewhere they agree.
///
/// ```
/// use mixad::sparse::JacobianDirection;
/// use mixad::reverse::Var;
/// // Every row depends on x₀: rows cannot share a sweep, columns can.
/// let f = |x: &[Var<f64>]| (1..x.len()).map(|i| x[0] * x[i]).collect::<Vec<_>>();
/// let mut rec = mixad::record(f, &[1.0; 100]);
/// assert_eq!(rec.jacobian_direction(), JacobianDirection::Forward);
/// assert_eq!(rec.jacobian_colour_count(), 2);
/// rec.set_jacobian_direction(JacobianDirection::Reverse);
/// assert_eq!(rec.jacobian_colour_count(), 99);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JacobianDirection {
    /// The direction with fewer colours (ties: reverse).
    #[default]
    Auto,
    /// Forward sweeps in tangent lanes, one lane per column colour.
    Forward,
    /// Reverse sweeps, one per row colour.
    Reverse,
}

/// One `DualVec<f64, N>` replay's state.
struct Lanes<const N: usize> {
    workspace: Workspace<DualVec<f64, N>>,
    inputs: Vec<DualVec<f64, N>>,
}

impl<const N: usize> Lanes<N> {
    fn new() -> Self {
        Lanes {
            workspace: Workspace::new(),
            inputs: Vec::new(),
        }
    }

    /// Sweeps for colours `first..first + N`: every entry of those colours into `values`.
    fn sweep(&mut self, job: &ForwardJob<'_>, first: usize, values: &mut [f64]) {
        let tag = fresh_tag();
        self.inputs.clear();
        self.inputs
            .extend(job.x.iter().zip(job.colours).map(|(&v, &c)| {
                let mut t = [0.0; N];
                let lane = (c as usize).wrapping_sub(first);
                if c != UNCOLOURED && lane < N {
                    t[lane] = 1.0;
                }
                DualVec::tagged(v, t, tag)
            }));
        let holds = job.program.forward(&self.inputs, &mut self.workspace);
        // The guards held at this point in the f64 replay just before; what can still
        // fail is a factorisation whose generic loop rejects a matrix faer's f64 kernel
        // accepted (one on the edge of positive definiteness). Never return half a sweep.
        assert!(
            holds,
            "mixad: a factorisation that succeeded at f64 failed in a sparse Jacobian sweep \
             (a matrix on the edge of positive definiteness?)"
        );
        let p = job.pattern;
        for (i, w) in p.row_ptr().windows(2).enumerate() {
            if w[0] == w[1] {
                continue;
            }
            let y = job.program.output_at(&self.workspace, i);
            let nan = y.value.is_nan();
            let cols = &p.col_idx()[w[0]..w[1]];
            for (v, &j) in values[w[0]..w[1]].iter_mut().zip(cols) {
                let lane = (job.colours[j] as usize).wrapping_sub(first);
                if lane < N {
                    *v = if nan { f64::NAN } else { y.tangents[lane] };
                }
            }
        }
    }
}

/// What every forward sweep of one point reads.
struct ForwardJob<'a> {
    program: &'a Program,
    x: &'a [f64],
    pattern: &'a JacobianPattern,
    colours: &'a [u32],
}

/// The forward sweeps' state, for one lane count.
enum ForwardLanes {
    L1(Box<Lanes<1>>),
    L2(Box<Lanes<2>>),
    L4(Box<Lanes<4>>),
    L8(Box<Lanes<8>>),
    L16(Box<Lanes<16>>),
}

impl ForwardLanes {
    fn new(lanes: usize) -> Self {
        match lanes {
            1 => ForwardLanes::L1(Box::new(Lanes::new())),
            2 => ForwardLanes::L2(Box::new(Lanes::new())),
            3..=4 => ForwardLanes::L4(Box::new(Lanes::new())),
            5..=8 => ForwardLanes::L8(Box::new(Lanes::new())),
            _ => ForwardLanes::L16(Box::new(Lanes::new())),
        }
    }

    fn lanes(&self) -> usize {
        match self {
            ForwardLanes::L1(_) => 1,
            ForwardLanes::L2(_) => 2,
            ForwardLanes::L4(_) => 4,
            ForwardLanes::L8(_) => 8,
            ForwardLanes::L16(_) => 16,
        }
    }

    fn sweep(&mut self, job: &ForwardJob<'_>, first: usize, values: &mut [f64]) {
        match self {
            ForwardLanes::L1(l) => l.sweep(job, first, values),
            ForwardLanes::L2(l) => l.sweep(job, first, values),
            ForwardLanes::L4(l) => l.sweep(job, first, values),
            ForwardLanes::L8(l) => l.sweep(job, first, values),
            ForwardLanes::L16(l) => l.sweep(job, first, values),
        }
    }
}

/// How the plan sweeps.
enum Sweeps {
    Forward(ForwardLanes),
    Reverse {
        /// Rows of colour `c`: `rows[ptr[c]..ptr[c + 1]]`.
        ptr: Vec<usize>,
        rows: Vec<usize>,
        /// Output seeds (all 0 between sweeps) and the adjoints of the inputs.
        weights: Vec<f64>,
        grad: Vec<f64>,
    },
}

/// The sparse Jacobian's plan for one program: rebuilt when a branch guard forces a new
/// recording, or when the direction asked for changes.
pub(crate) struct JacobianPlan {
    /// Id of the program it was built for.
    program: u64,
    asked: JacobianDirection,
    pattern: Arc<JacobianPattern>,
    colouring: Bipartite,
    sweeps: Sweeps,
}

impl JacobianPlan {
    /// Detects the pattern of every output of `program`, colours it in `direction` (or the
    /// cheaper one), and prepares the sweeps (`lanes` column colours per forward sweep,
    /// `None`: chosen from the colour count).
    pub(crate) fn new(
        program: &Program,
        direction: JacobianDirection,
        lanes: Option<usize>,
    ) -> Self {
        let pattern = pattern::detect(program);
        let (col_ptr, row_idx, _) = pattern.csc();
        let columns =
            || bipartite::colour(&col_ptr, &row_idx, pattern.row_ptr(), pattern.col_idx());
        let rows = || bipartite::colour(pattern.row_ptr(), pattern.col_idx(), &col_ptr, &row_idx);
        // Forward replays evaluate every rule's partials in dual arithmetic: one order more
        // of a custom rule's derivatives than a reverse sweep.
        let forward_ok = program.custom_order_available(2);
        let (forward, colouring) = match direction {
            JacobianDirection::Forward => (true, columns()),
            JacobianDirection::Reverse => (false, rows()),
            JacobianDirection::Auto if !forward_ok => (false, rows()),
            JacobianDirection::Auto => {
                // Colour first the side whose lower bound is smaller; colour the other only
                // if its lower bound leaves it a chance to need fewer colours (this also
                // spares the quadratic cost of colouring around a dense row or column).
                let (row_bound, col_bound) = (pattern.max_row_len(), pattern.max_col_len());
                if row_bound < col_bound {
                    let c = columns();
                    if col_bound < c.count {
                        let r = rows();
                        if r.count <= c.count {
                            (false, r)
                        } else {
                            (true, c)
                        }
                    } else {
                        (true, c)
                    }
                } else {
                    let r = rows();
                    if row_bound < r.count {
                        let c = columns();
                        if c.count < r.count {
                            (true, c)
                        } else {
                            (false, r)
                        }
                    } else {
                        (false, r)
                    }
                }
            }
        };
        debug_assert!(if forward {
            bipartite::is_valid(&colouring, pattern.row_ptr(), pattern.col_idx())
        } else {
            bipartite::is_valid(&colouring, &col_ptr, &row_idx)
        });
        let sweeps = if forward {
            let lanes =
                lanes.unwrap_or_else(|| colouring.count.max(1).next_power_of_two().min(MAX_LANES));
            Sweeps::Forward(ForwardLanes::new(lanes))
        } else {
            let mut ptr = vec![0; colouring.count + 1];
            for &c in &colouring.colours {
                if c != UNCOLOURED {
                    ptr[c as usize + 1] += 1;
                }
            }
            for c in 0..colouring.count {
                ptr[c + 1] += ptr[c];
            }
            let mut fill = ptr.clone();
            let mut rows = vec![0; ptr[colouring.count]];
            for (i, &c) in colouring.colours.iter().enumerate() {
                if c != UNCOLOURED {
                    rows[fill[c as usize]] = i;
                    fill[c as usize] += 1;
                }
            }
            Sweeps::Reverse {
                ptr,
                rows,
                weights: vec![0.0; pattern.nrows()],
                grad: vec![0.0; pattern.ncols()],
            }
        };
        JacobianPlan {
            program: program.id(),
            asked: direction,
            pattern: Arc::new(pattern),
            colouring,
            sweeps,
        }
    }

    /// True if the plan was built for `program` and `direction`.
    pub(crate) fn fits(&self, program: &Program, direction: JacobianDirection) -> bool {
        self.program == program.id() && self.asked == direction
    }

    /// The pattern: the order of the values.
    pub(crate) fn pattern(&self) -> &Arc<JacobianPattern> {
        &self.pattern
    }

    /// Colours: sweeps per point (forward: lanes).
    pub(crate) fn colour_count(&self) -> usize {
        self.colouring.count
    }

    /// The direction the plan sweeps in.
    pub(crate) fn direction(&self) -> JacobianDirection {
        match self.sweeps {
            Sweeps::Forward(_) => JacobianDirection::Forward,
            Sweeps::Reverse { .. } => JacobianDirection::Reverse,
        }
    }

    /// The Jacobian at `x` into `values` (the pattern's length). `primal` holds the `f64`
    /// replay of `program` at `x` (its guards held there).
    pub(crate) fn sweep(
        &mut self,
        program: &Program,
        x: &[f64],
        primal: &mut Workspace<f64>,
        values: &mut [f64],
    ) {
        let pattern = &*self.pattern;
        debug_assert_eq!(values.len(), pattern.nnz());
        match &mut self.sweeps {
            Sweeps::Forward(lanes) => {
                let job = ForwardJob {
                    program,
                    x,
                    pattern,
                    colours: &self.colouring.colours,
                };
                let width = lanes.lanes();
                for first in (0..self.colouring.count).step_by(width) {
                    lanes.sweep(&job, first, values);
                }
            }
            Sweeps::Reverse {
                ptr,
                rows,
                weights,
                grad,
            } => {
                let (row_ptr, col_idx) = (pattern.row_ptr(), pattern.col_idx());
                for c in 0..self.colouring.count {
                    let group = &rows[ptr[c]..ptr[c + 1]];
                    // A NaN output is not seeded (its NaN would spread to the others of its
                    // colour); its row is NaN, as in the dense Jacobian.
                    for &i in group {
                        weights[i] = if program.output_at(primal, i).is_nan() {
                            0.0
                        } else {
                            1.0
                        };
                    }
                    program.backward_weighted(primal, weights, grad);
                    for &i in group {
                        let nan = weights[i] == 0.0;
                        for k in row_ptr[i]..row_ptr[i + 1] {
                            values[k] = if nan { f64::NAN } else { grad[col_idx[k]] };
                        }
                        weights[i] = 0.0;
                    }
                }
            }
        }
    }
}
