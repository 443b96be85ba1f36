//! The processor: features from CPUID, turning AVX on (firmware leaves it off), the time
//! stamp counter as a clock, and how to leave (power off, or report to QEMU).

use core::arch::x86_64::_rdtsc;
use core::time::Duration;
use uefi::runtime::{self, ResetType};
use uefi::{Status, boot};

/// What the processor offers: the engine's CPUID module (one place for feature checks).
pub use llm_engine::cpu::CpuFeatures as CpuInfo;
use llm_engine::cpu::XCR0_AVX512;

/// Enables SSE and AVX state on the calling CPU: CR0.EM/TS off and MP on, CR4 OSFXSR,
/// OSXMMEXCPT and OSXSAVE on, then XCR0 |= x87 | SSE | AVX, and the AVX-512 state (opmask,
/// ZMM_Hi256, Hi16_ZMM) too where CPUID says the CPU has AVX-512 and XCR0 takes those bits
/// (leaf 0xD's mask of the bits XCR0 supports). Returns false (changing nothing) when the
/// CPU lacks XSAVE or AVX. Must run on every core that runs kernels.
pub fn enable_avx(info: &CpuInfo) -> bool {
    if !(info.xsave && info.avx) {
        return false;
    }
    // SAFETY: the bits set are architecturally defined and the features were checked above;
    // this only widens which instructions are allowed.
    unsafe {
        let mut cr0: u64;
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack, preserves_flags));
        cr0 &= !((1 << 2) | (1 << 3)); // EM, TS
        cr0 |= 1 << 1; // MP
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack, preserves_flags));
        let mut cr4: u64;
        core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags));
        cr4 |= (1 << 9) | (1 << 10) | (1 << 18); // OSFXSR, OSXMMEXCPT, OSXSAVE
        core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nostack, preserves_flags));
        let (lo, hi): (u32, u32);
        core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags));
        let mut xcr0 = ((hi as u64) << 32 | lo as u64) | 0b111;
        // Leaf 0xD exists on every CPU with XSAVE; EAX = the XCR0 bits it supports (low half).
        let supported = core::arch::x86_64::__cpuid_count(0xd, 0).eax as u64;
        if info.avx512f && supported & XCR0_AVX512 == XCR0_AVX512 {
            xcr0 |= XCR0_AVX512;
        }
        core::arch::asm!("xsetbv", in("ecx") 0, in("eax") xcr0 as u32, in("edx") (xcr0 >> 32) as u32, options(nostack, preserves_flags));
    }
    true
}

/// A clock from the time stamp counter, calibrated against the firmware's Stall().
#[derive(Clone, Copy)]
pub struct Clock {
    ticks_per_second: f64,
}

impl Clock {
    pub fn calibrate() -> Clock {
        let t0 = now_ticks();
        boot::stall(Duration::from_millis(50));
        let t1 = now_ticks();
        Clock { ticks_per_second: ((t1 - t0) as f64 * 20.0).max(1.0) }
    }

    pub fn ghz(&self) -> f64 {
        self.ticks_per_second / 1e9
    }

    pub fn seconds_since(&self, start: u64) -> f64 {
        (now_ticks().wrapping_sub(start)) as f64 / self.ticks_per_second
    }
}

pub fn now_ticks() -> u64 {
    // SAFETY: RDTSC is available on every x86_64 CPU.
    unsafe { _rdtsc() }
}

/// Ends the session. Under QEMU with `-device isa-debug-exit,iobase=0xf4`, a failure is
/// reported as QEMU exit status 3; otherwise (and on success) the machine powers off
/// through ResetSystem, which QEMU reports as status 0.
pub fn power_off(success: bool, info: &CpuInfo) -> ! {
    if !success && info.under_qemu() {
        // SAFETY: port 0xF4 is QEMU's debug-exit device; elsewhere the write is ignored.
        unsafe { core::arch::asm!("out dx, eax", in("dx") 0xF4u16, in("eax") 1u32, options(nomem, nostack)) };
    }
    runtime::reset(ResetType::SHUTDOWN, if success { Status::SUCCESS } else { Status::ABORTED }, None)
}
