//! Element type conversion of constant tensors, with the semantics of the generated Cast
//! kernels (a C cast): float → integer truncates toward zero (saturating here, where C
//! leaves out-of-range values undefined), integer → integer wraps, anything → bool is
//! `!= 0`, bool → number is 0 or 1. 16-bit floats convert through float32, rounding to
//! nearest even ([`modelless_rt::f32_to_f16`]); so do float8 / float4
//! ([`modelless_rt::f32_to_minifloat`], saturating or not, and E8M0 by its rounding mode).
//! int4 / int2 wrap like the other integers.

use super::{DType, TensorData, low_int};

/// How a conversion to a float8 / float4 handles out-of-range values, and E8M0 rounds.
#[derive(Clone, Copy)]
struct Mode {
    saturate: bool,
    round: u8,
}

/// `x` (already truncated to an integer) wrapped into a 4- / 2-bit type's storage byte.
fn wrap_low(to: DType, x: i128) -> u8 {
    match to {
        DType::I4 => ((((x & 15) ^ 8) - 8) as i8) as u8,
        DType::U4 => (x & 15) as u8,
        DType::I2 => ((((x & 3) ^ 2) - 2) as i8) as u8,
        _ => (x & 3) as u8,
    }
}

/// A float32 value encoded in minifloat type `to`.
fn encode_mf(to: DType, x: f32, m: Mode) -> u8 {
    match to.minifloat_code() {
        Some(modelless_rt::MF_E8M0) => modelless_rt::f32_to_e8m0(x, m.saturate, m.round),
        Some(fmt) => modelless_rt::f32_to_minifloat(x, fmt, m.saturate),
        None => 0,
    }
}

/// Any tensor's elements as exact integers (`None` for float types).
fn ints(d: &TensorData) -> Option<Vec<i128>> {
    fn w<T: Copy + Into<i128>>(v: &[T]) -> Option<Vec<i128>> {
        Some(v.iter().map(|&x| x.into()).collect())
    }
    match d {
        TensorData::I8(v) => w(v),
        TensorData::U8(v) => w(v),
        TensorData::I16(v) => w(v),
        TensorData::U16(v) => w(v),
        TensorData::I32(v) => w(v),
        TensorData::U32(v) => w(v),
        TensorData::I64(v) => w(v),
        TensorData::U64(v) => w(v),
        TensorData::Bool(v) => Some(v.iter().map(|&b| b as i128).collect()),
        TensorData::Low(t, v) if t.is_subbyte_int() => Some(v.iter().map(|&b| low_int(*t, b) as i128).collect()),
        TensorData::F32(_) | TensorData::F64(_) | TensorData::F16(_) | TensorData::BF16(_) | TensorData::Low(..) => {
            None
        }
    }
}

/// Integers to type `to`, wrapping like a C assignment (nonzero is `true`).
fn from_ints(to: DType, v: &[i128], m: Mode) -> TensorData {
    match to {
        t if t.is_subbyte_int() => TensorData::Low(t, v.iter().map(|&x| wrap_low(t, x)).collect()),
        t if t.is_minifloat() => TensorData::Low(t, v.iter().map(|&x| encode_mf(t, x as f32, m)).collect()),
        DType::I8 => TensorData::I8(v.iter().map(|&x| x as i8).collect()),
        DType::U8 => TensorData::U8(v.iter().map(|&x| x as u8).collect()),
        DType::I16 => TensorData::I16(v.iter().map(|&x| x as i16).collect()),
        DType::U16 => TensorData::U16(v.iter().map(|&x| x as u16).collect()),
        DType::I32 => TensorData::I32(v.iter().map(|&x| x as i32).collect()),
        DType::U32 => TensorData::U32(v.iter().map(|&x| x as u32).collect()),
        DType::I64 => TensorData::I64(v.iter().map(|&x| x as i64).collect()),
        DType::U64 => TensorData::U64(v.iter().map(|&x| x as u64).collect()),
        DType::Bool => TensorData::Bool(v.iter().map(|&x| x != 0).collect()),
        DType::F64 => TensorData::F64(v.iter().map(|&x| x as f64).collect()),
        DType::F32 => TensorData::F32(v.iter().map(|&x| x as f32).collect()),
        DType::F16 => TensorData::F16(v.iter().map(|&x| modelless_rt::f32_to_f16(x as f32)).collect()),
        DType::BF16 => TensorData::BF16(v.iter().map(|&x| modelless_rt::f32_to_bf16(x as f32)).collect()),
        t => TensorData::Low(t, vec![0; v.len()]),
    }
}

/// Floats (exact float64 values) to type `to`; float64 reaches the 16-bit floats through
/// float32, as the generated code does.
fn from_floats(to: DType, v: &[f64], m: Mode) -> TensorData {
    match to {
        t if t.is_subbyte_int() => TensorData::Low(t, v.iter().map(|&x| wrap_low(t, x as i64 as i128)).collect()),
        t if t.is_minifloat() => TensorData::Low(t, v.iter().map(|&x| encode_mf(t, x as f32, m)).collect()),
        DType::F64 => TensorData::F64(v.to_vec()),
        DType::F32 => TensorData::F32(v.iter().map(|&x| x as f32).collect()),
        DType::F16 => TensorData::F16(v.iter().map(|&x| modelless_rt::f32_to_f16(x as f32)).collect()),
        DType::BF16 => TensorData::BF16(v.iter().map(|&x| modelless_rt::f32_to_bf16(x as f32)).collect()),
        DType::Bool => TensorData::Bool(v.iter().map(|&x| x != 0.0).collect()),
        DType::I8 => TensorData::I8(v.iter().map(|&x| x as i8).collect()),
        DType::U8 => TensorData::U8(v.iter().map(|&x| x as u8).collect()),
        DType::I16 => TensorData::I16(v.iter().map(|&x| x as i16).collect()),
        DType::U16 => TensorData::U16(v.iter().map(|&x| x as u16).collect()),
        DType::I32 => TensorData::I32(v.iter().map(|&x| x as i32).collect()),
        DType::U32 => TensorData::U32(v.iter().map(|&x| x as u32).collect()),
        DType::I64 => TensorData::I64(v.iter().map(|&x| x as i64).collect()),
        DType::U64 => TensorData::U64(v.iter().map(|&x| x as u64).collect()),
        t => TensorData::Low(t, vec![0; v.len()]),
    }
}

impl TensorData {
    /// The elements converted to type `to` (see the module documentation).
    pub fn cast_to(&self, to: DType) -> TensorData {
        self.cast_to_with(to, true, modelless_rt::E8M0_UP)
    }

    /// [`TensorData::cast_to`] with ONNX Cast's `saturate` (float8 targets) and E8M0
    /// `round_mode` (`modelless_rt::E8M0_*`).
    pub fn cast_to_with(&self, to: DType, saturate: bool, round: u8) -> TensorData {
        if self.dtype() == to {
            return self.clone();
        }
        let m = Mode { saturate, round };
        match ints(self) {
            Some(v) => from_ints(to, &v, m),
            // Every float32 / float16 / bfloat16 / float8 / float4 value is exact in float64.
            None => from_floats(to, &self.to_f64(), m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_wrap_truncate_and_round_to_even() {
        let x = TensorData::F32(vec![1.5, -2.7, 65520.0, 1.0 + 1.0 / 2048.0]);
        assert_eq!(x.cast_to(DType::I16), TensorData::I16(vec![1, -2, i16::MAX, 1]));
        assert_eq!(x.cast_to(DType::F16), TensorData::F16(vec![0x3e00, 0xc166, 0x7c00, 0x3c00]));
        let u = TensorData::U64(vec![u64::MAX, 3]);
        assert_eq!(u.cast_to(DType::I32), TensorData::I32(vec![-1, 3]));
        assert_eq!(u.cast_to(DType::U16), TensorData::U16(vec![0xffff, 3]));
        assert_eq!(TensorData::F16(vec![0x3e00]).cast_to(DType::F64), TensorData::F64(vec![1.5]));
        assert_eq!(TensorData::I16(vec![-1]).cast_to(DType::U32), TensorData::U32(vec![u32::MAX]));
    }

    #[test]
    fn low_precision_casts_saturate_wrap_and_round() {
        let x = TensorData::F32(vec![0.48, 1e6, -1e-7, f32::NAN, -9.0, 3.5]);
        let f8 = x.cast_to(DType::F8E4M3FN);
        assert_eq!(f8, TensorData::Low(DType::F8E4M3FN, vec![0x2f, 0x7e, 0x80, 0x7f, 0xd1, 0x46]));
        assert_eq!(x.cast_to_with(DType::F8E4M3FN, false, 0).to_le_bytes()[1], 0x7f);
        assert_eq!(x.cast_to_with(DType::F8E5M2, false, 0).to_le_bytes()[1], 0x7c);
        // int4 / int2 truncate and wrap like C; stored sign-extended.
        assert_eq!(x.cast_to(DType::I4).to_i64().unwrap()[4..], [7, 3]);
        assert_eq!(TensorData::I32(vec![-3, 2, 15]).cast_to(DType::U2).to_i64().unwrap(), [1, 2, 3]);
        assert_eq!(TensorData::I32(vec![-3, 2]).cast_to(DType::I2).to_i64().unwrap(), [1, -2]);
        // Back to float exactly; E8M0 rounds up by default.
        assert_eq!(f8.cast_to(DType::F32).to_f32()[5], 3.5);
        assert_eq!(TensorData::F32(vec![0.124, 1.1]).cast_to(DType::F8E8M0).to_le_bytes(), [0x7c, 0x80]);
        assert_eq!(
            TensorData::F32(vec![1.1]).cast_to_with(DType::F8E8M0, true, modelless_rt::E8M0_DOWN).to_le_bytes(),
            [0x7f]
        );
    }
}
