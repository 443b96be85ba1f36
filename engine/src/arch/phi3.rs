//! `phi3` (Phi-3, Phi-3.5 and Phi-4 mini; llama.cpp's `src/models/phi3.cpp`): `llama` with
//! - a fused `attn_qkv` (Q + 2K rows: q, then k, then v; separate `attn_q/k/v` accepted too);
//! - a fused gate+up in `ffn_up` (2F rows: the gate, then the up projection; ggml's `swiglu`);
//! - RoPE on halves (neox). Queries are scaled by 1/sqrt(hd) before attention with a score
//!   scale of 1, which is the usual scaled attention.
//!
//! llama.cpp ignores phi3's `attention.sliding_window` (its SWA is disabled for this
//! architecture), and so do we. The 128k-context variants carry LongRoPE factors
//! (`rope_factors_long/short`), which this engine does not compute: such files are refused.

use super::{Architecture, GateUp, GgufModelError, Hparams, Layout, Qkv};
use crate::spec::{ModelSpec, RopeStyle};
use alloc::string::String;

pub const ARCH: Architecture = Architecture { name: "phi3", spec, layout: Layout { qkv: Qkv::FusedOrSeparate, gate_up: GateUp::Fused } };

fn spec(h: &Hparams<'_, '_>) -> Result<ModelSpec, GgufModelError> {
    for name in ["rope_factors_long.weight", "rope_factors_short.weight"] {
        if h.has_tensor(name) {
            return Err(GgufModelError::BadTensor {
                name: String::from(name),
                problem: String::from("LongRoPE scaling (the 128k-context Phi-3 variants) is not supported"),
            });
        }
    }
    h.llama(RopeStyle::Neox)
}
