//! The tokenizer stored in a GGUF file: `tokenizer.ggml.model` = `llama` (SentencePiece by
//! scores, `spm.rs`) or `gpt2` (byte-level BPE by merge rank, `bpe.rs`), with the file's
//! special tokens, BOS/EOS and end-of-generation set, as llama.cpp's `llama-vocab.cpp` reads
//! them (keys and token types from GGUF's specification, llama.cpp/ggml, MIT).
//!
//! Text is text: a control token spelled out in text (`<|im_end|>`, `<start_of_turn>`) is
//! encoded as its characters, so a user's message cannot open or close turns; only a chat
//! template puts control tokens in a prompt, by id (`crate::chat`). User-defined tokens
//! (whitespace runs, `<tool_call>`) are ordinary text that the vocabulary spells with one
//! token, so they are matched whole, as SentencePiece and llama.cpp do. `--parse-special`
//! ([`Specials::Parse`]) also matches control tokens whole, for raw prompts that carry a
//! template already. Control tokens print nothing.
//!
//! Control tokens here: the file's type 3 (control) and 2 (unknown), BOS, EOS and the end
//! tokens, and the texts of [`CONTROL_TEXTS`] (every chat template's markers) whatever type the
//! file gives them. Encoding text can never produce one: they are left out of SentencePiece's
//! and BPE's lookups and merges too.

use super::bpe::{BpeError, BpeTokenizer, PreTokenizer};
use super::spm::{SpmError, SpmTokenizer};
use crate::formats::gguf::{Gguf, GgufError};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

const TOKEN_TYPE_NORMAL: i32 = 1;
const TOKEN_TYPE_UNKNOWN: i32 = 2;
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Texts llama.cpp treats as end of generation when the vocabulary has them.
const END_TEXTS: [&str; 9] =
    ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<|end_of_text|>", "<|eom_id|>", "</s>"];

/// Control tokens whatever type the file gives them: the end texts, and the markers every chat
/// template of `crate::template` writes (a file that types `<start_of_turn>` as user-defined
/// must not let a user's text open a turn).
pub const CONTROL_TEXTS: [&str; 19] = [
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<EOT>",
    "<|end_of_text|>",
    "<|eom_id|>",
    "</s>",
    "<s>",
    "<|im_start|>",
    "<start_of_turn>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|begin_of_text|>",
    "<bos>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
];

/// Whether text that spells a control token is matched as that token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Specials {
    /// Text is text (the default everywhere): control tokens only come from a template.
    AsText,
    /// Control tokens written out in the text become those tokens (`--parse-special`).
    Parse,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GgufTokenizerError {
    File(GgufError),
    UnknownModel(String),
    Spm(SpmError),
    Bpe(BpeError),
    Mismatch {
        what: &'static str,
        found: usize,
        tokens: usize,
    },
    /// A special token id (BOS, EOS, end of turn) past the vocabulary.
    BadTokenId {
        key: &'static str,
        id: u64,
        tokens: usize,
    },
}

impl fmt::Display for GgufTokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgufTokenizerError::File(e) => write!(f, "tokenizer: {e}"),
            GgufTokenizerError::UnknownModel(m) => {
                write!(f, "tokenizer.ggml.model = '{m}' is not supported (supported: llama, gpt2)")
            }
            GgufTokenizerError::Spm(e) => e.fmt(f),
            GgufTokenizerError::Bpe(e) => e.fmt(f),
            GgufTokenizerError::Mismatch { what, found, tokens } => {
                write!(f, "tokenizer: {found} {what} for {tokens} tokens")
            }
            GgufTokenizerError::BadTokenId { key, id, tokens } => {
                write!(f, "{key} = {id} is outside the vocabulary of {tokens} tokens")
            }
        }
    }
}

impl core::error::Error for GgufTokenizerError {}

enum Kind {
    Spm(alloc::boxed::Box<SpmTokenizer>),
    Bpe(alloc::boxed::Box<BpeTokenizer>),
}

pub struct GgufTokenizer {
    kind: Kind,
    token_types: Vec<i32>,
    /// Control and user-defined tokens matched whole in text: (text, id, is control), longest
    /// first. Control ones only with [`Specials::Parse`].
    specials: Vec<(Vec<u8>, u32, bool)>,
    /// Tokens that end generation.
    end: Vec<u32>,
    bos: Option<u32>,
    add_bos: bool,
    model: &'static str,
}

/// A special token id: absent is None; present, it must name one of the `n` tokens.
fn id_key(g: &Gguf<'_>, key: &'static str, n: usize) -> Result<Option<u32>, GgufTokenizerError> {
    match g.get_usize(key) {
        Err(_) => Ok(None),
        Ok(v) if v < n => Ok(Some(v as u32)),
        Ok(v) => Err(GgufTokenizerError::BadTokenId { key, id: v as u64, tokens: n }),
    }
}

impl GgufTokenizer {
    pub fn from_gguf(g: &Gguf<'_>) -> Result<GgufTokenizer, GgufTokenizerError> {
        let model = g.get_str("tokenizer.ggml.model").map_err(GgufTokenizerError::File)?;
        let tokens_arr = g.get_array("tokenizer.ggml.tokens").map_err(GgufTokenizerError::File)?;
        let strings = tokens_arr.strings().ok_or(GgufTokenizerError::UnknownModel(String::from("(tokens are not strings)")))?;
        let tokens: Vec<Vec<u8>> = strings.map(|s| s.to_vec()).collect();
        let n = tokens.len();
        let mut token_types: Vec<i32> = match g.get_array("tokenizer.ggml.token_type") {
            Ok(a) => a.i32s().map(|it| it.collect()).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        if !token_types.is_empty() && token_types.len() != n {
            return Err(GgufTokenizerError::Mismatch { what: "token types", found: token_types.len(), tokens: n });
        }
        if token_types.is_empty() {
            token_types = alloc::vec![TOKEN_TYPE_NORMAL; n];
        }
        let bos = id_key(g, "tokenizer.ggml.bos_token_id", n)?;
        let eos = id_key(g, "tokenizer.ggml.eos_token_id", n)?;
        let (eot, eom) = (id_key(g, "tokenizer.ggml.eot_token_id", n)?, id_key(g, "tokenizer.ggml.eom_token_id", n)?);
        // The control tokens (see the module's text), fixed before the vocabularies are built
        // so that their lookups and merges leave them out.
        for (i, t) in tokens.iter().enumerate() {
            if CONTROL_TEXTS.iter().any(|e| e.as_bytes() == t.as_slice()) {
                token_types[i] = TOKEN_TYPE_CONTROL;
            }
        }
        for id in [bos, eos, eot, eom].into_iter().flatten() {
            token_types[id as usize] = TOKEN_TYPE_CONTROL;
        }
        let control = |t: i32| t == TOKEN_TYPE_CONTROL || t == TOKEN_TYPE_UNKNOWN;
        let (kind, model_name, default_bos) = match model {
            "llama" => {
                let scores: Vec<f32> = match g.get_array("tokenizer.ggml.scores") {
                    Ok(a) => a.f32s().map(|it| it.collect()).unwrap_or_default(),
                    Err(_) => alloc::vec![0.0; n],
                };
                if scores.len() != n {
                    return Err(GgufTokenizerError::Mismatch { what: "scores", found: scores.len(), tokens: n });
                }
                let prefix = g.get_bool("tokenizer.ggml.add_space_prefix").unwrap_or(true);
                let mut spm = SpmTokenizer::new(tokens.clone(), scores, bos, eos, prefix, true).map_err(GgufTokenizerError::Spm)?;
                spm.exclude_from_encoding(&token_types.iter().map(|&t| control(t)).collect::<Vec<bool>>());
                // A byte with no piece (no byte fallback) becomes the file's unknown token, as
                // in llama.cpp, unless that is a control token (an end of text, a marker).
                let unk = id_key(g, "tokenizer.ggml.unknown_token_id", n)?
                    .or_else(|| token_types.iter().position(|&t| t == TOKEN_TYPE_UNKNOWN).map(|i| i as u32));
                spm.set_unknown(unk.filter(|&u| token_types[u as usize] != TOKEN_TYPE_CONTROL));
                (Kind::Spm(alloc::boxed::Box::new(spm)), "SentencePiece (llama)", true)
            }
            "gpt2" => {
                let pre_name = g.get_str("tokenizer.ggml.pre").unwrap_or("default");
                let pre = PreTokenizer::from_gguf_name(pre_name).map_err(GgufTokenizerError::Bpe)?;
                let merges = g.get_array("tokenizer.ggml.merges").map_err(GgufTokenizerError::File)?;
                let merges = merges.strings().ok_or(GgufTokenizerError::UnknownModel(String::from("(merges are not strings)")))?;
                let bpe = BpeTokenizer::new(tokens.clone(), merges, &token_types, pre, bos, eos, false).map_err(GgufTokenizerError::Bpe)?;
                (Kind::Bpe(alloc::boxed::Box::new(bpe)), "byte-level BPE (gpt2)", false)
            }
            other => return Err(GgufTokenizerError::UnknownModel(String::from(other))),
        };
        let add_bos = g.get_bool("tokenizer.ggml.add_bos_token").unwrap_or(default_bos) && bos.is_some();
        let mut specials: Vec<(Vec<u8>, u32, bool)> = token_types
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == TOKEN_TYPE_CONTROL || **t == TOKEN_TYPE_USER_DEFINED)
            .filter(|(i, _)| !tokens[*i].is_empty())
            .map(|(i, t)| (tokens[i].clone(), i as u32, control(*t)))
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let mut end: Vec<u32> = Vec::new();
        for id in [eos, eot, eom].into_iter().flatten() {
            if !end.contains(&id) {
                end.push(id);
            }
        }
        for text in END_TEXTS {
            if let Some((i, _)) = tokens.iter().enumerate().find(|(_, t)| t.as_slice() == text.as_bytes())
                && !end.contains(&(i as u32))
            {
                end.push(i as u32);
            }
        }
        Ok(GgufTokenizer { kind, token_types, specials, end, bos, add_bos, model: model_name })
    }

    pub fn describe(&self) -> &'static str {
        self.model
    }

    pub fn vocab_size(&self) -> usize {
        match &self.kind {
            Kind::Spm(t) => t.vocab_size(),
            Kind::Bpe(t) => t.vocab_size(),
        }
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.end.first().copied()
    }

    pub fn is_end(&self, token: u32) -> bool {
        self.end.contains(&token)
    }

    /// The tokens that end generation.
    pub fn end_tokens(&self) -> &[u32] {
        &self.end
    }

    fn is_control(&self, token: u32) -> bool {
        self.token_types.get(token as usize) == Some(&TOKEN_TYPE_CONTROL)
    }

    pub fn token_id(&self, piece: &[u8]) -> Option<u32> {
        if let Some((_, id, _)) = self.specials.iter().find(|(t, _, _)| t == piece) {
            return Some(*id);
        }
        match &self.kind {
            Kind::Spm(t) => t.id(piece),
            Kind::Bpe(t) => t.token_id(piece),
        }
    }

    /// The bytes `token` prints after `prev` (control tokens print nothing).
    pub fn decode(&self, prev: Option<u32>, token: u32) -> &[u8] {
        if self.is_control(token) {
            return &[];
        }
        match &self.kind {
            Kind::Spm(t) => t.decode(prev.unwrap_or(u32::MAX), token),
            Kind::Bpe(t) => t.decode(token),
        }
    }

    /// Appends the tokens of `text`: BOS first when `at_start` and the model adds one.
    /// User-defined tokens written out in the text are matched whole, control tokens only
    /// with [`Specials::Parse`].
    pub fn encode_prompt(&self, text: &[u8], at_start: bool, specials: Specials, out: &mut Vec<u32>) {
        if at_start && self.add_bos {
            out.extend(self.bos);
        }
        let mut rest = text;
        // At each step, the earliest special token (longest on a tie) splits the text.
        while !rest.is_empty() {
            let mut best: Option<(usize, usize, u32)> = None;
            for (t, id, control) in &self.specials {
                if *control && specials == Specials::AsText {
                    continue;
                }
                if let Some(at) = find(rest, t)
                    && best.is_none_or(|(b, len, _)| at < b || (at == b && t.len() > len))
                {
                    best = Some((at, t.len(), *id));
                }
            }
            match best {
                Some((at, len, id)) => {
                    self.encode_plain(&rest[..at], out);
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_plain(rest, out);
                    break;
                }
            }
        }
    }

    fn encode_plain(&self, text: &[u8], out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        match &self.kind {
            Kind::Spm(t) => t.encode(text, false, out),
            Kind::Bpe(t) => t.encode(text, out),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
