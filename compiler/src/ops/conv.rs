//! 2-D convolution, including grouped and depthwise forms.

use super::{Act, expect_inputs, expect_rank};
use crate::ir::TensorType;

/// `y[n,m,oh,ow] = act(bias[m] + Σ x[n, g*C/G + c, oh*s - pad + kh*d, ...] * w[m,c,kh,kw])`.
/// Inputs: x `[N,C,H,W]`, w `[M,C/group,kH,kW]`, optional bias `[M]`.
/// `pads` is `[top, left, bottom, right]` (auto_pad is resolved by the frontend).
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    pub pads: [usize; 4],
    pub group: usize,
    pub act: Option<Act>,
}

/// Output length of one spatial axis for a sliding window.
pub(crate) fn window_out(
    len: usize,
    k: usize,
    s: usize,
    d: usize,
    pb: usize,
    pe: usize,
    ceil: bool,
) -> Result<usize, String> {
    let span = k.checked_sub(1).and_then(|k1| d.checked_mul(k1)).and_then(|x| x.checked_add(1));
    let padded = len.checked_add(pb).and_then(|x| x.checked_add(pe));
    let (Some(span), Some(padded)) = (span, padded) else {
        return Err(format!("kernel {k} (dilation {d}) or pads {pb}+{pe} out of range"));
    };
    if padded < span || s == 0 {
        return Err(format!(
            "window of {span} (kernel {k}, dilation {d}) does not fit input {len} with pads {pb}+{pe}"
        ));
    }
    let mut n = (padded - span) / s + 1;
    if ceil && !(padded - span).is_multiple_of(s) {
        n += 1;
        // The last window must start inside the input or the begin padding.
        if (n - 1) * s >= len + pb {
            n -= 1;
        }
    }
    Ok(n)
}

impl Conv {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 3)?;
        let (x, w) = (inputs[0], inputs[1]);
        expect_rank(x, 4, "input")?;
        expect_rank(w, 4, "weight")?;
        let [n, c, h, wd] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
        let m = w.shape[0];
        if self.group == 0 || c % self.group != 0 || m % self.group != 0 {
            return Err(format!("group {} must divide input channels {c} and output channels {m}", self.group));
        }
        if w.shape[1] != c / self.group {
            return Err(format!(
                "weight shape {:?} expects {} input channels per group, input has {c} channels in {} groups",
                w.shape, w.shape[1], self.group
            ));
        }
        if [w.shape[2], w.shape[3]] != self.kernel {
            return Err(format!("weight shape {:?} does not match kernel_shape {:?}", w.shape, self.kernel));
        }
        if let Some(b) = inputs.get(2)
            && b.len() != m
        {
            return Err(format!("bias has {} elements, expected {m}", b.len()));
        }
        let oh = window_out(h, self.kernel[0], self.strides[0], self.dilations[0], self.pads[0], self.pads[2], false)?;
        let ow = window_out(wd, self.kernel[1], self.strides[1], self.dilations[1], self.pads[1], self.pads[3], false)?;
        Ok(TensorType::new(x.dtype, vec![n, m, oh, ow]))
    }

    pub fn is_depthwise(&self, in_channels: usize) -> bool {
        self.group > 1 && self.group == in_channels
    }
}
