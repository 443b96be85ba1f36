//! A training run: initialisation, steps, validation, samples, checkpoints and resume.
//!
//! A run directory holds:
//! - `model.bin`: the latest weights, an llm.c version-3 checkpoint (written atomically);
//! - `state.bin`: everything needed to continue exactly (options, step, PRNG, weights, AdamW
//!   moments), written atomically before model.bin, ending with a CRC-64 of all of it, and
//!   recording the CRC-64 of the model.bin it goes with (and of the one before). `--resume DIR`
//!   refuses a state.bin that fails its checksum or a model.bin that belongs to neither; a
//!   model.bin left one save behind (killed between the two renames) is rewritten from the state;
//! - `log.csv`: one row per step; `samples.md`: generated text at intervals;
//! - `run.json`: the configuration and a summary (read by `report`).

use crate::data;
use crate::gpt::{self, Activations};
use crate::io::{remove_stale_temporaries, write_atomic, write_atomic_with};
use crate::optim::{self, AdamW};
use anyhow::{Context, Result, bail};
use llm_engine::checkpoint::{self, LlmcConfig};
use llm_engine::{Kernels, Rng, SamplerConfig, Serial, Session, StopFilter, Tokenizer};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub batch: usize,
    pub seq: usize,
    pub steps: usize,
    pub lr: f32,
    pub min_lr_fraction: f32,
    pub warmup: usize,
    pub weight_decay: f32,
    pub grad_clip: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub seed: u64,
    pub eval_every: usize,
    pub val_batches: usize,
    pub sample_every: usize,
    pub sample_tokens: usize,
    pub checkpoint_every: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            batch: 16,
            seq: 128,
            steps: 1000,
            lr: 3e-3,
            min_lr_fraction: 0.1,
            warmup: 100,
            weight_decay: 0.1,
            grad_clip: 1.0,
            beta1: 0.9,
            beta2: 0.95,
            seed: 1337,
            eval_every: 100,
            val_batches: 16,
            sample_every: 500,
            sample_tokens: 200,
            checkpoint_every: 200,
        }
    }
}

/// A model's shape in a run's files: `LlmcConfig`'s fields by the engine's names (the run
/// files of older versions, with `layers`, `heads`, `channels`, `vocab`, `padded_vocab`, are
/// still read).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    #[serde(alias = "layers")]
    pub n_layers: usize,
    #[serde(alias = "heads")]
    pub n_heads: usize,
    #[serde(alias = "channels")]
    pub d_model: usize,
    pub context: usize,
    #[serde(alias = "vocab")]
    pub vocab_size: usize,
    #[serde(alias = "padded_vocab")]
    pub padded_vocab_size: usize,
}

impl Shape {
    pub fn config(&self) -> LlmcConfig {
        LlmcConfig {
            context: self.context,
            vocab_size: self.vocab_size,
            padded_vocab_size: self.padded_vocab_size,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            d_model: self.d_model,
        }
    }
    pub fn of(c: &LlmcConfig) -> Shape {
        Shape {
            n_layers: c.n_layers,
            n_heads: c.n_heads,
            d_model: c.d_model,
            context: c.context,
            vocab_size: c.vocab_size,
            padded_vocab_size: c.padded_vocab_size,
        }
    }
}

/// The resumable part of a run, stored at the front of state.bin as JSON.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct StateHeader {
    shape: Shape,
    options: TrainOptions,
    step: usize,
    rng_state: u64,
    elapsed_seconds: f64,
    /// CRC-64 of the model.bin written with this state (its header and these weights).
    model_crc: u64,
    /// CRC-64 of the model.bin of the save before (a kill between the renames leaves it).
    previous_model_crc: Option<u64>,
}

/// state.bin: magic, JSON length (u64 LE), JSON header, weights, m, v (f32 LE), then the
/// CRC-64/XZ of all the bytes before it (u64 LE).
const STATE_MAGIC: &[u8; 8] = b"LLMBMST2";
/// The first format (no checksum, no binding to model.bin).
const STATE_MAGIC_V1: &[u8; 8] = b"LLMBMST1";

/// The files of a run directory written atomically: a killed trainer can leave their temporaries.
const RUN_FILES: [&str; 4] = ["model.bin", "state.bin", "log.csv", "run.json"];

static CRC64: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_XZ);

/// A writer that passes bytes on and keeps their CRC-64.
struct Crc64Writer<'a, W: Write> {
    inner: W,
    digest: crc::Digest<'a, u64, crc::Table<16>>,
}

impl<W: Write> Write for Crc64Writer<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub struct StepStats {
    pub loss: f32,
    pub grad_norm: f32,
    pub lr: f32,
}

impl StepStats {
    /// A non-finite loss or gradient norm: the step was not applied (see `train_step`).
    pub fn diverged(&self) -> bool {
        !(self.loss.is_finite() && self.grad_norm.is_finite())
    }
}

/// The index of the first NaN or infinite value, if any.
pub fn first_non_finite(values: &[f32]) -> Option<usize> {
    use rayon::prelude::*;
    values.par_iter().position_first(|x| !x.is_finite())
}

pub struct Trainer {
    pub config: LlmcConfig,
    pub options: TrainOptions,
    pub params: Vec<f32>,
    grads: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    mask: Vec<bool>,
    /// Steps completed.
    pub step: usize,
    pub rng: Rng,
    acts: Activations,
    inputs: Vec<u32>,
    targets: Vec<u32>,
    /// Training time of earlier sessions of this run (resume adds to it).
    pub elapsed_before: f64,
    /// CRC-64 of the model.bin last written with (or resumed from) this run's state.
    model_crc: Option<u64>,
    /// Set by `resume` when it rewrote a stale or missing model.bin from state.bin.
    pub repaired_model: bool,
}

/// GPT-2 initialisation: N(0, 0.02) matrices, residual projections scaled by 1/sqrt(2L),
/// position embeddings N(0, 0.01), zero biases, unit LayerNorm gains, zero padding rows.
pub fn init_params(cfg: &LlmcConfig, rng: &mut Rng) -> Vec<f32> {
    let mut params = vec![0.0f32; cfg.num_parameters()];
    let proj_std = 0.02 / (2.0 * cfg.n_layers as f32).sqrt();
    let normal = |rng: &mut Rng| {
        let u1 = (rng.next_f32() as f64).max(1e-12);
        let u2 = rng.next_f32() as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    };
    {
        let mut t = gpt::split_mut(&mut params, cfg);
        for (i, tensor) in t.iter_mut().enumerate() {
            let std = match i {
                gpt::WTE | gpt::QKVW | gpt::FCW => 0.02,
                gpt::WPE => 0.01,
                gpt::ATTPROJW | gpt::FCPROJW => proj_std,
                gpt::LN1W | gpt::LN2W | gpt::LNFW => {
                    tensor.fill(1.0);
                    continue;
                }
                _ => continue, // biases stay 0
            };
            for x in tensor.iter_mut() {
                *x = std * normal(rng);
            }
        }
        t[gpt::WTE][cfg.vocab_size * cfg.d_model..].fill(0.0);
    }
    params
}

impl Trainer {
    /// A new run from random initialisation, or from `init` weights.
    pub fn new(config: LlmcConfig, options: TrainOptions, init: Option<Vec<f32>>) -> Result<Trainer> {
        config.validate().map_err(|e| anyhow::anyhow!("bad model shape: {e}"))?;
        check_options(&config, &options)?;
        let mut rng = Rng::new(options.seed);
        let params = match init {
            Some(p) => {
                if let Some(i) = first_non_finite(&p) {
                    bail!("the initial weights are non-finite (parameter {i} is {}): they cannot be trained", p[i]);
                }
                p
            }
            None => init_params(&config, &mut rng),
        };
        Ok(Trainer::assemble(config, options, params, None, 0, rng, 0.0))
    }

    fn assemble(
        config: LlmcConfig,
        options: TrainOptions,
        params: Vec<f32>,
        moments: Option<(Vec<f32>, Vec<f32>)>,
        step: usize,
        rng: Rng,
        elapsed_before: f64,
    ) -> Trainer {
        let n = params.len();
        let (m, v) = moments.unwrap_or_else(|| (vec![0.0; n], vec![0.0; n]));
        Trainer {
            acts: Activations::new(&config, options.batch, options.seq),
            mask: optim::decay_mask(&config),
            grads: vec![0.0; n],
            config,
            options,
            params,
            m,
            v,
            step,
            rng,
            inputs: Vec::new(),
            targets: Vec::new(),
            elapsed_before,
            model_crc: None,
            repaired_model: false,
        }
    }

    /// One optimisation step on a random batch of `train`. When the loss or the gradient norm
    /// is not finite ([`StepStats::diverged`]) nothing is applied: the weights, moments, step
    /// and PRNG stay as they were.
    pub fn train_step(&mut self, train: &[u16]) -> StepStats {
        let o = &self.options;
        let rng_before = self.rng.state();
        data::random_batch(&mut self.rng, train, o.batch, o.seq, &mut self.inputs, &mut self.targets);
        let loss = gpt::forward(&self.config, &self.params, &mut self.acts, &self.inputs, &self.targets);
        self.grads.fill(0.0);
        gpt::backward(&self.config, &self.params, &mut self.grads, &mut self.acts, &self.inputs, &self.targets);
        let norm = optim::grad_norm(&self.grads);
        let scale = if o.grad_clip > 0.0 && norm > o.grad_clip { o.grad_clip / norm } else { 1.0 };
        let lr = optim::learning_rate(self.step, o.lr, o.warmup, o.steps, o.min_lr_fraction);
        let stats = StepStats { loss, grad_norm: norm, lr };
        if stats.diverged() {
            self.rng = Rng::from_state(rng_before);
            return stats;
        }
        let adam = AdamW { beta1: o.beta1, beta2: o.beta2, eps: 1e-8, weight_decay: o.weight_decay };
        self.step += 1;
        adam.update(&mut self.params, &self.grads, &mut self.m, &mut self.v, &self.mask, lr, self.step, scale);
        stats
    }

    /// Mean loss over fixed batches (each (B, T) of this run's shape).
    pub fn evaluate(&mut self, batches: &[(Vec<u32>, Vec<u32>)]) -> f32 {
        let mut sum = 0.0f64;
        for (inp, tgt) in batches {
            sum += gpt::forward(&self.config, &self.params, &mut self.acts, inp, tgt) as f64;
        }
        (sum / batches.len().max(1) as f64) as f32
    }

    /// Text from the current weights, generated by the inference engine itself.
    pub fn sample(&self, prompt: &[u8], tokens: usize, seed: u64) -> String {
        let model = checkpoint::model_from_params(&self.config, &self.params).expect("validated config");
        let sampling = SamplerConfig { temperature: 0.8, top_k: 40, top_p: 0.95, ..SamplerConfig::default() };
        let mut session = Session::new(&model, Kernels::detect(), sampling, seed);
        let prompt: Vec<u32> = prompt.iter().map(|&b| b as u32).collect();
        let mut out = Vec::new();
        if session.feed(&prompt, &Serial).is_ok() {
            let _ = session.generate(&Tokenizer::Bytes, tokens, &mut StopFilter::none(), &Serial, &mut |b| {
                out.extend_from_slice(b);
                true
            });
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Writes state.bin then model.bin, each atomically (see the module comment for why this
    /// order). Non-finite weights are never written.
    pub fn save(&mut self, dir: &Path, elapsed_now: f64) -> Result<()> {
        if let Some(i) = first_non_finite(&self.params) {
            bail!("not saving step {}: parameter {i} is {} (the run diverged)", self.step, self.params[i]);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let header = checkpoint::encode_header(&self.config, checkpoint::VERSION_FP32);
        let model_crc = {
            let mut d = CRC64.digest();
            d.update(&header);
            d.update(checkpoint::f32_bytes(&self.params));
            d.finalize()
        };
        let state = StateHeader {
            shape: Shape::of(&self.config),
            options: self.options.clone(),
            step: self.step,
            rng_state: self.rng.state(),
            elapsed_seconds: self.elapsed_before + elapsed_now,
            model_crc,
            previous_model_crc: self.model_crc,
        };
        let json = serde_json::to_vec(&state)?;
        write_atomic_with(&dir.join("state.bin"), |w| {
            let mut w = Crc64Writer { inner: w, digest: CRC64.digest() };
            w.write_all(STATE_MAGIC)?;
            w.write_all(&(json.len() as u64).to_le_bytes())?;
            w.write_all(&json)?;
            for buf in [&self.params, &self.m, &self.v] {
                w.write_all(checkpoint::f32_bytes(buf))?;
            }
            let crc = w.digest.finalize();
            w.inner.write_all(&crc.to_le_bytes())
        })?;
        self.write_model(dir, &header)?;
        self.model_crc = Some(model_crc);
        Ok(())
    }

    fn write_model(&self, dir: &Path, header: &[u8]) -> Result<()> {
        write_atomic_with(&dir.join("model.bin"), |w| {
            w.write_all(header)?;
            w.write_all(checkpoint::f32_bytes(&self.params))
        })
    }

    /// Continues a run from DIR/state.bin, after checking its checksum and that DIR/model.bin
    /// is the one saved with it.
    pub fn resume(dir: &Path) -> Result<Trainer> {
        remove_stale_temporaries(dir, &RUN_FILES);
        let path = dir.join("state.bin");
        let bytes = std::fs::read(&path).with_context(|| format!("cannot resume: cannot read {}", path.display()))?;
        let bad = |why: &str| anyhow::anyhow!("cannot resume: {} is corrupt ({why})", path.display());
        if bytes.len() >= 8 && &bytes[..8] == STATE_MAGIC_V1 {
            bail!(
                "cannot resume: {} was written by an older version of llm-baremetal (an older format, without a checksum), \
                 which this version does not resume; start a new run from its weights with `train --init {}`",
                path.display(),
                dir.join("model.bin").display()
            );
        }
        if bytes.len() < 24 || &bytes[..8] != STATE_MAGIC {
            return Err(bad("bad magic"));
        }
        let (content, stored) = bytes.split_at(bytes.len() - 8);
        if CRC64.checksum(content) != u64::from_le_bytes(stored.try_into().unwrap()) {
            return Err(bad("checksum mismatch: the file was damaged or truncated"));
        }
        let jlen = u64::from_le_bytes(content[8..16].try_into().unwrap()) as usize;
        let json = content.get(16..16usize.saturating_add(jlen)).ok_or_else(|| bad("truncated header"))?;
        let st: StateHeader = serde_json::from_slice(json).map_err(|e| bad(&e.to_string()))?;
        let config = st.shape.config();
        config.validate().map_err(|e| bad(&e.to_string()))?;
        let n = config.num_parameters();
        let body = &content[16 + jlen..];
        if body.len() != 3 * 4 * n {
            return Err(bad(&format!("expected {} bytes of weights and moments, found {}", 12 * n, body.len())));
        }
        let floats: Vec<f32> = body.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let (p, rest) = floats.split_at(n);
        let (m, v) = rest.split_at(n);
        check_options(&config, &st.options)?;
        if let Some(i) = first_non_finite(p) {
            return Err(bad(&format!("parameter {i} is {}", p[i])));
        }
        let mut t = Trainer::assemble(
            config,
            st.options,
            p.to_vec(),
            Some((m.to_vec(), v.to_vec())),
            st.step,
            Rng::from_state(st.rng_state),
            st.elapsed_seconds,
        );
        t.model_crc = Some(st.model_crc);
        // model.bin must be the one saved with this state; one save behind (killed between
        // writing state.bin and model.bin) or missing, it is rewritten from the state.
        let model_path = dir.join("model.bin");
        let header = checkpoint::encode_header(&config, checkpoint::VERSION_FP32);
        match std::fs::read(&model_path) {
            Ok(model) => {
                let crc = CRC64.checksum(&model);
                if crc != st.model_crc {
                    if Some(crc) != st.previous_model_crc {
                        bail!(
                            "cannot resume: {} does not belong to {} (step {}): it is not the model.bin saved with it; \
                             move it away to resume (model.bin is then rewritten from state.bin), or start a new run from it with `train --init`",
                            model_path.display(),
                            path.display(),
                            st.step
                        );
                    }
                    t.write_model(dir, &header)?;
                    t.repaired_model = true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                t.write_model(dir, &header)?;
                t.repaired_model = true;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot resume: cannot read {}", model_path.display())),
        }
        Ok(t)
    }
}

fn check_options(cfg: &LlmcConfig, o: &TrainOptions) -> Result<()> {
    if o.batch == 0 || o.seq == 0 {
        bail!("--batch and --seq must be at least 1");
    }
    if o.seq > cfg.context {
        bail!("--seq {} is longer than the model's context {}", o.seq, cfg.context);
    }
    if !(o.lr > 0.0 && o.lr.is_finite()) {
        bail!("--lr must be a positive number");
    }
    if o.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if o.weight_decay.is_nan() || o.weight_decay < 0.0 || o.grad_clip.is_nan() || o.grad_clip < 0.0 {
        bail!("--weight-decay and --grad-clip must be >= 0");
    }
    Ok(())
}

/// What a finished (or interrupted) run reports.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RunSummary {
    pub command: String,
    pub shape: Shape,
    pub parameters: usize,
    pub options: TrainOptions,
    pub threads: usize,
    pub steps_done: usize,
    pub train_seconds: f64,
    pub tokens_per_second: f64,
    pub final_train_loss: f32,
    pub best_val_loss: Option<f32>,
    /// Validation loss over the whole validation split at the end.
    pub full_val_loss: Option<f32>,
    pub interrupted: bool,
}

pub struct RunInputs<'a> {
    pub data_dir: &'a Path,
    pub out_dir: &'a Path,
    pub command: String,
    pub interrupt: &'a AtomicBool,
    pub progress: bool,
    /// Stop (saving) after this many steps in this session: for tests of resume.
    pub halt_after: Option<usize>,
}

pub fn load_split(data_dir: &Path, seq: usize, vocab: usize) -> Result<(Vec<u16>, Vec<u16>)> {
    let train = data::read_token_file(&data_dir.join("train.bin"))?;
    let val = data::read_token_file(&data_dir.join("val.bin"))?;
    for (name, t) in [("train.bin", &train), ("val.bin", &val)] {
        if t.len() < seq + 2 {
            bail!(
                "{} has {} tokens, too few for sequences of {seq}: at least {} are needed (--seq + 2)",
                data_dir.join(name).display(),
                t.len(),
                seq + 2
            );
        }
        if let Some(&bad) = t.iter().find(|&&x| x as usize >= vocab) {
            bail!("{} contains token {bad}, outside the model's vocabulary of {vocab}", data_dir.join(name).display());
        }
    }
    Ok((train, val))
}

/// Runs (or continues) training until `options.steps`, Ctrl-C, or `halt_after`.
pub fn run(mut trainer: Trainer, io: RunInputs) -> Result<RunSummary> {
    let o = trainer.options.clone();
    let (train, val) = load_split(io.data_dir, o.seq, trainer.config.vocab_size)?;
    let val_set = data::sequential_batches(&val, o.batch, o.seq, None);
    if val_set.is_empty() {
        bail!(
            "the validation split {} has {} tokens, too few for one batch of {} x {}: at least {} are needed (--batch x --seq + 1)",
            io.data_dir.join("val.bin").display(),
            val.len(),
            o.batch,
            o.seq,
            o.batch * o.seq + 1
        );
    }
    // A fixed subset spread over the split, for the periodic estimate.
    let stride = (val_set.len() / o.val_batches.max(1)).max(1);
    let val_quick: Vec<_> = val_set.iter().step_by(stride).take(o.val_batches.max(1)).cloned().collect();
    std::fs::create_dir_all(io.out_dir).with_context(|| format!("cannot create {}", io.out_dir.display()))?;
    remove_stale_temporaries(io.out_dir, &RUN_FILES);
    let log_path = io.out_dir.join("log.csv");
    let mut log = open_log(&log_path, trainer.step)?;
    let mut samples = std::fs::OpenOptions::new().create(true).append(true).open(io.out_dir.join("samples.md"))?;

    let threads = rayon::current_num_threads();
    let tokens_per_step = (o.batch * o.seq) as f64;
    let bar = if io.progress { Some(crate::progress::bar(trainer.step, o.steps)) } else { None };
    let start = Instant::now();
    let start_step = trainer.step;
    let mut best_val: Option<f32> = None;
    let mut last_val: Option<f32> = None;
    let mut last_loss = f32::NAN;
    let mut interrupted = false;
    let mut done_here = 0;
    let mut saved_step: Option<usize> = None;
    while trainer.step < o.steps {
        if io.interrupt.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if io.halt_after.is_some_and(|h| done_here >= h) {
            break;
        }
        let t0 = Instant::now();
        let s = trainer.train_step(&train);
        // A diverged run stops without saving: the last checkpoint written stays as it was.
        let kept = || match saved_step {
            Some(k) => format!("{} keeps the checkpoint of step {k}", io.out_dir.display()),
            None if io.out_dir.join("state.bin").exists() => format!("{} keeps its last checkpoint", io.out_dir.display()),
            None => "no checkpoint was written".to_string(),
        };
        if s.diverged() {
            bail!(
                "training diverged at step {} (train loss {}, gradient norm {}): stopped without saving; {}: try a lower --lr",
                trainer.step + 1,
                s.loss,
                s.grad_norm,
                kept()
            );
        }
        if let Some(i) = first_non_finite(&trainer.params) {
            bail!(
                "training diverged at step {}: the update made parameter {i} {}: stopped without saving; {}: try a lower --lr",
                trainer.step,
                trainer.params[i],
                kept()
            );
        }
        let dt = t0.elapsed().as_secs_f64();
        done_here += 1;
        last_loss = s.loss;
        let step = trainer.step;
        let mut val_cell = String::new();
        if step.is_multiple_of(o.eval_every.max(1)) || step == o.steps {
            let vl = trainer.evaluate(&val_quick);
            if !vl.is_finite() {
                bail!(
                    "training diverged at step {step} (validation loss {vl}, train loss {}): stopped without saving; {}: try a lower --lr",
                    s.loss,
                    kept()
                );
            }
            best_val = Some(best_val.map_or(vl, |b: f32| b.min(vl)));
            last_val = Some(vl);
            val_cell = format!("{vl:.6}");
        }
        let elapsed = trainer.elapsed_before + start.elapsed().as_secs_f64();
        writeln!(log, "{step},{:.6},{val_cell},{:.6e},{:.6},{:.1},{:.3}", s.loss, s.lr, s.grad_norm, tokens_per_step / dt, elapsed)?;
        if o.sample_every > 0 && (step.is_multiple_of(o.sample_every) || step == o.steps) {
            let text = trainer.sample(b"\n", o.sample_tokens, o.seed);
            writeln!(samples, "## step {step}\n\n```\n{text}\n```\n")?;
        }
        if step.is_multiple_of(o.checkpoint_every.max(1)) {
            log.flush()?;
            trainer.save(io.out_dir, start.elapsed().as_secs_f64())?;
            saved_step = Some(step);
        }
        if let Some(b) = &bar {
            let tps = (step - start_step) as f64 * tokens_per_step / start.elapsed().as_secs_f64();
            crate::progress::update(b, step, s.loss, last_val, tps);
        }
    }
    log.flush()?;
    let session_seconds = start.elapsed().as_secs_f64();
    trainer.save(io.out_dir, session_seconds)?;
    if let Some(b) = &bar {
        b.finish();
    }
    let finished = trainer.step >= o.steps;
    let full_val = if finished { Some(trainer.evaluate(&val_set)) } else { None };
    let steps_here = trainer.step - start_step;
    let summary = RunSummary {
        command: io.command,
        shape: Shape::of(&trainer.config),
        parameters: trainer.config.num_parameters(),
        options: o,
        threads,
        steps_done: trainer.step,
        train_seconds: trainer.elapsed_before + session_seconds,
        tokens_per_second: steps_here as f64 * tokens_per_step / session_seconds.max(1e-9),
        final_train_loss: last_loss,
        best_val_loss: merge_best(io.out_dir, best_val),
        full_val_loss: full_val,
        interrupted,
    };
    write_atomic(&io.out_dir.join("run.json"), &serde_json::to_vec_pretty(&summary)?)?;
    Ok(summary)
}

/// The best validation loss in the whole log (earlier sessions included).
fn merge_best(dir: &Path, here: Option<f32>) -> Option<f32> {
    let mut best = here;
    if let Ok(rows) = crate::report::read_log(&dir.join("log.csv")) {
        for r in rows {
            if let Some(v) = r.val_loss {
                best = Some(best.map_or(v, |b| b.min(v)));
            }
        }
    }
    best
}

/// Opens log.csv for appending, dropping rows beyond `step` (a resume after a crash).
fn open_log(path: &PathBuf, step: usize) -> Result<std::fs::File> {
    const HEADER: &str = "step,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s";
    let keep: Vec<String> = match std::fs::read_to_string(path) {
        Ok(text) if step > 0 => text
            .lines()
            .skip(1)
            .filter(|l| l.split(',').next().and_then(|s| s.parse::<usize>().ok()).is_some_and(|s| s <= step))
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    let mut text = String::from(HEADER);
    text.push('\n');
    for l in keep {
        text.push_str(&l);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())?;
    Ok(std::fs::OpenOptions::new().append(true).open(path)?)
}
