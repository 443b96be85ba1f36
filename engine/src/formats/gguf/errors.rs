//! Everything a GGUF file can get wrong, each with what was found and where.

use super::*;
/// Everything that can be wrong with a GGUF file, or with a lookup in one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GgufError {
    /// Shorter than the 24-byte header.
    TooShort {
        len: usize,
    },
    BadMagic {
        found: [u8; 4],
    },
    UnsupportedVersion {
        version: u32,
    },
    /// The version reads as 1..=3 byte-swapped: a big-endian GGUF.
    BigEndian {
        version: u32,
    },
    /// Counts the file cannot possibly hold (checked before anything is allocated).
    TooManyEntries {
        what: &'static str,
        count: u64,
        max: u64,
    },
    /// The file ends inside `what`.
    Truncated {
        what: String,
        offset: usize,
        needed: u64,
        len: usize,
    },
    /// A string's length runs past the end of the file.
    StringTooLong {
        what: String,
        offset: usize,
        length: u64,
        available: usize,
    },
    /// An array's count cannot fit in the bytes left.
    ArrayTooLong {
        key: String,
        offset: usize,
        count: u64,
        elem_type: ValueType,
        max: u64,
    },
    UnknownValueType {
        key: String,
        offset: usize,
        type_id: u32,
    },
    NestingTooDeep {
        key: String,
        offset: usize,
    },
    InvalidBool {
        key: String,
        offset: usize,
        value: u8,
    },
    KeyNotUtf8 {
        offset: usize,
    },
    DuplicateKey {
        key: String,
    },
    /// `general.alignment` is not a non-zero power-of-two u32.
    BadAlignment {
        value: Option<u64>,
        found_type: ValueType,
    },
    TensorNameNotUtf8 {
        offset: usize,
    },
    DuplicateTensor {
        name: String,
    },
    BadDimCount {
        name: String,
        offset: usize,
        n_dims: u32,
    },
    /// A dimension beyond ggml's int64 range, or a shape whose product overflows.
    ShapeOverflow {
        name: String,
        dims: Vec<u64>,
    },
    UnknownTensorType {
        name: String,
        type_id: u32,
    },
    /// The row (innermost dimension) is not a whole number of the type's blocks.
    NotBlockMultiple {
        name: String,
        row: u64,
        block: usize,
        ggml_type: GgmlType,
    },
    MisalignedTensor {
        name: String,
        offset: u64,
        alignment: usize,
    },
    /// The tensor's bytes run past the end of the file.
    TensorOutOfBounds {
        name: String,
        start: u64,
        n_bytes: u64,
        len: usize,
    },
    TensorsOverlap {
        first: String,
        second: String,
    },
    // Writer
    /// Tensor data of the wrong size for its shape and type.
    DataSizeMismatch {
        name: String,
        expected: u64,
        found: usize,
    },
    // Lookups
    MissingKey {
        key: String,
    },
    WrongType {
        key: String,
        expected: &'static str,
        found: ValueType,
    },
    NegativeValue {
        key: String,
        value: i64,
    },
    ValueTooLarge {
        key: String,
        value: u64,
    },
    NotUtf8 {
        key: String,
    },
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufError::*;
        match self {
            TooShort { len } => write!(f, "file is {len} bytes, shorter than the {HEADER_BYTES}-byte GGUF header"),
            BadMagic { found } => write!(f, "not a GGUF file: it starts with {found:02x?}, not \"GGUF\""),
            UnsupportedVersion { version: 1 } => {
                write!(f, "GGUF version 1 is not supported (only 2 and 3): convert the model again with a current llama.cpp")
            }
            UnsupportedVersion { version } => {
                write!(f, "unsupported GGUF version {version} (this engine reads versions 2 and 3)")
            }
            BigEndian { version } => write!(f, "this is a big-endian GGUF (version {version} byte-swapped); use the little-endian file"),
            TooManyEntries { what, count, max } => {
                write!(f, "GGUF header claims {count} {what}, but the file's size allows at most {max}: the file is corrupt or truncated")
            }
            Truncated { what, offset, needed, len } => write!(
                f,
                "GGUF file is truncated: {what} at byte {offset} needs {needed} bytes, but the file ends at byte {len} (was the download or copy cut short?)"
            ),
            StringTooLong { what, offset, length, available } => write!(
                f,
                "GGUF {what} at byte {offset} claims {length} bytes, but only {available} remain: the file is corrupt or truncated"
            ),
            ArrayTooLong { key, offset, count, elem_type, max } => write!(
                f,
                "GGUF metadata '{key}': array at byte {offset} claims {count} {elem_type} elements, but the rest of the file holds at most {max}: corrupt or truncated"
            ),
            UnknownValueType { key, offset, type_id } => write!(
                f,
                "GGUF metadata '{key}': unknown value type {type_id} at byte {offset} (known: 0..=12); corrupt, or written by a newer GGUF version"
            ),
            NestingTooDeep { key, offset } => {
                write!(f, "GGUF metadata '{key}': arrays nested more than {MAX_ARRAY_DEPTH} deep at byte {offset}")
            }
            InvalidBool { key, offset, value } => {
                write!(f, "GGUF metadata '{key}': bool at byte {offset} is {value}, not 0 or 1")
            }
            KeyNotUtf8 { offset } => write!(f, "GGUF metadata key at byte {offset} is not valid UTF-8"),
            DuplicateKey { key } => write!(f, "GGUF metadata key '{key}' appears more than once"),
            BadAlignment { value: Some(v), found_type } => {
                write!(f, "GGUF '{ALIGNMENT_KEY}' is {v} ({found_type}); it must be a non-zero power of two stored as u32")
            }
            BadAlignment { value: None, found_type } => {
                write!(f, "GGUF '{ALIGNMENT_KEY}' is a {found_type}; it must be a non-zero power of two stored as u32")
            }
            TensorNameNotUtf8 { offset } => write!(f, "GGUF tensor name at byte {offset} is not valid UTF-8"),
            DuplicateTensor { name } => write!(f, "GGUF tensor '{name}' appears more than once"),
            BadDimCount { name, offset, n_dims } => {
                write!(f, "GGUF tensor '{name}' (info at byte {offset}) has {n_dims} dimensions; ggml allows 1 to {MAX_DIMS}")
            }
            ShapeOverflow { name, dims } => {
                write!(f, "GGUF tensor '{name}' has an impossible shape {dims:?} (its size overflows)")
            }
            UnknownTensorType { name, type_id } => write!(
                f,
                "GGUF tensor '{name}' has ggml type {type_id}, unknown here, so its size cannot be checked; re-quantize the model to a common type (e.g. Q4_K_M, Q8_0, F16)"
            ),
            NotBlockMultiple { name, row, block, ggml_type } => {
                write!(f, "GGUF tensor '{name}': row of {row} elements is not a multiple of the {ggml_type} block size {block}")
            }
            MisalignedTensor { name, offset, alignment } => {
                write!(f, "GGUF tensor '{name}': data offset {offset} is not a multiple of the file's alignment {alignment}")
            }
            TensorOutOfBounds { name, start, n_bytes, len } => write!(
                f,
                "GGUF tensor '{name}': its {n_bytes} bytes at byte {start} run past the end of the {len}-byte file (truncated download?)"
            ),
            TensorsOverlap { first, second } => {
                write!(f, "GGUF tensors '{first}' and '{second}' overlap in the data section: the file is corrupt")
            }
            DataSizeMismatch { name, expected, found } => {
                write!(f, "tensor '{name}': {found} bytes of data given, its shape and type need {expected}")
            }
            MissingKey { key } => write!(f, "GGUF metadata has no '{key}'"),
            WrongType { key, expected, found } => {
                write!(f, "GGUF metadata '{key}' is a {found}, expected {expected}")
            }
            NegativeValue { key, value } => write!(f, "GGUF metadata '{key}' is {value}, expected a non-negative count"),
            ValueTooLarge { key, value } => write!(f, "GGUF metadata '{key}' is {value}, too large for this machine"),
            NotUtf8 { key } => write!(f, "GGUF metadata '{key}' is not valid UTF-8"),
        }
    }
}

impl core::error::Error for GgufError {}
