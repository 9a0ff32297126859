//! `sparsify`: turns Conv / Gemm / MatMul / QConv / QMatMul nodes whose constant weight has
//! enough zeros into [`Sparse`] nodes (`ops::sparse`), choosing per layer between dense,
//! compressed rows with baked index streams (CSR), and fully unrolled code.
//!
//! Not part of [`super::PIPELINE`]: `Config` runs it after optimization (and after int8
//! quantization), unless `--dense`. It only looks at the zeros already in the weights (a
//! model trained sparse, or one pruned by [`super::prune`]); it never changes a value.
//!
//! Cost model, per layer with `nnz` of `len` weights kept (`density = nnz / len`):
//! - CSR flash is `nnz · (value + index) + (rows + 1) · pointer` bytes (indices and pointers
//!   in the narrowest of u8/u16/u32); its time is one multiply-add per kept weight and output
//!   plus a small per-entry decode.
//! - Sparse is chosen when it saves at least 20% of the weight flash and density ≤
//!   [`MAX_DENSITY`] (above that, the dense kernels' regular loops win on time). Where the
//!   instruction set multiplies int8 in byte quads ([`Isa::dot4`]), dense int8 layers run
//!   about twice as fast as with int16 pairs, so an int8 layer must be twice as sparse
//!   ([`MAX_DENSITY_DOT4`]).
//! - Among sparse forms, layers with at most [`UNROLL_FC`] (Gemm/MatMul) or [`UNROLL_CONV`]
//!   (Conv) kept weights are fully unrolled: no index streams at all, the weights become
//!   immediates, and every loop bound is a constant.

use crate::backend::Isa;
use crate::ir::{DType, Graph, Node, TensorData};
use crate::ops::{Csr, Op, Sparse, SparseFormat};

/// Above this density a layer stays dense.
pub const MAX_DENSITY: f64 = 0.6;
/// Above this density an int8 layer stays dense where the dense kernels use byte quads.
pub const MAX_DENSITY_DOT4: f64 = 0.3;
/// Largest Gemm/MatMul (kept weights) emitted fully unrolled.
pub const UNROLL_FC: usize = 64;
/// Largest convolution (kept weights) emitted fully unrolled (one plane loop per weight).
pub const UNROLL_CONV: usize = 32;

/// The compressed form of node `n`'s weight and where its rows are, or `None` when the node
/// has no constant weight in a supported form.
pub fn compress(g: &Graph, n: &Node) -> Option<Csr> {
    let &w = n.inputs.get(1)?;
    let data = g.data(w)?;
    let shape = &g.ty(w).shape;
    let (rows, row_len, transposed, zero) = match &n.op {
        Op::Conv(_) if shape.len() == 4 => (shape[0], shape[1] * shape[2] * shape[3], false, vec![0]),
        Op::QConv(q) if shape.len() == 4 => (shape[0], shape[1] * shape[2] * shape[3], false, q.w_zp.clone()),
        Op::Gemm(gm) if !gm.trans_a && shape.len() == 2 => {
            if gm.trans_b {
                (shape[0], shape[1], false, vec![0])
            } else {
                (shape[1], shape[0], true, vec![0])
            }
        }
        Op::MatMul(_) if shape.len() == 2 && !g.ty(n.inputs[0]).shape.is_empty() => (shape[1], shape[0], true, vec![0]),
        Op::QMatMul(q) if shape.len() == 2 && !g.ty(n.inputs[0]).shape.is_empty() => {
            (shape[1], shape[0], true, q.b_zp.clone())
        }
        _ => return None,
    };
    if rows == 0 || row_len == 0 || !matches!(data, TensorData::F32(_) | TensorData::I8(_) | TensorData::U8(_)) {
        return None;
    }
    Csr::compress(data, rows, row_len, transposed, &zero)
}

/// The cost model's choice for a compressed weight (`None`: stay dense).
/// `max_density`: [`MAX_DENSITY`], or [`MAX_DENSITY_DOT4`] for int8 on byte-quad targets.
pub fn choose(csr: &Csr, elem_bytes: usize, conv: bool, max_density: f64) -> Option<SparseFormat> {
    let dense = csr.rows * csr.row_len * elem_bytes;
    let nnz = csr.nnz();
    let csr_bytes = nnz * (elem_bytes + csr.col_bytes()) + (csr.rows + 1) * csr.ptr_bytes();
    if csr.density() > max_density || csr_bytes * 5 > dense * 4 {
        return None;
    }
    let unroll = if conv { UNROLL_CONV } else { UNROLL_FC };
    Some(if nnz <= unroll { SparseFormat::Unrolled } else { SparseFormat::Csr })
}

/// Replaces every eligible weighted node by its sparse form when the cost model prefers it
/// against the dense kernels of `isa`. Returns whether the graph changed (the dense
/// weights become dead; run `dce` after).
pub fn sparsify(g: &mut Graph, isa: Isa) -> bool {
    let mut changed = false;
    for i in 0..g.nodes.len() {
        let n = &g.nodes[i];
        let Some(csr) = compress(g, n) else { continue };
        let w = n.inputs[1];
        let wty = g.ty(w).clone();
        let conv = matches!(n.op, Op::Conv(_) | Op::QConv(_));
        let int8 = matches!(wty.dtype, DType::I8 | DType::U8);
        let max_density = if int8 && isa.dot4 { MAX_DENSITY_DOT4 } else { MAX_DENSITY };
        let Some(format) = choose(&csr, wty.dtype.size(), conv, max_density) else { continue };
        let sparse =
            Sparse { dense: Box::new(n.op.clone()), weight: wty, weight_name: g.value(w).name.clone(), csr, format };
        let node = &mut g.nodes[i];
        node.op = Op::Sparse(sparse);
        node.inputs.remove(1);
        changed = true;
    }
    changed
}

/// One weighted layer as `inspect` reports it.
#[derive(Debug, Clone)]
pub struct LayerStat {
    pub node: String,
    pub op: &'static str,
    /// Fraction of non-zero weights.
    pub density: f64,
    /// `dense`, `csr` or `unrolled`.
    pub format: &'static str,
    /// Weight (and bias) bytes in flash.
    pub flash_bytes: usize,
    /// Weight bytes of the dense form.
    pub dense_bytes: usize,
    /// Multiply-accumulates executed per run.
    pub macs: u64,
}

/// Density, format, flash and MACs of every Conv / Gemm / MatMul (dense or sparse) layer.
pub fn layer_stats(g: &Graph) -> Vec<LayerStat> {
    let mut out = vec![];
    for n in &g.nodes {
        let tys: Vec<_> = n.inputs.iter().map(|&v| g.ty(v)).collect();
        let macs = n.op.macs(&tys, g.ty(n.outputs[0]));
        let consts = |skip: usize| -> usize {
            n.inputs.iter().skip(skip).filter(|&&v| g.is_const(v)).map(|&v| g.ty(v).bytes()).sum()
        };
        match &n.op {
            Op::Sparse(s) => {
                let extra = consts(1);
                out.push(LayerStat {
                    node: n.name.clone(),
                    op: n.op.name(),
                    density: s.csr.density(),
                    format: s.format.name(),
                    flash_bytes: s.flash_bytes() + extra,
                    dense_bytes: s.dense_bytes() + extra,
                    macs,
                });
            }
            Op::Conv(_) | Op::Gemm(_) | Op::MatMul(_) | Op::QConv(_) | Op::QMatMul(_) => {
                let Some(&w) = n.inputs.get(1) else { continue };
                if !g.is_const(w) {
                    continue;
                }
                let density = compress(g, n).map_or(1.0, |c| c.density());
                let bytes = consts(1);
                out.push(LayerStat {
                    node: n.name.clone(),
                    op: n.op.name(),
                    density,
                    format: "dense",
                    flash_bytes: bytes,
                    dense_bytes: bytes,
                    macs,
                });
            }
            _ => {}
        }
    }
    out
}

/// Weight bytes in flash of the whole graph: dense constants read by nodes plus the
/// compressed weights of sparse nodes ([`Sparse::flash_bytes`]).
pub fn flash_bytes(g: &Graph) -> usize {
    g.weight_bytes()
        + g.nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Sparse(s) => Some(s.flash_bytes()),
                _ => None,
            })
            .sum::<usize>()
}

/// `g` with every float sparse node (SparseConv / SparseGemm / SparseMatMul) put back in
/// its dense form, the weight rebuilt as a constant: same results (up to the sign of zero),
/// and the dense adjoints apply.
pub fn densify(g: &Graph) -> std::borrow::Cow<'_, Graph> {
    let is_float_sparse = |n: &Node| matches!(&n.op, Op::Sparse(s) if matches!(s.dense.as_ref(), Op::Conv(_) | Op::Gemm(_) | Op::MatMul(_)));
    if !g.nodes.iter().any(is_float_sparse) {
        return std::borrow::Cow::Borrowed(g);
    }
    let mut d = g.clone();
    for i in 0..d.nodes.len() {
        let Op::Sparse(s) = &d.nodes[i].op else { continue };
        if !matches!(s.dense.as_ref(), Op::Conv(_) | Op::Gemm(_) | Op::MatMul(_)) {
            continue;
        }
        let (op, ty, name, w) = (s.dense.as_ref().clone(), s.weight.clone(), s.weight_name.clone(), s.csr.densify());
        let wid = d.add_const(name, ty, w);
        let node = &mut d.nodes[i];
        node.op = op;
        node.inputs.insert(1.min(node.inputs.len()), wid);
    }
    std::borrow::Cow::Owned(d)
}
