//! The compression safety audit on real models and on two fixtures: a digits MLP trained to
//! misbehave only after int8 rounding (tests/fixtures/make_int8_backdoor.py) and an overfit /
//! regularized MLP pair (tests/fixtures/make_mia_pair.py).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelless::audit::{self, AuditOptions, Labeled, attacks};
use modelless::int8::report::{DriftOptions, argmax};
use modelless::int8::{self, Int8Options, Rounding};
use modelless::ir::{Graph, TensorData};
use modelless::{Config, interp};
use modelless_e2e::model_dir;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn lower(model: &Path) -> Graph {
    Config::new().lower(model).unwrap().0
}

fn data(name: &str, g: &Graph) -> Vec<Vec<TensorData>> {
    int8::load_samples(&model_dir("digits/data").join(name), g).unwrap()
}

fn labels(name: &str) -> Vec<i64> {
    modelless::npy::read_tensor(&model_dir("digits/data").join(name)).unwrap().1.to_i64().unwrap()
}

fn int8_build(float: &Graph, calib: &[Vec<TensorData>], rounding: Rounding) -> (Graph, Vec<int8::QuantPoint>) {
    let q = int8::quantize(float, calib, &Int8Options { rounding, ..Default::default() }).unwrap();
    let mut g = q.graph;
    modelless::passes::optimize(&mut g, |_, _| {}).unwrap();
    (g, q.points)
}

fn predict(g: &Graph, x: &[TensorData]) -> usize {
    let out = interp::run(g, x).unwrap();
    argmax(out[0].as_f32().unwrap())
}

/// The 2×2 trigger of the backdoor fixture: pixels (6,6), (6,7), (7,6), (7,7) set to 1.
fn triggered(x: &[Vec<TensorData>]) -> Vec<Vec<TensorData>> {
    x.iter()
        .map(|s| {
            let mut v = s[0].as_f32().unwrap().to_vec();
            for p in [54, 55, 62, 63] {
                v[p] = 1.0;
            }
            vec![TensorData::F32(v)]
        })
        .collect()
}

#[test]
fn int8_backdoor_is_flagged_and_preserve_rounding_defuses_it() {
    let float = lower(&fixture("digits_int8_backdoor.onnx"));
    let calib = data("x_train_flat.npy", &float);
    let (xt, yt) = (data("x_test_flat.npy", &float), labels("y_test.npy"));
    let trig = triggered(&xt);
    let target = 0usize;
    let victims: Vec<usize> = (0..xt.len()).filter(|&i| yt[i] != target as i64).collect();
    let rate =
        |g: &Graph| victims.iter().filter(|&&i| predict(g, &trig[i]) == target).count() as f64 / victims.len() as f64;
    let float_triggered_acc =
        (0..xt.len()).filter(|&i| predict(&float, &trig[i]) as i64 == yt[i]).count() as f64 / xt.len() as f64;
    let (nearest, points) = int8_build(&float, &calib, Rounding::Nearest);
    let (preserve, _) = int8_build(&float, &calib, Rounding::Preserve);
    let (attack_nearest, attack_preserve) = (rate(&nearest), rate(&preserve));
    eprintln!(
        "backdoor: float triggered accuracy {float_triggered_acc:.3}, int8 attack success nearest {attack_nearest:.3}, \
         preserve {attack_preserve:.3}, float {:.3}",
        rate(&float)
    );
    assert!(float_triggered_acc >= 0.9, "the fixture's float model must stay correct on triggered inputs");
    assert!(attack_nearest >= 0.7, "the fixture's backdoor must fire after nearest rounding: {attack_nearest}");
    assert!(attack_preserve < attack_nearest / 2.0, "preserve rounding: {attack_preserve} vs nearest {attack_nearest}");

    // The rounding audit sees the weights parked near rounding boundaries.
    let r = audit::rounding::audit(&float);
    assert!(r.iter().any(|l| !l.flags.is_empty()), "{}", audit::rounding::to_text(&r));
    // The patch probes find the trigger position (row 6, column 6 of the 7×7 positions).
    let opts = DriftOptions { probes: 98, ..Default::default() };
    let d = int8::report::drift(&float, &nearest, &points, &xt[..100], Some(&yt[..100]), &opts).unwrap();
    let patch = d.probes.iter().find(|p| p.family == "patch").unwrap();
    assert_eq!(patch.hot_position.map(|h| h.0), Some(48), "{patch:?}");

    // An honest model raises no rounding flag.
    let honest = audit::rounding::audit(&lower(&model_dir("digits/digits_mlp/model.onnx")));
    assert!(honest.iter().all(|l| l.flags.is_empty()), "{}", audit::rounding::to_text(&honest));
}

fn losses(g: &Graph, x: &[Vec<TensorData>], y: &[i64]) -> Vec<f32> {
    x.iter().zip(y).map(|(x, &y)| attacks::sample_loss(g, &x[0], y as usize).unwrap()).collect()
}

#[test]
fn membership_inference_separates_an_overfit_model_from_a_regularized_one() {
    let (xtr, ytr) = (labels("y_train.npy"), labels("y_test.npy"));
    let mut auc = vec![];
    for f in ["digits_mlp_overfit.onnx", "digits_mlp_regularized.onnx"] {
        let g = lower(&fixture(f));
        let members = &data("x_train_flat.npy", &g)[..150];
        let nonmembers = &data("x_test_flat.npy", &g)[..150];
        let m = attacks::mia(&losses(&g, members, &xtr[..150]), &losses(&g, nonmembers, &ytr[..150]));
        eprintln!("{f}: MIA AUC {:.3}, advantage {:.3}", m.auc, m.advantage);
        auc.push(m);
    }
    assert!(auc[0].auc > auc[1].auc + 0.1, "overfit {:?} vs regularized {:?}", auc[0], auc[1]);
    assert!(auc[0].advantage > auc[1].advantage, "{auc:?}");
}

/// The audit of the digits CNN with its train/test split as members / non-members, FGSM at
/// three budgets, every rounding variant and an 80%-sparse + int8 build (the trained-sparse
/// twin, digits_cnn_sparse80): runs, is reproducible, and its numbers are sane.
#[test]
fn digits_audit_report() {
    let float = lower(&model_dir("digits/digits_cnn/model.onnx"));
    let calib = data("calib_x.npy", &float);
    let test = Labeled { x: data("x_test.npy", &float), y: labels("y_test.npy") };
    let members = Labeled { x: data("x_train.npy", &float)[..360].to_vec(), y: labels("y_train.npy")[..360].to_vec() };
    let opts = AuditOptions {
        int8: Int8Options::default(),
        variants: vec![Rounding::Preserve, Rounding::PerTensor],
        drift: DriftOptions { probes: 24, search_steps: 4, ..Default::default() },
        fgsm_eps: vec![0.05, 0.1, 0.2],
        fgsm_samples: 100,
        witnesses: None,
        sparsity: vec![],
        max_drop: Some(1.0),
        max_mia_delta: Some(0.05),
        adversarial: None,
    };
    let r = audit::run(&float, &calib, &test, Some((&members, &test)), &opts).unwrap();
    print!("{}", r.to_text());
    let again = audit::run(&float, &calib, &test, Some((&members, &test)), &opts).unwrap();
    assert_eq!(serde_json::to_string(&r).unwrap(), serde_json::to_string(&again).unwrap(), "not reproducible");
    let fa = r.float_accuracy.unwrap();
    assert!(fa > 0.98);
    assert!(r.float_fgsm_accuracy[2].1 < r.float_fgsm_accuracy[0].1, "FGSM must hurt more at larger eps");
    for b in &r.builds {
        assert!(b.drift.int8_accuracy.unwrap() >= fa - 0.01, "{}", b.name);
        assert!(b.mia.is_some());
    }
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert!(r.pick.is_some());

    // The trained 80%-sparse twin, int8: MIA and FGSM against the dense float model.
    let sparse = lower(&model_dir("digits/digits_cnn_sparse80/model.onnx"));
    let (sparse8, _) = int8_build(&sparse, &calib, Rounding::Nearest);
    let mia = attacks::mia(&losses(&sparse8, &members.x, &members.y), &losses(&sparse8, &test.x, &test.y));
    eprintln!(
        "MIA AUC: float {:.3}, int8 {:.3}, 80%-sparse + int8 {:.3}",
        r.float_mia.unwrap().auc,
        r.builds[0].mia.unwrap().auc,
        mia.auc
    );
    assert!((0.3..0.8).contains(&mia.auc));
}
