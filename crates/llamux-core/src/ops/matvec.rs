//! Matrix–vector products over quantized weights, with activations quantized once to the type
//! the weights pair with (as ggml does).

use crate::platform::{Parallel, SharedMut};
use crate::quant::interleaved::{self, BlockSums, InterleavedTraits};
use crate::quant::tiles::{self, Line, Tiles, TILE_COLS};
use crate::quant::{traits, QuantError, TypeTraits};
use crate::GgmlType;
use alloc::vec::Vec;
use bytemuck::Zeroable;
use core::sync::atomic::{AtomicBool, Ordering};

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
    /// Set when `data` holds the rows interleaved eight by eight ([`interleaved`]).
    interleaved: Option<&'static InterleavedTraits>,
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
        Ok(Matrix { ggml_type, rows, cols, data, row_bytes, traits, interleaved: None })
    }

    /// Views `data` as a `rows × cols` matrix of `ggml_type` with its rows interleaved (as
    /// [`interleave_into`](Self::interleave_into) writes them).
    pub fn new_interleaved(ggml_type: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, QuantError> {
        let plain = Matrix::new(ggml_type, 0, cols, &[])?;
        let layout = interleaved::interleaved(ggml_type).ok_or(QuantError::Unsupported(ggml_type))?;
        let expected = interleaved::interleaved_bytes(ggml_type, rows, cols)
            .ok_or(QuantError::LengthMismatch { expected: usize::MAX, got: data.len() })?;
        if data.len() != expected {
            return Err(QuantError::LengthMismatch { expected, got: data.len() });
        }
        Ok(Matrix { rows, data, interleaved: Some(layout), ..plain })
    }

    /// Bytes of this matrix interleaved, where its type has an interleaved layout and it is not
    /// interleaved already.
    pub fn interleaved_bytes(&self) -> Option<usize> {
        if self.interleaved.is_some() {
            return None;
        }
        interleaved::interleaved_bytes(self.ggml_type, self.rows, self.cols)
    }

    /// Writes this matrix interleaved into `dst` ([`interleaved_bytes`](Self::interleaved_bytes) long).
    pub fn interleave_into(&self, dst: &mut [u8]) -> Result<(), QuantError> {
        let layout = match (self.interleaved, interleaved::interleaved(self.ggml_type)) {
            (None, Some(layout)) => layout,
            _ => return Err(QuantError::Unsupported(self.ggml_type)),
        };
        (layout.interleave)(self.data, self.rows, self.cols, dst)
    }

    /// Whether the rows are interleaved.
    pub fn is_interleaved(&self) -> bool {
        self.interleaved.is_some()
    }

    /// The bytes of row `r` (empty for interleaved rows).
    pub fn row(&self, r: usize) -> &'a [u8] {
        if self.interleaved.is_some() {
            return &[];
        }
        let start = r.saturating_mul(self.row_bytes);
        self.data.get(start..start.saturating_add(self.row_bytes)).unwrap_or(&[])
    }

    /// Dequantizes row `r` into `out` (`cols` floats).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<(), QuantError> {
        match self.interleaved {
            Some(layout) if r < self.rows => (layout.row_to_float)(self.data, self.cols, r, out),
            Some(_) => Err(QuantError::LengthMismatch { expected: self.rows, got: r }),
            None => (self.traits.to_float)(self.row(r), out),
        }
    }

    /// The activation type of this matrix's dot products.
    pub fn input_type(&self) -> GgmlType {
        self.traits.vec_dot_type
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    /// Bytes of the whole matrix.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The matrix's bytes, as laid out.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// `out[r] = row_r · x` for every row, rows split across `par` (for an interleaved matrix, `x`
    /// must carry its block sums: [`QuantizedInput::summarize`]).
    pub fn matvec(&self, par: &dyn Parallel, x: &QuantizedInput, out: &mut [f32]) -> Result<(), QuantError> {
        matvec_fused(par, &mut [Product { w: self, x, out }])
    }

    fn check(&self, x: &QuantizedInput, out: &[f32]) -> Result<(), QuantError> {
        if x.ggml_type != self.input_type() || x.n != self.cols || x.rows == 0 {
            return Err(QuantError::LengthMismatch { expected: self.cols, got: x.n });
        }
        if self.is_interleaved() && x.summed.is_none() {
            // QuantizedInput::summarize was not called.
            return Err(QuantError::LengthMismatch { expected: x.rows * (x.n / 32), got: 0 });
        }
        if out.len() != self.rows * x.rows {
            return Err(QuantError::LengthMismatch { expected: self.rows * x.rows, got: out.len() });
        }
        Ok(())
    }

    /// Rows per task: about [`TASK_BYTES`] of weights, but enough tasks to keep every thread busy.
    fn rows_per_task(&self, n_threads: usize) -> usize {
        let by_bytes = (TASK_BYTES / self.row_bytes.max(1)).max(1);
        let by_threads = self.rows.div_ceil(n_threads.max(1) * 4).max(1);
        // Whole cache lines of output per task, so that two threads never write one line.
        by_bytes.min(by_threads).max(MIN_TASK_ROWS).next_multiple_of(MIN_TASK_ROWS)
    }
}

/// Weight bytes one task reads (cheap to schedule, fine-grained enough to balance two threads).
const TASK_BYTES: usize = 64 * 1024;
/// Fewest rows in a task, and the multiple every task's row count is rounded to: 16 outputs are
/// one 64-byte cache line.
const MIN_TASK_ROWS: usize = 16;
/// Most products in one fused operation (Q, K and V).
pub const MAX_FUSED: usize = 4;

/// One product of a fused operation: `out = w · x` for each row of `x`.
pub struct Product<'a, 'm> {
    /// The weights.
    pub w: &'a Matrix<'m>,
    /// The input (one row per token), quantized to `w`'s input type.
    pub x: &'a QuantizedInput,
    /// `w.rows` outputs per row of `x`, row after row.
    pub out: &'a mut [f32],
}

/// Weight rows one tile-kernel call takes.
const TILE_W_ROWS: usize = 16;
/// Column groups (of [`TILE_COLS`] input rows) one tile-kernel call takes.
const TILE_GROUPS: usize = 4;

/// Weight rows a batched task takes at a time across all its input rows: a few KiB that stay in
/// the L1 cache while every input row passes over them.
const BATCH_TILE_BYTES: usize = 4 * 1024;

/// Runs several matrix–vector products as one parallel operation (one fork/join for all, e.g. the
/// Q, K and V projections, or gate and up), rows split into tasks of a few tens of KiB.
pub fn matvec_fused(par: &dyn Parallel, products: &mut [Product<'_, '_>]) -> Result<(), QuantError> {
    if products.len() > MAX_FUSED {
        return Err(QuantError::LengthMismatch { expected: MAX_FUSED, got: products.len() });
    }
    for p in products.iter() {
        p.w.check(p.x, p.out)?;
    }
    let simd = crate::isa::current();
    let n_threads = par.n_threads();
    // Task ranges per product: products[k] owns tasks first[k]..first[k + 1].
    let mut first = [0usize; MAX_FUSED + 1];
    let mut chunk = [1usize; MAX_FUSED];
    for (k, p) in products.iter().enumerate() {
        chunk[k] = p.w.rows_per_task(n_threads);
        first[k + 1] = first[k] + p.w.rows.div_ceil(chunk[k]);
    }
    let n_tasks = first[products.len()];
    let n_products = products.len();
    let operands: [Option<(&Matrix<'_>, &QuantizedInput)>; MAX_FUSED] = {
        let mut it = products.iter();
        core::array::from_fn(|_| it.next().map(|p| (p.w, p.x)))
    };
    let outs: [Option<SharedMut<'_, f32>>; MAX_FUSED] = {
        let mut it = products.iter_mut();
        core::array::from_fn(|_| it.next().map(|p| SharedMut::new(&mut *p.out)))
    };
    let failed = AtomicBool::new(false);
    par.for_each(n_tasks, &|task| {
        let Some(k) = (0..n_products).find(|&k| task < first[k + 1]) else { return };
        let (Some(Some((w, x))), Some(Some(out))) = (operands.get(k), outs.get(k)) else { return };
        let start = (task - first[k]) * chunk[k];
        let end = (start + chunk[k]).min(w.rows);
        // SAFETY (every use below): task `task` is the only one covering rows start..end of
        // product k, for every input row b; the tiles of rows it takes are disjoint.
        let piece = |b: usize, t0: usize, t1: usize| unsafe { out.slice(b * w.rows + t0, b * w.rows + t1) };
        if let Some(layout) = w.interleaved {
            if interleaved_rows(simd, layout, w, x, start, end, &piece).is_none() {
                failed.store(true, Ordering::Relaxed);
            }
            return;
        }
        // Tile kernels first, where the input is laid out as tiles and the format has them.
        let start = match x.tiles() {
            Some(tiles) => match tile_rows(simd, w, x, tiles, start, end, out) {
                Some(next) => next,
                None => {
                    failed.store(true, Ordering::Relaxed);
                    return;
                }
            },
            None => start,
        };
        // Tiles of weight rows; each tile meets every input row while it is in the cache.
        let tile = if x.rows == 1 { end - start } else { (BATCH_TILE_BYTES / w.row_bytes.max(1)).max(1) };
        for t0 in (start..end).step_by(tile.max(1)) {
            let t1 = (t0 + tile).min(end);
            let rows = w.data.get(t0 * w.row_bytes..t1 * w.row_bytes).unwrap_or(&[]);
            let piece = |b: usize| piece(b, t0, t1);
            // Input rows four at a time (each weight block unpacked once for the four), then
            // the rest one by one.
            let quads = x.rows / 4 * 4;
            for b in (0..quads).step_by(4) {
                let [Some(o0), Some(o1), Some(o2), Some(o3)] = [piece(b), piece(b + 1), piece(b + 2), piece(b + 3)]
                else {
                    return;
                };
                let a = [x.row(b), x.row(b + 1), x.row(b + 2), x.row(b + 3)];
                if (w.traits.vec_dot_rows_x4)(simd, rows, a, [o0, o1, o2, o3]).is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
            }
            for b in quads..x.rows {
                let Some(o) = piece(b) else { return };
                if (w.traits.vec_dot_rows)(simd, rows, x.row(b), o).is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
            }
        }
    });
    if failed.load(Ordering::Relaxed) {
        // Shapes were checked above; a kernel refusing its operands is a bug, reported as such.
        return Err(QuantError::LengthMismatch { expected: 0, got: 0 });
    }
    Ok(())
}

/// Rows `start..end` of `w` against every input row of `x` (laid out as `tiles`), sixteen rows
/// a call, into `out` (`w.rows` per input row); returns the first row left to the other kernels
/// (`end`, or `start` where the format has no tile kernel for this tier), `None` on an error.
/// Not inlined: its output buffer (and the kernels' scratch) stay off the stack of products that
/// take no tiles, as in the kernel module (16 KiB stacks).
#[inline(never)]
fn tile_rows(
    simd: crate::isa::Simd,
    w: &Matrix<'_>,
    x: &QuantizedInput,
    tiles: Tiles<'_>,
    start: usize,
    end: usize,
    out: &SharedMut<'_, f32>,
) -> Option<usize> {
    let mut local = [0.0f32; TILE_W_ROWS * TILE_COLS * TILE_GROUPS];
    let groups = tiles.groups();
    // Fewer groups, more rows per call (the same output buffer): the kernels' prefetching runs
    // ahead through more rows, and their scratch is set up less often.
    let rows_per_call = TILE_W_ROWS * TILE_GROUPS / groups.clamp(1, TILE_GROUPS);
    let mut at = start;
    while at < end {
        let t1 = (at + rows_per_call).min(end);
        let n_rows = t1 - at;
        let rows = w.data.get(at * w.row_bytes..t1 * w.row_bytes).unwrap_or(&[]);
        for g0 in (0..groups).step_by(TILE_GROUPS) {
            let g1 = (g0 + TILE_GROUPS).min(groups);
            let out_g = &mut local[..(g1 - g0) * TILE_COLS * n_rows];
            if !(w.traits.vec_dot_tile)(simd, rows, tiles.groups_range(g0, g1), out_g).ok()? {
                return Some(at);
            }
            for (c, vals) in out_g.chunks_exact(n_rows).enumerate() {
                let b = g0 * TILE_COLS + c;
                if b < x.rows {
                    // SAFETY: the caller's task is the only one covering rows start..end of this
                    // product, for every input row b.
                    let o = unsafe { out.slice(b * w.rows + at, b * w.rows + t1) }?;
                    o.copy_from_slice(vals);
                }
            }
        }
        at = t1;
    }
    Some(end)
}

/// Rows `start..end` (a whole number of interleaved groups, or up to the last row) of the
/// interleaved matrix `w` against every input row, [`interleaved::MAX_TOKENS`] at a time;
/// `None` on an error.
fn interleaved_rows<'o>(
    simd: crate::isa::Simd,
    layout: &InterleavedTraits,
    w: &Matrix<'_>,
    x: &QuantizedInput,
    start: usize,
    end: usize,
    piece: &dyn Fn(usize, usize, usize) -> Option<&'o mut [f32]>,
) -> Option<()> {
    use interleaved::{MAX_TOKENS, ROWS};
    let nb = w.cols / 32;
    let group_bytes = layout.group_bytes(w.cols)?;
    if !start.is_multiple_of(ROWS) {
        return None;
    }
    let rows = w.data.get(start / ROWS * group_bytes..end.div_ceil(ROWS) * group_bytes)?;
    for b0 in (0..x.rows).step_by(MAX_TOKENS) {
        let n = (x.rows - b0).min(MAX_TOKENS);
        let ys: [&[u8]; MAX_TOKENS] = core::array::from_fn(|c| x.row(b0 + c));
        let sums: [&[BlockSums]; MAX_TOKENS] = core::array::from_fn(|c| x.sums(b0 + c));
        let mut outs: [&mut [f32]; MAX_TOKENS] = Default::default();
        for (c, o) in outs.iter_mut().enumerate().take(n) {
            *o = piece(b0 + c, start, end)?;
        }
        (layout.dot)(simd, rows, nb, &ys[..n], &sums[..n], &mut outs[..n]).ok()?;
    }
    Some(())
}

/// `outs[i] = mats[i] · x` for up to three matrices sharing one input (one row of
/// `mats[0].cols` elements per token: a vector, or a batch), as one parallel operation: `x` is
/// quantized once per distinct input type (into `bufs`).
pub fn project<const N: usize>(
    par: &dyn Parallel,
    x: &[f32],
    bufs: &mut [QuantizedInput; 3],
    mats: [&Matrix<'_>; N],
    outs: [&mut [f32]; N],
) -> Result<(), QuantError> {
    const { assert!(N >= 1 && N <= 3) };
    // x holds one row of mats[0].cols elements per token.
    let n = mats[0].cols;
    // slot[i]: the buffer holding x in mats[i]'s input type.
    let mut slot = [0usize; N];
    let mut used = 0usize;
    for i in 0..N {
        let ty = mats[i].input_type();
        match (0..used).find(|&j| bufs[j].ggml_type == ty) {
            Some(j) => slot[i] = j,
            None => {
                let stored_rows = mats.iter().any(|m| m.input_type() == ty && !m.is_interleaved());
                bufs[used].quantize_rows_for(x, n, ty, stored_rows)?;
                slot[i] = used;
                used += 1;
            }
        }
    }
    // Interleaved matrices also read the activations' block sums.
    for (m, &j) in mats.iter().zip(&slot) {
        if m.is_interleaved() {
            bufs[j].summarize()?;
        }
    }
    let bufs: &[QuantizedInput; 3] = bufs;
    let mut i = 0;
    let mut list = outs.map(|out| {
        let p = Product { w: mats[i], x: &bufs[slot[i]], out };
        i += 1;
        p
    });
    matvec_fused(par, &mut list)
}

/// Activations quantized to a weight type's [`input_type`](Matrix::input_type): one vector, or
/// the rows of a batch (one per token), in a buffer allocated once and reused.
pub struct QuantizedInput {
    buf: Vec<u32>,
    /// The rows again as tiles ([`crate::quant::tiles`]), for batches the tile kernels take.
    tiles: Vec<Line>,
    ggml_type: GgmlType,
    /// Elements per row.
    n: usize,
    /// Rows.
    rows: usize,
    /// Bytes per row.
    row_len: usize,
    /// Blocks per row in `tiles`, when they hold this input.
    tiled: Option<usize>,
    /// Every block's [`BlockSums`] (`Q8_0`/`Q8_1` inputs), for interleaved weights.
    sums: Vec<BlockSums>,
    /// Blocks per row in `sums`, when they hold this input.
    summed: Option<usize>,
}

/// Fewest rows laid out as tiles: below, the four-row kernels do as well.
const MIN_TILE_ROWS: usize = 8;

impl QuantizedInput {
    /// A buffer able to hold up to `max_rows` rows of up to `max_n` elements of any activation
    /// type, or the allocation failure.
    pub fn try_new(max_rows: usize, max_n: usize) -> Result<Self, alloc::collections::TryReserveError> {
        let max_elements = max_rows.saturating_mul(max_n);
        // f32 is the widest activation encoding (4 bytes per element), Q8_1 the widest quantized
        // one; a few words spare for rounding to whole blocks.
        let buf = crate::buffers::filled(max_elements.saturating_add(64), 0)?;
        // No tile buffer where no tile kernel would read it (small batches, scalar tier, small-stack).
        let tiled = max_rows >= MIN_TILE_ROWS && tiles::kernels(crate::isa::current());
        let lines = if tiled { tiles::lines_for(max_rows, max_n) } else { 0 };
        let tiles = crate::buffers::filled(lines, Line::zeroed())?;
        let sums = crate::buffers::filled(max_elements / 32 + 1, BlockSums::default())?;
        Ok(QuantizedInput {
            buf,
            tiles,
            ggml_type: GgmlType::F32,
            n: 0,
            rows: 0,
            row_len: 0,
            tiled: None,
            sums,
            summed: None,
        })
    }

    /// Quantizes the vector `x` to `ggml_type`.
    pub fn quantize(&mut self, x: &[f32], ggml_type: GgmlType) -> Result<(), QuantError> {
        self.quantize_rows(x, x.len(), ggml_type)
    }

    /// Quantizes `x`, rows of `n` elements each, to `ggml_type` (each row on its own, as the
    /// single-vector path does).
    pub fn quantize_rows(&mut self, x: &[f32], n: usize, ggml_type: GgmlType) -> Result<(), QuantError> {
        self.quantize_rows_for(x, n, ggml_type, true)
    }

    /// [`quantize_rows`](Self::quantize_rows), laying the rows out as tiles too only if
    /// `stored_rows` (a matrix in the stored layout will read them; interleaved ones never do).
    fn quantize_rows_for(
        &mut self,
        x: &[f32],
        n: usize,
        ggml_type: GgmlType,
        stored_rows: bool,
    ) -> Result<(), QuantError> {
        if n == 0 || !x.len().is_multiple_of(n) {
            return Err(QuantError::LengthMismatch { expected: n, got: x.len() });
        }
        let row_len = ggml_type
            .bytes_for(n as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(QuantError::NotWholeBlocks { ggml_type, len: n })?;
        let rows = x.len() / n;
        let len = row_len.checked_mul(rows).ok_or(QuantError::LengthMismatch { expected: usize::MAX, got: 0 })?;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut self.buf);
        let have = bytes.len();
        let dst = bytes.get_mut(..len).ok_or(QuantError::LengthMismatch { expected: len, got: have })?;
        let from_float = traits(ggml_type)?.from_float_act;
        for (xr, d) in x.chunks_exact(n).zip(dst.chunks_exact_mut(row_len)) {
            from_float(xr, d)?;
        }
        self.ggml_type = ggml_type;
        (self.n, self.rows, self.row_len) = (n, rows, row_len);
        self.tiled = None;
        self.summed = None;
        let fits = tiles::lines_for(rows, n) <= self.tiles.len();
        if stored_rows
            && rows >= MIN_TILE_ROWS
            && fits
            && tiles::tiled_type(ggml_type)
            && tiles::kernels(crate::isa::current())
        {
            let bytes: &[u8] = bytemuck::cast_slice(&self.buf);
            self.tiled = Some(tiles::build(ggml_type, bytes, rows, row_len, &mut self.tiles)?);
        }
        Ok(())
    }

    /// The rows as tiles, when they are laid out so.
    fn tiles(&self) -> Option<Tiles<'_>> {
        let blocks = self.tiled?;
        let need = self.rows.div_ceil(TILE_COLS) * blocks;
        Some(match self.ggml_type {
            GgmlType::Q8_K => Tiles::K {
                tiles: bytemuck::try_cast_slice(self.tiles.get(..need * 73)?).ok()?,
                blocks,
                tokens: self.rows,
            },
            ty => Tiles::B32 {
                ty,
                tiles: bytemuck::try_cast_slice(self.tiles.get(..need * 11)?).ok()?,
                blocks,
                tokens: self.rows,
            },
        })
    }

    /// Works out the block sums interleaved matrices read with these activations (`Q8_0`/`Q8_1`;
    /// once per quantization, whatever the number of matrices).
    pub fn summarize(&mut self) -> Result<(), QuantError> {
        if self.summed.is_some() {
            return Ok(());
        }
        let nb = self.n / 32;
        let (len, blocks) = (self.rows * self.row_len, self.rows * nb);
        let bytes: &[u8] = bytemuck::cast_slice(&self.buf);
        let src = bytes.get(..len).ok_or(QuantError::LengthMismatch { expected: len, got: bytes.len() })?;
        let have = self.sums.len();
        let dst = self.sums.get_mut(..blocks).ok_or(QuantError::LengthMismatch { expected: blocks, got: have })?;
        interleaved::summarize(self.ggml_type, src, dst)?;
        self.summed = Some(nb);
        Ok(())
    }

    /// Row `b`'s block sums (empty where they were not worked out).
    fn sums(&self, b: usize) -> &[BlockSums] {
        let Some(nb) = self.summed else { return &[] };
        self.sums.get(b * nb..(b + 1) * nb).unwrap_or(&[])
    }

    /// Row `b`'s bytes.
    fn row(&self, b: usize) -> &[u8] {
        let bytes: &[u8] = bytemuck::cast_slice(&self.buf);
        bytes.get(b * self.row_len..(b + 1) * self.row_len).unwrap_or(&[])
    }
}
