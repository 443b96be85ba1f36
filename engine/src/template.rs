//! Chat templates: how a conversation turn is written for an instruction-tuned model.
//!
//! GGUF files carry their template as a Jinja program (`tokenizer.chat_template`). We do not
//! run Jinja: we recognise the family from the text and write turns in that family's fixed
//! layout (as llama.cpp's `llama-chat.cpp` does for its built-in templates). A base model (no
//! template) keeps the continuation mode: the user's line plus a newline.
//!
//! | family | a user turn, then the start of the model's reply | end of the model's turn |
//! |---|---|---|
//! | ChatML (Qwen) | `<\|im_start\|>user\n{msg}<\|im_end\|>\n<\|im_start\|>assistant\n` | `<\|im_end\|>` |
//! | Gemma | `<start_of_turn>user\n{msg}<end_of_turn>\n<start_of_turn>model\n` | `<end_of_turn>` |
//! | Llama 3 | `<\|start_header_id\|>user<\|end_header_id\|>\n\n{msg}<\|eot_id\|><\|start_header_id\|>assistant<\|end_header_id\|>\n\n` | `<\|eot_id\|>` |
//! | Llama 2 | `[INST] {msg} [/INST]` | `</s>` |

use alloc::string::String;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// No template: continuation of the user's text (base models, our GPT-2s).
    Raw,
    ChatMl,
    Gemma,
    Llama3,
    Llama2,
}

/// Qwen2's templates add this system message when the conversation has none.
const QWEN_DEFAULT_SYSTEM: &str = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

impl Template {
    pub const NAMES: &'static str = "auto, raw, chatml, gemma, llama3, llama2";

    /// The family of a GGUF `tokenizer.chat_template` (None or unrecognised: Raw).
    pub fn detect(chat_template: Option<&str>) -> Template {
        let Some(t) = chat_template else { return Template::Raw };
        if t.contains("<|im_start|>") {
            Template::ChatMl
        } else if t.contains("<start_of_turn>") {
            Template::Gemma
        } else if t.contains("<|start_header_id|>") {
            Template::Llama3
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
        }
    }

    /// Appends the text of one user turn and the opening of the model's reply. `first`: the
    /// conversation's first turn (it carries the system message). After a reply the model's
    /// end-of-turn token is already in the context; the newline that follows it in the
    /// template is written here, before the next turn.
    pub fn user_turn(self, system: Option<&str>, msg: &str, first: bool, out: &mut String) {
        match self {
            Template::Raw => {
                out.push_str(msg);
                out.push('\n');
            }
            Template::ChatMl => {
                if !first {
                    out.push('\n');
                }
                if let (true, Some(s)) = (first, system) {
                    out.push_str("<|im_start|>system\n");
                    out.push_str(s);
                    out.push_str("<|im_end|>\n");
                }
                out.push_str("<|im_start|>user\n");
                out.push_str(msg);
                out.push_str("<|im_end|>\n<|im_start|>assistant\n");
            }
            Template::Gemma => {
                if !first {
                    out.push('\n');
                }
                out.push_str("<start_of_turn>user\n");
                // Gemma has no system role: its template prepends the system text to the
                // first user message.
                if let (true, Some(s)) = (first, system) {
                    out.push_str(s);
                    out.push_str("\n\n");
                }
                out.push_str(msg);
                out.push_str("<end_of_turn>\n<start_of_turn>model\n");
            }
            Template::Llama3 => {
                if let (true, Some(s)) = (first, system) {
                    out.push_str("<|start_header_id|>system<|end_header_id|>\n\n");
                    out.push_str(s);
                    out.push_str("<|eot_id|>");
                }
                out.push_str("<|start_header_id|>user<|end_header_id|>\n\n");
                out.push_str(msg);
                out.push_str("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
            }
            Template::Llama2 => {
                out.push_str("[INST] ");
                if let (true, Some(s)) = (first, system) {
                    out.push_str("<<SYS>>\n");
                    out.push_str(s);
                    out.push_str("\n<</SYS>>\n\n");
                }
                out.push_str(msg);
                out.push_str(" [/INST]");
            }
        }
    }
}
