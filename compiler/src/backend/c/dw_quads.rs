//! int8 depthwise convolution with the vector lanes across output pixels, over byte quads
//! ([`crate::backend::Isa::dot4`]: AVX-512 VNNI `VPDPBUSD`).
//!
//! Per channel, the plane is copied into scratch as unsigned bytes `x + off` (int8: x + 128)
//! inside a border of the padding value `x_zp + off`. For 8 output pixels of one kernel row,
//! `mlrt_q8_taps` gathers each pixel's (up to) 4 horizontal taps from 16-byte windows into a
//! quad per lane with one byte shuffle, and one `mlrt_dot4` multiplies them by the row's
//! weights `w − w_zp` (the fourth zero for a 3-wide kernel): a 3×3 kernel takes 3 multiplies
//! per 8 pixels instead of 9. Padding taps are summed like the others, so their share,
//! `(x_zp + off) · Σ (w − w_zp)`, is taken out of the bias at compile time. Sums are the
//! reference's exactly (int32, wrapping); requantization is `mlrt_requant8_*`. The whole
//! channel is copied before its outputs are written: the kernel also runs in place.

use super::kernels::{ConvGeo, LANES, const_data, int_at, packed_array, quad_qconv};
use super::simd::requant_params;
use super::writer::Writer;
use crate::backend::{Isa, Program};
use crate::ir::{DType, Graph, Node};
use crate::ops::Op;
use crate::toolchain::c_type;

/// Bytes a window load may reach past the last tap it uses (`mlrt_q8_taps` reads 16 bytes at
/// `p` and at `p + 4·sw`).
const OVERREAD: usize = 32;

/// The plan for an int8 depthwise `QConv` (requantized 8-bit output, constant weights whose
/// `w − w_zp` are int8) whose kernel rows fit one quad and whose taps for 4 pixels fit a
/// 16-byte window.
pub(crate) struct QuadDw {
    g: ConvGeo,
    /// Padded plane: rows, columns.
    hp: usize,
    wp: usize,
}

impl QuadDw {
    pub(crate) fn of(g: &Graph, n: &Node, isa: Isa) -> Option<QuadDw> {
        let (qc, geo) = quad_qconv(g, n, isa)?;
        let c = &qc.conv;
        let depthwise = c.group == geo.ci && c.group == geo.m && g.ty(n.inputs[1]).shape[1] == 1;
        let [sw, dw] = [geo.s[1], geo.d[1]];
        // Lanes 0..4 read bytes sw·i + dw·k (i, k < 4) of one 16-byte window.
        let window = 3 * sw + 3 * dw < 16;
        let ok = geo.ow >= LANES && depthwise && c.kernel[1] <= 4 && window;
        let (hp, wp) = (geo.h + c.pads[0] + c.pads[2], geo.wd + c.pads[1] + c.pads[3]);
        ok.then_some(QuadDw { g: geo, hp, wp })
    }

    /// Bytes of arena scratch: the padded plane and the last windows' overreach.
    pub(crate) fn scratch_bytes(&self) -> usize {
        // The last output row's vectors start up to LANES − 1 pixels past its end.
        let last = ((self.g.oh - 1) * self.g.s[0] + (self.g.k[0] - 1) * self.g.d[0]) * self.wp;
        let reach = (self.g.ow.div_ceil(LANES) * LANES) * self.g.s[1];
        (self.hp * self.wp).max(last + reach) + OVERREAD
    }

    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let g = &self.g;
        let (Some(d), Op::QConv(qc)) = (const_data(p, n.inputs[1]), &n.op) else { return };
        let Some(rq) = &qc.out else { return };
        let [kh, kw] = g.k;
        let [sh, sw] = g.s;
        let [dh, dw] = g.d;
        let wp = self.wp;
        let xt = c_type(p.graph.ty(n.inputs[0]).dtype);
        let yt = c_type(p.graph.ty(n.outputs[0]).dtype);
        let off: i32 = if xt == "int8_t" { 128 } else { 0 };
        let pad = qc.x_zp + off;
        // Weights `[c][kh][4]` (`w − w_zp`, taps past the kernel's width zero), and per
        // channel the padding value's share, taken out of the bias (wrapping).
        let wzp = |oc: usize| qc.w_zp_of(oc) as i64;
        let mut packed = vec![];
        let mut corr = vec![];
        for oc in 0..g.m {
            let mut sum = 0i64;
            for ky in 0..kh {
                for kx in 0..4 {
                    let v = if kx < kw { int_at(d, (oc * kh + ky) * kw + kx).unwrap_or(0) - wzp(oc) } else { 0 };
                    sum += v;
                    packed.push(v.to_string());
                }
            }
            corr.push(((-(pad as i64) * sum) as i32).to_string());
        }
        packed_array(w, "int8_t", "wd", &packed);
        w.packs_input(1);
        w.line(&format!("static const int32_t zc[{}] = {{{}}};", g.m, corr.join(", ")));
        let (mul, shift) = requant_params(w, rq, "c");
        let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
        // The border keeps the padding value: every channel writes the same interior cells.
        w.line(&format!("for (int i = 0; i < {}; ++i) rows[i] = {pad};", self.scratch_bytes()));
        let flip = if off == 128 { "0x80" } else { "0" };
        w.open(&format!("for (int nc = 0; nc < {}; ++nc)", g.nb * g.m));
        w.line(&format!("const int c = nc % {};", g.m));
        w.line(&format!("const {xt} *xc = x0 + nc * {hw};"));
        w.line(&format!("{yt} *yc = y + nc * {ohw};"));
        w.open(&format!("for (int r = 0; r < {}; ++r)", g.h));
        w.line(&format!(
            "mlrt_bytes_flip(rows + (r + {}) * {wp} + {}, xc + r * {}, {}, {flip});",
            g.pt, g.pl, g.wd, g.wd
        ));
        w.close();
        let bias = if n.inputs.len() > 2 { "(uint32_t)x2[c]" } else { "0u" };
        w.line(&format!("const mlrt_acc8 b0 = mlrt_acc8_set1((int32_t)({bias} + (uint32_t)zc[c]));"));
        w.line(&format!("const int8_t *wc = wd + c * {};", kh * 4));
        let store = if rq.to == DType::U8 { "mlrt_requant8_u8" } else { "mlrt_requant8_s8" };
        let vector = |w: &mut Writer, at: &str, count: &str| {
            w.line("mlrt_acc8 a = b0;");
            for ky in 0..kh {
                w.line(&format!(
                    "a = mlrt_dot4(a, mlrt_q8_taps(rp + {} + {at} * {sw}, {sw}, {dw}), wc + {});",
                    ky * dh * wp,
                    ky * 4
                ));
            }
            w.line(&format!(
                "{store}(yr + {at}, a, {mul}, {shift}, {}, {}, {}, {count});",
                rq.zero_point, rq.lo, rq.hi
            ));
        };
        w.open(&format!("for (int oh = 0; oh < {}; ++oh)", g.oh));
        w.line(&format!("const uint8_t *rp = rows + oh * {};", sh * wp));
        w.line(&format!("{yt} *yr = yc + oh * {};", g.ow));
        let (full, tail) = (g.ow / LANES * LANES, g.ow % LANES);
        if full > 0 {
            w.open(&format!("for (int ow = 0; ow < {full}; ow += {LANES})"));
            vector(w, "ow", &LANES.to_string());
            w.close();
        }
        if tail > 0 {
            w.line("{");
            w.indent();
            vector(w, &full.to_string(), &tail.to_string());
            w.close();
        }
        w.close();
        w.close();
    }
}
