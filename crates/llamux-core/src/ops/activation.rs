//! Activation functions.

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

/// ggml's GELU on the CPU: the input rounded to f16 indexes a table of f16 results
/// (`ggml_table_gelu_f16`), with the tails clamped.
pub struct GeluTable {
    table: Vec<F16>,
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
        if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x
        } else {
            let idx = u16::from_le_bytes(F16::from_f32(x).0) as usize;
            self.table.get(idx).map_or(0.0, |v| v.to_f32())
        }
    }
}

impl Default for GeluTable {
    fn default() -> Self {
        Self::new()
    }
}
