//! A small pool of worker threads that wait for work by spinning, for the engine's many short
//! parallel steps (decoding one token runs ~170 matrix products, each a few tens of
//! microseconds on two cores). A rayon scope entered from outside its pool puts the calling
//! thread to sleep and wakes it for every step, which cost ~10% of two-thread decoding here;
//! these workers spin while work keeps coming and park only after ~2 ms without any.
//!
//! One job at a time, published by the thread that calls [`SpinPool::run`] (which also works
//! on it): `state` packs the job's epoch (high 32 bits), its task count (16 bits) and the next
//! unclaimed task (low 16 bits) in one word, so a worker's view of a job can never mix two
//! jobs. A worker claims a task with a compare-exchange on `state`, so a claim names the epoch
//! it was made for; `run` returns only after every task of its epoch has finished.

use llm_engine::Parallel;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The job of one epoch: a task function, borrowed for the duration of `run`.
type Task = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// (epoch << 32) | (tasks << 16) | next unclaimed task.
    state: AtomicU64,
    /// Tasks of the current job that have finished.
    done: AtomicUsize,
    /// The current job's function: points to a `Task` on the stack of the thread inside
    /// `run` (written before its epoch is published).
    job: AtomicPtr<Task>,
    /// A task panicked (the panic is re-raised by `run` once every task has finished).
    panicked: AtomicBool,
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

/// Tasks per published job (16 bits of the state word).
const MAX_TASKS: usize = 0xffff;

/// How long an idle worker spins before parking.
const SPIN: Duration = Duration::from_millis(2);

impl SpinPool {
    /// A pool of `n` workers in all: the calling thread plus `n - 1` spawned ones.
    pub fn new(n: usize) -> std::io::Result<SpinPool> {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
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
        // At most MAX_TASKS per published job (the state word's field).
        for start in (0..tasks).step_by(MAX_TASKS) {
            let n = MAX_TASKS.min(tasks - start);
            self.run_job(n, &|i| f(start + i));
        }
    }

    fn run_job(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        // 32-bit epochs, wrapping (a worker would have to sleep through 2^32 jobs to confuse two).
        let epoch = ((s.state.load(Relaxed) >> 32) + 1) & 0xffff_ffff;
        // The job, as a thin pointer to a fat one on this stack frame. Workers dereference it
        // only after claiming a task of this epoch, and every claimed task finishes before this
        // function returns (the wait below), so it outlives every use.
        // SAFETY: only the trait object's lifetime is erased (same fat-pointer layout); see
        // above for why no use outlives the borrow.
        let mut task: Task = unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), Task>(f) };
        s.job.store(&mut task as *mut Task, Release);
        s.done.store(0, Relaxed);
        s.panicked.store(false, Relaxed);
        s.state.store(epoch << 32 | (tasks as u64) << 16, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            for w in &self.workers {
                w.thread().unpark();
            }
        }
        // The caller works too.
        let mut finished = 0;
        while let Some(i) = claim(s, epoch) {
            if catch_unwind(AssertUnwindSafe(|| f(i))).is_err() {
                s.panicked.store(true, Release);
            }
            finished += 1;
        }
        s.done.fetch_add(finished, AcqRel);
        while s.done.load(Acquire) < tasks {
            std::hint::spin_loop();
        }
        s.job.store(std::ptr::null_mut(), Release);
        if s.panicked.load(Acquire) {
            panic!("a worker task panicked");
        }
    }
}

/// Claims the next task of `epoch`, if one is left (the count comes from the same word).
fn claim(s: &Shared, epoch: u64) -> Option<usize> {
    let mut cur = s.state.load(Acquire);
    loop {
        let (tasks, next) = ((cur >> 16) & 0xffff, cur & 0xffff);
        if cur >> 32 != epoch || next >= tasks {
            return None;
        }
        match s.state.compare_exchange_weak(cur, cur + 1, AcqRel, Acquire) {
            Ok(_) => return Some(next as usize),
            Err(now) => cur = now,
        }
    }
}

fn worker(s: &Shared) {
    let mut seen = 0u64;
    let mut idle_since = Instant::now();
    loop {
        if s.stop.load(Acquire) {
            return;
        }
        let epoch = s.state.load(Acquire) >> 32;
        if epoch == seen {
            if idle_since.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            // Park; the publisher unparks when it sees a sleeper (SeqCst on both sides: either
            // it sees this count or this thread sees its new epoch).
            s.sleepers.fetch_add(1, SeqCst);
            if s.state.load(SeqCst) >> 32 == seen && !s.stop.load(SeqCst) {
                thread::park_timeout(Duration::from_millis(100));
            }
            s.sleepers.fetch_sub(1, SeqCst);
            idle_since = Instant::now();
            continue;
        }
        seen = epoch;
        let mut finished = 0;
        while let Some(i) = claim(s, epoch) {
            // SAFETY: the claim succeeded for `epoch`, so that job is in progress: `run`
            // published `job` before the epoch (the claim's Acquire sees it), cannot publish
            // another before this task is counted done, and keeps the pointed-to `Task` and
            // function alive until then.
            let f = unsafe { &**s.job.load(Acquire) };
            if catch_unwind(AssertUnwindSafe(|| f(i))).is_err() {
                s.panicked.store(true, Release);
            }
            finished += 1;
        }
        if finished > 0 {
            s.done.fetch_add(finished, AcqRel);
        }
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
