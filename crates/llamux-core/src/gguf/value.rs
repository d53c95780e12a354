//! Metadata values, borrowed from the file.

use super::cursor::Cursor;
use super::{GgufError, GgufErrorKind};

/// How deeply arrays may nest inside arrays before the reader refuses the file.
pub const MAX_ARRAY_NESTING: usize = 8;

/// The type tag of a metadata value.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// The type with id `id`, if any.
    pub fn from_id(id: u32) -> Option<Self> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Encoded size of one value of a fixed-size type; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

/// A metadata value; strings and arrays borrow from the file.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(&'a str),
    Array(Array<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'a> Value<'a> {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer value that fits in a `u64` (negative values give `None`).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer value as an `i64`, if it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// A float value (either width) as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The array, if this is one.
    pub fn as_array(&self) -> Option<Array<'a>> {
        match *self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Reads and validates one value of type `ty` at the cursor.
    pub(crate) fn parse(cur: &mut Cursor<'a>, ty: ValueType, depth: usize) -> Result<Self, GgufError> {
        let at = cur.pos();
        Ok(match ty {
            ValueType::U8 => Value::U8(cur.u8()?),
            ValueType::I8 => Value::I8(i8::from_le_bytes(cur.array()?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(cur.array()?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(cur.array()?)),
            ValueType::U32 => Value::U32(cur.u32()?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(cur.array()?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(cur.array()?)),
            ValueType::U64 => Value::U64(cur.u64()?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(cur.array()?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(cur.array()?)),
            ValueType::Bool => match cur.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(GgufError::at(at, GgufErrorKind::InvalidBool(b))),
            },
            ValueType::String => Value::String(cur.string()?),
            ValueType::Array => Value::Array(Array::parse(cur, depth)?),
        })
    }
}

/// A validated array of metadata values, kept as the bytes it occupies in the file.
///
/// Elements of fixed-size types are reached in O(1) with [`Array::get`]; strings and nested arrays
/// are walked by [`Array::iter`]. Validation happened when the file was parsed, so iteration
/// cannot fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Array<'a> {
    elem: ValueType,
    len: usize,
    bytes: &'a [u8],
    depth: usize,
}

impl<'a> Array<'a> {
    fn parse(cur: &mut Cursor<'a>, depth: usize) -> Result<Self, GgufError> {
        let at = cur.pos();
        if depth >= MAX_ARRAY_NESTING {
            return Err(GgufError::at(at, GgufErrorKind::NestingTooDeep));
        }
        let tid = cur.u32()?;
        let elem = ValueType::from_id(tid).ok_or(GgufError::at(at, GgufErrorKind::UnknownValueType(tid)))?;
        let count = cur.u64()?;
        let too_long = GgufError::at(at, GgufErrorKind::ArrayTooLong(count));
        let len = usize::try_from(count).map_err(|_| too_long.clone())?;
        let start = cur.pos();
        match elem.fixed_size() {
            Some(size) => {
                let nbytes = len.checked_mul(size).filter(|&n| n <= cur.remaining()).ok_or(too_long)?;
                let bytes = cur.take(nbytes)?;
                if elem == ValueType::Bool {
                    if let Some((i, &b)) = bytes.iter().enumerate().find(|(_, &b)| b > 1) {
                        return Err(GgufError::at(start + i, GgufErrorKind::InvalidBool(b)));
                    }
                }
            }
            None => {
                // Each string or nested array takes at least 8 bytes, so a count beyond that
                // bound is refused up front; the loop below then ends within the file.
                if len > cur.remaining() / 8 {
                    return Err(too_long);
                }
                for _ in 0..len {
                    Value::parse(cur, elem, depth + 1)?;
                }
            }
        }
        let bytes = cur.consumed_since(start);
        Ok(Array { elem, len, bytes, depth })
    }

    /// Element type.
    pub fn elem_type(&self) -> ValueType {
        self.elem
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i` of a fixed-size-typed array in O(1); strings and arrays are walked.
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        if i >= self.len {
            return None;
        }
        match self.elem.fixed_size() {
            Some(size) => {
                let start = i.checked_mul(size)?;
                let mut cur = Cursor::new(self.bytes.get(start..)?);
                Value::parse(&mut cur, self.elem, self.depth + 1).ok()
            }
            None => self.iter().nth(i),
        }
    }

    /// Iterates over the elements.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter { cur: Cursor::new(self.bytes), elem: self.elem, left: self.len, depth: self.depth }
    }

    /// Iterates over the elements as strings (`None` items for non-strings).
    pub fn strings(&self) -> impl Iterator<Item = Option<&'a str>> + 'a {
        self.iter().map(|v| v.as_str())
    }
}

/// Iterator over the elements of an [`Array`].
#[derive(Clone)]
pub struct ArrayIter<'a> {
    cur: Cursor<'a>,
    elem: ValueType,
    left: usize,
    depth: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Cannot fail: the bytes were validated when the array was parsed.
        Value::parse(&mut self.cur, self.elem, self.depth + 1).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}
