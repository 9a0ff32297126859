//! Channel blocks: the layout `[n][c/8][h][w][8]` (NCHW8c) for the float tensors that flow
//! between channel-lane kernels.
//!
//! The channel-lane kernels ([`ChannelDw`], [`ChannelConv`]) compute 8 channels of one
//! pixel per vector. Over NCHW tensors they pay a transpose (or a gather) on every input
//! pixel and a transpose (or a scatter) on every output pixel. A tensor both written and
//! read by such kernels is kept in channel blocks instead: every pixel's 8 channels are
//! one vector load or store. Block `b` of image `i` covers exactly the bytes of NCHW
//! channels `8b .. 8b + 8` of that image, so the memory plan, in-place runs included, is
//! the same in either layout. A global average pool reads blocks as well; its one-pixel
//! output is the same in both layouts.
//!
//! The layout is chosen per tensor ([`blocked_values`]); the graph and its semantics stay
//! NCHW, and graph inputs and outputs are never blocked.

use super::conv_channels::ChannelConv;
use super::dw_channels::ChannelDw;
use super::kernels::LANES;
use super::writer::Writer;
use crate::ir::{DType, Graph, Node, ValueId};
use crate::ops::{Op, PoolKind};
use std::collections::BTreeSet;

/// The float tensors to hold in channel blocks: rank-4 f32 tensors with a multiple of 8
/// channels, neither graph inputs nor outputs, whose producer is a channel-lane
/// convolution and whose every consumer reads them, as its first input only, with a
/// channel-lane convolution or a global average pool; and which sit next to a depthwise
/// channel-lane kernel (as its input or output) or continue a blocked chain (the producer
/// reads blocks). Pointwise layers between blocked tensors thus use the channel-lane
/// kernel even where pixel lanes would be full; a pointwise layer reads and writes the same
/// layout (it may run in place).
pub fn blocked_values(g: &Graph) -> BTreeSet<ValueId> {
    let mut blocked = BTreeSet::new();
    for n in &g.nodes {
        let v = n.outputs[0];
        let t = g.ty(v);
        let shaped = t.dtype == DType::F32 && t.shape.len() == 4 && t.shape[1].is_multiple_of(LANES) && !t.is_empty();
        if !shaped || g.outputs.contains(&v) || !lane_conv(g, n) {
            continue;
        }
        let consumers = g.consumers(v);
        let readers_ok = !consumers.is_empty()
            && consumers.iter().all(|&c| {
                let m = &g.nodes[c];
                m.inputs[0] == v && !m.inputs[1..].contains(&v) && (lane_conv(g, m) || global_avg(g, m))
            });
        let next_to_dw = depthwise(g, n) || consumers.iter().any(|&c| depthwise(g, &g.nodes[c]));
        if readers_ok && (next_to_dw || blocked.contains(&n.inputs[0])) {
            blocked.insert(v);
        }
    }
    // A convolution that may run in place ([`Op::in_place`]: 1×1) overwrites the inputs of
    // the pixels it has gathered; that holds only when input and output share the layout.
    loop {
        let mixed: Vec<ValueId> = g
            .nodes
            .iter()
            .filter(|n| lane_conv(g, n) && n.op.in_place(g, n).is_some() && !depthwise(g, n))
            .filter(|n| blocked.contains(&n.inputs[0]) != blocked.contains(&n.outputs[0]))
            .flat_map(|n| [n.inputs[0], n.outputs[0]])
            .collect();
        if mixed.is_empty() {
            return blocked;
        }
        for v in mixed {
            blocked.remove(&v);
        }
    }
}

/// Whether a channel-lane convolution runs `n` (in either layout).
fn lane_conv(g: &Graph, n: &Node) -> bool {
    depthwise(g, n) || ChannelConv::of(g, n, true).is_some()
}

fn depthwise(g: &Graph, n: &Node) -> bool {
    matches!(n.op, Op::Conv(_)) && ChannelDw::of(g, n).is_some()
}

/// Whether `n` is a float global average pool (one output pixel, no padding).
fn global_avg(g: &Graph, n: &Node) -> bool {
    let Op::Pool(pl) = &n.op else { return false };
    let (x, y) = (&g.ty(n.inputs[0]).shape, &g.ty(n.outputs[0]).shape);
    pl.kind == PoolKind::Avg
        && g.ty(n.inputs[0]).dtype == DType::F32
        && x.len() == 4
        && y[2..] == [1, 1]
        && pl.kernel == [x[2], x[3]]
        && pl.pads == [0; 4]
}

/// Writes a global average pool over a blocked input `x0` (`blocks` blocks of `hw` pixels):
/// one vector sum per block, 4 partial sums (one serial chain would be latency-bound).
pub(crate) fn emit_global_avg(w: &mut Writer, blocks: usize, hw: usize) {
    w.open(&format!("for (int b = 0; b < {blocks}; ++b)"));
    w.line(&format!("const float *xb = x0 + b * {};", hw * LANES));
    w.line("mlrt_f8 s0 = mlrt_f8_set1(0.0f), s1 = s0, s2 = s0, s3 = s0;");
    w.line("int i = 0;");
    w.open(&format!("for (; i + 4 <= {hw}; i += 4)"));
    for k in 0..4 {
        w.line(&format!("s{k} = mlrt_f8_add(s{k}, mlrt_f8_load(xb + (i + {k}) * {LANES}));"));
    }
    w.close();
    w.line(&format!("for (; i < {hw}; ++i) s0 = mlrt_f8_add(s0, mlrt_f8_load(xb + i * {LANES}));"));
    w.line("float t[8];");
    w.line("mlrt_f8_store(t, mlrt_f8_add(mlrt_f8_add(s0, s1), mlrt_f8_add(s2, s3)));");
    w.line(&format!("for (int l = 0; l < {LANES}; ++l) y[b * {LANES} + l] = t[l] / {};", super::c_float(hw as f32)));
    w.close();
}
