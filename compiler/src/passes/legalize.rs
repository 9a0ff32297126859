use crate::ir::{Graph, Node, TensorData, TensorType};
use crate::ops::{Binary, BinaryKind, Op, Reshape};

/// Rewrites ops into the forms the backends emit:
/// - a BatchNorm that could not be folded becomes `Mul(x, k) + o` with per-channel
///   constants shaped `[C, 1, ...]`;
/// - a Transpose that only moves size-1 axes becomes a Reshape (a view);
/// - a Reshape of a Reshape reads the first one's input directly.
pub fn legalize(g: &mut Graph) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        match &n.op {
            Op::Transpose(t) if t.is_reshape(&g.ty(n.inputs[0]).shape) => {
                let shape = g.ty(n.outputs[0]).shape.clone();
                g.nodes[i].op = Op::Reshape(Reshape { shape });
                changed = true;
            }
            Op::Reshape(_) => {
                let x = n.inputs[0];
                if let Some(p) = g.producer(x)
                    && matches!(g.nodes[p].op, Op::Reshape(_))
                {
                    let src = g.nodes[p].inputs[0];
                    g.nodes[i].inputs[0] = src;
                    changed = true;
                }
            }
            Op::BatchNorm(bn) => {
                let ins = n.inputs.clone();
                let params: Option<Vec<Vec<f32>>> =
                    ins[1..].iter().map(|&v| g.data(v).map(TensorData::to_f32)).collect();
                if let Some(p) = params {
                    let (k, o) = bn.affine(&p[0], &p[1], &p[2], &p[3]);
                    let xs = g.ty(ins[0]).shape.clone();
                    let mut cshape = vec![xs[1]];
                    cshape.extend(std::iter::repeat_n(1, xs.len() - 2));
                    let name = n.name.clone();
                    let onnx = n.onnx_op.clone();
                    let out = n.outputs[0];
                    let kv = g.add_const(format!("{name}/scale"), TensorType::f32(cshape.clone()), TensorData::F32(k));
                    let ov = g.add_const(format!("{name}/shift"), TensorType::f32(cshape), TensorData::F32(o));
                    let mid = g.add_value(format!("{name}/scaled"), TensorType::f32(xs));
                    let mul = Node {
                        name: format!("{name}/mul"),
                        onnx_op: onnx.clone(),
                        op: Op::Binary(Binary { kind: BinaryKind::Mul, act: None }),
                        inputs: vec![ins[0], kv],
                        outputs: vec![mid],
                    };
                    let add = Node {
                        name,
                        onnx_op: onnx,
                        op: Op::Binary(Binary { kind: BinaryKind::Add, act: None }),
                        inputs: vec![mid, ov],
                        outputs: vec![out],
                    };
                    g.nodes.splice(i..=i, [mul, add]);
                    changed = true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    changed
}
