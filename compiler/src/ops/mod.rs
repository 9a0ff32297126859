//! The closed set of ops the IR knows. One file per op holds its attributes, its shape
//! inference and (where constant folding needs it) its reference evaluation.
//!
//! Adding an op: a file here, a variant in [`Op`], a lowering in `frontend::lower`, and one
//! emitter per backend. The exhaustive matches point at every other place.

mod activation;
mod batchnorm;
mod binary;
pub mod broadcast;
mod cast;
mod concat;
mod conv;
mod conv_transpose;
mod gather;
mod gemm;
mod in_place;
mod matmul;
mod pad;
mod pool;
mod quant;
mod reduce;
mod reshape;
mod resize;
mod select;
mod softmax;
mod sparse;
mod strided;
mod topk;
mod transpose;

pub use activation::Act;
pub use batchnorm::BatchNorm;
pub use binary::{Binary, BinaryKind};
pub use cast::Cast;
pub use concat::Concat;
pub use conv::Conv;
pub(crate) use conv::window_out;
pub use conv_transpose::ConvTranspose;
pub use gather::{Gather, GatherElements};
pub use gemm::Gemm;
pub use in_place::InPlace;
pub use matmul::MatMul;
pub use pad::{Pad, PadMode};
pub use pool::{Pool, PoolKind};
pub use quant::{
    Dequantize, ParamLayout, QAdd, QConv, QMatMul, QPool, QSoftmax, Quantize, Requant, Requantize, quantize_multiplier,
    type_range,
};
pub use reduce::{ArgReduce, Reduce, ReduceKind, ReduceLoops, reduce_loops};
pub use reshape::Reshape;
pub use resize::{AxisMap, AxisSpec, CoordMode, Filter, NearestMode, Resize};
pub use softmax::Softmax;
pub use sparse::{ConvGeom, Csr, FcGeom, Flavor, Layout, Sparse, SparseFormat, index_bytes, valid_range};
pub use strided::{Strided, slice_axis};
pub use topk::TopK;
pub use transpose::Transpose;

use crate::ir::{TensorData, TensorType};

/// An operation with typed attributes. Inputs and outputs live on the [`crate::ir::Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// 2-D convolution `[N,C,H,W] * [M,C/group,kH,kW] (+ bias[M])`, optional fused activation.
    Conv(Conv),
    /// `alpha * A' x B' + beta * C` on 2-D operands, optional fused activation.
    Gemm(Gemm),
    /// NumPy-style batched matrix product, optional fused activation.
    MatMul(MatMul),
    /// Elementwise Add/Sub/Mul/Div with multidirectional broadcasting, optional fused activation.
    Binary(Binary),
    /// Elementwise activation function.
    Activation(Act),
    /// Softmax along one axis (opset ≥ 13 semantics).
    Softmax(Softmax),
    /// 2-D max or average pooling (global pooling is a pool over the whole plane).
    Pool(Pool),
    /// Inference-mode batch normalisation over axis 1. Folded into a preceding Conv/Gemm
    /// when possible, otherwise legalised to Mul + Add.
    BatchNorm(BatchNorm),
    /// Reinterpretation of the same row-major data with a new shape (Reshape, Flatten,
    /// Squeeze, Unsqueeze, Identity): a view, not a copy, unless memory planning says so.
    Reshape(Reshape),
    /// Axis permutation.
    Transpose(Transpose),
    /// Concatenation along one axis.
    Concat(Concat),
    /// Constant, reflect or edge padding.
    Pad(Pad),
    /// Element type conversion.
    Cast(Cast),
    /// Logical not on booleans.
    Not,
    /// `cond ? a : b` with broadcasting; inputs `(cond, a, b)`.
    Where,
    /// Reduction over axes.
    Reduce(Reduce),
    /// Index of the max / min along one axis (int64).
    ArgReduce(ArgReduce),
    /// The top `k` values or their int64 indices along one axis (one ONNX TopK is two nodes).
    TopK(TopK),
    /// Affine strided copy (Slice, Expand, Tile).
    Strided(Strided),
    /// Gather along an axis with an index tensor (second input).
    Gather(Gather),
    /// GatherElements along an axis.
    GatherElements(GatherElements),
    /// Transposed convolution of any spatial rank.
    ConvTranspose(ConvTranspose),
    /// Nearest / linear resize with build-time index tables.
    Resize(Resize),
    /// Float → int8/uint8/int32 (ONNX QuantizeLinear).
    Quantize(Quantize),
    /// int8/uint8/int32 → float (ONNX DequantizeLinear).
    Dequantize(Dequantize),
    /// Integer convolution with int32 accumulators and fixed-point requantization.
    QConv(QConv),
    /// Integer matrix product with int32 accumulators and fixed-point requantization.
    QMatMul(QMatMul),
    /// Integer elementwise add of two quantized tensors.
    QAdd(QAdd),
    /// Integer max / average pooling.
    QPool(QPool),
    /// Integer softmax through an exp table.
    QSoftmax(QSoftmax),
    /// Integer rescale between quantization parameters (with an optional clamp).
    Requantize(Requantize),
    /// A Conv / Gemm / MatMul / QConv / QMatMul with its constant weight compressed
    /// (`ops::sparse`); inputs are the dense op's without the weight.
    Sparse(Sparse),
}

impl Op {
    /// Short op name used in listings and generated comments.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(_) => "Conv",
            Op::Gemm(_) => "Gemm",
            Op::MatMul(_) => "MatMul",
            Op::Binary(b) => b.kind.name(),
            Op::Activation(a) => a.name(),
            Op::Softmax(_) => "Softmax",
            Op::Pool(p) => p.kind.name(),
            Op::BatchNorm(_) => "BatchNorm",
            Op::Reshape(_) => "Reshape",
            Op::Transpose(_) => "Transpose",
            Op::Concat(_) => "Concat",
            Op::Pad(_) => "Pad",
            Op::Cast(_) => "Cast",
            Op::Not => "Not",
            Op::Where => "Where",
            Op::Reduce(r) => r.kind.name(),
            Op::TopK(t) => {
                if t.indices {
                    "TopKIndices"
                } else {
                    "TopK"
                }
            }
            Op::Strided(_) => "Strided",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::Resize(_) => "Resize",
            Op::Gather(_) => "Gather",
            Op::GatherElements(_) => "GatherElements",
            Op::Quantize(_) => "QuantizeLinear",
            Op::Dequantize(_) => "DequantizeLinear",
            Op::QConv(_) => "QConv",
            Op::QMatMul(_) => "QMatMul",
            Op::QAdd(_) => "QAdd",
            Op::QPool(p) => match p.pool.kind {
                PoolKind::Max => "QMaxPool",
                PoolKind::Avg => "QAveragePool",
            },
            Op::QSoftmax(_) => "QSoftmax",
            Op::Requantize(_) => "Requantize",
            Op::Sparse(s) => match s.dense.as_ref() {
                Op::Conv(_) => "SparseConv",
                Op::Gemm(_) => "SparseGemm",
                Op::MatMul(_) => "SparseMatMul",
                Op::QConv(_) => "SparseQConv",
                Op::QMatMul(_) => "SparseQMatMul",
                _ => "Sparse",
            },
            Op::ArgReduce(a) => {
                if a.max {
                    "ArgMax"
                } else {
                    "ArgMin"
                }
            }
        }
    }

    /// Output type given the input types. Errors are plain messages; callers add the node.
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        match self {
            Op::Conv(o) => o.infer(inputs),
            Op::Gemm(o) => o.infer(inputs),
            Op::MatMul(o) => o.infer(inputs),
            Op::Binary(o) => o.infer(inputs),
            Op::Activation(_) => same_as_first(inputs),
            Op::Softmax(o) => o.infer(inputs),
            Op::Pool(o) => o.infer(inputs),
            Op::BatchNorm(o) => o.infer(inputs),
            Op::Reshape(o) => o.infer(inputs),
            Op::Transpose(o) => o.infer(inputs),
            Op::Concat(o) => o.infer(inputs),
            Op::Pad(o) => o.infer(inputs),
            Op::Cast(o) => o.infer(inputs),
            Op::Not => cast::infer_not(inputs),
            Op::Where => select::infer_where(inputs),
            Op::Reduce(o) => o.infer(inputs),
            Op::ArgReduce(o) => o.infer(inputs),
            Op::TopK(o) => o.infer(inputs),
            Op::Strided(o) => o.infer(inputs),
            Op::ConvTranspose(o) => o.infer(inputs),
            Op::Resize(o) => o.infer(inputs),
            Op::Gather(o) => o.infer(inputs),
            Op::GatherElements(o) => o.infer(inputs),
            Op::Quantize(o) => o.infer(inputs),
            Op::Dequantize(o) => o.infer(inputs),
            Op::QConv(o) => o.infer(inputs),
            Op::QMatMul(o) => o.infer(inputs),
            Op::QAdd(o) => o.infer(inputs),
            Op::QPool(o) => o.infer(inputs),
            Op::QSoftmax(o) => o.infer(inputs),
            Op::Requantize(o) => o.infer(inputs),
            Op::Sparse(o) => o.infer(inputs),
        }
    }

    /// Reference evaluation on constant inputs, for constant folding. `None` when the op
    /// has no evaluator (the node is then kept and emitted).
    pub fn eval(&self, inputs: &[(&TensorType, &TensorData)], out: &TensorType) -> Option<TensorData> {
        match self {
            Op::Reshape(_) => Some(inputs.first()?.1.clone()),
            Op::Transpose(t) => Some(t.eval(inputs.first()?.0, inputs.first()?.1)),
            Op::Concat(c) => c.eval(inputs, out),
            Op::Binary(b) => b.eval(inputs, out),
            Op::Cast(c) => c.eval(inputs.first()?.1),
            Op::Strided(st) => Some(st.eval(inputs.first()?.1)),
            Op::Gather(g) => gather_eval(g, inputs),
            Op::Activation(a) => match inputs.first()?.1 {
                TensorData::F64(x) => Some(TensorData::F64(x.iter().map(|&v| a.apply64(v)).collect::<Option<_>>()?)),
                d => Some(TensorData::F32(d.as_f32()?.iter().map(|&v| a.apply(v)).collect())),
            },
            _ => None,
        }
    }

    /// Multiply-accumulates for one run (0 for data movement ops).
    pub fn macs(&self, inputs: &[&TensorType], out: &TensorType) -> u64 {
        match self {
            Op::Sparse(s) => s.macs(out),
            Op::Conv(_) | Op::QConv(_) => {
                let w = inputs.get(1).map(|t| t.shape.clone()).unwrap_or_default();
                let per_out: usize = w.iter().skip(1).product();
                (out.len() * per_out) as u64
            }
            Op::Gemm(g) => {
                let k = inputs.first().map(|a| if g.trans_a { a.shape[0] } else { a.shape[1] });
                (out.len() * k.unwrap_or(0)) as u64
            }
            Op::MatMul(_) | Op::QMatMul(_) => {
                let k = inputs.first().and_then(|a| a.shape.last().copied()).unwrap_or(0);
                (out.len() * k) as u64
            }
            Op::Pool(p) | Op::QPool(QPool { pool: p, .. }) => (out.len() * p.kernel[0] * p.kernel[1]) as u64,
            Op::Quantize(_) | Op::Dequantize(_) | Op::QAdd(_) | Op::QSoftmax(_) | Op::Requantize(_) => out.len() as u64,
            Op::Binary(_) | Op::Activation(_) | Op::BatchNorm(_) | Op::Softmax(_) => out.len() as u64,
            Op::Reshape(_) | Op::Transpose(_) | Op::Concat(_) | Op::Pad(_) | Op::Cast(_) | Op::Not | Op::Where => 0,
            Op::Reduce(_) | Op::ArgReduce(_) => inputs.first().map_or(0, |t| t.len() as u64),
            Op::TopK(t) => inputs.first().map_or(0, |x| (x.len() * t.k) as u64),
            Op::Strided(_) | Op::Gather(_) | Op::GatherElements(_) => 0,
            Op::Resize(r) => (out.len() * r.taps()) as u64,
            Op::ConvTranspose(_) => {
                let w = inputs.get(1).map(|t| t.shape.clone()).unwrap_or_default();
                (inputs.first().map_or(0, |t| t.len()) * w.iter().skip(1).product::<usize>()) as u64
            }
        }
    }

    /// Ops whose kernels exist for float32 only.
    pub fn float_only(&self) -> bool {
        match self {
            Op::Conv(_)
            | Op::ConvTranspose(_)
            | Op::Gemm(_)
            | Op::MatMul(_)
            | Op::Activation(_)
            | Op::Softmax(_)
            | Op::BatchNorm(_) => true,
            // Max pooling also runs on integers.
            Op::Pool(p) => p.kind == PoolKind::Avg,
            Op::Binary(b) => b.act.is_some(),
            Op::Reshape(_) | Op::Transpose(_) | Op::Concat(_) | Op::Pad(_) | Op::Cast(_) | Op::Not | Op::Where => false,
            Op::Reduce(_) | Op::ArgReduce(_) | Op::TopK(_) => false,
            Op::Strided(_) | Op::Gather(_) | Op::GatherElements(_) | Op::Resize(_) => false,
            Op::Quantize(_)
            | Op::Dequantize(_)
            | Op::QConv(_)
            | Op::QMatMul(_)
            | Op::QAdd(_)
            | Op::QPool(_)
            | Op::QSoftmax(_)
            | Op::Requantize(_) => false,
            Op::Sparse(s) => s.dense.float_only(),
        }
    }

    /// Whether a [`float_only`](Op::float_only) op has kernels for float element type `d`:
    /// all of them for float32; for float64 the plain matrix product, Softmax / LogSoftmax
    /// and the activations with a float64 helper ([`Act::helper64`]).
    pub fn float_kernel_for(&self, d: crate::ir::DType) -> bool {
        use crate::ir::DType;
        d == DType::F32
            || d == DType::F64
                && match self {
                    Op::MatMul(MatMul { act: None }) | Op::Softmax(_) => true,
                    Op::Activation(a) => a.helper64().is_some(),
                    _ => false,
                }
    }

    /// The fused activation, for ops that carry one.
    pub fn fused_act(&self) -> Option<&Option<Act>> {
        match self {
            Op::Conv(o) => Some(&o.act),
            Op::Gemm(o) => Some(&o.act),
            Op::MatMul(o) => Some(&o.act),
            Op::Binary(o) => Some(&o.act),
            Op::Sparse(s) => s.dense.fused_act(),
            _ => None,
        }
    }

    pub fn fused_act_mut(&mut self) -> Option<&mut Option<Act>> {
        match self {
            Op::Conv(o) => Some(&mut o.act),
            Op::Gemm(o) => Some(&mut o.act),
            Op::MatMul(o) => Some(&mut o.act),
            Op::Binary(o) => Some(&mut o.act),
            _ => None,
        }
    }

    /// Short attribute summary for `inspect` and the IR dump.
    pub fn params(&self) -> String {
        let act = |a: &Option<Act>| a.as_ref().map(|a| format!(" +{}", a.describe())).unwrap_or_default();
        match self {
            Op::Conv(c) => format!(
                "k={}x{} s={}x{} p={:?} d={}x{} g={}{}",
                c.kernel[0],
                c.kernel[1],
                c.strides[0],
                c.strides[1],
                c.pads,
                c.dilations[0],
                c.dilations[1],
                c.group,
                act(&c.act)
            ),
            Op::Gemm(g) => format!(
                "tA={} tB={} alpha={} beta={}{}",
                g.trans_a as u8,
                g.trans_b as u8,
                g.alpha,
                g.beta,
                act(&g.act)
            ),
            Op::MatMul(m) => act(&m.act).trim().to_string(),
            Op::Binary(b) => act(&b.act).trim().to_string(),
            Op::Activation(a) => a.describe(),
            Op::Softmax(s) => format!("axis={}", s.axis),
            Op::Pool(p) => format!(
                "k={}x{} s={}x{} p={:?}{}",
                p.kernel[0],
                p.kernel[1],
                p.strides[0],
                p.strides[1],
                p.pads,
                if p.count_include_pad { " count_pad" } else { "" }
            ),
            Op::BatchNorm(b) => format!("eps={}", b.epsilon),
            Op::Reshape(_) => String::new(),
            Op::Transpose(t) => format!("perm={:?}", t.perm),
            Op::Concat(c) => format!("axis={}", c.axis),
            Op::Pad(p) => format!("pads={:?} {:?}", p.pads, p.mode),
            Op::Cast(c) => format!("to={}", c.to),
            Op::Not | Op::Where => String::new(),
            Op::Reduce(r) => format!("axes={:?} keepdims={}", r.axes, r.keepdims as u8),
            Op::Strided(st) => format!("offset={} strides={:?}", st.offset, st.strides),
            Op::Resize(r) => {
                format!("taps {:?}", r.maps.iter().map(|m| m.as_ref().map_or(1, |m| m.taps)).collect::<Vec<_>>())
            }
            Op::ConvTranspose(c) => format!("k={:?} s={:?} p={:?} g={}", c.kernel, c.strides, c.pads, c.group),
            Op::Gather(g) => format!("axis={}", g.axis),
            Op::GatherElements(g) => format!("axis={}", g.axis),
            Op::ArgReduce(a) => format!("axis={} keepdims={} last={}", a.axis, a.keepdims as u8, a.select_last as u8),
            Op::TopK(t) => format!(
                "k={} axis={} largest={} sorted={}{}",
                t.k,
                t.axis,
                t.largest as u8,
                t.sorted as u8,
                if t.indices { " indices" } else { "" }
            ),
            Op::Quantize(q) => format!("to={} {}", q.to, quant_str(&q.q, q.block)),
            Op::Dequantize(q) => quant_str(&q.q, q.block),
            Op::QConv(q) => format!(
                "k={}x{} s={}x{} p={:?} g={} x_zp={}{}",
                q.conv.kernel[0],
                q.conv.kernel[1],
                q.conv.strides[0],
                q.conv.strides[1],
                q.conv.pads,
                q.conv.group,
                q.x_zp,
                requant_str(q.out.as_ref())
            ),
            Op::QMatMul(q) => format!("a_zp={}{}", q.a_zp, requant_str(q.out.as_ref())),
            Op::QAdd(q) => format!("a_zp={} b_zp={}{}", q.a_zp, q.b_zp, requant_str(Some(&q.out))),
            Op::QPool(p) => format!(
                "k={}x{} s={}x{} p={:?} x_zp={}{}",
                p.pool.kernel[0],
                p.pool.kernel[1],
                p.pool.strides[0],
                p.pool.strides[1],
                p.pool.pads,
                p.x_zp,
                requant_str(Some(&p.out))
            ),
            Op::QSoftmax(s) => format!("axis={} -> {} zp={}", s.axis, s.to, s.zero_point),
            Op::Requantize(r) => format!("x_zp={}{}", r.x_zp, requant_str(Some(&r.out))),
            Op::Sparse(s) => s.params(),
        }
    }
}

fn quant_str(q: &crate::ir::Quant, block: Option<usize>) -> String {
    if let Some(b) = block {
        return format!("blocks of {b} along {:?} ({} scales)", q.axis, q.scale.len());
    }
    match (q.axis, q.scale.as_slice(), q.zero_point.as_slice()) {
        (None, [s], [z]) => format!("scale={s} zp={z}"),
        (axis, s, _) => format!("per-axis {axis:?} ({} scales)", s.len()),
    }
}

fn requant_str(r: Option<&Requant>) -> String {
    match r {
        None => " -> i32".into(),
        Some(r) => format!(" -> {} zp={} [{}, {}]", r.to, r.zero_point, r.lo, r.hi),
    }
}

/// Constant Gather (shape arithmetic such as `Shape → Gather`).
fn gather_eval(g: &Gather, inputs: &[(&TensorType, &TensorData)]) -> Option<TensorData> {
    let [(xt, x), (it, idx)] = inputs else { return None };
    let idx = idx.to_i64()?;
    let d = *xt.shape.get(g.axis)? as i64;
    let outer: usize = xt.shape[..g.axis].iter().product();
    let inner: usize = xt.shape[g.axis + 1..].iter().product();
    let mut src = Vec::with_capacity(outer * it.len() * inner);
    for o in 0..outer {
        for &i in &idx {
            let i = if i < 0 { i + d } else { i };
            if !(0..d).contains(&i) {
                return None;
            }
            src.extend((0..inner).map(|k| (o * d as usize + i as usize) * inner + k));
        }
    }
    Some(x.gather(&src))
}

fn same_as_first(inputs: &[&TensorType]) -> Result<TensorType, String> {
    let x = inputs.first().ok_or("missing input")?;
    Ok(TensorType::new(x.dtype, x.shape.clone()))
}

/// Checks the input count of an op, for shape inference.
pub(crate) fn expect_inputs(inputs: &[&TensorType], min: usize, max: usize) -> Result<(), String> {
    if inputs.len() < min || inputs.len() > max {
        let want = if min == max { min.to_string() } else { format!("{min} to {max}") };
        return Err(format!("expected {want} inputs, got {}", inputs.len()));
    }
    Ok(())
}

/// Checks that a tensor has the given rank.
pub(crate) fn expect_rank(t: &TensorType, rank: usize, what: &str) -> Result<(), String> {
    if t.shape.len() != rank {
        return Err(format!("{what} must have rank {rank}, got shape {:?}", t.shape));
    }
    Ok(())
}

/// Row-major strides of a shape.
pub fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}
