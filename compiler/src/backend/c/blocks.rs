//! Channel blocks: the layout `[n][c/8][h][w][8]` (NCHW8c) for the float and int8 tensors
//! that flow between channel-lane kernels.
//!
//! The channel-lane kernels ([`ChannelDw`], [`ChannelConv`], [`QuadChannelConv`],
//! [`BlockPw`]) compute 8 channels of one pixel per vector. Over NCHW tensors they pay a
//! transpose (or a gather) on every input pixel and a transpose (or a scatter) on every
//! output pixel. A tensor both written and read by such kernels is kept in channel blocks
//! instead: every pixel's 8 channels are one vector load or store. Block `b` of image `i`
//! covers exactly the bytes of NCHW channels `8b .. 8b + 8` of that image, so the memory
//! plan, in-place runs included, is the same in either layout. A global average pool reads
//! blocks as well; its one-pixel output is the same in both layouts.
//!
//! The layout is chosen per tensor ([`blocked_values`]); the graph and its semantics stay
//! NCHW, and graph inputs and outputs are never blocked. int8 tensors are blocked only where
//! the target has byte quads ([`Isa::dot4`]), which the int8 pointwise kernel needs.

use super::conv_channel_quads::QuadChannelConv;
use super::conv_channels::ChannelConv;
use super::dw_channels::ChannelDw;
use super::kernels::LANES;
use super::pw_block_quads::BlockPw;
use super::simd::lanes_requant;
use super::writer::Writer;
use crate::backend::Isa;
use crate::ir::{DType, Graph, Node, ValueId};
use crate::ops::{Op, PoolKind};
use std::collections::BTreeSet;

/// The tensors to hold in channel blocks: rank-4 f32 (or, with [`Isa::dot4`], int8) tensors
/// with a multiple of 8 channels, neither graph inputs nor outputs, whose producer is a
/// channel-lane convolution and whose every consumer reads them, as its first input only,
/// with a channel-lane convolution or a global average pool; and which sit next to a
/// depthwise channel-lane kernel (as its input or output) or continue a blocked chain (the
/// producer reads blocks). Pointwise layers between blocked tensors thus use a channel-lane
/// kernel even where pixel lanes would be full; a pointwise layer reads and writes the same
/// layout (it may run in place, and the int8 one has no NCHW side).
pub fn blocked_values(g: &Graph, isa: Isa) -> BTreeSet<ValueId> {
    // Per node, once: a channel-lane kernel runs it over blocks; it is depthwise; it must read
    // and write one layout (a convolution that may run in place, [`Op::in_place`], overwrites
    // the inputs of the pixels it has gathered; the int8 pointwise kernel has no NCHW side).
    let dw: Vec<bool> = g.nodes.iter().map(|n| depthwise(g, n)).collect();
    let lane: Vec<bool> = g.nodes.iter().zip(&dw).map(|(n, &d)| d || lane_conv(g, n, isa)).collect();
    let same_layout: Vec<bool> = (g.nodes.iter().enumerate())
        .map(|(i, n)| BlockPw::of(g, n, isa).is_some() || (lane[i] && !dw[i] && n.op.in_place(g, n).is_some()))
        .collect();
    let mut blocked = BTreeSet::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let v = n.outputs[0];
        let t = g.ty(v);
        let dtype_ok = match t.dtype {
            DType::F32 => true,
            DType::I8 | DType::U8 => isa.dot4,
            _ => false,
        };
        let shaped = dtype_ok && t.shape.len() == 4 && t.shape[1].is_multiple_of(LANES) && !t.is_empty();
        if !shaped || g.outputs.contains(&v) || !lane[i] {
            continue;
        }
        let consumers = g.consumers(v);
        let readers_ok = !consumers.is_empty()
            && consumers.iter().all(|&c| {
                let m = &g.nodes[c];
                m.inputs[0] == v && !m.inputs[1..].contains(&v) && (lane[c] || global_avg(g, m))
            });
        let next_to_dw = dw[i] || consumers.iter().any(|&c| dw[c]);
        if readers_ok && (next_to_dw || blocked.contains(&n.inputs[0])) {
            blocked.insert(v);
        }
    }
    loop {
        let mixed: Vec<ValueId> = (g.nodes.iter().zip(&same_layout))
            .filter(|&(n, &same)| same && blocked.contains(&n.inputs[0]) != blocked.contains(&n.outputs[0]))
            .flat_map(|(n, _)| [n.inputs[0], n.outputs[0]])
            .collect();
        if mixed.is_empty() {
            return blocked;
        }
        for v in mixed {
            blocked.remove(&v);
        }
    }
}

/// Whether a dense channel-lane convolution runs `n` when it reads or writes blocks.
fn lane_conv(g: &Graph, n: &Node, isa: Isa) -> bool {
    ChannelConv::of(g, n, true).is_some()
        || BlockPw::of(g, n, isa).is_some()
        || QuadChannelConv::of(g, n, isa).is_some()
}

/// Whether `n` is a depthwise convolution [`ChannelDw`] runs over blocks (int8: with the
/// per-lane requantization).
fn depthwise(g: &Graph, n: &Node) -> bool {
    let lanes = match &n.op {
        Op::Conv(_) => true,
        Op::QConv(qc) => qc.out.as_ref().is_some_and(lanes_requant),
        _ => false,
    };
    lanes && ChannelDw::of(g, n).is_some()
}

/// Whether `n` is a global average pool (one output pixel, no padding), float or int8.
fn global_avg(g: &Graph, n: &Node) -> bool {
    let (pl, float) = match &n.op {
        Op::Pool(pl) => (pl, true),
        Op::QPool(qp) => (&qp.pool, false),
        _ => return false,
    };
    let (x, y) = (&g.ty(n.inputs[0]).shape, &g.ty(n.outputs[0]).shape);
    pl.kind == PoolKind::Avg
        && (g.ty(n.inputs[0]).dtype == DType::F32) == float
        && x.len() == 4
        && y.len() == 4
        && pl.covers_plane([x[2], x[3]], [y[2], y[3]])
}

/// Writes a float global average pool over a blocked input `x0` (`blocks` blocks of `hw`
/// pixels): one vector sum per block, 4 partial sums (one serial chain would be
/// latency-bound).
pub(crate) fn emit_global_avg(w: &mut Writer, blocks: usize, hw: usize) {
    let store = format!("y[b * {LANES} + l] = t[l] / {};", super::c_float(hw as f32));
    global_sum(w, blocks, hw, ("float", "mlrt_f8", "float"), "mlrt_f8_load(xb + (i) * 8)", &store);
}

/// Writes an int8 global average pool (`QPool`) over a blocked input `x0` of C type `xt`:
/// exact int32 sums of `x − x_zp` per channel, then `requant`, an expression of `acc`, per
/// output.
pub(crate) fn emit_global_avg_int8(w: &mut Writer, blocks: usize, hw: usize, xt: &str, x_zp: i32, requant: &str) {
    let from = if xt == "uint8_t" { "mlrt_acc8_from_u8" } else { "mlrt_acc8_from_s8" };
    let load = format!("{from}(xb + (i) * 8, {x_zp}, 1)");
    let store = format!("{{ const int32_t acc = t[l]; y[b * {LANES} + l] = {requant}; }}");
    global_sum(w, blocks, hw, (xt, "mlrt_acc8", "int32_t"), &load, &store);
}

/// The sums of [`emit_global_avg`]: `load` reads pixel `i` of block `xb` (C type `xt`) as a
/// vector `vt`; `store` writes lane `l` of the sums, `t[l]` (type `et`), to output `b · 8 + l`.
fn global_sum(w: &mut Writer, blocks: usize, hw: usize, (xt, vt, et): (&str, &str, &str), load: &str, store: &str) {
    let at = |i: &str| load.replace("(i)", &format!("({i})"));
    w.open(&format!("for (int b = 0; b < {blocks}; ++b)"));
    w.line(&format!("const {xt} *xb = x0 + b * {};", hw * LANES));
    w.line(&format!("{vt} s0 = {vt}_set1(0), s1 = s0, s2 = s0, s3 = s0;"));
    w.line(&format!("{et} t[{LANES}];"));
    w.line("int i = 0;");
    w.open(&format!("for (; i + 4 <= {hw}; i += 4)"));
    for k in 0..4 {
        w.line(&format!("s{k} = {vt}_add(s{k}, {});", at(&format!("i + {k}"))));
    }
    w.close();
    w.line(&format!("for (; i < {hw}; ++i) s0 = {vt}_add(s0, {});", at("i")));
    w.line(&format!("{vt}_store(t, {vt}_add({vt}_add(s0, s1), {vt}_add(s2, s3)));"));
    w.line(&format!("for (int l = 0; l < {LANES}; ++l) {store}"));
    w.close();
}
