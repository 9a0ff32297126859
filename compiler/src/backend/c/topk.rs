//! C kernel of TopK (`ops::TopK`): per `(outer, inner)` slice along the axis, an insertion
//! selection of the best `k` positions into a stack array (best first; a later element
//! displaces an earlier one only when strictly better, so ties keep the lower index), then
//! the values or the int64 positions written in order.

use super::writer::Writer;
use crate::backend::Program;
use crate::backend::lin::c_lin;
use crate::ir::Node;
use crate::ops::TopK;
use crate::toolchain::c_type;

pub(super) fn emit(w: &mut Writer, p: &Program, n: &Node, t: &TopK) {
    let xt = p.graph.ty(n.inputs[0]);
    let (outer, len, inner) = t.split(&xt.shape);
    let k = t.k;
    if k == 0 || outer == 0 || inner == 0 {
        return;
    }
    let ty = c_type(xt.dtype);
    let op = if t.largest { ">" } else { "<" };
    let at = |r: &str| format!("xr[{}]", c_lin(&[(r, inner)], 0));
    w.open(&format!("for (int o = 0; o < {outer}; ++o)"));
    w.open(&format!("for (int i = 0; i < {inner}; ++i)"));
    w.line(&format!("const {ty} *xr = x0 + {};", c_lin(&[("o", len * inner), ("i", 1)], 0)));
    w.line(&format!("int idx[{k}];"));
    w.line("int cnt = 0;");
    w.open(&format!("for (int r = 0; r < {len}; ++r)"));
    w.line(&format!("const {ty} v = {};", at("r")));
    w.line("int j;");
    w.line(&format!("if (cnt < {k}) j = cnt++;"));
    w.line(&format!("else if (v {op} {}) j = {};", at(&format!("idx[{}]", k - 1)), k - 1));
    w.line("else continue;");
    w.line(&format!("while (j > 0 && v {op} {}) {{ idx[j] = idx[j - 1]; --j; }}", at("idx[j - 1]")));
    w.line("idx[j] = r;");
    w.close();
    let val = if t.indices { "(int64_t)idx[j]".to_string() } else { at("idx[j]") };
    w.line(&format!(
        "for (int j = 0; j < {k}; ++j) y[{}] = {val};",
        c_lin(&[("o", k * inner), ("j", inner), ("i", 1)], 0)
    ));
    w.close();
    w.close();
}
