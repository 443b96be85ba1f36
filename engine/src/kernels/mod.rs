//! The numeric kernels: dot products, matrix-vector and matrix-matrix products, axpy.
//!
//! Every dot product is computed in one canonical order (see [`portable`]) so that a result
//! never depends on how the work was batched (prefill vs. one token at a time) or split
//! across cores. Three numeric families exist: without fused multiply-add ([`Family::NoFma`]:
//! `lane += a*b` rounds twice), with it ([`Family::Fma`]: rounds once), and with it plus 8-bit
//! activations for quantized matrices ([`Family::FmaQ8`], as llama.cpp computes them; see
//! `quant::q8`). Within a family the results are bit-identical on every machine, target and
//! instruction set (AVX2 and AVX-VNNI give the 8-bit family the same bits); across families
//! they differ in the last bits (the 8-bit family by the rounding of the activations).
//!
//! Instruction sets live in one folder per CPU architecture (`x86_64/sse2.rs`,
//! `x86_64/avx2.rs`; room for `aarch64/neon.rs`). A [`Kernels`] value can only be made by
//! [`Kernels::detect`] (and its per-family variant) or [`Kernels::portable`], so holding one
//! proves that its instructions run on this CPU. Every entry point checks its slice lengths
//! with `assert!` in release builds too: safe code cannot make a kernel read or write out of
//! bounds.

pub mod portable;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use crate::cpu::CpuFeatures;
use crate::quant::q8::Q8Row;
use crate::quant::{BlockType, check_row};
use crate::tensor::{MatData, MatRef};
use alloc::vec::Vec;

/// The width of the canonical accumulation (8 lanes).
pub const LANES: usize = 8;

/// Whether products and sums round separately or once (fused multiply-add), and whether a
/// quantized matrix multiplies f32 activations or 8-bit ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    NoFma,
    Fma,
    /// As [`Family::Fma`], except that a matrix of a type with an 8-bit pairing
    /// (`quant::q8::act_block`: Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K) multiplies activations
    /// quantized to 8 bits, in integer arithmetic (`quant::q8`), as llama.cpp does: about
    /// 3x less work per weight, at the price of rounding the activations (relative error
    /// about 1/254 of each block's largest value).
    FmaQ8,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::NoFma => "no FMA",
            Family::Fma => "FMA",
            Family::FmaQ8 => "FMA, 8-bit activations",
        }
    }
}

/// The instruction set a kernel set runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust loops (no-FMA family).
    Portable,
    /// x86_64 SSE2 (no-FMA family): part of every x86_64 CPU.
    Sse2,
    /// x86_64 AVX2 with FMA (FMA family), after detection.
    Avx2,
    /// AVX2 with FMA and AVX-VNNI (only in the 8-bit family, whose integer products it
    /// computes with `vpdpbusd`: the same sums, so the same bits as [`Isa::Avx2`]).
    Avx2Vnni,
}

/// A usable set of kernels. Private field: only detection or `portable()` make one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    isa: Isa,
    /// 8-bit activations for quantized matrices ([`Family::FmaQ8`]; AVX2 only).
    q8: bool,
}

impl Kernels {
    /// Plain Rust loops, usable everywhere (the no-FMA family).
    pub const fn portable() -> Kernels {
        Kernels { isa: Isa::Portable, q8: false }
    }

    /// The fastest set this CPU (and OS) can run: 8-bit activations with AVX2, else the
    /// no-FMA set. On bare metal, AVX must be enabled in CR4/XCR0 before calling this, or it
    /// reports the no-FMA set.
    pub fn detect() -> Kernels {
        [Family::FmaQ8, Family::Fma, Family::NoFma].into_iter().find_map(Kernels::detect_family).unwrap_or(Kernels::portable())
    }

    /// The fastest set of one numeric family on this CPU, if it has one.
    pub fn detect_family(family: Family) -> Option<Kernels> {
        let usable = Kernels::available();
        usable.into_iter().rev().find(|k| k.family() == family)
    }

    /// Every set this CPU can run, slowest first (tests compare them all with `portable`).
    pub fn available() -> Vec<Kernels> {
        let mut v = alloc::vec![Kernels::portable()];
        if cfg!(target_arch = "x86_64") {
            v.push(Kernels { isa: Isa::Sse2, q8: false });
            if CpuFeatures::read().avx2_fma_usable() {
                v.push(Kernels { isa: Isa::Avx2, q8: false });
                v.push(Kernels { isa: Isa::Avx2, q8: true });
            }
            if CpuFeatures::read().avx_vnni_usable() {
                v.push(Kernels { isa: Isa::Avx2Vnni, q8: true });
            }
        }
        v
    }

    pub fn isa(self) -> Isa {
        self.isa
    }

    pub fn family(self) -> Family {
        match self.isa {
            Isa::Portable | Isa::Sse2 => Family::NoFma,
            Isa::Avx2 | Isa::Avx2Vnni if self.q8 => Family::FmaQ8,
            Isa::Avx2 | Isa::Avx2Vnni => Family::Fma,
        }
    }

    /// The activation block of 8-bit products for a matrix of type `t` in this set (None:
    /// the matrix multiplies f32 activations).
    pub fn q8_block(self, t: BlockType) -> Option<usize> {
        if self.q8 { crate::quant::q8::act_block(t) } else { None }
    }

    /// The set's short name, as `--kernels` takes it: `portable`, `sse2`, `avx2`, `avx2-q8`,
    /// `avx-vnni`.
    pub fn id(self) -> &'static str {
        match self.isa {
            Isa::Portable => "portable",
            Isa::Sse2 => "sse2",
            Isa::Avx2Vnni => "avx-vnni",
            Isa::Avx2 if self.q8 => "avx2-q8",
            Isa::Avx2 => "avx2",
        }
    }

    /// Every set's short name ([`Kernels::id`]), whether or not this CPU runs it.
    pub const IDS: [&'static str; 5] = ["portable", "sse2", "avx2", "avx2-q8", "avx-vnni"];

    /// The set of this short name, if this CPU runs it.
    pub fn by_id(id: &str) -> Option<Kernels> {
        Kernels::available().into_iter().find(|k| k.id() == id)
    }

    pub fn name(self) -> &'static str {
        match self.isa {
            Isa::Portable => "portable (no FMA)",
            Isa::Sse2 => "SSE2 (no FMA)",
            Isa::Avx2Vnni => "AVX2+FMA+VNNI, 8-bit activations",
            Isa::Avx2 if self.q8 => "AVX2+FMA, 8-bit activations",
            Isa::Avx2 => "AVX2+FMA",
        }
    }

    /// Dot product of two equal-length vectors in the canonical order.
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot: vectors of different lengths");
        match self.isa {
            Isa::Portable => portable::dot(a, b),
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => x86_64::sse2::dot_sse2(a, b),
            // SAFETY: an Avx2 set exists only after `avx2_fma_usable` (see `available`).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx2Vnni => unsafe { x86_64::avx2::dot_avx2(a, b) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => portable::dot(a, b),
        }
    }

    /// out (N, OC) = x (N, IC) @ w (OC, IC)^T + bias (OC), N = x.len() / IC.
    pub fn matmul(self, out: &mut [f32], x: &[f32], w: MatRef<'_>, bias: Option<&[f32]>) {
        let (oc, ic) = (w.rows(), w.cols());
        assert!(ic > 0 && x.len().is_multiple_of(ic), "matmul: input of {} floats is not rows of {ic}", x.len());
        let n = x.len() / ic;
        assert_eq!(out.len(), n * oc, "matmul: output must be {n} rows of {oc}");
        if let Some(b) = bias {
            assert_eq!(b.len(), oc, "matmul: bias must have {oc} elements");
        }
        let wd = match w.data() {
            MatData::F32(wd) => wd,
            MatData::Blocks { btype, .. } if self.q8_block(btype).is_some() => {
                let mut xq = crate::quant::q8::Q8Buf::with_capacity(x.len());
                self.quantize_for(&mut xq, x, w);
                self.matmul_q8(out, &xq, 0..n, w, bias);
                return;
            }
            MatData::Blocks { btype, row_bytes, data } if n >= 2 => {
                self.matmul_blocks_rows(out, x, btype, row_bytes, data, bias, ic, oc);
                return;
            }
            MatData::Blocks { btype, row_bytes, data } => {
                // Quantized rows: one dot product per output, read from the blocks directly,
                // four rows at a time where a multi-row kernel exists (same bits per row).
                let row = |o: usize| &data[o * row_bytes..(o + 1) * row_bytes];
                for (xr, orow) in x.chunks_exact(ic).zip(out.chunks_exact_mut(oc)) {
                    let mut o0 = 0;
                    while o0 + 4 <= oc {
                        let Some(d) = self.dot_rows4(btype, [row(o0), row(o0 + 1), row(o0 + 2), row(o0 + 3)], xr) else {
                            break;
                        };
                        for (j, v) in d.into_iter().enumerate() {
                            orow[o0 + j] = match bias {
                                Some(b) => v + b[o0 + j],
                                None => v,
                            };
                        }
                        o0 += 4;
                    }
                    for (o, ov) in orow.iter_mut().enumerate().skip(o0) {
                        let d = self.dot_row(btype, &data[o * row_bytes..(o + 1) * row_bytes], xr);
                        *ov = match bias {
                            Some(b) => d + b[o],
                            None => d,
                        };
                    }
                }
                return;
            }
        };
        // MatRef guarantees wd.len() == oc * ic.
        match self.isa {
            Isa::Portable => portable::matmul(out, x, wd, bias, ic, oc),
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => x86_64::sse2::matmul_sse2(out, x, wd, bias, ic, oc),
            // SAFETY: AVX2+FMA usable (see `dot`); every length was checked above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx2Vnni => unsafe { x86_64::avx2::matmul_avx2(out, x, wd, bias, ic, oc) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => portable::matmul(out, x, wd, bias, ic, oc),
        }
    }

    /// Quantizes `x` (rows of `w.cols()`) to 8 bits as [`Kernels::matmul_q8`] needs them for
    /// `w` (panics if this set has no 8-bit products for `w`'s type).
    pub fn quantize_for(self, xq: &mut crate::quant::q8::Q8Buf, x: &[f32], w: MatRef<'_>) {
        let block = match w.data() {
            MatData::Blocks { btype, .. } => self.q8_block(btype),
            MatData::F32(_) => None,
        };
        let Some(block) = block else { panic!("quantize_for: {} has no 8-bit products for this matrix", self.name()) };
        xq.quantize(block, x, w.cols());
    }

    /// out (N, OC) = xq[rows] (N, IC) @ w (OC, IC)^T + bias (OC) with activations quantized
    /// by [`Kernels::quantize_for`]: each output is [`Kernels::dot_q8`] of its row (four
    /// weight rows at a time share the activation loads; same bits per output).
    pub fn matmul_q8(
        self,
        out: &mut [f32],
        xq: &crate::quant::q8::Q8Buf,
        rows: core::ops::Range<usize>,
        w: MatRef<'_>,
        bias: Option<&[f32]>,
    ) {
        let (oc, ic) = (w.rows(), w.cols());
        let MatData::Blocks { btype, row_bytes, data } = w.data() else { panic!("matmul_q8: an f32 matrix") };
        assert_eq!(self.q8_block(btype), Some(xq.block()), "matmul_q8: activations quantized for another type");
        assert_eq!(xq.cols(), ic, "matmul_q8: activations of {} columns for a matrix of {ic}", xq.cols());
        assert!(rows.start <= rows.end && rows.end <= xq.rows(), "matmul_q8: rows {rows:?} of {}", xq.rows());
        let n = rows.len();
        assert_eq!(out.len(), n * oc, "matmul_q8: output must be {n} rows of {oc}");
        if let Some(b) = bias {
            assert_eq!(b.len(), oc, "matmul_q8: bias must have {oc} elements");
        }
        let row = |o: usize| &data[o * row_bytes..(o + 1) * row_bytes];
        let add_bias = |o: usize, v: f32| match bias {
            Some(b) => v + b[o],
            None => v,
        };
        // Prefill: tiles of TN weight rows x TR input rows share each decoded weight block
        // and each activation load; decode: four weight rows at a time. Every output gets the
        // same bits whichever path computes it.
        const TN: usize = 1;
        const TR: usize = 8;
        let mut o0 = 0;
        while n >= TR && o0 + TN <= oc {
            let wr: [&[u8]; TN] = core::array::from_fn(|j| row(o0 + j));
            let mut r = 0;
            while r + TR <= n {
                let xs = core::array::from_fn(|i| xq.row(rows.start + r + i));
                let d = self.dot_q8_tile::<TN, TR>(btype, wr, xs);
                for (i, di) in d.into_iter().enumerate() {
                    for (j, v) in di.into_iter().enumerate() {
                        out[(r + i) * oc + o0 + j] = add_bias(o0 + j, v);
                    }
                }
                r += TR;
            }
            // The last n % TR input rows of this row pair, one input at a time.
            for rr in r..n {
                let d = self.dot_q8_tile::<TN, 1>(btype, wr, [xq.row(rows.start + rr)]);
                for (j, v) in d[0].into_iter().enumerate() {
                    out[rr * oc + o0 + j] = add_bias(o0 + j, v);
                }
            }
            o0 += TN;
        }
        while o0 + 4 <= oc {
            let wr = [row(o0), row(o0 + 1), row(o0 + 2), row(o0 + 3)];
            for r in 0..n {
                let d = self.dot_q8_rows4(btype, wr, xq.row(rows.start + r));
                for (j, v) in d.into_iter().enumerate() {
                    out[r * oc + o0 + j] = add_bias(o0 + j, v);
                }
            }
            o0 += 4;
        }
        for o in o0..oc {
            for r in 0..n {
                out[r * oc + o] = add_bias(o, self.dot_q8(btype, row(o), xq.row(rows.start + r)));
            }
        }
    }

    /// Continues a canonical dot product: a[i] * b[i] into lane i % 8 of `acc`, in this
    /// set's family. Feeding a row in chunks of multiples of 8 gives exactly `dot`'s lanes.
    #[inline]
    pub fn dot_acc(self, acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
        assert!(a.len() == b.len() && a.len().is_multiple_of(LANES), "dot_acc: equal lengths, multiples of 8");
        match self.isa {
            Isa::Portable => portable::dot_acc(acc, a, b),
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => x86_64::sse2::dot_acc_sse2(acc, a, b),
            // SAFETY: as for `dot`; lengths checked above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx2Vnni => unsafe { x86_64::avx2::dot_acc_avx2(acc, a, b) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => portable::dot_acc(acc, a, b),
        }
    }

    /// Quantized weights for several input rows (prefill): each chunk of a weight row is
    /// decoded once into a small stack buffer and used for up to `GROUP` input rows, with
    /// their canonical lanes carried across chunks. Every output equals the dot product of
    /// the dequantized row with its input row in this family (= [`Kernels::dot_row`], what a
    /// single row gets), so prefill and decode agree bit for bit.
    #[allow(clippy::too_many_arguments)]
    fn matmul_blocks_rows(
        self,
        out: &mut [f32],
        x: &[f32],
        btype: BlockType,
        row_bytes: usize,
        data: &[u8],
        bias: Option<&[f32]>,
        ic: usize,
        oc: usize,
    ) {
        const CHUNK: usize = 256; // elements: one K block, or 8 legacy blocks
        const GROUP: usize = 16; // input rows sharing each decoded chunk
        let n = x.len() / ic;
        let chunk_bytes = btype.row_bytes(CHUNK);
        let mut wbuf = [0.0f32; CHUNK];
        let mut xbuf = [0.0f32; CHUNK];
        let mut acc = [[0.0f32; LANES]; GROUP];
        for r0 in (0..n).step_by(GROUP) {
            let g = GROUP.min(n - r0);
            for o in 0..oc {
                let row = &data[o * row_bytes..(o + 1) * row_bytes];
                acc[..g].iter_mut().for_each(|a| *a = [0.0; LANES]);
                let mut c0 = 0;
                while c0 < ic {
                    let len = CHUNK.min(ic - c0);
                    // Whole blocks per chunk: CHUNK is a multiple of every block size, and a
                    // row holds whole blocks, so only the last chunk may be shorter.
                    let (b0, b1) = match (chunk_bytes, btype.row_bytes(len)) {
                        (Some(cb), Some(lb)) => (c0 / CHUNK * cb, c0 / CHUNK * cb + lb),
                        _ => unreachable!("rows are whole blocks and CHUNK is a multiple of the block"),
                    };
                    crate::quant::dequantize_row(btype, &row[b0..b1], &mut wbuf[..len]);
                    // A ragged tail (f16/bf16 rows) is zero-padded to 8, as the canonical dot
                    // pads it (0 * 0 is added to the unused lanes).
                    let padded = len.next_multiple_of(LANES);
                    wbuf[len..padded].fill(0.0);
                    let mut r_start = 0;
                    // AVX2, whole chunks: four input rows at a time share each weight load
                    // (each row's lanes see exactly the one-row sequence).
                    #[cfg(target_arch = "x86_64")]
                    if matches!(self.isa, Isa::Avx2 | Isa::Avx2Vnni) && padded == len {
                        while r_start + 4 <= g {
                            let xr = |r: usize| &x[(r0 + r) * ic + c0..(r0 + r) * ic + c0 + len];
                            let quad: &mut [[f32; LANES]; 4] = (&mut acc[r_start..r_start + 4]).try_into().expect("four rows");
                            // SAFETY: AVX2+FMA usable (see `dot`); all slices have `len` floats, a multiple of 8.
                            unsafe {
                                x86_64::avx2::dot_acc4_avx2(
                                    quad,
                                    &wbuf[..len],
                                    [xr(r_start), xr(r_start + 1), xr(r_start + 2), xr(r_start + 3)],
                                )
                            };
                            r_start += 4;
                        }
                    }
                    for (r, a) in acc[..g].iter_mut().enumerate().skip(r_start) {
                        let xr = &x[(r0 + r) * ic + c0..(r0 + r) * ic + c0 + len];
                        if padded == len {
                            self.dot_acc(a, &wbuf[..len], xr);
                        } else {
                            xbuf[..len].copy_from_slice(xr);
                            xbuf[len..padded].fill(0.0);
                            self.dot_acc(a, &wbuf[..padded], &xbuf[..padded]);
                        }
                    }
                    c0 += len;
                }
                for (r, a) in acc[..g].iter().enumerate() {
                    let d = portable::combine_lanes(a);
                    out[(r0 + r) * oc + o] = match bias {
                        Some(b) => d + b[o],
                        None => d,
                    };
                }
            }
        }
    }

    /// Whether this set has a SIMD kernel of a quantized row of type `t` times f32 activations
    /// (otherwise [`Kernels::dot_row`] runs the portable loop of this set's family).
    pub fn has_simd_dot(self, t: BlockType) -> bool {
        matches!(self.isa, Isa::Avx2 | Isa::Avx2Vnni)
            && cfg!(target_arch = "x86_64")
            && matches!(t, BlockType::Q8_0 | BlockType::Q5_0 | BlockType::Q4_K | BlockType::Q6_K)
    }

    /// A quantized row (`t.row_bytes(x.len())` bytes, else panics) times `x` in this set's
    /// family: bit for bit [`portable::dot_row`] (no FMA) or [`portable::dot_row_fma`] (FMA),
    /// with this set's SIMD kernel where one exists.
    pub fn dot_row(self, t: BlockType, row: &[u8], x: &[f32]) -> f32 {
        check_row("dot_row", t, x.len(), row.len());
        #[cfg(target_arch = "x86_64")]
        if matches!(self.isa, Isa::Avx2 | Isa::Avx2Vnni) {
            // SAFETY: a Kernels with Isa::Avx2 (Avx2Vnni) exists only after `avx2_fma_usable`
            // (`avx_vnni_usable`) said yes, and the row length was checked above.
            if let Some(v) = unsafe { x86_64::avx2_blocks::dot_row(t, row, x) } {
                return v;
            }
        }
        match self.family() {
            Family::NoFma => portable::dot_impl::<false>(t, row, x),
            Family::Fma | Family::FmaQ8 => portable::dot_impl::<true>(t, row, x),
        }
    }

    /// Four rows against the same `x` with this set's multi-row SIMD kernel, when it has one
    /// for `t` (each result equal bit for bit to [`Kernels::dot_row`] of that row); None
    /// otherwise.
    pub fn dot_rows4(self, t: BlockType, rows: [&[u8]; 4], x: &[f32]) -> Option<[f32; 4]> {
        for r in rows {
            check_row("dot_rows4", t, x.len(), r.len());
        }
        #[cfg(target_arch = "x86_64")]
        if matches!(self.isa, Isa::Avx2 | Isa::Avx2Vnni) {
            // SAFETY: as for `dot_row`; every row length was checked above.
            return unsafe { x86_64::avx2_blocks::dot_rows4(t, rows, x) };
        }
        let _ = (t, rows, x);
        None
    }

    /// A quantized row times 8-bit activations: bit for bit [`portable::dot_q8`], with this
    /// set's SIMD kernel where one exists. Panics unless `t` takes activations in `x`'s block
    /// size and `row` is exactly `x.len()` weights.
    pub fn dot_q8(self, t: BlockType, row: &[u8], x: Q8Row<'_>) -> f32 {
        portable::check_pair("dot_q8", t, row, &x);
        #[cfg(target_arch = "x86_64")]
        if matches!(self.isa, Isa::Avx2 | Isa::Avx2Vnni) {
            // SAFETY: a Kernels with Isa::Avx2 (Avx2Vnni) exists only after `avx2_fma_usable`
            // (`avx_vnni_usable`) said yes; the row and the activations were checked above.
            if let Some(v) = unsafe { x86_64::avx2_q8::dot(self.isa == Isa::Avx2Vnni, t, row, x) } {
                return v;
            }
        }
        portable::dot_q8(t, row, x)
    }

    /// Four rows against the same 8-bit activations, each equal bit for bit to
    /// [`Kernels::dot_q8`] of that row.
    pub fn dot_q8_rows4(self, t: BlockType, rows: [&[u8]; 4], x: Q8Row<'_>) -> [f32; 4] {
        portable::check_pair("dot_q8_rows4", t, rows[0], &x);
        assert!(rows.iter().all(|r| r.len() == rows[0].len()), "dot_q8_rows4: rows of different lengths");
        #[cfg(target_arch = "x86_64")]
        if matches!(self.isa, Isa::Avx2 | Isa::Avx2Vnni) {
            // SAFETY: as for `dot_q8`; every row was checked above.
            if let Some(v) = unsafe { x86_64::avx2_q8::dot4(self.isa == Isa::Avx2Vnni, t, rows, x) } {
                return v;
            }
        }
        rows.map(|r| portable::dot_q8(t, r, x))
    }

    /// N rows against R rows of 8-bit activations (prefill tiles): `out[i][r]` equals bit for
    /// bit [`Kernels::dot_q8`] of row r with `xs[i]`.
    pub fn dot_q8_tile<const N: usize, const R: usize>(self, t: BlockType, rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> [[f32; N]; R] {
        assert!(N > 0 && R > 0, "dot_q8_tile: an empty tile");
        portable::check_pair("dot_q8_tile", t, rows[0], &xs[0]);
        assert!(rows.iter().all(|r| r.len() == rows[0].len()), "dot_q8_tile: rows of different lengths");
        assert!(xs.iter().all(|x| x.len() == xs[0].len() && x.block() == xs[0].block()), "dot_q8_tile: inputs of different shapes");
        #[cfg(target_arch = "x86_64")]
        if matches!(self.isa, Isa::Avx2 | Isa::Avx2Vnni) {
            // SAFETY: as for `dot_q8`; every row and input has the checked shape.
            if let Some(v) = unsafe { x86_64::avx2_q8::dot_tile(self.isa == Isa::Avx2Vnni, t, rows, xs) } {
                return v;
            }
        }
        xs.map(|x| rows.map(|r| portable::dot_q8(t, r, x)))
    }

    /// out += a * x, elementwise (fused in the FMA family).
    #[inline]
    pub fn axpy(self, out: &mut [f32], a: f32, x: &[f32]) {
        assert_eq!(out.len(), x.len(), "axpy: vectors of different lengths");
        match self.isa {
            Isa::Portable | Isa::Sse2 => portable::axpy(out, a, x),
            // SAFETY: as for `dot`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx2Vnni => unsafe { x86_64::avx2::axpy_avx2(out, a, x) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => portable::axpy(out, a, x),
        }
    }
}
