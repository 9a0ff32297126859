//! Inference-mode batch normalisation: `y = scale * (x - mean) / sqrt(var + eps) + bias`
//! per channel (axis 1). Inputs: x, scale, bias, mean, var.

use crate::ir::TensorType;

#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    pub epsilon: f32,
}

impl BatchNorm {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        super::expect_inputs(inputs, 5, 5)?;
        let x = inputs[0];
        if x.shape.len() < 2 {
            return Err(format!("input must have rank >= 2, got {:?}", x.shape));
        }
        let c = x.shape[1];
        for (i, t) in inputs[1..].iter().enumerate() {
            if t.len() != c {
                return Err(format!("parameter {} has {} elements, expected {c} (one per channel)", i + 1, t.len()));
            }
        }
        Ok(TensorType::new(x.dtype, x.shape.clone()))
    }

    /// Per-channel `(multiplier, offset)` so that `y = x * m + o`.
    pub fn affine(&self, scale: &[f32], bias: &[f32], mean: &[f32], var: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let m: Vec<f32> = scale.iter().zip(var).map(|(&s, &v)| s / (v + self.epsilon).sqrt()).collect();
        let o = bias.iter().zip(mean).zip(&m).map(|((&b, &mu), &k)| b - mu * k).collect();
        (m, o)
    }
}
