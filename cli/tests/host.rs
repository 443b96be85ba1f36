//! The host subcommands' input, output and argument checks (cli/src/host.rs, infer.rs,
//! train.rs), tried under hostile conditions: stdout full or closed early, input that is not
//! UTF-8 or not a file, absurd flag values, resumed runs given other settings, long input
//! echoed in errors. Each test failed before its fix.

mod common;

use common::*;
use llm_engine::checkpoint;
use std::io::{Read, Write};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

fn small_model(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = llm_testkit::config(2, 2, 32, 64, 256, 256);
    let p = dir.join("small.bin");
    std::fs::write(&p, checkpoint::encode_v3(&cfg, &llm_testkit::random_params(&cfg, 1, 0.3))).unwrap();
    p
}

fn dev_full() -> std::fs::File {
    std::fs::File::options().write(true).open("/dev/full").unwrap()
}

/// Waits at most `secs` for the child; kills it (and fails) after that.
fn wait_for(mut child: Child, secs: u64, what: &str) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{what}: still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_error_line(o: &Output, want: &str, what: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "{what}: succeeded: {err}");
    assert_ne!(o.status.code(), Some(101), "{what}: panicked: {err}");
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{what}: no error line: {err}"));
    assert!(line.contains(want), "{what}: {want:?} not in {line:?}");
}

/// Finding (issue 13): writing to a full stdout (`generate > /dev/full`) panicked with exit 101.
#[test]
fn a_full_stdout_is_one_error_line_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let m = m.to_str().unwrap();
    let exported = dir.path().join("export.gguf");
    let cases: Vec<Vec<&str>> = vec![
        vec!["export", m, "--out", exported.to_str().unwrap(), "--type", "f32"],
        vec!["generate", m, "--steps", "20"],
        vec!["inspect", m],
        vec!["bench", m, "--repeat", "1", "--prefill", "4", "--decode", "4"],
        vec!["chat", m, "--max-tokens", "20", "--no-stop"],
    ];
    for args in cases {
        let child = cli().args(&args).stdin(Stdio::piped()).stdout(dev_full()).stderr(Stdio::piped()).spawn().unwrap();
        // (A command that does not read stdin may be gone before this is written.)
        let _ = child.stdin.as_ref().unwrap().write_all(b"Hello\n");
        let out = wait_for(child, 60, args[0]);
        assert_one_error_line(&out, "cannot write to stdout: No space left on device", args[0]);
    }
}

/// Reads a few bytes of stdout, closes it, and expects a prompt, quiet, successful exit.
fn close_early(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = cli().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let mut buf = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut buf).unwrap(); // dropped here: the pipe closes
    let out = wait_for(child, 30, args[0]);
    let err = stderr(&out);
    assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    assert!(!err.contains("panicked") && !err.contains("error"), "{args:?}: {err}");
    out
}

/// Finding (issue 13): `generate | head -c 10` panicked or went on generating after the pipe closed.
#[test]
fn a_closed_pipe_ends_the_program_quietly_and_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let m = m.to_str().unwrap();
    // 100 million tokens: only stopping when the reader goes away ends it within the limit.
    close_early(&["generate", m, "--steps", "100000000", "--context", "64"], b"");
    close_early(&["chat", m, "--max-tokens", "100000000", "--no-stop"], b"Hello\nHello\n");
    close_early(&["inspect", m], b"");
    close_early(&["bench", m, "--repeat", "1", "--prefill", "4", "--decode", "4"], b"");
}

/// Finding (issue 13): one non-UTF-8 line ended a host chat session.
#[test]
fn chat_refuses_a_line_that_is_not_utf8_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let child = cli()
        .args(["chat", m.to_str().unwrap(), "--max-tokens", "5", "--no-stop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.as_ref().unwrap().write_all(b"caf\xe9 latin-1\nHello\n/stats\n").unwrap();
    let mut child = child;
    drop(child.stdin.take());
    let out = wait_for(child, 60, "chat");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(s.contains("not valid UTF-8"), "{s}");
    // The next line is answered.
    assert!(s.contains("[prompt 6 tokens"), "{s}");
}

/// Finding (issue 13): the prefill speed counted prompt tokens never computed; issue 23, 2: a chat turn longer than the context was cut silently.
#[test]
fn prompt_speed_counts_only_the_tokens_that_fit_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let m = m.to_str().unwrap();
    // 300 byte tokens into a context of 64: the window keeps the last 32.
    let long = "abcdefghij".repeat(30);
    let out = cli().args(["generate", m, "--prompt", &long, "--steps", "2"]).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("prompt of 300 tokens cut to its last 32") && err.contains("prefill 32 tokens"), "{err}");
    // A chat turn is never cut (issue 23, finding 2): it is refused with the numbers, the
    // chat goes on, and the scripted session's exit status says a turn failed.
    let mut child = cli()
        .args(["chat", m, "--max-tokens", "2", "--no-stop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{long}\n/stats\nabc\n/stats\n").as_bytes()).unwrap();
    let out = wait_for(child, 60, "chat");
    let (s, err) = (String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(err.contains("[turn of 301 tokens does not fit a context of 64: not sent]"), "{err}");
    assert!(s.contains("no reply yet") && s.contains("[prompt 4 tokens at"), "{s}");
    assert!(!out.status.success() && err.contains("1 turn(s) of the input failed"), "{err}");
}

/// Finding (issue 13): `bench --repeat 0` and a --prefill larger than the context were accepted; a huge-context bench showed no progress.
#[test]
fn bench_rejects_impossible_settings_and_shows_progress() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let m = m.to_str().unwrap();
    let o = cli().args(["bench", m, "--repeat", "0"]).output().unwrap();
    assert_one_error_line(&o, "--repeat 0: must be at least 1", "--repeat 0");
    let o = cli().args(["bench", m, "--prefill", "100000"]).output().unwrap();
    assert_one_error_line(&o, "--prefill 100000: must be between 1 and 63 (the model's context is 64", "--prefill");
    let o = cli().args(["bench", "--random", "1,2,32,64", "--train", "--steps", "0", "--batch", "1"]).output().unwrap();
    assert_one_error_line(&o, "--steps 0: must be at least 1", "--train --steps 0");
    // Each measured run says so on stderr while it runs.
    let o = cli().args(["bench", m, "--repeat", "2", "--prefill", "4", "--decode", "4", "--threads", "1"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("thread(s), run 2 of 2]"), "{}", stderr(&o));
}

/// Finding (issue 13): error lines quoted all of a long input.
#[test]
fn long_input_is_cut_in_error_lines() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let m = m.to_str().unwrap();
    let long = "x".repeat(5000);
    let long_path = format!("/nonexistent/{}/model.bin", "d".repeat(3000));
    let cases: Vec<Vec<&str>> = vec![
        vec!["generate", m, "--kernels", &long],
        vec!["generate", m, "--steps", &long],
        vec!["inspect", &long_path],
        vec!["chat", m, "--template", &long],
        vec!["bench", "--random", &long],
    ];
    for args in cases {
        let o = cli().args(&args).output().unwrap();
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("no error line: {err}"));
        assert!(
            line.chars().count() < 300 && line.contains('…'),
            "{:?}: {} characters: {}",
            &args[..2],
            line.chars().count(),
            line.chars().take(200).collect::<String>()
        );
    }
}

fn prepared(dir: &std::path::Path, bytes: usize) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text = dir.join("t.txt");
    let full = std::fs::read(root().join("data/tinyshakespeare/input.txt")).unwrap();
    std::fs::write(&text, &full[..bytes]).unwrap();
    let data = dir.join("data");
    let o = cli().args(["prepare", text.to_str().unwrap(), "--out", data.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    data
}

const TINY: [&str; 12] =
    ["--layers", "1", "--heads", "2", "--channels", "32", "--context", "32", "--batch", "2", "--quiet", "--sample-every"];

/// Finding (issue 13): `train --threads 1000` took minutes for 3 tiny steps.
#[test]
fn train_threads_are_capped_at_the_cores() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path(), 20_000);
    let run = dir.path().join("run");
    let child = cli()
        .args(["train", "--data", data.to_str().unwrap(), "--out", run.to_str().unwrap(), "--steps", "3", "--threads", "1000"])
        .args(TINY)
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_for(child, 120, "train --threads 1000");
    assert!(o.status.success(), "{}", stderr(&o));
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(
        stderr(&o).contains(&format!("warning: 1000 threads asked for, but this machine has {cores} core(s): using {cores}")),
        "{}",
        stderr(&o)
    );
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains(&format!("; {cores} threads")), "{s}");
}

/// Finding (issue 13): `prepare /dev/zero` read forever.
#[test]
fn prepare_refuses_inputs_that_are_not_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let out = dir.path().join("out");
    // Nobody writes to the FIFO: reading it would wait forever (as /dev/zero reads forever).
    for input in [fifo.to_str().unwrap(), "/dev/zero", dir.path().to_str().unwrap()] {
        let child =
            cli().args(["prepare", input, "--out", out.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let o = wait_for(child, 10, input);
        let want = if input == dir.path().to_str().unwrap() { "is a directory" } else { "is not a regular file" };
        assert_one_error_line(&o, want, input);
    }
}

/// Finding (issue 13): `train --resume DIR --lr 1` ignored the flag; resume paths were not trimmed; "too few tokens" did not say how many.
#[test]
fn resume_refuses_other_settings_trims_the_path_and_too_little_data_says_how_much() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path(), 20_000);
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let o = cli().args(["train", "--data", data.to_str().unwrap(), "--out", r, "--steps", "4"]).args(TINY).arg("0").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let model = std::fs::read(run.join("model.bin")).unwrap();
    // Other settings are refused, naming each flag and the run's value; nothing changes.
    let o = cli().args(["train", "--resume", r, "--steps", "500", "--lr", "1", "--quiet"]).output().unwrap();
    assert_one_error_line(&o, "--steps 500 (the run has 4), --lr 1 (the run has 0.003)", "resume --steps --lr");
    assert_eq!(std::fs::read(run.join("model.bin")).unwrap(), model);
    // The same values are accepted, and a path with a trailing newline (from a script) works.
    let with_newline = format!("{r}\n");
    let o = cli().args(["train", "--resume", &with_newline, "--steps", "4", "--batch", "2", "--quiet"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("at step 4 of 4"), "{}", String::from_utf8_lossy(&o.stdout));
    // A missing run names its path on one line (the newline shown as \n).
    let o = cli().args(["train", "--resume", "/nonexistent/run\n"]).output().unwrap();
    assert_one_error_line(&o, "/nonexistent/run\\n", "resume of a missing run");

    // Too little data: the message says how many tokens are needed and how many there are.
    let small = prepared(&dir.path().join("small"), 1100); // 990 train, 110 validation tokens
    let run2 = dir.path().join("run2");
    let o = cli()
        .args(["train", "--data", small.to_str().unwrap(), "--out", run2.to_str().unwrap(), "--steps", "1"])
        .args(["--layers", "1", "--heads", "2", "--channels", "32", "--context", "32", "--batch", "8", "--quiet"])
        .output()
        .unwrap();
    assert_one_error_line(&o, "has 110 tokens, too few for one batch of 8 x 32: at least 257 are needed", "small val");
    let o = cli()
        .args(["train", "--data", small.to_str().unwrap(), "--out", run2.to_str().unwrap(), "--steps", "1"])
        .args(["--layers", "1", "--heads", "2", "--channels", "32", "--context", "1024", "--batch", "1", "--quiet"])
        .output()
        .unwrap();
    assert_one_error_line(&o, "has 990 tokens, too few for sequences of 1024: at least 1026 are needed", "small train");
}

/// Finding (issue 13): two NaN floats in `wte` of an llm.c checkpoint made `generate` print
/// `''''''''` and exit 0, and `inspect` said nothing. Both fail now, naming the tensor.
#[test]
fn nan_weights_fail_generate_and_inspect_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = llm_testkit::config(2, 2, 32, 16, 256, 256);
    let mut p = llm_testkit::random_params(&cfg, 3, 0.1);
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
