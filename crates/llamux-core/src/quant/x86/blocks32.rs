//! Intrinsic helpers shared by the 32-element block kernels (`Q4_0` … `Q8_1`), which process eight blocks per step.
//!
//! The helpers take and return vectors (no pointers), so they are safe `#[target_feature]`
//! functions: callable without `unsafe` from a kernel that enables the same features.

use super::super::F16;
use core::arch::x86_64::*;

/// The 32 bytes of `q` as a vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_load_i8x32(q: &[i8; 32]) -> __m256i {
    // SAFETY: `q` is 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// The 16 bytes of `q` as a vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_load_u8x16(q: &[u8; 16]) -> __m128i {
    // SAFETY: `q` is 16 readable bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(q.as_ptr().cast()) }
}

/// Eight f16 values (one per block of `bs`, picked by `f`) widened to f32 (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_f16x8_to_f32<B>(bs: &[B; 8], f: impl Fn(&B) -> F16) -> __m256 {
    let h = |k: usize| u64::from(u16::from_le_bytes(f(&bs[k]).0));
    let lo = h(0) | (h(1) << 16) | (h(2) << 32) | (h(3) << 48);
    let hi = h(4) | (h(5) << 16) | (h(6) << 32) | (h(7) << 48);
    _mm256_cvtph_ps(_mm_set_epi64x(hi as i64, lo as i64))
}

/// [`legacy_f16x8_to_f32`] of up to 8 blocks, 0 in the lanes past the end of `bs`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_f16xn_to_f32<B>(bs: &[B], f: impl Fn(&B) -> F16) -> __m256 {
    let h = |k: usize| bs.get(k).map_or(0, |b| u64::from(u16::from_le_bytes(f(b).0)));
    let lo = h(0) | (h(1) << 16) | (h(2) << 32) | (h(3) << 48);
    let hi = h(4) | (h(5) << 16) | (h(6) << 32) | (h(7) << 48);
    _mm256_cvtph_ps(_mm_set_epi64x(hi as i64, lo as i64))
}

/// [`legacy_f16x8_to_f32`] for a whole group of 8 blocks, else [`legacy_f16xn_to_f32`] (the
/// same lanes either way).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_f16_to_f32<B>(bs: &[B], f: impl Fn(&B) -> F16) -> __m256 {
    match bs.first_chunk::<8>() {
        Some(b8) if bs.len() == 8 => legacy_f16x8_to_f32(b8, f),
        _ => legacy_f16xn_to_f32(bs, f),
    }
}

/// Sums the eight `i32` lanes of each of `p` exactly: lane `k` of the result is `Σ p[k]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_hsum8_i32x8(p: [__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(p[0], p[1]);
    let h23 = _mm256_hadd_epi32(p[2], p[3]);
    let h45 = _mm256_hadd_epi32(p[4], p[5]);
    let h67 = _mm256_hadd_epi32(p[6], p[7]);
    // Each 128-bit half of h0123 holds [Σ p0, Σ p1, Σ p2, Σ p3] over that half's lanes.
    let h0123 = _mm256_hadd_epi32(h01, h23);
    let h4567 = _mm256_hadd_epi32(h45, h67);
    let lo = _mm256_permute2x128_si256::<0x20>(h0123, h4567);
    let hi = _mm256_permute2x128_si256::<0x31>(h0123, h4567);
    _mm256_add_epi32(lo, hi)
}

/// Maximum of the eight `f32` lanes of `v` (no NaN lanes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_hmax_f32x8(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_max_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// `Σ x·y` of signed bytes in eight `i32` lanes (each lane four adjacent products), with
/// `maddubs`: `|x|` times `y` carrying `x`'s sign. Exact unless `y` holds -128 where `x < 0`
/// (activation quantizers never make -128); `x` may be any byte.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_dot_i8_avx2(x: __m256i, y: __m256i) -> __m256i {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1))
}

/// `Σ u·y` of unsigned bytes `u` (at most 127, so pairs cannot saturate) and signed bytes `y`, in
/// eight `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_dot_u7i8_avx2(u: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1))
}

/// [`legacy_dot_i8_avx2`] with `vpdpbusd` (same precondition on `y`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn legacy_dot_i8_vnni(x: __m256i, y: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// The 32 nibbles of 16 bytes as bytes 0..16 in element order: low nibbles first, then high.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_nibbles(qs: __m128i) -> __m256i {
    let b = _mm256_broadcastsi128_si256(qs);
    let b = _mm256_srlv_epi64(b, _mm256_set_epi64x(4, 4, 0, 0));
    _mm256_and_si256(b, _mm256_set1_epi8(0x0F))
}

/// Byte `j` is `0xFF` where bit `j` of `bits` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_bytes_from_bits(bits: u32) -> __m256i {
    let shuf = _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0);
    let b = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), shuf);
    let b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
    _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1))
}

/// Defines the `vec_dot` kernels of a 32-element block format: one row with one activation row
/// (`$name`), and consecutive rows with four activation rows (`$rows4`, a batch's inner loop).
/// Groups of 8 blocks have their exact `i32` dots reduced together and scaled by `d_x * d_y`
/// (plus `m_x * s_y` with `min`) in f32 lanes; the last, partial group has zero dots and zero
/// scales for its missing blocks. Every block's `sumi` is exact, as in the scalar twin; only the
/// order of the f32 sum differs — and it is the same in both kernels, so `$rows4`'s results are
/// `$name`'s bit for bit. `unpack` maps a weight block to a vector of its 32 values, `dot` such a
/// vector and an activation block to eight `i32` lanes; `offset`, where given, an activation block
/// alone to lanes to subtract (the weights' zero point times the activations: `$rows4` works it
/// out once per activation block, not once per weight row).
///
/// `$rows4` takes up to [`TILE_ROWS`] rows at a time through chunks of [`TILE_BLOCKS`] blocks,
/// converting the four activation rows' scales (and offsets) once per chunk for all those rows.
macro_rules! legacy_vec_dot {
    (
        $(#[$doc:meta])*
        $name:ident, $rows4:ident, $feat:literal, $X:ty, $Y:ty,
        unpack |$x:ident| $unpack:expr, dot |$w:ident, $y:ident| $dot:expr
        $(, offset |$oy:ident| $offset:expr)? $(, min: $m:ident * $s:ident)?
    ) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU must run every feature this function enables.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $name(xs: &[$X], ys: &[$Y]) -> f32 {
            use $crate::quant::x86::blocks32::*;
            use core::arch::x86_64::*;
            #[inline]
            #[target_feature(enable = $feat)]
            fn block($x: &$X, $y: &$Y) -> __m256i {
                let $w = $unpack;
                let p = $dot;
                $(let p = { let $oy = $y; _mm256_sub_epi32(p, $offset) };)?
                p
            }
            let n = xs.len().min(ys.len());
            let (xc, xt) = xs[..n].as_chunks::<8>();
            let (yc, yt) = ys[..n].as_chunks::<8>();
            let mut acc = _mm256_setzero_ps();
            for (x8, y8) in xc.iter().zip(yc) {
                let mut p = [_mm256_setzero_si256(); 8];
                for k in 0..8 {
                    p[k] = block(&x8[k], &y8[k]);
                }
                let sumi = legacy_hsum8_i32x8(p);
                legacy_vec_dot!(@scale acc, sumi, legacy_f16x8_to_f32(x8, |b| b.d), legacy_f16x8_to_f32(y8, |b| b.d)
                    $(, min: legacy_f16x8_to_f32(x8, |b| b.$m), legacy_f16x8_to_f32(y8, |b| b.$s))?);
            }
            if !xt.is_empty() {
                // The last, partial group: missing blocks have zero dots and zero scales.
                let mut p = [_mm256_setzero_si256(); 8];
                for (p, (x, y)) in p.iter_mut().zip(xt.iter().zip(yt)) {
                    *p = block(x, y);
                }
                let sumi = legacy_hsum8_i32x8(p);
                legacy_vec_dot!(@scale acc, sumi, legacy_f16xn_to_f32(xt, |b| b.d), legacy_f16xn_to_f32(yt, |b| b.d)
                    $(, min: legacy_f16xn_to_f32(xt, |b| b.$m), legacy_f16xn_to_f32(yt, |b| b.$s))?);
            }
            super::common::hsum_f32_avx2(acc)
        }

        $(#[$doc])*
        /// Consecutive rows against four activation rows: `out[c][r]` is `
        #[doc = stringify!($name)]
        /// (row r, ys[c])`, bit for bit. Rows are `ys[0].len()` blocks long; `out[c]` holds one
        /// value per row.
        ///
        /// # Safety
        /// The CPU must run every feature this function enables.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $rows4(xs: &[$X], ys: [&[$Y]; 4], out: [&mut [f32]; 4]) {
            use $crate::quant::x86::blocks32::*;
            use core::arch::x86_64::*;
            #[inline]
            #[target_feature(enable = $feat)]
            fn unpack($x: &$X) -> __m256i {
                $unpack
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn dot($w: __m256i, $y: &$Y) -> __m256i {
                $dot
            }
            const G: usize = TILE_BLOCKS / 8;
            let nb = ys.iter().fold(usize::MAX, |n, y| n.min(y.len()));
            if nb == 0 {
                return;
            }
            let n_rows = out.iter().fold(xs.len() / nb, |n, o| n.min(o.len()));
            let [o0, o1, o2, o3] = out;
            let mut r0 = 0;
            while r0 < n_rows {
                let rows = (n_rows - r0).min(TILE_ROWS);
                let mut acc = [[_mm256_setzero_ps(); 4]; TILE_ROWS];
                let mut c0 = 0;
                while c0 < nb {
                    let cn = (nb - c0).min(TILE_BLOCKS);
                    // The activations' side of this chunk, per column and group of 8 blocks:
                    // scales (and sums), and the lane sums of the offsets.
                    let mut dy = [[_mm256_setzero_ps(); G]; 4];
                    $(let mut $s = [[_mm256_setzero_ps(); G]; 4];)?
                    #[allow(unused_mut)]
                    let mut off = [[_mm256_setzero_si256(); G]; 4];
                    for c in 0..4 {
                        for g in 0..cn.div_ceil(8) {
                            let yb = ys[c].get(c0 + 8 * g..(c0 + 8 * g + 8).min(c0 + cn)).unwrap_or(&[]);
                            dy[c][g] = legacy_f16_to_f32(yb, |b| b.d);
                            $($s[c][g] = legacy_f16_to_f32(yb, |b| b.$s);)?
                            $(
                                let mut o = [_mm256_setzero_si256(); 8];
                                for (o, $oy) in o.iter_mut().zip(yb) {
                                    *o = $offset;
                                }
                                off[c][g] = legacy_hsum8_i32x8(o);
                            )?
                        }
                    }
                    for r in 0..rows {
                        let row = xs.get((r0 + r) * nb + c0..(r0 + r) * nb + c0 + cn).unwrap_or(&[]);
                        for g in 0..cn.div_ceil(8) {
                            let xb = row.get(8 * g..(8 * g + 8).min(cn)).unwrap_or(&[]);
                            let mut w = [_mm256_setzero_si256(); 8];
                            for (w, x) in w.iter_mut().zip(xb) {
                                *w = unpack(x);
                            }
                            let dx = legacy_f16_to_f32(xb, |b| b.d);
                            $(let mx = legacy_f16_to_f32(xb, |b| b.$m);)?
                            for c in 0..4 {
                                let yb = ys[c].get(c0 + 8 * g..c0 + 8 * g + xb.len()).unwrap_or(&[]);
                                let mut p = [_mm256_setzero_si256(); 8];
                                for (p, (w, y)) in p.iter_mut().zip(w.iter().zip(yb)) {
                                    *p = dot(*w, y);
                                }
                                let sumi = _mm256_sub_epi32(legacy_hsum8_i32x8(p), off[c][g]);
                                legacy_vec_dot!(@scale acc[r][c], sumi, dx, dy[c][g] $(, min: mx, $s[c][g])?);
                            }
                        }
                    }
                    c0 += cn;
                }
                use super::common::hsum_f32_avx2 as hsum;
                for r in 0..rows {
                    let at = r0 + r;
                    if let (Some(a), Some(b), Some(c), Some(d)) = (o0.get_mut(at), o1.get_mut(at), o2.get_mut(at), o3.get_mut(at)) {
                        (*a, *b, *c, *d) = (hsum(acc[r][0]), hsum(acc[r][1]), hsum(acc[r][2]), hsum(acc[r][3]));
                    }
                }
                r0 += rows;
            }
        }
    };
    (@scale $acc:expr, $sumi:expr, $dx:expr, $dy:expr $(, min: $mx:expr, $sy:expr)?) => {
        let d = _mm256_mul_ps($dx, $dy);
        $acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps($sumi), d, $acc);
        $($acc = _mm256_fmadd_ps($mx, $sy, $acc);)?
    };
}
pub(crate) use legacy_vec_dot;

/// Rows the four-row batch kernels of the 32-element formats take at a time.
pub(crate) const TILE_ROWS: usize = 4;
/// Blocks per chunk in those kernels (a multiple of 8): the activations' scales of one chunk of
/// four rows are converted once for `TILE_ROWS` weight rows.
pub(crate) const TILE_BLOCKS: usize = 32;
