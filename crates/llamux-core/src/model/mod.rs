//! The model: hyper-parameters from metadata, per-architecture options, borrowed weights, and the
//! forward pass; plus llama.cpp's file types.

mod arch;
mod file_type;
mod forward;
mod hparams;
mod interleave;
mod weights;

pub use arch::{Activation, ArchKind, ArchOptions};
pub use file_type::{FileType, TensorRole};
pub use hparams::{HParams, ModelError};
pub use interleave::{InterleaveError, InterleavedWeights, PIECE_BYTES};
pub use weights::{Layer, Model, MAX_LAYERS};
