//! Element type conversion and logical not.

use super::expect_inputs;
use crate::ir::{DType, TensorData, TensorType};

/// `y = (to) x`, elementwise. Float to integer truncates toward zero; anything to bool
/// is `x != 0`; bool to a number is 0 or 1.
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
        let f = x.to_f32();
        Some(match (self.to, x) {
            (DType::I64, d) if d.to_i64().is_some() => TensorData::I64(d.to_i64()?),
            (DType::I64, _) => TensorData::I64(f.iter().map(|&v| v as i64).collect()),
            (DType::I32, d) => TensorData::I32(match d.to_i64() {
                Some(v) => v.iter().map(|&v| v as i32).collect(),
                None => f.iter().map(|&v| v as i32).collect(),
            }),
            (DType::F32, _) => TensorData::F32(match x.to_i64() {
                Some(v) => v.iter().map(|&v| v as f32).collect(),
                None => f,
            }),
            (DType::Bool, _) => TensorData::Bool(f.iter().map(|&v| v != 0.0).collect()),
            _ => return None,
        })
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
