//! TopK: the `k` largest (or smallest) elements along one axis.

use super::expect_inputs;
use crate::ir::{DType, TensorType};

/// The `k` largest (`largest`) or smallest elements along `axis`, in order (best first).
/// Ties keep the lower index first (ONNX semantics). One ONNX TopK lowers to two nodes
/// with the same selection: `indices == false` outputs the values (input dtype),
/// `indices == true` their positions along `axis` (int64). The output shape is the input
/// shape with dim `axis` = `k`. `sorted == false` allows any order; the kernels still
/// sort.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    pub k: usize,
    pub axis: usize,
    pub largest: bool,
    pub sorted: bool,
    pub indices: bool,
}

impl TopK {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let x = inputs[0];
        let Some(&len) = x.shape.get(self.axis) else {
            return Err(format!("axis {} out of range for shape {:?}", self.axis, x.shape));
        };
        if self.k > len {
            return Err(format!("k = {} exceeds dim {} of axis {}", self.k, len, self.axis));
        }
        if x.dtype == DType::Bool {
            return Err("TopK does not take bool tensors".into());
        }
        let mut shape = x.shape.clone();
        shape[self.axis] = self.k;
        Ok(TensorType::new(if self.indices { DType::I64 } else { x.dtype }, shape))
    }

    /// `(outer, len, inner)`: the input as `[outer, len, inner]` around `axis`.
    pub fn split(&self, shape: &[usize]) -> (usize, usize, usize) {
        let outer = shape[..self.axis].iter().product();
        let inner = shape[self.axis + 1..].iter().product();
        (outer, shape[self.axis], inner)
    }
}
