//! GGML/GGUF weight block formats: the type table, decoding (dequantization) and encoding
//! (quantization), and the 8-bit activation format of the `FmaQ8` family ([`q8`]). Block
//! formats from ggml (llama.cpp, MIT); the code here is our own. The dot products over these
//! blocks are kernels: the portable references in `kernels/portable/` (`blocks.rs`, `q8.rs`),
//! the SIMD ones in `kernels/<arch>/`; this module imports nothing from `kernels`.
//!
//! [`f16`] (F16/BF16 conversions), `legacy` (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: 32-weight blocks
//! sharing helpers), `kquants` (Q4_K, Q5_K, Q6_K: 256-weight super-blocks), `iq4_nl`. A new
//! type is one file like `iq4_nl.rs` (typed view, decoder, quantizer if any), its
//! [`BlockType`] variant and its row of [`TABLE`]: nothing else is needed to load and run it.
//!
//! # The canonical order of a quantized dot product
//!
//! A row is a sequence of blocks; each weight is decoded with exactly the roundings of
//! [`dequantize_row`] (e.g. Q4_K: `(d*sc)*q - (dmin*m)`, each operation rounded to f32), so a
//! decoded weight is one exact function of the block bytes. The dot product then follows
//! `kernels::portable`'s canonical order over the decoded weights: weight `i` of the row
//! goes into lane `i % 8` (blocks are multiples of 8 weights, so block boundaries never
//! shift the lanes), the lanes are combined as `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`, and
//! a ragged tail (only F32/F16/BF16 rows can have one) is padded with 0*0 like `dot`'s.
//! Therefore, bit for bit:
//!
//! - `portable::dot_row(t, row, x) == portable::dot(&dequantized_row, x)` (no-FMA family:
//!   `lane += w*x` rounds the product then the sum);
//! - `portable::dot_row_fma(t, row, x) == portable::dot_fma(&dequantized_row, x)` (FMA
//!   family);
//! - the AVX2+FMA kernels (`Kernels::dot_row` of an AVX2 set) equal `dot_row_fma`.
//!
//! So a quantized model gives the same numbers whether its rows are dequantized up front or
//! used in place, and every SIMD version has an exact target. The price: the scale cannot be
//! factored out of a block's sum (llama.cpp's integer dot products do that, and quantize x
//! too), so each weight costs a multiply (and an add or subtract) before the multiply-add.
//!
//! Every entry point checks its slice lengths with `assert!` (also in release builds): safe
//! code cannot make these functions read or write out of bounds.

pub mod f16;
pub(crate) mod iq4_nl;
pub(crate) mod kquants;
pub(crate) mod legacy;

/// `b[at..at + M]` of a block as an array (where inlined with constant offsets, the bounds
/// check folds away). Only the block views of `legacy.rs` and `kquants.rs` use it.
#[inline(always)]
fn field<const N: usize, const M: usize>(b: &[u8; N], at: usize) -> &[u8; M] {
    b[at..at + M].try_into().expect("a field inside its block")
}

/// One block of `N` bytes from a slice of exactly that length (panics otherwise).
#[inline(always)]
fn block<'a, const N: usize>(b: &'a [u8], name: &str) -> &'a [u8; N] {
    match b.try_into() {
        Ok(a) => a,
        Err(_) => panic!("{name}: a block is {N} bytes, got {}", b.len()),
    }
}
pub mod q8;

/// A GGML tensor element type (the ones this engine reads).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4_K,
    Q5_K,
    Q6_K,
    IQ4_NL,
}

/// Decodes one block into its weights.
type DecodeFn = fn(&[u8], &mut [f32]);
/// Encodes one block's weights into the block.
type QuantizeFn = fn(&[f32], &mut [u8]);

/// One row of the type table.
pub struct TypeInfo {
    pub t: BlockType,
    pub name: &'static str,
    /// The id in GGUF tensor infos (`enum ggml_type`).
    pub ggml_id: u32,
    /// Weights per block.
    pub block_elems: usize,
    /// Bytes per block.
    pub block_bytes: usize,
    /// Byte offsets of a block's f16 scales (d, and m / dmin where the type has one; none for
    /// F32, F16, BF16), for the finiteness check of weights at load.
    pub scales_at: &'static [usize],
    /// The block of 8-bit activations this type's rows multiply in the `FmaQ8` family
    /// (`q8::act_block`; its integer dot product is in `kernels/portable/q8.rs`); None: the
    /// rows keep the f32 FMA dot product there.
    pub act_block: Option<usize>,
    /// Decodes one block (`block_bytes` bytes) into `block_elems` weights.
    decode: DecodeFn,
    /// Encodes `block_elems` weights into one block, where implemented.
    quantize: Option<QuantizeFn>,
}

// One argument per column: a row of `TABLE` reads as one line.
#[allow(clippy::too_many_arguments)]
const fn row(
    t: BlockType,
    name: &'static str,
    ggml_id: u32,
    block_elems: usize,
    (block_bytes, scales_at): (usize, &'static [usize]),
    act_block: Option<usize>,
    decode: DecodeFn,
    quantize: Option<QuantizeFn>,
) -> TypeInfo {
    TypeInfo { t, name, ggml_id, block_elems, block_bytes, scales_at, act_block, decode, quantize }
}

fn decode_f32(b: &[u8], out: &mut [f32]) {
    out[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
}
fn decode_f16(b: &[u8], out: &mut [f32]) {
    out[0] = f16::read_f16(b);
}
fn decode_bf16(b: &[u8], out: &mut [f32]) {
    out[0] = f16::bf16_to_f32(u16::from_le_bytes([b[0], b[1]]));
}
fn encode_f32(x: &[f32], b: &mut [u8]) {
    b[..4].copy_from_slice(&x[0].to_le_bytes());
}
fn encode_f16(x: &[f32], b: &mut [u8]) {
    b[..2].copy_from_slice(&f16::f32_to_f16(x[0]).to_le_bytes());
}
fn encode_bf16(x: &[f32], b: &mut [u8]) {
    b[..2].copy_from_slice(&f16::f32_to_bf16(x[0]).to_le_bytes());
}

/// Every supported type, in [`BlockType`] order (`TABLE[t as usize].t == t`).
pub(crate) const ROWS: [TypeInfo; 12] = {
    use BlockType::*;
    [
        row(F32, "F32", 0, 1, (4, &[]), None, decode_f32, Some(encode_f32)),
        row(F16, "F16", 1, 1, (2, &[]), None, decode_f16, Some(encode_f16)),
        row(BF16, "BF16", 30, 1, (2, &[]), None, decode_bf16, Some(encode_bf16)),
        row(Q8_0, "Q8_0", 8, 32, legacy::BlockQ8_0::LAYOUT, Some(q8::SUB), legacy::decode_q8_0, Some(legacy::quantize_q8_0)),
        row(Q4_0, "Q4_0", 2, 32, legacy::BlockQ4_0::LAYOUT, Some(q8::SUB), legacy::decode_q4_0, Some(legacy::quantize_q4_0)),
        row(Q4_1, "Q4_1", 3, 32, legacy::BlockQ4_1::LAYOUT, Some(32), legacy::decode_q4_1, Some(legacy::quantize_q4_1)),
        row(Q5_0, "Q5_0", 6, 32, legacy::BlockQ5_0::LAYOUT, Some(q8::SUB), legacy::decode_q5_0, Some(legacy::quantize_q5_0)),
        row(Q5_1, "Q5_1", 7, 32, legacy::BlockQ5_1::LAYOUT, Some(32), legacy::decode_q5_1, Some(legacy::quantize_q5_1)),
        row(Q4_K, "Q4_K", 12, 256, kquants::BlockQ4K::LAYOUT, Some(kquants::QK_K), kquants::decode_q4_k, None),
        row(Q5_K, "Q5_K", 13, 256, kquants::BlockQ5K::LAYOUT, Some(kquants::QK_K), kquants::decode_q5_k, None),
        row(Q6_K, "Q6_K", 14, 256, kquants::BlockQ6K::LAYOUT, Some(kquants::QK_K), kquants::decode_q6_k, None),
        row(IQ4_NL, "IQ4_NL", 20, 32, iq4_nl::BlockIq4Nl::LAYOUT, None, iq4_nl::decode, None),
    ]
};

/// The type table at run time: a `static`, so that `&TABLE[i]` is a plain reference (indexing
/// the `const` [`ROWS`] with a run-time index may build the whole array on the stack at each
/// use; the kernels read a column of it per call). [`ROWS`] serves the `const` contexts.
pub static TABLE: [TypeInfo; ROWS.len()] = ROWS;

impl BlockType {
    /// Every type, in table order.
    pub const ALL: [BlockType; ROWS.len()] = {
        let mut all = [BlockType::F32; ROWS.len()];
        let mut i = 0;
        while i < ROWS.len() {
            all[i] = ROWS[i].t;
            i += 1;
        }
        all
    };

    pub fn info(self) -> &'static TypeInfo {
        &TABLE[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn ggml_id(self) -> u32 {
        self.info().ggml_id
    }

    pub fn from_ggml_id(id: u32) -> Option<BlockType> {
        TABLE.iter().find(|r| r.ggml_id == id).map(|r| r.t)
    }

    /// Weights per block (1 for F32, F16, BF16).
    pub fn block_elems(self) -> usize {
        self.info().block_elems
    }

    pub fn block_bytes(self) -> usize {
        self.info().block_bytes
    }

    /// Bytes of a row of `n` weights; None if `n` is not a multiple of the block (or the
    /// size overflows).
    pub fn row_bytes(self, n: usize) -> Option<usize> {
        let i = self.info();
        if !n.is_multiple_of(i.block_elems) {
            return None;
        }
        (n / i.block_elems).checked_mul(i.block_bytes)
    }

    /// Whether [`quantize_row`] supports this type.
    pub fn can_quantize(self) -> bool {
        self.info().quantize.is_some()
    }
}

/// Panics unless `bytes` is exactly a row of `n` weights of type `t`.
#[inline]
pub(crate) fn check_row(what: &str, t: BlockType, n: usize, bytes: usize) {
    match t.row_bytes(n) {
        Some(b) => assert!(b == bytes, "{what}: a {} row of {n} weights is {b} bytes, got {bytes}", t.name()),
        None => panic!("{what}: {n} weights is not a whole number of {} blocks of {}", t.name(), t.block_elems()),
    }
}

/// Decodes a row: `src` must be exactly `t.row_bytes(out.len())` bytes (panics otherwise).
pub fn dequantize_row(t: BlockType, src: &[u8], out: &mut [f32]) {
    check_row("dequantize_row", t, out.len(), src.len());
    let info = t.info();
    for (b, o) in src.chunks_exact(info.block_bytes).zip(out.chunks_exact_mut(info.block_elems)) {
        (info.decode)(b, o);
    }
}

/// Encodes a row (round to nearest, as ggml's `quantize_row_*_ref`): `out` must be exactly
/// `t.row_bytes(src.len())` bytes. Panics for a type that `can_quantize` says no to.
pub fn quantize_row(t: BlockType, src: &[f32], out: &mut [u8]) {
    check_row("quantize_row", t, src.len(), out.len());
    let info = t.info();
    let Some(q) = info.quantize else { panic!("quantize_row: quantizing to {} is not implemented", t.name()) };
    for (x, b) in src.chunks_exact(info.block_elems).zip(out.chunks_exact_mut(info.block_bytes)) {
        q(x, b);
    }
}
