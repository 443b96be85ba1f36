//! The 32-weight block types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (block formats from ggml,
//! llama.cpp, MIT; our own code).
//!
//! Layouts (little-endian; `d`, `m` are f16):
//! - Q8_0 (34 bytes): d, i8 q[32]; w = q * d.
//! - Q4_0 (18): d, qs[16]; byte j holds weight j (low nibble) and j+16 (high); w = (q-8) * d.
//! - Q4_1 (20): d, m, qs[16] as Q4_0; w = q * d + m (two roundings).
//! - Q5_0 (22): d, u32 qh, qs[16]; bit j of qh is bit 4 of weight j; w = (q-16) * d.
//! - Q5_1 (24): d, m, u32 qh, qs[16]; w = q * d + m.
//!
//! Every decoder computes each weight with exactly the roundings above (those of
//! `gguf.quants.dequantize` and ggml's `dequantize_row_*`), so a decoded weight is one exact
//! function of the block. Quantizers are round-to-nearest as ggml's `quantize_row_*_ref`.

use super::f16::{f32_to_f16, read_f16};
use super::{block, field};

pub(crate) const QK: usize = 32;

// Typed views of one block each: their fields by name, so that no byte offset of these
// layouts appears outside this file. `new` takes exactly one block (else panics).

/// A Q8_0 block (34 bytes): d, i8 q[32].
#[derive(Clone, Copy)]
pub struct BlockQ8_0<'a>(&'a [u8; 34]);

impl<'a> BlockQ8_0<'a> {
    pub const BYTES: usize = 34;
    /// Byte offsets of the block's f16 scales (d).
    pub const SCALES_AT: &'static [usize] = &[0];
    /// (bytes, scale offsets): the type table's entry.
    pub const LAYOUT: (usize, &'static [usize]) = (Self::BYTES, Self::SCALES_AT);
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Self(block(b, "Q8_0"))
    }
    #[inline(always)]
    pub fn d(self) -> f32 {
        read_f16(field::<34, 2>(self.0, 0))
    }
    /// `d` as its f16 bits (for kernels that convert with the CPU's F16C instruction).
    #[inline(always)]
    pub fn d_bits(self) -> u16 {
        u16::from_le_bytes(*field::<34, 2>(self.0, 0))
    }
    /// The 32 codes (i8 as bytes), in weight order.
    #[inline(always)]
    pub fn qs(self) -> &'a [u8; 32] {
        field(self.0, 2)
    }
}

/// A Q4_0 block (18 bytes): d, qs[16] (byte j: weight j low nibble, j+16 high).
#[derive(Clone, Copy)]
pub struct BlockQ4_0<'a>(&'a [u8; 18]);

impl<'a> BlockQ4_0<'a> {
    pub const BYTES: usize = 18;
    pub const SCALES_AT: &'static [usize] = &[0];
    /// (bytes, scale offsets): the type table's entry.
    pub const LAYOUT: (usize, &'static [usize]) = (Self::BYTES, Self::SCALES_AT);
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Self(block(b, "Q4_0"))
    }
    #[inline(always)]
    pub fn d(self) -> f32 {
        read_f16(field::<18, 2>(self.0, 0))
    }
    /// `d` as its f16 bits (for kernels that convert with the CPU's F16C instruction).
    #[inline(always)]
    pub fn d_bits(self) -> u16 {
        u16::from_le_bytes(*field::<18, 2>(self.0, 0))
    }
    #[inline(always)]
    pub fn qs(self) -> &'a [u8; 16] {
        field(self.0, 2)
    }
}

/// A Q4_1 block (20 bytes): d, m, qs[16] as Q4_0 (w = d * q + m, q in 0..15).
#[derive(Clone, Copy)]
pub struct BlockQ4_1<'a>(&'a [u8; 20]);

impl<'a> BlockQ4_1<'a> {
    pub const BYTES: usize = 20;
    pub const SCALES_AT: &'static [usize] = &[0, 2];
    /// (bytes, scale offsets): the type table's entry.
    pub const LAYOUT: (usize, &'static [usize]) = (Self::BYTES, Self::SCALES_AT);
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Self(block(b, "Q4_1"))
    }
    #[inline(always)]
    pub fn d(self) -> f32 {
        read_f16(field::<20, 2>(self.0, 0))
    }
    #[inline(always)]
    pub fn m(self) -> f32 {
        read_f16(field::<20, 2>(self.0, 2))
    }
    /// `d` as its f16 bits (for kernels that convert with the CPU's F16C instruction).
    #[inline(always)]
    pub fn d_bits(self) -> u16 {
        u16::from_le_bytes(*field::<20, 2>(self.0, 0))
    }
    /// `m` as its f16 bits.
    #[inline(always)]
    pub fn m_bits(self) -> u16 {
        u16::from_le_bytes(*field::<20, 2>(self.0, 2))
    }
    #[inline(always)]
    pub fn qs(self) -> &'a [u8; 16] {
        field(self.0, 4)
    }
}

/// A Q5_0 block (22 bytes): d, u32 qh (bit j: bit 4 of weight j), qs[16] as Q4_0.
#[derive(Clone, Copy)]
pub struct BlockQ5_0<'a>(&'a [u8; 22]);

impl<'a> BlockQ5_0<'a> {
    pub const BYTES: usize = 22;
    pub const SCALES_AT: &'static [usize] = &[0];
    /// (bytes, scale offsets): the type table's entry.
    pub const LAYOUT: (usize, &'static [usize]) = (Self::BYTES, Self::SCALES_AT);
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Self(block(b, "Q5_0"))
    }
    #[inline(always)]
    pub fn d(self) -> f32 {
        read_f16(field::<22, 2>(self.0, 0))
    }
    /// `d` as its f16 bits (for kernels that convert with the CPU's F16C instruction).
    #[inline(always)]
    pub fn d_bits(self) -> u16 {
        u16::from_le_bytes(*field::<22, 2>(self.0, 0))
    }
    #[inline(always)]
    pub fn qh(self) -> u32 {
        u32::from_le_bytes(*field(self.0, 2))
    }
    #[inline(always)]
    pub fn qs(self) -> &'a [u8; 16] {
        field(self.0, 6)
    }
}

/// A Q5_1 block (24 bytes): d, m, u32 qh, qs[16] as Q5_0 (w = d * q + m, q in 0..31).
#[derive(Clone, Copy)]
pub struct BlockQ5_1<'a>(&'a [u8; 24]);

impl<'a> BlockQ5_1<'a> {
    pub const BYTES: usize = 24;
    pub const SCALES_AT: &'static [usize] = &[0, 2];
    /// (bytes, scale offsets): the type table's entry.
    pub const LAYOUT: (usize, &'static [usize]) = (Self::BYTES, Self::SCALES_AT);
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Self(block(b, "Q5_1"))
    }
    #[inline(always)]
    pub fn d(self) -> f32 {
        read_f16(field::<24, 2>(self.0, 0))
    }
    #[inline(always)]
    pub fn m(self) -> f32 {
        read_f16(field::<24, 2>(self.0, 2))
    }
    /// `d` as its f16 bits (for kernels that convert with the CPU's F16C instruction).
    #[inline(always)]
    pub fn d_bits(self) -> u16 {
        u16::from_le_bytes(*field::<24, 2>(self.0, 0))
    }
    /// `m` as its f16 bits.
    #[inline(always)]
    pub fn m_bits(self) -> u16 {
        u16::from_le_bytes(*field::<24, 2>(self.0, 2))
    }
    #[inline(always)]
    pub fn qh(self) -> u32 {
        u32::from_le_bytes(*field(self.0, 4))
    }
    #[inline(always)]
    pub fn qs(self) -> &'a [u8; 16] {
        field(self.0, 8)
    }
}

/// The unsigned codes of a Q4_1 (0..15) or Q5_1 (0..31) block, in weight order, with its
/// `d` and `m`.
pub(crate) fn unsigned_codes(t: super::BlockType, b: &[u8]) -> ([u8; QK], f32, f32) {
    use super::BlockType;
    let mut w = [0u8; QK];
    let (qs, qh, d, m) = match t {
        BlockType::Q4_1 => {
            let b = BlockQ4_1::new(b);
            (b.qs(), 0, b.d(), b.m())
        }
        BlockType::Q5_1 => {
            let b = BlockQ5_1::new(b);
            (b.qs(), b.qh(), b.d(), b.m())
        }
        _ => unreachable!("unsigned_codes: {} is not a 32-weight type with a minimum", t.name()),
    };
    for (j, &q) in qs.iter().enumerate() {
        w[j] = (q & 0x0f) | (((qh >> j) & 1) << 4) as u8;
        w[j + 16] = (q >> 4) | (((qh >> (j + 16)) & 1) << 4) as u8;
    }
    (w, d, m)
}

/// The signed weight codes of a 32-weight block (Q8_0, Q4_0, Q5_0) and its `d`.
pub(crate) fn signed_codes(t: super::BlockType, b: &[u8]) -> ([i8; QK], f32) {
    use super::BlockType;
    let mut w = [0i8; QK];
    match t {
        BlockType::Q8_0 => {
            let b = BlockQ8_0::new(b);
            w.iter_mut().zip(b.qs()).for_each(|(o, &q)| *o = q as i8);
            (w, b.d())
        }
        BlockType::Q4_0 => {
            let b = BlockQ4_0::new(b);
            for (j, &q) in b.qs().iter().enumerate() {
                w[j] = (q & 0x0f) as i8 - 8;
                w[j + 16] = (q >> 4) as i8 - 8;
            }
            (w, b.d())
        }
        BlockType::Q5_0 => {
            let b = BlockQ5_0::new(b);
            let qh = b.qh();
            for (j, &q) in b.qs().iter().enumerate() {
                w[j] = ((q & 0x0f) | (((qh >> j) & 1) << 4) as u8) as i8 - 16;
                w[j + 16] = ((q >> 4) | (((qh >> (j + 16)) & 1) << 4) as u8) as i8 - 16;
            }
            (w, b.d())
        }
        _ => unreachable!("signed_codes: {} is not a signed 32-weight type", t.name()),
    }
}

#[inline]
fn nibbles(qs: &[u8], j: usize) -> (u8, u8) {
    (qs[j] & 0x0f, qs[j] >> 4)
}

pub(crate) fn decode_q8_0(b: &[u8], out: &mut [f32]) {
    let d = read_f16(&b[0..2]);
    for (o, &q) in out[..QK].iter_mut().zip(&b[2..2 + QK]) {
        *o = (q as i8) as f32 * d;
    }
}

pub(crate) fn decode_q4_0(b: &[u8], out: &mut [f32]) {
    let d = read_f16(&b[0..2]);
    let qs = &b[2..18];
    for j in 0..QK / 2 {
        let (lo, hi) = nibbles(qs, j);
        out[j] = (lo as i32 - 8) as f32 * d;
        out[j + QK / 2] = (hi as i32 - 8) as f32 * d;
    }
}

pub(crate) fn decode_q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (read_f16(&b[0..2]), read_f16(&b[2..4]));
    let qs = &b[4..20];
    for j in 0..QK / 2 {
        let (lo, hi) = nibbles(qs, j);
        out[j] = lo as f32 * d + m;
        out[j + QK / 2] = hi as f32 * d + m;
    }
}

pub(crate) fn decode_q5_0(b: &[u8], out: &mut [f32]) {
    let d = read_f16(&b[0..2]);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for j in 0..QK / 2 {
        let (lo, hi) = nibbles(qs, j);
        let q0 = (lo as u32 | ((qh >> j) & 1) << 4) as i32 - 16;
        let q1 = (hi as u32 | ((qh >> (j + 16)) & 1) << 4) as i32 - 16;
        out[j] = q0 as f32 * d;
        out[j + QK / 2] = q1 as f32 * d;
    }
}

pub(crate) fn decode_q5_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (read_f16(&b[0..2]), read_f16(&b[2..4]));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for j in 0..QK / 2 {
        let (lo, hi) = nibbles(qs, j);
        let q0 = lo as u32 | ((qh >> j) & 1) << 4;
        let q1 = hi as u32 | ((qh >> (j + 16)) & 1) << 4;
        out[j] = q0 as f32 * d + m;
        out[j + QK / 2] = q1 as f32 * d + m;
    }
}

/// The element of largest magnitude, keeping its sign (the first one on ties; 0 if all are).
fn signed_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

#[inline]
fn inverse(d: f32) -> f32 {
    if d == 0.0 { 0.0 } else { 1.0 / d }
}

pub(crate) fn quantize_q8_0(x: &[f32], b: &mut [u8]) {
    let amax = x[..QK].iter().fold(0.0f32, |a, &v| if v.abs() > a { v.abs() } else { a });
    let d = amax / 127.0;
    let id = inverse(d);
    b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    for (q, &v) in b[2..2 + QK].iter_mut().zip(x) {
        *q = (libm::roundf(v * id) as i8) as u8;
    }
}

/// The 4- or 5-bit codes of a symmetric block (Q4_0: levels 16, Q5_0: 32) and its scale.
fn symmetric_codes(x: &[f32], levels: f32, q: &mut [u8; QK]) -> f32 {
    let max = signed_absmax(&x[..QK]);
    let d = max / -(levels / 2.0);
    let id = inverse(d);
    let top = levels as u8 - 1;
    for (qi, &v) in q.iter_mut().zip(x) {
        *qi = ((v * id + (levels / 2.0 + 0.5)) as u8).min(top);
    }
    d
}

/// The codes of an offset block (Q4_1: levels 16, Q5_1: 32), its scale and its minimum.
fn offset_codes(x: &[f32], levels: f32, q: &mut [u8; QK]) -> (f32, f32) {
    let (min, max) = min_max(&x[..QK]);
    let d = (max - min) / (levels - 1.0);
    let id = inverse(d);
    let top = levels as u8 - 1;
    for (qi, &v) in q.iter_mut().zip(x) {
        *qi = (((v - min) * id + 0.5) as u8).min(top);
    }
    (d, min)
}

fn pack_nibbles(q: &[u8; QK], qs: &mut [u8]) {
    for j in 0..QK / 2 {
        qs[j] = (q[j] & 0x0f) | ((q[j + QK / 2] & 0x0f) << 4);
    }
}

fn high_bits(q: &[u8; QK]) -> [u8; 4] {
    let mut qh = 0u32;
    for (j, &v) in q.iter().enumerate() {
        qh |= ((v as u32 >> 4) & 1) << j;
    }
    qh.to_le_bytes()
}

pub(crate) fn quantize_q4_0(x: &[f32], b: &mut [u8]) {
    let mut q = [0u8; QK];
    let d = symmetric_codes(x, 16.0, &mut q);
    b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    pack_nibbles(&q, &mut b[2..18]);
}

pub(crate) fn quantize_q4_1(x: &[f32], b: &mut [u8]) {
    let mut q = [0u8; QK];
    let (d, m) = offset_codes(x, 16.0, &mut q);
    b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    b[2..4].copy_from_slice(&f32_to_f16(m).to_le_bytes());
    pack_nibbles(&q, &mut b[4..20]);
}

pub(crate) fn quantize_q5_0(x: &[f32], b: &mut [u8]) {
    let mut q = [0u8; QK];
    let d = symmetric_codes(x, 32.0, &mut q);
    b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    b[2..6].copy_from_slice(&high_bits(&q));
    pack_nibbles(&q, &mut b[6..22]);
}

pub(crate) fn quantize_q5_1(x: &[f32], b: &mut [u8]) {
    let mut q = [0u8; QK];
    let (d, m) = offset_codes(x, 32.0, &mut q);
    b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    b[2..4].copy_from_slice(&f32_to_f16(m).to_le_bytes());
    b[4..8].copy_from_slice(&high_bits(&q));
    pack_nibbles(&q, &mut b[8..24]);
}
