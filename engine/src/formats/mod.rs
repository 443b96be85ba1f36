//! Model file formats. Each loader turns a file into a (spec, named weights) model:
//! `llmc.rs` (llm.c GPT-2 checkpoints, v3 fp32 / v5 bf16), `llama2c.rs` (llama2.c Llama
//! checkpoints) and `gguf.rs` + `gguf_model.rs` (the llama.cpp ecosystem's files, with their
//! tokenizer and chat template). [`load`] tells them apart by content: llm.c and GGUF files
//! start with a magic number; llama2.c files have none and must be exactly the size their
//! header predicts.

pub mod gguf;
pub mod gguf_model;
pub mod llama2c;
pub mod llmc;

use crate::model::Model;
use core::fmt;

/// Which file a model came from, with its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Llmc { version: i32, config: llmc::Config },
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

pub struct Loaded<'a> {
    pub format: Format,
    pub model: Model<'a>,
    /// The tokenizer stored in the file (GGUF).
    pub tokenizer: Option<crate::tokenizer::Tokenizer>,
    /// The chat template stored in the file (GGUF `tokenizer.chat_template`).
    pub chat_template: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LoadError {
    Llmc(llmc::LlmcLoadError),
    Llama2c(llama2c::Llama2cLoadError),
    Gguf(gguf_model::GgufModelError),
    GgufTokenizer(crate::tokenizer::gguf::GgufTokenizerError),
    /// Neither format: no llm.c magic number, and not a consistent llama2.c file.
    Unrecognized {
        first_word: Option<i32>,
        llama2c: llama2c::Llama2cError,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Llmc(e) => e.fmt(f),
            LoadError::Llama2c(e) => e.fmt(f),
            LoadError::Gguf(e) => e.fmt(f),
            LoadError::GgufTokenizer(e) => e.fmt(f),
            LoadError::Unrecognized { first_word, llama2c } => {
                write!(f, "not a model file this engine reads: ")?;
                match first_word {
                    Some(w) => write!(f, "it starts with {w}, not llm.c's magic {}", llmc::CHECKPOINT_MAGIC)?,
                    None => write!(f, "too short for llm.c's header")?,
                }
                write!(f, ", and it is not a llama2.c checkpoint ({llama2c})")
            }
        }
    }
}

impl core::error::Error for LoadError {}

/// Loads a model from a whole file's bytes, whichever supported format it is. Never panics.
pub fn load(bytes: &[u8]) -> Result<Loaded<'_>, LoadError> {
    let first_word = bytes.get(..4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if first_word == Some(llmc::CHECKPOINT_MAGIC) {
        let (config, version) = llmc::parse_header(bytes).map_err(|e| LoadError::Llmc(e.into()))?;
        let model = llmc::load(bytes).map_err(LoadError::Llmc)?;
        return Ok(Loaded { format: Format::Llmc { version, config }, model, tokenizer: None, chat_template: None });
    }
    if bytes.starts_with(b"GGUF") {
        let g = gguf::Gguf::parse(bytes).map_err(|e| LoadError::Gguf(e.into()))?;
        let model = gguf_model::load(&g).map_err(LoadError::Gguf)?;
        let tok = crate::tokenizer::gguf::GgufTokenizer::from_gguf(&g).map_err(LoadError::GgufTokenizer)?;
        if tok.vocab_size() != model.spec().vocab_size {
            return Err(LoadError::Gguf(gguf_model::GgufModelError::BadValue {
                key: alloc::string::String::from("tokenizer.ggml.tokens"),
                problem: alloc::format!("{} tokens for a model with a vocabulary of {}", tok.vocab_size(), model.spec().vocab_size),
            }));
        }
        let chat_template = g.get_str("tokenizer.chat_template").ok();
        let tokenizer = Some(crate::tokenizer::Tokenizer::Gguf(alloc::boxed::Box::new(tok)));
        return Ok(Loaded { format: Format::Gguf { version: g.version() }, model, tokenizer, chat_template });
    }
    match llama2c::load(bytes) {
        Ok((cfg, model)) => Ok(Loaded { format: Format::Llama2c(cfg), model, tokenizer: None, chat_template: None }),
        Err(llama2c::Llama2cLoadError::File(e)) => Err(LoadError::Unrecognized { first_word, llama2c: e }),
        Err(e) => Err(LoadError::Llama2c(e)),
    }
}
