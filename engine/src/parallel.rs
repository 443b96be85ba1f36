//! How the engine hands independent work items to several cores without knowing who runs
//! them: rayon threads on the host, MP Services application processors on bare metal.

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

/// A raw pointer to a buffer whose disjoint parts are written by different workers. Every
/// use must say why the regions cannot overlap.
#[derive(Clone, Copy)]
pub struct SharedMut(pub *mut f32);

// SAFETY: the pointer is only dereferenced by callers that hand each worker a disjoint range.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    pub fn get(self) -> *mut f32 {
        self.0
    }
}
