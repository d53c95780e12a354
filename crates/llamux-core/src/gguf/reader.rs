//! The zero-copy GGUF reader.

use super::cursor::Cursor;
use super::{GgmlType, GgufError, GgufErrorKind, Value, ValueType, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
use alloc::vec::Vec;

/// Most dimensions a ggml tensor can have.
pub const MAX_DIMS: usize = 4;

/// Smallest encoding of one metadata entry: key length, value type, one byte of value.
const MIN_KV_BYTES: usize = 8 + 4 + 1;
/// Smallest encoding of one tensor description: name length, dimension count, type, offset.
const MIN_TENSOR_INFO_BYTES: usize = 8 + 4 + 4 + 8;

/// One metadata entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetadataKv<'a> {
    /// The key, e.g. `general.architecture`.
    pub key: &'a str,
    /// The value.
    pub value: Value<'a>,
}

/// A checked tensor description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorInfo<'a> {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: &'a str,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Number of dimensions (0 to 4).
    pub n_dims: usize,
    /// Dimensions, innermost (row length) first; unused ones are 1.
    pub ne: [u64; MAX_DIMS],
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub size: usize,
}

impl TensorInfo<'_> {
    /// The used dimensions, innermost first.
    pub fn dims(&self) -> &[u64] {
        self.ne.get(..self.n_dims).unwrap_or(&[])
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.ne.iter().product()
    }

    /// Row length (the first dimension).
    pub fn row_len(&self) -> u64 {
        self.ne[0]
    }

    /// Number of rows (the product of the other dimensions).
    pub fn n_rows(&self) -> u64 {
        self.ne[1..].iter().product()
    }
}

/// A parsed GGUF file borrowing from its bytes.
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    bytes: &'a [u8],
    version: u32,
    metadata: Vec<MetadataKv<'a>>,
    tensors: Vec<TensorInfo<'a>>,
    /// Tensor indices sorted by name, for lookups.
    by_name: Vec<u32>,
    alignment: usize,
    data_offset: usize,
}

impl<'a> Gguf<'a> {
    /// Parses and checks a whole GGUF file.
    ///
    /// Every count, size and offset is checked against the length of `bytes` before it is used,
    /// so a hostile file yields a [`GgufError`] and never a panic, a huge allocation or a hang.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, GgufError> {
        let mut cur = Cursor::new(bytes);
        let magic: [u8; 4] = cur.array()?;
        if magic != MAGIC {
            return Err(GgufError::at(0, GgufErrorKind::BadMagic(magic)));
        }
        let version = cur.u32()?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::at(4, GgufErrorKind::UnsupportedVersion(version)));
        }
        let n_tensors = cur.u64()?;
        let n_kv = cur.u64()?;

        // Bound both counts by what the rest of the file could possibly hold before allocating.
        let n_kv_usize = usize::try_from(n_kv)
            .ok()
            .filter(|&n| n <= cur.remaining() / MIN_KV_BYTES)
            .ok_or(GgufError::at(16, GgufErrorKind::TooManyMetadata(n_kv)))?;
        let n_tensors_usize = usize::try_from(n_tensors)
            .ok()
            .filter(|&n| n <= cur.remaining() / MIN_TENSOR_INFO_BYTES)
            .ok_or(GgufError::at(8, GgufErrorKind::TooManyTensors(n_tensors)))?;

        let mut metadata = with_capacity(n_kv_usize)?;
        let mut key_offsets = with_capacity(n_kv_usize)?;
        let mut alignment = DEFAULT_ALIGNMENT;
        for _ in 0..n_kv_usize {
            let at = cur.pos();
            let key = cur.string()?;
            let tat = cur.pos();
            let tid = cur.u32()?;
            let ty = ValueType::from_id(tid).ok_or(GgufError::at(tat, GgufErrorKind::UnknownValueType(tid)))?;
            let value = Value::parse(&mut cur, ty, 0)?;
            if key == ALIGNMENT_KEY {
                let Value::U32(a) = value else {
                    return Err(GgufError::at(tat, GgufErrorKind::AlignmentType(ty)));
                };
                if a == 0 || !a.is_power_of_two() {
                    return Err(GgufError::at(tat, GgufErrorKind::BadAlignment(a.into())));
                }
                alignment = a as usize;
            }
            metadata.push(MetadataKv { key, value });
            key_offsets.push(at);
        }
        let mut order: Vec<usize> = with_capacity(metadata.len())?;
        check_unique(&metadata, |kv| kv.key, &mut order)
            .map_err(|i| GgufError::at(key_offsets.get(i).copied().unwrap_or(0), GgufErrorKind::DuplicateKey))?;

        let mut tensors = with_capacity(n_tensors_usize)?;
        let mut info_offsets = with_capacity(n_tensors_usize)?;
        for _ in 0..n_tensors_usize {
            let at = cur.pos();
            tensors.push(parse_tensor_info(&mut cur, alignment)?);
            info_offsets.push(at);
        }

        let end_of_infos = cur.pos();
        let data_offset = end_of_infos
            .checked_next_multiple_of(alignment)
            .ok_or(GgufError::at(end_of_infos, GgufErrorKind::SizeOverflow))?;
        let data_len = bytes.len().saturating_sub(data_offset) as u64;

        // Every tensor lies inside the data section ...
        for (index, t) in tensors.iter().enumerate() {
            let end = t.offset.checked_add(t.size as u64);
            if end.is_none_or(|e| e > data_len) {
                let at = info_offsets.get(index).copied().unwrap_or(0);
                return Err(GgufError::at(at, GgufErrorKind::TensorOutOfBounds { index }));
            }
        }
        // ... and no two overlap.
        let mut order: Vec<u32> = with_capacity(tensors.len())?;
        order.extend(0..tensors.len() as u32);
        order.sort_unstable_by_key(|&i| tensors.get(i as usize).map(|t| t.offset));
        for w in order.windows(2) {
            let &[a, b] = w else { continue };
            let (a, b) = (a as usize, b as usize);
            if let (Some(ta), Some(tb)) = (tensors.get(a), tensors.get(b)) {
                if ta.size > 0 && tb.size > 0 && ta.offset + ta.size as u64 > tb.offset {
                    let at = info_offsets.get(b).copied().unwrap_or(0);
                    return Err(GgufError::at(at, GgufErrorKind::OverlappingTensors { a, b }));
                }
            }
        }

        let mut by_name: Vec<u32> = with_capacity(tensors.len())?;
        by_name.extend(0..tensors.len() as u32);
        by_name.sort_unstable_by_key(|&i| tensors.get(i as usize).map(|t| t.name));
        for w in by_name.windows(2) {
            let &[a, b] = w else { continue };
            let name = |i: u32| tensors.get(i as usize).map(|t| t.name);
            if name(a) == name(b) {
                let at = info_offsets.get(b as usize).copied().unwrap_or(0);
                return Err(GgufError::at(at, GgufErrorKind::DuplicateTensorName));
            }
        }

        Ok(Gguf { bytes, version, metadata, tensors, by_name, alignment, data_offset })
    }

    /// Format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// All metadata entries in file order.
    pub fn metadata(&self) -> &[MetadataKv<'a>] {
        &self.metadata
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.metadata.iter().find(|kv| kv.key == key).map(|kv| kv.value)
    }

    /// The string stored under `key`.
    pub fn get_str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(|v| v.as_str())
    }

    /// The unsigned integer stored under `key` (any integer width).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.as_u64())
    }

    /// The float stored under `key` (either width).
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.as_f64())
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Option<&'a str> {
        self.get_str("general.architecture")
    }

    /// All tensor descriptions in file order.
    pub fn tensors(&self) -> &[TensorInfo<'a>] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        let i =
            self.by_name.binary_search_by(|&i| self.tensors.get(i as usize).map(|t| t.name).cmp(&Some(name))).ok()?;
        self.tensors.get(*self.by_name.get(i)? as usize)
    }

    /// The bytes of a tensor's data (checked in bounds when the file was parsed).
    pub fn tensor_data(&self, t: &TensorInfo<'_>) -> &'a [u8] {
        let start = self.data_offset.saturating_add(t.offset as usize);
        self.bytes.get(start..start.saturating_add(t.size)).unwrap_or(&[])
    }

    /// Alignment of the data section.
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Byte offset of the data section in the file.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

fn parse_tensor_info<'a>(cur: &mut Cursor<'a>, alignment: usize) -> Result<TensorInfo<'a>, GgufError> {
    let name = cur.string()?;
    let dims_at = cur.pos();
    let n_dims = cur.u32()?;
    if n_dims as usize > MAX_DIMS {
        return Err(GgufError::at(dims_at, GgufErrorKind::TooManyDims(n_dims)));
    }
    let mut ne = [1u64; MAX_DIMS];
    for d in ne.iter_mut().take(n_dims as usize) {
        *d = cur.u64()?;
    }
    let n_elements = ne
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or(GgufError::at(dims_at, GgufErrorKind::SizeOverflow))?;
    let type_at = cur.pos();
    let tid = cur.u32()?;
    let ggml_type = GgmlType::from_id(tid).ok_or(GgufError::at(type_at, GgufErrorKind::UnknownTensorType(tid)))?;
    if ne[0] % ggml_type.block_size() as u64 != 0 {
        return Err(GgufError::at(dims_at, GgufErrorKind::RowNotBlockMultiple { ggml_type, ne0: ne[0] }));
    }
    let size = ggml_type
        .bytes_for(n_elements)
        .and_then(|s| usize::try_from(s).ok())
        .ok_or(GgufError::at(dims_at, GgufErrorKind::SizeOverflow))?;
    let off_at = cur.pos();
    let offset = cur.u64()?;
    if offset % alignment as u64 != 0 {
        return Err(GgufError::at(off_at, GgufErrorKind::MisalignedTensor { offset }));
    }
    Ok(TensorInfo { name, ggml_type, n_dims: n_dims as usize, ne, offset, size })
}

/// An empty vector with room for `n` items, or [`GgufErrorKind::OutOfMemory`].
fn with_capacity<T>(n: usize) -> Result<Vec<T>, GgufError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| GgufError::at(0, GgufErrorKind::OutOfMemory))?;
    Ok(v)
}

/// `Err(i)` with the index of a repeated key, if any (`order`: room for one index per item).
fn check_unique<T>(items: &[T], key: impl Fn(&T) -> &str, order: &mut Vec<usize>) -> Result<(), usize> {
    order.clear();
    order.extend(0..items.len());
    order.sort_unstable_by(|&a, &b| items.get(a).map(&key).cmp(&items.get(b).map(&key)));
    for w in order.windows(2) {
        let &[a, b] = w else { continue };
        if items.get(a).map(&key) == items.get(b).map(&key) {
            return Err(a.max(b));
        }
    }
    Ok(())
}
