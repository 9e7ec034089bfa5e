//! Machine code for a rolled program's value-and-gradient sweeps, generated with Cranelift.
//!
//! Two functions per program. The forward sweep writes node values (those read by guards,
//! outputs or later code; the rest stay in registers) and rule partials into the same
//! buffers the interpreter uses, so guards and outputs are read exactly as after an
//! interpreted replay. The reverse sweep propagates adjoints
//! from the outputs back to the inputs. Each [`Loop`] of the rolling becomes a machine
//! loop over its iterations; straight stretches become straight-line code.
//!
//! Nothing here states a derivative: linear steps (`+`, `−`, negation, scaling) are the
//! engine's structure, and a rule's partials come from its trace ([`super::trace`]),
//! lowered with the value lowering the rules state ([`crate::rules::ValueLowering`]).
//! A rule that cannot be traced is a call to the rule itself at `f64`. The arithmetic is
//! the interpreter's, operation for operation (no fused multiply-add, the same operand
//! order, zero adjoints skipped the same way), so compiled and interpreted results agree
//! to the bit.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{
    AbiParam, InstBuilder, MemFlagsData, SigRef, StackSlotData, StackSlotKind, Value,
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

/// A generated sweep: `(buffer a, buffer b)`; forward gets `(values, partials)`, reverse
/// `(partials, adjoints)`.
type Sweep = unsafe extern "C" fn(*mut f64, *mut f64);

/// The compiled sweeps of one program, and everything their code points at.
pub(crate) struct Code {
    /// Owns the code; freed on drop.
    module: Option<JITModule>,
    forward: Sweep,
    reverse: Sweep,
    /// Nodes of the program compiled (buffer lengths the code was generated for).
    len: usize,
    /// Partials buffer, two per node.
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
    ///
    /// # Panics
    /// If `values` does not have one entry per node of the program compiled.
    pub(crate) fn forward(&mut self, values: &mut [f64]) {
        assert_eq!(
            values.len(),
            self.len,
            "compiled sweep: value buffer length"
        );
        // SAFETY: the code reads and writes `values[0..len]` and `partials[0..2·len]` only
        // (every index it uses is a node of the program it was generated for, checked
        // in-bounds at generation), and both buffers have exactly those lengths.
        unsafe { (self.forward)(values.as_mut_ptr(), self.partials.as_mut_ptr()) }
    }

    /// Propagates seeded `adjoints` (one per node) back to the inputs, after [`Code::forward`].
    ///
    /// # Panics
    /// If `adjoints` does not have one entry per node of the program compiled.
    pub(crate) fn reverse(&mut self, adjoints: &mut [f64]) {
        assert_eq!(
            adjoints.len(),
            self.len,
            "compiled sweep: adjoint buffer length"
        );
        // SAFETY: as in `forward`: the code touches `partials[0..2·len]` and
        // `adjoints[0..len]` only, and both have those lengths.
        unsafe { (self.reverse)(self.partials.as_mut_ptr(), adjoints.as_mut_ptr()) }
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
    /// `t` as an i64 SSA value.
    t: Value,
    /// The loop's constant table, if any: its address and column count.
    table: Option<(i64, u32)>,
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
    // `extern "C" fn(*mut f64, *mut f64)` (two pointer parameters, no result), which is
    // what `Sweep` is.
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
        ctx.func.signature.params.push(AbiParam::new(self.ptr));
        ctx.func.signature.params.push(AbiParam::new(self.ptr));
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
            let (a, c) = (b.block_params(entry)[0], b.block_params(entry)[1]);
            match direction {
                Direction::Forward => {
                    let scratch = b.create_sized_stack_slot(StackSlotData::new(
                        StackSlotKind::ExplicitSlot,
                        16,
                        3,
                    ));
                    let scratch = b.ins().stack_addr(p, scratch, 0);
                    let mut table = 0;
                    for piece in &rolled.pieces {
                        match piece {
                            Piece::Straight { start, end } => {
                                let frame = Frame { lp: None };
                                let mut cache = HashMap::new();
                                let local = self.straight_locals(*start, *end);
                                for i in *start..*end {
                                    // A local value no guard reads never leaves registers.
                                    let keep =
                                        !local[(i - start) as usize] || self.guarded[i as usize];
                                    self.forward_node(
                                        &mut b, &sigs, &frame, i, i, a, c, scratch, &mut cache,
                                        keep,
                                    );
                                }
                            }
                            Piece::Loop(l) => {
                                let addr = (l.columns > 0).then(|| (self.tables[table], l.columns));
                                table += 1;
                                let local = self.loop_locals(l);
                                let keep: Vec<bool> = (0..l.period as usize)
                                    .map(|j| {
                                        !local[j]
                                            || (0..l.iterations as usize).any(|t| {
                                                self.guarded
                                                    [l.start as usize + t * l.period as usize + j]
                                            })
                                    })
                                    .collect();
                                self.emit_loop(
                                    &mut b,
                                    l,
                                    false,
                                    |g, b, frame| {
                                        let mut cache = HashMap::new();
                                        for j in 0..l.period {
                                            g.forward_node(
                                                b,
                                                &sigs,
                                                frame,
                                                l.start + j,
                                                j,
                                                a,
                                                c,
                                                scratch,
                                                &mut cache,
                                                keep[j as usize],
                                            );
                                        }
                                    },
                                    addr,
                                );
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
                                let mut acc = HashMap::new();
                                for i in (*start..*end).rev() {
                                    let group = Group {
                                        base: *start,
                                        local: &local,
                                    };
                                    self.reverse_node(&mut b, &frame, &group, &mut acc, i, i, a, c);
                                }
                            }
                            Piece::Loop(l) => {
                                table -= 1;
                                let addr = (l.columns > 0).then(|| (self.tables[table], l.columns));
                                let local = self.loop_locals(l);
                                self.emit_loop(
                                    &mut b,
                                    l,
                                    true,
                                    |g, b, frame| {
                                        let mut acc = HashMap::new();
                                        let group = Group {
                                            base: l.start,
                                            local: &local,
                                        };
                                        for j in (0..l.period).rev() {
                                            g.reverse_node(
                                                b,
                                                frame,
                                                &group,
                                                &mut acc,
                                                l.start + j,
                                                j,
                                                a,
                                                c,
                                            );
                                        }
                                    },
                                    addr,
                                );
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

    /// A machine loop over `l`'s iterations (downwards if `down`), `body` emitting one
    /// iteration at the frame's `t`.
    fn emit_loop(
        &self,
        b: &mut FunctionBuilder,
        l: &Loop,
        down: bool,
        body: impl FnOnce(&Self, &mut FunctionBuilder, &Frame),
        table: Option<(i64, u32)>,
    ) {
        let header = b.create_block();
        let inner = b.create_block();
        let exit = b.create_block();
        b.append_block_param(header, I64);
        let first = b
            .ins()
            .iconst(I64, if down { l.iterations as i64 - 1 } else { 0 });
        b.ins().jump(header, &[first.into()]);
        b.switch_to_block(header);
        let t = b.block_params(header)[0];
        let go = if down {
            b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, t, 0)
        } else {
            b.ins()
                .icmp_imm_s(IntCC::SignedLessThan, t, l.iterations as i64)
        };
        b.ins().brif(go, inner, &[], exit, &[]);
        b.switch_to_block(inner);
        let frame = Frame {
            lp: Some(LoopFrame {
                body: &l.body,
                start: l.start,
                period: l.period,
                t,
                table,
            }),
        };
        body(self, b, &frame);
        let next = b.ins().iadd_imm_s(t, if down { -1 } else { 1 });
        b.ins().jump(header, &[next.into()]);
        b.switch_to_block(exit);
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

    #[allow(clippy::too_many_arguments)]
    fn forward_node(
        &self,
        b: &mut FunctionBuilder,
        sigs: &Sigs,
        frame: &Frame,
        i: u32,
        j: u32,
        values: Value,
        partials: Value,
        scratch: Value,
        cache: &mut HashMap<u32, Value>,
        store_value: bool,
    ) {
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
        let stride = lp.map_or(0, |l| l.period as i64);
        if store_value {
            let at = self.address(b, frame, values, i, stride, 1);
            b.ins().store(FLAGS, v, at, 0);
        }
        if let Some(d) = d {
            let at = self.address(b, frame, partials, i, stride, 2);
            for (k, dk) in d.into_iter().enumerate() {
                if let Some(dk) = dk {
                    b.ins().store(FLAGS, dk, at, 8 * k as i32);
                }
            }
        }
        cache.insert(lp.map_or(i, |_| j), v);
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
    /// each partial into its operand nodes' adjoints, unless the adjoint is exactly zero.
    /// Adjoints of the group's local nodes are accumulated in `acc` (registers), the rest
    /// in memory.
    #[allow(clippy::too_many_arguments)]
    fn reverse_node(
        &self,
        b: &mut FunctionBuilder,
        frame: &Frame,
        group: &Group,
        acc: &mut HashMap<u32, Value>,
        i: u32,
        j: u32,
        partials: Value,
        adjoints: Value,
    ) {
        let step = self.program.step(i as usize);
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
        let partial = |k: usize| match step {
            Step::Add => Partial::One,
            Step::Sub => [Partial::One, Partial::MinusOne][k],
            Step::Neg => Partial::MinusOne,
            Step::Scale => match self.resolved_slot(frame, i, j, 1) {
                LoopOperand::Const(c) => Partial::Constant(c),
                _ => Partial::Stored,
            },
            _ => Partial::Stored,
        };
        for k in 0..2 {
            let slot = self.resolved_slot(frame, i, j, k);
            let LoopOperand::Node {
                first,
                stride: operand_stride,
            } = slot
            else {
                continue;
            };
            // The interpreter's `partial · adjoint`, operand for operand.
            let prod = match partial(k) {
                Partial::One => {
                    let one = b.ins().f64const(1.0);
                    b.ins().fmul(one, a)
                }
                Partial::MinusOne => {
                    let m = b.ins().f64const(-1.0);
                    b.ins().fmul(m, a)
                }
                Partial::Constant(c) => {
                    let c = b.ins().f64const(c);
                    b.ins().fmul(c, a)
                }
                Partial::Stored => {
                    let pat = self.address(b, frame, partials, i, stride, 2);
                    let d = b.ins().load(F64, FLAGS, pat, 8 * k as i32);
                    b.ins().fmul(d, a)
                }
            };
            let in_group = match lp {
                Some(l) => {
                    (operand_stride == l.period as i64 && first >= l.start).then(|| first - l.start)
                }
                None => (first >= group.base).then(|| first - group.base),
            };
            match in_group {
                Some(kk) if group.local[kk as usize] => {
                    // Starts from +0, as the zero-filled adjoint buffer would.
                    let old = acc.get(&kk).copied().unwrap_or(zero);
                    let new = b.ins().fadd(old, prod);
                    let kept = b.ins().select(skip, old, new);
                    acc.insert(kk, kept);
                }
                _ => {
                    let oat = self.address(b, frame, adjoints, first, operand_stride, 1);
                    let old = b.ins().load(F64, FLAGS, oat, 0);
                    let new = b.ins().fadd(old, prod);
                    let kept = b.ins().select(skip, old, new);
                    b.ins().store(FLAGS, kept, oat, 0);
                }
            }
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
