//! Quantized (integer) ops and the fixed-point requantization they share.
//!
//! Every integer op here is defined by integer arithmetic only, through the helpers of
//! `modelless-rt` (`requant`, `quantize`, ...) which the generated Rust embeds, the
//! generated C mirrors bit for bit (`mlrt_*` in `modelless_rt.h`), and the compiler's int8
//! simulation (`crate::interp`) calls directly. So simulation, C and Rust agree exactly.
//!
//! Values are `real = scale · (q − zero_point)` (see [`crate::ir::Quant`]).

use super::{Conv, MatMul, Pool, expect_inputs};
use crate::ir::{DType, Quant, TensorType};

/// Fixed-point requantization of int32 accumulators into `to`:
/// `y = clamp(zero_point + requant(acc, multiplier[c], shift[c]), lo, hi)` with
/// `multiplier[c] · 2^(shift[c] − 31)` ≈ the real rescale factor of output channel `c`
/// (`modelless_rt::requant`: one rounding, ties toward +∞)
/// (one entry when the factor is per tensor). `lo`/`hi` hold the type range narrowed by a
/// fused Relu/Clip.
#[derive(Debug, Clone, PartialEq)]
pub struct Requant {
    pub multiplier: Vec<i32>,
    pub shift: Vec<i32>,
    pub zero_point: i32,
    pub lo: i32,
    pub hi: i32,
    pub to: DType,
}

/// `(multiplier, shift)` with `multiplier · 2^(shift − 31)` ≈ `real` (TFLite's
/// QuantizeMultiplier): `multiplier` in `[2^30, 2^31)`, or 0 for a zero / tiny factor.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real <= 0.0 || !real.is_finite() {
        return (0, 0);
    }
    let mut shift = real.log2().floor() as i32 + 1;
    let mut q = (real / 2f64.powi(shift) * 2f64.powi(31)).round() as i64;
    if q == 1i64 << 31 {
        q /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    if shift > 30 {
        return (i32::MAX, 30);
    }
    (q as i32, shift)
}

/// Value range of an integer element type.
pub fn type_range(t: DType) -> (i32, i32) {
    match t {
        DType::I8 => (-128, 127),
        DType::U8 => (0, 255),
        DType::I16 => (i16::MIN as i32, i16::MAX as i32),
        DType::U16 => (0, u16::MAX as i32),
        DType::I4 => (-8, 7),
        DType::U4 => (0, 15),
        DType::I2 => (-2, 1),
        DType::U2 => (0, 3),
        _ => (i32::MIN, i32::MAX),
    }
}

impl Requant {
    /// Requantization by the real factors `real[c]` (one per output channel, or one).
    pub fn new(real: &[f64], zero_point: i32, to: DType) -> Requant {
        // A zero factor (a dead channel) takes shift −1: its result is `zero_point` all the
        // same, and every shift stays in the vector kernels' −31..−1.
        let (multiplier, shift) = real
            .iter()
            .map(|&r| match quantize_multiplier(r) {
                (0, _) => (0, -1),
                ms => ms,
            })
            .unzip();
        let (lo, hi) = type_range(to);
        Requant { multiplier, shift, zero_point, lo, hi, to }
    }

    /// Multiplier and shift of channel `c` (the single entry when per tensor).
    pub fn channel(&self, c: usize) -> (i32, i32) {
        let i = if self.multiplier.len() == 1 { 0 } else { c };
        (self.multiplier[i], self.shift[i])
    }

    /// Requantizes one accumulator of channel `c`.
    pub fn apply(&self, acc: i32, c: usize) -> i32 {
        let (m, s) = self.channel(c);
        modelless_rt::requant(acc, m, s, self.zero_point, self.lo, self.hi)
    }

    /// Narrows the output range to the quantized image of `[lo, hi]` (a fused Relu or Clip
    /// in real units, with the output `scale`).
    pub fn clamp_real(&mut self, lo: f32, hi: f32, scale: f32) {
        let (zp, tlo, thi) = (self.zero_point, self.lo, self.hi);
        let q = |v: f32| modelless_rt::quantize(v, scale, zp, tlo, thi);
        if lo.is_finite() {
            self.lo = self.lo.max(q(lo));
        }
        if hi.is_finite() {
            self.hi = self.hi.min(q(hi));
        }
    }

    fn out_type(&self, shape: Vec<usize>) -> TensorType {
        TensorType::new(self.to, shape)
    }

    fn check(&self, channels: usize) -> Result<(), String> {
        if !matches!(self.to, DType::I8 | DType::U8) {
            return Err(format!("requantization to {} (int8 or uint8 only)", self.to));
        }
        if self.multiplier.len() != self.shift.len()
            || !(self.multiplier.len() == 1 || self.multiplier.len() == channels)
        {
            return Err(format!("{} requantization factors for {channels} channels", self.multiplier.len()));
        }
        Ok(())
    }
}

fn expect_int(t: &TensorType, what: &str) -> Result<(), String> {
    if !matches!(t.dtype, DType::I8 | DType::U8) {
        return Err(format!("{what} must be int8 or uint8, got {}", t.dtype));
    }
    Ok(())
}

/// How the elements of a Quantize / Dequantize input map to its parameters (`q.scale[k]`,
/// `q.zero_point[k]`): around the quantization axis the input is `[outer, len, inner]`;
/// per tensor `k = 0`, per axis `k = a` (the index along the axis), and blocked
/// (`block = Some(b)`, ONNX opset 21 `block_size`) `k = (o · ceil(len / b) + a / b) · inner + i`:
/// runs of `b` consecutive elements along the axis share one parameter, which is stored as
/// the input's shape with the axis shortened to `ceil(len / b)`, row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamLayout {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
    /// `None`: per tensor (no axis) or per axis.
    pub block: Option<usize>,
    pub per_tensor: bool,
}

impl ParamLayout {
    /// The layout of `q` (with optional `block`) over a tensor of `shape`, after checking
    /// that the parameter counts match it.
    pub fn of(q: &Quant, block: Option<usize>, shape: &[usize]) -> Result<ParamLayout, String> {
        let (outer, len, inner) = match q.axis {
            None => (1, 1, shape.iter().product()),
            Some(a) if a < shape.len() => (shape[..a].iter().product(), shape[a], shape[a + 1..].iter().product()),
            Some(a) => return Err(format!("quantization axis {a} out of range for {shape:?}")),
        };
        if block == Some(0) || block.is_some() && q.axis.is_none() {
            return Err("blocked quantization needs an axis and a positive block size".into());
        }
        let n = match block {
            Some(b) => outer * len.div_ceil(b) * inner,
            None => len,
        };
        if q.scale.len() != n || q.zero_point.len() != n {
            return Err(format!("{} scales / {} zero points for {n} parameters", q.scale.len(), q.zero_point.len()));
        }
        Ok(ParamLayout { outer, len, inner, block, per_tensor: q.axis.is_none() })
    }

    /// The parameter index of flat element `i`.
    pub fn param(&self, i: usize) -> usize {
        if self.per_tensor {
            return 0;
        }
        let a = (i / self.inner.max(1)) % self.len.max(1);
        match self.block {
            None => a,
            Some(b) => {
                let (o, inn) = (i / (self.len * self.inner).max(1), i % self.inner.max(1));
                (o * self.len.div_ceil(b) + a / b) * self.inner + inn
            }
        }
    }
}

fn check_params(q: &Quant, block: Option<usize>, shape: &[usize]) -> Result<(), String> {
    ParamLayout::of(q, block, shape).map(|_| ())
}

/// ONNX QuantizeLinear: float → `to` (int8 / uint8 / int32), elementwise
/// `y = saturate(round_half_even(x / scale[k]) + zero_point[k])` (`modelless_rt::quantize`),
/// `k` the element's parameter ([`ParamLayout`]: per tensor, per axis or blocked).
#[derive(Debug, Clone, PartialEq)]
pub struct Quantize {
    pub q: Quant,
    pub to: DType,
    /// Blocked quantization along `q.axis` (see [`ParamLayout`]).
    pub block: Option<usize>,
}

impl Quantize {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        if inputs[0].dtype != DType::F32 {
            return Err(format!("QuantizeLinear input must be float32, got {}", inputs[0].dtype));
        }
        if !(matches!(self.to, DType::I8 | DType::U8 | DType::I16 | DType::U16 | DType::I32)
            || self.to.is_subbyte_int())
        {
            return Err(format!("QuantizeLinear to {} (int2/4/8/16/32, uint2/4/8/16 only)", self.to));
        }
        check_params(&self.q, self.block, &inputs[0].shape)?;
        let mut t = TensorType::new(self.to, inputs[0].shape.clone());
        // A blocked quantization is no per-tensor / per-axis type annotation.
        t.quant = self.block.is_none().then(|| self.q.clone());
        Ok(t)
    }
}

/// ONNX DequantizeLinear: integer → float, elementwise
/// `y = (float)(x − zero_point[k]) · scale[k]` (the subtraction in int32), `k` the
/// element's parameter ([`ParamLayout`]: per tensor, per axis or blocked).
#[derive(Debug, Clone, PartialEq)]
pub struct Dequantize {
    pub q: Quant,
    /// Blocked quantization along `q.axis` (see [`ParamLayout`]).
    pub block: Option<usize>,
}

impl Dequantize {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        let d = inputs[0].dtype;
        if !(matches!(d, DType::I8 | DType::U8 | DType::I16 | DType::U16 | DType::I32) || d.is_subbyte_int()) {
            return Err(format!(
                "DequantizeLinear input must be int2/4/8/16/32 or uint2/4/8/16, got {}",
                inputs[0].dtype
            ));
        }
        check_params(&self.q, self.block, &inputs[0].shape)?;
        Ok(TensorType::f32(inputs[0].shape.clone()))
    }
}

/// Integer convolution (QLinearConv, ConvInteger, and quantized Conv):
/// `acc[n,m,p] = bias[m] + Σ (x − x_zp)·(w[m,…] − w_zp[m])` in int32, where padded input
/// positions count as `x_zp` (contribute 0); then `out` requantizes to int8/uint8, or the
/// int32 accumulators are the output when `out` is `None` (ConvInteger).
/// Inputs: x `[N,C,H,W]` int8/uint8, w `[M,C/group,kH,kW]` int8/uint8, optional bias `[M]` int32.
#[derive(Debug, Clone, PartialEq)]
pub struct QConv {
    /// Geometry only; `act` is always `None` (fused activations live in `out.lo/hi`).
    pub conv: Conv,
    pub x_zp: i32,
    /// One weight zero point, or one per output channel.
    pub w_zp: Vec<i32>,
    pub out: Option<Requant>,
}

impl QConv {
    /// The weight zero point of output channel `oc`.
    pub fn w_zp_of(&self, oc: usize) -> i32 {
        self.w_zp[if self.w_zp.len() > 1 { oc } else { 0 }]
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 3)?;
        expect_int(inputs[0], "input")?;
        expect_int(inputs[1], "weight")?;
        if let Some(b) = inputs.get(2)
            && b.dtype != DType::I32
        {
            return Err(format!("bias must be int32, got {}", b.dtype));
        }
        let geom = self.conv.infer(&inputs[..2])?;
        let m = geom.shape[1];
        if !(self.w_zp.len() == 1 || self.w_zp.len() == m) {
            return Err(format!("{} weight zero points for {m} output channels", self.w_zp.len()));
        }
        if let Some(b) = inputs.get(2)
            && b.len() != m
        {
            return Err(format!("bias has {} elements, expected {m}", b.len()));
        }
        match &self.out {
            Some(r) => {
                r.check(m)?;
                Ok(r.out_type(geom.shape))
            }
            None => Ok(TensorType::new(DType::I32, geom.shape)),
        }
    }
}

/// Integer matrix product (QLinearMatMul, MatMulInteger, quantized MatMul/Gemm):
/// `acc[…,i,j] = bias[j] + Σ_k (a[…,i,k] − a_zp)·(b[…,k,j] − b_zp[j])` in int32, NumPy
/// batch broadcasting as [`MatMul`]; `out` requantizes per column `j` (or per tensor), or the
/// int32 accumulators are the output (MatMulInteger). Inputs: a, b int8/uint8, optional
/// bias `[N]` int32.
#[derive(Debug, Clone, PartialEq)]
pub struct QMatMul {
    pub a_zp: i32,
    /// One zero point for b, or one per column.
    pub b_zp: Vec<i32>,
    pub out: Option<Requant>,
}

impl QMatMul {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 3)?;
        expect_int(inputs[0], "A")?;
        expect_int(inputs[1], "B")?;
        let geom = MatMul { act: None }.infer(&inputs[..2])?;
        let n = MatMul::dims(inputs[0], inputs[1])?.n;
        if !(self.b_zp.len() == 1 || self.b_zp.len() == n) {
            return Err(format!("{} zero points for B with {n} columns", self.b_zp.len()));
        }
        if let Some(b) = inputs.get(2)
            && (b.dtype != DType::I32 || b.len() != n)
        {
            return Err(format!("bias must be int32 with {n} elements, got {} {:?}", b.dtype, b.shape));
        }
        match &self.out {
            Some(r) => {
                r.check(n)?;
                Ok(r.out_type(geom.shape))
            }
            None => Ok(TensorType::new(DType::I32, geom.shape)),
        }
    }
}

/// Integer elementwise Add of two same-shape quantized tensors (TFLite's scheme):
/// `a' = requant((a − a_zp)·2^left_shift, a_mult, a_shift, 0, i32::MIN, i32::MAX)`, same for
/// b, then `y = out.apply(a' + b')`. Both rescales are ≤ 1, so no precision is lost to the
/// `2^left_shift` headroom.
#[derive(Debug, Clone, PartialEq)]
pub struct QAdd {
    pub a_zp: i32,
    pub a_mult: i32,
    pub a_shift: i32,
    pub b_zp: i32,
    pub b_mult: i32,
    pub b_shift: i32,
    pub left_shift: i32,
    /// Per tensor (one factor).
    pub out: Requant,
}

impl QAdd {
    /// The add of `a` (scale `sa`) and `b` (scale `sb`) into scale `sy`.
    pub fn new(sa: f64, a_zp: i32, sb: f64, b_zp: i32, sy: f64, y_zp: i32, to: DType) -> QAdd {
        let left_shift = 20;
        let twice_max = 2.0 * sa.max(sb);
        let (a_mult, a_shift) = quantize_multiplier(sa / twice_max);
        let (b_mult, b_shift) = quantize_multiplier(sb / twice_max);
        let out = Requant::new(&[twice_max / ((1u64 << left_shift) as f64 * sy)], y_zp, to);
        QAdd { a_zp, a_mult, a_shift, b_zp, b_mult, b_shift, left_shift, out }
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 2, 2)?;
        expect_int(inputs[0], "A")?;
        expect_int(inputs[1], "B")?;
        if inputs[0].shape != inputs[1].shape {
            return Err(format!("operands differ in shape: {:?} vs {:?}", inputs[0].shape, inputs[1].shape));
        }
        self.out.check(1)?;
        Ok(self.out.out_type(inputs[0].shape.clone()))
    }

    /// `k` when rescaling an operand (multiplier `m`, shift `s`) is the exact product
    /// `(x − zp) · 2^k`: a multiplier of 2^30 (a ratio of ½, which the larger-scale operand
    /// always has) and `left_shift + s − 1 ≥ 0`, so [`modelless_rt::requant`] rounds nothing;
    /// `k ≤ 22` keeps `255 · 2^k` an int32, so its clamps never act.
    pub fn exact_shift(&self, m: i32, s: i32) -> Option<u32> {
        let k = self.left_shift + s - 1;
        (m == 1 << 30 && (0..=22).contains(&k)).then_some(k as u32)
    }

    /// `(hi, lo, t)` when rescaling an operand (multiplier `m`, shift `s`) can be computed
    /// exactly in int32 as `d · hi + ((d · lo + 2^(t−1)) >> t)` for `d = x − zp`, |d| ≤ 255:
    /// with `t = 31 − s − left_shift` the rescaled value is `round(d · m / 2^t)` (ties up,
    /// as [`modelless_rt::requant`]), and `m = hi · 2^t + lo` splits it into an exact
    /// product and one rounding. `8 ≤ t ≤ 22` keeps both products within int32.
    pub fn split_multiplier(&self, m: i32, s: i32) -> Option<(i32, i32, u32)> {
        let t = 31 - s - self.left_shift;
        (8..=22).contains(&t).then(|| (m >> t, m & ((1 << t) - 1), t as u32))
    }

    /// One output element from raw inputs `a`, `b`.
    pub fn apply(&self, a: i32, b: i32) -> i32 {
        let scaled = |x: i32, zp: i32, m: i32, s: i32| {
            modelless_rt::requant((x - zp) * (1 << self.left_shift), m, s, 0, i32::MIN, i32::MAX)
        };
        let sum = scaled(a, self.a_zp, self.a_mult, self.a_shift) + scaled(b, self.b_zp, self.b_mult, self.b_shift);
        self.out.apply(sum, 0)
    }
}

/// Integer 2-D pooling. Max: `acc = max(x over the window) − x_zp` (padding never wins).
/// Average: `acc = Σ (x − x_zp)` over the window, the division by the window size folded into
/// `out` (so only pooling where every window has the same count: no padding, or
/// `count_include_pad`). Then `y = out.apply(acc)`.
#[derive(Debug, Clone, PartialEq)]
pub struct QPool {
    pub pool: Pool,
    pub x_zp: i32,
    /// Per tensor.
    pub out: Requant,
}

impl QPool {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_int(inputs.first().ok_or("missing input")?, "input")?;
        let t = self.pool.infer(inputs)?;
        self.out.check(1)?;
        Ok(self.out.out_type(t.shape))
    }
}

/// Integer softmax along `axis` via a table of `exp`: with `m` the row max and
/// `e_i = table[m − x_i]` (`table[d] = round(2^24 · exp(−scale_in · d))`, 256 entries),
/// `y_i = clamp(zero_point + (e_i · out_mul + s/2) / s, lo, hi)` where `s = 2^16 · Σ e` and
/// `out_mul = round(2^16 / scale_out)`, all in int64 with truncating division.
#[derive(Debug, Clone, PartialEq)]
pub struct QSoftmax {
    pub axis: usize,
    pub table: Vec<i32>,
    pub out_mul: i64,
    pub zero_point: i32,
    pub lo: i32,
    pub hi: i32,
    pub to: DType,
}

impl QSoftmax {
    /// Softmax of input scale `s_in` into output `(s_out, zp)` of type `to`.
    pub fn new(axis: usize, s_in: f64, s_out: f64, zero_point: i32, to: DType) -> QSoftmax {
        let table = (0..256).map(|d| ((-s_in * d as f64).exp() * (1u64 << 24) as f64).round() as i32).collect();
        let (lo, hi) = type_range(to);
        QSoftmax { axis, table, out_mul: ((1u64 << 16) as f64 / s_out).round() as i64, zero_point, lo, hi, to }
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        expect_int(inputs[0], "input")?;
        if self.axis >= inputs[0].shape.len().max(1) || self.table.len() != 256 {
            return Err(format!("axis {} out of range for shape {:?}", self.axis, inputs[0].shape));
        }
        Ok(TensorType::new(self.to, inputs[0].shape.clone()))
    }

    /// Outputs of one row (`xs` raw inputs along the axis).
    pub fn row(&self, xs: &[i32], out: &mut [i32]) {
        let m = xs.iter().copied().max().unwrap_or(0);
        let e = |x: i32| self.table[((m - x) as usize).min(255)] as i64;
        let sum: i64 = xs.iter().map(|&x| e(x)).sum::<i64>() << 16;
        for (o, &x) in out.iter_mut().zip(xs) {
            let v = if sum == 0 { 0 } else { (e(x) * self.out_mul + sum / 2) / sum } + self.zero_point as i64;
            *o = v.clamp(self.lo as i64, self.hi as i64) as i32;
        }
    }
}

/// Elementwise integer → integer rescale: `y = out.apply(x − x_zp)` (a DequantizeLinear →
/// QuantizeLinear pair with different parameters, optionally through Relu/Clip).
#[derive(Debug, Clone, PartialEq)]
pub struct Requantize {
    pub x_zp: i32,
    /// Per tensor.
    pub out: Requant,
}

impl Requantize {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        expect_inputs(inputs, 1, 1)?;
        expect_int(inputs[0], "input")?;
        self.out.check(1)?;
        Ok(self.out.out_type(inputs[0].shape.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplier_reproduces_the_factor() {
        for &r in &[0.5, 0.25, 1.0, 3.7e-3, 0.999_999, 1.5, 7.0e-6] {
            let (m, s) = quantize_multiplier(r);
            let back = m as f64 * 2f64.powi(s - 31);
            assert!((back - r).abs() <= r * 1e-9, "{r}: {m} {s} -> {back}");
            assert!((1 << 30..=i32::MAX).contains(&m));
        }
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        // A dead channel keeps its zero point and a shift the vector kernels take.
        let r = Requant::new(&[0.0, 0.5], 7, DType::I8);
        assert_eq!(r.channel(0), (0, -1));
        for acc in [i32::MIN, -5, 0, 5, i32::MAX] {
            assert_eq!(r.apply(acc, 0), 7, "acc {acc}");
        }
    }

    #[test]
    fn requant_rounds_to_nearest() {
        // 0.125 is exact in fixed point, so ties are real ties (which round toward +∞).
        let r = Requant::new(&[0.125], 3, DType::I8);
        for acc in [-1000, -12, -4, -3, 0, 3, 4, 5, 12, 1234, 10_000] {
            let want = ((acc as f64) * 0.125 + 0.5).floor() as i32 + 3;
            assert_eq!(r.apply(acc, 0), want.clamp(-128, 127), "acc {acc}");
        }
    }

    #[test]
    fn qadd_matches_real_arithmetic() {
        let q = QAdd::new(0.05, -3, 0.02, 10, 0.06, 5, DType::I8);
        for (a, b) in [(0, 0), (100, -100), (-128, 127), (50, 60), (-3, 10)] {
            let real = 0.05 * (a + 3) as f64 + 0.02 * (b - 10) as f64;
            let want = ((real / 0.06).round() as i32 + 5).clamp(-128, 127);
            assert!((q.apply(a, b) - want).abs() <= 1, "{a}+{b}: {} vs {want}", q.apply(a, b));
        }
    }

    #[test]
    fn qsoftmax_matches_float_softmax() {
        let s = QSoftmax::new(0, 0.1, 1.0 / 256.0, -128, DType::I8);
        let xs = [10, 0, -20, 35, 35];
        let mut out = [0; 5];
        s.row(&xs, &mut out);
        let e: Vec<f64> = xs.iter().map(|&x| (0.1 * x as f64).exp()).collect();
        let total: f64 = e.iter().sum();
        for (o, e) in out.iter().zip(&e) {
            let want = ((e / total * 256.0).round() as i32 - 128).clamp(-128, 127);
            assert!((o - want).abs() <= 1, "{o} vs {want}");
        }
    }
}
