//! x86_64 kernel sets: SSE2 (no FMA, every x86_64 CPU), SSSE3 with 8-bit activations (no
//! FMA), AVX2+FMA, AVX2+FMA with 8-bit activations, and the same with AVX-VNNI or with
//! AVX-512 VNNI on 256-bit vectors (detected at run time). f32 kernels in `sse2.rs` and
//! `avx2.rs`, quantized rows times f32 in `avx2_blocks.rs`, quantized rows times 8-bit
//! activations in `ssse3_q8.rs` (no FMA) and `avx2_q8.rs` (AVX2, AVX-VNNI or AVX-512 VNNI).
//!
//! **A set is data**: its kernel file defines one [`Ops`] table (the set's
//! `#[target_feature]` functions, `None` where it has no kernel of that shape and the
//! ISA-neutral driver runs the portable loop of its family), and [`SETS`] lists it with its
//! name, family and `usable` check. A new set (say AVX-512) is its file, its `mod` line and
//! its `SETS` line: the dispatch below has one function per entry point, not one arm per set.
//!
//! The dispatch is the one place that calls this folder's `#[target_feature]` code. A
//! [`Simd`] value reaches it only from a `KernelSet` of [`SETS`] held by a `Kernels`, which
//! exists only after that set's `usable` check passed on this CPU: that is the SAFETY
//! argument of every `unsafe` block here. The callers (`kernels/mod.rs`) have checked every
//! slice length.

pub(crate) mod avx2;
pub(crate) mod avx2_blocks;
pub(crate) mod avx2_q8;
pub(crate) mod sse2;
pub(crate) mod ssse3_q8;

use super::{Family, KernelSet, LANES};
use crate::cpu::CpuFeatures;
use crate::quant::BlockType;
use crate::quant::q8::{KPanelBlock, PANEL_ROWS, PanelBlock, Q8Row};
use core::arch::x86_64::*;

/// The canonical combine of 8 lanes held as (l0..l3, l4..l7): (l0+l4, l1+l5, l2+l6, l3+l7),
/// then ((l0+l4)+(l2+l6)) and ((l1+l5)+(l3+l7)), then their sum: `portable::combine_lanes`.
#[inline]
pub(crate) unsafe fn sse_combine(lo: __m128, hi: __m128) -> f32 {
    // SAFETY: SSE is part of x86_64; register-only operations.
    unsafe {
        let a = _mm_add_ps(lo, hi); // [l0+l4, l1+l5, l2+l6, l3+l7]
        let b = _mm_add_ps(a, _mm_movehl_ps(a, a)); // [a0+a2, a1+a3, ..]
        _mm_cvtss_f32(_mm_add_ss(b, _mm_shuffle_ps::<1>(b, b)))
    }
}

// The signatures of the entry points (see [`Ops`]).
type MatmulFn = unsafe fn(&mut [f32], &[f32], &[f32], Option<&[f32]>, usize, usize);
type DotAcc4Fn = unsafe fn(&mut [[f32; LANES]; 4], &[f32], [&[f32]; 4]);
type Axpy4Fn = unsafe fn(&mut [f32], [f32; 4], [&[f32]; 4]);
type DotRowFn = unsafe fn(BlockType, &[u8], &[f32]) -> Option<f32>;
type DotRows4Fn = unsafe fn(BlockType, [&[u8]; 4], &[f32]) -> Option<[f32; 4]>;
type DotQ8Fn = unsafe fn(BlockType, &[u8], Q8Row<'_>) -> Option<f32>;
type DotQ8Rows4Fn = unsafe fn(BlockType, [&[u8]; 4], Q8Row<'_>) -> Option<[f32; 4]>;
type DotQ8X8Fn = unsafe fn(BlockType, &[u8], &[Q8Row<'_>; 8]) -> Option<[f32; 8]>;
type DotQ8PanelFn = unsafe fn(BlockType, &[u8], &[PanelBlock]) -> Option<[f32; PANEL_ROWS]>;
type DotQ8KPanelFn = unsafe fn(BlockType, &[u8], &[KPanelBlock]) -> Option<[f32; PANEL_ROWS]>;

/// The entry points of one x86_64 kernel set. Every function may be called only when the
/// set's `usable` check passed on this CPU, with the lengths `kernels/mod.rs` checks (its
/// entry point of the same name says which).
#[derive(Debug)]
pub(in crate::kernels) struct Ops {
    /// f32 dot product (the canonical 8-lane order of the set's family).
    pub dot: unsafe fn(&[f32], &[f32]) -> f32,
    /// `out[r*oc + o] = dot(x row r, w row o) (+ bias[o])`.
    pub matmul: MatmulFn,
    /// Continues a dot product in 8 lanes (chunks of a multiple of 8).
    pub dot_acc: unsafe fn(&mut [f32; LANES], &[f32], &[f32]),
    /// Four input rows against one weight chunk.
    pub dot_acc4: Option<DotAcc4Fn>,
    /// `out += a * x`.
    pub axpy: unsafe fn(&mut [f32], f32, &[f32]),
    /// Four `axpy` in a row (`out += a[0] * x[0]`, then `a[1] * x[1]`, ...).
    pub axpy4: Option<Axpy4Fn>,
    /// The block types `dot_row` has a kernel for.
    pub dot_row_types: &'static [BlockType],
    /// A quantized row times f32 activations (None for a type outside `dot_row_types`).
    pub dot_row: Option<DotRowFn>,
    /// Four quantized rows times the same f32 activations.
    pub dot_rows4: Option<DotRows4Fn>,
    /// A quantized row times 8-bit activations.
    pub dot_q8: Option<DotQ8Fn>,
    /// Four quantized rows times the same 8-bit activations.
    pub dot_q8_rows4: Option<DotQ8Rows4Fn>,
    /// One quantized row times eight rows of 8-bit activations (prefill).
    pub dot_q8_x8: Option<DotQ8X8Fn>,
    /// The block types `dot_q8_panel` has a kernel for.
    pub dot_q8_panel_types: &'static [BlockType],
    /// One quantized row times a panel of eight interleaved activation rows (prefill).
    pub dot_q8_panel: Option<DotQ8PanelFn>,
    /// The block types `dot_q8_kpanel` has a kernel for.
    pub dot_q8_kpanel_types: &'static [BlockType],
    /// One k-quant row times a k-quant panel of eight activation rows (prefill).
    pub dot_q8_kpanel: Option<DotQ8KPanelFn>,
}

/// A usable x86_64 set's entry points.
pub(in crate::kernels) type Simd = &'static Ops;

/// The x86_64 sets, slowest first.
pub(in crate::kernels) static SETS: [KernelSet; 6] = [
    KernelSet { name: "sse2", description: "SSE2 (no FMA)", family: Family::NoFma, usable: |_| true, simd: Some(&sse2::OPS) },
    KernelSet {
        name: "ssse3-q8",
        description: "SSSE3 (no FMA), 8-bit activations",
        family: Family::NoFmaQ8,
        usable: |cpu| cpu.ssse3,
        simd: Some(&ssse3_q8::OPS),
    },
    KernelSet { name: "avx2", description: "AVX2+FMA", family: Family::Fma, usable: CpuFeatures::avx2_fma_usable, simd: Some(&avx2::OPS) },
    KernelSet {
        name: "avx2-q8",
        description: "AVX2+FMA, 8-bit activations",
        family: Family::FmaQ8,
        usable: CpuFeatures::avx2_fma_usable,
        simd: Some(&avx2::OPS),
    },
    KernelSet {
        name: "avx-vnni",
        description: "AVX2+FMA+VNNI, 8-bit activations",
        family: Family::FmaQ8,
        usable: CpuFeatures::avx_vnni_usable,
        simd: Some(&avx2_q8::VNNI_OPS),
    },
    KernelSet {
        name: "avx512-vnni",
        description: "AVX2+FMA+AVX-512 VNNI (256-bit), 8-bit activations",
        family: Family::FmaQ8,
        usable: CpuFeatures::avx512_vnni_usable,
        simd: Some(&avx2_q8::AVX512_OPS),
    },
];

pub(in crate::kernels) fn dot(simd: Simd, a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: `simd` is a usable set's (module docs); equal lengths checked by the caller.
    unsafe { (simd.dot)(a, b) }
}

pub(in crate::kernels) fn matmul(simd: Simd, out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    // SAFETY: `simd` is a usable set's (module docs); every length checked by the caller.
    unsafe { (simd.matmul)(out, x, w, bias, ic, oc) }
}

pub(in crate::kernels) fn dot_acc(simd: Simd, acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    // SAFETY: `simd` is a usable set's (module docs); equal lengths, multiples of 8, checked
    // by the caller.
    unsafe { (simd.dot_acc)(acc, a, b) }
}

/// Whether [`dot_acc4`] has a kernel for this set.
pub(in crate::kernels) fn has_dot_acc4(simd: Simd) -> bool {
    simd.dot_acc4.is_some()
}

/// Four input rows against one weight chunk (only where [`has_dot_acc4`]).
pub(in crate::kernels) fn dot_acc4(simd: Simd, acc: &mut [[f32; LANES]; 4], w: &[f32], x: [&[f32]; 4]) {
    let f = simd.dot_acc4.expect("dot_acc4: no four-row kernel in this set");
    // SAFETY: `simd` is a usable set's (module docs); all slices have the same length, a
    // multiple of 8, checked by the caller.
    unsafe { f(acc, w, x) }
}

pub(in crate::kernels) fn axpy(simd: Simd, out: &mut [f32], a: f32, x: &[f32]) {
    // SAFETY: `simd` is a usable set's (module docs); equal lengths checked by the caller.
    unsafe { (simd.axpy)(out, a, x) }
}

/// Four `axpy` in a row, where the set has a kernel for it (else None, nothing done).
pub(in crate::kernels) fn axpy4(simd: Simd, out: &mut [f32], a: [f32; 4], x: [&[f32]; 4]) -> Option<()> {
    // SAFETY: `simd` is a usable set's (module docs); equal lengths checked by the caller.
    simd.axpy4.map(|f| unsafe { f(out, a, x) })
}

/// Whether [`dot_row`] has a kernel for `t` in this set.
pub(in crate::kernels) fn has_dot_row(simd: Simd, t: BlockType) -> bool {
    simd.dot_row.is_some() && simd.dot_row_types.contains(&t)
}

pub(in crate::kernels) fn dot_row(simd: Simd, t: BlockType, row: &[u8], x: &[f32]) -> Option<f32> {
    // SAFETY: `simd` is a usable set's (module docs); the row length checked by the caller.
    simd.dot_row.and_then(|f| unsafe { f(t, row, x) })
}

pub(in crate::kernels) fn dot_rows4(simd: Simd, t: BlockType, rows: [&[u8]; 4], x: &[f32]) -> Option<[f32; 4]> {
    // SAFETY: `simd` is a usable set's (module docs); every row length checked by the caller.
    simd.dot_rows4.and_then(|f| unsafe { f(t, rows, x) })
}

pub(in crate::kernels) fn dot_q8(simd: Simd, t: BlockType, row: &[u8], x: Q8Row<'_>) -> Option<f32> {
    // SAFETY: `simd` is a usable set's (module docs); the row and the activations checked by
    // the caller.
    simd.dot_q8.and_then(|f| unsafe { f(t, row, x) })
}

pub(in crate::kernels) fn dot_q8_rows4(simd: Simd, t: BlockType, rows: [&[u8]; 4], x: Q8Row<'_>) -> Option<[f32; 4]> {
    // SAFETY: as for `dot_q8`; every row checked by the caller.
    simd.dot_q8_rows4.and_then(|f| unsafe { f(t, rows, x) })
}

pub(in crate::kernels) fn dot_q8_x8(simd: Simd, t: BlockType, row: &[u8], xs: &[Q8Row<'_>; 8]) -> Option<[f32; 8]> {
    // SAFETY: as for `dot_q8`; the row and every input checked by the caller.
    simd.dot_q8_x8.and_then(|f| unsafe { f(t, row, xs) })
}

/// Whether [`dot_q8_panel`] has a kernel for `t` in this set.
pub(in crate::kernels) fn has_dot_q8_panel(simd: Simd, t: BlockType) -> bool {
    simd.dot_q8_panel.is_some() && simd.dot_q8_panel_types.contains(&t)
}

pub(in crate::kernels) fn dot_q8_panel(simd: Simd, t: BlockType, row: &[u8], panel: &[PanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: as for `dot_q8`; the row against the panel's blocks checked by the caller.
    simd.dot_q8_panel.and_then(|f| unsafe { f(t, row, panel) })
}

/// Whether [`dot_q8_kpanel`] has a kernel for `t` in this set.
pub(in crate::kernels) fn has_dot_q8_kpanel(simd: Simd, t: BlockType) -> bool {
    simd.dot_q8_kpanel.is_some() && simd.dot_q8_kpanel_types.contains(&t)
}

pub(in crate::kernels) fn dot_q8_kpanel(simd: Simd, t: BlockType, row: &[u8], panel: &[KPanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: as for `dot_q8`; the row against the panel's blocks checked by the caller.
    simd.dot_q8_kpanel.and_then(|f| unsafe { f(t, row, panel) })
}
