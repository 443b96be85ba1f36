//! The numeric kernels: dot products, matrix-vector and matrix-matrix products, axpy.
//!
//! Every dot product is computed in one canonical order (see [`portable`]) so that a result
//! never depends on how the work was batched (prefill vs. one token at a time) or split
//! across cores. Two numeric families exist: without fused multiply-add ([`Family::NoFma`]:
//! `lane += a*b` rounds twice) and with it ([`Family::Fma`]: rounds once). Within a family the
//! results are bit-identical on every machine, target and instruction set; across families
//! they differ in the last bits.
//!
//! Instruction sets live in one folder per CPU architecture (`x86_64/sse2.rs`,
//! `x86_64/avx2.rs`; room for `aarch64/neon.rs`). A [`Kernels`] value can only be made by
//! [`Kernels::detect`] (and its per-family variant) or [`Kernels::portable`], so holding one
//! proves that its instructions run on this CPU. Every entry point checks its slice lengths
//! with `assert!` in release builds too: safe code cannot make a kernel read or write out of
//! bounds.

pub mod portable;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use crate::cpu::CpuFeatures;
use crate::tensor::{MatData, MatRef};
use alloc::vec::Vec;

/// The width of the canonical accumulation (8 lanes).
pub const LANES: usize = 8;

/// Whether products and sums round separately or once (fused multiply-add).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    NoFma,
    Fma,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::NoFma => "no FMA",
            Family::Fma => "FMA",
        }
    }
}

/// The instruction set a kernel set runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust loops (no-FMA family).
    Portable,
    /// x86_64 SSE2 (no-FMA family): part of every x86_64 CPU.
    Sse2,
    /// x86_64 AVX2 with FMA (FMA family), after detection.
    Avx2,
}

/// A usable set of kernels. Private field: only detection or `portable()` make one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    isa: Isa,
}

impl Kernels {
    /// Plain Rust loops, usable everywhere (the no-FMA family).
    pub const fn portable() -> Kernels {
        Kernels { isa: Isa::Portable }
    }

    /// The fastest set this CPU (and OS) can run. On bare metal, AVX must be enabled in
    /// CR4/XCR0 before calling this, or it reports the no-FMA set.
    pub fn detect() -> Kernels {
        Kernels::detect_family(Family::Fma).or_else(|| Kernels::detect_family(Family::NoFma)).unwrap_or(Kernels::portable())
    }

    /// The fastest set of one numeric family on this CPU, if it has one.
    pub fn detect_family(family: Family) -> Option<Kernels> {
        let usable = Kernels::available();
        usable.into_iter().rev().find(|k| k.family() == family)
    }

    /// Every set this CPU can run, slowest first (tests compare them all with `portable`).
    pub fn available() -> Vec<Kernels> {
        let mut v = alloc::vec![Kernels::portable()];
        if cfg!(target_arch = "x86_64") {
            v.push(Kernels { isa: Isa::Sse2 });
            if CpuFeatures::read().avx2_fma_usable() {
                v.push(Kernels { isa: Isa::Avx2 });
            }
        }
        v
    }

    pub fn isa(self) -> Isa {
        self.isa
    }

    pub fn family(self) -> Family {
        match self.isa {
            Isa::Portable | Isa::Sse2 => Family::NoFma,
            Isa::Avx2 => Family::Fma,
        }
    }

    pub fn name(self) -> &'static str {
        match self.isa {
            Isa::Portable => "portable (no FMA)",
            Isa::Sse2 => "SSE2 (no FMA)",
            Isa::Avx2 => "AVX2+FMA",
        }
    }

    /// Dot product of two equal-length vectors in the canonical order.
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot: vectors of different lengths");
        match self.isa {
            Isa::Portable => portable::dot(a, b),
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => x86_64::sse2::dot_sse2(a, b),
            // SAFETY: an Avx2 set exists only after `avx2_fma_usable` (see `available`).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { x86_64::avx2::dot_avx2(a, b) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => portable::dot(a, b),
        }
    }

    /// out (N, OC) = x (N, IC) @ w (OC, IC)^T + bias (OC), N = x.len() / IC.
    pub fn matmul(self, out: &mut [f32], x: &[f32], w: MatRef<'_>, bias: Option<&[f32]>) {
        let (oc, ic) = (w.rows(), w.cols());
        assert!(ic > 0 && x.len() % ic == 0, "matmul: input of {} floats is not rows of {ic}", x.len());
        let n = x.len() / ic;
        assert_eq!(out.len(), n * oc, "matmul: output must be {n} rows of {oc}");
        if let Some(b) = bias {
            assert_eq!(b.len(), oc, "matmul: bias must have {oc} elements");
        }
        let wd = match w.data() {
            MatData::F32(wd) => wd,
            MatData::Blocks { btype, row_bytes, data } if n >= 2 => {
                self.matmul_blocks_rows(out, x, btype, row_bytes, data, bias, ic, oc);
                return;
            }
            MatData::Blocks { btype, row_bytes, data } => {
                // Quantized rows: one dot product per output, read from the blocks directly,
                // four rows at a time where a multi-row kernel exists (same bits per row).
                let row = |o: usize| &data[o * row_bytes..(o + 1) * row_bytes];
                for (xr, orow) in x.chunks_exact(ic).zip(out.chunks_exact_mut(oc)) {
                    let mut o0 = 0;
                    while o0 + 4 <= oc {
                        let Some(d) = crate::quant::dot_rows4_with(self, btype, [row(o0), row(o0 + 1), row(o0 + 2), row(o0 + 3)], xr)
                        else {
                            break;
                        };
                        for (j, v) in d.into_iter().enumerate() {
                            orow[o0 + j] = match bias {
                                Some(b) => v + b[o0 + j],
                                None => v,
                            };
                        }
                        o0 += 4;
                    }
                    for (o, ov) in orow.iter_mut().enumerate().skip(o0) {
                        let d = crate::quant::dot_row_with(self, btype, &data[o * row_bytes..(o + 1) * row_bytes], xr);
                        *ov = match bias {
                            Some(b) => d + b[o],
                            None => d,
                        };
                    }
                }
                return;
            }
        };
        // MatRef guarantees wd.len() == oc * ic.
        match self.isa {
            Isa::Portable => portable::matmul(out, x, wd, bias, ic, oc),
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => x86_64::sse2::matmul_sse2(out, x, wd, bias, ic, oc),
            // SAFETY: AVX2+FMA usable (see `dot`); every length was checked above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { x86_64::avx2::matmul_avx2(out, x, wd, bias, ic, oc) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => portable::matmul(out, x, wd, bias, ic, oc),
        }
    }

    /// Continues a canonical dot product: a[i] * b[i] into lane i % 8 of `acc`, in this
    /// set's family. Feeding a row in chunks of multiples of 8 gives exactly `dot`'s lanes.
    #[inline]
    pub fn dot_acc(self, acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
        assert!(a.len() == b.len() && a.len() % LANES == 0, "dot_acc: equal lengths, multiples of 8");
        match self.isa {
            Isa::Portable => portable::dot_acc(acc, a, b),
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => x86_64::sse2::dot_acc_sse2(acc, a, b),
            // SAFETY: as for `dot`; lengths checked above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { x86_64::avx2::dot_acc_avx2(acc, a, b) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => portable::dot_acc(acc, a, b),
        }
    }

    /// Quantized weights for several input rows (prefill): each chunk of a weight row is
    /// decoded once into a small stack buffer and used for up to `GROUP` input rows, with
    /// their canonical lanes carried across chunks. Every output equals the dot product of
    /// the dequantized row with its input row in this family (= `quant::dot_row_with`, what a
    /// single row gets), so prefill and decode agree bit for bit.
    #[allow(clippy::too_many_arguments)]
    fn matmul_blocks_rows(
        self,
        out: &mut [f32],
        x: &[f32],
        btype: crate::quant::BlockType,
        row_bytes: usize,
        data: &[u8],
        bias: Option<&[f32]>,
        ic: usize,
        oc: usize,
    ) {
        const CHUNK: usize = 256; // elements: one K block, or 8 legacy blocks
        const GROUP: usize = 16; // input rows sharing each decoded chunk
        let n = x.len() / ic;
        let chunk_bytes = btype.row_bytes(CHUNK);
        let mut wbuf = [0.0f32; CHUNK];
        let mut xbuf = [0.0f32; CHUNK];
        let mut acc = [[0.0f32; LANES]; GROUP];
        for r0 in (0..n).step_by(GROUP) {
            let g = GROUP.min(n - r0);
            for o in 0..oc {
                let row = &data[o * row_bytes..(o + 1) * row_bytes];
                acc[..g].iter_mut().for_each(|a| *a = [0.0; LANES]);
                let mut c0 = 0;
                while c0 < ic {
                    let len = CHUNK.min(ic - c0);
                    // Whole blocks per chunk: CHUNK is a multiple of every block size, and a
                    // row holds whole blocks, so only the last chunk may be shorter.
                    let (b0, b1) = match (chunk_bytes, btype.row_bytes(len)) {
                        (Some(cb), Some(lb)) => (c0 / CHUNK * cb, c0 / CHUNK * cb + lb),
                        _ => unreachable!("rows are whole blocks and CHUNK is a multiple of the block"),
                    };
                    crate::quant::dequantize_row(btype, &row[b0..b1], &mut wbuf[..len]);
                    // A ragged tail (f16/bf16 rows) is zero-padded to 8, as the canonical dot
                    // pads it (0 * 0 is added to the unused lanes).
                    let padded = len.next_multiple_of(LANES);
                    wbuf[len..padded].fill(0.0);
                    let mut r_start = 0;
                    // AVX2, whole chunks: four input rows at a time share each weight load
                    // (each row's lanes see exactly the one-row sequence).
                    #[cfg(target_arch = "x86_64")]
                    if self.isa == Isa::Avx2 && padded == len {
                        while r_start + 4 <= g {
                            let xr = |r: usize| &x[(r0 + r) * ic + c0..(r0 + r) * ic + c0 + len];
                            let quad: &mut [[f32; LANES]; 4] = (&mut acc[r_start..r_start + 4]).try_into().expect("four rows");
                            // SAFETY: AVX2+FMA usable (see `dot`); all slices have `len` floats, a multiple of 8.
                            unsafe {
                                x86_64::avx2::dot_acc4_avx2(
                                    quad,
                                    &wbuf[..len],
                                    [xr(r_start), xr(r_start + 1), xr(r_start + 2), xr(r_start + 3)],
                                )
                            };
                            r_start += 4;
                        }
                    }
                    for (r, a) in acc[..g].iter_mut().enumerate().skip(r_start) {
                        let xr = &x[(r0 + r) * ic + c0..(r0 + r) * ic + c0 + len];
                        if padded == len {
                            self.dot_acc(a, &wbuf[..len], xr);
                        } else {
                            xbuf[..len].copy_from_slice(xr);
                            xbuf[len..padded].fill(0.0);
                            self.dot_acc(a, &wbuf[..padded], &xbuf[..padded]);
                        }
                    }
                    c0 += len;
                }
                for (r, a) in acc[..g].iter().enumerate() {
                    let d = portable::combine_lanes(a);
                    out[(r0 + r) * oc + o] = match bias {
                        Some(b) => d + b[o],
                        None => d,
                    };
                }
            }
        }
    }

    /// out += a * x, elementwise (fused in the FMA family).
    #[inline]
    pub fn axpy(self, out: &mut [f32], a: f32, x: &[f32]) {
        assert_eq!(out.len(), x.len(), "axpy: vectors of different lengths");
        match self.isa {
            Isa::Portable | Isa::Sse2 => portable::axpy(out, a, x),
            // SAFETY: as for `dot`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { x86_64::avx2::axpy_avx2(out, a, x) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => portable::axpy(out, a, x),
        }
    }
}
