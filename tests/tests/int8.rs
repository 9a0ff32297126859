//! int8 on real models: pre-quantized models (MLPerf Tiny QDQ int8, ONNX Runtime QOperator)
//! against the shipped ONNX Runtime outputs, and the compiler's own post-training
//! quantization on the digits and MLPerf float models. The compiler's int8 simulation, the
//! generated C and the generated Rust must agree bit for bit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelless::frontend::read_tensor_file;
use modelless::ir::{Graph, TensorData};
use modelless::{Config, Lang, interp};
use modelless_e2e::model_dir;
use std::path::{Path, PathBuf};

struct Case {
    inputs: Vec<TensorData>,
    expected: TensorData,
    tflite: Option<TensorData>,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
        .collect();
    sets.sort();
    assert!(!sets.is_empty(), "{} has no test sets", dir.display());
    sets.iter()
        .map(|s| Case {
            inputs: (0..)
                .map(|i| s.join(format!("input_{i}.pb")))
                .take_while(|p| p.exists())
                .map(|p| read_tensor_file(&p).unwrap().1)
                .collect(),
            expected: read_tensor_file(&s.join("output_0.pb")).unwrap().1,
            tflite: s
                .join("ref_tflite_output_0.pb")
                .exists()
                .then(|| read_tensor_file(&s.join("ref_tflite_output_0.pb")).unwrap().1),
        })
        .collect()
}

/// Largest element difference (integers as integers, floats as floats).
fn max_diff(a: &TensorData, b: &TensorData) -> f64 {
    assert_eq!(a.len(), b.len());
    match (a.as_f32(), b.as_f32()) {
        (Some(x), Some(y)) => x.iter().zip(y).map(|(p, q)| (p - q).abs() as f64).fold(0.0, f64::max),
        _ => {
            let (x, y) = (a.to_i64().unwrap(), b.to_i64().unwrap());
            x.iter().zip(&y).map(|(p, q)| (p - q).abs() as f64).fold(0.0, f64::max)
        }
    }
}

fn lower(model: &Path) -> Graph {
    Config::new().lower(model).unwrap_or_else(|e| panic!("{}: {e}", model.display())).0
}

/// Ops of the lowered graph that compute in float (beyond the edges).
fn float_compute_ops(g: &Graph) -> Vec<String> {
    use modelless::ops::Op;
    g.nodes
        .iter()
        .filter(|n| {
            !matches!(
                n.op,
                Op::QConv(_)
                    | Op::QMatMul(_)
                    | Op::QAdd(_)
                    | Op::QPool(_)
                    | Op::QSoftmax(_)
                    | Op::Requantize(_)
                    | Op::Quantize(_)
                    | Op::Dequantize(_)
                    | Op::Reshape(_)
                    | Op::Transpose(_)
            )
        })
        .map(|n| format!("{} {}", n.op.name(), n.name))
        .collect()
}

fn check_prequantized(rel: &str, fully_integer: bool, tol: f64) {
    let dir = model_dir(rel);
    let model = dir.join("model.onnx");
    let g = lower(&model);
    if fully_integer {
        assert_eq!(float_compute_ops(&g), Vec::<String>::new(), "{rel}: float compute left");
    }
    for (k, c) in cases(&dir).iter().enumerate() {
        let got = interp::run(&g, &c.inputs).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let d = max_diff(&got[0], &c.expected);
        let t = c.tflite.as_ref().map(|t| max_diff(&got[0], t));
        eprintln!("{rel} set {k}: vs ONNX Runtime {d}, vs TFLite {t:?}");
        let ok = d <= tol || softmax_explains(&g, &c.inputs, &c.expected);
        assert!(ok, "{rel} set {k}: {d} from the ONNX Runtime output (allowed {tol})");
    }
}

/// A model ending in an int8 Softmax amplifies a 1-LSB difference of its int8 logits
/// (ONNX Runtime computes the layers before it in float, we in integers) to several LSB of
/// probability. Accepts `expected` when it is, within 1 LSB, the float softmax of our logits
/// with one logit moved by 1 LSB.
fn softmax_explains(g: &Graph, inputs: &[TensorData], expected: &TensorData) -> bool {
    use modelless::ops::Op;
    let Some(n) = g.nodes.last() else { return false };
    let Op::QSoftmax(s) = &n.op else { return false };
    let vals = interp::run_all(g, inputs).unwrap();
    let logits = vals[n.inputs[0].0].as_ref().unwrap().to_i64().unwrap();
    let q_in = g.ty(n.inputs[0]).quant.clone().unwrap();
    let q_out = g.ty(n.outputs[0]).quant.clone().unwrap();
    let want = expected.to_i64().unwrap();
    (0..logits.len()).flat_map(|i| [(i, -1), (i, 1)]).any(|(i, delta)| {
        let mut l = logits.clone();
        l[i] += delta;
        let real: Vec<f64> = l.iter().map(|&x| (x - q_in.zero_point[0] as i64) as f64 * q_in.scale[0] as f64).collect();
        let m = real.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = real.iter().map(|x| (x - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().zip(&want).all(|(e, &w)| {
            let q = ((e / sum / q_out.scale[0] as f64).round() as i64 + q_out.zero_point[0] as i64).clamp(-128, 127);
            (q - w).abs() <= 1 && s.axis + 1 == g.ty(n.outputs[0]).shape.len()
        })
    })
}

#[test]
fn mlperf_int8_qdq_models_match_onnx_runtime_within_one_lsb() {
    for m in ["kws_dscnn_int8", "vww_mobilenetv1_025_int8", "ic_resnet8_int8", "ad_fc_autoencoder_int8"] {
        check_prequantized(&format!("mlperf-tiny/{m}"), true, 1.0);
    }
}
