//! A streaming GGUF writer: header and metadata first, then tensor data one tensor at a time.

use super::{GgmlType, Value, ValueType, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt;

/// An owned metadata value for writing.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    /// An array whose elements all have type `elem`.
    Array {
        elem: ValueType,
        items: Vec<MetaValue>,
    },
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            MetaValue::U8(_) => ValueType::U8,
            MetaValue::I8(_) => ValueType::I8,
            MetaValue::U16(_) => ValueType::U16,
            MetaValue::I16(_) => ValueType::I16,
            MetaValue::U32(_) => ValueType::U32,
            MetaValue::I32(_) => ValueType::I32,
            MetaValue::F32(_) => ValueType::F32,
            MetaValue::Bool(_) => ValueType::Bool,
            MetaValue::String(_) => ValueType::String,
            MetaValue::Array { .. } => ValueType::Array,
            MetaValue::U64(_) => ValueType::U64,
            MetaValue::I64(_) => ValueType::I64,
            MetaValue::F64(_) => ValueType::F64,
        }
    }

    /// An array of strings.
    pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        let items = items.into_iter().map(|s| MetaValue::String(s.as_ref().to_string())).collect();
        MetaValue::Array { elem: ValueType::String, items }
    }

    /// An array of `f32`.
    pub fn f32s(items: impl IntoIterator<Item = f32>) -> Self {
        MetaValue::Array { elem: ValueType::F32, items: items.into_iter().map(MetaValue::F32).collect() }
    }

    /// An array of `i32`.
    pub fn i32s(items: impl IntoIterator<Item = i32>) -> Self {
        MetaValue::Array { elem: ValueType::I32, items: items.into_iter().map(MetaValue::I32).collect() }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WriteError<Infallible>> {
        match self {
            MetaValue::U8(v) => out.push(*v),
            MetaValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::Bool(v) => out.push(u8::from(*v)),
            MetaValue::String(s) => put_str(out, s),
            MetaValue::Array { elem, items } => {
                put_u32(out, *elem as u32);
                put_u64(out, items.len() as u64);
                for item in items {
                    if item.value_type() != *elem {
                        return Err(WriteError::MixedArray);
                    }
                    item.encode(out)?;
                }
            }
            MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        }
        Ok(())
    }
}

impl From<Value<'_>> for MetaValue {
    fn from(v: Value<'_>) -> Self {
        match v {
            Value::U8(v) => MetaValue::U8(v),
            Value::I8(v) => MetaValue::I8(v),
            Value::U16(v) => MetaValue::U16(v),
            Value::I16(v) => MetaValue::I16(v),
            Value::U32(v) => MetaValue::U32(v),
            Value::I32(v) => MetaValue::I32(v),
            Value::F32(v) => MetaValue::F32(v),
            Value::Bool(v) => MetaValue::Bool(v),
            Value::String(s) => MetaValue::String(s.to_string()),
            Value::Array(a) => MetaValue::Array { elem: a.elem_type(), items: a.iter().map(MetaValue::from).collect() },
            Value::U64(v) => MetaValue::U64(v),
            Value::I64(v) => MetaValue::I64(v),
            Value::F64(v) => MetaValue::F64(v),
        }
    }
}

impl From<&str> for MetaValue {
    fn from(s: &str) -> Self {
        MetaValue::String(s.to_string())
    }
}

/// Why a file could not be written.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError<E> {
    /// The sink failed.
    Sink(E),
    /// A metadata key was added twice.
    DuplicateKey(String),
    /// A tensor name was added twice.
    DuplicateTensor(String),
    /// An array holds values of more than one type.
    MixedArray,
    /// `general.alignment` must be a power-of-two `u32`.
    BadAlignment,
    /// A tensor has more than four dimensions.
    TooManyDims,
    /// A tensor's row length is not a whole number of blocks, or its size overflows.
    BadShape(String),
    /// Tensor data of the wrong length was supplied.
    WrongDataLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// More or fewer tensors were written than were declared.
    TensorCount,
}

impl<E: fmt::Debug> fmt::Display for WriteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Sink(e) => write!(f, "write failed: {e:?}"),
            WriteError::DuplicateKey(k) => write!(f, "duplicate metadata key {k}"),
            WriteError::DuplicateTensor(n) => write!(f, "duplicate tensor {n}"),
            WriteError::MixedArray => f.write_str("array elements have mixed types"),
            WriteError::BadAlignment => f.write_str("general.alignment must be a power-of-two u32"),
            WriteError::TooManyDims => f.write_str("tensor has more than 4 dimensions"),
            WriteError::BadShape(n) => write!(f, "tensor {n}: shape does not fit its type"),
            WriteError::WrongDataLength { expected, got } => {
                write!(f, "tensor data is {got} bytes, expected {expected}")
            }
            WriteError::TensorCount => f.write_str("number of tensors written differs from the number declared"),
        }
    }
}

#[cfg(feature = "std")]
impl<E: fmt::Debug> std::error::Error for WriteError<E> {}

impl WriteError<Infallible> {
    /// Widens a build-time error to any sink's error type.
    pub fn lift<E>(self) -> WriteError<E> {
        match self {
            WriteError::Sink(never) => match never {},
            WriteError::DuplicateKey(k) => WriteError::DuplicateKey(k),
            WriteError::DuplicateTensor(n) => WriteError::DuplicateTensor(n),
            WriteError::MixedArray => WriteError::MixedArray,
            WriteError::BadAlignment => WriteError::BadAlignment,
            WriteError::TooManyDims => WriteError::TooManyDims,
            WriteError::BadShape(n) => WriteError::BadShape(n),
            WriteError::WrongDataLength { expected, got } => WriteError::WrongDataLength { expected, got },
            WriteError::TensorCount => WriteError::TensorCount,
        }
    }
}

/// Where written bytes go.
pub trait Sink {
    /// The sink's error.
    type Error;
    /// Writes all of `bytes`.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

impl Sink for Vec<u8> {
    type Error = Infallible;
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// A [`Sink`] over any [`std::io::Write`].
#[cfg(feature = "std")]
pub struct IoSink<W>(pub W);

#[cfg(feature = "std")]
impl<W: std::io::Write> Sink for IoSink<W> {
    type Error = std::io::Error;
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.write_all(bytes)
    }
}

#[derive(Debug, Clone)]
struct PendingTensor {
    name: String,
    ne: Vec<u64>,
    ggml_type: GgmlType,
    offset: u64,
    size: usize,
}

/// Collects metadata and tensor descriptions, then streams a GGUF file to a [`Sink`].
///
/// ```
/// use llamux_core::gguf::{Gguf, GgufWriter, MetaValue};
/// use llamux_core::GgmlType;
/// let mut w = GgufWriter::new();
/// w.add("general.architecture", MetaValue::from("llama")).unwrap();
/// w.add_tensor("x", &[4], GgmlType::F32).unwrap();
/// let mut s = w.start(Vec::new()).unwrap();
/// s.write_tensor(&[0u8; 16]).unwrap();
/// let bytes = s.finish().unwrap();
/// assert_eq!(Gguf::parse(&bytes).unwrap().architecture(), Some("llama"));
/// ```
#[derive(Debug, Clone)]
pub struct GgufWriter {
    version: u32,
    alignment: usize,
    kvs: Vec<(String, MetaValue)>,
    tensors: Vec<PendingTensor>,
    data_size: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// A version-3 writer with the default alignment.
    pub fn new() -> Self {
        Self { version: 3, alignment: DEFAULT_ALIGNMENT, kvs: Vec::new(), tensors: Vec::new(), data_size: 0 }
    }

    /// Writes format version `version` (2 or 3; they share one layout).
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Adds a metadata entry. `general.alignment` (a power-of-two `u32`) also sets the alignment;
    /// set it before adding tensors.
    pub fn add(&mut self, key: &str, value: MetaValue) -> Result<(), WriteError<Infallible>> {
        if self.kvs.iter().any(|(k, _)| k == key) {
            return Err(WriteError::DuplicateKey(key.to_string()));
        }
        if key == ALIGNMENT_KEY {
            match value {
                MetaValue::U32(a) if a.is_power_of_two() && self.tensors.is_empty() => self.alignment = a as usize,
                _ => return Err(WriteError::BadAlignment),
            }
        }
        // Encode once to validate arrays now rather than when writing.
        value.encode(&mut Vec::new())?;
        self.kvs.push((key.to_string(), value));
        Ok(())
    }

    /// Declares a tensor (dimensions innermost first); returns its index. Data is supplied in
    /// declaration order through [`TensorStream::write_tensor`].
    pub fn add_tensor(&mut self, name: &str, ne: &[u64], ggml_type: GgmlType) -> Result<usize, WriteError<Infallible>> {
        if ne.len() > MAX_DIMS {
            return Err(WriteError::TooManyDims);
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(WriteError::DuplicateTensor(name.to_string()));
        }
        let bad = || WriteError::BadShape(name.to_string());
        let n: u64 = ne.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or_else(bad)?;
        if ne.first().copied().unwrap_or(1) % ggml_type.block_size() as u64 != 0 {
            return Err(bad());
        }
        let size = ggml_type.bytes_for(n).and_then(|s| usize::try_from(s).ok()).ok_or_else(bad)?;
        let offset = self.data_size;
        self.data_size = offset
            .checked_add(size as u64)
            .and_then(|e| e.checked_next_multiple_of(self.alignment as u64))
            .ok_or_else(bad)?;
        self.tensors.push(PendingTensor { name: name.to_string(), ne: ne.to_vec(), ggml_type, offset, size });
        Ok(self.tensors.len() - 1)
    }

    /// Number of tensors declared.
    pub fn n_tensors(&self) -> usize {
        self.tensors.len()
    }

    /// The header, metadata, tensor descriptions and padding up to the data section.
    pub fn header_bytes(&self) -> Result<Vec<u8>, WriteError<Infallible>> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        put_u32(&mut out, self.version);
        put_u64(&mut out, self.tensors.len() as u64);
        put_u64(&mut out, self.kvs.len() as u64);
        for (k, v) in &self.kvs {
            put_str(&mut out, k);
            put_u32(&mut out, v.value_type() as u32);
            v.encode(&mut out)?;
        }
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            put_u32(&mut out, t.ne.len() as u32);
            for &d in &t.ne {
                put_u64(&mut out, d);
            }
            put_u32(&mut out, t.ggml_type.id());
            put_u64(&mut out, t.offset);
        }
        out.resize(out.len().next_multiple_of(self.alignment), 0);
        Ok(out)
    }

    /// Writes the header to `sink` and returns a stream that takes the tensor data.
    pub fn start<S: Sink>(&self, mut sink: S) -> Result<TensorStream<'_, S>, WriteError<S::Error>> {
        let header = self.header_bytes().map_err(WriteError::lift)?;
        sink.write_all(&header).map_err(WriteError::Sink)?;
        Ok(TensorStream { writer: self, sink, next: 0 })
    }
}

/// Receives tensor data, in declaration order, after the header has been written.
pub struct TensorStream<'w, S> {
    writer: &'w GgufWriter,
    sink: S,
    next: usize,
}

impl<S: Sink> TensorStream<'_, S> {
    /// Size in bytes expected for the next tensor, if any remain.
    pub fn next_size(&self) -> Option<usize> {
        self.writer.tensors.get(self.next).map(|t| t.size)
    }

    /// Writes the data of the next declared tensor, followed by alignment padding.
    pub fn write_tensor(&mut self, data: &[u8]) -> Result<(), WriteError<S::Error>> {
        let t = self.writer.tensors.get(self.next).ok_or(WriteError::TensorCount)?;
        if data.len() != t.size {
            return Err(WriteError::WrongDataLength { expected: t.size, got: data.len() });
        }
        self.sink.write_all(data).map_err(WriteError::Sink)?;
        let pad = t.size.next_multiple_of(self.writer.alignment) - t.size;
        {
            const ZEROS: [u8; 64] = [0; 64];
            let mut left = pad;
            while left > 0 {
                let n = left.min(ZEROS.len());
                self.sink.write_all(ZEROS.get(..n).unwrap_or(&ZEROS)).map_err(WriteError::Sink)?;
                left -= n;
            }
        }
        self.next += 1;
        Ok(())
    }

    /// Checks that every declared tensor was written and returns the sink.
    pub fn finish(self) -> Result<S, WriteError<S::Error>> {
        if self.next != self.writer.tensors.len() {
            return Err(WriteError::TensorCount);
        }
        Ok(self.sink)
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}
