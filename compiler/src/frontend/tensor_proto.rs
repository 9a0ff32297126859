//! ONNX TensorProto → IR tensor (type + data).

use crate::ir::{DType, TensorData, TensorType};
use tract_onnx::pb::TensorProto;

/// ONNX `TensorProto.DataType` codes the IR can hold.
pub(crate) fn dtype_from_onnx(code: i32) -> Result<DType, String> {
    Ok(match code {
        1 => DType::F32,
        2 => DType::U8,
        3 => DType::I8,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::Bool,
        11 => DType::F64,
        4 => DType::U16,
        5 => DType::I16,
        10 => DType::F16,
        12 => DType::U32,
        13 => DType::U64,
        16 => DType::BF16,
        17 => DType::F8E4M3FN,
        18 => DType::F8E4M3FNUZ,
        19 => DType::F8E5M2,
        20 => DType::F8E5M2FNUZ,
        21 => DType::U4,
        22 => DType::I4,
        23 => DType::F4E2M1,
        24 => DType::F8E8M0,
        25 => DType::U2,
        26 => DType::I2,
        other => {
            return Err(format!(
                "element type {} is not supported (supported: float, double, float16, bfloat16, \
                 float8 (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz, e8m0), float4e2m1, int2/4/8/16/32/64, \
                 uint2/4/8/16/32/64, bool)",
                onnx_type_name(other)
            ));
        }
    })
}

fn onnx_type_name(code: i32) -> String {
    let names = [
        "undefined",
        "float",
        "uint8",
        "int8",
        "uint16",
        "int16",
        "int32",
        "int64",
        "string",
        "bool",
        "float16",
        "double",
        "uint32",
        "uint64",
        "complex64",
        "complex128",
        "bfloat16",
        "float8e4m3fn",
        "float8e4m3fnuz",
        "float8e5m2",
        "float8e5m2fnuz",
        "uint4",
        "int4",
        "float4e2m1",
        "float8e8m0",
        "uint2",
        "int2",
    ];
    usize::try_from(code).ok().and_then(|i| names.get(i)).map_or_else(|| format!("#{code}"), |s| s.to_string())
}

fn chunks<const N: usize, T>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Result<Vec<T>, String> {
    if !raw.len().is_multiple_of(N) {
        return Err(format!("raw_data has {} bytes, not a multiple of {N}", raw.len()));
    }
    Ok(raw.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect())
}

/// Decodes a TensorProto (raw_data or typed fields; external data is resolved by the
/// caller into `external`).
pub(crate) fn decode(t: &TensorProto, external: Option<&[u8]>) -> Result<(TensorType, TensorData), String> {
    let dtype = dtype_from_onnx(t.data_type)?;
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or("its shape has too many elements")?;
    if count > (1 << 31) {
        return Err(format!("its shape {shape:?} has {count} elements, more than modelless handles"));
    }
    let raw: &[u8] = external.unwrap_or(&t.raw_data);
    let has_raw = !raw.is_empty() || external.is_some();
    let data = match dtype {
        DType::F32 if has_raw => TensorData::F32(chunks::<4, _>(raw, f32::from_le_bytes)?),
        DType::F32 => TensorData::F32(t.float_data.clone()),
        DType::F64 if has_raw => TensorData::F64(chunks::<8, _>(raw, f64::from_le_bytes)?),
        DType::F64 => TensorData::F64(t.double_data.clone()),
        DType::I64 if has_raw => TensorData::I64(chunks::<8, _>(raw, i64::from_le_bytes)?),
        DType::I64 => TensorData::I64(t.int64_data.clone()),
        DType::I32 if has_raw => TensorData::I32(chunks::<4, _>(raw, i32::from_le_bytes)?),
        DType::I32 => TensorData::I32(t.int32_data.clone()),
        DType::I8 if has_raw => TensorData::I8(raw.iter().map(|&b| b as i8).collect()),
        DType::I8 => TensorData::I8(t.int32_data.iter().map(|&v| v as i8).collect()),
        DType::U8 if has_raw => TensorData::U8(raw.to_vec()),
        DType::U8 => TensorData::U8(t.int32_data.iter().map(|&v| v as u8).collect()),
        DType::Bool if has_raw => TensorData::Bool(raw.iter().map(|&b| b != 0).collect()),
        DType::Bool => TensorData::Bool(t.int32_data.iter().map(|&v| v != 0).collect()),
        // int16, uint16 and the 16-bit floats (bit patterns) live in int32_data; uint32 and
        // uint64 in uint64_data.
        DType::I16 if has_raw => TensorData::I16(chunks::<2, _>(raw, i16::from_le_bytes)?),
        DType::I16 => TensorData::I16(t.int32_data.iter().map(|&v| v as i16).collect()),
        DType::U16 if has_raw => TensorData::U16(chunks::<2, _>(raw, u16::from_le_bytes)?),
        DType::U16 => TensorData::U16(t.int32_data.iter().map(|&v| v as u16).collect()),
        DType::F16 if has_raw => TensorData::F16(chunks::<2, _>(raw, u16::from_le_bytes)?),
        DType::F16 => TensorData::F16(t.int32_data.iter().map(|&v| v as u16).collect()),
        DType::BF16 if has_raw => TensorData::BF16(chunks::<2, _>(raw, u16::from_le_bytes)?),
        DType::BF16 => TensorData::BF16(t.int32_data.iter().map(|&v| v as u16).collect()),
        DType::U32 if has_raw => TensorData::U32(chunks::<4, _>(raw, u32::from_le_bytes)?),
        DType::U32 => TensorData::U32(t.uint64_data.iter().map(|&v| v as u32).collect()),
        DType::U64 if has_raw => TensorData::U64(chunks::<8, _>(raw, u64::from_le_bytes)?),
        DType::U64 => TensorData::U64(t.uint64_data.clone()),
        // float8: one bit pattern per byte of raw_data or per int32_data entry. The 4- and
        // 2-bit types pack 2 / 4 elements per byte, low bits first (int32_data holds the
        // packed bytes); they are unpacked to one element per byte.
        d if d.is_low() => {
            let bytes: Vec<u8> = if has_raw { raw.to_vec() } else { t.int32_data.iter().map(|&v| v as u8).collect() };
            TensorData::Low(d, unpack_low(d, &bytes, count))
        }
        d => return Err(format!("element type {d} cannot be decoded")),
    };
    let ty = TensorType::new(dtype, shape);
    if data.len() != ty.len() {
        return Err(format!("holds {} elements but its shape {:?} needs {}", data.len(), ty.shape, ty.len()));
    }
    Ok((ty, data))
}

/// One byte per element of type `d` from ONNX's storage (`count` elements): float8 as is,
/// 4- / 2-bit elements unpacked low bits first, int4 / int2 sign-extended.
pub(crate) fn unpack_low(d: DType, bytes: &[u8], count: usize) -> Vec<u8> {
    let Some(bits) = d.packed_bits() else { return bytes.to_vec() };
    let per = (8 / bits) as usize;
    let mask = (1u8 << bits) - 1;
    let signed = matches!(d, DType::I4 | DType::I2);
    (0..count.min(bytes.len() * per))
        .map(|i| {
            let v = (bytes[i / per] >> ((i % per) as u32 * bits)) & mask;
            if signed && v & (1 << (bits - 1)) != 0 { v | !mask } else { v }
        })
        .collect()
}

/// Reads a serialized TensorProto file (the `input_0.pb` / `output_0.pb` of ONNX test sets).
pub fn read_tensor_file(path: &std::path::Path) -> crate::Result<(TensorType, TensorData)> {
    use prost::Message as _;
    let bytes = std::fs::read(path).map_err(|source| crate::Error::Read { path: path.into(), source })?;
    let parse_err = |reason: String| crate::Error::Parse { path: path.into(), reason };
    let t = TensorProto::decode(bytes.as_slice()).map_err(|e| parse_err(e.to_string()))?;
    decode(&t, None).map_err(parse_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_types_unpack_low_bits_first() {
        // int4 [-9..] as the ONNX test stores it: 0x87 = elements 7, -8.
        assert_eq!(unpack_low(DType::I4, &[0x87, 0x0f], 3), [7, 0xf8, 0xff]);
        assert_eq!(unpack_low(DType::U4, &[0x87], 2), [7, 8]);
        // int2: 0x39 = 0b00_11_10_01 → 1, -2, -1, 0.
        assert_eq!(unpack_low(DType::I2, &[0x39], 4), [1, 0xfe, 0xff, 0]);
        assert_eq!(unpack_low(DType::U2, &[0x39], 3), [1, 2, 3]);
        assert_eq!(unpack_low(DType::F4E2M1, &[0xe2], 2), [2, 0xe]);
        assert_eq!(unpack_low(DType::F8E5M2, &[0x38, 0x7c], 2), [0x38, 0x7c]);
    }
}
