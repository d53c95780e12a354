//! RMS normalization.

/// `out = x / sqrt(mean(x²) + eps) * w` (ggml accumulates the mean in double precision).
pub fn rms_norm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    let sum: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
    let mean = (sum / x.len().max(1) as f64) as f32;
    let scale = 1.0 / libm::sqrtf(mean + eps);
    for ((o, &v), &wi) in out.iter_mut().zip(x).zip(w) {
        *o = (v * scale) * wi;
    }
}
