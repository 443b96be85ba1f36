//! The GPT-2 forward pass with a KV cache, in the style of llama2.c's `run.c`.
//!
//! Letters: L = layers, NH = heads, C = channels, hs = C / NH (head size), V = vocabulary,
//! Vp = padded vocabulary, maxT = context length, N = rows (tokens) processed in one call.
//!
//! A call to [`Model::forward`] runs N tokens at positions pos0..pos0+N through every layer,
//! appending their keys and values to the cache, and leaves the logits of the last one.
//! Prefill is one call with the whole prompt; decoding is one call per token. Both give the
//! same numbers because every kernel computes each output element in one fixed order.

use crate::checkpoint::{self, Checkpoint, CheckpointError, Config};
use crate::kernels::{self, KernelSet};
use crate::parallel::{Parallel, Serial, SharedMut};
use alloc::borrow::Cow;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Errors of a forward call: bad input from the caller, never a malformed model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    TokenOutOfRange { token: u32, vocab: usize },
    ContextOverflow { needed: usize, max: usize },
    EmptyInput,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::TokenOutOfRange { token, vocab } => {
                write!(f, "token {token} is outside the model's vocabulary of {vocab}")
            }
            EngineError::ContextOverflow { needed, max } => {
                write!(f, "{needed} positions needed but the model's context is {max}")
            }
            EngineError::EmptyInput => write!(f, "no tokens to process"),
        }
    }
}

/// The weights: views into one flat parameter array in checkpoint order.
pub struct Model<'a> {
    pub config: Config,
    params: Cow<'a, [f32]>,
    offsets: [usize; checkpoint::NUM_TENSORS],
    sizes: [usize; checkpoint::NUM_TENSORS],
}

// Indices into the tensor table (file order).
const WTE: usize = 0;
const WPE: usize = 1;
const LN1W: usize = 2;
const LN1B: usize = 3;
const QKVW: usize = 4;
const QKVB: usize = 5;
const ATTPROJW: usize = 6;
const ATTPROJB: usize = 7;
const LN2W: usize = 8;
const LN2B: usize = 9;
const FCW: usize = 10;
const FCB: usize = 11;
const FCPROJW: usize = 12;
const FCPROJB: usize = 13;
const LNFW: usize = 14;
const LNFB: usize = 15;

impl<'a> Model<'a> {
    pub fn new(ckpt: Checkpoint<'a>) -> Model<'a> {
        let config = ckpt.config;
        Model { config, params: ckpt.params, offsets: config.tensor_offsets(), sizes: config.tensor_sizes() }
    }

    /// Parses and wraps checkpoint bytes (zero-copy for aligned fp32 files).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>, CheckpointError> {
        Ok(Model::new(checkpoint::parse(bytes)?))
    }

    /// Builds a model from owned parameters (used by the trainer and tests).
    pub fn from_params(config: Config, params: Vec<f32>) -> Result<Model<'static>, CheckpointError> {
        config.validate()?;
        assert_eq!(params.len(), config.num_parameters(), "parameter count must match the config");
        Ok(Model { config, params: Cow::Owned(params), offsets: config.tensor_offsets(), sizes: config.tensor_sizes() })
    }

    pub fn params(&self) -> &[f32] {
        &self.params
    }

    fn tensor(&self, i: usize) -> &[f32] {
        &self.params[self.offsets[i]..self.offsets[i] + self.sizes[i]]
    }

    /// Layer `l`'s slice of a per-layer tensor.
    fn layer(&self, i: usize, l: usize) -> &[f32] {
        let per = self.sizes[i] / self.config.num_layers;
        &self.params[self.offsets[i] + l * per..self.offsets[i] + (l + 1) * per]
    }

    /// Runs `tokens` at positions pos0.. and returns the logits (V) of the last one.
    pub fn forward<'s>(&self, s: &'s mut RunState, tokens: &[u32], pos0: usize) -> Result<&'s [f32], EngineError> {
        self.forward_with(s, tokens, pos0, &Serial)
    }

    /// As [`Model::forward`], splitting the matrix work across `par`'s workers. The result
    /// is identical for any number of workers.
    pub fn forward_with<'s>(
        &self,
        s: &'s mut RunState,
        tokens: &[u32],
        pos0: usize,
        par: &dyn Parallel,
    ) -> Result<&'s [f32], EngineError> {
        let n = self.forward_hidden(s, tokens, pos0, par)?;
        let c = self.config.channels;
        let last = &s.x[(n - 1) * c..n * c];
        kernels::layernorm(&mut s.xn[..c], last, self.tensor(LNFW), self.tensor(LNFB));
        self.logits(s, par);
        Ok(&s.logits)
    }

    /// Logits (N, V) for every token of `tokens`, as one prefill: for tests and evaluation.
    pub fn forward_all(&self, s: &mut RunState, tokens: &[u32], pos0: usize) -> Result<Vec<f32>, EngineError> {
        let n = self.forward_hidden(s, tokens, pos0, &Serial)?;
        let (c, v) = (self.config.channels, self.config.vocab_size);
        let mut all = vec![0.0; n * v];
        for t in 0..n {
            let row = s.x[t * c..(t + 1) * c].to_vec();
            kernels::layernorm(&mut s.xn[..c], &row, self.tensor(LNFW), self.tensor(LNFB));
            self.logits(s, &Serial);
            all[t * v..(t + 1) * v].copy_from_slice(&s.logits);
        }
        Ok(all)
    }

    /// logits (V) = xn[0] (C) @ wte[..V] (V, C)^T: the tied embedding, real vocabulary only.
    fn logits(&self, s: &mut RunState, par: &dyn Parallel) {
        let (c, v) = (self.config.channels, self.config.vocab_size);
        let wte = &self.tensor(WTE)[..v * c];
        par_matmul(par, s.kernels, &mut s.logits, &s.xn[..c], wte, None, c, v);
    }

    /// Every layer for N tokens; leaves the residual stream in s.x (N, C). Returns N.
    fn forward_hidden(&self, s: &mut RunState, tokens: &[u32], pos0: usize, par: &dyn Parallel) -> Result<usize, EngineError> {
        let cfg = self.config;
        let (c, nh, maxt) = (cfg.channels, cfg.num_heads, cfg.max_seq_len);
        let n = tokens.len();
        if n == 0 {
            return Err(EngineError::EmptyInput);
        }
        if pos0 + n > maxt {
            return Err(EngineError::ContextOverflow { needed: pos0 + n, max: maxt });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(EngineError::TokenOutOfRange { token: bad, vocab: cfg.vocab_size });
        }
        let k = s.kernels;

        // Embedding: x[t] = wte[token] + wpe[pos0 + t].
        let (wte, wpe) = (self.tensor(WTE), self.tensor(WPE));
        for (t, &tok) in tokens.iter().enumerate() {
            let te = &wte[tok as usize * c..(tok as usize + 1) * c];
            let pe = &wpe[(pos0 + t) * c..(pos0 + t + 1) * c];
            for (i, x) in s.x[t * c..(t + 1) * c].iter_mut().enumerate() {
                *x = te[i] + pe[i];
            }
        }

        let x = &mut s.x[..n * c];
        let xn = &mut s.xn[..n * c];
        let qkv = &mut s.qkv[..n * 3 * c];
        let atty = &mut s.atty[..n * c];
        let fch = &mut s.fch[..n * 4 * c];
        for l in 0..cfg.num_layers {
            // Attention block: xn = LN1(x); qkv = xn @ qkvw^T; x += attproj(attention(qkv)).
            layernorm_rows(xn, x, self.layer(LN1W, l), self.layer(LN1B, l), c);
            par_matmul(par, k, qkv, xn, self.layer(QKVW, l), Some(self.layer(QKVB, l)), c, 3 * c);
            let cache = l * maxt * c;
            for t in 0..n {
                let at = cache + (pos0 + t) * c;
                s.key_cache[at..at + c].copy_from_slice(&qkv[t * 3 * c + c..t * 3 * c + 2 * c]);
                s.value_cache[at..at + c].copy_from_slice(&qkv[t * 3 * c + 2 * c..t * 3 * c + 3 * c]);
            }
            let keys = &s.key_cache[cache..cache + maxt * c];
            let values = &s.value_cache[cache..cache + maxt * c];
            attention(par, k, atty, qkv, keys, values, &mut s.att, pos0, nh, c);
            par_matmul(par, k, xn, atty, self.layer(ATTPROJW, l), Some(self.layer(ATTPROJB, l)), c, c);
            kernels::residual_add(x, xn);

            // MLP block: x += fcproj(gelu(fc(LN2(x)))).
            layernorm_rows(xn, x, self.layer(LN2W, l), self.layer(LN2B, l), c);
            par_matmul(par, k, fch, xn, self.layer(FCW, l), Some(self.layer(FCB, l)), c, 4 * c);
            kernels::gelu(fch);
            par_matmul(par, k, xn, fch, self.layer(FCPROJW, l), Some(self.layer(FCPROJB, l)), 4 * c, c);
            kernels::residual_add(x, xn);
        }
        Ok(n)
    }
}

/// out (N, C) = LayerNorm of each row of x (N, C).
fn layernorm_rows(out: &mut [f32], x: &[f32], w: &[f32], b: &[f32], c: usize) {
    for (o, xr) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        kernels::layernorm(o, xr, w, b);
    }
}

/// The matmul split across workers, by rows (prefill) or by output columns (decode): each
/// output element is computed by exactly one worker in the canonical order, so the split
/// never changes the result.
#[allow(clippy::too_many_arguments)]
fn par_matmul(par: &dyn Parallel, k: KernelSet, out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    let workers = par.workers();
    let n = x.len() / ic;
    if workers <= 1 || n * oc * ic < par.grain() {
        k.matmul(out, x, w, bias, ic, oc);
        return;
    }
    let out_ptr = SharedMut(out.as_mut_ptr());
    // Prefill with rows to spare: whole rows per worker, in pairs (the kernels' row blocking).
    if n >= 4 * workers {
        let rows = n.div_ceil(workers).next_multiple_of(2);
        par.run(n.div_ceil(rows), &|task| {
            let (r0, r1) = (task * rows, ((task + 1) * rows).min(n));
            // SAFETY: tasks write disjoint row ranges of `out`.
            let o = unsafe { core::slice::from_raw_parts_mut(out_ptr.get().add(r0 * oc), (r1 - r0) * oc) };
            k.matmul(o, &x[r0 * ic..r1 * ic], w, bias, ic, oc);
        });
        return;
    }
    // Decode: column blocks of a multiple of 4 outputs (the AVX2 kernel's row group).
    let block = oc.div_ceil(workers).next_multiple_of(4);
    let tasks = oc.div_ceil(block);
    par.run(tasks, &|task| {
        let o0 = task * block;
        let o1 = (o0 + block).min(oc);
        let w_blk = &w[o0 * ic..o1 * ic];
        let b_blk = bias.map(|b| &b[o0..o1]);
        for r in 0..n {
            // Each worker writes only columns o0..o1 of each row: disjoint regions.
            // SAFETY: rows and column ranges are disjoint between tasks and within `out`.
            let orow = unsafe { core::slice::from_raw_parts_mut(out_ptr.get().add(r * oc + o0), o1 - o0) };
            let xr = &x[r * ic..(r + 1) * ic];
            k.matmul(orow, xr, w_blk, b_blk, ic, o1 - o0);
        }
    });
}

/// Causal self-attention for N query rows at positions pos0.., split by heads.
/// out (N, C); qkv (N, 3C) holds q | k | v; keys/values (maxT, C) hold every position so far.
#[allow(clippy::too_many_arguments)]
fn attention(
    par: &dyn Parallel,
    k: KernelSet,
    out: &mut [f32],
    qkv: &[f32],
    keys: &[f32],
    values: &[f32],
    att: &mut [f32],
    pos0: usize,
    nh: usize,
    c: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / libm::sqrtf(hs as f32);
    let n = out.len() / c;
    let maxt = keys.len() / c;
    let one_head = |t: usize, h: usize, out_h: &mut [f32], att: &mut [f32]| {
        let p = pos0 + t;
        let q = &qkv[t * 3 * c + h * hs..t * 3 * c + (h + 1) * hs];
        let att = &mut att[..=p];
        for (sidx, a) in att.iter_mut().enumerate() {
            *a = k.dot(q, &keys[sidx * c + h * hs..sidx * c + (h + 1) * hs]) * scale;
        }
        kernels::softmax(att);
        out_h.fill(0.0);
        for (sidx, &a) in att.iter().enumerate() {
            k.axpy(out_h, a, &values[sidx * c + h * hs..sidx * c + (h + 1) * hs]);
        }
    };
    let workers = par.workers();
    if workers <= 1 || nh == 1 || n * (pos0 + n) * c < par.grain() {
        for t in 0..n {
            for h in 0..nh {
                one_head(t, h, &mut out[t * c + h * hs..t * c + (h + 1) * hs], att);
            }
        }
        return;
    }
    // One task per head; each has its own score row in `att` (sized NH * maxT).
    let out_ptr = SharedMut(out.as_mut_ptr());
    let att_ptr = SharedMut(att.as_mut_ptr());
    par.run(nh, &|h| {
        // SAFETY: head h owns columns h*hs..(h+1)*hs of every row and att row h.
        let att_h = unsafe { core::slice::from_raw_parts_mut(att_ptr.get().add(h * maxt), maxt) };
        for t in 0..n {
            let out_h = unsafe { core::slice::from_raw_parts_mut(out_ptr.get().add(t * c + h * hs), hs) };
            one_head(t, h, out_h, att_h);
        }
    });
}

/// Every activation buffer and the KV cache, allocated once per session from the config.
pub struct RunState {
    pub kernels: KernelSet,
    x: Vec<f32>,           // (maxT, C) residual stream
    xn: Vec<f32>,          // (maxT, C) LayerNorm / projection output
    qkv: Vec<f32>,         // (maxT, 3C)
    atty: Vec<f32>,        // (maxT, C) attention output before projection
    fch: Vec<f32>,         // (maxT, 4C) MLP hidden
    att: Vec<f32>,         // (NH, maxT) attention scores, one row per head
    key_cache: Vec<f32>,   // (L, maxT, C)
    value_cache: Vec<f32>, // (L, maxT, C)
    logits: Vec<f32>,      // (V)
}

impl RunState {
    pub fn new(config: &Config, kernels: KernelSet) -> RunState {
        let (t, c) = (config.max_seq_len, config.channels);
        RunState {
            kernels,
            x: vec![0.0; t * c],
            xn: vec![0.0; t * c],
            qkv: vec![0.0; t * 3 * c],
            atty: vec![0.0; t * c],
            fch: vec![0.0; t * 4 * c],
            att: vec![0.0; config.num_heads * t],
            key_cache: vec![0.0; config.num_layers * t * c],
            value_cache: vec![0.0; config.num_layers * t * c],
            logits: vec![0.0; config.vocab_size],
        }
    }

    /// Bytes this state occupies (for the firmware's memory check and `inspect`).
    pub fn bytes_needed(config: &Config) -> usize {
        let (t, c) = (config.max_seq_len, config.channels);
        4 * (t * c * 4 + t * 3 * c + t * 4 * c + config.num_heads * t + 2 * config.num_layers * t * c + config.vocab_size)
    }

    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    pub fn logits_mut(&mut self) -> &mut [f32] {
        &mut self.logits
    }
}

impl core::error::Error for EngineError {}
