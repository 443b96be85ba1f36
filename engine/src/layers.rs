//! The layer library: every building block of the transformer families, written once.
//! The forward pass (`model.rs`) and the trainer's forward use these; the matrix products
//! are in `kernels`.
//!
//! Letters: N = rows (tokens) in one call, C = d_model, hd = head_dim, NH = query heads,
//! NKV = key/value heads, T = positions in the cache.
//!
//! Transcendental functions are computed in plain f32 arithmetic of our own (`exp`, `tanh`)
//! or with `libm` (sqrt, powf, sin, cos), never with a platform's libm, so the host and the
//! firmware compute the same bits.

use crate::kernels::Kernels;
use crate::parallel::{Parallel, SharedMut};
use crate::spec::RopeStyle;

fn check_norm(out: &[f32], x: &[f32], weight: &[f32]) {
    assert!(out.len() == x.len() && weight.len() == x.len() && !x.is_empty(), "norm: out, x and weight must have the same non-zero length");
}

/// out (C) = x (C) / sqrt(mean(x^2) + eps) * weight (Llama's RMSNorm, in run.c's order).
pub fn rmsnorm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    check_norm(out, x, weight);
    let mut ss = 0.0f32;
    for &v in x {
        ss += v * v;
    }
    let scale = 1.0 / libm::sqrtf(ss / x.len() as f32 + eps);
    for i in 0..x.len() {
        out[i] = weight[i] * (scale * x[i]);
    }
}

/// out (C) = LayerNorm(x (C)) * weight + bias (llm.c and GPT-2 use eps = 1e-5).
pub fn layernorm(out: &mut [f32], x: &[f32], weight: &[f32], bias: &[f32], eps: f32) {
    check_norm(out, x, weight);
    assert_eq!(bias.len(), x.len(), "layernorm: bias length");
    let c = x.len() as f32;
    let mut sum = 0.0f32;
    for &v in x {
        sum += v;
    }
    let mean = sum / c;
    let mut var = 0.0f32;
    for &v in x {
        let d = v - mean;
        var += d * d;
    }
    let rstd = 1.0 / libm::sqrtf(var / c + eps);
    for i in 0..x.len() {
        out[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
    }
}

pub const GELU_SCALE: f32 = 0.797_884_6; // sqrt(2 / pi)

/// e^x in plain f32 arithmetic, so it vectorises and gives the same bits on every target:
/// x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two parts for an exact reduction), e^r by
/// its degree-6 Taylor polynomial, 2^n through the exponent bits. Relative error below 3e-7
/// over [-87, 88] (tested against f64); inputs outside are clamped (results ~1e-38 / ~1e38).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5 * 2^23 trick (no libm call, no SSE4.1 needed).
    let n = (x * core::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_67 + r * (0.008_333_334 + r * 0.001_388_889)))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// tanh through `exp`: (e^2x - 1) / (e^2x + 1); absolute error below 1e-6.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let x = x.clamp(-9.0, 9.0);
    let e = exp(2.0 * x);
    (e - 1.0) / (e + 1.0)
}

/// GELU, tanh approximation (as GPT-2 and llm.c), in place.
pub fn gelu(x: &mut [f32]) {
    for v in x.iter_mut() {
        let u = *v;
        let cube = 0.044715 * u * u * u;
        *v = 0.5 * u * (1.0 + tanh(GELU_SCALE * (u + cube)));
    }
}

/// Softmax in place over the whole slice (max-subtracted for stability).
pub fn softmax(x: &mut [f32]) {
    let mut max = f32::NEG_INFINITY;
    for &v in x.iter() {
        if v > max {
            max = v;
        }
    }
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// x += y, elementwise (the residual connection).
pub(crate) fn residual_add(x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len(), "residual_add: lengths differ");
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// SiLU (x * sigmoid(x)) of the gate times the up projection, in place in `gate` (SwiGLU).
pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "swiglu: lengths differ");
    for (g, &u) in gate.iter_mut().zip(up) {
        let v = *g;
        *g = v * (1.0 / (1.0 + exp(-v))) * u;
    }
}

/// GELU (tanh approximation) of the gate times the up projection, in place (GeGLU).
pub(crate) fn geglu(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "geglu: lengths differ");
    gelu(gate);
    for (g, &u) in gate.iter_mut().zip(up) {
        *g *= u;
    }
}

/// logits = cap * tanh(logits / cap) (Gemma's soft-capping), in place.
pub(crate) fn softcap(x: &mut [f32], cap: f32) {
    for v in x.iter_mut() {
        *v = cap * tanh(*v / cap);
    }
}

/// cos/sin of every pair angle for one position: table (hd/2 pairs of [cos, sin]).
/// theta_j = pos * base^(-2j/hd), computed as run.c does: pos * (1 / base^(2j/hd)).
pub(crate) fn rope_table(table: &mut [f32], pos: usize, base: f32, head_dim: usize) {
    assert_eq!(table.len(), head_dim, "rope_table: one cos/sin pair per dimension pair");
    for j in 0..head_dim / 2 {
        let freq = 1.0 / libm::powf(base, (2 * j) as f32 / head_dim as f32);
        let val = pos as f32 * freq;
        table[2 * j] = libm::cosf(val);
        table[2 * j + 1] = libm::sinf(val);
    }
}

/// Rotates every head (hd) of `x` (heads * hd) by the angles in `table` (from `rope_table`).
pub fn rope(x: &mut [f32], table: &[f32], head_dim: usize, style: RopeStyle) {
    assert!(
        head_dim >= 2 && head_dim.is_multiple_of(2) && x.len().is_multiple_of(head_dim) && table.len() == head_dim,
        "rope: bad lengths"
    );
    let half = head_dim / 2;
    for head in x.chunks_exact_mut(head_dim) {
        for j in 0..half {
            let (fcr, fci) = (table[2 * j], table[2 * j + 1]);
            let (a, b) = match style {
                RopeStyle::Normal => (2 * j, 2 * j + 1),
                RopeStyle::Neox => (j, j + half),
            };
            let (v0, v1) = (head[a], head[b]);
            head[a] = v0 * fcr - v1 * fci;
            head[b] = v0 * fci + v1 * fcr;
        }
    }
}

/// The head layout of an attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Attend only to the last `window` positions (sliding-window layers).
    pub window: Option<usize>,
}

/// Causal self-attention for N query rows at positions pos0..pos0+N, grouped-query:
/// query head h reads key/value head h / (NH / NKV).
/// out, q (N, NH*hd); keys, values (T, NKV*hd) hold every position so far (at least
/// pos0 + N rows); att (NH, T) is scratch, one score row per head.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    par: &dyn Parallel,
    k: Kernels,
    out: &mut [f32],
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    att: &mut [f32],
    pos0: usize,
    shape: AttnShape,
) {
    let AttnShape { n_heads: nh, n_kv_heads: nkv, head_dim: hd, window } = shape;
    assert!(nh > 0 && nkv > 0 && nh % nkv == 0 && hd > 0, "attention: bad head layout");
    let (q_dim, kv_dim) = (nh * hd, nkv * hd);
    assert!(q.len() == out.len() && q.len().is_multiple_of(q_dim), "attention: q and out must be rows of NH * hd");
    assert!(keys.len() == values.len() && keys.len().is_multiple_of(kv_dim), "attention: keys and values must be rows of NKV * hd");
    let n = q.len() / q_dim;
    let t_max = keys.len() / kv_dim;
    assert!(pos0 + n <= t_max, "attention: positions beyond the cache");
    assert!(att.len() >= nh * t_max, "attention: score buffer too small");
    let group = nh / nkv;
    let scale = 1.0 / libm::sqrtf(hd as f32);
    let one_head = |t: usize, h: usize, out_h: &mut [f32], att: &mut [f32]| {
        let p = pos0 + t;
        let start = window.map_or(0, |w| (p + 1).saturating_sub(w));
        let kvh = h / group;
        let qh = &q[t * q_dim + h * hd..t * q_dim + (h + 1) * hd];
        let att = &mut att[start..=p];
        let key = |s: usize| &keys[s * kv_dim + kvh * hd..s * kv_dim + (kvh + 1) * hd];
        // Four keys at a time (four independent dot products; each equals `dot`).
        let (quads, rest) = att.as_chunks_mut::<4>();
        for (j, a4) in quads.iter_mut().enumerate() {
            let s = start + 4 * j;
            for (a, d) in a4.iter_mut().zip(k.dot4(qh, [key(s), key(s + 1), key(s + 2), key(s + 3)])) {
                *a = d * scale;
            }
        }
        let s0 = start + 4 * quads.len();
        for (i, a) in rest.iter_mut().enumerate() {
            *a = k.dot(qh, key(s0 + i)) * scale;
        }
        softmax(att);
        out_h.fill(0.0);
        let value = |s: usize| &values[s * kv_dim + kvh * hd..s * kv_dim + (kvh + 1) * hd];
        // Four values at a time, in order (each element sees the same sequence of axpy).
        let (quads, rest) = att.as_chunks::<4>();
        for (j, &a4) in quads.iter().enumerate() {
            let s = start + 4 * j;
            k.axpy4(out_h, a4, [value(s), value(s + 1), value(s + 2), value(s + 3)]);
        }
        let s0 = start + 4 * quads.len();
        for (i, &a) in rest.iter().enumerate() {
            k.axpy(out_h, a, value(s0 + i));
        }
    };
    if par.workers() <= 1 || nh == 1 || n * (pos0 + n) * q_dim < par.grain() {
        for t in 0..n {
            for h in 0..nh {
                one_head(t, h, &mut out[t * q_dim + h * hd..t * q_dim + (h + 1) * hd], &mut att[h * t_max..(h + 1) * t_max]);
            }
        }
        return;
    }
    // One task per head; each has its own score row in `att`.
    let out_s = SharedMut::new(out);
    let att_s = SharedMut::new(att);
    par.run(nh, &|h| {
        // SAFETY: task h alone touches score row h and columns h*hd..(h+1)*hd of each row.
        let att_h = unsafe { att_s.part(h * t_max, t_max) };
        for t in 0..n {
            // SAFETY: as above (disjoint per head).
            let out_h = unsafe { out_s.part(t * q_dim + h * hd, hd) };
            one_head(t, h, out_h, att_h);
        }
    });
}
