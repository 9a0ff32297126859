//! C loop nests of the integer ops (`ops::quant`): int32 accumulation, requantization
//! through `mlrt_requant` (bit-exact with `modelless_rt::requant`), no floating point
//! except in QuantizeLinear / DequantizeLinear. Per-channel parameters and the softmax
//! table are `static const` arrays in the kernel. Accumulators are plain int32: the
//! quantization pass only emits QConv/QMatMul whose accumulator bound fits (the Rust twin
//! wraps, as `interp` does).

use super::c_float;
use super::kernels::LANES;
use super::simd::DotMatMul;
use super::writer::Writer;
use crate::backend::Program;
use crate::backend::lin::c_lin;
use crate::ir::{DType, Node};
use crate::ops::{Op, PoolKind, Requant, type_range};
use crate::toolchain::c_type;

/// A C literal for an int32 value.
fn i32_lit(v: i32) -> String {
    if v == i32::MIN { "INT32_MIN".into() } else { v.to_string() }
}

/// `static const int32_t name[n] = {...};`
fn i32_array(w: &mut Writer, name: &str, v: &[i32]) {
    let items: Vec<String> = v.iter().map(|&x| i32_lit(x)).collect();
    w.line(&format!("static const int32_t {name}[{}] = {{{}}};", v.len().max(1), items.join(", ")));
}

/// `(int32_t)e - zp` with the zero point folded (`e` widened to int32 first).
fn sub_zp(e: &str, zp: i32) -> String {
    match zp {
        0 => format!("(int32_t){e}"),
        z if z > 0 => format!("((int32_t){e} - {z})"),
        z => format!("((int32_t){e} + {})", -(z as i64)),
    }
}

/// Declares the per-channel tables of `r` (prefix `rq_`) and returns the C expression
/// requantizing `acc` of channel `ch`, cast to the output element type.
fn requant(w: &mut Writer, r: &Requant, acc: &str, ch: &str) -> String {
    let (m, s) = if r.multiplier.len() == 1 || (all_same(&r.multiplier) && all_same(&r.shift)) {
        (i32_lit(r.multiplier[0]), i32_lit(r.shift[0]))
    } else {
        i32_array(w, "rq_mul", &r.multiplier);
        i32_array(w, "rq_shift", &r.shift);
        (format!("rq_mul[{ch}]"), format!("rq_shift[{ch}]"))
    };
    format!(
        "({})mlrt_requant({acc}, {m}, {s}, {}, {}, {})",
        c_type(r.to),
        i32_lit(r.zero_point),
        i32_lit(r.lo),
        i32_lit(r.hi)
    )
}

fn all_same(v: &[i32]) -> bool {
    v.windows(2).all(|p| p[0] == p[1])
}

/// `(outer, channels, inner)` around `axis` of `shape` (no axis: all in `inner`).
fn split_axis(shape: &[usize], axis: Option<usize>) -> (usize, usize, usize) {
    match axis {
        None => (1, 1, shape.iter().product()),
        Some(a) => (shape[..a].iter().product(), shape[a], shape[a + 1..].iter().product()),
    }
}

/// Opens the `o, c, i` loops of a per-axis elementwise op and returns the flat index.
fn per_axis_loops(w: &mut Writer, (outer, ch, inner): (usize, usize, usize)) -> String {
    w.open(&format!("for (int o = 0; o < {outer}; ++o)"));
    w.open(&format!("for (int c = 0; c < {ch}; ++c)"));
    w.open(&format!("for (int i = 0; i < {inner}; ++i)"));
    c_lin(&[("o", ch * inner), ("c", inner), ("i", 1)], 0)
}

/// The parameter index inside [`per_axis_loops`] (`o, c, i`) of a Quantize / Dequantize:
/// the axis index `c`, or with blocks of `b` along the axis the block's parameter
/// (`ops::ParamLayout`).
fn param_index((_, ch, inner): (usize, usize, usize), block: Option<usize>) -> String {
    match block {
        None => "c".into(),
        Some(b) => {
            let blk = if b == 1 { "c".to_string() } else { format!("(c / {b})") };
            c_lin(&[("o", ch.div_ceil(b) * inner), (blk.as_str(), inner), ("i", 1)], 0)
        }
    }
}

/// Writes the body of an integer op's kernel.
pub(super) fn emit(w: &mut Writer, p: &Program, n: &Node) {
    let ty = |i: usize| p.graph.ty(n.inputs[i]);
    let out_ty = p.graph.ty(n.outputs[0]);
    let out = out_ty.shape.clone();
    let total: usize = out.iter().product();
    match &n.op {
        Op::Quantize(q) => {
            let (lo, hi) = type_range(q.to);
            let t = c_type(q.to);
            let (lo, hi) = (i32_lit(lo), i32_lit(hi));
            if q.q.axis.is_none() {
                let (s, z) = (c_float(q.q.scale[0]), i32_lit(q.q.zero_point[0]));
                w.line(&format!(
                    "for (int i = 0; i < {total}; ++i) y[i] = ({t})mlrt_quantize(x0[i], {s}, {z}, {lo}, {hi});"
                ));
                return;
            }
            let scales: Vec<String> = q.q.scale.iter().map(|&s| c_float(s)).collect();
            w.line(&format!("static const float scale[{}] = {{{}}};", scales.len(), scales.join(", ")));
            i32_array(w, "zp", &q.q.zero_point);
            let split = split_axis(&ty(0).shape, q.q.axis);
            let k = param_index(split, q.block);
            let idx = per_axis_loops(w, split);
            w.line(&format!("y[{idx}] = ({t})mlrt_quantize(x0[{idx}], scale[{k}], zp[{k}], {lo}, {hi});"));
            w.close();
            w.close();
            w.close();
        }
        Op::Dequantize(d) => {
            let from = ty(0).dtype;
            // The subtraction in int32, wrapping (through uint32) for int32 inputs.
            let diff = |x: &str, zp: &str| {
                if from == DType::I32 {
                    format!("(int32_t)((uint32_t){x} - (uint32_t){zp})")
                } else {
                    format!("((int32_t){x} - {zp})")
                }
            };
            if d.q.axis.is_none() {
                let (s, z) = (c_float(d.q.scale[0]), i32_lit(d.q.zero_point[0]));
                w.line(&format!("for (int i = 0; i < {total}; ++i) y[i] = (float){} * {s};", diff("x0[i]", &z)));
                return;
            }
            let scales: Vec<String> = d.q.scale.iter().map(|&s| c_float(s)).collect();
            w.line(&format!("static const float scale[{}] = {{{}}};", scales.len(), scales.join(", ")));
            i32_array(w, "zp", &d.q.zero_point);
            let split = split_axis(&ty(0).shape, d.q.axis);
            let k = param_index(split, d.block);
            let idx = per_axis_loops(w, split);
            let zp = format!("zp[{k}]");
            w.line(&format!("y[{idx}] = (float){} * scale[{k}];", diff(&format!("x0[{idx}]"), &zp)));
            w.close();
            w.close();
            w.close();
        }
        Op::QConv(_) if super::simd::emit_conv(w, p, n) => {}
        Op::QConv(qc) if fast_qconv(w, p, n, qc) => {}
        Op::QConv(qc) => {
            let c = &qc.conv;
            let (x, wsh) = (ty(0).shape.clone(), ty(1).shape.clone());
            let (xt, wt) = (c_type(ty(0).dtype), c_type(ty(1).dtype));
            let [nb, ci, h, wd] = [x[0], x[1], x[2], x[3]];
            let [m, oh, ow] = [out[1], out[2], out[3]];
            let (cg, mg) = (wsh[1], m / c.group);
            let [kh, kw] = c.kernel;
            let [sh, sw] = c.strides;
            let [dh, dw] = c.dilations;
            let [pt, pl, _, _] = c.pads;
            let per_channel_wzp = qc.w_zp.len() > 1 && !all_same(&qc.w_zp);
            if per_channel_wzp {
                i32_array(w, "w_zp", &qc.w_zp);
            }
            let store = match &qc.out {
                Some(r) => requant(w, r, "acc", "oc"),
                None => "acc".to_string(),
            };
            w.open(&format!("for (int n = 0; n < {nb}; ++n)"));
            w.open(&format!("for (int oc = 0; oc < {m}; ++oc)"));
            if mg == 1 {
                w.line("const int g = oc;");
            } else {
                w.line(&format!("const int g = oc / {mg};"));
            }
            w.line(&format!("const {wt} *wk = x1 + {};", c_lin(&[("oc", cg * kh * kw)], 0)));
            if per_channel_wzp {
                w.line("const int32_t wz = w_zp[oc];");
            }
            w.open(&format!("for (int oh = 0; oh < {oh}; ++oh)"));
            w.open(&format!("for (int ow = 0; ow < {ow}; ++ow)"));
            w.line(&format!("int32_t acc = {};", if n.inputs.len() > 2 { "x2[oc]" } else { "0" }));
            w.open(&format!("for (int ic = 0; ic < {cg}; ++ic)"));
            w.line(&format!(
                "const {xt} *xc = x0 + {};",
                c_lin(&[("n", ci * h * wd), ("g", cg * h * wd), ("ic", h * wd)], 0)
            ));
            w.open(&format!("for (int kh = 0; kh < {kh}; ++kh)"));
            w.line(&format!("const int ih = {};", c_lin(&[("oh", sh), ("kh", dh)], -(pt as isize))));
            w.line(&format!("if (ih < 0 || ih >= {h}) continue;"));
            w.open(&format!("for (int kw = 0; kw < {kw}; ++kw)"));
            w.line(&format!("const int iw = {};", c_lin(&[("ow", sw), ("kw", dw)], -(pl as isize))));
            w.line(&format!("if (iw < 0 || iw >= {wd}) continue;"));
            let xv = sub_zp(&format!("xc[{}]", c_lin(&[("ih", wd), ("iw", 1)], 0)), qc.x_zp);
            let wk = format!("wk[{}]", c_lin(&[("ic", kh * kw), ("kh", kw), ("kw", 1)], 0));
            let wv = if per_channel_wzp { format!("((int32_t){wk} - wz)") } else { sub_zp(&wk, qc.w_zp[0]) };
            w.line(&format!("acc += {xv} * {wv};"));
            w.close();
            w.close();
            w.close();
            w.line(&format!(
                "y[{}] = {store};",
                c_lin(&[("n", m * oh * ow), ("oc", oh * ow), ("oh", ow), ("ow", 1)], 0)
            ));
            w.close();
            w.close();
            w.close();
            w.close();
        }
        Op::QMatMul(qm) if p.opt.simd() && DotMatMul::of(p.graph, n, p.isa).map(|k| k.emit(w, p, n, qm)).is_some() => {}
        Op::QMatMul(qm) if fast_qmatmul(w, p, n, qm) => {}
        Op::QMatMul(qm) => {
            let Ok(d) = crate::ops::MatMul::dims(ty(0), ty(1)) else { return };
            let (at, bt) = (c_type(ty(0).dtype), c_type(ty(1).dtype));
            let batch: usize = d.batch.iter().product();
            let a_off = super::batch_offsets(&d.a_batch, &d.batch, d.m * d.k);
            let b_off = super::batch_offsets(&d.b_batch, &d.batch, d.k * d.n);
            let (m, k, nn) = (d.m, d.k, d.n);
            let per_col_zp = qm.b_zp.len() > 1 && !all_same(&qm.b_zp);
            let join = |v: &[usize]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
            w.line(&format!("static const int a_off[{batch}] = {{{}}};", join(&a_off)));
            w.line(&format!("static const int b_off[{batch}] = {{{}}};", join(&b_off)));
            if per_col_zp {
                i32_array(w, "b_zp", &qm.b_zp);
            }
            let store = match &qm.out {
                Some(r) => requant(w, r, "acc", "j"),
                None => "acc".to_string(),
            };
            w.open(&format!("for (int bi = 0; bi < {batch}; ++bi)"));
            w.line(&format!("const {at} *a = x0 + a_off[bi];"));
            w.line(&format!("const {bt} *b = x1 + b_off[bi];"));
            w.line(&format!("{} *yb = y + {};", c_type(out_ty.dtype), c_lin(&[("bi", m * nn)], 0)));
            w.open(&format!("for (int i = 0; i < {m}; ++i)"));
            w.open(&format!("for (int j = 0; j < {nn}; ++j)"));
            w.line(&format!("int32_t acc = {};", if n.inputs.len() > 2 { "x2[j]" } else { "0" }));
            let av = sub_zp(&format!("a[{}]", c_lin(&[("i", k), ("k", 1)], 0)), qm.a_zp);
            let bx = format!("b[{}]", c_lin(&[("k", nn), ("j", 1)], 0));
            let bv = if per_col_zp { format!("((int32_t){bx} - b_zp[j])") } else { sub_zp(&bx, qm.b_zp[0]) };
            w.line(&format!("for (int k = 0; k < {k}; ++k) acc += {av} * {bv};"));
            w.line(&format!("yb[{}] = {store};", c_lin(&[("i", nn), ("j", 1)], 0)));
            w.close();
            w.close();
            w.close();
        }
        Op::QAdd(qa) => {
            let ls = 1i64 << qa.left_shift;
            // 8-bit operands, where `QAdd::exact_shift`'s bound holds.
            let eight = [ty(0).dtype, ty(1).dtype, out_ty.dtype].iter().all(|d| matches!(d, DType::I8 | DType::U8));
            let scaled = |x: &str, zp: i32, mul: i32, shift: i32| match qa.exact_shift(mul, shift).filter(|_| eight) {
                Some(k) => format!("{} * {}", sub_zp(x, zp), 1i64 << k),
                None => format!(
                    "mlrt_requant({} * {ls}, {}, {}, 0, INT32_MIN, INT32_MAX)",
                    sub_zp(x, zp),
                    i32_lit(mul),
                    i32_lit(shift)
                ),
            };
            let e = requant(w, &qa.out, "a + b", "0");
            // Vectors of 8 (`mlrt_requant8v`), then the tail one at a time.
            let x_ty = |k: usize| if ty(k).dtype == DType::U8 { "u8" } else { "s8" };
            let y_ty = if out_ty.dtype == DType::U8 { "u8" } else { "s8" };
            let body = total / 8 * 8;
            if eight && body > 0 {
                let scaled = |k: usize, at: &str, zp: i32, mul: i32, shift: i32| match qa.exact_shift(mul, shift) {
                    Some(e) => format!("mlrt_acc8_from_{}(x{k} + {at}, {zp}, {})", x_ty(k), 1i64 << e),
                    None if qa.split_multiplier(mul, shift).is_some() => {
                        let (hi, lo, t) = qa.split_multiplier(mul, shift).unwrap_or_default();
                        format!("mlrt_acc8_mulsplit(mlrt_acc8_from_{}(x{k} + {at}, {zp}, 1), {hi}, {lo}, {t})", x_ty(k))
                    }
                    None => format!(
                        "mlrt_requant8v(mlrt_acc8_from_{}(x{k} + {at}, {zp}, {ls}), {mul}, {shift}, 0, INT32_MIN, INT32_MAX)",
                        x_ty(k)
                    ),
                };
                let rq = |v: &str| {
                    let o = &qa.out;
                    let p = [o.multiplier[0], o.shift[0], o.zero_point, o.lo, o.hi].map(i32_lit);
                    format!("mlrt_requant8v({v}, {}, {}, {}, {}, {})", p[0], p[1], p[2], p[3], p[4])
                };
                // 32 values per step (one 32-byte store), then 8.
                let body32 = total / 32 * 32;
                if body32 > 0 {
                    w.open(&format!("for (int i = 0; i < {body32}; i += 32)"));
                    for k in 0..4 {
                        let at = format!("i + {}", 8 * k);
                        w.line(&format!("const mlrt_acc8 a{k} = {};", scaled(0, &at, qa.a_zp, qa.a_mult, qa.a_shift)));
                        w.line(&format!("const mlrt_acc8 b{k} = {};", scaled(1, &at, qa.b_zp, qa.b_mult, qa.b_shift)));
                    }
                    let sums: Vec<String> = (0..4).map(|k| rq(&format!("mlrt_acc8_add(a{k}, b{k})"))).collect();
                    w.line(&format!("mlrt_acc8_store4_{y_ty}(y + i, {});", sums.join(", ")));
                    w.close();
                }
                if body32 < body {
                    w.open(&format!("for (int i = {body32}; i < {body}; i += 8)"));
                    w.line(&format!("const mlrt_acc8 a = {};", scaled(0, "i", qa.a_zp, qa.a_mult, qa.a_shift)));
                    w.line(&format!("const mlrt_acc8 b = {};", scaled(1, "i", qa.b_zp, qa.b_mult, qa.b_shift)));
                    w.line(&format!("mlrt_acc8_store_{y_ty}(y + i, {}, 8);", rq("mlrt_acc8_add(a, b)")));
                    w.close();
                }
            }
            let start = if eight { body } else { 0 };
            w.open(&format!("for (int i = {start}; i < {total}; ++i)"));
            w.line(&format!("const int32_t a = {};", scaled("x0[i]", qa.a_zp, qa.a_mult, qa.a_shift)));
            w.line(&format!("const int32_t b = {};", scaled("x1[i]", qa.b_zp, qa.b_mult, qa.b_shift)));
            w.line(&format!("y[i] = {e};"));
            w.close();
        }
        Op::Requantize(rq) => {
            let e = requant(w, &rq.out, &sub_zp("x0[i]", rq.x_zp), "0");
            w.line(&format!("for (int i = 0; i < {total}; ++i) y[i] = {e};"));
        }
        Op::QPool(qp) => {
            let pl = &qp.pool;
            let x = ty(0).shape.clone();
            let xt = c_type(ty(0).dtype);
            let [h, wd] = [x[2], x[3]];
            let [oh, ow] = [out[2], out[3]];
            let [kh, kw] = pl.kernel;
            let [sh, sw] = pl.strides;
            let [dh, dw] = pl.dilations;
            let [pt, pleft, _, _] = pl.pads;
            let planes = out[0] * out[1];
            let store = requant(w, &qp.out, "acc", "0");
            if p.choice(n).x_blocked {
                // Channel blocks: `blocks.rs` reads them into global average pools only.
                super::blocks::emit_global_avg_int8(w, planes / LANES, h * wd, xt, qp.x_zp, &store);
                return;
            }
            w.open(&format!("for (int c = 0; c < {planes}; ++c)"));
            w.line(&format!("const {xt} *xc = x0 + {};", c_lin(&[("c", h * wd)], 0)));
            w.open(&format!("for (int oh = 0; oh < {oh}; ++oh)"));
            w.open(&format!("for (int ow = 0; ow < {ow}; ++ow)"));
            match pl.kind {
                PoolKind::Max => w.line("int32_t mx = INT32_MIN;"),
                PoolKind::Avg => w.line("int32_t acc = 0;"),
            }
            w.open(&format!("for (int kh = 0; kh < {kh}; ++kh)"));
            w.line(&format!("const int ih = {};", c_lin(&[("oh", sh), ("kh", dh)], -(pt as isize))));
            w.line(&format!("if (ih < 0 || ih >= {h}) continue;"));
            w.open(&format!("for (int kw = 0; kw < {kw}; ++kw)"));
            w.line(&format!("const int iw = {};", c_lin(&[("ow", sw), ("kw", dw)], -(pleft as isize))));
            w.line(&format!("if (iw < 0 || iw >= {wd}) continue;"));
            let xi = format!("xc[{}]", c_lin(&[("ih", wd), ("iw", 1)], 0));
            match pl.kind {
                PoolKind::Max => w.line(&format!("if ((int32_t){xi} > mx) mx = {xi};")),
                PoolKind::Avg => w.line(&format!("acc += {};", sub_zp(&xi, qp.x_zp))),
            }
            w.close();
            w.close();
            if pl.kind == PoolKind::Max {
                // An all-padding window (impossible with ONNX pads) gives 0, as in `interp`.
                w.line(&format!("const int32_t acc = mx == INT32_MIN ? 0 : {};", sub_zp("mx", qp.x_zp)));
            }
            w.line(&format!("y[{}] = {store};", c_lin(&[("c", oh * ow), ("oh", ow), ("ow", 1)], 0)));
            w.close();
            w.close();
            w.close();
        }
        Op::QSoftmax(sm) => {
            let x = &ty(0).shape;
            let (outer, len, inner) = if x.is_empty() { (1, 1, 1) } else { split_axis(x, Some(sm.axis)) };
            let xt = c_type(ty(0).dtype);
            let yt = c_type(sm.to);
            i32_array(w, "table", &sm.table);
            w.open(&format!("for (int o = 0; o < {outer}; ++o)"));
            w.open(&format!("for (int j = 0; j < {inner}; ++j)"));
            let base = c_lin(&[("o", len * inner), ("j", 1)], 0);
            let at = c_lin(&[("i", inner)], 0);
            w.line(&format!("const {xt} *xr = x0 + {base};"));
            w.line(&format!("{yt} *yr = y + {base};"));
            w.line("int32_t mx = xr[0];");
            w.line("int64_t sum = 0;");
            w.line(&format!("for (int i = 1; i < {len}; ++i) mx = (int32_t)xr[{at}] > mx ? xr[{at}] : mx;"));
            w.open(&format!("for (int i = 0; i < {len}; ++i)"));
            w.line(&format!("const int32_t d = mx - (int32_t)xr[{at}];"));
            w.line("sum += table[d < 255 ? d : 255];");
            w.close();
            w.line("sum *= 65536;");
            w.open(&format!("for (int i = 0; i < {len}; ++i)"));
            w.line(&format!("const int32_t d = mx - (int32_t)xr[{at}];"));
            w.line("const int64_t e = table[d < 255 ? d : 255];");
            w.line(&format!(
                "const int64_t v = (sum == 0 ? 0 : (e * INT64_C({}) + sum / 2) / sum) + {};",
                sm.out_mul,
                i32_lit(sm.zero_point)
            ));
            w.line(&format!(
                "yr[{at}] = ({yt})(v < {lo} ? {lo} : (v > {hi} ? {hi} : v));",
                lo = i32_lit(sm.lo),
                hi = i32_lit(sm.hi)
            ));
            w.close();
            w.close();
            w.close();
        }
        _ => {}
    }
}

/// QConv through the lane kernels (`kernels::emit_depthwise` / `emit_lane_conv`): int32
/// accumulation of `(x − x_zp)·(w − w_zp)` with `w − w_zp` baked into the packed panels
/// (dense) and `x − x_zp` formed once per pixel and tap, so taps over padding (x = x_zp)
/// are skipped exactly; bias and requantization in the epilogue. The sums are the
/// reference's, only reordered: bit-exact.
fn fast_qconv(w: &mut Writer, p: &Program, n: &Node, qc: &crate::ops::QConv) -> bool {
    use super::kernels::{
        ConvGeo, Lane, const_data, emit_depthwise, emit_lane_conv, int_at, pack_conv, pack_pays, packed_array,
    };
    let c = &qc.conv;
    let (xty, wty) = (p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1]));
    let wsh = &wty.shape;
    let Some(geo) = ConvGeo::of(p, n, c) else { return false };
    let [kh, kw] = c.kernel;
    let depthwise = c.group == geo.ci && c.group == geo.m && wsh[1] == 1;
    let wdata = const_data(p, n.inputs[1])
        .filter(|d| d.len() == geo.m * wsh[1] * kh * kw && (geo.in_place || pack_pays(geo.m)));
    if !depthwise && (c.group != 1 || wdata.is_none()) {
        return false;
    }
    let (xt, wt) = (c_type(xty.dtype), c_type(wty.dtype));
    let per_channel_wzp = qc.w_zp.len() > 1 && !all_same(&qc.w_zp);
    let wzp = |oc: usize| if per_channel_wzp { qc.w_zp[oc] } else { qc.w_zp[0] } as i64;
    let acc = if n.inputs.len() > 2 { "(v + x2[oc])" } else { "v" };
    let store = match &qc.out {
        Some(r) => requant(w, r, acc, "oc"),
        None => acc.to_string(),
    };
    let x_zp = qc.x_zp;
    let xval = move |e: &str| sub_zp(e, x_zp);
    if depthwise {
        let lane = Lane { int: true, wt };
        if per_channel_wzp {
            i32_array(w, "w_zp", &qc.w_zp);
        }
        let wval = |e: &str| if per_channel_wzp { format!("((int32_t){e} - w_zp[oc])") } else { sub_zp(e, qc.w_zp[0]) };
        emit_depthwise(w, lane, &geo, xt, wt, &wval, &xval, &store);
        return true;
    }
    let Some(d) = wdata else { return false };
    let ci = geo.ci;
    let vals: Vec<i64> =
        (0..geo.m * ci * kh * kw).map(|i| int_at(d, i).unwrap_or(0) - wzp(i / (ci * kh * kw))).collect();
    let lane = Lane::int_for(&vals);
    let packed = pack_conv(&geo, "0", &|oc, ic, ky, kx| vals[((oc * ci + ic) * kh + ky) * kw + kx].to_string());
    packed_array(w, lane.wt, "wp", &packed);
    w.packs_input(1);
    emit_lane_conv(w, lane, geo, xt, &xval, &store);
    true
}

/// QMatMul with a constant right operand through `kernels::emit_lane_gemm`: `b − b_zp`
/// packed at compile time, int32 accumulation, requantization in the epilogue.
fn fast_qmatmul(w: &mut Writer, p: &Program, n: &Node, qm: &crate::ops::QMatMul) -> bool {
    use super::kernels::{Lane, const_data, emit_lane_gemm, int_at, pack_gemm, pack_pays, packed_array};
    let (ta, tb) = (p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1]));
    let Ok(d) = crate::ops::MatMul::dims(ta, tb) else { return false };
    let batch: usize = d.batch.iter().product();
    let a_off = super::batch_offsets(&d.a_batch, &d.batch, d.m * d.k);
    let b_off = super::batch_offsets(&d.b_batch, &d.batch, d.k * d.n);
    let (m, k, nn) = (d.m, d.k, d.n);
    let Some(bd) =
        const_data(p, n.inputs[1]).filter(|bd| bd.len() == k * nn && pack_pays(nn) && b_off.iter().all(|&o| o == 0))
    else {
        return false;
    };
    let per_col_zp = qm.b_zp.len() > 1 && !all_same(&qm.b_zp);
    let bzp = |j: usize| if per_col_zp { qm.b_zp[j] } else { qm.b_zp[0] } as i64;
    let vals: Vec<i64> = (0..k * nn).map(|i| int_at(bd, i).unwrap_or(0) - bzp(i % nn)).collect();
    let lane = Lane::int_for(&vals);
    let packed = pack_gemm(k, nn, "0", &|kk, j| vals[kk * nn + j].to_string());
    packed_array(w, lane.wt, "bp", &packed);
    w.packs_input(1);
    let acc = if n.inputs.len() > 2 { "(v + x2[j])" } else { "v" };
    let store = match &qm.out {
        Some(r) => requant(w, r, acc, "j"),
        None => acc.to_string(),
    };
    let at = c_type(ta.dtype);
    let join = |v: &[usize]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
    w.line(&format!("static const int a_off[{batch}] = {{{}}};", join(&a_off)));
    w.open(&format!("for (int bi = 0; bi < {batch}; ++bi)"));
    w.line(&format!("const {at} *a = x0 + a_off[bi];"));
    w.line(&format!("{} *yb = y + {};", c_type(p.graph.ty(n.outputs[0]).dtype), c_lin(&[("bi", m * nn)], 0)));
    let a_zp = qm.a_zp;
    let aval = move |kv: &str| sub_zp(&format!("a[i * {k} + {kv}]"), a_zp);
    let out_stmt = format!("yb[{}] = {store};", c_lin(&[("i", nn), ("j", 1)], 0));
    emit_lane_gemm(w, lane, (m, k, nn), &aval, &out_stmt);
    w.close();
    true
}
