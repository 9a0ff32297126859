//! Axis permutation.

use super::{expect_inputs, strides_of};
use crate::ir::{TensorData, TensorType};

/// `y.shape[i] = x.shape[perm[i]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transpose {
    pub perm: Vec<usize>,
}

impl Transpose {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let x = inputs[0];
        let mut sorted = self.perm.clone();
        sorted.sort_unstable();
        if sorted != (0..x.shape.len()).collect::<Vec<_>>() {
            return Err(format!("perm {:?} is not a permutation of the axes of {:?}", self.perm, x.shape));
        }
        Ok(TensorType::new(x.dtype, self.perm.iter().map(|&p| x.shape[p]).collect()))
    }

    /// For each output element (row-major), the input element it copies.
    pub fn source_index(&self, in_shape: &[usize]) -> Vec<usize> {
        let out_shape: Vec<usize> = self.perm.iter().map(|&p| in_shape[p]).collect();
        let in_strides = strides_of(in_shape);
        let st: Vec<usize> = self.perm.iter().map(|&p| in_strides[p]).collect();
        let total: usize = out_shape.iter().product();
        let mut idx = vec![0usize; out_shape.len()];
        let mut res = Vec::with_capacity(total);
        for _ in 0..total {
            res.push(idx.iter().zip(&st).map(|(i, s)| i * s).sum());
            for ax in (0..out_shape.len()).rev() {
                idx[ax] += 1;
                if idx[ax] < out_shape[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        res
    }

    pub fn eval(&self, x: &TensorType, data: &TensorData) -> TensorData {
        data.gather(&self.source_index(&x.shape))
    }

    /// True when the permutation only moves size-1 axes, so the data order is unchanged.
    pub fn is_reshape(&self, in_shape: &[usize]) -> bool {
        let kept: Vec<usize> = self.perm.iter().copied().filter(|&p| in_shape[p] != 1).collect();
        kept.windows(2).all(|w| w[0] < w[1])
    }
}
