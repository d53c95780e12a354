//! `Q5_1` NEON kernel: the dot product with `Q8_1` activations.

use super::common::{dot32, dot_blocks4, f16, f16x4, ld_i8, ld_u8, neon_dot_entry, nibbles, q5_high_bits, s8};
use crate::quant::{BlockQ5_1, BlockQ8_1};
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ5_1], ys: &[BlockQ8_1]) -> f32 {
    let dot = |x: &BlockQ5_1, y: &BlockQ8_1| {
        let (lo, hi) = nibbles(ld_u8(&x.qs, 0));
        let (hlo, hhi) = q5_high_bits(x.qh);
        let (lo, hi) = (s8(vorrq_u8(lo, hlo)), s8(vorrq_u8(hi, hhi)));
        // SAFETY: forwarded from the caller.
        unsafe { dot32::<D>(lo, ld_i8(&y.qs, 0), hi, ld_i8(&y.qs, 16)) }
    };
    let scale4 = |s, x: &[BlockQ5_1; 4], y: &[BlockQ8_1; 4]| {
        let d = vmulq_f32(f16x4(x.each_ref().map(|b| b.d)), f16x4(y.each_ref().map(|b| b.d)));
        let m = vmulq_f32(f16x4(x.each_ref().map(|b| b.m)), f16x4(y.each_ref().map(|b| b.s)));
        vaddq_f32(vmulq_f32(d, s), m)
    };
    dot_blocks4(xs, ys, dot, scale4, |s, x, y| (f16(x.d) * f16(y.d)) * s + f16(x.m) * f16(y.s))
}

neon_dot_entry!(
    /// `Q5_1 · Q8_1` (twin of `BlockQ5_1::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ5_1,
    BlockQ8_1
);
