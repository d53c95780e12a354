//! Which SIMD instruction set the kernels use: detected once from the CPU, overridable.
//!
//! The engine is compiled for the baseline of its target (plain x86-64, or aarch64 with NEON);
//! faster kernels are `#[target_feature]` functions chosen at run time. Detection reads `cpuid`
//! and `xgetbv` directly (no `std`), so the kernel module and the CLI pick kernels the same way.
//! Hosts may narrow the choice ([`set`], e.g. from `LLAMUX_ISA`) so that every path can be
//! exercised on a capable machine; a choice the CPU cannot run is refused.
//!
//! Tiers (each kernel set needs all of its tier's features):
//! * [`Isa::Avx2`]: AVX2, FMA, F16C (Haswell, Zen 1 and later).
//! * [`Isa::Avx512`]: AVX-512 F, BW, VL, DQ and VNNI, with AVX2/FMA/F16C (Ice Lake, Zen 4 and later).
//! * [`Isa::Neon`]: aarch64 Advanced SIMD (always present there); `dotprod` noted separately.

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

/// A kernel tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Isa {
    /// Portable Rust: the reference twins of every kernel.
    Scalar = 1,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2 = 2,
    /// x86-64 AVX-512 (F, BW, VL, DQ, VNNI).
    Avx512 = 3,
    /// aarch64 Advanced SIMD.
    Neon = 4,
}

impl Isa {
    /// Every tier, in the order `LLAMUX_ISA` names them.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// Lower-case name (`scalar`, `avx2`, `avx512`, `neon`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses a [`name`](Self::name).
    pub fn from_name(s: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name().eq_ignore_ascii_case(s.trim()))
    }

    fn from_u8(v: u8) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| *i as u8 == v)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// CPU features the kernels care about (what the CPU *and* the OS support).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// AVX2.
    pub avx2: bool,
    /// Fused multiply-add.
    pub fma: bool,
    /// Half-precision conversions.
    pub f16c: bool,
    /// AVX-512 Foundation.
    pub avx512f: bool,
    /// AVX-512 byte/word.
    pub avx512bw: bool,
    /// AVX-512 vector length (128/256-bit forms).
    pub avx512vl: bool,
    /// AVX-512 doubleword/quadword.
    pub avx512dq: bool,
    /// AVX-512 VNNI (`vpdpbusd`).
    pub avx512vnni: bool,
    /// AVX-VNNI (the VEX-encoded 256-bit `vpdpbusd`, without AVX-512).
    pub avxvnni: bool,
    /// aarch64 Advanced SIMD.
    pub neon: bool,
    /// aarch64 `sdot`/`udot`.
    pub dotprod: bool,
}

impl Features {
    /// Whether `isa`'s kernels can run here.
    pub fn supports(&self, isa: Isa) -> bool {
        match isa {
            Isa::Scalar => true,
            Isa::Avx2 => self.avx2 && self.fma && self.f16c,
            Isa::Avx512 => {
                self.supports(Isa::Avx2)
                    && self.avx512f
                    && self.avx512bw
                    && self.avx512vl
                    && self.avx512dq
                    && self.avx512vnni
            }
            Isa::Neon => self.neon,
        }
    }

    /// The fastest tier this CPU runs.
    pub fn best(&self) -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Neon].into_iter().find(|&i| self.supports(i)).unwrap_or(Isa::Scalar)
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_features() -> Features {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    // cpuid exists on every x86-64 CPU; leaves above the maximum are not read.
    let max_leaf = __cpuid(0).eax;
    let l1 = __cpuid(1);
    let l7 = if max_leaf >= 7 {
        __cpuid_count(7, 0)
    } else {
        core::arch::x86_64::CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 }
    };
    let l7_1 = if max_leaf >= 7 && l7.eax >= 1 { __cpuid_count(7, 1).eax } else { 0 };
    let bit = |r: u32, b: u32| r & (1 << b) != 0;
    // The OS must save the vector state: OSXSAVE, then XCR0's SSE|AVX (and opmask|ZMM) bits.
    let xcr0 = if bit(l1.ecx, 27) {
        // SAFETY: OSXSAVE is set, so xgetbv is enabled.
        unsafe { xgetbv0() }
    } else {
        0
    };
    let os_avx = xcr0 & 0b110 == 0b110;
    let os_avx512 = os_avx && xcr0 & 0b1110_0000 == 0b1110_0000;
    Features {
        avx2: os_avx && bit(l7.ebx, 5),
        fma: os_avx && bit(l1.ecx, 12),
        f16c: os_avx && bit(l1.ecx, 29),
        avx512f: os_avx512 && bit(l7.ebx, 16),
        avx512dq: os_avx512 && bit(l7.ebx, 17),
        avx512bw: os_avx512 && bit(l7.ebx, 30),
        avx512vl: os_avx512 && bit(l7.ebx, 31),
        avx512vnni: os_avx512 && bit(l7.ecx, 11),
        avxvnni: os_avx && bit(l7_1, 4),
        neon: false,
        dotprod: false,
    }
}

/// `xgetbv(0)`.
///
/// # Safety
/// The CPU must report OSXSAVE.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    // SAFETY: the caller checked OSXSAVE.
    unsafe { core::arch::x86_64::_xgetbv(0) }
}

#[cfg(target_arch = "aarch64")]
fn detect_features() -> Features {
    // Advanced SIMD is part of the aarch64 baseline. `dotprod` is read from ID_AA64ISAR0_EL1,
    // which Linux emulates for user space (and which the kernel may read directly).
    let isar0: u64;
    // SAFETY: reading an ID register has no side effects; Linux traps and emulates it for EL0.
    unsafe { core::arch::asm!("mrs {}, ID_AA64ISAR0_EL1", out(reg) isar0, options(nomem, nostack, preserves_flags)) };
    Features { neon: true, dotprod: (isar0 >> 44) & 0xf >= 1, ..Features::default() }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect_features() -> Features {
    Features::default()
}

/// 0: not yet chosen; otherwise an `Isa` discriminant.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// The features of this CPU.
pub fn features() -> Features {
    detect_features()
}

/// The tier the kernels use now: the CPU's best unless a host narrowed it with [`set`].
#[inline]
pub fn active() -> Isa {
    match Isa::from_u8(ACTIVE.load(Ordering::Relaxed)) {
        Some(isa) => isa,
        None => {
            let best = features().best();
            ACTIVE.store(best as u8, Ordering::Relaxed);
            best
        }
    }
}

/// A tier the CPU cannot run was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported(pub Isa);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "this CPU cannot run the {} kernels", self.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Unsupported {}

/// Makes the kernels use `isa` from now on (for every thread), if the CPU runs it.
pub fn set(isa: Isa) -> Result<(), Unsupported> {
    if !features().supports(isa) {
        return Err(Unsupported(isa));
    }
    ACTIVE.store(isa as u8, Ordering::Relaxed);
    Ok(())
}

/// Whether the CPU runs `isa`'s kernels (tests use this to check every available path).
pub fn supported(isa: Isa) -> bool {
    features().supports(isa)
}

/// A tier the CPU is known to run: the only way to pick kernels, so that no `#[target_feature]`
/// function is ever reached on a CPU without that feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Simd(Isa);

impl Simd {
    /// `isa`, if the CPU runs it.
    pub fn new(isa: Isa) -> Option<Simd> {
        supported(isa).then_some(Simd(isa))
    }

    /// The portable kernels (always available).
    pub const SCALAR: Simd = Simd(Isa::Scalar);

    /// The tier.
    #[inline]
    pub fn isa(self) -> Isa {
        self.0
    }

    /// Every tier this CPU runs, scalar first (tests compare each against the scalar twin).
    pub fn available() -> impl Iterator<Item = Simd> {
        Isa::ALL.into_iter().filter_map(Simd::new)
    }
}

/// The tier in use now (see [`active`]).
#[inline]
pub fn current() -> Simd {
    Simd(active())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_scalar_is_always_available() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name("AVX2 "), Some(Isa::Avx2));
        assert_eq!(Isa::from_name("sse9"), None);
        assert!(supported(Isa::Scalar));
        assert!(features().supports(features().best()));
    }

    #[test]
    fn unsupported_tiers_are_refused() {
        let f = features();
        for isa in Isa::ALL {
            if !f.supports(isa) {
                assert_eq!(set(isa), Err(Unsupported(isa)));
            }
        }
        #[cfg(target_arch = "x86_64")]
        assert!(!f.supports(Isa::Neon));
    }
}
