//! llm-trainer: trains the engine's GPT-2 on the CPU like llm.c's `train_gpt2.c`.
//!
//! - [`gpt`]: every layer's forward and backward pass, the whole-model forward/backward;
//! - [`optim`]: AdamW, learning-rate schedule, gradient clipping;
//! - [`data`]: llm.c token files, `prepare`, batches;
//! - [`run`]: the training loop, checkpoints, resume; [`report`]: loss curve and summary.

pub mod data;
pub mod gpt;
pub mod io;
pub mod optim;
pub mod progress;
pub mod report;
pub mod run;
