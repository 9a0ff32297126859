//! The reference interpreter of the IR: evaluates a [`Graph`] node by node on concrete inputs.
//!
//! Three users: int8 calibration (run the float graph on calibration data and record every
//! intermediate value, [`run_all`]), the float-vs-int8 drift report (per-layer comparison of
//! two runs) and, for the integer ops, *the* definition of the compiler's int8 simulation.
//!
//! - **Float ops** are plain `f32` arithmetic accumulated in the natural loop order of the
//!   generated kernels (bias first, then input channels, kernel rows, kernel columns); they
//!   agree with the generated float code to rounding, not bit for bit.
//! - **Integer ops** (`ops::quant`) are evaluated exactly as documented there, through the very
//!   helpers the generated code embeds or mirrors (`modelless_rt::requant`, `quantize`,
//!   [`Requant::apply`](crate::ops::Requant::apply), [`QAdd::apply`](crate::ops::QAdd::apply),
//!   [`QSoftmax::row`](crate::ops::QSoftmax::row)), so the simulation is bit-exact with the
//!   generated C and Rust. int32 accumulation wraps (`wrapping_add`/`wrapping_mul`): identical
//!   to plain arithmetic whenever nothing overflows (every valid model), and never a panic.
//!
//! Written for clarity, not speed: one small function per op, elements addressed through
//! row-major strides ([`strides_of`], [`for_each_index`]).

mod float;
pub mod grad;
mod movement;
mod quant;
mod sparse;
#[cfg(test)]
mod tests;
mod topk;

use crate::ir::{DType, Graph, Node, TensorData, TensorType};
use crate::ops::Op;
pub use crate::ops::strides_of;

/// Evaluates `g` on `inputs` (one tensor per graph input, in order) and returns every value,
/// indexed by `ValueId.0`: constants, graph inputs and node outputs (`None` for values no
/// node computes).
pub fn run_all(g: &Graph, inputs: &[TensorData]) -> Result<Vec<Option<TensorData>>, String> {
    if inputs.len() != g.inputs.len() {
        return Err(format!("the graph has {} inputs, {} were given", g.inputs.len(), inputs.len()));
    }
    let mut vals: Vec<Option<TensorData>> = g.values.iter().map(|v| v.data.clone()).collect();
    for (i, (&id, data)) in g.inputs.iter().zip(inputs).enumerate() {
        let v = g.values.get(id.0).ok_or_else(|| format!("graph input %{} does not exist", id.0))?;
        if data.dtype() != v.ty.dtype {
            return Err(format!("input {i} (\"{}\") must be {}, got {}", v.name, v.ty.dtype, data.dtype()));
        }
        if data.len() != v.ty.len() {
            return Err(format!(
                "input {i} (\"{}\") of shape {:?} needs {} elements, got {}",
                v.name,
                v.ty.shape,
                v.ty.len(),
                data.len()
            ));
        }
        vals[id.0] = Some(data.clone());
    }
    for node in &g.nodes {
        let y = eval_node(g, node, &vals).map_err(|e| match e {
            Fail::Unsupported(what) => {
                format!("the simulator does not evaluate {what} (node \"{}\") yet", node.name)
            }
            Fail::Error(e) => format!("node \"{}\" ({}): {e}", node.name, node.op.name()),
        })?;
        let &[out] = node.outputs.as_slice() else {
            return Err(format!("node \"{}\" has {} outputs, expected 1", node.name, node.outputs.len()));
        };
        let slot = vals.get_mut(out.0).ok_or_else(|| format!("node \"{}\" writes a missing value", node.name))?;
        *slot = Some(y);
    }
    Ok(vals)
}

/// Evaluates `g` on `inputs` and returns its outputs, in order.
pub fn run(g: &Graph, inputs: &[TensorData]) -> Result<Vec<TensorData>, String> {
    let mut vals = run_all(g, inputs)?;
    g.outputs
        .iter()
        .map(|&o| {
            vals.get_mut(o.0).and_then(Option::take).ok_or_else(|| format!("graph output %{} is never computed", o.0))
        })
        .collect()
}

/// Why a node could not be evaluated.
#[derive(Debug)]
pub(crate) enum Fail {
    /// An op, or a form of it, the simulator has no evaluation for (what it is).
    Unsupported(String),
    Error(String),
}

impl From<String> for Fail {
    fn from(e: String) -> Fail {
        Fail::Error(e)
    }
}

impl From<&str> for Fail {
    fn from(e: &str) -> Fail {
        Fail::Error(e.to_string())
    }
}

pub(crate) type R<T> = Result<T, Fail>;

/// The inputs of one node: types and data.
pub(crate) struct Args<'a> {
    pub tys: Vec<&'a TensorType>,
    pub data: Vec<&'a TensorData>,
    /// The output type recorded in the graph.
    pub out: &'a TensorType,
}

impl<'a> Args<'a> {
    /// Input `i`'s type and data, or an error when the node has fewer inputs.
    pub fn get(&self, i: usize) -> Result<(&'a TensorType, &'a TensorData), String> {
        match (self.tys.get(i), self.data.get(i)) {
            (Some(t), Some(d)) => Ok((t, d)),
            _ => Err(format!("missing input {i}")),
        }
    }

    pub fn f32(&self, i: usize) -> Result<&'a [f32], String> {
        let (_, d) = self.get(i)?;
        d.as_f32().ok_or_else(|| format!("input {i} must be f32, got {}", d.dtype()))
    }

    pub fn shape(&self, i: usize) -> Result<&'a [usize], String> {
        Ok(&self.get(i)?.0.shape)
    }
}

fn eval_node(g: &Graph, node: &Node, vals: &[Option<TensorData>]) -> R<TensorData> {
    let mut tys = Vec::with_capacity(node.inputs.len());
    let mut data = Vec::with_capacity(node.inputs.len());
    for &v in &node.inputs {
        let value = g.values.get(v.0).ok_or_else(|| format!("input %{} does not exist", v.0))?;
        let d = vals.get(v.0).and_then(Option::as_ref).ok_or_else(|| format!("input %{} is not computed yet", v.0))?;
        if d.len() != value.ty.len() {
            let (n, shape, want) = (d.len(), &value.ty.shape, value.ty.len());
            return Err(Fail::Error(format!("input %{} holds {n} elements, its type {shape:?} needs {want}", v.0)));
        }
        tys.push(&value.ty);
        data.push(d);
    }
    let out_id = node.outputs.first().ok_or("the node has no output")?;
    let out = &g.values.get(out_id.0).ok_or("the output value does not exist")?.ty;
    // Shape inference guards the index arithmetic below against inconsistent graphs.
    let inferred = node.op.infer(&tys)?;
    if inferred.shape != out.shape || inferred.dtype != out.dtype {
        return Err(Fail::Error(format!(
            "recorded output {} {:?} differs from the inferred {} {:?}",
            out.dtype, out.shape, inferred.dtype, inferred.shape
        )));
    }
    let a = Args { tys, data, out };
    eval_args(&node.op, &a)
}

/// Evaluates one op on constant inputs (constant folding of integer and bool computations,
/// e.g. shape arithmetic); `None` when the simulator cannot or the result is inconsistent.
pub fn eval_op(op: &Op, inputs: &[(&TensorType, &TensorData)], out: &TensorType) -> Option<TensorData> {
    // Quantization ops stay nodes: the int8 passes rewrite them.
    let foldable = matches!(
        op,
        Op::Binary(_)
            | Op::Not
            | Op::Where
            | Op::Cast(_)
            | Op::Reduce(_)
            | Op::ArgReduce(_)
            | Op::TopK(_)
            | Op::Gather(_)
            | Op::GatherElements(_)
            | Op::Concat(_)
            | Op::Transpose(_)
            | Op::Reshape(_)
            | Op::Strided(_)
            | Op::Pad(_)
    );
    if !foldable || inputs.iter().any(|(t, d)| t.len() != d.len() || t.dtype != d.dtype()) {
        return None;
    }
    let a = Args { tys: inputs.iter().map(|i| i.0).collect(), data: inputs.iter().map(|i| i.1).collect(), out };
    eval_args(op, &a).ok()
}

fn eval_args(op: &Op, a: &Args) -> R<TensorData> {
    let out = a.out;
    let y = match op {
        Op::Conv(c) => float::conv(c, a),
        Op::ConvTranspose(c) => float::conv_transpose(c, a),
        Op::Gemm(gm) => float::gemm(gm, a),
        Op::MatMul(m) => float::matmul(m, a),
        Op::Binary(b) => float::binary(b, a),
        Op::Activation(act) => float::activation(act, a),
        Op::Softmax(s) => float::softmax(s, a),
        Op::Pool(p) => float::pool(p, a),
        Op::BatchNorm(b) => float::batchnorm(b, a),
        Op::Reduce(r) => float::reduce(r, a),
        Op::ArgReduce(r) => float::arg_reduce(r, a),
        Op::TopK(t) => topk::topk(t, a),
        Op::Resize(r) => float::resize(r, a),
        Op::Reshape(_) => Ok(a.get(0)?.1.clone()),
        Op::Transpose(t) => movement::transpose(t, a),
        Op::Concat(c) => movement::concat(c, a),
        Op::Pad(p) => movement::pad(p, a),
        Op::Cast(c) => movement::cast(c, a),
        Op::Not => movement::not(a),
        Op::Where => movement::select(a),
        Op::Strided(s) => movement::strided(s, a),
        Op::Gather(gt) => movement::gather(gt, a),
        Op::GatherElements(gt) => movement::gather_elements(gt, a),
        Op::Quantize(q) => quant::quantize(q, a),
        Op::Dequantize(q) => quant::dequantize(q, a),
        Op::QConv(q) => quant::qconv(q, a),
        Op::QMatMul(q) => quant::qmatmul(q, a),
        Op::QAdd(q) => quant::qadd(q, a),
        Op::QPool(q) => quant::qpool(q, a),
        Op::QSoftmax(q) => quant::qsoftmax(q, a),
        Op::Requantize(q) => quant::requantize(q, a),
        Op::Sparse(s) => sparse::sparse(s, a),
    }?;
    if y.len() != out.len() || y.dtype() != out.dtype {
        return Err(Fail::Error(format!(
            "computed {} {} elements, the graph records {} {:?}",
            y.len(),
            y.dtype(),
            out.dtype,
            out.shape
        )));
    }
    Ok(y)
}

/// The error for an op (or a form of it, `what`) the simulator cannot evaluate.
pub(crate) fn not_evaluated(what: impl Into<String>) -> Fail {
    Fail::Unsupported(what.into())
}

/// Calls `f` with every multi-index of `shape`, in row-major order.
pub fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx = vec![0usize; shape.len()];
    loop {
        f(&idx);
        let mut ax = shape.len();
        loop {
            if ax == 0 {
                return;
            }
            ax -= 1;
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
}

/// Flat offset of a multi-index given per-axis strides.
pub fn offset(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

/// Integer view of an int8 / uint8 / int32 tensor.
pub(crate) fn ints(d: &TensorData) -> Result<Vec<i32>, String> {
    match d {
        TensorData::I8(v) => Ok(v.iter().map(|&x| x as i32).collect()),
        TensorData::U8(v) => Ok(v.iter().map(|&x| x as i32).collect()),
        TensorData::I32(v) => Ok(v.clone()),
        TensorData::I16(v) => Ok(v.iter().map(|&x| x as i32).collect()),
        TensorData::U16(v) => Ok(v.iter().map(|&x| x as i32).collect()),
        TensorData::Low(t, v) if t.is_subbyte_int() => {
            Ok(v.iter().map(|&x| crate::ir::low_int(*t, x) as i32).collect())
        }
        other => Err(format!("expected an int8, uint8, int16, uint16 or int32 tensor, got {}", other.dtype())),
    }
}

/// Narrows integers (already in the type's range) to a tensor of type `to`.
pub(crate) fn from_ints(to: DType, v: Vec<i32>) -> Result<TensorData, String> {
    Ok(match to {
        DType::I8 => TensorData::I8(v.into_iter().map(|x| x as i8).collect()),
        DType::U8 => TensorData::U8(v.into_iter().map(|x| x as u8).collect()),
        DType::I32 => TensorData::I32(v),
        DType::I16 => TensorData::I16(v.into_iter().map(|x| x as i16).collect()),
        DType::U16 => TensorData::U16(v.into_iter().map(|x| x as u16).collect()),
        t if t.is_subbyte_int() => TensorData::I32(v).cast_to(t),
        other => return Err(format!("integer result of type {other}")),
    })
}

/// Wide integer view (any non-float type), for the generic integer paths.
pub(crate) fn wide(d: &TensorData) -> Result<Vec<i64>, String> {
    d.to_i64().ok_or_else(|| format!("expected an integer tensor, got {}", d.dtype()))
}

/// Converts wide integers to type `to` like a C assignment (two's complement wrap-around;
/// nonzero is `true`).
pub(crate) fn from_wide(to: DType, v: Vec<i64>) -> Result<TensorData, String> {
    Ok(match to {
        DType::I8 => TensorData::I8(v.into_iter().map(|x| x as i8).collect()),
        DType::U8 => TensorData::U8(v.into_iter().map(|x| x as u8).collect()),
        DType::I32 => TensorData::I32(v.into_iter().map(|x| x as i32).collect()),
        DType::I64 => TensorData::I64(v),
        DType::Bool => TensorData::Bool(v.into_iter().map(|x| x != 0).collect()),
        DType::I16 => TensorData::I16(v.into_iter().map(|x| x as i16).collect()),
        DType::U16 => TensorData::U16(v.into_iter().map(|x| x as u16).collect()),
        DType::U32 => TensorData::U32(v.into_iter().map(|x| x as u32).collect()),
        DType::U64 => TensorData::U64(v.into_iter().map(|x| x as u64).collect()),
        t if t.is_subbyte_int() => TensorData::I64(v).cast_to(t),
        _ => return Err(format!("integer result requested as {to}")),
    })
}
