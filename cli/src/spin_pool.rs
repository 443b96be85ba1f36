//! A small pool of worker threads that wait for work by spinning, for the engine's many short
//! parallel steps (decoding one token runs ~170 matrix products, each a few tens of
//! microseconds on two cores). A rayon scope entered from outside its pool puts the calling
//! thread to sleep and wakes it for every step, which cost ~10% of two-thread decoding here;
//! these workers spin while work keeps coming and park only after ~2 ms without any.
//!
//! How a job is published and its tasks claimed is the engine's
//! [`JobBoard`](llm_engine::parallel::spin::JobBoard), shared with the firmware's pool; this
//! file starts the threads, parks and wakes them, and turns a panicking task into a panic of
//! `run` once every task has finished.

use llm_engine::Parallel;
use llm_engine::parallel::spin::JobBoard;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

struct Shared {
    board: JobBoard,
    /// Workers parked (or about to park) for lack of work.
    sleepers: AtomicUsize,
    stop: AtomicBool,
}

pub struct SpinPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serializes `run` (the engine calls it from one thread; this keeps the pool sound if
    /// two threads ever share it).
    lock: std::sync::Mutex<()>,
}

/// How long an idle worker spins before parking.
const SPIN: Duration = Duration::from_millis(2);

impl SpinPool {
    /// A pool of `n` workers in all: the calling thread plus `n - 1` spawned ones.
    pub fn new(n: usize) -> std::io::Result<SpinPool> {
        let shared = Arc::new(Shared { board: JobBoard::new(), sleepers: AtomicUsize::new(0), stop: AtomicBool::new(false) });
        let mut workers = Vec::new();
        for i in 1..n.max(1) {
            let s = Arc::clone(&shared);
            workers.push(thread::Builder::new().name(format!("llm-worker-{i}")).spawn(move || worker(&s))?);
        }
        Ok(SpinPool { shared, workers, lock: std::sync::Mutex::new(()) })
    }

    /// Workers in all (the caller included).
    pub fn workers(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs f(0..tasks) on the caller and the workers; returns when all have finished.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() || tasks <= 1 {
            (0..tasks).for_each(f);
            return;
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        let wake = || {
            // SeqCst on both sides (the board publishes with SeqCst): either this sees the
            // sleeper or the sleeper sees the new epoch.
            if s.sleepers.load(SeqCst) > 0 {
                for w in &self.workers {
                    w.thread().unpark();
                }
            }
        };
        if !s.board.run(tasks, f, &wake, &call) {
            panic!("a worker task panicked");
        }
    }
}

/// Runs one task, catching a panic (reported by `run` once every task has finished).
fn call(f: &(dyn Fn(usize) + Sync), i: usize) -> bool {
    catch_unwind(AssertUnwindSafe(|| f(i))).is_ok()
}

fn worker(s: &Shared) {
    let mut seen = 0u64;
    let mut idle_since = Instant::now();
    loop {
        if s.stop.load(Acquire) {
            return;
        }
        let epoch = s.board.epoch();
        if epoch == seen {
            if idle_since.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            // Park; the publisher unparks when it sees a sleeper (SeqCst on both sides: either
            // it sees this count or this thread sees its new epoch).
            s.sleepers.fetch_add(1, SeqCst);
            if s.board.epoch() == seen && !s.stop.load(SeqCst) {
                thread::park_timeout(Duration::from_millis(100));
            }
            s.sleepers.fetch_sub(1, SeqCst);
            idle_since = Instant::now();
            continue;
        }
        seen = epoch;
        s.board.work(epoch, &call);
        idle_since = Instant::now();
    }
}

impl Drop for SpinPool {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        for w in &self.workers {
            w.thread().unpark();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Parallel for SpinPool {
    fn workers(&self) -> usize {
        SpinPool::workers(self)
    }
    fn grain(&self) -> usize {
        1 << 16
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        SpinPool::run(self, tasks, f)
    }
}

#[cfg(test)]
mod tests {
    use super::SpinPool;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// Every task of every job runs exactly once, jobs back to back (the decode pattern) and
    /// after idle gaps long enough for the workers to park.
    #[test]
    fn every_task_runs_once_per_job() {
        for n in [1, 2, 3, 8] {
            let pool = SpinPool::new(n).unwrap();
            assert_eq!(pool.workers(), n);
            for round in 0..2000 {
                let tasks = round % 13;
                let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                pool.run(tasks, &|i| {
                    hits[i].fetch_add(1, Relaxed);
                });
                let got: Vec<usize> = hits.iter().map(|h| h.load(Relaxed)).collect();
                assert!(got.iter().all(|&h| h == 1), "n {n} round {round}: runs per task {got:?}");
                if round % 500 == 499 {
                    std::thread::sleep(std::time::Duration::from_millis(5)); // workers park
                }
            }
        }
    }

    /// More tasks than one published job holds (16 bits) run in several jobs, each once.
    #[test]
    fn more_tasks_than_one_job_holds() {
        let pool = SpinPool::new(3).unwrap();
        let hits: Vec<AtomicUsize> = (0..70_000).map(|_| AtomicUsize::new(0)).collect();
        pool.run(hits.len(), &|i| {
            hits[i].fetch_add(1, Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
    }

    /// A panicking task does not hang the caller: `run` panics after the others finished, and
    /// the pool keeps working.
    #[test]
    fn a_panicking_task_is_reported_and_the_pool_survives() {
        let pool = SpinPool::new(2).unwrap();
        let done = AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(8, &|i| {
                if i == 5 {
                    panic!("task 5");
                }
                done.fetch_add(1, Relaxed);
            })
        }));
        assert!(r.is_err());
        assert_eq!(done.load(Relaxed), 7);
        let again = AtomicUsize::new(0);
        pool.run(4, &|_| {
            again.fetch_add(1, Relaxed);
        });
        assert_eq!(again.load(Relaxed), 4);
    }
}
