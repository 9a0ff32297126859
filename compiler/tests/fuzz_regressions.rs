//! Minimized inputs found by the fuzz targets (`fuzz/`), kept as regression cases: each file
//! under `tests/fuzz-regressions/` once crashed or hung the compiler; now the loader and the
//! whole pipeline (C and Rust) must answer with Ok or a clean error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::path::Path;

#[test]
fn fuzz_regressions_compile_or_fail_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no regression cases in {}", dir.display());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let loaded = std::panic::catch_unwind(|| {
            let _ = modelless::frontend::import_bytes(&bytes, f, &Default::default());
        });
        assert!(loaded.is_ok(), "{}: the loader panicked", f.display());
        for lang in [modelless::Lang::C, modelless::Lang::Rust] {
            let r = std::panic::catch_unwind(|| modelless::Config::new().lang(lang).compile_bytes(&bytes, f).err());
            match r {
                Ok(Some(e)) => assert!(!e.to_string().is_empty()),
                Ok(None) => {}
                Err(_) => panic!("{} ({lang:?}): the pipeline panicked", f.display()),
            }
        }
    }
    eprintln!("{} fuzz regression cases", files.len());
}
