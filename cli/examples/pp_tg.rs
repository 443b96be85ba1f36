//! Prompt-processing and text-generation speed measured the way llama-bench reports them
//! (`-p 64 -n 64`), for scripts/bench-llamacpp.sh: ppN = N prompt tokens fed as one prefill
//! into a fresh context; tgN = N tokens generated greedily one at a time, after those N
//! prompt tokens. Reports the median of the repetitions (`llm-baremetal bench` the best).
//!
//!     cargo run --release --example pp_tg -- MODEL [THREADS] [PP] [TG] [REPEAT] [auto|scalar|avx2|q8|all|every|SET]
//!
//! Prints one tab-separated line per kernel set (`all`: the fastest of each family; `every`:
//! every set this CPU runs): kernels, threads, pp tok/s, tg tok/s, and the megabytes (10^6)
//! of weights a decoded token reads (`Weights::bytes_per_token`).

use llm_engine::kernels::Family;
use llm_engine::{Kernels, SamplerConfig, Session};
use std::time::Instant;

#[path = "../src/spin_pool.rs"]
mod spin_pool;
use spin_pool::SpinPool;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: pp_tg MODEL [THREADS] [PP] [TG] [REPEAT] [auto|scalar|avx2|q8|all|every|SET]");
        std::process::exit(2);
    }
    let num = |i: usize, d: usize| args.get(i).map_or(Ok(d), |s| s.parse::<usize>());
    let (n, pp, tg, repeat) = (num(2, 1)?.max(1), num(3, 64)?.max(1), num(4, 64)?, num(5, 3)?.max(1));
    let sets: Vec<Kernels> = match args.get(6).map_or("auto", |s| s.as_str()) {
        "auto" => vec![Kernels::detect()],
        "scalar" | "sse2" => vec![Kernels::detect_family(Family::NoFma).ok_or("no no-FMA kernels")?],
        "avx2" | "fma" => vec![Kernels::detect_family(Family::Fma).ok_or("no AVX2+FMA on this CPU")?],
        "q8" | "avx2-q8" => vec![Kernels::detect_family(Family::FmaQ8).ok_or("no AVX2+FMA on this CPU")?],
        "all" => [Family::NoFma, Family::Fma, Family::FmaQ8].into_iter().filter_map(Kernels::detect_family).collect(),
        "every" => Kernels::available(),
        name => vec![Kernels::by_name(name).map_err(|e| format!("kernels {name}: {e:?}"))?],
    };
    // As the host tool's thread pool (cli/src/host.rs).
    let threads = SpinPool::new(n)?;
    // As the host tool reads a model (`MappedFile::read_for_inference`): into anonymous
    // memory advised for transparent huge pages.
    let file = std::fs::read(&args[1])?;
    let mut bytes = memmap2::MmapOptions::new().len(file.len().max(1)).map_anon()?;
    #[cfg(target_os = "linux")]
    let _ = bytes.advise(memmap2::Advice::HugePage);
    bytes[..file.len()].copy_from_slice(&file);
    let bytes = &bytes[..file.len()];
    drop(file);
    let loaded = llm_engine::load(bytes).map_err(|e| format!("{}: {e:?}", args[1]))?;
    let model = &loaded.model;
    let vocab = model.spec().vocab_size;
    let ctx = (pp + tg).min(model.spec().context);
    let greedy = SamplerConfig { temperature: 0.0, ..SamplerConfig::default() };
    for k in sets {
        let (mut ps, mut ds) = (Vec::new(), Vec::new());
        // One warm-up run (page faults of the mapped weights, thread start), as llama-bench does.
        for rep in 0..=repeat {
            let mut s = Session::with_context(model, k, ctx, greedy, 1)?;
            let prompt: Vec<u32> = (0..pp).map(|i| ((i * 7919 + 13) % vocab) as u32).collect();
            let t0 = Instant::now();
            s.feed(&prompt, &threads)?;
            let p = pp as f64 / t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            for _ in 0..tg {
                s.next_token(&threads)?;
            }
            let d = tg as f64 / t1.elapsed().as_secs_f64();
            if rep > 0 {
                ps.push(p);
                ds.push(d);
            }
        }
        let mb = model.weights().bytes_per_token() as f64 / 1e6;
        println!("{}\t{n}\t{:.1}\t{:.1}\t{mb:.1}", k.name(), median(ps), if tg > 0 { median(ds) } else { 0.0 });
    }
    Ok(())
}
