//! The ONNX loader on arbitrary bytes: `frontend::import_bytes` must return Ok or an
//! error, never panic, hang or allocate without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modelless::frontend::{ImportOptions, import_bytes};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // The path names a folder without external data files, so external references fail cleanly.
    let _ = import_bytes(data, Path::new("/nonexistent-fuzz-dir/model.onnx"), &ImportOptions::default());
});
