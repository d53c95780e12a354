//! Quantized block formats.
//!
//! Each format is a `#[repr(C)]` block struct (with a compile-time size check) implementing
//! [`BlockFormat`]: dequantize ([`to_float`](BlockFormat::to_float)), quantize
//! ([`from_float`](BlockFormat::from_float)) and the fused dot product of a weight row with
//! activations quantized to the format ggml pairs it with ([`BlockFormat::VecDotType`]).
//! `vec_dot_unopt` is the scalar reference; `vec_dot` is what the engine calls, and is where a SIMD
//! kernel goes, checked against its twin by the tests.
//!
//! All block structs have alignment 1 (half-precision fields are stored as little-endian bytes),
//! so any `&[u8]` of the right length — an mmap'd tensor, a kernel buffer — can be viewed as blocks
//! in place. [`traits`] gives the same operations by [`GgmlType`] over byte slices.

/// [`BlockFormat::vec_dot_tile_with`] of a format whose x86 tile kernels are in
/// `quant/x86/$m.rs` and take `Tiles::$v`: on AVX-512 the eight-token kernel for batches of at
/// most eight and the sixteen-token one beyond; on AVX2 the eight-token kernel.
macro_rules! x86_tile_kernels {
    ($m:ident, $v:ident) => {
        fn vec_dot_tile_with(simd: Simd, xs: &[Self], tiles: super::tiles::Tiles<'_>, out: &mut [f32]) -> bool {
            match (simd.isa(), tiles) {
                // SAFETY (each arm): a `Simd` of a tier exists only when the CPU runs that tier.
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                (Isa::Avx512, super::tiles::Tiles::$v { tiles, blocks, tokens, .. }) if tokens <= 8 => {
                    unsafe { super::x86::$m::vec_dot_tile8_avx512(xs, tiles, blocks, tokens, out) };
                    true
                }
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                (Isa::Avx512, super::tiles::Tiles::$v { tiles, blocks, .. }) => {
                    unsafe { super::x86::$m::vec_dot_tile_avx512(xs, tiles, blocks, out) };
                    true
                }
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                (Isa::Avx2, super::tiles::Tiles::$v { tiles, blocks, tokens, .. }) => {
                    unsafe { super::x86::$m::vec_dot_tile8_avx2(xs, tiles, blocks, tokens, out) };
                    true
                }
                _ => {
                    let _ = (xs, out);
                    false
                }
            }
        }
    };
}

#[cfg(target_arch = "aarch64")]
mod arm;
mod float;
mod half_types;
pub mod interleaved;
mod kquant_search;
mod q2_k;
mod q3_k;
mod q4_0;
mod q4_1;
mod q4_k;
mod q5_0;
mod q5_1;
mod q5_k;
mod q6_k;
mod q8_0;
mod q8_1;
mod q8_k;
pub mod tiles;
mod type_traits;
// Soft-float x86-64 targets (`x86_64-unknown-none`) have no vector registers for LLVM to use,
// even inside `#[target_feature]` functions, so they get the scalar code only.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86;

pub use half_types::{BF16, F16};
pub use q2_k::BlockQ2K;
pub use q3_k::BlockQ3K;
pub use q4_0::BlockQ4_0;
pub use q4_1::BlockQ4_1;
pub use q4_k::BlockQ4K;
pub use q5_0::BlockQ5_0;
pub use q5_1::BlockQ5_1;
pub use q5_k::BlockQ5K;
pub use q6_k::BlockQ6K;
pub use q8_0::BlockQ8_0;
pub use q8_1::BlockQ8_1;
pub use q8_k::BlockQ8K;
pub use type_traits::{supported_types, traits, QuantError, TypeTraits};

pub use crate::gguf::GgmlType;
pub use crate::gguf::QK_K;
pub use crate::isa::Simd;

/// One block format: a fixed number of elements stored in a fixed number of bytes.
///
/// Slices passed to these functions must agree in length (`ys.len() == xs.len() * BLCK_SIZE`,
/// and equal block counts for `vec_dot`); [`traits`] checks that for byte-level callers. On a
/// mismatch the functions work on the common prefix; they never panic.
pub trait BlockFormat: bytemuck::Pod + Send + Sync + 'static {
    /// The ggml type this block stores.
    const TYPE: GgmlType;
    /// Elements per block.
    const BLCK_SIZE: usize;
    /// The block type activations are quantized to for [`vec_dot`](Self::vec_dot).
    type VecDotType: BlockFormat;

    /// Dequantizes `xs` into `ys`.
    fn to_float(xs: &[Self], ys: &mut [f32]);

    /// Quantizes `xs` into `ys` (ggml's reference quantizer for the format).
    fn from_float(xs: &[f32], ys: &mut [Self]);

    /// Quantizes activations for [`vec_dot`](Self::vec_dot) the way ggml's CPU backend does on
    /// x86 (for `Q8_0`/`Q8_1`: scale `127/amax`, round half to even), so that results track
    /// llama.cpp's; the reference quantizer for every other format.
    fn from_float_act(xs: &[f32], ys: &mut [Self]) {
        Self::from_float_act_with(crate::isa::current(), xs, ys)
    }

    /// [`from_float_act`](Self::from_float_act) with the kernels of `simd`; every tier gives
    /// the scalar quantizer's blocks bit for bit. Formats without SIMD quantizers use the scalar one.
    fn from_float_act_with(simd: Simd, xs: &[f32], ys: &mut [Self]) {
        let _ = simd;
        Self::from_float(xs, ys)
    }

    /// Dot product of a weight row with quantized activations (fastest kernel available).
    fn vec_dot(xs: &[Self], ys: &[Self::VecDotType]) -> f32 {
        Self::vec_dot_with(crate::isa::current(), xs, ys)
    }

    /// [`vec_dot`](Self::vec_dot) with the kernels of `simd` (the SIMD kernel of that tier where
    /// the format has one, else the scalar twin). Results agree with the twin to float rounding.
    fn vec_dot_with(simd: Simd, xs: &[Self], ys: &[Self::VecDotType]) -> f32 {
        let _ = simd;
        Self::vec_dot_unopt(xs, ys)
    }

    /// `out[r] = xs_row_r · ys` for the `out.len()` consecutive rows of `xs` (each as long as `ys`):
    /// a matrix–vector product's inner loop, where a format may read several rows per pass.
    fn vec_dot_rows_with(simd: Simd, xs: &[Self], ys: &[Self::VecDotType], out: &mut [f32]) {
        let per_row = (ys.len() * Self::VecDotType::BLCK_SIZE / Self::BLCK_SIZE).max(1);
        for (row, o) in xs.chunks_exact(per_row).zip(out) {
            *o = Self::vec_dot_with(simd, row, ys);
        }
    }

    /// `[xs · ys[0], …, xs · ys[3]]`: one weight row against four activation rows (a batch's
    /// inner loop), where a format may unpack each weight block once for all four. Each result
    /// is [`vec_dot_with`](Self::vec_dot_with)'s for that pair, bit for bit.
    fn vec_dot_x4_with(simd: Simd, xs: &[Self], ys: [&[Self::VecDotType]; 4]) -> [f32; 4] {
        ys.map(|y| Self::vec_dot_with(simd, xs, y))
    }

    /// `out[c][r] = xs_row_r · ys[c]` for the consecutive rows of `xs` (each as long as `ys[0]`)
    /// and four activation rows of equal length; `out[c]` has one value per row. Each result is
    /// [`vec_dot_with`](Self::vec_dot_with)'s for that pair, bit for bit. By default one
    /// [`vec_dot_x4_with`](Self::vec_dot_x4_with) per row; a format may tile rows and blocks.
    fn vec_dot_rows_x4_with(simd: Simd, xs: &[Self], ys: [&[Self::VecDotType]; 4], out: [&mut [f32]; 4]) {
        rows_x4_row_by_row(simd, xs, ys, out);
    }

    /// `out[c * n_rows + r] = xs_row_r · token c` for the `n_rows` consecutive rows of `xs` and
    /// every token of `tiles` (padding included: `out` has `tiles.groups() * TILE_COLS * n_rows`
    /// values): a matrix × matrix product's inner loop. Each result is
    /// [`vec_dot_with`](Self::vec_dot_with)'s for that pair, bit for bit. Returns `false`, having
    /// written nothing, where the format has no tile kernel for `simd` or these tiles.
    fn vec_dot_tile_with(simd: Simd, xs: &[Self], tiles: tiles::Tiles<'_>, out: &mut [f32]) -> bool {
        let _ = (simd, xs, tiles, out);
        false
    }

    /// Scalar reference of [`vec_dot`](Self::vec_dot).
    fn vec_dot_unopt(xs: &[Self], ys: &[Self::VecDotType]) -> f32;
}

/// [`BlockFormat::vec_dot_rows_x4_with`] one row at a time through
/// [`BlockFormat::vec_dot_x4_with`]: the default, and the fallback of formats that tile.
pub(crate) fn rows_x4_row_by_row<B: BlockFormat>(
    simd: Simd,
    xs: &[B],
    ys: [&[B::VecDotType]; 4],
    out: [&mut [f32]; 4],
) {
    let per_row = (ys[0].len() * B::VecDotType::BLCK_SIZE / B::BLCK_SIZE).max(1);
    let [o0, o1, o2, o3] = out;
    for ((((row, o0), o1), o2), o3) in
        xs.chunks_exact(per_row).zip(o0.iter_mut()).zip(o1.iter_mut()).zip(o2.iter_mut()).zip(o3.iter_mut())
    {
        [*o0, *o1, *o2, *o3] = B::vec_dot_x4_with(simd, row, ys);
    }
}

/// ggml's `nearest_int`: round to nearest, ties to even, for |x| < 2^22.
#[inline]
pub(crate) fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

#[cfg(test)]
mod simd_tests;
#[cfg(test)]
mod tests;
