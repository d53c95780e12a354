//! Rotary position embeddings.

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use crate::isa::Isa;
use crate::isa::{self, Simd};

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

/// Rotates the adjacent pairs of `head` by the `(cos, sin)` pairs of `cs`.
pub(crate) fn rotate_normal_scalar(cs: &[f32], head: &mut [f32]) {
    for (x, cs) in head.chunks_exact_mut(2).zip(cs.chunks_exact(2)) {
        let (c, s, x0, x1) = (cs[0], cs[1], x[0], x[1]);
        x[0] = x0 * c - x1 * s;
        x[1] = x0 * s + x1 * c;
    }
}

/// Rotates the pairs `(h0[i], h1[i])` by the `(cos, sin)` pairs of `cs`.
pub(crate) fn rotate_neox_scalar(cs: &[f32], h0: &mut [f32], h1: &mut [f32]) {
    for ((a, b), cs) in h0.iter_mut().zip(h1.iter_mut()).zip(cs.chunks_exact(2)) {
        let (c, s, x0, x1) = (cs[0], cs[1], *a, *b);
        *a = x0 * c - x1 * s;
        *b = x0 * s + x1 * c;
    }
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
        self.apply_with(isa::current(), head);
    }

    /// [`apply`](Self::apply) with the kernels of `simd` (same results on every tier).
    pub fn apply_with(&self, simd: Simd, head: &mut [f32]) {
        let half = self.n_rot / 2;
        // Pairs whose cos/sin exist and whose two elements lie in `head`.
        let np = half.min(self.cache.len() / 2);
        let cs = &self.cache[..2 * np];
        match self.mode {
            RopeMode::Normal => {
                let np = np.min(head.len() / 2);
                let (cs, head) = (&cs[..2 * np], &mut head[..2 * np]);
                match simd.isa() {
                    // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
                    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                    Isa::Avx512 => unsafe { super::x86::elementwise::rope_normal_avx512(cs, head, np) },
                    // SAFETY: as above.
                    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                    Isa::Avx2 => unsafe { super::x86::elementwise::rope_normal_avx2(cs, head, np) },
                    _ => rotate_normal_scalar(cs, head),
                }
            }
            RopeMode::Neox => {
                let np = np.min(head.len().saturating_sub(half));
                match simd.isa() {
                    // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
                    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                    Isa::Avx512 => unsafe { super::x86::elementwise::rope_neox_avx512(cs, head, half, np) },
                    // SAFETY: as above.
                    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                    Isa::Avx2 => unsafe { super::x86::elementwise::rope_neox_avx2(cs, head, half, np) },
                    _ => {
                        let (h0, h1) = head.split_at_mut(half.min(head.len()));
                        rotate_neox_scalar(&cs[..2 * np], &mut h0[..np], &mut h1[..np]);
                    }
                }
            }
        }
    }

    /// The original pair-by-pair loop: the reference the kernels are tested against.
    #[cfg(test)]
    pub(crate) fn apply_reference(&self, head: &mut [f32]) {
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
