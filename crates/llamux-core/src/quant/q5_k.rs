//! `Q5_K`: 5-bit weights in 8 groups of 32, each with a 6-bit scale and 6-bit minimum, under f16
//! super-scales.

use super::q4_k::{quantize_k_groups, scale_min_k4, K_SCALE_SIZE};
use super::{BlockFormat, BlockQ8K, GgmlType, F16, QK_K};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use crate::isa::Simd;
use bytemuck::{Pod, Zeroable};

/// A `Q5_K` block: as `Q4_K`, plus the fifth bit of element `64 p + l` in bit `2p` of `qh[l]`
/// and of element `64 p + 32 + l` in bit `2p + 1`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5K {
    /// Super-scale of the scales.
    pub d: F16,
    /// Super-scale of the minimums.
    pub dmin: F16,
    /// Packed 6-bit scales and minimums.
    pub scales: [u8; K_SCALE_SIZE],
    /// Fifth bits.
    pub qh: [u8; QK_K / 8],
    /// Low nibbles.
    pub qs: [u8; QK_K / 2],
}
const _: () = assert!(core::mem::size_of::<BlockQ5K>() == 176);

impl BlockQ5K {
    /// Quants of elements `64 p + l` and `64 p + 32 + l`.
    #[inline]
    fn pair(&self, p: usize, l: usize) -> (u8, u8) {
        let ql = self.qs[32 * p + l];
        let qh = self.qh[l];
        let h1 = ((qh >> (2 * p)) & 1) << 4;
        let h2 = ((qh >> (2 * p + 1)) & 1) << 4;
        ((ql & 0xF) | h1, (ql >> 4) | h2)
    }
}

impl BlockFormat for BlockQ5K {
    const TYPE: GgmlType = GgmlType::Q5_K;
    const BLCK_SIZE: usize = QK_K;
    type VecDotType = BlockQ8K;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK_K>().0) {
            let (d, min) = (x.d.to_f32(), x.dmin.to_f32());
            for (p, out) in y.as_chunks_mut::<64>().0.iter_mut().enumerate() {
                let (sc1, m1) = scale_min_k4(2 * p, &x.scales);
                let (sc2, m2) = scale_min_k4(2 * p + 1, &x.scales);
                let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
                let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
                for l in 0..32 {
                    let (a, b) = x.pair(p, l);
                    out[l] = d1 * a as f32 - m1;
                    out[l + 32] = d2 * b as f32 - m2;
                }
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.as_chunks::<QK_K>().0.iter().zip(ys) {
            let (d, dmin, scales, big_l) = quantize_k_groups(x, 31, -0.5, 15);
            y.d = d;
            y.dmin = dmin;
            y.scales = scales;
            y.qh = [0; QK_K / 8];
            for (p, (q, lp)) in y.qs.as_chunks_mut::<32>().0.iter_mut().zip(big_l.as_chunks::<64>().0).enumerate() {
                for l in 0..32 {
                    let (l1, l2) = (lp[l], lp[l + 32]);
                    y.qh[l] |= ((l1 >> 4) << (2 * p)) | ((l2 >> 4) << (2 * p + 1));
                    q[l] = (l1 & 0xF) | ((l2 & 0xF) << 4);
                }
            }
        }
    }

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q5_k::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q5_k::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q5_k::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let (mut sumi, mut summs) = (0i32, 0i32);
            for (p, a) in y.qs.as_chunks::<64>().0.iter().enumerate() {
                let (sc1, m1) = scale_min_k4(2 * p, &x.scales);
                let (sc2, m2) = scale_min_k4(2 * p + 1, &x.scales);
                let (mut dot1, mut dot2) = (0i32, 0i32);
                for l in 0..32 {
                    let (q1, q2) = x.pair(p, l);
                    dot1 += q1 as i32 * a[l] as i32;
                    dot2 += q2 as i32 * a[l + 32] as i32;
                }
                sumi += sc1 as i32 * dot1 + sc2 as i32 * dot2;
                let b = &y.bsums[4 * p..4 * p + 4];
                summs += m1 as i32 * (b[0] as i32 + b[1] as i32) + m2 as i32 * (b[2] as i32 + b[3] as i32);
            }
            sumf += y.d * x.d.to_f32() * sumi as f32 - y.d * x.dmin.to_f32() * summs as f32;
        }
        sumf
    }
}
