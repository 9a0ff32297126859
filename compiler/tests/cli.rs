//! The command line on real models and on bad input: every failure is a clear message, a
//! non-zero exit code (2 for unsupported ops), no panic, and no partial output directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use prost::Message as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tract_onnx::pb;

fn shared() -> PathBuf {
    let dir = std::env::var_os("MODELLESS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(dir.join("models").is_dir(), "shared material missing at {}", dir.display());
    dir
}

fn model(rel: &str) -> PathBuf {
    shared().join("models").join(rel).join("model.onnx")
}

fn modelless(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelless")).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a failing `build` into `dir/out` and checks the error, the exit code, that no panic
/// happened and that nothing was left behind in `dir`.
fn build_fails(dir: &Path, args: &[&str], code: i32, needle: &str) -> String {
    let out = dir.join("out");
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.extend(["-o", out.to_str().unwrap()]);
    let o = modelless(&all);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "args {args:?}: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(
        left.iter().all(|n| n.to_string_lossy().ends_with(".onnx") || n.to_string_lossy().ends_with(".npy")),
        "left behind: {left:?}"
    );
    err
}

#[test]
fn builds_c_and_rust_for_a_real_model() {
    let tmp = tempfile::tempdir().unwrap();
    for lang in ["c", "rust"] {
        let out = tmp.path().join(lang);
        let m = model("digits/digits_cnn");
        let o = modelless(&["build", m.to_str().unwrap(), "--lang", lang, "-o", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let names: Vec<String> =
            std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        let want: &[&str] =
            if lang == "c" { &["digits_cnn.c", "digits_cnn.h", "modelless_rt.h"] } else { &["digits_cnn.rs"] };
        for w in want {
            assert!(names.iter().any(|n| n == w), "{lang}: {w} missing from {names:?}");
        }
    }
    let h = std::fs::read_to_string(tmp.path().join("c/digits_cnn.h")).unwrap();
    for needle in [
        "#define DIGITS_CNN_INPUT_LEN 64",
        "#define DIGITS_CNN_OUTPUT_LEN 10",
        "DIGITS_CNN_ARENA_BYTES",
        "DIGITS_CNN_ARENA_ALIGN",
        "int digits_cnn_run(const float *input, float *output, void *arena);",
    ] {
        assert!(h.contains(needle), "header lacks {needle}:\n{h}");
    }
}

#[test]
fn name_flag_sets_the_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let m = model("digits/digits_mlp");
    let o = modelless(&["build", m.to_str().unwrap(), "--name", "mlp", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("mlp.h").exists() && out.join("mlp.c").exists());
    let bad = modelless(&["build", m.to_str().unwrap(), "--name", "9 lives", "-o", out.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("not a valid C/Rust identifier"));
}

#[test]
fn inspect_lists_nodes_macs_and_memory() {
    let m = model("mlperf-tiny/kws_dscnn_fp32");
    let o = modelless(&["inspect", m.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    // The DS-CNN's 2.66 M MACs, as documented in ../shared/README.md.
    let macs: u64 =
        s.lines().find(|l| l.starts_with("MACs:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((2_600_000..2_700_000).contains(&macs), "MACs {macs}");
    assert!(s.contains("arena:") && s.contains("weights:") && s.contains("Conv"));
}

#[test]
fn verify_passes_on_real_inputs_and_rejects_bad_npy() {
    let tmp = tempfile::tempdir().unwrap();
    let m = model("digits/digits_cnn");
    // A real test image from the labelled digits data, as a 1x1x8x8 float32 .npy.
    let x = modelless::npy::read_f32(&shared().join("models/digits/data/x_test.npy")).unwrap();
    let one = tmp.path().join("one.npy");
    modelless::npy::write_f32(&one, &[1, 1, 8, 8], &x.data[..64]).unwrap();
    let o = modelless(&["verify", m.to_str().unwrap(), "--input", one.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(s.matches(" ok").count(), 2, "{s}");

    let wrong_shape = tmp.path().join("wrong_shape.npy");
    modelless::npy::write_f32(&wrong_shape, &[1, 64], &x.data[..64]).unwrap();
    let o = modelless(&["verify", m.to_str().unwrap(), "--input", wrong_shape.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("has shape [1, 64], but model input \"input\" has shape [1, 1, 8, 8]"),
        "{}",
        stderr(&o)
    );

    // int64 labels are a valid .npy of the wrong dtype.
    let labels = shared().join("models/digits/data/y_test.npy");
    let o = modelless(&["verify", m.to_str().unwrap(), "--input", labels.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("expected float32"), "{}", stderr(&o));

    let garbage = tmp.path().join("garbage.npy");
    std::fs::write(&garbage, b"\x93NUMPY garbage").unwrap();
    let o = modelless(&["verify", m.to_str().unwrap(), "--input", garbage.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a valid .npy"), "{}", stderr(&o));
}

#[test]
fn missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    build_fails(tmp.path(), &["/nonexistent/model.onnx"], 1, "cannot read /nonexistent/model.onnx");
}

#[test]
fn non_onnx_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("not.onnx");
    std::fs::write(&f, b"this is a text file, not a protobuf\n").unwrap();
    build_fails(tmp.path(), &[f.to_str().unwrap()], 1, "is not a valid ONNX model");
}

#[test]
fn truncated_onnx() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(model("digits/digits_cnn")).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 3, 40] {
        let f = tmp.path().join("cut.onnx");
        std::fs::write(&f, &bytes[..cut]).unwrap();
        build_fails(tmp.path(), &[f.to_str().unwrap()], 1, "is not a valid ONNX model");
    }
}

#[test]
fn unsupported_ops_are_listed_with_node_names_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    // A real ONNX backend test whose op (NonMaxSuppression) is not supported.
    let m = shared().join("onnx-backend-opset17/node/test_nonmaxsuppression_center_point_box_format/model.onnx");
    let err = build_fails(tmp.path(), &[m.to_str().unwrap()], 2, "NonMaxSuppression");
    assert!(err.contains("ops modelless does not support"), "{err}");

    // Two unsupported op types in one model: both are listed, with node names.
    let mut proto = pb::ModelProto::decode(std::fs::read(model("digits/digits_cnn")).unwrap().as_slice()).unwrap();
    let g = proto.graph.as_mut().unwrap();
    let relus: Vec<usize> = (0..g.node.len()).filter(|&i| g.node[i].op_type == "Relu").collect();
    g.node[relus[0]].op_type = "Unique".into();
    g.node[relus[1]].op_type = "TfIdfVectorizer".into();
    let (n0, n1) = (g.node[relus[0]].name.clone(), g.node[relus[1]].name.clone());
    let f = tmp.path().join("two.onnx");
    std::fs::write(&f, proto.encode_to_vec()).unwrap();
    let err = build_fails(tmp.path(), &[f.to_str().unwrap()], 2, "Unique");
    assert!(err.contains("TfIdfVectorizer") && err.contains(&n0) && err.contains(&n1), "{err}");
}

#[test]
fn dynamic_dims_need_a_binding() {
    let tmp = tempfile::tempdir().unwrap();
    let dynamic = shared().join("models/mlperf-tiny/kws_dscnn_fp32/model_dynamic_batch.onnx");
    // The symbolic batch dim defaults to 1.
    let ok = tmp.path().join("ok");
    let o = modelless(&["build", dynamic.to_str().unwrap(), "-o", ok.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(&ok).unwrap();

    // Make the time axis symbolic too: now the input needs --input-shape.
    let mut proto = pb::ModelProto::decode(std::fs::read(&dynamic).unwrap().as_slice()).unwrap();
    let input = &mut proto.graph.as_mut().unwrap().input[0];
    if let Some(pb::type_proto::Value::TensorType(t)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.shape.as_mut().unwrap().dim[1].value = Some(pb::tensor_shape_proto::dimension::Value::DimParam("T".into()));
    }
    let f = tmp.path().join("dyn.onnx");
    std::fs::write(&f, proto.encode_to_vec()).unwrap();
    let err = build_fails(tmp.path(), &[f.to_str().unwrap()], 1, "input \"input_1\": dimension 1 is symbolic");
    assert!(err.contains("--input-shape input_1="), "{err}");

    let bound = tmp.path().join("bound");
    let o =
        modelless(&["build", f.to_str().unwrap(), "--input-shape", "input_1=1x49x10x1", "-o", bound.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(&bound).unwrap();

    build_fails(tmp.path(), &[f.to_str().unwrap(), "--input-shape", "input_1=1x49x10"], 1, "rank 3");
    build_fails(tmp.path(), &[f.to_str().unwrap(), "--input-shape", "nosuch=1x2"], 1, "not a model input");
    build_fails(tmp.path(), &[f.to_str().unwrap(), "--input-shape", "input_1=1xAx10x1"], 1, "is not NAME=DxDx");
}

#[test]
fn existing_output_dir_is_updated_not_clobbered_on_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = model("digits/digits_mlp");
    assert!(modelless(&["build", m.to_str().unwrap(), "-o", out.to_str().unwrap()]).status.success());
    let before = std::fs::read(out.join("digits_mlp.c")).unwrap();
    let bad = tmp.path().join("bad.onnx");
    std::fs::write(&bad, b"junk").unwrap();
    let o = modelless(&["build", bad.to_str().unwrap(), "--name", "digits_mlp", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(out.join("digits_mlp.c")).unwrap(), before);
}

#[test]
fn unknown_target() {
    let tmp = tempfile::tempdir().unwrap();
    let m = model("digits/digits_mlp");
    build_fails(tmp.path(), &[m.to_str().unwrap(), "--target", "z80"], 1, "unknown target \"z80\"");
}

/// `build --tune` on the repository's digits CNN writes its record beside the sources;
/// `--tuning` with that record rebuilds the same bytes; a record naming a node the model
/// does not have, or made for another target, fails without output.
#[test]
fn tune_records_and_tuning_reproduces() {
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/models/digits_cnn.onnx");
    let m = digits.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let o = modelless(&["build", m, "--tune", "-o", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("tune: conv_"), "{}", stderr(&o));
    let record = a.join("tuning.toml");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains("\"conv_0\" = ") && text.contains(" µs"), "{text}");
    let o = modelless(&["build", m, "--tuning", record.to_str().unwrap(), "-o", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = |d: &Path| std::fs::read(d.join("digits_cnn.c")).unwrap();
    assert!(c(&a) == c(&b), "--tuning rebuilt different code");

    let (records, fails) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bad = records.path().join("bad.toml");
    std::fs::write(&bad, text.replace("\"conv_0\" = ", "\"conv_99\" = 1\n\"conv_0\" = ")).unwrap();
    build_fails(fails.path(), &[m, "--tuning", bad.to_str().unwrap()], 1, "node \"conv_99\" is not in this build");
    std::fs::write(&bad, text.replace("target = ", "target = \"riscv64\"\nx = ")).unwrap();
    build_fails(fails.path(), &[m, "--tuning", bad.to_str().unwrap()], 1, "tuned for target riscv64");
    build_fails(fails.path(), &[m, "--tune", "--emit", "lib"], 1, "pass that file with --tuning");
}
