//! Kernels over the vector helpers of `modelless_rt.h` (`mlrt_acc8`, `mlrt_px8`, `mlrt_f8`):
//! AVX2/FMA on x86-64, NEON on Arm, `SMLAD` on Cortex-M DSP, plain C elsewhere; every path
//! computes the same sums (int8 paths bit for bit).
//!
//! **Dense Conv** ([`RowConv`], int8 `QConv` with requantized 8-bit output, or float `Conv`;
//! constant weights): output pixels are the vector lanes. Each input row the kernel needs
//! is converted once into a ring — int8: `(x − x_zp)` as int16 pairs of channels
//! `(2p, 2p + 1)` for `mlrt_madd8` (one `vpmaddwd` / four `smlal` / `SMLAD`); float: the
//! values — zero-padded left and right and split by column phase `c mod stride`, so every
//! tap of 8 consecutive output pixels is one contiguous load. Weights are packed at compile
//! time, `[oc/ocb][kh][kw][unit][ocb]` (int8: `(w − w_zp)` int16 pairs). A tile is 4–16
//! output channels × 8 to 32 pixels in registers (byte quads on AVX-512 VNNI: vectors of 16
//! pixels); `--tune` may pick another of the kernel's tiles per node. The ring is node
//! scratch in the arena. Rows are converted before any output row that overwrites them, so
//! the kernel also runs in place (stride 1, same shape). A 1×1, stride-1, unpadded
//! convolution is cut into rows of [`CHUNK`] pixels (wide vectors: 16 or 32).
//!
//! **Depthwise int8 Conv** ([`DwConv`]) and **int8 MatMul** ([`DotMatMul`]): see their docs.
//!
//! The int8 kernels compute exactly the reference's int32 sums (reordered) and requantize
//! them with `mlrt_requant`'s arithmetic: bit-exact.

use super::conv_channel_quads::QuadChannelConv;
use super::conv_channels::ChannelConv;
use super::dw_channels::ChannelDw;
use super::dw_quads::QuadDw;
use super::kernels::{ConvGeo, LANES, const_data, int_at, pack_pays, packed_array, weights_fit_i8};
use super::pw_block_quads::BlockPw;
use super::winograd::WinogradConv;
use super::writer::Writer;
use crate::backend::{Choice, Isa, Program};
use crate::ir::{DType, Graph, Node};
use crate::ops::{Op, QMatMul, Requant};
use crate::toolchain::c_type;

/// Pixels per row of a flattened 1×1 convolution: every input element is converted once
/// whatever the row length, so one wide tile's worth keeps the scratch small.
const CHUNK: usize = 2 * LANES;

/// Pixels per wide vector (`mlrt_acc16`: one AVX-512 register of byte-quad sums).
const WIDE: usize = 16;

/// Wide vectors per register tile for a row of `len` pixels: 1 or 2 (8 output channels × 2
/// vectors is 16 accumulators; with 3, GCC spilled), the fewest lanes past the row's end,
/// then the fewest tiles.
fn wide_vectors(len: usize) -> usize {
    (1..=2).min_by_key(|&v| (len.div_ceil(WIDE * v) * WIDE * v - len, len.div_ceil(WIDE * v))).unwrap_or(1)
}

/// The row-ring kernel's plan for a dense int8 or float convolution.
pub(crate) struct RowConv {
    /// Geometry; a 1×1 convolution cut into rows of [`CHUNK`] pixels has `h = oh` rows of
    /// `wd = ow = CHUNK`.
    g: ConvGeo,
    /// `Some(h·w)` when cut into chunks: the real plane size (the last row is partial).
    plane: Option<usize>,
    /// Channel units per ring row: channel quads or pairs (int8), or channels (float).
    icp: usize,
    /// Values per unit and pixel: 4 (byte quads for `mlrt_dot4`, [`Isa::dot4`]), 2 (int16
    /// pairs) or 1 (float).
    pack: usize,
    /// Float convolution (`Conv`, f32) rather than int8 (`QConv`).
    float: bool,
    /// Rows in the ring.
    ring: usize,
    /// Pairs per column phase of a ring row.
    wq: usize,
    /// Register tile: `ocb` output channels × `pv` vectors of [`LANES`] pixels (of [`WIDE`]
    /// when `wide`). Rows of at least 16 pixels use 4 × 2 (6 loads per 8 multiply-adds, 11
    /// registers), 8 × 2 over byte quads; shorter rows 8 × 1 (9 loads per 8, no lanes wasted
    /// on a second vector), 16 × 1 over byte quads with at least 16 output channels (the VNNI
    /// targets' 32 registers). The rule's tile unless `--tune` chose another
    /// ([`RowConv::tiles`]).
    ocb: usize,
    pv: usize,
    /// Which of [`RowConv::tiles`] (`--tune`; 0: the rule's).
    tile: u8,
    /// Byte quads in wide vectors of [`WIDE`] pixels (`mlrt_acc16`) instead of [`LANES`]: rows
    /// of at least 16 pixels, 8 output channels × 1–2 vectors ([`wide_vectors`]), or 16 × 1.
    wide: bool,
    /// int8 with a single input channel: a unit holds `pack` horizontal taps `kx, kx + 1, ..`
    /// (ring entries `(x[c], x[c + dw], ..)`) instead of channels, so no multiply is wasted
    /// on a zero channel.
    tap_units: bool,
    /// Quads whose padding value `x_zp + off` is not 0: a row of it after the ring stands
    /// for the rows above and below the input.
    pad_row: bool,
}

impl RowConv {
    /// The plan, when node `n` is a dense QConv (8-bit, requantized) or a dense float Conv
    /// with constant weights that this kernel handles.
    pub(crate) fn of(g: &Graph, n: &Node, k: Choice) -> Option<RowConv> {
        let isa = k.isa;
        let (c, float) = match &n.op {
            Op::QConv(qc) if qc.out.is_some() => (&qc.conv, false),
            Op::Conv(c) => (c, true),
            _ => return None,
        };
        let geo = ConvGeo::of_graph(g, n, c, false)?;
        let (xt, wt, yt) = (g.ty(n.inputs[0]).dtype, g.ty(n.inputs[1]).dtype, g.ty(n.outputs[0]).dtype);
        let ok = |d: DType| if float { d == DType::F32 } else { matches!(d, DType::I8 | DType::U8) };
        let weights = g.value(n.inputs[1]).data.as_ref().filter(|_| g.is_const(n.inputs[1]))?;
        if c.group != 1
            || !ok(xt)
            || !ok(wt)
            || !ok(yt)
            || weights.len() != geo.m * geo.ci * c.kernel[0] * c.kernel[1]
            || !pack_pays(geo.m)
        {
            return None;
        }
        let flat = geo.flattened();
        let [kw, sw, dw] = [flat.k[1], flat.s[1], flat.d[1]];
        // Byte quads need every `w − w_zp` to be an int8 (`mlrt_dot4`'s signed operand).
        let tap_units = !float && geo.ci == 1 && kw >= 2;
        let quads = !float && isa.dot4 && (if tap_units { kw >= 3 } else { geo.ci >= 2 }) && {
            let Op::QConv(qc) = &n.op else { return None };
            weights_fit_i8(qc, weights, geo.ci * c.kernel[0] * c.kernel[1])
        };
        // Wide vectors store through `mlrt_acc16_requant_*`, which takes shifts in −31..−1.
        let wide_ok = quads && matches!(&n.op, Op::QConv(qc) if qc.out.as_ref().is_some_and(lanes_requant));
        let chunk = if wide_ok { WIDE * wide_vectors(flat.wd) } else { CHUNK };
        let (g2, plane) = if flat.h == 1 && flat.wd > chunk {
            let rows = flat.wd.div_ceil(chunk);
            (ConvGeo { h: rows, oh: rows, wd: chunk, ow: chunk, ..flat }, Some(flat.wd))
        } else {
            (flat, None)
        };
        let (icp, pack) = match (float, quads) {
            (true, _) => (geo.ci, 1),
            (false, true) => (geo.ci.div_ceil(4), 4),
            (false, false) => (geo.ci.div_ceil(2), 2),
        };
        let wide = wide_ok && g2.ow >= WIDE;
        let tiles = Self::tiles(g2.ow, geo.m, quads, wide);
        let (ocb, pv) = tiles.get(usize::from(k.tile)).or(tiles.first()).copied()?;
        let tile = pv * if wide { WIDE } else { LANES };
        let padded = g2.wd + g2.pl + c.pads[3];
        let wq = padded.div_ceil(sw).max(g2.ow.div_ceil(tile) * tile + (kw - 1) * dw / sw);
        let ring = (g2.k[0] - 1) * g2.d[0] + 1;
        let off = if g.ty(n.inputs[0]).dtype == DType::I8 { 128 } else { 0 };
        let pad_row = quads && matches!(&n.op, Op::QConv(qc) if qc.x_zp + off != 0);
        Some(RowConv { g: g2, plane, icp, pack, float, ring, wq, ocb, pv, tile: k.tile, wide, tap_units, pad_row })
    }

    /// The register tiles `(ocb, pv)` for rows of `ow` pixels and `m` output channels, the
    /// rule's choice first; `--tune` measures the others ([`Choice::tile`]).
    fn tiles(ow: usize, m: usize, quads: bool, wide: bool) -> Vec<(usize, usize)> {
        let rule = match (ow >= 2 * LANES, quads) {
            _ if wide => match wide_vectors(ow) {
                // Fewer than 10 accumulators leave the dot product's latency exposed.
                1 if m >= 2 * LANES => (2 * LANES, 1),
                v => (LANES, v),
            },
            (true, true) => (LANES, 2),
            (true, false) => (LANES / 2, 2),
            // VNNI targets have 32 vector registers: 16 accumulators hide the dot product's latency.
            (false, true) if m >= 2 * LANES => (2 * LANES, 1),
            (false, _) => (LANES, 1),
        };
        // Alternatives within the registers: byte quads (32 registers) up to 16 accumulators,
        // the others (AVX2's 16) up to 8.
        let alts: &[(usize, usize)] = if quads { &[(8, 1), (8, 2), (16, 1)] } else { &[(4, 2), (8, 1)] };
        let mut out = vec![rule];
        out.extend(alts.iter().copied().filter(|&(o, _)| o <= m.next_multiple_of(LANES)).filter(|t| *t != rule));
        out
    }

    /// The register tiles `n` may use (see [`RowConv::tiles`]), as `"8 oc × 2 × 16 px"`.
    pub(crate) fn tile_names(g: &Graph, n: &Node, k: Choice) -> Vec<String> {
        let Some(r) = RowConv::of(g, n, Choice { tile: 0, ..k }) else { return vec![] };
        let vl = if r.wide { WIDE } else { LANES };
        Self::tiles(r.g.ow, r.g.m, r.pack == 4, r.wide).iter().map(|(o, v)| format!("{o} oc × {v} × {vl} px")).collect()
    }

    /// Elements of one ring row (all channel units and phases).
    fn row(&self) -> usize {
        self.icp * self.g.s[1] * self.wq * self.pack
    }

    /// C type of the ring's elements.
    fn elem(&self) -> &'static str {
        match self.pack {
            1 => "float",
            2 => "int16_t",
            _ => "uint8_t",
        }
    }

    /// Bytes of arena scratch (the ring).
    pub(crate) fn scratch_bytes(&self) -> usize {
        (self.ring + usize::from(self.pad_row)) * self.row() * [0, 4, 2, 0, 1][self.pack]
    }

    /// Writes the kernel of `n` (whose plan this is).
    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let g = &self.g;
        let [kh, kw] = g.k;
        let [sh, sw] = g.s;
        let [dh, dw] = g.d;
        let (icp, pack, wq, ring, row) = (self.icp, self.pack, self.wq, self.ring, self.row());
        let et = self.elem();
        let (ocb, pv) = (self.ocb, self.pv);
        let ob = g.m.div_ceil(ocb);
        // Pixels per vector.
        let vl = if self.wide { WIDE } else { LANES };
        if self.tile != 0 {
            w.line(&format!("/* register tile chosen by --tune: {ocb} output channels x {pv} x {vl} pixels */"));
        }
        let xt = c_type(p.graph.ty(n.inputs[0]).dtype);
        let Some(d) = const_data(p, n.inputs[1]) else { return };
        let taps = kh * kw;
        // Tap units per kernel row, and the columns between units (tap pairs: 2).
        let (kwu, tstep) = if self.tap_units { (kw.div_ceil(pack), pack) } else { (kw, 1) };
        // Weights `[oc/ocb][kh][kwu][unit][ocb][pack]`, missing channels and taps zero.
        let weight = |oc: usize, ic: usize, t: usize| -> String {
            let inside = oc < g.m && ic < g.ci;
            let at = (oc * g.ci + ic) * taps + t;
            match &n.op {
                Op::QConv(qc) if inside => (int_at(d, at).unwrap_or(0) - qc.w_zp_of(oc) as i64).to_string(),
                _ if inside => super::c_float(super::kernels::f32_at(d, at).unwrap_or(0.0)),
                _ if self.float => "0.0f".into(),
                _ => "0".into(),
            }
        };
        let mut packed = Vec::with_capacity(ob * kh * kwu * icp * ocb * pack);
        for b in 0..ob {
            for ky in 0..kh {
                for ku in 0..kwu {
                    for u in 0..icp {
                        for j in 0..ocb {
                            for e in 0..pack {
                                packed.push(if !self.tap_units {
                                    weight(b * ocb + j, u * pack + e, ky * kw + ku)
                                } else if ku * pack + e < kw {
                                    weight(b * ocb + j, 0, ky * kw + ku * pack + e)
                                } else {
                                    "0".to_string()
                                });
                            }
                        }
                    }
                }
            }
        }
        let quads = pack == 4;
        let wt = if quads { "int8_t" } else { et };
        packed_array(w, wt, "wq", &packed);
        w.packs_input(1);
        let plane_in = self.plane.unwrap_or(g.h * g.wd);
        let plane_out = self.plane.unwrap_or(g.oh * g.ow);
        let x_zp = match &n.op {
            Op::QConv(qc) => qc.x_zp,
            _ => 0,
        };
        // Byte quads hold `x + off` unsigned (int8: x + 128, flipping the sign bit).
        let off = if xt == "int8_t" { 128 } else { 0 };
        // Ring value of input element `e`.
        let val = |e: &str| -> String {
            match (&n.op, quads) {
                (Op::QConv(_), true) if off == 0 => e.to_string(),
                (Op::QConv(_), true) => format!("(uint8_t)((int32_t){e} + {off})"),
                (Op::QConv(_), false) => match x_zp {
                    0 => format!("(int16_t){e}"),
                    z if z > 0 => format!("(int16_t)((int32_t){e} - {z})"),
                    z => format!("(int16_t)((int32_t){e} + {})", -(z as i64)),
                },
                _ => e.to_string(),
            }
        };
        // The ring value of padding and missing channels: x = x_zp, which adds nothing
        // (quads: its `(x_zp + off) · Σ w` is taken out of the bias below).
        let quad_pad = (x_zp + off).to_string();
        let zero = match pack {
            1 => "0.0f",
            2 => "0",
            _ => quad_pad.as_str(),
        };

        // Quads: per output channel, `−(x_zp + off) · Σ (w − w_zp)` (wrapping), which turns
        // the sum over `x + off` into the sum over `x − x_zp`.
        if quads {
            let corr: Vec<String> = (0..ob * ocb)
                .map(|oc| {
                    let (b, j) = (oc / ocb, oc % ocb);
                    let sum: i64 = (0..kh * kwu * icp)
                        .flat_map(|t| (0..pack).map(move |e| (b * kh * kwu * icp + t) * ocb * pack + j * pack + e))
                        .map(|i| packed[i].parse::<i64>().unwrap_or(0))
                        .sum();
                    ((-(x_zp as i64 + off as i64) * sum) as i32).to_string()
                })
                .collect();
            w.line(&format!("static const int32_t zc[{}] = {{{}}};", corr.len(), corr.join(", ")));
        }
        if self.pad_row {
            w.line(&format!("for (int i = 0; i < {row}; ++i) rows[{} + i] = {zero};", ring * row));
        }
        if quads && !self.tap_units && !g.ci.is_multiple_of(4) {
            // The missing channels of the last quad: 32 input bytes of value x_zp.
            w.line(&format!("static const {xt} zrow[32] = {{{}}};", vec![x_zp.to_string(); 32].join(", ")));
        }
        w.open(&format!("for (int n = 0; n < {}; ++n)", g.nb));
        w.line(&format!("const {xt} *xn = x0 + n * {};", g.ci * plane_in));
        w.line("int next = 0;");
        w.open(&format!("for (int oh = 0; oh < {}; ++oh)", g.oh));
        w.line(&format!("const int ih0 = oh * {sh} - {};", g.pt));
        // Convert the input rows this output row reaches for the first time.
        w.open(&format!("for (; next <= ih0 + {} && next < {}; ++next)", (kh - 1) * dh, g.h));
        w.line("if (next < ih0) continue;");
        w.line(&format!("{et} *slot = rows + (next % {ring}) * {row};"));
        // Valid input columns of this row (the last chunk of a flattened plane is short).
        if let Some(pl) = self.plane {
            w.line(&format!("const int valid = {pl} - next * {wd} < {wd} ? {pl} - next * {wd} : {wd};", wd = g.wd));
        }
        // Units of `pack` channels (an odd last channel pairs with zeros). Unit q of phase ph
        // holds padded column q·sw + ph, i.e. input column q·sw + ph − pl.
        // Phases some tap reads (tap kx reads phase kx·dw mod sw); a 1×1 stride-2 kernel
        // reads only phase 0.
        let read = |ph: usize| (0..kw).any(|kx| kx * dw % sw == ph);
        if self.tap_units {
            for ph in (0..sw).filter(|&ph| read(ph)) {
                w.line(&format!("{et} *e{ph} = slot + {};", ph * wq * pack));
                w.open(&format!("for (int q = 0; q < {wq}; ++q)"));
                w.line(&format!("const int iw = q * {sw} + {};", ph as isize - g.pl as isize));
                for t in 0..pack {
                    let at = if t == 0 { "iw".to_string() } else { format!("iw + {}", t * dw) };
                    w.line(&format!(
                        "e{ph}[{pack} * q + {t}] = {at} >= 0 && {at} < {} ? {} : {zero};",
                        g.wd,
                        val(&format!("xn[next * {} + {at}]", g.wd))
                    ));
                }
                w.close();
            }
        }
        let full = g.ci / pack;
        for (lo_u, hi_u, whole) in [(0, full, true), (full, icp, false)] {
            // Tap units were converted above.
            if lo_u >= hi_u || self.tap_units {
                continue;
            }
            w.open(&format!("for (int pr = {lo_u}; pr < {hi_u}; ++pr)"));
            w.line(&format!("const {xt} *xa = xn + pr * {} + next * {};", pack * plane_in, g.wd));
            for ph in (0..sw).filter(|&ph| read(ph)) {
                let lo = if g.pl > ph { (g.pl - ph).div_ceil(sw) } else { 0 }.min(wq);
                let hi = match self.plane {
                    Some(_) => "valid".to_string(),
                    None => (g.wd + g.pl).saturating_sub(ph).div_ceil(sw).clamp(lo, wq).to_string(),
                };
                let cell = |e: usize| if pack == 1 { format!("e{ph}[q]") } else { format!("e{ph}[{pack} * q + {e}]") };
                let clear: Vec<String> = (0..pack).map(|e| format!("{} = {zero};", cell(e))).collect();
                w.line(&format!("{et} *e{ph} = slot + (pr * {sw} + {ph}) * {};", wq * pack));
                w.line(&format!("for (int q = 0; q < {lo}; ++q) {{ {} }}", clear.join(" ")));
                // Whole pairs of a contiguous row: 8 pixels per `mlrt_pair8_*`, then the rest.
                match &n.op {
                    // A partial last quad reads its missing channels from `zrow`.
                    Op::QConv(_) if sw == 1 && quads => {
                        let src: Vec<String> = (0..4)
                            .map(|e| match whole || e < g.ci % 4 {
                                true => format!("xa + q16 - {} + {}", g.pl, e * plane_in),
                                false => "zrow".to_string(),
                            })
                            .collect();
                        let flip = if off == 128 { "0x80" } else { "0" };
                        w.line(&format!("int q16 = {lo};"));
                        w.line(&format!(
                            "for (; q16 + 16 <= {hi}; q16 += 16) mlrt_quad16(e{ph} + 4 * q16, {}, {flip});",
                            src.join(", ")
                        ));
                        w.line(&format!(
                            "for (; q16 + 8 <= {hi}; q16 += 8) mlrt_quad8(e{ph} + 4 * q16, {}, {flip});",
                            src.join(", ")
                        ));
                        w.open(&format!("for (int q = q16; q < {hi}; ++q)"));
                    }
                    // Stride 2: phase ph takes columns 2q + ph − pl, read as every other
                    // byte from an even offset (`odd` picks the phase).
                    Op::QConv(_) if sw == 2 && quads && self.plane.is_none() => {
                        let d = ph as isize - g.pl as isize;
                        let odd = d.rem_euclid(2);
                        let base = match d - odd {
                            0 => String::new(),
                            b if b > 0 => format!(" + {b}"),
                            b => format!(" - {}", -b),
                        };
                        let src: Vec<String> = (0..4)
                            .map(|e| match e * plane_in {
                                _ if !whole && e >= g.ci % 4 => "zrow".to_string(),
                                0 => format!("xa + 2 * q{ph}{base}"),
                                o => format!("xa + 2 * q{ph}{base} + {o}"),
                            })
                            .collect();
                        let flip = if off == 128 { "0x80" } else { "0" };
                        w.line(&format!("int q{ph} = {lo};"));
                        for (n, f) in [(16, "mlrt_quad16_s2"), (8, "mlrt_quad8_s2")] {
                            w.line(&format!(
                                "for (; q{ph} + {n} <= {hi} && 2 * q{ph} + {} <= {}; q{ph} += {n}) {f}(e{ph} + 4 * q{ph}, {}, {odd}, {flip});",
                                d - odd + 2 * n as isize,
                                g.wd,
                                src.join(", ")
                            ));
                        }
                        w.open(&format!("for (int q = q{ph}; q < {hi}; ++q)"));
                    }
                    Op::QConv(qc) if whole && sw == 1 => {
                        let helper = if xt == "uint8_t" { "mlrt_pair8_u8" } else { "mlrt_pair8_s8" };
                        w.line(&format!("int q8 = {lo};"));
                        w.line(&format!(
                            "for (; q8 + {LANES} <= {hi}; q8 += {LANES}) {helper}(e{ph} + 2 * q8, xa + q8 - {pl}, xa + q8 - {pl} + {plane_in}, {});",
                            qc.x_zp,
                            pl = g.pl
                        ));
                        w.open(&format!("for (int q = q8; q < {hi}; ++q)"));
                    }
                    // A vector copy: GCC turns the scalar loop into a `memmove` call per
                    // channel row, whose overhead exceeds the copy for rows this short.
                    Op::Conv(_) if sw == 1 => {
                        w.line(&format!("int q8 = {lo};"));
                        w.line(&format!(
                            "for (; q8 + {LANES} <= {hi}; q8 += {LANES}) mlrt_f8_store(e{ph} + q8, mlrt_f8_load(xa + q8 - {pl}));",
                            pl = g.pl
                        ));
                        w.open(&format!("for (int q = q8; q < {hi}; ++q)"));
                    }
                    _ => w.open(&format!("for (int q = {lo}; q < {hi}; ++q)")),
                }
                w.line(&format!("const int iw = q * {sw} + {};", ph as isize - g.pl as isize));
                w.line(&format!("{} = {};", cell(0), val("xa[iw]")));
                for e in 1..pack {
                    let v = if whole || e < g.ci % pack {
                        val(&format!("xa[iw + {}]", e * plane_in))
                    } else {
                        zero.to_string()
                    };
                    w.line(&format!("{} = {v};", cell(e)));
                }
                w.close();
                w.line(&format!("for (int q = {hi}; q < {wq}; ++q) {{ {} }}", clear.join(" ")));
            }
            w.close();
        }
        w.close();

        let (acc_t, set1, load, mac, xv_t) = match pack {
            1 => ("mlrt_f8", "mlrt_f8_set1", "mlrt_f8_load", "mlrt_f8_fma", "mlrt_f8"),
            2 => ("mlrt_acc8", "mlrt_acc8_set1", "mlrt_px8_load", "mlrt_madd8", "mlrt_px8"),
            _ if self.wide => ("mlrt_acc16", "mlrt_acc16_set1", "mlrt_q16_load", "mlrt_dot4q16", "mlrt_q16"),
            _ => ("mlrt_acc8", "mlrt_acc8_set1", "mlrt_q8_load", "mlrt_dot4", "mlrt_q8"),
        };
        w.open(&format!("for (int ob = 0; ob < {ob}; ++ob)"));
        w.line(&format!("const {wt} *wb = wq + ob * {};", kh * kwu * icp * ocb * pack));
        if quads {
            w.line("MLRT_OPAQUE(wb);");
        }
        w.open(&format!("for (int ow = 0; ow < {}; ow += {})", g.ow, pv * vl));
        let bias = |j: usize| {
            let oc = format!("ob * {ocb} + {j}");
            let b = match (n.inputs.len() > 2, g.m.is_multiple_of(ocb)) {
                (false, _) if quads => "0".to_string(),
                (false, _) => zero.to_string(),
                (true, true) => format!("x2[{oc}]"),
                (true, false) => format!("({oc} < {} ? x2[{oc}] : {})", g.m, if quads { "0" } else { zero }),
            };
            if quads { format!("(int32_t)((uint32_t){b} + (uint32_t)zc[{oc}])") } else { b }
        };
        let accs: Vec<String> = (0..ocb)
            .flat_map(|j| (0..pv).map(move |v| (j, v)))
            .map(|(j, v)| format!("a{j}{v} = {set1}({})", bias(j)))
            .collect();
        w.line(&format!("{acc_t} {};", accs.join(", ")));
        w.open(&format!("for (int kh = 0; kh < {kh}; ++kh)"));
        w.line(&format!("const int ih = ih0 + kh * {dh};"));
        if self.pad_row {
            // Quads take the padding rows' `x_zp` out of the bias: they must be summed too.
            w.line(&format!(
                "const {et} *xr = ih < 0 || ih >= {} ? rows + {} : rows + (ih % {ring}) * {row};",
                g.h,
                ring * row
            ));
        } else {
            w.line(&format!("if (ih < 0 || ih >= {}) continue;", g.h));
            w.line(&format!("const {et} *xr = rows + (ih % {ring}) * {row};"));
        }
        w.open(&format!("for (int kw = 0; kw < {kwu}; ++kw)"));
        // Tap unit kw of pixel ow reads padded column ow·sw + kw·tstep·dw: phase (kw·tstep·dw)
        // mod sw.
        let tdw = tstep * dw;
        w.line(&format!(
            "const {et} *xp = xr + ((kw * {tdw}) % {sw}) * {} + (ow + (kw * {tdw}) / {sw}) * {pack};",
            wq * pack
        ));
        w.line(&format!("const {wt} *wk = wb + (kh * {kwu} + kw) * {};", icp * ocb * pack));
        w.open(&format!("for (int pr = 0; pr < {icp}; ++pr)"));
        for v in 0..pv {
            w.line(&format!("const {xv_t} xv{v} = {load}(xp + pr * {} + {});", sw * wq * pack, v * vl * pack));
        }
        w.line(&format!("const {wt} *wv = wk + pr * {};", ocb * pack));
        for j in 0..ocb {
            for v in 0..pv {
                w.line(&format!("a{j}{v} = {mac}(a{j}{v}, xv{v}, wv + {});", pack * j));
            }
        }
        w.close();
        w.close();
        w.close();
        let left = match self.plane {
            Some(pl) => format!("{pl} - (oh * {ow} + ow)", ow = g.ow),
            None => format!("{} - ow", g.ow),
        };
        // int8 tiles that store 16 pixels at a time (`mlrt_requant16_*` for two vectors, else
        // `mlrt_acc16_requant_*`; both take shifts in −31..−1 only) and are all whole: no
        // `left`, no partial stores (less code).
        let tile = pv * vl;
        let by16 =
            (pv == 2 || self.wide) && matches!(&n.op, Op::QConv(qc) if qc.out.as_ref().is_some_and(lanes_requant));
        let whole_pairs = by16 && self.plane.unwrap_or(g.ow).is_multiple_of(tile) && g.ow.is_multiple_of(tile);
        if !whole_pairs {
            // Pixels of this row from `ow` on (the tile may reach past the row's end).
            w.line(&format!("const int left = {left};"));
        }
        let yt = c_type(p.graph.ty(n.outputs[0]).dtype);
        w.line(&format!("{yt} *yo = y + n * {} + oh * {} + ow;", g.m * plane_out, g.ow));
        // How the tile stores; `q1`: the channel's `mlrt_rq1` entry, for 16-pixel stores.
        enum Store {
            Requant { ty: &'static str, mul: String, shift: String, q1: Option<String>, zp: i32, lo: i32, hi: i32 },
            Float { act: Option<crate::ops::Act> },
        }
        let kind = match &n.op {
            Op::QConv(qc) => {
                let Some(rq) = &qc.out else { return };
                let q1 = by16.then(|| rq1_table(w, rq, "oc"));
                let (mul, shift) =
                    if whole_pairs || self.wide { Default::default() } else { requant_params(w, rq, "oc") };
                let ty = if rq.to == DType::U8 { "u8" } else { "s8" };
                Store::Requant { ty, mul, shift, q1, zp: rq.zero_point, lo: rq.lo, hi: rq.hi }
            }
            Op::Conv(c) => Store::Float { act: c.act },
            _ => return,
        };
        // Stores vector `acc` to the `nv` pixels at `yo + oc · plane + at` (wide vectors: one
        // requantizing store of up to 16 bytes each).
        let store = |acc: &str, at: usize, nv: &str| match &kind {
            Store::Requant { ty, q1: Some(q1), zp, lo, hi, .. } if self.wide => {
                format!("mlrt_acc16_requant_{ty}(yo + oc * {plane_out} + {at}, {acc}, &{q1}, {zp}, {lo}, {hi}, {nv});")
            }
            Store::Requant { ty, mul, shift, zp, lo, hi, .. } => {
                format!(
                    "mlrt_requant8_{ty}(yo + oc * {plane_out} + {at}, {acc}, {mul}, {shift}, {zp}, {lo}, {hi}, {nv});"
                )
            }
            Store::Float { act } => float_store(act, acc, &format!("yo + oc * {plane_out} + {at}"), nv),
        };
        for j in 0..ocb {
            let mut calls = Vec::new();
            for v in 0..pv {
                let (acc, at) = (format!("a{j}{v}"), v * vl);
                if whole_pairs && self.wide {
                    calls.push(store(&acc, at, &vl.to_string()));
                    continue;
                }
                let nv = if at == 0 { "left".to_string() } else { format!("left - {at}") };
                let call = format!("const int nv = {nv} < {vl} ? {nv} : {vl}; {}", store(&acc, at, "nv"));
                calls.push(if at == 0 { format!("{{ {call} }}") } else { format!("if (left > {at}) {{ {call} }}") });
            }
            let mut body = calls.join(" ");
            if let (false, Store::Requant { ty, q1: Some(q1), zp, lo, hi, .. }) = (self.wide, &kind) {
                // Both vectors whole: one requantizing 16-byte store. Where every tile is
                // whole, the partial stores are left out.
                let pair =
                    format!("mlrt_requant16_{ty}(yo + oc * {plane_out}, a{j}0, a{j}1, &{q1}, {zp}, {lo}, {hi});");
                body = if whole_pairs { pair } else { format!("if (left >= {tile}) {pair} else {{ {body} }}") };
            }
            if g.m.is_multiple_of(ocb) {
                w.line(&format!("{{ const int oc = ob * {ocb} + {j}; {body} }}"));
            } else {
                w.line(&format!("{{ const int oc = ob * {ocb} + {j}; if (oc < {}) {{ {body} }} }}", g.m));
            }
        }
        w.close();
        w.close();
        w.close();
        w.close();
    }

    /// C type of the ring (the kernel's scratch parameter).
    pub(crate) fn scratch_type(&self) -> &'static str {
        self.elem()
    }
}

/// The vector kernel's plan for a depthwise convolution (`group == ci == m`, constant
/// weights): int8 with requantized 8-bit output, or float32. Per channel, the plane is
/// copied into scratch (int8 as `(x − x_zp)` int16), zero-padded and split into `sh × sw`
/// phase planes of `wq` columns, so that output pixel `(oh, ow)` is lane `oh·wq + ow` and
/// every tap is one contiguous load of 8 lanes (`mlrt_mac8` / `mlrt_f8_fma`). Each output row
/// is whole vectors and a tail whose extra lanes are computed and dropped; int8 results are
/// packed to 8-bit and stored 8 at a time, float results get bias and activation. The whole
/// channel is copied before any of its outputs is written: it also runs in place.
pub(crate) struct DwConv {
    g: ConvGeo,
    /// Float32 `Conv` rather than int8 `QConv`.
    float: bool,
    /// Padded columns per phase plane.
    wq: usize,
    /// int16 elements per phase plane (with room for the last vector's overreach).
    sub: usize,
}

impl DwConv {
    pub(crate) fn of(g: &Graph, n: &Node) -> Option<DwConv> {
        let (c, float) = match &n.op {
            Op::QConv(qc) if qc.out.is_some() => (&qc.conv, false),
            Op::Conv(c) => (c, true),
            _ => return None,
        };
        let geo = ConvGeo::of_graph(g, n, c, false)?;
        let (xt, wt, yt) = (g.ty(n.inputs[0]).dtype, g.ty(n.inputs[1]).dtype, g.ty(n.outputs[0]).dtype);
        let ok = |d: DType| if float { d == DType::F32 } else { matches!(d, DType::I8 | DType::U8) };
        let weights = g.value(n.inputs[1]).data.as_ref().filter(|_| g.is_const(n.inputs[1]))?;
        let depthwise = c.group == geo.ci && c.group == geo.m && g.ty(n.inputs[1]).shape[1] == 1;
        if !depthwise || !ok(xt) || !ok(wt) || !ok(yt) {
            return None;
        }
        if weights.len() != geo.m * c.kernel[0] * c.kernel[1] {
            return None;
        }
        let (hp, wp) = (geo.h + c.pads[0] + c.pads[2], geo.wd + c.pads[1] + c.pads[3]);
        let (hq, wq) = (hp.div_ceil(geo.s[0]), wp.div_ceil(geo.s[1]));
        // End of the lanes the last output row's vectors compute.
        let lanes = (geo.oh - 1) * wq + geo.ow.div_ceil(LANES) * LANES;
        let reach = (geo.k[0] - 1) * geo.d[0] / geo.s[0] * wq + (geo.k[1] - 1) * geo.d[1] / geo.s[1];
        Some(DwConv { g: geo, float, wq, sub: (hq * wq).max(lanes + reach) })
    }

    pub(crate) fn scratch_bytes(&self) -> usize {
        self.g.s[0] * self.g.s[1] * self.sub * if self.float { 4 } else { 2 }
    }

    /// C type of the planes (the kernel's scratch parameter).
    pub(crate) fn scratch_type(&self) -> &'static str {
        if self.float { "float" } else { "int16_t" }
    }

    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node) {
        let g = &self.g;
        let (kh, kw) = (g.k[0], g.k[1]);
        let [sh, sw] = g.s;
        let [dh, dw] = g.d;
        let (wq, sub) = (self.wq, self.sub);
        let Some(d) = const_data(p, n.inputs[1]) else { return };
        let taps = kh * kw;
        let et = self.scratch_type();
        let xt = c_type(p.graph.ty(n.inputs[0]).dtype);
        let yt = c_type(p.graph.ty(n.outputs[0]).dtype);
        // Per-kind pieces: weight table, plane value of input `e`, and the row epilogue.
        enum Out<'a> {
            Requant { rq: &'a Requant, mul: String, shift: String },
            Float { act: &'a Option<crate::ops::Act> },
        }
        // `x_zp` of an int8 plane (`None`: float).
        let (zp, out) = match &n.op {
            Op::QConv(qc) => {
                let Some(rq) = &qc.out else { return };
                let wzp = |oc: usize| qc.w_zp_of(oc) as i64;
                let vals: Vec<String> =
                    (0..g.m * taps).map(|i| (int_at(d, i).unwrap_or(0) - wzp(i / taps)).to_string()).collect();
                packed_array(w, "int16_t", "wd", &vals);
                let (mul, shift) = requant_params(w, rq, "c");
                (Some(qc.x_zp), Out::Requant { rq, mul, shift })
            }
            Op::Conv(c) => {
                let vals: Vec<String> =
                    (0..g.m * taps).map(|i| super::c_float(super::kernels::f32_at(d, i).unwrap_or(0.0))).collect();
                packed_array(w, "float", "wd", &vals);
                (None, Out::Float { act: &c.act })
            }
            _ => return,
        };
        let val = |e: &str| match zp {
            Some(z) => format!("(int16_t)((int32_t){e} - {z})"),
            None => e.to_string(),
        };
        w.packs_input(1);
        let (hw, ohw) = (g.h * g.wd, g.oh * g.ow);
        // Padding stays zero: every channel writes the same interior cells.
        w.line(&format!("for (int i = 0; i < {}; ++i) rows[i] = 0;", sh * sw * sub));
        w.open(&format!("for (int nc = 0; nc < {}; ++nc)", g.nb * g.m));
        w.line(&format!("const int c = nc % {};", g.m));
        w.line(&format!("const {xt} *xc = x0 + nc * {hw};"));
        w.line(&format!("{yt} *yc = y + nc * {ohw};"));
        // Phase plane (a, b) holds padded row r·sh + a and column q·sw + b at r·wq + q.
        let range = |pad: usize, phase: usize, len: usize, step: usize, cap: usize| {
            let lo = if pad > phase { (pad - phase).div_ceil(step) } else { 0 };
            let hi = (len + pad).saturating_sub(phase).div_ceil(step).min(cap);
            (lo.min(hi), hi)
        };
        let hq = sub / wq;
        for a in 0..sh {
            for b in 0..sw {
                let (r0, r1) = range(g.pt, a, g.h, sh, hq);
                let (q0, q1) = range(g.pl, b, g.wd, sw, wq);
                if r0 >= r1 || q0 >= q1 {
                    continue;
                }
                w.open(&format!("for (int r = {r0}; r < {r1}; ++r)"));
                w.line(&format!(
                    "const {xt} *src = xc + (r * {sh} + {}) * {} + {};",
                    a as isize - g.pt as isize,
                    g.wd,
                    (q0 * sw + b) as isize - g.pl as isize
                ));
                w.line(&format!("{et} *dst = rows + {} + r * {wq};", (a * sw + b) * sub));
                if zp.is_none() && sw == 1 {
                    // Whole vectors, then the few remaining cells one by one: GCC would turn
                    // a scalar loop into a `memmove` call per row, costlier than these rows.
                    let (nvec, rem) = ((q1 - q0) / LANES, (q1 - q0) % LANES);
                    if nvec > 0 {
                        w.line(&format!(
                            "for (int v = 0; v < {}; v += {LANES}) mlrt_f8_store(dst + {q0} + v, mlrt_f8_load(src + v));",
                            nvec * LANES
                        ));
                    }
                    let at = nvec * LANES;
                    let cells: Vec<String> = (at..at + rem).map(|k| format!("dst[{}] = src[{k}];", q0 + k)).collect();
                    if !cells.is_empty() {
                        w.line(&cells.join(" "));
                    }
                } else {
                    w.line(&format!(
                        "for (int q = {q0}; q < {q1}; ++q) dst[q] = {};",
                        val(&format!("src[(q - {q0}) * {sw}]"))
                    ));
                }
                w.close();
            }
        }
        w.line(&format!("const {et} *wc = wd + c * {taps};"));
        let float = matches!(out, Out::Float { .. });
        let bias = match (n.inputs.len() > 2, float) {
            (true, _) => "x2[c]",
            (false, true) => "0.0f",
            (false, false) => "0",
        };
        // One output row is `OW` lanes from `oh·wq`: whole vectors, then a shorter tail.
        let vector = |w: &mut Writer, at: &str, count: usize| {
            let (acc_t, set1) = if float { ("mlrt_f8", "mlrt_f8_set1") } else { ("mlrt_acc8", "mlrt_acc8_set1") };
            w.line(&format!("{acc_t} a = {set1}({bias});"));
            for ky in 0..kh {
                for kx in 0..kw {
                    let (r, q) = (ky * dh, kx * dw);
                    let off = ((r % sh) * sw + q % sw) * sub + (r / sh) * wq + q / sw;
                    let t = ky * kw + kx;
                    w.line(&if float {
                        format!("a = mlrt_f8_fma(a, mlrt_f8_load(rp + {off} + {at}), wc + {t});")
                    } else {
                        format!("a = mlrt_mac8(a, rp + {off} + {at}, tap{t});")
                    });
                }
            }
            match &out {
                Out::Requant { rq, mul, shift } => {
                    let store = if rq.to == DType::U8 { "mlrt_acc8_store_u8" } else { "mlrt_acc8_store_s8" };
                    w.line(&format!(
                        "{store}(yr + {at}, mlrt_requant8v(a, {mul}, {shift}, {}, {}, {}), {count});",
                        rq.zero_point, rq.lo, rq.hi
                    ));
                }
                Out::Float { act } => w.line(&float_store(act, "a", &format!("yr + {at}"), &count.to_string())),
            }
        };
        if !float {
            // The channel's taps, broadcast once (reloading them per row costs a third more).
            let ws: Vec<String> = (0..taps).map(|t| format!("tap{t} = mlrt_w8_set1(wc[{t}])")).collect();
            w.line(&format!("const mlrt_w8 {};", ws.join(", ")));
        }
        w.open(&format!("for (int oh = 0; oh < {}; ++oh)", g.oh));
        w.line(&format!("const {et} *rp = rows + oh * {wq};"));
        w.line(&format!("{yt} *yr = yc + oh * {};", g.ow));
        let (full, tail) = (g.ow / LANES * LANES, g.ow % LANES);
        if full > 0 {
            w.open(&format!("for (int ow = 0; ow < {full}; ow += {LANES})"));
            vector(w, "ow", LANES);
            w.close();
        }
        if tail > 0 {
            vector(w, &full.to_string(), tail);
        }
        w.close();
        w.close();
    }
}

/// C statement storing the first `nv` lanes (a C expression, at most [`LANES`]) of float
/// accumulator `acc` to `dst` with activation `act`. Relu and Clip use vector helpers (a
/// branchy scalar loop over random signs mispredicts half the time); other activations go
/// through a local array for partial vectors; whole vectors are stored straight from the
/// register (a copy through a local array makes GCC keep the accumulators in memory).
pub(crate) fn float_store(act: &Option<crate::ops::Act>, acc: &str, dst: &str, nv: &str) -> String {
    use crate::ops::Act;
    let vector = match act {
        None => Some(acc.to_string()),
        Some(Act::Relu) => Some(format!("mlrt_f8_relu({acc})")),
        Some(Act::Clip { min, max }) => {
            Some(format!("mlrt_f8_clip({acc}, {}, {})", super::c_float(*min), super::c_float(*max)))
        }
        Some(_) => None,
    };
    let whole = nv == LANES.to_string();
    let partial = nv.parse::<usize>().is_ok_and(|k| k < LANES);
    match vector {
        Some(v) if whole => format!("mlrt_f8_store({dst}, {v});"),
        Some(v) if partial => format!(
            "{{ float *yd = {dst}, t[{LANES}]; mlrt_f8_store(t, {v}); for (int l = 0; l < {nv}; ++l) yd[l] = t[l]; }}"
        ),
        Some(v) => format!(
            "{{ float *yd = {dst}; const mlrt_f8 r = {v}; if ({nv} == {LANES}) {{ mlrt_f8_store(yd, r); }} else {{ float t[{LANES}]; mlrt_f8_store(t, r); for (int l = 0; l < {nv}; ++l) yd[l] = t[l]; }} }}"
        ),
        None => {
            let (e, t) = (super::kernels::act_expr(act, "yd[l]"), super::kernels::act_expr(act, "t[l]"));
            format!(
                "{{ float *yd = {dst}; if ({nv} == {LANES}) {{ mlrt_f8_store(yd, {acc}); for (int l = 0; l < {LANES}; ++l) yd[l] = {e}; }} else {{ float t[{LANES}]; mlrt_f8_store(t, {acc}); for (int l = 0; l < {nv}; ++l) yd[l] = {t}; }} }}"
            )
        }
    }
}

/// Whether `mlrt_requant8_lanes` (channels in the lanes) can requantize `r`: every shift in
/// −31..−1.
pub(crate) fn lanes_requant(r: &Requant) -> bool {
    r.shift.iter().all(|s| (-31..=-1).contains(s))
}

/// Statements requantizing the vectors `accs` per lane (prepared parameters `q`) and storing
/// them as consecutive pixels of 8 bytes from `base`: 4 at a time as one saturating 32-byte
/// store (`mlrt_acc8_store4_*`; where `r` clamps to exactly its output type's range, the
/// saturation is the clamp: `mlrt_requant8_lanes_sat`), the rest one by one.
pub(crate) fn lanes_stores(r: &Requant, base: &str, accs: &[String], q: &str) -> Vec<String> {
    let (ty, range) = if r.to == DType::U8 { ("u8", (0, 255)) } else { ("s8", (-128, 127)) };
    let f = if (r.lo, r.hi) == range { "mlrt_requant8_lanes_sat" } else { "mlrt_requant8_lanes" };
    let dst = |k: usize| if k == 0 { base.to_string() } else { format!("{base} + {}", k * LANES) };
    let whole = accs.len() / 4 * 4;
    let fours = (0..whole).step_by(4).map(|k| {
        let vals: Vec<String> = accs[k..k + 4].iter().map(|a| format!("{f}({a}, &{q})")).collect();
        format!("mlrt_acc8_store4_{ty}({}, {});", dst(k), vals.join(", "))
    });
    let ones = (whole..accs.len())
        .map(|k| format!("mlrt_acc8_store_{ty}({}, mlrt_requant8_lanes({}, &{q}), {LANES});", dst(k), accs[k]));
    fours.chain(ones).collect()
}

/// `rq_mul[m]` / `rq_shift[m]`, one entry per channel, for `mlrt_rq8_prepare`.
pub(crate) fn lanes_requant_tables(w: &mut Writer, r: &Requant, m: usize) {
    let table =
        |v: &[i32]| (0..m).map(|c| v[if v.len() > 1 { c } else { 0 }].to_string()).collect::<Vec<_>>().join(", ");
    w.line(&format!("static const int32_t rq_mul[{m}] = {{{}}};", table(&r.multiplier)));
    w.line(&format!("static const int32_t rq_shift[{m}] = {{{}}};", table(&r.shift)));
}

/// The multiplier and shift of channel `ch` as C expressions: literals when all channels
/// share them, else `rq_mul[ch]` / `rq_shift[ch]` (tables declared here).
pub(crate) fn requant_params(w: &mut Writer, r: &Requant, ch: &str) -> (String, String) {
    let same = |v: &[i32]| v.windows(2).all(|p| p[0] == p[1]);
    if same(&r.multiplier) && same(&r.shift) {
        return (r.multiplier[0].to_string(), r.shift[0].to_string());
    }
    let table = |w: &mut Writer, name: &str, v: &[i32]| {
        let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        w.line(&format!("static const int32_t {name}[{}] = {{{}}};", v.len(), items.join(", ")));
    };
    table(w, "rq_mul", &r.multiplier);
    table(w, "rq_shift", &r.shift);
    (format!("rq_mul[{ch}]"), format!("rq_shift[{ch}]"))
}

/// The constant table `rq1` of `mlrt_rq1` entries of `r` (shifts in −31..−1: one per channel,
/// or one when all channels share it), and the C expression of channel `ch`'s entry.
pub(crate) fn rq1_table(w: &mut Writer, r: &Requant, ch: &str) -> String {
    let same = r.multiplier.windows(2).all(|p| p[0] == p[1]) && r.shift.windows(2).all(|p| p[0] == p[1]);
    let n = if same { 1 } else { r.multiplier.len() };
    let items: Vec<String> = (0..n)
        .map(|c| {
            let (m, s) = r.channel(c);
            format!("{{{}, {m}, {s}, {}}}", 1i64 << (30 - s), -1 - s)
        })
        .collect();
    w.line(&format!("static const mlrt_rq1 rq1[{n}] = {{{}}};", items.join(", ")));
    if same { "rq1[0]".to_string() } else { format!("rq1[{ch}]") }
}

/// The dot-product kernel's plan for an int8 MatMul with a constant right operand: per
/// output column, `mlrt_dot8` over 16 reduction steps at a time of the left operand's row
/// and the column (packed `[n][k]`, `b − b_zp`); `a_zp` is folded at compile time into a
/// per-column constant `−a_zp · Σₖ (b − b_zp)`. No scratch.
pub(crate) struct DotMatMul {
    rows: usize,
    k: usize,
    n: usize,
    /// `b − b_zp`, `[n][k]`.
    cols: Vec<i64>,
    /// `−a_zp · Σₖ (b − b_zp)` per column; with quads also `− off · Σ` over the steps that
    /// read `a + off`.
    corr: Vec<i64>,
    /// [`Isa::dot4`]: 32 reduction steps per `mlrt_dot4v` over `a + off` (bytes) and
    /// `b − b_zp` (int8) instead of 16 per `mlrt_dot8` over int16.
    quads: bool,
}

impl DotMatMul {
    pub(crate) fn of(g: &Graph, n: &Node, isa: Isa) -> Option<DotMatMul> {
        let Op::QMatMul(qm) = &n.op else { return None };
        let (ta, tb) = (g.ty(n.inputs[0]), g.ty(n.inputs[1]));
        let d = crate::ops::MatMul::dims(ta, tb).ok()?;
        let eight = |t: DType| matches!(t, DType::I8 | DType::U8);
        let b = g.value(n.inputs[1]).data.as_ref().filter(|_| g.is_const(n.inputs[1]))?;
        if !eight(ta.dtype) || !eight(tb.dtype) || b.len() != d.k * d.n || d.k < 16 {
            return None;
        }
        let bzp = |j: usize| qm.b_zp[if qm.b_zp.len() > 1 { j } else { 0 }] as i64;
        let cols: Vec<i64> =
            (0..d.n * d.k).map(|i| int_at(b, (i % d.k) * d.n + i / d.k).unwrap_or(0) - bzp(i / d.k)).collect();
        // Quads: int8 `b − b_zp`, and sums of up to 255 · 128 · k that stay within int32.
        let quads = isa.dot4 && d.k >= 32 && d.k <= 43_000 && cols.iter().all(|v| (-128..=127).contains(v));
        let off: i64 = if quads && ta.dtype == DType::I8 { 128 } else { 0 };
        let k32 = if quads { d.k / 32 * 32 } else { 0 };
        let corr: Vec<i64> = cols
            .chunks(d.k)
            .map(|c| -(qm.a_zp as i64) * c.iter().sum::<i64>() - off * c[..k32].iter().sum::<i64>())
            .collect();
        if corr.iter().any(|&c| i32::try_from(c).is_err()) {
            return None;
        }
        let rows = d.batch.iter().product::<usize>() * d.m;
        Some(DotMatMul { rows, k: d.k, n: d.n, cols, corr, quads })
    }

    pub(crate) fn emit(&self, w: &mut Writer, p: &Program, n: &Node, qm: &QMatMul) {
        let (k, nn) = (self.k, self.n);
        let narrow = self.cols.iter().all(|v| (-128..=127).contains(v));
        let (bt, load_b) = if narrow { ("int8_t", "mlrt_px8_load_s8") } else { ("int16_t", "mlrt_px8_load") };
        packed_array(w, bt, "bq", &self.cols.iter().map(|v| v.to_string()).collect::<Vec<_>>());
        w.packs_input(1);
        let a_ty = p.graph.ty(n.inputs[0]).dtype;
        let (at, yt) = (c_type(a_ty), c_type(p.graph.ty(n.outputs[0]).dtype));
        let load_a = if a_ty == DType::U8 { "mlrt_px8_load_u8" } else { "mlrt_px8_load_s8" };
        let mut extra = String::new();
        if self.corr.iter().any(|&c| c != 0) {
            let items: Vec<String> = self.corr.iter().map(|c| c.to_string()).collect();
            w.line(&format!("static const int32_t corr[{nn}] = {{{}}};", items.join(", ")));
            extra.push_str(" + corr[jc]");
        }
        if n.inputs.len() > 2 {
            extra.push_str(" + x2[jc]");
        }
        let store = match &qm.out {
            Some(r) => {
                let (mul, shift) = requant_params(w, r, "jc");
                format!("({yt})mlrt_requant(v, {mul}, {shift}, {}, {}, {})", r.zero_point, r.lo, r.hi)
            }
            None => "v".to_string(),
        };
        // Reduction steps per vector: 32 bytes (quads) or 16 int16.
        let (step, load_a, dot, load_b) = if self.quads {
            let flip = if a_ty == DType::I8 { "0x80" } else { "0" };
            (32, format!("mlrt_q8_load_flip(a + t, {flip})"), "mlrt_dot4v", "")
        } else {
            (16, format!("{load_a}(a + t)"), "mlrt_dot8", load_b)
        };
        let k16 = k / step * step;
        w.open(&format!("for (int i = 0; i < {}; ++i)", self.rows));
        w.line(&format!("const {at} *a = x0 + i * {k};"));
        w.line("int j = 0;");
        // Eight columns at a time share each load of the row (their sums reduced together by
        // `mlrt_acc8_sums`), then single columns.
        let uniform = qm.out.as_ref().filter(|r| {
            let same = |v: &[i32]| v.windows(2).all(|p| p[0] == p[1]);
            same(&r.multiplier) && same(&r.shift) && matches!(r.to, DType::I8 | DType::U8)
        });
        for (cols, head) in [(8, format!("for (; j + 8 <= {nn}; j += 8)")), (1, format!("for (; j < {nn}; ++j)"))] {
            if cols > nn {
                continue;
            }
            w.open(&head);
            w.line(&format!("const {bt} *bj = bq + j * {k};"));
            w.line(&format!("mlrt_acc8 s[{cols}];"));
            w.line(&format!("for (int c = 0; c < {cols}; ++c) s[c] = mlrt_acc8_set1(0);"));
            w.open(&format!("for (int t = 0; t < {k16}; t += {step})"));
            w.line(&format!("const {} av = {load_a};", if self.quads { "mlrt_q8" } else { "mlrt_px8" }));
            for c in 0..cols {
                w.line(&format!("s[{c}] = {dot}(s[{c}], av, {load_b}(bj + {} + t));", c * k));
            }
            w.close();
            w.line(&format!("int32_t sv[{cols}];"));
            if cols == 8 {
                w.line("mlrt_acc8_store(sv, mlrt_acc8_sums(s));");
            } else {
                w.line("sv[0] = mlrt_acc8_sum(s[0]);");
            }
            if k16 < k {
                w.line(&format!(
                    "for (int c = 0; c < {cols}; ++c) for (int t = {k16}; t < {k}; ++t) sv[c] += (int32_t)a[t] * bj[c * {k} + t];"
                ));
            }
            if !extra.is_empty() {
                w.line(&format!("for (int l = 0; l < {cols}; ++l) {{ const int jc = j + l; sv[l] = sv[l]{extra}; }}"));
            }
            match uniform {
                Some(r) if cols == 8 => w.line(&format!(
                    "mlrt_acc8_store_{}(y + i * {nn} + j, mlrt_requant8v(mlrt_acc8_load32(sv), {}, {}, {}, {}, {}), 8);",
                    if r.to == DType::U8 { "u8" } else { "s8" },
                    r.multiplier[0],
                    r.shift[0],
                    r.zero_point,
                    r.lo,
                    r.hi
                )),
                _ => {
                    w.open(&format!("for (int l = 0; l < {cols}; ++l)"));
                    w.line("const int jc = j + l;");
                    w.line("const int32_t v = sv[l];");
                    w.line(&format!("y[i * {nn} + jc] = {store};"));
                    w.close();
                }
            }
            w.close();
        }
        w.close();
    }
}

/// The convolution kernels here and in `conv_channels.rs`, `conv_channel_quads.rs`,
/// `dw_channels.rs`, `dw_quads.rs`, `pw_block_quads.rs` and `winograd.rs`: the plan of the
/// one that runs a node.
enum ConvKernel {
    BlockPw(BlockPw),
    QuadChannel(QuadChannelConv),
    Winograd(WinogradConv),
    Channel(ChannelConv),
    Row(RowConv),
    QuadDw(QuadDw),
    ChannelDw(ChannelDw),
    Dw(DwConv),
}

impl ConvKernel {
    /// The first kernel whose `of` accepts `n` under choices `k`; none in size builds
    /// ([`crate::backend::Opt::simd`]). A node reading or writing channel blocks runs a
    /// channel-lane kernel (`blocks.rs` chose the blocked tensors so that one accepts it).
    fn of(g: &Graph, n: &Node, k: Choice) -> Option<ConvKernel> {
        if !k.opt.simd() {
            return None;
        }
        let isa = k.isa;
        if k.blocked() {
            return (BlockPw::of(g, n, isa).map(ConvKernel::BlockPw))
                .or_else(|| QuadChannelConv::of(g, n, isa).map(ConvKernel::QuadChannel))
                .or_else(|| ChannelConv::of(g, n, true).map(ConvKernel::Channel))
                .or_else(|| ChannelDw::of(g, n).map(ConvKernel::ChannelDw));
        }
        (QuadChannelConv::of(g, n, isa).map(ConvKernel::QuadChannel))
            .or_else(|| WinogradConv::of(g, n).filter(|_| k.winograd).map(ConvKernel::Winograd))
            .or_else(|| ChannelConv::of(g, n, false).map(ConvKernel::Channel))
            .or_else(|| RowConv::of(g, n, k).map(ConvKernel::Row))
            .or_else(|| QuadDw::of(g, n, isa).map(ConvKernel::QuadDw))
            .or_else(|| ChannelDw::of(g, n).map(ConvKernel::ChannelDw))
            .or_else(|| DwConv::of(g, n).map(ConvKernel::Dw))
    }
}

/// The register tiles of `n`'s kernel under choices `k` when it has more than one (the
/// row-ring kernel, [`RowConv::tiles`]), the rule's first; empty otherwise.
pub fn tile_names(g: &Graph, n: &Node, k: Choice) -> Vec<String> {
    let names = match ConvKernel::of(g, n, Choice { tile: 0, ..k }) {
        Some(ConvKernel::Row(_)) => RowConv::tile_names(g, n, k),
        _ => vec![],
    };
    if names.len() > 1 { names } else { vec![] }
}

/// Writes `n`'s kernel if one of the convolution kernels ([`ConvKernel`]) takes it.
pub(crate) fn emit_conv(w: &mut Writer, p: &Program, n: &Node) -> bool {
    let Some(kernel) = ConvKernel::of(p.graph, n, p.choice(n)) else { return false };
    match kernel {
        ConvKernel::BlockPw(k) => k.emit(w, p, n),
        ConvKernel::QuadChannel(k) => k.emit(w, p, n),
        ConvKernel::Winograd(k) => k.emit(w, p, n),
        ConvKernel::Channel(k) => k.emit(w, p, n),
        ConvKernel::Row(k) => k.emit(w, p, n),
        ConvKernel::QuadDw(k) => k.emit(w, p, n),
        ConvKernel::ChannelDw(k) => k.emit(w, p, n),
        ConvKernel::Dw(k) => k.emit(w, p, n),
    }
    true
}

/// C element type of the scratch of `n`'s kernel, if it is one of these kernels.
pub(crate) fn scratch_type(g: &Graph, n: &Node, k: Choice) -> Option<&'static str> {
    Some(match ConvKernel::of(g, n, k)? {
        ConvKernel::BlockPw(_) | ConvKernel::QuadChannel(_) | ConvKernel::QuadDw(_) => "uint8_t",
        ConvKernel::Winograd(_) | ConvKernel::Channel(_) => "float",
        ConvKernel::Row(c) => c.scratch_type(),
        ConvKernel::ChannelDw(c) => c.scratch_type(),
        ConvKernel::Dw(c) => c.scratch_type(),
    })
}

/// Bytes of scratch the C kernel of `n` needs ([`crate::passes::KernelNeeds`]).
pub(crate) fn scratch_bytes(g: &Graph, n: &Node, k: Choice) -> Option<usize> {
    Some(match ConvKernel::of(g, n, k)? {
        ConvKernel::BlockPw(c) => c.scratch_bytes(),
        ConvKernel::QuadChannel(c) => c.scratch_bytes(),
        ConvKernel::Winograd(c) => c.scratch_bytes(),
        ConvKernel::Channel(c) => c.scratch_bytes(),
        ConvKernel::Row(c) => c.scratch_bytes(),
        ConvKernel::QuadDw(c) => c.scratch_bytes(),
        ConvKernel::ChannelDw(c) => c.scratch_bytes(),
        ConvKernel::Dw(c) => c.scratch_bytes(),
    })
}
