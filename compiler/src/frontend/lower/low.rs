//! Low-precision types (float8, float4, int4, int2; [`DType::is_low`]). The IR stores
//! them one element per byte and only conversions handle them: Cast / CastLike, and
//! QuantizeLinear / DequantizeLinear (float8 through float32 Casts, int4 / int2 as
//! integers), plus the ops that only rename or reshape a tensor. Any other node reading
//! or producing one is unsupported (rather than computing wrong numbers on bit patterns).

use super::{Cur, Fail, LResult};
use crate::ir::{DType, ValueId};

/// ONNX ops that handle low-precision tensors.
fn native(op: &str) -> bool {
    matches!(
        op,
        "Cast"
            | "CastLike"
            | "QuantizeLinear"
            | "DequantizeLinear"
            | "Identity"
            | "Reshape"
            | "Flatten"
            | "Squeeze"
            | "Unsqueeze"
            | "Constant"
    )
}

impl super::Ctx<'_> {
    /// Lowers node `c` with [`Self::dispatch_half`] / [`Self::dispatch`], failing as
    /// unsupported when a node other than the [`native`] ones reads or writes a
    /// low-precision type.
    pub(super) fn dispatch_checked(&mut self, c: &Cur) -> LResult<Vec<ValueId>> {
        let native = native(c.p.op_type.as_str());
        let low = |this: &Self, vs: &mut dyn Iterator<Item = ValueId>| -> Option<DType> {
            vs.map(|v| this.g.ty(v).dtype).find(|d| d.is_low())
        };
        if !native && let Some(d) = low(self, &mut c.ins.iter().flatten().copied()) {
            return Err(Fail::Unsupported(Some(format!("{d} input (low-precision types reach only conversions)"))));
        }
        let outs = self.dispatch_half(c).unwrap_or_else(|| self.dispatch(c))?;
        if !native && let Some(d) = low(self, &mut outs.iter().copied()) {
            return Err(Fail::Unsupported(Some(format!(
                "{d} output (low-precision types come only from conversions)"
            ))));
        }
        Ok(outs)
    }
}
