//! Every layer's backward pass and the whole model's gradient against central finite
//! differences of the independent f64 reference in llm-testkit.
//!
//! Tolerance: the analytic gradients are computed in f32 and the differences in f64 (step
//! 1e-5, truncation error ~1e-10), so the only error is f32 rounding in the backward pass,
//! ~1e-6 relative per operation; we allow 1e-3 relative plus 1e-5 absolute. A wrong
//! formula (a missing term, a transposed index) gives errors of order 1.

use llm_testkit::*;
use llm_trainer::gpt::{self, Activations};

const H: f64 = 1e-5;

/// Central differences of f at x.
fn numeric_grad(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + H;
            let up = f(&x);
            x[i] = orig - H;
            let down = f(&x);
            x[i] = orig;
            (up - down) / (2.0 * H)
        })
        .collect()
}

fn assert_close(what: &str, analytic: &[f32], numeric: &[f64]) {
    assert_eq!(analytic.len(), numeric.len(), "{what}: length");
    let mut worst = (0.0, 0);
    for (i, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
        let err = (a as f64 - n).abs() / (1e-5 + 1e-3 * n.abs());
        if err > worst.0 {
            worst = (err, i);
        }
    }
    let i = worst.1;
    assert!(worst.0 <= 1.0, "{what}: element {i}: analytic {} vs numeric {}", analytic[i], numeric[i]);
}

fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn dot(a: &[f64], r: &[f32]) -> f64 {
    a.iter().zip(r).map(|(x, y)| x * *y as f64).sum()
}

#[test]
fn layernorm_backward_matches_finite_differences() {
    let (n, c) = (3, 8);
    let x = random_vec(n * c, 1.5, 1);
    let w = random_vec(c, 1.0, 2);
    let b = random_vec(c, 1.0, 3);
    let r = random_vec(n * c, 1.0, 4);
    let (mut out, mut mean, mut rstd) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
    gpt::layernorm_forward(&mut out, &mut mean, &mut rstd, &x, &w, &b, c);
    let (mut dx, mut dw, mut db) = (vec![0.0; n * c], vec![0.0; c], vec![0.0; c]);
    gpt::layernorm_backward(&mut dx, &mut dw, &mut db, &r, &x, &w, &mean, &rstd, c);
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        x.chunks(c).enumerate().map(|(i, row)| dot(&ln(row, w, b), &r[i * c..(i + 1) * c])).sum()
    };
    let (x64, w64, b64) = (f64s(&x), f64s(&w), f64s(&b));
    assert_close("layernorm dx", &dx, &numeric_grad(&x64, |x| loss(x, &w64, &b64)));
    assert_close("layernorm dw", &dw, &numeric_grad(&w64, |w| loss(&x64, w, &b64)));
    assert_close("layernorm db", &db, &numeric_grad(&b64, |b| loss(&x64, &w64, b)));
}

#[test]
fn matmul_backward_matches_finite_differences() {
    let (n, ic, oc) = (5, 7, 6);
    let x = random_vec(n * ic, 1.0, 5);
    let w = random_vec(oc * ic, 1.0, 6);
    let b = random_vec(oc, 1.0, 7);
    let r = random_vec(n * oc, 1.0, 8);
    let mut out = vec![0.0; n * oc];
    gpt::matmul_forward(&mut out, &x, &w, Some(&b), ic, oc);
    let (mut dx, mut dw, mut db) = (vec![0.0; n * ic], vec![0.0; oc * ic], vec![0.0; oc]);
    gpt::matmul_backward(&mut dx, &mut dw, Some(&mut db), &r, &x, &w, ic, oc);
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        x.chunks(ic).enumerate().map(|(i, row)| dot(&linear(row, w, Some(b), oc), &r[i * oc..(i + 1) * oc])).sum()
    };
    let (x64, w64, b64) = (f64s(&x), f64s(&w), f64s(&b));
    // The forward too, against the naive loop.
    let fwd: Vec<f64> = x64.chunks(ic).flat_map(|row| linear(row, &w64, Some(&b64), oc)).collect();
    assert_close("matmul forward", &out, &fwd);
    assert_close("matmul dx", &dx, &numeric_grad(&x64, |x| loss(x, &w64, &b64)));
    assert_close("matmul dw", &dw, &numeric_grad(&w64, |w| loss(&x64, w, &b64)));
    assert_close("matmul db", &db, &numeric_grad(&b64, |b| loss(&x64, &w64, b)));
}

#[test]
fn attention_backward_matches_finite_differences() {
    let (b, t, c, nh) = (2, 5, 8, 2);
    let qkv = random_vec(b * t * 3 * c, 1.0, 9);
    let r = random_vec(b * t * c, 1.0, 10);
    let mut out = vec![0.0; b * t * c];
    let mut att = vec![0.0; b * nh * t * t];
    gpt::attention_forward(&mut out, &mut att, &qkv, t, c, nh);
    let mut dqkv = vec![0.0; b * t * 3 * c];
    gpt::attention_backward(&mut dqkv, &r, &qkv, &att, b, t, c, nh);
    let loss = |q: &[f64]| -> f64 {
        let mut total = 0.0;
        for bi in 0..b {
            let rows: Vec<Vec<f64>> = (0..t).map(|ti| q[(bi * t + ti) * 3 * c..(bi * t + ti + 1) * 3 * c].to_vec()).collect();
            for (ti, y) in attention(&rows, c, nh).iter().enumerate() {
                total += dot(y, &r[(bi * t + ti) * c..(bi * t + ti + 1) * c]);
            }
        }
        total
    };
    let q64 = f64s(&qkv);
    let fwd: Vec<f64> = (0..b)
        .flat_map(|bi| {
            attention(&(0..t).map(|ti| q64[(bi * t + ti) * 3 * c..(bi * t + ti + 1) * 3 * c].to_vec()).collect::<Vec<_>>(), c, nh).concat()
        })
        .collect();
    assert_close("attention forward", &out, &fwd);
    assert_close("attention dqkv", &dqkv, &numeric_grad(&q64, loss));
}

#[test]
fn gelu_backward_matches_finite_differences() {
    let x = random_vec(40, 2.0, 11);
    let r = random_vec(40, 1.0, 12);
    let mut out = vec![0.0; 40];
    gpt::gelu_forward(&mut out, &x);
    assert_close("gelu forward", &out, &x.iter().map(|&v| gelu(v as f64)).collect::<Vec<_>>());
    let mut dx = vec![0.0; 40];
    gpt::gelu_backward(&mut dx, &x, &r);
    assert_close("gelu dx", &dx, &numeric_grad(&f64s(&x), |x| x.iter().zip(&r).map(|(v, r)| gelu(*v) * *r as f64).sum()));
}

#[test]
fn softmax_crossentropy_backward_matches_finite_differences() {
    let (n, v) = (4, 7);
    let logits = random_vec(n * v, 2.0, 13);
    let targets = vec![0u32, 6, 3, 3];
    let mut probs = logits.clone();
    let mut losses = vec![0.0; n];
    gpt::softmax_crossentropy_forward(&mut probs, &mut losses, &targets, v);
    gpt::softmax_crossentropy_backward(&mut probs, &targets, v);
    let loss = |l: &[f64]| -> f64 {
        l.chunks(v)
            .zip(&targets)
            .map(|(row, &y)| {
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln() - row[y as usize]
            })
            .sum::<f64>()
            / n as f64
    };
    assert_close("cross-entropy dlogits", &probs, &numeric_grad(&f64s(&logits), loss));
}

#[test]
fn encoder_backward_matches_finite_differences() {
    let (vp, maxt, c, t) = (5, 4, 3, 4);
    let wte = random_vec(vp * c, 1.0, 14);
    let wpe = random_vec(maxt * c, 1.0, 15);
    let tokens = vec![1u32, 4, 1, 0, 2, 2, 2, 3]; // B = 2, repeated tokens on purpose
    let r = random_vec(tokens.len() * c, 1.0, 16);
    let mut out = vec![0.0; tokens.len() * c];
    gpt::encoder_forward(&mut out, &tokens, &wte, &wpe, t, c);
    let (mut dwte, mut dwpe) = (vec![0.0; vp * c], vec![0.0; maxt * c]);
    gpt::encoder_backward(&mut dwte, &mut dwpe, &r, &tokens, t, c);
    let loss = |wte: &[f64], wpe: &[f64]| -> f64 {
        let mut s = 0.0;
        for (row, &tok) in tokens.iter().enumerate() {
            for i in 0..c {
                s += (wte[tok as usize * c + i] + wpe[(row % t) * c + i]) * r[row * c + i] as f64;
            }
        }
        s
    };
    let (e, p) = (f64s(&wte), f64s(&wpe));
    assert_close("encoder dwte", &dwte, &numeric_grad(&e, |e| loss(e, &p)));
    assert_close("encoder dwpe", &dwpe, &numeric_grad(&p, |p| loss(&e, p)));
}

#[test]
fn whole_model_gradient_matches_finite_differences_for_every_parameter() {
    // Padded vocabulary, several heads and layers: every tensor's gradient is checked.
    let cfg = config(2, 2, 8, 4, 11, 16);
    let (b, t) = (2, 4);
    let params = random_params(&cfg, 21, 0.3);
    let tokens = random_tokens(b * t, 11, 22);
    let targets = random_tokens(b * t, 11, 23);
    let mut acts = Activations::new(&cfg, b, t);
    let loss = gpt::forward(&cfg, &params, &mut acts, &tokens, &targets);
    let mut grads = vec![0.0f32; params.len()];
    gpt::backward(&cfg, &params, &mut grads, &mut acts, &tokens, &targets);
    let p64 = f64s(&params);
    let ref_loss = reference_loss(&cfg, &p64, &tokens, &targets, t);
    assert!((loss as f64 - ref_loss).abs() < 1e-5, "loss {loss} vs reference {ref_loss}");
    let numeric = numeric_grad(&p64, |p| reference_loss(&cfg, p, &tokens, &targets, t));
    let sizes = cfg.tensor_sizes();
    let mut at = 0;
    for (name, n) in llm_engine::checkpoint::TENSOR_NAMES.iter().zip(sizes) {
        assert_close(&format!("d{name}"), &grads[at..at + n], &numeric[at..at + n]);
        at += n;
    }
    // The check has teeth: a gradient with one layer's contribution dropped fails it.
    let mut broken = grads.clone();
    let qkv_at = cfg.tensor_offsets()[4];
    for g in &mut broken[qkv_at..qkv_at + 3 * 8 * 8] {
        *g = 0.0;
    }
    let r = std::panic::catch_unwind(|| assert_close("broken", &broken[qkv_at..qkv_at + 192], &numeric[qkv_at..qkv_at + 192]));
    assert!(r.is_err());
}
