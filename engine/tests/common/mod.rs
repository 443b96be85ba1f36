//! Test helpers live in the llm-testkit crate (shared with the trainer's tests).
#![allow(unused_imports)]
pub use llm_testkit::{EveryCoreSplits, config, normal, random_params, random_tokens};
