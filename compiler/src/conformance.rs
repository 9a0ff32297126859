//! ONNX backend conformance: runs the node/model tests of an ONNX test suite folder
//! through both backends and classifies each test as pass, fail (wrong numbers, crash or
//! an error that is not "unsupported") or unsupported (a clear unsupported error).
//!
//! Thousands of cases cannot each pay a compiler run: every supported case of a suite is
//! emitted under its own symbol prefix into one C program (objects compiled in parallel)
//! and one Rust crate (a single rustc run); a dispatcher `main` selects the case by index.

use crate::backend::OutFile;
use crate::compile::{Config, Lang};
use crate::error::{Error, Result};
use crate::frontend::read_tensor_file;
use crate::ir::{DType, TensorData, TensorType};
use crate::toolchain::{IoSig, c_build, c_harness_source, run_checked, rust_harness_source};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Outcome of one test in one language.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Pass,
    /// Wrong numbers, a crash, or an unexpected error: a bug.
    Fail(String),
    /// A clear "unsupported" error (op, attribute, dtype or dynamic shape).
    Unsupported(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Unsupported(_) => "unsupported",
        }
    }
}

/// One test folder's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Folder name, e.g. `test_relu`.
    pub name: String,
    /// ONNX op types used by the model (for the op table).
    pub ops: Vec<String>,
    pub c: Outcome,
    pub rust: Outcome,
}

/// One test set: input tensors and expected outputs.
struct TestSet {
    inputs: Vec<(TensorType, TensorData)>,
    outputs: Vec<(TensorType, TensorData)>,
}

/// A case that compiled: its emitted files per language, signature and test sets.
struct Prepared {
    index: usize,
    /// Test-set inputs fed at run time (the others are bound at build time).
    feed: Vec<usize>,
    sig: IoSig,
    out_types: Vec<TensorType>,
    c_files: Vec<OutFile>,
    rust_files: Vec<OutFile>,
    sets: Vec<TestSet>,
}

/// The test folders of a suite directory, sorted.
pub fn list_cases(suite: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(suite).map_err(|source| Error::Read { path: suite.into(), source })?;
    let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.join("model.onnx").exists()).collect();
    v.sort();
    Ok(v)
}

fn read_sets(case: &Path) -> std::result::Result<Vec<TestSet>, String> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(case)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
        .collect();
    dirs.sort();
    let mut sets = vec![];
    for d in dirs {
        let read = |prefix: &str| -> std::result::Result<Vec<(TensorType, TensorData)>, String> {
            (0..)
                .map(|i| d.join(format!("{prefix}_{i}.pb")))
                .take_while(|p| p.exists())
                .map(|p| read_tensor_file(&p).map_err(|e| e.to_string()))
                .collect()
        };
        sets.push(TestSet { inputs: read("input")?, outputs: read("output")? });
    }
    Ok(sets)
}

/// Names of the model's graph inputs that are not initializers, in order.
fn model_inputs(model: &Path) -> Vec<String> {
    use prost::Message as _;
    let Ok(bytes) = std::fs::read(model) else { return vec![] };
    let Ok(m) = tract_onnx::pb::ModelProto::decode(bytes.as_slice()) else { return vec![] };
    let Some(g) = m.graph else { return vec![] };
    let inits: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    g.input.iter().map(|i| i.name.clone()).filter(|n| !inits.contains(&n.as_str())).collect()
}

/// ONNX op types in a model file (best effort, for reporting).
fn model_ops(model: &Path) -> Vec<String> {
    use prost::Message as _;
    let Ok(bytes) = std::fs::read(model) else { return vec![] };
    let Ok(m) = tract_onnx::pb::ModelProto::decode(bytes.as_slice()) else { return vec![] };
    let mut ops: Vec<String> = m.graph.map(|g| g.node.into_iter().map(|n| n.op_type).collect()).unwrap_or_default();
    ops.sort();
    ops.dedup();
    ops
}

fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::Unsupported(_) | Error::Input { .. })
}

/// ONNX backend-test tolerance: `|got - want| <= atol + rtol·|want|` for floats (NaN
/// matches NaN), exact for integers and booleans. 16-bit floats also match within two
/// units in the last place of their format: a float32 tolerance is finer than their last
/// bit, so a valid difference in rounding or accumulation order would fail.
pub fn compare(got: &TensorData, want: &TensorData, rtol: f32, atol: f32) -> std::result::Result<(), String> {
    if got.len() != want.len() || got.dtype() != want.dtype() {
        return Err(format!("got {} {} values, expected {} {}", got.len(), got.dtype(), want.len(), want.dtype()));
    }
    if let (TensorData::F64(g), TensorData::F64(w)) = (got, want) {
        let (rtol, atol) = (rtol as f64, atol as f64);
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= atol + rtol * b.abs();
            if !ok {
                return Err(format!("element {i}: got {a}, expected {b}"));
            }
        }
        return Ok(());
    }
    // 16-bit floats compare as the float32 values of their bit patterns.
    if let (TensorData::F16(g), TensorData::F16(w)) | (TensorData::BF16(g), TensorData::BF16(w)) = (got, want) {
        // Bit patterns in value order (sign-magnitude to a monotonic integer).
        let ord = |h: u16| if h & 0x8000 != 0 { -((h & 0x7fff) as i32) } else { h as i32 };
        let (gf, wf) = (got.to_f32(), want.to_f32());
        for (i, ((&a, &b), (&x, &y))) in g.iter().zip(w).zip(gf.iter().zip(&wf)).enumerate() {
            let ok = (x.is_nan() && y.is_nan())
                || x == y
                || (x.is_finite() && y.is_finite() && (ord(a) - ord(b)).abs() <= 2)
                || (x - y).abs() <= atol + rtol * y.abs();
            if !ok {
                return Err(format!("element {i}: got {x}, expected {y}"));
            }
        }
        return Ok(());
    }
    // float8 / float4: the exact bit pattern (any NaN matches any NaN).
    if let (TensorData::Low(t, g), TensorData::Low(_, w)) = (got, want)
        && t.is_minifloat()
    {
        for (i, (&a, &b)) in g.iter().zip(w).enumerate() {
            let (x, y) = (crate::ir::low_to_f32(*t, a), crate::ir::low_to_f32(*t, b));
            if a != b && !(x.is_nan() && y.is_nan()) {
                return Err(format!("element {i}: got {x} ({a:#04x}), expected {y} ({b:#04x})"));
            }
        }
        return Ok(());
    }
    if let (TensorData::F32(g), TensorData::F32(w)) = (got, want) {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= atol + rtol * b.abs();
            if !ok {
                return Err(format!("element {i}: got {a}, expected {b}"));
            }
        }
        return Ok(());
    }
    if got != want {
        let (g, w) = (got.to_f32(), want.to_f32());
        let i = g.iter().zip(&w).position(|(a, b)| a != b).unwrap_or(0);
        return Err(format!("element {i}: got {}, expected {}", g.get(i).unwrap_or(&0.0), w.get(i).unwrap_or(&0.0)));
    }
    Ok(())
}

/// Runs every test folder of `suite` in both languages. `work` holds the batch builds.
pub fn run_suite(suite: &Path, work: &Path, jobs: usize) -> Result<Vec<CaseResult>> {
    run_suite_matching(suite, work, jobs, None)
}

/// [`run_suite`] restricted to the test folders whose name contains `filter` (all when
/// `None`), for iterating on a few tests.
pub fn run_suite_matching(suite: &Path, work: &Path, jobs: usize, filter: Option<&str>) -> Result<Vec<CaseResult>> {
    let mut cases = list_cases(suite)?;
    if let Some(f) = filter {
        cases.retain(|c| c.file_name().is_some_and(|n| n.to_string_lossy().contains(f)));
    }
    let mut results: Vec<CaseResult> = vec![];
    let mut prepared: Vec<Prepared> = vec![];
    for (index, case) in cases.iter().enumerate() {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let model = case.join("model.onnx");
        let ops = model_ops(&model);
        let mut result = CaseResult { name: name.clone(), ops, c: Outcome::Pass, rust: Outcome::Pass };
        let sets = match read_sets(case) {
            Ok(s) => s,
            Err(e) => {
                result.c = Outcome::Unsupported(format!("test data: {e}"));
                result.rust = result.c.clone();
                results.push(result);
                continue;
            }
        };
        let symbol = format!("t{index}");
        // Shape-like inputs (shapes, axes, scales) the compiler needs at build time are bound
        // to the test's values when every test set agrees on them.
        let names = model_inputs(&model);
        let mut config = Config::new();
        let compile = |cfg: &Config, lang: Lang| {
            std::panic::catch_unwind(|| cfg.clone().lang(lang).name(symbol.clone()).compile_to_memory(&model))
                .unwrap_or_else(|_| Err(Error::Model("the compiler panicked".into())))
        };
        let mut c_res = compile(&config, Lang::C);
        for _ in 0..4 {
            let Err(Error::Unsupported(list)) = &c_res else { break };
            let wanted: Vec<String> = list.iter().filter_map(|u| u.needs_const.clone()).collect();
            if wanted.is_empty() || wanted.len() != list.len() {
                break;
            }
            let mut bound_any = false;
            for name in wanted {
                let Some(k) = names.iter().position(|n| *n == name) else { continue };
                let Some(first) = sets.first().and_then(|s| s.inputs.get(k)) else { continue };
                if sets.iter().all(|s| s.inputs.get(k) == Some(first)) && !config.const_inputs.contains_key(&name) {
                    config = config.bind_input(name, first.0.clone(), first.1.clone());
                    bound_any = true;
                }
            }
            if !bound_any {
                break;
            }
            c_res = compile(&config, Lang::C);
        }
        let feed: Vec<usize> = (0..names.len()).filter(|&k| !config.const_inputs.contains_key(&names[k])).collect();
        match (c_res, compile(&config, Lang::Rust)) {
            (Ok(c), Ok(r)) => {
                let sig = IoSig::of(&c.graph);
                let out_types = c.graph.outputs.iter().map(|&v| c.graph.ty(v).clone()).collect();
                prepared.push(Prepared { index, feed, sig, out_types, c_files: c.files, rust_files: r.files, sets });
            }
            (c, r) => {
                let classify = |res: Result<crate::Compiled>| match res {
                    Ok(_) => Outcome::Pass,
                    Err(e) if is_unsupported(&e) => Outcome::Unsupported(e.to_string()),
                    Err(e) => Outcome::Fail(e.to_string()),
                };
                result.c = classify(c);
                result.rust = classify(r);
                if result.c == Outcome::Pass {
                    result.c = Outcome::Unsupported("the Rust backend rejected the model".into());
                }
                if result.rust == Outcome::Pass {
                    result.rust = Outcome::Unsupported("the C backend rejected the model".into());
                }
            }
        }
        results.push(result);
    }
    let c_out = run_batch(work, &prepared, Lang::C, jobs);
    let rust_out = run_batch(work, &prepared, Lang::Rust, jobs);
    for (k, prep) in prepared.iter().enumerate() {
        results[prep.index].c = c_out[k].clone();
        results[prep.index].rust = rust_out[k].clone();
    }
    Ok(results)
}

/// Builds all prepared cases for one language into one program and runs every case. A case
/// whose code does not compile is a failure of that case only: it is left out and the rest
/// is rebuilt.
fn run_batch(work: &Path, cases: &[Prepared], lang: Lang, jobs: usize) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; cases.len()];
    let dir = work.join(match lang {
        Lang::C => "c",
        Lang::Rust => "rust",
    });
    for _attempt in 0..4 {
        let live: Vec<usize> = (0..cases.len()).filter(|&k| outcomes[k].is_none()).collect();
        if live.is_empty() {
            break;
        }
        let subset: Vec<&Prepared> = live.iter().map(|&k| &cases[k]).collect();
        match build_batch(&dir, &subset, lang, jobs) {
            Ok(exe) => {
                for (slot, &k) in live.iter().enumerate() {
                    outcomes[k] = Some(run_case(&exe, slot, &cases[k]));
                }
                break;
            }
            Err(BatchError::Cases(bad)) => {
                for (slot, msg) in bad {
                    outcomes[live[slot]] = Some(Outcome::Fail(format!("generated code does not compile: {msg}")));
                }
            }
            Err(BatchError::Other(e)) => {
                for &k in &live {
                    outcomes[k] = Some(Outcome::Fail(format!("batch build failed: {e}")));
                }
            }
        }
    }
    outcomes.into_iter().map(|o| o.unwrap_or_else(|| Outcome::Fail("not built".into()))).collect()
}

/// Why a batch did not build: specific cases (by slot) or something else.
enum BatchError {
    Cases(Vec<(usize, String)>),
    Other(Error),
}

impl From<Error> for BatchError {
    fn from(e: Error) -> Self {
        BatchError::Other(e)
    }
}

fn run_case(exe: &Path, k: usize, case: &Prepared) -> Outcome {
    let mut stdin = vec![];
    for set in &case.sets {
        let fed: Vec<&(TensorType, TensorData)> = case.feed.iter().filter_map(|&k| set.inputs.get(k)).collect();
        if fed.len() != case.sig.inputs.len() {
            return Outcome::Unsupported(format!("test set has {} inputs, model {}", fed.len(), case.sig.inputs.len()));
        }
        for ((ty, data), &(d, n)) in fed.into_iter().zip(&case.sig.inputs) {
            // Older test sets store 16-bit float tensors as uint16 bit patterns.
            let bits = ty.dtype == DType::U16 && d.is_half();
            if ty.dtype != d && !bits {
                return Outcome::Fail(format!("input {:?} {} does not match the model's {d} x{n}", ty.shape, ty.dtype));
            }
            if ty.len() != n {
                // The test data contradicts the model's declared input shape (a broken test).
                return Outcome::Unsupported(format!(
                    "test input {:?} does not have the model's declared {n} elements",
                    ty.shape
                ));
            }
            stdin.extend(data.to_le_bytes());
        }
    }
    let run = || -> std::result::Result<Vec<u8>, String> {
        let mut child = Command::new(exe)
            .arg(k.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut pipe = child.stdin.take().ok_or("no stdin")?;
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut pipe, &stdin));
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(format!("crashed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
        }
        Ok(out.stdout)
    };
    let bytes = match run() {
        Ok(b) => b,
        Err(e) => return Outcome::Fail(e),
    };
    let mut at = 0;
    // A model without input bytes runs once (see the harness); its test sets all expect the same.
    let sets = if case.sig.reads_nothing() { &case.sets[..case.sets.len().min(1)] } else { &case.sets[..] };
    for (s, set) in sets.iter().enumerate() {
        if set.outputs.len() != case.out_types.len() {
            return Outcome::Fail(format!(
                "test set {s} has {} outputs, model {}",
                set.outputs.len(),
                case.out_types.len()
            ));
        }
        for (o, ((want_ty, want), ty)) in set.outputs.iter().zip(&case.out_types).enumerate() {
            let n = ty.bytes();
            let Some(chunk) = bytes.get(at..at + n) else { return Outcome::Fail("short output".into()) };
            at += n;
            if want_ty.shape != ty.shape && want_ty.len() != ty.len() {
                return Outcome::Fail(format!("output {o}: shape {:?}, expected {:?}", ty.shape, want_ty.shape));
            }
            let got = TensorData::from_le_bytes(ty.dtype, chunk);
            let want = &match want {
                TensorData::U16(_) if ty.dtype.is_half() => TensorData::from_le_bytes(ty.dtype, &want.to_le_bytes()),
                _ => want.clone(),
            };
            if let Err(e) = compare(&got, want, 1e-3, 1e-5) {
                return Outcome::Fail(format!("test set {s} output {o}: {e}"));
            }
        }
    }
    Outcome::Pass
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, contents).map_err(|e| Error::Write { path: p, msg: e.to_string() })
}

fn build_batch(dir: &Path, cases: &[&Prepared], lang: Lang, jobs: usize) -> std::result::Result<PathBuf, BatchError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| Error::Write { path: dir.into(), msg: e.to_string() })?;
    match lang {
        Lang::C => build_c_batch(dir, cases, jobs),
        Lang::Rust => build_rust_batch(dir, cases),
    }
}

/// One C program: every case's sources plus a per-case harness renamed `case_<k>`.
fn build_c_batch(dir: &Path, cases: &[&Prepared], jobs: usize) -> std::result::Result<PathBuf, BatchError> {
    // (source file, owning case slot; None for the dispatcher)
    let mut sources: Vec<(PathBuf, Option<usize>)> = vec![];
    let mut dispatch = String::from("#include <stdlib.h>\n");
    for (k, case) in cases.iter().enumerate() {
        let name = format!("t{}", case.index);
        for f in &case.c_files {
            write(dir, &f.name, &f.contents)?;
            if f.name.ends_with(".c") {
                sources.push((dir.join(&f.name), Some(k)));
            }
        }
        let h = c_harness_source(&name, &case.sig).replace("int main(void)", &format!("int case_{k}(void)"));
        let h = h.replace("static unsigned char arena", "static unsigned char arena_").replace(", arena)", ", arena_)");
        let file = format!("case_{k}.c");
        write(dir, &file, &h)?;
        sources.push((dir.join(&file), Some(k)));
        dispatch.push_str(&format!("int case_{k}(void);\n"));
    }
    dispatch.push_str(
        "\nint main(int argc, char **argv)\n{\n    int k = argc > 1 ? atoi(argv[1]) : -1;\n    switch (k) {\n",
    );
    for k in 0..cases.len() {
        dispatch.push_str(&format!("    case {k}: return case_{k}();\n"));
    }
    dispatch.push_str("    default: return 3;\n    }\n}\n");
    write(dir, "dispatch.c", &dispatch)?;
    sources.push((dir.join("dispatch.c"), None));

    let target = crate::target::TargetDesc::host();
    let tool = c_build(&target).try_get_compiler().map_err(|e| Error::Toolchain(format!("no C compiler: {e}")))?;
    let per = sources.len().div_ceil(jobs.max(1));
    let errors: Vec<(Option<usize>, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .chunks(per)
            .map(|chunk| {
                let tool = &tool;
                s.spawn(move || {
                    let mut errs = vec![];
                    for (src, owner) in chunk {
                        let mut cmd = tool.to_command();
                        cmd.current_dir(dir).arg("-c").arg(src).arg("-o").arg(src.with_extension("o"));
                        if let Err(e) = run_checked(cmd, "C compiler") {
                            errs.push((*owner, e.to_string()));
                        }
                    }
                    errs
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    if !errors.is_empty() {
        let mut bad = vec![];
        for (owner, msg) in errors {
            match owner {
                Some(k) => bad.push((k, msg)),
                None => return Err(BatchError::Other(Error::Toolchain(msg))),
            }
        }
        return Err(BatchError::Cases(bad));
    }
    let sources: Vec<PathBuf> = sources.into_iter().map(|(p, _)| p).collect();
    let exe = dir.join("conformance_c");
    let mut cmd = tool.to_command();
    cmd.args(sources.iter().map(|s| s.with_extension("o"))).arg("-o").arg(&exe).arg("-lm");
    run_checked(cmd, "linker")?;
    Ok(exe)
}

/// One Rust crate: every case's module plus its harness as `case_<k>::main`.
fn build_rust_batch(dir: &Path, cases: &[&Prepared]) -> std::result::Result<PathBuf, BatchError> {
    let mut main = String::new();
    for (k, case) in cases.iter().enumerate() {
        let name = format!("t{}", case.index);
        for f in &case.rust_files {
            write(dir, &f.name, &f.contents)?;
        }
        let h = rust_harness_source(&format!("{name}.rs"), &case.sig);
        write(dir, &format!("case_{k}.rs"), &h.replace("fn main()", "pub fn main()"))?;
        main.push_str(&format!("mod case_{k};\n"));
    }
    main.push_str("\nfn main() {\n    let k: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(usize::MAX);\n    match k {\n");
    for k in 0..cases.len() {
        main.push_str(&format!("        {k} => case_{k}::main(),\n"));
    }
    main.push_str("        _ => std::process::exit(3),\n    }\n}\n");
    write(dir, "main.rs", &main)?;
    let exe = dir.join("conformance_rust");
    let mut cmd = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    cmd.args([
        "--edition",
        "2021",
        "-C",
        "opt-level=1",
        "-C",
        "codegen-units=16",
        "--crate-name",
        "conformance",
        "-A",
        "warnings",
    ])
    .arg(dir.join("main.rs"))
    .arg("-o")
    .arg(&exe);
    if let Err(e) = run_checked(cmd, "rustc") {
        // Attribute errors to cases through the file names rustc reports (`tN.rs` is case
        // index N; map it back to the slot).
        let msg = e.to_string();
        let mut bad: Vec<(usize, String)> = vec![];
        for (k, case) in cases.iter().enumerate() {
            let file = format!("/t{}.rs:", case.index);
            let harness = format!("/case_{k}.rs:");
            if msg.contains(&file) || msg.contains(&harness) {
                let first = msg.lines().find(|l| l.starts_with("error")).unwrap_or("").to_string();
                bad.push((k, first));
            }
        }
        return Err(if bad.is_empty() { BatchError::Other(e) } else { BatchError::Cases(bad) });
    }
    Ok(exe)
}

/// Counts per outcome for one language.
pub fn tally(results: &[CaseResult], lang: Lang) -> (usize, usize, usize) {
    let pick = |r: &CaseResult| match lang {
        Lang::C => r.c.clone(),
        Lang::Rust => r.rust.clone(),
    };
    let mut t = (0, 0, 0);
    for r in results {
        match pick(r) {
            Outcome::Pass => t.0 += 1,
            Outcome::Fail(_) => t.1 += 1,
            Outcome::Unsupported(_) => t.2 += 1,
        }
    }
    t
}

/// Results of one suite, for the op table.
pub struct SuiteResults<'a> {
    pub suite: &'a str,
    pub results: &'a [CaseResult],
}

/// `docs/ops.md`: every ONNX op type seen in the suites or supported, whether modelless
/// lowers it, its limits, and how many conformance tests that use it pass in both C and
/// Rust.
pub fn ops_markdown(suites: &[SuiteResults]) -> String {
    use std::collections::BTreeMap;
    let mut stats: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in suites {
        for r in s.results {
            let pass = r.c == Outcome::Pass && r.rust == Outcome::Pass;
            for op in &r.ops {
                let e = stats.entry(op.clone()).or_default();
                e.1 += 1;
                e.0 += pass as usize;
            }
        }
    }
    for op in crate::frontend::SUPPORTED_OPS {
        stats.entry(op.to_string()).or_default();
    }
    let supported = |op: &str| crate::frontend::SUPPORTED_OPS.contains(&op);
    let mut md = String::new();
    md.push_str("# Supported ONNX ops\n\n");
    md.push_str("Generated from the conformance run (`cargo test --test conformance`, bless with\n");
    md.push_str("`MODELLESS_BLESS=1`); do not edit by hand. A test counts as passed when both the C and the\n");
    md.push_str("Rust output match the expected outputs (rtol 1e-3, atol 1e-5; integers exactly).\n");
    md.push_str("All shapes are static; tensors with zero elements are fine (a reduction over an empty set is\n");
    md.push_str("its identity value). Unless noted, float ops are float32 and data-movement ops take any of\n");
    md.push_str("float32, float64, int8, uint8, int16, uint16, int32, uint32, int64, uint64 and bool.\n");
    md.push_str("Elementwise arithmetic, comparisons, Cast, MatMul, reductions, Softmax, LogSoftmax, Exp, Log,\n");
    md.push_str("Sqrt and Mod also take float64. float16 and bfloat16 tensors are stored as bit patterns: Cast\n");
    md.push_str("converts them (rounding to nearest even), every other op reading them computes in float32\n");
    md.push_str("and rounds its float results back.\n\n");
    let (mut sup, mut total) = (0, 0);
    for s in suites {
        let p = s.results.iter().filter(|r| r.c == Outcome::Pass && r.rust == Outcome::Pass).count();
        md.push_str(&format!("- `{}`: {p} / {} tests pass\n", s.suite, s.results.len()));
    }
    md.push_str("\n| op | supported | tests passed / using it | limits |\n|---|---|---|---|\n");
    for (op, (p, t)) in &stats {
        let yes = supported(op);
        sup += yes as usize;
        total += 1;
        let note = crate::frontend::OP_NOTES.iter().find(|(o, _)| o == op).map_or("", |(_, n)| n);
        md.push_str(&format!("| {op} | {} | {p} / {t} | {note} |\n", if yes { "yes" } else { "no" }));
    }
    md.push_str(&format!("\n{sup} of {total} op types listed are supported.\n"));
    md
}

/// The expectation file format: `suite<TAB>test<TAB>c<TAB>rust` per line.
pub fn expectations(suite: &str, results: &[CaseResult]) -> String {
    results.iter().map(|r| format!("{suite}\t{}\t{}\t{}\n", r.name, r.c.label(), r.rust.label())).collect()
}
