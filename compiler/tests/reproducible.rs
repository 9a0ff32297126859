//! Reproducible builds: every float model of `../shared/models/{digits,mlperf-tiny}` built
//! twice by the `modelless` binary, from different working directories (absolute vs
//! relative model path) and with different `--name`, gives byte-identical files once the
//! name is substituted back (C and Rust).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::shared;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn float_models() -> Vec<PathBuf> {
    let mut out = vec![];
    for suite in ["digits", "mlperf-tiny"] {
        for e in std::fs::read_dir(shared().join("models").join(suite)).unwrap().flatten() {
            let m = e.path().join("model.onnx");
            let name = e.file_name().to_string_lossy().into_owned();
            if m.is_file() && !name.ends_with("_int8") {
                out.push(m);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 7, "expected the digits and MLPerf Tiny float models, found {out:?}");
    out
}

/// Builds `model` (as given, relative to `cwd`) into `out` and returns its files, with
/// `name` (and its upper-case form) replaced by a placeholder in names and contents.
fn build(cwd: &Path, model: &Path, lang: &str, name: &str, out: &Path) -> BTreeMap<String, String> {
    let o = Command::new(env!("CARGO_BIN_EXE_modelless"))
        .args(["build", model.to_str().unwrap(), "--lang", lang, "--name", name, "-o", out.to_str().unwrap()])
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", model.display(), String::from_utf8_lossy(&o.stderr));
    let upper = name.to_uppercase();
    std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let file = e.file_name().to_string_lossy().replace(name, "NAME");
            (file, text.replace(&upper, "UPPER_NAME").replace(name, "NAME"))
        })
        .collect()
}

/// A path to `target` relative to `from` (both absolute).
fn relative(from: &Path, target: &Path) -> PathBuf {
    let (f, t): (Vec<_>, Vec<_>) = (from.components().collect(), target.components().collect());
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut p = PathBuf::new();
    for _ in common..f.len() {
        p.push("..");
    }
    for c in &t[common..] {
        p.push(c);
    }
    p
}

#[test]
fn same_model_same_bytes_from_any_directory_and_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b/deeper"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let mut checked = 0;
    for m in float_models() {
        let abs = std::fs::canonicalize(&m).unwrap();
        let rel = relative(&std::fs::canonicalize(&b).unwrap(), &abs);
        for lang in ["c", "rust"] {
            let first = build(&a, &abs, lang, "repro_first", &a.join(format!("out_{checked}")));
            let second = build(&b, &rel, lang, "second_repro_build", &b.join(format!("out_{checked}")));
            assert_eq!(
                first.keys().collect::<Vec<_>>(),
                second.keys().collect::<Vec<_>>(),
                "{} ({lang}): different files",
                m.display()
            );
            for (file, text) in &first {
                assert!(text == &second[file], "{} ({lang}): {file} differs between the two builds", m.display());
            }
            checked += 1;
        }
    }
    eprintln!("{checked} model/language pairs built twice, identical");
}
