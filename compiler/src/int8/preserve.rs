//! Error-preserving weight rounding (`--rounding preserve`).
//!
//! Round-to-nearest treats each weight on its own. A model can be trained so that exactly
//! those roundings switch on hidden behaviour (Qu-ANTI-zation); EFRAP (CVPR 2024) counters
//! it by flipping roundings so that each layer's output on calibration data stays as close
//! as possible to the float layer's. Here, per output channel with weights `w` (in LSB
//! units `u = w / s`) and integer weights `q`, the layer's output error on inputs `X` is
//! `‖X (u − q)‖² = (u − q)ᵀ H (u − q)` with `H = Σ x xᵀ` over the calibration input
//! patches. Starting from nearest rounding, the weight whose flip to its other neighbour
//! (`floor` ↔ `ceil`) lowers that error most is flipped, until no flip helps. Every weight
//! stays within 1 LSB of its float value.

use crate::interp;
use crate::ir::{Graph, Node, TensorData};
use crate::ops::Op;
use std::collections::BTreeMap;

/// `H` matrices of one layer: one `k × k` matrix (row-major) per group (Conv groups; one
/// for Gemm / MatMul), `k` = weights per output channel.
#[derive(Debug, Clone)]
pub struct Hessian {
    pub k: usize,
    pub groups: Vec<Vec<f64>>,
}

/// Input patches of node `n` (Conv / Gemm / MatMul) given its input activation `x`, passed
/// to `f(group, patch)`.
fn patches(g: &Graph, n: &Node, x: &[f32], mut f: impl FnMut(usize, &[f64])) -> Option<()> {
    let xs = g.ty(n.inputs[0]).shape.clone();
    match &n.op {
        Op::Conv(c) => {
            let ws = g.ty(n.inputs[1]).shape.clone();
            let [nb, ci, h, w] = [xs[0], xs[1], xs[2], xs[3]];
            let cg = ws[1];
            let out = g.ty(n.outputs[0]).shape.clone();
            let (oh, ow) = (out[2], out[3]);
            let [kh, kw] = c.kernel;
            let mut p = vec![0.0f64; cg * kh * kw];
            for b in 0..nb {
                for grp in 0..c.group {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for cc in 0..cg {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy =
                                            (oy * c.strides[0] + ky * c.dilations[0]) as isize - c.pads[0] as isize;
                                        let ix =
                                            (ox * c.strides[1] + kx * c.dilations[1]) as isize - c.pads[1] as isize;
                                        let inside = iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w;
                                        let ch = grp * cg + cc;
                                        p[(cc * kh + ky) * kw + kx] = if inside && ch < ci {
                                            x[((b * ci + ch) * h + iy as usize) * w + ix as usize] as f64
                                        } else {
                                            0.0
                                        };
                                    }
                                }
                            }
                            f(grp, &p);
                        }
                    }
                }
            }
            Some(())
        }
        Op::Gemm(gm) if !gm.trans_a && xs.len() == 2 => {
            for row in x.chunks(xs[1]) {
                let p: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                f(0, &p);
            }
            Some(())
        }
        Op::MatMul(_) => {
            let k = *xs.last()?;
            for row in x.chunks(k) {
                let p: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                f(0, &p);
            }
            Some(())
        }
        _ => None,
    }
}

/// `H` for every node named in `layers`, from the float graph's activations on `samples`.
pub fn hessians(
    g: &Graph,
    layers: &[String],
    samples: &[Vec<TensorData>],
) -> Result<BTreeMap<String, Hessian>, String> {
    let mut out: BTreeMap<String, Hessian> = BTreeMap::new();
    for s in samples {
        let vals = interp::run_all(g, s)?;
        for n in g.nodes.iter().filter(|n| layers.contains(&n.name)) {
            let Some(Some(TensorData::F32(x))) = vals.get(n.inputs[0].0) else { continue };
            let groups = match &n.op {
                Op::Conv(c) => c.group,
                _ => 1,
            };
            patches(g, n, x, |grp, p| {
                let k = p.len();
                let h =
                    out.entry(n.name.clone()).or_insert_with(|| Hessian { k, groups: vec![vec![0.0; k * k]; groups] });
                let m = &mut h.groups[grp];
                for (i, &a) in p.iter().enumerate() {
                    if a != 0.0 {
                        for (j, &b) in p.iter().enumerate() {
                            m[i * k + j] += a * b;
                        }
                    }
                }
            });
        }
    }
    Ok(out)
}

/// Re-rounds the integer weights `q` of one output channel (`u` = float weights in LSB
/// units, same order as `H`'s rows) to lower `(u − q)ᵀ H (u − q)`. Values stay in
/// `[-127, 127]` and within 1 LSB of `u`.
pub fn flip_channel(u: &[f64], q: &mut [i32], h: &[f64]) {
    let k = u.len();
    let mut r: Vec<f64> = u.iter().zip(q.iter()).map(|(&u, &q)| u - q as f64).collect();
    let mut hr: Vec<f64> = (0..k).map(|i| (0..k).map(|j| h[i * k + j] * r[j]).sum()).collect();
    for _ in 0..k {
        let mut best = (0.0f64, usize::MAX, 0i32);
        for i in 0..k {
            // The other neighbour of u_i: one step toward u.
            let d = if r[i] > 0.0 { 1 } else { -1 };
            if r[i] == 0.0 || !(-127..=127).contains(&(q[i] + d)) {
                continue;
            }
            let df = d as f64;
            let delta = -2.0 * df * hr[i] + h[i * k + i];
            if delta < best.0 - 1e-12 {
                best = (delta, i, d);
            }
        }
        if best.1 == usize::MAX {
            break;
        }
        let (i, d) = (best.1, best.2);
        q[i] += d;
        r[i] -= d as f64;
        for (j, hj) in hr.iter_mut().enumerate() {
            *hj -= d as f64 * h[j * k + i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(u: &[f64], q: &[i32], h: &[f64]) -> f64 {
        let k = u.len();
        let r: Vec<f64> = u.iter().zip(q).map(|(&u, &q)| u - q as f64).collect();
        (0..k).map(|i| (0..k).map(|j| r[i] * h[i * k + j] * r[j]).sum::<f64>()).sum()
    }

    #[test]
    fn flips_reduce_the_output_error_and_stay_within_one_lsb() {
        // Two perfectly correlated inputs: rounding both 0.4 down loses 0.8 LSB of output;
        // flipping one of them up leaves 0.2.
        let u = [0.4, 0.4, 3.0];
        let h = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let mut q = [0, 0, 3];
        let before = err(&u, &q, &h);
        flip_channel(&u, &mut q, &h);
        let after = err(&u, &q, &h);
        assert!(after < before, "{before} -> {after}");
        assert!((after - 0.04).abs() < 1e-9, "{after}");
        assert!(q.iter().zip(&u).all(|(&q, &u)| (q as f64 - u).abs() < 1.0));
    }
}
