//! The kernel sets of a CPU architecture with no SIMD folder yet (e.g. aarch64 until
//! `kernels/aarch64/` exists): none beyond the portable set. [`Simd`] has no value, so the
//! dispatch functions below can never be called.

use super::{KernelSet, LANES};
use crate::quant::BlockType;
use crate::quant::q8::{KPanelBlock, PANEL_ROWS, PanelBlock, Q8Row};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::kernels) enum Simd {}

pub(in crate::kernels) static SETS: [KernelSet; 0] = [];

pub(in crate::kernels) fn dot(simd: Simd, _: &[f32], _: &[f32]) -> f32 {
    match simd {}
}

pub(in crate::kernels) fn matmul(simd: Simd, _: &mut [f32], _: &[f32], _: &[f32], _: Option<&[f32]>, _: usize, _: usize) {
    match simd {}
}

pub(in crate::kernels) fn dot_acc(simd: Simd, _: &mut [f32; LANES], _: &[f32], _: &[f32]) {
    match simd {}
}

pub(in crate::kernels) fn has_dot_acc4(simd: Simd) -> bool {
    match simd {}
}

pub(in crate::kernels) fn dot_acc4(simd: Simd, _: &mut [[f32; LANES]; 4], _: &[f32], _: [&[f32]; 4]) {
    match simd {}
}

pub(in crate::kernels) fn axpy(simd: Simd, _: &mut [f32], _: f32, _: &[f32]) {
    match simd {}
}

pub(in crate::kernels) fn axpy4(simd: Simd, _: &mut [f32], _: [f32; 4], _: [&[f32]; 4]) -> Option<()> {
    match simd {}
}

pub(in crate::kernels) fn has_dot_row(simd: Simd, _: BlockType) -> bool {
    match simd {}
}

pub(in crate::kernels) fn dot_row(simd: Simd, _: BlockType, _: &[u8], _: &[f32]) -> Option<f32> {
    match simd {}
}

pub(in crate::kernels) fn dot_rows4(simd: Simd, _: BlockType, _: [&[u8]; 4], _: &[f32]) -> Option<[f32; 4]> {
    match simd {}
}

pub(in crate::kernels) fn dot_q8(simd: Simd, _: BlockType, _: &[u8], _: Q8Row<'_>) -> Option<f32> {
    match simd {}
}

pub(in crate::kernels) fn dot_q8_rows4(simd: Simd, _: BlockType, _: [&[u8]; 4], _: Q8Row<'_>) -> Option<[f32; 4]> {
    match simd {}
}

pub(in crate::kernels) fn dot_q8_x8(simd: Simd, _: BlockType, _: &[u8], _: &[Q8Row<'_>; 8]) -> Option<[f32; 8]> {
    match simd {}
}

pub(in crate::kernels) fn has_dot_q8_panel(simd: Simd, _: BlockType) -> bool {
    match simd {}
}

pub(in crate::kernels) fn dot_q8_panel(simd: Simd, _: BlockType, _: &[u8], _: &[PanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    match simd {}
}

pub(in crate::kernels) fn has_dot_q8_kpanel(simd: Simd, _: BlockType) -> bool {
    match simd {}
}

pub(in crate::kernels) fn dot_q8_kpanel(simd: Simd, _: BlockType, _: &[u8], _: &[KPanelBlock]) -> Option<[f32; PANEL_ROWS]> {
    match simd {}
}
