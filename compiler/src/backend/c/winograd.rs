//! Float 3×3 convolutions (stride 1, padding 1, "same") by Winograd F(2×2, 3×3).
//!
//! A 2×2 output tile is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for the 4×4 input patch `d` around it:
//! 16 multiplies per tile, input channel and output channel instead of 36. The weight
//! transform `U = G g Gᵀ` is done here, at compile time, in f64; the kernel is
//! 1. per step of [`STEP`] tiles (one tile row, or several when rows are short) and per input
//!    channel, a gather of the 16 patch positions into `xg` and the input transform
//!    `V = Bᵀ d B` (vector adds over 8 tiles), into `vv[ξ][ic][tile]`;
//! 2. per block of [`OCB`] output channels, 16 small GEMMs `M[ξ] = U[ξ] · V[ξ]` (8 vector
//!    accumulators: 4 channels × 2 tile vectors, weights broadcast), then the output
//!    transform `Aᵀ M A`, bias, activation and the stores (tile pairs interleaved back into
//!    pixel rows).
//!
//! Results differ from direct convolution by rounding only (the transforms add and subtract
//! a few terms; `Aᵀ` and `Bᵀ` are exact). All of a step's input is in `vv` before any of its
//! output is written, and the one input row a step overwrites that the next step still
//! reads is saved in a ring first: the kernel also runs in place.

use super::kernels::{ConvGeo, LANES, const_data, f32_at, packed_array};
use super::simd::float_store;
use super::writer::Writer;
use crate::backend::Program;
use crate::ir::{DType, Graph, Node};
use crate::ops::Op;

/// Tiles per step: two vectors of [`LANES`].
const STEP: usize = 2 * LANES;
/// Output channels per GEMM block.
const OCB: usize = 4;

/// `G` of F(2×2, 3×3): the 4×3 weight transform.
const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// Whether every weight is a whole number: the float convolution stands for an integer one
/// (ConvInteger with a run-time zero point), whose sums must stay exact. `G g Gᵀ` has
/// quarters, which would narrow the range in which float sums of integers are exact.
fn integral(weights: &crate::ir::TensorData) -> bool {
    (0..weights.len()).all(|i| f32_at(weights, i).is_some_and(|v| v.fract() == 0.0))
}

/// The plan for a float Conv this kernel handles.
#[derive(Clone, Copy)]
pub(crate) struct WinogradConv {
    g: ConvGeo,
    /// Tiles per tile row (`ow / 2`: 4, 8 or 16, so that 4 tiles never straddle a row).
    t: usize,
    /// Tile rows per step (`STEP / t`).
    r: usize,
}

impl WinogradConv {
    /// Dense float32 Conv, 3×3, stride and dilation 1, padding 1 on every side, constant
    /// weights (not all whole numbers), at least 8 input channels, output channels a multiple
    /// of [`OCB`], width 8, 16 or 32 and height a multiple of a step's rows.
    pub(crate) fn of(g: &Graph, n: &Node) -> Option<WinogradConv> {
        let Op::Conv(c) = &n.op else { return None };
        let geo = ConvGeo::of_graph(g, n, c, false)?;
        let floats = [n.inputs[0], n.inputs[1], n.outputs[0]].iter().all(|&v| g.ty(v).dtype == DType::F32);
        let weights = g.value(n.inputs[1]).data.as_ref().filter(|_| g.is_const(n.inputs[1]))?;
        let t = geo.ow / 2;
        let ok = floats
            && c.group == 1
            && c.kernel == [3, 3]
            && c.strides == [1, 1]
            && c.dilations == [1, 1]
            && c.pads == [1, 1, 1, 1]
            && (geo.oh, geo.ow) == (geo.h, geo.wd)
            && weights.len() == geo.m * geo.ci * 9
            && matches!(t, 4 | 8 | 16)
            && geo.m.is_multiple_of(OCB)
            && geo.ci >= 8
            && !integral(weights);
        let r = STEP / t.max(1);
        (ok && geo.oh.is_multiple_of(2 * r)).then_some(WinogradConv { g: geo, t, r })
    }

    /// Floats of each scratch part: `vv`, `mm`, `xg`, the ring.
    fn parts(&self) -> [usize; 4] {
        [16 * self.g.ci * STEP, 16 * OCB * STEP, 16 * STEP, self.g.ci * self.g.wd]
    }

    /// Bytes of arena scratch.
    pub(crate) fn scratch_bytes(&self) -> usize {
        4 * self.parts().iter().sum::<usize>()
    }

    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let (Some(d), Op::Conv(c)) = (const_data(p, n.inputs[1]), &n.op) else { return };
        let Some(geo) = ConvGeo::of(p, n, c) else { return };
        let this = WinogradConv { g: geo, ..*self };
        this.emit_planned(w, n, c, d);
    }

    /// [`WinogradConv::emit`] once the plan says whether the node runs in place.
    fn emit_planned(&self, w: &mut Writer, n: &Node, c: &crate::ops::Conv, d: &crate::ir::TensorData) {
        let g = &self.g;
        let (ci, m, wd, h, r) = (g.ci, g.m, g.wd, g.h, self.r);
        let hw = h * wd;
        let obs = m / OCB;
        // U[ξ][ob][ic][k] = (G g Gᵀ)[ξ] of output channel ob·OCB + k.
        let mut u = vec![String::new(); 16 * m * ci];
        for oc in 0..m {
            for ic in 0..ci {
                let gk = |ky: usize, kx: usize| f64::from(f32_at(d, ((oc * ci + ic) * 3 + ky) * 3 + kx).unwrap_or(0.0));
                for (a, ga) in G.iter().enumerate() {
                    for (b, gb) in G.iter().enumerate() {
                        let s: f64 = (0..9).map(|t| ga[t / 3] * gk(t / 3, t % 3) * gb[t % 3]).sum();
                        let xi = 4 * a + b;
                        u[((xi * obs + oc / OCB) * ci + ic) * OCB + oc % OCB] = super::c_float(s as f32);
                    }
                }
            }
        }
        w.line("/* Winograd F(2x2, 3x3): wu = G g G^T per output and input channel, 16 positions. */");
        packed_array(w, "float", "wu", &u);
        w.packs_input(1);
        let [vv, mm, xg, _] = self.parts();
        w.line("float *const vv = rows;");
        w.line(&format!("float *const mm = vv + {vv};"));
        w.line(&format!("float *const xg = mm + {mm};"));
        if g.in_place {
            w.line(&format!("float *const ring = xg + {xg};"));
        }
        w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
        w.line(&format!("const float *xn = x0 + n * {};", ci * hw));
        w.line(&format!("float *yn = y + n * {};", m * hw));
        w.open(&format!("for (int s = 0; s < {}; ++s)", h / (2 * r)));
        self.input_transform(w);
        if g.in_place {
            // The last input row this step overwrites is the next step's first.
            let last = format!("{} * (s + 1) - 1", 2 * r);
            w.open(&format!("if (s + 1 < {})", h / (2 * r)));
            w.line(&format!(
                "for (int ic = 0; ic < {ci}; ++ic) for (int k = 0; k < {wd}; ++k) ring[ic * {wd} + k] = xn[ic * {hw} + ({last}) * {wd} + k];"
            ));
            w.close();
        }
        w.open(&format!("for (int ob = 0; ob < {obs}; ++ob)"));
        self.gemm(w);
        self.output_transform(w, c, n.inputs.len() > 2);
        w.close();
        w.close();
        w.close();
    }

    /// Gathers each input channel's patches for the step's tiles into `xg[pos][tile]` and
    /// writes `vv[ξ][ic][tile] = (Bᵀ d B)[ξ]`.
    fn input_transform(&self, w: &mut Writer) {
        let g = &self.g;
        let (ci, wd, h, t, r) = (g.ci, g.wd, g.h, self.t, self.r);
        w.open(&format!("for (int ic = 0; ic < {ci}; ++ic)"));
        w.line(&format!("const float *xc = xn + ic * {};", h * wd));
        w.open(&format!("for (int rr = 0; rr < {r}; ++rr)"));
        w.open("for (int i = 0; i < 4; ++i)");
        w.line(&format!("const int ih = 2 * (s * {r} + rr) - 1 + i;"));
        w.line(&format!("float *xd = xg + i * {} + rr * {t};", 4 * STEP));
        w.open(&format!("if (ih < 0 || ih >= {h})"));
        w.line(&format!("for (int j = 0; j < 4; ++j) for (int t = 0; t < {t}; ++t) xd[j * {STEP} + t] = 0.0f;"));
        w.close();
        w.open("else");
        let src = if g.in_place {
            format!("(s > 0 && ih == {} * s - 1) ? ring + ic * {wd} : xc + ih * {wd}", 2 * r)
        } else {
            format!("xc + ih * {wd}")
        };
        // Patch column j of tile t is input column 2t + j − 1: the first and last tiles' outer
        // columns are the padding.
        w.line(&format!("const float *src = {src};"));
        if t.is_multiple_of(LANES) {
            // 8 tiles' columns 2t and 2t + 1 are the even and odd elements of 16 inputs;
            // columns 2t − 1 and 2t + 2 are the same shifted by one tile.
            w.open(&format!("for (int t0 = 0; t0 < {t}; t0 += {LANES})"));
            w.line("mlrt_f8 ev, od;");
            w.line("mlrt_f8_unzip(src + 2 * t0, &ev, &od);");
            w.line("mlrt_f8_store(xd + t0, mlrt_f8_shift_in(od, t0 > 0 ? src[2 * t0 - 1] : 0.0f));");
            w.line(&format!("mlrt_f8_store(xd + {STEP} + t0, ev);"));
            w.line(&format!("mlrt_f8_store(xd + {} + t0, od);", 2 * STEP));
            w.line(&format!(
                "mlrt_f8_store(xd + {} + t0, mlrt_f8_shift_out(ev, t0 + {LANES} < {t} ? src[2 * t0 + {}] : 0.0f));",
                3 * STEP,
                2 * LANES
            ));
            w.close();
        } else {
            w.line("xd[0] = 0.0f;");
            w.line(&format!("for (int t = 1; t < {t}; ++t) xd[t] = src[2 * t - 1];"));
            w.line(&format!("for (int t = 0; t < {t}; ++t) xd[{STEP} + t] = src[2 * t];"));
            w.line(&format!("for (int t = 0; t < {t}; ++t) xd[{} + t] = src[2 * t + 1];", 2 * STEP));
            w.line(&format!("for (int t = 0; t < {}; ++t) xd[{} + t] = src[2 * t + 2];", t - 1, 3 * STEP));
            w.line(&format!("xd[{}] = 0.0f;", 3 * STEP + t - 1));
        }
        w.close();
        w.close();
        w.close();
        let ci_stride = ci * STEP;
        w.open(&format!("for (int v = 0; v < {STEP}; v += {LANES})"));
        w.line("mlrt_f8 d[16], e[16];");
        w.line(&format!("for (int k = 0; k < 16; ++k) d[k] = mlrt_f8_load(xg + k * {STEP} + v);"));
        // Bᵀ on the rows of d (over i), then B on the columns (over j).
        for j in 0..4 {
            w.line(&format!(
                "e[{}] = mlrt_f8_sub(d[{}], d[{}]); e[{}] = mlrt_f8_add(d[{}], d[{}]); e[{}] = mlrt_f8_sub(d[{}], d[{}]); e[{}] = mlrt_f8_sub(d[{}], d[{}]);",
                j,
                j,
                8 + j,
                4 + j,
                4 + j,
                8 + j,
                8 + j,
                8 + j,
                4 + j,
                12 + j,
                4 + j,
                12 + j
            ));
        }
        w.line(&format!("float *vo = vv + ic * {STEP} + v;"));
        for a in 0..4 {
            let e = |j: usize| format!("e[{}]", 4 * a + j);
            let at = |b: usize| (4 * a + b) * ci_stride;
            w.line(&format!(
                "mlrt_f8_store(vo + {}, mlrt_f8_sub({}, {})); mlrt_f8_store(vo + {}, mlrt_f8_add({}, {})); mlrt_f8_store(vo + {}, mlrt_f8_sub({}, {})); mlrt_f8_store(vo + {}, mlrt_f8_sub({}, {}));",
                at(0),
                e(0),
                e(2),
                at(1),
                e(1),
                e(2),
                at(2),
                e(2),
                e(1),
                at(3),
                e(1),
                e(3)
            ));
        }
        w.close();
        w.close();
    }

    /// `mm[ξ][k][tile] = Σ_ic U[ξ][ob·OCB + k][ic] · vv[ξ][ic][tile]`.
    fn gemm(&self, w: &mut Writer) {
        let ci = self.g.ci;
        let obs = self.g.m / OCB;
        w.open("for (int xi = 0; xi < 16; ++xi)");
        w.line(&format!("const float *vx = vv + xi * {};", ci * STEP));
        w.line(&format!("const float *wx = wu + (xi * {obs} + ob) * {};", ci * OCB));
        let accs: Vec<String> =
            (0..OCB).flat_map(|k| (0..2).map(move |v| format!("a{k}{v} = mlrt_f8_set1(0.0f)"))).collect();
        w.line(&format!("mlrt_f8 {};", accs.join(", ")));
        w.open(&format!("for (int ic = 0; ic < {ci}; ++ic)"));
        w.line(&format!(
            "const mlrt_f8 v0 = mlrt_f8_load(vx + ic * {STEP}), v1 = mlrt_f8_load(vx + ic * {STEP} + {LANES});"
        ));
        w.line(&format!("const float *wv = wx + ic * {OCB};"));
        for k in 0..OCB {
            w.line(&format!("a{k}0 = mlrt_f8_fma(a{k}0, v0, wv + {k}); a{k}1 = mlrt_f8_fma(a{k}1, v1, wv + {k});"));
        }
        w.close();
        for k in 0..OCB {
            w.line(&format!(
                "mlrt_f8_store(mm + (xi * {OCB} + {k}) * {STEP}, a{k}0); mlrt_f8_store(mm + (xi * {OCB} + {k}) * {STEP} + {LANES}, a{k}1);"
            ));
        }
        w.close();
    }

    /// `Aᵀ M A` per output channel of the block and tile vector, plus bias, activation, and
    /// the stores: lanes hold tiles, so the two columns of a tile row are interleaved into
    /// two vectors of 8 consecutive pixels (4 tiles each, never straddling a tile row).
    fn output_transform(&self, w: &mut Writer, c: &crate::ops::Conv, bias: bool) {
        let g = &self.g;
        let (wd, hw, t, r) = (g.wd, g.h * g.wd, self.t, self.r);
        for k in 0..OCB {
            w.line("{");
            w.indent();
            w.line(&format!("const int oc = ob * {OCB} + {k};"));
            w.line(&format!("const mlrt_f8 b = mlrt_f8_set1({});", if bias { "x2[oc]" } else { "0.0f" }));
            w.line(&format!("float *yc = yn + oc * {hw};"));
            for v in 0..2 {
                w.line("{");
                w.indent();
                let mv = |xi: usize| format!("mm + ({xi} * {OCB} + {k}) * {STEP} + {}", v * LANES);
                w.line("mlrt_f8 q[16], t0[4], t1[4], lo, hi;");
                for xi in 0..16 {
                    w.line(&format!("q[{xi}] = mlrt_f8_load({});", mv(xi)));
                }
                w.open("for (int b2 = 0; b2 < 4; ++b2)");
                w.line("t0[b2] = mlrt_f8_add(mlrt_f8_add(q[b2], q[4 + b2]), q[8 + b2]);");
                w.line("t1[b2] = mlrt_f8_sub(mlrt_f8_sub(q[4 + b2], q[8 + b2]), q[12 + b2]);");
                w.close();
                for (row, tr) in [(0, "t0"), (1, "t1")] {
                    w.line(&format!(
                        "mlrt_f8_zip(mlrt_f8_add(mlrt_f8_add(mlrt_f8_add({tr}[0], {tr}[1]), {tr}[2]), b), mlrt_f8_add(mlrt_f8_sub(mlrt_f8_sub({tr}[1], {tr}[2]), {tr}[3]), b), &lo, &hi);"
                    ));
                    for (half, name) in [(0, "lo"), (1, "hi")] {
                        let q = v * LANES + half * (LANES / 2);
                        let (rr, tt) = (q / t, q % t);
                        let dst = format!("yc + (2 * (s * {r} + {rr}) + {row}) * {wd} + {}", 2 * tt);
                        w.line(&float_store(&c.act, name, &dst, &LANES.to_string()));
                    }
                }
                w.close();
            }
            w.close();
        }
    }
}
