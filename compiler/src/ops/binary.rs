//! Elementwise binary arithmetic with broadcasting.

use super::Act;
use super::broadcast::{broadcast_index_map, broadcast_shapes};
use crate::ir::{DType, TensorData, TensorType};

/// The elementwise binary functions. Arithmetic keeps the input type; comparisons and
/// logic produce booleans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
    /// `a^b` (float32).
    Pow,
    /// Remainder: sign of the divisor (`fmod == false`, integers) or of the dividend (`fmod`,
    /// integers, float32 and float64). Float Mod with `fmod == 0` is lowered to `fmod`.
    Mod {
        fmod: bool,
    },
    Min,
    Max,
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    And,
    Or,
    Xor,
    /// `a < 0 ? a * b : a` (float32).
    PRelu,
}

impl BinaryKind {
    pub fn name(self) -> &'static str {
        match self {
            BinaryKind::Add => "Add",
            BinaryKind::Sub => "Sub",
            BinaryKind::Mul => "Mul",
            BinaryKind::Div => "Div",
            BinaryKind::Pow => "Pow",
            BinaryKind::Mod { .. } => "Mod",
            BinaryKind::Min => "Min",
            BinaryKind::Max => "Max",
            BinaryKind::Equal => "Equal",
            BinaryKind::Less => "Less",
            BinaryKind::Greater => "Greater",
            BinaryKind::LessOrEqual => "LessOrEqual",
            BinaryKind::GreaterOrEqual => "GreaterOrEqual",
            BinaryKind::And => "And",
            BinaryKind::Or => "Or",
            BinaryKind::Xor => "Xor",
            BinaryKind::PRelu => "PRelu",
        }
    }

    /// Comparisons and logic produce booleans.
    pub fn is_predicate(self) -> bool {
        matches!(
            self,
            BinaryKind::Equal
                | BinaryKind::Less
                | BinaryKind::Greater
                | BinaryKind::LessOrEqual
                | BinaryKind::GreaterOrEqual
                | BinaryKind::And
                | BinaryKind::Or
                | BinaryKind::Xor
        )
    }

    /// Which input element types the kind accepts.
    /// 16-bit floats are lowered to float32 arithmetic in the frontend.
    pub fn accepts(self, d: DType) -> bool {
        if d.is_half() {
            return false;
        }
        match self {
            BinaryKind::And | BinaryKind::Or | BinaryKind::Xor => d == DType::Bool,
            BinaryKind::Pow | BinaryKind::PRelu => d == DType::F32,
            BinaryKind::Equal => true,
            BinaryKind::Mod { fmod: false } => d != DType::Bool && !d.is_float(),
            _ => d != DType::Bool,
        }
    }

    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
            BinaryKind::Pow => a.powf(b),
            BinaryKind::Mod { .. } => a % b,
            BinaryKind::Min => a.min(b),
            BinaryKind::Max => a.max(b),
            BinaryKind::PRelu => {
                if a < 0.0 {
                    a * b
                } else {
                    a
                }
            }
            _ => f32::NAN,
        }
    }

    /// Float64 arithmetic (`None` for the kinds float64 does not take).
    pub fn apply64(self, a: f64, b: f64) -> Option<f64> {
        Some(match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
            BinaryKind::Mod { fmod: true } => a % b,
            BinaryKind::Min => a.min(b),
            BinaryKind::Max => a.max(b),
            _ => return None,
        })
    }

    fn apply_i64(self, a: i64, b: i64) -> Option<i64> {
        match self {
            BinaryKind::Add => a.checked_add(b),
            BinaryKind::Sub => a.checked_sub(b),
            BinaryKind::Mul => a.checked_mul(b),
            BinaryKind::Div => a.checked_div(b),
            BinaryKind::Min => Some(a.min(b)),
            BinaryKind::Max => Some(a.max(b)),
            _ => None,
        }
    }
}

/// `y = act(a OP b)`; `a` and `b` broadcast to `y`'s shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Binary {
    pub kind: BinaryKind,
    pub act: Option<Act>,
}

impl Binary {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        super::expect_inputs(inputs, 2, 2)?;
        if inputs[0].dtype != inputs[1].dtype {
            return Err(format!("input types differ: {} and {}", inputs[0].dtype, inputs[1].dtype));
        }
        if !self.kind.accepts(inputs[0].dtype) {
            return Err(format!("{} does not take {} tensors", self.kind.name(), inputs[0].dtype));
        }
        let dtype = if self.kind.is_predicate() { DType::Bool } else { inputs[0].dtype };
        Ok(TensorType::new(dtype, broadcast_shapes(&inputs[0].shape, &inputs[1].shape)?))
    }

    pub fn eval(&self, inputs: &[(&TensorType, &TensorData)], out: &TensorType) -> Option<TensorData> {
        let [(ta, a), (tb, b)] = inputs else {
            return None;
        };
        let ma = broadcast_index_map(&ta.shape, &out.shape);
        let mb = broadcast_index_map(&tb.shape, &out.shape);
        match out.dtype {
            DType::F32 if !self.kind.is_predicate() => {
                let (a, b) = (a.as_f32()?, b.as_f32()?);
                let y = ma.iter().zip(&mb).map(|(&i, &j)| {
                    let v = self.kind.apply(a[i], b[j]);
                    self.act.map_or(v, |f| f.apply(v))
                });
                Some(TensorData::F32(y.collect()))
            }
            DType::F64 if self.act.is_none() => {
                let (TensorData::F64(a), TensorData::F64(b)) = (a, b) else { return None };
                let y: Option<Vec<f64>> = ma.iter().zip(&mb).map(|(&i, &j)| self.kind.apply64(a[i], b[j])).collect();
                Some(TensorData::F64(y?))
            }
            DType::I64 if self.act.is_none() => {
                let (a, b) = (a.to_i64()?, b.to_i64()?);
                let y: Option<Vec<i64>> = ma.iter().zip(&mb).map(|(&i, &j)| self.kind.apply_i64(a[i], b[j])).collect();
                Some(TensorData::I64(y?))
            }
            _ => None,
        }
    }
}
