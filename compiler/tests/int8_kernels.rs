//! The integer kernels (`ops::quant`) of both backends on hand-built IR graphs: the C and
//! the Rust output must equal, bit for bit, a straightforward reference built on the
//! compiler's own definitions (`Requant::apply`, `QAdd::apply`, `QSoftmax::row`,
//! `modelless_rt::quantize`). Also: the generated Rust is `no_std` and clippy-clean, the
//! generated C strict C99.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelless::ir::{DType, Graph, Node, Quant, TensorData, TensorType, ValueId};
use modelless::ops::{Conv, Dequantize, Op, Pool, PoolKind, QAdd, QConv, QMatMul, QPool, QSoftmax, Quantize, Requant};
use modelless::target::TargetDesc;
use modelless::toolchain::{IoSig, build_c, build_rust};
use modelless::{Config, Lang};
use std::process::Command;

/// A deterministic LCG.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    /// `n` values in `[lo, hi]`.
    fn ints(&mut self, n: usize, lo: i32, hi: i32) -> Vec<i32> {
        (0..n).map(|_| lo + (self.next() % (hi - lo + 1) as u32) as i32).collect()
    }
    fn range(&mut self, n: usize, dt: DType) -> Vec<i32> {
        match dt {
            DType::I8 => self.ints(n, -128, 127),
            DType::U8 => self.ints(n, 0, 255),
            _ => self.ints(n, -100_000, 100_000),
        }
    }
}

fn data(dt: DType, v: &[i32]) -> TensorData {
    match dt {
        DType::I8 => TensorData::I8(v.iter().map(|&x| x as i8).collect()),
        DType::U8 => TensorData::U8(v.iter().map(|&x| x as u8).collect()),
        DType::I32 => TensorData::I32(v.to_vec()),
        _ => unreachable!(),
    }
}

fn bytes(dt: DType, v: &[i32]) -> Vec<u8> {
    match dt {
        DType::I8 => v.iter().map(|&x| x as i8 as u8).collect(),
        DType::U8 => v.iter().map(|&x| x as u8).collect(),
        DType::I32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        _ => unreachable!(),
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A graph under construction with one output.
#[derive(Default)]
struct G {
    g: Graph,
    inputs: Vec<Vec<u8>>,
}

impl G {
    fn input(&mut self, dt: DType, shape: &[usize], raw: Vec<u8>) -> ValueId {
        let v = self.g.add_value(format!("in{}", self.g.inputs.len()), TensorType::new(dt, shape.to_vec()));
        self.g.inputs.push(v);
        self.inputs.push(raw);
        v
    }

    fn int_input(&mut self, dt: DType, shape: &[usize], v: &[i32]) -> ValueId {
        self.input(dt, shape, bytes(dt, v))
    }

    fn konst(&mut self, dt: DType, shape: &[usize], v: &[i32]) -> ValueId {
        let name = format!("c{}", self.g.values.len());
        self.g.add_const(name, TensorType::new(dt, shape.to_vec()), data(dt, v))
    }

    /// Adds a node inside the graph and returns its output.
    fn node(&mut self, op: Op, inputs: Vec<ValueId>) -> ValueId {
        let tys: Vec<&TensorType> = inputs.iter().map(|&v| self.g.ty(v)).collect();
        let t = op.infer(&tys).unwrap();
        let y = self.g.add_value(format!("v{}", self.g.values.len()), t);
        let name = format!("n{}", self.g.nodes.len() + 1);
        self.g.nodes.push(Node { name, onnx_op: op.name().into(), op, inputs, outputs: vec![y] });
        y
    }

    /// Adds the node and makes its output the graph output.
    fn finish(mut self, op: Op, inputs: Vec<ValueId>) -> (Graph, Vec<Vec<u8>>) {
        let tys: Vec<&TensorType> = inputs.iter().map(|&v| self.g.ty(v)).collect();
        let t = op.infer(&tys).unwrap();
        let y = self.g.add_value("y", t);
        self.g.nodes.push(Node { name: "n0".into(), onnx_op: op.name().into(), op, inputs, outputs: vec![y] });
        self.g.outputs.push(y);
        (self.g, self.inputs)
    }
}

/// Compiles `g` with both backends, runs both on `inputs` and asserts both outputs equal
/// `want` byte for byte.
fn check(name: &str, (g, inputs): (Graph, Vec<Vec<u8>>), want: Vec<u8>) {
    let target = TargetDesc::host();
    let sig = IoSig::of(&g);
    for lang in [Lang::C, Lang::Rust] {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::new().lang(lang).compile_graph(g.clone(), name).unwrap();
        let h = match lang {
            Lang::C => build_c(dir.path(), name, &c.files, &sig, &target, &["-Wshadow", "-Wstrict-prototypes"]),
            Lang::Rust => build_rust(dir.path(), name, &c.files, &sig, &target),
        }
        .unwrap_or_else(|e| panic!("{name} {lang:?}: {e}"));
        let got = h.run_bytes(std::slice::from_ref(&inputs)).unwrap().remove(0).remove(0);
        assert_eq!(got.len(), want.len(), "{name} {lang:?}: output length");
        if got != want {
            let diff: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).take(10).collect();
            panic!("{name} {lang:?}: output differs from the reference at bytes {diff:?}");
        }
    }
}

/// The C code generated for x86_64-avx512 (byte-quad kernels, `mlrt_dot4`), built with the
/// host's flags (the helpers' portable paths) and, where the host has AVX-512 VNNI, with the
/// target's own (VPDPBUSD): both must equal `want`; `marker` must be in the code.
fn check_quads(name: &str, (g, inputs): (Graph, Vec<Vec<u8>>), want: Vec<u8>, marker: &str) {
    let quads = TargetDesc::load("x86_64-avx512").unwrap();
    let c = Config::new().lang(Lang::C).target(quads.clone()).compile_graph(g.clone(), name).unwrap();
    assert!(c.files.iter().any(|f| f.contents.contains(marker)), "{name}: no `{marker}` in the code");
    let vnni = std::arch::is_x86_feature_detected!("avx512vnni") && std::arch::is_x86_feature_detected!("avx512vl");
    let mut builds = vec![TargetDesc::host()];
    if vnni {
        builds.push(quads);
    }
    for target in builds {
        let dir = tempfile::tempdir().unwrap();
        let h = build_c(dir.path(), name, &c.files, &IoSig::of(&g), &target, &["-Wshadow"])
            .unwrap_or_else(|e| panic!("{name} on {}: {e}", target.name));
        let got = h.run_bytes(std::slice::from_ref(&inputs)).unwrap().remove(0).remove(0);
        if got != want {
            let diff: Vec<usize> = (0..got.len().min(want.len())).filter(|&i| got[i] != want[i]).take(10).collect();
            panic!("{name} on {}: output differs from the reference at bytes {diff:?}", target.name);
        }
    }
}

/// Dense int8 convolutions over byte quads (x86_64-avx512): channel quads with a partial
/// last quad, stride 2 with both column phases, uint8, and single-channel tap quads. The
/// same cases in Rust run the channel-pair kernel (an odd last channel, 16 and 8 lanes,
/// strided and border tiles, uint8) through the AVX2 helpers.
#[test]
fn qconv_byte_quads() {
    // (seed, input type, [ci, h, w], m, kernel, stride, dilation, pads, marker)
    type Case = (u64, DType, [usize; 3], usize, [usize; 2], usize, usize, [usize; 4], &'static str);
    let cases: [Case; 6] = [
        (21, DType::I8, [7, 9, 20], 16, [3, 3], 1, 1, [1, 1, 1, 1], ", zrow, 0x80);"),
        (22, DType::U8, [6, 11, 40], 8, [3, 3], 2, 1, [1, 1, 1, 1], "mlrt_quad16_s2(e1"),
        (23, DType::I8, [1, 15, 64], 16, [5, 3], 2, 1, [2, 1, 2, 1], "e1[4 * q + 3]"),
        (24, DType::I8, [1, 12, 19], 8, [3, 5], 1, 2, [0, 2, 1, 3], "e0[4 * q + 3]"),
        // Wide vectors (16 pixels): a flattened 1×1 plane of 100 in rows of 16, 16 × 1 tiles;
        // 24 output channels in 16 × 1 tiles over rows of 37 (masked tails).
        (25, DType::I8, [8, 10, 10], 16, [1, 1], 1, 1, [0, 0, 0, 0], "mlrt_dot4q16(a150"),
        (26, DType::U8, [5, 6, 37], 24, [3, 3], 1, 1, [1, 1, 1, 1], "if (oc < 24) { { const int nv = left < 16"),
    ];
    for (seed, dt, [ci, h, wd], m, kernel, stride, dil, pads, marker) in cases {
        let (case, want) = dense_case(seed, dt, [ci, h, wd], m, kernel, stride, dil, pads).build();
        // The Rust kernel runs on int16 channel pairs (`core::arch` helpers) from 2 channels.
        let rust = Config::new().lang(Lang::Rust).compile_graph(case.0.clone(), "pairs").unwrap();
        let pairs =
            rust.files.iter().any(|f| f.contents.contains("rt::mac_pairs4(") && f.contents.contains("rt::requant8("));
        assert_eq!(pairs, ci >= 2, "qconv_pairs{seed}: Rust channel-pair kernel");
        check(&format!("qconv_pairs{seed}"), (case.0.clone(), case.1.clone()), want.clone());
        check_quads(&format!("qconv_quads{seed}"), case, want, marker);
    }
}

/// The dense cases of [`qconv_byte_quads`] and [`qconv_channel_lane_byte_quads`].
#[allow(clippy::too_many_arguments)]
fn dense_case(
    seed: u64,
    dt: DType,
    [ci, h, wd]: [usize; 3],
    m: usize,
    kernel: [usize; 2],
    stride: usize,
    dil: usize,
    pads: [usize; 4],
) -> QConvCase {
    let u8 = dt == DType::U8;
    QConvCase {
        seed,
        dt,
        xs: [1, ci, h, wd],
        m,
        kernel,
        stride,
        dil: [dil, dil],
        pads,
        group: 1,
        w: (-120, 120),
        bias: 5000,
        w_zp: 5,
        x_zp: if u8 { 140 } else { -9 },
        scale: (0.0002, 0.0001),
        y_zp: if u8 { 128 } else { -4 },
    }
}

/// Dense int8 of few input channels with lanes across output channels, over byte quads
/// (x86_64-avx512, `conv_channel_quads.rs`): KWS-like 10×4 stride 2, RGB-like 3×3, a kernel
/// wider than one quad, uint8, a pixel tail.
#[test]
fn qconv_channel_lane_byte_quads() {
    type Case = (u64, DType, [usize; 3], usize, [usize; 2], usize, [usize; 4]);
    let cases: [Case; 3] = [
        (61, DType::I8, [1, 15, 10], 16, [10, 4], 2, [4, 1, 5, 1]),
        (62, DType::U8, [3, 6, 5], 8, [3, 3], 1, [1, 1, 1, 1]),
        (63, DType::I8, [2, 7, 9], 24, [2, 6], 1, [0, 2, 1, 2]),
    ];
    for (seed, dt, [ci, h, wd], m, kernel, stride, pads) in cases {
        let (case, want) = dense_case(seed, dt, [ci, h, wd], m, kernel, stride, 1, pads).build();
        check_quads(&format!("qconv_cq{seed}"), case, want, "mlrt_dot4_bcast(");
    }
}

/// Depthwise int8 over byte quads (x86_64-avx512, `dw_quads.rs`): wide and short rows,
/// stride 2, dilation, kernels of 1 to 4 columns, padding with a nonzero zero point.
#[test]
fn qconv_depthwise_byte_quads() {
    for (seed, dt, [c, h, wd], kernel, stride, dil, pads) in [
        (41, DType::I8, [8, 9, 37], [3, 3], 1, [1, 1], [1, 1, 1, 1]),
        (42, DType::U8, [4, 11, 40], [3, 3], 2, [1, 1], [0, 1, 1, 1]),
        (43, DType::I8, [3, 7, 21], [2, 4], 1, [2, 2], [1, 3, 2, 2]),
        (44, DType::I8, [5, 6, 17], [5, 1], 2, [1, 1], [2, 0, 2, 0]),
    ] {
        let (case, want) = depthwise_case(seed, dt, [c, h, wd], kernel, stride, dil, pads, (-120, 120)).build();
        check_quads(&format!("qconv_dwq{seed}"), case, want, "mlrt_dot4x16(a, quads");
    }
}

/// The depthwise cases of [`qconv_depthwise_byte_quads`] and [`qconv_depthwise_pixel_lanes`].
#[allow(clippy::too_many_arguments)]
fn depthwise_case(
    seed: u64,
    dt: DType,
    [c, h, wd]: [usize; 3],
    kernel: [usize; 2],
    stride: usize,
    dil: [usize; 2],
    pads: [usize; 4],
    w: (i32, i32),
) -> QConvCase {
    let u8 = dt == DType::U8;
    QConvCase {
        seed,
        dt,
        xs: [1, c, h, wd],
        m: c,
        kernel,
        stride,
        dil,
        pads,
        group: c,
        w,
        bias: 3000,
        w_zp: 3,
        x_zp: if u8 { 125 } else { 6 },
        scale: (0.0005, 0.0002),
        y_zp: if u8 { 130 } else { -2 },
    }
}

/// A random requantized int8 QConv with bias (drawn in this order from `Lcg(seed)`: input,
/// weights, bias, per-channel weight zero points) and the reference's output bytes.
struct QConvCase {
    seed: u64,
    dt: DType,
    xs: [usize; 4],
    m: usize,
    kernel: [usize; 2],
    stride: usize,
    dil: [usize; 2],
    pads: [usize; 4],
    group: usize,
    /// Weight value range, bias magnitude, weight zero point magnitude.
    w: (i32, i32),
    bias: i32,
    w_zp: i32,
    x_zp: i32,
    /// Output scale of channel `i`: `base + step · i`; output zero point.
    scale: (f64, f64),
    y_zp: i32,
}

impl QConvCase {
    fn build(&self) -> ((Graph, Vec<Vec<u8>>), Vec<u8>) {
        let (dt, xs, m, kernel) = (self.dt, self.xs, self.m, self.kernel);
        let mut r = Lcg(self.seed);
        let cg = xs[1] / self.group;
        let x = r.range(xs.iter().product(), dt);
        let w = r.ints(m * cg * kernel[0] * kernel[1], self.w.0, self.w.1);
        let bias = r.ints(m, -self.bias, self.bias);
        let geom = conv(kernel, [self.stride, self.stride], self.dil, self.pads, self.group);
        let w_zp = r.ints(m, -self.w_zp, self.w_zp);
        let scales: Vec<f64> = (0..m).map(|i| self.scale.0 + self.scale.1 * i as f64).collect();
        let out = Requant::new(&scales, self.y_zp, dt);
        let (acc, [_, _, oh, ow]) = conv_ref(&x, xs, &w, m, Some(&bias), &geom, self.x_zp, &w_zp);
        let want = requant_all(&out, &acc, |i| (i / (oh * ow)) % m);
        let mut b = G::default();
        let xv = b.int_input(dt, &xs, &x);
        let wv = b.konst(DType::I8, &[m, cg, kernel[0], kernel[1]], &w);
        let bv = b.konst(DType::I32, &[m], &bias);
        let op = Op::QConv(QConv { conv: geom, x_zp: self.x_zp, w_zp, out: Some(out) });
        (b.finish(op, vec![xv, wv, bv]), bytes(dt, &want))
    }
}

/// Asserts that the C code generated for x86_64 from `case` contains every marker.
fn assert_uses(case: &(Graph, Vec<Vec<u8>>), markers: &[&str], what: &str) {
    let c = Config::new().lang(Lang::C).compile_graph(case.0.clone(), "uses").unwrap();
    assert!(markers.iter().all(|m| c.files.iter().any(|f| f.contents.contains(m))), "{what}: the kernel was not used");
}

/// Reference integer convolution: int32 accumulators `[N,M,OH,OW]`.
#[allow(clippy::too_many_arguments)]
fn conv_ref(
    x: &[i32],
    xs: [usize; 4],
    w: &[i32],
    m: usize,
    bias: Option<&[i32]>,
    c: &Conv,
    x_zp: i32,
    w_zp: &[i32],
) -> (Vec<i32>, [usize; 4]) {
    let [nb, ci, h, wd] = xs;
    let cg = ci / c.group;
    let mg = m / c.group;
    let [kh, kw] = c.kernel;
    let oh = (h + c.pads[0] + c.pads[2] - c.dilations[0] * (kh - 1) - 1) / c.strides[0] + 1;
    let ow = (wd + c.pads[1] + c.pads[3] - c.dilations[1] * (kw - 1) - 1) / c.strides[1] + 1;
    let mut y = vec![];
    for n in 0..nb {
        for oc in 0..m {
            let g = oc / mg;
            let wz = w_zp[if w_zp.len() == 1 { 0 } else { oc }];
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0, |b| b[oc]);
                    for ic in 0..cg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * c.strides[0] + ky * c.dilations[0]) as isize - c.pads[0] as isize;
                                let ix = (ox * c.strides[1] + kx * c.dilations[1]) as isize - c.pads[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x[((n * ci + g * cg + ic) * h + iy as usize) * wd + ix as usize];
                                let wv = w[((oc * cg + ic) * kh + ky) * kw + kx];
                                acc += (xv - x_zp) * (wv - wz);
                            }
                        }
                    }
                    y.push(acc);
                }
            }
        }
    }
    (y, [nb, m, oh, ow])
}

fn conv(kernel: [usize; 2], strides: [usize; 2], dilations: [usize; 2], pads: [usize; 4], group: usize) -> Conv {
    Conv { kernel, strides, dilations, pads, group, act: None }
}

fn requant_all(r: &Requant, acc: &[i32], channel_of: impl Fn(usize) -> usize) -> Vec<i32> {
    acc.iter().enumerate().map(|(i, &a)| r.apply(a, channel_of(i))).collect()
}

#[test]
fn qconv_int8_per_channel_requant_pad_stride2() {
    let mut r = Lcg(1);
    let (xs, m) = ([1, 3, 7, 7], 4);
    let x = r.range(147, DType::I8);
    let w = r.range(4 * 3 * 9, DType::I8);
    let bias = r.ints(4, -2000, 2000);
    let geom = conv([3, 3], [2, 2], [1, 1], [1, 1, 1, 1], 1);
    let w_zp = vec![0, 1, -2, 3];
    let out = Requant::new(&[0.0021, 0.0013, 0.004, 0.0009], 7, DType::I8);
    let (acc, _) = conv_ref(&x, xs, &w, m, Some(&bias), &geom, -5, &w_zp);
    let want = requant_all(&out, &acc, |i| (i / 16) % 4);
    let mut b = G::default();
    let xv = b.int_input(DType::I8, &xs, &x);
    let wv = b.konst(DType::I8, &[4, 3, 3, 3], &w);
    let bv = b.konst(DType::I32, &[4], &bias);
    let op = Op::QConv(QConv { conv: geom, x_zp: -5, w_zp, out: Some(out) });
    check("qconv_s2", b.finish(op, vec![xv, wv, bv]), bytes(DType::I8, &want));
}

/// Asserts whether the Rust depthwise kernel of `case` runs over a padded stack plane
/// (short rows) with the vector requantization.
fn assert_rust_plane_depthwise(case: &(Graph, Vec<Vec<u8>>), plane: bool) {
    let rust = Config::new().lang(Lang::Rust).compile_graph(case.0.clone(), "dw").unwrap();
    let code: String = rust.files.iter().map(|f| f.contents.as_str()).collect();
    assert_eq!(code.contains("let mut xp = [0i32;") && code.contains("rt::requant8_"), plane, "Rust plane depthwise");
}

/// Rust depthwise of short rows over a padded plane: int8 with bias, asymmetric padding,
/// a per-tensor weight zero point; and rows too wide for it (the row kernel, requantizing
/// 8 outputs at a time and a tail of 5).
#[test]
fn qconv_depthwise_short_rows_plane() {
    for (seed, [c, h, wd], pads, plane) in [
        (71, [5, 6, 9], [0, 1, 2, 1], true),
        (72, [3, 4, 5], [1, 0, 0, 2], true),
        (73, [2, 3, 21], [1, 1, 1, 1], false),
    ] {
        let (case, want) = depthwise_case(seed, DType::I8, [c, h, wd], [3, 3], 1, [1, 1], pads, (-120, 120)).build();
        assert_rust_plane_depthwise(&case, plane);
        check(&format!("qconv_dw_plane{seed}"), case, want);
    }
}

#[test]
fn qconv_depthwise_uint8_dilated_relu() {
    let mut r = Lcg(2);
    let (xs, m) = ([1, 4, 6, 6], 4);
    let x = r.range(144, DType::U8);
    let w = r.range(36, DType::U8);
    let geom = conv([3, 3], [1, 1], [2, 2], [2, 2, 2, 2], 4);
    let w_zp = vec![120, 130, 128, 125];
    let mut out = Requant::new(&[0.0005, 0.0007, 0.0011, 0.0003], 100, DType::U8);
    out.lo = 100;
    let (acc, [_, _, oh, ow]) = conv_ref(&x, xs, &w, m, None, &geom, 128, &w_zp);
    let want = requant_all(&out, &acc, |i| (i / (oh * ow)) % 4);
    let mut b = G::default();
    let xv = b.int_input(DType::U8, &xs, &x);
    let wv = b.konst(DType::U8, &[4, 1, 3, 3], &w);
    let op = Op::QConv(QConv { conv: geom, x_zp: 128, w_zp, out: Some(out) });
    let case = b.finish(op, vec![xv, wv]);
    assert_rust_plane_depthwise(&case, true);
    check("qconv_dw", case, bytes(DType::U8, &want));
}

/// Depthwise int8 with lanes across channels (`backend/c/dw_channels.rs`): 16 channels in
/// two blocks of 8, short rows, a pixel tail, per-channel zero points and requantization.
#[test]
fn qconv_depthwise_channel_lanes() {
    for (seed, dt, hw, stride, dil, pads) in [
        (11, DType::I8, [5, 5], 1, 1, [1, 1, 1, 1]),
        (12, DType::U8, [7, 6], 2, 1, [1, 0, 1, 1]),
        (13, DType::I8, [3, 4], 1, 1, [0, 0, 0, 0]),
        (14, DType::I8, [6, 7], 1, 2, [2, 1, 2, 2]),
    ] {
        let u8 = dt == DType::U8;
        let (case, want) = QConvCase {
            seed,
            dt,
            xs: [1, 16, hw[0], hw[1]],
            m: 16,
            kernel: [3, 3],
            stride,
            dil: [dil, dil],
            pads,
            group: 16,
            w: (-128, 127),
            bias: 3000,
            w_zp: 3,
            x_zp: if u8 { 131 } else { -7 },
            scale: (0.0004, 0.0003),
            y_zp: if u8 { 120 } else { 3 },
        }
        .build();
        assert_uses(
            &case,
            &["mlrt_acc8_transpose(a)", "mlrt_requant8_lanes("],
            &format!("seed {seed}: channel-lane depthwise"),
        );
        check(&format!("qconv_dwc{seed}"), case, want);
    }
}

/// Depthwise int8 with lanes across pixels (`simd::DwConv`, rows of 16 pixels and more):
/// stride-2 phase planes, odd kernel widths, dilation, tails.
#[test]
fn qconv_depthwise_pixel_lanes() {
    for (seed, dt, [c, h, wd], kernel, stride, dil, pads) in [
        (31, DType::I8, [8, 9, 37], [3, 3], 2, [1, 1], [1, 1, 1, 1]),
        (32, DType::U8, [4, 7, 20], [3, 5], 1, [1, 2], [1, 4, 1, 3]),
        (33, DType::I8, [3, 5, 33], [2, 4], 2, [2, 1], [0, 0, 1, 2]),
    ] {
        let (case, want) = depthwise_case(seed, dt, [c, h, wd], kernel, stride, dil, pads, (-128, 127)).build();
        assert_uses(&case, &["mlrt_mac8(a, rp"], &format!("seed {seed}: pixel-lane depthwise"));
        check(&format!("qconv_dwp{seed}"), case, want);
    }
}

#[test]
fn qconv_grouped_int32_accumulators() {
    let mut r = Lcg(3);
    let (xs, m) = ([2, 4, 5, 5], 6);
    let x = r.range(200, DType::I8);
    let w = r.range(6 * 2 * 4, DType::I8);
    let geom = conv([2, 2], [1, 1], [1, 1], [0, 1, 1, 0], 2);
    let (acc, _) = conv_ref(&x, xs, &w, m, None, &geom, 3, &[-1]);
    let mut b = G::default();
    let xv = b.int_input(DType::I8, &xs, &x);
    let wv = b.int_input(DType::I8, &[6, 2, 2, 2], &w);
    let op = Op::QConv(QConv { conv: geom, x_zp: 3, w_zp: vec![-1], out: None });
    check("qconv_i32", b.finish(op, vec![xv, wv]), bytes(DType::I32, &acc));
}

/// Reference integer matmul on already broadcast batches: `a_of(bi)`/`b_of(bi)` give the
/// element offset of batch `bi`'s matrices.
#[allow(clippy::too_many_arguments)]
fn matmul_ref(
    a: &[i32],
    b: &[i32],
    batch: usize,
    (m, k, n): (usize, usize, usize),
    a_of: impl Fn(usize) -> usize,
    b_of: impl Fn(usize) -> usize,
    bias: Option<&[i32]>,
    a_zp: i32,
    b_zp: &[i32],
) -> Vec<i32> {
    let mut y = vec![];
    for bi in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let bz = b_zp[if b_zp.len() == 1 { 0 } else { j }];
                let mut acc = bias.map_or(0, |v| v[j]);
                for kk in 0..k {
                    acc += (a[a_of(bi) + i * k + kk] - a_zp) * (b[b_of(bi) + kk * n + j] - bz);
                }
                y.push(acc);
            }
        }
    }
    y
}

#[test]
fn qmatmul_vector_bias_per_column_requant() {
    let mut r = Lcg(4);
    let a = r.range(16, DType::I8);
    let w = r.range(16 * 8, DType::I8);
    let bias = r.ints(8, -3000, 3000);
    let reals: Vec<f64> = (0..8).map(|j| 0.0007 + 0.0003 * j as f64).collect();
    let out = Requant::new(&reals, -10, DType::I8);
    let acc = matmul_ref(&a, &w, 1, (1, 16, 8), |_| 0, |_| 0, Some(&bias), 3, &[0]);
    let want = requant_all(&out, &acc, |i| i % 8);
    let mut b = G::default();
    let av = b.int_input(DType::I8, &[1, 16], &a);
    let wv = b.konst(DType::I8, &[16, 8], &w);
    let bv = b.konst(DType::I32, &[8], &bias);
    let op = Op::QMatMul(QMatMul { a_zp: 3, b_zp: vec![0], out: Some(out) });
    check("qmatmul_vec", b.finish(op, vec![av, wv, bv]), bytes(DType::I8, &want));
}

/// int8 MatMul over byte quads (x86_64-avx512, `DotMatMul`): reduction tails past the last
/// 32, column groups of 8 and single columns, per-column zero points, uint8 rows.
#[test]
fn qmatmul_byte_quads() {
    for (seed, dt, m, k, n) in [(51, DType::I8, 2, 70, 19), (52, DType::U8, 1, 64, 8), (53, DType::I8, 3, 33, 5)] {
        let mut r = Lcg(seed);
        let a = r.range(m * k, dt);
        let w = r.ints(k * n, -120, 120);
        let bias = r.ints(n, -3000, 3000);
        let b_zp = r.ints(n, -4, 4);
        let a_zp = if dt == DType::U8 { 131 } else { -11 };
        let reals: Vec<f64> = (0..n).map(|j| 0.0003 + 0.0001 * j as f64).collect();
        let out = Requant::new(&reals, 7, dt);
        let acc = matmul_ref(&a, &w, 1, (m, k, n), |_| 0, |_| 0, Some(&bias), a_zp, &b_zp);
        let want = requant_all(&out, &acc, |i| i % n);
        let mut b = G::default();
        let av = b.int_input(dt, &[m, k], &a);
        let wv = b.konst(DType::I8, &[k, n], &w);
        let bv = b.konst(DType::I32, &[n], &bias);
        let op = Op::QMatMul(QMatMul { a_zp, b_zp, out: Some(out) });
        check_quads(&format!("qmatmul_quads{seed}"), b.finish(op, vec![av, wv, bv]), bytes(dt, &want), "mlrt_dot4v(");
    }
}

/// The Rust QMatMul over int16 pairs of `k` (`rt::mac_pair1`): uint8 `a`, an odd `k`, a
/// partial last panel of 8 columns, per-column weight zero points, three rows, a clamped
/// uint8 output; and the plain kernel when `b − b_zp` does not fit int8.
#[test]
fn qmatmul_pairs_of_k() {
    for (seed, b_zp, pairs) in [(81, vec![3, -2, 0, 5, 1, -4, 2, 0, 7, -1, 6], true), (82, vec![-100], false)] {
        let mut r = Lcg(seed);
        let (m, k, n) = (3, 13, 11);
        let a = r.range(m * k, DType::U8);
        let w = r.range(k * n, DType::I8);
        let bias = r.ints(n, -3000, 3000);
        let mut out = Requant::new(&[0.0009], 120, DType::U8);
        out.lo = 110;
        let acc = matmul_ref(&a, &w, 1, (m, k, n), |_| 0, |_| 0, Some(&bias), 131, &b_zp);
        let want = requant_all(&out, &acc, |_| 0);
        let mut b = G::default();
        let av = b.int_input(DType::U8, &[m, k], &a);
        let wv = b.konst(DType::I8, &[k, n], &w);
        let bv = b.konst(DType::I32, &[n], &bias);
        let op = Op::QMatMul(QMatMul { a_zp: 131, b_zp, out: Some(out) });
        let case = b.finish(op, vec![av, wv, bv]);
        let rust = Config::new().lang(Lang::Rust).compile_graph(case.0.clone(), "mm").unwrap();
        let used = rust.files.iter().any(|f| f.contents.contains("rt::mac_pair1("));
        assert_eq!(used, pairs, "qmatmul_pairs{seed}: Rust pair kernel");
        check(&format!("qmatmul_pairs{seed}"), case, bytes(DType::U8, &want));
    }
}

#[test]
fn qmatmul_batched_broadcast_requant_uint8() {
    // [2,1,3,5] x [4,5,2] -> [2,4,3,2]
    let mut r = Lcg(5);
    let a = r.range(30, DType::I8);
    let w = r.range(40, DType::I8);
    let out = Requant::new(&[0.0042], 128, DType::U8);
    let acc = matmul_ref(&a, &w, 8, (3, 5, 2), |bi| (bi / 4) * 15, |bi| (bi % 4) * 10, None, -7, &[2]);
    let want = requant_all(&out, &acc, |_| 0);
    let mut b = G::default();
    let av = b.int_input(DType::I8, &[2, 1, 3, 5], &a);
    let wv = b.int_input(DType::I8, &[4, 5, 2], &w);
    let op = Op::QMatMul(QMatMul { a_zp: -7, b_zp: vec![2], out: Some(out) });
    check("qmatmul_bcast", b.finish(op, vec![av, wv]), bytes(DType::U8, &want));
}

#[test]
fn qmatmul_batched_uint8_int32_accumulators() {
    // [3,2,6] x [6,4] -> [3,2,4], per-column zero points of B
    let mut r = Lcg(6);
    let a = r.range(36, DType::U8);
    let w = r.range(24, DType::U8);
    let b_zp = vec![128, 120, 135, 127];
    let acc = matmul_ref(&a, &w, 3, (2, 6, 4), |bi| bi * 12, |_| 0, None, 128, &b_zp);
    let mut b = G::default();
    let av = b.int_input(DType::U8, &[3, 2, 6], &a);
    let wv = b.konst(DType::U8, &[6, 4], &w);
    let op = Op::QMatMul(QMatMul { a_zp: 128, b_zp, out: None });
    check("qmatmul_i32", b.finish(op, vec![av, wv]), bytes(DType::I32, &acc));
}

#[test]
fn qadd_int8() {
    let mut r = Lcg(7);
    let (a, bb) = (r.range(50, DType::I8), r.range(50, DType::I8));
    let q = QAdd::new(0.05, -3, 0.02, 10, 0.06, 5, DType::I8);
    let want: Vec<i32> = a.iter().zip(&bb).map(|(&x, &y)| q.apply(x, y)).collect();
    let mut b = G::default();
    let av = b.int_input(DType::I8, &[1, 2, 5, 5], &a);
    let bv = b.int_input(DType::I8, &[1, 2, 5, 5], &bb);
    check("qadd", b.finish(Op::QAdd(q), vec![av, bv]), bytes(DType::I8, &want));
}

/// Every int8 value of both operands through the exact rescalings of the C QAdd
/// (`QAdd::exact_shift`, `QAdd::split_multiplier`, at the ends of their ranges too).
#[test]
fn qadd_rescaling_is_exact_for_every_input() {
    let a: Vec<i32> = (-128..128).collect();
    let bb: Vec<i32> = (-128..128).map(|v: i32| (v * 37 + 11).rem_euclid(256) - 128).collect();
    // Scale ratios sb/sa: ½ (exact shift) against 0.3, near 2^-12 and near ½ (t = 22 .. 12).
    for (sa, sb, zp) in [(0.05, 0.015, 3), (0.05, 0.05 / 4000.0, -7), (0.013, 0.0129, 0), (0.002, 0.05, 100)] {
        let q = QAdd::new(sa, -3, sb, 10, 0.06, zp, DType::I8);
        let want: Vec<i32> = a.iter().zip(&bb).map(|(&x, &y)| q.apply(x, y)).collect();
        let mut b = G::default();
        let av = b.int_input(DType::I8, &[1, 1, 16, 16], &a);
        let bv = b.int_input(DType::I8, &[1, 1, 16, 16], &bb);
        let case = b.finish(Op::QAdd(q), vec![av, bv]);
        let c = Config::new().lang(Lang::C).compile_graph(case.0.clone(), "qadd").unwrap();
        assert!(c.files.iter().any(|f| f.contents.contains("mlrt_acc8_mulsplit(")), "{sa} {sb}: no split rescaling");
        check("qadd_all", case, bytes(DType::I8, &want));
    }
}

#[test]
fn qadd_uint8_same_scales() {
    let mut r = Lcg(8);
    let (a, bb) = (r.range(24, DType::U8), r.range(24, DType::U8));
    let q = QAdd::new(0.1, 128, 0.1, 128, 0.2, 128, DType::U8);
    let want: Vec<i32> = a.iter().zip(&bb).map(|(&x, &y)| q.apply(x, y)).collect();
    let mut b = G::default();
    let av = b.int_input(DType::U8, &[24], &a);
    let bv = b.int_input(DType::U8, &[24], &bb);
    check("qadd_u8", b.finish(Op::QAdd(q), vec![av, bv]), bytes(DType::U8, &want));
}

/// Reference integer pooling of `[N,C,H,W]` (accumulators per `ops::QPool`).
fn pool_ref(x: &[i32], xs: [usize; 4], p: &Pool, lo: i32, x_zp: i32) -> Vec<i32> {
    let [nb, c, h, wd] = xs;
    let [kh, kw] = p.kernel;
    let oh = (h + p.pads[0] + p.pads[2] - kh) / p.strides[0] + 1;
    let ow = (wd + p.pads[1] + p.pads[3] - kw) / p.strides[1] + 1;
    let mut y = vec![];
    for pl in 0..nb * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut mx, mut sum) = (lo, 0);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let iy = (oy * p.strides[0] + ky) as isize - p.pads[0] as isize;
                        let ix = (ox * p.strides[1] + kx) as isize - p.pads[1] as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                            continue;
                        }
                        let v = x[(pl * h + iy as usize) * wd + ix as usize];
                        mx = mx.max(v);
                        sum += v - x_zp;
                    }
                }
                y.push(if p.kind == PoolKind::Max { mx - x_zp } else { sum });
            }
        }
    }
    y
}

fn pool(kind: PoolKind, kernel: [usize; 2], strides: [usize; 2], pads: [usize; 4], cip: bool) -> Pool {
    Pool { kind, kernel, strides, dilations: [1, 1], pads, ceil_mode: false, count_include_pad: cip }
}

#[test]
fn qpool_max_int8_padded() {
    let mut r = Lcg(9);
    let xs = [1, 3, 6, 6];
    let x = r.range(108, DType::I8);
    let p = pool(PoolKind::Max, [3, 3], [2, 2], [1, 1, 1, 1], false);
    let out = Requant::new(&[0.9], -4, DType::I8);
    let want = requant_all(&out, &pool_ref(&x, xs, &p, -128, -4), |_| 0);
    let mut b = G::default();
    let xv = b.int_input(DType::I8, &xs, &x);
    let op = Op::QPool(QPool { pool: p, x_zp: -4, out });
    check("qpool_max", b.finish(op, vec![xv]), bytes(DType::I8, &want));
}

#[test]
fn qpool_avg_uint8() {
    let mut r = Lcg(10);
    let xs = [2, 2, 6, 6];
    let x = r.range(144, DType::U8);
    let p = pool(PoolKind::Avg, [2, 2], [2, 2], [0; 4], false);
    let out = Requant::new(&[0.25 * 0.8], 130, DType::U8);
    let want = requant_all(&out, &pool_ref(&x, xs, &p, 0, 128), |_| 0);
    let mut b = G::default();
    let xv = b.int_input(DType::U8, &xs, &x);
    let op = Op::QPool(QPool { pool: p, x_zp: 128, out });
    check("qpool_avg", b.finish(op, vec![xv]), bytes(DType::U8, &want));
}

#[test]
fn qpool_avg_int8_count_include_pad() {
    let mut r = Lcg(11);
    let xs = [1, 2, 5, 5];
    let x = r.range(50, DType::I8);
    let p = pool(PoolKind::Avg, [3, 3], [1, 1], [1, 1, 1, 1], true);
    let out = Requant::new(&[1.0 / 9.0], -1, DType::I8);
    let want = requant_all(&out, &pool_ref(&x, xs, &p, -128, 6), |_| 0);
    let mut b = G::default();
    let xv = b.int_input(DType::I8, &xs, &x);
    let op = Op::QPool(QPool { pool: p, x_zp: 6, out });
    check("qpool_avg_pad", b.finish(op, vec![xv]), bytes(DType::I8, &want));
}

#[test]
fn qsoftmax_row_of_ten() {
    let x = vec![10, 0, -20, 35, 35, -128, 127, 3, -3, 60];
    let sm = QSoftmax::new(1, 0.1, 1.0 / 256.0, -128, DType::I8);
    let mut want = vec![0; 10];
    sm.row(&x, &mut want);
    let mut b = G::default();
    let xv = b.int_input(DType::I8, &[1, 10], &x);
    check("qsoftmax", b.finish(Op::QSoftmax(sm), vec![xv]), bytes(DType::I8, &want));
}

#[test]
fn qsoftmax_inner_axis_uint8() {
    // [2,5,3], softmax over axis 1 (strided rows).
    let mut r = Lcg(12);
    let x = r.range(30, DType::U8);
    let sm = QSoftmax::new(1, 0.05, 1.0 / 256.0, 0, DType::U8);
    let mut want = vec![0; 30];
    for o in 0..2 {
        for j in 0..3 {
            let row: Vec<i32> = (0..5).map(|i| x[o * 15 + i * 3 + j]).collect();
            let mut y = vec![0; 5];
            sm.row(&row, &mut y);
            for i in 0..5 {
                want[o * 15 + i * 3 + j] = y[i];
            }
        }
    }
    let mut b = G::default();
    let xv = b.int_input(DType::U8, &[2, 5, 3], &x);
    check("qsoftmax_axis", b.finish(Op::QSoftmax(sm), vec![xv]), bytes(DType::U8, &want));
}

#[test]
fn requantize_with_fused_relu() {
    let mut r = Lcg(13);
    let x = r.range(32, DType::I8);
    let mut out = Requant::new(&[0.7], -20, DType::I8);
    out.lo = -20;
    let want: Vec<i32> = x.iter().map(|&v| out.apply(v - 3, 0)).collect();
    assert!(want.contains(&-20), "the relu clamp is exercised");
    let mut b = G::default();
    let xv = b.int_input(DType::I8, &[1, 2, 4, 4], &x);
    let op = Op::Requantize(modelless::ops::Requantize { x_zp: 3, out });
    check("requantize", b.finish(op, vec![xv]), bytes(DType::I8, &want));
}

#[test]
fn requantize_uint8_to_int8() {
    let mut r = Lcg(14);
    let x = r.range(40, DType::U8);
    let out = Requant::new(&[1.7], 5, DType::I8);
    let want: Vec<i32> = x.iter().map(|&v| out.apply(v - 128, 0)).collect();
    let mut b = G::default();
    let xv = b.int_input(DType::U8, &[40], &x);
    let op = Op::Requantize(modelless::ops::Requantize { x_zp: 128, out });
    check("requantize_u8", b.finish(op, vec![xv]), bytes(DType::I8, &want));
}

/// The parameter of flat element `i`: per tensor, per axis, or with blocks of `block`
/// along the axis `[o, a / block, i]` of the shortened parameter tensor (opset 21).
fn param_of(i: usize, shape: &[usize], axis: Option<usize>, block: Option<usize>) -> usize {
    let Some(a) = axis else { return 0 };
    let (len, inner) = (shape[a], shape[a + 1..].iter().product::<usize>());
    let (o, k, j) = (i / (len * inner), i / inner % len, i % inner);
    match block {
        None => k,
        Some(b) => (o * len.div_ceil(b) + k / b) * inner + j,
    }
}

fn quantize_case(name: &str, x: Vec<f32>, shape: &[usize], q: Quant, to: DType, block: Option<usize>) {
    let (lo, hi) = modelless::ops::type_range(to);
    let want: Vec<i32> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = param_of(i, shape, q.axis, block);
            modelless_rt::quantize(v, q.scale[c], q.zero_point[c], lo, hi)
        })
        .collect();
    let mut b = G::default();
    let xv = b.input(DType::F32, shape, f32_bytes(&x));
    check(name, b.finish(Op::Quantize(Quantize { q, to, block }), vec![xv]), bytes(to, &want));
}

#[test]
fn quantize_per_tensor_ties_and_saturation() {
    // x / 0.5: 2.5 → 2, 3.5 → 4, -2.5 → -2, -0.5 → 0, 0.5 → 0, 1.5 → 2; then saturation.
    let x = vec![1.25, 1.75, -1.25, -0.25, 0.25, 0.75, 1000.0, -1000.0, 63.0, -64.25, 0.0, f32::NAN, 7.3, -7.3];
    let q = Quant { scale: vec![0.5], zero_point: vec![1], axis: None };
    quantize_case("quant_t", x.clone(), &[14], q.clone(), DType::I8, None);
    quantize_case("quant_u8", x.clone(), &[14], Quant { zero_point: vec![128], ..q.clone() }, DType::U8, None);
    quantize_case("quant_i32", x, &[14], Quant { zero_point: vec![-7], ..q }, DType::I32, None);
}

#[test]
fn quantize_per_axis() {
    let mut r = Lcg(15);
    let mut x: Vec<f32> = r.ints(24, -4000, 4000).into_iter().map(|v| v as f32 / 100.0).collect();
    x[0] = 0.25; // 0.25 / 0.1 rounds with the float quotient
    x[5] = 0.625; // / 0.25 = 2.5 → 2
    x[17] = 1.25; // / 0.5 = 2.5 → 2
    let q = Quant { scale: vec![0.1, 0.25, 0.5], zero_point: vec![0, -3, 5], axis: Some(1) };
    quantize_case("quant_axis", x, &[2, 3, 4], q, DType::I8, None);
}

/// Blocked quantization (opset 21 `block_size`) along the middle axis, blocks of 2 over 5
/// elements (the last block is short).
#[test]
fn quantize_and_dequantize_blocked() {
    let mut r = Lcg(18);
    let x: Vec<f32> = r.ints(30, -4000, 4000).into_iter().map(|v| v as f32 / 100.0).collect();
    let scale: Vec<f32> = (0..18).map(|k| 0.05 + 0.03 * k as f32).collect();
    let zero_point = r.ints(18, -20, 20);
    let q = Quant { scale, zero_point, axis: Some(1) };
    quantize_case("quant_blocked", x, &[2, 5, 3], q.clone(), DType::I8, Some(2));
    dequantize_case("deq_blocked", DType::I8, r.range(30, DType::I8), &[2, 5, 3], q, Some(2));
}

fn dequantize_case(name: &str, dt: DType, x: Vec<i32>, shape: &[usize], q: Quant, block: Option<usize>) {
    let want: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = param_of(i, shape, q.axis, block);
            (v - q.zero_point[c]) as f32 * q.scale[c]
        })
        .collect();
    let mut b = G::default();
    let xv = b.int_input(dt, shape, &x);
    check(name, b.finish(Op::Dequantize(Dequantize { q, block }), vec![xv]), f32_bytes(&want));
}

#[test]
fn dequantize_int8_uint8_int32() {
    let mut r = Lcg(16);
    let q = Quant { scale: vec![0.1, 0.037, 1.5e-3], zero_point: vec![0, -3, 12], axis: Some(1) };
    dequantize_case("deq_i8", DType::I8, r.range(24, DType::I8), &[2, 3, 4], q.clone(), None);
    dequantize_case(
        "deq_u8",
        DType::U8,
        r.range(10, DType::U8),
        &[10],
        Quant { scale: vec![0.0123], zero_point: vec![128], axis: None },
        None,
    );
    let q32 = Quant { scale: vec![1e-4, 3e-5], zero_point: vec![0, 0], axis: Some(0) };
    dequantize_case("deq_i32", DType::I32, r.range(12, DType::I32), &[2, 6], q32, None);
}

/// All the graphs above again, as one `#![no_std]` library checked by clippy, and as C
/// checked with the strictest flags of `tests/generated_code.rs`.
#[test]
fn generated_code_is_no_std_clippy_clean_and_strict_c99() {
    let mut r = Lcg(17);
    let mut graphs: Vec<(&str, Graph)> = vec![];
    {
        let mut b = G::default();
        let xv = b.int_input(DType::I8, &[1, 3, 7, 7], &r.range(147, DType::I8));
        let wv = b.konst(DType::I8, &[4, 3, 3, 3], &r.range(108, DType::I8));
        let bv = b.konst(DType::I32, &[4], &[1, -2, 3, i32::MIN]);
        let out = Requant::new(&[0.0021, 0.0013, 0.004, 0.0009], -7, DType::I8);
        let op = Op::QConv(QConv {
            conv: conv([3, 3], [2, 2], [1, 1], [1, 1, 1, 1], 1),
            x_zp: -5,
            w_zp: vec![0, 1, -2, 3],
            out: Some(out),
        });
        graphs.push(("g_qconv", b.finish(op, vec![xv, wv, bv]).0));
    }
    {
        let mut b = G::default();
        let xv = b.int_input(DType::U8, &[1, 4, 6, 6], &r.range(144, DType::U8));
        let wv = b.konst(DType::U8, &[4, 1, 3, 3], &r.range(36, DType::U8));
        let op = Op::QConv(QConv {
            conv: conv([3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 4),
            x_zp: 0,
            w_zp: vec![128],
            out: None,
        });
        graphs.push(("g_dw", b.finish(op, vec![xv, wv]).0));
    }
    {
        let mut b = G::default();
        let av = b.int_input(DType::U8, &[2, 3, 5], &r.range(30, DType::U8));
        let wv = b.konst(DType::I8, &[5, 4], &r.range(20, DType::I8));
        let bv = b.konst(DType::I32, &[4], &[5, 6, 7, 8]);
        let out = Requant::new(&[0.1, 0.2, 0.3, 0.4], 0, DType::U8);
        let op = Op::QMatMul(QMatMul { a_zp: 128, b_zp: vec![0, 1, 2, 3], out: Some(out) });
        graphs.push(("g_mm", b.finish(op, vec![av, wv, bv]).0));
    }
    {
        let mut b = G::default();
        let av = b.int_input(DType::I8, &[8], &r.range(8, DType::I8));
        let bv = b.int_input(DType::I8, &[8], &r.range(8, DType::I8));
        graphs.push(("g_add", b.finish(Op::QAdd(QAdd::new(0.05, 0, 0.02, -10, 0.06, 0, DType::I8)), vec![av, bv]).0));
    }
    for (name, kind, zp) in [("g_max", PoolKind::Max, 0), ("g_avg", PoolKind::Avg, -3)] {
        let mut b = G::default();
        let xv = b.int_input(DType::I8, &[1, 2, 4, 4], &r.range(32, DType::I8));
        let p = pool(kind, [2, 2], [2, 2], [0; 4], false);
        let op = Op::QPool(QPool { pool: p, x_zp: zp, out: Requant::new(&[0.25], 0, DType::I8) });
        graphs.push((name, b.finish(op, vec![xv]).0));
    }
    {
        let mut b = G::default();
        let xv = b.int_input(DType::I8, &[3], &[1, 2, 3]);
        let sm = QSoftmax::new(0, 0.1, 1.0 / 256.0, -128, DType::I8);
        graphs.push(("g_sm", b.finish(Op::QSoftmax(sm), vec![xv]).0));
    }
    {
        let mut b = G::default();
        let xv = b.int_input(DType::I8, &[4], &[1, 2, 3, 4]);
        let op = Op::Requantize(modelless::ops::Requantize { x_zp: 0, out: Requant::new(&[0.5], 0, DType::U8) });
        graphs.push(("g_rq", b.finish(op, vec![xv]).0));
    }
    for (name, axis, to) in [("g_q", None, DType::I32), ("g_qa", Some(1), DType::U8)] {
        let mut b = G::default();
        let xv = b.input(DType::F32, &[2, 2], f32_bytes(&[0.0; 4]));
        let q = match axis {
            None => Quant { scale: vec![0.5], zero_point: vec![0], axis },
            Some(_) => Quant { scale: vec![0.5, 0.25], zero_point: vec![0, 3], axis },
        };
        graphs.push((name, b.finish(Op::Quantize(Quantize { q, to, block: None }), vec![xv]).0));
    }
    for (name, block) in [("g_qb", Some(2)), ("g_qb1", Some(1))] {
        let q = Quant { scale: vec![0.5, 0.25, 0.5, 1.0], zero_point: vec![0, 3, -1, 2], axis: Some(1) };
        let mut b = G::default();
        let xv = b.input(DType::F32, &[2, 3], f32_bytes(&[0.0; 6]));
        let q = if block == Some(1) { Quant { scale: vec![0.5; 6], zero_point: vec![1; 6], axis: Some(1) } } else { q };
        graphs.push((name, b.finish(Op::Quantize(Quantize { q: q.clone(), to: DType::I8, block }), vec![xv]).0));
        let mut b = G::default();
        let xv = b.int_input(DType::I8, &[2, 3], &[0; 6]);
        let dq_name = if block == Some(1) { "g_dqb1" } else { "g_dqb" };
        graphs.push((dq_name, b.finish(Op::Dequantize(Dequantize { q, block }), vec![xv]).0));
    }
    for (name, dt, axis) in [("g_dq", DType::I32, None), ("g_dqa", DType::I8, Some(0)), ("g_dqu", DType::U8, None)] {
        let mut b = G::default();
        let xv = b.int_input(dt, &[2, 2], &[0; 4]);
        let q = match axis {
            None => Quant { scale: vec![0.5], zero_point: vec![0], axis },
            Some(_) => Quant { scale: vec![0.5, 0.25], zero_point: vec![-1, 3], axis },
        };
        graphs.push((name, b.finish(Op::Dequantize(Dequantize { q, block: None }), vec![xv]).0));
    }

    let tmp = tempfile::tempdir().unwrap();
    let mut lib = String::from("#![no_std]\n#![deny(warnings)]\n");
    for (name, g) in &graphs {
        let c = Config::new().lang(Lang::Rust).compile_graph(g.clone(), name).unwrap();
        modelless::write_files(tmp.path(), &c.files).unwrap();
        lib.push_str(&format!("#[path = \"{name}.rs\"]\npub mod {name};\n"));

        let c = Config::new().lang(Lang::C).compile_graph(g.clone(), name).unwrap();
        modelless::write_files(tmp.path(), &c.files).unwrap();
        let out = Command::new("cc")
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wstrict-prototypes", "-c"])
            .arg("-o")
            .arg(tmp.path().join(format!("{name}.o")))
            .arg(tmp.path().join(format!("{name}.c")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let lib_rs = tmp.path().join("lib.rs");
    std::fs::write(&lib_rs, lib).unwrap();
    let out = Command::new("clippy-driver")
        .args(["--edition", "2021", "--crate-type", "lib", "--emit=metadata", "-D", "warnings", "-D", "clippy::all"])
        .arg("-o")
        .arg(tmp.path().join("models.rmeta"))
        .arg(&lib_rs)
        .output()
        .expect("clippy-driver must be installed (rustup component add clippy)");
    assert!(out.status.success(), "generated Rust is not clippy-clean:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// A chain of int8 layers whose inner tensors `blocks.rs` keeps in channel blocks on
/// x86_64-avx512: a first layer of few channels (`conv_channel_quads.rs`, blocked output),
/// depthwise (`dw_channels.rs`, pairs straight from blocks), pointwise (`pw_block_quads.rs`)
/// and a global average pool, on planes whose pixel counts leave tails of every size; int8
/// with full-range outputs (saturating stores) and uint8 with a ReLU-like clamp. The result
/// must equal the compiler's int8 simulation (`interp`).
#[test]
fn int8_chains_over_channel_blocks() {
    // (seed, type, [ci, h, w], channels of the two blocks, depthwise stride, clamp at zp)
    type Case = (u64, DType, [usize; 3], [usize; 2], usize, bool);
    let cases: [Case; 3] = [
        (71, DType::I8, [3, 7, 9], [16, 24], 2, false),
        (72, DType::U8, [2, 5, 6], [8, 16], 1, true),
        (73, DType::I8, [1, 9, 11], [24, 8], 1, true),
    ];
    for (seed, dt, [ci, h, wd], [c1, c2], stride, relu) in cases {
        let mut r = Lcg(seed);
        let (x_zp, y_zp) = if dt == DType::U8 { (131, 120) } else { (-7, -3) };
        let mut b = G::default();
        let xs = [1, ci, h, wd];
        let x = r.range(xs.iter().product(), dt);
        let mut v = b.int_input(dt, &xs, &x);
        // (output channels, kernel, stride, pads, group: 0 = depthwise)
        let layers = [(c1, 3, 1, 1, 1), (c1, 3, 1, 1, 0), (c2, 1, 1, 0, 1), (c2, 3, stride, 1, 0), (c1, 1, 1, 0, 1)];
        for (i, &(m, k, s, pad, group)) in layers.iter().enumerate() {
            let c = b.g.ty(v).shape[1];
            let group = if group == 0 { c } else { 1 };
            let w = b.konst(DType::I8, &[m, c / group, k, k], &r.ints(m * c / group * k * k, -120, 120));
            let bias = b.konst(DType::I32, &[m], &r.ints(m, -3000, 3000));
            let scales: Vec<f64> = (0..m).map(|o| 0.003 + 0.0001 * o as f64).collect();
            let mut out = Requant::new(&scales, y_zp, dt);
            if relu && i % 2 == 1 {
                out.lo = y_zp;
            }
            let geom = conv([k, k], [s, s], [1, 1], [pad; 4], group);
            let op = Op::QConv(QConv { conv: geom, x_zp, w_zp: r.ints(m, -5, 5), out: Some(out) });
            v = b.node(op, vec![v, w, bias]);
        }
        let [_, _, ph, pw] = b.g.ty(v).shape[..] else { unreachable!() };
        let p = pool(PoolKind::Avg, [ph, pw], [1, 1], [0; 4], false);
        let out = Requant::new(&[1.0 / (ph * pw) as f64], y_zp, dt);
        let (g, inputs) = b.finish(Op::QPool(QPool { pool: p, x_zp, out }), vec![v]);
        let input = TensorData::from_le_bytes(dt, &inputs[0]);
        let want = modelless::interp::run(&g, &[input]).unwrap().remove(0).to_le_bytes();
        let (ty, xt) = if dt == DType::U8 { ("u8", "uint8_t") } else { ("s8", "int8_t") };
        let markers = [
            format!("mlrt_acc8_store4_{ty}(yn + "),
            format!("mlrt_acc8_store4_{ty}(yc + "),
            format!("mlrt_acc8_store4_{ty}(yb + "),
            "mlrt_dot4_bcast(a00, rows + (qb * ".to_string(),
            format!("mlrt_pair8_cell(cr + q * 8, mlrt_h8_{ty}("),
            format!("const {xt} *xb = x0 + b * "),
        ];
        let quads = TargetDesc::load("x86_64-avx512").unwrap();
        let c = Config::new().lang(Lang::C).target(quads).compile_graph(g.clone(), "blocks").unwrap();
        let src = &c.files.iter().find(|f| f.name == "blocks.c").unwrap().contents;
        for marker in &markers {
            assert!(src.contains(marker.as_str()), "int8_blocks{seed}: no `{marker}` in the code");
        }
        check_quads(&format!("int8_blocks{seed}"), (g, inputs), want, &markers[0]);
    }
}

/// `cargo test` builds `modelless-rt` without target features, so its unit tests check the
/// portable bodies of `simd.rs`; this runs them again with AVX2 and FMA, checking the
/// `core::arch` bodies against the same contracts (the NEON bodies run in
/// tests/tests/cross.rs, through generated code under QEMU).
#[cfg(target_arch = "x86_64")]
#[test]
fn runtime_simd_helpers_pass_their_tests_with_avx2() {
    if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")) {
        eprintln!("host without AVX2 and FMA: the AVX2 helper bodies not run");
        return;
    }
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime-shims");
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("rt_tests");
    let out = Command::new("rustc")
        .env("CARGO_MANIFEST_DIR", &crate_dir)
        .args(["--edition", "2024", "--test", "-O", "-C", "target-feature=+avx2,+fma", "--crate-name", "modelless_rt"])
        .arg(crate_dir.join("src/lib.rs"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(out.status.success(), "rustc: {}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).arg("simd_").output().unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text}");
    for t in
        ["simd_pairs_and_requant_follow_their_contracts ... ok", "simd_float_helpers_follow_their_contracts ... ok"]
    {
        assert!(text.contains(t), "{t} missing:\n{text}");
    }
}
