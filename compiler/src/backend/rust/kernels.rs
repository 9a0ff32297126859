//! One Rust loop nest per op, the twin of `backend::c::kernels`: inputs `x0, x1, ...`,
//! output `y`, every bound a literal from the static shapes.

use super::{float, lit};
use crate::backend::Program;
use crate::ir::Node;
use crate::ops::broadcast::broadcast_strides;
use crate::ops::{Act, Op, PadMode, PoolKind, strides_of};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

pub(super) use crate::backend::c::kernel_signature as signature;

fn ilit(n: usize) -> Literal {
    Literal::isize_unsuffixed(n as isize)
}

/// `act(v)` as an expression.
fn act_expr(act: &Option<Act>, v: TokenStream) -> TokenStream {
    match act {
        None => v,
        Some(Act::Relu) => quote!(rt::relu(#v)),
        Some(Act::Clip { min, max }) => {
            let (lo, hi) = (float(*min), float(*max));
            quote!(rt::clip(#v, #lo, #hi))
        }
        Some(Act::LeakyRelu { alpha }) => {
            let a = float(*alpha);
            quote!(rt::leaky_relu(#v, #a))
        }
        Some(Act::Sigmoid) => quote!(rt::sigmoid(#v)),
        Some(Act::Tanh) => quote!(rt::tanh(#v)),
    }
}

/// `i0 * s0 + i1 * s1 + ...` over loop counters, skipping zero strides.
fn index_expr(strides: &[usize]) -> TokenStream {
    let terms: Vec<TokenStream> = strides
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != 0)
        .map(|(a, &s)| {
            let (i, s) = (format_ident!("i{}", a), lit(s));
            quote!(#i * #s)
        })
        .collect();
    if terms.is_empty() { quote!(0) } else { quote!(#(#terms)+*) }
}

/// Nested loops over `shape` with counters `i0, i1, ...` around `inner`, writing `y[o]`.
fn nested(shape: &[usize], inner: TokenStream) -> TokenStream {
    let mut body = quote! { #inner o += 1; };
    for (ax, &d) in shape.iter().enumerate().rev() {
        let (i, d) = (format_ident!("i{}", ax), lit(d));
        body = quote! { for #i in 0..#d { #body } };
    }
    quote! { let mut o = 0usize; #body }
}

/// The body of node `n`'s kernel function.
pub(super) fn emit(p: &Program, n: &Node) -> TokenStream {
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
            let has_bias = n.inputs.len() > 2;
            let bias = if has_bias { quote!(x2[oc]) } else { quote!(0.0f32) };
            let pointwise = kh == 1 && kw == 1 && c.strides == [1, 1] && c.pads == [0; 4] && c.group == 1;
            if pointwise {
                let hw = h * wd;
                let (nb, m, ci, hwl) = (lit(nb), lit(m), lit(ci), lit(hw));
                let (xn, yn) = (lit(x[1] * hw), lit(out[1] * hw));
                let act = c.act.as_ref().map(|_| {
                    let e = act_expr(&c.act, quote!(*v));
                    quote!(for v in yc.iter_mut() { *v = #e; })
                });
                return quote! {
                    for n in 0..#nb {
                        let xn = &x0[n * #xn..(n + 1) * #xn];
                        let yn = &mut y[n * #yn..(n + 1) * #yn];
                        for oc in 0..#m {
                            let yc = &mut yn[oc * #hwl..(oc + 1) * #hwl];
                            let b = #bias;
                            for v in yc.iter_mut() { *v = b; }
                            for ic in 0..#ci {
                                let wv = x1[oc * #ci + ic];
                                let xc = &xn[ic * #hwl..(ic + 1) * #hwl];
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
            let (nb, ml, ohl, owl, cgl, khl, kwl) = (lit(nb), lit(m), lit(oh), lit(ow), lit(cg), lit(kh), lit(kw));
            let (mgl, cil, hw, wkn) = (lit(mg), lit(ci), lit(h * wd), lit(cg * kh * kw));
            let (sh, sw, dh, dw, pt, pl, hi, wi) = (ilit(sh), ilit(sw), ilit(dh), ilit(dw), ilit(pt), ilit(pl), ilit(h), ilit(wd));
            let wdl = lit(wd);
            quote! {
                for n in 0..#nb {
                    for oc in 0..#ml {
                        let g = oc / #mgl;
                        let wk = &x1[oc * #wkn..(oc + 1) * #wkn];
                        for oh in 0..#ohl {
                            for ow in 0..#owl {
                                let mut acc = #bias;
                                for ic in 0..#cgl {
                                    let xc = &x0[(n * #cil + g * #cgl + ic) * #hw..(n * #cil + g * #cgl + ic + 1) * #hw];
                                    for kh in 0..#khl {
                                        let ih = oh as isize * #sh - #pt + kh as isize * #dh;
                                        if ih < 0 || ih >= #hi { continue; }
                                        for kw in 0..#kwl {
                                            let iw = ow as isize * #sw - #pl + kw as isize * #dw;
                                            if iw < 0 || iw >= #wi { continue; }
                                            acc += xc[ih as usize * #wdl + iw as usize] * wk[(ic * #khl + kh) * #kwl + kw];
                                        }
                                    }
                                }
                                y[((n * #ml + oc) * #ohl + oh) * #owl + ow] = #store;
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
                let a1 = lit(a[1]);
                quote!(k * #a1 + i)
            } else {
                let kl = lit(k);
                quote!(i * #kl + k)
            };
            let b_idx = if gm.trans_b {
                let b1 = lit(b[1]);
                quote!(j * #b1 + k)
            } else {
                let nl = lit(nn);
                quote!(k * #nl + j)
            };
            let mut v = if gm.alpha == 1.0 {
                quote!(acc)
            } else {
                let al = float(gm.alpha);
                quote!(#al * acc)
            };
            if n.inputs.len() > 2 && gm.beta != 0.0 {
                let st = broadcast_strides(&shape(2), &[mm, nn]);
                let (s0, s1) = (lit(st[0]), lit(st[1]));
                let c = quote!(x2[i * #s0 + j * #s1]);
                v = if gm.beta == 1.0 {
                    quote!(#v + #c)
                } else {
                    let be = float(gm.beta);
                    quote!(#v + #be * #c)
                };
            }
            let store = act_expr(&gm.act, quote!((#v)));
            let (ml, kl, nl) = (lit(mm), lit(k), lit(nn));
            quote! {
                for i in 0..#ml {
                    for j in 0..#nl {
                        let mut acc = 0.0f32;
                        for k in 0..#kl { acc += x0[#a_idx] * x1[#b_idx]; }
                        y[i * #nl + j] = #store;
                    }
                }
            }
        }
        Op::MatMul(mmop) => {
            let Ok(d) = crate::ops::MatMul::dims(p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1])) else { return quote!() };
            let batch: usize = d.batch.iter().product();
            let a_off = crate::backend::c::batch_offsets(&d.a_batch, &d.batch, d.m * d.k).into_iter().map(lit);
            let b_off = crate::backend::c::batch_offsets(&d.b_batch, &d.batch, d.k * d.n).into_iter().map(lit);
            let (bl, ml, kl, nl, mn) = (lit(batch), lit(d.m), lit(d.k), lit(d.n), lit(d.m * d.n));
            let store = act_expr(&mmop.act, quote!(acc));
            quote! {
                const A_OFF: [usize; #bl] = [#(#a_off),*];
                const B_OFF: [usize; #bl] = [#(#b_off),*];
                for bi in 0..#bl {
                    let a = &x0[A_OFF[bi]..];
                    let b = &x1[B_OFF[bi]..];
                    for i in 0..#ml {
                        for j in 0..#nl {
                            let mut acc = 0.0f32;
                            for k in 0..#kl { acc += a[i * #kl + k] * b[k * #nl + j]; }
                            y[bi * #mn + i * #nl + j] = #store;
                        }
                    }
                }
            }
        }
        Op::Binary(b) => {
            let (sa, sb) = (shape(0), shape(1));
            let op: TokenStream = b.kind.symbol().parse().unwrap_or_default();
            if sa == out && sb == out {
                let e = act_expr(&b.act, quote!(a #op b));
                return quote! {
                    for ((y, &a), &b) in y[..#total].iter_mut().zip(&x0[..#total]).zip(&x1[..#total]) { *y = #e; }
                };
            }
            let (ia, ib) = (index_expr(&broadcast_strides(&sa, &out)), index_expr(&broadcast_strides(&sb, &out)));
            let e = act_expr(&b.act, quote!(x0[#ia] #op x1[#ib]));
            nested(&out, quote!(y[o] = #e;))
        }
        Op::Activation(a) => {
            let e = act_expr(&Some(*a), quote!(x));
            quote! { for (y, &x) in y[..#total].iter_mut().zip(&x0[..#total]) { *y = #e; } }
        }
        Op::Softmax(s) => {
            let (outer, len, inner) = s.split(&out);
            let (ol, ll, il, row) = (lit(outer), lit(len), lit(inner), lit(len * inner));
            quote! {
                for o in 0..#ol {
                    for j in 0..#il {
                        let base = o * #row + j;
                        let mut mx = x0[base];
                        for i in 1..#ll { let v = x0[base + i * #il]; if v > mx { mx = v; } }
                        let mut sum = 0.0f32;
                        for i in 0..#ll {
                            let e = rt::exp(x0[base + i * #il] - mx);
                            y[base + i * #il] = e;
                            sum += e;
                        }
                        for i in 0..#ll { y[base + i * #il] /= sum; }
                    }
                }
            }
        }
        Op::Pool(pl) => {
            let x = shape(0);
            let [h, wd] = [x[2], x[3]];
            let [oh, ow] = [out[2], out[3]];
            let planes = lit(out[0] * out[1]);
            let (khl, kwl, ohl, owl, hw, wdl) = (lit(pl.kernel[0]), lit(pl.kernel[1]), lit(oh), lit(ow), lit(h * wd), lit(wd));
            let (sh, sw, dh, dw) = (ilit(pl.strides[0]), ilit(pl.strides[1]), ilit(pl.dilations[0]), ilit(pl.dilations[1]));
            let (pt, pleft) = (ilit(pl.pads[0]), ilit(pl.pads[1]));
            let (hi, wi) = (ilit(h), ilit(wd));
            let (hpad, wpad) = (ilit(h + pl.pads[2]), ilit(wd + pl.pads[3]));
            let (init, count_pad, accumulate, result) = match pl.kind {
                PoolKind::Max => (quote!(let mut acc = f32::NEG_INFINITY;), quote!(), quote!(if v > acc { acc = v; }), quote!(acc)),
                PoolKind::Avg => {
                    let count_pad = if pl.count_include_pad {
                        quote!(if ih >= -#pt && ih < #hpad && iw >= -#pleft && iw < #wpad { count += 1; })
                    } else {
                        quote!()
                    };
                    let acc = if pl.count_include_pad { quote!(acc += v;) } else { quote!(acc += v; count += 1;) };
                    (quote!(let mut acc = 0.0f32; let mut count = 0u32;), count_pad, acc, quote!(if count > 0 { acc / count as f32 } else { 0.0 }))
                }
            };
            quote! {
                for c in 0..#planes {
                    let xc = &x0[c * #hw..(c + 1) * #hw];
                    for oh in 0..#ohl {
                        for ow in 0..#owl {
                            #init
                            for kh in 0..#khl {
                                let ih = oh as isize * #sh - #pt + kh as isize * #dh;
                                for kw in 0..#kwl {
                                    let iw = ow as isize * #sw - #pleft + kw as isize * #dw;
                                    #count_pad
                                    if ih < 0 || ih >= #hi || iw < 0 || iw >= #wi { continue; }
                                    let v = xc[ih as usize * #wdl + iw as usize];
                                    #accumulate
                                }
                            }
                            y[(c * #ohl + oh) * #owl + ow] = #result;
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
                    let (bl, atl, rl) = (lit(b), lit(at), lit(row));
                    at += b;
                    quote!(y[o * #rl + #atl..o * #rl + #atl + #bl].copy_from_slice(&#x[o * #bl..(o + 1) * #bl]);)
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
                let (i, s) = (format_ident!("i{}", ax), format_ident!("s{}", ax));
                let (begin, lenl) = (ilit(pd.pads[ax]), ilit(len));
                let fix = match pd.mode {
                    PadMode::Constant => quote!(),
                    PadMode::Edge => {
                        let last = ilit(len.saturating_sub(1));
                        quote!(let #s = if #s < 0 { 0 } else if #s >= #lenl { #last } else { #s };)
                    }
                    PadMode::Reflect => {
                        let twice = ilit(2 * len.saturating_sub(1));
                        quote!(let #s = if #s < 0 { -#s } else if #s >= #lenl { #twice - #s } else { #s };)
                    }
                };
                coords.push(quote! { let #s = #i as isize - #begin; #fix });
                conds.push(quote!((#s >= 0 && #s < #lenl)));
                let st = lit(xs[ax]);
                idx.push(quote!(#s as usize * #st));
            }
            let value = float(pd.value);
            let cond = if conds.is_empty() { quote!(true) } else { quote!(#(#conds)&&*) };
            let index = if idx.is_empty() { quote!(0) } else { quote!(#(#idx)+*) };
            nested(&out, quote! { #(#coords)* y[o] = if #cond { x0[#index] } else { #value }; })
        }
        Op::BatchNorm(_) => quote!(),
    }
}
