//! The `modelless` command line: build, inspect, verify.

use clap::{Parser, Subcommand};
use modelless::cross::Emit;
use modelless::ir::shape_str;
use modelless::target::TargetDesc;
use modelless::verify::{VerifyOptions, verify};
use modelless::{Config, Error, Lang};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "modelless", version, about = "Compile ONNX models to standalone C or Rust source")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Options shared by every command that reads a model.
#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// The ONNX model.
    model: PathBuf,
    /// Bind an input's shape, e.g. `input_1=1x49x10x1` (repeatable). A leading symbolic
    /// (batch) dimension defaults to 1.
    #[arg(long = "input-shape", value_name = "NAME=DxD...")]
    input_shape: Vec<String>,
    /// Fix an input to the contents of a .npy file at build time (float32, int32 or int64),
    /// e.g. the `shape` input of a Reshape: `--bind-input shape=shape.npy` (repeatable).
    #[arg(long = "bind-input", value_name = "NAME=FILE.npy")]
    bind_input: Vec<String>,
    /// Target name (see `modelless targets`) or path to a target TOML.
    #[arg(long, default_value = "x86_64")]
    target: String,
    /// Print the IR after the named pass (`import`, a pass name, or `all`) to stderr.
    #[arg(long = "dump-ir-after", value_name = "PASS")]
    dump_ir_after: Vec<String>,
    /// `speed`: the target's fastest kernels. `size`: compact loop kernels only (less
    /// flash; `bench` and `verify` then build with -Os / opt-level="s").
    #[arg(long, value_enum, default_value_t = modelless::Opt::Speed)]
    opt: modelless::Opt,
    #[command(flatten)]
    int8: Int8Args,
    #[command(flatten)]
    sparse: SparseArgs,
}

/// Sparsity: pruning and sparse code generation (see docs/sparsity.md).
#[derive(clap::Args, Clone)]
struct SparseArgs {
    /// Prune float weights by magnitude: FRACTION (per layer), global:FRACTION,
    /// structured:N:M (keep N of every M along the input dimension) or channel:FRACTION.
    #[arg(long, value_name = "SPEC")]
    sparsity: Option<String>,
    /// Never prune this node (repeatable; names as `inspect` shows them).
    #[arg(long = "keep-dense", value_name = "NODE")]
    keep_dense: Vec<String>,
    /// Accuracy guard for --sparsity: largest drop in points of top-1 accuracy on
    /// --data/--labels (or of top-1 agreement with the unpruned model without labels).
    #[arg(long = "max-drop", value_name = "POINTS", requires = "sparsity")]
    max_drop: Option<f64>,
    /// No sparse code generation: zero weights stay in the dense kernels.
    #[arg(long)]
    dense: bool,
}

/// Post-training int8 quantization (see docs/quantization.md).
#[derive(clap::Args, Clone)]
struct Int8Args {
    /// Quantize the float model to int8 (needs --calib).
    #[arg(long, requires = "calib")]
    int8: bool,
    /// Calibration samples: an .npy of N inputs, or a directory of .npy files.
    #[arg(long, value_name = "FILE.npy|DIR")]
    calib: Option<PathBuf>,
    /// How activation ranges are chosen.
    #[arg(long = "calib-method", value_enum, default_value = "percentile")]
    calib_method: modelless::int8::CalibMethod,
    /// Percentile kept by `--calib-method percentile`.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Keep this node's weights float (repeatable; names as `inspect` shows them).
    #[arg(long = "keep-float", value_name = "NODE")]
    keep_float: Vec<String>,
    /// Model inputs/outputs: float (quantized at the edges) or raw int8 buffers.
    #[arg(long, value_enum, default_value = "float")]
    io: IoKind,
    /// How weights are rounded to int8: `preserve` flips roundings to keep each layer's
    /// output on the calibration data closest to float (the safe choice against models
    /// trained to misbehave after rounding; see `modelless audit`).
    #[arg(long, value_enum, default_value = "nearest")]
    rounding: modelless::int8::Rounding,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum IoKind {
    Float,
    Int8,
}

/// The float↔int8 drift report (with `--int8`).
#[derive(clap::Args, Clone)]
struct DriftArgs {
    /// Data samples for the report (.npy, N inputs; default: the calibration samples).
    #[arg(long, value_name = "FILE.npy")]
    data: Option<PathBuf>,
    /// Integer class labels of --data (.npy, N values) for accuracies.
    #[arg(long, value_name = "FILE.npy")]
    labels: Option<PathBuf>,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
    /// Fail (exit 3, nothing written) when float/int8 disagreement on the data or any probe
    /// family exceeds RATE, or a probe family flips systematically toward one class.
    #[arg(long = "max-drift", value_name = "RATE")]
    max_drift: Option<f64>,
    /// Probes per family (0: no probing).
    #[arg(long, default_value_t = 32)]
    probes: usize,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run ONNX backend test suites (folders of test_* cases) through both backends and
    /// print pass / fail / unsupported per test and totals.
    Conformance {
        /// Suite folders, e.g. ../shared/onnx-backend-opset17/node.
        suites: Vec<PathBuf>,
        /// Print only the totals and the failures.
        #[arg(long)]
        quiet: bool,
        /// Run only the tests whose folder name contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Generate C or Rust source for a model.
    Build {
        #[command(flatten)]
        m: ModelArgs,
        /// Output language.
        #[arg(long, value_enum, default_value = "c")]
        lang: Lang,
        /// Output directory (created; files are written all-or-nothing).
        #[arg(short, long, default_value = "out")]
        out: PathBuf,
        /// Symbol prefix / module name (default: from the file name).
        #[arg(long)]
        name: Option<String>,
        /// What to write: the sources; also a static library for the target, with its
        /// flash/RAM; a no_std crate (Rust); or a bare-metal firmware image (C or Rust).
        #[arg(long, value_enum, default_value = "source")]
        emit: Emit,
        /// `--emit firmware`: one float32 .npy per model input to bake into the image
        /// (a leading batch dimension of N gives N samples; zeros when omitted).
        #[arg(long)]
        input: Vec<PathBuf>,
        /// Pick each C speed kernel's register tile by timing the candidates on this machine
        /// (host targets); the picks and timings are written to OUT/tuning.toml.
        #[arg(long, conflicts_with = "tuning")]
        tune: bool,
        /// Register tiles from a tuning.toml written by --tune (same target): rebuilds the
        /// tuned code without measuring.
        #[arg(long, value_name = "tuning.toml")]
        tuning: Option<PathBuf>,
        #[command(flatten)]
        drift: DriftArgs,
    },
    /// Audit what int8 compression did: accuracy and float agreement of each rounding
    /// variant, probe families, rounding residuals (weaponized rounding), membership
    /// inference and FGSM robustness (needs --int8 --calib).
    Audit {
        #[command(flatten)]
        m: ModelArgs,
        /// Labeled data (.npy of N inputs) and its labels (int .npy of N).
        #[arg(long, value_name = "X.npy")]
        data: PathBuf,
        #[arg(long, value_name = "Y.npy")]
        labels: Option<PathBuf>,
        /// Training-set samples (members) and their labels, for membership inference.
        #[arg(long, value_name = "M.npy", requires_all = ["member_labels", "nonmembers", "nonmember_labels"])]
        members: Option<PathBuf>,
        #[arg(long = "member-labels", value_name = "ML.npy")]
        member_labels: Option<PathBuf>,
        /// Held-out samples (non-members) and their labels.
        #[arg(long, value_name = "N.npy")]
        nonmembers: Option<PathBuf>,
        #[arg(long = "nonmember-labels", value_name = "NL.npy")]
        nonmember_labels: Option<PathBuf>,
        /// FGSM budgets (comma separated, input units).
        #[arg(long, value_delimiter = ',', default_values_t = [0.05f32, 0.1, 0.2])]
        fgsm: Vec<f32>,
        /// Samples attacked with FGSM.
        #[arg(long = "fgsm-samples", default_value_t = 200)]
        fgsm_samples: usize,
        /// Rounding variants to compare.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [
            modelless::int8::Rounding::Nearest,
            modelless::int8::Rounding::Preserve,
            modelless::int8::Rounding::Floor,
            modelless::int8::Rounding::Ceil,
            modelless::int8::Rounding::PerTensor,
        ])]
        variants: Vec<modelless::int8::Rounding>,
        /// Probes per family.
        #[arg(long, default_value_t = 98)]
        probes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Save disagreement witnesses (.npy per build and probe family) here.
        #[arg(long, value_name = "DIR")]
        witnesses: Option<PathBuf>,
        /// Write the report as JSON.
        #[arg(long, value_name = "FILE.json")]
        report: Option<PathBuf>,
        /// Write the per-layer SQNR and accuracy/size plot as SVG.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// Also audit magnitude-pruned builds at these levels (sparse float and sparse + int8).
        #[arg(long = "sparsity-levels", value_delimiter = ',', value_name = "L,L,...")]
        sparsity_levels: Vec<f64>,
        /// Search sparsity levels 0.5, 0.7, 0.8, 0.9 (with the given ones) and pick the
        /// smallest build within --pick-max-drop / --max-mia-delta.
        #[arg(long)]
        search: bool,
        /// Largest accuracy drop in points for the pick.
        #[arg(long = "pick-max-drop", value_name = "POINTS")]
        pick_max_drop: Option<f64>,
        /// Largest growth of the membership-inference advantage for the pick.
        #[arg(long = "max-mia-delta")]
        max_mia_delta: Option<f64>,
        /// Your own adversarial examples (.npy of N inputs) and their true labels.
        #[arg(long, value_name = "A.npy", requires = "adversarial_labels")]
        adversarial: Option<PathBuf>,
        #[arg(long = "adversarial-labels", value_name = "AL.npy")]
        adversarial_labels: Option<PathBuf>,
    },
    /// Time the generated C and Rust (single thread, after warm-up) next to the peers
    /// (tract in process; ONNX Runtime, LiteRT XNNPACK and TFLM via shared/peers/) on the
    /// same input, and print median / p90 ms, ratios, GFLOP/s and % of the machine's peak.
    Bench {
        #[command(flatten)]
        m: ModelArgs,
        /// Which generated code to time.
        #[arg(long, value_enum, default_value = "both")]
        lang: LangChoice,
        /// Timed runs per system.
        #[arg(long, default_value_t = 300)]
        iters: usize,
        /// Untimed runs before timing.
        #[arg(long, default_value_t = 30)]
        warmup: usize,
        /// Rounds over all systems; each keeps its fastest round's median, so a burst of
        /// load on a shared machine does not decide a row.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
        /// Peers to time (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "tract,ort,litert,tflm")]
        peers: Vec<modelless::bench::Peer>,
        /// The model's .tflite twin for LiteRT and TFLM (default: found next to the model or in
        /// shared/models/mlperf-tiny/tflite/ by the model folder's name).
        #[arg(long, value_name = "MODEL.tflite")]
        tflite: Option<PathBuf>,
        /// One .npy per model input, float32 or int8 as the model takes (default: the model
        /// folder's test_data_set_0, else random with a fixed seed).
        #[arg(long)]
        input: Vec<PathBuf>,
        /// Folder of the peer scripts (default: $MODELLESS_SHARED/peers or a peers/ folder
        /// above the model). The interpreter is $MODELLESS_PYTHON (default python3).
        #[arg(long = "peers-dir", value_name = "DIR")]
        peers_dir: Option<PathBuf>,
        /// MODEL is a folder: bench every model.onnx under it (models that do not compile are
        /// listed as not measured).
        #[arg(long)]
        all: bool,
        /// With --all: write the results as a Markdown table to this file.
        #[arg(long, value_name = "FILE.md", requires = "all")]
        markdown: Option<PathBuf>,
        /// Seed for random inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// List the built-in targets and whether their toolchains are installed.
    Targets,
    /// Print the lowered graph: nodes, shapes, parameters, MACs, memory.
    Inspect {
        #[command(flatten)]
        m: ModelArgs,
        /// Write an SVG of the arena bytes live at each node (values and in-place scratch).
        #[arg(long = "memory-plot", value_name = "FILE.svg")]
        memory_plot: Option<PathBuf>,
    },
    /// Build, compile and run the model, and compare it with the reference runtime.
    Verify {
        #[command(flatten)]
        m: ModelArgs,
        /// One float32 .npy per model input (random inputs, fixed seed, when omitted).
        #[arg(long)]
        input: Vec<PathBuf>,
        /// Which generated code to check.
        #[arg(long, value_enum, default_value = "both")]
        lang: LangChoice,
        /// Allowed max abs error relative to max(1, max |reference|).
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f32,
        /// Seed for random inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        drift: DriftArgs,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LangChoice {
    C,
    Rust,
    Both,
}

fn parse_shapes(specs: &[String]) -> Result<BTreeMap<String, Vec<usize>>, Error> {
    let mut map = BTreeMap::new();
    for s in specs {
        let bad = || Error::Usage(format!("--input-shape \"{s}\" is not NAME=DxDx... (e.g. input_1=1x49x10x1)"));
        let (name, dims) = s.rsplit_once('=').ok_or_else(bad)?;
        let dims = dims
            .split(['x', ','])
            .map(|d| d.trim().parse::<usize>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        map.insert(name.to_string(), dims);
    }
    Ok(map)
}

type Bindings = BTreeMap<String, (modelless::ir::TensorType, modelless::ir::TensorData)>;

fn parse_bindings(specs: &[String]) -> Result<Bindings, Error> {
    let mut map = BTreeMap::new();
    for s in specs {
        let (name, file) =
            s.split_once('=').ok_or_else(|| Error::Usage(format!("--bind-input \"{s}\" is not NAME=FILE.npy")))?;
        map.insert(name.to_string(), modelless::npy::read_tensor(std::path::Path::new(file))?);
    }
    Ok(map)
}

fn config(m: &ModelArgs) -> Result<Config, Error> {
    Ok(Config {
        lang: Lang::C,
        name: None,
        input_shapes: parse_shapes(&m.input_shape)?,
        const_inputs: parse_bindings(&m.bind_input)?,
        target: TargetDesc::load(&m.target)?,
        dump_ir_after: m.dump_ir_after.clone(),
        int8: m.int8.int8.then(|| modelless::Int8Config {
            options: modelless::int8::Int8Options {
                method: m.int8.calib_method,
                percentile: m.int8.percentile,
                keep_float: m.int8.keep_float.clone(),
                io_int8: m.int8.io == IoKind::Int8,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                rounding: m.int8.rounding,
            },
            calib: m.int8.calib.clone().unwrap_or_default(),
        }),
        prune: match &m.sparse.sparsity {
            Some(spec) => Some(modelless::PruneSettings {
                mode: modelless::passes::PruneMode::parse(spec).map_err(Error::Usage)?,
                keep_dense: m.sparse.keep_dense.clone(),
                data: None,
                labels: None,
                max_drop: m.sparse.max_drop,
            }),
            None => None,
        },
        dense: m.sparse.dense,
        opt: m.opt,
        tiles: BTreeMap::new(),
    })
}

/// The generated C's flash (weights + code: text + data of `NAME.c` built as `bench` builds
/// it), or why it could not be measured.
fn c_flash(cfg: &Config, c: &modelless::Compiled) -> String {
    let measure = || -> Result<u64, Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::Toolchain(format!("cannot create a temp dir: {e}")))?;
        Ok(modelless::toolchain::c_object_size(dir.path(), &c.name, &c.files, &cfg.target, cfg.opt)?.flash())
    };
    let flags = modelless::toolchain::c_bench_flags(cfg.opt).join(" ");
    match measure() {
        Ok(b) => format!("{b} bytes (weights + code: the C object at {flags}, --opt {})", cfg.opt.name()),
        Err(e) => format!("not measured ({e})"),
    }
}

/// Gives `--sparsity --max-drop` the guard data of `--data` / `--labels`.
fn prune_data(cfg: &mut Config, d: &DriftArgs) {
    if let Some(p) = &mut cfg.prune {
        p.data.clone_from(&d.data);
        p.labels.clone_from(&d.labels);
    }
}

/// Prints the pruning report and the sparse layers of a build.
fn sparse_summary(c: &modelless::Compiled) {
    if let Some(r) = &c.prune {
        print!("{}", r.to_text());
    }
    let stats = modelless::passes::sparsify::layer_stats(&c.graph);
    let sparse: Vec<_> = stats.iter().filter(|s| s.format != "dense").collect();
    if !sparse.is_empty() {
        let dense: usize = stats.iter().map(|s| s.dense_bytes).sum();
        let flash: usize = stats.iter().map(|s| s.flash_bytes).sum();
        println!(
            "sparse: {} of {} weighted layers sparse; layer weight flash {flash} bytes (dense {dense}, {:.1}%)",
            sparse.len(),
            stats.len(),
            100.0 * flash as f64 / dense.max(1) as f64
        );
    }
}

/// Integer class labels from an `.npy`, `n` of them.
fn read_labels(p: &std::path::Path, n: usize) -> Result<Vec<i64>, Error> {
    let (_, t) = modelless::npy::read_tensor(p)?;
    let l = t.to_i64().ok_or_else(|| Error::Usage(format!("{}: labels must be integers", p.display())))?;
    if l.len() != n {
        return Err(Error::Usage(format!("{}: {} labels for {n} data samples", p.display(), l.len())));
    }
    Ok(l)
}

/// Runs the drift report of an `--int8` build; Err when `--max-drift` is exceeded.
fn drift_report(cfg: &Config, c: &modelless::Compiled, d: &DriftArgs) -> Result<bool, Error> {
    let Some(b) = &c.int8 else { return Ok(true) };
    for n in &b.float_layers {
        eprintln!(
            "warning: node \"{n}\" has int8 weights but computes in float (no integer kernel for its pattern, \
             or its int32 accumulator could overflow); pass --keep-float \"{n}\" to keep its weights float"
        );
    }
    let samples = match (&d.data, &cfg.int8) {
        (Some(p), _) => modelless::int8::load_samples(p, &b.float)?,
        (None, Some(i)) => modelless::int8::load_samples(&i.calib, &b.float)?,
        (None, None) => return Ok(true),
    };
    let labels = match &d.labels {
        Some(p) => Some(read_labels(p, samples.len())?),
        None => None,
    };
    let opts = modelless::int8::report::DriftOptions { probes: d.probes, max_drift: d.max_drift, ..Default::default() };
    let r = modelless::int8::report::drift(&b.float, &c.graph, &b.points, &samples, labels.as_deref(), &opts)?;
    print!("{}", r.to_text());
    if let Some(path) = &d.report {
        let json = serde_json::to_string_pretty(&r).map_err(|e| Error::Usage(format!("report: {e}")))?;
        std::fs::write(path, json + "\n").map_err(|e| Error::Write { path: path.clone(), msg: e.to_string() })?;
    }
    Ok(r.violations.is_empty())
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.cmd {
        Cmd::Conformance { suites, quiet, filter } => {
            let mut failed = 0;
            for suite in &suites {
                let work = tempfile::tempdir().map_err(|e| Error::Toolchain(format!("temp dir: {e}")))?;
                let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
                let results = modelless::conformance::run_suite_matching(suite, work.path(), jobs, filter.as_deref())?;
                println!("{:<48} {:<12} {:<12} detail", suite.display(), "c", "rust");
                for r in &results {
                    let detail = match (&r.c, &r.rust) {
                        (modelless::conformance::Outcome::Fail(m), _)
                        | (_, modelless::conformance::Outcome::Fail(m)) => m.clone(),
                        (modelless::conformance::Outcome::Unsupported(m), _) => {
                            m.lines().nth(1).unwrap_or(m).trim().to_string()
                        }
                        _ => String::new(),
                    };
                    let failed_case = r.c.label() == "fail" || r.rust.label() == "fail";
                    if !quiet || failed_case {
                        let detail: String = detail.split_whitespace().collect::<Vec<_>>().join(" ");
                        let detail: String = detail.chars().take(160).collect();
                        println!("{:<48} {:<12} {:<12} {}", r.name, r.c.label(), r.rust.label(), detail);
                    }
                }
                for lang in [Lang::C, Lang::Rust] {
                    let (p, f, u) = modelless::conformance::tally(&results, lang);
                    failed += f;
                    println!("{} {:?}: {p} passed, {f} failed, {u} unsupported", suite.display(), lang);
                }
            }
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Cmd::Build { m, lang, out, name, emit, input, tune, tuning, drift } => {
            let mut cfg = config(&m)?.lang(lang);
            cfg.name = name;
            prune_data(&mut cfg, &drift);
            if tune && emit != Emit::Source {
                return Err(Error::Usage(
                    "--tune writes tuning.toml beside the sources (--emit source); pass that file with \
                     --tuning to the --emit build"
                        .into(),
                ));
            }
            if let Some(path) = &tuning {
                cfg.tiles = modelless::tune::Tuning::read(path, &cfg.target.name)?;
            }
            let record = match tune {
                true => {
                    let t = modelless::tune::tune(&cfg, &m.model, &mut |s| eprintln!("tune: {s}"))?;
                    cfg.tiles = t.tiles();
                    Some(t)
                }
                false => None,
            };
            if emit != Emit::Source {
                modelless::cross::check_emit(emit, lang, &cfg.target)?;
                modelless::cross::emit(&cfg, &m.model, &out, emit, &input)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut c = cfg.compile_to_memory(&m.model)?;
            c.check_fits(&cfg.target)?;
            modelless::tune::check_tiles(&cfg, &c)?;
            if let Some(t) = &record {
                c.files.push(modelless::backend::OutFile { name: "tuning.toml".into(), contents: t.to_toml() });
            }
            if !drift_report(&cfg, &c, &drift)? {
                eprintln!("error: --max-drift exceeded; nothing written");
                return Ok(ExitCode::from(3));
            }
            modelless::write_files(&out, &c.files)?;
            sparse_summary(&c);
            let files: Vec<&str> = c.files.iter().map(|f| f.name.as_str()).collect();
            println!(
                "wrote {} to {} (arena {} bytes, weights {} bytes)",
                files.join(", "),
                out.display(),
                c.plan.arena_bytes,
                c.graph.weight_bytes()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Audit {
            m,
            data,
            labels,
            members,
            member_labels,
            nonmembers,
            nonmember_labels,
            fgsm,
            fgsm_samples,
            variants,
            probes,
            seed,
            witnesses,
            report,
            plot,
            sparsity_levels,
            search,
            pick_max_drop,
            max_mia_delta,
            adversarial,
            adversarial_labels,
        } => {
            let mut sparsity = sparsity_levels;
            if search {
                for l in [0.5, 0.7, 0.8, 0.9] {
                    if !sparsity.contains(&l) {
                        sparsity.push(l);
                    }
                }
            }
            if let Some(bad) = sparsity.iter().find(|l| !(0.0..1.0).contains(*l)) {
                return Err(Error::Usage(format!("--sparsity {bad}: levels are fractions in [0, 1)")));
            }
            let cfg = config(&m)?;
            let Some(i8cfg) = cfg.int8.clone() else {
                return Err(Error::Usage("audit needs --int8 --calib CALIB.npy (the build to audit)".into()));
            };
            // The reference is the unpruned float model; pruning levels are audited builds.
            let float = Config { int8: None, prune: None, dense: true, ..cfg.clone() }.lower(&m.model)?.0;
            let calib = modelless::int8::load_samples(&i8cfg.calib, &float)?;
            let labeled = |x: &PathBuf, y: Option<&PathBuf>| -> Result<modelless::audit::Labeled, Error> {
                let x = modelless::int8::load_samples(x, &float)?;
                let y = match y {
                    Some(p) => read_labels(p, x.len())?,
                    None => vec![],
                };
                Ok(modelless::audit::Labeled { x, y })
            };
            let data = labeled(&data, labels.as_ref())?;
            let mia_sets = match (&members, &member_labels, &nonmembers, &nonmember_labels) {
                (Some(m), Some(ml), Some(n), Some(nl)) => Some((labeled(m, Some(ml))?, labeled(n, Some(nl))?)),
                _ => None,
            };
            let opts = modelless::audit::AuditOptions {
                int8: modelless::int8::Int8Options { progress: false, ..i8cfg.options.clone() },
                variants,
                drift: modelless::int8::report::DriftOptions { probes, seed, ..Default::default() },
                fgsm_eps: fgsm,
                fgsm_samples,
                witnesses,
                sparsity,
                max_drop: pick_max_drop,
                max_mia_delta,
                adversarial: match &adversarial {
                    Some(a) => Some(labeled(a, adversarial_labels.as_ref())?),
                    None => None,
                },
            };
            let r = modelless::audit::run(&float, &calib, &data, mia_sets.as_ref().map(|(a, b)| (a, b)), &opts)?;
            print!("{}", r.to_text());
            if let Some(path) = &report {
                let json = serde_json::to_string_pretty(&r).map_err(|e| Error::Usage(format!("report: {e}")))?;
                std::fs::write(path, json + "\n")
                    .map_err(|e| Error::Write { path: path.clone(), msg: e.to_string() })?;
            }
            if let Some(path) = &plot {
                modelless::audit::plot::write_svg(&r, path)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { m, lang, iters, warmup, rounds, peers, tflite, input, peers_dir, all, markdown, seed } => {
            let langs = match lang {
                LangChoice::C => vec![Lang::C],
                LangChoice::Rust => vec![Lang::Rust],
                LangChoice::Both => vec![Lang::C, Lang::Rust],
            };
            let opts = modelless::bench::BenchOptions {
                config: config(&m)?,
                langs,
                iters,
                warmup,
                rounds: rounds as usize,
                peers,
                tflite,
                inputs: input,
                peers_dir,
                seed,
            };
            bench(&m.model, all, markdown.as_deref(), &opts)
        }
        Cmd::Targets => {
            println!(
                "{:<14} {:<28} {:<22} {:<6} {:<24} toolchain",
                "name", "rust triple", "C compiler", "os", "features"
            );
            for t in TargetDesc::builtins()? {
                println!(
                    "{:<14} {:<28} {:<22} {:<6} {:<24} {}",
                    t.name,
                    t.rust.triple,
                    t.c.compiler,
                    if t.has_os { "yes" } else { "no" },
                    t.features.join(","),
                    modelless::cross::toolchain_status(&t)
                );
                println!("{:<14} {}", "", t.description);
            }
            println!("\nA target TOML of your own: --target path/to/board.toml (fields: targets/TEMPLATE.toml).");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Inspect { m, memory_plot } => {
            let cfg = config(&m)?;
            // One compilation gives the graph, the plan and the C whose flash is reported.
            let (g, plan, flash) = match cfg.compile_to_memory(&m.model) {
                Ok(c) => {
                    let flash = c_flash(&cfg, &c);
                    (c.graph, c.plan, flash)
                }
                Err(e) => {
                    let (g, plan) = cfg.lower(&m.model)?;
                    (g, plan, format!("not measured ({e})"))
                }
            };
            println!("{:<4} {:<12} {:<28} {:<18} {:>10} {:>9}  params", "#", "op", "node", "output", "MACs", "live B");
            let mut total = 0u64;
            for (i, n) in g.nodes.iter().enumerate() {
                let tys: Vec<_> = n.inputs.iter().map(|&v| g.ty(v)).collect();
                let out = g.ty(n.outputs[0]);
                let macs = n.op.macs(&tys, out);
                total += macs;
                let view = if plan.is_view(&g, i) {
                    " (view)"
                } else if plan.in_place(i).is_some() {
                    " (in place)"
                } else {
                    ""
                };
                println!(
                    "{:<4} {:<12} {:<28} {:<18} {:>10} {:>9}  {}{}",
                    i,
                    n.op.name(),
                    truncate(&n.name, 28),
                    shape_str(&out.shape),
                    macs,
                    plan.live_bytes[i],
                    n.op.params(),
                    view
                );
            }
            println!();
            println!("nodes:        {}", g.nodes.len());
            println!("MACs:         {total}");
            println!("weights:      {} bytes", g.weight_bytes());
            println!("flash:        {flash}");
            println!("arena:        {} bytes (align {})", plan.arena_bytes, plan.align);
            println!("lower bound:  {} bytes live at once (liveness, this node order)", plan.live_peak());
            println!("in place:     {} nodes", plan.in_place.len());
            let rust = modelless::passes::plan_memory(
                &g,
                plan.align,
                &modelless::Kernels {
                    lang: Lang::Rust,
                    isa: Default::default(),
                    opt: Default::default(),
                    layouts: Default::default(),
                    tiles: Default::default(),
                },
            );
            if rust.arena_bytes != plan.arena_bytes {
                println!("arena (Rust): {} bytes (the Rust kernels do not run in place yet)", rust.arena_bytes);
            }
            if let Some(path) = &memory_plot {
                modelless::memory_plot::write_svg(&g, &plan, path)?;
                println!("memory plot:  {}", path.display());
            }
            for &v in &g.inputs {
                println!("input:        \"{}\" {} {}", g.value(v).name, g.ty(v).dtype, shape_str(&g.ty(v).shape));
            }
            for &v in &g.outputs {
                println!("output:       \"{}\" {} {}", g.value(v).name, g.ty(v).dtype, shape_str(&g.ty(v).shape));
            }
            println!("unsupported:  none");
            let stats = modelless::passes::sparsify::layer_stats(&g);
            if !stats.is_empty() {
                println!();
                println!(
                    "{:<28} {:<14} {:>8} {:<9} {:>12} {:>12}",
                    "layer", "op", "density", "format", "flash bytes", "MACs"
                );
                for s in &stats {
                    println!(
                        "{:<28} {:<14} {:>8.3} {:<9} {:>12} {:>12}",
                        truncate(&s.node, 28),
                        s.op,
                        s.density,
                        s.format,
                        s.flash_bytes,
                        s.macs
                    );
                }
                let (flash, dense): (usize, usize) =
                    stats.iter().fold((0, 0), |a, s| (a.0 + s.flash_bytes, a.1 + s.dense_bytes));
                println!("layer weight flash: {flash} bytes (dense {dense})");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { m, input, lang, tolerance, seed, drift } => {
            if m.int8.int8 {
                let cfg = config(&m)?;
                let c = cfg.compile_to_memory(&m.model)?;
                return Ok(if drift_report(&cfg, &c, &drift)? { ExitCode::SUCCESS } else { ExitCode::from(3) });
            }
            let langs = match lang {
                LangChoice::C => vec![Lang::C],
                LangChoice::Rust => vec![Lang::Rust],
                LangChoice::Both => vec![Lang::C, Lang::Rust],
            };
            let opts = VerifyOptions { config: config(&m)?, langs, inputs: input, rel_tol: tolerance, seed };
            let reports = verify(&m.model, &opts)?;
            let mut ok = true;
            for r in &reports {
                for c in &r.checks {
                    let verdict = if c.ok() { "ok" } else { "MISMATCH" };
                    ok &= c.ok();
                    println!(
                        "{:<5} output \"{}\": max abs err {:.3e}, max rel err {:.3e} (tolerance {:.1e}) {verdict}",
                        format!("{:?}", r.lang).to_lowercase(),
                        c.name,
                        c.max_abs,
                        c.max_rel,
                        c.tolerance
                    );
                }
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}

/// `modelless bench`: one model (a table on stdout), or with `all` every model under a
/// folder (a table per model, and the Markdown report).
fn bench(
    model: &std::path::Path,
    all: bool,
    markdown: Option<&std::path::Path>,
    opts: &modelless::bench::BenchOptions,
) -> Result<ExitCode, Error> {
    use modelless::bench;
    let mut log = |s: &str| eprintln!("{s}");
    let peak = bench::measure_peak(&opts.config.target)?;
    if !all {
        let b = bench::bench_model(model, opts, &mut log)?;
        print!("{}", b.table(&peak));
        return Ok(ExitCode::SUCCESS);
    }
    if opts.config.int8.is_some() || opts.tflite.is_some() || !opts.inputs.is_empty() {
        return Err(Error::Usage("--all takes no --int8, --tflite or --input: each model uses its own".into()));
    }
    let mut results = vec![];
    for path in bench::find_models(model)? {
        eprintln!("== {}", path.display());
        let r = bench::bench_model(&path, opts, &mut log);
        match &r {
            Ok(b) => println!("{}", b.table(&peak)),
            Err(e) => println!("{}: not measured: {}\n", path.display(), e.to_string().lines().next().unwrap_or("")),
        }
        let r = r.map_err(|e| {
            let msg = e.to_string();
            let mut lines = msg.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("").to_string();
            match lines.next() {
                Some(second) if first.ends_with(':') => format!("{first} {second}"),
                _ => first,
            }
        });
        results.push((path, r));
    }
    if let Some(md) = markdown {
        let notes = peer_notes(&results);
        let text = bench::markdown(&results, &peak, opts, model, &notes);
        std::fs::write(md, text).map_err(|e| Error::Write { path: md.to_path_buf(), msg: e.to_string() })?;
        println!("wrote {}", md.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// One note per peer that was skipped everywhere for the same reason (e.g. not installed).
fn peer_notes(results: &[modelless::bench::ModelResult]) -> Vec<String> {
    use modelless::bench::{Outcome, PIP_HINT};
    let mut notes: Vec<String> = vec![];
    for (_, r) in results {
        let Ok(b) = r else { continue };
        for row in &b.rows {
            if let Outcome::Skipped(why) = &row.outcome {
                let n = format!("{}: not measured: {why}", row.system);
                if why.contains(PIP_HINT) && !notes.contains(&n) {
                    notes.push(n);
                }
            }
        }
    }
    notes
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("…{}", s.chars().rev().take(n - 1).collect::<Vec<_>>().into_iter().rev().collect::<String>())
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
