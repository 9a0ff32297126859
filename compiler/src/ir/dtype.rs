//! Element types and quantization parameters.

/// Element type of a tensor.
///
/// `F16` and `BF16` are stored as their 16-bit patterns (`uint16_t` / `u16` in generated
/// code); kernels compute on them in float32 (see `mlrt_f16_to_f32` / `rt::f16_to_f32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F64,
    I8,
    U8,
    I32,
    I64,
    Bool,
    I16,
    U16,
    U32,
    U64,
    /// IEEE 754 binary16, stored as its bit pattern.
    F16,
    /// bfloat16 (the upper half of a float32), stored as its bit pattern.
    BF16,
    /// 8-bit floats (OCP / "fnuz" variants), stored as their bit pattern, one per byte.
    F8E4M3FN,
    F8E4M3FNUZ,
    F8E5M2,
    F8E5M2FNUZ,
    /// Power-of-two scale format (exponent only), stored as its bit pattern.
    F8E8M0,
    /// 4-bit float, stored as its bit pattern in the low nibble of a byte.
    F4E2M1,
    /// 4- and 2-bit integers, one per byte: signed ones sign-extended (`int8_t` / `i8`),
    /// unsigned ones zero-extended (`uint8_t` / `u8`). Packed only in ONNX files.
    I4,
    U4,
    I2,
    U2,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F8E4M3FN
            | DType::F8E4M3FNUZ
            | DType::F8E5M2
            | DType::F8E5M2FNUZ
            | DType::F8E8M0
            | DType::F4E2M1
            | DType::I4
            | DType::U4
            | DType::I2
            | DType::U2 => 1,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 2,
            DType::I64 | DType::F64 | DType::U64 => 8,
        }
    }

    /// Floating point (float32 or float64).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The 16-bit float formats, stored as bit patterns and computed in float32.
    pub fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }

    /// The sub-16-bit float formats (8- and 4-bit), stored as bit patterns (`uint8_t`).
    pub fn is_minifloat(self) -> bool {
        matches!(
            self,
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F8E8M0 | DType::F4E2M1
        )
    }

    /// The `modelless_rt::MF_*` format code of a minifloat type.
    pub fn minifloat_code(self) -> Option<u8> {
        Some(match self {
            DType::F8E4M3FN => modelless_rt::MF_E4M3FN,
            DType::F8E4M3FNUZ => modelless_rt::MF_E4M3FNUZ,
            DType::F8E5M2 => modelless_rt::MF_E5M2,
            DType::F8E5M2FNUZ => modelless_rt::MF_E5M2FNUZ,
            DType::F4E2M1 => modelless_rt::MF_E2M1,
            DType::F8E8M0 => modelless_rt::MF_E8M0,
            _ => return None,
        })
    }

    /// Bits per element in ONNX's packed storage (4 for int4 / uint4 / float4, 2 for
    /// int2 / uint2), `None` for byte-aligned types.
    pub fn packed_bits(self) -> Option<u32> {
        match self {
            DType::I4 | DType::U4 | DType::F4E2M1 => Some(4),
            DType::I2 | DType::U2 => Some(2),
            _ => None,
        }
    }

    /// 4- and 2-bit integers (stored one per byte).
    pub fn is_subbyte_int(self) -> bool {
        matches!(self, DType::I4 | DType::U4 | DType::I2 | DType::U2)
    }

    /// The low-precision types ([`DType::is_minifloat`] and [`DType::is_subbyte_int`]):
    /// only conversions (Cast, QuantizeLinear / DequantizeLinear) and data movement
    /// handle them.
    pub fn is_low(self) -> bool {
        self.is_minifloat() || self.is_subbyte_int()
    }

    /// Integer types (not bool).
    pub fn is_int(self) -> bool {
        matches!(
            self,
            DType::I8 | DType::U8 | DType::I16 | DType::U16 | DType::I32 | DType::U32 | DType::I64 | DType::U64
        )
    }

    /// Unsigned integer types.
    pub fn is_unsigned(self) -> bool {
        matches!(self, DType::U8 | DType::U16 | DType::U32 | DType::U64)
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
            DType::I16 => "i16",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F8E4M3FN => "f8e4m3fn",
            DType::F8E4M3FNUZ => "f8e4m3fnuz",
            DType::F8E5M2 => "f8e5m2",
            DType::F8E5M2FNUZ => "f8e5m2fnuz",
            DType::F8E8M0 => "f8e8m0",
            DType::F4E2M1 => "f4e2m1",
            DType::I4 => "i4",
            DType::U4 => "u4",
            DType::I2 => "i2",
            DType::U2 => "u2",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Affine quantization: `real = scale * (q - zero_point)`, per tensor (`axis == None`,
/// one scale) or per channel along `axis` (one scale and zero point per channel).
#[derive(Debug, Clone, PartialEq)]
pub struct Quant {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i32>,
    pub axis: Option<usize>,
}
