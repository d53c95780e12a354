//! Every SIMD op of the forward pass against its scalar twin, on every tier this CPU runs:
//! random data of odd lengths, zeros, all-equal and sparse rows, huge and tiny values.
//!
//! Tolerances:
//! * RoPE and the GELU table: bit for bit (the kernels round every product as the scalar code).
//! * RMSNorm: 2 ulp (the f64 sum of squares is reordered; its rounding to f32 may flip).
//! * softmax and SiLU: the vector `expf` is within [`EXP_ULP`] ulp of libm's (checked below), so
//!   softmax outputs within 1e-6 relative (exp error, the f32 `1/sum` rounding), SiLU within 2e-6
//!   relative (exp error, then the division).
//! * attention: see [`check_attention`].

use super::attention::{attend_head, AttnScratch, Window};
use super::*;
use crate::isa::Simd;
use crate::sample::Rng;
use crate::session::{KvCache, KvSlice, KvType};
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

/// How the float data of a case is drawn.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Normal,
    Tiny,
    Huge,
    Zero,
    AllEqual,
    Sparse,
    Wide,
}

const SHAPES: [Shape; 7] =
    [Shape::Normal, Shape::Tiny, Shape::Huge, Shape::Zero, Shape::AllEqual, Shape::Sparse, Shape::Wide];

fn floats(rng: &mut Rng, n: usize, shape: Shape) -> Vec<f32> {
    let c = rng.normal();
    (0..n)
        .map(|i| match shape {
            Shape::Normal => rng.normal(),
            Shape::Tiny => rng.normal() * 1e-30,
            Shape::Huge => rng.normal() * 1e30,
            Shape::Zero => 0.0,
            Shape::AllEqual => c,
            Shape::Sparse => {
                if i % 17 == 0 {
                    rng.normal() * 100.0
                } else {
                    0.0
                }
            }
            Shape::Wide => rng.normal() * 40.0,
        })
        .collect()
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// `a` within `rel` of `b` (relative), or both NaN, or equal.
fn close(a: f32, b: f32, rel: f32) -> bool {
    same(a, b) || (a - b).abs() <= rel * b.abs() || (a - b).abs() < 1e-37
}

fn ulps(a: f32, b: f32) -> u32 {
    if same(a, b) {
        return 0;
    }
    let key = |x: f32| {
        let i = x.to_bits() as i32;
        if i < 0 {
            i32::MIN - i
        } else {
            i
        }
    };
    key(a).abs_diff(key(b))
}

/// The vector `expf`'s error bound against libm (`vector_exp_is_within_bound` measures 1 ulp on AVX2 and AVX-512).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const EXP_ULP: u32 = 1;

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn simd_exp(simd: Simd, x: &[f32]) -> Vec<f32> {
    use core::arch::x86_64::*;
    let mut out = vec![0f32; x.len()];
    for (o, c) in out.chunks_mut(16).zip(x.chunks(16)) {
        let mut buf = [0f32; 16];
        buf[..c.len()].copy_from_slice(c);
        let mut r = [0f32; 16];
        match simd.isa() {
            // SAFETY: the tier is available (a `Simd` of it exists); buffers hold 16 floats.
            crate::isa::Isa::Avx512 => unsafe {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
                unsafe fn go(b: &[f32; 16], r: &mut [f32; 16]) {
                    // SAFETY: both arrays hold 16 floats.
                    unsafe { _mm512_storeu_ps(r.as_mut_ptr(), super::x86::common::exp512(_mm512_loadu_ps(b.as_ptr()))) }
                }
                go(&buf, &mut r)
            },
            // SAFETY: as above.
            crate::isa::Isa::Avx2 => unsafe {
                #[target_feature(enable = "avx2,fma,f16c")]
                unsafe fn go(b: &[f32; 16], r: &mut [f32; 16]) {
                    for i in [0, 8] {
                        // SAFETY: both arrays hold 16 floats.
                        unsafe {
                            _mm256_storeu_ps(
                                r.as_mut_ptr().add(i),
                                super::x86::common::exp256(_mm256_loadu_ps(b.as_ptr().add(i))),
                            )
                        }
                    }
                }
                go(&buf, &mut r)
            },
            _ => r.iter_mut().zip(&buf).for_each(|(r, &b)| *r = libm::expf(b)),
        }
        o.copy_from_slice(&r[..c.len()]);
    }
    out
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[test]
fn vector_exp_is_within_bound() {
    let mut x: Vec<f32> = vec![0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 88.72, 88.73, 89.0, -87.0];
    x.extend([-87.4, -100.0, -103.9, -104.0, -110.0, 1e-40, -1e-40, 1e30, -1e30, 0.5, -0.5, 1.0, -1.0]);
    // Every 97th float in the range where expf is neither 0 nor inf, and a dense sweep near 0.
    let (lo, hi) = ((-104.0f32).to_bits(), 89.0f32.to_bits());
    x.extend((0..hi).step_by(97).map(f32::from_bits));
    x.extend(((1u32 << 31)..lo).step_by(97).map(f32::from_bits));
    x.extend((-20_000..20_000).map(|i| i as f32 * 1e-4));
    for simd in Simd::available() {
        let got = simd_exp(simd, &x);
        let mut worst = (0u32, 0f32);
        for (&g, &v) in got.iter().zip(&x) {
            let want = libm::expf(v);
            // Results below the normal range lose precision in any method: compare absolutely.
            let u = if want < f32::MIN_POSITIVE { u32::from((g - want).abs() > 2e-45) } else { ulps(g, want) };
            if u > worst.0 {
                worst = (u, v);
            }
        }
        std::eprintln!("{:?}: expf worst {} ulp (at {})", simd.isa(), worst.0, worst.1);
        assert!(worst.0 <= EXP_ULP, "{:?}: expf off by {} ulp at {}", simd.isa(), worst.0, worst.1);
    }
}

fn check_softmax(n: usize, seed: u64, shape: Shape) {
    let mut rng = Rng::new(seed);
    let mut x = floats(&mut rng, n, shape);
    if seed.is_multiple_of(5) && n > 2 {
        x[1] = f32::NEG_INFINITY; // masked positions
    }
    let mut want = x.clone();
    softmax_with(Simd::SCALAR, &mut want);
    for simd in Simd::available() {
        let mut got = x.clone();
        softmax_with(simd, &mut got);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!(close(g, w, 1e-6), "{:?} n {n} {shape:?}: [{i}] {g} vs {w}", simd.isa());
        }
    }
}

fn check_rms_norm(n: usize, seed: u64, shape: Shape) {
    let mut rng = Rng::new(seed);
    let x = floats(&mut rng, n, shape);
    let w = floats(&mut rng, n, Shape::Normal);
    let mut want = vec![0f32; n];
    rms_norm_with(Simd::SCALAR, &mut want, &x, &w, 1e-6);
    for simd in Simd::available() {
        let mut got = vec![0f32; n];
        rms_norm_with(simd, &mut got, &x, &w, 1e-6);
        let mut inplace = x.clone();
        rms_norm_in_place_with(simd, &mut inplace, &w, 1e-6);
        for (i, ((&g, &p), &e)) in got.iter().zip(&inplace).zip(&want).enumerate() {
            assert!(ulps(g, e) <= 2, "{:?} n {n} {shape:?}: [{i}] {g} vs {e}", simd.isa());
            assert!(same(g, p), "{:?}: in place differs at {i}", simd.isa());
        }
    }
}

fn check_activations(n: usize, seed: u64, shape: Shape, table: &GeluTable) {
    let mut rng = Rng::new(seed);
    let g = floats(&mut rng, n, shape);
    // `u` one shorter when odd: the kernels work on the common prefix.
    let u = floats(&mut rng, n - n % 2, Shape::Normal);
    let (mut ws, mut wg) = (g.clone(), g.clone());
    silu_mul_with(Simd::SCALAR, &mut ws, &u);
    table.gelu_mul_with(Simd::SCALAR, &mut wg, &u);
    for simd in Simd::available() {
        let (mut s, mut gl) = (g.clone(), g.clone());
        silu_mul_with(simd, &mut s, &u);
        table.gelu_mul_with(simd, &mut gl, &u);
        for i in 0..n {
            assert!(close(s[i], ws[i], 2e-6), "{:?} silu n {n} {shape:?}: [{i}] {} vs {}", simd.isa(), s[i], ws[i]);
            assert!(same(gl[i], wg[i]), "{:?} gelu n {n} {shape:?}: [{i}] {} vs {}", simd.isa(), gl[i], wg[i]);
        }
    }
}

fn check_rope(head_len: usize, n_rot: usize, pos: usize, seed: u64, shape: Shape) {
    let mut rng = Rng::new(seed);
    let x = floats(&mut rng, head_len, shape);
    let ff: Vec<f32> = (0..n_rot / 2).map(|_| 1.0 + rng.next_f32()).collect();
    for mode in [RopeMode::Normal, RopeMode::Neox] {
        let mut cache = vec![0f32; n_rot];
        let rope = Rope::new(&mut cache, pos, n_rot, 10000.0, 0.5, seed.is_multiple_of(2).then_some(&ff[..]), mode);
        let mut want = x.clone();
        rope.apply_reference(&mut want);
        for simd in Simd::available() {
            let mut got = x.clone();
            rope.apply_with(simd, &mut got);
            for i in 0..head_len {
                assert!(same(got[i], want[i]), "{:?} {mode:?} len {head_len} n_rot {n_rot}: [{i}]", simd.isa());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn softmax_matches_scalar(n in 0usize..300, seed in any::<u64>(), s in 0usize..7) {
        check_softmax(n, seed, SHAPES[s]);
    }

    #[test]
    fn rms_norm_matches_scalar(n in 0usize..600, seed in any::<u64>(), s in 0usize..7) {
        check_rms_norm(n, seed, SHAPES[s]);
    }

    #[test]
    fn rope_matches_scalar(head_len in 0usize..300, n_rot in 0usize..300, pos in 0usize..100_000,
                           seed in any::<u64>(), s in 0usize..7) {
        check_rope(head_len, n_rot & !1, pos, seed, SHAPES[s]);
    }
}

#[test]
fn activations_match_scalar() {
    let table = GeluTable::new();
    for (k, n) in [0usize, 1, 7, 8, 15, 16, 17, 31, 64, 100, 257, 1000].into_iter().enumerate() {
        for (j, shape) in SHAPES.into_iter().enumerate() {
            check_activations(n, (k * 7 + j) as u64, shape, &table);
        }
    }
    // Every f16 value as input (and the clamps around ±10, NaN and the infinities).
    let mut all: Vec<f32> = (0..=u16::MAX).map(|b| crate::quant::F16(b.to_le_bytes()).to_f32()).collect();
    all.extend([9.999, 10.0, 10.001, -9.999, -10.0, -10.001, f32::MAX, f32::MIN, 1e-45]);
    let u = vec![1.5f32; all.len()];
    let mut want = all.clone();
    table.gelu_mul_with(Simd::SCALAR, &mut want, &u);
    let mut ws = all.clone();
    silu_mul_with(Simd::SCALAR, &mut ws, &u);
    for simd in Simd::available() {
        let mut got = all.clone();
        table.gelu_mul_with(simd, &mut got, &u);
        let mut s = all.clone();
        silu_mul_with(simd, &mut s, &u);
        for i in 0..all.len() {
            assert!(same(got[i], want[i]), "{:?} gelu({})", simd.isa(), all[i]);
            assert!(close(s[i], ws[i], 2e-6), "{:?} silu({}): {} vs {}", simd.isa(), all[i], s[i], ws[i]);
        }
    }
}

/// A cache of `n_layer` layers × `n_ctx` positions × `n_kv` heads of `hd`, filled at random.
fn random_cache(ty: KvType, n_layer: usize, n_ctx: usize, n_kv: usize, hd: usize, rng: &mut Rng, amp: f32) -> KvCache {
    let mut kv = KvCache::try_new(ty, n_layer, n_ctx, n_kv * hd).unwrap();
    for l in 0..n_layer {
        for p in 0..n_ctx {
            let k: Vec<f32> = (0..n_kv * hd).map(|_| rng.normal() * amp).collect();
            let v: Vec<f32> = (0..n_kv * hd).map(|_| rng.normal()).collect();
            kv.store(l, p, &k, &v);
        }
    }
    kv
}

/// Key element `i` of `layer` (a test-side reader of the cache).
fn key_at(kv: &KvCache, layer: usize, i: usize) -> f32 {
    match kv.keys(layer) {
        Some(KvSlice::F16(k)) => k[i].to_f32(),
        Some(KvSlice::F32(k)) => k[i],
        None => 0.0,
    }
}

/// The per-head loop the forward pass had before [`attend_head`], on the cache's own accessors.
fn attend_reference(kv: &KvCache, w: Window, q: &[f32], kq_scale: f32, out: &mut [f32]) -> Vec<f32> {
    let hd = q.len();
    let half = kv.ty == KvType::F16;
    let q: Vec<f32> = q.iter().map(|&v| if half { crate::quant::F16::from_f32(v).to_f32() } else { v }).collect();
    let base = kv.index(w.layer, 0);
    let mut att: Vec<f32> =
        (w.first..=w.pos).map(|t| kv.key_dot(base + t * kv.kv_dim + w.kv_head * hd, &q).unwrap() * kq_scale).collect();
    softmax_with(Simd::SCALAR, &mut att);
    out.fill(0.0);
    for (t, &a) in (w.first..=w.pos).zip(&att) {
        let a = if half { crate::quant::F16::from_f32(a).to_f32() } else { a };
        kv.add_value(base + t * kv.kv_dim + w.kv_head * hd, a, out).unwrap();
    }
    att
}

/// Every tier against the scalar path, which must be the old loop bit for bit.
///
/// Tolerance of a tier's `out[d]`: the scores are summed in another order (error ≲ hd·2⁻²⁴·Σ|q·k|),
/// which moves each probability by a relative ~1e-6 (with the vector `expf`'s few ulp); for an f16
/// cache that can flip a probability's rounding to f16, a relative 2⁻¹¹. So
/// `|Δout[d]| ≤ (2⁻¹⁰ [f16 only] + 2·max_t Δs_t + (8 + n)·2⁻²⁴) · Σ_t p_t·|V_t[d]|`, the last term
/// for the `expf`, `1/sum` and the reordered sum over the n positions.
fn check_attention(ty: KvType, hd: usize, n_ctx: usize, seed: u64, amp: f32) {
    let mut rng = Rng::new(seed);
    let (n_layer, n_kv) = (2, 2);
    let kv = random_cache(ty, n_layer, n_ctx, n_kv, hd, &mut rng, amp);
    let q: Vec<f32> = (0..hd).map(|_| rng.normal()).collect();
    let scale = 1.0 / libm::sqrtf(hd.max(1) as f32);
    let pos = rng.below(n_ctx as u64) as usize;
    let first = if seed.is_multiple_of(3) { rng.below(pos as u64 + 1) as usize } else { 0 };
    let w = Window { layer: (seed % 2) as usize, kv_head: (seed / 2 % 2) as usize, first, pos };
    let mut want = vec![0f32; hd];
    let p = attend_reference(&kv, w, &q, scale, &mut want);
    let (mut qb, mut att) = (vec![0f32; hd], vec![0f32; n_ctx]);
    let mut scalar = vec![1f32; hd];
    let n = attend_head(Simd::SCALAR, &kv, w, &q, scale, AttnScratch { q: &mut qb, att: &mut att }, &mut scalar);
    assert_eq!(n, pos + 1 - first);
    for d in 0..hd {
        assert!(same(scalar[d], want[d]), "scalar path differs from the old loop at {d}: {} vs {}", scalar[d], want[d]);
    }
    // Worst error of a reordered score: hd·2⁻²⁴·Σ_d |q_d·k_td|·scale.
    let eps = 1.0 / (1u32 << 24) as f32;
    let qh: Vec<f32> =
        q.iter().map(|&v| if ty == KvType::F16 { crate::quant::F16::from_f32(v).to_f32() } else { v }).collect();
    let ds = (first..=pos)
        .map(|t| {
            let at = kv.index(w.layer, t) + w.kv_head * hd;
            let s: f32 = (0..hd).map(|d| (qh[d] * key_at(&kv, w.layer, at - kv.index(w.layer, 0) + d)).abs()).sum();
            hd as f32 * eps * s * scale
        })
        .fold(0.0f32, f32::max);
    let f16_flip = if ty == KvType::F16 { 1.0 / 1024.0 } else { 0.0 };
    let rel = f16_flip + 2.0 * ds + (8 + pos + 1 - first) as f32 * eps;
    for simd in Simd::available() {
        let mut got = vec![1f32; hd];
        let n = attend_head(simd, &kv, w, &q, scale, AttnScratch { q: &mut qb, att: &mut att }, &mut got);
        assert_eq!(n, pos + 1 - first);
        for d in 0..hd {
            let mut vals = vec![0f32; 1];
            let bound: f32 = (first..=pos)
                .zip(&p)
                .map(|(t, &pt)| {
                    vals[0] = 0.0;
                    kv.add_value(kv.index(w.layer, t) + w.kv_head * hd + d, 1.0, &mut vals).unwrap();
                    pt * vals[0].abs()
                })
                .sum();
            assert!(
                (got[d] - want[d]).abs() <= rel * bound + 1e-6,
                "{:?} {ty:?} hd {hd} n_ctx {n_ctx} {w:?}: out[{d}] {} vs {} (bound {bound})",
                simd.isa(),
                got[d],
                want[d]
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn attention_matches_scalar(hd in prop_oneof![Just(64usize), Just(256), 0usize..80], n_ctx in 1usize..70,
                                seed in any::<u64>(), f16 in any::<bool>(), amp in prop_oneof![Just(1.0f32), Just(30.0), Just(0.0)]) {
        check_attention(if f16 { KvType::F16 } else { KvType::F32 }, hd, n_ctx, seed, amp);
    }
}

#[test]
fn attention_long_context_and_every_head() {
    for (k, (hd, n_ctx)) in [(64usize, 1000usize), (256, 300), (80, 129), (1, 9), (17, 33)].into_iter().enumerate() {
        for ty in [KvType::F16, KvType::F32] {
            for seed in 0..4 {
                check_attention(ty, hd, n_ctx, (k * 16 + seed) as u64, 1.0);
            }
        }
    }
}

#[test]
fn attention_arguments_out_of_range_do_not_panic() {
    let mut rng = Rng::new(3);
    let kv = random_cache(KvType::F16, 2, 8, 2, 16, &mut rng, 1.0);
    let q = vec![1f32; 16];
    for simd in Simd::available() {
        let mut att = vec![0f32; 8];
        let mut qb = vec![0f32; 16];
        let mut out = vec![1f32; 16];
        let run = |w: Window, att: &mut [f32], qb: &mut [f32], out: &mut [f32]| {
            attend_head(simd, &kv, w, &q, 0.25, AttnScratch { q: qb, att }, out)
        };
        let w = Window { layer: 0, kv_head: 0, first: 0, pos: 7 };
        assert_eq!(run(Window { layer: 2, ..w }, &mut att, &mut qb, &mut out), 0);
        assert!(out.iter().all(|&v| v == 0.0));
        assert_eq!(run(Window { kv_head: 2, ..w }, &mut att, &mut qb, &mut out), 0);
        assert_eq!(run(Window { kv_head: usize::MAX, ..w }, &mut att, &mut qb, &mut out), 0);
        assert_eq!(run(Window { first: 5, pos: 3, ..w }, &mut att, &mut qb, &mut out), 0);
        // Positions past the cache are clamped to its end, the window to the scores buffer.
        assert_eq!(run(Window { pos: 1000, ..w }, &mut att, &mut qb, &mut out), 8);
        assert_eq!(run(Window { first: usize::MAX, pos: usize::MAX, ..w }, &mut att, &mut qb, &mut out), 0);
        assert_eq!(run(w, &mut att[..3], &mut qb, &mut out), 3);
        // A short output or query buffer cuts the head dimension (kv_head 1 starts at 8 then).
        let mut short = vec![0f32; 8];
        assert_eq!(run(Window { kv_head: 3, ..w }, &mut att, &mut qb, &mut short), 8);
        assert_eq!(run(w, &mut att, &mut qb[..4], &mut out), 8);
        assert!(out[4..].iter().all(|&v| v == 0.0));
        assert!(out[..4].iter().any(|&v| v != 0.0));
    }
}
