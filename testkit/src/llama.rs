//! A deliberately naive Llama 2 forward pass in f64 for llama2.c checkpoints, and a writer of
//! random llama2.c checkpoints of any shape.
//!
//! The checkpoint format is the one from Andrej Karpathy's llama2.c (MIT licence): the
//! "legacy version 0" `.bin` file that `run.c` memory-maps. Nothing here is shared with the
//! engine crate; it is written from the format description and the Llama 2 architecture, so
//! that the engine can be checked against it. Only `llm_engine::Rng` is used, for random
//! numbers.
//!
//! # File layout
//!
//! A header of 7 little-endian `i32`:
//!
//! ```text
//! dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//! ```
//!
//! `vocab_size` is stored negated when the file carries its own classifier `wcls`; when it is
//! positive the classifier is tied to the token embedding. Then little-endian `f32` tensors, in
//! this order, every matrix row-major `[out][in]` (so `y[o] = sum_i W[o][i] * x[i]`):
//!
//! ```text
//! token_embedding_table  (vocab_size, dim)
//! rms_att_weight         (n_layers, dim)
//! wq                     (n_layers, n_heads * head_size, dim)
//! wk                     (n_layers, kv_dim, dim)
//! wv                     (n_layers, kv_dim, dim)
//! wo                     (n_layers, dim, n_heads * head_size)
//! rms_ffn_weight         (n_layers, dim)
//! w1                     (n_layers, hidden_dim, dim)
//! w2                     (n_layers, dim, hidden_dim)
//! w3                     (n_layers, hidden_dim, dim)
//! rms_final_weight       (dim)
//! freq_cis_real          (seq_len, head_size / 2)   unused: run.c skips it
//! freq_cis_imag          (seq_len, head_size / 2)   unused: run.c skips it
//! wcls                   (vocab_size, dim)          only when the stored vocab_size < 0
//! ```
//!
//! with `head_size = dim / n_heads` and `kv_dim = dim * n_kv_heads / n_heads`.
//!
//! # Forward pass (one position at a time, with a list of past keys and values)
//!
//! ```text
//! x = token_embedding_table[token]
//! for each layer l:
//!     xb = rmsnorm(x, rms_att_weight[l])          rmsnorm(x, w)_i = w_i x_i / sqrt(mean(x^2) + 1e-5)
//!     q = wq xb, k = wk xb, v = wv xb
//!     RoPE on q (every head) and k (every kv head): pairs (2j, 2j+1) inside a head are rotated by
//!         theta = pos * 10000^(-2j / head_size):  (a, b) -> (a cos - b sin, a sin + b cos)
//!     remember k, v for this position
//!     query head h reads kv head h / (n_heads / n_kv_heads):
//!         scores_t = q_h . k_t / sqrt(head_size) for t in 0..=pos, softmax, att_h = sum_t p_t v_t
//!     x += wo att
//!     xb = rmsnorm(x, rms_ffn_weight[l])
//!     x += w2 (silu(w1 xb) * (w3 xb))             silu(z) = z / (1 + e^-z)
//! logits = wcls rmsnorm(x, rms_final_weight)      wcls = token_embedding_table when tied
//! ```
//!
//! # What was checked in llama2.c
//!
//! Against karpathy/llama2.c `run.c` (commit bd182289, where the functions are still named
//! `checkpoint_init_weights` and `transformer`; later renamed `memory_map_weights` and
//! `forward` with the same bodies, e.g. as seen in the fork subramon/llama2.c
//! `orig_mmap_weights.c`):
//! - the header is the `Config` struct of 7 `int`s; `shared_weights = vocab_size > 0`, then
//!   `vocab_size = abs(vocab_size)`;
//! - the pointer walk: token embedding, rms_att, wq `dim * n_heads * head_size` per layer, wk and
//!   wv `dim * n_kv_heads * head_size`, wo `n_heads * head_size * dim`, rms_ffn, w1, w2, w3,
//!   rms_final, then `seq_len * head_size / 2` twice (freq_cis_real / imag, "not used anymore"),
//!   then `wcls = shared_weights ? token_embedding_table : ptr`;
//! - `matmul(xout, x, w, n, d)`: `xout[i] = sum_j w[i * n + j] * x[j]`, i.e. row-major [out][in];
//! - `rmsnorm`: `ss = sum x^2 / size + 1e-5`, `o = weight * (x / sqrt(ss))`;
//! - RoPE: for even `i` in the vector, `head_dim = i % head_size`,
//!   `freq = 1 / 10000^(head_dim / head_size)`, angle `pos * freq`, rotation
//!   `(v0 cos - v1 sin, v0 sin + v1 cos)`; applied to k only for `i < kv_dim`;
//! - attention: key/value of head `h / kv_mul` with `kv_mul = n_heads / n_kv_heads`, score
//!   divided by `sqrt(head_size)`, softmax over `0..=pos`;
//! - FFN: `w2(silu(w1 x) * w3 x)` with `silu(x) = x * (1 / (1 + exp(-x)))`; residual adds after
//!   attention and after FFN; final rmsnorm then `wcls`.

use crate::normal;
use llm_engine::Rng;

/// The hyperparameters of a llama2.c checkpoint (the header, with the sign of vocab_size
/// turned into `shared_classifier`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LlamaShape {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub seq_len: usize,
    /// true: the classifier is the token embedding (vocab_size stored positive);
    /// false: a separate `wcls` follows the skipped freq blocks (vocab_size stored negative).
    pub shared_classifier: bool,
}

impl LlamaShape {
    /// dim / n_heads.
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }

    /// dim * n_kv_heads / n_heads: the length of k and v.
    pub fn kv_dim(&self) -> usize {
        self.dim * self.n_kv_heads / self.n_heads
    }

    /// Number of learned f32 values in the file: excludes the two skipped freq blocks, and counts
    /// the classifier only when it is stored separately.
    pub fn num_parameters(&self) -> usize {
        let (d, h, l, v) = (self.dim, self.hidden_dim, self.n_layers, self.vocab_size);
        let qdim = self.n_heads * self.head_size();
        let kv = self.kv_dim();
        let per_layer = d // rms_att_weight
            + qdim * d // wq
            + kv * d // wk
            + kv * d // wv
            + d * qdim // wo
            + d // rms_ffn_weight
            + h * d // w1
            + d * h // w2
            + h * d; // w3
        let classifier = if self.shared_classifier { 0 } else { v * d };
        v * d + l * per_layer + d + classifier
    }

    /// Size of the .bin file in bytes: 7 i32 header + f32 parameters + the two freq blocks.
    pub fn file_size(&self) -> usize {
        let freq_floats = 2 * (self.seq_len * self.head_size() / 2);
        7 * 4 + 4 * (self.num_parameters() + freq_floats)
    }

    /// Panics unless the shape is one run.c can run.
    fn check(&self) {
        assert!(self.dim > 0 && self.n_heads > 0 && self.n_kv_heads > 0, "empty shape {self:?}");
        assert!(self.dim.is_multiple_of(self.n_heads), "dim must be a multiple of n_heads: {self:?}");
        assert!(self.head_size().is_multiple_of(2), "head_size must be even for RoPE: {self:?}");
        assert!(self.n_heads.is_multiple_of(self.n_kv_heads), "n_heads must be a multiple of n_kv_heads: {self:?}");
        assert!(self.vocab_size > 0 && self.seq_len > 0 && self.hidden_dim > 0, "empty shape {self:?}");
    }
}

// --- writing llama2.c files ------------------------------------------------------------

/// The tensors of a llama2.c file as f32, in file order, every layer's tensors concatenated as in
/// the file. Used to write files with chosen or random weights.
#[derive(Clone, Debug)]
pub struct Llama2cWeights {
    pub shape: LlamaShape,
    pub token_embedding_table: Vec<f32>, // (vocab, dim)
    pub rms_att_weight: Vec<f32>,        // (n_layers, dim)
    pub wq: Vec<f32>,                    // (n_layers, n_heads * head_size, dim)
    pub wk: Vec<f32>,                    // (n_layers, kv_dim, dim)
    pub wv: Vec<f32>,                    // (n_layers, kv_dim, dim)
    pub wo: Vec<f32>,                    // (n_layers, dim, n_heads * head_size)
    pub rms_ffn_weight: Vec<f32>,        // (n_layers, dim)
    pub w1: Vec<f32>,                    // (n_layers, hidden_dim, dim)
    pub w2: Vec<f32>,                    // (n_layers, dim, hidden_dim)
    pub w3: Vec<f32>,                    // (n_layers, hidden_dim, dim)
    pub rms_final_weight: Vec<f32>,      // (dim)
    /// The two skipped blocks, freq_cis_real then freq_cis_imag: (2 * seq_len * head_size / 2).
    pub freq_junk: Vec<f32>,
    /// (vocab, dim) when `shape.shared_classifier` is false, else None.
    pub wcls: Option<Vec<f32>>,
}

impl Llama2cWeights {
    /// Random weights: matrices ~ N(0, scale), RMSNorm gains ~ 1 + 0.1 N(0, 1), the skipped freq
    /// blocks ~ N(0, 1) (finite junk: a reader that does not skip them gives wrong numbers, not
    /// NaN). Values are drawn in file order from one stream seeded by `seed`.
    pub fn random(shape: &LlamaShape, seed: u64, scale: f32) -> Llama2cWeights {
        shape.check();
        let s = *shape;
        let mut rng = Rng::new(seed);
        let (d, h, l, v) = (s.dim, s.hidden_dim, s.n_layers, s.vocab_size);
        let qdim = s.n_heads * s.head_size();
        let kv = s.kv_dim();
        let mat = |rng: &mut Rng, n: usize| -> Vec<f32> { (0..n).map(|_| scale * normal(rng)).collect() };
        let gains = |rng: &mut Rng, n: usize| -> Vec<f32> { (0..n).map(|_| 1.0 + 0.1 * normal(rng)).collect() };
        let token_embedding_table = mat(&mut rng, v * d);
        let rms_att_weight = gains(&mut rng, l * d);
        let wq = mat(&mut rng, l * qdim * d);
        let wk = mat(&mut rng, l * kv * d);
        let wv = mat(&mut rng, l * kv * d);
        let wo = mat(&mut rng, l * d * qdim);
        let rms_ffn_weight = gains(&mut rng, l * d);
        let w1 = mat(&mut rng, l * h * d);
        let w2 = mat(&mut rng, l * d * h);
        let w3 = mat(&mut rng, l * h * d);
        let rms_final_weight = gains(&mut rng, d);
        let freq_junk: Vec<f32> = (0..2 * (s.seq_len * s.head_size() / 2)).map(|_| normal(&mut rng)).collect();
        let wcls = if s.shared_classifier { None } else { Some(mat(&mut rng, v * d)) };
        Llama2cWeights {
            shape: s,
            token_embedding_table,
            rms_att_weight,
            wq,
            wk,
            wv,
            wo,
            rms_ffn_weight,
            w1,
            w2,
            w3,
            rms_final_weight,
            freq_junk,
            wcls,
        }
    }

    /// The complete .bin file: header then every tensor as little-endian f32. Panics when a
    /// tensor's length does not match the shape.
    pub fn to_bytes(&self) -> Vec<u8> {
        let s = self.shape;
        s.check();
        let (d, h, l, v) = (s.dim, s.hidden_dim, s.n_layers, s.vocab_size);
        let qdim = s.n_heads * s.head_size();
        let kv = s.kv_dim();
        let mut out = Vec::with_capacity(s.file_size());
        let stored_vocab = if s.shared_classifier { v as i32 } else { -(v as i32) };
        for field in [d as i32, h as i32, l as i32, s.n_heads as i32, s.n_kv_heads as i32, stored_vocab, s.seq_len as i32] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        let mut put = |name: &str, t: &[f32], n: usize| {
            assert_eq!(t.len(), n, "tensor {name} has {} values, shape {s:?} needs {n}", t.len());
            for x in t {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
        put("token_embedding_table", &self.token_embedding_table, v * d);
        put("rms_att_weight", &self.rms_att_weight, l * d);
        put("wq", &self.wq, l * qdim * d);
        put("wk", &self.wk, l * kv * d);
        put("wv", &self.wv, l * kv * d);
        put("wo", &self.wo, l * d * qdim);
        put("rms_ffn_weight", &self.rms_ffn_weight, l * d);
        put("w1", &self.w1, l * h * d);
        put("w2", &self.w2, l * d * h);
        put("w3", &self.w3, l * h * d);
        put("rms_final_weight", &self.rms_final_weight, d);
        put("freq_junk", &self.freq_junk, 2 * (s.seq_len * s.head_size() / 2));
        match (&self.wcls, s.shared_classifier) {
            (None, true) => {}
            (Some(w), false) => put("wcls", w, v * d),
            _ => panic!("wcls must be present exactly when shared_classifier is false"),
        }
        assert_eq!(out.len(), s.file_size());
        out
    }
}

/// A complete llama2.c .bin file with random weights: matrices ~ N(0, scale), RMSNorm gains
/// ~ 1 + 0.1 N(0, 1), the two skipped freq blocks filled with N(0, 1) junk.
pub fn random_llama2c(shape: &LlamaShape, seed: u64, scale: f32) -> Vec<u8> {
    Llama2cWeights::random(shape, seed, scale).to_bytes()
}

// --- reading llama2.c files --------------------------------------------------------------

/// A parsed llama2.c checkpoint in f64, one Vec per layer, matrices row-major [out][in].
pub struct LlamaRef {
    shape: LlamaShape,
    token_embedding_table: Vec<f64>, // (vocab, dim)
    rms_att_weight: Vec<Vec<f64>>,   // n_layers x (dim)
    wq: Vec<Vec<f64>>,               // n_layers x (n_heads * head_size, dim)
    wk: Vec<Vec<f64>>,               // n_layers x (kv_dim, dim)
    wv: Vec<Vec<f64>>,               // n_layers x (kv_dim, dim)
    wo: Vec<Vec<f64>>,               // n_layers x (dim, n_heads * head_size)
    rms_ffn_weight: Vec<Vec<f64>>,   // n_layers x (dim)
    w1: Vec<Vec<f64>>,               // n_layers x (hidden_dim, dim)
    w2: Vec<Vec<f64>>,               // n_layers x (dim, hidden_dim)
    w3: Vec<Vec<f64>>,               // n_layers x (hidden_dim, dim)
    rms_final_weight: Vec<f64>,      // (dim)
    wcls: Vec<f64>,                  // (vocab, dim): a copy of the embedding when tied
}

/// Reads little-endian values from the front of a byte slice; panics when it runs out.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn i32(&mut self) -> i32 {
        assert!(self.at + 4 <= self.bytes.len(), "llama2c file truncated in the header");
        let v = i32::from_le_bytes(self.bytes[self.at..self.at + 4].try_into().unwrap());
        self.at += 4;
        v
    }

    /// The next n f32 values, widened to f64.
    fn f32s(&mut self, what: &str, n: usize) -> Vec<f64> {
        let end = self.at + 4 * n;
        assert!(end <= self.bytes.len(), "llama2c file truncated in {what}: need {end} bytes, have {}", self.bytes.len());
        let v = self.bytes[self.at..end].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect();
        self.at = end;
        v
    }

    /// n_layers consecutive blocks of `per_layer` values.
    fn layers(&mut self, what: &str, n_layers: usize, per_layer: usize) -> Vec<Vec<f64>> {
        (0..n_layers).map(|_| self.f32s(what, per_layer)).collect()
    }
}

impl LlamaRef {
    /// Parses a llama2.c file into f64 tensors. Panics on a malformed header, a file too short,
    /// or bytes left over after the last tensor (test helper).
    pub fn from_llama2c(bytes: &[u8]) -> LlamaRef {
        let mut r = Reader { bytes, at: 0 };
        let header: Vec<i32> = (0..7).map(|_| r.i32()).collect();
        for (i, &h) in header.iter().enumerate() {
            assert!(i == 5 || h > 0, "llama2c header field {i} is {h}, must be positive");
        }
        assert!(header[5] != 0, "llama2c vocab_size is 0");
        let shape = LlamaShape {
            dim: header[0] as usize,
            hidden_dim: header[1] as usize,
            n_layers: header[2] as usize,
            n_heads: header[3] as usize,
            n_kv_heads: header[4] as usize,
            vocab_size: header[5].unsigned_abs() as usize,
            seq_len: header[6] as usize,
            shared_classifier: header[5] > 0,
        };
        shape.check();
        let (d, h, l, v) = (shape.dim, shape.hidden_dim, shape.n_layers, shape.vocab_size);
        let qdim = shape.n_heads * shape.head_size();
        let kv = shape.kv_dim();
        let token_embedding_table = r.f32s("token_embedding_table", v * d);
        let rms_att_weight = r.layers("rms_att_weight", l, d);
        let wq = r.layers("wq", l, qdim * d);
        let wk = r.layers("wk", l, kv * d);
        let wv = r.layers("wv", l, kv * d);
        let wo = r.layers("wo", l, d * qdim);
        let rms_ffn_weight = r.layers("rms_ffn_weight", l, d);
        let w1 = r.layers("w1", l, h * d);
        let w2 = r.layers("w2", l, d * h);
        let w3 = r.layers("w3", l, h * d);
        let rms_final_weight = r.f32s("rms_final_weight", d);
        // freq_cis_real and freq_cis_imag: read past them, never used.
        let _ = r.f32s("freq_cis_real", shape.seq_len * shape.head_size() / 2);
        let _ = r.f32s("freq_cis_imag", shape.seq_len * shape.head_size() / 2);
        let wcls = if shape.shared_classifier { token_embedding_table.clone() } else { r.f32s("wcls", v * d) };
        assert_eq!(r.at, bytes.len(), "llama2c file has {} bytes after the last tensor", bytes.len() - r.at);
        LlamaRef { shape, token_embedding_table, rms_att_weight, wq, wk, wv, wo, rms_ffn_weight, w1, w2, w3, rms_final_weight, wcls }
    }

    pub fn shape(&self) -> LlamaShape {
        self.shape
    }

    /// Logits (vocab) after each of `tokens`, run one position at a time from position 0:
    /// tokens (T) -> logits (T, vocab). T must be at most seq_len.
    pub fn logits_all(&self, tokens: &[u32]) -> Vec<Vec<f64>> {
        let s = self.shape;
        assert!(tokens.len() <= s.seq_len, "{} tokens, seq_len is {}", tokens.len(), s.seq_len);
        let (d, hd, nh, nkv) = (s.dim, s.hidden_dim, s.n_heads, s.n_kv_heads);
        let hs = s.head_size();
        let kv = s.kv_dim();
        let group = nh / nkv;
        // keys[l][t], values[l][t]: (kv_dim) for every past position t.
        let mut keys: Vec<Vec<Vec<f64>>> = vec![Vec::new(); s.n_layers];
        let mut values: Vec<Vec<Vec<f64>>> = vec![Vec::new(); s.n_layers];
        let mut all = Vec::with_capacity(tokens.len());
        for (pos, &token) in tokens.iter().enumerate() {
            let token = token as usize;
            assert!(token < s.vocab_size, "token {token} out of vocab {}", s.vocab_size);
            let mut x: Vec<f64> = self.token_embedding_table[token * d..(token + 1) * d].to_vec();
            for l in 0..s.n_layers {
                // attention
                let xb = rmsnorm(&x, &self.rms_att_weight[l]);
                let mut q = matvec(&self.wq[l], &xb, nh * hs);
                let mut k = matvec(&self.wk[l], &xb, kv);
                let v = matvec(&self.wv[l], &xb, kv);
                rope(&mut q, hs, pos);
                rope(&mut k, hs, pos);
                keys[l].push(k);
                values[l].push(v);
                let mut att = vec![0.0; nh * hs];
                for h in 0..nh {
                    let g = h / group; // the kv head this query head reads
                    let qh = &q[h * hs..(h + 1) * hs];
                    let scores: Vec<f64> = (0..=pos)
                        .map(|t| {
                            let kt = &keys[l][t][g * hs..(g + 1) * hs];
                            let mut dot = 0.0;
                            for i in 0..hs {
                                dot += qh[i] * kt[i];
                            }
                            dot / (hs as f64).sqrt()
                        })
                        .collect();
                    let p = softmax(&scores);
                    for t in 0..=pos {
                        let vt = &values[l][t][g * hs..(g + 1) * hs];
                        for i in 0..hs {
                            att[h * hs + i] += p[t] * vt[i];
                        }
                    }
                }
                let o = matvec(&self.wo[l], &att, d);
                for i in 0..d {
                    x[i] += o[i];
                }
                // feed-forward
                let xb = rmsnorm(&x, &self.rms_ffn_weight[l]);
                let a = matvec(&self.w1[l], &xb, hd);
                let b = matvec(&self.w3[l], &xb, hd);
                let hidden: Vec<f64> = (0..hd).map(|i| silu(a[i]) * b[i]).collect();
                let f = matvec(&self.w2[l], &hidden, d);
                for i in 0..d {
                    x[i] += f[i];
                }
            }
            let xf = rmsnorm(&x, &self.rms_final_weight);
            all.push(matvec(&self.wcls, &xf, s.vocab_size));
        }
        all
    }
}

// --- naive layers in f64 -------------------------------------------------------------------

/// x (n), w (n) -> (n): w_i * x_i / sqrt(mean(x^2) + 1e-5).
pub fn rmsnorm(x: &[f64], w: &[f64]) -> Vec<f64> {
    assert_eq!(x.len(), w.len());
    let mean_sq = x.iter().map(|a| a * a).sum::<f64>() / x.len() as f64;
    let r = 1.0 / (mean_sq + 1e-5).sqrt();
    (0..x.len()).map(|i| w[i] * x[i] * r).collect()
}

/// W (out, in) row-major, x (in) -> (out): y[o] = sum_i W[o][i] x[i].
pub fn matvec(w: &[f64], x: &[f64], out: usize) -> Vec<f64> {
    let n = x.len();
    assert_eq!(w.len(), out * n);
    (0..out)
        .map(|o| {
            let mut s = 0.0;
            for i in 0..n {
                s += w[o * n + i] * x[i];
            }
            s
        })
        .collect()
}

/// In place on v (n_heads * head_size): inside each head, pair (2j, 2j+1) is rotated by
/// theta = pos * 10000^(-2j / head_size): (a, b) -> (a cos - b sin, a sin + b cos).
pub fn rope(v: &mut [f64], head_size: usize, pos: usize) {
    assert!(v.len().is_multiple_of(head_size) && head_size.is_multiple_of(2));
    for head in 0..v.len() / head_size {
        for j in 0..head_size / 2 {
            let theta = pos as f64 * 10000f64.powf(-((2 * j) as f64) / head_size as f64);
            let (sin, cos) = theta.sin_cos();
            let i = head * head_size + 2 * j;
            let (a, b) = (v[i], v[i + 1]);
            v[i] = a * cos - b * sin;
            v[i + 1] = a * sin + b * cos;
        }
    }
}

/// scores (n) -> probabilities (n).
pub fn softmax(scores: &[f64]) -> Vec<f64> {
    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

/// z / (1 + e^-z).
pub fn silu(z: f64) -> f64 {
    z / (1.0 + (-z).exp())
}
