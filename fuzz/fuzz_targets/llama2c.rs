//! llama2.c checkpoints on arbitrary bytes: the loader must never panic, and a model that
//! loads must run a token without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_engine::formats::llama2c;
use llm_engine::{Kernels, SamplerConfig, Serial, Session};

fuzz_target!(|data: &[u8]| {
    let Ok((_, model)) = llama2c::load(data) else { return };
    // A short context, as the CLI caps it: the header's context length is not bounded by the
    // file's size (GGUF metadata), and the KV cache would be sized by it.
    let ctx = model.spec().context.min(16);
    let Ok(mut s) = Session::with_context(&model, Kernels::detect(), ctx, SamplerConfig::default(), 1) else { return };
    if s.feed(&[0], &Serial).is_ok() {
        let _ = s.next_token(&Serial);
    }
});
