//! Model description: hyper-parameters read from GGUF metadata and llama.cpp's file types.

mod file_type;
mod hparams;

pub use file_type::{FileType, TensorRole};
pub use hparams::{HParams, ModelError};
