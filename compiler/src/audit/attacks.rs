//! FGSM adversarial examples and the loss-threshold membership inference attack.
//!
//! - [`fgsm`] (Goodfellow et al.; "Adversarial Machine Learning at Scale"): one step of
//!   size `eps` along the sign of the float model's input gradient of the cross-entropy
//!   ([`crate::interp::grad`]), clipped to the data range. [`random_sign`] is the control:
//!   the same L∞ budget in a random direction.
//! - [`mia`] (Yeom et al., "Privacy Risk in Machine Learning", 2018): a black-box attacker
//!   who sees the per-sample loss guesses "member" when it is below a threshold. Reported
//!   as the ROC AUC of the score −loss (members positive) and the advantage, the best
//!   TPR − FPR over all thresholds.

use crate::int8;
use crate::interp::{self, grad};
use crate::ir::{DType, Graph, TensorData};
use serde::Serialize;

/// The FGSM example `clip(x + eps · sign(∇x loss), lo, hi)` for the sample `x` (graph input
/// 0, float) of class `label`, with the loss of [`grad::loss_and_input_grad`].
pub fn fgsm(g: &Graph, x: &[f32], label: usize, eps: f32, lo: f32, hi: f32) -> Result<Vec<f32>, String> {
    check_range(lo, hi)?;
    let (_, dx) = grad::loss_and_input_grad(g, &[TensorData::F32(x.to_vec())], label)?;
    Ok(x.iter().zip(&dx).map(|(&v, &d)| clip(v + eps * sign(d), lo, hi)).collect())
}

/// The control for [`fgsm`]: `clip(x ± eps, lo, hi)` with independent random signs drawn
/// from `seed` (a fixed xorshift generator, so results are reproducible).
pub fn random_sign(x: &[f32], eps: f32, lo: f32, hi: f32, seed: u64) -> Result<Vec<f32>, String> {
    check_range(lo, hi)?;
    let mut s = seed ^ 0x9e37_79b9_7f4a_7c15;
    Ok(x.iter()
        .map(|&v| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            clip(v + if s >> 63 == 1 { eps } else { -eps }, lo, hi)
        })
        .collect())
}

fn check_range(lo: f32, hi: f32) -> Result<(), String> {
    if lo <= hi { Ok(()) } else { Err(format!("empty data range [{lo}, {hi}]")) }
}

fn sign(d: f32) -> f32 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn clip(v: f32, lo: f32, hi: f32) -> f32 {
    v.max(lo).min(hi)
}

/// Cross-entropy of `softmax(logits)` against `label` for one sample (the attacker's view
/// in [`mia`]). The logits are chosen as in [`grad::logits_value`]; int8 logits are
/// dequantized with their type's quantization parameters. A float `input` given to a
/// graph with an int8 input (`--io int8`) is quantized with the input's parameters.
pub fn sample_loss(g: &Graph, input: &TensorData, label: usize) -> Result<f32, String> {
    let first = g.inputs.first().ok_or("the graph has no input")?;
    let quantize = input.dtype() == DType::F32 && g.ty(*first).dtype != DType::F32;
    let inputs = if quantize {
        int8::quantize_inputs(g, std::slice::from_ref(input)).map_err(|e| e.to_string())?
    } else {
        vec![input.clone()]
    };
    let vals = interp::run_all(g, &inputs)?;
    let z = grad::logits_value(g)?;
    let d = vals.get(z.0).and_then(Option::as_ref).ok_or_else(|| format!("the logits %{} are not computed", z.0))?;
    let logits = match d {
        TensorData::F32(v) => v.clone(),
        d => {
            let ty = g.ty(z);
            let q = ty.quant.as_ref().ok_or_else(|| format!("{} logits without quantization parameters", d.dtype()))?;
            match (q.scale.as_slice(), q.zero_point.as_slice()) {
                (&[s], &[zp]) => int8::dequantize(d, s, zp),
                _ => return Err("per-channel quantized logits".into()),
            }
        }
    };
    Ok(grad::cross_entropy(&logits, label)?.0)
}

/// Result of the loss-threshold membership inference attack.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MiaResult {
    /// ROC AUC of the score −loss with members as positives (0.5: no leakage).
    pub auc: f64,
    /// max over thresholds of TPR − FPR (0: no leakage).
    pub advantage: f64,
    pub members: usize,
    pub nonmembers: usize,
}

/// The Yeom et al. attack from per-sample losses of members (training samples) and
/// non-members. AUC by ranks with ties averaged; NaN losses count as infinitely large.
/// With either set empty the attack has nothing to separate: AUC 0.5, advantage 0.
pub fn mia(member_losses: &[f32], nonmember_losses: &[f32]) -> MiaResult {
    let (n1, n0) = (member_losses.len(), nonmember_losses.len());
    let mut res = MiaResult { auc: 0.5, advantage: 0.0, members: n1, nonmembers: n0 };
    if n1 == 0 || n0 == 0 {
        return res;
    }
    let score = |l: f32| if l.is_nan() { f64::NEG_INFINITY } else { -(l as f64) };
    let mut all: Vec<(f64, bool)> = member_losses
        .iter()
        .map(|&l| (score(l), true))
        .chain(nonmember_losses.iter().map(|&l| (score(l), false)))
        .collect();
    // Descending score: sweeping the threshold down admits one tie group at a time.
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    // Σ over members of the (1-based, ascending) rank, ties averaged.
    let mut rank_sum = 0.0f64;
    let total = all.len();
    let mut i = 0;
    while i < total {
        let mut j = i;
        while j < total && all[j].0 == all[i].0 {
            j += 1;
        }
        let pos = all[i..j].iter().filter(|e| e.1).count();
        // Descending positions i..j are ascending ranks total-j+1 ..= total-i.
        let avg_rank = ((total - j + 1) + (total - i)) as f64 / 2.0;
        rank_sum += pos as f64 * avg_rank;
        tp += pos;
        fp += (j - i) - pos;
        res.advantage = res.advantage.max(tp as f64 / n1 as f64 - fp as f64 / n0 as f64);
        i = j;
    }
    res.auc = (rank_sum - (n1 * (n1 + 1)) as f64 / 2.0) / (n1 as f64 * n0 as f64);
    res
}
