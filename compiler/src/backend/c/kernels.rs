//! One C loop nest per op. Inputs are `x0, x1, ...`, the output is `y`; every bound is a
//! compile-time constant taken from the static shapes.

use super::c_float;
use super::writer::Writer;
use crate::backend::Program;
use crate::backend::lin::c_lin;
use crate::ir::{DType, Node, shape_str};
use crate::ops::broadcast::broadcast_strides;
use crate::ops::{Act, BinaryKind, Op, PadMode, PoolKind, ReduceKind, reduce_loops, strides_of};

/// `in1 x in2 -> out` shapes for the kernel comment.
pub(crate) fn kernel_signature(p: &Program, n: &Node) -> String {
    let ins: Vec<String> = n.inputs.iter().map(|&v| shape_str(&p.graph.ty(v).shape)).collect();
    format!("{} -> {}", ins.join(", "), shape_str(&p.graph.ty(n.outputs[0]).shape))
}

/// The C expression applying `act` to `v`: a call of its runtime helper.
pub(crate) fn act_expr(act: &Option<Act>, v: &str) -> String {
    match act {
        None => v.to_string(),
        Some(a) => {
            let (name, params) = a.helper();
            let args: String = params.iter().map(|&p| format!(", {}", c_float(p))).collect();
            format!("mlrt_{name}({v}{args})")
        }
    }
}

/// Declares `int64_t k` from an index element: negative indices count from the end of an
/// axis of length `d`, out-of-range ones clamp (so generated code never reads out of bounds).
fn load_index(w: &mut Writer, elem: &str, d: usize) {
    w.line(&format!("int64_t k = {elem};"));
    w.line(&format!("k = k < 0 ? k + {d} : k;"));
    w.line(&format!("k = k < 0 ? 0 : (k >= {d} ? {} : k);", d.saturating_sub(1)));
}

/// The smallest and largest values of a C element type, as C expressions.
fn type_limits_c(dt: DType) -> (String, String) {
    let (lo, hi) = match dt {
        DType::F32 | DType::F64 => ("-INFINITY", "INFINITY"),
        DType::I8 => ("INT8_MIN", "INT8_MAX"),
        DType::U8 => ("0", "UINT8_MAX"),
        DType::I16 => ("INT16_MIN", "INT16_MAX"),
        DType::U16 => ("0", "UINT16_MAX"),
        DType::I32 => ("INT32_MIN", "INT32_MAX"),
        DType::U32 => ("0", "UINT32_MAX"),
        DType::I64 => ("INT64_MIN", "INT64_MAX"),
        DType::U64 => ("0", "UINT64_MAX"),
        DType::Bool => ("false", "true"),
        // Bit patterns of -inf / +inf (16-bit floats are legalised to float32 before kernels).
        DType::F16 => ("0xfc00u", "0x7c00u"),
        DType::BF16 => ("0xff80u", "0x7f80u"),
        // Low-precision types reach only conversions and data movement (bit patterns).
        DType::I4 => ("-8", "7"),
        DType::I2 => ("-2", "1"),
        DType::U4 => ("0u", "15u"),
        DType::U2 => ("0u", "3u"),
        DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F8E8M0 | DType::F4E2M1 => {
            ("0u", "0u")
        }
    };
    (lo.to_string(), hi.to_string())
}

/// The C name of a minifloat format code (`MLRT_MF_*`).
fn mf_name_c(d: DType) -> &'static str {
    match d {
        DType::F8E4M3FN => "MLRT_MF_E4M3FN",
        DType::F8E4M3FNUZ => "MLRT_MF_E4M3FNUZ",
        DType::F8E5M2 => "MLRT_MF_E5M2",
        DType::F8E5M2FNUZ => "MLRT_MF_E5M2FNUZ",
        DType::F8E8M0 => "MLRT_MF_E8M0",
        _ => "MLRT_MF_E2M1",
    }
}

/// The C expression of element `x0[i]` cast as `c` where either side is a 16-bit float or
/// a low-precision type: floats go through float32, integers through int64 (wrapped into
/// int4 / int2).
fn cast_low_c(from: DType, c: &crate::ops::Cast) -> String {
    let floaty = from.is_float() || from.is_half() || from.is_minifloat();
    let fv = match from {
        DType::F16 => "mlrt_f16_to_f32(x0[i])".to_string(),
        DType::BF16 => "mlrt_bf16_to_f32(x0[i])".to_string(),
        DType::F32 => "x0[i]".to_string(),
        f if f.is_minifloat() => format!("mlrt_minifloat_to_f32(x0[i], {})", mf_name_c(f)),
        _ => "(float)x0[i]".to_string(),
    };
    let iv = if floaty && from != DType::F64 { format!("(int64_t){fv}") } else { "(int64_t)x0[i]".to_string() };
    let sat = i32::from(c.saturate);
    match c.to {
        DType::F16 => format!("mlrt_f32_to_f16({fv})"),
        DType::BF16 => format!("mlrt_f32_to_bf16({fv})"),
        DType::F8E8M0 => format!("mlrt_f32_to_e8m0({fv}, {sat}, {})", c.round_mode),
        t if t.is_minifloat() => format!("mlrt_f32_to_minifloat({fv}, {}, {sat})", mf_name_c(t)),
        DType::I4 => format!("(int8_t)((({iv} & 15) ^ 8) - 8)"),
        DType::U4 => format!("(uint8_t)({iv} & 15)"),
        DType::I2 => format!("(int8_t)((({iv} & 3) ^ 2) - 2)"),
        DType::U2 => format!("(uint8_t)({iv} & 3)"),
        DType::Bool if floaty => format!("{fv} != 0.0f"),
        DType::Bool => "x0[i] != 0".to_string(),
        DType::F64 if from == DType::F64 => "x0[i]".to_string(),
        to if floaty => format!("({}){fv}", crate::toolchain::c_type(to)),
        to => format!("({})x0[i]", crate::toolchain::c_type(to)),
    }
}

/// `a OP b` in C for inputs of element type `dt`.
fn binary_expr(kind: BinaryKind, dt: DType, a: &str, b: &str) -> String {
    match kind {
        BinaryKind::Add => format!("{a} + {b}"),
        BinaryKind::Sub => format!("{a} - {b}"),
        // uint16 operands promote to int, whose product may overflow: multiply unsigned.
        BinaryKind::Mul if dt == DType::U16 => format!("(uint32_t){a} * {b}"),
        BinaryKind::Mul => format!("{a} * {b}"),
        BinaryKind::Div => format!("{a} / {b}"),
        BinaryKind::Pow => format!("mlrt_pow({a}, {b})"),
        BinaryKind::Mod { fmod: true } if dt == DType::F32 => format!("fmodf({a}, {b})"),
        BinaryKind::Mod { fmod: true } if dt == DType::F64 => format!("fmod({a}, {b})"),
        BinaryKind::Mod { fmod: true } => format!("{a} % {b}"),
        BinaryKind::Mod { fmod: false } if dt.is_unsigned() => format!("{a} % {b}"),
        BinaryKind::Mod { fmod: false } => format!("mlrt_mod_i64({a}, {b})"),
        BinaryKind::Min => format!("({a} < {b} ? {a} : {b})"),
        BinaryKind::Max => format!("({a} > {b} ? {a} : {b})"),
        BinaryKind::Equal => format!("{a} == {b}"),
        BinaryKind::Less => format!("{a} < {b}"),
        BinaryKind::Greater => format!("{a} > {b}"),
        BinaryKind::LessOrEqual => format!("{a} <= {b}"),
        BinaryKind::GreaterOrEqual => format!("{a} >= {b}"),
        BinaryKind::And => format!("{a} && {b}"),
        BinaryKind::Or => format!("{a} || {b}"),
        BinaryKind::Xor => format!("{a} != {b}"),
        BinaryKind::PRelu => format!("({a} < 0.0f ? {a} * {b} : {a})"),
    }
}

/// Writes the body of node `n`'s kernel function.
pub(super) fn emit(w: &mut Writer, p: &Program, n: &Node) {
    let shape = |i: usize| p.graph.ty(n.inputs[i]).shape.clone();
    let out = p.graph.ty(n.outputs[0]).shape.clone();
    let total: usize = out.iter().product();
    match &n.op {
        Op::Conv(c) => {
            if fast_conv(w, p, n, c) {
                return;
            }
            let (x, wsh) = (shape(0), shape(1));
            let [nb, ci, h, wd] = [x[0], x[1], x[2], x[3]];
            let [m, oh, ow] = [out[1], out[2], out[3]];
            let (cg, mg, g) = (wsh[1], m / c.group, c.group);
            let [kh, kw] = c.kernel;
            let has_bias = n.inputs.len() > 2;
            let pointwise = kh == 1 && kw == 1 && c.strides == [1, 1] && c.pads == [0; 4] && g == 1;
            let bias = |oc: &str| if has_bias { format!("x2[{oc}]") } else { "0.0f".into() };
            if pointwise {
                let hw = h * wd;
                w.open(&format!("for (int n = 0; n < {nb}; ++n)"));
                w.line(&format!("const float *xn = x0 + n * {};", ci * hw));
                w.line(&format!("float *yn = y + n * {};", m * hw));
                w.open(&format!("for (int oc = 0; oc < {m}; ++oc)"));
                w.line(&format!("float *yc = yn + oc * {hw};"));
                w.line(&format!("for (int p = 0; p < {hw}; ++p) yc[p] = {};", bias("oc")));
                w.open(&format!("for (int ic = 0; ic < {ci}; ++ic)"));
                w.line(&format!("const float wv = x1[{}];", c_lin(&[("oc", ci), ("ic", 1)], 0)));
                w.line(&format!("const float *xc = xn + ic * {hw};"));
                w.line(&format!("for (int p = 0; p < {hw}; ++p) yc[p] += wv * xc[p];"));
                w.close();
                if c.act.is_some() {
                    w.line(&format!("for (int p = 0; p < {hw}; ++p) yc[p] = {};", act_expr(&c.act, "yc[p]")));
                }
                w.close();
                w.close();
                return;
            }
            let [sh, sw] = c.strides;
            let [dh, dw] = c.dilations;
            let [pt, pl, _, _] = c.pads;
            w.open(&format!("for (int n = 0; n < {nb}; ++n)"));
            w.open(&format!("for (int oc = 0; oc < {m}; ++oc)"));
            if mg == 1 {
                w.line("const int g = oc;");
            } else {
                w.line(&format!("const int g = oc / {mg};"));
            }
            w.line(&format!("const float *wk = x1 + {};", c_lin(&[("oc", cg * kh * kw)], 0)));
            w.open(&format!("for (int oh = 0; oh < {oh}; ++oh)"));
            w.open(&format!("for (int ow = 0; ow < {ow}; ++ow)"));
            w.line(&format!("float acc = {};", bias("oc")));
            w.open(&format!("for (int ic = 0; ic < {cg}; ++ic)"));
            w.line(&format!(
                "const float *xc = x0 + {};",
                c_lin(&[("n", ci * h * wd), ("g", cg * h * wd), ("ic", h * wd)], 0)
            ));
            w.open(&format!("for (int kh = 0; kh < {kh}; ++kh)"));
            w.line(&format!("const int ih = {};", c_lin(&[("oh", sh), ("kh", dh)], -(pt as isize))));
            w.line(&format!("if (ih < 0 || ih >= {h}) continue;"));
            w.open(&format!("for (int kw = 0; kw < {kw}; ++kw)"));
            w.line(&format!("const int iw = {};", c_lin(&[("ow", sw), ("kw", dw)], -(pl as isize))));
            w.line(&format!("if (iw < 0 || iw >= {wd}) continue;"));
            w.line(&format!(
                "acc += xc[{}] * wk[{}];",
                c_lin(&[("ih", wd), ("iw", 1)], 0),
                c_lin(&[("ic", kh * kw), ("kh", kw), ("kw", 1)], 0)
            ));
            w.close();
            w.close();
            w.close();
            w.line(&format!(
                "y[{}] = {};",
                c_lin(&[("n", m * oh * ow), ("oc", oh * ow), ("oh", ow), ("ow", 1)], 0),
                act_expr(&c.act, "acc")
            ));
            w.close();
            w.close();
            w.close();
            w.close();
        }
        Op::Gemm(gm) => {
            let (a, b) = (shape(0), shape(1));
            let (mm, k, nn) = gm.dims(p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1]));
            if let Some(bd) = const_data(p, n.inputs[1])
                .filter(|d| matches!(d, crate::ir::TensorData::F32(_)) && d.len() == k * nn && pack_pays(nn))
            {
                let packed = pack_gemm(k, nn, "0.0f", &|kk, j| {
                    c_float(f32_at(bd, if gm.trans_b { j * k + kk } else { kk * nn + j }).unwrap_or(0.0))
                });
                packed_array(w, "float", "bp", &packed);
                w.packs_input(1);
                let mut v = if gm.alpha == 1.0 { "v".to_string() } else { format!("{} * v", c_float(gm.alpha)) };
                if n.inputs.len() > 2 && gm.beta != 0.0 {
                    let st = broadcast_strides(&shape(2), &[mm, nn]);
                    let c_term = format!("x2[{}]", c_lin(&[("i", st[0]), ("j", st[1])], 0));
                    v = if gm.beta == 1.0 {
                        format!("{v} + {c_term}")
                    } else {
                        format!("{v} + {} * {c_term}", c_float(gm.beta))
                    };
                }
                if n.inputs.len() > 2 && gm.beta == 0.0 {
                    w.line("(void)x2;");
                }
                let am = a[1];
                let aval = |kv: &str| {
                    if gm.trans_a { format!("x0[{kv} * {am} + i]") } else { format!("x0[i * {k} + {kv}]") }
                };
                let out_stmt = format!("y[{}] = {};", c_lin(&[("i", nn), ("j", 1)], 0), act_expr(&gm.act, &v));
                emit_lane_gemm(w, Lane::F32, (mm, k, nn), &aval, &out_stmt);
                return;
            }
            let a_idx = if gm.trans_a { c_lin(&[("k", a[1]), ("i", 1)], 0) } else { c_lin(&[("i", k), ("k", 1)], 0) };
            let b_idx = if gm.trans_b { c_lin(&[("j", b[1]), ("k", 1)], 0) } else { c_lin(&[("k", nn), ("j", 1)], 0) };
            w.open(&format!("for (int i = 0; i < {mm}; ++i)"));
            w.open(&format!("for (int j = 0; j < {nn}; ++j)"));
            w.line("float acc = 0.0f;");
            w.line(&format!("for (int k = 0; k < {k}; ++k) acc += x0[{a_idx}] * x1[{b_idx}];"));
            let mut v = if gm.alpha == 1.0 { "acc".to_string() } else { format!("{} * acc", c_float(gm.alpha)) };
            if n.inputs.len() > 2 && gm.beta != 0.0 {
                let st = broadcast_strides(&shape(2), &[mm, nn]);
                let c_term = format!("x2[{}]", c_lin(&[("i", st[0]), ("j", st[1])], 0));
                v = if gm.beta == 1.0 {
                    format!("{v} + {c_term}")
                } else {
                    format!("{v} + {} * {c_term}", c_float(gm.beta))
                };
            }
            if n.inputs.len() > 2 && gm.beta == 0.0 {
                w.line("(void)x2;");
            }
            w.line(&format!("y[{}] = {};", c_lin(&[("i", nn), ("j", 1)], 0), act_expr(&gm.act, &v)));
            w.close();
            w.close();
        }
        Op::MatMul(mmop) => {
            let (ta, tb) = (p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1]));
            let Ok(d) = crate::ops::MatMul::dims(ta, tb) else { return };
            let batch: usize = d.batch.iter().product();
            let a_off = batch_offsets(&d.a_batch, &d.batch, d.m * d.k);
            let b_off = batch_offsets(&d.b_batch, &d.batch, d.k * d.n);
            let (m, k, nn) = (d.m, d.k, d.n);
            let bconst = const_data(p, n.inputs[1]).filter(|bd| {
                matches!(bd, crate::ir::TensorData::F32(_))
                    && bd.len() == k * nn
                    && pack_pays(nn)
                    && b_off.iter().all(|&o| o == 0)
            });
            if let Some(bd) = bconst {
                let packed = pack_gemm(k, nn, "0.0f", &|kk, j| c_float(f32_at(bd, kk * nn + j).unwrap_or(0.0)));
                packed_array(w, "float", "bp", &packed);
                w.packs_input(1);
                w.line(&format!("static const int a_off[{batch}] = {{{}}};", join(&a_off)));
                w.open(&format!("for (int bi = 0; bi < {batch}; ++bi)"));
                w.line("const float *a = x0 + a_off[bi];");
                w.line(&format!("float *yb = y + {};", c_lin(&[("bi", m * nn)], 0)));
                let aval = |kv: &str| format!("a[i * {k} + {kv}]");
                let out_stmt = format!("yb[{}] = {};", c_lin(&[("i", nn), ("j", 1)], 0), act_expr(&mmop.act, "v"));
                emit_lane_gemm(w, Lane::F32, (m, k, nn), &aval, &out_stmt);
                w.close();
                return;
            }
            let t = crate::toolchain::c_type(ta.dtype);
            w.line(&format!("static const int a_off[{batch}] = {{{}}};", join(&a_off)));
            w.line(&format!("static const int b_off[{batch}] = {{{}}};", join(&b_off)));
            w.open(&format!("for (int bi = 0; bi < {batch}; ++bi)"));
            w.line(&format!("const {t} *a = x0 + a_off[bi];"));
            w.line(&format!("const {t} *b = x1 + b_off[bi];"));
            w.line(&format!("{t} *yb = y + {};", c_lin(&[("bi", m * nn)], 0)));
            w.open(&format!("for (int i = 0; i < {m}; ++i)"));
            w.open(&format!("for (int j = 0; j < {nn}; ++j)"));
            w.line(&format!("{t} acc = 0;"));
            w.line(&format!(
                "for (int k = 0; k < {k}; ++k) acc += a[{}] * b[{}];",
                c_lin(&[("i", k), ("k", 1)], 0),
                c_lin(&[("k", nn), ("j", 1)], 0)
            ));
            w.line(&format!("yb[{}] = {};", c_lin(&[("i", nn), ("j", 1)], 0), act_expr(&mmop.act, "acc")));
            w.close();
            w.close();
            w.close();
        }
        Op::Binary(b) => {
            let (sa, sb) = (shape(0), shape(1));
            let dt = p.graph.ty(n.inputs[0]).dtype;
            if sa == out && sb == out {
                let e = act_expr(&b.act, &binary_expr(b.kind, dt, "x0[i]", "x1[i]"));
                w.line(&format!("for (int i = 0; i < {total}; ++i) y[i] = {e};"));
                return;
            }
            let ia = index_expr(&broadcast_strides(&sa, &out));
            let ib = index_expr(&broadcast_strides(&sb, &out));
            let e = act_expr(&b.act, &binary_expr(b.kind, dt, &format!("x0[{ia}]"), &format!("x1[{ib}]")));
            nested(w, &out, |w| w.line(&format!("y[o++] = {e};")));
        }
        Op::Cast(c) => {
            let from = p.graph.ty(n.inputs[0]).dtype;
            let e = match (from, c.to) {
                // 16-bit floats, float8 and float4 convert through float; int4 / int2 wrap.
                (f, to) if f.is_half() || to.is_half() || f.is_low() || to.is_low() => cast_low_c(f, c),
                (_, DType::Bool) => "x0[i] != 0".to_string(),
                _ => format!("({})x0[i]", crate::toolchain::c_type(c.to)),
            };
            w.line(&format!("for (int i = 0; i < {total}; ++i) y[i] = {e};"));
        }
        Op::Reduce(r) => {
            let dt = p.graph.ty(n.inputs[0]).dtype;
            let t = crate::toolchain::c_type(dt);
            let lp = reduce_loops(&shape(0), &r.axes);
            let (lo, hi) = type_limits_c(dt);
            // math.h: fabsf/sqrtf/expf/logf for float32, fabs/sqrt/exp/log for float64.
            let sfx = if dt == DType::F64 { "" } else { "f" };
            let (l1, lse) = (format!("acc += fabs{sfx}(v);"), format!("acc += exp{sfx}(v - mx);"));
            let (init, acc, fin) = match r.kind {
                ReduceKind::Sum | ReduceKind::Mean | ReduceKind::LogSum => ("0", "acc += v;", "acc".to_string()),
                ReduceKind::Max => (lo.as_str(), "acc = v > acc ? v : acc;", "acc".into()),
                ReduceKind::Min => (hi.as_str(), "acc = v < acc ? v : acc;", "acc".into()),
                ReduceKind::Prod => ("1", "acc *= v;", "acc".into()),
                ReduceKind::L1 => ("0", l1.as_str(), "acc".into()),
                ReduceKind::L2 => ("0", "acc += v * v;", format!("sqrt{sfx}(acc)")),
                ReduceKind::SumSquare => ("0", "acc += v * v;", "acc".into()),
                ReduceKind::LogSumExp => ("0", lse.as_str(), format!("mx + log{sfx}(acc)")),
            };
            let fin = match r.kind {
                ReduceKind::Mean => format!("acc / {}.0{sfx}", lp.count),
                ReduceKind::LogSum => format!("log{sfx}(acc)"),
                _ => fin,
            };
            let kept: Vec<String> = (0..lp.kept.len()).map(|k| format!("i{k}")).collect();
            let red: Vec<String> = (0..lp.reduced.len()).map(|k| format!("r{k}")).collect();
            let mut terms: Vec<(&str, usize)> =
                kept.iter().map(|s| s.as_str()).zip(lp.kept.iter().map(|k| k.1)).collect();
            terms.extend(red.iter().map(|s| s.as_str()).zip(lp.reduced.iter().map(|k| k.1)));
            let idx = c_lin(&terms, 0);
            let inner = |w: &mut Writer, body: &str| {
                for (k, (d, _)) in lp.reduced.iter().enumerate() {
                    w.open(&format!("for (int r{k} = 0; r{k} < {d}; ++r{k})"));
                }
                w.line(&format!("const {t} v = x0[{idx}];"));
                w.line(body);
                for _ in &lp.reduced {
                    w.close();
                }
            };
            w.line("int o = 0;");
            for (k, (d, _)) in lp.kept.iter().enumerate() {
                w.open(&format!("for (int i{k} = 0; i{k} < {d}; ++i{k})"));
            }
            if r.kind == ReduceKind::LogSumExp {
                w.line(&format!("{t} mx = -INFINITY;"));
                inner(w, "mx = v > mx ? v : mx;");
            }
            w.line(&format!("{t} acc = {init};"));
            inner(w, acc);
            w.line(&format!("y[o++] = {fin};"));
            for _ in &lp.kept {
                w.close();
            }
        }
        Op::ArgReduce(ar) => {
            let x = shape(0);
            let t = crate::toolchain::c_type(p.graph.ty(n.inputs[0]).dtype);
            let lp = reduce_loops(&x, &[ar.axis]);
            let kept: Vec<String> = (0..lp.kept.len()).map(|k| format!("i{k}")).collect();
            let terms: Vec<(&str, usize)> = kept.iter().map(|s| s.as_str()).zip(lp.kept.iter().map(|k| k.1)).collect();
            let base = c_lin(&terms, 0);
            let (len, stride) = lp.reduced[0];
            let cmp = match (ar.max, ar.select_last) {
                (true, false) => "v > best",
                (true, true) => "v >= best",
                (false, false) => "v < best",
                (false, true) => "v <= best",
            };
            w.line("int o = 0;");
            for (k, (d, _)) in lp.kept.iter().enumerate() {
                w.open(&format!("for (int i{k} = 0; i{k} < {d}; ++i{k})"));
            }
            w.line(&format!("const {t} *xr = x0 + {base};"));
            w.line(&format!("{t} best = xr[0];"));
            w.line("int64_t bi = 0;");
            w.open(&format!("for (int r = 1; r < {len}; ++r)"));
            w.line(&format!("const {t} v = xr[{}];", c_lin(&[("r", stride)], 0)));
            w.line(&format!("if ({cmp}) {{ best = v; bi = r; }}"));
            w.close();
            w.line("y[o++] = bi;");
            for _ in &lp.kept {
                w.close();
            }
        }
        Op::ConvTranspose(ct) => {
            // Scatter: every input element adds x · w to the outputs its kernel taps reach.
            let (x, wsh) = (shape(0), shape(1));
            let r = ct.rank();
            let (nb, ci, m) = (x[0], x[1], out[1]);
            let (cg, mg) = (ci / ct.group, wsh[1]);
            let (xsp, osp) = (&x[2..], &out[2..]);
            let (iplane, oplane, kvol): (usize, usize, usize) =
                (xsp.iter().product(), osp.iter().product(), ct.kernel.iter().product());
            let (xst, ost, kst) = (strides_of(xsp), strides_of(osp), strides_of(&ct.kernel));
            w.line(&format!(
                "for (int i = 0; i < {total}; ++i) y[i] = {};",
                if n.inputs.len() > 2 { format!("x2[(i / {oplane}) % {m}]") } else { "0.0f".into() }
            ));
            w.open(&format!("for (int n = 0; n < {nb}; ++n)"));
            w.open(&format!("for (int ic = 0; ic < {ci}; ++ic)"));
            w.line(&format!("const int g = ic / {cg};"));
            for (a, d) in xsp.iter().enumerate() {
                w.open(&format!("for (int i{a} = 0; i{a} < {d}; ++i{a})"));
            }
            let names: Vec<(String, String, String)> =
                (0..r).map(|a| (format!("i{a}"), format!("k{a}"), format!("o{a}"))).collect();
            let mut xterms: Vec<(&str, usize)> = vec![("n", ci * iplane), ("ic", iplane)];
            xterms.extend(names.iter().map(|t| t.0.as_str()).zip(xst.iter().copied()));
            w.line(&format!("const float xv = x0[{}];", c_lin(&xterms, 0)));
            w.open(&format!("for (int mm = 0; mm < {mg}; ++mm)"));
            w.line(&format!("const int oc = {};", c_lin(&[("g", mg), ("mm", 1)], 0)));
            for a in 0..r {
                let (i, k, o) = (&names[a].0, &names[a].1, &names[a].2);
                w.open(&format!("for (int {k} = 0; {k} < {}; ++{k})", ct.kernel[a]));
                w.line(&format!(
                    "const int {o} = {};",
                    c_lin(&[(i.as_str(), ct.strides[a]), (k.as_str(), ct.dilations[a])], -(ct.pads[a] as isize))
                ));
                w.line(&format!("if ({o} < 0 || {o} >= {}) continue;", osp[a]));
            }
            let mut yterms: Vec<(&str, usize)> = vec![("n", m * oplane), ("oc", oplane)];
            yterms.extend(names.iter().map(|t| t.2.as_str()).zip(ost.iter().copied()));
            let mut wterms: Vec<(&str, usize)> = vec![("ic", mg * kvol), ("mm", kvol)];
            wterms.extend(names.iter().map(|t| t.1.as_str()).zip(kst.iter().copied()));
            w.line(&format!("y[{}] += xv * x1[{}];", c_lin(&yterms, 0), c_lin(&wterms, 0)));
            for _ in 0..(3 + 2 * r) {
                w.close();
            }
        }
        Op::Quantize(_)
        | Op::Dequantize(_)
        | Op::QConv(_)
        | Op::QMatMul(_)
        | Op::QAdd(_)
        | Op::QPool(_)
        | Op::QSoftmax(_)
        | Op::Requantize(_) => super::qkernels::emit(w, p, n),
        Op::Sparse(s) => super::sparse::emit(w, p, n, s),
        Op::TopK(t) => super::topk::emit(w, p, n, t),
        Op::Resize(r) => {
            let xs = strides_of(&shape(0));
            let interp = r.interp_axes();
            // Tables of element offsets (index × stride), tap weights and outside flags.
            let mut coord: Vec<String> = vec![];
            let mut outside: Vec<String> = vec![];
            let mut weights: Vec<String> = vec![];
            for (ax, m) in r.maps.iter().enumerate() {
                let Some(m) = m else {
                    if xs[ax] != 0 {
                        coord.push(if xs[ax] == 1 { format!("i{ax}") } else { format!("i{ax} * {}", xs[ax]) });
                    }
                    continue;
                };
                let off: Vec<String> = m.index.iter().map(|&i| (i * xs[ax]).to_string()).collect();
                if m.interpolates() {
                    let rows = |v: &[String]| {
                        v.chunks(m.taps).map(|c| format!("{{{}}}", c.join(", "))).collect::<Vec<_>>().join(", ")
                    };
                    let wt: Vec<String> = m.weight.iter().map(|&v| c_float(v)).collect();
                    let (n, t) = (m.len(), m.taps);
                    w.line(&format!("static const int ix{ax}[{n}][{t}] = {{{}}};", rows(&off)));
                    w.line(&format!("static const float wt{ax}[{n}][{t}] = {{{}}};", rows(&wt)));
                    coord.push(format!("ix{ax}[i{ax}][t{ax}]"));
                    weights.push(format!("wt{ax}[i{ax}][t{ax}]"));
                } else {
                    w.line(&format!("static const int ix{ax}[{}] = {{{}}};", m.len(), off.join(", ")));
                    coord.push(format!("ix{ax}[i{ax}]"));
                }
                if m.outside.iter().any(|&b| b) {
                    let ex: Vec<&str> = m.outside.iter().map(|&b| if b { "1" } else { "0" }).collect();
                    w.line(&format!("static const unsigned char ex{ax}[{}] = {{{}}};", m.len(), ex.join(", ")));
                    outside.push(format!("ex{ax}[i{ax}]"));
                }
            }
            let idx = if coord.is_empty() { "0".to_string() } else { coord.join(" + ") };
            let select = |v: &str| {
                if outside.is_empty() {
                    v.to_string()
                } else {
                    format!("({}) ? {} : {v}", outside.join(" || "), c_float(r.extrapolation))
                }
            };
            nested(w, &out, |w| {
                if interp.is_empty() {
                    w.line(&format!("y[o++] = {};", select(&format!("x0[{idx}]"))));
                    return;
                }
                w.line("float acc = 0.0f;");
                for &ax in &interp {
                    let t = r.maps[ax].as_ref().map_or(1, |m| m.taps);
                    w.open(&format!("for (int t{ax} = 0; t{ax} < {t}; ++t{ax})"));
                }
                w.line(&format!("acc += {} * x0[{idx}];", weights.join(" * ")));
                for _ in &interp {
                    w.close();
                }
                w.line(&format!("y[o++] = {};", select("acc")));
            });
        }
        Op::Strided(st) => {
            let mut idx = st.offset.to_string();
            for (a, &s) in st.strides.iter().enumerate() {
                match s {
                    0 => {}
                    s if s > 0 => idx.push_str(&format!(" + i{a} * {s}")),
                    s => idx.push_str(&format!(" - i{a} * {}", -s)),
                }
            }
            nested(w, &out, |w| w.line(&format!("y[o++] = x0[{idx}];")));
        }
        Op::Gather(g) => {
            let x = shape(0);
            let d = x[g.axis];
            let outer: usize = x[..g.axis].iter().product();
            let inner: usize = x[g.axis + 1..].iter().product();
            let nidx = p.graph.ty(n.inputs[1]).len();
            w.open(&format!("for (int o = 0; o < {outer}; ++o)"));
            w.open(&format!("for (int j = 0; j < {nidx}; ++j)"));
            load_index(w, "x1[j]", d);
            let yi = c_lin(&[("o", nidx * inner), ("j", inner), ("i", 1)], 0);
            let xi = format!("{} + (int)k * {inner} + i", c_lin(&[("o", d * inner)], 0));
            w.line(&format!("for (int i = 0; i < {inner}; ++i) y[{yi}] = x0[{xi}];"));
            w.close();
            w.close();
        }
        Op::GatherElements(g) => {
            let x = shape(0);
            let xs = strides_of(&x);
            let d = x[g.axis];
            let mut st = xs.clone();
            st[g.axis] = 0;
            let base = index_expr(&st);
            nested(w, &out, |w| {
                load_index(w, "x1[o]", d);
                w.line(&format!("y[o] = x0[{base} + (int)k * {}];", xs[g.axis]));
                w.line("o++;");
            });
        }
        Op::Not => w.line(&format!("for (int i = 0; i < {total}; ++i) y[i] = !x0[i];")),
        Op::Where => {
            let [ic, ia, ib] = [0, 1, 2].map(|k| index_expr(&broadcast_strides(&shape(k), &out)));
            nested(w, &out, |w| w.line(&format!("y[o++] = x0[{ic}] ? x1[{ia}] : x2[{ib}];")));
        }
        Op::Activation(a) => {
            let e = match (p.graph.ty(n.inputs[0]).dtype, a.helper64()) {
                (DType::F64, Some(h)) => format!("mlrt_{h}(x0[i])"),
                _ => act_expr(&Some(*a), "x0[i]"),
            };
            w.line(&format!("for (int i = 0; i < {total}; ++i) y[i] = {e};"));
        }
        Op::Softmax(s) => {
            let (outer, len, inner) = s.split(&out);
            // float32 or float64: the element type, its exp helper and math.h's log.
            let (t, exp, log, zero) = match p.graph.ty(n.inputs[0]).dtype {
                DType::F64 => ("double", "mlrt_exp64", "log", "0.0"),
                _ => ("float", "mlrt_exp", "logf", "0.0f"),
            };
            w.open(&format!("for (int o = 0; o < {outer}; ++o)"));
            w.open(&format!("for (int j = 0; j < {inner}; ++j)"));
            let base = c_lin(&[("o", len * inner), ("j", 1)], 0);
            let at = c_lin(&[("i", inner)], 0);
            w.line(&format!("const {t} *xr = x0 + {base};"));
            w.line(&format!("{t} *yr = y + {base};"));
            w.line(&format!("{t} mx = xr[0];"));
            w.line(&format!("{t} sum = {zero};"));
            w.line(&format!("for (int i = 1; i < {len}; ++i) mx = xr[{at}] > mx ? xr[{at}] : mx;"));
            w.open(&format!("for (int i = 0; i < {len}; ++i)"));
            w.line(&format!("yr[{at}] = {exp}(xr[{at}] - mx);"));
            w.line(&format!("sum += yr[{at}];"));
            w.close();
            if s.log {
                w.line(&format!("for (int i = 0; i < {len}; ++i) yr[{at}] = xr[{at}] - mx - {log}(sum);"));
            } else {
                w.line(&format!("for (int i = 0; i < {len}; ++i) yr[{at}] /= sum;"));
            }
            w.close();
            w.close();
        }
        Op::Pool(pl) => {
            let x = shape(0);
            let [h, wd] = [x[2], x[3]];
            let [oh, ow] = [out[2], out[3]];
            let [kh, kw] = pl.kernel;
            let [sh, sw] = pl.strides;
            let [dh, dw] = pl.dilations;
            let [pt, pleft, pb, pr] = pl.pads;
            let planes = out[0] * out[1];
            let dt = p.graph.ty(n.inputs[0]).dtype;
            let t = crate::toolchain::c_type(dt);
            let global = pl.covers_plane([h, wd], [oh, ow]);
            if p.choice(n).x_blocked {
                super::blocks::emit_global_avg(w, planes / LANES, h * wd);
                return;
            }
            if pl.kind == PoolKind::Avg && dt == crate::ir::DType::F32 && global {
                // Global average: 8 partial sums per plane (one serial chain would be latency-bound).
                let hw = h * wd;
                let whole = hw / LANES * LANES;
                w.open(&format!("for (int c = 0; c < {planes}; ++c)"));
                w.line(&format!("const float *xc = x0 + c * {hw};"));
                w.line("const mlrt_f8 one = mlrt_f8_set1(1.0f);");
                w.line("mlrt_f8 s = mlrt_f8_set1(0.0f);");
                w.line("float lanes[8], acc = 0.0f;");
                w.line(&format!(
                    "for (int i = 0; i < {whole}; i += {LANES}) s = mlrt_f8_fmav(s, mlrt_f8_load(xc + i), one);"
                ));
                w.line("mlrt_f8_store(lanes, s);");
                w.line(&format!("for (int l = 0; l < {LANES}; ++l) acc += lanes[l];"));
                w.line(&format!("for (int i = {whole}; i < {hw}; ++i) acc += xc[i];"));
                w.line(&format!("y[c] = acc / {};", super::c_float(hw as f32)));
                w.close();
                return;
            }
            w.open(&format!("for (int c = 0; c < {planes}; ++c)"));
            w.line(&format!("const {t} *xc = x0 + {};", c_lin(&[("c", h * wd)], 0)));
            w.open(&format!("for (int oh = 0; oh < {oh}; ++oh)"));
            w.open(&format!("for (int ow = 0; ow < {ow}; ++ow)"));
            match pl.kind {
                PoolKind::Max => w.line(&format!("{t} acc = {};", type_limits_c(dt).0)),
                PoolKind::Avg => {
                    w.line("float acc = 0.0f;");
                    w.line("int count = 0;");
                }
            }
            w.open(&format!("for (int kh = 0; kh < {kh}; ++kh)"));
            w.line(&format!("const int ih = {};", c_lin(&[("oh", sh), ("kh", dh)], -(pt as isize))));
            w.open(&format!("for (int kw = 0; kw < {kw}; ++kw)"));
            w.line(&format!("const int iw = {};", c_lin(&[("ow", sw), ("kw", dw)], -(pleft as isize))));
            if pl.kind == PoolKind::Avg && pl.count_include_pad {
                w.line(&format!("if (ih >= -{pt} && ih < {} && iw >= -{pleft} && iw < {}) ++count;", h + pb, wd + pr));
            }
            w.line(&format!("if (ih < 0 || ih >= {h} || iw < 0 || iw >= {wd}) continue;"));
            let xi = c_lin(&[("ih", wd), ("iw", 1)], 0);
            match pl.kind {
                PoolKind::Max => w.line(&format!("acc = xc[{xi}] > acc ? xc[{xi}] : acc;")),
                PoolKind::Avg => {
                    w.line(&format!("acc += xc[{xi}];"));
                    if !pl.count_include_pad {
                        w.line("++count;");
                    }
                }
            }
            w.close();
            w.close();
            let v = match pl.kind {
                PoolKind::Max => "acc",
                PoolKind::Avg => "(count > 0 ? acc / (float)count : 0.0f)",
            };
            w.line(&format!("y[{}] = {v};", c_lin(&[("c", oh * ow), ("oh", ow), ("ow", 1)], 0)));
            w.close();
            w.close();
            w.close();
        }
        Op::Reshape(_) => {
            w.line(&format!("for (int i = 0; i < {total}; ++i) y[i] = x0[i];"));
        }
        Op::Transpose(t) if t.perm == [0, 3, 1, 2] && shape(0)[3] <= 4 => {
            // NHWC to NCHW with few channels (an image input): one pass over the input, each
            // pixel's channels to their planes (the generic nest reads it once per channel).
            let [nb, h, wd, c] = [shape(0)[0], shape(0)[1], shape(0)[2], shape(0)[3]];
            let hw = h * wd;
            w.open(&format!("for (int n = 0; n < {nb}; ++n)"));
            w.open(&format!("for (int p = 0; p < {hw}; ++p)"));
            for k in 0..c {
                w.line(&format!("y[n * {} + {} + p] = x0[(n * {hw} + p) * {c} + {k}];", c * hw, k * hw));
            }
            w.close();
            w.close();
        }
        Op::Transpose(t) => {
            let xs = strides_of(&shape(0));
            let st: Vec<usize> = t.perm.iter().map(|&a| xs[a]).collect();
            let ix = index_expr(&st);
            nested(w, &out, |w| w.line(&format!("y[o++] = x0[{ix}];")));
        }
        Op::Concat(cc) => {
            let tys: Vec<_> = n.inputs.iter().map(|&v| p.graph.ty(v)).collect();
            let (outer, blocks) = cc.blocks(&tys);
            let row: usize = blocks.iter().sum();
            w.open(&format!("for (int o = 0; o < {outer}; ++o)"));
            let mut at = 0;
            for (i, b) in blocks.iter().enumerate() {
                let (yo, xo) = (c_lin(&[("o", row), ("k", 1)], at as isize), c_lin(&[("o", *b), ("k", 1)], 0));
                w.line(&format!("for (int k = 0; k < {b}; ++k) y[{yo}] = x{i}[{xo}];"));
                at += b;
            }
            w.close();
        }
        Op::Pad(pd) => {
            let x = shape(0);
            let r = x.len();
            let xs = strides_of(&x);
            w.line("int o = 0;");
            for (ax, &d) in out.iter().enumerate() {
                w.open(&format!("for (int i{ax} = 0; i{ax} < {d}; ++i{ax})"));
                let begin = pd.pads[ax];
                let len = x[ax];
                w.line(&format!("int s{ax} = {};", c_lin(&[(&format!("i{ax}"), 1)], -(begin as isize))));
                match pd.mode {
                    PadMode::Constant => {}
                    PadMode::Edge => {
                        w.line(&format!("s{ax} = s{ax} < 0 ? 0 : (s{ax} >= {len} ? {} : s{ax});", len - 1))
                    }
                    PadMode::Reflect => w.line(&format!(
                        "s{ax} = s{ax} < 0 ? -s{ax} : (s{ax} >= {len} ? {} - s{ax} : s{ax});",
                        2 * len.saturating_sub(1)
                    )),
                    PadMode::Wrap => w.line(&format!("s{ax} = (s{ax} % {len} + {len}) % {len};", len = len.max(1))),
                }
            }
            let inside: Vec<String> = (0..r).map(|a| format!("s{a} >= 0 && s{a} < {}", x[a])).collect();
            let names: Vec<String> = (0..r).map(|a| format!("s{a}")).collect();
            let terms: Vec<(&str, usize)> = names.iter().map(|s| s.as_str()).zip(xs.iter().copied()).collect();
            let idx = c_lin(&terms, 0);
            let cond = if inside.is_empty() { "1".into() } else { inside.join(" && ") };
            let value = match p.graph.ty(n.outputs[0]).dtype {
                DType::F32 => c_float(pd.value),
                DType::Bool => if pd.value != 0.0 { "true" } else { "false" }.into(),
                _ => (pd.value as i64).to_string(),
            };
            w.line(&format!("y[o++] = ({cond}) ? x0[{idx}] : {value};"));
            for _ in 0..r {
                w.close();
            }
        }
        Op::BatchNorm(_) => {
            // Legalised away before emission; kept exhaustive for the compiler's sake.
            w.line("/* unreachable: BatchNorm is legalised to Mul + Add */");
        }
    }
}

/// Emits `int o = 0;` and one loop per axis of `shape` (counters `i0, i1, ...`).
fn nested(w: &mut Writer, shape: &[usize], inner: impl FnOnce(&mut Writer)) {
    w.line("int o = 0;");
    for (ax, d) in shape.iter().enumerate() {
        w.open(&format!("for (int i{ax} = 0; i{ax} < {d}; ++i{ax})"));
    }
    inner(w);
    for _ in shape {
        w.close();
    }
}

/// `i0 * s0 + i1 * s1 + ...`, skipping zero strides.
fn index_expr(strides: &[usize]) -> String {
    let names: Vec<String> = (0..strides.len()).map(|a| format!("i{a}")).collect();
    let terms: Vec<(&str, usize)> = names.iter().map(|s| s.as_str()).zip(strides.iter().copied()).collect();
    c_lin(&terms, 0)
}

/// Element offset of each broadcast batch's matrix in an operand with batch dims `own`.
pub(crate) fn batch_offsets(own: &[usize], batch: &[usize], mat: usize) -> Vec<usize> {
    let map = crate::ops::broadcast::broadcast_index_map(own, batch);
    map.into_iter().map(|i| i * mat).collect()
}

fn join(v: &[usize]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------
// Fast paths (issue 6): weights pre-packed at compile time into 8-output-lane panels,
// register-blocked loops over GCC vector extensions (`vector_size(32)`: one AVX register
// on x86_64 with AVX2, two SSE / NEON registers elsewhere), with a plain-C99 fallback for
// other compilers. Bias, activation and (int8) requantization are fused in the epilogue.
// ---------------------------------------------------------------------------------------

/// Output lanes per panel (one 256-bit vector of float / int32).
pub(crate) const LANES: usize = 8;

/// Whether packing `n` outputs into panels of [`LANES`] costs at most 25% more flash
/// (narrow layers, e.g. a 10-class head, keep the plain loops and their unpadded weights).
pub(crate) fn pack_pays(n: usize) -> bool {
    n.div_ceil(LANES) * LANES * 4 <= n * 5
}
/// Output pixels per register tile of the dense convolution.
const TILE: usize = 8;

/// The constant data behind `v`, if it is baked into the generated code.
pub(crate) fn const_data<'a>(p: &'a Program, v: crate::ir::ValueId) -> Option<&'a crate::ir::TensorData> {
    if !matches!(p.storage(v), crate::passes::Storage::Const) {
        return None;
    }
    p.graph.value(v).data.as_ref()
}

/// Element `i` of a float constant.
pub(crate) fn f32_at(d: &crate::ir::TensorData, i: usize) -> Option<f32> {
    match d {
        crate::ir::TensorData::F32(v) => v.get(i).copied(),
        _ => None,
    }
}

/// Element `i` of an integer constant, widened.
pub(crate) fn int_at(d: &crate::ir::TensorData, i: usize) -> Option<i64> {
    use crate::ir::TensorData as T;
    Some(match d {
        T::I8(v) => *v.get(i)? as i64,
        T::U8(v) => *v.get(i)? as i64,
        T::I32(v) => *v.get(i)? as i64,
        T::I64(v) => *v.get(i)?,
        _ => return None,
    })
}

/// What every byte-quad kernel ([`crate::backend::Isa::dot4`]) needs of a node: a QConv with
/// 8-bit input and requantized 8-bit output whose constant weights all have an int8
/// `w − w_zp`. Its QConv and geometry.
pub(crate) fn quad_qconv<'g>(
    g: &'g crate::ir::Graph,
    n: &'g Node,
    isa: crate::backend::Isa,
) -> Option<(&'g crate::ops::QConv, ConvGeo)> {
    let Op::QConv(qc) = &n.op else { return None };
    let geo = ConvGeo::of_graph(g, n, &qc.conv, false)?;
    let bytes = [n.inputs[0], n.outputs[0]].iter().all(|&v| matches!(g.ty(v).dtype, DType::I8 | DType::U8));
    let weights = g.value(n.inputs[1]).data.as_ref().filter(|_| g.is_const(n.inputs[1]))?;
    let per = geo.ci / qc.conv.group * qc.conv.kernel[0] * qc.conv.kernel[1];
    let ok = isa.dot4 && qc.out.is_some() && bytes && weights.len() == geo.m * per && weights_fit_i8(qc, weights, per);
    ok.then_some((qc, geo))
}

/// Whether every `w − w_zp` of `qc`'s constant weights (`per` values per output channel) is an
/// int8: the signed operand of the byte-quad dot products (`mlrt_dot4`).
pub(crate) fn weights_fit_i8(qc: &crate::ops::QConv, weights: &crate::ir::TensorData, per: usize) -> bool {
    (0..weights.len())
        .all(|i| int_at(weights, i).is_some_and(|v| (-128..=127).contains(&(v - qc.w_zp_of(i / per) as i64))))
}

/// Accumulator flavour of a lane kernel, and the C type its packed weights are stored in
/// (narrower than the accumulator for int8 models: flash stays at one byte per weight).
#[derive(Clone, Copy)]
pub(crate) struct Lane {
    pub int: bool,
    pub wt: &'static str,
}

impl Lane {
    pub(crate) const F32: Lane = Lane { int: false, wt: "float" };

    /// An int32 lane whose packed weights take the narrowest type holding all of `vals`.
    pub(crate) fn int_for(vals: &[i64]) -> Lane {
        let fits = |lo: i64, hi: i64| vals.iter().all(|v| (lo..=hi).contains(v));
        let wt = if fits(-128, 127) {
            "int8_t"
        } else if fits(-32768, 32767) {
            "int16_t"
        } else {
            "int32_t"
        };
        Lane { int: true, wt }
    }

    /// The 8 packed weights at `ptr` as an accumulator vector (GNU C path).
    fn load(self, ptr: &str) -> String {
        if self.wt == self.scalar() {
            format!("*(const v8u *)({ptr})")
        } else if self.wt == "int8_t" {
            // GCC 12 widens 8 bytes straight to int32 lanes one scalar at a time; through
            // int16 it emits vector sign extensions (vpmovsx on x86, sxtl on NEON).
            format!("__builtin_convertvector(__builtin_convertvector(*(const v8w *)({ptr}), v8h), v8)")
        } else {
            format!("__builtin_convertvector(*(const v8w *)({ptr}), v8)")
        }
    }

    fn scalar(self) -> &'static str {
        if self.int { "int32_t" } else { "float" }
    }
    fn zero(self) -> &'static str {
        if self.int { "0" } else { "0.0f" }
    }
    fn typedefs(self, w: &mut Writer) {
        let s = self.scalar();
        w.line(&format!("typedef {s} v8 __attribute__((vector_size({})));", LANES * 4));
        w.line(&format!("typedef {s} v8u __attribute__((vector_size({}), aligned(4)));", LANES * 4));
        if self.wt != s {
            w.line(&format!(
                "typedef {} v8w __attribute__((vector_size(8 * sizeof({})), aligned(1)));",
                self.wt, self.wt
            ));
        }
        if self.wt == "int8_t" {
            w.line("typedef int16_t v8h __attribute__((vector_size(16)));");
        }
    }
}

/// `static const T name[] = {...};` from literals, 16 per line.
pub(crate) fn packed_array(w: &mut Writer, t: &str, name: &str, items: &[String]) {
    w.line(&format!("static const {t} {name}[{}] = {{", items.len().max(1)));
    for chunk in items.chunks(16) {
        w.line(&format!("    {},", chunk.join(", ")));
    }
    if items.is_empty() {
        w.line("    0");
    }
    w.line("};");
}

pub(crate) use super::super::conv_geo::ConvGeo;

/// Packs weights `wv(oc, ic, ky, kx)` as `[oc/8][ky][kx][ic][8]` (missing channels zero).
pub(crate) fn pack_conv(g: &ConvGeo, zero: &str, wv: &dyn Fn(usize, usize, usize, usize) -> String) -> Vec<String> {
    let ob = g.m.div_ceil(LANES);
    let mut out = Vec::with_capacity(ob * g.k[0] * g.k[1] * g.ci * LANES);
    for b in 0..ob {
        for ky in 0..g.k[0] {
            for kx in 0..g.k[1] {
                for ic in 0..g.ci {
                    for j in 0..LANES {
                        let oc = b * LANES + j;
                        out.push(if oc < g.m { wv(oc, ic, ky, kx) } else { zero.to_string() });
                    }
                }
            }
        }
    }
    out
}

/// Dense convolution over packed weights `wp` (see [`pack_conv`]): tiles of [`TILE`] output
/// pixels × 8 output channels held in registers; interior tiles skip the bounds checks,
/// border pixels go one at a time and skip the taps outside the image (so `xval` must be
/// zero for padding, e.g. `x − x_zp`). `xval` maps an input element to the accumulated
/// scalar; `store` is the output value from `v` (the sum) and `oc`.
pub(crate) fn emit_lane_conv(
    w: &mut Writer,
    lane: Lane,
    g: ConvGeo,
    xt: &str,
    xval: &dyn Fn(&str) -> String,
    store: &str,
) {
    // In place, output row `oh` (all channels) overwrites input row `oh`: rows `oh − pt ..= oh`
    // are read from a ring of `pt + 1` rows saved before each output row.
    let ring = if g.in_place { g.pt + 1 } else { 0 };
    let g = if g.in_place { g } else { g.flattened() };
    let (s, zero) = (lane.scalar(), lane.zero());
    let ob = g.m.div_ceil(LANES);
    let [kh, kw] = g.k;
    let [sh, sw] = g.s;
    let [dh, dw] = g.d;
    let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
    let panel = kh * kw * g.ci * LANES;
    // Output columns whose taps are all inside the image.
    let owa = g.pl.div_ceil(sw).min(g.ow);
    let last = (g.wd + g.pl) as isize - 1 - ((kw - 1) * dw) as isize;
    let owb = if last < 0 { owa } else { ((last as usize) / sw + 1).clamp(owa, g.ow) };
    w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
    w.line(&format!("const {xt} *xn = x0 + {};", c_lin(&[("n", g.ci * hw)], 0)));
    let row = g.ci * g.wd;
    if ring > 0 {
        w.open(&format!("for (int oh = 0; oh < {}; ++oh)", g.oh));
        w.line(&format!("{xt} *slot = ring + (oh % {ring}) * {row};"));
        w.line(&format!(
            "for (int c = 0; c < {}; ++c) for (int i = 0; i < {wd}; ++i) slot[c * {wd} + i] = xn[c * {hw} + oh * {wd} + i];",
            g.ci,
            wd = g.wd
        ));
        w.open(&format!("for (int ob = 0; ob < {ob}; ++ob)"));
        w.line(&format!("const {} *wb = wp + {};", lane.wt, c_lin(&[("ob", panel)], 0)));
    } else {
        w.open(&format!("for (int ob = 0; ob < {ob}; ++ob)"));
        w.line(&format!("const {} *wb = wp + {};", lane.wt, c_lin(&[("ob", panel)], 0)));
        w.open(&format!("for (int oh = 0; oh < {}; ++oh)", g.oh));
    }
    w.open(&format!("for (int ow = 0; ow < {};)", g.ow));
    w.line(&format!("{s} acc[{TILE}][{LANES}];"));
    w.line("int nt;");
    // Interior tiles of TILE, then TILE / 2 pixels (enough independent accumulators to hide
    // the FMA latency), then single pixels with bounds checks.
    let mut tiers: Vec<(usize, String)> = [TILE, TILE / 2]
        .into_iter()
        .filter(|&nt| owb - owa >= nt)
        .map(|nt| (nt, format!("if (ow >= {owa} && ow + {nt} <= {owb})")))
        .collect();
    tiers.push((1, String::new()));
    for (k, (nt, cond)) in tiers.into_iter().enumerate() {
        let tiled = nt > 1;
        w.open(&match (k, tiled) {
            (0, _) => cond,
            (_, true) => format!("else {cond}"),
            (_, false) => "else".to_string(),
        });
        w.line(&format!("nt = {nt};"));
        // A single pixel splits its channel sum over `u` accumulators (independent chains).
        let u = if nt == 1 && g.ci.is_multiple_of(4) { 4 } else { 1 };
        w.line("#if defined(__GNUC__)");
        lane.typedefs(w);
        let accs: Vec<String> = (0..nt * u).map(|t| format!("a{t} = {{{zero}}}")).collect();
        w.line(&format!("v8 {};", accs.join(", ")));
        w.line("#else");
        w.line(&format!("for (int t = 0; t < {nt}; ++t) for (int j = 0; j < {LANES}; ++j) acc[t][j] = {zero};"));
        w.line("#endif");
        w.open(&format!("for (int kh = 0; kh < {kh}; ++kh)"));
        w.line(&format!("const int ih = {};", c_lin(&[("oh", sh), ("kh", dh)], -(g.pt as isize))));
        w.line(&format!("if (ih < 0 || ih >= {}) continue;", g.h));
        if ring > 0 {
            w.line(&format!("const {xt} *xr = ih <= oh ? ring + (ih % {ring}) * {row} : xn + ih * {};", g.wd));
            w.line(&format!("const int cs = ih <= oh ? {} : {hw};", g.wd));
        } else {
            w.line(&format!("const {xt} *xr = xn + {};", c_lin(&[("ih", g.wd)], 0)));
        }
        w.open(&format!("for (int kw = 0; kw < {kw}; ++kw)"));
        w.line(&format!("const int iw = {};", c_lin(&[("ow", sw), ("kw", dw)], -(g.pl as isize))));
        if !tiled {
            w.line(&format!("if (iw < 0 || iw >= {}) continue;", g.wd));
        }
        w.line(&format!("const {xt} *xp = xr + iw;"));
        w.line(&format!(
            "const {} *wk = wb + {};",
            lane.wt,
            c_lin(&[("kh", kw * g.ci * LANES), ("kw", g.ci * LANES)], 0)
        ));
        let step = if u == 1 { "++ic".to_string() } else { format!("ic += {u}") };
        w.open(&format!("for (int ic = 0; ic < {}; {step})", g.ci));
        let cstride = if ring > 0 { "cs".to_string() } else { hw.to_string() };
        w.line(&format!("const {xt} *xc = xp + ic * {cstride};"));
        w.line(&format!("const {} *wv = wk + {};", lane.wt, c_lin(&[("ic", LANES)], 0)));
        // Input element of pixel `t`, channel `ic + k`.
        let x_at = |k: usize, t: usize| {
            let col = t * sw;
            xval(&if k == 0 { format!("xc[{col}]") } else { format!("xc[{k} * {cstride} + {col}]") })
        };
        w.line("#if defined(__GNUC__)");
        for k in 0..u {
            w.line(&format!("const v8 wl{k} = {};", lane.load(&format!("wv + {}", k * LANES))));
            for t in 0..nt {
                w.line(&format!("a{} += ({s})({}) * wl{k};", t * u + k, x_at(k, t)));
            }
        }
        w.line("#else");
        for k in 0..u {
            for t in 0..nt {
                w.line(&format!(
                    "{{ const {s} xv = {}; for (int j = 0; j < {LANES}; ++j) acc[{t}][j] += xv * wv[{} + j]; }}",
                    x_at(k, t),
                    k * LANES
                ));
            }
        }
        w.line("#endif");
        w.close();
        w.close();
        w.close();
        w.line("#if defined(__GNUC__)");
        for t in 0..nt {
            let sum = if u == 4 {
                format!("(a{0} + a{1}) + (a{2} + a{3})", t * u, t * u + 1, t * u + 2, t * u + 3)
            } else {
                format!("a{t}")
            };
            w.line(&format!("*(v8u *)acc[{t}] = {sum};"));
        }
        w.line("#endif");
        w.close();
    }
    let jn = if g.m.is_multiple_of(LANES) {
        LANES.to_string()
    } else {
        format!("(ob == {} ? {} : {LANES})", ob - 1, g.m % LANES)
    };
    w.open(&format!("for (int j = 0; j < {jn}; ++j)"));
    w.line(&format!("const int oc = {};", c_lin(&[("ob", LANES), ("j", 1)], 0)));
    w.open("for (int t = 0; t < nt; ++t)");
    w.line(&format!("const {s} v = acc[t][j];"));
    w.line(&format!("y[{}] = {store};", c_lin(&[("n", g.m * ohw), ("oc", ohw), ("oh", g.ow), ("ow", 1), ("t", 1)], 0)));
    w.close();
    w.close();
    w.line("ow += nt;");
    w.close();
    w.close();
    w.close();
    w.close();
}

/// Depthwise convolution (`group == ci == m`), one output row at a time in a stack row of
/// accumulators: per tap, the columns whose input is inside the image are a compile-time
/// range, so the inner loop has no checks (taps over padding are skipped: `xval` must be
/// zero for padding). `wval` maps a weight element to the scalar multiplier.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_depthwise(
    w: &mut Writer,
    lane: Lane,
    g: &ConvGeo,
    xt: &str,
    wt: &str,
    wval: &dyn Fn(&str) -> String,
    xval: &dyn Fn(&str) -> String,
    store: &str,
) {
    let (s, zero) = (lane.scalar(), lane.zero());
    let [kh, kw] = g.k;
    let [sh, sw] = g.s;
    let [dh, dw] = g.d;
    let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
    w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
    w.open(&format!("for (int oc = 0; oc < {}; ++oc)", g.m));
    w.line(&format!("const {xt} *xc = x0 + {};", c_lin(&[("n", g.ci * hw), ("oc", hw)], 0)));
    w.line(&format!("const {wt} *wk = x1 + {};", c_lin(&[("oc", kh * kw)], 0)));
    w.open(&format!("for (int oh = 0; oh < {}; ++oh)", g.oh));
    w.line(&format!("{s} row[{}];", g.ow));
    w.line(&format!("for (int ow = 0; ow < {}; ++ow) row[ow] = {zero};", g.ow));
    w.open(&format!("for (int kh = 0; kh < {kh}; ++kh)"));
    w.line(&format!("const int ih = {};", c_lin(&[("oh", sh), ("kh", dh)], -(g.pt as isize))));
    w.line(&format!("if (ih < 0 || ih >= {}) continue;", g.h));
    // In place, rows above `oh` were overwritten: the ring keeps the last `pt` of them.
    let ring = if g.in_place { g.pt } else { 0 };
    if ring > 0 {
        w.line(&format!("const {xt} *xr = ih < oh ? ring + (ih % {ring}) * {wd} : xc + ih * {wd};", wd = g.wd));
    } else {
        w.line(&format!("const {xt} *xr = xc + {};", c_lin(&[("ih", g.wd)], 0)));
    }
    for kx in 0..kw {
        let off = (kx * dw) as isize - g.pl as isize;
        let lo = if off >= 0 { 0 } else { ((-off) as usize).div_ceil(sw) };
        let top = g.wd as isize - 1 - off;
        if top < 0 {
            continue;
        }
        let hi = (top as usize / sw + 1).min(g.ow);
        if lo >= hi {
            continue;
        }
        w.open("");
        w.line(&format!("const {s} wv = {};", wval(&format!("wk[{}]", c_lin(&[("kh", kw)], kx as isize)))));
        w.line(&format!(
            "for (int ow = {lo}; ow < {hi}; ++ow) row[ow] += wv * {};",
            xval(&format!("xr[{}]", c_lin(&[("ow", sw)], off)))
        ));
        w.close();
    }
    w.close();
    if ring > 0 {
        w.line(&format!(
            "for (int i = 0; i < {wd}; ++i) ring[(oh % {ring}) * {wd} + i] = xc[oh * {wd} + i];",
            wd = g.wd
        ));
    }
    w.open(&format!("for (int ow = 0; ow < {}; ++ow)", g.ow));
    w.line(&format!("const {s} v = row[ow];"));
    w.line(&format!("y[{}] = {store};", c_lin(&[("n", g.m * ohw), ("oc", ohw), ("oh", g.ow), ("ow", 1)], 0)));
    w.close();
    w.close();
    w.close();
    w.close();
}

/// Packs `b(kk, j)` of a `k × n` matrix as `[n/8][k][8]` (missing columns zero).
pub(crate) fn pack_gemm(k: usize, n: usize, zero: &str, b: &dyn Fn(usize, usize) -> String) -> Vec<String> {
    let nb = n.div_ceil(LANES);
    let mut out = Vec::with_capacity(nb * k * LANES);
    for jb in 0..nb {
        for kk in 0..k {
            for l in 0..LANES {
                let j = jb * LANES + l;
                out.push(if j < n { b(kk, j) } else { zero.to_string() });
            }
        }
    }
    out
}

/// `rows × k` by packed `k × n` (array `bp`, see [`pack_gemm`]): per row and panel of 8
/// columns, four independent vector accumulators over `k`. `aval(kk)` is the scalar of the
/// left operand (may use `i`); `out_stmt` stores `v` for row `i`, column `j`.
pub(crate) fn emit_lane_gemm(
    w: &mut Writer,
    lane: Lane,
    (rows, k, n): (usize, usize, usize),
    aval: &dyn Fn(&str) -> String,
    out_stmt: &str,
) {
    let (s, zero) = (lane.scalar(), lane.zero());
    let nb = n.div_ceil(LANES);
    w.open(&format!("for (int i = 0; i < {rows}; ++i)"));
    w.open(&format!("for (int jb = 0; jb < {nb}; ++jb)"));
    w.line(&format!("const {} *wb = bp + {};", lane.wt, c_lin(&[("jb", k * LANES)], 0)));
    w.line(&format!("{s} acc[{LANES}];"));
    w.line("#if defined(__GNUC__)");
    lane.typedefs(w);
    w.line(&format!("v8 a0 = {{{zero}}}, a1 = {{{zero}}}, a2 = {{{zero}}}, a3 = {{{zero}}};"));
    w.line("int kk = 0;");
    w.open(&format!("for (; kk + 4 <= {k}; kk += 4)"));
    for u in 0..4 {
        let kv = if u == 0 { "kk".to_string() } else { format!("(kk + {u})") };
        w.line(&format!("a{u} += ({s})({}) * {};", aval(&kv), lane.load(&format!("wb + {kv} * {LANES}"))));
    }
    w.close();
    w.line(&format!(
        "for (; kk < {k}; ++kk) a0 += ({s})({}) * {};",
        aval("kk"),
        lane.load(&format!("wb + kk * {LANES}"))
    ));
    w.line("*(v8u *)acc = (a0 + a1) + (a2 + a3);");
    w.line("#else");
    w.line(&format!("for (int j = 0; j < {LANES}; ++j) acc[j] = {zero};"));
    w.open(&format!("for (int kk = 0; kk < {k}; ++kk)"));
    w.line(&format!("const {s} av = {};", aval("kk")));
    w.line(&format!("for (int j = 0; j < {LANES}; ++j) acc[j] += av * wb[kk * {LANES} + j];"));
    w.close();
    w.line("#endif");
    let jn = if n.is_multiple_of(LANES) {
        LANES.to_string()
    } else {
        format!("(jb == {} ? {} : {LANES})", nb - 1, n % LANES)
    };
    w.open(&format!("for (int l = 0; l < {jn}; ++l)"));
    w.line(&format!("const int j = {};", c_lin(&[("jb", LANES), ("l", 1)], 0)));
    w.line(&format!("const {s} v = acc[l];"));
    w.line(out_stmt);
    w.close();
    w.close();
    w.close();
}

/// Float Conv through the lane kernels: depthwise, or dense with constant weights.
fn fast_conv(w: &mut Writer, p: &Program, n: &Node, c: &crate::ops::Conv) -> bool {
    if super::simd::emit_conv(w, p, n) {
        return true;
    }
    let wsh = &p.graph.ty(n.inputs[1]).shape;
    let Some(geo) = ConvGeo::of(p, n, c) else { return false };
    if p.graph.ty(n.inputs[0]).dtype != crate::ir::DType::F32 {
        return false;
    }
    let store = act_expr(&c.act, if n.inputs.len() > 2 { "v + x2[oc]" } else { "v" });
    let id = |e: &str| e.to_string();
    if c.group == geo.ci && c.group == geo.m && wsh[1] == 1 {
        emit_depthwise(w, Lane::F32, &geo, "float", "float", &id, &id, &store);
        return true;
    }
    let [kh, kw] = c.kernel;
    let Some(d) = const_data(p, n.inputs[1])
        .filter(|d| d.len() == geo.m * geo.ci * kh * kw && (geo.in_place || pack_pays(geo.m)))
    else {
        return false;
    };
    if c.group != 1 {
        return false;
    }
    let ci = geo.ci;
    let packed = pack_conv(&geo, "0.0f", &|oc, ic, ky, kx| {
        c_float(f32_at(d, ((oc * ci + ic) * kh + ky) * kw + kx).unwrap_or(0.0))
    });
    packed_array(w, "float", "wp", &packed);
    w.packs_input(1);
    emit_lane_conv(w, Lane::F32, geo, "float", &id, &store);
    true
}
