//! A program that embeds a neural network compiled at build time (see build.rs): it
//! classifies a few handwritten digits with the Rust and with the C build of the model.

mod digits {
    include!(concat!(env!("OUT_DIR"), "/digits.rs"));
}
mod digits_c {
    include!(concat!(env!("OUT_DIR"), "/digits_c.rs"));
}
mod samples;

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0)
}

/// Logits of both builds for one 8×8 image.
fn classify(image: &[f32; 64]) -> ([f32; digits::OUTPUT_LEN], [f32; digits_c::OUTPUT_LEN]) {
    let mut arena = digits::Arena::new();
    let mut out = [0f32; digits::OUTPUT_LEN];
    digits::run(image, &mut out, &mut arena);
    let mut arena_c = digits_c::Arena::new();
    let mut out_c = [0f32; digits_c::OUTPUT_LEN];
    digits_c::run(image, &mut out_c, &mut arena_c);
    (out, out_c)
}

fn main() -> std::process::ExitCode {
    let mut ok = true;
    println!("arena: {} bytes (Rust), {} bytes (C)", digits::ARENA_BYTES, digits_c::ARENA_BYTES);
    for (image, &label) in samples::DIGITS.iter().zip(&samples::LABELS) {
        let (rust, c) = classify(image);
        let (pr, pc) = (argmax(&rust), argmax(&c));
        println!("label {label}: Rust says {pr}, C says {pc}");
        ok &= pr == label && pc == label;
    }
    if ok { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn both_builds_classify_the_samples() {
        assert_eq!(digits::INPUT_LEN, 64);
        for (image, &label) in samples::DIGITS.iter().zip(&samples::LABELS) {
            let (rust, c) = classify(image);
            assert_eq!(argmax(&rust), label);
            assert_eq!(argmax(&c), label);
            for (a, b) in rust.iter().zip(&c) {
                assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{rust:?} vs {c:?}");
            }
        }
    }

    fn shared() -> PathBuf {
        let dir = std::env::var_os("MODELLESS_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
        assert!(dir.join("models").is_dir(), "shared material missing at {}", dir.display());
        dir
    }

    /// Both builds match ONNX Runtime on the model's shipped test sets.
    #[test]
    fn matches_onnx_runtime() {
        let dir = shared().join("models/digits/digits_cnn");
        let mut sets = 0;
        for k in 0.. {
            let set = dir.join(format!("test_data_set_{k}"));
            if !set.is_dir() {
                break;
            }
            let read = |f: &str| {
                let (_, data) = modelless::frontend::read_tensor_file(&set.join(f)).unwrap();
                data.as_f32().unwrap().to_vec()
            };
            let input: [f32; 64] = read("input_0.pb").try_into().unwrap();
            let want = read("output_0.pb");
            let (rust, c) = classify(&input);
            let tol = 1e-4 * want.iter().fold(1f32, |m, v| m.max(v.abs()));
            for got in [&rust[..], &c[..]] {
                let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(err <= tol, "test_data_set_{k}: max abs error {err} > {tol}");
            }
            sets += 1;
        }
        assert!(sets > 0);
    }
}
