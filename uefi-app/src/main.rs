//! llm-baremetal as a UEFI application: boots, loads a GPT checkpoint from the boot volume
//! (or the one built into this binary), and chats on the firmware console with no OS.
//!
//! The model, sampler, tokenizer and chat commands are the `llm-engine` crate, unchanged:
//! the same checkpoint, prompt, settings and seed print the same text as
//! `llm-baremetal generate` on the host.
#![no_std]
#![no_main]

extern crate alloc;

mod console;
mod cpu;
mod files;
mod mp;

use alloc::string::String;
use console::Console;
use cpu::{Clock, CpuInfo};
use llm_engine::chat::{self, Action, ChatSettings, Line};
use llm_engine::config::BootConfig;
use llm_engine::{KernelSet, Model, Parallel, RunState, Session, Tokenizer};
use uefi::boot::{self, MemoryType};
use uefi::mem::memory_map::MemoryMap;
use uefi::prelude::*;

const CONFIG_PATH: &str = "\\llm.cfg";
const DEFAULT_MODEL_PATH: &str = "\\model.bin";
const TOKENIZER_PATH: &str = "\\tokenizer.bin";
/// Printed when a scripted session has run every prompt: tests look for it.
const SCRIPT_DONE: &str = "[llm-baremetal: script done]";

#[cfg(embedded_model)]
mod embedded {
    #[repr(C, align(64))]
    struct Aligned<T: ?Sized>(T);
    static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/embedded_model.bin")));
    pub fn model() -> Option<&'static [u8]> {
        Some(&MODEL.0)
    }
}
#[cfg(not(embedded_model))]
mod embedded {
    pub fn model() -> Option<&'static [u8]> {
        None
    }
}

/// Prints the problem and powers off cleanly (never a hang or a reboot loop).
fn fatal(info: &CpuInfo, msg: &str) -> ! {
    sayln!("\nerror: {msg}");
    sayln!("powering off.");
    cpu::power_off(false, info)
}

/// Free conventional memory in bytes, from the memory map.
fn free_memory() -> u64 {
    boot::memory_map(MemoryType::LOADER_DATA)
        .map(|m| m.entries().filter(|e| e.ty == MemoryType::CONVENTIONAL).map(|e| e.page_count * 4096).sum())
        .unwrap_or(0)
}

fn load_config(info: &CpuInfo) -> BootConfig {
    match files::read_small(CONFIG_PATH) {
        Ok(bytes) => {
            let Ok(text) = core::str::from_utf8(&bytes) else {
                fatal(info, &alloc::format!("{CONFIG_PATH} is not UTF-8 text"));
            };
            match BootConfig::parse(text) {
                Ok(c) => {
                    sayln!("config      {CONFIG_PATH}: {} scripted prompt(s)", c.script.len());
                    c
                }
                Err(e) => fatal(info, &alloc::format!("{CONFIG_PATH} {e}")),
            }
        }
        Err(files::FileError::NotFound) => {
            sayln!("config      none ({CONFIG_PATH} not found): defaults");
            BootConfig::default()
        }
        Err(e) => fatal(info, &alloc::format!("cannot read {CONFIG_PATH}: {}", e.describe())),
    }
}

fn load_model_bytes(info: &CpuInfo, path: &str) -> &'static [u8] {
    match files::read_pages(path) {
        Ok(buf) => {
            sayln!("model       {path} ({} bytes)", buf.bytes().len());
            buf.bytes()
        }
        Err(files::FileError::NotFound) if path == DEFAULT_MODEL_PATH && embedded::model().is_some() => {
            let m = embedded::model().unwrap();
            sayln!("model       built into this binary ({} bytes; no {path} on the boot volume)", m.len());
            m
        }
        Err(e) => fatal(info, &alloc::format!("cannot load the model {path}: {}", e.describe())),
    }
}

#[entry]
fn main() -> Status {
    let _ = uefi::helpers::init();
    // The boot manager's 5-minute watchdog would reset us mid-conversation.
    let _ = boot::set_watchdog_timer(0, 0x10000, None);
    let info = CpuInfo::read();
    let avx_enabled = cpu::enable_avx(&info);
    let kernels = KernelSet::detect();
    let clock = Clock::calibrate();

    // A clean screen (the firmware logo would sit under the text).
    uefi::system::with_stdout(|out| {
        let _ = out.clear();
    });
    sayln!("llm-baremetal {} - a GPT with no operating system", env!("CARGO_PKG_VERSION"));
    sayln!(
        "cpu         {}, TSC {:.2} GHz{}",
        core::str::from_utf8(&info.vendor).unwrap_or("?"),
        clock.ghz(),
        match &info.hypervisor {
            Some(h) => alloc::format!(", hypervisor {}", core::str::from_utf8(h).unwrap_or("?").trim_end_matches('\0')),
            None => String::new(),
        }
    );
    sayln!(
        "features    SSE2 {}, AVX2 {}, FMA {}; AVX state {}",
        yes(info.sse2),
        yes(info.avx2),
        yes(info.fma),
        if avx_enabled { "enabled" } else { "unavailable" }
    );
    sayln!("kernels     {}", kernels.name());
    sayln!("memory      {} MiB free", free_memory() >> 20);

    let cfg = load_config(&info);
    let bytes = load_model_bytes(&info, &cfg.model_path);
    let model = match Model::from_bytes(bytes) {
        Ok(m) => m,
        Err(e) => fatal(&info, &alloc::format!("{} is not a usable checkpoint: {e}", cfg.model_path)),
    };
    let c = model.config;
    let need = RunState::bytes_needed(&c) as u64;
    let free = free_memory();
    if need + (1 << 20) > free {
        fatal(&info, &alloc::format!("the model needs {} MiB of working memory but only {} MiB are free", need >> 20, free >> 20));
    }
    sayln!(
        "shape       L={} NH={} C={} maxT={} V={} ({} parameters, {} KiB working memory)",
        c.num_layers, c.num_heads, c.channels, c.max_seq_len, c.vocab_size, c.num_parameters(), need >> 10
    );
    let tokenizer = if c.vocab_size == 256 {
        Tokenizer::Bytes
    } else {
        let bytes = files::read_small(TOKENIZER_PATH)
            .unwrap_or_else(|e| fatal(&info, &alloc::format!("V = {} needs {TOKENIZER_PATH}: {}", c.vocab_size, e.describe())));
        Tokenizer::from_llmc_bytes(&bytes).unwrap_or_else(|e| fatal(&info, &alloc::format!("{TOKENIZER_PATH}: {e}")))
    };

    let mut settings: ChatSettings = cfg.chat;
    let pool = mp::Pool::start(&info);
    settings.cores = pool.set_active(settings.cores); // the default 0 means every core
    sayln!("cores       {} of {} in use (/cores N to change)", settings.cores, pool.available());
    let mut session = Session::new(&model, kernels, settings.sampler, settings.seed);
    let mut chat = Chat { settings, session: &mut session, tokenizer: &tokenizer, clock, pool: &pool, last: String::from("no reply yet") };

    if !cfg.script.is_empty() {
        sayln!("running {} scripted prompt(s)\n", cfg.script.len());
        for line in &cfg.script {
            sayln!("> {line}");
            if !chat.handle(line) {
                break;
            }
        }
        sayln!("{SCRIPT_DONE}");
        cpu::power_off(true, &info);
    }

    sayln!("\nType a line and press Enter. /help lists the commands; /quit powers off.");
    let mut line = String::new();
    loop {
        say!("> ");
        if !console::read_line(&mut line, 1024) {
            fatal(&info, "no console input device");
        }
        if !chat.handle(&line) {
            break;
        }
    }
    sayln!("powering off.");
    cpu::power_off(true, &info)
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

struct Chat<'a, 'm> {
    settings: ChatSettings,
    session: &'a mut Session<'m>,
    tokenizer: &'a Tokenizer,
    clock: Clock,
    pool: &'a mp::Pool,
    last: String,
}

impl Chat<'_, '_> {
    /// One input line: a command or a prompt. False means quit.
    fn handle(&mut self, line: &str) -> bool {
        match chat::parse_line(line) {
            Err(e) => sayln!("{e}"),
            Ok(Line::Empty) => {}
            Ok(Line::Command(cmd)) => match chat::handle_command(&mut self.settings, self.session, cmd) {
                Action::Help => sayln!("{}", chat::HELP),
                Action::Quit => return false,
                Action::Reset => sayln!("[conversation reset]"),
                Action::Stats => sayln!("{}", self.last),
                Action::Updated => {
                    self.settings.cores = self.pool.set_active(self.settings.cores);
                    sayln!("[{}]", self.settings);
                }
            },
            Ok(Line::Prompt(text)) => self.reply(text),
        }
        true
    }

    fn reply(&mut self, text: &str) {
        let t0 = cpu::now_ticks();
        let fed = match chat::feed_turn(self.session, self.tokenizer, text, self.pool) {
            Ok(n) => n,
            Err(e) => {
                sayln!("error: {e}");
                return;
            }
        };
        let prefill = self.clock.seconds_since(t0);
        let t1 = cpu::now_ticks();
        let mut out = Console::new();
        let mut stopped = false;
        let mut stops = chat::reply_stops(&self.settings);
        let result = self.session.generate(self.tokenizer, self.settings.max_tokens, &mut stops, self.pool, &mut |b| {
            if console::cancel_requested() {
                stopped = true;
                return false;
            }
            out.write_bytes(b);
            true
        });
        out.end_bytes();
        let decode = self.clock.seconds_since(t1);
        let made = match result {
            Ok(n) => n,
            Err(e) => {
                sayln!("\nerror: {e}");
                return;
            }
        };
        if stopped {
            sayln!("\n[stopped]");
        } else {
            sayln!();
        }
        self.last = alloc::format!(
            "[{made} tokens in {:.2} s, {:.1} tok/s | prompt {fed} tokens at {:.1} tok/s | context {}/{} | {} core(s)]",
            decode,
            made as f64 / decode.max(1e-9),
            fed as f64 / prefill.max(1e-9),
            self.session.context().len(),
            self.session.model.config.max_seq_len,
            self.pool.workers()
        );
        sayln!("{}", self.last);
    }
}
