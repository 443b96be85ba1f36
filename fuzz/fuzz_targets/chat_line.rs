//! Chat input lines (`/temp`, `/max`, ... and prompts) on arbitrary text: the parser must
//! never panic, and the settings it accepts stay valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_engine::chat::{ChatSettings, Line, parse_line};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut settings = ChatSettings::default();
    for line in text.lines() {
        match parse_line(line) {
            Ok(Line::Command(cmd)) => {
                settings.apply(cmd);
                assert!(settings.sampler.validate().is_ok(), "{line:?} gave {:?}", settings.sampler);
                assert!(settings.max_tokens >= 1 && settings.cores >= 1);
                let _ = settings.to_string();
            }
            Ok(Line::Prompt(p)) => assert!(!p.is_empty() && p == p.trim()),
            Ok(Line::Empty) => assert!(line.trim().is_empty()),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
