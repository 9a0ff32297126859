//! Rust kernels of the sparse ops (`ops::sparse`), the twin of `backend::c::sparse`: the
//! same loops (plane scatter per non-zero weight for a convolution, a dot product over the
//! row's entries for Gemm / MatMul, or the unrolled statements), in safe Rust. Integer
//! accumulation wraps like the dense integer kernels and the simulation.

use super::{float, lit, literal};
use crate::backend::Program;
use crate::backend::lin::rs_lin;
use crate::ir::{DType, Node};
use crate::ops::{Act, ConvGeom, FcGeom, Flavor, Layout, Sparse, SparseFormat};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

fn i32_lit(v: i32) -> TokenStream {
    if v == i32::MIN {
        return quote!(i32::MIN);
    }
    let l = Literal::i64_unsuffixed((v as i64).abs());
    if v < 0 { quote!(-#l) } else { quote!(#l) }
}

fn all_same(v: &[i32]) -> bool {
    v.windows(2).all(|p| p[0] == p[1])
}

/// `i32::from(e) - zp` with the zero point folded, parenthesized when it is a sum.
fn sub_zp(e: TokenStream, zp: i32) -> TokenStream {
    let l = Literal::i64_unsuffixed((zp as i64).abs());
    match zp {
        0 => quote!(i32::from(#e)),
        z if z > 0 => quote!((i32::from(#e) - #l)),
        _ => quote!((i32::from(#e) + #l)),
    }
}

fn uint(bytes: usize) -> TokenStream {
    match bytes {
        1 => quote!(u8),
        2 => quote!(u16),
        _ => quote!(u32),
    }
}

fn act_expr(act: &Option<Act>, v: TokenStream) -> TokenStream {
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

/// Requantization tables (if per channel) and the final value of output `acc` in row `ch`.
fn finish(f: &Flavor, acc: TokenStream, ch: TokenStream) -> (TokenStream, TokenStream) {
    if f.int {
        let Some(r) = f.out else { return (quote!(), acc) };
        let (tables, m, s) = if r.multiplier.len() == 1 || (all_same(&r.multiplier) && all_same(&r.shift)) {
            (quote!(), i32_lit(r.multiplier[0]), i32_lit(r.shift[0]))
        } else {
            let n = lit(r.multiplier.len());
            let (ms, ss) = (r.multiplier.iter().map(|&v| i32_lit(v)), r.shift.iter().map(|&v| i32_lit(v)));
            (
                quote!(const RQ_MUL: [i32; #n] = [#(#ms),*]; const RQ_SHIFT: [i32; #n] = [#(#ss),*];),
                quote!(RQ_MUL[#ch]),
                quote!(RQ_SHIFT[#ch]),
            )
        };
        let (zp, lo, hi) = (i32_lit(r.zero_point), i32_lit(r.lo), i32_lit(r.hi));
        let t = super::elem(r.to);
        return (tables, quote!(rt::requant(#acc, #m, #s, #zp, #lo, #hi) as #t));
    }
    let v = if f.alpha == 1.0 {
        acc
    } else {
        let a = float(f.alpha);
        quote!(#a * #acc)
    };
    (quote!(), act_expr(&f.act, v))
}

/// The body of a sparse node's kernel.
pub(super) fn emit(p: &Program, n: &Node, s: &Sparse) -> TokenStream {
    let (xt, yt) = (p.graph.ty(n.inputs[0]), p.graph.ty(n.outputs[0]));
    let f = s.flavor();
    match s.layout(xt, yt) {
        Some(Layout::Conv(g)) => conv(n, s, &f, &g),
        Some(Layout::Fc(g)) => fc(p, n, s, &f, &g),
        None => quote!(),
    }
}

/// The weight of entry `j` of row `r` as a literal: the float, or `w − w_zp` for ints.
fn weight_lit(s: &Sparse, f: &Flavor, r: usize, j: usize) -> TokenStream {
    if f.int {
        let z = s.csr.zero.get(r).copied().unwrap_or(s.csr.zero[0]);
        let v = s.csr.values.to_i64().and_then(|v| v.get(j).copied()).unwrap_or(0) as i32;
        i32_lit(v - z)
    } else {
        literal(&s.csr.values, j)
    }
}

/// `static SV`, `SC`, `SP` (values, column indices, row pointers) and, for ints with
/// per-row zero points, `WZP`.
fn csr_arrays(s: &Sparse) -> TokenStream {
    let t = super::elem(s.weight.dtype);
    let nnz = lit(s.csr.nnz());
    let vals = (0..s.csr.nnz()).map(|j| literal(&s.csr.values, j));
    let (ct, pt) = (uint(s.csr.col_bytes()), uint(s.csr.ptr_bytes()));
    let cols = s.csr.col.iter().map(|&c| Literal::u32_unsuffixed(c));
    let ptrs = s.csr.row_ptr.iter().map(|&c| Literal::u32_unsuffixed(c));
    let np = lit(s.csr.row_ptr.len());
    let zp = if s.weight.dtype != DType::F32 && s.csr.zero.len() > 1 && !all_same(&s.csr.zero) {
        let nz = lit(s.csr.zero.len());
        let z = s.csr.zero.iter().map(|&v| i32_lit(v));
        quote!(const WZP: [i32; #nz] = [#(#z),*];)
    } else {
        quote!()
    };
    quote! {
        static SV: [#t; #nnz] = [#(#vals),*];
        static SC: [#ct; #nnz] = [#(#cols),*];
        static SP: [#pt; #np] = [#(#ptrs),*];
        #zp
    }
}

/// `w − w_zp` of CSR entry `wv` (tokens of the stored value) in row `row`.
fn csr_weight(s: &Sparse, f: &Flavor, wv: TokenStream, row: TokenStream) -> TokenStream {
    if !f.int {
        return wv;
    }
    if s.csr.zero.len() > 1 && !all_same(&s.csr.zero) {
        quote!((i32::from(#wv) - WZP[#row]))
    } else {
        sub_zp(wv, s.csr.zero[0])
    }
}

fn conv(n: &Node, s: &Sparse, f: &Flavor, g: &ConvGeom) -> TokenStream {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    let has_bias = n.inputs.len() > 1;
    let bias = match (has_bias, f.int) {
        (true, _) => quote!(x1[oc]),
        (false, true) => quote!(0i32),
        (false, false) => quote!(0.0f32),
    };
    let (tables, store) = finish(f, quote!(a), quote!(oc));
    let (nbl, ml, ohwl) = (lit(g.nb), lit(g.m), lit(ohw));
    let (ys, ye) = (
        rs_lin(&[(quote!(n), g.m * ohw), (quote!(oc), ohw)], 0),
        rs_lin(&[(quote!(n), g.m * ohw), (quote!(oc), ohw)], ohw as isize),
    );
    let mut xterms = vec![(quote!(n), g.ci * hw)];
    let group = if g.group > 1 {
        let mgl = lit(g.mg);
        xterms.push((quote!(g), g.cg * hw));
        quote!(let g = oc / #mgl;)
    } else {
        quote!()
    };
    let xv = |e: TokenStream| if f.int { sub_zp(e, f.x_zp) } else { e };
    let mac = |acc: TokenStream, x: TokenStream, w: TokenStream| {
        if f.int { quote!(#acc = #acc.wrapping_add(#x.wrapping_mul(#w));) } else { quote!(#acc += #x * #w;) }
    };
    let (acc_decl, fin) = if f.int {
        (
            quote!(let yc = &mut y[#ys..#ye]; let mut acc = [b; #ohwl];),
            quote!(for (o, &a) in yc.iter_mut().zip(acc.iter()) { *o = #store; }),
        )
    } else {
        let fin = if f.act.is_some() || f.alpha != 1.0 {
            quote!(for o in acc.iter_mut() { let a = *o; *o = #store; })
        } else {
            quote!()
        };
        (quote!(let acc = &mut y[#ys..#ye]; acc.fill(b);), fin)
    };
    if s.format == SparseFormat::Unrolled {
        let blocks = (0..s.csr.rows).map(|r| {
            let stmts: Vec<TokenStream> = s
                .csr
                .row(r)
                .filter_map(|j| {
                    let (ic, kh, kw) = g.split(s.csr.col[j] as usize);
                    let ((r0, r1), (c0, c1)) = (g.rows_for(kh), g.cols_for(kw));
                    if r0 >= r1 || c0 >= c1 {
                        return None;
                    }
                    let mut t = xterms.clone();
                    t.push((quote!(oh), g.sh * g.w));
                    t.push((quote!(ow), g.sw));
                    let off = (ic * hw + kh * g.dh * g.w + kw * g.dw) as isize - (g.pt * g.w + g.pl) as isize;
                    let xi = rs_lin(&t, off);
                    let yi = rs_lin(&[(quote!(oh), g.ow), (quote!(ow), 1)], 0);
                    let wv = weight_lit(s, f, r, j);
                    let m = mac(quote!(acc[#yi]), xv(quote!(x0[#xi])), wv);
                    let (r0, r1, c0, c1) = (lit(r0), lit(r1), lit(c0), lit(c1));
                    Some(quote!(for oh in #r0..#r1 { for ow in #c0..#c1 { #m } }))
                })
                .collect();
            let group = if stmts.is_empty() { quote!() } else { group.clone() };
            let rl = lit(r);
            quote! {{
                let oc = #rl;
                #group
                let b = #bias;
                #acc_decl
                #(#stmts)*
                #fin
            }}
        });
        return quote! {
            #tables
            for n in 0..#nbl {
                #(#blocks)*
            }
        };
    }
    let consts;
    let body = {
        let xs = {
            let mut t = xterms.clone();
            t.push((quote!(ic), hw));
            (rs_lin(&t, 0), rs_lin(&t, hw as isize))
        };
        let (xs, xe) = xs;
        let ih = rs_lin(&[(quote!(oh), g.sh), (quote!(kh), g.dh)], -(g.pt as isize));
        let xi = rs_lin(&[(quote!(ih), g.w), (quote!(ow), g.sw), (quote!(kw), g.dw)], -(g.pl as isize));
        let yi = rs_lin(&[(quote!(oh), g.ow), (quote!(ow), 1)], 0);
        let m = mac(quote!(acc[#yi]), xv(quote!(xc[#xi])), quote!(wv));
        let wv = csr_weight(s, f, quote!(sv), quote!(oc));
        let (khkw, kwl, khl) = (lit(g.kh * g.kw), lit(g.kw), lit(g.kh));
        // `t / 1` and `% 1` folded (clippy's identity_op / modulo_one on 1×1 kernels).
        let ic = if g.kh * g.kw == 1 { quote!(t) } else { quote!(t / #khkw) };
        let kh = match (g.kh, g.kw) {
            (1, _) => quote!(0usize),
            (_, 1) => quote!(t % #khl),
            _ => quote!(t / #kwl % #khl),
        };
        let kw = if g.kw == 1 { quote!(0usize) } else { quote!(t % #kwl) };
        let list = |v: Vec<usize>| {
            let n = lit(v.len());
            let items = v.into_iter().map(lit);
            (n, quote!([#(#items),*]))
        };
        let rows: Vec<(usize, usize)> = (0..g.kh).map(|k| g.rows_for(k)).collect();
        let cols: Vec<(usize, usize)> = (0..g.kw).map(|k| g.cols_for(k)).collect();
        let (nr, rlo) = list(rows.iter().map(|r| r.0).collect());
        let (_, rhi) = list(rows.iter().map(|r| r.1).collect());
        let (nc, clo) = list(cols.iter().map(|r| r.0).collect());
        let (_, chi) = list(cols.iter().map(|r| r.1).collect());
        let arrays = csr_arrays(s);
        consts = quote! {
            #arrays
            const OH_LO: [usize; #nr] = #rlo;
            const OH_HI: [usize; #nr] = #rhi;
            const OW_LO: [usize; #nc] = #clo;
            const OW_HI: [usize; #nc] = #chi;
        };
        quote! {
            let span = SP[oc] as usize..SP[oc + 1] as usize;
            for (&t, &sv) in SC[span.clone()].iter().zip(&SV[span]) {
                let t = t as usize;
                let (ic, kh, kw) = (#ic, #kh, #kw);
                let wv = #wv;
                let xc = &x0[#xs..#xe];
                for oh in OH_LO[kh]..OH_HI[kh] {
                    let ih = #ih;
                    for ow in OW_LO[kw]..OW_HI[kw] {
                        #m
                    }
                }
            }
        }
    };
    quote! {
        #tables
        #consts
        for n in 0..#nbl {
            for oc in 0..#ml {
                #group
                let b = #bias;
                #acc_decl
                #body
                #fin
            }
        }
    }
}

fn fc(p: &Program, n: &Node, s: &Sparse, f: &Flavor, g: &FcGeom) -> TokenStream {
    let (rows, k, nn) = (g.rows, g.k, g.n);
    let has_c = n.inputs.len() > 1;
    let init = |row: TokenStream| match (f.int, has_c) {
        (true, true) => quote!(x1[#row]),
        (true, false) => quote!(0i32),
        (false, _) => quote!(0.0f32),
    };
    let mut prelude = quote!();
    let c_term = |row: TokenStream| -> Option<TokenStream> {
        if f.int || !has_c || f.beta == 0.0 {
            return None;
        }
        let st = crate::ops::broadcast::broadcast_strides(&p.graph.ty(n.inputs[1]).shape, &[rows, nn]);
        let e = rs_lin(&[(quote!(i), st[0]), (row, st[1])], 0);
        let e = quote!(x1[#e]);
        Some(if f.beta == 1.0 {
            e
        } else {
            let b = float(f.beta);
            quote!(#b * #e)
        })
    };
    if !f.int && has_c && f.beta == 0.0 {
        prelude = quote!(let _ = x1;);
    }
    let store = |row: TokenStream| -> (TokenStream, TokenStream) {
        match c_term(row.clone()) {
            Some(c) => {
                let v = if f.alpha == 1.0 {
                    quote!(acc)
                } else {
                    let a = float(f.alpha);
                    quote!(#a * acc)
                };
                (quote!(), act_expr(&f.act, quote!(#v + #c)))
            }
            None => finish(f, quote!(acc), row),
        }
    };
    let mac = |x: TokenStream, w: TokenStream| {
        if f.int { quote!(acc = acc.wrapping_add(#x.wrapping_mul(#w));) } else { quote!(acc += #x * #w;) }
    };
    let xv = |e: TokenStream| if f.int { sub_zp(e, f.x_zp) } else { e };
    let rl = lit(rows);
    let (as_, ae) = (rs_lin(&[(quote!(i), k)], 0), rs_lin(&[(quote!(i), k)], k as isize));
    if s.format == SparseFormat::Unrolled {
        let (tables, _) = store(quote!(0));
        let outs = (0..s.csr.rows).map(|r| {
            let rlit = lit(r);
            let (_, st) = store(quote!(#rlit));
            let i0 = init(quote!(#rlit));
            let yi = rs_lin(&[(quote!(i), nn)], r as isize);
            let terms: Vec<TokenStream> = s
                .csr
                .row(r)
                .map(|j| {
                    let c = lit(s.csr.col[j] as usize);
                    mac(xv(quote!(a[#c])), weight_lit(s, f, r, j))
                })
                .collect();
            if terms.is_empty() {
                quote!({ let acc = #i0; y[#yi] = #st; })
            } else {
                quote!({ let mut acc = #i0; #(#terms)* y[#yi] = #st; })
            }
        });
        return quote! {
            #prelude
            #tables
            for i in 0..#rl {
                let a = &x0[#as_..#ae];
                #(#outs)*
            }
        };
    }
    let (tables, st) = store(quote!(j));
    let i0 = init(quote!(j));
    let arrays = csr_arrays(s);
    let wv = csr_weight(s, f, quote!(sv), quote!(j));
    let m = mac(xv(quote!(a[c as usize])), wv);
    let yi = rs_lin(&[(quote!(i), nn), (quote!(j), 1)], 0);
    quote! {
        #prelude
        #tables
        #arrays
        for i in 0..#rl {
            let a = &x0[#as_..#ae];
            for (j, win) in SP.windows(2).enumerate() {
                let span = win[0] as usize..win[1] as usize;
                let mut acc = #i0;
                for (&c, &sv) in SC[span.clone()].iter().zip(&SV[span]) {
                    #m
                }
                y[#yi] = #st;
            }
        }
    }
}
