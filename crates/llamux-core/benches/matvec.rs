//! Matrix products on one thread, per weight format: a matrix that stays in the L2 cache (the
//! kernels' compute speed) and one far larger than the last-level cache (streamed from memory,
//! as in decoding), against one token and against eight (a step of eight sessions).
//! `cargo bench -p llamux-core --bench matvec` (throughput in weight bytes per second).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llamux_core::ops::{Matrix, QuantizedInput};
use llamux_core::platform::Serial;
use llamux_core::quant::traits;
use llamux_core::sample::Rng;
use llamux_core::GgmlType;
use std::time::Duration;

/// Weight bytes of the cache-resident and of the streamed matrix.
const SIZES: [(&str, usize); 2] = [("l2", 512 << 10), ("mem", 256 << 20)];

fn products(c: &mut Criterion) {
    let mut rng = Rng::new(11);
    let mut g = c.benchmark_group("matvec");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    // Formats and row lengths of the models benchmarked against llama.cpp.
    for (ty, cols) in [
        (GgmlType::Q8_0, 640),
        (GgmlType::Q5_0, 640),
        (GgmlType::Q4_1, 576),
        (GgmlType::Q4_K, 2048),
        (GgmlType::Q6_K, 2048),
    ] {
        let tr = traits(ty).unwrap();
        let row_bytes = ty.bytes_for(cols as u64).unwrap() as usize;
        // 64 quantized rows, repeated to fill each matrix (quantizing 256 MiB would take long).
        let seed_rows = 64;
        let w: Vec<f32> = (0..seed_rows * cols).map(|_| rng.normal()).collect();
        let mut seed = vec![0u8; seed_rows * row_bytes];
        for (x, d) in w.chunks_exact(cols).zip(seed.chunks_exact_mut(row_bytes)) {
            (tr.from_float)(x, d).unwrap();
        }
        for (name, bytes) in SIZES {
            let rows = (bytes / row_bytes).next_multiple_of(seed_rows);
            let data: Vec<u8> = seed.iter().copied().cycle().take(rows * row_bytes).collect();
            let m = Matrix::new(ty, rows, cols, &data).unwrap();
            // The same rows interleaved eight by eight, where the format has that layout.
            let mut inter = vec![0u8; m.interleaved_bytes().unwrap_or(0)];
            let mi = match m.interleave_into(&mut inter) {
                Ok(()) => Some(Matrix::new_interleaved(ty, rows, cols, &inter).unwrap()),
                Err(_) => None,
            };
            for (layout, m) in [("rows", Some(m)), ("r8", mi)] {
                let Some(m) = m else { continue };
                for tokens in [1usize, 8] {
                    let x: Vec<f32> = (0..tokens * cols).map(|_| rng.normal()).collect();
                    let mut q = QuantizedInput::try_new(tokens, cols).unwrap();
                    q.quantize_rows(&x, cols, m.input_type()).unwrap();
                    if m.is_interleaved() {
                        q.summarize().unwrap();
                    }
                    let mut out = vec![0f32; rows * tokens];
                    g.throughput(Throughput::Bytes(data.len() as u64));
                    g.bench_function(BenchmarkId::new(format!("{ty}/{name}/{layout}"), format!("x{tokens}")), |b| {
                        b.iter(|| m.matvec(&Serial, &q, &mut out).unwrap())
                    });
                }
            }
        }
    }
    g.finish();
}

criterion_group!(benches, products);
criterion_main!(benches);
