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
    assert_clippy_clean(tmp.path(), &lib, "models");
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
        assert_strict_c99(&tmp.path().join(&src.name), &tmp.path().join(format!("{}.o", c.name)), rel);
    }
}

/// Compiles `src` to `obj` as strict C99 with every warning an error.
fn assert_strict_c99(src: &std::path::Path, obj: &std::path::Path, what: &str) {
    let out = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wstrict-prototypes", "-c", "-o"])
        .arg(obj)
        .arg(src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

/// ONNX node tests converting to and from the low-precision types (float8, float4, E8M0,
/// int4, int2): both backends' conversion code under the same checks as the models
/// (cases whose scales are graph inputs lower to float ops without binding them).
const LOW_PRECISION_NODES: &[&str] = &[
    "test_cast_FLOAT_to_FLOAT8E4M3FN",
    "test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2",
    "test_cast_FLOAT8E5M2FNUZ_to_FLOAT16",
    "test_cast_e8m0_FLOAT_to_FLOAT8E8M0",
    "test_cast_e8m0_FLOAT8E8M0_to_FLOAT16",
    "test_cast_FLOAT_to_INT4",
    "test_cast_INT2_to_FLOAT",
    "test_cast_UINT4_to_UINT8",
    "test_cast_FLOAT16_to_UINT2",
    "test_castlike_FLOAT4E2M1_to_FLOAT16",
    "test_dequantizelinear_float4e2m1",
    "test_quantizelinear_e4m3fn",
];

#[test]
fn low_precision_conversions_are_clippy_clean_and_strict_c99() {
    let tmp = tempfile::tempdir().unwrap();
    let node = modelless_e2e::shared().join("onnx-backend/node");
    let mut lib = String::from("#![no_std]\n#![deny(warnings)]\n");
    for (i, t) in LOW_PRECISION_NODES.iter().enumerate() {
        let dir = tmp.path().join(format!("m{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let model = node.join(t).join("model.onnx");
        let c = Config::new().lang(Lang::C).compile(&model, &dir).unwrap();
        let src = c.files.iter().find(|f| f.name.ends_with(".c")).unwrap();
        assert_strict_c99(&dir.join(&src.name), &dir.join("m.o"), t);
        let r = Config::new().lang(Lang::Rust).compile(&model, &dir).unwrap();
        lib.push_str(&format!("#[path = \"m{i}/{0}.rs\"]\npub mod m{i};\n", r.name));
    }
    assert_clippy_clean(tmp.path(), &lib, "low");
}

/// Lints `lib` (a `lib.rs` of `#[path]` modules in `dir`) with clippy, denying all warnings.
fn assert_clippy_clean(dir: &std::path::Path, lib: &str, name: &str) {
    let lib_rs = dir.join("lib.rs");
    std::fs::write(&lib_rs, lib).unwrap();
    let out = Command::new("clippy-driver")
        .args(["--edition", "2021", "--crate-type", "lib", "--emit=metadata", "-D", "warnings", "-D", "clippy::all"])
        .arg("-o")
        .arg(dir.join(format!("{name}.rmeta")))
        .arg(&lib_rs)
        .output()
        .expect("clippy-driver must be installed (rustup component add clippy)");
    assert!(out.status.success(), "generated Rust is not clippy-clean:\n{}", String::from_utf8_lossy(&out.stderr));
}
