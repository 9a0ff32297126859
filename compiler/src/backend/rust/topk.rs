//! Rust kernel of TopK (`ops::TopK`), the twin of `backend::c::topk`: per `(outer, inner)`
//! slice along the axis, an insertion selection of the best `k` positions into a stack
//! array (ties keep the lower index), then the values or int64 positions in order.

use super::lit;
use crate::backend::Program;
use crate::backend::lin::rs_lin;
use crate::ir::Node;
use crate::ops::TopK;
use proc_macro2::TokenStream;
use quote::quote;

pub(super) fn emit(p: &Program, n: &Node, t: &TopK) -> TokenStream {
    let xt = p.graph.ty(n.inputs[0]);
    let (outer, len, inner) = t.split(&xt.shape);
    let k = t.k;
    if k == 0 || outer == 0 || inner == 0 {
        return quote!();
    }
    let at = |r: TokenStream| {
        let e = rs_lin(&[(quote!(base), 1), (r, inner)], 0);
        quote!(x0[#e])
    };
    let better = |a: TokenStream, b: TokenStream| if t.largest { quote!(#a > #b) } else { quote!(#a < #b) };
    let base = rs_lin(&[(quote!(o), len * inner), (quote!(i), 1)], 0);
    let out = rs_lin(&[(quote!(o), k * inner), (quote!(j), inner), (quote!(i), 1)], 0);
    let (kl, last, ll, ol, il) = (lit(k), lit(k - 1), lit(len), lit(outer), lit(inner));
    let beats_last = better(quote!(v), at(quote!(idx[#last])));
    let beats_prev = better(quote!(v), at(quote!(idx[j - 1])));
    let xv = at(quote!(r));
    let val = if t.indices { quote!(p as i64) } else { at(quote!(p)) };
    quote! {
        for o in 0..#ol {
            for i in 0..#il {
                let base = #base;
                let mut idx = [0usize; #kl];
                let mut cnt = 0usize;
                for r in 0..#ll {
                    let v = #xv;
                    let mut j = if cnt < #kl {
                        cnt += 1;
                        cnt - 1
                    } else if #beats_last {
                        #last
                    } else {
                        continue;
                    };
                    while j > 0 && #beats_prev {
                        idx[j] = idx[j - 1];
                        j -= 1;
                    }
                    idx[j] = r;
                }
                for (j, &p) in idx.iter().enumerate() {
                    y[#out] = #val;
                }
            }
        }
    }
}
