//! SSE2 kernels: the no-FMA family. Two 4-wide registers hold the 8 canonical lanes (0-3
//! and 4-7); each lane rounds the product then the sum, exactly as `portable::dot`. SSE2 is
//! part of x86_64, so these need no detection. `Kernels` checks every slice length first.

use super::sse_combine;
use crate::kernels::LANES;
use core::arch::x86_64::*;

#[inline]
unsafe fn sse_hsum(lo: __m128, hi: __m128) -> f32 {
    // SAFETY: register-only SSE operations.
    unsafe { sse_combine(lo, hi) }
}

#[inline]
unsafe fn sse_tail(s: &[f32]) -> (__m128, __m128) {
    let mut buf = [0.0f32; LANES];
    buf[..s.len()].copy_from_slice(s);
    // SAFETY: both loads are inside the 8-float local buffer.
    unsafe { (_mm_loadu_ps(buf.as_ptr()), _mm_loadu_ps(buf.as_ptr().add(4))) }
}

pub(crate) fn dot_sse2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let chunks = n / LANES;
    // SAFETY: every load is within a[..chunks*8] / b[..chunks*8] or a padded copy.
    unsafe {
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut lo, mut hi) = (_mm_setzero_ps(), _mm_setzero_ps());
        for c in 0..chunks {
            let (x, y) = (pa.add(c * LANES), pb.add(c * LANES));
            lo = _mm_add_ps(lo, _mm_mul_ps(_mm_loadu_ps(x), _mm_loadu_ps(y)));
            hi = _mm_add_ps(hi, _mm_mul_ps(_mm_loadu_ps(x.add(4)), _mm_loadu_ps(y.add(4))));
        }
        let rest = chunks * LANES;
        if rest < n {
            let (xl, xh) = sse_tail(&a[rest..n]);
            let (yl, yh) = sse_tail(&b[rest..n]);
            lo = _mm_add_ps(lo, _mm_mul_ps(xl, yl));
            hi = _mm_add_ps(hi, _mm_mul_ps(xh, yh));
        }
        sse_hsum(lo, hi)
    }
}

/// out (N, OC) = x (N, IC) @ w (OC, IC)^T + bias: two rows of x share each weight row.
pub(crate) fn matmul_sse2(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    let n = x.len() / ic;
    let chunks = ic / LANES;
    let rest = chunks * LANES;
    let mut r = 0;
    while r + 2 <= n {
        let (xa, xb) = (&x[r * ic..(r + 1) * ic], &x[(r + 1) * ic..(r + 2) * ic]);
        for o in 0..oc {
            let wr = &w[o * ic..(o + 1) * ic];
            // SAFETY: loads stay within the rows (chunks * 8 <= ic) or padded copies.
            let (da, db) = unsafe {
                let (pa, pb, pw) = (xa.as_ptr(), xb.as_ptr(), wr.as_ptr());
                let (mut al, mut ah, mut bl, mut bh) = (_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps());
                for c in 0..chunks {
                    let (wl, wh) = (_mm_loadu_ps(pw.add(c * LANES)), _mm_loadu_ps(pw.add(c * LANES + 4)));
                    al = _mm_add_ps(al, _mm_mul_ps(_mm_loadu_ps(pa.add(c * LANES)), wl));
                    ah = _mm_add_ps(ah, _mm_mul_ps(_mm_loadu_ps(pa.add(c * LANES + 4)), wh));
                    bl = _mm_add_ps(bl, _mm_mul_ps(_mm_loadu_ps(pb.add(c * LANES)), wl));
                    bh = _mm_add_ps(bh, _mm_mul_ps(_mm_loadu_ps(pb.add(c * LANES + 4)), wh));
                }
                if rest < ic {
                    let (wl, wh) = sse_tail(&wr[rest..]);
                    let (xl, xh) = sse_tail(&xa[rest..]);
                    let (yl, yh) = sse_tail(&xb[rest..]);
                    al = _mm_add_ps(al, _mm_mul_ps(xl, wl));
                    ah = _mm_add_ps(ah, _mm_mul_ps(xh, wh));
                    bl = _mm_add_ps(bl, _mm_mul_ps(yl, wl));
                    bh = _mm_add_ps(bh, _mm_mul_ps(yh, wh));
                }
                (sse_hsum(al, ah), sse_hsum(bl, bh))
            };
            out[r * oc + o] = with_bias(bias, o, da);
            out[(r + 1) * oc + o] = with_bias(bias, o, db);
        }
        r += 2;
    }
    if r < n {
        let xr = &x[r * ic..(r + 1) * ic];
        for o in 0..oc {
            out[r * oc + o] = with_bias(bias, o, dot_sse2(xr, &w[o * ic..(o + 1) * ic]));
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

/// Continues a canonical dot product in `acc` (lanes 0-3 and 4-7); `a.len()` is a multiple
/// of 8 and equals `b.len()` (checked by the caller).
pub(crate) fn dot_acc_sse2(acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    let chunks = a.len().min(b.len()) / LANES;
    // SAFETY: every load is within a[..chunks*8] / b[..chunks*8] or the 8-float `acc`.
    unsafe {
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut lo, mut hi) = (_mm_loadu_ps(acc.as_ptr()), _mm_loadu_ps(acc.as_ptr().add(4)));
        for c in 0..chunks {
            let (x, y) = (pa.add(c * LANES), pb.add(c * LANES));
            lo = _mm_add_ps(lo, _mm_mul_ps(_mm_loadu_ps(x), _mm_loadu_ps(y)));
            hi = _mm_add_ps(hi, _mm_mul_ps(_mm_loadu_ps(x.add(4)), _mm_loadu_ps(y.add(4))));
        }
        _mm_storeu_ps(acc.as_mut_ptr(), lo);
        _mm_storeu_ps(acc.as_mut_ptr().add(4), hi);
    }
}
