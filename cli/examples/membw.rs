//! Read bandwidth of this machine's memory, the physical limit of decoding (every weight is
//! read once per token): a buffer far larger than the caches is read in parallel by T
//! threads (each its own contiguous part), with 256-bit loads where AVX2 is usable; the best
//! of the repetitions. For scripts/bench-llamacpp.sh.
//!
//!     cargo run --release --example membw -- [MIB] [THREADS...]      (default 512 MiB, 1 2)
//!
//! Prints one tab-separated line per thread count: threads, GB/s (10^9 bytes per second).

use std::time::Instant;

/// 64 bytes: one cache line.
type Line = [u64; 8];

/// XOR of every word (the result is used, so the reads cannot be optimised away).
fn read_all(lines: &[Line]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected on this CPU just above.
        return unsafe { read_all_avx2(lines) };
    }
    read_all_portable(lines)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn read_all_avx2(lines: &[Line]) -> u64 {
    // The same loop, compiled with 256-bit loads.
    read_all_portable(lines)
}

#[inline(always)]
fn read_all_portable(lines: &[Line]) -> u64 {
    let mut acc = [0u64; 8];
    for l in lines {
        for (a, w) in acc.iter_mut().zip(l) {
            *a ^= w;
        }
    }
    acc.iter().fold(0, |x, y| x ^ y)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib: usize = args.first().map_or(Ok(512), |s| s.parse())?;
    let threads: Vec<usize> = if args.len() > 1 { args[1..].iter().map(|s| s.parse()).collect::<Result<_, _>>()? } else { vec![1, 2] };
    if mib == 0 || threads.contains(&0) {
        return Err("membw: MIB and THREADS must be positive".into());
    }
    let n = mib * (1 << 20) / size_of::<Line>();
    // Distinct values, written once (every page faulted in before timing).
    let buf: Vec<Line> = (0..n as u64).map(|i| core::array::from_fn(|j| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ j as u64)).collect();
    let mut sink = 0u64;
    for &t in &threads {
        let part = n.div_ceil(t);
        let mut best = 0.0f64;
        for _ in 0..5 {
            let t0 = Instant::now();
            let x = std::thread::scope(|s| {
                let hs: Vec<_> = buf.chunks(part).map(|c| s.spawn(move || read_all(c))).collect();
                hs.into_iter().map(|h| h.join().expect("reader thread")).fold(0, |a, b| a ^ b)
            });
            let secs = t0.elapsed().as_secs_f64();
            sink ^= x;
            best = best.max((n * size_of::<Line>()) as f64 / secs / 1e9);
        }
        println!("{t}\t{best:.1}");
    }
    // Keeps the reads observable.
    if sink == 0x5eed {
        eprintln!("(membw: an unlikely checksum)");
    }
    Ok(())
}
