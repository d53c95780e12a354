//! The numeric building blocks of the forward pass, each computed the way ggml's CPU backend does
//! so that results agree with llama.cpp to float rounding.
//!
//! Each op has a `_with(simd, ..)` form choosing its kernels (see [`crate::isa`]); the plain form
//! uses the current tier. The scalar code in each op's file is the reference its SIMD twins
//! (`x86/`) are tested against.

mod activation;
pub mod attention;
mod matvec;
mod norm;
mod rope;
#[cfg(test)]
mod simd_tests;
mod softmax;
// Targets without SSE in their baseline (soft-float `x86_64-unknown-none`) cannot lower the
// vector code; they get the scalar kernels only.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86;

pub use activation::{gelu_tanh, silu, silu_mul, silu_mul_with, GeluTable};
pub use attention::{attend_head, AttnScratch, Window};
pub use matvec::{matvec_fused, project, Matrix, Product, QuantizedInput, MAX_FUSED};
pub use norm::{rms_norm, rms_norm_in_place, rms_norm_in_place_with, rms_norm_with};
pub use rope::{Rope, RopeMode};
pub use softmax::{softmax, softmax_with};
