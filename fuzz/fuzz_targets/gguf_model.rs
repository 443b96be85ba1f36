//! Whole GGUF models on arbitrary bytes: the file parser, the model mapping and the embedded
//! tokenizer (SentencePiece or byte-level BPE) must never panic. What loads is exercised: the
//! tokenizer encodes and decodes text, and the model runs a token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_engine::tokenizer::Specials;
use llm_engine::tokenizer::gguf::GgufTokenizer;
use llm_engine::{Kernels, SamplerConfig, Serial, Session, Tokenizer};
use llm_engine::{arch, formats::gguf::Gguf};

fuzz_target!(|data: &[u8]| {
    let Ok(g) = Gguf::parse(data) else { return };
    let _ = g.get_str("tokenizer.chat_template");
    if let Ok(t) = GgufTokenizer::from_gguf(&g) {
        let t = Tokenizer::Gguf(Box::new(t));
        let mut ids = Vec::new();
        // Some text from the input itself, so the fuzzer can steer it.
        let text = &data[data.len().saturating_sub(64)..];
        t.encode_prompt(text, true, &mut ids);
        // Text is text: no end-of-generation token (always a control token) comes from it,
        // wherever its bytes spell one (BOS, first when added, may be one).
        let from_text = &ids[t.prompt_bos().map_or(0, |_| 1)..];
        assert!(!from_text.iter().any(|&id| t.is_end(id)), "text encoded to an end token: {from_text:?}");
        // And with control tokens parsed (`generate --parse-special`).
        t.encode_prompt_with(text, false, Specials::Parse, &mut ids);
        let mut prev = None;
        for &id in &ids {
            assert!((id as usize) < t.vocab_size(), "encoded {id} of {} tokens", t.vocab_size());
            let _ = t.decode_after(prev, id);
            prev = Some(id);
        }
        for id in 0..t.vocab_size().min(512) as u32 {
            let _ = t.decode_after(None, id);
            let _ = t.is_end(id);
        }
    }
    let Ok(model) = arch::load(&g) else { return };
    // A short context, as the CLI caps it: the header's context length is not bounded by the
    // file's size (GGUF metadata), and the KV cache would be sized by it.
    let ctx = model.spec().context.min(16);
    let Ok(mut s) = Session::with_context(&model, Kernels::detect(), ctx, SamplerConfig::default(), 1) else { return };
    if s.feed(&[0], &Serial).is_ok() {
        let _ = s.next_token(&Serial);
    }
    // The full loader (model + tokenizer + the checks between them).
    let _ = llm_engine::load(data);
});
