//! Edge cases of the x86 kernels that the random-data properties rarely reach: scale unpacking,
//! float conversions at every special value, the `Q8_K` quantizer's tie and non-finite rules,
//! `Q8_K` weights holding -128, and slices of different lengths.

use super::q4_k::k4_scales_mins_avx2;
use crate::isa::Isa;
use crate::isa::Simd;
use crate::quant::q4_k::scale_min_k4;
use crate::quant::*;
use crate::sample::Rng;
use alloc::vec;
use alloc::vec::Vec;
use bytemuck::Zeroable;

#[test]
fn k4_scale_unpacking_matches_scale_min_k4() {
    if Simd::new(Isa::Avx2).is_none() {
        return;
    }
    let mut rng = Rng::new(1);
    for _ in 0..2000 {
        let mut x = BlockQ4K::zeroed();
        x.scales = core::array::from_fn(|_| rng.next_u64() as u8);
        let s = x.scales;
        let mut sm = [0u8; 16];
        // SAFETY: the CPU runs the AVX2 tier (checked above); `sm` is 16 bytes.
        unsafe { core::arch::x86_64::_mm_storeu_si128(sm.as_mut_ptr().cast(), k4_scales_mins_avx2(&x)) };
        for j in 0..8 {
            assert_eq!((sm[j], sm[8 + j]), scale_min_k4(j, &s), "group {j} of {s:?}");
        }
    }
}

/// Floats whose conversions are delicate: zeros, subnormals, rounding ties of both parities,
/// the f16 overflow edge, infinities and NaNs with assorted payloads (quiet and signalling).
fn special_floats(rng: &mut Rng) -> Vec<f32> {
    let mut bits: Vec<u32> = vec![
        0,
        0x8000_0000,
        1,
        0x8000_0001,
        0x007f_ffff,
        0x0080_0000,
        0x7f7f_ffff,
        0xff7f_ffff,
        0x7f80_0000,
        0xff80_0000,
        0x7f80_0001,
        0xff80_0001,
        0x7fc0_0000,
        0xffc0_0000,
        0x7fbf_ffff,
        0x7fff_ffff,
        0xffff_ffff,
        0x7fa0_1000,
        0x3f80_8000, // bf16 tie, even below
        0x3f81_8000, // bf16 tie, odd below
        0x3f80_7fff,
        0x3f80_8001,
        0x3f80_1000, // f16 tie, even below
        0x3f80_3000, // f16 tie, odd below
        65504f32.to_bits(),
        65519.99f32.to_bits(),
        65520f32.to_bits(),
        6.1e-5f32.to_bits(),
        5.96e-8f32.to_bits(),
        2.98e-8f32.to_bits(),
        2.99e-8f32.to_bits(),
        1e-10f32.to_bits(),
    ];
    // Random bit patterns (every class), and random values near the f16 subnormal range.
    bits.extend((0..2000).map(|_| rng.next_u64() as u32));
    bits.extend((0..500).map(|_| (rng.normal() * 1e-5).to_bits()));
    bits.into_iter().map(f32::from_bits).collect()
}

#[test]
fn f16_and_bf16_activations_match_scalar_bits() {
    let x = special_floats(&mut Rng::new(2));
    // Every length up to 40 (tails of both tiers), then the whole set.
    let lens = (0..=40).chain([x.len()]);
    for n in lens {
        let want16: Vec<F16> = x[..n].iter().map(|&v| F16::from_f32(v)).collect();
        let want_bf: Vec<BF16> = x[..n].iter().map(|&v| BF16::from_f32(v)).collect();
        for simd in Simd::available() {
            let mut got = vec![F16::ZERO; n];
            F16::from_float_act_with(simd, &x[..n], &mut got);
            for (i, (g, w)) in got.iter().zip(&want16).enumerate() {
                assert_eq!(g, w, "f16 of {:#010x} on {}", x[i].to_bits(), simd.isa());
            }
            let mut got = vec![BF16::default(); n];
            BF16::from_float_act_with(simd, &x[..n], &mut got);
            for (i, (g, w)) in got.iter().zip(&want_bf).enumerate() {
                assert_eq!(g, w, "bf16 of {:#010x} on {}", x[i].to_bits(), simd.isa());
            }
        }
    }
}

#[test]
fn float_conversions_keep_the_common_prefix() {
    let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.37).collect();
    for simd in Simd::available() {
        let mut short = vec![F16::ZERO; 20];
        F16::from_float_act_with(simd, &x, &mut short);
        assert!(short.iter().zip(&x).all(|(h, &v)| *h == F16::from_f32(v)), "{}", simd.isa());
        let mut long = vec![BF16::default(); 50];
        BF16::from_float_act_with(simd, &x[..30], &mut long);
        assert!(long[..30].iter().zip(&x).all(|(h, &v)| *h == BF16::from_f32(v)), "{}", simd.isa());
        assert!(long[30..].iter().all(|h| *h == BF16::default()), "{}", simd.isa());
    }
}

fn q8k_blocks(simd: Simd, x: &[f32]) -> Vec<BlockQ8K> {
    let mut y = vec![BlockQ8K::zeroed(); x.len() / QK_K];
    BlockQ8K::from_float_act_with(simd, x, &mut y);
    y
}

#[test]
fn q8_k_quantizer_edge_cases_match_scalar_bits() {
    let mut rng = Rng::new(3);
    let mut cases: Vec<Vec<f32>> = Vec::new();
    let normal = |rng: &mut Rng| (0..QK_K).map(|_| rng.normal()).collect::<Vec<f32>>();
    // Largest |v| twice with opposite signs, in either order and in different 8-lane groups.
    for (a, b, s) in [(3, 200, 1.0f32), (3, 200, -1.0), (100, 101, 1.0), (255, 0, -1.0), (7, 8, 1.0)] {
        let mut x = normal(&mut rng);
        x[a] = 9.0 * s;
        x[b] = -9.0 * s;
        cases.push(x);
    }
    // NaNs (never the maximum), infinities, -0.0, a subnormal maximum (infinite iscale).
    let mut x = normal(&mut rng);
    x[0] = f32::NAN;
    x[77] = f32::from_bits(0xffc0_1234);
    cases.push(x);
    let mut x = normal(&mut rng);
    x[5] = f32::INFINITY;
    x[6] = f32::NEG_INFINITY;
    cases.push(x);
    let mut x = vec![0.0f32; QK_K];
    x[9] = -0.0;
    x[10] = f32::NAN;
    cases.push(x);
    let mut x = vec![0.0f32; QK_K];
    x[31] = f32::from_bits(3);
    x[32] = -f32::from_bits(1);
    cases.push(x);
    cases.push((0..QK_K).map(|i| f32::from_bits(rng.next_u64() as u32) * (i % 2) as f32).collect());
    cases.push((0..QK_K).map(|_| f32::from_bits(rng.next_u64() as u32)).collect());
    for x in &cases {
        let want = q8k_blocks(Simd::SCALAR, x);
        for simd in Simd::available() {
            let got = q8k_blocks(simd, x);
            assert_eq!(bytemuck::cast_slice::<_, u8>(&got), bytemuck::cast_slice::<_, u8>(&want), "on {}", simd.isa());
        }
    }
}

#[test]
fn q8_k_dot_is_exact_for_every_byte() {
    let mut rng = Rng::new(4);
    for blocks in 1..=5 {
        let mk = |rng: &mut Rng, extreme: bool| -> Vec<BlockQ8K> {
            (0..blocks)
                .map(|_| {
                    let mut b = BlockQ8K::zeroed();
                    b.d = 0.5;
                    for q in &mut b.qs {
                        *q = if extreme { [-128, 127][(rng.next_u64() & 1) as usize] } else { rng.next_u64() as i8 };
                    }
                    b
                })
                .collect()
        };
        for extreme in [false, true] {
            let (x, y) = (mk(&mut rng, extreme), mk(&mut rng, extreme));
            let want = BlockQ8K::vec_dot_unopt(&x, &y);
            for simd in Simd::available() {
                // Integer sums are exact and the float formula is the scalar one: equal bits.
                assert_eq!(BlockQ8K::vec_dot_with(simd, &x, &y).to_bits(), want.to_bits(), "on {}", simd.isa());
            }
        }
    }
}

/// The twin's result on `xs[..k]`, `ys[..k]` for every tier, whichever slice is longer.
fn check_prefix<B: BlockFormat>(xs: &[B], ys: &[B::VecDotType]) {
    for simd in Simd::available() {
        for (nx, ny) in [(xs.len(), ys.len() - 1), (xs.len() - 1, ys.len()), (0, ys.len()), (1, 1)] {
            let (x, y) = (&xs[..nx], &ys[..ny]);
            let want = B::vec_dot_unopt(x, y);
            let got = B::vec_dot_with(simd, x, y);
            assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{} on {}: {got} vs {want}", B::TYPE, simd.isa());
        }
    }
}

fn quantized<B: BlockFormat>(x: &[f32], act: bool) -> Vec<B> {
    let mut b = vec![B::zeroed(); x.len() / B::BLCK_SIZE];
    if act {
        B::from_float_act_with(Simd::SCALAR, x, &mut b);
    } else {
        B::from_float(x, &mut b);
    }
    b
}

#[test]
fn dots_work_on_the_common_prefix() {
    let mut rng = Rng::new(5);
    let w: Vec<f32> = (0..3 * QK_K).map(|_| rng.normal()).collect();
    let a: Vec<f32> = (0..3 * QK_K).map(|_| rng.normal()).collect();
    let act = quantized::<BlockQ8K>(&a, true);
    check_prefix(&quantized::<BlockQ2K>(&w, false), &act);
    check_prefix(&quantized::<BlockQ3K>(&w, false), &act);
    check_prefix(&quantized::<BlockQ4K>(&w, false), &act);
    check_prefix(&quantized::<BlockQ5K>(&w, false), &act);
    check_prefix(&quantized::<BlockQ6K>(&w, false), &act);
    check_prefix(&quantized::<BlockQ8K>(&w, true), &act);
    check_prefix(&w, &a);
    check_prefix(&quantized::<F16>(&w, false), &quantized::<F16>(&a, true));
    check_prefix(&quantized::<BF16>(&w, false), &quantized::<BF16>(&a, true));
}
