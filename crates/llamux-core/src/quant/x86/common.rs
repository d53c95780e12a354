//! Intrinsic helpers shared by the x86 kernels. Every helper is a `#[target_feature]` function of
//! the AVX2 tier (callable from either tier's kernels); the `avx512` ones need the AVX-512 tier.

use crate::quant::F16;
use core::arch::x86_64::*;

/// `f16` → `f32` with F16C (exact, as [`F16::to_f32`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f16c_to_f32(h: F16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes(h.0)))))
}

/// Sum of the eight `i32` lanes (wrapping).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum_i32_avx2(a: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
    _mm_cvtsi128_si32(s)
}

/// Sums of the eight `i32` lanes of `a` and of `b` (wrapping), reduced together.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum2_i32_avx2(a: __m256i, b: __m256i) -> (i32, i32) {
    // Lane 0: a0+a1, a2+a3, b0+b1, b2+b3; lane 1: the same of elements 4..8.
    let h = _mm256_hadd_epi32(a, b);
    let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
    let s = _mm_hadd_epi32(s, s);
    (_mm_cvtsi128_si32(s), _mm_extract_epi32::<1>(s))
}

/// Sum of the eight `f32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum_f32_avx2(a: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The sixteen `i32` lanes of `a` folded to eight (wrapping), for [`hsum2_i32_avx2`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn fold_i32_avx512(a: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64::<1>(a))
}

/// The scale vector of `ymm` `4 h + t` of a 16-group K-quant super-block (groups `8h + 2t` in
/// lane 0, `8h + 2t + 1` in lane 1, eight words each), from `half` = [`k16_halves_avx2`]`[h]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k16_scale_pair_avx2(half: __m256i, t_in_half: usize) -> __m256i {
    // Bytes of word 2k in lane 0 and of word 2k + 1 in lane 1, repeated.
    static SHUF: [[u8; 32]; 4] = {
        let mut t = [[0u8; 32]; 4];
        let mut k = 0;
        while k < 4 {
            let mut i = 0;
            while i < 32 {
                let word = if i < 16 { 2 * k } else { 2 * k + 1 };
                t[k][i] = (2 * word + (i & 1)) as u8;
                i += 1;
            }
            k += 1;
        }
        t
    };
    // SAFETY: 32 bytes of a static table (`t_in_half` is clamped to its length).
    let m = unsafe { _mm256_loadu_si256(SHUF[t_in_half & 3].as_ptr().cast()) };
    _mm256_shuffle_epi8(half, m)
}

/// `s16` (16 words, one per group) as two vectors with groups 0..8 and 8..16 in both lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k16_halves_avx2(s16: __m256i) -> [__m256i; 2] {
    [_mm256_permute4x64_epi64::<0x44>(s16), _mm256_permute4x64_epi64::<0xEE>(s16)]
}

/// `vpermw` indices for [`k16_scales_avx512`]: entry `z` repeats words `4z..4z + 4` eight times each.
static K16_IDX_AVX512: [[u16; 32]; 4] = {
    let mut t = [[0u16; 32]; 4];
    let mut z = 0;
    while z < 4 {
        let mut i = 0;
        while i < 32 {
            t[z][i] = (4 * z + i / 8) as u16;
            i += 1;
        }
        z += 1;
    }
    t
};

/// The scale vector of `zmm` `z` (0..4) of a 16-group super-block, from `s16` (words 0..16 of
/// the low half): groups `4z..4z + 4`, eight words each.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn k16_scales_avx512(s16: __m256i, z: usize) -> __m512i {
    // SAFETY: 64 bytes of a static table (`z` clamped to its length).
    let idx = unsafe { _mm512_loadu_si512(K16_IDX_AVX512[z & 3].as_ptr().cast()) };
    _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(s16))
}

/// Bytes `a` in the low 256 bits and `b` in the high (one per 32-lane half), as a `zmm`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn halves_epi8_avx512(a: u8, b: u8) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_set1_epi8(a as i8), _mm256_set1_epi8(b as i8))
}

/// Words `a` in the low 256 bits and `b` in the high, as a `zmm` (shift counts for `vpsrlvw`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn halves_epi16_avx512(a: u16, b: u16) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_set1_epi16(a as i16), _mm256_set1_epi16(b as i16))
}

/// Adds two super-blocks' results to `sumf`, in order, each as the `Q3_K`/`Q6_K` scalar twins
/// compute it: `d * yd * (sum - OFFSET * off)`, where `acc[b]`/`off[b]` hold block `b`'s `i32`
/// lanes of `Σ sc u a` and `Σ sc bsums`, `d[b]` its super-scale and `yd[b]` its activation scale.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn offset_finish2<const LOG2_OFFSET: i32>(
    sumf: f32,
    acc: [__m256i; 2],
    off: [__m256i; 2],
    d: [F16; 2],
    yd: [f32; 2],
) -> f32 {
    // Lanes [sum0, off0, sum1, off1], then [isum0, _, isum1, _] (wrapping, as the twins').
    let h = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], off[0]), _mm256_hadd_epi32(acc[1], off[1]));
    let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
    let isum = _mm_sub_epi32(s, _mm_slli_epi32::<LOG2_OFFSET>(_mm_srli_epi64::<32>(s)));
    let h16 = |v: F16| u16::from_le_bytes(v.0) as i16;
    let half = _mm_setr_epi16(h16(d[0]), 0, h16(d[1]), 0, 0, 0, 0, 0);
    let coef = _mm_mul_ps(_mm_cvtph_ps(half), _mm_setr_ps(yd[0], yd[0], yd[1], yd[1]));
    let terms = _mm_mul_ps(coef, _mm_cvtepi32_ps(isum));
    (sumf + _mm_cvtss_f32(terms)) + _mm_cvtss_f32(_mm_movehl_ps(terms, terms))
}

/// The dot of `Q3_K`/`Q6_K` rows: `$block(x, y)` gives a super-block's `i32` lanes of `Σ sc u a`
/// and `Σ sc bsums`; blocks are finished two at a time ([`offset_finish2`]), then the tail.
macro_rules! offset_dot {
    ($xs:expr, $ys:expr, $block:expr, $log2_offset:literal) => {{
        let n = $xs.len().min($ys.len());
        let (xp, xt) = $xs[..n].as_chunks::<2>();
        let (yp, yt) = $ys[..n].as_chunks::<2>();
        let mut sumf = 0.0f32;
        for (x, y) in xp.iter().zip(yp) {
            let (a0, o0) = $block(&x[0], &y[0]);
            let (a1, o1) = $block(&x[1], &y[1]);
            sumf = offset_finish2::<$log2_offset>(sumf, [a0, a1], [o0, o1], [x[0].d, x[1].d], [y[0].d, y[1].d]);
        }
        for (x, y) in xt.iter().zip(yt) {
            let (acc, off) = $block(x, y);
            let (sum, off) = hsum2_i32_avx2(acc, off);
            let isum = sum.wrapping_sub(off.wrapping_mul(1 << $log2_offset));
            sumf += f16c_to_f32(x.d) * y.d * isum as f32;
        }
        sumf
    }};
}
pub(crate) use offset_dot;

/// [`offset_dot`] for one row against four activation rows: `$block4(x, [y0, y1, y2, y3])`
/// gives each column's lanes for one super-block (the weight block unpacked once); every
/// column is finished as `offset_dot` finishes it, so results are bit-identical.
macro_rules! offset_dot_x4 {
    ($xs:expr, $ys:expr, $block4:expr, $log2_offset:literal) => {{
        let ys = $ys;
        let n = ys.iter().fold($xs.len(), |n, y| n.min(y.len()));
        let (xp, xt) = $xs[..n].as_chunks::<2>();
        let mut sumf = [0.0f32; 4];
        for (i, x) in xp.iter().enumerate() {
            let y0 = [&ys[0][2 * i], &ys[1][2 * i], &ys[2][2 * i], &ys[3][2 * i]];
            let y1 = [&ys[0][2 * i + 1], &ys[1][2 * i + 1], &ys[2][2 * i + 1], &ys[3][2 * i + 1]];
            let r0 = $block4(&x[0], y0);
            let r1 = $block4(&x[1], y1);
            for c in 0..4 {
                sumf[c] = offset_finish2::<$log2_offset>(
                    sumf[c],
                    [r0[c].0, r1[c].0],
                    [r0[c].1, r1[c].1],
                    [x[0].d, x[1].d],
                    [y0[c].d, y1[c].d],
                );
            }
        }
        for (i, x) in xt.iter().enumerate() {
            let at = n - xt.len() + i;
            let y = [&ys[0][at], &ys[1][at], &ys[2][at], &ys[3][at]];
            let r = $block4(x, y);
            for c in 0..4 {
                let (sum, off) = hsum2_i32_avx2(r[c].0, r[c].1);
                let isum = sum.wrapping_sub(off.wrapping_mul(1 << $log2_offset));
                sumf[c] += f16c_to_f32(x.d) * y[c].d * isum as f32;
            }
        }
        sumf
    }};
}
pub(crate) use offset_dot_x4;
