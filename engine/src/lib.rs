//! llm-engine: transformer inference in `no_std` Rust, for the host CLI and the UEFI app.
//!
//! The same crate runs on the host and on bare metal and gives the same tokens on both for
//! the same model, prompt, settings and seed. The map (docs/ARCHITECTURE.md has the data
//! flow):
//!
//! - [`loader`]: a file to a model, whichever format; [`formats`]: `llmc` (llm.c GPT-2
//!   checkpoints), `llama2c`, `gguf` (the container); [`arch`]: one file per GGUF architecture
//!   (llama, qwen2, qwen3, gemma3, gpt2) and their registry; finiteness and tokenizer/model
//!   agreement are checked at load.
//! - [`spec`]: the model spec (shape and switches of every architecture); [`weights`]: named,
//!   typed weights; [`tensor`]: tensor views and types; [`quant`]: the GGML block types
//!   (decode, dot products, 8-bit activations).
//! - [`model`]: the one spec-driven forward pass with a KV cache (`Model`, `RunState`);
//!   [`layers`]: norms, RoPE, attention, activations, softmax; [`kernels`]: the numeric
//!   families and their kernels per CPU architecture; [`cpu`]: CPU features (CPUID), shared
//!   with the firmware app; [`parallel`]: how work is split over cores (the spinning pools'
//!   claim protocol in `parallel::spin`).
//! - [`tokenizer`] (bytes, llm.c tables, SentencePiece, byte-level BPE, the GGUF vocabulary
//!   with its control tokens), [`template`] (chat templates as text and control pieces),
//!   [`sampler`], [`session`] (context, sliding window, stop strings), [`chat`] (slash
//!   commands and the chat-turn driver: whole turns, the oldest leave a full context),
//!   [`config`] (`llm.cfg`).
#![no_std]

extern crate alloc;

pub mod arch;
pub mod chat;
pub mod config;
pub mod cpu;
pub mod formats;
pub mod kernels;
pub mod layers;
pub mod loader;
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

pub use formats::Format;
pub use formats::llmc as checkpoint;
pub use formats::llmc::{CheckpointError, LlmcConfig};
pub use kernels::{Family, Kernels};
pub use loader::{LoadError, Loaded, load};
pub use model::{EngineError, Model, ModelError, RunState};
pub use parallel::{Parallel, Serial};
pub use sampler::{Rng, Sampler, SamplerConfig};
pub use session::{Session, StopFilter};
pub use spec::ModelSpec;
pub use tokenizer::{Tokenizer, Utf8Printer};
