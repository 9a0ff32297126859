//! Differential: small random graphs of supported ops (the pipeline target's generator,
//! continuous recipes only) compiled to C by the library, built with the host C compiler
//! and run on random inputs, against the reference interpreter `modelless::interp::run`
//! (float within 1e-4 of the output's magnitude; int8 exact). A mismatch, or generated C
//! that does not build or run, is a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modelless_fuzz::{Diff, FuzzModel, differential};

fuzz_target!(|input: (FuzzModel, u64, bool)| {
    let (m, seed, int8) = input;
    let Ok(work) = tempfile_dir() else { return };
    if let Some(dir) = std::env::var_os("MODELLESS_FUZZ_DUMP") {
        let _ = std::fs::write(std::path::Path::new(&dir).join("model.onnx"), m.build_smooth().0);
    }
    match differential(&m, seed, int8, &work) {
        Ok(Diff::Agree { .. }) | Ok(Diff::Skipped(_)) => {}
        Err(e) => panic!("differential mismatch (seed {seed}, int8 {int8}): {e}"),
    }
    let _ = std::fs::remove_dir_all(&work);
});

/// A fresh working directory per execution (the C harness is built there).
fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("modelless-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
