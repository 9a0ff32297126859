use super::sole_consumer;
use crate::ir::{Graph, TensorData, TensorType};
use crate::ops::Op;

/// Folds an inference BatchNormalization into the Conv or Gemm producing its input, when
/// that producer has constant weights (and bias), no fused activation and no other user:
/// `w'[m] = w[m] * k[m]`, `b'[m] = b[m] * k[m] + o[m]` with `(k, o)` the BN affine form.
/// For Gemm the channel axis is the output column (N).
pub fn fold_batchnorm(g: &mut Graph) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < g.nodes.len() {
        if fold_one(g, i) {
            changed = true;
        } else {
            i += 1;
        }
    }
    changed
}

fn fold_one(g: &mut Graph, bn_idx: usize) -> bool {
    let Op::BatchNorm(bn) = &g.nodes[bn_idx].op else {
        return false;
    };
    let bn_ins = g.nodes[bn_idx].inputs.clone();
    let Some(p) = g.producer(bn_ins[0]) else {
        return false;
    };
    if sole_consumer(g, bn_ins[0]) != Some(bn_idx) {
        return false;
    }
    let params: Option<Vec<Vec<f32>>> =
        bn_ins[1..].iter().map(|&v| g.data(v).and_then(|d| d.as_f32()).map(<[f32]>::to_vec)).collect();
    let Some(params) = params else { return false };
    let (k, o) = bn.affine(&params[0], &params[1], &params[2], &params[3]);
    let prod = &g.nodes[p];
    let (w, channels_on_rows) = match &prod.op {
        Op::Conv(c) if c.act.is_none() => (prod.inputs[1], true),
        Op::Gemm(gm) if gm.act.is_none() && (prod.inputs.len() < 3 || g.ty(prod.inputs[2]).len() == k.len()) => {
            (prod.inputs[1], gm.trans_b)
        }
        _ => return false,
    };
    let Some(wdata) = g.data(w).and_then(|d| d.as_f32()) else {
        return false;
    };
    let wty = g.ty(w).clone();
    let m = k.len();
    let per = wty.len() / m;
    let scaled: Vec<f32> = if channels_on_rows {
        wdata.iter().enumerate().map(|(i, &x)| x * k[i / per]).collect()
    } else {
        wdata.iter().enumerate().map(|(i, &x)| x * k[i % m]).collect()
    };
    // Gemm computes alpha*AB + beta*C: fold the BN into C relative to beta.
    let (alpha, beta) = match &g.nodes[p].op {
        Op::Gemm(gm) => (gm.alpha, gm.beta),
        _ => (1.0, 1.0),
    };
    let old_bias: Vec<f32> = match g.nodes[p].inputs.get(2) {
        Some(&b) => match g.data(b).and_then(|d| d.as_f32()) {
            Some(d) => d.iter().map(|&x| x * beta).collect(),
            None => return false,
        },
        None => vec![0.0; m],
    };
    let _ = alpha;
    let bias: Vec<f32> = (0..m).map(|c| old_bias[c] * k[c] + o[c]).collect();
    let name = g.nodes[p].name.clone();
    let new_w = g.add_const(format!("{name}/w_bn"), wty, TensorData::F32(scaled));
    let new_b = g.add_const(format!("{name}/b_bn"), TensorType::f32(vec![m]), TensorData::F32(bias));
    let prod = &mut g.nodes[p];
    prod.inputs[1] = new_w;
    if prod.inputs.len() > 2 {
        prod.inputs[2] = new_b;
    } else {
        prod.inputs.push(new_b);
    }
    if let Op::Gemm(gm) = &mut prod.op {
        gm.beta = 1.0;
    }
    let bn_out = g.nodes[bn_idx].outputs[0];
    let prod_out = g.nodes[p].outputs[0];
    g.nodes.remove(bn_idx);
    g.replace_uses(bn_out, prod_out);
    // Keep the ONNX output name on the surviving value.
    g.values[prod_out.0].name = g.values[bn_out.0].name.clone();
    true
}
