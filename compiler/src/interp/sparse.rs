//! Evaluation of [`Sparse`] nodes: the compressed weight is expanded again
//! ([`Csr::densify`](crate::ops::Csr::densify)) and the dense op's evaluation runs on it, so
//! the simulation of a sparse node *is* the dense definition (and checks the encoding).

use super::{Args, R, float, not_evaluated, quant};
use crate::ir::TensorData;
use crate::ops::{Op, Sparse};

pub(super) fn sparse(s: &Sparse, a: &Args) -> R<TensorData> {
    let w = s.csr.densify();
    let mut tys = Vec::with_capacity(a.tys.len() + 1);
    let mut data = Vec::with_capacity(a.data.len() + 1);
    tys.extend(a.tys.first().copied());
    data.extend(a.data.first().copied());
    tys.push(&s.weight);
    data.push(&w);
    tys.extend(a.tys.iter().skip(1).copied());
    data.extend(a.data.iter().skip(1).copied());
    let dense = Args { tys, data, out: a.out };
    match s.dense.as_ref() {
        Op::Conv(c) => float::conv(c, &dense),
        Op::Gemm(g) => float::gemm(g, &dense),
        Op::MatMul(m) => float::matmul(m, &dense),
        Op::QConv(q) => quant::qconv(q, &dense),
        Op::QMatMul(q) => quant::qmatmul(q, &dense),
        other => Err(not_evaluated(format!("a sparse {}", other.name()))),
    }
}
