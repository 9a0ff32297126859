//! Arithmetic ops: convolutions, matrix products, elementwise, softmax, pooling,
//! reductions and resize. Float paths are plain `f32` in the generated kernels' loop order.

use super::{Args, R, for_each_index, from_wide, not_evaluated, offset, strides_of, wide};
use crate::ir::{DType, TensorData};
use crate::ops::broadcast::{broadcast_index_map, broadcast_strides};
use crate::ops::{
    Act, ArgReduce, BatchNorm, Binary, BinaryKind, Conv, ConvTranspose, Gemm, MatMul, Pool, PoolKind, Reduce,
    ReduceKind, Resize, Softmax, reduce_loops,
};

/// The four dimensions of an NCHW shape.
pub(super) fn dims4(s: &[usize]) -> R<[usize; 4]> {
    match s {
        &[a, b, c, d] => Ok([a, b, c, d]),
        _ => Err(format!("expected a rank-4 shape, got {s:?}").into()),
    }
}

/// Input coordinate read by output position `o` at kernel tap `k` (`None` in the padding).
pub(super) fn tap(o: usize, k: usize, stride: usize, dilation: usize, pad: usize, len: usize) -> Option<usize> {
    (o * stride + k * dilation).checked_sub(pad).filter(|&i| i < len)
}

fn fused(act: &Option<Act>, v: f32) -> f32 {
    act.map_or(v, |f| f.apply(v))
}

/// Output positions `lo..hi` of one axis whose kernel tap at offset `kd` (`k · dilation`)
/// reads inside an input of length `len`.
fn tap_range(out: usize, kd: usize, stride: usize, pad: usize, len: usize) -> (usize, usize) {
    let s = stride.max(1);
    let lo = pad.saturating_sub(kd).div_ceil(s);
    let hi = if len + pad > kd { (len + pad - kd).div_ceil(s).min(out) } else { 0 };
    (lo, hi.max(lo))
}

/// The convolution loop nest shared by `Conv` and `QConv`: `y` holds the initial
/// accumulators (the bias) and receives `acc = mac(acc, x, w)` for every in-bounds tap.
/// For each output element the taps come in the order input channel, kernel row, kernel
/// column (the generated kernels' order); the loops are arranged so the innermost one runs
/// along an output row.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_loops<T: Copy>(
    c: &Conv,
    x: &[T],
    x_shape: [usize; 4],
    w: &[T],
    cg: usize,
    y: &mut [T],
    y_shape: [usize; 4],
    mac: impl Fn(T, T, T) -> T,
) {
    let [nb, ci, h, wd] = x_shape;
    let [_, m, oh, ow] = y_shape;
    let mg = (m / c.group.max(1)).max(1);
    let [kh, kw] = c.kernel;
    let ([sh, sw], [dh, dw]) = (c.strides, c.dilations);
    for n in 0..nb {
        for oc in 0..m {
            let g = oc / mg;
            let yp = &mut y[(n * m + oc) * oh * ow..][..oh * ow];
            for ic in 0..cg {
                let xp = &x[(n * ci + g * cg + ic) * h * wd..][..h * wd];
                for ky in 0..kh {
                    let (oy_lo, oy_hi) = tap_range(oh, ky * dh, sh, c.pads[0], h);
                    for kx in 0..kw {
                        let wv = w[((oc * cg + ic) * kh + ky) * kw + kx];
                        let (ox_lo, ox_hi) = tap_range(ow, kx * dw, sw, c.pads[1], wd);
                        if ox_lo >= ox_hi {
                            continue;
                        }
                        let ix0 = ox_lo * sw + kx * dw - c.pads[1];
                        for oy in oy_lo..oy_hi {
                            let iy = oy * sh + ky * dh - c.pads[0];
                            let row = &mut yp[oy * ow + ox_lo..oy * ow + ox_hi];
                            let xr = &xp[iy * wd + ix0..];
                            if sw == 1 {
                                for (acc, &xv) in row.iter_mut().zip(&xr[..ox_hi - ox_lo]) {
                                    *acc = mac(*acc, xv, wv);
                                }
                            } else {
                                for (acc, &xv) in row.iter_mut().zip(xr.iter().step_by(sw.max(1))) {
                                    *acc = mac(*acc, xv, wv);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `y[n,m,oh,ow] = act(bias[m] + Σ_{c,kh,kw} x · w)`, padded taps skipped.
pub(super) fn conv(c: &Conv, a: &Args) -> R<TensorData> {
    let (x, w) = (a.f32(0)?, a.f32(1)?);
    let x_shape = dims4(a.shape(0)?)?;
    let y_shape = dims4(&a.out.shape)?;
    let cg = a.shape(1)?.get(1).copied().ok_or("weight rank")?;
    let plane = y_shape[2] * y_shape[3];
    let m = y_shape[1];
    let mut y = vec![0.0f32; a.out.len()];
    if a.tys.len() > 2 {
        let b = a.f32(2)?;
        for (i, v) in y.iter_mut().enumerate() {
            *v = b[(i / plane.max(1)) % m];
        }
    }
    conv_loops(c, x, x_shape, w, cg, &mut y, y_shape, |acc, x, w| acc + x * w);
    if let Some(act) = &c.act {
        y.iter_mut().for_each(|v| *v = act.apply(*v));
    }
    Ok(TensorData::F32(y))
}

/// Scatter form: every input element adds `x · w` to the outputs its taps reach (any
/// spatial rank).
pub(super) fn conv_transpose(c: &ConvTranspose, a: &Args) -> R<TensorData> {
    let (x, w) = (a.f32(0)?, a.f32(1)?);
    let xs = a.shape(0)?;
    let ys = &a.out.shape;
    let r = c.rank();
    if xs.len() != r + 2 || ys.len() != r + 2 {
        return Err(format!("expected rank {} input and output, got {xs:?} and {ys:?}", r + 2).into());
    }
    let (nb, ci, m) = (xs[0], xs[1], ys[1]);
    let mg = a.shape(1)?.get(1).copied().ok_or("weight rank")?;
    let cg = ci / c.group.max(1);
    let (xsp, osp) = (&xs[2..], &ys[2..]);
    let (iplane, oplane, kvol): (usize, usize, usize) =
        (xsp.iter().product(), osp.iter().product(), c.kernel.iter().product());
    let (ost, kst) = (strides_of(osp), strides_of(&c.kernel));
    let mut y = vec![0.0f32; nb * m * oplane];
    if a.tys.len() > 2 {
        let b = a.f32(2)?;
        for (i, v) in y.iter_mut().enumerate() {
            *v = b[(i / oplane.max(1)) % m];
        }
    }
    // Every (input position, kernel tap) pair that lands inside the output: (input offset
    // within a plane, kernel offset, output offset within a plane).
    let mut pairs = vec![];
    let mut at = 0;
    for_each_index(xsp, |ip| {
        for_each_index(&c.kernel, |kp| {
            let mut o = 0;
            for ax in 0..r {
                match tap(ip[ax], kp[ax], c.strides[ax], c.dilations[ax], c.pads[ax], osp[ax]) {
                    Some(v) => o += v * ost[ax],
                    None => return,
                }
            }
            pairs.push((at, offset(kp, &kst), o));
        });
        at += 1;
    });
    for n in 0..nb {
        for ic in 0..ci {
            let g = ic / cg.max(1);
            let xp = &x[(n * ci + ic) * iplane..][..iplane];
            for mm in 0..mg {
                let oc = g * mg + mm;
                let wk = &w[(ic * mg + mm) * kvol..][..kvol];
                let yp = &mut y[(n * m + oc) * oplane..][..oplane];
                for &(i, k, o) in &pairs {
                    yp[o] += xp[i] * wk[k];
                }
            }
        }
    }
    Ok(TensorData::F32(y))
}

/// `act(alpha · Σ_k A'[i,k] B'[k,j] + beta · C[i,j])`, C broadcast to `[M, N]`.
pub(super) fn gemm(gm: &Gemm, a: &Args) -> R<TensorData> {
    let (x0, x1) = (a.f32(0)?, a.f32(1)?);
    let (ta, tb) = (a.get(0)?.0, a.get(1)?.0);
    let (m, k, n) = gm.dims(ta, tb);
    let sa = strides_of(&ta.shape);
    let sb = strides_of(&tb.shape);
    let (a_i, a_k) = if gm.trans_a { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
    let (b_k, b_j) = if gm.trans_b { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
    let c = if a.tys.len() > 2 && gm.beta != 0.0 {
        Some((a.f32(2)?, broadcast_strides(a.shape(2)?, &[m, n])))
    } else {
        None
    };
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc += x0[i * a_i + kk * a_k] * x1[kk * b_k + j * b_j];
            }
            let mut v = if gm.alpha == 1.0 { acc } else { gm.alpha * acc };
            if let Some((cd, st)) = &c {
                let cv = cd[i * st[0] + j * st[1]];
                v += if gm.beta == 1.0 { cv } else { gm.beta * cv };
            }
            y.push(fused(&gm.act, v));
        }
    }
    Ok(TensorData::F32(y))
}

/// Element offsets of each broadcast batch's matrix in an operand with batch dims `own`.
pub(super) fn batch_offsets(own: &[usize], batch: &[usize], mat: usize) -> Vec<usize> {
    broadcast_index_map(own, batch).into_iter().map(|i| i * mat).collect()
}

/// Batched `act(A @ B)` with NumPy broadcasting of the batch axes ([`MatMul::dims`]).
pub(super) fn matmul(mm: &MatMul, a: &Args) -> R<TensorData> {
    let d = MatMul::dims(a.get(0)?.0, a.get(1)?.0)?;
    let a_off = batch_offsets(&d.a_batch, &d.batch, d.m * d.k);
    let b_off = batch_offsets(&d.b_batch, &d.batch, d.k * d.n);
    if let (TensorData::F64(x0), TensorData::F64(x1), None) = (a.get(0)?.1, a.get(1)?.1, &mm.act) {
        let mut y = Vec::with_capacity(a_off.len() * d.m * d.n);
        for (ao, bo) in a_off.iter().zip(&b_off) {
            for i in 0..d.m {
                for j in 0..d.n {
                    y.push((0..d.k).fold(0.0f64, |acc, k| acc + x0[ao + i * d.k + k] * x1[bo + k * d.n + j]));
                }
            }
        }
        return Ok(TensorData::F64(y));
    }
    let (x0, x1) = (a.f32(0)?, a.f32(1)?);
    let mut y = Vec::with_capacity(a_off.len() * d.m * d.n);
    for (ao, bo) in a_off.iter().zip(&b_off) {
        for i in 0..d.m {
            for j in 0..d.n {
                let mut acc = 0.0f32;
                for k in 0..d.k {
                    acc += x0[ao + i * d.k + k] * x1[bo + k * d.n + j];
                }
                y.push(fused(&mm.act, acc));
            }
        }
    }
    Ok(TensorData::F32(y))
}

/// Elementwise binary op with multidirectional broadcasting. Float arithmetic is
/// [`Binary::eval`] (constant folding's); predicates compare; integer arithmetic is done
/// wide and narrowed like a C assignment.
pub(super) fn binary(b: &Binary, a: &Args) -> R<TensorData> {
    let ((ta, da), (tb, db)) = (a.get(0)?, a.get(1)?);
    if ta.dtype != tb.dtype || da.dtype() != db.dtype() {
        return Err(format!("operand types differ: {} and {}", da.dtype(), db.dtype()).into());
    }
    let kind = b.kind;
    if let (TensorData::F64(x), TensorData::F64(y), None) = (da, db, &b.act) {
        let ma = broadcast_index_map(&ta.shape, &a.out.shape);
        let mb = broadcast_index_map(&tb.shape, &a.out.shape);
        let pairs = ma.iter().zip(&mb);
        if kind.is_predicate() {
            let v: Option<Vec<bool>> = pairs.map(|(&i, &j)| compare(kind, x[i], y[j])).collect();
            return Ok(TensorData::Bool(v.ok_or_else(|| not_evaluated(format!("{} on f64", kind.name())))?));
        }
        let v: Option<Vec<f64>> = pairs.map(|(&i, &j)| kind.apply64(x[i], y[j])).collect();
        return Ok(TensorData::F64(v.ok_or_else(|| not_evaluated(format!("{} on f64", kind.name())))?));
    }
    let is_float = da.dtype() == DType::F32;
    if is_float && !kind.is_predicate() {
        return b
            .eval(&[(ta, da), (tb, db)], a.out)
            .ok_or_else(|| not_evaluated(format!("{} on {:?} and {:?}", kind.name(), ta.shape, tb.shape)));
    }
    if b.act.is_some() {
        return Err(not_evaluated(format!("{} with a fused activation on {}", kind.name(), da.dtype())));
    }
    let ma = broadcast_index_map(&ta.shape, &a.out.shape);
    let mb = broadcast_index_map(&tb.shape, &a.out.shape);
    let pairs = ma.iter().zip(&mb);
    if is_float {
        let (x, y) = (a.f32(0)?, a.f32(1)?);
        let v: Option<Vec<bool>> = pairs.map(|(&i, &j)| compare(kind, x[i], y[j])).collect();
        return Ok(TensorData::Bool(v.ok_or_else(|| not_evaluated(format!("{} on f32", kind.name())))?));
    }
    let (x, y) = (wide(da)?, wide(db)?);
    if kind.is_predicate() {
        let v: Option<Vec<bool>> = pairs.map(|(&i, &j)| compare(kind, x[i], y[j])).collect();
        return Ok(TensorData::Bool(v.ok_or_else(|| not_evaluated(format!("{} on {}", kind.name(), da.dtype())))?));
    }
    let v: R<Vec<i64>> = pairs.map(|(&i, &j)| int_arith(kind, x[i], y[j])).collect();
    Ok(from_wide(a.out.dtype, v?)?)
}

/// Comparisons and logic (booleans arrive as 0 / 1).
fn compare<T: PartialOrd + PartialEq + Default>(kind: BinaryKind, a: T, b: T) -> Option<bool> {
    let t = |v: &T| *v != T::default();
    Some(match kind {
        BinaryKind::Equal => a == b,
        BinaryKind::Less => a < b,
        BinaryKind::Greater => a > b,
        BinaryKind::LessOrEqual => a <= b,
        BinaryKind::GreaterOrEqual => a >= b,
        BinaryKind::And => t(&a) && t(&b),
        BinaryKind::Or => t(&a) || t(&b),
        BinaryKind::Xor => t(&a) != t(&b),
        _ => return None,
    })
}

/// Integer arithmetic as the generated C does it (wrap-around instead of UB on overflow).
fn int_arith(kind: BinaryKind, a: i64, b: i64) -> R<i64> {
    let nonzero = || if b == 0 { Err(format!("integer {} by zero", kind.name())) } else { Ok(()) };
    Ok(match kind {
        BinaryKind::Add => a.wrapping_add(b),
        BinaryKind::Sub => a.wrapping_sub(b),
        BinaryKind::Mul => a.wrapping_mul(b),
        BinaryKind::Div => {
            nonzero()?;
            a.wrapping_div(b)
        }
        BinaryKind::Mod { fmod } => {
            nonzero()?;
            let r = a.wrapping_rem(b);
            if !fmod && r != 0 && ((r < 0) != (b < 0)) { r + b } else { r }
        }
        BinaryKind::Min => a.min(b),
        BinaryKind::Max => a.max(b),
        _ => return Err(not_evaluated(format!("{} on integers", kind.name()))),
    })
}

/// `exp(x − max) / Σ exp(x − max)` (or the log form) along the axis, in float32 or float64.
pub(super) fn softmax(s: &Softmax, a: &Args) -> R<TensorData> {
    let (outer, len, inner) = s.split(&a.out.shape);
    macro_rules! rows {
        ($x:expr, $t:ident, $variant:ident) => {{
            let x = $x;
            let mut y = vec![0.0 as $t; x.len()];
            for o in 0..outer {
                for j in 0..inner {
                    let at = |i: usize| o * len * inner + i * inner + j;
                    let mx = (0..len).map(|i| x[at(i)]).fold($t::NEG_INFINITY, $t::max);
                    let mut sum: $t = 0.0;
                    for i in 0..len {
                        y[at(i)] = (x[at(i)] - mx).exp();
                        sum += y[at(i)];
                    }
                    for i in 0..len {
                        y[at(i)] = if s.log { x[at(i)] - mx - sum.ln() } else { y[at(i)] / sum };
                    }
                }
            }
            Ok(TensorData::$variant(y))
        }};
    }
    match a.get(0)?.1 {
        TensorData::F64(x) => rows!(x, f64, F64),
        _ => rows!(a.f32(0)?, f32, F32),
    }
}

/// An elementwise function: float32, or float64 for those with a float64 helper.
pub(super) fn activation(act: &Act, a: &Args) -> R<TensorData> {
    if let TensorData::F64(x) = a.get(0)?.1 {
        let y: Option<Vec<f64>> = x.iter().map(|&v| act.apply64(v)).collect();
        return Ok(TensorData::F64(y.ok_or_else(|| not_evaluated(format!("{} on f64", act.name())))?));
    }
    Ok(TensorData::F32(a.f32(0)?.iter().map(|&x| act.apply(x)).collect()))
}

/// The in-bounds input positions of one pooling window, and the window count used by
/// `count_include_pad` (positions inside the padded input).
pub(super) fn pool_window(p: &Pool, oy: usize, ox: usize, h: usize, w: usize) -> (Vec<usize>, usize) {
    let mut taps = vec![];
    let mut padded = 0;
    for ky in 0..p.kernel[0] {
        let ry = (oy * p.strides[0] + ky * p.dilations[0]) as isize - p.pads[0] as isize;
        for kx in 0..p.kernel[1] {
            let rx = (ox * p.strides[1] + kx * p.dilations[1]) as isize - p.pads[1] as isize;
            let in_pad = ry >= -(p.pads[0] as isize)
                && ry < (h + p.pads[2]) as isize
                && rx >= -(p.pads[1] as isize)
                && rx < (w + p.pads[3]) as isize;
            padded += in_pad as usize;
            if ry >= 0 && (ry as usize) < h && rx >= 0 && (rx as usize) < w {
                taps.push(ry as usize * w + rx as usize);
            }
        }
    }
    (taps, padded)
}

/// Max (padding never wins) or average (divided by the in-bounds count, or the padded
/// window count with `count_include_pad`) over each window.
pub(super) fn pool(p: &Pool, a: &Args) -> R<TensorData> {
    let [_, _, h, w] = dims4(a.shape(0)?)?;
    let [nb, c, oh, ow] = dims4(&a.out.shape)?;
    let (tx, dx) = a.get(0)?;
    if dx.as_f32().is_none() && p.kind == PoolKind::Max {
        // Integer max pooling: no padding value, so an all-padding window is the type minimum.
        let x = wide(dx)?;
        let lo = match tx.dtype {
            DType::I8 => i8::MIN as i64,
            DType::U8 => 0,
            DType::I32 => i32::MIN as i64,
            _ => i64::MIN,
        };
        let mut y = Vec::with_capacity(nb * c * oh * ow);
        for plane in 0..nb * c {
            let xc = &x[plane * h * w..];
            for oy in 0..oh {
                for ox in 0..ow {
                    let (taps, _) = pool_window(p, oy, ox, h, w);
                    y.push(taps.iter().fold(lo, |m, &i| m.max(xc[i])));
                }
            }
        }
        return Ok(from_wide(tx.dtype, y)?);
    }
    let x = a.f32(0)?;
    let mut y = Vec::with_capacity(nb * c * oh * ow);
    for plane in 0..nb * c {
        let xc = &x[plane * h * w..];
        for oy in 0..oh {
            for ox in 0..ow {
                let (taps, padded) = pool_window(p, oy, ox, h, w);
                y.push(match p.kind {
                    PoolKind::Max => taps.iter().fold(f32::NEG_INFINITY, |m, &i| if xc[i] > m { xc[i] } else { m }),
                    PoolKind::Avg => {
                        let sum = taps.iter().fold(0.0f32, |s, &i| s + xc[i]);
                        let count = if p.count_include_pad { padded } else { taps.len() };
                        if count > 0 { sum / count as f32 } else { 0.0 }
                    }
                });
            }
        }
    }
    Ok(TensorData::F32(y))
}

/// `y = x · m[c] + o[c]` over axis 1 ([`BatchNorm::affine`]).
pub(super) fn batchnorm(b: &BatchNorm, a: &Args) -> R<TensorData> {
    let x = a.f32(0)?;
    let (m, o) = b.affine(a.f32(1)?, a.f32(2)?, a.f32(3)?, a.f32(4)?);
    let shape = a.shape(0)?;
    let c = shape.get(1).copied().ok_or("input rank")?;
    let inner: usize = shape[2..].iter().product();
    Ok(TensorData::F32(
        x.iter().enumerate().map(|(i, &v)| v * m[(i / inner.max(1)) % c] + o[(i / inner.max(1)) % c]).collect(),
    ))
}

/// Flat offsets of every index of the given `(extent, stride)` loops, row-major.
fn loop_offsets(loops: &[(usize, usize)]) -> Vec<usize> {
    let (dims, strides): (Vec<usize>, Vec<usize>) = loops.iter().copied().unzip();
    let mut res = vec![];
    for_each_index(&dims, |i| res.push(offset(i, &strides)));
    res
}

/// Reductions; integer kinds accumulate wide and narrow like the C accumulator.
pub(super) fn reduce(r: &Reduce, a: &Args) -> R<TensorData> {
    let (tx, dx) = a.get(0)?;
    let lp = reduce_loops(&tx.shape, &r.axes);
    let (kept, red) = (loop_offsets(&lp.kept), loop_offsets(&lp.reduced));
    // The float path, for f32 and f64 alike.
    macro_rules! float_reduce {
        ($x:expr, $t:ident, $variant:ident) => {{
            let x = $x;
            let y = kept.iter().map(|&base| {
                let vals = red.iter().map(|&o| x[base + o]);
                let sum = |f: &dyn Fn($t) -> $t| vals.clone().fold(0.0, |s, v| s + f(v));
                match r.kind {
                    ReduceKind::Sum => sum(&|v| v),
                    ReduceKind::Mean => sum(&|v| v) / lp.count as $t,
                    ReduceKind::Max => vals.clone().fold($t::NEG_INFINITY, |m, v| if v > m { v } else { m }),
                    ReduceKind::Min => vals.clone().fold($t::INFINITY, |m, v| if v < m { v } else { m }),
                    ReduceKind::Prod => vals.clone().fold(1.0, |p, v| p * v),
                    ReduceKind::L1 => sum(&|v| v.abs()),
                    ReduceKind::L2 => sum(&|v| v * v).sqrt(),
                    ReduceKind::SumSquare => sum(&|v| v * v),
                    ReduceKind::LogSum => sum(&|v| v).ln(),
                    ReduceKind::LogSumExp => {
                        let mx = vals.clone().fold($t::NEG_INFINITY, |m, v| if v > m { v } else { m });
                        mx + sum(&|v| (v - mx).exp()).ln()
                    }
                }
            });
            return Ok(TensorData::$variant(y.collect()));
        }};
    }
    match dx {
        TensorData::F32(x) => float_reduce!(x, f32, F32),
        TensorData::F64(x) => float_reduce!(x, f64, F64),
        _ => {}
    }
    let x = wide(dx)?;
    let y: R<Vec<i64>> = kept
        .iter()
        .map(|&base| {
            let vals = red.iter().map(|&o| x[base + o]);
            Ok(match r.kind {
                ReduceKind::Sum => vals.fold(0i64, i64::wrapping_add),
                ReduceKind::Max => vals.fold(i64::MIN, i64::max),
                ReduceKind::Min => vals.fold(i64::MAX, i64::min),
                ReduceKind::Prod => vals.fold(1i64, i64::wrapping_mul),
                k => return Err(not_evaluated(format!("{} on {}", k.name(), dx.dtype()))),
            })
        })
        .collect();
    Ok(from_wide(a.out.dtype, y?)?)
}

/// Index of the first (or last, `select_last`) max / min along the axis.
pub(super) fn arg_reduce(r: &ArgReduce, a: &Args) -> R<TensorData> {
    let (tx, dx) = a.get(0)?;
    let lp = reduce_loops(&tx.shape, &[r.axis]);
    let &[(len, stride)] = lp.reduced.as_slice() else { return Err("ArgMax/ArgMin axis".into()) };
    let kept = loop_offsets(&lp.kept);
    fn best<T: PartialOrd + Copy>(row: impl Fn(usize) -> T, len: usize, r: &ArgReduce) -> i64 {
        let mut b = row(0);
        let mut bi = 0;
        for i in 1..len {
            let v = row(i);
            let better = match (r.max, r.select_last) {
                (true, false) => v > b,
                (true, true) => v >= b,
                (false, false) => v < b,
                (false, true) => v <= b,
            };
            if better {
                b = v;
                bi = i as i64;
            }
        }
        bi
    }
    let y = match dx.as_f32() {
        Some(x) => kept.iter().map(|&base| best(|i| x[base + i * stride], len, r)).collect(),
        None => {
            let x = wide(dx)?;
            kept.iter().map(|&base| best(|i| x[base + i * stride], len, r)).collect()
        }
    };
    Ok(TensorData::I64(y))
}

/// Per-axis tap tables: each output element sums, over the taps of every interpolating
/// axis, the product of the tap weights times the input element (nearest axes read one
/// index); elements sampled outside the input take the extrapolation value.
pub(super) fn resize(rs: &Resize, a: &Args) -> R<TensorData> {
    let (tx, dx) = a.get(0)?;
    let xs = strides_of(&tx.shape);
    let out = &a.out.shape;
    let outside = |idx: &[usize]| rs.maps.iter().zip(idx).any(|(m, &i)| m.as_ref().is_some_and(|m| m.is_outside(i)));
    // Taps of one output coordinate as (element offset, weight).
    let taps = |ax: usize, i: usize| -> Vec<(usize, f32)> {
        match &rs.maps[ax] {
            None => vec![(i * xs[ax], 1.0)],
            Some(m) => m.taps_of(i).map(|(j, w)| (j * xs[ax], w)).collect(),
        }
    };
    if rs.interp_axes().is_empty() && !rs.extrapolates() {
        let mut src = Vec::with_capacity(a.out.len());
        for_each_index(out, |idx| src.push((0..idx.len()).map(|ax| taps(ax, idx[ax])[0].0).sum()));
        return Ok(dx.gather(&src));
    }
    let x = dx.as_f32().ok_or_else(|| not_evaluated(format!("interpolating Resize of {}", dx.dtype())))?;
    let mut y = Vec::with_capacity(a.out.len());
    for_each_index(out, |idx| {
        if outside(idx) {
            y.push(rs.extrapolation);
            return;
        }
        // Cartesian product of the per-axis taps, accumulated in the kernels' order
        // (first axis outermost, weights multiplied left to right).
        let mut terms: Vec<(usize, f32, bool)> = vec![(0, 1.0, false)];
        for (ax, &i) in idx.iter().enumerate() {
            let weighted = rs.maps[ax].as_ref().is_some_and(|m| m.interpolates());
            let t = taps(ax, i);
            terms =
                terms
                    .iter()
                    .flat_map(|&(o, w, any)| {
                        t.iter().map(move |&(d, tw)| {
                            if weighted { (o + d, if any { w * tw } else { tw }, true) } else { (o + d, w, any) }
                        })
                    })
                    .collect();
        }
        y.push(terms.iter().fold(0.0f32, |acc, &(o, w, _)| acc + w * x[o]));
    });
    Ok(TensorData::F32(y))
}
