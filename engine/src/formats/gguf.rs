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

use crate::quant::{BlockType, TABLE};
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

// ---------------------------------------------------------------------------------------
// Value types and values
// ---------------------------------------------------------------------------------------

/// A metadata value's type, with its id in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }

    /// Bytes of one value of a fixed-size type; None for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The fewest bytes one value of this type can take (bounds array counts).
    fn min_size(self) -> u64 {
        match self {
            ValueType::String => 8,
            ValueType::Array => 4 + 8,
            t => t.fixed_size().unwrap_or(1) as u64,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value. Strings are the file's raw bytes (GGUF says UTF-8; check with
/// [`Value::as_str`] or [`Gguf::get_str`]); arrays are decoded lazily.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(&'a [u8]),
    Array(Array<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'a> Value<'a> {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// The string, if this is a string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::String(b) => core::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Any integer type as a signed 128-bit value (None for floats, bools, strings, arrays).
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v as i128,
            Value::I8(v) => v as i128,
            Value::U16(v) => v as i128,
            Value::I16(v) => v as i128,
            Value::U32(v) => v as i128,
            Value::I32(v) => v as i128,
            Value::U64(v) => v as i128,
            Value::I64(v) => v as i128,
            _ => return None,
        })
    }
}

/// An array value: element type, count and the elements' raw bytes, all checked at parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Array<'a> {
    elem_type: ValueType,
    len: usize,
    raw: &'a [u8],
}

impl<'a> Array<'a> {
    pub fn elem_type(&self) -> ValueType {
        self.elem_type
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements' bytes as stored in the file.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Fixed-size elements of type `T`, or None if the array holds another type.
    pub fn iter<T: Scalar>(&self) -> Option<Scalars<'a, T>> {
        if self.elem_type != T::TYPE {
            return None;
        }
        Some(Scalars { chunks: self.raw.chunks_exact(T::TYPE.fixed_size().unwrap_or(1)), _t: PhantomData })
    }

    pub fn u8s(&self) -> Option<Scalars<'a, u8>> {
        self.iter()
    }
    pub fn i8s(&self) -> Option<Scalars<'a, i8>> {
        self.iter()
    }
    pub fn u16s(&self) -> Option<Scalars<'a, u16>> {
        self.iter()
    }
    pub fn i16s(&self) -> Option<Scalars<'a, i16>> {
        self.iter()
    }
    pub fn u32s(&self) -> Option<Scalars<'a, u32>> {
        self.iter()
    }
    pub fn i32s(&self) -> Option<Scalars<'a, i32>> {
        self.iter()
    }
    pub fn f32s(&self) -> Option<Scalars<'a, f32>> {
        self.iter()
    }
    pub fn bools(&self) -> Option<Scalars<'a, bool>> {
        self.iter()
    }
    pub fn u64s(&self) -> Option<Scalars<'a, u64>> {
        self.iter()
    }
    pub fn i64s(&self) -> Option<Scalars<'a, i64>> {
        self.iter()
    }
    pub fn f64s(&self) -> Option<Scalars<'a, f64>> {
        self.iter()
    }

    /// The strings' raw bytes, or None if the array holds another type.
    pub fn strings(&self) -> Option<Strings<'a>> {
        (self.elem_type == ValueType::String).then_some(Strings { rest: self.raw, left: self.len })
    }

    /// The inner arrays of an array of arrays, or None if the array holds another type.
    pub fn arrays(&self) -> Option<Arrays<'a>> {
        (self.elem_type == ValueType::Array).then_some(Arrays { values: self.values() })
    }

    /// Every element as a [`Value`], whatever the type.
    pub fn values(&self) -> Values<'a> {
        Values { reader: Reader { bytes: self.raw, pos: 0 }, elem_type: self.elem_type, left: self.len }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A fixed-size element type of an array.
pub trait Scalar: Copy + sealed::Sealed {
    const TYPE: ValueType;
    /// Decodes from exactly `TYPE.fixed_size()` little-endian bytes.
    fn decode(b: &[u8]) -> Self;
}

macro_rules! scalar {
    ($t:ty, $vt:ident, $n:literal) => {
        impl sealed::Sealed for $t {}
        impl Scalar for $t {
            const TYPE: ValueType = ValueType::$vt;
            fn decode(b: &[u8]) -> Self {
                let mut a = [0u8; $n];
                a.copy_from_slice(&b[..$n]);
                <$t>::from_le_bytes(a)
            }
        }
    };
}
scalar!(u8, U8, 1);
scalar!(i8, I8, 1);
scalar!(u16, U16, 2);
scalar!(i16, I16, 2);
scalar!(u32, U32, 4);
scalar!(i32, I32, 4);
scalar!(f32, F32, 4);
scalar!(u64, U64, 8);
scalar!(i64, I64, 8);
scalar!(f64, F64, 8);
impl sealed::Sealed for bool {}
impl Scalar for bool {
    const TYPE: ValueType = ValueType::Bool;
    fn decode(b: &[u8]) -> Self {
        b[0] != 0
    }
}

/// Lazily decoded fixed-size array elements.
#[derive(Clone, Debug)]
pub struct Scalars<'a, T> {
    chunks: core::slice::ChunksExact<'a, u8>,
    _t: PhantomData<T>,
}

impl<T: Scalar> Iterator for Scalars<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.chunks.next().map(T::decode)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
    fn nth(&mut self, n: usize) -> Option<T> {
        self.chunks.nth(n).map(T::decode)
    }
}
impl<T: Scalar> ExactSizeIterator for Scalars<'_, T> {}
impl<T: Scalar> DoubleEndedIterator for Scalars<'_, T> {
    fn next_back(&mut self) -> Option<T> {
        self.chunks.next_back().map(T::decode)
    }
}

/// Lazily decoded string elements (raw bytes; GGUF says UTF-8).
#[derive(Clone, Debug)]
pub struct Strings<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Strings<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let mut r = Reader { bytes: self.rest, pos: 0 };
        // The parse checked every element; a failure here can only mean an Array built
        // from another file, and ends the iteration.
        match r.string() {
            Ok(s) => {
                self.rest = &self.rest[r.pos..];
                self.left -= 1;
                Some(s)
            }
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}
impl ExactSizeIterator for Strings<'_> {}

/// Every element of an array as a [`Value`].
#[derive(Clone, Debug)]
pub struct Values<'a> {
    reader: Reader<'a>,
    elem_type: ValueType,
    left: usize,
}

impl<'a> Iterator for Values<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        match read_value(&mut self.reader, self.elem_type, 1) {
            Ok(v) => {
                self.left -= 1;
                Some(v)
            }
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}
impl ExactSizeIterator for Values<'_> {}

/// The inner arrays of an array of arrays.
#[derive(Clone, Debug)]
pub struct Arrays<'a> {
    values: Values<'a>,
}

impl<'a> Iterator for Arrays<'a> {
    type Item = Array<'a>;
    fn next(&mut self) -> Option<Array<'a>> {
        match self.values.next()? {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.values.size_hint()
    }
}
impl ExactSizeIterator for Arrays<'_> {}

// ---------------------------------------------------------------------------------------
// ggml tensor types
// ---------------------------------------------------------------------------------------

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
        GgmlType(TABLE[t as usize].ggml_id)
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

// ---------------------------------------------------------------------------------------
// The parsed file
// ---------------------------------------------------------------------------------------

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
        parse(bytes)
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

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// A failure inside a value, before the key is attached.
enum Fault {
    Short { offset: usize, needed: u64 },
    StringTooLong { offset: usize, length: u64, available: usize },
    ArrayTooLong { offset: usize, count: u64, elem_type: ValueType, max: u64 },
    UnknownType { offset: usize, type_id: u32 },
    TooDeep { offset: usize },
    BadBool { offset: usize, value: u8 },
}

impl Fault {
    fn at(self, what: impl FnOnce() -> String, key: impl FnOnce() -> String, len: usize) -> GgufError {
        match self {
            Fault::Short { offset, needed } => GgufError::Truncated { what: what(), offset, needed, len },
            Fault::StringTooLong { offset, length, available } => GgufError::StringTooLong { what: what(), offset, length, available },
            Fault::ArrayTooLong { offset, count, elem_type, max } => GgufError::ArrayTooLong { key: key(), offset, count, elem_type, max },
            Fault::UnknownType { offset, type_id } => GgufError::UnknownValueType { key: key(), offset, type_id },
            Fault::TooDeep { offset } => GgufError::NestingTooDeep { key: key(), offset },
            Fault::BadBool { offset, value } => GgufError::InvalidBool { key: key(), offset, value },
        }
    }
}

#[derive(Clone, Debug)]
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Fault> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Fault::Short { offset: self.pos, needed: n as u64 }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fault> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, Fault> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Fault> {
        self.array().map(u64::from_le_bytes)
    }

    /// A u64 length and that many bytes, the length bounded by the bytes left.
    fn string(&mut self) -> Result<&'a [u8], Fault> {
        let offset = self.pos;
        let length = self.u64()?;
        let available = self.remaining();
        if length > available as u64 {
            return Err(Fault::StringTooLong { offset, length, available });
        }
        self.take(length as usize)
    }
}

/// Reads one value of type `ty`; arrays are walked (and their elements checked) but not
/// decoded. `depth` is the nesting level of the value (0 for a KV's own value).
fn read_value<'a>(r: &mut Reader<'a>, ty: ValueType, depth: usize) -> Result<Value<'a>, Fault> {
    Ok(match ty {
        ValueType::U8 => Value::U8(r.array::<1>()?[0]),
        ValueType::I8 => Value::I8(r.array::<1>()?[0] as i8),
        ValueType::U16 => Value::U16(u16::from_le_bytes(r.array()?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(r.array()?)),
        ValueType::U32 => Value::U32(u32::from_le_bytes(r.array()?)),
        ValueType::I32 => Value::I32(i32::from_le_bytes(r.array()?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(r.array()?)),
        ValueType::U64 => Value::U64(u64::from_le_bytes(r.array()?)),
        ValueType::I64 => Value::I64(i64::from_le_bytes(r.array()?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(r.array()?)),
        ValueType::Bool => {
            let offset = r.pos;
            match r.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                value => return Err(Fault::BadBool { offset, value }),
            }
        }
        ValueType::String => Value::String(r.string()?),
        ValueType::Array => Value::Array(read_array(r, depth)?),
    })
}

fn read_array<'a>(r: &mut Reader<'a>, depth: usize) -> Result<Array<'a>, Fault> {
    let offset = r.pos;
    if depth >= MAX_ARRAY_DEPTH {
        return Err(Fault::TooDeep { offset });
    }
    let type_id = r.u32()?;
    let elem_type = ValueType::from_id(type_id).ok_or(Fault::UnknownType { offset, type_id })?;
    let count = r.u64()?;
    let max = r.remaining() as u64 / elem_type.min_size();
    if count > max {
        return Err(Fault::ArrayTooLong { offset, count, elem_type, max });
    }
    // count <= remaining bytes, so it fits a usize.
    let len = count as usize;
    let start = r.pos;
    match elem_type.fixed_size() {
        Some(size) => {
            let raw = r.take(len * size)?;
            if elem_type == ValueType::Bool
                && let Some(i) = raw.iter().position(|&b| b > 1)
            {
                return Err(Fault::BadBool { offset: start + i, value: raw[i] });
            }
        }
        None => {
            for _ in 0..len {
                read_value(r, elem_type, depth + 1)?;
            }
        }
    }
    Ok(Array { elem_type, len, raw: &r.bytes[start..r.pos] })
}

fn parse(bytes: &[u8]) -> Result<Gguf<'_>, GgufError> {
    let len = bytes.len();
    if len < HEADER_BYTES {
        if len >= 4 && bytes[..4] != MAGIC {
            return Err(GgufError::BadMagic { found: [bytes[0], bytes[1], bytes[2], bytes[3]] });
        }
        return Err(GgufError::TooShort { len });
    }
    let mut r = Reader { bytes, pos: 0 };
    let header = |f: Fault| f.at(|| "the header".to_string(), String::new, len);
    let magic: [u8; 4] = r.array().map_err(header)?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = r.u32().map_err(header)?;
    if version != 2 && version != 3 {
        if (1..=3).contains(&version.swap_bytes()) {
            return Err(GgufError::BigEndian { version: version.swap_bytes() });
        }
        return Err(GgufError::UnsupportedVersion { version });
    }
    let n_tensors = r.u64().map_err(header)?;
    let n_kv = r.u64().map_err(header)?;

    // Bound both counts by the bytes left before looping or allocating.
    let rest = r.remaining() as u64;
    let max_kv = rest / MIN_KV_BYTES;
    if n_kv > max_kv {
        return Err(GgufError::TooManyEntries { what: "metadata entries", count: n_kv, max: max_kv });
    }
    let max_tensors = (rest - n_kv * MIN_KV_BYTES) / MIN_TENSOR_INFO_BYTES;
    if n_tensors > max_tensors {
        return Err(GgufError::TooManyEntries { what: "tensors", count: n_tensors, max: max_tensors });
    }

    // Metadata. Capacity grows with what is really read, not with the claimed count.
    let mut kvs: Vec<KeyValue<'_>> = Vec::with_capacity((n_kv as usize).min(256));
    let mut keys = BTreeSet::new();
    for i in 0..n_kv {
        let offset = r.pos;
        let key = r.string().map_err(|f| f.at(|| alloc::format!("metadata key #{i}"), String::new, len))?;
        let key = core::str::from_utf8(key).map_err(|_| GgufError::KeyNotUtf8 { offset })?;
        let ctx = || alloc::format!("metadata '{key}'");
        let kname = || key.to_string();
        let type_at = r.pos;
        let type_id = r.u32().map_err(|f| f.at(ctx, kname, len))?;
        let ty = ValueType::from_id(type_id).ok_or(GgufError::UnknownValueType { key: kname(), offset: type_at, type_id })?;
        let value = read_value(&mut r, ty, 0).map_err(|f| f.at(ctx, kname, len))?;
        if !keys.insert(key) {
            return Err(GgufError::DuplicateKey { key: key.to_string() });
        }
        kvs.push(KeyValue { key, value, offset });
    }

    let alignment = match kvs.iter().find(|kv| kv.key == ALIGNMENT_KEY).map(|kv| kv.value) {
        None => DEFAULT_ALIGNMENT as usize,
        Some(Value::U32(a)) if a != 0 && a.is_power_of_two() => a as usize,
        Some(v) => {
            let value = v.as_integer().map(|i| i as u64);
            return Err(GgufError::BadAlignment { value, found_type: v.value_type() });
        }
    };

    // Tensor infos.
    let mut tensors: Vec<TensorInfo<'_>> = Vec::with_capacity((n_tensors as usize).min(1024));
    for i in 0..n_tensors {
        let offset = r.pos;
        let name = r.string().map_err(|f| f.at(|| alloc::format!("tensor info #{i}"), String::new, len))?;
        let name = core::str::from_utf8(name).map_err(|_| GgufError::TensorNameNotUtf8 { offset })?;
        let ctx = || alloc::format!("tensor info '{name}'");
        let t = |f: Fault| f.at(ctx, String::new, len);
        let n_dims = r.u32().map_err(t)?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(GgufError::BadDimCount { name: name.to_string(), offset, n_dims });
        }
        let mut dims = [1u64; MAX_DIMS];
        for d in dims.iter_mut().take(n_dims as usize) {
            *d = r.u64().map_err(t)?;
        }
        let type_id = r.u32().map_err(t)?;
        let data_offset = r.u64().map_err(t)?;
        let shape = &dims[..n_dims as usize];
        let overflow = || GgufError::ShapeOverflow { name: name.to_string(), dims: shape.to_vec() };
        // ggml keeps dims and element counts in int64.
        let n_elements = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64 && shape.iter().all(|&d| d <= i64::MAX as u64))
            .ok_or_else(overflow)?;
        let ggml_type = GgmlType::from_id(type_id);
        let (Some(block), Some(size)) = (ggml_type.block_size(), ggml_type.type_size()) else {
            return Err(GgufError::UnknownTensorType { name: name.to_string(), type_id });
        };
        // A whole number of blocks per row implies one for the whole tensor.
        if !dims[0].is_multiple_of(block as u64) {
            return Err(GgufError::NotBlockMultiple { name: name.to_string(), row: dims[0], block, ggml_type });
        }
        let n_bytes = (n_elements / block as u64).checked_mul(size as u64).and_then(|b| usize::try_from(b).ok()).ok_or_else(overflow)?;
        if !data_offset.is_multiple_of(alignment as u64) {
            return Err(GgufError::MisalignedTensor { name: name.to_string(), offset: data_offset, alignment });
        }
        tensors.push(TensorInfo { name, dims, n_dims: n_dims as usize, ggml_type, offset: data_offset, n_bytes });
    }

    // The data section starts at the aligned end of the infos.
    let data_offset = r.pos.div_ceil(alignment).saturating_mul(alignment);
    for t in &tensors {
        let end = (data_offset as u64).checked_add(t.offset).and_then(|s| s.checked_add(t.n_bytes as u64));
        // Empty tensors too: every tensor's bytes, even none, are a slice of the file.
        if end.is_none_or(|e| e > len as u64) {
            return Err(GgufError::TensorOutOfBounds {
                name: t.name.to_string(),
                start: (data_offset as u64).saturating_add(t.offset),
                n_bytes: t.n_bytes as u64,
                len,
            });
        }
    }

    // Unique names, and no two tensors sharing bytes (empty tensors share nothing).
    let mut by_name: Vec<&TensorInfo<'_>> = tensors.iter().collect();
    by_name.sort_unstable_by_key(|t| t.name);
    if let Some(w) = by_name.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(GgufError::DuplicateTensor { name: w[0].name.to_string() });
    }
    let mut by_offset: Vec<&TensorInfo<'_>> = tensors.iter().filter(|t| t.n_bytes > 0).collect();
    by_offset.sort_unstable_by_key(|t| t.offset);
    // In bounds, so offset + n_bytes cannot overflow.
    if let Some(w) = by_offset.windows(2).find(|w| w[0].offset + w[0].n_bytes as u64 > w[1].offset) {
        return Err(GgufError::TensorsOverlap { first: w[0].name.to_string(), second: w[1].name.to_string() });
    }

    Ok(Gguf { bytes, version, alignment, data_offset, kvs, tensors })
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

struct PendingTensor<'d> {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    data: &'d [u8],
}

/// Builds a GGUF version 3 file in memory. Keys and tensors are written in the order added;
/// each tensor's data starts at a multiple of the alignment (zero padding between).
pub struct GgufWriter<'d> {
    kv_bytes: Vec<u8>,
    keys: BTreeSet<String>,
    alignment: usize,
    tensors: Vec<PendingTensor<'d>>,
}

impl Default for GgufWriter<'_> {
    fn default() -> Self {
        Self::new()
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

impl<'d> GgufWriter<'d> {
    pub fn new() -> Self {
        GgufWriter { kv_bytes: Vec::new(), keys: BTreeSet::new(), alignment: DEFAULT_ALIGNMENT as usize, tensors: Vec::new() }
    }

    fn key(&mut self, key: &str, ty: ValueType) -> Result<(), GgufError> {
        if key == ALIGNMENT_KEY && ty != ValueType::U32 {
            return Err(GgufError::BadAlignment { value: None, found_type: ty });
        }
        if !self.keys.insert(key.to_string()) {
            return Err(GgufError::DuplicateKey { key: key.to_string() });
        }
        put_str(&mut self.kv_bytes, key.as_bytes());
        self.kv_bytes.extend_from_slice(&ty.id().to_le_bytes());
        Ok(())
    }

    /// Sets the data alignment and records it as `general.alignment`.
    pub fn set_alignment(&mut self, alignment: u32) -> Result<(), GgufError> {
        if !alignment.is_power_of_two() {
            return Err(GgufError::BadAlignment { value: Some(alignment as u64), found_type: ValueType::U32 });
        }
        self.add_u32(ALIGNMENT_KEY, alignment)?;
        self.alignment = alignment as usize;
        Ok(())
    }

    pub fn add_u8(&mut self, key: &str, v: u8) -> Result<(), GgufError> {
        self.key(key, ValueType::U8)?;
        self.kv_bytes.push(v);
        Ok(())
    }
    pub fn add_i8(&mut self, key: &str, v: i8) -> Result<(), GgufError> {
        self.key(key, ValueType::I8)?;
        self.kv_bytes.push(v as u8);
        Ok(())
    }
    pub fn add_u16(&mut self, key: &str, v: u16) -> Result<(), GgufError> {
        self.key(key, ValueType::U16)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_i16(&mut self, key: &str, v: i16) -> Result<(), GgufError> {
        self.key(key, ValueType::I16)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_u32(&mut self, key: &str, v: u32) -> Result<(), GgufError> {
        if key == ALIGNMENT_KEY && !v.is_power_of_two() {
            return Err(GgufError::BadAlignment { value: Some(v as u64), found_type: ValueType::U32 });
        }
        self.key(key, ValueType::U32)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        if key == ALIGNMENT_KEY {
            self.alignment = v as usize;
        }
        Ok(())
    }
    pub fn add_i32(&mut self, key: &str, v: i32) -> Result<(), GgufError> {
        self.key(key, ValueType::I32)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_f32(&mut self, key: &str, v: f32) -> Result<(), GgufError> {
        self.key(key, ValueType::F32)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_bool(&mut self, key: &str, v: bool) -> Result<(), GgufError> {
        self.key(key, ValueType::Bool)?;
        self.kv_bytes.push(v as u8);
        Ok(())
    }
    pub fn add_u64(&mut self, key: &str, v: u64) -> Result<(), GgufError> {
        self.key(key, ValueType::U64)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_i64(&mut self, key: &str, v: i64) -> Result<(), GgufError> {
        self.key(key, ValueType::I64)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_f64(&mut self, key: &str, v: f64) -> Result<(), GgufError> {
        self.key(key, ValueType::F64)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_string(&mut self, key: &str, v: &str) -> Result<(), GgufError> {
        self.key(key, ValueType::String)?;
        put_str(&mut self.kv_bytes, v.as_bytes());
        Ok(())
    }

    fn array_header(&mut self, key: &str, elem: ValueType, count: usize) -> Result<(), GgufError> {
        self.key(key, ValueType::Array)?;
        self.kv_bytes.extend_from_slice(&elem.id().to_le_bytes());
        self.kv_bytes.extend_from_slice(&(count as u64).to_le_bytes());
        Ok(())
    }

    /// An array of strings (raw bytes allowed, e.g. byte tokens; GGUF expects UTF-8).
    pub fn add_string_array<S: AsRef<[u8]>>(&mut self, key: &str, v: &[S]) -> Result<(), GgufError> {
        self.array_header(key, ValueType::String, v.len())?;
        for s in v {
            put_str(&mut self.kv_bytes, s.as_ref());
        }
        Ok(())
    }
    pub fn add_f32_array(&mut self, key: &str, v: &[f32]) -> Result<(), GgufError> {
        self.array_header(key, ValueType::F32, v.len())?;
        v.iter().for_each(|x| self.kv_bytes.extend_from_slice(&x.to_le_bytes()));
        Ok(())
    }
    pub fn add_i32_array(&mut self, key: &str, v: &[i32]) -> Result<(), GgufError> {
        self.array_header(key, ValueType::I32, v.len())?;
        v.iter().for_each(|x| self.kv_bytes.extend_from_slice(&x.to_le_bytes()));
        Ok(())
    }
    pub fn add_u32_array(&mut self, key: &str, v: &[u32]) -> Result<(), GgufError> {
        self.array_header(key, ValueType::U32, v.len())?;
        v.iter().for_each(|x| self.kv_bytes.extend_from_slice(&x.to_le_bytes()));
        Ok(())
    }

    /// Adds a tensor: `dims` innermost first (1 to 4 of them), `data` exactly its bytes in
    /// `ggml_type`'s encoding. Borrowed until [`GgufWriter::finish`].
    pub fn add_tensor(&mut self, name: &str, dims: &[u64], ggml_type: GgmlType, data: &'d [u8]) -> Result<(), GgufError> {
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return Err(GgufError::BadDimCount { name: name.to_string(), offset: 0, n_dims: dims.len() as u32 });
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(GgufError::DuplicateTensor { name: name.to_string() });
        }
        let (Some(block), Some(size)) = (ggml_type.block_size(), ggml_type.type_size()) else {
            return Err(GgufError::UnknownTensorType { name: name.to_string(), type_id: ggml_type.id() });
        };
        if !dims[0].is_multiple_of(block as u64) {
            return Err(GgufError::NotBlockMultiple { name: name.to_string(), row: dims[0], block, ggml_type });
        }
        let expected = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .and_then(|n| (n / block as u64).checked_mul(size as u64))
            .ok_or_else(|| GgufError::ShapeOverflow { name: name.to_string(), dims: dims.to_vec() })?;
        if expected != data.len() as u64 {
            return Err(GgufError::DataSizeMismatch { name: name.to_string(), expected, found: data.len() });
        }
        self.tensors.push(PendingTensor { name: name.to_string(), dims: dims.to_vec(), ggml_type, data });
        Ok(())
    }

    /// The whole file.
    pub fn finish(&self) -> Vec<u8> {
        let align = self.alignment;
        let pad = |n: usize| n.div_ceil(align) * align;
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.keys.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.kv_bytes);
        let mut offset = 0usize;
        for t in &self.tensors {
            put_str(&mut out, t.name.as_bytes());
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            t.dims.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
            out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            offset = pad(offset + t.data.len());
        }
        out.resize(pad(out.len()), 0);
        for t in &self.tensors {
            out.extend_from_slice(t.data);
            out.resize(pad(out.len()), 0);
        }
        out
    }
}
