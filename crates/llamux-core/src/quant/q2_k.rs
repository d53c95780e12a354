//! `Q2_K`: 2-bit weights in 16 groups of 16, each with a 4-bit scale and 4-bit minimum, under
//! f16 super-scales.

use super::kquant_search::{make_qkx2_quants, pack_2bit};
use super::{nearest_int, BlockFormat, BlockQ8K, GgmlType, F16, QK_K};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use crate::isa::Simd;
use bytemuck::{Pod, Zeroable};

/// A `Q2_K` block: group `g` element `x = d * (scales[g] & 15) * q - dmin * (scales[g] >> 4)`.
///
/// Element `128 h + 32 j + l` is bits `2j..2j+2` of `qs[32 h + l]`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ2K {
    /// Per-group scale (low nibble) and minimum (high nibble).
    pub scales: [u8; QK_K / 16],
    /// 2-bit quants.
    pub qs: [u8; QK_K / 4],
    /// Super-scale of the scales.
    pub d: F16,
    /// Super-scale of the minimums.
    pub dmin: F16,
}
const _: () = assert!(core::mem::size_of::<BlockQ2K>() == 84);

impl BlockQ2K {
    /// Quant of element `i` (0..256).
    #[inline]
    fn q(&self, i: usize) -> u8 {
        let (h, j, l) = (i / 128, (i % 128) / 32, i % 32);
        (self.qs[32 * h + l] >> (2 * j)) & 3
    }
}

impl BlockFormat for BlockQ2K {
    const TYPE: GgmlType = GgmlType::Q2_K;
    const BLCK_SIZE: usize = QK_K;
    type VecDotType = BlockQ8K;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK_K>().0) {
            let (d, min) = (x.d.to_f32(), x.dmin.to_f32());
            for (g, (group, &sc)) in y.as_chunks_mut::<16>().0.iter_mut().zip(&x.scales).enumerate() {
                let dl = d * (sc & 0xF) as f32;
                let ml = min * (sc >> 4) as f32;
                for (l, o) in group.iter_mut().enumerate() {
                    *o = dl * x.q(16 * g + l) as f32 - ml;
                }
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        const Q4SCALE: f32 = 15.0;
        for (x, y) in xs.as_chunks::<QK_K>().0.iter().zip(ys) {
            let mut big_l = [0u8; QK_K];
            let mut scales = [0.0f32; QK_K / 16];
            let mut mins = [0.0f32; QK_K / 16];
            let groups = x.as_chunks::<16>().0.iter().zip(big_l.as_chunks_mut::<16>().0);
            for ((xg, lg), (s, m)) in groups.zip(scales.iter_mut().zip(mins.iter_mut())) {
                let weights = xg.map(f32::abs);
                (*s, *m) = make_qkx2_quants(3, xg, &weights, lg, -0.5, 0.1, 15, true);
            }
            let max_scale = scales.iter().fold(0.0f32, |a, &s| if s > a { s } else { a });
            let max_min = mins.iter().fold(0.0f32, |a, &m| if m > a { m } else { a });
            *y = Self::zeroed();
            if max_scale > 0.0 {
                let iscale = Q4SCALE / max_scale;
                for (o, &s) in y.scales.iter_mut().zip(&scales) {
                    *o = nearest_int(iscale * s) as u8;
                }
                y.d = F16::from_f32(max_scale / Q4SCALE);
            }
            if max_min > 0.0 {
                let iscale = Q4SCALE / max_min;
                for (o, &m) in y.scales.iter_mut().zip(&mins) {
                    *o |= (nearest_int(iscale * m) as u8) << 4;
                }
                y.dmin = F16::from_f32(max_min / Q4SCALE);
            }
            for (g, (xg, lg)) in x.as_chunks::<16>().0.iter().zip(big_l.as_chunks_mut::<16>().0).enumerate() {
                let d = y.d.to_f32() * (y.scales[g] & 0xF) as f32;
                if d == 0.0 {
                    continue;
                }
                let dm = y.dmin.to_f32() * (y.scales[g] >> 4) as f32;
                for (l, &v) in lg.iter_mut().zip(xg) {
                    *l = nearest_int((v + dm) / d).clamp(0, 3) as u8;
                }
            }
            y.qs = pack_2bit(&big_l);
        }
    }

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q2_k::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q2_k::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q2_k::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let summs: i32 = y.bsums.iter().zip(&x.scales).map(|(&s, &sc)| s as i32 * (sc >> 4) as i32).sum();
            let mut isum = 0i32;
            for (g, &sc) in x.scales.iter().enumerate() {
                let dot: i32 = (0..16).map(|l| y.qs[16 * g + l] as i32 * x.q(16 * g + l) as i32).sum();
                isum += (sc & 0xF) as i32 * dot;
            }
            let dall = y.d * x.d.to_f32();
            let dmin = y.d * x.dmin.to_f32();
            sumf += dall * isum as f32 - dmin * summs as f32;
        }
        sumf
    }
}
