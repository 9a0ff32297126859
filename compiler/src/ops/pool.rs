//! 2-D pooling.

use super::conv::window_out;
use super::{expect_inputs, expect_rank};
use crate::ir::TensorType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

impl PoolKind {
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AveragePool",
        }
    }
}

/// Max or average over `kernel` windows of an `[N,C,H,W]` input. `pads` is
/// `[top, left, bottom, right]`. Average divides by the window size when
/// `count_include_pad`, else by the number of input elements under the window.
/// Padding never wins a max.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    pub pads: [usize; 4],
    pub ceil_mode: bool,
    pub count_include_pad: bool,
}

impl Pool {
    /// Whether one window is the whole `[h, w]` input plane: a single output pixel
    /// (`out == [1, 1]`), no padding (a global pool).
    pub fn covers_plane(&self, [h, w]: [usize; 2], out: [usize; 2]) -> bool {
        out == [1, 1] && self.kernel == [h, w] && self.pads == [0; 4]
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let x = inputs[0];
        expect_rank(x, 4, "input")?;
        let oh = window_out(
            x.shape[2],
            self.kernel[0],
            self.strides[0],
            self.dilations[0],
            self.pads[0],
            self.pads[2],
            self.ceil_mode,
        )?;
        let ow = window_out(
            x.shape[3],
            self.kernel[1],
            self.strides[1],
            self.dilations[1],
            self.pads[1],
            self.pads[3],
            self.ceil_mode,
        )?;
        Ok(TensorType::new(x.dtype, vec![x.shape[0], x.shape[1], oh, ow]))
    }
}
