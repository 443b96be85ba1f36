//! Portable kernels in plain Rust: the reference every SIMD kernel is tested against, and the
//! kernel set for CPUs with no SIMD set of ours (e.g. aarch64 until NEON kernels exist).
//!
//! The canonical order: element `i` is accumulated into lane `i % 8`, the 8 lanes are
//! combined as `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`, and a bias is added last. A ragged
//! tail is accumulated like a zero-padded chunk (0*0 is added to the unused lanes). Without
//! FMA each lane rounds the product then the sum ([`dot`]); with FMA it rounds once
//! ([`dot_fma`], computed with `libm::fmaf`: slow, for tests).
//!
//! `blocks.rs` holds the reference of a quantized row times f32 activations ([`dot_row`],
//! [`dot_row_fma`]), `q8.rs` those of a quantized row times 8-bit activations ([`dot_q8`], [`dot_q8_nofma`]).
//!
//! These functions index their slices normally (a bad length panics, it cannot read out of
//! bounds); `Kernels` checks the lengths before calling them anyway.

mod blocks;
mod q8;

pub(crate) use blocks::dot_impl;
pub use blocks::{dot_row, dot_row_fma};
pub(crate) use q8::check_pair;
pub use q8::{dot_q8, dot_q8_nofma};

use crate::kernels::LANES;

#[inline]
pub(crate) fn combine_lanes(l: &[f32; LANES]) -> f32 {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// Canonical dot product without FMA.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = a.len() / LANES;
    for c in 0..chunks {
        let (x, y) = (&a[c * LANES..c * LANES + LANES], &b[c * LANES..c * LANES + LANES]);
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let rest = chunks * LANES;
    if rest < a.len() {
        for l in 0..LANES {
            let (x, y) = if rest + l < a.len() { (a[rest + l], b[rest + l]) } else { (0.0, 0.0) };
            acc[l] += x * y;
        }
    }
    combine_lanes(&acc)
}

/// Canonical dot product with fused multiply-add, computed with `libm::fmaf`: the portable
/// reference the AVX2 kernels are tested against (slow; not used for inference).
pub fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let padded = a.len().div_ceil(LANES) * LANES;
    for i in 0..padded {
        let (x, y) = if i < a.len() { (a[i], b[i]) } else { (0.0, 0.0) };
        acc[i % LANES] = libm::fmaf(x, y, acc[i % LANES]);
    }
    combine_lanes(&acc)
}

/// out (N, OC) = x (N, IC) @ w (OC, IC)^T + bias (OC), without FMA.
pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    let n = x.len() / ic;
    let add_bias = |o: usize, v: f32| match bias {
        Some(b) => v + b[o],
        None => v,
    };
    let mut r = 0;
    // Two tokens at a time share each weight row (prefill); per element the order is
    // exactly `dot`'s, so the result equals decoding one token at a time.
    while r + 2 <= n {
        let (xa, xb) = (&x[r * ic..(r + 1) * ic], &x[(r + 1) * ic..(r + 2) * ic]);
        for o in 0..oc {
            let (da, db) = dot2(xa, xb, &w[o * ic..(o + 1) * ic]);
            out[r * oc + o] = add_bias(o, da);
            out[(r + 1) * oc + o] = add_bias(o, db);
        }
        r += 2;
    }
    if r < n {
        let xr = &x[r * ic..(r + 1) * ic];
        for o in 0..oc {
            out[r * oc + o] = add_bias(o, dot(xr, &w[o * ic..(o + 1) * ic]));
        }
    }
}

/// Two canonical dot products against the same weight row, in one pass over it.
fn dot2(a: &[f32], b: &[f32], w: &[f32]) -> (f32, f32) {
    let mut acc_a = [0.0f32; LANES];
    let mut acc_b = [0.0f32; LANES];
    let chunks = w.len() / LANES;
    for c in 0..chunks {
        let wc = &w[c * LANES..c * LANES + LANES];
        let (ac, bc) = (&a[c * LANES..c * LANES + LANES], &b[c * LANES..c * LANES + LANES]);
        for l in 0..LANES {
            acc_a[l] += ac[l] * wc[l];
            acc_b[l] += bc[l] * wc[l];
        }
    }
    let rest = chunks * LANES;
    if rest < w.len() {
        for l in 0..LANES {
            let i = rest + l;
            let (x, y, z) = if i < w.len() { (a[i], b[i], w[i]) } else { (0.0, 0.0, 0.0) };
            acc_a[l] += x * z;
            acc_b[l] += y * z;
        }
    }
    (combine_lanes(&acc_a), combine_lanes(&acc_b))
}

/// out += a * x, elementwise, without FMA.
pub fn axpy(out: &mut [f32], a: f32, x: &[f32]) {
    for (o, &xi) in out.iter_mut().zip(x) {
        *o += a * xi;
    }
}

/// Continues a canonical dot product: adds a[i] * b[i] into lane i % 8 of `acc` (no FMA).
/// `a.len()` is a multiple of 8, so a long row may be fed in chunks with the same result.
pub(crate) fn dot_acc(acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += ca[l] * cb[l];
        }
    }
}
