//! AVX2+FMA kernels (the FMA family), in the canonical order of `kernels::portable`.
//!
//! Only `Kernels` calls these, after checking every slice length and only when its ISA is
//! AVX2, which it sets only after `CpuFeatures::avx2_fma_usable` said yes (on bare metal the
//! firmware application enables AVX in CR4/XCR0 first).

use super::sse_combine;
use crate::kernels::LANES;
use core::arch::x86_64::*;

/// The canonical combine in registers: (l0+l4, l1+l5, l2+l6, l3+l7), then
/// ((l0+l4)+(l2+l6)) and ((l1+l5)+(l3+l7)), then their sum: `combine_lanes`' exact order.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(acc: __m256) -> f32 {
    // SAFETY: the caller guarantees AVX2+FMA (this function's contract); every pointer
    // load and store stays within the slices, whose lengths the caller checked.
    unsafe { sse_combine(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc)) }
}

/// Loads up to 8 floats, zero-filling the unused lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_tail(s: &[f32]) -> __m256 {
    // SAFETY: the caller guarantees AVX2+FMA (this function's contract); every pointer
    // load and store stays within the slices, whose lengths the caller checked.
    unsafe {
        let mut buf = [0.0f32; LANES];
        buf[..s.len()].copy_from_slice(s);
        _mm256_loadu_ps(buf.as_ptr())
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA with the AVX state enabled ([`avx2_fma_usable`]).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: the caller guarantees AVX2+FMA (this function's contract); every pointer
    // load and store stays within the slices, whose lengths the caller checked.
    unsafe {
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
}

/// out (N, OC) = x (N, IC) @ w (OC, IC)^T + bias, blocked 2 rows of x by 4 rows of w (8
/// accumulators: each weight load serves two tokens, each x load four outputs). Every
/// output keeps its own accumulator, so the order per element equals `dot_avx2`, and prefill
/// (N > 1) gives the same numbers as decoding one token at a time.
///
/// # Safety
/// As for [`dot_avx2`]; `w` holds OC rows of IC and `out` N rows of OC.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn matmul_avx2(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    // SAFETY: the caller guarantees AVX2+FMA (this function's contract); every pointer
    // load and store stays within the slices, whose lengths the caller checked.
    unsafe {
        let n = x.len() / ic;
        let mut r = 0;
        while r + 2 <= n {
            matmul_rows2(&mut out[r * oc..(r + 2) * oc], &x[r * ic..(r + 2) * ic], w, bias, ic, oc);
            r += 2;
        }
        if r < n {
            matmul_row1(&mut out[r * oc..(r + 1) * oc], &x[r * ic..(r + 1) * ic], w, bias, ic, oc);
        }
    }
}

#[inline]
fn with_bias(bias: Option<&[f32]>, o: usize, v: f32) -> f32 {
    match bias {
        Some(b) => v + b[o],
        None => v,
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn matmul_rows2(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    // SAFETY: the caller guarantees AVX2+FMA (this function's contract); every pointer
    // load and store stays within the slices, whose lengths the caller checked.
    unsafe {
        let chunks = ic / LANES;
        let rest = chunks * LANES;
        let (x0, x1) = (x.as_ptr(), x.as_ptr().add(ic));
        let (t0, t1) =
            if rest < ic { (load_tail(&x[rest..ic]), load_tail(&x[ic + rest..])) } else { (_mm256_setzero_ps(), _mm256_setzero_ps()) };
        let mut o = 0;
        while o + 4 <= oc {
            let wp = [w.as_ptr().add(o * ic), w.as_ptr().add((o + 1) * ic), w.as_ptr().add((o + 2) * ic), w.as_ptr().add((o + 3) * ic)];
            let mut a = [[_mm256_setzero_ps(); 4]; 2];
            for c in 0..chunks {
                let xa = _mm256_loadu_ps(x0.add(c * LANES));
                let xb = _mm256_loadu_ps(x1.add(c * LANES));
                for k in 0..4 {
                    let wv = _mm256_loadu_ps(wp[k].add(c * LANES));
                    a[0][k] = _mm256_fmadd_ps(xa, wv, a[0][k]);
                    a[1][k] = _mm256_fmadd_ps(xb, wv, a[1][k]);
                }
            }
            if rest < ic {
                for k in 0..4 {
                    let wv = load_tail(&w[(o + k) * ic + rest..(o + k + 1) * ic]);
                    a[0][k] = _mm256_fmadd_ps(t0, wv, a[0][k]);
                    a[1][k] = _mm256_fmadd_ps(t1, wv, a[1][k]);
                }
            }
            for k in 0..4 {
                out[o + k] = with_bias(bias, o + k, hsum(a[0][k]));
                out[oc + o + k] = with_bias(bias, o + k, hsum(a[1][k]));
            }
            o += 4;
        }
        while o < oc {
            let wr = &w[o * ic..(o + 1) * ic];
            out[o] = with_bias(bias, o, dot_avx2(&x[..ic], wr));
            out[oc + o] = with_bias(bias, o, dot_avx2(&x[ic..], wr));
            o += 1;
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn matmul_row1(orow: &mut [f32], xrow: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    // SAFETY: the caller guarantees AVX2+FMA (this function's contract); every pointer
    // load and store stays within the slices, whose lengths the caller checked.
    unsafe {
        let chunks = ic / LANES;
        let rest = chunks * LANES;
        let px = xrow.as_ptr();
        let xtail = if rest < ic { load_tail(&xrow[rest..]) } else { _mm256_setzero_ps() };
        let mut o = 0;
        while o + 4 <= oc {
            let wp = [w.as_ptr().add(o * ic), w.as_ptr().add((o + 1) * ic), w.as_ptr().add((o + 2) * ic), w.as_ptr().add((o + 3) * ic)];
            let mut a = [_mm256_setzero_ps(); 4];
            for c in 0..chunks {
                let xv = _mm256_loadu_ps(px.add(c * LANES));
                for k in 0..4 {
                    a[k] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(wp[k].add(c * LANES)), a[k]);
                }
            }
            if rest < ic {
                for k in 0..4 {
                    a[k] = _mm256_fmadd_ps(xtail, load_tail(&w[(o + k) * ic + rest..(o + k + 1) * ic]), a[k]);
                }
            }
            for k in 0..4 {
                orow[o + k] = with_bias(bias, o + k, hsum(a[k]));
            }
            o += 4;
        }
        while o < oc {
            orow[o] = with_bias(bias, o, dot_avx2(xrow, &w[o * ic..(o + 1) * ic]));
            o += 1;
        }
    }
}

/// out += a * x with one rounding per element (FMA).
///
/// # Safety
/// As for [`dot_avx2`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn axpy_avx2(out: &mut [f32], a: f32, x: &[f32]) {
    // SAFETY: the caller guarantees AVX2+FMA (this function's contract); every pointer
    // load and store stays within the slices, whose lengths the caller checked.
    unsafe {
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
}

/// Continues a canonical FMA dot product in `acc`; `a.len()` is a multiple of 8 and equals
/// `b.len()` (checked by the caller).
///
/// # Safety
/// As for [`dot_avx2`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_acc_avx2(acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    let chunks = a.len().min(b.len()) / LANES;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // SAFETY: loads stay within a[..chunks*8], b[..chunks*8] and the 8-float `acc`.
    unsafe {
        let mut v = _mm256_loadu_ps(acc.as_ptr());
        for c in 0..chunks {
            v = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(c * LANES)), _mm256_loadu_ps(pb.add(c * LANES)), v);
        }
        _mm256_storeu_ps(acc.as_mut_ptr(), v);
    }
}

/// Four canonical FMA dot products sharing `w`: acc[r] continues with w . x[r], each exactly
/// as [`dot_acc_avx2`] would (four independent chains; `w` loaded once). All slices have
/// `w.len()` elements, a multiple of 8 (checked by the caller).
///
/// # Safety
/// As for [`dot_avx2`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_acc4_avx2(acc: &mut [[f32; LANES]; 4], w: &[f32], x: [&[f32]; 4]) {
    let chunks = w.len() / LANES;
    let n = x.iter().map(|r| r.len()).min().unwrap_or(0).min(w.len()) / LANES;
    let chunks = chunks.min(n);
    // SAFETY: loads stay within w[..chunks*8], each x[r][..chunks*8] and the 8-float acc rows.
    unsafe {
        let mut v = [
            _mm256_loadu_ps(acc[0].as_ptr()),
            _mm256_loadu_ps(acc[1].as_ptr()),
            _mm256_loadu_ps(acc[2].as_ptr()),
            _mm256_loadu_ps(acc[3].as_ptr()),
        ];
        let pw = w.as_ptr();
        let px = [x[0].as_ptr(), x[1].as_ptr(), x[2].as_ptr(), x[3].as_ptr()];
        for c in 0..chunks {
            let wv = _mm256_loadu_ps(pw.add(c * LANES));
            for r in 0..4 {
                v[r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(px[r].add(c * LANES)), v[r]);
            }
        }
        for r in 0..4 {
            _mm256_storeu_ps(acc[r].as_mut_ptr(), v[r]);
        }
    }
}
