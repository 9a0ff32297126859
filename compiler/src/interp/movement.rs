//! Data movement and type ops: every element of the output copies one input element (or a
//! fill value), so most are a source-index table applied with [`TensorData::gather`].

use super::{Args, R, for_each_index, not_evaluated, offset, strides_of, wide};
use crate::ir::TensorData;
use crate::ops::broadcast::broadcast_index_map;
use crate::ops::{Cast, Concat, Gather, GatherElements, Pad, PadMode, Strided, Transpose};

pub(super) fn transpose(t: &Transpose, a: &Args) -> R<TensorData> {
    let (tx, dx) = a.get(0)?;
    Ok(t.eval(tx, dx))
}

pub(super) fn strided(s: &Strided, a: &Args) -> R<TensorData> {
    Ok(s.eval(a.get(0)?.1))
}

/// The inputs' data laid end to end (all of the same type).
fn join(parts: &[&TensorData]) -> R<TensorData> {
    macro_rules! join_as {
        ($variant:ident) => {{
            let mut all = vec![];
            for p in parts {
                match p {
                    TensorData::$variant(v) => all.extend_from_slice(v),
                    other => return Err(format!("Concat of {} and {}", parts[0].dtype(), other.dtype()).into()),
                }
            }
            TensorData::$variant(all)
        }};
    }
    Ok(match parts.first().ok_or("Concat without inputs")? {
        TensorData::F32(_) => join_as!(F32),
        TensorData::F64(_) => join_as!(F64),
        TensorData::I8(_) => join_as!(I8),
        TensorData::U8(_) => join_as!(U8),
        TensorData::I32(_) => join_as!(I32),
        TensorData::I64(_) => join_as!(I64),
        TensorData::Bool(_) => join_as!(Bool),
        TensorData::I16(_) => join_as!(I16),
        TensorData::U16(_) => join_as!(U16),
        TensorData::U32(_) => join_as!(U32),
        TensorData::U64(_) => join_as!(U64),
        TensorData::F16(_) => join_as!(F16),
        TensorData::BF16(_) => join_as!(BF16),
        TensorData::Low(t, _) => {
            let mut all = vec![];
            for p in parts {
                match p {
                    TensorData::Low(u, v) if u == t => all.extend_from_slice(v),
                    other => return Err(format!("Concat of {} and {}", parts[0].dtype(), other.dtype()).into()),
                }
            }
            TensorData::Low(*t, all)
        }
    })
}

/// `outer` repetitions of each input's block along the axis, side by side.
pub(super) fn concat(c: &Concat, a: &Args) -> R<TensorData> {
    let (outer, blocks) = c.blocks(&a.tys);
    let mut base = Vec::with_capacity(a.data.len());
    let mut acc = 0;
    for d in &a.data {
        base.push(acc);
        acc += d.len();
    }
    let mut src = Vec::with_capacity(a.out.len());
    for o in 0..outer {
        for (i, &b) in blocks.iter().enumerate() {
            src.extend((0..b).map(|k| base[i] + o * b + k));
        }
    }
    Ok(join(&a.data)?.gather(&src))
}

/// Each output element reads `src[i]`, or the fill `value` where `src[i]` is `None`.
fn gather_or(d: &TensorData, src: &[Option<usize>], value: f32) -> TensorData {
    fn g<T: Copy>(v: &[T], src: &[Option<usize>], fill: T) -> Vec<T> {
        src.iter().map(|s| s.map_or(fill, |i| v[i])).collect()
    }
    match d {
        TensorData::F32(v) => TensorData::F32(g(v, src, value)),
        TensorData::F64(v) => TensorData::F64(g(v, src, value as f64)),
        TensorData::I8(v) => TensorData::I8(g(v, src, value as i64 as i8)),
        TensorData::U8(v) => TensorData::U8(g(v, src, value as i64 as u8)),
        TensorData::I32(v) => TensorData::I32(g(v, src, value as i64 as i32)),
        TensorData::I64(v) => TensorData::I64(g(v, src, value as i64)),
        TensorData::Bool(v) => TensorData::Bool(g(v, src, value != 0.0)),
        TensorData::I16(v) => TensorData::I16(g(v, src, value as i64 as i16)),
        TensorData::U16(v) => TensorData::U16(g(v, src, value as i64 as u16)),
        TensorData::U32(v) => TensorData::U32(g(v, src, value as i64 as u32)),
        TensorData::U64(v) => TensorData::U64(g(v, src, value as i64 as u64)),
        TensorData::F16(v) => TensorData::F16(g(v, src, modelless_rt::f32_to_f16(value))),
        TensorData::BF16(v) => TensorData::BF16(g(v, src, modelless_rt::f32_to_bf16(value))),
        TensorData::Low(t, v) => {
            let fill = TensorData::F32(vec![value]).cast_to(*t).to_le_bytes()[0];
            TensorData::Low(*t, g(v, src, fill))
        }
    }
}

/// Constant, edge or reflect padding.
pub(super) fn pad(p: &Pad, a: &Args) -> R<TensorData> {
    let (tx, dx) = a.get(0)?;
    let x = &tx.shape;
    let r = x.len();
    let xs = strides_of(x);
    let mut src = Vec::with_capacity(a.out.len());
    for_each_index(&a.out.shape, |idx| {
        let mut at = Some(0);
        for ax in 0..r {
            let len = x[ax] as isize;
            let s = idx[ax] as isize - p.pads[ax] as isize;
            let s = match p.mode {
                PadMode::Constant => s,
                PadMode::Edge => s.clamp(0, len - 1),
                PadMode::Reflect if s < 0 => -s,
                PadMode::Reflect if s >= len => 2 * (len - 1) - s,
                PadMode::Reflect => s,
                PadMode::Wrap => s.rem_euclid(len.max(1)),
            };
            at = at.filter(|_| (0..len).contains(&s)).map(|o| o + s as usize * xs[ax]);
        }
        src.push(at);
    });
    Ok(gather_or(dx, &src, p.value))
}

/// Type conversion as in C: float → integer truncates, integer → narrower integer wraps,
/// anything → bool is `!= 0`, 16-bit floats round to nearest even ([`TensorData::cast_to`]).
pub(super) fn cast(c: &Cast, a: &Args) -> R<TensorData> {
    Ok(a.get(0)?.1.cast_to_with(c.to, c.saturate, c.round_mode))
}

pub(super) fn not(a: &Args) -> R<TensorData> {
    match a.get(0)?.1 {
        TensorData::Bool(v) => Ok(TensorData::Bool(v.iter().map(|&b| !b).collect())),
        other => Err(not_evaluated(format!("Not on {}", other.dtype()))),
    }
}

/// `cond ? a : b` with broadcasting.
pub(super) fn select(a: &Args) -> R<TensorData> {
    let (tc, dc) = a.get(0)?;
    let ((ta, da), (tb, db)) = (a.get(1)?, a.get(2)?);
    let TensorData::Bool(cond) = dc else { return Err("Where condition must be bool".into()) };
    let out = &a.out.shape;
    let (mc, ma, mb) =
        (broadcast_index_map(&tc.shape, out), broadcast_index_map(&ta.shape, out), broadcast_index_map(&tb.shape, out));
    // Gather over `a ++ b`: `b`'s elements start at `a.len()`.
    let src: Vec<usize> = (0..mc.len()).map(|i| if cond[mc[i]] { ma[i] } else { da.len() + mb[i] }).collect();
    Ok(join(&[da, db])?.gather(&src))
}

/// An index element: negative counts from the end of an axis of length `d`; out-of-range
/// indices clamp, as in the generated code (which never reads out of bounds).
fn clamp_index(k: i64, d: usize) -> usize {
    let k = if k < 0 { k + d as i64 } else { k };
    k.clamp(0, d.saturating_sub(1) as i64) as usize
}

/// `y[o.., j.., i..] = x[o.., idx[j..], i..]`.
pub(super) fn gather(g: &Gather, a: &Args) -> R<TensorData> {
    let ((tx, dx), (_, di)) = (a.get(0)?, a.get(1)?);
    let idx = wide(di)?;
    let d = *tx.shape.get(g.axis).ok_or("Gather axis")?;
    let outer: usize = tx.shape[..g.axis].iter().product();
    let inner: usize = tx.shape[g.axis + 1..].iter().product();
    let mut src = Vec::with_capacity(a.out.len());
    for o in 0..outer {
        for &k in &idx {
            let base = (o * d + clamp_index(k, d)) * inner;
            src.extend(base..base + inner);
        }
    }
    Ok(dx.gather(&src))
}

/// `y[p] = x[p with p[axis] = idx[p]]`.
pub(super) fn gather_elements(g: &GatherElements, a: &Args) -> R<TensorData> {
    let ((tx, dx), (_, di)) = (a.get(0)?, a.get(1)?);
    let idx = wide(di)?;
    let xs = strides_of(&tx.shape);
    let d = *tx.shape.get(g.axis).ok_or("GatherElements axis")?;
    let mut st = xs.clone();
    st[g.axis] = 0;
    let mut src = Vec::with_capacity(a.out.len());
    for_each_index(&a.out.shape, |p| {
        let i = src.len();
        src.push(offset(p, &st) + clamp_index(idx[i], d) * xs[g.axis]);
    });
    Ok(dx.gather(&src))
}
