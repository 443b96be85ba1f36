//! `qwen2` (Qwen2, Qwen2.5): `llama` with Q/K/V biases (taken when present) and RoPE on
//! halves (neox) (llama.cpp's `src/models/qwen2.cpp`).

use super::{Architecture, GgufModelError, Hparams, Layout};
use crate::spec::{ModelSpec, RopeStyle};

pub const ARCH: Architecture = Architecture { name: "qwen2", spec, layout: Layout::SEPARATE };

fn spec(h: &Hparams<'_, '_>) -> Result<ModelSpec, GgufModelError> {
    h.llama(RopeStyle::Neox)
}
