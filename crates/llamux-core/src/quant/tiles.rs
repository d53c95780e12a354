//! A batch's quantized activations laid out for the tile kernels (matrix × matrix products):
//! [`TILE_COLS`] tokens side by side, so that one vector holds the same four quants of sixteen
//! tokens and one weight's four quants, broadcast, meet all sixteen in one `vpdpbusd`, with no
//! horizontal sums. The rows are laid out once per product input and read by every weight row.
//!
//! Columns past the batch's last token are zero (quants, scales, sums), so their results are
//! zero and dropped.

use super::{BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlType, QuantError, QK_K};
use bytemuck::{Pod, Zeroable};

/// Tokens in one tile column group (one 512-bit vector of `i32` lanes).
pub const TILE_COLS: usize = 16;

/// One 32-element block (`Q8_0`/`Q8_1`) of [`TILE_COLS`] tokens.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct Cols32 {
    /// `qs[j][c]`: quants `4j..4j + 4` of token `c`, as one little-endian word.
    pub qs: [[i32; TILE_COLS]; 8],
    /// Each token's scale.
    pub d: [f32; TILE_COLS],
    /// Each token's `s` (`Q8_1`: `d · Σ qs` as stored); 0 for `Q8_0`.
    pub s: [f32; TILE_COLS],
    /// Each token's `Σ qs`.
    pub sum: [i32; TILE_COLS],
}
const _: () = assert!(core::mem::size_of::<Cols32>() == 11 * 64);

/// One 256-element super-block (`Q8_K`) of [`TILE_COLS`] tokens.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct ColsK {
    /// `qs[j][c]`: quants `4j..4j + 4` of token `c`, as one little-endian word.
    pub qs: [[i32; TILE_COLS]; QK_K / 4],
    /// Each token's scale.
    pub d: [f32; TILE_COLS],
    /// `bsums[k][c]`: sums `2k` (low half) and `2k + 1` (high half) of token `c`'s groups of 16.
    pub bsums: [[i32; TILE_COLS]; 8],
}
const _: () = assert!(core::mem::size_of::<ColsK>() == 73 * 64);

/// A cache line: the unit tiles are stored in (both tile types are whole lines, 64-aligned).
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
pub(crate) struct Line([u32; 16]);

/// A batch's activations as tiles: `groups` column groups of `blocks` blocks each, group
/// after group, holding `tokens` tokens (the last group's lanes past them are zero).
#[derive(Clone, Copy)]
pub enum Tiles<'a> {
    /// `Q8_0` or `Q8_1` activations.
    B32 {
        /// `Q8_0` or `Q8_1`.
        ty: GgmlType,
        /// Group after group, block after block.
        tiles: &'a [Cols32],
        /// Blocks per token.
        blocks: usize,
        /// Tokens.
        tokens: usize,
    },
    /// `Q8_K` activations.
    K {
        /// Group after group, block after block.
        tiles: &'a [ColsK],
        /// Blocks per token.
        blocks: usize,
        /// Tokens.
        tokens: usize,
    },
}

impl Tiles<'_> {
    /// Column groups.
    pub fn groups(&self) -> usize {
        match *self {
            Tiles::B32 { tiles, blocks, .. } => tiles.len().checked_div(blocks).unwrap_or(0),
            Tiles::K { tiles, blocks, .. } => tiles.len().checked_div(blocks).unwrap_or(0),
        }
    }

    /// Groups `from..to` only.
    pub fn groups_range(self, from: usize, to: usize) -> Self {
        let keep = |tokens: usize| tokens.min(to * TILE_COLS).saturating_sub(from * TILE_COLS);
        match self {
            Tiles::B32 { ty, tiles, blocks, tokens } => Tiles::B32 {
                ty,
                tiles: tiles.get(from * blocks..to * blocks).unwrap_or(&[]),
                blocks,
                tokens: keep(tokens),
            },
            Tiles::K { tiles, blocks, tokens } => {
                Tiles::K { tiles: tiles.get(from * blocks..to * blocks).unwrap_or(&[]), blocks, tokens: keep(tokens) }
            }
        }
    }
}

/// Lines of tiles for `rows` tokens of `n` elements of any tiled type.
pub(crate) fn lines_for(rows: usize, n: usize) -> usize {
    // Cols32 takes more lines per element than ColsK (88 vs 73 per 256).
    rows.div_ceil(TILE_COLS).saturating_mul(n.div_ceil(32)).saturating_mul(11)
}

/// Whether `simd`'s tier has tile kernels (for some formats; the others fall back).
pub(crate) fn kernels(simd: super::Simd) -> bool {
    // Their scratch does not fit beside a kernel thread's call chain in 16 KiB.
    !cfg!(feature = "small-stack") && matches!(simd.isa(), crate::isa::Isa::Avx512 | crate::isa::Isa::Avx2)
}

/// Whether activations of `ty` can be laid out as tiles.
pub(crate) fn tiled_type(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q8_0 | GgmlType::Q8_1 | GgmlType::Q8_K)
}

/// Lays out `rows` tokens of `row_len` bytes each (`bytes`, blocks of `ty`) as tiles in `dst`;
/// returns the blocks per token.
pub(crate) fn build(
    ty: GgmlType,
    bytes: &[u8],
    rows: usize,
    row_len: usize,
    dst: &mut [Line],
) -> Result<usize, QuantError> {
    let tokens = Tokens { bytes, rows, row_len };
    match ty {
        GgmlType::Q8_0 => tokens.fill::<Cols32>(dst, 34, |t, c, blk| {
            let b: &BlockQ8_0 = bytemuck::from_bytes(blk);
            t.put(c, b.d.to_f32(), 0.0, &b.qs);
        }),
        GgmlType::Q8_1 => tokens.fill::<Cols32>(dst, 36, |t, c, blk| {
            let b: &BlockQ8_1 = bytemuck::from_bytes(blk);
            t.put(c, b.d.to_f32(), b.s.to_f32(), &b.qs);
        }),
        GgmlType::Q8_K => tokens.fill::<ColsK>(dst, core::mem::size_of::<BlockQ8K>(), |t, c, blk| {
            let b: BlockQ8K = bytemuck::pod_read_unaligned(blk);
            t.d[c] = b.d;
            put_words(&mut t.qs, c, &b.qs);
            for (k, pair) in b.bsums.as_chunks::<2>().0.iter().enumerate() {
                t.bsums[k][c] = i32::from(pair[0] as u16) | (i32::from(pair[1]) << 16);
            }
        }),
        _ => Err(QuantError::Unsupported(ty)),
    }
}

/// Quants `4j..4j + 4` of `qs` into word `j` of token `c`.
fn put_words(words: &mut [[i32; TILE_COLS]], c: usize, qs: &[i8]) {
    for (w, q4) in words.iter_mut().zip(qs.as_chunks::<4>().0) {
        w[c] = i32::from_le_bytes(q4.map(|q| q as u8));
    }
}

impl Cols32 {
    /// Token `c`'s block: scale, `s` and quants (their sum with them).
    fn put(&mut self, c: usize, d: f32, s: f32, qs: &[i8; 32]) {
        self.d[c] = d;
        self.s[c] = s;
        self.sum[c] = qs.iter().map(|&q| i32::from(q)).sum();
        put_words(&mut self.qs, c, qs);
    }
}

/// A batch's quantized tokens, row after row.
struct Tokens<'a> {
    bytes: &'a [u8],
    rows: usize,
    row_len: usize,
}

impl Tokens<'_> {
    /// Fills tiles of type `T` (whole lines) in `dst` with every token's blocks of `block_len`
    /// bytes (`put(tile, token in group, block)`), padding zeroed; returns the blocks per token.
    fn fill<T: Pod>(
        &self,
        dst: &mut [Line],
        block_len: usize,
        put: impl Fn(&mut T, usize, &[u8]),
    ) -> Result<usize, QuantError> {
        let blocks = self.row_len / block_len;
        let need = self.rows.div_ceil(TILE_COLS) * blocks * (core::mem::size_of::<T>() / 64);
        let short = QuantError::LengthMismatch { expected: need, got: dst.len() };
        let tiles: &mut [T] =
            bytemuck::try_cast_slice_mut(dst.get_mut(..need).ok_or(short.clone())?).map_err(|_| short)?;
        for (g, group) in tiles.chunks_exact_mut(blocks.max(1)).enumerate() {
            group.iter_mut().for_each(|t| *t = T::zeroed());
            for c in 0..TILE_COLS {
                let at = g * TILE_COLS + c;
                let Some(row) = self.bytes.get(at * self.row_len..(at + 1) * self.row_len).filter(|_| at < self.rows)
                else {
                    break;
                };
                for (t, blk) in group.iter_mut().zip(row.chunks_exact(block_len)) {
                    put(t, c, blk);
                }
            }
        }
        Ok(blocks)
    }
}
