//! Architectures, one file each: a GGUF file's `{arch}.*` hyperparameters become a
//! [`ModelSpec`] and its tensor directory named [`Weights`] (names and semantics as llama.cpp's
//! `llama-arch.cpp`, `llama-model.cpp` and `src/models/*.cpp`; llama.cpp/ggml, MIT). Every
//! architecture runs through the one spec-driven forward pass (`model.rs`): a file here only
//! says which switches its model sets and how its tensors are laid out.
//!
//! | file | what differs from `llama` |
//! |---|---|
//! | `llama.rs` | RMSNorm, RoPE on adjacent pairs, GQA, SwiGLU, `output.weight` or tied |
//! | `qwen2.rs` | Q/K/V biases, RoPE on halves (neox) |
//! | `qwen3.rs` | per-head Q/K RMSNorm, neox |
//! | `gemma3.rs` | embedding x sqrt(C), Q/K norms, post-attention and post-FFN norms, GeGLU, neox, sliding-window layers (l % 6 < 5) with RoPE base 10,000, global layers with `rope.freq_base` |
//! | `gpt2.rs` | LayerNorm with biases, learned positions, fused `attn_qkv`, GELU MLP with biases |
//! | `phi3.rs` | fused `attn_qkv`, fused gate+up in `ffn_up`, neox |
//!
//! A new llama-like architecture is a file with its [`Architecture`] (its spec from
//! [`Hparams::llama`] plus its switches, its [`Layout`]) and one line in [`ARCHITECTURES`].
//!
//! GGUF shapes are innermost first: a matrix (ne0, ne1) has ne1 rows of ne0 (out, in).

mod gemma3;
mod gpt2;
mod llama;
mod phi3;
mod qwen2;
mod qwen3;

use crate::formats::gguf::{Gguf, GgufError, TensorInfo};
use crate::model::{Model, ModelError};
use crate::quant::BlockType;
use crate::spec::{Arch, Mlp, ModelSpec, Norm, NormKind, Positions, Rope, RopeStyle};
use crate::tensor::{Tensor, Vector, f32_cow};
use crate::weights::{Layer, NormWeights, Weights};
use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum GgufModelError {
    File(GgufError),
    UnsupportedArch(String),
    MissingTensor(String),
    /// A tensor of a type the engine cannot compute, or of the wrong shape.
    BadTensor {
        name: String,
        problem: String,
    },
    BadValue {
        key: String,
        problem: String,
    },
    Model(ModelError),
}

impl fmt::Display for GgufModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgufModelError::File(e) => e.fmt(f),
            GgufModelError::UnsupportedArch(a) => {
                write!(f, "architecture '{a}' is not supported (supported: {})", supported_archs())
            }
            GgufModelError::MissingTensor(t) => write!(f, "tensor {t} is missing"),
            GgufModelError::BadTensor { name, problem } => write!(f, "tensor {name}: {problem}"),
            GgufModelError::BadValue { key, problem } => write!(f, "{key}: {problem}"),
            GgufModelError::Model(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for GgufModelError {}

impl From<GgufError> for GgufModelError {
    fn from(e: GgufError) -> Self {
        GgufModelError::File(e)
    }
}

/// One architecture: its `general.architecture` name, its spec, its tensor layout.
pub struct Architecture {
    pub name: &'static str,
    /// Hyperparameters (and, for the vocabulary, the token embedding's shape) -> spec.
    pub spec: fn(&Hparams<'_, '_>) -> Result<ModelSpec, GgufModelError>,
    /// Where a block's projections are (the spec says which optional tensors exist).
    pub layout: Layout,
}

/// Every architecture the engine runs, by `general.architecture`.
pub const ARCHITECTURES: &[Architecture] = &[llama::ARCH, qwen2::ARCH, qwen3::ARCH, gemma3::ARCH, gpt2::ARCH, phi3::ARCH];

/// The architecture named `name`.
pub fn architecture(name: &str) -> Result<&'static Architecture, GgufModelError> {
    ARCHITECTURES.iter().find(|a| a.name == name).ok_or_else(|| GgufModelError::UnsupportedArch(String::from(name)))
}

fn supported_archs() -> String {
    let names: Vec<&str> = ARCHITECTURES.iter().map(|a| a.name).collect();
    names.join(", ")
}

/// How a block's attention projections are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qkv {
    /// `attn_q`, `attn_k`, `attn_v` (each with an optional bias).
    Separate,
    /// `attn_qkv`: (Q + 2K, C) rows q, then k, then v; its bias likewise, and required.
    Fused,
    /// `attn_qkv` (bias optional) when the file has it, else separate (llama.cpp's
    /// `create_tensor_qkv`).
    FusedOrSeparate,
}

/// How a block's gated MLP input projections are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateUp {
    /// `ffn_gate` (F, C) and `ffn_up` (F, C).
    Separate,
    /// `ffn_up` (2F, C): rows 0..F the gate, F..2F the up projection (ggml's `swiglu` split).
    Fused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub qkv: Qkv,
    pub gate_up: GateUp,
}

impl Layout {
    /// Separate projections, as `llama`.
    pub const SEPARATE: Layout = Layout { qkv: Qkv::Separate, gate_up: GateUp::Separate };
}

/// The `{arch}.*` metadata of a GGUF file, read for a spec.
pub struct Hparams<'g, 'a> {
    g: &'g Gguf<'a>,
    arch: &'static str,
}

impl Hparams<'_, '_> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    /// A required `{arch}.k`.
    pub fn usize(&self, k: &str) -> Result<usize, GgufModelError> {
        self.g.get_usize(&self.key(k)).map_err(GgufModelError::File)
    }

    /// `{arch}.k` if present and a count.
    pub(crate) fn opt_usize(&self, k: &str) -> Option<usize> {
        self.g.get_usize(&self.key(k)).ok()
    }

    /// `{arch}.k`, or `default` when absent (a value of the wrong type is an error).
    pub(crate) fn f32_or(&self, k: &str, default: f32) -> Result<f32, GgufModelError> {
        match self.g.get_f32(&self.key(k)) {
            Ok(v) => Ok(v),
            Err(GgufError::MissingKey { .. }) => Ok(default),
            Err(e) => Err(GgufModelError::File(e)),
        }
    }

    /// `{arch}.k` if present and a number.
    pub(crate) fn opt_f32(&self, k: &str) -> Option<f32> {
        self.g.get_f32(&self.key(k)).ok()
    }

    pub(crate) fn has_tensor(&self, name: &str) -> bool {
        self.g.tensor(name).is_some()
    }

    /// The `llama` spec from the usual keys: RMSNorm, RoPE of `style` with `rope.freq_base`,
    /// SwiGLU, GQA, no QK-norm or post-norms, an optional final logit soft-cap, the output
    /// tied when the file has no `output.weight`. Other architectures change switches.
    pub fn llama(&self, style: RopeStyle) -> Result<ModelSpec, GgufModelError> {
        let d_model = self.usize("embedding_length")?;
        let n_heads = self.usize("attention.head_count")?;
        let n_kv_heads = self.opt_usize("attention.head_count_kv").unwrap_or(n_heads);
        let head_dim = match self.opt_usize("attention.key_length") {
            Some(k) => k,
            None if n_heads > 0 => d_model / n_heads,
            None => 0,
        };
        let embd = self.g.tensor("token_embd.weight").ok_or_else(|| GgufModelError::MissingTensor(String::from("token_embd.weight")))?;
        let vocab_size = embd.shape().get(1).copied().unwrap_or(0) as usize;
        let eps = self.f32_or("attention.layer_norm_rms_epsilon", 1e-5)?;
        let base = self.f32_or("rope.freq_base", 10_000.0)?;
        Ok(ModelSpec {
            arch: Arch(self.arch),
            vocab_size,
            d_model,
            n_layers: self.usize("block_count")?,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_dim: self.usize("feed_forward_length")?,
            context: self.usize("context_length")?,
            norm: Norm { kind: NormKind::RmsNorm, eps },
            positions: Positions::Rope(Rope { base, style, local_base: None }),
            mlp: Mlp::SwiGlu,
            qk_norm: false,
            post_norms: false,
            embed_scale: None,
            sliding_window: None,
            logit_softcap: self.opt_f32("final_logit_softcapping").filter(|&v| v > 0.0),
            tied_output: !self.has_tensor("output.weight"),
        })
    }
}

/// The spec of a GGUF model, from its metadata and the token embedding's shape.
pub fn spec(g: &Gguf<'_>) -> Result<ModelSpec, GgufModelError> {
    arch_and_spec(g).map(|(_, s)| s)
}

/// The file's architecture and the spec it builds.
fn arch_and_spec(g: &Gguf<'_>) -> Result<(&'static Architecture, ModelSpec), GgufModelError> {
    let a = architecture(g.architecture()?)?;
    Ok((a, (a.spec)(&Hparams { g, arch: a.name })?))
}

/// The tensor directory of a GGUF file, read as typed, shape-checked views.
pub struct Tensors<'g, 'a> {
    g: &'g Gguf<'a>,
}

impl<'a> Tensors<'_, 'a> {
    fn info(&self, name: &str) -> Result<TensorInfo<'a>, GgufModelError> {
        self.g.tensor(name).copied().ok_or_else(|| GgufModelError::MissingTensor(String::from(name)))
    }

    fn btype(info: &TensorInfo<'_>) -> Result<BlockType, GgufModelError> {
        info.ggml_type.block_type().ok_or_else(|| GgufModelError::BadTensor {
            name: String::from(info.name),
            problem: format!("type {} is not supported (supported: {})", info.ggml_type.name(), supported_types()),
        })
    }

    /// A matrix (rows, cols); the file's (ne0, ne1) must be (cols, rows).
    fn mat(&self, name: &str, rows: usize, cols: usize) -> Result<Tensor<'a>, GgufModelError> {
        let info = self.info(name)?;
        self.mat_rows(&info, rows, cols, 0, rows)
    }

    /// Rows r0..r0+n of a (rows, cols) matrix (a slice of a fused tensor).
    fn mat_rows(&self, info: &TensorInfo<'a>, rows: usize, cols: usize, r0: usize, n: usize) -> Result<Tensor<'a>, GgufModelError> {
        let shape = info.shape();
        let (ne0, ne1) = (shape.first().copied().unwrap_or(1) as usize, shape.get(1).copied().unwrap_or(1) as usize);
        if ne0 != cols || ne1 != rows || shape.iter().skip(2).any(|&d| d != 1) {
            return Err(GgufModelError::BadTensor {
                name: String::from(info.name),
                problem: format!("shape {shape:?}, expected [{cols}, {rows}]"),
            });
        }
        let bt = Self::btype(info)?;
        let row_bytes = if bt == BlockType::F32 { cols * 4 } else { bt.row_bytes(cols).unwrap_or(0) };
        let data = self.g.tensor_data(info);
        let bytes = &data[r0 * row_bytes..(r0 + n) * row_bytes];
        Tensor::blocks(bt, n, cols, Cow::Borrowed(bytes))
            .map_err(|e| GgufModelError::BadTensor { name: String::from(info.name), problem: format!("{e}") })
    }

    /// A vector of `n` elements (norm gains, biases), converted to f32 unless it is f32.
    fn vector(&self, name: &str, n: usize) -> Result<Vector<'a>, GgufModelError> {
        let info = self.info(name)?;
        self.vector_part(&info, n, 0, n)
    }

    fn vector_part(&self, info: &TensorInfo<'a>, total: usize, at: usize, n: usize) -> Result<Vector<'a>, GgufModelError> {
        if info.n_elements() != total as u64 {
            return Err(GgufModelError::BadTensor {
                name: String::from(info.name),
                problem: format!("{} elements, expected {total}", info.n_elements()),
            });
        }
        let bt = Self::btype(info)?;
        let data = self.g.tensor_data(info);
        if bt == BlockType::F32 {
            return Ok(f32_cow(&data[at * 4..(at + n) * 4]));
        }
        let mut all = alloc::vec![0.0f32; total];
        crate::quant::dequantize_row(bt, data, &mut all);
        Ok(Cow::Owned(all[at..at + n].to_vec()))
    }

    fn opt_vector(&self, name: &str, n: usize) -> Result<Option<Vector<'a>>, GgufModelError> {
        if self.g.tensor(name).is_some() { self.vector(name, n).map(Some) } else { Ok(None) }
    }

    fn norm(&self, name: &str, n: usize, layernorm: bool) -> Result<NormWeights<'a>, GgufModelError> {
        let weight = self.vector(&format!("{name}.weight"), n)?;
        let bias = if layernorm { Some(self.vector(&format!("{name}.bias"), n)?) } else { None };
        Ok(NormWeights { weight, bias })
    }

    /// Block `l`: the optional tensors are those the spec's switches ask for (biases are
    /// taken when present), the projections where `layout` says. Shapes: C = d_model,
    /// Q = NH*hd, K = NKV*hd, F = ffn_dim.
    pub fn layer(&self, s: &ModelSpec, l: usize, layout: Layout) -> Result<Layer<'a>, GgufModelError> {
        let (c, q, kv, f, hd) = (s.d_model, s.q_dim(), s.kv_dim(), s.ffn_dim, s.head_dim);
        let n = |t: &str| format!("blk.{l}.{t}");
        let layernorm = s.norm.kind == NormKind::LayerNorm;
        let fused = match layout.qkv {
            Qkv::Separate => None,
            Qkv::Fused => Some((self.info(&n("attn_qkv.weight"))?, Some(self.info(&n("attn_qkv.bias"))?))),
            Qkv::FusedOrSeparate => self.g.tensor(&n("attn_qkv.weight")).map(|w| (*w, self.g.tensor(&n("attn_qkv.bias")).copied())),
        };
        let (wq, wk, wv, bq, bk, bv) = match fused {
            // (Q + 2K, C) rows and (Q + 2K) bias: q, then k, then v.
            Some((w, b)) => {
                let t = q + 2 * kv;
                let part = |at: usize, len: usize| b.as_ref().map(|b| self.vector_part(b, t, at, len)).transpose();
                (
                    self.mat_rows(&w, t, c, 0, q)?,
                    self.mat_rows(&w, t, c, q, kv)?,
                    self.mat_rows(&w, t, c, q + kv, kv)?,
                    part(0, q)?,
                    part(q, kv)?,
                    part(q + kv, kv)?,
                )
            }
            None => (
                self.mat(&n("attn_q.weight"), q, c)?,
                self.mat(&n("attn_k.weight"), kv, c)?,
                self.mat(&n("attn_v.weight"), kv, c)?,
                self.opt_vector(&n("attn_q.bias"), q)?,
                self.opt_vector(&n("attn_k.bias"), kv)?,
                self.opt_vector(&n("attn_v.bias"), kv)?,
            ),
        };
        let (q_norm, k_norm) = if s.qk_norm {
            (Some(self.vector(&n("attn_q_norm.weight"), hd)?), Some(self.vector(&n("attn_k_norm.weight"), hd)?))
        } else {
            (None, None)
        };
        let attn_norm = self.norm(&n("attn_norm"), c, layernorm)?;
        let wo = self.mat(&n("attn_output.weight"), c, q)?;
        let bo = self.opt_vector(&n("attn_output.bias"), c)?;
        let post_attn_norm = if s.post_norms { Some(self.norm(&n("post_attention_norm"), c, false)?) } else { None };
        let ffn_norm = self.norm(&n("ffn_norm"), c, layernorm)?;
        let (ffn_gate, ffn_up) = match (s.mlp, layout.gate_up) {
            (Mlp::Gelu, _) => (None, self.mat(&n("ffn_up.weight"), f, c)?),
            (_, GateUp::Separate) => (Some(self.mat(&n("ffn_gate.weight"), f, c)?), self.mat(&n("ffn_up.weight"), f, c)?),
            (_, GateUp::Fused) => {
                let w = self.info(&n("ffn_up.weight"))?;
                (Some(self.mat_rows(&w, 2 * f, c, 0, f)?), self.mat_rows(&w, 2 * f, c, f, f)?)
            }
        };
        Ok(Layer {
            attn_norm,
            wq,
            wk,
            wv,
            bq,
            bk,
            bv,
            q_norm,
            k_norm,
            wo,
            bo,
            post_attn_norm,
            ffn_norm,
            ffn_gate,
            ffn_up,
            b_up: self.opt_vector(&n("ffn_up.bias"), f)?,
            ffn_down: self.mat(&n("ffn_down.weight"), c, f)?,
            b_down: self.opt_vector(&n("ffn_down.bias"), c)?,
            post_ffn_norm: if s.post_norms { Some(self.norm(&n("post_ffw_norm"), c, false)?) } else { None },
        })
    }
}

fn supported_types() -> String {
    let names: Vec<&str> = BlockType::ALL.iter().map(|t| t.name()).collect();
    names.join(", ")
}

/// Builds the model (spec and named weights) of a parsed GGUF file.
pub fn load<'a>(g: &Gguf<'a>) -> Result<Model<'a>, GgufModelError> {
    let (a, s) = arch_and_spec(g)?;
    s.validate().map_err(|e| GgufModelError::Model(ModelError::Spec(e)))?;
    let t = Tensors { g };
    let (c, v) = (s.d_model, s.vocab_size);
    let layernorm = s.norm.kind == NormKind::LayerNorm;
    let layers = (0..s.n_layers).map(|l| t.layer(&s, l, a.layout)).collect::<Result<Vec<_>, _>>()?;
    let weights = Weights {
        token_embd: t.mat("token_embd.weight", v, c)?,
        pos_embd: if s.positions == Positions::Learned { Some(t.mat("position_embd.weight", s.context, c)?) } else { None },
        layers,
        output_norm: t.norm("output_norm", c, layernorm)?,
        output: if s.tied_output { None } else { Some(t.mat("output.weight", v, c)?) },
    };
    // Every tensor of a supported type (an unsupported one in use was refused above).
    for t in g.tensors() {
        if let Some(bt) = t.ggml_type.block_type() {
            ModelError::check_finite(t.name, bt, g.tensor_data(t)).map_err(GgufModelError::Model)?;
        }
    }
    Model::new(s, weights).map_err(GgufModelError::Model)
}
