mod common;

use common::*;
use llm_engine::checkpoint::{self, CheckpointError, HEADER_BYTES};
use proptest::prelude::*;

fn small() -> llm_engine::LlmcConfig {
    config(2, 2, 16, 8, 256, 264)
}

#[test]
fn v3_round_trip_is_bit_identical() {
    let cfg = small();
    let params = random_params(&cfg, 1, 0.1);
    let bytes = checkpoint::encode_v3(&cfg, &params);
    assert_eq!(bytes.len(), HEADER_BYTES + 4 * cfg.num_parameters());
    let ck = checkpoint::parse(&bytes).unwrap();
    assert_eq!(ck.config, cfg);
    assert_eq!(ck.version, 3);
    assert!(ck.params.iter().zip(&params).all(|(a, b)| a.to_bits() == b.to_bits()));
    // And written again, byte for byte the same file.
    assert_eq!(checkpoint::encode_v3(&ck.config, &ck.params), bytes);
}

#[test]
fn v3_aligned_is_a_view_and_unaligned_is_copied() {
    let cfg = small();
    let params = random_params(&cfg, 2, 0.1);
    let bytes = checkpoint::encode_v3(&cfg, &params);
    // Vec<u8> from the global allocator is at least 8-aligned on x86_64.
    let ck = checkpoint::parse(&bytes).unwrap();
    assert!(matches!(ck.params, std::borrow::Cow::Borrowed(_)));
    assert_eq!(ck.params.as_ptr() as usize, bytes.as_ptr() as usize + HEADER_BYTES);
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let ck2 = checkpoint::parse(&shifted[1..]).unwrap();
    assert!(matches!(ck2.params, std::borrow::Cow::Owned(_)));
    assert_eq!(&ck2.params[..], &params[..]);
}

#[test]
fn v5_bf16_reads_by_converting() {
    let cfg = small();
    let params = random_params(&cfg, 3, 0.1);
    let bytes = checkpoint::encode_v5(&cfg, &params);
    assert_eq!(bytes.len(), HEADER_BYTES + 2 * cfg.num_parameters());
    let ck = checkpoint::parse(&bytes).unwrap();
    assert_eq!(ck.version, 5);
    for (a, b) in ck.params.iter().zip(&params) {
        // bf16 keeps 8 bits of mantissa: relative error below 2^-8.
        assert!((a - b).abs() <= b.abs() / 256.0 + 1e-30, "{a} vs {b}");
    }
}

/// f32 bit pattern -> bf16 bit pattern, computed outside the engine with exact rational
/// arithmetic (Python's `fractions`): the nearest bf16 value, ties to the even pattern, 2^128
/// and beyond round to infinity, NaN stays NaN (quiet). The script:
///
/// ```python
/// from fractions import Fraction as F
/// def value(b):  # exact value of a finite f32 bit pattern
///     s, e, m = b >> 31, (b >> 23) & 0xFF, b & 0x7FFFFF
///     v = F(m, 1 << 23) * F(2) ** -126 if e == 0 else (1 + F(m, 1 << 23)) * F(2) ** (e - 127)
///     return -v if s else v
/// def bf16_rne(b):
///     s, e, m = b >> 31, (b >> 23) & 0xFF, b & 0x7FFFFF
///     if e == 0xFF:
///         return (b >> 16) | (0x40 if m else 0)
///     x, lo = abs(value(b)), (b & 0x7FFFFFFF) >> 16
///     vlo = value(lo << 16)
///     vhi = value((lo + 1) << 16) if lo + 1 < 0x7F80 else F(2) ** 128
///     d_lo, d_hi = x - vlo, vhi - x
///     pick = lo if d_lo < d_hi else lo + 1 if d_hi < d_lo else (lo if lo % 2 == 0 else lo + 1)
///     return pick | (s << 15)
/// ```
const BF16_CASES: [(u32, u16, &str); 28] = [
    (0x3F808000, 0x3F80, "tie 1 + 2^-8: down to the even 1.0"),
    (0x3F818000, 0x3F82, "tie above the odd 0x3F81: up to the even"),
    (0xBF808000, 0xBF80, "negative tie: down (in magnitude) to even"),
    (0xBF818000, 0xBF82, "negative tie: up (in magnitude) to even"),
    (0x3F808001, 0x3F81, "just above a tie: up"),
    (0x3F807FFF, 0x3F80, "just below a tie: down"),
    (0x3FFF8000, 0x4000, "tie whose rounding carries into the exponent"),
    (0x3FFFFFFF, 0x4000, "carry into the exponent"),
    (0x7F7FFFFF, 0x7F80, "largest finite f32 rounds to +inf"),
    (0xFF7FFFFF, 0xFF80, "most negative finite f32 rounds to -inf"),
    (0x7F7F8000, 0x7F80, "tie below 2^128: to the even pattern, which is inf"),
    (0x7F7F7FFF, 0x7F7F, "just below that tie: the largest finite bf16"),
    (0x7F7E8000, 0x7F7E, "tie between two finite maxima: even, finite"),
    (0x7F800000, 0x7F80, "+inf"),
    (0xFF800000, 0xFF80, "-inf"),
    (0x00008000, 0x0000, "subnormal tie: down to +0"),
    (0x00018000, 0x0002, "subnormal tie: up to even"),
    (0x00008001, 0x0001, "subnormal above a tie: up"),
    (0x80008000, 0x8000, "negative subnormal tie: down to -0"),
    (0x80018000, 0x8002, "negative subnormal tie: up to even"),
    (0x00000001, 0x0000, "smallest subnormal: to zero"),
    (0x007FFFFF, 0x0080, "largest subnormal: up to the smallest normal"),
    (0x007F8000, 0x0080, "subnormal tie into the smallest normal"),
    (0x00000000, 0x0000, "+0"),
    (0x80000000, 0x8000, "-0 keeps its sign"),
    (0x3F800000, 0x3F80, "1.0 exact"),
    (0xC0200000, 0xC020, "-2.5 exact"),
    (0x40490000, 0x4049, "3.140625 exact"),
];

#[test]
fn bf16_conversion_rounds_to_nearest_even() {
    for (f, want, what) in BF16_CASES {
        let got = checkpoint::f32_to_bf16(f32::from_bits(f));
        assert_eq!(got, want, "{f:#010x} ({what}): got {got:#06x}, want {want:#06x}");
        // bf16 -> f32 is exact: the pattern is the top half.
        assert_eq!(checkpoint::bf16_to_f32(want).to_bits(), (want as u32) << 16);
    }
    // NaN stays NaN with its sign, including NaNs whose payload is only in the low 16 bits
    // (plain rounding would turn those into infinity).
    for f in [0x7FC0_0000u32, 0x7F80_0001, 0x7F80_8000, 0x7FFF_FFFF, 0xFFC0_0000, 0xFF80_0001] {
        let b = checkpoint::f32_to_bf16(f32::from_bits(f));
        assert!(checkpoint::bf16_to_f32(b).is_nan(), "{f:#010x} gave {b:#06x}");
        assert_eq!(b >> 15, (f >> 31) as u16, "{f:#010x}: sign");
    }
    assert_eq!(checkpoint::f32_to_bf16(f32::from_bits(0x7FC0_0000)), 0x7FC0);
}

#[test]
fn bf16_conversion_matches_nearest_even_on_random_values_and_ties() {
    // bf16 of x is one of the two patterns around it (x's top half, or the next one up in
    // magnitude; 0x7F80 counts as 2^128): the nearer one, or on a tie the even one.
    let mut rng = llm_engine::Rng::new(9);
    for i in 0..20000 {
        let mut bits = rng.next_u32();
        if i % 2 == 0 {
            bits = bits & 0xffff_0000 | 0x8000; // an exact tie
        }
        let x = f32::from_bits(bits);
        if !x.is_finite() {
            continue;
        }
        let lo = bits >> 16;
        let mag = |p: u32| if p & 0x7fff == 0x7f80 { 2f64.powi(128) } else { (f32::from_bits(p << 16) as f64).abs() };
        let (d_lo, d_hi) = ((x as f64).abs() - mag(lo), mag(lo + 1) - (x as f64).abs());
        let want = if d_lo < d_hi || (d_lo == d_hi && lo.is_multiple_of(2)) { lo } else { lo + 1 };
        assert_eq!(checkpoint::f32_to_bf16(x) as u32, want, "x = {x} ({bits:#010x})");
    }
}

fn with_header(vals: [i32; 8], body_len: usize) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_BYTES + body_len];
    for (i, v) in vals.iter().enumerate() {
        b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    b
}

#[test]
fn every_malformed_header_is_a_named_error() {
    let ok = [20240326, 3, 8, 256, 2, 2, 16, 264];
    type Case = ([i32; 8], fn(&CheckpointError) -> bool);
    let cases: Vec<Case> = vec![
        ([1, 3, 8, 256, 2, 2, 16, 264], |e| matches!(e, CheckpointError::BadMagic { found: 1 })),
        ([20240326, 4, 8, 256, 2, 2, 16, 264], |e| matches!(e, CheckpointError::UnsupportedVersion { found: 4 })),
        ([20240326, 3, 0, 256, 2, 2, 16, 264], |e| matches!(e, CheckpointError::BadDimension { name: "maxT", .. })),
        ([20240326, 3, 8, -5, 2, 2, 16, 264], |e| matches!(e, CheckpointError::BadDimension { name: "V", value: -5, .. })),
        ([20240326, 3, 8, 256, 0, 2, 16, 264], |e| matches!(e, CheckpointError::BadDimension { name: "L", .. })),
        ([20240326, 3, 8, 256, 2, 3, 16, 264], |e| matches!(e, CheckpointError::ChannelsNotDivisible { channels: 16, heads: 3 })),
        ([20240326, 3, 8, 300, 2, 2, 16, 264], |e| matches!(e, CheckpointError::VocabExceedsPadded { vocab: 300, padded: 264 })),
        ([20240326, 3, 1 << 20, 1 << 24, 1024, 1024, 1 << 16, 1 << 24], |e| matches!(e, CheckpointError::SizeOverflow)),
        ([20240326, 3, 8, 256, 2, 2, i32::MAX, 264], |e| matches!(e, CheckpointError::BadDimension { name: "C", .. })),
    ];
    for (vals, check) in cases {
        let err = checkpoint::parse(&with_header(vals, 0)).err().expect("must fail");
        assert!(check(&err), "{vals:?} gave {err:?}");
        assert!(!err.to_string().is_empty());
    }
    let cfg = small();
    let n = 4 * cfg.num_parameters();
    assert!(matches!(
        checkpoint::parse(&with_header(ok, n - 4)),
        Err(CheckpointError::Truncated { expected, found }) if expected == HEADER_BYTES + n && found == HEADER_BYTES + n - 4
    ));
    assert!(matches!(checkpoint::parse(&with_header(ok, n + 1)), Err(CheckpointError::TrailingBytes { .. })));
    assert!(matches!(checkpoint::parse(&[0u8; 100]), Err(CheckpointError::TooShortForHeader { len: 100 })));
    assert!(checkpoint::parse(&with_header(ok, n)).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = checkpoint::parse(&bytes);
        let _ = llm_engine::Tokenizer::from_llmc_bytes(&bytes);
    }

    #[test]
    fn random_headers_never_panic(vals in proptest::array::uniform8(any::<i32>()), magic_ok in any::<bool>(), extra in 0usize..5000) {
        let mut v = vals;
        if magic_ok { v[0] = 20240326; v[1] = if vals[1] & 1 == 0 { 3 } else { 5 }; }
        let bytes = with_header(v, extra);
        if let Ok(ck) = checkpoint::parse(&bytes) {
            // Anything accepted must be internally consistent and usable.
            prop_assert_eq!(ck.params.len(), ck.config.num_parameters());
        }
    }

    #[test]
    fn mutated_checkpoints_never_panic(pos in 0usize..(HEADER_BYTES + 64), byte in any::<u8>(), cut in 0usize..200) {
        let cfg = config(1, 1, 8, 4, 16, 16);
        let params = random_params(&cfg, 5, 0.1);
        let mut bytes = checkpoint::encode_v3(&cfg, &params);
        let pos = pos.min(bytes.len() - 1);
        bytes[pos] = byte;
        bytes.truncate(bytes.len() - cut.min(bytes.len()));
        if let Ok(loaded) = llm_engine::load(&bytes) {
            let model = loaded.model;
            let mut st = model.new_state(llm_engine::Kernels::portable());
            let _ = model.forward(&mut st, &[0], 0);
        }
    }
}
