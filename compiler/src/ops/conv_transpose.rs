//! 2-D transposed convolution (1-D is lifted to 2-D by the frontend).

use super::{expect_inputs, expect_rank};
use crate::ir::TensorType;

/// `y[n, g·Mg + m, ih·s - pad + k·d] += x[n, g·Cg + c, ih] · w[g·Cg + c, m, k]` (per
/// spatial axis), plus `bias[m]`. Inputs: x `[N,C,H,W]`, w `[C, M/group, kH, kW]`,
/// optional bias `[M]`. `pads` is `[top, left, bottom, right]`; `output_padding` adds
/// rows/columns at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTranspose {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    pub pads: [usize; 4],
    pub output_padding: [usize; 2],
    pub group: usize,
}

impl ConvTranspose {
    /// Output length of one spatial axis.
    pub fn out_len(&self, axis: usize, input: usize) -> Option<usize> {
        let full = self.strides[axis] * (input.checked_sub(1)?)
            + self.output_padding[axis]
            + (self.kernel[axis].checked_sub(1)?) * self.dilations[axis]
            + 1;
        full.checked_sub(self.pads[axis] + self.pads[axis + 2])
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 3)?;
        let (x, w) = (inputs[0], inputs[1]);
        expect_rank(x, 4, "input")?;
        expect_rank(w, 4, "weight")?;
        let c = x.shape[1];
        if self.group == 0 || w.shape[0] != c || c % self.group != 0 {
            return Err(format!("weight {:?} does not match {c} input channels in {} groups", w.shape, self.group));
        }
        if [w.shape[2], w.shape[3]] != self.kernel {
            return Err(format!("weight shape {:?} does not match kernel_shape {:?}", w.shape, self.kernel));
        }
        let m = w.shape[1] * self.group;
        if let Some(b) = inputs.get(2)
            && b.len() != m
        {
            return Err(format!("bias has {} elements, expected {m}", b.len()));
        }
        let oh = self.out_len(0, x.shape[2]).ok_or("pads exceed the output")?;
        let ow = self.out_len(1, x.shape[3]).ok_or("pads exceed the output")?;
        Ok(TensorType::new(x.dtype, vec![x.shape[0], m, oh, ow]))
    }
}
