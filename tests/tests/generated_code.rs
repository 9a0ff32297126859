//! Properties of the generated code itself on the real models: the Rust module builds as
//! part of a `#![no_std]` library with no dependency and is clean under clippy with
//! `-D warnings`; the C is strict C99 (`-Wall -Wextra -Werror -pedantic -Wshadow`) and
//! uses nothing from libc beyond math.h. Float, trained-sparse, int8 QDQ and ONNX
//! Runtime-quantized (QOperator and dynamic) models.

use modelless::{Config, Lang};
use modelless_e2e::model_dir;
use std::process::Command;

const MODELS: &[&str] = &[
    "digits/digits_cnn",
    "digits/digits_mlp",
    "mlperf-tiny/kws_dscnn_fp32",
    "mlperf-tiny/vww_mobilenetv1_025_fp32",
    "mlperf-tiny/ic_resnet8_fp32",
    "mlperf-tiny/ad_fc_autoencoder_fp32",
    "digits/digits_cnn_sparse80",
    "mlperf-tiny/kws_dscnn_int8",
    "mlperf-tiny/ic_resnet8_int8",
    "ort-quantized/kws_dscnn_ort_qoperator_s8",
    "ort-quantized/kws_dscnn_ort_qoperator_u8_perchannel",
    "ort-quantized/kws_dscnn_ort_dynamic_u8",
    "ort-quantized/ad_fc_autoencoder_ort_dynamic_u8",
];

#[test]
fn rust_modules_are_no_std_and_clippy_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lib = String::from("#![no_std]\n#![deny(warnings)]\n");
    for rel in MODELS {
        let c = Config::new().lang(Lang::Rust).compile(model_dir(rel).join("model.onnx"), tmp.path()).unwrap();
        lib.push_str(&format!("#[path = \"{0}.rs\"]\npub mod {0};\n", c.name));
    }
    let lib_rs = tmp.path().join("lib.rs");
    std::fs::write(&lib_rs, lib).unwrap();
    let out = Command::new("clippy-driver")
        .args(["--edition", "2021", "--crate-type", "lib", "--emit=metadata", "-D", "warnings", "-D", "clippy::all"])
        .arg("-o")
        .arg(tmp.path().join("models.rmeta"))
        .arg(&lib_rs)
        .output()
        .expect("clippy-driver must be installed (rustup component add clippy)");
    assert!(out.status.success(), "generated Rust is not clippy-clean:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn c_sources_are_strict_c99_without_libc_beyond_math() {
    let tmp = tempfile::tempdir().unwrap();
    for rel in MODELS {
        let c = Config::new().lang(Lang::C).compile(model_dir(rel).join("model.onnx"), tmp.path()).unwrap();
        let src = c.files.iter().find(|f| f.name.ends_with(".c")).unwrap();
        for banned in ["malloc", "free(", "<stdio.h>", "<string.h>", "<stdlib.h>", "memcpy"] {
            assert!(!src.contents.contains(banned), "{rel}: generated C uses {banned}");
        }
        let out = Command::new("cc")
            .args([
                "-std=c99",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-Wshadow",
                "-Wstrict-prototypes",
                "-c",
                "-o",
            ])
            .arg(tmp.path().join(format!("{}.o", c.name)))
            .arg(tmp.path().join(&src.name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{rel}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
