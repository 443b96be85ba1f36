//! Kernels against f64 computations and the SIMD kernels against the scalar references.
mod common;

use llm_engine::kernels::{self, KernelSet};
use llm_engine::Rng;

fn randv(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| common::normal(rng) * scale).collect()
}

#[test]
fn gelu_matches_f64_within_1e_6() {
    let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 100.0).collect();
    xs.extend([-1e4, 1e4, 0.0, -0.0]);
    let mut got = xs.clone();
    kernels::gelu(&mut got);
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
        let (e, r) = (kernels::exp(x) as f64, (x as f64).exp());
        assert!((e - r).abs() <= 3e-7 * r, "exp({x}) = {e}, f64 says {r}");
        let t = kernels::tanh(x) as f64;
        assert!((t - (x as f64).tanh()).abs() <= 1e-6, "tanh({x}) = {t}");
    }
    assert!(kernels::exp(-1000.0) < 1e-37 && kernels::exp(-1000.0) >= 0.0);
    assert_eq!(kernels::tanh(50.0), 1.0);
    assert_eq!(kernels::tanh(-50.0), -1.0);
}

#[test]
fn softmax_matches_f64_within_1e_6() {
    let mut rng = Rng::new(1);
    for n in [1, 2, 7, 64, 1000] {
        for scale in [0.1, 3.0, 30.0] {
            let x = randv(&mut rng, n, scale);
            let mut got = x.clone();
            kernels::softmax(&mut got);
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
        kernels::layernorm(&mut got, &x, &w, &b);
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
        for d in [kernels::dot_scalar(&a, &b), kernels::dot_fma_reference(&a, &b)] {
            assert!((d as f64 - r).abs() <= 1e-6 * (1.0 + mag), "n {n}: {d} vs {r}");
        }
    }
}

fn avx2() -> KernelSet {
    assert!(llm_engine::simd::avx2_fma_usable(), "no AVX2+FMA on this machine: the SIMD kernels would go untested");
    KernelSet::Avx2Fma
}

#[test]
fn avx2_dot_is_bit_identical_to_the_fma_reference() {
    let k = avx2();
    let mut rng = Rng::new(4);
    for n in (0..100).chain([127, 128, 129, 255, 768, 3072, 3077]) {
        let a = randv(&mut rng, n, 1.0);
        let b = randv(&mut rng, n, 1.0);
        assert_eq!(k.dot(&a, &b).to_bits(), kernels::dot_fma_reference(&a, &b).to_bits(), "n = {n}");
    }
}

#[test]
fn matmul_every_kernel_equals_its_dot_for_every_element() {
    let mut rng = Rng::new(5);
    for &(n, ic, oc) in &[(1, 1, 1), (1, 8, 4), (3, 13, 7), (5, 64, 192), (2, 100, 37), (4, 129, 9), (1, 768, 50)] {
        let x = randv(&mut rng, n * ic, 1.0);
        let w = randv(&mut rng, oc * ic, 0.5);
        let b = randv(&mut rng, oc, 0.5);
        for k in [KernelSet::Scalar, avx2()] {
            for bias in [None, Some(&b[..])] {
                let mut out = vec![0.0; n * oc];
                k.matmul(&mut out, &x, &w, bias, ic, oc);
                for r in 0..n {
                    for o in 0..oc {
                        let xr = &x[r * ic..(r + 1) * ic];
                        let wr = &w[o * ic..(o + 1) * ic];
                        let d = match k {
                            KernelSet::Scalar => kernels::dot_scalar(xr, wr),
                            KernelSet::Avx2Fma => kernels::dot_fma_reference(xr, wr),
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
            KernelSet::Scalar.matmul(&mut simd, &x, &w, bias, ic, oc);
            kernels::matmul_scalar(&mut portable, &x, &w, bias, ic, oc);
            assert_eq!(simd.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), portable.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "n{n} ic{ic} oc{oc}");
        }
        let (a, bb) = (&x[..ic], &w[..ic]);
        assert_eq!(KernelSet::Scalar.dot(a, bb).to_bits(), kernels::dot_scalar(a, bb).to_bits());
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
        KernelSet::Scalar.axpy(&mut plain, a, &x);
        for i in 0..n {
            assert_eq!(plain[i].to_bits(), (base[i] + a * x[i]).to_bits());
        }
    }
}
