//! `Q8_0` NEON kernels: the dot product with `Q8_0` activations and the activation quantizer.

use super::common::{dot32, dot_blocks4, f16, f16x4, ld_i8, neon_dot_entry};
use crate::quant::{BlockQ8_0, F16};
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ8_0], ys: &[BlockQ8_0]) -> f32 {
    let dot = |x: &BlockQ8_0, y: &BlockQ8_0| {
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
    /// `Q8_0 · Q8_0` (twin of `BlockQ8_0::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ8_0,
    BlockQ8_0
);

/// Loads 32 floats.
#[inline]
#[target_feature(enable = "neon")]
fn ld_f32x32(x: &[f32; 32]) -> [float32x4_t; 8] {
    // SAFETY: `x` has 32 floats; lane group `i` reads `4 i .. 4 i + 4`.
    core::array::from_fn(|i| unsafe { vld1q_f32(x.as_ptr().add(4 * i)) })
}

/// `max |x|` ignoring NaNs, as `fold(0.0, |a, v| a.max(v.abs()))` computes it.
#[inline]
#[target_feature(enable = "neon")]
fn abs_max(v: &[float32x4_t; 8]) -> f32 {
    let m = v.iter().fold(vdupq_n_f32(0.0), |m, &x| vmaxnmq_f32(m, vabsq_f32(x)));
    vmaxnmvq_f32(m)
}

/// `rintf(v * id) as i8` for 32 values, as two vectors of 16.
#[inline]
#[target_feature(enable = "neon")]
fn round_to_i8(v: &[float32x4_t; 8], id: f32) -> [int8x16_t; 2] {
    let q = |i: usize| vcvtnq_s32_f32(vmulq_n_f32(v[i], id));
    let h = |i: usize| vcombine_s16(vqmovn_s32(q(i)), vqmovn_s32(q(i + 1)));
    [vcombine_s8(vqmovn_s16(h(0)), vqmovn_s16(h(2))), vcombine_s8(vqmovn_s16(h(4)), vqmovn_s16(h(6)))]
}

/// ggml's activation quantizer for one 32-float block: the scale `amax / 127` and the quants
/// (bit for bit `quantize_q8_act`: multiplier `127 / amax`, ties to even, saturating).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn quantize_block(x: &[f32; 32], qs: &mut [i8; 32]) -> (f32, [int8x16_t; 2]) {
    let v = ld_f32x32(x);
    let amax = abs_max(&v);
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let q = round_to_i8(&v, id);
    // SAFETY: `qs` has 32 bytes; the stores write `0..16` and `16..32`.
    unsafe {
        vst1q_s8(qs.as_mut_ptr(), q[0]);
        vst1q_s8(qs.as_mut_ptr().add(16), q[1]);
    }
    (d, q)
}

/// Activation quantizer for `Q8_0` (bit for bit the scalar `from_float_act`).
///
/// # Safety
/// The CPU must support NEON (every aarch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_act_neon(xs: &[f32], ys: &mut [BlockQ8_0]) {
    for (x, y) in xs.as_chunks::<32>().0.iter().zip(ys) {
        let (d, _) = quantize_block(x, &mut y.qs);
        y.d = F16::from_f32(d);
    }
}
