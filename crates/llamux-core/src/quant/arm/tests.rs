//! The baseline (no dotprod) paths against the scalar twins. The shared SIMD tests reach only the
//! path the CPU picks (dotprod where present), so this covers the other one on the same machine.

use crate::isa::{self, Isa, Simd};
use crate::quant::*;
use crate::sample::Rng;
use alloc::vec;
use alloc::vec::Vec;

fn weights<B: BlockFormat>(rng: &mut Rng, blocks: usize, raw: bool) -> Vec<B> {
    let mut w = vec![B::zeroed(); blocks];
    if raw {
        bytemuck::cast_slice_mut::<B, u8>(&mut w).iter_mut().for_each(|b| *b = rng.next_u64() as u8);
    } else {
        let x: Vec<f32> = (0..blocks * B::BLCK_SIZE).map(|_| rng.normal()).collect();
        B::from_float(&x, &mut w);
    }
    w
}

fn activations<B: BlockFormat>(rng: &mut Rng, blocks: usize) -> Vec<B> {
    let x: Vec<f32> = (0..blocks * B::BLCK_SIZE).map(|_| rng.normal() * 3.0).collect();
    let mut a = vec![B::zeroed(); blocks];
    B::from_float_act_with(Simd::SCALAR, &x, &mut a);
    a
}

/// Dequantized `Σ |w a|` (the scale of any summation order's rounding error).
fn abs_dot<B: BlockFormat>(w: &[B], a: &[B::VecDotType]) -> f64 {
    let n = w.len() * B::BLCK_SIZE;
    let (mut wf, mut af) = (vec![0f32; n], vec![0f32; n]);
    B::to_float(w, &mut wf);
    B::VecDotType::to_float(a, &mut af);
    wf.iter().zip(&af).map(|(x, y)| f64::from(x.abs()) * f64::from(y.abs())).sum()
}

fn check<B: BlockFormat>(kernel: unsafe fn(&[B], &[B::VecDotType]) -> f32) {
    let mut rng = Rng::new(B::TYPE as u64 + 7);
    for blocks in [1usize, 2, 3, 8, 9, 33] {
        for raw in [false, true] {
            let raw = raw && !matches!(B::TYPE, GgmlType::Q8_K | GgmlType::F32 | GgmlType::F16 | GgmlType::BF16);
            let w = weights::<B>(&mut rng, blocks, raw);
            let a = activations::<B::VecDotType>(&mut rng, blocks);
            let want = B::vec_dot_unopt(&w, &a);
            // SAFETY: every aarch64 CPU runs NEON.
            let got = unsafe { kernel(&w, &a) };
            let scale = abs_dot(&w, &a);
            if !want.is_finite() || !scale.is_finite() {
                assert_eq!(got.is_finite(), want.is_finite(), "{}: {got} vs {want}", B::TYPE);
                continue;
            }
            let tol = 2e-5 * scale + 1e-30;
            assert!(f64::from((got - want).abs()) <= tol, "{} ({blocks} blocks, raw {raw}): {got} vs {want}", B::TYPE);
            // Mismatched lengths: the common prefix, as the twin does.
            let (w1, a1) = (&w[..blocks - 1], &a[..]);
            // SAFETY: as above.
            let got = unsafe { kernel(w1, a1) };
            let want = B::vec_dot_unopt(w1, a1);
            if want.is_finite() {
                assert!(f64::from((got - want).abs()) <= tol, "{} prefix: {got} vs {want}", B::TYPE);
            }
        }
    }
}

#[test]
fn baseline_dot_products_match_scalar_twins() {
    check::<BlockQ8_0>(super::q8_0::vec_dot_neon_base);
    check::<BlockQ8_1>(super::q8_1::vec_dot_neon_base);
    check::<BlockQ4_0>(super::q4_0::vec_dot_neon_base);
    check::<BlockQ4_1>(super::q4_1::vec_dot_neon_base);
    check::<BlockQ5_0>(super::q5_0::vec_dot_neon_base);
    check::<BlockQ5_1>(super::q5_1::vec_dot_neon_base);
    check::<BlockQ2K>(super::q2_k::vec_dot_neon_base);
    check::<BlockQ3K>(super::q3_k::vec_dot_neon_base);
    check::<BlockQ4K>(super::q4_k::vec_dot_neon_base);
    check::<BlockQ5K>(super::q5_k::vec_dot_neon_base);
    check::<BlockQ6K>(super::q6_k::vec_dot_neon_base);
    check::<BlockQ8K>(super::q8_k::vec_dot_neon_base);
}

#[test]
fn neon_is_detected_and_dotprod_flag_is_cached_consistently() {
    let f = isa::features();
    assert!(f.neon);
    assert_eq!(f.best(), Isa::Neon);
    assert!(Simd::new(Isa::Neon).is_some());
    assert!(Simd::new(Isa::Avx2).is_none());
    assert_eq!(super::common::dotprod(), f.dotprod);
    assert_eq!(super::common::dotprod(), f.dotprod);
}

/// Activation rows with ties (x.5 after scaling), infinities, NaNs, subnormals and signed zeros:
/// the NEON quantizers must still give the scalar bytes.
#[test]
fn quantizers_match_scalar_on_special_values() {
    let mut rows: Vec<Vec<f32>> = Vec::new();
    // amax 127: the multiplier is 1 and every k + 0.5 is a tie.
    rows.push((0..256).map(|i| if i == 3 { 127.0 } else { (i as f32 - 128.0) + 0.5 }).collect());
    rows.push((0..256).map(|i| if i == 200 { -127.0 } else { (i % 64) as f32 * 0.5 - 16.0 }).collect());
    let mut special = vec![0f32; 256];
    for (i, v) in special.iter_mut().enumerate() {
        *v = match i % 11 {
            0 => f32::INFINITY,
            1 => f32::NEG_INFINITY,
            2 => f32::NAN,
            3 => 1e-40,
            4 => -0.0,
            _ => i as f32,
        };
    }
    rows.push(special);
    rows.push((0..256).map(|i| if i % 5 == 0 { f32::NAN } else { 0.0 }).collect());
    rows.push(
        (0..256)
            .map(|i| {
                if i == 77 {
                    3.0
                } else if i == 9 {
                    -3.0
                } else {
                    1.0
                }
            })
            .collect(),
    );
    rows.push((0..256).map(|i| (i as f32 * 0.37).sin() * 1e38).collect());
    let simd = Simd::new(Isa::Neon).unwrap();
    for x in &rows {
        let bytes = |q: &dyn Fn(Simd, &mut [u8])| {
            let mut b = vec![0u32; 512];
            q(simd, bytemuck::cast_slice_mut(&mut b));
            let mut s = vec![0u32; 512];
            q(Simd::SCALAR, bytemuck::cast_slice_mut(&mut s));
            (b, s)
        };
        let q8_0 = |s: Simd, out: &mut [u8]| {
            (traits(GgmlType::Q8_0).unwrap().from_float_act_with)(s, x, &mut out[..8 * 34]).unwrap()
        };
        let q8_1 = |s: Simd, out: &mut [u8]| {
            (traits(GgmlType::Q8_1).unwrap().from_float_act_with)(s, x, &mut out[..8 * 36]).unwrap()
        };
        let q8_k = |s: Simd, out: &mut [u8]| {
            (traits(GgmlType::Q8_K).unwrap().from_float_act_with)(s, x, &mut out[..292]).unwrap()
        };
        for (name, q) in [("Q8_0", &q8_0 as &dyn Fn(Simd, &mut [u8])), ("Q8_1", &q8_1), ("Q8_K", &q8_k)] {
            let (got, want) = bytes(q);
            assert_eq!(got, want, "{name} on {:?}", &x[..12]);
        }
    }
}
