//! The SSSE3 set of the no-FMA 8-bit family (`ssse3-q8`): quantized weight rows times 8-bit
//! activations with `pmaddubsw` (u8 x i8 -> i16 pairs: unsigned weight codes, the offset
//! subtracted through the activations' sums) and `pmaddwd` (i16 pairs -> i32; Q8_0's signed
//! bytes widened to i16 first), summed per weight block to the exact
//! integer `S` of `portable::dot_q8_nofma`, then that reference's f32 steps in its order
//! (`acc + (dw * dx) * S`, rounded at each step): equal to it bit for bit (tested on random
//! blocks). The f32 parts of the model run the SSE2 set's kernels (this set's table is the
//! SSE2 table plus these entries).
//!
//! Made for CPUs without AVX2 and for QEMU's emulation (TCG), where integer SIMD runs about
//! 3.4x faster per multiply-add than f32 SIMD and every f32 operation is a call into a
//! software float library: per 32 weights this computes one integer sum and four scalar
//! f32 operations, where the f32 kernels compute 64.
//!
//! Only `Kernels::dot_q8` (and its multi-row forms) call these, after `portable::check_pair`,
//! and only with this set's `Kernels` (which exists only when `CpuFeatures::ssse3` said yes).

// The tile loops index several parallel arrays (N weight rows, R activation rows) by one
// block index: an iterator over one of them would only hide the others.
#![allow(clippy::needless_range_loop)]
use super::Ops;
use crate::quant::BlockType;
use crate::quant::kquants::{BlockQ4K, BlockQ5K, BlockQ6K, QK_K, scale_min};
use crate::quant::legacy::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0};
use crate::quant::q8::{Q8Row, SUB};
use core::arch::x86_64::*;

/// The `ssse3-q8` set: the SSE2 set's f32 kernels, and these for the 8-bit products.
pub(super) const OPS: Ops = Ops { dot_q8: Some(dot), dot_q8_rows4: Some(dot4), dot_q8_x8: Some(dot_x8), ..super::sse2::OPS };

/// The dot product of `row` with `x` (lengths and blocks checked by the caller), or None if
/// this module has no kernel for `t` (the family's portable reference runs then).
///
/// # Safety
/// The CPU must support SSSE3.
unsafe fn dot(t: BlockType, row: &[u8], x: Q8Row<'_>) -> Option<f32> {
    // SAFETY: the caller guarantees SSSE3; the kernels load only through bounds-checked
    // slices (`load16`, `codes16`).
    unsafe { tile::<1, 1>(t, [row], [x]) }.map(|[[v]]| v)
}

/// Four rows against the same `x`, each equal to [`dot`] of that row.
///
/// # Safety
/// As for [`dot`]; every row checked by the caller.
unsafe fn dot4(t: BlockType, rows: [&[u8]; 4], x: Q8Row<'_>) -> Option<[f32; 4]> {
    // SAFETY: as for `dot`.
    unsafe { tile::<4, 1>(t, rows, [x]) }.map(|[v]| v)
}

/// One row against eight activation rows (prefill): `out[i]` equals [`dot`] of `row` with
/// `xs[i]` (each weight block is decoded once for all eight inputs).
///
/// # Safety
/// As for [`dot`]; the row and every activation row checked by the caller.
unsafe fn dot_x8(t: BlockType, row: &[u8], xs: &[Q8Row<'_>; 8]) -> Option<[f32; 8]> {
    // SAFETY: as for `dot`.
    unsafe { tile::<1, 8>(t, [row], *xs) }.map(|t| t.map(|[v]| v))
}

/// N rows against R activation rows: `out[i][r]` equals [`dot`] of row r with `xs[i]`.
///
/// # Safety
/// As for [`dot`]; every row and activation row checked by the caller.
#[inline(always)]
unsafe fn tile<const N: usize, const R: usize>(t: BlockType, rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> Option<[[f32; N]; R]> {
    // SAFETY: the caller guarantees SSSE3, which each kernel is compiled for.
    unsafe {
        match t {
            BlockType::Q8_0 => Some(legacy::<Q8_0, { BlockQ8_0::BYTES }, N, R>(rows, xs)),
            BlockType::Q4_0 => Some(legacy::<Q4_0, { BlockQ4_0::BYTES }, N, R>(rows, xs)),
            BlockType::Q5_0 => Some(legacy::<Q5_0, { BlockQ5_0::BYTES }, N, R>(rows, xs)),
            BlockType::Q4_1 => Some(legacy::<Q4_1, { BlockQ4_1::BYTES }, N, R>(rows, xs)),
            BlockType::Q5_1 => Some(legacy::<Q5_1, { BlockQ5_1::BYTES }, N, R>(rows, xs)),
            BlockType::Q4_K => Some(k_quant::<false, { BlockQ4K::BYTES }, N, R>(rows, xs)),
            BlockType::Q5_K => Some(k_quant::<true, { BlockQ5K::BYTES }, N, R>(rows, xs)),
            BlockType::Q6_K => Some(q6_k::<N, R>(rows, xs)),
            _ => None,
        }
    }
}

/// `b[0..16]` as a vector (panics if shorter).
#[inline]
#[target_feature(enable = "ssse3")]
fn load16(b: &[u8]) -> __m128i {
    let b = &b[..16];
    // SAFETY: `b` has exactly 16 bytes; unaligned load.
    unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) }
}

/// The 16 activation codes starting at `i` (panics past the end).
#[inline]
#[target_feature(enable = "ssse3")]
fn codes16(x: &Q8Row<'_>, i: usize) -> __m128i {
    let c = &x.codes()[i..i + 16];
    // SAFETY: `c` has exactly 16 bytes (i8); unaligned load.
    unsafe { _mm_loadu_si128(c.as_ptr() as *const __m128i) }
}

/// The sum of the four i32 lanes (exact: the callers' bounds keep it within i32).
#[inline]
#[target_feature(enable = "ssse3")]
fn hsum_i32(v: __m128i) -> i32 {
    let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b01_00_11_10>(v));
    _mm_cvtsi128_si32(_mm_add_epi32(v, _mm_shuffle_epi32::<0b10_11_00_01>(v)))
}

/// 16 bits -> 16 bytes, 0xff where the bit is set (byte i <- bit i).
#[inline]
#[target_feature(enable = "ssse3")]
fn bytes_from_bits16(bits: u32) -> __m128i {
    let spread = _mm_shuffle_epi8(_mm_cvtsi32_si128(bits as i32), _mm_set_epi64x(0x0101_0101_0101_0101, 0));
    // Byte i keeps bit i % 8 of its source byte: OR in every other bit, compare with all-ones.
    let others = _mm_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
    _mm_cmpeq_epi8(_mm_or_si128(spread, others), _mm_set1_epi8(-1))
}

/// The 32-weight types, as const parameters of [`legacy`] (with their block bytes).
const Q8_0: u8 = 0;
const Q4_0: u8 = 1;
const Q5_0: u8 = 2;
/// With an offset (`w = d * q + m`): `m` through the minimum accumulator (`quant::q8`).
const Q4_1: u8 = 3;
const Q5_1: u8 = 4;

/// The 32 weights of a Q8_0 / Q4_0 / Q5_0 block (`BB` bytes) times 32 activation codes, as
/// the exact integer sum. Q4_0 and Q5_0 multiply their unsigned codes (0..15, 0..31) with
/// `pmaddubsw` and subtract 8 or 16 times the sum of the codes (`sum`); Q8_0 widens both
/// sides to i16 for `pmaddwd` (`psignb`, the usual trick for signed bytes, is a byte loop
/// with a branch per byte in QEMU's emulation: slower than everything else here together).
#[inline]
#[target_feature(enable = "ssse3")]
fn legacy_sum<const T: u8, const BB: usize>(b: &[u8; BB], x: [__m128i; 2], sum: i32) -> i32 {
    if T == Q8_0 {
        let qs = BlockQ8_0::new(b).qs();
        let w = [load16(&qs[..16]), load16(&qs[16..])];
        let mut s = _mm_setzero_si128();
        for (w, x) in w.into_iter().zip(x) {
            // Each byte into the high half of an i16, then shifted down with its sign.
            let (wl, wh) = (_mm_srai_epi16::<8>(_mm_unpacklo_epi8(w, w)), _mm_srai_epi16::<8>(_mm_unpackhi_epi8(w, w)));
            let (xl, xh) = (_mm_srai_epi16::<8>(_mm_unpacklo_epi8(x, x)), _mm_srai_epi16::<8>(_mm_unpackhi_epi8(x, x)));
            s = _mm_add_epi32(s, _mm_add_epi32(_mm_madd_epi16(wl, xl), _mm_madd_epi16(wh, xh)));
        }
        return hsum_i32(s);
    }
    let qs = load16(match T {
        Q4_0 => BlockQ4_0::new(b).qs(),
        Q5_0 => BlockQ5_0::new(b).qs(),
        Q4_1 => BlockQ4_1::new(b).qs(),
        _ => BlockQ5_1::new(b).qs(),
    });
    let low = _mm_set1_epi8(0x0f);
    let mut nib = [_mm_and_si128(qs, low), _mm_and_si128(_mm_srli_epi16::<4>(qs), low)];
    if T == Q5_0 || T == Q5_1 {
        // The fifth bit: 0x10 where qh has bit i set.
        let qh = if T == Q5_0 { BlockQ5_0::new(b).qh() } else { BlockQ5_1::new(b).qh() };
        let f = _mm_set1_epi8(0x10);
        nib[0] = _mm_or_si128(nib[0], _mm_and_si128(bytes_from_bits16(qh & 0xffff), f));
        nib[1] = _mm_or_si128(nib[1], _mm_and_si128(bytes_from_bits16(qh >> 16), f));
    }
    // Codes 0..31 times -127..127: i16 pairs of at most 7874, the two halves 15748.
    let p = _mm_add_epi16(_mm_maddubs_epi16(nib[0], x[0]), _mm_maddubs_epi16(nib[1], x[1]));
    // Q4_0 / Q5_0 codes are q - 8 / q - 16; Q4_1 / Q5_1 keep theirs (their `m` apart).
    let offset = match T {
        Q4_0 => 8,
        Q5_0 => 16,
        _ => 0,
    };
    hsum_i32(_mm_madd_epi16(p, _mm_set1_epi16(1))) - offset * sum
}

/// The `d` of a Q8_0 / Q4_0 / Q5_0 block.
#[inline(always)]
fn legacy_d<const T: u8, const BB: usize>(b: &[u8; BB]) -> f32 {
    match T {
        Q8_0 => BlockQ8_0::new(b).d(),
        Q4_0 => BlockQ4_0::new(b).d(),
        Q5_0 => BlockQ5_0::new(b).d(),
        Q4_1 => BlockQ4_1::new(b).d(),
        _ => BlockQ5_1::new(b).d(),
    }
}

/// The no-FMA step of one block: `acc + (dw * dx) * S`, rounded at each step (SSE2 scalar
/// arithmetic: the reference's).
#[inline(always)]
fn step(acc: f32, dd: f32, s: i32) -> f32 {
    acc + dd * s as f32
}

/// Q8_0 / Q4_0 / Q5_0: N weight rows against R activation rows, each pair with its own
/// accumulator and exactly the one-row sequence of operations.
#[target_feature(enable = "ssse3")]
fn legacy<const T: u8, const BB: usize, const N: usize, const R: usize>(rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> [[f32; N]; R] {
    let mut acc = [[0.0f32; N]; R];
    let mut m_acc = [[0.0f32; N]; R];
    let offsets = T == Q4_1 || T == Q5_1;
    let nb = xs[0].scales().len();
    assert!(xs.iter().all(|x| x.scales().len() == nb), "ssse3 legacy: activation rows of different lengths");
    let blocks: [&[[u8; BB]]; N] = rows.map(|r| {
        let (b, rest) = r.as_chunks::<BB>();
        assert!(rest.is_empty() && b.len() == nb, "ssse3 legacy: row of {} blocks", b.len());
        b
    });
    for bi in 0..nb {
        let xv: [[__m128i; 2]; R] = core::array::from_fn(|i| [codes16(&xs[i], SUB * bi), codes16(&xs[i], SUB * bi + 16)]);
        for r in 0..N {
            let b = &blocks[r][bi];
            let dw = legacy_d::<T, BB>(b);
            for i in 0..R {
                let s = legacy_sum::<T, BB>(b, xv[i], xs[i].sums()[bi]);
                let dx = xs[i].scales()[bi];
                acc[i][r] = step(acc[i][r], dw * dx, s);
                if offsets {
                    // dmin = -m, M = the block's sum of activation codes.
                    let m = if T == Q4_1 { BlockQ4_1::new(b).m() } else { BlockQ5_1::new(b).m() };
                    m_acc[i][r] = step(m_acc[i][r], -m * dx, xs[i].sums()[bi]);
                }
            }
        }
    }
    if offsets {
        for i in 0..R {
            for r in 0..N {
                acc[i][r] -= m_acc[i][r];
            }
        }
    }
    acc
}

/// As [`legacy`], for Q4_K (unsigned codes 0..15 times the sub-block scale, minimums apart)
/// and (`FIVE`, `BB` = 176) Q5_K (codes 0..31, the fifth bit from `qh`).
#[target_feature(enable = "ssse3")]
fn k_quant<const FIVE: bool, const BB: usize, const N: usize, const R: usize>(rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> [[f32; N]; R] {
    let mut acc = [[0.0f32; N]; R];
    let mut m_acc = [[0.0f32; N]; R];
    let low = _mm_set1_epi8(0x0f);
    let one = _mm_set1_epi8(1);
    let nb = xs[0].scales().len();
    assert!(xs.iter().all(|x| x.scales().len() == nb), "ssse3 k_quant: activation rows of different lengths");
    let blocks: [&[[u8; BB]]; N] = rows.map(|r| {
        let (b, rest) = r.as_chunks::<BB>();
        assert!(rest.is_empty() && b.len() == nb, "ssse3 k_quant: row of {} blocks", b.len());
        b
    });
    for bi in 0..nb {
        for r in 0..N {
            let raw = &blocks[r][bi];
            let (d, dmin, scales, qs, qh) = if FIVE {
                let b = BlockQ5K::new(raw);
                (b.d(), b.dmin(), b.scales(), b.qs(), Some([load16(&b.qh()[..16]), load16(&b.qh()[16..])]))
            } else {
                let b = BlockQ4K::new(raw);
                (b.d(), b.dmin(), b.scales(), b.qs(), None)
            };
            let mut s = [_mm_setzero_si128(); R];
            let mut m = [0i32; R];
            for c in 0..4 {
                // Sub-block 2c is the low nibbles of these 32 bytes, 2c + 1 the high ones.
                let q = [load16(&qs[32 * c..]), load16(&qs[32 * c + 16..])];
                let mut lo = q.map(|v| _mm_and_si128(v, low));
                let mut hi = q.map(|v| _mm_and_si128(_mm_srli_epi16::<4>(v), low));
                if let Some(hb) = qh {
                    // Bit 2c of qh[l] is bit 4 of weight l of sub-block 2c, bit 2c + 1 of 2c + 1
                    // (16-bit shifts below 8: the neighbour byte's bits are masked off).
                    for h in 0..2 {
                        let b0 = _mm_and_si128(_mm_srl_epi16(hb[h], _mm_cvtsi32_si128(2 * c as i32)), one);
                        let b1 = _mm_and_si128(_mm_srl_epi16(hb[h], _mm_cvtsi32_si128(2 * c as i32 + 1)), one);
                        lo[h] = _mm_or_si128(lo[h], _mm_slli_epi16::<4>(b0));
                        hi[h] = _mm_or_si128(hi[h], _mm_slli_epi16::<4>(b1));
                    }
                }
                let (sc0, m0) = scale_min(scales, 2 * c);
                let (sc1, m1) = scale_min(scales, 2 * c + 1);
                let (sv0, sv1) = (_mm_set1_epi16(sc0 as i16), _mm_set1_epi16(sc1 as i16));
                for i in 0..R {
                    let x0 = QK_K * bi + 64 * c;
                    // Codes 0..31 times -127..127: i16 pairs of at most 7874, two summed 15748.
                    let p0 =
                        _mm_add_epi16(_mm_maddubs_epi16(lo[0], codes16(&xs[i], x0)), _mm_maddubs_epi16(lo[1], codes16(&xs[i], x0 + 16)));
                    let p1 = _mm_add_epi16(
                        _mm_maddubs_epi16(hi[0], codes16(&xs[i], x0 + 32)),
                        _mm_maddubs_epi16(hi[1], codes16(&xs[i], x0 + 48)),
                    );
                    s[i] = _mm_add_epi32(s[i], _mm_add_epi32(_mm_madd_epi16(p0, sv0), _mm_madd_epi16(p1, sv1)));
                    let sums = &xs[i].sums()[8 * bi..8 * bi + 8];
                    m[i] += m0 as i32 * sums[2 * c] + m1 as i32 * sums[2 * c + 1];
                }
            }
            for i in 0..R {
                let dx = xs[i].scales()[bi];
                acc[i][r] = step(acc[i][r], d * dx, hsum_i32(s[i]));
                m_acc[i][r] = step(m_acc[i][r], dmin * dx, m[i]);
            }
        }
    }
    let mut out = [[0.0f32; N]; R];
    for i in 0..R {
        for r in 0..N {
            out[i][r] = acc[i][r] - m_acc[i][r];
        }
    }
    out
}

/// As [`legacy`], for Q6_K (codes 0..63 minus 32, a signed scale per 16 weights).
#[target_feature(enable = "ssse3")]
fn q6_k<const N: usize, const R: usize>(rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> [[f32; N]; R] {
    let mut acc = [[0.0f32; N]; R];
    let low = _mm_set1_epi8(0x0f);
    let three = _mm_set1_epi8(3);
    let m32 = _mm_set1_epi8(32);
    let nb = xs[0].scales().len();
    assert!(xs.iter().all(|x| x.scales().len() == nb), "ssse3 q6_k: activation rows of different lengths");
    let blocks: [&[[u8; BlockQ6K::BYTES]]; N] = rows.map(|r| {
        let (b, rest) = r.as_chunks::<{ BlockQ6K::BYTES }>();
        assert!(rest.is_empty() && b.len() == nb, "ssse3 q6_k: row of {} blocks", b.len());
        b
    });
    for bi in 0..nb {
        for r in 0..N {
            let b = BlockQ6K::new(&blocks[r][bi]);
            let (ql, qh, sc) = (b.ql(), b.qh(), b.scales());
            let mut s = [_mm_setzero_si128(); R];
            for h in 0..2 {
                for half in 0..2 {
                    // Bytes 16 * half .. of each 32-byte group of this 128-weight half.
                    let o = 16 * half;
                    let hb = load16(&qh[32 * h + o..]);
                    let lb = [load16(&ql[64 * h + o..]), load16(&ql[64 * h + 32 + o..])];
                    for g in 0..4 {
                        let nib = if g < 2 { _mm_and_si128(lb[g], low) } else { _mm_and_si128(_mm_srli_epi16::<4>(lb[g & 1]), low) };
                        let high = _mm_and_si128(_mm_srl_epi16(hb, _mm_cvtsi32_si128(2 * g as i32)), three);
                        let q = _mm_or_si128(nib, _mm_slli_epi16::<4>(high));
                        // Weights 32k + o .. 32k + o + 16 share the scale sc[2k + half].
                        let k = 4 * h + g;
                        let scv = _mm_set1_epi16(sc[2 * k + half] as i8 as i16);
                        for i in 0..R {
                            // q - 32: subtract 32 * (sum of each code pair); |p| <= 2 * 32 * 127.
                            let xv = codes16(&xs[i], QK_K * bi + 32 * k + o);
                            let p = _mm_sub_epi16(_mm_maddubs_epi16(q, xv), _mm_maddubs_epi16(m32, xv));
                            s[i] = _mm_add_epi32(s[i], _mm_madd_epi16(p, scv));
                        }
                    }
                }
            }
            let d = b.d();
            for i in 0..R {
                acc[i][r] = step(acc[i][r], d * xs[i].scales()[bi], hsum_i32(s[i]));
            }
        }
    }
    acc
}
