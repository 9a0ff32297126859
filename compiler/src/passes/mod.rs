//! Graph passes. Each pass is a function over `&mut Graph` in its own file with its
//! contract in its doc comment; analyses (memory planning) return data instead.
//!
//! [`optimize`] is the pipeline: fold → fuse → legalize → dce, to a fixed point.

mod dce;
mod fold_batchnorm;
mod fold_constants;
mod fuse_activation;
mod fuse_bias;
mod legalize;
mod lower_qdq;
pub mod plan_memory;
pub mod prune;
pub mod sparsify;

pub use dce::dce;
pub use fold_batchnorm::fold_batchnorm;
pub use fold_constants::fold_constants;
pub use fuse_activation::fuse_activation;
pub use fuse_bias::fuse_bias;
pub use legalize::legalize;
pub use lower_qdq::lower_qdq;
pub use plan_memory::{InPlaceRun, KernelNeeds, Layouts, MemoryPlan, Pool, Storage, plan_memory};
pub use prune::{Guard, PruneConfig, PruneMode, PruneReport, prune};
pub use sparsify::sparsify;

use crate::error::{Error, Result};
use crate::ir::{Graph, verify};

/// A named pass, for `--dump-ir-after` and verification after each step.
pub type Pass = (&'static str, fn(&mut Graph) -> bool);

/// The simplification passes in pipeline order. Each returns whether it changed the graph.
pub const PIPELINE: &[Pass] = &[
    ("fold_constants", fold_constants),
    ("fold_batchnorm", fold_batchnorm),
    ("fuse_bias", fuse_bias),
    ("fuse_activation", fuse_activation),
    ("legalize", legalize),
    ("lower_qdq", lower_qdq),
    ("dce", dce),
];

/// Runs [`PIPELINE`] until nothing changes, verifying the graph after every pass.
/// `dump` is called after each pass that changed the graph (for `--dump-ir-after`).
pub fn optimize(g: &mut Graph, mut dump: impl FnMut(&str, &Graph)) -> Result<()> {
    for _round in 0..16 {
        let mut changed = false;
        for (name, pass) in PIPELINE {
            if pass(g) {
                changed = true;
                verify(g).map_err(|e| Error::Model(format!("internal error after pass {name}: {e}")))?;
                dump(name, g);
            }
        }
        if !changed {
            break;
        }
    }
    Ok(())
}

/// The single consumer of `v` when `v` is used exactly once, by a node, and is not a
/// graph output: the condition for fusing the producer of `v` into that consumer.
pub(crate) fn sole_consumer(g: &Graph, v: crate::ir::ValueId) -> Option<usize> {
    if g.is_graph_output(v) || g.use_count(v) != 1 {
        return None;
    }
    g.consumers(v).first().copied()
}

/// A scalar zero of element type `d` (None for bool).
pub(crate) fn zero_scalar(d: crate::ir::DType) -> Option<crate::ir::TensorData> {
    // All-zero bytes are zero in every numeric type (the 16-bit floats included).
    (d != crate::ir::DType::Bool).then(|| crate::ir::TensorData::from_le_bytes(d, &vec![0; d.size()]))
}
