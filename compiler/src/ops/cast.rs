//! Element type conversion and logical not.

use super::expect_inputs;
use crate::ir::{DType, TensorData, TensorType};

/// `y = (to) x`, elementwise. Float to integer truncates toward zero; integer to integer
/// wraps; anything to bool is `x != 0`; bool to a number is 0 or 1; float16 / bfloat16
/// convert through float32 (exactly to it, from it rounding to nearest even).
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    pub to: DType,
}

impl Cast {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        Ok(TensorType::new(self.to, inputs[0].shape.clone()))
    }

    /// Reference conversion, used by constant folding (shape computations often cast).
    pub fn eval(&self, x: &TensorData) -> Option<TensorData> {
        Some(x.cast_to(self.to))
    }
}

/// `y = !x` on booleans.
pub fn infer_not(inputs: &[&TensorType]) -> Result<TensorType, String> {
    expect_inputs(inputs, 1, 1)?;
    if inputs[0].dtype != DType::Bool {
        return Err(format!("Not takes bool tensors, got {}", inputs[0].dtype));
    }
    Ok(inputs[0].clone())
}
