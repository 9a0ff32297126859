//! Softmax and LogSoftmax.

use super::expect_inputs;
use crate::ir::TensorType;

/// `y = exp(x - max) / Σ exp(x - max)` along `axis` (normalised to `0..rank`).
#[derive(Debug, Clone, PartialEq)]
pub struct Softmax {
    pub axis: usize,
    /// LogSoftmax: `y = x - max - log Σ exp(x - max)`.
    pub log: bool,
}

impl Softmax {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        if self.axis >= inputs[0].shape.len().max(1) {
            return Err(format!("axis {} out of range for shape {:?}", self.axis, inputs[0].shape));
        }
        Ok(inputs[0].clone())
    }

    /// `(outer, axis_len, inner)` for a row-major walk.
    pub fn split(&self, shape: &[usize]) -> (usize, usize, usize) {
        let outer = shape[..self.axis].iter().product();
        let len = shape.get(self.axis).copied().unwrap_or(1);
        let inner = shape[(self.axis + 1).min(shape.len())..].iter().product();
        (outer, len, inner)
    }
}
