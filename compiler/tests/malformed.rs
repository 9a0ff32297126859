//! Malformed-model corpus: every `model.onnx` under `../shared/models`, truncated at many
//! offsets and with seeded random byte flips, goes through the library (and a sample through
//! the `modelless build` binary). Each case must end in a successful compile or a clean
//! error: never a panic, never a hang (time limit per case), never a partial output directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::shared;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Per-case limit; a real model compiles in well under a second in the dev profile.
const CASE_LIMIT: Duration = Duration::from_secs(20);

/// Every `model.onnx` under `shared/models`, sorted.
fn models() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| n == "model.onnx") {
                out.push(p);
            }
        }
    }
    let mut out = vec![];
    walk(&shared().join("models"), &mut out);
    out.sort();
    assert!(out.len() >= 20, "expected the shared models, found {}", out.len());
    out
}

/// SplitMix64: a tiny seeded generator so the corpus is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Truncation offsets: the first bytes one by one, then evenly spread, then the last bytes.
fn cuts(len: usize) -> Vec<usize> {
    let mut c: Vec<usize> = (0..8).collect();
    c.extend((1..24).map(|i| len * i / 24));
    c.extend((1..4).map(|k| len - k));
    c.retain(|&x| x < len);
    c.sort_unstable();
    c.dedup();
    c
}

/// `n` mutants of `bytes`: 1 to 8 random bytes replaced (some in the first 64 bytes, where
/// the graph's structure usually starts, the rest anywhere).
fn flips(bytes: &[u8], seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let mut b = bytes.to_vec();
            for _ in 0..1 + rng.below(8) {
                let at = if i % 4 == 0 { rng.below(b.len().min(64)) } else { rng.below(b.len()) };
                b[at] = match rng.below(3) {
                    0 => b[at] ^ (1 << rng.below(8)),
                    1 => 0xff,
                    _ => rng.next() as u8,
                };
            }
            b
        })
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    ok: usize,
    errors: usize,
    failures: Vec<String>,
}

/// Compiles each case in a worker thread (catching panics) with a time limit.
fn run_library(label: &str, model: &Path, cases: Vec<Vec<u8>>, tally: &mut Tally) {
    let path = model.to_path_buf();
    let n = cases.len();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (i, bytes) in cases.into_iter().enumerate() {
            let p = path.clone();
            let r = std::panic::catch_unwind(move || {
                // Half the cases emit Rust, except for big models (Rust emission is the slow part).
                let rust = i % 2 == 1 && bytes.len() < 200_000;
                let lang = if rust { modelless::Lang::Rust } else { modelless::Lang::C };
                modelless::Config::new().lang(lang).compile_bytes(&bytes, &p).map(|_| ()).map_err(|e| e.to_string())
            });
            if tx.send(r).is_err() {
                return;
            }
        }
    });
    for i in 0..n {
        tally.cases += 1;
        match rx.recv_timeout(CASE_LIMIT) {
            Ok(Ok(Ok(()))) => tally.ok += 1,
            Ok(Ok(Err(msg))) => {
                tally.errors += 1;
                assert!(!msg.is_empty(), "{label} #{i}: empty error message");
            }
            Ok(Err(_)) => tally.failures.push(format!("{label} #{i} of {}: panic", model.display())),
            Err(_) => {
                tally.failures.push(format!("{label} #{i} of {}: no answer within {CASE_LIMIT:?}", model.display()));
                return;
            }
        }
    }
}

fn report(what: &str, t: &Tally, started: Instant) {
    eprintln!(
        "{what}: {} cases, {} built, {} clean errors, {} failures, {:.1} s",
        t.cases,
        t.ok,
        t.errors,
        t.failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(t.failures.is_empty(), "{what}: {} failures:\n{}", t.failures.len(), t.failures.join("\n"));
}

#[test]
fn truncated_models_fail_cleanly() {
    let started = Instant::now();
    let mut t = Tally::default();
    for m in models() {
        let bytes = std::fs::read(&m).unwrap();
        let cases = cuts(bytes.len()).into_iter().map(|c| bytes[..c].to_vec()).collect();
        run_library("truncated", &m, cases, &mut t);
    }
    report("truncated", &t, started);
}

#[test]
fn byte_flipped_models_fail_cleanly_or_build() {
    let started = Instant::now();
    let mut t = Tally::default();
    for (k, m) in models().into_iter().enumerate() {
        let bytes = std::fs::read(&m).unwrap();
        // Fewer mutants of the big models: a mutant that still parses compiles in full.
        let n = if bytes.len() > 200_000 { 8 } else { 24 };
        run_library("flipped", &m, flips(&bytes, 0x5eed + k as u64, n), &mut t);
    }
    report("flipped", &t, started);
}

/// Runs `modelless build` with a time limit; returns (exit code, stderr).
fn cli_build(model: &Path, out: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelless"))
        .args(["build", model.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.code(), err);
        }
        if t0.elapsed() > CASE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return (None, format!("killed after {CASE_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn cli_sample_fails_cleanly_without_partial_output() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Tally::default();
    for (k, m) in models().into_iter().enumerate() {
        let bytes = std::fs::read(&m).unwrap();
        let mut cases: Vec<Vec<u8>> = [bytes.len() / 3, bytes.len() - 1].iter().map(|&c| bytes[..c].to_vec()).collect();
        cases.extend(flips(&bytes, 0xc11 + k as u64, 2));
        for (i, case) in cases.iter().enumerate() {
            t.cases += 1;
            let dir = tmp.path().join(format!("m{k}_{i}"));
            std::fs::create_dir(&dir).unwrap();
            let f = dir.join("model.onnx");
            std::fs::write(&f, case).unwrap();
            let out = dir.join("out");
            let (code, err) = cli_build(&f, &out);
            let left: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "model.onnx" && n != "out")
                .collect();
            let what = format!("cli case {i} of {}", m.display());
            match code {
                Some(0) => {
                    t.ok += 1;
                    let files: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().collect();
                    let names: Vec<String> =
                        files.iter().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                    if !(names.iter().any(|n| n.ends_with(".c")) && names.iter().any(|n| n.ends_with(".h"))) {
                        t.failures.push(format!("{what}: success but incomplete output {names:?}"));
                    }
                }
                Some(1 | 2) => {
                    t.errors += 1;
                    if out.exists() {
                        t.failures.push(format!("{what}: failed but left {}", out.display()));
                    }
                    if err.contains("panicked") || !err.starts_with("error: ") {
                        t.failures.push(format!("{what}: unclean error: {err}"));
                    }
                }
                _ => t.failures.push(format!("{what}: exit {code:?}: {err}")),
            }
            if !left.is_empty() {
                t.failures.push(format!("{what}: left behind {left:?}"));
            }
        }
    }
    report("cli", &t, started);
}
