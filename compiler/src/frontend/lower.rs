//! Per-ONNX-op lowering to IR nodes, with static shape inference as nodes are added.

use super::attrs::{Attrs, norm_axis};
use super::tensor_proto;
use crate::error::{Error, Result, Unsupported};
use crate::ir::{DType, Graph, Node, Quant, TensorData, TensorType, ValueId};
use crate::ops::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tract_onnx::pb::{NodeProto, TensorProto};

mod empty;
mod half;
mod low;

/// Why a node could not be lowered.
enum Fail {
    /// Not supported (yet): collected so one error lists every such node.
    Unsupported(Option<String>),
    /// Needs this graph input as a build-time constant.
    NeedsConst(String, String),
    /// Needs several graph inputs as build-time constants: `(reason, input)` each.
    NeedsConsts(Vec<(String, String)>),
    /// The node is malformed: reported at once.
    Invalid(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Invalid(s)
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Fail {
        Fail::Invalid(s.to_string())
    }
}

type LResult<T> = std::result::Result<T, Fail>;

/// ONNX op types (default domain) the frontend lowers; a node of any other type is
/// reported as unsupported before lowering starts, so one error lists all of them.
/// Limits of supported ops worth knowing (for docs/ops.md); ops not listed have none
/// beyond static shapes.
pub const OP_NOTES: &[(&str, &str)] = &[
    (
        "Conv",
        "1-D, 2-D, and 3-D as a sum of 2-D convolutions over the kernel depth; float32; groups, depthwise, strides, pads, auto_pad, dilations",
    ),
    ("MaxPool", "1-D, 2-D, and N-d as separable 1-D pools; float32, int8, uint8; Indices output"),
    ("AveragePool", "1-D, 2-D, and N-d as separable 1-D pools; float32"),
    ("LpPool", "any spatial rank, decomposed into |x|^p, average pooling and ^(1/p); float32; no ceil_mode"),
    ("Reshape", "shape must be constant"),
    ("Squeeze", "axes must be constant"),
    ("Unsqueeze", "axes must be constant"),
    ("Slice", "starts/ends/axes/steps must be constant"),
    ("Split", "split sizes must be constant"),
    ("Expand", "shape must be constant"),
    ("Tile", "repeats must be constant"),
    ("Pad", "pads must be constant; constant, reflect, edge, wrap"),
    ("Clip", "float32 bounds fused when constant; any type at run time"),
    ("Dropout", "inference, or training with ratio 0 (identity); the mask output is all true"),
    (
        "BatchNormalization",
        "folded into Conv/Gemm when possible; training_mode uses the batch statistics and outputs the running mean and variance",
    ),
    ("Range", "constant inputs"),
    ("ConstantOfShape", "constant shape"),
    ("Einsum", "one or two float32 or float64 operands; ellipsis and diagonals; no broadcasting of index sizes"),
    ("LSTM", "static sequence length, unrolled; constant weights; peepholes, clip, layout 0 and 1; no input_forget"),
    ("GRU", "static sequence length, unrolled; constant weights; clip, layout 0 and 1"),
    ("RNN", "static sequence length, unrolled; constant weights; clip, layout 0 and 1"),
    (
        "Resize",
        "nearest, linear and cubic (antialias, exclude_outside, all coordinate modes, keep_aspect_ratio_policy, axes); constant scales/sizes/roi; interpolation of float32 only; tf_crop_and_resize needs sizes",
    ),
    ("Upsample", "nearest and linear; constant scales"),
    ("Mod", "integers; float32 and float64 with fmod=0 or 1"),
    ("Pow", "float32; integer operands computed in float32 (exact below 2^24), result of the base's type"),
    (
        "Cast",
        "float32, float64, float16, bfloat16, float8 (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz, e8m0 with round_mode), float4e2m1, int2/4/8/16/32/64, uint2/4/8/16/32/64, bool (floats round to nearest even, float8 saturate or not; int4 / int2 wrap; stored one element per byte)",
    ),
    ("CastLike", "as Cast"),
    ("MatMul", "float32; float64 (no fused activation)"),
    (
        "QuantizeLinear",
        "float32 to int8/uint8/int16/uint16/int4/uint4/int2/uint2 (per tensor, per axis or blocked; constant scale and zero point, or per tensor computed at run time as float ops); to float8 / float4 per tensor or per axis as float ops and a saturating Cast (not blocked)",
    ),
    (
        "DequantizeLinear",
        "int8/uint8/int16/uint16/int32/int4/uint4/int2/uint2 to float32 (per tensor, per axis or blocked; constant scale and zero point); float8 / float4 per tensor or per axis as float ops (not blocked)",
    ),
    (
        "QLinearConv",
        "1-D and 2-D; int8/uint8; per-tensor x and y, per-tensor or per-channel w; constant scales and zero points; int32 fixed-point requantization",
    ),
    (
        "QLinearMatMul",
        "int8/uint8; per-tensor a and y, per-tensor or per-column b; constant scales and zero points; int32 fixed-point requantization",
    ),
    (
        "ConvInteger",
        "1-D and 2-D; int8/uint8; constant zero points, or a run-time x zero point (DynamicQuantizeLinear) with constant weights, then computed in float32",
    ),
    (
        "MatMulInteger",
        "int8/uint8; per-tensor a and per-tensor or per-column b zero points, constant, or a run-time scalar a zero point with constant b, then computed in float32",
    ),
    ("DynamicQuantizeLinear", "float32; decomposed into reductions and elementwise float ops"),
    ("Gather", "int32/int64 indices; out-of-range indices clamp"),
    ("GatherElements", "int32/int64 indices; out-of-range indices clamp"),
    ("LayerNormalization", "float32; decomposed into reductions"),
    ("InstanceNormalization", "float32; decomposed into reductions"),
    ("DepthToSpace", "4-D; DCR and CRD"),
    ("SpaceToDepth", "4-D"),
    ("ReduceSum", "axes must be constant; float32 and float64; Sum/Max/Min/Prod also on integers"),
    ("Softmax", "float32 and float64"),
    ("LogSoftmax", "float32 and float64"),
    ("Exp", "float32 and float64"),
    ("Log", "float32 and float64"),
    ("Sqrt", "float32 and float64"),
    ("TopK", "k must be constant; float32 and integers; always sorted"),
];

pub const SUPPORTED_OPS: &[&str] = &[
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "DynamicQuantizeLinear",
    "QuantizeLinear",
    "DequantizeLinear",
    "Einsum",
    "LRN",
    "Hardmax",
    "LSTM",
    "GRU",
    "RNN",
    "Resize",
    "Upsample",
    "ConvTranspose",
    "LayerNormalization",
    "InstanceNormalization",
    "Trilu",
    "Slice",
    "Split",
    "Expand",
    "Tile",
    "Gather",
    "GatherElements",
    "ConstantOfShape",
    "Range",
    "Size",
    "DepthToSpace",
    "SpaceToDepth",
    "LogSoftmax",
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceSumSquare",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ArgMax",
    "ArgMin",
    "TopK",
    "Pow",
    "Mod",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "PRelu",
    "Min",
    "Max",
    "Sum",
    "Mean",
    "Not",
    "Where",
    "Cast",
    "CastLike",
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Erf",
    "Sign",
    "Softplus",
    "Softsign",
    "Elu",
    "Selu",
    "Celu",
    "HardSigmoid",
    "HardSwish",
    "Gelu",
    "ThresholdedRelu",
    "Mish",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "Div",
    "Dropout",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LpPool",
    "Identity",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Mul",
    "Pad",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Softmax",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

pub(crate) struct Ctx<'p> {
    pub g: Graph,
    pub names: HashMap<String, ValueId>,
    pub unsupported: Vec<Unsupported>,
    opset: i64,
    dir: Option<&'p Path>,
}

/// The node being lowered: its proto, display name and resolved inputs (`None` = absent).
struct Cur<'n> {
    p: &'n NodeProto,
    name: String,
    ins: Vec<Option<ValueId>>,
}

impl Cur<'_> {
    fn attrs(&self) -> Attrs<'_> {
        Attrs(self.p)
    }

    fn input(&self, i: usize) -> LResult<ValueId> {
        self.ins.get(i).copied().flatten().ok_or_else(|| Fail::Invalid(format!("required input {i} is missing")))
    }

    fn opt_input(&self, i: usize) -> Option<ValueId> {
        self.ins.get(i).copied().flatten()
    }
}

impl<'p> Ctx<'p> {
    pub fn new(opset: i64, dir: Option<&'p Path>) -> Ctx<'p> {
        Ctx { g: Graph::default(), names: HashMap::new(), unsupported: vec![], opset, dir }
    }

    /// Decodes a tensor, reading external data relative to the model's folder.
    pub fn load_tensor(&self, t: &TensorProto) -> std::result::Result<(TensorType, TensorData), String> {
        if t.data_location == Some(1) {
            let get = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.clone());
            let loc = get("location").ok_or("external data without a location")?;
            let file = self.dir.unwrap_or(Path::new(".")).join(&loc);
            let bytes = std::fs::read(&file).map_err(|e| format!("external data {}: {e}", file.display()))?;
            let offset: usize = get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
            let end = match get("length").and_then(|v| v.parse::<usize>().ok()) {
                Some(len) => offset.saturating_add(len),
                None => bytes.len(),
            };
            let slice = bytes
                .get(offset..end)
                .ok_or_else(|| format!("external data {} is shorter than offset+length", file.display()))?;
            return tensor_proto::decode(t, Some(slice));
        }
        tensor_proto::decode(t, None)
    }

    /// Lowers one ONNX node. Malformed nodes fail at once; unsupported ones are recorded.
    pub fn lower(&mut self, p: &NodeProto, index: usize) -> Result<()> {
        let name = if p.name.is_empty() { format!("{}#{index}", p.op_type) } else { p.name.clone() };
        let mut ins = Vec::with_capacity(p.input.len());
        for i in &p.input {
            if i.is_empty() {
                ins.push(None);
                continue;
            }
            match self.names.get(i) {
                Some(&v) => ins.push(Some(v)),
                // Produced by an unsupported node: that node is already reported.
                None if !self.unsupported.is_empty() => return Ok(()),
                None => {
                    return Err(Error::node(
                        &name,
                        &p.op_type,
                        format!("input \"{i}\" is not defined by any earlier node, initializer or graph input"),
                    ));
                }
            }
        }
        let cur = Cur { p, name, ins };
        let domain_ok = p.domain.is_empty() || p.domain == "ai.onnx";
        let result = if domain_ok {
            self.dispatch_checked(&cur)
        } else {
            Err(Fail::Unsupported(Some(format!("domain \"{}\"", p.domain))))
        };
        match result {
            Ok(outs) => {
                for (name, id) in p.output.iter().zip(outs) {
                    if !name.is_empty() {
                        self.g.values[id.0].name = name.clone();
                        self.names.insert(name.clone(), id);
                    }
                }
                Ok(())
            }
            Err(Fail::Unsupported(reason)) => {
                self.unsupported.push(super::unsupported(&p.op_type, &cur.name, reason));
                Ok(())
            }
            Err(Fail::NeedsConst(reason, input)) => {
                self.needs_const(p, &cur, reason, input);
                Ok(())
            }
            Err(Fail::NeedsConsts(list)) => {
                for (reason, input) in list {
                    self.needs_const(p, &cur, reason, input);
                }
                Ok(())
            }
            Err(Fail::Invalid(msg)) => Err(Error::node(&cur.name, &p.op_type, msg)),
        }
    }

    fn needs_const(&mut self, p: &NodeProto, cur: &Cur, reason: String, input: String) {
        let mut u = super::unsupported(
            &p.op_type,
            &cur.name,
            Some(format!("{reason}; bind input \"{input}\" with --bind-input")),
        );
        u.needs_const = Some(input);
        self.unsupported.push(u);
    }

    /// Appends a node after inferring its output type; integer ops on constants are
    /// evaluated at once so shape computations (Shape → Gather → Concat → Reshape) resolve.
    fn emit(&mut self, cur: &Cur, op: Op, inputs: Vec<ValueId>) -> LResult<ValueId> {
        let tys: Vec<&TensorType> = inputs.iter().map(|&v| self.g.ty(v)).collect();
        if op.float_only()
            && let Some(t) = tys.iter().find(|t| !op.float_kernel_for(t.dtype))
        {
            return Err(Fail::Unsupported(Some(format!("{} on {} tensors (float32 only)", op.name(), t.dtype))));
        }
        let ty = op.infer(&tys)?;
        crate::ir::checked_len(&ty.shape)?;
        empty::check_kernel_inputs(&op, &tys, &ty)?;
        if ty.dtype != DType::F32 && inputs.iter().all(|&v| self.g.is_const(v)) {
            let args: Vec<(&TensorType, &TensorData)> =
                inputs.iter().filter_map(|&v| Some((self.g.ty(v), self.g.data(v)?))).collect();
            if let Some(data) = op.eval(&args, &ty).or_else(|| crate::interp::eval_op(&op, &args, &ty)) {
                return Ok(self.g.add_const(&cur.name, ty, data));
            }
        }
        let out = self.g.add_value(&cur.name, ty);
        self.g.nodes.push(Node {
            name: cur.name.clone(),
            onnx_op: cur.p.op_type.clone(),
            op,
            inputs,
            outputs: vec![out],
        });
        Ok(out)
    }

    fn constant(&mut self, name: &str, ty: TensorType, data: TensorData) -> ValueId {
        self.g.add_const(name, ty, data)
    }

    /// Constant integer list from an input (shape, axes, pads).
    /// The data of a value the lowering needs at build time, or why it is not available.
    fn const_data(&self, v: ValueId, what: &str) -> LResult<&TensorData> {
        self.g.data(v).ok_or_else(|| {
            let msg = format!("{what} must be a constant (computed {what} are not supported)");
            if let Some(input) = self.bindable(v) {
                Fail::NeedsConst(msg, self.g.value(input).name.clone())
            } else {
                Fail::Unsupported(Some(msg))
            }
        })
    }

    /// The graph input whose binding would make `v` a constant: `v` itself, or the input a
    /// Cast node converts (16-bit float inputs are widened by one, see `half`).
    fn bindable(&self, v: ValueId) -> Option<ValueId> {
        if self.g.is_graph_input(v) {
            return Some(v);
        }
        let n = self.g.nodes.iter().find(|n| n.outputs.contains(&v))?;
        match (&n.op, n.inputs.as_slice()) {
            (Op::Cast(_), &[x]) if self.g.is_graph_input(x) => Some(x),
            _ => None,
        }
    }

    fn const_ints(&self, v: ValueId, what: &str) -> LResult<Vec<i64>> {
        self.const_data(v, what)?.to_i64().ok_or_else(|| Fail::Invalid(format!("{what} must be an integer tensor")))
    }

    fn const_scalar(&self, v: ValueId, what: &str) -> LResult<f32> {
        self.const_data(v, what)?.to_f32().first().copied().ok_or_else(|| Fail::Invalid(format!("{what} is empty")))
    }

    fn shape(&self, v: ValueId) -> Vec<usize> {
        self.g.ty(v).shape.clone()
    }

    fn dispatch(&mut self, c: &Cur) -> LResult<Vec<ValueId>> {
        let a = c.attrs();
        let single = |v: ValueId| Ok(vec![v]);
        match c.p.op_type.as_str() {
            "Resize" | "Upsample" => single(self.resize(c)?),
            "LSTM" | "GRU" | "RNN" => self.recurrent(c),
            "Einsum" => single(self.einsum(c)?),
            "LRN" => {
                // x / (bias + alpha · mean of x² over `size` channels)^beta, with the channel
                // window as an average pool over [N, 1, C, H·W].
                let x = c.input(0)?;
                let xs = self.shape(x);
                let size = usize::try_from(a.int("size", 0)).map_err(|_| "size must be positive")?;
                if xs.len() < 3 || size == 0 || self.g.ty(x).dtype != DType::F32 {
                    return Err(Fail::Unsupported(Some("float input of rank >= 3 and a positive size".into())));
                }
                let plane: usize = xs[2..].iter().product();
                let sq = self.binary(c, BinaryKind::Mul, x, x)?;
                let r = self.reshape(c, sq, vec![xs[0], 1, xs[1], plane])?;
                let (before, after) = ((size - 1) / 2, size - 1 - (size - 1) / 2);
                let pool = Pool {
                    kind: PoolKind::Avg,
                    kernel: [size, 1],
                    strides: [1, 1],
                    dilations: [1, 1],
                    pads: [before, 0, after, 0],
                    ceil_mode: false,
                    count_include_pad: true,
                };
                let avg = self.emit(c, Op::Pool(pool), vec![r])?;
                let avg = self.reshape(c, avg, xs.clone())?;
                let scalar = |this: &mut Self, v: f32, what: &str| {
                    this.constant(&format!("{}/{what}", c.name), TensorType::f32(vec![]), TensorData::F32(vec![v]))
                };
                let (al, bi, be) = (
                    scalar(self, a.float("alpha", 1e-4), "alpha"),
                    scalar(self, a.float("bias", 1.0), "bias"),
                    scalar(self, a.float("beta", 0.75), "beta"),
                );
                let t = self.binary(c, BinaryKind::Mul, avg, al)?;
                let t = self.binary(c, BinaryKind::Add, t, bi)?;
                let u = self.binary(c, BinaryKind::Pow, t, be)?;
                single(self.binary(c, BinaryKind::Div, x, u)?)
            }
            "Hardmax" => {
                // one_hot(argmax(x, axis)) along axis, as Equal(argmax, iota) cast to float.
                let x = c.input(0)?;
                let xs = self.shape(x);
                let axis = norm_axis(a.int("axis", -1), xs.len())?;
                if self.opset < 13 {
                    return Err(Fail::Unsupported(Some("Hardmax before opset 13 (2-D coercion)".into())));
                }
                let am = self.emit(
                    c,
                    Op::ArgReduce(ArgReduce { max: true, axis, keepdims: true, select_last: false }),
                    vec![x],
                )?;
                let mut ishape = vec![1; xs.len()];
                ishape[axis] = xs[axis];
                let iota = self.constant(
                    &format!("{}/iota", c.name),
                    TensorType::new(DType::I64, ishape),
                    TensorData::I64((0..xs[axis] as i64).collect()),
                );
                let eq = self.binary(c, BinaryKind::Equal, am, iota)?;
                single(self.emit(c, Op::Cast(Cast::to(DType::F32)), vec![eq])?)
            }
            "Conv" => single(self.conv(c)?),
            "ConvTranspose" => single(self.conv_transpose(c)?),
            "Gemm" => {
                let op = Op::Gemm(Gemm {
                    trans_a: a.int("transA", 0) != 0,
                    trans_b: a.int("transB", 0) != 0,
                    alpha: a.float("alpha", 1.0),
                    beta: a.float("beta", 1.0),
                    act: None,
                });
                let mut ins = vec![c.input(0)?, c.input(1)?];
                ins.extend(c.opt_input(2));
                single(self.gemm(c, op, ins)?)
            }
            "MatMul" => single(self.matmul(c, c.input(0)?, c.input(1)?)?),
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "Equal" | "Less" | "Greater" | "LessOrEqual"
            | "GreaterOrEqual" | "And" | "Or" | "Xor" | "PRelu" => {
                let kind = match c.p.op_type.as_str() {
                    "Add" => BinaryKind::Add,
                    "Sub" => BinaryKind::Sub,
                    "Mul" => BinaryKind::Mul,
                    "Div" => BinaryKind::Div,
                    "Pow" => BinaryKind::Pow,
                    "Mod" => BinaryKind::Mod { fmod: a.int("fmod", 0) != 0 },
                    "Equal" => BinaryKind::Equal,
                    "Less" => BinaryKind::Less,
                    "Greater" => BinaryKind::Greater,
                    "LessOrEqual" => BinaryKind::LessOrEqual,
                    "GreaterOrEqual" => BinaryKind::GreaterOrEqual,
                    "And" => BinaryKind::And,
                    "Or" => BinaryKind::Or,
                    "Xor" => BinaryKind::Xor,
                    _ => BinaryKind::PRelu,
                };
                let (x, mut y) = (c.input(0)?, c.input(1)?);
                let (xs, ys) = (self.shape(x), self.shape(y));
                // Legacy broadcast (opset < 7): B broadcasts into A from `axis` on (default:
                // its trailing dims, NumPy's alignment); trailing ones place it at `axis`.
                if self.opset < 7 && a.int("broadcast", 0) != 0 && a.has("axis") {
                    let axis = norm_axis(a.int("axis", 0), xs.len())?;
                    let trailing = xs.len().checked_sub(axis + ys.len()).ok_or_else(|| {
                        Fail::Invalid(format!("legacy broadcast of {ys:?} into {xs:?} at axis {axis}"))
                    })?;
                    let mut shape = ys.clone();
                    shape.extend(std::iter::repeat_n(1, trailing));
                    y = self.reshape(c, y, shape)?;
                }
                let ys = self.shape(y);
                let (tx, ty) = (self.g.ty(x).dtype, self.g.ty(y).dtype);
                if kind == BinaryKind::Pow && (tx != DType::F32 || ty != DType::F32) {
                    // Pow with integer operands runs in float32 (exact below 2^24); the result
                    // has the base's type (integers truncate, as ONNX's reference does).
                    let to_f32 = |this: &mut Self, v: ValueId, t: DType| -> LResult<ValueId> {
                        match t {
                            DType::F32 => Ok(v),
                            t if t.is_int() => this.emit(c, Op::Cast(Cast::to(DType::F32)), vec![v]),
                            t => Err(Fail::Unsupported(Some(format!("Pow on {t} tensors")))),
                        }
                    };
                    let (xf, yf) = (to_f32(self, x, tx)?, to_f32(self, y, ty)?);
                    let p = self.binary(c, BinaryKind::Pow, xf, yf)?;
                    return single(if tx == DType::F32 { p } else { self.emit(c, Op::Cast(Cast::to(tx)), vec![p])? });
                }
                if kind == (BinaryKind::Mod { fmod: false }) && tx.is_float() && tx == ty {
                    // Float Mod with the divisor's sign: r = fmod(x, y); r + y where r ≠ 0 and
                    // the signs of r and y differ.
                    let r = self.binary(c, BinaryKind::Mod { fmod: true }, x, y)?;
                    let zero = crate::passes::zero_scalar(tx).ok_or("no zero of a float type")?;
                    let z = self.constant(&format!("{}/zero", c.name), TensorType::new(tx, vec![]), zero);
                    let r0 = self.binary(c, BinaryKind::Equal, r, z)?;
                    let nz = self.emit(c, Op::Not, vec![r0])?;
                    let (rn, yn) = (self.binary(c, BinaryKind::Less, r, z)?, self.binary(c, BinaryKind::Less, y, z)?);
                    let differ = self.binary(c, BinaryKind::Xor, rn, yn)?;
                    let cond = self.binary(c, BinaryKind::And, nz, differ)?;
                    let ry = self.binary(c, BinaryKind::Add, r, y)?;
                    return single(self.emit(c, Op::Where, vec![cond, ry, r])?);
                }
                // Legacy PRelu exports give one slope per channel as [C]: align it with axis 1.
                if kind == BinaryKind::PRelu
                    && ys.len() == 1
                    && xs.len() > 2
                    && xs[1] == ys[0]
                    && crate::ops::broadcast::broadcast_shapes(&xs, &ys).is_err()
                {
                    let mut per_channel = vec![ys[0]];
                    per_channel.extend(std::iter::repeat_n(1, xs.len() - 2));
                    y = self.reshape(c, y, per_channel)?;
                }
                single(self.binary(c, kind, x, y)?)
            }
            "Min" | "Max" | "Sum" | "Mean" => {
                let ins: Vec<ValueId> = c.ins.iter().flatten().copied().collect();
                let (&first, rest) = ins.split_first().ok_or("no inputs")?;
                let kind = match c.p.op_type.as_str() {
                    "Min" => BinaryKind::Min,
                    "Max" => BinaryKind::Max,
                    _ => BinaryKind::Add,
                };
                let mut acc = first;
                for &x in rest {
                    acc = self.binary(c, kind, acc, x)?;
                }
                if c.p.op_type == "Mean" && !rest.is_empty() {
                    let (ty, count) = match self.g.ty(first).dtype {
                        DType::F64 => (TensorType::new(DType::F64, vec![]), TensorData::F64(vec![ins.len() as f64])),
                        _ => (TensorType::f32(vec![]), TensorData::F32(vec![ins.len() as f32])),
                    };
                    let n = self.constant(&format!("{}/count", c.name), ty, count);
                    acc = self.binary(c, BinaryKind::Div, acc, n)?;
                }
                if acc == first {
                    let s = self.shape(first);
                    acc = self.reshape(c, first, s)?;
                }
                single(acc)
            }
            "Not" => single(self.emit(c, Op::Not, vec![c.input(0)?])?),
            "Where" => single(self.emit(c, Op::Where, vec![c.input(0)?, c.input(1)?, c.input(2)?])?),
            "QuantizeLinear" | "DequantizeLinear" => single(self.quantize_linear(c)?),
            "QLinearConv" | "QLinearMatMul" => single(self.qlinear(c)?),
            "ConvInteger" | "MatMulInteger" => single(self.integer_op(c)?),
            "DynamicQuantizeLinear" => self.dynamic_quantize(c),
            "Cast" | "CastLike" => {
                let x = c.input(0)?;
                let to = if c.p.op_type == "CastLike" {
                    self.g.ty(c.input(1)?).dtype
                } else {
                    super::tensor_proto::dtype_from_onnx(a.int("to", 0) as i32)
                        .map_err(|e| Fail::Unsupported(Some(e)))?
                };
                if to == DType::BF16 && self.opset < 19 && self.g.ty(x).dtype != DType::BF16 {
                    return Err(Fail::Unsupported(Some(
                        "conversion to bfloat16 before opset 19 (its rounding was unspecified and the reference \
                         truncated; modelless rounds to nearest even, as opset 19 specifies)"
                            .into(),
                    )));
                }
                let saturate = a.int("saturate", 1) != 0;
                let round_mode = match a.string("round_mode").as_deref() {
                    None | Some("up") => modelless_rt::E8M0_UP,
                    Some("down") => modelless_rt::E8M0_DOWN,
                    Some("nearest") => modelless_rt::E8M0_NEAREST,
                    Some(m) => return Err(Fail::Invalid(format!("round_mode \"{m}\" (up, down or nearest)"))),
                };
                single(self.emit(c, Op::Cast(Cast { to, saturate, round_mode }), vec![x])?)
            }
            "Neg" | "Abs" if self.g.ty(c.input(0)?).dtype != DType::F32 => {
                let x = c.input(0)?;
                let dt = self.g.ty(x).dtype;
                let zero =
                    crate::passes::zero_scalar(dt).ok_or_else(|| Fail::Unsupported(Some(format!("{dt} input"))))?;
                let z = self.constant(&format!("{}/zero", c.name), TensorType::new(dt, vec![]), zero);
                let neg = self.binary(c, BinaryKind::Sub, z, x)?;
                if c.p.op_type == "Neg" {
                    return single(neg);
                }
                single(self.binary(c, BinaryKind::Max, x, neg)?)
            }
            "Abs" => self.activation(c, Act::Abs),
            "Neg" => self.activation(c, Act::Neg),
            "Exp" => self.activation(c, Act::Exp),
            "Log" => self.activation(c, Act::Log),
            "Sqrt" => self.activation(c, Act::Sqrt),
            "Reciprocal" => self.activation(c, Act::Reciprocal),
            "Floor" => self.activation(c, Act::Floor),
            "Ceil" => self.activation(c, Act::Ceil),
            "Round" => self.activation(c, Act::Round),
            "Erf" => self.activation(c, Act::Erf),
            "Sign" => self.activation(c, Act::Sign),
            "Softplus" => self.activation(c, Act::Softplus),
            "Softsign" => self.activation(c, Act::Softsign),
            "Elu" => self.activation(c, Act::Elu { alpha: a.float("alpha", 1.0) }),
            "Selu" => self
                .activation(c, Act::Selu { alpha: a.float("alpha", 1.673_263_2), gamma: a.float("gamma", 1.050_701) }),
            "Celu" => self.activation(c, Act::Celu { alpha: a.float("alpha", 1.0) }),
            "HardSigmoid" => {
                self.activation(c, Act::HardSigmoid { alpha: a.float("alpha", 0.2), beta: a.float("beta", 0.5) })
            }
            "HardSwish" => self.activation(c, Act::HardSwish),
            "Gelu" => match a.string("approximate").as_deref().unwrap_or("none") {
                "tanh" => self.activation(c, Act::GeluTanh),
                _ => self.activation(c, Act::Gelu),
            },
            "ThresholdedRelu" => self.activation(c, Act::ThresholdedRelu { alpha: a.float("alpha", 1.0) }),
            "Mish" => self.activation(c, Act::Mish),
            "Sin" => self.activation(c, Act::Sin),
            "Cos" => self.activation(c, Act::Cos),
            "Tan" => self.activation(c, Act::Tan),
            "Asin" => self.activation(c, Act::Asin),
            "Acos" => self.activation(c, Act::Acos),
            "Atan" => self.activation(c, Act::Atan),
            "Sinh" => self.activation(c, Act::Sinh),
            "Cosh" => self.activation(c, Act::Cosh),
            "Asinh" => self.activation(c, Act::Asinh),
            "Acosh" => self.activation(c, Act::Acosh),
            "Atanh" => self.activation(c, Act::Atanh),
            "Relu" => self.activation(c, Act::Relu),
            "Sigmoid" => self.activation(c, Act::Sigmoid),
            "Tanh" => self.activation(c, Act::Tanh),
            "LeakyRelu" => self.activation(c, Act::LeakyRelu { alpha: a.float("alpha", 0.01) }),
            "Clip"
                if self.opset >= 11
                    && (c.opt_input(1).is_some_and(|v| !self.g.is_const(v))
                        || c.opt_input(2).is_some_and(|v| !self.g.is_const(v))
                        || self.g.ty(c.input(0)?).dtype != DType::F32) =>
            {
                // Run-time bounds (or integer data): Min(Max(x, lo), hi).
                let mut y = c.input(0)?;
                if let Some(lo) = c.opt_input(1) {
                    y = self.binary(c, BinaryKind::Max, y, lo)?;
                }
                if let Some(hi) = c.opt_input(2) {
                    y = self.binary(c, BinaryKind::Min, y, hi)?;
                }
                if c.opt_input(1).is_none() && c.opt_input(2).is_none() {
                    let s = self.shape(y);
                    y = self.reshape(c, y, s)?;
                }
                single(y)
            }
            "LayerNormalization" => self.layer_norm(c),
            "InstanceNormalization" => single(self.instance_norm(c)?),
            "Trilu" => {
                let x = c.input(0)?;
                let xs = self.shape(x);
                if xs.len() < 2 {
                    return Err("input must have rank >= 2".into());
                }
                let k = match c.opt_input(1) {
                    Some(v) => self.const_ints(v, "k")?.first().copied().unwrap_or(0),
                    None => 0,
                };
                let upper = a.int("upper", 1) != 0;
                let (rows, cols) = (xs[xs.len() - 2], xs[xs.len() - 1]);
                let mask: Vec<bool> = (0..rows * cols)
                    .map(|i| {
                        let (r, col) = ((i / cols) as i64, (i % cols) as i64);
                        if upper { col - r >= k } else { col - r <= k }
                    })
                    .collect();
                let m = self.constant(
                    &format!("{}/mask", c.name),
                    TensorType::new(DType::Bool, vec![rows, cols]),
                    TensorData::Bool(mask),
                );
                let dt = self.g.ty(x).dtype;
                let zero =
                    crate::passes::zero_scalar(dt).ok_or_else(|| Fail::Unsupported(Some(format!("{dt} input"))))?;
                let z = self.constant(&format!("{}/zero", c.name), TensorType::new(dt, vec![]), zero);
                single(self.emit(c, Op::Where, vec![m, x, z])?)
            }
            "Clip" => {
                let (min, max) = if self.opset < 11 {
                    (a.float("min", f32::NEG_INFINITY), a.float("max", f32::INFINITY))
                } else {
                    let min = match c.opt_input(1) {
                        Some(v) => self.const_scalar(v, "min")?,
                        None => f32::NEG_INFINITY,
                    };
                    let max = match c.opt_input(2) {
                        Some(v) => self.const_scalar(v, "max")?,
                        None => f32::INFINITY,
                    };
                    (min, max)
                };
                self.activation(c, Act::Clip { min, max })
            }
            "Softmax" | "LogSoftmax" => single(self.softmax(c)?),
            "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1" | "ReduceL2"
            | "ReduceSumSquare" | "ReduceLogSum" | "ReduceLogSumExp" => single(self.reduce(c)?),
            "ArgMax" | "ArgMin" => {
                let x = c.input(0)?;
                let axis = norm_axis(a.int("axis", 0), self.shape(x).len())?;
                let op = ArgReduce {
                    max: c.p.op_type == "ArgMax",
                    axis,
                    keepdims: a.int("keepdims", 1) != 0,
                    select_last: a.int("select_last_index", 0) != 0,
                };
                single(self.emit(c, Op::ArgReduce(op), vec![x])?)
            }
            "TopK" => {
                // One node per output, each recomputing the selection.
                let x = c.input(0)?;
                let axis = norm_axis(a.int("axis", -1), self.shape(x).len())?;
                let k = if self.opset >= 10 {
                    let ks = self.const_ints(c.input(1)?, "k")?;
                    *ks.first().ok_or("k is empty")?
                } else {
                    a.int("k", -1)
                };
                let k = usize::try_from(k).map_err(|_| format!("k = {k} must be non-negative"))?;
                let op = |indices| TopK {
                    k,
                    axis,
                    largest: a.int("largest", 1) != 0,
                    sorted: a.int("sorted", 1) != 0,
                    indices,
                };
                let values = self.emit(c, Op::TopK(op(false)), vec![x])?;
                let indices = self.emit(c, Op::TopK(op(true)), vec![x])?;
                Ok(vec![values, indices])
            }
            "MaxPool" | "AveragePool" => {
                let y = self.pool(c)?;
                if c.p.output.len() > 1 && !c.p.output[1].is_empty() {
                    return Ok(vec![y, self.max_pool_indices(c)?]);
                }
                single(y)
            }
            "LpPool" => single(self.lp_pool(c)?),
            "GlobalAveragePool" | "GlobalMaxPool" => {
                let x = c.input(0)?;
                let orig = self.shape(x);
                if orig.len() < 3 {
                    return Err(Fail::Unsupported(Some(format!("rank {} input", orig.len()))));
                }
                // Any spatial rank: pool over one flattened plane, keep the rank.
                let plane: usize = orig[2..].iter().product();
                let x = if orig.len() == 4 { x } else { self.reshape(c, x, vec![orig[0], orig[1], 1, plane])? };
                let s = self.shape(x);
                let kind = if c.p.op_type == "GlobalMaxPool" { PoolKind::Max } else { PoolKind::Avg };
                let op = Pool {
                    kind,
                    kernel: [s[2], s[3]],
                    strides: [1, 1],
                    dilations: [1, 1],
                    pads: [0; 4],
                    ceil_mode: false,
                    count_include_pad: false,
                };
                let y = self.emit(c, Op::Pool(op), vec![x])?;
                if orig.len() == 4 {
                    return single(y);
                }
                let mut keep = vec![orig[0], orig[1]];
                keep.extend(std::iter::repeat_n(1, orig.len() - 2));
                single(self.reshape(c, y, keep)?)
            }
            "BatchNormalization" => {
                if a.int("training_mode", 0) != 0 {
                    return self.batch_norm_training(c);
                }
                if c.p.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(Fail::Unsupported(Some("running statistics outputs outside training mode".into())));
                }
                let ins = (0..5).map(|i| c.input(i)).collect::<LResult<Vec<_>>>()?;
                let epsilon = a.float("epsilon", 1e-5);
                if ins[1..].iter().any(|&v| !self.g.is_const(v)) {
                    // Statistics given at run time: (x - mean) / sqrt(var + eps) · scale + bias,
                    // each per-channel vector broadcast over axis 1.
                    let xs = self.shape(ins[0]);
                    if xs.len() < 2 || self.g.ty(ins[0]).dtype != DType::F32 {
                        return Err(Fail::Unsupported(Some(
                            "run-time statistics need a float32 input of rank >= 2".into(),
                        )));
                    }
                    let mut per_channel = vec![xs[1]];
                    per_channel.extend(std::iter::repeat_n(1, xs.len() - 2));
                    let [sc, bi, mean, var] =
                        [ins[1], ins[2], ins[3], ins[4]].map(|v| self.reshape(c, v, per_channel.clone()));
                    let (sc, bi, mean, var) = (sc?, bi?, mean?, var?);
                    let e = self.constant(
                        &format!("{}/epsilon", c.name),
                        TensorType::f32(vec![]),
                        TensorData::F32(vec![epsilon]),
                    );
                    let ve = self.binary(c, BinaryKind::Add, var, e)?;
                    let sd = self.emit(c, Op::Activation(Act::Sqrt), vec![ve])?;
                    let d = self.binary(c, BinaryKind::Sub, ins[0], mean)?;
                    let n = self.binary(c, BinaryKind::Div, d, sd)?;
                    let y = self.binary(c, BinaryKind::Mul, n, sc)?;
                    return single(self.binary(c, BinaryKind::Add, y, bi)?);
                }
                single(self.emit(c, Op::BatchNorm(BatchNorm { epsilon }), ins)?)
            }
            "Reshape" => {
                let x = c.input(0)?;
                let spec = self.const_ints(c.input(1)?, "shape")?;
                let shape = reshape_target(&self.shape(x), &spec, a.int("allowzero", 0) != 0)?;
                single(self.reshape(c, x, shape)?)
            }
            "Flatten" => {
                let x = c.input(0)?;
                let s = self.shape(x);
                let axis = a.int("axis", 1);
                let axis = if axis < 0 { axis + s.len() as i64 } else { axis };
                if axis < 0 || axis as usize > s.len() {
                    return Err(format!("axis {axis} out of range for rank {}", s.len()).into());
                }
                let (l, r) = s.split_at(axis as usize);
                single(self.reshape(c, x, vec![l.iter().product(), r.iter().product()])?)
            }
            "Squeeze" | "Unsqueeze" => {
                let x = c.input(0)?;
                let axes = match (self.opset >= 13, c.opt_input(1)) {
                    (true, Some(v)) => Some(self.const_ints(v, "axes")?),
                    (true, None) => None,
                    (false, _) => a.ints("axes"),
                };
                let s = self.shape(x);
                let shape = if c.p.op_type == "Squeeze" {
                    squeeze(&s, axes)?
                } else {
                    unsqueeze(&s, axes.ok_or("axes are required")?)?
                };
                single(self.reshape(c, x, shape)?)
            }
            "Identity" => {
                let x = c.input(0)?;
                let s = self.shape(x);
                single(self.reshape(c, x, s)?)
            }
            "Dropout" => {
                // Inference (and training with ratio 0) is the identity with an all-true mask.
                let training = match c.opt_input(2) {
                    Some(t) => self.const_scalar(t, "training_mode")? != 0.0,
                    None => false,
                };
                if training {
                    let ratio = match c.opt_input(1) {
                        Some(r) => self.const_scalar(r, "ratio")?,
                        None => 0.5,
                    };
                    if ratio != 0.0 {
                        return Err(Fail::Unsupported(Some(format!(
                            "training mode with ratio {ratio} (random masks are nondeterministic; export in inference mode)"
                        ))));
                    }
                }
                let x = c.input(0)?;
                let s = self.shape(x);
                let y = self.reshape(c, x, s.clone())?;
                if c.p.output.len() < 2 || c.p.output[1].is_empty() {
                    return single(y);
                }
                // Before opset 10 the mask has the input's type (ones); from 10 on it is bool.
                let n = self.g.ty(x).len();
                let (ty, data) = if self.opset >= 10 {
                    (TensorType::new(DType::Bool, s), TensorData::Bool(vec![true; n]))
                } else {
                    let dt = self.g.ty(x).dtype;
                    let data = Cast::to(dt)
                        .eval(&TensorData::F32(vec![1.0]))
                        .ok_or_else(|| Fail::Unsupported(Some(format!("{dt} mask"))))?;
                    (TensorType::new(dt, s), data.gather(&vec![0; n]))
                };
                let mask = self.constant(&format!("{}/mask", c.name), ty, data);
                Ok(vec![y, mask])
            }
            "Transpose" => {
                let x = c.input(0)?;
                let rank = self.shape(x).len();
                let perm = a.usizes("perm", (0..rank).rev().collect())?;
                single(self.emit(c, Op::Transpose(Transpose { perm }), vec![x])?)
            }
            "Concat" => {
                let ins: Vec<ValueId> = c.ins.iter().flatten().copied().collect();
                let first = ins.first().ok_or("no inputs")?;
                let axis = norm_axis(a.int("axis", 0), self.shape(*first).len())?;
                single(self.emit(c, Op::Concat(Concat { axis }), ins)?)
            }
            "Pad" => single(self.pad(c)?),
            "Slice" => single(self.slice(c)?),
            "Split" => self.split(c),
            "Expand" => {
                let x = c.input(0)?;
                let spec = self.const_ints(c.input(1)?, "shape")?;
                let spec = spec
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| Fail::Invalid(format!("negative dimension {d} in shape"))))
                    .collect::<LResult<Vec<_>>>()?;
                let shape = crate::ops::broadcast::broadcast_shapes(&self.shape(x), &spec)?;
                single(self.expand(c, x, shape)?)
            }
            "Tile" => {
                let x = c.input(0)?;
                let reps = self.const_ints(c.input(1)?, "repeats")?;
                let xs = self.shape(x);
                if reps.len() != xs.len() || reps.iter().any(|&r| r < 0) {
                    return Err(format!("repeats {reps:?} do not match rank {}", xs.len()).into());
                }
                // Tile = reshape to [1, d0, 1, d1, ..] → expand to [r0, d0, r1, d1, ..] → reshape.
                let inter: Vec<usize> = xs.iter().flat_map(|&d| [1, d]).collect();
                let big: Vec<usize> = xs.iter().zip(&reps).flat_map(|(&d, &r)| [r as usize, d]).collect();
                crate::ir::checked_len(&big)?;
                let fin: Vec<usize> = xs.iter().zip(&reps).map(|(&d, &r)| d.saturating_mul(r as usize)).collect();
                let r1 = self.reshape(c, x, inter)?;
                let e = self.expand(c, r1, big)?;
                single(self.reshape(c, e, fin)?)
            }
            "Gather" => {
                let x = c.input(0)?;
                let axis = norm_axis(a.int("axis", 0), self.shape(x).len())?;
                single(self.emit(c, Op::Gather(Gather { axis }), vec![x, c.input(1)?])?)
            }
            "GatherElements" => {
                let x = c.input(0)?;
                let axis = norm_axis(a.int("axis", 0), self.shape(x).len())?;
                single(self.emit(c, Op::GatherElements(GatherElements { axis }), vec![x, c.input(1)?])?)
            }
            "ConstantOfShape" => {
                let shape = self.const_ints(c.input(0)?, "shape")?;
                let shape = shape
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| Fail::Invalid(format!("negative dimension {d}"))))
                    .collect::<LResult<Vec<_>>>()?;
                let n = crate::ir::checked_len(&shape)?;
                let (ty, data) = match a.tensor("value") {
                    Some(t) => self.load_tensor(t)?,
                    None => (TensorType::f32(vec![1]), TensorData::F32(vec![0.0])),
                };
                if data.is_empty() {
                    return Err("value is empty".into());
                }
                let data = data.gather(&vec![0; n]);
                Ok(vec![self.constant(&c.name, TensorType::new(ty.dtype, shape), data)])
            }
            "Range" => {
                let (st, li, de) = (c.input(0)?, c.input(1)?, c.input(2)?);
                let dt = self.g.ty(st).dtype;
                let (data, n) = if dt == DType::F32 {
                    let (s0, l, d) = (
                        self.const_scalar(st, "start")?,
                        self.const_scalar(li, "limit")?,
                        self.const_scalar(de, "delta")?,
                    );
                    let n = (((l - s0) / d).ceil()).max(0.0) as usize;
                    crate::ir::checked_len(&[n])?;
                    (TensorData::F32((0..n).map(|i| s0 + i as f32 * d).collect()), n)
                } else {
                    let one = |v: ValueId, w: &str| -> LResult<i64> {
                        self.const_ints(v, w)?.first().copied().ok_or_else(|| Fail::Invalid(format!("{w} is empty")))
                    };
                    let (s0, l, d) = (one(st, "start")?, one(li, "limit")?, one(de, "delta")?);
                    if d == 0 {
                        return Err("delta must not be 0".into());
                    }
                    let n = ((l as f64 - s0 as f64) / d as f64).ceil().max(0.0) as usize;
                    crate::ir::checked_len(&[n])?;
                    let v: Vec<i64> = (0..n as i64).map(|i| s0.wrapping_add(i.wrapping_mul(d))).collect();
                    let data = match dt {
                        DType::I32 => TensorData::I32(v.iter().map(|&x| x as i32).collect()),
                        _ => TensorData::I64(v),
                    };
                    (data, n)
                };
                Ok(vec![self.constant(&c.name, TensorType::new(dt, vec![n]), data)])
            }
            "Size" => {
                let n = self.g.ty(c.input(0)?).len() as i64;
                Ok(vec![self.constant(&c.name, TensorType::new(DType::I64, vec![]), TensorData::I64(vec![n]))])
            }
            "DepthToSpace" | "SpaceToDepth" => {
                let x = c.input(0)?;
                let xs = self.shape(x);
                let bs = usize::try_from(a.int("blocksize", 0)).map_err(|_| "blocksize must be positive")?;
                if xs.len() != 4 || bs == 0 {
                    return Err(Fail::Unsupported(Some("only 4-D inputs with a positive blocksize".into())));
                }
                let [n, ch, h, w] = [xs[0], xs[1], xs[2], xs[3]];
                let (inter, perm, fin) = if c.p.op_type == "DepthToSpace" {
                    if ch % (bs * bs) != 0 {
                        return Err("channels are not divisible by blocksize²".into());
                    }
                    let co = ch / (bs * bs);
                    let crd = a.string("mode").as_deref() == Some("CRD");
                    if crd {
                        (vec![n, co, bs, bs, h, w], vec![0, 1, 4, 2, 5, 3], vec![n, co, h * bs, w * bs])
                    } else {
                        (vec![n, bs, bs, co, h, w], vec![0, 3, 4, 1, 5, 2], vec![n, co, h * bs, w * bs])
                    }
                } else {
                    if h % bs != 0 || w % bs != 0 {
                        return Err("spatial size is not divisible by blocksize".into());
                    }
                    let crd = a.string("mode").as_deref() == Some("CRD");
                    let perm = if crd { vec![0, 1, 3, 5, 2, 4] } else { vec![0, 3, 5, 1, 2, 4] };
                    (vec![n, ch, h / bs, bs, w / bs, bs], perm, vec![n, ch * bs * bs, h / bs, w / bs])
                };
                let r = self.reshape(c, x, inter)?;
                let t = self.emit(c, Op::Transpose(Transpose { perm }), vec![r])?;
                single(self.reshape(c, t, fin)?)
            }
            "Constant" => {
                let (ty, data) = if let Some(t) = a.tensor("value") {
                    self.load_tensor(t)?
                } else if let Some(f) = a.floats("value_floats") {
                    (TensorType::f32(vec![f.len()]), TensorData::F32(f))
                } else if a.has("value_float") {
                    (TensorType::f32(vec![]), TensorData::F32(vec![a.float("value_float", 0.0)]))
                } else if let Some(i) = a.ints("value_ints") {
                    (TensorType::new(DType::I64, vec![i.len()]), TensorData::I64(i))
                } else if a.has("value_int") {
                    (TensorType::new(DType::I64, vec![]), TensorData::I64(vec![a.int("value_int", 0)]))
                } else {
                    return Err(Fail::Unsupported(Some("only tensor, float(s) and int(s) values".into())));
                };
                Ok(vec![self.constant(&c.name, ty, data)])
            }
            "Shape" => {
                let s: Vec<i64> = self.shape(c.input(0)?).iter().map(|&d| d as i64).collect();
                let r = s.len() as i64;
                let clamp = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) } as usize;
                let (start, end) = (clamp(a.int("start", 0)), clamp(a.int("end", r)));
                let v = s.get(start..end.max(start)).unwrap_or(&[]).to_vec();
                Ok(vec![self.constant(&c.name, TensorType::new(DType::I64, vec![v.len()]), TensorData::I64(v))])
            }
            _ => Err(Fail::Unsupported(None)),
        }
    }

    /// A binary node, reported unsupported when the kind does not take the input type.
    fn binary(&mut self, c: &Cur, kind: BinaryKind, x: ValueId, y: ValueId) -> LResult<ValueId> {
        let (tx, ty) = (self.g.ty(x).dtype, self.g.ty(y).dtype);
        if tx != ty {
            return Err(Fail::Unsupported(Some(format!("mixed input types {tx} and {ty}"))));
        }
        if !kind.accepts(tx) {
            return Err(Fail::Unsupported(Some(format!("{} on {tx} tensors", kind.name()))));
        }
        self.emit(c, Op::Binary(Binary { kind, act: None }), vec![x, y])
    }

    /// An elementwise function node: float32, or float64 for the functions with a float64
    /// helper ([`Act::helper64`]).
    fn activation(&mut self, c: &Cur, act: Act) -> LResult<Vec<ValueId>> {
        let x = c.input(0)?;
        let dt = self.g.ty(x).dtype;
        if !(dt == DType::F32 || dt == DType::F64 && act.helper64().is_some()) {
            let also = if act.helper64().is_some() { " and float64" } else { "" };
            return Err(Fail::Unsupported(Some(format!("{dt} input (float32{also} only)"))));
        }
        Ok(vec![self.emit(c, Op::Activation(act), vec![x])?])
    }

    fn reshape(&mut self, c: &Cur, x: ValueId, shape: Vec<usize>) -> LResult<ValueId> {
        self.emit(c, Op::Reshape(Reshape { shape }), vec![x])
    }

    /// 1-D convolution and pooling run as 2-D over a height of 1: `[N, C, L]` becomes
    /// `[N, C, 1, L]` and the result is reshaped back.
    fn lift_1d(&mut self, c: &Cur, v: ValueId) -> LResult<ValueId> {
        let s = self.shape(v);
        let lifted = vec![s[0], s[1], 1, s[2]];
        self.reshape(c, v, lifted)
    }

    /// `(kernel, strides, dilations)` as 2-D, reading 1-D attributes as `[1, v]`.
    fn window_attrs(
        &self,
        c: &Cur,
        one_d: bool,
        kernel_default: Vec<usize>,
    ) -> LResult<([usize; 2], [usize; 2], [usize; 2])> {
        let a = c.attrs();
        let n = if one_d { 1 } else { 2 };
        let lift = |v: Vec<usize>, what: &str| -> LResult<[usize; 2]> {
            if one_d {
                match v.as_slice() {
                    [x] => Ok([1, *x]),
                    _ => Err(format!("attribute '{what}' must have 1 value for 1-D, got {v:?}").into()),
                }
            } else {
                pair(&v, what)
            }
        };
        Ok((
            lift(a.usizes("kernel_shape", kernel_default)?, "kernel_shape")?,
            lift(a.usizes("strides", vec![1; n])?, "strides")?,
            lift(a.usizes("dilations", vec![1; n])?, "dilations")?,
        ))
    }

    /// Constant quantization parameters of a QuantizeLinear / DequantizeLinear-style node:
    /// scale input `si`, optional zero point input `zi`, for a tensor of `shape`; with the
    /// zero point's type and the block size of a blocked quantization (opset 21
    /// `block_size`, see [`ParamLayout`]).
    fn quant_params(&self, c: &Cur, si: usize, zi: usize, shape: &[usize]) -> LResult<(Quant, DType, Option<usize>)> {
        let a = c.attrs();
        let scale_v = c.input(si)?;
        let zp_v = c.opt_input(zi);
        // Both missing constants are reported at once.
        self.require_consts(c, &[(si, "scale"), (zi, "zero point")])?;
        let scale = self.const_data(scale_v, "scale")?.to_f32();
        let (zp, zdt) = match zp_v {
            Some(z) => {
                let d = self.const_data(z, "zero point")?;
                let ints = d.to_i64().ok_or_else(|| Fail::Unsupported(Some(format!("{} zero point", d.dtype()))))?;
                (ints.iter().map(|&v| v as i32).collect::<Vec<_>>(), d.dtype())
            }
            None => (vec![0; scale.len()], DType::U8),
        };
        if scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Fail::Invalid("scales must be positive and finite".into()));
        }
        let block = a.int("block_size", 0);
        if block != 0 {
            let b = usize::try_from(block).map_err(|_| format!("block_size {block} must be positive"))?;
            let axis = norm_axis(a.int("axis", 1), shape.len())?;
            let ss = self.shape(scale_v);
            let mut want = shape.to_vec();
            want[axis] = shape[axis].div_ceil(b);
            if ss != want || zp.len() != scale.len() {
                return Err(Fail::Invalid(format!(
                    "blocked scale / zero point must have shape {want:?} (input {shape:?}, block_size {b}), got {ss:?}"
                )));
            }
            return Ok((Quant { scale, zero_point: zp, axis: Some(axis) }, zdt, Some(b)));
        }
        let per_axis = self.g.ty(scale_v).shape.len() == 1 && scale.len() > 1;
        let axis = if per_axis { Some(norm_axis(a.int("axis", 1), shape.len())?) } else { None };
        let zp = if zp.len() == 1 && scale.len() > 1 { vec![zp[0]; scale.len()] } else { zp };
        if zp.len() != scale.len() {
            return Err(Fail::Invalid(format!("{} scales but {} zero points", scale.len(), zp.len())));
        }
        Ok((Quant { scale, zero_point: zp, axis }, zdt, None))
    }

    /// Checks that the inputs `idx` (those present) are build-time constants, listing every
    /// graph input that needs binding at once; a computed one is unsupported.
    fn require_consts(&self, c: &Cur, idx: &[(usize, &str)]) -> LResult<()> {
        let mut needs = vec![];
        for &(i, what) in idx {
            let Some(v) = c.opt_input(i) else { continue };
            if self.g.is_const(v) {
                continue;
            }
            if let Some(input) = self.bindable(v) {
                needs.push((format!("{what} must be a constant"), self.g.value(input).name.clone()));
            } else {
                return Err(Fail::Unsupported(Some(format!(
                    "run-time {what} (computed in the graph; must be a constant)"
                ))));
            }
        }
        if needs.is_empty() { Ok(()) } else { Err(Fail::NeedsConsts(needs)) }
    }

    /// Constant scales of input `i` (one, or one per channel), positive and finite.
    fn q_scales(&self, c: &Cur, i: usize, what: &str) -> LResult<Vec<f64>> {
        let s = self.const_data(c.input(i)?, what)?.to_f32();
        if s.is_empty() || s.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
            return Err(Fail::Invalid(format!("{what} must be positive and finite")));
        }
        Ok(s.iter().map(|&x| x as f64).collect())
    }

    /// Constant zero points of the optional input `i` and their type (`[0]` of type `default`
    /// when absent).
    fn q_zero_points(&self, c: &Cur, i: usize, what: &str, default: DType) -> LResult<(Vec<i32>, DType)> {
        let Some(v) = c.opt_input(i) else { return Ok((vec![0], default)) };
        let d = self.const_data(v, what)?;
        if !matches!(d.dtype(), DType::I8 | DType::U8) {
            return Err(Fail::Unsupported(Some(format!("{} {what} (int8 and uint8 only)", d.dtype()))));
        }
        let ints = d.to_i64().ok_or_else(|| Fail::Unsupported(Some(format!("{} {what}", d.dtype()))))?;
        if ints.is_empty() {
            return Err(Fail::Invalid(format!("{what} is empty")));
        }
        Ok((ints.iter().map(|&v| v as i32).collect(), d.dtype()))
    }

    /// Requires int8/uint8 data inputs `idx`.
    fn expect_q_inputs(&self, c: &Cur, idx: &[usize]) -> LResult<()> {
        for &i in idx {
            let dt = self.g.ty(c.input(i)?).dtype;
            if !matches!(dt, DType::I8 | DType::U8) {
                return Err(Fail::Unsupported(Some(format!("{dt} input {i} (int8 and uint8 only)"))));
            }
        }
        Ok(())
    }

    /// QLinearConv / QLinearMatMul: integer Conv / MatMul requantized into `y_scale`,
    /// `y_zero_point` with the factor `x_scale · w_scale[m] / y_scale` per output channel.
    fn qlinear(&mut self, c: &Cur) -> LResult<ValueId> {
        let conv = c.p.op_type == "QLinearConv";
        let names: [&str; 6] = if conv {
            ["x_scale", "x_zero_point", "w_scale", "w_zero_point", "y_scale", "y_zero_point"]
        } else {
            ["a_scale", "a_zero_point", "b_scale", "b_zero_point", "y_scale", "y_zero_point"]
        };
        self.require_consts(
            c,
            &[(1, names[0]), (2, names[1]), (4, names[2]), (5, names[3]), (6, names[4]), (7, names[5])],
        )?;
        self.expect_q_inputs(c, &[0, 3])?;
        let (x, w) = (c.input(0)?, c.input(3)?);
        let x_dt = self.g.ty(x).dtype;
        let xs = self.q_scales(c, 1, names[0])?;
        let (xz, _) = self.q_zero_points(c, 2, names[1], x_dt)?;
        let ws = self.q_scales(c, 4, names[2])?;
        let (wz, _) = self.q_zero_points(c, 5, names[3], self.g.ty(w).dtype)?;
        let ys = self.q_scales(c, 6, names[4])?;
        let (yz, y_dt) = self.q_zero_points(c, 7, names[5], x_dt)?;
        if xs.len() != 1 || xz.len() != 1 {
            let what = if conv { "per-channel x_scale / x_zero_point" } else { "per-row a_scale / a_zero_point" };
            return Err(Fail::Unsupported(Some(format!("{what} (only per-tensor quantization of the first input)"))));
        }
        if ys.len() != 1 || yz.len() != 1 {
            return Err(Fail::Unsupported(Some("per-channel y_scale / y_zero_point (only per tensor)".into())));
        }
        let real: Vec<f64> = ws.iter().map(|s| xs[0] * s / ys[0]).collect();
        let out = Some(Requant::new(&real, yz[0], y_dt));
        if conv {
            let (x, w, geom, one_d) = self.conv_geometry(c, x, w, false)?;
            let mut ins = vec![x, w];
            ins.extend(c.opt_input(8));
            let y = self.emit(c, Op::QConv(QConv { conv: geom, x_zp: xz[0], w_zp: wz, out }), ins)?;
            return self.unlift_1d(c, y, one_d);
        }
        self.emit(c, Op::QMatMul(QMatMul { a_zp: xz[0], b_zp: wz, out }), vec![x, w])
    }

    /// ConvInteger / MatMulInteger: the int32 accumulators of an integer Conv / MatMul.
    /// Constant zero points give a QConv / QMatMul; a zero point computed at run time (from
    /// DynamicQuantizeLinear) gives a float32 Conv / MatMul of the zero-point-shifted values
    /// cast back to int32 (exact while partial sums stay below 2^24).
    fn integer_op(&mut self, c: &Cur) -> LResult<ValueId> {
        let conv = c.p.op_type == "ConvInteger";
        let (xn, wn) = if conv { ("x_zero_point", "w_zero_point") } else { ("a_zero_point", "b_zero_point") };
        self.expect_q_inputs(c, &[0, 1])?;
        let (x, w) = (c.input(0)?, c.input(1)?);
        let runtime_zp = c.opt_input(2).filter(|&v| !self.g.is_const(v) && self.bindable(v).is_none());
        let required: Vec<(usize, &str)> = if runtime_zp.is_some() { vec![(3, wn)] } else { vec![(2, xn), (3, wn)] };
        self.require_consts(c, &required)?;
        let (wz, _) = self.q_zero_points(c, 3, wn, self.g.ty(w).dtype)?;
        if let Some(zp) = runtime_zp {
            return self.integer_op_float(c, x, w, zp, &wz, conv);
        }
        let (xz, _) = self.q_zero_points(c, 2, xn, self.g.ty(x).dtype)?;
        if xz.len() != 1 {
            return Err(Fail::Unsupported(Some(format!("per-row {xn} (only per tensor)"))));
        }
        if conv {
            let (x, w, geom, one_d) = self.conv_geometry(c, x, w, false)?;
            let y = self.emit(c, Op::QConv(QConv { conv: geom, x_zp: xz[0], w_zp: wz, out: None }), vec![x, w])?;
            return self.unlift_1d(c, y, one_d);
        }
        self.emit(c, Op::QMatMul(QMatMul { a_zp: xz[0], b_zp: wz, out: None }), vec![x, w])
    }

    /// ConvInteger / MatMulInteger with the run-time scalar zero point `zp` of `x`:
    /// `Cast(float32 Conv/MatMul(Cast(x) − Cast(zp), w − w_zp), int32)`, `w` constant.
    fn integer_op_float(
        &mut self,
        c: &Cur,
        x: ValueId,
        w: ValueId,
        zp: ValueId,
        wz: &[i32],
        conv: bool,
    ) -> LResult<ValueId> {
        if self.g.ty(zp).len() != 1 {
            return Err(Fail::Unsupported(Some("run-time zero point with more than one element".into())));
        }
        let ws = self.shape(w);
        let wdata = self
            .g
            .data(w)
            .ok_or_else(|| Fail::Unsupported(Some("run-time zero point with a non-constant weight".into())))?;
        let wv = wdata.to_f32();
        // Weight zero point channel of each element: axis 0 for Conv, the last axis (columns) for MatMul.
        let n = wv.len();
        let (axis_len, inner) = if conv {
            (ws.first().copied().unwrap_or(1), n / ws.first().copied().unwrap_or(1).max(1))
        } else {
            (ws.last().copied().unwrap_or(1), 1)
        };
        if !(wz.len() == 1 || wz.len() == axis_len) {
            return Err(format!("{} weight zero points for {axis_len} channels", wz.len()).into());
        }
        let shifted: Vec<f32> = wv
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let ch = if wz.len() == 1 { 0 } else { (i / inner.max(1)) % axis_len.max(1) };
                v - wz[ch] as f32
            })
            .collect();
        let wf = self.constant(&format!("{}/weight_f32", c.name), TensorType::f32(ws), TensorData::F32(shifted));
        let xf = self.emit(c, Op::Cast(Cast::to(DType::F32)), vec![x])?;
        let zf = self.emit(c, Op::Cast(Cast::to(DType::F32)), vec![zp])?;
        let zf = self.reshape(c, zf, vec![])?;
        let xf = self.binary(c, BinaryKind::Sub, xf, zf)?;
        let y = if conv {
            let (xf, wf, geom, one_d) = self.conv_geometry(c, xf, wf, true)?;
            let y = self.emit(c, Op::Conv(geom), vec![xf, wf])?;
            self.unlift_1d(c, y, one_d)?
        } else {
            self.matmul(c, xf, wf)?
        };
        self.emit(c, Op::Cast(Cast::to(DType::I32)), vec![y])
    }

    /// DynamicQuantizeLinear as float ops: `scale = (max(0, max x) − min(0, min x)) / 255`,
    /// `zp = clip(round(−min / scale), 0, 255)`, `y = clip(round(x / scale) + zp, 0, 255)`,
    /// the integers cast to uint8. Outputs `[y, scale, zp]`.
    fn dynamic_quantize(&mut self, c: &Cur) -> LResult<Vec<ValueId>> {
        let x = c.input(0)?;
        if self.g.ty(x).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some(format!("{} input (float32 only)", self.g.ty(x).dtype))));
        }
        let rank = self.shape(x).len();
        if self.g.ty(x).is_empty() {
            return Err(Fail::Unsupported(Some("empty input".into())));
        }
        let scalar = |this: &mut Self, v: f32, what: &str| {
            this.constant(&format!("{}/{what}", c.name), TensorType::f32(vec![]), TensorData::F32(vec![v]))
        };
        let zero = scalar(self, 0.0, "zero");
        let qmax = scalar(self, 255.0, "qmax");
        let all: Vec<usize> = (0..rank).collect();
        let reduce = |this: &mut Self, kind: ReduceKind| {
            this.emit(c, Op::Reduce(Reduce { kind, axes: all.clone(), keepdims: false }), vec![x])
        };
        let (mn, mx) = (reduce(self, ReduceKind::Min)?, reduce(self, ReduceKind::Max)?);
        let mn = self.binary(c, BinaryKind::Min, mn, zero)?;
        let mx = self.binary(c, BinaryKind::Max, mx, zero)?;
        let range = self.binary(c, BinaryKind::Sub, mx, mn)?;
        let scale = self.binary(c, BinaryKind::Div, range, qmax)?;
        let clip = Act::Clip { min: 0.0, max: 255.0 };
        let t = self.binary(c, BinaryKind::Div, mn, scale)?;
        let t = self.binary(c, BinaryKind::Sub, zero, t)?;
        let t = self.emit(c, Op::Activation(Act::Round), vec![t])?;
        let zpf = self.emit(c, Op::Activation(clip), vec![t])?;
        let zp = self.emit(c, Op::Cast(Cast::to(DType::U8)), vec![zpf])?;
        let q = self.binary(c, BinaryKind::Div, x, scale)?;
        let q = self.emit(c, Op::Activation(Act::Round), vec![q])?;
        let q = self.binary(c, BinaryKind::Add, q, zpf)?;
        let q = self.emit(c, Op::Activation(clip), vec![q])?;
        let y = self.emit(c, Op::Cast(Cast::to(DType::U8)), vec![q])?;
        Ok(vec![y, scale, zp])
    }

    /// QuantizeLinear with a per-tensor scale / zero point computed at run time, as float ops:
    /// `y = Cast(clip(round(x / scale) + zp, lo, hi))`.
    fn quantize_runtime(&mut self, c: &Cur) -> LResult<ValueId> {
        let (x, scale) = (c.input(0)?, c.input(1)?);
        let zp = c.opt_input(2);
        if self.g.ty(x).dtype != DType::F32 || self.g.ty(scale).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some("run-time scale: float32 input and scale only".into())));
        }
        if self.g.ty(scale).len() != 1 || zp.is_some_and(|z| self.g.ty(z).len() != 1) {
            return Err(Fail::Unsupported(Some("run-time scale or zero point per axis (per tensor only)".into())));
        }
        if c.attrs().int("output_dtype", 0) != 0 || c.attrs().int("block_size", 0) != 0 {
            return Err(Fail::Unsupported(Some("run-time scale with output_dtype or block_size".into())));
        }
        let to = zp.map_or(DType::U8, |z| self.g.ty(z).dtype);
        if !matches!(to, DType::I8 | DType::U8 | DType::I16 | DType::U16) {
            return Err(Fail::Unsupported(Some(format!("quantizing to {to} (8- and 16-bit integers only)"))));
        }
        let (lo, hi) = type_range(to);
        let scale = self.reshape(c, scale, vec![])?;
        let q = self.binary(c, BinaryKind::Div, x, scale)?;
        let mut q = self.emit(c, Op::Activation(Act::Round), vec![q])?;
        if let Some(z) = zp {
            let zf = self.emit(c, Op::Cast(Cast::to(DType::F32)), vec![z])?;
            let zf = self.reshape(c, zf, vec![])?;
            q = self.binary(c, BinaryKind::Add, q, zf)?;
        }
        let q = self.emit(c, Op::Activation(Act::Clip { min: lo as f32, max: hi as f32 }), vec![q])?;
        self.emit(c, Op::Cast(Cast::to(to)), vec![q])
    }

    fn quantize_linear(&mut self, c: &Cur) -> LResult<ValueId> {
        let x = c.input(0)?;
        let xt = self.g.ty(x).clone();
        let computed = |v: Option<ValueId>| v.is_some_and(|v| !self.g.is_const(v) && self.bindable(v).is_none());
        if c.p.op_type == "QuantizeLinear" && (computed(c.opt_input(1)) || computed(c.opt_input(2))) {
            return self.quantize_runtime(c);
        }
        let int_ok = |d: DType| matches!(d, DType::I8 | DType::U8 | DType::I16 | DType::U16) || d.is_subbyte_int();
        let zdt = c.opt_input(2).map_or(DType::U8, |z| self.g.ty(z).dtype);
        if c.p.op_type == "QuantizeLinear" {
            let to = match c.attrs().int("output_dtype", 0) {
                0 => zdt,
                t => super::tensor_proto::dtype_from_onnx(t as i32).map_err(|e| Fail::Unsupported(Some(e)))?,
            };
            if to.is_minifloat() {
                return self.quantize_minifloat(c, to);
            }
            let (q, _, block) = self.quant_params(c, 1, 2, &xt.shape)?;
            if !int_ok(to) {
                return Err(Fail::Unsupported(Some(format!(
                    "quantizing to {to} (float8, float4 and 2- to 16-bit integers only)"
                ))));
            }
            if xt.dtype != DType::F32 {
                return Err(Fail::Unsupported(Some(format!("{} input (float32 only)", xt.dtype))));
            }
            return self.emit(c, Op::Quantize(Quantize { q, to, block }), vec![x]);
        }
        // Opset 23's output_dtype: the float type of the result (float32 only here).
        match c.attrs().int("output_dtype", 0) {
            0 | 1 => {}
            t => return Err(Fail::Unsupported(Some(format!("output_dtype {t} (float32 only)")))),
        }
        if xt.dtype.is_minifloat() {
            return self.dequantize_minifloat(c);
        }
        let (q, _, block) = self.quant_params(c, 1, 2, &xt.shape)?;
        if !(int_ok(xt.dtype) || xt.dtype == DType::I32) {
            return Err(Fail::Unsupported(Some(format!(
                "{} input (2- to 32-bit integers, float8 and float4 only)",
                xt.dtype
            ))));
        }
        self.emit(c, Op::Dequantize(Dequantize { q, block }), vec![x])
    }

    /// The float32 scale (input 1) and zero point (input 2, `None` when absent or zero) of a
    /// float8 / float4 QuantizeLinear / DequantizeLinear, shaped to broadcast against `x`
    /// (per tensor or per axis; blocked quantization is unsupported).
    fn minifloat_params(&mut self, c: &Cur) -> LResult<(ValueId, Option<ValueId>)> {
        if c.attrs().int("block_size", 0) != 0 {
            return Err(Fail::Unsupported(Some("blocked float8 / float4 quantization".into())));
        }
        let x = c.input(0)?;
        let rank = self.shape(x).len();
        let scale = c.input(1)?;
        if self.g.ty(scale).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some(format!("{} scale (float32 only)", self.g.ty(scale).dtype))));
        }
        let n = self.g.ty(scale).len();
        let bshape = if n > 1 {
            let axis = norm_axis(c.attrs().int("axis", 1), rank)?;
            let mut s = vec![1; rank];
            s[axis] = n;
            s
        } else {
            vec![]
        };
        let scale = self.reshape(c, scale, bshape.clone())?;
        let zp = match c.opt_input(2) {
            Some(z) if self.g.data(z).is_some_and(|d| d.to_f32().iter().all(|&v| v == 0.0)) => None,
            Some(z) => {
                let zf = self.emit(c, Op::Cast(Cast::to(DType::F32)), vec![z])?;
                Some(self.reshape(c, zf, bshape)?)
            }
            None => None,
        };
        Ok((scale, zp))
    }

    /// QuantizeLinear to a float8 / float4 type as float ops:
    /// `y = Cast(x / scale + zero_point, saturate)` (rounding to nearest even).
    fn quantize_minifloat(&mut self, c: &Cur, to: DType) -> LResult<ValueId> {
        let x = c.input(0)?;
        if self.g.ty(x).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some(format!("{} input (float32 only)", self.g.ty(x).dtype))));
        }
        let (scale, zp) = self.minifloat_params(c)?;
        let mut q = self.binary(c, BinaryKind::Div, x, scale)?;
        if let Some(z) = zp {
            q = self.binary(c, BinaryKind::Add, q, z)?;
        }
        let saturate = c.attrs().int("saturate", 1) != 0;
        self.emit(c, Op::Cast(Cast { saturate, ..Cast::to(to) }), vec![q])
    }

    /// DequantizeLinear of a float8 / float4 tensor as float ops:
    /// `y = (float(x) − float(zero_point)) · scale`.
    fn dequantize_minifloat(&mut self, c: &Cur) -> LResult<ValueId> {
        let (scale, zp) = self.minifloat_params(c)?;
        let mut v = self.emit(c, Op::Cast(Cast::to(DType::F32)), vec![c.input(0)?])?;
        if let Some(z) = zp {
            v = self.binary(c, BinaryKind::Sub, v, z)?;
        }
        self.binary(c, BinaryKind::Mul, v, scale)
    }

    fn conv(&mut self, c: &Cur) -> LResult<ValueId> {
        let (x, w) = (c.input(0)?, c.input(1)?);
        if self.shape(x).len() == 5 && self.shape(w).len() == 5 {
            return self.conv3d(c, x, w);
        }
        let (x, w, geom, one_d) = self.conv_geometry(c, x, w, true)?;
        let mut ins = vec![x, w];
        ins.extend(c.opt_input(2));
        let y = self.emit(c, Op::Conv(geom), ins)?;
        self.unlift_1d(c, y, one_d)
    }

    /// 3-D convolution as a sum of 2-D ones over the kernel depth: for each depth tap `kd`,
    /// the input slices it reads (depth `od·s + kd·d` of the depth-padded input) are stacked
    /// into the batch, `[N·OD, C, H, W]`, and convolved with the weight slice `w[:, :, kd]`.
    fn conv3d(&mut self, c: &Cur, x: ValueId, w: ValueId) -> LResult<ValueId> {
        let a = c.attrs();
        let (xs, ws) = (self.shape(x), self.shape(w));
        if self.g.ty(x).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some(format!("{} input", self.g.ty(x).dtype))));
        }
        let attr = |name: &str, default: Vec<usize>| -> LResult<Vec<usize>> {
            let v = a.usizes(name, default)?;
            if v.len() != 3 {
                return Err(format!("attribute '{name}' must have 3 values, got {v:?}").into());
            }
            Ok(v)
        };
        let kernel = attr("kernel_shape", ws[2..].to_vec())?;
        let strides = attr("strides", vec![1; 3])?;
        let dilations = attr("dilations", vec![1; 3])?;
        let pads = resolve_pads_nd(&a, &xs[2..], &kernel, &strides, &dilations)?;
        let group = usize::try_from(a.int("group", 1)).map_err(|_| "group must be positive")?;
        let (n, ch, d) = (xs[0], xs[1], xs[2]);
        let od = crate::ops::window_out(d, kernel[0], strides[0], dilations[0], pads[0].0, pads[0].1, false)?;
        let xp = if pads[0] == (0, 0) {
            x
        } else {
            let mut pv = vec![0; 10];
            (pv[2], pv[7]) = pads[0];
            self.emit(c, Op::Pad(Pad { pads: pv, mode: PadMode::Constant, value: 0.0 }), vec![x])?
        };
        let ps = self.shape(xp);
        let st = crate::ops::strides_of(&ps);
        let (m, wst) = (ws[0], crate::ops::strides_of(&ws));
        let geom = Conv {
            kernel: [kernel[1], kernel[2]],
            strides: [strides[1], strides[2]],
            dilations: [dilations[1], dilations[2]],
            pads: [pads[1].0, pads[2].0, pads[1].1, pads[2].1],
            group,
            act: None,
        };
        let mut acc: Option<ValueId> = None;
        for kd in 0..kernel[0] {
            // [N, C, OD, H, W] → [N, OD, C, H, W] → [N·OD, C, H, W].
            let view = Strided {
                shape: vec![n, ch, od, ps[3], ps[4]],
                offset: kd * dilations[0] * st[2],
                strides: vec![
                    st[0] as isize,
                    st[1] as isize,
                    (strides[0] * st[2]) as isize,
                    st[3] as isize,
                    st[4] as isize,
                ],
            };
            let v = self.emit(c, Op::Strided(view), vec![xp])?;
            let v = self.emit(c, Op::Transpose(Transpose { perm: vec![0, 2, 1, 3, 4] }), vec![v])?;
            let v = self.reshape(c, v, vec![n * od, ch, ps[3], ps[4]])?;
            let wshape = vec![m, ws[1], ws[3], ws[4]];
            let wk = match self.g.data(w) {
                Some(data) => {
                    let (plane, s1, s2) = (ws[3] * ws[4], wst[1], wst[2]);
                    let src: Vec<usize> =
                        (0..m * ws[1]).flat_map(|oc| (0..plane).map(move |k| oc * s1 + kd * s2 + k)).collect();
                    let slice = data.gather(&src);
                    self.constant(&format!("{}/w_d{kd}", c.name), TensorType::new(DType::F32, wshape), slice)
                }
                None => {
                    let view = Strided {
                        shape: wshape,
                        offset: kd * wst[2],
                        strides: vec![wst[0] as isize, wst[1] as isize, wst[3] as isize, wst[4] as isize],
                    };
                    self.emit(c, Op::Strided(view), vec![w])?
                }
            };
            let mut ins = vec![v, wk];
            if kd == 0 {
                ins.extend(c.opt_input(2));
            }
            let y = self.emit(c, Op::Conv(geom.clone()), ins)?;
            acc = Some(match acc {
                Some(s) => self.binary(c, BinaryKind::Add, s, y)?,
                None => y,
            });
        }
        let y = acc.ok_or("kernel depth is 0")?;
        let ys = self.shape(y);
        let y = self.reshape(c, y, vec![n, od, m, ys[2], ys[3]])?;
        self.emit(c, Op::Transpose(Transpose { perm: vec![0, 2, 1, 3, 4] }), vec![y])
    }

    /// The Conv geometry of a (float or integer) convolution of `x` by `w`, with both lifted
    /// to 2-D when 1-D: `(x, w, conv, one_d)`. `float` requires a float32 input.
    fn conv_geometry(
        &mut self,
        c: &Cur,
        mut x: ValueId,
        mut w: ValueId,
        float: bool,
    ) -> LResult<(ValueId, ValueId, Conv, bool)> {
        let a = c.attrs();
        let xs = self.shape(x);
        let ws = self.shape(w);
        let one_d = xs.len() == 3 && ws.len() == 3;
        if !(one_d || xs.len() == 4 && ws.len() == 4) {
            return Err(Fail::Unsupported(Some(format!(
                "{}-D convolution (1-D and 2-D only)",
                xs.len().saturating_sub(2)
            ))));
        }
        if float && self.g.ty(x).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some(format!("{} input", self.g.ty(x).dtype))));
        }
        let kdefault = ws[2..].to_vec();
        let (kernel, strides, dilations) = self.window_attrs(c, one_d, kdefault)?;
        if one_d {
            x = self.lift_1d(c, x)?;
            w = self.lift_1d(c, w)?;
        }
        let hw = self.shape(x);
        let pads = resolve_pads(&a, [hw[2], hw[3]], kernel, strides, dilations, one_d)?;
        let group = usize::try_from(a.int("group", 1)).map_err(|_| "group must be positive")?;
        Ok((x, w, Conv { kernel, strides, dilations, pads, group, act: None }, one_d))
    }

    /// Reshapes a lifted 1-D convolution result `[N, M, 1, L]` back to `[N, M, L]`.
    fn unlift_1d(&mut self, c: &Cur, y: ValueId, one_d: bool) -> LResult<ValueId> {
        if one_d {
            let ys = self.shape(y);
            return self.reshape(c, y, vec![ys[0], ys[1], ys[3]]);
        }
        Ok(y)
    }

    /// Rows `[k·h, (k+1)·h)` of direction `d` of a constant `[dirs, n·h, cols]` weight, as a
    /// new `[h, cols]` constant.
    fn weight_block(&mut self, c: &Cur, w: ValueId, d: usize, k: usize, h: usize) -> LResult<ValueId> {
        let ws = self.shape(w);
        let data = self.const_data(w, "recurrent weights")?.to_f32();
        let cols = ws[2];
        let start = d * ws[1] * cols + k * h * cols;
        let block = data.get(start..start + h * cols).ok_or("weights are smaller than their shape")?.to_vec();
        Ok(self.constant(&format!("{}/w{d}_{k}", c.name), TensorType::f32(vec![h, cols]), TensorData::F32(block)))
    }

    /// Elements `[k·h, (k+1)·h)` of direction `d` of a bias `[dirs, n·h]` (zeros when absent).
    fn bias_block(&self, b: Option<ValueId>, d: usize, k: usize, h: usize) -> LResult<Vec<f32>> {
        let Some(b) = b else { return Ok(vec![0.0; h]) };
        let bs = self.shape(b);
        let data = self.const_data(b, "recurrent bias")?.to_f32();
        let start = d * bs[1] + k * h;
        Ok(data.get(start..start + h).ok_or("bias is smaller than its shape")?.to_vec())
    }

    /// `x · wᵀ (+ bias)` with a constant `[h, cols]` weight.
    fn dense(&mut self, c: &Cur, x: ValueId, w: ValueId, bias: Option<Vec<f32>>) -> LResult<ValueId> {
        let op = Gemm { trans_a: false, trans_b: true, alpha: 1.0, beta: 1.0, act: None };
        let mut ins = vec![x, w];
        if let Some(b) = bias {
            let n = b.len();
            ins.push(self.constant(&format!("{}/bias", c.name), TensorType::f32(vec![n]), TensorData::F32(b)));
        }
        self.emit(c, Op::Gemm(op), ins)
    }

    fn act_named(
        &mut self,
        c: &Cur,
        x: ValueId,
        name: &str,
        alpha: Option<f32>,
        beta: Option<f32>,
    ) -> LResult<ValueId> {
        let act = match name {
            "Sigmoid" => Act::Sigmoid,
            "Tanh" => Act::Tanh,
            "Relu" => Act::Relu,
            "HardSigmoid" => Act::HardSigmoid { alpha: alpha.unwrap_or(0.2), beta: beta.unwrap_or(0.5) },
            "Elu" => Act::Elu { alpha: alpha.unwrap_or(1.0) },
            "Softsign" => Act::Softsign,
            "Softplus" => Act::Softplus,
            "LeakyRelu" => Act::LeakyRelu { alpha: alpha.unwrap_or(0.01) },
            a => return Err(Fail::Unsupported(Some(format!("activation \"{a}\"")))),
        };
        self.emit(c, Op::Activation(act), vec![x])
    }

    /// Einsum with one or two operands (ellipsis and diagonals included), as Strided /
    /// Transpose / ReduceSum / batched MatMul / Reshape: `A[batch, freeA, k] @ B[batch, k, freeB]`.
    fn einsum(&mut self, c: &Cur) -> LResult<ValueId> {
        let eq: String = c
            .attrs()
            .string("equation")
            .ok_or("attribute 'equation' is required")?
            .chars()
            .filter(|ch| !ch.is_whitespace())
            .collect();
        let unsupported = |m: &str| Fail::Unsupported(Some(m.to_string()));
        let (lhs, out) = match eq.split_once("->") {
            Some((l, o)) => (l.to_string(), Some(o.to_string())),
            None => (eq.clone(), None),
        };
        let raw_terms: Vec<&str> = lhs.split(',').collect();
        let mut ins: Vec<ValueId> = c.ins.iter().flatten().copied().collect();
        if raw_terms.len() != ins.len() || !(1..=2).contains(&ins.len()) {
            return Err(unsupported("only one or two operands"));
        }
        let dts: Vec<DType> = ins.iter().map(|&v| self.g.ty(v).dtype).collect();
        if dts.iter().any(|d| !d.is_float() || *d != dts[0]) {
            return Err(unsupported("operands other than float32 or float64 of one type"));
        }
        // An ellipsis stands for the leading dims, right-aligned across operands: letters
        // outside a-z / A-Z name them.
        let ell_rank = |t: &str, rank: usize| -> LResult<usize> {
            let named = t.replace("...", "").chars().count();
            if t.contains("...") {
                rank.checked_sub(named).ok_or_else(|| Fail::Invalid(format!("term {t} exceeds rank {rank}")))
            } else {
                Ok(0)
            }
        };
        let mut ell = 0;
        for (t, &v) in raw_terms.iter().zip(&ins) {
            ell = ell.max(ell_rank(t, self.shape(v).len())?);
        }
        let ell_chars: Vec<char> = (0..ell).map(|i| char::from_u32(0x3b1 + i as u32).unwrap_or('?')).collect();
        let expand = |t: &str, k: usize| -> Vec<char> {
            match t.split_once("...") {
                Some((a, b)) => a.chars().chain(ell_chars[ell - k..].iter().copied()).chain(b.chars()).collect(),
                None => t.chars().collect(),
            }
        };
        let mut terms: Vec<Vec<char>> = vec![];
        for (t, &v) in raw_terms.iter().zip(&ins) {
            terms.push(expand(t, ell_rank(t, self.shape(v).len())?));
        }
        let out: Vec<char> = match out {
            Some(o) => expand(&o, ell),
            None => {
                let mut once: Vec<char> = terms.concat().into_iter().filter(|ch| !ell_chars.contains(ch)).collect();
                once.sort_unstable();
                let all = once.clone();
                once.dedup();
                let single = once.into_iter().filter(|ch| all.iter().filter(|x| *x == ch).count() == 1);
                ell_chars.iter().copied().chain(single).collect()
            }
        };
        // A letter repeated in one operand takes its diagonal: a strided view whose stride
        // is the sum of the repeated axes' strides.
        for (t, v) in terms.iter_mut().zip(ins.iter_mut()) {
            let s = self.shape(*v);
            if t.len() != s.len() {
                return Err(format!("term {} does not match rank {}", t.iter().collect::<String>(), s.len()).into());
            }
            let mut uniq: Vec<char> = vec![];
            for &ch in t.iter() {
                if !uniq.contains(&ch) {
                    uniq.push(ch);
                }
            }
            if uniq.len() == t.len() {
                continue;
            }
            let st = crate::ops::strides_of(&s);
            let (mut shape, mut strides) = (vec![], vec![]);
            for u in &uniq {
                let pos: Vec<usize> = (0..t.len()).filter(|&i| t[i] == *u).collect();
                if pos.iter().any(|&i| s[i] != s[pos[0]]) {
                    return Err(format!("diagonal over axes of different sizes in {s:?}").into());
                }
                shape.push(s[pos[0]]);
                strides.push(pos.iter().map(|&i| st[i]).sum::<usize>() as isize);
            }
            *v = self.emit(c, Op::Strided(Strided { shape, offset: 0, strides }), vec![*v])?;
            *t = uniq;
        }
        let mut dims: BTreeMap<char, usize> = BTreeMap::new();
        for (t, &v) in terms.iter().zip(&ins) {
            for (&ch, &d) in t.iter().zip(&self.shape(v)) {
                if *dims.entry(ch).or_insert(d) != d {
                    return Err(unsupported("broadcast index sizes"));
                }
            }
        }
        // Sum away the letters only one operand has and the output does not keep.
        let mut ops: Vec<(ValueId, Vec<char>)> = vec![];
        for (k, (t, &v)) in terms.iter().zip(&ins).enumerate() {
            let other: &[char] = if terms.len() == 2 { &terms[1 - k] } else { &[] };
            let axes: Vec<usize> = (0..t.len()).filter(|&i| !out.contains(&t[i]) && !other.contains(&t[i])).collect();
            let kept: Vec<char> = t.iter().copied().filter(|ch| out.contains(ch) || other.contains(ch)).collect();
            let v = if axes.is_empty() {
                v
            } else {
                self.reduce_node(c, Reduce { kind: ReduceKind::Sum, axes, keepdims: false }, v)?
            };
            ops.push((v, kept));
        }
        let permute = |this: &mut Self, v: ValueId, from: &[char], to: &[char]| -> LResult<ValueId> {
            let perm: Vec<usize> = to.iter().filter_map(|ch| from.iter().position(|x| x == ch)).collect();
            if perm.iter().enumerate().all(|(i, &p)| i == p) {
                return Ok(v);
            }
            this.emit(c, Op::Transpose(Transpose { perm }), vec![v])
        };
        let size = |chs: &[char]| chs.iter().map(|ch| dims[ch]).product::<usize>();
        if ops.len() == 1 {
            let (v, kept) = ops.remove(0);
            let y = permute(self, v, &kept, &out)?;
            if self.g.is_graph_input(y) || self.g.is_const(y) {
                let s = self.shape(y);
                return self.reshape(c, y, s);
            }
            return Ok(y);
        }
        let ((a, ta), (b, tb)) = (ops[0].clone(), ops[1].clone());
        let batch: Vec<char> = ta.iter().copied().filter(|ch| tb.contains(ch) && out.contains(ch)).collect();
        let contr: Vec<char> = ta.iter().copied().filter(|ch| tb.contains(ch) && !out.contains(ch)).collect();
        let free_a: Vec<char> = ta.iter().copied().filter(|ch| !tb.contains(ch)).collect();
        let free_b: Vec<char> = tb.iter().copied().filter(|ch| !ta.contains(ch)).collect();
        let order_a: Vec<char> = [batch.clone(), free_a.clone(), contr.clone()].concat();
        let order_b: Vec<char> = [batch.clone(), contr.clone(), free_b.clone()].concat();
        let a = permute(self, a, &ta, &order_a)?;
        let b = permute(self, b, &tb, &order_b)?;
        let (nb, m, k, n) = (size(&batch), size(&free_a), size(&contr), size(&free_b));
        let a = self.reshape(c, a, vec![nb, m, k])?;
        let b = self.reshape(c, b, vec![nb, k, n])?;
        let p = self.matmul(c, a, b)?;
        let res: Vec<char> = [batch, free_a, free_b].concat();
        let shape: Vec<usize> = res.iter().map(|ch| dims[ch]).collect();
        let p = self.reshape(c, p, shape)?;
        permute(self, p, &res, &out)
    }

    /// LSTM, GRU and RNN with a static sequence length, unrolled over time into Gemm,
    /// elementwise and activation nodes (layout 0: `[seq, batch, input]`).
    fn recurrent(&mut self, c: &Cur) -> LResult<Vec<ValueId>> {
        let a = c.attrs();
        let kind = c.p.op_type.as_str();
        let (mut x, w, r) = (c.input(0)?, c.input(1)?, c.input(2)?);
        let b = c.opt_input(3);
        if self.shape(x).len() != 3 || self.g.ty(x).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some("float input of rank 3".into())));
        }
        if a.int("input_forget", 0) != 0 {
            return Err(Fail::Unsupported(Some("input_forget (coupled input and forget gates)".into())));
        }
        // clip bounds every gate pre-activation to [-clip, clip].
        let clip = a.has("clip").then(|| a.float("clip", 0.0).abs());
        // layout=1 (batch first): run in [seq, batch, ...] and transpose at the borders.
        let batch_first = a.int("layout", 0) != 0;
        let swap01 = |this: &mut Self, v: ValueId| -> LResult<ValueId> {
            this.emit(c, Op::Transpose(Transpose { perm: vec![1, 0, 2] }), vec![v])
        };
        if batch_first {
            x = swap01(self, x)?;
        }
        let xs = self.shape(x);
        if c.opt_input(4).is_some() {
            let lens = self.const_ints(c.input(4)?, "sequence_lens")?;
            if lens.iter().any(|&l| l != xs[0] as i64) {
                return Err(Fail::Unsupported(Some("sequence_lens shorter than the sequence".into())));
            }
        }
        let peep = if kind == "LSTM" { c.opt_input(7) } else { None };
        let (seq, batch) = (xs[0], xs[1]);
        let gates = match kind {
            "LSTM" => 4,
            "GRU" => 3,
            _ => 1,
        };
        let hidden = self.shape(r)[2];
        let dirs = match a.string("direction").as_deref().unwrap_or("forward") {
            "forward" => vec![false],
            "reverse" => vec![true],
            "bidirectional" => vec![false, true],
            d => return Err(format!("unknown direction \"{d}\"").into()),
        };
        let acts: Vec<String> =
            a.0.attribute
                .iter()
                .find(|at| at.name == "activations")
                .map(|at| at.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
                .unwrap_or_default();
        let alphas = a.floats("activation_alpha").unwrap_or_default();
        let betas = a.floats("activation_beta").unwrap_or_default();
        let per_dir = match kind {
            "LSTM" => 3,
            "GRU" => 2,
            _ => 1,
        };
        let default_acts: &[&str] = match kind {
            "LSTM" => &["Sigmoid", "Tanh", "Tanh"],
            "GRU" => &["Sigmoid", "Tanh"],
            _ => &["Tanh"],
        };
        let lbr = a.int("linear_before_reset", 0) != 0;
        let mut init_h = c.opt_input(5);
        let mut init_c = if kind == "LSTM" { c.opt_input(6) } else { None };
        if batch_first {
            init_h = init_h.map(|v| swap01(self, v)).transpose()?;
            init_c = init_c.map(|v| swap01(self, v)).transpose()?;
        }
        let mut ys: Vec<Vec<ValueId>> = vec![]; // per direction, per time step h_t [batch, H]
        let mut last_h = vec![];
        let mut last_c = vec![];
        for (d, &reverse) in dirs.iter().enumerate() {
            let act_name = |k: usize| -> (String, Option<f32>, Option<f32>) {
                let i = d * per_dir + k;
                (
                    acts.get(i).cloned().unwrap_or_else(|| default_acts[k].to_string()),
                    alphas.get(i).copied(),
                    betas.get(i).copied(),
                )
            };
            let wk: Vec<ValueId> = (0..gates).map(|k| self.weight_block(c, w, d, k, hidden)).collect::<LResult<_>>()?;
            let rk: Vec<ValueId> = (0..gates).map(|k| self.weight_block(c, r, d, k, hidden)).collect::<LResult<_>>()?;
            let wb: Vec<Vec<f32>> = (0..gates).map(|k| self.bias_block(b, d, k, hidden)).collect::<LResult<_>>()?;
            let rb: Vec<Vec<f32>> =
                (0..gates).map(|k| self.bias_block(b, d, gates + k, hidden)).collect::<LResult<_>>()?;
            let state = |this: &mut Self, init: Option<ValueId>, what: &str| -> LResult<ValueId> {
                match init {
                    Some(v) => {
                        let mut ranges: Vec<(usize, usize, isize)> = this.shape(v).iter().map(|&n| (0, n, 1)).collect();
                        ranges[0] = (d, 1, 1);
                        let s = this.strided(c, v, &ranges)?;
                        this.reshape(c, s, vec![batch, hidden])
                    }
                    None => Ok(this.constant(
                        &format!("{}/{what}0", c.name),
                        TensorType::f32(vec![batch, hidden]),
                        TensorData::F32(vec![0.0; batch * hidden]),
                    )),
                }
            };
            let mut h = state(self, init_h, "h")?;
            let mut cell = state(self, init_c, "c")?;
            // Peephole weights of direction d, [dirs, 3·H] in the order i, o, f, as [H] each.
            let peeps: Vec<ValueId> = match peep {
                Some(pv) => (0..3)
                    .map(|k| {
                        let s = self.strided(c, pv, &[(d, 1, 1), (k * hidden, hidden, 1)])?;
                        self.reshape(c, s, vec![hidden])
                    })
                    .collect::<LResult<_>>()?,
                None => vec![],
            };
            let mut outs = vec![ValueId(0); seq];
            for step in 0..seq {
                let t = if reverse { seq - 1 - step } else { step };
                let mut ranges: Vec<(usize, usize, isize)> = xs.iter().map(|&n| (0, n, 1)).collect();
                ranges[0] = (t, 1, 1);
                let xt = self.strided(c, x, &ranges)?;
                let xt = self.reshape(c, xt, vec![batch, xs[2]])?;
                let sum_bias = |k: usize| -> Vec<f32> { wb[k].iter().zip(&rb[k]).map(|(p, q)| p + q).collect() };
                // Pre-activation of gate k: x·Wkᵀ + h·Rkᵀ + Wbk + Rbk.
                let pre = |this: &mut Self, k: usize, hin: ValueId| -> LResult<ValueId> {
                    let xw = this.dense(c, xt, wk[k], Some(sum_bias(k)))?;
                    let hr = this.dense(c, hin, rk[k], None)?;
                    this.binary(c, BinaryKind::Add, xw, hr)
                };
                // Adds the peephole term `p ⊙ cell` (LSTM with P) and applies clip.
                let finish = |this: &mut Self, v: ValueId, p: Option<ValueId>, cell: ValueId| -> LResult<ValueId> {
                    let v = match p {
                        Some(p) => {
                            let pc = this.binary(c, BinaryKind::Mul, cell, p)?;
                            this.binary(c, BinaryKind::Add, v, pc)?
                        }
                        None => v,
                    };
                    match clip {
                        Some(t) => this.emit(c, Op::Activation(Act::Clip { min: -t, max: t }), vec![v]),
                        None => Ok(v),
                    }
                };
                match kind {
                    "LSTM" => {
                        let (f_act, g_act, h_act) = (act_name(0), act_name(1), act_name(2));
                        // ONNX gate order: i, o, f, c; peepholes i, o, f (o sees the new cell).
                        let i = pre(self, 0, h)?;
                        let i = finish(self, i, peeps.first().copied(), cell)?;
                        let i = self.act_named(c, i, &f_act.0, f_act.1, f_act.2)?;
                        let f = pre(self, 2, h)?;
                        let f = finish(self, f, peeps.get(2).copied(), cell)?;
                        let f = self.act_named(c, f, &f_act.0, f_act.1, f_act.2)?;
                        let g = pre(self, 3, h)?;
                        let g = finish(self, g, None, cell)?;
                        let g = self.act_named(c, g, &g_act.0, g_act.1, g_act.2)?;
                        let fc = self.binary(c, BinaryKind::Mul, f, cell)?;
                        let ig = self.binary(c, BinaryKind::Mul, i, g)?;
                        cell = self.binary(c, BinaryKind::Add, fc, ig)?;
                        let o = pre(self, 1, h)?;
                        let o = finish(self, o, peeps.get(1).copied(), cell)?;
                        let o = self.act_named(c, o, &f_act.0, f_act.1, f_act.2)?;
                        let hc = self.act_named(c, cell, &h_act.0, h_act.1, h_act.2)?;
                        h = self.binary(c, BinaryKind::Mul, o, hc)?;
                    }
                    "GRU" => {
                        let (f_act, g_act) = (act_name(0), act_name(1));
                        // ONNX gate order: z, r, h.
                        let z = pre(self, 0, h)?;
                        let z = finish(self, z, None, h)?;
                        let z = self.act_named(c, z, &f_act.0, f_act.1, f_act.2)?;
                        let rg = pre(self, 1, h)?;
                        let rg = finish(self, rg, None, h)?;
                        let rg = self.act_named(c, rg, &f_act.0, f_act.1, f_act.2)?;
                        let xw = self.dense(c, xt, wk[2], Some(wb[2].clone()))?;
                        let hh = if lbr {
                            let hr = self.dense(c, h, rk[2], Some(rb[2].clone()))?;
                            self.binary(c, BinaryKind::Mul, rg, hr)?
                        } else {
                            let rh = self.binary(c, BinaryKind::Mul, rg, h)?;
                            self.dense(c, rh, rk[2], Some(rb[2].clone()))?
                        };
                        let pre_h = self.binary(c, BinaryKind::Add, xw, hh)?;
                        let pre_h = finish(self, pre_h, None, h)?;
                        let cand = self.act_named(c, pre_h, &g_act.0, g_act.1, g_act.2)?;
                        // h = (1 - z)·cand + z·h = cand + z·(h - cand)
                        let diff = self.binary(c, BinaryKind::Sub, h, cand)?;
                        let zd = self.binary(c, BinaryKind::Mul, z, diff)?;
                        h = self.binary(c, BinaryKind::Add, cand, zd)?;
                    }
                    _ => {
                        let f_act = act_name(0);
                        let p = pre(self, 0, h)?;
                        let p = finish(self, p, None, h)?;
                        h = self.act_named(c, p, &f_act.0, f_act.1, f_act.2)?;
                    }
                }
                outs[t] = h;
            }
            last_h.push(h);
            last_c.push(cell);
            ys.push(outs);
        }
        // Y: [seq, dirs, batch, H]; Y_h, Y_c: [dirs, batch, H].
        let mut steps = vec![];
        for t in 0..seq {
            let per_dir: Vec<ValueId> =
                ys.iter().map(|outs| self.reshape(c, outs[t], vec![1, 1, batch, hidden])).collect::<LResult<_>>()?;
            steps.push(if per_dir.len() == 1 {
                per_dir[0]
            } else {
                self.emit(c, Op::Concat(Concat { axis: 1 }), per_dir)?
            });
        }
        let y = if steps.len() == 1 { steps[0] } else { self.emit(c, Op::Concat(Concat { axis: 0 }), steps)? };
        let stack = |this: &mut Self, v: Vec<ValueId>| -> LResult<ValueId> {
            let parts: Vec<ValueId> =
                v.into_iter().map(|h| this.reshape(c, h, vec![1, batch, hidden])).collect::<LResult<_>>()?;
            if parts.len() == 1 { Ok(parts[0]) } else { this.emit(c, Op::Concat(Concat { axis: 0 }), parts) }
        };
        let yh = stack(self, last_h)?;
        let mut outs = vec![y, yh];
        if kind == "LSTM" {
            outs.push(stack(self, last_c)?);
        }
        if batch_first {
            outs[0] = self.emit(c, Op::Transpose(Transpose { perm: vec![2, 0, 1, 3] }), vec![outs[0]])?;
            for o in outs.iter_mut().skip(1) {
                *o = swap01(self, *o)?;
            }
        }
        Ok(outs)
    }

    fn conv_transpose(&mut self, c: &Cur) -> LResult<ValueId> {
        let a = c.attrs();
        let (x, w) = (c.input(0)?, c.input(1)?);
        let (xs, ws) = (self.shape(x), self.shape(w));
        if xs.len() < 3 || ws.len() != xs.len() {
            return Err(Fail::Unsupported(Some(format!(
                "input of rank {} with a weight of rank {} (rank >= 3, equal ranks)",
                xs.len(),
                ws.len()
            ))));
        }
        let r = xs.len() - 2;
        let attr = |name: &str, default: Vec<usize>| -> LResult<Vec<usize>> {
            let v = a.usizes(name, default)?;
            if v.len() != r {
                return Err(format!("attribute '{name}' must have {r} values, got {v:?}").into());
            }
            Ok(v)
        };
        let kernel = attr("kernel_shape", ws[2..].to_vec())?;
        let strides = attr("strides", vec![1; r])?;
        let dilations = attr("dilations", vec![1; r])?;
        let output_padding = attr("output_padding", vec![0; r])?;
        let group = usize::try_from(a.int("group", 1)).map_err(|_| "group must be positive")?;
        let auto = a.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
        let output_shape = a.usizes("output_shape", vec![])?;
        let mut op = ConvTranspose { kernel, strides, dilations, pads: vec![0; 2 * r], output_padding, group };
        if !output_shape.is_empty() || auto == "SAME_UPPER" || auto == "SAME_LOWER" {
            // Pads from the requested output size (SAME: input · stride); output_shape may
            // list only the spatial axes or the whole output shape.
            let want: Vec<usize> = if output_shape.is_empty() {
                (0..r).map(|i| xs[2 + i] * op.strides[i]).collect()
            } else if output_shape.len() == r {
                output_shape
            } else if output_shape.len() == r + 2 {
                output_shape[2..].to_vec()
            } else {
                return Err(format!("attribute 'output_shape' has {} values for {r} axes", output_shape.len()).into());
            };
            for i in 0..r {
                let full = op.out_len(i, xs[2 + i]).ok_or("invalid transposed convolution geometry")?;
                if want[i] > full {
                    // A larger requested output is extra padding at the end.
                    op.output_padding[i] += want[i] - full;
                    continue;
                }
                let total = full - want[i];
                let (begin, end) =
                    if auto == "SAME_LOWER" { (total - total / 2, total / 2) } else { (total / 2, total - total / 2) };
                op.pads[i] = begin;
                op.pads[i + r] = end;
            }
        } else if auto == "NOTSET" {
            let p = a.usizes("pads", vec![0; 2 * r])?;
            if p.len() != 2 * r {
                return Err(format!("attribute 'pads' has {} values, expected {}", p.len(), 2 * r).into());
            }
            op.pads = p;
        }
        let mut ins = vec![x, w];
        ins.extend(c.opt_input(2));
        self.emit(c, Op::ConvTranspose(op), ins)
    }

    fn resize(&mut self, c: &Cur) -> LResult<ValueId> {
        let a = c.attrs();
        let x = c.input(0)?;
        let xs = self.shape(x);
        let rank = xs.len();
        let unsupported = |m: String| Fail::Unsupported(Some(m));
        let legacy = c.p.op_type == "Upsample" || self.opset < 11;
        let nearest = if legacy {
            NearestMode::Floor
        } else {
            match a.string("nearest_mode").as_deref().unwrap_or("round_prefer_floor") {
                "round_prefer_floor" => NearestMode::RoundPreferFloor,
                "round_prefer_ceil" => NearestMode::RoundPreferCeil,
                "floor" => NearestMode::Floor,
                "ceil" => NearestMode::Ceil,
                m => return Err(unsupported(format!("nearest_mode \"{m}\""))),
            }
        };
        let filter = match a.string("mode").as_deref().unwrap_or("nearest") {
            "nearest" => Filter::Nearest(nearest),
            "linear" | "bilinear" => Filter::Linear,
            "cubic" => Filter::Cubic(a.float("cubic_coeff_a", -0.75) as f64),
            m => return Err(unsupported(format!("mode \"{m}\""))),
        };
        let axes: Vec<usize> = match a.ints("axes") {
            Some(v) => v.iter().map(|&ax| norm_axis(ax, rank)).collect::<Result<_, _>>()?,
            None => (0..rank).collect(),
        };
        // roi: (start, end) per axis, as fractions of the input extent (tf_crop_and_resize).
        let mut roi = vec![(0.0f64, 1.0f64); rank];
        let crop = !legacy && a.string("coordinate_transformation_mode").as_deref() == Some("tf_crop_and_resize");
        if crop {
            let v = match c.opt_input(1) {
                Some(v) if !self.g.ty(v).is_empty() => self.const_data(v, "roi")?.to_f32(),
                _ => return Err(Fail::Invalid("tf_crop_and_resize needs the roi input".into())),
            };
            if v.len() != 2 * axes.len() {
                return Err(Fail::Invalid(format!("roi has {} values, expected {}", v.len(), 2 * axes.len())));
            }
            for (k, &ax) in axes.iter().enumerate() {
                roi[ax] = (v[k] as f64, v[axes.len() + k] as f64);
            }
        }
        let coord = |ax: usize| -> LResult<CoordMode> {
            if legacy {
                return Ok(CoordMode::Asymmetric);
            }
            Ok(match a.string("coordinate_transformation_mode").as_deref().unwrap_or("half_pixel") {
                "half_pixel" => CoordMode::HalfPixel,
                "half_pixel_symmetric" => CoordMode::HalfPixelSymmetric,
                "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
                "align_corners" => CoordMode::AlignCorners,
                "asymmetric" => CoordMode::Asymmetric,
                "tf_half_pixel_for_nn" => CoordMode::TfHalfPixelForNn,
                "tf_crop_and_resize" => CoordMode::TfCropAndResize(roi[ax].0, roi[ax].1),
                m => return Err(unsupported(format!("coordinate_transformation_mode \"{m}\""))),
            })
        };
        // scales / sizes: attribute (Upsample-7), input 1 (Upsample-9, Resize-10), inputs 2/3 (Resize-11+).
        let (scales_in, sizes_in) = if legacy {
            let scales = match (a.floats("scales"), c.opt_input(1)) {
                (Some(f), _) => Some(f),
                (None, Some(v)) => Some(self.const_data(v, "scales")?.to_f32()),
                (None, None) => None,
            };
            (scales, None)
        } else {
            let scales = match c.opt_input(2) {
                Some(v) if !self.g.ty(v).is_empty() => Some(self.const_data(v, "scales")?.to_f32()),
                _ => None,
            };
            let sizes = match c.opt_input(3) {
                Some(v) if !self.g.ty(v).is_empty() => Some(self.const_ints(v, "sizes")?),
                _ => None,
            };
            (scales, sizes)
        };
        if axes.iter().any(|&ax| xs[ax] == 0) {
            return Err(unsupported("resizing an empty axis".into()));
        }
        if xs.iter().product::<usize>() > u32::MAX as usize {
            return Err(unsupported("input of more than 2^32 elements".into()));
        }
        let mut out = xs.clone();
        let mut scale = vec![1.0f64; rank];
        match (scales_in, sizes_in) {
            (_, Some(sizes)) if sizes.len() == axes.len() => {
                let sizes: Vec<usize> =
                    sizes.iter().map(|&s| usize::try_from(s).map_err(|_| "negative size")).collect::<Result<_, _>>()?;
                let policy = if legacy { None } else { a.string("keep_aspect_ratio_policy") };
                let ratio = |k: usize| sizes[k] as f64 / xs[axes[k]] as f64;
                let keep = match policy.as_deref().unwrap_or("stretch") {
                    "stretch" => None,
                    "not_larger" => Some((0..axes.len()).map(ratio).fold(f64::INFINITY, f64::min)),
                    "not_smaller" => Some((0..axes.len()).map(ratio).fold(0.0, f64::max)),
                    p => return Err(unsupported(format!("keep_aspect_ratio_policy \"{p}\""))),
                };
                for (k, &ax) in axes.iter().enumerate() {
                    match keep {
                        None => {
                            out[ax] = sizes[k];
                            scale[ax] = ratio(k);
                        }
                        // One scale for all axes; sizes rounded half up.
                        Some(s) => {
                            scale[ax] = s;
                            out[ax] = (s * xs[ax] as f64 + 0.5) as usize;
                        }
                    }
                }
            }
            (Some(sc), _) if sc.len() == axes.len() => {
                if crop {
                    // ONNX sizes the output from the roi, its reference implementation does not.
                    return Err(unsupported("tf_crop_and_resize with scales (give sizes)".into()));
                }
                for (k, &ax) in axes.iter().enumerate() {
                    scale[ax] = sc[k] as f64;
                    out[ax] = (xs[ax] as f64 * sc[k] as f64).floor() as usize;
                }
            }
            _ => return Err(unsupported("scales or sizes must be constant and match the axes".into())),
        }
        if scale.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
            return Err(unsupported("scales must be positive".into()));
        }
        if out.contains(&0) {
            return Err(unsupported("empty output".into()));
        }
        let antialias = a.int("antialias", 0) != 0;
        // An antialiased filter spans about 4 / scale inputs (cubic) per output.
        if antialias && !matches!(filter, Filter::Nearest(_)) && scale.iter().any(|&s| s < 1.0 / 256.0) {
            return Err(unsupported("antialias at a scale below 1/256".into()));
        }
        let exclude_outside = !legacy && a.int("exclude_outside", 0) != 0;
        let mut maps = Vec::with_capacity(rank);
        for ax in 0..rank {
            let spec = AxisSpec {
                len_in: xs[ax],
                len_out: out[ax],
                scale: scale[ax],
                coord: coord(ax)?,
                filter,
                antialias,
                exclude_outside,
            };
            let m = spec.map();
            let identity = out[ax] == xs[ax]
                && !m.interpolates()
                && m.outside.is_empty()
                && m.index.iter().enumerate().all(|(o, &i)| o == i);
            maps.push((!identity).then_some(m));
        }
        let op = Resize { shape: out, maps, extrapolation: a.float("extrapolation_value", 0.0) };
        let dtype = self.g.ty(x).dtype;
        if dtype != DType::F32 && (!op.interp_axes().is_empty() || op.extrapolates()) {
            return Err(unsupported(format!("interpolating or extrapolating Resize of {dtype}")));
        }
        self.emit(c, Op::Resize(op), vec![x])
    }

    fn pool(&mut self, c: &Cur) -> LResult<ValueId> {
        let a = c.attrs();
        let mut x = c.input(0)?;
        let xs = self.shape(x);
        let one_d = xs.len() == 3;
        let kind = if c.p.op_type == "MaxPool" { PoolKind::Max } else { PoolKind::Avg };
        let dt = self.g.ty(x).dtype;
        if kind == PoolKind::Avg && dt != DType::F32 || !matches!(dt, DType::F32 | DType::I8 | DType::U8) {
            return Err(Fail::Unsupported(Some(format!(
                "{} on {dt} tensors (float32; MaxPool also int8 and uint8)",
                c.p.op_type
            ))));
        }
        if xs.len() > 4 {
            return self.pool_separable(c, x, kind, a.int("count_include_pad", 0) != 0);
        }
        if xs.len() != 4 && !one_d {
            return Err(Fail::Unsupported(Some(format!("rank {} input (pooling needs rank >= 3)", xs.len()))));
        }
        // storage_order only affects the Indices output (max_pool_indices).
        let (kernel, strides, dilations) = self.window_attrs(c, one_d, vec![])?;
        if one_d {
            x = self.lift_1d(c, x)?;
        }
        let hw = self.shape(x);
        let ceil_mode = a.int("ceil_mode", 0) != 0;
        let pads = resolve_pads(&a, [hw[2], hw[3]], kernel, strides, dilations, one_d)?;
        let op = Pool {
            kind,
            kernel,
            strides,
            dilations,
            pads,
            ceil_mode,
            count_include_pad: a.int("count_include_pad", 0) != 0,
        };
        let y = self.emit(c, Op::Pool(op), vec![x])?;
        if one_d {
            let ys = self.shape(y);
            return self.reshape(c, y, vec![ys[0], ys[1], ys[3]]);
        }
        Ok(y)
    }

    /// Pooling of any spatial rank as one 1-D pool per spatial axis (a 2-D pool over
    /// `[outer, 1, len, inner]`): max and average over a box are separable, the in-bounds (or
    /// padded) count of a box being the product of its per-axis counts.
    fn pool_separable(&mut self, c: &Cur, x: ValueId, kind: PoolKind, count_include_pad: bool) -> LResult<ValueId> {
        let a = c.attrs();
        let xs = self.shape(x);
        if xs.len() < 3 {
            return Err(Fail::Unsupported(Some(format!("rank {} input (pooling needs rank >= 3)", xs.len()))));
        }
        let n = xs.len() - 2;
        let kernel = a.usizes("kernel_shape", vec![])?;
        let strides = a.usizes("strides", vec![1; n])?;
        let dilations = a.usizes("dilations", vec![1; n])?;
        for (what, v) in [("kernel_shape", &kernel), ("strides", &strides), ("dilations", &dilations)] {
            if v.len() != n {
                return Err(format!("attribute '{what}' must have {n} values, got {v:?}").into());
            }
        }
        let pads = resolve_pads_nd(&a, &xs[2..], &kernel, &strides, &dilations)?;
        let ceil_mode = a.int("ceil_mode", 0) != 0;
        let mut y = x;
        for j in 0..n {
            let (pb, pe) = pads[j];
            if kernel[j] == 1 && strides[j] == 1 && pb == 0 && pe == 0 {
                continue;
            }
            let s = self.shape(y);
            let ax = 2 + j;
            let (outer, inner) = (s[..ax].iter().product(), s[ax + 1..].iter().product());
            let r = self.reshape(c, y, vec![outer, 1, s[ax], inner])?;
            let op = Pool {
                kind,
                kernel: [kernel[j], 1],
                strides: [strides[j], 1],
                dilations: [dilations[j], 1],
                pads: [pb, 0, pe, 0],
                ceil_mode,
                count_include_pad,
            };
            let p = self.emit(c, Op::Pool(op), vec![r])?;
            let mut ns = s.clone();
            ns[ax] = self.shape(p)[2];
            y = self.reshape(c, p, ns)?;
        }
        if y == x {
            y = self.reshape(c, x, xs)?;
        }
        Ok(y)
    }

    /// MaxPool's Indices output: the flat (row-major, batch and channel included) input
    /// index of each window's first maximum. Every kernel tap is a strided view of the input
    /// (padded with the type's minimum); the taps are stacked on a new last axis, ArgMax
    /// picks the first largest, and GatherElements maps it through a build-time table of
    /// the flat index each tap reads.
    fn max_pool_indices(&mut self, c: &Cur) -> LResult<ValueId> {
        let a = c.attrs();
        let x = c.input(0)?;
        let xs = self.shape(x);
        let dt = self.g.ty(x).dtype;
        let r = xs.len() - 2;
        let kernel = a.usizes("kernel_shape", vec![])?;
        let strides = a.usizes("strides", vec![1; r])?;
        let dilations = a.usizes("dilations", vec![1; r])?;
        if [kernel.len(), strides.len(), dilations.len()] != [r; 3] {
            return Err(format!("kernel_shape, strides and dilations must have {r} values").into());
        }
        let pads = resolve_pads_nd(&a, &xs[2..], &kernel, &strides, &dilations)?;
        let ceil_mode = a.int("ceil_mode", 0) != 0;
        let mut outs = vec![];
        for j in 0..r {
            let (k, st, d, (pb, pe)) = (kernel[j], strides[j], dilations[j], pads[j]);
            outs.push(crate::ops::window_out(xs[2 + j], k, st, d, pb, pe, ceil_mode)?);
        }
        // Padded extents covering every window (ceil_mode may read past the end padding).
        let mut padded = xs.clone();
        let mut end_pad = vec![0; r];
        for j in 0..r {
            let need = (outs[j] - 1) * strides[j] + (kernel[j] - 1) * dilations[j] + 1;
            padded[2 + j] = need.max(xs[2 + j] + pads[j].0 + pads[j].1);
            end_pad[j] = padded[2 + j] - xs[2 + j] - pads[j].0;
        }
        let xp = if padded == xs {
            x
        } else {
            let value = match dt {
                DType::F32 | DType::F64 => f32::NEG_INFINITY,
                DType::I8 => i8::MIN as f32,
                DType::I32 => i32::MIN as f32,
                _ => 0.0,
            };
            let mut pv = vec![0; 2 * (r + 2)];
            for j in 0..r {
                pv[2 + j] = pads[j].0;
                pv[r + 4 + j] = end_pad[j];
            }
            self.emit(c, Op::Pad(Pad { pads: pv, mode: PadMode::Constant, value }), vec![x])?
        };
        let pst = crate::ops::strides_of(&padded);
        // storage_order=1 numbers the spatial positions column-major (batch and channel stay
        // the outer terms).
        let mut xst = crate::ops::strides_of(&xs);
        if a.int("storage_order", 0) != 0 {
            let mut acc = 1;
            for j in 0..r {
                xst[2 + j] = acc;
                acc *= xs[2 + j];
            }
        }
        let mut view_shape = vec![xs[0], xs[1]];
        view_shape.extend(&outs);
        let mut view_strides = vec![pst[0] as isize, pst[1] as isize];
        view_strides.extend((0..r).map(|j| (strides[j] * pst[2 + j]) as isize));
        let mut taps = vec![];
        crate::interp::for_each_index(&kernel, |k| taps.push(k.to_vec()));
        let mut stacked_shape = view_shape.clone();
        stacked_shape.push(1);
        let mut views = vec![];
        for k in &taps {
            let offset = (0..r).map(|j| k[j] * dilations[j] * pst[2 + j]).sum();
            let v = self.emit(
                c,
                Op::Strided(Strided { shape: view_shape.clone(), offset, strides: view_strides.clone() }),
                vec![xp],
            )?;
            views.push(self.reshape(c, v, stacked_shape.clone())?);
        }
        let axis = r + 2;
        let stacked = if views.len() == 1 { views[0] } else { self.emit(c, Op::Concat(Concat { axis }), views)? };
        let best = self.emit(
            c,
            Op::ArgReduce(ArgReduce { max: true, axis, keepdims: true, select_last: false }),
            vec![stacked],
        )?;
        // The flat input index each tap of each window reads (-1 in the padding).
        let mut table = Vec::with_capacity(view_shape.iter().product::<usize>() * taps.len());
        crate::interp::for_each_index(&view_shape, |o| {
            for k in &taps {
                let mut flat = (o[0] * xst[0] + o[1] * xst[1]) as i64;
                for j in 0..r {
                    let p = (o[2 + j] * strides[j] + k[j] * dilations[j]) as i64 - pads[j].0 as i64;
                    if p < 0 || p >= xs[2 + j] as i64 {
                        flat = -1;
                        break;
                    }
                    flat += p * xst[2 + j] as i64;
                }
                table.push(flat);
            }
        });
        let mut table_shape = view_shape.clone();
        table_shape.push(taps.len());
        let table = self.constant(
            &format!("{}/tap_index", c.name),
            TensorType::new(DType::I64, table_shape),
            TensorData::I64(table),
        );
        let idx = self.emit(c, Op::GatherElements(GatherElements { axis }), vec![table, best])?;
        self.reshape(c, idx, view_shape)
    }

    /// LpPool: `(Σ |x|^p)^(1/p)` over each window (padding counts as zero), as
    /// `|x|^p` → separable average pool counting the padding → × window size → `^(1/p)`.
    fn lp_pool(&mut self, c: &Cur) -> LResult<ValueId> {
        let a = c.attrs();
        let x = c.input(0)?;
        if self.g.ty(x).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some(format!("{} input (float32 only)", self.g.ty(x).dtype))));
        }
        if a.int("ceil_mode", 0) != 0 {
            return Err(Fail::Unsupported(Some("ceil_mode=1".into())));
        }
        let p = a.int("p", 2);
        if p < 1 {
            return Err(format!("p = {p} must be positive").into());
        }
        let scalar = |this: &mut Self, v: f32, what: &str| {
            this.constant(&format!("{}/{what}", c.name), TensorType::f32(vec![]), TensorData::F32(vec![v]))
        };
        let t = match p {
            1 => self.emit(c, Op::Activation(Act::Abs), vec![x])?,
            2 => self.binary(c, BinaryKind::Mul, x, x)?,
            _ => {
                let ax = self.emit(c, Op::Activation(Act::Abs), vec![x])?;
                let e = scalar(self, p as f32, "p");
                self.binary(c, BinaryKind::Pow, ax, e)?
            }
        };
        let avg = self.pool_separable(c, t, PoolKind::Avg, true)?;
        let volume: usize = a.usizes("kernel_shape", vec![])?.iter().product();
        let v = scalar(self, volume as f32, "window");
        let sum = self.binary(c, BinaryKind::Mul, avg, v)?;
        match p {
            1 => Ok(sum),
            2 => self.emit(c, Op::Activation(Act::Sqrt), vec![sum]),
            _ => {
                let e = scalar(self, 1.0 / p as f32, "inv_p");
                self.binary(c, BinaryKind::Pow, sum, e)
            }
        }
    }

    /// Broadcast copy of `x` to `shape` (a strided read with zero strides).
    fn expand(&mut self, c: &Cur, x: ValueId, shape: Vec<usize>) -> LResult<ValueId> {
        let xs = self.shape(x);
        let st = crate::ops::broadcast::broadcast_strides(&xs, &shape);
        let strides = st.iter().map(|&v| v as isize).collect();
        self.emit(c, Op::Strided(Strided { shape, offset: 0, strides }), vec![x])
    }

    /// Per-axis `(start, len, step)` of a Slice over `xs`.
    fn slice_ranges(&self, c: &Cur, xs: &[usize]) -> LResult<Vec<(usize, usize, isize)>> {
        let a = c.attrs();
        let rank = xs.len();
        let (starts, ends, axes, steps) = if self.opset < 10 {
            let starts = a.ints("starts").ok_or("attribute 'starts' is required")?;
            let ends = a.ints("ends").ok_or("attribute 'ends' is required")?;
            (starts, ends, a.ints("axes"), None)
        } else {
            let starts = self.const_ints(c.input(1)?, "starts")?;
            let ends = self.const_ints(c.input(2)?, "ends")?;
            let axes = match c.opt_input(3) {
                Some(v) => Some(self.const_ints(v, "axes")?),
                None => None,
            };
            let steps = match c.opt_input(4) {
                Some(v) => Some(self.const_ints(v, "steps")?),
                None => None,
            };
            (starts, ends, axes, steps)
        };
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err("starts, ends, axes and steps differ in length".into());
        }
        let mut ranges: Vec<(usize, usize, isize)> = xs.iter().map(|&d| (0, d, 1)).collect();
        for i in 0..starts.len() {
            let ax = norm_axis(axes[i], rank)?;
            ranges[ax] = crate::ops::slice_axis(xs[ax], starts[i], ends[i], steps[i])?;
        }
        Ok(ranges)
    }

    /// A strided view of `x` given per-axis `(start, len, step)`.
    fn strided(&mut self, c: &Cur, x: ValueId, ranges: &[(usize, usize, isize)]) -> LResult<ValueId> {
        let xs = self.shape(x);
        let st = crate::ops::strides_of(&xs);
        let offset = ranges.iter().zip(&st).map(|(r, s)| r.0 * s).sum();
        let strides = ranges.iter().zip(&st).map(|(r, &s)| r.2 * s as isize).collect();
        let shape = ranges.iter().map(|r| r.1).collect();
        self.emit(c, Op::Strided(Strided { shape, offset, strides }), vec![x])
    }

    fn slice(&mut self, c: &Cur) -> LResult<ValueId> {
        let x = c.input(0)?;
        let xs = self.shape(x);
        let ranges = self.slice_ranges(c, &xs)?;
        self.strided(c, x, &ranges)
    }

    fn split(&mut self, c: &Cur) -> LResult<Vec<ValueId>> {
        let a = c.attrs();
        let x = c.input(0)?;
        let xs = self.shape(x);
        let axis = norm_axis(a.int("axis", 0), xs.len())?;
        let n_out = c.p.output.len();
        let sizes: Vec<usize> = match (self.opset >= 13, c.opt_input(1)) {
            (true, Some(v)) => self.const_ints(v, "split")?.iter().map(|&d| d.max(0) as usize).collect(),
            (false, _) if a.has("split") => a.usizes("split", vec![])?,
            _ => {
                let parts =
                    usize::try_from(a.int("num_outputs", n_out as i64)).map_err(|_| "num_outputs must be positive")?;
                let chunk = xs[axis].div_ceil(parts.max(1));
                (0..parts).map(|i| chunk.min(xs[axis].saturating_sub(i * chunk))).collect()
            }
        };
        if sizes.iter().sum::<usize>() != xs[axis] || sizes.len() != n_out {
            return Err(
                format!("split sizes {sizes:?} do not partition axis {axis} of {xs:?} into {n_out} outputs").into()
            );
        }
        let mut outs = vec![];
        let mut at = 0;
        for len in sizes {
            let mut ranges: Vec<(usize, usize, isize)> = xs.iter().map(|&d| (0, d, 1)).collect();
            ranges[axis] = (at, len, 1);
            at += len;
            outs.push(self.strided(c, x, &ranges)?);
        }
        Ok(outs)
    }

    /// `ReduceMean` over `axes` keeping dims (a building block of the normalisations).
    fn mean(&mut self, c: &Cur, x: ValueId, axes: Vec<usize>) -> LResult<ValueId> {
        self.reduce_node(c, Reduce { kind: ReduceKind::Mean, axes, keepdims: true }, x)
    }

    /// `(x - mean) · 1/sqrt(var + eps)` over `axes`; returns `(normalised, mean, inv_std)`.
    fn normalise(&mut self, c: &Cur, x: ValueId, axes: Vec<usize>, eps: f32) -> LResult<(ValueId, ValueId, ValueId)> {
        let mean = self.mean(c, x, axes.clone())?;
        let d = self.binary(c, BinaryKind::Sub, x, mean)?;
        let sq = self.binary(c, BinaryKind::Mul, d, d)?;
        let var = self.mean(c, sq, axes)?;
        let e = self.constant(&format!("{}/epsilon", c.name), TensorType::f32(vec![]), TensorData::F32(vec![eps]));
        let ve = self.binary(c, BinaryKind::Add, var, e)?;
        let sd = self.emit(c, Op::Activation(Act::Sqrt), vec![ve])?;
        let inv = self.emit(c, Op::Activation(Act::Reciprocal), vec![sd])?;
        let y = self.binary(c, BinaryKind::Mul, d, inv)?;
        Ok((y, mean, inv))
    }

    /// BatchNormalization with `training_mode = 1`: normalised with the batch's own mean and
    /// (population) variance over every axis but 1; the optional outputs are the running
    /// statistics `input · momentum + batch · (1 − momentum)`.
    fn batch_norm_training(&mut self, c: &Cur) -> LResult<Vec<ValueId>> {
        let a = c.attrs();
        let x = c.input(0)?;
        let xs = self.shape(x);
        if xs.len() < 2 || self.g.ty(x).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some("training mode needs a float32 input of rank >= 2".into())));
        }
        let axes: Vec<usize> = std::iter::once(0).chain(2..xs.len()).collect();
        let mean = self.mean(c, x, axes.clone())?;
        let d = self.binary(c, BinaryKind::Sub, x, mean)?;
        let sq = self.binary(c, BinaryKind::Mul, d, d)?;
        let var = self.mean(c, sq, axes)?;
        let scalar = |this: &mut Self, what: &str, v: f32| {
            this.constant(&format!("{}/{what}", c.name), TensorType::f32(vec![]), TensorData::F32(vec![v]))
        };
        let e = scalar(self, "epsilon", a.float("epsilon", 1e-5));
        let ve = self.binary(c, BinaryKind::Add, var, e)?;
        let sd = self.emit(c, Op::Activation(Act::Sqrt), vec![ve])?;
        let n = self.binary(c, BinaryKind::Div, d, sd)?;
        let mut per_channel = vec![xs[1]];
        per_channel.extend(std::iter::repeat_n(1, xs.len() - 2));
        let sc = self.reshape(c, c.input(1)?, per_channel.clone())?;
        let bi = self.reshape(c, c.input(2)?, per_channel)?;
        let y = self.binary(c, BinaryKind::Mul, n, sc)?;
        let y = self.binary(c, BinaryKind::Add, y, bi)?;
        let momentum = a.float("momentum", 0.9);
        let (keep, blend) = (scalar(self, "momentum", momentum), scalar(self, "one_minus_momentum", 1.0 - momentum));
        let mut outs = vec![y];
        for (k, batch) in [(3, mean), (4, var)] {
            let running = self.binary(c, BinaryKind::Mul, c.input(k)?, keep)?;
            let batch = self.reshape(c, batch, vec![xs[1]])?;
            let batch = self.binary(c, BinaryKind::Mul, batch, blend)?;
            outs.push(self.binary(c, BinaryKind::Add, running, batch)?);
        }
        Ok(outs)
    }

    fn layer_norm(&mut self, c: &Cur) -> LResult<Vec<ValueId>> {
        let a = c.attrs();
        let x = c.input(0)?;
        let rank = self.shape(x).len();
        if self.g.ty(x).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some(format!("{} input", self.g.ty(x).dtype))));
        }
        let axis = norm_axis(a.int("axis", -1), rank)?;
        let (n, mean, inv) = self.normalise(c, x, (axis..rank).collect(), a.float("epsilon", 1e-5))?;
        let mut y = self.binary(c, BinaryKind::Mul, n, c.input(1)?)?;
        if let Some(b) = c.opt_input(2) {
            y = self.binary(c, BinaryKind::Add, y, b)?;
        }
        Ok(vec![y, mean, inv])
    }

    fn instance_norm(&mut self, c: &Cur) -> LResult<ValueId> {
        let a = c.attrs();
        let x = c.input(0)?;
        let xs = self.shape(x);
        if xs.len() < 3 || self.g.ty(x).dtype != DType::F32 {
            return Err(Fail::Unsupported(Some("only float inputs of rank >= 3".into())));
        }
        let (n, _, _) = self.normalise(c, x, (2..xs.len()).collect(), a.float("epsilon", 1e-5))?;
        let mut per_channel = vec![xs[1]];
        per_channel.extend(std::iter::repeat_n(1, xs.len() - 2));
        let sc = self.reshape(c, c.input(1)?, per_channel.clone())?;
        let bi = self.reshape(c, c.input(2)?, per_channel)?;
        let y = self.binary(c, BinaryKind::Mul, n, sc)?;
        self.binary(c, BinaryKind::Add, y, bi)
    }

    fn reduce(&mut self, c: &Cur) -> LResult<ValueId> {
        let a = c.attrs();
        let x = c.input(0)?;
        let rank = self.shape(x).len();
        let kind = match c.p.op_type.as_str() {
            "ReduceSum" => ReduceKind::Sum,
            "ReduceMean" => ReduceKind::Mean,
            "ReduceMax" => ReduceKind::Max,
            "ReduceMin" => ReduceKind::Min,
            "ReduceProd" => ReduceKind::Prod,
            "ReduceL1" => ReduceKind::L1,
            "ReduceL2" => ReduceKind::L2,
            "ReduceSumSquare" => ReduceKind::SumSquare,
            "ReduceLogSum" => ReduceKind::LogSum,
            _ => ReduceKind::LogSumExp,
        };
        let axes_as_input = if kind == ReduceKind::Sum { self.opset >= 13 } else { self.opset >= 18 };
        let axes = if axes_as_input {
            match c.opt_input(1) {
                Some(v) => Some(self.const_ints(v, "axes")?),
                None => None,
            }
        } else {
            a.ints("axes")
        };
        let axes = match axes {
            Some(v) if !v.is_empty() => v,
            _ if a.int("noop_with_empty_axes", 0) != 0 => {
                let s = self.shape(x);
                return self.reshape(c, x, s);
            }
            _ => (0..rank as i64).collect(),
        };
        let mut axes = axes.iter().map(|&v| norm_axis(v, rank)).collect::<Result<Vec<_>, _>>()?;
        axes.sort_unstable();
        axes.dedup();
        let dt = self.g.ty(x).dtype;
        let op = Reduce { kind, axes, keepdims: a.int("keepdims", 1) != 0 };
        if dt == DType::Bool && matches!(kind, ReduceKind::Max | ReduceKind::Min) && !op.over_empty(&self.shape(x)) {
            // Any / all over booleans: the max / min of their 0-1 bytes.
            let u = self.emit(c, Op::Cast(Cast::to(DType::U8)), vec![x])?;
            let r = self.reduce_node(c, op, u)?;
            return self.emit(c, Op::Cast(Cast::to(DType::Bool)), vec![r]);
        }
        self.reduce_node(c, op, x)
    }

    fn softmax(&mut self, c: &Cur) -> LResult<ValueId> {
        let x = c.input(0)?;
        let s = self.shape(x);
        let a = c.attrs();
        let log = c.p.op_type == "LogSoftmax";
        if self.opset >= 13 {
            let axis = norm_axis(a.int("axis", -1), s.len())?;
            return self.emit(c, Op::Softmax(Softmax { axis, log }), vec![x]);
        }
        // Before opset 13 the input is coerced to 2-D at `axis` (default 1).
        let axis = if s.is_empty() { 0 } else { norm_axis(a.int("axis", 1), s.len())? };
        if axis + 1 >= s.len() {
            return self.emit(c, Op::Softmax(Softmax { axis: s.len().saturating_sub(1), log }), vec![x]);
        }
        let flat = vec![s[..axis].iter().product(), s[axis..].iter().product()];
        let r = self.reshape(c, x, flat)?;
        let y = self.emit(c, Op::Softmax(Softmax { axis: 1, log }), vec![r])?;
        self.reshape(c, y, s)
    }

    fn pad(&mut self, c: &Cur) -> LResult<ValueId> {
        let a = c.attrs();
        let x = c.input(0)?;
        let rank = self.shape(x).len();
        let mode = match a.string("mode").as_deref().unwrap_or("constant") {
            "constant" => PadMode::Constant,
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            "wrap" => PadMode::Wrap,
            m => return Err(Fail::Unsupported(Some(format!("mode \"{m}\"")))),
        };
        let (raw, value) = if self.opset < 11 {
            (a.ints("pads").ok_or("attribute 'pads' is required")?, a.float("value", 0.0))
        } else {
            let pads = self.const_ints(c.input(1)?, "pads")?;
            let value = match c.opt_input(2) {
                Some(v) => self.const_scalar(v, "constant_value")?,
                None => 0.0,
            };
            (pads, value)
        };
        let mut pads = vec![0i64; 2 * rank];
        match c.opt_input(3) {
            Some(axes) => {
                let axes = self.const_ints(axes, "axes")?;
                if raw.len() != 2 * axes.len() {
                    return Err(format!("pads has {} values for {} axes", raw.len(), axes.len()).into());
                }
                for (i, &ax) in axes.iter().enumerate() {
                    let ax = norm_axis(ax, rank)?;
                    pads[ax] = raw[i];
                    pads[rank + ax] = raw[axes.len() + i];
                }
            }
            None if raw.len() == 2 * rank => pads = raw,
            None => {
                return Err(format!("pads has {} values, expected {} for rank {rank}", raw.len(), 2 * rank).into());
            }
        }
        let pads = pads
            .iter()
            .map(|&p| usize::try_from(p).map_err(|_| Fail::Unsupported(Some("negative pads (cropping)".into()))))
            .collect::<LResult<Vec<_>>>()?;
        self.emit(c, Op::Pad(Pad { pads, mode, value }), vec![x])
    }
}

fn pair(v: &[usize], what: &str) -> LResult<[usize; 2]> {
    match v {
        [a, b] => Ok([*a, *b]),
        _ => Err(format!("attribute '{what}' must have 2 values for 2-D, got {v:?}").into()),
    }
}

/// Explicit `[top, left, bottom, right]` pads from `pads` or `auto_pad`.
fn resolve_pads(
    a: &Attrs,
    input: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    one_d: bool,
) -> LResult<[usize; 4]> {
    let auto = a.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
    match auto.as_str() {
        "NOTSET" => {
            let p = a.usizes("pads", vec![0; if one_d { 2 } else { 4 }])?;
            match p.as_slice() {
                [b, e] if one_d => Ok([0, *b, 0, *e]),
                [t, l, b, r] => Ok([*t, *l, *b, *r]),
                _ => Err(format!("attribute 'pads' must have 4 values for 2-D, got {p:?}").into()),
            }
        }
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut pads = [0; 4];
            for i in 0..2 {
                if s[i] == 0 {
                    return Err("strides must be positive".into());
                }
                let out = input[i].div_ceil(s[i]);
                let span = d[i] * (k[i] - 1) + 1;
                let total = ((out - 1) * s[i] + span).saturating_sub(input[i]);
                let small = total / 2;
                let (begin, end) = if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                pads[i] = begin;
                pads[i + 2] = end;
            }
            Ok(pads)
        }
        other => Err(format!("unknown auto_pad \"{other}\"").into()),
    }
}

/// Explicit `(begin, end)` pads per spatial axis of an N-d window from `pads` or `auto_pad`.
fn resolve_pads_nd(a: &Attrs, input: &[usize], k: &[usize], s: &[usize], d: &[usize]) -> LResult<Vec<(usize, usize)>> {
    let n = input.len();
    let auto = a.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
    match auto.as_str() {
        "NOTSET" => {
            let p = a.usizes("pads", vec![0; 2 * n])?;
            if p.len() != 2 * n {
                return Err(format!("attribute 'pads' must have {} values, got {p:?}", 2 * n).into());
            }
            Ok((0..n).map(|i| (p[i], p[n + i])).collect())
        }
        "VALID" => Ok(vec![(0, 0); n]),
        "SAME_UPPER" | "SAME_LOWER" => (0..n)
            .map(|i| {
                if s[i] == 0 || k[i] == 0 {
                    return Err(Fail::from("strides and kernel_shape must be positive"));
                }
                let out = input[i].div_ceil(s[i]);
                let span = d[i] * (k[i] - 1) + 1;
                let total = ((out - 1) * s[i] + span).saturating_sub(input[i]);
                let small = total / 2;
                Ok(if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) })
            })
            .collect(),
        other => Err(format!("unknown auto_pad \"{other}\"").into()),
    }
}

/// Resolves a Reshape `shape` input (0 = copy, -1 = infer) against the input shape.
fn reshape_target(input: &[usize], spec: &[i64], allow_zero: bool) -> LResult<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => out.push(*input.get(i).ok_or("shape copies a dimension (0) beyond the input rank")?),
            d if d >= 0 => out.push(d as usize),
            _ => return Err(format!("invalid shape {spec:?}").into()),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} to {spec:?}").into());
        }
        out[i] = total / known;
    }
    Ok(out)
}

fn squeeze(s: &[usize], axes: Option<Vec<i64>>) -> LResult<Vec<usize>> {
    match axes {
        None => Ok(s.iter().copied().filter(|&d| d != 1).collect()),
        Some(axes) => {
            let axes = axes.iter().map(|&a| norm_axis(a, s.len())).collect::<Result<Vec<_>, _>>()?;
            if let Some(&bad) = axes.iter().find(|&&a| s[a] != 1) {
                return Err(format!("cannot squeeze axis {bad} of size {}", s[bad]).into());
            }
            Ok(s.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect())
        }
    }
}

fn unsqueeze(s: &[usize], axes: Vec<i64>) -> LResult<Vec<usize>> {
    let rank = s.len() + axes.len();
    let mut axes = axes.iter().map(|&a| norm_axis(a, rank)).collect::<Result<Vec<_>, _>>()?;
    axes.sort_unstable();
    let mut out = Vec::with_capacity(rank);
    let mut it = s.iter();
    for i in 0..rank {
        if axes.contains(&i) {
            out.push(1);
        } else {
            out.push(*it.next().ok_or("duplicate axes")?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_resolves_zero_and_minus_one() {
        assert_eq!(reshape_target(&[1, 3, 4], &[0, -1], false).ok(), Some(vec![1, 12]));
        assert!(reshape_target(&[1, 3, 4], &[5, -1], false).is_err());
    }

    #[test]
    fn squeeze_unsqueeze_roundtrip() {
        assert_eq!(squeeze(&[1, 3, 1, 4], None).ok(), Some(vec![3, 4]));
        assert_eq!(unsqueeze(&[3, 4], vec![0, -1]).ok(), Some(vec![1, 3, 4, 1]));
    }
}
