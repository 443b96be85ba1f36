//! GPT-2 training: every layer as a forward/backward pair, in the style of llm.c's
//! `train_gpt2.c`, over the same parameter layout (and checkpoint files) as the engine.
//!
//! Letters: B = batch size, T = sequence length, C = channels, V = vocabulary,
//! Vp = padded vocabulary, L = layers, NH = heads, hs = C / NH. "BT" means B*T rows.
//!
//! Determinism: every output element is computed by one thread in a fixed order, and sums
//! over rows (weight and bias gradients of LayerNorm and biases) are taken over a fixed
//! number of row chunks added in order, so a run is reproducible for a given seed whatever
//! the thread count. The big matrix products use `matrixmultiply`'s blocked AVX2/FMA sgemm.

use llm_engine::checkpoint::{LlmcConfig, NUM_TENSORS};
// The engine's exp and tanh: plain arithmetic, so the compiler vectorises them here too.
use llm_engine::layers::{GELU_SCALE, exp, tanh};
use llm_engine::parallel::SharedMut;
use multiversion::multiversion;
use rayon::prelude::*;

/// Row sums are split into this many chunks whatever the thread count (see module docs).
const REDUCE_CHUNKS: usize = 32;

// Tensor indices in file order: llm.c's table, from the engine.
pub use llm_engine::checkpoint::tensor::*;

/// Splits a flat parameter-shaped array into its 16 tensors.
pub fn split<'a>(flat: &'a [f32], cfg: &LlmcConfig) -> [&'a [f32]; NUM_TENSORS] {
    let mut rest = flat;
    cfg.tensor_sizes().map(|n| {
        let (head, tail) = rest.split_at(n);
        rest = tail;
        head
    })
}

pub fn split_mut<'a>(flat: &'a mut [f32], cfg: &LlmcConfig) -> [&'a mut [f32]; NUM_TENSORS] {
    let mut rest = flat;
    cfg.tensor_sizes().map(|n| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        head
    })
}

fn layer(t: &[f32], l: usize, nl: usize) -> &[f32] {
    let per = t.len() / nl;
    &t[l * per..(l + 1) * per]
}

fn layer_mut(t: &mut [f32], l: usize, nl: usize) -> &mut [f32] {
    let per = t.len() / nl;
    &mut t[l * per..(l + 1) * per]
}

// ----------------------------------------------------------------------------------------
// Layers

/// out (BT, C) = wte[token] + wpe[t]; tokens (BT); wte (Vp, C); wpe (maxT, C).
pub fn encoder_forward(out: &mut [f32], tokens: &[u32], wte: &[f32], wpe: &[f32], t_len: usize, c: usize) {
    out.par_chunks_mut(c).enumerate().for_each(|(r, o)| {
        let (tok, t) = (tokens[r] as usize, r % t_len);
        for i in 0..c {
            o[i] = wte[tok * c + i] + wpe[t * c + i];
        }
    });
}

/// dwte (Vp, C) and dwpe (maxT, C) += scatter of dout (BT, C). Sequential: the same token
/// may appear in many rows, and the order of those additions must be fixed.
pub fn encoder_backward(dwte: &mut [f32], dwpe: &mut [f32], dout: &[f32], tokens: &[u32], t_len: usize, c: usize) {
    for (r, d) in dout.chunks_exact(c).enumerate() {
        let (tok, t) = (tokens[r] as usize, r % t_len);
        for i in 0..c {
            dwte[tok * c + i] += d[i];
            dwpe[t * c + i] += d[i];
        }
    }
}

/// out (BT, C) = LayerNorm(inp) * w + b; mean, rstd (BT) are kept for the backward pass.
pub fn layernorm_forward(out: &mut [f32], mean: &mut [f32], rstd: &mut [f32], inp: &[f32], w: &[f32], b: &[f32], c: usize) {
    out.par_chunks_mut(c).zip(inp.par_chunks(c)).zip(mean.par_iter_mut().zip(rstd.par_iter_mut())).for_each(|((o, x), (m, s))| {
        let mu = x.iter().sum::<f32>() / c as f32;
        let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f32>() / c as f32;
        let rs = 1.0 / (var + 1e-5).sqrt();
        for i in 0..c {
            o[i] = (x[i] - mu) * rs * w[i] + b[i];
        }
        *m = mu;
        *s = rs;
    });
}

/// dinp (BT, C) += LayerNorm backward; dw, db (C) += sums over rows.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    mean: &[f32],
    rstd: &[f32],
    c: usize,
) {
    let rows = dout.len() / c;
    let chunk = rows.div_ceil(REDUCE_CHUNKS).max(1);
    let partials: Vec<Vec<f32>> = dinp
        .par_chunks_mut(chunk * c)
        .enumerate()
        .map(|(ci, dinp_chunk)| {
            let mut part = vec![0.0f32; 2 * c];
            for (k, di) in dinp_chunk.chunks_exact_mut(c).enumerate() {
                let r = ci * chunk + k;
                let (d, x) = (&dout[r * c..(r + 1) * c], &inp[r * c..(r + 1) * c]);
                let (mu, rs) = (mean[r], rstd[r]);
                // dnorm = dout * w; dx = rs * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
                let mut dnorm_mean = 0.0f32;
                let mut dnorm_norm_mean = 0.0f32;
                for i in 0..c {
                    let norm = (x[i] - mu) * rs;
                    let dnorm = w[i] * d[i];
                    dnorm_mean += dnorm;
                    dnorm_norm_mean += dnorm * norm;
                    part[i] += d[i] * norm; // dw
                    part[c + i] += d[i]; // db
                }
                dnorm_mean /= c as f32;
                dnorm_norm_mean /= c as f32;
                for i in 0..c {
                    let norm = (x[i] - mu) * rs;
                    let dnorm = w[i] * d[i];
                    di[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * rs;
                }
            }
            part
        })
        .collect();
    for part in partials {
        for i in 0..c {
            dw[i] += part[i];
            db[i] += part[c + i];
        }
    }
}

/// C (m, n) = alpha-free a (m, k) @ b (k, n) + beta * C, with arbitrary strides.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    out: &mut [f32],
    rso: isize,
) {
    debug_assert!(out.len() >= m * n);
    // SAFETY: the callers pass slices whose extents cover the strided ranges (checked by the
    // debug assertions in the matmul functions and the tests against naive loops).
    unsafe {
        matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, out.as_mut_ptr(), rso, 1);
    }
}

/// out (BT, OC) = inp (BT, IC) @ w (OC, IC)^T + bias (OC).
pub fn matmul_forward(out: &mut [f32], inp: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    let rows = inp.len() / ic;
    debug_assert_eq!(w.len(), oc * ic);
    debug_assert_eq!(out.len(), rows * oc);
    sgemm(rows, ic, oc, inp, ic as isize, 1, w, 1, ic as isize, 0.0, out, oc as isize);
    if let Some(b) = bias {
        out.par_chunks_mut(oc).for_each(|o| {
            for (x, bb) in o.iter_mut().zip(b) {
                *x += bb;
            }
        });
    }
}

/// dinp (BT, IC) += dout (BT, OC) @ w (OC, IC); dw (OC, IC) += dout^T @ inp; dbias += column sums.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    dinp: &mut [f32],
    dw: &mut [f32],
    dbias: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    ic: usize,
    oc: usize,
) {
    let rows = inp.len() / ic;
    debug_assert_eq!(dout.len(), rows * oc);
    sgemm(rows, oc, ic, dout, oc as isize, 1, w, ic as isize, 1, 1.0, dinp, ic as isize);
    sgemm(oc, rows, ic, dout, 1, oc as isize, inp, ic as isize, 1, 1.0, dw, ic as isize);
    if let Some(db) = dbias {
        column_sums_into(db, dout, oc);
    }
}

/// dst (W) += sum over the rows of src (rows, W), in fixed chunks added in order.
fn column_sums_into(dst: &mut [f32], src: &[f32], width: usize) {
    let rows = src.len() / width;
    let chunk = rows.div_ceil(REDUCE_CHUNKS).max(1);
    let partials: Vec<Vec<f32>> = src
        .par_chunks(chunk * width)
        .map(|block| {
            let mut part = vec![0.0f32; width];
            for row in block.chunks_exact(width) {
                for (p, v) in part.iter_mut().zip(row) {
                    *p += v;
                }
            }
            part
        })
        .collect();
    for part in partials {
        for (d, p) in dst.iter_mut().zip(&part) {
            *d += p;
        }
    }
}

/// Causal self-attention. qkv (BT, 3C) = q | k | v; out (BT, C); att (B, NH, T, T) keeps the
/// softmax probabilities for the backward pass.
pub fn attention_forward(out: &mut [f32], att: &mut [f32], qkv: &[f32], t_n: usize, c: usize, nh: usize) {
    // One task per (b, h): it owns att[b, h] and columns h*hs.. of out's rows of batch b.
    let out_ptr = SharedMut::new(out);
    att.par_chunks_mut(t_n * t_n).enumerate().for_each(|(bh, att_bh)| {
        attention_head_forward(att_bh, qkv, out_ptr, bh / nh, bh % nh, t_n, c, nh);
    });
}

#[multiversion(targets("x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
fn attention_head_forward(att_bh: &mut [f32], qkv: &[f32], out: SharedMut, b: usize, h: usize, t_n: usize, c: usize, nh: usize) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    // Keys transposed to (hs, T): the scores of one query become hs contiguous axpys.
    let mut kt = vec![0.0f32; hs * t_n];
    for t2 in 0..t_n {
        let k = &qkv[(b * t_n + t2) * 3 * c + c + h * hs..][..hs];
        for i in 0..hs {
            kt[i * t_n + t2] = k[i];
        }
    }
    for t in 0..t_n {
        let q = &qkv[(b * t_n + t) * 3 * c + h * hs..][..hs];
        let row = &mut att_bh[t * t_n..(t + 1) * t_n];
        let scores = &mut row[..=t];
        scores.fill(0.0);
        for i in 0..hs {
            let qi = q[i] * scale;
            for (s, &k) in scores.iter_mut().zip(&kt[i * t_n..i * t_n + t + 1]) {
                *s += qi * k;
            }
        }
        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0;
        for v in scores.iter_mut() {
            *v = exp(*v - max);
            sum += *v;
        }
        let inv = 1.0 / sum;
        for v in scores.iter_mut() {
            *v *= inv;
        }
        row[t + 1..].fill(0.0);
        // SAFETY: this task alone writes these hs columns of row (b, t).
        let o = unsafe { out.part((b * t_n + t) * c + h * hs, hs) };
        o.fill(0.0);
        for t2 in 0..=t {
            let v = &qkv[(b * t_n + t2) * 3 * c + 2 * c + h * hs..][..hs];
            let a = row[t2];
            for i in 0..hs {
                o[i] += a * v[i];
            }
        }
    }
}

/// dqkv (BT, 3C) += attention backward, from dout (BT, C), qkv and att (B, NH, T, T).
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(dqkv: &mut [f32], dout: &[f32], qkv: &[f32], att: &[f32], b_n: usize, t_n: usize, c: usize, nh: usize) {
    let d_ptr = SharedMut::new(dqkv);
    (0..b_n * nh).into_par_iter().for_each(|bh| {
        attention_head_backward(d_ptr, dout, qkv, &att[bh * t_n * t_n..(bh + 1) * t_n * t_n], bh / nh, bh % nh, t_n, c, nh);
    });
}

#[multiversion(targets("x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
fn attention_head_backward(
    dqkv: SharedMut,
    dout: &[f32],
    qkv: &[f32],
    att_bh: &[f32],
    b: usize,
    h: usize,
    t_n: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let mut datt = vec![0.0f32; t_n];
    // Values transposed to (hs, T), so datt = V . dout_t is hs contiguous axpys.
    let mut vt = vec![0.0f32; hs * t_n];
    for t2 in 0..t_n {
        let v = &qkv[(b * t_n + t2) * 3 * c + 2 * c + h * hs..][..hs];
        for i in 0..hs {
            vt[i * t_n + t2] = v[i];
        }
    }
    // SAFETY: task (b, h) alone touches the head-h columns of q, k and v in batch b.
    let drow = |t: usize, part: usize| unsafe { dqkv.part((b * t_n + t) * 3 * c + part * c + h * hs, hs) };
    for t in 0..t_n {
        let a = &att_bh[t * t_n..(t + 1) * t_n];
        let dout_t = &dout[(b * t_n + t) * c + h * hs..][..hs];
        // out_t = sum_t2 a[t2] v[t2]  =>  datt[t2] = dout_t . v[t2];  dv[t2] += a[t2] dout_t
        let datt = &mut datt[..=t];
        datt.fill(0.0);
        for i in 0..hs {
            let d = dout_t[i];
            for (x, &v) in datt.iter_mut().zip(&vt[i * t_n..i * t_n + t + 1]) {
                *x += d * v;
            }
        }
        for (t2, &w) in a.iter().enumerate().take(t + 1) {
            let dv = drow(t2, 2);
            for i in 0..hs {
                dv[i] += w * dout_t[i];
            }
        }
        // softmax backward: dpre[t2] = a[t2] * (datt[t2] - sum_k a[k] datt[k])
        let dsum = dot(&a[..=t], datt);
        let q = &qkv[(b * t_n + t) * 3 * c + h * hs..][..hs];
        let dq = drow(t, 0);
        for t2 in 0..=t {
            let dpre = a[t2] * (datt[t2] - dsum) * scale;
            let k = &qkv[(b * t_n + t2) * 3 * c + c + h * hs..][..hs];
            for i in 0..hs {
                dq[i] += dpre * k[i];
            }
            let dk = drow(t2, 1);
            for i in 0..hs {
                dk[i] += dpre * q[i];
            }
        }
    }
}

/// Dot product with 8 independent partial sums, so the compiler can vectorise it.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let body = n / 8 * 8;
    let mut acc = [0.0f32; 8];
    for (x, y) in a[..body].chunks_exact(8).zip(b[..body].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for i in body..n {
        s += a[i] * b[i];
    }
    s
}

pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    out.par_chunks_mut(4096).zip(inp.par_chunks(4096)).for_each(|(o, x)| gelu_forward_chunk(o, x));
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn gelu_forward_chunk(out: &mut [f32], inp: &[f32]) {
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = 0.5 * x * (1.0 + tanh(GELU_SCALE * (x + 0.044715 * x * x * x)));
    }
}

/// dinp += gelu'(inp) * dout.
pub fn gelu_backward(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    dinp.par_chunks_mut(4096).zip(inp.par_chunks(4096).zip(dout.par_chunks(4096))).for_each(|(di, (x, d))| gelu_backward_chunk(di, x, d));
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn gelu_backward_chunk(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    for ((di, &x), &d) in dinp.iter_mut().zip(inp).zip(dout) {
        let th = tanh(GELU_SCALE * (x + 0.044715 * x * x * x));
        let sech2 = 1.0 - th * th;
        let local = 0.5 * (1.0 + th) + 0.5 * x * sech2 * GELU_SCALE * (1.0 + 3.0 * 0.044715 * x * x);
        *di += local * d;
    }
}

pub fn residual_forward(out: &mut [f32], a: &[f32], b: &[f32]) {
    out.par_iter_mut().zip(a.par_iter().zip(b.par_iter())).for_each(|(o, (x, y))| *o = x + y);
}

/// Softmax over logits (BT, V) in place, losses (BT) = -log p[target]. Rows run in parallel.
/// The loss is log(sum exp(x - max)) - (x[target] - max), never clamped: finite for finite
/// logits (no underflow of p to 0), and NaN or infinite when the logits are (a diverged
/// model), so that the training loop sees it.
pub fn softmax_crossentropy_forward(logits: &mut [f32], losses: &mut [f32], targets: &[u32], v: usize) {
    logits.par_chunks_mut(v).zip(losses.par_iter_mut()).enumerate().for_each(|(r, (row, loss))| {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let target = row[targets[r] as usize] - max;
        let mut sum = 0.0;
        for x in row.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        let inv = 1.0 / sum;
        for x in row.iter_mut() {
            *x *= inv;
        }
        *loss = sum.ln() - target;
    });
}

/// probs (BT, V) -> dlogits in place: (p - onehot(target)) / BT (the loss is the mean).
pub fn softmax_crossentropy_backward(probs: &mut [f32], targets: &[u32], v: usize) {
    let scale = 1.0 / targets.len() as f32;
    probs.par_chunks_mut(v).enumerate().for_each(|(r, row)| {
        for x in row.iter_mut() {
            *x *= scale;
        }
        row[targets[r] as usize] -= scale;
    });
}

// ----------------------------------------------------------------------------------------
// The model

/// Everything the forward pass keeps for the backward pass, for one (B, T).
pub struct Activations {
    pub b: usize,
    pub t: usize,
    encoded: Vec<f32>,   // (BT, C)
    ln1: Vec<f32>,       // (L, BT, C)
    ln1_mean: Vec<f32>,  // (L, BT)
    ln1_rstd: Vec<f32>,  // (L, BT)
    qkv: Vec<f32>,       // (L, BT, 3C)
    atty: Vec<f32>,      // (L, BT, C)
    att: Vec<f32>,       // (L, B, NH, T, T)
    attproj: Vec<f32>,   // (L, BT, C)
    residual2: Vec<f32>, // (L, BT, C)
    ln2: Vec<f32>,       // (L, BT, C)
    ln2_mean: Vec<f32>,  // (L, BT)
    ln2_rstd: Vec<f32>,  // (L, BT)
    fch: Vec<f32>,       // (L, BT, 4C)
    fch_gelu: Vec<f32>,  // (L, BT, 4C)
    fcproj: Vec<f32>,    // (L, BT, C)
    residual3: Vec<f32>, // (L, BT, C)
    lnf: Vec<f32>,       // (BT, C)
    lnf_mean: Vec<f32>,  // (BT)
    lnf_rstd: Vec<f32>,  // (BT)
    /// (BT, V): logits, then probabilities, then (in backward) dlogits.
    pub probs: Vec<f32>,
    pub losses: Vec<f32>, // (BT)
    // Gradient scratch.
    dresidual: Vec<f32>, // (BT, C)
    dln: Vec<f32>,       // (BT, C)
    datty: Vec<f32>,     // (BT, C)
    dqkv: Vec<f32>,      // (BT, 3C)
    dfch: Vec<f32>,      // (BT, 4C)
    dfch_gelu: Vec<f32>, // (BT, 4C)
}

impl Activations {
    pub fn new(cfg: &LlmcConfig, b: usize, t: usize) -> Activations {
        let (l, c, nh, v) = (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.vocab_size);
        let bt = b * t;
        let z = |n: usize| vec![0.0f32; n];
        Activations {
            b,
            t,
            encoded: z(bt * c),
            ln1: z(l * bt * c),
            ln1_mean: z(l * bt),
            ln1_rstd: z(l * bt),
            qkv: z(l * bt * 3 * c),
            atty: z(l * bt * c),
            att: z(l * b * nh * t * t),
            attproj: z(l * bt * c),
            residual2: z(l * bt * c),
            ln2: z(l * bt * c),
            ln2_mean: z(l * bt),
            ln2_rstd: z(l * bt),
            fch: z(l * bt * 4 * c),
            fch_gelu: z(l * bt * 4 * c),
            fcproj: z(l * bt * c),
            residual3: z(l * bt * c),
            lnf: z(bt * c),
            lnf_mean: z(bt),
            lnf_rstd: z(bt),
            probs: z(bt * v),
            losses: z(bt),
            dresidual: z(bt * c),
            dln: z(bt * c),
            datty: z(bt * c),
            dqkv: z(bt * 3 * c),
            dfch: z(bt * 4 * c),
            dfch_gelu: z(bt * 4 * c),
        }
    }
}

/// Forward pass over tokens (B, T); with targets, fills acts.losses and returns the mean
/// loss; acts.probs holds the softmax (BT, V) afterwards.
pub fn forward(cfg: &LlmcConfig, params: &[f32], acts: &mut Activations, tokens: &[u32], targets: &[u32]) -> f32 {
    let (nl, c, nh, v) = (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.vocab_size);
    let (b, t) = (acts.b, acts.t);
    let bt = b * t;
    assert_eq!(tokens.len(), bt, "tokens must be (B, T)");
    assert!(t <= cfg.context, "sequence length {t} exceeds the model's context {}", cfg.context);
    let p = split(params, cfg);
    let a = acts;
    encoder_forward(&mut a.encoded, tokens, p[WTE], p[WPE], t, c);
    for l in 0..nl {
        let r_c = l * bt * c..(l + 1) * bt * c;
        let r_3c = l * bt * 3 * c..(l + 1) * bt * 3 * c;
        let r_4c = l * bt * 4 * c..(l + 1) * bt * 4 * c;
        let r_1 = l * bt..(l + 1) * bt;
        let residual: &[f32] = if l == 0 { &a.encoded } else { &a.residual3[(l - 1) * bt * c..l * bt * c] };
        layernorm_forward(
            &mut a.ln1[r_c.clone()],
            &mut a.ln1_mean[r_1.clone()],
            &mut a.ln1_rstd[r_1.clone()],
            residual,
            layer(p[LN1W], l, nl),
            layer(p[LN1B], l, nl),
            c,
        );
        matmul_forward(&mut a.qkv[r_3c.clone()], &a.ln1[r_c.clone()], layer(p[QKVW], l, nl), Some(layer(p[QKVB], l, nl)), c, 3 * c);
        let att = &mut a.att[l * b * nh * t * t..(l + 1) * b * nh * t * t];
        attention_forward(&mut a.atty[r_c.clone()], att, &a.qkv[r_3c.clone()], t, c, nh);
        matmul_forward(&mut a.attproj[r_c.clone()], &a.atty[r_c.clone()], layer(p[ATTPROJW], l, nl), Some(layer(p[ATTPROJB], l, nl)), c, c);
        let residual: &[f32] = if l == 0 { &a.encoded } else { &a.residual3[(l - 1) * bt * c..l * bt * c] };
        residual_forward(&mut a.residual2[r_c.clone()], residual, &a.attproj[r_c.clone()]);
        layernorm_forward(
            &mut a.ln2[r_c.clone()],
            &mut a.ln2_mean[r_1.clone()],
            &mut a.ln2_rstd[r_1.clone()],
            &a.residual2[r_c.clone()],
            layer(p[LN2W], l, nl),
            layer(p[LN2B], l, nl),
            c,
        );
        matmul_forward(&mut a.fch[r_4c.clone()], &a.ln2[r_c.clone()], layer(p[FCW], l, nl), Some(layer(p[FCB], l, nl)), c, 4 * c);
        gelu_forward(&mut a.fch_gelu[r_4c.clone()], &a.fch[r_4c.clone()]);
        matmul_forward(
            &mut a.fcproj[r_c.clone()],
            &a.fch_gelu[r_4c.clone()],
            layer(p[FCPROJW], l, nl),
            Some(layer(p[FCPROJB], l, nl)),
            4 * c,
            c,
        );
        residual_forward(&mut a.residual3[l * bt * c..(l + 1) * bt * c], &a.residual2[r_c.clone()], &a.fcproj[r_c]);
    }
    let last = &a.residual3[(nl - 1) * bt * c..nl * bt * c];
    layernorm_forward(&mut a.lnf, &mut a.lnf_mean, &mut a.lnf_rstd, last, p[LNFW], p[LNFB], c);
    matmul_forward(&mut a.probs, &a.lnf, &p[WTE][..v * c], None, c, v);
    softmax_crossentropy_forward(&mut a.probs, &mut a.losses, targets, v);
    // A fixed-order sum so the reported loss is reproducible.
    a.losses.iter().map(|&x| x as f64).sum::<f64>() as f32 / bt as f32
}

/// Backward pass after `forward` with the same tokens and targets: grads += dloss/dparams.
pub fn backward(cfg: &LlmcConfig, params: &[f32], grads: &mut [f32], acts: &mut Activations, tokens: &[u32], targets: &[u32]) {
    let (nl, c, nh, v) = (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.vocab_size);
    let (b, t) = (acts.b, acts.t);
    let bt = b * t;
    let p = split(params, cfg);
    let [dwte, dwpe, dln1w, dln1b, dqkvw, dqkvb, dattprojw, dattprojb, dln2w, dln2b, dfcw, dfcb, dfcprojw, dfcprojb, dlnfw, dlnfb] =
        split_mut(grads, cfg);
    let a = acts;

    softmax_crossentropy_backward(&mut a.probs, targets, v); // probs now hold dlogits
    a.dln.fill(0.0);
    matmul_backward(&mut a.dln, &mut dwte[..v * c], None, &a.probs, &a.lnf, &p[WTE][..v * c], c, v);
    a.dresidual.fill(0.0);
    let last = &a.residual3[(nl - 1) * bt * c..nl * bt * c];
    layernorm_backward(&mut a.dresidual, dlnfw, dlnfb, &a.dln, last, p[LNFW], &a.lnf_mean, &a.lnf_rstd, c);

    for l in (0..nl).rev() {
        let r_c = l * bt * c..(l + 1) * bt * c;
        let r_3c = l * bt * 3 * c..(l + 1) * bt * 3 * c;
        let r_4c = l * bt * 4 * c..(l + 1) * bt * 4 * c;
        let r_1 = l * bt..(l + 1) * bt;
        let residual: &[f32] = if l == 0 { &a.encoded } else { &a.residual3[(l - 1) * bt * c..l * bt * c] };

        // residual3 = residual2 + fcproj: dresidual flows to both unchanged.
        a.dfch_gelu.fill(0.0);
        matmul_backward(
            &mut a.dfch_gelu,
            layer_mut(dfcprojw, l, nl),
            Some(layer_mut(dfcprojb, l, nl)),
            &a.dresidual,
            &a.fch_gelu[r_4c.clone()],
            layer(p[FCPROJW], l, nl),
            4 * c,
            c,
        );
        a.dfch.fill(0.0);
        gelu_backward(&mut a.dfch, &a.fch[r_4c.clone()], &a.dfch_gelu);
        a.dln.fill(0.0);
        matmul_backward(
            &mut a.dln,
            layer_mut(dfcw, l, nl),
            Some(layer_mut(dfcb, l, nl)),
            &a.dfch,
            &a.ln2[r_c.clone()],
            layer(p[FCW], l, nl),
            c,
            4 * c,
        );
        {
            layernorm_backward(
                &mut a.dresidual,
                layer_mut(dln2w, l, nl),
                layer_mut(dln2b, l, nl),
                &a.dln,
                &a.residual2[r_c.clone()],
                layer(p[LN2W], l, nl),
                &a.ln2_mean[r_1.clone()],
                &a.ln2_rstd[r_1.clone()],
                c,
            );
        }
        // residual2 = residual + attproj.
        a.datty.fill(0.0);
        matmul_backward(
            &mut a.datty,
            layer_mut(dattprojw, l, nl),
            Some(layer_mut(dattprojb, l, nl)),
            &a.dresidual,
            &a.atty[r_c.clone()],
            layer(p[ATTPROJW], l, nl),
            c,
            c,
        );
        a.dqkv.fill(0.0);
        let att = &a.att[l * b * nh * t * t..(l + 1) * b * nh * t * t];
        attention_backward(&mut a.dqkv, &a.datty, &a.qkv[r_3c.clone()], att, b, t, c, nh);
        a.dln.fill(0.0);
        matmul_backward(
            &mut a.dln,
            layer_mut(dqkvw, l, nl),
            Some(layer_mut(dqkvb, l, nl)),
            &a.dqkv,
            &a.ln1[r_c.clone()],
            layer(p[QKVW], l, nl),
            c,
            3 * c,
        );
        {
            layernorm_backward(
                &mut a.dresidual,
                layer_mut(dln1w, l, nl),
                layer_mut(dln1b, l, nl),
                &a.dln,
                residual,
                layer(p[LN1W], l, nl),
                &a.ln1_mean[r_1.clone()],
                &a.ln1_rstd[r_1],
                c,
            );
        }
    }
    encoder_backward(dwte, dwpe, &a.dresidual, tokens, t, c);
}
