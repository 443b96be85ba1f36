//! The processor: features from CPUID, turning AVX on (firmware leaves it off), the time
//! stamp counter as a clock, and how to leave (power off, or report to QEMU).

use core::arch::x86_64::{__cpuid, __cpuid_count, _rdtsc};
use core::time::Duration;
use uefi::runtime::{self, ResetType};
use uefi::{boot, Status};

pub struct CpuInfo {
    pub vendor: [u8; 12],
    pub sse2: bool,
    pub avx: bool,
    pub avx2: bool,
    pub fma: bool,
    pub xsave: bool,
    /// "TCGTCGTCGTCG", "KVMKVMKVM", ... when running under a hypervisor.
    pub hypervisor: Option<[u8; 12]>,
}

impl CpuInfo {
    pub fn read() -> CpuInfo {
        let l0 = __cpuid(0);
        let mut vendor = [0u8; 12];
        vendor[..4].copy_from_slice(&l0.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&l0.edx.to_le_bytes());
        vendor[8..].copy_from_slice(&l0.ecx.to_le_bytes());
        let l1 = __cpuid(1);
        let l7b = if l0.eax >= 7 { __cpuid_count(7, 0).ebx } else { 0 };
        let hypervisor = (l1.ecx & (1 << 31) != 0).then(|| {
            let h = __cpuid(0x4000_0000);
            let mut id = [0u8; 12];
            id[..4].copy_from_slice(&h.ebx.to_le_bytes());
            id[4..8].copy_from_slice(&h.ecx.to_le_bytes());
            id[8..].copy_from_slice(&h.edx.to_le_bytes());
            id
        });
        CpuInfo {
            vendor,
            sse2: l1.edx & (1 << 26) != 0,
            fma: l1.ecx & (1 << 12) != 0,
            xsave: l1.ecx & (1 << 26) != 0,
            avx: l1.ecx & (1 << 28) != 0,
            avx2: l7b & (1 << 5) != 0,
            hypervisor,
        }
    }

    pub fn under_qemu(&self) -> bool {
        matches!(&self.hypervisor, Some(id) if id == b"TCGTCGTCGTCG" || id.starts_with(b"KVMKVMKVM"))
    }
}

/// Enables SSE and AVX state on the calling CPU: CR0.EM/TS off and MP on, CR4 OSFXSR,
/// OSXMMEXCPT and OSXSAVE on, then XCR0 |= x87 | SSE | AVX. Returns false (changing
/// nothing) when the CPU lacks XSAVE or AVX. Must run on every core that runs kernels.
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
        let xcr0 = ((hi as u64) << 32 | lo as u64) | 0b111;
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
