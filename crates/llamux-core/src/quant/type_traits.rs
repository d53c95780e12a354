//! ggml-style table of per-type operations over byte slices, with length checks.

use super::tiles::{Tiles, TILE_COLS};
use super::*;
use core::fmt;

/// Why a quantized operation was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantError {
    /// The engine has no kernels for this type.
    Unsupported(GgmlType),
    /// A byte slice is not a whole number of blocks.
    NotWholeBlocks {
        /// The block type.
        ggml_type: GgmlType,
        /// The slice length.
        len: usize,
    },
    /// A float slice length is not `blocks * block size`, or two operands differ in length.
    LengthMismatch {
        /// Elements expected.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// A byte slice is not aligned for its block type (only `Q8_K`, whose fields are wider).
    Misaligned(GgmlType),
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantError::Unsupported(t) => write!(f, "no kernels for tensor type {t}"),
            QuantError::NotWholeBlocks { ggml_type, len } => {
                write!(f, "{len} bytes is not a whole number of {ggml_type} blocks")
            }
            QuantError::LengthMismatch { expected, got } => write!(f, "expected {expected} elements, got {got}"),
            QuantError::Misaligned(t) => write!(f, "buffer misaligned for {t} blocks"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for QuantError {}

/// A dot product over byte slices with a chosen tier's kernels.
pub type VecDotWith = fn(simd: Simd, w: &[u8], a: &[u8]) -> Result<f32, QuantError>;
/// An activation quantizer over byte slices with a chosen tier's kernels.
pub type QuantizeWith = fn(simd: Simd, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError>;

/// Dot products of consecutive weight rows with one activation row, with a chosen tier's kernels.
pub type VecDotRows = fn(simd: Simd, w: &[u8], a: &[u8], out: &mut [f32]) -> Result<(), QuantError>;
/// `out[c][r] = row_r · a[c]` for the consecutive rows in `w` and four activation rows.
pub type VecDotRowsX4 = fn(simd: Simd, w: &[u8], a: [&[u8]; 4], out: [&mut [f32]; 4]) -> Result<(), QuantError>;

/// `out[c * n_rows + r] = row_r · token c` for the consecutive rows in `w` and the tokens of a
/// batch laid out as tiles; `Ok(false)` where the type has no tile kernel for the tier.
pub type VecDotTile = fn(simd: Simd, w: &[u8], tiles: Tiles<'_>, out: &mut [f32]) -> Result<bool, QuantError>;

/// Byte-level operations of one supported type (ggml's `type_traits`).
#[derive(Clone, Copy)]
pub struct TypeTraits {
    /// The weight type.
    pub ggml_type: GgmlType,
    /// The activation type [`vec_dot`](Self::vec_dot) pairs it with.
    pub vec_dot_type: GgmlType,
    /// Dequantizes whole blocks into `dst` (exactly `blocks * block size` floats).
    pub to_float: fn(src: &[u8], dst: &mut [f32]) -> Result<(), QuantError>,
    /// Quantizes `src` (a whole number of blocks) into `dst` (exactly the needed bytes).
    pub from_float: fn(src: &[f32], dst: &mut [u8]) -> Result<(), QuantError>,
    /// Quantizes activations as ggml's CPU backend does ([`BlockFormat::from_float_act`]).
    pub from_float_act: fn(src: &[f32], dst: &mut [u8]) -> Result<(), QuantError>,
    /// Fused dot product of a weight row with activations of [`vec_dot_type`](Self::vec_dot_type).
    pub vec_dot: fn(w: &[u8], a: &[u8]) -> Result<f32, QuantError>,
    /// Scalar reference of [`vec_dot`](Self::vec_dot).
    pub vec_dot_unopt: fn(w: &[u8], a: &[u8]) -> Result<f32, QuantError>,
    /// [`vec_dot`](Self::vec_dot) with a chosen tier's kernels ([`BlockFormat::vec_dot_with`]).
    pub vec_dot_with: VecDotWith,
    /// [`from_float_act`](Self::from_float_act) with a chosen tier's kernels.
    pub from_float_act_with: QuantizeWith,
    /// `out[r] = row_r · a` for `out.len()` consecutive rows in `w` ([`BlockFormat::vec_dot_rows_with`]).
    pub vec_dot_rows: VecDotRows,
    /// `out[c][r] = row_r · a[c]` for four activation rows ([`BlockFormat::vec_dot_x4_with`]).
    pub vec_dot_rows_x4: VecDotRowsX4,
    /// [`BlockFormat::vec_dot_tile_with`].
    pub vec_dot_tile: VecDotTile,
}

fn blocks<B: BlockFormat>(bytes: &[u8]) -> Result<&[B], QuantError> {
    if !bytes.len().is_multiple_of(core::mem::size_of::<B>()) {
        return Err(QuantError::NotWholeBlocks { ggml_type: B::TYPE, len: bytes.len() });
    }
    bytemuck::try_cast_slice(bytes).map_err(|_| QuantError::Misaligned(B::TYPE))
}

fn blocks_mut<B: BlockFormat>(bytes: &mut [u8]) -> Result<&mut [B], QuantError> {
    if !bytes.len().is_multiple_of(core::mem::size_of::<B>()) {
        return Err(QuantError::NotWholeBlocks { ggml_type: B::TYPE, len: bytes.len() });
    }
    bytemuck::try_cast_slice_mut(bytes).map_err(|_| QuantError::Misaligned(B::TYPE))
}

fn check_len(expected: usize, got: usize) -> Result<(), QuantError> {
    if expected == got {
        Ok(())
    } else {
        Err(QuantError::LengthMismatch { expected, got })
    }
}

fn to_float<B: BlockFormat>(src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    let xs = blocks::<B>(src)?;
    check_len(xs.len() * B::BLCK_SIZE, dst.len())?;
    B::to_float(xs, dst);
    Ok(())
}

fn from_float<B: BlockFormat>(src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    let ys = blocks_mut::<B>(dst)?;
    check_len(ys.len() * B::BLCK_SIZE, src.len())?;
    B::from_float(src, ys);
    Ok(())
}

fn from_float_act<B: BlockFormat>(src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    let ys = blocks_mut::<B>(dst)?;
    check_len(ys.len() * B::BLCK_SIZE, src.len())?;
    B::from_float_act(src, ys);
    Ok(())
}

fn dot_operands<'a, B: BlockFormat>(w: &'a [u8], a: &'a [u8]) -> Result<(&'a [B], &'a [B::VecDotType]), QuantError> {
    let (xs, ys) = (blocks::<B>(w)?, blocks::<B::VecDotType>(a)?);
    check_len(xs.len() * B::BLCK_SIZE, ys.len() * B::VecDotType::BLCK_SIZE)?;
    Ok((xs, ys))
}

fn vec_dot<B: BlockFormat>(w: &[u8], a: &[u8]) -> Result<f32, QuantError> {
    let (xs, ys) = dot_operands::<B>(w, a)?;
    Ok(B::vec_dot(xs, ys))
}

fn vec_dot_unopt<B: BlockFormat>(w: &[u8], a: &[u8]) -> Result<f32, QuantError> {
    let (xs, ys) = dot_operands::<B>(w, a)?;
    Ok(B::vec_dot_unopt(xs, ys))
}

fn vec_dot_with<B: BlockFormat>(simd: Simd, w: &[u8], a: &[u8]) -> Result<f32, QuantError> {
    let (xs, ys) = dot_operands::<B>(w, a)?;
    Ok(B::vec_dot_with(simd, xs, ys))
}

fn vec_dot_rows<B: BlockFormat>(simd: Simd, w: &[u8], a: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    let (xs, ys) = (blocks::<B>(w)?, blocks::<B::VecDotType>(a)?);
    let n = ys.len() * B::VecDotType::BLCK_SIZE;
    if !n.is_multiple_of(B::BLCK_SIZE) {
        return Err(QuantError::NotWholeBlocks { ggml_type: B::TYPE, len: n });
    }
    check_len(n / B::BLCK_SIZE * out.len(), xs.len())?;
    B::vec_dot_rows_with(simd, xs, ys, out);
    Ok(())
}

fn vec_dot_rows_x4<B: BlockFormat>(
    simd: Simd,
    w: &[u8],
    a: [&[u8]; 4],
    out: [&mut [f32]; 4],
) -> Result<(), QuantError> {
    let xs = blocks::<B>(w)?;
    let ys = [blocks::<B::VecDotType>(a[0])?, blocks(a[1])?, blocks(a[2])?, blocks(a[3])?];
    let n = ys[0].len() * B::VecDotType::BLCK_SIZE;
    if !n.is_multiple_of(B::BLCK_SIZE) || n == 0 {
        return Err(QuantError::NotWholeBlocks { ggml_type: B::TYPE, len: n });
    }
    let per_row = n / B::BLCK_SIZE;
    let n_rows = out[0].len();
    for c in 0..4 {
        check_len(ys[0].len(), ys[c].len())?;
        check_len(n_rows, out[c].len())?;
    }
    check_len(per_row * n_rows, xs.len())?;
    B::vec_dot_rows_x4_with(simd, xs, ys, out);
    Ok(())
}

fn vec_dot_tile<B: BlockFormat>(simd: Simd, w: &[u8], tiles: Tiles<'_>, out: &mut [f32]) -> Result<bool, QuantError> {
    let xs = blocks::<B>(w)?;
    let (ty, blocks) = match tiles {
        Tiles::B32 { ty, blocks, .. } => (ty, blocks),
        Tiles::K { blocks, .. } => (GgmlType::Q8_K, blocks),
    };
    if ty != B::VecDotType::TYPE {
        return Ok(false);
    }
    let n = blocks * B::VecDotType::BLCK_SIZE;
    if !n.is_multiple_of(B::BLCK_SIZE) || n == 0 {
        return Err(QuantError::NotWholeBlocks { ggml_type: B::TYPE, len: n });
    }
    let per_row = n / B::BLCK_SIZE;
    let n_rows = xs.len() / per_row;
    check_len(per_row * n_rows, xs.len())?;
    check_len(tiles.groups() * TILE_COLS * n_rows, out.len())?;
    Ok(B::vec_dot_tile_with(simd, xs, tiles, out))
}

fn from_float_act_with<B: BlockFormat>(simd: Simd, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    let ys = blocks_mut::<B>(dst)?;
    check_len(ys.len() * B::BLCK_SIZE, src.len())?;
    B::from_float_act_with(simd, src, ys);
    Ok(())
}

const fn entry<B: BlockFormat>() -> TypeTraits {
    TypeTraits {
        ggml_type: B::TYPE,
        vec_dot_type: <B::VecDotType as BlockFormat>::TYPE,
        to_float: to_float::<B>,
        from_float: from_float::<B>,
        from_float_act: from_float_act::<B>,
        vec_dot: vec_dot::<B>,
        vec_dot_unopt: vec_dot_unopt::<B>,
        vec_dot_with: vec_dot_with::<B>,
        from_float_act_with: from_float_act_with::<B>,
        vec_dot_rows: vec_dot_rows::<B>,
        vec_dot_rows_x4: vec_dot_rows_x4::<B>,
        vec_dot_tile: vec_dot_tile::<B>,
    }
}

static TABLE: [TypeTraits; 15] = [
    entry::<f32>(),
    entry::<F16>(),
    entry::<BF16>(),
    entry::<BlockQ4_0>(),
    entry::<BlockQ4_1>(),
    entry::<BlockQ5_0>(),
    entry::<BlockQ5_1>(),
    entry::<BlockQ8_0>(),
    entry::<BlockQ8_1>(),
    entry::<BlockQ2K>(),
    entry::<BlockQ3K>(),
    entry::<BlockQ4K>(),
    entry::<BlockQ5K>(),
    entry::<BlockQ6K>(),
    entry::<BlockQ8K>(),
];

/// The operations of `t`, or [`QuantError::Unsupported`].
pub fn traits(t: GgmlType) -> Result<&'static TypeTraits, QuantError> {
    TABLE.iter().find(|e| e.ggml_type == t).ok_or(QuantError::Unsupported(t))
}

/// Every type the engine has kernels for.
pub fn supported_types() -> impl Iterator<Item = GgmlType> {
    TABLE.iter().map(|e| e.ggml_type)
}
