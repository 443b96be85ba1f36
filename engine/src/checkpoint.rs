//! llm.c checkpoints: a 256 x int32 header followed by every parameter tensor.
//!
//! Header: {20240326, version, maxT, V, L, NH, C, Vp, 0...}. Version 3 stores fp32,
//! version 5 stores bf16. Parameters follow in the fixed order of [`TENSOR_NAMES`];
//! matrices are stored [out][in] (row-major, one row per output).
//!
//! Version 3 files are read as a zero-copy view of the caller's bytes when they are 4-byte
//! aligned; version 5 files (and unaligned buffers) are converted into an owned f32 vector.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::fmt;

pub const CHECKPOINT_MAGIC: i32 = 20240326;
pub const VERSION_FP32: i32 = 3;
pub const VERSION_BF16: i32 = 5;
pub const HEADER_BYTES: usize = 256 * 4;

// Upper bounds that reject absurd headers before any arithmetic on them: far above any
// real GPT-2 (maxT 1024, V 50257, L 48, NH 25, C 1600) yet small enough that products fit.
const MAX_SEQ_LEN: usize = 1 << 20;
const MAX_VOCAB: usize = 1 << 24;
const MAX_LAYERS: usize = 1 << 10;
const MAX_HEADS: usize = 1 << 10;
const MAX_CHANNELS: usize = 1 << 16;
/// 2^36 parameters (256 GiB of f32) is far beyond what either target can hold.
const MAX_PARAMS: usize = 1 << 36;

/// The model's shape, straight from the checkpoint header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// maxT: the context length (rows of the position embedding).
    pub max_seq_len: usize,
    /// V: the real vocabulary; logits are computed over these only.
    pub vocab_size: usize,
    /// Vp: V padded up (for GPT-2, 50257 -> 50304) to make the embedding rows aligned.
    pub padded_vocab_size: usize,
    /// L
    pub num_layers: usize,
    /// NH
    pub num_heads: usize,
    /// C
    pub channels: usize,
}

impl Config {
    pub fn head_size(&self) -> usize {
        self.channels / self.num_heads
    }

    /// Checks every rule a checkpoint's shape must obey.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        let dims = [
            ("maxT", self.max_seq_len, MAX_SEQ_LEN),
            ("V", self.vocab_size, MAX_VOCAB),
            ("Vp", self.padded_vocab_size, MAX_VOCAB),
            ("L", self.num_layers, MAX_LAYERS),
            ("NH", self.num_heads, MAX_HEADS),
            ("C", self.channels, MAX_CHANNELS),
        ];
        for (name, value, max) in dims {
            if value == 0 || value > max {
                return Err(CheckpointError::BadDimension { name, value: value as i64, max });
            }
        }
        if self.channels % self.num_heads != 0 {
            return Err(CheckpointError::ChannelsNotDivisible {
                channels: self.channels,
                heads: self.num_heads,
            });
        }
        if self.vocab_size > self.padded_vocab_size {
            return Err(CheckpointError::VocabExceedsPadded {
                vocab: self.vocab_size,
                padded: self.padded_vocab_size,
            });
        }
        let n = self.num_parameters_checked().ok_or(CheckpointError::SizeOverflow)?;
        if n > MAX_PARAMS {
            return Err(CheckpointError::SizeOverflow);
        }
        Ok(())
    }

    /// Element counts of the 16 tensors, in file order; None on overflow.
    pub fn tensor_sizes_checked(&self) -> Option<[usize; NUM_TENSORS]> {
        let (vp, t, l, c) = (self.padded_vocab_size, self.max_seq_len, self.num_layers, self.channels);
        let m = |a: usize, b: usize| a.checked_mul(b);
        let lc = m(l, c)?;
        Some([
            m(vp, c)?,           // wte
            m(t, c)?,            // wpe
            lc,                  // ln1w
            lc,                  // ln1b
            m(lc, m(3, c)?)?,    // qkvw
            m(3, lc)?,           // qkvb
            m(lc, c)?,           // attprojw
            lc,                  // attprojb
            lc,                  // ln2w
            lc,                  // ln2b
            m(lc, m(4, c)?)?,    // fcw
            m(4, lc)?,           // fcb
            m(lc, m(4, c)?)?,    // fcprojw
            lc,                  // fcprojb
            c,                   // lnfw
            c,                   // lnfb
        ])
    }

    fn num_parameters_checked(&self) -> Option<usize> {
        self.tensor_sizes_checked()?.iter().try_fold(0usize, |acc, &n| acc.checked_add(n))
    }

    /// Element counts of the 16 tensors; the config must be valid.
    pub fn tensor_sizes(&self) -> [usize; NUM_TENSORS] {
        self.tensor_sizes_checked().expect("validated config")
    }

    /// Total parameter count including the padded embedding rows.
    pub fn num_parameters(&self) -> usize {
        self.num_parameters_checked().expect("validated config")
    }

    /// Start offset of each tensor inside the flat parameter array.
    pub fn tensor_offsets(&self) -> [usize; NUM_TENSORS] {
        let sizes = self.tensor_sizes();
        let mut offsets = [0; NUM_TENSORS];
        let mut at = 0;
        for i in 0..NUM_TENSORS {
            offsets[i] = at;
            at += sizes[i];
        }
        offsets
    }
}

pub const NUM_TENSORS: usize = 16;
pub const TENSOR_NAMES: [&str; NUM_TENSORS] = [
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b", "fcw",
    "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
];

/// Everything that can be wrong with checkpoint bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointError {
    /// Shorter than the 1024-byte header.
    TooShortForHeader { len: usize },
    BadMagic { found: i32 },
    UnsupportedVersion { found: i32 },
    BadDimension { name: &'static str, value: i64, max: usize },
    ChannelsNotDivisible { channels: usize, heads: usize },
    VocabExceedsPadded { vocab: usize, padded: usize },
    /// The sizes in the header overflow or exceed what any machine could hold.
    SizeOverflow,
    Truncated { expected: usize, found: usize },
    TrailingBytes { expected: usize, found: usize },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CheckpointError::*;
        match self {
            TooShortForHeader { len } => write!(
                f,
                "file is {len} bytes, shorter than the {HEADER_BYTES}-byte llm.c checkpoint header"
            ),
            BadMagic { found } => write!(
                f,
                "bad magic number {found} (an llm.c checkpoint starts with {CHECKPOINT_MAGIC})"
            ),
            UnsupportedVersion { found } => write!(
                f,
                "unsupported checkpoint version {found} (supported: 3 = fp32, 5 = bf16)"
            ),
            BadDimension { name, value, max } => {
                write!(f, "bad dimension {name} = {value} (must be between 1 and {max})")
            }
            ChannelsNotDivisible { channels, heads } => write!(
                f,
                "channels C = {channels} is not divisible by the number of heads NH = {heads}"
            ),
            VocabExceedsPadded { vocab, padded } => {
                write!(f, "vocabulary V = {vocab} is larger than padded vocabulary Vp = {padded}")
            }
            SizeOverflow => write!(f, "parameter sizes in the header overflow (absurd dimensions)"),
            Truncated { expected, found } => write!(
                f,
                "checkpoint is truncated: expected {expected} bytes, found {found}"
            ),
            TrailingBytes { expected, found } => write!(
                f,
                "checkpoint is over-long: expected {expected} bytes, found {found}"
            ),
        }
    }
}

/// A parsed checkpoint. `params` borrows the input when possible.
pub struct Checkpoint<'a> {
    pub config: Config,
    pub version: i32,
    pub params: Cow<'a, [f32]>,
}

fn header_int(bytes: &[u8], i: usize) -> i32 {
    i32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap())
}

/// Reads and validates the header only: enough for `inspect` and for sizing buffers.
pub fn parse_header(bytes: &[u8]) -> Result<(Config, i32), CheckpointError> {
    if bytes.len() < HEADER_BYTES {
        return Err(CheckpointError::TooShortForHeader { len: bytes.len() });
    }
    let magic = header_int(bytes, 0);
    if magic != CHECKPOINT_MAGIC {
        return Err(CheckpointError::BadMagic { found: magic });
    }
    let version = header_int(bytes, 1);
    if version != VERSION_FP32 && version != VERSION_BF16 {
        return Err(CheckpointError::UnsupportedVersion { found: version });
    }
    let dim = |i: usize, name: &'static str, max: usize| -> Result<usize, CheckpointError> {
        let v = header_int(bytes, i);
        if v <= 0 || v as usize > max {
            Err(CheckpointError::BadDimension { name, value: v as i64, max })
        } else {
            Ok(v as usize)
        }
    };
    let config = Config {
        max_seq_len: dim(2, "maxT", MAX_SEQ_LEN)?,
        vocab_size: dim(3, "V", MAX_VOCAB)?,
        num_layers: dim(4, "L", MAX_LAYERS)?,
        num_heads: dim(5, "NH", MAX_HEADS)?,
        channels: dim(6, "C", MAX_CHANNELS)?,
        padded_vocab_size: dim(7, "Vp", MAX_VOCAB)?,
    };
    config.validate()?;
    Ok((config, version))
}

/// Size in bytes of a checkpoint file with this shape and version.
pub fn file_size(config: &Config, version: i32) -> usize {
    let elem = if version == VERSION_BF16 { 2 } else { 4 };
    HEADER_BYTES + config.num_parameters() * elem
}

/// Parses a whole checkpoint. Never panics, whatever the bytes.
pub fn parse(bytes: &[u8]) -> Result<Checkpoint<'_>, CheckpointError> {
    let (config, version) = parse_header(bytes)?;
    let n = config.num_parameters();
    let expected = file_size(&config, version);
    if bytes.len() < expected {
        return Err(CheckpointError::Truncated { expected, found: bytes.len() });
    }
    if bytes.len() > expected {
        return Err(CheckpointError::TrailingBytes { expected, found: bytes.len() });
    }
    let body = &bytes[HEADER_BYTES..];
    let params = if version == VERSION_FP32 {
        f32_view(body).map(Cow::Borrowed).unwrap_or_else(|| {
            Cow::Owned(
                body.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            )
        })
    } else {
        let mut out = Vec::with_capacity(n);
        out.extend(body.chunks_exact(2).map(|b| bf16_to_f32(u16::from_le_bytes([b[0], b[1]]))));
        Cow::Owned(out)
    };
    Ok(Checkpoint { config, version, params })
}

/// Reinterprets little-endian f32 bytes in place when aligned (x86 is little-endian).
fn f32_view(bytes: &[u8]) -> Option<&[f32]> {
    if cfg!(target_endian = "big") || bytes.as_ptr() as usize % core::mem::align_of::<f32>() != 0 {
        return None;
    }
    // SAFETY: aligned, length a multiple of 4 (checked by the caller's size check), every bit
    // pattern is a valid f32, and the lifetime is tied to `bytes`.
    Some(unsafe { core::slice::from_raw_parts(bytes.as_ptr() as *const f32, bytes.len() / 4) })
}

pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// Rounds to nearest even, as llm.c's conversion does; NaN stays NaN.
pub fn f32_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// The 1024-byte header of a checkpoint of this shape.
pub fn encode_header(config: &Config, version: i32) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    let vals = [
        CHECKPOINT_MAGIC,
        version,
        config.max_seq_len as i32,
        config.vocab_size as i32,
        config.num_layers as i32,
        config.num_heads as i32,
        config.channels as i32,
        config.padded_vocab_size as i32,
    ];
    for (i, v) in vals.iter().enumerate() {
        h[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    h
}

/// The parameters as little-endian bytes (a view on x86).
pub fn f32_bytes(params: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and u8 has alignment 1.
    unsafe { core::slice::from_raw_parts(params.as_ptr() as *const u8, params.len() * 4) }
}

/// A whole version-3 checkpoint in memory.
pub fn encode_v3(config: &Config, params: &[f32]) -> Vec<u8> {
    assert_eq!(params.len(), config.num_parameters(), "parameter count must match the config");
    let mut out = Vec::with_capacity(file_size(config, VERSION_FP32));
    out.extend_from_slice(&encode_header(config, VERSION_FP32));
    out.extend_from_slice(f32_bytes(params));
    out
}

/// A whole version-5 (bf16) checkpoint in memory.
pub fn encode_v5(config: &Config, params: &[f32]) -> Vec<u8> {
    assert_eq!(params.len(), config.num_parameters(), "parameter count must match the config");
    let mut out = Vec::with_capacity(file_size(config, VERSION_BF16));
    out.extend_from_slice(&encode_header(config, VERSION_BF16));
    for &p in params {
        out.extend_from_slice(&f32_to_bf16(p).to_le_bytes());
    }
    out
}

impl core::error::Error for CheckpointError {}
