//! Sampling support. For now: the seeded random number generator shared by samplers and tools.

mod rng;

pub use rng::Rng;
