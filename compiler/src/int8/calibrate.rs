//! Activation range calibration: run the float graph on calibration samples (with the IR
//! simulator) and choose, per quantization point, the real range `[lo, hi]` to map onto
//! int8.

use crate::interp;
use crate::ir::{Graph, TensorData, ValueId};

/// How activation ranges are chosen from the calibration data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CalibMethod {
    /// The observed minimum and maximum (TFLite's choice).
    Minmax,
    /// Clip to the given percentile of the observed values at both ends.
    Percentile,
    /// The clipping range minimizing the expected squared quantization error.
    Mse,
}

/// A real interval to represent with int8.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub lo: f32,
    pub hi: f32,
}

const BINS: usize = 2048;

/// Ranges of `points` (values of `g`) over `samples` (one tensor per graph input each).
/// `percentile` is used by [`CalibMethod::Percentile`] (e.g. 99.99). `progress(done, total)`
/// is called after each sample of each pass.
pub fn ranges(
    g: &Graph,
    points: &[ValueId],
    samples: &[Vec<TensorData>],
    method: CalibMethod,
    percentile: f64,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Range>, String> {
    if samples.is_empty() {
        return Err("calibration needs at least one sample".into());
    }
    let passes = if method == CalibMethod::Minmax { 1 } else { 2 };
    let total = samples.len() * passes;
    let mut minmax = vec![(f32::INFINITY, f32::NEG_INFINITY); points.len()];
    for (k, s) in samples.iter().enumerate() {
        let vals = interp::run_all(g, s)?;
        for (p, &v) in points.iter().enumerate() {
            for &x in floats(&vals, v)? {
                if x.is_finite() {
                    minmax[p].0 = minmax[p].0.min(x);
                    minmax[p].1 = minmax[p].1.max(x);
                }
            }
        }
        progress(k + 1, total);
    }
    let minmax: Vec<Range> = minmax
        .iter()
        .map(|&(lo, hi)| if lo > hi { Range { lo: 0.0, hi: 0.0 } } else { Range { lo: lo.min(0.0), hi: hi.max(0.0) } })
        .collect();
    if method == CalibMethod::Minmax {
        return Ok(minmax);
    }
    let mut hists = vec![vec![0u64; BINS]; points.len()];
    for (k, s) in samples.iter().enumerate() {
        let vals = interp::run_all(g, s)?;
        for (p, &v) in points.iter().enumerate() {
            let r = minmax[p];
            let width = (r.hi - r.lo).max(f32::MIN_POSITIVE);
            for &x in floats(&vals, v)? {
                if x.is_finite() {
                    let b = (((x - r.lo) / width) * BINS as f32) as usize;
                    hists[p][b.min(BINS - 1)] += 1;
                }
            }
        }
        progress(samples.len() + k + 1, total);
    }
    Ok(minmax
        .iter()
        .zip(&hists)
        .map(|(&r, h)| match method {
            CalibMethod::Percentile => percentile_range(r, h, percentile),
            _ => mse_range(r, h),
        })
        .collect())
}

fn floats(vals: &[Option<TensorData>], v: ValueId) -> Result<&[f32], String> {
    match vals.get(v.0) {
        Some(Some(TensorData::F32(d))) => Ok(d),
        _ => Err(format!("calibration point {} was not computed as float", v.0)),
    }
}

fn bin_value(r: Range, b: usize) -> f32 {
    r.lo + (b as f32 + 0.5) * (r.hi - r.lo) / BINS as f32
}

/// Clips both tails holding `(100 − pct)%` of the values each (never past zero).
fn percentile_range(r: Range, h: &[u64], pct: f64) -> Range {
    let total: u64 = h.iter().sum();
    let tail = ((1.0 - pct / 100.0) * total as f64) as u64;
    let (mut acc, mut lo_bin) = (0u64, 0usize);
    while lo_bin < BINS && acc + h[lo_bin] <= tail {
        acc += h[lo_bin];
        lo_bin += 1;
    }
    let (mut acc, mut hi_bin) = (0u64, BINS);
    while hi_bin > 0 && acc + h[hi_bin - 1] <= tail {
        acc += h[hi_bin - 1];
        hi_bin -= 1;
    }
    let step = (r.hi - r.lo) / BINS as f32;
    Range { lo: (r.lo + lo_bin as f32 * step).min(0.0), hi: (r.lo + hi_bin as f32 * step).max(0.0) }
}

/// Among ranges shrunk toward zero from the observed one, the one with the least expected
/// squared error of quantize-then-dequantize over the histogram.
fn mse_range(r: Range, h: &[u64]) -> Range {
    let error = |c: Range| {
        let scale = ((c.hi - c.lo) / 255.0).max(f32::MIN_POSITIVE);
        h.iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, &n)| {
                let v = bin_value(r, b);
                let q = ((v.clamp(c.lo, c.hi) - c.lo) / scale).round() * scale + c.lo;
                n as f64 * ((v - q) as f64).powi(2)
            })
            .sum::<f64>()
    };
    let mut best = (error(r), r);
    for step in 1..80 {
        let t = 1.0 - step as f32 * 0.01;
        let c = Range { lo: r.lo * t, hi: r.hi * t };
        let e = error(c);
        if e < best.0 {
            best = (e, c);
        }
    }
    best.1
}

/// Asymmetric int8 parameters `(scale, zero_point)` representing `r` (which contains 0).
pub fn int8_params(r: Range) -> (f32, i32) {
    let (lo, hi) = (r.lo.min(0.0), r.hi.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    (scale, zp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_cover_the_range_and_zero_exactly() {
        let (s, z) = int8_params(Range { lo: -1.0, hi: 3.0 });
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(z, (-128.0f32 + 1.0 / s).round() as i32);
        let (_, z) = int8_params(Range { lo: 0.0, hi: 6.0 });
        assert_eq!(z, -128);
    }

    #[test]
    fn percentile_clips_a_lone_outlier() {
        let r = Range { lo: 0.0, hi: 100.0 };
        let mut h = vec![0u64; BINS];
        h[10] = 100_000;
        h[BINS - 1] = 1;
        let p = percentile_range(r, &h, 99.99);
        assert!(p.hi < 5.0, "{p:?}");
        let m = mse_range(r, &h);
        assert!(m.hi < 100.0, "{m:?}");
    }
}
