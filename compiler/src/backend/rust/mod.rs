//! Rust backend: one `NAME.rs` module, built with `quote!` and formatted by `prettyplease`.
//!
//! Contract (pinned by issue #2): `pub const INPUT_LEN`, `OUTPUT_LEN` (or `INPUT<i>_LEN` /
//! `OUTPUT<i>_LEN`), `ARENA_BYTES`, `pub struct Arena` with `pub const fn new()`, and
//! `pub fn run(input: &[f32; INPUT_LEN], output: &mut [f32; OUTPUT_LEN], arena: &mut Arena)`.
//! `no_std`, no heap, no dependencies, no `unsafe`.

mod kernels;

use super::{OutFile, Program, float_repr};
use crate::error::{Error, Result};
use crate::ir::ValueId;
use crate::passes::Storage;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

const MODULE_DOC: &str = include_str!("../../../../codegen-templates/rust/module.rs");
/// Helper functions spliced into every module as `mod rt`.
const RUNTIME_MATH: &str = include_str!("../../../../runtime-shims/src/math.rs");

pub(crate) fn ident(s: &str) -> Ident {
    Ident::new(s, Span::call_site())
}

pub(crate) fn lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

/// An exact f32 literal (`0.5f32`), or the named constant for non-finite values.
pub(crate) fn float(v: f32) -> TokenStream {
    match float_repr(v) {
        Some(s) => {
            let digits = s.trim_start_matches('-');
            let l: Literal = format!("{digits}f32").parse().unwrap_or_else(|_| Literal::f32_suffixed(0.0));
            if v.is_sign_negative() { quote!(-#l) } else { quote!(#l) }
        }
        None if v.is_nan() => quote!(f32::NAN),
        None if v > 0.0 => quote!(f32::INFINITY),
        None => quote!(f32::NEG_INFINITY),
    }
}

fn weight_ident(v: ValueId) -> Ident {
    ident(&format!("W{}", v.0))
}

/// Emits the module for a planned program.
pub fn emit(p: &Program) -> Result<Vec<OutFile>> {
    p.check_float()?;
    let (in_lens, out_lens) = p.io_lens();
    let in_names = Program::len_names("INPUT", in_lens.len());
    let out_names = Program::len_names("OUTPUT", out_lens.len());
    let len_consts = in_names.iter().zip(&in_lens).chain(out_names.iter().zip(&out_lens)).map(|(n, &l)| {
        let (n, l) = (ident(n), lit(l));
        quote!(pub const #n: usize = #l;)
    });
    let arena_words = p.arena_bytes() / 4;
    let (arena_bytes, words, align) = (lit(p.arena_bytes()), lit(arena_words), lit(p.plan.align));

    let param_in: Vec<Ident> = (0..in_lens.len())
        .map(|i| ident(if in_lens.len() == 1 { "input".into() } else { format!("input{i}") }.as_str()))
        .collect();
    let param_out: Vec<Ident> = (0..out_lens.len())
        .map(|i| ident(if out_lens.len() == 1 { "output".into() } else { format!("output{i}") }.as_str()))
        .collect();
    let in_ty = in_names.iter().map(|n| ident(n));
    let out_ty = out_names.iter().map(|n| ident(n));

    let weights = p.constants().into_iter().map(|v| {
        let data = p.graph.data(v).map(|d| d.to_f32()).unwrap_or_default();
        let (name, n) = (weight_ident(v), lit(data.len()));
        let vals = data.iter().map(|&x| float(x));
        let doc = format!(" \"{}\" {:?}", p.graph.value(v).name, p.graph.ty(v).shape);
        quote! {
            #[doc = #doc]
            pub(super) static #name: [f32; #n] = [#(#vals),*];
        }
    });

    let mut node_fns = vec![];
    let mut calls = vec![];
    for (i, n) in p.graph.nodes.iter().enumerate() {
        if p.plan.is_view(p.graph, i) {
            continue;
        }
        let fname = ident(&format!("node{i}"));
        let xs: Vec<Ident> = (0..n.inputs.len()).map(|k| ident(&format!("x{k}"))).collect();
        let body = kernels::emit(p, n);
        let doc = format!(" {} \"{}\": {}", n.op.name(), n.name, kernels::signature(p, n));
        node_fns.push(quote! {
            #[doc = #doc]
            pub(super) fn #fname(#(#xs: &[f32],)* y: &mut [f32]) {
                #body
            }
        });
        calls.push(call(p, i, &fname, &param_in, &param_out));
    }

    let rt: syn::File = syn::parse_str(RUNTIME_MATH)
        .map_err(|e| Error::Model(format!("internal error: runtime helpers do not parse: {e}")))?;
    let rt_items = used_helpers(rt.items, &node_fns);
    let uses_arena = arena_words > 0
        && p.graph
            .nodes
            .iter()
            .flat_map(|n| n.inputs.iter().chain(&n.outputs))
            .any(|&v| matches!(p.storage(v), Storage::Arena { .. }));
    let scratch =
        if uses_arena { quote!(let scratch: &mut [f32] = &mut arena.buf[..];) } else { quote!(let _ = arena;) };

    let tokens = quote! {
        #(#len_consts)*
        /// Size in bytes of the scratch arena.
        pub const ARENA_BYTES: usize = #arena_bytes;

        /// Caller-owned scratch memory for [`run`]; put it anywhere (stack, static, heap).
        #[repr(C, align(#align))]
        pub struct Arena {
            buf: [f32; #words],
        }

        impl Arena {
            /// A zeroed arena (usable in `static` and `const` contexts).
            pub const fn new() -> Arena {
                Arena { buf: [0.0; #words] }
            }
        }

        impl Default for Arena {
            fn default() -> Arena {
                Arena::new()
            }
        }

        /// Runs the model once: reads the input(s), writes the output(s).
        pub fn run(#(#param_in: &[f32; #in_ty],)* #(#param_out: &mut [f32; #out_ty],)* arena: &mut Arena) {
            #scratch
            #(#calls)*
        }

        mod weights {
            #(#weights)*
        }

        mod kernels {
            use super::rt;
            #(#node_fns)*
        }

        mod rt {
            #(#rt_items)*
        }
    };
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| Error::Model(format!("internal error: generated Rust does not parse: {e}")))?;
    let body = prettyplease::unparse(&file);
    let doc = MODULE_DOC.replace("{{NAME}}", &p.name);
    let contents = format!("// {}\n{doc}\n{body}", p.banner);
    Ok(vec![OutFile { name: format!("{}.rs", p.name), contents }])
}

/// The statement calling node `i`'s kernel with slices of the right buffers.
fn call(p: &Program, i: usize, fname: &Ident, ins: &[Ident], outs: &[Ident]) -> TokenStream {
    let n = &p.graph.nodes[i];
    let out = n.outputs[0];
    let out_len = p.graph.ty(out).len();
    let arg = |v: ValueId, split: Option<(usize, usize)>| -> TokenStream {
        let len = p.graph.ty(v).len();
        match p.storage(v) {
            Storage::Const => {
                let w = weight_ident(v);
                quote!(&weights::#w[..])
            }
            Storage::Input(k) => {
                let x = &ins[k];
                quote!(&#x[..])
            }
            Storage::Output(k) => {
                let x = &outs[k];
                quote!(&#x[..])
            }
            Storage::Arena { offset } => {
                let a = offset / 4;
                match split {
                    None => {
                        let (s, e) = (lit(a), lit(a + len));
                        quote!(&scratch[#s..#e])
                    }
                    Some((o, _)) if a + len <= o => {
                        let (s, e) = (lit(a), lit(a + len));
                        quote!(&lo[#s..#e])
                    }
                    Some((o, l)) => {
                        let (s, e) = (lit(a - o - l), lit(a - o - l + len));
                        quote!(&hi[#s..#e])
                    }
                }
            }
            Storage::Unused => quote!(&[]),
        }
    };
    match p.storage(out) {
        Storage::Arena { offset } => {
            let o = offset / 4;
            let args: Vec<TokenStream> = n.inputs.iter().map(|&v| arg(v, Some((o, out_len)))).collect();
            let uses = |name: &str| args.iter().any(|a| a.to_string().contains(name));
            let lo = if uses("lo [") { quote!(lo) } else { quote!(_) };
            let hi = if uses("hi [") { quote!(hi) } else { quote!(_) };
            let (ol, olen) = (lit(o), lit(out_len));
            quote! {
                {
                    let (#lo, rest) = scratch.split_at_mut(#ol);
                    let (y, #hi) = rest.split_at_mut(#olen);
                    kernels::#fname(#(#args,)* y);
                }
            }
        }
        Storage::Output(k) => {
            let args = n.inputs.iter().map(|&v| arg(v, None));
            let o = &outs[k];
            quote!(kernels::#fname(#(#args,)* &mut #o[..]);)
        }
        _ => quote!(),
    }
}

/// The runtime helpers the kernels call (`rt::NAME`), plus the helpers those call, in
/// source order, so the module carries no dead code.
fn used_helpers(items: Vec<syn::Item>, kernels: &[TokenStream]) -> Vec<syn::Item> {
    let name = |it: &syn::Item| match it {
        syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
        _ => None,
    };
    let words = |ts: &str| ts.split(|c: char| !c.is_alphanumeric() && c != '_').map(str::to_string).collect::<Vec<_>>();
    let kernel_text: String = kernels.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(" ");
    let mut used: std::collections::BTreeSet<String> =
        kernel_text.split("rt :: ").skip(1).filter_map(|s| words(s).into_iter().next()).collect();
    loop {
        let before = used.len();
        for it in &items {
            if name(it).is_some_and(|n| used.contains(&n)) {
                let text = quote!(#it).to_string();
                for w in words(&text) {
                    if items.iter().any(|i| name(i).as_deref() == Some(w.as_str())) {
                        used.insert(w);
                    }
                }
            }
        }
        if used.len() == before {
            break;
        }
    }
    items.into_iter().filter(|it| name(it).is_some_and(|n| used.contains(&n))).collect()
}
