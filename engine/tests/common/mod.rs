//! Test helpers: random checkpoints of any shape.
#![allow(dead_code)]

use llm_engine::checkpoint::Config;
use llm_engine::Rng;

pub fn config(l: usize, nh: usize, c: usize, t: usize, v: usize, vp: usize) -> Config {
    Config { max_seq_len: t, vocab_size: v, padded_vocab_size: vp, num_layers: l, num_heads: nh, channels: c }
}

/// Standard normal via Box-Muller.
pub fn normal(rng: &mut Rng) -> f32 {
    let u1 = (rng.next_f32() as f64).max(1e-12);
    let u2 = rng.next_f32() as f64;
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Random parameters with magnitudes like a trained GPT: weights ~ N(0, scale), LayerNorm
/// gains around 1, biases small but non-zero so every term of the forward pass matters.
pub fn random_params(cfg: &Config, seed: u64, scale: f32) -> Vec<f32> {
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
