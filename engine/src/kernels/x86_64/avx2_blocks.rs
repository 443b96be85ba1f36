//! AVX2+FMA dot products of quantized rows (the FMA family): Q8_0, Q5_0, Q4_K, Q6_K.
//!
//! Each kernel decodes 8 consecutive weights at a time into a register with exactly the
//! roundings of the portable decoder (integer codes convert to f32 exactly; the scale
//! products are the same f32 multiplies; no multiply-add is fused while decoding), then adds
//! `w*x` into ONE 8-lane accumulator with `vfmadd`, in increasing weight order. That is the
//! canonical order of `portable::dot_row_fma`, so the results are equal bit for bit.
//!
//! (In every type here the products of decoding are exact in f32: an f16 scale has at most 11
//! significant bits, a sub-scale (6-bit, or i8 for Q6_K) at most 7 and a code at most 7 more,
//! never over f32's 24; only the final `- dmin*m` of Q4_K rounds. Decoding with a fused multiply-subtract would give
//! the same bits; the kernels keep the separate operations anyway, matching the reference
//! literally.)
//!
//! Only `Kernels::dot_row` calls [`dot_row`], after checking the row length and only with
//! an AVX2 `Kernels` (which exists only when `CpuFeatures::avx2_fma_usable` said yes).

use super::avx2::hsum;
use crate::kernels::LANES;
use crate::quant::BlockType;
use crate::quant::kquants::{BlockQ4K, BlockQ6K, QK_K, k_factors, q6_k_factors};
use crate::quant::legacy::{BlockQ5_0, BlockQ8_0, QK};
use core::arch::x86_64::*;

/// The types [`dot_row`] has a kernel for.
pub(super) const TYPES: [BlockType; 4] = [BlockType::Q8_0, BlockType::Q5_0, BlockType::Q4_K, BlockType::Q6_K];

/// The dot product of `row` (exactly `t.row_bytes(x.len())` bytes) with `x`, if this module
/// has a kernel for `t`.
///
/// # Safety
/// The CPU must support AVX2 and FMA with the AVX state enabled (`avx2_fma_usable`).
pub(crate) unsafe fn dot_row(t: BlockType, row: &[u8], x: &[f32]) -> Option<f32> {
    // SAFETY: the caller guarantees AVX2+FMA; the kernels only index slices (bounds-checked)
    // and load through pointers to slices of the loaded length.
    unsafe {
        match t {
            BlockType::Q8_0 => Some(dot_q8_0(row, x)),
            BlockType::Q5_0 => Some(dot_q5_0(row, x)),
            BlockType::Q4_K => Some(dot_q4_k(row, x)),
            BlockType::Q6_K => Some(dot_q6_k(row, x)),
            _ => None,
        }
    }
}

/// Four rows of one type against the same `x`, each equal bit for bit to [`dot_row`] of that
/// row, if this module has a multi-row kernel for `t`.
///
/// # Safety
/// As for [`dot_row`]; every row is exactly `t.row_bytes(x.len())` bytes (checked by the
/// caller).
pub(crate) unsafe fn dot_rows4(t: BlockType, rows: [&[u8]; 4], x: &[f32]) -> Option<[f32; 4]> {
    // SAFETY: as for `dot_row`.
    unsafe {
        match t {
            BlockType::Q8_0 => Some(dot_q8_0_rows::<4>(rows, x)),
            BlockType::Q5_0 => Some(dot_q5_0_rows::<4>(rows, x)),
            _ => None,
        }
    }
}

/// 8 bytes `b[0..8]` widened to 8 u32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn bytes8(b: &[u8]) -> __m256i {
    let v = i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v))
}

/// `x[0..8]` as a vector (panics if shorter).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load8(x: &[f32]) -> __m256 {
    let x = &x[..LANES];
    // SAFETY: `x` has exactly 8 floats; unaligned load.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn low_nibbles(v: __m256i) -> __m256i {
    _mm256_and_si256(v, _mm256_set1_epi32(0x0f))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn high_nibbles(v: __m256i) -> __m256i {
    _mm256_srli_epi32::<4>(v)
}

#[target_feature(enable = "avx2,fma")]
fn dot_q8_0(row: &[u8], x: &[f32]) -> f32 {
    dot_q8_0_rows::<1>([row], x)[0]
}

/// N rows against the same `x`: each row keeps its own accumulator and sees exactly the
/// single-row sequence of operations (same bits), while the N independent chains hide the
/// FMA latency and share the loads of `x`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn dot_q8_0_rows<const N: usize>(rows: [&[u8]; N], x: &[f32]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    for (bi, xs) in x.chunks_exact(QK).enumerate() {
        let xv = [load8(&xs[0..]), load8(&xs[8..]), load8(&xs[16..]), load8(&xs[24..])];
        for r in 0..N {
            let b = BlockQ8_0::new(&rows[r][BlockQ8_0::BYTES * bi..BlockQ8_0::BYTES * (bi + 1)]);
            let d = _mm256_set1_ps(b.d());
            let (groups, _) = b.qs().as_chunks::<8>();
            for (s, &xg) in groups.iter().zip(&xv) {
                let q = _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(i64::from_le_bytes(*s)));
                let w = _mm256_mul_ps(_mm256_cvtepi32_ps(q), d);
                acc[r] = _mm256_fmadd_ps(w, xg, acc[r]);
            }
        }
    }
    acc.map(|a| hsum(a))
}

#[target_feature(enable = "avx2,fma")]
fn dot_q5_0(row: &[u8], x: &[f32]) -> f32 {
    dot_q5_0_rows::<1>([row], x)[0]
}

/// As [`dot_q8_0_rows`], for Q5_0.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn dot_q5_0_rows<const N: usize>(rows: [&[u8]; N], x: &[f32]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let lane_bits = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (bi, xs) in x.chunks_exact(QK).enumerate() {
        let xv = [load8(&xs[0..]), load8(&xs[8..]), load8(&xs[16..]), load8(&xs[24..])];
        for r in 0..N {
            let b = BlockQ5_0::new(&rows[r][BlockQ5_0::BYTES * bi..BlockQ5_0::BYTES * (bi + 1)]);
            let d = _mm256_set1_ps(b.d());
            let qh = _mm256_set1_epi32(b.qh() as i32);
            let qs = b.qs();
            // Weights 8g..8g+8: nibbles of qs[8(g&1)..], low for g < 2; bits 8g.. of qh.
            for g in 0..4 {
                let bytes = bytes8(&qs[8 * (g & 1)..]);
                let nib = if g < 2 { low_nibbles(bytes) } else { high_nibbles(bytes) };
                let shifts = _mm256_add_epi32(lane_bits, _mm256_set1_epi32(8 * g as i32));
                let hi = _mm256_and_si256(_mm256_srlv_epi32(qh, shifts), _mm256_set1_epi32(1));
                let q = _mm256_sub_epi32(_mm256_or_si256(nib, _mm256_slli_epi32::<4>(hi)), _mm256_set1_epi32(16));
                let w = _mm256_mul_ps(_mm256_cvtepi32_ps(q), d);
                acc[r] = _mm256_fmadd_ps(w, xv[g], acc[r]);
            }
        }
    }
    acc.map(|a| hsum(a))
}

#[target_feature(enable = "avx2,fma")]
fn dot_q4_k(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (b, xs) in row.chunks_exact(BlockQ4K::BYTES).zip(x.chunks_exact(QK_K)) {
        let b = BlockQ4K::new(b);
        let (ds, ms) = k_factors(b.d(), b.dmin(), b.scales());
        let qs = b.qs();
        for c in 0..4 {
            for half in 0..2 {
                let j = 2 * c + half;
                let (dv, mv) = (_mm256_set1_ps(ds[j]), _mm256_set1_ps(ms[j]));
                for g in 0..4 {
                    let bytes = bytes8(&qs[32 * c + 8 * g..]);
                    let q = if half == 0 { low_nibbles(bytes) } else { high_nibbles(bytes) };
                    // (d*sc)*q - dmin*m: multiply, then subtract (not fused).
                    let w = _mm256_sub_ps(_mm256_mul_ps(dv, _mm256_cvtepi32_ps(q)), mv);
                    acc = _mm256_fmadd_ps(w, load8(&xs[64 * c + 32 * half + 8 * g..]), acc);
                }
            }
        }
    }
    hsum(acc)
}

#[target_feature(enable = "avx2,fma")]
fn dot_q6_k(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (b, xs) in row.chunks_exact(BlockQ6K::BYTES).zip(x.chunks_exact(QK_K)) {
        let b = BlockQ6K::new(b);
        let (ql, qh) = (b.ql(), b.qh());
        let ds = q6_k_factors(b);
        for h in 0..2 {
            for g in 0..4 {
                let shift = _mm_cvtsi32_si128(2 * g as i32);
                for k in 0..4 {
                    let lb = bytes8(&ql[64 * h + 32 * (g & 1) + 8 * k..]);
                    let low = if g < 2 { low_nibbles(lb) } else { high_nibbles(lb) };
                    let high = _mm256_and_si256(_mm256_srl_epi32(bytes8(&qh[32 * h + 8 * k..]), shift), _mm256_set1_epi32(3));
                    let q = _mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32::<4>(high)), _mm256_set1_epi32(32));
                    let e = 128 * h + 32 * g + 8 * k;
                    let w = _mm256_mul_ps(_mm256_set1_ps(ds[e / 16]), _mm256_cvtepi32_ps(q));
                    acc = _mm256_fmadd_ps(w, load8(&xs[e..]), acc);
                }
            }
        }
    }
    hsum(acc)
}
