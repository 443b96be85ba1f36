//! Writes a small random GGUF model of one architecture, for comparing engines on the same
//! file (e.g. llama.cpp's `llama-completion` against `llm-baremetal generate`; see
//! docs/BENCHMARKS.md and the phi3 check in docs/ARCHITECTURE.md).
//!
//!     cargo run --release -p llm-testkit --example random-gguf -- phi3 F32 out.gguf [SEED]
//!
//! The vocabulary is a 64-token byte-level BPE one that llama.cpp accepts (it needs the
//! newline's byte token): `a`-`z`, `A`-`Z`, `Ġ` (space), `Ċ` (newline), `0`-`8`,
//! `<|endoftext|>`; no merges. Metadata keys from the testkit's writer (`gguf_ref::write_hparams`).

use llm_engine::formats::gguf::GgufWriter;
use llm_engine::quant::BlockType;
use llm_testkit::gguf_ref::{Arch, ArchShape, random_tensors, write_hparams, write_tensors};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, ty, out, rest @ ..] = args.as_slice() else {
        eprintln!("usage: random-gguf ARCH TYPE OUT [SEED]   (ARCH: llama, qwen2, qwen3, gemma3, gpt2, phi3)");
        std::process::exit(2);
    };
    let Some(arch) = Arch::ALL.into_iter().find(|f| f.name() == name) else {
        eprintln!("random-gguf: unknown architecture '{name}'");
        std::process::exit(2);
    };
    let Some(t) = BlockType::ALL.into_iter().find(|t| t.name() == ty) else {
        eprintln!("random-gguf: unknown tensor type '{ty}'");
        std::process::exit(2);
    };
    let seed = rest.first().map_or(Ok(1), |s| s.parse::<u64>()).unwrap_or_else(|e| {
        eprintln!("random-gguf: bad seed: {e}");
        std::process::exit(2);
    });
    let s = ArchShape {
        arch,
        vocab: 64,
        c: 256,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: if arch == Arch::Phi3 { 4 } else { 2 },
        head_dim: 64,
        ffn: 256,
        context: 64,
        eps: 1e-5,
        rope_base: 10_000.0,
        window: 4,
        tied: false,
    };
    let tensors = random_tensors(&s, t, seed);
    let mut tokens: Vec<String> = (b'a'..=b'z').chain(b'A'..=b'Z').map(|c| (c as char).to_string()).collect();
    tokens.extend(["\u{120}".to_string(), "\u{10a}".to_string()]);
    tokens.extend((b'0'..=b'8').map(|c| (c as char).to_string()));
    tokens.push("<|endoftext|>".into());
    assert_eq!(tokens.len(), s.vocab);
    let types: Vec<i32> = (0..s.vocab).map(|i| if i + 1 == s.vocab { 3 } else { 1 }).collect();
    let mut w = GgufWriter::new();
    // No `general.name`: llama.cpp's vocabulary loader fails on this file when it has one
    // ("random phi3": unordered_map::at).
    w.add_string("general.architecture", name).unwrap();
    write_hparams(&mut w, &s, name);
    let u = |v: usize| v as u32;
    w.add_string("tokenizer.ggml.model", "gpt2").unwrap();
    w.add_string("tokenizer.ggml.pre", "default").unwrap();
    w.add_string_array("tokenizer.ggml.tokens", &tokens).unwrap();
    w.add_i32_array("tokenizer.ggml.token_type", &types).unwrap();
    w.add_string_array::<&str>("tokenizer.ggml.merges", &[]).unwrap();
    w.add_u32("tokenizer.ggml.eos_token_id", u(s.vocab - 1)).unwrap();
    w.add_u32("tokenizer.ggml.bos_token_id", u(s.vocab - 1)).unwrap();
    w.add_bool("tokenizer.ggml.add_bos_token", false).unwrap();
    write_tensors(&mut w, &tensors);
    let bytes = w.finish();
    let tmp = format!("{out}.tmp");
    std::fs::write(&tmp, &bytes).and_then(|_| std::fs::rename(&tmp, out)).unwrap_or_else(|e| {
        eprintln!("random-gguf: writing {out}: {e}");
        std::process::exit(1);
    });
}
