//! Typed access to ONNX node attributes.

use tract_onnx::pb::{AttributeProto, NodeProto};

/// Attribute reader for one node; errors are plain messages the caller attaches to the node.
pub(crate) struct Attrs<'a>(pub &'a NodeProto);

impl<'a> Attrs<'a> {
    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.0.attribute.iter().find(|a| a.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }

    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }

    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }

    pub fn floats(&self, name: &str) -> Option<Vec<f32>> {
        self.get(name).map(|a| a.floats.clone())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    pub fn tensor(&self, name: &str) -> Option<&'a tract_onnx::pb::TensorProto> {
        self.get(name).and_then(|a| a.t.as_ref())
    }

    /// Non-negative integer list attribute with a default, e.g. `strides`.
    pub fn usizes(&self, name: &str, default: Vec<usize>) -> Result<Vec<usize>, String> {
        match self.ints(name) {
            None => Ok(default),
            Some(v) => v
                .iter()
                .map(|&x| usize::try_from(x).map_err(|_| format!("attribute '{name}' has negative value {x}")))
                .collect(),
        }
    }
}

/// Normalises a possibly negative axis against `rank`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}
