//! AdamW with bias correction, the learning-rate schedule, and gradient-norm clipping.

use crate::gpt;
use llm_engine::checkpoint::LlmcConfig;
use rayon::prelude::*;

/// Linear warmup over `warmup` steps to `lr`, then cosine decay to `lr * min_fraction` at
/// `total` steps. `step` counts from 0.
pub fn learning_rate(step: usize, lr: f32, warmup: usize, total: usize, min_fraction: f32) -> f32 {
    if step < warmup {
        return lr * (step + 1) as f32 / warmup as f32;
    }
    let decay_steps = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f32 / decay_steps as f32).min(1.0);
    let min_lr = lr * min_fraction;
    min_lr + 0.5 * (1.0 + (std::f32::consts::PI * progress).cos()) * (lr - min_lr)
}

/// sqrt(sum g^2) over fixed 64K-element chunks added in order (thread-count independent).
pub fn grad_norm(grads: &[f32]) -> f32 {
    let parts: Vec<f64> = grads.par_chunks(1 << 16).map(|c| c.iter().map(|&g| (g as f64) * (g as f64)).sum()).collect();
    parts.iter().sum::<f64>().sqrt() as f32
}

/// Which tensors get weight decay: the matrices (embeddings and projections), not the
/// biases and LayerNorm parameters, as in GPT-2 / nanoGPT.
pub fn decay_mask(cfg: &LlmcConfig) -> Vec<bool> {
    let decayed = [gpt::WTE, gpt::WPE, gpt::QKVW, gpt::ATTPROJW, gpt::FCW, gpt::FCPROJW];
    let mut mask = Vec::with_capacity(cfg.num_parameters());
    for (i, n) in cfg.tensor_sizes().iter().enumerate() {
        mask.extend(std::iter::repeat_n(decayed.contains(&i), *n));
    }
    mask
}

pub struct AdamW {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl AdamW {
    /// One update at 1-based step `t`; grads are scaled by `grad_scale` (clipping) first.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        mask: &[bool],
        lr: f32,
        t: usize,
        grad_scale: f32,
    ) {
        let (b1, b2, eps, wd) = (self.beta1, self.beta2, self.eps, self.weight_decay);
        let c1 = 1.0 - b1.powi(t as i32);
        let c2 = 1.0 - b2.powi(t as i32);
        params.par_iter_mut().zip(grads.par_iter()).zip(m.par_iter_mut().zip(v.par_iter_mut())).zip(mask.par_iter()).for_each(
            |(((p, &g), (m, v)), &decay)| {
                let g = g * grad_scale;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let mhat = *m / c1;
                let vhat = *v / c2;
                let wd_term = if decay { wd * *p } else { 0.0 };
                *p -= lr * (mhat / (vhat.sqrt() + eps) + wd_term);
            },
        );
    }
}
