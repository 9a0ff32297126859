//! Reproducible builds: every model of `../shared/models/{digits,mlperf-tiny}` built twice
//! by the `modelless` binary, from different working directories (absolute vs relative
//! model and calibration paths) and with different `--name`, gives byte-identical files
//! once the name is substituted back (C and Rust): the float models, the pre-quantized
//! `*_int8` models, and `--int8 --calib` builds of the float models (digits with its
//! calibration set; the MLPerf models with their test-set inputs written to an `.npy`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::shared;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn float_models() -> Vec<PathBuf> {
    models(false)
}

/// The digits and MLPerf Tiny models, float (`int8 == false`) or pre-quantized `*_int8`.
fn models(int8: bool) -> Vec<PathBuf> {
    let mut out = vec![];
    for suite in ["digits", "mlperf-tiny"] {
        for e in std::fs::read_dir(shared().join("models").join(suite)).unwrap().flatten() {
            let m = e.path().join("model.onnx");
            let name = e.file_name().to_string_lossy().into_owned();
            if m.is_file() && name.ends_with("_int8") == int8 {
                out.push(m);
            }
        }
    }
    out.sort();
    let want = if int8 { 4 } else { 7 };
    assert!(out.len() >= want, "expected the digits and MLPerf Tiny models (int8: {int8}), found {out:?}");
    out
}

/// Builds `model` (as given, relative to `cwd`) into `out` and returns its files, with
/// `name` (and its upper-case form) replaced by a placeholder in names and contents.
fn build(cwd: &Path, model: &Path, lang: &str, name: &str, out: &Path) -> BTreeMap<String, String> {
    build_with(cwd, model, lang, name, out, &[])
}

/// [`build`] with extra arguments (e.g. `--int8 --calib X.npy`).
fn build_with(
    cwd: &Path,
    model: &Path,
    lang: &str,
    name: &str,
    out: &Path,
    extra: &[&str],
) -> BTreeMap<String, String> {
    let o = Command::new(env!("CARGO_BIN_EXE_modelless"))
        .args(["build", model.to_str().unwrap(), "--lang", lang, "--name", name, "-o", out.to_str().unwrap()])
        .args(extra)
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

/// Builds `model` twice (from `a` with absolute paths and name `repro_first`, from `b` with
/// relative paths and name `second_repro_build`) with `calib` (if any) for `--int8 --calib`,
/// and asserts the outputs are identical once the names are substituted back.
fn twice(a: &Path, b: &Path, model: &Path, calib: Option<&Path>, lang: &str, k: usize) {
    let abs = std::fs::canonicalize(model).unwrap();
    let b_abs = std::fs::canonicalize(b).unwrap();
    let rel = relative(&b_abs, &abs);
    let calib = calib.map(|c| std::fs::canonicalize(c).unwrap());
    let (ca, cb) = match &calib {
        Some(c) => (c.to_str().unwrap().to_string(), relative(&b_abs, c).to_str().unwrap().to_string()),
        None => (String::new(), String::new()),
    };
    let extra = |c: &str| -> Vec<String> {
        if calib.is_some() { vec!["--int8".into(), "--calib".into(), c.into()] } else { vec![] }
    };
    let (ea, eb) = (extra(&ca), extra(&cb));
    let ea: Vec<&str> = ea.iter().map(String::as_str).collect();
    let eb: Vec<&str> = eb.iter().map(String::as_str).collect();
    let first = build_with(a, &abs, lang, "repro_first", &a.join(format!("out_{k}")), &ea);
    let second = build_with(b, &rel, lang, "second_repro_build", &b.join(format!("out_{k}")), &eb);
    let what = format!("{} ({lang}, int8 calib {:?})", model.display(), calib.as_ref().and_then(|c| c.file_name()));
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>(), "{what}: different files");
    for (file, text) in &first {
        assert!(text == &second[file], "{what}: {file} differs between the two builds");
    }
    if calib.is_some() {
        assert!(first.values().any(|t| t.contains(" int8: calibration ")), "{what}: no int8 provenance in the banner");
    }
}

/// The inputs of every `test_data_set_*` of an MLPerf model, written as one `.npy` of N
/// samples into `dir` (the MLPerf models ship no calibration `.npy`).
fn calib_from_test_sets(model_dir: &Path, dir: &Path) -> PathBuf {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(model_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("test_data_set_"))
        .collect();
    sets.sort();
    let (mut data, mut shape) = (vec![], vec![]);
    for s in &sets {
        let (ty, t) = modelless::frontend::read_tensor_file(&s.join("input_0.pb")).unwrap();
        let modelless::ir::TensorData::F32(v) = t else { panic!("{}: float input expected", s.display()) };
        shape = ty.shape.clone();
        data.extend(v);
    }
    assert!(!sets.is_empty(), "{}: no test sets", model_dir.display());
    let n = shape.iter().product::<usize>();
    let name = model_dir.file_name().unwrap().to_string_lossy().into_owned();
    let path = dir.join(format!("{name}_calib.npy"));
    modelless::npy::write_f32(&path, &[data.len() / n, n], &data).unwrap();
    path
}

fn dirs(tmp: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (tmp.join("a"), tmp.join("b/deeper"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    (a, b)
}

/// int8: the pre-quantized MLPerf `*_int8` models, and `--int8 --calib` builds of the digits
/// models (their calibration set) and of the MLPerf autoencoder (its test-set inputs), in
/// C and Rust. (The larger MLPerf float models take ~40 s per calibrated build here; see
/// the ignored `mlperf_calibrated_int8_builds_are_reproducible`.)
#[test]
fn int8_builds_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = dirs(tmp.path());
    let digits_calib = shared().join("models/digits/data/calib_x.npy");
    let mut cases: Vec<(PathBuf, Option<PathBuf>)> = models(true).into_iter().map(|m| (m, None)).collect();
    for m in float_models() {
        let dir = m.parent().unwrap();
        if dir.parent().unwrap().ends_with("digits") {
            cases.push((m.clone(), Some(digits_calib.clone())));
        } else if dir.ends_with("ad_fc_autoencoder_fp32") {
            cases.push((m.clone(), Some(calib_from_test_sets(dir, tmp.path()))));
        }
    }
    assert!(cases.len() >= 8, "{cases:?}");
    let mut k = 0;
    for (m, calib) in &cases {
        for lang in ["c", "rust"] {
            twice(&a, &b, m, calib.as_deref(), lang, k);
            k += 1;
        }
    }
    eprintln!("{k} int8 model/language pairs built twice, identical");
}

/// `--int8 --calib` builds of the MLPerf float models (KWS, ResNet-8, VWW) calibrated on
/// their test-set inputs, C only (the quantized graph is the same for both backends):
/// minutes in the dev profile, so run on demand (`cargo test --test reproducible -- --ignored`).
#[test]
#[ignore]
fn mlperf_calibrated_int8_builds_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = dirs(tmp.path());
    let mut k = 0;
    for m in float_models() {
        let dir = m.parent().unwrap();
        if dir.parent().unwrap().ends_with("mlperf-tiny") && !dir.ends_with("ad_fc_autoencoder_fp32") {
            let calib = calib_from_test_sets(dir, tmp.path());
            twice(&a, &b, &m, Some(&calib), "c", k);
            k += 1;
        }
    }
    assert!(k >= 3);
}
