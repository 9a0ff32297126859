//! 16-bit floats (float16, bfloat16). The IR stores them as bit patterns and only Cast
//! converts them (exactly to float32; back with round-to-nearest-even). Every other node
//! reading one is lowered in float32: its 16-bit inputs are widened (constants at build
//! time), the node lowers as usual, and its float32 outputs are rounded back to the 16-bit
//! type. An elementwise result thus equals computing each element in float32 and rounding
//! once; reductions and products accumulate in float32.

use super::{Cur, LResult};
use crate::ir::{DType, TensorType, ValueId};
use crate::ops::{Cast, Op};

/// ONNX ops that handle 16-bit floats themselves (conversions) or whose float outputs are
/// not of their inputs' float type (an explicit output type attribute).
fn native(c: &Cur) -> bool {
    matches!(c.p.op_type.as_str(), "Cast" | "CastLike")
        || c.p.attribute.iter().any(|a| {
            matches!(a.name.as_str(), "to" | "dtype") || a.name == "output_dtype" && c.p.op_type == "DequantizeLinear"
        })
}

impl super::Ctx<'_> {
    /// Lowers node `c` in float32 if it reads 16-bit floats (see the module documentation);
    /// `None` when it does not.
    pub(super) fn dispatch_half(&mut self, c: &Cur) -> Option<LResult<Vec<ValueId>>> {
        let half = c.ins.iter().flatten().map(|&v| self.g.ty(v).dtype).find(|d| d.is_half())?;
        if native(c) {
            return None;
        }
        Some(self.lower_in_f32(c, half))
    }

    fn lower_in_f32(&mut self, c: &Cur, half: DType) -> LResult<Vec<ValueId>> {
        let mut ins = Vec::with_capacity(c.ins.len());
        for &v in &c.ins {
            ins.push(match v {
                Some(v) if self.g.ty(v).dtype.is_half() => Some(self.convert(c, v, DType::F32)?),
                other => other,
            });
        }
        let wide = Cur { p: c.p, name: c.name.clone(), ins };
        let outs = self.dispatch(&wide)?;
        outs.into_iter()
            .map(|v| if self.g.ty(v).dtype == DType::F32 { self.convert(c, v, half) } else { Ok(v) })
            .collect()
    }

    /// `v` as type `to`: a converted constant, or a Cast node.
    fn convert(&mut self, c: &Cur, v: ValueId, to: DType) -> LResult<ValueId> {
        if let Some(d) = self.g.data(v) {
            let data = d.cast_to(to);
            let ty = TensorType::new(to, self.g.ty(v).shape.clone());
            return Ok(self.constant(&format!("{}/{to}", c.name), ty, data));
        }
        self.emit(c, Op::Cast(Cast::to(to)), vec![v])
    }
}
