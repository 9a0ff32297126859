//! Cross targets: every float model in ../shared/models/{digits,mlperf-tiny}, generated as C
//! and as Rust, cross-compiled for aarch64 and riscv64 Linux and run under qemu-user, must
//! match ONNX Runtime's expected outputs within `1e-4 · max(1, max |ref|)`. Missing cross
//! toolchains make these tests fail (`.ci/run` installs them), never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelless::target::TargetDesc;
use modelless::toolchain::{self, IoSig};
use modelless::{Config, Lang};
use modelless_e2e::{assert_close, model_dir, test_sets};

const TOL: f32 = 1e-4;
const LINUX_TARGETS: [&str; 2] = ["aarch64", "riscv64"];

/// Compiles `rel` once per language, then builds and runs it for every Linux cross target.
fn cross_check(rel: &str) {
    let dir = model_dir(rel);
    let model = dir.join("model.onnx");
    let sets = test_sets(&dir);
    let samples: Vec<Vec<Vec<f32>>> = sets.iter().map(|s| s.inputs.iter().map(|(_, d)| d.clone()).collect()).collect();
    for lang in [Lang::C, Lang::Rust] {
        let compiled = Config::new().lang(lang).compile_to_memory(&model).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let sig = IoSig::of(&compiled.graph);
        for t in LINUX_TARGETS {
            let target = TargetDesc::load(t).unwrap();
            let tmp = tempfile::tempdir().unwrap();
            let h = match lang {
                Lang::C => toolchain::build_c(tmp.path(), &compiled.name, &compiled.files, &sig, &target, &[]),
                Lang::Rust => toolchain::build_rust(tmp.path(), &compiled.name, &compiled.files, &sig, &target),
            }
            .unwrap_or_else(|e| panic!("{rel} {lang:?} {t}: {e}"));
            let got = h.run(&samples).unwrap_or_else(|e| panic!("{rel} {lang:?} {t}: {e}"));
            for (set, outs) in sets.iter().zip(&got) {
                assert_eq!(outs.len(), set.outputs.len());
                for (i, (g, (_, want))) in outs.iter().zip(&set.outputs).enumerate() {
                    assert_close(&format!("{rel} {lang:?} {t} {} output {i}", set.name), g, want, TOL);
                }
            }
        }
    }
}

#[test]
fn qemu_user_digits_cnn() {
    cross_check("digits/digits_cnn");
}

#[test]
fn qemu_user_digits_cnn_sparse80() {
    cross_check("digits/digits_cnn_sparse80");
}

#[test]
fn qemu_user_digits_mlp() {
    cross_check("digits/digits_mlp");
}

#[test]
fn qemu_user_kws_dscnn() {
    cross_check("mlperf-tiny/kws_dscnn_fp32");
}

#[test]
fn qemu_user_vww_mobilenetv1() {
    cross_check("mlperf-tiny/vww_mobilenetv1_025_fp32");
}

#[test]
fn qemu_user_ic_resnet8() {
    cross_check("mlperf-tiny/ic_resnet8_fp32");
}

#[test]
fn qemu_user_ad_fc_autoencoder() {
    cross_check("mlperf-tiny/ad_fc_autoencoder_fp32");
}
