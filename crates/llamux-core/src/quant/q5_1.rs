//! `Q5_1`: 32 weights as 5-bit integers times an f16 scale plus an f16 minimum.

use super::q4_1::min_max;
use super::q5_0::q5_pair;
use super::{BlockFormat, BlockQ8_1, GgmlType, Simd, F16};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use bytemuck::{Pod, Zeroable};

/// Elements per block.
pub const QK5_1: usize = 32;

/// A `Q5_1` block: `x[j] = d * q[j] + m`, bits laid out as in `Q5_0`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: F16,
    /// Minimum.
    pub m: F16,
    /// High bits, a little-endian `u32`.
    pub qh: [u8; 4],
    /// Low nibbles.
    pub qs: [u8; QK5_1 / 2],
}
const _: () = assert!(core::mem::size_of::<BlockQ5_1>() == 24);

impl BlockFormat for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const BLCK_SIZE: usize = QK5_1;
    type VecDotType = BlockQ8_1;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK5_1>().0) {
            let (d, m) = (x.d.to_f32(), x.m.to_f32());
            let qh = u32::from_le_bytes(x.qh);
            for j in 0..QK5_1 / 2 {
                let (a, b) = q5_pair(x.qs[j], qh, j);
                y[j] = a as f32 * d + m;
                y[j + QK5_1 / 2] = b as f32 * d + m;
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.as_chunks::<QK5_1>().0.iter().zip(ys) {
            let (min, max) = min_max(x);
            let d = (max - min) / 31.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            y.d = F16::from_f32(d);
            y.m = F16::from_f32(min);
            let mut qh = 0u32;
            for j in 0..QK5_1 / 2 {
                let xi0 = (((x[j] - min) * id + 0.5) as u8).min(31);
                let xi1 = (((x[j + QK5_1 / 2] - min) * id + 0.5) as u8).min(31);
                y.qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
                qh |= u32::from((xi0 & 0x10) >> 4) << j;
                qh |= u32::from((xi1 & 0x10) >> 4) << (j + QK5_1 / 2);
            }
            y.qh = qh.to_le_bytes();
        }
    }

    fn vec_dot_rows_x4_with(simd: Simd, xs: &[Self], ys: [&[BlockQ8_1]; 4], out: [&mut [f32]; 4]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q5_1::vec_dot_rows_x4_avx512(xs, ys, out) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q5_1::vec_dot_rows_x4_avx2(xs, ys, out) },
            _ => super::rows_x4_row_by_row(simd, xs, ys, out),
        }
    }

    x86_tile_kernels!(q5_1, B32);

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8_1]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q5_1::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q5_1::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q5_1::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8_1]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let qh = u32::from_le_bytes(x.qh);
            let mut sumi = 0i32;
            for j in 0..QK5_1 / 2 {
                let (a, b) = q5_pair(x.qs[j], qh, j);
                sumi += a as i32 * y.qs[j] as i32 + b as i32 * y.qs[j + QK5_1 / 2] as i32;
            }
            sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32 + x.m.to_f32() * y.s.to_f32();
        }
        sumf
    }
}
