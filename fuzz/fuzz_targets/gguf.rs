//! GGUF parser on arbitrary bytes: must never panic; whatever it accepts must be in bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_engine::formats::gguf::{Gguf, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(g) = Gguf::parse(data) else { return };
    for t in g.tensors() {
        let d = g.tensor_data(t);
        assert_eq!(d.len(), t.n_bytes);
        let start = d.as_ptr() as usize - data.as_ptr() as usize;
        assert!(start + d.len() <= data.len());
    }
    for kv in g.metadata() {
        if let Value::Array(a) = kv.value {
            assert_eq!(a.values().count(), a.len());
            if let Some(s) = a.strings() {
                assert_eq!(s.count(), a.len());
            }
            if let Some(inner) = a.arrays() {
                assert_eq!(inner.count(), a.len());
            }
        }
    }
    let _ = g.architecture();
});
