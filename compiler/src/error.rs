//! One error type for the whole compiler. Variants that concern a node carry its ONNX
//! name and op type so the user can find it in Netron; every message ends with what to do.

use std::path::PathBuf;

/// Everything that can go wrong between reading a model and writing source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },

    #[error("{} is not a valid ONNX model: {reason} (hint: check that the file is a complete .onnx export, not truncated or another format)", path.display())]
    Parse { path: PathBuf, reason: String },

    #[error("the model uses ops modelless does not support yet:\n{}\n(hint: re-export the model with supported ops, or file an issue naming these ops)", list_unsupported(.0))]
    Unsupported(Vec<Unsupported>),

    #[error("node \"{node}\" ({op}): {msg}")]
    Node { node: String, op: String, msg: String },

    #[error("input \"{input}\": {msg}")]
    Input { input: String, msg: String },

    #[error("invalid model: {0}")]
    Model(String),

    #[error("{}: {msg}", path.display())]
    Npy { path: PathBuf, msg: String },

    #[error("cannot write {}: {msg}", path.display())]
    Write { path: PathBuf, msg: String },

    #[error("toolchain: {0}")]
    Toolchain(String),

    #[error("target: {0}")]
    Target(String),

    #[error("{0}")]
    Usage(String),
}

/// An op the frontend cannot lower, with the node that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub op_type: String,
    pub node: String,
    pub reason: Option<String>,
    /// The graph input this node needs as a build-time constant (a shape, axes, scales...):
    /// binding it (`--bind-input NAME=FILE.npy`) makes the node compile.
    pub needs_const: Option<String>,
}

fn list_unsupported(items: &[Unsupported]) -> String {
    let mut ops: Vec<&str> = items.iter().map(|u| u.op_type.as_str()).collect();
    ops.sort_unstable();
    ops.dedup();
    let mut out = String::new();
    for op in ops {
        let nodes: Vec<String> = items
            .iter()
            .filter(|u| u.op_type == op)
            .map(|u| match &u.reason {
                Some(r) => format!("\"{}\" ({r})", u.node),
                None => format!("\"{}\"", u.node),
            })
            .collect();
        out.push_str(&format!("  {op}: {}\n", nodes.join(", ")));
    }
    out.trim_end().to_string()
}

impl Error {
    /// Process exit code for the CLI: 2 for unsupported ops, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Unsupported(_) => 2,
            _ => 1,
        }
    }

    pub(crate) fn node(node: &str, op: &str, msg: impl Into<String>) -> Error {
        Error::Node { node: node.to_string(), op: op.to_string(), msg: msg.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
