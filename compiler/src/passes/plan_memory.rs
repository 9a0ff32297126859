//! Static memory planning (an analysis: it does not change the graph).

use crate::ir::{DType, Graph, Node, ValueId};
use crate::ops::{InPlace, Op};
use std::collections::BTreeMap;

/// Where a value lives at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Baked into the generated code as a constant array.
    Const,
    /// The caller's i-th input buffer (read only).
    Input(usize),
    /// The caller's i-th output buffer.
    Output(usize),
    /// `offset` bytes into the caller-owned arena.
    Arena { offset: usize },
    /// Not used by any node (dead).
    Unused,
}

/// The result of planning: a storage for every value, the arena size, which Reshape nodes
/// must copy because their input and output cannot share storage, and which nodes run in
/// place.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    pub storage: Vec<Storage>,
    pub arena_bytes: usize,
    pub align: usize,
    /// Indices of Reshape nodes that are not views (their output needs its own buffer).
    pub copies: Vec<usize>,
    /// The arena's per-element-type pools, in address order.
    pub pools: Vec<Pool>,
    /// Nodes whose output takes the storage of one of their inputs (see [`Op::in_place`]).
    pub in_place: BTreeMap<usize, InPlaceRun>,
    /// Byte offset in the arena of each node's private scratch (nodes that need one).
    pub scratch: BTreeMap<usize, usize>,
    /// Per node, the arena bytes of the values and scratch live while it runs: the largest
    /// entry is the lower bound any placement of these lifetimes needs.
    pub live_bytes: Vec<usize>,
    /// The kernel decisions the scratch above was planned for (set by the caller that chose
    /// the kernels).
    pub layouts: Layouts,
}

/// Per-node kernel decisions a memory plan is made for, beyond the target and `--opt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layouts {
    /// Convolutions that keep a direct kernel although a transform kernel (Winograd) could
    /// run them, because its scratch would raise the arena.
    pub direct_convs: std::collections::BTreeSet<usize>,
    /// Float tensors the C kernels hold in channel blocks, `[n][c/8][h][w][8]`, instead of
    /// NCHW: the values between channel-lane kernels (same bytes, no transposes).
    pub blocked: std::collections::BTreeSet<crate::ir::ValueId>,
    /// Register tiles chosen by `--tune` (node index → the kernel's tile index, see
    /// [`crate::backend::Choice::tile`]); nodes not listed take the kernel's rule.
    pub tiles: std::collections::BTreeMap<usize, u8>,
}

/// A node planned to run in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InPlaceRun {
    /// The input whose storage the output shares.
    pub input: usize,
}

/// What a backend's kernels need from the planner.
pub trait KernelNeeds {
    /// Whether the kernels honour the in-place contract of [`Op::in_place`].
    fn runs_in_place(&self) -> bool;
    /// Bytes of private scratch the kernel of `n` needs while it runs (`in_place`: how it
    /// runs over its input, if the plan makes it).
    fn scratch_bytes(&self, g: &Graph, n: &Node, in_place: Option<InPlace>) -> usize;
}

/// A region of the arena holding only values of one element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub dtype: DType,
    /// Byte offset of the pool in the arena (a multiple of the alignment).
    pub base: usize,
    pub bytes: usize,
}

impl MemoryPlan {
    pub fn get(&self, v: ValueId) -> Storage {
        self.storage[v.0]
    }

    /// The pool holding `dtype` values, if any value of that type lives in the arena.
    pub fn pool(&self, dtype: DType) -> Option<Pool> {
        self.pools.iter().copied().find(|p| p.dtype == dtype)
    }

    /// True when the node at `idx` is a Reshape whose output shares its input's storage.
    pub fn is_view(&self, g: &Graph, idx: usize) -> bool {
        matches!(g.nodes[idx].op, Op::Reshape(_)) && !self.copies.contains(&idx)
    }

    /// How the node at `idx` runs in place, if it does.
    pub fn in_place(&self, idx: usize) -> Option<InPlaceRun> {
        self.in_place.get(&idx).copied()
    }

    /// Byte offset in the arena of the scratch of the node at `idx`, if it has any.
    pub fn scratch(&self, idx: usize) -> Option<usize> {
        self.scratch.get(&idx).copied()
    }

    /// The largest number of arena bytes live at once (the liveness lower bound).
    pub fn live_peak(&self) -> usize {
        self.live_bytes.iter().copied().max().unwrap_or(0)
    }
}

/// Union-find over values, for reshape views and in-place nodes.
struct Classes(Vec<usize>);

impl Classes {
    fn find(&mut self, v: usize) -> usize {
        let mut r = v;
        while self.0[r] != r {
            r = self.0[r];
        }
        self.0[v] = r;
        r
    }
}

/// A block of arena bytes with an element type and a lifetime in node indices (inclusive).
struct Block {
    key: usize,
    dtype: DType,
    bytes: usize,
    first: usize,
    last: usize,
}

/// Liveness-based plan over the graph's node order:
/// 1. Reshape outputs share their input's storage (views) unless that would bind one
///    storage to two caller buffers (an input and an output, or two outputs) or to a constant;
/// 2. if the kernels run in place, a node that [`Op::in_place`] allows takes the storage of
///    that input for its output when the input (and every view of it) is last used by the
///    node and neither is a caller buffer;
///    every node's scratch ([`KernelNeeds::scratch_bytes`]) lives only while it runs;
/// 3. every class of values that is neither a caller buffer nor constant lives from its
///    first definition to its last use (node indices, inclusive);
/// 4. classes are grouped by element type into pools; within a pool they are placed largest
///    first at the lowest `align`-aligned offset that does not overlap any already placed
///    class whose lifetime intersects.
///
/// Guarantee: two values whose lifetimes intersect never share bytes, except a node's
/// in-place input and output (and views, which are the same data).
pub fn plan_memory(g: &Graph, align: usize, kernels: &dyn KernelNeeds) -> MemoryPlan {
    let align = align.max(1);
    let nv = g.values.len();
    let mut classes = Classes((0..nv).collect());
    // External binding of each class root.
    let mut bound: BTreeMap<usize, Storage> = BTreeMap::new();
    for (i, &v) in g.inputs.iter().enumerate() {
        bound.insert(v.0, Storage::Input(i));
    }
    for (i, &v) in g.outputs.iter().enumerate() {
        bound.entry(v.0).or_insert(Storage::Output(i));
    }
    for (i, v) in g.values.iter().enumerate() {
        if v.data.is_some() {
            bound.insert(i, Storage::Const);
        }
    }
    let mut copies = vec![];
    for (idx, n) in g.nodes.iter().enumerate() {
        if !matches!(n.op, Op::Reshape(_)) {
            continue;
        }
        let (a, b) = (classes.find(n.inputs[0].0), classes.find(n.outputs[0].0));
        let (ba, bb) = (bound.get(&a).copied(), bound.get(&b).copied());
        let ok = !matches!((ba, bb), (Some(Storage::Const), _) | (_, Some(Storage::Const)) | (Some(_), Some(_)));
        if ok {
            classes.0[b] = a;
            if let Some(s) = bb {
                bound.insert(a, s);
            }
        } else {
            copies.push(idx);
        }
    }

    // Lifetimes per class.
    let mut first: BTreeMap<usize, usize> = BTreeMap::new();
    let mut last: BTreeMap<usize, usize> = BTreeMap::new();
    let mut size: BTreeMap<usize, usize> = BTreeMap::new();
    for (idx, n) in g.nodes.iter().enumerate() {
        for &o in &n.outputs {
            let r = classes.find(o.0);
            first.entry(r).or_insert(idx);
            last.insert(r, idx);
            let s = size.entry(r).or_insert(0);
            *s = (*s).max(g.values[o.0].ty.bytes());
        }
        for &i in &n.inputs {
            let r = classes.find(i.0);
            last.insert(r, idx);
        }
    }

    // In-place nodes, in node order (a chain of them shares one class).
    let mut runs: BTreeMap<usize, InPlace> = BTreeMap::new();
    for (idx, n) in g.nodes.iter().enumerate().filter(|_| kernels.runs_in_place()) {
        let Some(ip) = n.op.in_place(g, n) else { continue };
        let (rx, ry) = (classes.find(n.inputs[ip.input].0), classes.find(n.outputs[0].0));
        let free = |r: usize| !bound.contains_key(&r);
        if rx == ry || !free(rx) || !free(ry) || last.get(&rx) != Some(&idx) || first.get(&ry) != Some(&idx) {
            continue;
        }
        classes.0[ry] = rx;
        let l = last[&ry];
        last.insert(rx, l);
        let s = size[&ry].max(size[&rx]);
        size.insert(rx, s);
        runs.insert(idx, ip);
    }

    let mut blocks: Vec<Block> = first
        .keys()
        .map(|&r| classes.find(r))
        .filter(|r| !bound.contains_key(r))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|r| Block { key: r, dtype: g.values[r].ty.dtype, bytes: size[&r], first: first[&r], last: last[&r] })
        .collect();
    let mut scratch_nodes = vec![];
    for (idx, n) in g.nodes.iter().enumerate() {
        let bytes = kernels.scratch_bytes(g, n, runs.get(&idx).copied());
        if bytes > 0 {
            let dtype = g.ty(n.outputs[0]).dtype;
            blocks.push(Block { key: nv + idx, dtype, bytes, first: idx, last: idx });
            scratch_nodes.push(idx);
        }
    }
    let live_bytes = (0..g.nodes.len())
        .map(|i| blocks.iter().filter(|b| b.first <= i && i <= b.last).map(|b| b.bytes).sum())
        .collect();

    // One pool per element type (so typed, `unsafe`-free code can index it), laid out
    // one after another in the arena, each aligned.
    let mut by_dtype: BTreeMap<DType, Vec<&Block>> = BTreeMap::new();
    for b in &blocks {
        by_dtype.entry(b.dtype).or_default().push(b);
    }
    let mut offsets: BTreeMap<usize, usize> = BTreeMap::new();
    let mut pools = vec![];
    let mut base = 0usize;
    for (dtype, mut order) in by_dtype {
        order.sort_by_key(|b| (std::cmp::Reverse(b.bytes), b.first, b.key));
        let mut placed: Vec<(usize, usize, usize, usize)> = vec![]; // (offset, bytes, first, last)
        let mut pool_end = 0usize;
        for b in order {
            let (bytes, f, l) = (b.bytes, b.first, b.last);
            let mut conflicts: Vec<(usize, usize)> =
                placed.iter().filter(|&&(_, _, pf, pl)| pf <= l && f <= pl).map(|&(o, b, _, _)| (o, o + b)).collect();
            conflicts.sort_unstable();
            let mut off = 0;
            for (start, end) in conflicts {
                if off + bytes <= start {
                    break;
                }
                off = off.max(end.div_ceil(align) * align);
            }
            placed.push((off, bytes, f, l));
            offsets.insert(b.key, base + off);
            pool_end = pool_end.max(off + bytes);
        }
        let bytes = pool_end.div_ceil(align) * align;
        pools.push(Pool { dtype, base, bytes });
        base += bytes;
    }
    let storage = (0..nv)
        .map(|v| {
            let r = classes.find(v);
            if let Some(&s) = bound.get(&r) {
                s
            } else if let Some(&offset) = offsets.get(&r) {
                Storage::Arena { offset }
            } else {
                Storage::Unused
            }
        })
        .collect();
    let in_place = runs.into_iter().map(|(idx, ip)| (idx, InPlaceRun { input: ip.input })).collect();
    let scratch = scratch_nodes.into_iter().map(|idx| (idx, offsets[&(nv + idx)])).collect();
    MemoryPlan {
        storage,
        arena_bytes: base,
        align,
        copies,
        pools,
        in_place,
        scratch,
        live_bytes,
        layouts: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::TensorType;
    use crate::ops::{Act, Concat, Op, Reshape};
    use proptest::prelude::*;

    /// Kernels that run in place (or not) with the scratch [`Op::in_place`] states.
    struct Needs(bool);
    impl KernelNeeds for Needs {
        fn runs_in_place(&self) -> bool {
            self.0
        }
        fn scratch_bytes(&self, g: &Graph, n: &Node, in_place: Option<InPlace>) -> usize {
            in_place.map_or(0, |ip| ip.scratch * g.ty(n.outputs[0]).dtype.size())
        }
    }

    /// A random DAG of 1-D f32 values: each step applies Relu, a Reshape (view) or a Concat
    /// of earlier values. Some values become graph outputs.
    fn random_graph(steps: &[(u8, usize, usize)], input_len: usize, extra_outputs: &[usize]) -> Graph {
        let mut g = Graph::default();
        let x = g.add_value("x", TensorType::f32(vec![input_len]));
        g.inputs.push(x);
        let mut avail = vec![x];
        for (i, &(kind, a, b)) in steps.iter().enumerate() {
            let va = avail[a % avail.len()];
            let vb = avail[b % avail.len()];
            let (op, inputs) = match kind % 3 {
                0 => (Op::Activation(Act::Relu), vec![va]),
                1 => (Op::Reshape(Reshape { shape: vec![g.ty(va).len()] }), vec![va]),
                _ => (Op::Concat(Concat { axis: 0 }), vec![va, vb]),
            };
            let tys: Vec<_> = inputs.iter().map(|&v| g.ty(v)).collect();
            let ty = op.infer(&tys).unwrap();
            let out = g.add_value(format!("v{i}"), ty);
            g.nodes.push(Node { name: format!("n{i}"), onnx_op: "T".into(), op, inputs, outputs: vec![out] });
            avail.push(out);
        }
        let last = *avail.last().unwrap();
        if last != x {
            g.outputs.push(last);
        }
        for &o in extra_outputs {
            let v = avail[o % avail.len()];
            if v != x && !g.outputs.contains(&v) {
                g.outputs.push(v);
            }
        }
        g
    }

    /// Root of a value through view (Reshape) and in-place nodes.
    fn root(g: &Graph, plan: &MemoryPlan, mut v: ValueId) -> ValueId {
        loop {
            let Some(p) = g.producer(v) else { return v };
            if plan.is_view(g, p) {
                v = g.nodes[p].inputs[0];
            } else if let Some(run) = plan.in_place(p) {
                v = g.nodes[p].inputs[run.input];
            } else {
                return v;
            }
        }
    }

    proptest! {
        #[test]
        fn live_values_never_overlap(
            steps in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..24),
            input_len in 1usize..40,
            extra in proptest::collection::vec(any::<usize>(), 0..3),
            align in prop_oneof![Just(4usize), Just(16), Just(64)],
            in_place in any::<bool>(),
        ) {
            let g = random_graph(&steps, input_len, &extra);
            prop_assume!(!g.outputs.is_empty());
            let plan = plan_memory(&g, align, &Needs(in_place));
            prop_assert!(in_place || plan.in_place.is_empty());
            // An in-place node's input, and every value sharing its storage before the node,
            // is never read after it.
            for (&idx, run) in &plan.in_place {
                let r = root(&g, &plan, g.nodes[idx].inputs[run.input]);
                for (j, n) in g.nodes.iter().enumerate().skip(idx + 1) {
                    for &v in &n.inputs {
                        let before = g.producer(v).is_none_or(|p| p < idx);
                        prop_assert!(!(before && root(&g, &plan, v) == r), "node {} reads %{} after in-place node {}", j, v.0, idx);
                    }
                }
            }
            // Class lifetimes: a view keeps its root alive.
            let mut life: BTreeMap<ValueId, (usize, usize)> = BTreeMap::new();
            for (i, n) in g.nodes.iter().enumerate() {
                for &v in n.inputs.iter().chain(&n.outputs) {
                    let r = root(&g, &plan, v);
                    let e = life.entry(r).or_insert((i, i));
                    e.0 = e.0.min(i);
                    e.1 = e.1.max(i);
                }
            }
            let arena: Vec<(ValueId, usize, usize)> = life.keys().filter_map(|&r| match plan.get(r) {
                Storage::Arena { offset } => Some((r, offset, g.ty(r).bytes())),
                _ => None,
            }).collect();
            for &(_, off, bytes) in &arena {
                prop_assert!(off % align == 0, "offset {} not aligned to {}", off, align);
                prop_assert!(off + bytes <= plan.arena_bytes);
            }
            for (i, &(a, oa, ba)) in arena.iter().enumerate() {
                for &(b, ob, bb) in &arena[i + 1..] {
                    let (la, lb) = (life[&a], life[&b]);
                    let live_together = la.0 <= lb.1 && lb.0 <= la.1;
                    let overlap = oa < ob + bb && ob < oa + ba;
                    prop_assert!(!(live_together && overlap), "%{} [{},{}) and %{} [{},{}) overlap while both live", a.0, oa, oa + ba, b.0, ob, ob + bb);
                }
            }
            // Every value a node touches has storage; outputs land in the caller's buffers.
            for n in &g.nodes {
                for &v in n.inputs.iter().chain(&n.outputs) {
                    prop_assert!(plan.get(v) != Storage::Unused);
                }
            }
            for (i, &o) in g.outputs.iter().enumerate() {
                prop_assert_eq!(plan.get(o), Storage::Output(i));
            }
            prop_assert!(plan.live_peak() <= plan.arena_bytes);
        }
    }

    /// A chain of activations runs in one buffer; without in-place it alternates two.
    #[test]
    fn activation_chain_runs_in_place() {
        let g = random_graph(&[(0, 0, 0), (0, 1, 0), (0, 2, 0), (0, 3, 0)], 16, &[]);
        let with = plan_memory(&g, 16, &Needs(true));
        let without = plan_memory(&g, 16, &Needs(false));
        assert_eq!(without.arena_bytes, 2 * 64);
        assert_eq!(with.arena_bytes, 64);
        assert_eq!(with.in_place.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    }
}
