//! Weight tensors: a type tag, a shape and the data, borrowed from the model file where
//! possible. Matrices are (rows, cols) = (out, in), row-major: y[o] = sum_i W[o][i] x[i].
//!
//! A tensor's data always has exactly rows * cols elements (checked when it is made; the
//! fields are private), so kernels given a [`MatRef`] cannot be driven out of bounds.
//! Weight types other than f32 (f16, bf16, GGML's quantized blocks) are rows of blocks,
//! described by [`BlockType`]'s table in `quant/`; a new type is a new row there.

use alloc::borrow::Cow;
use core::fmt;
use core::ops::Range;

/// A 1-D f32 parameter (norm gains, biases), borrowed or owned.
pub type Vector<'a> = Cow<'a, [f32]>;

/// A tensor's element type: f32, or rows of GGML blocks.
pub use crate::quant::BlockType as DType;
use crate::quant::{self, BlockType};

/// A tensor whose element count does not match its shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    pub rows: usize,
    pub cols: usize,
    pub len: usize,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a ({}, {}) tensor needs {} elements, found {}", self.rows, self.cols, self.rows.saturating_mul(self.cols), self.len)
    }
}

enum TensorData<'a> {
    F32(Cow<'a, [f32]>),
    /// Rows of `row_bytes` bytes of blocks of one type (never f32).
    Blocks {
        btype: BlockType,
        row_bytes: usize,
        data: Cow<'a, [u8]>,
    },
}

/// A weight matrix (or a row of vectors, like an embedding table).
pub struct Tensor<'a> {
    rows: usize,
    cols: usize,
    data: TensorData<'a>,
}

impl<'a> Tensor<'a> {
    pub fn f32(rows: usize, cols: usize, data: Cow<'a, [f32]>) -> Result<Tensor<'a>, ShapeError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(ShapeError { rows, cols, len: data.len() });
        }
        Ok(Tensor { rows, cols, data: TensorData::F32(data) })
    }

    /// A matrix of `btype` blocks: each of `rows` rows holds `cols` elements in whole blocks.
    /// An f32 `btype` is read as little-endian floats (zero-copy when aligned).
    pub fn blocks(btype: BlockType, rows: usize, cols: usize, data: Cow<'a, [u8]>) -> Result<Tensor<'a>, ShapeError> {
        let bad = ShapeError { rows, cols, len: data.len() };
        if btype == BlockType::F32 {
            if rows.checked_mul(cols).and_then(|n| n.checked_mul(4)) != Some(data.len()) {
                return Err(bad);
            }
            let floats = match data {
                Cow::Borrowed(b) => f32_cow(b),
                Cow::Owned(v) => Cow::Owned(f32_cow(&v).into_owned()),
            };
            return Tensor::f32(rows, cols, floats);
        }
        let row_bytes = btype.row_bytes(cols).ok_or(bad.clone())?;
        if rows.checked_mul(row_bytes) != Some(data.len()) {
            return Err(bad);
        }
        Ok(Tensor { rows, cols, data: TensorData::Blocks { btype, row_bytes, data } })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) => BlockType::F32,
            TensorData::Blocks { btype, .. } => btype,
        }
    }

    /// Bytes the data occupies.
    pub fn bytes(&self) -> usize {
        match &self.data {
            TensorData::F32(d) => d.len() * 4,
            TensorData::Blocks { data, .. } => data.len(),
        }
    }

    /// True when the data is a view of the model file (not a copy).
    pub fn is_borrowed(&self) -> bool {
        match &self.data {
            TensorData::F32(d) => matches!(d, Cow::Borrowed(_)),
            TensorData::Blocks { data, .. } => matches!(data, Cow::Borrowed(_)),
        }
    }

    pub fn view(&self) -> MatRef<'_> {
        let data = match &self.data {
            TensorData::F32(d) => MatData::F32(d),
            TensorData::Blocks { btype, row_bytes, data } => MatData::Blocks { btype: *btype, row_bytes: *row_bytes, data },
        };
        MatRef { rows: self.rows, cols: self.cols, data }
    }

    /// Writes row `r` as f32 into `out` (cols). Panics when `r` or `out` is out of range.
    pub(crate) fn row_into(&self, r: usize, out: &mut [f32]) {
        assert!(r < self.rows, "row {r} of a tensor with {} rows", self.rows);
        assert_eq!(out.len(), self.cols, "output row length");
        match &self.data {
            TensorData::F32(d) => out.copy_from_slice(&d[r * self.cols..(r + 1) * self.cols]),
            TensorData::Blocks { btype, row_bytes, data } => quant::dequantize_row(*btype, &data[r * row_bytes..(r + 1) * row_bytes], out),
        }
    }
}

#[derive(Clone, Copy)]
pub enum MatData<'t> {
    F32(&'t [f32]),
    /// Rows of `row_bytes` bytes of `btype` blocks.
    Blocks {
        btype: BlockType,
        row_bytes: usize,
        data: &'t [u8],
    },
}

/// A borrowed matrix view, the form kernels take: always rows * cols elements.
#[derive(Clone, Copy)]
pub struct MatRef<'t> {
    rows: usize,
    cols: usize,
    data: MatData<'t>,
}

impl<'t> MatRef<'t> {
    /// A view of f32 data; panics when the length is not rows * cols.
    pub fn f32(rows: usize, cols: usize, data: &'t [f32]) -> MatRef<'t> {
        assert_eq!(rows.checked_mul(cols), Some(data.len()), "a ({rows}, {cols}) matrix needs rows * cols elements");
        MatRef { rows, cols, data: MatData::F32(data) }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn data(&self) -> MatData<'t> {
        self.data
    }

    /// Rows `r` (a sub-matrix sharing the data). Panics when out of range.
    pub(crate) fn slice_rows(&self, r: Range<usize>) -> MatRef<'t> {
        assert!(r.start <= r.end && r.end <= self.rows, "rows {r:?} of a matrix with {} rows", self.rows);
        let c = self.cols;
        let data = match self.data {
            MatData::F32(d) => MatData::F32(&d[r.start * c..r.end * c]),
            MatData::Blocks { btype, row_bytes, data } => {
                MatData::Blocks { btype, row_bytes, data: &data[r.start * row_bytes..r.end * row_bytes] }
            }
        };
        MatRef { rows: r.end - r.start, cols: c, data }
    }
}

/// Little-endian f32 bytes as floats: a zero-copy view when aligned (x86 is little-endian),
/// else a converted copy. `bytes.len()` must be a multiple of 4 (extra bytes are ignored).
pub(crate) fn f32_cow(bytes: &[u8]) -> Cow<'_, [f32]> {
    let n = bytes.len() / 4;
    if cfg!(target_endian = "little") && (bytes.as_ptr() as usize).is_multiple_of(core::mem::align_of::<f32>()) {
        // SAFETY: aligned for f32, n * 4 <= bytes.len(), every bit pattern is a valid f32, and
        // the lifetime is tied to `bytes`.
        return Cow::Borrowed(unsafe { core::slice::from_raw_parts(bytes.as_ptr() as *const f32, n) });
    }
    Cow::Owned(bytes[..n * 4].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Where [`first_non_finite`] found a NaN or an infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonFiniteAt {
    /// Element i (F32, F16, BF16 data).
    Element(usize),
    /// The scale (d, or the minimum dmin / m) of block i (quantized data).
    BlockScale(usize),
}

/// The first NaN or infinity in `data`, little-endian elements or blocks of `btype` (a
/// partial element or block at the end is ignored). F32, F16 and BF16 data is checked
/// element by element; quantized blocks by their f16 scales (the quantized values are small
/// integers, always finite). One fast pass: no allocation, branch-free inner loops.
pub fn first_non_finite(btype: BlockType, data: &[u8]) -> Option<NonFiniteAt> {
    // The exponent bits all set: infinity or NaN.
    fn scan<const N: usize>(data: &[u8], exp_mask: u32) -> Option<usize> {
        let bad = |b: &[u8]| {
            let mut w = [0u8; 4];
            w[..N].copy_from_slice(&b[..N]);
            u32::from_le_bytes(w) & exp_mask == exp_mask
        };
        const CHUNK: usize = 1024;
        let mut base = 0;
        for chunk in data.chunks(CHUNK * N) {
            if chunk.chunks_exact(N).fold(false, |acc, b| acc | bad(b)) {
                return chunk.chunks_exact(N).position(bad).map(|i| base + i);
            }
            base += chunk.len() / N;
        }
        None
    }
    match btype {
        BlockType::F32 => scan::<4>(data, 0x7f80_0000).map(NonFiniteAt::Element),
        BlockType::F16 => scan::<2>(data, 0x7c00).map(NonFiniteAt::Element),
        BlockType::BF16 => scan::<2>(data, 0x7f80).map(NonFiniteAt::Element),
        q => {
            let (size, offsets) = (q.info().block_bytes, q.info().scales_at);
            data.chunks_exact(size)
                .position(|b| offsets.iter().any(|&o| u16::from_le_bytes([b[o], b[o + 1]]) & 0x7c00 == 0x7c00))
                .map(NonFiniteAt::BlockScale)
        }
    }
}

/// The first NaN or infinity of f32 values.
pub(crate) fn first_non_finite_f32(data: &[f32]) -> Option<usize> {
    const CHUNK: usize = 1024;
    let mut base = 0;
    for chunk in data.chunks(CHUNK) {
        if chunk.iter().fold(false, |acc, x| acc | !x.is_finite()) {
            return chunk.iter().position(|x| !x.is_finite()).map(|i| base + i);
        }
        base += chunk.len();
    }
    None
}
