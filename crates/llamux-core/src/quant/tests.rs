//! ggml's `test-quantize-fns`, in Rust: every format's round-trip error, and every fused dot
//! product against the float dot of dequantized operands and against its scalar twin.

use super::*;
use alloc::vec;
use alloc::vec::Vec;

/// ggml's synthetic test data: `0.1 + 2 cos(i + offset)`.
fn synthetic(n: usize, offset: f32) -> Vec<f32> {
    (0..n).map(|i| 0.1 + 2.0 * libm::cosf(i as f32 + offset)).collect()
}

fn rmse(a: &[f32], b: &[f32]) -> f32 {
    let s: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    libm::sqrt(s / a.len() as f64) as f32
}

/// ggml's limits (`MAX_QUANTIZATION_TOTAL_ERROR*`) on its synthetic data.
fn max_rmse(t: GgmlType) -> f32 {
    match t {
        GgmlType::Q2_K => 0.0075,
        GgmlType::Q3_K => 0.0040,
        _ => 0.002,
    }
}

fn quantize(t: GgmlType, x: &[f32]) -> Vec<u8> {
    let n_bytes = t.bytes_for(x.len() as u64).unwrap() as usize;
    // Q8_K holds f32/i16 fields: use u32-aligned storage.
    let mut words = vec![0u32; n_bytes.div_ceil(4)];
    let bytes = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..n_bytes];
    (traits(t).unwrap().from_float)(x, bytes).unwrap();
    bytes.to_vec()
}

fn aligned(bytes: &[u8]) -> Vec<u32> {
    let mut w = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..bytes.len()].copy_from_slice(bytes);
    w
}

const N: usize = 4096;

#[test]
fn round_trip_error_within_ggml_limits() {
    let x = synthetic(N, 0.0);
    for t in supported_types() {
        let tr = traits(t).unwrap();
        let q = quantize(t, &x);
        let qa = aligned(&q);
        let mut y = vec![0.0f32; N];
        (tr.to_float)(&bytemuck::cast_slice(&qa)[..q.len()], &mut y).unwrap();
        // ggml's `array_rmse` is sqrt(Σ d²) / n; its limits are stated in that measure.
        let e = rmse(&x, &y) / libm::sqrtf(N as f32);
        assert!(e < max_rmse(t), "{t}: ggml total error {e}");
    }
}

#[test]
fn vec_dot_matches_dequantized_dot_and_scalar_twin() {
    let w = synthetic(N, 0.0);
    let a = synthetic(N, 1.0);
    for t in supported_types() {
        let tr = traits(t).unwrap();
        let at = tr.vec_dot_type;
        let (wq, aq) = (aligned(&quantize(t, &w)), aligned(&quantize(at, &a)));
        let wb = &bytemuck::cast_slice(&wq)[..t.bytes_for(N as u64).unwrap() as usize];
        let ab = &bytemuck::cast_slice(&aq)[..at.bytes_for(N as u64).unwrap() as usize];
        let (mut wd, mut ad) = (vec![0.0f32; N], vec![0.0f32; N]);
        (tr.to_float)(wb, &mut wd).unwrap();
        (traits(at).unwrap().to_float)(ab, &mut ad).unwrap();
        let reference: f64 = wd.iter().zip(&ad).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        let scale: f64 = wd.iter().zip(&ad).map(|(x, y)| (f64::from(*x) * f64::from(*y)).abs()).sum();
        let fast = (tr.vec_dot)(wb, ab).unwrap();
        let slow = (tr.vec_dot_unopt)(wb, ab).unwrap();
        // Q8_1 stores d·Σq rounded to f16, which the fused Q4_1/Q5_1 dot uses for the minimum term.
        let tol = if at == GgmlType::Q8_1 { 1e-4 } else { 1e-5 };
        let err = (f64::from(slow) - reference).abs() / scale;
        assert!(err < tol, "{t}: scalar dot {slow} vs dequantized {reference} (rel err {err})");
        let twin = (f64::from(fast) - f64::from(slow)).abs() / scale;
        assert!(twin < 1e-5, "{t}: vec_dot {fast} vs vec_dot_unopt {slow}");
    }
}

#[test]
fn byte_api_rejects_bad_lengths_without_panicking() {
    let tr = traits(GgmlType::Q4_K).unwrap();
    let mut out = vec![0.0f32; 256];
    assert!(matches!((tr.to_float)(&[0u8; 143], &mut out), Err(QuantError::NotWholeBlocks { .. })));
    assert!(matches!((tr.to_float)(&[0u8; 288], &mut out), Err(QuantError::LengthMismatch { .. })));
    assert!(matches!((tr.from_float)(&[0.0; 100], &mut [0u8; 144]), Err(QuantError::LengthMismatch { .. })));
    let q8k = vec![0u32; 292 * 2 / 4];
    assert!((tr.vec_dot)(&[0u8; 144], &bytemuck::cast_slice(&q8k)[..292 * 2]).is_err());
    assert_eq!(traits(GgmlType::IQ2_XXS).err(), Some(QuantError::Unsupported(GgmlType::IQ2_XXS)));
}

#[test]
fn table_matches_ggml_geometry() {
    for t in supported_types() {
        let tr = traits(t).unwrap();
        assert_eq!(tr.ggml_type, t);
        assert_eq!(traits(tr.vec_dot_type).unwrap().vec_dot_type, tr.vec_dot_type);
        assert_eq!(t.block_size(), tr.vec_dot_type.block_size());
    }
    fn geom<B: BlockFormat>() {
        assert_eq!(B::BLCK_SIZE, B::TYPE.block_size(), "{}", B::TYPE);
        assert_eq!(core::mem::size_of::<B>(), B::TYPE.type_size(), "{}", B::TYPE);
    }
    geom::<f32>();
    geom::<F16>();
    geom::<BF16>();
    geom::<BlockQ4_0>();
    geom::<BlockQ4_1>();
    geom::<BlockQ5_0>();
    geom::<BlockQ5_1>();
    geom::<BlockQ8_0>();
    geom::<BlockQ8_1>();
    geom::<BlockQ2K>();
    geom::<BlockQ3K>();
    geom::<BlockQ4K>();
    geom::<BlockQ5K>();
    geom::<BlockQ6K>();
    geom::<BlockQ8K>();
}

#[test]
fn nearest_int_rounds_half_to_even() {
    assert_eq!(nearest_int(0.5), 0);
    assert_eq!(nearest_int(1.5), 2);
    assert_eq!(nearest_int(-2.5), -2);
    assert_eq!(nearest_int(-2.6), -3);
    assert_eq!(nearest_int(1000.49), 1000);
}
