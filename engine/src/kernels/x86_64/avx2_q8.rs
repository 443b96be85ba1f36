//! AVX2 dot products of quantized weight rows with 8-bit activations (`quant::q8`): integer
//! products with `maddubs` (u8 x i8 -> i16 pairs; signed weights as |w| times x * sign(w))
//! and `madd` (i16 pairs -> i32 lanes), so
//! i32 lane l of a 32-byte group holds the products of bytes 4l..4l+3: the lanes of
//! `portable::dot_q8`. The integer sums are exact; the f32 steps (`dw * dx`, the `fma` per lane,
//! the combine, the minimums) are the reference's, in its order. Equal bit for bit to
//! `portable::dot_q8` (tested on random blocks).
//!
//! Only `Kernels::dot_q8` (and its multi-row forms) call these, after `portable::check_pair` and only with an AVX2
//! `Kernels` (which exists only when `CpuFeatures::avx2_fma_usable` said yes).

// The tile loops index several parallel arrays (N weight rows, R activation rows) by one
// block index: an iterator over one of them would only hide the others.
#![allow(clippy::needless_range_loop)]
use super::Ops;
use super::avx2::hsum;
use crate::quant::BlockType;
use crate::quant::kquants::{BlockQ4K, BlockQ5K, BlockQ6K, QK_K, scale_min};
use crate::quant::legacy::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0};
use crate::quant::q8::{KPanelBlock, PANEL_ROWS, PanelBlock, Q8Row, SUB};
use core::arch::x86_64::*;

/// The encodings these kernels are compiled for (their `ISA` parameter): AVX2 (`maddubs` +
/// `madd` for the integer sums), AVX-VNNI (VEX `vpdpbusd`), and AVX-512 VNNI on 256-bit
/// vectors (EVEX `vpdpbusd`, for CPUs with AVX-512 but no AVX-VNNI such as AMD Zen 4; the
/// EVEX encoding also gives the compiler 32 vector registers). The same integer sums, so the
/// same bits in all three.
pub(super) const AVX2: u8 = 0;
pub(super) const AVX_VNNI: u8 = 1;
pub(super) const AVX512: u8 = 2;

/// The dot product of `row` with `x` (lengths and blocks checked by the caller), or None if
/// this module has no kernel for `t`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C with the AVX state enabled (`avx2_fma_usable`),
/// and AVX-VNNI too for [`AVX_VNNI`] (`avx_vnni_usable`), AVX-512 F/BW/VL/VNNI with its state
/// enabled for [`AVX512`] (`avx512_vnni_usable`).
pub(crate) unsafe fn dot<const ISA: u8>(t: BlockType, row: &[u8], x: Q8Row<'_>) -> Option<f32> {
    // SAFETY: the caller guarantees the features of `ISA`; the kernels load only through
    // bounds-checked slices and whole arrays.
    unsafe { dot_tile::<ISA, 1, 1>(t, [row], [x]) }.map(|[[v]]| v)
}

/// Four rows against the same `x`, each equal to [`dot`] of that row.
///
/// # Safety
/// As for [`dot`]; every row checked by the caller.
pub(crate) unsafe fn dot4<const ISA: u8>(t: BlockType, rows: [&[u8]; 4], x: Q8Row<'_>) -> Option<[f32; 4]> {
    // SAFETY: as for `dot`.
    unsafe { dot_tile::<ISA, 4, 1>(t, rows, [x]) }.map(|[v]| v)
}

/// One row against eight activation rows (prefill): `out[i]` equals [`dot`] of `row` with
/// `xs[i]` (each weight block is decoded once for all eight inputs).
///
/// # Safety
/// As for [`dot`]; the row and every activation row checked by the caller.
pub(crate) unsafe fn dot_x8<const ISA: u8>(t: BlockType, row: &[u8], xs: &[Q8Row<'_>; 8]) -> Option<[f32; 8]> {
    // SAFETY: as for `dot`.
    let tile = unsafe { dot_tile::<ISA, 1, 8>(t, [row], *xs) };
    tile.map(|t| t.map(|[v]| v))
}

/// The types [`dot_panel`] has a kernel for: the 32-weight types.
pub(super) const PANEL_TYPES: [BlockType; 5] = [BlockType::Q8_0, BlockType::Q4_0, BlockType::Q5_0, BlockType::Q4_1, BlockType::Q5_1];

/// One row against a panel of eight activation rows (prefill): `out[r]` equals [`dot`] of
/// `row` with row r of the panel, or None for a type outside [`PANEL_TYPES`].
///
/// # Safety
/// As for [`dot`]; the row checked by the caller against the panel's blocks.
pub(crate) unsafe fn dot_panel<const ISA: u8>(t: BlockType, row: &[u8], panel: &[PanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: as for `dot`: the caller guarantees the features of `ISA`.
    unsafe {
        match ISA {
            AVX2 => panel_avx2(t, row, panel),
            AVX_VNNI => panel_vnni(t, row, panel),
            _ => panel_avx512(t, row, panel),
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn panel_avx2(t: BlockType, row: &[u8], panel: &[PanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: this function has the features the body's code needs.
    unsafe { panel_types::<AVX2>(t, row, panel) }
}

#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn panel_vnni(t: BlockType, row: &[u8], panel: &[PanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: this function has the features the body's code needs.
    unsafe { panel_types::<AVX_VNNI>(t, row, panel) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn panel_avx512(t: BlockType, row: &[u8], panel: &[PanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: this function has the features the body's code needs.
    unsafe { panel_types::<AVX512>(t, row, panel) }
}

/// # Safety
/// The features of `ISA` (see [`dot`]).
#[inline(always)]
unsafe fn panel_types<const ISA: u8>(t: BlockType, row: &[u8], panel: &[PanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: the caller guarantees the features.
    unsafe {
        match t {
            BlockType::Q8_0 => Some(panel_body::<Q8_0, { BlockQ8_0::BYTES }, ISA>(row, panel)),
            BlockType::Q4_0 => Some(panel_body::<Q4_0, { BlockQ4_0::BYTES }, ISA>(row, panel)),
            BlockType::Q5_0 => Some(panel_body::<Q5_0, { BlockQ5_0::BYTES }, ISA>(row, panel)),
            BlockType::Q4_1 => Some(panel_body::<Q4_1, { BlockQ4_1::BYTES }, ISA>(row, panel)),
            BlockType::Q5_1 => Some(panel_body::<Q5_1, { BlockQ5_1::BYTES }, ISA>(row, panel)),
            _ => None,
        }
    }
}

/// The types [`dot_kpanel`] has a kernel for.
pub(super) const KPANEL_TYPES: [BlockType; 3] = [BlockType::Q4_K, BlockType::Q5_K, BlockType::Q6_K];

/// One Q4_K / Q5_K / Q6_K row against a k-quant panel of eight activation rows (prefill):
/// `out[r]` equals [`dot`] of `row` with row r of the panel, or None for another type.
///
/// # Safety
/// As for [`dot`]; the row checked by the caller against the panel's blocks.
pub(crate) unsafe fn dot_kpanel<const ISA: u8>(t: BlockType, row: &[u8], panel: &[KPanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: as for `dot`: the caller guarantees the features of `ISA`.
    unsafe {
        match ISA {
            AVX2 => kpanel_avx2(t, row, panel),
            AVX_VNNI => kpanel_vnni(t, row, panel),
            _ => kpanel_avx512(t, row, panel),
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn kpanel_avx2(t: BlockType, row: &[u8], panel: &[KPanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: this function has the features the body's code needs.
    unsafe { kpanel_types_256(t, row, panel) }
}

#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn kpanel_vnni(t: BlockType, row: &[u8], panel: &[KPanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: this function has the features the body's code needs.
    unsafe { kpanel_types_256(t, row, panel) }
}

/// # Safety
/// AVX2, FMA and F16C usable.
#[inline(always)]
unsafe fn kpanel_types_256(t: BlockType, row: &[u8], panel: &[KPanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: the caller guarantees the features.
    unsafe {
        match t {
            BlockType::Q4_K => Some(kpanel_body_256::<false, { BlockQ4K::BYTES }>(row, panel)),
            BlockType::Q5_K => Some(kpanel_body_256::<true, { BlockQ5K::BYTES }>(row, panel)),
            BlockType::Q6_K => Some(q6_kpanel_body_256(row, panel)),
            _ => None,
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn kpanel_avx512(t: BlockType, row: &[u8], panel: &[KPanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    // SAFETY: this function has the features the body's code needs.
    unsafe {
        match t {
            BlockType::Q4_K => Some(kpanel_body_512::<false, { BlockQ4K::BYTES }>(row, panel)),
            BlockType::Q5_K => Some(kpanel_body_512::<true, { BlockQ5K::BYTES }>(row, panel)),
            BlockType::Q6_K => Some(q6_kpanel_body_512(row, panel)),
            _ => None,
        }
    }
}

/// N rows against R activation rows: `out[i][r]` equals [`dot`] of row r with `xs[i]`.
///
/// # Safety
/// As for [`dot`]; every row and activation row checked by the caller.
#[inline(always)]
unsafe fn dot_tile<const ISA: u8, const N: usize, const R: usize>(
    t: BlockType,
    rows: [&[u8]; N],
    xs: [Q8Row<'_>; R],
) -> Option<[[f32; N]; R]> {
    // SAFETY: the caller guarantees the features of `ISA`.
    unsafe {
        match ISA {
            AVX2 => tile_avx2(t, rows, xs),
            AVX_VNNI => tile_vnni(t, rows, xs),
            _ => tile_avx512(t, rows, xs),
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn tile_avx2<const N: usize, const R: usize>(t: BlockType, rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> Option<[[f32; N]; R]> {
    // SAFETY: this function has the features the body's code needs.
    unsafe { tile_types::<AVX2, N, R>(t, rows, xs) }
}

#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn tile_vnni<const N: usize, const R: usize>(t: BlockType, rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> Option<[[f32; N]; R]> {
    // SAFETY: this function has the features the body's code needs.
    unsafe { tile_types::<AVX_VNNI, N, R>(t, rows, xs) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn tile_avx512<const N: usize, const R: usize>(t: BlockType, rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> Option<[[f32; N]; R]> {
    // SAFETY: this function has the features the body's code needs.
    unsafe { tile_types::<AVX512, N, R>(t, rows, xs) }
}

/// # Safety
/// The features of `ISA` (see [`dot`]).
#[inline(always)]
unsafe fn tile_types<const ISA: u8, const N: usize, const R: usize>(
    t: BlockType,
    rows: [&[u8]; N],
    xs: [Q8Row<'_>; R],
) -> Option<[[f32; N]; R]> {
    // SAFETY: the caller guarantees the features.
    unsafe {
        match t {
            BlockType::Q8_0 => Some(legacy_body::<Q8_0, { BlockQ8_0::BYTES }, N, R, ISA>(rows, xs)),
            BlockType::Q4_0 => Some(legacy_body::<Q4_0, { BlockQ4_0::BYTES }, N, R, ISA>(rows, xs)),
            BlockType::Q5_0 => Some(legacy_body::<Q5_0, { BlockQ5_0::BYTES }, N, R, ISA>(rows, xs)),
            BlockType::Q4_1 => Some(legacy_body::<Q4_1, { BlockQ4_1::BYTES }, N, R, ISA>(rows, xs)),
            BlockType::Q5_1 => Some(legacy_body::<Q5_1, { BlockQ5_1::BYTES }, N, R, ISA>(rows, xs)),
            BlockType::Q4_K => Some(k_body::<false, { BlockQ4K::BYTES }, N, R>(rows, xs)),
            BlockType::Q5_K => Some(k_body::<true, { BlockQ5K::BYTES }, N, R>(rows, xs)),
            BlockType::Q6_K => Some(q6_k_body::<N, R>(rows, xs)),
            _ => None,
        }
    }
}

/// `vpdpbusd`: `src` plus, per i32 lane, the four products of unsigned bytes of `a` with
/// signed bytes of `b` (exact), in the encoding of `ISA` (not [`AVX2`], which has none).
///
/// # Safety
/// AVX-VNNI for [`AVX_VNNI`], AVX-512 VNNI and VL for [`AVX512`].
#[inline(always)]
unsafe fn dpbusd<const ISA: u8>(src: __m256i, a: __m256i, b: __m256i) -> __m256i {
    // SAFETY: the caller guarantees the features.
    unsafe { if ISA == AVX512 { _mm256_dpbusd_epi32(src, a, b) } else { _mm256_dpbusd_avx_epi32(src, a, b) } }
}

/// The AVX-VNNI set (`avx-vnni`): the AVX2 set with `vpdpbusd` for the integer sums of the
/// 8-bit kernels (the same sums, so the same bits as `avx2-q8`).
pub(super) const VNNI_OPS: Ops = Ops {
    dot_q8: Some(dot::<AVX_VNNI>),
    dot_q8_rows4: Some(dot4::<AVX_VNNI>),
    dot_q8_x8: Some(dot_x8::<AVX_VNNI>),
    dot_q8_panel: Some(dot_panel::<AVX_VNNI>),
    dot_q8_kpanel: Some(dot_kpanel::<AVX_VNNI>),
    ..super::avx2::OPS
};

/// The AVX-512 VNNI set (`avx512-vnni`): the AVX-VNNI set's kernels in the EVEX encoding
/// (256-bit vectors; the same bits as `avx2-q8`).
pub(super) const AVX512_OPS: Ops = Ops {
    dot_q8: Some(dot::<AVX512>),
    dot_q8_rows4: Some(dot4::<AVX512>),
    dot_q8_x8: Some(dot_x8::<AVX512>),
    dot_q8_panel: Some(dot_panel::<AVX512>),
    dot_q8_kpanel_types: &KPANEL_TYPES,
    dot_q8_kpanel: Some(dot_kpanel::<AVX512>),
    ..super::avx2::OPS
};

/// `b[0..32]` as a vector (panics if shorter).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load32(b: &[u8]) -> __m256i {
    let b = &b[..32];
    // SAFETY: `b` has exactly 32 bytes; unaligned load.
    unsafe { _mm256_loadu_si256(b.as_ptr() as *const __m256i) }
}

/// `b[0..16]` as a vector (panics if shorter).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load16(b: &[u8]) -> __m128i {
    let b = &b[..16];
    // SAFETY: `b` has exactly 16 bytes; unaligned load.
    unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) }
}

/// The 32 activation codes starting at `i` (panics past the end).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn codes32(x: &Q8Row<'_>, i: usize) -> __m256i {
    let c = &x.codes()[i..i + 32];
    // SAFETY: `c` has exactly 32 bytes (i8); unaligned load.
    unsafe { _mm256_loadu_si256(c.as_ptr() as *const __m256i) }
}

/// Asks for the cache line `ahead` bytes past `b` (the same block of the next group of rows):
/// the rows of a matrix are read in groups, so the hardware prefetcher alone sees several
/// interleaved streams.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch_ahead(b: &[u8], ahead: usize) {
    // A prefetch never faults and reads nothing architecturally (a safe intrinsic); the
    // address is only computed (wrapping), never dereferenced.
    _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(ahead) as *const i8)
}

/// 32 bits -> 32 bytes, 0xff where the bit is set (byte i <- bit i).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bytes_from_bits(bits: u32) -> __m256i {
    let v = _mm256_set1_epi32(bits as i32);
    let spread = _mm256_shuffle_epi8(
        v,
        _mm256_setr_epi64x(0x0000_0000_0000_0000, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303),
    );
    // Byte i keeps bit i % 8 of its source byte: OR in every other bit, compare with all-ones.
    let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
    _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1))
}

/// The 32-weight types, as const parameters of [`dot_legacy`] (with their block bytes).
const Q8_0: u8 = 0;
const Q4_0: u8 = 1;
const Q5_0: u8 = 2;
/// The 32-weight types with an offset (`w = d * q + m`): unsigned codes, `m` through the
/// minimum accumulator (`quant::q8`).
const Q4_1: u8 = 3;
const Q5_1: u8 = 4;

/// The 32 weight codes of a Q8_0 / Q4_0 / Q5_0 block (`BB` bytes; signed), or of a Q4_1 /
/// Q5_1 block (unsigned), in weight order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn legacy_weights<const T: u8, const BB: usize>(b: &[u8; BB]) -> __m256i {
    {
        if T == Q8_0 {
            return load32(BlockQ8_0::new(b).qs());
        }
        let qs = load16(match T {
            Q4_0 => BlockQ4_0::new(b).qs(),
            Q5_0 => BlockQ5_0::new(b).qs(),
            Q4_1 => BlockQ4_1::new(b).qs(),
            _ => BlockQ5_1::new(b).qs(),
        });
        let lo = _mm_and_si128(qs, _mm_set1_epi8(0x0f));
        let hi = _mm_and_si128(_mm_srli_epi16::<4>(qs), _mm_set1_epi8(0x0f));
        let nib = _mm256_set_m128i(hi, lo);
        if T == Q4_1 {
            return nib;
        }
        if T == Q5_1 {
            // The fifth bit: 0x10 where qh has bit i set.
            let qh = BlockQ5_1::new(b).qh();
            return _mm256_or_si256(nib, _mm256_and_si256(bytes_from_bits(qh), _mm256_set1_epi8(0x10)));
        }
        if T == Q4_0 {
            _mm256_sub_epi8(nib, _mm256_set1_epi8(8))
        } else {
            // q - 16: bytes whose fifth bit is clear get 0xf0 ORed in (nib - 16 as i8).
            let qh = BlockQ5_0::new(b).qh();
            let missing = _mm256_andnot_si256(bytes_from_bits(qh), _mm256_set1_epi8(0xf0u8 as i8));
            _mm256_or_si256(nib, missing)
        }
    }
}

/// An f16 scale to f32 with F16C (exact, as `quant::f16::f16_to_f32` for every finite value;
/// the loader refuses blocks whose scales are not finite): three instructions, where the
/// portable conversion's bit fiddling and branches cost about as much as the rest of a Q8_0
/// block's decode step.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16(bits: u16) -> f32 {
    let v: __m128;
    // SAFETY: two register-only instructions (F16C, which this function's features include):
    // `vmovd` writes the whole register, so the conversion depends on `bits` alone. (Written
    // with intrinsics, LLVM inserts the 16 bits into whatever register is free, `vpinsrw`,
    // which keeps its other lanes: a false dependency on that register's last writer, often
    // an accumulator of the previous block, which chained the blocks' latencies.)
    unsafe {
        core::arch::asm!("vmovd {v}, {b:e}", "vcvtph2ps {v}, {v}", b = in(reg) bits as u32, v = out(xmm_reg) v, options(pure, nomem, nostack));
    }
    _mm_cvtss_f32(v)
}

/// An f16 scale to f32 in all eight lanes (exact, as [`f16`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16x8(bits: u16) -> __m256 {
    _mm256_cvtph_ps(_mm_set1_epi16(bits as i16))
}

/// The `d` of a 32-weight block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn legacy_d<const T: u8, const BB: usize>(b: &[u8; BB]) -> f32 {
    f16(legacy_d_bits::<T, BB>(b))
}

/// The f16 bits of the `d` of a 32-weight block.
#[inline]
fn legacy_d_bits<const T: u8, const BB: usize>(b: &[u8; BB]) -> u16 {
    match T {
        Q8_0 => BlockQ8_0::new(b).d_bits(),
        Q4_0 => BlockQ4_0::new(b).d_bits(),
        Q5_0 => BlockQ5_0::new(b).d_bits(),
        Q4_1 => BlockQ4_1::new(b).d_bits(),
        _ => BlockQ5_1::new(b).d_bits(),
    }
}

/// The `m` of a Q4_1 / Q5_1 block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn legacy_m<const T: u8, const BB: usize>(b: &[u8; BB]) -> f32 {
    f16(if T == Q4_1 { BlockQ4_1::new(b).m_bits() } else { BlockQ5_1::new(b).m_bits() })
}

/// N weight rows against R activation rows (all of the same length): every (input, row) pair
/// has its own accumulator and sees exactly the one-row sequence of operations. Inlined into
/// the `tile_*` functions, which give it their target features.
///
/// # Safety
/// The features of `ISA` (see [`dot`]).
#[inline(always)]
unsafe fn legacy_body<const T: u8, const BB: usize, const N: usize, const R: usize, const ISA: u8>(
    rows: [&[u8]; N],
    xs: [Q8Row<'_>; R],
) -> [[f32; N]; R] {
    // SAFETY: the caller guarantees the features; every load goes through bounds-checked
    // slices (`load32`, `load16`, `codes32`).
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); N]; R];
        let mut m_acc = [[0.0f32; N]; R];
        let nb = xs[0].scales().len();
        assert!(xs.iter().all(|x| x.scales().len() == nb), "dot_legacy: activation rows of different lengths");
        let blocks: [&[[u8; BB]]; N] = rows.map(|r| {
            let (b, rest) = r.as_chunks::<BB>();
            assert!(rest.is_empty() && b.len() == nb, "dot_legacy: row of {} blocks", b.len());
            b
        });
        for bi in 0..nb {
            let xv: [__m256i; R] = core::array::from_fn(|i| codes32(&xs[i], SUB * bi));
            for r in 0..N {
                let b = &blocks[r][bi];
                prefetch_ahead(b, N * rows[r].len());
                let w = legacy_weights::<T, BB>(b);
                let unsigned = T == Q4_1 || T == Q5_1;
                // Signed codes as |w| times x * sign(w); unsigned ones as they are.
                let aw = if unsigned { w } else { _mm256_sign_epi8(w, w) };
                let dw = legacy_d::<T, BB>(b);
                for i in 0..R {
                    // The u8 x i8 products, 4 per i32 lane.
                    let sx = if unsigned { xv[i] } else { _mm256_sign_epi8(xv[i], w) };
                    let s = if ISA != AVX2 {
                        dpbusd::<ISA>(_mm256_setzero_si256(), aw, sx)
                    } else {
                        _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1))
                    };
                    let dx = xs[i].scales()[bi];
                    let dd = _mm256_set1_ps(dw * dx);
                    acc[i][r] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(s), acc[i][r]);
                    if unsigned {
                        // dmin = -m, M = the block's sum of activation codes.
                        let m = legacy_m::<T, BB>(b);
                        m_acc[i][r] = fma1(-m * dx, xs[i].sums()[bi] as f32, m_acc[i][r]);
                    }
                }
            }
        }
        let mut out = [[0.0f32; N]; R];
        for i in 0..R {
            for r in 0..N {
                out[i][r] = if T == Q4_1 || T == Q5_1 { hsum(acc[i][r]) - m_acc[i][r] } else { hsum(acc[i][r]) };
            }
        }
        out
    }
}

/// One weight row against the eight rows of a panel: per block the weights are decoded once,
/// the eight `dw * dx` come from one vector product, and each row's integer lanes come from
/// one `vpdpbusd` (VNNI: the weights offset to unsigned, `w + 128`, times the signed codes,
/// started at the panel's -128 * lane sums, which gives `sum w * q` exactly) or the sign trick
/// of [`legacy_body`] (AVX2). Every row sees [`legacy_body`]'s operations on its values, so the
/// same bits as [`dot`].
///
/// # Safety
/// The features of `ISA` (see [`dot`]).
#[inline(always)]
unsafe fn panel_body<const T: u8, const BB: usize, const ISA: u8>(row: &[u8], panel: &[PanelBlock]) -> [f32; PANEL_ROWS] {
    if ISA == AVX512 {
        // SAFETY: the caller guarantees the AVX-512 features.
        return unsafe { panel_body_512::<T, BB>(row, panel) };
    }
    // SAFETY: the caller guarantees the features; every load is of a whole array of the
    // panel block or a bounds-checked slice of the row.
    unsafe {
        let (blocks, rest) = row.as_chunks::<BB>();
        assert!(rest.is_empty() && blocks.len() == panel.len(), "dot_panel: row of {} blocks for {}", blocks.len(), panel.len());
        let unsigned = T == Q4_1 || T == Q5_1;
        let mut acc = [_mm256_setzero_ps(); PANEL_ROWS];
        let mut m_acc = _mm256_setzero_ps();
        for (b, pb) in blocks.iter().zip(panel) {
            prefetch_ahead(b, row.len());
            let w = legacy_weights::<T, BB>(b);
            let dx = _mm256_loadu_ps(pb.scales.as_ptr());
            let mut dd = [0.0f32; PANEL_ROWS];
            _mm256_storeu_ps(dd.as_mut_ptr(), _mm256_mul_ps(f16x8(legacy_d_bits::<T, BB>(b)), dx));
            // VNNI: unsigned weights (w + 128 for the signed types); AVX2: |w| and the sign trick.
            let u = if ISA == AVX2 && !unsigned {
                _mm256_sign_epi8(w, w)
            } else if unsigned {
                w
            } else {
                _mm256_xor_si256(w, _mm256_set1_epi8(0x80u8 as i8))
            };
            for r in 0..PANEL_ROWS {
                let x = _mm256_loadu_si256(pb.codes[r].as_ptr() as *const __m256i);
                let s = if ISA != AVX2 {
                    let start =
                        if unsigned { _mm256_setzero_si256() } else { _mm256_loadu_si256(pb.neg_lane_sums[r].as_ptr() as *const __m256i) };
                    dpbusd::<ISA>(start, u, x)
                } else {
                    let sx = if unsigned { x } else { _mm256_sign_epi8(x, w) };
                    _mm256_madd_epi16(_mm256_maddubs_epi16(u, sx), _mm256_set1_epi16(1))
                };
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dd[r]), _mm256_cvtepi32_ps(s), acc[r]);
            }
            if unsigned {
                // dmin = -m, M = each row's block sum of codes: legacy_body's fma per row, as lanes.
                let m = legacy_m::<T, BB>(b);
                let sums = _mm256_cvtepi32_ps(_mm256_loadu_si256(pb.sums.as_ptr() as *const __m256i));
                m_acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(-m), dx), sums, m_acc);
            }
        }
        let mut m = [0.0f32; PANEL_ROWS];
        _mm256_storeu_ps(m.as_mut_ptr(), m_acc);
        core::array::from_fn(|r| if unsigned { hsum(acc[r]) - m[r] } else { hsum(acc[r]) })
    }
}

/// [`panel_body`] on 512-bit vectors: two panel rows per vector (their codes and lane sums
/// are adjacent in the panel block), the weights broadcast to both halves, each half's `dw *
/// dx` from one permute. Every row sees the same operations on its own 8 lanes, combined as
/// [`hsum`] does, so the same bits.
///
/// # Safety
/// AVX2, FMA, F16C and AVX-512 F/BW/VL/VNNI usable.
#[inline(always)]
unsafe fn panel_body_512<const T: u8, const BB: usize>(row: &[u8], panel: &[PanelBlock]) -> [f32; PANEL_ROWS] {
    const PAIRS: usize = PANEL_ROWS / 2;
    // SAFETY: the caller guarantees the features; the 64-byte loads read two adjacent rows of
    // a panel block's arrays (`pair_*`), every other load as in `panel_body`.
    unsafe {
        let (blocks, rest) = row.as_chunks::<BB>();
        assert!(rest.is_empty() && blocks.len() == panel.len(), "dot_panel: row of {} blocks for {}", blocks.len(), panel.len());
        let unsigned = T == Q4_1 || T == Q5_1;
        let mut acc = [_mm512_setzero_ps(); PAIRS];
        let mut m_acc = _mm256_setzero_ps();
        // Lanes 0..8 take element 2p of the eight `dw * dx`, lanes 8..16 element 2p + 1.
        let pick: [__m512i; PAIRS] =
            core::array::from_fn(|p| _mm512_inserti64x4::<1>(_mm512_set1_epi32(2 * p as i32), _mm256_set1_epi32(2 * p as i32 + 1)));
        for (b, pb) in blocks.iter().zip(panel) {
            prefetch_ahead(b, row.len());
            let w = legacy_weights::<T, BB>(b);
            let dx = _mm256_loadu_ps(pb.scales.as_ptr());
            let dd = _mm512_castps256_ps512(_mm256_mul_ps(f16x8(legacy_d_bits::<T, BB>(b)), dx));
            let u = if unsigned { w } else { _mm256_xor_si256(w, _mm256_set1_epi8(0x80u8 as i8)) };
            let u = _mm512_broadcast_i64x4(u);
            for p in 0..PAIRS {
                let x = _mm512_loadu_si512(pb.codes[2 * p..2 * p + 2].as_ptr() as *const __m512i);
                let start = if unsigned {
                    _mm512_setzero_si512()
                } else {
                    _mm512_loadu_si512(pb.neg_lane_sums[2 * p..2 * p + 2].as_ptr() as *const __m512i)
                };
                let s = _mm512_dpbusd_epi32(start, u, x);
                acc[p] = _mm512_fmadd_ps(_mm512_permutexvar_ps(pick[p], dd), _mm512_cvtepi32_ps(s), acc[p]);
            }
            if unsigned {
                let m = legacy_m::<T, BB>(b);
                let sums = _mm256_cvtepi32_ps(_mm256_loadu_si256(pb.sums.as_ptr() as *const __m256i));
                m_acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(-m), dx), sums, m_acc);
            }
        }
        let mut m = [0.0f32; PANEL_ROWS];
        _mm256_storeu_ps(m.as_mut_ptr(), m_acc);
        core::array::from_fn(|r| {
            let pair = acc[r / 2];
            let half = if r % 2 == 0 {
                _mm512_castps512_ps256(pair)
            } else {
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(pair)))
            };
            if unsigned { hsum(half) - m[r] } else { hsum(half) }
        })
    }
}

/// [`k_body`] for one row against a k-quant panel, on 512-bit vectors: two panel rows per
/// vector (their codes of a sub-block are adjacent), the weights and scales broadcast to both
/// halves; the eight rows' minimums from four `madd` of the sub-block sum pairs with the
/// block's minimum pairs, then one vector `fma` (each lane k_body's scalar `fma`). Every
/// row sees k_body's integer sums and f32 steps on its own lanes, so the same bits.
///
/// # Safety
/// AVX2, FMA, F16C and AVX-512 F/BW/VL/VNNI usable.
#[inline(always)]
unsafe fn kpanel_body_512<const FIVE: bool, const BB: usize>(row: &[u8], panel: &[KPanelBlock]) -> [f32; PANEL_ROWS] {
    const PAIRS: usize = PANEL_ROWS / 2;
    // SAFETY: the caller guarantees the features; the 64-byte loads read two adjacent rows of
    // a panel block's code arrays, the 32-byte ones a whole `[f32; 8]` or `[[i16; 2]; 8]`,
    // the weights go through bounds-checked slices.
    unsafe {
        let (blocks, rest) = row.as_chunks::<BB>();
        assert!(rest.is_empty() && blocks.len() == panel.len(), "dot_kpanel: row of {} blocks for {}", blocks.len(), panel.len());
        let mut acc = [_mm512_setzero_ps(); PAIRS];
        let mut m_acc = _mm256_setzero_ps();
        let pick: [__m512i; PAIRS] =
            core::array::from_fn(|p| _mm512_inserti64x4::<1>(_mm512_set1_epi32(2 * p as i32), _mm256_set1_epi32(2 * p as i32 + 1)));
        for (raw, kb) in blocks.iter().zip(panel) {
            for line in (0..raw.len()).step_by(64) {
                prefetch_ahead(&raw[line..], row.len());
            }
            let KHeader { d_bits, dmin_bits, sm, qs, qh } = k_header::<FIVE, BB>(raw);
            let dx = _mm256_loadu_ps(kb.scales.as_ptr());
            m_acc = _mm256_fmadd_ps(_mm256_mul_ps(f16x8(dmin_bits), dx), _mm256_cvtepi32_ps(k_mins(&sm, kb)), m_acc);
            let mut s = [_mm512_setzero_si512(); PAIRS];
            for c in 0..4 {
                let (lo, hi) = k_codes(qs, qh, c);
                let (lo, hi) = (_mm512_broadcast_i64x4(lo), _mm512_broadcast_i64x4(hi));
                let (sv0, sv1) = (_mm512_set1_epi16(sm[2 * c].0 as i16), _mm512_set1_epi16(sm[2 * c + 1].0 as i16));
                for p in 0..PAIRS {
                    let x0 = _mm512_loadu_si512(kb.codes[2 * c][2 * p..2 * p + 2].as_ptr() as *const __m512i);
                    let x1 = _mm512_loadu_si512(kb.codes[2 * c + 1][2 * p..2 * p + 2].as_ptr() as *const __m512i);
                    let p0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo, x0), sv0);
                    let p1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi, x1), sv1);
                    s[p] = _mm512_add_epi32(s[p], _mm512_add_epi32(p0, p1));
                }
            }
            let dd = _mm512_castps256_ps512(_mm256_mul_ps(f16x8(d_bits), dx));
            for p in 0..PAIRS {
                acc[p] = _mm512_fmadd_ps(_mm512_permutexvar_ps(pick[p], dd), _mm512_cvtepi32_ps(s[p]), acc[p]);
            }
        }
        let mut m = [0.0f32; PANEL_ROWS];
        _mm256_storeu_ps(m.as_mut_ptr(), m_acc);
        core::array::from_fn(|r| {
            let pair = acc[r / 2];
            let half = if r % 2 == 0 {
                _mm512_castps512_ps256(pair)
            } else {
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(pair)))
            };
            hsum(half) - m[r]
        })
    }
}

/// [`q6_k_body`] for one row against a k-quant panel, on 512-bit vectors as
/// [`kpanel_body_512`]: the same integer sums and f32 steps per row, so the same bits.
///
/// # Safety
/// AVX2, FMA, F16C and AVX-512 F/BW/VL/VNNI usable.
#[inline(always)]
unsafe fn q6_kpanel_body_512(row: &[u8], panel: &[KPanelBlock]) -> [f32; PANEL_ROWS] {
    const PAIRS: usize = PANEL_ROWS / 2;
    // SAFETY: as for `kpanel_body_512`.
    unsafe {
        let (blocks, rest) = row.as_chunks::<{ BlockQ6K::BYTES }>();
        assert!(rest.is_empty() && blocks.len() == panel.len(), "dot_kpanel: row of {} blocks for {}", blocks.len(), panel.len());
        let low = _mm256_set1_epi8(0x0f);
        let three = _mm256_set1_epi8(3);
        let m32 = _mm512_set1_epi8(32);
        let mut acc = [_mm512_setzero_ps(); PAIRS];
        let pick: [__m512i; PAIRS] =
            core::array::from_fn(|p| _mm512_inserti64x4::<1>(_mm512_set1_epi32(2 * p as i32), _mm256_set1_epi32(2 * p as i32 + 1)));
        for (raw, kb) in blocks.iter().zip(panel) {
            for line in (0..raw.len()).step_by(64) {
                prefetch_ahead(&raw[line..], row.len());
            }
            let b = BlockQ6K::new(raw);
            let (ql, qh, sc) = (b.ql(), b.qh(), b.scales());
            let mut s = [_mm512_setzero_si512(); PAIRS];
            for h in 0..2 {
                let hb = load32(&qh[32 * h..32 * h + 32]);
                let lb = [load32(&ql[64 * h..64 * h + 32]), load32(&ql[64 * h + 32..64 * h + 64])];
                for g in 0..4 {
                    let nib = if g < 2 { _mm256_and_si256(lb[g], low) } else { _mm256_and_si256(_mm256_srli_epi16::<4>(lb[g & 1]), low) };
                    let high = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * g as i32)), three);
                    let q = _mm512_broadcast_i64x4(_mm256_or_si256(nib, _mm256_slli_epi16::<4>(high)));
                    let k = 4 * h + g;
                    let scv = _mm512_broadcast_i64x4(_mm256_set_m128i(
                        _mm_set1_epi16(sc[2 * k + 1] as i8 as i16),
                        _mm_set1_epi16(sc[2 * k] as i8 as i16),
                    ));
                    for p in 0..PAIRS {
                        // q - 32: subtract 32 * (sum of each code pair), as q6_k_body.
                        let xv = _mm512_loadu_si512(kb.codes[k][2 * p..2 * p + 2].as_ptr() as *const __m512i);
                        let d16 = _mm512_sub_epi16(_mm512_maddubs_epi16(q, xv), _mm512_maddubs_epi16(m32, xv));
                        s[p] = _mm512_add_epi32(s[p], _mm512_madd_epi16(d16, scv));
                    }
                }
            }
            let dx = _mm256_loadu_ps(kb.scales.as_ptr());
            let dd = _mm512_castps256_ps512(_mm256_mul_ps(f16x8(b.d_bits()), dx));
            for p in 0..PAIRS {
                acc[p] = _mm512_fmadd_ps(_mm512_permutexvar_ps(pick[p], dd), _mm512_cvtepi32_ps(s[p]), acc[p]);
            }
        }
        core::array::from_fn(|r| {
            let pair = acc[r / 2];
            hsum(if r % 2 == 0 {
                _mm512_castps512_ps256(pair)
            } else {
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(pair)))
            })
        })
    }
}

/// The block header of a Q4_K / Q5_K block: its f16 `d` and `dmin` bits, the 8 sub-block
/// (scale, minimum) pairs, the codes and (Q5_K) the fifth bits.
///
/// # Safety
/// AVX2 usable (the fifth bits are loaded as a vector).
#[inline(always)]
unsafe fn k_header<const FIVE: bool, const BB: usize>(raw: &[u8; BB]) -> KHeader<'_> {
    let (d_bits, dmin_bits, scales, qs, qh) = if FIVE {
        let b = BlockQ5K::new(raw);
        // SAFETY: the caller guarantees AVX2; `load32` takes a bounds-checked 32-byte slice.
        let qh = unsafe { load32(b.qh()) };
        (b.d_bits(), b.dmin_bits(), b.scales(), b.qs(), Some(qh))
    } else {
        let b = BlockQ4K::new(raw);
        (b.d_bits(), b.dmin_bits(), b.scales(), b.qs(), None)
    };
    KHeader { d_bits, dmin_bits, sm: core::array::from_fn(|j| scale_min(scales, j)), qs, qh }
}

/// What [`k_header`] reads from a Q4_K / Q5_K block.
struct KHeader<'a> {
    d_bits: u16,
    dmin_bits: u16,
    /// Sub-block j's (scale, minimum).
    sm: [(u8, u8); 8],
    qs: &'a [u8],
    /// Q5_K's fifth bits.
    qh: Option<__m256i>,
}

/// The codes of sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles) of a Q4_K / Q5_K block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k_codes(qs: &[u8], qh: Option<__m256i>, c: usize) -> (__m256i, __m256i) {
    let (low, one) = (_mm256_set1_epi8(0x0f), _mm256_set1_epi8(1));
    let q = load32(&qs[32 * c..32 * c + 32]);
    let (mut lo, mut hi) = (_mm256_and_si256(q, low), _mm256_and_si256(_mm256_srli_epi16::<4>(q), low));
    if let Some(hb) = qh {
        // Bit 2c of qh[l] is bit 4 of weight l of sub-block 2c, bit 2c + 1 of 2c + 1 (shifts
        // within 16-bit lanes: the bits a byte takes from its neighbour are masked off, the
        // shift being below 8).
        let b0 = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * c as i32)), one);
        let b1 = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * c as i32 + 1)), one);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16::<4>(b0));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16::<4>(b1));
    }
    (lo, hi)
}

/// The eight rows' minimum sums `M[r] = sum_j m_j * sum_j[r]` of a k-quant panel block
/// (exact in 32 bits): four `madd` of the sub-block sum pairs with the minimum pairs.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k_mins(sm: &[(u8, u8); 8], kb: &KPanelBlock) -> __m256i {
    let mut mins = _mm256_setzero_si256();
    for k in 0..4 {
        let pair = (sm[2 * k].1 as u32 | (sm[2 * k + 1].1 as u32) << 16) as i32;
        // SAFETY: `sum_pairs[k]` is 8 x [i16; 2] = 32 bytes; unaligned load.
        let sums = unsafe { _mm256_loadu_si256(kb.sum_pairs[k].as_ptr() as *const __m256i) };
        mins = _mm256_add_epi32(mins, _mm256_madd_epi16(sums, _mm256_set1_epi32(pair)));
    }
    mins
}

/// [`k_body`] for one row against a k-quant panel on 256-bit vectors (one panel row per
/// vector; the eight rows' minimums as in [`kpanel_body_512`]): the same integer sums and f32
/// steps per row, so the same bits.
///
/// # Safety
/// AVX2, FMA and F16C usable.
#[inline(always)]
unsafe fn kpanel_body_256<const FIVE: bool, const BB: usize>(row: &[u8], panel: &[KPanelBlock]) -> [f32; PANEL_ROWS] {
    // SAFETY: the caller guarantees the features; the loads read whole `[i8; 32]` code arrays
    // and `[f32; 8]` scales of a panel block, the weights go through bounds-checked slices.
    unsafe {
        let (blocks, rest) = row.as_chunks::<BB>();
        assert!(rest.is_empty() && blocks.len() == panel.len(), "dot_kpanel: row of {} blocks for {}", blocks.len(), panel.len());
        let mut acc = [_mm256_setzero_ps(); PANEL_ROWS];
        let mut m_acc = _mm256_setzero_ps();
        for (raw, kb) in blocks.iter().zip(panel) {
            for line in (0..raw.len()).step_by(64) {
                prefetch_ahead(&raw[line..], row.len());
            }
            let KHeader { d_bits, dmin_bits, sm, qs, qh } = k_header::<FIVE, BB>(raw);
            let dx = _mm256_loadu_ps(kb.scales.as_ptr());
            m_acc = _mm256_fmadd_ps(_mm256_mul_ps(f16x8(dmin_bits), dx), _mm256_cvtepi32_ps(k_mins(&sm, kb)), m_acc);
            let mut s = [_mm256_setzero_si256(); PANEL_ROWS];
            for c in 0..4 {
                let (lo, hi) = k_codes(qs, qh, c);
                let (sv0, sv1) = (_mm256_set1_epi16(sm[2 * c].0 as i16), _mm256_set1_epi16(sm[2 * c + 1].0 as i16));
                for r in 0..PANEL_ROWS {
                    let x0 = _mm256_loadu_si256(kb.codes[2 * c][r].as_ptr() as *const __m256i);
                    let x1 = _mm256_loadu_si256(kb.codes[2 * c + 1][r].as_ptr() as *const __m256i);
                    let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), sv0);
                    let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), sv1);
                    s[r] = _mm256_add_epi32(s[r], _mm256_add_epi32(p0, p1));
                }
            }
            let mut dd = [0.0f32; PANEL_ROWS];
            _mm256_storeu_ps(dd.as_mut_ptr(), _mm256_mul_ps(f16x8(d_bits), dx));
            for r in 0..PANEL_ROWS {
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dd[r]), _mm256_cvtepi32_ps(s[r]), acc[r]);
            }
        }
        let mut m = [0.0f32; PANEL_ROWS];
        _mm256_storeu_ps(m.as_mut_ptr(), m_acc);
        core::array::from_fn(|r| hsum(acc[r]) - m[r])
    }
}

/// [`q6_k_body`] for one row against a k-quant panel on 256-bit vectors: the same integer
/// sums and f32 steps per row, so the same bits.
///
/// # Safety
/// AVX2, FMA and F16C usable.
#[inline(always)]
unsafe fn q6_kpanel_body_256(row: &[u8], panel: &[KPanelBlock]) -> [f32; PANEL_ROWS] {
    // SAFETY: as for `kpanel_body_256`.
    unsafe {
        let (blocks, rest) = row.as_chunks::<{ BlockQ6K::BYTES }>();
        assert!(rest.is_empty() && blocks.len() == panel.len(), "dot_kpanel: row of {} blocks for {}", blocks.len(), panel.len());
        let m32 = _mm256_set1_epi8(32);
        let mut acc = [_mm256_setzero_ps(); PANEL_ROWS];
        for (raw, kb) in blocks.iter().zip(panel) {
            for line in (0..raw.len()).step_by(64) {
                prefetch_ahead(&raw[line..], row.len());
            }
            let b = BlockQ6K::new(raw);
            let (ql, qh, sc) = (b.ql(), b.qh(), b.scales());
            let mut s = [_mm256_setzero_si256(); PANEL_ROWS];
            for k in 0..8 {
                let (q, scv) = q6_sub(ql, qh, sc, k);
                for r in 0..PANEL_ROWS {
                    // q - 32: subtract 32 * (sum of each code pair), as q6_k_body.
                    let xv = _mm256_loadu_si256(kb.codes[k][r].as_ptr() as *const __m256i);
                    let d16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, xv), _mm256_maddubs_epi16(m32, xv));
                    s[r] = _mm256_add_epi32(s[r], _mm256_madd_epi16(d16, scv));
                }
            }
            let mut dd = [0.0f32; PANEL_ROWS];
            _mm256_storeu_ps(dd.as_mut_ptr(), _mm256_mul_ps(f16x8(b.d_bits()), _mm256_loadu_ps(kb.scales.as_ptr())));
            for r in 0..PANEL_ROWS {
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dd[r]), _mm256_cvtepi32_ps(s[r]), acc[r]);
            }
        }
        acc.map(|a| hsum(a))
    }
}

/// The codes (0..63) of Q6_K sub-block k (weights 32k..32k+32) and its two 16-weight
/// scales as 16-bit lanes (the low 128 bits the first half's).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q6_sub(ql: &[u8], qh: &[u8], sc: &[u8], k: usize) -> (__m256i, __m256i) {
    let (h, g) = (k / 4, k % 4);
    let low = _mm256_set1_epi8(0x0f);
    let lb = load32(&ql[64 * h + 32 * (g & 1)..64 * h + 32 * (g & 1) + 32]);
    let nib = if g < 2 { _mm256_and_si256(lb, low) } else { _mm256_and_si256(_mm256_srli_epi16::<4>(lb), low) };
    let hb = load32(&qh[32 * h..32 * h + 32]);
    let high = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * g as i32)), _mm256_set1_epi8(3));
    let q = _mm256_or_si256(nib, _mm256_slli_epi16::<4>(high));
    let scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1] as i8 as i16), _mm_set1_epi16(sc[2 * k] as i8 as i16));
    (q, scv)
}

/// `fma(a, b, c)` on scalars, rounded once.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fma1(a: f32, b: f32, c: f32) -> f32 {
    _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)))
}

/// As [`legacy_body`], for Q4_K and (`FIVE`, `BB` = 176) Q5_K: the same sub-block sums, Q5_K's
/// codes with their fifth bit from `qh`.
///
/// # Safety
/// AVX2, FMA and F16C usable.
#[inline(always)]
unsafe fn k_body<const FIVE: bool, const BB: usize, const N: usize, const R: usize>(rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> [[f32; N]; R] {
    // SAFETY: the caller guarantees the features; every load goes through bounds-checked
    // slices.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); N]; R];
        let mut m_acc = [[0.0f32; N]; R];
        let low = _mm256_set1_epi8(0x0f);
        let one = _mm256_set1_epi8(1);
        let nb = xs[0].scales().len();
        assert!(xs.iter().all(|x| x.scales().len() == nb), "dot_k: activation rows of different lengths");
        let blocks: [&[[u8; BB]]; N] = rows.map(|r| {
            let (b, rest) = r.as_chunks::<BB>();
            assert!(rest.is_empty() && b.len() == nb, "dot_k: row of {} blocks", b.len());
            b
        });
        for bi in 0..nb {
            for r in 0..N {
                let raw = &blocks[r][bi];
                for line in (0..raw.len()).step_by(64) {
                    prefetch_ahead(&raw[line..], N * rows[r].len());
                }
                let (d_bits, dmin_bits, scales, qs, qh) = if FIVE {
                    let b = BlockQ5K::new(raw);
                    (b.d_bits(), b.dmin_bits(), b.scales(), b.qs(), Some(load32(b.qh())))
                } else {
                    let b = BlockQ4K::new(raw);
                    (b.d_bits(), b.dmin_bits(), b.scales(), b.qs(), None)
                };
                let mut s = [_mm256_setzero_si256(); R];
                let mut m = [0i32; R];
                for c in 0..4 {
                    let q = load32(&qs[32 * c..32 * c + 32]);
                    let (mut lo, mut hi) = (_mm256_and_si256(q, low), _mm256_and_si256(_mm256_srli_epi16::<4>(q), low));
                    if let Some(hb) = qh {
                        // Bit 2c of qh[l] is bit 4 of weight l of sub-block 2c, bit 2c + 1 of 2c + 1
                        // (shifts within 16-bit lanes: the bits a byte takes from its neighbour
                        // are masked off, the shift being below 8).
                        let b0 = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * c as i32)), one);
                        let b1 = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * c as i32 + 1)), one);
                        lo = _mm256_or_si256(lo, _mm256_slli_epi16::<4>(b0));
                        hi = _mm256_or_si256(hi, _mm256_slli_epi16::<4>(b1));
                    }
                    let (sc0, m0) = scale_min(scales, 2 * c);
                    let (sc1, m1) = scale_min(scales, 2 * c + 1);
                    let (sv0, sv1) = (_mm256_set1_epi16(sc0 as i16), _mm256_set1_epi16(sc1 as i16));
                    for i in 0..R {
                        let x0 = codes32(&xs[i], QK_K * bi + 64 * c);
                        let x1 = codes32(&xs[i], QK_K * bi + 64 * c + 32);
                        let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), sv0);
                        let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), sv1);
                        s[i] = _mm256_add_epi32(s[i], _mm256_add_epi32(p0, p1));
                        let sums = &xs[i].sums()[8 * bi..8 * bi + 8];
                        m[i] += m0 as i32 * sums[2 * c] + m1 as i32 * sums[2 * c + 1];
                    }
                }
                let (d, dmin) = (f16(d_bits), f16(dmin_bits));
                for i in 0..R {
                    let dx = xs[i].scales()[bi];
                    acc[i][r] = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(s[i]), acc[i][r]);
                    m_acc[i][r] = fma1(dmin * dx, m[i] as f32, m_acc[i][r]);
                }
            }
        }
        let mut out = [[0.0f32; N]; R];
        for i in 0..R {
            for r in 0..N {
                out[i][r] = hsum(acc[i][r]) - m_acc[i][r];
            }
        }
        out
    }
}

/// As [`legacy_body`], for Q6_K.
///
/// # Safety
/// AVX2, FMA and F16C usable.
#[inline(always)]
unsafe fn q6_k_body<const N: usize, const R: usize>(rows: [&[u8]; N], xs: [Q8Row<'_>; R]) -> [[f32; N]; R] {
    // SAFETY: the caller guarantees the features; every load goes through bounds-checked
    // slices.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); N]; R];
        let low = _mm256_set1_epi8(0x0f);
        let three = _mm256_set1_epi8(3);
        let m32 = _mm256_set1_epi8(32);
        let nb = xs[0].scales().len();
        assert!(xs.iter().all(|x| x.scales().len() == nb), "dot_q6_k: activation rows of different lengths");
        let blocks: [&[[u8; BlockQ6K::BYTES]]; N] = rows.map(|r| {
            let (b, rest) = r.as_chunks::<{ BlockQ6K::BYTES }>();
            assert!(rest.is_empty() && b.len() == nb, "dot_q6_k: row of {} blocks", b.len());
            b
        });
        for bi in 0..nb {
            for r in 0..N {
                let raw = &blocks[r][bi];
                for line in (0..raw.len()).step_by(64) {
                    prefetch_ahead(&raw[line..], N * rows[r].len());
                }
                let b = BlockQ6K::new(raw);
                let (ql, qh, sc) = (b.ql(), b.qh(), b.scales());
                let mut s = [_mm256_setzero_si256(); R];
                for h in 0..2 {
                    let hb = load32(&qh[32 * h..32 * h + 32]);
                    let lb = [load32(&ql[64 * h..64 * h + 32]), load32(&ql[64 * h + 32..64 * h + 64])];
                    for g in 0..4 {
                        let nib =
                            if g < 2 { _mm256_and_si256(lb[g], low) } else { _mm256_and_si256(_mm256_srli_epi16::<4>(lb[g & 1]), low) };
                        let high = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * g as i32)), three);
                        let q = _mm256_or_si256(nib, _mm256_slli_epi16::<4>(high));
                        let k = 4 * h + g;
                        let scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1] as i8 as i16), _mm_set1_epi16(sc[2 * k] as i8 as i16));
                        for i in 0..R {
                            // q - 32: subtract 32 * (sum of each code pair).
                            let xv = codes32(&xs[i], QK_K * bi + 32 * k);
                            let p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, xv), _mm256_maddubs_epi16(m32, xv));
                            s[i] = _mm256_add_epi32(s[i], _mm256_madd_epi16(p, scv));
                        }
                    }
                }
                let d = f16(b.d_bits());
                for i in 0..R {
                    acc[i][r] = _mm256_fmadd_ps(_mm256_set1_ps(d * xs[i].scales()[bi]), _mm256_cvtepi32_ps(s[i]), acc[i][r]);
                }
            }
        }
        acc.map(|a| a.map(|v| hsum(v)))
    }
}
