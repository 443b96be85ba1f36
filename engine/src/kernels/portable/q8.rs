//! The portable reference of a quantized row times 8-bit activations (`quant::q8` defines the
//! computation): every SIMD kernel of the 8-bit family equals [`dot_q8`] bit for bit.

use super::{LANES, combine_lanes};
use crate::quant::kquants::{BlockQ6K, QK_K, k_codes, k_head, q6_k_codes, scale_min};
use crate::quant::legacy::signed_codes;
use crate::quant::q8::{Q8Row, SUB, act_block};
use crate::quant::{BlockType, check_row};

/// Checks a row / activation pair for the dot products (panics on a mismatch).
#[inline(always)]
pub(crate) fn check_pair(what: &str, t: BlockType, row: &[u8], x: &Q8Row<'_>) {
    check_row(what, t, x.len(), row.len());
    assert_eq!(
        act_block(t),
        Some(x.block()),
        "{what}: {} rows take activations in blocks of {:?}, got {}",
        t.name(),
        act_block(t),
        x.block()
    );
}

/// The dot product of a weight row with 8-bit activations, as the module docs define it
/// (the portable reference: every kernel equals it bit for bit). Panics unless `t` has an
/// activation block ([`act_block`]) equal to `x`'s and `row` is exactly `x.len()` weights.
pub fn dot_q8(t: BlockType, row: &[u8], x: Q8Row<'_>) -> f32 {
    check_pair("dot_q8", t, row, &x);
    let mut acc = [0.0f32; LANES];
    let bb = t.block_bytes();
    match t {
        BlockType::Q8_0 | BlockType::Q4_0 | BlockType::Q5_0 => {
            for (bi, b) in row.chunks_exact(bb).enumerate() {
                let (w, d) = signed_codes(t, b);
                let xs = &x.codes()[SUB * bi..SUB * (bi + 1)];
                let dd = d * x.scales()[bi];
                for (l, a) in acc.iter_mut().enumerate() {
                    let s: i32 = (4 * l..4 * l + 4).map(|i| w[i] as i32 * xs[i] as i32).sum();
                    *a = libm::fmaf(dd, s as f32, *a);
                }
            }
            combine_lanes(&acc)
        }
        BlockType::Q4_K | BlockType::Q5_K => {
            let mut m_acc = 0.0f32;
            for (bi, b) in row.chunks_exact(bb).enumerate() {
                let (d, dmin, scales) = k_head(b, t == BlockType::Q5_K);
                let w = k_codes(b, t == BlockType::Q5_K);
                let xs = &x.codes()[QK_K * bi..QK_K * (bi + 1)];
                let mut s = [0i32; LANES];
                let mut m = 0i32;
                for j in 0..8 {
                    let (sc, mn) = scale_min(scales, j);
                    for i in 0..SUB {
                        let e = SUB * j + i;
                        s[i / 4] += sc as i32 * w[e] as i32 * xs[e] as i32;
                    }
                    m += mn as i32 * x.sums()[8 * bi + j];
                }
                let dd = d * x.scales()[bi];
                for (a, &v) in acc.iter_mut().zip(&s) {
                    *a = libm::fmaf(dd, v as f32, *a);
                }
                m_acc = libm::fmaf(dmin * x.scales()[bi], m as f32, m_acc);
            }
            combine_lanes(&acc) - m_acc
        }
        BlockType::Q6_K => {
            for (bi, b) in row.chunks_exact(bb).enumerate() {
                let q6 = BlockQ6K::new(b);
                let w = q6_k_codes(q6);
                let d = q6.d();
                let xs = &x.codes()[QK_K * bi..QK_K * (bi + 1)];
                let mut s = [0i32; LANES];
                for (e, (&q, &c)) in w.iter().zip(xs).enumerate() {
                    let sc = q6.scales()[e / 16] as i8 as i32;
                    s[(e % SUB) / 4] += sc * (q as i32 - 32) * c as i32;
                }
                let dd = d * x.scales()[bi];
                for (a, &v) in acc.iter_mut().zip(&s) {
                    *a = libm::fmaf(dd, v as f32, *a);
                }
            }
            combine_lanes(&acc)
        }
        _ => unreachable!("check_pair admits only types with an activation block"),
    }
}
