//! Float depthwise convolution with the vector lanes across channels, for planes whose rows
//! are too short for [`super::simd::DwConv`]'s pixel lanes (a 5-pixel row fills 5 of 8 lanes
//! and pays a partial store per row).
//!
//! Per block of 8 channels, the input planes are transposed 8 × 8 at a time into a zero-padded
//! scratch plane of 8-channel pixels, so that every tap of an output pixel is one full vector
//! load times the block's weight vector for that tap. Output pixels are computed 8 at a time
//! (8 independent accumulators), transposed back and stored as one 8-pixel vector per channel.
//! The block's planes are copied before any of its outputs is written, so it runs in place.

use super::kernels::{ConvGeo, LANES, const_data, packed_array};
use super::simd::float_store;
use super::writer::Writer;
use crate::backend::Program;
use crate::ir::{DType, Graph, Node};
use crate::ops::Op;

/// Largest scratch plane, in bytes: beyond it the pixel-lane kernel's 8× smaller plane wins
/// on memory, and its rows are long enough to fill the lanes anyway.
const MAX_SCRATCH: usize = 32 * 1024;

/// The plan for a float32 depthwise `Conv` (`group == ci == m`, a multiple of 8 channels,
/// constant weights) whose output rows are shorter than two vectors.
pub(crate) struct ChannelDw {
    g: ConvGeo,
    /// Padded plane size: rows, columns.
    hp: usize,
    wp: usize,
}

impl ChannelDw {
    pub(crate) fn of(g: &Graph, n: &Node) -> Option<ChannelDw> {
        let Op::Conv(c) = &n.op else { return None };
        let geo = ConvGeo::of_graph(g, n, c, false)?;
        let f32s = [n.inputs[0], n.inputs[1], n.outputs[0]].iter().all(|&v| g.ty(v).dtype == DType::F32);
        let weights = g.value(n.inputs[1]).data.as_ref().filter(|_| g.is_const(n.inputs[1]))?;
        let depthwise = c.group == geo.ci && c.group == geo.m && g.ty(n.inputs[1]).shape[1] == 1;
        let (hp, wp) = (geo.h + c.pads[0] + c.pads[2], geo.wd + c.pads[1] + c.pads[3]);
        let ok = depthwise
            && f32s
            && geo.m.is_multiple_of(LANES)
            && weights.len() == geo.m * c.kernel[0] * c.kernel[1]
            && geo.ow < 2 * LANES
            && hp * wp * LANES * 4 <= MAX_SCRATCH;
        ok.then_some(ChannelDw { g: geo, hp, wp })
    }

    /// Bytes of arena scratch (one padded plane of 8-channel pixels).
    pub(crate) fn scratch_bytes(&self) -> usize {
        self.hp * self.wp * LANES * 4
    }

    /// Writes the kernel of `n` (whose plan this is).
    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let g = &self.g;
        let (Some(d), Op::Conv(c)) = (const_data(p, n.inputs[1]), &n.op) else { return };
        let (hp, wp) = (self.hp, self.wp);
        let taps = g.k[0] * g.k[1];
        let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
        // Weights `[m/8][tap][8]`.
        let blocks = g.m / LANES;
        let mut packed = Vec::with_capacity(g.m * taps);
        for b in 0..blocks {
            for t in 0..taps {
                for l in 0..LANES {
                    packed.push(super::c_float(super::kernels::f32_at(d, (b * LANES + l) * taps + t).unwrap_or(0.0)));
                }
            }
        }
        packed_array(w, "float", "wd", &packed);
        w.packs_input(1);
        // The padding cells are never written: zero them once.
        w.line(&format!("for (int i = 0; i < {}; ++i) rows[i] = 0.0f;", hp * wp * LANES));
        w.open(&format!("for (int nb = 0; nb < {}; ++nb)", g.nb * blocks));
        w.line(&format!("const float *xc = x0 + nb * {};", LANES * hw));
        w.line(&format!("float *yc = y + nb * {};", LANES * ohw));
        // Input pixel `i` of the plane goes to padded cell `(i / W + pt, i % W + pl)`.
        let cell =
            |i: &str| format!("rows + (({i} / {} + {}) * {wp} + {i} % {} + {}) * {LANES}", g.wd, g.pt, g.wd, g.pl);
        w.open(&format!("for (int i = 0; i + {LANES} <= {hw}; i += {LANES})"));
        let loads: Vec<String> = (0..LANES).map(|j| format!("mlrt_f8_load(xc + {} + i)", j * hw)).collect();
        w.line(&format!("mlrt_f8 t[{LANES}] = {{ {} }};", loads.join(", ")));
        w.line("mlrt_f8_transpose(t);");
        w.line(&format!("for (int k = 0; k < {LANES}; ++k) mlrt_f8_store({}, t[k]);", cell("(i + k)")));
        w.close();
        let full_in = hw / LANES * LANES;
        if full_in < hw {
            w.open(&format!("for (int i = {full_in}; i < {hw}; ++i)"));
            w.line(&format!("float *cp = {};", cell("i")));
            w.line(&format!("for (int j = 0; j < {LANES}; ++j) cp[j] = xc[j * {hw} + i];"));
            w.close();
        }
        w.line(&format!("const float *wc = wd + (nb % {blocks}) * {};", taps * LANES));
        let bias = if n.inputs.len() > 2 {
            format!("mlrt_f8_load(x2 + (nb % {blocks}) * {LANES})")
        } else {
            "mlrt_f8_set1(0.0f)".to_string()
        };
        w.line(&format!("const mlrt_f8 bias = {bias};"));
        // Output pixels `o .. o + count` (count ≤ 8): accumulate, transpose, store per channel.
        let group = |w: &mut Writer, o: &str, count: usize| {
            // Unrolled over the pixels: constant indices keep `a` in registers.
            w.line(&format!("mlrt_f8 a[{LANES}];"));
            for k in 0..count {
                w.line("{");
                w.indent();
                w.line(&format!("const int oh = ({o} + {k}) / {}, ow = ({o} + {k}) % {};", g.ow, g.ow));
                w.line(&format!("const float *rp = rows + (oh * {} * {wp} + ow * {}) * {LANES};", g.s[0], g.s[1]));
                w.line("mlrt_f8 acc = bias;");
                for ky in 0..g.k[0] {
                    for kx in 0..g.k[1] {
                        let off = (ky * g.d[0] * wp + kx * g.d[1]) * LANES;
                        let t = ky * g.k[1] + kx;
                        w.line(&format!(
                            "acc = mlrt_f8_fmav(acc, mlrt_f8_load(rp + {off}), mlrt_f8_load(wc + {}));",
                            t * LANES
                        ));
                    }
                }
                w.line(&format!("a[{k}] = acc;"));
                w.close();
            }
            if count < LANES {
                w.line(&format!("for (int k = {count}; k < {LANES}; ++k) a[k] = bias;"));
            }
            w.line("mlrt_f8_transpose(a);");
            for j in 0..LANES {
                w.line(&float_store(
                    &c.act,
                    &format!("a[{j}]"),
                    &format!("yc + {} + {o}", j * ohw),
                    &count.to_string(),
                ));
            }
        };
        w.open(&format!("for (int o = 0; o + {LANES} <= {ohw}; o += {LANES})"));
        group(w, "o", LANES);
        w.close();
        let full_out = ohw / LANES * LANES;
        if full_out < ohw {
            w.line("{");
            w.indent();
            group(w, &full_out.to_string(), ohw - full_out);
            w.close();
        }
        w.close();
    }
}
