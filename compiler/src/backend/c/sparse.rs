//! C kernels of the sparse ops (`ops::sparse`): only the non-zero weights are stored and
//! multiplied.
//!
//! - Convolution, CSR: per output channel, each non-zero weight `(ic, kh, kw)` is applied to
//!   the whole output plane (`y[oh, ow] += w · x[ih, iw]` over the rows and columns whose
//!   input is inside the image, from baked range tables), in the dense accumulation order.
//! - Gemm / MatMul, CSR: per output, a dot product over the row's entries.
//! - Unrolled: the same loops with the weights and indices as literals, one statement (or
//!   one plane loop) per non-zero weight.
//!
//! Integer forms accumulate `(x − x_zp)·(w − w_zp)` in int32 (in a stack plane of the output
//! size for a convolution) and requantize with `mlrt_requant`, like `qkernels`.

use super::kernels::LANES;
use super::writer::Writer;
use super::{c_float, c_literal};
use crate::backend::Program;
use crate::backend::lin::c_lin;
use crate::ir::{DType, Node};
use crate::ops::{ConvGeom, FcGeom, Flavor, Layout, Requant, Sparse, SparseFormat};
use crate::toolchain::c_type;

fn i32_lit(v: i32) -> String {
    if v == i32::MIN { "INT32_MIN".into() } else { v.to_string() }
}

/// `(int32_t)e - zp` with the zero point folded.
fn sub_zp(e: &str, zp: i32) -> String {
    match zp {
        0 => format!("(int32_t){e}"),
        z if z > 0 => format!("((int32_t){e} - {z})"),
        z => format!("((int32_t){e} + {})", -(z as i64)),
    }
}

fn all_same(v: &[i32]) -> bool {
    v.windows(2).all(|p| p[0] == p[1])
}

fn uint_type(bytes: usize) -> &'static str {
    match bytes {
        1 => "uint8_t",
        2 => "uint16_t",
        _ => "uint32_t",
    }
}

fn array(w: &mut Writer, t: &str, name: &str, items: &[String]) {
    w.line(&format!("static const {t} {name}[{}] = {{", items.len().max(1)));
    for chunk in items.chunks(16) {
        w.line(&format!("    {},", chunk.join(", ")));
    }
    if items.is_empty() {
        w.line("    0");
    }
    w.line("};");
}

/// The requantization's multiplier and shift of channel `ch` as C expressions: literals when
/// all channels share them, else `rq_mul[ch]` / `rq_shift[ch]` (tables declared here).
fn requant_params(w: &mut Writer, r: &crate::ops::Requant, ch: &str) -> (String, String) {
    if r.multiplier.len() == 1 || (all_same(&r.multiplier) && all_same(&r.shift)) {
        return (i32_lit(r.multiplier[0]), i32_lit(r.shift[0]));
    }
    let ms: Vec<String> = r.multiplier.iter().map(|&v| i32_lit(v)).collect();
    let ss: Vec<String> = r.shift.iter().map(|&v| i32_lit(v)).collect();
    array(w, "int32_t", "rq_mul", &ms);
    array(w, "int32_t", "rq_shift", &ss);
    (format!("rq_mul[{ch}]"), format!("rq_shift[{ch}]"))
}

/// The final value of an output: activation / alpha for floats, requantization for ints.
fn finish(w: &mut Writer, f: &Flavor, acc: &str, ch: &str) -> String {
    if f.int {
        let Some(r) = f.out else { return acc.to_string() };
        let (m, s) = requant_params(w, r, ch);
        return format!(
            "({})mlrt_requant({acc}, {m}, {s}, {}, {}, {})",
            c_type(r.to),
            i32_lit(r.zero_point),
            i32_lit(r.lo),
            i32_lit(r.hi)
        );
    }
    let v = if f.alpha == 1.0 { acc.to_string() } else { format!("{} * {acc}", c_float(f.alpha)) };
    super::kernels::act_expr(&f.act, &v)
}

/// Writes the body of a sparse node's kernel.
pub(super) fn emit(w: &mut Writer, p: &Program, n: &Node, s: &Sparse) {
    let (xt, yt) = (p.graph.ty(n.inputs[0]), p.graph.ty(n.outputs[0]));
    let f = s.flavor();
    w.line(&format!(
        "/* {} of \"{}\" {:?}: {} of {} weights kept ({}) */",
        s.format.name(),
        s.weight_name.replace("*/", "* /"),
        s.weight.shape,
        s.csr.nnz(),
        s.weight.len(),
        s.dense.name()
    ));
    match s.layout(xt, yt) {
        Some(Layout::Conv(g)) => conv(w, p, n, s, &f, &g),
        Some(Layout::Fc(g)) => fc(w, p, n, s, &f, &g),
        None => w.line("/* malformed sparse node */"),
    }
}

/// Per-row weight zero point: a literal, or `wzp[row]` from a table.
fn zero_point(w: &mut Writer, s: &Sparse, row: &str) -> String {
    if s.csr.zero.len() > 1 && !all_same(&s.csr.zero) {
        let z: Vec<String> = s.csr.zero.iter().map(|&v| i32_lit(v)).collect();
        array(w, "int32_t", "wzp", &z);
        format!("wzp[{row}]")
    } else {
        i32_lit(s.csr.zero[0])
    }
}

fn value_lit(s: &Sparse, j: usize) -> String {
    c_literal(&s.csr.values, j)
}

/// The CSR arrays `sv` (values), `sc` (column indices), `sp` (row pointers).
fn csr_arrays(w: &mut Writer, s: &Sparse) {
    let t = c_type(s.weight.dtype);
    let vals: Vec<String> = (0..s.csr.nnz()).map(|j| value_lit(s, j)).collect();
    array(w, t, "sv", &vals);
    let cols: Vec<String> = s.csr.col.iter().map(|c| c.to_string()).collect();
    array(w, uint_type(s.csr.col_bytes()), "sc", &cols);
    let ptrs: Vec<String> = s.csr.row_ptr.iter().map(|c| c.to_string()).collect();
    array(w, uint_type(s.csr.ptr_bytes()), "sp", &ptrs);
}

fn conv(w: &mut Writer, p: &Program, n: &Node, s: &Sparse, f: &Flavor, g: &ConvGeom) {
    if let Some(r) = f.out.filter(|r| {
        f.int
            && matches!(r.to, DType::I8 | DType::U8)
            && s.format == SparseFormat::Csr
            && g.pointwise()
            && g.group == 1
            && g.oh * g.ow >= LANES
    }) {
        return pointwise_vectors(w, p, n, s, f, g, r);
    }
    let has_bias = n.inputs.len() > 1;
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    let acc_t = if f.int { "int32_t" } else { "float" };
    let bias = if has_bias {
        "x1[oc]".to_string()
    } else if f.int {
        "0".into()
    } else {
        "0.0f".into()
    };
    let unrolled = s.format == SparseFormat::Unrolled;
    let wz = if f.int && !unrolled { zero_point(w, s, "oc") } else { String::new() };
    if !unrolled {
        csr_arrays(w, s);
    }
    if !unrolled && !g.pointwise() {
        let rows: Vec<(usize, usize)> = (0..g.kh).map(|k| g.rows_for(k)).collect();
        let cols: Vec<(usize, usize)> = (0..g.kw).map(|k| g.cols_for(k)).collect();
        let list = |v: &[(usize, usize)], hi: bool| -> Vec<String> {
            v.iter().map(|&(l, h)| if hi { h } else { l }.to_string()).collect()
        };
        array(w, "int", "oh_lo", &list(&rows, false));
        array(w, "int", "oh_hi", &list(&rows, true));
        array(w, "int", "ow_lo", &list(&cols, false));
        array(w, "int", "ow_hi", &list(&cols, true));
    }
    // The per-channel requantization tables must be declared before the loops. An 8-bit
    // output plane is requantized 8 sums at a time (`mlrt_requant8_*`, same arithmetic).
    let eight = f.out.filter(|r| f.int && matches!(r.to, DType::I8 | DType::U8));
    let (store, acc_len) = match eight {
        Some(r) => {
            let (m, s) = requant_params(w, r, "oc");
            let ty = if r.to == DType::U8 { "u8" } else { "s8" };
            let nv =
                if ohw % LANES == 0 { LANES.to_string() } else { format!("{ohw} - p < {LANES} ? {ohw} - p : {LANES}") };
            let call = format!(
                "mlrt_requant8_{ty}(yc + p, mlrt_acc8_load32(acc + p), {m}, {s}, {}, {}, {}, {nv})",
                i32_lit(r.zero_point),
                i32_lit(r.lo),
                i32_lit(r.hi)
            );
            (Some(call), ohw.div_ceil(LANES) * LANES)
        }
        None => (None, ohw),
    };
    let scalar = if store.is_none() { finish(w, f, "acc[p]", "oc") } else { String::new() };
    w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
    w.open(&format!("for (int oc = 0; oc < {}; ++oc)", g.m));
    w.line(&format!("{} *yc = y + {};", c_type(yt_dtype(p, n)), c_lin(&[("n", g.m * ohw), ("oc", ohw)], 0)));
    if f.int {
        w.line(&format!("int32_t acc[{acc_len}];"));
    } else {
        w.line("float *acc = yc;");
    }
    w.line(&format!("for (int p = 0; p < {acc_len}; ++p) acc[p] = {bias};"));
    let mut xc_terms = vec![("n", g.ci * hw)];
    if g.group > 1 {
        w.line(&format!("const int g = oc / {};", g.mg));
        if unrolled {
            w.line("(void)g;");
        }
        xc_terms.push(("g", g.cg * hw));
    }
    let xv = |idx: &str| if f.int { sub_zp(&format!("xc[{idx}]"), f.x_zp) } else { format!("xc[{idx}]") };
    if unrolled {
        w.open("switch (oc)");
        for r in 0..s.csr.rows {
            w.line(&format!("case {r}:"));
            w.open("");
            for j in s.csr.row(r) {
                let (ic, kh, kw) = g.split(s.csr.col[j] as usize);
                let ((r0, r1), (c0, c1)) = (g.rows_for(kh), g.cols_for(kw));
                if r0 >= r1 || c0 >= c1 {
                    continue;
                }
                let base = c_lin(&xc_terms, (ic * hw) as isize);
                let wv = if f.int {
                    let z = s.csr.zero.get(r).copied().unwrap_or(s.csr.zero[0]);
                    let v = s.csr.values.to_i64().and_then(|v| v.get(j).copied()).unwrap_or(0) as i32;
                    format!("{}", v - z)
                } else {
                    value_lit(s, j)
                };
                let idx = c_lin(
                    &[("oh", g.sh * g.w), ("ow", g.sw)],
                    (kh * g.dh * g.w + kw * g.dw) as isize - (g.pt * g.w + g.pl) as isize,
                );
                w.open("");
                w.line(&format!("const {} *xc = x0 + {base};", c_type(s_xdtype(p, n))));
                w.line(&format!(
                    "for (int oh = {r0}; oh < {r1}; ++oh) for (int ow = {c0}; ow < {c1}; ++ow) acc[{}] += {} * {wv};",
                    c_lin(&[("oh", g.ow), ("ow", 1)], 0),
                    xv(&idx)
                ));
                w.close();
            }
            w.line("break;");
            w.close();
        }
        w.line("default:");
        w.line("    break;");
        w.close();
    } else {
        w.open("for (int j = (int)sp[oc]; j < (int)sp[oc + 1]; ++j)");
        w.line("const int t = (int)sc[j];");
        w.line(&format!("const int ic = t / {};", g.kh * g.kw));
        w.line(&format!("const int kh = t / {} % {};", g.kw, g.kh));
        w.line(&format!("const int kw = t % {};", g.kw));
        if f.int {
            w.line(&format!("const int32_t wv = {};", sub_zp_dyn("sv[j]", &wz)));
        } else {
            w.line("const float wv = sv[j];");
        }
        let mut t = xc_terms.clone();
        t.push(("ic", hw));
        w.line(&format!("const {} *xc = x0 + {};", c_type(s_xdtype(p, n)), c_lin(&t, 0)));
        if g.pointwise() {
            // Every output pixel reads its own input pixel: one flat, vectorizable loop.
            w.line("(void)kh;");
            w.line("(void)kw;");
            w.line(&format!("for (int p = 0; p < {ohw}; ++p) acc[p] += {} * wv;", xv("p")));
            w.close();
        } else {
            w.open("for (int oh = oh_lo[kh]; oh < oh_hi[kh]; ++oh)");
            w.line(&format!("const int ih = {};", c_lin(&[("oh", g.sh), ("kh", g.dh)], -(g.pt as isize))));
            w.line(&format!("{acc_t} *ar = acc + {};", c_lin(&[("oh", g.ow)], 0)));
            w.line(&format!(
                "for (int ow = ow_lo[kw]; ow < ow_hi[kw]; ++ow) ar[ow] += {} * wv;",
                xv(&c_lin(&[("ih", g.w), ("ow", g.sw), ("kw", g.dw)], -(g.pl as isize)))
            ));
            w.close();
            w.close();
        }
    }
    // Float accumulation happens in place unless an epilogue (activation) applies.
    if let Some(call) = &store {
        w.line(&format!("for (int p = 0; p < {ohw}; p += {LANES}) {call};"));
    } else if f.int || scalar != "acc[p]" {
        w.line(&format!("for (int p = 0; p < {ohw}; ++p) yc[p] = {scalar};"));
    }
    w.close();
    w.close();
}

/// Accumulators per pixel group of [`pointwise_vectors`] (kept in registers).
const GROUP_VECTORS: usize = 8;

/// A CSR pointwise int8 convolution with an 8-bit output plane of at least 8 pixels, in
/// vectors: per output channel and group of up to 64 pixels, each kept weight adds
/// `x · (w − w_zp)` to 8 pixels per `mlrt_acc8` (the input zero point is folded at compile
/// time into the per-channel constant `corr = −x_zp · Σ (w − w_zp)`); a plane that is not
/// a multiple of 8 ends with a vector overlapping the previous one, so nothing is read or
/// written outside the planes. Same int32 sums as the scalar kernel, same requantization.
fn pointwise_vectors(w: &mut Writer, p: &Program, n: &Node, s: &Sparse, f: &Flavor, g: &ConvGeom, r: &Requant) {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    let wz = zero_point(w, s, "oc");
    csr_arrays(w, s);
    let values = s.csr.values.to_i64().unwrap_or_default();
    let corr: Vec<String> = (0..s.csr.rows)
        .map(|row| {
            let z = s.csr.zero.get(row).copied().unwrap_or(s.csr.zero[0]) as i64;
            let sum: i64 = s.csr.row(row).map(|j| values.get(j).copied().unwrap_or(0) - z).sum();
            (-(f.x_zp as i64) * sum).to_string()
        })
        .collect();
    array(w, "int32_t", "corr", &corr);
    let (m, sh) = requant_params(w, r, "oc");
    let xt = s_xdtype(p, n);
    let from = if xt == DType::U8 { "mlrt_acc8_from_u8" } else { "mlrt_acc8_from_s8" };
    let store = if r.to == DType::U8 { "mlrt_requant8_u8" } else { "mlrt_requant8_s8" };
    let bias = if n.inputs.len() > 1 { "x1[oc] + corr[oc]" } else { "corr[oc]" };
    let group = GROUP_VECTORS * LANES;
    // One group: accumulators for the vectors starting at `starts`.
    let body = |w: &mut Writer, starts: &[String]| {
        let accs: Vec<String> = (0..starts.len()).map(|k| format!("a{k} = mlrt_acc8_set1(b)")).collect();
        w.line(&format!("mlrt_acc8 {};", accs.join(", ")));
        w.open("for (int j = (int)sp[oc]; j < (int)sp[oc + 1]; ++j)");
        w.line(&format!("const {} *xc = xn + (int)sc[j] * {hw};", c_type(xt)));
        w.line(&format!("const int32_t wv = {};", sub_zp_dyn("sv[j]", &wz)));
        for (k, at) in starts.iter().enumerate() {
            w.line(&format!("a{k} = mlrt_acc8_add(a{k}, {from}(xc + {at}, 0, wv));"));
        }
        w.close();
        for (k, at) in starts.iter().enumerate() {
            w.line(&format!(
                "{store}(yc + {at}, a{k}, {m}, {sh}, {}, {}, {}, {LANES});",
                i32_lit(r.zero_point),
                i32_lit(r.lo),
                i32_lit(r.hi)
            ));
        }
    };
    w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
    w.line(&format!("const {} *xn = x0 + n * {};", c_type(xt), g.ci * hw));
    w.open(&format!("for (int oc = 0; oc < {}; ++oc)", g.m));
    w.line(&format!("{} *yc = y + {};", c_type(yt_dtype(p, n)), c_lin(&[("n", g.m * ohw), ("oc", ohw)], 0)));
    w.line(&format!("const int32_t b = {bias};"));
    let full = ohw / group;
    if full > 0 {
        w.open(&format!("for (int p0 = 0; p0 < {}; p0 += {group})", full * group));
        let starts: Vec<String> = (0..GROUP_VECTORS).map(|k| format!("p0 + {}", k * LANES)).collect();
        body(w, &starts);
        w.close();
    }
    let rest = ohw - full * group;
    if rest > 0 {
        let starts: Vec<String> =
            (0..rest.div_ceil(LANES)).map(|k| (full * group + k * LANES).min(ohw - LANES).to_string()).collect();
        body(w, &starts);
    }
    w.close();
    w.close();
}

/// `(int32_t)e - zp` for a zero point given as C text.
fn sub_zp_dyn(e: &str, zp: &str) -> String {
    match zp.parse::<i32>() {
        Ok(z) => sub_zp(e, z),
        Err(_) => format!("((int32_t){e} - {zp})"),
    }
}

fn yt_dtype(p: &Program, n: &Node) -> DType {
    p.graph.ty(n.outputs[0]).dtype
}

fn s_xdtype(p: &Program, n: &Node) -> DType {
    p.graph.ty(n.inputs[0]).dtype
}

fn fc(w: &mut Writer, p: &Program, n: &Node, s: &Sparse, f: &Flavor, g: &FcGeom) {
    const ROW: &str = "J_ROW";
    let (rows, k, nn) = (g.rows, g.k, g.n);
    let has_c = n.inputs.len() > 1;
    let init = match (f.int, has_c) {
        (true, true) => format!("x1[{ROW}]"),
        (true, false) => "0".into(),
        (false, _) => "0.0f".into(),
    };
    // Gemm's C term (float): beta · C broadcast to [rows, n].
    let c_term = if !f.int && has_c {
        if f.beta == 0.0 {
            w.line("(void)x1;");
            None
        } else {
            let st = crate::ops::broadcast::broadcast_strides(&p.graph.ty(n.inputs[1]).shape, &[rows, nn]);
            let e = format!("x1[{}]", c_lin(&[("i", st[0]), (ROW, st[1])], 0));
            Some(if f.beta == 1.0 { e } else { format!("{} * {e}", c_float(f.beta)) })
        }
    } else {
        None
    };
    let unrolled = s.format == SparseFormat::Unrolled;
    let wz = if f.int && !unrolled { zero_point(w, s, ROW) } else { String::new() };
    if !unrolled {
        csr_arrays(w, s);
    }
    let acc_t = if f.int { "int32_t" } else { "float" };
    let mut store = finish(w, f, "acc", ROW);
    if let Some(c) = &c_term {
        let v = if f.alpha == 1.0 { "acc".to_string() } else { format!("{} * acc", c_float(f.alpha)) };
        store = super::kernels::act_expr(&f.act, &format!("{v} + {c}"));
    }
    let y_at = format!("y[{}]", c_lin(&[("i", nn), (ROW, 1)], 0));
    let xt = c_type(s_xdtype(p, n));
    let term = |a: &str, wv: &str| {
        if f.int { format!("{} * {wv}", sub_zp(a, f.x_zp)) } else { format!("{a} * {wv}") }
    };
    w.open(&format!("for (int i = 0; i < {rows}; ++i)"));
    w.line(&format!("const {xt} *a = x0 + {};", c_lin(&[("i", k)], 0)));
    if unrolled {
        for r in 0..s.csr.rows {
            let at = |e: &str| e.replace(ROW, &r.to_string());
            w.open("");
            w.line(&format!("{acc_t} acc = {};", at(&init)));
            for j in s.csr.row(r) {
                let col = s.csr.col[j];
                let wv = if f.int {
                    let z = s.csr.zero.get(r).copied().unwrap_or(s.csr.zero[0]);
                    let v = s.csr.values.to_i64().and_then(|v| v.get(j).copied()).unwrap_or(0) as i32;
                    (v - z).to_string()
                } else {
                    value_lit(s, j)
                };
                w.line(&format!("acc += {};", term(&format!("a[{col}]"), &wv)));
            }
            w.line(&format!("{} = {};", at(&y_at), at(&store)));
            w.close();
        }
    } else {
        let at = |e: &str| e.replace(ROW, "j");
        w.open(&format!("for (int j = 0; j < {nn}; ++j)"));
        w.line(&format!("{acc_t} acc = {};", at(&init)));
        let wv = if f.int { sub_zp_dyn("sv[t]", &at(&wz)) } else { "sv[t]".into() };
        w.line(&format!("for (int t = (int)sp[j]; t < (int)sp[j + 1]; ++t) acc += {};", term("a[sc[t]]", &wv)));
        w.line(&format!("{} = {};", at(&y_at), at(&store)));
        w.close();
    }
    w.close();
}
