//! `modelless audit`: what compression (int8 rounding, sparsity) did to a model's accuracy,
//! privacy (membership inference) and robustness (FGSM), and whether int8 rounding was
//! weaponized (a model that misbehaves only after rounding).
//!
//! - [`rounding`]: per-layer weight rounding residual histograms and per-channel truncation
//!   error, with outlier flags (the EFRAP signal);
//! - [`attacks`]: FGSM examples from the float model's input gradients and the Yeom
//!   loss-threshold membership inference attack;
//! - [`run`]: every compressed build (int8 with each rounding variant) against float, on the
//!   data and on probe families, with the rounding-variant differential.
//!
//! Everything runs in the IR simulator, which is bit-exact with the generated int8 code, so
//! the audit describes the code that ships.

pub mod attacks;
pub mod plot;
pub mod rounding;

use crate::error::{Error, Result};
use crate::int8::report::{Drift, DriftOptions, argmax, drift};
use crate::int8::{self, Int8Options, Rounding};
use crate::interp;
use crate::ir::{Graph, TensorData};
use serde::Serialize;
use std::path::PathBuf;

/// Labeled samples (one float tensor per sample for the model's single input).
#[derive(Debug, Clone, Default)]
pub struct Labeled {
    pub x: Vec<Vec<TensorData>>,
    pub y: Vec<i64>,
}

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub int8: Int8Options,
    /// Rounding variants to build besides `int8.rounding`.
    pub variants: Vec<Rounding>,
    pub drift: DriftOptions,
    /// FGSM budgets (in input units).
    pub fgsm_eps: Vec<f32>,
    /// At most this many data samples are attacked with FGSM.
    pub fgsm_samples: usize,
    /// Save inputs where float and a compressed build disagree here (`.npy` per build and
    /// probe family).
    pub witnesses: Option<PathBuf>,
    /// Magnitude-pruning levels to audit (each as a sparse float build and a sparse + int8
    /// build with `int8.rounding`).
    pub sparsity: Vec<f64>,
    /// Constraints for picking a build (the search): largest accuracy drop in points and
    /// largest growth of the membership-inference advantage.
    pub max_drop: Option<f64>,
    pub max_mia_delta: Option<f64>,
    /// A user-supplied adversarial set (with labels): every build's accuracy on it.
    pub adversarial: Option<Labeled>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildAudit {
    pub name: String,
    /// None for a float build (pruning only).
    pub rounding: Option<Rounding>,
    pub sparsity: Option<f64>,
    /// Weight bytes in flash with sparse code generation.
    pub weight_bytes: usize,
    /// Multiply-accumulates executed per run (the latency estimate).
    pub macs: u64,
    pub drift: Drift,
    pub mia: Option<attacks::MiaResult>,
    /// (eps, accuracy on FGSM examples crafted on the float model).
    pub fgsm_accuracy: Vec<(f32, f64)>,
    /// Accuracy on the user-supplied adversarial set.
    pub adversarial_accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantDiff {
    pub a: String,
    pub b: String,
    /// (probe family, fraction of probes where the two builds predict different classes).
    pub families: Vec<(String, f64)>,
    pub flagged: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub float_accuracy: Option<f64>,
    pub float_weight_bytes: usize,
    pub float_macs: u64,
    pub float_mia: Option<attacks::MiaResult>,
    pub float_fgsm_accuracy: Vec<(f32, f64)>,
    pub float_adversarial_accuracy: Option<f64>,
    pub builds: Vec<BuildAudit>,
    pub rounding: Vec<rounding::LayerRounding>,
    pub variant_differential: Vec<VariantDiff>,
    /// Builds on the accuracy / flash Pareto front (names).
    pub pareto: Vec<String>,
    /// The smallest build meeting `max_drop` / `max_mia_delta`, when constraints are given.
    pub pick: Option<String>,
    /// Red flags, most important first.
    pub flags: Vec<String>,
}

/// Flash bytes and MACs executed of `g` with sparse code generation.
fn size_of(g: &Graph) -> (usize, u64) {
    let mut s = g.clone();
    if crate::passes::sparsify(&mut s, Default::default()) {
        crate::passes::dce(&mut s);
    }
    (crate::passes::sparsify::flash_bytes(&s), crate::passes::sparsify::layer_stats(&s).iter().map(|l| l.macs).sum())
}

fn accuracy(g: &Graph, xs: &[Vec<TensorData>], ys: &[i64]) -> Result<f64> {
    let mut ok = 0usize;
    for (x, &y) in xs.iter().zip(ys) {
        let out = interp::run(g, &int8::quantize_inputs(g, x)?).map_err(Error::Model)?;
        let o = output_f32(g, &out)?;
        ok += (argmax(&o) as i64 == y) as usize;
    }
    Ok(ok as f64 / xs.len().max(1) as f64)
}

/// Output 0 as float (dequantized for int8 outputs).
fn output_f32(g: &Graph, out: &[TensorData]) -> Result<Vec<f32>> {
    match out.first() {
        Some(TensorData::F32(v)) => Ok(v.clone()),
        Some(d) => {
            let q = g
                .ty(g.outputs[0])
                .quant
                .clone()
                .ok_or_else(|| Error::Model("int8 output without parameters".into()))?;
            Ok(int8::dequantize(d, q.scale[0], q.zero_point[0]))
        }
        None => Err(Error::Model("model has no output".into())),
    }
}

fn mia_of(g: &Graph, members: &Labeled, nonmembers: &Labeled) -> Result<attacks::MiaResult> {
    let losses = |set: &Labeled| -> Result<Vec<f32>> {
        set.x
            .iter()
            .zip(&set.y)
            .map(|(x, &y)| {
                let x = int8::quantize_inputs(g, x)?;
                attacks::sample_loss(g, &x[0], y as usize).map_err(Error::Model)
            })
            .collect()
    };
    Ok(attacks::mia(&losses(members)?, &losses(nonmembers)?))
}

/// Runs the audit: float graph `float` (optimized), calibration samples, labeled data, and
/// optional member / non-member sets.
pub fn run(
    float: &Graph,
    calib: &[Vec<TensorData>],
    data: &Labeled,
    members: Option<(&Labeled, &Labeled)>,
    opts: &AuditOptions,
) -> Result<AuditReport> {
    let labels = (!data.y.is_empty()).then_some(data.y.as_slice());
    let float_accuracy = match labels {
        Some(y) => Some(accuracy(float, &data.x, y)?),
        None => None,
    };
    // FGSM examples are crafted once, on the float model, and replayed on every build.
    let n_adv = data.x.len().min(opts.fgsm_samples);
    let (lo, hi) = data
        .x
        .iter()
        .filter_map(|s| s.first().and_then(|d| d.as_f32()))
        .flat_map(|v| v.iter())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let mut adversarial: Vec<(f32, Vec<Vec<TensorData>>)> = vec![];
    if let Some(y) = labels {
        for &eps in &opts.fgsm_eps {
            let mut set = vec![];
            for (x, &l) in data.x[..n_adv].iter().zip(y) {
                let xf =
                    x.first().and_then(|d| d.as_f32()).ok_or_else(|| Error::Usage("FGSM needs float inputs".into()))?;
                let adv = attacks::fgsm(float, xf, l as usize, eps, lo, hi).map_err(Error::Model)?;
                set.push(vec![TensorData::F32(adv)]);
            }
            adversarial.push((eps, set));
        }
    }
    let fgsm_acc = |g: &Graph| -> Result<Vec<(f32, f64)>> {
        match labels {
            Some(y) => adversarial.iter().map(|(eps, set)| Ok((*eps, accuracy(g, set, &y[..n_adv])?))).collect(),
            None => Ok(vec![]),
        }
    };
    let float_mia = match members {
        Some((m, n)) => Some(mia_of(float, m, n)?),
        None => None,
    };
    let float_fgsm_accuracy = fgsm_acc(float)?;
    let adv_acc = |g: &Graph| -> Result<Option<f64>> {
        match &opts.adversarial {
            Some(a) if !a.y.is_empty() => Ok(Some(accuracy(g, &a.x, &a.y)?)),
            _ => Ok(None),
        }
    };
    let mut variants: Vec<(Option<f64>, Option<Rounding>)> = vec![(None, Some(opts.int8.rounding))];
    for v in &opts.variants {
        if !variants.contains(&(None, Some(*v))) {
            variants.push((None, Some(*v)));
        }
    }
    for &lvl in &opts.sparsity {
        variants.push((Some(lvl), None));
        variants.push((Some(lvl), Some(opts.int8.rounding)));
    }
    let mut builds = vec![];
    for (sparsity, r) in variants {
        let mut g = float.clone();
        if let Some(lvl) = sparsity {
            let cfg = crate::passes::PruneConfig {
                mode: crate::passes::PruneMode::Unstructured(lvl),
                keep_dense: vec![],
                guard: None,
            };
            crate::passes::prune(&mut g, &cfg)?;
        }
        let (g, points) = match r {
            Some(r) => {
                let o = Int8Options { rounding: r, ..opts.int8.clone() };
                let q = int8::quantize(&g, calib, &o)?;
                let mut g = q.graph;
                crate::passes::optimize(&mut g, |_, _| {})?;
                (g, q.points)
            }
            None => (g, vec![]),
        };
        let d = drift(float, &g, &points, &data.x, labels, &opts.drift)?;
        let mia = match members {
            Some((m, n)) => Some(mia_of(&g, m, n)?),
            None => None,
        };
        let name = match (sparsity, r) {
            (None, Some(r)) => format!("int8-{}", rounding_name(r)),
            (Some(l), None) => format!("sparse{l}"),
            (Some(l), Some(r)) => format!("sparse{l}+int8-{}", rounding_name(r)),
            (None, None) => "float".into(),
        };
        if let Some(dir) = &opts.witnesses {
            save_witnesses(dir, &name, &d, float)?;
        }
        let (weight_bytes, macs) = size_of(&g);
        builds.push(BuildAudit {
            name,
            rounding: r,
            sparsity,
            weight_bytes,
            macs,
            fgsm_accuracy: fgsm_acc(&g)?,
            adversarial_accuracy: adv_acc(&g)?,
            drift: d,
            mia,
        });
    }
    let rounding = rounding::audit(float);
    let rounding_builds: Vec<BuildAudit> = builds.iter().filter(|b| b.sparsity.is_none()).cloned().collect();
    let variant_differential = differential(&rounding_builds);
    let mut flags = vec![];
    for l in &rounding {
        for f in &l.flags {
            flags.push(format!("rounding audit, {}: {f}", l.node));
        }
    }
    for v in variant_differential.iter().filter(|v| v.flagged) {
        let worst = v.families.iter().cloned().fold((String::new(), 0.0), |a, b| if b.1 > a.1 { b } else { a });
        flags.push(format!(
            "rounding variants {} and {} disagree on {:.0}% of the {} probes: behaviour hinges on rounding",
            v.a,
            v.b,
            worst.1 * 100.0,
            worst.0
        ));
    }
    for b in &builds {
        for p in &b.drift.probes {
            if let Some((c, f, q)) = p.systematic_toward {
                flags.push(format!("{}: on {} probes it predicts class {c} {q}x (float {f}x)", b.name, p.family));
            }
            if let Some((pos, d, n)) = p.hot_position {
                flags.push(format!("{}: {d}/{n} probes with a patch at position {pos} change class", b.name));
            }
        }
    }
    if let (Some(f), Some(b)) = (&float_mia, builds.first().and_then(|b| b.mia.as_ref()))
        && b.advantage > f.advantage + 0.05
    {
        flags.push(format!(
            "membership inference advantage grows from {:.3} (float) to {:.3} ({})",
            f.advantage, b.advantage, builds[0].name
        ));
    }
    let (float_weight_bytes, float_macs) = size_of(float);
    let points: Vec<(f64, f64)> = std::iter::once((float_weight_bytes as f64, float_accuracy.unwrap_or(0.0)))
        .chain(builds.iter().map(|b| (b.weight_bytes as f64, b.drift.int8_accuracy.unwrap_or(b.drift.agreement))))
        .collect();
    let names: Vec<String> =
        std::iter::once("float".to_string()).chain(builds.iter().map(|b| b.name.clone())).collect();
    let pareto: Vec<String> = plot::pareto(&points).into_iter().map(|i| names[i].clone()).collect();
    let pick = if opts.max_drop.is_some() || opts.max_mia_delta.is_some() {
        builds
            .iter()
            .filter(|b| match (opts.max_drop, float_accuracy, b.drift.int8_accuracy) {
                (Some(d), Some(f), Some(a)) => (f - a) * 100.0 <= d,
                (Some(d), _, _) => (1.0 - b.drift.agreement) * 100.0 <= d,
                (None, _, _) => true,
            })
            .filter(|b| match (opts.max_mia_delta, &float_mia, &b.mia) {
                (Some(d), Some(f), Some(m)) => m.advantage - f.advantage <= d,
                _ => true,
            })
            .min_by_key(|b| b.weight_bytes)
            .map(|b| b.name.clone())
    } else {
        None
    };
    Ok(AuditReport {
        float_accuracy,
        float_weight_bytes,
        float_macs,
        pareto,
        pick,
        float_mia,
        float_fgsm_accuracy,
        float_adversarial_accuracy: adv_acc(float)?,
        builds,
        rounding,
        variant_differential,
        flags,
    })
}

pub fn rounding_name(r: Rounding) -> &'static str {
    match r {
        Rounding::Nearest => "nearest",
        Rounding::Preserve => "preserve",
        Rounding::Floor => "floor",
        Rounding::Ceil => "ceil",
        Rounding::PerTensor => "per-tensor",
    }
}

/// Pairwise prediction differences between builds on the shared probe families (all but
/// the model-specific gap search). Flagged when some family differs on ≥ 10% of probes and
/// at least 3× the rate on the data itself.
fn differential(builds: &[BuildAudit]) -> Vec<VariantDiff> {
    let mut out = vec![];
    for (i, a) in builds.iter().enumerate() {
        for b in &builds[i + 1..] {
            let families: Vec<(String, f64)> = a
                .drift
                .probes
                .iter()
                .zip(&b.drift.probes)
                .filter(|(p, _)| p.family != "gap_search")
                .map(|(p, q)| {
                    let n = p.predictions.len().min(q.predictions.len()).max(1);
                    let d = p.predictions.iter().zip(&q.predictions).filter(|(x, y)| x.1 != y.1).count();
                    (p.family.clone(), d as f64 / n as f64)
                })
                .collect();
            let base = families.iter().find(|f| f.0 == "data").map_or(0.0, |f| f.1);
            let flagged = families.iter().any(|f| f.1 >= 0.1 && f.1 >= 3.0 * base);
            out.push(VariantDiff { a: a.name.clone(), b: b.name.clone(), families, flagged });
        }
    }
    out
}

fn save_witnesses(dir: &std::path::Path, build: &str, d: &Drift, float: &Graph) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Write { path: dir.into(), msg: e.to_string() })?;
    let shape = float.ty(float.inputs[0]).shape.clone();
    for p in d.probes.iter().filter(|p| !p.witnesses.is_empty()) {
        let mut s = vec![p.witnesses.len()];
        s.extend(shape.iter().skip(1));
        let flat: Vec<f32> = p.witnesses.concat();
        crate::npy::write_f32(&dir.join(format!("{build}_{}.npy", p.family)), &s, &flat)?;
    }
    Ok(())
}

impl AuditReport {
    pub fn to_text(&self) -> String {
        let pct = |v: f64| format!("{:.2}%", v * 100.0);
        let mut s = String::from("modelless audit\n\n");
        s += &format!(
            "{:<24} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8}",
            "build", "accuracy", "agreement", "flash B", "MACs", "MIA AUC", "MIA adv"
        );
        for (eps, _) in &self.float_fgsm_accuracy {
            s += &format!(" {:>9}", format!("FGSM {eps}"));
        }
        s += "\n";
        let opt = |v: Option<f64>| v.map_or("-".to_string(), pct);
        s += &format!(
            "{:<24} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8}",
            "float",
            opt(self.float_accuracy),
            "-",
            self.float_weight_bytes,
            self.float_macs,
            self.float_mia.as_ref().map_or("-".into(), |m| format!("{:.3}", m.auc)),
            self.float_mia.as_ref().map_or("-".into(), |m| format!("{:.3}", m.advantage)),
        );
        for (_, a) in &self.float_fgsm_accuracy {
            s += &format!(" {:>9}", pct(*a));
        }
        s += "\n";
        for b in &self.builds {
            s += &format!(
                "{:<24} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8}",
                b.name,
                opt(b.drift.int8_accuracy),
                pct(b.drift.agreement),
                b.weight_bytes,
                b.macs,
                b.mia.as_ref().map_or("-".into(), |m| format!("{:.3}", m.auc)),
                b.mia.as_ref().map_or("-".into(), |m| format!("{:.3}", m.advantage)),
            );
            for (_, a) in &b.fgsm_accuracy {
                s += &format!(" {:>9}", pct(*a));
            }
            s += "\n";
        }
        if let Some(a) = self.float_adversarial_accuracy {
            s += &format!("\naccuracy on the supplied adversarial set: float {}", pct(a));
            for b in &self.builds {
                s += &format!(", {} {}", b.name, b.adversarial_accuracy.map_or("-".into(), pct));
            }
            s += "\n";
        }
        s += "\ndisagreement with float per probe family:\n";
        for b in &self.builds {
            let fams: Vec<String> = b.drift.probes.iter().map(|p| format!("{} {}", p.family, pct(p.rate))).collect();
            s += &format!("  {:<24} {}\n", b.name, fams.join(", "));
        }
        s += "\nrounding-variant differential (share of probes predicted differently):\n";
        for v in &self.variant_differential {
            let fams: Vec<String> = v.families.iter().map(|(f, r)| format!("{f} {}", pct(*r))).collect();
            s += &format!("  {} vs {}: {}{}\n", v.a, v.b, fams.join(", "), if v.flagged { "  FLAG" } else { "" });
        }
        s += "\n";
        s += &rounding::to_text(&self.rounding);
        s += &format!("\nPareto front (accuracy vs flash): {}\n", self.pareto.join(", "));
        if let Some(p) = &self.pick {
            s += &format!("pick under the constraints: {p}\n");
        }
        s += "\n";
        if self.flags.is_empty() {
            s += "no red flags\n";
        }
        for f in &self.flags {
            s += &format!("RED FLAG: {f}\n");
        }
        s
    }
}
