//! Fast kernels over weights packed at compile time (issue 6), the Rust twin of the C
//! backend's lane kernels: Conv, depthwise Conv, Gemm and MatMul, float and int8.
//!
//! The right-hand operand of a dense Conv, Gemm or MatMul with constant weights is
//! re-laid out into panels of [`LANES`] output channels (`[oc / LANES][kh][kw][ic][LANES]`
//! for Conv, `[n / LANES][k][LANES]` for Gemm/MatMul; missing channels zero); the module
//! emits that array in place of the original constant ([`pack`]). Dense Conv runs in
//! register tiles of output pixels × `LANES` channels, depthwise Conv a row of output pixels
//! per channel, Gemm four accumulators over `k`. Bias, activation and int8 requantization
//! are applied in the epilogue.
//!
//! The vector work goes through `modelless_rt::simd` (`core::arch` on AVX2 and NEON,
//! portable Rust elsewhere), spliced into the module like the math helpers:
//! - float accumulators are `rt::F32x8` updated by `rt::fma8` (Rust never fuses
//!   `a + x * w` by itself);
//! - int8 dense Conv with weights that fit int8 runs on int16 pairs of input channels
//!   (`rt::mac_pairs4`, weights packed `[oc / L][kh][kw][ic / 2][L][2]`);
//! - int8 outputs are requantized 8 at a time (`rt::requant8*`);
//! - small padded inputs are copied into a zero-point-padded stack buffer first
//!   ([`padded_input`]), and short-row depthwise int8 runs over a padded stack plane
//!   ([`depthwise_plane`]).
//!
//! int32 sums are reordered but wrapping addition is associative, so int8 results stay
//! bit-exact; float sums are reordered.

use super::kernels::act_expr;
use super::lit;
use crate::backend::Program;
use crate::backend::lin::rs_lin;
use crate::ir::{DType, Node, TensorData, ValueId};
use crate::ops::broadcast::broadcast_strides;
use crate::ops::{Conv, Op};
use crate::passes::Storage;
use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

/// Output channels per Gemm / MatMul panel (one 256-bit vector of f32 / i32).
const LANES: usize = 8;
/// Output pixels per register tile of the dense convolution: 4 (the pixels of
/// `rt::mac_pairs4`); [`LONG_ROW_TILE`] for float 1×1 convolutions over one long row; the
/// whole row when it is at most [`LONG_ROW_TILE`] pixels (one border tile per row instead
/// of two: KWS float 0.101 → 0.086 ms, its 5-pixel first layer).
const TILE: usize = 4;
/// 12 `rt::F32x8` accumulators of 16 channels, with the weights and a broadcast, fill
/// AVX2's 16 vector registers; with 3×3 taps the deeper tile measured slower (ResNet-8
/// float: 0.41 → 0.53 ms).
const LONG_ROW_TILE: usize = 6;

fn ilit(n: usize) -> Literal {
    Literal::isize_unsuffixed(n as isize)
}

/// True when the tokens `ts` mention the identifier `name`.
fn uses(ts: &TokenStream, name: &str) -> bool {
    ts.to_string().split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == name)
}

/// The constant data behind `v`, if it is baked into the generated code.
fn const_data<'g>(p: &Program<'g>, v: ValueId) -> Option<&'g TensorData> {
    if !matches!(p.storage(v), Storage::Const) {
        return None;
    }
    p.graph.data(v)
}

/// Element `i` of an integer constant, widened.
fn int_at(d: &TensorData, i: usize) -> i64 {
    match d {
        TensorData::I8(v) => v[i] as i64,
        TensorData::U8(v) => v[i] as i64,
        TensorData::I32(v) => v[i] as i64,
        TensorData::I64(v) => v[i],
        TensorData::I16(v) => v[i] as i64,
        TensorData::U16(v) => v[i] as i64,
        TensorData::U32(v) => v[i] as i64,
        _ => 0,
    }
}

/// Integer panels in the narrowest type holding every value: `i8` (the usual case,
/// symmetric int8 weights) or `i32`.
fn int_panels(v: Vec<i64>) -> TensorData {
    if v.iter().all(|&x| i8::try_from(x).is_ok()) {
        TensorData::I8(v.into_iter().map(|x| x as i8).collect())
    } else {
        TensorData::I32(v.into_iter().map(|x| x as i32).collect())
    }
}

/// The shared convolution geometry (`in_place` is always false: the Rust kernels do not run
/// in place).
type Geo = crate::backend::conv_geo::ConvGeo;

impl Geo {
    /// Output channels per panel of the dense convolution: two vectors when there are
    /// enough channels (eight independent accumulators hide the add latency).
    fn lanes(&self) -> usize {
        if self.m.is_multiple_of(2 * LANES) { 2 * LANES } else { LANES }
    }

    fn depthwise(&self, c: &Conv, wsh: &[usize]) -> bool {
        c.group == self.ci && c.group == self.m && wsh.get(1) == Some(&1)
    }
}

/// True when padding `n` channels to whole panels of `lanes` costs at most a quarter more
/// flash (else the plain loops are emitted, on the unpacked weights).
fn pads_little(n: usize, lanes: usize) -> bool {
    n.div_ceil(lanes) * lanes * 4 <= n * 5
}

/// Packs `wv(oc, ic, ky, kx)` as `[oc / lanes][ky][kx][ic][lanes]` (missing channels zero).
fn pack_conv<T: Copy>(g: &Geo, zero: T, wv: &dyn Fn(usize, usize, usize, usize) -> T) -> Vec<T> {
    let lanes = g.lanes();
    let ob = g.m.div_ceil(lanes);
    let mut out = Vec::with_capacity(ob * g.k[0] * g.k[1] * g.ci * lanes);
    for b in 0..ob {
        for ky in 0..g.k[0] {
            for kx in 0..g.k[1] {
                for ic in 0..g.ci {
                    for j in 0..lanes {
                        let oc = b * lanes + j;
                        out.push(if oc < g.m { wv(oc, ic, ky, kx) } else { zero });
                    }
                }
            }
        }
    }
    out
}

/// Packs `wv(oc, ic, ky, kx)` for [`rt::mac_pairs4`](modelless_rt::mac_pairs4) as
/// `[oc / lanes][ky][kx][ic / 2][lanes][2]`: each output channel's weights of two
/// consecutive input channels side by side (missing channels zero).
fn pack_conv_pairs(g: &Geo, wv: &dyn Fn(usize, usize, usize, usize) -> i64) -> Vec<i64> {
    let lanes = g.lanes();
    let mut out = Vec::with_capacity(g.m.div_ceil(lanes) * g.k[0] * g.k[1] * g.ci.div_ceil(2) * lanes * 2);
    for b in 0..g.m.div_ceil(lanes) {
        for ky in 0..g.k[0] {
            for kx in 0..g.k[1] {
                for pair in 0..g.ci.div_ceil(2) {
                    for j in 0..lanes {
                        for ic in [2 * pair, 2 * pair + 1] {
                            let oc = b * lanes + j;
                            out.push(if oc < g.m && ic < g.ci { wv(oc, ic, ky, kx) } else { 0 });
                        }
                    }
                }
            }
        }
    }
    out
}

/// True when the dense QConv `n` runs on int16 channel pairs ([`rt::mac_pairs4`]
/// (modelless_rt::mac_pairs4)): int8 / uint8 activations, and weights minus their zero
/// point that fit int8 (the usual symmetric weights).
fn pairs_apply(p: &Program, n: &Node, qc: &crate::ops::QConv) -> bool {
    let Some((g, d)) = dense_conv_weights(p, n, &qc.conv) else { return false };
    let wzp = |oc: usize| qc.w_zp.get(oc).or(qc.w_zp.first()).copied().unwrap_or(0) as i64;
    let per_oc = g.ci * g.k[0] * g.k[1];
    g.ci >= 2
        && matches!(p.graph.ty(n.inputs[0]).dtype, DType::I8 | DType::U8)
        && (0..d.len()).all(|i| i8::try_from(int_at(d, i) as i32 as i64 - wzp(i / per_oc)).is_ok())
}

/// Packs `b(kk, j)` of a `k × n` matrix as `[n / LANES][k][LANES]` (missing columns zero).
fn pack_gemm<T: Copy>(k: usize, n: usize, zero: T, b: &dyn Fn(usize, usize) -> T) -> Vec<T> {
    let nb = n.div_ceil(LANES);
    let mut out = Vec::with_capacity(nb * k * LANES);
    for jb in 0..nb {
        for kk in 0..k {
            for l in 0..LANES {
                let j = jb * LANES + l;
                out.push(if j < n { b(kk, j) } else { zero });
            }
        }
    }
    out
}

/// The dense-conv weights of `n` (constant, group 1, all finite for float), if any.
fn dense_conv_weights<'g>(p: &Program<'g>, n: &Node, c: &Conv) -> Option<(Geo, &'g TensorData)> {
    let g = Geo::of(p, n, c)?;
    let wsh = &p.graph.ty(n.inputs[1]).shape;
    if c.group != 1 || g.depthwise(c, wsh) || !pads_little(g.m, g.lanes()) {
        return None;
    }
    let d = const_data(p, n.inputs[1]).filter(|d| d.len() == g.m * g.ci * g.k[0] * g.k[1])?;
    // Padding taps of border tiles multiply zero by a weight: exact only for finite weights.
    if let TensorData::F32(v) = d
        && !v.iter().all(|x| x.is_finite())
    {
        return None;
    }
    Some((g, d))
}

/// Shapes of a MatMul whose right operand is one constant matrix.
struct Mm {
    /// Offset of each batch's left matrix.
    a_off: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
}

fn matmul_dims(p: &Program, n: &Node) -> Option<Mm> {
    let d = crate::ops::MatMul::dims(p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1])).ok()?;
    let b_off = crate::backend::c::batch_offsets(&d.b_batch, &d.batch, d.k * d.n);
    let ok = !p.graph.ty(n.outputs[0]).is_empty()
        && b_off.iter().all(|&o| o == 0)
        && const_data(p, n.inputs[1]).is_some_and(|b| b.len() == d.k * d.n);
    let a_off = crate::backend::c::batch_offsets(&d.a_batch, &d.batch, d.m * d.k);
    ok.then_some(Mm { a_off, m: d.m, k: d.k, n: d.n })
}

/// Which input of `n` the kernel reads packed, and the packed array that replaces it.
pub(super) fn pack(p: &Program, n: &Node) -> Option<(usize, TensorData)> {
    match &n.op {
        Op::Conv(c) => {
            let (g, d) = dense_conv_weights(p, n, c)?;
            let TensorData::F32(w) = d else { return None };
            let [kh, kw] = g.k;
            let ci = g.ci;
            let packed = pack_conv(&g, 0.0f32, &|oc, ic, ky, kx| w[((oc * ci + ic) * kh + ky) * kw + kx]);
            Some((1, TensorData::F32(packed)))
        }
        Op::QConv(qc) => {
            let (g, d) = dense_conv_weights(p, n, &qc.conv)?;
            let [kh, kw] = g.k;
            let ci = g.ci;
            let wzp = |oc: usize| qc.w_zp.get(oc).or(qc.w_zp.first()).copied().unwrap_or(0) as i64;
            let wv = |oc: usize, ic: usize, ky: usize, kx: usize| {
                int_at(d, ((oc * ci + ic) * kh + ky) * kw + kx) as i32 as i64 - wzp(oc)
            };
            if pairs_apply(p, n, qc) {
                let pairs = pack_conv_pairs(&g, &wv);
                return Some((1, TensorData::I8(pairs.into_iter().map(|v| v as i8).collect())));
            }
            let packed = pack_conv(&g, 0i64, &wv);
            Some((1, int_panels(packed.into_iter().map(|v| v as i32 as i64).collect())))
        }
        Op::Gemm(gm) => {
            let (mm, k, nn) = gm.dims(p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1]));
            if gm.trans_a || mm * nn == 0 || !pads_little(nn, LANES) {
                return None;
            }
            let TensorData::F32(b) = const_data(p, n.inputs[1]).filter(|d| d.len() == k * nn)? else {
                return None;
            };
            let packed = pack_gemm(k, nn, 0.0f32, &|kk, j| if gm.trans_b { b[j * k + kk] } else { b[kk * nn + j] });
            Some((1, TensorData::F32(packed)))
        }
        Op::MatMul(_) => {
            let d = matmul_dims(p, n).filter(|d| pads_little(d.n, LANES))?;
            let TensorData::F32(b) = const_data(p, n.inputs[1])? else { return None };
            Some((1, TensorData::F32(pack_gemm(d.k, d.n, 0.0f32, &|kk, j| b[kk * d.n + j]))))
        }
        Op::QMatMul(qm) => {
            // Rows of `b − b_zp` per output column (`[n][k]`): integer dot products, which
            // LLVM vectorizes over `k` (as `pmaddwd` on x86).
            let d = matmul_dims(p, n)?;
            let b = const_data(p, n.inputs[1])?;
            let bzp = |j: usize| qm.b_zp.get(j).or(qm.b_zp.first()).copied().unwrap_or(0);
            if qmatmul_pairs(p, n, qm).is_some() {
                // `[n / 8][k / 2][8][2]` for `rt::mac_pair1` (missing columns and rows zero).
                let mut v = Vec::with_capacity(d.n.div_ceil(8) * d.k.div_ceil(2) * 16);
                for jb in 0..d.n.div_ceil(8) {
                    for kp in 0..d.k.div_ceil(2) {
                        for l in 0..8 {
                            for kk in [2 * kp, 2 * kp + 1] {
                                let j = jb * 8 + l;
                                let ok = j < d.n && kk < d.k;
                                v.push(if ok {
                                    (int_at(b, kk * d.n + j) as i32).wrapping_sub(bzp(j)) as i8
                                } else {
                                    0
                                });
                            }
                        }
                    }
                }
                return Some((1, TensorData::I8(v)));
            }
            let rows = (0..d.n)
                .flat_map(|j| (0..d.k).map(move |kk| (int_at(b, kk * d.n + j) as i32).wrapping_sub(bzp(j)) as i64))
                .collect();
            Some((1, int_panels(rows)))
        }
        _ => None,
    }
}

/// The fast kernel of `n`, if one applies (else the plain loop nests are emitted).
pub(super) fn emit(p: &Program, n: &Node) -> Option<TokenStream> {
    match &n.op {
        Op::Conv(c) => conv(p, n, c),
        Op::QConv(qc) => qconv(p, n, qc),
        Op::Gemm(gm) => gemm(p, n, gm),
        Op::MatMul(mm) => matmul(p, n, mm),
        Op::QMatMul(qm) => qmatmul(p, n, qm),
        _ => None,
    }
}

/// How a kernel accumulates: float, or int32 with wrapping arithmetic.
#[derive(Clone, Copy)]
struct Lane {
    int: bool,
}

impl Lane {
    fn ty(self) -> TokenStream {
        if self.int { quote!(i32) } else { quote!(f32) }
    }
    fn zero(self) -> TokenStream {
        if self.int { quote!(0i32) } else { quote!(0.0f32) }
    }
    /// `*a += x · w` (`a` a `&mut` accumulator, `x` a value, `w` a value).
    fn mac(self, a: TokenStream, x: TokenStream, w: TokenStream) -> TokenStream {
        if self.int { quote!(*#a = #a.wrapping_add(#x.wrapping_mul(#w));) } else { quote!(*#a += #x * #w;) }
    }
    /// `a + b` of two accumulator values.
    fn add(self, a: TokenStream, b: TokenStream) -> TokenStream {
        if self.int { quote!(#a.wrapping_add(#b)) } else { quote!(#a + #b) }
    }
}

/// `i32::from(e) - zp` (`e` widened; zero point folded), or `e` for float.
fn widen_sub(lane: Lane, elem: DType, e: TokenStream, zp: i32) -> TokenStream {
    if !lane.int {
        return e;
    }
    let v = if elem == DType::I32 { e } else { quote!(i32::from(#e)) };
    let l = Literal::i64_unsuffixed((zp as i64).abs());
    match zp {
        0 => v,
        z if z > 0 => quote!(#v.wrapping_sub(#l)),
        _ => quote!(#v.wrapping_add(#l)),
    }
}

/// What a conv kernel needs beyond the geometry.
struct ConvSpec {
    lane: Lane,
    /// Element type of the input activations.
    x_elem: DType,
    /// Input zero point (int only).
    x_zp: i32,
    /// Element type of the packed / depthwise weights.
    w_elem: DType,
    /// Tables emitted before the loops (scalar requantization).
    tables: TokenStream,
    /// Depthwise: the per-channel weight zero points (`W_ZP`), if any.
    zp_table: TokenStream,
    /// The stored value from the accumulator `v` of channel `oc`.
    store: TokenStream,
    /// Dense int8 kernels: the weights are packed by channel pairs ([`pack_conv_pairs`]).
    pairs: bool,
    /// Dense and short-row depthwise int8 kernels: the vector requantization, where it
    /// applies.
    rq8: Option<Rq8Spec>,
}

/// Float Conv through the fast kernels, if they apply.
fn conv(p: &Program, n: &Node, c: &Conv) -> Option<TokenStream> {
    let g = Geo::of(p, n, c)?;
    let mut v = quote!(v);
    if n.inputs.len() > 2 {
        v = quote!(v + x2[oc]);
    }
    let spec = ConvSpec {
        lane: Lane { int: false },
        x_elem: DType::F32,
        x_zp: 0,
        w_elem: DType::F32,
        tables: quote!(),
        zp_table: quote!(),
        store: act_expr(&c.act, v),
        pairs: false,
        rq8: None,
    };
    if g.depthwise(c, &p.graph.ty(n.inputs[1]).shape) {
        return Some(depthwise(&g, &spec, Err(0)));
    }
    let (packed_dt, g) = pack(p, n).map(|(_, d)| d.dtype()).zip(Some(g))?;
    Some(dense_conv(g, &ConvSpec { w_elem: packed_dt, ..spec }))
}

/// QConv through the fast kernels, if they apply.
fn qconv(p: &Program, n: &Node, qc: &crate::ops::QConv) -> Option<TokenStream> {
    let c = &qc.conv;
    let g = Geo::of(p, n, c)?;
    let acc = if n.inputs.len() > 2 { quote!(v.wrapping_add(x2[oc])) } else { quote!(v) };
    let (tables, store) = match &qc.out {
        Some(r) => super::qkernels::requant(r, acc, quote!(oc)),
        None => (quote!(), acc),
    };
    let wsh = &p.graph.ty(n.inputs[1]).shape;
    let lane = Lane { int: true };
    let x_elem = p.graph.ty(n.inputs[0]).dtype;
    if g.depthwise(c, wsh) {
        let per_channel = qc.w_zp.len() > 1 && !qc.w_zp.windows(2).all(|w| w[0] == w[1]);
        let w_elem = p.graph.ty(n.inputs[1]).dtype;
        let (zp_table, wzp) = if per_channel {
            (super::qkernels::i32_array("W_ZP", &qc.w_zp), Some(quote!(W_ZP[oc])))
        } else {
            (quote!(), None)
        };
        let spec = ConvSpec {
            lane,
            x_elem,
            x_zp: qc.x_zp,
            w_elem,
            tables,
            zp_table,
            store,
            pairs: false,
            rq8: qc.out.as_ref().and_then(|r| Rq8Spec::of(r, g.m, n.inputs.len() > 2)),
        };
        let w0 = qc.w_zp.first().copied().unwrap_or(0);
        return Some(depthwise(&g, &spec, wzp.ok_or(w0)));
    }
    let (_, packed) = pack(p, n)?;
    let pairs = pairs_apply(p, n, qc);
    let rq8 = qc.out.as_ref().and_then(|r| Rq8Spec::of(r, g.m, n.inputs.len() > 2));
    let spec =
        ConvSpec { lane, x_elem, x_zp: qc.x_zp, w_elem: packed.dtype(), tables, zp_table: quote!(), store, pairs, rq8 };
    Some(dense_conv(g, &spec))
}

/// A weight element `w` (a value of the packed / weight type) as an accumulator operand.
fn weight_val(lane: Lane, w_elem: DType, w: TokenStream) -> TokenStream {
    if lane.int && w_elem != DType::I32 { quote!(i32::from(#w)) } else { w }
}

/// The input zero point as an 8-bit input element (the value padding holds).
fn zp_elem(s: &ConvSpec) -> TokenStream {
    let z = if s.x_elem == DType::U8 { Literal::u8_suffixed(s.x_zp as u8) } else { Literal::i8_suffixed(s.x_zp as i8) };
    quote!(#z)
}

/// The channel loop of the dense int8 kernel over channel pairs ([`pack_conv_pairs`]).
struct PairMode {
    /// `pairs4_s8` or `pairs4_u8`.
    pairs4: Ident,
    /// The input zero point as an input element (what padding reads).
    zp_elem: TokenStream,
    /// Input channels, and elements per input channel plane.
    ci: usize,
    hw: usize,
    lanes: usize,
}

impl PairMode {
    fn new(s: &ConvSpec, ci: usize, hw: usize, lanes: usize) -> PairMode {
        let name = if s.x_elem == DType::U8 { "pairs4_u8" } else { "pairs4_s8" };
        PairMode { pairs4: super::ident(name), zp_elem: zp_elem(s), ci, hw, lanes }
    }

    /// Over the pairs of input planes `xc` (`2 · hw` elements from the pair's first channel)
    /// and their weights `wv` (from `wk`, one tap's weights): `xpair(b)` is the pairs of the
    /// tile, `b` the offset of the second plane in `xc`. An odd last channel pairs with
    /// itself (its second weights are zero).
    fn channel_loop(&self, xpair: &dyn Fn(usize) -> TokenStream) -> TokenStream {
        let (x2, w2) = (lit(2 * self.hw), lit(2 * self.lanes));
        let both = xpair(self.hw);
        let mac = quote! {
            for (av, wl) in acc.iter_mut().zip(wv.chunks_exact(16)) {
                rt::mac_pairs4(av, xp, wl);
            }
        };
        let tail = (self.ci % 2 == 1).then(|| {
            let (last, wl) = (lit((self.ci - 1) * self.hw), lit((self.ci - 1) * self.lanes));
            let alone = xpair(0);
            quote! {
                let (xc, wv) = (&xn[#last..], &wk[#wl..]);
                let xp = #alone;
                #mac
            }
        });
        quote! {
            for (xc, wv) in xn.chunks_exact(#x2).zip(wk.chunks_exact(#w2)) {
                let xp = #both;
                #mac
            }
            #tail
        }
    }
}

/// Dense convolution over packed weights `x1` (see [`pack_conv`]): tiles of [`TILE`]
/// output pixels × `lanes` output channels in registers. Tiles whose taps are all inside
/// the image read a window of each input row without further checks; border and partial
/// tiles read padding (and pixels past the row end) as zero through `get`.
fn dense_conv(g: Geo, s: &ConvSpec) -> TokenStream {
    let g0 = g.flattened();
    let in_hw = g0.ci * g0.h * g0.wd;
    let (g, pad_copy) = match padded_input(&g0, s) {
        Some((g, copy)) => (g, copy),
        None => (g0, quote!()),
    };
    let lane = s.lane;
    let lanes = g.lanes();
    let ob = g.m.div_ceil(lanes);
    let [kh, kw] = g.k;
    let [sh, sw] = g.s;
    let [dh, dw] = g.d;
    let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
    // Weights per tap: one value per (input channel, lane), input channels rounded up to
    // whole pairs in pair mode.
    let tap_w = if s.pairs { g.ci.div_ceil(2) * 2 * lanes } else { g.ci * lanes };
    let panel = kh * kw * tap_w;
    // Output columns whose taps are all inside the image: [owa, owb).
    let owa = g.pl.div_ceil(sw).min(g.ow);
    let last = (g.wd + g.pl) as isize - 1 - ((kw - 1) * dw) as isize;
    let owb = if last < 0 { owa } else { ((last as usize) / sw + 1).clamp(owa, g.ow) };
    let (t, zero) = (lane.ty(), lane.zero());
    let tile = if s.pairs {
        TILE
    } else if !lane.int && g.k == [1, 1] && g.h == 1 {
        LONG_ROW_TILE
    } else if g.ow <= LONG_ROW_TILE {
        g.ow.max(1)
    } else {
        TILE
    };
    let (lanes_l, tile_l, panel_l, hw_l, ci_lanes) = (lit(lanes), lit(tile), lit(panel), lit(hw), lit(tap_w));
    let (ohl, owl, khl, kwl, hl, wl, wil) = (lit(g.oh), lit(g.ow), lit(kh), lit(kw), ilit(g.h), lit(g.wd), ilit(g.wd));
    let (xs, xe) = (rs_lin(&[(quote!(n), in_hw)], 0), rs_lin(&[(quote!(n), in_hw)], in_hw as isize));
    let (ys, ye) = (rs_lin(&[(quote!(n), g.m * ohw)], 0), rs_lin(&[(quote!(n), g.m * ohw)], (g.m * ohw) as isize));
    let ih = rs_lin(&[(quote!(oh as isize), sh), (quote!(kh as isize), dh)], -(g.pt as isize));
    let row = rs_lin(&[(quote!(ih as usize), g.wd)], 0);
    let wk_s = rs_lin(&[(quote!(kh), kw * tap_w), (quote!(kw), tap_w)], 0);
    let wv = weight_val(lane, s.w_elem, quote!(w));
    let mac = lane.mac(quote!(a), quote!(xv), wv);
    // Float accumulates in `rt::F32x8` vectors through `rt::fma8` (Rust never fuses
    // `a + x * w`); int32 in arrays LLVM vectorizes.
    let accumulate = if lane.int {
        quote! { for (a, &w) in at.iter_mut().zip(wv) { #mac } }
    } else {
        quote! { for (a, w) in at.iter_mut().zip(wv.chunks_exact(8)) { *a = rt::fma8(*a, xv, w); } }
    };
    let pairs = s.pairs.then(|| PairMode::new(s, g.ci, hw, lanes));
    let zp16 = Literal::i16_unsuffixed(s.x_zp as i16);
    let (acc_init, acc_lanes) = match &pairs {
        Some(_) => {
            let vl = lit(lanes / 8);
            (
                quote!(let mut acc = [[rt::i32x8_zero(); #tile_l]; #vl];),
                quote! {
                    let acc: [[i32; #lanes_l]; #tile_l] = core::array::from_fn(|t| {
                        let mut r = [0i32; #lanes_l];
                        for (rv, av) in r.chunks_exact_mut(8).zip(&acc) {
                            rv.copy_from_slice(&rt::i32x8_lanes(av[t]));
                        }
                        r
                    });
                },
            )
        }
        None if !lane.int => {
            let vl = lit(lanes / 8);
            (
                quote!(let mut acc = [[rt::f32x8_zero(); #vl]; #tile_l];),
                quote! {
                    let acc: [[f32; #lanes_l]; #tile_l] = core::array::from_fn(|t| {
                        let mut r = [0.0f32; #lanes_l];
                        for (rv, &av) in r.chunks_exact_mut(8).zip(&acc[t]) {
                            rv.copy_from_slice(&rt::f32x8_lanes(av));
                        }
                        r
                    });
                },
            )
        }
        None => (quote!(let mut acc = [[#zero; #lanes_l]; #tile_l];), quote!()),
    };
    let tap_rows = |body: TokenStream| {
        quote! {
            for kh in 0..#khl {
                let ih = #ih;
                if !(0..#hl).contains(&ih) { continue; }
                #body
            }
        }
    };
    // Interior tiles: one window of the input row per channel, unchecked taps.
    let interior = (owa + tile <= owb).then(|| {
        let spanl = lit((tile - 1) * sw + 1);
        let start = rs_lin(&[(quote!(ih as usize), g.wd), (quote!(ow), sw), (quote!(kw), dw)], -(g.pl as isize));
        let xt = if sw == 1 { quote!(xt[t]) } else { rs_lin(&[(quote!(t), sw)], 0) };
        let xt = if sw == 1 { xt } else { quote!(xt[#xt]) };
        let xv = widen_sub(lane, s.x_elem, xt, s.x_zp);
        let channels = match &pairs {
            Some(pm) => pm.channel_loop(&|b| {
                let pairs4 = &pm.pairs4;
                if sw == 1 {
                    let b = rs_lin(&[(quote!(start), 1)], b as isize);
                    quote!(rt::#pairs4(&xc[start..], &xc[#b..], #zp16))
                } else {
                    let swl = lit(sw);
                    let b = rs_lin(&[(quote!(start), 1), (quote!(t), sw)], b as isize);
                    quote!(rt::#pairs4(
                        &core::array::from_fn::<_, 4, _>(|t| xc[start + t * #swl]),
                        &core::array::from_fn::<_, 4, _>(|t| xc[#b]),
                        #zp16,
                    ))
                }
            }),
            None => quote! {
                for (xc, wv) in xn.chunks_exact(#hw_l).zip(wk.chunks_exact(#lanes_l)) {
                    let xt = &xc[start..][..#spanl];
                    for (t, at) in acc.iter_mut().enumerate() {
                        let xv: #t = #xv;
                        #accumulate
                    }
                }
            },
        };
        let body = tap_rows(quote! {
            for kw in 0..#kwl {
                let start = #start;
                let wk = &wb[#wk_s..][..#ci_lanes];
                #channels
            }
        });
        let hi = lit(owb - tile);
        let cond = if owa == owb - tile {
            let lo = lit(owa);
            quote!(ow == #lo)
        } else if owa > 0 {
            let lo = lit(owa);
            quote!((#lo..=#hi).contains(&ow))
        } else {
            quote!(ow <= #hi)
        };
        (cond, body)
    });
    // Border / partial tiles: the column of each pixel, or `usize::MAX` (reads zero).
    let masked = {
        let iw = rs_lin(&[(quote!((ow + t) as isize), sw), (quote!(kw as isize), dw)], -(g.pl as isize));
        let xv = if lane.int {
            let v = widen_sub(lane, s.x_elem, quote!(v), s.x_zp);
            quote!(xr.get(c).map_or(0, |&v| #v))
        } else {
            quote!(xr.get(c).copied().unwrap_or(0.0))
        };
        let channels = match &pairs {
            Some(pm) => pm.channel_loop(&|b| {
                let (pairs4, zpe) = (&pm.pairs4, &pm.zp_elem);
                let b = rs_lin(&[(quote!(xrow), 1)], b as isize);
                quote! {{
                    let (ra, rb) = (&xc[xrow..][..#wl], &xc[#b..][..#wl]);
                    let get = |r: &[_], t: usize| r.get(col[t]).copied().unwrap_or(#zpe);
                    rt::#pairs4(
                        &core::array::from_fn::<_, 4, _>(|t| get(ra, t)),
                        &core::array::from_fn::<_, 4, _>(|t| get(rb, t)),
                        #zp16,
                    )
                }}
            }),
            None => quote! {
                for (xc, wv) in xn.chunks_exact(#hw_l).zip(wk.chunks_exact(#lanes_l)) {
                    let xr = &xc[xrow..][..#wl];
                    for (at, &c) in acc.iter_mut().zip(&col) {
                        let xv: #t = #xv;
                        #accumulate
                    }
                }
            },
        };
        tap_rows(quote! {
            let xrow = #row;
            for kw in 0..#kwl {
                let col: [usize; #tile_l] = core::array::from_fn(|t| {
                    let iw = #iw;
                    if ow + t < #owl && (0..#wil).contains(&iw) { iw as usize } else { usize::MAX }
                });
                let wk = &wb[#wk_s..][..#ci_lanes];
                #channels
            }
        })
    };
    let taps = match interior {
        Some((cond, body)) => quote!(if #cond { #body } else { #masked }),
        None => masked,
    };
    // The last panel may be partial.
    let jn = if g.m.is_multiple_of(lanes) {
        quote!(#lanes_l)
    } else if ob == 1 {
        let l = lit(g.m);
        quote!(#l)
    } else {
        let (last, rem) = (lit(ob - 1), lit(g.m % lanes));
        quote!(if ob == #last { #rem } else { #lanes_l })
    };
    let oc = rs_lin(&[(quote!(ob), lanes), (quote!(j), 1)], 0);
    let ystart = rs_lin(&[(quote!(oc), ohw), (quote!(oh), g.ow), (quote!(ow), 1)], 0);
    let (mut tables, store, nbl) = (s.tables.clone(), &s.store, lit(g.nb));
    let (panel_setup, stores) = match (&pairs, &s.rq8) {
        (pm, Some(rq)) => {
            tables = rq.tables(ob * lanes);
            let (setup, stores) = rq.stores(lanes, g.m, ystart);
            // The int32 arrays of the lane kernel as the vectors of the pair kernel.
            let (vl, tl) = (lit(lanes / 8), lit(tile));
            let regroup = pm.is_none().then(|| {
                quote! {
                    let acc: [[rt::I32x8; #tl]; #vl] =
                        core::array::from_fn(|v| core::array::from_fn(|t| rt::i32x8_load(&acc[t][v * 8..])));
                }
            });
            (setup, quote!(#regroup #stores))
        }
        _ => (
            quote!(),
            quote! {
                #acc_lanes
                for j in 0..#jn {
                    let oc = #oc;
                    let yr = &mut yn[#ystart..][..nt];
                    for (yv, a) in yr.iter_mut().zip(&acc) {
                        let v = a[j];
                        *yv = #store;
                    }
                }
            },
        ),
    };
    quote! {
        #tables
        for n in 0..#nbl {
            let xn = &x0[#xs..#xe];
            #pad_copy
            let yn = &mut y[#ys..#ye];
            for (ob, wb) in x1.chunks_exact(#panel_l).enumerate() {
                #panel_setup
                for oh in 0..#ohl {
                    let mut ow = 0usize;
                    while ow < #owl {
                        #acc_init
                        #taps
                        let nt = (#owl - ow).min(#tile_l);
                        #stores
                        ow += nt;
                    }
                }
            }
        }
    }
}

/// Stack bytes [`padded_input`] may use for the padded copy of a batch's input.
const PADDED_INPUT_BYTES: usize = 4096;

/// A zero-padded copy of a small padded input (at most [`PADDED_INPUT_BYTES`]), so that
/// every whole tile of the dense convolution reads inside the image (no per-pixel checks):
/// the geometry over the copy (no padding) and the statements rebinding `xn` to it. Padding
/// holds the input's zero point (adds nothing); float weights are finite (see
/// [`dense_conv_weights`]), so padding times a weight is zero as well.
fn padded_input(g: &Geo, s: &ConvSpec) -> Option<(Geo, TokenStream)> {
    let [kh, kw] = g.k;
    let need = |o: usize, st: usize, k: usize, d: usize| (o - 1) * st + (k - 1) * d + 1;
    let (hn, wn) = (need(g.oh, g.s[0], kh, g.d[0]), need(g.ow, g.s[1], kw, g.d[1]));
    let (hp, wp) = (hn.max(g.pt + g.h), wn.max(g.pl + g.wd));
    let padded = g.pt > 0 || g.pl > 0 || hn > g.h || wn > g.wd;
    let size = match s.x_elem {
        DType::F32 if !s.lane.int => 4,
        DType::I8 | DType::U8 if s.lane.int => 1,
        _ => return None,
    };
    if !padded || g.ci * hp * wp * size > PADDED_INPUT_BYTES {
        return None;
    }
    let zero = if s.x_elem == DType::F32 { quote!(0.0f32) } else { zp_elem(s) };
    let (len, hw, wl) = (lit(g.ci * hp * wp), lit(g.h * g.wd), lit(g.wd));
    let dst = rs_lin(&[(quote!(c), hp * wp), (quote!(ih), wp)], (g.pt * wp + g.pl) as isize);
    let copy = quote! {
        let mut xpad = [#zero; #len];
        for (c, xc) in xn.chunks_exact(#hw).enumerate() {
            for (ih, xr) in xc.chunks_exact(#wl).enumerate() {
                xpad[#dst..][..#wl].copy_from_slice(xr);
            }
        }
        let xn = &xpad[..];
    };
    Some((Geo { h: hp, wd: wp, pt: 0, pl: 0, ..*g }, copy))
}

/// The vector requantization of the dense int8 kernel over channel pairs
/// ([`rt::requant8`](modelless_rt::requant8)): 8 output channels per call.
struct Rq8Spec {
    /// Multiplier and shift per output channel (every shift in -31..=-1).
    mul: Vec<i32>,
    shift: Vec<i32>,
    zp: i32,
    lo: i32,
    hi: i32,
    to: DType,
    /// Whether the node has a bias input (`x2`).
    bias: bool,
}

impl Rq8Spec {
    /// The vector form of `r` for `m` output channels, if its shifts allow it.
    fn of(r: &crate::ops::Requant, m: usize, bias: bool) -> Option<Rq8Spec> {
        let per = |v: &[i32]| (0..m).map(|c| *v.get(c).or(v.first()).unwrap_or(&0)).collect::<Vec<i32>>();
        let shift = per(&r.shift);
        let ok = matches!(r.to, DType::I8 | DType::U8) && shift.iter().all(|s| (-31..=-1).contains(s));
        ok.then(|| Rq8Spec { mul: per(&r.multiplier), shift, zp: r.zero_point, lo: r.lo, hi: r.hi, to: r.to, bias })
    }

    /// `requant8_s8` or `requant8_u8`: 8 requantized values of the output type.
    fn narrow_fn(&self) -> Ident {
        super::ident(if self.to == DType::U8 { "requant8_u8" } else { "requant8_s8" })
    }

    /// Depthwise: `q` and `b`, the requantization and the bias of channel `oc` in all 8
    /// lanes.
    fn channel_setup(&self) -> TokenStream {
        let q = self.prepare(quote!(&[RQ8_MUL[oc]; 8]), quote!(&[RQ8_SHIFT[oc]; 8]));
        let b = if self.bias { quote!(x2[oc]) } else { quote!(0) };
        quote! {
            let q = #q;
            let b = [#b; 8];
        }
    }

    /// `rt::rq8_prepare` over the multipliers `mul` and shifts `shift` (slice expressions).
    fn prepare(&self, mul: TokenStream, shift: TokenStream) -> TokenStream {
        let (zp, lo, hi) =
            (Literal::i32_unsuffixed(self.zp), Literal::i32_unsuffixed(self.lo), Literal::i32_unsuffixed(self.hi));
        quote!(rt::rq8_prepare(#mul, #shift, #zp, #lo, #hi))
    }

    /// `RQ8_MUL` and `RQ8_SHIFT` over `len` channels (whole panels; the padding requantizes
    /// nothing that is stored).
    fn tables(&self, len: usize) -> TokenStream {
        let pad = |v: &[i32], fill: i32| (0..len).map(|c| *v.get(c).unwrap_or(&fill)).collect::<Vec<i32>>();
        let m = super::qkernels::i32_array("RQ8_MUL", &pad(&self.mul, 0));
        let s = super::qkernels::i32_array("RQ8_SHIFT", &pad(&self.shift, -1));
        quote!(#m #s)
    }

    /// The per-panel preparation and the stores of a tile (`acc`, `nt` pixels from `ow`)
    /// to output element `ystart + t` (an expression of `oc`, `oh`, `ow`).
    fn stores(&self, lanes: usize, m: usize, ystart: TokenStream) -> (TokenStream, TokenStream) {
        let (ll, vl, ml) = (lit(lanes), lit(lanes / 8), lit(m));
        let q = self.prepare(quote!(&RQ8_MUL[c..]), quote!(&RQ8_SHIFT[c..]));
        let bias = if self.bias {
            quote!(core::array::from_fn(|l| x2.get(ob * #ll + v * 8 + l).copied().unwrap_or(0)))
        } else {
            quote!([0; 8])
        };
        let setup = quote! {
            let rq: [rt::Rq8; #vl] = core::array::from_fn(|v| {
                let c = ob * #ll + v * 8;
                #q
            });
            let bias: [[i32; 8]; #vl] = core::array::from_fn(|v| #bias);
        };
        let t = super::elem(self.to);
        let guard = if m.is_multiple_of(8) { quote!() } else { quote!(if oc >= #ml { break; }) };
        let stores = quote! {
            for (v, (av, (q, b))) in acc.iter().zip(rq.iter().zip(&bias)).enumerate() {
                for (t, &a) in av.iter().enumerate().take(nt) {
                    for (l, &r) in rt::requant8(a, b, q).iter().enumerate() {
                        let oc = ob * #ll + v * 8 + l;
                        #guard
                        yn[#ystart + t] = r as #t;
                    }
                }
            }
        };
        (setup, stores)
    }
}

/// Depthwise convolution (`group == ci == m`), one output row of one channel at a time in
/// a stack row of accumulators: per tap, the output columns whose input is inside the
/// image are a compile-time range, so the inner loop has no checks. `wzp` is the weight
/// zero point: per channel (an expression of `oc`) or one value (int only).
fn depthwise(g: &Geo, s: &ConvSpec, wzp: Result<TokenStream, i32>) -> TokenStream {
    let lane = s.lane;
    let [kh, kw] = g.k;
    let [sh, sw] = g.s;
    let [dh, dw] = g.d;
    let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
    let (t, zero) = (lane.ty(), lane.zero());
    let xc = rs_lin(&[(quote!(n), g.ci * hw), (quote!(oc), hw)], 0);
    let wk = rs_lin(&[(quote!(oc), kh * kw)], 0);
    let ih = rs_lin(&[(quote!(oh as isize), sh), (quote!(kh as isize), dh)], -(g.pt as isize));
    let xr = rs_lin(&[(quote!(ih as usize), g.wd)], 0);
    let wr = rs_lin(&[(quote!(kh), kw)], 0);
    let yr = rs_lin(&[(quote!(n), g.m * ohw), (quote!(oc), ohw), (quote!(oh), g.ow)], 0);
    let (wz_bind, wval): (TokenStream, Box<dyn Fn(TokenStream) -> TokenStream>) = match (lane.int, wzp) {
        (false, _) => (quote!(), Box::new(|e| e)),
        (true, Ok(expr)) => {
            let conv = if s.w_elem == DType::I32 { quote!() } else { quote!(i32::from) };
            (quote!(let wz = #expr;), Box::new(move |e| quote!(#conv(#e).wrapping_sub(wz))))
        }
        (true, Err(z)) => {
            let w_elem = s.w_elem;
            (quote!(), Box::new(move |e| widen_sub(lane, w_elem, e, z)))
        }
    };
    if let Some(plane) = depthwise_plane(g, s, &wz_bind, &*wval) {
        return plane;
    }
    let mut taps = vec![];
    for kx in 0..kw {
        let off = (kx * dw) as isize - g.pl as isize;
        let lo = if off >= 0 { 0 } else { ((-off) as usize).div_ceil(sw) };
        let top = g.wd as isize - 1 - off;
        if top < 0 {
            continue;
        }
        let hi = (top as usize / sw + 1).min(g.ow);
        if lo >= hi {
            continue;
        }
        let start_v = (lo as isize * sw as isize + off) as usize;
        let start = lit(start_v);
        let rowr = if lo == 0 {
            let h = lit(hi);
            quote!(row[..#h])
        } else {
            let (l, h) = (lit(lo), lit(hi));
            quote!(row[#l..#h])
        };
        let xs = if sw == 1 {
            let len = lit(hi - lo);
            if start_v == 0 { quote!(xr[..#len].iter()) } else { quote!(xr[#start..][..#len].iter()) }
        } else {
            let swl = lit(sw);
            quote!(xr[#start..].iter().step_by(#swl))
        };
        let kx_l = lit(kx);
        let w = wval(quote!(wr[#kx_l]));
        let xv = widen_sub(lane, s.x_elem, quote!(xv), s.x_zp);
        let mac = lane.mac(quote!(r), xv, quote!(wv));
        taps.push(quote! {
            {
                let wv: #t = #w;
                for (r, &xv) in #rowr.iter_mut().zip(#xs) { #mac }
            }
        });
    }
    let (nbl, ml, ohl, owl, khl, hl) = (lit(g.nb), lit(g.m), lit(g.oh), lit(g.ow), lit(kh), ilit(g.h));
    let (hwl, kkl, wl, kwl) = (lit(hw), lit(kh * kw), lit(g.wd), lit(kw));
    let (zp_table, mut tables, store) = (&s.zp_table, s.tables.clone(), &s.store);
    let mut chan_setup = quote!();
    let mut row_store = quote! {
        for (yv, &v) in yr.iter_mut().zip(&row) {
            *yv = #store;
        }
    };
    if let Some(rq) = &s.rq8 {
        // 8 outputs of the row per `rt::requant8`; the tail through a padded chunk.
        tables = rq.tables(g.m);
        chan_setup = rq.channel_setup();
        let rq8 = rq.narrow_fn();
        row_store = quote! {
            let mut yc = yr.chunks_exact_mut(8);
            let mut rc = row.chunks_exact(8);
            for (yv, rv) in (&mut yc).zip(&mut rc) {
                yv.copy_from_slice(&rt::#rq8(rt::i32x8_load(rv), &b, &q));
            }
            let (yt, rt_) = (yc.into_remainder(), rc.remainder());
            if !rt_.is_empty() {
                let mut pad = [0i32; 8];
                pad[..rt_.len()].copy_from_slice(rt_);
                yt.copy_from_slice(&rt::#rq8(rt::i32x8_load(&pad), &b, &q)[..yt.len()]);
            }
        };
    }
    quote! {
        #zp_table
        #tables
        for n in 0..#nbl {
            for oc in 0..#ml {
                let xc = &x0[#xc..][..#hwl];
                let wk = &x1[#wk..][..#kkl];
                #wz_bind
                #chan_setup
                for oh in 0..#ohl {
                    let mut row = [#zero; #owl];
                    for kh in 0..#khl {
                        let ih = #ih;
                        if !(0..#hl).contains(&ih) { continue; }
                        let xr = &xc[#xr..][..#wl];
                        let wr = &wk[#wr..][..#kwl];
                        #(#taps)*
                    }
                    let yr = &mut y[#yr..][..#owl];
                    #row_store
                }
            }
        }
    }
}

/// Stack bytes [`depthwise_plane`] may use (padded plane and accumulators): small enough
/// for a microcontroller's stack.
const PLANE_STACK_BYTES: usize = 4096;

/// Integer depthwise convolution of short rows (stride 1, output rows under 16 pixels, a
/// small plane), where vectorizing along a row does little: per channel, the input minus
/// its zero point is copied into a zero-padded stack plane `pw = ow + (kw − 1)·dw` columns
/// wide, and each tap is one multiply-add over the whole output plane computed `pw` columns
/// wide (the columns past `ow` are computed and dropped), one long vectorized loop.
fn depthwise_plane(
    g: &Geo,
    s: &ConvSpec,
    wz_bind: &TokenStream,
    wval: &dyn Fn(TokenStream) -> TokenStream,
) -> Option<TokenStream> {
    let [kh, kw] = g.k;
    let [dh, dw] = g.d;
    let (pw, ph) = (g.ow + (kw - 1) * dw, g.oh + (kh - 1) * dh);
    let (plane, accs) = (ph * pw + (kw - 1) * dw, g.oh * pw);
    let fits = g.pt + g.h <= ph && g.pl + g.wd <= pw && (plane + 2 * accs.next_multiple_of(8)) * 4 <= PLANE_STACK_BYTES;
    if !s.lane.int || g.s != [1, 1] || g.ow >= 16 || !fits {
        return None;
    }
    let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
    let accs_l = lit(accs);
    let zero = s.lane.zero();
    let taps = (0..kh).flat_map(|y| (0..kw).map(move |x| (y, x))).map(|(y, x)| {
        let (off, k) = (lit(y * dh * pw + x * dw), lit(y * kw + x));
        let w = wval(quote!(wk[#k]));
        quote! {
            let wv: i32 = #w;
            for (a, &v) in acc.iter_mut().zip(&xp[#off..][..#accs_l]) {
                *a = a.wrapping_add(v.wrapping_mul(wv));
            }
        }
    });
    let xv = widen_sub(s.lane, s.x_elem, quote!(v), s.x_zp);
    let xc = rs_lin(&[(quote!(n), g.ci * hw), (quote!(oc), hw)], 0);
    let dst = rs_lin(&[(quote!(ih), pw)], (g.pt * pw + g.pl) as isize);
    let yr = rs_lin(&[(quote!(n), g.m * ohw), (quote!(oc), ohw), (quote!(oh), g.ow)], 0);
    let (nbl, ml, ohl, owl, hwl, wl, kkl) =
        (lit(g.nb), lit(g.m), lit(g.oh), lit(g.ow), lit(hw), lit(g.wd), lit(kh * kw));
    let (planel, pwl) = (lit(plane), lit(pw));
    let (zp_table, mut tables, store) = (&s.zp_table, s.tables.clone(), &s.store);
    // Without the vector requantization: one value at a time from `acc`. With it: whole
    // 8-lane chunks of `acc` (padded) into `rq`, read back per row.
    let (accs_pad, requant, src) = match &s.rq8 {
        Some(rq) => {
            tables = rq.tables(g.m);
            let (setup, rq8) = (rq.channel_setup(), rq.narrow_fn());
            let t = super::elem(rq.to);
            let n8 = lit(accs.next_multiple_of(8));
            let requant = quote! {
                #setup
                let mut rq: [#t; #n8] = [0; #n8];
                for (r, a) in rq.chunks_exact_mut(8).zip(acc.chunks_exact(8)) {
                    r.copy_from_slice(&rt::#rq8(rt::i32x8_load(a), &b, &q));
                }
            };
            (accs.next_multiple_of(8), requant, quote!(yr.copy_from_slice(&rq[oh * #pwl..][..#owl]);))
        }
        None => {
            (accs, quote!(), quote!(for (yv, &v) in yr.iter_mut().zip(&acc[oh * #pwl..][..#owl]) { *yv = #store; }))
        }
    };
    let accs_padl = lit(accs_pad);
    Some(quote! {
        #zp_table
        #tables
        for n in 0..#nbl {
            for oc in 0..#ml {
                let xc = &x0[#xc..][..#hwl];
                let wk = &x1[oc * #kkl..][..#kkl];
                #wz_bind
                let mut xp = [#zero; #planel];
                for (ih, xrow) in xc.chunks_exact(#wl).enumerate() {
                    for (d, &v) in xp[#dst..][..#wl].iter_mut().zip(xrow) {
                        *d = #xv;
                    }
                }
                let mut acc = [#zero; #accs_padl];
                #(#taps)*
                #requant
                for oh in 0..#ohl {
                    let yr = &mut y[#yr..][..#owl];
                    #src
                }
            }
        }
    })
}

/// `rows × k` by the packed `k × n` matrix `x1` (see [`pack_gemm`]), reading row `i` of
/// the left operand from `a` (a slice expression of `i`): per row and panel of [`LANES`]
/// columns, four accumulators over `k`. `aval(x)` widens a left element; `store` writes
/// `yr[j]`-th element from `v` (the sum), `i` and `j`.
#[allow(clippy::too_many_arguments)]
fn lane_gemm(
    lane: Lane,
    w_elem: DType,
    (rows, k, n): (usize, usize, usize),
    a: TokenStream,
    aval: TokenStream,
    y: TokenStream,
    store: TokenStream,
) -> TokenStream {
    let nb = n.div_ceil(LANES);
    let (t, zero) = (lane.ty(), lane.zero());
    let (rl, lanes_l, kl, panel, chunk) = (lit(rows), lit(LANES), lit(k), lit(k * LANES), lit(4 * LANES));
    let mac = |w: TokenStream| lane.mac(quote!(s), quote!(xv), w);
    let main = mac(weight_val(lane, w_elem, quote!(w)));
    // Float accumulates in `rt::F32x8` vectors through `rt::fma8`, int32 in arrays.
    let (init, step, step0, lanes_of) = if lane.int {
        (
            quote!([[#zero; #lanes_l]; 4]),
            quote!(for (s, &w) in s4.iter_mut().zip(wv) { #main }),
            quote!(for (s, &w) in acc[0].iter_mut().zip(wv) { #main }),
            quote!(),
        )
    } else {
        (
            quote!([rt::f32x8_zero(); 4]),
            quote!(*s4 = rt::fma8(*s4, xv, wv);),
            quote!(acc[0] = rt::fma8(acc[0], xv, wv);),
            quote!(let acc = acc.map(rt::f32x8_lanes);),
        )
    };
    let tail = if k.is_multiple_of(4) {
        quote!()
    } else {
        quote! {
            for (&x, wv) in ar.iter().zip(wr.chunks_exact(#lanes_l)) {
                let xv: #t = #aval;
                #step0
            }
        }
    };
    let (ar, wr) = if k.is_multiple_of(4) { (quote!(_), quote!(_)) } else { (quote!(ar), quote!(wr)) };
    let sum = lane.add(lane.add(quote!(acc[0][l]), quote!(acc[1][l])), lane.add(quote!(acc[2][l]), quote!(acc[3][l])));
    let jn = if n.is_multiple_of(LANES) {
        quote!(#lanes_l)
    } else if nb == 1 {
        let l = lit(n);
        quote!(#l)
    } else {
        let (last, rem) = (lit(nb - 1), lit(n % LANES));
        quote!(if jb == #last { #rem } else { #lanes_l })
    };
    let j0 = rs_lin(&[(quote!(jb), LANES)], 0);
    let write = if uses(&store, "j") {
        quote!(for ((yv, &v), j) in yr.iter_mut().zip(&sum).zip(#j0..) { *yv = #store; })
    } else {
        quote!(for (yv, &v) in yr.iter_mut().zip(&sum) { *yv = #store; })
    };
    let ys = rs_lin(&[(quote!(i), n), (quote!(jb), LANES)], 0);
    quote! {
        for i in 0..#rl {
            let a = #a;
            let a = &a[..#kl];
            for (jb, wb) in x1.chunks_exact(#panel).enumerate() {
                let mut acc = #init;
                let (a4, #ar) = a.as_chunks::<4>();
                let (w4, #wr) = wb.as_chunks::<#chunk>();
                for (xs, ws) in a4.iter().zip(w4) {
                    for ((s4, &x), wv) in acc.iter_mut().zip(xs).zip(ws.chunks_exact(#lanes_l)) {
                        let xv: #t = #aval;
                        #step
                    }
                }
                #tail
                #lanes_of
                let sum: [#t; #lanes_l] = core::array::from_fn(|l| #sum);
                let yr = &mut #y[#ys..][..#jn];
                #write
            }
        }
    }
}

/// Float Gemm through [`lane_gemm`], if its `B` is packed.
fn gemm(p: &Program, n: &Node, gm: &crate::ops::Gemm) -> Option<TokenStream> {
    pack(p, n)?;
    let (mm, k, nn) = gm.dims(p.graph.ty(n.inputs[0]), p.graph.ty(n.inputs[1]));
    let mut v = if gm.alpha == 1.0 {
        quote!(v)
    } else {
        let al = super::float(gm.alpha);
        quote!(#al * v)
    };
    let mut c_unused = quote!();
    if n.inputs.len() > 2 {
        if gm.beta != 0.0 {
            let st = broadcast_strides(&p.graph.ty(n.inputs[2]).shape, &[mm, nn]);
            let ci = rs_lin(&[(quote!(i), st[0]), (quote!(j), st[1])], 0);
            v = if gm.beta == 1.0 {
                quote!(#v + x2[#ci])
            } else {
                let be = super::float(gm.beta);
                quote!(#v + #be * x2[#ci])
            };
        } else {
            c_unused = quote!(let _ = x2;);
        }
    }
    let a = rs_lin(&[(quote!(i), k)], 0);
    let body = lane_gemm(
        Lane { int: false },
        DType::F32,
        (mm, k, nn),
        quote!(&x0[#a..]),
        quote!(x),
        quote!(y),
        act_expr(&gm.act, v),
    );
    Some(quote!(#c_unused #body))
}

/// The batch loop of a MatMul / QMatMul around [`lane_gemm`] (`b` is one matrix).
fn batched(d: &Mm, lane: Lane, w_elem: DType, aval: TokenStream, store: TokenStream) -> TokenStream {
    let (batch, a_off) = (d.a_off.len(), &d.a_off);
    let (m, nn) = (d.m, d.n);
    let a = rs_lin(&[(quote!(i), d.k)], 0);
    let body = lane_gemm(lane, w_elem, (m, d.k, nn), quote!(&xa[#a..]), aval, quote!(yb), store);
    if batch == 1 && a_off[0] == 0 {
        return quote! { let (xa, yb) = (x0, y); #body };
    }
    let (bl, mn) = (lit(batch), lit(m * nn));
    let a_off = a_off.iter().map(|&o| lit(o));
    quote! {
        const A_OFF: [usize; #bl] = [#(#a_off),*];
        for (&ao, yb) in A_OFF.iter().zip(y.chunks_exact_mut(#mn)) {
            let xa = &x0[ao..];
            #body
        }
    }
}

/// Float MatMul through [`lane_gemm`], if its `B` is packed.
fn matmul(p: &Program, n: &Node, mm: &crate::ops::MatMul) -> Option<TokenStream> {
    pack(p, n)?;
    let d = matmul_dims(p, n)?;
    Some(batched(&d, Lane { int: false }, DType::F32, quote!(x), act_expr(&mm.act, quote!(v))))
}

/// QMatMul as integer dot products of each row of `a − a_zp` (widened once into a stack
/// row) with the packed rows of `b − b_zp` (see [`pack`]).
/// The vector requantization of a QMatMul that runs on int16 pairs of `k`
/// ([`rt::mac_pair1`](modelless_rt::mac_pair1)): 8-bit `a`, `b − b_zp` fitting int8, and an
/// 8-bit requantized output.
fn qmatmul_pairs(p: &Program, n: &Node, qm: &crate::ops::QMatMul) -> Option<Rq8Spec> {
    let d = matmul_dims(p, n)?;
    let b = const_data(p, n.inputs[1])?;
    let bzp = |j: usize| qm.b_zp.get(j).or(qm.b_zp.first()).copied().unwrap_or(0) as i64;
    let fits = (0..d.k * d.n).all(|i| i8::try_from(int_at(b, i) as i32 as i64 - bzp(i % d.n)).is_ok());
    let a8 = matches!(p.graph.ty(n.inputs[0]).dtype, DType::I8 | DType::U8);
    if !(fits && a8) {
        return None;
    }
    Rq8Spec::of(qm.out.as_ref()?, d.n, n.inputs.len() > 2)
}

/// `rows` (the rows of one batch, from `xa` into `yb`) over every batch of the QMatMul `d`.
fn qmatmul_batches(d: &Mm, rows: TokenStream) -> TokenStream {
    let (a_off, mn) = (&d.a_off, lit(d.m * d.n));
    if a_off.len() == 1 && a_off[0] == 0 {
        return quote!(let (xa, yb) = (x0, &mut y[..#mn]); #rows);
    }
    let bl = lit(a_off.len());
    let offs = a_off.iter().map(|&o| lit(o));
    quote! {
        const A_OFF: [usize; #bl] = [#(#offs),*];
        for (&ao, yb) in A_OFF.iter().zip(y.chunks_exact_mut(#mn)) {
            let xa = &x0[ao..];
            #rows
        }
    }
}

/// QMatMul over channel pairs: per row of `a`, its pairs `a − a_zp` packed as int32 once,
/// then per panel of 8 columns one `rt::mac_pair1` per pair and one vector requantization.
fn qmatmul_pair_kernel(d: &Mm, qm: &crate::ops::QMatMul, rq: &Rq8Spec) -> TokenStream {
    let (k2, nb) = (d.k.div_ceil(2), d.n.div_ceil(8));
    let tables = rq.tables(nb * 8);
    let (kl, k2l, nl, panel) = (lit(d.k), lit(k2), lit(d.n), lit(k2 * 16));
    let sub = |v: TokenStream| super::qkernels::sub_zp(v, qm.a_zp);
    let (lo_x, hi_x) = (sub(quote!(c[0])), sub(quote!(v)));
    let q = rq.prepare(quote!(&RQ8_MUL[j0..]), quote!(&RQ8_SHIFT[j0..]));
    let bias =
        if rq.bias { quote!(core::array::from_fn(|l| x2.get(j0 + l).copied().unwrap_or(0))) } else { quote!([0; 8]) };
    let narrow = rq.narrow_fn();
    let a = rs_lin(&[(quote!(i), d.k)], 0);
    let rows = quote! {
        for (i, yr) in yb.chunks_exact_mut(#nl).enumerate() {
            let a = &xa[#a..][..#kl];
            let mut xp = [0i32; #k2l];
            for (p, c) in xp.iter_mut().zip(a.chunks(2)) {
                let lo = #lo_x;
                let hi = c.get(1).map_or(0, |&v| #hi_x);
                *p = (hi << 16) | (lo & 0xffff);
            }
            for (jb, wb) in x1.chunks_exact(#panel).enumerate() {
                let mut acc = rt::i32x8_zero();
                for (&x, w) in xp.iter().zip(wb.chunks_exact(16)) {
                    acc = rt::mac_pair1(acc, x, w);
                }
                let j0 = jb * 8;
                let q = #q;
                let b: [i32; 8] = #bias;
                let r = rt::#narrow(acc, &b, &q);
                let cols = (#nl - j0).min(8);
                yr[j0..j0 + cols].copy_from_slice(&r[..cols]);
            }
        }
    };
    let body = qmatmul_batches(d, rows);
    quote!(#tables #body)
}

fn qmatmul(p: &Program, n: &Node, qm: &crate::ops::QMatMul) -> Option<TokenStream> {
    let (_, packed) = pack(p, n)?;
    let d = matmul_dims(p, n)?;
    if let Some(rq) = qmatmul_pairs(p, n, qm) {
        return Some(qmatmul_pair_kernel(&d, qm, &rq));
    }
    let acc = if n.inputs.len() > 2 { quote!(v.wrapping_add(x2[j])) } else { quote!(v) };
    let (tables, store) = match &qm.out {
        Some(r) => super::qkernels::requant(r, acc, quote!(j)),
        None => (quote!(), acc),
    };
    let a_elem = p.graph.ty(n.inputs[0]).dtype;
    // 8-bit operands: `a − a_zp` fits i16 and every product fits i32.
    let narrow = a_elem != DType::I32 && packed.dtype() != DType::I32;
    let zp = Literal::i64_unsuffixed((qm.a_zp as i64).abs());
    let (x0_, widen) =
        if a_elem == DType::I32 { (quote!(0i32), quote!(x)) } else { (quote!(0i16), quote!(i16::from(x))) };
    let xz = match qm.a_zp {
        0 => widen,
        z if z > 0 => quote!(#widen.wrapping_sub(#zp)),
        _ => quote!(#widen.wrapping_add(#zp)),
    };
    let w = if packed.dtype() == DType::I32 { quote!(w) } else { quote!(i32::from(w)) };
    let prod = if narrow { quote!(i32::from(x) * #w) } else { quote!(i32::from(x).wrapping_mul(#w)) };
    let (kl, nl) = (lit(d.k), lit(d.n));
    let a = rs_lin(&[(quote!(i), d.k)], 0);
    let dot = quote!(let v = xz.iter().zip(wr).fold(0i32, |s, (&x, &w)| s.wrapping_add(#prod)););
    let cols = if uses(&store, "j") {
        quote!(for ((wr, yv), j) in x1.chunks_exact(#kl).zip(yr.iter_mut()).zip(0usize..) { #dot *yv = #store; })
    } else {
        quote!(for (wr, yv) in x1.chunks_exact(#kl).zip(yr.iter_mut()) { #dot *yv = #store; })
    };
    let rows = quote! {
        for (i, yr) in yb.chunks_exact_mut(#nl).enumerate() {
            let a = &xa[#a..][..#kl];
            let mut xz = [#x0_; #kl];
            for (d, &x) in xz.iter_mut().zip(a) { *d = #xz; }
            #cols
        }
    };
    let body = qmatmul_batches(&d, rows);
    Some(quote!(#tables #body))
}
