//! Text form of the IR, used by `--dump-ir` and pass snapshot tests.

use super::{Graph, ValueId, shape_str};

fn val(g: &Graph, v: ValueId) -> String {
    let value = g.value(v);
    let c = if value.data.is_some() { "const " } else { "" };
    format!("%{}:{c}{}[{}]", v.0, value.ty.dtype, shape_str(&value.ty.shape))
}

/// Prints one node per line: `%out = Op{params}(%in, ...)  # "onnx name"`.
pub fn print_graph(g: &Graph) -> String {
    let mut s = String::new();
    let ins: Vec<String> = g.inputs.iter().map(|&v| format!("{} \"{}\"", val(g, v), g.value(v).name)).collect();
    s.push_str(&format!("inputs: {}\n", ins.join(", ")));
    for n in &g.nodes {
        let outs: Vec<String> = n.outputs.iter().map(|&v| val(g, v)).collect();
        let args: Vec<String> = n.inputs.iter().map(|&v| val(g, v)).collect();
        let params = n.op.params();
        let params = if params.is_empty() { String::new() } else { format!("{{{params}}}") };
        s.push_str(&format!(
            "{} = {}{}({})  # \"{}\"\n",
            outs.join(", "),
            n.op.name(),
            params,
            args.join(", "),
            n.name
        ));
    }
    let outs: Vec<String> = g.outputs.iter().map(|&v| format!("{} \"{}\"", val(g, v), g.value(v).name)).collect();
    s.push_str(&format!("outputs: {}\n", outs.join(", ")));
    s
}
