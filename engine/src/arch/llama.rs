//! `llama` (Llama 2/3, SmolLM, TinyLlama, ...): RMSNorm, RoPE on adjacent pairs, GQA, SwiGLU,
//! `output.weight` or tied (llama.cpp's `src/models/llama.cpp`).

use super::{Architecture, GgufModelError, Hparams, Layout};
use crate::spec::{ModelSpec, RopeStyle};

pub const ARCH: Architecture = Architecture { name: "llama", spec, layout: Layout::SEPARATE };

fn spec(h: &Hparams<'_, '_>) -> Result<ModelSpec, GgufModelError> {
    h.llama(RopeStyle::Normal)
}
