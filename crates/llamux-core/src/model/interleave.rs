//! A model's matrices with their rows interleaved ([`crate::quant::interleaved`]), made once at
//! load time by hosts that want them: a copy of every matrix a token's pass multiplies by,
//! interleaved where the format has the layout (the token embeddings stay as they are, being read
//! a row at a time — unless they are the output matrix too).

use super::Model;
use crate::ops::Matrix;
use crate::quant::interleaved::{self, Workload, ROWS};
use crate::quant::QuantError;
use crate::GgmlType;
use alloc::vec::Vec;
use core::fmt;

/// Original bytes interleaved at a time (see [`Model::interleave`]).
pub const PIECE_BYTES: usize = 1 << 20;

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
    /// Per matrix: its type and shape, its bytes in `buf`, and whether they are interleaved.
    parts: Vec<(GgmlType, usize, usize, core::ops::Range<usize>, bool)>,
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

    /// Bytes [`interleave`](Self::interleave) would allocate for `workload`: every matrix,
    /// interleaved where its format has the layout and it pays for the workload, else as stored;
    /// 0 when no matrix would be interleaved.
    pub fn interleaved_bytes(&self, workload: Workload) -> usize {
        if self.matrices().all(|m| wanted(m, Some(workload)).is_none()) {
            return 0;
        }
        self.copy_bytes(Some(workload))
    }

    /// Bytes [`interleave`](Self::interleave) allocates for `workload` (`None`: every matrix as
    /// stored).
    pub fn copy_bytes(&self, workload: Option<Workload>) -> usize {
        self.matrices().map(|m| wanted(m, workload).unwrap_or(m.bytes())).fold(0usize, usize::saturating_add)
    }

    /// A copy of the model's matrices in memory of its own: interleaved where their formats
    /// have the layout and it pays for `workload`, the others as stored (with `None`, all of them
    /// as stored: a host may want the weights in memory of its own, e.g. in huge pages), so that
    /// nothing of the matrices is read from the model's bytes again. Made a piece of about [`PIECE_BYTES`] at a time; each piece's
    /// original bytes are handed to `done` once copied (a host may let their pages go, so that
    /// the copy does not double the memory in use).
    pub fn interleave(
        &self,
        workload: Option<Workload>,
        mut done: impl FnMut(&'a [u8]),
    ) -> Result<InterleavedWeights, InterleaveError> {
        let bytes = self.copy_bytes(workload);
        let mut buf = Vec::new();
        buf.try_reserve_exact(bytes).map_err(|_| InterleaveError::OutOfMemory { bytes })?;
        buf.resize(bytes, 0u8);
        let mut parts = Vec::new();
        parts.try_reserve_exact(self.matrices().count()).map_err(|_| InterleaveError::OutOfMemory { bytes })?;
        let mut at = 0usize;
        for m in self.matrices() {
            let (n, interleaved) = match wanted(m, workload) {
                Some(n) => (n, true),
                None if !m.is_interleaved() => (m.bytes(), false),
                None => return Err(InterleaveError::Mismatch),
            };
            let range = at..at + n;
            let dst = buf.get_mut(range.clone()).ok_or(InterleaveError::Mismatch)?;
            // Whole groups of eight rows per piece.
            let group = match interleaved {
                true => crate::quant::interleaved::interleaved_bytes(m.ggml_type, ROWS, m.cols),
                false => m.row_bytes().checked_mul(ROWS),
            }
            .ok_or(InterleaveError::Mismatch)?;
            let per_piece = (PIECE_BYTES / group.max(1)).max(1) * ROWS;
            for (k, d) in dst.chunks_mut(per_piece / ROWS * group).enumerate() {
                let (r0, r1) = (k * per_piece, ((k + 1) * per_piece).min(m.rows));
                let src = m.data().get(r0 * m.row_bytes()..r1 * m.row_bytes()).ok_or(InterleaveError::Mismatch)?;
                if interleaved {
                    let piece = Matrix::new(m.ggml_type, r1 - r0, m.cols, src).map_err(InterleaveError::Quant)?;
                    piece.interleave_into(d).map_err(InterleaveError::Quant)?;
                } else {
                    d.get_mut(..src.len()).ok_or(InterleaveError::Mismatch)?.copy_from_slice(src);
                }
                done(src);
            }
            at += n;
            parts.push((m.ggml_type, m.rows, m.cols, range, interleaved));
        }
        Ok(InterleavedWeights { buf, parts })
    }

    /// Points the model's matrices at `w` (made by [`interleave`](Self::interleave) from this
    /// model).
    pub fn use_interleaved(&mut self, w: &'a InterleavedWeights) -> Result<(), InterleaveError> {
        let shapes_match = self.matrices().count() == w.parts.len()
            && self
                .matrices()
                .zip(&w.parts)
                .all(|(m, p)| (m.ggml_type, m.rows, m.cols) == (p.0, p.1, p.2) && !m.is_interleaved());
        if !shapes_match {
            return Err(InterleaveError::Mismatch);
        }
        // Tied embeddings: the token rows are read from the interleaved output matrix too, so
        // that the stored copy is never touched again.
        let (e, o) = (self.tok_embd.data(), self.output.data());
        let tied =
            core::ptr::eq(e, o) && (self.tok_embd.rows, self.tok_embd.cols) == (self.output.rows, self.output.cols);
        let mut parts = w.parts.iter();
        self.for_each_matrix(|m| {
            let (ty, rows, cols, range, interleaved) = parts.next().ok_or(InterleaveError::Mismatch)?;
            let data = w.buf.get(range.clone()).ok_or(InterleaveError::Mismatch)?;
            *m = if *interleaved {
                Matrix::new_interleaved(*ty, *rows, *cols, data)
            } else {
                Matrix::new(*ty, *rows, *cols, data)
            }
            .map_err(InterleaveError::Quant)?;
            Ok(())
        })?;
        if tied && self.output.is_interleaved() {
            self.tok_embd = self.output;
        }
        Ok(())
    }
}

/// Bytes of `m` interleaved, where its format has the layout and it pays for `workload`.
fn wanted(m: &Matrix<'_>, workload: Option<Workload>) -> Option<usize> {
    let workload = workload?;
    interleaved::interleaved(m.ggml_type).filter(|t| t.pays(workload, crate::isa::current()))?;
    m.interleaved_bytes()
}
