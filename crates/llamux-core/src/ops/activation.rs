//! Activation functions.

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use crate::isa::Isa;
use crate::isa::{self, Simd};
use crate::quant::F16;
use alloc::boxed::Box;
use alloc::collections::TryReserveError;
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
    table: Box<GeluEntries>,
}

/// The table's entries: one for every f16 bit pattern, so that every index is in range.
pub(crate) type GeluEntries = [F16; 1 << 16];

/// GELU of `x` from `table` (indexed by the f16 bits of `x`).
#[inline]
fn gelu_lookup(table: &GeluEntries, x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        table[usize::from(u16::from_le_bytes(F16::from_f32(x).0))].to_f32()
    }
}

/// `g[i] = gelu(g[i]) · u[i]` from `table`, one element at a time.
pub(crate) fn gelu_mul_scalar(table: &GeluEntries, g: &mut [f32], u: &[f32]) {
    g.iter_mut().zip(u).for_each(|(g, u)| *g = gelu_lookup(table, *g) * u);
}

impl GeluTable {
    /// Builds the 65 536-entry table (128 KiB); aborts when memory runs out, as `Vec` does
    /// (hosts that must not use [`GeluTable::try_new`]).
    pub fn new() -> Self {
        match Self::try_new() {
            Ok(t) => t,
            Err(_) => alloc::alloc::handle_alloc_error(core::alloc::Layout::new::<GeluEntries>()),
        }
    }

    /// Builds the table, or reports that its memory could not be allocated.
    pub fn try_new() -> Result<Self, TryReserveError> {
        let mut v = Vec::new();
        v.try_reserve_exact(1 << 16)?;
        v.extend((0..=u16::MAX).map(|bits| F16::from_f32(gelu_tanh(F16(bits.to_le_bytes()).to_f32()))));
        // Exactly 65 536 entries: the conversion cannot fail (and does not reallocate).
        let table: Box<GeluEntries> = match v.into_boxed_slice().try_into() {
            Ok(t) => t,
            Err(_) => unreachable!("65 536 entries"),
        };
        Ok(GeluTable { table })
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
