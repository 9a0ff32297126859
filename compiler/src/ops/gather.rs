//! Gather and GatherElements with run-time (or constant) int32/int64 indices.

use super::expect_inputs;
use crate::ir::{DType, TensorType};

/// ONNX Gather: `y[o.., j.., i..] = x[o.., idx[j..], i..]` along `axis`; negative indices
/// count from the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Gather {
    pub axis: usize,
}

/// ONNX GatherElements: `y[p] = x[p with p[axis] = idx[p]]`; `idx` has `y`'s shape.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherElements {
    pub axis: usize,
}

fn check_indices(t: &TensorType) -> Result<(), String> {
    match t.dtype {
        DType::I64 | DType::I32 => Ok(()),
        d => Err(format!("indices must be int32 or int64, got {d}")),
    }
}

impl Gather {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 2)?;
        let (x, idx) = (inputs[0], inputs[1]);
        check_indices(idx)?;
        if self.axis >= x.shape.len() {
            return Err(format!("axis {} out of range for {:?}", self.axis, x.shape));
        }
        let mut shape = x.shape[..self.axis].to_vec();
        shape.extend(&idx.shape);
        shape.extend(&x.shape[self.axis + 1..]);
        Ok(TensorType::new(x.dtype, shape))
    }
}

impl GatherElements {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 2)?;
        let (x, idx) = (inputs[0], inputs[1]);
        check_indices(idx)?;
        if self.axis >= x.shape.len() || idx.shape.len() != x.shape.len() {
            return Err(format!("indices {:?} do not match data {:?} on axis {}", idx.shape, x.shape, self.axis));
        }
        Ok(TensorType::new(x.dtype, idx.shape.clone()))
    }
}
