//! `Q3_K` × `Q8_K` dot products. The quants are used unsigned (`low + 4 hbit`, 0..8) and the
//! offset of 4 is taken out once per super-block with the activations' group sums:
//! `Σ sc_g Σ (u - 4) a = Σ sc_g Σ u a - 4 Σ sc_g bsums_g`, all exact in `i32`.
//! This relies on `bsums` being the activations' group sums, as every `Q8_K` quantizer makes them.

use super::common::*;
use crate::quant::{BlockQ3K, BlockQ8K};
use core::arch::x86_64::*;

/// The 16 signed 6-bit scales of a block (`scale - 32`) as bytes, as `BlockQ3K::group_scales`
/// gives them (ggml's `aux`/`utmp` unpacking, in vector lanes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn group_scales(x: &BlockQ3K) -> __m128i {
    const _: () = assert!(core::mem::offset_of!(BlockQ3K, scales) == 96 && core::mem::size_of::<BlockQ3K>() == 110);
    // SAFETY: bytes 94..110 are the last 16 of the 110-byte block; the scales are 96..108.
    let v = _mm_srli_si128::<2>(unsafe { _mm_loadu_si128(bytemuck::bytes_of(x).as_ptr().add(94).cast()) });
    // Low nibbles: lanes [a0, a1, a0 >> 4, a1 >> 4]; high pairs: a2 >> 0, 2, 4, 6.
    let lo = _mm_srlv_epi32(_mm_shuffle_epi32::<0b01_00_01_00>(v), _mm_setr_epi32(0, 0, 4, 4));
    let lo = _mm_and_si128(lo, _mm_set1_epi32(0x0f0f_0f0f));
    let hi = _mm_srlv_epi32(_mm_shuffle_epi32::<0b10_10_10_10>(v), _mm_setr_epi32(0, 2, 4, 6));
    let hi = _mm_slli_epi32::<4>(_mm_and_si128(hi, _mm_set1_epi32(0x0303_0303)));
    _mm_sub_epi8(_mm_or_si128(lo, hi), _mm_set1_epi8(32))
}

/// The 16 signed group scales as words, and `Σ sc_g bsums_g` as eight `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scales_and_offset(x: &BlockQ3K, y: &BlockQ8K) -> (__m256i, __m256i) {
    // SAFETY: `bsums` is 16 i16 = 32 bytes.
    let bsums = unsafe { _mm256_loadu_si256(y.bsums.as_ptr().cast()) };
    let s16 = _mm256_cvtepi8_epi16(group_scales(x));
    (s16, _mm256_madd_epi16(s16, bsums))
}

/// AVX2 `Q3_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx2(xs: &[BlockQ3K], ys: &[BlockQ8K]) -> f32 {
    offset_dot!(xs, ys, block_avx2, 2)
}

/// One super-block on AVX2: `i32` lanes of `Σ sc u a` and `Σ sc bsums`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_avx2(x: &BlockQ3K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm256_set1_epi8(4);
    let (s16, offset) = scales_and_offset(x, y);
    let halves = k16_halves_avx2(s16);
    // SAFETY: `hmask` is 32 bytes.
    let mut hm = unsafe { _mm256_loadu_si256(x.hmask.as_ptr().cast()) };
    let mut acc = _mm256_setzero_si256();
    for (h, &half) in halves.iter().enumerate() {
        // SAFETY: `qs` is 64 bytes: bytes 32h..32h+32 are in bounds for h < 2.
        let mut qs = unsafe { _mm256_loadu_si256(x.qs.as_ptr().add(32 * h).cast()) };
        for j in 0..4 {
            // SAFETY: `y.qs` is 256 bytes: 128h + 32j + 32 <= 256 for h < 2, j < 4.
            let a = unsafe { _mm256_loadu_si256(y.qs.as_ptr().add(128 * h + 32 * j).cast()) };
            // `qs` is shifted right by 2j and `hm` by 4h + j (bits stay within their byte).
            let u = _mm256_or_si256(_mm256_and_si256(qs, m3), _mm256_and_si256(_mm256_slli_epi16::<2>(hm), m4));
            qs = _mm256_srli_epi16::<2>(qs);
            hm = _mm256_srli_epi16::<1>(hm);
            let p = _mm256_maddubs_epi16(u, a);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(k16_scale_pair_avx2(half, j), p));
        }
    }
    (acc, offset)
}

/// AVX-512 `Q3_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx512(xs: &[BlockQ3K], ys: &[BlockQ8K]) -> f32 {
    offset_dot!(xs, ys, block_avx512, 2)
}

/// One super-block on AVX-512: `i32` lanes of `Σ sc u a` and `Σ sc bsums`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn block_avx512(x: &BlockQ3K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let m3 = _mm512_set1_epi8(3);
    let m4 = _mm512_set1_epi8(4);
    // zmm t of half h holds j = 2t (low 32 bytes) and 2t + 1: low bits at 2j, high bit 4h + j.
    let shifts = [halves_epi16_avx512(0, 2), halves_epi16_avx512(4, 6)];
    let bits = [
        [halves_epi8_avx512(1 << 0, 1 << 1), halves_epi8_avx512(1 << 2, 1 << 3)],
        [halves_epi8_avx512(1 << 4, 1 << 5), halves_epi8_avx512(1 << 6, 1 << 7)],
    ];
    let (s16, offset) = scales_and_offset(x, y);
    // SAFETY: `hmask` is 32 bytes.
    let hm = unsafe { _mm512_broadcast_i64x4(_mm256_loadu_si256(x.hmask.as_ptr().cast())) };
    let mut acc = _mm512_setzero_si512();
    for (h, bits_h) in bits.iter().enumerate() {
        // SAFETY: `qs` is 64 bytes: bytes 32h..32h+32 are in bounds for h < 2.
        let qs = unsafe { _mm512_broadcast_i64x4(_mm256_loadu_si256(x.qs.as_ptr().add(32 * h).cast())) };
        for (t, (&shift, &bit)) in shifts.iter().zip(bits_h).enumerate() {
            // SAFETY: `y.qs` is 256 bytes: 128h + 64t + 64 <= 256 for h, t < 2.
            let a = unsafe { _mm512_loadu_si512(y.qs.as_ptr().add(128 * h + 64 * t).cast()) };
            let low = _mm512_and_si512(_mm512_srlv_epi16(qs, shift), m3);
            let u = _mm512_mask_add_epi8(low, _mm512_test_epi8_mask(hm, bit), low, m4);
            acc = _mm512_dpwssd_epi32(acc, k16_scales_avx512(s16, 2 * h + t), _mm512_maddubs_epi16(u, a));
        }
    }
    (fold_i32_avx512(acc), offset)
}
