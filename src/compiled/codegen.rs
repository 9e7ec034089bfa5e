//! Machine code for a rolled program's value-and-gradient sweeps, generated with Cranelift.
//!
//! Two functions per program. The forward sweep writes node values (those read by guards,
//! outputs or later code; the rest stay in registers) into the buffer the interpreter
//! uses, so guards and outputs are read exactly as after an interpreted replay, and zeroes
//! the adjoints the reverse sweep will read from memory (no pass clears the whole buffer).
//! The reverse sweep propagates adjoints from the outputs back to the inputs. Each
//! [`Loop`] of the rolling becomes a machine loop over its iterations; straight stretches
//! become straight-line code.
//!
//! In a loop, the reverse sweep recomputes each iteration's values and partials in
//! registers before sweeping it back (a few arithmetic operations instead of storing and
//! reloading two partials per node), values and adjoints that pass from one iteration to
//! the next (a running sum's) stay in registers, and an iteration whose partials are all
//! finite runs without the zero-adjoint compare-and-select, which cannot change a bit there
//! (see [`Gen::reverse_loop`]). Straight stretches store their partials in the forward
//! sweep and keep the select.
//!
//! Nothing here states a derivative: linear steps (`+`, `−`, negation, scaling) are the
//! engine's structure, and a rule's partials come from its trace ([`super::trace`]),
//! lowered with the value lowering the rules state ([`crate::rules::ValueLowering`]).
//! A rule that cannot be traced is a call to the rule itself at `f64`. The arithmetic is
//! the interpreter's, operation for operation (no fused multiply-add, the same operand
//! order, zero adjoints skipped wherever skipping could change a bit), so compiled and
//! interpreted results agree to the bit.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, InstBuilder, MemFlagsData, SigRef, StackSlotData, StackSlotKind, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};

use super::rolling::{Loop, LoopOperand, Piece, Rolled};
use super::trace::{trace_binary, trace_unary, Expr, RuleTrace};
use crate::reverse::program::Program;
use crate::reverse::step::{Operand, Step};
use crate::rules::{Binary, Unary, ValueLowering};

/// A generated sweep, called with the buffers `(values, partials, adjoints)`.
type Sweep = unsafe extern "C" fn(*mut f64, *mut f64, *mut f64);

/// The compiled sweeps of one program, and everything their code points at.
pub(crate) struct Code {
    /// Owns the code; freed on drop.
    module: Option<JITModule>,
    forward: Sweep,
    reverse: Sweep,
    /// Nodes of the program compiled (buffer lengths the code was generated for).
    len: usize,
    /// Partials buffer, two per node (written and read for straight-line stretches only:
    /// a loop's reverse sweep recomputes its iteration's partials in registers).
    partials: Vec<f64>,
    /// The operators and per-iteration constants the code reads through pointers baked
    /// into it: kept alive, never moved (boxed slices) while the code lives.
    _unary: Box<[Unary]>,
    _binary: Box<[Binary]>,
    _tables: Vec<Box<[f64]>>,
}

// SAFETY: the generated code is immutable once finalized and reads only the buffers it is
// passed and the boxed operators and tables owned here, which are never mutated. Moving
// `Code` to another thread moves that ownership with it.
unsafe impl Send for Code {}
// SAFETY: as above; a shared `&Code` only calls `forward`/`reverse`, which take `&mut`
// buffers from the caller, so two threads never share a buffer through it.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the function pointers into this module are fields of `self`, which
            // is being dropped; nothing else holds them.
            unsafe { module.free_memory() };
        }
    }
}

impl Code {
    /// The compiled forward sweep: writes into `values` (one per node, inputs in place)
    /// every value that is read outside registers: by the guards, as an output, across
    /// iterations or stretches. Values used only where they are computed stay unwritten.
    /// Zeroes the entries of `adjoints` that [`Code::reverse`] reads from memory, except
    /// the inputs' (the caller zeroes those, then seeds the outputs).
    ///
    /// # Panics
    /// If `values` or `adjoints` does not have one entry per node of the program compiled.
    pub(crate) fn forward(&mut self, values: &mut [f64], adjoints: &mut [f64]) {
        assert_eq!(
            values.len(),
            self.len,
            "compiled sweep: value buffer length"
        );
        assert_eq!(
            adjoints.len(),
            self.len,
            "compiled sweep: adjoint buffer length"
        );
        // SAFETY: the code reads and writes `values[0..len]`, `partials[0..2·len]` and
        // `adjoints[0..len]` only (every index it uses is a node of the program it was
        // generated for, checked in-bounds at generation), and the buffers have exactly
        // those lengths.
        unsafe {
            (self.forward)(
                values.as_mut_ptr(),
                self.partials.as_mut_ptr(),
                adjoints.as_mut_ptr(),
            )
        }
    }

    /// Propagates seeded `adjoints` (one per node) back to the inputs, after
    /// [`Code::forward`] at the same `values`.
    ///
    /// # Panics
    /// If `values` or `adjoints` does not have one entry per node of the program compiled.
    pub(crate) fn reverse(&mut self, values: &[f64], adjoints: &mut [f64]) {
        assert_eq!(
            values.len(),
            self.len,
            "compiled sweep: value buffer length"
        );
        assert_eq!(
            adjoints.len(),
            self.len,
            "compiled sweep: adjoint buffer length"
        );
        // SAFETY: as in `forward`; the reverse sweep only reads `values` (the pointer is
        // `*mut` for the shared signature, nothing is written through it).
        unsafe {
            (self.reverse)(
                values.as_ptr() as *mut f64,
                self.partials.as_mut_ptr(),
                adjoints.as_mut_ptr(),
            )
        }
    }
}

/// The value of a rule's partial: static (linear steps) or computed.
#[derive(Clone, Copy)]
enum Partial {
    One,
    MinusOne,
    Constant(f64),
    /// Stored in the partials buffer by the forward sweep.
    Stored,
}

/// The operand-addressing context: where iteration `t` of the current loop is.
struct Frame<'l> {
    /// The loop being emitted, or `None` for straight-line code.
    lp: Option<LoopFrame<'l>>,
}

struct LoopFrame<'l> {
    /// The loop's body: per body node, its step and operand slots.
    body: &'l [(Step, [LoopOperand; 2])],
    start: u32,
    period: u32,
    iterations: u32,
    /// `t` as an i64 SSA value.
    t: Value,
    /// The loop's constant table, if any: its address and column count.
    table: Option<(i64, u32)>,
    /// The nodes (`first` of a `stride = period` operand, so: iteration `t − 1`) whose
    /// values (forward) or adjoints (reverse) pass between iterations in registers, and
    /// the registers holding them on entry to this iteration.
    carry: &'l [u32],
    carry_in: Vec<Value>,
    /// Whether `carry_in` holds values (forward) or adjoints (reverse).
    carries_values: bool,
}

/// Generates the two sweeps of `program`, rolled as `rolled`; `Err` carries the code
/// generator's message (an unsupported host, say).
pub(crate) fn compile(program: &Program, rolled: &Rolled) -> Result<Code, String> {
    let backend = |e: &dyn std::fmt::Display| e.to_string();
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(|e| backend(&e))?;
    flags.set("is_pic", "false").map_err(|e| backend(&e))?;
    let isa = cranelift_native::builder()
        .map_err(|e| e.to_string())?
        .finish(settings::Flags::new(flags))
        .map_err(|e| backend(&e))?;
    let mut module = JITModule::new(JITBuilder::with_isa(
        isa,
        cranelift_module::default_libcall_names(),
    ));

    // Every operator the code points at (the steps' and those inside their traces) and
    // every table, boxed before any pointer into them is taken.
    let mut unary = Vec::new();
    let mut binary = Vec::new();
    for i in program.inputs() + 1..program.len() {
        match program.step(i) {
            Step::Unary(op) if !unary.contains(&op) => unary.push(op),
            Step::Binary(op) if !binary.contains(&op) => binary.push(op),
            _ => {}
        }
    }
    let unary_traces: HashMap<Unary, Option<RuleTrace>> =
        unary.iter().map(|&op| (op, trace_unary(op))).collect();
    let binary_traces: HashMap<Binary, Option<RuleTrace>> =
        binary.iter().map(|&op| (op, trace_binary(op))).collect();
    for t in unary_traces
        .values()
        .chain(binary_traces.values())
        .flatten()
    {
        for e in &t.exprs {
            match *e {
                Expr::Unary(op, _) if !unary.contains(&op) => unary.push(op),
                Expr::Binary(op, _, _) if !binary.contains(&op) => binary.push(op),
                _ => {}
            }
        }
    }
    let unary: Box<[Unary]> = unary.into();
    let binary: Box<[Binary]> = binary.into();
    let tables: Vec<Box<[f64]>> = rolled
        .loops()
        .map(|l| l.table.clone().into_boxed_slice())
        .collect();
    let gen = Gen {
        program,
        unary_at: unary
            .iter()
            .map(|op| (*op, op as *const Unary as i64))
            .collect(),
        binary_at: binary
            .iter()
            .map(|op| (*op, op as *const Binary as i64))
            .collect(),
        unary_traces,
        binary_traces,
        tables: tables.iter().map(|t| t.as_ptr() as i64).collect(),
        refs: reference_counts(program),
        outputs: {
            let mut o = vec![false; program.len()];
            for i in program.output_nodes() {
                o[i as usize] = true;
            }
            o
        },
        guarded: {
            let mut g = vec![false; program.len()];
            for i in program.guard_nodes() {
                g[i as usize] = true;
            }
            g
        },
        ptr: module.target_config().pointer_type(),
    };

    let forward = gen.define(&mut module, "forward", rolled, Direction::Forward)?;
    let reverse = gen.define(&mut module, "reverse", rolled, Direction::Reverse)?;
    module.finalize_definitions().map_err(|e| backend(&e))?;
    // SAFETY: both functions were defined above with the signature
    // `extern "C" fn(*mut f64, *mut f64, *mut f64)` (three pointer parameters, no result),
    // which is what `Sweep` is.
    let (forward, reverse) = unsafe {
        (
            std::mem::transmute::<*const u8, Sweep>(module.get_finalized_function(forward)),
            std::mem::transmute::<*const u8, Sweep>(module.get_finalized_function(reverse)),
        )
    };
    Ok(Code {
        module: Some(module),
        forward,
        reverse,
        len: program.len(),
        partials: vec![0.0; 2 * program.len()],
        _unary: unary,
        _binary: binary,
        _tables: tables,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Forward,
    Reverse,
}

/// What code generation needs to know besides the program.
struct Gen<'a> {
    program: &'a Program,
    unary_at: HashMap<Unary, i64>,
    binary_at: HashMap<Binary, i64>,
    unary_traces: HashMap<Unary, Option<RuleTrace>>,
    binary_traces: HashMap<Binary, Option<RuleTrace>>,
    /// Per loop (in order), the address of its constant table.
    tables: Vec<i64>,
    /// Per node, how many operand slots read it, whether it is an output, and whether a
    /// guard reads its value.
    refs: Vec<u32>,
    outputs: Vec<bool>,
    guarded: Vec<bool>,
    ptr: cranelift_codegen::ir::Type,
}

/// Call signatures of the rule thunks, imported once per function.
struct Sigs {
    unary_value: SigRef,
    binary_value: SigRef,
    unary_rule: SigRef,
    binary_rule: SigRef,
}

const FLAGS: MemFlagsData = MemFlagsData::trusted();

impl Gen<'_> {
    fn define(
        &self,
        module: &mut JITModule,
        name: &str,
        rolled: &Rolled,
        direction: Direction,
    ) -> Result<cranelift_module::FuncId, String> {
        let mut ctx = module.make_context();
        for _ in 0..3 {
            ctx.func.signature.params.push(AbiParam::new(self.ptr));
        }
        let mut fbc = FunctionBuilderContext::new();
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fbc);
            let sig = |params: &[cranelift_codegen::ir::Type], ret: bool| {
                let mut s = module.make_signature();
                s.params.extend(params.iter().map(|&t| AbiParam::new(t)));
                if ret {
                    s.returns.push(AbiParam::new(F64));
                }
                s
            };
            let p = self.ptr;
            let sigs = Sigs {
                unary_value: b.import_signature(sig(&[p, F64], true)),
                binary_value: b.import_signature(sig(&[p, F64, F64], true)),
                unary_rule: b.import_signature(sig(&[p, F64, p], true)),
                binary_rule: b.import_signature(sig(&[p, F64, F64, p], true)),
            };
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let params = b.block_params(entry);
            let bufs = Buffers {
                values: params[0],
                partials: params[1],
                adjoints: params[2],
                scratch: {
                    let slot = b.create_sized_stack_slot(StackSlotData::new(
                        StackSlotKind::ExplicitSlot,
                        16,
                        3,
                    ));
                    b.ins().stack_addr(p, slot, 0)
                },
            };
            match direction {
                Direction::Forward => {
                    let mut table = 0;
                    for piece in &rolled.pieces {
                        match piece {
                            Piece::Straight { start, end } => {
                                self.forward_straight(&mut b, &sigs, &bufs, *start, *end)
                            }
                            Piece::Loop(l) => {
                                let addr = (l.columns > 0).then(|| (self.tables[table], l.columns));
                                table += 1;
                                self.forward_loop(&mut b, &sigs, &bufs, l, addr);
                            }
                        }
                    }
                }
                Direction::Reverse => {
                    let mut table = rolled.loops().count();
                    for piece in rolled.pieces.iter().rev() {
                        match piece {
                            Piece::Straight { start, end } => {
                                let frame = Frame { lp: None };
                                let local = self.straight_locals(*start, *end);
                                let group = Group {
                                    base: *start,
                                    local: &local,
                                };
                                let (mut acc, mut next) = (HashMap::new(), HashMap::new());
                                // No finiteness check here: zero adjoints always skip.
                                for i in (*start..*end).rev() {
                                    self.reverse_node(
                                        &mut b, &frame, &group, &mut acc, &mut next, &bufs, i, i,
                                        None, true,
                                    );
                                }
                            }
                            Piece::Loop(l) => {
                                table -= 1;
                                let addr = (l.columns > 0).then(|| (self.tables[table], l.columns));
                                self.reverse_loop(&mut b, &sigs, &bufs, l, addr);
                            }
                        }
                    }
                }
            }
            let _ = sigs;
            b.ins().return_(&[]);
            b.seal_all_blocks();
            b.finalize(module.target_config());
        }
        let id = module
            .declare_function(name, Linkage::Local, &ctx.func.signature)
            .map_err(|e| e.to_string())?;
        module
            .define_function(id, &mut ctx)
            .map_err(|e| e.to_string())?;
        module.clear_context(&mut ctx);
        Ok(id)
    }

    /// Straight-line forward code for nodes `start..end`: values kept where read outside
    /// registers, every rule partial stored for the reverse sweep, memory adjoints zeroed.
    fn forward_straight(
        &self,
        b: &mut FunctionBuilder,
        sigs: &Sigs,
        bufs: &Buffers,
        start: u32,
        end: u32,
    ) {
        let frame = Frame { lp: None };
        let mut cache = HashMap::new();
        let local = self.straight_locals(start, end);
        for i in start..end {
            let (v, d) = self.forward_node(b, sigs, &frame, i, i, bufs, &mut cache);
            let local = local[(i - start) as usize];
            // A local value no guard reads never leaves registers.
            if !local || self.guarded[i as usize] {
                self.store(b, &frame, bufs.values, i, 1, 0, v);
            }
            if !local {
                let zero = b.ins().f64const(0.0);
                self.store(b, &frame, bufs.adjoints, i, 1, 0, zero);
            }
            for (k, dk) in d.into_iter().flatten().enumerate() {
                if let Some(dk) = dk {
                    self.store(b, &frame, bufs.partials, i, 2, k, dk);
                }
            }
        }
    }

    /// A forward loop over `l`: per iteration, the values read outside it (or by a guard)
    /// and what they are computed from; memory adjoints zeroed. No partials: the reverse
    /// loop recomputes them in registers.
    fn forward_loop(
        &self,
        b: &mut FunctionBuilder,
        sigs: &Sigs,
        bufs: &Buffers,
        l: &Loop,
        table: Option<(i64, u32)>,
    ) {
        let p = l.period as usize;
        let local = self.loop_locals(l);
        let keep: Vec<bool> = (0..p)
            .map(|j| {
                !local[j]
                    || (0..l.iterations as usize)
                        .any(|t| self.guarded[l.start as usize + t * p + j])
            })
            .collect();
        // What the kept values are computed from, within the iteration.
        let mut needed = keep.clone();
        for j in (0..p).rev() {
            if needed[j] {
                for s in l.body[j].1 {
                    if let Some(jj) = same_iteration(l, s) {
                        needed[jj as usize] = true;
                    }
                }
            }
        }
        // Values read by the next iteration (a running sum, say) pass to it in registers,
        // off the store-to-load path; they are stored too, for the reverse sweep.
        let carry = carried_positions(l);
        let straight = Frame { lp: None };
        let init = carry
            .iter()
            .map(|&j| {
                let at = self.address(b, &straight, bufs.values, l.start + j - l.period, 0, 1);
                b.ins().load(F64, FLAGS, at, 0)
            })
            .collect();
        let firsts: Vec<u32> = carry.iter().map(|&j| l.start + j - l.period).collect();
        self.emit_loop(
            b,
            l,
            false,
            Carry {
                firsts: &firsts,
                init,
                values: true,
            },
            |g, b, frame| {
                let mut cache = HashMap::new();
                for j in (0..l.period).filter(|&j| needed[j as usize]) {
                    let i = l.start + j;
                    let (v, _) = g.forward_node(b, sigs, frame, i, j, bufs, &mut cache);
                    if keep[j as usize] {
                        g.store(b, frame, bufs.values, i, 1, 0, v);
                    }
                    if !local[j as usize] {
                        let zero = b.ins().f64const(0.0);
                        g.store(b, frame, bufs.adjoints, i, 1, 0, zero);
                    }
                }
                carry.iter().map(|j| cache[j]).collect()
            },
            table,
        );
    }

    /// A reverse loop over `l`, last iteration first. Each iteration first recomputes its
    /// values and partials in registers (operands from other iterations or stretches are
    /// read from the value buffer), then sweeps its adjoints back.
    ///
    /// The interpreter skips a node whose adjoint is exactly zero, so that `0 · ∞` never
    /// makes a NaN. Where every partial of the iteration is finite the skip changes no bit
    /// (a skipped contribution would add `±0` to an adjoint that is never `−0`: sums start
    /// from `+0`, and only a seeded output can hold `−0`), so the iteration takes a path
    /// without the skip's compare-and-select, except into outputs; otherwise it takes the
    /// path with it.
    fn reverse_loop(
        &self,
        b: &mut FunctionBuilder,
        sigs: &Sigs,
        bufs: &Buffers,
        l: &Loop,
        table: Option<(i64, u32)>,
    ) {
        let mut local = self.loop_locals(l);
        // Adjoints the previous iteration reads (a running sum's, say) pass to it in
        // registers where nothing else addresses them.
        let carry = if self.loop_aliases(l) {
            Vec::new()
        } else {
            carried_positions(l)
        };
        for &j in &carry {
            // Within an iteration a carried adjoint lives in a register, like a local one.
            local[j as usize] = true;
        }
        let firsts: Vec<u32> = carry.iter().map(|&j| l.start + j - l.period).collect();
        let init = carry
            .iter()
            .map(|&j| {
                let node = l.start + j + l.period * (l.iterations - 1);
                let at = self.address(b, &Frame { lp: None }, bufs.adjoints, node, 0, 1);
                b.ins().load(F64, FLAGS, at, 0)
            })
            .collect();
        let out = self.emit_loop(
            b,
            l,
            true,
            Carry {
                firsts: &firsts,
                init,
                values: false,
            },
            |g, b, frame| {
                let carried_in = frame
                    .lp
                    .as_ref()
                    .map_or(&[][..], |l| &l.carry_in[..])
                    .to_vec();
                let mut cache = HashMap::new();
                let mut parts = Vec::with_capacity(l.period as usize);
                let mut computed = Vec::new();
                for j in 0..l.period {
                    let i = l.start + j;
                    let (_, d) = g.forward_node(b, sigs, frame, i, j, bufs, &mut cache);
                    if let Some(d) = d {
                        for (k, dk) in d.iter().enumerate() {
                            if let (Some(dk), Partial::Stored) = (dk, g.partial(frame, i, j, k)) {
                                computed.push(*dk);
                            }
                        }
                    }
                    parts.push(d);
                }
                let fast = b.create_block();
                let slow = b.create_block();
                let join = b.create_block();
                for _ in &carry {
                    b.append_block_param(join, F64);
                }
                match tree_sum(b, computed) {
                    None => {
                        b.ins().jump(fast, &[]);
                    }
                    Some(sum) => {
                        // `sum − sum` is 0 if the sum is finite, NaN if it is not: if any
                        // partial is infinite or NaN, or (rarely, and safely) the finite
                        // ones overflow.
                        let check = b.ins().fsub(sum, sum);
                        let finite = b.ins().fcmp(FloatCC::Ordered, check, check);
                        b.ins().brif(finite, fast, &[], slow, &[]);
                    }
                }
                let group = Group {
                    base: l.start,
                    local: &local,
                };
                for (block, skip_zeros) in [(fast, false), (slow, true)] {
                    b.switch_to_block(block);
                    let mut acc: HashMap<u32, Value> = carry
                        .iter()
                        .copied()
                        .zip(carried_in.iter().copied())
                        .collect();
                    let mut next = HashMap::new();
                    for j in (0..l.period).rev() {
                        g.reverse_node(
                            b,
                            frame,
                            &group,
                            &mut acc,
                            &mut next,
                            bufs,
                            l.start + j,
                            j,
                            parts[j as usize],
                            skip_zeros,
                        );
                    }
                    let out: Vec<BlockArg> =
                        firsts.iter().map(|f| BlockArg::from(next[f])).collect();
                    b.ins().jump(join, &out);
                }
                b.switch_to_block(join);
                b.block_params(join).to_vec()
            },
            table,
        );
        // What the first iteration added into the adjoints of the nodes before the loop.
        for (&first, v) in firsts.iter().zip(out) {
            let at = self.address(b, &Frame { lp: None }, bufs.adjoints, first, 0, 1);
            b.ins().store(FLAGS, v, at, 0);
        }
    }

    /// Whether an operand of `l` that does not move with the iterations' period addresses
    /// a node of the loop, or the period before it (which the first iteration reads as
    /// its predecessor's): then no adjoint of the loop is carried in registers, as a
    /// contribution through memory could be overwritten by the carried one.
    fn loop_aliases(&self, l: &Loop) -> bool {
        let period = l.period as i64;
        let (lo, hi) = (
            l.start as i64 - period,
            l.start as i64 + period * l.iterations as i64,
        );
        l.body.iter().flat_map(|(_, s)| s).any(|s| match *s {
            LoopOperand::Node { first, stride } if stride != period => {
                let a = first as i64;
                let b = a + stride * (l.iterations as i64 - 1);
                a.min(b) < hi && a.max(b) >= lo
            }
            // Same period, two or more iterations back: not carried by one register.
            LoopOperand::Node { first, .. } => (first as i64) < lo,
            _ => false,
        })
    }

    /// Stores `v` as entry `k` of node `i`'s `width` entries in buffer `base`.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        b: &mut FunctionBuilder,
        frame: &Frame,
        base: Value,
        i: u32,
        width: i64,
        k: usize,
        v: Value,
    ) {
        let stride = frame.lp.as_ref().map_or(0, |l| l.period as i64);
        let at = self.address(b, frame, base, i, stride, width);
        b.ins().store(FLAGS, v, at, 8 * k as i32);
    }

    /// How node `i`'s (body position `j`) partial in operand `k` is known: a constant of
    /// the step, or computed by its rule.
    fn partial(&self, frame: &Frame, i: u32, j: u32, k: usize) -> Partial {
        match self.program.step(i as usize) {
            Step::Add => Partial::One,
            Step::Sub => [Partial::One, Partial::MinusOne][k],
            Step::Neg => Partial::MinusOne,
            Step::Scale => match self.resolved_slot(frame, i, j, 1) {
                LoopOperand::Const(c) => Partial::Constant(c),
                _ => Partial::Stored,
            },
            _ => Partial::Stored,
        }
    }

    /// A machine loop over `l`'s iterations (downwards if `down`), `body` emitting one
    /// iteration at the frame's `t` and returning the values it carries to the next;
    /// returns the values carried out of the last iteration.
    fn emit_loop(
        &self,
        b: &mut FunctionBuilder,
        l: &Loop,
        down: bool,
        carry: Carry,
        body: impl FnOnce(&Self, &mut FunctionBuilder, &Frame) -> Vec<Value>,
        table: Option<(i64, u32)>,
    ) -> Vec<Value> {
        let header = b.create_block();
        let inner = b.create_block();
        let exit = b.create_block();
        b.append_block_param(header, I64);
        for _ in &carry.init {
            b.append_block_param(header, F64);
            b.append_block_param(exit, F64);
        }
        let first = b
            .ins()
            .iconst(I64, if down { l.iterations as i64 - 1 } else { 0 });
        let mut args = vec![BlockArg::from(first)];
        args.extend(carry.init.iter().map(|&v| BlockArg::from(v)));
        b.ins().jump(header, &args);
        b.switch_to_block(header);
        let t = b.block_params(header)[0];
        let carry_in = b.block_params(header)[1..].to_vec();
        let go = if down {
            b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, t, 0)
        } else {
            b.ins()
                .icmp_imm_s(IntCC::SignedLessThan, t, l.iterations as i64)
        };
        let out: Vec<BlockArg> = carry_in.iter().map(|&v| BlockArg::from(v)).collect();
        b.ins().brif(go, inner, &[], exit, &out);
        b.switch_to_block(inner);
        let frame = Frame {
            lp: Some(LoopFrame {
                body: &l.body,
                start: l.start,
                period: l.period,
                iterations: l.iterations,
                t,
                carry: carry.firsts,
                carry_in,
                carries_values: carry.values,
                table,
            }),
        };
        let carried = body(self, b, &frame);
        let next = b.ins().iadd_imm_s(t, if down { -1 } else { 1 });
        let mut args = vec![BlockArg::from(next)];
        args.extend(carried.into_iter().map(BlockArg::from));
        b.ins().jump(header, &args);
        b.switch_to_block(exit);
        b.block_params(exit).to_vec()
    }

    /// The address of node `index`'s entry in `base` (entries of `width` f64s), where
    /// `index` is `first + stride·t` in the current loop (or just `first` outside one).
    fn address(
        &self,
        b: &mut FunctionBuilder,
        frame: &Frame,
        base: Value,
        first: u32,
        stride: i64,
        width: i64,
    ) -> Value {
        let bytes = 8 * width;
        match &frame.lp {
            Some(lp) if stride != 0 => {
                let off = b.ins().imul_imm_s(lp.t, stride * bytes);
                let at = b.ins().iadd(base, off);
                b.ins().iadd_imm_s(at, first as i64 * bytes)
            }
            _ => b.ins().iadd_imm_s(base, first as i64 * bytes),
        }
    }

    /// Node `i`'s (body position `j`) value and the partials its rule computes, in
    /// registers; same-iteration operands come from `cache`, the rest from the value buffer.
    #[allow(clippy::too_many_arguments)]
    fn forward_node(
        &self,
        b: &mut FunctionBuilder,
        sigs: &Sigs,
        frame: &Frame,
        i: u32,
        j: u32,
        bufs: &Buffers,
        cache: &mut HashMap<u32, Value>,
    ) -> NodeCode {
        let (values, scratch) = (bufs.values, bufs.scratch);
        let step = self.program.step(i as usize);
        let lp = frame.lp.as_ref();
        let operand = |b: &mut FunctionBuilder, k: usize| -> Option<Value> {
            let s = self.resolved_slot(frame, i, j, k);
            Some(match s {
                LoopOperand::Unused => return None,
                LoopOperand::Const(c) => b.ins().f64const(c),
                LoopOperand::Table(c) => {
                    let (table, columns) = lp
                        .and_then(|l| l.table)
                        .expect("a table slot is in a loop with a table");
                    let base = b.ins().iconst(self.ptr, table);
                    let l = lp.expect("in a loop");
                    let row = b.ins().imul_imm_s(l.t, 8 * columns as i64);
                    let at = b.ins().iadd(base, row);
                    b.ins().load(F64, FLAGS, at, 8 * c as i32)
                }
                LoopOperand::Node { first, stride }
                    if lp.is_some_and(|l| {
                        l.carries_values && stride == l.period as i64 && l.carry.contains(&first)
                    }) =>
                {
                    // The previous iteration's value, carried in a register.
                    let l = lp.expect("checked");
                    let pos = l.carry.iter().position(|&f| f == first).expect("checked");
                    l.carry_in[pos]
                }
                LoopOperand::Node { first, stride } => {
                    // A node of the same iteration (or of straight code) computed above.
                    let same = match lp {
                        Some(l) => stride == l.period as i64 && first >= l.start,
                        None => true,
                    };
                    let key = match lp {
                        Some(l) if same => first - l.start,
                        _ => first,
                    };
                    if same {
                        if let Some(&v) = cache.get(&key) {
                            return Some(v);
                        }
                    }
                    let at = self.address(b, frame, values, first, stride, 1);
                    b.ins().load(F64, FLAGS, at, 0)
                }
            })
        };
        let a = operand(b, 0);
        let c = operand(b, 1);
        let (v, d) = match step {
            Step::Add => (b.ins().fadd(a.unwrap(), c.unwrap()), None),
            Step::Sub => (b.ins().fsub(a.unwrap(), c.unwrap()), None),
            Step::Neg => (b.ins().fneg(a.unwrap()), None),
            // The constant's value is the partial; stored, as it may vary by iteration.
            Step::Scale => (b.ins().fmul(a.unwrap(), c.unwrap()), Some([c, None])),
            Step::Unary(op) => match &self.unary_traces[&op] {
                Some(t) => {
                    let (v, d) = self.emit_trace(b, sigs, t, [a.unwrap(), a.unwrap()]);
                    (v, Some([d[0], None]))
                }
                None => {
                    let f = b.ins().iconst(self.ptr, unary_rule as *const () as i64);
                    let op = b.ins().iconst(self.ptr, self.unary_at[&op]);
                    let call =
                        b.ins()
                            .call_indirect(sigs.unary_rule, f, &[op, a.unwrap(), scratch]);
                    let v = b.inst_results(call)[0];
                    let d = b.ins().load(F64, FLAGS, scratch, 0);
                    (v, Some([Some(d), None]))
                }
            },
            Step::Binary(op) => match &self.binary_traces[&op] {
                Some(t) => {
                    let (v, d) = self.emit_trace(b, sigs, t, [a.unwrap(), c.unwrap()]);
                    (v, Some(d))
                }
                None => {
                    let f = b.ins().iconst(self.ptr, binary_rule as *const () as i64);
                    let op = b.ins().iconst(self.ptr, self.binary_at[&op]);
                    let call = b.ins().call_indirect(
                        sigs.binary_rule,
                        f,
                        &[op, a.unwrap(), c.unwrap(), scratch],
                    );
                    let v = b.inst_results(call)[0];
                    let d0 = b.ins().load(F64, FLAGS, scratch, 0);
                    let d1 = b.ins().load(F64, FLAGS, scratch, 8);
                    (v, Some([Some(d0), Some(d1)]))
                }
            },
            Step::Input
            | Step::Custom(_)
            | Step::CustomLink
            | Step::Block(_)
            | Step::BlockOutput => {
                unreachable!("programs with calls are not compiled")
            }
        };
        cache.insert(lp.map_or(i, |_| j), v);
        (v, d)
    }

    /// Emits a rule's trace on `args`; returns the value and partials.
    fn emit_trace(
        &self,
        b: &mut FunctionBuilder,
        sigs: &Sigs,
        t: &RuleTrace,
        args: [Value; 2],
    ) -> (Value, [Option<Value>; 2]) {
        let mut v: Vec<Value> = Vec::with_capacity(t.exprs.len());
        for e in &t.exprs {
            let x = match *e {
                Expr::Arg(k) => args[k as usize],
                Expr::Const(c) => b.ins().f64const(c),
                Expr::Add(p, q) => b.ins().fadd(v[p as usize], v[q as usize]),
                Expr::Sub(p, q) => b.ins().fsub(v[p as usize], v[q as usize]),
                Expr::Neg(p) => b.ins().fneg(v[p as usize]),
                Expr::Scale(p, c) => {
                    let c = b.ins().f64const(c);
                    b.ins().fmul(v[p as usize], c)
                }
                Expr::Unary(op, p) => match op.value_lowering() {
                    ValueLowering::Sqrt => b.ins().sqrt(v[p as usize]),
                    ValueLowering::Recip => {
                        let one = b.ins().f64const(1.0);
                        b.ins().fdiv(one, v[p as usize])
                    }
                    _ => {
                        let f = b.ins().iconst(self.ptr, unary_value as *const () as i64);
                        let op = b.ins().iconst(self.ptr, self.unary_at[&op]);
                        let call = b
                            .ins()
                            .call_indirect(sigs.unary_value, f, &[op, v[p as usize]]);
                        b.inst_results(call)[0]
                    }
                },
                Expr::Binary(op, p, q) => match op.value_lowering() {
                    ValueLowering::Mul => b.ins().fmul(v[p as usize], v[q as usize]),
                    ValueLowering::Div => b.ins().fdiv(v[p as usize], v[q as usize]),
                    _ => {
                        let f = b.ins().iconst(self.ptr, binary_value as *const () as i64);
                        let op = b.ins().iconst(self.ptr, self.binary_at[&op]);
                        let call = b.ins().call_indirect(
                            sigs.binary_value,
                            f,
                            &[op, v[p as usize], v[q as usize]],
                        );
                        b.inst_results(call)[0]
                    }
                },
            };
            v.push(x);
        }
        (
            v[t.value as usize],
            [
                Some(v[t.partials[0] as usize]),
                Some(v[t.partials[1] as usize]),
            ],
        )
    }

    /// Which nodes of the straight stretch `start..end` are read only inside it (and are
    /// not outputs): their adjoints live in registers during the reverse sweep.
    fn straight_locals(&self, start: u32, end: u32) -> Vec<bool> {
        let mut inside = vec![0u32; (end - start) as usize];
        for i in start..end {
            for k in 0..2 {
                if let Some(Operand::Node(a)) = self.program.slot(i as usize, k) {
                    if a >= start {
                        inside[(a - start) as usize] += 1;
                    }
                }
            }
        }
        (start..end)
            .map(|i| {
                let i = i as usize;
                !self.outputs[i] && self.refs[i] == inside[i - start as usize]
            })
            .collect()
    }

    /// Which body nodes of loop `l` are read only inside their own iteration (and are
    /// never outputs), in every iteration: their adjoints live in registers.
    fn loop_locals(&self, l: &Loop) -> Vec<bool> {
        let p = l.period as usize;
        let mut inside = vec![0u32; p];
        for (_, slots) in &l.body {
            for s in slots {
                if let Some(j) = same_iteration(l, *s) {
                    inside[j as usize] += 1;
                }
            }
        }
        (0..p)
            .map(|j| {
                (0..l.iterations as usize).all(|t| {
                    let i = l.start as usize + t * p + j;
                    !self.outputs[i] && self.refs[i] == inside[j]
                })
            })
            .collect()
    }

    /// The reverse step of node `i` (body position `j` in a loop): adds its adjoint times
    /// each partial into its operand nodes' adjoints, unless the adjoint is exactly zero
    /// (with `skip_zeros`; without it, only where the partial may not be finite or the
    /// operand is an output, see [`Gen::reverse_loop`]). Adjoints of the group's local
    /// nodes are accumulated in `acc` (registers), the rest in memory. Computed partials
    /// come from `parts` (registers) if given, else from the partials buffer.
    #[allow(clippy::too_many_arguments)]
    fn reverse_node(
        &self,
        b: &mut FunctionBuilder,
        frame: &Frame,
        group: &Group,
        acc: &mut HashMap<u32, Value>,
        next: &mut HashMap<u32, Value>,
        bufs: &Buffers,
        i: u32,
        j: u32,
        parts: NodeParts,
        skip_zeros: bool,
    ) {
        let (partials, adjoints) = (bufs.partials, bufs.adjoints);
        let lp = frame.lp.as_ref();
        let stride = lp.map_or(0, |l| l.period as i64);
        let key = i - group.base;
        let zero = b.ins().f64const(0.0);
        let a = if group.local[key as usize] {
            // Every reader of a local node comes later in the group and has been swept.
            acc.remove(&key).unwrap_or(zero)
        } else {
            let at = self.address(b, frame, adjoints, i, stride, 1);
            b.ins().load(F64, FLAGS, at, 0)
        };
        let skip = b.ins().fcmp(FloatCC::Equal, a, zero);
        for k in 0..2 {
            let slot = self.resolved_slot(frame, i, j, k);
            let LoopOperand::Node {
                first,
                stride: operand_stride,
            } = slot
            else {
                continue;
            };
            let partial = self.partial(frame, i, j, k);
            // Keep the skip where a zero adjoint's contribution could change a bit.
            let guard = skip_zeros
                || matches!(partial, Partial::Constant(c) if !c.is_finite())
                || self.may_be_output(frame, first, operand_stride);
            // The interpreter's `partial · adjoint`, operand for operand (`1 · a` is `a`).
            let prod = match partial {
                Partial::One => a,
                Partial::MinusOne => {
                    let m = b.ins().f64const(-1.0);
                    b.ins().fmul(m, a)
                }
                Partial::Constant(c) => {
                    let c = b.ins().f64const(c);
                    b.ins().fmul(c, a)
                }
                Partial::Stored => {
                    let d = match parts.and_then(|d| d[k]) {
                        Some(d) => d,
                        None => {
                            let pat = self.address(b, frame, partials, i, stride, 2);
                            b.ins().load(F64, FLAGS, pat, 8 * k as i32)
                        }
                    };
                    b.ins().fmul(d, a)
                }
            };
            let in_group = match lp {
                Some(l) => {
                    (operand_stride == l.period as i64 && first >= l.start).then(|| first - l.start)
                }
                None => (first >= group.base).then(|| first - group.base),
            };
            let carried = lp.is_some_and(|l| {
                !l.carries_values && operand_stride == l.period as i64 && l.carry.contains(&first)
            });
            match in_group {
                Some(kk) if group.local[kk as usize] => {
                    let kept = match acc.get(&kk).copied() {
                        // The first contribution: the interpreter adds it to +0, which
                        // only turns −0 into +0; without the skip that sign cannot reach
                        // memory (see `reverse_loop`), so the addition is left out.
                        None if !guard => prod,
                        // Starts from +0, as the zero-filled adjoint buffer would.
                        old => {
                            let old = old.unwrap_or(zero);
                            let new = b.ins().fadd(old, prod);
                            if guard {
                                b.ins().select(skip, old, new)
                            } else {
                                new
                            }
                        }
                    };
                    acc.insert(kk, kept);
                }
                _ if carried => {
                    // The previous iteration's adjoint, carried to it in a register; it
                    // starts from what memory holds (contributions from after the loop).
                    let old = match next.get(&first) {
                        Some(&v) => v,
                        None => {
                            let oat = self.address(b, frame, adjoints, first, operand_stride, 1);
                            b.ins().load(F64, FLAGS, oat, 0)
                        }
                    };
                    let new = b.ins().fadd(old, prod);
                    let kept = if guard {
                        b.ins().select(skip, old, new)
                    } else {
                        new
                    };
                    next.insert(first, kept);
                }
                _ => {
                    let oat = self.address(b, frame, adjoints, first, operand_stride, 1);
                    let old = b.ins().load(F64, FLAGS, oat, 0);
                    let new = b.ins().fadd(old, prod);
                    let kept = if guard {
                        b.ins().select(skip, old, new)
                    } else {
                        new
                    };
                    b.ins().store(FLAGS, kept, oat, 0);
                }
            }
        }
    }

    /// Whether the node `first + stride·t` is an output for some iteration `t` of the
    /// frame's loop (or `first` is, outside loops): its adjoint may be a seeded `−0`.
    fn may_be_output(&self, frame: &Frame, first: u32, stride: i64) -> bool {
        match &frame.lp {
            Some(l) if stride != 0 => {
                (0..l.iterations as i64).any(|t| self.outputs[(first as i64 + stride * t) as usize])
            }
            _ => self.outputs[first as usize],
        }
    }

    /// Slot `k` of node `i` (body position `j`) in this frame.
    fn resolved_slot(&self, frame: &Frame, i: u32, j: u32, k: usize) -> LoopOperand {
        match &frame.lp {
            Some(lp) => lp.body[j as usize].1[k],
            None => match self.program.slot(i as usize, k) {
                None => LoopOperand::Unused,
                Some(Operand::Node(a)) => LoopOperand::Node {
                    first: a,
                    stride: 0,
                },
                Some(Operand::Const(c)) => LoopOperand::Const(c),
            },
        }
    }
}

/// Values or adjoints passed from one iteration of a loop to the next in registers.
struct Carry<'a> {
    /// Per carried body position, the node iteration 0 reads (the `first` of the
    /// `stride = period` operand).
    firsts: &'a [u32],
    /// Their registers on entry to the first iteration swept.
    init: Vec<Value>,
    /// Values (forward) or adjoints (reverse).
    values: bool,
}

/// The body positions of `l` whose nodes the next iteration reads (operands one period
/// back), in order.
fn carried_positions(l: &Loop) -> Vec<u32> {
    let mut carried: Vec<u32> = l
        .body
        .iter()
        .flat_map(|(_, s)| s)
        .filter_map(|s| match *s {
            LoopOperand::Node { first, stride }
                if stride == l.period as i64 && first < l.start && first + l.period >= l.start =>
            {
                Some(first + l.period - l.start)
            }
            _ => None,
        })
        .collect();
    carried.sort_unstable();
    carried.dedup();
    carried
}

/// The buffers a sweep reads and writes, and a scratch slot for rule calls.
struct Buffers {
    values: Value,
    partials: Value,
    adjoints: Value,
    scratch: Value,
}

/// The partials a node's rule computes (`None` for linear steps), in registers.
type NodeParts = Option<[Option<Value>; 2]>;

/// A node's value and its rule's partials, in registers.
type NodeCode = (Value, NodeParts);

/// The sum of `terms` as a balanced tree (short dependency chains), if any.
fn tree_sum(b: &mut FunctionBuilder, mut terms: Vec<Value>) -> Option<Value> {
    while terms.len() > 1 {
        terms = terms
            .chunks(2)
            .map(|c| match *c {
                [x, y] => b.ins().fadd(x, y),
                [x] => x,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    terms.pop()
}

/// A stretch whose nodes' adjoints may live in registers: a straight piece, or one
/// iteration of a loop.
struct Group<'l> {
    /// The first node of the stretch (of the loop, for a loop).
    base: u32,
    /// Per node of the stretch (body position, for a loop), whether it is local.
    local: &'l [bool],
}

/// The body position a loop operand reads in the same iteration, if it does.
fn same_iteration(l: &Loop, s: LoopOperand) -> Option<u32> {
    match s {
        LoopOperand::Node { first, stride } if stride == l.period as i64 && first >= l.start => {
            Some(first - l.start)
        }
        _ => None,
    }
}

/// Per node, how many operand slots of the program read it.
fn reference_counts(program: &Program) -> Vec<u32> {
    let mut refs = vec![0u32; program.len()];
    for i in program.inputs() + 1..program.len() {
        for k in 0..2 {
            if let Some(Operand::Node(a)) = program.slot(i, k) {
                refs[a as usize] += 1;
            }
        }
    }
    refs
}

// --- Calls from compiled code into the rules. ---------------------------------------

/// The value of a one-argument primitive, from its rule.
extern "C" fn unary_value(op: *const Unary, x: f64) -> f64 {
    // SAFETY: compiled code passes a pointer into the boxed operators its `Code` owns.
    let op = unsafe { *op };
    op.apply(x).0
}

/// The value of a two-argument primitive, from its rule.
extern "C" fn binary_value(op: *const Binary, a: f64, b: f64) -> f64 {
    // SAFETY: as in `unary_value`.
    let op = unsafe { *op };
    op.apply(a, b).0
}

/// A one-argument rule that cannot be traced: its value, and its derivative into `*d`.
extern "C" fn unary_rule(op: *const Unary, x: f64, d: *mut f64) -> f64 {
    // SAFETY: `op` as in `unary_value`; `d` is the 16-byte stack slot of the calling
    // compiled function.
    unsafe {
        let (v, dv) = (*op).apply(x);
        *d = dv;
        v
    }
}

/// A two-argument rule that cannot be traced: its value, and its partials into `d[0..2]`.
extern "C" fn binary_rule(op: *const Binary, a: f64, b: f64, d: *mut f64) -> f64 {
    // SAFETY: as in `unary_rule`; the slot holds two f64s.
    unsafe {
        let (v, da, db) = (*op).apply(a, b);
        *d = da;
        *d.add(1) = db;
        v
    }
}
