//! llm.c checkpoints (GPT-2): a 256 x int32 header followed by every parameter tensor.
//! Format and model design from Andrej Karpathy's llm.c (MIT).
//!
//! Header: {20240326, version, maxT, V, L, NH, C, Vp, 0...}. Version 3 stores fp32,
//! version 5 stores bf16. Parameters follow in the fixed order of [`TENSOR_NAMES`];
//! matrices are stored [out][in] (row-major, one row per output).
//!
//! [`load`] turns a file into the engine's spec and named weights: version 3 tensors are
//! zero-copy views of the caller's bytes when they are 4-byte aligned; version 5 (bf16)
//! tensors, and unaligned buffers, are converted to f32 copies.

use crate::model::{Model, ModelError};
use crate::quant::BlockType;
use crate::spec::{Arch, Mlp, ModelSpec, Norm, NormKind, Positions};
use crate::tensor::{Tensor, Vector, f32_cow};
use crate::weights::{Layer, NormWeights, Weights};
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

/// The model's shape, straight from the checkpoint header (GPT-2 as llm.c writes it). The
/// fields carry the engine's names (those of `ModelSpec`); llm.c's letter and its
/// `GPT2Config` name are in each comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LlmcConfig {
    /// T (llm.c `max_seq_len`): the context length (rows of the position embedding).
    pub context: usize,
    /// V (`vocab_size`): the real vocabulary; logits are computed over these only.
    pub vocab_size: usize,
    /// Vp (`padded_vocab_size`): V padded up (for GPT-2, 50257 -> 50304) to make the embedding
    /// rows aligned.
    pub padded_vocab_size: usize,
    /// L (`num_layers`).
    pub n_layers: usize,
    /// NH (`num_heads`).
    pub n_heads: usize,
    /// C (`channels`): the width of the residual stream.
    pub d_model: usize,
}

impl LlmcConfig {
    pub fn head_size(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Checks every rule a checkpoint's shape must obey.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        let dims = [
            ("maxT", self.context, MAX_SEQ_LEN),
            ("V", self.vocab_size, MAX_VOCAB),
            ("Vp", self.padded_vocab_size, MAX_VOCAB),
            ("L", self.n_layers, MAX_LAYERS),
            ("NH", self.n_heads, MAX_HEADS),
            ("C", self.d_model, MAX_CHANNELS),
        ];
        for (name, value, max) in dims {
            if value == 0 || value > max {
                return Err(CheckpointError::BadDimension { name, value: value as i64, max });
            }
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(CheckpointError::ChannelsNotDivisible { channels: self.d_model, heads: self.n_heads });
        }
        if self.vocab_size > self.padded_vocab_size {
            return Err(CheckpointError::VocabExceedsPadded { vocab: self.vocab_size, padded: self.padded_vocab_size });
        }
        let n = self.num_parameters_checked().ok_or(CheckpointError::SizeOverflow)?;
        if n > MAX_PARAMS {
            return Err(CheckpointError::SizeOverflow);
        }
        Ok(())
    }

    /// Element counts of the 16 tensors, in file order; None on overflow.
    pub(crate) fn tensor_sizes_checked(&self) -> Option<[usize; NUM_TENSORS]> {
        let (vp, t, l, c) = (self.padded_vocab_size, self.context, self.n_layers, self.d_model);
        let m = |a: usize, b: usize| a.checked_mul(b);
        let lc = m(l, c)?;
        Some([
            m(vp, c)?,        // wte
            m(t, c)?,         // wpe
            lc,               // ln1w
            lc,               // ln1b
            m(lc, m(3, c)?)?, // qkvw
            m(3, lc)?,        // qkvb
            m(lc, c)?,        // attprojw
            lc,               // attprojb
            lc,               // ln2w
            lc,               // ln2b
            m(lc, m(4, c)?)?, // fcw
            m(4, lc)?,        // fcb
            m(lc, m(4, c)?)?, // fcprojw
            lc,               // fcprojb
            c,                // lnfw
            c,                // lnfb
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
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw",
    "lnfb",
];

/// Everything that can be wrong with checkpoint bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointError {
    /// Shorter than the 1024-byte header.
    TooShortForHeader {
        len: usize,
    },
    BadMagic {
        found: i32,
    },
    UnsupportedVersion {
        found: i32,
    },
    BadDimension {
        name: &'static str,
        value: i64,
        max: usize,
    },
    ChannelsNotDivisible {
        channels: usize,
        heads: usize,
    },
    VocabExceedsPadded {
        vocab: usize,
        padded: usize,
    },
    /// The sizes in the header overflow or exceed what any machine could hold.
    SizeOverflow,
    Truncated {
        expected: usize,
        found: usize,
    },
    TrailingBytes {
        expected: usize,
        found: usize,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CheckpointError::*;
        match self {
            TooShortForHeader { len } => write!(f, "file is {len} bytes, shorter than the {HEADER_BYTES}-byte llm.c checkpoint header"),
            BadMagic { found } => write!(f, "bad magic number {found} (an llm.c checkpoint starts with {CHECKPOINT_MAGIC})"),
            UnsupportedVersion { found } => write!(f, "unsupported checkpoint version {found} (supported: 3 = fp32, 5 = bf16)"),
            BadDimension { name, value, max } => {
                write!(f, "bad dimension {name} = {value} (must be between 1 and {max})")
            }
            ChannelsNotDivisible { channels, heads } => {
                write!(f, "channels C = {channels} is not divisible by the number of heads NH = {heads}")
            }
            VocabExceedsPadded { vocab, padded } => {
                write!(f, "vocabulary V = {vocab} is larger than padded vocabulary Vp = {padded}")
            }
            SizeOverflow => write!(f, "parameter sizes in the header overflow (absurd dimensions)"),
            Truncated { expected, found } => write!(f, "checkpoint is truncated: expected {expected} bytes, found {found}"),
            TrailingBytes { expected, found } => write!(f, "checkpoint is over-long: expected {expected} bytes, found {found}"),
        }
    }
}

/// A parsed checkpoint. `params` borrows the input when possible.
pub struct Checkpoint<'a> {
    pub config: LlmcConfig,
    pub version: i32,
    pub params: Cow<'a, [f32]>,
}

fn header_int(bytes: &[u8], i: usize) -> i32 {
    i32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap())
}

/// Reads and validates the header only (sizes buffers before the body is read).
pub fn parse_header(bytes: &[u8]) -> Result<(LlmcConfig, i32), CheckpointError> {
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
        if v <= 0 || v as usize > max { Err(CheckpointError::BadDimension { name, value: v as i64, max }) } else { Ok(v as usize) }
    };
    let config = LlmcConfig {
        context: dim(2, "maxT", MAX_SEQ_LEN)?,
        vocab_size: dim(3, "V", MAX_VOCAB)?,
        n_layers: dim(4, "L", MAX_LAYERS)?,
        n_heads: dim(5, "NH", MAX_HEADS)?,
        d_model: dim(6, "C", MAX_CHANNELS)?,
        padded_vocab_size: dim(7, "Vp", MAX_VOCAB)?,
    };
    config.validate()?;
    Ok((config, version))
}

/// Size in bytes of a checkpoint file with this shape and version.
pub fn file_size(config: &LlmcConfig, version: i32) -> usize {
    let elem = if version == VERSION_BF16 { 2 } else { 4 };
    HEADER_BYTES + config.num_parameters() * elem
}

/// Parses a whole checkpoint into its flat parameters (the trainer's form). Never panics.
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
        f32_cow(body)
    } else {
        let mut out = Vec::with_capacity(n);
        out.extend(body.chunks_exact(2).map(|b| bf16_to_f32(u16::from_le_bytes([b[0], b[1]]))));
        Cow::Owned(out)
    };
    Ok(Checkpoint { config, version, params })
}

/// Version 5's bf16 (rounded to nearest even, as llm.c's conversion does; NaN stays NaN):
/// the engine's one conversion.
pub use crate::quant::f16::{bf16_to_f32, f32_to_bf16};

/// The 1024-byte header of a checkpoint of this shape.
pub fn encode_header(config: &LlmcConfig, version: i32) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    let vals = [
        CHECKPOINT_MAGIC,
        version,
        config.context as i32,
        config.vocab_size as i32,
        config.n_layers as i32,
        config.n_heads as i32,
        config.d_model as i32,
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
pub fn encode_v3(config: &LlmcConfig, params: &[f32]) -> Vec<u8> {
    assert_eq!(params.len(), config.num_parameters(), "parameter count must match the config");
    let mut out = Vec::with_capacity(file_size(config, VERSION_FP32));
    out.extend_from_slice(&encode_header(config, VERSION_FP32));
    out.extend_from_slice(f32_bytes(params));
    out
}

/// A whole version-5 (bf16) checkpoint in memory.
pub fn encode_v5(config: &LlmcConfig, params: &[f32]) -> Vec<u8> {
    assert_eq!(params.len(), config.num_parameters(), "parameter count must match the config");
    let mut out = Vec::with_capacity(file_size(config, VERSION_BF16));
    out.extend_from_slice(&encode_header(config, VERSION_BF16));
    for &p in params {
        out.extend_from_slice(&f32_to_bf16(p).to_le_bytes());
    }
    out
}

impl core::error::Error for CheckpointError {}

impl LlmcConfig {
    /// The engine's spec of a GPT-2 of this shape (llm.c's `train_gpt2.c` model).
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            arch: Arch::GPT2,
            vocab_size: self.vocab_size,
            d_model: self.d_model,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            n_kv_heads: self.n_heads,
            head_dim: self.d_model / self.n_heads,
            ffn_dim: 4 * self.d_model,
            context: self.context,
            norm: Norm { kind: NormKind::LayerNorm, eps: 1e-5 },
            positions: Positions::Learned,
            mlp: Mlp::Gelu,
            qk_norm: false,
            post_norms: false,
            embed_scale: None,
            sliding_window: None,
            logit_softcap: None,
            tied_output: true,
        }
    }
}

/// Parses a whole checkpoint into a model: spec and named weights. Never panics.
pub fn load(bytes: &[u8]) -> Result<Model<'_>, LlmcLoadError> {
    let (config, version) = parse_header(bytes)?;
    let expected = file_size(&config, version);
    if bytes.len() < expected {
        return Err(CheckpointError::Truncated { expected, found: bytes.len() }.into());
    }
    if bytes.len() > expected {
        return Err(CheckpointError::TrailingBytes { expected, found: bytes.len() }.into());
    }
    let body = &bytes[HEADER_BYTES..];
    check_finite(&config, version, body)?;
    let model = if version == VERSION_FP32 {
        build(&config, &mut |at, n| f32_cow(&body[at * 4..(at + n) * 4]))
    } else {
        build(&config, &mut |at, n| {
            Cow::Owned(body[at * 2..(at + n) * 2].chunks_exact(2).map(|b| bf16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect())
        })
    };
    Ok(model?)
}

/// Refuses NaN and infinities in any tensor (the padding rows of wte, never read, excepted).
fn check_finite(config: &LlmcConfig, version: i32, body: &[u8]) -> Result<(), ModelError> {
    let (elem, btype) = if version == VERSION_BF16 { (2, BlockType::BF16) } else { (4, BlockType::F32) };
    let (off, sizes) = (config.tensor_offsets(), config.tensor_sizes());
    for i in 0..NUM_TENSORS {
        let n = if i == WTE { config.vocab_size * config.d_model } else { sizes[i] };
        ModelError::check_finite(TENSOR_NAMES[i], btype, &body[off[i] * elem..(off[i] + n) * elem])?;
    }
    Ok(())
}

/// A model whose weights are views of `params` (the flat parameters in file order), as the
/// trainer holds them.
pub fn model_from_params<'a>(config: &LlmcConfig, params: &'a [f32]) -> Result<Model<'a>, LlmcLoadError> {
    config.validate()?;
    let n = config.num_parameters();
    if params.len() != n {
        return Err(CheckpointError::Truncated { expected: n * 4, found: params.len() * 4 }.into());
    }
    Ok(build(config, &mut |at, len| Cow::Borrowed(&params[at..at + len]))?)
}

/// Names the file's tensors. `take(offset, len)` returns elements offset..offset+len of the
/// flat parameter array (in floats); the config is valid, so every range is in bounds.
fn build<'a>(cfg: &LlmcConfig, take: &mut dyn FnMut(usize, usize) -> Cow<'a, [f32]>) -> Result<Model<'a>, ModelError> {
    let (off, sizes) = (cfg.tensor_offsets(), cfg.tensor_sizes());
    let (c, l_n, vp, t) = (cfg.d_model, cfg.n_layers, cfg.padded_vocab_size, cfg.context);
    // Layer l's part-th (len) slab of a stacked (L, ...) tensor.
    let at = |tensor: usize, l: usize, len: usize, part: usize| off[tensor] + l * (sizes[tensor] / l_n) + part * len;
    let mat = |take: &mut dyn FnMut(usize, usize) -> Cow<'a, [f32]>, tensor: usize, l: usize, rows: usize, cols: usize, part: usize| {
        Tensor::f32(rows, cols, take(at(tensor, l, rows * cols, part), rows * cols)).map_err(|e| shape_error(tensor, e))
    };
    let token_embd = Tensor::f32(vp, c, take(off[WTE], vp * c)).map_err(|e| shape_error(WTE, e))?;
    let pos_embd = Tensor::f32(t, c, take(off[WPE], t * c)).map_err(|e| shape_error(WPE, e))?;
    let mut layers = Vec::with_capacity(l_n);
    for l in 0..l_n {
        let (wq, wk, wv) = (mat(take, QKVW, l, c, c, 0)?, mat(take, QKVW, l, c, c, 1)?, mat(take, QKVW, l, c, c, 2)?);
        let wo = mat(take, ATTPROJW, l, c, c, 0)?;
        let ffn_up = mat(take, FCW, l, 4 * c, c, 0)?;
        let ffn_down = mat(take, FCPROJW, l, c, 4 * c, 0)?;
        let mut vec = |tensor: usize, len: usize, part: usize| -> Vector<'a> { take(at(tensor, l, len, part), len) };
        layers.push(Layer {
            attn_norm: NormWeights { weight: vec(LN1W, c, 0), bias: Some(vec(LN1B, c, 0)) },
            wq,
            wk,
            wv,
            bq: Some(vec(QKVB, c, 0)),
            bk: Some(vec(QKVB, c, 1)),
            bv: Some(vec(QKVB, c, 2)),
            q_norm: None,
            k_norm: None,
            wo,
            bo: Some(vec(ATTPROJB, c, 0)),
            post_attn_norm: None,
            ffn_norm: NormWeights { weight: vec(LN2W, c, 0), bias: Some(vec(LN2B, c, 0)) },
            ffn_gate: None,
            ffn_up,
            b_up: Some(vec(FCB, 4 * c, 0)),
            ffn_down,
            b_down: Some(vec(FCPROJB, c, 0)),
            post_ffn_norm: None,
        });
    }
    let output_norm = NormWeights { weight: take(off[LNFW], c), bias: Some(take(off[LNFB], c)) };
    let weights = Weights { token_embd, pos_embd: Some(pos_embd), layers, output_norm, output: None };
    Model::new(cfg.spec(), weights)
}

fn shape_error(tensor: usize, e: crate::tensor::ShapeError) -> ModelError {
    ModelError::Weights(crate::weights::WeightsError {
        tensor: alloc::string::String::from(TENSOR_NAMES[tensor]),
        problem: alloc::format!("{e}"),
    })
}

/// Positions of the tensors in the file (and in [`TENSOR_NAMES`]): the format's table, used
/// by the loader here and by the trainer.
pub mod tensor {
    pub const WTE: usize = 0;
    pub const WPE: usize = 1;
    pub const LN1W: usize = 2;
    pub const LN1B: usize = 3;
    pub const QKVW: usize = 4;
    pub const QKVB: usize = 5;
    pub const ATTPROJW: usize = 6;
    pub const ATTPROJB: usize = 7;
    pub const LN2W: usize = 8;
    pub const LN2B: usize = 9;
    pub const FCW: usize = 10;
    pub const FCB: usize = 11;
    pub const FCPROJW: usize = 12;
    pub const FCPROJB: usize = 13;
    pub const LNFW: usize = 14;
    pub const LNFB: usize = 15;
}
use tensor::*;

/// A checkpoint that cannot be loaded: a malformed file, or (never for a valid file) a
/// model the engine rejects.
#[derive(Clone, Debug, PartialEq)]
pub enum LlmcLoadError {
    Checkpoint(CheckpointError),
    Model(ModelError),
}

impl From<CheckpointError> for LlmcLoadError {
    fn from(e: CheckpointError) -> Self {
        LlmcLoadError::Checkpoint(e)
    }
}

impl From<ModelError> for LlmcLoadError {
    fn from(e: ModelError) -> Self {
        LlmcLoadError::Model(e)
    }
}

impl fmt::Display for LlmcLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LlmcLoadError::Checkpoint(e) => e.fmt(f),
            LlmcLoadError::Model(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for LlmcLoadError {}
