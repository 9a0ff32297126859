//! Structural checks run after import and after every pass in debug builds and tests.

use super::{Graph, ValueId};
use std::collections::BTreeSet;

/// Checks that nodes are in topological order, every value is defined once, and every
/// node's recorded output types match its op's shape inference.
pub fn verify(g: &Graph) -> Result<(), String> {
    let mut defined: BTreeSet<ValueId> = g.inputs.iter().copied().collect();
    for (i, v) in g.values.iter().enumerate() {
        if v.data.is_some() {
            defined.insert(ValueId(i));
        }
    }
    for n in &g.nodes {
        for &v in &n.inputs {
            if v.0 >= g.values.len() || !defined.contains(&v) {
                return Err(format!("node \"{}\" reads %{} before it is defined", n.name, v.0));
            }
        }
        let tys: Vec<_> = n.inputs.iter().map(|&v| g.ty(v)).collect();
        let inferred = n.op.infer(&tys).map_err(|e| format!("node \"{}\": {e}", n.name))?;
        if n.outputs.len() != 1 {
            return Err(format!("node \"{}\" has {} outputs, expected 1", n.name, n.outputs.len()));
        }
        let out = g.ty(n.outputs[0]);
        if out.shape != inferred.shape || out.dtype != inferred.dtype {
            return Err(format!("node \"{}\": recorded type {:?} differs from inferred {:?}", n.name, out, inferred));
        }
        for &o in &n.outputs {
            if !defined.insert(o) {
                return Err(format!("value %{} is defined twice", o.0));
            }
        }
    }
    for &o in &g.outputs {
        if !defined.contains(&o) {
            return Err(format!("graph output %{} is never computed", o.0));
        }
    }
    Ok(())
}
