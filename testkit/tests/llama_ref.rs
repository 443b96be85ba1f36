//! Checks that the naive f64 Llama reference (`llm_testkit::llama`) computes what llama2.c's
//! run.c computes: a case worked out by hand, and properties that a wrong reading of the format
//! or a wrong GQA / RoPE / classifier convention would break.

use llm_testkit::llama::{Llama2cWeights, LlamaRef, LlamaShape, random_llama2c, rope};
use llm_testkit::random_tokens;

fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut m = 0.0f64;
    for (ra, rb) in a.iter().zip(b) {
        assert_eq!(ra.len(), rb.len());
        for (x, y) in ra.iter().zip(rb) {
            m = m.max((x - y).abs());
        }
    }
    m
}

#[allow(clippy::too_many_arguments)] // mirrors the 7-field header plus the classifier flag
fn shape(dim: usize, hidden: usize, layers: usize, heads: usize, kv: usize, vocab: usize, seq: usize, shared: bool) -> LlamaShape {
    LlamaShape {
        dim,
        hidden_dim: hidden,
        n_layers: layers,
        n_heads: heads,
        n_kv_heads: kv,
        vocab_size: vocab,
        seq_len: seq,
        shared_classifier: shared,
    }
}

/// The tiny hand-checked model, written byte by byte (not with Llama2cWeights, so the reader is
/// checked against an independent layout). dim 2, hidden 2, 1 layer, 1 head, 1 kv head,
/// vocab 3 (tied classifier), seq_len 4.
fn hand_file() -> Vec<u8> {
    let mut b = Vec::new();
    for h in [2i32, 2, 1, 1, 1, 3, 4] {
        b.extend_from_slice(&h.to_le_bytes());
    }
    let floats: Vec<f32> = [
        // token_embedding_table (3, 2): e0 = (1, 0), e1 = (0, 1), e2 = (1, 1)
        &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0][..],
        // rms_att_weight (1, 2)
        &[1.0, 1.0],
        // wq, wk, wv (1, 2, 2): identity
        &[1.0, 0.0, 0.0, 1.0],
        &[1.0, 0.0, 0.0, 1.0],
        &[1.0, 0.0, 0.0, 1.0],
        // wo (1, 2, 2) = [[1, 1], [0, 1]]: y0 = x0 + x1, y1 = x1
        &[1.0, 1.0, 0.0, 1.0],
        // rms_ffn_weight (1, 2)
        &[1.0, 1.0],
        // w1 (1, 2, 2): identity
        &[1.0, 0.0, 0.0, 1.0],
        // w2 (1, 2, 2) = [[1, 0], [1, 1]]: y0 = x0, y1 = x0 + x1
        &[1.0, 0.0, 1.0, 1.0],
        // w3 (1, 2, 2): identity
        &[1.0, 0.0, 0.0, 1.0],
        // rms_final_weight (2)
        &[1.0, 0.5],
        // freq_cis_real, freq_cis_imag: (4, 1) each, junk that must be skipped
        &[3.0, -2.0, 7.0, 0.25, -5.0, 9.0, 1.5, -0.75],
    ]
    .concat();
    for f in floats {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b
}

#[test]
fn hand_computed_tiny_model() {
    let bytes = hand_file();
    let m = LlamaRef::from_llama2c(&bytes);
    assert_eq!(m.shape(), shape(2, 2, 1, 1, 1, 3, 4, true));
    assert_eq!(m.shape().file_size(), bytes.len());
    let logits = m.logits_all(&[0, 1]);

    // r(x) = 1 / sqrt(mean(x^2) + 1e-5).
    // Position 0, token 0: x = (1, 0).
    //   xb = (1, 0) / sqrt(0.5 + 1e-5) = (1.4141994204496, 0) = q = k = v (RoPE at pos 0 is identity).
    //   One position: softmax = [1], att = v = (1.4141994204496, 0).
    //   x += wo att = (att0 + att1, att1) -> x = (2.4141994204496, 0).
    //   xb = rmsnorm(x) = (1.4142111359440417, 0).
    //   h = silu(xb) * xb = (1.4142111 / (1 + e^-1.4142111) * 1.4142111, 0) = (1.6088530807735912, 0).
    //   x += w2 h = (h0, h0 + h1) -> x = (4.023052501223191, 1.6088530807735912).
    //   final: rmsnorm with gains (1, 0.5) = (1.3131050344768862, 0.2625609632803856).
    //   logits = rows e0, e1, e2 dotted with it = (y0, y1, y0 + y1).
    let want0 = [1.3131050344768862, 0.2625609632803856, 1.5756659977572718];
    // Position 1, token 1: x = (0, 1), xb = (0, 1.4141994204496) = v1.
    //   RoPE by 1 radian: (a, b) -> (a cos1 - b sin1, a sin1 + b cos1), so
    //   q1 = k1 = 1.4141994 * (-sin 1, cos 1); k0 = (1.4141994, 0) from position 0.
    //   scores / sqrt(2): q1.k0 = -1.4141994^2 sin(1) / sqrt2 = -1.1899958791411893,
    //                     q1.k1 = 1.4141994^2 / sqrt2 = 1.4141852786675222 (rotation cancels).
    //   softmax = (0.06886981242674244, 0.9311301875732576)
    //   att = p0 v0 + p1 v1 = (0.09739564882037181, 1.3168037716292282)
    //   x += wo att -> x = (0 + 0.0973956 + 1.3168038, 1 + 1.3168038) = (1.4141994204496, 2.3168037716292282)
    //   xb = rmsnorm(x) = (0.7368240968254249, 1.207097684999569)
    //   h = silu(xb) * xb = (0.3671703977234121, 1.1216420609354407)
    //   x += w2 h = (h0, h0 + h1) -> x = (1.7813698181730122, 3.805616230288081)
    //   final rmsnorm with gains (1, 0.5) = (0.5995463504473394, 0.640418204798275)
    let want1 = [0.5995463504473394, 0.640418204798275, 1.2399645552456144];
    for (got, want) in logits.iter().zip([want0, want1]) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "got {got:?}, want {want:?}");
        }
    }

    // The same closed form for position 1's attention written directly, so the numbers above
    // are not just copied from a run: the RoPE sign decides whether score0 is -c sin1 or +c sin1.
    let r = 1.0 / (0.5f64 + 1e-5).sqrt();
    let s0 = -r * r * 1f64.sin() / 2f64.sqrt();
    let s1 = r * r / 2f64.sqrt();
    let p0 = 1.0 / (1.0 + (s1 - s0).exp());
    assert!((p0 - 0.06886981242674244).abs() < 1e-14);

    // Writing the same weights with Llama2cWeights gives the same bytes.
    let mut w = Llama2cWeights::random(&shape(2, 2, 1, 1, 1, 3, 4, true), 0, 1.0);
    w.token_embedding_table = vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
    w.rms_att_weight = vec![1.0, 1.0];
    w.wq = vec![1.0, 0.0, 0.0, 1.0];
    w.wk = vec![1.0, 0.0, 0.0, 1.0];
    w.wv = vec![1.0, 0.0, 0.0, 1.0];
    w.wo = vec![1.0, 1.0, 0.0, 1.0];
    w.rms_ffn_weight = vec![1.0, 1.0];
    w.w1 = vec![1.0, 0.0, 0.0, 1.0];
    w.w2 = vec![1.0, 0.0, 1.0, 1.0];
    w.w3 = vec![1.0, 0.0, 0.0, 1.0];
    w.rms_final_weight = vec![1.0, 0.5];
    w.freq_junk = vec![3.0, -2.0, 7.0, 0.25, -5.0, 9.0, 1.5, -0.75];
    assert_eq!(w.to_bytes(), bytes);
}

#[test]
fn rope_pairs_are_adjacent_and_frequencies_restart_in_each_head() {
    // Two heads of size 4, each (1, 0, 1, 0). Pair j = 0 turns by pos, pair j = 1 by
    // pos * 10000^(-2/4) = pos / 100, in both heads.
    let mut v = vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    rope(&mut v, 4, 3);
    let want = [3f64.cos(), 3f64.sin(), 0.03f64.cos(), 0.03f64.sin()];
    for head in 0..2 {
        for i in 0..4 {
            assert!((v[head * 4 + i] - want[i]).abs() < 1e-15, "{v:?}");
        }
    }
    // (0, 1) turns to (-sin, cos).
    let mut v = vec![0.0, 1.0];
    rope(&mut v, 2, 1);
    assert!((v[0] + 1f64.sin()).abs() < 1e-15 && (v[1] - 1f64.cos()).abs() < 1e-15);
    // Position 0 is the identity.
    let mut v = vec![0.3, -0.7, 1.1, 2.0];
    rope(&mut v, 4, 0);
    assert_eq!(v, vec![0.3, -0.7, 1.1, 2.0]);
}

/// The same model with every kv head copied to each query head of its group: n_kv_heads = n_heads.
/// `kv_head_of(h)` says which kv head query head h reads.
fn expand_kv(w: &Llama2cWeights, kv_head_of: impl Fn(usize) -> usize) -> Llama2cWeights {
    let s = w.shape;
    let (d, hs, nh) = (s.dim, s.head_size(), s.n_heads);
    let kv = s.kv_dim();
    let expand = |t: &[f32]| -> Vec<f32> {
        let mut out = Vec::new();
        for l in 0..s.n_layers {
            let layer = &t[l * kv * d..(l + 1) * kv * d]; // (kv_dim, dim)
            for h in 0..nh {
                let g = kv_head_of(h);
                out.extend_from_slice(&layer[g * hs * d..(g + 1) * hs * d]); // hs rows of kv head g
            }
        }
        out
    };
    let mut e = w.clone();
    e.shape.n_kv_heads = nh;
    e.wk = expand(&w.wk);
    e.wv = expand(&w.wv);
    e
}

#[test]
fn grouped_query_attention_equals_duplicated_kv_heads() {
    for (nh, nkv) in [(4, 2), (6, 3), (4, 1)] {
        let s = shape(8 * nh, 40, 2, nh, nkv, 13, 10, true);
        let w = Llama2cWeights::random(&s, 7 + nh as u64 * 10 + nkv as u64, 0.3);
        let tokens = random_tokens(10, 13, 99);
        let gqa = LlamaRef::from_llama2c(&w.to_bytes()).logits_all(&tokens);
        let group = nh / nkv;
        let full = LlamaRef::from_llama2c(&expand_kv(&w, |h| h / group).to_bytes()).logits_all(&tokens);
        let d = max_abs_diff(&gqa, &full);
        assert!(d < 1e-12, "nh {nh} nkv {nkv}: GQA differs from duplicated heads by {d}");
        if nkv > 1 {
            // The other plausible mapping (h % n_kv_heads) is a different model: the test has teeth.
            let wrong = LlamaRef::from_llama2c(&expand_kv(&w, |h| h % nkv).to_bytes()).logits_all(&tokens);
            assert!(max_abs_diff(&gqa, &wrong) > 1e-3, "nh {nh} nkv {nkv}: mapping h % n_kv gave the same logits");
        }
    }
}

#[test]
fn separate_classifier_equal_to_embedding_matches_tied_and_is_used() {
    let s = shape(16, 24, 2, 2, 1, 17, 8, true);
    let tied = Llama2cWeights::random(&s, 3, 0.4);
    let tokens = random_tokens(8, 17, 5);
    let a = LlamaRef::from_llama2c(&tied.to_bytes()).logits_all(&tokens);

    let mut sep = tied.clone();
    sep.shape.shared_classifier = false;
    sep.wcls = Some(tied.token_embedding_table.clone());
    let bytes = sep.to_bytes();
    // Header field 5 holds -vocab for a separate classifier.
    assert_eq!(i32::from_le_bytes(bytes[20..24].try_into().unwrap()), -17);
    assert_eq!(bytes.len(), tied.to_bytes().len() + 17 * 16 * 4);
    let m = LlamaRef::from_llama2c(&bytes);
    assert!(!m.shape().shared_classifier);
    let b = m.logits_all(&tokens);
    assert!(max_abs_diff(&a, &b) < 1e-12);

    // A different wcls changes the logits, and exactly as a matrix applied to the final state:
    // doubling wcls doubles every logit.
    sep.wcls = Some(tied.token_embedding_table.iter().map(|x| 2.0 * x).collect());
    let c = LlamaRef::from_llama2c(&sep.to_bytes()).logits_all(&tokens);
    let doubled: Vec<Vec<f64>> = a.iter().map(|r| r.iter().map(|x| 2.0 * x).collect()).collect();
    assert!(max_abs_diff(&c, &doubled) < 1e-12);
    assert!(max_abs_diff(&c, &a) > 1e-3);
}

#[test]
fn skipped_freq_blocks_do_not_matter() {
    for shared in [true, false] {
        let s = shape(12, 20, 1, 3, 3, 9, 6, shared);
        let w = Llama2cWeights::random(&s, 11, 0.5);
        let tokens = random_tokens(6, 9, 12);
        let a = LlamaRef::from_llama2c(&w.to_bytes()).logits_all(&tokens);
        let mut w2 = w.clone();
        for x in w2.freq_junk.iter_mut() {
            *x = -3.0 * *x + 1.0;
        }
        let b = LlamaRef::from_llama2c(&w2.to_bytes()).logits_all(&tokens);
        assert_eq!(a, b);
    }
}

#[test]
fn logits_at_t_depend_only_on_tokens_up_to_t() {
    let s = shape(16, 32, 2, 4, 2, 23, 12, false);
    let bytes = random_llama2c(&s, 21, 0.4);
    let m = LlamaRef::from_llama2c(&bytes);
    let a_tokens = random_tokens(12, 23, 1);
    let a = m.logits_all(&a_tokens);
    for t in 0..11 {
        let mut b_tokens = a_tokens.clone();
        for (i, tok) in b_tokens.iter_mut().enumerate().skip(t + 1) {
            *tok = (*tok + 1 + i as u32) % 23;
        }
        let b = m.logits_all(&b_tokens);
        assert_eq!(a[..=t], b[..=t], "logits up to {t} changed with later tokens");
        assert!(max_abs_diff(&a[t + 1..], &b[t + 1..]) > 1e-6, "later tokens changed nothing after {t}");
    }
    // And earlier tokens do reach later positions (attention is not local).
    let mut c_tokens = a_tokens.clone();
    c_tokens[0] = (c_tokens[0] + 5) % 23;
    let c = m.logits_all(&c_tokens);
    assert!(max_abs_diff(&a[11..], &c[11..]) > 1e-6);
    // A prefix run gives the same logits as the prefix of a longer run.
    assert_eq!(m.logits_all(&a_tokens[..5]), a[..5].to_vec());
}

#[test]
fn file_size_matches_written_files() {
    let shapes = [
        shape(2, 2, 1, 1, 1, 3, 4, true),
        shape(8, 16, 2, 2, 2, 10, 5, true),
        shape(8, 16, 2, 2, 1, 10, 5, false),
        shape(24, 40, 3, 6, 2, 31, 7, true),
        shape(24, 40, 3, 6, 2, 31, 7, false),
        shape(32, 48, 1, 4, 4, 5, 16, false),
    ];
    for s in shapes {
        let bytes = random_llama2c(&s, 4, 0.1);
        assert_eq!(bytes.len(), s.file_size(), "{s:?}");
        // Header plus learned parameters plus the two freq blocks, nothing else.
        assert_eq!(bytes.len(), 28 + 4 * (s.num_parameters() + s.seq_len * s.head_size()), "{s:?}");
        let m = LlamaRef::from_llama2c(&bytes);
        assert_eq!(m.shape(), s);
        // The generator is deterministic in the seed and different across seeds.
        assert_eq!(random_llama2c(&s, 4, 0.1), bytes);
        assert_ne!(random_llama2c(&s, 5, 0.1), bytes);
    }
    // stories15M (dim 288, hidden 768, 6 layers, 6 heads, vocab 32000, seq 256, tied):
    // 15.2M parameters, a 60,816,028-byte file.
    let s15 = shape(288, 768, 6, 6, 6, 32000, 256, true);
    assert_eq!(s15.num_parameters(), 15_191_712);
    assert_eq!(s15.file_size(), 60_816_028);
}

#[test]
#[should_panic(expected = "truncated")]
fn truncated_file_panics() {
    let s = shape(8, 16, 1, 2, 2, 10, 5, false);
    let bytes = random_llama2c(&s, 1, 0.1);
    LlamaRef::from_llama2c(&bytes[..bytes.len() - 4]);
}

#[test]
#[should_panic(expected = "after the last tensor")]
fn trailing_bytes_panic() {
    let s = shape(8, 16, 1, 2, 2, 10, 5, true);
    let mut bytes = random_llama2c(&s, 1, 0.1);
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    LlamaRef::from_llama2c(&bytes);
}
