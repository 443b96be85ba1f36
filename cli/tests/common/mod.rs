//! Helpers for the end-to-end tests: images, QEMU boots, transcripts, host runs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llm-baremetal"))
}

/// The UEFI app built by `make efi`. Missing is a failure, not a skip.
pub fn efi() -> PathBuf {
    let p = std::env::var_os("LLM_BAREMETAL_EFI").map(PathBuf::from).unwrap_or_else(|| root().join("build/BOOTX64.EFI"));
    assert!(p.is_file(), "{} not found: build the UEFI app with `make efi` (or run `make test`)", p.display());
    p
}

pub fn default_model() -> PathBuf {
    let p = root().join("models/shakespeare/model.bin");
    assert!(p.is_file(), "{} missing", p.display());
    p
}

/// Writes an image with the given model (if any) and config text.
pub fn image(dir: &Path, name: &str, model: Option<&Path>, config: Option<&str>, unchecked: bool) -> PathBuf {
    let img = dir.join(format!("{name}.img"));
    let mut c = cli();
    c.arg("image").arg("--efi").arg(efi()).arg("--out").arg(&img);
    if let Some(m) = model {
        c.arg("--model").arg(m);
    }
    if let Some(text) = config {
        let cfg = dir.join(format!("{name}.cfg"));
        std::fs::write(&cfg, text).unwrap();
        c.arg("--config").arg(cfg);
    }
    if unchecked {
        c.arg("--unchecked");
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "image failed: {}", String::from_utf8_lossy(&out.stderr));
    img
}

pub struct Boot {
    pub code: Option<i32>,
    /// The serial transcript without terminal escape sequences and carriage returns.
    pub log: String,
}

/// Boots an image in QEMU (host-side timeout) and returns the exit code and transcript.
pub fn boot(img: &Path, extra: &[&str], timeout_s: u64) -> Boot {
    let log = img.with_extension("log");
    let out = cli()
        .arg("boot")
        .arg(img)
        .args(["--timeout", &timeout_s.to_string(), "--log"])
        .arg(&log)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let raw = std::fs::read(&log).unwrap_or_default();
    Boot { code: out.status.code(), log: clean(&String::from_utf8_lossy(&raw)) }
}

/// Removes ANSI/VT100 escape sequences (OVMF's serial terminal emits them) and '\r'.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\x1b' => {
                if it.peek() == Some(&'[') {
                    it.next();
                    // parameters, then one final byte in @..~
                    for d in it.by_ref() {
                        if ('@'..='~').contains(&d) {
                            break;
                        }
                    }
                } else {
                    it.next();
                }
            }
            '\r' => {}
            _ => out.push(c),
        }
    }
    out
}

/// The reply printed after "> {prompt}" (up to the stats line), without the final newline.
pub fn reply_after(log: &str, prompt: &str, nth: usize) -> String {
    let marker = format!("> {prompt}\n");
    let mut at = 0;
    for _ in 0..=nth {
        let i = log[at..].find(&marker).unwrap_or_else(|| panic!("no prompt {prompt:?} in transcript:\n{log}"));
        at += i + marker.len();
    }
    let rest = &log[at..];
    let end = rest.find("\n[").unwrap_or_else(|| panic!("no stats line after {prompt:?}:\n{log}"));
    rest[..end].to_string()
}

/// `llm-baremetal generate` on the host: its stdout.
pub fn host_generate(model: &Path, args: &[&str]) -> String {
    let out = cli().arg("generate").arg(model).args(args).output().unwrap();
    assert!(out.status.success(), "generate failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The SentencePiece tokenizer fixture (2000 tokens, llama2.c layout; see its README).
pub fn spm_tokenizer() -> PathBuf {
    root().join("engine/tests/fixtures/spm/tokenizer.bin")
}

/// A random llama2.c checkpoint (GQA, separate classifier) for the fixture tokenizer's
/// 2000-token vocabulary, written to `dir/name`.
pub fn llama2c_model(dir: &Path, name: &str) -> PathBuf {
    let shape = llm_testkit::llama::LlamaShape {
        dim: 64,
        hidden_dim: 172,
        n_layers: 2,
        n_heads: 8,
        n_kv_heads: 4,
        vocab_size: 2000,
        seq_len: 96,
        shared_classifier: false,
    };
    let p = dir.join(name);
    std::fs::write(&p, llm_testkit::llama::random_llama2c(&shape, 7, 0.4)).unwrap();
    p
}

/// A real model fetched by `make models` (scripts/fetch-models.sh). Missing is a failure.
pub fn real_model(file: &str) -> PathBuf {
    let p = root().join("models").join(file);
    assert!(p.is_file(), "{} missing: run `make models` (scripts/fetch-models.sh)", p.display());
    p
}

pub const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";
pub const QWEN: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// A chat front end that keeps what the driver says: reply bytes, lines and notices.
#[derive(Default)]
pub struct Recorder {
    pub out: Vec<u8>,
    pub lines: Vec<String>,
    pub notices: Vec<String>,
}

impl llm_engine::chat::ChatIo for Recorder {
    fn reply_bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
    fn reply_end(&mut self) {}
    fn line(&mut self, text: &str) {
        self.lines.push(text.to_string());
    }
    fn notice(&mut self, text: &str) {
        self.notices.push(text.to_string());
    }
    fn cancel_requested(&mut self) -> bool {
        false
    }
    fn now(&self) -> f64 {
        0.0
    }
}

/// One core, for the chat driver.
pub struct One;

impl llm_engine::Parallel for One {
    fn workers(&self) -> usize {
        1
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        llm_engine::Serial.run(tasks, f)
    }
}

impl llm_engine::chat::Cores for One {
    fn set_active(&mut self, _: usize) -> usize {
        1
    }
}
