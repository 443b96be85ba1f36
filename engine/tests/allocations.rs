//! Generating a token allocates nothing: a counting global allocator proves it.
mod common;

use common::*;
use llm_engine::{KernelSet, Model, SamplerConfig, Serial, Session, StopFilter, Tokenizer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn generating_tokens_allocates_nothing() {
    let cfg = config(2, 2, 32, 16, 256, 256);
    let model = Model::from_params(cfg, random_params(&cfg, 1, 0.2)).unwrap();
    for kernels in [KernelSet::Scalar, KernelSet::detect()] {
        let sampling = SamplerConfig { temperature: 0.9, top_k: 10, top_p: 0.9, min_p: 0.05, repeat_penalty: 1.1, repeat_window: 8 };
        let mut s = Session::new(&model, kernels, sampling, 3);
        let mut stops = StopFilter::new(&[b"\n\n", b"zz"]);
        s.feed(&[10, 20, 30], &Serial).unwrap();
        let mut sink = 0usize;
        let before = ALLOCS.load(Ordering::SeqCst);
        // 100 tokens in a 16-token context: several window slides included.
        let made = s
            .generate(&Tokenizer::Bytes, 100, &mut stops, &Serial, &mut |b| {
                sink += b.len();
                true
            })
            .unwrap();
        let after = ALLOCS.load(Ordering::SeqCst);
        assert!(made > 0 && sink > 0);
        assert_eq!(after - before, 0, "{kernels:?}: {} allocations while generating {made} tokens", after - before);
        assert!(s.slides > 0 || made < 14);
    }
}
