//! The model spec: the shape and the switches of a transformer, built by a loader from the
//! file. One forward pass (`model.rs`) reads these switches; a new family is a new set of
//! values here plus a loader, not a new forward pass.
//!
//! Families and their switches:
//!
//! | family | norm | positions | MLP | other |
//! |---|---|---|---|---|
//! | GPT-2 (llm.c) | LayerNorm + bias | learned | GELU (with biases) | tied output |
//! | Llama (llama2.c) | RMSNorm | RoPE normal | SwiGLU | GQA, tied or separate output |
//! | Qwen2 | RMSNorm | RoPE neox | SwiGLU | Q/K/V biases |
//! | Gemma 3 | RMSNorm | RoPE neox, local base | GeGLU | QK-norm, post-norms, embedding scale, sliding window |

use core::fmt;

/// How RoPE pairs the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (2j, 2j+1): llama2.c's run.c, Llama GGUF files ("normal").
    Normal,
    /// Halves (j, j + hd/2): GPT-NeoX, Qwen, Gemma ("neox").
    Neox,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// (x - mean) / sqrt(var + eps) * w + b (GPT-2).
    LayerNorm,
    /// x / sqrt(mean(x^2) + eps) * w (Llama and descendants).
    RmsNorm,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Norm {
    pub kind: NormKind,
    pub eps: f32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rope {
    /// theta base of the global layers (10,000 in Llama 2).
    pub base: f32,
    pub style: RopeStyle,
    /// A different base for sliding-window layers (Gemma 3: 10,000 there, `freq_base` on the
    /// global ones).
    pub local_base: Option<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Positions {
    /// A learned position embedding added to the token embedding (GPT-2).
    Learned,
    /// Rotary position embedding applied to queries and keys.
    Rope(Rope),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mlp {
    /// down(gelu(up(x))) (GPT-2).
    Gelu,
    /// down(silu(gate(x)) * up(x)) (Llama).
    SwiGlu,
    /// down(gelu(gate(x)) * up(x)) (Gemma).
    GeGlu,
}

/// Layers `l` with `l % pattern < pattern - 1` attend to the last `window` positions only;
/// the others are global (Gemma 3: pattern 6, i.e. 5 local layers then 1 global).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingWindow {
    pub window: usize,
    pub pattern: usize,
}

/// The architecture's name (GGUF's `general.architecture`), for messages and `inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arch(pub &'static str);

impl Arch {
    /// llm.c checkpoints and GGUF `gpt2`.
    pub const GPT2: Arch = Arch("gpt2");
    /// llama2.c checkpoints and GGUF `llama`.
    pub const LLAMA: Arch = Arch("llama");

    pub fn name(self) -> &'static str {
        self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelSpec {
    pub arch: Arch,
    /// V: the real vocabulary; logits are computed over these tokens.
    pub vocab_size: usize,
    /// C
    pub d_model: usize,
    /// L
    pub n_layers: usize,
    /// NH: query heads.
    pub n_heads: usize,
    /// NKV: key/value heads (grouped-query attention when < NH).
    pub n_kv_heads: usize,
    /// hd: may differ from C / NH (Gemma 3).
    pub head_dim: usize,
    /// F: the MLP's hidden width.
    pub ffn_dim: usize,
    /// maxT: the longest context the model supports.
    pub context: usize,
    pub norm: Norm,
    pub positions: Positions,
    pub mlp: Mlp,
    /// RMSNorm of each query and key head (hd) before RoPE.
    pub qk_norm: bool,
    /// Norms of the attention and MLP outputs before their residual adds (Gemma).
    pub post_norms: bool,
    /// The token embedding is multiplied by this (Gemma: sqrt(C)).
    pub embed_scale: Option<f32>,
    pub sliding_window: Option<SlidingWindow>,
    /// logits = cap * tanh(logits / cap).
    pub logit_softcap: Option<f32>,
    /// The output projection is the token embedding (no separate `output` tensor).
    pub tied_output: bool,
}

// Bounds that reject absurd files before any arithmetic: far above any model we can run.
pub const MAX_CONTEXT: usize = 1 << 20;
pub const MAX_VOCAB: usize = 1 << 24;
pub const MAX_LAYERS: usize = 1 << 10;
pub const MAX_HEADS: usize = 1 << 10;
pub const MAX_DIM: usize = 1 << 17;

#[derive(Clone, Debug, PartialEq)]
pub enum SpecError {
    BadDimension {
        name: &'static str,
        value: usize,
        max: usize,
    },
    HeadsNotDivisible {
        heads: usize,
        kv_heads: usize,
    },
    OddHeadDim {
        head_dim: usize,
    },
    BadEpsilon {
        eps: f32,
    },
    BadRopeBase {
        base: f32,
    },
    BadSlidingWindow {
        window: usize,
        pattern: usize,
    },
    BadScale {
        name: &'static str,
        value: f32,
    },
    /// The sizes overflow what any machine could address.
    SizeOverflow,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::BadDimension { name, value, max } => write!(f, "bad dimension {name} = {value} (must be between 1 and {max})"),
            SpecError::HeadsNotDivisible { heads, kv_heads } => {
                write!(f, "{heads} attention heads cannot be shared evenly by {kv_heads} key/value heads")
            }
            SpecError::OddHeadDim { head_dim } => write!(f, "RoPE needs an even head size, found {head_dim}"),
            SpecError::BadEpsilon { eps } => write!(f, "norm epsilon {eps} is not a small positive number"),
            SpecError::BadRopeBase { base } => write!(f, "RoPE base {base} is not a number above 1"),
            SpecError::BadSlidingWindow { window, pattern } => write!(f, "bad sliding window {window} with pattern {pattern}"),
            SpecError::BadScale { name, value } => write!(f, "{name} = {value} is not a positive finite number"),
            SpecError::SizeOverflow => write!(f, "the model's sizes overflow (absurd dimensions)"),
        }
    }
}

impl core::error::Error for SpecError {}

impl ModelSpec {
    /// NH * hd: the width of the queries and of the attention output.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// NKV * hd: the width of a key or value row.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Whether layer `l` uses the sliding window.
    pub fn is_sliding(&self, l: usize) -> bool {
        self.sliding_window.is_some_and(|s| l % s.pattern < s.pattern - 1)
    }

    /// The attention window of layer `l` (None: every position).
    pub fn window(&self, l: usize) -> Option<usize> {
        self.sliding_window.filter(|_| self.is_sliding(l)).map(|s| s.window)
    }

    /// The RoPE base of layer `l`, if the model uses RoPE.
    pub fn rope_base(&self, l: usize) -> Option<f32> {
        match self.positions {
            Positions::Learned => None,
            Positions::Rope(r) => Some(if self.is_sliding(l) { r.local_base.unwrap_or(r.base) } else { r.base }),
        }
    }

    /// Checks every rule a spec must obey; afterwards every size product fits in usize.
    pub fn validate(&self) -> Result<(), SpecError> {
        let dims = [
            ("V", self.vocab_size, MAX_VOCAB),
            ("C", self.d_model, MAX_DIM),
            ("L", self.n_layers, MAX_LAYERS),
            ("NH", self.n_heads, MAX_HEADS),
            ("NKV", self.n_kv_heads, MAX_HEADS),
            ("head_dim", self.head_dim, MAX_DIM),
            ("ffn_dim", self.ffn_dim, MAX_DIM),
            ("context", self.context, MAX_CONTEXT),
        ];
        for (name, value, max) in dims {
            if value == 0 || value > max {
                return Err(SpecError::BadDimension { name, value, max });
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(SpecError::HeadsNotDivisible { heads: self.n_heads, kv_heads: self.n_kv_heads });
        }
        if !(self.norm.eps > 0.0 && self.norm.eps < 1.0) {
            return Err(SpecError::BadEpsilon { eps: self.norm.eps });
        }
        if let Positions::Rope(r) = self.positions {
            if !self.head_dim.is_multiple_of(2) {
                return Err(SpecError::OddHeadDim { head_dim: self.head_dim });
            }
            for base in [Some(r.base), r.local_base].into_iter().flatten() {
                if !(base.is_finite() && base > 1.0) {
                    return Err(SpecError::BadRopeBase { base });
                }
            }
        }
        if let Some(s) = self.sliding_window
            && (s.window == 0 || s.pattern == 0)
        {
            return Err(SpecError::BadSlidingWindow { window: s.window, pattern: s.pattern });
        }
        for (name, v) in [("embedding scale", self.embed_scale), ("logit soft-cap", self.logit_softcap)] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(SpecError::BadScale { name, value: v });
            }
        }
        // The largest products the engine forms (caches, embedding, MLP) must fit comfortably.
        let fits = |a: usize, b: usize, c: usize| a.checked_mul(b).and_then(|x| x.checked_mul(c)).is_some_and(|x| x <= 1 << 40);
        let wide = self.q_dim().max(self.kv_dim()).max(self.d_model).max(self.ffn_dim);
        if !(fits(self.n_layers, self.context, wide) && fits(self.vocab_size, self.d_model, 1) && fits(self.n_heads, self.context, 1)) {
            return Err(SpecError::SizeOverflow);
        }
        Ok(())
    }
}
