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
