//! Every entry of docs/errors.md, triggered through the `modelless` binary: the message the
//! user sees contains the documented form, the exit code is the documented one, no panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{floats, input, ints, model, node, node_ints, shared};
use prost::Message as _;
use std::path::Path;
use std::process::Command;
use tract_onnx::pb;

fn docs() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/errors.md")).unwrap()
}

struct Case {
    /// The docs/errors.md heading (`## id`).
    id: &'static str,
    args: Vec<String>,
    code: i32,
    /// Fragments of the message; each must appear in stderr and, verbatim, in the doc entry.
    needles: &'static [&'static str],
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn model_path(rel: &str) -> String {
    shared().join("models").join(rel).join("model.onnx").to_str().unwrap().to_string()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn cases(tmp: &Path) -> Vec<Case> {
    let digits = shared().join("models/digits/digits_cnn/model.onnx");
    let digits = digits.to_str().unwrap();
    let mlp = shared().join("models/digits/digits_mlp/model.onnx");
    let mlp = mlp.to_str().unwrap();
    let x = || vec![input("x", &[1, 4])];
    let out = tmp.join("out");
    let out = out.to_str().unwrap();

    // A model whose input has a symbolic non-batch dimension, and one with no shape at all.
    let mut dynamic = pb::ModelProto::decode(model(x(), vec![node("Relu", &["x"], "y")], vec![]).as_slice()).unwrap();
    if let Some(pb::type_proto::Value::TensorType(t)) =
        dynamic.graph.as_mut().unwrap().input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.shape.as_mut().unwrap().dim[1].value = Some(pb::tensor_shape_proto::dimension::Value::DimParam("T".into()));
    }
    let mut shapeless = dynamic.clone();
    if let Some(pb::type_proto::Value::TensorType(t)) =
        shapeless.graph.as_mut().unwrap().input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.shape = None;
    }
    let mut custom_domain =
        pb::ModelProto::decode(model(x(), vec![node("Relu", &["x"], "y")], vec![]).as_slice()).unwrap();
    custom_domain.graph.as_mut().unwrap().node[0].domain = "com.microsoft".into();
    // Reshape to a shape given at run time (a second graph input).
    let mut s_input = input("s", &[2]);
    if let Some(pb::type_proto::Value::TensorType(t)) = s_input.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.elem_type = 7;
    }
    let computed_shape = model(vec![input("x", &[1, 4]), s_input], vec![node("Reshape", &["x", "s"], "y")], vec![]);
    let no_graph = pb::ModelProto { ir_version: 8, ..Default::default() }.encode_to_vec();

    let bad_target = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../targets/aarch64.toml"))
        .unwrap()
        .replace("compiler = \"aarch64-linux-gnu-gcc\"", "compiler = \"no-such-gcc\"")
        .replace("package = \"gcc-aarch64-linux-gnu\"", "package = \"gcc-no-such\"");
    let bad_target = write(tmp, "board.toml", bad_target.as_bytes());
    let broken_toml = write(tmp, "broken.toml", b"name = [");
    let file_in_the_way = write(tmp, "file", b"");

    let npy = tmp.join("in.npy");
    modelless::npy::write_f32(&npy, &[1, 64], &[0.0; 64]).unwrap();
    let garbage = write(tmp, "garbage.npy", b"\x93NUMPY garbage");
    let labels = shared().join("models/digits/data/y_test.npy");
    let odd = tmp.join("odd.npy");
    modelless::npy::write_f32(&odd, &[3, 10], &[0.0; 30]).unwrap();
    let odd = odd.to_str().unwrap().to_string();
    let calib = shared().join("models/digits/data/calib_x.npy").to_str().unwrap().to_string();
    let x_test = shared().join("models/digits/data/x_test.npy").to_str().unwrap().to_string();

    let m = |name: &str, bytes: Vec<u8>| write(tmp, name, &bytes);
    vec![
        Case {
            id: "cannot-read",
            args: args(&["build", "/nonexistent/model.onnx"]),
            code: 1,
            needles: &["cannot read /nonexistent/model.onnx"],
        },
        Case {
            id: "not-onnx",
            args: vec!["build".into(), m("text.onnx", b"hello, I am not a protobuf".to_vec())],
            code: 1,
            needles: &[
                "is not a valid ONNX model: protobuf decoding failed",
                "(hint: check that the file is a complete .onnx export",
            ],
        },
        Case {
            id: "not-onnx",
            args: vec!["build".into(), m("nograph.onnx", no_graph)],
            code: 1,
            needles: &["is not a valid ONNX model: it has no graph"],
        },
        Case {
            id: "unsupported-op",
            args: args(&[
                "build",
                shared()
                    .join("onnx-backend-opset17/node/test_nonmaxsuppression_center_point_box_format/model.onnx")
                    .to_str()
                    .unwrap(),
            ]),
            code: 2,
            needles: &[
                "the model uses ops modelless does not support yet:",
                "  NonMaxSuppression: \"",
                "(hint: re-export the model with supported ops",
            ],
        },
        Case {
            id: "unsupported-op",
            args: vec!["build".into(), m("domain.onnx", custom_domain.encode_to_vec())],
            code: 2,
            needles: &["(domain \"com.microsoft\")"],
        },
        Case {
            id: "unsupported-form",
            args: vec!["build".into(), m("computed.onnx", computed_shape)],
            code: 2,
            needles: &[
                "  Reshape: \"Reshape_node\" (shape must be a constant (computed shape are not supported); bind input \"s\" with --bind-input)",
            ],
        },
        Case {
            id: "symbolic-dimension",
            args: vec!["build".into(), m("dyn.onnx", dynamic.encode_to_vec())],
            code: 1,
            needles: &["input \"x\": dimension 1 is symbolic (hint: bind it with --input-shape x=1x?)"],
        },
        Case {
            id: "no-input-shape",
            args: vec!["build".into(), m("shapeless.onnx", shapeless.encode_to_vec())],
            code: 1,
            needles: &["input \"x\": has no declared shape (hint: pass --input-shape NAME=DxDx...)"],
        },
        Case {
            id: "input-shape-flag",
            args: args(&["build", mlp, "--input-shape", "input=1x64x1"]),
            code: 1,
            needles: &["--input-shape gives rank 3 but the model declares rank 2"],
        },
        Case {
            id: "input-shape-flag",
            args: args(&["build", mlp, "--input-shape", "input=2x64"]),
            code: 1,
            needles: &["--input-shape gives 2 for dimension 0, but the model fixes it to 1"],
        },
        Case {
            id: "input-shape-flag",
            args: args(&["build", mlp, "--input-shape", "nosuch=1x2"]),
            code: 1,
            needles: &["--input-shape names \"nosuch\", which is not a model input (inputs: input)"],
        },
        Case {
            id: "input-shape-flag",
            args: args(&["build", mlp, "--input-shape", "input=1xAx2"]),
            code: 1,
            needles: &["--input-shape \"input=1xAx2\" is not NAME=DxDx... (e.g. input_1=1x49x10x1)"],
        },
        Case {
            id: "bad-attribute",
            args: vec![
                "build".into(),
                m("perm.onnx", model(x(), vec![node_ints("Transpose", &["x"], "y", &[("perm", &[0, 0])])], vec![])),
            ],
            code: 1,
            needles: &["node \"Transpose_node\" (Transpose): perm [0, 0] is not a permutation of the axes of [1, 4]"],
        },
        Case {
            id: "bad-attribute",
            args: vec![
                "build".into(),
                m("axis.onnx", model(x(), vec![node_ints("Squeeze", &["x", "a"], "y", &[])], vec![ints("a", &[5])])),
            ],
            code: 1,
            needles: &["node \"Squeeze_node\" (Squeeze): ", "axis 5 is out of range for rank 2"],
        },
        Case {
            id: "shape-mismatch",
            args: vec![
                "build".into(),
                m("add.onnx", model(x(), vec![node("Add", &["x", "w"], "y")], vec![floats("w", &[3], &[1.0; 3])])),
            ],
            code: 1,
            needles: &["node \"Add_node\" (Add): shapes [1, 4] and [3] cannot be broadcast together"],
        },
        Case {
            id: "missing-input",
            args: vec![
                "build".into(),
                m("dangling.onnx", model(x(), vec![node("Add", &["x", "nowhere"], "y")], vec![])),
            ],
            code: 1,
            needles: &[
                "node \"Add_node\" (Add): input \"nowhere\" is not defined by any earlier node, initializer or graph input",
            ],
        },
        Case {
            id: "output-not-produced",
            args: vec!["build".into(), m("noout.onnx", model(x(), vec![node("Relu", &["x"], "z")], vec![]))],
            code: 1,
            needles: &["invalid model: graph output \"y\" is not produced by any node"],
        },
        Case {
            id: "bad-initializer",
            args: vec![
                "build".into(),
                m("init.onnx", model(x(), vec![node("Add", &["x", "w"], "y")], vec![floats("w", &[4], &[1.0; 3])])),
            ],
            code: 1,
            needles: &["invalid model: initializer \"w\": holds 3 elements but its shape [4] needs 4"],
        },
        Case {
            id: "too-large",
            args: vec![
                "build".into(),
                m(
                    "huge.onnx",
                    model(x(), vec![node("Add", &["x", "w"], "y")], vec![floats("w", &[1 << 20, 1 << 20], &[])]),
                ),
            ],
            code: 1,
            needles: &[
                "invalid model: initializer \"w\": its shape [1048576, 1048576] has 1099511627776 elements, more than modelless handles",
            ],
        },
        Case {
            id: "too-large",
            args: vec![
                "build".into(),
                m(
                    "expand.onnx",
                    model(x(), vec![node("Expand", &["x", "s"], "y")], vec![ints("s", &[1 << 20, 1 << 20, 4])]),
                ),
            ],
            code: 1,
            needles: &[
                "node \"Expand_node\" (Expand): shape [1048576, 1048576, 4] has more than 2^31 elements, more than modelless handles",
            ],
        },
        Case {
            id: "ram-exceeded",
            args: args(&[
                "build",
                &model_path("mlperf-tiny/vww_mobilenetv1_025_fp32"),
                "--target",
                "cortex-m0plus",
                "-o",
                out,
            ]),
            code: 1,
            needles: &[
                "target: arena 221,696 B exceeds the cortex-m0plus RAM of 16,384 B minus its stack reserve of 2,048 B (14,336 B left for the arena); try --int8",
                "and weights 843,400 B exceed the cortex-m0plus flash of 262,144 B",
                "; nothing written",
            ],
        },
        Case {
            id: "ram-exceeded",
            args: args(&[
                "build",
                &model_path("mlperf-tiny/kws_dscnn_fp32"),
                "--target",
                "cortex-m0plus",
                "--emit",
                "firmware",
                "-o",
                out,
            ]),
            code: 1,
            needles: &["target: arena 38,048 B exceeds the cortex-m0plus RAM of 16,384 B"],
        },
        Case {
            id: "flash-exceeded",
            args: args(&[
                "build",
                &model_path("mlperf-tiny/ad_fc_autoencoder_fp32"),
                "--target",
                "cortex-m0plus",
                "-o",
                out,
            ]),
            code: 1,
            needles: &[
                "target: weights 1,063,456 B exceed the cortex-m0plus flash of 262,144 B minus its code reserve of 32,768 B (229,376 B left for weights); try --int8 (4x smaller weights), --sparsity, or a target with more flash",
            ],
        },
        Case {
            id: "bad-name",
            args: args(&["build", mlp, "--name", "9 lives"]),
            code: 1,
            needles: &["--name \"9 lives\" is not a valid C/Rust identifier (try \"m_9_lives\")"],
        },
        Case {
            id: "cannot-write",
            args: args(&["build", mlp, "-o", &file_in_the_way]),
            code: 1,
            needles: &["cannot write ", ": exists and is not a directory"],
        },
        Case {
            id: "unknown-target",
            args: args(&["build", mlp, "--target", "z80"]),
            code: 1,
            needles: &["target: unknown target \"z80\" (built in: x86_64, "],
        },
        Case {
            id: "bad-target-file",
            args: args(&["build", mlp, "--target", &broken_toml]),
            code: 1,
            needles: &["target: ", "broken.toml: "],
        },
        Case {
            id: "missing-toolchain",
            args: args(&["build", mlp, "--target", &bad_target, "--emit", "lib", "-o", out]),
            code: 1,
            needles: &[
                "toolchain: no-such-gcc is not installed (install the Debian package gcc-no-such: apt-get install gcc-no-such)",
            ],
        },
        Case {
            id: "bad-emit",
            args: args(&["build", mlp, "--emit", "crate", "-o", out]),
            code: 1,
            needles: &["--emit crate makes a Rust crate: use --lang rust"],
        },
        Case {
            id: "bare-metal-verify",
            args: args(&["verify", mlp, "--target", "cortex-m4"]),
            code: 1,
            needles: &[
                "target: cortex-m4 is bare metal: test harnesses need an OS; build a firmware image instead (--emit firmware)",
            ],
        },
        Case {
            id: "bad-npy",
            args: args(&["verify", digits, "--input", &garbage]),
            code: 1,
            needles: &["garbage.npy: not a valid .npy"],
        },
        Case {
            id: "bad-npy",
            args: args(&["verify", digits, "--input", labels.to_str().unwrap()]),
            code: 1,
            needles: &[
                "y_test.npy: has dtype '<i8', expected float32 ('<f4') (hint: np.save(path, x.astype(np.float32)))",
            ],
        },
        Case {
            id: "bad-calibration",
            args: args(&["build", digits, "--int8", "--calib", &odd, "-o", out]),
            code: 1,
            needles: &[
                "odd.npy: 30 values is not a whole number of samples of 64 values (the model input [1, 1, 8, 8])",
            ],
        },
        Case {
            id: "keep-float-unknown",
            args: args(&["build", digits, "--int8", "--calib", &calib, "--keep-float", "nope", "-o", out]),
            code: 1,
            needles: &["--keep-float \"nope\": no such node (see `modelless inspect` for node names)"],
        },
        Case {
            id: "max-drift",
            args: args(&[
                "build",
                digits,
                "--int8",
                "--calib",
                &calib,
                "--data",
                &x_test,
                "--probes",
                "0",
                "--max-drift",
                "0",
                "-o",
                out,
            ]),
            code: 3,
            needles: &["--max-drift exceeded; nothing written"],
        },
        Case {
            id: "bad-sparsity",
            args: args(&["build", digits, "--sparsity", "0.8:x", "-o", out]),
            code: 1,
            needles: &[
                "--sparsity \"0.8:x\" is not one of FRACTION, global:FRACTION, structured:N:M or channel:FRACTION",
            ],
        },
        Case {
            id: "keep-dense-unknown",
            args: args(&["build", digits, "--sparsity", "0.5", "--keep-dense", "nope", "-o", out]),
            code: 1,
            needles: &["--keep-dense \"nope\": no such node (see `modelless inspect` for node names)"],
        },
        Case {
            id: "max-drop-needs-data",
            args: args(&["build", digits, "--sparsity", "0.5", "--max-drop", "1", "-o", out]),
            code: 1,
            needles: &["--max-drop needs --data X.npy (with --labels Y.npy for accuracy; without labels"],
        },
        Case {
            id: "npy-shape-mismatch",
            args: args(&["verify", digits, "--input", npy.to_str().unwrap()]),
            code: 1,
            needles: &["in.npy: has shape [1, 64], but model input \"input\" has shape [1, 1, 8, 8]"],
        },
    ]
}

/// The text of the `## id` section of docs/errors.md.
fn section<'a>(doc: &'a str, id: &str) -> &'a str {
    let head = format!("\n## {id}\n");
    let start = doc.find(&head).unwrap_or_else(|| panic!("docs/errors.md has no section \"## {id}\""));
    let rest = &doc[start + head.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

#[test]
fn every_documented_error_is_triggered_with_its_message() {
    let doc = docs();
    let tmp = tempfile::tempdir().unwrap();
    let cases = cases(tmp.path());
    let mut failures = vec![];
    for c in &cases {
        let sect = section(&doc, c.id);
        let o = Command::new(env!("CARGO_BIN_EXE_modelless")).args(&c.args).current_dir(tmp.path()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.code() != Some(c.code) {
            failures.push(format!("{}: exit {:?}, want {}: {err}", c.id, o.status.code(), c.code));
        }
        if err.contains("panicked") || !err.starts_with("error: ") {
            failures.push(format!("{}: not a clean error: {err}", c.id));
        }
        for n in c.needles {
            if !err.contains(n) {
                failures.push(format!("{}: {n:?} not in: {err}", c.id));
            }
            if !sect.contains(n) {
                failures.push(format!("{}: docs/errors.md section lacks {n:?}", c.id));
            }
        }
        if !sect.to_lowercase().contains(&format!("exit code {}", c.code)) {
            failures.push(format!("{}: docs/errors.md section does not say \"exit code {}\"", c.id, c.code));
        }
    }
    // Every section of the catalogue is exercised.
    for id in doc.lines().filter_map(|l| l.strip_prefix("## ")) {
        if !cases.iter().any(|c| c.id == id) {
            failures.push(format!("docs/errors.md section \"{id}\" has no test case"));
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}

/// A model refused for a bare-metal target's RAM or flash leaves no output behind (source,
/// library and firmware emission); the shared models the cross tests build still fit.
#[test]
fn resource_limits_write_nothing_and_keep_small_models() {
    let tmp = tempfile::tempdir().unwrap();
    for (model, target, emit) in [
        ("mlperf-tiny/vww_mobilenetv1_025_fp32", "cortex-m0plus", "source"),
        ("mlperf-tiny/ad_fc_autoencoder_fp32", "cortex-m0plus", "lib"),
        ("mlperf-tiny/kws_dscnn_fp32", "cortex-m0plus", "firmware"),
    ] {
        let out = tmp.path().join(format!("out_{emit}"));
        let o = Command::new(env!("CARGO_BIN_EXE_modelless"))
            .args(["build", &model_path(model), "--target", target, "--emit", emit, "-o", out.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{model}: {err}");
        assert!(err.contains("nothing written"), "{model}: {err}");
        assert!(!out.exists(), "{model} --emit {emit}: a refused build left {}", out.display());
    }
    // The models the firmware tests build for the Cortex-M targets pass the check.
    for (model, target) in [
        ("digits/digits_cnn", "cortex-m0plus"),
        ("digits/digits_mlp", "cortex-m0plus"),
        ("digits/digits_cnn_sparse80", "cortex-m0plus"),
        ("digits/digits_cnn", "cortex-m4"),
        ("mlperf-tiny/kws_dscnn_fp32", "cortex-m4"),
        ("mlperf-tiny/kws_dscnn_int8", "cortex-m4"),
        ("mlperf-tiny/vww_mobilenetv1_025_fp32", "cortex-m4"),
    ] {
        let t = modelless::target::TargetDesc::load(target).unwrap();
        let c = modelless::Config::new().target(t.clone()).compile_to_memory(Path::new(&model_path(model))).unwrap();
        c.check_fits(&t).unwrap_or_else(|e| panic!("{model} on {target}: {e}"));
    }
}

#[test]
#[ignore]
fn print_messages() {
    let tmp = tempfile::tempdir().unwrap();
    for c in cases(tmp.path()) {
        let o = Command::new(env!("CARGO_BIN_EXE_modelless")).args(&c.args).current_dir(tmp.path()).output().unwrap();
        println!("== {} (exit {:?})\n{}", c.id, o.status.code(), String::from_utf8_lossy(&o.stderr));
    }
}
