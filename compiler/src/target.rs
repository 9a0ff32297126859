//! Target descriptions (`targets/*.toml`), built in with `include_str!` and selectable by
//! name or by path to a TOML file. Every fact about a target lives in its TOML: emitters and
//! build steps read fields, never the target's name. `targets/TEMPLATE.toml` documents them.

use crate::error::{Error, Result};
use serde::Deserialize;

/// What the emitters and the build steps know about a target.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetDesc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Alignment of the arena and of every tensor in it, in bytes (a power of two).
    pub arena_align: usize,
    /// SIMD / ISA features the backends may use (e.g. `neon`, `avx2`, `fma`, `dsp`,
    /// `fpv4-sp`); the C flags and Rust target features must enable them.
    #[serde(default)]
    pub features: Vec<String>,
    /// A hardware floating-point unit exists (false: floats are emulated in software, and
    /// the int8 path must be integer-only).
    #[serde(default = "yes")]
    pub has_fpu: bool,
    /// An operating system runs the binaries (false: bare metal, firmware images).
    #[serde(default = "yes")]
    pub has_os: bool,
    /// A C library exists (glibc, or newlib on bare metal).
    #[serde(default = "yes")]
    pub has_libc: bool,
    /// Command prefix that runs this target's test binaries from the host (e.g.
    /// `["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]`; for bare metal, a qemu-system
    /// command ending in `-kernel`); empty for the host itself. The binary is appended.
    #[serde(default)]
    pub runner: Vec<String>,
    /// Debian package that provides `runner[0]` (for error hints).
    #[serde(default)]
    pub runner_package: String,
    /// Berkeley-format `size` tool for this target's objects, libraries and images.
    #[serde(default = "default_size")]
    pub size: String,
    pub c: CTarget,
    pub rust: RustTarget,
    /// Bare-metal image layout (targets that can build a firmware image).
    #[serde(default)]
    pub firmware: Option<Firmware>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CTarget {
    pub compiler: String,
    /// Flags for every compile for this target (ABI / CPU flags first, then optimisation).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Archiver for static libraries (default: what the `cc` crate picks for the triple).
    #[serde(default)]
    pub ar: Option<String>,
    /// Debian package that provides `compiler` (for error hints).
    #[serde(default)]
    pub package: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RustTarget {
    pub triple: String,
    /// Linker passed to rustc as `-C linker=...` (cross targets).
    #[serde(default)]
    pub linker: Option<String>,
    /// `-C target-feature=` entries (e.g. `+avx2`).
    #[serde(default)]
    pub target_features: Vec<String>,
}

/// Memory map and link settings of a bare-metal image (see `codegen-templates/firmware/`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Firmware {
    /// Board the runner emulates (informational; the runner command selects it).
    #[serde(default)]
    pub board: String,
    pub flash_origin: u64,
    pub flash_length: u64,
    pub ram_origin: u64,
    pub ram_length: u64,
    /// Extra link flags (e.g. `--specs=rdimon.specs` for printf over semihosting).
    #[serde(default)]
    pub link_flags: Vec<String>,
    /// RAM kept free of the arena, in bytes: the stack, the caller's I/O buffers and the C
    /// library's data (see [`TargetDesc::check_fits`]).
    #[serde(default = "default_stack_reserve")]
    pub stack_reserve: u64,
    /// Flash kept free of the weights, in bytes: the kernels' code, startup code and the C
    /// library (printf over semihosting).
    #[serde(default = "default_code_reserve")]
    pub code_reserve: u64,
    /// Debian package of the C library (for error hints).
    #[serde(default)]
    pub libc_package: String,
}

fn yes() -> bool {
    true
}

/// Default [`Firmware::stack_reserve`]: 2 KiB.
pub const DEFAULT_STACK_RESERVE: u64 = 2 * 1024;
/// Default [`Firmware::code_reserve`]: 32 KiB.
pub const DEFAULT_CODE_RESERVE: u64 = 32 * 1024;

fn default_stack_reserve() -> u64 {
    DEFAULT_STACK_RESERVE
}

fn default_code_reserve() -> u64 {
    DEFAULT_CODE_RESERVE
}

/// `n` with thousands separators (`98,304`).
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn default_size() -> String {
    "size".into()
}

const BUILTIN: &[(&str, &str)] = &[
    ("x86_64", include_str!("../../targets/x86_64.toml")),
    ("x86_64-avx512", include_str!("../../targets/x86_64-avx512.toml")),
    ("aarch64", include_str!("../../targets/aarch64.toml")),
    ("riscv64", include_str!("../../targets/riscv64.toml")),
    ("cortex-m4", include_str!("../../targets/cortex-m4.toml")),
    ("cortex-m0plus", include_str!("../../targets/cortex-m0plus.toml")),
];

impl TargetDesc {
    /// Parses a target TOML.
    pub fn parse(text: &str, origin: &str) -> Result<TargetDesc> {
        let t: TargetDesc = toml::from_str(text).map_err(|e| Error::Target(format!("{origin}: {e}")))?;
        if !t.arena_align.is_power_of_two() || t.arena_align < 4 {
            return Err(Error::Target(format!(
                "{origin}: arena_align must be a power of two >= 4, got {}",
                t.arena_align
            )));
        }
        if let Some(fw) = &t.firmware
            && (fw.flash_length == 0 || fw.ram_length == 0)
        {
            return Err(Error::Target(format!("{origin}: firmware flash_length and ram_length must be > 0")));
        }
        Ok(t)
    }

    /// A built-in target by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<TargetDesc> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return TargetDesc::parse(text, name_or_path);
        }
        let path = std::path::Path::new(name_or_path);
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
            return TargetDesc::parse(&text, name_or_path);
        }
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        Err(Error::Target(format!(
            "unknown target \"{name_or_path}\" (built in: {}; or give a path to a .toml)",
            names.join(", ")
        )))
    }

    /// The host target.
    pub fn host() -> TargetDesc {
        match TargetDesc::load("x86_64") {
            Ok(t) => t,
            Err(_) => TargetDesc {
                name: "x86_64".into(),
                description: String::new(),
                arena_align: 16,
                features: vec![],
                has_fpu: true,
                has_os: true,
                has_libc: true,
                runner: vec![],
                runner_package: String::new(),
                size: default_size(),
                c: CTarget { compiler: "cc".into(), flags: vec!["-O2".into()], ar: None, package: String::new() },
                rust: RustTarget { triple: "x86_64-unknown-linux-gnu".into(), linker: None, target_features: vec![] },
                firmware: None,
            },
        }
    }

    /// Names of the built-in targets.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// All built-in targets, in listing order.
    pub fn builtins() -> Result<Vec<TargetDesc>> {
        BUILTIN.iter().map(|(n, text)| TargetDesc::parse(text, n)).collect()
    }

    /// Resource limits of a bare-metal target (one with a `[firmware]` memory map): the
    /// arena (`arena` bytes, static RAM) plus the stack reserve must fit `ram_length`, and
    /// the weights (`flash` bytes, sparse-aware: [`crate::passes::sparsify::flash_bytes`])
    /// plus the code reserve must fit `flash_length`. Targets with an OS have no limits.
    /// The error gives both numbers and what to do.
    pub fn check_fits(&self, arena: usize, flash: usize) -> Result<()> {
        let Some(fw) = &self.firmware else { return Ok(()) };
        let g = |n: u64| group_digits(n);
        let mut problems = vec![];
        let (arena, flash) = (arena as u64, flash as u64);
        if arena.saturating_add(fw.stack_reserve) > fw.ram_length {
            problems.push(format!(
                "arena {} B exceeds the {} RAM of {} B minus its stack reserve of {} B ({} B left for the arena); \
                 try --int8 (4x smaller activations), a smaller input shape, or a target with more RAM \
                 (--target FILE.toml, see targets/TEMPLATE.toml)",
                g(arena),
                self.name,
                g(fw.ram_length),
                g(fw.stack_reserve),
                g(fw.ram_length.saturating_sub(fw.stack_reserve))
            ));
        }
        if flash.saturating_add(fw.code_reserve) > fw.flash_length {
            problems.push(format!(
                "weights {} B exceed the {} flash of {} B minus its code reserve of {} B ({} B left for weights); \
                 try --int8 (4x smaller weights), --sparsity, or a target with more flash \
                 (--target FILE.toml, see targets/TEMPLATE.toml)",
                g(flash),
                self.name,
                g(fw.flash_length),
                g(fw.code_reserve),
                g(fw.flash_length.saturating_sub(fw.code_reserve))
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Target(format!("{}; nothing written", problems.join("; and "))))
        }
    }

    /// Whether `feature` is among the ISA features the backends may use.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for n in TargetDesc::builtin_names() {
            let t = TargetDesc::load(n).unwrap();
            assert_eq!(t.name, n);
            assert!(!t.description.is_empty(), "{n}");
            assert_eq!(t.has_os, t.firmware.is_none(), "{n}: bare-metal targets describe their image");
        }
        assert!(TargetDesc::load("nope").is_err());
    }

    #[test]
    fn limits_of_bare_metal_targets() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(98_304), "98,304");
        assert_eq!(group_digits(1_063_456), "1,063,456");
        let m0 = TargetDesc::load("cortex-m0plus").unwrap();
        // 16 KiB RAM, 256 KiB flash, default reserves.
        assert!(m0.check_fits(16 * 1024 - 2048, 256 * 1024 - 32 * 1024).is_ok());
        let e = m0.check_fits(16 * 1024 - 2047, 0).unwrap_err().to_string();
        assert!(e.contains("arena 14,337 B exceeds the cortex-m0plus RAM of 16,384 B"), "{e}");
        assert!(!e.contains("flash"), "{e}");
        let e = m0.check_fits(0, 256 * 1024).unwrap_err().to_string();
        assert!(e.contains("weights 262,144 B exceed the cortex-m0plus flash of 262,144 B"), "{e}");
        let e = m0.check_fits(usize::MAX, usize::MAX).unwrap_err().to_string();
        assert!(e.contains("RAM") && e.contains("flash"), "{e}");
        assert!(TargetDesc::host().check_fits(usize::MAX, usize::MAX).is_ok());
    }

    #[test]
    fn minimal_toml_keeps_parsing_with_defaults() {
        let t = TargetDesc::parse(
            "name = \"x\"\narena_align = 8\n[c]\ncompiler = \"cc\"\n[rust]\ntriple = \"x86_64-unknown-linux-gnu\"\n",
            "inline",
        )
        .unwrap();
        assert!(t.has_os && t.has_libc && t.has_fpu);
        assert_eq!(t.size, "size");
        assert!(t.features.is_empty() && t.firmware.is_none());
        assert!(
            TargetDesc::parse(
                "name = \"x\"\narena_align = 8\nbogus = 1\n[c]\ncompiler = \"cc\"\n[rust]\ntriple = \"t\"\n",
                "i"
            )
            .is_err()
        );
    }

    #[test]
    fn template_documents_every_field() {
        let template = include_str!("../../targets/TEMPLATE.toml");
        for field in [
            "name",
            "description",
            "arena_align",
            "features",
            "has_fpu",
            "has_os",
            "has_libc",
            "runner",
            "runner_package",
            "size",
            "[c]",
            "compiler",
            "flags",
            "ar",
            "package",
            "[rust]",
            "triple",
            "linker",
            "target_features",
            "[firmware]",
            "board",
            "flash_origin",
            "flash_length",
            "ram_origin",
            "ram_length",
            "link_flags",
            "libc_package",
        ] {
            assert!(template.contains(field), "TEMPLATE.toml does not document {field}");
        }
        // The template itself is a valid target description.
        TargetDesc::parse(template, "TEMPLATE.toml").unwrap();
    }
}
