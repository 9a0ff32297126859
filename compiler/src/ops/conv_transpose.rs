//! Transposed convolution of any spatial rank (1-D, 2-D, 3-D, ...).

use super::expect_inputs;
use crate::ir::TensorType;

/// `y[n, g·Mg + m, i·s - pad + k·d] += x[n, g·Cg + c, i] · w[g·Cg + c, m, k]` (per
/// spatial axis), plus `bias[m]`. Inputs: x `[N, C, D1, .., Dr]`, w `[C, M/group, K1, .., Kr]`,
/// optional bias `[M]`. `pads` holds the begin pads of the r spatial axes, then the end
/// pads; `output_padding` adds elements at the end of each axis.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTranspose {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads: Vec<usize>,
    pub output_padding: Vec<usize>,
    pub group: usize,
}

impl ConvTranspose {
    /// Number of spatial axes.
    pub fn rank(&self) -> usize {
        self.kernel.len()
    }

    /// Output length of one spatial axis.
    pub fn out_len(&self, axis: usize, input: usize) -> Option<usize> {
        let full = self.strides[axis] * (input.checked_sub(1)?)
            + self.output_padding[axis]
            + (self.kernel[axis].checked_sub(1)?) * self.dilations[axis]
            + 1;
        full.checked_sub(self.pads[axis] + self.pads[axis + self.rank()])
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 3)?;
        let (x, w) = (inputs[0], inputs[1]);
        let r = self.rank();
        if r == 0
            || [self.strides.len(), self.dilations.len(), self.output_padding.len()] != [r; 3]
            || self.pads.len() != 2 * r
        {
            return Err(format!("inconsistent attributes for {r} spatial axes"));
        }
        if x.shape.len() != r + 2 || w.shape.len() != r + 2 {
            return Err(format!("input {:?} and weight {:?} must have rank {}", x.shape, w.shape, r + 2));
        }
        let c = x.shape[1];
        if self.group == 0 || w.shape[0] != c || c % self.group != 0 {
            return Err(format!("weight {:?} does not match {c} input channels in {} groups", w.shape, self.group));
        }
        if w.shape[2..] != self.kernel[..] {
            return Err(format!("weight shape {:?} does not match kernel_shape {:?}", w.shape, self.kernel));
        }
        let m = w.shape[1] * self.group;
        if let Some(b) = inputs.get(2)
            && b.len() != m
        {
            return Err(format!("bias has {} elements, expected {m}", b.len()));
        }
        let mut shape = vec![x.shape[0], m];
        for i in 0..r {
            shape.push(self.out_len(i, x.shape[2 + i]).ok_or("pads exceed the output")?);
        }
        Ok(TensorType::new(x.dtype, shape))
    }
}
