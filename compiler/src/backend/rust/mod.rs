//! Rust backend: one `NAME.rs` module, built with `quote!` and formatted by `prettyplease`.
//!
//! Contract (pinned by issue #2): `pub const INPUT_LEN`, `OUTPUT_LEN` (or `INPUT<i>_LEN` /
//! `OUTPUT<i>_LEN`), `ARENA_BYTES`, `pub struct Arena` with `pub const fn new()`, and
//! `pub fn run(input: &[f32; INPUT_LEN], output: &mut [f32; OUTPUT_LEN], arena: &mut Arena)`.
//! `no_std`, no heap, no dependencies; `unsafe` only in the embedded `core::arch` helpers
//! (`runtime-shims/src/simd.rs`), never in kernels.

mod kernels;
mod packed;
mod qkernels;
mod sparse;
mod topk;

use super::{OutFile, Program, float_repr, float_repr64};
use crate::error::{Error, Result};
use crate::ir::{DType, TensorData, ValueId};
use crate::passes::Storage;
use crate::toolchain::rust_type;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

const MODULE_DOC: &str = include_str!("../../../../codegen-templates/rust/module.rs");
/// Helper functions spliced into every module as `mod rt` (the ones its kernels call).
const RUNTIME_MATH: &str = include_str!("../../../../runtime-shims/src/math.rs");
/// The SIMD helpers (`core::arch` on AVX2 and NEON, portable elsewhere), spliced in the
/// same way.
const RUNTIME_SIMD: &str = include_str!("../../../../runtime-shims/src/simd.rs");

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

/// A Rust `f64` literal.
pub(crate) fn double(v: f64) -> TokenStream {
    match float_repr64(v) {
        Some(s) => {
            let digits = s.trim_start_matches('-');
            let l: Literal = format!("{digits}f64").parse().unwrap_or_else(|_| Literal::f64_suffixed(0.0));
            if v.is_sign_negative() { quote!(-#l) } else { quote!(#l) }
        }
        None if v.is_nan() => quote!(f64::NAN),
        None if v > 0.0 => quote!(f64::INFINITY),
        None => quote!(f64::NEG_INFINITY),
    }
}

fn weight_ident(v: ValueId) -> Ident {
    ident(&format!("W{}", v.0))
}

/// The compile-time packed weights of node `i`'s kernel.
fn packed_ident(i: usize) -> Ident {
    ident(&format!("P{i}"))
}

/// The Rust element type of `d`, as tokens.
pub(crate) fn elem(d: DType) -> TokenStream {
    let t = ident(rust_type(d));
    quote!(#t)
}

/// The arena field holding the pool of `d` values.
fn pool_field(d: DType) -> Ident {
    ident(&format!("pool_{}", d.name()))
}

/// A Rust literal for element `i` of a constant.
fn literal(d: &TensorData, i: usize) -> TokenStream {
    match d {
        TensorData::F32(v) => float(v[i]),
        TensorData::F64(v) => double(v[i]),
        TensorData::I8(v) => int_lit(v[i] as i64),
        TensorData::U8(v) => int_lit(v[i] as i64),
        TensorData::I32(v) => int_lit(v[i] as i64),
        TensorData::I64(v) if v[i] == i64::MIN => quote!(i64::MIN),
        TensorData::I64(v) => int_lit(v[i]),
        TensorData::Bool(v) => {
            if v[i] {
                quote!(true)
            } else {
                quote!(false)
            }
        }
        TensorData::I16(v) => int_lit(v[i] as i64),
        TensorData::U16(v) | TensorData::F16(v) | TensorData::BF16(v) => int_lit(v[i] as i64),
        TensorData::U32(v) => int_lit(v[i] as i64),
        TensorData::Low(DType::I4 | DType::I2, v) => int_lit(v[i] as i8 as i64),
        TensorData::Low(_, v) => int_lit(v[i] as i64),
        TensorData::U64(v) => {
            let l = Literal::u64_unsuffixed(v[i]);
            quote!(#l)
        }
    }
}

fn int_lit(v: i64) -> TokenStream {
    let l = Literal::u64_unsuffixed(v.unsigned_abs());
    if v < 0 { quote!(-#l) } else { quote!(#l) }
}

/// Emits the module for a planned program.
pub fn emit(p: &Program) -> Result<Vec<OutFile>> {
    p.check_dtypes()?;
    let (in_lens, out_lens) = p.io_lens();
    let in_names = Program::len_names("INPUT", in_lens.len());
    let out_names = Program::len_names("OUTPUT", out_lens.len());
    let len_consts = in_names.iter().zip(&in_lens).chain(out_names.iter().zip(&out_lens)).map(|(n, &l)| {
        let (n, l) = (ident(n), lit(l));
        quote!(pub const #n: usize = #l;)
    });
    let (arena_bytes, align) = (lit(p.arena_bytes()), lit(p.plan.align));

    let param_in: Vec<Ident> = (0..in_lens.len())
        .map(|i| ident(if in_lens.len() == 1 { "input".into() } else { format!("input{i}") }.as_str()))
        .collect();
    let param_out: Vec<Ident> = (0..out_lens.len())
        .map(|i| ident(if out_lens.len() == 1 { "output".into() } else { format!("output{i}") }.as_str()))
        .collect();
    let in_ty = in_names.iter().zip(&p.graph.inputs).map(|(n, &v)| {
        let (n, t) = (ident(n), elem(p.graph.ty(v).dtype));
        quote!([#t; #n])
    });
    let out_ty = out_names.iter().zip(&p.graph.outputs).map(|(n, &v)| {
        let (n, t) = (ident(n), elem(p.graph.ty(v).dtype));
        quote!([#t; #n])
    });

    // Per node: the input its kernel reads from a compile-time packed copy, and that copy.
    let packs: Vec<Option<(usize, TensorData)>> = p
        .graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| if p.runs(i) && p.opt.simd() { packed::pack(p, n) } else { None })
        .collect();
    // A constant every reader (that runs) takes packed is not emitted itself.
    let only_packed = |v: ValueId| {
        !p.graph.outputs.contains(&v)
            && p.graph.nodes.iter().zip(&packs).enumerate().all(|(i, (n, pk))| match pk {
                Some((k, _)) => n.inputs.iter().enumerate().all(|(j, &x)| x != v || j == *k),
                None => !p.runs(i) || !n.inputs.contains(&v),
            })
    };
    let packed_weights = p.graph.nodes.iter().zip(&packs).enumerate().filter_map(|(i, (n, pk))| {
        let (k, data) = pk.as_ref()?;
        let (name, len, t) = (packed_ident(i), lit(data.len()), elem(data.dtype()));
        let vals = (0..data.len()).map(|j| literal(data, j));
        let v = n.inputs[*k];
        let doc = format!(
            " \"{}\" {:?} packed for node{i}'s kernel (panels of output channels)",
            p.graph.value(v).name,
            p.graph.ty(v).shape
        );
        Some(quote! {
            #[doc = #doc]
            pub(super) static #name: [#t; #len] = [#(#vals),*];
        })
    });
    let weights = p.constants().into_iter().filter(|&v| !only_packed(v)).filter_map(|v| {
        let data = p.graph.data(v)?;
        let (name, n, t) = (weight_ident(v), lit(data.len()), elem(data.dtype()));
        let vals = (0..data.len()).map(|i| literal(data, i));
        let doc = format!(" \"{}\" {:?}", p.graph.value(v).name, p.graph.ty(v).shape);
        Some(quote! {
            #[doc = #doc]
            pub(super) static #name: [#t; #n] = [#(#vals),*];
        })
    });

    let mut node_fns = vec![];
    let mut calls = vec![];
    for (i, n) in p.graph.nodes.iter().enumerate() {
        if !p.runs(i) {
            continue;
        }
        let fname = ident(&format!("node{i}"));
        let xs = n.inputs.iter().enumerate().map(|(k, &v)| {
            let dt = match &packs[i] {
                Some((pk, d)) if *pk == k => d.dtype(),
                _ => p.graph.ty(v).dtype,
            };
            let (x, t) = (ident(&format!("x{k}")), elem(dt));
            quote!(#x: &[#t])
        });
        let yt = elem(p.graph.ty(n.outputs[0]).dtype);
        let body = kernels::emit(p, n);
        let doc = format!(" {} \"{}\": {}", n.op.name(), n.name, kernels::signature(p, n));
        node_fns.push(quote! {
            #[doc = #doc]
            #[inline(never)]
            pub(super) fn #fname(#(#xs,)* y: &mut [#yt]) {
                #body
            }
        });
        let packed_input = packs[i].as_ref().map(|(k, _)| *k);
        calls.push(call(p, i, &fname, &param_in, &param_out, packed_input));
    }

    let mut rt_items = vec![];
    for src in [RUNTIME_MATH, RUNTIME_SIMD] {
        let rt: syn::File = syn::parse_str(src)
            .map_err(|e| Error::Model(format!("internal error: runtime helpers do not parse: {e}")))?;
        rt_items.extend(rt.items);
    }
    let rt_items = used_helpers(rt_items, &node_fns);
    // Models whose kernels call no helper get no `rt` module (nor an unused import).
    let (use_rt, rt_mod) = if rt_items.is_empty() {
        (quote!(), quote!())
    } else {
        (
            quote!(
                use super::rt;
            ),
            quote!(mod rt { #(#rt_items)* }),
        )
    };
    let (fields, inits): (Vec<TokenStream>, Vec<TokenStream>) = if p.plan.pools.is_empty() {
        (vec![quote!(_reserved: [u8; #arena_bytes])], vec![quote!(_reserved: [0; #arena_bytes])])
    } else {
        p.plan
            .pools
            .iter()
            .map(|pool| {
                let (f, t, n) = (pool_field(pool.dtype), elem(pool.dtype), lit(pool.bytes / pool.dtype.size()));
                let zero = match crate::passes::zero_scalar(pool.dtype) {
                    Some(z) => literal(&z, 0),
                    None => quote!(false),
                };
                (quote!(#f: [#t; #n]), quote!(#f: [#zero; #n]))
            })
            .unzip()
    };
    let unused_arena =
        if calls.iter().any(|c| c.to_string().contains("arena")) { quote!() } else { quote!(let _ = arena;) };
    // Parameters no call passes on: inputs nothing reads, and empty (zero-element) inputs
    // and outputs, which no kernel touches.
    let call_words: std::collections::BTreeSet<String> = calls
        .iter()
        .flat_map(|c| {
            c.to_string().split(|ch: char| !(ch.is_alphanumeric() || ch == '_')).map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    let unused_inputs = param_in
        .iter()
        .chain(&param_out)
        .filter(|name| !call_words.contains(&name.to_string()))
        .map(|name| quote!(let _ = #name;));

    let tokens = quote! {
        #(#len_consts)*
        /// Size in bytes of the scratch arena.
        pub const ARENA_BYTES: usize = #arena_bytes;

        /// Caller-owned scratch memory for [`run`]; put it anywhere (stack, static, heap).
        #[repr(C, align(#align))]
        pub struct Arena {
            #(#fields,)*
        }

        impl Arena {
            /// A zeroed arena (usable in `static` and `const` contexts).
            pub const fn new() -> Arena {
                Arena { #(#inits,)* }
            }
        }

        impl Default for Arena {
            fn default() -> Arena {
                Arena::new()
            }
        }

        /// Runs the model once: reads the input(s), writes the output(s).
        pub fn run(#(#param_in: &#in_ty,)* #(#param_out: &mut #out_ty,)* arena: &mut Arena) {
            #unused_arena
            #(#unused_inputs)*
            #(#calls)*
        }

        mod weights {
            #(#weights)*
            #(#packed_weights)*
        }

        mod kernels {
            #use_rt
            #(#node_fns)*
        }

        #rt_mod
    };
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| Error::Model(format!("internal error: generated Rust does not parse: {e}")))?;
    let body = prettyplease::unparse(&file);
    let doc = MODULE_DOC.replace("{{NAME}}", &p.name);
    let contents = format!("// {}\n{doc}\n{body}", p.banner);
    Ok(vec![OutFile { name: format!("{}.rs", p.name), contents }])
}

/// The statement calling node `i`'s kernel with slices of the right buffers. Arena values
/// are indexed in their pool; the output's pool is split around the output so inputs in
/// the same pool can be borrowed alongside it.
fn call(p: &Program, i: usize, fname: &Ident, ins: &[Ident], outs: &[Ident], packed: Option<usize>) -> TokenStream {
    let n = &p.graph.nodes[i];
    let out = n.outputs[0];
    let out_ty = p.graph.ty(out);
    let out_len = out_ty.len();
    // Element index of an arena value within its pool.
    let pool_index = |v: ValueId, offset: usize| -> usize {
        let d = p.graph.ty(v).dtype;
        let base = p.plan.pool(d).map_or(0, |pl| pl.base);
        (offset - base) / d.size()
    };
    let out_pool = match p.storage(out) {
        Storage::Arena { offset } => Some((out_ty.dtype, pool_index(out, offset))),
        _ => None,
    };
    let arg = |v: ValueId| -> TokenStream {
        let ty = p.graph.ty(v);
        let len = ty.len();
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
                let a = pool_index(v, offset);
                match out_pool {
                    Some((d, o)) if d == ty.dtype && a + len <= o => {
                        let (s, e) = (lit(a), lit(a + len));
                        quote!(&lo[#s..#e])
                    }
                    Some((d, o)) if d == ty.dtype => {
                        let (s, e) = (lit(a - o - out_len), lit(a - o - out_len + len));
                        quote!(&hi[#s..#e])
                    }
                    _ => {
                        let (f, s, e) = (pool_field(ty.dtype), lit(a), lit(a + len));
                        quote!(&arena.#f[#s..#e])
                    }
                }
            }
            Storage::Unused => quote!(&[]),
        }
    };
    let args: Vec<TokenStream> = n
        .inputs
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            if packed == Some(k) {
                let w = packed_ident(i);
                quote!(&weights::#w[..])
            } else {
                arg(v)
            }
        })
        .collect();
    match (p.storage(out), out_pool) {
        (Storage::Arena { .. }, Some((d, o))) => {
            let uses = |name: &str| args.iter().any(|a| a.to_string().contains(name));
            let lo = if uses("lo [") { quote!(lo) } else { quote!(_) };
            let hi = if uses("hi [") { quote!(hi) } else { quote!(_) };
            let (ol, olen, f) = (lit(o), lit(out_len), pool_field(d));
            quote! {
                {
                    let (#lo, rest) = arena.#f.split_at_mut(#ol);
                    let (y, #hi) = rest.split_at_mut(#olen);
                    kernels::#fname(#(#args,)* y);
                }
            }
        }
        (Storage::Output(k), _) => {
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
        syn::Item::Const(c) => Some(c.ident.to_string()),
        syn::Item::Type(t) => Some(t.ident.to_string()),
        _ => None,
    };
    // Items used by name: constants and type aliases (one per `cfg` of the SIMD helpers).
    let is_const = |n: &str| {
        items.iter().any(|i| match i {
            syn::Item::Const(c) => c.ident == n,
            syn::Item::Type(t) => t.ident == n,
            _ => false,
        })
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
                for w in called(&text) {
                    if items.iter().any(|i| name(i).as_deref() == Some(w.as_str())) {
                        used.insert(w);
                    }
                }
                // Constants (`MF_E4M3FN`, ...) are named, not called (in code, not docs).
                let mut bare = it.clone();
                if let syn::Item::Fn(f) = &mut bare {
                    f.attrs.clear();
                }
                for w in words(&quote!(#bare).to_string()) {
                    if is_const(&w) {
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

/// The identifiers of `text` (token text) followed by `(`: the functions it calls, not its
/// variables (a parameter named like a helper, e.g. `exp`, pulls nothing in).
fn called(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_alphanumeric() || c == '_') {
        let tail = &rest[start..];
        let len = tail.find(|c: char| !c.is_alphanumeric() && c != '_').unwrap_or(tail.len());
        let (word, after) = tail.split_at(len);
        if after.trim_start().starts_with('(') {
            out.push(word.to_string());
        }
        rest = after;
    }
    out
}
