//! `Q8_0`: 32 values as 8-bit integers times one f16 scale; the activation type of `Q4_0`,
//! `Q5_0` and `Q8_0` weights.

use super::{BlockFormat, GgmlType, Simd, F16};
#[cfg(any(all(target_arch = "x86_64", target_feature = "sse2"), target_arch = "aarch64"))]
use crate::isa::Isa;
use bytemuck::{Pod, Zeroable};

/// Elements per block.
pub const QK8_0: usize = 32;

/// A `Q8_0` block: `x[j] = d * qs[j]`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: F16,
    /// Quants.
    pub qs: [i8; QK8_0],
}
const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);

/// ggml's 8-bit block quantizer: scale `amax / 127`, quants `roundf(x / d)`.
/// Returns the unrounded scale.
#[inline]
pub(crate) fn quantize_q8(x: &[f32; 32], qs: &mut [i8; 32]) -> f32 {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = libm::roundf(v * id) as i8;
    }
    d
}

/// ggml's x86 activation quantizer (`quantize_row_q8_0` with AVX2): multiplier `127 / amax`,
/// rounding half to even. Returns the scale `amax / 127`.
#[inline]
pub(crate) fn quantize_q8_act(x: &[f32; 32], qs: &mut [i8; 32]) -> f32 {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = libm::rintf(v * id) as i8;
    }
    d
}

impl BlockFormat for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const BLCK_SIZE: usize = QK8_0;
    type VecDotType = BlockQ8_0;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (x, y) in xs.iter().zip(ys.as_chunks_mut::<QK8_0>().0) {
            let d = x.d.to_f32();
            for (o, &q) in y.iter_mut().zip(&x.qs) {
                *o = q as f32 * d;
            }
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.as_chunks::<QK8_0>().0.iter().zip(ys) {
            y.d = F16::from_f32(quantize_q8(x, &mut y.qs));
        }
    }

    fn from_float_act_with(simd: Simd, xs: &[f32], ys: &mut [Self]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q8_0::quantize_act_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q8_0::quantize_act_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q8_0::quantize_act_neon(xs, ys) },
            _ => quantize_act_unopt(xs, ys),
        }
    }

    fn vec_dot_rows_x4_with(simd: Simd, xs: &[Self], ys: [&[BlockQ8_0]; 4], out: [&mut [f32]; 4]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q8_0::vec_dot_rows_x4_avx512(xs, ys, out) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q8_0::vec_dot_rows_x4_avx2(xs, ys, out) },
            _ => super::rows_x4_row_by_row(simd, xs, ys, out),
        }
    }

    x86_tile_kernels!(q8_0, B32);

    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[BlockQ8_0]) -> f32 {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::q8_0::vec_dot_avx512(xs, ys) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::q8_0::vec_dot_avx2(xs, ys) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { super::arm::q8_0::vec_dot_neon(xs, ys) },
            _ => Self::vec_dot_unopt(xs, ys),
        }
    }

    fn vec_dot_unopt(xs: &[Self], ys: &[BlockQ8_0]) -> f32 {
        let mut sumf = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let sumi: i32 = x.qs.iter().zip(&y.qs).map(|(&a, &b)| a as i32 * b as i32).sum();
            sumf += sumi as f32 * (x.d.to_f32() * y.d.to_f32());
        }
        sumf
    }
}

/// Scalar `from_float_act` (the reference for the SIMD quantizers).
fn quantize_act_unopt(xs: &[f32], ys: &mut [BlockQ8_0]) {
    for (x, y) in xs.as_chunks::<QK8_0>().0.iter().zip(ys) {
        y.d = F16::from_f32(quantize_q8_act(x, &mut y.qs));
    }
}
