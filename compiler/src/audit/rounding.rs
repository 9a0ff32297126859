//! Rounding audit: how each weight's int8 rounding residual is distributed.
//!
//! For honest weights the residual `r = w/s − round(w/s)` is close to uniform on
//! [−0.5, 0.5] LSB: 20% of weights have |r| > 0.4 and the RMS residual is √(1/12) ≈ 0.29
//! LSB. A model trained to misbehave only after rounding has to place its float weights
//! at chosen points inside their rounding bins, which piles residual mass near ±0.5 LSB
//! (EFRAP, CVPR 2024). The audit flags layers and channels where that happens, and
//! channels whose truncation-error norm is an outlier within their layer.

use crate::int8::insert::{quantize_weights, weight_axis};
use crate::ir::Graph;
use serde::Serialize;

/// Residual histogram bins over |r| in [0, 0.5] LSB.
pub const BINS: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct ChannelRounding {
    pub channel: usize,
    /// RMS of the residual in LSB (≈ 0.29 for uniform residuals).
    pub rms_lsb: f64,
    /// Fraction of weights with |r| > 0.4 LSB (≈ 0.2 for uniform residuals).
    pub near_half: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerRounding {
    pub node: String,
    pub weights: usize,
    /// Counts of |r| in `[k/20, (k+1)/20)` LSB, k = 0..10.
    pub histogram: [u64; BINS],
    pub near_half: f64,
    pub rms_lsb: f64,
    pub channels: Vec<ChannelRounding>,
    /// Why this layer or some of its channels look manipulated (empty when clean).
    pub flags: Vec<String>,
}

/// Binomial excess: `frac` of `n` draws above the uniform rate 0.2 by more than 4 sigma
/// and at least 0.35 in absolute terms.
fn excess_near_half(frac: f64, n: usize) -> bool {
    let sigma = (0.2 * 0.8 / n.max(1) as f64).sqrt();
    frac > 0.35 && frac > 0.2 + 4.0 * sigma
}

/// The rounding audit of every layer with int8 weights (Conv / Gemm / MatMul with a
/// constant float weight) of the optimized float graph `g`, with the per-channel symmetric
/// scales post-training quantization uses.
pub fn audit(g: &Graph) -> Vec<LayerRounding> {
    let mut out = vec![];
    for n in &g.nodes {
        let Some(axis) = weight_axis(g, n) else { continue };
        let w = n.inputs[1];
        let shape = g.ty(w).shape.clone();
        let Some(data) = g.data(w).and_then(|d| d.as_f32()) else { continue };
        let (_, quant) = quantize_weights(data, &shape, axis, None, crate::int8::Rounding::Nearest);
        let chans = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        let mut hist = [0u64; BINS];
        let mut per = vec![(0.0f64, 0usize, 0usize); chans];
        for (i, &x) in data.iter().enumerate() {
            let c = (i / inner) % chans;
            let q = x / quant.scale[c];
            let r = (q - q.round_ties_even()).abs() as f64;
            hist[((r * 2.0 * BINS as f64) as usize).min(BINS - 1)] += 1;
            per[c].0 += r * r;
            per[c].1 += (r > 0.4) as usize;
            per[c].2 += 1;
        }
        let channels: Vec<ChannelRounding> = per
            .iter()
            .enumerate()
            .map(|(c, &(sq, near, n))| ChannelRounding {
                channel: c,
                rms_lsb: (sq / n.max(1) as f64).sqrt(),
                near_half: near as f64 / n.max(1) as f64,
            })
            .collect();
        let total = data.len();
        let near_half = per.iter().map(|p| p.1).sum::<usize>() as f64 / total.max(1) as f64;
        let rms_lsb = (per.iter().map(|p| p.0).sum::<f64>() / total.max(1) as f64).sqrt();
        let mut flags = vec![];
        if excess_near_half(near_half, total) {
            flags.push(format!(
                "{:.0}% of the weights sit within 0.1 LSB of a rounding boundary (uniform: 20%)",
                near_half * 100.0
            ));
        }
        let per_chan = inner.max(1);
        let hot: Vec<usize> =
            channels.iter().filter(|c| excess_near_half(c.near_half, per_chan)).map(|c| c.channel).collect();
        if !hot.is_empty() && hot.len() < chans {
            flags.push(format!("channels {hot:?}: rounding residuals concentrated near ±0.5 LSB"));
        }
        // Robust outliers of the truncation-error norm within the layer.
        let mut rms: Vec<f64> = channels.iter().map(|c| c.rms_lsb).collect();
        rms.sort_by(f64::total_cmp);
        let med = rms[rms.len() / 2];
        let mut dev: Vec<f64> = rms.iter().map(|r| (r - med).abs()).collect();
        dev.sort_by(f64::total_cmp);
        let mad = dev[dev.len() / 2].max(0.01);
        let outliers: Vec<usize> = channels
            .iter()
            .filter(|c| c.rms_lsb > med + 6.0 * mad && c.rms_lsb > 0.33 && per_chan >= 8)
            .map(|c| c.channel)
            .collect();
        if !outliers.is_empty() {
            flags.push(format!("channels {outliers:?}: truncation-error norm is an outlier in the layer"));
        }
        out.push(LayerRounding {
            node: n.name.clone(),
            weights: total,
            histogram: hist,
            near_half,
            rms_lsb,
            channels,
            flags,
        });
    }
    out
}

/// Text table of the audit.
pub fn to_text(layers: &[LayerRounding]) -> String {
    let mut s = String::from("rounding audit (|w/s - round(w/s)| in LSB; uniform: 20% above 0.4, RMS 0.29)\n");
    for l in layers {
        let total = l.weights.max(1) as f64;
        let bars: String = l
            .histogram
            .iter()
            .map(|&c| {
                let f = c as f64 / total * BINS as f64;
                [' ', '.', ':', '-', '=', '+', '*', '#'][((f * 3.5) as usize).min(7)]
            })
            .collect();
        s += &format!("  [{bars}] >0.4: {:>5.1}%  RMS {:.3}  {}\n", l.near_half * 100.0, l.rms_lsb, l.node);
        for f in &l.flags {
            s += &format!("      FLAG: {f}\n");
        }
    }
    s
}
