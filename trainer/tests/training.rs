//! The trainer end to end: data preparation, loss at initialisation, overfitting one batch,
//! exact resume, determinism, checkpoints the engine (and llm.c) can read.

use llm_engine::checkpoint;
use llm_testkit::config;
use llm_trainer::data;
use llm_trainer::run::{self, RunInputs, TrainOptions, Trainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn data_file_is_tiny_shakespeare() {
    use std::process::Command;
    let path = repo().join("data/tinyshakespeare/input.txt");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 1_115_394);
    let out = Command::new("sha256sum").arg(&path).output().expect("sha256sum");
    let sum = String::from_utf8_lossy(&out.stdout);
    assert!(sum.starts_with("86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"), "{sum}");
    let mut distinct = bytes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 65);
}

fn shakespeare_prefix(dir: &Path, bytes: usize) -> std::path::PathBuf {
    let text = std::fs::read(repo().join("data/tinyshakespeare/input.txt")).unwrap();
    let p = dir.join("text.txt");
    std::fs::write(&p, &text[..bytes]).unwrap();
    p
}

#[test]
fn prepare_splits_the_last_tenth_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = shakespeare_prefix(dir.path(), 20_000);
    let out = dir.path().join("d");
    let p = data::prepare(std::slice::from_ref(&text), &out, 0.1).unwrap();
    assert_eq!((p.train_tokens, p.val_tokens), (18_000, 2_000));
    let train = data::read_token_file(&out.join("train.bin")).unwrap();
    let val = data::read_token_file(&out.join("val.bin")).unwrap();
    let original = std::fs::read(&text).unwrap();
    let joined: Vec<u8> = train.iter().chain(&val).map(|&t| t as u8).collect();
    assert_eq!(joined, original);
    // llm.c's header: 20240520 = 0x0134D888, version 1, 2000 tokens, little-endian.
    let raw = std::fs::read(out.join("val.bin")).unwrap();
    assert_eq!(&raw[..12], &[0x88, 0xD8, 0x34, 0x01, 1, 0, 0, 0, 0xD0, 0x07, 0, 0]);
    // Errors.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    assert!(data::prepare(std::slice::from_ref(&empty), &out, 0.1).unwrap_err().to_string().contains("is empty"));
    let tiny = dir.path().join("tiny.txt");
    std::fs::write(&tiny, b"to be or not to be").unwrap();
    assert!(data::prepare(&[tiny], &out, 0.1).unwrap_err().to_string().contains("at least 1024"));
    assert!(data::prepare(&[dir.path().join("nope.txt")], &out, 0.1).unwrap_err().to_string().contains("cannot read"));
    let mut bad = raw.clone();
    bad[0] = 0;
    assert!(data::decode_token_file(&bad).unwrap_err().to_string().contains("bad magic"));
    assert!(data::decode_token_file(&raw[..raw.len() - 1]).is_err());
}

fn options(steps: usize) -> TrainOptions {
    TrainOptions {
        batch: 4,
        seq: 32,
        steps,
        lr: 3e-3,
        warmup: 5,
        eval_every: 5,
        val_batches: 2,
        sample_every: 0,
        checkpoint_every: 1000,
        ..TrainOptions::default()
    }
}

fn prepared(dir: &Path) -> std::path::PathBuf {
    let text = shakespeare_prefix(dir, 60_000);
    let d = dir.join("data");
    data::prepare(&[text], &d, 0.1).unwrap();
    d
}

#[test]
fn loss_at_initialisation_is_close_to_ln_v() {
    let dir = tempfile::tempdir().unwrap();
    let d = prepared(dir.path());
    let (train, _) = run::load_split(&d, 32, 256).unwrap();
    let mut t = Trainer::new(config(2, 2, 32, 32, 256, 256), options(10), None).unwrap();
    let loss = t.train_step(&train).loss;
    assert!((loss - (256f32).ln()).abs() < 0.1, "initial loss {loss} vs ln 256 = {}", (256f32).ln());
}

#[test]
fn a_small_model_overfits_one_batch() {
    // 33 tokens: every batch is the same window.
    let tokens: Vec<u16> = b"First Citizen: Before we proceed!".iter().map(|&b| b as u16).collect();
    let mut o = options(300);
    o.batch = 2;
    o.lr = 1e-2;
    o.weight_decay = 0.0;
    let mut t = Trainer::new(config(2, 2, 32, 32, 256, 256), o, None).unwrap();
    let mut loss = f32::MAX;
    for _ in 0..300 {
        loss = t.train_step(&tokens).loss;
    }
    assert!(loss < 0.05, "loss after 300 steps on one batch: {loss}");
}

fn train_to(dir: &Path, data: &Path, trainer: Trainer, halt: Option<usize>) -> run::RunSummary {
    let stop = AtomicBool::new(false);
    run::run(
        trainer,
        RunInputs { data_dir: data, out_dir: dir, command: "test".into(), interrupt: &stop, progress: false, halt_after: halt },
    )
    .unwrap()
}

#[test]
fn n_steps_then_resume_m_steps_equals_n_plus_m_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let d = prepared(dir.path());
    let cfg = config(2, 2, 32, 32, 256, 256);
    let straight = dir.path().join("straight");
    train_to(&straight, &d, Trainer::new(cfg, options(12), None).unwrap(), None);
    let split = dir.path().join("split");
    let s = train_to(&split, &d, Trainer::new(cfg, options(12), None).unwrap(), Some(7));
    assert_eq!(s.steps_done, 7);
    let resumed = Trainer::resume(&split).unwrap();
    assert_eq!(resumed.step, 7);
    let s = train_to(&split, &d, resumed, None);
    assert_eq!(s.steps_done, 12);
    let a = std::fs::read(straight.join("model.bin")).unwrap();
    let b = std::fs::read(split.join("model.bin")).unwrap();
    assert!(a == b, "resumed run differs from the straight run");
    // The log has each step once.
    let log = llm_trainer::report::read_log(&split.join("log.csv")).unwrap();
    assert_eq!(log.iter().map(|r| r.step).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
    // And the checkpoint is a valid llm.c v3 file the engine reads.
    let ck = checkpoint::parse(&b).unwrap();
    assert_eq!((ck.version, ck.config), (3, cfg));
}

#[test]
fn runs_are_reproducible_and_independent_of_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let d = prepared(dir.path());
    let (train, _) = run::load_split(&d, 32, 256).unwrap();
    let cfg = config(2, 2, 32, 32, 256, 256);
    let run_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut t = Trainer::new(cfg, options(5), None).unwrap();
            for _ in 0..5 {
                t.train_step(&train);
            }
            t.params.clone()
        })
    };
    let one = run_with(1);
    assert_eq!(one, run_with(1));
    assert_eq!(one, run_with(2), "results depend on the thread count");
}

#[test]
fn corrupt_state_and_missing_runs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = Trainer::resume(dir.path()).err().unwrap().to_string();
    assert!(e.contains("cannot resume"), "{e}");
    std::fs::write(dir.path().join("state.bin"), b"LLMBMST2\x05\0\0\0\0\0\0\0{bad}").unwrap();
    let e = Trainer::resume(dir.path()).err().unwrap().to_string();
    assert!(e.contains("corrupt"), "{e}");
}

#[test]
fn trainer_forward_agrees_with_the_engine() {
    // Same parameters, same tokens: the trainer's (batched, sgemm) logits and the engine's.
    let cfg = config(2, 4, 64, 16, 256, 256);
    let params = llm_testkit::random_params(&cfg, 5, 0.1);
    let tokens = llm_testkit::random_tokens(16, 256, 6);
    let mut acts = llm_trainer::gpt::Activations::new(&cfg, 1, 16);
    llm_trainer::gpt::forward(&cfg, &params, &mut acts, &tokens, &tokens);
    let model = llm_engine::checkpoint::model_from_params(&cfg, &params).unwrap();
    let mut st = model.new_state(llm_engine::Kernels::portable());
    let logits = model.forward_all(&mut st, &tokens, 0).unwrap();
    // Compare probabilities (the trainer keeps softmax, not logits).
    for t in 0..16 {
        let row = &logits[t * 256..(t + 1) * 256];
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let z: f32 = row.iter().map(|x| (x - m).exp()).sum();
        for (v, &x) in row.iter().enumerate() {
            let p = (x - m).exp() / z;
            assert!((p - acts.probs[t * 256 + v]).abs() < 1e-5);
        }
    }
}

#[test]
fn the_loss_is_never_clamped_and_a_diverged_step_changes_nothing() {
    // -log p without a floor: a NaN logit gives NaN (it used to read 69.0776 = -ln 1e-30), and a
    // target 200 below the best logit gives 200 (p underflows to 0 in f32; it used to read 69.08).
    let v = 4;
    let mut logits = vec![0.0, f32::NAN, 0.0, 0.0, 200.0, 0.0, 0.0, 0.0];
    let mut losses = vec![0.0; 2];
    llm_trainer::gpt::softmax_crossentropy_forward(&mut logits, &mut losses, &[0, 1], v);
    assert!(losses[0].is_nan(), "{}", losses[0]);
    assert!((losses[1] - 200.0).abs() < 1e-3, "{}", losses[1]);
    // A trainer whose weights give a NaN loss applies nothing: same weights, step and PRNG.
    let cfg = config(2, 2, 32, 32, 256, 256);
    let tokens: Vec<u16> = b"First Citizen: Before we proceed!".iter().map(|&b| b as u16).collect();
    let mut t = Trainer::new(cfg, options(10), Some(llm_testkit::random_params(&cfg, 3, 0.1))).unwrap();
    assert!(!t.train_step(&tokens).diverged());
    let last = t.params.len() - 1; // the final LayerNorm's last bias: every logit becomes NaN
    t.params[last] = f32::NAN;
    let before = (t.params.clone(), t.step, t.rng.state());
    let s = t.train_step(&tokens);
    assert!(s.diverged() && s.loss.is_nan());
    assert_eq!((t.step, t.rng.state()), (before.1, before.2));
    assert!(t.params.iter().zip(&before.0).all(|(a, b)| a.to_bits() == b.to_bits()));
    // And such weights are never saved, nor accepted as a starting point.
    let dir = tempfile::tempdir().unwrap();
    let e = t.save(dir.path(), 0.0).unwrap_err().to_string();
    assert!(e.contains("not saving") && e.contains("NaN"), "{e}");
    assert!(!dir.path().join("model.bin").exists());
    let e = Trainer::new(cfg, options(10), Some(t.params.clone())).err().unwrap().to_string();
    assert!(e.contains("non-finite"), "{e}");
}

/// A run of `options(12)` in DIR/NAME, stopped (and saved) after `halt` steps.
fn halted_run(dir: &Path, data: &Path, name: &str, seed: u64, halt: usize) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut o = options(12);
    o.seed = seed;
    train_to(&out, data, Trainer::new(config(2, 2, 32, 32, 256, 256), o, None).unwrap(), Some(halt));
    out
}

#[test]
fn state_bin_is_checksummed_and_bound_to_its_model_bin() {
    let dir = tempfile::tempdir().unwrap();
    let d = prepared(dir.path());
    let run = halted_run(dir.path(), &d, "a", 1, 5);
    let state = std::fs::read(run.join("state.bin")).unwrap();
    // One flipped byte anywhere (here in the weights, and in the JSON header) is refused.
    for at in [state.len() / 2, 20] {
        let mut bad = state.clone();
        bad[at] ^= 0x10;
        std::fs::write(run.join("state.bin"), &bad).unwrap();
        let e = Trainer::resume(&run).err().expect("a corrupt state.bin resumed").to_string();
        assert!(e.contains("cannot resume") && e.contains("checksum"), "{e}");
    }
    // So is a truncated one.
    std::fs::write(run.join("state.bin"), &state[..state.len() - 1]).unwrap();
    assert!(Trainer::resume(&run).err().unwrap().to_string().contains("corrupt"));
    std::fs::write(run.join("state.bin"), &state).unwrap();
    assert_eq!(Trainer::resume(&run).unwrap().step, 5);
    // Another run's model.bin next to this state.bin is refused, and left alone.
    let other = halted_run(dir.path(), &d, "b", 2, 5);
    let model = std::fs::read(run.join("model.bin")).unwrap();
    let foreign = std::fs::read(other.join("model.bin")).unwrap();
    std::fs::write(run.join("model.bin"), &foreign).unwrap();
    let e = Trainer::resume(&run).err().expect("resumed beside another run's model.bin").to_string();
    assert!(e.contains("cannot resume") && e.contains("model.bin") && e.contains("does not belong"), "{e}");
    assert_eq!(std::fs::read(run.join("model.bin")).unwrap(), foreign);
    std::fs::write(run.join("model.bin"), &model).unwrap();
    assert_eq!(Trainer::resume(&run).unwrap().step, 5);
    // A state file of the earlier format (no checksum) is refused with a clear reason.
    let mut old = b"LLMBMST1".to_vec();
    old.extend_from_slice(&state[8..]);
    std::fs::write(run.join("state.bin"), &old).unwrap();
    let e = Trainer::resume(&run).err().unwrap().to_string();
    assert!(e.contains("older format") && e.contains("--init"), "{e}");
}

#[test]
fn a_crash_between_writing_state_bin_and_model_bin_still_resumes_exactly() {
    // state.bin is written first: a kill before model.bin is renamed leaves the previous
    // model.bin beside the new state. Resume recognises it, rewrites model.bin from the state
    // and continues bit for bit.
    let dir = tempfile::tempdir().unwrap();
    let d = prepared(dir.path());
    let straight = dir.path().join("straight");
    train_to(&straight, &d, Trainer::new(config(2, 2, 32, 32, 256, 256), options(12), None).unwrap(), None);
    let split = halted_run(dir.path(), &d, "split", options(12).seed, 3);
    let model_at_3 = std::fs::read(split.join("model.bin")).unwrap();
    train_to(&split, &d, Trainer::resume(&split).unwrap(), Some(4));
    std::fs::write(split.join("model.bin"), &model_at_3).unwrap();
    let t = Trainer::resume(&split).unwrap();
    assert_eq!(t.step, 7);
    assert!(t.repaired_model);
    assert_ne!(std::fs::read(split.join("model.bin")).unwrap(), model_at_3, "model.bin was not brought up to date");
    // A missing model.bin is rewritten the same way.
    std::fs::remove_file(split.join("model.bin")).unwrap();
    let t = Trainer::resume(&split).unwrap();
    assert!(t.repaired_model && split.join("model.bin").exists());
    train_to(&split, &d, t, None);
    assert!(
        std::fs::read(straight.join("model.bin")).unwrap() == std::fs::read(split.join("model.bin")).unwrap(),
        "the resumed run differs"
    );
}

#[test]
fn stale_temporary_files_of_a_killed_trainer_are_removed_on_start_and_resume() {
    // A trainer killed (kill -9) while saving leaves `.model.bin.tmpPID` and friends: full-size
    // copies. PID 999999999 is above any pid_max, so never alive.
    let dir = tempfile::tempdir().unwrap();
    let d = prepared(dir.path());
    let stale = [".model.bin.tmp999999999", ".state.bin.tmp999999999", ".log.csv.tmp999999999", ".run.json.tmp999999999"];
    let plant = |run: &Path| {
        std::fs::create_dir_all(run).unwrap();
        for name in stale {
            std::fs::write(run.join(name), vec![7u8; 4096]).unwrap();
        }
        // Not ours to remove: another file, and (if /proc shows it alive) a live process's.
        std::fs::write(run.join(".model.bin.notes"), b"keep").unwrap();
        std::fs::write(run.join(".model.bin.tmp1"), b"pid 1 is alive").unwrap();
    };
    let check = |run: &Path| {
        for name in stale {
            assert!(!run.join(name).exists(), "{name} is still there");
        }
        assert!(run.join(".model.bin.notes").exists());
        if Path::new("/proc/1").exists() {
            assert!(run.join(".model.bin.tmp1").exists(), "a live process's temporary file was removed");
        }
    };
    // On start.
    let run = dir.path().join("run");
    plant(&run);
    train_to(&run, &d, Trainer::new(config(2, 2, 32, 32, 256, 256), options(12), None).unwrap(), Some(3));
    check(&run);
    // On resume, before anything else is read or written.
    plant(&run);
    let t = Trainer::resume(&run).unwrap();
    check(&run);
    drop(t);
}

/// A run's shape is written with the engine's names, and the files of older versions (llm.c's
/// `layers` / `heads` / `channels` / `vocab` / `padded_vocab`) still read as the same shape.
#[test]
fn run_shape_reads_old_and_new_field_names() {
    let new = r#"{"n_layers":2,"n_heads":4,"d_model":64,"context":32,"vocab_size":65,"padded_vocab_size":128}"#;
    let old = r#"{"layers":2,"heads":4,"channels":64,"context":32,"vocab":65,"padded_vocab":128}"#;
    let a: run::Shape = serde_json::from_str(new).unwrap();
    let b: run::Shape = serde_json::from_str(old).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.n_layers, a.n_heads, a.d_model, a.context, a.vocab_size, a.padded_vocab_size), (2, 4, 64, 32, 65, 128));
    assert_eq!(serde_json::to_string(&a).unwrap(), new);
    let c = a.config();
    assert_eq!((c.n_layers, c.n_heads, c.d_model, c.context, c.vocab_size, c.padded_vocab_size), (2, 4, 64, 32, 65, 128));
    assert_eq!(run::Shape::of(&c), a);
}
