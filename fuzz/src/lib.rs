//! Structured random ONNX graphs for the pipeline fuzz target.
//!
//! A [`FuzzModel`] is a list of node recipes applied to a small float input. The builder
//! tracks the shape of every value it creates so most graphs are valid (the pipeline gets
//! past the frontend into the passes and backends); some recipes (`Raw`, odd opsets,
//! symbolic dims) deliberately produce invalid models to exercise the error paths.

use arbitrary::Arbitrary;
use modelless::frontend::ImportOptions;
use modelless::ir::TensorData;
use modelless::{Config, Int8Config, Lang};
use prost::Message as _;
use std::path::Path;
use tract_onnx::pb;

const FLOAT: i32 = 1;
const INT64: i32 = 7;

#[derive(Arbitrary, Debug, Default)]
pub struct FuzzModel {
    pub opset: u8,
    pub input_dims: Vec<u8>,
    /// A symbolic dimension (index), bound with `--input-shape` when `bind` is set.
    pub symbolic: Option<(u8, bool)>,
    pub nodes: Vec<Recipe>,
    pub extra_outputs: u8,
    pub rust: bool,
}

#[derive(Arbitrary, Debug)]
pub enum Recipe {
    Unary { op: u8, src: u8 },
    Binary { op: u8, a: u8, b: u8, mask: u8, constant: bool, trim: u8 },
    Conv { src: u8, out_ch: u8, k: u8, stride: u8, pad: u8, dil: u8, group: u8, bias: bool, auto_pad: u8 },
    Pool { op: u8, src: u8, k: u8, stride: u8, pad: u8, ceil: bool },
    Gemm { src: u8, n: u8, trans_b: bool, bias: bool, alpha: i8 },
    MatMul { src: u8, n: u8 },
    Reshape { src: u8, mode: u8 },
    Flatten { src: u8, axis: i8 },
    Transpose { src: u8, seed: u8 },
    Concat { a: u8, b: u8, axis: i8 },
    Softmax { src: u8, axis: i8, log: bool },
    Reduce { op: u8, src: u8, axes: u8, keepdims: bool },
    Pad { src: u8, pads: [u8; 8], mode: u8 },
    Slice { src: u8, axis: u8, start: i8, end: i8, step: i8 },
    Unsqueeze { src: u8, axis: i8 },
    Squeeze { src: u8 },
    BatchNorm { src: u8 },
    Gather { src: u8, axis: i8, idx: Vec<i8> },
    Clip { src: u8, lo: i8, hi: i8 },
    Where { a: u8, b: u8 },
    Split { src: u8, axis: i8, parts: u8 },
    Tile { src: u8, reps: [u8; 4] },
    Expand { src: u8, extra: u8 },
    DepthToSpace { src: u8, block: u8, crd: bool },
    Norm { src: u8, layer: bool, axis: i8 },
    ArgMax { src: u8, axis: i8, keepdims: bool },
    Raw { op: u8, inputs: Vec<u8>, attrs: Vec<RawAttr> },
}

#[derive(Arbitrary, Debug)]
pub struct RawAttr {
    pub name: u8,
    pub value: RawValue,
}

#[derive(Arbitrary, Debug)]
pub enum RawValue {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Str(u8),
    Tensor { dims: Vec<i8>, ints: bool, data: Vec<i8> },
}

const UNARY: &[&str] = &[
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Abs",
    "Neg",
    "Sqrt",
    "Floor",
    "Ceil",
    "Round",
    "Erf",
    "Sign",
    "Softplus",
    "Softsign",
    "Elu",
    "Selu",
    "HardSigmoid",
    "HardSwish",
    "Sin",
    "Cos",
    "Atan",
    "Identity",
    "Dropout",
    "LeakyRelu",
    "Reciprocal",
    "Celu",
    "Mish",
    "ThresholdedRelu",
];
const BINARY: &[&str] = &["Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Sum", "Mean", "PRelu", "Mod"];
const REDUCE: &[&str] = &[
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
];
const ATTR_NAMES: &[&str] = &[
    "axis",
    "axes",
    "perm",
    "kernel_shape",
    "strides",
    "pads",
    "dilations",
    "group",
    "alpha",
    "beta",
    "transA",
    "transB",
    "keepdims",
    "mode",
    "epsilon",
    "to",
    "auto_pad",
    "ceil_mode",
    "count_include_pad",
    "value",
    "shape",
    "split",
    "blocksize",
    "min",
    "max",
    "fmod",
    "upper",
    "select_last_index",
    "allowzero",
    "noop_with_empty_axes",
    "gamma",
    "lambd",
    "bias",
    "momentum",
    "spatial",
    "storage_order",
    "output_shape",
];
const STRINGS: &[&str] =
    &["", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "constant", "reflect", "edge", "DCR", "CRD", "x"];

struct Val {
    name: String,
    shape: Vec<usize>,
    float: bool,
}

struct Builder {
    /// Only recipes whose output is a continuous function of the input (for the
    /// differential target: no Floor/Ceil/Round/Sign/Mod/Where/ArgMax/Raw, where a
    /// last-bit difference upstream legitimately flips a result).
    smooth: bool,
    vals: Vec<Val>,
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    n: usize,
}

fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 2, i, ..Default::default() }
}
fn attr_float(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 1, f, ..Default::default() }
}
fn attr_ints(name: &str, ints: Vec<i64>) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 7, ints, ..Default::default() }
}
fn attr_str(name: &str, s: &str) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 3, s: s.as_bytes().to_vec(), ..Default::default() }
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

impl Builder {
    fn fresh(&mut self, prefix: &str) -> String {
        self.n += 1;
        format!("{prefix}{}", self.n)
    }

    /// A float initializer with deterministic small values.
    fn const_f(&mut self, shape: &[usize]) -> String {
        let name = self.fresh("w");
        let n = numel(shape);
        let data = (0..n).map(|i| ((i * 7 + self.n) % 13) as f32 / 8.0 - 0.7).collect();
        self.inits.push(pb::TensorProto {
            name: name.clone(),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            float_data: data,
            ..Default::default()
        });
        name
    }

    fn const_i(&mut self, data: Vec<i64>) -> String {
        let name = self.fresh("c");
        self.inits.push(pb::TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: INT64,
            int64_data: data,
            ..Default::default()
        });
        name
    }

    /// A float value picked by `i` (wrapping), optionally of a given rank.
    fn pick(&self, i: u8, rank: Option<usize>) -> Option<usize> {
        let cands: Vec<usize> = (0..self.vals.len())
            .filter(|&v| self.vals[v].float && numel(&self.vals[v].shape) > 0)
            .filter(|&v| rank.is_none_or(|r| self.vals[v].shape.len() == r))
            .collect();
        if cands.is_empty() { None } else { Some(cands[i as usize % cands.len()]) }
    }

    fn node(&mut self, op: &str, inputs: Vec<String>, attrs: Vec<pb::AttributeProto>, outs: Vec<(Vec<usize>, bool)>) {
        let mut output = vec![];
        for (shape, float) in outs {
            let name = self.fresh("v");
            output.push(name.clone());
            if numel(&shape) <= 4096 && shape.len() <= 6 {
                self.vals.push(Val { name, shape, float });
            }
        }
        let name = self.fresh(&format!("{op}_"));
        self.nodes.push(pb::NodeProto {
            input: inputs,
            output,
            name,
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
    }

    fn name(&self, v: usize) -> String {
        self.vals[v].name.clone()
    }

    fn shape(&self, v: usize) -> Vec<usize> {
        self.vals[v].shape.clone()
    }

    fn apply(&mut self, r: &Recipe) {
        if self.smooth && !smooth(r) {
            return;
        }
        match *r {
            Recipe::Unary { op, src } => {
                let Some(v) = self.pick(src, None) else { return };
                let op = UNARY[op as usize % UNARY.len()];
                let s = self.shape(v);
                let attrs = if op == "LeakyRelu" { vec![attr_float("alpha", 0.1)] } else { vec![] };
                self.node(op, vec![self.name(v)], attrs, vec![(s, true)]);
            }
            Recipe::Binary { op, a, b, mask, constant, trim } => {
                let Some(va) = self.pick(a, None) else { return };
                let op = BINARY[op as usize % BINARY.len()];
                let sa = self.shape(va);
                let mut sb: Vec<usize> =
                    sa.iter().enumerate().map(|(i, &d)| if mask >> i & 1 == 1 { 1 } else { d }).collect();
                let t = (trim as usize % (sb.len() + 1)).min(sb.len());
                sb.drain(..t);
                let bname = if constant || op == "PRelu" {
                    self.const_f(&sb)
                } else {
                    match self.pick(b, Some(sa.len())).filter(|&v| self.vals[v].shape == sa) {
                        Some(v) => self.name(v),
                        None => self.const_f(&sb),
                    }
                };
                let attrs = if op == "Mod" { vec![attr_int("fmod", 1)] } else { vec![] };
                self.node(op, vec![self.name(va), bname], attrs, vec![(sa, true)]);
            }
            Recipe::Conv { src, out_ch, k, stride, pad, dil, group, bias, auto_pad } => {
                let Some(v) = self.pick(src, Some(4)) else { return };
                let s = self.shape(v);
                let c = s[1];
                let group = if group % 3 == 0 { c } else { 1 };
                let m = if group == c && group > 1 { c * (1 + out_ch as usize % 2) } else { 1 + out_ch as usize % 8 };
                let (k, stride, pad, dil) =
                    (1 + k as usize % 3, 1 + stride as usize % 2, pad as usize % 2, 1 + dil as usize % 2);
                let w = self.const_f(&[m, c / group.max(1), k, k]);
                let mut ins = vec![self.name(v), w];
                if bias {
                    ins.push(self.const_f(&[m]));
                }
                let ap = ["NOTSET", "SAME_UPPER", "VALID", "SAME_LOWER"][auto_pad as usize % 4];
                let mut attrs = vec![
                    attr_ints("kernel_shape", vec![k as i64; 2]),
                    attr_ints("strides", vec![stride as i64; 2]),
                    attr_ints("dilations", vec![dil as i64; 2]),
                    attr_int("group", group as i64),
                ];
                let ek = dil * (k - 1) + 1;
                let out = |x: usize, p: usize| -> Option<usize> {
                    match ap {
                        "NOTSET" | "VALID" => (x + 2 * p).checked_sub(ek).map(|r| r / stride + 1),
                        _ => Some(x.div_ceil(stride)),
                    }
                };
                if ap == "NOTSET" {
                    attrs.push(attr_ints("pads", vec![pad as i64; 4]));
                } else {
                    attrs.push(attr_str("auto_pad", ap));
                }
                let p = if ap == "NOTSET" { pad } else { 0 };
                let (Some(h), Some(wd)) = (out(s[2], p), out(s[3], p)) else { return };
                self.node("Conv", ins, attrs, vec![(vec![s[0], m, h, wd], true)]);
            }
            Recipe::Pool { op, src, k, stride, pad, ceil } => {
                let Some(v) = self.pick(src, Some(4)) else { return };
                let s = self.shape(v);
                let op = ["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"][op as usize % 4];
                if op.starts_with("Global") {
                    self.node(op, vec![self.name(v)], vec![], vec![(vec![s[0], s[1], 1, 1], true)]);
                    return;
                }
                let (k, stride) = (1 + k as usize % 3, 1 + stride as usize % 3);
                let pad = (pad as usize % 2).min(k - 1);
                let out = |x: usize| -> Option<usize> {
                    let span = (x + 2 * pad).checked_sub(k)?;
                    Some(if ceil { span.div_ceil(stride) + 1 } else { span / stride + 1 })
                };
                let (Some(h), Some(w)) = (out(s[2]), out(s[3])) else { return };
                let attrs = vec![
                    attr_ints("kernel_shape", vec![k as i64; 2]),
                    attr_ints("strides", vec![stride as i64; 2]),
                    attr_ints("pads", vec![pad as i64; 4]),
                    attr_int("ceil_mode", ceil as i64),
                ];
                self.node(op, vec![self.name(v)], attrs, vec![(vec![s[0], s[1], h, w], true)]);
            }
            Recipe::Gemm { src, n, trans_b, bias, alpha } => {
                let Some(v) = self.pick(src, Some(2)) else { return };
                let s = self.shape(v);
                let n = 1 + n as usize % 8;
                let w = if trans_b { self.const_f(&[n, s[1]]) } else { self.const_f(&[s[1], n]) };
                let mut ins = vec![self.name(v), w];
                if bias {
                    ins.push(self.const_f(&[n]));
                }
                let attrs = vec![attr_int("transB", trans_b as i64), attr_float("alpha", alpha as f32 / 16.0)];
                self.node("Gemm", ins, attrs, vec![(vec![s[0], n], true)]);
            }
            Recipe::MatMul { src, n } => {
                let Some(v) = self.pick(src, None) else { return };
                let mut s = self.shape(v);
                let Some(&k) = s.last() else { return };
                let n = 1 + n as usize % 8;
                let w = self.const_f(&[k, n]);
                if s.len() == 1 {
                    s = vec![n];
                } else if let Some(l) = s.last_mut() {
                    *l = n;
                }
                self.node("MatMul", vec![self.name(v), w], vec![], vec![(s, true)]);
            }
            Recipe::Reshape { src, mode } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let n = numel(&s);
                let (spec, out): (Vec<i64>, Vec<usize>) = match mode % 4 {
                    0 => (vec![1, -1], vec![1, n]),
                    1 => (vec![n as i64], vec![n]),
                    2 => (s.iter().rev().map(|&d| d as i64).collect(), s.iter().rev().copied().collect()),
                    _ => {
                        let mut spec: Vec<i64> = vec![0; s.len()];
                        spec.push(1);
                        let mut out = s.clone();
                        out.push(1);
                        (spec, out)
                    }
                };
                let shape = self.const_i(spec);
                self.node("Reshape", vec![self.name(v), shape], vec![], vec![(out, true)]);
            }
            Recipe::Flatten { src, axis } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let a = (axis as i64).rem_euclid(s.len() as i64 + 1) as usize;
                let out = vec![numel(&s[..a]), numel(&s[a..])];
                self.node("Flatten", vec![self.name(v)], vec![attr_int("axis", a as i64)], vec![(out, true)]);
            }
            Recipe::Transpose { src, seed } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let mut perm: Vec<usize> = (0..s.len()).collect();
                let mut x = seed as usize;
                for i in (1..perm.len()).rev() {
                    x = x.wrapping_mul(31).wrapping_add(7);
                    perm.swap(i, x % (i + 1));
                }
                let out = perm.iter().map(|&p| s[p]).collect();
                let perm = perm.iter().map(|&p| p as i64).collect();
                self.node("Transpose", vec![self.name(v)], vec![attr_ints("perm", perm)], vec![(out, true)]);
            }
            Recipe::Concat { a, b, axis } => {
                let Some(va) = self.pick(a, None) else { return };
                let s = self.shape(va);
                if s.is_empty() {
                    return;
                }
                let ax = (axis as i64).rem_euclid(s.len() as i64) as usize;
                let mut sb = s.clone();
                sb[ax] = 1 + b as usize % 3;
                let bn = self.const_f(&sb);
                let mut out = s.clone();
                out[ax] += sb[ax];
                let neg = axis < 0;
                let ax_attr = if neg { ax as i64 - s.len() as i64 } else { ax as i64 };
                self.node("Concat", vec![self.name(va), bn], vec![attr_int("axis", ax_attr)], vec![(out, true)]);
            }
            Recipe::Softmax { src, axis, log } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                if s.is_empty() {
                    return;
                }
                let ax = (axis as i64).rem_euclid(s.len() as i64);
                let op = if log { "LogSoftmax" } else { "Softmax" };
                self.node(op, vec![self.name(v)], vec![attr_int("axis", ax)], vec![(s, true)]);
            }
            Recipe::Reduce { op, src, axes, keepdims } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let op = REDUCE[op as usize % REDUCE.len()];
                let ax: Vec<i64> = (0..s.len()).filter(|i| axes >> i & 1 == 1).map(|i| i as i64).collect();
                if ax.is_empty() {
                    return;
                }
                let out: Vec<usize> = s
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &d)| if ax.contains(&(i as i64)) { keepdims.then_some(1) } else { Some(d) })
                    .collect();
                let mut ins = vec![self.name(v)];
                let mut attrs = vec![attr_int("keepdims", keepdims as i64)];
                if op == "ReduceSum" {
                    ins.push(self.const_i(ax));
                } else {
                    attrs.push(attr_ints("axes", ax));
                }
                self.node(op, ins, attrs, vec![(out, true)]);
            }
            Recipe::Pad { src, pads, mode } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let r = s.len();
                let mode = ["constant", "reflect", "edge"][mode as usize % 3];
                let mut p: Vec<i64> = (0..2 * r).map(|i| (pads[i % 8] % 3) as i64).collect();
                if mode == "reflect" {
                    for i in 0..2 * r {
                        p[i] = p[i].min(s[i % r] as i64 - 1).max(0);
                    }
                }
                let out = (0..r).map(|i| s[i] + p[i] as usize + p[i + r] as usize).collect();
                let pn = self.const_i(p);
                self.node("Pad", vec![self.name(v), pn], vec![attr_str("mode", mode)], vec![(out, true)]);
            }
            Recipe::Slice { src, axis, start, end, step } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                if s.is_empty() {
                    return;
                }
                let ax = axis as usize % s.len();
                let step = if step == 0 { 1 } else { (step as i64).clamp(-3, 3) };
                let d = s[ax] as i64;
                // ONNX clamping of starts/ends.
                let clampi = |x: i64, lo: i64, hi: i64| {
                    let x = if x < 0 { x + d } else { x };
                    x.clamp(lo, hi)
                };
                let (st, en) = (start as i64, end as i64);
                let len = if step > 0 {
                    let (a, b) = (clampi(st, 0, d), clampi(en, 0, d));
                    if b > a { (b - a + step - 1) / step } else { 0 }
                } else {
                    let (a, b) = (clampi(st, 0, d - 1), clampi(en, -1, d - 1));
                    if a > b { (a - b - step - 1) / -step } else { 0 }
                };
                let mut out = s.clone();
                out[ax] = len as usize;
                let ins = vec![
                    self.name(v),
                    self.const_i(vec![st]),
                    self.const_i(vec![en]),
                    self.const_i(vec![ax as i64]),
                    self.const_i(vec![step]),
                ];
                self.node("Slice", ins, vec![], vec![(out, true)]);
            }
            Recipe::Unsqueeze { src, axis } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let ax = (axis as i64).rem_euclid(s.len() as i64 + 1) as usize;
                let mut out = s.clone();
                out.insert(ax, 1);
                let a = self.const_i(vec![ax as i64]);
                self.node("Unsqueeze", vec![self.name(v), a], vec![], vec![(out, true)]);
            }
            Recipe::Squeeze { src } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let ax: Vec<i64> = (0..s.len()).filter(|&i| s[i] == 1).map(|i| i as i64).collect();
                let out = s.iter().copied().filter(|&d| d != 1).collect();
                let a = self.const_i(ax);
                self.node("Squeeze", vec![self.name(v), a], vec![], vec![(out, true)]);
            }
            Recipe::BatchNorm { src } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                if s.len() < 2 {
                    return;
                }
                let c = s[1];
                let mut ins = vec![self.name(v)];
                for _ in 0..4 {
                    ins.push(self.const_f(&[c]));
                }
                // Variance must be positive: square-free constants may be negative, add epsilon big enough.
                self.node("BatchNormalization", ins, vec![attr_float("epsilon", 1.0)], vec![(s, true)]);
            }
            Recipe::Gather { src, axis, ref idx } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                if s.is_empty() || idx.is_empty() {
                    return;
                }
                let ax = (axis as i64).rem_euclid(s.len() as i64) as usize;
                let d = s[ax] as i64;
                let ids: Vec<i64> = idx.iter().take(6).map(|&i| (i as i64).rem_euclid(2 * d) - d).collect();
                let mut out = s[..ax].to_vec();
                out.push(ids.len());
                out.extend_from_slice(&s[ax + 1..]);
                let i = self.const_i(ids);
                self.node("Gather", vec![self.name(v), i], vec![attr_int("axis", ax as i64)], vec![(out, true)]);
            }
            Recipe::Clip { src, lo, hi } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let lo_n = self.const_f(&[]);
                let hi_n = self.const_f(&[]);
                let _ = (lo, hi);
                self.node("Clip", vec![self.name(v), lo_n, hi_n], vec![], vec![(s, true)]);
            }
            Recipe::Where { a, b } => {
                let Some(va) = self.pick(a, None) else { return };
                let s = self.shape(va);
                let vb = match self.pick(b, Some(s.len())).filter(|&v| self.vals[v].shape == s) {
                    Some(v) => self.name(v),
                    None => self.const_f(&s),
                };
                let cond = self.fresh("cond");
                self.nodes.push(pb::NodeProto {
                    input: vec![self.name(va), vb.clone()],
                    output: vec![cond.clone()],
                    name: format!("{cond}_greater"),
                    op_type: "Greater".into(),
                    ..Default::default()
                });
                self.node("Where", vec![cond, self.name(va), vb], vec![], vec![(s, true)]);
            }
            Recipe::Split { src, axis, parts } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                if s.is_empty() {
                    return;
                }
                let ax = (axis as i64).rem_euclid(s.len() as i64) as usize;
                let parts = (1 + parts as usize % 3).min(s[ax]);
                let base = s[ax] / parts;
                let sizes: Vec<i64> = (0..parts)
                    .map(|i| if i + 1 == parts { (s[ax] - base * (parts - 1)) as i64 } else { base as i64 })
                    .collect();
                let outs = sizes
                    .iter()
                    .map(|&n| {
                        let mut o = s.clone();
                        o[ax] = n as usize;
                        (o, true)
                    })
                    .collect();
                let sp = self.const_i(sizes);
                self.node("Split", vec![self.name(v), sp], vec![attr_int("axis", ax as i64)], outs);
            }
            Recipe::Tile { src, reps } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let r: Vec<i64> = (0..s.len()).map(|i| 1 + (reps[i % 4] % 2) as i64).collect();
                let out = s.iter().zip(&r).map(|(&d, &k)| d * k as usize).collect();
                let rn = self.const_i(r);
                self.node("Tile", vec![self.name(v), rn], vec![], vec![(out, true)]);
            }
            Recipe::Expand { src, extra } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                let mut out = vec![1 + extra as usize % 3];
                out.extend_from_slice(&s);
                let sn = self.const_i(out.iter().map(|&d| d as i64).collect());
                self.node("Expand", vec![self.name(v), sn], vec![], vec![(out, true)]);
            }
            Recipe::DepthToSpace { src, block, crd } => {
                let Some(v) = self.pick(src, Some(4)) else { return };
                let s = self.shape(v);
                let b = 1 + block as usize % 2;
                if !s[1].is_multiple_of(b * b) {
                    return;
                }
                let out = vec![s[0], s[1] / (b * b), s[2] * b, s[3] * b];
                let attrs = vec![attr_int("blocksize", b as i64), attr_str("mode", if crd { "CRD" } else { "DCR" })];
                self.node("DepthToSpace", vec![self.name(v)], attrs, vec![(out, true)]);
            }
            Recipe::Norm { src, layer, axis } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                if s.len() < 2 {
                    return;
                }
                if layer {
                    let ax = (axis as i64).rem_euclid(s.len() as i64) as usize;
                    let g = self.const_f(&s[ax..]);
                    let b = self.const_f(&s[ax..]);
                    let attrs = vec![attr_int("axis", ax as i64)];
                    self.node("LayerNormalization", vec![self.name(v), g, b], attrs, vec![(s, true)]);
                } else {
                    let g = self.const_f(&[s[1]]);
                    let b = self.const_f(&[s[1]]);
                    self.node("InstanceNormalization", vec![self.name(v), g, b], vec![], vec![(s, true)]);
                }
            }
            Recipe::ArgMax { src, axis, keepdims } => {
                let Some(v) = self.pick(src, None) else { return };
                let s = self.shape(v);
                if s.is_empty() {
                    return;
                }
                let ax = (axis as i64).rem_euclid(s.len() as i64) as usize;
                let mut out = s.clone();
                if keepdims {
                    out[ax] = 1;
                } else {
                    out.remove(ax);
                }
                let attrs = vec![attr_int("axis", ax as i64), attr_int("keepdims", keepdims as i64)];
                self.node("ArgMax", vec![self.name(v)], attrs, vec![(out, false)]);
            }
            Recipe::Raw { op, ref inputs, ref attrs } => {
                let ops = modelless::frontend::SUPPORTED_OPS;
                let op = ops[op as usize % ops.len()];
                let mut ins = vec![];
                for &i in inputs.iter().take(5) {
                    if i >= 250 {
                        ins.push(String::new());
                    } else if !self.vals.is_empty() {
                        ins.push(self.vals[i as usize % self.vals.len()].name.clone());
                    }
                }
                let attrs = attrs
                    .iter()
                    .take(6)
                    .map(|a| {
                        let name = ATTR_NAMES[a.name as usize % ATTR_NAMES.len()];
                        match &a.value {
                            RawValue::Int(i) => attr_int(name, *i),
                            RawValue::Float(f) => attr_float(name, *f),
                            RawValue::Ints(v) => attr_ints(name, v.iter().take(8).copied().collect()),
                            RawValue::Floats(v) => pb::AttributeProto {
                                name: name.into(),
                                r#type: 6,
                                floats: v.iter().take(8).copied().collect(),
                                ..Default::default()
                            },
                            RawValue::Str(s) => attr_str(name, STRINGS[*s as usize % STRINGS.len()]),
                            RawValue::Tensor { dims, ints, data } => pb::AttributeProto {
                                name: name.into(),
                                r#type: 4,
                                t: Some(pb::TensorProto {
                                    dims: dims.iter().take(4).map(|&d| d as i64).collect(),
                                    data_type: if *ints { INT64 } else { FLOAT },
                                    int64_data: if *ints { data.iter().map(|&x| x as i64).collect() } else { vec![] },
                                    float_data: if *ints { vec![] } else { data.iter().map(|&x| x as f32).collect() },
                                    ..Default::default()
                                }),
                                ..Default::default()
                            },
                        }
                    })
                    .collect();
                // Unknown output shape: recorded as a non-float value so recipes do not build on it.
                let name = self.fresh("raw");
                self.nodes.push(pb::NodeProto {
                    input: ins,
                    output: vec![name.clone()],
                    name: format!("{name}_{op}"),
                    op_type: op.into(),
                    attribute: attrs,
                    ..Default::default()
                });
                self.vals.push(Val { name, shape: vec![], float: false });
            }
        }
    }
}

fn value_info(name: &str, elem_type: i32, dims: Option<Vec<pb::tensor_shape_proto::Dimension>>) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape: dims.map(|dim| pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Whether a recipe computes a continuous function (see [`Builder::smooth`]).
fn smooth(r: &Recipe) -> bool {
    match r {
        Recipe::Unary { op, .. } => !matches!(UNARY[*op as usize % UNARY.len()], "Floor" | "Ceil" | "Round" | "Sign"),
        Recipe::Binary { op, .. } => BINARY[*op as usize % BINARY.len()] != "Mod",
        Recipe::Where { .. } | Recipe::ArgMax { .. } | Recipe::Raw { .. } => false,
        _ => true,
    }
}

impl FuzzModel {
    /// The ONNX bytes and the compile settings this input stands for.
    pub fn build(&self) -> (Vec<u8>, Config) {
        self.build_with(false)
    }

    /// [`FuzzModel::build`] with only continuous recipes and fixed input dimensions (for
    /// the differential target).
    pub fn build_smooth(&self) -> (Vec<u8>, Config) {
        self.build_with(true)
    }

    fn build_with(&self, smooth: bool) -> (Vec<u8>, Config) {
        use pb::tensor_shape_proto::dimension::Value as Dim;
        let rank = 1 + self.input_dims.len().min(4).saturating_sub(1);
        let dims: Vec<usize> = (0..rank).map(|i| 1 + *self.input_dims.get(i).unwrap_or(&3) as usize % 6).collect();
        let mut b = Builder { smooth, vals: vec![], nodes: vec![], inits: vec![], n: 0 };
        b.vals.push(Val { name: "input".into(), shape: dims.clone(), float: true });
        for r in self.nodes.iter().take(12) {
            b.apply(r);
        }
        let mut config = Config::new().lang(if self.rust { Lang::Rust } else { Lang::C });
        let declared = dims
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let value = match self.symbolic {
                    Some((s, bind)) if !smooth && s as usize % rank == i => {
                        if bind {
                            config.input_shapes.insert("input".into(), dims.clone());
                        }
                        Some(Dim::DimParam("N".into()))
                    }
                    _ => Some(Dim::DimValue(d as i64)),
                };
                pb::tensor_shape_proto::Dimension { value, ..Default::default() }
            })
            .collect();
        let mut outputs = vec![];
        let last = b.vals.len();
        for k in 0..=(self.extra_outputs as usize % 3) {
            if let Some(v) = last.checked_sub(1 + k * (1 + self.extra_outputs as usize / 3))
                && !outputs.iter().any(|o: &pb::ValueInfoProto| o.name == b.vals[v].name)
            {
                outputs.push(value_info(&b.vals[v].name, 0, None));
            }
        }
        let opset = [13, 13, 13, 17, 11, 18, 7, 21][self.opset as usize % 8];
        let model = pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: opset }],
            graph: Some(pb::GraphProto {
                name: "fuzz".into(),
                node: b.nodes,
                initializer: b.inits,
                input: vec![value_info("input", FLOAT, Some(declared))],
                output: outputs,
                ..Default::default()
            }),
            ..Default::default()
        };
        (model.encode_to_vec(), config)
    }
}

/// Outcome of one differential run.
#[derive(Debug, Clone, PartialEq)]
pub enum Diff {
    /// Nothing to compare: the model does not import or compile (an error is fine), has
    /// non-float inputs, or the reference evaluator cannot run it.
    Skipped(String),
    /// Generated code and reference agree on every output.
    Agree { outputs: usize, values: usize },
}

/// Relative float tolerance: `|got - want| <= REL_TOL * max(1, max |want|)` per output.
pub const REL_TOL: f32 = 1e-4;

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Compares one output; `exact` for integer outputs (int8: within `lsb` steps).
fn compare(got: &TensorData, want: &TensorData, lsb: i64) -> Result<usize, String> {
    if got.dtype() != want.dtype() || got.len() != want.len() {
        return Err(format!("{:?}[{}] vs reference {:?}[{}]", got.dtype(), got.len(), want.dtype(), want.len()));
    }
    if let (Some(g), Some(w)) = (got.as_f32(), want.as_f32()) {
        let scale = w.iter().filter(|v| v.is_finite()).fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (&g, &w)) in g.iter().zip(w).enumerate() {
            let same = (g.is_nan() && w.is_nan()) || g == w;
            // NaN distances (an infinity against a finite value) are mismatches.
            let close = (g - w).abs() <= REL_TOL * scale;
            if !(same || close) {
                return Err(format!("element {i}: generated {g} vs reference {w} (tolerance {})", REL_TOL * scale));
            }
        }
        return Ok(g.len());
    }
    let (g, w) = (got.to_le_bytes(), want.to_le_bytes());
    if lsb == 0 || got.dtype() != modelless::ir::DType::I8 {
        if g != w {
            return Err(format!("{:?} output differs from the reference (exact comparison)", got.dtype()));
        }
    } else {
        for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
            if (a as i8 as i64 - b as i8 as i64).abs() > lsb {
                return Err(format!("int8 element {i}: generated {} vs reference {}", a as i8, b as i8));
            }
        }
    }
    Ok(got.len())
}

/// Differential check of one fuzz input: the model ([`FuzzModel::build_smooth`]) compiled to
/// C by the library, built with the host C compiler and run on `samples` random inputs
/// (seeded by `seed`), against the reference interpreter `modelless::interp::run`.
///
/// Float (`int8 == false`): the reference runs the imported, unoptimized graph, so the
/// passes are checked too; outputs agree within [`REL_TOL`] of the output's magnitude.
/// Int8 (`--int8`, calibrated on the same random inputs, int8 I/O): the reference runs the
/// quantized graph the C code was generated from, and int8 outputs must be identical
/// (within one step where float layers remain between int8 ones).
///
/// `Err` is a finding: a mismatch, or generated C that does not build or run.
pub fn differential(m: &FuzzModel, seed: u64, int8: bool, work: &Path) -> Result<Diff, String> {
    let (bytes, config) = m.build_smooth();
    let path = work.join("diff.onnx");
    let mut config = config.lang(Lang::C).name("diff");
    let opts = ImportOptions { input_shapes: config.input_shapes.clone(), ..Default::default() };
    let imported = match modelless::frontend::import_bytes(&bytes, &path, &opts) {
        Ok(g) => g,
        Err(e) => return Ok(Diff::Skipped(format!("import: {e}"))),
    };
    if imported.inputs.iter().any(|&v| imported.ty(v).dtype != modelless::ir::DType::F32) || imported.outputs.is_empty()
    {
        return Ok(Diff::Skipped("non-float inputs".into()));
    }
    let shapes: Vec<Vec<usize>> = imported.inputs.iter().map(|&v| imported.ty(v).shape.clone()).collect();
    let samples = 3;
    let mut rng = seed | 1;
    let float_inputs: Vec<Vec<Vec<f32>>> = (0..samples)
        .map(|_| {
            shapes
                .iter()
                .map(|s| {
                    let n: usize = s.iter().product();
                    (0..n).map(|_| ((xorshift(&mut rng) >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0).collect()
                })
                .collect()
        })
        .collect();
    if int8 {
        if shapes.len() != 1 {
            return Ok(Diff::Skipped("int8: one input only".into()));
        }
        let calib = work.join("calib.npy");
        let flat: Vec<f32> = float_inputs.iter().flat_map(|s| s[0].clone()).collect();
        let n: usize = shapes[0].iter().product();
        modelless::npy::write_f32(&calib, &[samples, n], &flat).map_err(|e| format!("writing calib: {e}"))?;
        let options = modelless::int8::Int8Options { io_int8: true, ..Default::default() };
        config.int8 = Some(Int8Config { options, calib });
    }
    let compiled = match config.compile_bytes(&bytes, &path) {
        Ok(c) => c,
        Err(e) => return Ok(Diff::Skipped(format!("compile: {e}"))),
    };
    let g = &compiled.graph;
    let reference_graph = if int8 { g } else { &imported };
    // Inputs as the compiled graph takes them (int8 I/O: random int8 codes).
    let inputs: Vec<Vec<TensorData>> = float_inputs
        .iter()
        .map(|sample| {
            g.inputs
                .iter()
                .zip(sample)
                .map(|(&v, x)| match g.ty(v).dtype {
                    modelless::ir::DType::I8 => {
                        TensorData::I8(x.iter().map(|&f| (f * 63.0).round().clamp(-128.0, 127.0) as i8).collect())
                    }
                    _ => TensorData::F32(x.clone()),
                })
                .collect()
        })
        .collect();
    let mut want = vec![];
    for sample in &inputs {
        match modelless::interp::run(reference_graph, sample) {
            Ok(o) => want.push(o),
            Err(e) => return Ok(Diff::Skipped(format!("reference: {e}"))),
        }
    }
    let sig = modelless::toolchain::IoSig::of(g);
    let dir = work.join("c");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let target = modelless::target::TargetDesc::host();
    let harness = modelless::toolchain::build_c(&dir, &compiled.name, &compiled.files, &sig, &target, &[])
        .map_err(|e| format!("generated C does not build: {e}"))?;
    let raw: Vec<Vec<Vec<u8>>> = inputs.iter().map(|s| s.iter().map(TensorData::to_le_bytes).collect()).collect();
    let got = harness.run_bytes(&raw).map_err(|e| format!("generated C does not run: {e}"))?;
    let float_inside = g.nodes.iter().any(|n| n.outputs.iter().any(|&o| g.ty(o).dtype == modelless::ir::DType::F32));
    let lsb = if int8 && float_inside { 1 } else { 0 };
    let mut values = 0;
    for (k, (outs, refs)) in got.iter().zip(&want).enumerate() {
        if outs.len() != refs.len() {
            return Err(format!("sample {k}: {} outputs vs reference {}", outs.len(), refs.len()));
        }
        for (i, ((bytes, r), &v)) in outs.iter().zip(refs).zip(&g.outputs).enumerate() {
            let got = TensorData::from_le_bytes(g.ty(v).dtype, bytes);
            values += compare(&got, r, lsb).map_err(|e| format!("sample {k} output {i}: {e}"))?;
        }
    }
    Ok(Diff::Agree { outputs: g.outputs.len(), values })
}
