//! Float dense convolution with the vector lanes across output channels, for planes whose
//! rows are too short for [`super::simd::RowConv`]'s pixel lanes (a 3×3 plane fills 9 of 16
//! lanes, a 5-pixel row 5 of 8).
//!
//! Weights are packed at build time as `[m / (8·ocv)][ci·kh·kw][8·ocv]`. For each block of
//! [`PIXELS`] output pixels, their input patches are gathered to scratch (`[ci·kh·kw][PIXELS]`,
//! zero where the patch reaches into padding); then a register tile of `ocv` channel vectors
//! × `PIXELS` pixels accumulates `w[tap][oc..oc+8] · patch[tap][p]` over all taps, gets its
//! activation as a vector and is stored lane by lane to the channel planes. A 1×1 convolution
//! runs in place: a pixel block's outputs overwrite only its own, already gathered, inputs.

use super::kernels::{ConvGeo, LANES, const_data, packed_array};
use super::simd::float_store;
use super::writer::Writer;
use crate::backend::Program;
use crate::ir::{DType, Graph, Node};
use crate::ops::Op;

/// Pixels per register tile: 3 × 4 vectors = 12 accumulators, 7 loads per 12 multiply-adds.
const PIXELS: usize = 3;

/// The plan for a float32 dense convolution (constant weights, output channels a multiple of
/// 8) whose rows would leave a fifth or more of the pixel lanes idle, or (`blocked`) that
/// reads or writes channel blocks (`blocks.rs`). Convolutions that are planned in place
/// ([`Op::in_place`]) qualify only when 1×1.
pub(crate) struct ChannelConv {
    g: ConvGeo,
    /// Rows and columns of the zero-padded input planes (unused by a 1×1 convolution).
    padded: [usize; 2],
    /// Channel vectors per register tile.
    ocv: usize,
}

impl ChannelConv {
    pub(crate) fn of(g: &Graph, n: &Node, blocked: bool) -> Option<ChannelConv> {
        let Op::Conv(c) = &n.op else { return None };
        let geo = ConvGeo::of_graph(g, n, c, false)?.flattened();
        let f32s = [n.inputs[0], n.inputs[1], n.outputs[0]].iter().all(|&v| g.ty(v).dtype == DType::F32);
        let weights = g.value(n.inputs[1]).data.as_ref().filter(|_| g.is_const(n.inputs[1]))?;
        let taps = geo.ci * geo.k[0] * geo.k[1];
        // Lanes the pixel-lane kernel fills: tiles of 16 pixels, or of 8 on rows under 16.
        let ow = geo.ow;
        let tile = if ow >= 2 * LANES { 2 * LANES } else { LANES };
        let pixel_lanes_idle = ow * 5 < ow.div_ceil(tile) * tile * 4;
        let ok = c.group == 1
            && f32s
            && geo.m.is_multiple_of(LANES)
            && weights.len() == geo.m * taps
            && (pixel_lanes_idle || blocked)
            && (geo.k == [1, 1] || n.op.in_place(g, n).is_none());
        let ocv = [4, 2, 1].into_iter().find(|v| geo.m.is_multiple_of(v * LANES))?;
        let padded = [geo.h + c.pads[0] + c.pads[2], geo.wd + c.pads[1] + c.pads[3]];
        ok.then_some(ChannelConv { g: geo, padded, ocv })
    }

    /// Bytes of arena scratch: a 1×1 convolution's pixel-block columns, else the padded planes.
    pub(crate) fn scratch_bytes(&self) -> usize {
        let g = &self.g;
        if g.k == [1, 1] && g.s == [1, 1] && g.pt == 0 && g.pl == 0 {
            g.ci * PIXELS * 4
        } else {
            g.ci * self.padded[0] * self.padded[1] * 4
        }
    }

    /// Writes the kernel of `n` (whose plan this is).
    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let g = &self.g;
        let (Some(d), Op::Conv(c)) = (const_data(p, n.inputs[1]), &n.op) else { return };
        let (m, ocv) = (g.m, self.ocv);
        let [kh, kw] = g.k;
        let taps = g.ci * kh * kw;
        let (plane_in, plane_out) = (g.h * g.wd, g.oh * g.ow);
        let width = ocv * LANES;
        let choice = p.choice(n);
        let (xb, yb) = (choice.x_blocked, choice.y_blocked);
        let mut packed = Vec::with_capacity(m * taps);
        for b in 0..m / width {
            for t in 0..taps {
                for l in 0..width {
                    packed.push(super::c_float(super::kernels::f32_at(d, (b * width + l) * taps + t).unwrap_or(0.0)));
                }
            }
        }
        packed_array(w, "float", "wp", &packed);
        w.packs_input(1);
        // A 1×1 convolution gathers each pixel block's columns (it may run in place); any other
        // reads its taps straight from a zero-padded copy of the input planes (the scratch), through a
        // table of tap offsets.
        let pointwise = [kh, kw] == [1, 1] && g.s == [1, 1] && g.pt == 0 && g.pl == 0;
        let (hp, wp) = (self.padded[0], self.padded[1]);
        if !pointwise {
            let offs: Vec<String> = (0..g.ci)
                .flat_map(|ic| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (ic, ky, kx))))
                .map(|(ic, ky, kx)| ((ic * hp + ky * g.d[0]) * wp + kx * g.d[1]).to_string())
                .collect();
            packed_array(w, "int", "off", &offs);
            w.line(&format!("for (int i = 0; i < {}; ++i) rows[i] = 0.0f;", g.ci * hp * wp));
        }
        w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
        w.line(&format!("const float *xn = x0 + n * {};", g.ci * plane_in));
        w.line(&format!("float *yn = y + n * {};", m * plane_out));
        if !pointwise {
            // Input row `r` (channel r / h, row r % h), element `q`.
            let x = if xb {
                format!(
                    "xn[((r / {h} / {LANES} * {plane_in} + r % {h} * {wd} + q) * {LANES}) + r / {h} % {LANES}]",
                    h = g.h,
                    wd = g.wd
                )
            } else {
                format!("xn[r * {} + q]", g.wd)
            };
            w.open(&format!("for (int r = 0; r < {}; ++r)", g.ci * g.h));
            w.line(&format!(
                "for (int q = 0; q < {wd}; ++q) rows[(r / {h} * {hp} + r % {h} + {pt}) * {wp} + {pl} + q] = {x};",
                wd = g.wd,
                h = g.h,
                pt = g.pt,
                pl = g.pl
            ));
            w.close();
        }
        // Output pixels `p0 .. p0 + count` (flat over the output plane).
        let block = |w: &mut Writer, p0: &str, count: usize| {
            if pointwise && xb {
                // `rows[ic / 8][k][ic % 8]`: the pixels' channel vectors.
                w.line(&format!(
                    "for (int b = 0; b < {}; ++b) for (int k = 0; k < {count}; ++k) mlrt_f8_store(rows + (b * {count} + k) * {LANES}, mlrt_f8_load(xn + (b * {plane_in} + {p0} + k) * {LANES}));",
                    g.ci / LANES
                ));
            } else if pointwise {
                w.line(&format!(
                    "for (int ic = 0; ic < {}; ++ic) for (int k = 0; k < {count}; ++k) rows[ic * {count} + k] = xn[ic * {plane_in} + {p0} + k];",
                    g.ci
                ));
            } else {
                // Padded-plane offset of each pixel's first tap.
                for k in 0..count {
                    w.line(&format!(
                        "const int b{k} = ({p0} + {k}) / {ow} * {} + ({p0} + {k}) % {ow} * {};",
                        g.s[0] * wp,
                        g.s[1],
                        ow = g.ow
                    ));
                }
            }
            w.open(&format!("for (int ob = 0; ob < {}; ++ob)", m / width));
            let accs: Vec<String> = (0..ocv)
                .flat_map(|v| (0..count).map(move |k| (v, k)))
                .map(|(v, k)| {
                    let b = if n.inputs.len() > 2 {
                        format!("mlrt_f8_load(x2 + ob * {width} + {})", v * LANES)
                    } else {
                        "mlrt_f8_set1(0.0f)".to_string()
                    };
                    format!("a{v}{k} = {b}")
                })
                .collect();
            w.line(&format!("mlrt_f8 {};", accs.join(", ")));
            w.line(&format!("const float *wb = wp + ob * {};", taps * width));
            // Blocked pointwise input: tap `t = 8·tb + l` of pixel k is `rows[tb][k][l]`.
            let lanes = if pointwise && xb { LANES } else { 1 };
            if lanes > 1 {
                w.open(&format!("for (int tb = 0; tb < {}; ++tb)", taps / LANES));
            } else {
                w.open(&format!("for (int t = 0; t < {taps}; ++t)"));
            }
            for l in 0..lanes {
                let t = if lanes > 1 { format!("(tb * {LANES} + {l})") } else { "t".to_string() };
                for v in 0..ocv {
                    w.line(&format!("const mlrt_f8 wv{v}{l} = mlrt_f8_load(wb + {t} * {width} + {});", v * LANES));
                }
                for k in 0..count {
                    for v in 0..ocv {
                        let x = match (pointwise, lanes > 1) {
                            (true, true) => format!("rows + (tb * {count} + {k}) * {LANES} + {l}"),
                            (true, false) => format!("rows + t * {count} + {k}"),
                            _ => format!("rows + b{k} + off[t]"),
                        };
                        w.line(&format!("a{v}{k} = mlrt_f8_fma(a{v}{k}, wv{v}{l}, {x});"));
                    }
                }
            }
            w.close();
            // Lane l of a{v}{k} is channel ob·width + 8v + l at pixel p0 + k.
            for v in 0..ocv {
                for k in 0..count {
                    if yb {
                        let dst = format!("yn + ((ob * {ocv} + {v}) * {plane_out} + {p0} + {k}) * {LANES}");
                        w.line(&float_store(&c.act, &format!("a{v}{k}"), &dst, &LANES.to_string()));
                        continue;
                    }
                    w.line("{");
                    w.indent();
                    w.line(&format!("float lanes[{LANES}];"));
                    w.line(&float_store(&c.act, &format!("a{v}{k}"), "lanes", &LANES.to_string()));
                    w.line(&format!(
                        "for (int l = 0; l < {LANES}; ++l) yn[(ob * {width} + {} + l) * {plane_out} + {p0} + {k}] = lanes[l];",
                        v * LANES
                    ));
                    w.close();
                }
            }
            w.close();
        };
        let full = plane_out / PIXELS * PIXELS;
        if full > 0 {
            w.open(&format!("for (int p0 = 0; p0 < {full}; p0 += {PIXELS})"));
            block(w, "p0", PIXELS);
            w.close();
        }
        if full < plane_out {
            block(w, &full.to_string(), plane_out - full);
        }
        w.close();
    }
}
