//! `modelless bench` from the command line: the table has the modelless rows and the peers
//! with positive numbers, and a missing Python peer is a one-line install hint, not an error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared() -> PathBuf {
    let dir = std::env::var_os("MODELLESS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(dir.join("models").is_dir(), "shared material missing at {}", dir.display());
    dir
}

fn digits_mlp() -> String {
    shared().join("models/digits/digits_mlp/model.onnx").to_str().unwrap().to_string()
}

fn bench(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelless"));
    cmd.arg("bench").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The numeric cells of the table row that starts with `system`.
fn row(stdout: &str, system: &str) -> Vec<f64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(system) && !l[system.len()..].trim_start().starts_with("skipped"))
        .unwrap_or_else(|| panic!("no timed row {system:?} in:\n{stdout}"));
    line[system.len()..].split_whitespace().map(|w| w.parse::<f64>().unwrap_or(f64::NAN)).collect()
}

#[test]
fn table_has_modelless_and_tract_rows_with_ratios() {
    let o = bench(&[&digits_mlp(), "--iters", "20", "--warmup", "2", "--peers", "tract"], &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    let header = out.lines().find(|l| l.starts_with("system")).unwrap_or_else(|| panic!("no header:\n{out}"));
    for col in ["median ms", "p90 ms", "ratio", "GFLOP/s", "% peak"] {
        assert!(header.contains(col), "{header}");
    }
    let mut medians = vec![];
    for system in ["modelless C", "modelless Rust", "tract 0.23"] {
        let cells = row(&out, system);
        assert_eq!(cells.len(), 5, "{system}: {cells:?}\n{out}");
        let [median, p90, ratio, gflops, peak] = cells[..] else { unreachable!() };
        assert!(median > 0.0 && median.is_finite(), "{system} median {median}\n{out}");
        assert!(p90 >= median, "{system}: p90 {p90} < median {median}\n{out}");
        assert!(ratio >= 1.0 - 1e-9 && ratio.is_finite(), "{system} ratio {ratio} (vs fastest modelless)\n{out}");
        assert!(gflops > 0.0 && peak > 0.0, "{system}: {gflops} GFLOP/s, {peak}% of peak\n{out}");
        medians.push((median, ratio));
    }
    // The ratio is the median over the fastest modelless median.
    let best = medians[0].0.min(medians[1].0);
    let (tract_ms, tract_ratio) = medians[2];
    // Medians are printed with 4 decimals: a 0.002 ms median is only known to ±2.5%.
    let printed = 0.00005 / best;
    assert!((tract_ratio - tract_ms / best).abs() <= (0.01 + printed) * tract_ratio + 0.006, "{out}");
    assert!(out.contains("GFLOP/s f32"), "peak line missing:\n{out}");
    // The L2 read rate is measured: a positive number of GB/s.
    let l2 = out.split(" GB/s L2 read").next().and_then(|h| h.rsplit(' ').next()).and_then(|v| v.parse::<f64>().ok());
    assert!(l2.is_some_and(|v| v > 0.0), "L2 read rate missing:\n{out}");
    for peer in ["ONNX Runtime", "LiteRT", "TFLM"] {
        assert!(!out.contains(peer), "{peer} was not asked for:\n{out}");
    }
}

#[test]
fn missing_python_peer_prints_the_install_hint_and_exits_0() {
    let o = bench(
        &[&digits_mlp(), "--lang", "c", "--iters", "5", "--warmup", "1", "--peers", "ort,tflm"],
        &[("MODELLESS_PYTHON", "/nonexistent/python3")],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{err}");
    let ort = out.lines().find(|l| l.starts_with("ONNX Runtime")).unwrap_or_else(|| panic!("{out}"));
    assert!(
        ort.contains("skipped") && ort.contains("pip install onnxruntime ai-edge-litert tflite-micro numpy"),
        "{ort}"
    );
    assert!(ort.contains("/nonexistent/python3"), "{ort}");
    // digits has no .tflite twin: TFLM says so.
    let tflm = out.lines().find(|l| l.starts_with("TFLM")).unwrap_or_else(|| panic!("{out}"));
    assert!(tflm.contains("skipped"), "{tflm}");
    assert!(row(&out, "modelless C")[0] > 0.0);
    assert!(!out.contains("modelless Rust"), "{out}");
}

#[test]
fn bad_usage_is_a_clear_error() {
    let o = bench(&[&digits_mlp(), "--iters", "5", "--peers", "nosuchpeer"], &[]);
    assert_eq!(o.status.code(), Some(2), "clap usage error");
    let o = bench(&[&digits_mlp(), "--lang", "c", "--input", "/nonexistent.npy", "--peers", "tract"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent.npy") && !err.contains("panicked"), "{err}");
}
