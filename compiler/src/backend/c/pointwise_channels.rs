//! Float 1×1 convolution with the vector lanes across output channels, for planes too small
//! for [`super::simd::RowConv`]'s pixel lanes (a 3×3 plane fills 9 of 16 lanes).
//!
//! Weights are packed at build time as `[m / (8·ocv)][ci][8·ocv]`. For each block of
//! [`PIXELS`] pixels, their input columns are copied to scratch (`[ci][PIXELS]`, so the kernel
//! also runs in place: the block's outputs overwrite only its own, already copied, inputs);
//! then a register tile of `ocv` channel vectors × `PIXELS` pixels accumulates
//! `w[ic][oc..oc+8] · x[ic][p]` over all input channels, gets its activation as a vector and
//! is stored lane by lane to the channel planes.

use super::kernels::{ConvGeo, LANES, const_data, packed_array};
use super::simd::float_store;
use super::writer::Writer;
use crate::backend::Program;
use crate::ir::{DType, Graph, Node};
use crate::ops::Op;

/// Pixels per register tile: 3 × 4 vectors = 12 accumulators, 7 loads per 12 multiply-adds.
const PIXELS: usize = 3;

/// The plan for a float32 1×1 convolution (stride 1, no padding, constant weights, output
/// channels a multiple of 8) whose plane would leave a fifth or more of the pixel lanes idle.
pub(crate) struct ChannelPointwise {
    g: ConvGeo,
    /// Channel vectors per register tile.
    ocv: usize,
}

impl ChannelPointwise {
    pub(crate) fn of(g: &Graph, n: &Node) -> Option<ChannelPointwise> {
        let Op::Conv(c) = &n.op else { return None };
        let geo = ConvGeo::of_graph(g, n, c, false)?.flattened();
        let f32s = [n.inputs[0], n.inputs[1], n.outputs[0]].iter().all(|&v| g.ty(v).dtype == DType::F32);
        let weights = g.value(n.inputs[1]).data.as_ref().filter(|_| g.is_const(n.inputs[1]))?;
        let hw = geo.ow;
        // Lanes the pixel-lane kernel fills: tiles of 16 pixels, or of 8 on planes under 16.
        let tile = if hw >= 2 * LANES { 2 * LANES } else { LANES };
        let pixel_lanes_idle = hw * 5 < hw.div_ceil(tile) * tile * 4;
        let ok = c.group == 1
            && f32s
            && geo.h == 1
            && geo.k == [1, 1]
            && geo.m.is_multiple_of(LANES)
            && weights.len() == geo.m * geo.ci
            && pixel_lanes_idle;
        let ocv = [4, 2, 1].into_iter().find(|v| geo.m.is_multiple_of(v * LANES))?;
        ok.then_some(ChannelPointwise { g: geo, ocv })
    }

    /// Bytes of arena scratch (the input columns of one pixel block).
    pub(crate) fn scratch_bytes(&self) -> usize {
        self.g.ci * PIXELS * 4
    }

    /// Writes the kernel of `n` (whose plan this is).
    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let g = &self.g;
        let (Some(d), Op::Conv(c)) = (const_data(p, n.inputs[1]), &n.op) else { return };
        let (ci, m, hw, ocv) = (g.ci, g.m, g.ow, self.ocv);
        let width = ocv * LANES;
        let mut packed = Vec::with_capacity(m * ci);
        for b in 0..m / width {
            for ic in 0..ci {
                for l in 0..width {
                    packed.push(super::c_float(super::kernels::f32_at(d, (b * width + l) * ci + ic).unwrap_or(0.0)));
                }
            }
        }
        packed_array(w, "float", "wp", &packed);
        w.packs_input(1);
        w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
        w.line(&format!("const float *xn = x0 + n * {};", ci * hw));
        w.line(&format!("float *yn = y + n * {};", m * hw));
        // Pixels `p0 .. p0 + count`.
        let block = |w: &mut Writer, p0: &str, count: usize| {
            w.line(&format!(
                "for (int ic = 0; ic < {ci}; ++ic) for (int k = 0; k < {count}; ++k) rows[ic * {count} + k] = xn[ic * {hw} + {p0} + k];"
            ));
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
            w.line(&format!("const float *wb = wp + ob * {};", ci * width));
            w.open(&format!("for (int ic = 0; ic < {ci}; ++ic)"));
            for v in 0..ocv {
                w.line(&format!("const mlrt_f8 wv{v} = mlrt_f8_load(wb + ic * {width} + {});", v * LANES));
            }
            for k in 0..count {
                for v in 0..ocv {
                    w.line(&format!("a{v}{k} = mlrt_f8_fma(a{v}{k}, wv{v}, rows + ic * {count} + {k});"));
                }
            }
            w.close();
            // Lane l of a{v}{k} is channel ob·width + 8v + l at pixel p0 + k.
            for v in 0..ocv {
                for k in 0..count {
                    w.line("{");
                    w.indent();
                    w.line(&format!("float lanes[{LANES}];"));
                    w.line(&float_store(&c.act, &format!("a{v}{k}"), "lanes", &LANES.to_string()));
                    w.line(&format!(
                        "for (int l = 0; l < {LANES}; ++l) yn[(ob * {width} + {} + l) * {hw} + {p0} + {k}] = lanes[l];",
                        v * LANES
                    ));
                    w.close();
                }
            }
            w.close();
        };
        let full = hw / PIXELS * PIXELS;
        if full > 0 {
            w.open(&format!("for (int p0 = 0; p0 < {full}; p0 += {PIXELS})"));
            block(w, "p0", PIXELS);
            w.close();
        }
        if full < hw {
            block(w, &full.to_string(), hw - full);
        }
        w.close();
    }
}
