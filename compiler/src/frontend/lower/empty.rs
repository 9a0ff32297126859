//! Zero-element tensors. Static shapes may hold a 0 (an empty slice, a zero-size split, an
//! empty model input): values with no elements need no code, and the backends skip the
//! nodes producing them. What needs care are results that are *not* empty although an
//! input is: those are computed here at build time, so no kernel ever loops over an empty
//! axis to produce something.
//!
//! - a reduction over an empty set is its identity value ([`ReduceKind::empty_value`](crate::ops::ReduceKind::empty_value));
//! - a matrix product over an empty contraction (`K = 0`) is zeros (Gemm: `beta · C`);
//! - any other kernel reading a zero-element input into a non-empty output is unsupported
//!   ([`check_kernel_inputs`]), except Concat and constant Pad, which copy what there is.

use super::{Cur, Fail, LResult};
use crate::ir::{DType, TensorType, ValueId};
use crate::ops::{BinaryKind, Gemm, MatMul, Op, PadMode, Reduce};

/// Refuses a kernel whose output has elements but reads a zero-element input (its loops
/// would run over an empty axis, or index into nothing), except the ops that only copy the
/// elements present: Concat and constant Pad.
pub(super) fn check_kernel_inputs(op: &Op, inputs: &[&TensorType], out: &TensorType) -> LResult<()> {
    let copies = match op {
        Op::Concat(_) => true,
        Op::Pad(p) => p.mode == PadMode::Constant,
        _ => false,
    };
    if out.is_empty() || copies {
        return Ok(());
    }
    match inputs.iter().position(|t| t.is_empty()) {
        Some(i) => Err(Fail::Unsupported(Some(format!(
            "{} reading a zero-element input ({i}, shape {:?}) into a non-empty output",
            op.name(),
            inputs[i].shape
        )))),
        None => Ok(()),
    }
}

impl super::Ctx<'_> {
    /// A constant of type `ty` filled with the one-element `value`.
    fn filled(&mut self, c: &Cur, what: &str, ty: TensorType, value: &crate::ir::TensorData) -> LResult<ValueId> {
        let n = crate::ir::checked_len(&ty.shape)?;
        Ok(self.constant(&format!("{}/{what}", c.name), ty, value.gather(&vec![0; n])))
    }

    /// A Reduce node; a reduction over an empty set (a reduced axis of extent 0) is the
    /// constant [`ReduceKind::empty_value`](crate::ops::ReduceKind::empty_value) of the output shape instead.
    pub(super) fn reduce_node(&mut self, c: &Cur, op: Reduce, x: ValueId) -> LResult<ValueId> {
        let (dt, xs) = (self.g.ty(x).dtype, self.shape(x));
        let kind = op.kind;
        let empty = op.over_empty(&xs);
        if !(dt.is_float() || kind.integer_ok() && dt != DType::Bool || empty && dt == DType::Bool) {
            return Err(Fail::Unsupported(Some(format!("{} on {dt} tensors", kind.name()))));
        }
        if !empty {
            return self.emit(c, Op::Reduce(op), vec![x]);
        }
        if op.axes.iter().any(|&ax| ax >= xs.len()) {
            return Err(format!("axes {:?} out of range for shape {xs:?}", op.axes).into());
        }
        let value =
            kind.empty_value(dt).ok_or_else(|| Fail::Unsupported(Some(format!("{} on {dt} tensors", kind.name()))))?;
        self.filled(c, "empty_set", TensorType::new(dt, op.out_shape(&xs)), &value)
    }

    /// MatMul of `a` and `b`; over an empty contraction (`K = 0`) the product is zeros.
    pub(super) fn matmul(&mut self, c: &Cur, a: ValueId, b: ValueId) -> LResult<ValueId> {
        let op = Op::MatMul(MatMul { act: None });
        if self.shape(a).last() != Some(&0) {
            return self.emit(c, op, vec![a, b]);
        }
        let ty = op.infer(&[self.g.ty(a), self.g.ty(b)])?;
        if !op.float_kernel_for(ty.dtype) {
            return Err(Fail::Unsupported(Some(format!("MatMul on {} tensors", ty.dtype))));
        }
        let zero = crate::passes::zero_scalar(ty.dtype).ok_or("MatMul of booleans")?;
        self.filled(c, "empty_product", ty, &zero)
    }

    /// Gemm `alpha · A' B' + beta · C` (inputs `[a, b, c?]`); over an empty contraction
    /// (`K = 0`) that is `beta · C` broadcast to `[M, N]`, or zeros without `C`.
    pub(super) fn gemm(&mut self, c: &Cur, op: Op, ins: Vec<ValueId>) -> LResult<ValueId> {
        let Op::Gemm(Gemm { trans_a, beta, .. }) = op else { return self.emit(c, op, ins) };
        let k = self.shape(ins[0]).get(if trans_a { 0 } else { 1 }).copied();
        if k != Some(0) {
            return self.emit(c, op, ins);
        }
        let ty = op.infer(&ins.iter().map(|&v| self.g.ty(v)).collect::<Vec<_>>())?;
        if ty.dtype != DType::F32 {
            return Err(Fail::Unsupported(Some(format!("Gemm on {} tensors (float32 only)", ty.dtype))));
        }
        let zero = crate::ir::TensorData::F32(vec![0.0]);
        match ins.get(2) {
            Some(&bias) if beta != 0.0 => {
                let scaled = if beta == 1.0 {
                    bias
                } else {
                    let bv = crate::ir::TensorData::F32(vec![beta]);
                    let b = self.filled(c, "beta", TensorType::f32(vec![]), &bv)?;
                    self.binary(c, BinaryKind::Mul, bias, b)?
                };
                let z = self.filled(c, "empty_product", ty, &zero)?;
                self.binary(c, BinaryKind::Add, z, scaled)
            }
            _ => self.filled(c, "empty_product", ty, &zero),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::TensorData;
    use crate::ops::ReduceKind;

    #[test]
    fn empty_set_values_follow_onnx() {
        let f = |k: ReduceKind| k.empty_value(DType::F32);
        assert_eq!(f(ReduceKind::Sum), Some(TensorData::F32(vec![0.0])));
        assert_eq!(f(ReduceKind::Prod), Some(TensorData::F32(vec![1.0])));
        assert_eq!(f(ReduceKind::Max), Some(TensorData::F32(vec![f32::NEG_INFINITY])));
        assert_eq!(f(ReduceKind::Min), Some(TensorData::F32(vec![f32::INFINITY])));
        assert_eq!(f(ReduceKind::LogSumExp), Some(TensorData::F32(vec![f32::NEG_INFINITY])));
        assert!(matches!(f(ReduceKind::Mean), Some(TensorData::F32(v)) if v[0].is_nan()));
        assert_eq!(ReduceKind::Max.empty_value(DType::I32), Some(TensorData::I32(vec![i32::MIN])));
        assert_eq!(ReduceKind::Min.empty_value(DType::U8), Some(TensorData::U8(vec![255])));
        assert_eq!(ReduceKind::Max.empty_value(DType::Bool), Some(TensorData::Bool(vec![false])));
        assert_eq!(ReduceKind::Min.empty_value(DType::Bool), Some(TensorData::Bool(vec![true])));
        assert_eq!(ReduceKind::L2.empty_value(DType::I64), None);
    }

    #[test]
    fn kernels_never_read_empty_inputs_into_results() {
        let (e, x) = (TensorType::f32(vec![2, 0]), TensorType::f32(vec![2, 3]));
        let concat = Op::Concat(crate::ops::Concat { axis: 1 });
        assert!(check_kernel_inputs(&concat, &[&e, &x], &x).is_ok());
        let mm = Op::MatMul(MatMul { act: None });
        assert!(check_kernel_inputs(&mm, &[&e, &TensorType::f32(vec![0, 3])], &x).is_err());
        // Empty in, empty out: nothing runs.
        assert!(check_kernel_inputs(&mm, &[&e, &TensorType::f32(vec![0, 0])], &e).is_ok());
    }
}
