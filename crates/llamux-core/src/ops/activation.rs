//! Activation functions.

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use crate::isa::Isa;
use crate::isa::{self, Simd};
use crate::quant::F16;
use alloc::vec::Vec;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_COEF_A: f32 = 0.044715;

/// GELU, tanh approximation, in f32.
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::tanhf(SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)))
}

/// SiLU: `x * sigmoid(x)`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + libm::expf(-x))
}

/// The gated feed-forward product `g[i] = silu(g[i]) · u[i]` (over the common prefix).
pub fn silu_mul(g: &mut [f32], u: &[f32]) {
    silu_mul_with(isa::current(), g, u);
}

/// [`silu_mul`] with the kernels of `simd` (whose `expf` differs from libm's by at most 1 ulp).
pub fn silu_mul_with(simd: Simd, g: &mut [f32], u: &[f32]) {
    match simd.isa() {
        // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx512 => unsafe { super::x86::elementwise::silu_mul_avx512(g, u) },
        // SAFETY: as above.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx2 => unsafe { super::x86::elementwise::silu_mul_avx2(g, u) },
        _ => g.iter_mut().zip(u).for_each(|(g, u)| *g = silu(*g) * u),
    }
}

/// ggml's GELU on the CPU: the input rounded to f16 indexes a table of f16 results
/// (`ggml_table_gelu_f16`), with the tails clamped.
pub struct GeluTable {
    table: Vec<F16>,
}

/// GELU of `x` from `table` (65 536 entries indexed by f16 bits).
#[inline]
fn gelu_lookup(table: &[F16], x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        let idx = u16::from_le_bytes(F16::from_f32(x).0) as usize;
        table.get(idx).map_or(0.0, |v| v.to_f32())
    }
}

/// `g[i] = gelu(g[i]) · u[i]` from `table`, one element at a time.
pub(crate) fn gelu_mul_scalar(table: &[F16], g: &mut [f32], u: &[f32]) {
    g.iter_mut().zip(u).for_each(|(g, u)| *g = gelu_lookup(table, *g) * u);
}

impl GeluTable {
    /// Builds the 65 536-entry table (128 KiB).
    pub fn new() -> Self {
        let table = (0..=u16::MAX).map(|bits| F16::from_f32(gelu_tanh(F16(bits.to_le_bytes()).to_f32()))).collect();
        GeluTable { table }
    }

    /// GELU of `x` as ggml computes it.
    #[inline]
    pub fn gelu(&self, x: f32) -> f32 {
        gelu_lookup(&self.table, x)
    }

    /// The gated feed-forward product `g[i] = gelu(g[i]) · u[i]` (over the common prefix).
    pub fn gelu_mul(&self, g: &mut [f32], u: &[f32]) {
        self.gelu_mul_with(isa::current(), g, u);
    }

    /// [`gelu_mul`](Self::gelu_mul) with the kernels of `simd` (same results on every tier).
    pub fn gelu_mul_with(&self, simd: Simd, g: &mut [f32], u: &[f32]) {
        match simd.isa() {
            // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx512 => unsafe { super::x86::elementwise::gelu_mul_avx512(&self.table, g, u) },
            // SAFETY: as above.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Isa::Avx2 => unsafe { super::x86::elementwise::gelu_mul_avx2(&self.table, g, u) },
            _ => gelu_mul_scalar(&self.table, g, u),
        }
    }
}

impl Default for GeluTable {
    fn default() -> Self {
        Self::new()
    }
}
