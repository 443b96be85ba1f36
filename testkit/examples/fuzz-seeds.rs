//! Writes small valid inputs for every fuzz target into DIR/<target>/ (`make fuzz` runs this
//! first; nothing large is committed). Seeds start libFuzzer from inputs that pass the magic
//! numbers and exact-size checks, so it explores the parsers beyond their first bytes.
//!
//!     cargo run --release -p llm-testkit --example fuzz-seeds -- fuzz/corpus

use llm_engine::Tokenizer;
use llm_engine::checkpoint;
use llm_engine::quant::BlockType;
use llm_engine::tokenizer::spm::SpmTokenizer;
use llm_testkit::gguf_ref::{Arch, ArchShape, random_tensors, write_file};
use llm_testkit::llama::{LlamaShape, random_llama2c};
use llm_testkit::{config, random_params};
use std::path::{Path, PathBuf};

fn put(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: fuzz-seeds DIR"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();

    // llm.c checkpoints, fp32 and bf16, padded and unpadded vocabularies.
    for (i, c) in [config(1, 1, 4, 2, 4, 8), config(2, 2, 8, 4, 16, 16)].iter().enumerate() {
        let p = random_params(c, i as u64, 0.1);
        put(&dir, "llmc", &format!("v3-{i}.bin"), &checkpoint::encode_v3(c, &p));
        put(&dir, "llmc", &format!("v5-{i}.bin"), &checkpoint::encode_v5(c, &p));
        assert!(llm_engine::load(&checkpoint::encode_v3(c, &p)).is_ok());
    }

    // llama2.c checkpoints, shared and separate classifier.
    for shared in [true, false] {
        let s = LlamaShape {
            dim: 8,
            hidden_dim: 16,
            n_layers: 1,
            n_heads: 2,
            n_kv_heads: 1,
            vocab_size: 8,
            seq_len: 4,
            shared_classifier: shared,
        };
        let b = random_llama2c(&s, 3, 0.1);
        assert!(llm_engine::load(&b).is_ok());
        put(&dir, "llama2c", &format!("shared-{shared}.bin"), &b);
    }

    // GGUF: the committed test fixtures and tiny models of every family (tokenizers included).
    for f in ["all-types.gguf", "llama-like.gguf"] {
        let b = std::fs::read(root.join("engine/tests/fixtures/gguf").join(f)).unwrap();
        put(&dir, "gguf", f, &b);
        put(&dir, "gguf_model", f, &b);
    }
    for (arch, name) in [(Arch::Llama, "llama"), (Arch::Qwen2, "qwen2"), (Arch::Gpt2, "gpt2"), (Arch::Gemma3, "gemma3")] {
        let s = ArchShape {
            arch,
            vocab: 32,
            c: 32,
            n_layers: 1,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 16,
            ffn: 32,
            context: 8,
            eps: 1e-5,
            rope_base: 10_000.0,
            window: 4,
            tied: arch != Arch::Llama,
        };
        for bt in [BlockType::F32, BlockType::Q8_0] {
            let b = write_file(&s, arch.name(), &random_tensors(&s, bt, 5));
            match llm_engine::load(&b) {
                Ok(_) => {}
                Err(e) => panic!("{name} {}: {e}", bt.name()),
            }
            put(&dir, "gguf", &format!("{name}-{}.gguf", bt.name()), &b);
            put(&dir, "gguf_model", &format!("{name}-{}.gguf", bt.name()), &b);
        }
    }

    // llm.c tokenizer files: the byte table (version 2) and a small version-1 file.
    put(&dir, "tokenizer_llmc", "bytes-v2.bin", &Tokenizer::byte_table_file());
    let mut v1 = Vec::new();
    for v in [20240328u32, 1, 5] {
        v1.extend_from_slice(&v.to_le_bytes());
    }
    v1.resize(1024, 0);
    for piece in [&b"a"[..], b"b", b"ab", b" the", b"\xe2\x96\x81"] {
        v1.push(piece.len() as u8);
        v1.extend_from_slice(piece);
    }
    assert!(Tokenizer::from_llmc_bytes(&v1).is_ok());
    put(&dir, "tokenizer_llmc", "small-v1.bin", &v1);

    // llama2.c tokenizer.bin: two bytes of vocabulary size, then the file.
    let spm = std::fs::read(root.join("engine/tests/fixtures/spm/tokenizer.bin")).unwrap();
    let n = (1..=u16::MAX as usize).find(|&n| SpmTokenizer::from_llama2c_bytes(&spm, n).is_ok()).expect("the fixture's vocabulary");
    put(&dir, "tokenizer_spm", "fixture.bin", &[&(n as u16).to_le_bytes()[..], &spm].concat());
    let mut small = 4u32.to_le_bytes().to_vec();
    for (score, piece) in
        [(0.0f32, &b"<unk>"[..4]), (0.0, b"<s>"), (0.0, b"</s>"), (-1.0, b"\xe2\x96\x81a"), (-2.0, b"b"), (-3.0, b"<0x41>")]
    {
        small.extend_from_slice(&score.to_le_bytes());
        small.extend_from_slice(&(piece.len() as u32).to_le_bytes());
        small.extend_from_slice(piece);
    }
    let _ = SpmTokenizer::from_llama2c_bytes(&small, 6);
    put(&dir, "tokenizer_spm", "small.bin", &[&6u16.to_le_bytes()[..], &small].concat());

    // Token files (prepared training data): header {20240520, 1, n}, then n u16 tokens.
    for (i, n) in [0usize, 1, 37].iter().enumerate() {
        let mut t = Vec::new();
        for v in [20240520i32, 1, *n as i32] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        t.resize(1024, 0);
        for k in 0..*n {
            t.extend_from_slice(&((k * 7 % 256) as u16).to_le_bytes());
        }
        put(&dir, "tokens", &format!("tokens-{i}.bin"), &t);
    }

    // llm.cfg: every key, comments, a BOM.
    let cfg = "# boot settings\nmodel = \\model.bin\ntemperature = 0.8\ntop_k = 40\ntop_p = 0.95\nmin_p = 0.05\n\
               repeat_penalty = 1.1\nseed = 42\nmax_tokens = 64\ncores = 2\ntemplate = auto\nsystem = You are # helpful\n\
               context = 512\nstop_at_blank_line = false\nprompt = ROMEO: # verbatim\nprompt = /reset\n";
    put(&dir, "config", "all-keys.cfg", cfg.as_bytes());
    put(&dir, "config", "bom.cfg", "\u{feff}seed = 1\ntemplate = chatml\n".to_string().as_bytes());
    assert!(llm_engine::config::BootConfig::parse(cfg).is_ok());

    // Chat lines: every command, then a prompt.
    let chat = "/temp 0.7\n/topk 40\n/topp 0.9\n/minp 0.05\n/seed 3\n/max 20\n/cores 2\n/reset\n/stats\n/help\n/quit\nhello there\n";
    put(&dir, "chat_line", "commands.txt", chat.as_bytes());
    put(&dir, "chat_line", "bad.txt", b"/temp\n/max 0\n/topp 2 3\n/nope\n");
    println!("fuzz seeds written to {}", dir.display());
}
