//! How spinning workers take work: the claim protocol shared by the host's worker threads
//! (`cli/src/spin_pool.rs`) and the firmware's application processors (`uefi-app/src/mp.rs`).
//! They differ in how workers start, wait and wake; they take tasks the same way, here.
//!
//! One job at a time, published by the thread that calls [`JobBoard::run`] (which also works
//! on it): `state` packs the job's epoch (high 32 bits), its task count (16 bits) and the next
//! unclaimed task (low 16 bits) in one word, so a worker's view of a job can never mix two
//! jobs. A worker claims a task with a compare-exchange on `state`, so a claim names the epoch
//! it was made for. `run` returns once every task of its epoch has finished, counted in `done`
//! whoever ran it: how many workers took part does not matter, and a worker that looks late
//! (descheduled, or just enabled by `/cores`) finds nothing left to claim instead of running a
//! task twice or after its job has returned. (The host pool found the double run the hard way;
//! the firmware's pool, with separate counters, had the same window.)

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};

/// The job of one epoch: a task function, borrowed for the duration of `run`.
type Task = *const (dyn Fn(usize) + Sync);

/// Runs one task (`f(i)`); false when it failed (the host catches a panic there).
pub type Call<'a> = &'a dyn Fn(&(dyn Fn(usize) + Sync), usize) -> bool;

/// Tasks per published job (16 bits of the state word); [`JobBoard::run`] splits more.
pub const MAX_TASKS: usize = 0xffff;

pub struct JobBoard {
    /// (epoch << 32) | (tasks << 16) | next unclaimed task.
    state: AtomicU64,
    /// Tasks of the current job that have finished.
    done: AtomicUsize,
    /// The current job's function: points to a `Task` on the stack of the thread inside `run`
    /// (written before its epoch is published).
    job: AtomicPtr<Task>,
    /// A task of the current job failed.
    failed: AtomicBool,
    /// Held by the thread inside `run`: one publisher at a time.
    publishing: AtomicBool,
}

impl Default for JobBoard {
    fn default() -> Self {
        JobBoard::new()
    }
}

impl JobBoard {
    pub const fn new() -> JobBoard {
        JobBoard {
            state: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            job: AtomicPtr::new(core::ptr::null_mut()),
            failed: AtomicBool::new(false),
            publishing: AtomicBool::new(false),
        }
    }

    /// The epoch of the latest job: a worker compares it with the last one it worked on.
    /// (SeqCst, as the publication: a worker that counts itself asleep and then reads the
    /// epoch, against a publisher that stores the epoch and then reads that count, cannot
    /// both miss the other.)
    pub fn epoch(&self) -> u64 {
        self.state.load(SeqCst) >> 32
    }

    /// Runs `f(0..tasks)`: publishes the work as jobs of at most [`MAX_TASKS`] tasks, calls
    /// `wake` after each publication (for workers that sleep), works on each job too, and
    /// returns once every task has finished: true when no `call` failed.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync), wake: &dyn Fn(), call: Call<'_>) -> bool {
        while self.publishing.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            core::hint::spin_loop();
        }
        let mut ok = true;
        for start in (0..tasks).step_by(MAX_TASKS) {
            let n = MAX_TASKS.min(tasks - start);
            ok &= self.run_job(n, &|i| f(start + i), wake, call);
        }
        self.publishing.store(false, Release);
        ok
    }

    fn run_job(&self, tasks: usize, f: &(dyn Fn(usize) + Sync), wake: &dyn Fn(), call: Call<'_>) -> bool {
        // 32-bit epochs, wrapping (a worker would have to sleep through 2^32 jobs to confuse two).
        let epoch = ((self.state.load(Relaxed) >> 32) + 1) & 0xffff_ffff;
        // The job, as a thin pointer to a fat one on this stack frame. Workers dereference it
        // only after claiming a task of this epoch, and every claimed task finishes before this
        // function returns (the wait below), so it outlives every use.
        // SAFETY: only the trait object's lifetime is erased (same fat-pointer layout); see
        // above for why no use outlives the borrow.
        let mut task: Task = unsafe { core::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), Task>(f) };
        self.job.store(&mut task as *mut Task, Release);
        self.done.store(0, Relaxed);
        self.failed.store(false, Relaxed);
        self.state.store(epoch << 32 | (tasks as u64) << 16, SeqCst);
        wake();
        let mut finished = 0;
        while let Some(i) = self.claim(epoch) {
            if !call(f, i) {
                self.failed.store(true, Release);
            }
            finished += 1;
        }
        self.done.fetch_add(finished, AcqRel);
        while self.done.load(Acquire) < tasks {
            core::hint::spin_loop();
        }
        self.job.store(core::ptr::null_mut(), Release);
        !self.failed.load(Acquire)
    }

    /// Claims the next task of `epoch`, if one is left (the count comes from the same word).
    pub fn claim(&self, epoch: u64) -> Option<usize> {
        let mut cur = self.state.load(Acquire);
        loop {
            let (tasks, next) = ((cur >> 16) & 0xffff, cur & 0xffff);
            if cur >> 32 != epoch || next >= tasks {
                return None;
            }
            match self.state.compare_exchange_weak(cur, cur + 1, AcqRel, Acquire) {
                Ok(_) => return Some(next as usize),
                Err(now) => cur = now,
            }
        }
    }

    /// A worker's part of the job of `epoch` (as [`epoch`](Self::epoch) gave it): claims and
    /// runs tasks until none is left. Returns how many it ran.
    pub fn work(&self, epoch: u64, call: Call<'_>) -> usize {
        let mut finished = 0;
        while let Some(i) = self.claim(epoch) {
            // SAFETY: the claim succeeded for `epoch`, so that job is in progress: `run`
            // published `job` before the epoch (the claim's Acquire sees it), cannot publish
            // another before this task is counted done, and keeps the pointed-to `Task` and
            // function alive until then.
            let f = unsafe { &**self.job.load(Acquire) };
            if !call(f, i) {
                self.failed.store(true, Release);
            }
            finished += 1;
        }
        if finished > 0 {
            self.done.fetch_add(finished, AcqRel);
        }
        finished
    }
}
