//! The numeric kernels of the forward pass.
//!
//! Every dot product is computed in one canonical order so that a result never depends on
//! how the work was batched (prefill vs. one token at a time) or split across cores:
//! element `i` is accumulated into lane `i % 8`, the 8 lanes are combined as
//! `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`, and a bias is added last. A ragged tail is
//! accumulated like a zero-padded chunk (0*0 is added to the unused lanes).
//!
//! Two numeric families exist: without FMA (`Scalar`; lane += a*b rounds twice) and with
//! FMA (`Avx2Fma`; lane = fma(a, b, lane) rounds once). The `Scalar` set runs SSE2 code whose
//! results equal the portable loops below. Within a family results are
//! bit-identical on every machine and target; across families they differ in the last bits.
//! The SIMD versions live in `simd.rs` and are checked against the scalar ones here.

pub const LANES: usize = 8;

/// Which implementation the engine runs. Chosen once per session from CPUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelSet {
    /// SSE2 (part of every x86_64 CPU), no FMA: the same results as the portable scalar
    /// reference `dot_scalar`, which the tests check bit for bit.
    Scalar,
    /// 256-bit AVX2 with fused multiply-add.
    Avx2Fma,
}

impl KernelSet {
    pub fn name(self) -> &'static str {
        match self {
            KernelSet::Scalar => "SSE2 (no FMA)",
            KernelSet::Avx2Fma => "AVX2+FMA",
        }
    }

    /// The fastest set this CPU (and OS) can run. On bare metal, AVX must be enabled in
    /// CR4/XCR0 before calling this, or it reports `Scalar`.
    pub fn detect() -> KernelSet {
        if crate::simd::avx2_fma_usable() { KernelSet::Avx2Fma } else { KernelSet::Scalar }
    }

    /// Dot product of two equal-length vectors in the canonical order.
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        match self {
            KernelSet::Scalar => crate::simd::dot_sse2(a, b),
            // SAFETY: Avx2Fma is only constructed after detection (or by tests that detected).
            KernelSet::Avx2Fma => unsafe { crate::simd::dot_avx2(a, b) },
        }
    }

    /// out (N, OC) = x (N, IC) @ w (OC, IC)^T + bias (OC).
    pub fn matmul(self, out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
        let n = x.len() / ic;
        debug_assert_eq!(out.len(), n * oc);
        debug_assert_eq!(w.len(), oc * ic);
        match self {
            KernelSet::Scalar => crate::simd::matmul_sse2(out, x, w, bias, ic, oc),
            // SAFETY: as for `dot`.
            KernelSet::Avx2Fma => unsafe { crate::simd::matmul_avx2(out, x, w, bias, ic, oc) },
        }
    }

    /// out += a * x, elementwise (FMA in the FMA family).
    #[inline]
    pub fn axpy(self, out: &mut [f32], a: f32, x: &[f32]) {
        match self {
            KernelSet::Scalar => {
                for (o, &xi) in out.iter_mut().zip(x) {
                    *o += a * xi;
                }
            }
            // SAFETY: as for `dot`.
            KernelSet::Avx2Fma => unsafe { crate::simd::axpy_avx2(out, a, x) },
        }
    }
}

#[inline]
pub(crate) fn combine_lanes(l: &[f32; LANES]) -> f32 {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// Canonical dot product without FMA.
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = a.len() / LANES;
    for c in 0..chunks {
        let (x, y) = (&a[c * LANES..c * LANES + LANES], &b[c * LANES..c * LANES + LANES]);
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let rest = chunks * LANES;
    if rest < a.len() {
        for l in 0..LANES {
            let (x, y) = if rest + l < a.len() { (a[rest + l], b[rest + l]) } else { (0.0, 0.0) };
            acc[l] += x * y;
        }
    }
    combine_lanes(&acc)
}

/// Canonical dot product with fused multiply-add, computed with `libm::fmaf`: the portable
/// reference the AVX2 kernels are tested against (slow; not used for inference).
pub fn dot_fma_reference(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let padded = a.len().div_ceil(LANES) * LANES;
    for i in 0..padded {
        let (x, y) = if i < a.len() { (a[i], b[i]) } else { (0.0, 0.0) };
        acc[i % LANES] = libm::fmaf(x, y, acc[i % LANES]);
    }
    combine_lanes(&acc)
}

/// The portable reference for the SSE2 matmul (tests compare them bit for bit).
pub fn matmul_scalar(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, ic: usize, oc: usize) {
    let n = x.len() / ic;
    let add_bias = |o: usize, v: f32| match bias {
        Some(b) => v + b[o],
        None => v,
    };
    let mut r = 0;
    // Two tokens at a time share each weight row (prefill); per element the order is
    // exactly `dot_scalar`'s, so the result equals decoding one token at a time.
    while r + 2 <= n {
        let (xa, xb) = (&x[r * ic..(r + 1) * ic], &x[(r + 1) * ic..(r + 2) * ic]);
        for o in 0..oc {
            let (da, db) = dot2_scalar(xa, xb, &w[o * ic..(o + 1) * ic]);
            out[r * oc + o] = add_bias(o, da);
            out[(r + 1) * oc + o] = add_bias(o, db);
        }
        r += 2;
    }
    if r < n {
        let xr = &x[r * ic..(r + 1) * ic];
        for o in 0..oc {
            out[r * oc + o] = add_bias(o, dot_scalar(xr, &w[o * ic..(o + 1) * ic]));
        }
    }
}

/// Two canonical dot products against the same weight row, in one pass over it.
fn dot2_scalar(a: &[f32], b: &[f32], w: &[f32]) -> (f32, f32) {
    let mut acc_a = [0.0f32; LANES];
    let mut acc_b = [0.0f32; LANES];
    let chunks = w.len() / LANES;
    for c in 0..chunks {
        let wc = &w[c * LANES..c * LANES + LANES];
        let (ac, bc) = (&a[c * LANES..c * LANES + LANES], &b[c * LANES..c * LANES + LANES]);
        for l in 0..LANES {
            acc_a[l] += ac[l] * wc[l];
            acc_b[l] += bc[l] * wc[l];
        }
    }
    let rest = chunks * LANES;
    if rest < w.len() {
        for l in 0..LANES {
            let i = rest + l;
            let (x, y, z) = if i < w.len() { (a[i], b[i], w[i]) } else { (0.0, 0.0, 0.0) };
            acc_a[l] += x * z;
            acc_b[l] += y * z;
        }
    }
    (combine_lanes(&acc_a), combine_lanes(&acc_b))
}

/// out (C) = LayerNorm(x (C)) * weight + bias, with llm.c's epsilon 1e-5.
pub fn layernorm(out: &mut [f32], x: &[f32], weight: &[f32], bias: &[f32]) {
    let c = x.len() as f32;
    let mut sum = 0.0f32;
    for &v in x {
        sum += v;
    }
    let mean = sum / c;
    let mut var = 0.0f32;
    for &v in x {
        let d = v - mean;
        var += d * d;
    }
    let rstd = 1.0 / libm::sqrtf(var / c + 1e-5);
    for i in 0..x.len() {
        out[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
    }
}

pub const GELU_SCALE: f32 = 0.797_884_6; // sqrt(2 / pi)

/// e^x in plain f32 arithmetic, so it vectorises and gives the same bits on every target:
/// x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two parts for an exact reduction), e^r by
/// its degree-6 Taylor polynomial, 2^n through the exponent bits. Relative error below 3e-7
/// over [-87, 88] (tested against f64); inputs outside are clamped (results ~1e-38 / ~1e38).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5 * 2^23 trick (no libm call, no SSE4.1 needed).
    let n = (x * core::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_67 + r * (0.008_333_334 + r * 0.001_388_889)))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// tanh through `exp`: (e^2x - 1) / (e^2x + 1); absolute error below 1e-6.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let x = x.clamp(-9.0, 9.0);
    let e = exp(2.0 * x);
    (e - 1.0) / (e + 1.0)
}

/// GELU, tanh approximation (as GPT-2 and llm.c), in place.
pub fn gelu(x: &mut [f32]) {
    for v in x.iter_mut() {
        let u = *v;
        let cube = 0.044715 * u * u * u;
        *v = 0.5 * u * (1.0 + tanh(GELU_SCALE * (u + cube)));
    }
}

/// Softmax in place over the whole slice (max-subtracted for stability).
pub fn softmax(x: &mut [f32]) {
    let mut max = f32::NEG_INFINITY;
    for &v in x.iter() {
        if v > max {
            max = v;
        }
    }
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// x += y, elementwise (the residual connection).
pub fn residual_add(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
