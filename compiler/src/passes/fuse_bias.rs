use super::sole_consumer;
use crate::ir::{Graph, TensorData, TensorType, ValueId};
use crate::ops::{BinaryKind, Gemm, Op};

/// Bias fusion, the pattern exporters produce for dense and conv layers:
/// - a 2-D MatMul becomes a Gemm (`alpha = beta = 1`);
/// - `Add(Gemm(A, B), c)` with constant `c` broadcastable to the Gemm output and a Gemm
///   without bias or activation becomes `Gemm(A, B, c)`;
/// - `Add(Conv(x, w), c)` with constant `c` holding one value per output channel and a
///   Conv without bias or activation becomes `Conv(x, w, c)`.
pub fn fuse_bias(g: &mut Graph) -> bool {
    let mut changed = false;
    for n in &mut g.nodes {
        if let Op::MatMul(m) = &n.op {
            let (a, b) = (n.inputs[0], n.inputs[1]);
            if g.values[a.0].ty.shape.len() == 2 && g.values[b.0].ty.shape.len() == 2 {
                n.op = Op::Gemm(Gemm { trans_a: false, trans_b: false, alpha: 1.0, beta: 1.0, act: m.act });
                changed = true;
            }
        }
    }
    let mut i = 0;
    while i < g.nodes.len() {
        if fuse_add(g, i) {
            changed = true;
        } else {
            i += 1;
        }
    }
    changed
}

/// Tries to fuse the Add at `add_idx` into its producer.
fn fuse_add(g: &mut Graph, add_idx: usize) -> bool {
    let add = &g.nodes[add_idx];
    let Op::Binary(b) = &add.op else { return false };
    if b.kind != BinaryKind::Add || b.act.is_some() {
        return false;
    }
    let (x, c) = match (g.is_const(add.inputs[0]), g.is_const(add.inputs[1])) {
        (false, true) => (add.inputs[0], add.inputs[1]),
        (true, false) => (add.inputs[1], add.inputs[0]),
        _ => return false,
    };
    let Some(p) = g.producer(x) else { return false };
    if sole_consumer(g, x) != Some(add_idx) || g.ty(add.outputs[0]).shape != g.ty(x).shape {
        return false;
    }
    let cty = g.ty(c).clone();
    let bias: ValueId = match &g.nodes[p].op {
        Op::Gemm(gm) if gm.act.is_none() && g.nodes[p].inputs.len() == 2 => c,
        Op::Conv(cv) if cv.act.is_none() && g.nodes[p].inputs.len() == 2 => {
            let m = g.ty(x).shape[1];
            // One value per output channel: [M,1,1] or [1,M,1,1].
            let channel_axis_ok = match cty.shape.as_slice() {
                [cm, 1, 1] | [1, cm, 1, 1] => *cm == m,
                _ => false,
            };
            if !channel_axis_ok {
                return false;
            }
            let Some(data) = g.data(c).cloned() else {
                return false;
            };
            let name = format!("{}/bias", g.nodes[p].name);
            g.add_const(name, TensorType::f32(vec![m]), data)
        }
        _ => return false,
    };
    if matches!(g.data(bias), Some(TensorData::F32(_))) {
        let out = g.nodes[add_idx].outputs[0];
        g.nodes[p].inputs.push(bias);
        g.nodes.remove(add_idx);
        g.replace_uses(out, x);
        g.values[x.0].name = g.values[out.0].name.clone();
        return true;
    }
    false
}
