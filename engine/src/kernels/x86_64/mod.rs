//! x86_64 kernel sets: SSE2 (no FMA, every x86_64 CPU), AVX2+FMA, AVX2+FMA with 8-bit
//! activations, and the same with AVX-VNNI (detected at run time). f32 kernels in `sse2.rs`
//! and `avx2.rs`, quantized rows times f32 in `avx2_blocks.rs`, quantized rows times 8-bit
//! activations (AVX2 or AVX-VNNI) in `avx2_q8.rs`.
//!
//! The dispatch below is the one place that calls this folder's `#[target_feature]` code. A
//! [`Simd`] value reaches it only from a `KernelSet` of [`SETS`] held by a `Kernels`, which
//! exists only after that set's `usable` check passed on this CPU: that is the SAFETY
//! argument of every `unsafe` block here. The callers (`kernels/mod.rs`) have checked every
//! slice length.

pub(crate) mod avx2;
pub(crate) mod avx2_blocks;
pub(crate) mod avx2_q8;
pub(crate) mod sse2;

use super::{Family, KernelSet, LANES};
use crate::cpu::CpuFeatures;
use crate::quant::BlockType;
use crate::quant::q8::Q8Row;
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

/// The instruction set of an x86_64 kernel set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::kernels) enum Simd {
    /// SSE2 (no-FMA family): part of every x86_64 CPU.
    Sse2,
    /// AVX2 with FMA (the FMA family, and the 8-bit family's f32 parts).
    Avx2,
    /// AVX2 with FMA and AVX-VNNI (only in the 8-bit family, whose integer products it
    /// computes with `vpdpbusd`: the same sums, so the same bits as [`Simd::Avx2`]).
    Avx2Vnni,
}

/// The x86_64 sets, slowest first.
pub(in crate::kernels) static SETS: [KernelSet; 4] = [
    KernelSet { name: "sse2", description: "SSE2 (no FMA)", family: Family::NoFma, usable: |_| true, simd: Some(Simd::Sse2) },
    KernelSet { name: "avx2", description: "AVX2+FMA", family: Family::Fma, usable: CpuFeatures::avx2_fma_usable, simd: Some(Simd::Avx2) },
    KernelSet {
        name: "avx2-q8",
        description: "AVX2+FMA, 8-bit activations",
        family: Family::FmaQ8,
        usable: CpuFeatures::avx2_fma_usable,
        simd: Some(Simd::Avx2),
    },
    KernelSet {
        name: "avx-vnni",
        description: "AVX2+FMA+VNNI, 8-bit activations",
        family: Family::FmaQ8,
        usable: CpuFeatures::avx_vnni_usable,
        simd: Some(Simd::Avx2Vnni),
    },
];

pub(in crate::kernels) fn dot(simd: Simd, a: &[f32], b: &[f32]) -> f32 {
    match simd {
        // SAFETY: SSE2 is part of every x86_64 CPU; equal lengths checked by the caller.
        Simd::Sse2 => unsafe { sse2::dot_sse2(a, b) },
        // SAFETY: AVX2+FMA usable (module docs); equal lengths checked by the caller.
        Simd::Avx2 | Simd::Avx2Vnni => unsafe { avx2::dot_avx2(a, b) },
    }
}

pub(in crate::kernels) fn matmul(simd: Simd, out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    match simd {
        // SAFETY: SSE2 is part of every x86_64 CPU; every length checked by the caller.
        Simd::Sse2 => unsafe { sse2::matmul_sse2(out, x, w, bias, ic, oc) },
        // SAFETY: AVX2+FMA usable (module docs); every length checked by the caller.
        Simd::Avx2 | Simd::Avx2Vnni => unsafe { avx2::matmul_avx2(out, x, w, bias, ic, oc) },
    }
}

pub(in crate::kernels) fn dot_acc(simd: Simd, acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    match simd {
        // SAFETY: SSE2 is part of every x86_64 CPU; lengths checked by the caller.
        Simd::Sse2 => unsafe { sse2::dot_acc_sse2(acc, a, b) },
        // SAFETY: AVX2+FMA usable (module docs); equal lengths, multiples of 8, checked by the
        // caller.
        Simd::Avx2 | Simd::Avx2Vnni => unsafe { avx2::dot_acc_avx2(acc, a, b) },
    }
}

/// Whether [`dot_acc4`] has a kernel for this set.
pub(in crate::kernels) fn has_dot_acc4(simd: Simd) -> bool {
    matches!(simd, Simd::Avx2 | Simd::Avx2Vnni)
}

/// Four input rows against one weight chunk (only where [`has_dot_acc4`]).
pub(in crate::kernels) fn dot_acc4(simd: Simd, acc: &mut [[f32; LANES]; 4], w: &[f32], x: [&[f32]; 4]) {
    assert!(has_dot_acc4(simd), "dot_acc4: no four-row kernel in {simd:?}");
    // SAFETY: AVX2+FMA usable (module docs); all slices have the same length, a multiple of
    // 8, checked by the caller.
    unsafe { avx2::dot_acc4_avx2(acc, w, x) }
}

pub(in crate::kernels) fn axpy(simd: Simd, out: &mut [f32], a: f32, x: &[f32]) {
    match simd {
        // SSE2 has no kernel of its own: the portable loop is already the no-FMA order.
        Simd::Sse2 => super::portable::axpy(out, a, x),
        // SAFETY: AVX2+FMA usable (module docs); equal lengths checked by the caller.
        Simd::Avx2 | Simd::Avx2Vnni => unsafe { avx2::axpy_avx2(out, a, x) },
    }
}

/// Whether [`dot_row`] has a kernel for `t` in this set.
pub(in crate::kernels) fn has_dot_row(simd: Simd, t: BlockType) -> bool {
    matches!(simd, Simd::Avx2 | Simd::Avx2Vnni) && matches!(t, BlockType::Q8_0 | BlockType::Q5_0 | BlockType::Q4_K | BlockType::Q6_K)
}

pub(in crate::kernels) fn dot_row(simd: Simd, t: BlockType, row: &[u8], x: &[f32]) -> Option<f32> {
    match simd {
        Simd::Sse2 => None,
        // SAFETY: AVX2+FMA usable (module docs); the row length checked by the caller.
        Simd::Avx2 | Simd::Avx2Vnni => unsafe { avx2_blocks::dot_row(t, row, x) },
    }
}

pub(in crate::kernels) fn dot_rows4(simd: Simd, t: BlockType, rows: [&[u8]; 4], x: &[f32]) -> Option<[f32; 4]> {
    match simd {
        Simd::Sse2 => None,
        // SAFETY: AVX2+FMA usable (module docs); every row length checked by the caller.
        Simd::Avx2 | Simd::Avx2Vnni => unsafe { avx2_blocks::dot_rows4(t, rows, x) },
    }
}

pub(in crate::kernels) fn dot_q8(simd: Simd, t: BlockType, row: &[u8], x: Q8Row<'_>) -> Option<f32> {
    match simd {
        Simd::Sse2 => None,
        // SAFETY: AVX2+FMA (and AVX-VNNI for Avx2Vnni) usable (module docs); the row and the
        // activations checked by the caller.
        Simd::Avx2 | Simd::Avx2Vnni => unsafe { avx2_q8::dot(simd == Simd::Avx2Vnni, t, row, x) },
    }
}

pub(in crate::kernels) fn dot_q8_rows4(simd: Simd, t: BlockType, rows: [&[u8]; 4], x: Q8Row<'_>) -> Option<[f32; 4]> {
    match simd {
        Simd::Sse2 => None,
        // SAFETY: as for `dot_q8`; every row checked by the caller.
        Simd::Avx2 | Simd::Avx2Vnni => unsafe { avx2_q8::dot4(simd == Simd::Avx2Vnni, t, rows, x) },
    }
}

pub(in crate::kernels) fn dot_q8_tile<const N: usize, const R: usize>(
    simd: Simd,
    t: BlockType,
    rows: [&[u8]; N],
    xs: [Q8Row<'_>; R],
) -> Option<[[f32; N]; R]> {
    match simd {
        Simd::Sse2 => None,
        // SAFETY: as for `dot_q8`; every row and input checked by the caller.
        Simd::Avx2 | Simd::Avx2Vnni => unsafe { avx2_q8::dot_tile(simd == Simd::Avx2Vnni, t, rows, xs) },
    }
}
