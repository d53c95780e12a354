//! The numeric building blocks of the forward pass, each computed the way ggml's CPU backend does
//! so that results agree with llama.cpp to float rounding.

mod activation;
mod matvec;
mod norm;
mod rope;
mod softmax;

pub use activation::{gelu_tanh, silu, GeluTable};
pub use matvec::{matvec_fused, project, Matrix, Product, QuantizedInput, MAX_FUSED};
pub use norm::{rms_norm, rms_norm_in_place};
pub use rope::{Rope, RopeMode};
pub use softmax::softmax;
