//! Chat templates: how a conversation turn is written for an instruction-tuned model.
//!
//! GGUF files carry their template as a Jinja program (`tokenizer.chat_template`). We do not
//! run Jinja: we recognise the template kind from the text and write turns in that kind's fixed
//! layout (as llama.cpp's `llama-chat.cpp` does for its built-in templates). A base model (no
//! template) keeps the continuation mode: the user's line plus a newline.
//!
//! | kind | a user turn, then the start of the model's reply | end of the model's turn |
//! |---|---|---|
//! | ChatML (Qwen) | `<\|im_start\|>user\n{msg}<\|im_end\|>\n<\|im_start\|>assistant\n` | `<\|im_end\|>` |
//! | Gemma | `<start_of_turn>user\n{msg}<end_of_turn>\n<start_of_turn>model\n` | `<end_of_turn>` |
//! | Llama 3 | `<\|start_header_id\|>user<\|end_header_id\|>\n\n{msg}<\|eot_id\|><\|start_header_id\|>assistant<\|end_header_id\|>\n\n` | `<\|eot_id\|>` |
//! | Llama 2 | `[INST] {msg} [/INST]` | `</s>` |
//! | Phi-3 | `<\|user\|>\n{msg}<\|end\|>\n<\|assistant\|>\n` | `<\|end\|>` |

use crate::tokenizer::Tokenizer;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// No template: continuation of the user's text (base models, our GPT-2s).
    Raw,
    ChatMl,
    Gemma,
    Llama3,
    Llama2,
    Phi3,
}

/// Qwen2's templates add this system message when the conversation has none.
const QWEN_DEFAULT_SYSTEM: &str = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

impl Template {
    pub const NAMES: &'static str = "auto, raw, chatml, gemma, llama3, llama2, phi3";

    /// The kind of a GGUF `tokenizer.chat_template` (None or unrecognised: Raw).
    pub fn detect(chat_template: Option<&str>) -> Template {
        let Some(t) = chat_template else { return Template::Raw };
        if t.contains("<|im_start|>") {
            Template::ChatMl
        } else if t.contains("<start_of_turn>") {
            Template::Gemma
        } else if t.contains("<|start_header_id|>") {
            Template::Llama3
        } else if t.contains("<|assistant|>") && t.contains("<|end|>") {
            Template::Phi3
        } else if t.contains("[INST]") {
            Template::Llama2
        } else {
            Template::Raw
        }
    }

    /// A template chosen by name (`--template`, `template =`); "auto" is handled by the caller.
    pub fn from_name(name: &str) -> Option<Template> {
        Some(match name {
            "raw" | "none" => Template::Raw,
            "chatml" | "qwen" => Template::ChatMl,
            "gemma" => Template::Gemma,
            "llama3" => Template::Llama3,
            "llama2" => Template::Llama2,
            "phi3" => Template::Phi3,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Template::Raw => "raw",
            Template::ChatMl => "chatml",
            Template::Gemma => "gemma",
            Template::Llama3 => "llama3",
            Template::Llama2 => "llama2",
            Template::Phi3 => "phi3",
        }
    }

    /// The system message a template adds on its own when none is given (Qwen2's).
    pub fn default_system(chat_template: Option<&str>) -> Option<&'static str> {
        chat_template.filter(|t| t.contains(QWEN_DEFAULT_SYSTEM)).map(|_| QWEN_DEFAULT_SYSTEM)
    }

    /// The piece that ends the model's turn (a special token of the vocabulary).
    pub fn end_of_turn(self) -> Option<&'static str> {
        match self {
            Template::Raw => None,
            Template::ChatMl => Some("<|im_end|>"),
            Template::Gemma => Some("<end_of_turn>"),
            Template::Llama3 => Some("<|eot_id|>"),
            Template::Llama2 => Some("</s>"),
            Template::Phi3 => Some("<|end|>"),
        }
    }

    /// The control tokens this template writes (each must be in the vocabulary).
    pub fn control_pieces(self) -> &'static [&'static str] {
        match self {
            Template::Raw | Template::Llama2 => &[],
            Template::ChatMl => &["<|im_start|>", "<|im_end|>"],
            Template::Gemma => &["<start_of_turn>", "<end_of_turn>"],
            Template::Llama3 => &["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
            Template::Phi3 => &["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
        }
    }

    /// Appends the pieces of one user turn and the opening of the model's reply: the messages
    /// as [`Piece::Text`], the template's markers as [`Piece::Control`]. `first`: the
    /// conversation's first turn (it carries the system message). After a reply the model's
    /// end-of-turn token is already in the context; the newline that follows it in the
    /// template is written here, before the next turn.
    pub fn user_turn<'a>(self, system: Option<&'a str>, msg: &'a str, first: bool, out: &mut Vec<Piece<'a>>) {
        use Piece::{Control as C, Text as T};
        let system = system.filter(|_| first);
        match self {
            Template::Raw => out.extend([T(msg), T("\n")]),
            Template::ChatMl => {
                if !first {
                    out.push(T("\n"));
                }
                if let Some(s) = system {
                    out.extend([C("<|im_start|>"), T("system\n"), T(s), C("<|im_end|>"), T("\n")]);
                }
                out.extend([C("<|im_start|>"), T("user\n"), T(msg), C("<|im_end|>"), T("\n"), C("<|im_start|>"), T("assistant\n")]);
            }
            Template::Gemma => {
                if !first {
                    out.push(T("\n"));
                }
                out.extend([C("<start_of_turn>"), T("user\n")]);
                // Gemma has no system role: its template prepends the system text to the
                // first user message.
                if let Some(s) = system {
                    out.extend([T(s), T("\n\n")]);
                }
                out.extend([T(msg), C("<end_of_turn>"), T("\n"), C("<start_of_turn>"), T("model\n")]);
            }
            Template::Llama3 => {
                if let Some(s) = system {
                    out.extend([C("<|start_header_id|>"), T("system"), C("<|end_header_id|>"), T("\n\n"), T(s), C("<|eot_id|>")]);
                }
                out.extend([C("<|start_header_id|>"), T("user"), C("<|end_header_id|>"), T("\n\n"), T(msg), C("<|eot_id|>")]);
                out.extend([C("<|start_header_id|>"), T("assistant"), C("<|end_header_id|>"), T("\n\n")]);
            }
            Template::Phi3 => {
                if !first {
                    out.push(T("\n"));
                }
                if let Some(s) = system {
                    out.extend([C("<|system|>"), T("\n"), T(s), C("<|end|>"), T("\n")]);
                }
                out.extend([C("<|user|>"), T("\n"), T(msg), C("<|end|>"), T("\n"), C("<|assistant|>"), T("\n")]);
            }
            Template::Llama2 => {
                out.push(T("[INST] "));
                if let Some(s) = system {
                    out.extend([T("<<SYS>>\n"), T(s), T("\n<</SYS>>\n\n")]);
                }
                out.extend([T(msg), T(" [/INST]")]);
            }
        }
    }
}

/// A piece of a templated turn: text (a message, or the template's own words such as
/// `user\n`) is encoded as text; a control piece is the vocabulary's token of that name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Control(&'static str),
}

impl Piece<'_> {
    /// The piece as the template's text shows it.
    pub fn as_str(&self) -> &str {
        match self {
            Piece::Text(t) => t,
            Piece::Control(c) => c,
        }
    }
}

/// A template's control token that the vocabulary does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingToken {
    pub template: Template,
    pub piece: &'static str,
}

impl fmt::Display for MissingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} template needs the token {}, which this model's vocabulary does not have", self.template.name(), self.piece)
    }
}

impl core::error::Error for MissingToken {}

impl Template {
    /// Checks that the vocabulary has every control token of this template.
    pub fn check(self, tokenizer: &Tokenizer) -> Result<(), MissingToken> {
        match self.control_pieces().iter().find(|p| tokenizer.token_id(p.as_bytes()).is_none()) {
            Some(piece) => Err(MissingToken { template: self, piece }),
            None => Ok(()),
        }
    }

    /// Appends the tokens of this template's pieces: BOS first when `at_start` and the model
    /// adds one, each run of text pieces encoded together as text (a control token spelled
    /// out in a message stays characters), each control piece as its token.
    pub fn encode(self, tokenizer: &Tokenizer, pieces: &[Piece<'_>], at_start: bool, out: &mut Vec<u32>) -> Result<(), MissingToken> {
        if at_start {
            out.extend(tokenizer.prompt_bos());
        }
        let mut run = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => run.push_str(t),
                Piece::Control(c) => {
                    tokenizer.encode(run.as_bytes(), out);
                    run.clear();
                    let id = tokenizer.token_id(c.as_bytes()).ok_or(MissingToken { template: self, piece: c })?;
                    out.push(id);
                }
            }
        }
        tokenizer.encode(run.as_bytes(), out);
        Ok(())
    }
}

/// The text of templated pieces, as the template's Jinja program would print it.
pub fn pieces_text(pieces: &[Piece<'_>]) -> String {
    pieces.iter().map(Piece::as_str).collect()
}
