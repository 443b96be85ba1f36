//! The forward pass of every supported family, in the style of llama2.c's `run.c`: the spec
//! and the named weights come from a loader, the run state is built by the model, and one
//! forward function reads the spec's switches (no graph, no per-family copy).
//!
//! Letters: N = rows (tokens) in one chunk, C = d_model, Q = NH*hd (query width), K = NKV*hd
//! (key/value width), F = ffn_dim, V = vocabulary, T = the state's context, B = the state's
//! batch (the most rows computed at once).
//!
//! A call to [`Model::forward`] runs tokens at positions pos0.. through every layer (in
//! chunks of at most B rows), appending their keys and values to the cache, and leaves the
//! logits of the last one. Prefill is one call with the whole prompt; decoding is one call
//! per token. Both give the same numbers because every kernel computes each output element in
//! one fixed order, whatever the batching or the number of workers.

use crate::kernels::Kernels;
use crate::layers::{self, AttnShape};
use crate::parallel::{Parallel, Serial, SharedMut};
use crate::quant::q8::Q8Buf;
use crate::spec::{Mlp, ModelSpec, Norm, NormKind, Positions, SpecError};
use crate::tensor::{MatData, MatRef, NonFiniteAt};
use crate::weights::{NormWeights, Weights, WeightsError};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Errors of a forward call: bad input from the caller, never a malformed model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    TokenOutOfRange {
        token: u32,
        vocab: usize,
    },
    ContextOverflow {
        needed: usize,
        max: usize,
    },
    EmptyInput,
    /// The run state was built for a model of another shape.
    StateMismatch,
    /// A context of 0 or longer than the model supports was asked for.
    BadContext {
        asked: usize,
        max: usize,
    },
    /// The forward pass produced NaN or an infinity (numbers overflowed, or weights the
    /// load-time check could not see): there is no token to sample.
    NonFiniteLogits {
        /// The first token whose logit is not finite.
        token: usize,
    },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::TokenOutOfRange { token, vocab } => {
                write!(f, "token {token} is outside the model's vocabulary of {vocab}")
            }
            EngineError::ContextOverflow { needed, max } => {
                write!(f, "{needed} positions needed but the context is {max}")
            }
            EngineError::EmptyInput => write!(f, "no tokens to process"),
            EngineError::StateMismatch => write!(f, "this run state was built for a model of another shape"),
            EngineError::BadContext { asked, max } => write!(f, "context {asked} is not between 1 and the model's {max}"),
            EngineError::NonFiniteLogits { token } => {
                write!(f, "the model computed a non-finite logit (NaN or infinity) for token {token}: no token can be sampled")
            }
        }
    }
}

impl core::error::Error for EngineError {}

/// A spec and weights that do not make a model.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelError {
    Spec(SpecError),
    Weights(WeightsError),
    /// A weight tensor holds NaN or an infinity (a diverged or corrupted model): it would
    /// only ever produce garbage, so it is refused at load.
    NonFinite {
        /// The tensor's name in the file.
        tensor: String,
        at: NonFiniteAt,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Spec(e) => e.fmt(f),
            ModelError::Weights(e) => e.fmt(f),
            ModelError::NonFinite { tensor, at } => {
                write!(f, "non-finite values in tensor {tensor}: ")?;
                match at {
                    NonFiniteAt::Element(i) => write!(f, "element {i} is NaN or infinite"),
                    NonFiniteAt::BlockScale(i) => write!(f, "the scale of block {i} is NaN or infinite"),
                }
            }
        }
    }
}

impl core::error::Error for ModelError {}

impl ModelError {
    /// Checks little-endian data of `btype` (a whole tensor, or a slice of one) for NaN and
    /// infinities; the error names `tensor`.
    pub(crate) fn check_finite(tensor: &str, btype: crate::tensor::DType, data: &[u8]) -> Result<(), ModelError> {
        match crate::tensor::first_non_finite(btype, data) {
            None => Ok(()),
            Some(at) => Err(ModelError::NonFinite { tensor: String::from(tensor), at }),
        }
    }
}

/// A model: a valid spec and weights of exactly the shapes it asks for.
pub struct Model<'a> {
    spec: ModelSpec,
    weights: Weights<'a>,
}

/// The most rows one chunk of a prefill computes (bounds the activation buffers).
pub const MAX_BATCH: usize = 128;

impl<'a> Model<'a> {
    pub fn new(spec: ModelSpec, weights: Weights<'a>) -> Result<Model<'a>, ModelError> {
        spec.validate().map_err(ModelError::Spec)?;
        weights.check(&spec).map_err(ModelError::Weights)?;
        Ok(Model { spec, weights })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn weights(&self) -> &Weights<'a> {
        &self.weights
    }

    /// The run state for this model with its full context.
    pub fn new_state(&self, kernels: Kernels) -> RunState {
        RunState::new(self.dims(self.spec.context), kernels)
    }

    /// The run state with a shorter context (bounds the KV cache of long-context models).
    pub fn new_state_with_context(&self, kernels: Kernels, context: usize) -> Result<RunState, EngineError> {
        if context == 0 || context > self.spec.context {
            return Err(EngineError::BadContext { asked: context, max: self.spec.context });
        }
        Ok(RunState::new(self.dims(context), kernels))
    }

    /// Bytes of the run state for a context (activations + KV cache), for memory checks.
    pub fn state_bytes(&self, context: usize) -> usize {
        self.dims(context.clamp(1, self.spec.context)).floats() * 4
    }

    fn dims(&self, context: usize) -> StateDims {
        let s = &self.spec;
        StateDims {
            d_model: s.d_model,
            q_dim: s.q_dim(),
            kv_dim: s.kv_dim(),
            ffn_dim: s.ffn_dim,
            n_heads: s.n_heads,
            head_dim: s.head_dim,
            n_layers: s.n_layers,
            vocab: s.vocab_size,
            context,
            batch: context.min(MAX_BATCH),
        }
    }

    /// Runs `tokens` at positions pos0.. and returns the logits (V) of the last one.
    pub fn forward<'s>(&self, s: &'s mut RunState, tokens: &[u32], pos0: usize) -> Result<&'s [f32], EngineError> {
        self.forward_with(s, tokens, pos0, &Serial)
    }

    /// As [`Model::forward`], splitting the matrix work across `par`'s workers. The result
    /// is identical for any number of workers.
    pub fn forward_with<'s>(&self, s: &'s mut RunState, tokens: &[u32], pos0: usize, par: &dyn Parallel) -> Result<&'s [f32], EngineError> {
        self.check_input(s, tokens, pos0)?;
        let b = s.dims.batch;
        let mut last = 0;
        for (i, chunk) in tokens.chunks(b).enumerate() {
            self.forward_chunk(s, chunk, pos0 + i * b, par);
            last = chunk.len() - 1;
        }
        self.logits(s, last, par);
        Ok(&s.logits)
    }

    /// Logits (N, V) for every token of `tokens`, as one prefill: for tests and evaluation.
    pub fn forward_all(&self, s: &mut RunState, tokens: &[u32], pos0: usize) -> Result<Vec<f32>, EngineError> {
        self.check_input(s, tokens, pos0)?;
        let (b, v) = (s.dims.batch, s.dims.vocab);
        let mut all = Vec::with_capacity(tokens.len() * v);
        for (i, chunk) in tokens.chunks(b).enumerate() {
            self.forward_chunk(s, chunk, pos0 + i * b, &Serial);
            for row in 0..chunk.len() {
                self.logits(s, row, &Serial);
                all.extend_from_slice(&s.logits);
            }
        }
        Ok(all)
    }

    fn check_input(&self, s: &RunState, tokens: &[u32], pos0: usize) -> Result<(), EngineError> {
        if s.dims != self.dims(s.dims.context) {
            return Err(EngineError::StateMismatch);
        }
        if tokens.is_empty() {
            return Err(EngineError::EmptyInput);
        }
        let max = s.dims.context;
        if pos0.saturating_add(tokens.len()) > max {
            return Err(EngineError::ContextOverflow { needed: pos0.saturating_add(tokens.len()), max });
        }
        let vocab = self.spec.vocab_size;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(EngineError::TokenOutOfRange { token: bad, vocab });
        }
        Ok(())
    }

    /// logits (V) = output (V, C) @ norm(x[row]) (C), soft-capped if the model says so.
    fn logits(&self, s: &mut RunState, row: usize, par: &dyn Parallel) {
        let (c, v) = (self.spec.d_model, self.spec.vocab_size);
        apply_norm(self.spec.norm, &mut s.xn[..c], &s.x[row * c..(row + 1) * c], &self.weights.output_norm);
        let w = match &self.weights.output {
            Some(o) => o.view(),
            None => self.weights.token_embd.view().slice_rows(0..v),
        };
        par_matmul(par, s.kernels, &mut s.xq, &mut s.logits, &s.xn[..c], w, None);
        if let Some(cap) = self.spec.logit_softcap {
            layers::softcap(&mut s.logits, cap);
        }
    }

    /// Every layer for N <= B tokens at positions pos0..; leaves the residual stream in
    /// s.x (N, C). The caller checked the tokens, the positions and the state.
    fn forward_chunk(&self, s: &mut RunState, tokens: &[u32], pos0: usize, par: &dyn Parallel) {
        let sp = &self.spec;
        let w = &self.weights;
        let (c, qd, kvd, f, hd, t_max) = (sp.d_model, sp.q_dim(), sp.kv_dim(), sp.ffn_dim, sp.head_dim, s.dims.context);
        let n = tokens.len();
        let k = s.kernels;

        // Embedding: x[t] = token_embd[token] * scale (+ pos_embd[pos0 + t]).
        for (t, &tok) in tokens.iter().enumerate() {
            let xr = &mut s.x[t * c..(t + 1) * c];
            w.token_embd.row_into(tok as usize, xr);
            if let Some(scale) = sp.embed_scale {
                xr.iter_mut().for_each(|v| *v *= scale);
            }
            if let Some(pe) = &w.pos_embd {
                pe.row_into(pos0 + t, &mut s.xb[..c]);
                layers::residual_add(xr, &s.xb[..c]);
            }
        }

        let x = &mut s.x[..n * c];
        let xn = &mut s.xn[..n * c];
        let xb = &mut s.xb[..n * c];
        let (q, kk, vv) = (&mut s.q[..n * qd], &mut s.k[..n * kvd], &mut s.v[..n * kvd]);
        let att_out = &mut s.att_out[..n * qd];
        let (hb, hb2) = (&mut s.hb[..n * f], &mut s.hb2[..n * f]);
        let xq = &mut s.xq;
        for (l, y) in w.layers.iter().enumerate() {
            // Attention block: x += wo @ attention(rope(q), rope(k), v) of norm(x).
            norm_rows(sp.norm, xn, x, &y.attn_norm, c);
            par_matmul(par, k, xq, q, xn, y.wq.view(), y.bq.as_deref());
            par_matmul(par, k, xq, kk, xn, y.wk.view(), y.bk.as_deref());
            par_matmul(par, k, xq, vv, xn, y.wv.view(), y.bv.as_deref());
            if let (Some(qn), Some(kn)) = (&y.q_norm, &y.k_norm) {
                head_rmsnorm(q, qn, sp.norm.eps, &mut s.head_tmp);
                head_rmsnorm(kk, kn, sp.norm.eps, &mut s.head_tmp);
            }
            if let (Positions::Rope(r), Some(base)) = (sp.positions, sp.rope_base(l)) {
                for t in 0..n {
                    layers::rope_table(&mut s.rope, pos0 + t, base, hd);
                    layers::rope(&mut q[t * qd..(t + 1) * qd], &s.rope, hd, r.style);
                    layers::rope(&mut kk[t * kvd..(t + 1) * kvd], &s.rope, hd, r.style);
                }
            }
            let cache = l * t_max * kvd;
            for t in 0..n {
                let at = cache + (pos0 + t) * kvd;
                s.key_cache[at..at + kvd].copy_from_slice(&kk[t * kvd..(t + 1) * kvd]);
                s.value_cache[at..at + kvd].copy_from_slice(&vv[t * kvd..(t + 1) * kvd]);
            }
            let keys = &s.key_cache[cache..cache + t_max * kvd];
            let values = &s.value_cache[cache..cache + t_max * kvd];
            let shape = AttnShape { n_heads: sp.n_heads, n_kv_heads: sp.n_kv_heads, head_dim: hd, window: sp.window(l) };
            layers::attention(par, k, att_out, q, keys, values, &mut s.att, pos0, shape);
            par_matmul(par, k, xq, xn, att_out, y.wo.view(), y.bo.as_deref());
            match &y.post_attn_norm {
                Some(pn) => {
                    norm_rows(sp.norm, xb, xn, pn, c);
                    layers::residual_add(x, xb);
                }
                None => layers::residual_add(x, xn),
            }

            // MLP block: x += down(act(gate, up)(norm(x))).
            norm_rows(sp.norm, xn, x, &y.ffn_norm, c);
            match (sp.mlp, &y.ffn_gate) {
                (Mlp::Gelu, _) | (_, None) => {
                    par_matmul(par, k, xq, hb, xn, y.ffn_up.view(), y.b_up.as_deref());
                    layers::gelu(hb);
                }
                (Mlp::SwiGlu | Mlp::GeGlu, Some(gate)) => {
                    par_matmul(par, k, xq, hb, xn, gate.view(), None);
                    par_matmul(par, k, xq, hb2, xn, y.ffn_up.view(), y.b_up.as_deref());
                    if sp.mlp == Mlp::SwiGlu { layers::swiglu(hb, hb2) } else { layers::geglu(hb, hb2) }
                }
            }
            par_matmul(par, k, xq, xn, hb, y.ffn_down.view(), y.b_down.as_deref());
            match &y.post_ffn_norm {
                Some(pn) => {
                    norm_rows(sp.norm, xb, xn, pn, c);
                    layers::residual_add(x, xb);
                }
                None => layers::residual_add(x, xn),
            }
        }
    }
}

/// out (C) = norm(x (C)) with the spec's kind and epsilon.
fn apply_norm(norm: Norm, out: &mut [f32], x: &[f32], w: &NormWeights<'_>) {
    match (norm.kind, &w.bias) {
        (NormKind::LayerNorm, Some(b)) => layers::layernorm(out, x, &w.weight, b, norm.eps),
        // Weights::check guarantees a bias for LayerNorm; RMSNorm has none.
        (NormKind::LayerNorm, None) | (NormKind::RmsNorm, _) => layers::rmsnorm(out, x, &w.weight, norm.eps),
    }
}

/// out (N, C) = norm of each row of x (N, C).
fn norm_rows(norm: Norm, out: &mut [f32], x: &[f32], w: &NormWeights<'_>, c: usize) {
    for (o, xr) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        apply_norm(norm, o, xr, w);
    }
}

/// RMSNorm of every head (hd) of x (N, heads * hd) in place, with gain w (hd).
fn head_rmsnorm(x: &mut [f32], w: &[f32], eps: f32, tmp: &mut [f32]) {
    let hd = w.len();
    for head in x.chunks_exact_mut(hd) {
        tmp.copy_from_slice(head);
        layers::rmsnorm(head, tmp, w, eps);
    }
}

/// The matmul split across workers, by rows (prefill) or by output columns (decode): each
/// output element is computed by exactly one worker in the canonical order, so the split
/// never changes the result.
fn par_matmul(par: &dyn Parallel, k: Kernels, xq: &mut Q8Buf, out: &mut [f32], x: &[f32], w: MatRef<'_>, bias: Option<&[f32]>) {
    let (oc, ic) = (w.rows(), w.cols());
    let n = x.len() / ic;
    // 8-bit activations: quantized once here, shared by every worker.
    let q8 = match w.data() {
        MatData::Blocks { btype, .. } => k.q8_block(btype).is_some(),
        MatData::F32(_) => false,
    };
    if q8 {
        k.quantize_for(xq, x, w);
    }
    let xq = &*xq;
    let mm = |o: &mut [f32], r0: usize, r1: usize, w: MatRef<'_>, bias: Option<&[f32]>| {
        if q8 { k.matmul_q8(o, xq, r0..r1, w, bias) } else { k.matmul(o, &x[r0 * ic..r1 * ic], w, bias) }
    };
    let workers = par.workers();
    if workers <= 1 || n * oc * ic < par.grain() {
        mm(out, 0, n, w, bias);
        return;
    }
    assert_eq!(out.len(), n * oc, "matmul: output must be {n} rows of {oc}");
    let out_s = SharedMut::new(out);
    // Prefill with rows to spare: whole rows per worker, in pairs (the kernels' row blocking),
    // or in whole groups of eight where there are many (the 8-bit kernels' panels).
    if n >= 4 * workers {
        let rows = n.div_ceil(workers).next_multiple_of(if n >= 16 * workers { 8 } else { 2 });
        par.run(n.div_ceil(rows), &|task| {
            let (r0, r1) = (task * rows, ((task + 1) * rows).min(n));
            // SAFETY: tasks write disjoint row ranges of `out`.
            let o = unsafe { out_s.part(r0 * oc, (r1 - r0) * oc) };
            mm(o, r0, r1, w, bias);
        });
        return;
    }
    // Decode: column blocks of a multiple of 4 outputs (the AVX2 kernels' row group).
    let block = oc.div_ceil(workers).next_multiple_of(4);
    par.run(oc.div_ceil(block), &|task| {
        let (o0, o1) = (task * block, ((task + 1) * block).min(oc));
        let w_blk = w.slice_rows(o0..o1);
        let b_blk = bias.map(|b| &b[o0..o1]);
        for r in 0..n {
            // SAFETY: each task writes only columns o0..o1 of each row: disjoint regions.
            let orow = unsafe { out_s.part(r * oc + o0, o1 - o0) };
            mm(orow, r, r + 1, w_blk, b_blk);
        }
    });
}

/// The sizes a run state was built for; a model uses a state only when they are its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StateDims {
    d_model: usize,
    q_dim: usize,
    kv_dim: usize,
    ffn_dim: usize,
    n_heads: usize,
    head_dim: usize,
    n_layers: usize,
    vocab: usize,
    context: usize,
    batch: usize,
}

impl StateDims {
    /// The floats of each f32 buffer of [`RunState`], in its field order (`x` .. `logits`):
    /// the one formula that both allocates the state and sizes it ([`Model::state_bytes`],
    /// which the firmware checks against its free memory).
    fn buffers(&self) -> [usize; 15] {
        let (b, t) = (self.batch, self.context);
        let (c, q, k, f) = (self.d_model, self.q_dim, self.kv_dim, self.ffn_dim);
        let cache = self.n_layers * t * k;
        [
            b * c,
            b * c,
            b * c,
            b * q,
            b * k,
            b * k,
            b * q,
            b * f,
            b * f,
            self.n_heads * t,
            self.head_dim,
            self.head_dim,
            cache,
            cache,
            self.vocab,
        ]
    }

    /// Values of the 8-bit activation buffer (the widest matrix input).
    fn q8_values(&self) -> usize {
        self.batch * self.d_model.max(self.q_dim).max(self.ffn_dim)
    }

    fn floats(&self) -> usize {
        self.buffers().iter().sum::<usize>() + Q8Buf::bytes_for(self.q8_values()).div_ceil(4)
    }
}

/// Every activation buffer and the KV cache, allocated once by [`Model::new_state`].
pub struct RunState {
    kernels: Kernels,
    dims: StateDims,
    x: Vec<f32>,           // (B, C) residual stream
    xn: Vec<f32>,          // (B, C) norm / projection output
    xb: Vec<f32>,          // (B, C) post-norm output, position rows
    q: Vec<f32>,           // (B, Q)
    k: Vec<f32>,           // (B, K)
    v: Vec<f32>,           // (B, K)
    att_out: Vec<f32>,     // (B, Q) attention output before the projection
    hb: Vec<f32>,          // (B, F) MLP hidden (gate)
    hb2: Vec<f32>,         // (B, F) MLP up projection
    att: Vec<f32>,         // (NH, T) attention scores, one row per head
    rope: Vec<f32>,        // (hd) cos/sin pairs of one position
    head_tmp: Vec<f32>,    // (hd)
    key_cache: Vec<f32>,   // (L, T, K)
    value_cache: Vec<f32>, // (L, T, K)
    logits: Vec<f32>,      // (V)
    xq: Q8Buf,             // (B, max(C, Q, F)) 8-bit activations of the matrix being multiplied
}

impl RunState {
    fn new(d: StateDims, kernels: Kernels) -> RunState {
        let [x, xn, xb, q, k, v, att_out, hb, hb2, att, rope, head_tmp, key_cache, value_cache, logits] = d.buffers().map(|n| vec![0.0; n]);
        let xq = Q8Buf::with_capacity(d.q8_values());
        RunState { kernels, dims: d, x, xn, xb, q, k, v, att_out, hb, hb2, att, rope, head_tmp, key_cache, value_cache, logits, xq }
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The positions this state holds (T).
    pub fn context(&self) -> usize {
        self.dims.context
    }

    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}
