//! Elementwise binary arithmetic with broadcasting.

use super::Act;
use super::broadcast::{broadcast_index_map, broadcast_shapes};
use crate::ir::{DType, TensorData, TensorType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryKind {
    pub fn name(self) -> &'static str {
        match self {
            BinaryKind::Add => "Add",
            BinaryKind::Sub => "Sub",
            BinaryKind::Mul => "Mul",
            BinaryKind::Div => "Div",
        }
    }

    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
        }
    }

    fn apply_i64(self, a: i64, b: i64) -> Option<i64> {
        match self {
            BinaryKind::Add => a.checked_add(b),
            BinaryKind::Sub => a.checked_sub(b),
            BinaryKind::Mul => a.checked_mul(b),
            BinaryKind::Div => a.checked_div(b),
        }
    }

    /// The C / Rust infix operator.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryKind::Add => "+",
            BinaryKind::Sub => "-",
            BinaryKind::Mul => "*",
            BinaryKind::Div => "/",
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
        Ok(TensorType::new(inputs[0].dtype, broadcast_shapes(&inputs[0].shape, &inputs[1].shape)?))
    }

    pub fn eval(&self, inputs: &[(&TensorType, &TensorData)], out: &TensorType) -> Option<TensorData> {
        let [(ta, a), (tb, b)] = inputs else {
            return None;
        };
        let ma = broadcast_index_map(&ta.shape, &out.shape);
        let mb = broadcast_index_map(&tb.shape, &out.shape);
        match out.dtype {
            DType::F32 => {
                let (a, b) = (a.as_f32()?, b.as_f32()?);
                let y = ma.iter().zip(&mb).map(|(&i, &j)| {
                    let v = self.kind.apply(a[i], b[j]);
                    self.act.map_or(v, |f| f.apply(v))
                });
                Some(TensorData::F32(y.collect()))
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
