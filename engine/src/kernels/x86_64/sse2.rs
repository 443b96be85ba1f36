//! SSE2 kernels: the no-FMA family. Two 4-wide registers hold the 8 canonical lanes (0-3
//! and 4-7); each lane rounds the product then the sum, exactly as `portable::dot`. SSE2 is
//! part of x86_64, so these need no detection. `Kernels` checks every slice length first.
//!
//! As `avx2.rs`: safe `#[target_feature]` functions over rows read as `[f32; 8]` chunks
//! (zipped iterators, no index); the only `unsafe` is the load / store of one such array.

use super::{Ops, sse_combine};
use crate::kernels::{LANES, portable};
use core::arch::x86_64::*;

/// The SSE2 set (`sse2`): f32 kernels only (quantized rows run the portable no-FMA loops);
/// axpy is the portable loop, already the no-FMA order.
pub(super) const OPS: Ops = Ops {
    dot: dot_sse2,
    matmul: matmul_sse2,
    dot_acc: dot_acc_sse2,
    dot_acc4: None,
    axpy: portable::axpy,
    axpy4: None,
    dot_row_types: &[],
    dot_row: None,
    dot_rows4: None,
    dot_q8: None,
    dot_q8_rows4: None,
    dot_q8_x8: None,
    dot_q8_panel_types: &[],
    dot_q8_panel: None,
    dot_q8_kpanel_types: &[],
    dot_q8_kpanel: None,
};

/// Lanes 0-3 and 4-7 of eight floats.
#[inline]
#[target_feature(enable = "sse2")]
fn load(v: &[f32; LANES]) -> (__m128, __m128) {
    // SAFETY: both 4-float loads are inside the 8-float array.
    unsafe { (_mm_loadu_ps(v.as_ptr()), _mm_loadu_ps(v.as_ptr().add(4))) }
}

/// Lanes 0-3 and 4-7 into eight floats.
#[inline]
#[target_feature(enable = "sse2")]
fn store(v: &mut [f32; LANES], lo: __m128, hi: __m128) {
    // SAFETY: both 4-float stores are inside the 8-float array.
    unsafe {
        _mm_storeu_ps(v.as_mut_ptr(), lo);
        _mm_storeu_ps(v.as_mut_ptr().add(4), hi);
    }
}

/// Up to 8 floats, zero-filling the unused lanes.
#[inline]
#[target_feature(enable = "sse2")]
fn load_tail(s: &[f32]) -> (__m128, __m128) {
    let mut buf = [0.0f32; LANES];
    buf[..s.len()].copy_from_slice(s);
    load(&buf)
}

/// The whole 8-float chunks of a row, and the rest.
#[inline(always)]
fn chunks(r: &[f32]) -> (&[[f32; LANES]], &[f32]) {
    r.as_chunks::<LANES>()
}

/// lo += a.lo * b.lo, hi += a.hi * b.hi (product and sum rounded separately).
#[inline]
#[target_feature(enable = "sse2")]
fn mul_add(acc: &mut (__m128, __m128), a: (__m128, __m128), b: (__m128, __m128)) {
    acc.0 = _mm_add_ps(acc.0, _mm_mul_ps(a.0, b.0));
    acc.1 = _mm_add_ps(acc.1, _mm_mul_ps(a.1, b.1));
}

#[inline]
#[target_feature(enable = "sse2")]
fn hsum(acc: (__m128, __m128)) -> f32 {
    // SAFETY: SSE2 is enabled here; register-only operations.
    unsafe { sse_combine(acc.0, acc.1) }
}

/// The canonical no-FMA dot product of two vectors (of equal length, checked by the caller).
#[target_feature(enable = "sse2")]
pub(crate) fn dot_sse2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let ((ca, ta), (cb, tb)) = (chunks(&a[..n]), chunks(&b[..n]));
    let mut acc = (_mm_setzero_ps(), _mm_setzero_ps());
    for (x, y) in ca.iter().zip(cb) {
        mul_add(&mut acc, load(x), load(y));
    }
    if !ta.is_empty() {
        mul_add(&mut acc, load_tail(ta), load_tail(tb));
    }
    hsum(acc)
}

/// out (N, OC) = x (N, IC) @ w (OC, IC)^T + bias: two rows of x share each weight row.
#[target_feature(enable = "sse2")]
pub(crate) fn matmul_sse2(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    let n = x.len() / ic;
    let mut r = 0;
    while r + 2 <= n {
        let ((ca, ta), (cb, tb)) = (chunks(&x[r * ic..(r + 1) * ic]), chunks(&x[(r + 1) * ic..(r + 2) * ic]));
        for o in 0..oc {
            let (cw, tw) = chunks(&w[o * ic..(o + 1) * ic]);
            let (mut a, mut b) = ((_mm_setzero_ps(), _mm_setzero_ps()), (_mm_setzero_ps(), _mm_setzero_ps()));
            for ((xa, xb), wc) in ca.iter().zip(cb).zip(cw) {
                let wv = load(wc);
                mul_add(&mut a, load(xa), wv);
                mul_add(&mut b, load(xb), wv);
            }
            if !tw.is_empty() {
                let wv = load_tail(tw);
                mul_add(&mut a, load_tail(ta), wv);
                mul_add(&mut b, load_tail(tb), wv);
            }
            out[r * oc + o] = with_bias(bias, o, hsum(a));
            out[(r + 1) * oc + o] = with_bias(bias, o, hsum(b));
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
#[target_feature(enable = "sse2")]
pub(crate) fn dot_acc_sse2(acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    let mut v = load(acc);
    for (x, y) in chunks(a).0.iter().zip(chunks(b).0) {
        mul_add(&mut v, load(x), load(y));
    }
    store(acc, v.0, v.1);
}
