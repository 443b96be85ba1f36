//! Test support: a deliberately naive GPT-2 in f64, written from the GPT-2 description and
//! sharing no code with the engine or the trainer, plus random checkpoints of any shape.
//! Both the engine's forward pass and the trainer's gradients are checked against it.
//! The `llama` module does the same for Llama 2 (llama2.c checkpoints).

use llm_engine::Rng;
use llm_engine::checkpoint::LlmcConfig;

pub mod gguf_ref;
pub mod llama;

pub fn config(l: usize, nh: usize, c: usize, t: usize, v: usize, vp: usize) -> LlmcConfig {
    LlmcConfig { context: t, vocab_size: v, padded_vocab_size: vp, n_layers: l, n_heads: nh, d_model: c }
}

/// Standard normal via Box-Muller.
pub fn normal(rng: &mut Rng) -> f32 {
    let u1 = (rng.next_f32() as f64).max(1e-12);
    let u2 = rng.next_f32() as f64;
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Random parameters with magnitudes like a trained GPT: weights ~ N(0, scale), LayerNorm
/// gains around 1, biases small but non-zero so every term of the forward pass matters.
pub fn random_params(cfg: &LlmcConfig, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let sizes = cfg.tensor_sizes();
    let names = llm_engine::checkpoint::TENSOR_NAMES;
    let mut out = Vec::with_capacity(cfg.num_parameters());
    for (name, &n) in names.iter().zip(sizes.iter()) {
        for _ in 0..n {
            let z = normal(&mut rng);
            let v = match *name {
                "ln1w" | "ln2w" | "lnfw" => 1.0 + 0.1 * z,
                "ln1b" | "ln2b" | "lnfb" | "qkvb" | "attprojb" | "fcb" | "fcprojb" => 0.02 * z,
                _ => scale * z,
            };
            out.push(v);
        }
    }
    out
}

pub fn random_tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.next_u32() % vocab as u32).collect()
}

pub fn random_vec(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| normal(&mut rng) * scale).collect()
}

// --- naive layers in f64 --------------------------------------------------------------

/// LayerNorm of one row.
pub fn ln(x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let var = x.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / x.len() as f64;
    x.iter().enumerate().map(|(i, a)| (a - mean) / (var + 1e-5).sqrt() * w[i] + b[i]).collect()
}

/// y[o] = sum_i W[o][i] x[i] + b[o]; W is (out, in) row-major.
pub fn linear(x: &[f64], w: &[f64], b: Option<&[f64]>, out: usize) -> Vec<f64> {
    (0..out)
        .map(|o| {
            let mut s = 0.0;
            for i in 0..x.len() {
                s += w[o * x.len() + i] * x[i];
            }
            s + b.map_or(0.0, |b| b[o])
        })
        .collect()
}

pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
}

/// Causal multi-head attention over one sequence: qkv rows (T, 3C) -> (T, C).
pub fn attention(qkv: &[Vec<f64>], c: usize, nh: usize) -> Vec<Vec<f64>> {
    let hs = c / nh;
    (0..qkv.len())
        .map(|t| {
            let mut y = vec![0.0; c];
            for h in 0..nh {
                let q = &qkv[t][h * hs..(h + 1) * hs];
                let scores: Vec<f64> = (0..=t)
                    .map(|s| q.iter().zip(&qkv[s][c + h * hs..c + (h + 1) * hs]).map(|(a, b)| a * b).sum::<f64>() / (hs as f64).sqrt())
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for s in 0..=t {
                    for i in 0..hs {
                        y[h * hs + i] += e[s] / z * qkv[s][2 * c + h * hs + i];
                    }
                }
            }
            y
        })
        .collect()
}

/// Naive GPT-2 forward of one sequence in f64: logits (T, V) for tokens at positions 0..T.
pub fn reference_forward(cfg: &LlmcConfig, p: &[f64], tokens: &[u32]) -> Vec<Vec<f64>> {
    let (c, l_n, nh, v, maxt, vp) = (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.vocab_size, cfg.context, cfg.padded_vocab_size);
    let mut at = 0;
    let mut take = |n: usize| {
        let s = &p[at..at + n];
        at += n;
        s
    };
    let wte = take(vp * c);
    let wpe = take(maxt * c);
    let ln1w = take(l_n * c);
    let ln1b = take(l_n * c);
    let qkvw = take(l_n * 3 * c * c);
    let qkvb = take(l_n * 3 * c);
    let attprojw = take(l_n * c * c);
    let attprojb = take(l_n * c);
    let ln2w = take(l_n * c);
    let ln2b = take(l_n * c);
    let fcw = take(l_n * 4 * c * c);
    let fcb = take(l_n * 4 * c);
    let fcprojw = take(l_n * c * 4 * c);
    let fcprojb = take(l_n * c);
    let lnfw = take(c);
    let lnfb = take(c);

    let t_n = tokens.len();
    let mut x: Vec<Vec<f64>> = (0..t_n).map(|t| (0..c).map(|i| wte[tokens[t] as usize * c + i] + wpe[t * c + i]).collect()).collect();
    for l in 0..l_n {
        let sl = |v: &[f64], n: usize| v[l * n..(l + 1) * n].to_vec();
        let qkv: Vec<Vec<f64>> =
            x.iter().map(|row| linear(&ln(row, &sl(ln1w, c), &sl(ln1b, c)), &sl(qkvw, 3 * c * c), Some(&sl(qkvb, 3 * c)), 3 * c)).collect();
        let y = attention(&qkv, c, nh);
        for t in 0..t_n {
            let proj = linear(&y[t], &sl(attprojw, c * c), Some(&sl(attprojb, c)), c);
            for i in 0..c {
                x[t][i] += proj[i];
            }
        }
        for row in x.iter_mut() {
            let h = ln(row, &sl(ln2w, c), &sl(ln2b, c));
            let f: Vec<f64> = linear(&h, &sl(fcw, 4 * c * c), Some(&sl(fcb, 4 * c)), 4 * c).into_iter().map(gelu).collect();
            let o = linear(&f, &sl(fcprojw, 4 * c * c), Some(&sl(fcprojb, c)), c);
            for i in 0..c {
                row[i] += o[i];
            }
        }
    }
    x.iter().map(|row| linear(&ln(row, lnfw, lnfb), &wte[..v * c], None, v)).collect()
}

/// Mean cross-entropy of `targets` under the reference model over B sequences of length T.
pub fn reference_loss(cfg: &LlmcConfig, p: &[f64], tokens: &[u32], targets: &[u32], t: usize) -> f64 {
    let mut total = 0.0;
    for (seq, tgt) in tokens.chunks(t).zip(targets.chunks(t)) {
        for (logits, &y) in reference_forward(cfg, p, seq).iter().zip(tgt) {
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + logits.iter().map(|l| (l - m).exp()).sum::<f64>().ln();
            total += lse - logits[y as usize];
        }
    }
    total / tokens.len() as f64
}

/// Real threads that split every matrix product and every attention call (grain 0).
pub struct EveryCoreSplits(pub usize);

impl llm_engine::Parallel for EveryCoreSplits {
    fn workers(&self) -> usize {
        self.0
    }
    fn grain(&self) -> usize {
        0
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..self.0 {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if i >= tasks {
                            break;
                        }
                        f(i);
                    }
                });
            }
        });
    }
}
