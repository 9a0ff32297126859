use super::sole_consumer;
use crate::ir::{DType, Graph, Node, Quant, TensorData, TensorType, ValueId};
use crate::ops::{
    Act, BinaryKind, Dequantize, Op, PoolKind, QAdd, QConv, QMatMul, QPool, QSoftmax, Requant, Requantize,
};

/// Integer lowering of quantize / dequantize patterns (QDQ models, and float models after
/// int8 calibration inserted QuantizeLinear → DequantizeLinear pairs).
///
/// Contract: every rewrite replaces float arithmetic between `DequantizeLinear` inputs and a
/// `QuantizeLinear` output by one integer op computing the same function up to rounding
/// (≤ 1 LSB for the rescales; exactly for data movement), with constant weights and
/// biases re-encoded as int8 / int32 constants:
/// - `Q(act(Conv(DQ x, DQ w [, b])))` → [`QConv`]; `act` ∈ {none, Relu, Clip};
/// - `Q(act(Gemm|MatMul(DQ a, DQ w) [+ b]))` with constant `w` → [`QMatMul`];
/// - `Q(act(DQ a + DQ b))` (same shapes) → [`QAdd`];
/// - `Q(Pool(DQ x))` → [`QPool`] (average only with a constant window count);
/// - `Q(Softmax(DQ x))` → [`QSoftmax`];
/// - `Q(act(DQ x))` → [`Requantize`] (or nothing when the parameters are equal);
/// - `move(DQ x)` → `DQ(move x)` for Reshape / Transpose / Strided / MaxPool, so data
///   movement happens on int8 and the dequantize meets the next pattern.
///
/// Only per-tensor activation parameters are used (weights may be per output channel).
/// Whatever does not match stays float between its DequantizeLinear and QuantizeLinear
/// nodes (mixed precision). Returns whether the graph changed.
pub fn lower_qdq(g: &mut Graph) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < g.nodes.len() {
        if rewrite(g, i) {
            changed = true;
        } else {
            i += 1;
        }
    }
    changed
}

/// Per-tensor parameters of an activation: `(scale, zero point, type)`.
#[derive(Clone, Copy)]
struct Act8 {
    scale: f64,
    zp: i32,
    ty: DType,
}

/// `v = DequantizeLinear(src)` with per-tensor params of an int8/uint8 `src`.
fn dq_act(g: &Graph, v: ValueId) -> Option<(ValueId, Act8)> {
    let n = &g.nodes[g.producer(v)?];
    let Op::Dequantize(d) = &n.op else { return None };
    let src = n.inputs[0];
    let ty = g.ty(src).dtype;
    if d.q.axis.is_some() || !matches!(ty, DType::I8 | DType::U8) || g.is_const(src) {
        return None;
    }
    Some((src, Act8 { scale: d.q.scale[0] as f64, zp: d.q.zero_point[0], ty }))
}

/// `v = DequantizeLinear(const)`: the integer data and its params.
fn dq_const(g: &Graph, v: ValueId) -> Option<(ValueId, Quant)> {
    let n = &g.nodes[g.producer(v)?];
    let Op::Dequantize(d) = &n.op else { return None };
    (g.is_const(n.inputs[0]) && d.block.is_none()).then(|| (n.inputs[0], d.q.clone()))
}

/// Real values of a constant operand: a float constant or `DQ(const)`.
fn real_const(g: &Graph, v: ValueId) -> Option<Vec<f64>> {
    if let Some(TensorData::F32(d)) = g.data(v) {
        return Some(d.iter().map(|&x| x as f64).collect());
    }
    let (src, q) = dq_const(g, v)?;
    let data = g.data(src)?.to_i64()?;
    let shape = &g.ty(src).shape;
    let inner: usize = q.axis.map_or(1, |a| shape[a + 1..].iter().product());
    let chans = q.scale.len();
    Some(
        data.iter()
            .enumerate()
            .map(|(i, &x)| {
                let c = if chans == 1 { 0 } else { (i / inner) % chans };
                (x - q.zero_point[c] as i64) as f64 * q.scale[c] as f64
            })
            .collect(),
    )
}

/// The single QuantizeLinear (per tensor, to int8/uint8) reading `v`: `(node index, params)`.
fn q_after(g: &Graph, v: ValueId) -> Option<(usize, Act8)> {
    let qi = sole_consumer(g, v)?;
    let Op::Quantize(q) = &g.nodes[qi].op else { return None };
    if q.q.axis.is_some() || !matches!(q.to, DType::I8 | DType::U8) {
        return None;
    }
    Some((qi, Act8 { scale: q.q.scale[0] as f64, zp: q.q.zero_point[0], ty: q.to }))
}

/// Output requantization for real factors `real`, narrowed by a fused activation.
fn requant(real: &[f64], y: Act8, act: Option<&Act>) -> Option<Requant> {
    let mut r = Requant::new(real, y.zp, y.ty);
    narrow(&mut r, act, y)?;
    Some(r)
}

/// Folds a Relu / Clip into the output clamp (None for other activations).
fn narrow(r: &mut Requant, act: Option<&Act>, y: Act8) -> Option<()> {
    match act {
        None => {}
        Some(Act::Relu) => r.clamp_real(0.0, f32::INFINITY, y.scale as f32),
        Some(Act::Clip { min, max }) => r.clamp_real(*min, *max, y.scale as f32),
        Some(_) => return None,
    }
    Some(())
}

fn quant_of(a: Act8) -> Quant {
    Quant { scale: vec![a.scale as f32], zero_point: vec![a.zp], axis: None }
}

/// Replaces nodes `first..=` (the pattern, `first` lowest) by `node` at index `first`,
/// removing the other pattern nodes listed in `drop`. `node` writes the final Q output.
fn replace(g: &mut Graph, first: usize, drop: &[usize], node: Node) {
    let out = node.outputs[0];
    let y = Act8::from_type(g.ty(out));
    g.nodes[first] = node;
    let mut drop = drop.to_vec();
    drop.sort_unstable();
    for &d in drop.iter().rev() {
        g.nodes.remove(d);
    }
    if let Some(q) = y {
        g.values[out.0].ty.quant = Some(quant_of(q));
    }
}

impl Act8 {
    fn from_type(t: &TensorType) -> Option<Act8> {
        let q = t.quant.as_ref()?;
        (q.axis.is_none()).then(|| Act8 { scale: q.scale[0] as f64, zp: q.zero_point[0], ty: t.dtype })
    }
}

/// A new integer constant.
fn int_const(g: &mut Graph, name: String, shape: Vec<usize>, data: TensorData) -> ValueId {
    g.add_const(name, TensorType::new(data.dtype(), shape), data)
}

/// Whether every int32 accumulator stays in range whatever the input: for each output
/// channel `c`, `|bias[c]| + max|x − x_zp| · Σ_k |w[c,k] − w_zp[c]| < 2^31`. `w` is the raw
/// weight data with channel `c` at `w[c·k_len..]` when `by_row`, else at `w[k·chans + c]`.
fn acc_fits(bias: Option<&[i32]>, x: Act8, w: &[i64], w_zp: &[i32], chans: usize, by_row: bool) -> bool {
    let (lo, hi) = crate::ops::type_range(x.ty);
    let xmax = (lo as i64 - x.zp as i64).abs().max((hi as i64 - x.zp as i64).abs());
    let k_len = w.len() / chans.max(1);
    (0..chans).all(|c| {
        let zp = w_zp[if w_zp.len() == 1 { 0 } else { c }] as i64;
        let wsum: i64 = (0..k_len).map(|k| (w[if by_row { c * k_len + k } else { k * chans + c }] - zp).abs()).sum();
        let b = bias.map_or(0, |b| (b[c] as i64).abs());
        b + xmax * wsum < 1i64 << 31
    })
}

/// int32 bias `round(b[c] / (s_x · s_w[c]))`, or None when it does not fit.
fn bias_i32(b: &[f64], sx: f64, sw: &[f64]) -> Option<Vec<i32>> {
    b.iter()
        .enumerate()
        .map(|(c, &v)| {
            let s = sx * sw[if sw.len() == 1 { 0 } else { c }];
            let q = (v / s).round();
            (q.abs() <= i32::MAX as f64).then_some(q as i32)
        })
        .collect()
}

fn rewrite(g: &mut Graph, i: usize) -> bool {
    match &g.nodes[i].op {
        Op::Conv(_) => conv(g, i).is_some(),
        Op::Gemm(_) | Op::MatMul(_) => matmul(g, i).is_some(),
        Op::Binary(b) if b.kind == BinaryKind::Add => add(g, i).is_some(),
        Op::Pool(_) => pool(g, i).is_some() || push_dq(g, i).is_some(),
        Op::Softmax(_) => softmax(g, i).is_some(),
        Op::Activation(_) | Op::Dequantize(_) => requantize(g, i).is_some(),
        Op::Reshape(_) | Op::Transpose(_) | Op::Strided(_) => push_dq(g, i).is_some(),
        _ => false,
    }
}

fn conv(g: &mut Graph, i: usize) -> Option<()> {
    let n = g.nodes[i].clone();
    let Op::Conv(c) = &n.op else { return None };
    let (xq, x) = dq_act(g, n.inputs[0])?;
    let (wq, wqp) = dq_const(g, n.inputs[1])?;
    let m = g.ty(wq).shape[0];
    if !matches!(g.ty(wq).dtype, DType::I8 | DType::U8) || !(wqp.axis.is_none() || wqp.axis == Some(0)) {
        return None;
    }
    let (qi, y) = q_after(g, n.outputs[0])?;
    let sw: Vec<f64> = wqp.scale.iter().map(|&s| s as f64).collect();
    let real: Vec<f64> = (0..m).map(|k| x.scale * sw[if sw.len() == 1 { 0 } else { k }] / y.scale).collect();
    let out = requant(&real, y, c.act.as_ref())?;
    let mut inputs = vec![xq, wq];
    let bias = match n.inputs.get(2) {
        Some(&b) => Some(bias_i32(&real_const(g, b)?, x.scale, &sw)?),
        None => None,
    };
    if !acc_fits(bias.as_deref(), x, &g.data(wq)?.to_i64()?, &wqp.zero_point, m, true) {
        return None;
    }
    if let Some(bias) = bias {
        let name = format!("{}/bias_q", n.name);
        inputs.push(int_const(g, name, vec![m], TensorData::I32(bias)));
    }
    let op =
        QConv { conv: crate::ops::Conv { act: None, ..c.clone() }, x_zp: x.zp, w_zp: wqp.zero_point, out: Some(out) };
    let node = Node { op: Op::QConv(op), inputs, outputs: g.nodes[qi].outputs.clone(), ..n };
    replace(g, i, &[qi], node);
    Some(())
}

fn matmul(g: &mut Graph, i: usize) -> Option<()> {
    let n = g.nodes[i].clone();
    let (alpha, beta, trans_b, act, c_bias) = match &n.op {
        Op::Gemm(gm) if !gm.trans_a => (gm.alpha as f64, gm.beta as f64, gm.trans_b, gm.act, n.inputs.get(2).copied()),
        Op::MatMul(mm) => (1.0, 1.0, false, mm.act, None),
        _ => return None,
    };
    let (aq, a) = dq_act(g, n.inputs[0])?;
    let (wq, wqp) = dq_const(g, n.inputs[1])?;
    let ws = g.ty(wq).shape.clone();
    if ws.len() != 2 || !matches!(g.ty(wq).dtype, DType::I8 | DType::U8) {
        return None;
    }
    let (k, ncols) = if trans_b { (ws[1], ws[0]) } else { (ws[0], ws[1]) };
    let col_axis = if trans_b { 0 } else { 1 };
    if !(wqp.axis.is_none() || wqp.axis == Some(col_axis)) {
        return None;
    }
    // Optional bias: Gemm's C, or a following Add of a constant.
    let mut drop = vec![];
    let mut tail = n.outputs[0];
    let mut bias = c_bias.map(|b| real_const(g, b).map(|v| v.iter().map(|x| x * beta).collect::<Vec<_>>()));
    let mut act = act;
    if bias.is_none()
        && act.is_none()
        && let Some(ai) = sole_consumer(g, tail)
        && let Op::Binary(b) = &g.nodes[ai].op
        && b.kind == BinaryKind::Add
    {
        let other = g.nodes[ai].inputs.iter().copied().find(|&v| v != tail)?;
        if g.ty(g.nodes[ai].outputs[0]).shape == g.ty(tail).shape {
            bias = Some(real_const(g, other));
            act = b.act;
            tail = g.nodes[ai].outputs[0];
            drop.push(ai);
        }
    }
    let bias = match bias {
        Some(Some(b)) if b.len() == ncols => Some(b),
        Some(_) => return None,
        None => None,
    };
    let (qi, y) = q_after(g, tail)?;
    drop.push(qi);
    let sw: Vec<f64> = wqp.scale.iter().map(|&s| s as f64).collect();
    let real: Vec<f64> =
        (0..ncols).map(|j| alpha * a.scale * sw[if sw.len() == 1 { 0 } else { j }] / y.scale).collect();
    let out = requant(&real, y, act.as_ref())?;
    let sx_eff = a.scale * alpha;
    let w = if trans_b {
        let t = crate::ops::Transpose { perm: vec![1, 0] };
        let data = g.data(wq)?.clone();
        let data = t.eval(g.ty(wq), &data);
        int_const(g, format!("{}/weight_kn", n.name), vec![k, ncols], data)
    } else {
        wq
    };
    let mut inputs = vec![aq, w];
    let bias = match bias {
        Some(b) => Some(bias_i32(&b, sx_eff, &sw)?),
        None => None,
    };
    if !acc_fits(bias.as_deref(), a, &g.data(w)?.to_i64()?, &wqp.zero_point, ncols, false) {
        return None;
    }
    if let Some(q) = bias {
        inputs.push(int_const(g, format!("{}/bias_q", n.name), vec![ncols], TensorData::I32(q)));
    }
    let op = QMatMul { a_zp: a.zp, b_zp: wqp.zero_point, out: Some(out) };
    let node = Node { op: Op::QMatMul(op), inputs, outputs: g.nodes[qi].outputs.clone(), ..n };
    replace(g, i, &drop, node);
    Some(())
}

fn add(g: &mut Graph, i: usize) -> Option<()> {
    let n = &g.nodes[i];
    let Op::Binary(b) = &n.op else { return None };
    let (aq, a) = dq_act(g, n.inputs[0])?;
    let (bq, bb) = dq_act(g, n.inputs[1])?;
    if g.ty(aq).shape != g.ty(bq).shape || a.ty != bb.ty {
        return None;
    }
    let (qi, y) = q_after(g, n.outputs[0])?;
    let mut op = QAdd::new(a.scale, a.zp, bb.scale, bb.zp, y.scale, y.zp, y.ty);
    narrow(&mut op.out, b.act.as_ref(), y)?;
    let node = Node { op: Op::QAdd(op), inputs: vec![aq, bq], outputs: g.nodes[qi].outputs.clone(), ..n.clone() };
    replace(g, i, &[qi], node);
    Some(())
}

fn pool(g: &mut Graph, i: usize) -> Option<()> {
    let n = &g.nodes[i];
    let Op::Pool(p) = &n.op else { return None };
    let (xq, x) = dq_act(g, n.inputs[0])?;
    let (qi, y) = q_after(g, n.outputs[0])?;
    let count = match p.kind {
        PoolKind::Max => 1.0,
        PoolKind::Avg if p.pads == [0; 4] || p.count_include_pad => (p.kernel[0] * p.kernel[1]) as f64,
        PoolKind::Avg => return None,
    };
    if y.ty != x.ty {
        return None;
    }
    let out = requant(&[x.scale / (y.scale * count)], y, None)?;
    let op = QPool { pool: p.clone(), x_zp: x.zp, out };
    let node = Node { op: Op::QPool(op), inputs: vec![xq], outputs: g.nodes[qi].outputs.clone(), ..n.clone() };
    replace(g, i, &[qi], node);
    Some(())
}

fn softmax(g: &mut Graph, i: usize) -> Option<()> {
    let n = &g.nodes[i];
    let Op::Softmax(s) = &n.op else { return None };
    if s.log {
        return None;
    }
    let (xq, x) = dq_act(g, n.inputs[0])?;
    let (qi, y) = q_after(g, n.outputs[0])?;
    let op = QSoftmax::new(s.axis, x.scale, y.scale, y.zp, y.ty);
    let node = Node { op: Op::QSoftmax(op), inputs: vec![xq], outputs: g.nodes[qi].outputs.clone(), ..n.clone() };
    replace(g, i, &[qi], node);
    Some(())
}

/// `Q(act(DQ x))` or `Q(DQ x)`: an integer rescale, or nothing when parameters match.
fn requantize(g: &mut Graph, i: usize) -> Option<()> {
    let n = &g.nodes[i];
    let (src_v, act) = match &n.op {
        Op::Activation(a) => (n.inputs[0], Some(*a)),
        Op::Dequantize(_) => (n.outputs[0], None),
        _ => return None,
    };
    let (xq, x) = dq_act(g, if act.is_some() { src_v } else { n.outputs[0] })?;
    let (qi, y) = q_after(g, n.outputs[0])?;
    let out_v = g.nodes[qi].outputs[0];
    if act.is_none() && x.ty == y.ty && x.zp == y.zp && x.scale == y.scale && !g.is_graph_output(out_v) {
        g.replace_uses(out_v, xq);
        g.nodes.remove(qi);
        return Some(());
    }
    let out = requant(&[x.scale / y.scale], y, act.as_ref())?;
    let op = Requantize { x_zp: x.zp, out };
    let node = Node { op: Op::Requantize(op), inputs: vec![xq], outputs: vec![out_v], ..n.clone() };
    replace(g, i, &[qi], node);
    Some(())
}

/// `move(DQ x)` → `DQ(move x)` for data movement (and max pooling, which commutes with a
/// monotonic dequantize).
fn push_dq(g: &mut Graph, i: usize) -> Option<()> {
    let n = g.nodes[i].clone();
    if let Op::Pool(p) = &n.op
        && p.kind != PoolKind::Max
    {
        return None;
    }
    let dq_v = n.inputs[0];
    let (xq, x) = dq_act(g, dq_v)?;
    sole_consumer(g, dq_v)?;
    let xt = g.ty(xq).clone();
    let op = match &n.op {
        Op::Pool(p) => Op::QPool(QPool { pool: p.clone(), x_zp: x.zp, out: requant(&[1.0], x, None)? }),
        op => op.clone(),
    };
    let mut tys: Vec<TensorType> = vec![xt];
    tys.extend(n.inputs[1..].iter().map(|&v| g.ty(v).clone()));
    let refs: Vec<&TensorType> = tys.iter().collect();
    let mut ty = op.infer(&refs).ok()?;
    ty.quant = Some(quant_of(x));
    let moved = g.add_value(format!("{}/q", n.name), ty);
    let mut inputs = n.inputs.clone();
    inputs[0] = xq;
    g.nodes[i] = Node { op, inputs, outputs: vec![moved], ..n.clone() };
    let dq = Node {
        name: format!("{}/dequantize", n.name),
        onnx_op: "DequantizeLinear".into(),
        op: Op::Dequantize(Dequantize { q: quant_of(x), block: None }),
        inputs: vec![moved],
        outputs: n.outputs.clone(),
    };
    g.nodes.insert(i + 1, dq);
    Some(())
}
