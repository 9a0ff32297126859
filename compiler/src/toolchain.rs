//! Building and running generated code: a small harness around the emitted sources,
//! compiled with the `cc` crate (C) or rustc (Rust) for a [`TargetDesc`], and run directly
//! or through the target's runner (e.g. qemu-user). Used by `verify` and the tests.
//!
//! The harness reads samples from stdin (for each sample, every input's raw little-endian
//! bytes in order) and writes every output the same way, until stdin ends: one process runs
//! many samples.

use crate::backend::{Opt, OutFile};
use crate::error::{Error, Result};
use crate::ir::{DType, Graph};
use crate::target::TargetDesc;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Element type and count of each model input and output, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct IoSig {
    pub inputs: Vec<(DType, usize)>,
    pub outputs: Vec<(DType, usize)>,
}

impl IoSig {
    pub fn of(g: &Graph) -> IoSig {
        let sig = |vs: &[crate::ir::ValueId]| vs.iter().map(|&v| (g.ty(v).dtype, g.ty(v).len())).collect();
        IoSig { inputs: sig(&g.inputs), outputs: sig(&g.outputs) }
    }

    /// No input has any element (or there is none): a harness reads no bytes, so it runs
    /// the model once instead of until end of input.
    pub fn reads_nothing(&self) -> bool {
        self.inputs.iter().all(|&(_, n)| n == 0)
    }
}

/// A compiled harness executable, how to run it, and its I/O signature.
pub struct Harness {
    pub exe: PathBuf,
    /// Command prefix that runs target binaries (empty on the host).
    pub runner: Vec<String>,
    pub sig: IoSig,
}

/// The C type of an element type, as generated code declares it.
pub fn c_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::I8 => "int8_t",
        DType::U8 => "uint8_t",
        DType::I32 => "int32_t",
        DType::I64 => "int64_t",
        DType::Bool => "bool",
        DType::I16 => "int16_t",
        DType::U16 => "uint16_t",
        DType::U32 => "uint32_t",
        DType::U64 => "uint64_t",
        // 16-bit floats travel as their bit patterns.
        DType::F16 | DType::BF16 => "uint16_t",
        // One byte per element: float8 / float4 bit patterns, int4 / int2 values.
        DType::I4 | DType::I2 => "int8_t",
        DType::F8E4M3FN
        | DType::F8E4M3FNUZ
        | DType::F8E5M2
        | DType::F8E5M2FNUZ
        | DType::F8E8M0
        | DType::F4E2M1
        | DType::U4
        | DType::U2 => "uint8_t",
    }
}

/// The Rust type of an element type (the IR's own names are Rust's, except the 16-bit
/// floats, stored as `u16` bit patterns, and the low-precision types, one byte each).
pub fn rust_type(d: DType) -> &'static str {
    match d {
        DType::F16 | DType::BF16 => "u16",
        DType::I4 | DType::I2 => "i8",
        d if d.is_low() => "u8",
        d => d.name(),
    }
}

pub(crate) fn host_triple() -> String {
    format!("{}-unknown-{}-gnu", std::env::consts::ARCH, std::env::consts::OS)
}

fn write_all(dir: &Path, files: &[OutFile]) -> Result<()> {
    for f in files {
        let p = dir.join(&f.name);
        std::fs::write(&p, &f.contents).map_err(|e| Error::Write { path: p, msg: e.to_string() })?;
    }
    Ok(())
}

/// Runs a tool, turning "not found" and non-zero exits into [`Error::Toolchain`].
pub fn run_checked(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd.output().map_err(|e| {
        Error::Toolchain(format!(
            "cannot start {what} ({:?}): {e} (hint: is it installed and on PATH?)",
            cmd.get_program()
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Toolchain(format!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// The first executable called `cmd` on `PATH` (or `cmd` itself when it is a path).
pub fn find_tool(cmd: &str) -> Option<PathBuf> {
    let p = Path::new(cmd);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(cmd)).find(|c| c.is_file())
}

/// Checks that `cmd` is installed; the error names the Debian package that provides it.
pub fn require_tool(cmd: &str, package: &str) -> Result<PathBuf> {
    find_tool(cmd).ok_or_else(|| {
        let hint = if package.is_empty() {
            "install it or put it on PATH".to_string()
        } else {
            format!("install the Debian package {package}: apt-get install {package}")
        };
        Error::Toolchain(format!("{cmd} is not installed ({hint})"))
    })
}

/// Checks that the target's C compiler is installed (`CC` from the environment, as the `cc`
/// crate uses it, counts only for the host target).
pub fn require_c(target: &TargetDesc) -> Result<PathBuf> {
    require_tool(&target.c.compiler, &target.c.package)
}

/// Checks that the target's runner (e.g. qemu-user) is installed, when it has one, and that
/// the target has an OS to run harness executables (stdin/stdout) at all.
pub fn require_runner(target: &TargetDesc) -> Result<()> {
    if !target.has_os {
        return Err(Error::Target(format!(
            "{} is bare metal: test harnesses need an OS; build a firmware image instead (--emit firmware)",
            target.name
        )));
    }
    match target.runner.first() {
        Some(r) => require_tool(r, &target.runner_package).map(|_| ()),
        None => Ok(()),
    }
}

/// Checks that the Rust standard library for the target's triple is installed; the error
/// names the `rustup target add` command.
pub fn require_rust(target: &TargetDesc) -> Result<()> {
    let triple = &target.rust.triple;
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", triple])
        .output()
        .map_err(|e| Error::Toolchain(format!("cannot start {rustc}: {e} (hint: install Rust with rustup)")))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let has_core = out.status.success()
        && std::fs::read_dir(&libdir)
            .map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
            .unwrap_or(false);
    if has_core {
        Ok(())
    } else {
        Err(Error::Toolchain(format!(
            "the Rust standard library for {triple} is not installed (run: rustup target add {triple})"
        )))
    }
}

/// The `cc`-crate configuration for generated C: C99, `-Wall -Wextra -Werror -pedantic`,
/// the target's compiler and flags.
pub fn c_build(target: &TargetDesc) -> cc::Build {
    let host = host_triple();
    let mut b = cc::Build::new();
    b.cargo_metadata(false)
        .cargo_warnings(false)
        .host(&host)
        .target(&target.rust.triple)
        .opt_level(2)
        .debug(false)
        .compiler(&target.c.compiler)
        .std("c99")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .flag("-pedantic");
    for f in &target.c.flags {
        b.flag(f);
    }
    b
}

/// C source of a harness `main` for model `name` with signature `sig`.
pub fn c_harness_source(name: &str, sig: &IoSig) -> String {
    let (ni, no) = (sig.inputs.len(), sig.outputs.len());
    let prefix = name.to_ascii_uppercase();
    let len = |kind: &str, i: usize, n: usize| {
        if n == 1 { format!("{prefix}_{kind}_LEN") } else { format!("{prefix}_{kind}{i}_LEN") }
    };
    let mut h = String::new();
    h.push_str(&format!("#include <stdbool.h>\n#include <stdint.h>\n#include <stdio.h>\n#include \"{name}.h\"\n\n"));
    h.push_str(&format!(
        "static unsigned char arena[{prefix}_ARENA_BYTES] __attribute__((aligned({prefix}_ARENA_ALIGN)));\n"
    ));
    for (i, (d, _)) in sig.inputs.iter().enumerate() {
        // C99 has no zero-length arrays: an empty input gets one unused element.
        let l = len("INPUT", i, ni);
        h.push_str(&format!("static {} in{i}[{l} > 0 ? {l} : 1];\n", c_type(*d)));
    }
    for (i, (d, _)) in sig.outputs.iter().enumerate() {
        let l = len("OUTPUT", i, no);
        h.push_str(&format!("static {} out{i}[{l} > 0 ? {l} : 1];\n", c_type(*d)));
    }
    h.push_str("\nint main(void)\n{\n    for (;;) {\n");
    for i in 0..ni {
        let l = len("INPUT", i, ni);
        h.push_str(&format!("        if (fread(in{i}, sizeof in{i}[0], {l}, stdin) != {l}) return 0;\n"));
    }
    let args: Vec<String> = (0..ni).map(|i| format!("in{i}")).chain((0..no).map(|i| format!("out{i}"))).collect();
    h.push_str(&format!("        if ({name}_run({}, arena) != 0) return 2;\n", args.join(", ")));
    for i in 0..no {
        h.push_str(&format!("        fwrite(out{i}, sizeof out{i}[0], {}, stdout);\n", len("OUTPUT", i, no)));
    }
    // Without input bytes there is no end-of-input to stop at: run once.
    h.push_str(if sig.reads_nothing() {
        "        fflush(stdout);\n        return 0;\n    }\n}\n"
    } else {
        "        fflush(stdout);\n    }\n}\n"
    });
    h
}

/// Writes `files` and a C harness into `dir` and builds an executable for `target`.
pub fn build_c(
    dir: &Path,
    name: &str,
    files: &[OutFile],
    sig: &IoSig,
    target: &TargetDesc,
    extra_flags: &[&str],
) -> Result<Harness> {
    let exe = compile_c_harness(dir, files, &c_harness_source(name, sig), "harness_c", target, extra_flags)?;
    Ok(Harness { exe, runner: target.runner.clone(), sig: sig.clone() })
}

/// Writes `files` and `main_source` into `dir` and links them into `dir/exe_name` with the
/// target's C compiler and flags, then `extra_flags` (later flags win, e.g. `-O3`).
fn compile_c_harness(
    dir: &Path,
    files: &[OutFile],
    main_source: &str,
    exe_name: &str,
    target: &TargetDesc,
    extra_flags: &[&str],
) -> Result<PathBuf> {
    require_c(target)?;
    require_runner(target)?;
    write_all(dir, files)?;
    let main = dir.join(format!("{exe_name}_main.c"));
    std::fs::write(&main, main_source).map_err(|e| Error::Write { path: main.clone(), msg: e.to_string() })?;
    let tool = c_build(target)
        .try_get_compiler()
        .map_err(|e| Error::Toolchain(format!("no C compiler for target {}: {e}", target.name)))?;
    let mut cmd = tool.to_command();
    for f in extra_flags {
        cmd.arg(f);
    }
    for f in files.iter().filter(|f| f.name.ends_with(".c")) {
        cmd.arg(dir.join(&f.name));
    }
    let exe = dir.join(exe_name);
    cmd.arg(&main).arg("-o").arg(&exe).arg("-lm");
    run_checked(cmd, "C compiler")?;
    Ok(exe)
}

/// Flash of the generated C (text + data of `NAME.c`, weights and code) compiled to an
/// object with the target's flags plus [`c_bench_flags`].
pub fn c_object_size(
    dir: &Path,
    name: &str,
    files: &[OutFile],
    target: &TargetDesc,
    opt: Opt,
) -> Result<crate::cross::SizeReport> {
    require_c(target)?;
    write_all(dir, files)?;
    let tool = c_build(target)
        .try_get_compiler()
        .map_err(|e| Error::Toolchain(format!("no C compiler for target {}: {e}", target.name)))?;
    let mut cmd = tool.to_command();
    let obj = dir.join(format!("{name}.o"));
    cmd.args(c_bench_flags(opt)).arg("-c").arg(dir.join(format!("{name}.c"))).arg("-o").arg(&obj);
    run_checked(cmd, "C compiler")?;
    crate::cross::size_of(target, &obj)
}

/// C flags a timing (and flash) build adds after the target's own: full optimisation, or
/// optimisation for size with `--opt size`.
pub fn c_bench_flags(opt: Opt) -> &'static [&'static str] {
    match opt {
        Opt::Speed => &["-O3"],
        Opt::Size => &["-Os"],
    }
}

/// rustc flags of a timing build (the target's `-C target-feature` comes on top). Warnings in
/// the generated code are the test harness's business (`-D warnings` there), not the timer's.
pub fn rust_bench_flags(opt: Opt) -> &'static [&'static str] {
    match opt {
        Opt::Speed => &["-C", "opt-level=3", "-C", "codegen-units=1"],
        Opt::Size => &["-C", "opt-level=s", "-C", "codegen-units=1"],
    }
}

/// C source of a timing harness `main` for model `name`: reads one sample (every input's
/// raw bytes, as [`c_harness_source`]) from stdin, runs the model `argv[1]` times untimed
/// (warm-up), then `argv[2]` times, timing each call with `CLOCK_MONOTONIC`, and prints the
/// nanoseconds of each timed call, one per line.
pub fn c_timing_harness_source(name: &str, sig: &IoSig) -> String {
    let (ni, no) = (sig.inputs.len(), sig.outputs.len());
    let prefix = name.to_ascii_uppercase();
    let len = |kind: &str, i: usize, n: usize| {
        if n == 1 { format!("{prefix}_{kind}_LEN") } else { format!("{prefix}_{kind}{i}_LEN") }
    };
    let mut h = String::from("#define _POSIX_C_SOURCE 199309L\n");
    h.push_str(&format!(
        "#include <stdbool.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <time.h>\n#include \"{name}.h\"\n\n"
    ));
    h.push_str(&format!(
        "static unsigned char arena[{prefix}_ARENA_BYTES] __attribute__((aligned({prefix}_ARENA_ALIGN)));\n"
    ));
    for (i, (d, _)) in sig.inputs.iter().enumerate() {
        // C99 has no zero-length arrays: an empty input gets one unused element.
        let l = len("INPUT", i, ni);
        h.push_str(&format!("static {} in{i}[{l} > 0 ? {l} : 1];\n", c_type(*d)));
    }
    for (i, (d, _)) in sig.outputs.iter().enumerate() {
        let l = len("OUTPUT", i, no);
        h.push_str(&format!("static {} out{i}[{l} > 0 ? {l} : 1];\n", c_type(*d)));
    }
    h.push_str(
        "\nstatic long long now_ns(void)\n{\n    struct timespec t;\n    clock_gettime(CLOCK_MONOTONIC, &t);\n    \
         return (long long)t.tv_sec * 1000000000LL + (long long)t.tv_nsec;\n}\n\n",
    );
    h.push_str("int main(int argc, char **argv)\n{\n    long i, warmup, iters;\n    long long *t;\n");
    h.push_str("    if (argc != 3) return 3;\n    warmup = strtol(argv[1], NULL, 10);\n    iters = strtol(argv[2], NULL, 10);\n");
    h.push_str("    if (warmup < 0 || iters < 1) return 3;\n");
    for i in 0..ni {
        let l = len("INPUT", i, ni);
        h.push_str(&format!("    if (fread(in{i}, sizeof in{i}[0], {l}, stdin) != {l}) return 4;\n"));
    }
    h.push_str("    t = malloc((size_t)iters * sizeof *t);\n    if (t == NULL) return 5;\n");
    let args: Vec<String> = (0..ni).map(|i| format!("in{i}")).chain((0..no).map(|i| format!("out{i}"))).collect();
    let call = format!("{name}_run({}, arena)", args.join(", "));
    h.push_str(&format!("    for (i = 0; i < warmup; i++)\n        if ({call} != 0) return 2;\n"));
    h.push_str(&format!(
        "    for (i = 0; i < iters; i++) {{\n        long long t0 = now_ns();\n        if ({call} != 0) return 2;\n        t[i] = now_ns() - t0;\n    }}\n"
    ));
    h.push_str("    for (i = 0; i < iters; i++) printf(\"%lld\\n\", t[i]);\n    free(t);\n    return 0;\n}\n");
    h
}

/// Writes `files` and a C timing harness ([`c_timing_harness_source`]) into `dir` and
/// builds it for `target` with its flags plus [`c_bench_flags`].
pub fn build_c_timing(
    dir: &Path,
    name: &str,
    files: &[OutFile],
    sig: &IoSig,
    target: &TargetDesc,
    opt: Opt,
) -> Result<TimingHarness> {
    let exe =
        compile_c_harness(dir, files, &c_timing_harness_source(name, sig), "timing_c", target, c_bench_flags(opt))?;
    Ok(TimingHarness(Harness { exe, runner: target.runner.clone(), sig: sig.clone() }))
}

/// Rust source of a harness `main` around `mod model` (the generated module).
pub fn rust_harness_source(module_file: &str, sig: &IoSig) -> String {
    let (ni, no) = (sig.inputs.len(), sig.outputs.len());
    let cname = |kind: &str, i: usize, n: usize| if n == 1 { format!("{kind}_LEN") } else { format!("{kind}{i}_LEN") };
    let mut h = String::new();
    h.push_str(&format!(
        "#[path = \"{module_file}\"]\n#[allow(dead_code)]\nmod model;\n\nuse std::io::{{Read, Write}};\n\n"
    ));
    h.push_str("fn read(r: &mut impl Read, n: usize) -> Option<Vec<u8>> {\n    let mut b = vec![0u8; n];\n    r.read_exact(&mut b).ok()?;\n    Some(b)\n}\n\n");
    h.push_str("fn main() {\n    let mut arena = Box::new(model::Arena::new());\n    let stdin = std::io::stdin();\n    let mut r = stdin.lock();\n    let stdout = std::io::stdout();\n    let mut w = stdout.lock();\n");
    for (i, (d, _)) in sig.inputs.iter().enumerate() {
        h.push_str(&format!("    let mut in{i} = Box::new([{}; model::{}]);\n", zero(*d), cname("INPUT", i, ni)));
    }
    for (i, (d, _)) in sig.outputs.iter().enumerate() {
        h.push_str(&format!("    let mut out{i} = Box::new([{}; model::{}]);\n", zero(*d), cname("OUTPUT", i, no)));
    }
    h.push_str("    loop {\n");
    for (i, (d, _)) in sig.inputs.iter().enumerate() {
        let size = d.size();
        h.push_str(&format!(
            "        let Some(b) = read(&mut r, in{i}.len() * {size}) else {{ return }};\n        for (d, c) in in{i}.iter_mut().zip(b.chunks_exact({size})) {{\n            *d = {};\n        }}\n",
            from_bytes(*d)
        ));
    }
    let args: Vec<String> = (0..ni).map(|i| format!("&in{i}")).chain((0..no).map(|i| format!("&mut out{i}"))).collect();
    h.push_str(&format!("        model::run({}, &mut arena);\n", args.join(", ")));
    for (i, (d, _)) in sig.outputs.iter().enumerate() {
        h.push_str(&format!(
            "        for v in out{i}.iter() {{\n            w.write_all(&{}).unwrap();\n        }}\n",
            to_bytes(*d)
        ));
    }
    // Without input bytes there is no end-of-input to stop at: run once.
    h.push_str(if sig.reads_nothing() {
        "        w.flush().unwrap();\n        return;\n    }\n}\n"
    } else {
        "        w.flush().unwrap();\n    }\n}\n"
    });
    h
}

fn zero(d: DType) -> String {
    match d {
        DType::Bool => "false".into(),
        d => format!("0{}", rust_type(d)),
    }
}

fn from_bytes(d: DType) -> String {
    match d {
        DType::Bool => "c[0] != 0".into(),
        d => format!("{}::from_le_bytes(c.try_into().unwrap())", rust_type(d)),
    }
}

fn to_bytes(d: DType) -> &'static str {
    match d {
        DType::Bool => "[*v as u8]",
        _ => "v.to_le_bytes()",
    }
}

/// Writes `files` and a Rust harness into `dir` and builds an executable with rustc
/// (`-D warnings`, `-O`) for `target`.
pub fn build_rust(dir: &Path, name: &str, files: &[OutFile], sig: &IoSig, target: &TargetDesc) -> Result<Harness> {
    let src = rust_harness_source(&format!("{name}.rs"), sig);
    let exe = compile_rust_harness(dir, files, &src, "harness_rust", target, &["-O", "-D", "warnings"])?;
    Ok(Harness { exe, runner: target.runner.clone(), sig: sig.clone() })
}

/// Writes `files` and `main_source` into `dir` and builds `dir/exe_name` with rustc
/// (the target's features, then `flags`).
fn compile_rust_harness(
    dir: &Path,
    files: &[OutFile],
    main_source: &str,
    exe_name: &str,
    target: &TargetDesc,
    flags: &[&str],
) -> Result<PathBuf> {
    require_rust(target)?;
    require_runner(target)?;
    if let Some(linker) = &target.rust.linker {
        require_tool(linker, &target.c.package)?;
    }
    write_all(dir, files)?;
    let main = dir.join(format!("{exe_name}_main.rs"));
    std::fs::write(&main, main_source).map_err(|e| Error::Write { path: main.clone(), msg: e.to_string() })?;
    let exe = dir.join(exe_name);
    let mut cmd = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    cmd.args(["--edition", "2021", "--crate-name", "harness", "--target"]).arg(&target.rust.triple);
    cmd.args(flags);
    if let Some(linker) = &target.rust.linker {
        cmd.arg("-C").arg(format!("linker={linker}"));
    }
    if !target.rust.target_features.is_empty() {
        cmd.arg("-C").arg(format!("target-feature={}", target.rust.target_features.join(",")));
    }
    cmd.arg(&main).arg("-o").arg(&exe);
    run_checked(cmd, "rustc")?;
    Ok(exe)
}

/// Rust source of a timing harness around `mod model`: the protocol of
/// [`c_timing_harness_source`], timing each call with `std::time::Instant`.
pub fn rust_timing_harness_source(module_file: &str, sig: &IoSig) -> String {
    let (ni, no) = (sig.inputs.len(), sig.outputs.len());
    let cname = |kind: &str, i: usize, n: usize| if n == 1 { format!("{kind}_LEN") } else { format!("{kind}{i}_LEN") };
    let mut h = String::new();
    h.push_str(&format!(
        "#[path = \"{module_file}\"]\n#[allow(dead_code)]\nmod model;\n\nuse std::hint::black_box;\nuse std::io::{{Read, Write}};\nuse std::time::Instant;\n\n"
    ));
    h.push_str(
        "fn main() {\n    let a: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();\n",
    );
    h.push_str("    let (warmup, iters) = (a[0], a[1]);\n    let mut arena = Box::new(model::Arena::new());\n");
    h.push_str("    let stdin = std::io::stdin();\n    let mut r = stdin.lock();\n");
    for (i, (d, _)) in sig.inputs.iter().enumerate() {
        let size = d.size();
        h.push_str(&format!("    let mut in{i} = Box::new([{}; model::{}]);\n", zero(*d), cname("INPUT", i, ni)));
        h.push_str(&format!(
            "    let mut b = vec![0u8; in{i}.len() * {size}];\n    r.read_exact(&mut b).unwrap();\n    for (d, c) in in{i}.iter_mut().zip(b.chunks_exact({size})) {{\n        *d = {};\n    }}\n",
            from_bytes(*d)
        ));
    }
    for (i, (d, _)) in sig.outputs.iter().enumerate() {
        h.push_str(&format!("    let mut out{i} = Box::new([{}; model::{}]);\n", zero(*d), cname("OUTPUT", i, no)));
    }
    let args: Vec<String> =
        (0..ni).map(|i| format!("black_box(&in{i})")).chain((0..no).map(|i| format!("&mut out{i}"))).collect();
    let call = format!("model::run({}, &mut arena);", args.join(", "));
    h.push_str(&format!("    for _ in 0..warmup {{\n        {call}\n    }}\n"));
    h.push_str("    let mut t = Vec::with_capacity(iters);\n");
    h.push_str(&format!(
        "    for _ in 0..iters {{\n        let t0 = Instant::now();\n        {call}\n        t.push(t0.elapsed().as_nanos());\n    }}\n"
    ));
    for i in 0..no {
        h.push_str(&format!("    black_box(&out{i});\n"));
    }
    h.push_str("    let mut s = String::new();\n    for x in t {\n        s.push_str(&format!(\"{x}\\n\"));\n    }\n");
    h.push_str("    std::io::stdout().lock().write_all(s.as_bytes()).unwrap();\n}\n");
    h
}

/// Writes `files` and a Rust timing harness ([`rust_timing_harness_source`]) into `dir` and
/// builds it with rustc, the target's features and [`rust_bench_flags`].
pub fn build_rust_timing(
    dir: &Path,
    name: &str,
    files: &[OutFile],
    sig: &IoSig,
    target: &TargetDesc,
    opt: Opt,
) -> Result<TimingHarness> {
    let src = rust_timing_harness_source(&format!("{name}.rs"), sig);
    let exe = compile_rust_harness(dir, files, &src, "timing_rust", target, rust_bench_flags(opt))?;
    Ok(TimingHarness(Harness { exe, runner: target.runner.clone(), sig: sig.clone() }))
}

/// A timing harness (see [`c_timing_harness_source`]).
pub struct TimingHarness(pub Harness);

impl TimingHarness {
    /// Feeds one sample (each input's raw little-endian bytes), runs `warmup` untimed and
    /// `iters` timed calls in one process; returns each timed call's latency in ms.
    pub fn time(&self, sample: &[Vec<u8>], warmup: usize, iters: usize) -> Result<Vec<f64>> {
        let h = &self.0;
        h.check_sample(sample)?;
        let stdin_bytes: Vec<u8> = sample.concat();
        let mut cmd = match h.runner.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(&h.exe);
                c
            }
            None => Command::new(&h.exe),
        };
        let mut child = cmd
            .arg(warmup.to_string())
            .arg(iters.max(1).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Toolchain(format!("cannot run {}: {e}", h.exe.display())))?;
        let mut stdin = child.stdin.take().ok_or_else(|| Error::Toolchain("no stdin".into()))?;
        let writer = std::thread::spawn(move || stdin.write_all(&stdin_bytes));
        let out = child.wait_with_output().map_err(|e| Error::Toolchain(format!("timing harness failed: {e}")))?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(Error::Toolchain(format!(
                "timing harness {} exited with {}: {}",
                h.exe.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse::<f64>().map(|ns| ns / 1e6))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Toolchain(format!("timing harness {} printed a bad time: {e}", h.exe.display())))?;
        if times.len() != iters.max(1) {
            return Err(Error::Toolchain(format!(
                "timing harness {} printed {} times, expected {}",
                h.exe.display(),
                times.len(),
                iters.max(1)
            )));
        }
        Ok(times)
    }
}

impl Harness {
    /// Checks one sample (each input's raw bytes) against the model's input signature.
    fn check_sample(&self, s: &[Vec<u8>]) -> Result<()> {
        if s.len() != self.sig.inputs.len() {
            return Err(Error::Usage(format!("sample has {} inputs, model takes {}", s.len(), self.sig.inputs.len())));
        }
        for (x, &(d, n)) in s.iter().zip(&self.sig.inputs) {
            if x.len() != n * d.size() {
                return Err(Error::Usage(format!("input has {} bytes, model expects {n} {d} values", x.len())));
            }
        }
        Ok(())
    }

    /// Runs all samples (each a list of inputs as raw little-endian bytes) through one
    /// process; returns, for each sample, its outputs as raw bytes.
    pub fn run_bytes(&self, samples: &[Vec<Vec<u8>>]) -> Result<Vec<Vec<Vec<u8>>>> {
        let mut stdin_bytes = Vec::new();
        for s in samples {
            self.check_sample(s)?;
            for x in s {
                stdin_bytes.extend_from_slice(x);
            }
        }
        let (prog, args) = match self.runner.split_first() {
            Some((p, rest)) => {
                (PathBuf::from(p), rest.iter().map(Into::into).chain([self.exe.clone().into_os_string()]).collect())
            }
            None => (self.exe.clone(), vec![]),
        };
        let mut child = Command::new(&prog)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Toolchain(format!("cannot run {}: {e}", prog.display())))?;
        let mut stdin = child.stdin.take().ok_or_else(|| Error::Toolchain("no stdin".into()))?;
        let writer = std::thread::spawn(move || stdin.write_all(&stdin_bytes));
        let out = child.wait_with_output().map_err(|e| Error::Toolchain(format!("harness failed: {e}")))?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(Error::Toolchain(format!(
                "harness {} exited with {}: {}",
                self.exe.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let per: usize = self.sig.outputs.iter().map(|&(d, n)| d.size() * n).sum();
        if out.stdout.len() != per * samples.len() {
            return Err(Error::Toolchain(format!(
                "harness wrote {} bytes, expected {}",
                out.stdout.len(),
                per * samples.len()
            )));
        }
        let mut res = Vec::with_capacity(samples.len());
        for s in 0..samples.len() {
            let mut at = s * per;
            let mut outs = vec![];
            for &(d, n) in &self.sig.outputs {
                outs.push(out.stdout[at..at + n * d.size()].to_vec());
                at += n * d.size();
            }
            res.push(outs);
        }
        Ok(res)
    }

    /// [`Harness::run_bytes`] for float32 models.
    pub fn run(&self, samples: &[Vec<Vec<f32>>]) -> Result<Vec<Vec<Vec<f32>>>> {
        let bytes: Vec<Vec<Vec<u8>>> = samples
            .iter()
            .map(|s| s.iter().map(|x| x.iter().flat_map(|v| v.to_le_bytes()).collect()).collect())
            .collect();
        let outs = self.run_bytes(&bytes)?;
        Ok(outs
            .into_iter()
            .map(|s| {
                s.into_iter()
                    .map(|b| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
                    .collect()
            })
            .collect())
    }
}
