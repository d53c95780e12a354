//! Samplers on hostile logits and parameters: any floats (NaN, ±Inf, subnormals, huge), any
//! vocabulary size up to 512, any parameters (refused by validation or used), any recent-token
//! history (ids past the vocabulary included). Creation gives a typed error or a sampler whose
//! every pick is a token of the vocabulary, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llamux_core::sample::{argmax, Sampler, SamplerConfig};

/// Mostly ordinary values, sometimes any bit pattern (NaN, Inf, subnormal).
fn f32_from(next: &mut impl FnMut() -> u8) -> f32 {
    let b = [next(), next(), next(), next()];
    match b[0] % 4 {
        0 => f32::from_bits(u32::from_le_bytes(b)),
        _ => f32::from(i16::from_le_bytes([b[1], b[2]])) / 256.0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut at = 0usize;
    let mut next = || {
        let b = data.get(at).copied().unwrap_or(0);
        at += 1;
        b
    };
    let cfg = SamplerConfig {
        temperature: f32_from(&mut next),
        top_k: usize::from(next()) % 300,
        top_p: f32_from(&mut next),
        min_p: f32_from(&mut next),
        repeat_penalty: f32_from(&mut next),
        repeat_last_n: usize::from(next()),
        seed: u64::from(next()),
    };
    let n_vocab = usize::from(u16::from_le_bytes([next(), next()]) % 513);
    let recent: Vec<u32> = (0..usize::from(next() % 32)).map(|_| u32::from(next()) * 3).collect();
    let steps = 1 + usize::from(next() % 4);
    let mut logits: Vec<f32> = (0..n_vocab).map(|_| f32_from(&mut next)).collect();
    // A sampler sized for fewer tokens than the logits is still safe.
    let Ok(mut s) = Sampler::new(cfg, n_vocab.saturating_sub(usize::from(next() % 2))) else { return };
    for _ in 0..steps {
        let t = s.sample(&mut logits, &recent);
        assert!(n_vocab == 0 || (t as usize) < n_vocab, "token {t} of {n_vocab}");
    }
    let g = argmax(&logits);
    assert!(n_vocab == 0 || (g as usize) < n_vocab);
});
