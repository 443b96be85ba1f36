//! IEEE half precision (f16) and bfloat16 (bf16) conversions in software, for `no_std`.
//!
//! `f16_to_f32` and `bf16_to_f32` are exact (every f16 and bf16 value is an f32 value),
//! including subnormals, infinities and NaN payloads (a NaN keeps its sign and payload bits;
//! a signalling NaN is not quieted). `f32_to_f16` and `f32_to_bf16` round to nearest, ties to
//! even, as numpy's `astype(float16)` and ggml's `ggml_compute_fp32_to_bf16` do.

/// Half-precision bits to f32, exactly.
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x03ff) as u32;
    let bits = if exp == 0 {
        if mant == 0 {
            sign
        } else {
            // Subnormal: mant * 2^-24. Shift the leading 1 up to bit 10 (the implicit bit).
            let shift = mant.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((mant << shift) & 0x03ff) << 13)
        }
    } else if exp == 31 {
        sign | 0x7f80_0000 | (mant << 13)
    } else {
        sign | ((exp + 112) << 23) | (mant << 13)
    };
    f32::from_bits(bits)
}

/// f32 to half-precision bits, round to nearest even; overflow gives infinity. A NaN keeps its
/// sign and the top 10 payload bits, not quieted, and stays a NaN (as numpy's `astype`), so
/// `f32_to_f16(f16_to_f32(h)) == h` for every pattern.
#[inline]
pub fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let a = x & 0x7fff_ffff;
    if a >= 0x7f80_0000 {
        return if a > 0x7f80_0000 { sign | 0x7c00 | (((a >> 13) & 0x03ff) as u16).max(1) } else { sign | 0x7c00 };
    }
    if a >= 0x477f_f000 {
        // >= 65520, halfway between 65504 (max half, odd mantissa) and 65536: rounds to inf.
        return sign | 0x7c00;
    }
    if a >= 0x3880_0000 {
        // Normal half (>= 2^-14).
        let e = (a >> 23) - 112;
        let mant = a & 0x007f_ffff;
        let mut h = (e << 10) | (mant >> 13);
        let rest = mant & 0x1fff;
        if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) {
            h += 1; // a carry into the exponent is the correct next value
        }
        return sign | h as u16;
    }
    if a <= 0x3300_0000 {
        // <= 2^-25: half of the smallest subnormal or less, ties to even (zero).
        return sign;
    }
    // Subnormal half: the value in units of 2^-24 is m >> shift.
    let e = a >> 23; // 102..=112
    let m = (a & 0x007f_ffff) | 0x0080_0000;
    let shift = 126 - e; // 14..=24
    let mut h = m >> shift;
    let rest = m & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    if rest > half || (rest == half && h & 1 == 1) {
        h += 1;
    }
    sign | h as u16
}

/// bfloat16 bits to f32, exactly.
#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// f32 to bfloat16 bits, round to nearest even; a NaN is quieted (ggml's rule).
#[inline]
pub fn f32_to_bf16(f: f32) -> u16 {
    let x = f.to_bits();
    if x & 0x7fff_ffff > 0x7f80_0000 {
        return ((x >> 16) | 64) as u16;
    }
    ((x as u64 + 0x7fff + ((x >> 16) & 1) as u64) >> 16) as u16
}

/// Reads a little-endian f16 at `b[0..2]` as f32.
#[inline]
pub(crate) fn read_f16(b: &[u8]) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[0], b[1]]))
}
