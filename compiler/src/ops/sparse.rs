//! Sparse forms of the weighted ops: a Conv / Gemm / MatMul / QConv / QMatMul whose constant
//! weight is stored compressed (only the non-zero weights, with baked index streams).
//!
//! Contract: a [`Sparse`] node computes exactly what its dense op computes with the weight
//! [`Csr::densify`] rebuilds, given the node's inputs with the weight (dense input 1)
//! removed: `x` first, then the dense op's remaining inputs (bias / C) in order.
//! - Float ops accumulate the non-zero products in the dense kernels' order (bias first, then
//!   input channel, kernel row, kernel column; or `k` ascending), so they equal the dense
//!   result except for the sign of zero and `0·∞` terms.
//! - Integer ops (QConv, QMatMul) sum `(x − x_zp)·(w − w_zp)` in int32, which is
//!   order-independent, so they are bit-exact with the dense definition. A weight counts as
//!   zero when it equals its row's zero point (`w == w_zp`; 0 for our symmetric PTQ weights).
//!
//! Shape inference reuses the dense op's: [`Sparse::infer`] puts the dense weight type back.

use super::Op;
use crate::ir::{DType, TensorData, TensorType};

/// How the non-zero weights reach the generated code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparseFormat {
    /// Compressed rows: values, column indices and row pointers as constant arrays, walked by
    /// a loop.
    Csr,
    /// Fully unrolled: one multiply-add (or one plane loop, for a convolution) per non-zero
    /// weight, the weights as literals in the instruction stream. For small layers.
    Unrolled,
}

impl SparseFormat {
    pub fn name(self) -> &'static str {
        match self {
            SparseFormat::Csr => "csr",
            SparseFormat::Unrolled => "unrolled",
        }
    }
}

/// A weight matrix in compressed sparse rows. A row is an output channel (Conv: `w[m, ..]`,
/// flattened over `[C/group, kH, kW]`) or an output column (Gemm/MatMul: column `j` of
/// `B'`, over `k`). Row `r`'s entries are `col[row_ptr[r]..row_ptr[r+1]]` (ascending) and the
/// matching `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub rows: usize,
    pub row_len: usize,
    pub row_ptr: Vec<u32>,
    pub col: Vec<u32>,
    /// The non-zero weights, in the weight's own element type (f32, int8 or uint8).
    pub values: TensorData,
    /// Element `k` of row `r` sits at dense index `k·rows + r` (a `[K, N]` matrix read by
    /// column) instead of `r·row_len + k`.
    pub transposed: bool,
    /// The value of an absent weight in each row (one entry: all rows): 0, or the weight zero
    /// point of an integer op.
    pub zero: Vec<i32>,
}

impl Csr {
    /// Compresses the dense weight `w` (`rows · row_len` elements); `zero[r]` (or `zero[0]`)
    /// is the value that counts as absent in row `r`. `None` for element types other than
    /// f32, int8 and uint8.
    pub fn compress(w: &TensorData, rows: usize, row_len: usize, transposed: bool, zero: &[i32]) -> Option<Csr> {
        if w.len() != rows * row_len || zero.is_empty() {
            return None;
        }
        let at = |r: usize, k: usize| if transposed { k * rows + r } else { r * row_len + k };
        let z = |r: usize| zero.get(r).copied().unwrap_or(zero[0]);
        let mut row_ptr = vec![0u32];
        let mut col = vec![];
        let mut src = vec![];
        for r in 0..rows {
            for k in 0..row_len {
                let i = at(r, k);
                let nonzero = match w {
                    TensorData::F32(v) => v[i] != 0.0,
                    TensorData::I8(v) => i32::from(v[i]) != z(r),
                    TensorData::U8(v) => i32::from(v[i]) != z(r),
                    _ => return None,
                };
                if nonzero {
                    col.push(k as u32);
                    src.push(i);
                }
            }
            row_ptr.push(col.len() as u32);
        }
        Some(Csr { rows, row_len, row_ptr, col, values: w.gather(&src), transposed, zero: zero.to_vec() })
    }

    pub fn nnz(&self) -> usize {
        self.col.len()
    }

    /// Fraction of weights kept.
    pub fn density(&self) -> f64 {
        self.nnz() as f64 / (self.rows * self.row_len).max(1) as f64
    }

    /// The entry range of row `r`.
    pub fn row(&self, r: usize) -> std::ops::Range<usize> {
        self.row_ptr[r] as usize..self.row_ptr[r + 1] as usize
    }

    /// The dense weight again (absent entries are the row's zero).
    pub fn densify(&self) -> TensorData {
        let z = |r: usize| self.zero.get(r).copied().unwrap_or(self.zero[0]);
        let at = |r: usize, k: usize| if self.transposed { k * self.rows + r } else { r * self.row_len + k };
        let n = self.rows * self.row_len;
        macro_rules! fill {
            ($v:expr, $zero:expr, $variant:ident) => {{
                let mut out = vec![$zero(0); n];
                for r in 0..self.rows {
                    for k in 0..self.row_len {
                        out[at(r, k)] = $zero(r);
                    }
                    for j in self.row(r) {
                        out[at(r, self.col[j] as usize)] = $v[j];
                    }
                }
                TensorData::$variant(out)
            }};
        }
        match &self.values {
            TensorData::F32(v) => fill!(v, |_| 0.0f32, F32),
            TensorData::I8(v) => fill!(v, |r| z(r) as i8, I8),
            TensorData::U8(v) => fill!(v, |r| z(r) as u8, U8),
            other => other.clone(),
        }
    }

    /// Bytes of one column index / one row pointer in the emitted streams (1, 2 or 4).
    pub fn col_bytes(&self) -> usize {
        index_bytes(self.row_len.saturating_sub(1))
    }

    pub fn ptr_bytes(&self) -> usize {
        index_bytes(self.nnz())
    }
}

/// The smallest unsigned integer width (bytes) holding `max`.
pub fn index_bytes(max: usize) -> usize {
    if max <= u8::MAX as usize {
        1
    } else if max <= u16::MAX as usize {
        2
    } else {
        4
    }
}

/// What the dense op contributes to a sparse kernel: activation / requantization and the
/// input zero point (both backends emit their epilogue from it).
pub struct Flavor<'a> {
    pub int: bool,
    pub act: Option<super::Act>,
    pub out: Option<&'a super::Requant>,
    pub x_zp: i32,
    /// Gemm `alpha`, `beta` (1, 1 otherwise).
    pub alpha: f32,
    pub beta: f32,
}

/// A weighted op with its weight compressed. See the module docs for the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Sparse {
    /// The dense op: Conv, Gemm (`transA = 0`), MatMul (2-D B), QConv or QMatMul (2-D B).
    pub dense: Box<Op>,
    /// Type of the dense weight the node no longer takes as input.
    pub weight: TensorType,
    /// Name of the dense weight (for listings and generated comments).
    pub weight_name: String,
    pub csr: Csr,
    pub format: SparseFormat,
}

impl Sparse {
    /// The dense op's epilogue and zero point.
    pub fn flavor(&self) -> Flavor<'_> {
        let mut f = Flavor { int: false, act: None, out: None, x_zp: 0, alpha: 1.0, beta: 1.0 };
        match self.dense.as_ref() {
            Op::Conv(c) => f.act = c.act,
            Op::Gemm(g) => (f.act, f.alpha, f.beta) = (g.act, g.alpha, g.beta),
            Op::MatMul(m) => f.act = m.act,
            Op::QConv(q) => (f.int, f.out, f.x_zp) = (true, q.out.as_ref(), q.x_zp),
            Op::QMatMul(q) => (f.int, f.out, f.x_zp) = (true, q.out.as_ref(), q.a_zp),
            _ => {}
        }
        f
    }

    /// The dense op's input types with the weight put back at position 1.
    pub fn dense_inputs<'a>(&'a self, inputs: &[&'a TensorType]) -> Vec<&'a TensorType> {
        let mut v = Vec::with_capacity(inputs.len() + 1);
        v.extend(inputs.first().copied());
        v.push(&self.weight);
        v.extend(inputs.iter().skip(1).copied());
        v
    }

    pub fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        if inputs.is_empty() {
            return Err("missing input".into());
        }
        if self.csr.rows * self.csr.row_len != self.weight.len()
            || self.csr.row_ptr.len() != self.csr.rows + 1
            || self.csr.values.len() != self.csr.nnz()
            || self.csr.values.dtype() != self.weight.dtype
        {
            return Err(format!("compressed weight does not match its dense type {:?}", self.weight.shape));
        }
        self.dense.infer(&self.dense_inputs(inputs))
    }

    /// Multiply-accumulates executed: each non-zero weight once per output position of its row.
    pub fn macs(&self, out: &TensorType) -> u64 {
        (self.csr.nnz() * (out.len() / self.csr.rows.max(1))) as u64
    }

    /// Weight bytes in flash: values, column indices and row pointers (CSR); for unrolled
    /// code, the literal values plus one 32-bit offset per multiply-add (the weight data the
    /// instruction stream carries, an estimate).
    pub fn flash_bytes(&self) -> usize {
        let vals = self.csr.nnz() * self.weight.dtype.size();
        match self.format {
            SparseFormat::Csr => {
                vals + self.csr.nnz() * self.csr.col_bytes() + (self.csr.rows + 1) * self.csr.ptr_bytes()
            }
            SparseFormat::Unrolled => vals + self.csr.nnz() * 4,
        }
    }

    /// Bytes the dense weight would take.
    pub fn dense_bytes(&self) -> usize {
        self.weight.bytes()
    }

    pub fn params(&self) -> String {
        format!(
            "{} {} density={:.3} nnz={}/{} {}",
            self.dense.name(),
            self.format.name(),
            self.csr.density(),
            self.csr.nnz(),
            self.weight.len(),
            self.dense.params()
        )
    }

    /// Whether the weight is integer (QConv / QMatMul).
    pub fn is_int(&self) -> bool {
        self.weight.dtype != DType::F32
    }
}

/// Loop geometry of a sparse convolution (row = output channel `oc`, entry = `(ic, kh, kw)`
/// flattened as `ic·kH·kW + kh·kW + kw`).
#[derive(Debug, Clone, Copy)]
pub struct ConvGeom {
    pub nb: usize,
    pub ci: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub oh: usize,
    pub ow: usize,
    pub cg: usize,
    pub mg: usize,
    pub group: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
}

impl ConvGeom {
    /// A 1×1, stride-1, unpadded convolution: output pixel `p` reads input pixel `p`.
    pub fn pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt == 0
            && self.pl == 0
            && self.oh == self.h
            && self.ow == self.w
    }

    /// Output rows `[lo, hi)` whose input row `oh·sh + kh·dh − pt` is inside the image.
    pub fn rows_for(&self, kh: usize) -> (usize, usize) {
        valid_range(self.oh, self.h, self.sh, kh * self.dh, self.pt)
    }

    /// Output columns `[lo, hi)` whose input column is inside the image.
    pub fn cols_for(&self, kw: usize) -> (usize, usize) {
        valid_range(self.ow, self.w, self.sw, kw * self.dw, self.pl)
    }

    /// `(ic, kh, kw)` of a row entry.
    pub fn split(&self, t: usize) -> (usize, usize, usize) {
        (t / (self.kh * self.kw), t / self.kw % self.kh, t % self.kw)
    }
}

/// `[lo, hi)` of the outputs `o < out` with `0 <= o·stride + off − pad < len`.
pub fn valid_range(out: usize, len: usize, stride: usize, off: usize, pad: usize) -> (usize, usize) {
    let s = stride.max(1);
    let lo = if pad <= off { 0 } else { (pad - off).div_ceil(s) };
    let hi = if len + pad <= off { 0 } else { (len + pad - off).div_ceil(s) };
    let (lo, hi) = (lo.min(out), hi.min(out));
    (lo, hi.max(lo))
}

/// Loop geometry of a sparse Gemm / MatMul: `rows` rows of `k` inputs, `n` outputs each.
#[derive(Debug, Clone, Copy)]
pub struct FcGeom {
    pub rows: usize,
    pub k: usize,
    pub n: usize,
}

/// The loop nest a sparse node needs.
pub enum Layout {
    Conv(ConvGeom),
    Fc(FcGeom),
}

impl Sparse {
    /// The geometry for input type `x` and output type `out` (`None` for a malformed node).
    pub fn layout(&self, x: &TensorType, out: &TensorType) -> Option<Layout> {
        let conv = match self.dense.as_ref() {
            Op::Conv(c) => Some(c),
            Op::QConv(q) => Some(&q.conv),
            _ => None,
        };
        if let Some(c) = conv {
            let (&[nb, ci, h, w], &[_, m, oh, ow], &[_, cg, kh, kw]) =
                (x.shape.as_slice(), out.shape.as_slice(), self.weight.shape.as_slice())
            else {
                return None;
            };
            let group = c.group.max(1);
            return Some(Layout::Conv(ConvGeom {
                nb,
                ci,
                h,
                w,
                m,
                oh,
                ow,
                cg,
                mg: m / group,
                group,
                kh,
                kw,
                sh: c.strides[0],
                sw: c.strides[1],
                dh: c.dilations[0],
                dw: c.dilations[1],
                pt: c.pads[0],
                pl: c.pads[1],
            }));
        }
        let (k, n) = (self.csr.row_len, self.csr.rows);
        if k == 0 || n == 0 {
            return None;
        }
        Some(Layout::Fc(FcGeom { rows: x.len() / k, k, n }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_round_trips() {
        let w = TensorData::F32(vec![0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0]);
        for transposed in [false, true] {
            let c = Csr::compress(&w, 2, 4, transposed, &[0]).unwrap();
            assert_eq!(c.nnz(), 3);
            assert_eq!(c.densify(), w);
        }
        assert_eq!(valid_range(8, 8, 1, 0, 1), (1, 8));
        assert_eq!(valid_range(8, 8, 1, 2, 1), (0, 7));
        assert_eq!(valid_range(4, 8, 2, 0, 0), (0, 4));
        let q = TensorData::I8(vec![5, 5, 1, 5, 0, 0, 0, 7]);
        let c = Csr::compress(&q, 2, 4, false, &[5, 0]).unwrap();
        assert_eq!(c.row_ptr, vec![0, 1, 2]);
        assert_eq!(c.densify(), q);
    }
}
