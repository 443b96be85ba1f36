//! Turning logits into the next token: penalties, temperature, top-k / top-p / min-p, and a
//! seeded PRNG of our own so that a seed means the same tokens on every target.
//!
//! Order of operations (fixed, documented in the README):
//! 1. repetition penalty over the last `repeat_window` tokens (each distinct token once:
//!    positive logits are divided by the penalty, negative ones multiplied);
//! 2. temperature below [`GREEDY_BELOW`] (0 included) -> argmax (lowest index wins ties), done;
//! 3. logits / temperature, softmax;
//! 4. candidates sorted by probability (ties: lower index first), then top-k, then min-p
//!    (keep p >= min_p * p_max), then top-p (smallest prefix whose mass reaches top_p);
//! 5. one uniform draw in [0, kept mass) picks the token.

use crate::layers;
use alloc::vec;
use alloc::vec::Vec;

/// xorshift64* seeded through splitmix64: tiny, fast, and the same on every platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 so that nearby seeds give unrelated streams and 0 is a valid seed.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng { state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z } }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in [0, 1) with 24 bits of randomness (exact in f32).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / 16_777_216.0
    }

    pub fn state(&self) -> u64 {
        self.state
    }

    pub fn from_state(state: u64) -> Rng {
        Rng { state: if state == 0 { 0x2545_F491_4F6C_DD1D } else { state } }
    }
}

/// Temperatures below this are greedy: dividing logits by a tinier one overflows f32 (1e-38
/// turned every logit into infinity), and the distribution is a spike at the argmax anyway.
pub const GREEDY_BELOW: f32 = 1e-3;

/// Sampling settings; the defaults are what `generate` and the UEFI app use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    /// 0 means greedy.
    pub temperature: f32,
    /// 0 means off.
    pub top_k: usize,
    /// 1 means off.
    pub top_p: f32,
    /// 0 means off.
    pub min_p: f32,
    /// 1 means off.
    pub repeat_penalty: f32,
    pub repeat_window: usize,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.0, repeat_penalty: 1.0, repeat_window: 64 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerError {
    Temperature,
    TopP,
    MinP,
    RepeatPenalty,
}

impl core::fmt::Display for SamplerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SamplerError::Temperature => "temperature must be a finite number >= 0",
            SamplerError::TopP => "top-p must be in (0, 1]",
            SamplerError::MinP => "min-p must be in [0, 1]",
            SamplerError::RepeatPenalty => "repeat penalty must be a finite number > 0",
        })
    }
}

impl SamplerConfig {
    pub fn validate(&self) -> Result<(), SamplerError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(SamplerError::Temperature);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(SamplerError::TopP);
        }
        if !(self.min_p >= 0.0 && self.min_p <= 1.0) {
            return Err(SamplerError::MinP);
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return Err(SamplerError::RepeatPenalty);
        }
        Ok(())
    }
}

/// A sampler owns its scratch (sized once for the vocabulary) and its PRNG.
pub struct Sampler {
    pub config: SamplerConfig,
    pub rng: Rng,
    probs: Vec<f32>,
    order: Vec<u32>,
}

impl Sampler {
    pub fn new(vocab_size: usize, config: SamplerConfig, seed: u64) -> Sampler {
        Sampler { config, rng: Rng::new(seed), probs: vec![0.0; vocab_size], order: vec![0; vocab_size] }
    }

    pub(crate) fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// Picks the next token from `logits` (V), given the recent tokens for the penalty.
    /// Allocates nothing.
    pub fn sample(&mut self, logits: &[f32], recent: &[u32]) -> u32 {
        let cfg = self.config;
        let v = logits.len().min(self.probs.len());
        let probs = &mut self.probs[..v];
        probs.copy_from_slice(&logits[..v]);

        if cfg.repeat_penalty != 1.0 {
            let window = &recent[recent.len().saturating_sub(cfg.repeat_window)..];
            for (i, &tok) in window.iter().enumerate() {
                // Each distinct token once: skip repeats of an earlier window entry.
                if (tok as usize) < v && !window[..i].contains(&tok) {
                    let l = &mut probs[tok as usize];
                    *l = if *l > 0.0 { *l / cfg.repeat_penalty } else { *l * cfg.repeat_penalty };
                }
            }
        }

        if cfg.temperature < GREEDY_BELOW {
            return argmax(probs) as u32;
        }
        let inv_t = 1.0 / cfg.temperature;
        for p in probs.iter_mut() {
            *p *= inv_t;
        }
        layers::softmax(probs);

        let filtering = cfg.top_k > 0 || cfg.top_p < 1.0 || cfg.min_p > 0.0;
        if !filtering {
            let r = self.rng.next_f32();
            return pick(probs, None, r, 1.0);
        }

        // Sort candidates by probability; with top-k, partition first so only k get sorted.
        let order = &mut self.order[..v];
        for (i, o) in order.iter_mut().enumerate() {
            *o = i as u32;
        }
        let by_prob = |a: &u32, b: &u32| {
            let (pa, pb) = (probs[*a as usize], probs[*b as usize]);
            pb.total_cmp(&pa).then(a.cmp(b))
        };
        let mut kept = v;
        if cfg.top_k > 0 && cfg.top_k < v {
            order.select_nth_unstable_by(cfg.top_k - 1, by_prob);
            kept = cfg.top_k;
        }
        order[..kept].sort_unstable_by(by_prob);

        let p_max = probs[order[0] as usize];
        if cfg.min_p > 0.0 {
            let floor = cfg.min_p * p_max;
            kept = order[..kept].iter().take_while(|&&i| probs[i as usize] >= floor).count().max(1);
        }
        let mut mass = 0.0f32;
        for &i in &order[..kept] {
            mass += probs[i as usize];
        }
        if cfg.top_p < 1.0 {
            let target = cfg.top_p * mass;
            let mut cum = 0.0f32;
            let mut n = 0;
            for &i in &order[..kept] {
                cum += probs[i as usize];
                n += 1;
                if cum >= target {
                    break;
                }
            }
            kept = n;
            mass = cum;
        }
        let r = self.rng.next_f32();
        pick(probs, Some(&order[..kept]), r, mass)
    }
}

/// Index of the largest value; the first one on ties.
pub fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for i in 1..x.len() {
        if x[i] > x[best] {
            best = i;
        }
    }
    best
}

/// Walks the cumulative distribution of `candidates` (or all indices) to the draw r * mass.
fn pick(probs: &[f32], candidates: Option<&[u32]>, r: f32, mass: f32) -> u32 {
    let target = r * mass;
    let mut cum = 0.0f32;
    match candidates {
        Some(c) => {
            for &i in c {
                cum += probs[i as usize];
                if target < cum {
                    return i;
                }
            }
            *c.last().unwrap() // rounding left the draw just past the end
        }
        None => {
            for (i, &p) in probs.iter().enumerate() {
                cum += p;
                if target < cum {
                    return i as u32;
                }
            }
            (probs.len() - 1) as u32
        }
    }
}

impl core::error::Error for SamplerError {}
