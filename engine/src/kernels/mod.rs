//! The numeric kernels: dot products, matrix-vector and matrix-matrix products, axpy.
//!
//! Every dot product is computed in one canonical order (see [`portable`]) so that a result
//! never depends on how the work was batched (prefill vs. one token at a time) or split
//! across cores. Four numeric families exist: without fused multiply-add ([`Family::NoFma`]:
//! `lane += a*b` rounds twice), with it ([`Family::Fma`]: rounds once), with it plus 8-bit
//! activations for quantized matrices ([`Family::FmaQ8`], as llama.cpp computes them; see
//! `quant::q8`), and 8-bit activations without FMA ([`Family::NoFmaQ8`]: for CPUs without
//! AVX2 and for QEMU's emulation). Within a family the results are bit-identical on every
//! machine, target and instruction set (AVX2, AVX-VNNI and AVX-512 VNNI give the 8-bit family the same
//! bits); across families they differ in the last bits (the 8-bit families by the rounding of
//! the activations).
//!
//! **Kernel sets are data**: [`registry`] lists every [`KernelSet`] this build has (its name,
//! numeric family, a `usable(cpu)` check): the portable sets, then those of the CPU
//! architecture's folder (`x86_64/`: `sse2`, `ssse3-q8`, `avx2`, `avx2-q8`, `avx-vnni`, `avx512-vnni`; room
//! for `aarch64/`). This file holds the ISA-neutral drivers (length checks, tiling, the prefill
//! loops); each call goes to the set's own folder, which owns its instruction sets, its
//! `unsafe` and its `cfg(target_arch)`. A new set for an existing architecture is a registry
//! line and its kernels in that folder.
//!
//! A [`Kernels`] value can only be made by [`Kernels::detect`] (and its per-family variant),
//! [`Kernels::by_name`] or [`Kernels::portable`], each after the set's `usable` check, so
//! holding one proves that its instructions run on this CPU. Every entry point checks its
//! slice lengths with `assert!` in release builds too: safe code cannot make a kernel read or
//! write out of bounds.

pub mod portable;

// The one place that picks the CPU architecture's folder.
#[cfg(target_arch = "x86_64")]
#[path = "x86_64/mod.rs"]
mod arch;
#[cfg(not(target_arch = "x86_64"))]
#[path = "no_simd.rs"]
mod arch;

use crate::cpu::CpuFeatures;
use crate::quant::q8::{KPanelBlock, PANEL_ROWS, PanelBlock, Q8Row};
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
    /// (`quant::q8::act_block`: Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K) multiplies activations
    /// quantized to 8 bits, in integer arithmetic (`quant::q8`), as llama.cpp does: about
    /// 3x less work per weight, at the price of rounding the activations (relative error
    /// about 1/254 of each block's largest value).
    FmaQ8,
    /// As [`Family::NoFma`], except that a matrix of a type with an 8-bit pairing multiplies
    /// 8-bit activations: the same integer products as [`Family::FmaQ8`], scaled once per
    /// weight block without FMA (`quant::q8`, "Without FMA"). For CPUs without AVX2, and for
    /// QEMU's emulation, which runs integer SIMD several times faster than f32 SIMD.
    NoFmaQ8,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::NoFma => "no FMA",
            Family::Fma => "FMA",
            Family::FmaQ8 => "FMA, 8-bit activations",
            Family::NoFmaQ8 => "no FMA, 8-bit activations",
        }
    }
}

/// Why [`Kernels::by_name`] gave no set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelsError {
    /// No set of this name in this build.
    Unknown,
    /// The set exists, but this CPU does not run it.
    NotUsable(&'static str),
}

/// One kernel set of the [`registry`].
#[derive(Debug)]
pub struct KernelSet {
    /// The registry name (`--kernels`): `portable`, `portable-q8`, `sse2`, `ssse3-q8`, `avx2`,
    /// `avx2-q8`, `avx-vnni`, `avx512-vnni`.
    pub name: &'static str,
    /// What it runs, for people (`AVX2+FMA, 8-bit activations`).
    pub description: &'static str,
    pub family: Family,
    /// Whether this CPU (and, on bare metal, its enabled state) runs the set.
    usable: fn(&CpuFeatures) -> bool,
    /// The architecture folder's SIMD set; None: the portable loops.
    simd: Option<arch::Simd>,
}

/// The portable set: plain Rust loops, usable everywhere (the no-FMA family).
static PORTABLE: KernelSet =
    KernelSet { name: "portable", description: "portable (no FMA)", family: Family::NoFma, usable: |_| true, simd: None };

/// The portable loops with 8-bit activations for the quantized matrices (the no-FMA 8-bit
/// family's reference, and its set where the architecture has no SIMD one).
static PORTABLE_Q8: KernelSet = KernelSet {
    name: "portable-q8",
    description: "portable (no FMA), 8-bit activations",
    family: Family::NoFmaQ8,
    usable: |_| true,
    simd: None,
};

/// Every kernel set of this build, slowest first: the portable sets, then the CPU
/// architecture's (`kernels/<arch>/`).
pub fn registry() -> impl Iterator<Item = &'static KernelSet> {
    [&PORTABLE, &PORTABLE_Q8].into_iter().chain(arch::SETS.iter())
}

/// A usable set of kernels. Private field: only detection, `by_name` or `portable()` make one.
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    set: &'static KernelSet,
}

impl PartialEq for Kernels {
    fn eq(&self, other: &Kernels) -> bool {
        core::ptr::eq(self.set, other.set)
    }
}

impl Eq for Kernels {}

impl Kernels {
    /// Plain Rust loops, usable everywhere (the no-FMA family).
    pub const fn portable() -> Kernels {
        Kernels { set: &PORTABLE }
    }

    /// The fastest set this CPU (and OS) can run: 8-bit activations with AVX2, else 8-bit
    /// activations without FMA (SSSE3 on x86_64), else the no-FMA f32 kernels. The portable
    /// 8-bit loops are a reference, never the automatic choice (their prefill is several
    /// times slower than the f32 loops'). On bare metal, AVX must be enabled in CR4/XCR0
    /// before calling this, or it reports a no-FMA set.
    pub fn detect() -> Kernels {
        [Family::FmaQ8, Family::Fma, Family::NoFmaQ8, Family::NoFma]
            .into_iter()
            .filter_map(Kernels::detect_family)
            .find(|k| k.family() != Family::NoFmaQ8 || k.set.simd.is_some())
            .unwrap_or(Kernels::portable())
    }

    /// The fastest set of one numeric family on this CPU, if it has one.
    pub fn detect_family(family: Family) -> Option<Kernels> {
        let usable = Kernels::available();
        usable.into_iter().rev().find(|k| k.family() == family)
    }

    /// Every set this CPU can run, slowest first (tests compare them all with `portable`).
    pub fn available() -> Vec<Kernels> {
        let cpu = CpuFeatures::read();
        registry().filter(|s| (s.usable)(&cpu)).map(|set| Kernels { set }).collect()
    }

    /// The set of this registry name, if this build has it and this CPU runs it.
    pub fn by_name(name: &str) -> Result<Kernels, KernelsError> {
        let set = registry().find(|s| s.name == name).ok_or(KernelsError::Unknown)?;
        if !(set.usable)(&CpuFeatures::read()) {
            return Err(KernelsError::NotUsable(set.name));
        }
        Ok(Kernels { set })
    }

    pub fn family(self) -> Family {
        self.set.family
    }

    /// The registry name (`avx2-q8`).
    pub fn name(self) -> &'static str {
        self.set.name
    }

    /// What the set runs, for people (`AVX2+FMA, 8-bit activations`).
    pub fn description(self) -> &'static str {
        self.set.description
    }

    /// The activation block of 8-bit products for a matrix of type `t` in this set (None:
    /// the matrix multiplies f32 activations).
    pub fn q8_block(self, t: BlockType) -> Option<usize> {
        if matches!(self.set.family, Family::FmaQ8 | Family::NoFmaQ8) { crate::quant::q8::act_block(t) } else { None }
    }

    /// The portable reference of this set's 8-bit dot product (its family's).
    #[inline]
    fn q8_reference(self) -> fn(BlockType, &[u8], Q8Row<'_>) -> f32 {
        if self.set.family == Family::NoFmaQ8 { portable::dot_q8_nofma } else { portable::dot_q8 }
    }

    /// Dot product of two equal-length vectors in the canonical order.
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot: vectors of different lengths");
        match self.set.simd {
            Some(simd) => arch::dot(simd, a, b),
            None => portable::dot(a, b),
        }
    }

    /// Four dot products of `a` with `b[i]`, each equal bit for bit to [`Kernels::dot`]: four
    /// independent chains at once where the set has a four-row kernel and the length is a
    /// multiple of 8 (the attention scores of one query against four keys).
    pub fn dot4(self, a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        assert!(b.iter().all(|r| r.len() == a.len()), "dot4: vectors of different lengths");
        if let Some(simd) = self.set.simd.filter(|&s| arch::has_dot_acc4(s))
            && a.len().is_multiple_of(LANES)
        {
            let mut acc = [[0.0; LANES]; 4];
            arch::dot_acc4(simd, &mut acc, a, b);
            return acc.map(|l| portable::combine_lanes(&l));
        }
        b.map(|r| self.dot(a, r))
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
        match self.set.simd {
            Some(simd) => arch::matmul(simd, out, x, wd, bias, ic, oc),
            None => portable::matmul(out, x, wd, bias, ic, oc),
        }
    }

    /// Quantizes `x` (rows of `w.cols()`) to 8 bits as [`Kernels::matmul_q8`] needs them for
    /// `w` (panics if this set has no 8-bit products for `w`'s type).
    pub(crate) fn quantize_for(self, xq: &mut crate::quant::q8::Q8Buf, x: &[f32], w: MatRef<'_>) {
        let block = match w.data() {
            MatData::Blocks { btype, .. } => self.q8_block(btype),
            MatData::F32(_) => None,
        };
        let Some(block) = block else { panic!("quantize_for: {} has no 8-bit products for this matrix", self.name()) };
        xq.quantize(block, x, w.cols());
        if let MatData::Blocks { btype, .. } = w.data()
            && self.set.simd.is_some_and(|s| arch::has_dot_q8_panel(s, btype) || arch::has_dot_q8_kpanel(s, btype))
        {
            xq.build_panels();
        }
    }

    /// out (N, OC) = xq[rows] (N, IC) @ w (OC, IC)^T + bias (OC) with activations quantized
    /// by [`Kernels::quantize_for`]: each output is [`Kernels::dot_q8`] of its row (four
    /// weight rows at a time share the activation loads; same bits per output).
    pub(crate) fn matmul_q8(
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
        // Prefill with panels: the whole groups of eight rows inside `rows`, each weight row
        // against a group's interleaved panel; a chunk of weight rows that fits the L2 cache
        // (about 256 KiB) against every group in turn, so that the group's panel stays in the
        // L1 cache while the chunk streams past it. The rows outside whole groups one at a time.
        // (Panels exist where `quantize_for` built them: this set has a panel kernel for the type.)
        let (g0, g1) = (rows.start.div_ceil(PANEL_ROWS), (rows.end / PANEL_ROWS).min(xq.panel_groups()));
        let panels = match xq.block() {
            crate::quant::q8::SUB => self.set.simd.is_some_and(|s| arch::has_dot_q8_panel(s, btype)),
            _ => self.set.simd.is_some_and(|s| arch::has_dot_q8_kpanel(s, btype)),
        };
        if g1 > g0 && panels {
            let chunk = (256 * 1024 / row_bytes).max(1);
            let panel_dot = |o: usize, g: usize| match xq.block() {
                crate::quant::q8::SUB => self.dot_q8_panel(btype, row(o), xq.panel(g)),
                _ => self.dot_q8_kpanel(btype, row(o), xq.kpanel(g)),
            };
            for c0 in (0..oc).step_by(chunk) {
                for g in g0..g1 {
                    for o in c0..(c0 + chunk).min(oc) {
                        let v = panel_dot(o, g).expect("matmul_q8: a panel kernel for this type");
                        for (i, v) in v.into_iter().enumerate() {
                            out[(g * PANEL_ROWS + i - rows.start) * oc + o] = add_bias(o, v);
                        }
                    }
                }
            }
            // The rows before and after the whole groups (fewer than eight each, so no panel
            // there): the paths below.
            let (head, tail) = (rows.start..g0 * PANEL_ROWS, g1 * PANEL_ROWS..rows.end);
            let (head_out, rest) = out.split_at_mut(head.len() * oc);
            self.matmul_q8(head_out, xq, head, w, bias);
            self.matmul_q8(&mut rest[(g1 - g0) * PANEL_ROWS * oc..], xq, tail, w, bias);
            return;
        }
        // Prefill: each weight row against eight input rows at a time (each decoded weight
        // block serves all eight); decode: four weight rows at a time. Every output gets the
        // same bits whichever path computes it.
        let mut o0 = 0;
        while n >= 8 && o0 < oc {
            let w = row(o0);
            let mut r = 0;
            while r + 8 <= n {
                let xs = core::array::from_fn(|i| xq.row(rows.start + r + i));
                for (i, v) in self.dot_q8_x8(btype, w, &xs).into_iter().enumerate() {
                    out[(r + i) * oc + o0] = add_bias(o0, v);
                }
                r += 8;
            }
            // The last n % 8 input rows of this weight row, one at a time.
            for rr in r..n {
                out[rr * oc + o0] = add_bias(o0, self.dot_q8(btype, w, xq.row(rows.start + rr)));
            }
            o0 += 1;
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
    pub(crate) fn dot_acc(self, acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
        assert!(a.len() == b.len() && a.len().is_multiple_of(LANES), "dot_acc: equal lengths, multiples of 8");
        match self.set.simd {
            Some(simd) => arch::dot_acc(simd, acc, a, b),
            None => portable::dot_acc(acc, a, b),
        }
    }

    /// Quantized weights for several input rows (prefill): each chunk of a weight row is
    /// decoded once into a small stack buffer and used for up to `GROUP` input rows, with
    /// their canonical lanes carried across chunks. `OUTS` weight rows take their turn on one
    /// chunk of the inputs before the next chunk, so that chunk (`GROUP` x `CHUNK` floats,
    /// 16 KiB) stays in the L1 cache while they read it. Every output equals the dot product
    /// of the dequantized row with its input row in this family (= [`Kernels::dot_row`],
    /// what a single row gets), so prefill and decode agree bit for bit.
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
        const OUTS: usize = 8; // weight rows sharing each chunk of the inputs
        let n = x.len() / ic;
        let chunk_bytes = btype.row_bytes(CHUNK);
        // Cache-line aligned: no 32-byte load of a chunk straddles two lines.
        #[repr(align(64))]
        struct Chunk([f32; CHUNK]);
        let (mut wchunk, mut xchunk) = (Chunk([0.0; CHUNK]), Chunk([0.0; CHUNK]));
        let (wbuf, xbuf) = (&mut wchunk.0, &mut xchunk.0);
        // acc[j][r]: the lanes of weight row o0 + j times input row r0 + r.
        let mut acc = [[[0.0f32; LANES]; GROUP]; OUTS];
        for r0 in (0..n).step_by(GROUP) {
            let g = GROUP.min(n - r0);
            for o0 in (0..oc).step_by(OUTS) {
                let outs = OUTS.min(oc - o0);
                acc[..outs].iter_mut().for_each(|a| a[..g].iter_mut().for_each(|l| *l = [0.0; LANES]));
                let mut c0 = 0;
                while c0 < ic {
                    let len = CHUNK.min(ic - c0);
                    // Whole blocks per chunk: CHUNK is a multiple of every block size, and a
                    // row holds whole blocks, so only the last chunk may be shorter.
                    let (b0, b1) = match (chunk_bytes, btype.row_bytes(len)) {
                        (Some(cb), Some(lb)) => (c0 / CHUNK * cb, c0 / CHUNK * cb + lb),
                        _ => unreachable!("rows are whole blocks and CHUNK is a multiple of the block"),
                    };
                    let xr = |r: usize| &x[(r0 + r) * ic + c0..(r0 + r) * ic + c0 + len];
                    for (j, acc) in acc[..outs].iter_mut().enumerate() {
                        let row = &data[(o0 + j) * row_bytes..(o0 + j + 1) * row_bytes];
                        crate::quant::dequantize_row(btype, &row[b0..b1], &mut wbuf[..len]);
                        // A ragged tail (f16/bf16 rows) is zero-padded to 8, as the canonical
                        // dot pads it (0 * 0 is added to the unused lanes).
                        let padded = len.next_multiple_of(LANES);
                        wbuf[len..padded].fill(0.0);
                        let mut r_start = 0;
                        // Whole chunks, where the set has a four-row kernel: four input rows
                        // at a time share each weight load (each row's lanes see exactly the
                        // one-row sequence).
                        if let Some(simd) = self.set.simd.filter(|&s| arch::has_dot_acc4(s))
                            && padded == len
                        {
                            while r_start + 4 <= g {
                                let quad: &mut [[f32; LANES]; 4] = (&mut acc[r_start..r_start + 4]).try_into().expect("four rows");
                                arch::dot_acc4(simd, quad, &wbuf[..len], [xr(r_start), xr(r_start + 1), xr(r_start + 2), xr(r_start + 3)]);
                                r_start += 4;
                            }
                        }
                        for (r, a) in acc[..g].iter_mut().enumerate().skip(r_start) {
                            if padded == len {
                                self.dot_acc(a, &wbuf[..len], xr(r));
                            } else {
                                xbuf[..len].copy_from_slice(xr(r));
                                xbuf[len..padded].fill(0.0);
                                self.dot_acc(a, &wbuf[..padded], &xbuf[..padded]);
                            }
                        }
                    }
                    c0 += len;
                }
                for (j, acc) in acc[..outs].iter().enumerate() {
                    let o = o0 + j;
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
    }

    /// Whether this set has a SIMD kernel of a quantized row of type `t` times f32 activations
    /// (otherwise [`Kernels::dot_row`] runs the portable loop of this set's family).
    pub fn has_simd_dot(self, t: BlockType) -> bool {
        self.set.simd.is_some_and(|s| arch::has_dot_row(s, t))
    }

    /// A quantized row (`t.row_bytes(x.len())` bytes, else panics) times `x` in this set's
    /// family: bit for bit [`portable::dot_row`] (no FMA) or [`portable::dot_row_fma`] (FMA),
    /// with this set's SIMD kernel where one exists.
    pub fn dot_row(self, t: BlockType, row: &[u8], x: &[f32]) -> f32 {
        check_row("dot_row", t, x.len(), row.len());
        if let Some(v) = self.set.simd.and_then(|s| arch::dot_row(s, t, row, x)) {
            return v;
        }
        match self.family() {
            Family::NoFma | Family::NoFmaQ8 => portable::dot_impl::<false>(t, row, x),
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
        self.set.simd.and_then(|s| arch::dot_rows4(s, t, rows, x))
    }

    /// A quantized row times 8-bit activations: bit for bit the portable reference of this
    /// set's family ([`portable::dot_q8`] with FMA, [`portable::dot_q8_nofma`] without), with
    /// this set's SIMD kernel where one exists. Panics unless `t` takes activations in `x`'s block
    /// size and `row` is exactly `x.len()` weights.
    #[inline]
    pub fn dot_q8(self, t: BlockType, row: &[u8], x: Q8Row<'_>) -> f32 {
        portable::check_pair("dot_q8", t, row, &x);
        if let Some(v) = self.set.simd.and_then(|s| arch::dot_q8(s, t, row, x)) {
            return v;
        }
        self.q8_reference()(t, row, x)
    }

    /// Four rows against the same 8-bit activations, each equal bit for bit to
    /// [`Kernels::dot_q8`] of that row.
    #[inline]
    pub fn dot_q8_rows4(self, t: BlockType, rows: [&[u8]; 4], x: Q8Row<'_>) -> [f32; 4] {
        portable::check_pair("dot_q8_rows4", t, rows[0], &x);
        assert!(rows.iter().all(|r| r.len() == rows[0].len()), "dot_q8_rows4: rows of different lengths");
        if let Some(v) = self.set.simd.and_then(|s| arch::dot_q8_rows4(s, t, rows, x)) {
            return v;
        }
        rows.map(|r| self.q8_reference()(t, r, x))
    }

    /// One row against eight rows of 8-bit activations (prefill): `out[i]` equals bit for bit
    /// [`Kernels::dot_q8`] of `row` with `xs[i]`.
    #[inline]
    pub fn dot_q8_x8(self, t: BlockType, row: &[u8], xs: &[Q8Row<'_>; 8]) -> [f32; 8] {
        portable::check_pair("dot_q8_x8", t, row, &xs[0]);
        assert!(xs.iter().all(|x| x.len() == xs[0].len() && x.block() == xs[0].block()), "dot_q8_x8: inputs of different shapes");
        if let Some(v) = self.set.simd.and_then(|s| arch::dot_q8_x8(s, t, row, xs)) {
            return v;
        }
        xs.map(|x| self.q8_reference()(t, row, x))
    }

    /// One row against a panel of eight 8-bit activation rows (`Q8Buf::panel`; prefill):
    /// `out[r]` equals bit for bit [`Kernels::dot_q8`] of `row` with row r of the panel, or
    /// None where this set has no panel kernel for `t` (then the rows go through
    /// [`Kernels::dot_q8_x8`]). Panics unless `t` takes activations in blocks of 32 and `row`
    /// is one weight block per panel block.
    #[inline]
    pub fn dot_q8_panel(self, t: BlockType, row: &[u8], panel: &[PanelBlock]) -> Option<[f32; PANEL_ROWS]> {
        assert_eq!(crate::quant::q8::act_block(t), Some(crate::quant::q8::SUB), "dot_q8_panel: {t:?} takes no activations in blocks of 32");
        assert_eq!(
            t.row_bytes(panel.len() * crate::quant::q8::SUB),
            Some(row.len()),
            "dot_q8_panel: row of {} bytes for {} blocks",
            row.len(),
            panel.len()
        );
        let simd = self.set.simd.filter(|&s| self.q8_block(t).is_some() && arch::has_dot_q8_panel(s, t))?;
        arch::dot_q8_panel(simd, t, row, panel)
    }

    /// One Q4_K / Q5_K / Q6_K row against a k-quant panel of eight 8-bit activation rows
    /// (`Q8Buf::kpanel`; prefill): as [`Kernels::dot_q8_panel`], for activations in blocks of
    /// 256.
    #[inline]
    pub fn dot_q8_kpanel(self, t: BlockType, row: &[u8], panel: &[KPanelBlock]) -> Option<[f32; PANEL_ROWS]> {
        let qk = crate::quant::kquants::QK_K;
        assert_eq!(crate::quant::q8::act_block(t), Some(qk), "dot_q8_kpanel: {t:?} takes no activations in blocks of 256");
        assert_eq!(t.row_bytes(panel.len() * qk), Some(row.len()), "dot_q8_kpanel: row of {} bytes for {} blocks", row.len(), panel.len());
        let simd = self.set.simd.filter(|&s| self.q8_block(t).is_some() && arch::has_dot_q8_kpanel(s, t))?;
        arch::dot_q8_kpanel(simd, t, row, panel)
    }

    /// Four [`Kernels::axpy`] in a row: `out += a[0] * x[0]`, then `a[1] * x[1]`, ... (the
    /// same bits; `out` is read and written once where the set has a kernel for it: the
    /// attention's weighted sum of values).
    pub fn axpy4(self, out: &mut [f32], a: [f32; 4], x: [&[f32]; 4]) {
        assert!(x.iter().all(|r| r.len() == out.len()), "axpy4: vectors of different lengths");
        if self.set.simd.and_then(|s| arch::axpy4(s, out, a, x)).is_none() {
            for (&ai, xr) in a.iter().zip(x) {
                self.axpy(out, ai, xr);
            }
        }
    }

    /// out += a * x, elementwise (fused in the FMA family).
    #[inline]
    pub fn axpy(self, out: &mut [f32], a: f32, x: &[f32]) {
        assert_eq!(out.len(), x.len(), "axpy: vectors of different lengths");
        match self.set.simd {
            Some(simd) => arch::axpy(simd, out, a, x),
            None => portable::axpy(out, a, x),
        }
    }
}
