//! `gpt2` (llama.cpp's `src/models/gpt2.cpp`): LayerNorm with biases
//! (`attention.layer_norm_epsilon`), learned positions (`position_embd`), a fused `attn_qkv`
//! with its bias, a GELU MLP with biases, biases on every projection.

use super::{Architecture, GgufModelError, Hparams, Layout, Qkv};
use crate::spec::{Mlp, ModelSpec, Norm, NormKind, Positions, RopeStyle};

pub const ARCH: Architecture = Architecture { name: "gpt2", spec, layout: Layout { qkv: Qkv::Fused, ..Layout::SEPARATE } };

fn spec(h: &Hparams<'_, '_>) -> Result<ModelSpec, GgufModelError> {
    let s = h.llama(RopeStyle::Neox)?;
    let eps = h.f32_or("attention.layer_norm_epsilon", 1e-5)?;
    Ok(ModelSpec { norm: Norm { kind: NormKind::LayerNorm, eps }, positions: Positions::Learned, mlp: Mlp::Gelu, ..s })
}
