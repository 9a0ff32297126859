//! Target descriptions (`targets/*.toml`), built in with `include_str!` and selectable by
//! name or by path to a TOML file.

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
    /// Command prefix that runs this target's Linux binaries from the host (e.g.
    /// `["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]`); empty for the host itself.
    #[serde(default)]
    pub runner: Vec<String>,
    pub c: CTarget,
    pub rust: RustTarget,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CTarget {
    pub compiler: String,
    #[serde(default)]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RustTarget {
    pub triple: String,
    /// Linker passed to rustc as `-C linker=...` (cross targets).
    #[serde(default)]
    pub linker: Option<String>,
}

const BUILTIN: &[(&str, &str)] = &[("x86_64", include_str!("../../targets/x86_64.toml"))];

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
                c: CTarget { compiler: "cc".into(), flags: vec!["-O2".into()] },
                runner: vec![],
                rust: RustTarget { triple: "x86_64-unknown-linux-gnu".into(), linker: None },
            },
        }
    }

    /// Names of the built-in targets.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for n in TargetDesc::builtin_names() {
            assert!(TargetDesc::load(n).is_ok(), "{n}");
        }
        assert!(TargetDesc::load("nope").is_err());
    }
}
