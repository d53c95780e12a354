//! NEON dot products of unquantized rows: `f32`, `F16` and `BF16`, each with itself.

use crate::quant::{BF16, F16};
use core::arch::aarch64::*;

/// Sums four accumulators' lanes.
#[inline]
#[target_feature(enable = "neon")]
fn hsum4(acc: [float32x4_t; 4]) -> f32 {
    vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])))
}

/// `Σ x·y` over the common prefix of two `f32` rows (fused multiply-adds in four accumulators).
///
/// # Safety
/// The CPU must support NEON (every aarch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_f32_neon(xs: &[f32], ys: &[f32]) -> f32 {
    let n = xs.len().min(ys.len());
    let (xs, ys) = (&xs[..n], &ys[..n]);
    let (xc, xt) = xs.as_chunks::<16>();
    let (yc, yt) = ys.as_chunks::<16>();
    let mut acc = [vdupq_n_f32(0.0); 4];
    for (x, y) in xc.iter().zip(yc) {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: `x` and `y` have 16 floats; lanes `4 k .. 4 k + 4` are read.
            let (xv, yv) = unsafe { (vld1q_f32(x.as_ptr().add(4 * k)), vld1q_f32(y.as_ptr().add(4 * k))) };
            *a = vfmaq_f32(*a, xv, yv);
        }
    }
    hsum4(acc) + xt.iter().zip(yt).map(|(&x, &y)| x * y).sum::<f32>()
}

/// Widens 8 half-precision values (exact; `fcvtl`, which every aarch64 CPU has).
#[inline]
#[target_feature(enable = "neon")]
fn f16x8_to_f32(h: uint16x8_t) -> (float32x4_t, float32x4_t) {
    let (lo, hi): (float32x4_t, float32x4_t);
    // SAFETY: register-only conversion instructions of the aarch64 baseline.
    unsafe {
        core::arch::asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    (lo, hi)
}

/// Loads 8 two-byte values (alignment 1).
#[inline]
#[target_feature(enable = "neon")]
fn ld_u16x8<T: bytemuck::Pod>(p: &[T; 8]) -> uint16x8_t {
    const { assert!(core::mem::size_of::<T>() == 2) };
    // SAFETY: `p` is 8 values of 2 bytes: 16 readable bytes.
    vreinterpretq_u16_u8(unsafe { vld1q_u8(p.as_ptr().cast::<u8>()) })
}

/// `Σ x·y` over the common prefix of two rows of 16-bit floats (bfloat16 if `BF`, else IEEE half).
#[inline]
#[target_feature(enable = "neon")]
fn dot16<T: bytemuck::Pod, const BF: bool>(xs: &[T], ys: &[T], scalar: impl Fn(T) -> f32) -> f32 {
    let widen = |h| if BF { bf16x8_to_f32(h) } else { f16x8_to_f32(h) };
    let n = xs.len().min(ys.len());
    let (xs, ys) = (&xs[..n], &ys[..n]);
    let (xc, xt) = xs.as_chunks::<8>();
    let (yc, yt) = ys.as_chunks::<8>();
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut pairs = xc.chunks_exact(2).zip(yc.chunks_exact(2));
    for (x2, y2) in pairs.by_ref() {
        for (i, (x, y)) in x2.iter().zip(y2).enumerate() {
            let ((x0, x1), (y0, y1)) = (widen(ld_u16x8(x)), widen(ld_u16x8(y)));
            acc[2 * i] = vfmaq_f32(acc[2 * i], x0, y0);
            acc[2 * i + 1] = vfmaq_f32(acc[2 * i + 1], x1, y1);
        }
    }
    // An odd last chunk of 8.
    if xc.len() % 2 == 1 {
        if let (Some(x), Some(y)) = (xc.last(), yc.last()) {
            let ((x0, x1), (y0, y1)) = (widen(ld_u16x8(x)), widen(ld_u16x8(y)));
            acc[0] = vfmaq_f32(acc[0], x0, y0);
            acc[1] = vfmaq_f32(acc[1], x1, y1);
        }
    }
    hsum4(acc) + xt.iter().zip(yt).map(|(&x, &y)| scalar(x) * scalar(y)).sum::<f32>()
}

/// `Σ x·y` over the common prefix of two `F16` rows.
///
/// # Safety
/// The CPU must support NEON (every aarch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_f16_neon(xs: &[F16], ys: &[F16]) -> f32 {
    dot16::<F16, false>(xs, ys, F16::to_f32)
}

/// Widens 8 bfloat16 values (a 16-bit shift).
#[inline]
#[target_feature(enable = "neon")]
fn bf16x8_to_f32(h: uint16x8_t) -> (float32x4_t, float32x4_t) {
    (vreinterpretq_f32_u32(vshll_n_u16::<16>(vget_low_u16(h))), vreinterpretq_f32_u32(vshll_high_n_u16::<16>(h)))
}

/// `Σ x·y` over the common prefix of two `BF16` rows.
///
/// # Safety
/// The CPU must support NEON (every aarch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_bf16_neon(xs: &[BF16], ys: &[BF16]) -> f32 {
    dot16::<BF16, true>(xs, ys, BF16::to_f32)
}
