//! Post-training magnitude pruning of float Conv / Gemm / MatMul weights (`--sparsity`),
//! optionally under an accuracy guard measured with the IR simulator (`crate::interp`).
//!
//! Modes (per layer unless global; layers in `keep_dense` are untouched):
//! - `0.8` — unstructured: in each layer, the 80% of weights with the smallest |w| become 0.
//! - `global:0.8` — one |w| threshold over all layers, so that 80% of all weights are 0.
//! - `structured:N:M` — N of every M consecutive weights along the input dimension are kept
//!   (the largest |w|), the rest are 0 (`2:4`: exactly 2 zeros in every 4). The groups run
//!   along the input channels of a convolution (at each kernel position) and along `k` of a
//!   Gemm/MatMul; a layer whose input dimension is not a multiple of M is left dense.
//! - `channel:0.5` — the 50% of output channels (rows) with the smallest L2 norm become all
//!   zeros; shapes stay (the channel then outputs its bias).
//!
//! Accuracy guard (with samples): per layer and per level of a ladder up to the requested
//! sparsity, the metric is measured with only that layer pruned (its sensitivity); then,
//! greedily, the layer whose next level costs the least metric per pruned weight advances,
//! the whole pruned model is measured, and a step that would exceed `max_drop` is undone and
//! freezes that layer. The metric is top-1 accuracy in percent with labels, else top-1
//! agreement with the unpruned model in percent. `global` searches its single threshold
//! the same way. Pruning changes only weight values (zeros), never shapes, so the result
//! feeds `--int8` (symmetric int8 keeps zeros zero) and `sparsify`.

use crate::error::{Error, Result};
use crate::interp;
use crate::ir::{Graph, TensorData, ValueId};
use crate::ops::Op;

/// How weights are chosen for removal.
#[derive(Debug, Clone, PartialEq)]
pub enum PruneMode {
    /// Fraction of each layer's weights zeroed.
    Unstructured(f64),
    /// Fraction of all weights zeroed with one threshold.
    Global(f64),
    /// Keep `n` of every `m` along the input dimension.
    NofM { n: usize, m: usize },
    /// Fraction of each layer's output channels zeroed.
    Channel(f64),
}

impl PruneMode {
    /// Parses a `--sparsity` value: `0.8`, `global:0.8`, `structured:2:4`, `channel:0.5`.
    pub fn parse(s: &str) -> std::result::Result<PruneMode, String> {
        let bad = || {
            format!(
                "--sparsity \"{s}\" is not one of FRACTION, global:FRACTION, structured:N:M or channel:FRACTION \
                 (e.g. 0.8, global:0.8, structured:2:4, channel:0.5; fractions in [0, 1))"
            )
        };
        let frac = |t: &str| match t.trim().parse::<f64>() {
            Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
            _ => Err(bad()),
        };
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            [f] => Ok(PruneMode::Unstructured(frac(f)?)),
            ["global", f] => Ok(PruneMode::Global(frac(f)?)),
            ["channel", f] => Ok(PruneMode::Channel(frac(f)?)),
            ["structured", n, m] => match (n.parse::<usize>(), m.parse::<usize>()) {
                (Ok(n), Ok(m)) if n >= 1 && n < m => Ok(PruneMode::NofM { n, m }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// The levels the guard tries, ascending; the last is the requested one.
    fn ladder(&self) -> Vec<f64> {
        let target = match self {
            PruneMode::Unstructured(t) | PruneMode::Global(t) | PruneMode::Channel(t) => *t,
            PruneMode::NofM { .. } => return vec![1.0],
        };
        let mut v: Vec<f64> =
            [0.25, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95].into_iter().filter(|&l| l < target - 1e-9).collect();
        v.push(target);
        v
    }
}

/// The accuracy guard's data.
#[derive(Debug, Clone)]
pub struct Guard {
    /// One tensor per graph input per sample.
    pub samples: Vec<Vec<TensorData>>,
    /// Class labels (top-1 accuracy); `None`: top-1 agreement with the unpruned model.
    pub labels: Option<Vec<i64>>,
    /// Largest allowed drop of the metric, in percentage points.
    pub max_drop: f64,
}

/// `--sparsity` settings.
#[derive(Debug, Clone)]
pub struct PruneConfig {
    pub mode: PruneMode,
    /// Node names never pruned.
    pub keep_dense: Vec<String>,
    pub guard: Option<Guard>,
}

/// What pruning did to one layer.
#[derive(Debug, Clone)]
pub struct LayerPrune {
    pub node: String,
    pub weights: usize,
    /// Zero weights before and after.
    pub zeros_before: usize,
    pub zeros: usize,
    /// The level applied (0 when untouched), or why the layer was skipped.
    pub level: f64,
    pub note: Option<String>,
}

/// What [`prune`] did.
#[derive(Debug, Clone)]
pub struct PruneReport {
    pub layers: Vec<LayerPrune>,
    /// `accuracy` or `agreement` (percent), when guarded.
    pub metric: Option<&'static str>,
    pub before: Option<f64>,
    pub after: Option<f64>,
}

impl PruneReport {
    /// Zero weights / all weights over the pruned layers' weights.
    pub fn sparsity(&self) -> f64 {
        let (z, n) = self.layers.iter().fold((0, 0), |(z, n), l| (z + l.zeros, n + l.weights));
        z as f64 / n.max(1) as f64
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("{:<28} {:>8} {:>9} {:>9}\n", "layer", "weights", "level", "sparsity");
        for l in &self.layers {
            let level = match &l.note {
                Some(n) => n.clone(),
                None => format!("{:.2}", l.level),
            };
            s.push_str(&format!(
                "{:<28} {:>8} {:>9} {:>8.1}%\n",
                l.node,
                l.weights,
                level,
                100.0 * l.zeros as f64 / l.weights.max(1) as f64
            ));
        }
        s.push_str(&format!("sparsity reached: {:.1}% of the weights are zero\n", 100.0 * self.sparsity()));
        if let (Some(m), Some(b), Some(a)) = (self.metric, self.before, self.after) {
            s.push_str(&format!("{m}: {b:.2}% before, {a:.2}% after pruning (drop {:.2} points)\n", b - a));
        }
        s
    }
}

/// A prunable layer: node index, weight value and row layout.
struct Layer {
    node: usize,
    w: ValueId,
    rows: usize,
    row_len: usize,
    transposed: bool,
    /// Input channels per group and kernel positions, for the N:M groups of a convolution.
    conv: Option<(usize, usize)>,
    dense: Vec<f32>,
}

impl Layer {
    fn at(&self, r: usize, k: usize) -> usize {
        if self.transposed { k * self.rows + r } else { r * self.row_len + k }
    }

    /// The weights pruned at `level` (fraction, or 1.0 = "apply" for N:M).
    fn pruned(&self, mode: &PruneMode, level: f64) -> std::result::Result<Vec<f32>, String> {
        let mut w = self.dense.clone();
        match mode {
            PruneMode::Unstructured(_) | PruneMode::Global(_) => {
                let k = (level * w.len() as f64).floor() as usize;
                let mut idx: Vec<usize> = (0..w.len()).collect();
                idx.sort_by(|&a, &b| w[a].abs().total_cmp(&w[b].abs()).then(a.cmp(&b)));
                for &i in idx.iter().take(k) {
                    w[i] = 0.0;
                }
            }
            PruneMode::Channel(_) => {
                let k = (level * self.rows as f64).floor() as usize;
                let norm =
                    |r: usize| (0..self.row_len).map(|c| (self.dense[self.at(r, c)] as f64).powi(2)).sum::<f64>();
                let mut rows: Vec<usize> = (0..self.rows).collect();
                rows.sort_by(|&a, &b| norm(a).total_cmp(&norm(b)).then(a.cmp(&b)));
                for &r in rows.iter().take(k) {
                    for c in 0..self.row_len {
                        let i = self.at(r, c);
                        w[i] = 0.0;
                    }
                }
            }
            PruneMode::NofM { n, m } => {
                // Groups of m along the input dimension: input channels (stride kH·kW inside a
                // conv row) or k.
                let (len, stride, inner) = match self.conv {
                    Some((cg, khw)) => (cg, khw, khw),
                    None => (self.row_len, 1, 1),
                };
                if len % m != 0 {
                    return Err(format!("input dimension {len} is not a multiple of {m}"));
                }
                for r in 0..self.rows {
                    for pos in 0..inner {
                        for g0 in (0..len).step_by(*m) {
                            let mut grp: Vec<usize> = (g0..g0 + m).map(|c| self.at(r, c * stride + pos)).collect();
                            grp.sort_by(|&a, &b| w[b].abs().total_cmp(&w[a].abs()).then(a.cmp(&b)));
                            for &i in grp.iter().skip(*n) {
                                w[i] = 0.0;
                            }
                        }
                    }
                }
            }
        }
        Ok(w)
    }
}

fn layers(g: &Graph, keep: &[String]) -> Vec<Layer> {
    let mut out = vec![];
    for (i, n) in g.nodes.iter().enumerate() {
        if keep.contains(&n.name) {
            continue;
        }
        let Some(&w) = n.inputs.get(1) else { continue };
        let Some(TensorData::F32(data)) = g.data(w) else { continue };
        let shape = &g.ty(w).shape;
        let (rows, row_len, transposed, conv) = match &n.op {
            Op::Conv(_) if shape.len() == 4 => {
                (shape[0], shape[1] * shape[2] * shape[3], false, Some((shape[1], shape[2] * shape[3])))
            }
            Op::Gemm(gm) if shape.len() == 2 => {
                if gm.trans_b {
                    (shape[0], shape[1], false, None)
                } else {
                    (shape[1], shape[0], true, None)
                }
            }
            Op::MatMul(_) if shape.len() == 2 => (shape[1], shape[0], true, None),
            _ => continue,
        };
        if rows * row_len != data.len() || data.is_empty() {
            continue;
        }
        out.push(Layer { node: i, w, rows, row_len, transposed, conv, dense: data.clone() });
    }
    out
}

/// Sets the weight of layer `l` in `g` (a fresh constant, so a weight shared with a layer
/// that is not pruned keeps its values there).
fn set_weight(g: &mut Graph, l: &Layer, w: Vec<f32>) {
    let ty = g.ty(l.w).clone();
    let name = format!("{}_pruned", g.value(l.w).name);
    let v = g.add_const(name, ty, TensorData::F32(w));
    if let Some(slot) = g.nodes[l.node].inputs.get_mut(1) {
        *slot = v;
    }
}

/// Overwrites the weight of layer `l` in a scratch copy of the graph.
fn overwrite(g: &mut Graph, l: &Layer, w: Vec<f32>) {
    if let Some(v) = g.values.get_mut(l.w.0) {
        v.data = Some(TensorData::F32(w));
    }
}

fn zeros(w: &[f32]) -> usize {
    w.iter().filter(|&&x| x == 0.0).count()
}

/// Top-1 class of every sample's first output.
fn top1(g: &Graph, samples: &[Vec<TensorData>]) -> Result<Vec<usize>> {
    let run = |s: &Vec<TensorData>| -> Result<usize> {
        let outs = interp::run(g, s).map_err(|e| Error::Model(format!("pruning: simulating the model failed: {e}")))?;
        let y = outs.first().map(|t| t.to_f32()).unwrap_or_default();
        Ok(y.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let chunk = samples.len().div_ceil(threads).max(1);
    std::thread::scope(|sc| {
        let handles: Vec<_> =
            samples.chunks(chunk).map(|c| sc.spawn(move || c.iter().map(run).collect::<Result<Vec<_>>>())).collect();
        let mut out = vec![];
        for h in handles {
            match h.join() {
                Ok(r) => out.extend(r?),
                Err(_) => return Err(Error::Model("pruning: a simulation thread failed".into())),
            }
        }
        Ok(out)
    })
}

/// The guard's metric in percent: accuracy vs labels, or agreement with `reference`.
fn metric(g: &Graph, guard: &Guard, reference: &[usize]) -> Result<f64> {
    let pred = top1(g, &guard.samples)?;
    let hits = match &guard.labels {
        Some(l) => pred.iter().zip(l).filter(|(p, l)| **p as i64 == **l).count(),
        None => pred.iter().zip(reference).filter(|(p, r)| p == r).count(),
    };
    Ok(100.0 * hits as f64 / pred.len().max(1) as f64)
}

/// Prunes the float graph `g` in place (see the module docs) and reports per layer.
pub fn prune(g: &mut Graph, cfg: &PruneConfig) -> Result<PruneReport> {
    for name in &cfg.keep_dense {
        if !g.nodes.iter().any(|n| &n.name == name) {
            return Err(Error::Usage(format!(
                "--keep-dense \"{name}\": no such node (see `modelless inspect` for node names)"
            )));
        }
    }
    let ls = layers(g, &cfg.keep_dense);
    let mut report = PruneReport { layers: vec![], metric: None, before: None, after: None };
    let mut levels = vec![0.0f64; ls.len()];
    let mut notes: Vec<Option<String>> = vec![None; ls.len()];
    // Candidate weights per (layer, ladder level).
    let ladder = cfg.mode.ladder();
    let mut cands: Vec<Vec<Option<Vec<f32>>>> = vec![];
    for (li, l) in ls.iter().enumerate() {
        let mut row = vec![];
        for &lv in &ladder {
            match l.pruned(&cfg.mode, lv) {
                Ok(w) => row.push(Some(w)),
                Err(e) => {
                    notes[li] = Some(format!("skipped ({e})"));
                    row.push(None);
                }
            }
        }
        cands.push(row);
    }
    // Global: one threshold over all layers, as a per-layer weight list.
    let global = |lv: f64| -> Vec<Vec<f32>> {
        let mut all: Vec<(f32, usize, usize)> = vec![];
        for (li, l) in ls.iter().enumerate() {
            all.extend(l.dense.iter().enumerate().map(|(i, &v)| (v.abs(), li, i)));
        }
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let k = (lv * all.len() as f64).floor() as usize;
        let mut out: Vec<Vec<f32>> = ls.iter().map(|l| l.dense.clone()).collect();
        for &(_, li, i) in all.iter().take(k) {
            out[li][i] = 0.0;
        }
        out
    };
    let is_global = matches!(cfg.mode, PruneMode::Global(_));
    // The weights applied, per layer.
    let mut applied: Vec<Vec<f32>> = ls.iter().map(|l| l.dense.clone()).collect();
    match &cfg.guard {
        None => {
            let top = ladder.len() - 1;
            if is_global {
                applied = global(ladder[top]);
                levels.iter_mut().for_each(|l| *l = ladder[top]);
            } else {
                for (li, c) in cands.iter().enumerate() {
                    if let Some(Some(w)) = c.get(top) {
                        applied[li] = w.clone();
                        levels[li] = ladder[top];
                    }
                }
            }
        }
        Some(guard) => {
            if guard.samples.is_empty() {
                return Err(Error::Usage("--data: no samples for the pruning accuracy guard".into()));
            }
            if let Some(l) = &guard.labels
                && l.len() != guard.samples.len()
            {
                return Err(Error::Usage(format!(
                    "--labels: {} labels for {} data samples",
                    l.len(),
                    guard.samples.len()
                )));
            }
            let reference = top1(g, &guard.samples)?;
            let base = metric(g, guard, &reference)?;
            let budget = guard.max_drop;
            let mut trial = g.clone();
            let eval = |trial: &mut Graph, ws: &[Vec<f32>]| -> Result<f64> {
                for (l, w) in ls.iter().zip(ws) {
                    overwrite(trial, l, w.clone());
                }
                metric(trial, guard, &reference)
            };
            if is_global {
                for &lv in &ladder {
                    let ws = global(lv);
                    let m = eval(&mut trial, &ws)?;
                    if base - m > budget {
                        break;
                    }
                    applied = ws;
                    levels.iter_mut().for_each(|l| *l = lv);
                }
            } else {
                // Sensitivity: each layer alone at each level (stop at the first over budget).
                let mut sens: Vec<Vec<f64>> = vec![vec![]; ls.len()];
                for (li, c) in cands.iter().enumerate() {
                    for w in c.iter() {
                        let Some(w) = w else { break };
                        let mut ws: Vec<Vec<f32>> = ls.iter().map(|l| l.dense.clone()).collect();
                        ws[li] = w.clone();
                        let drop = base - eval(&mut trial, &ws)?;
                        sens[li].push(drop);
                        if drop > budget {
                            break;
                        }
                    }
                }
                // Greedy: cheapest next step per pruned weight first.
                let mut cur: Vec<Option<usize>> = vec![None; ls.len()];
                let mut frozen = vec![false; ls.len()];
                loop {
                    let mut best: Option<(f64, usize)> = None;
                    for li in 0..ls.len() {
                        let next = cur[li].map_or(0, |c| c + 1);
                        if frozen[li] || next >= sens[li].len() || sens[li][next] > budget {
                            continue;
                        }
                        let prev = cur[li].map_or(0.0, |c| sens[li][c]);
                        let prev_lv = cur[li].map_or(0.0, |c| ladder[c]);
                        let gained = ((ladder[next] - prev_lv) * ls[li].dense.len() as f64).max(1.0);
                        let cost = (sens[li][next] - prev).max(0.0) / gained;
                        if best.is_none_or(|(c, b)| cost < c || (cost == c && ls[li].dense.len() > ls[b].dense.len())) {
                            best = Some((cost, li));
                        }
                    }
                    let Some((_, li)) = best else { break };
                    let next = cur[li].map_or(0, |c| c + 1);
                    let mut ws = applied.clone();
                    if let Some(Some(w)) = cands[li].get(next) {
                        ws[li] = w.clone();
                    }
                    let m = eval(&mut trial, &ws)?;
                    if base - m > budget {
                        frozen[li] = true;
                    } else {
                        applied = ws;
                        cur[li] = Some(next);
                        levels[li] = ladder[next];
                    }
                }
            }
            let after = eval(&mut trial, &applied)?;
            report.metric = Some(if guard.labels.is_some() { "accuracy" } else { "agreement" });
            report.before = Some(base);
            report.after = Some(after);
        }
    }
    for (li, l) in ls.iter().enumerate() {
        let changed = applied[li] != l.dense;
        report.layers.push(LayerPrune {
            node: g.nodes[l.node].name.clone(),
            weights: l.dense.len(),
            zeros_before: zeros(&l.dense),
            zeros: zeros(&applied[li]),
            level: levels[li],
            note: match (&cfg.mode, &notes[li]) {
                (_, Some(n)) => Some(n.clone()),
                (PruneMode::NofM { n, m }, None) if levels[li] > 0.0 => Some(format!("{n}:{m}")),
                (PruneMode::NofM { .. }, None) => Some("dense".into()),
                _ => None,
            },
        });
        if changed {
            set_weight(g, l, applied[li].clone());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(PruneMode::parse("0.8"), Ok(PruneMode::Unstructured(0.8)));
        assert_eq!(PruneMode::parse("global:0.5"), Ok(PruneMode::Global(0.5)));
        assert_eq!(PruneMode::parse("structured:2:4"), Ok(PruneMode::NofM { n: 2, m: 4 }));
        assert_eq!(PruneMode::parse("channel:0.25"), Ok(PruneMode::Channel(0.25)));
        assert!(PruneMode::parse("1.5").is_err());
        assert!(PruneMode::parse("structured:4:2").is_err());
    }
}
