//! Differential smoke test (what CI runs of the `differential` fuzz target): the fuzz
//! generator (`fuzz/src/lib.rs`, included here) turns fixed pseudo-random byte strings into
//! small graphs of supported ops; each is compiled to C by the library, built and run on
//! random inputs, and compared with the reference interpreter (`modelless::interp::run`):
//! float within 1e-4 of the output's magnitude, int8 exact. See fuzz/README.md for the
//! long cargo-fuzz run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod fuzzgen;

use arbitrary::{Arbitrary, Unstructured};
use fuzzgen::{Diff, FuzzModel, differential};

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

#[test]
fn generated_c_matches_the_reference_interpreter_on_random_graphs() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut agree, mut skipped, mut values, mut findings) = (0, 0, 0, vec![]);
    let mut int8_agree = 0;
    for seed in 0..40u64 {
        let data = bytes(seed, 96 + (seed as usize * 37) % 160);
        let Ok(m) = FuzzModel::arbitrary(&mut Unstructured::new(&data)) else { continue };
        let int8 = seed % 4 == 3;
        let work = tmp.path().join(format!("s{seed}"));
        std::fs::create_dir_all(&work).unwrap();
        match differential(&m, seed, int8, &work) {
            Ok(Diff::Agree { values: v, .. }) => {
                agree += 1;
                values += v;
                int8_agree += int8 as usize;
            }
            Ok(Diff::Skipped(why)) => {
                skipped += 1;
                eprintln!("seed {seed} (int8 {int8}): skipped: {why}");
            }
            Err(e) => findings.push(format!("seed {seed} (int8 {int8}): {e}\n{m:?}")),
        }
    }
    eprintln!("{agree} graphs agree ({int8_agree} int8, {values} values), {skipped} skipped");
    assert!(findings.is_empty(), "{} mismatches:\n{}", findings.len(), findings.join("\n\n"));
    assert!(agree >= 20, "only {agree} of 40 graphs compared");
}
