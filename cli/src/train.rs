//! prepare, train and report: the trainer from the command line.

use crate::host;
use anyhow::{Context, Result, bail};
use clap::Args;
use llm_engine::checkpoint::LlmcConfig;
use llm_trainer::run::{self, RunInputs, TrainOptions, Trainer};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// Text files, concatenated in order.
    #[arg(required = true)]
    pub texts: Vec<PathBuf>,
    /// Output directory for train.bin and val.bin.
    #[arg(long)]
    pub out: PathBuf,
    /// Fraction of the text (at the end) kept for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
}

pub fn prepare(a: &PrepareArgs) -> Result<()> {
    let p = llm_trainer::data::prepare(&a.texts, &a.out, a.val_fraction)?;
    crate::outln!(
        "wrote {} ({} tokens) and {} ({} tokens), byte-level vocabulary 256",
        p.train_path.display(),
        p.train_tokens,
        p.val_path.display(),
        p.val_tokens
    )?;
    Ok(())
}

/// Named model shapes.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Preset {
    /// The seed project's model: L=2, NH=2, C=64, context 64 (120,576 parameters).
    Seed,
    /// The default model shipped in models/ (see models/README.md).
    Default,
}

impl Preset {
    pub fn shape(self) -> (usize, usize, usize, usize) {
        match self {
            Preset::Seed => (2, 2, 64, 64),
            Preset::Default => DEFAULT_SHAPE,
        }
    }
}

/// L, NH, C, context of the default model.
pub const DEFAULT_SHAPE: (usize, usize, usize, usize) = (4, 4, 128, 128);

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Directory with train.bin and val.bin (from `prepare`).
    #[arg(long, required_unless_present = "resume")]
    pub data: Option<PathBuf>,
    /// Output run directory (model.bin, state.bin, log.csv, samples.md, run.json).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory exactly where it stopped.
    #[arg(long, conflicts_with_all = ["init", "preset", "layers", "heads", "channels", "context"])]
    pub resume: Option<PathBuf>,
    /// Start from this checkpoint's weights (fine-tuning) instead of random ones.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// A named shape (overridden by --layers/--heads/--channels/--context).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    #[arg(long)]
    pub channels: Option<usize>,
    /// Context length maxT of the model.
    #[arg(long)]
    pub context: Option<usize>,
    /// Sequences per step [default: 16].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Training sequence length T (default: the model's context).
    #[arg(long)]
    pub seq: Option<usize>,
    /// Optimizer steps of the run [default: 1000].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Peak learning rate [default: 0.003].
    #[arg(long)]
    pub lr: Option<f32>,
    /// Warm-up steps [default: 100].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// AdamW weight decay [default: 0.1].
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Clip the global gradient norm to this (0 = off) [default: 1].
    #[arg(long)]
    pub grad_clip: Option<f32>,
    /// Seed of the initialisation and the batches [default: 1337].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Validation loss every K steps (on --val-batches fixed batches) [default: 100].
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Validation batches of the periodic estimate [default: 16].
    #[arg(long)]
    pub val_batches: Option<usize>,
    /// Generate a text sample every K steps (0 = never) [default: 500].
    #[arg(long)]
    pub sample_every: Option<usize>,
    /// Save model.bin and state.bin every K steps [default: 200].
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Training threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// No progress bar (for logs and tests).
    #[arg(long)]
    pub quiet: bool,
    /// Test-only, hidden from --help: stop cleanly (saving) after this many steps of this
    /// session, so the tests can check a resumed run without training it to the end.
    #[arg(long, hide = true)]
    pub halt_after: Option<usize>,
}

/// Makes `--threads` hold for matrixmultiply's own pool too (it reads MATMUL_NUM_THREADS once,
/// defaulting to the number of physical cores, at most 4).
pub fn limit_matmul_threads(threads: usize) {
    if threads > 0 {
        // SAFETY: called before any thread of this process is started (clap parsing only so far).
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", threads.to_string()) };
    }
}

pub fn train(a: &TrainArgs) -> Result<()> {
    let threads = if a.threads > 0 { host::capped_threads(a.threads) } else { 0 };
    limit_matmul_threads(threads);
    if threads > 0 {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot set up the thread pool")?;
    }
    // Recorded in run.json and the report as the user would type it.
    let command = std::iter::once("llm-baremetal".to_string())
        .chain(std::env::args().skip(1).map(|s| if s.contains(' ') { format!("'{s}'") } else { s }))
        .collect::<Vec<_>>()
        .join(" ");
    let (trainer, data, out) = if let Some(dir) = &a.resume {
        let dir = &trimmed_path(dir);
        let t = Trainer::resume(dir)?;
        check_resume_flags(a, &t.options)?;
        let data = a.data.clone().or_else(|| read_data_dir(dir)).context("--data is needed to resume this run")?;
        if t.repaired_model {
            crate::outln!(
                "note: {} was missing or one save behind state.bin (stopped while saving): rewritten from state.bin",
                dir.join("model.bin").display()
            )?;
        }
        crate::outln!("resuming {} at step {} of {}", dir.display(), t.step, t.options.steps)?;
        (t, data, a.out.clone().unwrap_or(dir.clone()))
    } else {
        let data = a.data.clone().unwrap();
        let out = a.out.clone().unwrap();
        let (config, init) = match &a.init {
            Some(path) => {
                let file = host::MappedFile::open(path)?;
                // The trainer trains llm.c GPT-2 models: --init must be one.
                let ck = llm_engine::checkpoint::parse(file.bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                if let Some(i) = run::first_non_finite(&ck.params) {
                    bail!(
                        "{}: the checkpoint has non-finite weights (parameter {i} is {}): it cannot be trained",
                        path.display(),
                        ck.params[i]
                    );
                }
                (ck.config, Some(ck.params.into_owned()))
            }
            None => {
                let (l, nh, c, t) = a.preset.unwrap_or(Preset::Default).shape();
                let config = LlmcConfig {
                    n_layers: a.layers.unwrap_or(l),
                    n_heads: a.heads.unwrap_or(nh),
                    d_model: a.channels.unwrap_or(c),
                    context: a.context.unwrap_or(t),
                    vocab_size: 256,
                    padded_vocab_size: 256,
                };
                config.validate().map_err(|e| anyhow::anyhow!("bad model shape: {e}"))?;
                (config, None)
            }
        };
        if out.join("state.bin").exists() {
            bail!("{} already holds a run: use --resume {} to continue it, or choose another --out", out.display(), out.display());
        }
        let d = TrainOptions::default();
        let options = TrainOptions {
            batch: a.batch.unwrap_or(d.batch),
            seq: a.seq.unwrap_or(config.context),
            steps: a.steps.unwrap_or(d.steps),
            lr: a.lr.unwrap_or(d.lr),
            warmup: a.warmup.unwrap_or(d.warmup),
            weight_decay: a.weight_decay.unwrap_or(d.weight_decay),
            grad_clip: a.grad_clip.unwrap_or(d.grad_clip),
            seed: a.seed.unwrap_or(d.seed),
            eval_every: a.eval_every.unwrap_or(d.eval_every),
            val_batches: a.val_batches.unwrap_or(d.val_batches),
            sample_every: a.sample_every.unwrap_or(d.sample_every),
            checkpoint_every: a.checkpoint_every.unwrap_or(d.checkpoint_every),
            ..d
        };
        std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
        std::fs::write(out.join("data_dir.txt"), data.to_string_lossy().as_bytes())?;
        (Trainer::new(config, options, init)?, data, out)
    };
    let c = trainer.config;
    crate::outln!(
        "model L={} NH={} C={} maxT={} V={} ({} parameters); batch {} x {}; {} threads",
        c.n_layers,
        c.n_heads,
        c.d_model,
        c.context,
        c.vocab_size,
        c.num_parameters(),
        trainer.options.batch,
        trainer.options.seq,
        rayon::current_num_threads()
    )?;
    host::catch_ctrl_c()?;
    let summary = run::run(
        trainer,
        RunInputs {
            data_dir: &data,
            out_dir: &out,
            command,
            interrupt: host::interrupt_flag(),
            progress: !a.quiet,
            halt_after: a.halt_after,
        },
    )?;
    if summary.interrupted {
        crate::outln!("interrupted at step {}: saved; continue with `llm-baremetal train --resume {}`", summary.steps_done, out.display())?;
    } else {
        crate::outln!(
            "step {}/{}: train loss {:.4}, best val {}, {:.0} tokens/s, {:.1} s",
            summary.steps_done,
            summary.options.steps,
            summary.final_train_loss,
            summary.best_val_loss.map_or("-".into(), |v| format!("{v:.4}")),
            summary.tokens_per_second,
            summary.train_seconds
        )?;
        if let Some(v) = summary.full_val_loss {
            crate::outln!("validation loss over the whole split: {v:.4}")?;
        }
        crate::outln!("checkpoint: {}", out.join("model.bin").display())?;
    }
    Ok(())
}

fn read_data_dir(run: &std::path::Path) -> Option<PathBuf> {
    std::fs::read_to_string(run.join("data_dir.txt")).ok().map(|s| trimmed_path(std::path::Path::new(&s)))
}

/// A path as given, or without its surrounding white space when only that one exists (a
/// newline left by `$(cat file)`-style scripting or an edited data_dir.txt).
fn trimmed_path(p: &std::path::Path) -> PathBuf {
    if let Some(s) = p.to_str() {
        let t = s.trim();
        if t != s && !p.exists() && std::path::Path::new(t).exists() {
            return PathBuf::from(t);
        }
    }
    p.to_path_buf()
}

/// A resumed run continues with the settings it was started with (its learning-rate
/// schedule is laid out over its --steps): a flag that asks for another value is an error,
/// not silently ignored. The same value is accepted (re-running the original command line
/// with --resume).
fn check_resume_flags(a: &TrainArgs, o: &TrainOptions) -> Result<()> {
    fn differs<T: PartialEq + std::fmt::Display>(flag: &str, given: Option<T>, run: T, bad: &mut Vec<String>) {
        if let Some(g) = given.filter(|g| *g != run) {
            bad.push(format!("{flag} {g} (the run has {run})"));
        }
    }
    let mut bad = Vec::new();
    differs("--batch", a.batch, o.batch, &mut bad);
    differs("--seq", a.seq, o.seq, &mut bad);
    differs("--steps", a.steps, o.steps, &mut bad);
    differs("--lr", a.lr, o.lr, &mut bad);
    differs("--warmup", a.warmup, o.warmup, &mut bad);
    differs("--weight-decay", a.weight_decay, o.weight_decay, &mut bad);
    differs("--grad-clip", a.grad_clip, o.grad_clip, &mut bad);
    differs("--seed", a.seed, o.seed, &mut bad);
    differs("--eval-every", a.eval_every, o.eval_every, &mut bad);
    differs("--val-batches", a.val_batches, o.val_batches, &mut bad);
    differs("--sample-every", a.sample_every, o.sample_every, &mut bad);
    differs("--checkpoint-every", a.checkpoint_every, o.checkpoint_every, &mut bad);
    if !bad.is_empty() {
        bail!(
            "--resume continues a run with its own settings, which these flags would change: {}; \
             to train on with other settings, start a new run from its weights with `train --init DIR/model.bin`",
            bad.join(", ")
        );
    }
    Ok(())
}

pub fn report(dir: &std::path::Path) -> Result<()> {
    let (svg, md) = llm_trainer::report::report(dir)?;
    crate::outln!("wrote {} and {}", svg.display(), md.display())?;
    Ok(())
}
