//! llama2.c tokenizer.bin files on arbitrary bytes (the first two bytes give the model's
//! vocabulary size): the parser must never panic; what it accepts encodes and decodes text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_engine::Tokenizer;
use llm_engine::tokenizer::spm::SpmTokenizer;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<2>() else { return };
    let vocab = u16::from_le_bytes(*head) as usize;
    let Ok(t) = SpmTokenizer::from_llama2c_bytes(rest, vocab) else { return };
    let t = Tokenizer::Spm(Box::new(t));
    assert_eq!(t.vocab_size(), vocab);
    let mut ids = Vec::new();
    let text = &rest[rest.len().saturating_sub(48)..];
    t.encode_prompt(text, true, &mut ids);
    let mut prev = None;
    for &id in &ids {
        assert!((id as usize) < vocab, "encoded {id} of {vocab} tokens");
        let _ = t.decode_after(prev, id);
        prev = Some(id);
    }
    let _ = t.token_id(b"<s>");
});
