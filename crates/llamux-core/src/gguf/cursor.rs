//! A bounds-checked little-endian reader over a byte slice.

use super::{GgufError, GgufErrorKind};

/// Reads little-endian fields from a borrowed slice; every read is checked against its length.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes between `start` and the current position.
    pub(crate) fn consumed_since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or(&[])
    }

    /// The next `n` bytes, or an end-of-file error at the current offset.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], GgufError> {
        let eof = || GgufError::at(self.pos, GgufErrorKind::UnexpectedEof { needed: n as u64 });
        let end = self.pos.checked_add(n).ok_or_else(eof)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(eof)?;
        self.pos = end;
        Ok(bytes)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, GgufError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A GGUF string: a u64 byte length and that many UTF-8 bytes.
    pub(crate) fn string(&mut self) -> Result<&'a str, GgufError> {
        let at = self.pos;
        let len = self.u64()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= self.remaining())
            .ok_or_else(|| GgufError::at(at, GgufErrorKind::StringTooLong(len)))?;
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes).map_err(|_| GgufError::at(at, GgufErrorKind::InvalidUtf8))
    }
}
