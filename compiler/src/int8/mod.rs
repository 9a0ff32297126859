//! int8 post-training quantization of float models.
//!
//! Pipeline: the optimized float graph is run on calibration samples by the IR simulator
//! ([`calibrate`]), every activation gets int8 parameters and every Conv/Gemm/MatMul weight
//! becomes symmetric per-channel int8 ([`insert`], QDQ form), and the `lower_qdq` pass turns
//! the patterns into integer ops — the same path a pre-quantized QDQ model takes. The
//! scheme is documented in docs/quantization.md.

pub mod calibrate;
pub mod insert;
pub mod preserve;
pub mod report;

pub use calibrate::{CalibMethod, Range};
pub use insert::QuantPoint;

use crate::error::{Error, Result};
use crate::interp;
use crate::ir::{Graph, TensorData};
use std::path::Path;

/// How float weights become int8 (`--rounding`; the audit compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Rounding {
    /// Round half to even, per-channel scales (the default).
    Nearest,
    /// Error-preserving flips: per channel, the roundings that keep the layer's output on
    /// the calibration data closest to float (see [`preserve`]).
    Preserve,
    /// Toward −∞ (audit variant).
    Floor,
    /// Toward +∞ (audit variant).
    Ceil,
    /// Nearest with one scale per tensor instead of per channel (audit variant).
    PerTensor,
}

/// Settings of `--int8`.
#[derive(Debug, Clone)]
pub struct Int8Options {
    pub method: CalibMethod,
    /// Percentile for [`CalibMethod::Percentile`].
    pub percentile: f64,
    /// Nodes (ONNX names) whose weights stay float.
    pub keep_float: Vec<String>,
    /// Raw int8 model inputs and outputs instead of float ones.
    pub io_int8: bool,
    /// Show calibration progress on stderr.
    pub progress: bool,
    pub rounding: Rounding,
}

impl Default for Int8Options {
    fn default() -> Self {
        Int8Options {
            method: CalibMethod::Percentile,
            percentile: 99.99,
            keep_float: vec![],
            io_int8: false,
            progress: false,
            rounding: Rounding::Nearest,
        }
    }
}

/// A float graph quantized to int8 (in QDQ form, before `lower_qdq`), with the map from
/// float activations to their int8 twins.
pub struct Quantized {
    pub graph: Graph,
    pub points: Vec<QuantPoint>,
}

/// Quantizes the optimized float graph `g` with calibration `samples` (one tensor per graph
/// input each).
pub fn quantize(g: &Graph, samples: &[Vec<TensorData>], opts: &Int8Options) -> Result<Quantized> {
    // Weights compressed by sparse code generation go back to dense constants first (the
    // value ids of `g` stay valid); `sparsify` runs again after quantization.
    let g = &*crate::passes::sparsify::densify(g);
    for name in &opts.keep_float {
        if !g.nodes.iter().any(|n| &n.name == name) {
            return Err(Error::Usage(format!(
                "--keep-float \"{name}\": no such node (see `modelless inspect` for node names)"
            )));
        }
    }
    let points = insert::quant_points(g);
    let mut last = 0;
    let progress = |done: usize, total: usize| {
        if opts.progress && (done * 20 / total != last || done == total) {
            last = done * 20 / total;
            eprint!("\rcalibrating [{:<20}] {done}/{total}", "#".repeat(last));
            if done == total {
                eprintln!();
            }
        }
    };
    let ranges = calibrate::ranges(g, &points, samples, opts.method, opts.percentile, progress)
        .map_err(|e| Error::Model(format!("int8 calibration failed: {e}")))?;
    let params: Vec<(f32, i32)> = ranges.iter().map(|&r| calibrate::int8_params(r)).collect();
    let hessians = if opts.rounding == Rounding::Preserve {
        let layers: Vec<String> = g
            .nodes
            .iter()
            .filter(|n| insert::weight_axis(g, n).is_some() && !opts.keep_float.contains(&n.name))
            .map(|n| n.name.clone())
            .collect();
        let step = samples.len().div_ceil(32).max(1);
        let subset: Vec<Vec<TensorData>> = samples.iter().step_by(step).cloned().collect();
        preserve::hessians(g, &layers, &subset).map_err(|e| Error::Model(format!("--rounding preserve: {e}")))?
    } else {
        Default::default()
    };
    let (graph, points) =
        insert::insert_qdq(g, &points, &params, &opts.keep_float, opts.io_int8, opts.rounding, &hessians);
    Ok(Quantized { graph, points })
}

/// Calibration samples from an `.npy` file (`[N, ...]` with each sample the size of the
/// model's single input, or a single sample) or a directory of such files, in name order.
pub fn load_samples(path: &Path, g: &Graph) -> Result<Vec<Vec<TensorData>>> {
    let [input] = g.inputs.as_slice() else {
        return Err(Error::Usage(format!(
            "--calib supports single-input models; this one has {} inputs",
            g.inputs.len()
        )));
    };
    let want = g.ty(*input).len();
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut v: Vec<_> = std::fs::read_dir(path)
            .map_err(|source| Error::Read { path: path.into(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "npy"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut samples = vec![];
    for f in &files {
        let npy = crate::npy::read_f32(f)?;
        if npy.data.is_empty() || npy.data.len() % want != 0 {
            return Err(Error::Usage(format!(
                "{}: {} values is not a whole number of samples of {want} values (the model input {:?})",
                f.display(),
                npy.data.len(),
                g.ty(*input).shape
            )));
        }
        samples.extend(npy.data.chunks(want).map(|c| vec![TensorData::F32(c.to_vec())]));
    }
    if samples.is_empty() {
        return Err(Error::Usage(format!("{}: no .npy calibration samples found", path.display())));
    }
    Ok(samples)
}

/// Signal-to-quantization-noise ratio in dB of `got` against `want` (∞ when equal).
pub fn sqnr_db(want: &[f32], got: &[f32]) -> f64 {
    let signal: f64 = want.iter().map(|&x| (x as f64).powi(2)).sum();
    let noise: f64 = want.iter().zip(got).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    if noise == 0.0 { f64::INFINITY } else { 10.0 * (signal.max(f64::MIN_POSITIVE) / noise).log10() }
}

/// Dequantized view of an int8 / uint8 tensor.
pub fn dequantize(d: &TensorData, scale: f32, zp: i32) -> Vec<f32> {
    d.to_i64().unwrap_or_default().iter().map(|&q| (q as i32 - zp) as f32 * scale).collect()
}

/// Per-layer SQNR (dB) of each quantization point on one sample: the float graph's value
/// against the dequantized int8 value in the final (lowered) int8 graph.
pub fn layer_sqnr(float: &Graph, int8: &Graph, points: &[QuantPoint], sample: &[TensorData]) -> Result<Vec<f64>> {
    let fv = interp::run_all(float, sample).map_err(Error::Model)?;
    let sample8 = quantize_inputs(int8, sample)?;
    let qv = interp::run_all(int8, &sample8).map_err(Error::Model)?;
    Ok(points
        .iter()
        .map(|p| match (fv.get(p.float.0), qv.get(p.int.0)) {
            (Some(Some(TensorData::F32(f))), Some(Some(q))) => sqnr_db(f, &dequantize(q, p.scale, p.zero_point)),
            _ => f64::NAN,
        })
        .collect())
}

/// Converts float inputs for a graph whose inputs may be int8 (`--io int8`): quantized with
/// the input's parameters.
pub fn quantize_inputs(g: &Graph, sample: &[TensorData]) -> Result<Vec<TensorData>> {
    g.inputs
        .iter()
        .zip(sample)
        .map(|(&v, d)| {
            let t = g.ty(v);
            match (t.dtype, &t.quant, d) {
                (crate::ir::DType::I8, Some(q), TensorData::F32(x)) => Ok(TensorData::I8(
                    x.iter()
                        .map(|&x| modelless_rt::quantize(x, q.scale[0], q.zero_point[0], -128, 127) as i8)
                        .collect(),
                )),
                _ => Ok(d.clone()),
            }
        })
        .collect()
}
