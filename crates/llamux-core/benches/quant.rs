//! Kernel throughput for every block format: dequantize a row, quantize activations, fused dot.
//! `cargo bench -p llamux-core --bench quant`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llamux_core::quant::{supported_types, traits, Simd};
use llamux_core::sample::Rng;
use std::hint::black_box;

const N: usize = 4096;

fn quantized(ty: llamux_core::GgmlType, x: &[f32]) -> Vec<u32> {
    let n = ty.bytes_for(x.len() as u64).unwrap() as usize;
    let mut w = vec![0u32; n.div_ceil(4)];
    (traits(ty).unwrap().from_float)(x, &mut bytemuck::cast_slice_mut(&mut w)[..n]).unwrap();
    w
}

fn kernels(c: &mut Criterion) {
    let mut rng = Rng::new(5);
    let w: Vec<f32> = (0..N).map(|_| rng.normal()).collect();
    let a: Vec<f32> = (0..N).map(|_| rng.normal()).collect();
    let mut g = c.benchmark_group("quant");
    g.throughput(Throughput::Elements(N as u64));
    for ty in supported_types() {
        let tr = traits(ty).unwrap();
        let (wn, an) =
            (ty.bytes_for(N as u64).unwrap() as usize, tr.vec_dot_type.bytes_for(N as u64).unwrap() as usize);
        let (wq, aq) = (quantized(ty, &w), quantized(tr.vec_dot_type, &a));
        let (wb, ab) = (&bytemuck::cast_slice::<u32, u8>(&wq)[..wn], &bytemuck::cast_slice::<u32, u8>(&aq)[..an]);
        let mut out = vec![0f32; N];
        g.bench_with_input(BenchmarkId::new("to_float", ty), &ty, |b, _| {
            b.iter(|| (tr.to_float)(black_box(wb), &mut out).unwrap())
        });
        let mut buf = vec![0u32; wn.div_ceil(4)];
        g.bench_with_input(BenchmarkId::new("from_float", ty), &ty, |b, _| {
            b.iter(|| (tr.from_float)(black_box(&a), &mut bytemuck::cast_slice_mut(&mut buf)[..wn]).unwrap())
        });
        for simd in Simd::available() {
            g.bench_with_input(BenchmarkId::new(format!("vec_dot/{}", simd.isa()), ty), &ty, |b, _| {
                b.iter(|| (tr.vec_dot_with)(simd, black_box(wb), black_box(ab)).unwrap())
            });
            // The activation quantizer the engine runs on this tier (the reference one for
            // formats without a SIMD quantizer).
            g.bench_with_input(BenchmarkId::new(format!("from_float_act/{}", simd.isa()), ty), &ty, |b, _| {
                b.iter(|| {
                    (tr.from_float_act_with)(simd, black_box(&a), &mut bytemuck::cast_slice_mut(&mut buf)[..wn])
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
