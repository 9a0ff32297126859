//! Tensor types and constant tensor data.

use super::dtype::{DType, Quant};

/// Static type of a value: element type, fixed shape and optional quantization.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub quant: Option<Quant>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Vec<usize>) -> TensorType {
        TensorType { dtype, shape, quant: None }
    }

    pub fn f32(shape: Vec<usize>) -> TensorType {
        TensorType::new(DType::F32, shape)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> usize {
        self.len() * self.dtype.size()
    }
}

/// The largest tensor (in elements) modelless handles; larger shapes are refused before
/// anything is allocated.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Number of elements of `shape`, or an error when the product overflows or exceeds
/// [`MAX_ELEMENTS`] (hostile or broken models declaring huge tensors).
pub fn checked_len(shape: &[usize]) -> Result<usize, String> {
    match shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) {
        Some(n) if n <= MAX_ELEMENTS => Ok(n),
        _ => Err(format!("shape {shape:?} has more than 2^31 elements, more than modelless handles")),
    }
}

/// Formats a shape as `1x3x32x32` (`scalar` for rank 0).
pub fn shape_str(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "scalar".into();
    }
    shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// Constant tensor contents, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::I8(_) => DType::I8,
            TensorData::U8(_) => DType::U8,
            TensorData::I32(_) => DType::I32,
            TensorData::I64(_) => DType::I64,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Integer view of an integer tensor (shape and axes inputs), widened to i64.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        match self {
            TensorData::I64(v) => Some(v.clone()),
            TensorData::I32(v) => Some(v.iter().map(|&x| x as i64).collect()),
            TensorData::I8(v) => Some(v.iter().map(|&x| x as i64).collect()),
            TensorData::U8(v) => Some(v.iter().map(|&x| x as i64).collect()),
            TensorData::Bool(v) => Some(v.iter().map(|&x| x as i64).collect()),
            TensorData::F32(_) | TensorData::F64(_) => None,
        }
    }

    /// Wide float view of any tensor (float64 exactly, the rest converted).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            TensorData::F64(v) => v.clone(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            other => other.to_f32().iter().map(|&x| x as f64).collect(),
        }
    }

    /// Float view of any tensor (used for scalar attributes given as inputs).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            TensorData::F32(v) => v.clone(),
            TensorData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
        }
    }

    /// Row-major little-endian bytes (bool as one byte), the layout of generated code.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            TensorData::U8(v) => v.clone(),
            TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8).collect(),
        }
    }

    /// The inverse of [`TensorData::to_le_bytes`] (trailing partial elements are dropped).
    pub fn from_le_bytes(d: DType, b: &[u8]) -> TensorData {
        match d {
            DType::F32 => {
                TensorData::F32(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            DType::F64 => TensorData::F64(
                b.chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            DType::I8 => TensorData::I8(b.iter().map(|&x| x as i8).collect()),
            DType::U8 => TensorData::U8(b.to_vec()),
            DType::I32 => {
                TensorData::I32(b.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            DType::I64 => TensorData::I64(
                b.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            DType::Bool => TensorData::Bool(b.iter().map(|&x| x != 0).collect()),
        }
    }

    /// Reorders elements: `out[i] = self[src[i]]`.
    pub fn gather(&self, src: &[usize]) -> TensorData {
        fn g<T: Copy>(v: &[T], src: &[usize]) -> Vec<T> {
            src.iter().map(|&i| v[i]).collect()
        }
        match self {
            TensorData::F32(v) => TensorData::F32(g(v, src)),
            TensorData::F64(v) => TensorData::F64(g(v, src)),
            TensorData::I8(v) => TensorData::I8(g(v, src)),
            TensorData::U8(v) => TensorData::U8(g(v, src)),
            TensorData::I32(v) => TensorData::I32(g(v, src)),
            TensorData::I64(v) => TensorData::I64(g(v, src)),
            TensorData::Bool(v) => TensorData::Bool(g(v, src)),
        }
    }
}
