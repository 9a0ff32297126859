//! The reference runtime (tract) for `verify` and the differential tests. Float models only:
//! tract is known to be off on the QDQ int8 models, whose reference is the shipped outputs.

use crate::error::{Error, Result};
use std::path::Path;

/// A float tensor: shape and row-major data.
pub type F32Tensor = (Vec<usize>, Vec<f32>);

/// Runs `model` in tract on `inputs` (one per model input, in order).
pub fn run_tract(model: &Path, inputs: &[F32Tensor]) -> Result<Vec<F32Tensor>> {
    use tract_onnx::prelude::*;
    let run = || -> TractResult<Vec<F32Tensor>> {
        let mut m = tract_onnx::onnx().model_for_path(model)?;
        for (i, (shape, _)) in inputs.iter().enumerate() {
            m.set_input_fact(i, f32::fact(shape).into())?;
        }
        let plan = m.into_optimized()?.into_runnable()?;
        let mut tv: TVec<TValue> = tvec![];
        for (shape, data) in inputs {
            tv.push(tract_ndarray::ArrayD::from_shape_vec(shape.clone(), data.clone())?.into_tensor().into());
        }
        let out = plan.run(tv)?;
        out.iter()
            .map(|t| {
                let t = t.cast_to::<f32>()?;
                Ok((t.shape().to_vec(), t.to_plain_array_view::<f32>()?.iter().copied().collect()))
            })
            .collect()
    };
    run().map_err(|e| Error::Model(format!("reference runtime (tract) failed: {e:#}")))
}
