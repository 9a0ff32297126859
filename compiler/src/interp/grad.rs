//! Reverse-mode input gradients of the float IR graph, for gradient attacks (FGSM) in the
//! audit.
//!
//! The forward pass is [`run_all`](super::run_all) (every intermediate value recorded); the
//! backward pass walks the nodes in reverse and applies each op's adjoint to the gradient of
//! its output. Only values that depend on the differentiated graph input (and are float)
//! receive gradients, so ops off that path (shape arithmetic, constant branches) need no
//! adjoint. An op on the path without one is an error naming it.
//!
//! Adjoints: Conv (grouped / depthwise, strides, pads, dilations, bias, fused activation),
//! Gemm, MatMul (batch broadcasting), their sparse forms (through the dense weight), Add / Sub / Mul / Div / Min / Max / Pow / PRelu with
//! broadcasting, the smooth activations (piecewise-constant ones such as Floor or Sign are
//! refused: their gradient is zero almost everywhere and would silently mask an attack),
//! max pooling (to the first maximum of each window, as the forward picks it) and average
//! pooling (divided by the forward's count), Softmax / LogSoftmax, BatchNorm, Reduce
//! (Sum, Mean, Max, Min, SumSquare, L2, LogSumExp), Reshape, and every pure data movement
//! op (Transpose, Concat, Pad, Slice / Expand / Tile, Gather, GatherElements, Where,
//! nearest Resize), whose adjoint is found by running the op on element indices instead of
//! values and scattering the gradient back along them.

use super::{Args, Fail, R, eval_node, float, movement, run_all, strides_of};
use crate::ir::{DType, Graph, Node, TensorData, TensorType, ValueId};
use crate::ops::broadcast::{broadcast_index_map, broadcast_strides};
use crate::ops::{Act, BinaryKind, MatMul, Op, Pad, PoolKind, ReduceKind, reduce_loops};

/// Cross-entropy of `softmax(logits)` against `label` and the gradient of `x` (graph input
/// 0, float) of it, for one sample. `inputs` holds one tensor per graph input.
///
/// The logits are the graph's output 0, except when that output is a Softmax or
/// LogSoftmax (possibly behind Reshape / Quantize / Dequantize / Requantize): then the
/// softmax's input is used ([`logits_value`]).
pub fn loss_and_input_grad(g: &Graph, inputs: &[TensorData], label: usize) -> Result<(f32, Vec<f32>), String> {
    let &x = g.inputs.first().ok_or("the graph has no input")?;
    let xt = g.values.get(x.0).ok_or("graph input 0 does not exist")?;
    if xt.ty.dtype != DType::F32 {
        return Err(format!("input gradients need a float input, input 0 (\"{}\") is {}", xt.name, xt.ty.dtype));
    }
    let dense = crate::passes::sparsify::densify(g);
    let g = dense.as_ref();
    let vals = run_all(g, inputs)?;
    let z = logits_value(g)?;
    let logits = value_f32(&vals, z).ok_or_else(|| format!("the logits %{} are not a computed float tensor", z.0))?;
    let (loss, dz) = cross_entropy(logits, label)?;
    let grad = backward(g, &vals, x, z, dz)?;
    Ok((loss, grad))
}

/// The value holding the logits: graph output 0, or the input of the Softmax / LogSoftmax /
/// QSoftmax that produces it (looking through Reshape, Quantize, Dequantize and Requantize
/// between the softmax and the output).
pub fn logits_value(g: &Graph) -> Result<ValueId, String> {
    let &out = g.outputs.first().ok_or("the graph has no output")?;
    let mut v = out;
    for _ in 0..=g.nodes.len() {
        let Some(node) = g.nodes.iter().rev().find(|n| n.outputs.contains(&v)) else { break };
        let Some(&input) = node.inputs.first() else { break };
        match node.op {
            Op::Softmax(_) | Op::QSoftmax(_) => return Ok(input),
            Op::Reshape(_) | Op::Quantize(_) | Op::Dequantize(_) | Op::Requantize(_) => v = input,
            _ => break,
        }
    }
    Ok(out)
}

/// `log Σ exp(z) − z[label]` and its gradient `softmax(z) − onehot(label)` (computed in f64).
pub fn cross_entropy(logits: &[f32], label: usize) -> Result<(f32, Vec<f32>), String> {
    if label >= logits.len() {
        return Err(format!("label {label} is out of range for {} logits", logits.len()));
    }
    let mx = logits.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let exps: Vec<f64> = logits.iter().map(|&v| (v as f64 - mx).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let loss = mx + sum.ln() - logits[label] as f64;
    let grad = exps.iter().enumerate().map(|(i, e)| (e / sum - (i == label) as u8 as f64) as f32).collect();
    Ok((loss as f32, grad))
}

fn value_f32(vals: &[Option<TensorData>], v: ValueId) -> Option<&[f32]> {
    vals.get(v.0).and_then(Option::as_ref).and_then(TensorData::as_f32)
}

/// Back-propagates `seed` (the gradient of value `from`) to value `wrt`.
fn backward(
    g: &Graph,
    vals: &[Option<TensorData>],
    wrt: ValueId,
    from: ValueId,
    seed: Vec<f32>,
) -> Result<Vec<f32>, String> {
    let n_wrt = g.ty(wrt).len();
    // Float values that depend on `wrt`.
    let mut needs = vec![false; g.values.len()];
    needs[wrt.0] = true;
    for node in &g.nodes {
        if node.inputs.iter().any(|i| needs.get(i.0).copied().unwrap_or(false)) {
            for o in &node.outputs {
                if let Some(slot) = needs.get_mut(o.0) {
                    *slot = g.ty(*o).dtype == DType::F32;
                }
            }
        }
    }
    if !needs.get(from.0).copied().unwrap_or(false) {
        return Ok(vec![0.0; n_wrt]);
    }
    let mut grads: Vec<Option<Vec<f32>>> = vec![None; g.values.len()];
    grads[from.0] = Some(seed);
    for node in g.nodes.iter().rev() {
        let Some(&out) = node.outputs.first() else { continue };
        let Some(gy) = grads.get_mut(out.0).and_then(Option::take) else { continue };
        if !node.inputs.iter().any(|i| needs[i.0]) {
            continue;
        }
        let ctx = Ctx { g, node, vals, needs: &needs };
        let contribs = node_grad(&ctx, gy).map_err(|e| match e {
            Fail::Unsupported(what) => format!("no gradient for {what} (node \"{}\")", node.name),
            Fail::Error(e) => format!("gradient of node \"{}\" ({}): {e}", node.name, node.op.name()),
        })?;
        for (i, d) in contribs {
            let Some(&id) = node.inputs.get(i) else { continue };
            if !needs[id.0] {
                continue;
            }
            if d.len() != g.ty(id).len() {
                return Err(format!(
                    "gradient of node \"{}\": input {i} gradient has {} elements, the input {}",
                    node.name,
                    d.len(),
                    g.ty(id).len()
                ));
            }
            match &mut grads[id.0] {
                Some(acc) => acc.iter_mut().zip(&d).for_each(|(a, b)| *a += b),
                slot => *slot = Some(d),
            }
        }
    }
    Ok(grads[wrt.0].take().unwrap_or_else(|| vec![0.0; n_wrt]))
}

/// One node and the forward values.
struct Ctx<'a> {
    g: &'a Graph,
    node: &'a Node,
    vals: &'a [Option<TensorData>],
    needs: &'a [bool],
}

impl<'a> Ctx<'a> {
    fn id(&self, i: usize) -> Result<ValueId, String> {
        self.node.inputs.get(i).copied().ok_or_else(|| format!("missing input {i}"))
    }

    fn x(&self, i: usize) -> Result<&'a [f32], String> {
        let id = self.id(i)?;
        value_f32(self.vals, id).ok_or_else(|| format!("input {i} is not a computed f32 tensor"))
    }

    fn shape(&self, i: usize) -> Result<&'a [usize], String> {
        Ok(&self.g.ty(self.id(i)?).shape)
    }

    fn out_ty(&self) -> Result<&'a TensorType, String> {
        let &o = self.node.outputs.first().ok_or("the node has no output")?;
        Ok(self.g.ty(o))
    }

    fn y(&self) -> Result<&'a [f32], String> {
        let &o = self.node.outputs.first().ok_or("the node has no output")?;
        value_f32(self.vals, o).ok_or_else(|| "the output is not a computed f32 tensor".to_string())
    }

    /// Whether input `i` needs a gradient.
    fn wants(&self, i: usize) -> bool {
        self.node.inputs.get(i).is_some_and(|id| self.needs.get(id.0).copied().unwrap_or(false))
    }

    /// A zeroed gradient buffer for input `i` when it needs one.
    fn buf(&self, i: usize) -> Result<Option<Vec<f32>>, String> {
        Ok(if self.wants(i) { Some(vec![0.0; self.g.ty(self.id(i)?).len()]) } else { None })
    }
}

type Grads = Vec<(usize, Vec<f32>)>;

fn collect(bufs: impl IntoIterator<Item = (usize, Option<Vec<f32>>)>) -> Grads {
    bufs.into_iter().filter_map(|(i, b)| b.map(|b| (i, b))).collect()
}

fn node_grad(c: &Ctx, gy: Vec<f32>) -> R<Grads> {
    if gy.len() != c.out_ty()?.len() {
        return Err(format!("output gradient has {} elements, the output {}", gy.len(), c.out_ty()?.len()).into());
    }
    let gz = match c.node.op.fused_act() {
        Some(Some(act)) => fused_act_grad(c, *act, gy)?,
        _ => gy,
    };
    match &c.node.op {
        Op::Conv(cv) => conv(c, cv, &gz),
        Op::Gemm(gm) => gemm(c, gm, &gz),
        Op::MatMul(_) => matmul(c, &gz),
        Op::Binary(b) => binary(c, b.kind, &gz),
        Op::Activation(act) => {
            let x = c.x(0)?;
            Ok(vec![(0, act_grad(*act, x, &gz)?)])
        }
        Op::Softmax(s) => {
            let y = c.y()?;
            let (outer, len, inner) = s.split(&c.out_ty()?.shape);
            let mut dx = vec![0.0f32; y.len()];
            for o in 0..outer {
                for j in 0..inner {
                    let at = |i: usize| o * len * inner + i * inner + j;
                    if s.log {
                        let sum: f32 = (0..len).map(|i| gz[at(i)]).sum();
                        (0..len).for_each(|i| dx[at(i)] = gz[at(i)] - y[at(i)].exp() * sum);
                    } else {
                        let dot: f32 = (0..len).map(|i| gz[at(i)] * y[at(i)]).sum();
                        (0..len).for_each(|i| dx[at(i)] = y[at(i)] * (gz[at(i)] - dot));
                    }
                }
            }
            Ok(vec![(0, dx)])
        }
        Op::Pool(p) => {
            let x = c.x(0)?;
            let [_, _, h, w] = float::dims4(c.shape(0)?)?;
            let [nb, ch, oh, ow] = float::dims4(&c.out_ty()?.shape)?;
            let mut dx = vec![0.0f32; x.len()];
            for plane in 0..nb * ch {
                let base = plane * h * w;
                let xc = x.get(base..base + h * w).ok_or("pool input too short")?;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let gv = gz[(plane * oh + oy) * ow + ox];
                        let (taps, padded) = float::pool_window(p, oy, ox, h, w);
                        match p.kind {
                            PoolKind::Max => {
                                let mut best: Option<usize> = None;
                                let mut m = f32::NEG_INFINITY;
                                for &t in &taps {
                                    if xc[t] > m {
                                        m = xc[t];
                                        best = Some(t);
                                    }
                                }
                                if let Some(t) = best {
                                    dx[base + t] += gv;
                                }
                            }
                            PoolKind::Avg => {
                                let count = if p.count_include_pad { padded } else { taps.len() };
                                if count > 0 {
                                    taps.iter().for_each(|&t| dx[base + t] += gv / count as f32);
                                }
                            }
                        }
                    }
                }
            }
            Ok(vec![(0, dx)])
        }
        Op::BatchNorm(b) => {
            if (1..5).any(|i| c.wants(i)) {
                return Err(Fail::Unsupported("BatchNorm parameters".into()));
            }
            let (m, _) = b.affine(c.x(1)?, c.x(2)?, c.x(3)?, c.x(4)?);
            let shape = c.shape(0)?;
            let ch = shape.get(1).copied().ok_or("input rank")?;
            let inner: usize = shape[2..].iter().product::<usize>().max(1);
            Ok(vec![(0, gz.iter().enumerate().map(|(i, &g)| g * m[(i / inner) % ch]).collect())])
        }
        Op::Reduce(r) => reduce(c, r.kind, &r.axes, &gz),
        Op::Reshape(_) => Ok(vec![(0, gz)]),
        Op::Cast(_) if c.g.ty(c.id(0)?).dtype == DType::F32 => Ok(vec![(0, gz)]),
        Op::Transpose(_)
        | Op::Concat(_)
        | Op::Pad(_)
        | Op::Strided(_)
        | Op::Gather(_)
        | Op::GatherElements(_)
        | Op::Where => scatter(c, &gz),
        Op::Resize(r) if r.interp_axes().is_empty() && !r.extrapolates() => scatter(c, &gz),
        Op::Resize(_) => Err(Fail::Unsupported("interpolating or extrapolating Resize".into())),
        op => Err(Fail::Unsupported(op.name().into())),
    }
}

/// The gradient through a fused activation: from the output where that is exact (Relu,
/// Clip, LeakyRelu with alpha > 0, Sigmoid, Tanh), otherwise from the pre-activation value
/// recomputed by evaluating the node without its activation.
fn fused_act_grad(c: &Ctx, act: Act, gy: Vec<f32>) -> R<Vec<f32>> {
    let y = c.y()?;
    let from_y: Option<fn(Act, f32) -> f32> = match act {
        Act::Relu => Some(|_, y| (y > 0.0) as u8 as f32),
        Act::Clip { .. } => Some(|a, y| match a {
            Act::Clip { min, max } => (y > min && y < max) as u8 as f32,
            _ => 0.0,
        }),
        Act::LeakyRelu { alpha } if alpha > 0.0 => Some(|a, y| match a {
            Act::LeakyRelu { alpha } if y < 0.0 => alpha,
            _ => 1.0,
        }),
        Act::Sigmoid => Some(|_, y| y * (1.0 - y)),
        Act::Tanh => Some(|_, y| 1.0 - y * y),
        _ => None,
    };
    if let Some(d) = from_y {
        return Ok(y.iter().zip(&gy).map(|(&y, &g)| g * d(act, y)).collect());
    }
    let mut bare = c.node.clone();
    if let Some(a) = bare.op.fused_act_mut() {
        *a = None;
    }
    let z = eval_node(c.g, &bare, c.vals)?;
    let z = z.as_f32().ok_or("pre-activation is not f32")?;
    act_grad(act, z, &gy)
}

/// `gy · act'(x)` elementwise.
fn act_grad(act: Act, x: &[f32], gy: &[f32]) -> R<Vec<f32>> {
    if act_deriv(act, 0.5).is_none() {
        return Err(Fail::Unsupported(act.name().into()));
    }
    Ok(x.iter().zip(gy).map(|(&x, &g)| g * act_deriv(act, x).unwrap_or(0.0)).collect())
}

/// `d act(x) / dx` (`None` for functions without a useful gradient).
fn act_deriv(act: Act, x: f32) -> Option<f32> {
    use std::f32::consts::PI;
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    let step = |b: bool| b as u8 as f32;
    Some(match act {
        Act::Relu => step(x > 0.0),
        Act::Clip { min, max } => step(x > min && x < max),
        Act::LeakyRelu { alpha } => {
            if x >= 0.0 {
                1.0
            } else {
                alpha
            }
        }
        Act::Sigmoid => sigmoid(x) * (1.0 - sigmoid(x)),
        Act::Tanh => 1.0 - x.tanh() * x.tanh(),
        Act::Abs => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        Act::Neg => -1.0,
        Act::Exp => x.exp(),
        Act::Log => 1.0 / x,
        Act::Sqrt => 0.5 / x.sqrt(),
        Act::Reciprocal => -1.0 / (x * x),
        Act::Erf => 2.0 / PI.sqrt() * (-x * x).exp(),
        Act::Softplus => sigmoid(x),
        Act::Softsign => 1.0 / ((1.0 + x.abs()) * (1.0 + x.abs())),
        Act::Elu { alpha } => {
            if x >= 0.0 {
                1.0
            } else {
                alpha * x.exp()
            }
        }
        Act::Selu { alpha, gamma } => gamma * if x > 0.0 { 1.0 } else { alpha * x.exp() },
        Act::Celu { alpha } => {
            if x > 0.0 {
                1.0
            } else {
                (x / alpha).exp()
            }
        }
        Act::HardSigmoid { alpha, beta } => alpha * step(alpha * x + beta > 0.0 && alpha * x + beta < 1.0),
        Act::HardSwish => {
            if x < -3.0 {
                0.0
            } else if x > 3.0 {
                1.0
            } else {
                x / 3.0 + 0.5
            }
        }
        Act::Gelu => {
            let cdf = 0.5 * (1.0 + Act::Erf.apply(x / std::f32::consts::SQRT_2));
            cdf + x * (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
        }
        Act::GeluTanh => {
            let k = (2.0 / PI).sqrt();
            let t = (k * (x + 0.044715 * x * x * x)).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x)
        }
        Act::ThresholdedRelu { alpha } => step(x > alpha),
        Act::Mish => {
            let t = (x.exp() + 1.0).ln().tanh();
            t + x * (1.0 - t * t) * sigmoid(x)
        }
        Act::Sin => x.cos(),
        Act::Cos => -x.sin(),
        Act::Tan => 1.0 / (x.cos() * x.cos()),
        Act::Asin => 1.0 / (1.0 - x * x).sqrt(),
        Act::Acos => -1.0 / (1.0 - x * x).sqrt(),
        Act::Atan => 1.0 / (1.0 + x * x),
        Act::Sinh => x.cosh(),
        Act::Cosh => x.sinh(),
        Act::Asinh => 1.0 / (x * x + 1.0).sqrt(),
        Act::Acosh => 1.0 / (x * x - 1.0).sqrt(),
        Act::Atanh => 1.0 / (1.0 - x * x),
        Act::Floor | Act::Ceil | Act::Round | Act::Sign => return None,
    })
}

fn conv(c: &Ctx, cv: &crate::ops::Conv, gz: &[f32]) -> R<Grads> {
    let (x, w) = (c.x(0)?, c.x(1)?);
    let [nb, ci, h, wd] = float::dims4(c.shape(0)?)?;
    let [m, cg, kh, kw] = float::dims4(c.shape(1)?)?;
    let [_, _, oh, ow] = float::dims4(&c.out_ty()?.shape)?;
    if x.len() != nb * ci * h * wd || w.len() != m * cg * kh * kw || gz.len() != nb * m * oh * ow {
        return Err("inconsistent Conv shapes".into());
    }
    let mg = (m / cv.group.max(1)).max(1);
    let ([sh, sw], [dh, dw]) = (cv.strides, cv.dilations);
    let (mut dx, mut dwt, mut db) = (c.buf(0)?, c.buf(1)?, c.buf(2)?);
    // Input rows / columns read by each (output position, kernel tap).
    let rows: Vec<Vec<(usize, usize)>> = (0..kh)
        .map(|ky| (0..oh).filter_map(|oy| float::tap(oy, ky, sh, dh, cv.pads[0], h).map(|iy| (oy, iy))).collect())
        .collect();
    let cols: Vec<Vec<(usize, usize)>> = (0..kw)
        .map(|kx| (0..ow).filter_map(|ox| float::tap(ox, kx, sw, dw, cv.pads[1], wd).map(|ix| (ox, ix))).collect())
        .collect();
    for n in 0..nb {
        for oc in 0..m {
            let grp = oc / mg;
            let gp = &gz[(n * m + oc) * oh * ow..][..oh * ow];
            if let Some(db) = db.as_mut() {
                db[oc] += gp.iter().sum::<f32>();
            }
            for ic in 0..cg {
                let xo = (n * ci + grp * cg + ic) * h * wd;
                for (ky, rows) in rows.iter().enumerate() {
                    for (kx, cols) in cols.iter().enumerate() {
                        let wi = ((oc * cg + ic) * kh + ky) * kw + kx;
                        let wv = w[wi];
                        let mut wacc = 0.0f32;
                        for &(oy, iy) in rows {
                            for &(ox, ix) in cols {
                                let gv = gp[oy * ow + ox];
                                let xi = xo + iy * wd + ix;
                                if let Some(dx) = dx.as_mut() {
                                    dx[xi] += wv * gv;
                                }
                                wacc += x[xi] * gv;
                            }
                        }
                        if let Some(dwt) = dwt.as_mut() {
                            dwt[wi] += wacc;
                        }
                    }
                }
            }
        }
    }
    Ok(collect([(0, dx), (1, dwt), (2, db)]))
}

fn gemm(c: &Ctx, gm: &crate::ops::Gemm, gz: &[f32]) -> R<Grads> {
    let (x0, x1) = (c.x(0)?, c.x(1)?);
    let (ta, tb) = (c.g.ty(c.id(0)?), c.g.ty(c.id(1)?));
    let (m, k, n) = gm.dims(ta, tb);
    let sa = strides_of(&ta.shape);
    let sb = strides_of(&tb.shape);
    if sa.len() != 2 || sb.len() != 2 || gz.len() != m * n {
        return Err("Gemm operands must be matrices".into());
    }
    let (a_i, a_k) = if gm.trans_a { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
    let (b_k, b_j) = if gm.trans_b { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
    let (mut da, mut db) = (c.buf(0)?, c.buf(1)?);
    let mut dc = if c.node.inputs.len() > 2 && gm.beta != 0.0 { c.buf(2)? } else { None };
    let cst = if dc.is_some() { broadcast_strides(c.shape(2)?, &[m, n]) } else { vec![0, 0] };
    for i in 0..m {
        for j in 0..n {
            let gv = gz[i * n + j];
            if gv == 0.0 {
                continue;
            }
            let ga = gm.alpha * gv;
            for kk in 0..k {
                let (ai, bi) = (i * a_i + kk * a_k, kk * b_k + j * b_j);
                if let Some(da) = da.as_mut() {
                    da[ai] += ga * x1[bi];
                }
                if let Some(db) = db.as_mut() {
                    db[bi] += ga * x0[ai];
                }
            }
            if let Some(dc) = dc.as_mut() {
                dc[i * cst[0] + j * cst[1]] += gm.beta * gv;
            }
        }
    }
    Ok(collect([(0, da), (1, db), (2, dc)]))
}

fn matmul(c: &Ctx, gz: &[f32]) -> R<Grads> {
    let (x0, x1) = (c.x(0)?, c.x(1)?);
    let d = MatMul::dims(c.g.ty(c.id(0)?), c.g.ty(c.id(1)?))?;
    let a_off = float::batch_offsets(&d.a_batch, &d.batch, d.m * d.k);
    let b_off = float::batch_offsets(&d.b_batch, &d.batch, d.k * d.n);
    if gz.len() != a_off.len() * d.m * d.n {
        return Err("inconsistent MatMul shapes".into());
    }
    let (mut da, mut db) = (c.buf(0)?, c.buf(1)?);
    for (bi, (ao, bo)) in a_off.iter().zip(&b_off).enumerate() {
        let go = bi * d.m * d.n;
        for i in 0..d.m {
            for j in 0..d.n {
                let gv = gz[go + i * d.n + j];
                for k in 0..d.k {
                    let (ai, bidx) = (ao + i * d.k + k, bo + k * d.n + j);
                    if let Some(da) = da.as_mut() {
                        da[ai] += gv * x1[bidx];
                    }
                    if let Some(db) = db.as_mut() {
                        db[bidx] += gv * x0[ai];
                    }
                }
            }
        }
    }
    Ok(collect([(0, da), (1, db)]))
}

fn binary(c: &Ctx, kind: BinaryKind, gz: &[f32]) -> R<Grads> {
    let (x0, x1) = (c.x(0)?, c.x(1)?);
    let out = &c.out_ty()?.shape;
    let ma = broadcast_index_map(c.shape(0)?, out);
    let mb = broadcast_index_map(c.shape(1)?, out);
    let partials: fn(f32, f32) -> (f32, f32) = match kind {
        BinaryKind::Add => |_, _| (1.0, 1.0),
        BinaryKind::Sub => |_, _| (1.0, -1.0),
        BinaryKind::Mul => |a, b| (b, a),
        BinaryKind::Div => |a, b| (1.0 / b, -a / (b * b)),
        BinaryKind::Min => |a, b| if a <= b { (1.0, 0.0) } else { (0.0, 1.0) },
        BinaryKind::Max => |a, b| if a >= b { (1.0, 0.0) } else { (0.0, 1.0) },
        BinaryKind::Pow => |a, b| (b * a.powf(b - 1.0), if a > 0.0 { a.powf(b) * a.ln() } else { 0.0 }),
        BinaryKind::PRelu => |a, b| if a < 0.0 { (b, a) } else { (1.0, 0.0) },
        k => return Err(Fail::Unsupported(k.name().into())),
    };
    let (mut da, mut db) = (c.buf(0)?, c.buf(1)?);
    for ((&g, &i), &j) in gz.iter().zip(&ma).zip(&mb) {
        let (pa, pb) = partials(x0[i], x1[j]);
        if let Some(da) = da.as_mut() {
            da[i] += g * pa;
        }
        if let Some(db) = db.as_mut() {
            db[j] += g * pb;
        }
    }
    Ok(collect([(0, da), (1, db)]))
}

/// Flat offsets of every index of the given `(extent, stride)` loops, row-major.
fn loop_offsets(loops: &[(usize, usize)]) -> Vec<usize> {
    let (dims, strides): (Vec<usize>, Vec<usize>) = loops.iter().copied().unzip();
    let mut res = vec![];
    super::for_each_index(&dims, |i| res.push(super::offset(i, &strides)));
    res
}

fn reduce(c: &Ctx, kind: ReduceKind, axes: &[usize], gz: &[f32]) -> R<Grads> {
    let x = c.x(0)?;
    let y = c.y()?;
    let lp = reduce_loops(c.shape(0)?, axes);
    let (kept, red) = (loop_offsets(&lp.kept), loop_offsets(&lp.reduced));
    if kept.len() != gz.len() || y.len() != gz.len() {
        return Err("inconsistent Reduce shapes".into());
    }
    let mut dx = vec![0.0f32; x.len()];
    for ((&base, &g), &yv) in kept.iter().zip(gz).zip(y) {
        match kind {
            ReduceKind::Sum => red.iter().for_each(|&o| dx[base + o] += g),
            ReduceKind::Mean => red.iter().for_each(|&o| dx[base + o] += g / lp.count.max(1) as f32),
            ReduceKind::SumSquare => red.iter().for_each(|&o| dx[base + o] += 2.0 * g * x[base + o]),
            ReduceKind::L2 if yv > 0.0 => red.iter().for_each(|&o| dx[base + o] += g * x[base + o] / yv),
            ReduceKind::L2 => {}
            ReduceKind::LogSumExp => red.iter().for_each(|&o| dx[base + o] += g * (x[base + o] - yv).exp()),
            ReduceKind::Max | ReduceKind::Min => {
                // The first extreme element, as the forward fold picks it.
                if let Some(&o) = red.iter().find(|&&o| x[base + o] == yv) {
                    dx[base + o] += g;
                }
            }
            k => return Err(Fail::Unsupported(k.name().into())),
        }
    }
    Ok(vec![(0, dx)])
}

/// Adjoint of a data movement op: the op is run on the element indices of its float inputs
/// (numbered consecutively across inputs, as int64) instead of their values, so each output
/// element names the input element it copies (or −1 for a fill value), and the gradient is
/// scattered back along those indices.
fn scatter(c: &Ctx, gz: &[f32]) -> R<Grads> {
    let mut tys = Vec::with_capacity(c.node.inputs.len());
    let mut data = Vec::with_capacity(c.node.inputs.len());
    let mut traced: Vec<(usize, i64, usize)> = vec![]; // (input, first index, length)
    let mut next = 0i64;
    for (i, &id) in c.node.inputs.iter().enumerate() {
        let ty = c.g.ty(id);
        let d = c.vals.get(id.0).and_then(Option::as_ref).ok_or_else(|| format!("input {i} is not computed"))?;
        if d.dtype() == DType::F32 {
            let n = d.len();
            traced.push((i, next, n));
            tys.push(TensorType::new(DType::I64, ty.shape.clone()));
            data.push(TensorData::I64((next..next + n as i64).collect()));
            next += n as i64;
        } else {
            tys.push(ty.clone());
            data.push(d.clone());
        }
    }
    let out = TensorType::new(DType::I64, c.out_ty()?.shape.clone());
    let a = Args { tys: tys.iter().collect(), data: data.iter().collect(), out: &out };
    let src = match &c.node.op {
        Op::Transpose(t) => movement::transpose(t, &a)?,
        Op::Concat(cc) => movement::concat(cc, &a)?,
        Op::Pad(p) => movement::pad(&Pad { value: -1.0, ..p.clone() }, &a)?,
        Op::Strided(s) => movement::strided(s, &a)?,
        Op::Gather(gt) => movement::gather(gt, &a)?,
        Op::GatherElements(gt) => movement::gather_elements(gt, &a)?,
        Op::Where => movement::select(&a)?,
        Op::Resize(r) => float::resize(r, &a)?,
        op => return Err(Fail::Unsupported(op.name().into())),
    };
    let TensorData::I64(src) = src else { return Err("index tracing did not give indices".into()) };
    if src.len() != gz.len() {
        return Err("index tracing gave the wrong number of elements".into());
    }
    let mut bufs: Vec<Option<Vec<f32>>> = traced.iter().map(|&(i, _, n)| c.wants(i).then(|| vec![0.0; n])).collect();
    for (&s, &g) in src.iter().zip(gz) {
        if s < 0 {
            continue;
        }
        let Some(t) = traced.iter().position(|&(_, first, n)| s >= first && s < first + n as i64) else {
            continue;
        };
        if let Some(b) = bufs[t].as_mut() {
            b[(s - traced[t].1) as usize] += g;
        }
    }
    Ok(collect(traced.iter().map(|t| t.0).zip(bufs)))
}
