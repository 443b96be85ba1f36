//! llama2.c checkpoints (Llama 2: RMSNorm, RoPE, grouped-query attention, SwiGLU) run by the
//! engine against the separately written, deliberately naive f64 reference in
//! `llm_testkit::llama`, which parses the file itself. Also: KV-cache decoding against prefill,
//! any worker count against serial, the comparison's power to fail, typed format errors,
//! format detection by content, and zero-copy loading.
//!
//! Tolerance. Every logit is compared as |engine - reference| / (1 + |reference|) < TOL with
//! TOL = 1e-4, i.e. relative to the logit scale (logits here are O(1..10)). The engine works in
//! f32 (unit roundoff u = 6e-8); the f64 reference is exact by comparison. A dot product of
//! length n has a worst-case relative error of about n * u against the sum of |terms|
//! (typically sqrt(n) * u); the longest dots here are 300 (an FFN down-projection), the values
//! pass through up to 3 layers of RMSNorm, RoPE (f32 angles up to 63 rad: ~4e-6 rad error),
//! softmax and residual adds, and the logits are sums of 128 products of such values: a few
//! 1e-6 to 1e-5 of the logit scale. Measured worst over every shape and kernel set: 1.2e-5
//! (print it with `--nocapture`), so TOL leaves a margin of about 8x for other CPUs' libm
//! and summation orders, while staying 10x below the smallest real mistake tested here: one
//! changed weight of wk, w1 and w3 swapped, or a classifier read as tied all move logits by
//! more than 10 * TOL (asserted below).
mod common;

use common::*;
use llm_engine::formats::llama2c::{self, Llama2cConfig, Llama2cError, Llama2cLoadError};
use llm_engine::{Format, Kernels, LoadError, checkpoint};
use llm_testkit::llama::{Llama2cWeights, LlamaRef, LlamaShape, random_llama2c};
use proptest::prelude::*;

const TOL: f64 = 1e-4;
const SCALE: f32 = 0.15;

#[allow(clippy::too_many_arguments)]
fn shape(
    dim: usize,
    hidden_dim: usize,
    n_layers: usize,
    n_heads: usize,
    n_kv_heads: usize,
    vocab_size: usize,
    seq_len: usize,
    shared: bool,
) -> LlamaShape {
    LlamaShape { dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, shared_classifier: shared }
}

/// GQA (n_kv < n_heads, including multi-query 6/1) and plain MHA, shared and separate
/// classifier, head sizes 8, 16, 32, 64, hidden dims that are no multiple of 8 or 16, vocab
/// 32..512, seq_len up to 64, 1 to 3 layers.
fn shapes() -> Vec<LlamaShape> {
    vec![
        shape(32, 72, 2, 4, 2, 64, 32, true),    // hs 8, GQA 4/2
        shape(64, 150, 3, 8, 2, 512, 48, false), // hs 8, GQA 8/2, 3 layers
        shape(96, 200, 1, 6, 1, 100, 64, true),  // hs 16, MQA 6/1
        shape(64, 176, 2, 4, 4, 256, 40, false), // hs 16, MHA
        shape(64, 100, 2, 2, 1, 32, 24, true),   // hs 32, GQA 2/1
        shape(128, 300, 1, 2, 2, 77, 20, false), // hs 64, MHA, odd vocab
        shape(128, 130, 2, 2, 1, 300, 16, true), // hs 64, GQA
        shape(16, 37, 1, 2, 2, 33, 8, false),    // hs 8, odd hidden and vocab, tiny
        shape(48, 61, 3, 6, 3, 129, 64, true),   // hs 8, GQA 6/3, odd hidden
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

/// max over every position and logit of |got - want| / (1 + |want|); got is (N, V) flat.
fn worst_error(got: &[f32], want: &[Vec<f64>], v: usize) -> f64 {
    assert_eq!(got.len(), want.len() * v);
    let mut worst = 0.0f64;
    for (t, row) in want.iter().enumerate() {
        assert_eq!(row.len(), v);
        for j in 0..v {
            let (g, r) = (got[t * v + j] as f64, row[j]);
            // NaN must fail the comparison, not slip through max().
            let e = if g.is_finite() { (g - r).abs() / (1.0 + r.abs()) } else { f64::INFINITY };
            worst = worst.max(e);
        }
    }
    worst
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn load_llama(bytes: &[u8]) -> (Llama2cConfig, llm_engine::Model<'_>) {
    let loaded = llm_engine::load(bytes).unwrap_or_else(|e| panic!("load failed: {e}"));
    match loaded.format {
        Format::Llama2c(cfg) => (cfg, loaded.model),
        other => panic!("a llama2.c file loaded as {other:?}"),
    }
}

#[test]
fn engine_matches_naive_reference_on_random_llama2c_checkpoints() {
    let mut overall = 0.0f64;
    for (i, s) in shapes().into_iter().enumerate() {
        let bytes = random_llama2c(&s, 300 + i as u64, SCALE);
        let reference_model = LlamaRef::from_llama2c(&bytes);
        assert_eq!(reference_model.shape(), s);
        let (cfg, model) = load_llama(&bytes);
        assert_eq!(
            (cfg.d_model, cfg.ffn_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.context, cfg.shared_classifier),
            (s.dim, s.hidden_dim, s.n_layers, s.n_heads, s.n_kv_heads, s.vocab_size, s.seq_len, s.shared_classifier)
        );
        let sp = model.spec();
        assert_eq!(sp.arch, llm_engine::spec::Arch::LLAMA);
        assert_eq!(
            (sp.n_heads, sp.n_kv_heads, sp.head_dim, sp.ffn_dim, sp.context),
            (s.n_heads, s.n_kv_heads, s.head_size(), s.hidden_dim, s.seq_len)
        );
        assert_eq!(sp.tied_output, s.shared_classifier);

        let v = s.vocab_size;
        let tokens = random_tokens(s.seq_len, v, 17 + i as u64);
        let want = reference_model.logits_all(&tokens);
        let scale = want.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(scale > 0.5, "shape {s:?}: logits too small ({scale}) for the comparison to mean anything");
        for k in kernel_sets() {
            // All positions in one prefill.
            let mut st = model.new_state(k);
            let all = model.forward_all(&mut st, &tokens, 0).unwrap();
            let e_all = worst_error(&all, &want, v);
            assert!(e_all < TOL, "shape {s:?} kernels {k:?} forward_all: worst relative error {e_all}");
            // Token by token through the KV cache.
            let mut st = model.new_state(k);
            let mut dec = Vec::with_capacity(all.len());
            for (t, &tok) in tokens.iter().enumerate() {
                dec.extend_from_slice(model.forward(&mut st, &[tok], t).unwrap());
            }
            let e_dec = worst_error(&dec, &want, v);
            assert!(e_dec < TOL, "shape {s:?} kernels {k:?} decoding: worst relative error {e_dec}");
            // One forward of the whole sequence: the last token's logits.
            let mut st = model.new_state(k);
            let last = model.forward(&mut st, &tokens, 0).unwrap();
            let e_last = worst_error(last, &want[want.len() - 1..], v);
            assert!(e_last < TOL, "shape {s:?} kernels {k:?} forward: worst relative error {e_last}");
            println!("shape {s:?} kernels {}: logit scale {scale:.2}, worst {e_all:.2e} (prefill) {e_dec:.2e} (decode)", k.name());
            overall = overall.max(e_all).max(e_dec);
        }
    }
    println!("worst relative error over all shapes and kernels: {overall:.3e} (tolerance {TOL:e})");
}

#[test]
fn kv_cache_decoding_equals_prefill_bit_for_bit() {
    for (i, s) in shapes().into_iter().enumerate() {
        let bytes = random_llama2c(&s, 400 + i as u64, SCALE);
        let (_, model) = load_llama(&bytes);
        let v = s.vocab_size;
        let tokens = random_tokens(s.seq_len, v, 23 + i as u64);
        for k in kernel_sets() {
            let mut full_state = model.new_state(k);
            let full = model.forward_all(&mut full_state, &tokens, 0).unwrap();
            // One token at a time.
            let mut st = model.new_state(k);
            for (t, &tok) in tokens.iter().enumerate() {
                let logits = model.forward(&mut st, &[tok], t).unwrap();
                assert_eq!(bits(logits), bits(&full[t * v..(t + 1) * v]), "shape {s:?} kernels {k:?} position {t}");
            }
            // A prefill of a prefix, then decoding.
            let split = tokens.len() / 2;
            let mut st = model.new_state(k);
            let logits = model.forward(&mut st, &tokens[..split], 0).unwrap();
            assert_eq!(bits(logits), bits(&full[(split - 1) * v..split * v]), "shape {s:?} kernels {k:?} prefill");
            for t in split..tokens.len() {
                let logits = model.forward(&mut st, &tokens[t..t + 1], t).unwrap();
                assert_eq!(bits(logits), bits(&full[t * v..(t + 1) * v]), "shape {s:?} kernels {k:?} position {t} after prefill");
            }
        }
    }
}

#[test]
fn results_are_identical_for_any_number_of_workers() {
    // GQA 8/2 and MQA 6/1 (attention split by query heads sharing one kv head), and MHA.
    for (i, s) in [shape(64, 150, 2, 8, 2, 256, 40, false), shape(96, 200, 1, 6, 1, 100, 40, true), shape(64, 90, 2, 4, 4, 77, 40, true)]
        .into_iter()
        .enumerate()
    {
        let bytes = random_llama2c(&s, 500 + i as u64, SCALE);
        let (_, model) = load_llama(&bytes);
        let tokens = random_tokens(s.seq_len, s.vocab_size, 31 + i as u64);
        for k in kernel_sets() {
            let mut serial = model.new_state(k);
            let want = bits(model.forward(&mut serial, &tokens[..30], 0).unwrap());
            let want_next = bits(model.forward(&mut serial, &tokens[30..31], 30).unwrap());
            let want_2 = bits(model.forward(&mut serial, &tokens[31..33], 31).unwrap());
            for n in [2, 3, 4] {
                let par = EveryCoreSplits(n);
                let mut st = model.new_state(k);
                let got = bits(model.forward_with(&mut st, &tokens[..30], 0, &par).unwrap());
                assert_eq!(got, want, "{s:?} {k:?}, {n} workers, prefill");
                let got = bits(model.forward_with(&mut st, &tokens[30..31], 30, &par).unwrap());
                assert_eq!(got, want_next, "{s:?} {k:?}, {n} workers, decode");
                let got = bits(model.forward_with(&mut st, &tokens[31..33], 31, &par).unwrap());
                assert_eq!(got, want_2, "{s:?} {k:?}, {n} workers, two-token step");
            }
        }
    }
}

/// The engine's logits for `bytes` against the reference's for `reference_bytes`.
fn engine_vs_reference(bytes: &[u8], reference_bytes: &[u8], tokens: &[u32]) -> f64 {
    let want = LlamaRef::from_llama2c(reference_bytes).logits_all(tokens);
    let (cfg, model) = load_llama(bytes);
    let mut st = model.new_state(Kernels::portable());
    let got = model.forward_all(&mut st, tokens, 0).unwrap();
    worst_error(&got, &want, cfg.vocab_size)
}

#[test]
fn the_comparison_detects_a_broken_model() {
    let s = shape(32, 72, 2, 4, 2, 64, 16, false);
    let w = Llama2cWeights::random(&s, 7, SCALE);
    let good = w.to_bytes();
    let tokens = random_tokens(16, 64, 8);
    assert!(engine_vs_reference(&good, &good, &tokens) < TOL);

    // One weight of wk changed (keys only matter from the second position on).
    let mut wk = w.clone();
    wk.wk[3] += 0.5;
    let e = engine_vs_reference(&wk.to_bytes(), &good, &tokens);
    assert!(e > 10.0 * TOL, "a changed wk weight went unnoticed: {e}");

    // w1 (gate) and w3 (up) swapped in the file: silu(w3 x) * (w1 x) instead of silu(w1 x) * (w3 x).
    let mut swapped = w.clone();
    std::mem::swap(&mut swapped.w1, &mut swapped.w3);
    let swapped_bytes = swapped.to_bytes();
    let e = engine_vs_reference(&swapped_bytes, &good, &tokens);
    assert!(e > 10.0 * TOL, "w1 and w3 swapped went unnoticed: {e}");
    // ...while the engine and the reference agree on the swapped file itself.
    assert!(engine_vs_reference(&swapped_bytes, &swapped_bytes, &tokens) < TOL);

    // A separate classifier that is not the embedding: reading it as tied would be caught.
    let mut tied = w.clone();
    tied.shape.shared_classifier = true;
    tied.wcls = None;
    let e = engine_vs_reference(&good, &tied.to_bytes()[..], &tokens);
    assert!(e > 10.0 * TOL, "the separate classifier was not used: {e}");

    // The skipped freq_cis blocks really are skipped: junk in them changes no bit.
    let mut junk = w.clone();
    junk.freq_junk.iter_mut().for_each(|x| *x = f32::NAN);
    let junk_bytes = junk.to_bytes();
    let (_, m_good) = load_llama(&good);
    let (_, m_junk) = load_llama(&junk_bytes);
    let (mut a, mut b) = (m_good.new_state(Kernels::portable()), m_junk.new_state(Kernels::portable()));
    assert_eq!(bits(&m_good.forward_all(&mut a, &tokens, 0).unwrap()), bits(&m_junk.forward_all(&mut b, &tokens, 0).unwrap()));
}

// --- format errors ------------------------------------------------------------------------

fn small_file() -> (LlamaShape, Vec<u8>) {
    let s = shape(16, 24, 1, 2, 1, 32, 8, false);
    (s, random_llama2c(&s, 11, SCALE))
}

fn set_field(bytes: &mut [u8], field: usize, value: i32) {
    bytes[field * 4..field * 4 + 4].copy_from_slice(&value.to_le_bytes());
}

/// The llama2.c error of a file `load` does not recognise (every header problem is one).
fn header_error(bytes: &[u8]) -> Llama2cError {
    let direct = llama2c::parse_header(bytes).expect_err("parse_header accepted a bad file");
    match llama2c::load(bytes) {
        Err(Llama2cLoadError::File(e)) => assert_eq!(e, direct),
        Err(e) => panic!("llama2c::load: {e:?}, parse_header: {direct:?}"),
        Ok(_) => panic!("llama2c::load accepted a file parse_header refuses"),
    }
    match llm_engine::load(bytes) {
        Err(LoadError::Unrecognized { llama2c: e, first_word }) => {
            assert_eq!(first_word, bytes.get(..4).map(|b| i32::from_le_bytes(b.try_into().unwrap())));
            assert_eq!(e, direct);
        }
        Err(e) => panic!("load: {e:?}, expected Unrecognized"),
        Ok(_) => panic!("load accepted a bad file"),
    }
    direct
}

#[test]
fn truncated_and_overlong_files_are_refused() {
    let (s, bytes) = small_file();
    let n = bytes.len();
    assert_eq!(n, s.file_size());
    assert!(llm_engine::load(&bytes).is_ok());
    let mut cuts: Vec<usize> = (0..64).collect();
    cuts.extend([100, n / 2, n - 4 * s.dim, n - 4, n - 1]);
    for cut in cuts {
        let e = header_error(&bytes[..cut]);
        if cut < llama2c::HEADER_BYTES {
            assert_eq!(e, Llama2cError::TooShort { len: cut }, "cut at {cut}");
        } else {
            assert_eq!(e, Llama2cError::SizeMismatch { expected: n, found: cut }, "cut at {cut}");
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(header_error(&longer), Llama2cError::SizeMismatch { expected: n, found: n + 1 });
    longer.extend_from_slice(&[0; 3]);
    assert_eq!(header_error(&longer), Llama2cError::SizeMismatch { expected: n, found: n + 4 });
}

#[test]
fn bad_headers_are_typed_errors() {
    let (_, bytes) = small_file();
    const NAMES: [&str; 7] = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
    let with = |changes: &[(usize, i32)]| {
        let mut b = bytes.clone();
        for &(f, v) in changes {
            set_field(&mut b, f, v);
        }
        b
    };
    // Zero, negative and absurd values of every field.
    for (field, name) in NAMES.iter().enumerate() {
        for value in [0, -1, -16, i32::MIN, i32::MAX] {
            if field == 5 && value < 0 && value != i32::MIN && value != -1 {
                continue; // a negative vocab_size is valid: a separate classifier
            }
            match header_error(&with(&[(field, value)])) {
                Llama2cError::BadDimension { name: n, value: got, .. } => {
                    assert_eq!(n, *name, "field {field} = {value}");
                    let expected = if field == 5 { (value as i64).abs() } else { value as i64 };
                    assert_eq!(got, expected, "field {field} = {value}");
                }
                // vocab_size -1 is valid as a number; the file then has the wrong size.
                Llama2cError::SizeMismatch { .. } if field == 5 && value == -1 => {}
                e => panic!("field {name} = {value}: {e:?}"),
            }
        }
    }
    // Structural problems.
    assert_eq!(header_error(&with(&[(3, 3)])), Llama2cError::DimNotDivisible { dim: 16, heads: 3 });
    assert_eq!(header_error(&with(&[(3, 4), (4, 3)])), Llama2cError::HeadsNotDivisible { heads: 4, kv_heads: 3 });
    assert_eq!(header_error(&with(&[(3, 2), (4, 4)])), Llama2cError::HeadsNotDivisible { heads: 2, kv_heads: 4 });
    assert_eq!(header_error(&with(&[(0, 12), (3, 4), (4, 2)])), Llama2cError::OddHeadSize { head_size: 3 });
    assert_eq!(header_error(&with(&[(3, 16), (4, 16)])), Llama2cError::OddHeadSize { head_size: 1 });
    // A consistent header of another size: the file size no longer matches.
    assert!(matches!(header_error(&with(&[(6, 9)])), Llama2cError::SizeMismatch { found, .. } if found == bytes.len()));
    assert!(matches!(header_error(&with(&[(5, 32)])), Llama2cError::SizeMismatch { found, .. } if found == bytes.len()));
    // The largest dimensions allowed: sizes far beyond any file, refused without overflow panics.
    use llm_engine::spec::{MAX_CONTEXT, MAX_DIM, MAX_HEADS, MAX_LAYERS, MAX_VOCAB};
    let huge = with(&[
        (0, MAX_DIM as i32),
        (1, MAX_DIM as i32),
        (2, MAX_LAYERS as i32),
        (3, MAX_HEADS as i32),
        (4, 1),
        (5, -(MAX_VOCAB as i32)),
        (6, MAX_CONTEXT as i32),
    ]);
    assert!(matches!(header_error(&huge), Llama2cError::SizeMismatch { .. } | Llama2cError::SizeOverflow));
    for (field, max) in [(0, MAX_DIM), (1, MAX_DIM), (2, MAX_LAYERS), (3, MAX_HEADS), (4, MAX_HEADS), (5, MAX_VOCAB), (6, MAX_CONTEXT)] {
        match header_error(&with(&[(field, max as i32 + 1)])) {
            Llama2cError::BadDimension { name, value, max: m } => {
                assert_eq!((name, value, m), (NAMES[field], max as i64 + 1, max));
            }
            e => panic!("field {} = max + 1: {e:?}", NAMES[field]),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Random header bytes and random cuts: load returns Ok or Err, never panics, and a model
    /// it returns runs one forward call (Ok or a typed error) without panicking.
    #[test]
    fn mutated_headers_and_cuts_never_panic(
        edits in proptest::collection::vec((0usize..28, any::<u8>()), 0..6),
        fields in proptest::collection::vec((0usize..7, -40i32..600), 0..3),
        cut in proptest::option::weighted(0.5, 0usize..2000),
        extra in 0usize..3,
        token in 0u32..64,
        pos in 0usize..12,
    ) {
        let (_, mut bytes) = small_file();
        for (i, b) in edits {
            bytes[i] = b;
        }
        for (f, v) in fields {
            set_field(&mut bytes, f, v);
        }
        if let Some(c) = cut {
            bytes.truncate(c);
        }
        bytes.extend(std::iter::repeat_n(0u8, extra));
        let _ = llama2c::parse_header(&bytes);
        if let Ok(loaded) = llm_engine::load(&bytes) {
            let model = loaded.model;
            let mut st = model.new_state(Kernels::detect());
            let _ = model.forward(&mut st, &[token], pos);
            let _ = model.forward(&mut st, &[token, token / 2], 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any bit patterns in the tensors (NaN, infinities, huge values): NaN and infinities are
    /// refused at load; otherwise the file loads, and forward calls run without panicking,
    /// whatever numbers they give.
    #[test]
    fn any_weight_bits_run_without_panicking(
        edits in proptest::collection::vec((0usize..1_000_000, prop_oneof![
            Just(f32::NAN.to_bits()), Just(f32::INFINITY.to_bits()), Just(f32::NEG_INFINITY.to_bits()),
            Just(f32::MAX.to_bits()), Just(1u32), any::<u32>()
        ]), 1..8),
        tokens in proptest::collection::vec(0u32..32, 1..8),
    ) {
        let (_, mut bytes) = small_file();
        let floats = (bytes.len() - llama2c::HEADER_BYTES) / 4;
        for (i, v) in edits {
            let at = llama2c::HEADER_BYTES + 4 * (i % floats);
            bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        let model = match llm_engine::load(&bytes) {
            Ok(loaded) => loaded.model,
            Err(e) => {
                prop_assert!(e.to_string().contains("non-finite values in tensor"), "{}", e);
                return Ok(());
            }
        };
        for k in kernel_sets() {
            let mut st = model.new_state(k);
            prop_assert!(model.forward(&mut st, &tokens, 0).is_ok());
            prop_assert!(model.forward(&mut st, &[tokens[0]], tokens.len()).is_ok());
        }
    }
}

// --- format detection and zero-copy --------------------------------------------------------

#[test]
fn load_tells_llmc_and_llama2c_apart_by_content() {
    let cfg = config(2, 4, 32, 16, 256, 256);
    let params = random_params(&cfg, 1, 0.1);
    let llmc_bytes = checkpoint::encode_v3(&cfg, &params);
    let loaded = llm_engine::load(&llmc_bytes).unwrap();
    assert!(matches!(loaded.format, Format::Llmc { config, .. } if config == cfg), "{:?}", loaded.format);
    assert_eq!(loaded.model.spec().arch, llm_engine::spec::Arch::GPT2);

    for s in [shape(32, 72, 2, 4, 2, 64, 32, true), shape(32, 72, 2, 4, 2, 64, 32, false)] {
        let bytes = random_llama2c(&s, 2, SCALE);
        let loaded = llm_engine::load(&bytes).unwrap();
        let expected = Llama2cConfig {
            d_model: s.dim,
            ffn_dim: s.hidden_dim,
            n_layers: s.n_layers,
            n_heads: s.n_heads,
            n_kv_heads: s.n_kv_heads,
            vocab_size: s.vocab_size,
            context: s.seq_len,
            shared_classifier: s.shared_classifier,
        };
        assert_eq!(loaded.format, Format::Llama2c(expected));
        assert_eq!(loaded.model.spec().arch, llm_engine::spec::Arch::LLAMA);
        assert_eq!(llama2c::parse_header(&bytes), Ok(expected));
        assert_eq!(loaded.model.weights().output.is_some(), !s.shared_classifier);
    }
}

/// `bytes` copied into a fresh buffer at an address that is `rem` modulo 4.
fn placed(bytes: &[u8], rem: usize) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; bytes.len() + 8];
    let at = (0..4).find(|&o| (buf.as_ptr() as usize + o) % 4 == rem).unwrap();
    buf[at..at + bytes.len()].copy_from_slice(bytes);
    (buf, at)
}

#[test]
fn aligned_files_are_borrowed_and_unaligned_ones_load_identically() {
    for s in [shape(32, 72, 2, 4, 2, 64, 32, true), shape(64, 100, 1, 2, 1, 33, 16, false)] {
        let file = random_llama2c(&s, 3, SCALE);
        let tokens = random_tokens(s.seq_len, s.vocab_size, 4);
        let (abuf, a0) = placed(&file, 0);
        let (ubuf, u0) = placed(&file, 1);
        let aligned = &abuf[a0..a0 + file.len()];
        let unaligned = &ubuf[u0..u0 + file.len()];
        assert_eq!(aligned.as_ptr() as usize % 4, 0);
        assert_eq!(unaligned.as_ptr() as usize % 4, 1);

        let (_, ma) = load_llama(aligned);
        let w = ma.weights();
        assert!(w.token_embd.is_borrowed());
        for y in &w.layers {
            for t in [&y.wq, &y.wk, &y.wv, &y.wo, &y.ffn_up, &y.ffn_down] {
                assert!(t.is_borrowed());
            }
            assert!(y.ffn_gate.as_ref().unwrap().is_borrowed());
            assert!(matches!(y.attn_norm.weight, std::borrow::Cow::Borrowed(_)));
            assert!(matches!(y.ffn_norm.weight, std::borrow::Cow::Borrowed(_)));
        }
        assert!(matches!(w.output_norm.weight, std::borrow::Cow::Borrowed(_)));
        if let Some(o) = &w.output {
            assert!(o.is_borrowed());
        }
        // The borrowed norm gains are views into the file's bytes, at their place in it.
        let rms_final_at = 28
            + 4 * (s.vocab_size * s.dim + s.n_layers * (2 * s.dim + 2 * s.dim * s.dim + 2 * s.kv_dim() * s.dim + 3 * s.dim * s.hidden_dim));
        assert_eq!(w.output_norm.weight.as_ptr() as usize, aligned.as_ptr() as usize + rms_final_at);

        let (_, mu) = load_llama(unaligned);
        assert!(!mu.weights().token_embd.is_borrowed(), "an unaligned file cannot be viewed as f32");
        for k in kernel_sets() {
            let (mut sa, mut su) = (ma.new_state(k), mu.new_state(k));
            let a = ma.forward_all(&mut sa, &tokens, 0).unwrap();
            let u = mu.forward_all(&mut su, &tokens, 0).unwrap();
            assert_eq!(bits(&a), bits(&u), "{s:?} {k:?}: aligned and unaligned copies differ");
        }
    }
}
