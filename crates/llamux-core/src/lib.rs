//! `llamux-core`: a `#![no_std]` inference engine for quantized GGUF language models.
//!
//! The core never opens files, spawns threads or reads clocks: it is handed the bytes of a model and
//! works on them in place. Hosts (the `llamux` CLI, the `llamux.ko` kernel module) supply I/O.
//!
//! * [`gguf`] — a hardened, zero-copy GGUF reader and a streaming writer.
//! * [`model`] — hyper-parameters and file types.
//! * [`quant`] — every supported block format: dequantize, quantize and fused dot products.
//! * [`sample`] — random numbers (and, later, samplers).
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod buffers;
pub mod chat;
pub mod gguf;
pub mod isa;
pub mod model;
pub mod ops;
pub mod platform;
pub mod quant;
pub mod sample;
pub mod session;
pub mod tokenizer;

pub use gguf::GgmlType;
