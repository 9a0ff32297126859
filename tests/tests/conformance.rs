//! ONNX backend conformance on the suites in ../shared: every test of every suite is
//! compiled to C and Rust, run, and compared with its expected outputs. The run must have
//! no failures, must match the checked-in expectations (`tests/conformance/expected.tsv`:
//! a regression and a newly passing test both show up), and must reproduce `docs/ops.md`.
//! After a deliberate change, rerun with `MODELLESS_BLESS=1` to rewrite both files.

use modelless::conformance::{CaseResult, Outcome, SuiteResults, expectations, ops_markdown, run_suite};
use std::path::Path;

const SUITES: &[&str] = &[
    "onnx-backend-opset17/node",
    "onnx-backend/node",
    "onnx-backend/simple",
    "onnx-backend/pytorch-converted",
    "onnx-backend/pytorch-operator",
];

#[test]
fn conformance_suites() {
    let shared = modelless_e2e::shared();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut all: Vec<(&str, Vec<CaseResult>)> = vec![];
    for suite in SUITES {
        let work = tempfile::tempdir().unwrap();
        let results = run_suite(&shared.join(suite), work.path(), jobs).unwrap();
        assert!(!results.is_empty(), "{suite} has no tests");
        all.push((suite, results));
    }
    let mut failures = vec![];
    for (suite, results) in &all {
        for r in results.iter() {
            for (lang, o) in [("c", &r.c), ("rust", &r.rust)] {
                if let Outcome::Fail(m) = o {
                    failures.push(format!("{suite}/{} [{lang}]: {m}", r.name));
                }
            }
        }
        let (c, rust) = (
            modelless::conformance::tally(results, modelless::Lang::C),
            modelless::conformance::tally(results, modelless::Lang::Rust),
        );
        println!(
            "{suite}: C {} passed, {} failed, {} unsupported; Rust {} passed, {} failed, {} unsupported",
            c.0, c.1, c.2, rust.0, rust.1, rust.2
        );
    }
    let expected_now: String = all.iter().map(|(s, r)| expectations(s, r)).collect();
    let md = ops_markdown(&all.iter().map(|(s, r)| SuiteResults { suite: s, results: r }).collect::<Vec<_>>());
    let (exp_path, md_path) = (root.join("tests/conformance/expected.tsv"), root.join("docs/ops.md"));
    if std::env::var_os("MODELLESS_BLESS").is_some() {
        std::fs::write(&exp_path, &expected_now).unwrap();
        std::fs::write(&md_path, &md).unwrap();
    }
    assert!(failures.is_empty(), "{} conformance failures:\n{}", failures.len(), failures.join("\n"));
    let expected = std::fs::read_to_string(&exp_path).unwrap_or_default();
    let diff: Vec<String> = {
        let old: std::collections::BTreeSet<&str> = expected.lines().collect();
        let new: std::collections::BTreeSet<&str> = expected_now.lines().collect();
        old.symmetric_difference(&new)
            .map(|l| if old.contains(l) { format!("- {l}") } else { format!("+ {l}") })
            .collect()
    };
    assert!(
        diff.is_empty(),
        "conformance differs from tests/conformance/expected.tsv (MODELLESS_BLESS=1 to accept):\n{}",
        diff.join("\n")
    );
    let md_file = std::fs::read_to_string(&md_path).unwrap_or_default();
    assert!(md_file == md, "docs/ops.md is stale: rerun with MODELLESS_BLESS=1");
}
