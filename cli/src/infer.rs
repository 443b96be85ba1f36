//! inspect, generate, chat and bench: the engine on the host.

use crate::host::{self, MappedFile, TextOut, Threads};
use anyhow::{Context, Result, bail};
use clap::Args;
use llm_engine::chat::{Chat, ChatIo, ChatSettings};
use llm_engine::formats::Format;
use llm_engine::kernels::{Family, KernelsError, registry};
use llm_engine::template::Template;
use llm_engine::tokenizer::Specials;
use llm_engine::{Kernels, Model, Parallel, SamplerConfig, Session, StopFilter, checkpoint};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Sampling flags shared by generate and chat.
#[derive(Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Temperature; 0 (or anything below 0.001) means greedy decoding.
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Nucleus sampling: smallest set with this much probability (1 = off).
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Drop tokens less likely than MIN_P times the most likely one (0 = off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub min_p: f32,
    /// Repetition penalty over the last 64 tokens (1 = off).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub repeat_penalty: f32,
    /// Seed of the sampler's PRNG: the same seed gives the same text on every machine.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads for inference (0 = all cores).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Kernels: auto (the fastest set this CPU runs), a numeric family (nofma, nofma-q8, fma,
    /// q8: its fastest set here; `scalar` = nofma), or a kernel set of the registry (portable,
    /// portable-q8, sse2, ssse3-q8, avx2, avx2-q8, avx-vnni, avx512-vnni). Sets of one family give identical
    /// bits; the UEFI app under QEMU's default CPU (no AVX) runs ssse3-q8.
    #[arg(long, default_value = "auto")]
    pub kernels: String,
    /// Positions of context to allocate (default: the model's, at most 2048).
    #[arg(long)]
    pub context: Option<usize>,
    /// Tokenizer file: llm.c's for llm.c models whose vocabulary is not bytes, llama2.c's
    /// tokenizer.bin for llama2.c models (default: tokenizer.bin beside the model).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

impl SamplingArgs {
    pub fn sampler(&self) -> Result<SamplerConfig> {
        let c = SamplerConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_window: 64,
        };
        c.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(c)
    }
}

/// A session with the context asked for (default: min(model's, DEFAULT_MAX_CONTEXT)).
pub fn new_session<'m>(
    model: &'m Model<'m>,
    kernels: Kernels,
    context: Option<usize>,
    sampler: SamplerConfig,
    seed: u64,
) -> Result<Session<'m>> {
    let max = model.spec().context;
    let ctx = context.unwrap_or(max.min(llm_engine::session::DEFAULT_MAX_CONTEXT));
    if ctx == 0 || ctx > max {
        bail!("--context {ctx}: the model supports 1 to {max} positions");
    }
    Ok(Session::with_context(model, kernels, ctx, sampler, seed)?)
}

/// `--kernels`: `auto`, a numeric family (its fastest set on this CPU), or a kernel set's
/// registry name (`llm_engine::kernels::registry`).
pub fn parse_kernels(name: &str) -> Result<Kernels> {
    let family = match name {
        "auto" => return Ok(Kernels::detect()),
        "nofma" | "no-fma" | "scalar" => Family::NoFma,
        "fma" => Family::Fma,
        "q8" | "fma-q8" => Family::FmaQ8,
        "nofma-q8" | "no-fma-q8" => Family::NoFmaQ8,
        set => {
            return Kernels::by_name(set).map_err(|e| match e {
                KernelsError::NotUsable(n) => anyhow::anyhow!("--kernels {n}: this CPU cannot run that kernel set"),
                KernelsError::Unknown => {
                    let sets: Vec<&str> = registry().map(|s| s.name).collect();
                    anyhow::anyhow!(
                        "--kernels: unknown kernel set '{set}' (auto; families nofma, nofma-q8, fma, q8; sets {})",
                        sets.join(", ")
                    )
                }
            });
        }
    };
    Kernels::detect_family(family).with_context(|| format!("--kernels {name}: this CPU has no kernel set of the {} family", family.name()))
}

pub fn inspect(path: &Path, context: Option<usize>) -> Result<()> {
    let file = MappedFile::open(path)?;
    let bytes = file.bytes();
    // The whole file is validated (a truncated file is reported here too); f32 data is not copied.
    let loaded = host::load_model(path, &file)?;
    let spec = *loaded.model.spec();
    let weights = loaded.model.weights();
    crate::outln!("file        {}", path.display())?;
    crate::outln!("format      {}", loaded.format.describe())?;
    crate::outln!("file size   {} bytes ({:.2} MiB)", bytes.len(), bytes.len() as f64 / (1 << 20) as f64)?;
    crate::outln!("arch        {}", spec.arch.name())?;
    crate::outln!("layers      L  = {}", spec.n_layers)?;
    if spec.n_kv_heads == spec.n_heads {
        crate::outln!("heads       NH = {} (head size {})", spec.n_heads, spec.head_dim)?;
    } else {
        crate::outln!("heads       NH = {}, {} key/value heads (head size {})", spec.n_heads, spec.n_kv_heads, spec.head_dim)?;
    }
    crate::outln!("channels    C  = {}", spec.d_model)?;
    crate::outln!("ffn width   F  = {}", spec.ffn_dim)?;
    crate::outln!("context     maxT = {}", spec.context)?;
    match loaded.format {
        Format::Llmc { config: c, .. } => {
            let n = c.num_parameters();
            let real = n - (c.padded_vocab_size - c.vocab_size) * c.d_model;
            crate::outln!("vocabulary  V  = {} (padded Vp = {})", c.vocab_size, c.padded_vocab_size)?;
            crate::outln!("parameters  {n} ({real} without embedding padding)")?;
        }
        Format::Llama2c(_) => {
            crate::outln!("vocabulary  V  = {}", spec.vocab_size)?;
            crate::outln!("parameters  {}", weights.bytes() / 4)?;
        }
        Format::Gguf { .. } => {
            let g = llm_engine::formats::gguf::Gguf::parse(bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if let Ok(name) = g.get_str("general.name") {
                crate::outln!("name        {name}")?;
            }
            crate::outln!("vocabulary  V  = {}", spec.vocab_size)?;
            if let Some(llm_engine::Tokenizer::Gguf(t)) = &loaded.tokenizer {
                crate::outln!(
                    "tokenizer   {}, {} tokens, BOS {:?}{}, end tokens {:?}",
                    t.describe(),
                    t.vocab_size(),
                    t.bos(),
                    if t.add_bos() { " (added)" } else { "" },
                    t.end_tokens()
                )?;
            }
            let template = llm_engine::template::Template::detect(loaded.chat_template);
            crate::outln!(
                "template    {}",
                if loaded.chat_template.is_none() { "none (a base model: continuation)".to_string() } else { template.name().to_string() }
            )?;
            if let Some(w) = spec.sliding_window {
                crate::outln!("sliding     window {} on layers l % {} < {}", w.window, w.pattern, w.pattern - 1)?;
            }
            let mut counts: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
            let mut elems = 0u64;
            for t in g.tensors() {
                let e = counts.entry(t.ggml_type.name()).or_default();
                e.0 += 1;
                e.1 += t.n_bytes;
                elems += t.n_elements();
            }
            crate::outln!("parameters  {elems}")?;
            let list: Vec<String> = counts.iter().map(|(k, (n, b))| format!("{k} {n} ({:.1} MiB)", *b as f64 / (1 << 20) as f64)).collect();
            crate::outln!("tensors     {}: {}", g.tensors().len(), list.join(", "))?;
        }
    }
    crate::outln!("output      {}", if spec.tied_output { "tied to the token embedding" } else { "separate classifier" })?;
    crate::outln!(
        "weights     {:.2} MiB (token embedding {})",
        weights.bytes() as f64 / (1 << 20) as f64,
        weights.token_embd.dtype().name()
    )?;
    let ctx = context.unwrap_or(spec.context.min(llm_engine::session::DEFAULT_MAX_CONTEXT));
    if ctx == 0 || ctx > spec.context {
        bail!("--context {ctx}: the model supports 1 to {} positions", spec.context);
    }
    crate::outln!(
        "run state   {:.2} MiB for a context of {ctx} (activations + KV cache; {:.2} MiB for the full {})",
        loaded.model.state_bytes(ctx) as f64 / (1 << 20) as f64,
        loaded.model.state_bytes(spec.context) as f64 / (1 << 20) as f64,
        spec.context
    )?;
    crate::outln!(
        "memory      about {:.0} MiB in all for a context of {ctx} (file + run state)",
        (bytes.len() + loaded.model.state_bytes(ctx)) as f64 / (1 << 20) as f64
    )?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    pub checkpoint: PathBuf,
    /// Text to continue (not printed); empty starts from a newline. Text is text: a control
    /// token spelled out in it (`<|im_end|>`) is encoded as its characters.
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Match control tokens spelled out in --prompt as those tokens (`<|im_start|>`, ...), as
    /// llama.cpp's option of that name: for raw prompts that carry a chat template already.
    #[arg(long)]
    pub parse_special: bool,
    /// Number of tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub steps: usize,
    /// Stop when the output contains this string (not printed); repeatable. "\n" escapes work.
    #[arg(long)]
    pub stop: Vec<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// Turns the two-character escapes \n, \t and \\ into their characters.
pub fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

pub fn generate(a: &GenerateArgs) -> Result<()> {
    let file = MappedFile::read_for_inference(&a.checkpoint)?;
    let mut loaded = host::load_model(&a.checkpoint, &file)?;
    let tokenizer = host::load_tokenizer(a.sampling.tokenizer.as_deref(), &a.checkpoint, &mut loaded)?;
    let kernels = parse_kernels(&a.sampling.kernels)?;
    let threads = Threads::new(a.sampling.threads)?;
    let model = &loaded.model;
    let mut session = new_session(model, kernels, a.sampling.context, a.sampling.sampler()?, a.sampling.seed)?;
    let prompt = unescape(&a.prompt);
    let mut tokens = Vec::new();
    let specials = if a.parse_special { Specials::Parse } else { Specials::AsText };
    tokenizer.encode_prompt_with(prompt.as_bytes(), true, specials, &mut tokens);
    if tokens.is_empty() {
        tokens.push(tokenizer.eot().unwrap_or(b'\n' as u32));
    }
    let stops: Vec<String> = a.stop.iter().map(|s| unescape(s)).collect();
    let stop_refs: Vec<&[u8]> = stops.iter().map(|s| s.as_bytes()).collect();
    let mut stops = StopFilter::new(&stop_refs);

    let t0 = Instant::now();
    session.feed(&tokens, &threads)?;
    let prefill = t0.elapsed().as_secs_f64();
    // A prompt longer than the context is cut to its end: only what the model ran counts.
    let computed = session.context().len();
    let mut out = TextOut::new();
    let mut failed: Option<std::io::Error> = None;
    let t1 = Instant::now();
    let made = session.generate(&tokenizer, a.steps, &mut stops, &threads, &mut |b| match out.write(b) {
        Ok(()) => true,
        Err(e) => {
            // The reader is gone (or the disk is full): stop generating now.
            failed = Some(e);
            false
        }
    })?;
    let decode = t1.elapsed().as_secs_f64();
    if let Some(e) = failed {
        return Err(host::output_error(e));
    }
    out.finish().map_err(host::output_error)?;
    let cut = if computed < tokens.len() {
        format!("prompt of {} tokens cut to its last {computed} (context {}) | ", tokens.len(), session.max_context())
    } else {
        String::new()
    };
    crate::errln!(
        "\n[{cut}prefill {computed} tokens: {:.1} tok/s | decode {made} tokens: {:.1} tok/s | {} ({}) | {} thread(s)]",
        computed as f64 / prefill.max(1e-9),
        made as f64 / decode.max(1e-9),
        kernels.description(),
        kernels.name(),
        threads.workers()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    pub checkpoint: PathBuf,
    /// Maximum tokens per reply.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Do not end replies at a blank line (run to --max-tokens; continuation mode only).
    #[arg(long)]
    pub no_stop: bool,
    /// Chat template: auto (the model file's), raw (continuation), chatml, gemma, llama3, llama2, phi3.
    #[arg(long, default_value = "auto")]
    pub template: String,
    /// System message for templates that have one (default: the template's own, if any).
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// The template for a chat: `auto` reads the model file's, else a name.
pub fn choose_template(name: &str, file_template: Option<&str>) -> Result<Template> {
    match name {
        "auto" => Ok(Template::detect(file_template)),
        other => Template::from_name(other).with_context(|| format!("--template: unknown template '{other}' ({})", Template::NAMES)),
    }
}

/// The terminal side of the chat driver. The driver's callbacks cannot fail: the first
/// failed write is kept, stops the reply (as a Ctrl-C) and ends the chat.
struct TerminalIo {
    out: TextOut,
    start: Instant,
    failed: Option<std::io::Error>,
}

impl TerminalIo {
    fn keep(&mut self, r: std::io::Result<()>) {
        if let Err(e) = r {
            self.failed.get_or_insert(e);
        }
    }
    fn print_line(&mut self, text: &str) {
        if self.failed.is_none() {
            let r = writeln!(std::io::stdout().lock(), "{text}").and_then(|()| std::io::stdout().flush());
            self.keep(r);
        }
    }
}

impl ChatIo for TerminalIo {
    fn reply_bytes(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            let r = self.out.write(bytes);
            self.keep(r);
        }
    }
    fn reply_end(&mut self) {
        let r = self.out.finish();
        self.keep(r);
        self.print_line("");
    }
    fn line(&mut self, text: &str) {
        self.print_line(text);
    }
    fn notice(&mut self, text: &str) {
        // What happened to the conversation goes beside the replies, not into them.
        let _ = std::io::stdout().flush();
        eprintln!("{text}");
    }
    fn cancel_requested(&mut self) -> bool {
        host::take_interrupt() || self.failed.is_some()
    }
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

pub fn chat(a: &ChatArgs) -> Result<()> {
    let file = MappedFile::read_for_inference(&a.checkpoint)?;
    let mut loaded = host::load_model(&a.checkpoint, &file)?;
    let tokenizer = host::load_tokenizer(a.sampling.tokenizer.as_deref(), &a.checkpoint, &mut loaded)?;
    let chat_template = loaded.chat_template;
    let kernels = parse_kernels(&a.sampling.kernels)?;
    if a.max_tokens == 0 {
        bail!("--max-tokens: must be at least 1 (as /max)");
    }
    let settings = ChatSettings {
        sampler: a.sampling.sampler()?,
        seed: a.sampling.seed,
        max_tokens: a.max_tokens,
        cores: host::capped_threads(a.sampling.threads.max(1)),
        stop_at_blank_line: !a.no_stop,
    };
    let mut threads = Threads::new(settings.cores)?;
    let model = &loaded.model;
    let mut session = new_session(model, kernels, a.sampling.context, settings.sampler, settings.seed)?;
    host::catch_ctrl_c()?;
    let s = model.spec();
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if interactive {
        crate::outln!(
            "llm-baremetal chat: {} L={} NH={} C={} maxT={} V={} | {} | /help for commands, Ctrl-C stops a reply, /quit or Ctrl-D leaves",
            s.arch.name(),
            s.n_layers,
            s.n_heads,
            s.d_model,
            s.context,
            s.vocab_size,
            kernels.name()
        )?;
    }
    let template = choose_template(&a.template, chat_template)?;
    let system = a.system.clone().or_else(|| Template::default_system(chat_template).map(String::from));
    if interactive && template != Template::Raw {
        crate::outln!("template: {} (/reset starts a new conversation)", template.name())?;
    }
    let mut chat = Chat::new(settings, &mut session, &tokenizer)
        .with_template(template, system)
        .with_context(|| format!("--template {}: cannot chat with this model", template.name()))?;
    chat.show_stats = interactive;
    let mut io = TerminalIo { out: TextOut::new(), start: Instant::now(), failed: None };
    let stdin = std::io::stdin();
    let mut raw = Vec::new();
    loop {
        if interactive {
            crate::out!("> ")?;
        }
        raw.clear();
        if stdin.lock().read_until(b'\n', &mut raw).context("cannot read the terminal")? == 0 {
            break;
        }
        host::take_interrupt();
        // One line that is not UTF-8 (a stray byte in a pasted or piped text) is refused, not
        // the end of the session.
        let keep_going = match std::str::from_utf8(&raw) {
            Ok(line) => chat.handle_line(line, &mut io, &mut threads),
            Err(e) => {
                io.line(&format!("error: the line is not valid UTF-8 (byte {} of it): ignored", e.valid_up_to() + 1));
                true
            }
        };
        if let Some(e) = io.failed.take() {
            return Err(host::output_error(e));
        }
        if !keep_going {
            break;
        }
    }
    if !interactive && chat.failed_turns > 0 {
        bail!("{} turn(s) of the input failed (see the messages above)", chat.failed_turns);
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Checkpoint to benchmark (or use --random).
    pub checkpoint: Option<PathBuf>,
    /// Benchmark a random model of this shape instead: L,NH,C,maxT[,V]
    #[arg(long)]
    pub random: Option<String>,
    /// Prompt tokens for the prefill measurement (default: half the context).
    #[arg(long)]
    pub prefill: Option<usize>,
    /// Tokens decoded after the prefill (default: 64, or what the context leaves).
    #[arg(long)]
    pub decode: Option<usize>,
    /// Threads for the multi-threaded rows (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Repetitions; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Measure training tokens/s instead (forward + backward + AdamW on random tokens),
    /// for the model's shape (or --random) with --batch and --seq.
    #[arg(long)]
    pub train: bool,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Training sequence length (default: the model's context).
    #[arg(long)]
    pub seq: Option<usize>,
    /// Training steps to time (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
}

pub fn parse_shape(s: &str) -> Result<llm_engine::LlmcConfig> {
    let v: Vec<usize> = s
        .split(',')
        .map(|x| x.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad shape '{s}': expected L,NH,C,maxT[,V]"))?;
    if v.len() != 4 && v.len() != 5 {
        bail!("bad shape '{s}': expected L,NH,C,maxT[,V]");
    }
    let vocab = v.get(4).copied().unwrap_or(256);
    let cfg = llm_engine::LlmcConfig {
        n_layers: v[0],
        n_heads: v[1],
        d_model: v[2],
        context: v[3],
        vocab_size: vocab,
        padded_vocab_size: vocab.next_multiple_of(64),
    };
    cfg.validate().map_err(|e| anyhow::anyhow!("bad shape '{s}': {e}"))?;
    Ok(cfg)
}

pub fn bench(a: &BenchArgs) -> Result<()> {
    let file: MappedFile;
    let owned: Vec<f32>;
    let (model, params): (Model, Option<(llm_engine::LlmcConfig, &[f32])>) = match (&a.checkpoint, &a.random) {
        (Some(p), None) => {
            file = MappedFile::read_for_inference(p)?;
            (host::load_model(p, &file)?.model, None)
        }
        (None, Some(shape)) => {
            let cfg = parse_shape(shape)?;
            let mut rng = llm_engine::Rng::new(1);
            owned = (0..cfg.num_parameters()).map(|_| (rng.next_f32() - 0.5) * 0.1).collect::<Vec<f32>>();
            (checkpoint::model_from_params(&cfg, &owned)?, Some((cfg, &owned[..])))
        }
        _ => bail!("give a checkpoint or --random L,NH,C,maxT (not both)"),
    };
    if a.repeat == 0 {
        bail!("--repeat 0: must be at least 1 (the best of --repeat runs is reported)");
    }
    if a.train {
        if a.steps == 0 {
            bail!("--steps 0: must be at least 1 (the timed training steps)");
        }
        let (cfg, params) = match (params, &a.checkpoint) {
            (Some(p), _) => (p.0, p.1.to_vec()),
            (None, Some(path)) => {
                let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                let ck =
                    checkpoint::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: --train needs an llm.c checkpoint: {e}", path.display()))?;
                (ck.config, ck.params.to_vec())
            }
            (None, None) => unreachable!("one of the two was given"),
        };
        return bench_train(a, cfg, params);
    }
    let c = *model.spec();
    let n_threads = Threads::new(a.threads)?;
    let multi = n_threads.workers();
    // Multiply-adds per token: every matrix once (the output projection over V rows only).
    let w = model.weights();
    let embd = w.token_embd.bytes() / 4 + w.pos_embd.as_ref().map_or(0, |p| p.bytes() / 4);
    let matrices = w.bytes() / 4 - embd + if c.tied_output { c.vocab_size * c.d_model } else { 0 };
    crate::outln!(
        "model: {} L={} NH={} C={} maxT={} V={} ({:.2}M parameters)",
        c.arch.name(),
        c.n_layers,
        c.n_heads,
        c.d_model,
        c.context,
        c.vocab_size,
        w.bytes() as f64 / 4e6
    )?;
    // As llama-bench's pp64/tg64 by default (half the context for models shorter than 128).
    let ctx = c.context.min(llm_engine::session::DEFAULT_MAX_CONTEXT);
    let prefill_n = a.prefill.unwrap_or((ctx / 2).min(64));
    if prefill_n == 0 || prefill_n >= ctx {
        let why = if ctx < c.context {
            format!("the benchmark's context is {ctx}: the model's {} capped at {}", c.context, llm_engine::session::DEFAULT_MAX_CONTEXT)
        } else {
            format!("the model's context is {ctx}")
        };
        bail!("--prefill {prefill_n}: must be between 1 and {} ({why}; one position is left to decode)", ctx.max(2) - 1);
    }
    let decode_n = a.decode.unwrap_or((ctx - prefill_n).min(64)).min(ctx - prefill_n);
    let flops_per_token = 2.0 * matrices as f64;
    crate::outln!("prefill {prefill_n} tokens, then decode {decode_n} tokens (greedy); best of {}", a.repeat)?;
    crate::outln!("| kernels | threads | prefill tok/s | decode tok/s | decode GFLOP/s |")?;
    crate::outln!("|---|---|---|---|---|")?;
    // The fastest set of each family this CPU has.
    let sets: Vec<Kernels> =
        [Family::NoFma, Family::NoFmaQ8, Family::Fma, Family::FmaQ8].into_iter().filter_map(Kernels::detect_family).collect();
    let serial = Threads::new(1)?;
    for k in sets {
        for (threads, nt) in [(&serial, 1), (&n_threads, multi)] {
            if nt == 1 && !std::ptr::eq(threads, &serial) {
                continue;
            }
            let (mut best_p, mut best_d) = (0.0f64, 0.0f64);
            for run in 1..=a.repeat {
                // A large model takes a while per run: show that it is working.
                progress(&format!("[bench: {} ({}), {nt} thread(s), run {run} of {}]", k.description(), k.name(), a.repeat));
                let (p, d) = bench_once(&model, k, threads, prefill_n, decode_n)?;
                best_p = best_p.max(p);
                best_d = best_d.max(d);
            }
            progress("");
            crate::outln!(
                "| {} ({}) | {nt} | {best_p:.1} | {best_d:.1} | {:.2} |",
                k.description(),
                k.name(),
                best_d * flops_per_token / 1e9
            )?;
        }
    }
    Ok(())
}

/// A progress line on stderr: rewritten in place on a terminal (empty text clears it), one
/// line each otherwise (logs).
fn progress(text: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{text}").and_then(|()| err.flush());
    } else if !text.is_empty() {
        crate::errln!("{text}");
    }
}

/// Training throughput on random tokens (the data does not change the arithmetic).
fn bench_train(a: &BenchArgs, c: llm_engine::LlmcConfig, params: Vec<f32>) -> Result<()> {
    use llm_trainer::run::{TrainOptions, Trainer};
    let seq = a.seq.unwrap_or(c.context);
    let opts = TrainOptions { batch: a.batch, seq, steps: a.steps + 2, ..TrainOptions::default() };
    let threads = if a.threads > 0 { host::capped_threads(a.threads) } else { 0 };
    crate::train::limit_matmul_threads(threads);
    if threads > 0 {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot set up the thread pool")?;
    }
    let mut trainer = Trainer::new(c, opts, Some(params))?;
    let mut rng = llm_engine::Rng::new(7);
    let data: Vec<u16> = (0..(a.batch * seq * 8).max(seq + 2)).map(|_| (rng.next_u32() % c.vocab_size as u32) as u16).collect();
    for _ in 0..2 {
        trainer.train_step(&data);
    }
    let t0 = Instant::now();
    for _ in 0..a.steps {
        trainer.train_step(&data);
    }
    let dt = t0.elapsed().as_secs_f64();
    let tokens = (a.steps * a.batch * seq) as f64;
    crate::outln!(
        "train: L={} NH={} C={} maxT={} V={} ({} parameters), B={} T={}, {} threads: {:.1} ms/step, {:.0} tokens/s",
        c.n_layers,
        c.n_heads,
        c.d_model,
        c.context,
        c.vocab_size,
        c.num_parameters(),
        a.batch,
        seq,
        rayon::current_num_threads(),
        dt * 1000.0 / a.steps as f64,
        tokens / dt
    )?;
    Ok(())
}

fn bench_once(model: &Model, k: Kernels, threads: &Threads, prefill_n: usize, decode_n: usize) -> Result<(f64, f64)> {
    let greedy = SamplerConfig { temperature: 0.0, ..SamplerConfig::default() };
    let ctx = model.spec().context.min(llm_engine::session::DEFAULT_MAX_CONTEXT);
    let mut s = Session::with_context(model, k, ctx, greedy, 1)?;
    let prompt: Vec<u32> = (0..prefill_n).map(|i| (i * 7 % model.spec().vocab_size) as u32).collect();
    let t0 = Instant::now();
    s.feed(&prompt, threads)?;
    let p = prefill_n as f64 / t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 0..decode_n {
        s.next_token(threads)?;
    }
    let d = if decode_n > 0 { decode_n as f64 / t1.elapsed().as_secs_f64() } else { 0.0 };
    Ok((p, d))
}
