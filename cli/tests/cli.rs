//! The host command line as a user runs it: inspect, generate, chat, prepare/train/report
//! (with Ctrl-C and resume), image, and the errors for bad input.

mod common;

use common::*;
use llm_engine::checkpoint;
use std::io::Write;
use std::process::Stdio;

/// The shape and parameters of `small_model`.
fn small_params() -> (llm_engine::LlmcConfig, Vec<f32>) {
    let cfg = llm_testkit::config(2, 2, 32, 64, 256, 256);
    (cfg, llm_testkit::random_params(&cfg, 1, 0.3))
}

/// A small random checkpoint written by the project's own writer.
fn small_model(dir: &std::path::Path) -> std::path::PathBuf {
    let (cfg, params) = small_params();
    let p = dir.join("small.bin");
    std::fs::write(&p, checkpoint::encode_v3(&cfg, &params)).unwrap();
    p
}

fn run(args: &[&str]) -> std::process::Output {
    cli().args(args).output().unwrap()
}

#[test]
fn inspect_reports_shape_size_and_format() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let out = run(&["inspect", m.to_str().unwrap()]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for want in [
        "version 3 (fp32)",
        "L  = 2",
        "NH = 2 (head size 16)",
        "C  = 32",
        "maxT = 64",
        "V  = 256",
        &format!("{} bytes", 1024 + 4 * llm_testkit::config(2, 2, 32, 64, 256, 256).num_parameters()),
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
}

#[test]
fn generate_streams_only_the_continuation_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let g = |seed: &str| run(&["generate", m.to_str().unwrap(), "--prompt", "Hello", "--steps", "40", "--seed", seed]);
    let a = g("1");
    assert!(a.status.success());
    assert_eq!(a.stdout, g("1").stdout);
    assert_ne!(a.stdout, g("2").stdout);
    assert!(String::from_utf8_lossy(&a.stderr).contains("tok/s"));
    // Greedy: the continuation is the argmax chain of the testkit's naive f64 forward pass
    // (llm_testkit::reference_forward), not of the engine. Every step's winner leads the
    // runner-up by a margin far above the engine's f32 error, so f32 and f64 agree on it.
    let out = run(&["generate", m.to_str().unwrap(), "--prompt", "Hi", "--steps", "10", "--temperature", "0", "--kernels", "scalar"]);
    let (cfg, params) = small_params();
    let params: Vec<f64> = params.iter().map(|&x| x as f64).collect();
    let mut toks: Vec<u32> = b"Hi".iter().map(|&b| b as u32).collect();
    let mut expect = vec![];
    for step in 0..10 {
        let logits = llm_testkit::reference_forward(&cfg, &params, &toks);
        let last = logits.last().unwrap();
        let mut order: Vec<usize> = (0..last.len()).collect();
        order.sort_by(|&a, &b| last[b].total_cmp(&last[a]));
        let margin = last[order[0]] - last[order[1]];
        assert!(margin > 0.01, "step {step}: top-2 margin {margin} too small for an f32/f64 comparison");
        expect.push(order[0] as u8);
        toks.push(order[0] as u32);
    }
    let mut printed = String::new();
    let mut p = llm_engine::Utf8Printer::new();
    p.push(&expect, &mut |c| printed.push(c));
    p.flush(&mut |c| printed.push(c));
    assert_eq!(String::from_utf8_lossy(&out.stdout), printed);
}

#[test]
fn user_errors_are_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let bad = dir.path().join("bad.bin");
    std::fs::write(&bad, b"not a checkpoint at all").unwrap();
    // llm.c's magic number, then nothing: recognised as llm.c, reported as too short.
    let short_llmc = dir.path().join("short.bin");
    std::fs::write(&short_llmc, 20240326i32.to_le_bytes()).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["inspect", "/nonexistent/model.bin"], "cannot open /nonexistent/model.bin"),
        (vec!["inspect", bad.to_str().unwrap()], "not a model file this engine reads"),
        (vec!["generate", bad.to_str().unwrap()], "not a llama2.c checkpoint"),
        (vec!["inspect", short_llmc.to_str().unwrap()], "shorter than the 1024-byte"),
        (vec!["generate", m.to_str().unwrap(), "--top-p", "0"], "top-p must be in (0, 1]"),
        (vec!["generate", m.to_str().unwrap(), "--temperature", "-1"], "temperature"),
        (
            vec!["generate", m.to_str().unwrap(), "--kernels", "gpu"],
            "unknown kernel set 'gpu' (auto; families nofma, nofma-q8, fma, q8; sets portable, portable-q8, sse2, ssse3-q8, avx2, avx2-q8, avx-vnni, avx512-vnni)",
        ),
        (vec!["chat", m.to_str().unwrap(), "--max-tokens", "0"], "--max-tokens: must be at least 1"),
        (vec!["bench", "--random", "2,3,64,64"], "not divisible"),
        (vec!["report", "/nonexistent"], "not a run directory"),
        (vec!["prepare", "/nonexistent.txt", "--out", "/tmp/x"], "cannot read /nonexistent.txt"),
    ];
    for (args, want) in cases {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?} panicked: {err}");
        assert!(err.trim().lines().count() <= 2, "{args:?}: not one clear line: {err}");
    }
    assert_eq!(run(&["generate", m.to_str().unwrap(), "--steps", "x"]).status.code(), Some(2)); // clap
}

#[test]
fn chat_reads_lines_applies_commands_and_replies() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let mut child = cli()
        .args(["chat", m.to_str().unwrap(), "--max-tokens", "12", "--no-stop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"/temp 0\n/topk 5\nHello\n/stats\n/bogus\n/reset\nHello\n/quit\nnever read\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("[temp 0 topk 40"), "{s}");
    assert!(s.contains("[temp 0 topk 5"), "{s}");
    assert!(s.contains("[prompt 6 tokens"), "{s}");
    assert!(s.contains("reply 12 tokens"), "{s}");
    assert!(s.contains("unknown command /bogus"), "{s}");
    assert!(s.contains("[conversation reset]"), "{s}");
    // Greedy after a reset: the two replies to "Hello" are identical.
    let replies: Vec<&str> = s.lines().filter(|l| !l.starts_with('[') && !l.is_empty() && !l.contains("unknown")).collect();
    assert!(replies.len() >= 2 && replies[0] == replies[1], "{replies:?}");
}

#[test]
fn ctrl_c_stops_a_chat_reply_but_not_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let mut child = cli()
        .args(["chat", m.to_str().unwrap(), "--max-tokens", "100000000", "--no-stop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"Hello\n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Still alive: it answers the next command.
    stdin.write_all(b"/stats\n/quit\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    let tail: String = s.chars().rev().take(300).collect::<Vec<_>>().into_iter().rev().collect();
    assert!(s.contains("[stopped]"), "{tail}");
    assert!(s.contains("[prompt 6 tokens"), "{tail}");
}

#[test]
fn train_ctrl_c_saves_and_resume_finishes_then_report() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("t.txt");
    let full = std::fs::read(root().join("data/tinyshakespeare/input.txt")).unwrap();
    std::fs::write(&text, &full[..50_000]).unwrap();
    let data = dir.path().join("data");
    assert!(run(&["prepare", text.to_str().unwrap(), "--out", data.to_str().unwrap()]).status.success());
    let out_dir = dir.path().join("run");
    let args = [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--layers",
        "1",
        "--heads",
        "2",
        "--channels",
        "32",
        "--context",
        "32",
        "--batch",
        "4",
        "--steps",
        "100000",
        "--eval-every",
        "20",
        "--sample-every",
        "20",
        "--quiet",
    ];
    let child = cli().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Wait until it has trained a few steps, then Ctrl-C (SIGINT).
    let log = out_dir.join("log.csv");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |s| s.lines().count()) < 30 {
        assert!(start.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("interrupted at step") && s.contains("--resume"), "{s}");
    assert!(checkpoint::parse(&std::fs::read(out_dir.join("model.bin")).unwrap()).is_ok());
    // A new run into the same directory is refused; resume continues (shortened with --halt-after).
    let again = run(&args);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--resume"));
    let resumed = run(&["train", "--resume", out_dir.to_str().unwrap(), "--halt-after", "10", "--quiet"]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("resuming"));
    let rep = run(&["report", out_dir.to_str().unwrap()]);
    assert!(rep.status.success(), "{}", String::from_utf8_lossy(&rep.stderr));
    let svg = std::fs::read_to_string(out_dir.join("loss.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("| throughput |") && md.contains("## step 20"), "{md}");
}

#[test]
fn checkpoints_use_llm_c_header_layout_and_train_init_fine_tunes_one() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let bytes = std::fs::read(&m).unwrap();
    let h: Vec<i32> = bytes[..32].chunks(4).map(|b| i32::from_le_bytes(b.try_into().unwrap())).collect();
    // {magic, version, maxT, V, L, NH, C, Vp}, as llm.c's train_gpt2.c reads it.
    assert_eq!(h, vec![20240326, 3, 64, 256, 2, 2, 32, 256]);
    assert!(bytes[32..1024].iter().all(|&b| b == 0));
    let text = dir.path().join("t.txt");
    std::fs::write(&text, &std::fs::read(root().join("data/tinyshakespeare/input.txt")).unwrap()[..20_000]).unwrap();
    let data = dir.path().join("d");
    assert!(run(&["prepare", text.to_str().unwrap(), "--out", data.to_str().unwrap()]).status.success());
    let out = dir.path().join("ft");
    let r = run(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--init",
        m.to_str().unwrap(),
        "--seq",
        "32",
        "--batch",
        "2",
        "--steps",
        "3",
        "--quiet",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let tuned = std::fs::read(out.join("model.bin")).unwrap();
    assert_eq!(&tuned[..1024], &bytes[..1024], "fine-tuning keeps the shape");
    assert_ne!(&tuned[1024..], &bytes[1024..], "and changes the weights");
}

#[test]
fn image_is_a_gpt_disk_with_an_aligned_fat32_esp() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let img = image(dir.path(), "x", Some(&m), Some("temperature = 0\nprompt = hi\n"), false);
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(bytes.len() % (1 << 20), 0, "not a whole number of MiB");
    assert_eq!(&bytes[510..512], &[0x55, 0xAA]); // protective MBR
    assert_eq!(bytes[450], 0xEE);
    assert_eq!(&bytes[512..520], b"EFI PART");
    // Partition entry 1 at LBA 2: ESP type GUID, first LBA 2048.
    let entry = &bytes[1024..1024 + 128];
    assert_eq!(&entry[..16], &[0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B]);
    assert_eq!(u64::from_le_bytes(entry[32..40].try_into().unwrap()), 2048);
    let last = u64::from_le_bytes(entry[40..48].try_into().unwrap());
    // The ESP is FAT32 and holds the files, byte for byte.
    let esp = &bytes[2048 * 512..(last as usize + 1) * 512];
    assert_eq!(&esp[82..90], b"FAT32   ");
    let fs = fatfs::FileSystem::new(std::io::Cursor::new(esp.to_vec()), fatfs::FsOptions::new()).unwrap();
    let read = |p: &str| {
        let mut v = vec![];
        std::io::Read::read_to_end(&mut fs.root_dir().open_file(p).unwrap(), &mut v).unwrap();
        v
    };
    assert_eq!(read("EFI/BOOT/BOOTX64.EFI"), std::fs::read(efi()).unwrap());
    assert_eq!(read("model.bin"), std::fs::read(&m).unwrap());
    assert_eq!(read("llm.cfg"), b"temperature = 0\nprompt = hi\n");
    // Bad inputs are refused by name.
    let bad = dir.path().join("bad.bin");
    std::fs::write(&bad, vec![0u8; 2000]).unwrap();
    let out = run(&[
        "image",
        "--efi",
        efi().to_str().unwrap(),
        "--model",
        bad.to_str().unwrap(),
        "--out",
        dir.path().join("y.img").to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a model file this engine reads"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The default model prints exactly what the release before the engine redesign printed
/// (fixtures/pinned/README.md: recorded at commit 8df558a), for both kernel families.
#[test]
fn default_model_output_is_pinned_for_both_kernel_families() {
    let model = default_model();
    let m = model.to_str().unwrap();
    let cases: [(&str, &[&str]); 3] = [
        ("greedy-romeo-300.txt", &["--prompt", "ROMEO:", "--steps", "300", "--temperature", "0"]),
        ("sampled-juliet-seed7-300.txt", &["--prompt", "JULIET:", "--steps", "300", "--temperature", "0.8", "--seed", "7"]),
        (
            "hot-henry-seed3-300.txt",
            &["--prompt", "KING HENRY:\\nWhat", "--steps", "300", "--temperature", "1.0", "--top-k", "0", "--top-p", "1", "--seed", "3"],
        ),
    ];
    let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    for (file, args) in cases {
        let want = std::fs::read(root().join("cli/tests/fixtures/pinned").join(file)).unwrap();
        for kernels in ["scalar", "avx2"] {
            if kernels == "avx2" && !avx2 {
                panic!("this machine has no AVX2+FMA: the FMA family cannot be checked here");
            }
            let out = cli().args(["generate", m, "--kernels", kernels]).args(args).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&want), "{file} with --kernels {kernels}");
        }
    }
}

/// A stand-in for the UEFI app: just the headers `image` checks (MZ, PE, x86-64, EFI
/// application), nothing that runs.
fn dummy_efi(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("BOOTX64.EFI");
    std::fs::write(&p, dummy_efi_bytes()).unwrap();
    p
}

fn dummy_efi_bytes() -> Vec<u8> {
    let mut v = vec![0u8; 512];
    v[..2].copy_from_slice(b"MZ");
    v[0x3C..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    v[0x40..0x44].copy_from_slice(b"PE\0\0");
    v[0x44..0x46].copy_from_slice(&0x8664u16.to_le_bytes());
    v[0x40 + 24 + 68..0x40 + 24 + 70].copy_from_slice(&10u16.to_le_bytes());
    v
}

#[test]
fn image_refuses_an_output_that_is_not_a_regular_file() {
    // Never a real device here (the tests may run as root): a named pipe, a directory and a
    // symlink to the pipe stand for /dev/sdX. Before the check, the image was renamed over them.
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let efi = dummy_efi(dir.path());
    let fifo = dir.path().join("pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let link = dir.path().join("link-to-pipe");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    for (out, what) in [(&fifo, "named pipe"), (&link, "named pipe"), (&sub, "directory")] {
        let r = run(&["image", "--efi", efi.to_str().unwrap(), "--model", m.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "--out {} succeeded", out.display());
        assert!(err.starts_with("error:") && err.contains(what) && err.contains("dd"), "{err}");
    }
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the pipe was replaced");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the symlink was replaced");
    assert!(sub.is_dir());
    // No temporary file is left beside any of them, and a regular file is still replaced.
    let names = |d: &std::path::Path| {
        std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(names(dir.path()), ["BOOTX64.EFI", "link-to-pipe", "pipe", "small.bin", "sub"].map(String::from).into());
    assert!(names(&sub).is_empty());
    let img = dir.path().join("old.img");
    std::fs::write(&img, b"old").unwrap();
    let r = run(&["image", "--efi", efi.to_str().unwrap(), "--model", m.to_str().unwrap(), "--out", img.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(&std::fs::read(&img).unwrap()[512..520], b"EFI PART");
    // A build that fails half-way (a directory where the tokenizer file should be; --unchecked
    // lets it through the checks up front) removes its temporary file.
    let r = run(&[
        "image",
        "--unchecked",
        "--efi",
        efi.to_str().unwrap(),
        "--tokenizer",
        sub.to_str().unwrap(),
        "--out",
        dir.path().join("new.img").to_str().unwrap(),
    ]);
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("cannot copy"), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(!names(dir.path()).iter().any(|n| n.contains("new") || n.contains("tmp")), "{:?}", names(dir.path()));
}

#[test]
fn image_refuses_to_overwrite_one_of_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model(dir.path());
    let original = std::fs::read(&m).unwrap();
    let efi = dummy_efi(dir.path());
    let cfg = dir.path().join("llm.cfg");
    std::fs::write(&cfg, "temperature = 0\n").unwrap();
    let link = dir.path().join("link.bin");
    std::os::unix::fs::symlink(&m, &link).unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    // Run from the directory, so that relative and `./` spellings name the same files.
    let image_in_dir = |args: &[&str]| cli().current_dir(dir.path()).arg("image").arg("--efi").arg(&efi).args(args).output().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--model", "small.bin", "--out", "small.bin"], "--model"),
        (&["--model", "small.bin", "--out", "./sub/../small.bin"], "--model"),
        (&["--model", "link.bin", "--out", "small.bin"], "--model"),
        (&["--model", "small.bin", "--out", "link.bin"], "--model"),
        (&["--model", "small.bin", "--config", "llm.cfg", "--out", "./llm.cfg"], "--config"),
        (&["--model", "small.bin", "--out", "BOOTX64.EFI"], "--efi"),
    ];
    for (args, which) in cases {
        let r = image_in_dir(args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{args:?} succeeded");
        assert!(err.starts_with("error:") && err.contains(which) && err.contains("is also"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&m).unwrap(), original, "the model was overwritten");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "temperature = 0\n");
    assert_eq!(std::fs::read(&efi).unwrap(), dummy_efi_bytes());
    // An output that does not exist yet, beside the inputs, is fine.
    let r = image_in_dir(&["--model", "./small.bin", "--out", "sub/../disk.img"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(dir.path().join("disk.img").is_file());
}

/// Token files of the first `bytes` of Tiny Shakespeare in DIR/d.
fn prepared_data(dir: &std::path::Path, bytes: usize) -> std::path::PathBuf {
    let text = dir.join("t.txt");
    std::fs::write(&text, &std::fs::read(root().join("data/tinyshakespeare/input.txt")).unwrap()[..bytes]).unwrap();
    let data = dir.join("d");
    assert!(run(&["prepare", text.to_str().unwrap(), "--out", data.to_str().unwrap()]).status.success());
    data
}

fn all_finite(checkpoint_bytes: &[u8]) -> bool {
    checkpoint_bytes[1024..].chunks_exact(4).all(|b| f32::from_le_bytes(b.try_into().unwrap()).is_finite())
}

#[test]
fn diverging_training_stops_with_an_error_and_never_saves_non_finite_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared_data(dir.path(), 20_000);
    let out = dir.path().join("run");
    let r = run(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--layers",
        "1",
        "--heads",
        "2",
        "--channels",
        "32",
        "--context",
        "32",
        "--batch",
        "2",
        "--steps",
        "30",
        "--lr",
        "1e10",
        "--warmup",
        "1",
        "--eval-every",
        "1000",
        "--checkpoint-every",
        "1",
        "--sample-every",
        "0",
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(!r.status.success(), "a diverging run exited 0:\n{stdout}");
    assert!(err.starts_with("error:") && err.contains("diverged at step") && err.contains("--lr"), "{err}");
    assert!(!stdout.contains("69.07"), "a clamped loss was shown:\n{stdout}");
    assert!(err.contains("stopped without saving") && err.contains("keeps the checkpoint of step"), "{err}");
    // What is on disk is the last checkpoint before the divergence: finite, and it resumes
    // (into the same error, leaving it as it was).
    let model = std::fs::read(out.join("model.bin")).unwrap();
    assert!(all_finite(&model), "model.bin holds non-finite weights");
    let log = std::fs::read_to_string(out.join("log.csv")).unwrap();
    assert!(!log.to_lowercase().contains("nan") && !log.contains("inf") && !log.contains("69.07"), "{log}");
    let again = run(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && again_err.contains("diverged at step") && again_err.contains("keeps its last checkpoint"),
        "{again_err}"
    );
    assert_eq!(std::fs::read(out.join("model.bin")).unwrap(), model);
    // Diverging at the first validation, before any checkpoint, writes no model at all.
    let out2 = dir.path().join("run2");
    let r = run(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "--layers",
        "1",
        "--heads",
        "2",
        "--channels",
        "32",
        "--context",
        "32",
        "--batch",
        "2",
        "--steps",
        "30",
        "--lr",
        "1e10",
        "--warmup",
        "1",
        "--eval-every",
        "1",
        "--sample-every",
        "0",
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("diverged at step 1 (validation loss") && err.contains("no checkpoint was written"),
        "{err}"
    );
    assert!(!out2.join("model.bin").exists() && !out2.join("state.bin").exists());
}

#[test]
fn train_init_refuses_a_checkpoint_with_non_finite_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared_data(dir.path(), 20_000);
    let cfg = llm_testkit::config(2, 2, 32, 64, 256, 256);
    for bad in [f32::NAN, f32::INFINITY] {
        let mut params = llm_testkit::random_params(&cfg, 1, 0.3);
        params[1234] = bad;
        let m = dir.path().join("nan.bin");
        std::fs::write(&m, checkpoint::encode_v3(&cfg, &params)).unwrap();
        let out = dir.path().join("ft");
        let r = run(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--init",
            m.to_str().unwrap(),
            "--seq",
            "32",
            "--batch",
            "2",
            "--steps",
            "3",
            "--quiet",
        ]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "training from a {bad} checkpoint succeeded");
        assert!(err.starts_with("error:") && err.contains("non-finite") && err.contains("nan.bin"), "{err}");
        assert!(!out.join("model.bin").exists() && !out.join("state.bin").exists());
    }
}

/// A llama2.c checkpoint runs on the host with its SentencePiece tokenizer: inspect shows
/// the family, generate needs the tokenizer (flag or tokenizer.bin beside the model) and
/// prints the same text either way; the prompt's BOS and merges come from the tokenizer.
#[test]
fn llama2c_models_run_with_their_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let m = llama2c_model(dir.path(), "stories.bin");
    let out = run(&["inspect", m.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    for want in [
        "llama2.c checkpoint (fp32, separate classifier)",
        "arch        llama",
        "NH = 8, 4 key/value heads (head size 8)",
        "F  = 172",
        "V  = 2000",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
    // No tokenizer: a clear error naming the fix.
    let out = run(&["generate", m.to_str().unwrap(), "--prompt", "Once upon a time", "--steps", "5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs its tokenizer"), "{}", String::from_utf8_lossy(&out.stderr));
    // A tokenizer of the wrong format (llm.c's) is refused.
    let wrong = dir.path().join("llmc-tok.bin");
    std::fs::write(&wrong, llm_engine::Tokenizer::byte_table_file()).unwrap();
    let out = run(&["generate", m.to_str().unwrap(), "--tokenizer", wrong.to_str().unwrap(), "--steps", "5"]);
    assert!(!out.status.success());
    let generate = |extra: &[&str]| {
        let mut args = vec!["generate", m.to_str().unwrap(), "--prompt", "Once upon a time", "--steps", "30", "--temperature", "0"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let tok = spm_tokenizer();
    let with_flag = generate(&["--tokenizer", tok.to_str().unwrap()]);
    std::fs::copy(&tok, dir.path().join("tokenizer.bin")).unwrap();
    let beside = generate(&[]);
    assert_eq!(with_flag, beside);
    assert!(!beside.is_empty());
    // The greedy continuation is the reference's argmax chain (testkit's naive f64 Llama),
    // starting from the tokenizer's encoding of the prompt (BOS + merges).
    let bytes = std::fs::read(&m).unwrap();
    let reference = llm_testkit::llama::LlamaRef::from_llama2c(&bytes);
    let spm = llm_engine::tokenizer::spm::SpmTokenizer::from_llama2c_bytes(&std::fs::read(&tok).unwrap(), 2000).unwrap();
    let mut ids = Vec::new();
    spm.encode(b"Once upon a time", true, &mut ids);
    assert_eq!(ids[0], 1, "BOS first");
    let mut text = Vec::new();
    for _ in 0..30 {
        let logits = reference.logits_all(&ids);
        let last = logits.last().unwrap();
        let mut order: Vec<usize> = (0..last.len()).collect();
        order.sort_by(|&a, &b| last[b].total_cmp(&last[a]));
        assert!(last[order[0]] - last[order[1]] > 1e-3, "near tie: pick another seed");
        let next = order[0] as u32;
        if next == 1 || next == 2 {
            break;
        }
        text.extend_from_slice(spm.decode(*ids.last().unwrap(), next));
        ids.push(next);
    }
    // Printed through the console filter (control characters dropped, bad UTF-8 replaced).
    let mut printed = String::new();
    let mut p = llm_engine::Utf8Printer::new();
    p.push(&text, &mut |c| printed.push(c));
    p.flush(&mut |c| printed.push(c));
    assert_eq!(String::from_utf8_lossy(&beside), printed);
}

/// `export` writes the default model as a GGUF file (gpt2, byte vocabulary) that the engine
/// reads back to the same numbers: the f32 export prints the pinned text for both kernel
/// families; f16 and q8_0 exports load and run; bad requests are refused.
#[test]
fn export_to_gguf_reads_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let model = default_model();
    let want = std::fs::read(root().join("cli/tests/fixtures/pinned/greedy-romeo-300.txt")).unwrap();
    for ty in ["f32", "f16", "q8_0"] {
        let out = dir.path().join(format!("sh-{ty}.gguf"));
        let r = run(&["export", model.to_str().unwrap(), "--out", out.to_str().unwrap(), "--type", ty]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let i = run(&["inspect", out.to_str().unwrap()]);
        let s = String::from_utf8_lossy(&i.stdout);
        assert!(s.contains("GGUF version 3") && s.contains("arch        gpt2") && s.contains("V  = 256"), "{s}");
        for kernels in ["scalar", "avx2"] {
            let g = run(&[
                "generate",
                out.to_str().unwrap(),
                "--prompt",
                "ROMEO:",
                "--steps",
                "300",
                "--temperature",
                "0",
                "--kernels",
                kernels,
            ]);
            assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
            if ty == "f32" {
                assert_eq!(String::from_utf8_lossy(&g.stdout), String::from_utf8_lossy(&want), "{ty} {kernels}");
            } else {
                assert!(g.stdout.len() > 200, "{ty}: {}", String::from_utf8_lossy(&g.stdout));
            }
        }
    }
    // Refused: an unknown type, the input as output, a model that is not byte-level.
    let bad = run(&["export", model.to_str().unwrap(), "--out", dir.path().join("x.gguf").to_str().unwrap(), "--type", "q3"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--type"));
    let same = run(&["export", model.to_str().unwrap(), "--out", model.to_str().unwrap()]);
    assert!(!same.status.success());
    assert_eq!(std::fs::read(&model).unwrap().len(), 3371008, "the input was overwritten");
    let v300 = dir.path().join("v300.bin");
    let cfg = llm_testkit::config(1, 1, 32, 8, 300, 320);
    std::fs::write(&v300, checkpoint::encode_v3(&cfg, &llm_testkit::random_params(&cfg, 1, 0.1))).unwrap();
    let r = run(&["export", v300.to_str().unwrap(), "--out", dir.path().join("v.gguf").to_str().unwrap()]);
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("V = 256"));
}

/// The two real models on the host: prompt token ids and a greedy continuation pinned to
/// what llama.cpp prints for the same file (llama.cpp 0c1e570 from the llama-cpp-python
/// 0.3.36 sdist, `llama-tokenize --ids` and `llama-completion --temp 0 -no-cnv -n 24`;
/// scripts/compare-llamacpp.sh, docs/LLAMACPP-COMPARISON.md). Both prompts agree with
/// llama.cpp for all 48 tokens compared there; both kernel families print the same here.
#[test]
fn real_models_match_llama_cpp_on_pinned_prompts() {
    let cases: [(&str, &str, &[u32], &str); 2] = [
        (
            GEMMA,
            "Question: What is the boiling point of water at sea level, in degrees Celsius?\nAnswer:",
            &[
                2, 14977, 236787, 2900, 563, 506, 31476, 1523, 529, 1813, 657, 5442, 1984, 236764, 528, 10674, 57356, 236881, 107, 7925,
                236787,
            ],
            " 100°C\nQuestion: What is the boiling point of water at 1000 meters above",
        ),
        (
            QWEN,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWrite a Python function that checks whether a number is prime.<|im_end|>\n<|im_start|>assistant\n",
            &[
                151644, 8948, 198, 2610, 525, 1207, 16948, 11, 3465, 553, 54364, 14817, 13, 1446, 525, 264, 10950, 17847, 13, 151645, 198,
                151644, 872, 198, 7985, 264, 13027, 729, 429, 12341, 3425, 264, 1372, 374, 10250, 13, 151645, 198, 151644, 77091, 198,
            ],
            "Here's a Python function to check if a number is prime:\n\n```python\ndef is_prime(number):\n    \"\"\"\n   ",
        ),
    ];
    for (file, prompt, ids, text) in cases {
        let model = real_model(file);
        let bytes = std::fs::read(&model).unwrap();
        let loaded = llm_engine::load(&bytes).unwrap();
        let mut got = Vec::new();
        // llama.cpp parses control tokens in a prompt: --parse-special here.
        let tok = loaded.tokenizer.as_ref().unwrap();
        tok.encode_prompt_with(prompt.as_bytes(), true, llm_engine::tokenizer::Specials::Parse, &mut got);
        assert_eq!(got, ids, "{file}: prompt ids");
        if prompt.contains("<|im_start|>") {
            // Without it the markers are text, and the prompt is longer.
            let mut text = Vec::new();
            tok.encode_prompt(prompt.as_bytes(), true, &mut text);
            assert!(text.len() > got.len() + 10 && !text.contains(&151644) && !text.contains(&151645), "{text:?}");
        }
        let escaped = prompt.replace('\\', "\\\\").replace('\n', "\\n");
        for kernels in ["scalar", "avx2"] {
            let out = run(&[
                "generate",
                model.to_str().unwrap(),
                "--parse-special",
                "--prompt",
                &escaped,
                "--steps",
                "24",
                "--temperature",
                "0",
                "--threads",
                "2",
                "--kernels",
                kernels,
            ]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), text, "{file} with {kernels}");
        }
    }
}

/// Prompt ids of a Unicode text (accents, CJK, emoji with a skin tone) for both real models,
/// pinned to `llama-tokenize --ids` of the same files (llama.cpp 0c1e570).
#[test]
fn real_model_tokenizers_match_llama_cpp_on_unicode() {
    let text = "Café, naïve, résumé, Ærø, Straße; 東京は日本の首都です。北京欢迎你 🙂🚀👍🏽 «ça va?» — done.";
    let cases: [(&str, &[u32]); 2] = [
        (
            GEMMA,
            &[
                2, 160319, 236859, 236764, 120362, 236764, 118515, 236764, 129016, 236750, 237465, 236764, 80176, 236793, 86459, 237048,
                76444, 120211, 3652, 236924, 32707, 61223, 237408, 57235, 242015, 240493, 242713, 2789, 7873, 5380, 116581, 2192, 3028,
                236761,
            ],
        ),
        (
            QWEN,
            &[
                34, 2577, 963, 11, 94880, 586, 11, 9333, 1242, 963, 11, 1683, 228, 81, 6151, 11, 26647, 23455, 26, 60596, 109, 46553,
                15322, 131888, 106114, 37541, 1773, 68990, 100437, 56568, 27484, 145836, 144349, 145375, 12486, 17472, 11164, 30, 12992,
                1959, 2814, 13,
            ],
        ),
    ];
    for (file, want) in cases {
        let bytes = std::fs::read(real_model(file)).unwrap();
        let loaded = llm_engine::load(&bytes).unwrap();
        let tok = loaded.tokenizer.as_ref().unwrap();
        let mut got = Vec::new();
        tok.encode_prompt(text.as_bytes(), true, &mut got);
        assert_eq!(got, want, "{file}");
        // And back: the tokens print the text (after a BOS, SentencePiece drops no space here).
        let mut back = Vec::new();
        let mut prev = None;
        for &t in &got {
            back.extend_from_slice(tok.decode_after(prev, t));
            prev = Some(t);
        }
        assert_eq!(String::from_utf8_lossy(&back), text, "{file}");
    }
}

/// The Qwen model as a chat assistant on the host: the ChatML template with Qwen's default
/// system message is applied, and the reply ends at <|im_end|> (before --max-tokens).
#[test]
fn qwen_chat_uses_its_template_and_stops_at_the_end_of_turn() {
    let model = real_model(QWEN);
    let mut child = cli()
        .args(["chat", model.to_str().unwrap(), "--temperature", "0", "--max-tokens", "40", "--threads", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"What is 2+2? Answer with one number.\n/stats\n/quit\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains('4'), "{s}");
    // The prompt is the ChatML turn with Qwen's default system message.
    let bytes = std::fs::read(&model).unwrap();
    let loaded = llm_engine::load(&bytes).unwrap();
    let mut turn = Vec::new();
    let t = llm_engine::template::Template::detect(loaded.chat_template);
    assert_eq!(t, llm_engine::template::Template::ChatMl);
    t.user_turn(
        llm_engine::template::Template::default_system(loaded.chat_template),
        "What is 2+2? Answer with one number.",
        true,
        &mut turn,
    );
    let mut ids = Vec::new();
    t.encode(loaded.tokenizer.as_ref().unwrap(), &turn, true, &mut ids).unwrap();
    assert_eq!(ids.len(), 41);
    assert!(s.contains(&format!("[prompt {} tokens", ids.len())), "{s}");
    let made: usize = s.split("reply ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(made < 40, "the reply did not stop at <|im_end|>: {s}");
    assert!(!s.contains("im_end") && !s.contains("im_start"), "control tokens printed: {s}");
}

/// The host's worker pool (cli/src/spin_pool.rs) does not change a single bit: the real Qwen
/// model (8-bit activation kernels) samples the same text with 1, 2 and all threads.
#[test]
fn sampled_text_is_the_same_for_any_thread_count() {
    let model = real_model(QWEN);
    let run = |threads: &str| {
        let out = cli()
            .args(["generate", model.to_str().unwrap(), "--prompt", "def fib(n):", "--steps", "24", "--temperature", "0.9"])
            .args(["--seed", "7", "--threads", threads])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let one = run("1");
    assert!(one.len() > 20, "{}", String::from_utf8_lossy(&one));
    assert_eq!(run("2"), one);
    assert_eq!(run("0"), one);
}
