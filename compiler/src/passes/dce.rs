use crate::ir::Graph;

/// Dead-node removal: drops nodes none of whose outputs is read by another node or is a
/// graph output. Values stay in the table (ids are stable) but become unreferenced.
pub fn dce(g: &mut Graph) -> bool {
    let before = g.nodes.len();
    loop {
        let dead = (0..g.nodes.len()).rev().find(|&i| g.nodes[i].outputs.iter().all(|&o| g.use_count(o) == 0));
        match dead {
            Some(i) => {
                g.nodes.remove(i);
            }
            None => break,
        }
    }
    g.nodes.len() != before
}
