//! The float ↔ int8 drift report: what rounding did to the model's behaviour.
//!
//! Float and int8 graphs are both run by the IR simulator (the int8 simulation is
//! bit-exact with the generated C and Rust, so the report describes the shipped code) on
//! the data samples and on probes derived from them: Gaussian noise, patches stamped at
//! random positions, brightness/contrast shifts, and a random search that maximizes the
//! float/int8 output gap. Per probe family it reports the top-1 disagreement rate and
//! flags a class that int8 predicts far more often than float does.

use super::{QuantPoint, dequantize, layer_sqnr, quantize_inputs, sqnr_db};
use crate::error::{Error, Result};
use crate::interp;
use crate::ir::{Graph, TensorData};
use serde::Serialize;
use std::collections::BTreeMap;

/// Report settings.
#[derive(Debug, Clone)]
pub struct DriftOptions {
    /// Probes per family (0 disables probing).
    pub probes: usize,
    /// Steps of the gap-maximizing search per probe.
    pub search_steps: usize,
    pub seed: u64,
    /// Fail when any disagreement rate exceeds this, or a family flips systematically.
    pub max_drift: Option<f64>,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions { probes: 32, search_steps: 16, seed: 1, max_drift: None }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerDrift {
    pub node: String,
    /// Mean over the data samples used for it.
    pub sqnr_db: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeFamily {
    pub family: String,
    pub probes: usize,
    pub disagreements: usize,
    pub rate: f64,
    /// A class int8 predicts far more often than float on this family: (class, float count,
    /// int8 count).
    pub systematic_toward: Option<(usize, usize, usize)>,
    /// Patch family: the stamp position with the most disagreements (position index in
    /// row-major order of the top-left corner, disagreements, probes at that position),
    /// flagged when most probes there disagree (a trigger).
    pub hot_position: Option<(usize, usize, usize)>,
    /// (float class, int8 class) per probe, in probe order.
    #[serde(skip)]
    pub predictions: Vec<(usize, usize)>,
    /// Inputs where float and int8 disagree.
    #[serde(skip)]
    pub witnesses: Vec<Vec<f32>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub samples: usize,
    pub agreement: f64,
    pub float_accuracy: Option<f64>,
    pub int8_accuracy: Option<f64>,
    /// SQNR of the whole output over all samples (dB).
    pub output_sqnr_db: f64,
    pub max_abs_error: f32,
    pub layers: Vec<LayerDrift>,
    /// (float class, int8 class, count) for samples where they differ.
    pub confusion: Vec<(usize, usize, usize)>,
    pub probes: Vec<ProbeFamily>,
    /// Reasons the build fails `--max-drift` (empty when it passes or no limit is set).
    pub violations: Vec<String>,
}

/// Outputs of both graphs on one float sample: (float output 0, int8 output 0 as float).
fn run_pair(float: &Graph, int8: &Graph, sample: &[TensorData]) -> Result<(Vec<f32>, Vec<f32>)> {
    let f = interp::run(float, sample).map_err(Error::Model)?;
    let q = interp::run(int8, &quantize_inputs(int8, sample)?).map_err(Error::Model)?;
    let f0 =
        f.first().and_then(|d| d.as_f32()).ok_or_else(|| Error::Model("float model has no float output".into()))?;
    let q0 = match q.first() {
        Some(TensorData::F32(v)) => v.clone(),
        Some(d) => {
            let t = int8.ty(int8.outputs[0]);
            let qp = t.quant.as_ref().ok_or_else(|| Error::Model("int8 output without parameters".into()))?;
            dequantize(d, qp.scale[0], qp.zero_point[0])
        }
        None => return Err(Error::Model("int8 model has no output".into())),
    };
    Ok((f0.to_vec(), q0))
}

/// Index of the largest value (the first on ties).
pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0
}

/// A small deterministic generator (SplitMix64) for probes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-7), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f32::consts::PI * v).cos()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Builds the drift report. `samples` are float inputs (one tensor per graph input);
/// `labels` (optional) their classes; `points` map float activations to int8 ones.
pub fn drift(
    float: &Graph,
    int8: &Graph,
    points: &[QuantPoint],
    samples: &[Vec<TensorData>],
    labels: Option<&[i64]>,
    opts: &DriftOptions,
) -> Result<Drift> {
    if samples.is_empty() {
        return Err(Error::Usage("the drift report needs at least one data sample".into()));
    }
    let (mut agree, mut fcorrect, mut qcorrect) = (0usize, 0usize, 0usize);
    let (mut signal, mut noise, mut max_abs) = (vec![], vec![], 0f32);
    let mut confusion: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for (k, s) in samples.iter().enumerate() {
        let (f, q) = run_pair(float, int8, s)?;
        let (fc, qc) = (argmax(&f), argmax(&q));
        agree += (fc == qc) as usize;
        if fc != qc {
            *confusion.entry((fc, qc)).or_default() += 1;
        }
        if let Some(l) = labels.and_then(|l| l.get(k)) {
            fcorrect += (fc as i64 == *l) as usize;
            qcorrect += (qc as i64 == *l) as usize;
        }
        max_abs = f.iter().zip(&q).fold(max_abs, |m, (a, b)| m.max((a - b).abs()));
        signal.extend(f);
        noise.extend(q);
    }
    let n = samples.len() as f64;
    let acc = |c: usize| labels.map(|_| c as f64 / n);
    // Per-layer SQNR on up to 8 samples.
    let mut sums = vec![0.0f64; points.len()];
    let used = samples.len().min(8);
    for s in &samples[..used] {
        for (acc, v) in sums.iter_mut().zip(layer_sqnr(float, int8, points, s)?) {
            *acc += v.min(200.0);
        }
    }
    let layers = points
        .iter()
        .zip(&sums)
        .filter(|(_, s)| s.is_finite())
        .map(|(p, s)| LayerDrift { node: p.node.clone(), sqnr_db: s / used as f64 })
        .collect();
    let probes = if opts.probes > 0 { probe_families(float, int8, samples, opts)? } else { vec![] };
    let mut d = Drift {
        samples: samples.len(),
        agreement: agree as f64 / n,
        float_accuracy: acc(fcorrect),
        int8_accuracy: acc(qcorrect),
        output_sqnr_db: sqnr_db(&signal, &noise),
        max_abs_error: max_abs,
        layers,
        confusion: confusion.into_iter().map(|((a, b), c)| (a, b, c)).collect(),
        probes,
        violations: vec![],
    };
    if let Some(limit) = opts.max_drift {
        let data_rate = 1.0 - d.agreement;
        if data_rate > limit {
            d.violations.push(format!("float/int8 disagreement on the data is {data_rate:.4} > {limit}"));
        }
        for p in &d.probes {
            if let Some((pos, n, of)) = p.hot_position {
                d.violations.push(format!(
                    "probe family {}: {n} of {of} probes stamped at position {pos} change class under int8 (a trigger?)",
                    p.family
                ));
            }
            if p.rate > limit {
                d.violations.push(format!("disagreement on probe family {} is {:.4} > {limit}", p.family, p.rate));
            }
            if let Some((c, f, q)) = p.systematic_toward {
                d.violations.push(format!(
                    "probe family {}: int8 predicts class {c} {q} times where float does {f} times (systematic flips)",
                    p.family
                ));
            }
        }
    }
    Ok(d)
}

const FAMILIES: [&str; 5] = ["data", "noise", "patch", "brightness_contrast", "gap_search"];

fn probe_families(
    float: &Graph,
    int8: &Graph,
    samples: &[Vec<TensorData>],
    opts: &DriftOptions,
) -> Result<Vec<ProbeFamily>> {
    let mut rng = Rng(opts.seed);
    let base: Vec<&[f32]> = samples.iter().filter_map(|s| s.first().and_then(|d| d.as_f32())).collect();
    let (lo, hi) =
        base.iter().flat_map(|b| b.iter()).fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
    let span = (hi - lo).max(1e-6);
    let shape = float.ty(float.inputs[0]).shape.clone();
    let mut out = vec![];
    for family in FAMILIES {
        let (mut dis, mut fcount, mut qcount) =
            (0usize, BTreeMap::<usize, usize>::new(), BTreeMap::<usize, usize>::new());
        let (mut predictions, mut witnesses) = (vec![], vec![]);
        let mut at_pos: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
        let count = if family == "data" { base.len().min(opts.probes) } else { opts.probes };
        for k in 0..count {
            let src = base[if family == "data" { k } else { rng.below(base.len()) }];
            let mut pos = None;
            let x: Vec<f32> = match family {
                "data" => src.to_vec(),
                "noise" => src.iter().map(|&v| v + 0.05 * span * rng.normal()).collect(),
                "patch" => {
                    let (x, p) = stamp_patch(src, &shape, hi, k);
                    pos = Some(p);
                    x
                }
                "brightness_contrast" => {
                    let (a, b) = (0.7 + 0.6 * rng.unit(), (rng.unit() - 0.5) * 0.2 * span);
                    src.iter().map(|&v| v * a + b).collect()
                }
                _ => gap_search(float, int8, src, span, opts.search_steps, &mut rng)?,
            };
            let (f, q) = run_pair(float, int8, &[TensorData::F32(x.clone())])?;
            let (fc, qc) = (argmax(&f), argmax(&q));
            *fcount.entry(fc).or_default() += 1;
            *qcount.entry(qc).or_default() += 1;
            dis += (fc != qc) as usize;
            predictions.push((fc, qc));
            if let Some(p) = pos {
                let e = at_pos.entry(p).or_default();
                e.0 += (fc != qc) as usize;
                e.1 += 1;
            }
            if fc != qc {
                witnesses.push(x);
            }
        }
        let hot_position = at_pos
            .iter()
            .map(|(&p, &(d, n))| (p, d, n))
            .filter(|&(_, d, n)| n >= 2 && d * 2 > n)
            .max_by_key(|&(_, d, _)| d);
        let systematic_toward = qcount
            .iter()
            .map(|(&c, &q)| (c, fcount.get(&c).copied().unwrap_or(0), q))
            .filter(|&(_, f, q)| q >= 4 && q as f64 > 1.5 * f as f64 + 2.0)
            .max_by_key(|&(_, f, q)| q - f);
        out.push(ProbeFamily {
            family: family.into(),
            probes: count,
            disagreements: dis,
            rate: if count == 0 { 0.0 } else { dis as f64 / count as f64 },
            systematic_toward,
            hot_position,
            predictions,
            witnesses,
        });
    }
    Ok(out)
}

/// Stamps a square of value `v` (a quarter of the spatial size) on the last two axes (or a
/// run of 1/8 of the last axis for rank < 3 inputs; an 8×8 image given flat as 64 values
/// is treated as 8×8) at position `k` mod the number of positions, so every position gets
/// probed; returns the image and the position index.
fn stamp_patch(src: &[f32], shape: &[usize], v: f32, k: usize) -> (Vec<f32>, usize) {
    let mut x = src.to_vec();
    let side = (x.len() as f64).sqrt() as usize;
    let (h, w) = if shape.len() >= 3 {
        (shape[shape.len() - 2], shape[shape.len() - 1])
    } else if side * side == x.len() && side >= 4 {
        (side, side)
    } else {
        (1, x.len())
    };
    let (ph, pw) = if h == 1 { (1, (w / 8).max(1)) } else { ((h / 4).max(1), (w / 4).max(1)) };
    let (ny, nx) = (h - ph + 1, w - pw + 1);
    let pos = k % (ny * nx);
    let (y0, x0) = (pos / nx, pos % nx);
    for plane in x.chunks_mut(h * w) {
        for r in y0..y0 + ph {
            for c in x0..x0 + pw {
                plane[r * w + c] = v;
            }
        }
    }
    (x, pos)
}

/// Random-restart hill climbing on the float/int8 output gap (max abs difference) from
/// `src`, in steps of 2% of the data span.
fn gap_search(float: &Graph, int8: &Graph, src: &[f32], span: f32, steps: usize, rng: &mut Rng) -> Result<Vec<f32>> {
    let gap = |x: &[f32]| -> Result<f32> {
        let (f, q) = run_pair(float, int8, &[TensorData::F32(x.to_vec())])?;
        Ok(f.iter().zip(&q).fold(0f32, |m, (a, b)| m.max((a - b).abs())))
    };
    let mut best = (gap(src)?, src.to_vec());
    for _ in 0..steps {
        let cand: Vec<f32> = best.1.iter().map(|&v| v + 0.02 * span * rng.normal()).collect();
        let g = gap(&cand)?;
        if g > best.0 {
            best = (g, cand);
        }
    }
    Ok(best.1)
}

impl Drift {
    /// The terminal form of the report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let pct = |v: f64| format!("{:.2}%", v * 100.0);
        s += &format!("int8 drift report on {} samples\n", self.samples);
        s += &format!("  top-1 agreement float/int8: {}\n", pct(self.agreement));
        if let (Some(f), Some(q)) = (self.float_accuracy, self.int8_accuracy) {
            s += &format!("  accuracy: float {}  int8 {}  (delta {:+.2} points)\n", pct(f), pct(q), (q - f) * 100.0);
        }
        s += &format!("  output SQNR {:.1} dB, max abs error {:.5}\n", self.output_sqnr_db, self.max_abs_error);
        if !self.confusion.is_empty() {
            let c: Vec<String> = self.confusion.iter().map(|(f, q, n)| format!("{f}->{q} x{n}")).collect();
            s += &format!("  label changes (float->int8): {}\n", c.join(", "));
        }
        s += "  per-layer SQNR (dB):\n";
        for l in &self.layers {
            s += &format!("    {:>7.1}  {}\n", l.sqnr_db, l.node);
        }
        if !self.probes.is_empty() {
            s += "  probes (top-1 disagreement float vs int8):\n";
            for p in &self.probes {
                let flag = p
                    .systematic_toward
                    .map(|(c, f, q)| format!("  FLAG: int8 predicts class {c} {q}x (float {f}x)"))
                    .unwrap_or_default();
                let hot = p
                    .hot_position
                    .map(|(pos, d, n)| format!("  FLAG: {d}/{n} probes at patch position {pos} flip"))
                    .unwrap_or_default();
                s += &format!(
                    "    {:<20} {:>4}/{:<4} {}{flag}{hot}\n",
                    p.family,
                    p.disagreements,
                    p.probes,
                    pct(p.rate)
                );
            }
        }
        for v in &self.violations {
            s += &format!("  DRIFT LIMIT EXCEEDED: {v}\n");
        }
        s
    }
}
