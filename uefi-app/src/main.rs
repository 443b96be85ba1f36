//! llm-baremetal as a UEFI application: boots, loads a model (llm.c or llama2.c checkpoint)
//! from the boot volume (or the one built into this binary), and chats on the firmware
//! console with no OS.
//!
//! The model, sampler, tokenizer and the chat-turn driver are the `llm-engine` crate,
//! unchanged: this file only reads lines and prints. The same model, prompt, settings and
//! seed print the same text as `llm-baremetal generate` on the host.
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
use llm_engine::chat::{Chat, ChatIo, ChatSettings, Cores};
use llm_engine::config::BootConfig;
use llm_engine::template::Template;
use llm_engine::{Kernels, Session, Tokenizer};
use uefi::boot::{self, MemoryType};
use uefi::mem::memory_map::MemoryMap;
use uefi::prelude::*;

const CONFIG_PATH: &str = "\\llm.cfg";
const DEFAULT_MODEL_PATH: &str = "\\model.bin";
const TOKENIZER_PATH: &str = "\\tokenizer.bin";
/// Printed when a scripted session has run every prompt: tests look for it.
const SCRIPT_DONE: &str = "[llm-baremetal: script done]";
/// The longest line typed at the prompt, in bytes; a longer one is refused with a message.
const MAX_LINE: usize = 1024;

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
        "features    SSE2 {}, SSSE3 {}, AVX2 {}, FMA {}, AVX-512 VNNI {}; AVX state {}",
        yes(info.sse2),
        yes(info.ssse3),
        yes(info.avx2),
        yes(info.fma),
        yes(info.avx512_vnni_usable()),
        if avx_enabled { "enabled" } else { "unavailable" }
    );
    sayln!("memory      {} MiB free", free_memory() >> 20);

    let cfg = load_config(&info);
    // `kernels =` (a registry name, checked by the parser) where this CPU runs that set.
    let kernels = match cfg.kernels.as_str() {
        "auto" => Kernels::detect(),
        name => Kernels::by_name(name).unwrap_or_else(|_| {
            sayln!("kernels     {name}: this CPU cannot run that set; using the fastest one it runs");
            Kernels::detect()
        }),
    };
    sayln!("kernels     {} ({})", kernels.description(), kernels.name());
    let bytes = load_model_bytes(&info, &cfg.model_path);
    let loaded = match llm_engine::load(bytes) {
        Ok(m) => m,
        Err(e) => fatal(&info, &alloc::format!("{} is not a usable model: {e}", cfg.model_path)),
    };
    let mut loaded = loaded;
    let model = &loaded.model;
    let c = *model.spec();
    // The context to allocate: `context =`, else the model's up to DEFAULT_MAX_CONTEXT.
    let ctx = cfg.context.unwrap_or(c.context.min(llm_engine::session::DEFAULT_MAX_CONTEXT));
    if ctx > c.context {
        fatal(&info, &alloc::format!("context = {ctx} is longer than the model's {}", c.context));
    }
    let need = model.state_bytes(ctx) as u64;
    let free = free_memory();
    if need + (1 << 20) > free {
        fatal(&info, &alloc::format!("the model needs {} MiB of working memory but only {} MiB are free", need >> 20, free >> 20));
    }
    sayln!("format      {}", loaded.format.describe());
    sayln!(
        "shape       {} L={} NH={} NKV={} C={} maxT={} V={} ({} MiB of weights, {} KiB working memory for context {ctx})",
        c.arch.name(),
        c.n_layers,
        c.n_heads,
        c.n_kv_heads,
        c.d_model,
        c.context,
        c.vocab_size,
        model.weights().bytes() >> 20,
        need >> 10
    );
    let tokenizer = if loaded.format.needs_tokenizer_file() {
        let bytes = files::read_small(TOKENIZER_PATH).unwrap_or_else(|e| {
            fatal(&info, &alloc::format!("this model (V = {}) needs {TOKENIZER_PATH}: {}", c.vocab_size, e.describe()))
        });
        let t = Tokenizer::for_format(&loaded.format, &bytes).unwrap_or_else(|e| fatal(&info, &alloc::format!("{TOKENIZER_PATH}: {e}")));
        if t.vocab_size() < c.vocab_size {
            fatal(&info, &alloc::format!("{TOKENIZER_PATH} has {} tokens but the model has V = {}", t.vocab_size(), c.vocab_size));
        }
        sayln!("tokenizer   {TOKENIZER_PATH} ({} tokens)", t.vocab_size());
        t
    } else if let Some(t) = loaded.tokenizer.take() {
        sayln!("tokenizer   from the model file ({} tokens)", t.vocab_size());
        t
    } else {
        Tokenizer::Bytes
    };
    let file_template = loaded.chat_template;
    let template = match cfg.template.as_str() {
        "auto" => Template::detect(file_template),
        name => Template::from_name(name).unwrap_or(Template::Raw), // validated by BootConfig::parse
    };
    let system = cfg.system.clone().or_else(|| Template::default_system(file_template).map(String::from));
    let model = &loaded.model;

    let mut settings: ChatSettings = cfg.chat;
    let mut pool = mp::Pool::start(&info);
    settings.cores = pool.set_active(settings.cores); // the default 0 means every core
    sayln!("cores       {} of {} in use (/cores N to change)", settings.cores, pool.available());
    sayln!("template    {}", if template == Template::Raw { "none: the model continues your text" } else { template.name() });
    let mut session = match Session::with_context(model, kernels, ctx, settings.sampler, settings.seed) {
        Ok(s) => s,
        Err(e) => fatal(&info, &alloc::format!("{e}")),
    };
    let mut chat = match Chat::new(settings, &mut session, &tokenizer).with_template(template, system) {
        Ok(c) => c,
        Err(e) => fatal(&info, &alloc::format!("{e} (set template = raw in {CONFIG_PATH}, or another template)")),
    };
    let mut io = FirmwareIo { out: Console::new(), clock, input: console::Input::new() };

    if !cfg.script.is_empty() {
        sayln!("running {} scripted prompt(s)\n", cfg.script.len());
        for line in &cfg.script {
            sayln!("> {line}");
            if !chat.handle_line(line, &mut io, &mut pool) {
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
        match io.input.read_line(&mut line, MAX_LINE) {
            console::LineRead::Line => {}
            console::LineRead::TooLong { bytes } => {
                sayln!("[line too long: {bytes} bytes, at most {MAX_LINE}: not used]");
                continue;
            }
            console::LineRead::NoInput => fatal(&info, "no console input device"),
        }
        if !chat.handle_line(&line, &mut io, &mut pool) {
            break;
        }
    }
    sayln!("powering off.");
    cpu::power_off(true, &info)
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The firmware console side of the chat driver.
struct FirmwareIo {
    out: Console,
    clock: Clock,
    /// Keys typed while a reply streams are kept here for the next line.
    input: console::Input,
}

impl ChatIo for FirmwareIo {
    fn reply_bytes(&mut self, bytes: &[u8]) {
        self.out.write_bytes(bytes);
    }
    fn reply_end(&mut self) {
        self.out.end_bytes();
        sayln!();
    }
    fn line(&mut self, text: &str) {
        sayln!("{text}");
    }
    fn cancel_requested(&mut self) -> bool {
        self.input.cancel_requested()
    }
    fn now(&self) -> f64 {
        self.clock.seconds_since(0)
    }
}

impl Cores for mp::Pool {
    fn set_active(&mut self, n: usize) -> usize {
        mp::Pool::set_active(self, n)
    }
}
