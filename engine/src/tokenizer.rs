//! Tokens <-> bytes: the byte-level vocabulary (V = 256, our models), llm.c's tokenizer
//! file (decode table for GPT-2 BPE and friends), llama2.c's SentencePiece vocabulary
//! (`spm.rs`), plus safe printing of partial UTF-8.
//!
//! llm.c's tokenizer file: uint32 header[256] = {20240328, version, vocab_size, eot (v2)},
//! then for each token a u8 length and that many bytes.

pub mod bpe;
pub mod gguf;
pub mod spm;

pub use gguf::Specials;

use crate::formats::Format;
use alloc::vec::Vec;
use core::fmt;
use spm::{SpmError, SpmTokenizer};

pub const TOKENIZER_MAGIC: u32 = 20240328;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenizerError {
    TooShort,
    BadMagic {
        found: u32,
    },
    UnsupportedVersion {
        found: u32,
    },
    BadVocab {
        found: u32,
    },
    Truncated {
        token: usize,
    },
    TrailingBytes {
        extra: usize,
    },
    EmptyToken {
        token: usize,
    },
    /// A llama2.c tokenizer.bin that does not parse.
    Spm(SpmError),
    /// The end-of-text id of a version-2 file is past the vocabulary (`vocab_size` itself
    /// means "none", as byte vocabularies write it).
    BadEot {
        eot: u32,
        vocab: u32,
    },
    /// The tokenizer's vocabulary is not the model's.
    VocabMismatch {
        tokens: usize,
        model: usize,
    },
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizerError::TooShort => write!(f, "tokenizer file is shorter than its 1024-byte header"),
            TokenizerError::BadMagic { found } => {
                write!(f, "bad tokenizer magic {found} (llm.c tokenizer files start with {TOKENIZER_MAGIC})")
            }
            TokenizerError::UnsupportedVersion { found } => {
                write!(f, "unsupported tokenizer version {found} (supported: 1, 2)")
            }
            TokenizerError::BadVocab { found } => write!(f, "bad tokenizer vocabulary size {found}"),
            TokenizerError::Truncated { token } => write!(f, "tokenizer file is truncated at token {token}"),
            TokenizerError::TrailingBytes { extra } => write!(f, "tokenizer file has {extra} unexpected trailing bytes"),
            TokenizerError::EmptyToken { token } => write!(f, "tokenizer token {token} has length 0"),
            TokenizerError::Spm(e) => e.fmt(f),
            TokenizerError::BadEot { eot, vocab } => {
                write!(f, "tokenizer end-of-text token {eot} is outside its vocabulary of {vocab} tokens")
            }
            TokenizerError::VocabMismatch { tokens, model } => {
                write!(f, "tokenizer has {tokens} tokens but the model's vocabulary is V = {model}")
            }
        }
    }
}

/// A vocabulary that can decode every token and encode text.
pub enum Tokenizer {
    /// Token i is the byte i (V = 256).
    Bytes,
    /// A decode table from an llm.c tokenizer file.
    Table(TokenTable),
    /// SentencePiece pieces and scores (llama2.c's tokenizer.bin).
    Spm(alloc::boxed::Box<SpmTokenizer>),
    /// The tokenizer stored in a GGUF file (SentencePiece or byte-level BPE).
    Gguf(alloc::boxed::Box<gguf::GgufTokenizer>),
}

pub struct TokenTable {
    /// All token bytes back to back; token i is blob[starts[i]..starts[i + 1]].
    blob: Vec<u8>,
    starts: Vec<u32>,
    pub eot: Option<u32>,
}

impl Tokenizer {
    /// Parses the tokenizer file that goes with a model of this format: llm.c's for llm.c
    /// checkpoints, llama2.c's tokenizer.bin (sized by the model's vocabulary) for llama2.c.
    pub fn for_format(format: &Format, bytes: &[u8]) -> Result<Tokenizer, TokenizerError> {
        match format {
            Format::Llmc { config, .. } => Tokenizer::from_llmc_bytes(bytes)?.for_vocab(config.vocab_size),
            Format::Llama2c(c) => SpmTokenizer::from_llama2c_bytes(bytes, c.vocab_size)
                .map(|t| Tokenizer::Spm(alloc::boxed::Box::new(t)))
                .map_err(TokenizerError::Spm),
            // A GGUF file carries its tokenizer; a separate file would be llm.c's format.
            Format::Gguf { .. } => Tokenizer::from_llmc_bytes(bytes),
        }
    }

    /// This tokenizer, if its vocabulary is exactly the model's `vocab`: more tokens could
    /// encode ids the model cannot compute, fewer leave ids the model emits unprintable.
    pub fn for_vocab(self, vocab: usize) -> Result<Tokenizer, TokenizerError> {
        if self.vocab_size() != vocab {
            return Err(TokenizerError::VocabMismatch { tokens: self.vocab_size(), model: vocab });
        }
        Ok(self)
    }

    /// Parses an llm.c tokenizer file (versions 1 and 2).
    pub fn from_llmc_bytes(bytes: &[u8]) -> Result<Tokenizer, TokenizerError> {
        if bytes.len() < 1024 {
            return Err(TokenizerError::TooShort);
        }
        let h = |i: usize| u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        if h(0) != TOKENIZER_MAGIC {
            return Err(TokenizerError::BadMagic { found: h(0) });
        }
        let version = h(1);
        if version != 1 && version != 2 {
            return Err(TokenizerError::UnsupportedVersion { found: version });
        }
        let vocab = h(2);
        if vocab == 0 || vocab > 1 << 24 {
            return Err(TokenizerError::BadVocab { found: vocab });
        }
        let eot = match (version, h(3)) {
            (2, e) if e < vocab => Some(e),
            (2, e) if e > vocab => return Err(TokenizerError::BadEot { eot: e, vocab }),
            _ => None,
        };
        let mut blob = Vec::new();
        let mut starts = Vec::with_capacity(vocab as usize + 1);
        let mut at = 1024;
        for token in 0..vocab as usize {
            starts.push(blob.len() as u32);
            let len = *bytes.get(at).ok_or(TokenizerError::Truncated { token })? as usize;
            if len == 0 {
                return Err(TokenizerError::EmptyToken { token });
            }
            let piece = bytes.get(at + 1..at + 1 + len).ok_or(TokenizerError::Truncated { token })?;
            blob.extend_from_slice(piece);
            at += 1 + len;
        }
        starts.push(blob.len() as u32);
        if at != bytes.len() {
            return Err(TokenizerError::TrailingBytes { extra: bytes.len() - at });
        }
        Ok(Tokenizer::Table(TokenTable { blob, starts, eot }))
    }

    /// Writes an llm.c version-2 tokenizer file for the byte vocabulary (so llm.c can decode
    /// our models' output); `eot` is recorded but byte models have no special token.
    pub fn byte_table_file() -> Vec<u8> {
        let mut out = Vec::with_capacity(1024 + 512);
        let header = [TOKENIZER_MAGIC, 2, 256, 256];
        for i in 0..256 {
            out.extend_from_slice(&header.get(i).copied().unwrap_or(0).to_le_bytes());
        }
        for b in 0..=255u8 {
            out.push(1);
            out.push(b);
        }
        out
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Bytes => 256,
            Tokenizer::Table(t) => t.starts.len() - 1,
            Tokenizer::Spm(t) => t.vocab_size(),
            Tokenizer::Gguf(t) => t.vocab_size(),
        }
    }

    /// The end-of-text token, if the vocabulary has one.
    pub fn eot(&self) -> Option<u32> {
        match self {
            Tokenizer::Bytes => None,
            Tokenizer::Table(t) => t.eot,
            Tokenizer::Spm(t) => t.eos(),
            Tokenizer::Gguf(t) => t.eos(),
        }
    }

    /// The id of a token given its exact bytes (special tokens included).
    pub fn token_id(&self, piece: &[u8]) -> Option<u32> {
        match self {
            Tokenizer::Bytes => (piece.len() == 1).then(|| piece[0] as u32),
            Tokenizer::Table(_) => (0..self.vocab_size() as u32).find(|&t| self.decode(t) == piece),
            Tokenizer::Spm(t) => t.id(piece),
            Tokenizer::Gguf(t) => t.token_id(piece),
        }
    }

    /// True for a token that ends generation (end-of-text).
    pub fn is_end(&self, token: u32) -> bool {
        match self {
            Tokenizer::Bytes => false,
            Tokenizer::Table(t) => Some(token) == t.eot,
            // llama2.c ends a sample at EOS, and at BOS, which starts the next one.
            Tokenizer::Spm(t) => Some(token) == t.eos() || Some(token) == t.bos(),
            Tokenizer::Gguf(t) => t.is_end(token),
        }
    }

    /// The bytes to print for `token` following `prev` (SentencePiece drops the leading
    /// space of the first piece after BOS; the other vocabularies ignore `prev`).
    pub fn decode_after(&self, prev: Option<u32>, token: u32) -> &[u8] {
        match self {
            Tokenizer::Spm(t) => t.decode(prev.unwrap_or(u32::MAX), token),
            Tokenizer::Gguf(t) => t.decode(prev, token),
            _ => self.decode(token),
        }
    }

    /// Appends the tokens of a prompt. `at_start`: the text begins the context, so a model
    /// whose tokenizer has a beginning-of-sequence token gets it first. Text is text: a
    /// control token spelled out in it (`<|im_end|>`) is encoded as its characters.
    pub fn encode_prompt(&self, text: &[u8], at_start: bool, out: &mut Vec<u32>) {
        self.encode_prompt_with(text, at_start, Specials::AsText, out)
    }

    /// The token a prompt that begins the context starts with, if any (SentencePiece's BOS;
    /// a GGUF vocabulary's when the file says to add it).
    pub fn prompt_bos(&self) -> Option<u32> {
        match self {
            Tokenizer::Spm(t) => t.bos(),
            Tokenizer::Gguf(t) => t.bos().filter(|_| t.add_bos()),
            _ => None,
        }
    }

    /// As [`encode_prompt`](Self::encode_prompt); with [`Specials::Parse`] a control token
    /// spelled out in the text becomes that token (GGUF vocabularies' control tokens, the
    /// end-of-text token of an llm.c tokenizer file): `generate --parse-special`.
    pub fn encode_prompt_with(&self, text: &[u8], at_start: bool, specials: Specials, out: &mut Vec<u32>) {
        match self {
            Tokenizer::Spm(t) => t.encode(text, at_start, out),
            Tokenizer::Gguf(t) => t.encode_prompt(text, at_start, specials, out),
            Tokenizer::Table(t) if specials == Specials::Parse && t.eot.is_some() => {
                let eot = t.eot.unwrap_or(0);
                let piece = self.decode(eot);
                let mut rest = text;
                while let Some(at) = rest.windows(piece.len()).position(|w| w == piece) {
                    self.encode(&rest[..at], out);
                    out.push(eot);
                    rest = &rest[at + piece.len()..];
                }
                self.encode(rest, out);
            }
            _ => self.encode(text, out),
        }
    }

    /// The bytes of one token (empty for an id outside the vocabulary).
    pub fn decode(&self, token: u32) -> &[u8] {
        match self {
            Tokenizer::Bytes => {
                const ALL: [u8; 256] = {
                    let mut a = [0u8; 256];
                    let mut i = 0;
                    while i < 256 {
                        a[i] = i as u8;
                        i += 1;
                    }
                    a
                };
                if token < 256 { &ALL[token as usize..token as usize + 1] } else { &[] }
            }
            Tokenizer::Table(t) => {
                let i = token as usize;
                if i + 1 < t.starts.len() { &t.blob[t.starts[i] as usize..t.starts[i + 1] as usize] } else { &[] }
            }
            Tokenizer::Spm(t) => t.decode(u32::MAX, token),
            Tokenizer::Gguf(t) => t.decode(None, token),
        }
    }

    /// Appends the tokens of `text` (no BOS; text is text, see
    /// [`encode_prompt`](Self::encode_prompt)). Bytes: exact. Table: greedy longest match,
    /// which is not GPT-2's BPE merge order (llm.c ships no encoder) but always round-trips
    /// the text; bytes no token covers are skipped. Spm: llama2.c's merges by score.
    pub fn encode(&self, text: &[u8], out: &mut Vec<u32>) {
        match self {
            Tokenizer::Bytes => out.extend(text.iter().map(|&b| b as u32)),
            Tokenizer::Spm(t) => t.encode(text, false, out),
            Tokenizer::Gguf(t) => t.encode_prompt(text, false, Specials::AsText, out),
            Tokenizer::Table(t) => {
                let mut at = 0;
                while at < text.len() {
                    let mut best: Option<(usize, u32)> = None;
                    for id in 0..t.starts.len() - 1 {
                        if Some(id as u32) == t.eot {
                            continue;
                        }
                        let piece = &t.blob[t.starts[id] as usize..t.starts[id + 1] as usize];
                        if text[at..].starts_with(piece) && best.is_none_or(|(len, _)| piece.len() > len) {
                            best = Some((piece.len(), id as u32));
                        }
                    }
                    match best {
                        Some((len, id)) => {
                            out.push(id);
                            at += len;
                        }
                        None => at += 1,
                    }
                }
            }
        }
    }
}

/// Turns a stream of bytes into printable characters. Complete UTF-8 sequences become their
/// character; invalid bytes become U+FFFD; control characters other than newline and tab are
/// dropped so they cannot garble a console. Allocation-free.
#[derive(Default)]
pub struct Utf8Printer {
    buf: [u8; 4],
    len: usize,
}

impl Utf8Printer {
    pub const fn new() -> Self {
        Utf8Printer { buf: [0; 4], len: 0 }
    }

    /// Feeds bytes, calling `emit` for each printable character completed.
    pub fn push(&mut self, bytes: &[u8], emit: &mut dyn FnMut(char)) {
        for &b in bytes {
            self.push_byte(b, emit);
        }
    }

    fn push_byte(&mut self, b: u8, emit: &mut dyn FnMut(char)) {
        if self.len > 0 {
            if b & 0xC0 == 0x80 {
                self.buf[self.len] = b;
                self.len += 1;
                let need = utf8_len(self.buf[0]);
                if self.len == need {
                    match core::str::from_utf8(&self.buf[..need]) {
                        Ok(s) => s.chars().for_each(|c| printable(c, emit)),
                        Err(_) => emit(char::REPLACEMENT_CHARACTER),
                    }
                    self.len = 0;
                }
                return;
            }
            // A sequence broken off by a non-continuation byte.
            emit(char::REPLACEMENT_CHARACTER);
            self.len = 0;
        }
        match utf8_len(b) {
            1 => printable(b as char, emit),
            0 => emit(char::REPLACEMENT_CHARACTER),
            _ => {
                self.buf[0] = b;
                self.len = 1;
            }
        }
    }

    /// Ends the stream: an unfinished sequence becomes U+FFFD.
    pub fn flush(&mut self, emit: &mut dyn FnMut(char)) {
        if self.len > 0 {
            emit(char::REPLACEMENT_CHARACTER);
            self.len = 0;
        }
    }
}

/// Length of a UTF-8 sequence from its first byte; 0 for bytes that cannot start one.
fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

fn printable(c: char, emit: &mut dyn FnMut(char)) {
    if c == '\n' || c == '\t' || !c.is_control() {
        emit(c);
    }
}

impl core::error::Error for TokenizerError {}
