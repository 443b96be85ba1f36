//! llm.c checkpoints on arbitrary bytes: the header parser, the trainer's flat parse and the
//! engine's loader must never panic; a model that loads must run a token without panicking
//! (its logits are finite, or generation reports an error).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_engine::{Kernels, SamplerConfig, Serial, Session, checkpoint, formats::llmc};

fuzz_target!(|data: &[u8]| {
    let _ = llmc::parse_header(data);
    if let Ok(ck) = checkpoint::parse(data) {
        assert_eq!(ck.params.len(), ck.config.num_parameters());
    }
    let Ok(model) = llmc::load(data) else { return };
    // A short context, as the CLI caps it: the header's context length is not bounded by the
    // file's size (GGUF metadata), and the KV cache would be sized by it.
    let ctx = model.spec().context.min(16);
    let Ok(mut s) = Session::with_context(&model, Kernels::detect(), ctx, SamplerConfig::default(), 1) else { return };
    if s.feed(&[0], &Serial).is_ok() {
        let _ = s.next_token(&Serial);
    }
});
