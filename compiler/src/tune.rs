//! `--tune`: register tiles chosen by measuring on this machine.
//!
//! Without it every kernel takes its fixed rule's tile. With it, each node whose C speed
//! kernel offers several register tiles ([`crate::backend::c::tile_names`]) is compiled
//! alone — its data inputs random, its constants the model's — once per tile, built with the
//! target's bench flags and timed (median of [`ITERS`] runs after warm-up). A tile other
//! than the rule's wins only when it is faster by more than [`MARGIN`], so noise keeps the
//! rule. The result is a [`Tuning`]: written next to the sources as `tuning.toml`, it
//! rebuilds the same code without measuring (`--tuning FILE`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::ir::{Graph, Node};
use crate::{Config, Lang, backend, toolchain};

/// Timed runs per tile (after as many warm-up runs).
const ITERS: usize = 300;
/// A tile replaces the rule's only when faster by more than this fraction.
const MARGIN: f64 = 0.03;

/// One tuned node: its tiles (the rule's first), each one's median and the pick.
#[derive(Debug, Clone, PartialEq)]
pub struct TunedNode {
    pub node: String,
    pub tiles: Vec<String>,
    pub ms: Vec<f64>,
    pub pick: u8,
}

/// The tiles `--tune` chose for one model and target.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tuning {
    pub target: String,
    pub nodes: Vec<TunedNode>,
    /// The whole model's median with the rule's tiles and with the picks, when any node
    /// picked another tile. The picks are kept only if the model is faster with them.
    pub model_ms: Option<(f64, f64)>,
}

impl Tuning {
    /// The picks by node name ([`Config::tiles`]); nodes that keep the rule are left out.
    pub fn tiles(&self) -> BTreeMap<String, u8> {
        self.nodes.iter().filter(|n| n.pick != 0).map(|n| (n.node.clone(), n.pick)).collect()
    }

    /// The record written as `tuning.toml`: the picks, and what was measured as comments.
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Register tiles chosen by `modelless build --tune` on this machine.");
        let _ = writeln!(s, "# Rebuild the same code with `--tuning tuning.toml`.");
        if let Some((rule, picked)) = self.model_ms {
            let verdict = if self.nodes.iter().any(|n| n.pick != 0) { "kept" } else { "dropped" };
            let _ = writeln!(
                s,
                "# Whole model: {:.2} µs with the rules' tiles, {:.2} µs with the nodes' fastest ({verdict}).",
                rule * 1e3,
                picked * 1e3
            );
        }
        let _ = writeln!(s, "target = {}\n\n[tiles]", toml_str(&self.target));
        for n in &self.nodes {
            let times: Vec<String> =
                n.tiles.iter().zip(&n.ms).map(|(t, ms)| format!("{t}: {:.2} µs", ms * 1e3)).collect();
            let _ = writeln!(s, "# {}", times.join(", "));
            let _ = writeln!(s, "{} = {}", toml_str(&n.node), n.pick);
        }
        s
    }

    /// The picks of a `tuning.toml` for `target` (the file's `[tiles]` table).
    pub fn read(path: &Path, target: &str) -> Result<BTreeMap<String, u8>> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
        let bad = |why: String| Error::Usage(format!("--tuning {}: {why}", path.display()));
        let v: toml::Table = text.parse().map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        match v.get("target").and_then(|t| t.as_str()) {
            Some(t) if t == target => {}
            Some(t) => return Err(bad(format!("tuned for target {t}, not {target}: run --tune for {target}"))),
            None => return Err(bad("no `target` key".into())),
        }
        let Some(tiles) = v.get("tiles").and_then(|t| t.as_table()) else {
            return Err(bad("no [tiles] table".into()));
        };
        let picks = tiles.iter().map(|(k, v)| match v.as_integer().and_then(|i| u8::try_from(i).ok()) {
            Some(i) => Ok((k.clone(), i)),
            None => Err(bad(format!("tile of node \"{k}\" is not a small integer"))),
        });
        // Like [`Tuning::tiles`]: the nodes that keep the rule (0) are left out.
        picks.filter(|p| !matches!(p, Ok((_, 0)))).collect()
    }
}

/// Checks that every tile of `cfg.tiles` names a node of `c` (compiled with `cfg`) that has
/// that many register tiles: a record made for another model or build fails here.
pub fn check_tiles(cfg: &Config, c: &crate::Compiled) -> Result<()> {
    let k = cfg.kernels();
    for (name, &t) in &cfg.tiles {
        let Some(n) = c.graph.nodes.iter().find(|n| &n.name == name) else {
            return Err(Error::Usage(format!(
                "--tuning: node \"{name}\" is not in this build of the model: tune it again (--tune)"
            )));
        };
        let tiles =
            backend::c::tile_names(&c.graph, n, backend::Choice::of(&c.graph, n, k.isa, k.opt, &c.plan.layouts));
        if usize::from(t) >= tiles.len() {
            return Err(Error::Usage(format!(
                "--tuning: node \"{name}\" has {} register tiles here, not tile {t}: tune it again (--tune)",
                tiles.len()
            )));
        }
    }
    Ok(())
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Measures the register tiles of `model`'s nodes under `cfg` (C, speed) and returns the
/// fastest of each. `log` receives progress lines.
pub fn tune(cfg: &Config, model: &Path, log: &mut dyn FnMut(&str)) -> Result<Tuning> {
    if cfg.lang != Lang::C || !cfg.opt.simd() {
        return Err(Error::Usage("--tune measures the C speed kernels: use --lang c and --opt speed".into()));
    }
    if !cfg.target.runner.is_empty() || !cfg.target.has_os {
        return Err(Error::Usage(format!(
            "--tune times code on this machine; target {} does not run here natively (tune for the host \
             target, or pass a tuning.toml made on the device's twin with --tuning)",
            cfg.target.name
        )));
    }
    let base = Config { tiles: BTreeMap::new(), ..cfg.clone() };
    let (g, plan) = base.lower(model)?;
    let kernels = base.kernels();
    let mut tuning = Tuning { target: cfg.target.name.clone(), nodes: vec![], model_ms: None };
    let work = tempfile::tempdir().map_err(|e| Error::Toolchain(format!("cannot create a temp dir: {e}")))?;
    for (i, n) in g.nodes.iter().enumerate() {
        let k = backend::Choice::of(&g, n, kernels.isa, kernels.opt, &plan.layouts);
        let tiles = backend::c::tile_names(&g, n, k);
        if tiles.is_empty() {
            continue;
        }
        let (alone, sample) = node_alone(&g, n, i as u64)?;
        let mut harnesses = vec![];
        for t in 0..tiles.len() {
            let dir = work.path().join(format!("n{i}_t{t}"));
            std::fs::create_dir_all(&dir).map_err(|e| Error::Write { path: dir.clone(), msg: e.to_string() })?;
            let c = Config { tiles: BTreeMap::from([(n.name.clone(), t as u8)]), ..base.clone() }
                .compile_graph(alone.clone(), "tune")?;
            // Alone, the planner may pick another kernel (a Winograd transform the model's
            // arena vetoed): such a node is not measured.
            let an = &c.graph.nodes[0];
            let ak = backend::Choice::of(&c.graph, an, k.isa, k.opt, &c.plan.layouts);
            if t == 0 && backend::c::tile_names(&c.graph, an, ak) != tiles {
                break;
            }
            let sig = toolchain::IoSig::of(&c.graph);
            harnesses.push(toolchain::build_c_timing(&dir, &c.name, &c.files, &sig, &cfg.target, cfg.opt)?);
        }
        if harnesses.len() != tiles.len() {
            log(&format!("{}: not tuned (it runs another kernel alone)", n.name));
            continue;
        }
        let ms = best_medians(&harnesses, &sample)?;
        let best = (0..ms.len()).min_by(|&a, &b| ms[a].total_cmp(&ms[b])).unwrap_or(0);
        let pick = if ms[best] < ms[0] * (1.0 - MARGIN) { best } else { 0 };
        log(&format!("{}: {} ({:.2} µs; rule {:.2} µs)", n.name, tiles[pick], ms[pick] * 1e3, ms[0] * 1e3));
        tuning.nodes.push(TunedNode { node: n.name.clone(), tiles, ms, pick: pick as u8 });
    }
    // A node alone does not run as in the model (caches, neighbours): the picks stay only if
    // the whole model is faster with them.
    if !tuning.tiles().is_empty() {
        let sample: Vec<Vec<u8>> = (g.inputs.iter().enumerate())
            .map(|(j, &v)| {
                let t = g.ty(v);
                crate::bench::random_data(t.dtype, t.shape.iter().product(), 7 + j as u64).map(|d| d.to_le_bytes())
            })
            .collect::<Result<_>>()?;
        let mut harnesses = vec![];
        for (j, tiles) in [BTreeMap::new(), tuning.tiles()].into_iter().enumerate() {
            let c = Config { tiles, ..base.clone() }.compile_to_memory(model)?;
            let dir = work.path().join(format!("model{j}"));
            std::fs::create_dir_all(&dir).map_err(|e| Error::Write { path: dir.clone(), msg: e.to_string() })?;
            let sig = toolchain::IoSig::of(&c.graph);
            harnesses.push(toolchain::build_c_timing(&dir, &c.name, &c.files, &sig, &cfg.target, cfg.opt)?);
        }
        let ms = best_medians(&harnesses, &sample)?;
        log(&format!("whole model: {:.2} µs with the rules' tiles, {:.2} µs tuned", ms[0] * 1e3, ms[1] * 1e3));
        if ms[1] >= ms[0] {
            tuning.nodes.iter_mut().for_each(|n| n.pick = 0);
        }
        tuning.model_ms = Some((ms[0], ms[1]));
    }
    Ok(tuning)
}

/// Each harness's median over two rounds (the faster of its two), so that a burst of noise
/// on the machine does not decide.
fn best_medians(harnesses: &[toolchain::TimingHarness], sample: &[Vec<u8>]) -> Result<Vec<f64>> {
    let mut ms = vec![f64::INFINITY; harnesses.len()];
    for _ in 0..2 {
        for (t, h) in harnesses.iter().enumerate() {
            if let Some(st) = crate::bench::Stats::from_ms(&h.time(sample, ITERS, ITERS)?) {
                ms[t] = ms[t].min(st.median_ms);
            }
        }
    }
    Ok(ms)
}

/// Node `n` of `g` as a graph of its own: constant inputs keep their data, the others become
/// graph inputs, filled with random values (seed `seed`) in the returned sample.
fn node_alone(g: &Graph, n: &Node, seed: u64) -> Result<(Graph, Vec<Vec<u8>>)> {
    let mut alone = Graph::default();
    let mut sample = vec![];
    let mut inputs = vec![];
    for &v in &n.inputs {
        let val = g.value(v);
        let id = match &val.data {
            Some(d) => alone.add_const(val.name.clone(), val.ty.clone(), d.clone()),
            None => {
                let id = alone.add_value(val.name.clone(), val.ty.clone());
                alone.inputs.push(id);
                let len = val.ty.shape.iter().product();
                sample.push(crate::bench::random_data(val.ty.dtype, len, seed + 1)?.to_le_bytes());
                id
            }
        };
        inputs.push(id);
    }
    let outputs: Vec<_> =
        n.outputs.iter().map(|&v| alone.add_value(g.value(v).name.clone(), g.ty(v).clone())).collect();
    alone.outputs = outputs.clone();
    alone.nodes.push(Node { inputs, outputs, ..n.clone() });
    Ok((alone, sample))
}
