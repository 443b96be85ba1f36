//! llm-engine: GPT-2 inference for llm.c checkpoints, in `no_std` Rust.
//!
//! The same crate runs in the host CLI and in the UEFI application, and gives the same
//! tokens on both for the same checkpoint, prompt, settings and seed.
//!
//! - [`checkpoint`]: llm.c's checkpoint format (read v3 fp32 zero-copy, v5 bf16; write v3).
//! - [`model`]: the forward pass with a KV cache (`Model`, `RunState`).
//! - [`kernels`] / [`simd`]: matmul, attention inner loops, LayerNorm, GELU, softmax.
//! - [`sampler`]: greedy / temperature / top-k / top-p / min-p / repetition penalty.
//! - [`tokenizer`]: byte vocabulary and llm.c tokenizer files; safe UTF-8 printing.
//! - [`session`]: context, sliding window, stop strings; [`chat`]: the shared slash commands.
#![no_std]

extern crate alloc;

pub mod chat;
pub mod checkpoint;
pub mod config;
pub mod kernels;
pub mod model;
pub mod parallel;
pub mod sampler;
pub mod session;
pub mod simd;
pub mod tokenizer;

pub use checkpoint::{Checkpoint, CheckpointError, Config};
pub use kernels::KernelSet;
pub use model::{EngineError, Model, RunState};
pub use parallel::{Parallel, Serial};
pub use sampler::{Rng, Sampler, SamplerConfig};
pub use session::{Session, StopFilter};
pub use tokenizer::{Tokenizer, Utf8Printer};
