//! `--tune` on a real model (MLPerf Tiny ResNet-8 int8, the host target): every node with
//! several register tiles is timed with each, the record reads back to the same picks, and
//! every tile the tuner may pick computes exactly the int8 simulation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelless::target::TargetDesc;
use modelless::toolchain::{self, IoSig};
use modelless::tune::{self, Tuning};
use modelless::{Config, Lang};
use modelless_e2e::{int8_inputs, model_dir, simulate};
use std::collections::BTreeMap;

#[test]
fn tune_times_every_tile_records_its_picks_and_every_tile_is_bit_exact() {
    let dir = model_dir("mlperf-tiny/ic_resnet8_int8");
    let model = dir.join("model.onnx");
    let cfg = Config::new().lang(Lang::C);
    let host = TargetDesc::host().name;

    let mut lines = vec![];
    let t = tune::tune(&cfg, &model, &mut |s| lines.push(s.to_string())).unwrap();
    // ResNet-8's dense convolutions (its first layer, the 3×3 and the 1×1 shortcuts).
    assert!(t.nodes.len() >= 7, "tuned {} nodes: {lines:?}", t.nodes.len());
    for n in &t.nodes {
        assert!(n.tiles.len() >= 2 && n.ms.len() == n.tiles.len(), "{n:?}");
        assert!(n.ms.iter().all(|&ms| ms.is_finite() && ms > 0.0), "{n:?}");
        assert!(usize::from(n.pick) < n.tiles.len(), "{n:?}");
    }
    assert_eq!(lines.len(), t.nodes.len() + usize::from(t.model_ms.is_some()), "{lines:?}");

    // The record reads back to the same picks, and names its target.
    let tmp = tempfile::tempdir().unwrap();
    let record = tmp.path().join("tuning.toml");
    std::fs::write(&record, t.to_toml()).unwrap();
    assert_eq!(Tuning::read(&record, &host).unwrap(), t.tiles());
    let err = Tuning::read(&record, "cortex-m4").unwrap_err().to_string();
    assert!(err.contains("not cortex-m4") && err.contains("--tune"), "{err}");

    // Each alternative tile, forced on every node that has it, is bit-exact.
    let rule = cfg.clone().compile_to_memory(&model).unwrap();
    let inputs = int8_inputs(&dir, &rule.graph);
    let want = simulate(&rule.graph, &inputs);
    for pick in 1..=2u8 {
        let tiles: BTreeMap<String, u8> =
            (t.nodes.iter()).filter(|n| n.tiles.len() > usize::from(pick)).map(|n| (n.node.clone(), pick)).collect();
        if tiles.is_empty() {
            continue;
        }
        let forced = tiles.len();
        let code = cfg.clone().tiles(tiles).compile_to_memory(&model).unwrap();
        let c = code.files.iter().find(|f| f.name.ends_with(".c")).unwrap();
        assert_eq!(c.contents.matches("chosen by --tune").count(), forced, "tile {pick}");
        let out = tempfile::tempdir().unwrap();
        let h =
            toolchain::build_c(out.path(), &code.name, &code.files, &IoSig::of(&code.graph), &cfg.target, &[]).unwrap();
        assert!(h.run_bytes(&inputs).unwrap() == want, "tile {pick} differs from the int8 simulation");
    }
}

#[test]
fn tune_refuses_what_it_cannot_time() {
    let model = model_dir("mlperf-tiny/ic_resnet8_int8").join("model.onnx");
    let cross = Config::new().lang(Lang::C).target(TargetDesc::load("aarch64").unwrap());
    let err = tune::tune(&cross, &model, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("does not run here") && err.contains("--tuning"), "{err}");
    let rust = Config::new().lang(Lang::Rust);
    let err = tune::tune(&rust, &model, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("--lang c"), "{err}");
}
