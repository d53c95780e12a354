//! RMS normalization.

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use crate::isa::Isa;
use crate::isa::{self, Simd};

/// `Σ x²`, each square rounded to f32 and summed in double precision as ggml does.
fn sum_sq(simd: Simd, x: &[f32]) -> f64 {
    match simd.isa() {
        // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx512 => unsafe { super::x86::elementwise::sum_sq_avx512(x) },
        // SAFETY: as above.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx2 => unsafe { super::x86::elementwise::sum_sq_avx2(x) },
        _ => x.iter().map(|&v| f64::from(v * v)).sum(),
    }
}

/// `1 / sqrt(mean(x²) + eps)`, the mean accumulated in double precision as ggml does.
fn rms_scale(simd: Simd, x: &[f32], eps: f32) -> f32 {
    let mean = (sum_sq(simd, x) / x.len().max(1) as f64) as f32;
    1.0 / libm::sqrtf(mean + eps)
}

/// `out = x / sqrt(mean(x²) + eps) * w`.
pub fn rms_norm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    rms_norm_with(isa::current(), out, x, w, eps);
}

/// [`rms_norm`] with the kernels of `simd`.
pub fn rms_norm_with(simd: Simd, out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    let scale = rms_scale(simd, x, eps);
    match simd.isa() {
        // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx512 => unsafe { super::x86::elementwise::scale_mul_avx512(out, x, w, scale) },
        // SAFETY: as above.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx2 => unsafe { super::x86::elementwise::scale_mul_avx2(out, x, w, scale) },
        _ => {
            for ((o, &v), &wi) in out.iter_mut().zip(x).zip(w) {
                *o = (v * scale) * wi;
            }
        }
    }
}

/// [`rms_norm`] in place: `x = x / sqrt(mean(x²) + eps) * w`.
pub fn rms_norm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    rms_norm_in_place_with(isa::current(), x, w, eps);
}

/// [`rms_norm_in_place`] with the kernels of `simd`.
pub fn rms_norm_in_place_with(simd: Simd, x: &mut [f32], w: &[f32], eps: f32) {
    let scale = rms_scale(simd, x, eps);
    match simd.isa() {
        // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx512 => unsafe { super::x86::elementwise::scale_mul_in_place_avx512(x, w, scale) },
        // SAFETY: as above.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx2 => unsafe { super::x86::elementwise::scale_mul_in_place_avx2(x, w, scale) },
        _ => {
            for (v, &wi) in x.iter_mut().zip(w) {
                *v = (*v * scale) * wi;
            }
        }
    }
}
