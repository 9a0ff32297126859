//! int8 depthwise convolution with the vector lanes across output pixels, over byte quads
//! ([`crate::backend::Isa::dot4`]: AVX-512 VNNI `VPDPBUSD`).
//!
//! Per channel, the plane is copied into scratch as unsigned bytes `x + off` (int8: x + 128)
//! inside a border of the padding value `x_zp + off`. Then every padded row `r` becomes a row
//! of quads, one per output column `ox`: its (up to) 4 horizontal taps `r[ox·sw + k·dw]`
//! (`mlrt_q8_taps`: one byte shuffle per 8 columns). Rows of quads are stored by phase
//! (`r mod sh`, then `r / sh`), so for kernel row `ky` the quads of all output pixels lie
//! contiguous in output order: 16 outputs take one 64-byte load and one `mlrt_dot4x16` per
//! kernel row against that row's weights `w − w_zp` (the fourth zero for a 3-wide kernel),
//! and one 16-byte requantizing store, whatever the row length. Padding taps are summed like
//! the others, so their share, `(x_zp + off) · Σ (w − w_zp)`, is taken out of the bias at
//! compile time. Sums are the reference's exactly (int32, wrapping). The whole channel is
//! copied before its outputs are written: the kernel also runs in place.

use super::kernels::{ConvGeo, LANES, const_data, int_at, packed_array, quad_qconv};
use super::simd::{lanes_requant, rq1_table};
use super::writer::Writer;
use crate::backend::{Isa, Program};
use crate::ir::{DType, Graph, Node};
use crate::ops::Op;
use crate::toolchain::c_type;

/// Bytes a window load may reach past the last tap it uses (`mlrt_q8_taps` reads 16 bytes at
/// `p` and at `p + 4·sw`).
const OVERREAD: usize = 32;
/// Output pixels per vector.
const VEC: usize = 2 * LANES;

/// The plan for an int8 depthwise `QConv` (requantized 8-bit output, shifts in −31..−1,
/// constant weights whose `w − w_zp` are int8) whose kernel rows fit one quad and whose taps
/// for 4 pixels fit a 16-byte window.
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
        // Rows under 8 pixels: the per-channel copy and quad rows cost more than the channel-lane
        // kernel (measured: VWW int8's 6×6 layers this way took the model from 84 to 108 µs).
        let ok =
            geo.ow >= LANES && depthwise && c.kernel[1] <= 4 && window && qc.out.as_ref().is_some_and(lanes_requant);
        let (hp, wp) = (geo.h + c.pads[0] + c.pads[2], geo.wd + c.pads[1] + c.pads[3]);
        ok.then_some(QuadDw { g: geo, hp, wp })
    }

    /// Bytes of the padded plane, with the last row's quad windows' overreach.
    fn plane_bytes(&self) -> usize {
        let reach = (self.hp - 1) * self.wp + self.g.ow.div_ceil(LANES) * LANES * self.g.s[1] + 16;
        (self.hp * self.wp).max(reach) + OVERREAD
    }

    /// Bytes of one phase's rows of quads (`ceil(hp / sh)` rows of `ow` quads), with room for
    /// a row's last 8-quad store and the last vector's reads past the end.
    fn phase_bytes(&self) -> usize {
        self.hp.div_ceil(self.g.s[0]) * self.g.ow * 4 + 4 * VEC
    }

    /// Bytes of arena scratch: the padded plane, then the quads of every phase.
    pub(crate) fn scratch_bytes(&self) -> usize {
        self.plane_bytes() + self.g.s[0] * self.phase_bytes()
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
        let q1 = rq1_table(w, rq, "c");
        let (hw, ohw, ow) = (g.h * g.wd, g.oh * g.ow, g.ow);
        let (plane, phase) = (self.plane_bytes(), self.phase_bytes());
        // The border keeps the padding value: every channel writes the same interior cells.
        w.line(&format!("for (int i = 0; i < {plane}; ++i) rows[i] = {pad};"));
        w.line(&format!("uint8_t *const quads = rows + {plane};"));
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
        // Padded row r's quads: phase r % sh, row r / sh (8 columns per shuffle, in increasing
        // order, so a row's overshoot is rewritten by the next row of its phase).
        w.open(&format!("for (int r = 0; r < {}; ++r)", self.hp));
        w.line(&format!("uint8_t *qr = quads + (r % {sh}) * {phase} + (r / {sh}) * {};", ow * 4));
        w.line(&format!("const uint8_t *pr = rows + r * {wp};"));
        w.line(&format!(
            "for (int ox = 0; ox < {ow}; ox += {LANES}) mlrt_q8_store(qr + 4 * ox, mlrt_q8_taps(pr + ox * {sw}, {sw}, {dw}));"
        ));
        w.close();
        let bias = if n.inputs.len() > 2 { "(uint32_t)x2[c]" } else { "0u" };
        w.line(&format!("const mlrt_acc16 b0 = mlrt_acc16_set1((int32_t)({bias} + (uint32_t)zc[c]));"));
        w.line(&format!("const int8_t *wc = wd + c * {};", kh * 4));
        let ty = if rq.to == DType::U8 { "u8" } else { "s8" };
        // Kernel row ky reads phase (ky·dh) % sh from its row (ky·dh) / sh on.
        let vector = |w: &mut Writer, at: &str, count: usize| {
            w.line("mlrt_acc16 a = b0;");
            for ky in 0..kh {
                let from = (ky * dh % sh) * phase + ky * dh / sh * ow * 4;
                w.line(&format!("a = mlrt_dot4x16(a, quads + {from} + 4 * {at}, wc + {});", ky * 4));
            }
            w.line(&format!(
                "mlrt_acc16_requant_{ty}(yc + {at}, a, &{q1}, {}, {}, {}, {count});",
                rq.zero_point, rq.lo, rq.hi
            ));
        };
        let (full, tail) = (ohw / VEC * VEC, ohw % VEC);
        if full > 0 {
            w.open(&format!("for (int j = 0; j < {full}; j += {VEC})"));
            vector(w, "j", VEC);
            w.close();
        }
        if tail > 0 {
            w.line("{");
            w.indent();
            vector(w, &full.to_string(), tail);
            w.close();
        }
        w.close();
    }
}
