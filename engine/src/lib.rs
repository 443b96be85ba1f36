//! llm-engine: transformer inference in `no_std` Rust, for the host CLI and the UEFI app.
//!
//! The same crate runs on the host and on bare metal and gives the same tokens on both for
//! the same model, prompt, settings and seed. How it is laid out (one file per concern; a
//! new architecture, weight type or file format is a new file beside its siblings):
//!
//! - [`spec`]: the model spec (shape and switches of every family); [`weights`]: named,
//!   typed weights; [`tensor`]: tensor views and types.
//! - [`formats`]: loaders from files to (spec, weights): `llmc` (GPT-2), `llama2c` (Llama).
//! - [`model`]: the forward pass with a KV cache (`Model`, `RunState`); [`layers`]: norms,
//!   RoPE, attention, activations, softmax; [`kernels`]: dot/matmul per CPU architecture.
//! - [`cpu`]: CPU features (CPUID), shared with the firmware app.
//! - [`sampler`], [`tokenizer`], [`session`] (context, sliding window, stop strings),
//!   [`chat`] (slash commands and the chat-turn driver), [`config`] (`llm.cfg`).
#![no_std]

extern crate alloc;

pub mod chat;
pub mod config;
pub mod cpu;
pub mod formats;
pub mod kernels;
pub mod layers;
pub mod model;
pub mod parallel;
pub mod quant;
pub mod sampler;
pub mod session;
pub mod spec;
pub mod template;
pub mod tensor;
pub mod tokenizer;
pub mod weights;

pub use formats::llmc as checkpoint;
pub use formats::llmc::{CheckpointError, Config};
pub use formats::{Format, LoadError, Loaded, load};
pub use kernels::{Family, Kernels};
pub use model::{EngineError, Model, ModelError, RunState};
pub use parallel::{Parallel, Serial};
pub use sampler::{Rng, Sampler, SamplerConfig};
pub use session::{Session, StopFilter};
pub use spec::ModelSpec;
pub use tokenizer::{Tokenizer, Utf8Printer};
