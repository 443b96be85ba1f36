//! llm.c tokenizer files on arbitrary bytes: the parser must never panic; what it accepts
//! decodes every token and finds token ids by bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_engine::Tokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = Tokenizer::from_llmc_bytes(data) else { return };
    let v = t.vocab_size();
    assert!(v > 0);
    if let Some(e) = t.eot() {
        assert!((e as usize) < v, "eot {e} of {v} tokens");
    }
    for id in 0..v.min(4096) as u32 {
        let piece = t.decode(id).to_vec();
        assert!(!piece.is_empty());
        let _ = t.is_end(id);
    }
    let _ = t.token_id(&data[data.len().saturating_sub(4)..]);
    let _ = t.for_vocab(v).map(|t| t.vocab_size());
});
