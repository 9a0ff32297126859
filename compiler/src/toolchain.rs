//! Building and running generated code on the host: a small harness around the emitted
//! sources, compiled with the `cc` crate (C) or rustc (Rust). Used by `verify` and tests.
//!
//! The harness reads samples from stdin (for each sample, every input as little-endian f32
//! in order) and writes every output the same way, until stdin ends: one process runs many
//! samples.

use crate::backend::OutFile;
use crate::error::{Error, Result};
use crate::target::TargetDesc;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A compiled harness executable and its I/O signature.
pub struct Harness {
    pub exe: PathBuf,
    pub input_lens: Vec<usize>,
    pub output_lens: Vec<usize>,
}

fn host_triple() -> String {
    format!("{}-unknown-{}-gnu", std::env::consts::ARCH, std::env::consts::OS)
}

fn write_all(dir: &Path, files: &[OutFile]) -> Result<()> {
    for f in files {
        let p = dir.join(&f.name);
        std::fs::write(&p, &f.contents).map_err(|e| Error::Write { path: p, msg: e.to_string() })?;
    }
    Ok(())
}

fn run_checked(mut cmd: Command, what: &str) -> Result<()> {
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

/// The `cc`-crate configuration for generated C: C99, `-Wall -Wextra -Werror -pedantic`.
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

/// Writes `files` and a C harness into `dir` and builds an executable.
pub fn build_c(
    dir: &Path,
    name: &str,
    files: &[OutFile],
    lens: (Vec<usize>, Vec<usize>),
    target: &TargetDesc,
    extra_flags: &[&str],
) -> Result<Harness> {
    write_all(dir, files)?;
    let (ni, no) = (lens.0.len(), lens.1.len());
    let prefix = name.to_ascii_uppercase();
    let len = |kind: &str, i: usize, n: usize| {
        if n == 1 { format!("{prefix}_{kind}_LEN") } else { format!("{prefix}_{kind}{i}_LEN") }
    };
    let mut h = String::new();
    h.push_str(&format!("#include <stdio.h>\n#include \"{name}.h\"\n\n"));
    h.push_str(&format!(
        "static unsigned char arena[{prefix}_ARENA_BYTES] __attribute__((aligned({prefix}_ARENA_ALIGN)));\n"
    ));
    for i in 0..ni {
        h.push_str(&format!("static float in{i}[{}];\n", len("INPUT", i, ni)));
    }
    for i in 0..no {
        h.push_str(&format!("static float out{i}[{}];\n", len("OUTPUT", i, no)));
    }
    h.push_str("\nint main(void)\n{\n    for (;;) {\n");
    for i in 0..ni {
        h.push_str(&format!(
            "        if (fread(in{i}, sizeof(float), {l}, stdin) != {l}) return 0;\n",
            l = len("INPUT", i, ni)
        ));
    }
    let args: Vec<String> = (0..ni).map(|i| format!("in{i}")).chain((0..no).map(|i| format!("out{i}"))).collect();
    h.push_str(&format!("        if ({name}_run({}, arena) != 0) return 2;\n", args.join(", ")));
    for i in 0..no {
        h.push_str(&format!("        fwrite(out{i}, sizeof(float), {}, stdout);\n", len("OUTPUT", i, no)));
    }
    h.push_str("        fflush(stdout);\n    }\n}\n");
    let main = dir.join("harness_main.c");
    std::fs::write(&main, h).map_err(|e| Error::Write { path: main.clone(), msg: e.to_string() })?;

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
    let exe = dir.join("harness_c");
    cmd.arg(&main).arg("-o").arg(&exe).arg("-lm");
    run_checked(cmd, "C compiler")?;
    Ok(Harness { exe, input_lens: lens.0, output_lens: lens.1 })
}

/// Writes `files` and a Rust harness into `dir` and builds an executable with rustc
/// (`-D warnings`, release optimisation).
pub fn build_rust(
    dir: &Path,
    name: &str,
    files: &[OutFile],
    lens: (Vec<usize>, Vec<usize>),
    target: &TargetDesc,
) -> Result<Harness> {
    write_all(dir, files)?;
    let (ni, no) = (lens.0.len(), lens.1.len());
    let cname = |kind: &str, i: usize, n: usize| {
        if n == 1 { format!("{kind}_LEN") } else { format!("{kind}{i}_LEN") }
    };
    let mut h = String::new();
    h.push_str(&format!(
        "#[path = \"{name}.rs\"]\n#[allow(dead_code)]\nmod model;\n\nuse std::io::{{Read, Write}};\n\n"
    ));
    h.push_str("fn read(r: &mut impl Read, buf: &mut [f32]) -> bool {\n    let mut b = vec![0u8; buf.len() * 4];\n    if r.read_exact(&mut b).is_err() {\n        return false;\n    }\n    for (d, c) in buf.iter_mut().zip(b.chunks_exact(4)) {\n        *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);\n    }\n    true\n}\n\n");
    h.push_str("fn main() {\n    let mut arena = Box::new(model::Arena::new());\n    let stdin = std::io::stdin();\n    let mut r = stdin.lock();\n    let stdout = std::io::stdout();\n    let mut w = stdout.lock();\n");
    for i in 0..ni {
        h.push_str(&format!("    let mut in{i} = Box::new([0f32; model::{}]);\n", cname("INPUT", i, ni)));
    }
    for i in 0..no {
        h.push_str(&format!("    let mut out{i} = Box::new([0f32; model::{}]);\n", cname("OUTPUT", i, no)));
    }
    h.push_str("    loop {\n");
    for i in 0..ni {
        h.push_str(&format!("        if !read(&mut r, &mut in{i}[..]) {{\n            return;\n        }}\n"));
    }
    let args: Vec<String> = (0..ni).map(|i| format!("&in{i}")).chain((0..no).map(|i| format!("&mut out{i}"))).collect();
    h.push_str(&format!("        model::run({}, &mut arena);\n", args.join(", ")));
    for i in 0..no {
        h.push_str(&format!(
            "        for v in out{i}.iter() {{\n            w.write_all(&v.to_le_bytes()).unwrap();\n        }}\n"
        ));
    }
    h.push_str("        w.flush().unwrap();\n    }\n}\n");
    let main = dir.join("harness_main.rs");
    std::fs::write(&main, h).map_err(|e| Error::Write { path: main.clone(), msg: e.to_string() })?;
    let exe = dir.join("harness_rust");
    let mut cmd = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    cmd.args(["--edition", "2021", "-O", "-D", "warnings", "--crate-name", "harness", "--target"])
        .arg(&target.rust.triple)
        .arg(&main)
        .arg("-o")
        .arg(&exe);
    run_checked(cmd, "rustc")?;
    Ok(Harness { exe, input_lens: lens.0, output_lens: lens.1 })
}

impl Harness {
    /// Runs all samples (each a list of inputs) through one process; returns, for each
    /// sample, its outputs.
    pub fn run(&self, samples: &[Vec<Vec<f32>>]) -> Result<Vec<Vec<Vec<f32>>>> {
        let mut stdin_bytes = Vec::new();
        for s in samples {
            if s.len() != self.input_lens.len() {
                return Err(Error::Usage(format!(
                    "sample has {} inputs, model takes {}",
                    s.len(),
                    self.input_lens.len()
                )));
            }
            for (x, &n) in s.iter().zip(&self.input_lens) {
                if x.len() != n {
                    return Err(Error::Usage(format!("input has {} values, model expects {n}", x.len())));
                }
                for v in x {
                    stdin_bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        let mut child = Command::new(&self.exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Toolchain(format!("cannot run {}: {e}", self.exe.display())))?;
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
        let floats: Vec<f32> =
            out.stdout.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let per: usize = self.output_lens.iter().sum();
        if floats.len() != per * samples.len() {
            return Err(Error::Toolchain(format!(
                "harness wrote {} values, expected {}",
                floats.len(),
                per * samples.len()
            )));
        }
        let mut res = Vec::with_capacity(samples.len());
        for s in floats.chunks(per.max(1)).take(samples.len()) {
            let mut outs = vec![];
            let mut at = 0;
            for &n in &self.output_lens {
                outs.push(s[at..at + n].to_vec());
                at += n;
            }
            res.push(outs);
        }
        Ok(res)
    }
}
