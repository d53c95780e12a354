//! `Q4_1`: 32 weights as 4-bit integers times an f16 scale plus an f16 minimum.

use super::{BlockFormat, BlockQ8_1, GgmlType, Simd, F16};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use bytemuck::{Pod, Zeroable};

/// Elements per block.
pub const QK4_1: usize = 32;

/// A `Q4_1` block: `x[j] = d * q[j] + m`, nibbles laid out as in `Q4_0`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: F16,
    /// Minimum.
    pub m: F16,
    /// Nibbles: low halves hold elements 0..16, high halves 16..32.
    pub qs: [u8; QK4_1 / 2],
}
const _: () = assert!(core::mem::size_of::<BlockQ4_1>() == 20);

impl BlockFormat for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const BLCK_SIZE: usize = QK4_1;
    type VecDotType = BlockQ8_1;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK4_1>().0) {
            let (d, m) = (x.d.to_f32(), x.m.to_f32());
            for j in 0..QK4_1 / 2 {
                y[j] = (x.qs[j] & 0x0F) as f32 * d + m;
                y[j + QK4_1 / 2] = (x.qs[j] >> 4) as f32 * d + m;
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.as_chunks::<QK4_1>().0.iter().zip(ys) {
            let (min, max) = min_max(x);
            let d = (max - min) / 15.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            y.d = F16::from_f32(d);
            y.m = F16::from_f32(min);
            for j in 0..QK4_1 / 2 {
                let xi0 = (((x[j] - min) * id + 0.5) as i8).min(15) as u8;
                let xi1 = (((x[j + QK4_1 / 2] - min) * id + 0.5) as i8).min(15) as u8;
                y.qs[j] = xi0 | (xi1 << 4);
            }
        }
    }

    fn vec_dot_rows_x4_with(simd: Simd, xs: &[Self], ys: [&[BlockQ8_1]; 4], out: [&mut [f32]; 4]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q4_1::vec_dot_rows_x4_avx512(xs, ys, out) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q4_1::vec_dot_rows_x4_avx2(xs, ys, out) },
            _ => super::rows_x4_row_by_row(simd, xs, ys, out),
        }
    }

    x86_tile_kernels!(q4_1, B32);

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8_1]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q4_1::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q4_1::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q4_1::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8_1]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let mut sumi = 0i32;
            for j in 0..QK4_1 / 2 {
                sumi += (x.qs[j] & 0x0F) as i32 * y.qs[j] as i32 + (x.qs[j] >> 4) as i32 * y.qs[j + QK4_1 / 2] as i32;
            }
            sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32 + x.m.to_f32() * y.s.to_f32();
        }
        sumf
    }
}

/// Minimum and maximum of a block, as ggml's reference quantizers compute them.
pub(crate) fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}
