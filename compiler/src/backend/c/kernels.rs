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
        DType::I32 => ("INT32_MIN", "INT32_MAX"),
        DType::I64 => ("INT64_MIN", "INT64_MAX"),
        DType::Bool => ("false", "true"),
    };
    (lo.to_string(), hi.to_string())
}

/// `a OP b` in C for inputs of element type `dt`.
fn binary_expr(kind: BinaryKind, dt: DType, a: &str, b: &str) -> String {
    match kind {
        BinaryKind::Add => format!("{a} + {b}"),
        BinaryKind::Sub => format!("{a} - {b}"),
        BinaryKind::Mul => format!("{a} * {b}"),
        BinaryKind::Div => format!("{a} / {b}"),
        BinaryKind::Pow => format!("mlrt_pow({a}, {b})"),
        BinaryKind::Mod { fmod: true } if dt == DType::F32 => format!("fmodf({a}, {b})"),
        BinaryKind::Mod { fmod: true } => format!("{a} % {b}"),
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
            let lin = r.linear_axes();
            for (ax, m) in r.maps.iter().enumerate() {
                let Some(m) = m else { continue };
                let lo: Vec<String> = m.iter().map(|e| e.0.to_string()).collect();
                w.line(&format!("static const int lo{ax}[{}] = {{{}}};", m.len(), lo.join(", ")));
                if lin.contains(&ax) {
                    let hi: Vec<String> = m.iter().map(|e| e.1.to_string()).collect();
                    let wt: Vec<String> = m.iter().map(|e| c_float(e.2)).collect();
                    w.line(&format!("static const int hi{ax}[{}] = {{{}}};", m.len(), hi.join(", ")));
                    w.line(&format!("static const float wt{ax}[{}] = {{{}}};", m.len(), wt.join(", ")));
                }
            }
            let mut terms = vec![];
            for mask in 0..(1usize << lin.len()) {
                let mut idx = vec![];
                let mut weight = vec![];
                for (ax, m) in r.maps.iter().enumerate() {
                    let coord = match (m, lin.iter().position(|&l| l == ax)) {
                        (None, _) => format!("i{ax}"),
                        (Some(_), None) => format!("lo{ax}[i{ax}]"),
                        (Some(_), Some(j)) if mask >> j & 1 == 1 => {
                            weight.push(format!("wt{ax}[i{ax}]"));
                            format!("hi{ax}[i{ax}]")
                        }
                        (Some(_), Some(_)) => {
                            weight.push(format!("(1.0f - wt{ax}[i{ax}])"));
                            format!("lo{ax}[i{ax}]")
                        }
                    };
                    if xs[ax] != 0 {
                        idx.push(if xs[ax] == 1 { coord } else { format!("{coord} * {}", xs[ax]) });
                    }
                }
                let idx = if idx.is_empty() { "0".to_string() } else { idx.join(" + ") };
                let mut t = weight;
                t.push(format!("x0[{idx}]"));
                terms.push(t.join(" * "));
            }
            let e = terms.join(" + ");
            nested(w, &out, |w| w.line(&format!("y[o++] = {e};")));
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
            w.line(&format!("for (int i = 0; i < {total}; ++i) y[i] = {};", act_expr(&Some(*a), "x0[i]")));
        }
        Op::Softmax(s) => {
            let (outer, len, inner) = s.split(&out);
            w.open(&format!("for (int o = 0; o < {outer}; ++o)"));
            w.open(&format!("for (int j = 0; j < {inner}; ++j)"));
            let base = c_lin(&[("o", len * inner), ("j", 1)], 0);
            let at = c_lin(&[("i", inner)], 0);
            w.line(&format!("const float *xr = x0 + {base};"));
            w.line(&format!("float *yr = y + {base};"));
            w.line("float mx = xr[0];");
            w.line("float sum = 0.0f;");
            w.line(&format!("for (int i = 1; i < {len}; ++i) mx = xr[{at}] > mx ? xr[{at}] : mx;"));
            w.open(&format!("for (int i = 0; i < {len}; ++i)"));
            w.line(&format!("yr[{at}] = mlrt_exp(xr[{at}] - mx);"));
            w.line(&format!("sum += yr[{at}];"));
            w.close();
            if s.log {
                w.line(&format!("for (int i = 0; i < {len}; ++i) yr[{at}] = xr[{at}] - mx - logf(sum);"));
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
