//! IQ4_NL: 32 weights of 4-bit codes into a non-linear table of 16 levels (block format and
//! table from ggml, llama.cpp, MIT; our own code). The whole type is this file and one row of
//! the type table: the recipe for a new GGML type (`docs/ARCHITECTURE.md`).
//!
//! Layout (18 bytes, little-endian): d (f16), qs[16]; byte j holds the code of weight j (low
//! nibble) and of weight j+16 (high nibble); w = d * LEVELS[code] (one rounding, as
//! `gguf.quants.IQ4_NL` and ggml's `dequantize_row_iq4_nl`). No quantizer (ggml's searches
//! the scale; none is needed to read models), and no 8-bit pairing: in the `FmaQ8` family its
//! rows keep the f32 FMA dot product.

use super::f16::read_f16;
use super::{block, field};

/// ggml's `kvalues_iq4nl`.
const LEVELS: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// An IQ4_NL block (18 bytes): d, qs[16] (byte j: weight j low nibble, j+16 high).
#[derive(Clone, Copy)]
pub struct BlockIq4Nl<'a>(&'a [u8; 18]);

impl<'a> BlockIq4Nl<'a> {
    pub const BYTES: usize = 18;
    /// Byte offsets of the block's f16 scales (d).
    pub const SCALES_AT: &'static [usize] = &[0];
    /// (bytes, scale offsets): the type table's entry.
    pub const LAYOUT: (usize, &'static [usize]) = (Self::BYTES, Self::SCALES_AT);
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Self(block(b, "IQ4_NL"))
    }
    #[inline(always)]
    pub fn d(self) -> f32 {
        read_f16(field::<18, 2>(self.0, 0))
    }
    #[inline(always)]
    pub fn qs(self) -> &'a [u8; 16] {
        field(self.0, 2)
    }
}

/// Decodes one block into its 32 weights.
pub(crate) fn decode(b: &[u8], out: &mut [f32]) {
    let blk = BlockIq4Nl::new(b);
    let d = blk.d();
    let (lo, hi) = out[..32].split_at_mut(16);
    for ((&q, l), h) in blk.qs().iter().zip(lo).zip(hi) {
        *l = d * LEVELS[(q & 0x0f) as usize] as f32;
        *h = d * LEVELS[(q >> 4) as usize] as f32;
    }
}
