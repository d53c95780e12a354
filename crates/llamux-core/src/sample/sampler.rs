//! Token samplers: repetition penalty, top-k, top-p, min-p, temperature, seeded draw; greedy at
//! temperature 0. All buffers are allocated when the sampler is created.

use super::Rng;
use alloc::vec::Vec;
use core::fmt;

/// Sampling parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// Temperature; `0` picks the most likely token.
    pub temperature: f32,
    /// Keep only the `k` most likely tokens (`0`: all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `p` (`1`: all).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (`0`: none).
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of recently seen tokens by this (`1`: off).
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    /// Seed of the random draw.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

/// Why a sampler configuration was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct BadSamplerConfig(pub &'static str);

impl fmt::Display for BadSamplerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid sampling parameter: {}", self.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BadSamplerConfig {}

/// Why a sampler could not be made.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplerError {
    /// The configuration was refused.
    Config(BadSamplerConfig),
    /// Memory for the candidate list (one entry per vocabulary token) could not be reserved.
    OutOfMemory,
}

impl From<BadSamplerConfig> for SamplerError {
    fn from(e: BadSamplerConfig) -> Self {
        SamplerError::Config(e)
    }
}

impl fmt::Display for SamplerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SamplerError::Config(e) => e.fmt(f),
            SamplerError::OutOfMemory => write!(f, "out of memory for the sampler's candidate list"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SamplerError {}

impl SamplerConfig {
    /// Checks every field is finite and in range.
    pub fn validate(&self) -> Result<(), BadSamplerConfig> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(BadSamplerConfig("temperature must be a finite number >= 0"));
        }
        if !self.top_p.is_finite() || !(0.0..=1.0).contains(&self.top_p) {
            return Err(BadSamplerConfig("top-p must be between 0 and 1"));
        }
        if !self.min_p.is_finite() || !(0.0..=1.0).contains(&self.min_p) {
            return Err(BadSamplerConfig("min-p must be between 0 and 1"));
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return Err(BadSamplerConfig("repeat penalty must be a finite number > 0"));
        }
        Ok(())
    }
}

/// Picks tokens from logits.
pub struct Sampler {
    cfg: SamplerConfig,
    rng: Rng,
    /// `(logit or probability, token)` candidates.
    cand: Vec<(f32, u32)>,
}

/// Index of the largest value (the first on ties), as llama.cpp's greedy sampler picks.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = logits.first().copied().unwrap_or(0.0);
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

impl Sampler {
    /// A sampler for a vocabulary of `n_vocab` tokens.
    pub fn new(cfg: SamplerConfig, n_vocab: usize) -> Result<Self, SamplerError> {
        cfg.validate()?;
        let mut cand = Vec::new();
        cand.try_reserve_exact(n_vocab).map_err(|_| SamplerError::OutOfMemory)?;
        Ok(Sampler { rng: Rng::new(cfg.seed), cfg, cand })
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// Picks the next token. `logits` may be modified (repetition penalty); `recent` are the
    /// tokens seen so far.
    pub fn sample(&mut self, logits: &mut [f32], recent: &[u32]) -> u32 {
        if self.cfg.repeat_penalty != 1.0 {
            let window = recent.get(recent.len().saturating_sub(self.cfg.repeat_last_n)..).unwrap_or(&[]);
            for (i, &t) in window.iter().enumerate() {
                // Each distinct token is penalized once, as llama.cpp does.
                if window.get(..i).is_some_and(|seen| seen.contains(&t)) {
                    continue;
                }
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 { *l / self.cfg.repeat_penalty } else { *l * self.cfg.repeat_penalty };
                }
            }
        }
        if self.cfg.temperature <= 0.0 {
            return argmax(logits);
        }
        self.cand.clear();
        self.cand.extend(logits.iter().enumerate().filter(|(_, l)| !l.is_nan()).map(|(i, &l)| (l, i as u32)));
        if self.cand.is_empty() {
            return 0;
        }
        // top-k: partial selection then sort of the survivors, most likely first.
        let k = if self.cfg.top_k == 0 { self.cand.len() } else { self.cfg.top_k.min(self.cand.len()) };
        if k < self.cand.len() {
            self.cand.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            self.cand.truncate(k);
        }
        self.cand.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        // Probabilities at temperature 1 for top-p and min-p (llama.cpp applies them before temp).
        softmax_in_place(&mut self.cand, 1.0);
        if self.cfg.top_p < 1.0 {
            let mut cum = 0.0;
            let mut keep = self.cand.len();
            for (i, c) in self.cand.iter().enumerate() {
                cum += c.0;
                if cum >= self.cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
            self.cand.truncate(keep.max(1));
        }
        if self.cfg.min_p > 0.0 {
            // Not empty: at least one candidate survives each cut above.
            let threshold = self.cand.first().map_or(0.0, |c| c.0) * self.cfg.min_p;
            let keep = self.cand.iter().take_while(|c| c.0 >= threshold).count();
            self.cand.truncate(keep.max(1));
        }
        // Temperature on the survivors: p^(1/T), renormalized (same as softmax(logit / T)).
        let inv_t = 1.0 / self.cfg.temperature;
        for c in self.cand.iter_mut() {
            c.0 = libm::logf(c.0.max(f32::MIN_POSITIVE)) * inv_t;
        }
        softmax_in_place(&mut self.cand, 1.0);
        let r = self.rng.next_f32();
        let mut cum = 0.0;
        for c in &self.cand {
            cum += c.0;
            if r < cum {
                return c.1;
            }
        }
        self.cand.last().map_or(0, |c| c.1)
    }
}

fn softmax_in_place(c: &mut [(f32, u32)], scale: f32) {
    let max = c.iter().fold(f32::NEG_INFINITY, |m, x| m.max(x.0));
    let mut sum = 0.0f64;
    for x in c.iter_mut() {
        x.0 = libm::expf((x.0 - max) * scale);
        sum += f64::from(x.0);
    }
    let inv = (1.0 / sum) as f32;
    c.iter_mut().for_each(|x| x.0 *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn logits() -> Vec<f32> {
        (0..100).map(|i| (i as f32 * 0.37).sin() * 3.0).collect()
    }

    #[test]
    fn a_vocabulary_too_large_for_memory_is_an_error() {
        let e = Sampler::new(SamplerConfig::default(), usize::MAX / 2).err();
        assert_eq!(e, Some(SamplerError::OutOfMemory));
        let bad = SamplerConfig { temperature: f32::NAN, ..SamplerConfig::default() };
        assert!(matches!(Sampler::new(bad, 10), Err(SamplerError::Config(_))));
    }

    #[test]
    fn greedy_is_argmax() {
        let mut s = Sampler::new(SamplerConfig { temperature: 0.0, ..Default::default() }, 100).unwrap();
        let mut l = logits();
        assert_eq!(s.sample(&mut l, &[]), argmax(&logits()));
    }

    #[test]
    fn seeded_sampling_is_deterministic_and_respects_top_k() {
        let cfg = SamplerConfig { temperature: 1.5, top_k: 3, top_p: 1.0, min_p: 0.0, seed: 9, ..Default::default() };
        let mut a = Sampler::new(cfg.clone(), 100).unwrap();
        let mut b = Sampler::new(cfg, 100).unwrap();
        let mut top: Vec<(f32, u32)> = logits().iter().enumerate().map(|(i, &l)| (l, i as u32)).collect();
        top.sort_by(|x, y| y.0.total_cmp(&x.0));
        let allowed: Vec<u32> = top[..3].iter().map(|x| x.1).collect();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let (ta, tb) = (a.sample(&mut logits(), &[]), b.sample(&mut logits(), &[]));
            assert_eq!(ta, tb);
            assert!(allowed.contains(&ta));
            seen.insert(ta);
        }
        assert!(seen.len() > 1, "temperature 1.5 over 3 candidates should vary");
    }

    #[test]
    fn min_p_and_top_p_cut_the_tail() {
        let mut l = vec![0.0f32; 10];
        l[3] = 10.0;
        let mut s = Sampler::new(
            SamplerConfig { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.5, seed: 1, ..Default::default() },
            10,
        )
        .unwrap();
        for _ in 0..50 {
            assert_eq!(s.sample(&mut l.clone(), &[]), 3);
        }
        let mut s = Sampler::new(
            SamplerConfig { temperature: 1.0, top_k: 0, top_p: 0.5, min_p: 0.0, seed: 1, ..Default::default() },
            10,
        )
        .unwrap();
        for _ in 0..50 {
            assert_eq!(s.sample(&mut l.clone(), &[]), 3);
        }
    }

    #[test]
    fn repetition_penalty_lowers_seen_tokens() {
        let mut l = vec![1.0f32, 2.0, 1.9];
        let mut s =
            Sampler::new(SamplerConfig { temperature: 0.0, repeat_penalty: 1.5, ..Default::default() }, 3).unwrap();
        assert_eq!(s.sample(&mut l, &[1]), 2);
    }

    #[test]
    fn bad_configs_are_refused() {
        for cfg in [
            SamplerConfig { temperature: f32::NAN, ..Default::default() },
            SamplerConfig { temperature: f32::INFINITY, ..Default::default() },
            SamplerConfig { temperature: -1.0, ..Default::default() },
            SamplerConfig { top_p: 1.5, ..Default::default() },
            SamplerConfig { min_p: f32::NAN, ..Default::default() },
            SamplerConfig { repeat_penalty: 0.0, ..Default::default() },
        ] {
            assert!(Sampler::new(cfg, 10).is_err());
        }
    }
}
