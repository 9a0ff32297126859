//! The whole compile pipeline (import, passes, memory plan, C or Rust emission) on small
//! random graphs of supported ops: `Config::compile_bytes` must return Ok or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modelless_fuzz::FuzzModel;

fuzz_target!(|m: FuzzModel| {
    let (bytes, config) = m.build();
    if let Some(dir) = std::env::var_os("MODELLESS_FUZZ_DUMP") {
        let _ = std::fs::write(std::path::Path::new(&dir).join("model.onnx"), &bytes);
    }
    let _ = config.compile_bytes(&bytes, std::path::Path::new("/nonexistent-fuzz-dir/fuzz.onnx"));
});
