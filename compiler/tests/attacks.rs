//! Input gradients of the float IR (`interp::grad`) against central finite differences on
//! the real models and on small hand-built graphs, and the audit's attacks
//! (`audit::attacks`): membership inference AUC / advantage on hand examples, FGSM on the
//! digits CNN against random-sign noise of the same budget, and the loss-threshold attack
//! on the digits MLP's train / test split.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use modelless::audit::attacks::{self, MiaResult};
use modelless::frontend::read_tensor_file;
use modelless::interp::{self, grad};
use modelless::ir::{Graph, Node, TensorData, TensorType, ValueId};
use modelless::ops::{
    Act, BatchNorm, Binary, BinaryKind, Concat, Conv, Gemm, MatMul, Op, Pad, PadMode, Pool, PoolKind, Reshape, Softmax,
    Transpose,
};
use modelless::{Config, Int8Config};
use std::path::PathBuf;

// ---------------------------------------------------------------- finite differences

fn loss(g: &Graph, x: &[f32], label: usize) -> f64 {
    grad::loss_and_input_grad(g, &[TensorData::F32(x.to_vec())], label).unwrap().0 as f64
}

/// Checks the analytic gradient at the `k` largest-gradient coordinates and `k` spread-out
/// ones against central differences: |fd − an| ≤ 2e-2 · max(|fd|, |an|) + 5e-3 · max |an|
/// for the step `h`, or failing that `h / 3` or `h / 10` (a ReLU or max-pool kink within
/// `h` of the point bends the secant, not the gradient; the absolute term absorbs the f32
/// rounding of the loss on coordinates with tiny gradients).
fn fd_check(name: &str, g: &Graph, x: &[f32], label: usize, h: f32, k: usize) {
    let (l0, an) = grad::loss_and_input_grad(g, &[TensorData::F32(x.to_vec())], label).unwrap();
    assert_eq!(an.len(), x.len(), "{name}: gradient length");
    assert!(l0.is_finite() && an.iter().all(|v| v.is_finite()), "{name}: non-finite loss or gradient");
    let gmax = an.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(gmax > 0.0, "{name}: zero gradient");
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| an[b].abs().total_cmp(&an[a].abs()));
    let mut coords: Vec<usize> = order[..k.min(x.len())].to_vec();
    let step = (x.len() / (k + 1)).max(1);
    coords.extend((1..=k).map(|i| (i * step * 7919) % x.len()));
    for &i in &coords {
        let a = an[i] as f64;
        let close = |fd: f64| (fd - a).abs() <= 2e-2 * fd.abs().max(a.abs()) + 5e-3 * gmax as f64;
        let mut fds = vec![];
        for h in [h, h / 3.0, h / 10.0] {
            let mut xp = x.to_vec();
            xp[i] += h;
            let mut xm = x.to_vec();
            xm[i] -= h;
            fds.push((loss(g, &xp, label) - loss(g, &xm, label)) / (2.0 * h as f64));
            if fds.last().is_some_and(|&fd| close(fd)) {
                break;
            }
        }
        assert!(
            fds.iter().any(|&fd| close(fd)),
            "{name} (label {label}): d/dx[{i}] = {}: analytic {a}, finite differences {fds:?}",
            x[i]
        );
    }
}

fn shared_model(rel: &str) -> PathBuf {
    common::shared().join("models").join(rel)
}

/// Checks a real model on a test set, for the `labels` most likely classes.
fn check_model(rel: &str, set: usize, h: f32, labels: usize, k: usize) {
    let dir = shared_model(rel);
    let (g, _) = Config::new().lower(&dir.join("model.onnx")).unwrap();
    let (_, x) = read_tensor_file(&dir.join(format!("test_data_set_{set}/input_0.pb"))).unwrap();
    let x = x.as_f32().unwrap().to_vec();
    let z = interp::run_all(&g, &[TensorData::F32(x.clone())]).unwrap();
    let logits = z[grad::logits_value(&g).unwrap().0].as_ref().unwrap().as_f32().unwrap().to_vec();
    let mut by_score: Vec<usize> = (0..logits.len()).collect();
    by_score.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    for &label in &by_score[..labels] {
        fd_check(&format!("{rel} set {set}"), &g, &x, label, h, k);
    }
}

#[test]
fn grad_matches_finite_differences_digits_cnn() {
    check_model("digits/digits_cnn", 0, 1e-3, 2, 4);
}

#[test]
fn grad_matches_finite_differences_digits_mlp() {
    check_model("digits/digits_mlp", 0, 1e-3, 2, 4);
}

/// The 80%-sparse digits CNN: its lowered graph holds sparse Conv / Gemm nodes.
#[test]
fn grad_matches_finite_differences_digits_cnn_sparse80() {
    let (g, _) = Config::new().lower(&shared_model("digits/digits_cnn_sparse80/model.onnx")).unwrap();
    assert!(g.nodes.iter().any(|n| matches!(n.op, Op::Sparse(_))), "no sparse node to differentiate");
    check_model("digits/digits_cnn_sparse80", 0, 1e-3, 2, 4);
}

/// Depthwise + pointwise convolutions with asymmetric pads and strides, average pooling,
/// and a final Softmax (the gradient is of its input's cross-entropy).
#[test]
fn grad_matches_finite_differences_kws_dscnn() {
    check_model("mlperf-tiny/kws_dscnn_fp32", 0, 1e-2, 2, 4);
}

/// Residual Adds with fused Relu, strided 1x1 shortcuts, average pooling, Softmax. Set 0
/// is an all-zero image; set 1 a real one (pixels 0..255). Few coordinates: the model is
/// the slowest here.
#[test]
fn grad_matches_finite_differences_ic_resnet8() {
    check_model("mlperf-tiny/ic_resnet8_fp32", 0, 1e-2, 1, 3);
    check_model("mlperf-tiny/ic_resnet8_fp32", 1, 3e-2, 1, 3);
}

// ---------------------------------------------------------------- hand-built graphs

fn add(g: &mut Graph, name: &str, op: Op, inputs: &[ValueId]) -> ValueId {
    let tys: Vec<&TensorType> = inputs.iter().map(|&v| g.ty(v)).collect();
    let ty = op.infer(&tys).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = g.add_value(name, ty);
    g.nodes.push(Node {
        name: name.into(),
        onnx_op: op.name().into(),
        op,
        inputs: inputs.to_vec(),
        outputs: vec![out],
    });
    out
}

/// Deterministic values in [-1, 1).
fn pseudo(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn konst(g: &mut Graph, name: &str, shape: Vec<usize>, seed: u64) -> ValueId {
    let n = shape.iter().product();
    g.add_const(name, TensorType::f32(shape), TensorData::F32(pseudo(n, seed)))
}

fn pool(kind: PoolKind, k: usize, s: usize, pads: [usize; 4], count_include_pad: bool) -> Op {
    Op::Pool(Pool {
        kind,
        kernel: [k, k],
        strides: [s, s],
        dilations: [1, 1],
        pads,
        ceil_mode: false,
        count_include_pad,
    })
}

fn gemm_to(g: &mut Graph, name: &str, x: ValueId, n: usize, seed: u64) -> ValueId {
    let k = g.ty(x).shape[1];
    let w = konst(g, &format!("{name}_w"), vec![n, k], seed);
    let b = konst(g, &format!("{name}_b"), vec![n], seed + 1);
    let op = Op::Gemm(Gemm { trans_a: false, trans_b: true, alpha: 0.7, beta: 0.5, act: None });
    add(g, name, op, &[x, w, b])
}

fn flatten(g: &mut Graph, name: &str, x: ValueId) -> ValueId {
    let n = g.ty(x).len();
    add(g, name, Op::Reshape(Reshape { shape: vec![1, n] }), &[x])
}

/// Max pooling (padded), Transpose, Concat with a constant and with a second branch
/// of the input, constant Pad, mid-graph Softmax, BatchNorm, broadcasting Mul / Div / Sub,
/// MatMul with a batch-broadcast constant, Sigmoid / Tanh / LeakyRelu, a grouped dilated
/// strided Conv with fused Clip, average pooling counting padding and a LogSoftmax output.
#[test]
fn grad_matches_finite_differences_hand_graph() {
    let mut g = Graph::default();
    let x = g.add_value("x", TensorType::f32(vec![1, 4, 6, 6]));
    g.inputs.push(x);
    // Branch A: conv (groups 2, dilation 2, stride 2... via pads) → max pool → transpose.
    let w = konst(&mut g, "cw", vec![6, 2, 3, 3], 1);
    let cb = konst(&mut g, "cb", vec![6], 2);
    let conv = Conv {
        kernel: [3, 3],
        strides: [1, 2],
        dilations: [2, 1],
        pads: [2, 1, 1, 0],
        group: 2,
        act: Some(Act::Clip { min: -0.5, max: 0.8 }),
    };
    let c = add(&mut g, "conv", Op::Conv(conv), &[x, w, cb]);
    let mp = add(&mut g, "maxpool", pool(PoolKind::Max, 2, 1, [1, 0, 0, 1], false), &[c]);
    let tr = add(&mut g, "transpose", Op::Transpose(Transpose { perm: vec![0, 2, 3, 1] }), &[mp]);
    let tr = flatten(&mut g, "flat_a", tr);
    // Branch B: avg pool with count_include_pad → pad → sigmoid → batchnorm.
    let ap = add(&mut g, "avgpool", pool(PoolKind::Avg, 3, 2, [1, 1, 1, 1], true), &[x]);
    let pd = add(
        &mut g,
        "pad",
        Op::Pad(Pad { pads: vec![0, 0, 1, 0, 0, 0, 0, 2], mode: PadMode::Constant, value: 0.3 }),
        &[ap],
    );
    let sg = add(&mut g, "sigmoid", Op::Activation(Act::Sigmoid), &[pd]);
    let bn_p: Vec<ValueId> = (0..4).map(|i| konst(&mut g, &format!("bn{i}"), vec![4], 10 + i)).collect();
    // Variance must be positive.
    g.values[bn_p[3].0].data = Some(TensorData::F32(vec![0.5, 1.5, 0.8, 2.0]));
    let bn = add(&mut g, "bn", Op::BatchNorm(BatchNorm { epsilon: 1e-3 }), &[sg, bn_p[0], bn_p[1], bn_p[2], bn_p[3]]);
    let bn = flatten(&mut g, "flat_b", bn);
    // Branch C: broadcasting arithmetic and a batched MatMul on the raw input.
    let s = konst(&mut g, "s", vec![4, 1, 1], 20);
    let mul = add(&mut g, "mul", Op::Binary(Binary { kind: BinaryKind::Mul, act: Some(Act::Tanh) }), &[x, s]);
    let d = g.add_const("d", TensorType::f32(vec![6]), TensorData::F32(vec![1.5, 2.0, -1.2, 0.9, 3.0, -2.5]));
    let div = add(&mut g, "div", Op::Binary(Binary { kind: BinaryKind::Div, act: None }), &[mul, d]);
    let sub = add(
        &mut g,
        "sub",
        Op::Binary(Binary { kind: BinaryKind::Sub, act: Some(Act::LeakyRelu { alpha: 0.2 }) }),
        &[div, x],
    );
    let mm_w = konst(&mut g, "mm_w", vec![6, 3], 21);
    let mm = add(&mut g, "matmul", Op::MatMul(MatMul { act: None }), &[sub, mm_w]);
    let sm = add(&mut g, "softmax_mid", Op::Softmax(Softmax { axis: 3, log: false }), &[mm]);
    let sm = flatten(&mut g, "flat_c", sm);
    // Join, a Gemm, a LogSoftmax output.
    let extra = konst(&mut g, "extra", vec![1, 5], 30);
    let cat = add(&mut g, "concat", Op::Concat(Concat { axis: 1 }), &[tr, extra, bn, sm]);
    let h = gemm_to(&mut g, "gemm", cat, 5, 40);
    let out = add(&mut g, "logsoftmax", Op::Softmax(Softmax { axis: 1, log: true }), &[h]);
    g.outputs.push(out);
    modelless::ir::verify(&g).unwrap();
    assert_eq!(grad::logits_value(&g).unwrap(), h);
    let xv = pseudo(g.ty(x).len(), 99);
    for label in 0..5 {
        fd_check("hand graph", &g, &xv, label, 1e-3, 6);
    }
}

/// Max pooling sends the gradient to the first maximum of each window (the forward's
/// choice on ties); average pooling divides by the forward's count.
#[test]
fn grad_pooling_exact() {
    let mut g = Graph::default();
    let x = g.add_value("x", TensorType::f32(vec![1, 1, 2, 4]));
    g.inputs.push(x);
    let mp = add(&mut g, "maxpool", pool(PoolKind::Max, 2, 2, [0, 0, 0, 0], false), &[x]);
    let ap = add(&mut g, "avgpool", pool(PoolKind::Avg, 2, 2, [1, 1, 1, 1], false), &[x]);
    let mp = flatten(&mut g, "flat_m", mp);
    let ap = flatten(&mut g, "flat_a", ap);
    let apc = add(&mut g, "avgpool_count_pad", pool(PoolKind::Avg, 2, 2, [1, 1, 1, 1], true), &[x]);
    let apc = flatten(&mut g, "flat_c", apc);
    let cat = add(&mut g, "concat", Op::Concat(Concat { axis: 1 }), &[mp, ap, apc]);
    g.outputs.push(cat);
    // Window 0 ties at 5 (positions 1 and 4 → first tap row-major is 1); window 1 max at 7.
    let xv = vec![1.0, 5.0, 7.0, 2.0, 5.0, 0.0, 3.0, 7.0];
    let (_, dx) = grad::loss_and_input_grad(&g, &[TensorData::F32(xv.clone())], 0).unwrap();
    // Logits: [max0, max1, avg (2x3 windows), avg counting padding (2x3)];
    // dL/dlogit = softmax − onehot(0).
    let z = interp::run(&g, &[TensorData::F32(xv)]).unwrap()[0].as_f32().unwrap().to_vec();
    let (_, dz) = grad::cross_entropy(&z, 0).unwrap();
    let mut want = [0.0f32; 8];
    want[1] += dz[0];
    want[2] += dz[1]; // first 7 in window 1 (row 0) wins over the 7 in row 1
    // Average windows (pads 1, stride 2): out 2x3; each in-bounds tap gets dz / in-bounds
    // count, or dz / 4 (the whole window lies in the padded input) with count_include_pad.
    for oy in 0..2usize {
        for ox in 0..3usize {
            let taps: Vec<usize> = (0..2)
                .flat_map(|ky| (0..2).map(move |kx| (oy * 2 + ky, ox * 2 + kx)))
                .filter(|&(r, c)| (1..3).contains(&r) && (1..5).contains(&c))
                .map(|(r, c)| (r - 1) * 4 + (c - 1))
                .collect();
            for &t in &taps {
                want[t] += dz[2 + oy * 3 + ox] / taps.len() as f32;
                want[t] += dz[8 + oy * 3 + ox] / 4.0;
            }
        }
    }
    for i in 0..8 {
        assert!((dx[i] - want[i]).abs() < 1e-6, "dx[{i}] = {}, want {}", dx[i], want[i]);
    }
}

/// Transpose and Concat move gradients back to the elements they copied.
#[test]
fn grad_transpose_concat_exact() {
    let mut g = Graph::default();
    let x = g.add_value("x", TensorType::f32(vec![2, 3]));
    g.inputs.push(x);
    let t = add(&mut g, "t", Op::Transpose(Transpose { perm: vec![1, 0] }), &[x]);
    let c = g.add_const("c", TensorType::f32(vec![3, 1]), TensorData::F32(vec![0.0, 0.5, -0.5]));
    let cat = add(&mut g, "cat", Op::Concat(Concat { axis: 1 }), &[c, t, t]);
    let flat = flatten(&mut g, "flat", cat);
    g.outputs.push(flat);
    let xv = vec![0.1, -0.2, 0.3, 0.4, 0.0, -0.6];
    let (_, dx) = grad::loss_and_input_grad(&g, &[TensorData::F32(xv.clone())], 4).unwrap();
    let z = interp::run(&g, &[TensorData::F32(xv)]).unwrap()[0].as_f32().unwrap().to_vec();
    let (_, dz) = grad::cross_entropy(&z, 4).unwrap();
    // cat is [3, 5] = [c | t | t], t[i, j] = x[j, i]: x[j, i] appears at (i, 1 + j), (i, 3 + j).
    for j in 0..2 {
        for i in 0..3 {
            let want = dz[i * 5 + 1 + j] + dz[i * 5 + 3 + j];
            assert!((dx[j * 3 + i] - want).abs() < 1e-6, "dx[{j},{i}] = {}, want {want}", dx[j * 3 + i]);
        }
    }
}

/// An op without an adjoint on the input's path is an error naming it; off the path it
/// does not matter; labels out of range and int inputs are errors, not panics.
#[test]
fn grad_errors() {
    let mut g = Graph::default();
    let x = g.add_value("x", TensorType::f32(vec![1, 4]));
    g.inputs.push(x);
    let f = add(&mut g, "my_floor", Op::Activation(Act::Floor), &[x]);
    g.outputs.push(f);
    let err = grad::loss_and_input_grad(&g, &[TensorData::F32(vec![0.5; 4])], 1).unwrap_err();
    assert_eq!(err, "no gradient for floor (node \"my_floor\")");
    let err = grad::loss_and_input_grad(&g, &[TensorData::F32(vec![0.5; 4])], 4).unwrap_err();
    assert!(err.contains("label 4 is out of range for 4 logits"), "{err}");

    // Floor on a constant branch only: fine.
    let mut g = Graph::default();
    let x = g.add_value("x", TensorType::f32(vec![1, 4]));
    g.inputs.push(x);
    let c = konst(&mut g, "c", vec![1, 4], 3);
    let fc = add(&mut g, "floor_const", Op::Activation(Act::Floor), &[c]);
    let y = add(&mut g, "add", Op::Binary(Binary { kind: BinaryKind::Add, act: None }), &[x, fc]);
    g.outputs.push(y);
    let xv = TensorData::F32(vec![0.5; 4]);
    let (_, dx) = grad::loss_and_input_grad(&g, std::slice::from_ref(&xv), 1).unwrap();
    let z = interp::run(&g, &[xv]).unwrap()[0].as_f32().unwrap().to_vec();
    assert_eq!(dx, grad::cross_entropy(&z, 1).unwrap().1);
    assert!(dx[1] < 0.0 && dx[0] > 0.0, "{dx:?}");

    let mut g = Graph::default();
    let x = g.add_value("x", TensorType::new(modelless::ir::DType::I8, vec![1, 4]));
    g.inputs.push(x);
    g.outputs.push(x);
    let err = grad::loss_and_input_grad(&g, &[TensorData::I8(vec![0; 4])], 1).unwrap_err();
    assert!(err.contains("need a float input"), "{err}");
}

// ---------------------------------------------------------------- membership inference

#[test]
fn mia_identical_distributions_is_chance() {
    let a = pseudo(2000, 1).iter().map(|v| v.abs()).collect::<Vec<_>>();
    let b = pseudo(2000, 2).iter().map(|v| v.abs()).collect::<Vec<_>>();
    let r = attacks::mia(&a, &b);
    assert!((r.auc - 0.5).abs() < 0.03, "{r:?}");
    assert!(r.advantage < 0.06, "{r:?}");
    // The very same losses: exactly chance, every pair tied.
    let r = attacks::mia(&a, &a);
    assert_eq!(r.auc, 0.5);
    assert_eq!(r.advantage, 0.0);
    assert_eq!((r.members, r.nonmembers), (2000, 2000));
}

#[test]
fn mia_separated_distributions() {
    let members = [0.01f32, 0.02, 0.05, 0.1];
    let nonmembers = [0.5f32, 0.7, 1.2];
    assert_eq!(attacks::mia(&members, &nonmembers), MiaResult { auc: 1.0, advantage: 1.0, members: 4, nonmembers: 3 });
    // Reversed: the attack is always wrong, its best threshold admits nobody.
    let r = attacks::mia(&nonmembers, &members);
    assert_eq!((r.auc, r.advantage), (0.0, 0.0));
}

#[test]
fn mia_hand_example() {
    // Pairs with member loss < non-member loss: 4 + 2 + 2 + 1 = 9 of 16.
    // Sweeping the threshold over 0.1 M, 0.2 N, 0.3 N, 0.35 M, 0.4 M, 0.5 N, 0.8 M, 0.9 N:
    // TPR − FPR = .25, 0, −.25, 0, .25, 0, .25, 0 → advantage 0.25.
    let r = attacks::mia(&[0.1, 0.4, 0.35, 0.8], &[0.2, 0.5, 0.9, 0.3]);
    assert_eq!(r.auc, 9.0 / 16.0);
    assert_eq!(r.advantage, 0.25);
    // Ties count one half: (1,1) ½ twice, (1,2) 1 twice → 3/4; threshold at 1 gives 1 − ½.
    let r = attacks::mia(&[1.0, 1.0], &[1.0, 2.0]);
    assert_eq!((r.auc, r.advantage), (0.75, 0.5));
    // Empty sets and NaN losses do not panic.
    assert_eq!(attacks::mia(&[], &[1.0]).auc, 0.5);
    let r = attacks::mia(&[f32::NAN, 0.1], &[0.2]);
    assert_eq!(r.auc, 0.5);
}

// ---------------------------------------------------------------- attacks on digits

fn digits() -> PathBuf {
    shared_model("digits")
}

fn labels(name: &str) -> Vec<usize> {
    let (_, y) = modelless::npy::read_tensor(&digits().join("data").join(name)).unwrap();
    y.to_i64().unwrap().iter().map(|&v| v as usize).collect()
}

fn samples(g: &Graph, name: &str, n: usize) -> Vec<Vec<f32>> {
    let s = modelless::int8::load_samples(&digits().join("data").join(name), g).unwrap();
    s.into_iter().take(n).map(|s| s[0].as_f32().unwrap().to_vec()).collect()
}

fn predict(g: &Graph, x: &[f32]) -> usize {
    let y = interp::run(g, &[TensorData::F32(x.to_vec())]).unwrap();
    let y = y[0].as_f32().unwrap();
    (0..y.len()).max_by(|&a, &b| y[a].total_cmp(&y[b])).unwrap()
}

fn accuracy(g: &Graph, xs: &[Vec<f32>], ys: &[usize]) -> f64 {
    xs.iter().zip(ys).filter(|(x, y)| predict(g, x) == **y).count() as f64 / xs.len() as f64
}

/// FGSM at eps 0.1 (pixels in [0, 1]) on the first 100 test digits: accuracy collapses,
/// while random signs of the same budget barely move it.
#[test]
fn fgsm_digits_cnn_beats_random_noise() {
    let (g, _) = Config::new().lower(&digits().join("digits_cnn/model.onnx")).unwrap();
    let xs = samples(&g, "x_test.npy", 100);
    let ys = labels("y_test.npy");
    let ys = &ys[..xs.len()];
    let eps = 0.1;
    let adv: Vec<Vec<f32>> = xs.iter().zip(ys).map(|(x, &y)| attacks::fgsm(&g, x, y, eps, 0.0, 1.0).unwrap()).collect();
    let noise: Vec<Vec<f32>> =
        xs.iter().enumerate().map(|(i, x)| attacks::random_sign(x, eps, 0.0, 1.0, i as u64).unwrap()).collect();
    for (a, x) in adv.iter().zip(&xs) {
        assert!(a.iter().zip(x).all(|(a, x)| (a - x).abs() <= eps + 1e-6 && (0.0..=1.0).contains(a)));
    }
    let (clean, fgsm, random) = (accuracy(&g, &xs, ys), accuracy(&g, &adv, ys), accuracy(&g, &noise, ys));
    eprintln!("digits_cnn, 100 test samples, eps {eps}: clean {clean:.2}, FGSM {fgsm:.2}, random sign {random:.2}");
    assert!(clean >= 0.9, "clean accuracy {clean}");
    assert!(fgsm < 0.8 && fgsm < clean - 0.15, "FGSM accuracy {fgsm} (clean {clean})");
    assert!(random >= clean - 0.1 && random > fgsm + 0.1, "random-sign accuracy {random}, FGSM {fgsm}");
    // The loss goes up on every attacked sample the model got right.
    for ((x, a), &y) in xs.iter().zip(&adv).zip(ys).take(20) {
        assert!(loss(&g, a, y) >= loss(&g, x, y), "FGSM lowered the loss");
    }
    assert!(attacks::fgsm(&g, &xs[0], ys[0], eps, 1.0, 0.0).is_err());
}

/// The loss-threshold attack on the digits MLP, first 300 training samples (members) vs
/// first 300 test samples (non-members): a well-generalizing model leaks little, but the
/// training samples are not *better* hidden than unseen ones.
#[test]
fn mia_digits_mlp_train_vs_test() {
    let (g, _) = Config::new().lower(&digits().join("digits_mlp/model.onnx")).unwrap();
    let losses = |x: &str, y: &str| -> Vec<f32> {
        let xs = samples(&g, x, 300);
        let ys = labels(y);
        xs.iter().zip(&ys).map(|(x, &y)| attacks::sample_loss(&g, &TensorData::F32(x.clone()), y).unwrap()).collect()
    };
    let (members, nonmembers) = (losses("x_train_flat.npy", "y_train.npy"), losses("x_test_flat.npy", "y_test.npy"));
    let r = attacks::mia(&members, &nonmembers);
    let mean = |v: &[f32]| v.iter().map(|&l| l as f64).sum::<f64>() / v.len() as f64;
    eprintln!(
        "digits_mlp MIA (300 train vs 300 test): AUC {:.4}, advantage {:.4}, mean loss members {:.4}, non-members {:.4}",
        r.auc,
        r.advantage,
        mean(&members),
        mean(&nonmembers)
    );
    assert_eq!((r.members, r.nonmembers), (300, 300));
    assert!(r.auc >= 0.5, "{r:?}");
    // The loss is the gradient's loss.
    let x = samples(&g, "x_test_flat.npy", 1).remove(0);
    let y = labels("y_test.npy")[0];
    assert_eq!(attacks::sample_loss(&g, &TensorData::F32(x.clone()), y).unwrap() as f64, loss(&g, &x, y));
}

/// `sample_loss` on int8 builds of the digits CNN (float I/O, and `--io int8` with int8
/// logits dequantized with their parameters) stays close to the float model's loss.
#[test]
fn sample_loss_int8_builds() {
    let model = digits().join("digits_cnn/model.onnx");
    let (float, _) = Config::new().lower(&model).unwrap();
    let xs = samples(&float, "x_test.npy", 20);
    let ys = labels("y_test.npy");
    let mean_loss = |g: &Graph| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(x, &y)| attacks::sample_loss(g, &TensorData::F32(x.clone()), y).unwrap() as f64)
            .sum::<f64>()
            / xs.len() as f64
    };
    let want = mean_loss(&float);
    for io_int8 in [false, true] {
        let mut cfg = Config::new();
        let options = modelless::int8::Int8Options { io_int8, ..Default::default() };
        cfg.int8 = Some(Int8Config { options, calib: digits().join("data/calib_x.npy") });
        let (g8, _) = cfg.lower(&model).unwrap();
        assert_eq!(g8.ty(g8.outputs[0]).dtype == modelless::ir::DType::I8, io_int8);
        let got = mean_loss(&g8);
        eprintln!("digits_cnn mean loss over 20 test samples: float {want:.4}, int8 (io int8 {io_int8}) {got:.4}");
        assert!((got - want).abs() <= 0.05 + 0.3 * want, "int8 loss {got}, float {want}");
    }
}
