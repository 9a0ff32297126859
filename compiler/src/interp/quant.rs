//! The integer ops of `ops::quant`, evaluated exactly as documented there and through the
//! same helpers the generated code uses: this is the definition of the int8 simulation.
//!
//! Accumulators are int32; `wrapping_*` keeps overflow (impossible for valid models) from
//! panicking in debug builds while giving the plain result whenever nothing overflows.

use super::float::{batch_offsets, conv_loops, dims4, pool_window};
use super::{Args, R, from_ints, ints};
use crate::ir::{DType, TensorData};
use crate::ops::{
    Dequantize, MatMul, ParamLayout, PoolKind, QAdd, QConv, QMatMul, QPool, QSoftmax, Quantize, Requant, Requantize,
    type_range,
};

/// Checks that `r` has one factor, or one per channel, so [`Requant::apply`] cannot index
/// out of range.
fn check_requant(r: &Requant, channels: usize) -> R<()> {
    let n = r.multiplier.len();
    if n != r.shift.len() || !(n == 1 || n == channels) {
        return Err(format!("{n} requantization factors for {channels} channels").into());
    }
    Ok(())
}

/// One zero point, or one per channel: the one of channel `c`.
fn zp_of(zps: &[i32], channels: usize) -> R<impl Fn(usize) -> i32 + '_> {
    if !(zps.len() == 1 || zps.len() == channels) {
        return Err(format!("{} zero points for {channels} channels", zps.len()).into());
    }
    Ok(move |c: usize| if zps.len() == 1 { zps[0] } else { zps[c] })
}

/// An int8 / uint8 operand.
fn int8s(a: &Args, i: usize) -> R<Vec<i32>> {
    let (_, d) = a.get(i)?;
    if !matches!(d.dtype(), DType::I8 | DType::U8) {
        return Err(format!("input {i} must be int8 or uint8, got {}", d.dtype()).into());
    }
    Ok(ints(d)?)
}

/// The optional int32 bias (input 2) of `n` elements, zeros when absent.
fn bias(a: &Args, n: usize) -> R<Vec<i32>> {
    match a.data.get(2) {
        None => Ok(vec![0; n]),
        Some(TensorData::I32(b)) if b.len() == n => Ok(b.clone()),
        Some(d) => Err(format!("bias must be int32 with {n} elements, got {} {}", d.len(), d.dtype()).into()),
    }
}

/// Requantizes the accumulators (channel of each from `ch`), or returns them as int32.
fn finish(out: Option<&Requant>, acc: Vec<i32>, ch: impl Fn(usize) -> usize) -> R<TensorData> {
    match out {
        None => Ok(TensorData::I32(acc)),
        Some(r) => Ok(from_ints(r.to, acc.iter().enumerate().map(|(i, &v)| r.apply(v, ch(i))).collect())?),
    }
}

/// `y = modelless_rt::quantize(x, scale[c], zp[c], lo, hi)` over the range of the target type.
pub(super) fn quantize(q: &Quantize, a: &Args) -> R<TensorData> {
    let x = a.f32(0)?;
    let layout = ParamLayout::of(&q.q, q.block, a.shape(0)?)?;
    let ch = |i| layout.param(i);
    let (lo, hi) = type_range(q.to);
    let y = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = ch(i);
            modelless_rt::quantize(v, q.q.scale[c], q.q.zero_point[c], lo, hi)
        })
        .collect();
    Ok(from_ints(q.to, y)?)
}

/// `y = (x − zp[c]) as f32 · scale[c]`, the subtraction in int32.
pub(super) fn dequantize(q: &Dequantize, a: &Args) -> R<TensorData> {
    let x = ints(a.get(0)?.1)?;
    let layout = ParamLayout::of(&q.q, q.block, a.shape(0)?)?;
    let ch = |i| layout.param(i);
    let y = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = ch(i);
            v.wrapping_sub(q.q.zero_point[c]) as f32 * q.q.scale[c]
        })
        .collect();
    Ok(TensorData::F32(y))
}

/// `acc[n,m,p] = bias[m] + Σ (x − x_zp)(w[m,…] − w_zp[m])`, padded taps contributing 0;
/// then `out.apply(acc, m)` (or the int32 accumulators).
pub(super) fn qconv(q: &QConv, a: &Args) -> R<TensorData> {
    let (x, w) = (int8s(a, 0)?, int8s(a, 1)?);
    let x_shape = dims4(a.shape(0)?)?;
    let y_shape = dims4(&a.out.shape)?;
    let m = y_shape[1];
    let plane = (y_shape[2] * y_shape[3]).max(1);
    let per_filter = a.get(1)?.0.len() / m.max(1);
    let cg = a.shape(1)?.get(1).copied().ok_or("weight rank")?;
    let b = bias(a, m)?;
    let w_zp = zp_of(&q.w_zp, m)?;
    if let Some(r) = &q.out {
        check_requant(r, m)?;
    }
    // Zero points subtracted up front: the sum of products is the same.
    let x: Vec<i32> = x.iter().map(|&v| v.wrapping_sub(q.x_zp)).collect();
    let w: Vec<i32> = w.iter().enumerate().map(|(i, &v)| v.wrapping_sub(w_zp(i / per_filter.max(1)))).collect();
    let mut acc: Vec<i32> = (0..a.out.len()).map(|i| b[(i / plane) % m]).collect();
    conv_loops(&q.conv, &x, x_shape, &w, cg, &mut acc, y_shape, |s, x, w| s.wrapping_add(x.wrapping_mul(w)));
    finish(q.out.as_ref(), acc, |i| (i / plane) % m.max(1))
}

/// `acc[…,i,j] = bias[j] + Σ_k (a − a_zp)(b − b_zp[j])`, batch broadcasting as MatMul;
/// then `out.apply(acc, j)` (or the int32 accumulators).
pub(super) fn qmatmul(q: &QMatMul, a: &Args) -> R<TensorData> {
    let (x0, x1) = (int8s(a, 0)?, int8s(a, 1)?);
    let d = MatMul::dims(a.get(0)?.0, a.get(1)?.0)?;
    let a_off = batch_offsets(&d.a_batch, &d.batch, d.m * d.k);
    let b_off = batch_offsets(&d.b_batch, &d.batch, d.k * d.n);
    let b = bias(a, d.n)?;
    let b_zp = zp_of(&q.b_zp, d.n)?;
    if let Some(r) = &q.out {
        check_requant(r, d.n)?;
    }
    let mut acc = Vec::with_capacity(a_off.len() * d.m * d.n);
    for (ao, bo) in a_off.iter().zip(&b_off) {
        for i in 0..d.m {
            for j in 0..d.n {
                let mut s = b[j];
                for k in 0..d.k {
                    let av = x0[ao + i * d.k + k].wrapping_sub(q.a_zp);
                    let bv = x1[bo + k * d.n + j].wrapping_sub(b_zp(j));
                    s = s.wrapping_add(av.wrapping_mul(bv));
                }
                acc.push(s);
            }
        }
    }
    let n = d.n.max(1);
    finish(q.out.as_ref(), acc, |i| i % n)
}

/// [`QAdd::apply`] elementwise on two same-shape tensors.
pub(super) fn qadd(q: &QAdd, a: &Args) -> R<TensorData> {
    let (x, y) = (int8s(a, 0)?, int8s(a, 1)?);
    if x.len() != y.len() {
        return Err(format!("operands have {} and {} elements", x.len(), y.len()).into());
    }
    check_requant(&q.out, 1)?;
    Ok(from_ints(q.out.to, x.iter().zip(&y).map(|(&u, &v)| q.apply(u, v)).collect())?)
}

/// Max: `acc = max over the window (padding excluded) − x_zp`; average:
/// `acc = Σ (x − x_zp)` over the window's in-bounds taps; then `out.apply(acc, 0)`.
/// A window entirely in the padding (possible only with `ceil_mode`) has `acc = 0`.
pub(super) fn qpool(q: &QPool, a: &Args) -> R<TensorData> {
    let x = int8s(a, 0)?;
    let [_, _, h, w] = dims4(a.shape(0)?)?;
    let [nb, c, oh, ow] = dims4(&a.out.shape)?;
    check_requant(&q.out, 1)?;
    let mut y = Vec::with_capacity(nb * c * oh * ow);
    for plane in 0..nb * c {
        let xc = &x[plane * h * w..];
        for oy in 0..oh {
            for ox in 0..ow {
                let (taps, _) = pool_window(&q.pool, oy, ox, h, w);
                let acc = match q.pool.kind {
                    PoolKind::Max => taps.iter().map(|&i| xc[i]).max().map_or(0, |m| m.wrapping_sub(q.x_zp)),
                    PoolKind::Avg => taps.iter().fold(0i32, |s, &i| s.wrapping_add(xc[i].wrapping_sub(q.x_zp))),
                };
                y.push(q.out.apply(acc, 0));
            }
        }
    }
    Ok(from_ints(q.out.to, y)?)
}

/// [`QSoftmax::row`] on every row along the axis.
pub(super) fn qsoftmax(q: &QSoftmax, a: &Args) -> R<TensorData> {
    let x = int8s(a, 0)?;
    let shape = a.shape(0)?;
    if q.table.len() != 256 {
        return Err(format!("exp table of {} entries, expected 256", q.table.len()).into());
    }
    let outer: usize = shape[..q.axis.min(shape.len())].iter().product();
    let len = shape.get(q.axis).copied().unwrap_or(1);
    let inner: usize = shape[(q.axis + 1).min(shape.len())..].iter().product();
    let mut y = vec![0i32; x.len()];
    let (mut row, mut res) = (vec![0i32; len], vec![0i32; len]);
    for o in 0..outer {
        for j in 0..inner {
            let at = |i: usize| (o * len + i) * inner + j;
            for (i, r) in row.iter_mut().enumerate() {
                *r = x[at(i)];
            }
            q.row(&row, &mut res);
            for (i, &v) in res.iter().enumerate() {
                y[at(i)] = v;
            }
        }
    }
    Ok(from_ints(q.to, y)?)
}

/// `y = out.apply(x − x_zp, 0)`.
pub(super) fn requantize(q: &Requantize, a: &Args) -> R<TensorData> {
    let x = int8s(a, 0)?;
    check_requant(&q.out, 1)?;
    Ok(from_ints(q.out.to, x.iter().map(|&v| q.out.apply(v.wrapping_sub(q.x_zp), 0)).collect())?)
}
