//! The boot configuration file (`\llm.cfg`): `key = value` lines; `#` starts a comment
//! (whole lines, or the rest of a line except in `prompt` values).
//!
//! Keys: model, temperature, top_k, top_p, min_p, repeat_penalty, seed, max_tokens,
//! cores (default: all), template (auto or a name), system (verbatim), context (positions),
//! kernels (auto, or a kernel set's registry name such as `sse2`: to reproduce a run),
//! stop_at_blank_line (true/false), and `prompt` (repeatable): prompts run in order without a keyboard, after which the
//! machine powers off. A prompt may also be a slash command (for example `/reset`).

use crate::chat::ChatSettings;
use crate::template::Template;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct BootConfig {
    pub model_path: String,
    pub chat: ChatSettings,
    pub script: Vec<String>,
    /// "auto" (from the model file), or a template name (`Template::from_name`).
    pub template: String,
    /// A system message for templates that have one.
    pub system: Option<String>,
    /// Positions of context to allocate (None: the model's, at most `DEFAULT_MAX_CONTEXT`).
    pub context: Option<usize>,
    /// "auto" (the fastest set the CPU runs), or a kernel set's registry name
    /// (`kernels::registry`); whether the CPU runs it is the app's to check.
    pub kernels: String,
}

impl Default for BootConfig {
    fn default() -> Self {
        // cores = 0: every core the firmware reports (the app clamps it).
        let chat = ChatSettings { cores: 0, ..ChatSettings::default() };
        BootConfig {
            model_path: String::from("\\model.bin"),
            chat,
            script: Vec::new(),
            template: String::from("auto"),
            system: None,
            context: None,
            kernels: String::from("auto"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl BootConfig {
    pub fn parse(text: &str) -> Result<BootConfig, ConfigError> {
        let mut cfg = BootConfig::default();
        // Editors such as Notepad start UTF-8 files with a byte order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |message: String| ConfigError { line: line_no, message };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(err(alloc::format!("expected 'key = value', found '{}'", Quote(line))));
            };
            let key = key.trim();
            let qkey = Quote(key);
            // `#` starts a comment, except in prompts, which are taken verbatim.
            let value = if key == "prompt" || key == "system" { value } else { value.split('#').next().unwrap_or("") };
            let value = value.trim();
            let qvalue = Quote(value);
            let num = |what: &str| -> Result<f32, ConfigError> {
                value.parse::<f32>().ok().filter(|x| x.is_finite()).ok_or_else(|| err(alloc::format!("{key}: '{qvalue}' is not {what}")))
            };
            let int = || -> Result<u64, ConfigError> {
                value.parse::<u64>().map_err(|_| err(alloc::format!("{key}: '{qvalue}' is not a whole number")))
            };
            let s = &mut cfg.chat.sampler;
            match key {
                "model" if value.is_empty() => {
                    return Err(err(String::from("model: the path is empty (for example: model = \\model.bin)")));
                }
                "model" => cfg.model_path = value.to_string(),
                "temperature" => s.temperature = num("a number")?,
                "top_k" => s.top_k = int()? as usize,
                "top_p" => s.top_p = num("a number")?,
                "min_p" => s.min_p = num("a number")?,
                "repeat_penalty" => s.repeat_penalty = num("a number")?,
                "seed" => cfg.chat.seed = int()?,
                // The same rule as `/max`: at least one token.
                "max_tokens" => match int()? {
                    0 => return Err(err(alloc::format!("{key}: '{qvalue}' is not a whole number >= 1"))),
                    n => cfg.chat.max_tokens = n as usize,
                },
                "cores" => cfg.chat.cores = int()?.max(1) as usize,
                "prompt" => cfg.script.push(value.to_string()),
                "system" => cfg.system = Some(value.to_string()),
                "context" => cfg.context = Some(int()?.max(1) as usize),
                "template" => {
                    if value != "auto" && Template::from_name(value).is_none() {
                        return Err(err(alloc::format!("template: '{qvalue}' is not one of {}", Template::NAMES)));
                    }
                    cfg.template = value.to_string();
                }
                "kernels" => {
                    if value != "auto" && !crate::kernels::registry().any(|k| k.name == value) {
                        let names: Vec<&str> = crate::kernels::registry().map(|k| k.name).collect();
                        return Err(err(alloc::format!("kernels: '{qvalue}' is not auto or one of {}", names.join(", "))));
                    }
                    cfg.kernels = value.to_string();
                }
                "stop_at_blank_line" => {
                    cfg.chat.stop_at_blank_line = match value {
                        "true" | "yes" | "1" => true,
                        "false" | "no" | "0" => false,
                        _ => return Err(err(alloc::format!("{key}: '{qvalue}' is not true or false"))),
                    }
                }
                _ => return Err(err(alloc::format!("unknown key '{qkey}'"))),
            }
            if let Err(e) = cfg.chat.sampler.validate() {
                return Err(err(alloc::format!("{key}: {e}")));
            }
        }
        Ok(cfg)
    }
}

impl core::error::Error for ConfigError {}

/// The most characters of the input an error line quotes.
const QUOTE_CHARS: usize = 80;

/// Input quoted in an error: at most [`QUOTE_CHARS`] characters, then "..." (cut on a
/// character boundary; ASCII, which every firmware console can show), so a runaway line cannot
/// flood the screen.
struct Quote<'a>(&'a str);

impl fmt::Display for Quote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(QUOTE_CHARS) {
            None => f.write_str(self.0),
            Some((cut, _)) => write!(f, "{}...", &self.0[..cut]),
        }
    }
}
