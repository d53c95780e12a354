//! `Q3_K`: 3-bit weights (2 low bits plus a high-bit mask) in 16 groups of 16 with signed 6-bit
//! scales under an f16 super-scale.

use super::kquant_search::{make_q3_quants, pack_2bit};
use super::{nearest_int, BlockFormat, BlockQ8K, GgmlType, F16, QK_K};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use crate::isa::Simd;
use bytemuck::{Pod, Zeroable};

/// A `Q3_K` block: group `g` element `x = d * (scale[g] - 32) * (q - (hbit ? 0 : 4))`.
///
/// Element `128 h + 32 j + l` has low bits `2j..2j+2` of `qs[32 h + l]` and high bit `4h + j` of
/// `hmask[l]`. The 16 six-bit scales are packed in 12 bytes: low nibbles in bytes 0..8, high
/// pairs in bytes 8..12.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ3K {
    /// High bits of the quants.
    pub hmask: [u8; QK_K / 8],
    /// Low two bits of the quants.
    pub qs: [u8; QK_K / 4],
    /// Packed 6-bit scales.
    pub scales: [u8; 12],
    /// Super-scale.
    pub d: F16,
}
const _: () = assert!(core::mem::size_of::<BlockQ3K>() == 110);

impl BlockQ3K {
    /// The 16 signed group scales.
    #[inline]
    fn group_scales(&self) -> [i8; 16] {
        core::array::from_fn(|g| {
            let low = if g < 8 { self.scales[g] & 0xF } else { self.scales[g - 8] >> 4 };
            let high = (self.scales[8 + g % 4] >> (2 * (g / 4))) & 3;
            (low | (high << 4)) as i8 - 32
        })
    }

    /// Signed quant of element `i` (−4..4).
    #[inline]
    fn q(&self, i: usize) -> i8 {
        let (h, j, l) = (i / 128, (i % 128) / 32, i % 32);
        let low = ((self.qs[32 * h + l] >> (2 * j)) & 3) as i8;
        let high = self.hmask[l] & (1 << (4 * h + j)) != 0;
        low - if high { 0 } else { 4 }
    }
}

impl BlockFormat for BlockQ3K {
    const TYPE: GgmlType = GgmlType::Q3_K;
    const BLCK_SIZE: usize = QK_K;
    type VecDotType = BlockQ8K;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK_K>().0) {
            let d_all = x.d.to_f32();
            for (g, (group, &sc)) in y.as_chunks_mut::<16>().0.iter_mut().zip(&x.group_scales()).enumerate() {
                let dl = d_all * sc as f32;
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
            let (mut amax, mut max_scale) = (0.0f32, 0.0f32);
            let groups = x.as_chunks::<16>().0.iter().zip(big_l.as_chunks_mut::<16>().0);
            for ((xg, lg), s) in groups.zip(scales.iter_mut()) {
                *s = make_q3_quants(4, xg, lg);
                if s.abs() > amax {
                    amax = s.abs();
                    max_scale = *s;
                }
            }
            *y = Self::zeroed();
            if max_scale != 0.0 {
                let iscale = -32.0 / max_scale;
                for (g, &s) in scales.iter().enumerate() {
                    let l = (nearest_int(iscale * s).clamp(-32, 31) + 32) as u8;
                    if g < 8 {
                        y.scales[g] = l & 0xF;
                    } else {
                        y.scales[g - 8] |= (l & 0xF) << 4;
                    }
                    y.scales[8 + g % 4] |= (l >> 4) << (2 * (g / 4));
                }
                y.d = F16::from_f32(1.0 / iscale);
            }
            let sc = y.group_scales();
            for (g, (xg, lg)) in x.as_chunks::<16>().0.iter().zip(big_l.as_chunks_mut::<16>().0).enumerate() {
                let d = y.d.to_f32() * sc[g] as f32;
                if d == 0.0 {
                    continue;
                }
                for (l, &v) in lg.iter_mut().zip(xg) {
                    *l = (nearest_int(v / d).clamp(-4, 3) + 4) as u8;
                }
            }
            for (i, l) in big_l.iter_mut().enumerate() {
                if *l > 3 {
                    y.hmask[i % 32] |= 1 << (i / 32);
                    *l -= 4;
                }
            }
            y.qs = pack_2bit(&big_l);
        }
    }

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q3_k::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q3_k::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q3_k::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let mut isum = 0i32;
            for (g, &sc) in x.group_scales().iter().enumerate() {
                let dot: i32 = (0..16).map(|l| y.qs[16 * g + l] as i32 * x.q(16 * g + l) as i32).sum();
                isum += sc as i32 * dot;
            }
            sumf += x.d.to_f32() * y.d * isum as f32;
        }
        sumf
    }
}
