//! Convolution geometry for the packed kernels of both backends.

use super::Program;
use crate::ir::{Graph, Node};

/// Geometry of a 2-D convolution in NCHW, shared by the packed C and Rust kernels.
#[derive(Clone, Copy)]
pub(crate) struct ConvGeo {
    pub nb: usize,
    pub ci: usize,
    pub h: usize,
    pub wd: usize,
    pub m: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: [usize; 2],
    pub s: [usize; 2],
    pub d: [usize; 2],
    pub pt: usize,
    pub pl: usize,
    /// The node runs in place (`plan.in_place`): output over input, through a row ring.
    pub in_place: bool,
}

impl ConvGeo {
    /// The geometry of a 2-D NCHW convolution node, `None` for other ranks or an empty output.
    pub(crate) fn of(p: &Program, n: &Node, c: &crate::ops::Conv) -> Option<ConvGeo> {
        let idx = p.graph.nodes.iter().position(|m| std::ptr::eq(m, n));
        Self::of_graph(p.graph, n, c, idx.and_then(|i| p.plan.in_place(i)).is_some())
    }

    /// [`ConvGeo::of`] before memory planning: whether the node runs in place is given.
    pub(crate) fn of_graph(g: &Graph, n: &Node, c: &crate::ops::Conv, in_place: bool) -> Option<ConvGeo> {
        let (x, out) = (&g.ty(n.inputs[0]).shape, &g.ty(n.outputs[0]).shape);
        if x.len() != 4 || out.len() != 4 || out.iter().product::<usize>() == 0 {
            return None;
        }
        Some(ConvGeo {
            nb: x[0],
            ci: x[1],
            h: x[2],
            wd: x[3],
            m: out[1],
            oh: out[2],
            ow: out[3],
            k: c.kernel,
            s: c.strides,
            d: c.dilations,
            pt: c.pads[0],
            pl: c.pads[1],
            in_place,
        })
    }

    /// A 1×1, stride-1, unpadded convolution is one long row: pixel tiles then never break at
    /// row ends.
    pub(crate) fn flattened(mut self) -> Self {
        if self.k == [1, 1]
            && self.s == [1, 1]
            && self.pt == 0
            && self.pl == 0
            && self.oh == self.h
            && self.ow == self.wd
        {
            self.wd *= self.h;
            self.ow *= self.oh;
            self.h = 1;
            self.oh = 1;
        }
        self
    }
}
