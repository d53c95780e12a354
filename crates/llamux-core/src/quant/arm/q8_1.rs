//! `Q8_1` NEON kernels: the dot product with `Q8_1` activations and the activation quantizer.

use super::common::{dot32, dot_blocks4, f16, f16x4, ld_i8, neon_dot_entry};
use super::q8_0::quantize_block;
use crate::quant::{BlockQ8_1, F16};
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ8_1], ys: &[BlockQ8_1]) -> f32 {
    let dot = |x: &BlockQ8_1, y: &BlockQ8_1| {
        // SAFETY: forwarded from the caller.
        unsafe { dot32::<D>(ld_i8(&x.qs, 0), ld_i8(&y.qs, 0), ld_i8(&x.qs, 16), ld_i8(&y.qs, 16)) }
    };
    dot_blocks4(
        xs,
        ys,
        dot,
        |s, x, y| vmulq_f32(s, vmulq_f32(f16x4(x.each_ref().map(|b| b.d)), f16x4(y.each_ref().map(|b| b.d)))),
        |s, x, y| s * (f16(x.d) * f16(y.d)),
    )
}

neon_dot_entry!(
    /// `Q8_1 · Q8_1` (twin of `BlockQ8_1::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ8_1,
    BlockQ8_1
);

/// Activation quantizer for `Q8_1` (bit for bit the scalar `from_float_act`).
///
/// # Safety
/// The CPU must support NEON (every aarch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_act_neon(xs: &[f32], ys: &mut [BlockQ8_1]) {
    for (x, y) in xs.as_chunks::<32>().0.iter().zip(ys) {
        let (d, q) = quantize_block(x, &mut y.qs);
        let sum = i32::from(vaddlvq_s8(q[0])) + i32::from(vaddlvq_s8(q[1]));
        y.d = F16::from_f32(d);
        y.s = F16::from_f32(d * sum as f32);
    }
}
