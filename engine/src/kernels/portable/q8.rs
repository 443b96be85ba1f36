//! The portable references of a quantized row times 8-bit activations (`quant::q8` defines
//! the computations): every SIMD kernel of [`Family::FmaQ8`](crate::kernels::Family::FmaQ8)
//! equals [`dot_q8`] bit for bit, every kernel of
//! [`Family::NoFmaQ8`](crate::kernels::Family::NoFmaQ8) equals [`dot_q8_nofma`]. Both scale
//! the same exact integer sums ([`block_sums`]); they differ in the f32 steps.

use super::{LANES, combine_lanes};
use crate::quant::kquants::{BlockQ6K, QK_K, k_codes, k_head, q6_k_codes, scale_min};
use crate::quant::legacy::{signed_codes, unsigned_codes};
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

/// Whether the type's dot product has a second, "minimum" accumulator (`quant::q8`): the
/// k-quants' minimums, and Q4_1 / Q5_1's offsets `m` (as `dmin = -m`).
#[inline(always)]
pub(crate) fn has_minimums(t: BlockType) -> bool {
    matches!(t, BlockType::Q4_K | BlockType::Q5_K | BlockType::Q4_1 | BlockType::Q5_1)
}

/// One weight block (number `bi` of its row) against its activations: the exact integer
/// lane sums `S[l]` and minimum sum `M` (types with minimums; else 0), and the block's
/// `dw` and `dmin` (0 where the type has none; `-m` for Q4_1 / Q5_1).
struct BlockSums {
    lanes: [i32; LANES],
    m: i32,
    d: f32,
    dmin: f32,
}

fn block_sums(t: BlockType, b: &[u8], x: &Q8Row<'_>, bi: usize) -> BlockSums {
    let mut lanes = [0i32; LANES];
    match t {
        BlockType::Q8_0 | BlockType::Q4_0 | BlockType::Q5_0 => {
            let (w, d) = signed_codes(t, b);
            let xs = &x.codes()[SUB * bi..SUB * (bi + 1)];
            for (l, s) in lanes.iter_mut().enumerate() {
                *s = (4 * l..4 * l + 4).map(|i| w[i] as i32 * xs[i] as i32).sum();
            }
            BlockSums { lanes, m: 0, d, dmin: 0.0 }
        }
        BlockType::Q4_1 | BlockType::Q5_1 => {
            // w = d * q + m: the codes' products, and m times the sum of the codes.
            let (w, d, m) = unsigned_codes(t, b);
            let xs = &x.codes()[SUB * bi..SUB * (bi + 1)];
            for (l, s) in lanes.iter_mut().enumerate() {
                *s = (4 * l..4 * l + 4).map(|i| w[i] as i32 * xs[i] as i32).sum();
            }
            BlockSums { lanes, m: x.sums()[bi], d, dmin: -m }
        }
        BlockType::Q4_K | BlockType::Q5_K => {
            let (d, dmin, scales) = k_head(b, t == BlockType::Q5_K);
            let w = k_codes(b, t == BlockType::Q5_K);
            let xs = &x.codes()[QK_K * bi..QK_K * (bi + 1)];
            let mut m = 0i32;
            for j in 0..8 {
                let (sc, mn) = scale_min(scales, j);
                for i in 0..SUB {
                    let e = SUB * j + i;
                    lanes[i / 4] += sc as i32 * w[e] as i32 * xs[e] as i32;
                }
                m += mn as i32 * x.sums()[8 * bi + j];
            }
            BlockSums { lanes, m, d, dmin }
        }
        BlockType::Q6_K => {
            let q6 = BlockQ6K::new(b);
            let w = q6_k_codes(q6);
            let xs = &x.codes()[QK_K * bi..QK_K * (bi + 1)];
            for (e, (&q, &c)) in w.iter().zip(xs).enumerate() {
                let sc = q6.scales()[e / 16] as i8 as i32;
                lanes[(e % SUB) / 4] += sc * (q as i32 - 32) * c as i32;
            }
            BlockSums { lanes, m: 0, d: q6.d(), dmin: 0.0 }
        }
        _ => unreachable!("check_pair admits only types with an activation block"),
    }
}

/// The dot product of a weight row with 8-bit activations in the FMA family, as the module
/// docs of `quant::q8` define it (the portable reference: every kernel equals it bit for
/// bit). Panics unless `t` has an activation block ([`act_block`]) equal to `x`'s and `row`
/// is exactly `x.len()` weights.
pub fn dot_q8(t: BlockType, row: &[u8], x: Q8Row<'_>) -> f32 {
    check_pair("dot_q8", t, row, &x);
    let mut acc = [0.0f32; LANES];
    let mut m_acc = 0.0f32;
    for (bi, b) in row.chunks_exact(t.block_bytes()).enumerate() {
        let s = block_sums(t, b, &x, bi);
        let dx = x.scales()[bi];
        let dd = s.d * dx;
        for (a, &v) in acc.iter_mut().zip(&s.lanes) {
            *a = libm::fmaf(dd, v as f32, *a);
        }
        if has_minimums(t) {
            m_acc = libm::fmaf(s.dmin * dx, s.m as f32, m_acc);
        }
    }
    if has_minimums(t) { combine_lanes(&acc) - m_acc } else { combine_lanes(&acc) }
}

/// The dot product of a weight row with 8-bit activations in the no-FMA family (`quant::q8`,
/// "Without FMA"): per weight block, the exact integer sum `S` of all its products, then
/// `acc = acc + (dw * dx) * (S as f32)`, every step rounded to f32, one accumulator in block
/// order (the k-quant minimums in a second one, `m_acc = m_acc + (dmin * dx) * (M as f32)`,
/// subtracted at the end). The portable reference of [`Family::NoFmaQ8`]; panics as
/// [`dot_q8`] does.
///
/// [`Family::NoFmaQ8`]: crate::kernels::Family::NoFmaQ8
pub fn dot_q8_nofma(t: BlockType, row: &[u8], x: Q8Row<'_>) -> f32 {
    check_pair("dot_q8_nofma", t, row, &x);
    let mut acc = 0.0f32;
    let mut m_acc = 0.0f32;
    for (bi, b) in row.chunks_exact(t.block_bytes()).enumerate() {
        let s = block_sums(t, b, &x, bi);
        let dx = x.scales()[bi];
        // The lane sums are exact and their total fits an i32 (|S| < 2^28: `quant::q8`).
        let total: i32 = s.lanes.iter().sum();
        acc += (s.d * dx) * total as f32;
        if has_minimums(t) {
            m_acc += (s.dmin * dx) * s.m as f32;
        }
    }
    if has_minimums(t) { acc - m_acc } else { acc }
}
