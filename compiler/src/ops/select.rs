//! `Where`: elementwise selection with broadcasting.

use super::broadcast::broadcast_shapes;
use super::expect_inputs;
use crate::ir::{DType, TensorType};

/// `y = cond ? a : b`; inputs `(cond: bool, a, b)` broadcast together.
pub fn infer_where(inputs: &[&TensorType]) -> Result<TensorType, String> {
    expect_inputs(inputs, 3, 3)?;
    if inputs[0].dtype != DType::Bool {
        return Err(format!("condition must be bool, got {}", inputs[0].dtype));
    }
    if inputs[1].dtype != inputs[2].dtype {
        return Err(format!("branches differ in type: {} and {}", inputs[1].dtype, inputs[2].dtype));
    }
    let s = broadcast_shapes(&broadcast_shapes(&inputs[0].shape, &inputs[1].shape)?, &inputs[2].shape)?;
    Ok(TensorType::new(inputs[1].dtype, s))
}
