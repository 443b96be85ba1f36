//! GGML block formats (engine/src/quant) against gguf's numpy reference (fixtures made by
//! scripts/make-quant-fixtures.py), and the quantized dot products against the canonical dot
//! of the dequantized row, bit for bit.
mod common;

use llm_engine::Rng;
use llm_engine::cpu::CpuFeatures;
use llm_engine::kernels::portable::{dot_q8, dot_q8_nofma, dot_row, dot_row_fma};
use llm_engine::kernels::{Family, Kernels, portable};
use llm_engine::quant::f16::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use llm_engine::quant::{BlockType, dequantize_row, quantize_row};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quant");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{DIR}/{name}: {e}"))
}

fn read_f32(name: &str) -> Vec<f32> {
    read(name).chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn assert_bits_eq(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {i}: {g:e} vs numpy {w:e}");
    }
}

#[test]
fn type_table_matches_ggml() {
    use BlockType::*;
    let want = [
        (F32, 0, 1, 4),
        (F16, 1, 1, 2),
        (BF16, 30, 1, 2),
        (Q8_0, 8, 32, 34),
        (Q4_0, 2, 32, 18),
        (Q4_1, 3, 32, 20),
        (Q5_0, 6, 32, 22),
        (Q5_1, 7, 32, 24),
        (Q4_K, 12, 256, 144),
        (Q5_K, 13, 256, 176),
        (Q6_K, 14, 256, 210),
        (IQ4_NL, 20, 32, 18),
    ];
    assert_eq!(BlockType::ALL.len(), want.len());
    for (t, id, elems, bytes) in want {
        assert_eq!((t.ggml_id(), t.block_elems(), t.block_bytes()), (id, elems, bytes), "{t:?}");
        assert_eq!(BlockType::from_ggml_id(id), Some(t));
        assert_eq!(t.row_bytes(0), Some(0));
        assert_eq!(t.row_bytes(elems * 7), Some(bytes * 7));
        if elems > 1 {
            assert_eq!(t.row_bytes(elems + 1), None, "{t:?}");
            assert_eq!(t.row_bytes(elems / 2), None, "{t:?}");
        }
        if bytes > elems {
            assert_eq!(t.row_bytes(usize::MAX / elems * elems), None, "{t:?}: overflow");
        }
        assert_eq!(t.can_quantize(), !matches!(t, Q4_K | Q5_K | Q6_K | IQ4_NL));
    }
    for id in [4, 5, 9, 10, 11, 15, 16, 29, 31, 1000] {
        assert_eq!(BlockType::from_ggml_id(id), None, "{id}");
    }
}

#[test]
fn dequantize_row_equals_numpy_for_every_type() {
    for t in BlockType::ALL {
        let raw = read(&format!("{}.blocks", t.name()));
        let want = read_f32(&format!("{}.blocks.f32", t.name()));
        assert_eq!(t.row_bytes(want.len()), Some(raw.len()), "{t:?} fixture sizes");
        let mut got = vec![0.0f32; want.len()];
        dequantize_row(t, &raw, &mut got);
        assert_bits_eq(t.name(), &got, &want);
        // Row by row, too (rows of 1 and of 3 blocks).
        for nb in [1, 3] {
            let (rb, re) = (nb * t.block_bytes(), nb * t.block_elems());
            for (r, w) in raw.chunks_exact(rb).zip(want.chunks_exact(re)) {
                let mut g = vec![0.0f32; re];
                dequantize_row(t, r, &mut g);
                assert_bits_eq(t.name(), &g, w);
            }
        }
    }
}

#[test]
fn quantize_row_equals_numpy_for_the_types_it_quantizes() {
    for t in BlockType::ALL.into_iter().filter(|t| t.can_quantize() && *t != BlockType::F32) {
        let src = read_f32(&format!("{}.src.f32", t.name()));
        let want = read(&format!("{}.quant", t.name()));
        let mut got = vec![0u8; t.row_bytes(src.len()).unwrap()];
        quantize_row(t, &src, &mut got);
        assert_eq!(got.len(), want.len(), "{t:?}");
        for (b, (g, w)) in got.chunks(t.block_bytes()).zip(want.chunks(t.block_bytes())).enumerate() {
            assert_eq!(g, w, "{t:?} block {b} (source {:?}...)", &src[b * t.block_elems()..][..4.min(t.block_elems())]);
        }
    }
}

/// The value of an f16 bit pattern by the formula, in f64 (None for NaN).
fn f16_formula(h: u16) -> Option<f64> {
    let s = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let (e, m) = (((h >> 10) & 0x1f) as i32, (h & 0x3ff) as f64);
    match e {
        0 => Some(s * m * 2f64.powi(-24)),
        31 if m == 0.0 => Some(s * f64::INFINITY),
        31 => None,
        _ => Some(s * (1.0 + m / 1024.0) * 2f64.powi(e - 15)),
    }
}

#[test]
fn f16_to_f32_is_exact_for_all_65536_patterns() {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for h in 0..=u16::MAX {
        let f = f16_to_f32(h);
        match f16_formula(h) {
            Some(v) => {
                assert_eq!(f as f64, v, "f16 {h:#06x}");
                assert_eq!(f.is_sign_negative(), h & 0x8000 != 0, "f16 {h:#06x} sign");
            }
            None => {
                // NaN: sign and payload kept, not quieted.
                assert!(f.is_nan(), "f16 {h:#06x}");
                assert_eq!(f.to_bits(), ((h as u32 & 0x8000) << 16) | 0x7f80_0000 | ((h as u32 & 0x3ff) << 13));
            }
        }
        assert_eq!(f32_to_f16(f), h, "f16 {h:#06x} round trip");
        for byte in f.to_le_bytes() {
            hash = (hash ^ byte as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    let want = String::from_utf8(read("f16-table.fnv1a64")).unwrap();
    assert_eq!(format!("{hash:016x}"), want.trim(), "hash of numpy's table of all f16 values");
}

#[test]
fn f32_to_f16_rounds_to_nearest_even() {
    let mut rng = Rng::new(7);
    let finite_f16: Vec<u16> = (0..0x7c00u16).collect();
    for k in 0..200_000 {
        // Random magnitudes spread over the f16 range and beyond, both signs.
        let bits = match k % 3 {
            0 => rng.next_u32(),
            1 => (rng.next_u32() & 0x807f_ffff) | ((rng.next_u32() % 48 + 100) << 23),
            _ => f16_to_f32((rng.next_u32() & 0xffff) as u16).to_bits() ^ (rng.next_u32() & 0x3fff),
        };
        let x = f32::from_bits(bits);
        if x.is_nan() {
            assert!(f16_to_f32(f32_to_f16(x)).is_nan());
            continue;
        }
        let h = f32_to_f16(x);
        let a = x.abs() as f64;
        // Reference: the nearest finite f16 magnitude (ties to even mantissa), or inf at or
        // past 65520.
        let want = if a >= 65520.0 {
            0x7c00
        } else {
            let i = finite_f16.partition_point(|&c| f16_formula(c).unwrap() < a);
            let up = i.min(0x7bff) as u16;
            let down = up.saturating_sub(1);
            let (du, dd) = (f16_formula(up).unwrap() - a, a - f16_formula(down).unwrap());
            if up == down || du < dd || (du == dd && up & 1 == 0) { up } else { down }
        };
        let sign = if x.is_sign_negative() { 0x8000 } else { 0 };
        assert_eq!(h, want | sign, "f32 {x:e} ({bits:#010x})");
    }
}

#[test]
fn bf16_conversions() {
    for h in 0..=u16::MAX {
        let f = bf16_to_f32(h);
        assert_eq!(f.to_bits(), (h as u32) << 16);
        let back = f32_to_bf16(f);
        if f.is_nan() {
            assert_eq!(back, h | 0x40, "NaN {h:#06x} is quieted");
        } else {
            assert_eq!(back, h);
        }
    }
    // Ties to even, carries into the exponent, overflow to inf.
    assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80);
    assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
    assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
    assert_eq!(f32_to_bf16(f32::from_bits(0x3fff_ffff)), 0x4000);
    assert_eq!(f32_to_bf16(f32::MAX), 0x7f80);
}

/// A random row of `n` weights: random bytes with sane f16 scales for the block types, random
/// normal floats (encoded) for F32/F16/BF16.
fn random_row(rng: &mut Rng, t: BlockType, n: usize) -> Vec<u8> {
    let mut row = vec![0u8; t.row_bytes(n).unwrap()];
    if t.block_elems() == 1 {
        let x: Vec<f32> = (0..n).map(|_| common::normal(rng) * 0.5).collect();
        quantize_row(t, &x, &mut row);
        return row;
    }
    for b in row.iter_mut() {
        *b = rng.next_u32() as u8;
    }
    let f16 = |v: f32| f32_to_f16(v).to_le_bytes();
    for blk in row.chunks_exact_mut(t.block_bytes()) {
        let d = 1e-3 + rng.next_f32() * 0.099;
        match t {
            BlockType::Q6_K => blk[208..210].copy_from_slice(&f16(d)),
            BlockType::Q4_K | BlockType::Q5_K => {
                blk[0..2].copy_from_slice(&f16(d));
                blk[2..4].copy_from_slice(&f16(1e-3 + rng.next_f32() * 0.099));
            }
            _ => {
                let sign = if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
                blk[0..2].copy_from_slice(&f16(sign * d));
                if matches!(t, BlockType::Q4_1 | BlockType::Q5_1) {
                    blk[2..4].copy_from_slice(&f16(rng.next_f32() * 2.0 - 1.0));
                }
            }
        }
    }
    row
}

fn check_dots(t: BlockType, row: &[u8], x: &[f32], what: &str) {
    let mut w = vec![0.0f32; x.len()];
    dequantize_row(t, row, &mut w);
    let (nofma, fma) = (portable::dot(&w, x), portable::dot_fma(&w, x));
    assert_eq!(dot_row(t, row, x).to_bits(), nofma.to_bits(), "{what}: dot_row vs dot");
    assert_eq!(dot_row_fma(t, row, x).to_bits(), fma.to_bits(), "{what}: dot_row_fma vs dot_fma");
    for k in Kernels::available() {
        let want = if matches!(k.family(), Family::Fma | Family::FmaQ8) { fma } else { nofma };
        assert_eq!(k.dot_row(t, row, x).to_bits(), want.to_bits(), "{what}: {}", k.name());
    }
}

fn random_x(rng: &mut Rng, n: usize) -> Vec<f32> {
    // Mixed magnitudes (activation outliers) so the order of the sums matters.
    (0..n).map(|i| common::normal(rng) * if i % 37 == 5 { 300.0 } else { 1.0 }).collect()
}

/// Prefill's blocked product (`Kernels::matmul` of several input rows times a quantized
/// matrix, f32 activations): every output equals `dot_row` of its weight row and input row,
/// for every type and set, with input-row counts around the groups of 16, output counts
/// around the blocks of 8, a short last chunk and a ragged (padded) one.
#[test]
fn block_matmul_of_many_rows_equals_dot_row_per_output() {
    let mut rng = Rng::new(77);
    for t in BlockType::ALL {
        let ic = if t.block_elems() == 1 { 300 } else { 512 + t.block_elems() };
        for oc in [1, 7, 8, 9, 20] {
            let data: Vec<u8> = (0..oc).flat_map(|_| random_row(&mut rng, t, ic)).collect();
            let w = llm_engine::tensor::Tensor::blocks(t, oc, ic, std::borrow::Cow::Borrowed(&data[..])).unwrap();
            let bias: Vec<f32> = (0..oc).map(|i| i as f32 * 0.25 - 1.0).collect();
            let rb = t.row_bytes(ic).unwrap();
            for n in [2, 5, 16, 17, 35] {
                let x = random_x(&mut rng, n * ic);
                for k in Kernels::available().into_iter().filter(|k| k.q8_block(t).is_none()) {
                    let mut out = vec![0.0f32; n * oc];
                    k.matmul(&mut out, &x, w.view(), Some(&bias));
                    for r in 0..n {
                        for o in 0..oc {
                            let want = k.dot_row(t, &data[o * rb..(o + 1) * rb], &x[r * ic..(r + 1) * ic]) + bias[o];
                            assert_eq!(out[r * oc + o].to_bits(), want.to_bits(), "{t:?} {} n {n} oc {oc} row {r} out {o}", k.name());
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn dot_row_equals_the_canonical_dot_of_the_dequantized_row() {
    let mut rng = Rng::new(42);
    for t in BlockType::ALL {
        let lengths: Vec<usize> = if t.block_elems() == 1 {
            (0..=70).chain([255, 256, 257, 511, 513, 1000]).collect()
        } else {
            (1..=8).map(|b| b * t.block_elems()).collect()
        };
        for &n in &lengths {
            for rep in 0..4 {
                let row = random_row(&mut rng, t, n);
                let x = random_x(&mut rng, n);
                check_dots(t, &row, &x, &format!("{t:?} n {n} rep {rep}"));
            }
        }
        // The numpy fixture blocks as rows, too (their subnormal and zero scales included).
        let raw = read(&format!("{}.blocks", t.name()));
        let n = raw.len() / t.block_bytes() * t.block_elems();
        let x = random_x(&mut rng, n);
        if t.block_elems() > 1 {
            check_dots(t, &raw, &x, &format!("{t:?} fixture"));
        }
    }
}

#[test]
fn avx2_kernels_are_used_and_equal_the_fma_family() {
    assert!(CpuFeatures::read().avx2_fma_usable(), "this test machine has no usable AVX2+FMA: the AVX2 kernels would go untested");
    let k = Kernels::by_name("avx2").expect("the avx2 set");
    let mut rng = Rng::new(9);
    for t in [BlockType::Q8_0, BlockType::Q5_0, BlockType::Q4_K, BlockType::Q6_K] {
        assert!(k.has_simd_dot(t), "{t:?}");
        for nb in 1..=8 {
            for _ in 0..8 {
                let n = nb * t.block_elems();
                let row = random_row(&mut rng, t, n);
                let x = random_x(&mut rng, n);
                assert_eq!(k.dot_row(t, &row, &x).to_bits(), dot_row_fma(t, &row, &x).to_bits(), "{t:?} n {n}");
            }
        }
    }
    assert!(!Kernels::portable().has_simd_dot(BlockType::Q8_0));
}

#[test]
fn quantize_then_dequantize_is_close() {
    let mut rng = Rng::new(3);
    for t in [BlockType::Q8_0, BlockType::Q4_0, BlockType::Q4_1, BlockType::Q5_0, BlockType::Q5_1] {
        let x: Vec<f32> = (0..256).map(|_| common::normal(&mut rng)).collect();
        let mut q = vec![0u8; t.row_bytes(256).unwrap()];
        quantize_row(t, &x, &mut q);
        let mut y = vec![0.0f32; 256];
        dequantize_row(t, &q, &mut y);
        for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
            let range = xb.iter().fold(0.0f32, |a, v| a.max(v.abs())) * 2.0;
            let levels = match t {
                BlockType::Q8_0 => 254.0,
                BlockType::Q4_0 | BlockType::Q4_1 => 15.0,
                _ => 31.0,
            };
            for (a, b) in xb.iter().zip(yb) {
                assert!((a - b).abs() <= range / levels * 0.51 + 1e-3 * range, "{t:?}: {a} -> {b}");
            }
        }
    }
}

#[test]
#[should_panic(expected = "bytes")]
fn dequantize_row_rejects_a_short_source() {
    let src = vec![0u8; 143];
    let mut out = vec![0.0f32; 256];
    dequantize_row(BlockType::Q4_K, &src, &mut out);
}

#[test]
#[should_panic(expected = "whole number")]
fn dequantize_row_rejects_a_partial_block() {
    let src = vec![0u8; 34];
    let mut out = vec![0.0f32; 33];
    dequantize_row(BlockType::Q8_0, &src, &mut out);
}

#[test]
#[should_panic(expected = "bytes")]
fn dot_row_rejects_a_long_row() {
    dot_row(BlockType::Q6_K, &[0u8; 211], &[0.0f32; 256]);
}

#[test]
#[should_panic(expected = "bytes")]
fn dot_row_fma_rejects_a_short_row() {
    dot_row_fma(BlockType::F16, &[0u8; 5], &[0.0f32; 3]);
}

#[test]
#[should_panic(expected = "bytes")]
fn dot_row_with_rejects_a_short_row() {
    Kernels::detect().dot_row(BlockType::Q8_0, &[0u8; 33], &[0.0f32; 32]);
}

#[test]
#[should_panic(expected = "whole number")]
fn dot_row_with_rejects_a_partial_block() {
    Kernels::detect().dot_row(BlockType::Q4_K, &[0u8; 144], &[0.0f32; 255]);
}

#[test]
#[should_panic(expected = "bytes")]
fn quantize_row_rejects_a_wrong_output() {
    quantize_row(BlockType::Q5_1, &[0.0f32; 64], &mut [0u8; 47]);
}

#[test]
#[should_panic(expected = "not implemented")]
fn quantize_row_refuses_k_quants() {
    quantize_row(BlockType::Q4_K, &[0.0f32; 256], &mut [0u8; 144]);
}

/// The four-row kernels give every row exactly the bits of the one-row kernel (and so of the
/// canonical dot of the dequantized row), for every row count in blocks tried.
#[test]
fn four_row_kernels_equal_one_row_each() {
    use llm_engine::quant::{BlockType, quantize_row};
    let mut rng = llm_engine::Rng::new(99);
    let mut used = 0;
    for k in llm_engine::Kernels::available() {
        for t in [BlockType::Q8_0, BlockType::Q5_0, BlockType::Q4_0] {
            for blocks in 1..6 {
                let n = blocks * 32;
                let x: Vec<f32> = (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
                let rows: Vec<Vec<u8>> = (0..4)
                    .map(|_| {
                        let w: Vec<f32> = (0..n).map(|_| rng.next_f32() - 0.5).collect();
                        let mut b = vec![0u8; t.row_bytes(n).unwrap()];
                        quantize_row(t, &w, &mut b);
                        b
                    })
                    .collect();
                if let Some(four) = k.dot_rows4(t, [&rows[0], &rows[1], &rows[2], &rows[3]], &x) {
                    used += 1;
                    for r in 0..4 {
                        assert_eq!(four[r].to_bits(), k.dot_row(t, &rows[r], &x).to_bits(), "{k:?} {t:?} {blocks} blocks row {r}");
                    }
                }
            }
        }
    }
    assert!(used >= 10, "the AVX2 four-row kernels were not exercised ({used} calls)");
}

// ---- 8-bit activations (quant::q8, Family::FmaQ8) ----

use llm_engine::quant::q8::{self, Q8Buf};

const Q8_TYPES: [BlockType; 8] = [
    BlockType::Q8_0,
    BlockType::Q4_0,
    BlockType::Q5_0,
    BlockType::Q4_1,
    BlockType::Q5_1,
    BlockType::Q4_K,
    BlockType::Q5_K,
    BlockType::Q6_K,
];

/// Activation quantization by hand: amax / 127 scales, round half to even, sums per 32.
#[test]
fn activations_quantize_as_specified() {
    let mut x = vec![0.0f32; 64];
    // Block 0: amax 127 -> id 1, so the codes are rint(x): 2.5 -> 2, -3.5 -> -4, 0.5 -> 0.
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -3.5;
    x[3] = 0.5;
    x[4] = -127.0;
    x[5] = 126.5; // -> 126 (even)
    x[6] = -125.5; // -> -126 (even)
    // Block 1: all zero -> scale 0, codes 0.
    let mut b = Q8Buf::default();
    b.quantize(32, &x, 64);
    assert_eq!((b.rows(), b.cols(), b.block()), (1, 64, 32));
    let r = b.row(0);
    assert_eq!(&r.codes()[..8], &[127, 2, -4, 0, -127, 126, -126, 0]);
    assert_eq!(r.scales(), &[1.0, 0.0]);
    assert_eq!(r.sums(), &[127 + 2 - 4 - 127 + 126 - 126, 0]);

    // Random rows, both block sizes: codes within -127..=127, the largest is +-127, every
    // value within half a step of its code, sums of 32 codes.
    let mut rng = Rng::new(5);
    for block in [32, 256] {
        let x = random_x(&mut rng, 3 * 512);
        b.quantize(block, &x, 512);
        assert_eq!(b.rows(), 3);
        for row in 0..3 {
            let r = b.row(row);
            let xs = &x[row * 512..(row + 1) * 512];
            for (bi, xb) in xs.chunks(block).enumerate() {
                let codes = &r.codes()[bi * block..(bi + 1) * block];
                let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let dx = r.scales()[bi];
                assert_eq!(dx, amax / 127.0);
                assert_eq!(codes.iter().map(|c| c.unsigned_abs()).max(), Some(127));
                for (&c, &v) in codes.iter().zip(xb) {
                    assert!(c >= -127);
                    assert!((c as f64 * dx as f64 - v as f64).abs() <= 0.5 * dx as f64 * (1.0 + 1e-5), "{v} -> {c} * {dx}");
                }
            }
            for (j, s) in r.sums().iter().enumerate() {
                assert_eq!(*s, r.codes()[32 * j..32 * j + 32].iter().map(|&c| c as i32).sum::<i32>());
            }
        }
    }
}

/// The f64 sum of (decoded weight) x (decoded activation): independent of the integer lanes
/// and of the scale factoring (uses the numpy-checked `dequantize_row`).
fn q8_dot_f64(t: BlockType, row: &[u8], x: q8::Q8Row<'_>) -> (f64, f64) {
    let mut w = vec![0.0f32; x.len()];
    dequantize_row(t, row, &mut w);
    let mut xd = vec![0.0f32; x.len()];
    x.dequantize(&mut xd);
    let dot = w.iter().zip(&xd).map(|(&a, &b)| a as f64 * b as f64).sum();
    let mag = w.iter().zip(&xd).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
    (dot, mag)
}

/// Both portable references (`dot_q8` with FMA, `dot_q8_nofma` without: the same integer
/// sums, scaled per block differently) compute the sum of decoded weights times decoded
/// activations (up to f32 roundings), for every paired type; wrong lanes, scales, signs or
/// minimums would be far off.
#[test]
fn q8_dot_equals_the_f64_dot_of_the_decoded_values() {
    for (seed, dot_q8) in [(77, dot_q8 as DotQ8Ref), (78, dot_q8_nofma)] {
        q8_dot_f64_check(seed, dot_q8);
    }
}

fn q8_dot_f64_check(seed: u64, dot_q8: DotQ8Ref) {
    let mut rng = Rng::new(seed);
    for t in Q8_TYPES {
        let block = q8::act_block(t).unwrap();
        for nb in 1..=4 {
            for _ in 0..6 {
                let n = nb * t.block_elems().max(block);
                let row = random_row(&mut rng, t, n);
                let mut b = Q8Buf::default();
                b.quantize(block, &random_x(&mut rng, n), n);
                let got = dot_q8(t, &row, b.row(0)) as f64;
                let (want, mag) = q8_dot_f64(t, &row, b.row(0));
                assert!((got - want).abs() <= 1e-5 * mag, "{t:?} n {n}: {got} vs {want} (magnitude {mag})");
            }
        }
    }
}

/// A family's portable 8-bit reference (`dot_q8`, `dot_q8_nofma`).
type DotQ8Ref = fn(BlockType, &[u8], q8::Q8Row<'_>) -> f32;

/// The 8-bit sets of this CPU with their family's portable reference: AVX2 and AVX-VNNI
/// (FMA family) where usable, and the no-FMA family's portable and SSSE3 sets.
fn q8_sets() -> Vec<(Kernels, DotQ8Ref)> {
    let cpu = CpuFeatures::read();
    let sets: Vec<_> = Kernels::available()
        .into_iter()
        .filter_map(|k| match k.family() {
            Family::FmaQ8 => Some((k, dot_q8 as DotQ8Ref)),
            Family::NoFmaQ8 => Some((k, dot_q8_nofma as DotQ8Ref)),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = sets.iter().map(|(k, _)| k.name()).collect();
    let mut want = vec!["portable-q8"];
    if cpu.ssse3 {
        want.push("ssse3-q8");
    }
    if cpu.avx2_fma_usable() {
        want.push("avx2-q8");
    }
    if cpu.avx_vnni_usable() {
        want.push("avx-vnni");
    }
    if cpu.avx512_vnni_usable() {
        want.push("avx512-vnni");
    }
    assert_eq!(names, want, "the 8-bit sets this CPU should run");
    sets
}

/// The no-FMA 8-bit reference by its definition, written out independently for Q8_0 (the
/// weights are the codes themselves): per block the integer sum, then `acc + (d * dx) * S`
/// rounded at each step, so it differs from the FMA family's lanes in the last bits only.
#[test]
fn q8_nofma_dot_follows_its_definition_on_q8_0() {
    let mut rng = Rng::new(79);
    for nb in 1..=8 {
        let n = 32 * nb;
        let row = random_row(&mut rng, BlockType::Q8_0, n);
        let mut b = Q8Buf::default();
        b.quantize(32, &random_x(&mut rng, n), n);
        let x = b.row(0);
        let mut acc = 0.0f32;
        for (bi, blk) in row.chunks_exact(34).enumerate() {
            let d = llm_engine::quant::f16::f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
            let s: i32 = blk[2..].iter().zip(&x.codes()[32 * bi..32 * bi + 32]).map(|(&w, &c)| w as i8 as i32 * c as i32).sum();
            let dd = d * x.scales()[bi];
            let prod = dd * s as f32;
            acc += prod;
        }
        assert_eq!(dot_q8_nofma(BlockType::Q8_0, &row, x).to_bits(), acc.to_bits(), "{nb} blocks");
    }
}

/// Every 8-bit kernel set (AVX2 and AVX-VNNI, the no-FMA SSSE3 and portable sets) equals its
/// family's portable reference bit for bit, one row and four rows at a time, on random
/// blocks, the numpy fixture blocks (subnormal and zero scales) and extreme codes (-128
/// weights, +-127 activations).
#[test]
fn q8_kernels_equal_the_reference_bit_for_bit() {
    let mut rng = Rng::new(11);
    let (mut checked, mut panels, mut kpanels) = (0, 0, 0);
    let cpu = CpuFeatures::read();
    for (k, dot_q8) in q8_sets() {
        for t in Q8_TYPES {
            let block = q8::act_block(t).unwrap();
            let mut cases: Vec<(Vec<u8>, Vec<f32>)> = Vec::new();
            for nb in 1..=6 {
                let n = nb * t.block_elems().max(block);
                for _ in 0..4 {
                    cases.push((random_row(&mut rng, t, n), random_x(&mut rng, n)));
                }
            }
            let raw = read(&format!("{}.blocks", t.name()));
            let n = raw.len() / t.block_bytes() * t.block_elems();
            let n = n / block * block;
            cases.push((raw[..t.row_bytes(n).unwrap()].to_vec(), random_x(&mut rng, n)));
            if t == BlockType::Q8_0 {
                // Every weight -128 against +-127 codes: the largest 16-bit pair sums.
                let mut row = vec![0x80u8; 34 * 4];
                for blk in row.chunks_exact_mut(34) {
                    blk[0..2].copy_from_slice(&f32_to_f16(0.01).to_le_bytes());
                }
                let x: Vec<f32> = (0..128).map(|i| if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
                cases.push((row, x));
            }
            for (row, x) in &cases {
                let n = x.len();
                let mut b = Q8Buf::default();
                b.quantize(block, x, n);
                let want = dot_q8(t, row, b.row(0));
                assert_eq!(k.dot_q8(t, row, b.row(0)).to_bits(), want.to_bits(), "{t:?} n {n}");
                let four = k.dot_q8_rows4(t, [row, row, row, row], b.row(0));
                assert!(four.iter().all(|v| v.to_bits() == want.to_bits()), "{t:?} n {n}: four rows");
                // One row x eight inputs: the odd ones are the negated, halved row (other codes).
                let neg: Vec<f32> = x.iter().map(|v| -v * 0.5).collect();
                let mut b2 = Q8Buf::default();
                b2.quantize(block, &neg, n);
                let want2 = dot_q8(t, row, b2.row(0));
                let xs = core::array::from_fn(|i| if i % 2 == 0 { b.row(0) } else { b2.row(0) });
                let eight = k.dot_q8_x8(t, row, &xs);
                for (i, v) in eight.iter().enumerate() {
                    let w = if i % 2 == 0 { want } else { want2 };
                    assert_eq!(v.to_bits(), w.to_bits(), "{t:?} n {n}: one row x eight inputs, input {i}");
                }
                // The same eight inputs as one buffer's panel.
                let both: Vec<f32> = (0..8).flat_map(|i| if i % 2 == 0 { x.clone() } else { neg.clone() }).collect();
                let mut b8 = Q8Buf::default();
                b8.quantize(block, &both, n);
                b8.build_panels();
                let panel = if block == 32 { k.dot_q8_panel(t, row, b8.panel(0)) } else { k.dot_q8_kpanel(t, row, b8.kpanel(0)) };
                if let Some(panel) = panel {
                    for (i, v) in panel.iter().enumerate() {
                        let w = if i % 2 == 0 { want } else { want2 };
                        assert_eq!(v.to_bits(), w.to_bits(), "{t:?} n {n}: one row x a panel, input {i}");
                    }
                    if block == 32 {
                        panels += 1;
                    } else {
                        kpanels += 1;
                    }
                }
                checked += 1;
            }
        }
    }
    eprintln!("{checked} rows checked, {panels} against panels, {kpanels} against k-quant panels");
    // The AVX2-class 8-bit sets have panel kernels for the five 32-weight types and the
    // k-quants Q4_K, Q5_K and Q6_K.
    let panel_sets = [cpu.avx2_fma_usable(), cpu.avx_vnni_usable(), cpu.avx512_vnni_usable()].iter().filter(|&&u| u).count();
    assert!(panel_sets == 0 || panels >= panel_sets * 5 * 25, "{panels} panel rows checked");
    assert!(panel_sets == 0 || kpanels >= panel_sets * 3 * 25, "{kpanels} k-quant panel rows checked");
}

/// `Q8Buf::panel` holds each whole group of eight rows interleaved: every field equals the
/// rows' own values (the lane sums recomputed here from the codes); rows past the last whole
/// group and blocks of 256 have no panel.
#[test]
fn q8_panels_interleave_whole_groups_of_eight_rows() {
    let mut rng = Rng::new(13);
    let (rows, cols) = (19, 96);
    let x = random_x(&mut rng, rows * cols);
    let mut b = Q8Buf::default();
    b.quantize(32, &x, cols);
    assert_eq!(b.panel_groups(), 0, "no panels before build_panels");
    b.build_panels();
    assert_eq!(b.panel_groups(), 2);
    for g in 0..2 {
        let p = b.panel(g);
        assert_eq!(p.len(), 3);
        for (bi, pb) in p.iter().enumerate() {
            for r in 0..8 {
                let row = b.row(8 * g + r);
                let codes = &row.codes()[32 * bi..32 * bi + 32];
                assert_eq!(&pb.codes[r][..], codes, "group {g} block {bi} row {r}");
                assert_eq!(pb.scales[r].to_bits(), row.scales()[bi].to_bits());
                assert_eq!(pb.sums[r], row.sums()[bi]);
                for l in 0..8 {
                    let s: i32 = codes[4 * l..4 * l + 4].iter().map(|&c| c as i32).sum();
                    assert_eq!(pb.neg_lane_sums[r][l], -128 * s, "group {g} block {bi} row {r} lane {l}");
                }
            }
        }
    }
    // Blocks of 256: eight sub-blocks per panel block, their sums in pairs.
    let (rows, cols) = (17, 512);
    let x = random_x(&mut rng, rows * cols);
    let mut k = Q8Buf::default();
    k.quantize(256, &x, cols);
    k.build_panels();
    assert_eq!(k.panel_groups(), 2);
    for g in 0..2 {
        let p = k.kpanel(g);
        assert_eq!(p.len(), 2);
        for (bi, kb) in p.iter().enumerate() {
            for r in 0..8 {
                let row = k.row(8 * g + r);
                assert_eq!(kb.scales[r].to_bits(), row.scales()[bi].to_bits());
                for j in 0..8 {
                    let codes = &row.codes()[256 * bi + 32 * j..256 * bi + 32 * j + 32];
                    assert_eq!(&kb.codes[j][r][..], codes, "group {g} block {bi} row {r} sub-block {j}");
                    let s: i32 = codes.iter().map(|&c| c as i32).sum();
                    assert_eq!(kb.sum_pairs[j / 2][r][j % 2] as i32, s, "group {g} block {bi} row {r} sub-block {j}");
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "Q8Buf::panel: group 2 of 2")]
fn q8_panel_past_the_whole_groups_panics() {
    let mut b = Q8Buf::default();
    b.quantize(32, &[0.5; 23 * 32], 32);
    b.build_panels();
    b.panel(2);
}

/// `Kernels::matmul` of the 8-bit family: every output equals `dot_q8` of its row and input
/// row, for one input row and many (prefill), with a bias, in every split of the rows.
#[test]
fn q8_matmul_equals_the_reference_per_output() {
    for (k, dot_q8) in q8_sets() {
        q8_matmul_check(k, dot_q8);
    }
}

fn q8_matmul_check(k: Kernels, dot_q8: DotQ8Ref) {
    let mut rng = Rng::new(12);
    for t in [BlockType::Q5_0, BlockType::Q4_K, BlockType::Q6_K, BlockType::Q8_0, BlockType::Q4_1] {
        let block = q8::act_block(t).unwrap();
        let (ic, oc) = (512, 7);
        let data: Vec<u8> = (0..oc).flat_map(|_| random_row(&mut rng, t, ic)).collect();
        let w = llm_engine::tensor::Tensor::blocks(t, oc, ic, std::borrow::Cow::Owned(data.clone())).unwrap();
        let bias: Vec<f32> = (0..oc).map(|i| i as f32 * 0.25).collect();
        for n in [1, 3, 4, 5, 9, 16, 21] {
            let x = random_x(&mut rng, n * ic);
            let mut out = vec![0.0f32; n * oc];
            k.matmul(&mut out, &x, w.view(), Some(&bias));
            let mut b = Q8Buf::default();
            b.quantize(block, &x, ic);
            let rb = t.row_bytes(ic).unwrap();
            for r in 0..n {
                for o in 0..oc {
                    let want = dot_q8(t, &data[o * rb..(o + 1) * rb], b.row(r)) + bias[o];
                    assert_eq!(out[r * oc + o].to_bits(), want.to_bits(), "{t:?} n {n} row {r} out {o}");
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "activations in blocks")]
fn q8_dot_rejects_activations_of_the_wrong_block() {
    let mut b = Q8Buf::default();
    b.quantize(32, &[0.5; 256], 256);
    let row = vec![0u8; BlockType::Q4_K.row_bytes(256).unwrap()];
    dot_q8(BlockType::Q4_K, &row, b.row(0));
}

#[test]
#[should_panic(expected = "row of")]
fn q8_dot_rejects_a_short_row() {
    let mut b = Q8Buf::default();
    b.quantize(32, &[0.5; 64], 64);
    dot_q8(BlockType::Q8_0, &[0u8; 34], b.row(0));
}
