//! The op graph: values (typed, optionally constant) and nodes in execution order.

use super::tensor::{TensorData, TensorType};
use crate::ops::Op;

/// Index of a value in [`Graph::values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// A tensor flowing through the graph. Constants carry their data.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The ONNX name, kept for error messages and the text dump.
    pub name: String,
    pub ty: TensorType,
    pub data: Option<TensorData>,
}

/// One operation. `name` and `onnx_op` are the ONNX node's, for errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub onnx_op: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

/// A model: nodes are kept in a valid execution (topological) order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

impl Graph {
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0]
    }

    pub fn ty(&self, id: ValueId) -> &TensorType {
        &self.values[id.0].ty
    }

    pub fn data(&self, id: ValueId) -> Option<&TensorData> {
        self.values[id.0].data.as_ref()
    }

    pub fn is_const(&self, id: ValueId) -> bool {
        self.values[id.0].data.is_some()
    }

    pub fn add_value(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        self.values.push(Value { name: name.into(), ty, data: None });
        ValueId(self.values.len() - 1)
    }

    pub fn add_const(&mut self, name: impl Into<String>, ty: TensorType, data: TensorData) -> ValueId {
        self.values.push(Value { name: name.into(), ty, data: Some(data) });
        ValueId(self.values.len() - 1)
    }

    /// Index of the node producing `id`, if any.
    pub fn producer(&self, id: ValueId) -> Option<usize> {
        self.nodes.iter().position(|n| n.outputs.contains(&id))
    }

    /// Indices of the nodes reading `id`.
    pub fn consumers(&self, id: ValueId) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].inputs.contains(&id)).collect()
    }

    /// Number of uses of `id`: node inputs plus graph outputs.
    pub fn use_count(&self, id: ValueId) -> usize {
        let by_nodes: usize = self.nodes.iter().map(|n| n.inputs.iter().filter(|&&v| v == id).count()).sum();
        by_nodes + self.outputs.iter().filter(|&&v| v == id).count()
    }

    pub fn is_graph_output(&self, id: ValueId) -> bool {
        self.outputs.contains(&id)
    }

    pub fn is_graph_input(&self, id: ValueId) -> bool {
        self.inputs.contains(&id)
    }

    /// Replaces every use of `old` by `new` (node inputs and graph outputs).
    pub fn replace_uses(&mut self, old: ValueId, new: ValueId) {
        for n in &mut self.nodes {
            for v in &mut n.inputs {
                if *v == old {
                    *v = new;
                }
            }
        }
        for v in &mut self.outputs {
            if *v == old {
                *v = new;
            }
        }
    }

    /// Total bytes of constant data still referenced by nodes.
    pub fn weight_bytes(&self) -> usize {
        let mut seen = std::collections::BTreeSet::new();
        for n in &self.nodes {
            for &v in &n.inputs {
                if self.is_const(v) {
                    seen.insert(v);
                }
            }
        }
        seen.iter().map(|&v| self.ty(v).bytes()).sum()
    }
}
