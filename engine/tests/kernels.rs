//! Kernels against f64 computations and the SIMD kernels against the scalar references.
mod common;

use llm_engine::Rng;
use llm_engine::kernels::{Family, Kernels, KernelsError, portable, registry};
use llm_engine::layers as kernels_layers;
use llm_engine::tensor::MatRef;

fn randv(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| common::normal(rng) * scale).collect()
}

#[test]
fn gelu_matches_f64_within_1e_6() {
    let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 100.0).collect();
    xs.extend([-1e4, 1e4, 0.0, -0.0]);
    let mut got = xs.clone();
    kernels_layers::gelu(&mut got);
    for (&x, &g) in xs.iter().zip(&got) {
        let x64 = x as f64;
        let r = 0.5 * x64 * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x64 + 0.044715 * x64.powi(3))).tanh());
        assert!((g as f64 - r).abs() <= 1e-6 * (1.0 + r.abs()), "gelu({x}) = {g}, f64 says {r}");
    }
}

#[test]
fn exp_and_tanh_match_f64() {
    for i in -87000..=88000 {
        let x = i as f32 / 1000.0;
        let (e, r) = (kernels_layers::exp(x) as f64, (x as f64).exp());
        assert!((e - r).abs() <= 3e-7 * r, "exp({x}) = {e}, f64 says {r}");
        let t = kernels_layers::tanh(x) as f64;
        assert!((t - (x as f64).tanh()).abs() <= 1e-6, "tanh({x}) = {t}");
    }
    assert!(kernels_layers::exp(-1000.0) < 1e-37 && kernels_layers::exp(-1000.0) >= 0.0);
    assert_eq!(kernels_layers::tanh(50.0), 1.0);
    assert_eq!(kernels_layers::tanh(-50.0), -1.0);
}

#[test]
fn softmax_matches_f64_within_1e_6() {
    let mut rng = Rng::new(1);
    for n in [1, 2, 7, 64, 1000] {
        for scale in [0.1, 3.0, 30.0] {
            let x = randv(&mut rng, n, scale);
            let mut got = x.clone();
            kernels_layers::softmax(&mut got);
            let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let z: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
            for (&v, &g) in x.iter().zip(&got) {
                let r = (v as f64 - m).exp() / z;
                assert!((g as f64 - r).abs() <= 1e-6, "n {n} scale {scale}: {g} vs {r}");
            }
        }
    }
}

#[test]
fn layernorm_matches_f64_within_1e_5() {
    let mut rng = Rng::new(2);
    for c in [8, 64, 768] {
        let x: Vec<f32> = randv(&mut rng, c, 2.0).iter().map(|v| v + 5.0).collect();
        let w = randv(&mut rng, c, 1.0);
        let b = randv(&mut rng, c, 1.0);
        let mut got = vec![0.0; c];
        kernels_layers::layernorm(&mut got, &x, &w, &b, 1e-5);
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
        for i in 0..c {
            let r = (x[i] as f64 - mean) / (var + 1e-5).sqrt() * w[i] as f64 + b[i] as f64;
            assert!((got[i] as f64 - r).abs() <= 1e-5 * (1.0 + r.abs()), "C {c} i {i}: {} vs {r}", got[i]);
        }
    }
}

#[test]
fn dot_matches_f64() {
    let mut rng = Rng::new(3);
    for n in 0..70 {
        let a = randv(&mut rng, n, 1.0);
        let b = randv(&mut rng, n, 1.0);
        let r: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let mag: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
        for d in [portable::dot(&a, &b), portable::dot_fma(&a, &b)] {
            assert!((d as f64 - r).abs() <= 1e-6 * (1.0 + mag), "n {n}: {d} vs {r}");
        }
    }
}

fn avx2() -> Kernels {
    Kernels::detect_family(Family::Fma).expect("no AVX2+FMA on this machine: the SIMD kernels would go untested")
}

fn sse2() -> Kernels {
    let k = Kernels::detect_family(Family::NoFma).unwrap();
    assert_eq!(k.name(), "sse2", "the no-FMA family should run SSE2 on x86_64");
    k
}

#[test]
fn every_kernel_set_this_cpu_has_is_tested() {
    let sets: Vec<(&str, Family)> = Kernels::available().iter().map(|k| (k.name(), k.family())).collect();
    let mut want = vec![
        ("portable", Family::NoFma),
        ("portable-q8", Family::NoFmaQ8),
        ("sse2", Family::NoFma),
        ("ssse3-q8", Family::NoFmaQ8),
        ("avx2", Family::Fma),
        ("avx2-q8", Family::FmaQ8),
    ];
    // AVX-VNNI (Alder Lake, Sapphire Rapids and later; not emulated by QEMU's TCG) adds a
    // faster set of the same 8-bit family.
    let cpu = llm_engine::cpu::CpuFeatures::read();
    let mut best = "avx2-q8";
    if cpu.avx_vnni_usable() {
        want.push(("avx-vnni", Family::FmaQ8));
        best = "avx-vnni";
    }
    // AVX-512 VNNI (Ice Lake, Sapphire Rapids, AMD Zen 4 and later; not emulated by TCG): the
    // same kernels in the EVEX encoding, the only 8-bit VNNI set on Zen 4 (no AVX-VNNI).
    if cpu.avx512_vnni_usable() {
        want.push(("avx512-vnni", Family::FmaQ8));
        best = "avx512-vnni";
    }
    assert_eq!(sets, want, "this test machine should offer every x86_64 set");
    assert_eq!((Kernels::detect().name(), Kernels::detect().family()), (best, Family::FmaQ8));
    assert_eq!(Kernels::portable().family(), Family::NoFma);
}

/// The registry lists every set of this build once; `by_name` finds each usable one, names
/// an unusable one, and refuses an unknown name.
#[test]
fn kernel_sets_are_found_by_their_registry_names() {
    let names: Vec<&str> = registry().map(|s| s.name).collect();
    assert_eq!(names, ["portable", "portable-q8", "sse2", "ssse3-q8", "avx2", "avx2-q8", "avx-vnni", "avx512-vnni"]);
    for k in Kernels::available() {
        assert_eq!(Kernels::by_name(k.name()), Ok(k));
        let set = registry().find(|s| s.name == k.name()).unwrap();
        assert_eq!((set.family, set.description), (k.family(), k.description()));
    }
    if !llm_engine::cpu::CpuFeatures::read().avx_vnni_usable() {
        assert_eq!(Kernels::by_name("avx-vnni"), Err(KernelsError::NotUsable("avx-vnni")));
    }
    if !llm_engine::cpu::CpuFeatures::read().avx512_vnni_usable() {
        assert_eq!(Kernels::by_name("avx512-vnni"), Err(KernelsError::NotUsable("avx512-vnni")));
    }
    assert_eq!(Kernels::by_name("neon"), Err(KernelsError::Unknown));
    assert_eq!(Kernels::by_name("AVX2"), Err(KernelsError::Unknown));
}

#[test]
fn avx2_dot_is_bit_identical_to_the_fma_reference() {
    let k = avx2();
    let mut rng = Rng::new(4);
    for n in (0..100).chain([127, 128, 129, 255, 768, 3072, 3077]) {
        let a = randv(&mut rng, n, 1.0);
        let b = randv(&mut rng, n, 1.0);
        assert_eq!(k.dot(&a, &b).to_bits(), portable::dot_fma(&a, &b).to_bits(), "n = {n}");
    }
}

/// `dot4` (four keys against one query in attention) equals the family's reference dot of
/// each row bit for bit, in every set, whether its four-row kernel runs (lengths that are
/// multiples of 8) or not; signed zeros included.
#[test]
fn dot4_equals_the_reference_dot_of_each_row() {
    let mut rng = Rng::new(6);
    for n in (0..40).chain([63, 64, 65, 128, 256, 257]) {
        let a = randv(&mut rng, n, 1.0);
        let mut rows: Vec<Vec<f32>> = (0..4).map(|_| randv(&mut rng, n, 1.0)).collect();
        // A row of negative zeros (every product -0 or +0) and one that cancels exactly.
        rows[2].iter_mut().for_each(|v| *v = -0.0);
        rows[3] = a.iter().enumerate().map(|(i, v)| if i % 2 == 0 { *v } else { -a[i - 1] }).collect();
        for k in Kernels::available() {
            let got = k.dot4(&a, [&rows[0], &rows[1], &rows[2], &rows[3]]);
            for (i, row) in rows.iter().enumerate() {
                let want = match k.family() {
                    Family::NoFma | Family::NoFmaQ8 => portable::dot(&a, row),
                    Family::Fma | Family::FmaQ8 => portable::dot_fma(&a, row),
                };
                assert_eq!(got[i].to_bits(), want.to_bits(), "{k:?} n {n} row {i}");
            }
        }
    }
    for k in Kernels::available() {
        let x = [1.0f32; 8];
        assert!(std::panic::catch_unwind(|| k.dot4(&x, [&x, &x, &x[..7], &x])).is_err(), "{k:?}: dot4 of unequal lengths");
    }
}

/// `axpy4` (the attention's weighted sum of four values) equals four reference axpys in a
/// row, element by element, in every set, with and without a ragged tail.
#[test]
fn axpy4_equals_four_reference_axpys_in_a_row() {
    let mut rng = Rng::new(7);
    for n in (0..40).chain([63, 64, 65, 256, 259]) {
        let start = randv(&mut rng, n, 1.0);
        let rows: Vec<Vec<f32>> = (0..4).map(|_| randv(&mut rng, n, 1.0)).collect();
        let a = [0.75f32, -1.25, 1e-3, 3.0];
        for k in Kernels::available() {
            let mut got = start.clone();
            k.axpy4(&mut got, a, [&rows[0], &rows[1], &rows[2], &rows[3]]);
            let mut want = start.clone();
            for (&ai, r) in a.iter().zip(&rows) {
                for (o, &x) in want.iter_mut().zip(r) {
                    *o = match k.family() {
                        Family::NoFma | Family::NoFmaQ8 => *o + ai * x,
                        Family::Fma | Family::FmaQ8 => ai.mul_add(x, *o),
                    };
                }
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{k:?} n {n}");
        }
    }
    for k in Kernels::available() {
        let x = [1.0f32; 8];
        assert!(
            std::panic::catch_unwind(|| k.axpy4(&mut [0.0; 8], [1.0; 4], [&x, &x[..7], &x, &x])).is_err(),
            "{k:?}: axpy4 of unequal lengths"
        );
    }
}

#[test]
fn matmul_every_kernel_equals_its_dot_for_every_element() {
    let mut rng = Rng::new(5);
    for &(n, ic, oc) in &[(1, 1, 1), (1, 8, 4), (3, 13, 7), (5, 64, 192), (2, 100, 37), (4, 129, 9), (1, 768, 50)] {
        let x = randv(&mut rng, n * ic, 1.0);
        let w = randv(&mut rng, oc * ic, 0.5);
        let b = randv(&mut rng, oc, 0.5);
        for k in Kernels::available() {
            for bias in [None, Some(&b[..])] {
                let mut out = vec![0.0; n * oc];
                k.matmul(&mut out, &x, MatRef::f32(oc, ic, &w), bias);
                for r in 0..n {
                    for o in 0..oc {
                        let xr = &x[r * ic..(r + 1) * ic];
                        let wr = &w[o * ic..(o + 1) * ic];
                        let d = match k.family() {
                            Family::NoFma | Family::NoFmaQ8 => portable::dot(xr, wr),
                            // f32 matrices multiply f32 activations in the 8-bit family too.
                            Family::Fma | Family::FmaQ8 => portable::dot_fma(xr, wr),
                        };
                        let want = d + bias.map_or(0.0, |b| b[o]);
                        // bias: None adds nothing, so compare d itself (no + 0.0 sign change).
                        let want = if bias.is_none() { d } else { want };
                        assert_eq!(out[r * oc + o].to_bits(), want.to_bits(), "{k:?} n{n} ic{ic} oc{oc} r{r} o{o}");
                    }
                }
            }
        }
    }
}

#[test]
fn sse2_kernels_are_bit_identical_to_the_portable_scalar_loops() {
    let mut rng = Rng::new(8);
    for &(n, ic, oc) in &[(1, 1, 1), (2, 7, 3), (3, 8, 5), (4, 13, 9), (5, 64, 33), (2, 129, 4), (7, 768, 12)] {
        let x = randv(&mut rng, n * ic, 1.0);
        let w = randv(&mut rng, oc * ic, 0.5);
        let b = randv(&mut rng, oc, 0.5);
        for bias in [None, Some(&b[..])] {
            let mut simd = vec![0.0; n * oc];
            let mut portable = vec![0.0; n * oc];
            sse2().matmul(&mut simd, &x, MatRef::f32(oc, ic, &w), bias);
            portable::matmul(&mut portable, &x, &w, bias, ic, oc);
            assert_eq!(
                simd.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                portable.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "n{n} ic{ic} oc{oc}"
            );
        }
        let (a, bb) = (&x[..ic], &w[..ic]);
        assert_eq!(sse2().dot(a, bb).to_bits(), portable::dot(a, bb).to_bits());
    }
}

#[test]
fn axpy_avx2_equals_fused_scalar() {
    let k = avx2();
    let mut rng = Rng::new(6);
    for n in 0..40 {
        let x = randv(&mut rng, n, 1.0);
        let base = randv(&mut rng, n, 1.0);
        let a = common::normal(&mut rng);
        let mut got = base.clone();
        k.axpy(&mut got, a, &x);
        for i in 0..n {
            assert_eq!(got[i].to_bits(), libm::fmaf(a, x[i], base[i]).to_bits());
        }
        let mut plain = base.clone();
        sse2().axpy(&mut plain, a, &x);
        for i in 0..n {
            assert_eq!(plain[i].to_bits(), (base[i] + a * x[i]).to_bits());
        }
    }
}

/// Safe code cannot drive a kernel out of bounds: wrong lengths panic with a clear message
/// (release builds included) instead of reading or writing past a slice.
#[test]
fn kernels_reject_wrong_lengths_in_release_builds() {
    let w = vec![0.5f32; 4 * 8];
    let x = vec![1.0f32; 8];
    for k in Kernels::available() {
        let wrong_out = std::panic::catch_unwind(|| {
            let mut out = vec![0.0; 3]; // one short
            k.matmul(&mut out, &x, MatRef::f32(4, 8, &w), None);
        });
        assert!(wrong_out.is_err(), "{k:?}: short output accepted");
        let wrong_bias = std::panic::catch_unwind(|| {
            let mut out = vec![0.0; 4];
            k.matmul(&mut out, &x, MatRef::f32(4, 8, &w), Some(&[0.0; 3]));
        });
        assert!(wrong_bias.is_err(), "{k:?}: short bias accepted");
        let ragged_x = std::panic::catch_unwind(|| {
            let mut out = vec![0.0; 4];
            k.matmul(&mut out, &x[..7], MatRef::f32(4, 8, &w), None);
        });
        assert!(ragged_x.is_err(), "{k:?}: input not a whole row accepted");
        assert!(std::panic::catch_unwind(|| k.dot(&x, &x[..7])).is_err(), "{k:?}: dot of unequal lengths");
        assert!(std::panic::catch_unwind(|| k.axpy(&mut [0.0; 8], 1.0, &x[..7])).is_err(), "{k:?}: axpy of unequal lengths");
    }
    // The reported case: a weight slice one row short cannot even become a matrix view.
    let short = std::panic::catch_unwind(|| MatRef::f32(4, 8, &w[..3 * 8]));
    assert!(short.is_err(), "a weight slice one row short made a (4, 8) view");
}
