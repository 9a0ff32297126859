//! Reductions over axes (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp) and
//! ArgMax/ArgMin.

use super::{expect_inputs, strides_of};
use crate::ir::{DType, TensorData, TensorType};

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

    /// The reduction of an empty set of `dt` values (ONNX reference semantics), as a
    /// one-element tensor: 0 for Sum, SumSquare, L1 and L2; 1 for Prod; the lowest value
    /// (-inf, the type's minimum, false) for Max and the highest for Min; log 0 = -inf for
    /// LogSum and LogSumExp; 0 / 0 = NaN for Mean. `None` when `dt` does not take the kind.
    pub fn empty_value(self, dt: DType) -> Option<TensorData> {
        use ReduceKind::*;
        if dt.is_float() {
            let v = match self {
                Sum | SumSquare | L1 | L2 => 0.0,
                Prod => 1.0,
                Max | LogSum | LogSumExp => f64::NEG_INFINITY,
                Min => f64::INFINITY,
                Mean => f64::NAN,
            };
            return Some(if dt == DType::F64 { TensorData::F64(vec![v]) } else { TensorData::F32(vec![v as f32]) });
        }
        let (lo, hi) = match dt {
            DType::Bool => return matches!(self, Max | Min).then(|| TensorData::Bool(vec![self == Min])),
            DType::I64 => (i64::MIN, i64::MAX),
            DType::I32 => (i32::MIN as i64, i32::MAX as i64),
            DType::I8 => (i8::MIN as i64, i8::MAX as i64),
            _ => (u8::MIN as i64, u8::MAX as i64),
        };
        let v = match self {
            Sum => 0,
            Prod => 1,
            Max => lo,
            Min => hi,
            _ => return None,
        };
        Some(match dt {
            DType::I64 => TensorData::I64(vec![v]),
            DType::I32 => TensorData::I32(vec![v as i32]),
            DType::I8 => TensorData::I8(vec![v as i8]),
            _ => TensorData::U8(vec![v as u8]),
        })
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
    /// Whether the reduction is over an empty set (a reduced axis of extent 0): its result
    /// is [`ReduceKind::empty_value`] everywhere, and the IR holds no such Reduce node (the
    /// frontend makes it a constant).
    pub fn over_empty(&self, in_shape: &[usize]) -> bool {
        self.axes.iter().any(|&a| in_shape.get(a) == Some(&0))
    }

    /// The output shape for an input of shape `in_shape`.
    pub fn out_shape(&self, in_shape: &[usize]) -> Vec<usize> {
        reduced_shape(in_shape, &self.axes, self.keepdims)
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let x = inputs[0];
        if self.axes.iter().any(|&a| a >= x.shape.len()) {
            return Err(format!("axes {:?} out of range for shape {:?}", self.axes, x.shape));
        }
        if !(x.dtype.is_float() || self.kind.integer_ok() && x.dtype != DType::Bool) {
            return Err(format!("{} does not take {} tensors", self.kind.name(), x.dtype));
        }
        if self.over_empty(&x.shape) {
            return Err("reduction over an empty axis (a constant, see ReduceKind::empty_value)".into());
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
