//! Element type conversion and logical not.

use super::expect_inputs;
use crate::ir::{DType, TensorData, TensorType};

/// `y = (to) x`, elementwise. Float to integer truncates toward zero; integer to integer
/// wraps (to int4 / int2 too); anything to bool is `x != 0`; bool to a number is 0 or 1;
/// float16 / bfloat16 / float8 / float4 convert through float32 (exactly to it, from it
/// rounding to nearest even). Out-of-range values and infinities reaching a float8 give its
/// largest finite value when `saturate` (ONNX's default), else infinity or NaN (see
/// `modelless_rt::f32_to_minifloat`); float8 E8M0 rounds by `round_mode`
/// (`modelless_rt::E8M0_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    pub to: DType,
    pub saturate: bool,
    pub round_mode: u8,
}

impl Cast {
    /// A conversion to `to` with ONNX's defaults (saturating, E8M0 rounding up).
    pub fn to(to: DType) -> Cast {
        Cast { to, saturate: true, round_mode: modelless_rt::E8M0_UP }
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        Ok(TensorType::new(self.to, inputs[0].shape.clone()))
    }

    /// Reference conversion, used by constant folding (shape computations often cast).
    pub fn eval(&self, x: &TensorData) -> Option<TensorData> {
        Some(x.cast_to_with(self.to, self.saturate, self.round_mode))
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
