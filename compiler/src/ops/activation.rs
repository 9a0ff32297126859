//! Elementwise activations, as standalone ops or fused into the op that produces their input.

/// An activation function `y = f(x)` applied elementwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// `max(x, 0)`
    Relu,
    /// `min(max(x, min), max)`; Relu6 is `Clip { min: 0, max: 6 }`.
    Clip { min: f32, max: f32 },
    /// `x >= 0 ? x : alpha * x`
    LeakyRelu { alpha: f32 },
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// `tanh(x)`
    Tanh,
}

impl Act {
    pub fn name(&self) -> &'static str {
        match self {
            Act::Relu => "Relu",
            Act::Clip { .. } => "Clip",
            Act::LeakyRelu { .. } => "LeakyRelu",
            Act::Sigmoid => "Sigmoid",
            Act::Tanh => "Tanh",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Act::Clip { min, max } => format!("Clip[{min},{max}]"),
            Act::LeakyRelu { alpha } => format!("LeakyRelu[{alpha}]"),
            a => a.name().to_string(),
        }
    }

    /// Reference semantics, identical to what the backends emit.
    pub fn apply(&self, x: f32) -> f32 {
        match *self {
            Act::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            Act::Clip { min, max } => x.max(min).min(max),
            Act::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Tanh => x.tanh(),
        }
    }
}
