//! C99 backend: `NAME.h`, `NAME.c` and the runtime header `modelless_rt.h`.
//!
//! Contract (pinned by issue #2): the header defines `NAME_INPUT_LEN`, `NAME_OUTPUT_LEN`
//! (or `NAME_INPUT<i>_LEN` / `NAME_OUTPUT<i>_LEN`), `NAME_ARENA_BYTES`, `NAME_ARENA_ALIGN`
//! and declares `int NAME_run(const float *input, float *output, void *arena);`.
//! Weights are `static const`; no malloc, no mutable globals, only math.h from libc.

mod blocks;
mod conv_channel_quads;
mod conv_channels;
mod dw_channels;
mod dw_quads;
mod kernels;
mod pw_block_quads;
mod qkernels;
mod simd;
mod sparse;
mod topk;
mod winograd;

pub(crate) use kernels::{batch_offsets, kernel_signature};
mod writer;

use super::{OutFile, Program, float_repr, float_repr64};
use crate::error::Result;
use crate::ir::{DType, TensorData, ValueId};
use crate::passes::Storage;
use crate::toolchain::c_type;
use writer::Writer;

const HEADER_TEMPLATE: &str = include_str!("../../../../codegen-templates/c/model.h");
const SOURCE_TEMPLATE: &str = include_str!("../../../../codegen-templates/c/model.c");
/// The runtime header shipped next to generated sources.
pub const RUNTIME_HEADER: &str = include_str!("../../../../runtime-shims/c/modelless_rt.h");

/// Emits the C sources for a planned program.
pub fn emit(p: &Program) -> Result<Vec<OutFile>> {
    p.check_dtypes()?;
    let name = &p.name;
    let prefix = name.to_ascii_uppercase();
    let params = params(p);
    let (in_lens, out_lens) = p.io_lens();
    let mut defines = String::new();
    for (kind, lens) in [("INPUT", &in_lens), ("OUTPUT", &out_lens)] {
        for (n, len) in Program::len_names(kind, lens.len()).iter().zip(lens.iter()) {
            defines.push_str(&format!("#define {prefix}_{n} {len}\n"));
        }
    }
    let banner = format!("/* {} */", p.banner);
    let header = fill(
        HEADER_TEMPLATE,
        &[
            ("BANNER", &banner),
            ("GUARD", &format!("{prefix}_H")),
            ("LEN_DEFINES", defines.trim_end()),
            ("PREFIX", &prefix),
            ("NAME", name),
            ("ARENA_BYTES", &p.arena_bytes().to_string()),
            ("ARENA_ALIGN", &p.plan.align.to_string()),
            ("PARAMS", &params),
        ],
    );
    let (kernels, packed) = kernels(p);
    // The runtime header's vector helpers (and the intrinsics headers behind them) are
    // compiled only where a kernel calls them.
    let simd = ["mlrt_acc8", "mlrt_acc16", "mlrt_rq1", "mlrt_px8", "mlrt_f8"].iter().any(|h| kernels.contains(h));
    let source = fill(
        SOURCE_TEMPLATE,
        &[
            ("BANNER", &banner),
            ("NAME", name),
            ("WEIGHTS", &weights(p, &packed)),
            ("KERNELS", &kernels),
            ("RT_OPTIONS", if simd { "#define MLRT_SIMD 1\n" } else { "" }),
            ("PARAMS", &params),
            ("BODY", &body(p, &packed)),
        ],
    );
    Ok(vec![
        OutFile { name: format!("{name}.h"), contents: header },
        OutFile { name: format!("{name}.c"), contents: source },
        OutFile { name: "modelless_rt.h".into(), contents: RUNTIME_HEADER.to_string() },
    ])
}

fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (k, v) in slots {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

fn params(p: &Program) -> String {
    let mut v: Vec<String> = vec![];
    let ni = p.graph.inputs.len();
    let no = p.graph.outputs.len();
    for (i, &x) in p.graph.inputs.iter().enumerate() {
        let t = c_type(p.graph.ty(x).dtype);
        v.push(if ni == 1 { format!("const {t} *input") } else { format!("const {t} *input{i}") });
    }
    for (i, &y) in p.graph.outputs.iter().enumerate() {
        let t = c_type(p.graph.ty(y).dtype);
        v.push(if no == 1 { format!("{t} *output") } else { format!("{t} *output{i}") });
    }
    v.push("void *arena".into());
    v.join(", ")
}

/// A C literal for element `i` of a constant.
fn c_literal(d: &TensorData, i: usize) -> String {
    match d {
        TensorData::F32(v) => c_float(v[i]),
        TensorData::F64(v) => c_double(v[i]),
        TensorData::I8(v) => v[i].to_string(),
        TensorData::U8(v) => format!("{}u", v[i]),
        TensorData::I32(v) if v[i] == i32::MIN => "(-2147483647 - 1)".into(),
        TensorData::I32(v) => v[i].to_string(),
        TensorData::I64(v) if v[i] == i64::MIN => "(-INT64_C(9223372036854775807) - 1)".into(),
        TensorData::I64(v) => format!("INT64_C({})", v[i]),
        TensorData::Bool(v) => if v[i] { "true" } else { "false" }.into(),
        TensorData::I16(v) => v[i].to_string(),
        TensorData::U16(v) => format!("{}u", v[i]),
        TensorData::U32(v) => format!("{}u", v[i]),
        TensorData::U64(v) => format!("UINT64_C({})", v[i]),
        TensorData::F16(v) | TensorData::BF16(v) => format!("0x{:04x}u", v[i]),
        TensorData::Low(DType::I4 | DType::I2, v) => (v[i] as i8).to_string(),
        TensorData::Low(_, v) => format!("0x{:02x}u", v[i]),
    }
}

/// C name of a constant's array.
fn weight_name(v: ValueId) -> String {
    format!("w{}", v.0)
}

/// A C float literal (with `f` suffix), spelling non-finite values via math.h macros.
pub(crate) fn c_float(v: f32) -> String {
    match float_repr(v) {
        Some(s) => format!("{s}f"),
        None if v.is_nan() => "NAN".into(),
        None if v > 0.0 => "INFINITY".into(),
        None => "(-INFINITY)".into(),
    }
}

/// A C double literal, spelling non-finite values via math.h macros.
pub(crate) fn c_double(v: f64) -> String {
    match float_repr64(v) {
        Some(s) => s,
        None if v.is_nan() => "NAN".into(),
        None if v > 0.0 => "INFINITY".into(),
        None => "(-INFINITY)".into(),
    }
}

/// Per node, the inputs its kernel replaced by a compile-time packed copy.
type Packed = Vec<Vec<usize>>;

/// Whether some node that runs reads constant `v` directly (not through its own packed copy).
fn read_unpacked(p: &Program, packed: &Packed, v: ValueId) -> bool {
    p.graph.outputs.contains(&v)
        || p.graph
            .nodes
            .iter()
            .enumerate()
            .any(|(i, n)| p.runs(i) && n.inputs.iter().enumerate().any(|(k, &x)| x == v && !packed[i].contains(&k)))
}

fn weights(p: &Program, packed: &Packed) -> String {
    let mut w = Writer::default();
    for v in p.constants() {
        if !read_unpacked(p, packed, v) {
            continue;
        }
        let value = p.graph.value(v);
        let Some(data) = value.data.as_ref() else { continue };
        let t = c_type(value.ty.dtype);
        w.line(&format!("/* \"{}\" {:?} */", value.name.replace("*/", "* /"), value.ty.shape));
        w.line(&format!("static const {t} {}[{}] = {{", weight_name(v), data.len().max(1)));
        let items: Vec<String> = (0..data.len()).map(|i| c_literal(data, i)).collect();
        for chunk in items.chunks(8) {
            w.line(&format!("    {},", chunk.join(", ")));
        }
        if data.is_empty() {
            w.line("    0");
        }
        w.line("};");
    }
    w.finish()
}

/// The pointer expression for a value inside `NAME_run`.
fn buffer(p: &Program, v: ValueId) -> String {
    let ni = p.graph.inputs.len();
    let no = p.graph.outputs.len();
    match p.storage(v) {
        Storage::Const => weight_name(v),
        Storage::Input(i) => {
            if ni == 1 {
                "input".into()
            } else {
                format!("input{i}")
            }
        }
        Storage::Output(i) => {
            if no == 1 {
                "output".into()
            } else {
                format!("output{i}")
            }
        }
        Storage::Arena { offset } => format!("({} *)(scratch + {offset})", c_type(p.graph.ty(v).dtype)),
        Storage::Unused => "0".into(),
    }
}

/// The node kernels, and per node the inputs each one packed into its own constant.
fn kernels(p: &Program) -> (String, Packed) {
    let mut w = Writer::default();
    let mut packed = vec![vec![]; p.graph.nodes.len()];
    for (i, n) in p.graph.nodes.iter().enumerate() {
        if !p.runs(i) {
            continue;
        }
        let mut kw = Writer::default();
        kw.indent();
        kernels::emit(&mut kw, p, n);
        packed[i] = kw.packed_inputs().to_vec();
        // An in-place node's output and that input share storage: neither is `restrict`.
        let run = p.plan.in_place(i);
        let qual =
            |k: Option<usize>| if run.is_some_and(|r| k.is_none_or(|k| k == r.input)) { "" } else { "restrict " };
        let yt = c_type(p.graph.ty(n.outputs[0]).dtype);
        let mut args: Vec<String> = n
            .inputs
            .iter()
            .enumerate()
            .filter(|(k, _)| !packed[i].contains(k))
            .map(|(k, &v)| format!("const {} *{}x{k}", c_type(p.graph.ty(v).dtype), qual(Some(k))))
            .collect();
        if p.plan.scratch(i).is_some() {
            args.push(format!("{} *restrict {}", scratch_type(p, n), scratch_name(p, n)));
        }
        w.line(&format!(
            "/* {} \"{}\": {} */",
            n.op.name(),
            n.name.replace("*/", "* /"),
            kernels::kernel_signature(p, n)
        ));
        w.line(&format!("static void node{i}({}, {yt} *{}y)", args.join(", "), qual(None)));
        w.line("{");
        w.raw(&kw.finish());
        w.line("}");
        w.line("");
    }
    (w.finish(), packed)
}

/// Bytes of arena scratch the kernel of `n` needs ([`crate::passes::KernelNeeds`]): the
/// rows of the SIMD kernels (`simd.rs`, speed builds), else the input ring of a convolution
/// running in place.
pub fn scratch_bytes(
    g: &crate::ir::Graph,
    n: &crate::ir::Node,
    in_place: Option<crate::ops::InPlace>,
    k: crate::backend::Choice,
) -> usize {
    simd::scratch_bytes(g, n, k)
        .unwrap_or_else(|| in_place.map_or(0, |ip| ip.scratch * g.ty(n.outputs[0]).dtype.size()))
}

pub use blocks::blocked_values;
pub use simd::tile_names;

/// Whether the Winograd kernel can run `n` (speed builds, memory permitting).
pub fn winograd_eligible(g: &crate::ir::Graph, n: &crate::ir::Node) -> bool {
    winograd::WinogradConv::of(g, n).is_some()
}

/// Element type of a node's scratch (the rows of the SIMD kernels, else its output type).
fn scratch_type(p: &Program, n: &crate::ir::Node) -> &'static str {
    simd::scratch_type(p.graph, n, p.choice(n)).unwrap_or_else(|| c_type(p.graph.ty(n.outputs[0]).dtype))
}

/// The kernel parameter naming the scratch.
fn scratch_name(p: &Program, n: &crate::ir::Node) -> &'static str {
    if simd::scratch_bytes(p.graph, n, p.choice(n)).is_some() { "rows" } else { "ring" }
}

fn body(p: &Program, packed: &Packed) -> String {
    let mut calls = Writer::default();
    calls.indent();
    for (i, n) in p.graph.nodes.iter().enumerate() {
        if !p.runs(i) {
            continue;
        }
        let mut args: Vec<String> =
            n.inputs.iter().enumerate().filter(|(k, _)| !packed[i].contains(k)).map(|(_, &v)| buffer(p, v)).collect();
        if let Some(offset) = p.plan.scratch(i) {
            args.push(format!("({} *)(scratch + {offset})", scratch_type(p, n)));
        }
        args.push(buffer(p, n.outputs[0]));
        calls.line(&format!("node{i}({});", args.join(", ")));
    }
    let calls = calls.finish();
    let passed = |name: &str| calls.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).any(|w| w == name);
    let mut w = Writer::default();
    w.indent();
    // Arena values only empty (zero-element) tensors use are never touched.
    if passed("scratch") {
        w.line("unsigned char *const scratch = (unsigned char *)arena;");
    } else {
        w.line("(void)arena;");
    }
    // Parameters no call passes on: inputs nothing reads, and empty inputs and outputs,
    // which no kernel touches.
    let (ni, no) = (p.graph.inputs.len(), p.graph.outputs.len());
    let params = (0..ni)
        .map(|i| if ni == 1 { "input".to_string() } else { format!("input{i}") })
        .chain((0..no).map(|i| if no == 1 { "output".to_string() } else { format!("output{i}") }));
    for name in params {
        if !passed(&name) {
            w.line(&format!("(void){name};"));
        }
    }
    w.raw(&calls);
    w.finish().trim_end().to_string()
}
