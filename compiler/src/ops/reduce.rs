//! Reductions over axes (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp) and
//! ArgMax/ArgMin.

use super::{expect_inputs, strides_of};
use crate::ir::{DType, TensorType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    SumSquare,
    LogSum,
    LogSumExp,
}

impl ReduceKind {
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "ReduceSum",
            ReduceKind::Mean => "ReduceMean",
            ReduceKind::Max => "ReduceMax",
            ReduceKind::Min => "ReduceMin",
            ReduceKind::Prod => "ReduceProd",
            ReduceKind::L1 => "ReduceL1",
            ReduceKind::L2 => "ReduceL2",
            ReduceKind::SumSquare => "ReduceSumSquare",
            ReduceKind::LogSum => "ReduceLogSum",
            ReduceKind::LogSumExp => "ReduceLogSumExp",
        }
    }

    /// Kinds defined on integers too (the rest are float32 only).
    pub fn integer_ok(self) -> bool {
        matches!(self, ReduceKind::Sum | ReduceKind::Max | ReduceKind::Min | ReduceKind::Prod)
    }
}

/// Reduces `axes` (sorted, normalised) of the input; `keepdims` keeps them as size 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Reduce {
    pub kind: ReduceKind,
    pub axes: Vec<usize>,
    pub keepdims: bool,
}

/// The index of the max (or min) along `axis`, as int64; ties go to the first index
/// unless `select_last`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgReduce {
    pub max: bool,
    pub axis: usize,
    pub keepdims: bool,
    pub select_last: bool,
}

/// Loop structure shared by the backends: the kept axes (output order) and the reduced
/// axes, each as `(extent, input stride)`.
pub struct ReduceLoops {
    pub kept: Vec<(usize, usize)>,
    pub reduced: Vec<(usize, usize)>,
    pub count: usize,
}

pub fn reduce_loops(in_shape: &[usize], axes: &[usize]) -> ReduceLoops {
    let st = strides_of(in_shape);
    let mut kept = vec![];
    let mut reduced = vec![];
    for (a, (&d, &s)) in in_shape.iter().zip(&st).enumerate() {
        if axes.contains(&a) {
            reduced.push((d, s));
        } else {
            kept.push((d, s));
        }
    }
    let count = reduced.iter().map(|r| r.0).product();
    ReduceLoops { kept, reduced, count }
}

fn reduced_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(a, &d)| if axes.contains(&a) { keepdims.then_some(1) } else { Some(d) })
        .collect()
}

impl Reduce {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let x = inputs[0];
        if self.axes.iter().any(|&a| a >= x.shape.len()) {
            return Err(format!("axes {:?} out of range for shape {:?}", self.axes, x.shape));
        }
        if !(x.dtype.is_float() || self.kind.integer_ok() && x.dtype != DType::Bool) {
            return Err(format!("{} does not take {} tensors", self.kind.name(), x.dtype));
        }
        if self.axes.iter().any(|&a| x.shape[a] == 0) {
            return Err("reduction over an empty axis".into());
        }
        Ok(TensorType::new(x.dtype, reduced_shape(&x.shape, &self.axes, self.keepdims)))
    }
}

impl ArgReduce {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let x = inputs[0];
        if self.axis >= x.shape.len() || x.shape[self.axis] == 0 {
            return Err(format!("axis {} out of range or empty for shape {:?}", self.axis, x.shape));
        }
        if x.dtype == DType::Bool {
            return Err("ArgMax/ArgMin do not take bool tensors".into());
        }
        Ok(TensorType::new(DType::I64, reduced_shape(&x.shape, &[self.axis], self.keepdims)))
    }
}
