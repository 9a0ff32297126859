//! Depthwise convolution (float32, or int8 with requantized 8-bit output) with the vector
//! lanes across channels, for planes whose rows are too short for
//! [`super::simd::DwConv`]'s pixel lanes (a 5-pixel row fills 5 of 8 lanes and pays a
//! partial store per row).
//!
//! Per block of 8 channels, the input planes are transposed 8 × 8 at a time into a zero-padded
//! scratch plane of 8-channel pixels, so that every tap of an output pixel is one full vector
//! load times the block's weight vector for that tap (`mlrt_f8_fmav`). int8 planes hold
//! `x − x_zp` (padding is 0 and adds nothing), first as int32, then joined in place into
//! int16 pairs of horizontally neighbouring taps `(x[p], x[p + dw])`, so that `mlrt_dot8`
//! (`vpmaddwd`, VNNI `vpdpwssd`, `smlal`) takes two taps per multiply over `w − w_zp` pairs. Output
//! pixels are computed 8 at a time (8 independent accumulators), transposed back and stored
//! as one 8-pixel vector per channel, where int8 sums are requantized with that channel's
//! parameters (`mlrt_requant8_*`, bit-exact with `mlrt_requant`). The block's planes are
//! copied before any of its outputs is written, so it runs in place.

use super::kernels::{ConvGeo, LANES, const_data, int_at, packed_array};
use super::simd::{float_store, lanes_requant, lanes_requant_tables, lanes_stores, requant_params};
use super::writer::Writer;
use crate::backend::Program;
use crate::ir::{DType, Graph, Node};
use crate::ops::Op;

/// Largest scratch plane, in bytes: beyond it the pixel-lane kernel's 8× smaller plane wins
/// on memory, and its rows are long enough to fill the lanes anyway.
const MAX_SCRATCH: usize = 32 * 1024;

/// The plan for a depthwise `Conv` (float32) or `QConv` (8-bit, requantized): `group == ci
/// == m`, a multiple of 8 channels, constant weights, output rows shorter than two vectors.
pub(crate) struct ChannelDw {
    g: ConvGeo,
    /// Padded plane size: rows, columns.
    hp: usize,
    wp: usize,
    /// int8 `QConv` rather than float `Conv`.
    int8: bool,
}

impl ChannelDw {
    pub(crate) fn of(g: &Graph, n: &Node) -> Option<ChannelDw> {
        let (c, int8) = match &n.op {
            Op::Conv(c) => (c, false),
            Op::QConv(qc) if qc.out.is_some() => (&qc.conv, true),
            _ => return None,
        };
        let geo = ConvGeo::of_graph(g, n, c, false)?;
        let ok = |d: DType| if int8 { matches!(d, DType::I8 | DType::U8) } else { d == DType::F32 };
        let types = [n.inputs[0], n.inputs[1], n.outputs[0]].iter().all(|&v| ok(g.ty(v).dtype));
        let weights = g.value(n.inputs[1]).data.as_ref().filter(|_| g.is_const(n.inputs[1]))?;
        let depthwise = c.group == geo.ci && c.group == geo.m && g.ty(n.inputs[1]).shape[1] == 1;
        let (hp, wp) = (geo.h + c.pads[0] + c.pads[2], geo.wd + c.pads[1] + c.pads[3]);
        let ok = depthwise
            && types
            && geo.m.is_multiple_of(LANES)
            && weights.len() == geo.m * c.kernel[0] * c.kernel[1]
            && geo.ow < 2 * LANES
            && (hp * wp + geo.d[1]) * LANES * 4 <= MAX_SCRATCH;
        ok.then_some(ChannelDw { g: geo, hp, wp, int8 })
    }

    /// Bytes of arena scratch: one padded plane of 8-channel pixels, float or int32 (int8:
    /// and `dw` zero pixels after it, the partners of its last pixels).
    pub(crate) fn scratch_bytes(&self) -> usize {
        (self.hp * self.wp + if self.int8 { self.g.d[1] } else { 0 }) * LANES * 4
    }

    /// C type of the plane (the kernel's scratch parameter).
    pub(crate) fn scratch_type(&self) -> &'static str {
        if self.int8 { "int32_t" } else { "float" }
    }

    /// Writes the kernel of `n` (whose plan this is).
    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let g = &self.g;
        let Some(d) = const_data(p, n.inputs[1]) else { return };
        let (hp, wp) = (self.hp, self.wp);
        let taps = g.k[0] * g.k[1];
        let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
        let blocks = g.m / LANES;
        let int8 = match &n.op {
            Op::QConv(qc) => Some(qc),
            _ => None,
        };
        // Weights `[m/8][tap][8]` (float), `[m/8][kh][kw/2][8][2]` (int8: `w − w_zp` pairs of
        // horizontal taps, the missing tap of an odd width zero).
        let [kh, kw] = g.k;
        let kwp = kw.div_ceil(2);
        let weight = |oc: usize, t: usize| match int8 {
            Some(qc) => (int_at(d, oc * taps + t).unwrap_or(0) - qc.w_zp_of(oc) as i64).to_string(),
            None => super::c_float(super::kernels::f32_at(d, oc * taps + t).unwrap_or(0.0)),
        };
        let mut packed = Vec::with_capacity(g.m * taps);
        for b in 0..blocks {
            if int8.is_some() {
                for ky in 0..kh {
                    for kp in 0..kwp {
                        for l in 0..LANES {
                            for e in 0..2 {
                                let kx = 2 * kp + e;
                                packed.push(if kx < kw { weight(b * LANES + l, ky * kw + kx) } else { "0".into() });
                            }
                        }
                    }
                }
                continue;
            }
            for t in 0..taps {
                for l in 0..LANES {
                    packed.push(weight(b * LANES + l, t));
                }
            }
        }
        let et = self.scratch_type();
        packed_array(w, if int8.is_some() { "int16_t" } else { et }, "wd", &packed);
        w.packs_input(1);
        let xt = crate::toolchain::c_type(p.graph.ty(n.inputs[0]).dtype);
        // Vector type and helpers: load, multiply-add, transpose.
        let (vt, load, mla, transpose, zero) = if int8.is_some() {
            ("mlrt_acc8", "mlrt_acc8_load32", "mlrt_acc8_mla", "mlrt_acc8_transpose", "0")
        } else {
            ("mlrt_f8", "mlrt_f8_load", "mlrt_f8_fmav", "mlrt_f8_transpose", "0.0f")
        };
        // int8 requantization: per lane before the transpose back (`mlrt_requant8_lanes`,
        // parameters prepared once per block) where every shift allows it, else per channel
        // after it.
        let lanes_rq = int8.and_then(|qc| qc.out.as_ref()).filter(|rq| lanes_requant(rq));
        if let Some(rq) = lanes_rq {
            lanes_requant_tables(w, rq, g.m);
        }
        let requant = int8.and_then(|qc| qc.out.as_ref()).map(|rq| {
            let (mul, shift) = if lanes_rq.is_some() { Default::default() } else { requant_params(w, rq, "oc") };
            let ty = if rq.to == DType::U8 { "u8" } else { "s8" };
            (ty, mul, shift, rq.zero_point, rq.lo, rq.hi)
        });
        let act = match &n.op {
            Op::Conv(c) => c.act,
            _ => None,
        };
        // The padding cells (and int8's trailing partners) are never written: zero them once.
        // A joined padding cell holds the pair (0, ·), whose low half, all a later join
        // reads of it, is still 0.
        w.line(&format!("for (int i = 0; i < {}; ++i) rows[i] = {zero};", self.scratch_bytes() / 4));
        w.open(&format!("for (int nb = 0; nb < {}; ++nb)", g.nb * blocks));
        w.line(&format!("const {xt} *xc = x0 + nb * {};", LANES * hw));
        let yt = crate::toolchain::c_type(p.graph.ty(n.outputs[0]).dtype);
        w.line(&format!("{yt} *yc = y + nb * {};", LANES * ohw));
        // Input pixel `i` of an NCHW plane goes to padded cell `cin[i]` = `(i / W + pt, i % W +
        // pl)`; output pixel `o` reads its window from cell `cout[o]` (tables: no divisions per
        // pixel).
        let idx = if hp * wp < 1 << 16 { "unsigned short" } else { "unsigned" };
        let cout: Vec<String> =
            (0..ohw).map(|o| ((o / g.ow) * g.s[0] * wp + (o % g.ow) * g.s[1]).to_string()).collect();
        let choice = p.choice(n);
        if !choice.x_blocked {
            let cin: Vec<String> = (0..hw).map(|i| ((i / g.wd + g.pt) * wp + i % g.wd + g.pl).to_string()).collect();
            packed_array(w, idx, "cin", &cin);
        }
        packed_array(w, idx, "cout", &cout);
        if let (true, Some(qc)) = (choice.x_blocked, int8) {
            self.pairs_from_blocks(w, xt, qc.x_zp);
        } else if choice.x_blocked {
            // Float channel blocks (`blocks.rs`): each pixel's vector goes to its padded cell as
            // is, row by row.
            w.line(&format!(
                "for (int r = 0; r < {}; ++r) for (int q = 0; q < {}; ++q) mlrt_f8_store(rows + ((r + {}) * {wp} + {} + q) * {LANES}, mlrt_f8_load(xc + (r * {} + q) * {LANES}));",
                g.h, g.wd, g.pt, g.pl, g.wd
            ));
        } else {
            self.transpose_in(w, xt, int8.map(|qc| qc.x_zp));
        }
        if int8.is_some() && !choice.x_blocked {
            w.line(&format!(
                "for (int p = 0; p < {}; ++p) mlrt_pair8_join(rows + p * {LANES}, rows + (p + {}) * {LANES});",
                hp * wp,
                g.d[1]
            ));
        }
        let wt = if int8.is_some() { "int16_t" } else { et };
        let per_block = if int8.is_some() { kh * kwp * LANES * 2 } else { taps * LANES };
        w.line(&format!("const {wt} *wc = wd + (nb % {blocks}) * {per_block};"));
        let bias = if n.inputs.len() > 2 {
            format!("{load}(x2 + (nb % {blocks}) * {LANES})")
        } else {
            format!("{vt}_set1({zero})")
        };
        w.line(&format!("const {vt} bias = {bias};"));
        if let Some(rq) = lanes_rq {
            w.line(&format!(
                "const mlrt_rq8 rq = mlrt_rq8_prepare(rq_mul + (nb % {blocks}) * {LANES}, rq_shift + (nb % {blocks}) * {LANES}, {}, {}, {});",
                rq.zero_point, rq.lo, rq.hi
            ));
        }
        // Output pixels `o .. o + count` (count ≤ 8): accumulate, transpose, store per channel.
        let group = |w: &mut Writer, o: &str, count: usize| {
            // Unrolled over the pixels: constant indices keep `a` in registers.
            w.line(&format!("{vt} a[{LANES}];"));
            for k in 0..count {
                w.line("{");
                w.indent();
                w.line(&format!("const {et} *rp = rows + cout[{o} + {k}] * {LANES};"));
                w.line(&format!("{vt} acc = bias;"));
                for ky in 0..kh {
                    if int8.is_some() {
                        for kp in 0..kwp {
                            let off = (ky * g.d[0] * wp + 2 * kp * g.d[1]) * LANES;
                            w.line(&format!(
                                "acc = mlrt_dot8(acc, mlrt_px8_load((const int16_t *)(const void *)(rp + {off})), mlrt_px8_load(wc + {}));",
                                (ky * kwp + kp) * LANES * 2
                            ));
                        }
                        continue;
                    }
                    for kx in 0..kw {
                        let off = (ky * g.d[0] * wp + kx * g.d[1]) * LANES;
                        let t = ky * kw + kx;
                        w.line(&format!("acc = {mla}(acc, {load}(rp + {off}), {load}(wc + {}));", t * LANES));
                    }
                }
                if lanes_rq.is_some() && !choice.y_blocked {
                    w.line(&format!("a[{k}] = mlrt_requant8_lanes(acc, &rq);"));
                } else {
                    w.line(&format!("a[{k}] = acc;"));
                }
                w.close();
            }
            if choice.y_blocked {
                // Channel blocks (`blocks.rs`; int8 only with the per-lane requantization):
                // pixel k's vector is stored as is.
                match lanes_rq {
                    Some(rq) => {
                        let accs: Vec<String> = (0..count).map(|k| format!("a[{k}]")).collect();
                        for line in lanes_stores(rq, &format!("yc + {o} * {LANES}"), &accs, "rq") {
                            w.line(&line);
                        }
                    }
                    None => {
                        for k in 0..count {
                            w.line(&float_store(&act, &format!("a[{k}]"), &format!("yc + ({o} + {k}) * {LANES}"), "8"));
                        }
                    }
                }
                return;
            }
            if count < LANES {
                w.line(&format!("for (int k = {count}; k < {LANES}; ++k) a[k] = bias;"));
            }
            w.line(&format!("{transpose}(a);"));
            for j in 0..LANES {
                let dst = format!("yc + {} + {o}", j * ohw);
                match &requant {
                    Some((ty, ..)) if lanes_rq.is_some() => {
                        w.line(&format!("mlrt_acc8_store_{ty}({dst}, a[{j}], {count});"));
                    }
                    Some((ty, mul, shift, zp, lo, hi)) => w.line(&format!(
                        "{{ const int oc = (nb % {blocks}) * {LANES} + {j}; mlrt_requant8_{ty}({dst}, a[{j}], {mul}, {shift}, {zp}, {lo}, {hi}, {count}); }}"
                    )),
                    None => w.line(&float_store(&act, &format!("a[{j}]"), &dst, &count.to_string())),
                }
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

    /// Writes the int16 pairs `(v[c] − x_zp, v[c + dw] − x_zp)` of horizontally neighbouring
    /// padded cells straight from block `xc` in channel blocks (what the NCHW path gets by
    /// its copy and `mlrt_pair8_join`). Cells whose pair is all padding stay 0.
    fn pairs_from_blocks(&self, w: &mut Writer, xt: &str, x_zp: i32) {
        let g = &self.g;
        let (wd, dw) = (g.wd as i64, g.d[1] as i64);
        let h8 = if xt == "uint8_t" { "mlrt_h8_u8" } else { "mlrt_h8_s8" };
        let px = |q: i64| if (0..wd).contains(&q) { format!("xr + {}", q * LANES as i64) } else { "NULL".into() };
        w.open(&format!("for (int r = 0; r < {}; ++r)", g.h));
        // Cell of the row's first pixel, and the row's pixels.
        w.line(&format!("int32_t *cr = rows + ((r + {}) * {} + {}) * {LANES};", g.pt, self.wp, g.pl));
        w.line(&format!("const {xt} *xr = xc + r * {};", g.wd * LANES));
        let single = |w: &mut Writer, q: i64| {
            let (a, b) = (px(q), px(q + dw));
            w.line(&format!("mlrt_pair8_cell(cr + ({}), {h8}({a}, {x_zp}), {h8}({b}, {x_zp}));", q * LANES as i64));
        };
        for q in (-dw).max(-(g.pl as i64))..0 {
            single(w, q);
        }
        if wd > dw {
            w.line(&format!(
                "for (int q = 0; q < {}; ++q) mlrt_pair8_cell(cr + q * {LANES}, {h8}(xr + q * {LANES}, {x_zp}), {h8}(xr + (q + {dw}) * {LANES}, {x_zp}));",
                wd - dw
            ));
        }
        for q in (wd - dw).max(0)..wd {
            single(w, q);
        }
        w.close();
    }

    /// Writes the copy of block `xc`'s NCHW planes (8 channels) into the padded cells
    /// `rows + cin[i] * 8`, transposed 8 × 8 (int8: `x − x_zp` as int32).
    fn transpose_in(&self, w: &mut Writer, xt: &str, x_zp: Option<i32>) {
        let hw = self.g.h * self.g.wd;
        let cell = |i: &str| format!("rows + cin[{i}] * {LANES}");
        let (vt, transpose, store, et) = match x_zp {
            Some(_) => ("mlrt_acc8", "mlrt_acc8_transpose", "mlrt_acc8_store", "int32_t"),
            None => ("mlrt_f8", "mlrt_f8_transpose", "mlrt_f8_store", "float"),
        };
        w.open(&format!("for (int i = 0; i + {LANES} <= {hw}; i += {LANES})"));
        let loads: Vec<String> = (0..LANES)
            .map(|j| match x_zp {
                Some(zp) => {
                    let from = if xt == "uint8_t" { "mlrt_acc8_from_u8" } else { "mlrt_acc8_from_s8" };
                    format!("{from}(xc + {} + i, {zp}, 1)", j * hw)
                }
                None => format!("mlrt_f8_load(xc + {} + i)", j * hw),
            })
            .collect();
        w.line(&format!("{vt} t[{LANES}] = {{ {} }};", loads.join(", ")));
        w.line(&format!("{transpose}(t);"));
        w.line(&format!("for (int k = 0; k < {LANES}; ++k) {store}({}, t[k]);", cell("(i + k)")));
        w.close();
        let full_in = hw / LANES * LANES;
        if full_in < hw {
            w.open(&format!("for (int i = {full_in}; i < {hw}; ++i)"));
            w.line(&format!("{et} *cp = {};", cell("i")));
            let v = match x_zp {
                Some(zp) => format!("(int32_t)xc[j * {hw} + i] - {zp}"),
                None => format!("xc[j * {hw} + i]"),
            };
            w.line(&format!("for (int j = 0; j < {LANES}; ++j) cp[j] = {v};"));
            w.close();
        }
    }
}
