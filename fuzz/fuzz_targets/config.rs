//! `llm.cfg` on arbitrary text: the parser must never panic; errors quote a bounded amount of
//! the input, and what it accepts has valid sampler settings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_engine::config::BootConfig;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match BootConfig::parse(&text) {
        Ok(cfg) => {
            assert!(cfg.chat.sampler.validate().is_ok());
            assert!(cfg.chat.max_tokens >= 1);
            assert!(!cfg.model_path.is_empty());
        }
        Err(e) => {
            assert!(e.line >= 1);
            // 80 quoted characters at most per quote (two quotes at most), plus the text.
            assert!(e.message.chars().count() < 400, "{} chars", e.message.chars().count());
        }
    }
});
