//! The `boot` and `image` subcommands (cli/src/boot.rs, image.rs) and the firmware console:
//! `boot` and `image` refuse what cannot work, with one clear error line, instead of hanging:
//! files that are not bootable images, a --efi that is not an EFI application, a tokenizer
//! that cannot be used, too little memory, a screenshot that cannot be saved, a KVM that does
//! not work, a script with no --timeout; and the firmware console keeps up with a paste.
//! Every run here has a deadline: a hang fails the test instead of stalling the suite.

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Run {
    /// None: still running at the deadline (killed).
    code: Option<i32>,
    stdout: String,
    stderr: String,
    secs: f64,
}

/// Runs `cmd` (stdin closed) and kills it at the deadline.
fn run_with_deadline(mut cmd: Command, deadline_s: u64) -> Run {
    let start = Instant::now();
    let child = own_group(&mut cmd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_with_deadline(child, start, deadline_s)
}

/// Starts the command in a process group of its own, so that a hang can be ended with QEMU.
fn own_group(cmd: &mut Command) -> &mut Command {
    std::os::unix::process::CommandExt::process_group(cmd, 0)
}

fn wait_with_deadline(mut child: Child, start: Instant, deadline_s: u64) -> Run {
    // Either pipe may already be taken by the caller: then it reads as empty here.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if start.elapsed() > Duration::from_secs(deadline_s) {
            // The CLI and its QEMU: the process group this test started for them.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run { code, stdout: out.join().unwrap(), stderr: err.join().unwrap(), secs: start.elapsed().as_secs_f64() }
}

fn assert_refused(r: &Run, what: &str, needle: &str) {
    assert!(r.code.is_some(), "{what}: still running after {:.0} s (hang); stderr:\n{}", r.secs, r.stderr);
    assert_ne!(r.code, Some(0), "{what}: exit status 0; stderr:\n{}", r.stderr);
    let first = r.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(first.contains(needle), "{what}: expected an error line with {needle:?}; stderr:\n{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{what}: panic:\n{}", r.stderr);
}

fn boot_cmd(img: &Path, extra: &[&str]) -> Command {
    let mut c = cli();
    c.arg("boot").arg(img).args(extra);
    c
}

/// A short scripted image of the default model (a few tokens).
fn scripted_image(dir: &Path, name: &str) -> std::path::PathBuf {
    image(dir, name, Some(&default_model()), Some("temperature = 0\nmax_tokens = 4\nprompt = ROMEO:\n"), false)
}

/// Finding (issue 13): `boot` of a file that is not a bootable image sat in the OVMF shell forever.
#[test]
fn boot_refuses_a_file_that_is_not_a_bootable_image() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a disk image\n".repeat(4000)).unwrap();
    let empty = dir.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    // A real image without EFI/BOOT/BOOTX64.EFI on its ESP, and one without a GPT.
    let good = scripted_image(dir.path(), "good");
    let no_app = dir.path().join("noapp.img");
    std::fs::copy(&good, &no_app).unwrap();
    {
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&no_app).unwrap();
        let esp = fscommon::StreamSlice::new(&mut f, 1 << 20, std::fs::metadata(&good).unwrap().len() - (1 << 20)).unwrap();
        let fs = fatfs::FileSystem::new(esp, fatfs::FsOptions::new()).unwrap();
        fs.root_dir().remove("EFI/BOOT/BOOTX64.EFI").unwrap();
    }
    let no_gpt = dir.path().join("nogpt.img");
    let mut bytes = std::fs::read(&good).unwrap();
    bytes[512..1024].fill(0); // the primary GPT header
    let len = bytes.len();
    bytes[len - 512..].fill(0); // and the backup
    std::fs::write(&no_gpt, bytes).unwrap();
    for (img, needle) in [
        (&text, "is not a bootable disk image"),
        (&empty, "is not a bootable disk image"),
        (&no_app, "no EFI/BOOT/BOOTX64.EFI"),
        (&no_gpt, "no valid GPT"),
    ] {
        let r = run_with_deadline(boot_cmd(img, &[]), 60);
        assert_refused(&r, &img.display().to_string(), needle);
        assert!(r.secs < 20.0, "{}: took {:.0} s", img.display(), r.secs);
    }
}

/// A minimal PE/COFF header: MZ, e_lfanew = 0x40, "PE\0\0", machine, subsystem.
fn pe(machine: u16, subsystem: u16) -> Vec<u8> {
    let mut v = vec![0u8; 512];
    v[..2].copy_from_slice(b"MZ");
    v[0x3C..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    v[0x40..0x44].copy_from_slice(b"PE\0\0");
    v[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
    v[0x40 + 24..0x40 + 26].copy_from_slice(&0x20Bu16.to_le_bytes()); // PE32+
    v[0x40 + 24 + 68..0x40 + 24 + 70].copy_from_slice(&subsystem.to_le_bytes());
    v
}

/// Finding (issue 13): `image` accepted an --efi that is not a PE/COFF EFI application.
#[test]
fn image_refuses_an_efi_that_is_not_an_x86_64_efi_application() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("text.efi", b"#!/bin/sh\necho hello\n".to_vec(), "no MZ"),
        ("empty.efi", Vec::new(), "no MZ"),
        ("dos.efi", b"MZ not really an EFI application".repeat(4), "no PE signature"),
        ("arm64.efi", pe(0xAA64, 10), "machine type 0xaa64"),
        ("console.efi", pe(0x8664, 3), "subsystem 3"),
    ];
    for (name, bytes, needle) in cases {
        let efi = dir.path().join(name);
        std::fs::write(&efi, bytes).unwrap();
        let out = dir.path().join(format!("{name}.img"));
        let mut c = cli();
        c.args(["image", "--efi"]).arg(&efi).arg("--model").arg(default_model()).arg("--out").arg(&out);
        let r = run_with_deadline(c, 60);
        assert_refused(&r, name, needle);
        assert!(r.stderr.contains(name), "{name}: the error does not name the file: {}", r.stderr);
        assert!(!out.exists(), "{name}: an image was written");
    }
    // A minimal header that passes is copied as it is.
    let ok = dir.path().join("ok.efi");
    std::fs::write(&ok, pe(0x8664, 10)).unwrap();
    let mut c = cli();
    c.args(["image", "--efi"]).arg(&ok).arg("--out").arg(dir.path().join("ok.img"));
    let r = run_with_deadline(c, 60);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

/// An llm.c tokenizer file (version 1) of `vocab` one-byte tokens: it parses.
fn llmc_tokenizer(vocab: u32) -> Vec<u8> {
    let mut v = vec![0u8; 1024];
    v[..4].copy_from_slice(&llm_engine::tokenizer::TOKENIZER_MAGIC.to_le_bytes());
    v[4..8].copy_from_slice(&1u32.to_le_bytes());
    v[8..12].copy_from_slice(&vocab.to_le_bytes());
    for t in 0..vocab {
        v.extend_from_slice(&[1, t as u8]);
    }
    v
}

/// Finding (issue 13): `image` accepted a --tokenizer that cannot be used.
#[test]
fn image_refuses_a_tokenizer_without_a_model_or_with_a_gguf_model() {
    use llm_engine::quant::BlockType;
    use llm_testkit::gguf_ref::{Arch, ArchShape, random_gguf};
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"not a tokenizer at all").unwrap();
    let good_tok = dir.path().join("tok.bin");
    std::fs::write(&good_tok, llmc_tokenizer(256)).unwrap();
    let shape = ArchShape {
        arch: Arch::Gpt2,
        vocab: 64,
        c: 64,
        n_layers: 1,
        n_heads: 2,
        n_kv_heads: 2,
        head_dim: 32,
        ffn: 128,
        context: 32,
        eps: 1e-5,
        rope_base: 10_000.0,
        window: 0,
        tied: true,
    };
    let gguf = dir.path().join("m.gguf");
    std::fs::write(&gguf, random_gguf(&shape, BlockType::F16, 1)).unwrap();
    let img = |args: &[&std::ffi::OsStr]| {
        let out = dir.path().join("x.img");
        let _ = std::fs::remove_file(&out);
        let mut c = cli();
        c.args(["image", "--efi"]).arg(efi()).args(args).arg("--out").arg(&out);
        (run_with_deadline(c, 60), out.exists())
    };
    // A tokenizer that does not parse, with no model to check it against.
    let (r, written) = img(&["--tokenizer".as_ref(), garbage.as_os_str()]);
    assert_refused(&r, "tokenizer without a model", "without --model");
    assert!(!written);
    // A well-formed llm.c tokenizer with a GGUF model (the GGUF carries its own).
    let (r, written) = img(&["--model".as_ref(), gguf.as_os_str(), "--tokenizer".as_ref(), good_tok.as_os_str()]);
    assert_refused(&r, "tokenizer with a GGUF model", "carries its own tokenizer");
    assert!(!written);
    // The GGUF alone is fine, and so is a tokenizer that parses with an llm.c model.
    let (r, written) = img(&["--model".as_ref(), gguf.as_os_str()]);
    assert!(r.code == Some(0) && written, "{}", r.stderr);
    let (r, written) = img(&["--model".as_ref(), default_model().as_os_str(), "--tokenizer".as_ref(), good_tok.as_os_str()]);
    assert!(r.code == Some(0) && written, "{}", r.stderr);
    // With a model, a tokenizer that does not parse is refused by the engine's loader.
    let (r, written) = img(&["--model".as_ref(), default_model().as_os_str(), "--tokenizer".as_ref(), garbage.as_os_str()]);
    assert_refused(&r, "garbage tokenizer with a model", "garbage.bin");
    assert!(!written);
}

/// Finding (issue 13): `boot --screenshot /nonexistent/dir/s.png` never powered off.
#[test]
fn boot_refuses_a_screenshot_into_a_missing_directory_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let img = scripted_image(dir.path(), "shot");
    let r = run_with_deadline(boot_cmd(&img, &["--screenshot", "/nonexistent/dir/s.png"]), 90);
    assert_refused(&r, "--screenshot /nonexistent/dir/s.png", "/nonexistent/dir");
    assert!(r.secs < 20.0, "took {:.0} s: QEMU was started", r.secs);
    assert!(r.stdout.is_empty(), "QEMU was started: {}", r.stdout);
    let r = run_with_deadline(boot_cmd(&img, &["--screenshot", dir.path().to_str().unwrap()]), 90);
    assert_refused(&r, "--screenshot DIR", "is a directory");
}

/// Finding (issue 13): a screenshot that failed after power-off left QEMU running.
/// The screenshot's directory disappears while the machine runs: the screendump fails after
/// power-off, and QEMU (paused by -no-shutdown) is still ended, with an error.
#[test]
fn boot_ends_qemu_when_the_screenshot_fails_after_power_off() {
    let dir = tempfile::tempdir().unwrap();
    let img = scripted_image(dir.path(), "shotfail");
    let shots = dir.path().join("shots");
    std::fs::create_dir(&shots).unwrap();
    let start = Instant::now();
    let mut cmd = boot_cmd(&img, &["--screenshot", shots.join("s.png").to_str().unwrap()]);
    let mut child = own_group(&mut cmd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // QEMU is running once the firmware prints anything.
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    let _ = out.read(&mut first);
    std::fs::remove_dir(&shots).unwrap();
    let rest = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let r = wait_with_deadline(child, start, 120);
    let _ = rest.join();
    assert!(r.code.is_some(), "QEMU was left running after the failed screenshot; stderr:\n{}", r.stderr);
    assert_ne!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("error: screenshot failed"), "{}", r.stderr);
}

/// Finding (issue 13): `boot --memory 16M` hung with no output.
#[test]
fn boot_refuses_memory_below_what_the_image_needs() {
    let dir = tempfile::tempdir().unwrap();
    let img = scripted_image(dir.path(), "mem");
    for m in ["16M", "1M", "32M"] {
        let r = run_with_deadline(boot_cmd(&img, &["--memory", m, "--timeout", "60"]), 90);
        assert_refused(&r, &format!("--memory {m}"), "is too small for this image");
        assert!(r.stderr.contains("at least"), "{}", r.stderr);
        assert!(r.secs < 20.0, "--memory {m}: took {:.0} s", r.secs);
    }
    let r = run_with_deadline(boot_cmd(&img, &["--memory", "lots", "--timeout", "60"]), 90);
    assert_refused(&r, "--memory lots", "not a size");
}

/// Finding (issue 13): `boot --memory 1M` exited 0 having run nothing.
/// QEMU exits 0 when the machine resets (-no-reboot): a CPU without long mode resets in the
/// firmware, long before the app. That is not a successful boot.
#[test]
fn boot_where_the_app_never_starts_is_not_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let img = scripted_image(dir.path(), "486");
    let r = run_with_deadline(boot_cmd(&img, &["--cpu", "486", "--timeout", "60"]), 90);
    assert_refused(&r, "--cpu 486", "never started");
}

/// Finding (issue 13): `--accel kvm` where KVM fails dumped registers, then hung.
/// Where /dev/kvm cannot be opened the boot is refused before QEMU starts; where it opens but
/// KVM cannot run the guest (nested virtualisation), QEMU's KVM error ends the machine.
/// Where KVM works, the boot succeeds.
#[test]
fn boot_with_a_kvm_that_does_not_work_says_so_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let img = scripted_image(dir.path(), "kvm");
    let r = run_with_deadline(boot_cmd(&img, &["--accel", "kvm", "--timeout", "100"]), 120);
    if r.code == Some(0) && r.stdout.contains("script done") {
        return; // a working KVM
    }
    assert_refused(&r, "--accel kvm", "kvm");
    assert!(r.stderr.contains("--accel tcg"), "{}", r.stderr);
    assert!(r.secs < 60.0, "took {:.0} s", r.secs);
}

/// Finding (issue 13): a non-interactive boot had no default --timeout and could wait forever.
/// An interactive image with stdin not a terminal and no --timeout: the default timeout ends
/// it (shortened here through the hidden LLM_BAREMETAL_BOOT_TIMEOUT; the real default is in
/// --help).
#[test]
fn boot_from_a_script_has_a_default_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "chat", Some(&default_model()), None, false);
    let mut c = boot_cmd(&img, &[]);
    c.env("LLM_BAREMETAL_BOOT_TIMEOUT", "25");
    let r = run_with_deadline(c, 120);
    assert_eq!(r.code, Some(124), "no default timeout (killed by the test after {:.0} s); stderr:\n{}", r.secs, r.stderr);
    assert!(r.stderr.contains("default --timeout"), "{}", r.stderr);
    let help = cli().args(["boot", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("1800 s"), "--help does not document the default");
}

/// Finding (issue 13): the console dropped keys typed during a reply, lost lines after a paste and cut long lines silently.
/// The serial console keeps up with typing ahead and pasting: a line typed while a reply
/// streams is kept for the next prompt (it used to be dropped: only Esc / Ctrl-C were looked
/// at), a pasted 1,000-character line is taken in within seconds (it took over 10 s), and a
/// line over the 1,024-byte limit is refused with a message (it used to be cut without
/// notice), with the line after it still handled.
#[test]
fn serial_console_keeps_typed_ahead_lines_and_keeps_up_with_a_paste() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "paste", Some(&default_model()), Some("temperature = 0\nmax_tokens = 8\n"), false);
    let start = Instant::now();
    let mut cmd = boot_cmd(&img, &["--timeout", "170"]);
    let mut child = own_group(&mut cmd).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let mut out = child.stdout.take().unwrap();
    let sink = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let end_group = |child: &mut Child| {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
        let _ = child.wait();
    };
    let wait_for = |child: &mut Child, what: &str, count: usize, secs: u64| -> Option<f64> {
        let t = Instant::now();
        loop {
            if clean(&seen.lock().unwrap()).matches(what).count() >= count {
                return Some(t.elapsed().as_secs_f64());
            }
            if t.elapsed().as_secs() >= secs || start.elapsed().as_secs() > 170 {
                end_group(child);
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let transcript = || clean(&seen.lock().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    assert!(wait_for(&mut child, "\n> ", 1, 120).is_some(), "no prompt:\n{}", transcript());
    std::thread::sleep(Duration::from_millis(300));
    // A prompt and, at once, a command: the command arrives while the reply streams.
    stdin.write_all(b"ROMEO:\r/reset\r").unwrap();
    stdin.flush().unwrap();
    assert!(
        wait_for(&mut child, "[conversation reset]", 1, 60).is_some(),
        "the line typed during the reply was dropped:\n{}",
        transcript()
    );
    assert!(wait_for(&mut child, "\n> ", 3, 20).is_some(), "{}", transcript());
    // A 1,000-character line (an unknown command: answered at once) is read within seconds.
    let long = format!("/{}", "z".repeat(999));
    let t = Instant::now();
    stdin.write_all(format!("{long}\r").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let answered = wait_for(&mut child, &format!("unknown command {long}"), 1, 60);
    assert!(answered.is_some(), "the pasted line was not answered:\n{}", transcript());
    let secs = t.elapsed().as_secs_f64();
    assert!(secs < 6.0, "a pasted 1,000-character line took {secs:.1} s to be read");
    assert!(wait_for(&mut child, "\n> ", 4, 20).is_some(), "{}", transcript());
    // A line over the limit, then /quit in the same paste: the first is refused with a
    // message, the second still powers the machine off.
    stdin.write_all(format!("{}\r/quit\r", "y".repeat(1500)).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let r = wait_with_deadline(child, start, 170);
    reader.join().unwrap();
    let text = transcript();
    assert!(text.contains("[line too long: 1500 bytes, at most 1024: not used]"), "no message for the long line:\n{text}");
    assert_eq!(text.matches("[prompt ").count(), 1, "the long line was used as a prompt:\n{text}");
    assert_eq!(r.code, Some(0), "/quit after the long line was not handled (killed after {:.0} s):\n{text}\n{}", r.secs, r.stderr);
    assert!(text.contains("powering off."), "{text}");
}
