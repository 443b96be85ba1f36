//! 8-bit activations: the numerics of [`Family::FmaQ8`](crate::kernels::Family::FmaQ8) and
//! [`Family::NoFmaQ8`](crate::kernels::Family::NoFmaQ8).
//!
//! llama.cpp's CPU backend multiplies a quantized weight row by a vector that it quantized to
//! 8 bits too, so that a block's dot product is a sum of integer products (`maddubs`/`madd` on
//! x86) scaled once by both block scales. This module defines that computation for this
//! engine, exactly, so every kernel has a bit-for-bit target and the results never depend on
//! the instruction set, the batch or the thread count:
//!
//! **Activations.** A row `x` is cut into blocks of 32 values (paired with the 32-weight
//! types Q8_0, Q4_0, Q5_0, Q4_1, Q5_1) or 256 values (k-quants Q4_K, Q5_K, Q6_K). Per block:
//! `amax = max |x_i|`, scale `dx = amax / 127`, codes `q_i = rint(x_i * (127 / amax))` (round
//! half to even; 0 when `amax` is 0), all in f32; plus, per 32 codes, their integer sum (for
//! the k-quant minimums). See [`Q8Buf::quantize`].
//!
//! **Dot product.** Weight `i` of a 32-weight group goes into integer lane `(i % 32) / 4` (the
//! lanes of `maddubs` + `madd` over 32 bytes). Per weight block, each lane holds an exact i32
//! sum `S[l]` (its bounds keep it below 2^24, so converting it to f32 is exact), then
//! `acc[l] = fma(dw * dx, S[l], acc[l])` with `dw * dx` rounded to f32:
//! - Q8_0 / Q4_0 / Q5_0: `S[l] = sum w_i * q_i` over the 4 weights of lane l of the block, with
//!   the signed weight codes (`q`, `q - 8`, `q - 16`); `dw` is the block's `d`.
//! - Q4_K / Q5_K: `S[l] = sum_j sc_j * sum w_i * q_i` over the 8 sub-blocks j (unsigned codes
//!   0..15 / 0..31), `dw = d`; the minimums go into one more accumulator,
//!   `m_acc = fma(dmin * dx, M, m_acc)` with `M = sum_j m_j * (sum of sub-block j's codes)`,
//!   and the result is `combine(acc) - m_acc`.
//! - Q6_K: `S[l] = sum_k sc_k * sum (w_i - 32) * q_i` over the 16 groups of 16 (signed i8
//!   scales), `dw = d`.
//! - Q4_1 / Q5_1 (`w = d * c + m`, unsigned codes c 0..15 / 0..31): `S[l] = sum c_i * q_i`,
//!   `dw = d`; the offsets go into the minimum accumulator as the k-quants' minimums do, with
//!   `dmin = -m` and `M` = the block's sum of activation codes, and the result is
//!   `combine(acc) - m_acc` (= `combine(acc) + fma(m * dx, M, ..)`: negation is exact).
//!
//! The lanes are combined as `kernels::portable::combine_lanes`. `kernels::portable::dot_q8` is the
//! portable reference of the dot product; `kernels/x86_64/avx2_q8.rs` computes the same bits
//! with AVX2.
//!
//! **Without FMA** ([`Family::NoFmaQ8`](crate::kernels::Family::NoFmaQ8)): the same
//! activations and the same exact integer sums, but per weight block the lanes are summed to
//! one integer `S = sum_l S[l]` (|S| < 2^28), and one f32 accumulator takes
//! `acc = acc + (dw * dx) * (S as f32)`, each of the three operations rounded to f32 (the
//! conversion too, where |S| >= 2^24), blocks in order; Q4_K / Q5_K keep their minimums in a
//! second accumulator, `m_acc = m_acc + (dmin * dx) * (M as f32)`, and return `acc - m_acc`
//! (Q4_1 / Q5_1 too, with `dmin = -m`).
//! Four f32 operations per block and no fused step: cheap where f32 arithmetic is dear (QEMU's
//! emulation runs each one in a software float library) or has no FMA (CPUs before AVX2).
//! `kernels::portable::dot_q8_nofma` is its reference; `kernels/x86_64/ssse3_q8.rs` computes
//! the same bits with SSSE3.
//!
//! (Bounds, per lane and block: Q8_0 4*128*127; Q4_K 32*15*127*63 = 3.8M; Q5_K 7.9M; Q6_K
//! 32*32*127*128 = 16.6M < 2^24 = 16.8M. The activation codes are within -127..127, so the
//! 16-bit pair sums of `maddubs` never saturate: |w| <= 128 gives 2*128*127 = 32512.)

use super::BlockType;
use super::kquants::QK_K;
use alloc::vec::Vec;

/// Codes per activation sum, and per 32-weight block.
pub const SUB: usize = 32;

/// The activation block a weight type is paired with in this family: 32 for Q8_0, Q4_0,
/// Q5_0, Q4_1 and Q5_1, 256 for Q4_K, Q5_K and Q6_K; None for the types whose rows keep the
/// f32 dot product of their family (F32, F16, BF16, IQ4_NL). A column of the type table.
pub fn act_block(t: BlockType) -> Option<usize> {
    t.info().act_block
}

/// One row of activations quantized to 8 bits (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Q8Row<'a> {
    block: usize,
    codes: &'a [i8],
    scales: &'a [f32],
    sums: &'a [i32],
}

impl<'a> Q8Row<'a> {
    /// Checks that the parts fit together: `codes` whole blocks of `block` (32 or 256), one
    /// scale per block, one sum per 32 codes. Panics otherwise.
    pub fn new(block: usize, codes: &'a [i8], scales: &'a [f32], sums: &'a [i32]) -> Q8Row<'a> {
        assert!(block == SUB || block == QK_K, "Q8Row: block of {block} (32 or 256)");
        assert!(codes.len().is_multiple_of(block), "Q8Row: {} codes are not whole blocks of {block}", codes.len());
        assert_eq!(scales.len(), codes.len() / block, "Q8Row: one scale per block");
        assert_eq!(sums.len(), codes.len() / SUB, "Q8Row: one sum per 32 codes");
        Q8Row { block, codes, scales, sums }
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn block(&self) -> usize {
        self.block
    }

    pub fn codes(&self) -> &'a [i8] {
        self.codes
    }

    pub fn scales(&self) -> &'a [f32] {
        self.scales
    }

    pub fn sums(&self) -> &'a [i32] {
        self.sums
    }

    /// The value the codes stand for: `codes[i] * scale` (for tests and errors).
    pub fn dequantize(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.len(), "Q8Row::dequantize: output length");
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.codes[i] as f32 * self.scales[i / self.block];
        }
    }
}

/// Rows per [`PanelBlock`]: the prefill kernels' group of inputs.
pub const PANEL_ROWS: usize = 8;

/// One 32-code block of [`PANEL_ROWS`] activation rows, interleaved for the prefill kernels
/// (a kernel walks one pointer through a group's blocks instead of eight rows' codes, scales
/// and sums, and takes the eight scales as one vector). The same values as the rows' own
/// [`Q8Row`]s, plus each 4-code lane's sum times -128: a kernel that multiplies the signed
/// weights offset to unsigned (`w + 128`) by the signed codes gets `sum w * q` back exactly by
/// starting its integer lane there (`sum (w + 128) * q - 128 * sum q`).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
pub struct PanelBlock {
    /// `codes[r]`: row r's 32 codes of this block.
    pub codes: [[i8; SUB]; PANEL_ROWS],
    /// `neg_lane_sums[r][l]`: -128 * (codes 4l..4l+3 of row r summed).
    pub neg_lane_sums: [[i32; 8]; PANEL_ROWS],
    /// Row r's scale of this block.
    pub scales: [f32; PANEL_ROWS],
    /// Row r's sum of this block's codes.
    pub sums: [i32; PANEL_ROWS],
}

impl PanelBlock {
    const ZERO: PanelBlock =
        PanelBlock { codes: [[0; SUB]; PANEL_ROWS], neg_lane_sums: [[0; 8]; PANEL_ROWS], scales: [0.0; PANEL_ROWS], sums: [0; PANEL_ROWS] };
}

/// One 256-code block of [`PANEL_ROWS`] activation rows, interleaved for the k-quant prefill
/// kernels (as [`PanelBlock`] for the 32-weight types): the same codes, scales and sums as the
/// rows' [`Q8Row`]s, the sums of each pair of 32-code sub-blocks side by side as 16-bit
/// integers (|sum| <= 32 * 127), so that one `madd` gives eight rows' share of the minimums.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct KPanelBlock {
    /// `codes[j][r]`: row r's codes `32j..32j+32` of this block (sub-block j).
    pub codes: [[[i8; SUB]; PANEL_ROWS]; QK_K / SUB],
    /// `sum_pairs[k][r]`: row r's sums of sub-blocks 2k and 2k + 1.
    pub sum_pairs: [[[i16; 2]; PANEL_ROWS]; QK_K / SUB / 2],
    /// Row r's scale of this block.
    pub scales: [f32; PANEL_ROWS],
}

impl KPanelBlock {
    const ZERO: KPanelBlock = KPanelBlock {
        codes: [[[0; SUB]; PANEL_ROWS]; QK_K / SUB],
        sum_pairs: [[[0; 2]; PANEL_ROWS]; QK_K / SUB / 2],
        scales: [0.0; PANEL_ROWS],
    };
}

/// Rows of quantized activations, with their buffers (reused: quantizing rows that fit the
/// capacity allocates nothing).
#[derive(Clone, Debug, Default)]
pub struct Q8Buf {
    block: usize,
    cols: usize,
    /// Blocks per row (`cols / block`), kept so that `row` needs no division.
    row_blocks: usize,
    rows: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    sums: Vec<i32>,
    /// Blocks of 32: every whole group of [`PANEL_ROWS`] rows (rows 8g..8g+8) interleaved,
    /// group g's blocks at `g * row_blocks..`; empty for blocks of 256.
    panels: Vec<PanelBlock>,
    /// The same for blocks of 256; empty for blocks of 32.
    kpanels: Vec<KPanelBlock>,
}

impl Q8Buf {
    /// Buffers for up to `values` activations (any block size).
    pub fn with_capacity(values: usize) -> Q8Buf {
        Q8Buf {
            block: SUB,
            cols: 0,
            row_blocks: 0,
            rows: 0,
            codes: Vec::with_capacity(values),
            scales: Vec::with_capacity(values / SUB),
            sums: Vec::with_capacity(values / SUB),
            panels: Vec::with_capacity(values / (SUB * PANEL_ROWS)),
            kpanels: Vec::with_capacity(values / (QK_K * PANEL_ROWS)),
        }
    }

    /// Bytes of the buffers for `values` activations (for memory estimates).
    pub(crate) fn bytes_for(values: usize) -> usize {
        let panels = core::mem::size_of::<PanelBlock>() * (values / (SUB * PANEL_ROWS))
            + core::mem::size_of::<KPanelBlock>() * (values / (QK_K * PANEL_ROWS));
        values + 8 * (values / SUB) + panels
    }

    /// Quantizes `x` as rows of `cols` values in blocks of `block` (32 or 256); `cols` must be
    /// a multiple of `block` and `x` whole rows (panics otherwise).
    pub fn quantize(&mut self, block: usize, x: &[f32], cols: usize) {
        assert!(block == SUB || block == QK_K, "Q8Buf::quantize: block of {block} (32 or 256)");
        assert!(cols > 0 && cols.is_multiple_of(block), "Q8Buf::quantize: rows of {cols} are not whole blocks of {block}");
        assert!(x.len().is_multiple_of(cols), "Q8Buf::quantize: {} values are not rows of {cols}", x.len());
        let n = x.len();
        self.block = block;
        self.cols = cols;
        self.row_blocks = cols / block;
        self.rows = n / cols;
        self.codes.resize(n, 0);
        self.scales.resize(n / block, 0.0);
        self.sums.resize(n / SUB, 0);
        for ((xb, cb), s) in x.chunks_exact(block).zip(self.codes.chunks_exact_mut(block)).zip(self.scales.iter_mut()) {
            *s = quantize_block(xb, cb);
        }
        for (cb, s) in self.codes.chunks_exact(SUB).zip(self.sums.iter_mut()) {
            *s = cb.iter().map(|&c| c as i32).sum();
        }
        self.panels.clear();
        self.kpanels.clear();
    }

    /// Interleaves every whole group of [`PANEL_ROWS`] quantized rows into panels
    /// ([`Q8Buf::panel`] / [`Q8Buf::kpanel`]), for kernel sets that have panel kernels
    /// (`Kernels::quantize_for` calls it; the next `quantize` drops them).
    pub fn build_panels(&mut self) {
        let (block, cols) = (self.block, self.cols);
        if block == QK_K {
            let groups = self.rows / PANEL_ROWS;
            self.kpanels.resize(groups * self.row_blocks, KPanelBlock::ZERO);
            for (g, group) in self.kpanels.chunks_exact_mut(self.row_blocks.max(1)).enumerate() {
                for (bi, kb) in group.iter_mut().enumerate() {
                    for r in 0..PANEL_ROWS {
                        let row = g * PANEL_ROWS + r;
                        for j in 0..QK_K / SUB {
                            let at = row * cols + bi * QK_K + j * SUB;
                            kb.codes[j][r].copy_from_slice(&self.codes[at..at + SUB]);
                            // |sum| <= 32 * 127: exact in 16 bits.
                            kb.sum_pairs[j / 2][r][j % 2] = self.sums[at / SUB] as i16;
                        }
                        kb.scales[r] = self.scales[row * self.row_blocks + bi];
                    }
                }
            }
        }
        if block == SUB {
            let groups = self.rows / PANEL_ROWS;
            self.panels.resize(groups * self.row_blocks, PanelBlock::ZERO);
            for (g, group) in self.panels.chunks_exact_mut(self.row_blocks.max(1)).enumerate() {
                for (bi, pb) in group.iter_mut().enumerate() {
                    for r in 0..PANEL_ROWS {
                        let (row, at) = (g * PANEL_ROWS + r, bi * SUB);
                        let codes = &self.codes[row * cols + at..row * cols + at + SUB];
                        pb.codes[r].copy_from_slice(codes);
                        for (l, lane) in codes.chunks_exact(4).enumerate() {
                            pb.neg_lane_sums[r][l] = -128 * lane.iter().map(|&c| c as i32).sum::<i32>();
                        }
                        pb.scales[r] = self.scales[row * self.row_blocks + bi];
                        pb.sums[r] = self.sums[row * self.row_blocks + bi];
                    }
                }
            }
        }
    }

    /// The whole groups of [`PANEL_ROWS`] rows held as panels ([`Q8Buf::panel`] for blocks of
    /// 32, [`Q8Buf::kpanel`] for blocks of 256; 0 until [`Q8Buf::build_panels`]).
    pub fn panel_groups(&self) -> usize {
        let built = if self.block == SUB { self.panels.len() } else { self.kpanels.len() };
        if built == 0 { 0 } else { self.rows / PANEL_ROWS }
    }

    /// Rows `8g..8g+8` interleaved, one [`KPanelBlock`] per 256-code block (panics unless
    /// the blocks are of 256 and `g < panel_groups()`).
    pub fn kpanel(&self, g: usize) -> &[KPanelBlock] {
        assert!(self.block == QK_K, "Q8Buf::kpanel: activations in blocks of {}", self.block);
        assert!(g < self.panel_groups(), "Q8Buf::kpanel: group {g} of {}", self.panel_groups());
        &self.kpanels[g * self.row_blocks..(g + 1) * self.row_blocks]
    }

    /// Rows `8g..8g+8` interleaved, one [`PanelBlock`] per 32-code block (panics unless
    /// the blocks are of 32 and `g < panel_groups()`).
    pub fn panel(&self, g: usize) -> &[PanelBlock] {
        assert!(self.block == SUB, "Q8Buf::panel: activations in blocks of {}", self.block);
        assert!(g < self.panel_groups(), "Q8Buf::panel: group {g} of {}", self.panel_groups());
        &self.panels[g * self.row_blocks..(g + 1) * self.row_blocks]
    }

    /// Rows held (0 before the first `quantize`).
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn block(&self) -> usize {
        self.block
    }

    /// Row `r` (panics if out of range).
    pub fn row(&self, r: usize) -> Q8Row<'_> {
        assert!(r < self.rows(), "Q8Buf::row: row {r} of {}", self.rows());
        let (c, nb, ns) = (self.cols, self.row_blocks, self.cols / SUB);
        // `quantize` made whole rows of whole blocks: the parts fit (what `Q8Row::new` checks).
        Q8Row {
            block: self.block,
            codes: &self.codes[r * c..(r + 1) * c],
            scales: &self.scales[r * nb..(r + 1) * nb],
            sums: &self.sums[r * ns..(r + 1) * ns],
        }
    }
}

/// One block: returns the scale `amax / 127` and writes `rint(x * 127 / amax)`.
fn quantize_block(x: &[f32], codes: &mut [i8]) -> f32 {
    // The largest |x| (NaNs skipped), as eight running maxima (one vector `max` per 8 values
    // instead of a chain of scalar ones) then their maximum: the same value, the maximum
    // being exact and order-free.
    let max = |m: f32, a: f32| if a > m { a } else { m };
    let (chunks, rest) = x.as_chunks::<8>();
    let mut m8 = [0.0f32; 8];
    for c in chunks {
        for (m, &v) in m8.iter_mut().zip(c) {
            *m = max(*m, libm::fabsf(v));
        }
    }
    let amax = rest.iter().fold(m8.into_iter().fold(0.0f32, max), |m, &v| max(m, libm::fabsf(v)));
    let id = if amax > 0.0 { 127.0 / amax } else { 0.0 };
    for (c, &v) in codes.iter_mut().zip(x) {
        // |v * id| <= 127 (up to one rounding), so the code is within -127..=127 and the
        // rounding trick is exact; `as` saturates (a NaN input becomes 0).
        *c = round_half_even(v * id) as i8;
    }
    amax / 127.0
}

/// `v` rounded to the nearest integer, ties to even (as `rintf`), for |v| <= 2^22 (and NaN):
/// adding and subtracting 1.5 * 2^23 leaves no fraction bits, and the addition rounds to
/// nearest even.
#[inline]
fn round_half_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    (v + MAGIC) - MAGIC
}
