//! A model's matrices with their rows interleaved ([`crate::quant::interleaved`]), made once at
//! load time by hosts that want them: a copy of the weights of every matrix whose format has the
//! layout (the token embeddings stay as they are: they are read a row at a time).

use super::Model;
use crate::ops::Matrix;
use crate::quant::QuantError;
use crate::GgmlType;
use alloc::vec::Vec;
use core::fmt;

/// Why interleaving failed.
#[derive(Debug, Clone, PartialEq)]
pub enum InterleaveError {
    /// The copy could not be allocated.
    OutOfMemory {
        /// Bytes asked for.
        bytes: usize,
    },
    /// A matrix could not be interleaved.
    Quant(QuantError),
    /// The weights were made from a model of other shapes.
    Mismatch,
}

impl fmt::Display for InterleaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterleaveError::OutOfMemory { bytes } => {
                write!(f, "cannot allocate {bytes} bytes for interleaved weights")
            }
            InterleaveError::Quant(e) => write!(f, "cannot interleave a matrix: {e}"),
            InterleaveError::Mismatch => f.write_str("interleaved weights of another model"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InterleaveError {}

/// The interleaved copies of a model's matrices, in [`Model::matrices`] order: what
/// [`Model::use_interleaved`] points the model at.
pub struct InterleavedWeights {
    buf: Vec<u8>,
    /// Per matrix: its type and shape, and its bytes in `buf` (none for matrices left as they are).
    parts: Vec<(GgmlType, usize, usize, Option<core::ops::Range<usize>>)>,
}

impl InterleavedWeights {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }
}

impl<'a> Model<'a> {
    /// The matrices a token's pass multiplies by: each layer's, then the output projection.
    pub fn matrices(&self) -> impl Iterator<Item = &Matrix<'a>> {
        self.layers
            .iter()
            .flat_map(|l| [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down])
            .chain(core::iter::once(&self.output))
    }

    fn for_each_matrix<E>(&mut self, mut f: impl FnMut(&mut Matrix<'a>) -> Result<(), E>) -> Result<(), E> {
        for l in &mut self.layers {
            for m in [&mut l.wq, &mut l.wk, &mut l.wv, &mut l.wo, &mut l.w_gate, &mut l.w_up, &mut l.w_down] {
                f(m)?;
            }
        }
        f(&mut self.output)
    }

    /// Bytes [`interleave`](Self::interleave) would allocate.
    pub fn interleaved_bytes(&self) -> usize {
        self.matrices().filter_map(Matrix::interleaved_bytes).fold(0usize, usize::saturating_add)
    }

    /// Interleaved copies of the matrices whose formats have the layout.
    pub fn interleave(&self) -> Result<InterleavedWeights, InterleaveError> {
        let bytes = self.interleaved_bytes();
        let mut buf = Vec::new();
        buf.try_reserve_exact(bytes).map_err(|_| InterleaveError::OutOfMemory { bytes })?;
        buf.resize(bytes, 0u8);
        let mut parts = Vec::new();
        parts.try_reserve_exact(self.matrices().count()).map_err(|_| InterleaveError::OutOfMemory { bytes })?;
        let mut at = 0usize;
        for m in self.matrices() {
            let range = match m.interleaved_bytes() {
                Some(n) => {
                    let range = at..at + n;
                    let dst = buf.get_mut(range.clone()).ok_or(InterleaveError::Mismatch)?;
                    m.interleave_into(dst).map_err(InterleaveError::Quant)?;
                    at += n;
                    Some(range)
                }
                None => None,
            };
            parts.push((m.ggml_type, m.rows, m.cols, range));
        }
        Ok(InterleavedWeights { buf, parts })
    }

    /// Points the model's matrices at `w` (made by [`interleave`](Self::interleave) from this
    /// model), handing each replaced matrix's original bytes to `replaced` (a host may let their
    /// pages go).
    pub fn use_interleaved(
        &mut self,
        w: &'a InterleavedWeights,
        mut replaced: impl FnMut(&'a [u8]),
    ) -> Result<(), InterleaveError> {
        let shapes_match = self.matrices().count() == w.parts.len()
            && self
                .matrices()
                .zip(&w.parts)
                .all(|(m, p)| (m.ggml_type, m.rows, m.cols) == (p.0, p.1, p.2) && !m.is_interleaved());
        if !shapes_match {
            return Err(InterleaveError::Mismatch);
        }
        let mut parts = w.parts.iter();
        self.for_each_matrix(|m| {
            let Some((ty, rows, cols, Some(range))) = parts.next() else { return Ok(()) };
            let data = w.buf.get(range.clone()).ok_or(InterleaveError::Mismatch)?;
            let old = m.data();
            *m = Matrix::new_interleaved(*ty, *rows, *cols, data).map_err(InterleaveError::Quant)?;
            replaced(old);
            Ok(())
        })
    }
}
