//! Helpers shared by the NEON kernels.

use crate::quant::F16;
use core::arch::aarch64::*;
use core::sync::atomic::{AtomicU8, Ordering};

/// 0: not yet read; 1: no dotprod; 2: dotprod.
static DOTPROD: AtomicU8 = AtomicU8::new(0);

/// Whether the CPU has `sdot`/`udot` (read once; the ID register read traps to the kernel).
#[inline]
pub(crate) fn dotprod() -> bool {
    match DOTPROD.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let has = crate::isa::features().dotprod;
            DOTPROD.store(if has { 2 } else { 1 }, Ordering::Relaxed);
            has
        }
    }
}

/// `acc + Σ a·b` over groups of four bytes: `sdot` when `D`, else `smull` + `sadalp`
/// (the same four lane sums either way, no overflow: each product fits in i16).
///
/// # Safety
/// With `D`, the CPU must support dotprod ([`dotprod`]).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_i8<const D: bool>(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    if D {
        let mut acc = acc;
        // SAFETY: register-only; the caller guarantees the CPU has dotprod. (`vdotq_s32` is not
        // yet a stable intrinsic, so the instruction is written out.)
        unsafe {
            core::arch::asm!(
                ".arch_extension dotprod",
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        acc
    } else {
        let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        let hi = vmull_high_s8(a, b);
        vpadalq_s16(vpadalq_s16(acc, lo), hi)
    }
}

/// `Σ a0·b0 + a1·b1` as four lanes (a 32-element dot product).
///
/// # Safety
/// As [`dot_i8`].
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot32<const D: bool>(a0: int8x16_t, b0: int8x16_t, a1: int8x16_t, b1: int8x16_t) -> int32x4_t {
    // SAFETY: forwarded from the caller.
    unsafe { dot_i8::<D>(dot_i8::<D>(vdupq_n_s32(0), a0, b0), a1, b1) }
}

/// Widens a half-precision scale (exact; one `fcvt`, instead of the portable bit manipulation).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn f16(h: F16) -> f32 {
    let bits = u16::from_le_bytes(h.0);
    let out: f32;
    // SAFETY: a register-only conversion of the aarch64 baseline.
    unsafe {
        core::arch::asm!(
            "fcvt {o:s}, {i:h}",
            i = in(vreg) bits,
            o = lateout(vreg) out,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// Four f16 scales widened (exact; one `fcvtl`).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn f16x4(h: [F16; 4]) -> float32x4_t {
    let bits = h.iter().rev().fold(0u64, |a, h| (a << 16) | u64::from(u16::from_le_bytes(h.0)));
    let v = vcreate_u16(bits);
    let out: float32x4_t;
    // SAFETY: a register-only conversion of the aarch64 baseline.
    unsafe {
        core::arch::asm!(
            "fcvtl {o:v}.4s, {i:v}.4h",
            i = in(vreg) v,
            o = lateout(vreg) out,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// Dot product of two rows of 32-element blocks, four blocks at a time: `dot` gives a block's
/// integer sum as four lanes; `scale4` turns four blocks' exact sums (as f32: |sum| < 2^24) into
/// their contributions, exactly as the scalar twin computes each one; `scale1` does the same for
/// one block of the tail. Only the order of the float additions differs from the twin.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn dot_blocks4<X, Y>(
    xs: &[X],
    ys: &[Y],
    dot: impl Fn(&X, &Y) -> int32x4_t,
    scale4: impl Fn(float32x4_t, &[X; 4], &[Y; 4]) -> float32x4_t,
    scale1: impl Fn(f32, &X, &Y) -> f32,
) -> f32 {
    let n = xs.len().min(ys.len());
    let (xs, ys) = (&xs[..n], &ys[..n]);
    let (xc, xt) = xs.as_chunks::<4>();
    let (yc, yt) = ys.as_chunks::<4>();
    let mut acc = vdupq_n_f32(0.0);
    for (x, y) in xc.iter().zip(yc) {
        let p: [int32x4_t; 4] = core::array::from_fn(|k| dot(&x[k], &y[k]));
        let sums = vcvtq_f32_s32(vpaddq_s32(vpaddq_s32(p[0], p[1]), vpaddq_s32(p[2], p[3])));
        acc = vaddq_f32(acc, scale4(sums, x, y));
    }
    let tail: f32 = xt.iter().zip(yt).map(|(x, y)| scale1(vaddvq_s32(dot(x, y)) as f32, x, y)).sum();
    vaddvq_f32(acc) + tail
}

/// Loads `i8`s `off..off + 16` of `v`, or zeros if `v` is too short (never the case in the kernels).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn ld_i8(v: &[i8], off: usize) -> int8x16_t {
    match v.get(off..off + 16) {
        // SAFETY: the slice has 16 readable bytes.
        Some(s) => unsafe { vld1q_s8(s.as_ptr()) },
        None => vdupq_n_s8(0),
    }
}

/// Loads bytes `off..off + 16` of `v`, or zeros if `v` is too short (never the case in the kernels).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn ld_u8(v: &[u8], off: usize) -> uint8x16_t {
    match v.get(off..off + 16) {
        // SAFETY: the slice has 16 readable bytes.
        Some(s) => unsafe { vld1q_u8(s.as_ptr()) },
        None => vdupq_n_u8(0),
    }
}

/// Reinterprets unsigned bytes (all < 128 in the kernels) as signed.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn s8(v: uint8x16_t) -> int8x16_t {
    vreinterpretq_s8_u8(v)
}

/// Low and high nibbles of 16 bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn nibbles(v: uint8x16_t) -> (uint8x16_t, uint8x16_t) {
    (vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v))
}

/// The fifth bits of a `Q5_0`/`Q5_1` block as `0x10` bytes: elements 0..16 and 16..32.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn q5_high_bits(qh: [u8; 4]) -> (uint8x16_t, uint8x16_t) {
    // Byte i of the mask selects bit i % 8.
    let mask = vreinterpretq_u8_u64(vdupq_n_u64(0x8040_2010_0804_0201));
    let sel = |a: u8, b: u8| vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(a), vdup_n_u8(b)), mask), vdupq_n_u8(0x10));
    (sel(qh[0], qh[1]), sel(qh[2], qh[3]))
}

/// The sum of the four lanes widened to i32 of `Σ bsums[2i..2i+2] · mins[i]` for the 8 pairs
/// of a `Q8_K` block's 16 group sums (the K-quant minimum correction).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn bsum_pairs_dot(bsums: &[i16; 16], mins: [i32; 8]) -> i32 {
    let ld16 = |o: usize| match bsums.get(o..o + 8) {
        // SAFETY: the slice has 8 readable i16s.
        Some(s) => unsafe { vld1q_s16(s.as_ptr()) },
        None => vdupq_n_s16(0),
    };
    let ld32 = |o: usize| match mins.get(o..o + 4) {
        // SAFETY: the slice has 4 readable i32s.
        Some(s) => unsafe { vld1q_s32(s.as_ptr()) },
        None => vdupq_n_s32(0),
    };
    let p0 = vpaddlq_s16(ld16(0));
    let p1 = vpaddlq_s16(ld16(8));
    vaddvq_s32(vmlaq_s32(vmulq_s32(p0, ld32(0)), p1, ld32(4)))
}

/// Generates `pub(crate) unsafe fn $name(xs, ys) -> f32`, which runs `$body::<true>` (with `sdot`)
/// when the CPU has dotprod and `$body::<false>` otherwise, and (for the tests)
/// `$base`, which always runs `$body::<false>`.
macro_rules! neon_dot_entry {
    ($(#[$doc:meta])* $name:ident, $base:ident, $body:ident, $x:ty, $y:ty) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU must support NEON (every aarch64 CPU does).
        #[target_feature(enable = "neon")]
        pub(crate) unsafe fn $name(xs: &[$x], ys: &[$y]) -> f32 {
            if $crate::quant::arm::common::dotprod() {
                // SAFETY: the CPU reports dotprod.
                unsafe { $body::<true>(xs, ys) }
            } else {
                // SAFETY: the baseline body needs only NEON.
                unsafe { $body::<false>(xs, ys) }
            }
        }

        /// The baseline (no dotprod) path of the same kernel, for the tests.
        ///
        /// # Safety
        /// The CPU must support NEON (every aarch64 CPU does).
        #[cfg(test)]
        #[target_feature(enable = "neon")]
        pub(crate) unsafe fn $base(xs: &[$x], ys: &[$y]) -> f32 {
            // SAFETY: the baseline body needs only NEON.
            unsafe { $body::<false>(xs, ys) }
        }
    };
}
pub(crate) use neon_dot_entry;
