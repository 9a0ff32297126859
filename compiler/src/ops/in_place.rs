//! In-place execution: which nodes may write their output over one of their inputs.
//!
//! The memory planner ([`crate::passes::plan_memory`]) gives such a node's output the
//! storage of that input when the input dies at the node, so the two never coexist: the
//! arena holds one tensor where it would hold two. Every backend's kernel for an op listed
//! here must then be correct with the output and that input sharing storage.

use super::Op;
use crate::ir::{Graph, Node};

/// How a node may overwrite one of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InPlace {
    /// The input whose storage the output may take (same element type and shape).
    pub input: usize,
    /// Elements (of the output's type) of private scratch the kernel needs to run in place.
    pub scratch: usize,
}

impl Op {
    /// Contract:
    /// - elementwise ops (activations, Add/Sub/Mul/Div, QAdd, Requantize) read element `i`
    ///   of the full-shape input only to write element `i` of the output: no scratch;
    /// - a stride-1 2-D convolution (float or int8) with constant weights whose output has
    ///   the input's shape, dense or depthwise, keeps the input rows it still needs in a
    ///   ring: `pads_top` rows of one plane (depthwise, channel by channel) or
    ///   `pads_top + 1` rows of all channels (dense, row by row).
    pub fn in_place(&self, g: &Graph, n: &Node) -> Option<InPlace> {
        let out = g.ty(*n.outputs.first()?);
        // Quantization parameters may differ: only the storage (type and shape) must match.
        let same =
            |k: usize| n.inputs.get(k).is_some_and(|&v| g.ty(v).dtype == out.dtype && g.ty(v).shape == out.shape);
        let elementwise = |k: usize| same(k).then_some(InPlace { input: k, scratch: 0 });
        match self {
            Op::Activation(_) | Op::Requantize(_) => elementwise(0),
            Op::Binary(_) | Op::QAdd(_) => elementwise(0).or_else(|| elementwise(1)),
            Op::Conv(c) => conv_ring(g, n, c, same(0)),
            Op::QConv(q) => conv_ring(g, n, &q.conv, same(0)),
            _ => None,
        }
    }
}

/// The ring a same-shape, stride-1 convolution needs to run over its own input.
fn conv_ring(g: &Graph, n: &Node, c: &super::Conv, same_shape: bool) -> Option<InPlace> {
    let (x, w) = (&g.ty(n.inputs[0]).shape, &g.ty(*n.inputs.get(1)?).shape);
    if !same_shape || x.len() != 4 || c.strides != [1, 1] || !g.is_const(n.inputs[1]) || w.len() != 4 {
        return None;
    }
    let (ci, width, top) = (x[1], x[3], c.pads[0]);
    let scratch = if c.group == 1 {
        (top + 1) * ci * width
    } else if c.group == ci && w[1] == 1 {
        top * width
    } else {
        return None;
    };
    Some(InPlace { input: 0, scratch })
}
