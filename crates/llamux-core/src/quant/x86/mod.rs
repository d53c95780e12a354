//! x86-64 kernels: AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL, DQ, VNNI) twins of the scalar
//! code in each format's file, one file per format. Every function here is a
//! `#[target_feature]` function; the format files reach them only through an [`crate::isa::Simd`]
//! of the matching tier, which exists only on CPUs that run it.

pub(crate) mod blocks32;
pub(crate) mod common;
pub(crate) mod float;
pub(crate) mod interleaved;
pub(crate) mod interleaved_q4k;
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
pub(crate) mod tile;

#[cfg(test)]
mod tests;
