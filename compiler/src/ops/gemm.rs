//! General matrix multiply, ONNX Gemm semantics.

use super::{Act, expect_inputs, expect_rank};
use crate::ir::TensorType;

/// `Y = act(alpha * A' B' + beta * C)` with `A' = transA ? Aᵀ : A` (`[M,K]`),
/// `B' = transB ? Bᵀ : B` (`[K,N]`) and `C` unidirectionally broadcast to `[M,N]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gemm {
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f32,
    pub beta: f32,
    pub act: Option<Act>,
}

impl Gemm {
    /// `(M, K, N)`.
    pub fn dims(&self, a: &TensorType, b: &TensorType) -> (usize, usize, usize) {
        let (m, k) = if self.trans_a { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
        let n = if self.trans_b { b.shape[0] } else { b.shape[1] };
        (m, k, n)
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 3)?;
        expect_rank(inputs[0], 2, "A")?;
        expect_rank(inputs[1], 2, "B")?;
        let (m, k, n) = self.dims(inputs[0], inputs[1]);
        let kb = if self.trans_b { inputs[1].shape[1] } else { inputs[1].shape[0] };
        if k != kb {
            return Err(format!("inner dimensions differ: A' is {m}x{k}, B' is {kb}x{n}"));
        }
        if let Some(c) = inputs.get(2) {
            let b = super::broadcast::broadcast_shapes(&c.shape, &[m, n])?;
            if b != [m, n] {
                return Err(format!("C of shape {:?} does not broadcast to [{m}, {n}]", c.shape));
            }
        }
        Ok(TensorType::new(inputs[0].dtype, vec![m, n]))
    }
}
