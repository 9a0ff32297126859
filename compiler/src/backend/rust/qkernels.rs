//! Rust loop nests of the integer ops (`ops::quant`), the twin of `backend::c::qkernels`:
//! int32 accumulation, requantization through `rt::requant` (the very function the
//! compiler's simulation calls), no floating point except in QuantizeLinear /
//! DequantizeLinear. Per-channel parameters and the softmax table are `const` arrays.

use super::{float, lit};
use crate::backend::Program;
use crate::backend::lin::rs_lin;
use crate::ir::{DType, Node};
use crate::ops::{Op, PoolKind, Requant, type_range};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// An `i32` literal (`i32::MIN` spelled by name).
fn i32_lit(v: i32) -> TokenStream {
    if v == i32::MIN {
        return quote!(i32::MIN);
    }
    let l = Literal::i64_unsuffixed((v as i64).abs());
    if v < 0 { quote!(-#l) } else { quote!(#l) }
}

/// `const NAME: [i32; n] = [...];`
pub(super) fn i32_array(name: &str, v: &[i32]) -> TokenStream {
    let (id, n) = (format_ident!("{}", name), lit(v.len()));
    let items = v.iter().map(|&x| i32_lit(x));
    quote!(const #id: [i32; #n] = [#(#items),*];)
}

fn all_same(v: &[i32]) -> bool {
    v.windows(2).all(|p| p[0] == p[1])
}

/// `i32::from(e) - zp` with the zero point folded (no `- 0`, no negative literal).
pub(super) fn sub_zp(e: TokenStream, zp: i32) -> TokenStream {
    let l = Literal::i64_unsuffixed((zp as i64).abs());
    match zp {
        0 => quote!(i32::from(#e)),
        z if z > 0 => quote!(i32::from(#e) - #l),
        _ => quote!(i32::from(#e) + #l),
    }
}

/// [`sub_zp`] as an operand of `*` or `as` (parenthesized when it is a sum).
fn sub_zp_p(e: TokenStream, zp: i32) -> TokenStream {
    let v = sub_zp(e, zp);
    if zp == 0 { v } else { quote!((#v)) }
}

/// An `i64` literal.
fn i64_lit(v: i64) -> TokenStream {
    let l = Literal::u64_unsuffixed(v.unsigned_abs());
    if v < 0 { quote!(-#l) } else { quote!(#l) }
}

/// The per-channel tables of `r` (`RQ_MUL`, `RQ_SHIFT`) and the expression requantizing
/// `acc` of channel `ch`, cast to the output element type.
pub(super) fn requant(r: &Requant, acc: TokenStream, ch: TokenStream) -> (TokenStream, TokenStream) {
    let (tables, m, s) = if r.multiplier.len() == 1 || (all_same(&r.multiplier) && all_same(&r.shift)) {
        (quote!(), i32_lit(r.multiplier[0]), i32_lit(r.shift[0]))
    } else {
        let (tm, ts) = (i32_array("RQ_MUL", &r.multiplier), i32_array("RQ_SHIFT", &r.shift));
        (quote!(#tm #ts), quote!(RQ_MUL[#ch]), quote!(RQ_SHIFT[#ch]))
    };
    let (zp, lo, hi) = (i32_lit(r.zero_point), i32_lit(r.lo), i32_lit(r.hi));
    let t = super::elem(r.to);
    (tables, quote!(rt::requant(#acc, #m, #s, #zp, #lo, #hi) as #t))
}

/// `(outer, channels, inner)` around `axis` of `shape` (no axis: all in `inner`).
fn split_axis(shape: &[usize], axis: Option<usize>) -> (usize, usize, usize) {
    match axis {
        None => (1, 1, shape.iter().product()),
        Some(a) => (shape[..a].iter().product(), shape[a], shape[a + 1..].iter().product()),
    }
}

/// `o, c, i` loops of a per-axis elementwise op around `body`, which sees the flat index `at`.
fn per_axis_loops((outer, ch, inner): (usize, usize, usize), body: TokenStream) -> TokenStream {
    let at = rs_lin(&[(quote!(o), ch * inner), (quote!(c), inner), (quote!(i), 1)], 0);
    let (ol, cl, il) = (lit(outer), lit(ch), lit(inner));
    quote! {
        for o in 0..#ol {
            for c in 0..#cl {
                for i in 0..#il {
                    let at = #at;
                    #body
                }
            }
        }
    }
}

/// The parameter index inside [`per_axis_loops`] (`o, c, i`) of a Quantize / Dequantize:
/// the axis index `c`, or with blocks of `b` along the axis the block's parameter
/// (`ops::ParamLayout`).
fn param_index((_, ch, inner): (usize, usize, usize), block: Option<usize>) -> TokenStream {
    match block {
        None => quote!(c),
        Some(b) => {
            let bl = lit(b);
            let blk = if b == 1 { quote!(c) } else { quote!((c / #bl)) };
            rs_lin(&[(quote!(o), ch.div_ceil(b) * inner), (blk, inner), (quote!(i), 1)], 0)
        }
    }
}

/// The body of an integer op's kernel.
pub(super) fn emit(p: &Program, n: &Node) -> TokenStream {
    let ty = |i: usize| p.graph.ty(n.inputs[i]);
    let out = p.graph.ty(n.outputs[0]).shape.clone();
    let total = lit(out.iter().product());
    match &n.op {
        Op::Quantize(q) => {
            let (lo, hi) = type_range(q.to);
            let (lo, hi, t) = (i32_lit(lo), i32_lit(hi), super::elem(q.to));
            let t = if q.to == DType::I32 { quote!() } else { quote!(as #t) };
            if q.q.axis.is_none() {
                let (s, z) = (float(q.q.scale[0]), i32_lit(q.q.zero_point[0]));
                return quote! {
                    for (y, &x) in y[..#total].iter_mut().zip(&x0[..#total]) {
                        *y = rt::quantize(x, #s, #z, #lo, #hi) #t;
                    }
                };
            }
            let nc = lit(q.q.scale.len());
            let scales = q.q.scale.iter().map(|&s| float(s));
            let zp = i32_array("ZP", &q.q.zero_point);
            let split = split_axis(&ty(0).shape, q.q.axis);
            let k = param_index(split, q.block);
            let body =
                per_axis_loops(split, quote!(let k = #k; y[at] = rt::quantize(x0[at], SCALE[k], ZP[k], #lo, #hi) #t;));
            quote! {
                const SCALE: [f32; #nc] = [#(#scales),*];
                #zp
                #body
            }
        }
        Op::Dequantize(d) => {
            let from = ty(0).dtype;
            // The subtraction in int32 (wrapping for int32 inputs).
            let diff = |x: TokenStream, zp: TokenStream| {
                if from == DType::I32 { quote!(#x.wrapping_sub(#zp)) } else { quote!((i32::from(#x) - #zp)) }
            };
            if d.q.axis.is_none() {
                let (s, zp) = (float(d.q.scale[0]), d.q.zero_point[0]);
                let v = if from == DType::I32 {
                    if zp == 0 { quote!(x) } else { diff(quote!(x), i32_lit(zp)) }
                } else {
                    sub_zp_p(quote!(x), zp)
                };
                return quote! {
                    for (y, &x) in y[..#total].iter_mut().zip(&x0[..#total]) { *y = #v as f32 * #s; }
                };
            }
            let nc = lit(d.q.scale.len());
            let scales = d.q.scale.iter().map(|&s| float(s));
            let zp = i32_array("ZP", &d.q.zero_point);
            let v = diff(quote!(x0[at]), quote!(ZP[k]));
            let split = split_axis(&ty(0).shape, d.q.axis);
            let k = param_index(split, d.block);
            let body = per_axis_loops(split, quote!(let k = #k; y[at] = #v as f32 * SCALE[k];));
            quote! {
                const SCALE: [f32; #nc] = [#(#scales),*];
                #zp
                #body
            }
        }
        Op::QConv(qc) => {
            let c = &qc.conv;
            let (x, wsh) = (ty(0).shape.clone(), ty(1).shape.clone());
            let [nb, ci, h, wd] = [x[0], x[1], x[2], x[3]];
            let [m, oh, ow] = [out[1], out[2], out[3]];
            let (cg, mg) = (wsh[1], m / c.group);
            let [kh, kw] = c.kernel;
            let [sh, sw] = c.strides;
            let [dh, dw] = c.dilations;
            let [pt, pl, _, _] = c.pads;
            let per_channel_wzp = qc.w_zp.len() > 1 && !all_same(&qc.w_zp);
            let (wzp_table, wz_bind) = if per_channel_wzp {
                (i32_array("W_ZP", &qc.w_zp), quote!(let wz = W_ZP[oc];))
            } else {
                (quote!(), quote!())
            };
            let (rq_tables, store) = match &qc.out {
                Some(r) => requant(r, quote!(acc), quote!(oc)),
                None => (quote!(), quote!(acc)),
            };
            let bias = if n.inputs.len() > 2 { quote!(x2[oc]) } else { quote!(0i32) };
            let (nbl, ml, ohl, owl, cgl, khl, kwl, mgl) =
                (lit(nb), lit(m), lit(oh), lit(ow), lit(cg), lit(kh), lit(kw), lit(mg));
            let (hi, wi) = (Literal::isize_unsuffixed(h as isize), Literal::isize_unsuffixed(wd as isize));
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
            let xv = sub_zp_p(quote!(xc[#xidx]), qc.x_zp);
            let wv =
                if per_channel_wzp { quote!(i32::from(wk[#widx]) - wz) } else { sub_zp(quote!(wk[#widx]), qc.w_zp[0]) };
            quote! {
                #wzp_table
                #rq_tables
                for n in 0..#nbl {
                    for oc in 0..#ml {
                        #group
                        #wz_bind
                        let wk = &x1[#wk_s..#wk_e];
                        for oh in 0..#ohl {
                            for ow in 0..#owl {
                                let mut acc: i32 = #bias;
                                for ic in 0..#cgl {
                                    let xc = &x0[#xc_s..#xc_e];
                                    for kh in 0..#khl {
                                        let ih = #ih;
                                        if !(0..#hi).contains(&ih) { continue; }
                                        for kw in 0..#kwl {
                                            let iw = #iw;
                                            if !(0..#wi).contains(&iw) { continue; }
                                            acc = acc.wrapping_add(#xv.wrapping_mul(#wv));
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
        Op::QMatMul(qm) => {
            let Ok(d) = crate::ops::MatMul::dims(ty(0), ty(1)) else {
                return quote!();
            };
            let batch: usize = d.batch.iter().product();
            let a_off = crate::backend::c::batch_offsets(&d.a_batch, &d.batch, d.m * d.k).into_iter().map(lit);
            let b_off = crate::backend::c::batch_offsets(&d.b_batch, &d.batch, d.k * d.n).into_iter().map(lit);
            let (bl, ml, kl, nl) = (lit(batch), lit(d.m), lit(d.k), lit(d.n));
            let per_col_zp = qm.b_zp.len() > 1 && !all_same(&qm.b_zp);
            let zp_table = if per_col_zp { i32_array("B_ZP", &qm.b_zp) } else { quote!() };
            let (rq_tables, store) = match &qm.out {
                Some(r) => requant(r, quote!(acc), quote!(j)),
                None => (quote!(), quote!(acc)),
            };
            let bias = if n.inputs.len() > 2 { quote!(x2[j]) } else { quote!(0i32) };
            let aidx = rs_lin(&[(quote!(i), d.k), (quote!(k), 1)], 0);
            let bidx = rs_lin(&[(quote!(k), d.n), (quote!(j), 1)], 0);
            let yidx = rs_lin(&[(quote!(bi), d.m * d.n), (quote!(i), d.n), (quote!(j), 1)], 0);
            let av = sub_zp_p(quote!(a[#aidx]), qm.a_zp);
            let bv =
                if per_col_zp { quote!(i32::from(b[#bidx]) - B_ZP[j]) } else { sub_zp(quote!(b[#bidx]), qm.b_zp[0]) };
            quote! {
                const A_OFF: [usize; #bl] = [#(#a_off),*];
                const B_OFF: [usize; #bl] = [#(#b_off),*];
                #zp_table
                #rq_tables
                for bi in 0..#bl {
                    let a = &x0[A_OFF[bi]..];
                    let b = &x1[B_OFF[bi]..];
                    for i in 0..#ml {
                        for j in 0..#nl {
                            let mut acc: i32 = #bias;
                            for k in 0..#kl { acc = acc.wrapping_add(#av.wrapping_mul(#bv)); }
                            y[#yidx] = #store;
                        }
                    }
                }
            }
        }
        Op::QAdd(qa) => {
            let ls = Literal::i64_unsuffixed(1i64 << qa.left_shift);
            let scaled = |x: TokenStream, zp: i32, mul: i32, shift: i32| {
                let (v, m, s) = (sub_zp_p(x, zp), i32_lit(mul), i32_lit(shift));
                quote!(rt::requant(#v * #ls, #m, #s, 0, i32::MIN, i32::MAX))
            };
            let a = scaled(quote!(a), qa.a_zp, qa.a_mult, qa.a_shift);
            let b = scaled(quote!(b), qa.b_zp, qa.b_mult, qa.b_shift);
            let (tables, store) = requant(&qa.out, quote!(a + b), quote!(0));
            quote! {
                #tables
                for ((y, &a), &b) in y[..#total].iter_mut().zip(&x0[..#total]).zip(&x1[..#total]) {
                    let a = #a;
                    let b = #b;
                    *y = #store;
                }
            }
        }
        Op::Requantize(rq) => {
            let (tables, store) = requant(&rq.out, sub_zp(quote!(x), rq.x_zp), quote!(0));
            quote! {
                #tables
                for (y, &x) in y[..#total].iter_mut().zip(&x0[..#total]) { *y = #store; }
            }
        }
        Op::QPool(qp) => {
            let pl = &qp.pool;
            let x = ty(0).shape.clone();
            let [h, wd] = [x[2], x[3]];
            let [oh, ow] = [out[2], out[3]];
            let planes = lit(out[0] * out[1]);
            let (khl, kwl, ohl, owl) = (lit(pl.kernel[0]), lit(pl.kernel[1]), lit(oh), lit(ow));
            let (hi, wi) = (Literal::isize_unsuffixed(h as isize), Literal::isize_unsuffixed(wd as isize));
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
            let (tables, store) = requant(&qp.out, quote!(acc), quote!(0));
            let (init, accumulate, finish) = match pl.kind {
                PoolKind::Max => {
                    // An all-padding window (impossible with ONNX pads) gives 0, as in `interp`.
                    let z = Literal::i64_unsuffixed((qp.x_zp as i64).abs());
                    let acc = match qp.x_zp {
                        0 => quote!(mx),
                        zp if zp > 0 => quote!(mx - #z),
                        _ => quote!(mx + #z),
                    };
                    (
                        quote!(let mut mx = i32::MIN;),
                        quote!(let v = i32::from(xc[#xidx]); if v > mx { mx = v; }),
                        quote!(let acc = if mx == i32::MIN { 0 } else { #acc };),
                    )
                }
                PoolKind::Avg => {
                    let v = sub_zp(quote!(xc[#xidx]), qp.x_zp);
                    (quote!(let mut acc: i32 = 0;), quote!(acc = acc.wrapping_add(#v);), quote!())
                }
            };
            let hw = h * wd;
            let (xs, xe) = (rs_lin(&[(quote!(c), hw)], 0), rs_lin(&[(quote!(c), hw)], hw as isize));
            if pl.kind == PoolKind::Avg && pl.covers_plane([h, wd], [oh, ow]) {
                // Global average: one sum per plane (vectorized), the zero points folded.
                let zps = i32_lit((hw as i64 * qp.x_zp as i64) as i32);
                return quote! {
                    #tables
                    for (c, yv) in y.iter_mut().enumerate().take(#planes) {
                        let xc = &x0[#xs..#xe];
                        let acc = xc.iter().fold(0i32, |a, &v| a.wrapping_add(i32::from(v))).wrapping_sub(#zps);
                        *yv = #store;
                    }
                };
            }
            quote! {
                #tables
                for c in 0..#planes {
                    let xc = &x0[#xs..#xe];
                    for oh in 0..#ohl {
                        for ow in 0..#owl {
                            #init
                            for kh in 0..#khl {
                                let ih = #ih;
                                if !(0..#hi).contains(&ih) { continue; }
                                for kw in 0..#kwl {
                                    let iw = #iw;
                                    if !(0..#wi).contains(&iw) { continue; }
                                    #accumulate
                                }
                            }
                            #finish
                            y[#yidx] = #store;
                        }
                    }
                }
            }
        }
        Op::QSoftmax(sm) => {
            let x = &ty(0).shape;
            let (outer, len, inner) = if x.is_empty() { (1, 1, 1) } else { split_axis(x, Some(sm.axis)) };
            let (ol, ll, il) = (lit(outer), lit(len), lit(inner));
            let table = i32_array("TABLE", &sm.table);
            let base = rs_lin(&[(quote!(o), len * inner), (quote!(j), 1)], 0);
            let at = rs_lin(&[(quote!(base), 1), (quote!(i), inner)], 0);
            let out_mul = Literal::i64_unsuffixed(sm.out_mul);
            let zp = i64_lit(sm.zero_point as i64);
            let (lo, hi) = (i64_lit(sm.lo as i64), i64_lit(sm.hi as i64));
            let t = super::elem(sm.to);
            quote! {
                #table
                for o in 0..#ol {
                    for j in 0..#il {
                        let base = #base;
                        let mut mx = i32::from(x0[base]);
                        for i in 1..#ll { let v = i32::from(x0[#at]); if v > mx { mx = v; } }
                        let mut sum = 0i64;
                        for i in 0..#ll { sum += i64::from(TABLE[((mx - i32::from(x0[#at])) as usize).min(255)]); }
                        sum <<= 16;
                        for i in 0..#ll {
                            let e = i64::from(TABLE[((mx - i32::from(x0[#at])) as usize).min(255)]);
                            let v = if sum == 0 { 0 } else { (e * #out_mul + sum / 2) / sum } + #zp;
                            y[#at] = v.clamp(#lo, #hi) as #t;
                        }
                    }
                }
            }
        }
        _ => quote!(),
    }
}
