//! Multi-core inference with no OS: one persistent worker per application processor (AP),
//! started once through the firmware's MP Services protocol, fed through atomics.
//!
//! Why persistent: MP Services notices a non-blocking dispatch's completion only on a timer
//! tick (~100 ms under OVMF), far too slow per matrix multiply. So each AP runs
//! `ap_main` forever: it spins on the job board's epoch and takes tasks through the engine's
//! [`JobBoard`] (the same claim protocol as the host's worker threads: a claim names its
//! job, so an AP that looks late, or was just enabled by `/cores`, cannot run a task twice or
//! after its job returned). APs never call firmware services (not allowed). Each output
//! element is still computed by one core in the canonical order, so the text is identical
//! whatever the core count.

use crate::cpu::{self, CpuInfo};
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use llm_engine::Parallel;
use llm_engine::parallel::spin::JobBoard;
use uefi::boot::{self, EventType, Tpl};
use uefi::proto::pi::mp::MpServices;

/// State shared between the boot processor (BSP) and the APs. Lives for the whole session.
struct Shared {
    /// Where the BSP publishes a job and everyone claims its tasks.
    board: JobBoard,
    /// How many APs take part (set by /cores; APs beyond it sit out).
    active_aps: AtomicUsize,
    /// APs that have started and enabled their vector state.
    ready: AtomicUsize,
    enable_avx: AtomicBool,
    info: CpuInfo,
}

pub struct Pool {
    shared: Option<&'static Shared>,
    aps: usize,
}

extern "efiapi" fn ap_main(arg: *mut c_void) {
    // SAFETY: `arg` is the leaked &'static Shared passed by `Pool::start`.
    let s = unsafe { &*(arg as *const Shared) };
    // APs arrive with AVX off (CR4 = 0x660): enable it here, as on the BSP.
    if s.enable_avx.load(Ordering::Acquire) {
        cpu::enable_avx(&s.info);
    }
    let me = s.ready.fetch_add(1, Ordering::AcqRel);
    let mut seen = s.board.epoch();
    loop {
        let epoch = s.board.epoch();
        if epoch == seen {
            core::hint::spin_loop();
            continue;
        }
        seen = epoch;
        if me < s.active_aps.load(Ordering::Acquire) {
            s.board.work(epoch, &call);
        }
    }
}

/// Runs one task (a panic on bare metal stops the machine: nothing to catch).
fn call(f: &(dyn Fn(usize) + Sync), i: usize) -> bool {
    f(i);
    true
}

impl Pool {
    /// Starts one worker per enabled AP, or none when MP Services is missing.
    pub fn start(info: &CpuInfo) -> Pool {
        let single = Pool { shared: None, aps: 0 };
        let Ok(handle) = boot::get_handle_for_protocol::<MpServices>() else { return single };
        let Ok(mp) = boot::open_protocol_exclusive::<MpServices>(handle) else { return single };
        let Ok(count) = mp.get_number_of_processors() else { return single };
        let aps = count.enabled.saturating_sub(1);
        if aps == 0 {
            return single;
        }
        let shared: &'static Shared = alloc::boxed::Box::leak(alloc::boxed::Box::new(Shared {
            board: JobBoard::new(),
            active_aps: AtomicUsize::new(aps),
            ready: AtomicUsize::new(0),
            enable_avx: AtomicBool::new(info.avx && info.xsave),
            info: CpuInfo::read(),
        }));
        // Non-blocking: with an event the call returns at once and the APs keep running.
        // SAFETY: no notification function; the event is never waited on or closed.
        let Ok(event) = (unsafe { boot::create_event(EventType::empty(), Tpl::CALLBACK, None, None) }) else { return single };
        if mp.startup_all_aps(false, ap_main, shared as *const Shared as *mut c_void, Some(event), None).is_err() {
            return single;
        }
        // Wait (up to about a second) for every AP to report in.
        for _ in 0..1000 {
            if shared.ready.load(Ordering::Acquire) == aps {
                break;
            }
            boot::stall(core::time::Duration::from_millis(1));
        }
        let ready = shared.ready.load(Ordering::Acquire);
        shared.active_aps.store(ready, Ordering::Release);
        // The protocol handle stays open: it is never closed while the APs run.
        core::mem::forget(mp);
        Pool { shared: Some(shared), aps: ready }
    }

    /// Cores that can work: the BSP plus every started AP.
    pub fn available(&self) -> usize {
        1 + self.aps
    }

    /// Use `cores` cores (including the BSP) from now on: 0 means all, more than exist means
    /// all of them. Returns how many are in use.
    pub fn set_active(&self, cores: usize) -> usize {
        let cores = if cores == 0 { self.available() } else { cores.clamp(1, self.available()) };
        if let Some(s) = self.shared {
            s.active_aps.store(cores - 1, Ordering::Release);
        }
        cores
    }
}

impl Parallel for Pool {
    fn workers(&self) -> usize {
        self.shared.map_or(1, |s| 1 + s.active_aps.load(Ordering::Acquire))
    }

    /// The APs are already spinning: a hand-off is a few cache-line transfers, so even one
    /// decode-step projection of a small model (C = 128: 16K multiply-adds) is worth it.
    fn grain(&self) -> usize {
        1 << 13
    }

    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let Some(s) = self.shared else {
            (0..tasks).for_each(f);
            return;
        };
        let active = s.active_aps.load(Ordering::Acquire);
        if active == 0 || tasks <= 1 {
            (0..tasks).for_each(f);
            return;
        }
        s.board.run(tasks, f, &|| {}, &call);
    }
}
