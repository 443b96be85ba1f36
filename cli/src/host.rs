//! Host plumbing shared by the subcommands: loading files, the thread pool, Ctrl-C.

use anyhow::{bail, Context, Result};
use llm_engine::{Model, Parallel, Tokenizer};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// A checkpoint file mapped into memory (the model is a zero-copy view of it).
pub struct MappedFile {
    map: memmap2::Mmap,
}

impl MappedFile {
    pub fn open(path: &Path) -> Result<MappedFile> {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        if file.metadata()?.is_dir() {
            bail!("{} is a directory, not a checkpoint file", path.display());
        }
        // SAFETY: the file is only read; a concurrent writer would at worst give wrong numbers
        // (our own writer replaces files by rename, so it never modifies a mapped file).
        let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
        Ok(MappedFile { map })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

pub fn load_model<'a>(path: &Path, file: &'a MappedFile) -> Result<Model<'a>> {
    Model::from_bytes(file.bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The tokenizer for a model: an llm.c tokenizer file if given, else bytes for V = 256.
pub fn load_tokenizer(path: Option<&Path>, vocab_size: usize) -> Result<Tokenizer> {
    match path {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("cannot read tokenizer {}", p.display()))?;
            let t = Tokenizer::from_llmc_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            if t.vocab_size() < vocab_size {
                bail!("tokenizer {} has {} tokens but the model has V = {vocab_size}", p.display(), t.vocab_size());
            }
            Ok(t)
        }
        None if vocab_size == 256 => Ok(Tokenizer::Bytes),
        None => bail!("the model has a vocabulary of {vocab_size} (not bytes): pass --tokenizer FILE (llm.c's tokenizer .bin)"),
    }
}

/// Engine work spread over a rayon pool of a fixed size.
pub struct Threads {
    pool: Option<rayon::ThreadPool>,
    n: usize,
}

impl Threads {
    pub fn new(n: usize) -> Result<Threads> {
        let n = if n == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { n };
        let pool = if n > 1 { Some(rayon::ThreadPoolBuilder::new().num_threads(n).build()?) } else { None };
        Ok(Threads { pool, n })
    }
}

impl Parallel for Threads {
    fn workers(&self) -> usize {
        self.n
    }
    /// Waking rayon workers costs a few microseconds: measured on the 2-core dev machine,
    /// splitting pays from about 128K multiply-adds (the C = 384 projections) but not for
    /// the C = 128 default model's decode steps.
    fn grain(&self) -> usize {
        1 << 17
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        match &self.pool {
            None => (0..tasks).for_each(f),
            Some(pool) => pool.scope(|s| {
                for i in 1..tasks {
                    s.spawn(move |_| f(i));
                }
                if tasks > 0 {
                    f(0);
                }
            }),
        }
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Routes Ctrl-C to a flag instead of killing the process (chat, train).
pub fn catch_ctrl_c() -> Result<()> {
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)).context("cannot install the Ctrl-C handler")
}

/// True once after each Ctrl-C.
pub fn take_interrupt() -> bool {
    INTERRUPTED.swap(false, Ordering::SeqCst)
}

/// The flag itself, for loops that poll it (training).
pub fn interrupt_flag() -> &'static AtomicBool {
    &INTERRUPTED
}

/// Prints bytes as they come, through the same UTF-8 filter as the firmware console.
pub struct TextOut {
    printer: llm_engine::Utf8Printer,
    buf: String,
}

impl TextOut {
    pub fn new() -> TextOut {
        TextOut { printer: llm_engine::Utf8Printer::new(), buf: String::new() }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.buf.clear();
        let buf = &mut self.buf;
        self.printer.push(bytes, &mut |c| buf.push(c));
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(self.buf.as_bytes());
        let _ = out.flush();
    }

    pub fn finish(&mut self) {
        self.buf.clear();
        let buf = &mut self.buf;
        self.printer.flush(&mut |c| buf.push(c));
        print!("{}", self.buf);
    }
}
