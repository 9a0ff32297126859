// Integer SIMD helpers of the generated Rust kernels (issue 6), the twin of the pair helpers
// in c/modelless_rt.h. Every helper has one contract and three bodies chosen at compile time
// by the target's features: AVX2 (x86_64), NEON (aarch64) and portable Rust. They are
// exact (int32 wrapping sums), so every body gives the same bits. The `unsafe` blocks only
// call `core::arch` intrinsics on features the `cfg` proves enabled, and load from slices
// whose length was checked just before. Items here are plain items with no `use` outside
// their bodies: modules embed the ones they call.

/// Eight int32 accumulators: one 256-bit register on AVX2.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
pub type I32x8 = core::arch::x86_64::__m256i;
/// Eight int32 accumulators: two 128-bit registers on NEON.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub type I32x8 = core::arch::aarch64::int32x4x2_t;
/// Eight int32 accumulators.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
pub type I32x8 = [i32; 8];

/// Two input channels at four pixels as int16 pairs, `[a0, b0, a1, b1, a2, b2, a3, b3]`
/// (AVX2: repeated in both 128-bit halves).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
pub type Pairs4 = core::arch::x86_64::__m256i;
/// Two input channels at four pixels as int16 pairs, `[a0, b0, a1, b1, a2, b2, a3, b3]`.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub type Pairs4 = core::arch::aarch64::int16x8_t;
/// Two input channels at four pixels as int16 pairs, `[a0, b0, a1, b1, a2, b2, a3, b3]`.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
pub type Pairs4 = [i16; 8];

/// Eight zero accumulators.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn i32x8_zero() -> I32x8 {
    // SAFETY: AVX2 is enabled (cfg).
    unsafe { core::arch::x86_64::_mm256_setzero_si256() }
}
/// Eight zero accumulators.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn i32x8_zero() -> I32x8 {
    use core::arch::aarch64::*;
    // SAFETY: NEON is enabled (cfg).
    unsafe { int32x4x2_t(vdupq_n_s32(0), vdupq_n_s32(0)) }
}
/// Eight zero accumulators.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn i32x8_zero() -> I32x8 {
    [0; 8]
}

/// The eight accumulators, lane 0 first.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn i32x8_lanes(a: I32x8) -> [i32; 8] {
    let mut r = [0i32; 8];
    // SAFETY: AVX2 is enabled (cfg); `r` holds 32 bytes (unaligned store).
    unsafe { core::arch::x86_64::_mm256_storeu_si256(r.as_mut_ptr().cast(), a) };
    r
}
/// The eight accumulators, lane 0 first.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn i32x8_lanes(a: I32x8) -> [i32; 8] {
    let mut r = [0i32; 8];
    // SAFETY: NEON is enabled (cfg); `r` holds 8 int32.
    unsafe {
        core::arch::aarch64::vst1q_s32(r.as_mut_ptr(), a.0);
        core::arch::aarch64::vst1q_s32(r.as_mut_ptr().add(4), a.1);
    }
    r
}
/// The eight accumulators, lane 0 first.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn i32x8_lanes(a: I32x8) -> [i32; 8] {
    a
}

/// Eight accumulators from `v[..8]`.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn i32x8_load(v: &[i32]) -> I32x8 {
    let v = &v[..8];
    // SAFETY: AVX2 is enabled (cfg); `v` holds 32 bytes (unaligned load).
    unsafe { core::arch::x86_64::_mm256_loadu_si256(v.as_ptr().cast()) }
}
/// Eight accumulators from `v[..8]`.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn i32x8_load(v: &[i32]) -> I32x8 {
    let v = &v[..8];
    // SAFETY: NEON is enabled (cfg); `v` holds 8 int32.
    unsafe { core::arch::aarch64::int32x4x2_t(core::arch::aarch64::vld1q_s32(v.as_ptr()), core::arch::aarch64::vld1q_s32(v[4..].as_ptr())) }
}
/// Eight accumulators from `v[..8]`.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn i32x8_load(v: &[i32]) -> I32x8 {
    core::array::from_fn(|l| v[l])
}

/// The pairs `(a[t] − zp, b[t] − zp)` of pixels `t = 0..4` of two int8 channel rows (`a` and
/// `b` hold at least 4 values; `zp` in -128..=127, so every difference fits int16).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn pairs4_s8(a: &[i8], b: &[i8], zp: i16) -> Pairs4 {
    use core::arch::x86_64::*;
    let (a, b) = (&a[..4], &b[..4]);
    let word = |v: &[i8]| i32::from_le_bytes([v[0] as u8, v[1] as u8, v[2] as u8, v[3] as u8]);
    // SAFETY: AVX2 is enabled (cfg).
    unsafe {
        let ab = _mm_unpacklo_epi8(_mm_cvtsi32_si128(word(a)), _mm_cvtsi32_si128(word(b)));
        _mm256_broadcastsi128_si256(_mm_sub_epi16(_mm_cvtepi8_epi16(ab), _mm_set1_epi16(zp)))
    }
}
/// The pairs `(a[t] − zp, b[t] − zp)` of pixels `t = 0..4` of two int8 channel rows (`a` and
/// `b` hold at least 4 values; `zp` in -128..=127, so every difference fits int16).
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn pairs4_s8(a: &[i8], b: &[i8], zp: i16) -> Pairs4 {
    use core::arch::aarch64::*;
    let (a, b) = (&a[..4], &b[..4]);
    let ab = [a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]];
    // SAFETY: NEON is enabled (cfg); `ab` holds 8 bytes.
    unsafe { vsubq_s16(vmovl_s8(vld1_s8(ab.as_ptr())), vdupq_n_s16(zp)) }
}
/// The pairs `(a[t] − zp, b[t] − zp)` of pixels `t = 0..4` of two int8 channel rows (`a` and
/// `b` hold at least 4 values; `zp` in -128..=127, so every difference fits int16).
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn pairs4_s8(a: &[i8], b: &[i8], zp: i16) -> Pairs4 {
    let (a, b) = (&a[..4], &b[..4]);
    core::array::from_fn(|i| i16::from(if i % 2 == 0 { a[i / 2] } else { b[i / 2] }) - zp)
}

/// [`pairs4_s8`] of two uint8 channel rows (`zp` in 0..=255).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn pairs4_u8(a: &[u8], b: &[u8], zp: i16) -> Pairs4 {
    use core::arch::x86_64::*;
    let (a, b) = (&a[..4], &b[..4]);
    let word = |v: &[u8]| i32::from_le_bytes([v[0], v[1], v[2], v[3]]);
    // SAFETY: AVX2 is enabled (cfg).
    unsafe {
        let ab = _mm_unpacklo_epi8(_mm_cvtsi32_si128(word(a)), _mm_cvtsi32_si128(word(b)));
        _mm256_broadcastsi128_si256(_mm_sub_epi16(_mm_cvtepu8_epi16(ab), _mm_set1_epi16(zp)))
    }
}
/// [`pairs4_s8`] of two uint8 channel rows (`zp` in 0..=255).
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn pairs4_u8(a: &[u8], b: &[u8], zp: i16) -> Pairs4 {
    use core::arch::aarch64::*;
    let (a, b) = (&a[..4], &b[..4]);
    let ab = [a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]];
    // SAFETY: NEON is enabled (cfg); `ab` holds 8 bytes.
    unsafe { vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vld1_u8(ab.as_ptr()))), vdupq_n_s16(zp)) }
}
/// [`pairs4_s8`] of two uint8 channel rows (`zp` in 0..=255).
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn pairs4_u8(a: &[u8], b: &[u8], zp: i16) -> Pairs4 {
    let (a, b) = (&a[..4], &b[..4]);
    core::array::from_fn(|i| i16::from(if i % 2 == 0 { a[i / 2] } else { b[i / 2] }) - zp)
}

/// Multiply-accumulate of channel pairs into 4 pixels × 8 output channels:
/// `acc[t][l] += x[2t]·w[2l] + x[2t+1]·w[2l+1]` for pixel `t` and output channel `l`, where
/// `x` is [`Pairs4`] and `w` (at least 16 values) holds each output channel's two weights.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn mac_pairs4(acc: &mut [I32x8; 4], x: Pairs4, w: &[i8]) {
    use core::arch::x86_64::*;
    let w = &w[..16];
    // SAFETY: AVX2 is enabled (cfg); `w` holds 16 bytes (unaligned load).
    unsafe {
        let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(w.as_ptr().cast()));
        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(_mm256_shuffle_epi32::<0x00>(x), wv));
        acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(_mm256_shuffle_epi32::<0x55>(x), wv));
        acc[2] = _mm256_add_epi32(acc[2], _mm256_madd_epi16(_mm256_shuffle_epi32::<0xAA>(x), wv));
        acc[3] = _mm256_add_epi32(acc[3], _mm256_madd_epi16(_mm256_shuffle_epi32::<0xFF>(x), wv));
    }
}
/// Multiply-accumulate of channel pairs into 4 pixels × 8 output channels:
/// `acc[t][l] += x[2t]·w[2l] + x[2t+1]·w[2l+1]` for pixel `t` and output channel `l`, where
/// `x` is [`Pairs4`] and `w` (at least 16 values) holds each output channel's two weights.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn mac_pairs4(acc: &mut [I32x8; 4], x: Pairs4, w: &[i8]) {
    use core::arch::aarch64::*;
    /// One pixel: its pair is lanes `A` and `B` of `x`.
    #[inline(always)]
    fn pixel<const A: i32, const B: i32>(a: I32x8, w0: int16x8_t, w1: int16x8_t, x: int16x8_t) -> I32x8 {
        // SAFETY: NEON is enabled (cfg).
        unsafe {
            let lo = vmlal_laneq_s16::<B>(vmlal_laneq_s16::<A>(a.0, vget_low_s16(w0), x), vget_low_s16(w1), x);
            let hi = vmlal_high_laneq_s16::<B>(vmlal_high_laneq_s16::<A>(a.1, w0, x), w1, x);
            int32x4x2_t(lo, hi)
        }
    }
    let w = &w[..16];
    // SAFETY: NEON is enabled (cfg); `w` holds 16 bytes.
    let (w0, w1) = unsafe {
        let v = vld2_s8(w.as_ptr());
        (vmovl_s8(v.0), vmovl_s8(v.1))
    };
    acc[0] = pixel::<0, 1>(acc[0], w0, w1, x);
    acc[1] = pixel::<2, 3>(acc[1], w0, w1, x);
    acc[2] = pixel::<4, 5>(acc[2], w0, w1, x);
    acc[3] = pixel::<6, 7>(acc[3], w0, w1, x);
}
/// Multiply-accumulate of channel pairs into 4 pixels × 8 output channels:
/// `acc[t][l] += x[2t]·w[2l] + x[2t+1]·w[2l+1]` for pixel `t` and output channel `l`, where
/// `x` is [`Pairs4`] and `w` (at least 16 values) holds each output channel's two weights.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn mac_pairs4(acc: &mut [I32x8; 4], x: Pairs4, w: &[i8]) {
    let w = &w[..16];
    for (t, at) in acc.iter_mut().enumerate() {
        let (x0, x1) = (i32::from(x[2 * t]), i32::from(x[2 * t + 1]));
        for (a, wl) in at.iter_mut().zip(w.chunks_exact(2)) {
            *a = a.wrapping_add(x0 * i32::from(wl[0]) + x1 * i32::from(wl[1]));
        }
    }
}

/// Multiply-accumulate of one pair into 8 output columns: `acc[l] += x0·w[2l] + x1·w[2l+1]`,
/// where `x` packs the int16 pair `(x0, x1)` (`x0` in the low half) and `w` (at least 16
/// values) holds each column's two weights.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn mac_pair1(acc: I32x8, x: i32, w: &[i8]) -> I32x8 {
    use core::arch::x86_64::*;
    let w = &w[..16];
    // SAFETY: AVX2 is enabled (cfg); `w` holds 16 bytes (unaligned load).
    unsafe {
        let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(w.as_ptr().cast()));
        _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_set1_epi32(x), wv))
    }
}
/// Multiply-accumulate of one pair into 8 output columns: `acc[l] += x0·w[2l] + x1·w[2l+1]`,
/// where `x` packs the int16 pair `(x0, x1)` (`x0` in the low half) and `w` (at least 16
/// values) holds each column's two weights.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn mac_pair1(acc: I32x8, x: i32, w: &[i8]) -> I32x8 {
    use core::arch::aarch64::*;
    let w = &w[..16];
    let (x0, x1) = (x as i16, (x >> 16) as i16);
    // SAFETY: NEON is enabled (cfg); `w` holds 16 bytes.
    unsafe {
        let v = vld2_s8(w.as_ptr());
        let (w0, w1) = (vmovl_s8(v.0), vmovl_s8(v.1));
        let lo = vmlal_n_s16(vmlal_n_s16(acc.0, vget_low_s16(w0), x0), vget_low_s16(w1), x1);
        let hi = vmlal_high_n_s16(vmlal_high_n_s16(acc.1, w0, x0), w1, x1);
        int32x4x2_t(lo, hi)
    }
}
/// Multiply-accumulate of one pair into 8 output columns: `acc[l] += x0·w[2l] + x1·w[2l+1]`,
/// where `x` packs the int16 pair `(x0, x1)` (`x0` in the low half) and `w` (at least 16
/// values) holds each column's two weights.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn mac_pair1(acc: I32x8, x: i32, w: &[i8]) -> I32x8 {
    let w = &w[..16];
    let (x0, x1) = (i32::from(x as i16), i32::from((x >> 16) as i16));
    core::array::from_fn(|l| acc[l].wrapping_add(x0 * i32::from(w[2 * l]) + x1 * i32::from(w[2 * l + 1])))
}

/// Per-lane requantization parameters of 8 output channels ([`rq8_prepare`]).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
pub type Rq8 = [core::arch::x86_64::__m256i; 8];
/// Per-lane requantization parameters of 8 output channels ([`rq8_prepare`]):
/// multipliers, shifts, zero point, clamp.
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
pub type Rq8 = ([i32; 8], [i32; 8], i32, i32, i32);

/// The requantization of 8 channels (`mul` and `shift` hold at least 8 values, every shift
/// in -31..=-1), prepared once for [`requant8`].
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn rq8_prepare(mul: &[i32], shift: &[i32], zp: i32, lo: i32, hi: i32) -> Rq8 {
    use core::arch::x86_64::*;
    let (mul, shift) = (&mul[..8], &shift[..8]);
    let lz = (lo as i64 - zp as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    let hz = (hi as i64 - zp as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    // SAFETY: AVX2 is enabled (cfg); `mul` and `shift` hold 32 bytes (unaligned loads).
    unsafe {
        let m = _mm256_loadu_si256(mul.as_ptr().cast());
        let s = _mm256_loadu_si256(shift.as_ptr().cast());
        // total − 1 = 30 − shift per lane, as 64-bit counts for the even and the odd lanes.
        let t = _mm256_sub_epi32(_mm256_set1_epi32(30), s);
        let one = _mm256_set1_epi64x(1);
        [
            m,
            _mm256_srli_epi64::<32>(m),
            _mm256_sllv_epi64(one, _mm256_and_si256(t, _mm256_set1_epi64x(0xffff_ffff))),
            _mm256_sllv_epi64(one, _mm256_srli_epi64::<32>(t)),
            _mm256_sub_epi32(_mm256_set1_epi32(-1), s),
            _mm256_set1_epi32(lz),
            _mm256_set1_epi32(hz),
            _mm256_set1_epi32(zp),
        ]
    }
}
/// The requantization of 8 channels (`mul` and `shift` hold at least 8 values, every shift
/// in -31..=-1), prepared once for [`requant8`].
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
#[inline(always)]
pub fn rq8_prepare(mul: &[i32], shift: &[i32], zp: i32, lo: i32, hi: i32) -> Rq8 {
    (core::array::from_fn(|l| mul[l]), core::array::from_fn(|l| shift[l]), zp, lo, hi)
}

/// [`requant`] of lane `l`: `requant(acc[l] + bias[l], mul[l], shift[l], zp, lo, hi)` with
/// the parameters of `q` (`bias` holds at least 8 values; the sum wraps), as a vector.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn requant8v(acc: I32x8, bias: &[i32], q: &Rq8) -> I32x8 {
    use core::arch::x86_64::*;
    let bias = &bias[..8];
    // SAFETY: AVX2 is enabled (cfg); `bias` holds 32 bytes (unaligned load).
    unsafe {
        let a = _mm256_add_epi32(acc, _mm256_loadu_si256(bias.as_ptr().cast()));
        let ev = _mm256_add_epi64(_mm256_mul_epi32(a, q[0]), q[2]);
        let od = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64::<32>(a), q[1]), q[3]);
        // floor(x / 2^total) = floor(floor(x / 2^32) / 2^(total − 32)): the high halves.
        let r = _mm256_srav_epi32(_mm256_blend_epi32::<0xAA>(_mm256_srli_epi64::<32>(ev), od), q[4]);
        _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(r, q[5]), q[6]), q[7])
    }
}
/// [`requant`] of lane `l`: `requant(acc[l] + bias[l], mul[l], shift[l], zp, lo, hi)` with
/// the parameters of `q` (`bias` holds at least 8 values; the sum wraps), as a vector.
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
#[inline(always)]
pub fn requant8v(acc: I32x8, bias: &[i32], q: &Rq8) -> I32x8 {
    let (a, bias) = (i32x8_lanes(acc), &bias[..8]);
    let r: [i32; 8] = core::array::from_fn(|l| requant(a[l].wrapping_add(bias[l]), q.0[l], q.1[l], q.2, q.3, q.4));
    i32x8_load(&r)
}

/// [`requant8v`] as 8 values.
#[inline(always)]
pub fn requant8(acc: I32x8, bias: &[i32], q: &Rq8) -> [i32; 8] {
    i32x8_lanes(requant8v(acc, bias, q))
}

/// [`requant8v`] as 8 int16 in one 128-bit register (the clamped values fit).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn requant8_i16(acc: I32x8, bias: &[i32], q: &Rq8) -> core::arch::x86_64::__m128i {
    use core::arch::x86_64::*;
    let r = requant8v(acc, bias, q);
    // SAFETY: AVX2 is enabled (cfg).
    unsafe { _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256::<1>(r)) }
}

/// [`requant8`] to int8 (the clamp of `q` within -128..=127).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn requant8_s8(acc: I32x8, bias: &[i32], q: &Rq8) -> [i8; 8] {
    use core::arch::x86_64::*;
    let w = requant8_i16(acc, bias, q);
    let mut out = [0i8; 8];
    // SAFETY: AVX2 is enabled (cfg); `out` holds 8 bytes (unaligned 64-bit store).
    unsafe { _mm_storel_epi64(out.as_mut_ptr().cast(), _mm_packs_epi16(w, w)) };
    out
}
/// [`requant8`] to int8 (the clamp of `q` within -128..=127).
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
#[inline(always)]
pub fn requant8_s8(acc: I32x8, bias: &[i32], q: &Rq8) -> [i8; 8] {
    requant8(acc, bias, q).map(|v| v as i8)
}

/// [`requant8`] to uint8 (the clamp of `q` within 0..=255).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub fn requant8_u8(acc: I32x8, bias: &[i32], q: &Rq8) -> [u8; 8] {
    use core::arch::x86_64::*;
    let w = requant8_i16(acc, bias, q);
    let mut out = [0u8; 8];
    // SAFETY: AVX2 is enabled (cfg); `out` holds 8 bytes (unaligned 64-bit store).
    unsafe { _mm_storel_epi64(out.as_mut_ptr().cast(), _mm_packus_epi16(w, w)) };
    out
}
/// [`requant8`] to uint8 (the clamp of `q` within 0..=255).
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
#[inline(always)]
pub fn requant8_u8(acc: I32x8, bias: &[i32], q: &Rq8) -> [u8; 8] {
    requant8(acc, bias, q).map(|v| v as u8)
}

/// Eight f32 accumulators: one 256-bit register on AVX2 with FMA.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
pub type F32x8 = core::arch::x86_64::__m256;
/// Eight f32 accumulators: two 128-bit registers on NEON.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub type F32x8 = core::arch::aarch64::float32x4x2_t;
/// Eight f32 accumulators.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
pub type F32x8 = [f32; 8];

/// Eight zero accumulators.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
#[inline(always)]
pub fn f32x8_zero() -> F32x8 {
    // SAFETY: AVX is enabled (cfg).
    unsafe { core::arch::x86_64::_mm256_setzero_ps() }
}
/// Eight zero accumulators.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn f32x8_zero() -> F32x8 {
    use core::arch::aarch64::*;
    // SAFETY: NEON is enabled (cfg).
    unsafe { float32x4x2_t(vdupq_n_f32(0.0), vdupq_n_f32(0.0)) }
}
/// Eight zero accumulators.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn f32x8_zero() -> F32x8 {
    [0.0; 8]
}

/// The eight accumulators, lane 0 first.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
#[inline(always)]
pub fn f32x8_lanes(a: F32x8) -> [f32; 8] {
    let mut r = [0.0f32; 8];
    // SAFETY: AVX is enabled (cfg); `r` holds 32 bytes (unaligned store).
    unsafe { core::arch::x86_64::_mm256_storeu_ps(r.as_mut_ptr(), a) };
    r
}
/// The eight accumulators, lane 0 first.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn f32x8_lanes(a: F32x8) -> [f32; 8] {
    let mut r = [0.0f32; 8];
    // SAFETY: NEON is enabled (cfg); `r` holds 8 f32.
    unsafe {
        core::arch::aarch64::vst1q_f32(r.as_mut_ptr(), a.0);
        core::arch::aarch64::vst1q_f32(r.as_mut_ptr().add(4), a.1);
    }
    r
}
/// The eight accumulators, lane 0 first.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn f32x8_lanes(a: F32x8) -> [f32; 8] {
    a
}

/// `acc[l] + x · w[l]` for the 8 lanes (`w` holds at least 8 values), fused (one rounding)
/// where the target has FMA: Rust never contracts `a + x * w` by itself.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
#[inline(always)]
pub fn fma8(acc: F32x8, x: f32, w: &[f32]) -> F32x8 {
    use core::arch::x86_64::*;
    let w = &w[..8];
    // SAFETY: AVX and FMA are enabled (cfg); `w` holds 32 bytes (unaligned load).
    unsafe { _mm256_fmadd_ps(_mm256_set1_ps(x), _mm256_loadu_ps(w.as_ptr()), acc) }
}
/// `acc[l] + x · w[l]` for the 8 lanes (`w` holds at least 8 values), fused (one rounding)
/// where the target has FMA: Rust never contracts `a + x * w` by itself.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[inline(always)]
pub fn fma8(acc: F32x8, x: f32, w: &[f32]) -> F32x8 {
    use core::arch::aarch64::*;
    let w = &w[..8];
    // SAFETY: NEON is enabled (cfg); `w` holds 8 f32.
    unsafe {
        float32x4x2_t(
            vfmaq_n_f32(acc.0, vld1q_f32(w.as_ptr()), x),
            vfmaq_n_f32(acc.1, vld1q_f32(w[4..].as_ptr()), x),
        )
    }
}
/// `acc[l] + x · w[l]` for the 8 lanes (`w` holds at least 8 values), fused (one rounding)
/// where the target has FMA: Rust never contracts `a + x * w` by itself.
#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
#[inline(always)]
pub fn fma8(acc: F32x8, x: f32, w: &[f32]) -> F32x8 {
    let w = &w[..8];
    core::array::from_fn(|l| acc[l] + x * w[l])
}
