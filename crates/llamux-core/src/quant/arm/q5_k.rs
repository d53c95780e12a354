//! `Q5_K` NEON kernel: the dot product with `Q8_K` activations.

use super::common::{bsum_pairs_dot, dot32, f16, ld_i8, ld_u8, neon_dot_entry, nibbles, s8};
use crate::quant::q4_k::scale_min_k4;
use crate::quant::{BlockQ5K, BlockQ8K};
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ5K], ys: &[BlockQ8K]) -> f32 {
    let mut sumf = 0.0f32;
    let m10 = vdupq_n_u8(0x10);
    for (x, y) in xs.iter().zip(ys) {
        let sm: [(u8, u8); 8] = core::array::from_fn(|j| scale_min_k4(j, &x.scales));
        let summs = bsum_pairs_dot(&y.bsums, sm.map(|(_, m)| i32::from(m)));
        let (qh0, qh1) = (ld_u8(&x.qh, 0), ld_u8(&x.qh, 16));
        let mut isum = vdupq_n_s32(0);
        for p in 0..4 {
            // Fifth bits: bit 2p of qh for the low nibbles, 2p + 1 for the high ones.
            let (bl, bh) = (vdupq_n_u8(1 << (2 * p)), vdupq_n_u8(2 << (2 * p)));
            let hb = |qh: uint8x16_t, b: uint8x16_t| vandq_u8(vtstq_u8(qh, b), m10);
            let (l0, h0) = nibbles(ld_u8(&x.qs, 32 * p));
            let (l1, h1) = nibbles(ld_u8(&x.qs, 32 * p + 16));
            let (l0, l1) = (s8(vorrq_u8(l0, hb(qh0, bl))), s8(vorrq_u8(l1, hb(qh1, bl))));
            let (h0, h1) = (s8(vorrq_u8(h0, hb(qh0, bh))), s8(vorrq_u8(h1, hb(qh1, bh))));
            let a = |k: usize| ld_i8(&y.qs, 64 * p + 16 * k);
            // SAFETY: forwarded from the caller.
            let (d1, d2) = unsafe { (dot32::<D>(l0, a(0), l1, a(1)), dot32::<D>(h0, a(2), h1, a(3))) };
            isum = vmlaq_n_s32(isum, d1, i32::from(sm[2 * p].0));
            isum = vmlaq_n_s32(isum, d2, i32::from(sm[2 * p + 1].0));
        }
        let sumi = vaddvq_s32(isum);
        sumf += y.d * f16(x.d) * sumi as f32 - y.d * f16(x.dmin) * summs as f32;
    }
    sumf
}

neon_dot_entry!(
    /// `Q5_K · Q8_K` (twin of `BlockQ5K::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ5K,
    BlockQ8K
);
