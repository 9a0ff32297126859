//! The Winograd F(2×2, 3×3) float convolution (`backend/c/winograd.rs`) on hand-built graphs
//! covering each tile-row layout (widths 8, 16 and 32: several tile rows per step, one, or
//! a tile row of two vectors), bias and fused activations, and in-place execution (the
//! convolution's input dies at it), against the reference interpreter. ResNet-8 runs it on
//! whole models (`tests/tests/differential.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelless::ir::{DType, Graph, Node, TensorData, TensorType, ValueId};
use modelless::ops::{Act, Binary, BinaryKind, Conv, Op};
use modelless::target::TargetDesc;
use modelless::toolchain::{IoSig, build_c};
use modelless::{Config, interp};

/// Deterministic values in [-1, 1).
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn node(g: &mut Graph, name: &str, op: Op, inputs: Vec<ValueId>) -> ValueId {
    let tys: Vec<&TensorType> = inputs.iter().map(|&v| g.ty(v)).collect();
    let t = op.infer(&tys).unwrap();
    let y = g.add_value(format!("{name}_out"), t);
    g.nodes.push(Node { name: name.into(), onnx_op: op.name().into(), op, inputs, outputs: vec![y] });
    y
}

/// `x [1, ci, h, w]` → (Relu, when `in_place`, so the convolution's input dies at it) →
/// 3×3 Conv to `m` channels, padding 1, bias, activation `act` → `tail`.
fn graph(ci: usize, m: usize, h: usize, w: usize, act: Option<Act>, in_place: bool, tail: Tail) -> Graph {
    let seed = (ci * 31 + m * 7 + h + w) as u64;
    let mut g = Graph::default();
    let x = g.add_value("x", TensorType::new(DType::F32, vec![1, ci, h, w]));
    g.inputs.push(x);
    let src = if in_place { node(&mut g, "relu", Op::Activation(Act::Relu), vec![x]) } else { x };
    let wt =
        g.add_const("w", TensorType::new(DType::F32, vec![m, ci, 3, 3]), TensorData::F32(values(seed, m * ci * 9)));
    let b = g.add_const("b", TensorType::new(DType::F32, vec![m]), TensorData::F32(values(seed + 1, m)));
    let conv = Conv { kernel: [3, 3], strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], group: 1, act };
    let mut y = node(&mut g, "conv", Op::Conv(conv), vec![src, wt, b]);
    y = match tail {
        // A 1×1 convolution to 64 channels, doubled (so it lives in the arena): the arena's
        // peak is there, and the Winograd kernel's scratch fits under it.
        Tail::Expand => {
            let we = g.add_const(
                "we",
                TensorType::new(DType::F32, vec![64, m, 1, 1]),
                TensorData::F32(values(seed + 2, 64 * m)),
            );
            let one = Conv { kernel: [1, 1], strides: [1, 1], dilations: [1, 1], pads: [0; 4], group: 1, act: None };
            let e = node(&mut g, "expand", Op::Conv(one), vec![y, we]);
            double(&mut g, e)
        }
        // Doubled: the convolution's output lives in the arena, where its peak is.
        Tail::Double => double(&mut g, y),
    };
    g.outputs.push(y);
    g
}

fn double(g: &mut Graph, v: ValueId) -> ValueId {
    node(g, "double", Op::Binary(Binary { kind: BinaryKind::Add, act: None }), vec![v, v])
}

#[derive(Clone, Copy)]
enum Tail {
    Expand,
    Double,
}

fn conv_node(g: &Graph) -> usize {
    g.nodes.iter().position(|n| n.name == "conv").unwrap()
}

#[test]
fn winograd_conv_matches_the_reference() {
    let target = TargetDesc::host();
    let cases = [
        (8, 8, 8, 8, None, true),
        (16, 12, 16, 16, Some(Act::Relu), false),
        (16, 16, 16, 16, Some(Act::Relu), true),
        (16, 16, 32, 32, None, true),
        (8, 4, 16, 8, Some(Act::Clip { min: -0.5, max: 0.5 }), false),
        (24, 8, 32, 16, Some(Act::LeakyRelu { alpha: 0.1 }), false),
    ];
    for (k, &(ci, m, h, w, act, in_place)) in cases.iter().enumerate() {
        let what = format!("{ci}->{m} {h}x{w} {act:?} in place {in_place}");
        let g = graph(ci, m, h, w, act, in_place, Tail::Expand);
        let x = values(k as u64 + 100, ci * h * w);
        let want = interp::run(&g, &[TensorData::F32(x.clone())]).unwrap().remove(0);
        let want = want.as_f32().unwrap().to_vec();
        let c = Config::new().compile_graph(g.clone(), "wino").unwrap();
        let src = &c.files.iter().find(|f| f.name == "wino.c").unwrap().contents;
        assert!(src.contains("mlrt_f8_zip"), "{what}: the Winograd kernel was not used");
        assert_eq!(c.plan.in_place(conv_node(&c.graph)).is_some(), in_place, "{what}: in-place plan");
        let dir = tempfile::tempdir().unwrap();
        let san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"];
        let h = build_c(dir.path(), "wino", &c.files, &IoSig::of(&c.graph), &target, &san).unwrap();
        let got = h.run(&[vec![x]]).unwrap().remove(0).remove(0);
        let scale = want.iter().fold(1.0f32, |a, v| a.max(v.abs()));
        let err = got.iter().zip(&want).fold(0.0f32, |a, (g, w)| a.max((g - w).abs()));
        assert!(err <= 1e-5 * scale, "{what}: max abs error {err} (scale {scale})");
    }
}

/// The kernel's scratch never raises the arena: where the convolution is the peak (its input
/// and output are all that is live), it keeps the direct kernel, and the arena is the same
/// as with direct convolutions only.
#[test]
fn winograd_never_raises_the_arena() {
    for (tail, winograd) in [(Tail::Double, false), (Tail::Expand, true)] {
        let g = graph(16, 16, 16, 16, None, true, tail);
        let c = Config::new().compile_graph(g.clone(), "wino").unwrap();
        let conv = conv_node(&c.graph);
        assert_eq!(!c.plan.layouts.direct_convs.contains(&conv), winograd);
        let src = &c.files.iter().find(|f| f.name == "wino.c").unwrap().contents;
        assert_eq!(src.contains("mlrt_f8_zip"), winograd);
        let direct = modelless::Kernels {
            layouts: modelless::passes::Layouts {
                direct_convs: [conv].into_iter().collect(),
                ..c.plan.layouts.clone()
            },
            ..Config::new().kernels()
        };
        let base = modelless::passes::plan_memory(&c.graph, c.plan.align, &direct);
        assert!(c.plan.arena_bytes <= base.arena_bytes, "{} > {}", c.plan.arena_bytes, base.arena_bytes);
    }
}

/// A float convolution whose weights are all whole numbers stands for an integer one
/// (ConvInteger with a run-time zero point) and keeps the direct kernel: its sums of
/// integers stay exact up to 2^24, which Winograd's quarter-valued weights would narrow.
#[test]
fn integer_valued_convolutions_stay_direct() {
    let mut g = graph(16, 16, 16, 16, None, true, Tail::Expand);
    let w = g.values.iter_mut().find(|v| v.name == "w").unwrap();
    let Some(TensorData::F32(d)) = &mut w.data else { panic!("weights") };
    d.iter_mut().for_each(|v| *v = (*v * 100.0).round());
    let c = Config::new().compile_graph(g, "wino").unwrap();
    let src = &c.files.iter().find(|f| f.name == "wino.c").unwrap().contents;
    assert!(!src.contains("mlrt_f8_zip"), "integer-valued weights went through Winograd");
}
