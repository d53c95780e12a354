//! Throughput of the forward pass's element-wise ops and of one head's attention, per tier.
//! `cargo bench -p llamux-core --bench ops`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llamux_core::isa::Simd;
use llamux_core::ops::{
    attend_head, rms_norm_with, silu_mul_with, softmax_with, AttnScratch, GeluTable, Rope, RopeMode, Window,
};
use llamux_core::sample::Rng;
use llamux_core::session::{KvCache, KvType};
use std::hint::black_box;

fn randn(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal()).collect()
}

fn attention(c: &mut Criterion) {
    let mut rng = Rng::new(7);
    let mut g = c.benchmark_group("attention");
    for (hd, n_kv, n_ctx) in [(64usize, 4usize, 512usize), (64, 4, 2048), (256, 1, 1024)] {
        for ty in [KvType::F16, KvType::F32] {
            let mut kv = KvCache::try_new(ty, 1, n_ctx, n_kv * hd).unwrap();
            for p in 0..n_ctx {
                kv.store(0, p, &randn(&mut rng, n_kv * hd), &randn(&mut rng, n_kv * hd));
            }
            let q = randn(&mut rng, hd);
            let (mut qb, mut att, mut out) = (vec![0f32; hd], vec![0f32; n_ctx], vec![0f32; hd]);
            g.throughput(Throughput::Elements(n_ctx as u64));
            for simd in Simd::available() {
                let id = BenchmarkId::new(format!("{ty:?}/hd{hd}/ctx{n_ctx}"), simd.isa());
                g.bench_function(id, |b| {
                    b.iter(|| {
                        let w = Window { layer: 0, kv_head: 1 % n_kv, first: 0, pos: n_ctx - 1 };
                        let s = AttnScratch { q: &mut qb, att: &mut att };
                        attend_head(simd, &kv, w, black_box(&q), 0.125, s, &mut out)
                    })
                });
            }
        }
    }
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let mut rng = Rng::new(8);
    let n = 8192;
    let (x, w, u) = (randn(&mut rng, n), randn(&mut rng, n), randn(&mut rng, n));
    let table = GeluTable::new();
    let mut g = c.benchmark_group("ops");
    g.throughput(Throughput::Elements(n as u64));
    let mut buf = vec![0f32; n];
    for simd in Simd::available() {
        g.bench_function(BenchmarkId::new("rms_norm", simd.isa()), |b| {
            b.iter(|| rms_norm_with(simd, &mut buf, black_box(&x), &w, 1e-6))
        });
        g.bench_function(BenchmarkId::new("softmax", simd.isa()), |b| {
            b.iter(|| {
                buf.copy_from_slice(&x);
                softmax_with(simd, black_box(&mut buf))
            })
        });
        g.bench_function(BenchmarkId::new("silu_mul", simd.isa()), |b| {
            b.iter(|| {
                buf.copy_from_slice(&x);
                silu_mul_with(simd, black_box(&mut buf), &u)
            })
        });
        g.bench_function(BenchmarkId::new("gelu_mul", simd.isa()), |b| {
            b.iter(|| {
                buf.copy_from_slice(&x);
                table.gelu_mul_with(simd, black_box(&mut buf), &u)
            })
        });
        let mut cache = vec![0f32; 64];
        let rope = Rope::new(&mut cache, 1234, 64, 10000.0, 1.0, None, RopeMode::Neox);
        g.bench_function(BenchmarkId::new("rope_neox_64x128", simd.isa()), |b| {
            b.iter(|| buf.chunks_exact_mut(64).for_each(|h| rope.apply_with(simd, black_box(h))))
        });
    }
    g.finish();
}

criterion_group!(benches, attention, elementwise);
criterion_main!(benches);
