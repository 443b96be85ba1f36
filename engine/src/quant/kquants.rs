//! The 256-weight "k-quant" super-blocks: Q4_K, Q5_K, Q6_K (block formats from ggml,
//! llama.cpp, MIT; our own code). Decoding only (quantizing them is not implemented yet).
//!
//! Layouts (little-endian; `d`, `dmin` are f16):
//! - Q4_K (144 bytes): d, dmin, scales[12] (8 packed 6-bit scales and 8 6-bit mins, see
//!   [`scale_min`]), qs[128]. 8 sub-blocks of 32; within the 64 weights of chunk c (bytes
//!   qs[32c..32c+32]) the low nibbles are sub-block 2c, the high nibbles sub-block 2c+1.
//!   w = (d*sc) * q - (dmin*m), each product and the difference rounded separately.
//! - Q5_K (176): d, dmin, scales[12], qh[32], qs[128]; as Q4_K plus bit 4 of weight l of
//!   sub-block j in bit j of qh[l].
//! - Q6_K (210): ql[128], qh[64], i8 scales[16], d. In each half h (128 weights) weight
//!   32g + l (g < 4) takes 4 low bits from ql[64h + 32(g&1) + l] (low nibble for g < 2, high
//!   for g >= 2) and 2 high bits from qh[32h + l] >> 2g; w = (d*scales[e/16]) * (q - 32).

use super::f16::read_f16;
use super::{block, field};

pub(crate) const QK_K: usize = 256;

// Typed views of one block each (as in `legacy.rs`): no byte offset of these layouts
// appears outside this file.

/// A Q4_K block (144 bytes): d, dmin, scales[12] (see [`scale_min`]), qs[128].
#[derive(Clone, Copy)]
pub struct BlockQ4K<'a>(&'a [u8; 144]);

impl<'a> BlockQ4K<'a> {
    pub const BYTES: usize = 144;
    /// Byte offsets of the block's f16 scales (d, dmin).
    pub const SCALES_AT: &'static [usize] = &[0, 2];
    /// (bytes, scale offsets): the type table's entry.
    pub const LAYOUT: (usize, &'static [usize]) = (Self::BYTES, Self::SCALES_AT);
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Self(block(b, "Q4_K"))
    }
    #[inline(always)]
    pub fn d(self) -> f32 {
        read_f16(field::<144, 2>(self.0, 0))
    }
    /// `d` as its f16 bits (for kernels that convert with the CPU's F16C instruction).
    #[inline(always)]
    pub fn d_bits(self) -> u16 {
        u16::from_le_bytes(*field::<144, 2>(self.0, 0))
    }
    #[inline(always)]
    pub fn dmin(self) -> f32 {
        read_f16(field::<144, 2>(self.0, 2))
    }
    /// `dmin` as its f16 bits (for kernels that convert with the CPU's F16C instruction).
    #[inline(always)]
    pub fn dmin_bits(self) -> u16 {
        u16::from_le_bytes(*field::<144, 2>(self.0, 2))
    }
    /// 8 packed 6-bit scales and 8 6-bit mins ([`scale_min`]).
    #[inline(always)]
    pub fn scales(self) -> &'a [u8; 12] {
        field(self.0, 4)
    }
    /// Chunk c (weights 64c..64c+64) in bytes 32c..32c+32: low nibbles sub-block 2c, high 2c+1.
    #[inline(always)]
    pub fn qs(self) -> &'a [u8; 128] {
        field(self.0, 16)
    }
}

/// A Q5_K block (176 bytes): d, dmin, scales[12], qh[32], qs[128] (as Q4_K, plus bit 4 of
/// weight l of sub-block j in bit j of qh[l]).
#[derive(Clone, Copy)]
pub struct BlockQ5K<'a>(&'a [u8; 176]);

impl<'a> BlockQ5K<'a> {
    pub const BYTES: usize = 176;
    pub const SCALES_AT: &'static [usize] = &[0, 2];
    /// (bytes, scale offsets): the type table's entry.
    pub const LAYOUT: (usize, &'static [usize]) = (Self::BYTES, Self::SCALES_AT);
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Self(block(b, "Q5_K"))
    }
    #[inline(always)]
    pub fn d(self) -> f32 {
        read_f16(field::<176, 2>(self.0, 0))
    }
    #[inline(always)]
    pub fn dmin(self) -> f32 {
        read_f16(field::<176, 2>(self.0, 2))
    }
    /// `d` as its f16 bits (for kernels that convert with the CPU's F16C instruction).
    #[inline(always)]
    pub fn d_bits(self) -> u16 {
        u16::from_le_bytes(*field::<176, 2>(self.0, 0))
    }
    /// `dmin` as its f16 bits.
    #[inline(always)]
    pub fn dmin_bits(self) -> u16 {
        u16::from_le_bytes(*field::<176, 2>(self.0, 2))
    }
    #[inline(always)]
    pub fn scales(self) -> &'a [u8; 12] {
        field(self.0, 4)
    }
    #[inline(always)]
    pub fn qh(self) -> &'a [u8; 32] {
        field(self.0, 16)
    }
    #[inline(always)]
    pub fn qs(self) -> &'a [u8; 128] {
        field(self.0, 48)
    }
}

/// A Q6_K block (210 bytes): ql[128], qh[64], i8 scales[16], d (see the module docs).
#[derive(Clone, Copy)]
pub struct BlockQ6K<'a>(&'a [u8; 210]);

impl<'a> BlockQ6K<'a> {
    pub const BYTES: usize = 210;
    /// Byte offset of the block's f16 scale (d, last).
    pub const SCALES_AT: &'static [usize] = &[208];
    /// (bytes, scale offsets): the type table's entry.
    pub const LAYOUT: (usize, &'static [usize]) = (Self::BYTES, Self::SCALES_AT);
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Self(block(b, "Q6_K"))
    }
    #[inline(always)]
    pub(crate) fn ql(self) -> &'a [u8; 128] {
        field(self.0, 0)
    }
    #[inline(always)]
    pub fn qh(self) -> &'a [u8; 64] {
        field(self.0, 128)
    }
    /// The 16 sub-block scales (i8 as bytes).
    #[inline(always)]
    pub fn scales(self) -> &'a [u8; 16] {
        field(self.0, 192)
    }
    #[inline(always)]
    pub fn d(self) -> f32 {
        read_f16(field::<210, 2>(self.0, 208))
    }
    /// `d` as its f16 bits (for kernels that convert with the CPU's F16C instruction).
    #[inline(always)]
    pub fn d_bits(self) -> u16 {
        u16::from_le_bytes(*field::<210, 2>(self.0, 208))
    }
}

/// Scale and min of sub-block j (0..8) from the 12 packed bytes: for j < 4 the low 6 bits of
/// bytes j and j+4; otherwise the nibbles of byte j+4 with the top 2 bits of bytes j-4, j.
#[inline]
pub(crate) fn scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 { (s[j] & 63, s[j + 4] & 63) } else { ((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)) }
}

/// The per-sub-block factors d*sc and dmin*m of a Q4_K/Q5_K block (its d, dmin and packed
/// scales), rounded to f32.
#[inline]
pub(crate) fn k_factors(d: f32, dmin: f32, s: &[u8; 12]) -> ([f32; 8], [f32; 8]) {
    let (mut ds, mut ms) = ([0.0f32; 8], [0.0f32; 8]);
    for j in 0..8 {
        let (sc, m) = scale_min(s, j);
        ds[j] = d * sc as f32;
        ms[j] = dmin * m as f32;
    }
    (ds, ms)
}

/// d, dmin and the packed scales of a Q4_K (or, if `five_bit`, Q5_K) block.
#[inline]
pub(crate) fn k_head(b: &[u8], five_bit: bool) -> (f32, f32, &[u8; 12]) {
    if five_bit {
        let k = BlockQ5K::new(b);
        (k.d(), k.dmin(), k.scales())
    } else {
        let k = BlockQ4K::new(b);
        (k.d(), k.dmin(), k.scales())
    }
}

/// The unsigned codes of a Q4_K (0..15) or Q5_K (0..31) super-block, in weight order.
pub(crate) fn k_codes(b: &[u8], five_bit: bool) -> [u8; QK_K] {
    let mut w = [0u8; QK_K];
    let (qh, qs) = if five_bit {
        let b = BlockQ5K::new(b);
        (Some(b.qh()), b.qs())
    } else {
        (None, BlockQ4K::new(b).qs())
    };
    for c in 0..4 {
        for l in 0..32 {
            let q = qs[32 * c + l];
            let (mut lo, mut hi) = (q & 0x0f, q >> 4);
            if let Some(qh) = qh {
                lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
            }
            w[64 * c + l] = lo;
            w[64 * c + 32 + l] = hi;
        }
    }
    w
}

/// Q4_K / Q5_K: w = (d*sc) * q - (dmin*m) with the factors of the weight's sub-block.
fn decode_k(b: &[u8], out: &mut [f32], five_bit: bool) {
    let (d, dmin, scales) = k_head(b, five_bit);
    let (ds, ms) = k_factors(d, dmin, scales);
    for (e, (o, q)) in out[..QK_K].iter_mut().zip(k_codes(b, five_bit)).enumerate() {
        *o = ds[e / 32] * q as f32 - ms[e / 32];
    }
}

pub(crate) fn decode_q4_k(b: &[u8], out: &mut [f32]) {
    decode_k(b, out, false)
}

pub(crate) fn decode_q5_k(b: &[u8], out: &mut [f32]) {
    decode_k(b, out, true)
}

/// The 16 sub-block factors d*scale of a Q6_K block, rounded to f32.
#[inline]
pub(crate) fn q6_k_factors(b: BlockQ6K<'_>) -> [f32; 16] {
    let d = b.d();
    let mut ds = [0.0f32; 16];
    for (f, &s) in ds.iter_mut().zip(b.scales()) {
        *f = d * (s as i8) as f32;
    }
    ds
}

/// The codes 0..63 of a Q6_K super-block, in weight order.
pub(crate) fn q6_k_codes(b: BlockQ6K<'_>) -> [u8; QK_K] {
    let (ql, qh) = (b.ql(), b.qh());
    let mut w = [0u8; QK_K];
    for h in 0..2 {
        for g in 0..4 {
            for l in 0..32 {
                let lb = ql[64 * h + 32 * (g & 1) + l];
                let low = if g < 2 { lb & 0x0f } else { lb >> 4 };
                let high = (qh[32 * h + l] >> (2 * g)) & 3;
                w[128 * h + 32 * g + l] = low | (high << 4);
            }
        }
    }
    w
}

pub(crate) fn decode_q6_k(b: &[u8], out: &mut [f32]) {
    let b = BlockQ6K::new(b);
    let ds = q6_k_factors(b);
    for (e, (o, q)) in out[..QK_K].iter_mut().zip(q6_k_codes(b)).enumerate() {
        *o = ds[e / 16] * (q as i32 - 32) as f32;
    }
}
