//! `Q8_K` NEON kernels: the dot product with `Q8_K` and the activation quantizer.

use super::common::{dot_i8, ld_i8, neon_dot_entry};
use crate::quant::{BlockQ8K, QK_K};
use bytemuck::Zeroable;
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ8K], ys: &[BlockQ8K]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in xs.iter().zip(ys) {
        let (mut acc0, mut acc1) = (vdupq_n_s32(0), vdupq_n_s32(0));
        for i in 0..QK_K / 32 {
            // SAFETY: forwarded from the caller.
            unsafe {
                acc0 = dot_i8::<D>(acc0, ld_i8(&x.qs, 32 * i), ld_i8(&y.qs, 32 * i));
                acc1 = dot_i8::<D>(acc1, ld_i8(&x.qs, 32 * i + 16), ld_i8(&y.qs, 32 * i + 16));
            }
        }
        sumf += x.d * y.d * vaddvq_s32(vaddq_s32(acc0, acc1)) as f32;
    }
    sumf
}

neon_dot_entry!(
    /// `Q8_K · Q8_K` (twin of `BlockQ8K::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ8K,
    BlockQ8K
);

/// The `Q8_K` quantizer (bit for bit the scalar `from_float`: scale `-127 / max` of the first
/// element of largest magnitude, ggml's `nearest_int`, `min(127)` then truncation to i8).
///
/// # Safety
/// The CPU must support NEON (every aarch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_act_neon(xs: &[f32], ys: &mut [BlockQ8K]) {
    for (x, y) in xs.as_chunks::<QK_K>().0.iter().zip(ys) {
        // SAFETY: `x` has 256 floats; lane group `i` reads `4 i .. 4 i + 4`.
        let v: [float32x4_t; QK_K / 4] = core::array::from_fn(|i| unsafe { vld1q_f32(x.as_ptr().add(4 * i)) });
        // NaNs never win (`v.abs() > amax` is false for them); neither do they here.
        let amax = vmaxnmvq_f32(v.iter().fold(vdupq_n_f32(0.0), |m, &x| vmaxnmq_f32(m, vabsq_f32(x))));
        if amax == 0.0 {
            *y = BlockQ8K::zeroed();
            continue;
        }
        // The scalar loop keeps the first element whose magnitude is the maximum.
        let max = x.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
        let iscale = -127.0 / max;
        let (magic, mant, bias, top) =
            (vdupq_n_f32(12_582_912.0), vdupq_n_s32(0x007f_ffff), vdupq_n_s32(0x0040_0000), vdupq_n_s32(127));
        // nearest_int(iscale * v): add 1.5 * 2^23, keep the mantissa bits, remove the offset.
        let q = |i: usize| {
            let bits = vreinterpretq_s32_f32(vaddq_f32(vmulq_n_f32(v[i], iscale), magic));
            vminq_s32(vsubq_s32(vandq_s32(bits, mant), bias), top)
        };
        for (g, (qs, s)) in y.qs.as_chunks_mut::<16>().0.iter_mut().zip(y.bsums.iter_mut()).enumerate() {
            let h0 = vcombine_s16(vmovn_s32(q(4 * g)), vmovn_s32(q(4 * g + 1)));
            let h1 = vcombine_s16(vmovn_s32(q(4 * g + 2)), vmovn_s32(q(4 * g + 3)));
            let b = vcombine_s8(vmovn_s16(h0), vmovn_s16(h1));
            // SAFETY: `qs` has 16 bytes.
            unsafe { vst1q_s8(qs.as_mut_ptr(), b) };
            *s = vaddlvq_s8(b);
        }
        y.d = 1.0 / iscale;
    }
}
