//! Models with zero-element tensors (an empty model input or output, an empty slice, a
//! reduction over an empty set, a matrix product over an empty contraction): both backends
//! build them (the C with `-Wall -Wextra -Werror -pedantic`, no zero-length arrays), the
//! generated Rust is `no_std` and clippy-clean, and the outputs are ONNX's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{floats, input, ints, node, node_ints};
use modelless::target::TargetDesc;
use modelless::toolchain::{IoSig, build_c, build_rust};
use modelless::{Config, Lang};
use std::process::Command;
use tract_onnx::pb;

/// `node` with one integer attribute.
fn node_int(op: &str, inputs: &[&str], output: &str, attr: &str, v: i64) -> pb::NodeProto {
    let mut n = node(op, inputs, output);
    n.attribute = vec![pb::AttributeProto { name: attr.into(), r#type: 2, i: v, ..Default::default() }];
    n
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Compiles `model` in both languages, runs it on `input` and compares with `want`; returns
/// the generated Rust module for the clippy check.
fn run(name: &str, model: Vec<u8>, input: Vec<Vec<u8>>, want: &[f32]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.onnx"));
    std::fs::write(&path, model).unwrap();
    let target = TargetDesc::host();
    let mut rust = String::new();
    for lang in [Lang::C, Lang::Rust] {
        let c = Config::new().lang(lang).name(name).compile_to_memory(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let sig = IoSig::of(&c.graph);
        let out = tempfile::tempdir().unwrap();
        let h = match lang {
            Lang::C => build_c(out.path(), name, &c.files, &sig, &target, &["-Wshadow", "-Wstrict-prototypes"]),
            Lang::Rust => {
                rust = c.files[0].contents.clone();
                build_rust(out.path(), name, &c.files, &sig, &target)
            }
        }
        .unwrap_or_else(|e| panic!("{name} {lang:?}: {e}"));
        let got = h.run_bytes(std::slice::from_ref(&input)).unwrap().remove(0).remove(0);
        let got: Vec<f32> = got.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let same = got.len() == want.len() && got.iter().zip(want).all(|(a, b)| a == b || a.is_nan() && b.is_nan());
        assert!(same, "{name} {lang:?}: got {got:?}, want {want:?}");
    }
    rust
}

#[test]
fn zero_element_models_build_and_run() {
    let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
    let mut modules: Vec<(String, String)> = vec![];

    // An empty slice concatenated with the input: the input again.
    let slice = node("Slice", &["x", "starts", "ends", "axes"], "e");
    let model = common::model(
        vec![input("x", &[2, 3])],
        vec![slice, node_int("Concat", &["e", "x"], "y", "axis", 1)],
        vec![ints("starts", &[5]), ints("ends", &[6]), ints("axes", &[1])],
    );
    modules.push(("z_concat".into(), run("z_concat", model, vec![f32_bytes(&x)], &x)));

    // An empty model output.
    let model = common::model(
        vec![input("x", &[2, 3])],
        vec![node("Slice", &["x", "starts", "ends", "axes"], "y")],
        vec![ints("starts", &[5]), ints("ends", &[6]), ints("axes", &[1])],
    );
    modules.push(("z_out".into(), run("z_out", model, vec![f32_bytes(&x)], &[])));

    // Reductions over an empty set of an empty model input: the identity values.
    for (op, want) in
        [("ReduceSum", 0.0), ("ReduceMax", f32::NEG_INFINITY), ("ReduceProd", 1.0), ("ReduceMean", f32::NAN)]
    {
        let r = if op == "ReduceSum" {
            node("ReduceSum", &["x", "axes"], "y")
        } else {
            node_ints(op, &["x"], "y", &[("axes", &[1])])
        };
        let model = common::model(vec![input("x", &[2, 0, 4])], vec![r], vec![ints("axes", &[1])]);
        let name = format!("z_{}", op.to_lowercase());
        let rs = run(&name, model, vec![vec![]], &[want; 8]);
        modules.push((name, rs));
    }

    // A product over an empty contraction: zeros; Gemm adds its bias.
    let model = common::model(
        vec![input("a", &[2, 0])],
        vec![node("MatMul", &["a", "b"], "y")],
        vec![floats("b", &[0, 3], &[])],
    );
    modules.push(("z_matmul".into(), run("z_matmul", model, vec![vec![]], &[0.0; 6])));
    let model = common::model(
        vec![input("a", &[2, 0])],
        vec![node("Gemm", &["a", "b", "c"], "y")],
        vec![floats("b", &[0, 3], &[]), floats("c", &[3], &[1.0, 2.0, 3.0])],
    );
    modules.push(("z_gemm".into(), run("z_gemm", model, vec![vec![]], &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0])));

    let tmp = tempfile::tempdir().unwrap();
    let mut lib = String::from("#![no_std]\n#![deny(warnings)]\n");
    for (name, src) in &modules {
        std::fs::write(tmp.path().join(format!("{name}.rs")), src).unwrap();
        lib.push_str(&format!("#[path = \"{name}.rs\"]\npub mod {name};\n"));
    }
    let lib_rs = tmp.path().join("lib.rs");
    std::fs::write(&lib_rs, lib).unwrap();
    let out = Command::new("clippy-driver")
        .args(["--edition", "2021", "--crate-type", "lib", "--emit=metadata", "-D", "warnings", "-D", "clippy::all"])
        .arg("-o")
        .arg(tmp.path().join("zero.rmeta"))
        .arg(&lib_rs)
        .output()
        .expect("clippy-driver must be installed (rustup component add clippy)");
    assert!(out.status.success(), "generated Rust is not clippy-clean:\n{}", String::from_utf8_lossy(&out.stderr));
}
