//! Softmax.

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use crate::isa::Isa;
use crate::isa::{self, Simd};

/// In-place softmax: subtract the maximum, exponentiate, normalize (sum in double precision).
pub fn softmax(x: &mut [f32]) {
    softmax_with(isa::current(), x);
}

/// [`softmax`] with the kernels of `simd` (whose `expf` differs from libm's by at most 1 ulp).
pub fn softmax_with(simd: Simd, x: &mut [f32]) {
    match simd.isa() {
        // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx512 => unsafe { super::x86::elementwise::softmax_avx512(x) },
        // SAFETY: as above.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx2 => unsafe { super::x86::elementwise::softmax_avx2(x) },
        _ => softmax_scalar(x),
    }
}

fn softmax_scalar(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    if max == f32::NEG_INFINITY {
        return;
    }
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}
