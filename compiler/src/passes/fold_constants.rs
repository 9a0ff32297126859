use crate::ir::{Graph, TensorData, TensorType};

/// Constant folding: a node whose inputs are all constants and whose op has a reference
/// evaluator is replaced by its result, stored as a constant value. Nodes producing a
/// graph output are kept (the caller's output buffer must be written by code).
pub fn fold_constants(g: &mut Graph) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        let out = n.outputs[0];
        let foldable = !g.is_graph_output(out) && n.inputs.iter().all(|&v| g.is_const(v));
        if foldable {
            let args: Vec<(&TensorType, &TensorData)> =
                n.inputs.iter().filter_map(|&v| Some((g.ty(v), g.data(v)?))).collect();
            if let Some(data) = n.op.eval(&args, g.ty(out)) {
                g.values[out.0].data = Some(data);
                g.nodes.remove(i);
                changed = true;
                continue;
            }
        }
        i += 1;
    }
    changed
}
