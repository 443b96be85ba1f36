//! `gemma3` (llama.cpp's `src/models/gemma3.cpp`): `llama` with
//! - the token embedding multiplied by sqrt(C);
//! - RMSNorm of each query and key head, and norms of the attention and MLP outputs before
//!   their residual adds (`post_attention_norm`, `post_ffw_norm`);
//! - GeGLU, RoPE on halves (neox);
//! - sliding-window layers (l % 6 < 5, window `attention.sliding_window`) with RoPE base
//!   `rope.freq_base_swa` (10,000), global layers with `rope.freq_base`. Without the window
//!   key, no window (as llama.cpp).

use super::{Architecture, GgufModelError, Hparams, Layout};
use crate::spec::{Mlp, ModelSpec, Positions, RopeStyle, SlidingWindow};

pub const ARCH: Architecture = Architecture { name: "gemma3", spec, layout: Layout::SEPARATE };

fn spec(h: &Hparams<'_, '_>) -> Result<ModelSpec, GgufModelError> {
    let mut s = h.llama(RopeStyle::Neox)?;
    s.sliding_window = h.opt_usize("attention.sliding_window").map(|window| SlidingWindow { window, pattern: 6 });
    let local_base = h.f32_or("rope.freq_base_swa", 10_000.0)?;
    if let Positions::Rope(r) = &mut s.positions {
        r.local_base = Some(local_base);
    }
    s.mlp = Mlp::GeGlu;
    s.qk_norm = true;
    s.post_norms = true;
    s.embed_scale = Some(libm::sqrtf(s.d_model as f32));
    Ok(s)
}
