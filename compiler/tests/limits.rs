//! Resource limits: hostile models that declare or compute huge tensors fail fast with a
//! clear error instead of allocating (or overflowing a shape product).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{floats, input, ints, model, node};
use std::path::Path;
use std::time::{Duration, Instant};
use tract_onnx::pb;

/// Compiles `bytes` and expects an error containing `needle` within a second.
fn refused(what: &str, bytes: &[u8], needle: &str) {
    let t0 = Instant::now();
    let r = modelless::Config::new().compile_bytes(bytes, Path::new("hostile.onnx"));
    let dt = t0.elapsed();
    let err = match r {
        Ok(_) => panic!("{what}: compiled"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(needle), "{what}: expected {needle:?} in: {err}");
    assert!(dt < Duration::from_secs(1), "{what}: took {dt:?}");
}

const BIG: i64 = 1_000_000; // 10^6 per dimension: 10^12 elements in two dims

#[test]
fn huge_initializer_is_refused_without_allocating() {
    // Declared 10^12 elements with no data at all.
    let bytes =
        model(vec![input("x", &[1, 4])], vec![node("Add", &["x", "w"], "y")], vec![floats("w", &[BIG, BIG], &[])]);
    refused("initializer", &bytes, "more than modelless handles");
    // Dimensions whose product overflows 64 bits.
    let bytes = model(
        vec![input("x", &[1, 4])],
        vec![node("Add", &["x", "w"], "y")],
        vec![floats("w", &[i64::MAX, i64::MAX, 4], &[])],
    );
    refused("overflowing initializer", &bytes, "too many elements");
}

#[test]
fn huge_input_is_refused() {
    let bytes = model(vec![input("x", &[1, BIG, BIG])], vec![node("Relu", &["x"], "y")], vec![]);
    refused("input", &bytes, "is too large");
    let bytes = model(vec![input("x", &[i64::MAX, i64::MAX])], vec![node("Relu", &["x"], "y")], vec![]);
    refused("overflowing input", &bytes, "is too large");
}

#[test]
fn huge_computed_tensors_are_refused() {
    let x = || vec![input("x", &[1, 4])];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "ConstantOfShape",
            model(
                x(),
                vec![node("ConstantOfShape", &["s"], "c"), node("Add", &["x", "c"], "y")],
                vec![ints("s", &[BIG, BIG, 4])],
            ),
        ),
        (
            "ConstantOfShape overflow",
            model(
                x(),
                vec![node("ConstantOfShape", &["s"], "c"), node("Add", &["x", "c"], "y")],
                vec![ints("s", &[i64::MAX, i64::MAX, 4])],
            ),
        ),
        ("Expand", model(x(), vec![node("Expand", &["x", "s"], "y")], vec![ints("s", &[BIG, BIG, 1, 4])])),
        ("Tile", model(x(), vec![node("Tile", &["x", "r"], "y")], vec![ints("r", &[BIG, BIG])])),
        ("Tile overflow", model(x(), vec![node("Tile", &["x", "r"], "y")], vec![ints("r", &[i64::MAX, i64::MAX])])),
        ("Pad", model(x(), vec![node("Pad", &["x", "p"], "y")], vec![ints("p", &[BIG, BIG, BIG, BIG])])),
        (
            "Range",
            model(
                x(),
                vec![node("Range", &["a", "b", "d"], "r"), node("Add", &["x", "r"], "y")],
                vec![floats("a", &[], &[0.0]), floats("b", &[], &[1e30]), floats("d", &[], &[1.0])],
            ),
        ),
        (
            "Range int",
            model(
                x(),
                vec![node("Range", &["a", "b", "d"], "r"), node("Add", &["x", "r"], "y")],
                vec![
                    pb::TensorProto {
                        name: "a".into(),
                        data_type: 7,
                        int64_data: vec![i64::MIN],
                        ..Default::default()
                    },
                    pb::TensorProto {
                        name: "b".into(),
                        data_type: 7,
                        int64_data: vec![i64::MAX],
                        ..Default::default()
                    },
                    pb::TensorProto { name: "d".into(), data_type: 7, int64_data: vec![1], ..Default::default() },
                ],
            ),
        ),
    ];
    for (what, bytes) in cases {
        let t0 = Instant::now();
        let r = std::panic::catch_unwind(|| modelless::Config::new().compile_bytes(&bytes, Path::new("hostile.onnx")));
        let dt = t0.elapsed();
        match r {
            Ok(Ok(_)) => panic!("{what}: compiled"),
            Ok(Err(e)) => assert!(e.to_string().contains("more than modelless handles"), "{what}: {e}"),
            Err(_) => panic!("{what}: panicked"),
        }
        assert!(dt < Duration::from_secs(1), "{what}: took {dt:?}");
    }
}
