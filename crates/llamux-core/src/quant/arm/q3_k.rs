//! `Q3_K` NEON kernel: the dot product with `Q8_K` activations.

use super::common::{dot_i8, f16, ld_i8, ld_u8, neon_dot_entry, s8};
use crate::quant::{BlockQ3K, BlockQ8K};
use core::arch::aarch64::*;

/// The 16 signed group scales from the 12 packed bytes (as `BlockQ3K`'s scalar code reads them).
#[inline]
#[target_feature(enable = "neon")]
fn group_scales(s: &[u8; 12]) -> [i32; 16] {
    core::array::from_fn(|g| {
        let low = if g < 8 { s[g] & 0xF } else { s[g - 8] >> 4 };
        let high = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
        i32::from(low | (high << 4)) - 32
    })
}

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ3K], ys: &[BlockQ8K]) -> f32 {
    let mut sumf = 0.0f32;
    let (m3, four) = (vdupq_n_u8(3), vdupq_n_u8(4));
    for (x, y) in xs.iter().zip(ys) {
        let sc = group_scales(&x.scales);
        let hm = [ld_u8(&x.hmask, 0), ld_u8(&x.hmask, 16)];
        let mut isum = vdupq_n_s32(0);
        for h in 0..2 {
            let qs = [ld_u8(&x.qs, 32 * h), ld_u8(&x.qs, 32 * h + 16)];
            for j in 0..4 {
                let shift = vdupq_n_s8(-2 * j as i8);
                let bit = vdupq_n_u8(1 << (4 * h + j));
                for (half, (&qv, &hv)) in qs.iter().zip(&hm).enumerate() {
                    // q = low bits − (high bit clear ? 4 : 0), in −4..4.
                    let low = vandq_u8(vshlq_u8(qv, shift), m3);
                    let sub = vbicq_u8(four, vtstq_u8(hv, bit));
                    let q = vsubq_s8(s8(low), s8(sub));
                    let a = ld_i8(&y.qs, 128 * h + 32 * j + 16 * half);
                    // SAFETY: forwarded from the caller.
                    let dot = unsafe { dot_i8::<D>(vdupq_n_s32(0), q, a) };
                    isum = vmlaq_n_s32(isum, dot, sc[8 * h + 2 * j + half]);
                }
            }
        }
        sumf += f16(x.d) * y.d * vaddvq_s32(isum) as f32;
    }
    sumf
}

neon_dot_entry!(
    /// `Q3_K · Q8_K` (twin of `BlockQ3K::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ3K,
    BlockQ8K
);
