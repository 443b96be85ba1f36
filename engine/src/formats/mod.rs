//! Model file formats: `llmc.rs` (llm.c GPT-2 checkpoints, v3 fp32 / v5 bf16) and
//! `llama2c.rs` (llama2.c Llama checkpoints) turn a file into a (spec, named weights) model;
//! `gguf/` reads the llama.cpp ecosystem's container, whose architectures are built by
//! `arch/`. `loader.rs` tells the formats apart.

pub mod gguf;
pub mod llama2c;
pub mod llmc;

/// Which file a model came from, with its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Llmc { version: i32, config: llmc::LlmcConfig },
    Llama2c(llama2c::Llama2cConfig),
    Gguf { version: u32 },
}

impl Format {
    pub fn describe(&self) -> &'static str {
        match self {
            Format::Llmc { version: llmc::VERSION_BF16, .. } => "llm.c checkpoint version 5 (bf16)",
            Format::Llmc { .. } => "llm.c checkpoint version 3 (fp32)",
            Format::Llama2c(c) if c.shared_classifier => "llama2.c checkpoint (fp32, shared classifier)",
            Format::Llama2c(_) => "llama2.c checkpoint (fp32, separate classifier)",
            Format::Gguf { version: 2 } => "GGUF version 2",
            Format::Gguf { .. } => "GGUF version 3",
        }
    }

    /// Whether the model needs a tokenizer file (llama2.c models do; llm.c models with
    /// V = 256 are byte-level).
    pub fn needs_tokenizer_file(&self) -> bool {
        match self {
            Format::Llmc { config, .. } => config.vocab_size != 256,
            Format::Llama2c(_) => true,
            Format::Gguf { .. } => false,
        }
    }
}
