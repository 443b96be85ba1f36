//! GGUF models: the spec from `general.architecture` and its `{arch}.*` keys, and the named
//! weights from the tensor directory (names and semantics as llama.cpp's `llama-arch.cpp`,
//! `llama-model.cpp` and `src/models/*.cpp` use them; llama.cpp/ggml, MIT).
//!
//! | arch | what differs from `llama` |
//! |---|---|
//! | `llama` | RMSNorm, RoPE on adjacent pairs, GQA, SwiGLU, `output.weight` or tied |
//! | `qwen2` | Q/K/V biases, RoPE on halves (neox) |
//! | `qwen3` | per-head Q/K RMSNorm, neox |
//! | `gemma3` | embedding x sqrt(C), Q/K norms, post-attention and post-FFN norms, GeGLU, neox, sliding-window layers (l % 6 < 5) with RoPE base 10,000, global layers with `rope.freq_base` |
//! | `gpt2` | LayerNorm with biases, learned positions, fused `attn_qkv`, GELU MLP with biases |
//!
//! GGUF shapes are innermost first: a matrix (ne0, ne1) has ne1 rows of ne0 (out, in).

use super::gguf::{Gguf, GgufError, TensorInfo};
use crate::layers::RopeStyle;
use crate::model::{Model, ModelError};
use crate::quant::BlockType;
use crate::spec::{Arch, Mlp, ModelSpec, Norm, NormKind, Positions, Rope, SlidingWindow};
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
                write!(f, "architecture '{a}' is not supported (supported: llama, qwen2, qwen3, gemma3, gpt2)")
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

fn arch_of(name: &str) -> Result<Arch, GgufModelError> {
    Ok(match name {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        "qwen3" => Arch::Qwen3,
        "gemma3" => Arch::Gemma3,
        "gpt2" => Arch::Gpt2,
        other => return Err(GgufModelError::UnsupportedArch(String::from(other))),
    })
}

/// The spec of a GGUF model, from its metadata and the token embedding's shape.
pub fn spec(g: &Gguf<'_>) -> Result<ModelSpec, GgufModelError> {
    let a = g.architecture()?;
    let arch = arch_of(a)?;
    let key = |k: &str| format!("{a}.{k}");
    let us = |k: &str| g.get_usize(&key(k)).map_err(GgufModelError::File);
    let d_model = us("embedding_length")?;
    let n_heads = us("attention.head_count")?;
    let n_kv_heads = g.get_usize(&key("attention.head_count_kv")).unwrap_or(n_heads);
    let head_dim = match g.get_usize(&key("attention.key_length")) {
        Ok(k) => k,
        Err(_) if n_heads > 0 => d_model / n_heads,
        Err(_) => 0,
    };
    let embd = g.tensor("token_embd.weight").ok_or_else(|| GgufModelError::MissingTensor(String::from("token_embd.weight")))?;
    let vocab_size = embd.shape().get(1).copied().unwrap_or(0) as usize;
    let f32_key = |k: &str, default: f32| match g.get_f32(&key(k)) {
        Ok(v) => Ok(v),
        Err(GgufError::MissingKey { .. }) => Ok(default),
        Err(e) => Err(GgufModelError::File(e)),
    };
    let gpt2 = arch == Arch::Gpt2;
    let eps = if gpt2 { f32_key("attention.layer_norm_epsilon", 1e-5)? } else { f32_key("attention.layer_norm_rms_epsilon", 1e-5)? };
    let base = f32_key("rope.freq_base", 10_000.0)?;
    let gemma = arch == Arch::Gemma3;
    let style = if matches!(arch, Arch::Llama) { RopeStyle::Normal } else { RopeStyle::Neox };
    // Gemma 3: 5 sliding-window layers, then a global one. Without the key, no window (as
    // llama.cpp).
    let sliding_window = match g.get_usize(&key("attention.sliding_window")) {
        Ok(window) if gemma => Some(SlidingWindow { window, pattern: 6 }),
        _ => None,
    };
    let local_base = f32_key("rope.freq_base_swa", 10_000.0)?;
    let softcap = match g.get_f32(&key("final_logit_softcapping")) {
        Ok(v) if v > 0.0 => Some(v),
        _ => None,
    };
    Ok(ModelSpec {
        arch,
        vocab_size,
        d_model,
        n_layers: us("block_count")?,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn_dim: us("feed_forward_length")?,
        context: us("context_length")?,
        norm: Norm { kind: if gpt2 { NormKind::LayerNorm } else { NormKind::RmsNorm }, eps },
        positions: if gpt2 { Positions::Learned } else { Positions::Rope(Rope { base, style, local_base: gemma.then_some(local_base) }) },
        mlp: if gpt2 {
            Mlp::Gelu
        } else if gemma {
            Mlp::GeGlu
        } else {
            Mlp::SwiGlu
        },
        qk_norm: matches!(arch, Arch::Qwen3 | Arch::Gemma3),
        post_norms: gemma,
        embed_scale: gemma.then(|| libm::sqrtf(d_model as f32)),
        sliding_window,
        logit_softcap: softcap,
        tied_output: g.tensor("output.weight").is_none(),
    })
}

struct Reader<'g, 'a> {
    g: &'g Gguf<'a>,
}

impl<'a> Reader<'_, 'a> {
    fn info(&self, name: &str) -> Result<TensorInfo<'a>, GgufModelError> {
        self.g.tensor(name).copied().ok_or_else(|| GgufModelError::MissingTensor(String::from(name)))
    }

    fn btype(info: &TensorInfo<'_>) -> Result<BlockType, GgufModelError> {
        BlockType::from_ggml_id(info.ggml_type.id()).ok_or_else(|| GgufModelError::BadTensor {
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
}

fn supported_types() -> String {
    let names: Vec<&str> = BlockType::ALL.iter().map(|t| t.name()).collect();
    names.join(", ")
}

/// Builds the model (spec and named weights) of a parsed GGUF file.
pub fn load<'a>(g: &Gguf<'a>) -> Result<Model<'a>, GgufModelError> {
    let s = spec(g)?;
    s.validate().map_err(|e| GgufModelError::Model(ModelError::Spec(e)))?;
    let r = Reader { g };
    let (c, q, kv, f, hd, v) = (s.d_model, s.q_dim(), s.kv_dim(), s.ffn_dim, s.head_dim, s.vocab_size);
    let gpt2 = s.arch == Arch::Gpt2;
    let mut layers = Vec::with_capacity(s.n_layers);
    for l in 0..s.n_layers {
        let n = |t: &str| format!("blk.{l}.{t}");
        let (wq, wk, wv, bq, bk, bv) = if gpt2 {
            // Fused (3C, C) projection and (3C) bias: rows 0..C are q, then k, then v.
            let info = r.info(&n("attn_qkv.weight"))?;
            let binfo = r.info(&n("attn_qkv.bias"))?;
            let t = q + 2 * kv;
            (
                r.mat_rows(&info, t, c, 0, q)?,
                r.mat_rows(&info, t, c, q, kv)?,
                r.mat_rows(&info, t, c, q + kv, kv)?,
                Some(r.vector_part(&binfo, t, 0, q)?),
                Some(r.vector_part(&binfo, t, q, kv)?),
                Some(r.vector_part(&binfo, t, q + kv, kv)?),
            )
        } else {
            (
                r.mat(&n("attn_q.weight"), q, c)?,
                r.mat(&n("attn_k.weight"), kv, c)?,
                r.mat(&n("attn_v.weight"), kv, c)?,
                r.opt_vector(&n("attn_q.bias"), q)?,
                r.opt_vector(&n("attn_k.bias"), kv)?,
                r.opt_vector(&n("attn_v.bias"), kv)?,
            )
        };
        let (q_norm, k_norm) = if s.qk_norm {
            (Some(r.vector(&n("attn_q_norm.weight"), hd)?), Some(r.vector(&n("attn_k_norm.weight"), hd)?))
        } else {
            (None, None)
        };
        layers.push(Layer {
            attn_norm: r.norm(&n("attn_norm"), c, gpt2)?,
            wq,
            wk,
            wv,
            bq,
            bk,
            bv,
            q_norm,
            k_norm,
            wo: r.mat(&n("attn_output.weight"), c, q)?,
            bo: r.opt_vector(&n("attn_output.bias"), c)?,
            post_attn_norm: if s.post_norms { Some(r.norm(&n("post_attention_norm"), c, false)?) } else { None },
            ffn_norm: r.norm(&n("ffn_norm"), c, gpt2)?,
            ffn_gate: if s.mlp == Mlp::Gelu { None } else { Some(r.mat(&n("ffn_gate.weight"), f, c)?) },
            ffn_up: r.mat(&n("ffn_up.weight"), f, c)?,
            b_up: r.opt_vector(&n("ffn_up.bias"), f)?,
            ffn_down: r.mat(&n("ffn_down.weight"), c, f)?,
            b_down: r.opt_vector(&n("ffn_down.bias"), c)?,
            post_ffn_norm: if s.post_norms { Some(r.norm(&n("post_ffw_norm"), c, false)?) } else { None },
        });
    }
    let weights = Weights {
        token_embd: r.mat("token_embd.weight", v, c)?,
        pos_embd: if gpt2 { Some(r.mat("position_embd.weight", s.context, c)?) } else { None },
        layers,
        output_norm: r.norm("output_norm", c, gpt2)?,
        output: if s.tied_output { None } else { Some(r.mat("output.weight", v, c)?) },
    };
    // Every tensor of a supported type (an unsupported one in use was refused above).
    for t in g.tensors() {
        if let Some(bt) = BlockType::from_ggml_id(t.ggml_type.id()) {
            ModelError::check_finite(t.name, bt, g.tensor_data(t)).map_err(GgufModelError::Model)?;
        }
    }
    Model::new(s, weights).map_err(GgufModelError::Model)
}
