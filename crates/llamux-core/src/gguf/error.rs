//! Typed errors of the GGUF reader, each with the byte offset where the problem was found.

use super::ValueType;
use crate::GgmlType;
use core::fmt;

/// A GGUF file was rejected; `offset` is the byte offset of the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufError {
    /// Byte offset into the file.
    pub offset: u64,
    /// What is wrong there.
    pub kind: GgufErrorKind,
}

/// What is wrong with a GGUF file.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GgufErrorKind {
    /// The file ends before a field of `needed` bytes.
    UnexpectedEof {
        /// Bytes the field needs.
        needed: u64,
    },
    /// The first four bytes are not `GGUF`.
    BadMagic([u8; 4]),
    /// Only versions 2 and 3 are read.
    UnsupportedVersion(u32),
    /// The tensor count cannot fit in the file.
    TooManyTensors(u64),
    /// The metadata count cannot fit in the file.
    TooManyMetadata(u64),
    /// A string (key, value or tensor name) is not UTF-8.
    InvalidUtf8,
    /// A metadata value type id is unknown.
    UnknownValueType(u32),
    /// A boolean byte is neither 0 nor 1.
    InvalidBool(u8),
    /// Arrays nest deeper than the reader allows.
    NestingTooDeep,
    /// A string length runs past the end of the file.
    StringTooLong(u64),
    /// An array length runs past the end of the file.
    ArrayTooLong(u64),
    /// Two metadata entries have the same key.
    DuplicateKey,
    /// `general.alignment` has the wrong type.
    AlignmentType(ValueType),
    /// `general.alignment` is zero or not a power of two.
    BadAlignment(u64),
    /// A tensor has more dimensions than ggml supports.
    TooManyDims(u32),
    /// A tensor's element count or byte size overflows.
    SizeOverflow,
    /// A tensor type id is unknown.
    UnknownTensorType(u32),
    /// A tensor's rows are not a whole number of blocks of its type.
    RowNotBlockMultiple {
        /// The tensor type.
        ggml_type: GgmlType,
        /// Row length (first dimension).
        ne0: u64,
    },
    /// Two tensors have the same name.
    DuplicateTensorName,
    /// Memory for the file's tables (metadata, tensor list) ran out.
    OutOfMemory,
    /// A tensor's data offset is not a multiple of the alignment.
    MisalignedTensor {
        /// Offset relative to the data section.
        offset: u64,
    },
    /// A tensor's data runs past the end of the file.
    TensorOutOfBounds {
        /// Index of the tensor.
        index: usize,
    },
    /// Two tensors' data overlap.
    OverlappingTensors {
        /// Index of one tensor.
        a: usize,
        /// Index of the other.
        b: usize,
    },
}

impl GgufError {
    pub(crate) fn at(offset: usize, kind: GgufErrorKind) -> Self {
        Self { offset: offset as u64, kind }
    }
}

impl fmt::Display for GgufErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufErrorKind::*;
        match self {
            UnexpectedEof { needed } => write!(f, "file ends before a {needed}-byte field"),
            BadMagic(m) => write!(f, "bad magic {m:02x?} (not a GGUF file)"),
            UnsupportedVersion(v) => write!(f, "unsupported GGUF version {v} (2 and 3 are read)"),
            TooManyTensors(n) => write!(f, "tensor count {n} cannot fit in the file"),
            TooManyMetadata(n) => write!(f, "metadata count {n} cannot fit in the file"),
            InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            UnknownValueType(t) => write!(f, "unknown metadata value type {t}"),
            InvalidBool(b) => write!(f, "boolean byte {b} is neither 0 nor 1"),
            NestingTooDeep => f.write_str("arrays nest too deeply"),
            StringTooLong(n) => write!(f, "string length {n} runs past the end of the file"),
            ArrayTooLong(n) => write!(f, "array length {n} runs past the end of the file"),
            DuplicateKey => f.write_str("duplicate metadata key"),
            AlignmentType(t) => write!(f, "general.alignment has type {t:?}, expected u32"),
            BadAlignment(a) => write!(f, "alignment {a} is not a power of two"),
            TooManyDims(n) => write!(f, "tensor has {n} dimensions (at most 4)"),
            SizeOverflow => f.write_str("tensor size overflows"),
            UnknownTensorType(t) => write!(f, "unknown tensor type {t}"),
            RowNotBlockMultiple { ggml_type, ne0 } => {
                write!(f, "row length {ne0} is not a multiple of the {ggml_type} block size {}", ggml_type.block_size())
            }
            DuplicateTensorName => f.write_str("duplicate tensor name"),
            OutOfMemory => f.write_str("out of memory for the file's tables"),
            MisalignedTensor { offset } => write!(f, "tensor data offset {offset} is misaligned"),
            TensorOutOfBounds { index } => write!(f, "tensor {index} data runs past the end of the file"),
            OverlappingTensors { a, b } => write!(f, "tensors {a} and {b} overlap"),
        }
    }
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid GGUF at byte {}: {}", self.offset, self.kind)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for GgufError {}
