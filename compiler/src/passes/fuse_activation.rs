use super::sole_consumer;
use crate::ir::Graph;
use crate::ops::Op;

/// Activation fusion: an elementwise activation whose input comes from a Conv, Gemm,
/// MatMul or binary op (without an activation yet) and has no other user becomes that
/// op's epilogue. The activation node disappears; its output name moves to the producer.
pub fn fuse_activation(g: &mut Graph) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < g.nodes.len() {
        let Op::Activation(act) = g.nodes[i].op else {
            i += 1;
            continue;
        };
        let x = g.nodes[i].inputs[0];
        // Fused epilogues are float32 (float64 activations stay standalone nodes).
        let fusable = g
            .producer(x)
            .filter(|_| g.ty(x).dtype == crate::ir::DType::F32)
            .filter(|_| sole_consumer(g, x) == Some(i))
            .filter(|&p| matches!(g.nodes[p].op.fused_act(), Some(None)));
        let Some(p) = fusable else {
            i += 1;
            continue;
        };
        if let Some(slot) = g.nodes[p].op.fused_act_mut() {
            *slot = Some(act);
        }
        let out = g.nodes[i].outputs[0];
        g.nodes.remove(i);
        g.replace_uses(out, x);
        g.values[x.0].name = g.values[out.0].name.clone();
        changed = true;
    }
    changed
}
