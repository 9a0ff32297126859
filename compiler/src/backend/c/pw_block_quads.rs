//! int8 pointwise (1×1) convolution from channel blocks to channel blocks (`blocks.rs`) over
//! byte quads ([`crate::backend::Isa::dot4`]: AVX-512 VNNI `VPDPBUSD`), with the vector
//! lanes across output channels.
//!
//! In a block, a pixel's 4 consecutive input channels are 4 consecutive bytes: one 32-bit
//! broadcast times the quad's weights `w − w_zp` of 8 output channels (`mlrt_dot4_bcast`).
//! For each tile of [`PIXELS`] pixels, their channel vectors are first copied to scratch as
//! unsigned bytes `x + off` (int8: x + 128), so the kernel runs in place; a register tile of
//! `ocv` channel vectors × [`PIXELS`] pixels accumulates over every quad, starting from the
//! bias minus the offset's share `(x_zp + off) · Σ (w − w_zp)` (folded at compile time);
//! each sum is requantized per lane (`mlrt_requant8_lanes`, bit-exact with `mlrt_requant`)
//! and stored as its pixel's 8 bytes of the output block.

use super::kernels::{ConvGeo, LANES, const_data, int_at, packed_array, quad_qconv};
use super::simd::{lanes_requant, lanes_requant_tables, lanes_stores};
use super::writer::Writer;
use crate::backend::{Isa, Program};
use crate::ir::{Graph, Node};
use crate::ops::Op;
use crate::toolchain::c_type;

/// Pixels per register tile: 4 pixels × 4 channel vectors = 16 accumulators, 8 loads per
/// 16 dot products (AVX-512 has 32 vector registers).
const PIXELS: usize = 4;

/// The plan for an int8 `QConv` 1×1, stride 1, unpadded, group 1, requantized 8-bit output
/// whose shifts `mlrt_requant8_lanes` takes, weights `w − w_zp` that are int8, and input and
/// output channels multiples of 8: the tensors `blocks.rs` may hold in channel blocks.
pub(crate) struct BlockPw {
    g: ConvGeo,
    /// Channel vectors per register tile.
    ocv: usize,
}

impl BlockPw {
    pub(crate) fn of(g: &Graph, n: &Node, isa: Isa) -> Option<BlockPw> {
        let (qc, geo) = quad_qconv(g, n, isa)?;
        let c = &qc.conv;
        let ok = c.kernel == [1, 1]
            && c.strides == [1, 1]
            && c.pads == [0; 4]
            && c.group == 1
            && geo.ci.is_multiple_of(LANES)
            && geo.m.is_multiple_of(LANES)
            && qc.out.as_ref().is_some_and(lanes_requant);
        let ocv = [4, 2, 1].into_iter().find(|v| geo.m.is_multiple_of(v * LANES))?;
        ok.then_some(BlockPw { g: geo, ocv })
    }

    /// Bytes of arena scratch: one pixel tile's input channels.
    pub(crate) fn scratch_bytes(&self) -> usize {
        self.g.ci * PIXELS
    }

    /// Writes the kernel of `n` (whose plan this is).
    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let (g, ocv) = (&self.g, self.ocv);
        let (Some(d), Op::QConv(qc)) = (const_data(p, n.inputs[1]), &n.op) else { return };
        let Some(rq) = &qc.out else { return };
        let (ci, m, hw) = (g.ci, g.m, g.h * g.wd);
        let width = ocv * LANES;
        let xt = c_type(p.graph.ty(n.inputs[0]).dtype);
        let yt = c_type(p.graph.ty(n.outputs[0]).dtype);
        let off: i32 = if xt == "int8_t" { 128 } else { 0 };
        let wv = |oc: usize, ic: usize| int_at(d, oc * ci + ic).unwrap_or(0) - qc.w_zp_of(oc) as i64;
        // Weights `[m / width][ci / 4][width][4]`.
        let mut packed = Vec::with_capacity(m * ci);
        for b in 0..m / width {
            for q in 0..ci / 4 {
                for l in 0..width {
                    packed.extend((0..4).map(|t| wv(b * width + l, 4 * q + t).to_string()));
                }
            }
        }
        packed_array(w, "int8_t", "wd", &packed);
        w.packs_input(1);
        let corr: Vec<String> = (0..m)
            .map(|oc| ((-(qc.x_zp as i64 + off as i64) * (0..ci).map(|ic| wv(oc, ic)).sum::<i64>()) as i32).to_string())
            .collect();
        w.line(&format!("static const int32_t zc[{m}] = {{{}}};", corr.join(", ")));
        lanes_requant_tables(w, rq, m);
        let flip = if off == 128 { "0x80" } else { "0" };
        w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
        w.line(&format!("const {xt} *xn = x0 + n * {};", ci * hw));
        w.line(&format!("{yt} *yn = y + n * {};", m * hw));
        // Pixels `p0 .. p0 + count`.
        let tile = |w: &mut Writer, p0: &str, count: usize| {
            w.line(&format!(
                "for (int b = 0; b < {}; ++b) for (int k = 0; k < {count}; ++k) mlrt_bytes_flip(rows + (b * {count} + k) * {LANES}, xn + (b * {hw} + {p0} + k) * {LANES}, {LANES}, {flip});",
                ci / LANES
            ));
            w.open(&format!("for (int ob = 0; ob < {}; ++ob)", m / width));
            w.line(&format!("const int8_t *wb = wd + ob * {};", ci * width));
            for v in 0..ocv {
                let at = format!("ob * {width} + {}", v * LANES);
                let bias = if n.inputs.len() > 2 {
                    format!("mlrt_acc8_add(mlrt_acc8_load32(x2 + {at}), mlrt_acc8_load32(zc + {at}))")
                } else {
                    format!("mlrt_acc8_load32(zc + {at})")
                };
                let accs: Vec<String> = (0..count).map(|k| format!("a{v}{k} = b{v}")).collect();
                w.line(&format!("const mlrt_acc8 b{v} = {bias};"));
                w.line(&format!("mlrt_acc8 {};", accs.join(", ")));
            }
            // Quads `2·qb` and `2·qb + 1` are the halves of input block `qb`.
            w.open(&format!("for (int qb = 0; qb < {}; ++qb)", ci / LANES));
            for h in 0..2 {
                for v in 0..ocv {
                    w.line(&format!(
                        "const mlrt_q8 wq{v}{h} = mlrt_q8_load((const uint8_t *)(const void *)(wb + ((2 * qb + {h}) * {ocv} + {v}) * {}));",
                        LANES * 4
                    ));
                }
                for k in 0..count {
                    for v in 0..ocv {
                        w.line(&format!(
                            "a{v}{k} = mlrt_dot4_bcast(a{v}{k}, rows + (qb * {count} + {k}) * {LANES} + {}, wq{v}{h});",
                            4 * h
                        ));
                    }
                }
            }
            w.close();
            for v in 0..ocv {
                w.line(&format!(
                    "const mlrt_rq8 rq{v} = mlrt_rq8_prepare(rq_mul + ob * {width} + {o}, rq_shift + ob * {width} + {o}, {}, {}, {});",
                    rq.zero_point,
                    rq.lo,
                    rq.hi,
                    o = v * LANES
                ));
                let dst = format!("yn + ((ob * {ocv} + {v}) * {hw} + {p0}) * {LANES}");
                let accs: Vec<String> = (0..count).map(|k| format!("a{v}{k}")).collect();
                for line in lanes_stores(rq, &dst, &accs, &format!("rq{v}")) {
                    w.line(&line);
                }
            }
            w.close();
        };
        let full = hw / PIXELS * PIXELS;
        if full > 0 {
            w.open(&format!("for (int p0 = 0; p0 < {full}; p0 += {PIXELS})"));
            tile(w, "p0", PIXELS);
            w.close();
        }
        if full < hw {
            w.line("{");
            w.indent();
            tile(w, &full.to_string(), hw - full);
            w.close();
        }
        w.close();
    }
}
