//! TopK: the same insertion selection as the generated kernels.

use super::{Args, R, from_wide, wide};
use crate::ir::TensorData;
use crate::ops::TopK;

/// Positions of the top `k` of `row(0..len)`, best first; a later element displaces an
/// earlier one only when strictly better, so ties keep the lower index first.
fn select<T: PartialOrd + Copy>(row: impl Fn(usize) -> T, len: usize, k: usize, largest: bool) -> Vec<usize> {
    let better = |a: T, b: T| if largest { a > b } else { a < b };
    let mut idx: Vec<usize> = Vec::with_capacity(k);
    for r in 0..len {
        let v = row(r);
        let mut j = if idx.len() < k {
            idx.push(r);
            idx.len() - 1
        } else if k > 0 && better(v, row(idx[k - 1])) {
            k - 1
        } else {
            continue;
        };
        while j > 0 && better(v, row(idx[j - 1])) {
            idx[j] = idx[j - 1];
            j -= 1;
        }
        idx[j] = r;
    }
    idx
}

/// Values (input dtype) or int64 indices of the top `k` along the axis.
pub(super) fn topk(t: &TopK, a: &Args) -> R<TensorData> {
    let (tx, dx) = a.get(0)?;
    let (outer, len, inner) = t.split(&tx.shape);
    let k = t.k;
    let mut pos = vec![0usize; outer * k * inner];
    let mut run = |row: &dyn Fn(usize, usize) -> Vec<usize>| {
        for o in 0..outer {
            for i in 0..inner {
                for (j, &r) in row(o, i).iter().enumerate() {
                    pos[(o * k + j) * inner + i] = r;
                }
            }
        }
    };
    let at = |o: usize, r: usize, i: usize| (o * len + r) * inner + i;
    let f = dx.as_f32();
    let w = if f.is_none() { Some(wide(dx)?) } else { None };
    match (f, &w) {
        (Some(x), _) => run(&|o, i| select(|r| x[at(o, r, i)], len, k, t.largest)),
        (None, Some(x)) => run(&|o, i| select(|r| x[at(o, r, i)], len, k, t.largest)),
        (None, None) => return Err("TopK input".into()),
    }
    // `pos` holds positions along the axis; map back to elements.
    let y_index = |n: usize| {
        let (o, i) = (n / (k * inner), n % inner);
        at(o, pos[n], i)
    };
    if t.indices {
        return Ok(TensorData::I64(pos.iter().map(|&r| r as i64).collect()));
    }
    Ok(match (f, w) {
        (Some(x), _) => TensorData::F32((0..pos.len()).map(|n| x[y_index(n)]).collect()),
        (None, Some(x)) => from_wide(tx.dtype, (0..pos.len()).map(|n| x[y_index(n)]).collect())?,
        (None, None) => return Err("TopK input".into()),
    })
}
