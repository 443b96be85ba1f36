//! The engine's forward pass against a separately written, deliberately naive reference
//! (f64, full sequence, no cache), and KV-cache decoding against one full-sequence pass.
mod common;

use common::*;
use llm_engine::{checkpoint, Config, KernelSet, Model, RunState};

/// Naive GPT-2 forward in f64: returns logits (T, V) for `tokens` at positions 0..T.
/// Written from the GPT-2 paper / llm.c description, sharing no code with the engine.
fn reference_forward(cfg: &Config, p: &[f32], tokens: &[u32]) -> Vec<Vec<f64>> {
    let (c, l_n, nh, v, maxt) = (cfg.channels, cfg.num_layers, cfg.num_heads, cfg.vocab_size, cfg.max_seq_len);
    let hs = c / nh;
    // Walk the flat parameter array in file order.
    let mut at = 0;
    let mut take = |n: usize| {
        let s: Vec<f64> = p[at..at + n].iter().map(|&x| x as f64).collect();
        at += n;
        s
    };
    let vp = cfg.padded_vocab_size;
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

    let ln = |x: &[f64], w: &[f64], b: &[f64]| -> Vec<f64> {
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / x.len() as f64;
        x.iter().enumerate().map(|(i, a)| (a - mean) / (var + 1e-5).sqrt() * w[i] + b[i]).collect()
    };
    // y[o] = sum_i W[o][i] x[i] + b[o]
    let linear = |x: &[f64], w: &[f64], b: Option<&[f64]>, out: usize| -> Vec<f64> {
        (0..out)
            .map(|o| {
                let mut s = 0.0;
                for i in 0..x.len() {
                    s += w[o * x.len() + i] * x[i];
                }
                s + b.map_or(0.0, |b| b[o])
            })
            .collect()
    };
    let gelu = |x: f64| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());

    let t_n = tokens.len();
    let mut x: Vec<Vec<f64>> = (0..t_n)
        .map(|t| (0..c).map(|i| wte[tokens[t] as usize * c + i] + wpe[t * c + i]).collect())
        .collect();
    for l in 0..l_n {
        let sl = |v: &Vec<f64>, n: usize| v[l * n..(l + 1) * n].to_vec();
        let qkv: Vec<Vec<f64>> = x
            .iter()
            .map(|row| {
                let h = ln(row, &sl(&ln1w, c), &sl(&ln1b, c));
                linear(&h, &sl(&qkvw, 3 * c * c), Some(&sl(&qkvb, 3 * c)), 3 * c)
            })
            .collect();
        for t in 0..t_n {
            let mut y = vec![0.0; c];
            for h in 0..nh {
                let q = &qkv[t][h * hs..(h + 1) * hs];
                let scores: Vec<f64> = (0..=t)
                    .map(|s| {
                        let k = &qkv[s][c + h * hs..c + (h + 1) * hs];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (hs as f64).sqrt()
                    })
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
            let proj = linear(&y, &sl(&attprojw, c * c), Some(&sl(&attprojb, c)), c);
            for i in 0..c {
                x[t][i] += proj[i];
            }
        }
        for t in 0..t_n {
            let h = ln(&x[t], &sl(&ln2w, c), &sl(&ln2b, c));
            let f: Vec<f64> = linear(&h, &sl(&fcw, 4 * c * c), Some(&sl(&fcb, 4 * c)), 4 * c).into_iter().map(gelu).collect();
            let o = linear(&f, &sl(&fcprojw, 4 * c * c), Some(&sl(&fcprojb, c)), c);
            for i in 0..c {
                x[t][i] += o[i];
            }
        }
    }
    x.iter().map(|row| linear(&ln(row, &lnfw, &lnfb), &wte[..v * c], None, v)).collect()
}

fn shapes() -> Vec<Config> {
    vec![
        config(1, 1, 8, 8, 256, 256),
        config(2, 2, 64, 16, 256, 256),
        config(3, 4, 32, 12, 256, 320), // padded vocabulary
        config(4, 8, 128, 10, 256, 256),
        config(2, 8, 64, 9, 300, 384),  // V not a byte vocabulary, padded
        config(1, 3, 24, 7, 50, 64),    // head size 8, odd everything
        config(2, 5, 40, 6, 97, 100),   // head size 8, C not a multiple of 16
    ]
}

fn kernel_sets() -> Vec<KernelSet> {
    let mut k = vec![KernelSet::Scalar];
    assert!(
        llm_engine::simd::avx2_fma_usable(),
        "this test machine has no usable AVX2+FMA: the AVX2 kernels would go untested"
    );
    k.push(KernelSet::Avx2Fma);
    k
}

#[test]
fn engine_matches_naive_reference_on_random_checkpoints() {
    for (i, cfg) in shapes().into_iter().enumerate() {
        let params = random_params(&cfg, 100 + i as u64, 0.15);
        let bytes = checkpoint::encode_v3(&cfg, &params);
        let model = Model::from_bytes(&bytes).unwrap();
        let tokens = random_tokens(cfg.max_seq_len, cfg.vocab_size, 7 + i as u64);
        let reference = reference_forward(&cfg, &params, &tokens);
        for k in kernel_sets() {
            let mut st = RunState::new(&cfg, k);
            let got = model.forward_all(&mut st, &tokens, 0).unwrap();
            let mut worst = 0.0f64;
            for t in 0..tokens.len() {
                for j in 0..cfg.vocab_size {
                    let (g, r) = (got[t * cfg.vocab_size + j] as f64, reference[t][j]);
                    worst = worst.max((g - r).abs() / (1.0 + r.abs()));
                }
            }
            assert!(worst < 2e-4, "shape {cfg:?} kernels {k:?}: worst relative error {worst}");
        }
    }
}

#[test]
fn reference_detects_a_broken_model() {
    // The comparison above can fail: perturb one attention weight and it must notice.
    let cfg = config(2, 2, 16, 8, 256, 256);
    let mut params = random_params(&cfg, 1, 0.15);
    let tokens = random_tokens(8, 256, 2);
    let reference = reference_forward(&cfg, &params, &tokens);
    let qkv_at = cfg.tensor_offsets()[4];
    params[qkv_at + 3] += 0.5;
    let model = Model::from_params(cfg, params).unwrap();
    let mut st = RunState::new(&cfg, KernelSet::Scalar);
    let got = model.forward_all(&mut st, &tokens, 0).unwrap();
    let worst = (0..8 * 256).map(|i| (got[i] as f64 - reference[i / 256][i % 256]).abs()).fold(0.0, f64::max);
    assert!(worst > 1e-3);
}

#[test]
fn kv_cache_decoding_equals_full_forward_at_every_position() {
    for (i, cfg) in shapes().into_iter().enumerate() {
        let params = random_params(&cfg, 200 + i as u64, 0.15);
        let model = Model::from_params(cfg, params).unwrap();
        let tokens = random_tokens(cfg.max_seq_len, cfg.vocab_size, 11 + i as u64);
        for k in kernel_sets() {
            let mut full_state = RunState::new(&cfg, k);
            let full = model.forward_all(&mut full_state, &tokens, 0).unwrap();
            let v = cfg.vocab_size;
            // One token at a time.
            let mut st = RunState::new(&cfg, k);
            for (t, &tok) in tokens.iter().enumerate() {
                let logits = model.forward(&mut st, &[tok], t).unwrap();
                assert_eq!(logits, &full[t * v..(t + 1) * v], "shape {cfg:?} kernels {k:?} position {t}");
            }
            // A prefill of a prefix followed by decoding.
            let split = tokens.len() / 2;
            let mut st = RunState::new(&cfg, k);
            let logits = model.forward(&mut st, &tokens[..split], 0).unwrap();
            assert_eq!(logits, &full[(split - 1) * v..split * v]);
            for t in split..tokens.len() {
                let logits = model.forward(&mut st, &tokens[t..t + 1], t).unwrap();
                assert_eq!(logits, &full[t * v..(t + 1) * v]);
            }
        }
    }
}

#[test]
fn forward_rejects_bad_input_without_panicking() {
    let cfg = config(1, 1, 8, 4, 16, 16);
    let model = Model::from_params(cfg, random_params(&cfg, 3, 0.1)).unwrap();
    let mut st = RunState::new(&cfg, KernelSet::Scalar);
    assert!(matches!(model.forward(&mut st, &[16], 0), Err(llm_engine::EngineError::TokenOutOfRange { token: 16, vocab: 16 })));
    assert!(matches!(model.forward(&mut st, &[1, 2, 3], 2), Err(llm_engine::EngineError::ContextOverflow { needed: 5, max: 4 })));
    assert!(matches!(model.forward(&mut st, &[], 0), Err(llm_engine::EngineError::EmptyInput)));
}
