//! Golden (insta) snapshots of the emitted C and Rust for two tiny hand-made graphs, plus
//! determinism: the same model and flags give byte-identical files. Snapshots are never
//! re-blessed in CI (`CI=true` makes insta fail on any difference).

use modelless::{Config, Lang};
use prost::Message as _;
use std::path::Path;
use tract_onnx::pb;

fn weights(n: usize, seed: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32 + seed) * 0.37).sin() * 0.5).collect()
}

fn tensor(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto { name: name.into(), dims: dims.to_vec(), data_type: 1, float_data: data, ..Default::default() }
}

fn value_info(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let shape = pb::TensorShapeProto {
        dim: dims.iter().map(|&d| Dimension { value: Some(Value::DimValue(d)), ..Default::default() }).collect(),
    };
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor { elem_type: 1, shape: Some(shape) })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 7, ints: v.to_vec(), ..Default::default() }
}

fn node(op: &str, name: &str, ins: &[&str], outs: &[&str], attribute: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

fn write_model(dir: &Path, file: &str, graph: pb::GraphProto) -> std::path::PathBuf {
    let m = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
        producer_name: "modelless-golden".into(),
        graph: Some(graph),
        ..Default::default()
    };
    let path = dir.join(file);
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    path
}

/// `y = relu(x @ W + b)`, x: 1×4, W: 4×3.
fn dense(dir: &Path) -> std::path::PathBuf {
    let graph = pb::GraphProto {
        name: "dense".into(),
        node: vec![
            node("MatMul", "fc/MatMul", &["x", "W"], &["xw"], vec![]),
            node("Add", "fc/Add", &["xw", "b"], &["z"], vec![]),
            node("Relu", "fc/Relu", &["z"], &["y"], vec![]),
        ],
        initializer: vec![tensor("W", &[4, 3], weights(12, 1.0)), tensor("b", &[3], weights(3, 2.0))],
        input: vec![value_info("x", &[1, 4])],
        output: vec![value_info("y", &[1, 3])],
        ..Default::default()
    };
    write_model(dir, "dense.onnx", graph)
}

/// Conv(3×3, pad 1) → Relu → MaxPool(2×2) → Flatten → Softmax on a 1×1×4×4 input.
fn convnet(dir: &Path) -> std::path::PathBuf {
    let graph = pb::GraphProto {
        name: "convnet".into(),
        node: vec![
            node(
                "Conv",
                "conv",
                &["x", "w", "b"],
                &["c"],
                vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])],
            ),
            node("Relu", "relu", &["c"], &["r"], vec![]),
            node("MaxPool", "pool", &["r"], &["p"], vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])]),
            node("Flatten", "flatten", &["p"], &["f"], vec![]),
            node("Softmax", "softmax", &["f"], &["y"], vec![]),
        ],
        initializer: vec![tensor("w", &[2, 1, 3, 3], weights(18, 3.0)), tensor("b", &[2], weights(2, 4.0))],
        input: vec![value_info("x", &[1, 1, 4, 4])],
        output: vec![value_info("y", &[1, 8])],
        ..Default::default()
    };
    write_model(dir, "convnet.onnx", graph)
}

/// Emitted files with the per-run temp path removed (the banner names only the file).
fn emit(model: &Path, lang: Lang) -> Vec<(String, String)> {
    let c = Config::new().lang(lang).compile_to_memory(model).unwrap();
    c.files.into_iter().filter(|f| f.name != "modelless_rt.h").map(|f| (f.name, f.contents)).collect()
}

fn snapshot(model: &Path, lang: Lang) {
    let files = emit(model, lang);
    assert_eq!(files, emit(model, lang), "output is not deterministic");
    for (name, contents) in files {
        insta::assert_snapshot!(name.replace('.', "_"), contents);
    }
}

#[test]
fn dense_c() {
    let d = tempfile::tempdir().unwrap();
    snapshot(&dense(d.path()), Lang::C);
}

#[test]
fn dense_rust() {
    let d = tempfile::tempdir().unwrap();
    snapshot(&dense(d.path()), Lang::Rust);
}

#[test]
fn convnet_c() {
    let d = tempfile::tempdir().unwrap();
    snapshot(&convnet(d.path()), Lang::C);
}

#[test]
fn convnet_rust() {
    let d = tempfile::tempdir().unwrap();
    snapshot(&convnet(d.path()), Lang::Rust);
}

/// The toy graphs also compute the right numbers (against tract), so the snapshots pin
/// correct code.
#[test]
fn toy_graphs_match_tract() {
    let d = tempfile::tempdir().unwrap();
    for model in [dense(d.path()), convnet(d.path())] {
        for lang in [Lang::C, Lang::Rust] {
            let opts = modelless::verify::VerifyOptions {
                config: Config::new(),
                langs: vec![lang],
                inputs: vec![],
                rel_tol: 1e-5,
                seed: 7,
            };
            let reports = modelless::verify::verify(&model, &opts).unwrap();
            for c in &reports[0].checks {
                assert!(c.ok(), "{} {lang:?}: {c:?}", model.display());
            }
        }
    }
}

/// Large real model: byte-identical output across runs, in both languages.
#[test]
fn real_model_output_is_deterministic() {
    let model = modelless_e2e::model_dir("mlperf-tiny/kws_dscnn_fp32").join("model.onnx");
    for lang in [Lang::C, Lang::Rust] {
        assert_eq!(emit(&model, lang), emit(&model, lang));
    }
}

/// Einsum has no float32 test in the ONNX suites (they use double): check the common forms
/// against tract on toy graphs, in C and Rust.
#[test]
fn einsum_forms_match_tract() {
    let d = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&[i64]])] = &[
        ("ij,jk->ik", &[&[2, 3], &[3, 4]]),
        ("bij,bjk->bik", &[&[2, 2, 3], &[2, 3, 4]]),
        ("ij->ji", &[&[2, 3]]),
        ("ij->i", &[&[3, 4]]),
        ("i,i->", &[&[5], &[5]]),
        ("bhid,bhjd->bhij", &[&[1, 2, 3, 4], &[1, 2, 5, 4]]),
        ("ij,kj", &[&[2, 3], &[4, 3]]),
    ];
    for (k, (eq, shapes)) in cases.iter().enumerate() {
        let names: Vec<String> = (0..shapes.len()).map(|i| format!("x{i}")).collect();
        let ins: Vec<&str> = names.iter().map(String::as_str).collect();
        let eq_attr =
            pb::AttributeProto { name: "equation".into(), r#type: 3, s: eq.as_bytes().to_vec(), ..Default::default() };
        let graph = pb::GraphProto {
            name: "einsum".into(),
            node: vec![node("Einsum", "einsum", &ins, &["y"], vec![eq_attr])],
            input: shapes.iter().zip(&names).map(|(s, n)| value_info(n, s)).collect(),
            output: vec![pb::ValueInfoProto { name: "y".into(), ..Default::default() }],
            ..Default::default()
        };
        let model = write_model(d.path(), &format!("einsum{k}.onnx"), graph);
        let opts = modelless::verify::VerifyOptions {
            config: Config::new(),
            langs: vec![Lang::C, Lang::Rust],
            inputs: vec![],
            rel_tol: 1e-5,
            seed: 3,
        };
        let reports = modelless::verify::verify(&model, &opts).unwrap_or_else(|e| panic!("{eq}: {e}"));
        for r in &reports {
            for c in &r.checks {
                assert!(c.ok(), "{eq} {:?}: {c:?}", r.lang);
            }
        }
    }
}
