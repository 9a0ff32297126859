//! Generated inference code for model `{{NAME}}`.
//!
//! Call [`run`] with the input(s), output buffer(s) and an [`Arena`]; no allocation, no
//! global state, `#![no_std]`-compatible, no dependencies. Tensors are row-major in the
//! model's own layout.
