//! `modelless audit`: what compression (int8 rounding, sparsity) did to a model's accuracy,
//! privacy (membership inference) and robustness (FGSM), and whether int8 rounding was
//! weaponized (a model that misbehaves only after rounding).
//!
//! - [`rounding`]: per-layer weight rounding residual histograms and per-channel truncation
//!   error, with outlier flags (the EFRAP signal), and the rounding variants
//!   (nearest, floor, ceil, per-tensor, error-preserving flips);
//! - [`attacks`]: FGSM examples from the float model's input gradients and the Yeom
//!   loss-threshold membership inference attack.

pub mod attacks;
pub mod rounding;
