//! ONNX → IR. The only module that sees protobuf types: it decodes the model, binds
//! symbolic input dimensions, infers static shapes and lowers each ONNX node to IR ops.

mod attrs;
mod lower;

pub use lower::{OP_NOTES, SUPPORTED_OPS};
mod tensor_proto;

pub use tensor_proto::read_tensor_file;

use crate::error::{Error, Result, Unsupported};
use crate::ir::{Graph, TensorType, ValueId};
use prost::Message as _;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tract_onnx::pb;

/// How to turn the model's declared inputs into static shapes.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Explicit shapes by input name (`--input-shape NAME=1x49x10x1`).
    pub input_shapes: BTreeMap<String, Vec<usize>>,
    /// Inputs fixed at build time (`--bind-input NAME=FILE.npy`): they become constants
    /// and leave the generated API. Used for shape-like inputs (shapes, axes, scales).
    pub const_inputs: BTreeMap<String, (TensorType, crate::ir::TensorData)>,
}

/// Reads and lowers an ONNX file.
pub fn import(path: &Path, opts: &ImportOptions) -> Result<Graph> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read { path: path.into(), source })?;
    import_bytes(&bytes, path, opts)
}

/// Lowers ONNX bytes; `path` names the model in errors and locates external data.
pub fn import_bytes(bytes: &[u8], path: &Path, opts: &ImportOptions) -> Result<Graph> {
    let parse_err = |reason: String| Error::Parse { path: path.into(), reason };
    let model = pb::ModelProto::decode(bytes).map_err(|e| parse_err(format!("protobuf decoding failed ({e})")))?;
    let graph = model.graph.as_ref().ok_or_else(|| parse_err("it has no graph".into()))?;
    if model.ir_version <= 0 && model.opset_import.is_empty() {
        return Err(parse_err("it declares no IR version and no opset".into()));
    }
    let opset =
        model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(1, |o| o.version);
    let mut cx = lower::Ctx::new(opset, path.parent());

    for init in &graph.initializer {
        let (ty, data) =
            cx.load_tensor(init).map_err(|e| Error::Model(format!("initializer \"{}\": {e}", init.name)))?;
        let id = cx.g.add_const(&init.name, ty, data);
        cx.names.insert(init.name.clone(), id);
    }
    let inits: HashMap<&str, ()> = graph.initializer.iter().map(|t| (t.name.as_str(), ())).collect();
    let mut given = opts.input_shapes.clone();
    let declared: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).filter(|n| !inits.contains_key(n)).collect();
    if let Some(name) = given.keys().find(|k| !declared.contains(&k.as_str())) {
        return Err(Error::Usage(format!(
            "--input-shape names \"{name}\", which is not a model input (inputs: {})",
            declared.join(", ")
        )));
    }
    for name in opts.const_inputs.keys() {
        if !declared.contains(&name.as_str()) {
            return Err(Error::Usage(format!(
                "--bind-input names \"{name}\", which is not a model input (inputs: {})",
                declared.join(", ")
            )));
        }
    }
    for input in &graph.input {
        if inits.contains_key(input.name.as_str()) {
            continue;
        }
        if let Some((ty, data)) = opts.const_inputs.get(&input.name) {
            let declared_ty = input_type(input, Some(ty.shape.clone()))?;
            if declared_ty.dtype != ty.dtype {
                return Err(Error::Input {
                    input: input.name.clone(),
                    msg: format!("is {} but the bound value is {}", declared_ty.dtype, ty.dtype),
                });
            }
            let id = cx.g.add_const(&input.name, ty.clone(), data.clone());
            cx.names.insert(input.name.clone(), id);
            continue;
        }
        let ty = input_type(input, given.remove(&input.name))?;
        let id = cx.g.add_value(&input.name, ty);
        cx.g.inputs.push(id);
        cx.names.insert(input.name.clone(), id);
    }

    let unknown: Vec<Unsupported> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
            !default_domain || !lower::SUPPORTED_OPS.contains(&n.op_type.as_str())
        })
        .map(|(i, n)| {
            let name = if n.name.is_empty() { format!("{}#{i}", n.op_type) } else { n.name.clone() };
            let reason = (!(n.domain.is_empty() || n.domain == "ai.onnx")).then(|| format!("domain \"{}\"", n.domain));
            unsupported(&n.op_type, &name, reason)
        })
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Unsupported(unknown));
    }
    for (i, node) in graph.node.iter().enumerate() {
        cx.lower(node, i)?;
    }
    if !cx.unsupported.is_empty() {
        return Err(Error::Unsupported(cx.unsupported));
    }
    for out in &graph.output {
        let id = *cx
            .names
            .get(&out.name)
            .ok_or_else(|| Error::Model(format!("graph output \"{}\" is not produced by any node", out.name)))?;
        let v = output_value(&mut cx.g, id, &out.name);
        cx.g.outputs.push(v);
    }
    crate::ir::verify(&cx.g).map_err(Error::Model)?;
    Ok(cx.g)
}

/// Graph outputs must be computed values; a constant or input returned as output gets a
/// copy node so the caller's output buffer is always written.
fn output_value(g: &mut Graph, id: ValueId, name: &str) -> ValueId {
    if g.is_const(id) || g.is_graph_input(id) || g.is_graph_output(id) {
        let ty = g.ty(id).clone();
        let out = g.add_value(name, ty.clone());
        g.nodes.push(crate::ir::Node {
            name: format!("{name}/copy"),
            onnx_op: "Identity".into(),
            op: crate::ops::Op::Reshape(crate::ops::Reshape { shape: ty.shape }),
            inputs: vec![id],
            outputs: vec![out],
        });
        return out;
    }
    id
}

/// Static type of a graph input: declared dims, `--input-shape` overrides, and a leading
/// symbolic (batch) dim bound to 1. Anything still symbolic is an error naming the input.
fn input_type(input: &pb::ValueInfoProto, given: Option<Vec<usize>>) -> Result<TensorType> {
    use pb::tensor_shape_proto::dimension::Value as Dim;
    let err = |msg: String| Error::Input { input: input.name.clone(), msg };
    let tensor = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => t,
        _ => {
            return Err(err("is not a tensor (sequences and maps are not supported)".into()));
        }
    };
    let dtype = tensor_proto::dtype_from_onnx(tensor.elem_type).map_err(err)?;
    let declared: Option<Vec<Option<usize>>> = tensor.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(Dim::DimValue(v)) if *v >= 0 => Some(*v as usize),
                _ => None,
            })
            .collect()
    });
    let shape = match (given, declared) {
        (Some(g), Some(d)) => {
            if g.len() != d.len() {
                return Err(err(format!(
                    "--input-shape gives rank {} but the model declares rank {}",
                    g.len(),
                    d.len()
                )));
            }
            for (i, (a, b)) in g.iter().zip(&d).enumerate() {
                if let Some(b) = b
                    && a != b
                {
                    return Err(err(format!(
                        "--input-shape gives {a} for dimension {i}, but the model fixes it to {b}"
                    )));
                }
            }
            g
        }
        (Some(g), None) => g,
        (None, None) => {
            return Err(err("has no declared shape (hint: pass --input-shape NAME=DxDx...)".into()));
        }
        (None, Some(d)) => d
            .iter()
            .enumerate()
            .map(|(i, dim)| match dim {
                Some(v) => Ok(*v),
                None if i == 0 => Ok(1),
                None => Err(err(format!(
                    "dimension {i} is symbolic (hint: bind it with --input-shape {}={})",
                    input.name,
                    d.iter()
                        .enumerate()
                        .map(|(j, x)| x.map_or_else(|| if j == 0 { "1".into() } else { "?".into() }, |v| v.to_string()))
                        .collect::<Vec<_>>()
                        .join("x")
                ))),
            })
            .collect::<Result<Vec<_>>>()?,
    };
    if shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).is_none_or(|n| n > (1 << 31)) {
        return Err(err(format!("shape {shape:?} is too large")));
    }
    Ok(TensorType::new(dtype, shape))
}

/// Ensures the unsupported list names every node (used by `inspect` through `import`).
pub(crate) fn unsupported(op_type: &str, node: &str, reason: Option<String>) -> Unsupported {
    Unsupported { op_type: op_type.to_string(), node: node.to_string(), reason, needs_const: None }
}
