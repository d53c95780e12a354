//! Sampling: the seeded random number generator and the token samplers.

#![warn(clippy::indexing_slicing)]

mod rng;
mod sampler;

pub use rng::Rng;
pub use sampler::{argmax, BadSamplerConfig, Sampler, SamplerConfig, SamplerError};
