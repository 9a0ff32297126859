//! `modelless targets` and `modelless build --emit ...` from the command line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::path::Path;
use std::process::{Command, Output};

fn modelless(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelless")).args(args).output().unwrap()
}

fn digits() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/models/digits_cnn.onnx").to_string_lossy().into_owned()
}

#[test]
fn targets_lists_every_builtin_target() {
    let o = modelless(&["targets"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for (name, triple) in [
        ("x86_64", "x86_64-unknown-linux-gnu"),
        ("aarch64", "aarch64-unknown-linux-gnu"),
        ("riscv64", "riscv64gc-unknown-linux-gnu"),
        ("cortex-m4", "thumbv7em-none-eabihf"),
        ("cortex-m0plus", "thumbv6m-none-eabi"),
    ] {
        assert!(out.lines().any(|l| l.starts_with(name) && l.contains(triple)), "{name} missing:\n{out}");
    }
}

#[test]
fn emit_lib_prints_flash_and_ram() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lib");
    let o = modelless(&["build", &digits(), "--target", "cortex-m4", "--emit", "lib", "-o", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("flash") && text.contains("RAM"), "{text}");
    assert!(out.join("libdigits_cnn.a").is_file() && out.join("digits_cnn.h").is_file());
}

#[test]
fn emit_modes_reject_what_they_cannot_do() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let o = modelless(&["build", &digits(), "--emit", "crate", "--lang", "c", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--lang rust"));
    let o = modelless(&["build", &digits(), "--emit", "firmware", "--target", "aarch64", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no [firmware] section"));
    let o = modelless(&["build", &digits(), "--target", "sparc", "-o", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cortex-m4"), "unknown target lists the built-ins");
    assert!(!out.exists());
}
