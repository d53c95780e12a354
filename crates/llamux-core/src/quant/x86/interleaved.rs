//! Kernels for row-interleaved weights ([`crate::quant::interleaved`]): eight rows in the eight
//! `i32` lanes of a vector, up to eight tokens (AVX-512; four on AVX2) per pass over a group's blocks. Per block, the
//! weights are unpacked once to eight vectors of unsigned bytes (vector `k` pairs with the
//! activations' word `k`, elements `4k..4k + 4`); per token, each word of four activations,
//! in all eight lanes, meets all eight rows in one `vpdpbusd` (AVX-512 VNNI; the word broadcast
//! from the block) or `maddubs` (AVX2; the word read as spread in [`BlockSums`], a load where a
//! broadcast would take a vector pipe on AMD's cores), and the block is finished in f32 lanes
//! exactly as the scalar twin finishes it.

use crate::quant::interleaved::{BlockSums, MAX_TOKENS, ROWS};
use core::arch::x86_64::*;

/// Word `k` of a block's activations in every lane, as [`BlockSums`] spreads it.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn spread_word(s: &BlockSums, k: usize) -> __m256i {
    // SAFETY: 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(s.word(k).as_ptr().cast()) }
}

/// Word `k` of a block's activations in every lane as the AVX2 kernels read it for `N` tokens: a
/// batch's words as [`BlockSums`] spreads them (a load each); one token's broadcast from the
/// block (the weights stream from memory then, and the words stay in a few cache lines).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn act_avx2<const N: usize>(qs: &[i8; 32], s: &BlockSums, k: usize) -> __m256i {
    if N == 1 {
        act_word(qs, k)
    } else {
        spread_word(s, k)
    }
}

/// Word `k` of a block's activations in every lane as the AVX-512 kernels read it: broadcast
/// from the block (a broadcast is a load on Intel's cores).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn act_avx512<const N: usize>(qs: &[i8; 32], _: &BlockSums, k: usize) -> __m256i {
    act_word(qs, k)
}

/// Eight floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn lanes_ps(v: &[f32; ROWS]) -> __m256 {
    // SAFETY: eight readable floats; the load is unaligned.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

/// Eight `i32`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn lanes_epi32(v: &[i32; ROWS]) -> __m256i {
    // SAFETY: eight readable `i32`; the load is unaligned.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// Word `k` of a block's 32 activation quants in every lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn act_word(qs: &[i8; 32], k: usize) -> __m256i {
    let k = k % 8;
    let w = i32::from_le_bytes([qs[4 * k] as u8, qs[4 * k + 1] as u8, qs[4 * k + 2] as u8, qs[4 * k + 3] as u8]);
    _mm256_set1_epi32(w)
}

/// The eight scales (or minimums) of an interleaved block as floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn scales8(h: &[crate::quant::F16; ROWS]) -> __m256 {
    // SAFETY: eight f16 are 16 readable bytes; the load is unaligned.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(h.as_ptr().cast()) })
}

/// Word `t` (32 bytes) of `q`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn word(q: &[u8], t: usize) -> __m256i {
    match q.get(32 * t..32 * t + 32) {
        // SAFETY: 32 readable bytes; the load is unaligned.
        Some(w) => unsafe { _mm256_loadu_si256(w.as_ptr().cast()) },
        None => _mm256_setzero_si256(),
    }
}

/// The eight vectors of a 4-bit interleaved block's quants (`qs`), fifth bits from `qh` where given.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn nibbles8(qs: &[u8; 128], qh: Option<&[u8; 32]>) -> [__m256i; 8] {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut w = [_mm256_setzero_si256(); 8];
    for t in 0..4 {
        let v = word(qs, t);
        w[t] = _mm256_and_si256(v, m4);
        w[t + 4] = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
    }
    if let Some(qh) = qh {
        let h = word(qh, 0);
        let b4 = _mm256_set1_epi8(0x10);
        for t in 0..4 {
            let lo = _mm256_sllv_epi32(h, _mm256_set1_epi32(4 - t as i32));
            let hi = _mm256_srlv_epi32(h, _mm256_set1_epi32(t as i32));
            w[t] = _mm256_or_si256(w[t], _mm256_and_si256(lo, b4));
            w[t + 4] = _mm256_or_si256(w[t + 4], _mm256_and_si256(hi, b4));
        }
    }
    w
}

/// Writes the eight lanes of `v` (rows `8g..8g + 8`) to `out`, as far as it reaches.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn store_rows(out: &mut [f32], g: usize, v: __m256) {
    let mut a = [0.0f32; ROWS];
    // SAFETY: eight writable floats; the store is unaligned.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), v) };
    if let Some(o) = out.get_mut(g * ROWS..) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = a;
        }
    }
}

/// How far ahead of the block being multiplied the kernels prefetch weights: a few KiB, the
/// DRAM latency's worth of the weights the kernels stream through.
const PREFETCH_BYTES: usize = 2048;

/// Prefetches the cache lines [`PREFETCH_BYTES`] past the start of `x` (as many as `x` spans):
/// batches spend long enough on each block that the hardware prefetchers fall behind.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn prefetch_ahead<T>(x: &T) {
    let p = (x as *const T).cast::<i8>().wrapping_add(PREFETCH_BYTES);
    for line in (0..core::mem::size_of::<T>()).step_by(64) {
        // A prefetch never faults, whatever the address (the pointer is never read).
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line));
    }
}

/// Runs `$body` for `$c` = 0, 1, … up to `$n − 1` (`$n` a constant, at most eight), written out
/// one token after another: the tokens' accumulators then live in registers (left to itself, the
/// compiler keeps a loop over eight tokens a loop, with the accumulators in memory).
macro_rules! each_token {
    ($c:ident < $n:expr => $body:block) => {
        each_token!(@each $c, $n, $body, 0 1 2 3 4 5 6 7)
    };
    (@each $c:ident, $n:expr, $body:block, $($i:literal)+) => {
        $(if $i < $n {
            let $c: usize = $i;
            $body
        })+
    };
}
pub(crate) use each_token;

/// Defines `dot_avx2` and `dot_avx512` in module `$R` for interleaved blocks `$R` against
/// activation blocks `$Y`: `unpack(x)` gives the eight weight vectors (`unpack2`: AVX2's);
/// `sum2(w, act)` the AVX2 block sum `Σ w·y` in `i32` lanes (AVX-512 VNNI: [`sum8_vnni`]);
/// `zero2`/`zero512` the zero point each tier's sum leaves in, 0 or a power of two (AVX2
/// multiplies `Q8_0`'s quants signed); `min` whether the format has minimums.
macro_rules! interleaved_kernels {
    ($R:ident, $Y:ty, unpack |$x:ident| $unpack:expr, unpack2 |$x2:ident| $unpack2:expr,
     sum2: $sum2:path, zero2: $z2:expr, zero512: $z512:expr, min: $min:tt) => {
        #[allow(non_snake_case)]
        pub(crate) mod $R {
            use super::*;
            use crate::quant::interleaved::$R;

            interleaved_kernels!(@kernel dot_avx2, "avx2,fma,f16c", [1 2 3 4], $R, $Y, |$x2| $unpack2,
                $sum2, act_avx2, $z2, $min);
            interleaved_kernels!(@kernel dot_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c",
                [1 2 3 4 5 6 7 8], $R, $Y, |$x| $unpack, sum8_vnni, act_avx512, $z512, $min);
        }
    };
    (@kernel $name:ident, $feat:literal, [$($n:literal)+], $R:ident, $Y:ty, |$x:ident| $unpack:expr,
     $sum:path, $act:ident, $zero:expr, $min:tt) => {
        /// `out[c][r]` = interleaved row `r` against token `c`, bit for bit the scalar twin.
        ///
        /// # Safety
        /// The CPU must run every feature this function enables.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $name(xs: &[$R], nb: usize, ys: &[&[$Y]], sums: &[&[BlockSums]], out: &mut [&mut [f32]]) {
            #[inline]
            #[target_feature(enable = $feat)]
            fn run<const N: usize>(xs: &[$R], nb: usize, ys: &[&[$Y]; N], sums: &[&[BlockSums]; N], out: &mut [&mut [f32]]) {
                for (g, group) in xs.chunks_exact(nb).enumerate() {
                    let mut acc = [_mm256_setzero_ps(); N];
                    for (j, $x) in group.iter().enumerate() {
                        if N > 1 {
                            prefetch_ahead($x);
                        }
                        let w: [__m256i; 8] = $unpack;
                        let dx = scales8(&$x.d);
                        #[allow(unused_variables)]
                        let mx = interleaved_kernels!(@mins $min, $x);
                        each_token!(c < N => {
                            let (Some(y), Some(s)) = (ys[c].get(j), sums[c].get(j)) else { return };
                            let p = $sum(&w, |k| $act::<N>(&y.qs, s, k));
                            // zero · Σ y, a shift of the sum's lanes.
                            const { assert!($zero == 0 || ($zero as u32).is_power_of_two()) };
                            let p = if $zero == 0 {
                                p
                            } else {
                                let z = lanes_epi32(s.sum8());
                                _mm256_sub_epi32(p, _mm256_slli_epi32::<{ ($zero as u32).trailing_zeros() as i32 }>(z))
                            };
                            let d = _mm256_mul_ps(dx, lanes_ps(s.d8()));
                            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc[c]);
                            interleaved_kernels!(@min $min, acc[c], mx, s);
                        });
                    }
                    for (o, a) in out.iter_mut().zip(acc) {
                        store_rows(o, g, a);
                    }
                }
            }
            if nb == 0 {
                return;
            }
            // As many tokens a pass as this tier keeps accumulators for in registers.
            const MOST: usize = [$($n),+].len();
            const { assert!(MOST <= MAX_TOKENS) };
            for ((ys, sums), out) in ys.chunks(MOST).zip(sums.chunks(MOST)).zip(out.chunks_mut(MOST)) {
                match ys.len() {
                    $($n => if let (Ok(y), Ok(s)) = (<&[&[$Y]; $n]>::try_from(ys), <&[&[BlockSums]; $n]>::try_from(sums)) {
                        run::<$n>(xs, nb, y, s, out)
                    },)+
                    _ => {}
                }
            }
        }
    };
    (@mins yes, $x:ident) => { scales8(&$x.m) };
    (@mins no, $x:ident) => { _mm256_setzero_ps() };
    (@min yes, $acc:expr, $mx:ident, $s:ident) => { $acc = _mm256_fmadd_ps($mx, lanes_ps($s.s8()), $acc); };
    (@min no, $acc:expr, $mx:ident, $s:ident) => {};
}

/// `Σ w·y` over a block's eight words with `$dot(acc, w, y)` (adds one word's products to
/// `acc` in `i32` lanes; `$act(k)` word `k` of the activations in every lane), in two chains.
macro_rules! two_chains {
    ($w:expr, $act:expr, $dot:path) => {{
        let (mut p0, mut p1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for k in (0..8).step_by(2) {
            p0 = $dot(p0, $w[k], $act(k));
            p1 = $dot(p1, $w[k + 1], $act(k + 1));
        }
        _mm256_add_epi32(p0, p1)
    }};
}
pub(crate) use two_chains;

/// `Σ w·y` over a block's eight words in `i32` lanes, AVX-512 VNNI: `vpdpbusd` (unsigned
/// weights, signed activations; no saturation).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn sum8_vnni(w: &[__m256i; 8], act: impl Fn(usize) -> __m256i) -> __m256i {
    two_chains!(w, act, _mm256_dpbusd_epi32)
}

/// `Σ w·y` over a block's eight words of signed weights (AVX2, [`dot_i8`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn sum8_i8(w: &[__m256i; 8], act: impl Fn(usize) -> __m256i) -> __m256i {
    two_chains!(w, act, dot_i8)
}

/// The `maddubs` pairs of words 0–3 and of words 4–7 (unsigned weights against the
/// activations `act(k)`), each four words' pairs added up in `i16` lanes (AVX2; the caller
/// bounds them).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn pairs_by_four(w: &[__m256i; 8], act: impl Fn(usize) -> __m256i) -> (__m256i, __m256i) {
    let p = |k: usize| _mm256_maddubs_epi16(w[k % 8], act(k));
    let a = _mm256_add_epi16(_mm256_add_epi16(p(0), p(1)), _mm256_add_epi16(p(2), p(3)));
    let b = _mm256_add_epi16(_mm256_add_epi16(p(4), p(5)), _mm256_add_epi16(p(6), p(7)));
    (a, b)
}

/// `Σ w·y` over a block's eight words, weights below 16 (AVX2): every word's pairs add up in
/// the `i16` lanes (16 products of at most 15·128 each: below 2^15, no wrap), then one `madd`
/// widens them — one `madd` a block instead of one a word.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn sum8_u4(w: &[__m256i; 8], act: impl Fn(usize) -> __m256i) -> __m256i {
    let (a, b) = pairs_by_four(w, act);
    _mm256_madd_epi16(_mm256_add_epi16(a, b), _mm256_set1_epi16(1))
}

/// `Σ w·y` over a block's eight words, weights below 32 (AVX2): four words' pairs at a time in
/// the `i16` lanes (8 products of at most 31·128 each: below 2^15), two `madd`s a block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn sum8_u5(w: &[__m256i; 8], act: impl Fn(usize) -> __m256i) -> __m256i {
    let (a, b) = pairs_by_four(w, act);
    let one = _mm256_set1_epi16(1);
    _mm256_add_epi32(_mm256_madd_epi16(a, one), _mm256_madd_epi16(b, one))
}

/// `Σ w·y` of signed bytes (`y` never -128) added to `acc` (AVX2, `maddubs` on `|w|` and
/// `sign(y, w)`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_i8(acc: __m256i, w: __m256i, y: __m256i) -> __m256i {
    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w));
    _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)))
}

interleaved_kernels!(R8Q4_0, crate::quant::BlockQ8_0,
    unpack |x| nibbles8(&x.qs, None), unpack2 |x| nibbles8(&x.qs, None),
    sum2: sum8_u4, zero2: 8, zero512: 8, min: no);
interleaved_kernels!(R8Q4_1, crate::quant::BlockQ8_1,
    unpack |x| nibbles8(&x.qs, None), unpack2 |x| nibbles8(&x.qs, None),
    sum2: sum8_u4, zero2: 0, zero512: 0, min: yes);
interleaved_kernels!(R8Q5_0, crate::quant::BlockQ8_0,
    unpack |x| nibbles8(&x.qs, Some(&x.qh)), unpack2 |x| nibbles8(&x.qs, Some(&x.qh)),
    sum2: sum8_u5, zero2: 16, zero512: 16, min: no);
interleaved_kernels!(R8Q5_1, crate::quant::BlockQ8_1,
    unpack |x| nibbles8(&x.qs, Some(&x.qh)), unpack2 |x| nibbles8(&x.qs, Some(&x.qh)),
    sum2: sum8_u5, zero2: 0, zero512: 0, min: yes);
// Q8_0: AVX-512 takes the stored (offset) quants as they are; AVX2 flips them back to signed.
interleaved_kernels!(R8Q8_0, crate::quant::BlockQ8_0,
    unpack |x| core::array::from_fn(|k| word(&x.qs, k)),
    unpack2 |x| core::array::from_fn(|k| _mm256_xor_si256(word(&x.qs, k), _mm256_set1_epi8(-128))),
    sum2: sum8_i8, zero2: 0, zero512: 128, min: no);
