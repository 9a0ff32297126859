//! Shared helpers for the end-to-end tests: locating `../shared`, reading ONNX test sets,
//! building generated code into a harness and comparing outputs.

use modelless::frontend::read_tensor_file;
use modelless::toolchain::{self, Harness};
use modelless::{Config, Lang};
use std::path::{Path, PathBuf};

/// A float tensor: shape and data.
pub type Tensor = (Vec<usize>, Vec<f32>);

/// The read-only material folder (`../shared` from the repository root, or
/// `$MODELLESS_SHARED`). Panics — the tests fail, they do not skip — when it is missing.
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("MODELLESS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.join("models").is_dir(),
        "the shared material is missing: expected {} (set MODELLESS_SHARED to its location)",
        dir.display()
    );
    dir
}

/// `../shared/models/<rel>`.
pub fn model_dir(rel: &str) -> PathBuf {
    shared().join("models").join(rel)
}

/// One ONNX test set: inputs and expected outputs, in index order.
pub struct TestSet {
    pub name: String,
    pub inputs: Vec<Tensor>,
    pub outputs: Vec<Tensor>,
}

fn read_f32_pb(path: &Path) -> Tensor {
    let (ty, data) = read_tensor_file(path).unwrap_or_else(|e| panic!("{e}"));
    let data = data.as_f32().unwrap_or_else(|| panic!("{} is not float32", path.display())).to_vec();
    (ty.shape, data)
}

/// Reads every `test_data_set_*` of a model folder (sorted). Panics if there is none.
pub fn test_sets(dir: &Path) -> Vec<TestSet> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
        .collect();
    sets.sort();
    assert!(!sets.is_empty(), "{} has no test_data_set_*", dir.display());
    sets.iter()
        .map(|s| {
            let read_all = |prefix: &str| {
                (0..)
                    .map(|i| s.join(format!("{prefix}_{i}.pb")))
                    .take_while(|p| p.exists())
                    .map(|p| read_f32_pb(&p))
                    .collect::<Vec<_>>()
            };
            TestSet {
                name: s.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                inputs: read_all("input"),
                outputs: read_all("output"),
            }
        })
        .collect()
}

/// Generates code for `model` in `lang`, builds it into a harness in `dir`.
pub fn build(model: &Path, cfg: &Config, lang: Lang, dir: &Path, c_flags: &[&str]) -> Harness {
    let compiled =
        cfg.clone().lang(lang).compile_to_memory(model).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let sig = toolchain::IoSig::of(&compiled.graph);
    let h = match lang {
        Lang::C => toolchain::build_c(dir, &compiled.name, &compiled.files, &sig, &cfg.target, c_flags),
        Lang::Rust => toolchain::build_rust(dir, &compiled.name, &compiled.files, &sig, &cfg.target),
    };
    h.unwrap_or_else(|e| panic!("{}: {e}", model.display()))
}

/// Max abs error must be ≤ `rel · max(1, max |want|)`; panics with the numbers otherwise.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f32) {
    let check = modelless::verify::compare(what, got, want, rel);
    assert!(
        check.ok(),
        "{what}: max abs error {:.3e} exceeds {:.3e} (max rel {:.3e})",
        check.max_abs,
        check.tolerance,
        check.max_rel
    );
}

/// The inputs of every `test_data_set_*` of `dir`, quantized for `g`'s int8 inputs.
pub fn int8_inputs(dir: &std::path::Path, g: &modelless::ir::Graph) -> Vec<Vec<Vec<u8>>> {
    let mut sets: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
        .collect();
    sets.sort();
    sets.iter()
        .map(|s| {
            let raw: Vec<modelless::ir::TensorData> = (0..)
                .map(|i| s.join(format!("input_{i}.pb")))
                .take_while(|p| p.exists())
                .map(|p| modelless::frontend::read_tensor_file(&p).unwrap().1)
                .collect();
            modelless::int8::quantize_inputs(g, &raw)
                .unwrap()
                .iter()
                .map(modelless::ir::TensorData::to_le_bytes)
                .collect()
        })
        .collect()
}

/// The outputs of the compiler's int8 simulation of `g` on every set of `inputs` (raw bytes).
pub fn simulate(g: &modelless::ir::Graph, inputs: &[Vec<Vec<u8>>]) -> Vec<Vec<Vec<u8>>> {
    inputs
        .iter()
        .map(|s| {
            let tensors: Vec<modelless::ir::TensorData> = s
                .iter()
                .zip(&g.inputs)
                .map(|(b, &v)| modelless::ir::TensorData::from_le_bytes(g.ty(v).dtype, b))
                .collect();
            modelless::interp::run(g, &tensors).unwrap().iter().map(modelless::ir::TensorData::to_le_bytes).collect()
        })
        .collect()
}
