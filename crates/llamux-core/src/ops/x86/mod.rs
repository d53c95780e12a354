//! x86-64 kernels of the forward pass's element-wise ops and attention: AVX2 (+FMA, F16C) and
//! AVX-512 twins of the scalar code in each op's file. Every function here is a
//! `#[target_feature]` function; the op files reach them only through an [`crate::isa::Simd`]
//! of the matching tier, which exists only on CPUs that run it.

pub(crate) mod attention;
pub(crate) mod common;
pub(crate) mod elementwise;
