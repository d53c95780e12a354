//! Row-interleaved weights for the 32-element formats (ggml's CPU "repack" buffers, ik_llama.cpp's
//! `_R8` types): block `j` of eight consecutive rows stored together, their eight scales side by
//! side and four quants of every row in each 32-byte word. One vector load then holds four quants
//! of eight rows; a word of four activations, broadcast, meets them in one `vpdpbusd` (or
//! `maddubs`), and a block's eight row sums come out in eight lanes — no horizontal sums, and the
//! activations' loads shared by eight rows.
//!
//! Layout of an interleaved block (`R8*`): `d` (and `m`) the eight rows' scales (minimums); `qs`
//! word `t` (32 bytes) holds bytes `4t..4t + 4` of each row's quants, row `r` at `4r`. For the
//! 4- and 5-bit formats a byte holds element `4t + b` in its low nibble and `16 + 4t + b` in its
//! high one (the original blocks' byte order); for `Q5_*`, byte `4r + b` of `qh` carries the
//! fifth bits of row `r`: bit `t` that of element `4t + b`, bit `4 + t` that of `16 + 4t + b`.
//! `Q8_0`'s quants are stored offset by 128 (unsigned), its zero point then 128. Rows past the
//! matrix's last (it is padded to whole groups of eight) are zeros.
//!
//! Every result is a sum over blocks in order, one fused multiply-add per block and row:
//! `acc = fma(Σ q·y − zero·Σ y, d_x·d_y, acc)` (then `acc = fma(m_x, s_y, acc)` for the formats
//! with a minimum) — the scalar twin here and every SIMD kernel compute exactly this, so they
//! agree bit for bit, and a token's result does not depend on the batch it is in.

use super::{
    BlockFormat, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlType, QuantError, F16,
};
use crate::isa::Simd;
use bytemuck::{Pod, Zeroable};

mod q4_k;
pub use q4_k::{dot_scalar as dot_r8q4k_scalar, R8Q4K};

/// Rows interleaved in one block.
pub const ROWS: usize = 8;

/// What the interleaved kernels need of an activation block, worked out once per activation
/// row (by [`summarize`]) rather than once per weight row: its scale, its `s` (`Q8_1`; `Q8_K`'s
/// 32 quants: the scale times their sum), the exact sum of its quants (for the weights' zero
/// points) — each in eight lanes — and its quants spread to vectors, each word of four quants
/// eight times over. An AVX2 kernel reads all of it with plain vector loads, where it would
/// otherwise broadcast each word and scale again for every group of eight weight rows (AMD's
/// cores run a broadcast on the vector pipes the multiplies need).
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
#[repr(C, align(32))]
pub struct BlockSums {
    words: [[u32; ROWS]; 8],
    d: [f32; ROWS],
    s: [f32; ROWS],
    sum: [i32; ROWS],
}

impl BlockSums {
    /// The sums of a block of quants `qs` with scale `d` and offset `s`.
    pub fn new(qs: &[i8; 32], d: f32, s: f32) -> Self {
        let sum = qs.iter().map(|&q| i32::from(q)).sum();
        let words = core::array::from_fn(|k| {
            let w =
                u32::from_le_bytes([qs[4 * k] as u8, qs[4 * k + 1] as u8, qs[4 * k + 2] as u8, qs[4 * k + 3] as u8]);
            [w; ROWS]
        });
        BlockSums { words, d: [d; ROWS], s: [s; ROWS], sum: [sum; ROWS] }
    }
    /// The block's scale.
    pub fn d(&self) -> f32 {
        self.d[0]
    }
    /// `Q8_1`'s `s` (`d` times the quants' sum, as stored; for `Q8_K`, worked out), else 0.
    pub fn s(&self) -> f32 {
        self.s[0]
    }
    /// `Σ qs`.
    pub fn sum(&self) -> i32 {
        self.sum[0]
    }
    /// Word `k` (quants `4k..4k + 4`) in each of eight lanes.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn word(&self, k: usize) -> &[u32; ROWS] {
        &self.words[k % 8]
    }
    /// The scale in eight lanes.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn d8(&self) -> &[f32; ROWS] {
        &self.d
    }
    /// `s` in eight lanes.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn s8(&self) -> &[f32; ROWS] {
        &self.s
    }
    /// `Σ qs` in eight lanes.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn sum8(&self) -> &[i32; ROWS] {
        &self.sum
    }
}

/// Activation blocks of the interleaved formats (`Q8_0`, `Q8_1`).
pub trait ActBlock: BlockFormat {
    /// The 32 quants.
    fn quants(&self) -> &[i8; 32];
    /// The block's [`BlockSums`].
    fn sums(&self) -> BlockSums {
        BlockSums::new(self.quants(), self.scale().to_f32(), self.offset().map_or(0.0, F16::to_f32))
    }
    /// The scale.
    fn scale(&self) -> F16;
    /// `Q8_1`'s `s`.
    fn offset(&self) -> Option<F16>;
}

impl ActBlock for BlockQ8_0 {
    fn quants(&self) -> &[i8; 32] {
        &self.qs
    }
    fn scale(&self) -> F16 {
        self.d
    }
    fn offset(&self) -> Option<F16> {
        None
    }
}

impl ActBlock for BlockQ8_1 {
    fn quants(&self) -> &[i8; 32] {
        &self.qs
    }
    fn scale(&self) -> F16 {
        self.d
    }
    fn offset(&self) -> Option<F16> {
        Some(self.s)
    }
}

/// The [`BlockSums`] of activation blocks of type `act` in `src`, into `dst`: one per block of
/// `Q8_0` or `Q8_1`; one per 32 quants of `Q8_K` (its `d`, `s` = `d` times their sum, and the sum).
pub fn summarize(act: GgmlType, src: &[u8], dst: &mut [BlockSums]) -> Result<(), QuantError> {
    fn go<A: ActBlock>(src: &[u8], dst: &mut [BlockSums]) -> Result<(), QuantError> {
        let ys: &[A] = bytemuck::try_cast_slice(src)
            .map_err(|_| QuantError::NotWholeBlocks { ggml_type: A::TYPE, len: src.len() })?;
        if ys.len() != dst.len() {
            return Err(QuantError::LengthMismatch { expected: ys.len(), got: dst.len() });
        }
        for (y, s) in ys.iter().zip(dst) {
            *s = y.sums();
        }
        Ok(())
    }
    fn go_k(src: &[u8], dst: &mut [BlockSums]) -> Result<(), QuantError> {
        let ys: &[BlockQ8K] = bytemuck::try_cast_slice(src)
            .map_err(|_| QuantError::NotWholeBlocks { ggml_type: GgmlType::Q8_K, len: src.len() })?;
        if ys.len() * 8 != dst.len() {
            return Err(QuantError::LengthMismatch { expected: ys.len() * 8, got: dst.len() });
        }
        for (y, s) in ys.iter().zip(dst.chunks_exact_mut(8)) {
            for (q, s) in y.qs.as_chunks::<32>().0.iter().zip(s) {
                let sum: i32 = q.iter().map(|&q| i32::from(q)).sum();
                *s = BlockSums::new(q, y.d, y.d * sum as f32);
            }
        }
        Ok(())
    }
    match act {
        GgmlType::Q8_0 => go::<BlockQ8_0>(src, dst),
        GgmlType::Q8_1 => go::<BlockQ8_1>(src, dst),
        GgmlType::Q8_K => go_k(src, dst),
        t => Err(QuantError::Unsupported(t)),
    }
}

/// A 32-element format that can be interleaved: the quants of a block as unsigned bytes and back.
pub trait Interleave: BlockFormat<VecDotType: ActBlock> {
    /// Eight rows' block.
    type R8: Pod + Send + Sync;
    /// The zero point of [`quant`](Self::quant) (0 for the formats with a minimum).
    const ZERO: i32;
    /// Element `e`'s quant, unsigned (`0..2^bits`).
    fn quant(&self, e: usize) -> u8;
    /// The scale and the minimum (zero for the formats without one).
    fn scale_min(&self) -> (F16, F16);
    /// The block with these scale, minimum and quants.
    fn from_parts(d: F16, m: F16, q: &[u8; 32]) -> Self;
    /// Interleaves eight rows' blocks.
    fn pack(rows: &[Self; ROWS]) -> Self::R8;
    /// Row `r`'s block of `x`.
    fn unpack(x: &Self::R8, r: usize) -> Self;
    /// `out[c][r]` = the interleaved rows `xs` (groups of eight, `nb` blocks each) against the
    /// activations `ys[c]` (with their sums), with the kernels of `simd`; writes the first
    /// `out[c].len()` rows.
    fn dot_r8_with(
        simd: Simd,
        xs: &[Self::R8],
        nb: usize,
        ys: &[&[Self::VecDotType]],
        sums: &[&[BlockSums]],
        out: &mut [&mut [f32]],
    ) {
        let _ = simd;
        dot_r8_scalar::<Self>(xs, nb, ys, sums, out)
    }
}

/// The scalar twin of every interleaved kernel (the formula of the module's documentation).
pub fn dot_r8_scalar<B: Interleave>(
    xs: &[B::R8],
    nb: usize,
    ys: &[&[B::VecDotType]],
    sums: &[&[BlockSums]],
    out: &mut [&mut [f32]],
) {
    if nb == 0 {
        return;
    }
    for (g, group) in xs.chunks_exact(nb).enumerate() {
        for ((y, s), o) in ys.iter().zip(sums).zip(out.iter_mut()) {
            let mut acc = [0.0f32; ROWS];
            for ((x, y), s) in group.iter().zip(y.iter()).zip(s.iter()) {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = B::unpack(x, r);
                    let mut isum = 0i32;
                    for (e, &q) in y.quants().iter().enumerate() {
                        isum += i32::from(row.quant(e)) * i32::from(q);
                    }
                    isum -= B::ZERO * s.sum();
                    let (d, m) = row.scale_min();
                    *acc = libm::fmaf(isum as f32, d.to_f32() * s.d(), *acc);
                    if B::ZERO == 0 {
                        *acc = libm::fmaf(m.to_f32(), s.s(), *acc);
                    }
                }
            }
            for (r, a) in acc.into_iter().enumerate() {
                if let Some(o) = o.get_mut(g * ROWS + r) {
                    *o = a;
                }
            }
        }
    }
}

/// Interleaved blocks of the 4-bit formats.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct R8Q4_0 {
    /// The rows' scales.
    pub d: [F16; ROWS],
    /// Quants, four words.
    pub qs: [u8; 128],
}

/// Interleaved `Q4_1` blocks.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct R8Q4_1 {
    /// The rows' scales.
    pub d: [F16; ROWS],
    /// The rows' minimums.
    pub m: [F16; ROWS],
    /// Quants, four words.
    pub qs: [u8; 128],
}

/// Interleaved `Q5_0` blocks.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct R8Q5_0 {
    /// The rows' scales.
    pub d: [F16; ROWS],
    /// Fifth bits, a word.
    pub qh: [u8; 32],
    /// Low nibbles, four words.
    pub qs: [u8; 128],
}

/// Interleaved `Q5_1` blocks.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct R8Q5_1 {
    /// The rows' scales.
    pub d: [F16; ROWS],
    /// The rows' minimums.
    pub m: [F16; ROWS],
    /// Fifth bits, a word.
    pub qh: [u8; 32],
    /// Low nibbles, four words.
    pub qs: [u8; 128],
}

/// Interleaved `Q8_0` blocks (quants offset by 128).
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct R8Q8_0 {
    /// The rows' scales.
    pub d: [F16; ROWS],
    /// Quants plus 128, eight words.
    pub qs: [u8; 256],
}

const _: () = assert!(core::mem::size_of::<R8Q4_0>() == ROWS * core::mem::size_of::<BlockQ4_0>());
const _: () = assert!(core::mem::size_of::<R8Q4_1>() == ROWS * core::mem::size_of::<BlockQ4_1>());
const _: () = assert!(core::mem::size_of::<R8Q5_0>() == ROWS * core::mem::size_of::<BlockQ5_0>());
const _: () = assert!(core::mem::size_of::<R8Q5_1>() == ROWS * core::mem::size_of::<BlockQ5_1>());
const _: () = assert!(core::mem::size_of::<R8Q8_0>() == ROWS * core::mem::size_of::<BlockQ8_0>());

/// Where element `e` of row `r` sits in a 4/5-bit interleaved block: the `qs` byte, whether in
/// its high nibble, and the `qh` byte and bit of its fifth bit.
fn nibble_at(r: usize, e: usize) -> (usize, bool, usize, usize) {
    let (hi, i) = (e >= 16, e % 16);
    let (t, b) = (i / 4, i % 4);
    (32 * t + 4 * r + b, hi, 4 * r + b, if hi { 4 + t } else { t })
}

/// The nibble quants of row `r` of `qs`/`qh` (fifth bits where given).
fn nibbles_of(qs: &[u8; 128], qh: Option<&[u8; 32]>, r: usize) -> [u8; 32] {
    core::array::from_fn(|e| {
        let (at, hi, hb, bit) = nibble_at(r, e);
        let byte = qs[at];
        let q = if hi { byte >> 4 } else { byte & 0x0F };
        q | qh.map_or(0, |qh| ((qh[hb] >> bit) & 1) << 4)
    })
}

/// Writes row `r`'s quants `q` into `qs`/`qh`.
fn put_nibbles(qs: &mut [u8; 128], mut qh: Option<&mut [u8; 32]>, r: usize, q: &[u8; 32]) {
    for (e, &q) in q.iter().enumerate() {
        let (at, hi, hb, bit) = nibble_at(r, e);
        qs[at] |= if hi { (q & 0x0F) << 4 } else { q & 0x0F };
        if let Some(qh) = qh.as_deref_mut() {
            qh[hb] |= ((q >> 4) & 1) << bit;
        }
    }
}

/// The scales of eight blocks.
fn scales<B: Interleave>(rows: &[B; ROWS]) -> ([F16; ROWS], [F16; ROWS]) {
    (core::array::from_fn(|r| rows[r].scale_min().0), core::array::from_fn(|r| rows[r].scale_min().1))
}

macro_rules! nibble_format {
    ($B:ty, $R:ident, zero: $zero:expr, min: $min:tt, qh: $qh:tt) => {
        impl Interleave for $B {
            type R8 = $R;
            const ZERO: i32 = $zero;
            fn quant(&self, e: usize) -> u8 {
                let byte = self.qs[e % 16];
                let q = if e >= 16 { byte >> 4 } else { byte & 0x0F };
                nibble_format!(@hbit $qh, self, q, e)
            }
            fn scale_min(&self) -> (F16, F16) {
                nibble_format!(@min $min, self)
            }
            fn from_parts(d: F16, m: F16, q: &[u8; 32]) -> Self {
                let _ = m;
                let mut x = <$B as Zeroable>::zeroed();
                x.d = d;
                nibble_format!(@setmin $min, x, m);
                let mut qh = 0u32;
                for j in 0..16 {
                    x.qs[j] = (q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4);
                    qh |= (u32::from(q[j] >> 4) & 1) << j | (u32::from(q[j + 16] >> 4) & 1) << (j + 16);
                }
                nibble_format!(@setqh $qh, x, qh);
                x
            }
            fn pack(rows: &[Self; ROWS]) -> $R {
                let mut x = <$R as Zeroable>::zeroed();
                let (d, m) = scales(rows);
                let _ = m;
                x.d = d;
                nibble_format!(@setmin $min, x, m);
                for (r, row) in rows.iter().enumerate() {
                    let q: [u8; 32] = core::array::from_fn(|e| row.quant(e));
                    put_nibbles(&mut x.qs, nibble_format!(@qhmut $qh, x), r, &q);
                }
                x
            }
            fn unpack(x: &$R, r: usize) -> Self {
                let r = r % ROWS;
                let q = nibbles_of(&x.qs, nibble_format!(@qhref $qh, x), r);
                Self::from_parts(x.d[r], nibble_format!(@getmin $min, x, r), &q)
            }
            fn dot_r8_with(simd: Simd, xs: &[$R], nb: usize, ys: &[&[Self::VecDotType]], sums: &[&[BlockSums]], out: &mut [&mut [f32]]) {
                interleaved_dispatch!($R, simd, xs, nb, ys, sums, out)
            }
        }
    };
    (@hbit yes, $s:ident, $q:ident, $e:ident) => { $q | ((((u32::from_le_bytes($s.qh) >> $e) & 1) as u8) << 4) };
    (@hbit no, $s:ident, $q:ident, $e:ident) => { $q };
    (@min yes, $s:ident) => { ($s.d, $s.m) };
    (@min no, $s:ident) => { ($s.d, F16::ZERO) };
    (@setmin yes, $x:ident, $m:ident) => { $x.m = $m; };
    (@setmin no, $x:ident, $m:ident) => {};
    (@getmin yes, $x:ident, $r:ident) => { $x.m[$r] };
    (@getmin no, $x:ident, $r:ident) => { F16::ZERO };
    (@setqh yes, $x:ident, $qh:ident) => { $x.qh = $qh.to_le_bytes(); };
    (@setqh no, $x:ident, $qh:ident) => { let _ = $qh; };
    (@qhmut yes, $x:ident) => { Some(&mut $x.qh) };
    (@qhmut no, $x:ident) => { None };
    (@qhref yes, $x:ident) => { Some(&$x.qh) };
    (@qhref no, $x:ident) => { None };
}

/// The kernel of `simd`'s tier for interleaved blocks `$R`, else the scalar twin.
macro_rules! interleaved_dispatch {
    ($R:ident, $simd:ident, $xs:ident, $nb:ident, $ys:ident, $sums:ident, $out:ident) => {{
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        {
            use crate::isa::Isa;
            match $simd.isa() {
                // SAFETY (each arm): a `Simd` of a tier exists only when the CPU runs that tier.
                Isa::Avx512 => return unsafe { super::x86::interleaved::$R::dot_avx512($xs, $nb, $ys, $sums, $out) },
                Isa::Avx2 => return unsafe { super::x86::interleaved::$R::dot_avx2($xs, $nb, $ys, $sums, $out) },
                _ => {}
            }
        }
        let _ = $simd;
        dot_r8_scalar::<Self>($xs, $nb, $ys, $sums, $out)
    }};
}

nibble_format!(BlockQ4_0, R8Q4_0, zero: 8, min: no, qh: no);
nibble_format!(BlockQ4_1, R8Q4_1, zero: 0, min: yes, qh: no);
nibble_format!(BlockQ5_0, R8Q5_0, zero: 16, min: no, qh: yes);
nibble_format!(BlockQ5_1, R8Q5_1, zero: 0, min: yes, qh: yes);

impl Interleave for BlockQ8_0 {
    type R8 = R8Q8_0;
    const ZERO: i32 = 128;
    fn quant(&self, e: usize) -> u8 {
        (self.qs[e % 32] as u8) ^ 0x80
    }
    fn scale_min(&self) -> (F16, F16) {
        (self.d, F16::ZERO)
    }
    fn from_parts(d: F16, _m: F16, q: &[u8; 32]) -> Self {
        BlockQ8_0 { d, qs: q.map(|q| (q ^ 0x80) as i8) }
    }
    fn pack(rows: &[Self; ROWS]) -> R8Q8_0 {
        let mut x = R8Q8_0::zeroed();
        x.d = scales(rows).0;
        for (r, row) in rows.iter().enumerate() {
            for e in 0..32 {
                x.qs[32 * (e / 4) + 4 * r + e % 4] = row.quant(e);
            }
        }
        x
    }
    fn unpack(x: &R8Q8_0, r: usize) -> Self {
        let r = r % ROWS;
        let q: [u8; 32] = core::array::from_fn(|e| x.qs[32 * (e / 4) + 4 * r + e % 4]);
        Self::from_parts(x.d[r], F16::ZERO, &q)
    }
    fn dot_r8_with(
        simd: Simd,
        xs: &[R8Q8_0],
        nb: usize,
        ys: &[&[BlockQ8_0]],
        sums: &[&[BlockSums]],
        out: &mut [&mut [f32]],
    ) {
        interleaved_dispatch!(R8Q8_0, simd, xs, nb, ys, sums, out)
    }
}

/// Whether `simd`'s tier has interleaved kernels (elsewhere the scalar twin runs: correct, but
/// far slower than the stored layout's kernels).
pub fn kernels(simd: Simd) -> bool {
    matches!(simd.isa(), crate::isa::Isa::Avx512 | crate::isa::Isa::Avx2)
}

/// `out[c][r]` = row `r` of interleaved weights against token `c`, over byte slices: `w` holds
/// groups of eight rows (`nb` interleaved blocks each), `ys[c]` a token's activation blocks and
/// `sums[c]` their [`BlockSums`]; the first `out[c].len()` rows are written (at most the groups'
/// rows). At most [`MAX_TOKENS`] tokens per call.
pub type DotInterleaved = fn(
    simd: Simd,
    w: &[u8],
    nb: usize,
    ys: &[&[u8]],
    sums: &[&[BlockSums]],
    out: &mut [&mut [f32]],
) -> Result<(), QuantError>;

/// Tokens one [`DotInterleaved`] call takes (their accumulators stay in registers).
pub const MAX_TOKENS: usize = 8;

/// Interleaves `rows` rows of `cols` elements (`src`) into `dst`.
pub type InterleaveRows = fn(src: &[u8], rows: usize, cols: usize, dst: &mut [u8]) -> Result<(), QuantError>;
/// Dequantizes row `r` of interleaved weights of `cols` elements per row into `dst`.
pub type InterleavedRowToFloat = fn(w: &[u8], cols: usize, r: usize, dst: &mut [f32]) -> Result<(), QuantError>;

/// The interleaved layout of one weight type.
#[derive(Clone, Copy)]
pub struct InterleavedTraits {
    /// The weight type.
    pub ggml_type: GgmlType,
    /// Elements of a row in one interleaved block.
    pub block_elems: usize,
    /// Bytes of one interleaved block (eight rows' blocks).
    pub block_bytes: usize,
    /// The instruction-set tiers on which interleaving pays only for [`Workload::Batched`]
    /// (elsewhere it pays for every workload).
    pub batched_only: &'static [crate::isa::Isa],
    /// Interleaves `rows` rows of `cols` elements (`src`, the rows one after another) into
    /// `dst` ([`interleaved_bytes`] long); the last group is padded with zero rows.
    pub interleave: InterleaveRows,
    /// Dequantizes row `r` of interleaved weights (`cols` elements per row) into `dst`.
    pub row_to_float: InterleavedRowToFloat,
    /// The product's kernels.
    pub dot: DotInterleaved,
}

fn interleave<B: Interleave>(src: &[u8], rows: usize, cols: usize, dst: &mut [u8]) -> Result<(), QuantError> {
    let nb = cols / B::BLCK_SIZE;
    let xs: &[B] =
        bytemuck::try_cast_slice(src).map_err(|_| QuantError::NotWholeBlocks { ggml_type: B::TYPE, len: src.len() })?;
    let dst_len = dst.len();
    let out: &mut [B::R8] = bytemuck::try_cast_slice_mut(dst)
        .map_err(|_| QuantError::NotWholeBlocks { ggml_type: B::TYPE, len: dst_len })?;
    let groups = rows.div_ceil(ROWS);
    if nb * B::BLCK_SIZE != cols || xs.len() != rows * nb || out.len() != groups * nb {
        return Err(QuantError::LengthMismatch { expected: rows * cols, got: xs.len() * B::BLCK_SIZE });
    }
    for (g, dst) in out.chunks_exact_mut(nb.max(1)).enumerate() {
        for (j, d) in dst.iter_mut().enumerate() {
            let rows8: [B; ROWS] =
                core::array::from_fn(|r| xs.get((g * ROWS + r) * nb + j).copied().unwrap_or_else(B::zeroed));
            *d = B::pack(&rows8);
        }
    }
    Ok(())
}

fn row_to_float<B: Interleave>(w: &[u8], cols: usize, r: usize, dst: &mut [f32]) -> Result<(), QuantError> {
    let nb = cols / B::BLCK_SIZE;
    let xs: &[B::R8] =
        bytemuck::try_cast_slice(w).map_err(|_| QuantError::NotWholeBlocks { ggml_type: B::TYPE, len: w.len() })?;
    let g = r / ROWS;
    let group =
        xs.get(g * nb..(g + 1) * nb).ok_or(QuantError::LengthMismatch { expected: (g + 1) * nb, got: xs.len() })?;
    if dst.len() != nb * B::BLCK_SIZE || nb * B::BLCK_SIZE != cols {
        return Err(QuantError::LengthMismatch { expected: cols, got: dst.len() });
    }
    for (x, d) in group.iter().zip(dst.chunks_exact_mut(B::BLCK_SIZE)) {
        B::to_float(&[B::unpack(x, r % ROWS)], d);
    }
    Ok(())
}

fn dot<B: Interleave>(
    simd: Simd,
    w: &[u8],
    nb: usize,
    ys: &[&[u8]],
    sums: &[&[BlockSums]],
    out: &mut [&mut [f32]],
) -> Result<(), QuantError> {
    let bad = |len| QuantError::NotWholeBlocks { ggml_type: B::TYPE, len };
    let xs: &[B::R8] = bytemuck::try_cast_slice(w).map_err(|_| bad(w.len()))?;
    let n = ys.len();
    if nb == 0 || !xs.len().is_multiple_of(nb) || n > MAX_TOKENS || sums.len() != n || out.len() != n {
        return Err(QuantError::LengthMismatch { expected: nb, got: xs.len() });
    }
    let mut acts: [&[B::VecDotType]; MAX_TOKENS] = [&[]; MAX_TOKENS];
    for (c, y) in ys.iter().enumerate() {
        acts[c] = bytemuck::try_cast_slice(y).map_err(|_| bad(y.len()))?;
        if acts[c].len() != nb || sums[c].len() != nb || out[c].len() > xs.len() / nb * ROWS {
            return Err(QuantError::LengthMismatch { expected: nb, got: acts[c].len() });
        }
    }
    B::dot_r8_with(simd, xs, nb, &acts[..n], sums, out);
    Ok(())
}

const fn entry<B: Interleave>() -> InterleavedTraits {
    InterleavedTraits {
        ggml_type: B::TYPE,
        block_elems: B::BLCK_SIZE,
        block_bytes: core::mem::size_of::<B::R8>(),
        batched_only: &[],
        interleave: interleave::<B>,
        row_to_float: row_to_float::<B>,
        dot: dot::<B>,
    }
}

static TABLE: [InterleavedTraits; 6] = [
    entry::<BlockQ4_0>(),
    entry::<BlockQ4_1>(),
    entry::<BlockQ5_0>(),
    entry::<BlockQ5_1>(),
    entry::<BlockQ8_0>(),
    q4_k::TRAITS,
];

/// The interleaved layout of `ty`, where it has one.
pub fn interleaved(ty: GgmlType) -> Option<&'static InterleavedTraits> {
    TABLE.iter().find(|t| t.ggml_type == ty)
}

/// What a model's weights will mostly do, which decides the formats worth interleaving.
///
/// Measured (`llamux bench`, AMD EPYC): the 32-element formats' stored-layout kernels are
/// compute-bound below the memory's bandwidth, so interleaving them speeds up decoding itself
/// (SmolLM2's Q4_1, gemma3's Q5_0/Q8_0), with AVX2 and with AVX-512. `Q4_K` depends on the tier:
/// with AVX-512 its stored-layout kernel already decodes near the bandwidth — interleaved, one
/// session's decoding is no faster (TinyLlama-shaped, 2 threads, 49–51 tok/s either way) and
/// prompts are slower (pp128 260 against 320 tok/s, the stored layout's tile kernels take more
/// tokens a pass), but eight sessions decoding together go from about 109 to 155 tok/s. With AVX2
/// the interleaved kernel wins at one token too (TinyLlama-shaped, one thread, tg64 in four
/// alternated pairs 12.5–15.0 → 12.8–17.3 tok/s, each pair in its favour) and prompts are no
/// slower (pp512 37.7–40.8 → 36.6–42.2 at one thread, 62.6–68.1 → 84.3–85.3 at two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One session: prompts, then one token a step.
    Decode,
    /// Several sessions decoding together, one token each a step (a server).
    Batched,
}

impl InterleavedTraits {
    /// Whether interleaving this format pays for `workload` with the kernels of `simd`.
    pub fn pays(&self, workload: Workload, simd: Simd) -> bool {
        !self.batched_only.contains(&simd.isa()) || workload == Workload::Batched
    }

    /// Bytes of one group of eight interleaved rows of `cols` elements (`None` if `cols` is not
    /// a whole number of blocks).
    pub fn group_bytes(&self, cols: usize) -> Option<usize> {
        let blocks = cols / self.block_elems.max(1);
        (blocks * self.block_elems == cols).then(|| blocks.checked_mul(self.block_bytes)).flatten()
    }
}

/// Bytes of `rows` rows of `cols` elements of `ty` interleaved (rows padded to groups of eight).
pub fn interleaved_bytes(ty: GgmlType, rows: usize, cols: usize) -> Option<usize> {
    rows.div_ceil(ROWS).checked_mul(interleaved(ty)?.group_bytes(cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;
    use crate::sample::Rng;
    use alloc::vec;
    use alloc::vec::Vec;

    /// `rows × cols` weights of format `B`: quantized normals, with some blocks made extreme (all
    /// equal, zero, huge or tiny scales).
    fn weights<B: Interleave>(rng: &mut Rng, rows: usize, cols: usize) -> Vec<B> {
        let mut x: Vec<f32> = (0..rows * cols).map(|_| rng.normal()).collect();
        for (i, b) in x.chunks_exact_mut(32).enumerate() {
            match i % 7 {
                1 => b.fill(0.0),
                2 => b.fill(3.0),
                3 => b.iter_mut().for_each(|v| *v *= 5.0e3),
                4 => b.iter_mut().for_each(|v| *v *= 1.0e-6),
                _ => {}
            }
        }
        let mut w = vec![B::zeroed(); rows * cols / 32];
        B::from_float(&x, &mut w);
        w
    }

    fn acts<A: ActBlock>(rng: &mut Rng, cols: usize) -> Vec<A> {
        let x: Vec<f32> = (0..cols).map(|i| if i % 97 == 5 { 0.0 } else { rng.normal() * 3.0 }).collect();
        let mut y = vec![A::zeroed(); cols / 32];
        A::from_float_act(&x, &mut y);
        y
    }

    fn interleaved_rows<B: Interleave>(w: &[B], rows: usize, cols: usize) -> Vec<B::R8> {
        let mut dst = vec![B::R8::zeroed(); rows.div_ceil(ROWS) * cols / 32];
        interleave::<B>(bytemuck::cast_slice(w), rows, cols, bytemuck::cast_slice_mut(&mut dst)).unwrap();
        dst
    }

    fn round_trip<B: Interleave>() {
        let mut rng = Rng::new(3);
        let (rows, cols) = (13, 96);
        let w = weights::<B>(&mut rng, rows, cols);
        let r8 = interleaved_rows(&w, rows, cols);
        let nb = cols / 32;
        for r in 0..rows {
            for j in 0..nb {
                let back = B::unpack(&r8[(r / ROWS) * nb + j], r % ROWS);
                assert_eq!(
                    bytemuck::bytes_of(&back),
                    bytemuck::bytes_of(&w[r * nb + j]),
                    "{} row {r} block {j}",
                    B::TYPE
                );
            }
            let mut a = vec![0f32; cols];
            let mut b = vec![0f32; cols];
            row_to_float::<B>(bytemuck::cast_slice(&r8), cols, r, &mut a).unwrap();
            B::to_float(&w[r * nb..(r + 1) * nb], &mut b);
            assert_eq!(a, b);
        }
        // The padding rows are zero blocks.
        for j in 0..nb {
            let pad = B::unpack(&r8[nb + j], ROWS - 1);
            assert_eq!(bytemuck::bytes_of(&pad), bytemuck::bytes_of(&B::zeroed()));
        }
    }

    /// The scalar twin against the formats' own dot products (a different summation order, so to
    /// rounding), and every SIMD tier against the twin, bit for bit (on extreme blocks too).
    fn kernels_agree<B: Interleave>() {
        extreme_blocks_agree::<B>();
        let mut rng = Rng::new(9);
        for (rows, cols) in [(8, 32), (21, 96), (40, 640), (3, 256)] {
            let nb = cols / 32;
            let w = weights::<B>(&mut rng, rows, cols);
            let r8 = interleaved_rows(&w, rows, cols);
            let ys: Vec<Vec<B::VecDotType>> = (0..MAX_TOKENS).map(|_| acts(&mut rng, cols)).collect();
            let sums: Vec<Vec<BlockSums>> = ys.iter().map(|y| y.iter().map(ActBlock::sums).collect()).collect();
            for n in 1..=MAX_TOKENS {
                let y: Vec<&[B::VecDotType]> = ys[..n].iter().map(|y| y.as_slice()).collect();
                let s: Vec<&[BlockSums]> = sums[..n].iter().map(|s| s.as_slice()).collect();
                let mut want = vec![vec![f32::NAN; rows]; n];
                {
                    let mut o: Vec<&mut [f32]> = want.iter_mut().map(|o| o.as_mut_slice()).collect();
                    dot_r8_scalar::<B>(&r8, nb, &y, &s, &mut o);
                }
                for c in 0..n {
                    for r in 0..rows {
                        let row = &w[r * nb..(r + 1) * nb];
                        let exact = B::vec_dot_unopt(row, &ys[c]);
                        let mag: f32 = row
                            .iter()
                            .map(|x| x.scale_min().0.to_f32().abs() + x.scale_min().1.to_f32().abs())
                            .sum::<f32>()
                            * ys[c].iter().map(|y| y.scale().to_f32().abs()).fold(0.0, f32::max)
                            * 32.0
                            * 255.0;
                        assert!(
                            want[c][r] == exact || (want[c][r] - exact).abs() <= 1e-5 * mag + 1e-30,
                            "{} {rows}x{cols} token {c} row {r}: {} vs {exact}",
                            B::TYPE,
                            want[c][r]
                        );
                    }
                }
                tiers_agree::<B>(&r8, nb, &y, &s, &want, &alloc::format!("{rows}x{cols}, {n} tokens"));
            }
        }
    }

    /// Every quant at the format's largest value (or zero) against activations all +127 or all
    /// −127: the sums the SIMD kernels keep in narrow lanes are at their largest here, and must
    /// still equal the twin's `i32` sums, bit for bit.
    fn extreme_blocks_agree<B: Interleave>() {
        let (rows, cols) = (16, 256);
        let nb = cols / 32;
        let one = F16::from_f32(1.0);
        let w: Vec<B> =
            (0..rows * nb).map(|i| B::from_parts(one, one, &[if (i / nb) % 3 == 2 { 0 } else { 0xFF }; 32])).collect();
        let r8 = interleaved_rows(&w, rows, cols);
        let ys: Vec<Vec<B::VecDotType>> = (0..MAX_TOKENS)
            .map(|c| {
                let x = vec![if c % 2 == 0 { 1.0f32 } else { -1.0 }; cols];
                let mut y = vec![<B::VecDotType as Zeroable>::zeroed(); nb];
                <B::VecDotType as BlockFormat>::from_float_act(&x, &mut y);
                y
            })
            .collect();
        assert!(ys.iter().all(|y| y.iter().all(|b| b.quants().iter().all(|q| q.unsigned_abs() == 127))));
        let sums: Vec<Vec<BlockSums>> = ys.iter().map(|y| y.iter().map(ActBlock::sums).collect()).collect();
        let y: Vec<&[B::VecDotType]> = ys.iter().map(|y| y.as_slice()).collect();
        let s: Vec<&[BlockSums]> = sums.iter().map(|s| s.as_slice()).collect();
        let mut want = vec![vec![f32::NAN; rows]; MAX_TOKENS];
        {
            let mut o: Vec<&mut [f32]> = want.iter_mut().map(|o| o.as_mut_slice()).collect();
            dot_r8_scalar::<B>(&r8, nb, &y, &s, &mut o);
        }
        tiers_agree::<B>(&r8, nb, &y, &s, &want, "extreme blocks");
    }

    /// Every SIMD tier this CPU runs against the twin's results `want`, bit for bit.
    fn tiers_agree<B: Interleave>(
        r8: &[B::R8],
        nb: usize,
        y: &[&[B::VecDotType]],
        s: &[&[BlockSums]],
        want: &[Vec<f32>],
        what: &str,
    ) {
        for isa in [Isa::Avx2, Isa::Avx512, Isa::Neon] {
            let Some(simd) = Simd::new(isa) else { continue };
            let mut got: Vec<Vec<f32>> = want.iter().map(|w| vec![f32::NAN; w.len()]).collect();
            {
                let mut o: Vec<&mut [f32]> = got.iter_mut().map(|o| o.as_mut_slice()).collect();
                B::dot_r8_with(simd, r8, nb, y, s, &mut o);
            }
            for (c, (g, w)) in got.iter().zip(want).enumerate() {
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                assert_eq!(bits(g), bits(w), "{} {isa:?} {what}, token {c}", B::TYPE);
            }
        }
    }

    #[test]
    fn interleaving_round_trips() {
        round_trip::<BlockQ4_0>();
        round_trip::<BlockQ4_1>();
        round_trip::<BlockQ5_0>();
        round_trip::<BlockQ5_1>();
        round_trip::<BlockQ8_0>();
    }

    #[test]
    fn interleaved_kernels_agree() {
        kernels_agree::<BlockQ4_0>();
        kernels_agree::<BlockQ4_1>();
        kernels_agree::<BlockQ5_0>();
        kernels_agree::<BlockQ5_1>();
        kernels_agree::<BlockQ8_0>();
    }

    #[test]
    fn refuses_bad_operands() {
        let t = interleaved(GgmlType::Q4_0).unwrap();
        let simd = crate::isa::current();
        let w = vec![0u8; 144 * 2];
        let y = vec![0u8; 34 * 2];
        let s = [BlockSums::default(); 2];
        let (y, s): (&[u8], &[BlockSums]) = (&y, &s);
        let mut o = [0f32; 8];
        // Two blocks per row: fine; three: not a whole group; MAX_TOKENS + 1 tokens: too many.
        assert!((t.dot)(simd, &w, 2, &[y], &[s], &mut [&mut o]).is_ok());
        assert!((t.dot)(simd, &w, 3, &[y], &[s], &mut [&mut o]).is_err());
        let mut many = [[0f32; 8]; MAX_TOKENS + 1];
        let mut outs: Vec<&mut [f32]> = many.iter_mut().map(|o| o.as_mut_slice()).collect();
        assert!((t.dot)(simd, &w, 2, &[y; MAX_TOKENS], &[s; MAX_TOKENS], &mut outs[..MAX_TOKENS]).is_ok());
        assert!((t.dot)(simd, &w, 2, &[y; MAX_TOKENS + 1], &[s; MAX_TOKENS + 1], &mut outs).is_err());
        // More outputs than rows, activations of another length.
        let mut o9 = [0f32; 9];
        assert!((t.dot)(simd, &w, 2, &[y], &[s], &mut [&mut o9]).is_err());
        assert!((t.dot)(simd, &w, 2, &[&y[..34]], &[s], &mut [&mut o]).is_err());
        assert!(interleaved(GgmlType::Q6_K).is_none());
        // Matrices over interleaved bytes: exactly the padded size, and only formats with the layout.
        use crate::ops::Matrix;
        let bytes = vec![0u8; 16 * 68];
        assert!(Matrix::new_interleaved(GgmlType::Q8_0, 9, 64, &bytes).is_ok());
        assert!(Matrix::new_interleaved(GgmlType::Q8_0, 9, 64, &bytes[..9 * 68]).is_err());
        assert!(Matrix::new_interleaved(GgmlType::Q8_0, 9, 48, &bytes).is_err());
        assert!(Matrix::new_interleaved(GgmlType::Q6_K, 8, 256, &bytes).is_err());
        assert!(Matrix::new_interleaved(GgmlType::Q8_0, usize::MAX, 64, &bytes).is_err());
        let m = Matrix::new_interleaved(GgmlType::Q8_0, 9, 64, &bytes).unwrap();
        assert!(m.dequantize_row(9, &mut [0f32; 64]).is_err() && m.dequantize_row(8, &mut [0f32; 64]).is_ok());
        assert!(m.interleave_into(&mut [0u8; 16 * 68]).is_err(), "already interleaved");
        assert_eq!(interleaved_bytes(GgmlType::Q8_0, 9, 64), Some(16 * 68));
    }
}
