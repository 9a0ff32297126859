//! Code generation. Both backends read the planned graph through [`Program`], which fixes
//! everything the emitted code depends on (names, buffer locations, constants) so that C and
//! Rust output describe the same computation. Emitters never branch on a target name.

pub mod c;
mod conv_geo;
mod float_lit;
pub mod lin;
pub mod rust;

pub use float_lit::{float_repr, float_repr64};

use crate::error::{Error, Result};
use crate::ir::{Graph, ValueId};
use crate::passes::{Layouts, MemoryPlan, Storage};

/// What the target's instruction set offers the C kernels (from [`TargetDesc::features`];
/// emitters branch on these, never on a target's name). The default is the portable set.
///
/// [`TargetDesc::features`]: crate::target::TargetDesc::features
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Isa {
    /// A 4-way unsigned × signed byte dot product accumulating into int32 lanes (AVX-512
    /// VNNI `VPDPBUSD`): int8 dense convolutions take 4 input channels per multiply.
    pub dot4: bool,
}

impl Isa {
    pub fn of(target: &crate::target::TargetDesc) -> Isa {
        Isa { dot4: target.features.iter().any(|f| f == "avx512vnni") }
    }
}

/// What the emitted kernels are optimized for (`--opt`). The generated API, the arithmetic and
/// therefore the results are the same either way; only the kernels and their flash differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Opt {
    /// The fastest kernels for the target: register-blocked and SIMD kernels with unrolled,
    /// per-layer code (more flash; int8 weights may be widened to the kernel's lane type).
    #[default]
    Speed,
    /// Compact loop kernels only: no per-instruction-set kernels, weights in their own type
    /// where the kernel allows; timing and size builds use `-Os` / `opt-level="s"`.
    Size,
}

impl Opt {
    /// Whether the instruction-set kernels (`c/simd.rs` and the kernels it dispatches, and
    /// the Rust backend's packed panels) may be emitted.
    pub fn simd(self) -> bool {
        self == Opt::Speed
    }

    /// The `--opt` value.
    pub fn name(self) -> &'static str {
        match self {
            Opt::Speed => "speed",
            Opt::Size => "size",
        }
    }
}

/// The kernel choices for one node: what its scratch is planned for and what is emitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Choice {
    pub isa: Isa,
    pub opt: Opt,
    /// A 3×3 convolution may use the Winograd kernel (speed builds, unless the memory plan
    /// kept it direct: [`Layouts::direct_convs`]).
    pub winograd: bool,
    /// The node reads its first input, or writes its output, in channel blocks
    /// ([`crate::passes::Layouts::blocked`]) rather than in the model's NCHW layout.
    pub x_blocked: bool,
    pub y_blocked: bool,
    /// Which of the kernel's register tiles: 0 is the one its fixed rule picks, others come
    /// from `--tune` ([`Layouts::tiles`]).
    pub tile: u8,
}

impl Choice {
    /// The choices for node `n` of `g`: speed builds may use Winograd unless `direct_convs`
    /// (node indices, [`Layouts::direct_convs`]) keeps `n` direct; `blocked` values
    /// ([`crate::passes::Layouts::blocked`]) are read and written in channel blocks.
    pub fn of(g: &Graph, n: &crate::ir::Node, isa: Isa, opt: Opt, kept: &Layouts) -> Choice {
        // The node's index, searched for only when a per-node decision could apply.
        let index = match kept.direct_convs.is_empty() && kept.tiles.is_empty() {
            true => None,
            false => g.nodes.iter().position(|m| std::ptr::eq(m, n)),
        };
        let direct = index.is_some_and(|i| kept.direct_convs.contains(&i));
        let blocked = |v: Option<&ValueId>| v.is_some_and(|v| kept.blocked.contains(v));
        Choice {
            isa,
            opt,
            winograd: opt.simd() && !direct,
            x_blocked: blocked(n.inputs.first()),
            y_blocked: blocked(n.outputs.first()),
            tile: index.and_then(|i| kept.tiles.get(&i)).map_or(0, |&t| t),
        }
    }

    /// Whether the node reads or writes channel blocks.
    pub fn blocked(&self) -> bool {
        self.x_blocked || self.y_blocked
    }
}

/// A planned graph ready for emission.
pub struct Program<'g> {
    pub graph: &'g Graph,
    pub plan: MemoryPlan,
    /// The instruction set the kernels may use (the memory plan was made for the same).
    pub isa: Isa,
    /// Speed or size kernels (the memory plan was made for the same).
    pub opt: Opt,
    /// Symbol prefix / module name (a valid C and Rust identifier).
    pub name: String,
    /// First line of every emitted file.
    pub banner: String,
}

/// One emitted file: name relative to the output directory and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    pub name: String,
    pub contents: String,
}

impl<'g> Program<'g> {
    /// Checks that float-only ops see float tensors (the frontend reports other cases as
    /// unsupported; this guards graphs built by other means).
    pub fn check_dtypes(&self) -> Result<()> {
        for n in &self.graph.nodes {
            if n.op.float_only() {
                for &v in n.inputs.iter().chain(&n.outputs) {
                    let t = self.graph.ty(v);
                    if !n.op.float_kernel_for(t.dtype) {
                        return Err(Error::node(
                            &n.name,
                            &n.onnx_op,
                            format!("{} is implemented for float32 only, got a {} tensor", n.op.name(), t.dtype),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn storage(&self, v: ValueId) -> Storage {
        self.plan.get(v)
    }

    /// Element counts of the graph inputs and outputs.
    pub fn io_lens(&self) -> (Vec<usize>, Vec<usize>) {
        let lens = |vs: &[ValueId]| vs.iter().map(|&v| self.graph.ty(v).len()).collect();
        (lens(&self.graph.inputs), lens(&self.graph.outputs))
    }

    /// Names of the `<i>` length constants: `INPUT_LEN` alone, or `INPUT0_LEN`, `INPUT1_LEN`, ...
    pub fn len_names(kind: &str, count: usize) -> Vec<String> {
        if count == 1 { vec![format!("{kind}_LEN")] } else { (0..count).map(|i| format!("{kind}{i}_LEN")).collect() }
    }

    /// Whether node `i` has a kernel: views (Reshape sharing its input's storage) need no
    /// code, and nodes producing empty (zero-element) tensors have nothing to compute.
    pub fn runs(&self, i: usize) -> bool {
        !self.plan.is_view(self.graph, i) && !self.graph.ty(self.graph.nodes[i].outputs[0]).is_empty()
    }

    /// Constant values read by the nodes that [run](Program::runs), in first-use order
    /// (each emitted once).
    pub fn constants(&self) -> Vec<ValueId> {
        let mut seen = vec![];
        for (i, n) in self.graph.nodes.iter().enumerate() {
            if !self.runs(i) {
                continue;
            }
            for &v in &n.inputs {
                if self.graph.is_const(v) && !seen.contains(&v) {
                    seen.push(v);
                }
            }
        }
        seen
    }

    /// The kernel choices for node `n` (as the memory plan made them).
    pub fn choice(&self, n: &crate::ir::Node) -> Choice {
        Choice::of(self.graph, n, self.isa, self.opt, &self.plan.layouts)
    }

    /// Arena size as emitted: never zero, so the caller can always declare it.
    pub fn arena_bytes(&self) -> usize {
        self.plan.arena_bytes.max(self.plan.align)
    }
}

/// Turns any string into a C/Rust identifier: `[A-Za-z0-9_]`, not starting with a digit.
pub fn sanitize_ident(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "m_");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sanitize_ident;

    #[test]
    fn identifiers_are_sanitized() {
        assert_eq!(sanitize_ident("digits-cnn"), "digits_cnn");
        assert_eq!(sanitize_ident("123"), "m_123");
        assert_eq!(sanitize_ident(""), "m_");
    }
}
