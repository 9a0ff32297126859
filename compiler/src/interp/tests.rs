//! Unit tests of the interpreter on small hand-built graphs, against hand-computed values.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{run, run_all};
use crate::ir::{DType, Graph, Node, Quant, TensorData, TensorType};
use crate::ops::*;

/// A one-node graph whose inputs are constants: `(type, data)` each.
fn graph(op: Op, ins: Vec<(TensorType, TensorData)>) -> Graph {
    let mut g = Graph::default();
    let ids: Vec<_> = ins.into_iter().enumerate().map(|(i, (t, d))| g.add_const(format!("c{i}"), t, d)).collect();
    let tys: Vec<&TensorType> = ids.iter().map(|&v| g.ty(v)).collect();
    let out_ty = op.infer(&tys).unwrap_or_else(|e| panic!("infer: {e}"));
    let y = g.add_value("y", out_ty);
    g.nodes.push(Node { name: "n".into(), onnx_op: op.name().into(), op, inputs: ids, outputs: vec![y] });
    g.outputs.push(y);
    g
}

fn eval(op: Op, ins: Vec<(TensorType, TensorData)>) -> TensorData {
    let g = graph(op, ins);
    run(&g, &[]).unwrap_or_else(|e| panic!("{e}")).remove(0)
}

fn f32s(shape: &[usize], v: &[f32]) -> (TensorType, TensorData) {
    (TensorType::f32(shape.to_vec()), TensorData::F32(v.to_vec()))
}
fn i8s(shape: &[usize], v: &[i8]) -> (TensorType, TensorData) {
    (TensorType::new(DType::I8, shape.to_vec()), TensorData::I8(v.to_vec()))
}
fn u8s(shape: &[usize], v: &[u8]) -> (TensorType, TensorData) {
    (TensorType::new(DType::U8, shape.to_vec()), TensorData::U8(v.to_vec()))
}
fn i32s(shape: &[usize], v: &[i32]) -> (TensorType, TensorData) {
    (TensorType::new(DType::I32, shape.to_vec()), TensorData::I32(v.to_vec()))
}
fn i64s(shape: &[usize], v: &[i64]) -> (TensorType, TensorData) {
    (TensorType::new(DType::I64, shape.to_vec()), TensorData::I64(v.to_vec()))
}

fn per_tensor(scale: f32, zp: i32) -> Quant {
    Quant { scale: vec![scale], zero_point: vec![zp], axis: None }
}

fn conv_geom(kernel: [usize; 2], strides: [usize; 2], dilations: [usize; 2], pads: [usize; 4], group: usize) -> Conv {
    Conv { kernel, strides, dilations, pads, group, act: None }
}

fn pool(kind: PoolKind, k: usize, s: usize, pads: [usize; 4], ceil_mode: bool, count_include_pad: bool) -> Pool {
    Pool { kind, kernel: [k, k], strides: [s, s], dilations: [1, 1], pads, ceil_mode, count_include_pad }
}

// ---- integer ops ----

#[test]
fn quantize_rounds_half_to_even_and_saturates() {
    let x = f32s(&[8], &[2.5, -2.5, 0.5, 1.5, 3.49, 300.0, -300.0, f32::NAN]);
    let y = eval(Op::Quantize(Quantize { q: per_tensor(1.0, 0), to: DType::I8, block: None }), vec![x.clone()]);
    assert_eq!(y, TensorData::I8(vec![2, -2, 0, 2, 3, 127, -128, 0]));
    // uint8 with a zero point: 2.5/0.5 = 5 → 133; saturation at both ends.
    let y = eval(Op::Quantize(Quantize { q: per_tensor(0.5, 128), to: DType::U8, block: None }), vec![x]);
    assert_eq!(y, TensorData::U8(vec![133, 123, 129, 131, 135, 255, 0, 128]));
    // int32 targets use the whole int32 range.
    let y = eval(
        Op::Quantize(Quantize { q: per_tensor(0.001, 0), to: DType::I32, block: None }),
        vec![f32s(&[3], &[1e10, -1e10, 2.0])],
    );
    assert_eq!(y, TensorData::I32(vec![i32::MAX, i32::MIN, 2000]));
}

#[test]
fn quantize_and_dequantize_per_axis() {
    let q = Quant { scale: vec![1.0, 0.5], zero_point: vec![0, 10], axis: Some(1) };
    let x = f32s(&[2, 2, 2], &[1.0, 2.0, 1.0, 2.0, -1.0, -2.0, -1.0, -2.0]);
    let y = eval(Op::Quantize(Quantize { q: q.clone(), to: DType::I8, block: None }), vec![x]);
    assert_eq!(y, TensorData::I8(vec![1, 2, 12, 14, -1, -2, 8, 6]));
    let TensorData::I8(v) = y else { unreachable!() };
    let back = eval(Op::Dequantize(Dequantize { q, block: None }), vec![i8s(&[2, 2, 2], &v)]);
    assert_eq!(back, TensorData::F32(vec![1.0, 2.0, 1.0, 2.0, -1.0, -2.0, -1.0, -2.0]));
}

#[test]
fn dequantize_subtracts_in_int32_then_scales() {
    let y = eval(Op::Dequantize(Dequantize { q: per_tensor(0.5, -1), block: None }), vec![i8s(&[3], &[-128, 0, 127])]);
    assert_eq!(y, TensorData::F32(vec![-63.5, 0.5, 64.0]));
    let y = eval(Op::Dequantize(Dequantize { q: per_tensor(2.0, 128), block: None }), vec![u8s(&[3], &[0, 128, 255])]);
    assert_eq!(y, TensorData::F32(vec![-256.0, 0.0, 254.0]));
    let y =
        eval(Op::Dequantize(Dequantize { q: per_tensor(0.25, 0), block: None }), vec![i32s(&[2], &[1_000_000, -3])]);
    assert_eq!(y, TensorData::F32(vec![250_000.0, -0.75]));
}

/// x = 1..9 (3x3), x_zp = 1, w = ones, bias 10, pads 1: each output is 10 plus the sum of
/// the in-bounds 3x3 neighbourhood of x − 1 = [[0,1,2],[3,4,5],[6,7,8]].
#[test]
fn qconv_single_channel_3x3() {
    let x = i8s(&[1, 1, 3, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let w = i8s(&[1, 1, 3, 3], &[1; 9]);
    let b = i32s(&[1], &[10]);
    let geom = conv_geom([3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 1);
    let raw = QConv { conv: geom.clone(), x_zp: 1, w_zp: vec![0], out: None };
    let acc = eval(Op::QConv(raw), vec![x.clone(), w.clone(), b.clone()]);
    assert_eq!(acc, TensorData::I32(vec![18, 25, 22, 31, 46, 37, 30, 43, 34]));
    // Requantized by 0.5 into zp 3 (ties away from zero: 12.5 → 13, 15.5 → 16, ...).
    let r = Requant::new(&[0.5], 3, DType::I8);
    let q = QConv { conv: geom.clone(), x_zp: 1, w_zp: vec![0], out: Some(r.clone()) };
    let y = eval(Op::QConv(q), vec![x.clone(), w.clone(), b.clone()]);
    assert_eq!(y, TensorData::I8(vec![12, 16, 14, 19, 26, 22, 18, 25, 20]));
    // A fused Relu6-like clamp narrows the output range.
    let mut clamped = r;
    clamped.lo = 15;
    clamped.hi = 20;
    let q = QConv { conv: geom.clone(), x_zp: 1, w_zp: vec![0], out: Some(clamped) };
    let y = eval(Op::QConv(q), vec![x.clone(), w, b]);
    assert_eq!(y, TensorData::I8(vec![15, 16, 15, 19, 20, 20, 18, 20, 20]));
    // A nonzero weight zero point: w − 2 = −1 everywhere, no bias.
    let w = i8s(&[1, 1, 3, 3], &[1; 9]);
    let q = QConv { conv: geom, x_zp: 1, w_zp: vec![2], out: None };
    let y = eval(Op::QConv(q), vec![x, w]);
    assert_eq!(y, TensorData::I32(vec![-8, -15, -12, -21, -36, -27, -20, -33, -24]));
}

/// Integer convolution of small integers equals the float convolution of `x − x_zp` and
/// `w − w_zp[m]` exactly: checks the geometry (groups, strides, dilations, asymmetric pads,
/// per-channel weight zero points) against the float path.
#[test]
fn qconv_matches_float_conv_on_small_integers() {
    for (group, cin, m) in [(1, 3, 4), (2, 4, 4), (4, 4, 8)] {
        let geom = conv_geom([3, 2], [2, 1], [1, 2], [1, 0, 2, 1], group);
        let (h, w) = (7, 6);
        let xv: Vec<u8> = (0..cin * h * w).map(|i| ((i * 37 + 11) % 256) as u8).collect();
        let cg = cin / group;
        let wv: Vec<i8> = (0..m * cg * 6).map(|i| ((i * 53 + 7) % 256) as u8 as i8).collect();
        let w_zp: Vec<i32> = (0..m as i32).map(|c| c * 3 - 5).collect();
        let bias: Vec<i32> = (0..m as i32).map(|c| 1000 * c - 1500).collect();
        let x_zp = 128;
        let q = QConv { conv: geom.clone(), x_zp, w_zp: w_zp.clone(), out: None };
        let got = eval(Op::QConv(q), vec![u8s(&[1, cin, h, w], &xv), i8s(&[m, cg, 3, 2], &wv), i32s(&[m], &bias)]);
        let xf: Vec<f32> = xv.iter().map(|&v| (v as i32 - x_zp) as f32).collect();
        let wf: Vec<f32> = wv.iter().enumerate().map(|(i, &v)| (v as i32 - w_zp[i / (cg * 6)]) as f32).collect();
        let bf: Vec<f32> = bias.iter().map(|&b| b as f32).collect();
        let want = eval(Op::Conv(geom), vec![f32s(&[1, cin, h, w], &xf), f32s(&[m, cg, 3, 2], &wf), f32s(&[m], &bf)]);
        let want: Vec<i32> = want.as_f32().unwrap().iter().map(|&v| v as i32).collect();
        assert_eq!(got, TensorData::I32(want), "group {group}");
    }
}

/// a (2x3, int8, zp 1) @ b (3x2, uint8, zp per column [128, 120]) + bias [5, −5].
#[test]
fn qmatmul_per_column_zero_points_and_bias() {
    let a = i8s(&[2, 3], &[1, 2, 3, -1, 0, 5]); // a − 1 = [[0,1,2],[-2,-1,4]]
    let b = u8s(&[3, 2], &[129, 121, 130, 118, 126, 120]); // b − zp = [[1,1],[2,-2],[-2,0]]
    let bias = i32s(&[2], &[5, -5]);
    let q = QMatMul { a_zp: 1, b_zp: vec![128, 120], out: None };
    let y = eval(Op::QMatMul(q), vec![a.clone(), b.clone(), bias.clone()]);
    // row 0: [0+2-4, 0-2+0] = [-2, -2]; row 1: [-2-2-8, -2+2+0] = [-12, 0]; plus bias.
    assert_eq!(y, TensorData::I32(vec![3, -7, -7, -5]));
    // Per-column requantization: column 0 × 2, column 1 × 0.25, zp 0.
    let r = Requant {
        multiplier: vec![1 << 30, 1 << 30],
        shift: vec![2, -1],
        zero_point: 0,
        lo: -128,
        hi: 127,
        to: DType::I8,
    };
    let q = QMatMul { a_zp: 1, b_zp: vec![128, 120], out: Some(r) };
    let y = eval(Op::QMatMul(q), vec![a, b, bias]);
    // 3·2 = 6, −7/4 = −1.75 → −2, −7·2 = −14, −5/4 = −1.25 → −1.
    assert_eq!(y, TensorData::I8(vec![6, -2, -14, -1]));
}

#[test]
fn qmatmul_broadcasts_batches_like_matmul() {
    let av: Vec<i8> = (0..2 * 3 * 4).map(|i| (i * 7 % 19) as i8 - 9).collect();
    let bv: Vec<i8> = (0..4 * 5).map(|i| (i * 5 % 13) as i8 - 6).collect();
    let q = QMatMul { a_zp: -2, b_zp: vec![3], out: None };
    let got = eval(Op::QMatMul(q), vec![i8s(&[2, 3, 4], &av), i8s(&[4, 5], &bv)]);
    let af: Vec<f32> = av.iter().map(|&v| (v as i32 + 2) as f32).collect();
    let bf: Vec<f32> = bv.iter().map(|&v| (v as i32 - 3) as f32).collect();
    let want = eval(Op::MatMul(MatMul { act: None }), vec![f32s(&[2, 3, 4], &af), f32s(&[4, 5], &bf)]);
    let want: Vec<i32> = want.as_f32().unwrap().iter().map(|&v| v as i32).collect();
    assert_eq!(got, TensorData::I32(want));
}

#[test]
fn qadd_rescales_both_operands() {
    // Both scales 0.5 into 1.0: y = (a + b) / 2.
    let q = QAdd::new(0.5, 0, 0.5, 0, 1.0, 0, DType::I8);
    let y = eval(Op::QAdd(q), vec![i8s(&[5], &[4, -10, 127, -128, 0]), i8s(&[5], &[6, 2, 127, -128, 0])]);
    assert_eq!(y, TensorData::I8(vec![5, -4, 127, -128, 0]));
    // Zero points and different scales: 0.2·(a − 10) + 0.1·(b + 20) into 0.1, zp 5, uint8.
    let q = QAdd::new(0.2, 10, 0.1, -20, 0.1, 5, DType::U8);
    let y = eval(Op::QAdd(q), vec![i8s(&[3], &[10, 20, 0]), i8s(&[3], &[-20, 0, -30])]);
    // 0 → 5; 2 + 2 = 4.0 → 40 + 5; −2 − 1 = −3.0 → −30 + 5 → clamp 0.
    assert_eq!(y, TensorData::U8(vec![5, 45, 0]));
}

#[test]
fn qpool_max_excludes_padding_and_average_sums() {
    // Max 2x2 stride 2 over 4x4: the window maxima, rescaled by 1 with the same zero point.
    let xv: Vec<i8> = vec![1, 5, -3, 2, 0, -7, 8, 4, -1, -2, -3, -4, 9, 6, -5, 10];
    let x = i8s(&[1, 1, 4, 4], &xv);
    let q = QPool {
        pool: pool(PoolKind::Max, 2, 2, [0; 4], false, false),
        x_zp: -2,
        out: Requant::new(&[1.0], -2, DType::I8),
    };
    assert_eq!(eval(Op::QPool(q), vec![x]), TensorData::I8(vec![5, 8, 9, 10]));
    // All-negative input with padding: the padding (x_zp = 0) never wins the max.
    let x = i8s(&[1, 1, 3, 3], &[-100; 9]);
    let q = QPool {
        pool: pool(PoolKind::Max, 2, 2, [1, 1, 0, 0], false, false),
        x_zp: 0,
        out: Requant::new(&[1.0], 0, DType::I8),
    };
    assert_eq!(eval(Op::QPool(q), vec![x]), TensorData::I8(vec![-100; 4]));
    // Average 2x2 over 2x4, x_zp 1: Σ (x − 1) · 1/4 into zp 3.
    let x = u8s(&[1, 1, 2, 4], &[1, 3, 10, 20, 5, 7, 30, 40]);
    let q = QPool {
        pool: pool(PoolKind::Avg, 2, 2, [0; 4], false, false),
        x_zp: 1,
        out: Requant::new(&[0.25], 3, DType::U8),
    };
    // Σ = 0+2+4+6 = 12 → 3 → 6; Σ = 9+19+29+39 = 96 → 24 → 27.
    assert_eq!(eval(Op::QPool(q), vec![x]), TensorData::U8(vec![6, 27]));
}

#[test]
fn qsoftmax_rows_along_any_axis() {
    let s = QSoftmax::new(1, 0.1, 1.0 / 256.0, -128, DType::I8);
    // A uniform row: each 1/3 → (256 + 1.5) / 3 truncated = 85 → −43.
    let y = eval(Op::QSoftmax(s.clone()), vec![i8s(&[1, 3], &[7, 7, 7])]);
    assert_eq!(y, TensorData::I8(vec![-43, -43, -43]));
    // Along axis 0 of a [3, 2]: each column is one row of `QSoftmax::row`.
    let xs = [10, -5, 0, 35, -20, 35];
    let s0 = QSoftmax { axis: 0, ..s };
    let y = eval(Op::QSoftmax(s0.clone()), vec![i8s(&[3, 2], &xs.map(|v| v as i8))]);
    let (mut c0, mut c1) = ([0; 3], [0; 3]);
    s0.row(&[10, 0, -20], &mut c0);
    s0.row(&[-5, 35, 35], &mut c1);
    let want: Vec<i8> = (0..3).flat_map(|i| [c0[i] as i8, c1[i] as i8]).collect();
    assert_eq!(y, TensorData::I8(want));
}

#[test]
fn requantize_rescales_and_clamps() {
    let q = Requantize { x_zp: 10, out: Requant::new(&[2.0], 0, DType::I8) };
    let y = eval(Op::Requantize(q), vec![i8s(&[5], &[10, 80, -60, 11, 9])]);
    assert_eq!(y, TensorData::I8(vec![0, 127, -128, 2, -2]));
    let q = Requantize { x_zp: 0, out: Requant::new(&[0.5], 128, DType::U8) };
    let y = eval(Op::Requantize(q), vec![i8s(&[4], &[-128, 127, 3, -3])]);
    // −64 → 64; 63.5 → 64 → 192; 1.5 → 2 → 130; −1.5 → −1 → 127: `sat_rdhm` (gemmlowp's
    // SaturatingRoundingDoublingHighMul) rounds a negative exact half toward zero.
    assert_eq!(y, TensorData::U8(vec![64, 192, 130, 127]));
}

// ---- float and movement ops ----

#[test]
fn conv_with_bias_stride_and_fused_relu() {
    let x = f32s(&[1, 1, 3, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let w = f32s(&[1, 1, 2, 2], &[1.0, 0.0, 0.0, -1.0]);
    let c = Conv { act: Some(Act::Relu), ..conv_geom([2, 2], [2, 2], [1, 1], [1, 1, 0, 0], 1) };
    // Windows: (-1,-1): -x[0][0] = -1 → 0; (-1,1): x? top row padded → -x[0][2] = -3 → 0;
    // (1,-1): -x[2][0] = -7 → 0 ; (1,1): x[1][1] - x[2][2] = 5 - 9 → 0; bias 10 lifts all.
    let y = eval(Op::Conv(c.clone()), vec![x.clone(), w.clone(), f32s(&[1], &[10.0])]);
    assert_eq!(y, TensorData::F32(vec![9.0, 7.0, 3.0, 6.0]));
    let y = eval(Op::Conv(c), vec![x, w]);
    assert_eq!(y, TensorData::F32(vec![0.0, 0.0, 0.0, 0.0]));
}

#[test]
fn pool_ceil_mode_and_count_include_pad() {
    let x = f32s(&[1, 1, 3, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    // Ceil mode adds a last, partial window: [1,2,4,5], [3,6], [7,8], [9].
    let y = eval(Op::Pool(pool(PoolKind::Avg, 2, 2, [0; 4], true, false)), vec![x.clone()]);
    assert_eq!(y, TensorData::F32(vec![3.0, 4.5, 7.5, 9.0]));
    let y = eval(Op::Pool(pool(PoolKind::Max, 2, 2, [0; 4], true, false)), vec![x.clone()]);
    assert_eq!(y, TensorData::F32(vec![5.0, 6.0, 8.0, 9.0]));
    // Pads [1,1,1,1], kernel 2 stride 2, count_include_pad: windows are divided by 4.
    let y = eval(Op::Pool(pool(PoolKind::Avg, 2, 2, [1, 1, 1, 1], false, true)), vec![x.clone()]);
    assert_eq!(y, TensorData::F32(vec![0.25, 1.25, 2.75, 7.0]));
    let y = eval(Op::Pool(pool(PoolKind::Avg, 2, 2, [1, 1, 1, 1], false, false)), vec![x]);
    assert_eq!(y, TensorData::F32(vec![1.0, 2.5, 5.5, 7.0]));
}

#[test]
fn gemm_transposes_and_broadcasts_c() {
    let a = f32s(&[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]); // Aᵀ = [[1,2,3],[4,5,6]]
    let b = f32s(&[2, 3], &[1.0, 0.0, 1.0, 0.0, 1.0, 1.0]); // Bᵀ = [[1,0],[0,1],[1,1]]
    let g = Gemm { trans_a: true, trans_b: true, alpha: 2.0, beta: 0.5, act: None };
    let y = eval(Op::Gemm(g), vec![a, b, f32s(&[2], &[10.0, 20.0])]);
    // A'B' = [[4,5],[10,11]] → ×2 + [5, 10].
    assert_eq!(y, TensorData::F32(vec![13.0, 20.0, 25.0, 32.0]));
}

#[test]
fn matmul_promotes_1d_operands() {
    let a = f32s(&[3], &[1.0, 2.0, 3.0]);
    let b = f32s(&[2, 3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 0.0, 0.0, 2.0, 0.0, 0.0]);
    let y = eval(Op::MatMul(MatMul { act: None }), vec![a.clone(), b]);
    assert_eq!(y, TensorData::F32(vec![4.0, 5.0, 2.0, 4.0]));
    let m = f32s(&[2, 3], &[1.0, 1.0, 1.0, 0.0, 1.0, -1.0]);
    let y = eval(Op::MatMul(MatMul { act: Some(Act::Relu) }), vec![m, a]);
    assert_eq!(y, TensorData::F32(vec![6.0, 0.0]));
}

#[test]
fn binary_broadcasts_and_compares() {
    let a = f32s(&[2, 1], &[1.0, 5.0]);
    let b = f32s(&[3], &[0.0, 1.0, 6.0]);
    let y = eval(Op::Binary(Binary { kind: BinaryKind::Less, act: None }), vec![a.clone(), b.clone()]);
    assert_eq!(y, TensorData::Bool(vec![false, false, true, false, false, true]));
    let y = eval(Op::Binary(Binary { kind: BinaryKind::Sub, act: Some(Act::Relu) }), vec![a, b]);
    assert_eq!(y, TensorData::F32(vec![1.0, 0.0, 0.0, 5.0, 4.0, 0.0]));
    // int8 arithmetic wraps like the C assignment; Mod follows the divisor's sign.
    let y =
        eval(Op::Binary(Binary { kind: BinaryKind::Add, act: None }), vec![i8s(&[2], &[100, -1]), i8s(&[1], &[100])]);
    assert_eq!(y, TensorData::I8(vec![-56, 99]));
    let m = Binary { kind: BinaryKind::Mod { fmod: false }, act: None };
    let y = eval(Op::Binary(m), vec![i64s(&[2], &[-7, 7]), i64s(&[2], &[3, -3])]);
    assert_eq!(y, TensorData::I64(vec![2, -2]));
}

#[test]
fn movement_ops() {
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = eval(Op::Transpose(Transpose { perm: vec![1, 0] }), vec![x.clone()]);
    assert_eq!(y, TensorData::F32(vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
    let y = eval(Op::Concat(Concat { axis: 1 }), vec![x.clone(), f32s(&[2, 1], &[7.0, 8.0])]);
    assert_eq!(y, TensorData::F32(vec![1.0, 2.0, 3.0, 7.0, 4.0, 5.0, 6.0, 8.0]));
    let p = Pad { pads: vec![0, 2, 0, 1], mode: PadMode::Reflect, value: 0.0 };
    let y = eval(Op::Pad(p), vec![x.clone()]);
    assert_eq!(y, TensorData::F32(vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 6.0, 5.0, 4.0, 5.0, 6.0, 5.0]));
    // Wrap: longer than the axis, so the row repeats more than once.
    let p = Pad { pads: vec![0, 4, 0, 1], mode: PadMode::Wrap, value: 0.0 };
    let y = eval(Op::Pad(p), vec![x.clone()]);
    let row = |r: [f32; 3]| [r[2], r[0], r[1], r[2], r[0], r[1], r[2], r[0]];
    assert_eq!(y, TensorData::F32([row([1.0, 2.0, 3.0]), row([4.0, 5.0, 6.0])].concat()));
    let p = Pad { pads: vec![1, 0], mode: PadMode::Constant, value: -1.0 };
    let y = eval(Op::Pad(p), vec![i8s(&[2], &[3, 4])]);
    assert_eq!(y, TensorData::I8(vec![-1, 3, 4]));
    let y = eval(Op::Gather(Gather { axis: 1 }), vec![x.clone(), i64s(&[2], &[-1, 0])]);
    assert_eq!(y, TensorData::F32(vec![3.0, 1.0, 6.0, 4.0]));
    let y = eval(Op::GatherElements(GatherElements { axis: 1 }), vec![x.clone(), i64s(&[2, 1], &[2, 0])]);
    assert_eq!(y, TensorData::F32(vec![3.0, 4.0]));
    let c = (TensorType::new(DType::Bool, vec![1, 3]), TensorData::Bool(vec![true, false, true]));
    let y = eval(Op::Where, vec![c, x.clone(), f32s(&[1], &[0.0])]);
    assert_eq!(y, TensorData::F32(vec![1.0, 0.0, 3.0, 4.0, 0.0, 6.0]));
    let y = eval(Op::Cast(Cast::to(DType::I8)), vec![f32s(&[3], &[-1.7, 2.9, 0.0])]);
    assert_eq!(y, TensorData::I8(vec![-1, 2, 0]));
    let y = eval(Op::Reduce(Reduce { kind: ReduceKind::Sum, axes: vec![0], keepdims: false }), vec![x.clone()]);
    assert_eq!(y, TensorData::F32(vec![5.0, 7.0, 9.0]));
    let a = ArgReduce { max: true, axis: 1, keepdims: false, select_last: false };
    let y = eval(Op::ArgReduce(a), vec![i32s(&[2, 3], &[1, 9, 9, 7, 2, 3])]);
    assert_eq!(y, TensorData::I64(vec![1, 0]));
    let y = eval(Op::Softmax(Softmax { axis: 1, log: false }), vec![f32s(&[1, 2], &[0.0, 0.0])]);
    assert_eq!(y, TensorData::F32(vec![0.5, 0.5]));
}

#[test]
fn run_all_returns_constants_inputs_and_intermediates() {
    let mut g = Graph::default();
    let x = g.add_value("x", TensorType::f32(vec![2]));
    let k = g.add_const("k", TensorType::f32(vec![1]), TensorData::F32(vec![3.0]));
    let t = g.add_value("t", TensorType::f32(vec![2]));
    let y = g.add_value("y", TensorType::new(DType::I8, vec![2]));
    let unused = g.add_value("unused", TensorType::f32(vec![1]));
    g.inputs.push(x);
    let mul = Op::Binary(Binary { kind: BinaryKind::Mul, act: None });
    g.nodes.push(Node { name: "mul".into(), onnx_op: "Mul".into(), op: mul, inputs: vec![x, k], outputs: vec![t] });
    let q = Op::Quantize(Quantize { q: per_tensor(0.5, 0), to: DType::I8, block: None });
    g.nodes.push(Node { name: "q".into(), onnx_op: "QuantizeLinear".into(), op: q, inputs: vec![t], outputs: vec![y] });
    g.outputs.push(y);
    let all = run_all(&g, &[TensorData::F32(vec![1.0, -0.25])]).unwrap();
    assert_eq!(all[x.0], Some(TensorData::F32(vec![1.0, -0.25])));
    assert_eq!(all[k.0], Some(TensorData::F32(vec![3.0])));
    assert_eq!(all[t.0], Some(TensorData::F32(vec![3.0, -0.75])));
    assert_eq!(all[y.0], Some(TensorData::I8(vec![6, -2])));
    assert_eq!(all[unused.0], None);
    assert!(run(&g, &[TensorData::I8(vec![1, 2])]).unwrap_err().contains("must be f32, got i8"));
    assert!(run(&g, &[TensorData::F32(vec![1.0])]).unwrap_err().contains("needs 2 elements, got 1"));
}

#[test]
fn unsupported_forms_name_the_node_and_op() {
    let add = Op::Binary(Binary { kind: BinaryKind::Add, act: Some(Act::Relu) });
    let g = graph(add, vec![i32s(&[1], &[1]), i32s(&[1], &[2])]);
    let err = run(&g, &[]).unwrap_err();
    assert_eq!(err, "the simulator does not evaluate Add with a fused activation on i32 (node \"n\") yet");
    // Malformed parameters are errors, not panics.
    let bad = Requant { multiplier: vec![], shift: vec![], zero_point: 0, lo: -128, hi: 127, to: DType::I8 };
    let mut g =
        graph(Op::Requantize(Requantize { x_zp: 0, out: Requant::new(&[1.0], 0, DType::I8) }), vec![i8s(&[1], &[1])]);
    g.nodes[0].op = Op::Requantize(Requantize { x_zp: 0, out: bad });
    let err = run(&g, &[]).unwrap_err();
    assert!(err.contains("node \"n\""), "{err}");
}

/// The size the calibration runs must stay fast on: a 100 → 100 channel 3x3 convolution over
/// 96x96, float and int8. Run with `cargo test --release -- --ignored interp::tests::big`.
#[test]
#[ignore = "timing; meaningful in release builds only"]
fn big_conv_runs_in_well_under_a_second() {
    let (c, hw) = (100, 96);
    let geom = conv_geom([3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 1);
    let xf: Vec<f32> = (0..c * hw * hw).map(|i| (i % 17) as f32 * 0.1).collect();
    let wf: Vec<f32> = (0..c * c * 9).map(|i| (i % 13) as f32 * 0.01).collect();
    let start = std::time::Instant::now();
    let y = eval(Op::Conv(geom.clone()), vec![f32s(&[1, c, hw, hw], &xf), f32s(&[c, c, 3, 3], &wf)]);
    let float_time = start.elapsed();
    assert_eq!(y.len(), c * hw * hw);
    let xq: Vec<i8> = (0..c * hw * hw).map(|i| (i % 17) as i8).collect();
    let wq: Vec<i8> = (0..c * c * 9).map(|i| (i % 13) as i8 - 6).collect();
    let q = QConv { conv: geom, x_zp: 3, w_zp: vec![0], out: Some(Requant::new(&[0.001], 0, DType::I8)) };
    let start = std::time::Instant::now();
    let y = eval(Op::QConv(q), vec![i8s(&[1, c, hw, hw], &xq), i8s(&[c, c, 3, 3], &wq)]);
    let int_time = start.elapsed();
    assert_eq!(y.len(), c * hw * hw);
    eprintln!("float {float_time:?}, int8 {int_time:?}");
    assert!(float_time.as_secs_f64() < 1.0 && int_time.as_secs_f64() < 1.0);
}

#[test]
fn topk_selects_stable_best_first() {
    let x = f32s(&[2, 4], &[1.0, 3.0, 3.0, 2.0, 5.0, 4.0, 6.0, 4.0]);
    let tk = |k, axis, largest, indices| Op::TopK(TopK { k, axis, largest, sorted: true, indices });
    assert_eq!(eval(tk(2, 1, true, false), vec![x.clone()]), TensorData::F32(vec![3.0, 3.0, 6.0, 5.0]));
    assert_eq!(eval(tk(2, 1, true, true), vec![x.clone()]), TensorData::I64(vec![1, 2, 2, 0]));
    assert_eq!(eval(tk(3, 1, false, true), vec![x.clone()]), TensorData::I64(vec![0, 3, 1, 1, 3, 0]));
    assert_eq!(eval(tk(1, 0, true, true), vec![x]), TensorData::I64(vec![1, 1, 1, 1]));
    let y = eval(tk(2, 0, false, false), vec![i8s(&[3, 2], &[4, -1, -2, 7, 0, -1])]);
    assert_eq!(y, TensorData::I8(vec![-2, -1, 0, -1]));
}

// ---- float64 ----

fn f64s(shape: &[usize], v: &[f64]) -> (TensorType, TensorData) {
    (TensorType::new(DType::F64, shape.to_vec()), TensorData::F64(v.to_vec()))
}

#[test]
fn float64_softmax_exp_and_fmod() {
    let y = eval(Op::Softmax(Softmax { axis: 1, log: false }), vec![f64s(&[1, 2], &[0.0, 2f64.ln()])]);
    let TensorData::F64(v) = y else { panic!("softmax of f64 gave {y:?}") };
    assert!((v[0] - 1.0 / 3.0).abs() < 1e-15 && (v[1] - 2.0 / 3.0).abs() < 1e-15);
    let y = eval(Op::Softmax(Softmax { axis: 1, log: true }), vec![f64s(&[1, 2], &[1.0, 1.0])]);
    assert_eq!(y, TensorData::F64(vec![-(2f64.ln()); 2]));
    assert_eq!(eval(Op::Activation(Act::Exp), vec![f64s(&[1], &[1.0])]), TensorData::F64(vec![1f64.exp()]));
    let m = Op::Binary(Binary { kind: BinaryKind::Mod { fmod: true }, act: None });
    assert_eq!(eval(m, vec![f64s(&[2], &[-7.5, 7.5]), f64s(&[2], &[2.0, -2.0])]), TensorData::F64(vec![-1.5, 1.5]));
    assert!(Act::Tanh.helper64().is_none() && !Op::Activation(Act::Tanh).float_kernel_for(DType::F64));
}

/// Blocked quantization (opset 21): the parameter of element `[o, a, i]` is
/// `[o, a / block, i]` of the shortened parameter tensor, also when the block does not divide
/// the axis.
#[test]
fn blocked_quantize_and_dequantize() {
    let (shape, block) = ([2usize, 5, 3], 2usize);
    let nb = 5usize.div_ceil(block);
    let scale: Vec<f32> = (0..2 * nb * 3).map(|k| 0.5 + k as f32 * 0.25).collect();
    let zp: Vec<i32> = (0..2 * nb * 3).map(|k| k as i32 - 4).collect();
    let q = Quant { scale: scale.clone(), zero_point: zp.clone(), axis: Some(1) };
    let n = shape.iter().product::<usize>();
    let x: Vec<f32> = (0..n).map(|i| (i as f32 * 1.7).sin() * 9.0).collect();
    let y = eval(Op::Quantize(Quantize { q: q.clone(), to: DType::I8, block: Some(block) }), vec![f32s(&shape, &x)]);
    let TensorData::I8(y) = y else { panic!("quantize gave {y:?}") };
    for (flat, &v) in y.iter().enumerate() {
        let (o, a, i) = (flat / 15, flat / 3 % 5, flat % 3);
        let k = (o * nb + a / block) * 3 + i;
        assert_eq!(v as i32, modelless_rt::quantize(x[flat], scale[k], zp[k], -128, 127), "element {flat}");
    }
    let back = eval(Op::Dequantize(Dequantize { q, block: Some(block) }), vec![i8s(&shape, &y)]);
    let TensorData::F32(back) = back else { panic!("dequantize gave {back:?}") };
    for (flat, &v) in back.iter().enumerate() {
        let k = (flat / 15 * nb + flat / 3 % 5 / block) * 3 + flat % 3;
        assert_eq!(v, (y[flat] as i32 - zp[k]) as f32 * scale[k], "element {flat}");
    }
    let bad = Quant { scale: vec![1.0; 5], zero_point: vec![0; 5], axis: Some(1) };
    assert!(ParamLayout::of(&bad, Some(2), &shape).is_err());
}

/// One Resize of a 1×1×H×W input with the same spec on both spatial axes.
fn resize_2d(x: Vec<f32>, hw: usize, out: usize, spec: impl Fn(usize, usize) -> AxisSpec) -> TensorData {
    let maps = vec![None, None, Some(spec(hw, out).map()), Some(spec(hw, out).map())];
    let op = Op::Resize(Resize { shape: vec![1, 1, out, out], maps, extrapolation: -1.0 });
    eval(op, vec![f32s(&[1, 1, hw, hw], &x)])
}

#[test]
fn resize_linear_antialias_matches_onnx() {
    // ONNX test_resize_downsample_scales_linear_antialias: 4×4 → 2×2 at scale 0.6.
    let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
    let spec = |len_in, len_out| AxisSpec {
        len_in,
        len_out,
        scale: 0.6f32 as f64,
        coord: CoordMode::HalfPixel,
        filter: Filter::Linear,
        antialias: true,
        exclude_outside: false,
    };
    let TensorData::F32(y) = resize_2d(x, 4, 2, spec) else { panic!("float output") };
    for (a, b) in y.iter().zip([2.875f32, 4.5, 9.375, 11.0]) {
        assert!((a - b).abs() < 1e-5, "{y:?}");
    }
}

#[test]
fn resize_crop_extrapolates_outside_the_roi() {
    // ONNX test_resize_tf_crop_and_resize_extrapolation_value on the last axis: roi
    // 0.6..1.7 of a 4-wide input sampled at 3 points; the last two fall outside.
    let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
    let spec = |len_in, len_out| AxisSpec {
        len_in,
        len_out,
        scale: 0.75,
        coord: CoordMode::TfCropAndResize(0.6f32 as f64, 1.7f32 as f64),
        filter: Filter::Linear,
        antialias: false,
        exclude_outside: false,
    };
    let TensorData::F32(y) = resize_2d(x, 4, 3, spec) else { panic!("float output") };
    // Row and column 0 sample 1.8: 4·1.8 + 1.8 + 1 = 10; the rest is the extrapolation
    // value (1.8 + 1.65 = 3.45 > 3 on either axis).
    assert!((y[0] - 10.0).abs() < 1e-4, "{y:?}");
    assert!(y[1..].iter().all(|&v| v == -1.0), "{y:?}");
}
