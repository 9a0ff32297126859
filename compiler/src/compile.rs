//! The compiler API shared by the CLI and build scripts: ONNX in, source files out.
//!
//! ```no_run
//! // build.rs
//! modelless::Config::new()
//!     .lang(modelless::Lang::Rust)
//!     .compile("model.onnx", std::env::var("OUT_DIR").unwrap())
//!     .unwrap();
//! ```

use crate::backend::{self, OutFile, Program};
use crate::error::{Error, Result};
use crate::frontend::{self, ImportOptions};
use crate::ir::{Graph, verify};
use crate::passes::{self, KernelNeeds as _, MemoryPlan};
use crate::target::TargetDesc;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Output language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    C,
    Rust,
}

/// The kernels a backend emits for a target's instruction set.
#[derive(Debug, Clone)]
pub struct Kernels {
    pub lang: Lang,
    pub isa: backend::Isa,
    pub opt: backend::Opt,
    /// Per-node decisions beyond the target ([`passes::Layouts`]).
    pub layouts: passes::Layouts,
    /// Register tiles by node name (`--tune`, [`Config::tiles`]).
    pub tiles: BTreeMap<String, u8>,
}

/// What each backend's kernels need from the memory plan (the arena size depends on it).
impl passes::KernelNeeds for Kernels {
    /// The C kernels honour the in-place contract of [`crate::ops::Op::in_place`].
    fn runs_in_place(&self) -> bool {
        matches!(self.lang, Lang::C)
    }
    fn scratch_bytes(&self, g: &Graph, n: &crate::ir::Node, in_place: Option<crate::ops::InPlace>) -> usize {
        match self.lang {
            Lang::C => backend::c::scratch_bytes(g, n, in_place, self.choice(g, n)),
            Lang::Rust => 0,
        }
    }
}

impl Kernels {
    /// The kernel choices for node `n` of `g`.
    pub fn choice(&self, g: &Graph, n: &crate::ir::Node) -> backend::Choice {
        backend::Choice::of(g, n, self.isa, self.opt, &self.layouts)
    }

    /// Plans `g`'s memory for these kernels. The C speed kernels hold the tensors between
    /// channel-lane kernels in channel blocks ([`passes::Layouts::blocked`]). Where a
    /// Winograd convolution's scratch would raise the arena above the plan with direct
    /// convolutions only, that node keeps its direct kernel ([`passes::Layouts::direct_convs`]):
    /// the transform never costs RAM.
    pub fn plan(&self, g: &Graph, align: usize) -> MemoryPlan {
        let simd_c = self.lang == Lang::C && self.opt.simd();
        let blocked = if simd_c { backend::c::blocked_values(g, self.isa) } else { Default::default() };
        let tiles: BTreeMap<usize, u8> = match simd_c {
            true => {
                (g.nodes.iter().enumerate()).filter_map(|(i, n)| self.tiles.get(&n.name).map(|&t| (i, t))).collect()
            }
            false => Default::default(),
        };
        let with = |direct_convs: std::collections::BTreeSet<usize>| Kernels {
            layouts: passes::Layouts { direct_convs, blocked: blocked.clone(), tiles: tiles.clone() },
            ..self.clone()
        };
        let planned = |k: &Kernels| {
            let mut plan = passes::plan_memory(g, align, k);
            plan.layouts = k.layouts.clone();
            plan
        };
        let eligible: std::collections::BTreeSet<usize> = match simd_c {
            true => (0..g.nodes.len()).filter(|&i| backend::c::winograd_eligible(g, &g.nodes[i])).collect(),
            false => Default::default(),
        };
        if eligible.is_empty() {
            return planned(&with(eligible));
        }
        let direct = with(eligible.clone());
        let fast = with(Default::default());
        let base = planned(&direct);
        let aligned = |b: usize| b.div_ceil(align.max(1)) * align.max(1);
        let vetoed: std::collections::BTreeSet<usize> = eligible
            .iter()
            .copied()
            .filter(|&i| {
                let n = &g.nodes[i];
                let ip = base.in_place(i).and_then(|_| n.op.in_place(g, n));
                let live = base.live_bytes[i] - aligned(direct.scratch_bytes(g, n, ip))
                    + aligned(fast.scratch_bytes(g, n, ip));
                live > base.arena_bytes
            })
            .collect();
        let plan = planned(&with(vetoed));
        if plan.arena_bytes > base.arena_bytes { base } else { plan }
    }
}

/// Compilation settings (builder style, like `prost_build::Config`).
#[derive(Debug, Clone)]
pub struct Config {
    pub lang: Lang,
    pub name: Option<String>,
    pub input_shapes: BTreeMap<String, Vec<usize>>,
    /// Inputs fixed at build time (see [`ImportOptions::const_inputs`]).
    pub const_inputs: BTreeMap<String, (crate::ir::TensorType, crate::ir::TensorData)>,
    pub target: TargetDesc,
    /// Print the IR after these passes (`"all"` for every pass, `"import"` for the input).
    pub dump_ir_after: Vec<String>,
    /// Post-training int8 quantization with calibration samples (`--int8 --calib`).
    pub int8: Option<Int8Config>,
    /// Post-training magnitude pruning of the float weights (`--sparsity`), before `int8`.
    pub prune: Option<PruneSettings>,
    /// No sparse code generation (`--dense`): zero weights stay in the dense kernels.
    pub dense: bool,
    /// Speed or size kernels (`--opt`).
    pub opt: backend::Opt,
    /// Register tiles of the C speed kernels by node name, chosen by measuring (`--tune`,
    /// [`crate::tune`]); other nodes take each kernel's rule.
    pub tiles: BTreeMap<String, u8>,
}

/// `--sparsity`: the pruning mode and, for the accuracy guard (`max_drop`), the samples.
#[derive(Debug, Clone)]
pub struct PruneSettings {
    pub mode: crate::passes::PruneMode,
    /// Nodes never pruned (`--keep-dense`).
    pub keep_dense: Vec<String>,
    /// Guard samples: an `.npy` of N inputs or a directory of them (`--data`).
    pub data: Option<PathBuf>,
    /// Integer labels of `data` (`--labels`); without them the guard measures top-1
    /// agreement with the unpruned model.
    pub labels: Option<PathBuf>,
    /// Largest metric drop in points (`--max-drop`); `None`: no guard.
    pub max_drop: Option<f64>,
}

impl PruneSettings {
    /// The pass configuration, with the guard samples loaded for graph `g`.
    fn resolve(&self, g: &Graph) -> Result<crate::passes::PruneConfig> {
        let guard = match (self.max_drop, &self.data) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::Usage(
                    "--max-drop needs --data X.npy (with --labels Y.npy for accuracy; without labels, top-1 \
                     agreement with the unpruned model is measured)"
                        .into(),
                ));
            }
            (Some(max_drop), Some(data)) => {
                let samples = crate::int8::load_samples(data, g)?;
                let labels = match &self.labels {
                    Some(p) => {
                        let (_, t) = crate::npy::read_tensor(p)?;
                        Some(
                            t.to_i64()
                                .ok_or_else(|| Error::Usage(format!("{}: labels must be integers", p.display())))?,
                        )
                    }
                    None => None,
                };
                Some(crate::passes::Guard { samples, labels, max_drop })
            }
        };
        Ok(crate::passes::PruneConfig { mode: self.mode.clone(), keep_dense: self.keep_dense.clone(), guard })
    }
}

/// `--int8`: options and where the calibration samples come from.
#[derive(Debug, Clone)]
pub struct Int8Config {
    pub options: crate::int8::Int8Options,
    /// An `.npy` file or a directory of them (see [`crate::int8::load_samples`]).
    pub calib: PathBuf,
}

/// What int8 quantization produced, for the drift report.
pub struct Int8Build {
    /// The optimized float graph that was quantized.
    pub float: Graph,
    pub points: Vec<crate::int8::QuantPoint>,
    /// Layers that got int8 weights but still compute in float (no integer pattern, or
    /// the int32 accumulator bound failed), by node name.
    pub float_layers: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lang: Lang::C,
            name: None,
            input_shapes: BTreeMap::new(),
            const_inputs: BTreeMap::new(),
            target: TargetDesc::host(),
            dump_ir_after: vec![],
            int8: None,
            prune: None,
            dense: false,
            opt: backend::Opt::Speed,
            tiles: BTreeMap::new(),
        }
    }
}

/// A compiled model: the optimized graph, its memory plan and the emitted files.
pub struct Compiled {
    pub name: String,
    pub graph: Graph,
    pub plan: MemoryPlan,
    pub files: Vec<OutFile>,
    /// Set for `--int8` builds.
    pub int8: Option<Int8Build>,
    /// Set for `--sparsity` builds.
    pub prune: Option<crate::passes::PruneReport>,
}

impl Compiled {
    /// Weight bytes in flash, sparse-aware ([`crate::passes::sparsify::flash_bytes`]).
    pub fn flash_bytes(&self) -> usize {
        crate::passes::sparsify::flash_bytes(&self.graph)
    }

    /// Refuses a model whose arena or weights exceed the RAM or flash of a bare-metal
    /// `target` (its `[firmware]` memory map, minus the stack and code reserves; see
    /// [`TargetDesc::check_fits`]). `build` and `Config::compile` call it before writing.
    pub fn check_fits(&self, target: &TargetDesc) -> Result<()> {
        target.check_fits(self.plan.arena_bytes, self.flash_bytes())
    }
}

impl Config {
    pub fn new() -> Config {
        Config::default()
    }

    pub fn lang(mut self, lang: Lang) -> Config {
        self.lang = lang;
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Config {
        self.name = Some(name.into());
        self
    }

    pub fn input_shape(mut self, input: impl Into<String>, shape: Vec<usize>) -> Config {
        self.input_shapes.insert(input.into(), shape);
        self
    }

    /// Fixes input `input` to a constant at build time (it leaves the generated API).
    pub fn bind_input(
        mut self,
        input: impl Into<String>,
        ty: crate::ir::TensorType,
        data: crate::ir::TensorData,
    ) -> Config {
        self.const_inputs.insert(input.into(), (ty, data));
        self
    }

    pub fn target(mut self, target: TargetDesc) -> Config {
        self.target = target;
        self
    }

    /// Speed (the default) or size kernels; see [`backend::Opt`].
    pub fn opt(mut self, opt: backend::Opt) -> Config {
        self.opt = opt;
        self
    }

    /// Register tiles by node name ([`crate::tune::Tuning::tiles`]).
    pub fn tiles(mut self, tiles: BTreeMap<String, u8>) -> Config {
        self.tiles = tiles;
        self
    }

    /// Compiles `model` and writes the sources into `out_dir` (created if needed); a model
    /// that does not fit a bare-metal target ([`Compiled::check_fits`]) writes nothing.
    /// For build scripts, also tells cargo to rerun when the model changes.
    pub fn compile(&self, model: impl AsRef<Path>, out_dir: impl AsRef<Path>) -> Result<Compiled> {
        let compiled = self.compile_to_memory(model.as_ref())?;
        compiled.check_fits(&self.target)?;
        write_files(out_dir.as_ref(), &compiled.files)?;
        if std::env::var_os("CARGO_MANIFEST_DIR").is_some() && std::env::var_os("OUT_DIR").is_some() {
            println!("cargo:rerun-if-changed={}", model.as_ref().display());
        }
        Ok(compiled)
    }

    /// Imports and optimizes a model without emitting code (for `inspect`).
    pub fn lower(&self, model: &Path) -> Result<(Graph, MemoryPlan)> {
        let bytes = std::fs::read(model).map_err(|source| Error::Read { path: model.into(), source })?;
        self.lower_bytes(&bytes, model)
    }

    /// [`Config::lower`] on model bytes already in memory; `path` names the model in errors
    /// and locates external data.
    pub fn lower_bytes(&self, bytes: &[u8], path: &Path) -> Result<(Graph, MemoryPlan)> {
        let (graph, plan, _) = self.lower_int8(bytes, path)?;
        Ok((graph, plan))
    }

    /// [`Config::lower_bytes`], also returning what `--int8` quantization produced.
    pub fn lower_int8(&self, bytes: &[u8], path: &Path) -> Result<(Graph, MemoryPlan, Option<Int8Build>)> {
        let (graph, plan, int8, _) = self.lower_all(bytes, path)?;
        Ok((graph, plan, int8))
    }

    /// [`Config::lower_int8`], also returning what `--sparsity` pruning did.
    pub fn lower_all(
        &self,
        bytes: &[u8],
        path: &Path,
    ) -> Result<(Graph, MemoryPlan, Option<Int8Build>, Option<crate::passes::PruneReport>)> {
        let opts = ImportOptions { input_shapes: self.input_shapes.clone(), const_inputs: self.const_inputs.clone() };
        let mut graph = frontend::import_bytes(bytes, path, &opts)?;
        let wants = |pass: &str| self.dump_ir_after.iter().any(|p| p == pass || p == "all");
        if wants("import") {
            eprintln!("--- IR after import ---\n{}", crate::ir::print_graph(&graph));
        }
        passes::optimize(&mut graph, |pass, g| {
            if wants(pass) {
                eprintln!("--- IR after {pass} ---\n{}", crate::ir::print_graph(g));
            }
        })?;
        let pruned = match &self.prune {
            Some(p) => {
                let cfg = p.resolve(&graph)?;
                Some(passes::prune(&mut graph, &cfg)?)
            }
            None => None,
        };
        let mut int8 = None;
        if let Some(cfg) = &self.int8 {
            let samples = crate::int8::load_samples(&cfg.calib, &graph)?;
            let q = crate::int8::quantize(&graph, &samples, &cfg.options)?;
            let float = std::mem::replace(&mut graph, q.graph);
            passes::optimize(&mut graph, |pass, g| {
                if wants(pass) {
                    eprintln!("--- IR after {pass} (int8) ---\n{}", crate::ir::print_graph(g));
                }
            })?;
            let float_layers = graph
                .nodes
                .iter()
                .filter(|n| {
                    n.inputs.get(1).and_then(|&w| graph.producer(w)).is_some_and(|p| {
                        matches!(graph.nodes[p].op, crate::ops::Op::Dequantize(_))
                            && graph.is_const(graph.nodes[p].inputs[0])
                    })
                })
                .map(|n| n.name.clone())
                .collect();
            int8 = Some(Int8Build { float, points: q.points, float_layers });
        }
        self.sparsify(&mut graph)?;
        if wants("sparsify") {
            eprintln!("--- IR after sparsify ---\n{}", crate::ir::print_graph(&graph));
        }
        let plan = self.kernels().plan(&graph, self.target.arena_align);
        Ok((graph, plan, int8, pruned))
    }

    /// The kernels this configuration emits: its language on its target's instruction set.
    pub fn kernels(&self) -> Kernels {
        Kernels {
            lang: self.lang,
            isa: backend::Isa::of(&self.target),
            opt: self.opt,
            layouts: Default::default(),
            tiles: self.tiles.clone(),
        }
    }

    /// The program the backends emit, with this configuration's kernels.
    fn program<'g>(&self, graph: &'g Graph, plan: &MemoryPlan, name: String, mut banner: String) -> Program<'g> {
        let k = self.kernels();
        if k.opt == backend::Opt::Size {
            banner += " Kernels: --opt size.";
        }
        Program { graph, plan: plan.clone(), isa: k.isa, opt: k.opt, name, banner }
    }

    /// Sparse code generation (unless `--dense`): the `sparsify` pass, then `dce`.
    fn sparsify(&self, graph: &mut Graph) -> Result<()> {
        // Sparse code is weighed against the dense kernels actually emitted: size builds use
        // none of the instruction set's kernels.
        let k = self.kernels();
        let dense_isa = if k.opt.simd() { k.isa } else { backend::Isa::default() };
        if !self.dense && passes::sparsify(graph, dense_isa) {
            passes::dce(graph);
            verify(graph).map_err(|e| Error::Model(format!("internal error after pass sparsify: {e}")))?;
        }
        Ok(())
    }

    /// Compiles without touching the file system (beyond reading the model).
    pub fn compile_to_memory(&self, model: &Path) -> Result<Compiled> {
        let bytes = std::fs::read(model).map_err(|source| Error::Read { path: model.into(), source })?;
        self.compile_bytes(&bytes, model)
    }

    /// [`Config::compile_to_memory`] on model bytes already in memory (fuzzing, embedding);
    /// `model` names the model in errors, gives the default name and locates external data.
    pub fn compile_bytes(&self, bytes: &[u8], model: &Path) -> Result<Compiled> {
        let name = match &self.name {
            Some(n) => {
                let s = backend::sanitize_ident(n);
                if &s != n {
                    return Err(Error::Usage(format!("--name \"{n}\" is not a valid C/Rust identifier (try \"{s}\")")));
                }
                s
            }
            None => default_name(model),
        };
        let (graph, plan, int8, prune) = self.lower_all(bytes, model)?;
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let file = model.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let mut banner =
            format!("@generated by modelless {} from {file} (sha256 {hex}). Do not edit.", env!("CARGO_PKG_VERSION"));
        if let Some(cfg) = &self.int8 {
            banner += &int8_provenance(cfg, &graph)?;
        }
        let program = self.program(&graph, &plan, name.clone(), banner);
        let files = match self.lang {
            Lang::C => backend::c::emit(&program)?,
            Lang::Rust => backend::rust::emit(&program)?,
        };
        Ok(Compiled { name, graph, plan, files, int8, prune })
    }
}

impl Config {
    /// Compiles an IR graph built by other means than the ONNX frontend (tests, tools): runs
    /// the optimization passes, plans memory and emits the sources for `self.lang` under
    /// `name` (a valid C/Rust identifier).
    pub fn compile_graph(&self, mut graph: Graph, name: &str) -> Result<Compiled> {
        let s = backend::sanitize_ident(name);
        if s != name {
            return Err(Error::Usage(format!("name \"{name}\" is not a valid C/Rust identifier (try \"{s}\")")));
        }
        crate::ir::verify(&graph).map_err(|e| Error::Model(format!("invalid graph: {e}")))?;
        passes::optimize(&mut graph, |_, _| {})?;
        self.sparsify(&mut graph)?;
        let plan = self.kernels().plan(&graph, self.target.arena_align);
        let banner = format!("@generated by modelless {} from an IR graph. Do not edit.", env!("CARGO_PKG_VERSION"));
        let program = self.program(&graph, &plan, name.to_string(), banner);
        let files = match self.lang {
            Lang::C => backend::c::emit(&program)?,
            Lang::Rust => backend::rust::emit(&program)?,
        };
        Ok(Compiled { name: name.to_string(), graph, plan, files, int8: None, prune: None })
    }
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Provenance of an int8 build for the generated banner: the calibration data (file names
/// and sha256 of their bytes), the options, and a sha256 of every quantization parameter
/// in the final graph (ops' requantization data and value parameters).
fn int8_provenance(cfg: &Int8Config, g: &Graph) -> Result<String> {
    let files: Vec<PathBuf> = if cfg.calib.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&cfg.calib)
            .map_err(|source| Error::Read { path: cfg.calib.clone(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "npy"))
            .collect();
        v.sort();
        v
    } else {
        vec![cfg.calib.clone()]
    };
    let mut calib = Sha256::new();
    for f in &files {
        calib.update(std::fs::read(f).map_err(|source| Error::Read { path: f.clone(), source })?);
    }
    let mut params = Sha256::new();
    for n in &g.nodes {
        if n.op.name().starts_with('Q') || matches!(n.op, crate::ops::Op::Dequantize(_) | crate::ops::Op::Requantize(_))
        {
            params.update(format!("{:?}", n.op).as_bytes());
        }
    }
    for v in &g.values {
        if let Some(q) = &v.ty.quant {
            params.update(format!("{q:?}").as_bytes());
        }
    }
    let name = cfg.calib.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let o = &cfg.options;
    Ok(format!(
        " int8: calibration {name} (sha256 {}), {:?} calibration, {:?} rounding, {} I/O; quantization parameters sha256 {}.",
        hex(calib.finalize()),
        o.method,
        o.rounding,
        if o.io_int8 { "int8" } else { "float" },
        hex(params.finalize())
    ))
}

/// Default symbol name: the model file's stem, or its folder's name when the file is the
/// conventional `model.onnx`.
pub fn default_name(model: &Path) -> String {
    let stem = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = if stem == "model" {
        model.parent().and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned()).unwrap_or(stem)
    } else {
        stem
    };
    backend::sanitize_ident(&stem)
}

/// Writes all files or none: they are staged in a temporary folder next to `dir` and
/// moved into place only when every one was written.
pub fn write_files(dir: &Path, files: &[OutFile]) -> Result<()> {
    let werr = |path: &Path, e: &dyn std::fmt::Display| Error::Write { path: path.into(), msg: e.to_string() };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| werr(&parent, &e))?;
    let stage = tempfile::Builder::new().prefix(".modelless-").tempdir_in(&parent).map_err(|e| werr(&parent, &e))?;
    for f in files {
        let p = stage.path().join(&f.name);
        std::fs::write(&p, &f.contents).map_err(|e| werr(&p, &e))?;
    }
    if !dir.exists() {
        let staged = stage.keep();
        return std::fs::rename(&staged, dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(&staged);
            werr(dir, &e)
        });
    }
    if !dir.is_dir() {
        return Err(werr(dir, &"exists and is not a directory"));
    }
    for f in files {
        let to = dir.join(&f.name);
        std::fs::rename(stage.path().join(&f.name), &to).map_err(|e| werr(&to, &e))?;
    }
    Ok(())
}

/// Build-script integration in the style of `prost-build` / `tonic-build`: compiles a model
/// into `OUT_DIR` and tells cargo to rerun when the model changes.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), modelless::Error> {
///     modelless::Builder::new("model.onnx").name("kws").lang(modelless::Lang::Rust).compile()?;
///     Ok(())
/// }
/// // src/main.rs: mod kws { include!(concat!(env!("OUT_DIR"), "/kws.rs")); }
/// ```
///
/// With [`Lang::C`] the generated C is compiled with the `cc` crate for cargo's target and
/// linked into the crate, and `NAME.rs` holds safe Rust wrappers with the same API as the
/// Rust backend's module (`INPUT_LEN`, `OUTPUT_LEN`, `ARENA_BYTES`, `Arena::new()`, `run`).
#[derive(Debug, Clone)]
pub struct Builder {
    model: PathBuf,
    config: Config,
    out_dir: Option<PathBuf>,
}

impl Builder {
    /// A builder for `model` (relative paths are relative to the crate root, where cargo
    /// runs build scripts). Defaults: Rust output, name from the file name.
    pub fn new(model: impl AsRef<Path>) -> Builder {
        Builder { model: model.as_ref().to_path_buf(), config: Config::new().lang(Lang::Rust), out_dir: None }
    }

    /// Module name and C symbol prefix (default: from the model's file name).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.config = self.config.name(name);
        self
    }

    pub fn lang(mut self, lang: Lang) -> Builder {
        self.config = self.config.lang(lang);
        self
    }

    /// Binds a symbolic input shape (see `--input-shape`).
    pub fn input_shape(mut self, input: impl Into<String>, shape: Vec<usize>) -> Builder {
        self.config = self.config.input_shape(input, shape);
        self
    }

    /// Target description (arena alignment; default: the host). The C compiler for
    /// [`Lang::C`] follows cargo's `TARGET`, as the `cc` crate does.
    pub fn target(mut self, target: TargetDesc) -> Builder {
        self.config = self.config.target(target);
        self
    }

    /// Speed (the default) or size kernels; see [`backend::Opt`].
    pub fn opt(mut self, opt: backend::Opt) -> Builder {
        self.config = self.config.opt(opt);
        self
    }

    /// Where to write (default: `$OUT_DIR`).
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Builder {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Compiles the model and writes `NAME.rs` into the output directory (for C, also the
    /// C sources under `modelless-NAME/`, compiled and linked with `cc`).
    pub fn compile(&self) -> Result<Compiled> {
        let out = match (&self.out_dir, std::env::var_os("OUT_DIR")) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => PathBuf::from(d),
            (None, None) => {
                return Err(Error::Usage(
                    "OUT_DIR is not set: call modelless::Builder from a build script, or set .out_dir()".into(),
                ));
            }
        };
        if std::env::var_os("OUT_DIR").is_some() {
            println!("cargo:rerun-if-changed={}", self.model.display());
        }
        let compiled = self.config.compile_to_memory(&self.model)?;
        if self.config.lang == Lang::Rust {
            write_files(&out, &compiled.files)?;
            return Ok(compiled);
        }
        let c_dir = out.join(format!("modelless-{}", compiled.name));
        write_files(&c_dir, &compiled.files)?;
        let mut build = cc::Build::new();
        build.std("c99").include(&c_dir).warnings(false);
        for f in compiled.files.iter().filter(|f| f.name.ends_with(".c")) {
            build.file(c_dir.join(&f.name));
        }
        build
            .try_compile(&format!("modelless_{}", compiled.name))
            .map_err(|e| Error::Toolchain(format!("compiling the generated C with the cc crate failed: {e}")))?;
        // The generated C calls math.h; bare-metal targets bring their own libm.
        if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os != "none") {
            println!("cargo:rustc-link-lib=m");
        }
        let sig = crate::toolchain::IoSig::of(&compiled.graph);
        let wrapper =
            crate::cross::c_wrapper_module(&compiled.name, &sig, compiled.plan.arena_bytes, compiled.plan.align);
        write_files(&out, &[OutFile { name: format!("{}.rs", compiled.name), contents: wrapper }])?;
        Ok(compiled)
    }
}
