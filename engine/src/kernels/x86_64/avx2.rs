//! AVX2+FMA kernels (the FMA family), in the canonical order of `kernels::portable`.
//!
//! Safe `#[target_feature]` functions over checked slices: rows are read as `[f32; 8]`
//! chunks (`as_chunks`), so every load is of a whole, bounds-checked array; the only
//! `unsafe` is the load / store of such an array (and the SSE lane combine). Calling them needs AVX2+FMA: only the
//! x86_64 dispatch does, for a `Kernels` whose set passed `CpuFeatures::avx2_fma_usable` (on
//! bare metal the firmware application enables AVX in CR4/XCR0 first), after `Kernels`
//! checked every slice length.

use super::{Ops, avx2_blocks, avx2_q8, sse_combine};
use crate::kernels::LANES;
use core::arch::x86_64::*;

/// The AVX2+FMA set (`avx2`, and `avx2-q8` whose family adds the 8-bit kernels): these f32
/// kernels, the quantized rows of `avx2_blocks.rs` and the 8-bit rows of `avx2_q8.rs`.
pub(super) const OPS: Ops = Ops {
    dot: dot_avx2,
    matmul: matmul_avx2,
    dot_acc: dot_acc_avx2,
    dot_acc4: Some(dot_acc4_avx2),
    axpy: axpy_avx2,
    axpy4: Some(axpy4_avx2),
    dot_row_types: &avx2_blocks::TYPES,
    dot_row: Some(avx2_blocks::dot_row),
    dot_rows4: Some(avx2_blocks::dot_rows4),
    dot_q8: Some(avx2_q8::dot::<{ avx2_q8::AVX2 }>),
    dot_q8_rows4: Some(avx2_q8::dot4::<{ avx2_q8::AVX2 }>),
    dot_q8_x8: Some(avx2_q8::dot_x8::<{ avx2_q8::AVX2 }>),
    dot_q8_panel_types: &avx2_q8::PANEL_TYPES,
    dot_q8_panel: Some(avx2_q8::dot_panel::<{ avx2_q8::AVX2 }>),
    dot_q8_kpanel_types: &avx2_q8::KPANEL_TYPES,
    dot_q8_kpanel: Some(avx2_q8::dot_kpanel::<{ avx2_q8::AVX2 }>),
};

/// Eight floats as a vector.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(v: &[f32; LANES]) -> __m256 {
    // SAFETY: `v` is exactly 8 floats; an unaligned load.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

/// A vector into eight floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(v: &mut [f32; LANES], x: __m256) {
    // SAFETY: `v` is exactly 8 floats; an unaligned store.
    unsafe { _mm256_storeu_ps(v.as_mut_ptr(), x) }
}

/// The canonical combine in registers: (l0+l4, l1+l5, l2+l6, l3+l7), then
/// ((l0+l4)+(l2+l6)) and ((l1+l5)+(l3+l7)), then their sum: `combine_lanes`' exact order.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn hsum(acc: __m256) -> f32 {
    // SAFETY: SSE is part of x86_64; register-only operations.
    unsafe { sse_combine(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc)) }
}

/// Up to 8 floats, zero-filling the unused lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load_tail(s: &[f32]) -> __m256 {
    let mut buf = [0.0f32; LANES];
    buf[..s.len()].copy_from_slice(s);
    load(&buf)
}

/// The canonical FMA dot product of two vectors (of equal length, checked by the caller).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let ((ca, ta), (cb, tb)) = (a[..n].as_chunks::<LANES>(), b[..n].as_chunks::<LANES>());
    let mut acc = _mm256_setzero_ps();
    for (x, y) in ca.iter().zip(cb) {
        acc = _mm256_fmadd_ps(load(x), load(y), acc);
    }
    if !ta.is_empty() {
        acc = _mm256_fmadd_ps(load_tail(ta), load_tail(tb), acc);
    }
    hsum(acc)
}

/// out (N, OC) = x (N, IC) @ w (OC, IC)^T + bias, blocked 2 rows of x by 4 rows of w (8
/// accumulators: each weight load serves two tokens, each x load four outputs). Every
/// output keeps its own accumulator, so the order per element equals `dot_avx2`, and prefill
/// (N > 1) gives the same numbers as decoding one token at a time. `w` holds OC rows of IC
/// and `out` N rows of OC (checked by the caller).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn matmul_avx2(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
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

#[inline]
fn with_bias(bias: Option<&[f32]>, o: usize, v: f32) -> f32 {
    match bias {
        Some(b) => v + b[o],
        None => v,
    }
}

/// Weight rows o..o+4 as `chunks` whole chunks each, and their tails.
#[inline]
fn rows4(w: &[f32], o: usize, ic: usize, chunks: usize) -> ([&[[f32; LANES]]; 4], [&[f32]; 4]) {
    let row = |k: usize| &w[(o + k) * ic..(o + k + 1) * ic];
    let split = |k: usize| {
        let (c, t) = row(k).as_chunks::<LANES>();
        (&c[..chunks], t)
    };
    let (s0, s1, s2, s3) = (split(0), split(1), split(2), split(3));
    ([s0.0, s1.0, s2.0, s3.0], [s0.1, s1.1, s2.1, s3.1])
}

#[target_feature(enable = "avx2,fma")]
fn matmul_rows2(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    let (x0, x1) = x.split_at(ic);
    let ((c0, tail0), (c1, tail1)) = (x0.as_chunks::<LANES>(), x1[..ic].as_chunks::<LANES>());
    let chunks = c0.len();
    let c1 = &c1[..chunks];
    let (t0, t1) = (load_tail(tail0), load_tail(tail1));
    let mut o = 0;
    while o + 4 <= oc {
        let (wc, wt) = rows4(w, o, ic, chunks);
        let mut a = [[_mm256_setzero_ps(); 4]; 2];
        let ws = wc[0].iter().zip(wc[1]).zip(wc[2]).zip(wc[3]);
        for ((xa, xb), (((w0, w1), w2), w3)) in c0.iter().zip(c1).zip(ws) {
            let (xa, xb) = (load(xa), load(xb));
            for (k, wv) in [load(w0), load(w1), load(w2), load(w3)].into_iter().enumerate() {
                a[0][k] = _mm256_fmadd_ps(xa, wv, a[0][k]);
                a[1][k] = _mm256_fmadd_ps(xb, wv, a[1][k]);
            }
        }
        if !tail0.is_empty() {
            for k in 0..4 {
                let wv = load_tail(wt[k]);
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
        out[o] = with_bias(bias, o, dot_avx2(x0, wr));
        out[oc + o] = with_bias(bias, o, dot_avx2(&x1[..ic], wr));
        o += 1;
    }
}

#[target_feature(enable = "avx2,fma")]
fn matmul_row1(orow: &mut [f32], xrow: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    let (xc, tail) = xrow[..ic].as_chunks::<LANES>();
    let chunks = xc.len();
    let xtail = load_tail(tail);
    let mut o = 0;
    while o + 4 <= oc {
        let (wc, wt) = rows4(w, o, ic, chunks);
        let mut a = [_mm256_setzero_ps(); 4];
        let ws = wc[0].iter().zip(wc[1]).zip(wc[2]).zip(wc[3]);
        for (xv, (((w0, w1), w2), w3)) in xc.iter().zip(ws) {
            let xv = load(xv);
            for (k, wv) in [load(w0), load(w1), load(w2), load(w3)].into_iter().enumerate() {
                a[k] = _mm256_fmadd_ps(xv, wv, a[k]);
            }
        }
        if !tail.is_empty() {
            for k in 0..4 {
                a[k] = _mm256_fmadd_ps(xtail, load_tail(wt[k]), a[k]);
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

/// out += a * x with one rounding per element (FMA); equal lengths (checked by the caller).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn axpy_avx2(out: &mut [f32], a: f32, x: &[f32]) {
    let n = out.len().min(x.len());
    let ((co, to), (cx, tx)) = (out[..n].as_chunks_mut::<LANES>(), x[..n].as_chunks::<LANES>());
    let av = _mm256_set1_ps(a);
    for (o, xv) in co.iter_mut().zip(cx) {
        store(o, _mm256_fmadd_ps(av, load(xv), load(o)));
    }
    for (o, &xv) in to.iter_mut().zip(tx) {
        *o = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(xv), _mm_set_ss(*o)));
    }
}

/// out += a[0] * x[0], then += a[1] * x[1], ... a[3] * x[3], each step one rounding per
/// element (FMA): four [`axpy_avx2`] in a row, with `out` loaded and stored once. All
/// lengths equal (checked by the caller).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn axpy4_avx2(out: &mut [f32], a: [f32; 4], x: [&[f32]; 4]) {
    let n = out.len().min(x.iter().map(|r| r.len()).min().unwrap_or(0));
    let (co, to) = out[..n].as_chunks_mut::<LANES>();
    let av = a.map(|v| _mm256_set1_ps(v));
    let rows = chunks(&x[0][..n]).iter().zip(chunks(&x[1][..n])).zip(chunks(&x[2][..n])).zip(chunks(&x[3][..n]));
    for (o, (((x0, x1), x2), x3)) in co.iter_mut().zip(rows) {
        let mut v = load(o);
        v = _mm256_fmadd_ps(av[0], load(x0), v);
        v = _mm256_fmadd_ps(av[1], load(x1), v);
        v = _mm256_fmadd_ps(av[2], load(x2), v);
        v = _mm256_fmadd_ps(av[3], load(x3), v);
        store(o, v);
    }
    let done = n - to.len();
    for (i, o) in to.iter_mut().enumerate() {
        for (&ai, xr) in a.iter().zip(x) {
            *o = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(ai), _mm_set_ss(xr[done + i]), _mm_set_ss(*o)));
        }
    }
}

/// Continues a canonical FMA dot product in `acc`; `a.len()` is a multiple of 8 and equals
/// `b.len()` (checked by the caller).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_acc_avx2(acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    let (ca, cb) = (a.as_chunks::<LANES>().0, b.as_chunks::<LANES>().0);
    let mut v = load(acc);
    for (x, y) in ca.iter().zip(cb) {
        v = _mm256_fmadd_ps(load(x), load(y), v);
    }
    store(acc, v);
}

/// The whole 8-float chunks of a row.
#[inline(always)]
fn chunks(r: &[f32]) -> &[[f32; LANES]] {
    r.as_chunks::<LANES>().0
}

/// Four canonical FMA dot products sharing `w`: acc[r] continues with w . x[r], each exactly
/// as [`dot_acc_avx2`] would (four independent chains; `w` loaded once). All slices have
/// `w.len()` elements, a multiple of 8 (checked by the caller).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_acc4_avx2(acc: &mut [[f32; LANES]; 4], w: &[f32], x: [&[f32]; 4]) {
    let mut v = [load(&acc[0]), load(&acc[1]), load(&acc[2]), load(&acc[3])];
    // Zipped chunk iterators: no index, so no bounds check inside the loop.
    let rows = chunks(x[0]).iter().zip(chunks(x[1])).zip(chunks(x[2])).zip(chunks(x[3]));
    for (wc, (((x0, x1), x2), x3)) in chunks(w).iter().zip(rows) {
        let wv = load(wc);
        v[0] = _mm256_fmadd_ps(wv, load(x0), v[0]);
        v[1] = _mm256_fmadd_ps(wv, load(x1), v[1]);
        v[2] = _mm256_fmadd_ps(wv, load(x2), v[2]);
        v[3] = _mm256_fmadd_ps(wv, load(x3), v[3]);
    }
    for (a, v) in acc.iter_mut().zip(v) {
        store(a, v);
    }
}
