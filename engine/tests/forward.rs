//! The engine's forward pass against the separately written, deliberately naive reference in
//! llm-testkit (f64, full sequence, no cache), and KV-cache decoding against one full-sequence pass.
mod common;

use common::*;
use llm_engine::{Kernels, LlmcConfig, checkpoint};

fn reference_forward(cfg: &LlmcConfig, p: &[f32], tokens: &[u32]) -> Vec<Vec<f64>> {
    let p64: Vec<f64> = p.iter().map(|&x| x as f64).collect();
    llm_testkit::reference_forward(cfg, &p64, tokens)
}

fn shapes() -> Vec<LlmcConfig> {
    vec![
        config(1, 1, 8, 8, 256, 256),
        config(2, 2, 64, 16, 256, 256),
        config(3, 4, 32, 12, 256, 320), // padded vocabulary
        config(4, 8, 128, 10, 256, 256),
        config(2, 8, 64, 9, 300, 384), // V not a byte vocabulary, padded
        config(1, 3, 24, 7, 50, 64),   // head size 8, odd everything
        config(2, 5, 40, 6, 97, 100),  // head size 8, C not a multiple of 16
    ]
}

/// Every kernel set this CPU runs (portable, SSE2, AVX2, AVX2 with 8-bit activations, and
/// AVX-VNNI where present, on the test machines; f32 checkpoints give the 8-bit sets the same
/// numbers as AVX2).
fn kernel_sets() -> Vec<Kernels> {
    let k = Kernels::available();
    assert!(k.len() >= 4, "this test machine has no usable AVX2+FMA: the AVX2 kernels would go untested");
    k
}

#[test]
fn engine_matches_naive_reference_on_random_checkpoints() {
    for (i, cfg) in shapes().into_iter().enumerate() {
        let params = random_params(&cfg, 100 + i as u64, 0.15);
        let bytes = checkpoint::encode_v3(&cfg, &params);
        let model = llm_engine::load(&bytes).unwrap().model;
        let tokens = random_tokens(cfg.context, cfg.vocab_size, 7 + i as u64);
        let reference = reference_forward(&cfg, &params, &tokens);
        for k in kernel_sets() {
            let mut st = model.new_state(k);
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
    let model = checkpoint::model_from_params(&cfg, &params).unwrap();
    let mut st = model.new_state(Kernels::portable());
    let got = model.forward_all(&mut st, &tokens, 0).unwrap();
    let worst = (0..8 * 256).map(|i| (got[i] as f64 - reference[i / 256][i % 256]).abs()).fold(0.0, f64::max);
    assert!(worst > 1e-3);
}

#[test]
fn kv_cache_decoding_equals_full_forward_at_every_position() {
    for (i, cfg) in shapes().into_iter().enumerate() {
        let params = random_params(&cfg, 200 + i as u64, 0.15);
        let model = checkpoint::model_from_params(&cfg, &params).unwrap();
        let tokens = random_tokens(cfg.context, cfg.vocab_size, 11 + i as u64);
        for k in kernel_sets() {
            let mut full_state = model.new_state(k);
            let full = model.forward_all(&mut full_state, &tokens, 0).unwrap();
            let v = cfg.vocab_size;
            // One token at a time.
            let mut st = model.new_state(k);
            for (t, &tok) in tokens.iter().enumerate() {
                let logits = model.forward(&mut st, &[tok], t).unwrap();
                assert_eq!(logits, &full[t * v..(t + 1) * v], "shape {cfg:?} kernels {k:?} position {t}");
            }
            // A prefill of a prefix followed by decoding.
            let split = tokens.len() / 2;
            let mut st = model.new_state(k);
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
    let p3 = random_params(&cfg, 3, 0.1);
    let model = checkpoint::model_from_params(&cfg, &p3).unwrap();
    let mut st = model.new_state(Kernels::portable());
    assert!(matches!(model.forward(&mut st, &[16], 0), Err(llm_engine::EngineError::TokenOutOfRange { token: 16, vocab: 16 })));
    assert!(matches!(model.forward(&mut st, &[1, 2, 3], 2), Err(llm_engine::EngineError::ContextOverflow { needed: 5, max: 4 })));
    assert!(matches!(model.forward(&mut st, &[], 0), Err(llm_engine::EngineError::EmptyInput)));
}

#[test]
fn results_are_identical_for_any_number_of_workers() {
    let cfg = config(2, 4, 64, 24, 256, 256);
    let p9 = random_params(&cfg, 9, 0.2);
    let model = checkpoint::model_from_params(&cfg, &p9).unwrap();
    let tokens = random_tokens(24, 256, 10);
    for k in kernel_sets() {
        let mut serial = model.new_state(k);
        let want: Vec<u32> = model.forward(&mut serial, &tokens[..20], 0).unwrap().iter().map(|x| x.to_bits()).collect();
        let want_next: Vec<u32> = model.forward(&mut serial, &tokens[20..21], 20).unwrap().iter().map(|x| x.to_bits()).collect();
        for n in [2, 3, 4] {
            let mut st = model.new_state(k);
            let got: Vec<u32> =
                model.forward_with(&mut st, &tokens[..20], 0, &EveryCoreSplits(n)).unwrap().iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, want, "{k:?}, {n} workers, prefill");
            let got: Vec<u32> =
                model.forward_with(&mut st, &tokens[20..21], 20, &EveryCoreSplits(n)).unwrap().iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, want_next, "{k:?}, {n} workers, decode");
        }
    }
}

/// The reported heap corruption: a state built for a 1-head model used with a 4-head model
/// and 2 workers. A state built for another model is refused, whatever the worker count.
#[test]
fn a_state_built_for_another_model_is_refused() {
    let one_head = config(1, 1, 32, 8, 256, 256);
    let four_heads = config(1, 4, 32, 8, 256, 256);
    let bigger = config(2, 4, 64, 16, 256, 256);
    let (p1, p4, pb) = (random_params(&one_head, 1, 0.1), random_params(&four_heads, 2, 0.1), random_params(&bigger, 3, 0.1));
    let m1 = checkpoint::model_from_params(&one_head, &p1).unwrap();
    let m4 = checkpoint::model_from_params(&four_heads, &p4).unwrap();
    let mb = checkpoint::model_from_params(&bigger, &pb).unwrap();
    for (model, other) in [(&m4, &m1), (&mb, &m1), (&m1, &mb)] {
        let mut st = other.new_state(Kernels::detect());
        for workers in [1, 2] {
            let r = model.forward_with(&mut st, &[1, 2, 3], 0, &EveryCoreSplits(workers));
            assert_eq!(r.err(), Some(llm_engine::EngineError::StateMismatch));
        }
    }
    // A shorter context is a state of this model: accepted, and bounded by its own length.
    let mut short = mb.new_state_with_context(Kernels::detect(), 4).unwrap();
    assert!(mb.forward(&mut short, &[1, 2, 3, 4], 0).is_ok());
    assert_eq!(mb.forward(&mut short, &[5], 4).err(), Some(llm_engine::EngineError::ContextOverflow { needed: 5, max: 4 }));
    assert!(mb.new_state_with_context(Kernels::detect(), 17).is_err());
    assert!(mb.new_state_with_context(Kernels::detect(), 0).is_err());
}

/// Prefill longer than one chunk (MAX_BATCH rows) equals token-by-token decoding.
#[test]
fn prefill_in_chunks_equals_decoding() {
    let cfg = config(1, 2, 16, 300, 256, 256);
    let p = random_params(&cfg, 5, 0.15);
    let model = checkpoint::model_from_params(&cfg, &p).unwrap();
    let tokens = random_tokens(300, 256, 6);
    for k in kernel_sets() {
        let mut a = model.new_state(k);
        let all = model.forward_all(&mut a, &tokens, 0).unwrap();
        let last: Vec<f32> = model.forward(&mut a, &tokens, 0).unwrap().to_vec();
        assert_eq!(&all[299 * 256..], &last[..]);
        let mut b = model.new_state(k);
        for (t, &tok) in tokens.iter().enumerate() {
            let l = model.forward(&mut b, &[tok], t).unwrap();
            assert_eq!(l, &all[t * 256..(t + 1) * 256], "{k:?} position {t}");
        }
    }
}
