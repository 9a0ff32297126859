//! C99 backend: `NAME.h`, `NAME.c` and the runtime header `modelless_rt.h`.
//!
//! Contract (pinned by issue #2): the header defines `NAME_INPUT_LEN`, `NAME_OUTPUT_LEN`
//! (or `NAME_INPUT<i>_LEN` / `NAME_OUTPUT<i>_LEN`), `NAME_ARENA_BYTES`, `NAME_ARENA_ALIGN`
//! and declares `int NAME_run(const float *input, float *output, void *arena);`.
//! Weights are `static const`; no malloc, no mutable globals, only math.h from libc.

mod kernels;

pub(crate) use kernels::{batch_offsets, kernel_signature};
mod writer;

use super::{OutFile, Program, float_repr};
use crate::error::Result;
use crate::ir::ValueId;
use crate::passes::Storage;
use writer::Writer;

const HEADER_TEMPLATE: &str = include_str!("../../../../codegen-templates/c/model.h");
const SOURCE_TEMPLATE: &str = include_str!("../../../../codegen-templates/c/model.c");
/// The runtime header shipped next to generated sources.
pub const RUNTIME_HEADER: &str = include_str!("../../../../runtime-shims/c/modelless_rt.h");

/// Emits the C sources for a planned program.
pub fn emit(p: &Program) -> Result<Vec<OutFile>> {
    p.check_float()?;
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
    let source = fill(
        SOURCE_TEMPLATE,
        &[
            ("BANNER", &banner),
            ("NAME", name),
            ("WEIGHTS", &weights(p)),
            ("KERNELS", &kernels(p)?),
            ("PARAMS", &params),
            ("BODY", &body(p)),
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
    for i in 0..ni {
        v.push(if ni == 1 { "const float *input".into() } else { format!("const float *input{i}") });
    }
    for i in 0..no {
        v.push(if no == 1 { "float *output".into() } else { format!("float *output{i}") });
    }
    v.push("void *arena".into());
    v.join(", ")
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

fn weights(p: &Program) -> String {
    let mut w = Writer::default();
    for v in p.constants() {
        let value = p.graph.value(v);
        let data = value.data.as_ref().map(|d| d.to_f32()).unwrap_or_default();
        w.line(&format!("/* \"{}\" {:?} */", value.name.replace("*/", "* /"), value.ty.shape));
        w.line(&format!("static const float {}[{}] = {{", weight_name(v), data.len().max(1)));
        for chunk in data.chunks(8) {
            let items: Vec<String> = chunk.iter().map(|&x| c_float(x)).collect();
            w.line(&format!("    {},", items.join(", ")));
        }
        if data.is_empty() {
            w.line("    0.0f");
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
        Storage::Arena { offset } => format!("(float *)(scratch + {offset})"),
        Storage::Unused => "0".into(),
    }
}

fn kernels(p: &Program) -> Result<String> {
    let mut w = Writer::default();
    for (i, n) in p.graph.nodes.iter().enumerate() {
        if p.plan.is_view(p.graph, i) {
            continue;
        }
        let args: Vec<String> = (0..n.inputs.len()).map(|k| format!("const float *restrict x{k}")).collect();
        w.line(&format!(
            "/* {} \"{}\": {} */",
            n.op.name(),
            n.name.replace("*/", "* /"),
            kernels::kernel_signature(p, n)
        ));
        w.line(&format!("static void node{i}({}, float *restrict y)", args.join(", ")));
        w.line("{");
        w.indent();
        kernels::emit(&mut w, p, n);
        w.dedent();
        w.line("}");
        w.line("");
    }
    Ok(w.finish())
}

fn body(p: &Program) -> String {
    let mut w = Writer::default();
    w.indent();
    let uses_arena = p.storage_all().any(|s| matches!(s, Storage::Arena { .. }));
    if uses_arena {
        w.line("unsigned char *const scratch = (unsigned char *)arena;");
    } else {
        w.line("(void)arena;");
    }
    for (i, n) in p.graph.nodes.iter().enumerate() {
        if p.plan.is_view(p.graph, i) {
            continue;
        }
        let mut args: Vec<String> = n.inputs.iter().map(|&v| buffer(p, v)).collect();
        args.push(buffer(p, n.outputs[0]));
        w.line(&format!("node{i}({});", args.join(", ")));
    }
    w.finish().trim_end().to_string()
}

impl Program<'_> {
    fn storage_all(&self) -> impl Iterator<Item = Storage> + '_ {
        self.graph.nodes.iter().flat_map(|n| n.inputs.iter().chain(&n.outputs)).map(|&v| self.plan.get(v))
    }
}
