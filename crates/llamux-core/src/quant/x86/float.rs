//! `F32`, `F16` and `BF16` rows: dot products with FMA (f32 lanes, four accumulators; the scalar
//! twins sum in f64, so results agree to f32 rounding), and the `F16`/`BF16` activation
//! converters, bit-identical to the scalar ones (round half to even, NaNs kept quiet).

use super::common::*;
use crate::quant::{BF16, F16};
use core::arch::x86_64::*;

/// Dot product of `n` elements loaded 8 at a time as f32 by `load(i)` (element offset `i`), with
/// a scalar tail of f32 products.
macro_rules! dot_avx2 {
    ($n:expr, $load:expr, $tail:expr) => {{
        let n = $n;
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let (x, y) = $load(i + 8 * k);
                *a = _mm256_fmadd_ps(x, y, *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            let (x, y) = $load(i);
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let tail: f32 = (i..n).map($tail).sum();
        hsum_f32_avx2(v) + tail
    }};
}

/// As [`dot_avx2`], 16 lanes at a time.
macro_rules! dot_avx512 {
    ($n:expr, $load:expr, $tail:expr) => {{
        let n = $n;
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let (x, y) = $load(i + 16 * k);
                *a = _mm512_fmadd_ps(x, y, *a);
            }
            i += 64;
        }
        while i + 16 <= n {
            let (x, y) = $load(i);
            acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
            i += 16;
        }
        let v = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        let tail: f32 = (i..n).map($tail).sum();
        _mm512_reduce_add_ps(v) + tail
    }};
}

/// AVX2 `F32` × `F32`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_f32_avx2(xs: &[f32], ys: &[f32]) -> f32 {
    let n = xs.len().min(ys.len());
    let (px, py) = (xs.as_ptr(), ys.as_ptr());
    // SAFETY: every load reads elements i..i+8 with i + 8 <= n, in bounds of both slices.
    let load = |i: usize| unsafe { (_mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i))) };
    dot_avx2!(n, load, |i| xs[i] * ys[i])
}

/// AVX-512 `F32` × `F32`.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_f32_avx512(xs: &[f32], ys: &[f32]) -> f32 {
    let n = xs.len().min(ys.len());
    let (px, py) = (xs.as_ptr(), ys.as_ptr());
    // SAFETY: every load reads elements i..i+16 with i + 16 <= n, in bounds of both slices.
    let load = |i: usize| unsafe { (_mm512_loadu_ps(px.add(i)), _mm512_loadu_ps(py.add(i))) };
    dot_avx512!(n, load, |i| xs[i] * ys[i])
}

/// AVX2 `F16` × `F16` (F16C conversions).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_f16_avx2(xs: &[F16], ys: &[F16]) -> f32 {
    let n = xs.len().min(ys.len());
    let (px, py) = (xs.as_ptr(), ys.as_ptr());
    // SAFETY: every load reads elements i..i+8 (16 bytes) with i + 8 <= n, in bounds of both.
    let load = |i: usize| unsafe {
        (_mm256_cvtph_ps(_mm_loadu_si128(px.add(i).cast())), _mm256_cvtph_ps(_mm_loadu_si128(py.add(i).cast())))
    };
    dot_avx2!(n, load, |i| f16c_to_f32(xs[i]) * f16c_to_f32(ys[i]))
}

/// AVX-512 `F16` × `F16`: the AVX2 kernel. 512-bit `vcvtph2ps` is slower than two 256-bit ones
/// on Zen 4 (measured 0.7x), and the dot is bound by the conversions.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_f16_avx512(xs: &[F16], ys: &[F16]) -> f32 {
    // SAFETY: the AVX2 tier is part of this one.
    unsafe { vec_dot_f16_avx2(xs, ys) }
}

/// Eight bf16 (16 bytes at `p`) widened to f32.
///
/// # Safety
/// `p` must be valid for reading 16 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_bf16x8(p: *const BF16) -> __m256 {
    // SAFETY: the caller guarantees 16 readable bytes.
    let h = unsafe { _mm_loadu_si128(p.cast()) };
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
}

/// Sixteen bf16 (32 bytes at `p`) widened to f32.
///
/// # Safety
/// `p` must be valid for reading 32 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
unsafe fn load_bf16x16(p: *const BF16) -> __m512 {
    // SAFETY: the caller guarantees 32 readable bytes.
    let h = unsafe { _mm256_loadu_si256(p.cast()) };
    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
}

/// AVX2 `BF16` × `BF16`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_bf16_avx2(xs: &[BF16], ys: &[BF16]) -> f32 {
    let n = xs.len().min(ys.len());
    let (px, py) = (xs.as_ptr(), ys.as_ptr());
    // SAFETY: every load reads elements i..i+8 with i + 8 <= n, in bounds of both slices.
    let load = |i: usize| unsafe { (load_bf16x8(px.add(i)), load_bf16x8(py.add(i))) };
    dot_avx2!(n, load, |i| xs[i].to_f32() * ys[i].to_f32())
}

/// AVX-512 `BF16` × `BF16` (widened by shifting: `avx512bf16` is not part of the tier).
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_bf16_avx512(xs: &[BF16], ys: &[BF16]) -> f32 {
    let n = xs.len().min(ys.len());
    let (px, py) = (xs.as_ptr(), ys.as_ptr());
    // SAFETY: every load reads elements i..i+16 with i + 16 <= n, in bounds of both slices.
    let load = |i: usize| unsafe { (load_bf16x16(px.add(i)), load_bf16x16(py.add(i))) };
    dot_avx512!(n, load, |i| xs[i].to_f32() * ys[i].to_f32())
}

/// AVX2 f32 → `F16` (`vcvtps2ph`, round to nearest even: the scalar conversion bit for bit,
/// NaNs included).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn to_f16_avx2(xs: &[f32], ys: &mut [F16]) {
    let n = xs.len().min(ys.len());
    let (xc, yc) = (xs[..n].as_chunks::<8>(), ys[..n].as_chunks_mut::<8>());
    for (x, y) in xc.0.iter().zip(yc.0) {
        // SAFETY: `x` is 8 floats, `y` 16 bytes.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(x.as_ptr()));
            _mm_storeu_si128(y.as_mut_ptr().cast(), h);
        }
    }
    for (x, y) in xc.1.iter().zip(yc.1) {
        *y = F16::from_f32(*x);
    }
}

/// AVX-512 f32 → `F16`.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn to_f16_avx512(xs: &[f32], ys: &mut [F16]) {
    let n = xs.len().min(ys.len());
    let (xc, yc) = (xs[..n].as_chunks::<16>(), ys[..n].as_chunks_mut::<16>());
    for (x, y) in xc.0.iter().zip(yc.0) {
        // SAFETY: `x` is 16 floats, `y` 32 bytes.
        unsafe {
            let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm512_loadu_ps(x.as_ptr()));
            _mm256_storeu_si256(y.as_mut_ptr().cast(), h);
        }
    }
    // SAFETY: the AVX2 tier is part of this one.
    unsafe { to_f16_avx2(xc.1, yc.1) }
}

/// Eight f32 → bf16 as the scalar [`BF16::from_f32`] rounds them, in `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bf16_bits_avx2(v: __m256) -> __m256i {
    let u = _mm256_castps_si256(v);
    let nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fff_ffff)), _mm256_set1_epi32(0x7f80_0000));
    let hi = _mm256_srli_epi32::<16>(u);
    let quiet = _mm256_or_si256(hi, _mm256_set1_epi32(64));
    let round = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(hi, _mm256_set1_epi32(1)));
    let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(u, round));
    _mm256_blendv_epi8(rounded, quiet, nan)
}

/// AVX2 f32 → `BF16` (the scalar conversion bit for bit).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn to_bf16_avx2(xs: &[f32], ys: &mut [BF16]) {
    let n = xs.len().min(ys.len());
    let (xc, yc) = (xs[..n].as_chunks::<16>(), ys[..n].as_chunks_mut::<16>());
    for (x, y) in xc.0.iter().zip(yc.0) {
        // SAFETY: `x` is 16 floats, `y` 32 bytes.
        unsafe {
            let a = bf16_bits_avx2(_mm256_loadu_ps(x.as_ptr()));
            let b = bf16_bits_avx2(_mm256_loadu_ps(x.as_ptr().add(8)));
            // Lanes are 0..=0xFFFF, so the unsigned pack is exact; it interleaves 128-bit lanes.
            let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(a, b));
            _mm256_storeu_si256(y.as_mut_ptr().cast(), w);
        }
    }
    for (x, y) in xc.1.iter().zip(yc.1) {
        *y = BF16::from_f32(*x);
    }
}

/// AVX-512 f32 → `BF16` (integer rounding as the scalar conversion: `avx512bf16` is not part of
/// the tier, and its `vcvtneps2bf16` treats denormals differently).
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn to_bf16_avx512(xs: &[f32], ys: &mut [BF16]) {
    let n = xs.len().min(ys.len());
    let (xc, yc) = (xs[..n].as_chunks::<16>(), ys[..n].as_chunks_mut::<16>());
    for (x, y) in xc.0.iter().zip(yc.0) {
        // SAFETY: `x` is 16 floats.
        let u = _mm512_castps_si512(unsafe { _mm512_loadu_ps(x.as_ptr()) });
        let nan = _mm512_cmpgt_epu32_mask(
            _mm512_and_si512(u, _mm512_set1_epi32(0x7fff_ffff)),
            _mm512_set1_epi32(0x7f80_0000),
        );
        let hi = _mm512_srli_epi32::<16>(u);
        let round = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(hi, _mm512_set1_epi32(1)));
        let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(u, round));
        let bits = _mm512_mask_or_epi32(rounded, nan, hi, _mm512_set1_epi32(64));
        // SAFETY: `y` is 32 bytes.
        unsafe { _mm256_storeu_si256(y.as_mut_ptr().cast(), _mm512_cvtepi32_epi16(bits)) };
    }
    for (x, y) in xc.1.iter().zip(yc.1) {
        *y = BF16::from_f32(*x);
    }
}
