//! `Q6_K` NEON kernel: the dot product with `Q8_K` activations.

use super::common::{dot_i8, f16, ld_i8, ld_u8, neon_dot_entry, s8};
use crate::quant::{BlockQ6K, BlockQ8K};
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ6K], ys: &[BlockQ8K]) -> f32 {
    let mut sumf = 0.0f32;
    let (m4, m30, b32) = (vdupq_n_u8(0x0F), vdupq_n_u8(0x30), vdupq_n_s8(32));
    for (x, y) in xs.iter().zip(ys) {
        let mut isum = vdupq_n_s32(0);
        for h in 0..2 {
            for half in 0..2 {
                // Elements 128 h + 32 k + 16 half + i, k = 0..4.
                let l0 = ld_u8(&x.ql, 64 * h + 16 * half);
                let l1 = ld_u8(&x.ql, 64 * h + 32 + 16 * half);
                let hb = ld_u8(&x.qh, 32 * h + 16 * half);
                let q = [
                    vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8::<4>(hb), m30)),
                    vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8::<2>(hb), m30)),
                    vorrq_u8(vshrq_n_u8::<4>(l0), vandq_u8(hb, m30)),
                    vorrq_u8(vshrq_n_u8::<4>(l1), vandq_u8(vshrq_n_u8::<2>(hb), m30)),
                ];
                for (k, &qk) in q.iter().enumerate() {
                    let a = ld_i8(&y.qs, 128 * h + 32 * k + 16 * half);
                    // SAFETY: forwarded from the caller.
                    let dot = unsafe { dot_i8::<D>(vdupq_n_s32(0), vsubq_s8(s8(qk), b32), a) };
                    let sc = x.scales.get(8 * h + 2 * k + half).copied().unwrap_or(0);
                    isum = vmlaq_n_s32(isum, dot, i32::from(sc));
                }
            }
        }
        sumf += f16(x.d) * y.d * vaddvq_s32(isum) as f32;
    }
    sumf
}

neon_dot_entry!(
    /// `Q6_K · Q8_K` (twin of `BlockQ6K::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ6K,
    BlockQ8K
);
