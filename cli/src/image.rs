//! `image`: a GPT disk image with one FAT32 EFI System Partition holding
//! EFI/BOOT/BOOTX64.EFI, the model and the config, built in pure Rust (gpt + fatfs): no
//! mtools, no root, no loop devices. The image can be `dd`-ed to a USB stick.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
/// The ESP starts at 1 MiB (sector 2048), as partitioning tools align it.
const ESP_START: u64 = MIB;
/// FAT32 needs at least 65,525 clusters: with 512-byte clusters that is 32 MiB.
const MIN_ESP: u64 = 34 * MIB;

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Checkpoint to put on the image as \model.bin.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Boot configuration (key = value lines) to put on the image as \llm.cfg.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Tokenizer to put on the image as \tokenizer.bin: llm.c's for llm.c models with V != 256,
    /// llama2.c's for llama2.c models (default: tokenizer.bin beside the model, if it needs one).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// The UEFI application (default: build/BOOTX64.EFI from `make efi`).
    #[arg(long)]
    pub efi: Option<PathBuf>,
    /// Output image file.
    #[arg(long)]
    pub out: PathBuf,
    /// Test-only, hidden from --help: copy the model and config even if they do not parse, so
    /// the tests can exercise the firmware's error messages.
    #[arg(long, hide = true)]
    pub unchecked: bool,
}

/// The UEFI binary: --efi, $LLM_BAREMETAL_EFI, or build/BOOTX64.EFI in this checkout.
pub fn find_efi(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.is_file() {
            bail!("--efi {}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("LLM_BAREMETAL_EFI") {
        return Ok(PathBuf::from(p));
    }
    let mut candidates = vec![PathBuf::from("build/BOOTX64.EFI")];
    if let Ok(exe) = std::env::current_exe() {
        // target/release/llm-baremetal -> <checkout>/build/BOOTX64.EFI
        if let Some(root) = exe.parent().and_then(|p| p.parent()).and_then(|p| p.parent()) {
            candidates.push(root.join("build/BOOTX64.EFI"));
        }
    }
    candidates.into_iter().find(|p| p.is_file()).context("no UEFI application found (build/BOOTX64.EFI): run `make efi` or pass --efi FILE")
}

pub fn image(a: &ImageArgs) -> Result<()> {
    check_output_is_a_file(&a.out)?;
    let efi = find_efi(a.efi.as_deref())?;
    let inputs = [
        ("--model", a.model.as_deref()),
        ("--config", a.config.as_deref()),
        ("--tokenizer", a.tokenizer.as_deref()),
        ("--efi", Some(efi.as_path())),
    ];
    check_output_is_not_an_input(&a.out, &inputs)?;
    check_efi_application(&efi).with_context(|| format!("--efi {}", efi.display()))?;
    let mut tokenizer = a.tokenizer.clone();
    if let (Some(t), None, false) = (&a.tokenizer, &a.model, a.unchecked) {
        bail!(
            "--tokenizer {} without --model: a tokenizer is checked against the model it belongs to (and the firmware only reads it \
             for a model that needs one); give --model too",
            t.display()
        );
    }
    if let Some(m) = &a.model {
        // Mapped, not read: models of hundreds of MB are checked without copying them.
        let file = crate::host::MappedFile::open(m)?;
        match llm_engine::load(file.bytes()) {
            // A GGUF file carries its own tokenizer: the firmware never reads tokenizer.bin for
            // it, and the host would read the file as llm.c's format.
            Ok(loaded) if !a.unchecked && tokenizer.is_some() && matches!(loaded.format, llm_engine::Format::Gguf { .. }) => bail!(
                "--tokenizer {} given with the GGUF model {}: a GGUF file carries its own tokenizer; leave out --tokenizer",
                tokenizer.as_ref().unwrap().display(),
                m.display()
            ),
            // The tokenizer the firmware will load must parse and cover the vocabulary; a
            // model that needs one gets tokenizer.bin from beside it when none is named.
            Ok(mut loaded) if !a.unchecked && (tokenizer.is_some() || loaded.format.needs_tokenizer_file()) => {
                crate::host::load_tokenizer(tokenizer.as_deref(), m, &mut loaded)?;
                tokenizer = tokenizer.or_else(|| Some(m.with_file_name("tokenizer.bin")));
                check_output_is_not_an_input(&a.out, &[("the tokenizer", tokenizer.as_deref())])?;
            }
            Ok(_) => {}
            Err(e) if !a.unchecked => bail!("{}: {e}", m.display()),
            Err(_) => {}
        }
    }
    if let Some(c) = &a.config {
        let text = std::fs::read(c).with_context(|| format!("cannot read {}", c.display()))?;
        if !a.unchecked {
            let text = std::str::from_utf8(&text).with_context(|| format!("{} is not UTF-8 text", c.display()))?;
            llm_engine::config::BootConfig::parse(text).map_err(|e| anyhow::anyhow!("{} {e}", c.display()))?;
        }
    }
    let mut files: Vec<(&str, PathBuf)> = vec![("EFI/BOOT/BOOTX64.EFI", efi)];
    if let Some(m) = &a.model {
        files.push(("model.bin", m.clone()));
    }
    if let Some(c) = &a.config {
        files.push(("llm.cfg", c.clone()));
    }
    if let Some(t) = &tokenizer {
        files.push(("tokenizer.bin", t.clone()));
    }
    let size = build_image(&a.out, &files)?;
    crate::outln!(
        "wrote {} ({:.1} MiB): GPT, FAT32 ESP at 1 MiB with {}",
        a.out.display(),
        size as f64 / MIB as f64,
        files.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
    )?;
    Ok(())
}

/// PE machine type of x86-64 and the PE subsystem of an EFI application.
const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
const IMAGE_SUBSYSTEM_EFI_APPLICATION: u16 = 10;

/// Refuses a file that is not an x86-64 PE/COFF EFI application (the firmware would not start
/// it and `boot` would sit in the firmware's shell): MZ header, PE signature, machine x86-64,
/// subsystem EFI application (10).
pub fn check_efi_application(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    check_efi_header(&head)
}

/// The same check on the first bytes of a file (the headers sit in its first kilobytes).
pub fn check_efi_header(head: &[u8]) -> Result<()> {
    let u16_at = |i: usize| head.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |i: usize| head.get(i..i + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if head.len() < 64 || &head[..2] != b"MZ" {
        bail!("not an EFI application: no MZ (DOS/PE) header");
    }
    let pe = u32_at(0x3C).unwrap() as usize;
    if head.get(pe..pe + 4) != Some(b"PE\0\0".as_slice()) {
        bail!("not an EFI application: no PE signature (an MZ file that is not PE/COFF)");
    }
    match u16_at(pe + 4) {
        Some(IMAGE_FILE_MACHINE_AMD64) => {}
        Some(m) => bail!("not an x86-64 EFI application: PE machine type {m:#06x}, not x86-64 (0x8664)"),
        None => bail!("not an EFI application: truncated PE header"),
    }
    // The optional header follows the 20-byte COFF header; its subsystem field is at offset 68
    // in both PE32 and PE32+.
    match u16_at(pe + 24 + 68) {
        Some(IMAGE_SUBSYSTEM_EFI_APPLICATION) => Ok(()),
        Some(s) => bail!("not an EFI application: PE subsystem {s}, not EFI application (10)"),
        None => bail!("not an EFI application: truncated PE optional header"),
    }
}

/// What `boot` needs to know about a disk image before starting QEMU.
pub struct ImageContents {
    /// Size of EFI/BOOT/BOOTX64.EFI (a standalone one carries its model).
    pub efi_bytes: u64,
    /// Size of the model file the firmware will load (\\model.bin or llm.cfg's `model =`),
    /// if it is on the image.
    pub model_bytes: Option<u64>,
}

/// Checks that `path` is a disk the firmware can boot the app from: a GPT, an EFI System
/// Partition with a FAT file system, and an x86-64 EFI application as EFI/BOOT/BOOTX64.EFI.
pub fn inspect_image(path: &Path) -> Result<ImageContents> {
    use std::io::Read;
    let not_bootable =
        |why: &str| anyhow::anyhow!("{} is not a bootable disk image: {why} (build one with `llm-baremetal image`)", path.display());
    let len = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if len < 34 * SECTOR {
        return Err(not_bootable(&format!("{len} bytes, too small for a GPT")));
    }
    let disk = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .open(path)
        .map_err(|e| not_bootable(&format!("no valid GPT partition table ({e})")))?;
    let esp = disk
        .partitions()
        .values()
        .find(|p| p.part_type_guid == gpt::partition_types::EFI)
        .ok_or_else(|| not_bootable("its GPT has no EFI System Partition"))?
        .clone();
    drop(disk);
    let (start, end) = (esp.first_lba * SECTOR, (esp.last_lba + 1) * SECTOR);
    if end > len || start >= end {
        return Err(not_bootable("its EFI System Partition lies outside the file"));
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let region = fscommon::BufStream::new(fscommon::StreamSlice::new(file, start, end)?);
    let fs = fatfs::FileSystem::new(region, fatfs::FsOptions::new())
        .map_err(|e| not_bootable(&format!("its EFI System Partition has no FAT file system ({e})")))?;
    let root = fs.root_dir();
    let mut efi =
        root.open_file("EFI/BOOT/BOOTX64.EFI").map_err(|_| not_bootable("no EFI/BOOT/BOOTX64.EFI on its EFI System Partition"))?;
    let efi_bytes = efi.seek(SeekFrom::End(0))?;
    efi.seek(SeekFrom::Start(0))?;
    let mut head = Vec::new();
    efi.take(1 << 20).read_to_end(&mut head)?;
    check_efi_header(&head).map_err(|e| not_bootable(&format!("its EFI/BOOT/BOOTX64.EFI is {e:#}")))?;
    let mut model_path = String::from("model.bin");
    if let Ok(mut cfg) = root.open_file("llm.cfg") {
        let mut text = String::new();
        if cfg.read_to_string(&mut text).is_ok()
            && let Ok(c) = llm_engine::config::BootConfig::parse(&text)
        {
            model_path = c.model_path.trim_start_matches(['\\', '/']).replace('\\', "/");
        }
    }
    let model_bytes = root.open_file(&model_path).ok().and_then(|mut f| f.seek(SeekFrom::End(0)).ok());
    Ok(ImageContents { efi_bytes, model_bytes })
}

/// `image` writes a new file and renames it over `out`: on a disk, a partition, /dev/null or a
/// pipe that would replace the device node (as root) with a regular file, so anything that
/// exists and is not a regular file (after following symlinks) is refused: disks are written
/// with `dd`.
pub(crate) fn check_output_is_a_file(out: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(out) else { return Ok(()) };
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "something else"
    };
    bail!(
        "--out {} is {what}, not a regular file: `image` writes a new file and renames it into place, which would replace it; \
         give a file name, then put that file on a disk with dd as the README shows (sudo dd if=disk.img of=/dev/sdX bs=4M conv=fsync)",
        out.display()
    )
}

/// Refuses an `--out` that names one of the inputs, however it is spelt (relative, `./`,
/// `..`, through a symlink): the image would be renamed over it. The output need not exist:
/// then its directory is resolved and its file name appended.
pub(crate) fn check_output_is_not_an_input(out: &Path, inputs: &[(&str, Option<&Path>)]) -> Result<()> {
    let resolved = std::fs::canonicalize(out).ok().or_else(|| {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(parent).ok()?.join(out.file_name()?))
    });
    let Some(resolved) = resolved else { return Ok(()) }; // no such directory: creating it fails clearly
    for (flag, input) in inputs {
        let Some(input) = input else { continue };
        if std::fs::canonicalize(input).is_ok_and(|c| c == resolved) {
            bail!("--out {} is also the {flag} input {}: the image would replace it; choose another --out", out.display(), input.display());
        }
    }
    Ok(())
}

/// Writes the image; returns its size in bytes. Written to a temporary file beside `out`
/// (never an existing file) and renamed, so a failure never leaves a half-built image under
/// the final name, and the temporary file is removed on any failure.
pub fn build_image(out: &Path, files: &[(&str, PathBuf)]) -> Result<u64> {
    let mut payload = 0u64;
    for (_, p) in files {
        payload += std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?.len();
    }
    // Room for FAT tables, directories and cluster slack, rounded up to whole MiB.
    let esp = (payload + payload / 32 + 4 * MIB).max(MIN_ESP).div_ceil(MIB) * MIB;
    let total = ESP_START + esp + MIB; // 1 MiB at the end for the backup GPT
    let name = out.file_name().with_context(|| format!("--out {}: not a file name", out.display()))?;
    let tmp = out.with_file_name(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let mut disk = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let result = (|| -> Result<()> {
        disk.set_len(total)?;
        write_partition_table(&mut disk, total, esp)?;
        let region = fscommon::StreamSlice::new(&mut disk, ESP_START, ESP_START + esp)?;
        let mut region = fscommon::BufStream::new(region);
        fatfs::format_volume(&mut region, fatfs::FormatVolumeOptions::new().fat_type(fatfs::FatType::Fat32).volume_label(*b"LLMBAREMETL"))
            .context("cannot format the EFI System Partition")?;
        {
            let fs = fatfs::FileSystem::new(&mut region, fatfs::FsOptions::new()).context("cannot open the new FAT32 volume")?;
            copy_files(&fs.root_dir(), files)?;
            fs.unmount()?;
        }
        region.flush()?;
        drop(region);
        disk.sync_all()?;
        std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(total)
}

fn copy_files<T: fatfs::ReadWriteSeek>(root: &fatfs::Dir<T>, files: &[(&str, PathBuf)]) -> Result<()> {
    for (dest, src) in files {
        let mut dir = root.clone();
        let parts: Vec<&str> = dest.split('/').collect();
        for d in &parts[..parts.len() - 1] {
            dir = match dir.open_dir(d) {
                Ok(x) => x,
                Err(_) => dir.create_dir(d)?,
            };
        }
        let mut f = dir.create_file(parts[parts.len() - 1])?;
        f.truncate()?;
        let mut input = std::fs::File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
        std::io::copy(&mut input, &mut f).with_context(|| format!("cannot copy {} onto the image", src.display()))?;
        f.flush()?;
    }
    Ok(())
}

fn write_partition_table(disk: &mut std::fs::File, total: u64, esp: u64) -> Result<()> {
    let sectors = total / SECTOR;
    let mbr = gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(sectors - 1).unwrap_or(u32::MAX));
    mbr.overwrite_lba0(disk).context("cannot write the protective MBR")?;
    let mut gdisk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .create_from_device(&mut *disk, None)
        .context("cannot create the GPT")?;
    gdisk.update_partitions(std::collections::BTreeMap::new()).context("cannot initialise the GPT")?;
    gdisk
        .add_partition_at("EFI System Partition", 1, ESP_START / SECTOR, esp / SECTOR, gpt::partition_types::EFI, 0)
        .context("cannot add the EFI System Partition")?;
    gdisk.write().context("cannot write the GPT")?;
    disk.seek(SeekFrom::Start(0))?;
    Ok(())
}
