//! Cross targets: every float model in ../shared/models/{digits,mlperf-tiny}, generated as C
//! and as Rust, cross-compiled for aarch64 and riscv64 Linux and run under qemu-user, must
//! match ONNX Runtime's expected outputs within `1e-4 · max(1, max |ref|)`. Missing cross
//! toolchains make these tests fail (`.ci/run` installs them), never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelless::cross;
use modelless::ir::TensorData;
use modelless::target::TargetDesc;
use modelless::toolchain::{self, IoSig};
use modelless::{Config, Lang, Opt, interp};
use modelless_e2e::{assert_close, int8_inputs, model_dir, simulate, test_sets};
use std::time::Duration;

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

/// Builds the model into a Cortex-M4 firmware image with every test set's inputs baked in,
/// boots it in qemu-system-arm (mps2-an386, semihosting) and compares the printed outputs.
fn firmware_check(rel: &str, lang: Lang, target: &str) -> modelless::cross::SizeReport {
    firmware_check_opt(rel, lang, target, Opt::Speed)
}

/// [`firmware_check`] with the speed or the size kernels.
fn firmware_check_opt(rel: &str, lang: Lang, target: &str, opt: Opt) -> modelless::cross::SizeReport {
    let dir = model_dir(rel);
    let sets = test_sets(&dir);
    let samples: Vec<Vec<Vec<f32>>> = sets.iter().map(|s| s.inputs.iter().map(|(_, d)| d.clone()).collect()).collect();
    let target = TargetDesc::load(target).unwrap();
    let compiled =
        Config::new().lang(lang).target(target.clone()).opt(opt).compile_to_memory(&dir.join("model.onnx")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let img = match lang {
        Lang::C => cross::build_firmware(tmp.path(), &compiled, &samples, &target),
        Lang::Rust => cross::build_rust_firmware(tmp.path(), &compiled, &samples, &target),
    }
    .unwrap_or_else(|e| panic!("{rel} {lang:?}: {e}"));
    let text =
        cross::run_firmware(&img.elf, &target, Duration::from_secs(300)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let got = cross::parse_firmware_output(&text).unwrap();
    assert_eq!(got.len(), sets.len(), "{rel}: samples printed\n{text}");
    for (set, outs) in sets.iter().zip(&got) {
        assert_eq!(outs.len(), set.outputs.len());
        for (i, (g, (_, want))) in outs.iter().zip(&set.outputs).enumerate() {
            assert_close(&format!("{rel} {} {lang:?} firmware {} output {i}", target.name, set.name), g, want, TOL);
        }
    }
    // Weights are const: they must sit in flash, not be copied to RAM.
    assert!(img.size.data < 8 * 1024, "{rel}: {} bytes of .data", img.size.data);
    assert!(img.size.bss >= compiled.plan.arena_bytes as u64, "{rel}: the arena lives in .bss");
    eprintln!("{rel} {} {lang:?} --opt {} firmware: {}", target.name, opt.name(), img.size);
    img.size
}

#[test]
fn cortex_m4_firmware_digits_cnn() {
    let size = firmware_check("digits/digits_cnn", Lang::C, "cortex-m4");
    assert!(size.flash() < 256 * 1024, "{size}");
}

/// With `--opt size` too: the same outputs from less flash.
#[test]
fn cortex_m4_firmware_kws_dscnn() {
    speed_and_size_firmware("mlperf-tiny/kws_dscnn_fp32", Lang::C);
}

fn speed_and_size_firmware(rel: &str, lang: Lang) {
    let speed = firmware_check_opt(rel, lang, "cortex-m4", Opt::Speed);
    let size = firmware_check_opt(rel, lang, "cortex-m4", Opt::Size);
    assert!(size.flash() < speed.flash(), "{rel} {lang:?}: size build {size}, speed build {speed}");
}

/// The same with the Rust backend: a `#![no_std]` `#![no_main]` firmware crate (own vector
/// table, reset handler and semihosting) depending on the emitted model crate.
#[test]
fn cortex_m4_rust_firmware_digits_cnn() {
    let size = firmware_check("digits/digits_cnn", Lang::Rust, "cortex-m4");
    assert!(size.flash() < 256 * 1024, "{size}");
}

#[test]
fn cortex_m4_rust_firmware_kws_dscnn() {
    speed_and_size_firmware("mlperf-tiny/kws_dscnn_fp32", Lang::Rust);
}

/// Soft-float images for ARMv6-M (thumbv6m: no FPU, no SIMD), booted on QEMU's micro:bit
/// (Cortex-M0, the same ISA as the M0+; 256 KB flash, 16 KB RAM).
#[test]
fn cortex_m0plus_firmware_digits_cnn_c_and_rust() {
    for lang in [Lang::C, Lang::Rust] {
        let size = firmware_check("digits/digits_cnn", lang, "cortex-m0plus");
        assert!(size.flash() < 256 * 1024 && size.ram() < 16 * 1024, "{lang:?}: {size}");
    }
}

/// The emitted no_std crate builds with cargo for both Cortex-M triples (thumbv7em with FPU,
/// thumbv6m without), and the C static library builds with arm-none-eabi-gcc.
#[test]
fn no_std_crate_and_c_lib_build_for_cortex_m() {
    let model = model_dir("mlperf-tiny/kws_dscnn_fp32").join("model.onnx");
    let rust = Config::new().lang(Lang::Rust).compile_to_memory(&model).unwrap();
    let c = Config::new().lang(Lang::C).compile_to_memory(&model).unwrap();
    let weights = rust.graph.weight_bytes() as u64;
    for t in ["cortex-m4", "cortex-m0plus"] {
        let target = TargetDesc::load(t).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let crate_dir = tmp.path().join("crate");
        for f in cross::crate_files(&rust).unwrap() {
            let p = crate_dir.join(&f.name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f.contents).unwrap();
        }
        let (rlib, size) =
            cross::build_rust_lib(&crate_dir, &rust.name, &target).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(rlib.is_file());
        assert!(size.text >= weights && size.ram() == 0, "{t} rust: {size} (weights {weights})");
        let cdir = tmp.path().join("c");
        std::fs::create_dir_all(&cdir).unwrap();
        for f in &c.files {
            std::fs::write(cdir.join(&f.name), &f.contents).unwrap();
        }
        let (lib, size) = cross::build_c_lib(&cdir, &c.name, &c.files, &target).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(lib.is_file());
        assert!(size.text >= weights && size.ram() == 0, "{t} C: {size} (weights {weights})");
    }
}

/// A missing cross toolchain is a clear error naming what to install.
#[test]
fn missing_toolchain_names_the_package() {
    let mut t = TargetDesc::load("aarch64").unwrap();
    t.c.compiler = "modelless-no-such-gcc".into();
    t.c.package = "gcc-no-such-arch".into();
    let err = toolchain::require_c(&t).unwrap_err().to_string();
    assert!(err.contains("apt-get install gcc-no-such-arch"), "{err}");
    t.rust.triple = "mips64-unknown-linux-gnuabi64".into();
    let err = toolchain::require_rust(&t).unwrap_err().to_string();
    assert!(err.contains("rustup target add mips64-unknown-linux-gnuabi64"), "{err}");
    let m4 = TargetDesc::load("cortex-m4").unwrap();
    let err = toolchain::require_runner(&m4).unwrap_err().to_string();
    assert!(err.contains("--emit firmware"), "{err}");
    let status = cross::toolchain_status(&t);
    assert!(status.contains("gcc-no-such-arch") && status.contains("rustup target add"), "{status}");
    for name in TargetDesc::builtin_names() {
        let t = TargetDesc::load(name).unwrap();
        assert_eq!(cross::toolchain_status(&t), "installed", "{name}: CI installs every toolchain");
    }
}

/// The int8 kernels' SIMD helpers (`modelless_rt.h`: NEON on aarch64, the portable C on
/// riscv64, VPDPWSSD and VPDPBUSD on x86_64-avx512 where the host has it) give exactly the
/// compiler's int8 simulation on the pre-quantized MLPerf Tiny models: dense, strided,
/// pointwise, depthwise, sparse and fully connected int8 layers.
#[test]
fn qemu_user_int8_c_is_bit_exact() {
    for m in ["kws_dscnn_int8", "ic_resnet8_int8", "vww_mobilenetv1_025_int8"] {
        let dir = model_dir(&format!("mlperf-tiny/{m}"));
        let compiled = Config::new().lang(Lang::C).compile_to_memory(&dir.join("model.onnx")).unwrap();
        let g = &compiled.graph;
        let inputs = int8_inputs(&dir, g);
        let want = simulate(g, &inputs);
        let sig = IoSig::of(g);
        // The AVX-512 VNNI build runs natively, where the host has the instructions.
        let vnni = std::arch::is_x86_feature_detected!("avx512vnni") && std::arch::is_x86_feature_detected!("avx512vl");
        if !vnni {
            eprintln!("{m}: host without AVX-512 VNNI, x86_64-avx512 not run");
        }
        // Each target runs its own code; the code for x86_64-avx512 (byte-quad kernels,
        // `mlrt_dot4`) also runs everywhere else, through the helpers' portable paths.
        let quads = TargetDesc::load("x86_64-avx512").unwrap();
        let mut runs: Vec<(TargetDesc, TargetDesc)> = vec![];
        for t in ["x86_64"].into_iter().chain(LINUX_TARGETS).chain(vnni.then_some("x86_64-avx512")) {
            let target = TargetDesc::load(t).unwrap();
            runs.push((target.clone(), target.clone()));
            if target.name != quads.name {
                runs.push((quads.clone(), target));
            }
        }
        for (source, target) in runs {
            let (s, t) = (&source.name, &target.name);
            let code =
                Config::new().lang(Lang::C).target(source.clone()).compile_to_memory(&dir.join("model.onnx")).unwrap();
            let tmp = tempfile::tempdir().unwrap();
            let h = toolchain::build_c(tmp.path(), &code.name, &code.files, &sig, &target, &[])
                .unwrap_or_else(|e| panic!("{m} code for {s} on {t}: {e}"));
            let got = h.run_bytes(&inputs).unwrap_or_else(|e| panic!("{m} code for {s} on {t}: {e}"));
            assert!(got == want, "{m}: the code for {s} on {t} differs from the int8 simulation");
        }
    }
}

/// The Rust int8 kernels' `core::arch` helpers (`modelless_rt::simd`: AVX2 on x86_64,
/// NEON on aarch64, the portable Rust on riscv64) give exactly the int8 simulation on the
/// pre-quantized MLPerf Tiny models (channel-pair convolutions and fully connected layers
/// with vector requantization).
#[test]
fn qemu_user_int8_rust_is_bit_exact() {
    for (m, marker) in [
        ("kws_dscnn_int8", "rt::mac_pairs4("),
        ("ic_resnet8_int8", "rt::mac_pairs4("),
        ("ad_fc_autoencoder_int8", "rt::mac_pair1("),
    ] {
        let dir = model_dir(&format!("mlperf-tiny/{m}"));
        let code = Config::new().lang(Lang::Rust).compile_to_memory(&dir.join("model.onnx")).unwrap();
        assert!(code.files.iter().any(|f| f.contents.contains(marker)), "{m}: no pair kernel");
        let g = &code.graph;
        let inputs = int8_inputs(&dir, g);
        let want = simulate(g, &inputs);
        let sig = IoSig::of(g);
        for t in ["x86_64"].into_iter().chain(LINUX_TARGETS) {
            let target = TargetDesc::load(t).unwrap();
            let tmp = tempfile::tempdir().unwrap();
            let h = toolchain::build_rust(tmp.path(), &code.name, &code.files, &sig, &target)
                .unwrap_or_else(|e| panic!("{m} Rust on {t}: {e}"));
            let got = h.run_bytes(&inputs).unwrap_or_else(|e| panic!("{m} Rust on {t}: {e}"));
            assert!(got == want, "{m}: the Rust code on {t} differs from the int8 simulation");
        }
    }
}

/// The same on Cortex-M4 (the DSP extension's `SMLAD` path): the digits CNN quantized by
/// the compiler (float I/O, int8 inside) as firmware under QEMU prints exactly the
/// simulation's outputs.
#[test]
fn cortex_m4_firmware_int8_digits_cnn_matches_simulation() {
    let data = model_dir("digits/data");
    let target = TargetDesc::load("cortex-m4").unwrap();
    let cfg = Config {
        int8: Some(modelless::Int8Config { options: Default::default(), calib: data.join("calib_x.npy") }),
        ..Config::new()
    }
    .lang(Lang::C)
    .target(target.clone());
    let compiled = cfg.compile_to_memory(&model_dir("digits/digits_cnn").join("model.onnx")).unwrap();
    let g = &compiled.graph;
    let samples: Vec<Vec<TensorData>> =
        modelless::int8::load_samples(&data.join("x_test.npy"), g).unwrap().into_iter().take(8).collect();
    let floats: Vec<Vec<Vec<f32>>> =
        samples.iter().map(|s| s.iter().map(|t| t.as_f32().unwrap().to_vec()).collect()).collect();
    let tmp = tempfile::tempdir().unwrap();
    let img = cross::build_firmware(tmp.path(), &compiled, &floats, &target).unwrap();
    let text = cross::run_firmware(&img.elf, &target, Duration::from_secs(300)).unwrap();
    let got = cross::parse_firmware_output(&text).unwrap();
    assert_eq!(got.len(), samples.len(), "{text}");
    for (k, (s, outs)) in samples.iter().zip(&got).enumerate() {
        let want = interp::run(g, s).unwrap();
        for (o, w) in outs.iter().zip(&want) {
            assert_eq!(o.as_slice(), w.as_f32().unwrap(), "sample {k}");
        }
    }
}
