//! `Q4_K` × `Q8_K` dot products. Per super-block the integer sums are exact; the float formula is
//! the scalar twin's.

use super::common::*;
use crate::quant::{BlockQ4K, BlockQ5K, BlockQ8K, F16};
use core::arch::x86_64::*;

/// Blocks with `Q4_K`'s packed scales: 12 bytes at offset 4, followed by at least 4 more bytes.
pub(crate) trait K4Scales: bytemuck::Pod {}
impl K4Scales for BlockQ4K {}
impl K4Scales for BlockQ5K {}
const _: () = assert!(core::mem::offset_of!(BlockQ4K, scales) == 4 && core::mem::size_of::<BlockQ4K>() >= 20);
const _: () = assert!(core::mem::offset_of!(BlockQ5K, scales) == 4 && core::mem::size_of::<BlockQ5K>() >= 20);

/// The packed 6-bit scales and minimums of a `Q4_K`/`Q5_K` block as 16 bytes: the eight scales,
/// then the eight minimums (ggml's `utmp` unpacking, equal to `scale_min_k4` for each group).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k4_scales_mins_avx2<B: K4Scales>(x: &B) -> __m128i {
    // SAFETY: a `K4Scales` block has at least 20 bytes, so bytes 4..20 are in it.
    let v = unsafe { _mm_loadu_si128(bytemuck::bytes_of(x).as_ptr().add(4).cast()) };
    // Lanes [u0, u2, u1, u2 >> 4] masked to scales/minimums, then the high pairs of the last
    // four: ((u0 >> 6) & 3) << 4 into lane 1 and ((u1 >> 6) & 3) << 4 into lane 3.
    let a = _mm_srlv_epi32(_mm_shuffle_epi32::<0b10_01_10_00>(v), _mm_setr_epi32(0, 0, 0, 4));
    let lo = _mm_and_si128(a, _mm_setr_epi32(0x3f3f_3f3f, 0x0f0f_0f0f, 0x3f3f_3f3f, 0x0f0f_0f0f));
    let b = _mm_srli_epi32::<2>(_mm_shuffle_epi32::<0b01_01_00_00>(v));
    let hi = _mm_and_si128(b, _mm_setr_epi32(0, 0x3030_3030, 0, 0x3030_3030));
    _mm_or_si128(lo, hi)
}

/// `Σ m_g (bsums[2g] + bsums[2g + 1])` as eight `i32` lanes, from the scales/minimums as words
/// (`sm16`: words 8..16 are the minimums).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k4_mins_dot_avx2(sm16: __m256i, y: &BlockQ8K) -> __m256i {
    let mins = _mm256_extracti128_si256::<1>(sm16);
    let dup = _mm256_set_m128i(_mm_unpackhi_epi16(mins, mins), _mm_unpacklo_epi16(mins, mins));
    // SAFETY: `bsums` is 16 i16 = 32 bytes.
    let bsums = unsafe { _mm256_loadu_si256(y.bsums.as_ptr().cast()) };
    _mm256_madd_epi16(dup, bsums)
}

/// Byte-shuffle masks that broadcast word `g` of a lane (the scale of group `g`) to all 16 words.
pub(crate) static K4_SCALE_SHUF: [[u8; 32]; 8] = {
    let mut t = [[0u8; 32]; 8];
    let mut g = 0;
    while g < 8 {
        let mut i = 0;
        while i < 32 {
            t[g][i] = (2 * g + (i & 1)) as u8;
            i += 1;
        }
        g += 1;
    }
    t
};

/// The scale of group `g` (0..8) in all 16 words, from `scales` (the eight scales as words in
/// both lanes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k4_scale_avx2(scales: __m256i, g: usize) -> __m256i {
    // SAFETY: 32 bytes of a static table (`g` clamped to its length).
    let m = unsafe { _mm256_loadu_si256(K4_SCALE_SHUF[g & 7].as_ptr().cast()) };
    _mm256_shuffle_epi8(scales, m)
}

/// `vpshufb` masks: entry `g` picks word `g` (the scale of group `g`) in the low 256 bits and
/// word `g + 1` (mod 8) in the high 256 bits of a vector holding the eight scales as words in
/// every 128-bit lane.
static K4_SHUF_AVX512: [[u8; 64]; 8] = {
    let mut t = [[0u8; 64]; 8];
    let mut g = 0;
    while g < 8 {
        let mut i = 0;
        while i < 64 {
            let word = if i < 32 { g } else { (g + 1) & 7 };
            t[g][i] = (2 * word + (i & 1)) as u8;
            i += 1;
        }
        g += 1;
    }
    t
};

/// The scales of groups `g` (words 0..16) and `g + 1` (words 16..32; `g` < 7), from `sm16` (the
/// eight scales in words 0..8). An in-lane byte shuffle of the scales broadcast to every lane:
/// cheaper than a cross-lane word permutation where 512-bit operations are split in two.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn k4_scale_pair_avx512(sm16: __m256i, g: usize) -> __m512i {
    // SAFETY: 64 bytes of a static table (`g` clamped to its length).
    let m = unsafe { _mm512_loadu_si512(K4_SHUF_AVX512[g & 7].as_ptr().cast()) };
    _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm256_castsi256_si128(sm16)), m)
}

/// Adds two super-blocks' results to `sumf`, in order, each as the scalar twin computes it:
/// `y.d * d * sumi - y.d * dmin * summs`. `acc[b]`/`mins[b]` hold block `b`'s `sumi`/`summs` as
/// `i32` lanes; `dm[b]` its `(d, dmin)`, `yd[b]` its activation scale. The two reductions share
/// their shuffles and the float formula runs in vector lanes (the same roundings).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k4_finish2(sumf: f32, acc: [__m256i; 2], mins: [__m256i; 2], dm: [[F16; 2]; 2], yd: [f32; 2]) -> f32 {
    // Lanes [sumi0, summs0, sumi1, summs1].
    let h = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], mins[0]), _mm256_hadd_epi32(acc[1], mins[1]));
    let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
    let h16 = |v: F16| u16::from_le_bytes(v.0) as i16;
    let half = _mm_setr_epi16(h16(dm[0][0]), h16(dm[0][1]), h16(dm[1][0]), h16(dm[1][1]), 0, 0, 0, 0);
    let coef = _mm_mul_ps(_mm_setr_ps(yd[0], yd[0], yd[1], yd[1]), _mm_cvtph_ps(half));
    let terms = _mm_mul_ps(coef, _mm_cvtepi32_ps(s));
    let r = _mm_hsub_ps(terms, terms);
    (sumf + _mm_cvtss_f32(r)) + _mm_cvtss_f32(_mm_movehdup_ps(r))
}

/// The dot of `Q4_K`-layout rows (`Q4_K`, `Q5_K`): `$block(x, y)` gives a super-block's `sumi`
/// and `summs` as `i32` lanes; blocks are finished two at a time ([`k4_finish2`]), then the tail.
macro_rules! k4_dot {
    ($xs:expr, $ys:expr, $block:expr) => {{
        let n = $xs.len().min($ys.len());
        let (xp, xt) = $xs[..n].as_chunks::<2>();
        let (yp, yt) = $ys[..n].as_chunks::<2>();
        let mut sumf = 0.0f32;
        for (x, y) in xp.iter().zip(yp) {
            let (a0, m0) = $block(&x[0], &y[0]);
            let (a1, m1) = $block(&x[1], &y[1]);
            let dm = [[x[0].d, x[0].dmin], [x[1].d, x[1].dmin]];
            sumf = k4_finish2(sumf, [a0, a1], [m0, m1], dm, [y[0].d, y[1].d]);
        }
        for (x, y) in xt.iter().zip(yt) {
            let (acc, mins) = $block(x, y);
            let (sumi, summs) = hsum2_i32_avx2(acc, mins);
            sumf += y.d * f16c_to_f32(x.d) * sumi as f32 - y.d * f16c_to_f32(x.dmin) * summs as f32;
        }
        sumf
    }};
}
pub(crate) use k4_dot;

/// One `Q4_K` super-block on AVX2: `Σ sc q a` and `Σ m bsums` as `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_avx2(x: &BlockQ4K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let m4 = _mm256_set1_epi8(0x0F);
    let sm16 = _mm256_cvtepu8_epi16(k4_scales_mins_avx2(x));
    let mins = k4_mins_dot_avx2(sm16, y);
    let scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm16));
    let mut acc = _mm256_setzero_si256();
    for j in 0..4 {
        // SAFETY: `qs` is 128 bytes and `y.qs` 256, so bytes 32j..32j+32 and 64j..64j+64 are
        // in bounds for j < 4.
        let (q4, a_lo, a_hi) = unsafe {
            (
                _mm256_loadu_si256(x.qs.as_ptr().add(32 * j).cast()),
                _mm256_loadu_si256(y.qs.as_ptr().add(64 * j).cast()),
                _mm256_loadu_si256(y.qs.as_ptr().add(64 * j + 32).cast()),
            )
        };
        let lo = _mm256_and_si256(q4, m4);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4);
        let p_lo = _mm256_madd_epi16(k4_scale_avx2(scales, 2 * j), _mm256_maddubs_epi16(lo, a_lo));
        let p_hi = _mm256_madd_epi16(k4_scale_avx2(scales, 2 * j + 1), _mm256_maddubs_epi16(hi, a_hi));
        acc = _mm256_add_epi32(acc, _mm256_add_epi32(p_lo, p_hi));
    }
    (acc, mins)
}

/// AVX2 `Q4_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx2(xs: &[BlockQ4K], ys: &[BlockQ8K]) -> f32 {
    k4_dot!(xs, ys, block_avx2)
}

/// One `Q4_K` super-block on AVX-512 (`vpdpwssd` folds each group's scale into the
/// accumulation): `Σ sc q a` and `Σ m bsums` as `i32` lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn block_avx512(x: &BlockQ4K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let m4 = _mm512_set1_epi8(0x0F);
    let nibble_shift = halves_epi16_avx512(0, 4);
    let sm16 = _mm256_cvtepu8_epi16(k4_scales_mins_avx2(x));
    let mins = k4_mins_dot_avx2(sm16, y);
    let mut acc = _mm512_setzero_si512();
    for p in 0..4 {
        // SAFETY: `qs` is 128 bytes and `y.qs` 256: bytes 32p..32p+32 and 64p..64p+64 are in
        // bounds for p < 4.
        let (q4, a) = unsafe {
            (
                _mm512_broadcast_i64x4(_mm256_loadu_si256(x.qs.as_ptr().add(32 * p).cast())),
                _mm512_loadu_si512(y.qs.as_ptr().add(64 * p).cast()),
            )
        };
        // Low nibbles (elements 64p + [0, 32)) in the low half, high nibbles in the high half.
        let w = _mm512_and_si512(_mm512_srlv_epi16(q4, nibble_shift), m4);
        acc = _mm512_dpwssd_epi32(acc, k4_scale_pair_avx512(sm16, 2 * p), _mm512_maddubs_epi16(w, a));
    }
    (fold_i32_avx512(acc), mins)
}

/// AVX-512 `Q4_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx512(xs: &[BlockQ4K], ys: &[BlockQ8K]) -> f32 {
    k4_dot!(xs, ys, block_avx512)
}

/// [`k4_dot`] for one row against four activation rows: `$block4(x, [y0, y1, y2, y3])` gives
/// each column's `sumi`/`summs` lanes for one super-block (the weight block unpacked once);
/// every column is finished exactly as `k4_dot` finishes it, so results are bit-identical.
macro_rules! k4_dot_x4 {
    ($xs:expr, $ys:expr, $block4:expr) => {{
        let ys = $ys;
        let n = ys.iter().fold($xs.len(), |n, y| n.min(y.len()));
        let (xp, xt) = $xs[..n].as_chunks::<2>();
        let mut sumf = [0.0f32; 4];
        for (i, x) in xp.iter().enumerate() {
            let y0 = [&ys[0][2 * i], &ys[1][2 * i], &ys[2][2 * i], &ys[3][2 * i]];
            let y1 = [&ys[0][2 * i + 1], &ys[1][2 * i + 1], &ys[2][2 * i + 1], &ys[3][2 * i + 1]];
            let r0 = $block4(&x[0], y0);
            let r1 = $block4(&x[1], y1);
            let dm = [[x[0].d, x[0].dmin], [x[1].d, x[1].dmin]];
            for c in 0..4 {
                sumf[c] = k4_finish2(sumf[c], [r0[c].0, r1[c].0], [r0[c].1, r1[c].1], dm, [y0[c].d, y1[c].d]);
            }
        }
        for (i, x) in xt.iter().enumerate() {
            let at = n - xt.len() + i;
            let y = [&ys[0][at], &ys[1][at], &ys[2][at], &ys[3][at]];
            let r = $block4(x, y);
            for c in 0..4 {
                let (sumi, summs) = hsum2_i32_avx2(r[c].0, r[c].1);
                sumf[c] += y[c].d * f16c_to_f32(x.d) * sumi as f32 - y[c].d * f16c_to_f32(x.dmin) * summs as f32;
            }
        }
        sumf
    }};
}

/// [`block_avx2`] for four activation blocks, the weight block unpacked once.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block4_avx2(x: &BlockQ4K, ys: [&BlockQ8K; 4]) -> [(__m256i, __m256i); 4] {
    let m4 = _mm256_set1_epi8(0x0F);
    let sm16 = _mm256_cvtepu8_epi16(k4_scales_mins_avx2(x));
    let scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm16));
    let mut lo = [_mm256_setzero_si256(); 4];
    let mut hi = [_mm256_setzero_si256(); 4];
    for j in 0..4 {
        // SAFETY: `qs` is 128 bytes, so bytes 32j..32j+32 are in bounds for j < 4.
        let q4 = unsafe { _mm256_loadu_si256(x.qs.as_ptr().add(32 * j).cast()) };
        lo[j] = _mm256_and_si256(q4, m4);
        hi[j] = _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4);
    }
    let mut out = [(_mm256_setzero_si256(), _mm256_setzero_si256()); 4];
    for (o, y) in out.iter_mut().zip(ys) {
        let mut acc = _mm256_setzero_si256();
        for j in 0..4 {
            // SAFETY: `y.qs` is 256 bytes, so bytes 64j..64j+64 are in bounds for j < 4.
            let (a_lo, a_hi) = unsafe {
                (
                    _mm256_loadu_si256(y.qs.as_ptr().add(64 * j).cast()),
                    _mm256_loadu_si256(y.qs.as_ptr().add(64 * j + 32).cast()),
                )
            };
            let p_lo = _mm256_madd_epi16(k4_scale_avx2(scales, 2 * j), _mm256_maddubs_epi16(lo[j], a_lo));
            let p_hi = _mm256_madd_epi16(k4_scale_avx2(scales, 2 * j + 1), _mm256_maddubs_epi16(hi[j], a_hi));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p_lo, p_hi));
        }
        *o = (acc, k4_mins_dot_avx2(sm16, y));
    }
    out
}

/// AVX2 `Q4_K` × four `Q8_K` rows: `vec_dot_avx2` of each, bit for bit.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_x4_avx2(xs: &[BlockQ4K], ys: [&[BlockQ8K]; 4]) -> [f32; 4] {
    k4_dot_x4!(xs, ys, block4_avx2)
}

/// [`block_avx512`] for four activation blocks, the weight block unpacked once.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn block4_avx512(x: &BlockQ4K, ys: [&BlockQ8K; 4]) -> [(__m256i, __m256i); 4] {
    let m4 = _mm512_set1_epi8(0x0F);
    let nibble_shift = halves_epi16_avx512(0, 4);
    let sm16 = _mm256_cvtepu8_epi16(k4_scales_mins_avx2(x));
    let mut w = [_mm512_setzero_si512(); 4];
    let mut sc = [_mm512_setzero_si512(); 4];
    for p in 0..4 {
        // SAFETY: `qs` is 128 bytes: bytes 32p..32p+32 are in bounds for p < 4.
        let q4 = unsafe { _mm512_broadcast_i64x4(_mm256_loadu_si256(x.qs.as_ptr().add(32 * p).cast())) };
        w[p] = _mm512_and_si512(_mm512_srlv_epi16(q4, nibble_shift), m4);
        sc[p] = k4_scale_pair_avx512(sm16, 2 * p);
    }
    let mut out = [(_mm256_setzero_si256(), _mm256_setzero_si256()); 4];
    for (o, y) in out.iter_mut().zip(ys) {
        let mut acc = _mm512_setzero_si512();
        for p in 0..4 {
            // SAFETY: `y.qs` is 256 bytes: bytes 64p..64p+64 are in bounds for p < 4.
            let a = unsafe { _mm512_loadu_si512(y.qs.as_ptr().add(64 * p).cast()) };
            acc = _mm512_dpwssd_epi32(acc, sc[p], _mm512_maddubs_epi16(w[p], a));
        }
        *o = (fold_i32_avx512(acc), k4_mins_dot_avx2(sm16, y));
    }
    out
}

/// AVX-512 `Q4_K` × four `Q8_K` rows: `vec_dot_avx512` of each, bit for bit.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_x4_avx512(xs: &[BlockQ4K], ys: [&[BlockQ8K]; 4]) -> [f32; 4] {
    k4_dot_x4!(xs, ys, block4_avx512)
}

/// A super-block unpacked for the tile kernels: its quants as unsigned bytes (four per word, in
/// element order), group scales and bsum multipliers; returns its float scales.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tile_unpack(x: &BlockQ4K, w: &mut [i32; 64], sc: &mut [i32; 16], pairs: &mut [i32; 8]) -> [f32; 2] {
    let sm: [u8; 16] = bytemuck::cast(k4_scales_mins_avx2(x));
    for ((sc, p), (&s, &m)) in sc.iter_mut().zip(pairs.iter_mut()).zip(sm.iter().zip(&sm[8..])) {
        *sc = i32::from(s);
        *p = i32::from(m) * 0x1_0001;
    }
    let m4 = _mm256_set1_epi8(0x0F);
    for p in 0..4 {
        // SAFETY: `qs` is 128 bytes, so bytes 32p..32p+32 are in bounds for p < 4; `w` is 64
        // words, so words 16p..16p+16 are.
        unsafe {
            let q4 = _mm256_loadu_si256(x.qs.as_ptr().add(32 * p).cast());
            _mm256_storeu_si256(w.as_mut_ptr().add(16 * p).cast(), _mm256_and_si256(q4, m4));
            _mm256_storeu_si256(
                w.as_mut_ptr().add(16 * p + 8).cast(),
                _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4),
            );
        }
    }
    [f16c_to_f32(x.d), f16c_to_f32(x.dmin)]
}

crate::quant::x86::tile::k_tile!(
    /// `vec_dot_avx512` of `Q4_K` rows against tokens laid out as tiles, bit for bit.
    vec_dot_tile_avx512, BlockQ4K, 8,
    unpack |x, w, sc, pairs| tile_unpack(x, w, sc, pairs),
    finish |sum, mins, yd, d| {
        let t = _mm512_mul_ps(_mm512_mul_ps(yd, _mm512_set1_ps(d[0])), _mm512_cvtepi32_ps(sum));
        let m = _mm512_mul_ps(_mm512_mul_ps(yd, _mm512_set1_ps(d[1])), _mm512_cvtepi32_ps(mins));
        _mm512_sub_ps(t, m)
    }
);

crate::quant::x86::tile::k_tile8!(
    /// `vec_dot_avx2` of `Q4_K` rows against tokens laid out as tiles, eight at a time, bit for bit.
    vec_dot_tile8_avx2, "avx2,fma,f16c", BlockQ4K, 8,
    unpack |x, w, sc, pairs| tile_unpack(x, w, sc, pairs),
    acc |acc, w, y| _mm256_add_epi32(acc, crate::quant::x86::blocks32::legacy_dot_u7i8_avx2(w, y)),
    finish |sum, mins, yd, d| {
        let t = _mm256_mul_ps(_mm256_mul_ps(yd, _mm256_set1_ps(d[0])), _mm256_cvtepi32_ps(sum));
        let m = _mm256_mul_ps(_mm256_mul_ps(yd, _mm256_set1_ps(d[1])), _mm256_cvtepi32_ps(mins));
        _mm256_sub_ps(t, m)
    }
);

crate::quant::x86::tile::k_tile8!(
    /// `vec_dot_avx512` of `Q4_K` rows against at most eight tokens laid out as tiles, bit for bit.
    vec_dot_tile8_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ4K, 8,
    unpack |x, w, sc, pairs| tile_unpack(x, w, sc, pairs),
    acc |acc, w, y| _mm256_dpbusd_epi32(acc, w, y),
    finish |sum, mins, yd, d| {
        let t = _mm256_mul_ps(_mm256_mul_ps(yd, _mm256_set1_ps(d[0])), _mm256_cvtepi32_ps(sum));
        let m = _mm256_mul_ps(_mm256_mul_ps(yd, _mm256_set1_ps(d[1])), _mm256_cvtepi32_ps(mins));
        _mm256_sub_ps(t, m)
    }
);
