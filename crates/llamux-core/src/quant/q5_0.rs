//! `Q5_0`: 32 weights as 5-bit integers `q - 16` times one f16 scale.

use super::{BlockFormat, BlockQ8_0, GgmlType, Simd, F16};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use bytemuck::{Pod, Zeroable};

/// Elements per block.
pub const QK5_0: usize = 32;

/// A `Q5_0` block: low nibbles as in `Q4_0`, the fifth bit of element `j` in bit `j` of `qh`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: F16,
    /// High bits, a little-endian `u32`.
    pub qh: [u8; 4],
    /// Low nibbles.
    pub qs: [u8; QK5_0 / 2],
}
const _: () = assert!(core::mem::size_of::<BlockQ5_0>() == 22);

/// Element `j` and `j + 16` of a 5-bit block as unsigned 0..32 values.
#[inline]
pub(crate) fn q5_pair(qs: u8, qh: u32, j: usize) -> (u8, u8) {
    let xh0 = (((qh >> j) << 4) & 0x10) as u8;
    let xh1 = ((qh >> (j + 12)) & 0x10) as u8;
    ((qs & 0x0F) | xh0, (qs >> 4) | xh1)
}

impl BlockFormat for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const BLCK_SIZE: usize = QK5_0;
    type VecDotType = BlockQ8_0;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK5_0>().0) {
            let d = x.d.to_f32();
            let qh = u32::from_le_bytes(x.qh);
            for j in 0..QK5_0 / 2 {
                let (a, b) = q5_pair(x.qs[j], qh, j);
                y[j] = (a as i32 - 16) as f32 * d;
                y[j + QK5_0 / 2] = (b as i32 - 16) as f32 * d;
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.as_chunks::<QK5_0>().0.iter().zip(ys) {
            let (mut amax, mut max) = (0.0f32, 0.0f32);
            for &v in x {
                if amax < v.abs() {
                    amax = v.abs();
                    max = v;
                }
            }
            let d = max / -16.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            y.d = F16::from_f32(d);
            let mut qh = 0u32;
            for j in 0..QK5_0 / 2 {
                let xi0 = ((x[j] * id + 16.5) as i8).min(31) as u8;
                let xi1 = ((x[j + QK5_0 / 2] * id + 16.5) as i8).min(31) as u8;
                y.qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
                qh |= u32::from((xi0 & 0x10) >> 4) << j;
                qh |= u32::from((xi1 & 0x10) >> 4) << (j + QK5_0 / 2);
            }
            y.qh = qh.to_le_bytes();
        }
    }

    fn vec_dot_rows_x4_with(simd: Simd, xs: &[Self], ys: [&[BlockQ8_0]; 4], out: [&mut [f32]; 4]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q5_0::vec_dot_rows_x4_avx512(xs, ys, out) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q5_0::vec_dot_rows_x4_avx2(xs, ys, out) },
            _ => super::rows_x4_row_by_row(simd, xs, ys, out),
        }
    }

    x86_tile_kernels!(q5_0, B32);

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8_0]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q5_0::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q5_0::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q5_0::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8_0]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let qh = u32::from_le_bytes(x.qh);
            let mut sumi = 0i32;
            for j in 0..QK5_0 / 2 {
                let (a, b) = q5_pair(x.qs[j], qh, j);
                sumi += (a as i32 - 16) * y.qs[j] as i32 + (b as i32 - 16) * y.qs[j + QK5_0 / 2] as i32;
            }
            sumf += sumi as f32 * x.d.to_f32() * y.d.to_f32();
        }
        sumf
    }
}
