// Generated inference code for model `{{NAME}}`.
//
// Call `run` with the input(s), output buffer(s) and an `Arena`; no allocation, no global
// state, `#![no_std]`-compatible, no dependencies; `unsafe` only in `mod rt`'s `core::arch`
// SIMD helpers, on features their `cfg` proves enabled. Tensors are row-major in
// the model's own layout. Include it as a module (`mod {{NAME}};`) or with
// `mod {{NAME}} { include!(concat!(env!("OUT_DIR"), "/{{NAME}}.rs")); }`.
