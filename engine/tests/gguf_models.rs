//! GGUF models of every mapped architecture (llama, qwen2, qwen3, gemma3, gpt2), computed by
//! the engine, against the naive f64 reference of `llm_testkit::gguf_ref` (written from
//! llama.cpp's model graphs, not from the engine's `model.rs`), on small random GGUF files
//! written with the keys llama.cpp's converter uses:
//!
//! - every architecture x two shapes (GQA and MHA, gemma3 and qwen3 with key_length != C / n_head,
//!   gemma3 with 6+ layers so both sliding and global layers run and a window shorter than
//!   the sequence, qwen3/gemma3 q/k norms, gpt2's fused attn_qkv, tied and separate output)
//!   x matrix types (all 11 on the C = 256 shapes, five on the small ones) x every kernel set
//!   of `Kernels::available()`: logits within `TOL` of the reference;
//! - decoding one token at a time with the KV cache equals the prefill bit for bit;
//! - the tests would catch a wrong implementation: the reference with a wrong RoPE mode, no
//!   sliding window, one RoPE base everywhere, the wrong attention scale, no q/k norm, or one
//!   perturbed weight is more than 10 x `TOL` away from the engine on the same files;
//! - unsupported architecture, missing tensor, wrong shape, unsupported type: typed errors
//!   naming the culprit.
use llm_engine::arch::GgufModelError;
use llm_engine::formats::gguf::GgmlType;
use llm_engine::quant::BlockType;
use llm_engine::{Kernels, LoadError, load};
use llm_testkit::gguf_ref::*;
use llm_testkit::random_tokens;

/// Tokens per sequence (longer than gemma3's windows below, so the window matters).
const N: usize = 12;

/// The largest |engine - reference| allowed, relative to the largest |reference logit| of the
/// sequence (the logits here have scale ~1..10, checked in `check`). Both sides use identical
/// weights (the same blocks decoded exactly), so the only difference is the engine's f32
/// arithmetic: ~2^-24 (6e-8) per rounding, growing like sqrt(terms) in the dot products
/// (up to 512 terms here) and through the norms, softmaxes and layers. Observed on this
/// machine, over all files and kernel sets: 3e-7 .. 2.5e-6 (printed by the architecture tests with
/// --nocapture). 2e-5 leaves ~8x margin over the worst and is still ~40x below the smallest
/// effect of any wrong semantics or of one perturbed weight (> 8e-4, `a_wrong_reference_is_caught`
/// requires > 10 x TOL).
const TOL: f64 = 2e-5;

/// As `TOL` for the 8-bit activation set, against the reference that rounds activations the
/// same way (`Knobs::q8_activations`). Far larger: a value within f32 rounding of a half-step
/// rounds to the other code in the engine than in the f64 reference (one step is 1/127 of the
/// block's largest value), and these random models amplify such a step through the layers.
/// Observed: 1e-3 .. 1.1e-2 (against 1.1e-2 .. 1.8e-2 for the f32 reference). The 8-bit
/// products themselves are checked exactly in tests/quant.rs (kernels = portable reference
/// bit for bit; reference = f64 sum of decoded values); everything else in the model is the
/// FMA family's code, held to `TOL` above.
const TOL_Q8: f64 = 3e-2;

fn shape(arch: Arch) -> ArchShape {
    ArchShape {
        arch,
        vocab: 64,
        c: 256,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 64,
        ffn: 512,
        context: 64,
        eps: 1e-5,
        rope_base: 10_000.0,
        window: 0,
        tied: false,
    }
}

/// The C = 256 shapes (every matrix has a multiple of 256 columns: all 11 types fit).
fn main_shape(arch: Arch) -> ArchShape {
    let s = shape(arch);
    match arch {
        // GQA 4/2, separate output.
        Arch::Llama => s,
        // GQA 8/2, biases, tied output, base 1e6.
        Arch::Qwen2 => ArchShape { n_heads: 8, head_dim: 32, ffn: 256, eps: 1e-6, rope_base: 1e6, tied: true, ..s },
        // GQA 4/1, head_dim 128 != C/NH = 64 (as Qwen3-0.6B), separate output.
        Arch::Qwen3 => ArchShape { n_kv_heads: 1, head_dim: 128, ffn: 256, eps: 1e-6, rope_base: 1e6, ..s },
        // 6 layers: 0-4 sliding (base 10000, window 4 < N), 5 global (base 1e6); head_dim 256
        // != C/NH = 128 (as Gemma 3 270M: 640 / 4 != 256), GQA 2/1, tied output.
        Arch::Gemma3 => ArchShape {
            n_layers: 6,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 256,
            ffn: 256,
            eps: 1e-6,
            rope_base: 1e6,
            window: 4,
            tied: true,
            ..s
        },
        // MHA, fused qkv, tied output.
        Arch::Gpt2 => ArchShape { n_kv_heads: 4, context: 32, tied: true, ..s },
        // MHA (as Phi-3-mini), fused attn_qkv without bias, fused gate+up (2F rows).
        Arch::Phi3 => ArchShape { n_kv_heads: 4, ffn: 256, ..s },
    }
}

/// Small odd shapes (multiples of 32 columns: the float and legacy types only), with the
/// other output choice and head layout than the main shape.
fn small_shape(arch: Arch) -> ArchShape {
    let s = ArchShape { vocab: 40, c: 64, ffn: 96, context: 16, ..shape(arch) };
    match arch {
        Arch::Llama => ArchShape { n_layers: 3, n_heads: 8, n_kv_heads: 8, head_dim: 8, tied: true, ..s },
        Arch::Qwen2 => ArchShape { c: 96, n_heads: 6, n_kv_heads: 3, head_dim: 16, ffn: 160, rope_base: 1e6, ..s },
        Arch::Qwen3 => ArchShape { n_heads: 4, n_kv_heads: 2, head_dim: 16, ffn: 128, tied: true, ..s },
        // 7 layers: 0-4 sliding, 5 global, 6 sliding again; window 3; head_dim 32 != 64/4.
        Arch::Gemma3 => ArchShape { n_layers: 7, n_heads: 4, n_kv_heads: 2, head_dim: 32, window: 3, rope_base: 1e6, ..s },
        Arch::Gpt2 => ArchShape { c: 96, n_heads: 3, n_kv_heads: 3, head_dim: 32, ffn: 192, eps: 1e-5, ..s },
        // GQA 4/2, tied output.
        Arch::Phi3 => ArchShape { n_heads: 4, n_kv_heads: 2, head_dim: 16, tied: true, ..s },
    }
}

const SMALL_TYPES: [BlockType; 5] = [BlockType::F32, BlockType::F16, BlockType::BF16, BlockType::Q8_0, BlockType::Q5_1];

fn seed_of(s: &ArchShape, t: BlockType) -> u64 {
    (s.arch as u64) << 40 ^ (s.c as u64) << 20 ^ (s.n_layers as u64) << 8 ^ t.ggml_id() as u64
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// max |got - want| / max |want|.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let d = got.iter().zip(want).fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
    d / max_abs(want)
}

/// The engine against the reference on one random file, with every kernel set; decoding
/// equals prefill bit for bit. Returns the largest relative error.
fn check(s: &ArchShape, t: BlockType) -> f64 {
    let what = format!(
        "{} {} C={} L={} NH={}/{} hd={} tied={}",
        s.arch.name(),
        t.name(),
        s.c,
        s.n_layers,
        s.n_heads,
        s.n_kv_heads,
        s.head_dim,
        s.tied
    );
    let seed = seed_of(s, t);
    let bytes = random_gguf(s, t, seed);
    let loaded = load(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    let model = loaded.model;
    let sp = model.spec();
    assert_eq!((sp.head_dim, sp.n_kv_heads, sp.tied_output, sp.vocab_size), (s.head_dim, s.n_kv_heads, s.tied, s.vocab), "{what}: spec");
    let tokens = random_tokens(N, s.vocab, seed ^ 0x70c5);
    let weights = read_weights(&bytes);
    let want = forward(s, &weights, &tokens, Knobs::default());
    let want_q8 = forward(s, &weights, &tokens, Knobs { q8_activations: true, ..Knobs::default() });
    assert!(want.iter().all(|v| v.is_finite()));
    // The logits must have a sensible scale for the relative tolerance to mean something.
    let scale = max_abs(&want);
    assert!((0.3..100.0).contains(&scale), "{what}: logit scale {scale}");
    let v = s.vocab;
    let mut worst = 0.0f64;
    for k in Kernels::available() {
        let mut st = model.new_state(k);
        let got = model.forward_all(&mut st, &tokens, 0).unwrap();
        let (err, tol) = match k.family() {
            llm_engine::Family::FmaQ8 | llm_engine::Family::NoFmaQ8 => (rel_err(&got, &want_q8), TOL_Q8),
            _ => (rel_err(&got, &want), TOL),
        };
        assert!(err <= tol, "{what} [{}]: relative error {err:.3e} > {tol:e}", k.name());
        worst = worst.max(err);
        let mut st = model.new_state(k);
        for (p, &tok) in tokens.iter().enumerate() {
            let step = model.forward(&mut st, &[tok], p).unwrap();
            let pre = &got[p * v..(p + 1) * v];
            assert!(
                step.iter().zip(pre).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{what} [{}]: decoding position {p} differs from the prefill",
                k.name()
            );
        }
    }
    worst
}

fn check_arch(arch: Arch) {
    let mut report = Vec::new();
    for t in BlockType::ALL {
        report.push((t, check(&main_shape(arch), t)));
    }
    for t in SMALL_TYPES {
        report.push((t, check(&small_shape(arch), t)));
    }
    let worst = report.iter().fold(0.0f64, |m, r| m.max(r.1));
    eprintln!("{}: {} files x {} kernel sets, worst relative error {worst:.2e}", arch.name(), report.len(), Kernels::available().len());
}

#[test]
fn llama_matches_the_reference() {
    check_arch(Arch::Llama);
}

#[test]
fn qwen2_matches_the_reference() {
    check_arch(Arch::Qwen2);
}

#[test]
fn qwen3_matches_the_reference() {
    check_arch(Arch::Qwen3);
}

#[test]
fn gemma3_matches_the_reference() {
    check_arch(Arch::Gemma3);
}

#[test]
fn gpt2_matches_the_reference() {
    check_arch(Arch::Gpt2);
}

/// The architecture added as one file (engine/src/arch/phi3.rs) plus a registry line.
#[test]
fn phi3_matches_the_reference() {
    check_arch(Arch::Phi3);
}

// ---------------------------------------------------------------------------------------
// The checks would catch wrong semantics
// ---------------------------------------------------------------------------------------

/// The engine's logits (portable kernels) and the reference's weights for one F32 file.
fn engine_and_weights(s: &ArchShape) -> (Vec<f32>, RefWeights, Vec<u32>) {
    let bytes = random_gguf(s, BlockType::F32, seed_of(s, BlockType::F32) ^ 0xbad);
    let model = load(&bytes).unwrap().model;
    let tokens = random_tokens(N, s.vocab, 77);
    let mut st = model.new_state(Kernels::portable());
    let got = model.forward_all(&mut st, &tokens, 0).unwrap();
    (got, read_weights(&bytes), tokens)
}

#[test]
fn a_wrong_reference_is_caught() {
    for arch in Arch::ALL {
        for s in [main_shape(arch), small_shape(arch)] {
            let (got, w, tokens) = engine_and_weights(&s);
            let right = rel_err(&got, &forward(&s, &w, &tokens, Knobs::default()));
            assert!(right <= TOL, "{}: {right:e}", arch.name());
            let mut wrong: Vec<(&str, Knobs)> = Vec::new();
            match arch.rope_mode() {
                Some(RopeMode::Normal) => wrong.push(("NEOX RoPE", Knobs { rope: Some(RopeMode::Neox), ..Knobs::default() })),
                Some(RopeMode::Neox) => wrong.push(("NORMAL RoPE", Knobs { rope: Some(RopeMode::Normal), ..Knobs::default() })),
                None => {}
            }
            if arch == Arch::Gemma3 {
                wrong.push(("no sliding window", Knobs { ignore_window: true, ..Knobs::default() }));
                wrong.push(("rope.freq_base on sliding layers", Knobs { global_base_everywhere: true, ..Knobs::default() }));
                wrong.push(("scale 1/sqrt(C/NH)", Knobs { scale_from_c: true, ..Knobs::default() }));
            }
            if s.head_dim * s.n_heads != s.c && arch != Arch::Gemma3 {
                wrong.push(("scale 1/sqrt(C/NH)", Knobs { scale_from_c: true, ..Knobs::default() }));
            }
            if matches!(arch, Arch::Qwen3 | Arch::Gemma3) {
                wrong.push(("no q/k norm", Knobs { no_qk_norm: true, ..Knobs::default() }));
            }
            if arch == Arch::Phi3 {
                wrong.push(("gate and up halves swapped", Knobs { swap_gate_up: true, ..Knobs::default() }));
            }
            for (name, knobs) in wrong {
                let err = rel_err(&got, &forward(&s, &w, &tokens, knobs));
                eprintln!("{} C={} {name}: {err:.2e}", arch.name(), s.c);
                assert!(err > 10.0 * TOL, "{} C={}: the reference with {name} is only {err:.2e} away", arch.name(), s.c);
            }
            // One weight of the first layer's down projection moved by 0.05 (its rows have
            // typical magnitude 1/sqrt(F) ~ 0.04..0.1).
            let mut w2 = w.clone();
            w2.get_mut("blk.0.ffn_down.weight").data[3] += 0.05;
            let err = rel_err(&got, &forward(&s, &w2, &tokens, Knobs::default()));
            eprintln!("{} C={} perturbed: {err:.2e}", arch.name(), s.c);
            assert!(err > 10.0 * TOL, "{} C={}: one perturbed weight is only {err:.2e} away", arch.name(), s.c);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

fn load_err(bytes: &[u8]) -> LoadError {
    match load(bytes) {
        Ok(_) => panic!("loaded a broken file"),
        Err(e) => e,
    }
}

fn tensors_with(s: &ArchShape, edit: impl FnOnce(&mut Vec<RawTensor>)) -> Vec<u8> {
    let mut t = random_tensors(s, BlockType::F32, 5);
    edit(&mut t);
    write_file(s, s.arch.name(), &t)
}

#[test]
fn an_unsupported_architecture_is_named() {
    let s = small_shape(Arch::Llama);
    let e = load_err(&write_file(&s, "mamba", &random_tensors(&s, BlockType::F32, 1)));
    assert_eq!(e, LoadError::Gguf(GgufModelError::UnsupportedArch("mamba".into())));
    assert!(e.to_string().contains("'mamba'"), "{e}");
}

#[test]
fn a_missing_tensor_is_named() {
    for arch in Arch::ALL {
        let s = small_shape(arch);
        let name = if arch == Arch::Gpt2 { "blk.1.attn_qkv.weight" } else { "blk.1.ffn_up.weight" };
        let e = load_err(&tensors_with(&s, |t| t.retain(|x| x.name != name)));
        assert_eq!(e, LoadError::Gguf(GgufModelError::MissingTensor(name.into())), "{}", arch.name());
        assert!(e.to_string().contains(name), "{e}");
    }
    // A model-specific tensor: qwen3's q norm, gemma3's post-FFN norm, gpt2's LayerNorm bias.
    for (arch, name) in
        [(Arch::Qwen3, "blk.0.attn_q_norm.weight"), (Arch::Gemma3, "blk.0.post_ffw_norm.weight"), (Arch::Gpt2, "output_norm.bias")]
    {
        let s = small_shape(arch);
        let e = load_err(&tensors_with(&s, |t| t.retain(|x| x.name != name)));
        assert_eq!(e, LoadError::Gguf(GgufModelError::MissingTensor(name.into())), "{}", arch.name());
    }
}

#[test]
fn a_tensor_of_the_wrong_shape_is_named() {
    let s = small_shape(Arch::Qwen2);
    // attn_k with one head too many: rows kv_dim + head_dim.
    let name = "blk.0.attn_k.weight";
    let e = load_err(&tensors_with(&s, |t| {
        let x = t.iter_mut().find(|x| x.name == name).unwrap();
        let rows = s.kv_dim() + s.head_dim;
        x.dims = vec![s.c as u64, rows as u64];
        x.data = vec![0u8; rows * s.c * 4];
    }));
    match &e {
        LoadError::Gguf(GgufModelError::BadTensor { name: n, problem }) => assert!(n == name && problem.contains("shape"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains(name), "{e}");
    // Transposed (C rows of kv_dim instead of kv_dim rows of C).
    let e = load_err(&tensors_with(&s, |t| {
        let x = t.iter_mut().find(|x| x.name == name).unwrap();
        x.dims = vec![s.kv_dim() as u64, s.c as u64];
    }));
    assert!(matches!(&e, LoadError::Gguf(GgufModelError::BadTensor { name: n, .. }) if n == name), "{e:?}");
    // A bias of the wrong length, and a norm gain of the wrong length.
    for (name, n) in [("blk.1.attn_q.bias", s.q_dim() + 1), ("blk.0.attn_norm.weight", s.c - 1)] {
        let e = load_err(&tensors_with(&s, |t| {
            let x = t.iter_mut().find(|x| x.name == name).unwrap();
            x.dims = vec![n as u64];
            x.data = vec![0u8; n * 4];
        }));
        assert!(matches!(&e, LoadError::Gguf(GgufModelError::BadTensor { name: m, .. }) if m == name), "{e:?}");
    }
    // gpt2's fused qkv with 2C rows.
    let s = small_shape(Arch::Gpt2);
    let name = "blk.0.attn_qkv.weight";
    let e = load_err(&tensors_with(&s, |t| {
        let x = t.iter_mut().find(|x| x.name == name).unwrap();
        x.dims = vec![s.c as u64, 2 * s.c as u64];
        x.data = vec![0u8; 2 * s.c * s.c * 4];
    }));
    assert!(matches!(&e, LoadError::Gguf(GgufModelError::BadTensor { name: n, .. }) if n == name), "{e:?}");
}

#[test]
fn a_matrix_of_an_unsupported_type_is_refused() {
    let s = main_shape(Arch::Llama);
    let name = "blk.0.attn_q.weight";
    // F64 (28) and IQ2_XXS (16): ggml types the container knows but the engine cannot compute.
    for (id, type_name, block, bytes) in [(28u32, "F64", 1usize, 8usize), (16, "IQ2_XXS", 256, 66)] {
        let bytes = {
            let mut t = random_tensors(&s, BlockType::Q8_0, 3);
            let x = t.iter_mut().find(|x| x.name == name).unwrap();
            x.ty = GgmlType::from_id(id);
            x.data = vec![0u8; s.q_dim() * s.c / block * bytes];
            write_file(&s, "llama", &t)
        };
        let e = load_err(&bytes);
        match &e {
            LoadError::Gguf(GgufModelError::BadTensor { name: n, problem }) => {
                assert_eq!(n, name);
                assert!(problem.contains(type_name) && problem.contains("not supported"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.contains(name) && msg.contains(type_name), "{msg}");
    }
}

/// `Weights::bytes_per_token` (the decode traffic behind the bandwidth limit of
/// scripts/bench-llamacpp.sh), against the file's own tensors: all of them, except that only
/// one row of a separate token embedding (and of gpt2's position embedding) is read.
#[test]
fn bytes_per_token_counts_every_tensor_once_and_one_embedding_row() {
    for arch in Arch::ALL {
        for tied in [false, true] {
            let s = ArchShape { tied, ..small_shape(arch) };
            let tensors = random_tensors(&s, BlockType::Q8_0, 3);
            let file = write_file(&s, arch.name(), &tensors);
            let loaded = load(&file).unwrap();
            let w = loaded.model.weights();
            let row = |t: &RawTensor| t.data.len() / t.dims[1] as usize;
            let separate_output = tensors.iter().any(|o| o.name == "output.weight");
            let mut want = 0;
            for t in &tensors {
                want += match t.name.as_str() {
                    "token_embd.weight" if separate_output => row(t),
                    "position_embd.weight" => row(t),
                    _ => t.data.len(),
                };
            }
            assert_eq!(w.bytes_per_token(), want, "{} tied {tied}", arch.name());
            assert!(w.bytes_per_token() < w.bytes() || tied, "{}", arch.name());
        }
    }
}
