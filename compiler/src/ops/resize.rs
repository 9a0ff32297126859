//! Resize / Upsample with nearest or (multi)linear interpolation, resolved at build time
//! into per-axis index and weight tables.

use super::expect_inputs;
use crate::ir::{DType, TensorType};

/// How one output coordinate of an axis reads the input: `(lo, hi, w)` meaning
/// `(1 - w)·x[lo] + w·x[hi]` (nearest has `lo == hi`, `w == 0`).
pub type AxisMap = Vec<(usize, usize, f32)>;

/// Output shape plus one map per axis (`None` for axes copied unchanged).
#[derive(Debug, Clone, PartialEq)]
pub struct Resize {
    pub shape: Vec<usize>,
    pub maps: Vec<Option<AxisMap>>,
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
                    if m.len() != self.shape[a] || m.iter().any(|&(l, h, _)| l >= x.shape[a] || h >= x.shape[a]) =>
                {
                    return Err(format!("axis {a}: map does not fit"));
                }
                _ => {}
            }
        }
        if x.dtype != DType::F32 && self.maps.iter().flatten().flatten().any(|m| m.2 != 0.0) {
            return Err("linear interpolation needs float32".into());
        }
        Ok(TensorType::new(x.dtype, self.shape.clone()))
    }

    /// Axes that interpolate (have a nonzero weight somewhere).
    pub fn linear_axes(&self) -> Vec<usize> {
        (0..self.maps.len()).filter(|&a| self.maps[a].as_ref().is_some_and(|m| m.iter().any(|e| e.2 != 0.0))).collect()
    }
}

/// Coordinate transformation modes of ONNX Resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordMode {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

/// Nearest rounding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// The map of one axis resized from `len_in` to `len_out` with `scale`. ONNX measures the
/// resized length as `len_in · scale` (not floored) in align_corners and
/// pytorch_half_pixel.
pub fn axis_map(
    len_in: usize,
    len_out: usize,
    scale: f64,
    coord: CoordMode,
    linear: bool,
    nearest: NearestMode,
) -> AxisMap {
    let resized = len_in as f64 * scale;
    (0..len_out)
        .map(|o| {
            let x = o as f64;
            let src = match coord {
                CoordMode::HalfPixel => (x + 0.5) / scale - 0.5,
                CoordMode::PytorchHalfPixel => {
                    if resized > 1.0 {
                        (x + 0.5) / scale - 0.5
                    } else {
                        0.0
                    }
                }
                CoordMode::AlignCorners => {
                    if resized > 1.0 {
                        x * (len_in as f64 - 1.0) / (resized - 1.0)
                    } else {
                        0.0
                    }
                }
                CoordMode::Asymmetric => x / scale,
                CoordMode::TfHalfPixelForNn => (x + 0.5) / scale,
            };
            let last = len_in.saturating_sub(1) as f64;
            if linear {
                let s = src.clamp(0.0, last);
                let lo = s.floor();
                let hi = (lo + 1.0).min(last);
                (lo as usize, hi as usize, (s - lo) as f32)
            } else {
                let r = match nearest {
                    NearestMode::Floor => src.floor(),
                    NearestMode::Ceil => src.ceil(),
                    NearestMode::RoundPreferFloor => {
                        if src - src.floor() == 0.5 {
                            src.floor()
                        } else {
                            src.round()
                        }
                    }
                    NearestMode::RoundPreferCeil => {
                        if src - src.floor() == 0.5 {
                            src.ceil()
                        } else {
                            src.round()
                        }
                    }
                };
                let i = r.clamp(0.0, last) as usize;
                (i, i, 0.0)
            }
        })
        .collect()
}
