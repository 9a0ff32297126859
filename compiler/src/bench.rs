//! `modelless bench`: latency of the generated C and Rust next to the peers a user would
//! otherwise pick, all measured in the same run on the same input, single-threaded.
//!
//! The generated code is built with the target's flags plus full optimisation into a timing
//! harness ([`toolchain::build_c_timing`], [`toolchain::build_rust_timing`]) that times every
//! call with a monotonic clock after a warm-up. tract runs in process; ONNX Runtime, LiteRT
//! (XNNPACK) and TFLite Micro run through the scripts in `shared/peers/`, each of which
//! prints its median in ms as its last line. A tiny FMA-throughput kernel built with the same
//! flags measures the machine's single-core peak, so achieved GFLOP/s (GOP/s for int8
//! models) can be put next to it.

use crate::compile::{Config, Lang};
use crate::error::{Error, Result};
use crate::ir::{DType, Graph, TensorData};
use crate::target::TargetDesc;
use crate::toolchain;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The one-line install hint printed when a Python peer cannot run.
pub const PIP_HINT: &str = "pip install onnxruntime ai-edge-litert tflite-micro numpy";

/// Environment variable naming the Python interpreter for the peer scripts (default `python3`).
pub const PYTHON_ENV: &str = "MODELLESS_PYTHON";

/// Median and 90th percentile of a set of latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub median_ms: f64,
    /// `None` when the peer only reports its median.
    pub p90_ms: Option<f64>,
    pub runs: usize,
}

impl Stats {
    /// Median (mean of the two middle values for an even count) and p90 (nearest rank:
    /// the smallest value with at least 90% of the samples at or below it). `None` when
    /// `ms` is empty or holds a NaN.
    pub fn from_ms(ms: &[f64]) -> Option<Stats> {
        if ms.is_empty() || ms.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut v = ms.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        let rank = (n * 9).div_ceil(10).max(1);
        Some(Stats { median_ms: median, p90_ms: Some(v[rank - 1]), runs: n })
    }
}

/// A system timed next to the generated code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// tract 0.23, in process (`into_optimized().into_runnable()`).
    Tract,
    /// ONNX Runtime CPU (`bench_ort.py --opt all`).
    Ort,
    /// LiteRT with the XNNPACK delegate (`bench_litert.py --mode xnnpack`, needs a .tflite).
    Litert,
    /// TensorFlow Lite Micro, host build (`bench_tflm.py`, needs a .tflite).
    Tflm,
}

impl Peer {
    pub const ALL: [Peer; 4] = [Peer::Tract, Peer::Ort, Peer::Litert, Peer::Tflm];

    /// The system's name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Tract => "tract 0.23",
            Peer::Ort => "ONNX Runtime",
            Peer::Litert => "LiteRT XNNPACK",
            Peer::Tflm => "TFLM",
        }
    }
}

/// What timing one system gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Timed(Stats),
    /// Not measured, and why (a missing module with its install hint, no .tflite twin, a
    /// failing peer...).
    Skipped(String),
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub system: String,
    pub outcome: Outcome,
}

impl Row {
    fn median(&self) -> Option<f64> {
        match &self.outcome {
            Outcome::Timed(s) => Some(s.median_ms),
            Outcome::Skipped(_) => None,
        }
    }
}

/// The machine's single-core peak, measured by an FMA-throughput kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    pub f32_gflops: f64,
    /// int8 multiply-accumulate into exact int32 (AVX2: maddubs + madd; AVX-512 VNNI:
    /// 256-bit VPDPBUSD), in GOP/s.
    pub int8_gops: f64,
    /// Which kernel ran: `avx2-fma`, `avx512-vnni` (AVX2 float, VNNI int8) or `scalar`.
    pub kind: &'static str,
    /// Streaming read rate of a 256 KiB buffer (past L1, within L2), GB/s: the rate at which
    /// weights that do not fit L1 reach the core.
    pub l2_gbs: f64,
}

/// Results of one model.
#[derive(Debug, Clone)]
pub struct ModelBench {
    pub model: PathBuf,
    /// Multiply-accumulates of one run, summed over the IR as `inspect` does.
    pub macs: u64,
    /// The compiled graph computes with integer kernels (throughput in GOP/s).
    pub int8: bool,
    /// Where the input came from (`--input`, a test set, random).
    pub input_source: String,
    pub rows: Vec<Row>,
    /// The C build's footprint: arena bytes and flash (text + data of the model's object,
    /// weights and code, built with the timing flags), when the C build ran.
    pub c_footprint: Option<Footprint>,
}

/// RAM and flash of one generated build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub arena_bytes: usize,
    pub flash_bytes: u64,
}

impl ModelBench {
    /// The fastest modelless median, the denominator of every ratio.
    pub fn baseline_ms(&self) -> Option<f64> {
        self.rows.iter().filter(|r| r.system.starts_with("modelless")).filter_map(Row::median).reduce(f64::min)
    }

    /// `system median / fastest modelless median` (> 1: modelless is faster).
    pub fn ratio(&self, row: &Row) -> Option<f64> {
        Some(row.median()? / self.baseline_ms()?)
    }

    /// Achieved GFLOP/s (GOP/s for int8): `2 · MACs / median`.
    pub fn throughput(&self, row: &Row) -> Option<f64> {
        let ms = row.median()?;
        (ms > 0.0).then(|| 2.0 * self.macs as f64 / (ms * 1e-3) / 1e9)
    }

    /// Milliseconds to read the C build's flash (weights and code) once at the measured L2
    /// rate: a floor on the latency of a model whose weights do not fit L1.
    pub fn stream_floor_ms(&self, peak: &Peak) -> Option<f64> {
        let f = self.c_footprint?;
        Some(f.flash_bytes as f64 / (peak.l2_gbs * 1e9) * 1e3).filter(|x| x.is_finite())
    }

    /// Throughput as a fraction of the matching peak.
    pub fn of_peak(&self, row: &Row, peak: &Peak) -> Option<f64> {
        let p = if self.int8 { peak.int8_gops } else { peak.f32_gflops };
        Some(self.throughput(row)? / p).filter(|f| f.is_finite())
    }

    /// The table `modelless bench` prints.
    pub fn table(&self, peak: &Peak) -> String {
        let unit = if self.int8 { "GOP/s" } else { "GFLOP/s" };
        let mut s = String::new();
        let _ = writeln!(s, "model: {}", self.model.display());
        let _ = writeln!(
            s,
            "MACs: {} ({}), input: {}",
            self.macs,
            if self.int8 { "int8" } else { "float" },
            self.input_source
        );
        if let Some(f) = self.c_footprint {
            let _ = writeln!(
                s,
                "footprint of the C build: arena {} B, flash {} B (weights + code), read once at the L2 rate in {}",
                f.arena_bytes,
                f.flash_bytes,
                self.stream_floor_ms(peak).map_or("-".to_string(), |x| format!("{x:.4} ms"))
            );
        }
        let _ = writeln!(
            s,
            "{:<16} {:>11} {:>11} {:>8} {:>9} {:>7}",
            "system", "median ms", "p90 ms", "ratio", unit, "% peak"
        );
        for r in &self.rows {
            match &r.outcome {
                Outcome::Timed(st) => {
                    let _ = writeln!(
                        s,
                        "{:<16} {:>11.4} {:>11} {:>8} {:>9} {:>7}",
                        r.system,
                        st.median_ms,
                        st.p90_ms.map_or("-".to_string(), |p| format!("{p:.4}")),
                        self.ratio(r).map_or("-".to_string(), |x| format!("{x:.2}")),
                        self.throughput(r).map_or("-".to_string(), |x| format!("{x:.2}")),
                        self.of_peak(r, peak).map_or("-".to_string(), |x| format!("{:.1}", 100.0 * x)),
                    );
                }
                Outcome::Skipped(why) => {
                    let _ = writeln!(s, "{:<16} skipped: {why}", r.system);
                }
            }
        }
        let _ = writeln!(
            s,
            "ratio = system median / fastest modelless median (>1: modelless is faster); peak ({}, 1 thread, same flags): {:.1} GFLOP/s f32, {:.1} GOP/s int8, {:.1} GB/s L2 read",
            peak.kind, peak.f32_gflops, peak.int8_gops, peak.l2_gbs
        );
        s
    }
}

/// Options of [`bench_model`].
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub config: Config,
    pub langs: Vec<Lang>,
    pub iters: usize,
    pub warmup: usize,
    /// Rounds over all systems, peers included; each system keeps its fastest round's median.
    pub rounds: usize,
    pub peers: Vec<Peer>,
    /// The LiteRT / TFLM twin (default: found next to the model, see [`find_tflite`]).
    pub tflite: Option<PathBuf>,
    /// One `.npy` per model input (default: `test_data_set_0`, else random).
    pub inputs: Vec<PathBuf>,
    /// Folder of the peer scripts (default: see [`find_peers_dir`]).
    pub peers_dir: Option<PathBuf>,
    pub seed: u64,
}

/// An input tensor in the model's own element type.
#[derive(Debug, Clone)]
struct Input {
    shape: Vec<usize>,
    data: TensorData,
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Toolchain(format!("{what}: {e}"))
}

/// Reads an `.npy` of float32, int8 or uint8 values.
fn read_npy(path: &Path) -> Result<(Vec<usize>, TensorData)> {
    let err = |msg: String| Error::Npy { path: path.into(), msg };
    let bytes = std::fs::read(path).map_err(|source| Error::Read { path: path.into(), source })?;
    let file = npyz::NpyFile::new(bytes.as_slice()).map_err(|e| err(format!("not a valid .npy file ({e})")))?;
    if file.order() == npyz::Order::Fortran {
        return Err(err("is in Fortran order (hint: save np.ascontiguousarray(x))".into()));
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let descr = file.header().dtype().descr();
    let read_err = |e: std::io::Error| err(format!("cannot read data ({e})"));
    let data = match descr.as_str() {
        "'<f4'" => TensorData::F32(file.into_vec().map_err(read_err)?),
        "'|i1'" => TensorData::I8(file.into_vec().map_err(read_err)?),
        "'|u1'" => TensorData::U8(file.into_vec().map_err(read_err)?),
        d => return Err(err(format!("has dtype {d}; bench takes float32, int8 or uint8 inputs"))),
    };
    Ok((shape, data))
}

/// Writes an `.npy` of the tensor's own element type.
fn write_npy(path: &Path, shape: &[usize], data: &TensorData) -> Result<()> {
    use npyz::WriterBuilder as _;
    let werr = |e: std::io::Error| Error::Write { path: path.into(), msg: e.to_string() };
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut out = vec![];
    macro_rules! put {
        ($v:expr) => {{
            let mut w =
                npyz::WriteOptions::new().default_dtype().shape(&dims).writer(&mut out).begin_nd().map_err(werr)?;
            w.extend($v.iter().copied()).map_err(werr)?;
            w.finish().map_err(werr)?;
        }};
    }
    match data {
        TensorData::F32(v) => put!(v),
        TensorData::F64(v) => put!(v),
        TensorData::I8(v) => put!(v),
        TensorData::U8(v) => put!(v),
        TensorData::I32(v) => put!(v),
        TensorData::I64(v) => put!(v),
        TensorData::I16(v) => put!(v),
        TensorData::U16(v) => put!(v),
        TensorData::U32(v) => put!(v),
        TensorData::U64(v) => put!(v),
        TensorData::Bool(_) | TensorData::F16(_) | TensorData::BF16(_) | TensorData::Low(..) => {
            return Err(Error::Usage(format!("bench cannot feed {} inputs", data.dtype())));
        }
    }
    std::fs::write(path, out).map_err(werr)
}

/// Deterministic pseudo-random values (xorshift64*).
pub(crate) fn random_data(d: DType, n: usize, seed: u64) -> Result<TensorData> {
    let mut s = seed.max(1);
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40
    };
    Ok(match d {
        DType::F32 => TensorData::F32((0..n).map(|_| (next() as f32 / (1u64 << 24) as f32) * 2.0 - 1.0).collect()),
        DType::I8 => TensorData::I8((0..n).map(|_| (next() & 0xff) as u8 as i8).collect()),
        DType::U8 => TensorData::U8((0..n).map(|_| (next() & 0xff) as u8).collect()),
        d => return Err(Error::Usage(format!("bench cannot make random {d} inputs; pass --input FILE.npy"))),
    })
}

/// The inputs to time: `--input` files, else the model folder's `test_data_set_0`, else
/// random values (fixed seed). Returns them with a note of where they came from.
fn load_inputs(model: &Path, g: &Graph, opts: &BenchOptions) -> Result<(Vec<Input>, String)> {
    let want: Vec<(String, DType, Vec<usize>)> =
        g.inputs.iter().map(|&v| (g.value(v).name.clone(), g.ty(v).dtype, g.ty(v).shape.clone())).collect();
    let check = |name: &str, d: DType, shape: &[usize], data: &TensorData, from: &Path| -> Result<()> {
        if data.dtype() != d || data.len() != shape.iter().product::<usize>() {
            return Err(Error::Npy {
                path: from.into(),
                msg: format!(
                    "holds {} {} values, but model input \"{name}\" is {d} {}",
                    data.len(),
                    data.dtype(),
                    crate::ir::shape_str(shape)
                ),
            });
        }
        Ok(())
    };
    if !opts.inputs.is_empty() {
        if opts.inputs.len() != want.len() {
            return Err(Error::Usage(format!(
                "the model has {} inputs, got {} --input files",
                want.len(),
                opts.inputs.len()
            )));
        }
        let mut v = vec![];
        for (p, (name, d, shape)) in opts.inputs.iter().zip(&want) {
            let (_, data) = read_npy(p)?;
            check(name, *d, shape, &data, p)?;
            v.push(Input { shape: shape.clone(), data });
        }
        let names: Vec<String> = opts.inputs.iter().map(|p| p.display().to_string()).collect();
        return Ok((v, names.join(", ")));
    }
    let set = model.parent().map(|d| d.join("test_data_set_0"));
    if let Some(set) = set.filter(|s| s.join("input_0.pb").is_file()) {
        let mut v = vec![];
        for (i, (name, d, shape)) in want.iter().enumerate() {
            let p = set.join(format!("input_{i}.pb"));
            let (_, data) = crate::frontend::read_tensor_file(&p)?;
            check(name, *d, shape, &data, &p)?;
            v.push(Input { shape: shape.clone(), data });
        }
        return Ok((v, format!("{}/input_*.pb", set.display())));
    }
    let mut v = vec![];
    for (i, (_, d, shape)) in want.iter().enumerate() {
        let n = shape.iter().product();
        v.push(Input { shape: shape.clone(), data: random_data(*d, n, opts.seed.wrapping_add(i as u64))? });
    }
    Ok((v, format!("random (seed {})", opts.seed)))
}

/// The `.tflite` twin of a model: `MODEL_DIR/model.tflite`, or `FOLDER.tflite` (the model
/// folder's name) in a `tflite/` folder next to the model folder or in
/// `SHARED/models/mlperf-tiny/tflite/`.
pub fn find_tflite(model: &Path, peers_dir: Option<&Path>) -> Option<PathBuf> {
    let dir = model.parent()?;
    let folder = dir.file_name()?.to_string_lossy().into_owned();
    let mut cands = vec![dir.join("model.tflite")];
    if let Some(up) = dir.parent() {
        cands.push(up.join("tflite").join(format!("{folder}.tflite")));
    }
    if let Some(shared) = peers_dir.and_then(Path::parent) {
        cands.push(shared.join("models/mlperf-tiny/tflite").join(format!("{folder}.tflite")));
    }
    cands.into_iter().find(|p| p.is_file())
}

/// The folder of the peer scripts: `$MODELLESS_SHARED/peers`, a `peers/` folder holding
/// `bench_ort.py` in an ancestor of the model, or `../shared/peers`.
pub fn find_peers_dir(model: &Path) -> Option<PathBuf> {
    let ok = |p: PathBuf| p.join("bench_ort.py").is_file().then_some(p);
    if let Some(p) = std::env::var_os("MODELLESS_SHARED").and_then(|s| ok(PathBuf::from(s).join("peers"))) {
        return Some(p);
    }
    let abs = std::path::absolute(model).unwrap_or_else(|_| model.to_path_buf());
    abs.ancestors().find_map(|a| ok(a.join("peers"))).or_else(|| ok(PathBuf::from("../shared/peers")))
}

fn python() -> String {
    std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".into())
}

/// Checks that the interpreter runs and imports `modules`; the error is the line to print.
fn check_python(modules: &str) -> std::result::Result<(), String> {
    let py = python();
    let hint = format!("install with `{PIP_HINT}`");
    match Command::new(&py).arg("-c").arg(format!("import {modules}")).output() {
        Err(e) => Err(format!("cannot start {py} ({e}); {hint} (or set {PYTHON_ENV} to a Python 3 interpreter)")),
        Ok(o) if !o.status.success() => Err(format!("{py} cannot import {modules}; {hint}")),
        Ok(_) => Ok(()),
    }
}

/// Runs a peer script and reads its median (last line) and p90 (`p90 X` on an earlier line).
fn run_script(script: &Path, args: &[&std::ffi::OsStr]) -> std::result::Result<Stats, String> {
    let o = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("cannot start {}: {e}", python()))?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() {
        let stderr = String::from_utf8_lossy(&o.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(format!("{} failed: {}", script.display(), last.trim()));
    }
    let mut lines = stdout.lines().rev().filter(|l| !l.trim().is_empty());
    let median = lines
        .next()
        .and_then(|l| l.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("{} printed no median on its last line", script.display()))?;
    let p90 = stdout.split_whitespace().skip_while(|w| *w != "p90").nth(1).and_then(|w| w.parse().ok());
    let runs = stdout.split_whitespace().skip_while(|w| *w != "runs").nth(1).and_then(|w| w.parse().ok());
    Ok(Stats { median_ms: median, p90_ms: p90, runs: runs.unwrap_or(0) })
}

/// Times the model in tract, in process, on the same inputs.
fn time_tract(model: &Path, inputs: &[Input], warmup: usize, iters: usize) -> std::result::Result<Stats, String> {
    use tract_onnx::prelude::*;
    let run = || -> TractResult<Vec<f64>> {
        let mut m = tract_onnx::onnx().model_for_path(model)?;
        let mut tv: TVec<TValue> = tvec![];
        for (i, x) in inputs.iter().enumerate() {
            let (fact, t): (InferenceFact, Tensor) = match &x.data {
                TensorData::F32(v) => (f32::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::F64(v) => (f64::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::I8(v) => (i8::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::U8(v) => (u8::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::I32(v) => (i32::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::I64(v) => (i64::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::Bool(v) => (bool::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::I16(v) => (i16::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::U16(v) => (u16::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::U32(v) => (u32::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::U64(v) => (u64::fact(&x.shape).into(), Tensor::from_shape(&x.shape, v)?),
                TensorData::F16(_) | TensorData::BF16(_) | TensorData::Low(..) => {
                    return Err(tract_onnx::prelude::TractError::msg(format!(
                        "tract timing of {} inputs",
                        x.data.dtype()
                    )));
                }
            };
            m.set_input_fact(i, fact)?;
            tv.push(t.into());
        }
        let plan = m.into_optimized()?.into_runnable()?;
        for _ in 0..warmup {
            plan.run(tv.clone())?;
        }
        let mut ms = Vec::with_capacity(iters);
        for _ in 0..iters.max(1) {
            let t0 = Instant::now();
            let out = plan.run(tv.clone())?;
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(out);
        }
        Ok(ms)
    };
    let ms = run().map_err(|e| format!("tract failed: {}", format!("{e:#}").lines().next().unwrap_or("")))?;
    Stats::from_ms(&ms).ok_or_else(|| "tract: no timings".to_string())
}

/// Time one Python peer.
fn time_python_peer(
    peer: Peer,
    model: &Path,
    tflite: Option<&Path>,
    input_npy: &Path,
    peers_dir: Option<&Path>,
    opts: &BenchOptions,
) -> std::result::Result<Stats, String> {
    let (script, modules, needs_tflite) = match peer {
        Peer::Ort => ("bench_ort.py", "numpy, onnxruntime", false),
        Peer::Litert => ("bench_litert.py", "numpy, ai_edge_litert", true),
        Peer::Tflm => ("bench_tflm.py", "numpy, tflite_micro", true),
        Peer::Tract => return Err("tract runs in process".into()),
    };
    let dir = peers_dir.ok_or("peer scripts not found (set MODELLESS_SHARED to the shared folder, or --peers-dir)")?;
    let target_model =
        if needs_tflite { tflite.ok_or("no .tflite twin of this model (pass --tflite MODEL.tflite)")? } else { model };
    check_python(modules)?;
    let (runs, warm) = (opts.iters.max(1).to_string(), opts.warmup.to_string());
    let mut args: Vec<&std::ffi::OsStr> = vec![
        target_model.as_os_str(),
        input_npy.as_os_str(),
        "--runs".as_ref(),
        runs.as_ref(),
        "--warmup".as_ref(),
        warm.as_ref(),
    ];
    match peer {
        Peer::Ort => args.extend::<[&std::ffi::OsStr; 2]>(["--opt".as_ref(), "all".as_ref()]),
        Peer::Litert => args.extend::<[&std::ffi::OsStr; 2]>(["--mode".as_ref(), "xnnpack".as_ref()]),
        _ => {}
    }
    run_script(&dir.join(script), &args)
}

/// Builds and times the model in each language, then times the peers on the same input.
/// `log` receives progress lines.
pub fn bench_model(model: &Path, opts: &BenchOptions, log: &mut dyn FnMut(&str)) -> Result<ModelBench> {
    if opts.config.int8.as_ref().is_some_and(|i| i.options.io_int8) {
        return Err(Error::Usage(
            "bench feeds every system the same input: --io int8 changes the model's input type (use --io float)".into(),
        ));
    }
    if !opts.config.target.runner.is_empty() || !opts.config.target.has_os {
        return Err(Error::Usage(format!(
            "bench times code on this machine; target {} does not run here natively (use the host target)",
            opts.config.target.name
        )));
    }
    let work = tempfile::tempdir().map_err(io_err("cannot create a temp dir"))?;
    let mut rows = vec![];
    let mut c_footprint = None;
    let mut graph_info: Option<(u64, bool, Graph)> = None;
    for &lang in &opts.langs {
        let system = format!("modelless {}", if lang == Lang::C { "C" } else { "Rust" });
        log(&format!("building {system}..."));
        let c = opts.config.clone().lang(lang).compile_to_memory(model)?;
        if graph_info.is_none() {
            let g = c.graph.clone();
            let macs = total_macs(&g);
            let int8 = g.nodes.iter().any(|n| matches!(n.op, crate::ops::Op::QConv(_) | crate::ops::Op::QMatMul(_)));
            graph_info = Some((macs, int8, g));
        }
        let dir = work.path().join(format!("{lang:?}").to_lowercase());
        std::fs::create_dir_all(&dir).map_err(|e| Error::Write { path: dir.clone(), msg: e.to_string() })?;
        let sig = toolchain::IoSig::of(&c.graph);
        if lang == Lang::C {
            let flash = toolchain::c_object_size(&dir, &c.name, &c.files, &opts.config.target, opts.config.opt);
            c_footprint = flash.ok().map(|f| Footprint { arena_bytes: c.plan.arena_bytes, flash_bytes: f.flash() });
        }
        let h = match lang {
            Lang::C => toolchain::build_c_timing(&dir, &c.name, &c.files, &sig, &opts.config.target, opts.config.opt),
            Lang::Rust => {
                toolchain::build_rust_timing(&dir, &c.name, &c.files, &sig, &opts.config.target, opts.config.opt)
            }
        };
        // A language that does not build is a row saying why, not the end of the bench.
        rows.push((h.map_err(|e| first_lines(&e.to_string())), system));
    }
    let (macs, int8, graph) = match graph_info {
        Some(x) => x,
        None => {
            // No language asked for: still lower once for the MACs and the input types.
            let (g, _) = opts.config.lower(model)?;
            (total_macs(&g), false, g)
        }
    };
    let (inputs, input_source) = load_inputs(model, &graph, opts)?;
    let sample: Vec<Vec<u8>> = inputs.iter().map(|x| x.data.to_le_bytes()).collect();
    let peers_dir = opts.peers_dir.clone().or_else(|| find_peers_dir(model));
    let tflite = opts.tflite.clone().or_else(|| find_tflite(model, peers_dir.as_deref()));
    let npy = work.path().join("input_0.npy");
    if let Some(x) = inputs.first() {
        write_npy(&npy, &x.shape, &x.data)?;
    }
    let mut out: Vec<Row> = vec![];
    let rounds = opts.rounds.max(1);
    for round in 1..=rounds {
        let of = if rounds > 1 { format!(" (round {round} of {rounds})") } else { String::new() };
        let mut timed = vec![];
        for (h, system) in &rows {
            log(&format!("timing {system}{of}..."));
            let outcome = match h {
                Ok(h) => {
                    let ms = h.time(&sample, opts.warmup, opts.iters)?;
                    let none = || Error::Toolchain(format!("{system}: no timings"));
                    Outcome::Timed(Stats::from_ms(&ms).ok_or_else(none)?)
                }
                Err(why) => Outcome::Skipped(format!("build failed: {why}")),
            };
            timed.push(Row { system: system.clone(), outcome });
        }
        for &peer in &opts.peers {
            log(&format!("timing {}{of}...", peer.label()));
            let r = match peer {
                Peer::Tract => time_tract(model, &inputs, opts.warmup, opts.iters),
                _ if inputs.len() != 1 => {
                    Err(format!("the peer scripts take one input; this model has {}", inputs.len()))
                }
                _ => time_python_peer(peer, model, tflite.as_deref(), &npy, peers_dir.as_deref(), opts),
            };
            let outcome = match r {
                Ok(s) => Outcome::Timed(s),
                Err(why) => Outcome::Skipped(why),
            };
            timed.push(Row { system: peer.label().to_string(), outcome });
        }
        if out.is_empty() {
            out = timed;
        } else {
            out.iter_mut().zip(timed).for_each(|(kept, new)| keep_faster(kept, new));
        }
    }
    Ok(ModelBench { model: model.to_path_buf(), macs, int8, input_source, rows: out, c_footprint })
}

/// Keeps in `kept` the faster of its timing and `new`'s (the same system's next round); a
/// system skipped in one round and timed in another keeps the timing.
fn keep_faster(kept: &mut Row, new: Row) {
    let faster = match (&kept.outcome, &new.outcome) {
        (Outcome::Timed(a), Outcome::Timed(b)) => b.median_ms < a.median_ms,
        (Outcome::Skipped(_), Outcome::Timed(_)) => true,
        _ => false,
    };
    if faster {
        *kept = new;
    }
}

/// The first two non-empty lines of a message, joined (compiler errors: the error and where).
fn first_lines(msg: &str) -> String {
    let lines: Vec<&str> = msg.lines().map(str::trim).filter(|l| !l.is_empty()).take(3).collect();
    lines.join(" ")
}

/// MACs of one run, summed over every node as `inspect` does.
pub fn total_macs(g: &Graph) -> u64 {
    g.nodes
        .iter()
        .map(|n| {
            let tys: Vec<_> = n.inputs.iter().map(|&v| g.ty(v)).collect();
            n.outputs.first().map_or(0, |&o| n.op.macs(&tys, g.ty(o)))
        })
        .sum()
}

/// The FMA-throughput kernel: independent accumulator chains, timed with
/// `CLOCK_MONOTONIC`; prints `f32 GFLOPS`, `int8 GOPS` and `kind NAME`.
const PEAK_C: &str = r#"#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdint.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define REP8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define KIND "avx2-fma"
/* 12 chains of 8-lane FMAs: 192 flops per iteration. */
static double f32_run(long n, float *sink)
{
    const __m256 m = _mm256_set1_ps(0.99999f), c = _mm256_set1_ps(1e-6f);
    float out[8];
    long i;
#define DECL(k) __m256 a##k = _mm256_set1_ps(0.5f + 0.01f * (float)(k));
    REP12(DECL)
    for (i = 0; i < n; i++) {
#define STEP(k) a##k = _mm256_fmadd_ps(a##k, m, c);
        REP12(STEP)
    }
    a1 = _mm256_add_ps(a1, a2);
    a3 = _mm256_add_ps(a3, a4);
    a5 = _mm256_add_ps(a5, a6);
    a7 = _mm256_add_ps(a7, a8);
    a9 = _mm256_add_ps(a9, a10);
    a0 = _mm256_add_ps(a0, a11);
    a0 = _mm256_add_ps(a0, a1);
    a0 = _mm256_add_ps(a0, a3);
    a0 = _mm256_add_ps(a0, a5);
    a0 = _mm256_add_ps(a0, a7);
    a0 = _mm256_add_ps(a0, a9);
    _mm256_storeu_ps(out, a0);
    *sink += out[0] + out[7];
    return 192.0 * (double)n;
}
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#undef KIND
#define KIND "avx512-vnni"
/* 12 chains of u8 x s8 -> int32 dot products of 4 (VPDPBUSD, 256-bit): 64 ops per chain
   step, enough chains to cover the instruction's latency. */
static double int8_run(long n, float *sink)
{
    __m256i x0 = _mm256_set1_epi8(3), x1 = _mm256_set1_epi8(5), x2 = _mm256_set1_epi8(7), x3 = _mm256_set1_epi8(9);
    const __m256i w0 = _mm256_set1_epi8(-2), w1 = _mm256_set1_epi8(4), w2 = _mm256_set1_epi8(6);
    int32_t out[8];
    long i;
#define VDECL(k) __m256i s##k = _mm256_setzero_si256();
    REP12(VDECL)
#define VSTEP(k, x, w) s##k = _mm256_dpbusd_epi32(s##k, x, w);
    for (i = 0; i < n; i++) {
        __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3));
        VSTEP(0, x0, w0) VSTEP(1, x1, w0) VSTEP(2, x2, w0) VSTEP(3, x3, w0)
        VSTEP(4, x0, w1) VSTEP(5, x1, w1) VSTEP(6, x2, w1) VSTEP(7, x3, w1)
        VSTEP(8, x0, w2) VSTEP(9, x1, w2) VSTEP(10, x2, w2) VSTEP(11, x3, w2)
    }
    s0 = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3)),
                          _mm256_add_epi32(_mm256_add_epi32(s4, s5), _mm256_add_epi32(s6, s7)));
    s0 = _mm256_add_epi32(s0, _mm256_add_epi32(_mm256_add_epi32(s8, s9), _mm256_add_epi32(s10, s11)));
    _mm256_storeu_si256((__m256i *)out, s0);
    *sink += (float)out[0];
    return 12.0 * 64.0 * (double)n;
}
#else
/* 8 chains of u8 x s8 -> exact int32 (maddubs, madd with ones, add): 64 ops per chain step.
   Every chain multiplies its own (x, w) pair, and the empty asm makes x new each iteration,
   so nothing is hoisted or shared between chains. */
static double int8_run(long n, float *sink)
{
    __m256i x0 = _mm256_set1_epi8(3), x1 = _mm256_set1_epi8(5), x2 = _mm256_set1_epi8(7), x3 = _mm256_set1_epi8(9);
    const __m256i w0 = _mm256_set1_epi8(-2), w1 = _mm256_set1_epi8(4), ones = _mm256_set1_epi16(1);
    int32_t out[8];
    long i;
#define IDECL(k) __m256i s##k = _mm256_setzero_si256();
    REP8(IDECL)
#define ISTEP(k, x, w) s##k = _mm256_add_epi32(s##k, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), ones));
    for (i = 0; i < n; i++) {
        __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3));
        ISTEP(0, x0, w0) ISTEP(1, x1, w0) ISTEP(2, x2, w0) ISTEP(3, x3, w0)
        ISTEP(4, x0, w1) ISTEP(5, x1, w1) ISTEP(6, x2, w1) ISTEP(7, x3, w1)
    }
    s0 = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3)),
                          _mm256_add_epi32(_mm256_add_epi32(s4, s5), _mm256_add_epi32(s6, s7)));
    _mm256_storeu_si256((__m256i *)out, s0);
    *sink += (float)out[0];
    return 8.0 * 64.0 * (double)n;
}
#endif
#else
#define KIND "scalar"
static double f32_run(long n, float *sink)
{
    float a[12];
    long i;
    int k;
    for (k = 0; k < 12; k++) a[k] = 0.5f + 0.01f * (float)k;
    for (i = 0; i < n; i++)
        for (k = 0; k < 12; k++) a[k] = a[k] * 0.99999f + 1e-6f;
    for (k = 0; k < 12; k++) *sink += a[k];
    return 24.0 * (double)n;
}
static double int8_run(long n, float *sink)
{
    int32_t s[8] = {0};
    volatile int8_t vx = 3, vw = -2;
    int8_t x = vx, w = vw;
    long i;
    int k;
    for (i = 0; i < n; i++)
        for (k = 0; k < 8; k++) s[k] += (int32_t)(int8_t)(x + k) * (int32_t)w;
    for (k = 0; k < 8; k++) *sink += (float)s[k];
    return 16.0 * (double)n;
}
#endif

/* Streaming read of a 256 KiB buffer: past L1, within L2 on the cores we target. The
   empty asm with a memory clobber makes every pass read the buffer again. */
#define BW_WORDS (256 * 1024 / 8)
static uint64_t bw_buf[BW_WORDS];
static double bw_run(long n, float *sink)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long i;
    size_t k;
    for (i = 0; i < n; i++) {
        __asm__ volatile("" : : : "memory");
        for (k = 0; k < BW_WORDS; k += 4) {
            s0 += bw_buf[k];
            s1 += bw_buf[k + 1];
            s2 += bw_buf[k + 2];
            s3 += bw_buf[k + 3];
        }
    }
    *sink += (float)((s0 + s1 + s2 + s3) & 0xff);
    return 8.0 * BW_WORDS * (double)n;
}

/* Best of several runs of about 20 ms each. */
static double best(double (*run)(long, float *), float *sink)
{
    long n = 1000;
    double t, ops, best_rate = 0.0;
    int rep;
    for (;;) {
        t = now_s();
        ops = run(n, sink);
        t = now_s() - t;
        if (t > 0.005 || n > (1L << 40)) break;
        n *= 4;
    }
    n = (long)((double)n * 0.02 / (t > 1e-9 ? t : 1e-9)) + 1;
    for (rep = 0; rep < 7; rep++) {
        t = now_s();
        ops = run(n, sink);
        t = now_s() - t;
        if (t > 0.0 && ops / t > best_rate) best_rate = ops / t;
    }
    return best_rate / 1e9;
}

int main(void)
{
    float sink = 0.0f;
    size_t k;
    for (k = 0; k < BW_WORDS; k++) bw_buf[k] = (uint64_t)k * 0x9E3779B97F4A7C15ull;
    double f = best(f32_run, &sink);
    double q = best(int8_run, &sink);
    double l2 = best(bw_run, &sink);
    printf("f32 %.3f\nint8 %.3f\nl2 %.3f\nkind %s\nsink %g\n", f, q, l2, KIND, (double)sink);
    return 0;
}
"#;

/// Measures the single-core peak with [`PEAK_C`] built by the target's C compiler and flags
/// plus full optimisation (the speed build's [`toolchain::c_bench_flags`]).
pub fn measure_peak(target: &TargetDesc) -> Result<Peak> {
    toolchain::require_c(target)?;
    let work = tempfile::tempdir().map_err(io_err("cannot create a temp dir"))?;
    let src = work.path().join("peak.c");
    std::fs::write(&src, PEAK_C).map_err(|e| Error::Write { path: src.clone(), msg: e.to_string() })?;
    let exe = work.path().join("peak");
    let tool = toolchain::c_build(target)
        .try_get_compiler()
        .map_err(|e| Error::Toolchain(format!("no C compiler for target {}: {e}", target.name)))?;
    let mut cmd = tool.to_command();
    cmd.args(toolchain::c_bench_flags(crate::backend::Opt::Speed)).arg(&src).arg("-o").arg(&exe);
    toolchain::run_checked(cmd, "C compiler (peak kernel)")?;
    let o = Command::new(&exe).output().map_err(io_err("cannot run the peak kernel"))?;
    let text = String::from_utf8_lossy(&o.stdout);
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()));
    let num = |k: &str| field(k).and_then(|v| v.parse::<f64>().ok()).filter(|v| *v > 0.0);
    match (num("f32 "), num("int8 "), num("l2 "), field("kind ")) {
        (Some(f), Some(q), Some(l2), Some(kind)) => {
            let kind = match kind.as_str() {
                "avx2-fma" => "avx2-fma",
                "avx512-vnni" => "avx512-vnni",
                _ => "scalar",
            };
            Ok(Peak { f32_gflops: f, int8_gops: q, kind, l2_gbs: l2 })
        }
        _ => Err(Error::Toolchain(format!("the peak kernel printed no rates: {text}"))),
    }
}

/// Every `model.onnx` under `dir` (one per model folder), sorted.
pub fn find_models(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| Error::Read { path: d.clone(), source })?;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "model.onnx") {
                found.push(p);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The CPU's model name from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Today's date (UTC) as YYYY-MM-DD.
pub fn today() -> String {
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The compile flags a timing build uses, for reports.
pub fn flags_note(target: &TargetDesc, opt: crate::backend::Opt) -> String {
    let mut rust: Vec<String> = toolchain::rust_bench_flags(opt).iter().map(|s| s.to_string()).collect();
    if !target.rust.target_features.is_empty() {
        rust.push(format!("-C target-feature={}", target.rust.target_features.join(",")));
    }
    format!(
        "C: `{} -std=c99 {} {}`; Rust: `rustc {}`",
        target.c.compiler,
        target.c.flags.join(" "),
        toolchain::c_bench_flags(opt).join(" "),
        rust.join(" ")
    )
}

/// A model's row in the Markdown report, or why it is missing.
pub type ModelResult = (PathBuf, std::result::Result<ModelBench, String>);

/// The Markdown report of `bench --all`.
pub fn markdown(results: &[ModelResult], peak: &Peak, opts: &BenchOptions, root: &Path, notes: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Generated by `modelless bench --all {} --markdown ...` on {} — {}, single thread, \
         {} timed runs after {} warm-up runs per system, in {} rounds over all systems (each keeps its \
         fastest round's median). Lower is better; **ratio = peer median / \
         fastest modelless median** (> 1: modelless is faster). Peers run on the same input \
         (the model's `test_data_set_0`) in the same run.\n",
        root.display(),
        today(),
        cpu_model(),
        opts.iters,
        opts.warmup,
        opts.rounds.max(1)
    );
    let _ = writeln!(s, "- Flags: {}.", flags_note(&opts.config.target, opts.config.opt));
    let _ = writeln!(
        s,
        "- Machine peak, measured in the same run by an FMA-throughput kernel built with the same C flags \
         ({}): **{:.1} GFLOP/s f32**, **{:.1} GOP/s int8** (u8×s8 → exact int32), and a streaming \
         read of a 256 KiB buffer (past L1, within L2): **{:.1} GB/s**. Throughput is \
         2·MACs/median (MACs summed over the IR as `modelless inspect` does); % peak is against the \
         f32 peak for float models and the int8 peak for models with integer kernels. \
         *L2 read ms* is the C flash read once at that rate: a floor on latency where the weights \
         do not fit L1.",
        peak.kind, peak.f32_gflops, peak.int8_gops, peak.l2_gbs
    );
    let _ = writeln!(
        s,
        "- ONNX Runtime, LiteRT and TFLM are timed from Python (`shared/peers/`), which adds a few µs per \
         call; tract runs in process. LiteRT/TFLM need a `.tflite` twin (MLPerf Tiny models only)."
    );
    for n in notes {
        let _ = writeln!(s, "- {n}");
    }
    let _ = writeln!(s);
    let peers = &opts.peers;
    let mut head = vec!["model".to_string(), "MACs".into(), "modelless C ms".into(), "modelless Rust ms".into()];
    head.extend(peers.iter().map(|p| format!("{} ms (ratio)", p.label())));
    head.extend([
        "GFLOP/s or GOP/s (best modelless)".to_string(),
        "% peak".into(),
        "C arena B".into(),
        "C flash B".into(),
        "L2 read ms".into(),
    ]);
    let _ = writeln!(s, "| {} |", head.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
    let mut skipped = vec![];
    for (path, r) in results {
        let name = path
            .parent()
            .and_then(|p| p.strip_prefix(root).ok().or(Some(p)))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let b = match r {
            Ok(b) => b,
            Err(why) => {
                skipped.push(format!("`{name}`: {why}"));
                continue;
            }
        };
        let mut cell = |sys: &str, with_ratio: bool| -> String {
            match b.rows.iter().find(|r| r.system == sys) {
                Some(row @ Row { outcome: Outcome::Timed(st), .. }) => {
                    let m = fmt_ms(st.median_ms);
                    match b.ratio(row) {
                        Some(x) if with_ratio => format!("{m} ({x:.2})"),
                        _ => m,
                    }
                }
                Some(Row { outcome: Outcome::Skipped(why), .. }) => {
                    if !why.contains(PIP_HINT) && !why.contains(".tflite twin") {
                        skipped.push(format!("`{name}` {sys}: {why}"));
                    }
                    "—".into()
                }
                None => "—".into(),
            }
        };
        let best = b
            .rows
            .iter()
            .filter(|r| r.system.starts_with("modelless"))
            .min_by(|a, c| a.median().unwrap_or(f64::INFINITY).total_cmp(&c.median().unwrap_or(f64::INFINITY)));
        let mut cols = vec![
            format!("{name}{}", if b.int8 { " (int8)" } else { "" }),
            b.macs.to_string(),
            cell("modelless C", false),
            cell("modelless Rust", false),
        ];
        cols.extend(peers.iter().map(|p| cell(p.label(), true)));
        cols.push(best.and_then(|r| b.throughput(r)).map_or("—".into(), |x| format!("{x:.2}")));
        cols.push(best.and_then(|r| b.of_peak(r, peak)).map_or("—".into(), |x| format!("{:.1}%", 100.0 * x)));
        cols.push(b.c_footprint.map_or("—".into(), |f| f.arena_bytes.to_string()));
        cols.push(b.c_footprint.map_or("—".into(), |f| f.flash_bytes.to_string()));
        cols.push(b.stream_floor_ms(peak).map_or("—".into(), fmt_ms));
        let _ = writeln!(s, "| {} |", cols.join(" | "));
    }
    if !skipped.is_empty() {
        let _ = writeln!(s, "\nNot measured:\n");
        for k in skipped {
            let _ = writeln!(s, "- {k}");
        }
    }
    s
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.1}")
    } else if ms >= 0.1 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90() {
        let s = Stats::from_ms(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(s.median_ms, 3.0);
        assert_eq!(s.p90_ms, Some(5.0));
        assert_eq!(s.runs, 5);
        // Even count: mean of the middle two; p90 of 1..=10 is 9 (nearest rank).
        let v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let s = Stats::from_ms(&v).unwrap();
        assert_eq!(s.median_ms, 5.5);
        assert_eq!(s.p90_ms, Some(9.0));
        // p90 of 1..=100 is 90; an outlier moves neither.
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        v[99] = 1e9;
        let s = Stats::from_ms(&v).unwrap();
        assert_eq!(s.median_ms, 50.5);
        assert_eq!(s.p90_ms, Some(90.0));
        let one = Stats::from_ms(&[7.0]).unwrap();
        assert_eq!((one.median_ms, one.p90_ms), (7.0, Some(7.0)));
        assert!(Stats::from_ms(&[]).is_none());
        assert!(Stats::from_ms(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn ratios_throughput_and_peak() {
        let row = |system: &str, ms: f64| Row {
            system: system.into(),
            outcome: Outcome::Timed(Stats { median_ms: ms, p90_ms: None, runs: 1 }),
        };
        let b = ModelBench {
            model: "m.onnx".into(),
            macs: 1_000_000,
            int8: false,
            input_source: "random".into(),
            rows: vec![
                row("modelless C", 0.5),
                row("modelless Rust", 0.25),
                row("tract 0.23", 1.0),
                Row { system: "TFLM".into(), outcome: Outcome::Skipped("no twin".into()) },
            ],
            c_footprint: Some(Footprint { arena_bytes: 4096, flash_bytes: 20_000 }),
        };
        assert_eq!(b.baseline_ms(), Some(0.25));
        assert_eq!(b.ratio(&b.rows[2]), Some(4.0));
        assert_eq!(b.ratio(&b.rows[3]), None);
        // 2 MFLOP in 0.25 ms = 8 GFLOP/s.
        assert!((b.throughput(&b.rows[1]).unwrap() - 8.0).abs() < 1e-9);
        let peak = Peak { f32_gflops: 16.0, int8_gops: 32.0, kind: "scalar", l2_gbs: 100.0 };
        assert!((b.of_peak(&b.rows[1], &peak).unwrap() - 0.5).abs() < 1e-9);
        let t = b.table(&peak);
        assert!(t.contains("TFLM             skipped: no twin"), "{t}");
        assert!(t.contains("4.00"), "{t}");
        assert!(t.contains("arena 4096 B, flash 20000 B"), "{t}");
        // 20,000 B at 100 GB/s: 0.2 µs.
        assert!((b.stream_floor_ms(&peak).unwrap() - 0.0002).abs() < 1e-12);
        assert!(t.contains("at the L2 rate in 0.0002 ms"), "{t}");
    }

    #[test]
    fn rounds_keep_each_systems_faster_median() {
        let row = |ms: Option<f64>| Row {
            system: "s".into(),
            outcome: match ms {
                Some(m) => Outcome::Timed(Stats::from_ms(&[m]).unwrap()),
                None => Outcome::Skipped("no".into()),
            },
        };
        let mut kept = row(Some(2.0));
        keep_faster(&mut kept, row(Some(3.0)));
        assert_eq!(kept.median(), Some(2.0));
        keep_faster(&mut kept, row(Some(1.5)));
        assert_eq!(kept.median(), Some(1.5));
        keep_faster(&mut kept, row(None));
        assert_eq!(kept.median(), Some(1.5));
        let mut skipped = row(None);
        keep_faster(&mut skipped, row(Some(4.0)));
        assert_eq!(skipped.median(), Some(4.0));
    }

    #[test]
    fn dates() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}
