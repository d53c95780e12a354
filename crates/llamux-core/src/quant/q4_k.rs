//! `Q4_K`: 4-bit weights in 8 groups of 32, each with a 6-bit scale and 6-bit minimum, under f16
//! super-scales.

use super::kquant_search::make_qkx2_quants;
use super::{nearest_int, BlockFormat, BlockQ8K, GgmlType, F16, QK_K};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use crate::isa::Simd;
use bytemuck::{Pod, Zeroable};

/// Bytes of packed 6-bit scales and minimums in `Q4_K` and `Q5_K`.
pub const K_SCALE_SIZE: usize = 12;

/// A `Q4_K` block: group `g` element `x = d * sc[g] * q - dmin * m[g]`.
///
/// Element `64 p + l` (l < 32) is the low nibble of `qs[32 p + l]`, element `64 p + 32 + l` the
/// high nibble.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4K {
    /// Super-scale of the scales.
    pub d: F16,
    /// Super-scale of the minimums.
    pub dmin: F16,
    /// Packed 6-bit scales and minimums (see [`scale_min_k4`]).
    pub scales: [u8; K_SCALE_SIZE],
    /// 4-bit quants.
    pub qs: [u8; QK_K / 2],
}
const _: () = assert!(core::mem::size_of::<BlockQ4K>() == 144);

/// Scale and minimum of group `j` (0..8) from the 12 packed bytes (ggml's `get_scale_min_k4`).
#[inline]
pub(crate) fn scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Packs 8 six-bit scales and minimums the way [`scale_min_k4`] reads them.
pub(crate) fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; K_SCALE_SIZE] {
    let mut out = [0u8; K_SCALE_SIZE];
    for j in 0..8 {
        if j < 4 {
            out[j] = ls[j];
            out[j + 4] = lm[j];
        } else {
            out[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
            out[j - 4] |= (ls[j] >> 4) << 6;
            out[j] |= (lm[j] >> 4) << 6;
        }
    }
    out
}

/// The shared part of the `Q4_K` and `Q5_K` reference quantizers: per-group weighted asymmetric
/// fits (`nmax` = 15 or 31), 6-bit scale quantization, then the final quants in `L`.
/// Returns `(d, dmin, packed scales, L)`.
pub(crate) fn quantize_k_groups(
    x: &[f32; QK_K],
    nmax: i32,
    rmin: f32,
    nstep: i32,
) -> (F16, F16, [u8; K_SCALE_SIZE], [u8; QK_K]) {
    let mut big_l = [0u8; QK_K];
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let groups = x.as_chunks::<32>().0.iter().zip(big_l.as_chunks_mut::<32>().0);
    for ((xg, lg), (s, m)) in groups.zip(scales.iter_mut().zip(mins.iter_mut())) {
        let sum_x2: f32 = xg.iter().map(|v| v * v).sum();
        let av_x = libm::sqrtf(sum_x2 / 32.0);
        let weights = xg.map(|v| av_x + v.abs());
        (*s, *m) = make_qkx2_quants(nmax, xg, &weights, lg, rmin, 0.1, nstep, false);
    }
    let max_scale = scales.iter().fold(0.0f32, |a, &s| if s > a { s } else { a });
    let max_min = mins.iter().fold(0.0f32, |a, &m| if m > a { m } else { a });
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let ls: [u8; 8] = core::array::from_fn(|j| nearest_int(inv_scale * scales[j]).min(63) as u8);
    let lm: [u8; 8] = core::array::from_fn(|j| nearest_int(inv_min * mins[j]).min(63) as u8);
    let packed = pack_scale_min_k4(&ls, &lm);
    let d = F16::from_f32(max_scale / 63.0);
    let dmin = F16::from_f32(max_min / 63.0);
    for (j, (xg, lg)) in x.as_chunks::<32>().0.iter().zip(big_l.as_chunks_mut::<32>().0).enumerate() {
        let (sc, m) = scale_min_k4(j, &packed);
        let dd = d.to_f32() * sc as f32;
        if dd == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * m as f32;
        for (l, &v) in lg.iter_mut().zip(xg) {
            *l = nearest_int((v + dm) / dd).clamp(0, nmax) as u8;
        }
    }
    (d, dmin, packed, big_l)
}

impl BlockFormat for BlockQ4K {
    const TYPE: GgmlType = GgmlType::Q4_K;
    const BLCK_SIZE: usize = QK_K;
    type VecDotType = BlockQ8K;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK_K>().0) {
            let (d, min) = (x.d.to_f32(), x.dmin.to_f32());
            for (p, (out, q)) in y.as_chunks_mut::<64>().0.iter_mut().zip(x.qs.as_chunks::<32>().0).enumerate() {
                let (sc1, m1) = scale_min_k4(2 * p, &x.scales);
                let (sc2, m2) = scale_min_k4(2 * p + 1, &x.scales);
                let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
                let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
                for l in 0..32 {
                    out[l] = d1 * (q[l] & 0xF) as f32 - m1;
                    out[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
                }
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.as_chunks::<QK_K>().0.iter().zip(ys) {
            let (d, dmin, scales, big_l) = quantize_k_groups(x, 15, -1.0, 20);
            y.d = d;
            y.dmin = dmin;
            y.scales = scales;
            for (q, lp) in y.qs.as_chunks_mut::<32>().0.iter_mut().zip(big_l.as_chunks::<64>().0) {
                for l in 0..32 {
                    q[l] = lp[l] | (lp[l + 32] << 4);
                }
            }
        }
    }

    fn vec_dot_x4_with(simd: Simd, xs: &[Self], ys: [&[BlockQ8K]; 4]) -> [f32; 4] {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q4_k::vec_dot_x4_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q4_k::vec_dot_x4_avx2(xs, ys) },
            _ => ys.map(|y| Self::vec_dot_with(simd, xs, y)),
        }
    }

    x86_tile_kernels!(q4_k, K);

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q4_k::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q4_k::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q4_k::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8K]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let (mut sumi, mut summs) = (0i32, 0i32);
            for (p, (q, a)) in x.qs.as_chunks::<32>().0.iter().zip(y.qs.as_chunks::<64>().0).enumerate() {
                let (sc1, m1) = scale_min_k4(2 * p, &x.scales);
                let (sc2, m2) = scale_min_k4(2 * p + 1, &x.scales);
                let (mut dot1, mut dot2) = (0i32, 0i32);
                for l in 0..32 {
                    dot1 += (q[l] & 0xF) as i32 * a[l] as i32;
                    dot2 += (q[l] >> 4) as i32 * a[l + 32] as i32;
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
