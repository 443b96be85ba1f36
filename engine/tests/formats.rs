//! Loading a model file (`formats`, `llm_engine::load`): what a file must satisfy beyond its
//! layout, in all three formats: finite weights, a tokenizer that fits the model's vocabulary,
//! special token ids in range. Each finding's test names it; the assertions go through
//! `to_string()` and `is_err()`, so the same tests against the code before the fixes fail.
mod common;

use common::{config, random_params};
use llm_engine::checkpoint::{self, LlmcConfig, TENSOR_NAMES};
use llm_engine::formats::Format;
use llm_engine::quant::BlockType;
use llm_engine::{Tokenizer, load};
use llm_testkit::gguf_ref::{Arch, ArchShape, random_tensors, write_file};
use llm_testkit::llama::{Llama2cWeights, LlamaShape};

fn small() -> LlmcConfig {
    // V = 250 < Vp = 256: the padding rows of wte are never read.
    config(2, 2, 16, 8, 250, 256)
}

fn offset(cfg: &LlmcConfig, name: &str) -> usize {
    cfg.tensor_offsets()[TENSOR_NAMES.iter().position(|n| *n == name).unwrap()]
}

fn load_err(bytes: &[u8]) -> String {
    match load(bytes) {
        Ok(_) => panic!("a model with non-finite weights was accepted"),
        Err(e) => e.to_string(),
    }
}

/// Finding (issue 13): an llm.c checkpoint with NaN in wte loaded and generated garbage.

#[test]
fn nan_in_wte_of_an_llmc_checkpoint_is_refused_naming_the_tensor() {
    let cfg = small();
    let mut p = random_params(&cfg, 1, 0.1);
    // Two NaNs in wte, as in the finding.
    let wte = offset(&cfg, "wte");
    p[wte + 5] = f32::NAN;
    p[wte + 40] = f32::NAN;
    let e = load_err(&checkpoint::encode_v3(&cfg, &p));
    assert!(e.contains("non-finite") && e.contains("wte") && e.contains("element 5"), "{e}");
    // bf16 (version 5) and an infinity in a later tensor.
    let mut p = random_params(&cfg, 2, 0.1);
    p[offset(&cfg, "fcprojw") + 3] = f32::INFINITY;
    let e = load_err(&checkpoint::encode_v5(&cfg, &p));
    assert!(e.contains("non-finite") && e.contains("fcprojw") && e.contains("element 3"), "{e}");
    let mut p = random_params(&cfg, 3, 0.1);
    p[offset(&cfg, "lnfb") + 15] = f32::NEG_INFINITY;
    let e = load_err(&checkpoint::encode_v3(&cfg, &p));
    assert!(e.contains("lnfb"), "{e}");
}

#[test]
fn padding_rows_of_wte_are_not_checked() {
    // Rows V..Vp are never read: junk there is harmless (llm.c writes zeros).
    let cfg = small();
    let mut p = random_params(&cfg, 4, 0.1);
    p[offset(&cfg, "wte") + cfg.vocab_size * cfg.d_model] = f32::NAN;
    assert!(load(&checkpoint::encode_v3(&cfg, &p)).is_ok());
}

/// Finding (issue 13): llama2.c checkpoints with NaN/Inf weights loaded.

#[test]
fn nan_in_a_llama2c_checkpoint_is_refused_naming_the_tensor() {
    let shape = LlamaShape {
        dim: 16,
        hidden_dim: 32,
        n_layers: 2,
        n_heads: 2,
        n_kv_heads: 1,
        vocab_size: 40,
        seq_len: 8,
        shared_classifier: false,
    };
    let mut w = Llama2cWeights::random(&shape, 5, 0.1);
    assert!(load(&w.to_bytes()).is_ok());
    w.wq[17] = f32::NAN;
    let e = load_err(&w.to_bytes());
    assert!(e.contains("non-finite") && e.contains("wq") && e.contains("element 17"), "{e}");
    let mut w = Llama2cWeights::random(&shape, 5, 0.1);
    w.wcls.as_mut().unwrap()[0] = f32::INFINITY;
    assert!(load_err(&w.to_bytes()).contains("wcls"));
}

fn gguf_shape() -> ArchShape {
    ArchShape {
        arch: Arch::Llama,
        vocab: 64,
        c: 256,
        n_layers: 1,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 64,
        ffn: 256,
        context: 32,
        eps: 1e-5,
        rope_base: 10_000.0,
        window: 0,
        tied: true,
    }
}

/// Finding (issue 13): GGUF files with NaN/Inf block scales or weights loaded.

#[test]
fn non_finite_gguf_weights_are_refused_naming_the_tensor() {
    let s = gguf_shape();
    let f16_nan = 0x7e00u16.to_le_bytes();
    let f16_inf = 0x7c00u16.to_le_bytes();
    // For each quantized type: the byte offset of a scale (d, or dmin / m).
    for (bt, at) in [(BlockType::Q4_K, 2), (BlockType::Q6_K, 208), (BlockType::Q8_0, 0), (BlockType::Q4_1, 2), (BlockType::Q5_0, 0)] {
        let mut t = random_tensors(&s, bt, 7);
        assert!(load(&write_file(&s, "llama", &t)).is_ok(), "{}", bt.name());
        let q = t.iter_mut().find(|t| t.name == "blk.0.attn_q.weight").unwrap();
        let block = 3;
        let o = block * bt.info().block_bytes + at;
        q.data[o..o + 2].copy_from_slice(&f16_nan);
        let e = load_err(&write_file(&s, "llama", &t));
        assert!(e.contains("non-finite") && e.contains("blk.0.attn_q.weight") && e.contains("block 3"), "{}: {e}", bt.name());
    }
    for bt in [BlockType::F16, BlockType::BF16, BlockType::F32] {
        let mut t = random_tensors(&s, bt, 8);
        let down = t.iter_mut().find(|t| t.name == "blk.0.ffn_down.weight").unwrap();
        let size = if bt == BlockType::F32 { 4 } else { 2 };
        let inf: &[u8] = match bt {
            BlockType::F16 => &f16_inf,
            BlockType::BF16 => &[0x80, 0x7f],
            _ => &[0, 0, 0xc0, 0x7f],
        };
        down.data[9 * size..10 * size].copy_from_slice(inf);
        let e = load_err(&write_file(&s, "llama", &t));
        assert!(e.contains("blk.0.ffn_down.weight") && e.contains("element 9"), "{}: {e}", bt.name());
    }
    // An f32 norm gain.
    let mut t = random_tensors(&s, BlockType::Q8_0, 9);
    let norm = t.iter_mut().find(|t| t.name == "output_norm.weight").unwrap();
    norm.data[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(load_err(&write_file(&s, "llama", &t)).contains("output_norm.weight"));
}

/// An llm.c tokenizer file (version 2) of `n` one-byte tokens with end-of-text `eot`.
fn llmc_tokenizer(n: u32, eot: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, v) in [20240328u32, 2, n, eot].iter().enumerate() {
        let _ = i;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.resize(1024, 0);
    for t in 0..n {
        out.push(1);
        out.push(t as u8);
    }
    out
}

fn llmc_format(vocab: usize) -> Format {
    Format::Llmc { version: 3, config: config(1, 2, 16, 8, vocab, vocab.next_multiple_of(64)) }
}

/// Finding (issue 13): an llm.c tokenizer file whose end-of-text id is past its vocabulary was accepted.

#[test]
fn an_llmc_tokenizer_with_an_out_of_range_eot_is_refused() {
    let e = Tokenizer::from_llmc_bytes(&llmc_tokenizer(256, 300)).err().expect("eot 300 of 256 tokens was accepted");
    assert!(e.to_string().contains("300") && e.to_string().contains("256"), "{e}");
    assert!(Tokenizer::from_llmc_bytes(&llmc_tokenizer(256, u32::MAX)).is_err());
    // In range: kept.
    assert_eq!(Tokenizer::from_llmc_bytes(&llmc_tokenizer(256, 255)).unwrap().eot(), Some(255));
    // eot = vocab_size is "no end token": what `byte_table_file` writes for byte models.
    assert_eq!(Tokenizer::from_llmc_bytes(&Tokenizer::byte_table_file()).unwrap().eot(), None);
}

/// Finding (issue 13): a tokenizer file of another vocabulary size than the model was accepted.

#[test]
fn a_tokenizer_with_more_tokens_than_the_model_is_refused() {
    let file = llmc_tokenizer(256, 255);
    assert!(Tokenizer::for_format(&llmc_format(256), &file).is_ok());
    // 256 tokens for a model with V = 200: tokens 200.. could be encoded but never computed.
    let e = Tokenizer::for_format(&llmc_format(200), &file).err().expect("256 tokens for V = 200 accepted");
    assert!(e.to_string().contains("256") && e.to_string().contains("200"), "{e}");
    // Fewer tokens than the model: the model can emit tokens nobody can print.
    assert!(Tokenizer::for_format(&llmc_format(300), &file).is_err());
}

/// Finding (issue 13): a GGUF tokenizer larger than the model's vocabulary was accepted.

#[test]
fn a_gguf_tokenizer_with_more_tokens_than_the_model_is_refused() {
    let s = gguf_shape();
    let t = random_tensors(&s, BlockType::Q8_0, 11);
    assert!(load(&write_file(&s, "llama", &t)).is_ok());
    // The tensors of a 64-token model, the tokenizer of 80 tokens.
    let bigger = ArchShape { vocab: 80, ..s };
    let e = match load(&write_file(&bigger, "llama", &t)) {
        Ok(_) => panic!("80 tokens for a vocabulary of 64 accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("80") && e.contains("64"), "{e}");
}

/// Replaces the u32 value of metadata key `key` in a GGUF file written by `write_file`.
fn patch_u32(file: &mut [u8], key: &str, value: u32) {
    let at = file.windows(key.len()).position(|w| w == key.as_bytes()).expect("key") + key.len();
    assert_eq!(u32::from_le_bytes(file[at..at + 4].try_into().unwrap()), 4, "a u32 value");
    file[at + 4..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Finding (issue 13): GGUF BOS/EOS ids past the vocabulary were accepted.

#[test]
fn out_of_range_gguf_special_token_ids_are_refused() {
    let s = gguf_shape();
    let t = random_tensors(&s, BlockType::Q8_0, 12);
    for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id"] {
        let mut file = write_file(&s, "llama", &t);
        patch_u32(&mut file, key, 2);
        assert!(load(&file).is_ok(), "{key} = 2");
        patch_u32(&mut file, key, 64);
        let e = match load(&file) {
            Ok(_) => panic!("{key} = 64 of 64 tokens accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(key) && e.contains("64"), "{e}");
    }
}
