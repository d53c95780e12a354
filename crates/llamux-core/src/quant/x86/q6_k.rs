//! `Q6_K` × `Q8_K` dot products. The quants are used unsigned (0..64) and the offset of 32 is
//! taken out once per super-block with the activations' group sums:
//! `Σ sc_g Σ (q - 32) a = Σ sc_g Σ q a - 32 Σ sc_g bsums_g`, all exact in `i32`.
//! This relies on `bsums` being the activations' group sums, as every `Q8_K` quantizer makes them.

use super::common::*;
use crate::quant::{BlockQ6K, BlockQ8K};
use core::arch::x86_64::*;

/// The 16 signed group scales as words.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scales16(x: &BlockQ6K) -> __m256i {
    // SAFETY: `scales` is 16 bytes.
    _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(x.scales.as_ptr().cast()) })
}

/// `Σ sc_g bsums_g` as eight `i32` lanes, from the scales as words.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn offset(s16: __m256i, y: &BlockQ8K) -> __m256i {
    // SAFETY: `bsums` is 16 i16 = 32 bytes.
    let bsums = unsafe { _mm256_loadu_si256(y.bsums.as_ptr().cast()) };
    _mm256_madd_epi16(s16, bsums)
}

/// The 16 signed group scales as words, and `Σ sc_g bsums_g` as eight `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scales_and_offset(x: &BlockQ6K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let s16 = scales16(x);
    (s16, offset(s16, y))
}

/// AVX2 `Q6_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx2(xs: &[BlockQ6K], ys: &[BlockQ8K]) -> f32 {
    offset_dot!(xs, ys, block_avx2, 5)
}

/// The 128 unsigned 6-bit quants of half `h` (0 or 1) of a super-block, 32 per vector: element
/// 32k + l of the half is the nibble of ql[l + 32 (k & 1)] (low for k < 2), with bits 2k..2k+2
/// of qh[l] on top.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn quants_half_avx2(x: &BlockQ6K, h: usize) -> [__m256i; 4] {
    let m4 = _mm256_set1_epi8(0x0F);
    let m30 = _mm256_set1_epi8(0x30);
    let h = h & 1;
    // SAFETY: `ql` is 128 bytes and `qh` 64: for h < 2 the loads cover bytes 64h..64h+64 and
    // 32h..32h+32.
    let (ql0, ql1, qh) = unsafe {
        (
            _mm256_loadu_si256(x.ql.as_ptr().add(64 * h).cast()),
            _mm256_loadu_si256(x.ql.as_ptr().add(64 * h + 32).cast()),
            _mm256_loadu_si256(x.qh.as_ptr().add(32 * h).cast()),
        )
    };
    [
        _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m30)),
        _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m30)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4), _mm256_and_si256(qh, m30)),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
            _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m30),
        ),
    ]
}

/// One super-block on AVX2: `i32` lanes of `Σ sc u a` and `Σ sc bsums`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_avx2(x: &BlockQ6K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let (s16, offset) = scales_and_offset(x, y);
    let halves = k16_halves_avx2(s16);
    let mut acc = _mm256_setzero_si256();
    for (h, &half) in halves.iter().enumerate() {
        // SAFETY: `y.qs` is 256 bytes: for h < 2 the loads cover bytes 128h..128h+128.
        let a = unsafe { [0, 1, 2, 3].map(|k| _mm256_loadu_si256(y.qs.as_ptr().add(128 * h + 32 * k).cast())) };
        let q = quants_half_avx2(x, h);
        for k in 0..4 {
            let p = _mm256_maddubs_epi16(q[k], a[k]);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(k16_scale_pair_avx2(half, k), p));
        }
    }
    (acc, offset)
}

/// AVX-512 `Q6_K` × `Q8_K` (`vpdpwssd` folds each group's scale into the accumulation).
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx512(xs: &[BlockQ6K], ys: &[BlockQ8K]) -> f32 {
    offset_dot!(xs, ys, block_avx512, 5)
}

/// The 128 unsigned 6-bit quants of half `h` (0 or 1) of a super-block, 64 per vector: the low
/// nibbles (elements 128h + [0, 64)), then the high nibbles (128h + [64, 128)), each with its two
/// bits of `qh` on top.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn quants_half_avx512(x: &BlockQ6K, h: usize) -> [__m512i; 2] {
    let m4 = _mm512_set1_epi8(0x0F);
    let m30 = _mm512_set1_epi8(0x30);
    // Bits 0..2 (k = 0, low 32 bytes) and 2..4 (k = 1) of qh to bits 4..6; bits 4..6 (k = 2)
    // and 6..8 (k = 3) likewise.
    let shl_lo = halves_epi16_avx512(4, 2);
    let shr_hi = halves_epi16_avx512(0, 2);
    let h = h & 1;
    // SAFETY: `ql` is 128 bytes and `qh` 64: for h < 2 the loads cover bytes 64h..64h+64 and
    // 32h..32h+32.
    let (ql, qh) = unsafe {
        (
            _mm512_loadu_si512(x.ql.as_ptr().add(64 * h).cast()),
            _mm512_broadcast_i64x4(_mm256_loadu_si256(x.qh.as_ptr().add(32 * h).cast())),
        )
    };
    [
        _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, shl_lo), m30)),
        _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16::<4>(ql), m4),
            _mm512_and_si512(_mm512_srlv_epi16(qh, shr_hi), m30),
        ),
    ]
}

/// One super-block on AVX-512: `i32` lanes of `Σ sc u a` and `Σ sc bsums`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn block_avx512(x: &BlockQ6K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let (s16, offset) = scales_and_offset(x, y);
    let mut acc = _mm512_setzero_si512();
    for h in 0..2 {
        // SAFETY: `y.qs` is 256 bytes: for h < 2 the loads cover bytes 128h..128h+128.
        let (a0, a1) = unsafe {
            (
                _mm512_loadu_si512(y.qs.as_ptr().add(128 * h).cast()),
                _mm512_loadu_si512(y.qs.as_ptr().add(128 * h + 64).cast()),
            )
        };
        let [q_lo, q_hi] = quants_half_avx512(x, h);
        acc = _mm512_dpwssd_epi32(acc, k16_scales_avx512(s16, 2 * h), _mm512_maddubs_epi16(q_lo, a0));
        acc = _mm512_dpwssd_epi32(acc, k16_scales_avx512(s16, 2 * h + 1), _mm512_maddubs_epi16(q_hi, a1));
    }
    (fold_i32_avx512(acc), offset)
}

/// [`block_avx2`] for four activation blocks, the weight block unpacked once.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block4_avx2(x: &BlockQ6K, ys: [&BlockQ8K; 4]) -> [(__m256i, __m256i); 4] {
    let s16 = scales16(x);
    let halves = k16_halves_avx2(s16);
    let q = [quants_half_avx2(x, 0), quants_half_avx2(x, 1)];
    let mut out = [(_mm256_setzero_si256(), _mm256_setzero_si256()); 4];
    for (o, y) in out.iter_mut().zip(ys) {
        let mut acc = _mm256_setzero_si256();
        for (h, (&half, qh)) in halves.iter().zip(&q).enumerate() {
            for (k, &qk) in qh.iter().enumerate() {
                // SAFETY: `y.qs` is 256 bytes: bytes 128h + 32k .. + 32 are in bounds for h < 2, k < 4.
                let a = unsafe { _mm256_loadu_si256(y.qs.as_ptr().add(128 * h + 32 * k).cast()) };
                let p = _mm256_maddubs_epi16(qk, a);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(k16_scale_pair_avx2(half, k), p));
            }
        }
        *o = (acc, offset(s16, y));
    }
    out
}

/// AVX2 `Q6_K` × four `Q8_K` rows: `vec_dot_avx2` of each, bit for bit.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_x4_avx2(xs: &[BlockQ6K], ys: [&[BlockQ8K]; 4]) -> [f32; 4] {
    offset_dot_x4!(xs, ys, block4_avx2, 5)
}

/// [`block_avx512`] for four activation blocks, the weight block unpacked once.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn block4_avx512(x: &BlockQ6K, ys: [&BlockQ8K; 4]) -> [(__m256i, __m256i); 4] {
    let s16 = scales16(x);
    let ([q0, q1], [q2, q3]) = (quants_half_avx512(x, 0), quants_half_avx512(x, 1));
    let q = [q0, q1, q2, q3];
    let sc =
        [k16_scales_avx512(s16, 0), k16_scales_avx512(s16, 1), k16_scales_avx512(s16, 2), k16_scales_avx512(s16, 3)];
    let mut out = [(_mm256_setzero_si256(), _mm256_setzero_si256()); 4];
    for (o, y) in out.iter_mut().zip(ys) {
        let mut acc = _mm512_setzero_si512();
        for k in 0..4 {
            // SAFETY: `y.qs` is 256 bytes: bytes 64k..64k+64 are in bounds for k < 4.
            let a = unsafe { _mm512_loadu_si512(y.qs.as_ptr().add(64 * k).cast()) };
            acc = _mm512_dpwssd_epi32(acc, sc[k], _mm512_maddubs_epi16(q[k], a));
        }
        *o = (fold_i32_avx512(acc), offset(s16, y));
    }
    out
}

/// AVX-512 `Q6_K` × four `Q8_K` rows: `vec_dot_avx512` of each, bit for bit.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_x4_avx512(xs: &[BlockQ6K], ys: [&[BlockQ8K]; 4]) -> [f32; 4] {
    offset_dot_x4!(xs, ys, block4_avx512, 5)
}

/// A super-block unpacked for the tile kernels: its quants as unsigned bytes (four per word, in
/// element order), group scales and bsum multipliers; returns its float scales.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tile_unpack(x: &BlockQ6K, w: &mut [i32; 64], sc: &mut [i32; 16], pairs: &mut [i32; 8]) -> [f32; 2] {
    for (sc, &s) in sc.iter_mut().zip(&x.scales) {
        *sc = i32::from(s);
    }
    for (p, s) in pairs.iter_mut().zip(x.scales.as_chunks::<2>().0) {
        *p = i32::from(i16::from(s[0]) as u16) | (i32::from(s[1]) << 16);
    }
    let (m4, m3) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(3));
    for h in 0..2 {
        // SAFETY: `ql` is 128 bytes and `qh` 64, so bytes 64h..64h+64 and 32h..32h+32 are in
        // bounds for h < 2; `w` is 64 words, so words 32h..32h+32 are.
        unsafe {
            let ql0 = _mm256_loadu_si256(x.ql.as_ptr().add(64 * h).cast());
            let ql1 = _mm256_loadu_si256(x.ql.as_ptr().add(64 * h + 32).cast());
            let qh = _mm256_loadu_si256(x.qh.as_ptr().add(32 * h).cast());
            let high = |s: __m256i| _mm256_slli_epi16::<4>(_mm256_and_si256(s, m3));
            let e = [
                _mm256_or_si256(_mm256_and_si256(ql0, m4), high(qh)),
                _mm256_or_si256(_mm256_and_si256(ql1, m4), high(_mm256_srli_epi16::<2>(qh))),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4), high(_mm256_srli_epi16::<4>(qh))),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4), high(_mm256_srli_epi16::<6>(qh))),
            ];
            for (k, e) in e.into_iter().enumerate() {
                _mm256_storeu_si256(w.as_mut_ptr().add(32 * h + 8 * k).cast(), e);
            }
        }
    }
    [f16c_to_f32(x.d), 0.0]
}

crate::quant::x86::tile::k_tile!(
    /// `vec_dot_avx512` of `Q6_K` rows against tokens laid out as tiles, bit for bit.
    vec_dot_tile_avx512, BlockQ6K, 4,
    unpack |x, w, sc, pairs| tile_unpack(x, w, sc, pairs),
    finish |sum, off, yd, d| {
        let isum = _mm512_sub_epi32(sum, _mm512_slli_epi32::<5>(off));
        _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(d[0]), yd), _mm512_cvtepi32_ps(isum))
    }
);

crate::quant::x86::tile::k_tile8!(
    /// `vec_dot_avx2` of `Q6_K` rows against tokens laid out as tiles, eight at a time, bit for bit.
    vec_dot_tile8_avx2, "avx2,fma,f16c", BlockQ6K, 4,
    unpack |x, w, sc, pairs| tile_unpack(x, w, sc, pairs),
    acc |acc, w, y| _mm256_add_epi32(acc, crate::quant::x86::blocks32::legacy_dot_u7i8_avx2(w, y)),
    finish |sum, off, yd, d| {
        let isum = _mm256_sub_epi32(sum, _mm256_slli_epi32::<5>(off));
        _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(d[0]), yd), _mm256_cvtepi32_ps(isum))
    }
);

crate::quant::x86::tile::k_tile8!(
    /// `vec_dot_avx512` of `Q6_K` rows against at most eight tokens laid out as tiles, bit for bit.
    vec_dot_tile8_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ6K, 4,
    unpack |x, w, sc, pairs| tile_unpack(x, w, sc, pairs),
    acc |acc, w, y| _mm256_dpbusd_epi32(acc, w, y),
    finish |sum, off, yd, d| {
        let isum = _mm256_sub_epi32(sum, _mm256_slli_epi32::<5>(off));
        _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(d[0]), yd), _mm256_cvtepi32_ps(isum))
    }
);
