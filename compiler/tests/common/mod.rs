//! Hand-built ONNX models for the bad-input tests (limits, error catalogue).

#![allow(dead_code)]
use prost::Message as _;
use tract_onnx::pb;

/// An int64 1-D initializer.
pub fn ints(name: &str, v: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: 7,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

/// A float initializer of shape `dims` (the data may deliberately not match).
pub fn floats(name: &str, dims: &[i64], v: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: v.to_vec(),
        ..Default::default()
    }
}

/// A float graph input with fixed dims.
pub fn input(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims.iter().map(|&d| Dimension { value: Some(Value::DimValue(d)), ..Default::default() }).collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn node(op: &str, inputs: &[&str], output: &str) -> pb::NodeProto {
    pb::NodeProto {
        name: format!("{op}_node"),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

/// `node` with integer-list attributes.
pub fn node_ints(op: &str, inputs: &[&str], output: &str, attrs: &[(&str, &[i64])]) -> pb::NodeProto {
    let mut n = node(op, inputs, output);
    n.attribute = attrs
        .iter()
        .map(|(k, v)| pb::AttributeProto { name: k.to_string(), r#type: 7, ints: v.to_vec(), ..Default::default() })
        .collect();
    n
}

/// An opset-13 model with graph output `y`.
pub fn model(inputs: Vec<pb::ValueInfoProto>, nodes: Vec<pb::NodeProto>, inits: Vec<pb::TensorProto>) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
        graph: Some(pb::GraphProto {
            name: "handmade".into(),
            node: nodes,
            initializer: inits,
            input: inputs,
            output: vec![pb::ValueInfoProto { name: "y".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The shared real material: `../shared` next to the repository, or `$MODELLESS_SHARED`.
/// Missing material fails the test rather than skipping it.
pub fn shared() -> std::path::PathBuf {
    let dir = std::env::var_os("MODELLESS_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(dir.join("models").is_dir(), "shared material missing at {}", dir.display());
    dir
}
