//! llama2.c checkpoints (Llama): the `.bin` files of Andrej Karpathy's llama2.c `run.c`
//! (MIT), "legacy" version 0.
//!
//! Header: 7 little-endian int32 = {dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//! vocab_size, seq_len}; a negative vocab_size means the file ends with a separate classifier.
//! Then f32 tensors, matrices (out, in): token_embedding (V, C), rms_att (L, C), wq (L, C, C),
//! wk (L, K, C), wv (L, K, C), wo (L, C, C), rms_ffn (L, C), w1 (L, F, C), w2 (L, C, F),
//! w3 (L, F, C), rms_final (C), two old RoPE tables of seq_len * hd / 2 floats each (skipped),
//! and wcls (V, C) when not shared. hd = C / NH, K = NKV * hd.
//!
//! The file has no magic number: it is recognised by its size, which the header must predict
//! exactly. Tensors are zero-copy views when the bytes are 4-byte aligned.

use crate::model::{Model, ModelError};
use crate::quant::BlockType;
use crate::spec::{self, Arch, Mlp, ModelSpec, Norm, NormKind, Positions, Rope, RopeStyle};
use crate::tensor::{Tensor, f32_cow};
use crate::weights::{Layer, NormWeights, Weights};
use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::fmt;

pub const HEADER_BYTES: usize = 7 * 4;

/// The header's fields, validated, by the engine's names (those of `ModelSpec`; llama2.c's
/// own name in the comment where it differs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Llama2cConfig {
    /// llama2.c `dim`: the width of the residual stream.
    pub d_model: usize,
    /// llama2.c `hidden_dim`: the width of the feed-forward layer.
    pub ffn_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    /// llama2.c `seq_len`: the context length.
    pub context: usize,
    /// The classifier is the token embedding (positive vocab_size in the header).
    pub shared_classifier: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Llama2cError {
    TooShort {
        len: usize,
    },
    BadDimension {
        name: &'static str,
        value: i64,
        max: usize,
    },
    DimNotDivisible {
        dim: usize,
        heads: usize,
    },
    HeadsNotDivisible {
        heads: usize,
        kv_heads: usize,
    },
    OddHeadSize {
        head_size: usize,
    },
    SizeOverflow,
    /// The header predicts another file size (or this is not a llama2.c file).
    SizeMismatch {
        expected: usize,
        found: usize,
    },
}

impl fmt::Display for Llama2cError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Llama2cError::*;
        match self {
            TooShort { len } => write!(f, "file is {len} bytes, shorter than llama2.c's 28-byte header"),
            BadDimension { name, value, max } => write!(f, "llama2.c header: bad {name} = {value} (must be between 1 and {max})"),
            DimNotDivisible { dim, heads } => write!(f, "llama2.c header: dim {dim} is not divisible by n_heads {heads}"),
            HeadsNotDivisible { heads, kv_heads } => {
                write!(f, "llama2.c header: n_heads {heads} is not a multiple of n_kv_heads {kv_heads}")
            }
            OddHeadSize { head_size } => write!(f, "llama2.c header: head size {head_size} is odd (RoPE needs pairs)"),
            SizeOverflow => write!(f, "llama2.c header: sizes overflow (absurd dimensions)"),
            SizeMismatch { expected, found } => {
                write!(f, "a llama2.c file with this header has {expected} bytes, this one has {found}")
            }
        }
    }
}

impl core::error::Error for Llama2cError {}

impl Llama2cConfig {
    pub fn head_size(&self) -> usize {
        self.d_model / self.n_heads
    }

    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_size()
    }

    /// Floats of each section in file order (None on overflow): the format's table.
    fn sections(&self) -> Option<[usize; 13]> {
        let (c, f, l, v) = (self.d_model, self.ffn_dim, self.n_layers, self.vocab_size);
        let m = |a: usize, b: usize| a.checked_mul(b);
        let lc = m(l, c)?;
        let k = self.kv_dim();
        Some([
            m(v, c)?,                                          // token_embedding
            lc,                                                // rms_att
            m(lc, c)?,                                         // wq
            m(lc, k)?,                                         // wk
            m(lc, k)?,                                         // wv
            m(lc, c)?,                                         // wo
            lc,                                                // rms_ffn
            m(lc, f)?,                                         // w1
            m(lc, f)?,                                         // w2
            m(lc, f)?,                                         // w3
            c,                                                 // rms_final
            m(self.context, self.head_size())?,                // old freq_cis real + imag (skipped)
            if self.shared_classifier { 0 } else { m(v, c)? }, // wcls
        ])
    }

    /// Bytes of a file with this header.
    pub fn file_size(&self) -> Option<usize> {
        let floats = self.sections()?.iter().try_fold(0usize, |a, &n| a.checked_add(n))?;
        floats.checked_mul(4)?.checked_add(HEADER_BYTES)
    }

    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            arch: Arch::LLAMA,
            vocab_size: self.vocab_size,
            d_model: self.d_model,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_size(),
            ffn_dim: self.ffn_dim,
            context: self.context,
            norm: Norm { kind: NormKind::RmsNorm, eps: 1e-5 },
            positions: Positions::Rope(Rope { base: 10_000.0, style: RopeStyle::Normal, local_base: None }),
            mlp: Mlp::SwiGlu,
            qk_norm: false,
            post_norms: false,
            embed_scale: None,
            sliding_window: None,
            logit_softcap: None,
            tied_output: self.shared_classifier,
        }
    }
}

/// Reads and validates the header, and checks the file has exactly the size it predicts.
pub fn parse_header(bytes: &[u8]) -> Result<Llama2cConfig, Llama2cError> {
    if bytes.len() < HEADER_BYTES {
        return Err(Llama2cError::TooShort { len: bytes.len() });
    }
    let h = |i: usize| i32::from_le_bytes([bytes[i * 4], bytes[i * 4 + 1], bytes[i * 4 + 2], bytes[i * 4 + 3]]) as i64;
    let dim = |name: &'static str, max: usize, v: i64| -> Result<usize, Llama2cError> {
        if v <= 0 || v as u64 > max as u64 { Err(Llama2cError::BadDimension { name, value: v, max }) } else { Ok(v as usize) }
    };
    let vocab_raw = h(5);
    let cfg = Llama2cConfig {
        d_model: dim("dim", spec::MAX_DIM, h(0))?,
        ffn_dim: dim("hidden_dim", spec::MAX_DIM, h(1))?,
        n_layers: dim("n_layers", spec::MAX_LAYERS, h(2))?,
        n_heads: dim("n_heads", spec::MAX_HEADS, h(3))?,
        n_kv_heads: dim("n_kv_heads", spec::MAX_HEADS, h(4))?,
        vocab_size: dim("vocab_size", spec::MAX_VOCAB, vocab_raw.abs())?,
        context: dim("seq_len", spec::MAX_CONTEXT, h(6))?,
        shared_classifier: vocab_raw > 0,
    };
    if !cfg.d_model.is_multiple_of(cfg.n_heads) {
        return Err(Llama2cError::DimNotDivisible { dim: cfg.d_model, heads: cfg.n_heads });
    }
    if cfg.n_kv_heads > cfg.n_heads || !cfg.n_heads.is_multiple_of(cfg.n_kv_heads) {
        return Err(Llama2cError::HeadsNotDivisible { heads: cfg.n_heads, kv_heads: cfg.n_kv_heads });
    }
    if !cfg.head_size().is_multiple_of(2) {
        return Err(Llama2cError::OddHeadSize { head_size: cfg.head_size() });
    }
    let expected = cfg.file_size().ok_or(Llama2cError::SizeOverflow)?;
    if bytes.len() != expected {
        return Err(Llama2cError::SizeMismatch { expected, found: bytes.len() });
    }
    Ok(cfg)
}

/// A llama2.c file that cannot be loaded.
#[derive(Clone, Debug, PartialEq)]
pub enum Llama2cLoadError {
    File(Llama2cError),
    Model(ModelError),
}

impl fmt::Display for Llama2cLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Llama2cLoadError::File(e) => e.fmt(f),
            Llama2cLoadError::Model(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for Llama2cLoadError {}

/// The sections of a llama2.c file, named as llama2.c's `run.c` names them.
const SECTION_NAMES: [&str; 13] = [
    "token_embedding_table",
    "rms_att_weight",
    "wq",
    "wk",
    "wv",
    "wo",
    "rms_ffn_weight",
    "w1",
    "w2",
    "w3",
    "rms_final_weight",
    "freq_cis",
    "wcls",
];

/// Parses a whole llama2.c checkpoint into a model. Never panics.
pub fn load(bytes: &[u8]) -> Result<(Llama2cConfig, Model<'_>), Llama2cLoadError> {
    let cfg = parse_header(bytes).map_err(Llama2cLoadError::File)?;
    let sections = cfg.sections().ok_or(Llama2cLoadError::File(Llama2cError::SizeOverflow))?;
    let mut starts = [0usize; 13];
    let mut at = 0;
    for (i, n) in sections.iter().enumerate() {
        starts[i] = at;
        at += n;
    }
    // The size check above guarantees every range below lies inside `body`.
    let body = &bytes[HEADER_BYTES..];
    for (i, name) in SECTION_NAMES.iter().enumerate() {
        // Section 11 (the old RoPE tables) is never read.
        if i != 11 {
            ModelError::check_finite(name, BlockType::F32, &body[starts[i] * 4..(starts[i] + sections[i]) * 4])
                .map_err(Llama2cLoadError::Model)?;
        }
    }
    let take = |at: usize, n: usize| -> Cow<'_, [f32]> { f32_cow(&body[at * 4..(at + n) * 4]) };
    let (c, f, k, v, l_n) = (cfg.d_model, cfg.ffn_dim, cfg.kv_dim(), cfg.vocab_size, cfg.n_layers);
    let shape = |e: crate::tensor::ShapeError| {
        Llama2cLoadError::Model(ModelError::Weights(crate::weights::WeightsError {
            tensor: alloc::string::String::from("llama2.c tensor"),
            problem: alloc::format!("{e}"),
        }))
    };
    // Layer l's (rows, cols) matrix inside section s.
    let mat = |s: usize, l: usize, rows: usize, cols: usize| {
        Tensor::f32(rows, cols, take(starts[s] + l * rows * cols, rows * cols)).map_err(shape)
    };
    let mut layers = Vec::with_capacity(l_n);
    for l in 0..l_n {
        layers.push(Layer {
            attn_norm: NormWeights { weight: take(starts[1] + l * c, c), bias: None },
            wq: mat(2, l, c, c)?,
            wk: mat(3, l, k, c)?,
            wv: mat(4, l, k, c)?,
            bq: None,
            bk: None,
            bv: None,
            q_norm: None,
            k_norm: None,
            wo: mat(5, l, c, c)?,
            bo: None,
            post_attn_norm: None,
            ffn_norm: NormWeights { weight: take(starts[6] + l * c, c), bias: None },
            ffn_gate: Some(mat(7, l, f, c)?), // w1
            ffn_up: mat(9, l, f, c)?,         // w3
            b_up: None,
            ffn_down: mat(8, l, c, f)?, // w2
            b_down: None,
            post_ffn_norm: None,
        });
    }
    let output = if cfg.shared_classifier { None } else { Some(mat(12, 0, v, c)?) };
    let weights = Weights {
        token_embd: mat(0, 0, v, c)?,
        pos_embd: None,
        layers,
        output_norm: NormWeights { weight: take(starts[10], c), bias: None },
        output,
    };
    let model = Model::new(cfg.spec(), weights).map_err(Llama2cLoadError::Model)?;
    Ok((cfg, model))
}
