//! Differential tests on the real float models in ../shared/models: the generated C (plain
//! and under ASan/UBSan) and the generated Rust, compiled and run on every shipped test
//! set, must match ONNX Runtime's expected outputs and tract within
//! `1e-4 · max(1, max |ref|)`.

use modelless::{Config, Lang};
use modelless_e2e::{TestSet, assert_close, build, model_dir, test_sets};
use std::path::Path;

const TOL: f32 = 1e-4;

fn check(rel: &str, model_file: &str, cfg: Config) {
    let dir = model_dir(rel);
    let model = dir.join(model_file);
    let sets = test_sets(&dir);
    let samples: Vec<Vec<Vec<f32>>> = sets.iter().map(|s| s.inputs.iter().map(|(_, d)| d.clone()).collect()).collect();
    let tract: Vec<Vec<(Vec<usize>, Vec<f32>)>> = sets
        .iter()
        .map(|s| modelless::reference::run_tract(&model, &s.inputs).unwrap_or_else(|e| panic!("{rel}/{}: {e}", s.name)))
        .collect();
    let builds: [(Lang, &str, &[&str]); 3] = [
        (Lang::C, "c", &[]),
        (
            Lang::C,
            "c+asan+ubsan",
            &["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"],
        ),
        (Lang::Rust, "rust", &[]),
    ];
    for (lang, label, flags) in builds {
        let tmp = tempfile::tempdir().unwrap();
        let harness = build(&model, &cfg, lang, tmp.path(), flags);
        let got = harness.run(&samples).unwrap_or_else(|e| panic!("{rel} {label}: {e}"));
        for ((set, outs), reference) in sets.iter().zip(&got).zip(&tract) {
            compare_set(rel, label, set, outs, reference);
        }
    }
}

fn compare_set(rel: &str, label: &str, set: &TestSet, outs: &[Vec<f32>], tract: &[(Vec<usize>, Vec<f32>)]) {
    assert_eq!(outs.len(), set.outputs.len(), "{rel}: output count");
    for (i, ((got, (_, want)), (_, tr))) in outs.iter().zip(&set.outputs).zip(tract).enumerate() {
        assert_close(&format!("{rel} {label} {} output {i} vs ONNX Runtime", set.name), got, want, TOL);
        assert_close(&format!("{rel} {label} {} output {i} vs tract", set.name), got, tr, TOL);
    }
}

/// `--opt size`: the compact kernels on the conv models (and the plain Rust loops).
#[test]
fn size_builds_of_the_conv_models() {
    for m in ["digits/digits_cnn", "mlperf-tiny/kws_dscnn_fp32", "mlperf-tiny/ic_resnet8_fp32"] {
        check(m, "model.onnx", Config::new().opt(modelless::Opt::Size));
    }
}

#[test]
fn digits_cnn() {
    check("digits/digits_cnn", "model.onnx", Config::new());
}

#[test]
fn digits_cnn_sparse80() {
    check("digits/digits_cnn_sparse80", "model.onnx", Config::new());
}

#[test]
fn digits_mlp() {
    check("digits/digits_mlp", "model.onnx", Config::new());
}

#[test]
fn kws_dscnn() {
    check("mlperf-tiny/kws_dscnn_fp32", "model.onnx", Config::new());
}

#[test]
fn kws_dscnn_dynamic_batch_bound_by_input_shape() {
    check(
        "mlperf-tiny/kws_dscnn_fp32",
        "model_dynamic_batch.onnx",
        Config::new().input_shape("input_1", vec![1, 49, 10, 1]),
    );
}

#[test]
fn vww_mobilenetv1() {
    check("mlperf-tiny/vww_mobilenetv1_025_fp32", "model.onnx", Config::new());
}

#[test]
fn ic_resnet8() {
    check("mlperf-tiny/ic_resnet8_fp32", "model.onnx", Config::new());
}

#[test]
fn ad_fc_autoencoder() {
    check("mlperf-tiny/ad_fc_autoencoder_fp32", "model.onnx", Config::new());
}

/// Every float model in ../shared/models is covered by a test above: a new model folder
/// makes this fail until it is added.
#[test]
fn every_float_model_is_covered() {
    let covered = [
        "digits/digits_cnn",
        "digits/digits_cnn_sparse80",
        "digits/digits_mlp",
        "mlperf-tiny/kws_dscnn_fp32",
        "mlperf-tiny/vww_mobilenetv1_025_fp32",
        "mlperf-tiny/ic_resnet8_fp32",
        "mlperf-tiny/ad_fc_autoencoder_fp32",
    ];
    for group in ["digits", "mlperf-tiny"] {
        let root = model_dir(group);
        for e in std::fs::read_dir(&root).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{group}/{name}");
            let float = e.path().join("model.onnx").exists() && !name.ends_with("_int8");
            assert!(!float || covered.contains(&rel.as_str()), "{rel} has no differential test");
        }
    }
    assert!(Path::new(&model_dir("digits/digits_cnn")).exists());
}

/// Accuracy of the generated code on the real digits test set (360 labelled samples)
/// matches the documented accuracy of the model.
#[test]
fn digits_cnn_accuracy_on_test_set() {
    let data = model_dir("digits/data");
    let x = modelless::npy::read_f32(&data.join("x_test.npy")).unwrap();
    let y = read_labels(&data.join("y_test.npy"));
    let n = x.shape[0];
    let per: usize = x.shape[1..].iter().product();
    let samples: Vec<Vec<Vec<f32>>> = x.data.chunks(per).map(|s| vec![s.to_vec()]).collect();
    let tmp = tempfile::tempdir().unwrap();
    let h = build(&model_dir("digits/digits_cnn").join("model.onnx"), &Config::new(), Lang::C, tmp.path(), &[]);
    let outs = h.run(&samples).unwrap();
    let correct = outs
        .iter()
        .zip(&y)
        .filter(|(o, label)| {
            let logits = &o[0];
            let argmax = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
            argmax as i64 == **label
        })
        .count();
    let acc = correct as f64 / n as f64;
    assert!(acc >= 0.99, "digits_cnn accuracy {acc:.4} on {n} samples, model card says 99.2%");
}

fn read_labels(path: &Path) -> Vec<i64> {
    let bytes = std::fs::read(path).unwrap();
    // .npy int64: header then little-endian values.
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + header_len]);
    assert!(header.contains("<i8"), "{}: expected int64 labels, header {header}", path.display());
    bytes[10 + header_len..].chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}
