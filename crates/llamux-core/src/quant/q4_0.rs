//! `Q4_0`: 32 weights as 4-bit integers `q - 8` times one f16 scale.

use super::{BlockFormat, BlockQ8_0, GgmlType, Simd, F16};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use bytemuck::{Pod, Zeroable};

/// Elements per block.
pub const QK4_0: usize = 32;

/// A `Q4_0` block: `x[j] = d * ((qs[j] & 15) - 8)`, `x[j + 16] = d * ((qs[j] >> 4) - 8)`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: F16,
    /// Nibbles: low halves hold elements 0..16, high halves 16..32.
    pub qs: [u8; QK4_0 / 2],
}
const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);

impl BlockFormat for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const BLCK_SIZE: usize = QK4_0;
    type VecDotType = BlockQ8_0;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK4_0>().0) {
            let d = x.d.to_f32();
            for j in 0..QK4_0 / 2 {
                y[j] = ((x.qs[j] & 0x0F) as i32 - 8) as f32 * d;
                y[j + QK4_0 / 2] = ((x.qs[j] >> 4) as i32 - 8) as f32 * d;
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.as_chunks::<QK4_0>().0.iter().zip(ys) {
            let (mut amax, mut max) = (0.0f32, 0.0f32);
            for &v in x {
                if amax < v.abs() {
                    amax = v.abs();
                    max = v;
                }
            }
            let d = max / -8.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            y.d = F16::from_f32(d);
            for j in 0..QK4_0 / 2 {
                let xi0 = ((x[j] * id + 8.5) as i8).min(15) as u8;
                let xi1 = ((x[j + QK4_0 / 2] * id + 8.5) as i8).min(15) as u8;
                y.qs[j] = xi0 | (xi1 << 4);
            }
        }
    }

    fn vec_dot_rows_x4_with(simd: Simd, xs: &[Self], ys: [&[BlockQ8_0]; 4], out: [&mut [f32]; 4]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q4_0::vec_dot_rows_x4_avx512(xs, ys, out) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q4_0::vec_dot_rows_x4_avx2(xs, ys, out) },
            _ => super::rows_x4_row_by_row(simd, xs, ys, out),
        }
    }

    x86_tile_kernels!(q4_0, B32);

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8_0]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q4_0::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q4_0::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q4_0::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8_0]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let mut sumi = 0i32;
            for j in 0..QK4_0 / 2 {
                let v0 = (x.qs[j] & 0x0F) as i32 - 8;
                let v1 = (x.qs[j] >> 4) as i32 - 8;
                sumi += v0 * y.qs[j] as i32 + v1 * y.qs[j + QK4_0 / 2] as i32;
            }
            sumf += sumi as f32 * x.d.to_f32() * y.d.to_f32();
        }
        sumf
    }
}
