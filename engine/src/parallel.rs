//! How the engine hands independent work items to several cores without knowing who runs
//! them: spinning worker threads on the host, MP Services application processors on bare
//! metal, both taking tasks through [`spin::JobBoard`].

pub mod spin;

/// Runs `tasks` independent closures `f(0) .. f(tasks - 1)`, possibly concurrently, and
/// returns when all are done. Implementations must run every index exactly once.
pub trait Parallel: Sync {
    /// How many workers (including the caller) may run tasks at once.
    fn workers(&self) -> usize;
    /// The smallest job (in multiply-adds) worth splitting: below it the hand-off costs more
    /// than it saves. Thread pools need large jobs; spinning bare-metal cores small ones.
    fn grain(&self) -> usize {
        1 << 18
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync));
}

/// Everything on the calling core.
pub struct Serial;

impl Parallel for Serial {
    fn workers(&self) -> usize {
        1
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        for i in 0..tasks {
            f(i);
        }
    }
}

/// A buffer whose disjoint parts are written by different workers. It remembers the
/// buffer's length, so taking a part checks the bounds (`assert!`); the only thing left for
/// the caller to prove is that parts given to different workers do not overlap.
#[derive(Clone, Copy)]
pub struct SharedMut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: parts are only taken through `part`, whose callers hand each worker a disjoint
// range; the pointer itself is just an address.
unsafe impl Send for SharedMut {}
// SAFETY: as for `Send`: sharing the address between workers is sound because each worker
// writes only its own disjoint part (the contract of `part`).
unsafe impl Sync for SharedMut {}

impl SharedMut {
    pub fn new(buf: &mut [f32]) -> SharedMut {
        SharedMut { ptr: buf.as_mut_ptr(), len: buf.len() }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements `start..start + len` of the buffer. Panics when outside it.
    ///
    /// # Safety
    /// The buffer given to [`SharedMut::new`] must outlive the returned slice, and no other
    /// live slice (in any worker) may overlap `start..start + len`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start.checked_add(len).is_some_and(|end| end <= self.len), "part {start}+{len} of a buffer of {}", self.len);
        // SAFETY: in bounds (checked above); exclusivity and lifetime are the caller's promise.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}
