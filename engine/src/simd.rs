//! AVX2+FMA versions of the kernels in `kernels.rs`, in the same canonical order.
//!
//! Callers must have checked [`avx2_fma_usable`] (the `KernelSet::Avx2Fma` variant is the
//! proof). On bare metal the firmware application enables AVX in CR4/XCR0 first.

#![allow(unsafe_op_in_unsafe_fn)] // the whole module is SIMD intrinsics on raw pointers

use crate::kernels::{combine_lanes, LANES};
use core::arch::x86_64::*;

/// True when the CPU has AVX2 and FMA and the OS (or our UEFI app) enabled the AVX state.
pub fn avx2_fma_usable() -> bool {
    // CPUID exists on every x86_64 CPU.
    let leaf1 = __cpuid(1);
    let fma = leaf1.ecx & (1 << 12) != 0;
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    let avx = leaf1.ecx & (1 << 28) != 0;
    if !(fma && osxsave && avx) {
        return false;
    }
    // Leaf 0 reports the highest leaf; leaf 7 is only read when present.
    let max_leaf = __cpuid(0).eax;
    if max_leaf < 7 {
        return false;
    }
    let avx2 = __cpuid_count(7, 0).ebx & (1 << 5) != 0;
    // SAFETY: OSXSAVE is set, so XGETBV is enabled.
    let xcr0 = unsafe { xgetbv0() };
    avx2 && xcr0 & 0b110 == 0b110
}

#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    _xgetbv(0)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(acc: __m256) -> f32 {
    let mut lanes = [0.0f32; LANES];
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    combine_lanes(&lanes)
}

/// Loads up to 8 floats, zero-filling the unused lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_tail(s: &[f32]) -> __m256 {
    let mut buf = [0.0f32; LANES];
    buf[..s.len()].copy_from_slice(s);
    _mm256_loadu_ps(buf.as_ptr())
}

#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let chunks = n / LANES;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm256_setzero_ps();
    for c in 0..chunks {
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(c * LANES)), _mm256_loadu_ps(pb.add(c * LANES)), acc);
    }
    let rest = chunks * LANES;
    if rest < n {
        acc = _mm256_fmadd_ps(load_tail(&a[rest..n]), load_tail(&b[rest..n]), acc);
    }
    hsum(acc)
}

/// out (N, OC) = x (N, IC) @ w (OC, IC)^T + bias. Four weight rows share each load of x;
/// every output keeps its own accumulator, so the order per element equals `dot_avx2`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matmul_avx2(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    let chunks = ic / LANES;
    let rest = chunks * LANES;
    let add_bias = |o: usize, v: f32| match bias {
        Some(b) => v + b[o],
        None => v,
    };
    for (xrow, orow) in x.chunks_exact(ic).zip(out.chunks_exact_mut(oc)) {
        let px = xrow.as_ptr();
        let xtail = if rest < ic { load_tail(&xrow[rest..]) } else { _mm256_setzero_ps() };
        let mut o = 0;
        while o + 4 <= oc {
            let w0 = w.as_ptr().add(o * ic);
            let (w1, w2, w3) = (w0.add(ic), w0.add(2 * ic), w0.add(3 * ic));
            let (mut a0, mut a1, mut a2, mut a3) =
                (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
            for c in 0..chunks {
                let xv = _mm256_loadu_ps(px.add(c * LANES));
                a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0.add(c * LANES)), a0);
                a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w1.add(c * LANES)), a1);
                a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w2.add(c * LANES)), a2);
                a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w3.add(c * LANES)), a3);
            }
            if rest < ic {
                let row = |r: usize| &w[(o + r) * ic + rest..(o + r + 1) * ic];
                a0 = _mm256_fmadd_ps(xtail, load_tail(row(0)), a0);
                a1 = _mm256_fmadd_ps(xtail, load_tail(row(1)), a1);
                a2 = _mm256_fmadd_ps(xtail, load_tail(row(2)), a2);
                a3 = _mm256_fmadd_ps(xtail, load_tail(row(3)), a3);
            }
            orow[o] = add_bias(o, hsum(a0));
            orow[o + 1] = add_bias(o + 1, hsum(a1));
            orow[o + 2] = add_bias(o + 2, hsum(a2));
            orow[o + 3] = add_bias(o + 3, hsum(a3));
            o += 4;
        }
        while o < oc {
            orow[o] = add_bias(o, dot_avx2(xrow, &w[o * ic..(o + 1) * ic]));
            o += 1;
        }
    }
}

/// out += a * x with one rounding per element (FMA).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn axpy_avx2(out: &mut [f32], a: f32, x: &[f32]) {
    let n = out.len().min(x.len());
    let chunks = n / LANES;
    let av = _mm256_set1_ps(a);
    let (po, px) = (out.as_mut_ptr(), x.as_ptr());
    for c in 0..chunks {
        let o = po.add(c * LANES);
        _mm256_storeu_ps(o, _mm256_fmadd_ps(av, _mm256_loadu_ps(px.add(c * LANES)), _mm256_loadu_ps(o)));
    }
    for i in chunks * LANES..n {
        out[i] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(x[i]), _mm_set_ss(out[i])));
    }
}
