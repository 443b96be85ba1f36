//! Generating a token allocates nothing: a counting global allocator proves it.
//!
//! The allocator is process-wide, but it counts only on a thread that has switched counting
//! on, and only inside `counted`: the test harness's own threads (and other tests running in
//! parallel) allocate freely without being counted.
mod common;

use common::*;
use llm_engine::{Kernels, SamplerConfig, Serial, Session, StopFilter, Tokenizer, checkpoint};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // `const` initialisers with plain `Cell`s: no lazy initialisation, no destructor, so
    // reading them from inside the allocator never allocates and never fails.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(bytes: usize) {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
            let _ = BYTES.try_with(|n| n.set(n.get() + bytes));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counting touches only thread-locals and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note_alloc(l.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc`'s contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note_alloc(l.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc`'s contract.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc`'s contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note_alloc(n.saturating_sub(l.size()));
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc`'s contract.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with counting on for this thread only; returns its result and the number of
/// allocations (and reallocations) it made on this thread.
fn counted<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.with(Cell::get) - before)
}

#[test]
fn the_counter_counts_allocations_on_this_thread_only() {
    // A broken counter (one that never moves) must not let the real test pass.
    let (v, n) = counted(|| std::hint::black_box(Vec::<u64>::with_capacity(100)));
    assert!(n >= 1, "a Vec allocation was not counted");
    drop(v);
    let (b, n) = counted(|| std::hint::black_box(Box::new([7u8; 64])));
    assert_eq!(n, 1);
    drop(b);
    let ((), n) = counted(|| {
        let mut v: Vec<u32> = std::hint::black_box(Vec::new());
        for i in 0..1000 {
            v.push(i); // grows: alloc then reallocs
        }
        std::hint::black_box(&v);
    });
    assert!(n >= 2, "reallocations were not counted: {n}");
    // Allocations outside the counted region are not counted.
    let before = ALLOCS.with(Cell::get);
    drop(std::hint::black_box(vec![1u8; 32]));
    assert_eq!(ALLOCS.with(Cell::get), before);
}

#[test]
fn generating_tokens_allocates_nothing() {
    let cfg = config(2, 2, 32, 16, 256, 256);
    let params = random_params(&cfg, 1, 0.2);
    let model = checkpoint::model_from_params(&cfg, &params).unwrap();
    // A stop string longer than anything 100 one-byte tokens can print: the filter's hold-back
    // path runs, yet it can never end generation early. The byte tokenizer has no end-of-text
    // token either, so exactly 100 tokens are made.
    let never: Vec<u8> = b"ab".repeat(101);
    for kernels in Kernels::available() {
        for stop_strings in [vec![], vec![&never[..]]] {
            let sampling = SamplerConfig { temperature: 0.9, top_k: 10, top_p: 0.9, min_p: 0.05, repeat_penalty: 1.1, repeat_window: 8 };
            let mut s = Session::new(&model, kernels, sampling, 3);
            let mut stops = StopFilter::new(&stop_strings);
            s.feed(&[10, 20, 30], &Serial).unwrap();
            let mut sink = 0usize;
            // 100 tokens in a 16-token context: several window slides included.
            let (made, allocs) = counted(|| {
                s.generate(&Tokenizer::Bytes, 100, &mut stops, &Serial, &mut |b| {
                    sink += b.len();
                    true
                })
            });
            let made = made.unwrap();
            assert_eq!(made, 100, "{kernels:?}: generation ended early");
            assert_eq!(sink, 100, "{kernels:?}: one byte per token");
            assert_eq!(allocs, 0, "{kernels:?}, stops {}: {allocs} allocations while generating {made} tokens", stop_strings.len());
            // 3 + 100 tokens through a 16-token window: it slid, and the slides were measured.
            assert!(s.slides >= 10, "{kernels:?}: only {} slides", s.slides);
        }
    }
}

/// `Model::state_bytes` (what the firmware checks against its free memory, and `inspect`
/// reports) is what building the run state allocates, for every family's shape and context.
#[test]
fn state_bytes_is_what_the_run_state_allocates() {
    use llm_testkit::gguf_ref::{Arch, ArchShape, random_tensors, write_file};
    let cfg = config(2, 2, 32, 16, 256, 256);
    let params = random_params(&cfg, 1, 0.2);
    let llmc = checkpoint::model_from_params(&cfg, &params).unwrap();
    let shape = |arch| ArchShape {
        arch,
        vocab: 64,
        c: 128,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 48,
        ffn: 96,
        context: 64,
        eps: 1e-5,
        rope_base: 10_000.0,
        window: 8,
        tied: true,
    };
    let files: Vec<Vec<u8>> = [Arch::Llama, Arch::Qwen3, Arch::Gemma3]
        .map(|f| write_file(&shape(f), f.name(), &random_tensors(&shape(f), llm_engine::quant::BlockType::Q8_0, 3)))
        .into();
    let loaded: Vec<_> = files.iter().map(|f| llm_engine::load(f).unwrap()).collect();
    let mut models = vec![&llmc];
    models.extend(loaded.iter().map(|l| &l.model));
    for model in models {
        for ctx in [1, 7, 16] {
            let (state, bytes) = counted_bytes(|| model.new_state_with_context(Kernels::portable(), ctx).unwrap());
            drop(state);
            // state_bytes counts whole floats: the 8-bit buffer's bytes are rounded up.
            let want = model.state_bytes(ctx);
            assert!(bytes <= want && want < bytes + 4, "context {ctx}: allocated {bytes}, state_bytes {want}");
        }
    }
}

/// Bytes allocated by `f` on this thread.
fn counted_bytes<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = BYTES.with(Cell::get);
    let (r, _) = counted(f);
    (r, BYTES.with(Cell::get) - before)
}
