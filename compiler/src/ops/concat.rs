//! Concatenation along one axis.

use super::strides_of;
use crate::ir::{TensorData, TensorType};

/// `axis` is already normalised to `0..rank`.
#[derive(Debug, Clone, PartialEq)]
pub struct Concat {
    pub axis: usize,
}

impl Concat {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        let first = inputs.first().ok_or("expected at least one input")?;
        if self.axis >= first.shape.len() {
            return Err(format!("axis {} out of range for shape {:?}", self.axis, first.shape));
        }
        let mut shape = first.shape.clone();
        shape[self.axis] = 0;
        for t in inputs {
            let same_rest = t.shape.len() == shape.len()
                && t.shape.iter().zip(&first.shape).enumerate().all(|(i, (a, b))| i == self.axis || a == b);
            if !same_rest || t.dtype != first.dtype {
                return Err(format!(
                    "inputs {:?} and {:?} do not match outside axis {}",
                    first.shape, t.shape, self.axis
                ));
            }
            shape[self.axis] += t.shape[self.axis];
        }
        Ok(TensorType::new(first.dtype, shape))
    }

    /// `(outer, [inner block of each input])`: the output is `outer` repetitions of the
    /// inputs' blocks laid side by side.
    pub fn blocks(&self, inputs: &[&TensorType]) -> (usize, Vec<usize>) {
        let shape = &inputs[0].shape;
        let outer: usize = shape[..self.axis].iter().product();
        let blocks = inputs.iter().map(|t| strides_of(&t.shape)[self.axis] * t.shape[self.axis]).collect();
        (outer, blocks)
    }

    pub fn eval(&self, inputs: &[(&TensorType, &TensorData)], out: &TensorType) -> Option<TensorData> {
        let types: Vec<&TensorType> = inputs.iter().map(|(t, _)| *t).collect();
        let (outer, blocks) = self.blocks(&types);
        let mut src = Vec::with_capacity(out.len());
        // Build a gather over the concatenation of all inputs' data.
        let mut base = Vec::with_capacity(inputs.len());
        let mut acc = 0;
        for (t, _) in inputs {
            base.push(acc);
            acc += t.len();
        }
        for o in 0..outer {
            for (i, &b) in blocks.iter().enumerate() {
                src.extend((0..b).map(|k| base[i] + o * b + k));
            }
        }
        let all = match out.dtype {
            crate::ir::DType::F32 => TensorData::F32(inputs.iter().flat_map(|(_, d)| d.to_f32()).collect()),
            crate::ir::DType::I64 => {
                TensorData::I64(inputs.iter().map(|(_, d)| d.to_i64()).collect::<Option<Vec<_>>>()?.concat())
            }
            _ => return None,
        };
        Some(all.gather(&src))
    }
}
