//! Named, typed weights: what a loader fills from a file and the forward pass reads.
//! Matrices are [`Tensor`]s (out, in); norm gains and biases are f32 vectors. Optional
//! fields are the families' switches: biases (GPT-2, Qwen2), QK-norms and post-norms
//! (Gemma 3), a gate (SwiGLU / GeGLU), a separate output projection.
//!
//! [`Weights::check`] compares every shape with the spec, so a model that was built cannot
//! meet a wrong-sized tensor in the forward pass.

use crate::spec::{Mlp, ModelSpec, NormKind, Positions};
use crate::tensor::{Tensor, Vector};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A norm's gain and (LayerNorm only) bias, each (C) or (hd).
pub struct NormWeights<'a> {
    pub weight: Vector<'a>,
    pub bias: Option<Vector<'a>>,
}

/// One transformer block. Shapes: C = d_model, Q = NH*hd, K = NKV*hd, F = ffn_dim.
pub struct Layer<'a> {
    pub attn_norm: NormWeights<'a>, // (C)
    pub wq: Tensor<'a>,             // (Q, C)
    pub wk: Tensor<'a>,             // (K, C)
    pub wv: Tensor<'a>,             // (K, C)
    pub bq: Option<Vector<'a>>,     // (Q)
    pub bk: Option<Vector<'a>>,     // (K)
    pub bv: Option<Vector<'a>>,     // (K)
    pub q_norm: Option<Vector<'a>>, // (hd)
    pub k_norm: Option<Vector<'a>>, // (hd)
    pub wo: Tensor<'a>,             // (C, Q)
    pub bo: Option<Vector<'a>>,     // (C)
    pub post_attn_norm: Option<NormWeights<'a>>,
    pub ffn_norm: NormWeights<'a>,    // (C)
    pub ffn_gate: Option<Tensor<'a>>, // (F, C)
    pub ffn_up: Tensor<'a>,           // (F, C)
    pub b_up: Option<Vector<'a>>,     // (F)
    pub ffn_down: Tensor<'a>,         // (C, F)
    pub b_down: Option<Vector<'a>>,   // (C)
    pub post_ffn_norm: Option<NormWeights<'a>>,
}

pub struct Weights<'a> {
    /// (V', C) with V' >= V (llm.c pads the vocabulary; the extra rows are never used).
    pub token_embd: Tensor<'a>,
    /// (maxT, C) for learned positions.
    pub pos_embd: Option<Tensor<'a>>,
    pub layers: Vec<Layer<'a>>,
    pub output_norm: NormWeights<'a>,
    /// (V, C); None when tied to `token_embd`.
    pub output: Option<Tensor<'a>>,
}

/// A tensor that does not fit the spec, named as a user can look it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightsError {
    pub tensor: String,
    pub problem: String,
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor {}: {}", self.tensor, self.problem)
    }
}

impl core::error::Error for WeightsError {}

fn err(tensor: &str, problem: String) -> WeightsError {
    WeightsError { tensor: String::from(tensor), problem }
}

fn mat(name: &str, t: &Tensor<'_>, rows: usize, cols: usize) -> Result<(), WeightsError> {
    if t.rows() != rows || t.cols() != cols {
        return Err(err(name, format!("shape ({}, {}), expected ({rows}, {cols})", t.rows(), t.cols())));
    }
    Ok(())
}

fn vector(name: &str, v: &[f32], n: usize) -> Result<(), WeightsError> {
    if v.len() != n {
        return Err(err(name, format!("{} elements, expected {n}", v.len())));
    }
    Ok(())
}

fn present<T>(name: &str, v: &Option<T>, wanted: bool) -> Result<(), WeightsError> {
    match (v.is_some(), wanted) {
        (true, false) => Err(err(name, String::from("present, but this architecture has no such tensor"))),
        (false, true) => Err(err(name, String::from("missing"))),
        _ => Ok(()),
    }
}

fn norm(name: &str, n: &NormWeights<'_>, kind: NormKind, len: usize) -> Result<(), WeightsError> {
    vector(name, &n.weight, len)?;
    match (&n.bias, kind) {
        (Some(b), NormKind::LayerNorm) => vector(&format!("{name}.bias"), b, len),
        (None, NormKind::LayerNorm) => Err(err(name, String::from("LayerNorm without a bias"))),
        (Some(_), NormKind::RmsNorm) => Err(err(name, String::from("RMSNorm with a bias"))),
        (None, NormKind::RmsNorm) => Ok(()),
    }
}

fn opt_vector(name: &str, v: &Option<Vector<'_>>, n: usize) -> Result<(), WeightsError> {
    match v {
        Some(v) => vector(name, v, n),
        None => Ok(()),
    }
}

impl Weights<'_> {
    /// Checks every tensor's presence and shape against the spec (which must be valid).
    pub fn check(&self, s: &ModelSpec) -> Result<(), WeightsError> {
        let (c, q, kv, f, hd) = (s.d_model, s.q_dim(), s.kv_dim(), s.ffn_dim, s.head_dim);
        if self.token_embd.rows() < s.vocab_size || self.token_embd.cols() != c {
            let (r, cc) = (self.token_embd.rows(), self.token_embd.cols());
            return Err(err("token_embd", format!("shape ({r}, {cc}), expected at least ({}, {c})", s.vocab_size)));
        }
        let learned = s.positions == Positions::Learned;
        present("pos_embd", &self.pos_embd, learned)?;
        if let Some(p) = &self.pos_embd {
            mat("pos_embd", p, s.context, c)?;
        }
        if self.layers.len() != s.n_layers {
            return Err(err("layers", format!("{} layers, expected {}", self.layers.len(), s.n_layers)));
        }
        for (l, y) in self.layers.iter().enumerate() {
            let n = |t: &str| format!("layers[{l}].{t}");
            norm(&n("attn_norm"), &y.attn_norm, s.norm.kind, c)?;
            mat(&n("wq"), &y.wq, q, c)?;
            mat(&n("wk"), &y.wk, kv, c)?;
            mat(&n("wv"), &y.wv, kv, c)?;
            opt_vector(&n("bq"), &y.bq, q)?;
            opt_vector(&n("bk"), &y.bk, kv)?;
            opt_vector(&n("bv"), &y.bv, kv)?;
            present(&n("q_norm"), &y.q_norm, s.qk_norm)?;
            present(&n("k_norm"), &y.k_norm, s.qk_norm)?;
            opt_vector(&n("q_norm"), &y.q_norm, hd)?;
            opt_vector(&n("k_norm"), &y.k_norm, hd)?;
            mat(&n("wo"), &y.wo, c, q)?;
            opt_vector(&n("bo"), &y.bo, c)?;
            present(&n("post_attn_norm"), &y.post_attn_norm, s.post_norms)?;
            if let Some(pn) = &y.post_attn_norm {
                norm(&n("post_attn_norm"), pn, s.norm.kind, c)?;
            }
            norm(&n("ffn_norm"), &y.ffn_norm, s.norm.kind, c)?;
            present(&n("ffn_gate"), &y.ffn_gate, s.mlp != Mlp::Gelu)?;
            if let Some(g) = &y.ffn_gate {
                mat(&n("ffn_gate"), g, f, c)?;
            }
            mat(&n("ffn_up"), &y.ffn_up, f, c)?;
            opt_vector(&n("b_up"), &y.b_up, f)?;
            mat(&n("ffn_down"), &y.ffn_down, c, f)?;
            opt_vector(&n("b_down"), &y.b_down, c)?;
            present(&n("post_ffn_norm"), &y.post_ffn_norm, s.post_norms)?;
            if let Some(pn) = &y.post_ffn_norm {
                norm(&n("post_ffn_norm"), pn, s.norm.kind, c)?;
            }
        }
        norm("output_norm", &self.output_norm, s.norm.kind, c)?;
        present("output", &self.output, !s.tied_output)?;
        if let Some(o) = &self.output {
            mat("output", o, s.vocab_size, c)?;
        }
        Ok(())
    }

    /// Bytes of every tensor (weights only).
    pub fn bytes(&self) -> usize {
        let v = |x: &Option<Vector<'_>>| x.as_ref().map_or(0, |v| v.len() * 4);
        let nw = |n: &NormWeights<'_>| n.weight.len() * 4 + v(&n.bias);
        let on = |n: &Option<NormWeights<'_>>| n.as_ref().map_or(0, nw);
        let t = |x: &Option<Tensor<'_>>| x.as_ref().map_or(0, |t| t.bytes());
        let mut sum = self.token_embd.bytes() + t(&self.pos_embd) + nw(&self.output_norm) + t(&self.output);
        for y in &self.layers {
            sum += nw(&y.attn_norm) + y.wq.bytes() + y.wk.bytes() + y.wv.bytes() + v(&y.bq) + v(&y.bk) + v(&y.bv);
            sum += v(&y.q_norm) + v(&y.k_norm) + y.wo.bytes() + v(&y.bo) + on(&y.post_attn_norm) + nw(&y.ffn_norm);
            sum += t(&y.ffn_gate) + y.ffn_up.bytes() + v(&y.b_up) + y.ffn_down.bytes() + v(&y.b_down) + on(&y.post_ffn_norm);
        }
        sum
    }

    /// Bytes read to decode one token: every tensor, except that only one row of the token
    /// embedding (and of the position embedding) is read when the output matrix is separate;
    /// when it is tied, the embedding is read whole as the output. The memory-bandwidth
    /// limit of decoding is the read bandwidth divided by this.
    pub fn bytes_per_token(&self) -> usize {
        let row = |t: &Tensor<'_>| t.bytes() / t.rows().max(1);
        let embd = if self.output.is_some() { self.token_embd.bytes() - row(&self.token_embd) } else { 0 };
        let pos = self.pos_embd.as_ref().map_or(0, |p| p.bytes() - row(p));
        self.bytes() - embd - pos
    }
}
