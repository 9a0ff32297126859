//! Elementwise unary functions on float32, as standalone ops or fused into the op that
//! produces their input. Each maps to one runtime helper (`mlrt_<name>` in C, `rt::<name>`
//! in Rust) taking the value and the function's parameters, so backends need no
//! per-function code: adding one means a variant here and a helper in `runtime-shims/`.
//! A few also run on float64 through a second helper (`mlrt_<name>64`, `rt::<name>64`),
//! see [`Act::helper64`]; float64 activations are never fused.

/// An elementwise function `y = f(x)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// `max(x, 0)`
    Relu,
    /// `min(max(x, min), max)`; Relu6 is `Clip { min: 0, max: 6 }`.
    Clip {
        min: f32,
        max: f32,
    },
    /// `x >= 0 ? x : alpha * x`
    LeakyRelu {
        alpha: f32,
    },
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// `tanh(x)`
    Tanh,
    Abs,
    Neg,
    Exp,
    /// Natural logarithm.
    Log,
    Sqrt,
    /// `1 / x`
    Reciprocal,
    Floor,
    Ceil,
    /// Round half to even.
    Round,
    Erf,
    /// -1, 0 or 1 (NaN stays NaN).
    Sign,
    /// `log(1 + exp(x))`
    Softplus,
    /// `x / (1 + |x|)`
    Softsign,
    /// `x >= 0 ? x : alpha * (exp(x) - 1)`
    Elu {
        alpha: f32,
    },
    /// `gamma * (x > 0 ? x : alpha * (exp(x) - 1))`
    Selu {
        alpha: f32,
        gamma: f32,
    },
    /// `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`
    Celu {
        alpha: f32,
    },
    /// `max(0, min(1, alpha * x + beta))`
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * max(0, min(1, x / 6 + 1 / 2))`
    HardSwish,
    /// `x / 2 * (1 + erf(x / sqrt 2))`
    Gelu,
    /// `x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))`
    GeluTanh,
    /// `x > alpha ? x : 0`
    ThresholdedRelu {
        alpha: f32,
    },
    /// `x * tanh(softplus(x))`
    Mish,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
}

impl Act {
    pub fn name(&self) -> &'static str {
        self.helper().0
    }

    /// The runtime helper's name and the parameters passed after `x`.
    pub fn helper(&self) -> (&'static str, Vec<f32>) {
        use Act::*;
        match *self {
            Relu => ("relu", vec![]),
            Clip { min, max } => ("clip", vec![min, max]),
            LeakyRelu { alpha } => ("leaky_relu", vec![alpha]),
            Sigmoid => ("sigmoid", vec![]),
            Tanh => ("tanh", vec![]),
            Abs => ("abs", vec![]),
            Neg => ("neg", vec![]),
            Exp => ("exp", vec![]),
            Log => ("log", vec![]),
            Sqrt => ("sqrt", vec![]),
            Reciprocal => ("reciprocal", vec![]),
            Floor => ("floor", vec![]),
            Ceil => ("ceil", vec![]),
            Round => ("round_even", vec![]),
            Erf => ("erf", vec![]),
            Sign => ("sign", vec![]),
            Softplus => ("softplus", vec![]),
            Softsign => ("softsign", vec![]),
            Elu { alpha } => ("elu", vec![alpha]),
            Selu { alpha, gamma } => ("selu", vec![alpha, gamma]),
            Celu { alpha } => ("celu", vec![alpha]),
            HardSigmoid { alpha, beta } => ("hard_sigmoid", vec![alpha, beta]),
            HardSwish => ("hard_swish", vec![]),
            Gelu => ("gelu", vec![]),
            GeluTanh => ("gelu_tanh", vec![]),
            ThresholdedRelu { alpha } => ("thresholded_relu", vec![alpha]),
            Mish => ("mish", vec![]),
            Sin => ("sin", vec![]),
            Cos => ("cos", vec![]),
            Tan => ("tan", vec![]),
            Asin => ("asin", vec![]),
            Acos => ("acos", vec![]),
            Atan => ("atan", vec![]),
            Sinh => ("sinh", vec![]),
            Cosh => ("cosh", vec![]),
            Asinh => ("asinh", vec![]),
            Acosh => ("acosh", vec![]),
            Atanh => ("atanh", vec![]),
        }
    }

    /// The float64 runtime helper's name (`mlrt_<name>` in C, `rt::<name>` in Rust), for
    /// the functions that also have a float64 kernel; `None` for the float32-only ones.
    /// Float64 helpers take no parameters.
    pub fn helper64(&self) -> Option<&'static str> {
        match self {
            Act::Exp => Some("exp64"),
            Act::Log => Some("log64"),
            Act::Sqrt => Some("sqrt64"),
            Act::Abs => Some("abs64"),
            _ => None,
        }
    }

    /// Reference float64 semantics of the functions with a [`helper64`](Act::helper64).
    pub fn apply64(&self, x: f64) -> Option<f64> {
        self.helper64()?;
        Some(match self {
            Act::Exp => x.exp(),
            Act::Log => x.ln(),
            Act::Sqrt => x.sqrt(),
            _ => x.abs(),
        })
    }

    pub fn describe(&self) -> String {
        let (name, params) = self.helper();
        if params.is_empty() { name.to_string() } else { format!("{name}{params:?}") }
    }

    /// Reference semantics (host `std` math), used by constant folding.
    pub fn apply(&self, x: f32) -> f32 {
        use Act::*;
        let erf = |v: f64| {
            // Abramowitz & Stegun 7.1.26 is too coarse for folding; use the series/continued
            // fraction pair through f64 instead.
            erf_f64(v)
        };
        match *self {
            Relu => x.max(0.0),
            Clip { min, max } => x.max(min).min(max),
            LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Tanh => x.tanh(),
            Abs => x.abs(),
            Neg => -x,
            Exp => x.exp(),
            Log => x.ln(),
            Sqrt => x.sqrt(),
            Reciprocal => 1.0 / x,
            Floor => x.floor(),
            Ceil => x.ceil(),
            Round => x.round_ties_even(),
            Erf => erf(x as f64) as f32,
            Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            Softplus => (x.exp() + 1.0).ln(),
            Softsign => x / (1.0 + x.abs()),
            Elu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * (x.exp() - 1.0)
                }
            }
            Selu { alpha, gamma } => gamma * if x > 0.0 { x } else { alpha * (x.exp() - 1.0) },
            Celu { alpha } => x.max(0.0) + (alpha * ((x / alpha).exp() - 1.0)).min(0.0),
            HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Gelu => 0.5 * x * (1.0 + erf(x as f64 / std::f64::consts::SQRT_2) as f32),
            GeluTanh => 0.5 * x * (1.0 + ((2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
            ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
            Mish => x * (x.exp() + 1.0).ln().tanh(),
            Sin => x.sin(),
            Cos => x.cos(),
            Tan => x.tan(),
            Asin => x.asin(),
            Acos => x.acos(),
            Atan => x.atan(),
            Sinh => x.sinh(),
            Cosh => x.cosh(),
            Asinh => x.asinh(),
            Acosh => x.acosh(),
            Atanh => x.atanh(),
        }
    }
}

/// erf in f64 (Taylor series for |x| < 2.5, continued fraction for erfc beyond).
fn erf_f64(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 2.5 {
        let mut term = a;
        let mut sum = a;
        let x2 = a * a;
        for n in 1..60 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(a) = exp(-a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...))))
        let mut f = a;
        for k in (1..60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
    };
    if x < 0.0 { -r } else { r }
}
