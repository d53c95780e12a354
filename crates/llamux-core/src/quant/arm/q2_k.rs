//! `Q2_K` NEON kernel: the dot product with `Q8_K` activations.

use super::common::{dot_i8, f16, ld_i8, ld_u8, neon_dot_entry, s8};
use crate::quant::{BlockQ2K, BlockQ8K};
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ2K], ys: &[BlockQ8K]) -> f32 {
    let mut sumf = 0.0f32;
    let m3 = vdupq_n_u8(3);
    for (x, y) in xs.iter().zip(ys) {
        // Σ bsums[g] · (scales[g] >> 4), in i32.
        let mins = vshrq_n_u8::<4>(ld_u8(&x.scales, 0));
        let (m_lo, m_hi) =
            (vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mins))), vreinterpretq_s16_u16(vmovl_high_u8(mins)));
        let bs = |o: usize| match y.bsums.get(o..o + 8) {
            // SAFETY: the slice has 8 readable i16s.
            Some(s) => unsafe { vld1q_s16(s.as_ptr()) },
            None => vdupq_n_s16(0),
        };
        let (b_lo, b_hi) = (bs(0), bs(8));
        let mut ms = vmull_s16(vget_low_s16(b_lo), vget_low_s16(m_lo));
        ms = vmlal_high_s16(ms, b_lo, m_lo);
        ms = vmlal_s16(ms, vget_low_s16(b_hi), vget_low_s16(m_hi));
        ms = vmlal_high_s16(ms, b_hi, m_hi);
        let summs = vaddvq_s32(ms);

        let mut isum = vdupq_n_s32(0);
        for h in 0..2 {
            let qs = [ld_u8(&x.qs, 32 * h), ld_u8(&x.qs, 32 * h + 16)];
            for j in 0..4 {
                let shift = vdupq_n_s8(-2 * j as i8);
                for (half, &qh) in qs.iter().enumerate() {
                    let q = s8(vandq_u8(vshlq_u8(qh, shift), m3));
                    let g = 8 * h + 2 * j + half;
                    let a = ld_i8(&y.qs, 16 * g);
                    // SAFETY: forwarded from the caller.
                    let dot = unsafe { dot_i8::<D>(vdupq_n_s32(0), q, a) };
                    let sc = x.scales.get(g).copied().unwrap_or(0);
                    isum = vmlaq_n_s32(isum, dot, i32::from(sc & 0xF));
                }
            }
        }
        let dall = y.d * f16(x.d);
        let dmin = y.d * f16(x.dmin);
        sumf += dall * vaddvq_s32(isum) as f32 - dmin * summs as f32;
    }
    sumf
}

neon_dot_entry!(
    /// `Q2_K · Q8_K` (twin of `BlockQ2K::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ2K,
    BlockQ8K
);
