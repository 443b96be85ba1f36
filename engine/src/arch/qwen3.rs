//! `qwen3`: `llama` with an RMSNorm of each query and key head (`attn_q_norm`, `attn_k_norm`,
//! (hd)) before RoPE on halves (neox) (llama.cpp's `src/models/qwen3.cpp`).

use super::{Architecture, GgufModelError, Hparams, Layout};
use crate::spec::{ModelSpec, RopeStyle};

pub const ARCH: Architecture = Architecture { name: "qwen3", spec, layout: Layout::SEPARATE };

fn spec(h: &Hparams<'_, '_>) -> Result<ModelSpec, GgufModelError> {
    Ok(ModelSpec { qk_norm: true, ..h.llama(RopeStyle::Neox)? })
}
