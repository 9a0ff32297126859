//! Reshape-like ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout at inference).

use super::expect_inputs;
use crate::ir::TensorType;

/// Same row-major data, new static shape. Planned as a view of its input.
#[derive(Debug, Clone, PartialEq)]
pub struct Reshape {
    pub shape: Vec<usize>,
}

impl Reshape {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let n: usize = self.shape.iter().product();
        if n != inputs[0].len() {
            return Err(format!(
                "cannot reshape {:?} ({} elements) to {:?} ({n} elements)",
                inputs[0].shape,
                inputs[0].len(),
                self.shape
            ));
        }
        Ok(TensorType::new(inputs[0].dtype, self.shape.clone()))
    }
}
