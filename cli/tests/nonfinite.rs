//! The finding: two NaN floats in `wte` of an llm.c checkpoint made `generate` print
//! `''''''''` and exit 0, and `inspect` said nothing. Both must now fail, naming the tensor.
mod common;

use common::cli;
use llm_engine::checkpoint;
use llm_testkit::{config, random_params};

#[test]
fn nan_weights_fail_generate_and_inspect_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(2, 2, 32, 16, 256, 256);
    let mut p = random_params(&cfg, 3, 0.1);
    p[10] = f32::NAN;
    p[200] = f32::NAN;
    let m = dir.path().join("nan.bin");
    std::fs::write(&m, checkpoint::encode_v3(&cfg, &p)).unwrap();
    for args in [vec!["generate", m.to_str().unwrap(), "--prompt", "ab", "--steps", "8"], vec!["inspect", m.to_str().unwrap()]] {
        let out = cli().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
        assert!(err.contains("non-finite values in tensor wte"), "{args:?}: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains('\''), "{args:?}");
    }
}
