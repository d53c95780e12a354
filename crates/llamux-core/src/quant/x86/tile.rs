//! Tile kernels (matrix × matrix) on AVX-512: two weight rows against sixteen tokens at a time
//! ([`Cols32`]/[`ColsK`] tiles, one token per `i32` lane), each weight word of four quants
//! (unpacked to unsigned bytes) broadcast into one `vpdpbusd` for all sixteen tokens — no
//! horizontal sums, and each weight block unpacked once for every token of the batch.
//!
//! The float work per (row, token) is the one-row kernel's, operation for operation, so every
//! result equals `vec_dot_avx512`'s bit for bit. For the 32-element formats (`legacy_tile!`):
//! block `b`'s exact integer dot, scaled by `d_x * d_y`, goes into accumulator `b mod 8`, and the
//! eight accumulators are summed in `hsum_f32_avx2`'s order; weights carry their zero point
//! (`Q8_0` offset by 128), taken out as `zero · Σ y` per block. For the K-quants (`k_tile!`): each
//! super-block's exact `Σ sc q y` and `Σ (min or sc) bsums`, finished as the format's one-row
//! kernel finishes a block, added in block order.

use crate::quant::tiles::{Cols32, ColsK, TILE_COLS};
use core::arch::x86_64::*;

/// Weight rows per pass (the kernels are written for two).
pub(crate) const R: usize = 2;
/// Blocks unpacked at a time (a multiple of 8).
pub(crate) const KB: usize = 64;
/// Column groups whose accumulators are kept at a time.
pub(crate) const G: usize = 4;

/// Asks the L2 cache for `next` (the weight rows of the next pass: streamed from memory while this
/// pass computes, as the hardware prefetcher alone does not keep up with its short bursts of loads).
#[inline]
pub(crate) fn tile_prefetch<X>(next: Option<&[X]>) {
    let Some(next) = next else { return };
    let (p, len) = (next.as_ptr().cast::<i8>(), core::mem::size_of_val(next));
    for off in (0..len).step_by(64) {
        // SAFETY: a prefetch is a hint that never faults; `off` is within `next`.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(p.add(off)) };
    }
}

/// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`: the lanes of `hsum_f32_avx2`, here
/// eight vectors of sixteen tokens each.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn tile_hsum8(a: &[__m512; 8]) -> __m512 {
    let (s0, s1) = (_mm512_add_ps(a[0], a[4]), _mm512_add_ps(a[1], a[5]));
    let (s2, s3) = (_mm512_add_ps(a[2], a[6]), _mm512_add_ps(a[3], a[7]));
    _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3))
}

/// The tokens' sixteen `i32` lanes of `Σ w·y` over one block, for two weight rows (`w[r]`: the
/// block's quants as unsigned bytes, four per word).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn tile_dot2(w: [&[i32; 8]; 2], t: &Cols32) -> [__m512i; 2] {
    let z = _mm512_setzero_si512();
    let (mut s0a, mut s0b, mut s1a, mut s1b) = (z, z, z, z);
    for j in (0..8).step_by(2) {
        // SAFETY: `qs[j]` is 16 words, 64-aligned (`Cols32` is 64-aligned, each row 64 bytes).
        let (ya, yb) =
            unsafe { (_mm512_load_si512(t.qs[j].as_ptr().cast()), _mm512_load_si512(t.qs[j + 1].as_ptr().cast())) };
        s0a = _mm512_dpbusd_epi32(s0a, _mm512_set1_epi32(w[0][j]), ya);
        s0b = _mm512_dpbusd_epi32(s0b, _mm512_set1_epi32(w[0][j + 1]), yb);
        s1a = _mm512_dpbusd_epi32(s1a, _mm512_set1_epi32(w[1][j]), ya);
        s1b = _mm512_dpbusd_epi32(s1b, _mm512_set1_epi32(w[1][j + 1]), yb);
    }
    [_mm512_add_epi32(s0a, s0b), _mm512_add_epi32(s1a, s1b)]
}

/// A 64-aligned vector of sixteen floats.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn tile_load_ps(v: &[f32; TILE_COLS]) -> __m512 {
    // SAFETY: 16 floats; the load is unaligned.
    unsafe { _mm512_loadu_ps(v.as_ptr()) }
}

/// A vector of sixteen `i32`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn tile_load_epi32(v: &[i32; TILE_COLS]) -> __m512i {
    // SAFETY: 16 words; the load is unaligned.
    unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
}

/// The unpacking of a pass of the 32-element tile kernels: blocks `kc..kc + kn` of rows
/// `r0..r0 + nr` into `wq` (quants as words), `dx` (scales) and `mx` (minimums, with `$m`); rows
/// past `nr` are zeros.
macro_rules! tile_unpack_legacy {
    ($xs:ident, $r0:ident, $nr:ident, $nb:ident, $kc:ident, $kn:ident, $wq:ident, $dx:ident, $mx:ident,
     |$x:ident| $unpack:expr $(, $m:ident)?) => {
        for r in 0..R {
            let row = if r < $nr { $xs.get(($r0 + r) * $nb + $kc..($r0 + r) * $nb + $kc + $kn) } else { None };
            for b in 0..$kn {
                let Some($x) = row.and_then(|row| row.get(b)) else {
                    ($wq[r][b], $dx[r][b]) = ([0; 8], 0.0);
                    $(let _ = stringify!($m); $mx[r][b] = 0.0;)?
                    continue;
                };
                let q: __m256i = $unpack;
                $wq[r][b] = bytemuck::cast(q);
                $dx[r][b] = f16c_to_f32($x.d);
                $($mx[r][b] = f16c_to_f32($x.$m);)?
            }
        }
    };
}
pub(crate) use tile_unpack_legacy;

/// The unpacking of a pass of the K-quant tile kernels: super-blocks `kc..kc + kn` of rows
/// `r0..r0 + nr` into `wq`, `sc`, `pairs` and `dd` (`unpack(x, w, sc, pairs)` gives one's scales);
/// rows past `nr` are zeros.
macro_rules! tile_unpack_k {
    ($xs:ident, $r0:ident, $nr:ident, $nb:ident, $kc:ident, $kn:ident, $wq:ident, $scs:ident, $pairss:ident, $dd:ident,
     |$x:ident, $w:ident, $sc:ident, $pairs:ident| $unpack:expr) => {
        for r in 0..R {
            let row = if r < $nr { $xs.get(($r0 + r) * $nb + $kc..($r0 + r) * $nb + $kc + $kn) } else { None };
            for b in 0..$kn {
                match row.and_then(|row| row.get(b)) {
                    Some($x) => {
                        let ($w, $sc, $pairs) = (&mut $wq[r][b], &mut $scs[r][b], &mut $pairss[r][b]);
                        $dd[r][b] = $unpack;
                    }
                    None => ($wq[r][b], $scs[r][b], $pairss[r][b], $dd[r][b]) = ([0; 64], [0; 16], [0; 8], [0.0; 2]),
                }
            }
        }
    };
}
pub(crate) use tile_unpack_k;

/// Defines the AVX-512 tile kernel `$name` of a 32-element block format: `unpack` maps a weight
/// block to its 32 quants as unsigned bytes; `zero_log2`, where given, is the log2 of the zero
/// point they carry (taken out as `zero · Σ y`); `min`, the field of the block's minimum (times
/// the tokens' `s`).
macro_rules! legacy_tile {
    (
        $(#[$doc:meta])*
        $name:ident, $X:ty, unpack |$x:ident| $unpack:expr $(, zero_log2: $z:literal)? $(, min: $m:ident)?
    ) => {
        $(#[$doc])*
        ///
        /// `out[c * n_rows + r]` is row `r` (of the `xs.len() / blocks` rows) against token `c` of
        /// `tiles` (`tiles.len() / blocks` groups of sixteen).
        ///
        /// # Safety
        /// The CPU must run the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
        pub(crate) unsafe fn $name(xs: &[$X], tiles: &[$crate::quant::tiles::Cols32], blocks: usize, out: &mut [f32]) {
            use $crate::quant::tiles::TILE_COLS;
            use $crate::quant::x86::common::f16c_to_f32;
            use $crate::quant::x86::tile::*;
            use core::arch::x86_64::*;
            let nb = blocks;
            if nb == 0 {
                return;
            }
            let (groups, n_rows) = (tiles.len() / nb, xs.len() / nb);
            // The one-row kernel's partial last group of 8 blocks adds zero lanes to the
            // accumulators from `tail` on.
            let tail = if nb % 8 == 0 { 8 } else { nb % 8 };
            // The pass's rows, unpacked: quants as words, scales (and minimums) as floats.
            let mut wq = [[[0i32; 8]; KB]; R];
            let mut dx = [[0.0f32; KB]; R];
            #[allow(unused_mut, unused_variables)]
            let mut mx = [[0.0f32; KB]; R];
            let zero = _mm512_setzero_ps();
            // acc[g][k][r]: accumulator k (blocks k mod 8) of row r against group g (only the
            // groups of a pass are reset).
            let mut acc = [[[zero; R]; 8]; G];
            for r0 in (0..n_rows).step_by(R) {
                let nr = (n_rows - r0).min(R);
                tile_prefetch(xs.get((r0 + R) * nb..(r0 + 2 * R) * nb));
                for gp in (0..groups).step_by(G) {
                    let ng = (groups - gp).min(G);
                    acc.iter_mut().take(ng).for_each(|a| *a = [[zero; R]; 8]);
                    for kc in (0..nb).step_by(KB) {
                        let kn = (nb - kc).min(KB);
                        $crate::quant::x86::tile::tile_unpack_legacy!(
                            xs, r0, nr, nb, kc, kn, wq, dx, mx, |$x| $unpack $(, $m)?
                        );
                        let last = kc + kn == nb;
                        for (g, acc) in acc.iter_mut().enumerate().take(ng) {
                            let Some(ts) = tiles.get((gp + g) * nb + kc..(gp + g) * nb + kc + kn) else { return };
                            // Accumulator by accumulator, each over its blocks in order.
                            for (k, acc) in acc.iter_mut().enumerate() {
                                let (mut a0, mut a1) = (acc[0], acc[1]);
                                for b in (k..kn).step_by(8) {
                                    let Some(t) = ts.get(b) else { break };
                                    #[allow(unused_mut)]
                                    let [mut s0, mut s1] = tile_dot2([&wq[0][b], &wq[1][b]], t);
                                    $(
                                        let off = _mm512_slli_epi32::<$z>(tile_load_epi32(&t.sum));
                                        s0 = _mm512_sub_epi32(s0, off);
                                        s1 = _mm512_sub_epi32(s1, off);
                                    )?
                                    let dy = tile_load_ps(&t.d);
                                    let d0 = _mm512_mul_ps(_mm512_set1_ps(dx[0][b]), dy);
                                    let d1 = _mm512_mul_ps(_mm512_set1_ps(dx[1][b]), dy);
                                    a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), d0, a0);
                                    a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), d1, a1);
                                    $(
                                        let _ = stringify!($m);
                                        let sy = tile_load_ps(&t.s);
                                        a0 = _mm512_fmadd_ps(_mm512_set1_ps(mx[0][b]), sy, a0);
                                        a1 = _mm512_fmadd_ps(_mm512_set1_ps(mx[1][b]), sy, a1);
                                    )?
                                }
                                if last && k >= tail {
                                    // Past the row's last block: the one-row kernel's zero lanes.
                                    (a0, a1) = (_mm512_add_ps(a0, zero), _mm512_add_ps(a1, zero));
                                }
                                *acc = [a0, a1];
                            }
                        }
                    }
                    for (g, acc) in acc.iter().enumerate().take(ng) {
                        for r in 0..nr {
                            let a: [__m512; 8] = core::array::from_fn(|k| acc[k][r]);
                            let mut v = [0.0f32; TILE_COLS];
                            // SAFETY: 16 writable floats; the store is unaligned.
                            unsafe { _mm512_storeu_ps(v.as_mut_ptr(), tile_hsum8(&a)) };
                            for (c, v) in v.into_iter().enumerate() {
                                if let Some(o) = out.get_mut(((gp + g) * TILE_COLS + c) * n_rows + r0 + r) {
                                    *o = v;
                                }
                            }
                        }
                    }
                }
            }
        }
    };
}
pub(crate) use legacy_tile;

/// A super-block's integer sums for two weight rows: `Σ_g sc[g] · (w · y over group g)` (groups
/// of `GW` words) and `Σ_k madd(bsums[k], pairs[k])` (`pairs[k]`: two `i16` multipliers of the
/// token's sums `2k` and `2k + 1` of 16 quants).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn tile_k_sums2<const GW: usize>(
    w: [&[i32; 64]; 2],
    sc: [&[i32; 16]; 2],
    pairs: [&[i32; 8]; 2],
    t: &ColsK,
) -> [(__m512i, __m512i); 2] {
    let z = _mm512_setzero_si512();
    let mut sum = [z; 2];
    for (g, (&sc0, &sc1)) in sc[0].iter().zip(sc[1]).enumerate().take(64 / GW) {
        let (mut a0, mut b0, mut a1, mut b1) = (z, z, z, z);
        for j in (g * GW..(g + 1) * GW).step_by(2) {
            // SAFETY: `qs[j]` is 16 words, 64-aligned (`ColsK` is 64-aligned, each row 64 bytes).
            let (ya, yb) =
                unsafe { (_mm512_load_si512(t.qs[j].as_ptr().cast()), _mm512_load_si512(t.qs[j + 1].as_ptr().cast())) };
            a0 = _mm512_dpbusd_epi32(a0, _mm512_set1_epi32(w[0][j]), ya);
            b0 = _mm512_dpbusd_epi32(b0, _mm512_set1_epi32(w[0][j + 1]), yb);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_set1_epi32(w[1][j]), ya);
            b1 = _mm512_dpbusd_epi32(b1, _mm512_set1_epi32(w[1][j + 1]), yb);
        }
        sum[0] = _mm512_add_epi32(sum[0], _mm512_mullo_epi32(_mm512_add_epi32(a0, b0), _mm512_set1_epi32(sc0)));
        sum[1] = _mm512_add_epi32(sum[1], _mm512_mullo_epi32(_mm512_add_epi32(a1, b1), _mm512_set1_epi32(sc1)));
    }
    let mut off = [z; 2];
    for (bs, (&p0, &p1)) in t.bsums.iter().zip(pairs[0].iter().zip(pairs[1])) {
        let b = tile_load_epi32(bs);
        off[0] = _mm512_add_epi32(off[0], _mm512_madd_epi16(b, _mm512_set1_epi32(p0)));
        off[1] = _mm512_add_epi32(off[1], _mm512_madd_epi16(b, _mm512_set1_epi32(p1)));
    }
    [(sum[0], off[0]), (sum[1], off[1])]
}

/// Defines the AVX-512 tile kernel `$name` of a K-quant: `unpack(x, w, sc, pairs)` writes a
/// super-block's 256 quants as unsigned bytes (four per word, element order), its group scales
/// and bsum multipliers (as [`tile_k_sums2`] takes them), and returns its two float scales;
/// `finish(sum, off, yd, d)` gives a super-block's float term for sixteen tokens (`yd`: their
/// scales), added to the accumulator in block order. `$gw`: words per group.
macro_rules! k_tile {
    (
        $(#[$doc:meta])*
        $name:ident, $X:ty, $gw:literal,
        unpack |$x:ident, $w:ident, $sc:ident, $pairs:ident| $unpack:expr,
        finish |$sum:ident, $off:ident, $yd:ident, $d:ident| $finish:expr
    ) => {
        $(#[$doc])*
        ///
        /// `out[c * n_rows + r]` is row `r` (of the `xs.len() / blocks` rows) against token `c` of
        /// `tiles` (`tiles.len() / blocks` groups of sixteen).
        ///
        /// # Safety
        /// The CPU must run the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
        pub(crate) unsafe fn $name(xs: &[$X], tiles: &[$crate::quant::tiles::ColsK], blocks: usize, out: &mut [f32]) {
            use $crate::quant::tiles::TILE_COLS;
            use $crate::quant::x86::tile::*;
            use core::arch::x86_64::*;
            #[inline]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
            fn finish($sum: __m512i, $off: __m512i, $yd: __m512, $d: [f32; 2]) -> __m512 {
                $finish
            }
            /// Super-blocks unpacked at a time.
            const KB: usize = 16;
            let nb = blocks;
            if nb == 0 {
                return;
            }
            let (groups, n_rows) = (tiles.len() / nb, xs.len() / nb);
            let mut wq = [[[0i32; 64]; KB]; R];
            let mut sc = [[[0i32; 16]; KB]; R];
            let mut pairs = [[[0i32; 8]; KB]; R];
            let mut dd = [[[0.0f32; 2]; KB]; R];
            let zero = _mm512_setzero_ps();
            let mut acc = [[zero; R]; G];
            for r0 in (0..n_rows).step_by(R) {
                let nr = (n_rows - r0).min(R);
                tile_prefetch(xs.get((r0 + R) * nb..(r0 + 2 * R) * nb));
                for gp in (0..groups).step_by(G) {
                    let ng = (groups - gp).min(G);
                    acc.iter_mut().take(ng).for_each(|a| *a = [zero; R]);
                    for kc in (0..nb).step_by(KB) {
                        let kn = (nb - kc).min(KB);
                        $crate::quant::x86::tile::tile_unpack_k!(
                            xs, r0, nr, nb, kc, kn, wq, sc, pairs, dd, |$x, $w, $sc, $pairs| $unpack
                        );
                        for (g, acc) in acc.iter_mut().enumerate().take(ng) {
                            let Some(ts) = tiles.get((gp + g) * nb + kc..(gp + g) * nb + kc + kn) else { return };
                            let (mut a0, mut a1) = (acc[0], acc[1]);
                            for (b, t) in ts.iter().enumerate() {
                                let s = tile_k_sums2::<$gw>([&wq[0][b], &wq[1][b]], [&sc[0][b], &sc[1][b]], [&pairs[0][b], &pairs[1][b]], t);
                                let yd = tile_load_ps(&t.d);
                                a0 = _mm512_add_ps(a0, finish(s[0].0, s[0].1, yd, dd[0][b]));
                                a1 = _mm512_add_ps(a1, finish(s[1].0, s[1].1, yd, dd[1][b]));
                            }
                            *acc = [a0, a1];
                        }
                    }
                    for (g, acc) in acc.iter().enumerate().take(ng) {
                        for (r, a) in acc.iter().enumerate().take(nr) {
                            let mut v = [0.0f32; TILE_COLS];
                            // SAFETY: 16 writable floats; the store is unaligned.
                            unsafe { _mm512_storeu_ps(v.as_mut_ptr(), *a) };
                            for (c, v) in v.into_iter().enumerate() {
                                if let Some(o) = out.get_mut(((gp + g) * TILE_COLS + c) * n_rows + r0 + r) {
                                    *o = v;
                                }
                            }
                        }
                    }
                }
            }
        }
    };
}
pub(crate) use k_tile;

/// [`tile_hsum8`] for vectors of eight tokens.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn tile8_hsum8(a: &[__m256; 8]) -> __m256 {
    let (s0, s1) = (_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[1], a[5]));
    let (s2, s3) = (_mm256_add_ps(a[2], a[6]), _mm256_add_ps(a[3], a[7]));
    _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3))
}

/// Eight `i32` of a tile row: tokens `8h..8h + 8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn tile8_load_epi32(v: &[i32; TILE_COLS], h: usize) -> __m256i {
    let h = h & 1;
    // SAFETY: words 8h..8h+8 of 16 (h < 2); the load is unaligned.
    unsafe { _mm256_loadu_si256(v.as_ptr().add(8 * h).cast()) }
}

/// Eight floats of a tile row: tokens `8h..8h + 8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn tile8_load_ps(v: &[f32; TILE_COLS], h: usize) -> __m256 {
    let h = h & 1;
    // SAFETY: floats 8h..8h+8 of 16 (h < 2); the load is unaligned.
    unsafe { _mm256_loadu_ps(v.as_ptr().add(8 * h)) }
}

/// Writes `v` (eight tokens' results for row `r`) to `out[(8 * half + c) * n_rows + r]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn tile8_store(out: &mut [f32], v: __m256, half: usize, n_rows: usize, r: usize) {
    let mut a = [0.0f32; 8];
    // SAFETY: 8 writable floats; the store is unaligned.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), v) };
    for (c, v) in a.into_iter().enumerate() {
        if let Some(o) = out.get_mut((8 * half + c) * n_rows + r) {
            *o = v;
        }
    }
}

/// [`legacy_tile!`] eight tokens at a time (256-bit vectors), for the AVX2 tier and for batches
/// of at most eight tokens: the halves of a group without tokens are skipped (their results are
/// zeros). `acc(acc, w, y)` adds the eight `i32` lanes of `Σ w·y` (one word each) to `acc`.
macro_rules! legacy_tile8 {
    (
        $(#[$doc:meta])*
        $name:ident, $feat:literal, $X:ty, unpack |$x:ident| $unpack:expr,
        acc |$acc:ident, $w:ident, $y:ident| $accf:expr $(, zero_log2: $z:literal)? $(, min: $m:ident)?
    ) => {
        $(#[$doc])*
        ///
        /// `out[c * n_rows + r]` is row `r` (of the `xs.len() / blocks` rows) against token `c` of
        /// `tiles` (`tiles.len() / blocks` groups of sixteen, holding `tokens` tokens).
        ///
        /// # Safety
        /// The CPU must run every feature this function enables.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $name(xs: &[$X], tiles: &[$crate::quant::tiles::Cols32], blocks: usize, tokens: usize, out: &mut [f32]) {
            use $crate::quant::x86::common::f16c_to_f32;
            use $crate::quant::x86::tile::*;
            use core::arch::x86_64::*;
            let nb = blocks;
            if nb == 0 {
                return;
            }
            let (groups, n_rows) = (tiles.len() / nb, xs.len() / nb);
            let tail = if nb % 8 == 0 { 8 } else { nb % 8 };
            let mut wq = [[[0i32; 8]; KB]; R];
            let mut dx = [[0.0f32; KB]; R];
            #[allow(unused_mut, unused_variables)]
            let mut mx = [[0.0f32; KB]; R];
            let (zero, izero) = (_mm256_setzero_ps(), _mm256_setzero_si256());
            // Halves (of eight tokens) holding tokens, over all groups.
            let halves = tokens.div_ceil(8).min(2 * groups);
            // acc[h][k][r]: accumulator k (blocks k mod 8) of row r against half hp + h (only the
            // halves of a pass are reset).
            let mut acc = [[[zero; R]; 8]; 2 * G];
            for r0 in (0..n_rows).step_by(R) {
                let nr = (n_rows - r0).min(R);
                tile_prefetch(xs.get((r0 + R) * nb..(r0 + 2 * R) * nb));
                for hp in (0..halves).step_by(2 * G) {
                    let nh = (halves - hp).min(2 * G);
                    acc.iter_mut().take(nh).for_each(|a| *a = [[zero; R]; 8]);
                    for kc in (0..nb).step_by(KB) {
                        let kn = (nb - kc).min(KB);
                        $crate::quant::x86::tile::tile_unpack_legacy!(
                            xs, r0, nr, nb, kc, kn, wq, dx, mx, |$x| $unpack $(, $m)?
                        );
                        let last = kc + kn == nb;
                        for (hi, acc) in acc.iter_mut().enumerate().take(nh) {
                            let (g, h) = ((hp + hi) / 2, (hp + hi) % 2);
                            let Some(ts) = tiles.get(g * nb + kc..g * nb + kc + kn) else { return };
                            for (k, acc) in acc.iter_mut().enumerate() {
                                let (mut a0, mut a1) = (acc[0], acc[1]);
                                for b in (k..kn).step_by(8) {
                                    let Some(t) = ts.get(b) else { break };
                                    let (mut s0a, mut s0b, mut s1a, mut s1b) = (izero, izero, izero, izero);
                                    for j in (0..8).step_by(2) {
                                        let (ya, yb) = (tile8_load_epi32(&t.qs[j], h), tile8_load_epi32(&t.qs[j + 1], h));
                                        s0a = { let ($acc, $w, $y) = (s0a, _mm256_set1_epi32(wq[0][b][j]), ya); $accf };
                                        s0b = { let ($acc, $w, $y) = (s0b, _mm256_set1_epi32(wq[0][b][j + 1]), yb); $accf };
                                        s1a = { let ($acc, $w, $y) = (s1a, _mm256_set1_epi32(wq[1][b][j]), ya); $accf };
                                        s1b = { let ($acc, $w, $y) = (s1b, _mm256_set1_epi32(wq[1][b][j + 1]), yb); $accf };
                                    }
                                    #[allow(unused_mut)]
                                    let (mut s0, mut s1) = (_mm256_add_epi32(s0a, s0b), _mm256_add_epi32(s1a, s1b));
                                    $(
                                        let off = _mm256_slli_epi32::<$z>(tile8_load_epi32(&t.sum, h));
                                        s0 = _mm256_sub_epi32(s0, off);
                                        s1 = _mm256_sub_epi32(s1, off);
                                    )?
                                    let dy = tile8_load_ps(&t.d, h);
                                    let d0 = _mm256_mul_ps(_mm256_set1_ps(dx[0][b]), dy);
                                    let d1 = _mm256_mul_ps(_mm256_set1_ps(dx[1][b]), dy);
                                    a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), d0, a0);
                                    a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), d1, a1);
                                    $(
                                        let _ = stringify!($m);
                                        let sy = tile8_load_ps(&t.s, h);
                                        a0 = _mm256_fmadd_ps(_mm256_set1_ps(mx[0][b]), sy, a0);
                                        a1 = _mm256_fmadd_ps(_mm256_set1_ps(mx[1][b]), sy, a1);
                                    )?
                                }
                                if last && k >= tail {
                                    (a0, a1) = (_mm256_add_ps(a0, zero), _mm256_add_ps(a1, zero));
                                }
                                *acc = [a0, a1];
                            }
                        }
                    }
                    for (hi, acc) in acc.iter().enumerate().take(nh) {
                        for r in 0..nr {
                            let a: [__m256; 8] = core::array::from_fn(|k| acc[k][r]);
                            tile8_store(out, tile8_hsum8(&a), hp + hi, n_rows, r0 + r);
                        }
                    }
                }
                // Halves without tokens.
                for half in halves..2 * groups {
                    for r in 0..nr {
                        tile8_store(out, zero, half, n_rows, r0 + r);
                    }
                }
            }
        }
    };
}
pub(crate) use legacy_tile8;

/// [`k_tile!`] eight tokens at a time (256-bit vectors), for the AVX2 tier and for batches of at
/// most eight tokens: `unpack` as there, `acc(acc, w, y)` as in [`legacy_tile8!`], `finish` with
/// eight-lane vectors.
macro_rules! k_tile8 {
    (
        $(#[$doc:meta])*
        $name:ident, $feat:literal, $X:ty, $gw:literal,
        unpack |$x:ident, $w:ident, $sc:ident, $pairs:ident| $unpack:expr,
        acc |$acc:ident, $aw:ident, $ay:ident| $accf:expr,
        finish |$sum:ident, $off:ident, $yd:ident, $d:ident| $finish:expr
    ) => {
        $(#[$doc])*
        ///
        /// `out[c * n_rows + r]` is row `r` (of the `xs.len() / blocks` rows) against token `c` of
        /// `tiles` (`tiles.len() / blocks` groups of sixteen, holding `tokens` tokens).
        ///
        /// # Safety
        /// The CPU must run every feature this function enables.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $name(xs: &[$X], tiles: &[$crate::quant::tiles::ColsK], blocks: usize, tokens: usize, out: &mut [f32]) {
            use $crate::quant::x86::tile::*;
            use core::arch::x86_64::*;
            #[inline]
            #[target_feature(enable = $feat)]
            fn finish($sum: __m256i, $off: __m256i, $yd: __m256, $d: [f32; 2]) -> __m256 {
                $finish
            }
            const KB: usize = 16;
            let nb = blocks;
            if nb == 0 {
                return;
            }
            let (groups, n_rows) = (tiles.len() / nb, xs.len() / nb);
            let mut wq = [[[0i32; 64]; KB]; R];
            let mut sc = [[[0i32; 16]; KB]; R];
            let mut pairs = [[[0i32; 8]; KB]; R];
            let mut dd = [[[0.0f32; 2]; KB]; R];
            let (zero, izero) = (_mm256_setzero_ps(), _mm256_setzero_si256());
            let halves = tokens.div_ceil(8).min(2 * groups);
            let mut acc = [[zero; R]; 2 * G];
            for r0 in (0..n_rows).step_by(R) {
                let nr = (n_rows - r0).min(R);
                tile_prefetch(xs.get((r0 + R) * nb..(r0 + 2 * R) * nb));
                for hp in (0..halves).step_by(2 * G) {
                    let nh = (halves - hp).min(2 * G);
                    acc.iter_mut().take(nh).for_each(|a| *a = [zero; R]);
                    for kc in (0..nb).step_by(KB) {
                        let kn = (nb - kc).min(KB);
                        $crate::quant::x86::tile::tile_unpack_k!(
                            xs, r0, nr, nb, kc, kn, wq, sc, pairs, dd, |$x, $w, $sc, $pairs| $unpack
                        );
                        for (hi, acc) in acc.iter_mut().enumerate().take(nh) {
                            let (g, h) = ((hp + hi) / 2, (hp + hi) % 2);
                            let Some(ts) = tiles.get(g * nb + kc..g * nb + kc + kn) else { return };
                            let (mut a0, mut a1) = (acc[0], acc[1]);
                            for (b, t) in ts.iter().enumerate() {
                                let (w0, w1) = (&wq[0][b], &wq[1][b]);
                                let (mut sum0, mut sum1) = (izero, izero);
                                for (gi, (&sc0, &sc1)) in sc[0][b].iter().zip(&sc[1][b]).enumerate().take(64 / $gw) {
                                    let (mut s0a, mut s0b, mut s1a, mut s1b) = (izero, izero, izero, izero);
                                    for j in (gi * $gw..(gi + 1) * $gw).step_by(2) {
                                        let (ya, yb) = (tile8_load_epi32(&t.qs[j], h), tile8_load_epi32(&t.qs[j + 1], h));
                                        s0a = { let ($acc, $aw, $ay) = (s0a, _mm256_set1_epi32(w0[j]), ya); $accf };
                                        s0b = { let ($acc, $aw, $ay) = (s0b, _mm256_set1_epi32(w0[j + 1]), yb); $accf };
                                        s1a = { let ($acc, $aw, $ay) = (s1a, _mm256_set1_epi32(w1[j]), ya); $accf };
                                        s1b = { let ($acc, $aw, $ay) = (s1b, _mm256_set1_epi32(w1[j + 1]), yb); $accf };
                                    }
                                    sum0 = _mm256_add_epi32(sum0, _mm256_mullo_epi32(_mm256_add_epi32(s0a, s0b), _mm256_set1_epi32(sc0)));
                                    sum1 = _mm256_add_epi32(sum1, _mm256_mullo_epi32(_mm256_add_epi32(s1a, s1b), _mm256_set1_epi32(sc1)));
                                }
                                let (mut off0, mut off1) = (izero, izero);
                                for (bs, (&p0, &p1)) in t.bsums.iter().zip(pairs[0][b].iter().zip(&pairs[1][b])) {
                                    let v = tile8_load_epi32(bs, h);
                                    off0 = _mm256_add_epi32(off0, _mm256_madd_epi16(v, _mm256_set1_epi32(p0)));
                                    off1 = _mm256_add_epi32(off1, _mm256_madd_epi16(v, _mm256_set1_epi32(p1)));
                                }
                                let yd = tile8_load_ps(&t.d, h);
                                a0 = _mm256_add_ps(a0, finish(sum0, off0, yd, dd[0][b]));
                                a1 = _mm256_add_ps(a1, finish(sum1, off1, yd, dd[1][b]));
                            }
                            *acc = [a0, a1];
                        }
                    }
                    for (hi, acc) in acc.iter().enumerate().take(nh) {
                        for (r, a) in acc.iter().enumerate().take(nr) {
                            tile8_store(out, *a, hp + hi, n_rows, r0 + r);
                        }
                    }
                }
                for half in halves..2 * groups {
                    for r in 0..nr {
                        tile8_store(out, zero, half, n_rows, r0 + r);
                    }
                }
            }
        }
    };
}
pub(crate) use k_tile8;
