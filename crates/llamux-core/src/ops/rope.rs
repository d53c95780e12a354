//! Rotary position embeddings.

/// How rotated dimensions are paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeMode {
    /// Adjacent pairs `(x[2i], x[2i+1])` (original LLaMA).
    Normal,
    /// Halves `(x[i], x[i + n_rot/2])` (GPT-NeoX, Qwen2, Gemma).
    Neox,
}

/// The rotation for one position: `cos`/`sin` of `θ_i = pos · scale · base^(-2i/n_rot) / f_i`,
/// with θ built by repeated multiplication as ggml does.
pub struct Rope<'s> {
    cache: &'s mut [f32],
    n_rot: usize,
    mode: RopeMode,
}

impl<'s> Rope<'s> {
    /// Fills `cache` (at least `n_rot` floats) for position `pos`.
    pub fn new(
        cache: &'s mut [f32],
        pos: usize,
        n_rot: usize,
        base: f32,
        freq_scale: f32,
        freq_factors: Option<&[f32]>,
        mode: RopeMode,
    ) -> Self {
        let theta_scale = libm::powf(base, -2.0 / n_rot as f32);
        let mut theta = pos as f32;
        for (i, pair) in cache.chunks_exact_mut(2).take(n_rot / 2).enumerate() {
            let ff = freq_factors.and_then(|f| f.get(i)).copied().unwrap_or(1.0);
            let t = freq_scale * (theta / ff);
            pair[0] = libm::cosf(t);
            pair[1] = libm::sinf(t);
            theta *= theta_scale;
        }
        Rope { cache, n_rot, mode }
    }

    /// Rotates one head in place (dimensions past `n_rot` are left as they are).
    pub fn apply(&self, head: &mut [f32]) {
        let half = self.n_rot / 2;
        for (i, cs) in self.cache.chunks_exact(2).take(half).enumerate() {
            let (c, s) = (cs[0], cs[1]);
            let (a, b) = match self.mode {
                RopeMode::Normal => (2 * i, 2 * i + 1),
                RopeMode::Neox => (i, i + half),
            };
            if let (Some(&x0), Some(&x1)) = (head.get(a), head.get(b)) {
                head[a] = x0 * c - x1 * s;
                head[b] = x0 * s + x1 * c;
            }
        }
    }
}
