//! llm.c token files (prepared training data) on arbitrary bytes: the reader must never
//! panic, and what it accepts has exactly the header's token count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_trainer::data::{decode_token_file, encode_token_file};

fuzz_target!(|data: &[u8]| {
    let Ok(tokens) = decode_token_file(data) else { return };
    assert_eq!(data.len(), 1024 + 2 * tokens.len());
    assert_eq!(&encode_token_file(&tokens)[1024..], &data[1024..]);
});
