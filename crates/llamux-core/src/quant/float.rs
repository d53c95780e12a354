//! Unquantized element types: `f32`, [`F16`] and [`BF16`], each paired with itself.

use super::{BlockFormat, GgmlType, BF16, F16};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use crate::isa::Simd;

impl BlockFormat for f32 {
    const TYPE: GgmlType = GgmlType::F32;
    const BLCK_SIZE: usize = 1;
    type VecDotType = f32;

    fn to_float(xs: &[f32], ys: &mut [f32]) {
        let n = xs.len().min(ys.len());
        ys[..n].copy_from_slice(&xs[..n]);
    }

    fn from_float(xs: &[f32], ys: &mut [f32]) {
        Self::to_float(xs, ys)
    }

    fn vec_dot_with(simd: Simd, xs: &[f32], ys: &[f32]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::float::vec_dot_f32_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::float::vec_dot_f32_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::float::vec_dot_f32_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[f32], ys: &[f32]) -> f32 {
        xs.iter().zip(ys).map(|(&x, &y)| f64::from(x * y)).sum::<f64>() as f32
    }
}

impl BlockFormat for F16 {
    const TYPE: GgmlType = GgmlType::F16;
    const BLCK_SIZE: usize = 1;
    type VecDotType = F16;

    fn to_float(xs: &[F16], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys) {
            *y = x.to_f32();
        }
    }

    fn from_float(xs: &[f32], ys: &mut [F16]) {
        for (x, y) in xs.iter().zip(ys) {
            *y = F16::from_f32(*x);
        }
    }

    fn vec_dot_with(simd: Simd, xs: &[F16], ys: &[F16]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::float::vec_dot_f16_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::float::vec_dot_f16_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::float::vec_dot_f16_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn from_float_act_with(simd: Simd, xs: &[f32], ys: &mut [F16]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::float::to_f16_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::float::to_f16_avx2(xs, ys) },
            _ => Self::from_float(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[F16], ys: &[F16]) -> f32 {
        xs.iter().zip(ys).map(|(x, y)| f64::from(x.to_f32() * y.to_f32())).sum::<f64>() as f32
    }
}

impl BlockFormat for BF16 {
    const TYPE: GgmlType = GgmlType::BF16;
    const BLCK_SIZE: usize = 1;
    type VecDotType = BF16;

    fn to_float(xs: &[BF16], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys) {
            *y = x.to_f32();
        }
    }

    fn from_float(xs: &[f32], ys: &mut [BF16]) {
        for (x, y) in xs.iter().zip(ys) {
            *y = BF16::from_f32(*x);
        }
    }

    fn vec_dot_with(simd: Simd, xs: &[BF16], ys: &[BF16]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::float::vec_dot_bf16_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::float::vec_dot_bf16_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::float::vec_dot_bf16_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn from_float_act_with(simd: Simd, xs: &[f32], ys: &mut [BF16]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::float::to_bf16_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::float::to_bf16_avx2(xs, ys) },
            _ => Self::from_float(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[BF16], ys: &[BF16]) -> f32 {
        xs.iter().zip(ys).map(|(x, y)| f64::from(x.to_f32() * y.to_f32())).sum::<f64>() as f32
    }
}
