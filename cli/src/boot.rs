//! `boot`: runs the disk image in QEMU with OVMF, headless, the serial console on this
//! terminal (so the chat happens here), with a host-side timeout, an optional transcript
//! log, and an optional screenshot of the firmware's screen through QMP.

use crate::image;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct BootArgs {
    /// Disk image from `image` (or give --model to build one on the fly).
    pub image: Option<PathBuf>,
    /// Build a temporary image with this checkpoint and boot it.
    #[arg(long, conflicts_with = "image")]
    pub model: Option<PathBuf>,
    /// Config for the temporary image (with --model).
    #[arg(long, requires = "model")]
    pub config: Option<PathBuf>,
    /// UEFI application for the temporary image (default: build/BOOTX64.EFI).
    #[arg(long)]
    pub efi: Option<PathBuf>,
    /// Number of CPU cores of the virtual machine.
    #[arg(long, default_value_t = 1)]
    pub smp: usize,
    /// Memory of the virtual machine (QEMU syntax: 512M, 2G, ...).
    #[arg(long, default_value = "1G")]
    pub memory: String,
    /// QEMU CPU model. The default has SSE4.2 but no AVX: under QEMU's emulation (TCG) the
    /// SSE2 kernels run ~15x faster than emulated AVX2. Use `max` to run the AVX2 kernels.
    #[arg(long, default_value = "Nehalem")]
    pub cpu: String,
    /// Kill the machine after this many seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    pub timeout: u64,
    /// Save the firmware screen as PNG when the machine powers off (QMP screendump).
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Also write the serial transcript to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

/// OVMF code and variable-template files: $OVMF_CODE/$OVMF_VARS, Debian's ovmf package, or
/// the firmware descriptors in /usr/share/qemu/firmware.
pub fn find_ovmf() -> Result<(PathBuf, PathBuf)> {
    if let (Some(c), Some(v)) = (std::env::var_os("OVMF_CODE"), std::env::var_os("OVMF_VARS")) {
        let (c, v) = (PathBuf::from(c), PathBuf::from(v));
        if !c.is_file() || !v.is_file() {
            bail!("OVMF_CODE={} / OVMF_VARS={}: file not found", c.display(), v.display());
        }
        return Ok((c, v));
    }
    for (c, v) in [
        ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
        ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
    ] {
        if Path::new(c).is_file() && Path::new(v).is_file() {
            return Ok((c.into(), v.into()));
        }
    }
    if let Some(found) = from_descriptors(Path::new("/usr/share/qemu/firmware")) {
        return Ok(found);
    }
    bail!("OVMF (UEFI firmware for QEMU) not found: install it with `sudo apt-get install ovmf`, or set OVMF_CODE and OVMF_VARS")
}

/// A non-Secure-Boot x86_64 UEFI firmware from QEMU's firmware descriptor files.
fn from_descriptors(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let Ok(j) = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&p).ok()?) else { continue };
        let features: Vec<&str> = j["features"].as_array().map(|a| a.iter().filter_map(|f| f.as_str()).collect()).unwrap_or_default();
        let x86 = j["targets"].as_array().is_some_and(|t| t.iter().any(|t| t["architecture"] == "x86_64"));
        if !x86 || features.contains(&"secure-boot") || features.contains(&"enrolled-keys") {
            continue;
        }
        let code = j["mapping"]["executable"]["filename"].as_str()?;
        let vars = j["mapping"]["nvram-template"]["filename"].as_str()?;
        if Path::new(code).is_file() && Path::new(vars).is_file() {
            return Some((code.into(), vars.into()));
        }
    }
    None
}

fn find_qemu() -> Result<PathBuf> {
    let name = "qemu-system-x86_64";
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .context("qemu-system-x86_64 not found: install it with `sudo apt-get install qemu-system-x86`")
}

pub fn boot(a: &BootArgs) -> Result<ExitCode> {
    let qemu = find_qemu()?;
    let (code, vars_template) = find_ovmf()?;
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    let image = match (&a.image, &a.model) {
        (Some(img), None) => {
            if !img.is_file() {
                bail!("{}: no such disk image", img.display());
            }
            img.clone()
        }
        (None, Some(model)) => {
            let img = work.path().join("disk.img");
            image::image(&image::ImageArgs { model: Some(model.clone()), config: a.config.clone(), tokenizer: None, efi: a.efi.clone(), out: img.clone(), allow_invalid_model: false })?;
            img
        }
        _ => bail!("give a disk image or --model CKPT"),
    };
    if a.smp == 0 {
        bail!("--smp must be at least 1");
    }
    let vars = work.path().join("OVMF_VARS.fd");
    std::fs::copy(&vars_template, &vars).with_context(|| format!("cannot copy {}", vars_template.display()))?;
    let qmp = work.path().join("qmp.sock");

    let mut cmd = Command::new(&qemu);
    cmd.args(["-machine", "q35", "-cpu", &a.cpu, "-smp", &a.smp.to_string(), "-m", &a.memory]);
    cmd.args(["-nodefaults", "-display", "none", "-no-reboot"]);
    cmd.args(["-chardev", "stdio,id=ser0,signal=off", "-serial", "chardev:ser0"]);
    cmd.arg("-drive").arg(format!("if=pflash,format=raw,readonly=on,file={}", code.display()));
    cmd.arg("-drive").arg(format!("if=pflash,format=raw,file={}", vars.display()));
    cmd.arg("-drive").arg(format!("if=none,id=disk0,format=raw,file={}", image.display()));
    cmd.args(["-device", "virtio-blk-pci,drive=disk0,bootindex=0"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if a.screenshot.is_some() {
        // Keep the machine (and its screen) after power-off until the screenshot is taken.
        cmd.args(["-device", "VGA", "-no-shutdown"]);
        cmd.arg("-qmp").arg(format!("unix:{},server=on,wait=off", qmp.display()));
    }
    cmd.stdin(Stdio::inherit()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", qemu.display()))?;
    let mut log = match &a.log {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?),
        None => None,
    };
    let mut out = child.stdout.take().unwrap();
    let pump = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let stdout = std::io::stdout();
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut s = stdout.lock();
            let _ = s.write_all(&buf[..n]);
            let _ = s.flush();
            if let Some(l) = log.as_mut() {
                let _ = l.write_all(&buf[..n]);
                let _ = l.flush();
            }
        }
    });
    let shot = a.screenshot.clone().map(|png| {
        let qmp = qmp.clone();
        std::thread::spawn(move || screenshot_on_shutdown(&qmp, &png))
    });

    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if a.timeout > 0 && start.elapsed() > Duration::from_secs(a.timeout) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = pump.join();
    if let Some(t) = shot {
        match t.join() {
            Ok(Ok(())) => eprintln!("[screenshot saved to {}]", a.screenshot.as_ref().unwrap().display()),
            Ok(Err(e)) => eprintln!("error: screenshot failed: {e:#}"),
            Err(_) => eprintln!("error: screenshot thread failed"),
        }
    }
    match status {
        None => {
            eprintln!("error: the machine did not power off within {} s (killed)", a.timeout);
            Ok(ExitCode::from(124))
        }
        Some(s) => match s.code() {
            Some(0) => Ok(ExitCode::SUCCESS),
            Some(3) => {
                eprintln!("error: the UEFI application reported a failure (QEMU exit status 3)");
                Ok(ExitCode::from(3))
            }
            Some(c) => {
                eprintln!("error: QEMU exited with status {c}");
                Ok(ExitCode::from(c.clamp(1, 255) as u8))
            }
            None => bail!("QEMU was killed by a signal"),
        },
    }
}

/// Waits for the guest's SHUTDOWN event on QMP, saves the screen as PNG, then quits QEMU.
fn screenshot_on_shutdown(sock: &Path, png: &Path) -> Result<()> {
    let start = Instant::now();
    let stream = loop {
        match std::os::unix::net::UnixStream::connect(sock) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(20) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e).context("cannot connect to QEMU's QMP socket"),
        }
    };
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?; // greeting
    writeln!(writer, r#"{{"execute":"qmp_capabilities"}}"#)?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("QEMU exited before the machine powered off");
        }
        if line.contains("\"SHUTDOWN\"") {
            break;
        }
    }
    let path = std::path::absolute(png)?;
    writeln!(writer, "{}", serde_json::json!({"execute": "screendump", "arguments": {"filename": path, "format": "png"}}))?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("QEMU closed QMP before the screendump finished");
        }
        if line.contains("\"return\"") {
            break;
        }
        if line.contains("\"error\"") {
            bail!("screendump failed: {}", line.trim());
        }
    }
    writeln!(writer, r#"{{"execute":"quit"}}"#)?;
    Ok(())
}
