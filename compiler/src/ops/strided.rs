//! Strided views copied out: Slice (any steps, including negative), Expand (stride 0 on
//! broadcast axes), and through reshapes Tile. One kernel, affine indexing.

use super::expect_inputs;
use crate::ir::{TensorData, TensorType};

/// `y[i_0, .., i_r] = x[offset + Σ i_a · strides[a]]` (element strides may be 0 or negative).
#[derive(Debug, Clone, PartialEq)]
pub struct Strided {
    pub shape: Vec<usize>,
    pub offset: usize,
    pub strides: Vec<isize>,
}

impl Strided {
    /// For each output element, the input element it copies.
    pub fn source_index(&self) -> Vec<usize> {
        let total: usize = self.shape.iter().product();
        let mut res = Vec::with_capacity(total);
        let mut idx = vec![0usize; self.shape.len()];
        for _ in 0..total {
            let at: isize =
                self.offset as isize + idx.iter().zip(&self.strides).map(|(&i, &s)| i as isize * s).sum::<isize>();
            res.push(at.max(0) as usize);
            for ax in (0..self.shape.len()).rev() {
                idx[ax] += 1;
                if idx[ax] < self.shape[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        res
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        if self.strides.len() != self.shape.len() {
            return Err("strides and shape differ in rank".into());
        }
        let n = inputs[0].len() as isize;
        if self.shape.iter().all(|&d| d > 0) {
            // The extreme indices are reached at the corners.
            let mut lo = self.offset as isize;
            let mut hi = self.offset as isize;
            for (&d, &s) in self.shape.iter().zip(&self.strides) {
                let span = (d as isize - 1) * s;
                if span < 0 {
                    lo += span;
                } else {
                    hi += span;
                }
            }
            if lo < 0 || hi >= n {
                return Err(format!("reads outside the input ({lo}..={hi} of {n} elements)"));
            }
        }
        Ok(TensorType::new(inputs[0].dtype, self.shape.clone()))
    }

    pub fn eval(&self, x: &TensorData) -> TensorData {
        x.gather(&self.source_index())
    }
}

/// ONNX Slice on one axis: `(start, output length, step)` after clamping.
pub fn slice_axis(dim: usize, start: i64, end: i64, step: i64) -> Result<(usize, usize, isize), String> {
    if step == 0 {
        return Err("slice step must not be 0".into());
    }
    let d = dim as i64;
    let norm = |v: i64| if v < 0 { v + d } else { v };
    let (s, e) = (norm(start), norm(end));
    let (s, e) = if step > 0 { (s.clamp(0, d), e.clamp(0, d)) } else { (s.clamp(0, d - 1), e.clamp(-1, d - 1)) };
    let len = if step > 0 {
        if e > s { (e - s + step - 1) / step } else { 0 }
    } else if s > e {
        (s - e + (-step) - 1) / (-step)
    } else {
        0
    };
    Ok((s.max(0) as usize, len as usize, step as isize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_clamps_like_onnx() {
        assert_eq!(slice_axis(10, 0, 3, 1).unwrap(), (0, 3, 1));
        assert_eq!(slice_axis(10, -3, 1000, 1).unwrap(), (7, 3, 1));
        assert_eq!(slice_axis(10, -1, -1000, -1).unwrap(), (9, 10, -1));
        assert_eq!(slice_axis(10, 20, 1000, 1).unwrap().1, 0);
        assert_eq!(slice_axis(10, 0, 10, 3).unwrap(), (0, 4, 3));
    }
}
