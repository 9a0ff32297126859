//! int8 dense convolution of few input channels (a network's first layer: audio features,
//! RGB) on rows too short for the pixel lanes of [`super::simd::RowConv`] (KWS's 5-pixel
//! rows fill 5 of 8), with the vector lanes across output channels, over byte quads
//! ([`crate::backend::Isa::dot4`]: AVX-512 VNNI `VPDPBUSD`).
//!
//! The input planes are copied once into scratch as unsigned bytes `x + off` (int8: x + 128)
//! inside a border of the padding value `x_zp + off`. A quad is 4 horizontally neighbouring
//! taps of one kernel row of one channel: 4 consecutive bytes of a padded row, broadcast to
//! every lane, times the quad's weights `w − w_zp` of 8 output channels (`mlrt_dot4`; taps
//! past the kernel's width have weight 0). Eight output pixels accumulate at once, each in its
//! own register; they are requantized per lane (`mlrt_requant8_lanes`), transposed, and
//! stored as 8 pixels per output channel (or, into channel blocks, `blocks.rs`, stored as
//! they are). Padding taps are summed like the others, so their
//! share `(x_zp + off) · Σ (w − w_zp)` is taken out of the bias at compile time. All input is
//! copied before any output is written: the kernel also runs in place.

use super::kernels::{ConvGeo, LANES, const_data, int_at, packed_array, quad_qconv};
use super::simd::{lanes_requant, lanes_requant_tables, lanes_stores};
use super::writer::Writer;
use crate::backend::{Isa, Program};
use crate::ir::{DType, Graph, Node};
use crate::ops::Op;
use crate::toolchain::c_type;

/// Largest scratch (the padded planes), in bytes.
const MAX_SCRATCH: usize = 32 * 1024;
/// Most input channels: beyond, the pixel-lane kernel's channel quads fill every lane.
const MAX_CI: usize = 4;

/// The plan for an int8 `QConv` (group 1, requantized 8-bit output, constant weights whose
/// `w − w_zp` are int8, a multiple of 8 output channels, no horizontal dilation, at most
/// [`MAX_CI`] input channels).
pub(crate) struct QuadChannelConv {
    g: ConvGeo,
    /// Rows and columns of the padded planes.
    hp: usize,
    wp: usize,
    /// Quads per kernel row.
    kq: usize,
}

impl QuadChannelConv {
    pub(crate) fn of(g: &Graph, n: &Node, isa: Isa) -> Option<QuadChannelConv> {
        let (qc, geo) = quad_qconv(g, n, isa)?;
        let c = &qc.conv;
        let (hp, wp) = (geo.h + c.pads[0] + c.pads[2], geo.wd + c.pads[1] + c.pads[3]);
        let kq = c.kernel[1].div_ceil(4);
        let plan = QuadChannelConv { g: geo, hp, wp, kq };
        // `mlrt_requant8_lanes` takes shifts in -31..-1.
        let lanes_rq = qc.out.as_ref().is_some_and(lanes_requant);
        // Rows the pixel-lane kernel fills well (tiles of 16, or 8 under 16) stay there.
        let tile = if geo.ow >= 2 * LANES { 2 * LANES } else { LANES };
        let pixel_lanes_idle = geo.ow * 5 < geo.ow.div_ceil(tile) * tile * 4;
        let ok = pixel_lanes_idle
            && lanes_rq
            && c.group == 1
            && geo.ci <= MAX_CI
            && geo.m.is_multiple_of(LANES)
            && geo.d[1] == 1
            && plan.scratch_bytes() <= MAX_SCRATCH;
        ok.then_some(plan)
    }

    /// Bytes of arena scratch: the padded planes, and 3 bytes the last quad reads past them.
    pub(crate) fn scratch_bytes(&self) -> usize {
        self.g.ci * self.hp * self.wp + 4 * self.kq
    }

    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let g = &self.g;
        let (Some(d), Op::QConv(qc)) = (const_data(p, n.inputs[1]), &n.op) else { return };
        let Some(rq) = &qc.out else { return };
        let [kh, kw] = g.k;
        let [sh, sw] = g.s;
        let (hp, wp, kq) = (self.hp, self.wp, self.kq);
        let plane = hp * wp;
        let xt = c_type(p.graph.ty(n.inputs[0]).dtype);
        let yt = c_type(p.graph.ty(n.outputs[0]).dtype);
        let off: i32 = if xt == "int8_t" { 128 } else { 0 };
        let pad = qc.x_zp + off;
        // Weights `[m/8][ci][kh][kq][8][4]`, and per channel the padding value's share.
        let wzp = |oc: usize| qc.w_zp_of(oc) as i64;
        let wv = |oc: usize, ic: usize, ky: usize, kx: usize| {
            if kx < kw { int_at(d, ((oc * g.ci + ic) * kh + ky) * kw + kx).unwrap_or(0) - wzp(oc) } else { 0 }
        };
        let blocks = g.m / LANES;
        let mut packed = vec![];
        for b in 0..blocks {
            for ic in 0..g.ci {
                for ky in 0..kh {
                    for q in 0..kq {
                        for l in 0..LANES {
                            for t in 0..4 {
                                packed.push(wv(b * LANES + l, ic, ky, 4 * q + t).to_string());
                            }
                        }
                    }
                }
            }
        }
        let corr: Vec<String> = (0..g.m)
            .map(|oc| {
                let sum: i64 = (0..g.ci)
                    .flat_map(|ic| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (ic, ky, kx))))
                    .map(|(ic, ky, kx)| wv(oc, ic, ky, kx))
                    .sum();
                ((-(pad as i64) * sum) as i32).to_string()
            })
            .collect();
        packed_array(w, "int8_t", "wd", &packed);
        w.packs_input(1);
        w.line(&format!("static const int32_t zc[{}] = {{{}}};", g.m, corr.join(", ")));
        lanes_requant_tables(w, rq, g.m);
        let flip = if off == 128 { "0x80" } else { "0" };
        let blocked_out = p.choice(n).y_blocked;
        let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
        w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
        // The whole input, before any output is written (in place).
        w.line(&format!("for (int i = 0; i < {}; ++i) rows[i] = {pad};", self.scratch_bytes()));
        w.open(&format!("for (int r = 0; r < {}; ++r)", g.ci * g.h));
        w.line(&format!(
            "mlrt_bytes_flip(rows + (r / {h}) * {plane} + (r % {h} + {}) * {wp} + {}, x0 + n * {} + r * {}, {}, {flip});",
            g.pt,
            g.pl,
            g.ci * hw,
            g.wd,
            g.wd,
            h = g.h
        ));
        w.close();
        w.open(&format!("for (int b = 0; b < {blocks}; ++b)"));
        w.line(&format!("const int8_t *wb = wd + b * {};", g.ci * kh * kq * LANES * 4));
        let bias =
            if n.inputs.len() > 2 { format!("mlrt_acc8_load32(x2 + b * {LANES})") } else { "mlrt_acc8_set1(0)".into() };
        w.line(&format!("const mlrt_acc8 b0 = mlrt_acc8_add({bias}, mlrt_acc8_load32(zc + b * {LANES}));"));
        w.line(&format!(
            "const mlrt_rq8 rq = mlrt_rq8_prepare(rq_mul + b * {LANES}, rq_shift + b * {LANES}, {}, {}, {});",
            rq.zero_point, rq.lo, rq.hi
        ));
        w.line(&format!("{yt} *yb = y + n * {} + b * {};", g.m * ohw, LANES * ohw));
        let store = if rq.to == DType::U8 { "mlrt_acc8_store_u8" } else { "mlrt_acc8_store_s8" };
        // Output pixels `o .. o + count`: accumulate, requantize per lane, transpose, store.
        let group = |w: &mut Writer, o: &str, count: usize| {
            w.line(&format!("mlrt_acc8 a[{LANES}];"));
            for k in 0..count {
                w.line(&format!(
                    "const uint8_t *p{k} = rows + (({o} + {k}) / {}) * {} + (({o} + {k}) % {}) * {sw};",
                    g.ow,
                    sh * wp,
                    g.ow
                ));
            }
            for k in 0..count {
                w.line(&format!("a[{k}] = b0;"));
            }
            w.open(&format!("for (int ic = 0; ic < {}; ++ic)", g.ci));
            w.open(&format!("for (int ky = 0; ky < {kh}; ++ky)"));
            w.line(&format!("const int at = ic * {plane} + ky * {};", g.d[0] * wp));
            w.line(&format!("const int8_t *wk = wb + (ic * {kh} + ky) * {};", kq * LANES * 4));
            for q in 0..kq {
                w.line(&format!(
                    "const mlrt_q8 wq{q} = mlrt_q8_load((const uint8_t *)(const void *)(wk + {}));",
                    q * LANES * 4
                ));
            }
            for k in 0..count {
                for q in 0..kq {
                    w.line(&format!("a[{k}] = mlrt_dot4_bcast(a[{k}], p{k} + at + {}, wq{q});", 4 * q));
                }
            }
            w.close();
            w.close();
            if blocked_out {
                // Channel blocks (`blocks.rs`): pixel k's 8 channels as they are.
                let accs: Vec<String> = (0..count).map(|k| format!("a[{k}]")).collect();
                for line in lanes_stores(rq, &format!("yb + {o} * {LANES}"), &accs, "rq") {
                    w.line(&line);
                }
                return;
            }
            for k in 0..count {
                w.line(&format!("a[{k}] = mlrt_requant8_lanes(a[{k}], &rq);"));
            }
            if count < LANES {
                w.line(&format!("for (int k = {count}; k < {LANES}; ++k) a[k] = b0;"));
            }
            w.line("mlrt_acc8_transpose(a);");
            for j in 0..LANES {
                w.line(&format!("{store}(yb + {} + {o}, a[{j}], {count});", j * ohw));
            }
        };
        w.open(&format!("for (int o = 0; o + {LANES} <= {ohw}; o += {LANES})"));
        group(w, "o", LANES);
        w.close();
        let full = ohw / LANES * LANES;
        if full < ohw {
            w.line("{");
            w.indent();
            group(w, &full.to_string(), ohw - full);
            w.close();
        }
        w.close();
        w.close();
    }
}
