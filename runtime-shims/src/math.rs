// Activation and math helpers for generated Rust code. modelless splices these items into
// every generated module (as `mod rt`), so they must stay dependency-free, `no_std`,
// allocation-free and `unsafe`-free. Items here are plain functions with no `use`.

/// `max(x, 0)`.
#[inline(always)]
pub fn relu(x: f32) -> f32 {
    if x > 0.0 { x } else { 0.0 }
}

/// `min(max(x, lo), hi)`.
#[inline(always)]
pub fn clip(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if x > hi { hi } else { x }
}

/// `x >= 0 ? x : alpha * x`.
#[inline(always)]
pub fn leaky_relu(x: f32, alpha: f32) -> f32 {
    if x >= 0.0 { x } else { alpha * x }
}

/// `2^n` for `n` in `-126..=127` (a normal float built from its exponent bits).
#[inline(always)]
fn pow2i(n: i32) -> f32 {
    f32::from_bits(((n + 127) as u32) << 23)
}

/// `e^x`, within 2 ulp of the correctly rounded result over the whole f32 range
/// (range reduction by ln 2 in two parts, degree-7 polynomial, exact scaling).
#[inline]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    if x.is_nan() {
        return x;
    }
    if x > 88.722_84 {
        return f32::INFINITY;
    }
    if x < -103.972_08 {
        return 0.0;
    }
    let kf = {
        let t = x * LOG2E;
        let r = if t >= 0.0 { t + 0.5 } else { t - 0.5 };
        (r as i32) as f32
    };
    let k = kf as i32;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    if k > 127 {
        p * pow2i(127) * pow2i(k - 127)
    } else if k < -126 {
        p * pow2i(-126) * pow2i(k + 126)
    } else {
        p * pow2i(k)
    }
}

/// `1 / (1 + e^-x)`.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh(x)`; odd, saturating to ±1, absolute error below 3e-7.
#[inline]
pub fn tanh(x: f32) -> f32 {
    let a = if x < 0.0 { -x } else { x };
    let t = if a < 0.01 {
        a - a * a * a / 3.0
    } else if a > 9.0 {
        1.0
    } else {
        1.0 - 2.0 / (exp(2.0 * a) + 1.0)
    };
    if x < 0.0 { -t } else { t }
}

/// `|x|`.
#[inline(always)]
pub fn abs(x: f32) -> f32 {
    if x < 0.0 {
        -x
    } else if x == 0.0 {
        0.0
    } else {
        x
    }
}

/// `-x`.
#[inline(always)]
pub fn neg(x: f32) -> f32 {
    -x
}

/// `1 / x`.
#[inline(always)]
pub fn reciprocal(x: f32) -> f32 {
    1.0 / x
}

/// Largest integer `<= x` (x itself when it is already integral, infinite or NaN).
#[inline]
pub fn floor(x: f32) -> f32 {
    if x.is_nan() || !(-8_388_608.0..=8_388_608.0).contains(&x) {
        return x;
    }
    let t = (x as i32) as f32;
    let r = if t > x { t - 1.0 } else { t };
    if r == 0.0 && x < 0.0 { -0.0 } else { r }
}

/// Smallest integer `>= x`.
#[inline]
pub fn ceil(x: f32) -> f32 {
    -floor(-x)
}

/// Round half to even (the ONNX Round).
#[inline]
pub fn round_even(x: f32) -> f32 {
    if x.is_nan() || !(-8_388_608.0..=8_388_608.0).contains(&x) {
        return x;
    }
    let f = floor(x);
    let d = x - f;
    let up = d > 0.5 || (d == 0.5 && ((f as i32) & 1) == 1);
    let r = if up { f + 1.0 } else { f };
    if r == 0.0 && x < 0.0 { -0.0 } else { r }
}

/// `sqrt(x)` (NaN below zero), through f64 Newton steps from an exponent-halving guess.
#[inline]
pub fn sqrt(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 || x == f32::INFINITY {
        return x;
    }
    let v = x as f64;
    let mut y = f64::from_bits(((v.to_bits() >> 1) & 0x7fff_ffff_ffff_ffff) + (1023u64 << 51));
    for _ in 0..6 {
        y = 0.5 * (y + v / y);
    }
    y as f32
}

/// Natural logarithm (NaN below zero, -inf at zero), via `x = m·2^e` and an atanh series in f64.
#[inline]
pub fn log(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 {
        return f32::NEG_INFINITY;
    }
    if x == f32::INFINITY {
        return x;
    }
    log_f64(x as f64) as f32
}

fn log_f64(v: f64) -> f64 {
    let bits = v.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | (1023u64 << 52));
    if m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    while k < 40.0 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    2.0 * sum + e as f64 * core::f64::consts::LN_2
}

/// `|x|` in float64.
#[inline]
pub fn abs64(x: f64) -> f64 {
    f64::from_bits(x.to_bits() & 0x7fff_ffff_ffff_ffff)
}

/// `sqrt(x)` in float64 (NaN below zero), Newton steps from an exponent-halving guess.
#[inline]
pub fn sqrt64(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 || x == f64::INFINITY {
        return x;
    }
    // Subnormals: scale into the normal range first (sqrt(x·2^104) = sqrt(x)·2^52).
    if x < f64::MIN_POSITIVE {
        return sqrt64(x * f64::from_bits((1023 + 104) << 52)) * f64::from_bits((1023 - 52) << 52);
    }
    let mut y = f64::from_bits(((x.to_bits() >> 1) & 0x7fff_ffff_ffff_ffff) + (1023u64 << 51));
    for _ in 0..8 {
        y = 0.5 * (y + x / y);
    }
    y
}

/// Natural logarithm in float64 (NaN below zero, -inf at zero).
#[inline]
pub fn log64(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x == f64::INFINITY {
        return x;
    }
    if x < f64::MIN_POSITIVE {
        return log_f64(x * f64::from_bits((1023 + 64) << 52)) - 64.0 * core::f64::consts::LN_2;
    }
    log_f64(x)
}

/// `e^x` in float64: `x = k·ln 2 + r` (ln 2 in two parts), a degree-14 Taylor polynomial
/// for `e^r` (|r| ≤ ln2/2), exact scaling by `2^k` in two steps.
#[inline]
pub fn exp64(x: f64) -> f64 {
    // ln 2 split so that k·LN2_HI is exact (fdlibm's constants).
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    if x.is_nan() {
        return x;
    }
    if x > 709.782_712_893_384 {
        return f64::INFINITY;
    }
    if x < -745.133_219_101_941_2 {
        return 0.0;
    }
    let t = x * core::f64::consts::LOG2_E;
    let kf = ((if t >= 0.0 { t + 0.5 } else { t - 0.5 }) as i64) as f64;
    let k = kf as i32;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let mut p = 1.0;
    let mut i = 14.0;
    while i >= 1.0 {
        p = 1.0 + p * r / i;
        i -= 1.0;
    }
    let pow2 = |n: i32| f64::from_bits(((n + 1023) as u64) << 52);
    if k > 1023 {
        p * pow2(1023) * pow2(k - 1023)
    } else if k < -1022 {
        p * pow2(-1022) * pow2(k + 1022)
    } else {
        p * pow2(k)
    }
}

/// `erf(x)` (Taylor series in f64 for |x| < 2.5, continued fraction for erfc beyond).
#[inline]
pub fn erf(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let a = abs(x) as f64;
    let r = if a < 2.5 {
        let x2 = a * a;
        let mut term = a;
        let mut sum = a;
        let mut n = 1.0;
        while n < 60.0 {
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
        }
        sum * core::f64::consts::FRAC_2_SQRT_PI
    } else if a < 10.0 {
        let mut f = a;
        let mut k = 59.0;
        while k >= 1.0 {
            f = a + (k / 2.0) / f;
            k -= 1.0;
        }
        1.0 - exp_f64(-a * a) * 0.564_189_583_547_756_3 / f
    } else {
        1.0
    };
    if x < 0.0 { -(r as f32) } else { r as f32 }
}

/// `e^v` in f64 (for helpers that need more than f32 precision).
fn exp_f64(v: f64) -> f64 {
    if v < -745.0 {
        return 0.0;
    }
    let k = floor_f64(v * core::f64::consts::LOG2_E + 0.5);
    let r = v - k * core::f64::consts::LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut n = 1.0;
    while n < 20.0 {
        term *= r / n;
        sum += term;
        n += 1.0;
    }
    let mut k = k as i64;
    while k > 1000 {
        sum *= f64::from_bits(2046u64 << 52);
        k -= 1023;
    }
    while k < -1000 {
        sum *= f64::from_bits(1u64 << 52);
        k += 1022;
    }
    sum * f64::from_bits(((k + 1023) as u64) << 52)
}

fn floor_f64(v: f64) -> f64 {
    if !(-4.5e15..=4.5e15).contains(&v) {
        return v;
    }
    let t = (v as i64) as f64;
    if t > v { t - 1.0 } else { t }
}

/// -1, 0 or 1; NaN stays NaN.
#[inline(always)]
pub fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x
    }
}

/// `log(1 + e^x)`.
#[inline]
pub fn softplus(x: f32) -> f32 {
    if x > 30.0 {
        return x;
    }
    log_f64(1.0 + exp_f64(x as f64)) as f32
}

/// `x / (1 + |x|)`.
#[inline(always)]
pub fn softsign(x: f32) -> f32 {
    x / (1.0 + abs(x))
}

/// `x >= 0 ? x : alpha (e^x - 1)`.
#[inline]
pub fn elu(x: f32, alpha: f32) -> f32 {
    if x >= 0.0 { x } else { alpha * (exp(x) - 1.0) }
}

/// `gamma (x > 0 ? x : alpha (e^x - 1))`.
#[inline]
pub fn selu(x: f32, alpha: f32, gamma: f32) -> f32 {
    gamma * if x > 0.0 { x } else { alpha * (exp(x) - 1.0) }
}

/// `max(0, x) + min(0, alpha (e^(x/alpha) - 1))`.
#[inline]
pub fn celu(x: f32, alpha: f32) -> f32 {
    let neg = alpha * (exp(x / alpha) - 1.0);
    (if x > 0.0 { x } else { 0.0 }) + if neg < 0.0 { neg } else { 0.0 }
}

/// `max(0, min(1, alpha x + beta))`.
#[inline(always)]
pub fn hard_sigmoid(x: f32, alpha: f32, beta: f32) -> f32 {
    clip(alpha * x + beta, 0.0, 1.0)
}

/// `x · max(0, min(1, x/6 + 1/2))`.
#[inline(always)]
pub fn hard_swish(x: f32) -> f32 {
    x * clip(x / 6.0 + 0.5, 0.0, 1.0)
}

/// `x/2 · (1 + erf(x/√2))`.
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * core::f32::consts::FRAC_1_SQRT_2))
}

/// `x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + tanh(0.797_884_6 * (x + 0.044_715 * x * x * x)))
}

/// `x > alpha ? x : 0`.
#[inline(always)]
pub fn thresholded_relu(x: f32, alpha: f32) -> f32 {
    if x > alpha { x } else { 0.0 }
}

/// `x · tanh(softplus(x))`.
#[inline]
pub fn mish(x: f32) -> f32 {
    x * tanh(softplus(x))
}

/// `(sin x, cos x)` in f64 after reduction by π/2.
fn sincos_f64(v: f64) -> (f64, f64) {
    let k = floor_f64(v * core::f64::consts::FRAC_2_PI + 0.5);
    let r = (v - k * core::f64::consts::FRAC_PI_2) - k * 6.123_233_995_736_766e-17;
    let r2 = r * r;
    let (mut s, mut c) = (r, 1.0);
    let (mut ts, mut tc) = (r, 1.0);
    let mut n = 1.0;
    while n < 24.0 {
        ts *= -r2 / ((2.0 * n) * (2.0 * n + 1.0));
        tc *= -r2 / ((2.0 * n - 1.0) * (2.0 * n));
        s += ts;
        c += tc;
        n += 1.0;
    }
    match (k as i64).rem_euclid(4) {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// `sin x`.
#[inline]
pub fn sin(x: f32) -> f32 {
    if !x.is_finite() {
        return f32::NAN;
    }
    sincos_f64(x as f64).0 as f32
}

/// `cos x`.
#[inline]
pub fn cos(x: f32) -> f32 {
    if !x.is_finite() {
        return f32::NAN;
    }
    sincos_f64(x as f64).1 as f32
}

/// `tan x`.
#[inline]
pub fn tan(x: f32) -> f32 {
    if !x.is_finite() {
        return f32::NAN;
    }
    let (s, c) = sincos_f64(x as f64);
    (s / c) as f32
}

fn atan_f64(v: f64) -> f64 {
    if v < 0.0 {
        return -atan_f64(-v);
    }
    if v > 1.0 {
        return core::f64::consts::FRAC_PI_2 - atan_f64(1.0 / v);
    }
    // Halve the angle twice: atan(x) = 2 atan(x / (1 + sqrt(1 + x²))).
    let mut x = v;
    let mut scale = 1.0;
    for _ in 0..2 {
        x /= 1.0 + sqrt_f64(1.0 + x * x);
        scale *= 2.0;
    }
    let x2 = x * x;
    let mut term = x;
    let mut sum = 0.0;
    let mut k = 1.0;
    while k < 40.0 {
        sum += term / k;
        term *= -x2;
        k += 2.0;
    }
    scale * sum
}

fn sqrt_f64(v: f64) -> f64 {
    if v <= 0.0 {
        return 0.0;
    }
    let mut y = f64::from_bits(((v.to_bits() >> 1) & 0x7fff_ffff_ffff_ffff) + (1023u64 << 51));
    for _ in 0..6 {
        y = 0.5 * (y + v / y);
    }
    y
}

/// `atan x`.
#[inline]
pub fn atan(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    atan_f64(x as f64) as f32
}

/// `asin x` (NaN outside [-1, 1]).
#[inline]
pub fn asin(x: f32) -> f32 {
    if !(-1.0..=1.0).contains(&x) {
        return f32::NAN;
    }
    let v = x as f64;
    if v == 1.0 || v == -1.0 {
        return (v * core::f64::consts::FRAC_PI_2) as f32;
    }
    atan_f64(v / sqrt_f64(1.0 - v * v)) as f32
}

/// `acos x` (NaN outside [-1, 1]).
#[inline]
pub fn acos(x: f32) -> f32 {
    if !(-1.0..=1.0).contains(&x) {
        return f32::NAN;
    }
    let v = x as f64;
    let a = if v == 1.0 || v == -1.0 { v * core::f64::consts::FRAC_PI_2 } else { atan_f64(v / sqrt_f64(1.0 - v * v)) };
    (core::f64::consts::FRAC_PI_2 - a) as f32
}

/// `sinh x`.
#[inline]
pub fn sinh(x: f32) -> f32 {
    let v = x as f64;
    if abs(x) < 1e-4 {
        return x;
    }
    ((exp_f64(v) - exp_f64(-v)) * 0.5) as f32
}

/// `cosh x`.
#[inline]
pub fn cosh(x: f32) -> f32 {
    let v = x as f64;
    ((exp_f64(v) + exp_f64(-v)) * 0.5) as f32
}

/// `asinh x`.
#[inline]
pub fn asinh(x: f32) -> f32 {
    let v = abs(x) as f64;
    let r = if v < 1e-4 { v } else { log_f64(v + sqrt_f64(v * v + 1.0)) };
    if x < 0.0 { -(r as f32) } else { r as f32 }
}

/// `acosh x` (NaN below 1).
#[inline]
pub fn acosh(x: f32) -> f32 {
    if x.is_nan() || x < 1.0 {
        return f32::NAN;
    }
    let v = x as f64;
    log_f64(v + sqrt_f64(v * v - 1.0)) as f32
}

/// `atanh x` (NaN outside [-1, 1]).
#[inline]
pub fn atanh(x: f32) -> f32 {
    if x.is_nan() || !(-1.0..=1.0).contains(&x) {
        return f32::NAN;
    }
    let v = x as f64;
    if abs(x) < 1e-4 {
        return x;
    }
    (0.5 * log_f64((1.0 + v) / (1.0 - v))) as f32
}

/// `a^b`: exact for integral exponents (repeated squaring in f64), `exp(b·log a)` otherwise;
/// a negative base with a non-integral exponent is NaN.
#[inline]
pub fn pow(a: f32, b: f32) -> f32 {
    let (x, y) = (a as f64, b as f64);
    if b == 0.0 {
        return 1.0;
    }
    if a.is_nan() || b.is_nan() {
        return f32::NAN;
    }
    if floor_f64(y) == y && y.abs() < 1e9 {
        let mut n = y.abs() as u64;
        let (mut base, mut acc) = (x, 1.0f64);
        while n > 0 {
            if n & 1 == 1 {
                acc *= base;
            }
            base *= base;
            n >>= 1;
        }
        return (if y < 0.0 { 1.0 / acc } else { acc }) as f32;
    }
    if x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 {
        return if y > 0.0 { 0.0 } else { f32::INFINITY };
    }
    exp_f64(y * log_f64(x)) as f32
}

/// `fmod(a, b)`: remainder with the sign of the dividend.
#[inline]
pub fn fmod(a: f32, b: f32) -> f32 {
    if b == 0.0 || a.is_nan() || b.is_nan() || a.is_infinite() {
        return f32::NAN;
    }
    if b.is_infinite() {
        return a;
    }
    let (x, y) = (a as f64, b as f64);
    let q = x / y;
    let t = if q < 0.0 { -floor_f64(-q) } else { floor_f64(q) };
    (x - t * y) as f32
}

/// `fmod(a, b)` in float64: remainder with the sign of the dividend (NaN for a zero
/// divisor or an infinite dividend, `a` for an infinite divisor). Exact: `a − n·b` is
/// reduced by exact power-of-two multiples of `|b|`, as the C library's `fmod` does.
#[inline]
pub fn fmod64(a: f64, b: f64) -> f64 {
    if b == 0.0 || a.is_nan() || b.is_nan() || a.is_infinite() {
        return f64::NAN;
    }
    let (x, y) = (abs64(a), abs64(b));
    if b.is_infinite() || x < y {
        return a;
    }
    // m = y·2^k, the largest not above x; then r < 2m holds at every step, so each
    // subtraction is exact (Sterbenz).
    let mut m = y;
    while m * 2.0 <= x {
        m *= 2.0;
    }
    let mut r = x;
    while m >= y {
        if r >= m {
            r -= m;
        }
        m *= 0.5;
    }
    if a < 0.0 { -r } else { r }
}

// ---- int8 arithmetic (bit-exact twins in c/modelless_rt.h; the compiler's int8 simulation
// calls these very functions) ----

/// Requantizes an int32 accumulator: `zp + round(acc · multiplier · 2^(shift − 31))`
/// (ties toward +∞, one rounding in 64-bit — TFLite's single-rounding
/// MultiplyByQuantizedMultiplier), clamped to `[lo, hi]`. `multiplier` is in `[2^30, 2^31)`
/// (or 0) and `shift` in `-31..=30`.
#[inline(always)]
pub fn requant(acc: i32, multiplier: i32, shift: i32, zp: i32, lo: i32, hi: i32) -> i32 {
    let total = 31 - shift;
    let v = ((acc as i64) * (multiplier as i64) + (1i64 << (total - 1))) >> total;
    let v = v + zp as i64;
    if v < lo as i64 {
        lo
    } else if v > hi as i64 {
        hi
    } else {
        v as i32
    }
}

/// ONNX QuantizeLinear of one value: `round_half_even(x / scale) + zp`, saturated to
/// `[lo, hi]` (NaN gives `zp`).
#[inline(always)]
pub fn quantize(x: f32, scale: f32, zp: i32, lo: i32, hi: i32) -> i32 {
    let r = round_even(x / scale);
    if r.is_nan() {
        return if zp < lo {
            lo
        } else if zp > hi {
            hi
        } else {
            zp
        };
    }
    let v = r + zp as f32;
    if v <= lo as f32 {
        lo
    } else if v >= hi as f32 {
        hi
    } else {
        v as i32
    }
}

// ---- 16-bit floats: storage is the bit pattern, arithmetic is float32 ----

/// The float32 value of a float16 bit pattern (exact: every float16 is a float32; NaN
/// payloads are kept).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = if exp == 0x1f {
        sign | 0x7f80_0000 | (man << 13)
    } else if exp != 0 {
        sign | ((exp + 112) << 23) | (man << 13)
    } else if man == 0 {
        sign
    } else {
        // Subnormal: man · 2^-24, exact in float32.
        (man as f32 * (1.0 / 16_777_216.0)).to_bits() | sign
    };
    f32::from_bits(bits)
}

/// The float16 bit pattern nearest to `x`, ties to even (IEEE round-to-nearest-even):
/// overflow gives ±inf, tiny values round to subnormals or ±0, NaN stays a (quiet) NaN.
#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x007f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 | (man >> 13) as u16 } else { 0 };
    }
    // float16 biased exponent of x.
    let e = exp - 112;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal result: the 24-bit significand in units of 2^-24.
        let m = man | 0x0080_0000;
        let shift = (14 - e) as u32;
        let (q, rem, half) = (m >> shift, m & ((1 << shift) - 1), 1u32 << (shift - 1));
        let q = if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q };
        return sign | q as u16;
    }
    let q = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    // A carry out of the significand bumps the exponent (up to infinity): still correct.
    let q = if rem > 0x1000 || (rem == 0x1000 && q & 1 == 1) { q + 1 } else { q };
    sign | q as u16
}

/// The float32 value of a bfloat16 bit pattern (its upper half; exact).
#[inline(always)]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// The bfloat16 bit pattern nearest to `x`, ties to even; NaN stays a (quiet) NaN.
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) as u16) | 0x40;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

// ---- 8- and 4-bit floats: storage is the bit pattern (one per byte), arithmetic is float32 ----

/// Format codes of [`minifloat_to_f32`] / [`f32_to_minifloat`]: OCP float8 E4M3 (no
/// infinities, NaN `S.1111.111`), its "fnuz" variant (bias 8, no −0, NaN `0x80`), float8
/// E5M2 (IEEE-like), its "fnuz" variant (bias 16), float4 E2M1 (no infinities or NaN, low
/// nibble) and E8M0 (an unsigned power of two `2^(e−127)`, NaN `0xff`).
pub const MF_E4M3FN: u8 = 0;
pub const MF_E4M3FNUZ: u8 = 1;
pub const MF_E5M2: u8 = 2;
pub const MF_E5M2FNUZ: u8 = 3;
pub const MF_E2M1: u8 = 4;
pub const MF_E8M0: u8 = 5;

/// `(mantissa bits, exponent bias, largest finite magnitude code)` of a minifloat format
/// (exponent bits are `width − 1 − mantissa bits`).
#[inline]
fn mf_params(fmt: u8) -> (u32, i32, u32) {
    match fmt {
        MF_E4M3FN => (3, 7, 0x7e),
        MF_E4M3FNUZ => (3, 8, 0x7f),
        MF_E5M2 => (2, 15, 0x7b),
        MF_E5M2FNUZ => (2, 16, 0x7f),
        _ => (1, 1, 0x7),
    }
}

/// The float32 value of a minifloat bit pattern of format `fmt` (exact; `MF_*` codes).
#[inline]
pub fn minifloat_to_f32(b: u8, fmt: u8) -> f32 {
    let b = b as u32;
    if fmt == MF_E8M0 {
        return match b {
            0xff => f32::NAN,
            0 => f32::from_bits(0x0040_0000),
            e => f32::from_bits(e << 23),
        };
    }
    let (mb, bias, _) = mf_params(fmt);
    let sign_bit = if fmt == MF_E2M1 { 0x8 } else { 0x80 };
    let mag = b & (sign_bit - 1);
    let neg = b & sign_bit != 0;
    let nan = match fmt {
        MF_E4M3FN => mag == 0x7f,
        MF_E4M3FNUZ | MF_E5M2FNUZ => b == 0x80,
        MF_E5M2 => mag > 0x7c,
        _ => false,
    };
    if nan {
        return f32::NAN;
    }
    if fmt == MF_E5M2 && mag == 0x7c {
        return if neg { f32::NEG_INFINITY } else { f32::INFINITY };
    }
    let (e, m) = (mag >> mb, mag & ((1 << mb) - 1));
    let v = if e == 0 {
        // Subnormal: m · 2^(1 − bias − mb), exact.
        m as f32 * f32::from_bits(((127 + 1 - bias - mb as i32) as u32) << 23)
    } else {
        f32::from_bits((((e as i32 - bias + 127) as u32) << 23) | (m << (23 - mb)))
    };
    if neg { -v } else { v }
}

/// The minifloat bit pattern of format `fmt` (not `MF_E8M0`) nearest to `x`, ties to even.
/// Out-of-range values and infinities give the largest finite value when `saturate`
/// (always for E2M1), else infinity (E5M2) or NaN (the others). NaN gives NaN (`0x7f` /
/// `0x7e` with its sign for E4M3FN / E5M2, `0x80` for the fnuz ones, `0x8` for E2M1, as the
/// ONNX reference does). The fnuz formats have no −0: tiny negatives give +0.
#[inline]
pub fn f32_to_minifloat(x: f32, fmt: u8, saturate: bool) -> u8 {
    let (mb, bias, max) = mf_params(fmt);
    let bits = x.to_bits();
    let fnuz = fmt == MF_E4M3FNUZ || fmt == MF_E5M2FNUZ;
    let sign: u32 = if bits >> 31 == 0 {
        0
    } else if fmt == MF_E2M1 {
        0x8
    } else {
        0x80
    };
    let overflow = |sign: u32| -> u8 {
        if saturate || fmt == MF_E2M1 {
            (sign | max) as u8
        } else if fmt == MF_E5M2 {
            (sign | 0x7c) as u8
        } else if fnuz {
            0x80
        } else {
            (sign | 0x7f) as u8
        }
    };
    if x.is_nan() {
        return match fmt {
            MF_E2M1 => 0x8,
            MF_E4M3FNUZ | MF_E5M2FNUZ => 0x80,
            MF_E5M2 => (sign | 0x7e) as u8,
            _ => (sign | 0x7f) as u8,
        };
    }
    if x.is_infinite() {
        return overflow(sign);
    }
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x007f_ffff;
    // Target biased exponent of x.
    let e = exp - 127 + bias;
    let drop = 23 - mb;
    let q = if exp == 0 {
        0 // float32 subnormals are far below every format's smallest subnormal
    } else if e >= 1 {
        let q = ((e as u32) << mb) | (man >> drop);
        let (rem, half) = (man & ((1 << drop) - 1), 1u32 << (drop - 1));
        if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q }
    } else {
        // Subnormal result: the 24-bit significand in units of the smallest subnormal.
        let shift = drop + (1 - e) as u32;
        if shift > 25 {
            0
        } else {
            let m = man | 0x0080_0000;
            let (q, rem, half) = (m >> shift, m & ((1 << shift) - 1), 1u32 << (shift - 1));
            if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q }
        }
    };
    if q > max {
        return overflow(sign);
    }
    if q == 0 && fnuz {
        return 0;
    }
    (sign | q) as u8
}

/// Rounding modes of [`f32_to_e8m0`]: to the next power of two up (ONNX's default), down,
/// or to the nearest (ties up).
pub const E8M0_UP: u8 = 0;
pub const E8M0_DOWN: u8 = 1;
pub const E8M0_NEAREST: u8 = 2;

/// The E8M0 pattern (`2^(e−127)`) of `|x|` rounded to a power of two by `mode` (`E8M0_*`).
/// Zero and values below `2^-127` give `2^-127` (code 0); NaN gives NaN (`0xff`); infinity
/// and values past `2^127` give `2^127` when `saturate`, else NaN.
#[inline]
pub fn f32_to_e8m0(x: f32, saturate: bool, mode: u8) -> u8 {
    if x.is_nan() {
        return 0xff;
    }
    let bits = x.to_bits() & 0x7fff_ffff;
    let (exp, man) = (bits >> 23, bits & 0x007f_ffff);
    if exp == 0xff {
        return if saturate { 0xfe } else { 0xff };
    }
    let e = if exp == 0 {
        // Below 2^-126: 2^-127 has mantissa 0x400000.
        match mode {
            E8M0_UP => u32::from(man > 0x0040_0000),
            E8M0_NEAREST => u32::from(man >= 0x0060_0000),
            _ => 0,
        }
    } else {
        match mode {
            E8M0_UP => exp + u32::from(man != 0),
            E8M0_NEAREST => exp + u32::from(man >= 0x0040_0000),
            _ => exp,
        }
    };
    if e >= 0xff {
        return if saturate { 0xfe } else { 0xff };
    }
    e as u8
}
