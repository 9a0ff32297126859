//! modelless: compile a trained ONNX model into standalone C or Rust source.
//!
//! Pipeline: [`frontend`] (ONNX → [`ir::Graph`]) → [`passes`] (fold, fuse, legalize, dce,
//! memory plan) → [`backend`] (C or Rust source). [`Config`] drives it for the CLI and for
//! build scripts; [`verify`] compiles and runs the output against a reference.

pub mod audit;
pub mod backend;
pub mod bench;
mod compile;
pub mod conformance;
pub mod cross;
pub mod error;
pub mod frontend;
pub mod int8;
pub mod interp;
pub mod ir;
pub mod memory_plot;
pub mod npy;
pub mod ops;
pub mod passes;
pub mod reference;
pub mod target;
pub mod toolchain;
pub mod tune;
pub mod verify;

pub use backend::Opt;
pub use compile::{
    Builder, Compiled, Config, Int8Build, Int8Config, Kernels, Lang, PruneSettings, default_name, write_files,
};
pub use error::{Error, Result};
