//! ggml tensor types: the engine's from `quant::TABLE`, ggml's others by name and size.

use super::*;
/// A tensor's element encoding: ggml's type id. The types this engine computes are
/// [`BlockType`]s, whose table (`quant::TABLE`) gives their names and sizes here too; ggml's
/// other types are known by name and size only ([`OTHER_TYPES`]), so that a file holding
/// them still parses and an error names them; any other id is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GgmlType(u32);

/// (id, name, elements per block, bytes per block) of ggml's types this engine does not
/// compute, as listed by the `gguf` Python package 0.19.0 (`GGML_QUANT_SIZES`).
pub const OTHER_TYPES: [(u32, &str, usize, usize); 23] = [
    (9, "Q8_1", 32, 40),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
];

impl GgmlType {
    pub const F32: GgmlType = GgmlType::of(BlockType::F32);
    pub const F16: GgmlType = GgmlType::of(BlockType::F16);
    pub const BF16: GgmlType = GgmlType::of(BlockType::BF16);
    pub const Q8_0: GgmlType = GgmlType::of(BlockType::Q8_0);
    pub const Q4_0: GgmlType = GgmlType::of(BlockType::Q4_0);
    pub const Q4_1: GgmlType = GgmlType::of(BlockType::Q4_1);
    pub const Q5_0: GgmlType = GgmlType::of(BlockType::Q5_0);
    pub const Q5_1: GgmlType = GgmlType::of(BlockType::Q5_1);
    pub const Q4_K: GgmlType = GgmlType::of(BlockType::Q4_K);
    pub const Q5_K: GgmlType = GgmlType::of(BlockType::Q5_K);
    pub const Q6_K: GgmlType = GgmlType::of(BlockType::Q6_K);

    /// The id of an engine type (from its table row).
    pub const fn of(t: BlockType) -> GgmlType {
        GgmlType(crate::quant::ROWS[t as usize].ggml_id)
    }

    pub const fn from_id(id: u32) -> GgmlType {
        GgmlType(id)
    }

    pub fn id(self) -> u32 {
        self.0
    }

    /// The engine's type of this id, if the engine computes it.
    pub fn block_type(self) -> Option<BlockType> {
        BlockType::from_ggml_id(self.0)
    }

    fn layout(self) -> Option<(&'static str, usize, usize)> {
        if let Some(t) = self.block_type() {
            return Some((t.name(), t.block_elems(), t.block_bytes()));
        }
        let &(_, name, block, size) = OTHER_TYPES.iter().find(|t| t.0 == self.0)?;
        Some((name, block, size))
    }

    /// Elements per block; None for an id unknown to ggml as of gguf-py 0.19.0.
    pub fn block_size(self) -> Option<usize> {
        self.layout().map(|l| l.1)
    }

    /// Bytes per block; None for an id unknown to ggml as of gguf-py 0.19.0.
    pub fn type_size(self) -> Option<usize> {
        self.layout().map(|l| l.2)
    }

    /// ggml's name for the type ("Q4_K"), or "unknown".
    pub fn name(self) -> &'static str {
        self.layout().map_or("unknown", |l| l.0)
    }

    /// Bytes of a row of `n` elements; None if the type is unknown, `n` is not a whole
    /// number of blocks, or the size overflows.
    pub fn row_bytes(self, n: u64) -> Option<u64> {
        let (_, block, size) = self.layout()?;
        if !n.is_multiple_of(block as u64) {
            return None;
        }
        (n / block as u64).checked_mul(size as u64)
    }
}

impl From<BlockType> for GgmlType {
    fn from(t: BlockType) -> GgmlType {
        GgmlType::of(t)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layout() {
            Some(_) => f.write_str(self.name()),
            None => write!(f, "unknown type {}", self.id()),
        }
    }
}
