//! Quantize a float graph in QDQ form: weights become int8 constants behind
//! DequantizeLinear, activations get QuantizeLinear → DequantizeLinear pairs with their
//! calibrated parameters. The `lower_qdq` pass then turns each pattern into integer ops,
//! exactly as for a model that arrives in QDQ form.

use super::Rounding;
use super::preserve::Hessian;
use crate::ir::{DType, Graph, Node, Quant, TensorData, TensorType, ValueId};
use crate::ops::{Dequantize, Op, PoolKind, Quantize};
use std::collections::BTreeMap;

/// One quantized activation: the float value and the int8 value that carries it.
#[derive(Debug, Clone)]
pub struct QuantPoint {
    /// The producing node's name (the graph input's name for inputs).
    pub node: String,
    pub float: ValueId,
    pub int: ValueId,
    pub scale: f32,
    pub zero_point: i32,
}

/// Values that get a QuantizeLinear → DequantizeLinear pair: float graph inputs and the
/// float outputs of every node that computes (data movement and max pooling pass their
/// input's parameters through instead).
pub fn quant_points(g: &Graph) -> Vec<ValueId> {
    let mut pts: Vec<ValueId> = g.inputs.iter().copied().filter(|&v| g.ty(v).dtype == DType::F32).collect();
    for n in &g.nodes {
        let moves = match &n.op {
            Op::Reshape(_) | Op::Transpose(_) | Op::Strided(_) => true,
            Op::Pool(p) => p.kind == PoolKind::Max,
            Op::Quantize(_) | Op::Dequantize(_) => true,
            _ => false,
        };
        if !moves && g.ty(n.outputs[0]).dtype == DType::F32 {
            pts.push(n.outputs[0]);
        }
    }
    pts
}

/// Symmetric per-output-channel int8 weights (`[-127, 127]`, scale = absmax/127): the
/// constant `w` of shape `shape` with channels along `axis`.
/// `min_scale[c]` (when given) is a floor on channel `c`'s scale. `rounding` chooses how
/// `w / scale` becomes an integer (the audit's rounding variants; `Preserve` rounds to
/// nearest here and is refined by [`super::preserve`]).
pub fn quantize_weights(
    w: &[f32],
    shape: &[usize],
    axis: usize,
    min_scale: Option<&[f32]>,
    rounding: Rounding,
) -> (Vec<i8>, Quant) {
    let chans = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut absmax = vec![0.0f32; chans];
    for (i, &x) in w.iter().enumerate() {
        let c = (i / inner) % chans;
        absmax[c] = absmax[c].max(x.abs());
    }
    if rounding == Rounding::PerTensor {
        let m = absmax.iter().fold(0.0f32, |a, &b| a.max(b));
        absmax.iter_mut().for_each(|a| *a = m);
    }
    let scale: Vec<f32> = absmax
        .iter()
        .enumerate()
        .map(|(c, &m)| {
            let floor = min_scale.and_then(|f| f.get(c)).copied().unwrap_or(0.0);
            let s = if m > 0.0 { m / 127.0 } else { 1.0 };
            s.max(floor)
        })
        .collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let s = scale[(i / inner) % chans];
            match rounding {
                Rounding::Floor => (x / s).floor().clamp(-127.0, 127.0) as i8,
                Rounding::Ceil => (x / s).ceil().clamp(-127.0, 127.0) as i8,
                _ => modelless_rt::quantize(x, s, 0, -127, 127) as i8,
            }
        })
        .collect();
    (q, Quant { scale, zero_point: vec![0; chans], axis: Some(axis) })
}

/// The output-channel axis of a node's constant weight (input 1), if it has int8 kernels.
pub(crate) fn weight_axis(g: &Graph, n: &Node) -> Option<usize> {
    let w = *n.inputs.get(1)?;
    if !matches!(g.data(w), Some(TensorData::F32(_))) {
        return None;
    }
    match &n.op {
        Op::Conv(_) => Some(0),
        Op::Gemm(gm) if g.ty(w).shape.len() == 2 => Some(if gm.trans_b { 0 } else { 1 }),
        Op::MatMul(_) if g.ty(w).shape.len() == 2 => Some(1),
        _ => None,
    }
}

/// The scale of the activation feeding `v`: its own quantization point, or the one data
/// movement ops pass through.
fn input_scale(g: &Graph, mut v: ValueId, points: &[ValueId], params: &[(f32, i32)]) -> Option<f32> {
    loop {
        if let Some(k) = points.iter().position(|&p| p == v) {
            return Some(params[k].0);
        }
        let n = &g.nodes[g.producer(v)?];
        match &n.op {
            Op::Reshape(_) | Op::Transpose(_) | Op::Strided(_) => v = n.inputs[0],
            Op::Pool(p) if p.kind == PoolKind::Max => v = n.inputs[0],
            _ => return None,
        }
    }
}

/// Per-channel floors on the weight scale of `n` so that its int32 bias
/// `round(b / (s_x · s_w))` keeps 2 bits of headroom (channels with tiny weights and a
/// large bias would otherwise overflow it).
fn bias_floor(g: &Graph, n: &Node, points: &[ValueId], params: &[(f32, i32)]) -> Option<Vec<f32>> {
    let b = g.data(*n.inputs.get(2)?)?.as_f32()?;
    let sx = input_scale(g, n.inputs[0], points, params)?;
    if let Op::Gemm(gm) = &n.op
        && gm.beta != 1.0
    {
        return None;
    }
    Some(b.iter().map(|&b| b.abs() / (sx * (1u32 << 29) as f32)).collect())
}

/// Rewrites `float` (optimized) into QDQ form. `params[i]` are the `(scale, zero_point)` of
/// `points[i]`; nodes named in `keep_float` keep float weights. With `io_int8` the graph
/// inputs and outputs become the int8 tensors themselves.
#[allow(clippy::too_many_arguments)]
pub fn insert_qdq(
    float: &Graph,
    points: &[ValueId],
    params: &[(f32, i32)],
    keep_float: &[String],
    io_int8: bool,
    rounding: Rounding,
    hessians: &BTreeMap<String, Hessian>,
) -> (Graph, Vec<QuantPoint>) {
    let mut g = float.clone();
    // Weights first, so the activation pass below sees the final node list.
    let mut i = 0;
    while i < g.nodes.len() {
        let n = g.nodes[i].clone();
        if let Some(axis) = weight_axis(&g, &n)
            && !keep_float.contains(&n.name)
        {
            let w = n.inputs[1];
            let shape = g.ty(w).shape.clone();
            let data = g.data(w).and_then(|d| d.as_f32()).unwrap_or_default().to_vec();
            let floor = bias_floor(&g, &n, points, params);
            let (mut q, quant) = quantize_weights(&data, &shape, axis, floor.as_deref(), rounding);
            if let Some(h) = hessians.get(&n.name) {
                preserve_layer(&n, &g, &data, &shape, axis, &quant, h, &mut q);
            }
            let wq = g.add_const(
                format!("{}/weight_q", n.name),
                TensorType::new(DType::I8, shape.clone()),
                TensorData::I8(q),
            );
            g.values[wq.0].ty.quant = Some(quant.clone());
            let wd = g.add_value(format!("{}/weight_dq", n.name), TensorType::f32(shape));
            g.nodes[i].inputs[1] = wd;
            g.nodes.insert(
                i,
                Node {
                    name: format!("{}/weight_dequantize", n.name),
                    onnx_op: "DequantizeLinear".into(),
                    op: Op::Dequantize(Dequantize { q: quant, block: None }),
                    inputs: vec![wq],
                    outputs: vec![wd],
                },
            );
            i += 1;
        }
        i += 1;
    }
    let mut out = vec![];
    for (&v, &(scale, zp)) in points.iter().zip(params) {
        let quant = Quant { scale: vec![scale], zero_point: vec![zp], axis: None };
        let shape = g.ty(v).shape.clone();
        let name = g.value(v).name.clone();
        let mut qt = TensorType::new(DType::I8, shape.clone());
        qt.quant = Some(quant.clone());
        let qv = g.add_value(format!("{name}/q"), qt);
        let dv = g.add_value(format!("{name}/dq"), TensorType::f32(shape));
        g.replace_uses(v, dv);
        let at = g.producer(v).map_or(0, |p| p + 1);
        let producer = g.producer(v).map_or_else(|| name.clone(), |p| g.nodes[p].name.clone());
        let dq = Node {
            name: format!("{name}/dequantize"),
            onnx_op: "DequantizeLinear".into(),
            op: Op::Dequantize(Dequantize { q: quant.clone(), block: None }),
            inputs: vec![qv],
            outputs: vec![dv],
        };
        let input_k = g.inputs.iter().position(|&x| x == v);
        match input_k {
            Some(k) if io_int8 => {
                g.inputs[k] = qv;
                g.nodes.insert(0, dq);
            }
            _ => {
                let q = Node {
                    name: format!("{name}/quantize"),
                    onnx_op: "QuantizeLinear".into(),
                    op: Op::Quantize(Quantize { q: quant, to: DType::I8, block: None }),
                    inputs: vec![v],
                    outputs: vec![qv],
                };
                g.nodes.insert(at, dq);
                g.nodes.insert(at, q);
            }
        }
        if io_int8 {
            for o in &mut g.outputs {
                if *o == dv {
                    *o = qv;
                }
            }
        }
        out.push(QuantPoint { node: producer, float: v, int: qv, scale, zero_point: zp });
    }
    (g, out)
}

/// Applies [`super::preserve::flip_channel`] to every output channel of a layer.
#[allow(clippy::too_many_arguments)]
fn preserve_layer(
    n: &Node,
    g: &Graph,
    w: &[f32],
    shape: &[usize],
    axis: usize,
    quant: &Quant,
    h: &Hessian,
    q: &mut [i8],
) {
    let chans = shape[axis];
    let k = w.len() / chans.max(1);
    if k != h.k {
        return;
    }
    let per_group = chans / h.groups.len().max(1);
    for c in 0..chans {
        // Index of weight j of channel c: contiguous rows, except Gemm/MatMul [K, N].
        let idx = |j: usize| if axis == 0 { c * k + j } else { j * chans + c };
        let u: Vec<f64> = (0..k).map(|j| (w[idx(j)] / quant.scale[c]) as f64).collect();
        let mut qi: Vec<i32> = (0..k).map(|j| q[idx(j)] as i32).collect();
        let grp = (c / per_group.max(1)).min(h.groups.len().saturating_sub(1));
        super::preserve::flip_channel(&u, &mut qi, &h.groups[grp]);
        for (j, v) in qi.into_iter().enumerate() {
            q[idx(j)] = v as i8;
        }
    }
    let _ = (n, g);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_symmetric_per_channel() {
        let w = [0.5, -1.0, 0.25, 2.0, -2.0, 0.0];
        let (q, quant) = quantize_weights(&w, &[2, 3], 0, None, Rounding::Nearest);
        assert_eq!(quant.scale, vec![1.0 / 127.0, 2.0 / 127.0]);
        assert_eq!(q, vec![64, -127, 32, 127, -127, 0]);
    }
}
