//! A deliberately naive f64 forward pass for the GGUF architectures the engine maps
//! (`llama`, `qwen2`, `qwen3`, `gemma3`, `gpt2`, `phi3`), and a writer of small random GGUF files of
//! each, so that the engine's GGUF path can be checked end to end against an independent
//! computation.
//!
//! Written from llama.cpp's model descriptions (llama.cpp/ggml, MIT), not from the engine's
//! `model.rs`: `src/models/{llama,qwen2,qwen3,gemma3,gpt2,phi3}.cpp` (the graphs),
//! `src/llama-graph.cpp` (`build_norm`, `build_ffn`, `build_attn`), `src/llama-hparams.{h,cpp}`
//! (`set_swa_pattern`, `is_masked_swa`, `rope_freq_base_train_swa = 10000`), and ggml's RoPE
//! (`ggml_rope_ext`: mode NORMAL rotates adjacent pairs, NEOX the pairs (i, i + n_dims/2)).
//!
//! # What each architecture computes (N tokens, C = embedding_length, hd = key_length)
//!
//! ```text
//! x = token_embd[tok]                       (gemma3: * sqrt(C); gpt2: + position_embd[pos])
//! per layer il:
//!   h = norm(x, attn_norm)                  RMSNorm: w_i x_i / sqrt(mean(x^2) + eps)
//!                                           gpt2 LayerNorm: (x - mean)/sqrt(var + eps) w + b
//!   q, k, v = attn_q h (+ bias), attn_k h (+ bias), attn_v h (+ bias)
//!                                           qwen2: biases; gpt2: attn_qkv (3C rows) split q|k|v
//!                                           phi3: attn_qkv (Q + 2K rows, no bias) split q|k|v
//!   qwen3, gemma3: q, k = per-head RMSNorm(attn_q_norm / attn_k_norm, size hd), before RoPE
//!   RoPE (not gpt2) on every head, theta_i = pos * base^(-2i/hd), i < hd/2:
//!       llama: NORMAL, pairs (2i, 2i+1); qwen2, qwen3, gemma3, phi3: NEOX, pairs (i, i + hd/2)
//!       gemma3: base = 10000 on sliding layers (il % 6 < 5), rope.freq_base on the others
//!   head h reads kv head h / (n_head / n_head_kv); score = q.k / sqrt(hd); causal softmax;
//!       gemma3 sliding layers: key positions p - window + 1 ..= p only
//!   a = attn_output concat(heads) (+ bias, gpt2)
//!   gemma3: x = x + norm(a, post_attention_norm); others: x = x + a
//!   h = norm(x, ffn_norm)
//!   llama, qwen2, qwen3: m = ffn_down(silu(ffn_gate h) * ffn_up h)
//!   gemma3:              m = ffn_down(gelu(ffn_gate h) * ffn_up h)        (GeGLU)
//!   gpt2:                m = ffn_down(gelu(ffn_up h + b) ) + b
//!   phi3:                u = ffn_up h (2F rows); m = ffn_down(silu(u[..F]) * u[F..])  (ggml_swiglu)
//!   gemma3: x = x + norm(m, post_ffw_norm); others: x = x + m
//! logits = output (or token_embd when absent) norm(x, output_norm)
//! gelu(z) = 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))   (ggml_gelu, tanh form)
//! silu(z) = z / (1 + e^-z)
//! ```
//!
//! The weights come from the GGUF file itself: F32 tensors are read here from their bytes;
//! every other type is decoded with `llm_engine::quant::dequantize_row`, which is checked bit
//! for bit against gguf-py's numpy `dequantize` (engine/tests/quant.rs), so using it keeps the
//! reference's arithmetic independent of the engine's forward pass while giving both sides
//! identical weights. Everything after decoding is f64.

use crate::normal;
use llm_engine::Rng;
use llm_engine::formats::gguf::{GgmlType, Gguf, GgufWriter};
use llm_engine::quant::f16::f32_to_f16;
use llm_engine::quant::{BlockType, dequantize_row, quantize_row};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
    Gpt2,
    Phi3,
}

impl Arch {
    pub const ALL: [Arch; 6] = [Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Gemma3, Arch::Gpt2, Arch::Phi3];

    /// `general.architecture`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
            Arch::Gpt2 => "gpt2",
            Arch::Phi3 => "phi3",
        }
    }

    /// ggml's RoPE mode of the architecture (llama.cpp's `llama_model_rope_type`), None for gpt2.
    pub fn rope_mode(self) -> Option<RopeMode> {
        match self {
            Arch::Llama => Some(RopeMode::Normal),
            Arch::Qwen2 | Arch::Qwen3 | Arch::Gemma3 | Arch::Phi3 => Some(RopeMode::Neox),
            Arch::Gpt2 => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// Adjacent pairs (2i, 2i+1).
    Normal,
    /// Halves: pairs (i, i + hd/2).
    Neox,
}

/// The hyperparameters of a small model of one architecture (what the writer puts in the metadata
/// and what the reference computes with).
#[derive(Clone, Copy, Debug)]
pub struct ArchShape {
    pub arch: Arch,
    pub vocab: usize,
    pub c: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// `attention.key_length` (and `value_length`); written when it differs from C / n_heads
    /// and always for gemma3 (as llama.cpp's converter does).
    pub head_dim: usize,
    pub ffn: usize,
    pub context: usize,
    /// `attention.layer_norm_rms_epsilon` (gpt2: `attention.layer_norm_epsilon`).
    pub eps: f32,
    /// `rope.freq_base` (the global layers' base for gemma3).
    pub rope_base: f32,
    /// gemma3's `attention.sliding_window`.
    pub window: usize,
    /// No `output.weight`: the logits use `token_embd.weight`.
    pub tied: bool,
}

impl ArchShape {
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
    /// llama.cpp's `set_swa_pattern(6)`: layer il slides when il % 6 < 5 (gemma3 only).
    pub fn is_sliding(&self, il: usize) -> bool {
        self.arch == Arch::Gemma3 && il % 6 < 5
    }
}

/// Deliberate departures from the right semantics, to show that the tests would notice a
/// wrong implementation (the defaults are the right semantics).
#[derive(Clone, Copy, Debug, Default)]
pub struct Knobs {
    /// Use this RoPE mode instead of the architecture's.
    pub rope: Option<RopeMode>,
    /// Attend to every past position on gemma3's sliding layers.
    pub ignore_window: bool,
    /// Use `rope.freq_base` on gemma3's sliding layers too.
    pub global_base_everywhere: bool,
    /// Scale scores by 1/sqrt(C / n_heads) instead of 1/sqrt(head_dim).
    pub scale_from_c: bool,
    /// Skip the per-head q/k RMSNorm (qwen3, gemma3).
    pub no_qk_norm: bool,
    /// phi3: take the up projection from the first half of `ffn_up`'s rows and the gate from
    /// the second.
    pub swap_gate_up: bool,
    /// Not a departure but the other numerics: round the input of every quantized matrix to
    /// 8 bits as the engine's `Family::FmaQ8` specifies (blocks of 32 values for Q8_0, Q4_0,
    /// Q5_0, Q4_1, Q5_1 weights, 256 for Q4_K, Q5_K, Q6_K; scale max|x| / 127; round half to
    /// even),
    /// computed here in f64 from the definition, independently of the integer kernels.
    pub q8_activations: bool,
}

// ---------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------

/// A tensor decoded to f64: `dims` innermost first as in the file; `data` in file order, so a
/// matrix of dims [cols, rows] is `rows` rows of `cols` (row r = output r).
#[derive(Clone, Debug)]
pub struct RefTensor {
    pub dims: Vec<usize>,
    pub data: Vec<f64>,
    /// The activation block of its 8-bit products (None: f32 activations).
    pub act_block: Option<usize>,
}

/// Every tensor of a GGUF file by name.
#[derive(Clone, Debug, Default)]
pub struct RefWeights {
    pub tensors: BTreeMap<String, RefTensor>,
}

impl RefWeights {
    pub fn get(&self, name: &str) -> &RefTensor {
        self.tensors.get(name).unwrap_or_else(|| panic!("reference: tensor {name} missing"))
    }
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
    /// A mutable tensor (to perturb one weight).
    pub fn get_mut(&mut self, name: &str) -> &mut RefTensor {
        self.tensors.get_mut(name).unwrap_or_else(|| panic!("reference: tensor {name} missing"))
    }
}

/// Decodes every tensor of a GGUF file (see the module docs for why `dequantize_row`).
pub fn read_weights(bytes: &[u8]) -> RefWeights {
    let g = Gguf::parse(bytes).expect("reference: GGUF parse");
    let mut out = RefWeights::default();
    for t in g.tensors() {
        let dims: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
        let n: usize = dims.iter().product();
        let raw = g.tensor_data(t);
        let data: Vec<f64> = if t.ggml_type == GgmlType::F32 {
            raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect()
        } else {
            let bt = t.ggml_type.block_type().expect("reference: a type dequantize_row knows");
            let mut f = vec![0.0f32; n];
            dequantize_row(bt, raw, &mut f);
            f.into_iter().map(f64::from).collect()
        };
        assert_eq!(data.len(), n, "{}", t.name);
        let act_block = match t.ggml_type {
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q4_1 | GgmlType::Q5_1 => Some(32),
            GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => Some(256),
            _ => None,
        };
        out.tensors.insert(t.name.to_string(), RefTensor { dims, data, act_block });
    }
    out
}

// ---------------------------------------------------------------------------------------
// The reference forward pass
// ---------------------------------------------------------------------------------------

/// y (rows) = W x for W of `rows` rows of x.len(); W's data is row-major.
/// With `q8`, x is first rounded to 8 bits per block as `Knobs::q8_activations` says.
fn matvec(w: &RefTensor, x: &[f64], q8: bool) -> Vec<f64> {
    let cols = x.len();
    assert_eq!(w.data.len() % cols, 0, "matvec: W is not rows of {cols}");
    let xq: Vec<f64> = match w.act_block {
        Some(block) if q8 => x
            .chunks(block)
            .flat_map(|b| {
                // The engine rounds in f32: amax / 127 and 127 / amax are f32 values there.
                let amax = b.iter().fold(0.0f64, |m, v| m.max(v.abs())) as f32;
                let (d, id) = if amax > 0.0 { (amax / 127.0, 127.0 / amax) } else { (0.0, 0.0) };
                b.iter().map(move |&v| (v * id as f64).round_ties_even() * d as f64)
            })
            .collect(),
        _ => x.to_vec(),
    };
    w.data.chunks_exact(cols).map(|row| row.iter().zip(&xq).map(|(a, b)| a * b).sum()).collect()
}

/// Rows r0..r0+n of W (for gpt2's fused attn_qkv).
fn rows_of(w: &RefTensor, cols: usize, r0: usize, n: usize) -> RefTensor {
    RefTensor { dims: vec![cols, n], data: w.data[r0 * cols..(r0 + n) * cols].to_vec(), act_block: w.act_block }
}

fn add(y: &mut [f64], b: &[f64]) {
    assert_eq!(y.len(), b.len());
    y.iter_mut().zip(b).for_each(|(a, b)| *a += b);
}

fn rmsnorm(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    assert_eq!(x.len(), w.len(), "rmsnorm: gain size");
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let inv = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, g)| v * inv * g).collect()
}

fn layernorm(x: &[f64], w: &[f64], b: &[f64], eps: f64) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    x.iter().zip(w).zip(b).map(|((v, g), b)| (v - mean) * inv * g + b).collect()
}

fn gelu(z: f64) -> f64 {
    0.5 * z * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z * z * z)).tanh())
}

fn silu(z: f64) -> f64 {
    z / (1.0 + (-z).exp())
}

/// RoPE on one head in place.
fn rope_head(x: &mut [f64], pos: usize, base: f64, mode: RopeMode) {
    let hd = x.len();
    for i in 0..hd / 2 {
        let theta = pos as f64 * base.powf(-2.0 * i as f64 / hd as f64);
        let (a, b) = match mode {
            RopeMode::Normal => (2 * i, 2 * i + 1),
            RopeMode::Neox => (i, i + hd / 2),
        };
        let (x0, x1) = (x[a], x[b]);
        x[a] = x0 * theta.cos() - x1 * theta.sin();
        x[b] = x0 * theta.sin() + x1 * theta.cos();
    }
}

/// Logits (N * V) of every position of `tokens` (at positions 0..N).
pub fn forward(s: &ArchShape, w: &RefWeights, tokens: &[u32], knobs: Knobs) -> Vec<f64> {
    let arch = s.arch;
    let (c, hd, nh, nkv) = (s.c, s.head_dim, s.n_heads, s.n_kv_heads);
    let (qd, kvd) = (s.q_dim(), s.kv_dim());
    let eps = s.eps as f64;
    let gpt2 = arch == Arch::Gpt2;
    let norm = |x: &[f64], name: &str| -> Vec<f64> {
        if gpt2 {
            layernorm(x, &w.get(&format!("{name}.weight")).data, &w.get(&format!("{name}.bias")).data, eps)
        } else {
            rmsnorm(x, &w.get(&format!("{name}.weight")).data, eps)
        }
    };
    let opt_bias = |y: &mut Vec<f64>, name: &str| {
        if w.has(name) {
            add(y, &w.get(name).data);
        }
    };

    // Embeddings.
    let embd = w.get("token_embd.weight");
    assert_eq!(embd.dims, vec![c, s.vocab]);
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .enumerate()
        .map(|(p, &t)| {
            let mut x = embd.data[t as usize * c..(t as usize + 1) * c].to_vec();
            if arch == Arch::Gemma3 {
                let sc = (c as f64).sqrt();
                x.iter_mut().for_each(|v| *v *= sc);
            }
            if gpt2 {
                let pe = w.get("position_embd.weight");
                add(&mut x, &pe.data[p * c..(p + 1) * c]);
            }
            x
        })
        .collect();

    let group = nh / nkv;
    let scale = if knobs.scale_from_c { 1.0 / ((c / nh) as f64).sqrt() } else { 1.0 / (hd as f64).sqrt() };
    for il in 0..s.n_layers {
        let b = |t: &str| format!("blk.{il}.{t}");
        // q, k, v of every position.
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (p, x) in xs.iter().enumerate() {
            let h = norm(x, &b("attn_norm"));
            let (mut q, mut k, v) = if gpt2 || arch == Arch::Phi3 {
                let wqkv = w.get(&b("attn_qkv.weight"));
                assert_eq!(wqkv.dims, vec![c, qd + 2 * kvd]);
                let mut q = matvec(&rows_of(wqkv, c, 0, qd), &h, knobs.q8_activations);
                let mut k = matvec(&rows_of(wqkv, c, qd, kvd), &h, knobs.q8_activations);
                let mut v = matvec(&rows_of(wqkv, c, qd + kvd, kvd), &h, knobs.q8_activations);
                if gpt2 {
                    let bqkv = &w.get(&b("attn_qkv.bias")).data;
                    add(&mut q, &bqkv[..qd]);
                    add(&mut k, &bqkv[qd..qd + kvd]);
                    add(&mut v, &bqkv[qd + kvd..]);
                }
                (q, k, v)
            } else {
                let mut q = matvec(w.get(&b("attn_q.weight")), &h, knobs.q8_activations);
                let mut k = matvec(w.get(&b("attn_k.weight")), &h, knobs.q8_activations);
                let mut v = matvec(w.get(&b("attn_v.weight")), &h, knobs.q8_activations);
                opt_bias(&mut q, &b("attn_q.bias"));
                opt_bias(&mut k, &b("attn_k.bias"));
                opt_bias(&mut v, &b("attn_v.bias"));
                (q, k, v)
            };
            assert_eq!((q.len(), k.len(), v.len()), (qd, kvd, kvd));
            if matches!(arch, Arch::Qwen3 | Arch::Gemma3) && !knobs.no_qk_norm {
                let qn = &w.get(&b("attn_q_norm.weight")).data;
                let kn = &w.get(&b("attn_k_norm.weight")).data;
                for head in q.chunks_exact_mut(hd) {
                    let n = rmsnorm(head, qn, eps);
                    head.copy_from_slice(&n);
                }
                for head in k.chunks_exact_mut(hd) {
                    let n = rmsnorm(head, kn, eps);
                    head.copy_from_slice(&n);
                }
            }
            if let Some(mode) = arch.rope_mode() {
                let mode = knobs.rope.unwrap_or(mode);
                let base = if s.is_sliding(il) && !knobs.global_base_everywhere { 10_000.0 } else { s.rope_base as f64 };
                q.chunks_exact_mut(hd).for_each(|head| rope_head(head, p, base, mode));
                k.chunks_exact_mut(hd).for_each(|head| rope_head(head, p, base, mode));
            }
            qs.push(q);
            ks.push(k);
            vs.push(v);
        }
        // Attention and the rest of the layer, per position.
        let sliding = s.is_sliding(il) && !knobs.ignore_window;
        for (p, x) in xs.iter_mut().enumerate() {
            let lo = if sliding { (p + 1).saturating_sub(s.window) } else { 0 };
            let mut att = vec![0.0f64; qd];
            for h in 0..nh {
                let kh = h / group;
                let qh = &qs[p][h * hd..(h + 1) * hd];
                let scores: Vec<f64> =
                    (lo..=p).map(|j| qh.iter().zip(&ks[j][kh * hd..(kh + 1) * hd]).map(|(a, b)| a * b).sum::<f64>() * scale).collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|sc| (sc - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for (j, pj) in (lo..=p).zip(&e) {
                    let vh = &vs[j][kh * hd..(kh + 1) * hd];
                    for (o, v) in att[h * hd..(h + 1) * hd].iter_mut().zip(vh) {
                        *o += pj / sum * v;
                    }
                }
            }
            let mut a = matvec(w.get(&b("attn_output.weight")), &att, knobs.q8_activations);
            opt_bias(&mut a, &b("attn_output.bias"));
            if arch == Arch::Gemma3 {
                a = rmsnorm(&a, &w.get(&b("post_attention_norm.weight")).data, eps);
            }
            add(x, &a);

            let h = norm(x, &b("ffn_norm"));
            let mut m = match arch {
                Arch::Gpt2 => {
                    let mut u = matvec(w.get(&b("ffn_up.weight")), &h, knobs.q8_activations);
                    opt_bias(&mut u, &b("ffn_up.bias"));
                    let g: Vec<f64> = u.into_iter().map(gelu).collect();
                    matvec(w.get(&b("ffn_down.weight")), &g, knobs.q8_activations)
                }
                Arch::Phi3 => {
                    let u = matvec(w.get(&b("ffn_up.weight")), &h, knobs.q8_activations);
                    assert_eq!(u.len(), 2 * s.ffn);
                    let (gate, up) = if knobs.swap_gate_up { (&u[s.ffn..], &u[..s.ffn]) } else { u.split_at(s.ffn) };
                    let hidden: Vec<f64> = gate.iter().zip(up).map(|(&g, &u)| silu(g) * u).collect();
                    matvec(w.get(&b("ffn_down.weight")), &hidden, knobs.q8_activations)
                }
                _ => {
                    let gate = matvec(w.get(&b("ffn_gate.weight")), &h, knobs.q8_activations);
                    let up = matvec(w.get(&b("ffn_up.weight")), &h, knobs.q8_activations);
                    let act: fn(f64) -> f64 = if arch == Arch::Gemma3 { gelu } else { silu };
                    let hidden: Vec<f64> = gate.into_iter().zip(up).map(|(g, u)| act(g) * u).collect();
                    matvec(w.get(&b("ffn_down.weight")), &hidden, knobs.q8_activations)
                }
            };
            opt_bias(&mut m, &b("ffn_down.bias"));
            if arch == Arch::Gemma3 {
                m = rmsnorm(&m, &w.get(&b("post_ffw_norm.weight")).data, eps);
            }
            add(x, &m);
        }
    }

    let out = if w.has("output.weight") { w.get("output.weight") } else { embd };
    let mut logits = Vec::with_capacity(tokens.len() * s.vocab);
    for x in &xs {
        let h = norm(x, "output_norm");
        logits.extend(matvec(out, &h, knobs.q8_activations));
    }
    logits
}

// ---------------------------------------------------------------------------------------
// Random GGUF files
// ---------------------------------------------------------------------------------------

/// One tensor as it will be written.
#[derive(Clone, Debug)]
pub struct RawTensor {
    pub name: String,
    /// Innermost first.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub data: Vec<u8>,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `rows` rows of `cols` random weights of type `t`, each of typical magnitude `scale`:
/// normal values quantized for the types `quantize_row` encodes; random block bytes with
/// small f16 scales for the k-quants (which cannot be quantized here), like the quant tests.
pub fn random_matrix(rng: &mut Rng, t: BlockType, rows: usize, cols: usize, scale: f32) -> Vec<u8> {
    if t == BlockType::F32 {
        let v: Vec<f32> = (0..rows * cols).map(|_| normal(rng) * scale).collect();
        return f32_bytes(&v);
    }
    let row_bytes = t.row_bytes(cols).unwrap_or_else(|| panic!("{cols} columns do not fit {} blocks", t.name()));
    let mut out = vec![0u8; rows * row_bytes];
    if t.can_quantize() {
        for r in out.chunks_exact_mut(row_bytes) {
            let v: Vec<f32> = (0..cols).map(|_| normal(rng) * scale).collect();
            quantize_row(t, &v, r);
        }
        return out;
    }
    out.iter_mut().for_each(|b| *b = rng.next_u32() as u8);
    let f16 = |v: f32| f32_to_f16(v).to_le_bytes();
    for blk in out.chunks_exact_mut(t.block_bytes()) {
        let jitter = 0.5 + rng.next_f32();
        match t {
            // w = d * sc * q - dmin * m: sc, m in 0..63 (mean 31.5), q 4-bit (std 4.6) or
            // 5-bit (std 9.2); dmin ~ d * mean(q) centres the sub-blocks on average.
            BlockType::Q4_K | BlockType::Q5_K => {
                let (q_std, q_mean) = if t == BlockType::Q4_K { (4.6, 7.5) } else { (9.2, 15.5) };
                let d = scale * jitter / (31.5 * q_std);
                blk[0..2].copy_from_slice(&f16(d));
                blk[2..4].copy_from_slice(&f16(d * q_mean * (0.5 + rng.next_f32())));
            }
            // w = d * sc * (q - 32): sc an i8 (rms ~74), q 6-bit (std ~18.5).
            BlockType::Q6_K => blk[208..210].copy_from_slice(&f16(scale * jitter / (74.0 * 18.5))),
            // w = d * level[q]: the 16 levels of IQ4_NL have an rms of about 70.
            BlockType::IQ4_NL => blk[0..2].copy_from_slice(&f16(scale * jitter / 70.0)),
            other => panic!("random_matrix: no generator for {}", other.name()),
        }
    }
    out
}

/// The random tensors of a model of shape `s`: matrices of type `mat` (token_embd, output and
/// position_embd too), norms and biases F32 as in real files. Norm gains ~ 1 + 0.1 z, biases
/// ~ 0.02 z, matrices ~ z / sqrt(cols).
pub fn random_tensors(s: &ArchShape, mat: BlockType, seed: u64) -> Vec<RawTensor> {
    let mut rng = Rng::new(seed);
    let ty = GgmlType::from(mat);
    let mut out = Vec::new();
    let (c, qd, kvd, f, hd, v) = (s.c, s.q_dim(), s.kv_dim(), s.ffn, s.head_dim, s.vocab);
    let arch = s.arch;
    let matrix = |out: &mut Vec<RawTensor>, rng: &mut Rng, name: String, rows: usize, cols: usize| {
        let data = random_matrix(rng, mat, rows, cols, 1.0 / (cols as f32).sqrt());
        out.push(RawTensor { name, dims: vec![cols as u64, rows as u64], ty, data });
    };
    let vector = |out: &mut Vec<RawTensor>, rng: &mut Rng, name: String, n: usize, gain: bool| {
        let vals: Vec<f32> = (0..n).map(|_| if gain { 1.0 + 0.1 * normal(rng) } else { 0.02 * normal(rng) }).collect();
        out.push(RawTensor { name, dims: vec![n as u64], ty: GgmlType::F32, data: f32_bytes(&vals) });
    };
    let gpt2 = arch == Arch::Gpt2;
    matrix(&mut out, &mut rng, "token_embd.weight".into(), v, c);
    if gpt2 {
        matrix(&mut out, &mut rng, "position_embd.weight".into(), s.context, c);
    }
    for il in 0..s.n_layers {
        let b = |t: &str| format!("blk.{il}.{t}");
        vector(&mut out, &mut rng, b("attn_norm.weight"), c, true);
        if gpt2 {
            vector(&mut out, &mut rng, b("attn_norm.bias"), c, false);
            matrix(&mut out, &mut rng, b("attn_qkv.weight"), qd + 2 * kvd, c);
            vector(&mut out, &mut rng, b("attn_qkv.bias"), qd + 2 * kvd, false);
        } else if arch == Arch::Phi3 {
            matrix(&mut out, &mut rng, b("attn_qkv.weight"), qd + 2 * kvd, c);
        } else {
            matrix(&mut out, &mut rng, b("attn_q.weight"), qd, c);
            matrix(&mut out, &mut rng, b("attn_k.weight"), kvd, c);
            matrix(&mut out, &mut rng, b("attn_v.weight"), kvd, c);
            if arch == Arch::Qwen2 {
                vector(&mut out, &mut rng, b("attn_q.bias"), qd, false);
                vector(&mut out, &mut rng, b("attn_k.bias"), kvd, false);
                vector(&mut out, &mut rng, b("attn_v.bias"), kvd, false);
            }
        }
        if matches!(arch, Arch::Qwen3 | Arch::Gemma3) {
            vector(&mut out, &mut rng, b("attn_q_norm.weight"), hd, true);
            vector(&mut out, &mut rng, b("attn_k_norm.weight"), hd, true);
        }
        matrix(&mut out, &mut rng, b("attn_output.weight"), c, qd);
        if gpt2 {
            vector(&mut out, &mut rng, b("attn_output.bias"), c, false);
        }
        if arch == Arch::Gemma3 {
            vector(&mut out, &mut rng, b("post_attention_norm.weight"), c, true);
        }
        vector(&mut out, &mut rng, b("ffn_norm.weight"), c, true);
        if gpt2 {
            vector(&mut out, &mut rng, b("ffn_norm.bias"), c, false);
        } else if arch != Arch::Phi3 {
            matrix(&mut out, &mut rng, b("ffn_gate.weight"), f, c);
        }
        let up_rows = if arch == Arch::Phi3 { 2 * f } else { f };
        matrix(&mut out, &mut rng, b("ffn_up.weight"), up_rows, c);
        if gpt2 {
            vector(&mut out, &mut rng, b("ffn_up.bias"), f, false);
        }
        matrix(&mut out, &mut rng, b("ffn_down.weight"), c, f);
        if gpt2 {
            vector(&mut out, &mut rng, b("ffn_down.bias"), c, false);
        }
        if arch == Arch::Gemma3 {
            vector(&mut out, &mut rng, b("post_ffw_norm.weight"), c, true);
        }
    }
    vector(&mut out, &mut rng, "output_norm.weight".into(), c, true);
    if gpt2 {
        vector(&mut out, &mut rng, "output_norm.bias".into(), c, false);
    }
    if !s.tied {
        matrix(&mut out, &mut rng, "output.weight".into(), v, c);
    }
    out
}

/// The metadata of a model of shape `s` (keys as llama.cpp's converter writes them) with
/// `general.architecture = arch`, a tiny tokenizer of `s.vocab` tokens, and `tensors`.
pub fn write_file(s: &ArchShape, arch: &str, tensors: &[RawTensor]) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", arch).unwrap();
    w.add_string("general.name", &format!("random {arch}")).unwrap();
    write_hparams(&mut w, s, arch);
    let u = |v: usize| u32::try_from(v).expect("u32");
    let n = s.vocab;
    match s.arch {
        // SentencePiece vocabularies (Llama 2, Gemma).
        Arch::Llama | Arch::Gemma3 | Arch::Phi3 => {
            assert!(n >= 4);
            let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
            tokens.extend((3..n).map(|i| format!("\u{2581}t{i}")));
            let scores: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
            let types: Vec<i32> = (0..n)
                .map(|i| match i {
                    0 => 2,
                    1 | 2 => 3,
                    _ => 1,
                })
                .collect();
            w.add_string("tokenizer.ggml.model", "llama").unwrap();
            w.add_string_array("tokenizer.ggml.tokens", &tokens).unwrap();
            w.add_f32_array("tokenizer.ggml.scores", &scores).unwrap();
            w.add_i32_array("tokenizer.ggml.token_type", &types).unwrap();
            w.add_u32("tokenizer.ggml.bos_token_id", 1).unwrap();
            w.add_u32("tokenizer.ggml.eos_token_id", 2).unwrap();
        }
        // Byte-level BPE vocabularies (GPT-2, Qwen).
        Arch::Qwen2 | Arch::Qwen3 | Arch::Gpt2 => {
            assert!(n >= 30);
            let mut tokens: Vec<String> = (b'a'..=b'z').map(|ch| (ch as char).to_string()).collect();
            tokens.push("ab".into());
            tokens.push("cd".into());
            tokens.extend((28..n - 1).map(|i| format!("x{i}")));
            tokens.push("<|endoftext|>".into());
            let types: Vec<i32> = (0..n).map(|i| if i == n - 1 { 3 } else { 1 }).collect();
            w.add_string("tokenizer.ggml.model", "gpt2").unwrap();
            w.add_string("tokenizer.ggml.pre", "default").unwrap();
            w.add_string_array("tokenizer.ggml.tokens", &tokens).unwrap();
            w.add_i32_array("tokenizer.ggml.token_type", &types).unwrap();
            w.add_string_array("tokenizer.ggml.merges", &["a b", "c d"]).unwrap();
            w.add_u32("tokenizer.ggml.eos_token_id", u(n - 1)).unwrap();
        }
    }
    write_tensors(&mut w, tensors);
    w.finish()
}

/// The `{arch}.*` metadata of a model of shape `s` (keys as llama.cpp's converter writes
/// them), after `general.architecture` and before the tokenizer.
pub fn write_hparams(w: &mut GgufWriter<'_>, s: &ArchShape, arch: &str) {
    let k = |key: &str| format!("{arch}.{key}");
    let u = |v: usize| u32::try_from(v).expect("u32");
    w.add_u32(&k("context_length"), u(s.context)).unwrap();
    w.add_u32(&k("embedding_length"), u(s.c)).unwrap();
    w.add_u32(&k("block_count"), u(s.n_layers)).unwrap();
    w.add_u32(&k("feed_forward_length"), u(s.ffn)).unwrap();
    w.add_u32(&k("attention.head_count"), u(s.n_heads)).unwrap();
    w.add_u32(&k("attention.head_count_kv"), u(s.n_kv_heads)).unwrap();
    if s.arch == Arch::Gemma3 || s.head_dim * s.n_heads != s.c {
        w.add_u32(&k("attention.key_length"), u(s.head_dim)).unwrap();
        w.add_u32(&k("attention.value_length"), u(s.head_dim)).unwrap();
    }
    if s.arch == Arch::Gpt2 {
        w.add_f32(&k("attention.layer_norm_epsilon"), s.eps).unwrap();
    } else {
        w.add_f32(&k("attention.layer_norm_rms_epsilon"), s.eps).unwrap();
        w.add_f32(&k("rope.freq_base"), s.rope_base).unwrap();
    }
    if s.arch == Arch::Gemma3 {
        w.add_u32(&k("attention.sliding_window"), u(s.window)).unwrap();
    }
}

/// The tensors, after the metadata.
pub fn write_tensors<'d>(w: &mut GgufWriter<'d>, tensors: &'d [RawTensor]) {
    for t in tensors {
        w.add_tensor(&t.name, &t.dims, t.ty, &t.data).unwrap();
    }
}

/// A random GGUF model of shape `s` with matrices of type `mat`.
pub fn random_gguf(s: &ArchShape, mat: BlockType, seed: u64) -> Vec<u8> {
    write_file(s, s.arch.name(), &random_tensors(s, mat, seed))
}
