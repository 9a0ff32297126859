//! NumPy `.npy` input files (float32, C order), read with the `npyz` crate.

use crate::error::{Error, Result};
use std::path::Path;

/// A float32 array: shape and row-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyF32 {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads a float32 `.npy` file. Other dtypes, Fortran order and pickled arrays are errors
/// that say what was found.
pub fn read_f32(path: &Path) -> Result<NpyF32> {
    let err = |msg: String| Error::Npy { path: path.into(), msg };
    let bytes = std::fs::read(path).map_err(|source| Error::Read { path: path.into(), source })?;
    let file = npyz::NpyFile::new(bytes.as_slice()).map_err(|e| err(format!("not a valid .npy file ({e})")))?;
    let descr = file.header().dtype().descr();
    if descr != "'<f4'" {
        return Err(err(format!(
            "has dtype {descr}, expected float32 ('<f4') (hint: np.save(path, x.astype(np.float32)))"
        )));
    }
    if file.order() == npyz::Order::Fortran {
        return Err(err("is in Fortran order (hint: save np.ascontiguousarray(x))".into()));
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let data: Vec<f32> = file.into_vec().map_err(|e| err(format!("cannot read data ({e})")))?;
    if data.len() != shape.iter().product::<usize>() {
        return Err(err(format!(
            "holds {} values but its shape {shape:?} needs {}",
            data.len(),
            shape.iter().product::<usize>()
        )));
    }
    Ok(NpyF32 { shape, data })
}

/// Reads a float32, int32 or int64 `.npy` file as an IR tensor (for `--bind-input`).
pub fn read_tensor(path: &Path) -> Result<(crate::ir::TensorType, crate::ir::TensorData)> {
    use crate::ir::{DType, TensorData, TensorType};
    let err = |msg: String| Error::Npy { path: path.into(), msg };
    let bytes = std::fs::read(path).map_err(|source| Error::Read { path: path.into(), source })?;
    let file = npyz::NpyFile::new(bytes.as_slice()).map_err(|e| err(format!("not a valid .npy file ({e})")))?;
    if file.order() == npyz::Order::Fortran {
        return Err(err("is in Fortran order (hint: save np.ascontiguousarray(x))".into()));
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let descr = file.header().dtype().descr();
    let read_err = |e: std::io::Error| err(format!("cannot read data ({e})"));
    let (dtype, data) = match descr.as_str() {
        "'<f4'" => (DType::F32, TensorData::F32(file.into_vec().map_err(read_err)?)),
        "'<i8'" => (DType::I64, TensorData::I64(file.into_vec().map_err(read_err)?)),
        "'<i4'" => (DType::I32, TensorData::I32(file.into_vec().map_err(read_err)?)),
        d => return Err(err(format!("has dtype {d}; --bind-input takes float32, int32 or int64"))),
    };
    if data.len() != shape.iter().product::<usize>() {
        return Err(err(format!("holds {} values but its shape {shape:?} needs more", data.len())));
    }
    Ok((TensorType::new(dtype, shape), data))
}

/// Writes a float32 `.npy` file (used by tests and `verify --save`).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    use npyz::WriterBuilder as _;
    let werr = |e: std::io::Error| Error::Write { path: path.into(), msg: e.to_string() };
    let mut out = vec![];
    {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape.iter().map(|&d| d as u64).collect::<Vec<_>>())
            .writer(&mut out)
            .begin_nd()
            .map_err(werr)?;
        w.extend(data.iter().copied()).map_err(werr)?;
        w.finish().map_err(werr)?;
    }
    std::fs::write(path, out).map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_dtype_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        write_f32(&p, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let a = read_f32(&p).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data[5], 6.0);
        std::fs::write(&p, b"not numpy").unwrap();
        assert!(read_f32(&p).unwrap_err().to_string().contains("not a valid .npy"));
    }
}
