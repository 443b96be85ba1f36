//! Host plumbing shared by the subcommands: loading files, the thread pool, Ctrl-C.

use crate::spin_pool::SpinPool;
use anyhow::{Context, Result, bail};
use llm_engine::chat::Cores;
use llm_engine::{Loaded, Parallel, Tokenizer};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// A checkpoint file in memory (the model is a zero-copy view of it): mapped, or read.
pub struct MappedFile {
    map: Backing,
}

enum Backing {
    /// The file mapped (pages read when first touched).
    Mapped(memmap2::Mmap),
    /// The whole file read into anonymous memory.
    Read(memmap2::MmapMut),
}

impl MappedFile {
    /// The file mapped into memory: only the pages used are read (`inspect`, `image`).
    pub fn open(path: &Path) -> Result<MappedFile> {
        let file = open_file(path)?;
        // SAFETY: the file is only read; a concurrent writer would at worst give wrong numbers
        // (our own writer replaces files by rename, so it never modifies a mapped file).
        let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
        Ok(MappedFile { map: Backing::Mapped(map) })
    }

    /// The whole file read into anonymous memory that the kernel is asked to back with
    /// transparent huge pages (`madvise(MADV_HUGEPAGE)`; a hint, ignored where unsupported):
    /// decoding streams every weight once per token, and 2 MiB pages take 512 times fewer TLB
    /// entries than the page cache's 4 KiB pages (docs/BENCHMARKS.md: decoding 12-19% faster
    /// than from the mapped file).
    pub fn read_for_inference(path: &Path) -> Result<MappedFile> {
        use std::io::Read;
        let mut file = open_file(path)?;
        let len = usize::try_from(file.metadata()?.len()).context("the file does not fit in memory")?;
        if len == 0 {
            // An empty mapping cannot be made; the loader names the problem.
            return MappedFile::open(path);
        }
        let mut mem = memmap2::MmapOptions::new()
            .len(len)
            .map_anon()
            .with_context(|| format!("cannot allocate {} MiB for {}", len >> 20, path.display()))?;
        #[cfg(target_os = "linux")]
        let _ = mem.advise(memmap2::Advice::HugePage);
        file.read_exact(&mut mem).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(MappedFile { map: Backing::Read(mem) })
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            Backing::Mapped(m) => m,
            Backing::Read(m) => m,
        }
    }
}

fn open_file(path: &Path) -> Result<std::fs::File> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    if file.metadata()?.is_dir() {
        bail!("{} is a directory, not a checkpoint file", path.display());
    }
    Ok(file)
}

pub fn load_model<'a>(path: &Path, file: &'a MappedFile) -> Result<Loaded<'a>> {
    llm_engine::load(file.bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The tokenizer for a model: `--tokenizer FILE` if given, else `tokenizer.bin` beside the
/// model for formats that need one (llama2.c), else bytes for llm.c models with V = 256.
pub fn load_tokenizer(explicit: Option<&Path>, model_path: &Path, loaded: &mut Loaded<'_>) -> Result<Tokenizer> {
    let vocab = loaded.model.spec().vocab_size;
    let beside = model_path.with_file_name("tokenizer.bin");
    let path = match explicit {
        None if loaded.tokenizer.is_some() => return Ok(loaded.tokenizer.take().expect("checked")),
        Some(p) => p.to_path_buf(),
        None if !loaded.format.needs_tokenizer_file() => return Ok(Tokenizer::Bytes),
        None if beside.is_file() => beside,
        None => bail!(
            "{} needs its tokenizer (a vocabulary of {vocab}): pass --tokenizer FILE or put tokenizer.bin beside the model",
            model_path.display()
        ),
    };
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read tokenizer {}", path.display()))?;
    let t = Tokenizer::for_format(&loaded.format, &bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if t.vocab_size() != vocab {
        bail!("tokenizer {} has {} tokens but the model has V = {vocab}", path.display(), t.vocab_size());
    }
    Ok(t)
}

/// Engine work spread over a fixed set of spinning worker threads (`spin_pool`): decoding
/// hands off ~170 short matrix products per token, so waking sleeping threads for each (as a
/// rayon scope entered from outside its pool does) cost ~10% with two threads.
pub struct Threads {
    pool: SpinPool,
    n: usize,
}

impl Threads {
    pub fn new(n: usize) -> Result<Threads> {
        let n = if n == 0 { cores() } else { capped_threads(n) };
        Ok(Threads { pool: SpinPool::new(n).context("cannot start the worker threads")?, n })
    }
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A thread count asked for (`--threads`, `/cores`), at most the cores there are: more
/// workers than cores only wait for each other (`--threads 1000` made a tiny training step
/// take seconds). Warns on stderr when it cuts.
pub fn capped_threads(n: usize) -> usize {
    let cores = cores();
    if n > cores {
        crate::errln!("warning: {n} threads asked for, but this machine has {cores} core(s): using {cores}");
        cores
    } else {
        n
    }
}

impl Parallel for Threads {
    fn workers(&self) -> usize {
        self.n
    }
    /// With spinning workers a hand-off costs well under a microsecond once they are awake:
    /// splitting pays from about 64K multiply-adds (measured on the 2-core dev machine).
    fn grain(&self) -> usize {
        self.pool.grain()
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        self.pool.run(tasks, f)
    }
}

impl Cores for Threads {
    fn set_active(&mut self, n: usize) -> usize {
        let n = n.max(1);
        if n != self.n {
            match Threads::new(n) {
                Ok(t) => *self = t,
                Err(_) => return self.n,
            }
        }
        self.n
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

    /// Writes and flushes (so a closed or full stdout is seen at once, not at exit).
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.buf.clear();
        let buf = &mut self.buf;
        self.printer.push(bytes, &mut |c| buf.push(c));
        let mut out = std::io::stdout().lock();
        out.write_all(self.buf.as_bytes())?;
        out.flush()
    }

    pub fn finish(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        self.buf.clear();
        let buf = &mut self.buf;
        self.printer.flush(&mut |c| buf.push(c));
        let mut out = std::io::stdout().lock();
        out.write_all(self.buf.as_bytes())?;
        out.flush()
    }
}

/// A failed write to stdout, as the error the command returns: `main` exits quietly (status 0)
/// for a closed pipe (`| head`) and reports any other failure (`> /dev/full`).
#[derive(Debug)]
pub struct OutputError(pub std::io::Error);

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write to stdout: {}", self.0)
    }
}

impl std::error::Error for OutputError {}

impl OutputError {
    pub fn is_broken_pipe(&self) -> bool {
        self.0.kind() == std::io::ErrorKind::BrokenPipe
    }
}

pub fn output_error(e: std::io::Error) -> anyhow::Error {
    anyhow::Error::new(OutputError(e))
}

/// Writes formatted text to stdout and flushes it; a failure is an [`OutputError`].
pub fn write_out(args: std::fmt::Arguments) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).and_then(|()| out.flush()).map_err(output_error)
}

/// `println!` that returns an error (an [`OutputError`]) instead of panicking.
#[macro_export]
macro_rules! outln {
    () => { $crate::host::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::host::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that returns an error (an [`OutputError`]) instead of panicking.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::host::write_out(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics (a closed or full stderr loses the line).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// At most `max` characters of user input (a path, a flag value) for an error line, with an
/// ellipsis in the middle when cut (the start and the end of a path both say something), and
/// control characters escaped so that the line stays one line.
pub fn shorten(s: &str, max: usize) -> String {
    let escaped: String = s.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect();
    let n = escaped.chars().count();
    if n <= max {
        return escaped;
    }
    let head = (max - 1) * 2 / 3;
    let tail = max - 1 - head;
    let start: String = escaped.chars().take(head).collect();
    let end: String = escaped.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// How much of one piece of user input an error line quotes.
pub const QUOTE_MAX: usize = 80;
