//! Matrix–vector products over quantized weights, with activations quantized once to the type
//! the weights pair with (as ggml does).

use crate::platform::Parallel;
use crate::quant::{traits, QuantError, TypeTraits};
use crate::GgmlType;
use alloc::vec;
use alloc::vec::Vec;

/// A 2-D weight tensor borrowed from the model bytes: `rows` rows of `cols` elements.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    /// Element type.
    pub ggml_type: GgmlType,
    /// Output dimension.
    pub rows: usize,
    /// Input dimension (row length).
    pub cols: usize,
    data: &'a [u8],
    row_bytes: usize,
    traits: &'static TypeTraits,
}

impl<'a> Matrix<'a> {
    /// Views `data` as a `rows × cols` matrix of `ggml_type`.
    pub fn new(ggml_type: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, QuantError> {
        let traits = traits(ggml_type)?;
        let row_bytes = ggml_type
            .bytes_for(cols as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(QuantError::NotWholeBlocks { ggml_type, len: cols })?;
        let expected =
            row_bytes.checked_mul(rows).ok_or(QuantError::LengthMismatch { expected: usize::MAX, got: data.len() })?;
        if data.len() != expected {
            return Err(QuantError::LengthMismatch { expected, got: data.len() });
        }
        Ok(Matrix { ggml_type, rows, cols, data, row_bytes, traits })
    }

    /// The bytes of row `r`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        let start = r.saturating_mul(self.row_bytes);
        self.data.get(start..start.saturating_add(self.row_bytes)).unwrap_or(&[])
    }

    /// Dequantizes row `r` into `out` (`cols` floats).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<(), QuantError> {
        (self.traits.to_float)(self.row(r), out)
    }

    /// The activation type of this matrix's dot products.
    pub fn input_type(&self) -> GgmlType {
        self.traits.vec_dot_type
    }

    /// `out[r] = row_r · x` for every row, rows split across `par`.
    pub fn matvec(&self, par: &dyn Parallel, x: &QuantizedInput, out: &mut [f32]) -> Result<(), QuantError> {
        if x.ggml_type != self.input_type() || x.n != self.cols {
            return Err(QuantError::LengthMismatch { expected: self.cols, got: x.n });
        }
        if out.len() != self.rows {
            return Err(QuantError::LengthMismatch { expected: self.rows, got: out.len() });
        }
        let xb = x.bytes();
        let chunk = self.rows.div_ceil(par.n_threads().max(1) * 4).max(16);
        par.run(out, chunk, &|first, piece| {
            for (i, o) in piece.iter_mut().enumerate() {
                // Lengths were checked above; a failure here cannot happen and yields 0.
                *o = (self.traits.vec_dot)(self.row(first + i), xb).unwrap_or(0.0);
            }
        });
        Ok(())
    }
}

/// An activation vector quantized to a weight type's [`input_type`](Matrix::input_type), in a
/// buffer allocated once and reused.
pub struct QuantizedInput {
    buf: Vec<u32>,
    ggml_type: GgmlType,
    n: usize,
    len: usize,
}

impl QuantizedInput {
    /// A buffer able to hold `max_elements` elements of any activation type.
    pub fn with_capacity(max_elements: usize) -> Self {
        // Q8_1 is the widest activation encoding per element (36 bytes per 32), f32 aside.
        let words = max_elements.saturating_mul(4).div_ceil(4) + 64;
        QuantizedInput { buf: vec![0; words], ggml_type: GgmlType::F32, n: 0, len: 0 }
    }

    /// Quantizes `x` to `ggml_type`.
    pub fn quantize(&mut self, x: &[f32], ggml_type: GgmlType) -> Result<(), QuantError> {
        let len = ggml_type
            .bytes_for(x.len() as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(QuantError::NotWholeBlocks { ggml_type, len: x.len() })?;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut self.buf);
        let have = bytes.len();
        let dst = bytes.get_mut(..len).ok_or(QuantError::LengthMismatch { expected: len, got: have })?;
        (traits(ggml_type)?.from_float_act)(x, dst)?;
        self.ggml_type = ggml_type;
        self.n = x.len();
        self.len = len;
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        let bytes: &[u8] = bytemuck::cast_slice(&self.buf);
        bytes.get(..self.len).unwrap_or(&[])
    }
}
