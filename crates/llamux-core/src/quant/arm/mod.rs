//! aarch64 Advanced SIMD (NEON) kernels: twins of the scalar code in each format's file, one file
//! per format. Integer dot products use `sdot` (`vdotq_s32`) when the CPU has the dotprod
//! extension and `smull`/`sadalp` otherwise; the choice is made once per call from a cached
//! feature check ([`common::dotprod`]), so both paths sit behind the one [`crate::isa::Isa::Neon`]
//! tier. The format files reach these functions only through a [`crate::isa::Simd`] of that tier.

pub(crate) mod common;
pub(crate) mod float;
pub(crate) mod q2_k;
pub(crate) mod q3_k;
pub(crate) mod q4_0;
pub(crate) mod q4_1;
pub(crate) mod q4_k;
pub(crate) mod q5_0;
pub(crate) mod q5_1;
pub(crate) mod q5_k;
pub(crate) mod q6_k;
pub(crate) mod q8_0;
pub(crate) mod q8_1;
pub(crate) mod q8_k;

#[cfg(test)]
mod tests;
