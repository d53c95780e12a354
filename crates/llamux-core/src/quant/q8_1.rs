//! `Q8_1`: `Q8_0` plus the scaled sum of the quants; the activation type of `Q4_1` and `Q5_1`.

use super::q8_0::{quantize_q8, quantize_q8_act};
use super::{BlockFormat, GgmlType, Simd, F16};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use bytemuck::{Pod, Zeroable};

/// Elements per block.
pub const QK8_1: usize = 32;

/// A `Q8_1` block: `x[j] = d * qs[j]`, and `s = d * Σ qs`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: F16,
    /// `d` times the sum of the quants.
    pub s: F16,
    /// Quants.
    pub qs: [i8; QK8_1],
}
const _: () = assert!(core::mem::size_of::<BlockQ8_1>() == 36);

impl BlockFormat for BlockQ8_1 {
    const TYPE: GgmlType = GgmlType::Q8_1;
    const BLCK_SIZE: usize = QK8_1;
    type VecDotType = BlockQ8_1;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK8_1>().0) {
            let d = x.d.to_f32();
            for (o, &q) in y.iter_mut().zip(&x.qs) {
                *o = q as f32 * d;
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.as_chunks::<QK8_1>().0.iter().zip(ys) {
            let d = quantize_q8(x, &mut y.qs);
            let sum: i32 = y.qs.iter().map(|&q| q as i32).sum();
            y.d = F16::from_f32(d);
            y.s = F16::from_f32(sum as f32 * d);
        }
    }

    fn from_float_act_with(simd: Simd, xs: &[f32], ys: &mut [Self]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q8_1::quantize_act_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q8_1::quantize_act_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q8_1::quantize_act_neon(xs, ys) },
            _ => quantize_act_unopt(xs, ys),
        }
    }

    fn vec_dot_rows_x4_with(simd: Simd, xs: &[Self], ys: [&[BlockQ8_1]; 4], out: [&mut [f32]; 4]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q8_1::vec_dot_rows_x4_avx512(xs, ys, out) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q8_1::vec_dot_rows_x4_avx2(xs, ys, out) },
            _ => super::rows_x4_row_by_row(simd, xs, ys, out),
        }
    }

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8_1]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q8_1::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q8_1::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q8_1::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8_1]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let sumi: i32 = x.qs.iter().zip(&y.qs).map(|(&a, &b)| a as i32 * b as i32).sum();
            sumf += sumi as f32 * (x.d.to_f32() * y.d.to_f32());
        }
        sumf
    }
}

/// Scalar `from_float_act` (the reference for the SIMD quantizers).
fn quantize_act_unopt(xs: &[f32], ys: &mut [BlockQ8_1]) {
    for (x, y) in xs.as_chunks::<QK8_1>().0.iter().zip(ys) {
        let d = quantize_q8_act(x, &mut y.qs);
        let sum: i32 = y.qs.iter().map(|&q| q as i32).sum();
        y.d = F16::from_f32(d);
        y.s = F16::from_f32(d * sum as f32);
    }
}
