//! The GGUF container format (versions 2 and 3).
//!
//! A GGUF file is a header (magic, version, counts), a list of typed metadata key/value pairs, a
//! list of tensor descriptions, and then — aligned to `general.alignment` — the tensor data.
//! [`Gguf::parse`] checks all of it against the file length before anything is used and borrows
//! every string and tensor from the input; [`GgufWriter`] writes the same structure.

#![warn(clippy::indexing_slicing)]

mod cursor;
mod error;
mod ggml_type;
mod reader;
mod value;
mod writer;

pub use error::{GgufError, GgufErrorKind};
pub use ggml_type::{GgmlType, QK_K};
pub use reader::{Gguf, MetadataKv, TensorInfo, MAX_DIMS};
pub use value::{Array, ArrayIter, Value, ValueType};
#[cfg(feature = "std")]
pub use writer::IoSink;
pub use writer::{GgufWriter, MetaValue, Sink, TensorStream, WriteError};

/// `"GGUF"` as it appears in the first four bytes of every file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the tensor data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;
/// The metadata key that overrides [`DEFAULT_ALIGNMENT`].
pub const ALIGNMENT_KEY: &str = "general.alignment";
