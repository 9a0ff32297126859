//! One Rust loop nest per op, the twin of `backend::c::kernels`: inputs `x0, x1, ...`,
//! output `y`, every bound a literal from the static shapes, index arithmetic folded by
//! [`rs_lin`] so the output is clippy-clean.

use super::{float, lit};
use crate::backend::Program;
use crate::backend::lin::rs_lin;
use crate::ir::DType;
use crate::ir::Node;
use crate::ops::broadcast::broadcast_strides;
use crate::ops::{Act, BinaryKind, Op, PadMode, PoolKind, ReduceKind, reduce_loops, strides_of};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// The Rust minifloat format constant (`rt::MF_*`) of a float8 / float4 type.
fn mf_name_rs(d: DType) -> TokenStream {
    match d {
        DType::F8E4M3FN => quote!(rt::MF_E4M3FN),
        DType::F8E4M3FNUZ => quote!(rt::MF_E4M3FNUZ),
        DType::F8E5M2 => quote!(rt::MF_E5M2),
        DType::F8E5M2FNUZ => quote!(rt::MF_E5M2FNUZ),
        DType::F8E8M0 => quote!(rt::MF_E8M0),
        _ => quote!(rt::MF_E2M1),
    }
}

/// The expression of element `x` cast as `c` where either side is a 16-bit float or a
/// low-precision type: floats go through f32, integers through i64 (wrapped into int4 /
/// int2), as the C backend's `cast_low_c`.
fn cast_low_rs(from: DType, c: &crate::ops::Cast) -> TokenStream {
    let floaty = from.is_float() || from.is_half() || from.is_minifloat();
    let fv = match from {
        DType::F16 => quote!(rt::f16_to_f32(x)),
        DType::BF16 => quote!(rt::bf16_to_f32(x)),
        DType::F32 => quote!(x),
        DType::Bool => quote!(x as u8 as f32),
        f if f.is_minifloat() => {
            let m = mf_name_rs(f);
            quote!(rt::minifloat_to_f32(x, #m))
        }
        _ => quote!(x as f32),
    };
    let iv = match from {
        DType::Bool => quote!(x as i64),
        DType::F64 => quote!(x as i64),
        _ if floaty => quote!(#fv as i64),
        DType::I64 => quote!(x),
        _ => quote!(x as i64),
    };
    let sat = c.saturate;
    let t = super::elem(c.to);
    match c.to {
        DType::F16 => quote!(rt::f32_to_f16(#fv)),
        DType::BF16 => quote!(rt::f32_to_bf16(#fv)),
        DType::F8E8M0 => {
            let mode = c.round_mode;
            quote!(rt::f32_to_e8m0(#fv, #sat, #mode))
        }
        to if to.is_minifloat() => {
            let m = mf_name_rs(to);
            quote!(rt::f32_to_minifloat(#fv, #m, #sat))
        }
        DType::I4 => quote!(((((#iv) & 15) ^ 8) - 8) as i8),
        DType::U4 => quote!(((#iv) & 15) as u8),
        DType::I2 => quote!(((((#iv) & 3) ^ 2) - 2) as i8),
        DType::U2 => quote!(((#iv) & 3) as u8),
        DType::Bool if floaty => quote!(#fv != 0.0),
        DType::Bool => quote!(x != 0),
        DType::F32 if floaty => fv,
        DType::F64 if from == DType::F64 => quote!(x),
        _ if floaty => quote!(#fv as #t),
        to if crate::toolchain::rust_type(to) == crate::toolchain::rust_type(from) => quote!(x),
        _ if from == DType::Bool => quote!(x as u8 as #t),
        _ => quote!(x as #t),
    }
}

pub(super) use crate::backend::c::kernel_signature as signature;

fn ilit(n: usize) -> Literal {
    Literal::isize_unsuffixed(n as isize)
}

/// `act(v)` as an expression: a call of its runtime helper.
pub(super) fn act_expr(act: &Option<Act>, v: TokenStream) -> TokenStream {
    match act {
        None => v,
        Some(a) => {
            let (name, params) = a.helper();
            let f = format_ident!("{}", name);
            let params = params.into_iter().map(float);
            quote!(rt::#f(#v #(, #params)*))
        }
    }
}

/// `a OP b` for inputs of element type `dt`: plain operators for floats, wrapping
/// arithmetic for integers (two's-complement results, never a panic).
fn binary_expr(kind: BinaryKind, dt: DType, a: TokenStream, b: TokenStream) -> TokenStream {
    let int = !dt.is_float();
    match kind {
        BinaryKind::Add if int => quote!(#a.wrapping_add(#b)),
        BinaryKind::Sub if int => quote!(#a.wrapping_sub(#b)),
        BinaryKind::Mul if int => quote!(#a.wrapping_mul(#b)),
        BinaryKind::Div if int => quote!(#a.wrapping_div(#b)),
        BinaryKind::Add => quote!(#a + #b),
        BinaryKind::Sub => quote!(#a - #b),
        BinaryKind::Mul => quote!(#a * #b),
        BinaryKind::Div => quote!(#a / #b),
        BinaryKind::Pow => quote!(rt::pow(#a, #b)),
        BinaryKind::Mod { fmod: true } if dt == DType::F64 => quote!(rt::fmod64(#a, #b)),
        BinaryKind::Mod { fmod: true } if !int => quote!(rt::fmod(#a, #b)),
        BinaryKind::Mod { fmod: true } => quote!(#a.wrapping_rem(#b)),
        BinaryKind::Mod { fmod: false } if dt.is_unsigned() => quote!(#a.wrapping_rem(#b)),
        BinaryKind::Mod { fmod: false } => quote!({
            let (a, b) = (#a, #b);
            let r = a.wrapping_rem(b);
            if r != 0 && ((r < 0) != (b < 0)) { r.wrapping_add(b) } else { r }
        }),
        BinaryKind::Min => quote!({ let (a, b) = (#a, #b); if a < b { a } else { b } }),
        BinaryKind::Max => quote!({ let (a, b) = (#a, #b); if a > b { a } else { b } }),
        BinaryKind::Equal => quote!(#a == #b),
        BinaryKind::Less => quote!(#a < #b),
        BinaryKind::Greater => quote!(#a > #b),
        BinaryKind::LessOrEqual => quote!(#a <= #b),
        BinaryKind::GreaterOrEqual => quote!(#a >= #b),
        BinaryKind::And => quote!(#a && #b),
        BinaryKind::Or => quote!(#a || #b),
        BinaryKind::Xor => quote!(#a ^ #b),
        BinaryKind::PRelu => quote!({ let (a, b) = (#a, #b); if a < 0.0 { a * b } else { a } }),
    }
}

/// Binds `k: usize` from an index element of type `d`: negative indices count from the end
/// of an axis of length `len`, out-of-range ones clamp (never an out-of-bounds panic).
fn load_index(d: DType, elem: TokenStream, len: usize) -> TokenStream {
    let widen = if d == DType::I64 { quote!() } else { quote!(i64::from) };
    let (dl, last) = (Literal::i64_unsuffixed(len as i64), Literal::i64_unsuffixed(len.saturating_sub(1) as i64));
    quote! {
        let k = #widen(#elem);
        let k = if k < 0 { k + #dl } else { k };
        let k = k.clamp(0, #last) as usize;
    }
}

/// A scalar of element type `dt` with value `v` (floats exact; integers truncated).
fn scalar(dt: DType, v: f32) -> TokenStream {
    match dt {
        DType::F32 => float(v),
        DType::F64 => super::double(v as f64),
        DType::Bool => {
            if v != 0.0 {
                quote!(true)
            } else {
                quote!(false)
            }
        }
        _ => {
            let l = Literal::i64_unsuffixed(v as i64);
            quote!(#l)
        }
    }
}

/// Loop counter `i<axis>`.
fn counter(axis: usize) -> TokenStream {
    let i = format_ident!("i{}", axis);
    quote!(#i)
}

/// `Σ i_axis · stride_axis` over nested-loop counters.
fn index_expr(strides: &[usize]) -> TokenStream {
    let terms: Vec<(TokenStream, usize)> = strides.iter().enumerate().map(|(a, &s)| (counter(a), s)).collect();
    rs_lin(&terms, 0)
}

/// Nested loops over `shape` with counters `i0, i1, ...` around `inner`, which writes `y[o]`.
/// Counters `inner` does not use are `_` (no unused variables in the generated code).
fn nested(shape: &[usize], inner: TokenStream) -> TokenStream {
    let text = inner.to_string();
    let uses = |name: &str| text.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == name);
    if shape.iter().product::<usize>() == 1 {
        let zeros = (0..shape.len()).filter(|&ax| uses(&format!("i{ax}"))).map(|ax| {
            let i = counter(ax);
            quote!(let #i = 0usize;)
        });
        return quote! { let o = 0usize; #(#zeros)* #inner };
    }
    let mut body = quote! { #inner o += 1; };
    for (ax, &d) in shape.iter().enumerate().rev() {
        // An unused counter (a broadcast axis of extent 1) is `_`; the loop stays so the
        // output counter is not the only loop's twin (clippy's explicit_counter_loop).
        let i = if uses(&format!("i{ax}")) { counter(ax) } else { quote!(_) };
        let d = lit(d);
        body = quote! { for #i in 0..#d { #body } };
    }
    quote! { let mut o = 0usize; #body }
}

/// The body of node `n`'s kernel function.
pub(super) fn emit(p: &Program, n: &Node) -> TokenStream {
    if let Some(body) = p.opt.simd().then(|| super::packed::emit(p, n)).flatten() {
        return body;
    }
    let shape = |i: usize| p.graph.ty(n.inputs[i]).shape.clone();
    let out = p.graph.ty(n.outputs[0]).shape.clone();
    let total = lit(out.iter().product());
    match &n.op {
        Op::Conv(c) => {
            let (x, wsh) = (shape(0), shape(1));
            let [nb, ci, h, wd] = [x[0], x[1], x[2], x[3]];
            let [m, oh, ow] = [out[1], out[2], out[3]];
            let (cg, mg) = (wsh[1], m / c.group);
            let [kh, kw] = c.kernel;
            let bias = if n.inputs.len() > 2 { quote!(x2[oc]) } else { quote!(0.0f32) };
            let pointwise = kh == 1 && kw == 1 && c.strides == [1, 1] && c.pads == [0; 4] && c.group == 1;
            let (nbl, ml) = (lit(nb), lit(m));
            if pointwise {
                let hw = lit(h * wd);
                let (xs, xe) = (
                    rs_lin(&[(quote!(n), ci * h * wd)], 0),
                    rs_lin(&[(quote!(n), ci * h * wd)], (ci * h * wd) as isize),
                );
                let (ys, ye) =
                    (rs_lin(&[(quote!(n), m * h * wd)], 0), rs_lin(&[(quote!(n), m * h * wd)], (m * h * wd) as isize));
                let widx = rs_lin(&[(quote!(oc), ci), (quote!(ic), 1)], 0);
                let act = c.act.as_ref().map(|_| {
                    let e = act_expr(&c.act, quote!(*v));
                    quote!(for v in yc.iter_mut() { *v = #e; })
                });
                let cil = lit(ci);
                return quote! {
                    for n in 0..#nbl {
                        let xn = &x0[#xs..#xe];
                        let yn = &mut y[#ys..#ye];
                        for (oc, yc) in yn.chunks_exact_mut(#hw).enumerate() {
                            let b = #bias;
                            for v in yc.iter_mut() { *v = b; }
                            for (ic, xc) in xn.chunks_exact(#hw).enumerate().take(#cil) {
                                let wv = x1[#widx];
                                for (v, &xv) in yc.iter_mut().zip(xc) { *v += wv * xv; }
                            }
                            #act
                        }
                    }
                };
            }
            let [sh, sw] = c.strides;
            let [dh, dw] = c.dilations;
            let [pt, pl, _, _] = c.pads;
            let store = act_expr(&c.act, quote!(acc));
            let (ohl, owl, cgl, khl, kwl, mgl) = (lit(oh), lit(ow), lit(cg), lit(kh), lit(kw), lit(mg));
            let (hi, wi) = (ilit(h), ilit(wd));
            let wkn = cg * kh * kw;
            let group = if mg == 1 { quote!(let g = oc;) } else { quote!(let g = oc / #mgl;) };
            let (wk_s, wk_e) = (rs_lin(&[(quote!(oc), wkn)], 0), rs_lin(&[(quote!(oc), wkn)], wkn as isize));
            let xc_terms = [(quote!(n), ci * h * wd), (quote!(g), cg * h * wd), (quote!(ic), h * wd)];
            let (xc_s, xc_e) = (rs_lin(&xc_terms, 0), rs_lin(&xc_terms, (h * wd) as isize));
            let ih = rs_lin(&[(quote!(oh as isize), sh), (quote!(kh as isize), dh)], -(pt as isize));
            let iw = rs_lin(&[(quote!(ow as isize), sw), (quote!(kw as isize), dw)], -(pl as isize));
            let xidx = rs_lin(&[(quote!(ih as usize), wd), (quote!(iw as usize), 1)], 0);
            let widx = rs_lin(&[(quote!(ic), kh * kw), (quote!(kh), kw), (quote!(kw), 1)], 0);
            let yidx = rs_lin(&[(quote!(n), m * oh * ow), (quote!(oc), oh * ow), (quote!(oh), ow), (quote!(ow), 1)], 0);
            quote! {
                for n in 0..#nbl {
                    for oc in 0..#ml {
                        #group
                        let wk = &x1[#wk_s..#wk_e];
                        for oh in 0..#ohl {
                            for ow in 0..#owl {
                                let mut acc = #bias;
                                for ic in 0..#cgl {
                                    let xc = &x0[#xc_s..#xc_e];
                                    for kh in 0..#khl {
                                        let ih = #ih;
                                        if !(0..#hi).contains(&ih) { continue; }
                                        for kw in 0..#kwl {
                                            let iw = #iw;
                                            if !(0..#wi).contains(&iw) { continue; }
                                            acc += xc[#xidx] * wk[#widx];
                                        }
                                    }
                                }
                                y[#yidx] = #store;
                            }
                        }
                    }
                }
            }
        }
        Op::Gemm(gm) => {
            let (a, b) = (shape(0), shape(1));
            let (mm, k, nn) = gm.dims(p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1]));
            let a_idx = if gm.trans_a {
                rs_lin(&[(quote!(k), a[1]), (quote!(i), 1)], 0)
            } else {
                rs_lin(&[(quote!(i), k), (quote!(k), 1)], 0)
            };
            let b_idx = if gm.trans_b {
                rs_lin(&[(quote!(j), b[1]), (quote!(k), 1)], 0)
            } else {
                rs_lin(&[(quote!(k), nn), (quote!(j), 1)], 0)
            };
            let mut v = if gm.alpha == 1.0 {
                quote!(acc)
            } else {
                let al = float(gm.alpha);
                quote!(#al * acc)
            };
            if n.inputs.len() > 2 && gm.beta != 0.0 {
                let st = broadcast_strides(&shape(2), &[mm, nn]);
                let ci = rs_lin(&[(quote!(i), st[0]), (quote!(j), st[1])], 0);
                v = if gm.beta == 1.0 {
                    quote!(#v + x2[#ci])
                } else {
                    let be = float(gm.beta);
                    quote!(#v + #be * x2[#ci])
                };
            }
            let store = act_expr(&gm.act, v);
            let (ml, kl, nl) = (lit(mm), lit(k), lit(nn));
            let yidx = rs_lin(&[(quote!(i), nn), (quote!(j), 1)], 0);
            quote! {
                for i in 0..#ml {
                    for j in 0..#nl {
                        let mut acc = 0.0f32;
                        for k in 0..#kl { acc += x0[#a_idx] * x1[#b_idx]; }
                        y[#yidx] = #store;
                    }
                }
            }
        }
        Op::MatMul(mmop) => {
            let Ok(d) = crate::ops::MatMul::dims(p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1])) else {
                return quote!();
            };
            let batch: usize = d.batch.iter().product();
            let a_off = crate::backend::c::batch_offsets(&d.a_batch, &d.batch, d.m * d.k).into_iter().map(lit);
            let b_off = crate::backend::c::batch_offsets(&d.b_batch, &d.batch, d.k * d.n).into_iter().map(lit);
            let (bl, ml, kl, nl) = (lit(batch), lit(d.m), lit(d.k), lit(d.n));
            let store = act_expr(&mmop.act, quote!(acc));
            let aidx = rs_lin(&[(quote!(i), d.k), (quote!(k), 1)], 0);
            let bidx = rs_lin(&[(quote!(k), d.n), (quote!(j), 1)], 0);
            let yidx = rs_lin(&[(quote!(bi), d.m * d.n), (quote!(i), d.n), (quote!(j), 1)], 0);
            let zero = scalar(p.graph.ty(n.inputs[0]).dtype, 0.0);
            quote! {
                const A_OFF: [usize; #bl] = [#(#a_off),*];
                const B_OFF: [usize; #bl] = [#(#b_off),*];
                for bi in 0..#bl {
                    let a = &x0[A_OFF[bi]..];
                    let b = &x1[B_OFF[bi]..];
                    for i in 0..#ml {
                        for j in 0..#nl {
                            let mut acc = #zero;
                            for k in 0..#kl { acc += a[#aidx] * b[#bidx]; }
                            y[#yidx] = #store;
                        }
                    }
                }
            }
        }
        Op::Binary(b) => {
            let (sa, sb) = (shape(0), shape(1));
            let dt = p.graph.ty(n.inputs[0]).dtype;
            if sa == out && sb == out {
                let e = act_expr(&b.act, binary_expr(b.kind, dt, quote!(a), quote!(b)));
                return quote! {
                    for ((y, &a), &b) in y[..#total].iter_mut().zip(&x0[..#total]).zip(&x1[..#total]) { *y = #e; }
                };
            }
            let scalar_len = |s: &[usize]| s.iter().product::<usize>() == 1;
            if sa == out && scalar_len(&sb) {
                let e = act_expr(&b.act, binary_expr(b.kind, dt, quote!(a), quote!(x1[0])));
                return quote! { for (y, &a) in y[..#total].iter_mut().zip(&x0[..#total]) { *y = #e; } };
            }
            if sb == out && scalar_len(&sa) {
                let e = act_expr(&b.act, binary_expr(b.kind, dt, quote!(x0[0]), quote!(b)));
                return quote! { for (y, &b) in y[..#total].iter_mut().zip(&x1[..#total]) { *y = #e; } };
            }
            let (ia, ib) = (index_expr(&broadcast_strides(&sa, &out)), index_expr(&broadcast_strides(&sb, &out)));
            let e = act_expr(&b.act, binary_expr(b.kind, dt, quote!(x0[#ia]), quote!(x1[#ib])));
            nested(&out, quote!(y[o] = #e;))
        }
        Op::Cast(c) => {
            let from = p.graph.ty(n.inputs[0]).dtype;
            let t = super::elem(c.to);
            let e = match (from, c.to) {
                // 16-bit floats, float8 and float4 convert through float32; int4 / int2 wrap.
                (f, to) if f.is_half() || to.is_half() || f.is_low() || to.is_low() => cast_low_rs(f, c),
                (DType::Bool, DType::Bool) => quote!(x),
                (f, DType::Bool) if f.is_float() => quote!(x != 0.0),
                (_, DType::Bool) => quote!(x != 0),
                (DType::Bool, to) if to.is_float() => quote!(x as u8 as #t),
                (DType::Bool, _) => quote!(x as #t),
                _ => quote!(x as #t),
            };
            quote! { for (y, &x) in y[..#total].iter_mut().zip(&x0[..#total]) { *y = #e; } }
        }
        Op::Reduce(r) => {
            let dt = p.graph.ty(n.inputs[0]).dtype;
            let t = super::elem(dt);
            let lp = reduce_loops(&shape(0), &r.axes);
            let zero = scalar(dt, 0.0);
            let one = scalar(dt, 1.0);
            let int = !dt.is_float();
            // Float helpers: rt::NAME for float32, rt::NAME64 for float64.
            let f = |name: &str| {
                let id = if dt == DType::F64 { format_ident!("{}64", name) } else { format_ident!("{}", name) };
                quote!(rt::#id)
            };
            let (abs, sqrt, exp, log) = (f("abs"), f("sqrt"), f("exp"), f("log"));
            let (init, acc, fin) = match r.kind {
                ReduceKind::Sum if int => (zero, quote!(acc = acc.wrapping_add(v);), quote!(acc)),
                ReduceKind::Prod if int => (one, quote!(acc = acc.wrapping_mul(v);), quote!(acc)),
                ReduceKind::Sum | ReduceKind::Mean | ReduceKind::LogSum => (zero, quote!(acc += v;), quote!(acc)),
                ReduceKind::Max => (
                    quote!(#t::MIN),
                    quote!(if v > acc {
                        acc = v;
                    }),
                    quote!(acc),
                ),
                ReduceKind::Min => (
                    quote!(#t::MAX),
                    quote!(if v < acc {
                        acc = v;
                    }),
                    quote!(acc),
                ),
                ReduceKind::Prod => (one, quote!(acc *= v;), quote!(acc)),
                ReduceKind::L1 => (zero, quote!(acc += #abs(v);), quote!(acc)),
                ReduceKind::L2 => (zero, quote!(acc += v * v;), quote!(#sqrt(acc))),
                ReduceKind::SumSquare => (zero, quote!(acc += v * v;), quote!(acc)),
                ReduceKind::LogSumExp => (zero, quote!(acc += #exp(v - mx);), quote!(mx + #log(acc))),
            };
            let init = if dt.is_float() && r.kind == ReduceKind::Max {
                quote!(#t::NEG_INFINITY)
            } else if dt.is_float() && r.kind == ReduceKind::Min {
                quote!(#t::INFINITY)
            } else {
                init
            };
            let fin = match r.kind {
                ReduceKind::Mean => {
                    let c = if dt == DType::F64 { super::double(lp.count as f64) } else { float(lp.count as f32) };
                    quote!(acc / #c)
                }
                ReduceKind::LogSum => quote!(#log(acc)),
                _ => fin,
            };
            let mut terms: Vec<(TokenStream, usize)> =
                lp.kept.iter().enumerate().map(|(k, &(_, st))| (counter(k), st)).collect();
            terms.extend(lp.reduced.iter().enumerate().map(|(k, &(_, st))| {
                let r = format_ident!("r{}", k);
                (quote!(#r), st)
            }));
            let idx = rs_lin(&terms, 0);
            let inner = |body: TokenStream| {
                let mut b = quote! { let v = x0[#idx]; #body };
                for (k, &(d, _)) in lp.reduced.iter().enumerate().rev() {
                    let (r, d) = (format_ident!("r{}", k), lit(d));
                    b = quote! { for #r in 0..#d { #b } };
                }
                b
            };
            let pre = if r.kind == ReduceKind::LogSumExp {
                let scan = inner(quote!(if v > mx {
                    mx = v;
                }));
                quote! { let mut mx = #t::NEG_INFINITY; #scan }
            } else {
                quote!()
            };
            let main = inner(acc);
            if lp.kept.is_empty() {
                // A full reduction: one output, no output counter.
                return quote! { #pre let mut acc: #t = #init; #main y[0] = #fin; };
            }
            let mut body = quote! { #pre let mut acc: #t = #init; #main y[o] = #fin; o += 1; };
            for (k, &(d, _)) in lp.kept.iter().enumerate().rev() {
                let (i, d) = (counter(k), lit(d));
                body = quote! { for #i in 0..#d { #body } };
            }
            quote! { let mut o = 0usize; #body }
        }
        Op::ArgReduce(ar) => {
            let lp = reduce_loops(&shape(0), &[ar.axis]);
            let terms: Vec<(TokenStream, usize)> =
                lp.kept.iter().enumerate().map(|(k, &(_, st))| (counter(k), st)).collect();
            let base = rs_lin(&terms, 0);
            let (len, stride) = lp.reduced[0];
            let at = rs_lin(&[(quote!(base), 1), (quote!(r), stride)], 0);
            let cmp = match (ar.max, ar.select_last) {
                (true, false) => quote!(v > best),
                (true, true) => quote!(v >= best),
                (false, false) => quote!(v < best),
                (false, true) => quote!(v <= best),
            };
            let ll = lit(len);
            let mut body = quote! {
                let base = #base;
                let mut best = x0[base];
                let mut bi = 0i64;
                for r in 1..#ll {
                    let v = x0[#at];
                    if #cmp { best = v; bi = r as i64; }
                }
                y[o] = bi;
                o += 1;
            };
            for (k, &(d, _)) in lp.kept.iter().enumerate().rev() {
                let (i, d) = (counter(k), lit(d));
                body = quote! { for #i in 0..#d { #body } };
            }
            quote! { let mut o = 0usize; #body }
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
            let init = if n.inputs.len() > 2 {
                let (pl, ml) = (lit(oplane), lit(m));
                quote!(for (i, v) in y[..#total].iter_mut().enumerate() { *v = x2[(i / #pl) % #ml]; })
            } else {
                quote!(for v in y[..#total].iter_mut() { *v = 0.0; })
            };
            let iv: Vec<_> = (0..r).map(|a| format_ident!("i{}", a)).collect();
            let kv: Vec<_> = (0..r).map(|a| format_ident!("k{}", a)).collect();
            let ov: Vec<_> = (0..r).map(|a| format_ident!("o{}", a)).collect();
            let mut xterms = vec![(quote!(n), ci * iplane), (quote!(ic), iplane)];
            xterms.extend(iv.iter().zip(&xst).map(|(i, &st)| (quote!(#i), st)));
            let xi = rs_lin(&xterms, 0);
            let mut yterms = vec![(quote!(n), m * oplane), (quote!(oc), oplane)];
            yterms.extend(ov.iter().zip(&ost).map(|(o, &st)| (quote!(#o as usize), st)));
            let yi = rs_lin(&yterms, 0);
            let mut wterms = vec![(quote!(ic), mg * kvol), (quote!(mm), kvol)];
            wterms.extend(kv.iter().zip(&kst).map(|(k, &st)| (quote!(#k), st)));
            let wi = rs_lin(&wterms, 0);
            let mut body = quote!(y[#yi] += xv * x1[#wi];);
            for a in (0..r).rev() {
                let (i, k, o) = (&iv[a], &kv[a], &ov[a]);
                let e = rs_lin(
                    &[(quote!(#i as isize), ct.strides[a]), (quote!(#k as isize), ct.dilations[a])],
                    -(ct.pads[a] as isize),
                );
                let (kl, ol) = (lit(ct.kernel[a]), ilit(osp[a]));
                body = quote! {
                    for #k in 0..#kl {
                        let #o = #e;
                        if !(0..#ol).contains(&#o) { continue; }
                        #body
                    }
                };
            }
            let oc = rs_lin(&[(quote!(g), mg), (quote!(mm), 1)], 0);
            let mgl = lit(mg);
            body = quote! {
                let xv = x0[#xi];
                for mm in 0..#mgl {
                    let oc = #oc;
                    #body
                }
            };
            for a in (0..r).rev() {
                let (i, d) = (&iv[a], lit(xsp[a]));
                body = quote!(for #i in 0..#d { #body });
            }
            let group = if cg == 1 {
                quote!(let g = ic;)
            } else {
                let c = lit(cg);
                quote!(let g = ic / #c;)
            };
            let (nbl, cil) = (lit(nb), lit(ci));
            quote! {
                #init
                for n in 0..#nbl {
                    for ic in 0..#cil {
                        #group
                        #body
                    }
                }
            }
        }
        Op::Quantize(_)
        | Op::Dequantize(_)
        | Op::QConv(_)
        | Op::QMatMul(_)
        | Op::QAdd(_)
        | Op::QPool(_)
        | Op::QSoftmax(_)
        | Op::Requantize(_) => super::qkernels::emit(p, n),
        Op::Sparse(s) => super::sparse::emit(p, n, s),
        Op::TopK(t) => super::topk::emit(p, n, t),
        Op::Resize(r) => {
            let xs = strides_of(&shape(0));
            // Tables (statics: read in place, never copied) of element offsets (index ×
            // stride), tap weights and outside flags.
            let mut tables = vec![];
            let mut coord: Vec<(TokenStream, usize)> = vec![];
            let mut outside = vec![];
            let mut taps = vec![];
            for (ax, m) in r.maps.iter().enumerate() {
                let i = counter(ax);
                let Some(m) = m else {
                    coord.push((i, xs[ax]));
                    continue;
                };
                let n = lit(m.len());
                let ix = format_ident!("IX{}", ax);
                let off: Vec<Literal> = m.index.iter().map(|&j| lit(j * xs[ax])).collect();
                if m.interpolates() {
                    let t = lit(m.taps);
                    let wt = format_ident!("WT{}", ax);
                    let off = off.chunks(m.taps).map(|c| quote!([#(#c),*]));
                    let wts: Vec<TokenStream> = m.weight.iter().map(|&v| float(v)).collect();
                    let wts = wts.chunks(m.taps).map(|c| quote!([#(#c),*]));
                    tables.push(quote! {
                        static #ix: [[u32; #t]; #n] = [#(#off),*];
                        static #wt: [[f32; #t]; #n] = [#(#wts),*];
                    });
                    let (j, w) = (format_ident!("j{}", ax), format_ident!("w{}", ax));
                    coord.push((quote!(#j as usize), 1));
                    taps.push((quote!(#ix[#i].iter().zip(&#wt[#i])), quote!(#j), quote!(#w)));
                } else {
                    tables.push(quote!(static #ix: [u32; #n] = [#(#off),*];));
                    coord.push((quote!(#ix[#i] as usize), 1));
                }
                if m.outside.iter().any(|&b| b) {
                    let ex = format_ident!("EX{}", ax);
                    let flags = &m.outside;
                    tables.push(quote!(static #ex: [bool; #n] = [#(#flags),*];));
                    outside.push(quote!(#ex[#i]));
                }
            }
            let idx = rs_lin(&coord, 0);
            let select = |v: TokenStream| {
                if outside.is_empty() {
                    v
                } else {
                    let e = float(r.extrapolation);
                    quote!(if #(#outside)||* { #e } else { #v })
                }
            };
            let body = if taps.is_empty() {
                let v = select(quote!(x0[#idx]));
                quote!(y[o] = #v;)
            } else {
                let ws = taps.iter().map(|t| &t.2);
                let mut inner = quote!(acc += #(#ws *)* x0[#idx];);
                for (it, j, w) in taps.iter().rev() {
                    inner = quote!(for (&#j, &#w) in #it { #inner });
                }
                let v = select(quote!(acc));
                quote! { let mut acc = 0.0f32; #inner y[o] = #v; }
            };
            let body = nested(&out, body);
            quote! { #(#tables)* #body }
        }
        Op::Strided(st) => {
            if st.strides.iter().all(|&s| s >= 0) {
                let terms: Vec<(TokenStream, usize)> =
                    st.strides.iter().enumerate().map(|(a, &s)| (counter(a), s as usize)).collect();
                let idx = rs_lin(&terms, st.offset as isize);
                nested(&out, quote!(y[o] = x0[#idx];))
            } else {
                let off = Literal::isize_unsuffixed(st.offset as isize);
                let terms: Vec<TokenStream> = st
                    .strides
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| **s != 0)
                    .map(|(a, &s)| {
                        let (i, m) = (counter(a), Literal::usize_unsuffixed(s.unsigned_abs()));
                        let term = if s.unsigned_abs() == 1 { quote!(#i as isize) } else { quote!(#i as isize * #m) };
                        if s < 0 { quote!(- #term) } else { quote!(+ #term) }
                    })
                    .collect();
                let start = if st.offset == 0 { quote!(0isize) } else { quote!(#off) };
                nested(&out, quote!(y[o] = x0[(#start #(#terms)*) as usize];))
            }
        }
        Op::Gather(g) => {
            let x = shape(0);
            let d = x[g.axis];
            let outer: usize = x[..g.axis].iter().product();
            let inner: usize = x[g.axis + 1..].iter().product();
            let nidx = p.graph.ty(n.inputs[1]).len();
            let (ol, nl, il) = (lit(outer), lit(nidx), lit(inner));
            let yi = rs_lin(&[(quote!(o), nidx * inner), (quote!(j), inner), (quote!(i), 1)], 0);
            let xi = rs_lin(&[(quote!(o), d * inner), (quote!(k), inner), (quote!(i), 1)], 0);
            let k = load_index(p.graph.ty(n.inputs[1]).dtype, quote!(x1[j]), d);
            quote! {
                for o in 0..#ol {
                    for j in 0..#nl {
                        #k
                        for i in 0..#il { y[#yi] = x0[#xi]; }
                    }
                }
            }
        }
        Op::GatherElements(g) => {
            let x = shape(0);
            let xs = strides_of(&x);
            let d = x[g.axis];
            let mut st = xs.clone();
            st[g.axis] = 0;
            let base = index_expr(&st);
            let sa = lit(xs[g.axis]);
            let k = load_index(p.graph.ty(n.inputs[1]).dtype, quote!(x1[o]), d);
            nested(&out, quote! { #k y[o] = x0[#base + k * #sa]; })
        }
        Op::Not => quote! { for (y, &x) in y[..#total].iter_mut().zip(&x0[..#total]) { *y = !x; } },
        Op::Where => {
            let [ic, ia, ib] = [0, 1, 2].map(|k| index_expr(&broadcast_strides(&shape(k), &out)));
            nested(&out, quote!(y[o] = if x0[#ic] { x1[#ia] } else { x2[#ib] };))
        }
        Op::Activation(a) => {
            let e = match (p.graph.ty(n.inputs[0]).dtype, a.helper64()) {
                (DType::F64, Some(h)) => {
                    let f = format_ident!("{}", h);
                    quote!(rt::#f(x))
                }
                _ => act_expr(&Some(*a), quote!(x)),
            };
            quote! { for (y, &x) in y[..#total].iter_mut().zip(&x0[..#total]) { *y = #e; } }
        }
        Op::Softmax(s) => {
            let (outer, len, inner) = s.split(&out);
            let (ol, ll, il) = (lit(outer), lit(len), lit(inner));
            let base = rs_lin(&[(quote!(o), len * inner), (quote!(j), 1)], 0);
            let at = rs_lin(&[(quote!(base), 1), (quote!(i), inner)], 0);
            // float32 or float64: the zero and the exp / log helpers.
            let (zero, exp, log) = match p.graph.ty(n.inputs[0]).dtype {
                DType::F64 => (quote!(0.0f64), quote!(rt::exp64), quote!(rt::log64)),
                _ => (quote!(0.0f32), quote!(rt::exp), quote!(rt::log)),
            };
            let finish = if s.log {
                quote!(let ls = #log(sum); for i in 0..#ll { y[#at] = x0[#at] - mx - ls; })
            } else {
                quote!(for i in 0..#ll { y[#at] /= sum; })
            };
            quote! {
                for o in 0..#ol {
                    for j in 0..#il {
                        let base = #base;
                        let mut mx = x0[base];
                        for i in 1..#ll { let v = x0[#at]; if v > mx { mx = v; } }
                        let mut sum = #zero;
                        for i in 0..#ll {
                            let e = #exp(x0[#at] - mx);
                            y[#at] = e;
                            sum += e;
                        }
                        #finish
                    }
                }
            }
        }
        Op::Pool(pl) => {
            let x = shape(0);
            let [h, wd] = [x[2], x[3]];
            let [oh, ow] = [out[2], out[3]];
            let planes = lit(out[0] * out[1]);
            let (khl, kwl, ohl, owl) = (lit(pl.kernel[0]), lit(pl.kernel[1]), lit(oh), lit(ow));
            let (hi, wi) = (ilit(h), ilit(wd));
            let ih = rs_lin(
                &[(quote!(oh as isize), pl.strides[0]), (quote!(kh as isize), pl.dilations[0])],
                -(pl.pads[0] as isize),
            );
            let iw = rs_lin(
                &[(quote!(ow as isize), pl.strides[1]), (quote!(kw as isize), pl.dilations[1])],
                -(pl.pads[1] as isize),
            );
            let xidx = rs_lin(&[(quote!(ih as usize), wd), (quote!(iw as usize), 1)], 0);
            let yidx = rs_lin(&[(quote!(c), oh * ow), (quote!(oh), ow), (quote!(ow), 1)], 0);
            let (init, count_pad, accumulate, result) = match pl.kind {
                PoolKind::Max => (
                    match p.graph.ty(n.inputs[0]).dtype {
                        DType::F32 => quote!(let mut acc = f32::NEG_INFINITY;),
                        dt => {
                            let t = super::elem(dt);
                            quote!(let mut acc = #t::MIN;)
                        }
                    },
                    quote!(),
                    quote!(if v > acc {
                        acc = v;
                    }),
                    quote!(acc),
                ),
                PoolKind::Avg => {
                    let count_pad = if pl.count_include_pad {
                        let (pt, pleft) = (ilit(pl.pads[0]), ilit(pl.pads[1]));
                        let (hpad, wpad) = (ilit(h + pl.pads[2]), ilit(wd + pl.pads[3]));
                        quote!(if (-#pt..#hpad).contains(&ih) && (-#pleft..#wpad).contains(&iw) { count += 1; })
                    } else {
                        quote!()
                    };
                    let acc = if pl.count_include_pad { quote!(acc += v;) } else { quote!(acc += v; count += 1;) };
                    (
                        quote!(let mut acc = 0.0f32; let mut count = 0u32;),
                        count_pad,
                        acc,
                        quote!(if count > 0 { acc / count as f32 } else { 0.0 }),
                    )
                }
            };
            let hw = h * wd;
            let (xs, xe) = (rs_lin(&[(quote!(c), hw)], 0), rs_lin(&[(quote!(c), hw)], hw as isize));
            let global = pl.kind == PoolKind::Avg && pl.covers_plane([h, wd], [oh, ow]);
            if global && p.graph.ty(n.inputs[0]).dtype == DType::F32 && hw > 0 {
                // Global average: 8 partial sums per plane (one vector), then their sum.
                let hwf = super::float(hw as f32);
                return quote! {
                    for (c, yv) in y.iter_mut().enumerate().take(#planes) {
                        let xc = &x0[#xs..#xe];
                        let mut part = [0.0f32; 8];
                        let chunks = xc.chunks_exact(8);
                        let tail: f32 = chunks.remainder().iter().sum();
                        for ch in chunks {
                            for (a, &v) in part.iter_mut().zip(ch) {
                                *a += v;
                            }
                        }
                        *yv = (part.iter().sum::<f32>() + tail) / #hwf;
                    }
                };
            }
            quote! {
                for c in 0..#planes {
                    let xc = &x0[#xs..#xe];
                    for oh in 0..#ohl {
                        for ow in 0..#owl {
                            #init
                            for kh in 0..#khl {
                                let ih = #ih;
                                for kw in 0..#kwl {
                                    let iw = #iw;
                                    #count_pad
                                    if !(0..#hi).contains(&ih) || !(0..#wi).contains(&iw) { continue; }
                                    let v = xc[#xidx];
                                    #accumulate
                                }
                            }
                            y[#yidx] = #result;
                        }
                    }
                }
            }
        }
        Op::Reshape(_) => quote! { y[..#total].copy_from_slice(&x0[..#total]); },
        Op::Transpose(t) => {
            let xs = strides_of(&shape(0));
            let st: Vec<usize> = t.perm.iter().map(|&a| xs[a]).collect();
            let ix = index_expr(&st);
            nested(&out, quote!(y[o] = x0[#ix];))
        }
        Op::Concat(cc) => {
            let tys: Vec<_> = n.inputs.iter().map(|&v| p.graph.ty(v)).collect();
            let (outer, blocks) = cc.blocks(&tys);
            let row: usize = blocks.iter().sum();
            let mut at = 0;
            let copies: Vec<TokenStream> = blocks
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    let x = format_ident!("x{}", i);
                    let (ys, ye) =
                        (rs_lin(&[(quote!(o), row)], at as isize), rs_lin(&[(quote!(o), row)], (at + b) as isize));
                    let (xs, xe) = (rs_lin(&[(quote!(o), b)], 0), rs_lin(&[(quote!(o), b)], b as isize));
                    at += b;
                    quote!(y[#ys..#ye].copy_from_slice(&#x[#xs..#xe]);)
                })
                .collect();
            let ol = lit(outer);
            quote! { for o in 0..#ol { #(#copies)* } }
        }
        Op::Pad(pd) => {
            let x = shape(0);
            let xs = strides_of(&x);
            let mut coords = vec![];
            let mut conds = vec![];
            let mut idx = vec![];
            for (ax, &len) in x.iter().enumerate() {
                let s = format_ident!("s{}", ax);
                let lenl = ilit(len);
                let fix = match pd.mode {
                    PadMode::Constant => quote!(),
                    PadMode::Edge => {
                        let last = ilit(len.saturating_sub(1));
                        quote!(let #s = #s.clamp(0, #last);)
                    }
                    PadMode::Reflect => {
                        let twice = ilit(2 * len.saturating_sub(1));
                        quote!(let #s = if #s < 0 { -#s } else if #s >= #lenl { #twice - #s } else { #s };)
                    }
                    PadMode::Wrap => {
                        let period = ilit(len.max(1));
                        quote!(let #s = #s.rem_euclid(#period);)
                    }
                };
                let coord = rs_lin(
                    &[(
                        {
                            let i = counter(ax);
                            quote!(#i as isize)
                        },
                        1,
                    )],
                    -(pd.pads[ax] as isize),
                );
                coords.push(quote! { let #s = #coord; #fix });
                conds.push(quote!((0..#lenl).contains(&#s)));
                idx.push((quote!(#s as usize), xs[ax]));
            }
            let value = scalar(p.graph.ty(n.outputs[0]).dtype, pd.value);
            let cond = if conds.is_empty() { quote!(true) } else { quote!(#(#conds)&&*) };
            let index = rs_lin(&idx, 0);
            nested(&out, quote! { #(#coords)* y[o] = if #cond { x0[#index] } else { #value }; })
        }
        Op::BatchNorm(_) => quote!(),
    }
}
