//! GGUF metadata: value types, values borrowed from the file, arrays decoded lazily.

use super::*;
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
    pub(crate) fn fixed_size(self) -> Option<usize> {
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
    pub(super) fn min_size(self) -> u64 {
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
    pub(crate) fn as_integer(&self) -> Option<i128> {
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
    pub(super) elem_type: ValueType,
    pub(super) len: usize,
    pub(super) raw: &'a [u8],
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
