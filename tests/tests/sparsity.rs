//! Sparse code generation and pruning on the real models (issue 7): the trained-sparse
//! digits CNN against its `--dense` build (weight flash, outputs, accuracy, C and Rust),
//! sparse + int8 bit-exactness (C with ASan/UBSan, Rust, simulation), the accuracy guard
//! of `--sparsity`, and the N:M / channel structure of the pruned weights.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelless::ir::{Graph, TensorData};
use modelless::ops::Op;
use modelless::passes::PruneMode;
use modelless::passes::sparsify::flash_bytes;
use modelless::{Config, Lang, PruneSettings, interp};
use modelless_e2e::model_dir;
use std::path::Path;
use std::process::Command;

const SAN: [&str; 3] = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"];

fn samples(g: &Graph) -> Vec<Vec<TensorData>> {
    modelless::int8::load_samples(&model_dir("digits/data/x_test.npy"), g).unwrap()
}

fn labels() -> Vec<i64> {
    modelless::npy::read_tensor(&model_dir("digits/data/y_test.npy")).unwrap().1.to_i64().unwrap()
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0
}

fn accuracy(outs: &[Vec<f32>], y: &[i64]) -> f64 {
    100.0 * outs.iter().zip(y).filter(|(o, l)| argmax(o) as i64 == **l).count() as f64 / y.len() as f64
}

fn sparse_ops(g: &Graph) -> usize {
    g.nodes.iter().filter(|n| matches!(n.op, Op::Sparse(_))).count()
}

/// Runs the generated code in `lang` on float samples; first output per sample.
fn run(model: &Path, cfg: &Config, lang: Lang, xs: &[Vec<TensorData>]) -> Vec<Vec<f32>> {
    let dir = tempfile::tempdir().unwrap();
    let h = modelless_e2e::build(model, cfg, lang, dir.path(), if lang == Lang::C { &SAN } else { &[] });
    let inputs: Vec<Vec<Vec<f32>>> = xs.iter().map(|s| s.iter().map(|t| t.to_f32()).collect()).collect();
    h.run(&inputs).unwrap().into_iter().map(|mut o| o.remove(0)).collect()
}

#[test]
fn trained_sparse_digits_needs_a_third_of_the_flash_and_keeps_every_output() {
    let model = model_dir("digits/digits_cnn_sparse80/model.onnx");
    let sparse_cfg = Config::new();
    let dense_cfg = Config { dense: true, ..Config::new() };
    let (gs, _) = sparse_cfg.lower(&model).unwrap();
    let (gd, _) = dense_cfg.lower(&model).unwrap();
    assert_eq!(sparse_ops(&gs), 4, "every weighted layer of the 80%-sparse model goes sparse");
    assert_eq!(sparse_ops(&gd), 0);
    let (fs, fd) = (flash_bytes(&gs), flash_bytes(&gd));
    assert!(fs * 100 <= fd * 35, "weight flash {fs} bytes is more than 35% of dense {fd}");

    let xs = samples(&gd);
    let y = labels();
    assert_eq!(xs.len(), 360);
    for lang in [Lang::C, Lang::Rust] {
        let (s, d) = (run(&model, &sparse_cfg, lang, &xs), run(&model, &dense_cfg, lang, &xs));
        for (k, (a, b)) in s.iter().zip(&d).enumerate() {
            modelless_e2e::assert_close(&format!("{lang:?} sample {k}"), a, b, 1e-5);
        }
        let (acc_s, acc_d) = (accuracy(&s, &y), accuracy(&d, &y));
        assert_eq!(acc_s, acc_d, "{lang:?}: accuracy changed");
        assert!((acc_s - 98.6).abs() < 0.1, "{lang:?}: test accuracy {acc_s:.2}%, expected 98.6%");
    }
    // The compiled objects shrink too (weights and index streams are .rodata, unrolled
    // weights are immediates in .text).
    let tmp = tempfile::tempdir().unwrap();
    let mut sizes = vec![];
    for (name, cfg) in [("s", &sparse_cfg), ("d", &dense_cfg)] {
        let c = cfg.clone().name(format!("m{name}")).compile(&model, tmp.path().join(name)).unwrap();
        let obj = tmp.path().join(format!("{name}.o"));
        let ok = Command::new("cc")
            .args(["-std=c99", "-O2", "-c", "-o"])
            .arg(&obj)
            .arg(tmp.path().join(name).join(format!("{}.c", c.name)))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        sizes.push(std::fs::metadata(&obj).unwrap().len());
    }
    assert!(sizes[0] * 2 < sizes[1], "object sizes sparse/dense: {sizes:?}");
}

#[test]
fn sparse_int8_is_bit_exact_in_c_rust_and_simulation() {
    let data = model_dir("digits/data");
    let model = model_dir("digits/digits_cnn_sparse80/model.onnx");
    let cfg = Config {
        int8: Some(modelless::Int8Config { options: Default::default(), calib: data.join("calib_x.npy") }),
        ..Config::new()
    };
    let g = cfg.lower(&model).unwrap().0;
    assert!(sparse_ops(&g) >= 3, "int8 layers of the sparse model are sparse:\n{}", modelless::ir::print_graph(&g));
    assert!(g.nodes.iter().any(|n| matches!(&n.op, Op::Sparse(s) if matches!(*s.dense, Op::QConv(_)))));
    let float = Config::new().lower(&model).unwrap().0;
    let xs = samples(&float);
    let want: Vec<Vec<u8>> = xs.iter().map(|s| interp::run(&g, s).unwrap()[0].to_le_bytes()).collect();
    let bytes: Vec<Vec<Vec<u8>>> = xs.iter().map(|s| s.iter().map(TensorData::to_le_bytes).collect()).collect();
    let dir = tempfile::tempdir().unwrap();
    for lang in [Lang::C, Lang::Rust] {
        let h = modelless_e2e::build(&model, &cfg, lang, dir.path(), if lang == Lang::C { &SAN } else { &[] });
        let got = h.run_bytes(&bytes).unwrap();
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(&g[0] == w, "{lang:?} differs from the simulation on sample {k}");
        }
    }
    // The dense int8 build gives the very same bytes (integer sums are order-independent).
    let dense = Config { dense: true, ..cfg.clone() };
    let h = modelless_e2e::build(&model, &dense, Lang::C, dir.path(), &[]);
    assert_eq!(h.run_bytes(&bytes).unwrap().into_iter().map(|mut o| o.remove(0)).collect::<Vec<_>>(), want);
    // Accuracy within a point of float.
    let y = labels();
    let outs: Vec<Vec<f32>> =
        want.iter().map(|b| TensorData::from_le_bytes(g.ty(g.outputs[0]).dtype, b).to_f32()).collect();
    let fouts: Vec<Vec<f32>> = xs.iter().map(|s| interp::run(&float, s).unwrap()[0].to_f32()).collect();
    let (a8, af) = (accuracy(&outs, &y), accuracy(&fouts, &y));
    assert!(af - a8 <= 1.0, "int8 sparse accuracy {a8:.2}% vs float {af:.2}%");
}

#[test]
fn pruning_with_the_accuracy_guard_stays_within_budget() {
    let data = model_dir("digits/data");
    let model = model_dir("digits/digits_cnn/model.onnx");
    let cfg = Config {
        prune: Some(PruneSettings {
            mode: PruneMode::Unstructured(0.8),
            keep_dense: vec![],
            data: Some(data.join("x_test.npy")),
            labels: Some(data.join("y_test.npy")),
            max_drop: Some(1.0),
        }),
        ..Config::new()
    };
    let c = cfg.compile_to_memory(&model).unwrap();
    let r = c.prune.as_ref().unwrap();
    println!("{}", r.to_text());
    let (before, after) = (r.before.unwrap(), r.after.unwrap());
    assert_eq!(r.metric, Some("accuracy"));
    assert!(before - after <= 1.0, "accuracy {before} -> {after}");
    assert!(r.sparsity() > 0.2, "pruned only {:.1}%", 100.0 * r.sparsity());
    assert!(r.layers.iter().all(|l| l.level <= 0.8 + 1e-9));
    // The generated C measures the same accuracy as the guard's simulation.
    let float = Config::new().lower(&model).unwrap().0;
    let outs = run(&model, &cfg, Lang::C, &samples(&float));
    let acc = accuracy(&outs, &labels());
    assert!((acc - after).abs() < 0.3, "generated code {acc:.2}% vs guard {after:.2}%");
}

fn weights(g: &Graph, node: &str) -> (Vec<usize>, Vec<f32>) {
    let n = g.nodes.iter().find(|n| n.name == node).unwrap();
    let w = n.inputs[1];
    (g.ty(w).shape.clone(), g.data(w).unwrap().to_f32())
}

#[test]
fn structured_2_4_leaves_exactly_two_zeros_in_every_four_input_channels() {
    let model = model_dir("digits/digits_cnn/model.onnx");
    let cfg = Config {
        prune: Some(PruneSettings {
            mode: PruneMode::parse("structured:2:4").unwrap(),
            keep_dense: vec!["conv_2".into()],
            data: None,
            labels: None,
            max_drop: None,
        }),
        dense: true,
        ..Config::new()
    };
    let (g, _) = cfg.lower(&model).unwrap();
    // conv_5: [32, 16, 3, 3], groups of 4 input channels at each kernel position.
    let (s, w) = weights(&g, "conv_5");
    let (m, c, khw) = (s[0], s[1], s[2] * s[3]);
    for oc in 0..m {
        for pos in 0..khw {
            for g0 in (0..c).step_by(4) {
                let z = (g0..g0 + 4).filter(|&ic| w[(oc * c + ic) * khw + pos] == 0.0).count();
                assert_eq!(z, 2, "conv_5 oc {oc} pos {pos} channels {g0}..");
            }
        }
    }
    // gemm_8 (transB): [10, 128] rows, groups along k.
    let (s, w) = weights(&g, "gemm_8");
    for r in 0..s[0] {
        for g0 in (0..s[1]).step_by(4) {
            assert_eq!((g0..g0 + 4).filter(|&k| w[r * s[1] + k] == 0.0).count(), 2);
        }
    }
    // --keep-dense and the 1-channel first layer stay dense.
    for n in ["conv_2", "conv_0"] {
        assert!(weights(&g, n).1.iter().all(|&v| v != 0.0), "{n} was pruned");
    }
}

#[test]
fn channel_pruning_zeroes_whole_output_channels() {
    let model = model_dir("digits/digits_cnn/model.onnx");
    let mut cfg = Config { dense: true, ..Config::new() };
    cfg.prune = Some(PruneSettings {
        mode: PruneMode::parse("channel:0.5").unwrap(),
        keep_dense: vec![],
        data: None,
        labels: None,
        max_drop: None,
    });
    let (g, _) = cfg.lower(&model).unwrap();
    let (s, w) = weights(&g, "conv_2");
    let per = w.len() / s[0];
    let dead = w.chunks(per).filter(|ch| ch.iter().all(|&v| v == 0.0)).count();
    let live = w.chunks(per).filter(|ch| ch.iter().all(|&v| v != 0.0)).count();
    assert_eq!((dead, live), (s[0] / 2, s[0] / 2));
}

/// Sparse modules (float CSR + unrolled, int8) are `no_std`, clippy-clean Rust and strict
/// C99.
#[test]
fn sparse_code_is_clippy_clean_and_strict_c99() {
    let data = model_dir("digits/data");
    let model = model_dir("digits/digits_cnn_sparse80/model.onnx");
    let mlp = model_dir("digits/digits_mlp/model.onnx");
    let int8 = Config {
        int8: Some(modelless::Int8Config { options: Default::default(), calib: data.join("calib_x.npy") }),
        ..Config::new()
    };
    let pruned = Config {
        prune: Some(PruneSettings {
            mode: PruneMode::Unstructured(0.97),
            keep_dense: vec![],
            data: None,
            labels: None,
            max_drop: None,
        }),
        ..Config::new()
    };
    let flat = Config {
        int8: Some(modelless::Int8Config { options: Default::default(), calib: data.join("x_test_flat.npy") }),
        ..pruned.clone()
    };
    let builds =
        [("sp_f32", &model, Config::new()), ("sp_i8", &model, int8), ("mlp_p", &mlp, pruned), ("mlp_p8", &mlp, flat)];
    let tmp = tempfile::tempdir().unwrap();
    let mut lib = String::from("#![no_std]\n#![deny(warnings)]\n");
    for (name, m, cfg) in &builds {
        let c = cfg.clone().lang(Lang::Rust).name(*name).compile(m, tmp.path()).unwrap();
        assert!(sparse_ops(&c.graph) > 0, "{name} has no sparse layer");
        lib.push_str(&format!("#[path = \"{name}.rs\"]\npub mod {name};\n"));
        let cdir = tmp.path().join(format!("c_{name}"));
        let cc = cfg.clone().lang(Lang::C).name(*name).compile(m, &cdir).unwrap();
        let src = cdir.join(format!("{}.c", cc.name));
        let out = Command::new("cc")
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-c", "-o"])
            .arg(cdir.join("m.o"))
            .arg(&src)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let lib_rs = tmp.path().join("lib.rs");
    std::fs::write(&lib_rs, lib).unwrap();
    let out = Command::new("clippy-driver")
        .args(["--edition", "2021", "--crate-type", "lib", "--emit=metadata", "-D", "warnings", "-D", "clippy::all"])
        .arg("-o")
        .arg(tmp.path().join("models.rmeta"))
        .arg(&lib_rs)
        .output()
        .expect("clippy-driver must be installed");
    assert!(out.status.success(), "generated Rust is not clippy-clean:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// The cost model weighs sparse code against the target's dense kernels: VWW int8's
/// trained-sparse 1×1 layers go sparse on `x86_64` (int16 pairs) below 60% density, but on
/// `x86_64-avx512` (byte quads, about twice as fast dense) only below 30%.
#[test]
fn sparse_choice_follows_the_dense_kernels_of_the_target() {
    let model = model_dir("mlperf-tiny/vww_mobilenetv1_025_int8/model.onnx");
    let densities = |target: &str| -> Vec<f64> {
        let cfg = Config::new().target(modelless::target::TargetDesc::load(target).unwrap());
        let g = cfg.lower(&model).unwrap().0;
        g.nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Sparse(s) => Some(s.csr.density()),
                _ => None,
            })
            .collect()
    };
    let (pairs, quads) = (densities("x86_64"), densities("x86_64-avx512"));
    assert!(pairs.iter().all(|&d| d <= modelless::passes::sparsify::MAX_DENSITY), "{pairs:?}");
    assert!(quads.iter().all(|&d| d <= modelless::passes::sparsify::MAX_DENSITY_DOT4), "{quads:?}");
    assert!(pairs.iter().any(|&d| d > modelless::passes::sparsify::MAX_DENSITY_DOT4), "{pairs:?}");
    assert_eq!(quads.len() + 1, pairs.len(), "one layer (36% dense) changes sides: {pairs:?} / {quads:?}");
}
