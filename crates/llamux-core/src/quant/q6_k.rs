//! `Q6_K`: 6-bit weights in 16 groups of 16 with signed 8-bit scales under an f16 super-scale.

use super::kquant_search::{make_qx_quants, GROUP_MAX_EPS};
use super::{nearest_int, BlockFormat, BlockQ8K, GgmlType, F16, QK_K};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use crate::isa::Simd;
use bytemuck::{Pod, Zeroable};

/// A `Q6_K` block: group `g` element `x = d * scales[g] * (q - 32)`.
///
/// In half `h` (128 elements), element `32 k + l` has its low nibble in `ql[64 h + l + 32 (k & 1)]`
/// (low half for k < 2, high half otherwise) and its top two bits at `2k` in `qh[32 h + l]`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ6K {
    /// Low four bits of the quants.
    pub ql: [u8; QK_K / 2],
    /// High two bits of the quants.
    pub qh: [u8; QK_K / 4],
    /// Group scales.
    pub scales: [i8; QK_K / 16],
    /// Super-scale.
    pub d: F16,
}
const _: () = assert!(core::mem::size_of::<BlockQ6K>() == 210);

impl BlockQ6K {
    /// Signed quant (−32..32) of element `i`.
    #[inline]
    fn q(&self, i: usize) -> i8 {
        let (h, k, l) = (i / 128, (i % 128) / 32, i % 32);
        let ql = self.ql[64 * h + l + 32 * (k & 1)];
        let low = if k < 2 { ql & 0xF } else { ql >> 4 };
        let high = (self.qh[32 * h + l] >> (2 * k)) & 3;
        (low | (high << 4)) as i8 - 32
    }
}

impl BlockFormat for BlockQ6K {
    const TYPE: GgmlType = GgmlType::Q6_K;
    const BLCK_SIZE: usize = QK_K;
    type VecDotType = BlockQ8K;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK_K>().0) {
            let d = x.d.to_f32();
            for (g, (group, &sc)) in y.as_chunks_mut::<16>().0.iter_mut().zip(&x.scales).enumerate() {
                let dl = d * sc as f32;
                for (l, o) in group.iter_mut().enumerate() {
                    *o = dl * x.q(16 * g + l) as f32;
                }
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.as_chunks::<QK_K>().0.iter().zip(ys) {
            let mut big_l = [0u8; QK_K];
            let mut scales = [0.0f32; 16];
            let (mut max_abs_scale, mut max_scale) = (0.0f32, 0.0f32);
            let groups = x.as_chunks::<16>().0.iter().zip(big_l.as_chunks_mut::<16>().0);
            for ((xg, lg), s) in groups.zip(scales.iter_mut()) {
                *s = make_qx_quants(32, xg, lg);
                if s.abs() > max_abs_scale {
                    max_abs_scale = s.abs();
                    max_scale = *s;
                }
            }
            *y = Self::zeroed();
            if max_abs_scale < GROUP_MAX_EPS {
                continue;
            }
            let iscale = -128.0 / max_scale;
            y.d = F16::from_f32(1.0 / iscale);
            for (o, &s) in y.scales.iter_mut().zip(&scales) {
                *o = nearest_int(iscale * s).min(127) as i8;
            }
            for (g, (xg, lg)) in x.as_chunks::<16>().0.iter().zip(big_l.as_chunks_mut::<16>().0).enumerate() {
                let d = y.d.to_f32() * y.scales[g] as f32;
                if d == 0.0 {
                    continue;
                }
                for (l, &v) in lg.iter_mut().zip(xg) {
                    *l = (nearest_int(v / d).clamp(-32, 31) + 32) as u8;
                }
            }
            for h in 0..2 {
                for l in 0..32 {
                    let b = 128 * h + l;
                    let (q1, q2, q3, q4) = (big_l[b], big_l[b + 32], big_l[b + 64], big_l[b + 96]);
                    y.ql[64 * h + l] = (q1 & 0xF) | ((q3 & 0xF) << 4);
                    y.ql[64 * h + l + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4);
                    y.qh[32 * h + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
                }
            }
        }
    }

    fn vec_dot_x4_with(simd: Simd, xs: &[Self], ys: [&[BlockQ8K]; 4]) -> [f32; 4] {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q6_k::vec_dot_x4_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q6_k::vec_dot_x4_avx2(xs, ys) },
            _ => ys.map(|y| Self::vec_dot_with(simd, xs, y)),
        }
    }

    x86_tile_kernels!(q6_k, K);

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q6_k::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q6_k::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q6_k::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let mut isum = 0i32;
            for (g, &sc) in x.scales.iter().enumerate() {
                let dot: i32 = (0..16).map(|l| y.qs[16 * g + l] as i32 * x.q(16 * g + l) as i32).sum();
                isum += sc as i32 * dot;
            }
            sumf += x.d.to_f32() * y.d * isum as f32;
        }
        sumf
    }
}
