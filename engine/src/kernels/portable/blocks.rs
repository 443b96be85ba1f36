//! The portable reference of a quantized row times f32 activations, in the canonical order
//! (`quant`'s module docs): weight `i` of the decoded row into lane `i % 8`, a ragged tail
//! padded with 0*0, the lanes combined by [`combine_lanes`]. Bit for bit, `dot_row(t, row, x)
//! == dot(&dequantized_row, x)` and `dot_row_fma(t, row, x) == dot_fma(&dequantized_row, x)`;
//! every SIMD kernel of a quantized row equals one of these.

use super::{LANES, combine_lanes};
use crate::quant::{BlockType, check_row, dequantize_row};

/// Weights decoded at a time on the stack (one k-quant block, 8 legacy blocks, or 256
/// floats).
const CHUNK: usize = 256;

/// The canonical dot product over a row (see the module docs); `FMA` picks the family.
pub(crate) fn dot_impl<const FMA: bool>(t: BlockType, row: &[u8], x: &[f32]) -> f32 {
    let info = t.info();
    let per_chunk = CHUNK / info.block_elems; // blocks per chunk (CHUNK is a multiple)
    let mut acc = [0.0f32; LANES];
    let mut buf = [0.0f32; CHUNK];
    for (c, xs) in x.chunks(CHUNK).enumerate() {
        let n = xs.len();
        let bytes = &row[c * per_chunk * info.block_bytes..][..n / info.block_elems * info.block_bytes];
        dequantize_row(t, bytes, &mut buf[..n]);
        // Only the last chunk can be ragged (then it is padded with 0*0, like `dot`'s tail).
        let padded = n.div_ceil(LANES) * LANES;
        for i in 0..padded {
            let (w, v) = if i < n { (buf[i], xs[i]) } else { (0.0, 0.0) };
            let l = &mut acc[i % LANES];
            *l = if FMA { libm::fmaf(w, v, *l) } else { *l + w * v };
        }
    }
    combine_lanes(&acc)
}

/// Dot product of a weight row (`t.row_bytes(x.len())` bytes, else panics) with `x`, in the
/// no-FMA family: bit for bit `portable::dot(&dequantized_row, x)`.
pub fn dot_row(t: BlockType, row: &[u8], x: &[f32]) -> f32 {
    check_row("dot_row", t, x.len(), row.len());
    dot_impl::<false>(t, row, x)
}

/// As [`dot_row`] in the FMA family (with `libm::fmaf`: slow, the reference for SIMD
/// kernels): bit for bit `portable::dot_fma(&dequantized_row, x)`.
pub fn dot_row_fma(t: BlockType, row: &[u8], x: &[f32]) -> f32 {
    check_row("dot_row_fma", t, x.len(), row.len());
    dot_impl::<true>(t, row, x)
}
