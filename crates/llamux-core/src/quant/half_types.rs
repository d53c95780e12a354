//! 16-bit float storage types with alignment 1.

use bytemuck::{Pod, Zeroable};

/// An IEEE half-precision float stored as two little-endian bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(transparent)]
pub struct F16(pub [u8; 2]);

impl F16 {
    /// Positive zero.
    pub const ZERO: F16 = F16([0, 0]);

    /// Widens to `f32` (exact).
    #[inline]
    pub fn to_f32(self) -> f32 {
        half::f16::from_bits(u16::from_le_bytes(self.0)).to_f32()
    }

    /// Rounds an `f32` to nearest-even half precision, as ggml does.
    #[inline]
    pub fn from_f32(x: f32) -> Self {
        F16(half::f16::from_f32(x).to_bits().to_le_bytes())
    }
}

/// A bfloat16 stored as two little-endian bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(transparent)]
pub struct BF16(pub [u8; 2]);

impl BF16 {
    /// Widens to `f32` (exact).
    #[inline]
    pub fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(u16::from_le_bytes(self.0)) << 16)
    }

    /// Rounds an `f32` to nearest-even bfloat16, quieting NaNs (ggml's `ggml_compute_fp32_to_bf16`).
    #[inline]
    pub fn from_f32(x: f32) -> Self {
        let u = x.to_bits();
        let bits = if u & 0x7fff_ffff > 0x7f80_0000 { (u >> 16) | 64 } else { (u + (0x7fff + ((u >> 16) & 1))) >> 16 };
        BF16((bits as u16).to_le_bytes())
    }
}
