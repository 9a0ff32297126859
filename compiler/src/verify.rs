//! `modelless verify`: generate, compile and run the model, run the reference on the same
//! inputs, and compare output by output.

use crate::compile::{Config, Lang};
use crate::error::{Error, Result};
use crate::reference::{F32Tensor as Tensor, run_tract};
use crate::toolchain;
use std::path::{Path, PathBuf};

/// Agreement of one output with the reference.
#[derive(Debug, Clone)]
pub struct OutputCheck {
    pub name: String,
    pub max_abs: f32,
    pub max_rel: f32,
    /// Allowed max abs error: `rel_tol * max(1, max |ref|)`.
    pub tolerance: f32,
}

impl OutputCheck {
    pub fn ok(&self) -> bool {
        self.max_abs <= self.tolerance
    }
}

/// Compares `got` with `want`; NaN anywhere (or a length mismatch) is an infinite error.
pub fn compare(name: &str, got: &[f32], want: &[f32], rel_tol: f32) -> OutputCheck {
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let mut max_abs = if got.len() == want.len() { 0.0f32 } else { f32::INFINITY };
    let mut max_rel = 0.0f32;
    for (g, w) in got.iter().zip(want) {
        let d = (g - w).abs();
        let d = if d.is_nan() && !(g.is_nan() && w.is_nan()) {
            f32::INFINITY
        } else if d.is_nan() {
            0.0
        } else {
            d
        };
        max_abs = max_abs.max(d);
        max_rel = max_rel.max(d / w.abs().max(f32::MIN_POSITIVE));
    }
    OutputCheck { name: name.to_string(), max_abs, max_rel, tolerance: rel_tol * scale }
}

/// One language's result.
#[derive(Debug, Clone)]
pub struct LangReport {
    pub lang: Lang,
    pub checks: Vec<OutputCheck>,
}

/// Deterministic pseudo-random inputs in `[-1, 1)` (xorshift64*, fixed seed).
pub fn random_inputs(shapes: &[Vec<usize>], seed: u64) -> Vec<Tensor> {
    let mut s = seed.max(1);
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let r = s.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((r >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    shapes.iter().map(|sh| (sh.clone(), (0..sh.iter().product()).map(|_| next()).collect())).collect()
}

/// Options of `verify`.
pub struct VerifyOptions {
    pub config: Config,
    pub langs: Vec<Lang>,
    /// One `.npy` per model input, or empty for random inputs.
    pub inputs: Vec<PathBuf>,
    pub rel_tol: f32,
    pub seed: u64,
}

/// Builds the model in each language, runs it and tract on the same inputs, and reports.
pub fn verify(model: &Path, opts: &VerifyOptions) -> Result<Vec<LangReport>> {
    let probe = opts.config.clone().lang(Lang::C).compile_to_memory(model)?;
    let in_shapes: Vec<Vec<usize>> = probe.graph.inputs.iter().map(|&v| probe.graph.ty(v).shape.clone()).collect();
    let in_names: Vec<String> = probe.graph.inputs.iter().map(|&v| probe.graph.value(v).name.clone()).collect();
    let out_names: Vec<String> = probe.graph.outputs.iter().map(|&v| probe.graph.value(v).name.clone()).collect();
    let inputs: Vec<Tensor> = if opts.inputs.is_empty() {
        random_inputs(&in_shapes, opts.seed)
    } else {
        if opts.inputs.len() != in_shapes.len() {
            return Err(Error::Usage(format!(
                "the model has {} inputs ({}), got {} --input files",
                in_shapes.len(),
                in_names.join(", "),
                opts.inputs.len()
            )));
        }
        let mut v = vec![];
        for ((path, shape), name) in opts.inputs.iter().zip(&in_shapes).zip(&in_names) {
            let a = crate::npy::read_f32(path)?;
            if &a.shape != shape {
                return Err(Error::Npy {
                    path: path.clone(),
                    msg: format!("has shape {:?}, but model input \"{name}\" has shape {shape:?}", a.shape),
                });
            }
            v.push((a.shape, a.data));
        }
        v
    };
    let reference = run_tract(model, &inputs)?;
    let sample: Vec<Vec<f32>> = inputs.iter().map(|(_, d)| d.clone()).collect();
    let mut reports = vec![];
    for &lang in &opts.langs {
        let compiled = opts.config.clone().lang(lang).compile_to_memory(model)?;
        let dir = tempfile::tempdir().map_err(|e| Error::Toolchain(format!("cannot create a temp dir: {e}")))?;
        let sig = toolchain::IoSig::of(&compiled.graph);
        let harness = match lang {
            Lang::C => toolchain::build_c(dir.path(), &compiled.name, &compiled.files, &sig, &opts.config.target, &[])?,
            Lang::Rust => {
                toolchain::build_rust(dir.path(), &compiled.name, &compiled.files, &sig, &opts.config.target)?
            }
        };
        let got = harness.run(std::slice::from_ref(&sample))?;
        let outs = got.into_iter().next().unwrap_or_default();
        let checks = outs
            .iter()
            .zip(&reference)
            .zip(&out_names)
            .map(|((g, (_, want)), name)| compare(name, g, want, opts.rel_tol))
            .collect();
        reports.push(LangReport { lang, checks });
    }
    Ok(reports)
}
