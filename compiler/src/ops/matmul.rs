//! NumPy-style matrix product.

use super::{Act, expect_inputs};
use crate::ir::TensorType;

/// `Y = act(A @ B)`: 1-D operands are promoted (and the added axis removed), leading
/// (batch) axes broadcast.
#[derive(Debug, Clone, PartialEq)]
pub struct MatMul {
    pub act: Option<Act>,
}

/// Shapes of a matmul after 1-D promotion: `(batch, M, K, N, a_batch, b_batch)`.
pub struct MatMulDims {
    pub batch: Vec<usize>,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a_batch: Vec<usize>,
    pub b_batch: Vec<usize>,
}

impl MatMul {
    pub fn dims(a: &TensorType, b: &TensorType) -> Result<MatMulDims, String> {
        if a.shape.is_empty() || b.shape.is_empty() {
            return Err("operands must have rank >= 1".into());
        }
        let (a_batch, m, k) = match a.shape.as_slice() {
            [k] => (vec![], 1, *k),
            s => (s[..s.len() - 2].to_vec(), s[s.len() - 2], s[s.len() - 1]),
        };
        let (b_batch, kb, n) = match b.shape.as_slice() {
            [k] => (vec![], *k, 1),
            s => (s[..s.len() - 2].to_vec(), s[s.len() - 2], s[s.len() - 1]),
        };
        if k != kb {
            return Err(format!("inner dimensions differ: {:?} @ {:?}", a.shape, b.shape));
        }
        let batch = super::broadcast::broadcast_shapes(&a_batch, &b_batch)?;
        Ok(MatMulDims { batch, m, k, n, a_batch, b_batch })
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 2)?;
        let d = Self::dims(inputs[0], inputs[1])?;
        let mut shape = d.batch.clone();
        if inputs[0].shape.len() > 1 {
            shape.push(d.m);
        }
        if inputs[1].shape.len() > 1 {
            shape.push(d.n);
        }
        Ok(TensorType::new(inputs[0].dtype, shape))
    }
}
