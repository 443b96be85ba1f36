//! x86_64 kernels: SSE2 (no FMA, every x86_64 CPU) and AVX2+FMA (detected at run time): f32
//! (`sse2.rs`, `avx2.rs`), quantized rows times f32 (`avx2_blocks.rs`), quantized rows times
//! 8-bit activations with AVX2 or AVX-VNNI (`avx2_q8.rs`).

pub(crate) mod avx2;
pub(crate) mod avx2_blocks;
pub(crate) mod avx2_q8;
pub(crate) mod sse2;

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
