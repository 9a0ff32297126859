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

/// Constant tensor contents, row-major. `F16` / `BF16` hold bit patterns; `Low` holds
/// the one-byte-per-element storage of a low-precision type ([`DType::is_low`]): the bit
/// pattern of a float8 / float4, the sign- or zero-extended value of an int4 / int2
/// (`as i8 as u8` for the signed ones).
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F16(Vec<u16>),
    BF16(Vec<u16>),
    Low(DType, Vec<u8>),
}

/// Applies `$body` to the vector of any variant (bound as `$v`).
macro_rules! each {
    ($d:expr, $v:ident => $body:expr) => {
        match $d {
            TensorData::F32($v) => $body,
            TensorData::F64($v) => $body,
            TensorData::I8($v) => $body,
            TensorData::U8($v) => $body,
            TensorData::I32($v) => $body,
            TensorData::I64($v) => $body,
            TensorData::Bool($v) => $body,
            TensorData::I16($v) => $body,
            TensorData::U16($v) => $body,
            TensorData::U32($v) => $body,
            TensorData::U64($v) => $body,
            TensorData::F16($v) => $body,
            TensorData::BF16($v) => $body,
            TensorData::Low(_, $v) => $body,
        }
    };
}

/// Like [`each!`], rebuilding the same variant from `$body`.
macro_rules! map_each {
    ($d:expr, $v:ident => $body:expr) => {
        match $d {
            TensorData::F32($v) => TensorData::F32($body),
            TensorData::F64($v) => TensorData::F64($body),
            TensorData::I8($v) => TensorData::I8($body),
            TensorData::U8($v) => TensorData::U8($body),
            TensorData::I32($v) => TensorData::I32($body),
            TensorData::I64($v) => TensorData::I64($body),
            TensorData::Bool($v) => TensorData::Bool($body),
            TensorData::I16($v) => TensorData::I16($body),
            TensorData::U16($v) => TensorData::U16($body),
            TensorData::U32($v) => TensorData::U32($body),
            TensorData::U64($v) => TensorData::U64($body),
            TensorData::F16($v) => TensorData::F16($body),
            TensorData::BF16($v) => TensorData::BF16($body),
            TensorData::Low(t, $v) => TensorData::Low(*t, $body),
        }
    };
}

/// The integer value of a stored int4 / uint4 / int2 / uint2 byte.
pub fn low_int(t: DType, b: u8) -> i64 {
    if matches!(t, DType::I4 | DType::I2) { b as i8 as i64 } else { b as i64 }
}

/// The float32 value of a stored low-precision byte (exact).
pub fn low_to_f32(t: DType, b: u8) -> f32 {
    match t.minifloat_code() {
        Some(fmt) => modelless_rt::minifloat_to_f32(b, fmt),
        None => low_int(t, b) as f32,
    }
}

fn le<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    b.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect()
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
            TensorData::I16(_) => DType::I16,
            TensorData::U16(_) => DType::U16,
            TensorData::U32(_) => DType::U32,
            TensorData::U64(_) => DType::U64,
            TensorData::F16(_) => DType::F16,
            TensorData::BF16(_) => DType::BF16,
            TensorData::Low(t, _) => *t,
        }
    }

    pub fn len(&self) -> usize {
        each!(self, v => v.len())
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

    /// Integer view of an integer tensor (shape and axes inputs), widened to i64; `None`
    /// for floats and for uint64 values above `i64::MAX`.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        fn w<T: Copy + Into<i64>>(v: &[T]) -> Option<Vec<i64>> {
            Some(v.iter().map(|&x| x.into()).collect())
        }
        match self {
            TensorData::I64(v) => Some(v.clone()),
            TensorData::I32(v) => w(v),
            TensorData::I8(v) => w(v),
            TensorData::U8(v) => w(v),
            TensorData::I16(v) => w(v),
            TensorData::U16(v) => w(v),
            TensorData::U32(v) => w(v),
            TensorData::U64(v) => v.iter().map(|&x| i64::try_from(x).ok()).collect(),
            TensorData::Bool(v) => Some(v.iter().map(|&x| x as i64).collect()),
            TensorData::Low(t, v) if t.is_subbyte_int() => Some(v.iter().map(|&x| low_int(*t, x)).collect()),
            TensorData::F32(_)
            | TensorData::F64(_)
            | TensorData::F16(_)
            | TensorData::BF16(_)
            | TensorData::Low(..) => None,
        }
    }

    /// Wide float view of any tensor (float64 exactly, the rest converted).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            TensorData::F64(v) => v.clone(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::U64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::U32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f64).collect(),
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
            TensorData::I16(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U16(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::F16(v) => v.iter().map(|&x| modelless_rt::f16_to_f32(x)).collect(),
            TensorData::BF16(v) => v.iter().map(|&x| modelless_rt::bf16_to_f32(x)).collect(),
            TensorData::Low(t, v) => v.iter().map(|&x| low_to_f32(*t, x)).collect(),
        }
    }

    /// Row-major little-endian bytes (bool as one byte), the layout of generated code.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            TensorData::U8(v) | TensorData::Low(_, v) => v.clone(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8).collect(),
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U16(v) | TensorData::F16(v) | TensorData::BF16(v) => {
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            TensorData::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// The inverse of [`TensorData::to_le_bytes`] (trailing partial elements are dropped).
    pub fn from_le_bytes(d: DType, b: &[u8]) -> TensorData {
        match d {
            DType::F32 => TensorData::F32(le(b, f32::from_le_bytes)),
            DType::F64 => TensorData::F64(le(b, f64::from_le_bytes)),
            DType::I8 => TensorData::I8(b.iter().map(|&x| x as i8).collect()),
            DType::U8 => TensorData::U8(b.to_vec()),
            DType::I32 => TensorData::I32(le(b, i32::from_le_bytes)),
            DType::I64 => TensorData::I64(le(b, i64::from_le_bytes)),
            DType::Bool => TensorData::Bool(b.iter().map(|&x| x != 0).collect()),
            DType::I16 => TensorData::I16(le(b, i16::from_le_bytes)),
            DType::U16 => TensorData::U16(le(b, u16::from_le_bytes)),
            DType::U32 => TensorData::U32(le(b, u32::from_le_bytes)),
            DType::U64 => TensorData::U64(le(b, u64::from_le_bytes)),
            DType::F16 => TensorData::F16(le(b, u16::from_le_bytes)),
            DType::BF16 => TensorData::BF16(le(b, u16::from_le_bytes)),
            DType::F8E4M3FN
            | DType::F8E4M3FNUZ
            | DType::F8E5M2
            | DType::F8E5M2FNUZ
            | DType::F8E8M0
            | DType::F4E2M1
            | DType::I4
            | DType::U4
            | DType::I2
            | DType::U2 => TensorData::Low(d, b.to_vec()),
        }
    }

    /// Reorders elements: `out[i] = self[src[i]]`.
    pub fn gather(&self, src: &[usize]) -> TensorData {
        map_each!(self, v => src.iter().map(|&i| v[i]).collect())
    }
}
