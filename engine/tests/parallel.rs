//! The spinning pools' claim protocol (`parallel::spin::JobBoard`), driven by std threads as
//! the host pool and the firmware's APs drive it.

use llm_engine::parallel::spin::{JobBoard, MAX_TASKS};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Barrier};

fn call(f: &(dyn Fn(usize) + Sync), i: usize) -> bool {
    f(i);
    true
}

/// Workers as the firmware runs them: spin on the epoch, work on each new one.
fn spawn_workers(board: &Arc<JobBoard>, n: usize, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (b, stop) = (Arc::clone(board), Arc::clone(stop));
            std::thread::spawn(move || {
                let mut seen = b.epoch();
                while !stop.load(Acquire) {
                    let e = b.epoch();
                    if e == seen {
                        std::hint::spin_loop();
                        continue;
                    }
                    seen = e;
                    b.work(e, &call);
                }
            })
        })
        .collect()
}

#[test]
fn every_task_runs_once_per_job() {
    for workers in [0, 1, 3] {
        let board = Arc::new(JobBoard::new());
        let stop = Arc::new(AtomicBool::new(false));
        let handles = spawn_workers(&board, workers, &stop);
        for round in 0..3000 {
            let tasks = round % 17;
            let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            assert!(board.run(tasks, &|i| _ = hits[i].fetch_add(1, Relaxed), &|| {}, &call));
            let got: Vec<usize> = hits.iter().map(|h| h.load(Relaxed)).collect();
            assert!(got.iter().all(|&h| h == 1), "{workers} workers, round {round}: runs per task {got:?}");
        }
        stop.store(true, Release);
        handles.into_iter().for_each(|h| h.join().unwrap());
    }
}

/// A worker that read an epoch and looks only later (descheduled; on bare metal an AP that
/// `/cores` just enabled) finds nothing to claim in a newer job: it can neither run a task
/// twice nor run one after its job returned. (The firmware's old pool, with separate
/// generation / next / finished counters, let such an AP take tasks of the newer job.)
#[test]
fn a_late_worker_claims_nothing_of_a_newer_job() {
    let board = Arc::new(JobBoard::new());
    assert!(board.run(3, &|_| {}, &|| {}, &call));
    let stale = board.epoch();
    // A newer job whose first task waits until the stale worker has looked.
    let looked = Arc::new(Barrier::new(2));
    let runs = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let (b, looked, runs) = (Arc::clone(&board), Arc::clone(&looked), Arc::clone(&runs));
        std::thread::spawn(move || {
            let first = AtomicBool::new(true);
            b.run(
                4,
                &|_| {
                    if first.swap(false, AcqRel) {
                        looked.wait();
                    }
                    runs.fetch_add(1, AcqRel);
                },
                &|| {},
                &call,
            )
        })
    };
    while board.epoch() == stale {
        std::hint::spin_loop();
    }
    assert_eq!(board.claim(stale), None);
    assert_eq!(board.work(stale, &call), 0);
    looked.wait();
    assert!(publisher.join().unwrap());
    assert_eq!(runs.load(Acquire), 4);
}

#[test]
fn more_tasks_than_one_job_holds_run_once_each() {
    let board = Arc::new(JobBoard::new());
    let stop = Arc::new(AtomicBool::new(false));
    let handles = spawn_workers(&board, 2, &stop);
    let hits: Vec<AtomicUsize> = (0..MAX_TASKS * 2 + 7).map(|_| AtomicUsize::new(0)).collect();
    assert!(board.run(hits.len(), &|i| _ = hits[i].fetch_add(1, Relaxed), &|| {}, &call));
    assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
    stop.store(true, Release);
    handles.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn a_failed_task_is_reported_after_all_ran() {
    let board = JobBoard::new();
    let ran = AtomicUsize::new(0);
    let fails = |f: &(dyn Fn(usize) + Sync), i: usize| {
        f(i);
        i != 3
    };
    assert!(!board.run(8, &|_| _ = ran.fetch_add(1, Relaxed), &|| {}, &fails));
    assert_eq!(ran.load(Relaxed), 8);
    assert!(board.run(2, &|_| {}, &|| {}, &call), "the next job starts clean");
}
