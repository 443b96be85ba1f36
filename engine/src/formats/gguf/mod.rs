//! GGUF containers: the metadata and tensor directory of llama.cpp's model files, read in
//! place and written back. Format from llama.cpp/ggml's GGUF (MIT); this is our own code.
//!
//! Layout (all little-endian): `"GGUF"`, u32 version (2 or 3), u64 tensor count, u64
//! key-value count; the key-values (key: u64 length + bytes; u32 value type; the value);
//! the tensor infos (name: u64 length + bytes; u32 n_dims; n_dims u64 dims, innermost
//! first; u32 ggml type; u64 offset relative to the data section); padding up to
//! `general.alignment` (a u32 power of two, default 32); the data section. Value types:
//! 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string (u64 length + bytes),
//! 9 array (u32 element type + u64 count + elements; arrays may nest), 10 u64, 11 i64, 12 f64.
//!
//! [`Gguf::parse`] borrows the file's bytes and copies nothing big: strings are slices of
//! the file, and an array (a 262,144-token vocabulary, 151,387 merges) is kept as its element
//! type, count and raw bytes, decoded lazily by [`Array::strings`], [`Array::f32s`], ...
//! The parse still walks every value once, so everything it accepts is in bounds: every
//! string and array element lies inside the file, every tensor's bytes lie inside the data
//! section without overlapping another's, and every size computation is checked. Counts
//! from the file are compared against what the remaining bytes could hold before anything
//! is allocated or looped over. Hostile input gives a [`GgufError`], never a panic.
//!
//! [`GgufWriter`] builds a version-3 file in memory (used to export models and in tests).
//!
//! Files: `values.rs` (value types, values, lazy arrays), `types.rs` (ggml tensor types),
//! `parse.rs` (the bounds-checked reader), `write.rs` (the writer), `errors.rs`
//! ([`GgufError`]); this file holds the parsed file ([`Gguf`], [`KeyValue`], [`TensorInfo`]).

use crate::quant::BlockType;
use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

pub const MAGIC: [u8; 4] = *b"GGUF";
/// The version [`GgufWriter`] writes; [`Gguf::parse`] reads 2 and 3 (same layout).
pub const VERSION: u32 = 3;
pub const DEFAULT_ALIGNMENT: u32 = 32;
pub const ALIGNMENT_KEY: &str = "general.alignment";
pub const ARCHITECTURE_KEY: &str = "general.architecture";
/// ggml tensors have at most 4 dimensions.
pub const MAX_DIMS: usize = 4;
/// Arrays of arrays may nest this deep (real files use no nesting at all).
pub const MAX_ARRAY_DEPTH: usize = 8;
/// Magic, version, tensor count, KV count.
pub const HEADER_BYTES: usize = 4 + 4 + 8 + 8;
/// Smallest possible key-value: empty key (8), type (4), a 1-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Smallest possible tensor info: empty name (8), n_dims (4), one dim (8), type (4), offset (8).
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;

mod errors;
mod parse;
mod types;
mod values;
mod write;

pub use errors::*;
pub use types::*;
pub use values::*;
pub use write::*;

use parse::{Reader, read_value};

/// One metadata entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyValue<'a> {
    pub key: &'a str,
    pub value: Value<'a>,
    /// Byte offset of the entry in the file.
    pub offset: usize,
}

/// One tensor's directory entry, checked against the file at parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorInfo<'a> {
    pub name: &'a str,
    /// Dimensions innermost (contiguous) first, as ggml's `ne`; entries past `n_dims` are 1.
    pub dims: [u64; MAX_DIMS],
    pub n_dims: usize,
    pub ggml_type: GgmlType,
    /// Offset of the data relative to the data section (a multiple of the alignment).
    pub offset: u64,
    /// Bytes of data (whole blocks of `ggml_type`).
    pub n_bytes: usize,
}

impl TensorInfo<'_> {
    /// The dimensions that are present, innermost first.
    pub fn shape(&self) -> &[u64] {
        &self.dims[..self.n_dims.min(MAX_DIMS)]
    }

    /// Number of elements (saturating; checked to fit at parse).
    pub fn n_elements(&self) -> u64 {
        self.shape().iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }
}

/// A parsed GGUF file borrowing its bytes.
#[derive(Clone, Debug)]
pub struct Gguf<'a> {
    bytes: &'a [u8],
    version: u32,
    alignment: usize,
    data_offset: usize,
    kvs: Vec<KeyValue<'a>>,
    tensors: Vec<TensorInfo<'a>>,
}

impl<'a> Gguf<'a> {
    /// Parses and checks a whole GGUF file. Never panics; allocates only in proportion to
    /// what the file really contains.
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>, GgufError> {
        parse::parse(bytes)
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Absolute byte offset of the data section.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every metadata entry in file order.
    pub fn metadata(&self) -> &[KeyValue<'a>] {
        &self.kvs
    }

    /// Every tensor in file order.
    pub fn tensors(&self) -> &[TensorInfo<'a>] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Exactly the tensor's bytes, a slice of the file (for an empty tensor, an empty slice
    /// at its offset). For a `TensorInfo` of this file this is always its full range (checked
    /// at parse); for one from elsewhere that does not fit, empty.
    pub fn tensor_data(&self, info: &TensorInfo<'_>) -> &'a [u8] {
        let range = usize::try_from(info.offset)
            .ok()
            .and_then(|o| self.data_offset.checked_add(o))
            .and_then(|s| Some(s..s.checked_add(info.n_bytes)?));
        range.and_then(|r| self.bytes.get(r)).unwrap_or(&[])
    }

    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.kvs.iter().find(|kv| kv.key == key).map(|kv| kv.value)
    }

    fn require(&self, key: &str) -> Result<Value<'a>, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey { key: key.to_string() })
    }

    fn wrong(key: &str, expected: &'static str, v: &Value<'_>) -> GgufError {
        GgufError::WrongType { key: key.to_string(), expected, found: v.value_type() }
    }

    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        match self.require(key)? {
            Value::U32(v) => Ok(v),
            v => Err(Self::wrong(key, "u32", &v)),
        }
    }

    pub fn get_i32(&self, key: &str) -> Result<i32, GgufError> {
        match self.require(key)? {
            Value::I32(v) => Ok(v),
            v => Err(Self::wrong(key, "i32", &v)),
        }
    }

    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        match self.require(key)? {
            Value::U64(v) => Ok(v),
            v => Err(Self::wrong(key, "u64", &v)),
        }
    }

    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.require(key)? {
            Value::F32(v) => Ok(v),
            v => Err(Self::wrong(key, "f32", &v)),
        }
    }

    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.require(key)? {
            Value::Bool(v) => Ok(v),
            v => Err(Self::wrong(key, "bool", &v)),
        }
    }

    /// A string value, checked to be UTF-8.
    pub fn get_str(&self, key: &str) -> Result<&'a str, GgufError> {
        match self.require(key)? {
            v @ Value::String(_) => v.as_str().ok_or_else(|| GgufError::NotUtf8 { key: key.to_string() }),
            v => Err(Self::wrong(key, "string", &v)),
        }
    }

    pub fn get_array(&self, key: &str) -> Result<Array<'a>, GgufError> {
        match self.require(key)? {
            Value::Array(a) => Ok(a),
            v => Err(Self::wrong(key, "array", &v)),
        }
    }

    /// A count or size stored as any integer type (files vary between u32 and u64), which
    /// must be non-negative and fit a usize.
    pub fn get_usize(&self, key: &str) -> Result<usize, GgufError> {
        let v = self.require(key)?;
        let n = v.as_integer().ok_or_else(|| Self::wrong(key, "an integer", &v))?;
        if n < 0 {
            return Err(GgufError::NegativeValue { key: key.to_string(), value: n as i64 });
        }
        usize::try_from(n).map_err(|_| GgufError::ValueTooLarge { key: key.to_string(), value: n as u64 })
    }

    /// `general.architecture` ("llama", "gemma3", "qwen2", ...).
    pub fn architecture(&self) -> Result<&'a str, GgufError> {
        self.get_str(ARCHITECTURE_KEY)
    }
}
