//! llm.c token files and batches.
//!
//! Token file: int32 header[256] = {20240520, 1, ntok}, then ntok uint16 tokens.
//! `prepare` writes byte-level tokens (vocabulary 256) as DIR/train.bin and DIR/val.bin.

use crate::io::write_atomic;
use anyhow::{Context, Result, bail};
use llm_engine::Rng;
use std::path::{Path, PathBuf};

pub const TOKENS_MAGIC: i32 = 20240520;
/// Below this many bytes a text cannot fill even a few training sequences.
pub const MIN_TEXT_BYTES: usize = 1024;
/// A token file's header counts its tokens in an int32.
pub const MAX_TEXT_BYTES: u64 = i32::MAX as u64;

pub fn encode_token_file(tokens: &[u16]) -> Vec<u8> {
    let mut out = vec![0u8; 1024];
    for (i, v) in [TOKENS_MAGIC, 1, tokens.len() as i32].iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    out.reserve(tokens.len() * 2);
    for t in tokens {
        out.extend_from_slice(&t.to_le_bytes());
    }
    out
}

pub fn read_token_file(path: &Path) -> Result<Vec<u16>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read token file {}", path.display()))?;
    decode_token_file(&bytes).with_context(|| format!("{} is not a valid llm.c token file", path.display()))
}

pub fn decode_token_file(bytes: &[u8]) -> Result<Vec<u16>> {
    if bytes.len() < 1024 {
        bail!("shorter than the 1024-byte header ({} bytes)", bytes.len());
    }
    let h = |i: usize| i32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
    if h(0) != TOKENS_MAGIC {
        bail!("bad magic {} (expected {TOKENS_MAGIC})", h(0));
    }
    if h(1) != 1 {
        bail!("unsupported version {} (expected 1)", h(1));
    }
    let n = h(2);
    if n < 0 {
        bail!("negative token count {n}");
    }
    let expected = 1024 + 2 * n as usize;
    if bytes.len() != expected {
        bail!("header says {n} tokens ({expected} bytes) but the file has {} bytes", bytes.len());
    }
    Ok(bytes[1024..].chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect())
}

#[derive(Debug)]
pub struct Prepared {
    pub train_tokens: usize,
    pub val_tokens: usize,
    pub train_path: PathBuf,
    pub val_path: PathBuf,
}

/// Concatenates the texts, byte-level tokenises them, and splits off the last
/// `val_fraction` as validation.
pub fn prepare(texts: &[PathBuf], out_dir: &Path, val_fraction: f64) -> Result<Prepared> {
    if texts.is_empty() {
        bail!("no input text files given");
    }
    if !(0.0..1.0).contains(&val_fraction) || val_fraction <= 0.0 {
        bail!("--val-fraction must be between 0 and 1 (exclusive), got {val_fraction}");
    }
    let mut all = Vec::new();
    let mut total: u64 = 0;
    for t in texts {
        // A device or a pipe (/dev/zero, /dev/stdin) could be read forever: only files, whose
        // size is known, and at most what a token file's header can count.
        let meta = std::fs::metadata(t).with_context(|| format!("cannot read {}", t.display()))?;
        if !meta.is_file() {
            let what = if meta.is_dir() { "a directory" } else { "not a regular file (a device, a pipe or a socket)" };
            bail!("{} is {what}: prepare reads text files", t.display());
        }
        total += meta.len();
        if total > MAX_TEXT_BYTES {
            bail!("the input is larger than {MAX_TEXT_BYTES} bytes, the most one token file holds (at {})", t.display());
        }
        let bytes = std::fs::read(t).with_context(|| format!("cannot read {}", t.display()))?;
        if bytes.is_empty() {
            bail!("{} is empty", t.display());
        }
        all.extend_from_slice(&bytes);
    }
    if all.len() < MIN_TEXT_BYTES {
        bail!("the input has only {} bytes; at least {MIN_TEXT_BYTES} are needed to train and validate", all.len());
    }
    let split = all.len() - ((all.len() as f64 * val_fraction).round() as usize).max(1);
    let tokens: Vec<u16> = all.iter().map(|&b| b as u16).collect();
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let train_path = out_dir.join("train.bin");
    let val_path = out_dir.join("val.bin");
    write_atomic(&train_path, &encode_token_file(&tokens[..split]))?;
    write_atomic(&val_path, &encode_token_file(&tokens[split..]))?;
    Ok(Prepared { train_tokens: split, val_tokens: tokens.len() - split, train_path, val_path })
}

/// Inputs and targets (B, T) from random windows of `tokens`.
pub fn random_batch(rng: &mut Rng, tokens: &[u16], b: usize, t: usize, inputs: &mut Vec<u32>, targets: &mut Vec<u32>) {
    inputs.clear();
    targets.clear();
    let span = tokens.len() - t; // windows of t+1 tokens
    for _ in 0..b {
        let start = (rng.next_u64() % span as u64) as usize;
        inputs.extend(tokens[start..start + t].iter().map(|&x| x as u32));
        targets.extend(tokens[start + 1..start + t + 1].iter().map(|&x| x as u32));
    }
}

/// Consecutive non-overlapping windows covering `tokens` (the last partial one dropped),
/// grouped in batches of up to b rows: the fixed validation set.
pub fn sequential_batches(tokens: &[u16], b: usize, t: usize, max_batches: Option<usize>) -> Vec<(Vec<u32>, Vec<u32>)> {
    let windows = (tokens.len().saturating_sub(1)) / t;
    let mut out = Vec::new();
    let mut w = 0;
    while w + b <= windows && max_batches.is_none_or(|m| out.len() < m) {
        let mut inp = Vec::with_capacity(b * t);
        let mut tgt = Vec::with_capacity(b * t);
        for k in 0..b {
            let s = (w + k) * t;
            inp.extend(tokens[s..s + t].iter().map(|&x| x as u32));
            tgt.extend(tokens[s + 1..s + t + 1].iter().map(|&x| x as u32));
        }
        out.push((inp, tgt));
        w += b;
    }
    out
}
