//! Loading a model file, whichever format it is: [`load`] tells the formats apart by content
//! (llm.c and GGUF files start with a magic number; llama2.c files have none and must be
//! exactly the size their header predicts), reads the container (`formats/`), builds a GGUF
//! file's architecture (`arch/`) and its tokenizer, and checks that they agree.

use crate::arch::GgufModelError;
use crate::formats::{Format, gguf, llama2c, llmc};
use crate::model::Model;
use core::fmt;

/// A model, with the tokenizer and chat template its file carries.
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
    Gguf(GgufModelError),
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
        let model = crate::arch::load(&g).map_err(LoadError::Gguf)?;
        let tok = crate::tokenizer::gguf::GgufTokenizer::from_gguf(&g).map_err(LoadError::GgufTokenizer)?;
        if tok.vocab_size() != model.spec().vocab_size {
            return Err(LoadError::Gguf(GgufModelError::BadValue {
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
