//! `--int8` on the command line: post-training quantization of a real model, the drift
//! report (text and JSON), `--max-drift` refusing to write, `--keep-float`, and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn digits(rel: &str) -> PathBuf {
    let dir = std::env::var_os("MODELLESS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(dir.join("models").is_dir(), "shared material missing at {}", dir.display());
    dir.join("models/digits").join(rel)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelless")).args(args).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn build_int8_writes_code_and_the_drift_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, calib) = (digits("digits_cnn/model.onnx"), digits("data/calib_x.npy"));
    let (x, y) = (digits("data/x_test.npy"), digits("data/y_test.npy"));
    let out = tmp.path().join("out");
    let json = tmp.path().join("drift.json");
    let o = run(&[
        "build",
        s(&m),
        "--int8",
        "--calib",
        s(&calib),
        "--data",
        s(&x),
        "--labels",
        s(&y),
        "--probes",
        "4",
        "--report",
        s(&json),
        "--max-drift",
        "0.05",
        "-o",
        s(&out),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    for needle in ["top-1 agreement float/int8", "accuracy: float", "per-layer SQNR", "gap_search", "conv_2"] {
        assert!(stdout.contains(needle), "{needle:?} missing from:\n{stdout}");
    }
    assert!(out.join("digits_cnn.c").exists());
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["samples"], 360);
    let acc = r["int8_accuracy"].as_f64().unwrap();
    assert!(acc > 0.97, "{acc}");
    assert_eq!(r["probes"].as_array().unwrap().len(), 5);
    // The integer model holds no float kernel beyond the edges.
    let c = std::fs::read_to_string(out.join("digits_cnn.c")).unwrap();
    assert!(c.contains("int8_t"), "no int8 code");
}

#[test]
fn max_drift_exceeded_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, calib, x) = (digits("digits_cnn/model.onnx"), digits("data/calib_x.npy"), digits("data/x_test.npy"));
    let out = tmp.path().join("out");
    // One test sample of 360 changes class under int8: a zero budget must refuse the build.
    let o = run(&[
        "build",
        s(&m),
        "--int8",
        "--calib",
        s(&calib),
        "--data",
        s(&x),
        "--probes",
        "0",
        "--max-drift",
        "0",
        "-o",
        s(&out),
    ]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("DRIFT LIMIT EXCEEDED"), "{stdout}");
    assert!(stderr.contains("nothing written"), "{stderr}");
    assert!(!out.exists(), "output written despite --max-drift");
}

#[test]
fn keep_float_leaves_the_named_layer_in_float() {
    let (m, calib) = (digits("digits_cnn/model.onnx"), digits("data/calib_x.npy"));
    let o = run(&["inspect", s(&m), "--int8", "--calib", s(&calib), "--keep-float", "conv_2"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let line = stdout.lines().find(|l| l.contains(" conv_2 ")).unwrap();
    assert!(line.contains(" Conv "), "{line}");
    assert!(stdout.lines().any(|l| l.contains(" conv_0 ") && l.contains("QConv")), "{stdout}");
    let o = run(&["inspect", s(&m), "--int8", "--calib", s(&calib), "--keep-float", "no_such_node"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("--keep-float \"no_such_node\": no such node"), "{}", text(&o).1);
}

#[test]
fn bad_calibration_data_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let m = digits("digits_cnn/model.onnx");
    // The labels (360 values) are not a whole number of 64-value samples.
    let bad = digits("data/y_test.npy");
    let o = run(&["build", s(&m), "--int8", "--calib", s(&bad), "-o", s(&tmp.path().join("o"))]);
    let (_, stderr) = text(&o);
    assert_ne!(o.status.code(), Some(0));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("y_test.npy"), "{stderr}");
    let o = run(&["build", s(&m), "--int8", "-o", s(&tmp.path().join("o"))]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).1.contains("--calib"), "{}", text(&o).1);
    assert!(!tmp.path().join("o").exists());
}
