//! `Q4_0` NEON kernel: the dot product with `Q8_0` activations.

use super::common::{dot32, dot_blocks4, f16, f16x4, ld_i8, ld_u8, neon_dot_entry, nibbles, s8};
use crate::quant::{BlockQ4_0, BlockQ8_0};
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ4_0], ys: &[BlockQ8_0]) -> f32 {
    let eight = vdupq_n_s8(8);
    let dot = |x: &BlockQ4_0, y: &BlockQ8_0| {
        let (lo, hi) = nibbles(ld_u8(&x.qs, 0));
        let (lo, hi) = (vsubq_s8(s8(lo), eight), vsubq_s8(s8(hi), eight));
        // SAFETY: forwarded from the caller.
        unsafe { dot32::<D>(lo, ld_i8(&y.qs, 0), hi, ld_i8(&y.qs, 16)) }
    };
    let scale4 = |s, x: &[BlockQ4_0; 4], y: &[BlockQ8_0; 4]| {
        vmulq_f32(vmulq_f32(s, f16x4(x.each_ref().map(|b| b.d))), f16x4(y.each_ref().map(|b| b.d)))
    };
    dot_blocks4(xs, ys, dot, scale4, |s, x, y| s * f16(x.d) * f16(y.d))
}

neon_dot_entry!(
    /// `Q4_0 · Q8_0` (twin of `BlockQ4_0::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ4_0,
    BlockQ8_0
);
