//! Resize / Upsample, resolved at build time into one table per resized axis: nearest
//! axes read one input index per output coordinate; linear and cubic axes (with or
//! without antialiasing) read a fixed number of taps `(index, weight)`. The kernel sums,
//! for each output element, over the taps of every interpolating axis (the filters are
//! separable), so no coordinate is computed at run time.

use super::expect_inputs;
use crate::ir::{DType, TensorType};

/// How the output coordinates of one resized axis read the input.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisMap {
    /// Taps per output coordinate; 1 with empty `weight` is a plain gather (nearest).
    pub taps: usize,
    /// Input index of each tap, `len_out × taps` (row-major by output coordinate).
    pub index: Vec<usize>,
    /// Weight of each tap, `len_out × taps`; empty for nearest.
    pub weight: Vec<f32>,
    /// Output coordinates whose sample point lies outside the input (tf_crop_and_resize):
    /// an output element with any such coordinate is the extrapolation value. Empty when
    /// none is outside.
    pub outside: Vec<bool>,
}

impl AxisMap {
    /// Output length of the axis.
    pub fn len(&self) -> usize {
        self.index.len() / self.taps.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Interpolates (has weights) rather than gathers.
    pub fn interpolates(&self) -> bool {
        !self.weight.is_empty()
    }

    /// Output coordinate `o` lies outside the input.
    pub fn is_outside(&self, o: usize) -> bool {
        self.outside.get(o).copied().unwrap_or(false)
    }

    /// The taps of output coordinate `o` (weight 1 for nearest).
    pub fn taps_of(&self, o: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let r = o * self.taps..(o + 1) * self.taps;
        let w = &self.weight;
        self.index[r.clone()].iter().zip(r).map(move |(&i, k)| (i, if w.is_empty() { 1.0 } else { w[k] }))
    }
}

/// Output shape, one map per axis (`None` for axes copied unchanged) and the value of
/// outputs sampled outside the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Resize {
    pub shape: Vec<usize>,
    pub maps: Vec<Option<AxisMap>>,
    pub extrapolation: f32,
}

impl Resize {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let x = inputs[0];
        if self.shape.len() != x.shape.len() || self.maps.len() != x.shape.len() {
            return Err("rank mismatch".into());
        }
        for (a, m) in self.maps.iter().enumerate() {
            match m {
                None if self.shape[a] != x.shape[a] => return Err(format!("axis {a} changes size without a map")),
                Some(m)
                    if m.taps == 0
                        || m.index.len() != self.shape[a] * m.taps
                        || (m.interpolates() && m.weight.len() != m.index.len())
                        || (!m.interpolates() && m.taps != 1)
                        || (!m.outside.is_empty() && m.outside.len() != self.shape[a])
                        || m.index.iter().any(|&i| i >= x.shape[a]) =>
                {
                    return Err(format!("axis {a}: map does not fit"));
                }
                _ => {}
            }
        }
        if x.dtype != DType::F32 && (!self.interp_axes().is_empty() || self.extrapolates()) {
            return Err("interpolation and extrapolation need float32".into());
        }
        Ok(TensorType::new(x.dtype, self.shape.clone()))
    }

    /// Axes that interpolate (sum weighted taps).
    pub fn interp_axes(&self) -> Vec<usize> {
        (0..self.maps.len()).filter(|&a| self.maps[a].as_ref().is_some_and(AxisMap::interpolates)).collect()
    }

    /// Some output element takes the extrapolation value.
    pub fn extrapolates(&self) -> bool {
        self.maps.iter().flatten().any(|m| m.outside.iter().any(|&b| b))
    }

    /// Taps summed per output element.
    pub fn taps(&self) -> usize {
        self.maps.iter().flatten().map(|m| m.taps).product()
    }
}

/// Coordinate transformation modes of ONNX Resize.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CoordMode {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    /// Region of interest `(start, end)` as fractions of the input extent.
    TfCropAndResize(f64, f64),
}

/// Nearest rounding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// The interpolation filter of an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Filter {
    Nearest(NearestMode),
    Linear,
    /// Cubic convolution with coefficient `a` (ONNX `cubic_coeff_a`).
    Cubic(f64),
}

/// Everything that decides one axis's map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisSpec {
    pub len_in: usize,
    pub len_out: usize,
    pub scale: f64,
    pub coord: CoordMode,
    pub filter: Filter,
    /// Widen linear / cubic filters by `1 / scale` when downscaling.
    pub antialias: bool,
    /// Drop taps outside the input and renormalise the rest.
    pub exclude_outside: bool,
}

impl AxisSpec {
    /// Sample point of output coordinate `o` in input coordinates. ONNX measures the
    /// resized length as `len_in · scale` (not rounded).
    pub fn source(&self, o: usize) -> f64 {
        let (x, len_in, scale) = (o as f64, self.len_in as f64, self.scale);
        let resized = len_in * scale;
        match self.coord {
            CoordMode::HalfPixel => (x + 0.5) / scale - 0.5,
            CoordMode::HalfPixelSymmetric => {
                let adjustment = self.len_out as f64 / resized;
                let offset = len_in / 2.0 * (1.0 - adjustment);
                offset + (x + 0.5) / scale - 0.5
            }
            CoordMode::PytorchHalfPixel if resized == 1.0 => -0.5,
            CoordMode::PytorchHalfPixel => (x + 0.5) / scale - 0.5,
            CoordMode::AlignCorners if resized == 1.0 => 0.0,
            CoordMode::AlignCorners => x * (len_in - 1.0) / (resized - 1.0),
            CoordMode::Asymmetric => x / scale,
            CoordMode::TfHalfPixelForNn => (x + 0.5) / scale,
            CoordMode::TfCropAndResize(start, end) => {
                let span = (end - start) * (len_in - 1.0);
                let s = if resized == 1.0 { span / 2.0 } else { x * span / (resized - 1.0) };
                s + start * (len_in - 1.0)
            }
        }
    }

    /// The sample point lies outside the input (only tf_crop_and_resize extrapolates).
    fn outside(&self, src: f64) -> bool {
        matches!(self.coord, CoordMode::TfCropAndResize(..)) && (src < 0.0 || src > self.len_in as f64 - 1.0)
    }

    /// The filter's coefficients at fraction `ratio` ∈ (0, 1] past the tap before the
    /// sample point, and the offset of the first tap from that tap.
    fn coeffs(&self, ratio: f64) -> (isize, Vec<f64>) {
        let s = if self.antialias { self.scale.min(1.0) } else { 1.0 };
        match self.filter {
            Filter::Nearest(_) => unreachable!("nearest has no coefficients"),
            Filter::Linear => {
                // Triangle of half-width 1 / s: taps start .. 1 - start around the sample.
                let start = (-1.0 / s).floor() as isize + 1;
                let c = (start..2 - start).map(|k| (1.0 - ((k as f64 - ratio) * s).abs()).clamp(0.0, 1.0)).collect();
                (start, c)
            }
            Filter::Cubic(a) => {
                let kernel = |x: f64| {
                    let x = x.abs();
                    if x <= 1.0 {
                        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
                    } else if x < 2.0 {
                        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
                    } else {
                        0.0
                    }
                };
                let start = (-2.0 / s).floor() as isize + 1;
                let c = (start..2 - start).map(|k| kernel((k as f64 - ratio) * s)).collect();
                (start, c)
            }
        }
    }

    /// The map of this axis: exact index tables for nearest, tap tables (computed in
    /// f64, merged per input index, zero taps dropped, rounded to f32) otherwise.
    pub fn map(&self) -> AxisMap {
        let last = self.len_in.saturating_sub(1) as f64;
        let outside: Vec<bool> = (0..self.len_out).map(|o| self.outside(self.source(o))).collect();
        let outside = if outside.iter().any(|&b| b) { outside } else { vec![] };
        if let Filter::Nearest(mode) = self.filter {
            let index = (0..self.len_out)
                .map(|o| {
                    let src = self.source(o);
                    let r = match mode {
                        NearestMode::Floor => src.floor(),
                        NearestMode::Ceil => src.ceil(),
                        NearestMode::RoundPreferFloor if src - src.floor() == 0.5 => src.floor(),
                        NearestMode::RoundPreferCeil if src - src.floor() == 0.5 => src.ceil(),
                        NearestMode::RoundPreferFloor | NearestMode::RoundPreferCeil => src.round(),
                    };
                    r.clamp(0.0, last) as usize
                })
                .collect();
            return AxisMap { taps: 1, index, weight: vec![], outside };
        }
        let rows: Vec<Vec<(usize, f64)>> = (0..self.len_out).map(|o| self.row(o)).collect();
        let taps = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
        // Every output reads one input with weight 1: a gather.
        if taps == 1 && rows.iter().all(|r| r.len() == 1 && r[0].1 as f32 == 1.0) {
            return AxisMap { taps: 1, index: rows.iter().map(|r| r[0].0).collect(), weight: vec![], outside };
        }
        let mut index = Vec::with_capacity(self.len_out * taps);
        let mut weight = Vec::with_capacity(self.len_out * taps);
        for r in &rows {
            let pad = r.first().map_or(0, |t| t.0);
            for k in 0..taps {
                let (i, w) = r.get(k).copied().unwrap_or((pad, 0.0));
                index.push(i);
                weight.push(w as f32);
            }
        }
        AxisMap { taps, index, weight, outside }
    }

    /// The nonzero taps `(input index, weight)` of output coordinate `o`, merged per
    /// input index (edge replication reads the border element more than once).
    pub fn row(&self, o: usize) -> Vec<(usize, f64)> {
        let src = self.source(o);
        // The tap at or before the sample point, so that ratio ∈ (0, 1].
        let base = src.ceil() - 1.0;
        let ratio = src - base;
        let (start, mut c) = self.coeffs(ratio);
        if self.antialias {
            let sum: f64 = c.iter().sum();
            c.iter_mut().for_each(|v| *v /= sum);
        }
        let n = c.len() as isize;
        let len = self.len_in as isize;
        // The n input positions nearest the sample, on the input padded by n / 2 copies
        // of each edge element.
        let pad = (n + 1) / 2;
        let first = (base as isize + start).clamp(-pad, len + pad - n);
        let idx: Vec<isize> = (first..first + n).collect();
        if self.exclude_outside {
            for (k, &i) in idx.iter().enumerate() {
                if i < 0 || i >= len {
                    c[k] = 0.0;
                }
            }
            let sum: f64 = c.iter().sum();
            if sum != 0.0 {
                c.iter_mut().for_each(|v| *v /= sum);
            }
        }
        let mut row: Vec<(usize, f64)> = vec![];
        for (&i, &w) in idx.iter().zip(&c) {
            let i = i.clamp(0, len - 1) as usize;
            match row.iter_mut().find(|t| t.0 == i) {
                Some(t) => t.1 += w,
                None => row.push((i, w)),
            }
        }
        row.retain(|t| t.1 != 0.0);
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(len_in: usize, len_out: usize, scale: f64, filter: Filter, antialias: bool) -> AxisSpec {
        AxisSpec { len_in, len_out, scale, coord: CoordMode::HalfPixel, filter, antialias, exclude_outside: false }
    }

    fn sums_to_one(m: &AxisMap) {
        for o in 0..m.len() {
            let s: f32 = m.taps_of(o).map(|t| t.1).sum();
            assert!((s - 1.0).abs() < 1e-6, "output {o}: weights sum to {s}");
        }
    }

    #[test]
    fn linear_upscale_is_two_taps() {
        let m = spec(4, 8, 2.0, Filter::Linear, false).map();
        assert_eq!(m.taps, 2);
        // Output 0 samples -0.25: the edge element, weight 1.
        assert_eq!(m.taps_of(0).collect::<Vec<_>>(), vec![(0, 1.0), (0, 0.0)]);
        // Output 3 samples 1.25: 0.75·x[1] + 0.25·x[2].
        assert_eq!(m.taps_of(3).collect::<Vec<_>>(), vec![(1, 0.75), (2, 0.25)]);
        sums_to_one(&m);
    }

    #[test]
    fn linear_antialias_widens_the_triangle() {
        // 4 → 2 (scale 0.5): the triangle spans 4 inputs; output 0 samples 0.5, so
        // weights ∝ 1 - |k - 0.5|/2 over k = -1..=2 with the left edge replicated.
        let m = spec(4, 2, 0.5, Filter::Linear, true).map();
        sums_to_one(&m);
        let t: Vec<(usize, f32)> = m.taps_of(0).collect();
        let expect = [(0, 0.25 + 0.75), (1, 0.75), (2, 0.25)].map(|(i, w): (usize, f64)| (i, (w / 2.0) as f32));
        assert_eq!(t[..3], expect);
    }

    #[test]
    fn linear_antialias_matches_the_reference_case() {
        // ONNX test_resize_downsample_scales_linear_antialias, one axis: 4 → 2 at scale
        // 0.6 gives [[2.875, 4.5], [9.375, 11]] on x[i][j] = 4i + j + 1, so [2.5, 9] on
        // the first column [1, 5, 9, 13] alone.
        let m = spec(4, 2, 0.6f32 as f64, Filter::Linear, true).map();
        sums_to_one(&m);
        let x = [1.0f32, 5.0, 9.0, 13.0];
        let y: Vec<f32> = (0..2).map(|o| m.taps_of(o).map(|(i, w)| w * x[i]).sum()).collect();
        assert!((y[0] - 2.5).abs() < 1e-5 && (y[1] - 9.0).abs() < 1e-5, "{y:?}");
    }

    #[test]
    fn cubic_taps_and_exclude_outside() {
        let m = spec(4, 8, 2.0, Filter::Cubic(-0.75), false).map();
        assert_eq!(m.taps, 4);
        sums_to_one(&m);
        let mut s = spec(4, 8, 2.0, Filter::Cubic(-0.5), false);
        s.exclude_outside = true;
        let m = s.map();
        sums_to_one(&m);
        // Output 0 samples -0.25: no tap left of the input survives.
        assert!(m.taps_of(0).all(|(i, w)| w == 0.0 || i < 4));
        // Antialiased at scale 0.5 the kernel spans 8 inputs; at most 7 are distinct here
        // (output 1 samples 2.5: inputs -1 and 0 are both the edge element).
        let aa = spec(8, 4, 0.5, Filter::Cubic(-0.75), true).map();
        assert_eq!(aa.taps, 7);
        sums_to_one(&aa);
    }

    #[test]
    fn crop_and_resize_marks_outside() {
        let s = AxisSpec { coord: CoordMode::TfCropAndResize(0.4, 1.2), ..spec(4, 3, 0.75, Filter::Linear, false) };
        let m = s.map();
        assert_eq!(m.outside, vec![false, false, true]);
    }

    #[test]
    fn identity_linear_is_a_gather() {
        let m = spec(4, 4, 1.0, Filter::Linear, false).map();
        assert!(!m.interpolates());
        assert_eq!(m.index, vec![0, 1, 2, 3]);
    }
}
