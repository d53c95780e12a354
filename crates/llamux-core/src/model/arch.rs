//! Per-architecture options of the one llama-family transformer block.

use super::{HParams, ModelError};
use crate::ops::RopeMode;
use alloc::string::ToString;

/// The architectures the forward pass implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchKind {
    /// LLaMA 1/2/3, TinyLlama, Mistral-style GQA.
    Llama,
    /// Qwen2: biases on Q/K/V, NeoX RoPE.
    Qwen2,
    /// Gemma 3: scaled embeddings, Q/K norms, post-norms, GELU, interleaved local/global attention.
    Gemma3,
}

impl ArchKind {
    /// The architecture called `name` (`general.architecture`), if the engine implements it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(ArchKind::Llama),
            "qwen2" => Some(ArchKind::Qwen2),
            "gemma3" => Some(ArchKind::Gemma3),
            _ => None,
        }
    }
}

/// The feed-forward activation (gated: `act(gate · x) * (up · x)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU).
    Silu,
    /// GELU, tanh approximation (GeGLU).
    Gelu,
}

/// How the block differs between architectures.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchOptions {
    /// Which architecture.
    pub kind: ArchKind,
    /// RoPE pairing.
    pub rope_mode: RopeMode,
    /// Embeddings are multiplied by this (Gemma: √n_embd).
    pub embd_scale: Option<f32>,
    /// Queries are multiplied by this before attention (Gemma); otherwise attention scores are
    /// scaled by `1/√head_dim` inside the softmax.
    pub q_scale: Option<f32>,
    /// Feed-forward activation.
    pub activation: Activation,
    /// Sliding window length, and which layers use it.
    pub sliding_window: Option<u32>,
    /// Period of the local/global layer pattern (every `n`-th layer is global).
    pub swa_pattern: u32,
}

impl ArchOptions {
    /// Options for `hp.arch`.
    pub fn for_hparams(hp: &HParams) -> Result<Self, ModelError> {
        Ok(match hp.arch.as_str() {
            "llama" => ArchOptions {
                kind: ArchKind::Llama,
                rope_mode: RopeMode::Normal,
                embd_scale: None,
                q_scale: None,
                activation: Activation::Silu,
                sliding_window: None,
                swa_pattern: 0,
            },
            "qwen2" => ArchOptions {
                kind: ArchKind::Qwen2,
                rope_mode: RopeMode::Neox,
                embd_scale: None,
                q_scale: None,
                activation: Activation::Silu,
                sliding_window: None,
                swa_pattern: 0,
            },
            "gemma3" => ArchOptions {
                kind: ArchKind::Gemma3,
                rope_mode: RopeMode::Neox,
                embd_scale: Some(libm::sqrtf(hp.n_embd as f32)),
                q_scale: Some(1.0 / libm::sqrtf(hp.head_dim as f32)),
                activation: Activation::Gelu,
                sliding_window: hp.sliding_window,
                swa_pattern: 6,
            },
            other => return Err(ModelError::UnsupportedArch(other.to_string())),
        })
    }

    /// Whether layer `il` uses sliding-window (local) attention.
    pub fn is_swa(&self, il: u32) -> bool {
        match self.sliding_window {
            Some(_) if self.swa_pattern > 0 => il % self.swa_pattern < self.swa_pattern - 1,
            Some(_) => true,
            None => false,
        }
    }
}
