//! Cross-compilation outputs for `modelless build --emit`: a static library for the target
//! (`lib`), a complete `no_std` crate (`crate`), or a bare-metal firmware image
//! (`firmware`), plus their flash / RAM footprint from the target's `size` tool. Everything
//! target-specific comes from the [`TargetDesc`]; templates live in `codegen-templates/`.

use crate::backend::OutFile;
use crate::compile::{Compiled, Lang};
use crate::error::{Error, Result};
use crate::target::TargetDesc;
use crate::toolchain::{self, IoSig, c_build, require_c, require_rust, require_tool, run_checked};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `modelless build` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// The C files or the Rust module (default).
    Source,
    /// The sources plus a static library for the target (C: `libNAME.a`; Rust: the emitted
    /// crate built with `cargo --target`, `libNAME.rlib`), with its flash and RAM.
    Lib,
    /// A complete `no_std` crate directory (Cargo.toml + src/) to depend on by path (Rust).
    Crate,
    /// A bare-metal image running the model on baked inputs (targets with `[firmware]`):
    /// C with the target's gcc and newlib, or a `no_std` Rust firmware crate.
    Firmware,
}

/// Section sizes in bytes, Berkeley style (`text` includes read-only data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizeReport {
    pub text: u64,
    pub data: u64,
    pub bss: u64,
}

impl SizeReport {
    /// Bytes in flash: code and read-only data (weights), plus the initial values of .data.
    pub fn flash(&self) -> u64 {
        self.text + self.data
    }

    /// Bytes of static RAM: .data and .bss.
    pub fn ram(&self) -> u64 {
        self.data + self.bss
    }
}

impl std::fmt::Display for SizeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "flash {} bytes (text+rodata {}, data {}), RAM {} bytes (data {}, bss {})",
            self.flash(),
            self.text,
            self.data,
            self.ram(),
            self.data,
            self.bss
        )
    }
}

/// Runs the target's `size` on an object, archive or image and sums its rows.
pub fn size_of(target: &TargetDesc, path: &Path) -> Result<SizeReport> {
    let size = require_tool(&target.size, &target.c.package)?;
    let out = Command::new(&size)
        .arg(path)
        .output()
        .map_err(|e| Error::Toolchain(format!("cannot start {}: {e}", target.size)))?;
    // Archives may hold members `size` does not understand (a Rust rlib's metadata): it
    // complains about those on stderr and still lists the objects.
    let mut total = SizeReport::default();
    let mut rows = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<u64> = line.split_whitespace().take(3).map_while(|w| w.parse().ok()).collect();
        if let [text, data, bss] = f[..] {
            total.text += text;
            total.data += data;
            total.bss += bss;
            rows += 1;
        }
    }
    if rows == 0 {
        return Err(Error::Toolchain(format!(
            "{} printed no sizes for {}: {}",
            target.size,
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(total)
}

fn write(path: &Path, contents: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Write { path: parent.into(), msg: e.to_string() })?;
    }
    std::fs::write(path, contents).map_err(|e| Error::Write { path: path.into(), msg: e.to_string() })
}

fn write_all(dir: &Path, files: &[OutFile]) -> Result<()> {
    files.iter().try_for_each(|f| write(&dir.join(&f.name), &f.contents))
}

/// Compiles generated C (`files`, already written to `dir`) into `dir/libNAME.a` with the
/// target's cross compiler and archiver.
pub fn build_c_lib(dir: &Path, name: &str, files: &[OutFile], target: &TargetDesc) -> Result<(PathBuf, SizeReport)> {
    require_c(target)?;
    let build = c_build(target);
    let cc =
        build.try_get_compiler().map_err(|e| Error::Toolchain(format!("no C compiler for {}: {e}", target.name)))?;
    let mut objects = vec![];
    for f in files.iter().filter(|f| f.name.ends_with(".c")) {
        let obj = dir.join(format!("{}.o", f.name.trim_end_matches(".c")));
        let mut cmd = cc.to_command();
        cmd.arg("-c").arg(dir.join(&f.name)).arg("-o").arg(&obj);
        run_checked(cmd, "C compiler")?;
        objects.push(obj);
    }
    let ar = match &target.c.ar {
        Some(ar) => require_tool(ar, &target.c.package)?.into_os_string(),
        None => build
            .try_get_archiver()
            .map_err(|e| Error::Toolchain(format!("no archiver for {}: {e}", target.name)))?
            .get_program()
            .to_os_string(),
    };
    let lib = dir.join(format!("lib{name}.a"));
    let _ = std::fs::remove_file(&lib);
    let mut cmd = Command::new(ar);
    cmd.arg("crs").arg(&lib).args(&objects);
    run_checked(cmd, "archiver")?;
    for o in &objects {
        let _ = std::fs::remove_file(o);
    }
    let size = size_of(target, &lib)?;
    Ok((lib, size))
}

/// The files of a `no_std` crate around a generated Rust module: `Cargo.toml`,
/// `src/lib.rs` and `src/NAME.rs`. The crate re-exports the module's API at its root.
pub fn crate_files(compiled: &Compiled) -> Result<Vec<OutFile>> {
    let name = &compiled.name;
    let module = compiled
        .files
        .iter()
        .find(|f| f.name.ends_with(".rs"))
        .ok_or_else(|| Error::Usage("--emit crate needs Rust output (--lang rust)".into()))?;
    let cargo = format!(
        "# @generated by modelless {ver}. Do not edit.\n\
         [package]\n\
         name = \"{name}\"\n\
         version = \"0.1.0\"\n\
         edition = \"2021\"\n\
         description = \"{name}: generated by modelless, no_std, no dependencies, no allocation\"\n\
         publish = false\n\n\
         [lib]\n\
         path = \"src/lib.rs\"\n\n\
         # Used when the crate is built on its own (`modelless build --emit lib`).\n\
         [profile.release]\n\
         codegen-units = 1\n\
         panic = \"abort\"\n",
        ver = env!("CARGO_PKG_VERSION"),
    );
    let lib = format!(
        "//! @generated by modelless {ver}. Do not edit.\n\
         //!\n\
         //! `{name}`: `INPUT_LEN`, `OUTPUT_LEN`, `ARENA_BYTES`, `Arena::new()` and\n\
         //! `run(&input, &mut output, &mut arena)`; no allocation, no `unsafe`, no dependency.\n\
         #![no_std]\n\n\
         mod {name};\n\
         pub use {name}::*;\n",
        ver = env!("CARGO_PKG_VERSION"),
    );
    Ok(vec![
        OutFile { name: "Cargo.toml".into(), contents: cargo },
        OutFile { name: "src/lib.rs".into(), contents: lib },
        OutFile { name: format!("src/{name}.rs"), contents: module.contents.clone() },
    ])
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds the crate in `crate_dir` for the target with `cargo build --release --target`;
/// copies `libNAME.rlib` next to it. The build runs on a staged copy (outside any workspace
/// the output directory may sit in).
pub fn build_rust_lib(crate_dir: &Path, name: &str, target: &TargetDesc) -> Result<(PathBuf, SizeReport)> {
    require_rust(target)?;
    let stage = tempfile::Builder::new()
        .prefix("modelless-crate-")
        .tempdir()
        .map_err(|e| Error::Write { path: std::env::temp_dir(), msg: e.to_string() })?;
    for rel in ["Cargo.toml".to_string(), "src/lib.rs".to_string(), format!("src/{name}.rs")] {
        let text = std::fs::read_to_string(crate_dir.join(&rel))
            .map_err(|source| Error::Read { path: crate_dir.join(&rel), source })?;
        write(&stage.path().join(&rel), &text)?;
    }
    let mut cmd = cargo_build(stage.path(), target, &stage.path().join("target"));
    if !target.rust.target_features.is_empty() {
        cmd.env("RUSTFLAGS", format!("-C target-feature={}", target.rust.target_features.join(",")));
    }
    run_checked(cmd, "cargo build")?;
    let built = stage.path().join("target").join(&target.rust.triple).join("release").join(format!("lib{name}.rlib"));
    let lib = crate_dir.join(format!("lib{name}.rlib"));
    std::fs::copy(&built, &lib).map_err(|e| Error::Write { path: lib.clone(), msg: e.to_string() })?;
    let size = size_of(target, &lib)?;
    Ok((lib, size))
}

/// A built firmware image.
#[derive(Debug, Clone)]
pub struct FirmwareImage {
    pub elf: PathBuf,
    pub size: SizeReport,
}

const FW_LINK: &str = include_str!("../../codegen-templates/firmware/link.ld");
const FW_STARTUP: &str = include_str!("../../codegen-templates/firmware/startup.c");
const FW_MAIN: &str = include_str!("../../codegen-templates/firmware/main.c");

fn fill(template: &str, slots: &[(&str, String)]) -> String {
    slots.iter().fold(template.to_string(), |t, (k, v)| t.replace(&format!("{{{{{k}}}}}"), v))
}

fn firmware_section(target: &TargetDesc) -> Result<&crate::target::Firmware> {
    target.firmware.as_ref().ok_or_else(|| {
        Error::Target(format!("target {} has no [firmware] section: it cannot build bare-metal images", target.name))
    })
}

/// The linker script for the target's memory map.
pub fn linker_script(target: &TargetDesc) -> Result<String> {
    let fw = firmware_section(target)?;
    Ok(fill(
        FW_LINK,
        &[
            ("BANNER", format!("@generated by modelless {} for target {}.", env!("CARGO_PKG_VERSION"), target.name)),
            ("FLASH_ORIGIN", format!("{:#010x}", fw.flash_origin)),
            ("FLASH_LENGTH", format!("{:#x}", fw.flash_length)),
            ("RAM_ORIGIN", format!("{:#010x}", fw.ram_origin)),
            ("RAM_LENGTH", format!("{:#x}", fw.ram_length)),
        ],
    ))
}

/// Checks that firmware samples fit the model: float32 I/O, at least one sample, every
/// input present with the model's length.
fn check_samples(sig: &IoSig, samples: &[Vec<Vec<f32>>]) -> Result<()> {
    if sig.inputs.iter().chain(&sig.outputs).any(|(d, _)| *d != crate::ir::DType::F32) {
        return Err(Error::Usage("--emit firmware supports float32 model inputs and outputs only".into()));
    }
    if samples.is_empty() {
        return Err(Error::Usage("a firmware image needs at least one input sample".into()));
    }
    for s in samples {
        if s.len() != sig.inputs.len() {
            return Err(Error::Usage(format!("a sample has {} inputs, the model takes {}", s.len(), sig.inputs.len())));
        }
        for (i, (x, &(_, n))) in s.iter().zip(&sig.inputs).enumerate() {
            if x.len() != n {
                return Err(Error::Usage(format!("input {i} has {} values, the model takes {n}", x.len())));
            }
        }
    }
    Ok(())
}

/// The float32 bit patterns of `x` as hex literals (with `suffix`), eight per line.
fn hex_rows(x: &[f32], suffix: &str) -> String {
    let mut out = String::new();
    for (k, chunk) in x.chunks(8).enumerate() {
        let words: Vec<String> = chunk.iter().map(|v| format!("0x{:08x}{suffix}", v.to_bits())).collect();
        out.push_str(if k == 0 { "" } else { "\n     " });
        out.push_str(&words.join(", "));
        out.push(',');
    }
    out
}

/// `cargo build --release --target T` in `dir`, into `target_dir`, without the caller's
/// RUSTFLAGS (a host `-C target-cpu` would break a cross build).
fn cargo_build(dir: &Path, target: &TargetDesc, target_dir: &Path) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(dir)
        .args(["build", "--release", "--quiet", "--offline", "--target"])
        .arg(&target.rust.triple)
        .env("CARGO_TARGET_DIR", target_dir);
    for v in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_BUILD_RUSTFLAGS"] {
        cmd.env_remove(v);
    }
    cmd
}

/// `main.c`, `startup.c` and `link.ld` of a firmware image that runs the C model `name`
/// on `samples` (each: one float32 vector per model input) and prints the outputs.
pub fn firmware_files(name: &str, sig: &IoSig, samples: &[Vec<Vec<f32>>], target: &TargetDesc) -> Result<Vec<OutFile>> {
    check_samples(sig, samples)?;
    let prefix = name.to_ascii_uppercase();
    let (ni, no) = (sig.inputs.len(), sig.outputs.len());
    let mut data = String::new();
    let mut buffers = String::new();
    let mut copy = String::new();
    for (i, &(_, n)) in sig.inputs.iter().enumerate() {
        data.push_str(&format!("static const uint32_t in{i}_bits[SAMPLES][{n}] = {{\n"));
        for sample in samples {
            data.push_str(&format!("    {{{}}},\n", hex_rows(&sample[i], "u")));
        }
        data.push_str("};\n");
        buffers.push_str(&format!("static float in{i}[{n}];\n"));
        copy.push_str(&format!("        memcpy(in{i}, in{i}_bits[s], sizeof in{i});\n"));
    }
    let mut print = String::new();
    for (i, &(_, n)) in sig.outputs.iter().enumerate() {
        buffers.push_str(&format!("static float out{i}[{n}];\n"));
        print.push_str(&format!("        print_bits(\"output {i}:\", out{i}, {n}u);\n"));
    }
    let args: Vec<String> = (0..ni).map(|i| format!("in{i}")).chain((0..no).map(|i| format!("out{i}"))).collect();
    let banner =
        format!("@generated by modelless {} for target {}. Do not edit.", env!("CARGO_PKG_VERSION"), target.name);
    let main = fill(
        FW_MAIN,
        &[
            ("BANNER", banner.clone()),
            ("NAME", name.to_string()),
            ("PREFIX", prefix),
            ("SAMPLES", samples.len().to_string()),
            ("INPUT_DATA", data),
            ("BUFFERS", buffers),
            ("COPY_INPUTS", copy.trim_end().to_string()),
            ("ARGS", args.join(", ")),
            ("PRINT_OUTPUTS", print.trim_end().to_string()),
        ],
    );
    Ok(vec![
        OutFile { name: "main.c".into(), contents: main },
        OutFile { name: "startup.c".into(), contents: fill(FW_STARTUP, &[("BANNER", banner)]) },
        OutFile { name: "link.ld".into(), contents: linker_script(target)? },
    ])
}

/// Writes the model's C files and the firmware files into `dir` and links `dir/NAME.elf`
/// with the target's compiler, C library and linker script.
pub fn build_firmware(
    dir: &Path,
    compiled: &Compiled,
    samples: &[Vec<Vec<f32>>],
    target: &TargetDesc,
) -> Result<FirmwareImage> {
    if !compiled.files.iter().any(|f| f.name.ends_with(".c")) {
        return Err(Error::Usage("--emit firmware builds the C output (--lang c)".into()));
    }
    let fw = firmware_section(target)?;
    compiled.check_fits(target)?;
    require_c(target)?;
    let sig = IoSig::of(&compiled.graph);
    let extra = firmware_files(&compiled.name, &sig, samples, target)?;
    write_all(dir, &compiled.files)?;
    write_all(dir, &extra)?;
    let cc = c_build(target)
        .try_get_compiler()
        .map_err(|e| Error::Toolchain(format!("no C compiler for {}: {e}", target.name)))?;
    let elf = dir.join(format!("{}.elf", compiled.name));
    // The cc crate's flags for the target plus ours; `-nostartfiles`: startup.c is the
    // reset handler.
    let mut cmd = cc.to_command();
    cmd.arg("-nostartfiles").arg("-T").arg(dir.join("link.ld"));
    for f in compiled.files.iter().chain(&extra).filter(|f| f.name.ends_with(".c")) {
        cmd.arg(dir.join(&f.name));
    }
    cmd.args(&fw.link_flags).arg("-o").arg(&elf).arg("-lm");
    let out = cmd.output().map_err(|e| Error::Toolchain(format!("cannot start {}: {e}", target.c.compiler)))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let hint = if err.contains(".specs") || err.contains("cannot find -l") || err.contains("stdio.h") {
            format!(
                " (hint: the C library for this target is missing: apt-get install {})",
                if fw.libc_package.is_empty() { "its newlib package" } else { &fw.libc_package }
            )
        } else {
            String::new()
        };
        return Err(Error::Toolchain(format!("linking the firmware failed{hint}:\n{err}")));
    }
    let size = size_of(target, &elf)?;
    Ok(FirmwareImage { elf, size })
}

/// Boots an image with the target's runner (e.g. qemu-system-arm with semihosting) and
/// returns what it printed. Fails when the runner exits non-zero or runs past `timeout`.
pub fn run_firmware(elf: &Path, target: &TargetDesc, timeout: std::time::Duration) -> Result<String> {
    let (prog, args) = target
        .runner
        .split_first()
        .ok_or_else(|| Error::Target(format!("target {} has no runner to boot images", target.name)))?;
    require_tool(prog, &target.runner_package)?;
    let mut child = Command::new(prog)
        .args(args)
        .arg(elf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Toolchain(format!("cannot start {prog}: {e}")))?;
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Toolchain(format!("{} did not finish within {timeout:?}", elf.display())));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(Error::Toolchain(format!("{prog}: {e}"))),
        }
    }
    let out = child.wait_with_output().map_err(|e| Error::Toolchain(format!("{prog}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(Error::Toolchain(format!(
            "{} exited with {}:\n{stdout}{}",
            elf.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(stdout)
}

/// Parses the firmware's printout into per-sample outputs (exact float32 values).
pub fn parse_firmware_output(text: &str) -> Result<Vec<Vec<Vec<f32>>>> {
    let mut samples: Vec<Vec<Vec<f32>>> = vec![];
    for line in text.lines() {
        if line.starts_with("sample ") {
            samples.push(vec![]);
        } else if let Some(rest) = line.strip_prefix("output ") {
            let (_, values) = rest.split_once(':').ok_or_else(|| Error::Toolchain(format!("bad line {line:?}")))?;
            let v = values
                .split_whitespace()
                .map(|w| u32::from_str_radix(w, 16).map(f32::from_bits))
                .collect::<std::result::Result<Vec<f32>, _>>()
                .map_err(|e| Error::Toolchain(format!("bad output line {line:?}: {e}")))?;
            samples.last_mut().ok_or_else(|| Error::Toolchain("output before any sample".into()))?.push(v);
        }
    }
    if !text.lines().any(|l| l == "done") {
        return Err(Error::Toolchain(format!("the firmware did not finish:\n{text}")));
    }
    Ok(samples)
}

/// Safe Rust wrappers around generated C (for build scripts that compile the C with `cc`):
/// the same API as the Rust backend's module (`INPUT_LEN`, `OUTPUT_LEN`, `ARENA_BYTES`,
/// `Arena::new()`, `run`), calling `NAME_run` through FFI.
pub fn c_wrapper_module(name: &str, sig: &IoSig, arena_bytes: usize, arena_align: usize) -> String {
    let (ni, no) = (sig.inputs.len(), sig.outputs.len());
    let cname = |kind: &str, i: usize, n: usize| if n == 1 { format!("{kind}_LEN") } else { format!("{kind}{i}_LEN") };
    let mut s = format!(
        "// @generated by modelless {}: safe Rust wrappers around the C function {name}_run.\n\n",
        env!("CARGO_PKG_VERSION")
    );
    for (kind, list) in [("INPUT", &sig.inputs), ("OUTPUT", &sig.outputs)] {
        for (i, (_, n)) in list.iter().enumerate() {
            s.push_str(&format!("/// Element count.\npub const {}: usize = {n};\n", cname(kind, i, list.len())));
        }
    }
    s.push_str(&format!(
        "/// Size in bytes of the scratch arena.\npub const ARENA_BYTES: usize = {arena_bytes};\n\n\
         /// The scratch arena `run` uses (aligned as the C code requires).\n\
         #[repr(C, align({arena_align}))]\npub struct Arena(pub [u8; ARENA_BYTES]);\n\n\
         impl Arena {{\n    /// A zeroed arena.\n    pub const fn new() -> Self {{\n        Arena([0; ARENA_BYTES])\n    }}\n}}\n\n\
         impl Default for Arena {{\n    fn default() -> Self {{\n        Self::new()\n    }}\n}}\n\n"
    ));
    let mut params = vec![];
    let mut cparams = vec![];
    let mut cargs = vec![];
    for (i, (d, _)) in sig.inputs.iter().enumerate() {
        let t = toolchain::rust_type(*d);
        params.push(format!("input{i}: &[{t}; {}]", cname("INPUT", i, ni)));
        cparams.push(format!("input{i}: *const {t}"));
        cargs.push(format!("input{i}.as_ptr()"));
    }
    for (i, (d, _)) in sig.outputs.iter().enumerate() {
        let t = toolchain::rust_type(*d);
        params.push(format!("output{i}: &mut [{t}; {}]", cname("OUTPUT", i, no)));
        cparams.push(format!("output{i}: *mut {t}"));
        cargs.push(format!("output{i}.as_mut_ptr()"));
    }
    s.push_str(&format!(
        "unsafe extern \"C\" {{\n    fn {name}_run({}, arena: *mut core::ffi::c_void) -> core::ffi::c_int;\n}}\n\n",
        cparams.join(", ")
    ));
    s.push_str(&format!(
        "/// Runs the model once (the C code reads the inputs, writes the outputs and uses only\n\
         /// `arena` as scratch).\npub fn run({}, arena: &mut Arena) {{\n    \
         // SAFETY: every pointer comes from a reference to an array of exactly the length the C\n    \
         // code reads or writes, and the arena has ARENA_BYTES bytes at the alignment it requires.\n    \
         let _status = unsafe {{ {name}_run({}, arena.0.as_mut_ptr().cast()) }};\n}}\n",
        params.join(", "),
        cargs.join(", ")
    ));
    s
}

/// Languages an `--emit` mode works with.
pub fn check_emit(emit: Emit, lang: Lang, target: &TargetDesc) -> Result<()> {
    match (emit, lang) {
        (Emit::Crate, Lang::C) => Err(Error::Usage("--emit crate makes a Rust crate: use --lang rust".into())),
        (Emit::Firmware, _) => firmware_section(target).map(|_| ()),
        _ => Ok(()),
    }
}

/// `installed`, or what is missing (with the package / rustup target that provides it).
pub fn toolchain_status(target: &TargetDesc) -> String {
    let mut missing = vec![];
    if toolchain::find_tool(&target.c.compiler).is_none() {
        missing.push(format!("C: apt-get install {}", target.c.package));
    }
    if require_rust(target).is_err() {
        missing.push(format!("Rust: rustup target add {}", target.rust.triple));
    }
    if let Some(r) = target.runner.first()
        && toolchain::find_tool(r).is_none()
    {
        missing.push(format!("runner: apt-get install {}", target.runner_package));
    }
    if missing.is_empty() { "installed".into() } else { format!("missing ({})", missing.join("; ")) }
}

/// Samples for a firmware image from `.npy` files (one per model input; a leading dimension
/// of N whose product with the input length matches gives N samples), or one zero sample.
pub fn samples_from_npy(inputs: &[PathBuf], sig: &IoSig) -> Result<Vec<Vec<Vec<f32>>>> {
    if inputs.is_empty() {
        return Ok(vec![sig.inputs.iter().map(|&(_, n)| vec![0.0; n]).collect()]);
    }
    if inputs.len() != sig.inputs.len() {
        return Err(Error::Usage(format!(
            "got {} --input files, the model has {} inputs",
            inputs.len(),
            sig.inputs.len()
        )));
    }
    let mut per_input = vec![];
    for (path, &(_, n)) in inputs.iter().zip(&sig.inputs) {
        let a = crate::npy::read_f32(path)?;
        if a.data.is_empty() || a.data.len() % n != 0 {
            return Err(Error::Npy {
                path: path.clone(),
                msg: format!("has {} values, not a multiple of the input length {n}", a.data.len()),
            });
        }
        per_input.push(a.data.chunks(n).map(<[f32]>::to_vec).collect::<Vec<_>>());
    }
    let count = per_input.iter().map(Vec::len).min().unwrap_or(0);
    Ok((0..count).map(|s| per_input.iter().map(|inp| inp[s].clone()).collect()).collect())
}

/// `modelless build --emit lib|crate|firmware`: writes into `out` and prints what was built.
pub fn emit(cfg: &crate::Config, model: &Path, out: &Path, emit: Emit, inputs: &[PathBuf]) -> Result<()> {
    let target = &cfg.target;
    check_emit(emit, cfg.lang, target)?;
    match (emit, cfg.lang) {
        (Emit::Source, _) => {
            cfg.compile(model, out)?;
        }
        (Emit::Lib, Lang::C) => {
            let c = cfg.compile(model, out)?;
            let (lib, size) = build_c_lib(out, &c.name, &c.files, target)?;
            report_lib(&lib, size, c.plan.arena_bytes, target);
        }
        (Emit::Lib, Lang::Rust) | (Emit::Crate, Lang::Rust) => {
            let c = cfg.compile_to_memory(model)?;
            c.check_fits(target)?;
            let files = crate_files(&c)?;
            let (src, top): (Vec<OutFile>, Vec<OutFile>) = files.into_iter().partition(|f| f.name.starts_with("src/"));
            let src: Vec<OutFile> =
                src.into_iter().map(|f| OutFile { name: f.name.trim_start_matches("src/").into(), ..f }).collect();
            crate::write_files(&out.join("src"), &src)?;
            crate::write_files(out, &top)?;
            if emit == Emit::Lib {
                let (lib, size) = build_rust_lib(out, &c.name, target)?;
                report_lib(&lib, size, c.plan.arena_bytes, target);
            } else {
                println!(
                    "wrote crate {} to {} (no_std; depend on it with {} = {{ path = \"{}\" }}; arena {} bytes)",
                    c.name,
                    out.display(),
                    c.name,
                    out.display(),
                    c.plan.arena_bytes
                );
            }
        }
        (Emit::Firmware, _) => {
            let c = cfg.compile_to_memory(model)?;
            c.check_fits(target)?;
            let samples = samples_from_npy(inputs, &IoSig::of(&c.graph))?;
            std::fs::create_dir_all(out).map_err(|e| Error::Write { path: out.into(), msg: e.to_string() })?;
            let img = match cfg.lang {
                Lang::C => build_firmware(out, &c, &samples, target)?,
                Lang::Rust => build_rust_firmware(out, &c, &samples, target)?,
            };
            println!(
                "built {} for {} ({} samples baked in): {}",
                img.elf.display(),
                target.name,
                samples.len(),
                img.size
            );
            if !target.runner.is_empty() {
                println!("run it: {} {}", target.runner.join(" "), img.elf.display());
            }
        }
        (Emit::Crate, Lang::C) => {}
    }
    Ok(())
}

fn report_lib(lib: &Path, size: SizeReport, arena: usize, target: &TargetDesc) {
    println!("built {} for {}: {size}; plus the caller's arena of {arena} bytes", lib.display(), target.name);
}

const FW_RS_MAIN: &str = include_str!("../../codegen-templates/firmware/rust/main.rs");
const FW_RS_BUILD: &str = include_str!("../../codegen-templates/firmware/rust/build.rs");
const FW_RS_CARGO: &str = include_str!("../../codegen-templates/firmware/rust/Cargo.toml");

/// The firmware crate (`Cargo.toml`, `build.rs`, `link.ld`, `src/main.rs`) around the
/// generated Rust model crate `../NAME`: no dependency but the model, its own vector table,
/// reset handler and semihosting; prints in the same format as the C image.
pub fn rust_firmware_files(
    name: &str,
    sig: &IoSig,
    samples: &[Vec<Vec<f32>>],
    target: &TargetDesc,
) -> Result<Vec<OutFile>> {
    check_samples(sig, samples)?;
    let (ni, no) = (sig.inputs.len(), sig.outputs.len());
    let len = |kind: &str, i: usize, n: usize| {
        if n == 1 { format!("model::{kind}_LEN") } else { format!("model::{kind}{i}_LEN") }
    };
    let (mut data, mut buffers, mut copy, mut print) = (String::new(), String::new(), String::new(), String::new());
    for i in 0..ni {
        data.push_str(&format!("static IN{i}: [[u32; {}]; SAMPLES] = [\n", len("INPUT", i, ni)));
        for sample in samples {
            data.push_str(&format!("    [{}],\n", hex_rows(&sample[i], "")));
        }
        data.push_str("];\n");
        buffers.push_str(&format!("    let mut in{i} = [0f32; {}];\n", len("INPUT", i, ni)));
        copy.push_str(&format!(
            "        for (d, b) in in{i}.iter_mut().zip(&IN{i}[s]) {{\n            *d = f32::from_bits(*b);\n        }}\n"
        ));
    }
    for i in 0..no {
        buffers.push_str(&format!("    let mut out{i} = [0f32; {}];\n", len("OUTPUT", i, no)));
        print.push_str(&format!("        print_bits(&mut out, \"output {i}:\", &out{i});\n"));
    }
    let args: Vec<String> = (0..ni).map(|i| format!("&in{i}")).chain((0..no).map(|i| format!("&mut out{i}"))).collect();
    let banner =
        format!("@generated by modelless {} for target {}. Do not edit.", env!("CARGO_PKG_VERSION"), target.name);
    let handlers: Vec<&str> =
        std::iter::once("Reset_Handler").chain(std::iter::repeat_n("Fault_Handler", 14)).collect();
    let main = fill(
        FW_RS_MAIN,
        &[
            ("BANNER", banner.clone()),
            ("NAME", name.to_string()),
            ("HANDLERS", handlers.join(", ")),
            ("ENABLE_FPU", target.has_fpu.to_string()),
            ("SAMPLES", samples.len().to_string()),
            ("INPUT_DATA", data),
            ("BUFFERS", buffers.trim_end().to_string()),
            ("COPY_INPUTS", copy.trim_end().to_string()),
            ("ARGS", args.join(", ")),
            ("PRINT_OUTPUTS", print.trim_end().to_string()),
        ],
    );
    let slots = [("BANNER", banner), ("NAME", name.to_string())];
    Ok(vec![
        OutFile { name: "Cargo.toml".into(), contents: fill(FW_RS_CARGO, &slots) },
        OutFile { name: "build.rs".into(), contents: fill(FW_RS_BUILD, &slots) },
        OutFile { name: "link.ld".into(), contents: linker_script(target)? },
        OutFile { name: "src/main.rs".into(), contents: main },
    ])
}

/// Writes the model crate to `dir/NAME` and the firmware crate to `dir/firmware`, builds
/// it with `cargo build --release --target`, and returns the image.
pub fn build_rust_firmware(
    dir: &Path,
    compiled: &Compiled,
    samples: &[Vec<Vec<f32>>],
    target: &TargetDesc,
) -> Result<FirmwareImage> {
    firmware_section(target)?;
    require_rust(target)?;
    let sig = IoSig::of(&compiled.graph);
    let model_dir = dir.join(&compiled.name);
    write_all(&model_dir, &crate_files(compiled)?)?;
    let fw_dir = dir.join("firmware");
    write_all(&fw_dir, &rust_firmware_files(&compiled.name, &sig, samples, target)?)?;
    let target_dir = dir.join("target");
    run_checked(cargo_build(&fw_dir, target, &target_dir), "cargo build (firmware)")?;
    let elf = target_dir.join(&target.rust.triple).join("release").join(format!("{}-firmware", compiled.name));
    let size = size_of(target, &elf)?;
    Ok(FirmwareImage { elf, size })
}
