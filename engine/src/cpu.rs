//! What the processor offers, from CPUID: one module for the engine (kernel choice) and the
//! UEFI application (banner, turning AVX on). Reading CPUID is safe on every x86_64 CPU.
//!
//! A feature being present is not enough to use it: the OS (or, on bare metal, our own
//! application) must also have enabled the register state in XCR0. [`avx_state_enabled`]
//! checks that part.

/// The features the engine and the firmware app care about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// CPUID leaf 0 vendor string, e.g. "AuthenticAMD".
    pub vendor: [u8; 12],
    pub sse2: bool,
    /// SSSE3 (`pmaddubsw`, `psignb`, `pshufb`): the no-FMA 8-bit kernels.
    pub ssse3: bool,
    pub xsave: bool,
    /// CR4.OSXSAVE as seen by CPUID: the OS (or our app) enabled XSAVE/XGETBV.
    pub osxsave: bool,
    pub avx: bool,
    pub avx2: bool,
    pub fma: bool,
    /// F16C (`vcvtph2ps`): every AVX2 CPU has it; the AVX2 sets require it.
    pub f16c: bool,
    pub avx512f: bool,
    /// AVX-512 byte/word operations, 128/256-bit vectors (VL) and VNNI (`vpdpbusd` in EVEX):
    /// the `avx512-vnni` set, with the opmask and ZMM state enabled in XCR0.
    pub avx512bw: bool,
    pub avx512vl: bool,
    pub avx512_vnni: bool,
    /// AVX-VNNI (VEX-encoded `vpdpbusd` on YMM registers: the AVX state suffices).
    pub avx_vnni: bool,
    /// Leaf 0x40000000 signature ("TCGTCGTCGTCG", "KVMKVMKVM") when a hypervisor is present.
    pub hypervisor: Option<[u8; 12]>,
}

impl CpuFeatures {
    #[cfg(target_arch = "x86_64")]
    pub fn read() -> CpuFeatures {
        use core::arch::x86_64::{__cpuid, __cpuid_count};
        let l0 = __cpuid(0);
        let mut vendor = [0u8; 12];
        vendor[..4].copy_from_slice(&l0.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&l0.edx.to_le_bytes());
        vendor[8..].copy_from_slice(&l0.ecx.to_le_bytes());
        let l1 = __cpuid(1);
        // Leaf 7 only where leaf 0 says it exists.
        let l7 = if l0.eax >= 7 { __cpuid_count(7, 0) } else { __cpuid_count(0, 0) };
        let (l7b, l7c) = if l0.eax >= 7 { (l7.ebx, l7.ecx) } else { (0, 0) };
        // Sub-leaf 1 only where sub-leaf 0 says it exists (EAX = the highest sub-leaf).
        let l71a = if l0.eax >= 7 && l7.eax >= 1 { __cpuid_count(7, 1).eax } else { 0 };
        let hypervisor = (l1.ecx & (1 << 31) != 0).then(|| {
            let h = __cpuid(0x4000_0000);
            let mut id = [0u8; 12];
            id[..4].copy_from_slice(&h.ebx.to_le_bytes());
            id[4..8].copy_from_slice(&h.ecx.to_le_bytes());
            id[8..].copy_from_slice(&h.edx.to_le_bytes());
            id
        });
        CpuFeatures {
            vendor,
            sse2: l1.edx & (1 << 26) != 0,
            ssse3: l1.ecx & (1 << 9) != 0,
            fma: l1.ecx & (1 << 12) != 0,
            f16c: l1.ecx & (1 << 29) != 0,
            xsave: l1.ecx & (1 << 26) != 0,
            osxsave: l1.ecx & (1 << 27) != 0,
            avx: l1.ecx & (1 << 28) != 0,
            avx2: l7b & (1 << 5) != 0,
            avx512f: l7b & (1 << 16) != 0,
            avx512bw: l7b & (1 << 30) != 0,
            avx512vl: l7b & (1 << 31) != 0,
            avx512_vnni: l7c & (1 << 11) != 0,
            avx_vnni: l71a & (1 << 4) != 0,
            hypervisor,
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn read() -> CpuFeatures {
        CpuFeatures::default()
    }

    /// True under QEMU (TCG or KVM), where the firmware app may report through isa-debug-exit.
    pub fn under_qemu(&self) -> bool {
        matches!(&self.hypervisor, Some(id) if id == b"TCGTCGTCGTCG" || id.starts_with(b"KVMKVMKVM"))
    }

    /// AVX2, FMA and F16C present and their register state enabled: the AVX2 kernels may run.
    pub fn avx2_fma_usable(&self) -> bool {
        self.avx && self.avx2 && self.fma && self.f16c && self.osxsave && avx_state_enabled()
    }

    /// As [`CpuFeatures::avx2_fma_usable`], with AVX-VNNI too.
    pub fn avx_vnni_usable(&self) -> bool {
        self.avx_vnni && self.avx2_fma_usable()
    }

    /// As [`CpuFeatures::avx2_fma_usable`], with AVX-512 F, BW, VL and VNNI present and their
    /// state (opmask, upper ZMM halves, ZMM16-31) enabled in XCR0: the `avx512-vnni` set.
    pub fn avx512_vnni_usable(&self) -> bool {
        self.avx512f && self.avx512bw && self.avx512vl && self.avx512_vnni && self.avx2_fma_usable() && avx512_state_enabled()
    }
}

/// The XCR0 bits of the AVX-512 state: opmask, ZMM_Hi256, Hi16_ZMM.
pub const XCR0_AVX512: u64 = 0b1110_0000;

/// XCR0 has the AVX-512 state bits set (and the AVX ones).
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512_state_enabled() -> bool {
    if !avx_state_enabled() {
        return false;
    }
    // SAFETY: `avx_state_enabled` checked CPUID.OSXSAVE, so XGETBV is enabled.
    let xcr0 = unsafe { xgetbv0() };
    xcr0 & XCR0_AVX512 == XCR0_AVX512
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn avx512_state_enabled() -> bool {
    false
}

/// XCR0 has the SSE and AVX state bits set (needs CPUID.OSXSAVE, checked first).
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx_state_enabled() -> bool {
    use core::arch::x86_64::__cpuid;
    if __cpuid(1).ecx & (1 << 27) == 0 {
        return false;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is enabled.
    let xcr0 = unsafe { xgetbv0() };
    xcr0 & 0b110 == 0b110
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn avx_state_enabled() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    // SAFETY: the caller checked CPUID.OSXSAVE, so XGETBV is enabled.
    unsafe { core::arch::x86_64::_xgetbv(0) }
}
