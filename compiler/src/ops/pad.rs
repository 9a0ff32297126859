//! Padding.

use super::expect_inputs;
use crate::ir::TensorType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    Constant,
    /// Mirror without repeating the edge element (pads shorter than the axis).
    Reflect,
    /// Repeat the edge element.
    Edge,
    /// Circular: index `i` reads `i mod len` (any pad length; the axis must not be empty).
    Wrap,
}

/// `pads` holds `[begin_0, .., begin_{r-1}, end_0, .., end_{r-1}]` (non-negative; the
/// frontend turns negative pads into errors). `value` fills constant padding.
#[derive(Debug, Clone, PartialEq)]
pub struct Pad {
    pub pads: Vec<usize>,
    pub mode: PadMode,
    pub value: f32,
}

impl Pad {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let x = inputs[0];
        let r = x.shape.len();
        if self.pads.len() != 2 * r {
            return Err(format!("pads has {} values, expected {} for rank {r}", self.pads.len(), 2 * r));
        }
        let shape: Vec<usize> = (0..r).map(|i| x.shape[i] + self.pads[i] + self.pads[r + i]).collect();
        if self.mode == PadMode::Reflect && (0..r).any(|i| self.pads[i].max(self.pads[r + i]) >= x.shape[i].max(1)) {
            return Err("reflect padding must be smaller than the padded axis".into());
        }
        if self.mode == PadMode::Wrap && (0..r).any(|i| x.shape[i] == 0 && self.pads[i] + self.pads[r + i] > 0) {
            return Err("wrap padding needs a non-empty axis".into());
        }
        Ok(TensorType::new(x.dtype, shape))
    }
}
