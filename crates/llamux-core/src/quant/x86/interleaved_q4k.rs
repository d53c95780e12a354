//! Kernels for interleaved `Q4_K` ([`crate::quant::interleaved::R8Q4K`]): eight rows in the eight
//! `i32` lanes, up to eight tokens (AVX-512; four on AVX2) per pass over a group's super-blocks. Per sub-block pair the
//! eight quant words are loaded once; per token each word of four activations is broadcast
//! against eight rows. AVX-512 VNNI: `vpdpbusd` on the low nibbles and on the high nibbles left in
//! place (sixteen times the quant; the exact sum is shifted back), the sub-block scale applied by
//! `vpmulld`. AVX2: `maddubs`, the eight words summed in `i16` lanes, then one `madd` against the
//! scale (the scale costs nothing extra). Both
//! finish each super-block exactly as the scalar twin does.

use super::interleaved::{each_token, lanes_ps, pairs_by_four, prefetch_ahead, scales8, store_rows, two_chains, word};
use crate::quant::interleaved::{BlockSums, MAX_TOKENS, R8Q4K};
use crate::quant::BlockQ8K;
use core::arch::x86_64::*;

/// Sub-block `k`'s eight bytes of `b` (`sc` or `m`), one per lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bytes8(b: &[u8; 64], k: usize) -> __m256i {
    let k = k % 8;
    let v = u64::from_le_bytes(core::array::from_fn(|i| b[8 * k + i]));
    _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v as i64))
}

/// Word `w` (quants `4w .. 4w + 4`) of a super-block's activations in every lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn act4(qs: &[i8; 256], w: usize) -> __m256i {
    let w = w % 64;
    let v = i32::from_le_bytes([qs[4 * w] as u8, qs[4 * w + 1] as u8, qs[4 * w + 2] as u8, qs[4 * w + 3] as u8]);
    _mm256_set1_epi32(v)
}

macro_rules! q4k_kernel {
    ($name:ident, $feat:literal, [$($n:literal)+], |$v:ident, $half:ident| $unpack:expr,
     |$w:ident, $k:ident, $y:ident, $s:ident, $sc:ident| $sub:expr) => {
        /// `out[c][r]` = interleaved row `r` against token `c`, bit for bit the scalar twin.
        ///
        /// # Safety
        /// The CPU must run every feature this function enables.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $name(
            xs: &[R8Q4K],
            nbk: usize,
            ys: &[&[BlockQ8K]],
            sums: &[&[BlockSums]],
            out: &mut [&mut [f32]],
        ) {
            #[inline]
            #[target_feature(enable = $feat)]
            fn run<const N: usize>(
                xs: &[R8Q4K],
                nbk: usize,
                ys: &[&[BlockQ8K]; N],
                sums: &[&[BlockSums]; N],
                out: &mut [&mut [f32]],
            ) {
                for (g, group) in xs.chunks_exact(nbk).enumerate() {
                    let mut acc = [_mm256_setzero_ps(); N];
                    for (j, x) in group.iter().enumerate() {
                        if N > 1 {
                            prefetch_ahead(x);
                        }
                        let dmin = scales8(&x.dmin);
                        let mut sumi = [_mm256_setzero_si256(); N];
                        for i in 0..4 {
                            for $half in 0..2 {
                                // Loaded again for each half (from L1): eight words fewer held in
                                // registers beside the tokens' accumulators.
                                let $v: [__m256i; 8] = core::array::from_fn(|t| word(&x.qs, 8 * i + t));
                                let $k = 2 * i + $half;
                                let $w: [__m256i; 8] = $unpack;
                                let $sc = bytes8(&x.sc, $k);
                                let md = _mm256_mul_ps(_mm256_cvtepi32_ps(bytes8(&x.m, $k)), dmin);
                                each_token!(c < N => {
                                    let (Some($y), Some($s)) = (ys[c].get(j), sums[c].get(8 * j + $k)) else { return };
                                    sumi[c] = _mm256_add_epi32(sumi[c], $sub);
                                    acc[c] = _mm256_fnmadd_ps(md, lanes_ps($s.s8()), acc[c]);
                                });
                            }
                        }
                        let dx = scales8(&x.d);
                        each_token!(c < N => {
                            let Some(y) = ys[c].get(j) else { return };
                            let d = _mm256_mul_ps(dx, _mm256_set1_ps(y.d));
                            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), d, acc[c]);
                        });
                    }
                    for (o, a) in out.iter_mut().zip(acc) {
                        store_rows(o, g, a);
                    }
                }
            }
            if nbk == 0 {
                return;
            }
            // As many tokens a pass as this tier keeps accumulators for in registers.
            const MOST: usize = [$($n),+].len();
            const { assert!(MOST <= MAX_TOKENS) };
            for ((ys, sums), out) in ys.chunks(MOST).zip(sums.chunks(MOST)).zip(out.chunks_mut(MOST)) {
                match ys.len() {
                    $($n => if let (Ok(y), Ok(s)) =
                        (<&[&[BlockQ8K]; $n]>::try_from(ys), <&[&[BlockSums]; $n]>::try_from(sums))
                    {
                        run::<$n>(xs, nbk, y, s, out)
                    },)+
                    _ => {}
                }
            }
        }
    };
}

// AVX-512 VNNI: high nibbles stay in place (16·q, at most 240: `vpdpbusd` takes unsigned bytes
// and does not saturate), their exact sum is divided by 16 with a shift.
q4k_kernel!(
    dot_avx512,
    "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c",
    [1 2 3 4 5 6 7 8],
    |v, half| {
        let m = _mm256_set1_epi8(if half == 0 { 0x0F } else { 0xF0u8 as i8 });
        core::array::from_fn(|t| _mm256_and_si256(v[t], m))
    },
    |w, k, y, _s, sc| {
        let p = two_chains!(w, |t| act4(&y.qs, 8 * k + t), _mm256_dpbusd_epi32);
        let p = if k % 2 == 1 { _mm256_srai_epi32::<4>(p) } else { p };
        _mm256_mullo_epi32(p, sc)
    }
);

// AVX2: `maddubs` of quants (at most 15) and activations cannot saturate; `madd` against the
// scale in both halves of each lane gives `sc · Σ q·y` per four elements.
q4k_kernel!(
    dot_avx2,
    "avx2,fma,f16c",
    [1 2 3 4],
    |v, half| {
        let m4 = _mm256_set1_epi8(0x0F);
        core::array::from_fn(|t| {
            if half == 0 {
                _mm256_and_si256(v[t], m4)
            } else {
                _mm256_and_si256(_mm256_srli_epi16::<4>(v[t]), m4)
            }
        })
    },
    |w, k, y, _s, sc| {
        // The eight words' pairs add up in the `i16` lanes first (16 products of at most
        // 15·128 each: below 2^15), one `madd` a sub-block. The words are broadcast from the
        // block: read as spread in `BlockSums` (as the 32-element kernels read them), batches
        // ran slower here (criterion `q4_K/l2/r8/x8`, 2048 columns, two variants).
        let sc16 = _mm256_or_si256(sc, _mm256_slli_epi32::<16>(sc));
        let (a, b) = pairs_by_four(&w, |t| act4(&y.qs, 8 * k + t));
        _mm256_madd_epi16(_mm256_add_epi16(a, b), sc16)
    }
);
