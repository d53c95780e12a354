//! `Q4_K` interleaved eight rows by eight ([`R8Q4K`]): super-block `j` of eight rows together,
//! their 6-bit scales and minimums unpacked to bytes side by side, four quants of every row in
//! each 32-byte word — one vector load holds four quants of eight rows, as for the 32-element
//! formats, and the scales of a sub-block for eight rows are one 8-byte load.
//!
//! Layout: `d`, `dmin` the rows' super-scales; `sc[8k + r]`, `m[8k + r]` sub-block `k`'s scale
//! and minimum of row `r`; `qs` word `8i + t` (32 bytes) holds bytes `32i + 4t .. 32i + 4t + 4`
//! of each row's quants, row `r` at `4r` (low nibbles: sub-block `2i`, high: `2i + 1`, as in the
//! stored block). 1184 bytes for eight rows' 1152: 2.8% more memory, no 6-bit unpacking per
//! product. Rows past the matrix's last are zeros.
//!
//! Every result (the scalar twin and every SIMD kernel compute exactly this, so they agree bit
//! for bit): per super-block, first `acc = fma(−(m_k · dmin), s_k, acc)` for each sub-block `k`
//! (`s_k` = the activations' scale times the sum of sub-block `k`'s quants, from
//! [`BlockSums`]), then `acc = fma(sumi, d·d_y, acc)` with `sumi = Σ_k sc_k · Σ_e q·y` in exact
//! integers; the row's result is `acc` (one accumulator per row and token: a batch's
//! accumulators stay in registers).

use super::{BlockSums, InterleavedTraits, MAX_TOKENS, ROWS};
use crate::isa::Simd;
use crate::quant::q4_k::{pack_scale_min_k4, scale_min_k4};
use crate::quant::{BlockFormat, BlockQ4K, BlockQ8K, GgmlType, QuantError, F16, QK_K};
use bytemuck::{Pod, Zeroable};

/// Sub-blocks (of 32 elements) per super-block.
pub(crate) const SUBS: usize = QK_K / 32;

/// Eight rows' `Q4_K` super-blocks, interleaved.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct R8Q4K {
    /// The rows' scales of the scales.
    pub d: [F16; ROWS],
    /// The rows' scales of the minimums.
    pub dmin: [F16; ROWS],
    /// Sub-block scales, `sc[8k + r]`.
    pub sc: [u8; SUBS * ROWS],
    /// Sub-block minimums, `m[8k + r]`.
    pub m: [u8; SUBS * ROWS],
    /// Quants, 32 words.
    pub qs: [u8; QK_K / 2 * ROWS],
}

const _: () = assert!(core::mem::size_of::<R8Q4K>() == 1184);

/// Where byte `b` (0..128) of row `r`'s quants sits in [`R8Q4K::qs`].
fn qs_at(r: usize, b: usize) -> usize {
    let (i, t, e) = (b / 32, (b % 32) / 4, b % 4);
    32 * (8 * i + t) + 4 * r + e
}

/// Interleaves eight rows' super-blocks.
pub fn pack(rows: &[BlockQ4K; ROWS]) -> R8Q4K {
    let mut x = R8Q4K::zeroed();
    for (r, row) in rows.iter().enumerate() {
        x.d[r] = row.d;
        x.dmin[r] = row.dmin;
        for k in 0..SUBS {
            let (sc, m) = scale_min_k4(k, &row.scales);
            x.sc[8 * k + r] = sc;
            x.m[8 * k + r] = m;
        }
        for (b, &q) in row.qs.iter().enumerate() {
            x.qs[qs_at(r, b)] = q;
        }
    }
    x
}

/// Row `r`'s super-block of `x`.
pub fn unpack(x: &R8Q4K, r: usize) -> BlockQ4K {
    let r = r % ROWS;
    let sc: [u8; SUBS] = core::array::from_fn(|k| x.sc[8 * k + r] & 63);
    let m: [u8; SUBS] = core::array::from_fn(|k| x.m[8 * k + r] & 63);
    BlockQ4K {
        d: x.d[r],
        dmin: x.dmin[r],
        scales: pack_scale_min_k4(&sc, &m),
        qs: core::array::from_fn(|b| x.qs[qs_at(r, b)]),
    }
}

/// The scalar twin of the `Q4_K` interleaved kernels: `out[c][r]` = row `r` of the groups `xs`
/// (`nbk` super-blocks each) against `ys[c]` (with its per-32 sums `sums[c]`); writes the first
/// `out[c].len()` rows.
pub fn dot_scalar(xs: &[R8Q4K], nbk: usize, ys: &[&[BlockQ8K]], sums: &[&[BlockSums]], out: &mut [&mut [f32]]) {
    if nbk == 0 {
        return;
    }
    for (g, group) in xs.chunks_exact(nbk).enumerate() {
        for ((y, s), o) in ys.iter().zip(sums).zip(out.iter_mut()) {
            let mut acc = [0.0f32; ROWS];
            for (j, (x, y)) in group.iter().zip(y.iter()).enumerate() {
                let s = s.get(SUBS * j..SUBS * (j + 1)).unwrap_or(&[]);
                for (r, acc) in acc.iter_mut().enumerate() {
                    for (k, s) in s.iter().enumerate() {
                        *acc = libm::fmaf(-(f32::from(x.m[8 * k + r]) * x.dmin[r].to_f32()), s.s(), *acc);
                    }
                    let mut sumi = 0i32;
                    for k in 0..SUBS {
                        let mut isum = 0i32;
                        for e in 0..32 {
                            let byte = x.qs[qs_at(r, 32 * (k / 2) + e)];
                            let q = if k % 2 == 0 { byte & 0x0F } else { byte >> 4 };
                            isum += i32::from(q) * i32::from(y.qs[32 * k + e]);
                        }
                        sumi = sumi.wrapping_add(isum.wrapping_mul(i32::from(x.sc[8 * k + r])));
                    }
                    *acc = libm::fmaf(sumi as f32, x.d[r].to_f32() * y.d, *acc);
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

/// The kernel of `simd`'s tier, else the scalar twin.
fn dot_with(simd: Simd, xs: &[R8Q4K], nbk: usize, ys: &[&[BlockQ8K]], sums: &[&[BlockSums]], out: &mut [&mut [f32]]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use crate::isa::Isa;
        match simd.isa() {
            // SAFETY (each arm): a `Simd` of a tier exists only when the CPU runs that tier.
            Isa::Avx512 => return unsafe { crate::quant::x86::interleaved_q4k::dot_avx512(xs, nbk, ys, sums, out) },
            Isa::Avx2 => return unsafe { crate::quant::x86::interleaved_q4k::dot_avx2(xs, nbk, ys, sums, out) },
            _ => {}
        }
    }
    let _ = simd;
    dot_scalar(xs, nbk, ys, sums, out)
}

fn interleave(src: &[u8], rows: usize, cols: usize, dst: &mut [u8]) -> Result<(), QuantError> {
    let nbk = cols / QK_K;
    let xs: &[BlockQ4K] = bytemuck::try_cast_slice(src)
        .map_err(|_| QuantError::NotWholeBlocks { ggml_type: GgmlType::Q4_K, len: src.len() })?;
    let dst_len = dst.len();
    let out: &mut [R8Q4K] = bytemuck::try_cast_slice_mut(dst)
        .map_err(|_| QuantError::NotWholeBlocks { ggml_type: GgmlType::Q4_K, len: dst_len })?;
    if nbk * QK_K != cols || xs.len() != rows * nbk || out.len() != rows.div_ceil(ROWS) * nbk {
        return Err(QuantError::LengthMismatch { expected: rows * cols, got: xs.len() * QK_K });
    }
    for (g, dst) in out.chunks_exact_mut(nbk.max(1)).enumerate() {
        for (j, d) in dst.iter_mut().enumerate() {
            let rows8: [BlockQ4K; ROWS] =
                core::array::from_fn(|r| xs.get((g * ROWS + r) * nbk + j).copied().unwrap_or_else(BlockQ4K::zeroed));
            *d = pack(&rows8);
        }
    }
    Ok(())
}

fn row_to_float(w: &[u8], cols: usize, r: usize, dst: &mut [f32]) -> Result<(), QuantError> {
    let nbk = cols / QK_K;
    let xs: &[R8Q4K] = bytemuck::try_cast_slice(w)
        .map_err(|_| QuantError::NotWholeBlocks { ggml_type: GgmlType::Q4_K, len: w.len() })?;
    let g = r / ROWS;
    let group =
        xs.get(g * nbk..(g + 1) * nbk).ok_or(QuantError::LengthMismatch { expected: (g + 1) * nbk, got: xs.len() })?;
    if dst.len() != nbk * QK_K || nbk * QK_K != cols {
        return Err(QuantError::LengthMismatch { expected: cols, got: dst.len() });
    }
    for (x, d) in group.iter().zip(dst.chunks_exact_mut(QK_K)) {
        BlockQ4K::to_float(&[unpack(x, r % ROWS)], d);
    }
    Ok(())
}

/// The layout's product over bytes; `nb` counts 32-element blocks per row (eight per super-block),
/// as the sums do.
fn dot(
    simd: Simd,
    w: &[u8],
    nb: usize,
    ys: &[&[u8]],
    sums: &[&[BlockSums]],
    out: &mut [&mut [f32]],
) -> Result<(), QuantError> {
    let bad = |len| QuantError::NotWholeBlocks { ggml_type: GgmlType::Q4_K, len };
    let xs: &[R8Q4K] = bytemuck::try_cast_slice(w).map_err(|_| bad(w.len()))?;
    let nbk = nb / SUBS;
    let n = ys.len();
    if nbk == 0
        || nbk * SUBS != nb
        || !xs.len().is_multiple_of(nbk)
        || n > MAX_TOKENS
        || sums.len() != n
        || out.len() != n
    {
        return Err(QuantError::LengthMismatch { expected: nb, got: xs.len() });
    }
    let mut acts: [&[BlockQ8K]; MAX_TOKENS] = [&[]; MAX_TOKENS];
    for (c, y) in ys.iter().enumerate() {
        acts[c] = bytemuck::try_cast_slice(y).map_err(|_| bad(y.len()))?;
        if acts[c].len() != nbk || sums[c].len() != nb || out[c].len() > xs.len() / nbk * ROWS {
            return Err(QuantError::LengthMismatch { expected: nbk, got: acts[c].len() });
        }
    }
    dot_with(simd, xs, nbk, &acts[..n], sums, out);
    Ok(())
}

/// The `Q4_K` entry of the layouts' table.
pub(super) const TRAITS: InterleavedTraits = InterleavedTraits {
    ggml_type: GgmlType::Q4_K,
    block_elems: QK_K,
    block_bytes: core::mem::size_of::<R8Q4K>(),
    batched_only: &[crate::isa::Isa::Avx512],
    interleave,
    row_to_float,
    dot,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;
    use crate::sample::Rng;
    use alloc::vec;
    use alloc::vec::Vec;

    /// `rows × cols` weights: quantized normals, some super-blocks extreme (zero, all equal,
    /// huge, tiny), some with shifted means (large minimums).
    fn weights(rng: &mut Rng, rows: usize, cols: usize) -> Vec<BlockQ4K> {
        let mut x: Vec<f32> = (0..rows * cols).map(|_| rng.normal()).collect();
        for (i, b) in x.chunks_exact_mut(QK_K).enumerate() {
            match i % 6 {
                1 => b.fill(0.0),
                2 => b.fill(3.0),
                3 => b.iter_mut().for_each(|v| *v *= 5.0e3),
                4 => b.iter_mut().for_each(|v| *v = *v * 1.0e-6 + 2.0e-6),
                5 => b.iter_mut().enumerate().for_each(|(e, v)| *v += (e / 32) as f32 - 3.0),
                _ => {}
            }
        }
        let mut w = vec![BlockQ4K::zeroed(); rows * cols / QK_K];
        BlockQ4K::from_float(&x, &mut w);
        w
    }

    fn acts(rng: &mut Rng, cols: usize) -> (Vec<BlockQ8K>, Vec<BlockSums>) {
        let x: Vec<f32> = (0..cols).map(|i| if i % 97 == 5 { 0.0 } else { rng.normal() * 3.0 }).collect();
        let mut y = vec![BlockQ8K::zeroed(); cols / QK_K];
        BlockQ8K::from_float_act(&x, &mut y);
        let mut s = vec![BlockSums::default(); cols / 32];
        super::super::summarize(GgmlType::Q8_K, bytemuck::cast_slice(&y), &mut s).unwrap();
        (y, s)
    }

    fn interleaved_rows(w: &[BlockQ4K], rows: usize, cols: usize) -> Vec<R8Q4K> {
        let mut dst = vec![R8Q4K::zeroed(); rows.div_ceil(ROWS) * cols / QK_K];
        interleave(bytemuck::cast_slice(w), rows, cols, bytemuck::cast_slice_mut(&mut dst)).unwrap();
        dst
    }

    #[test]
    fn round_trips() {
        let mut rng = Rng::new(5);
        let (rows, cols) = (11, 512);
        let w = weights(&mut rng, rows, cols);
        let r8 = interleaved_rows(&w, rows, cols);
        let nbk = cols / QK_K;
        for r in 0..rows {
            for j in 0..nbk {
                let back = unpack(&r8[(r / ROWS) * nbk + j], r % ROWS);
                assert_eq!(bytemuck::bytes_of(&back), bytemuck::bytes_of(&w[r * nbk + j]), "row {r} block {j}");
            }
            let (mut a, mut b) = (vec![0f32; cols], vec![0f32; cols]);
            row_to_float(bytemuck::cast_slice(&r8), cols, r, &mut a).unwrap();
            BlockQ4K::to_float(&w[r * nbk..(r + 1) * nbk], &mut b);
            assert_eq!(a, b);
        }
        for j in 0..nbk {
            assert_eq!(bytemuck::bytes_of(&unpack(&r8[nbk + j], ROWS - 1)), bytemuck::bytes_of(&BlockQ4K::zeroed()));
        }
    }

    /// The twin against the format's own dot product (another order of rounding), and every
    /// SIMD tier against the twin, bit for bit, for 1..=MAX_TOKENS tokens.
    #[test]
    fn kernels_agree() {
        let mut rng = Rng::new(13);
        for (rows, cols) in [(8, 256), (21, 768), (40, 2048), (3, 512)] {
            let nbk = cols / QK_K;
            let w = weights(&mut rng, rows, cols);
            let r8 = interleaved_rows(&w, rows, cols);
            let tokens: Vec<(Vec<BlockQ8K>, Vec<BlockSums>)> = (0..MAX_TOKENS).map(|_| acts(&mut rng, cols)).collect();
            for n in 1..=MAX_TOKENS {
                let y: Vec<&[BlockQ8K]> = tokens[..n].iter().map(|t| t.0.as_slice()).collect();
                let s: Vec<&[BlockSums]> = tokens[..n].iter().map(|t| t.1.as_slice()).collect();
                let mut want = vec![vec![f32::NAN; rows]; n];
                {
                    let mut o: Vec<&mut [f32]> = want.iter_mut().map(|o| o.as_mut_slice()).collect();
                    dot_scalar(&r8, nbk, &y, &s, &mut o);
                }
                for c in 0..n {
                    for r in 0..rows {
                        let row = &w[r * nbk..(r + 1) * nbk];
                        let exact = BlockQ4K::vec_dot_unopt(row, &tokens[c].0);
                        let mag: f32 =
                            row.iter().map(|x| x.d.to_f32().abs() * 63.0 + x.dmin.to_f32().abs() * 63.0).sum::<f32>()
                                * tokens[c].0.iter().map(|y| y.d.abs()).fold(0.0, f32::max)
                                * 256.0
                                * 15.0
                                * 127.0;
                        assert!(
                            (want[c][r] - exact).abs() <= 1e-6 * mag + 1e-30,
                            "{rows}x{cols} token {c} row {r}: {} vs {exact}",
                            want[c][r]
                        );
                    }
                }
                for isa in [Isa::Avx2, Isa::Avx512, Isa::Neon] {
                    let Some(simd) = Simd::new(isa) else { continue };
                    let mut got = vec![vec![f32::NAN; rows]; n];
                    {
                        let mut o: Vec<&mut [f32]> = got.iter_mut().map(|o| o.as_mut_slice()).collect();
                        dot_with(simd, &r8, nbk, &y, &s, &mut o);
                    }
                    for c in 0..n {
                        let g: Vec<u32> = got[c].iter().map(|v| v.to_bits()).collect();
                        let e: Vec<u32> = want[c].iter().map(|v| v.to_bits()).collect();
                        assert_eq!(g, e, "{isa:?} {rows}x{cols}, {n} tokens, token {c}");
                    }
                }
            }
        }
    }

    /// Every quant 15 and every sub-block scale 63 (or a zero row) against activations all +127
    /// or all −127: the narrow sums of the SIMD kernels at their largest, bit for bit the twin.
    #[test]
    fn extreme_blocks_agree() {
        let (rows, cols) = (16, 512);
        let nbk = cols / QK_K;
        let one = F16::from_f32(1.0);
        let w: Vec<BlockQ4K> = (0..rows * nbk)
            .map(|i| {
                let full = (i / nbk) % 3 != 2;
                let b = if full { 0xFF } else { 0 };
                BlockQ4K { d: one, dmin: one, scales: [b; 12], qs: [b; QK_K / 2] }
            })
            .collect();
        let r8 = interleaved_rows(&w, rows, cols);
        let tokens: Vec<(Vec<BlockQ8K>, Vec<BlockSums>)> = (0..MAX_TOKENS)
            .map(|c| {
                let x = vec![if c % 2 == 0 { 1.0f32 } else { -1.0 }; cols];
                let mut y = vec![BlockQ8K::zeroed(); nbk];
                BlockQ8K::from_float_act(&x, &mut y);
                let mut s = vec![BlockSums::default(); cols / 32];
                super::super::summarize(GgmlType::Q8_K, bytemuck::cast_slice(&y), &mut s).unwrap();
                (y, s)
            })
            .collect();
        assert!(tokens.iter().all(|t| t.0.iter().all(|b| b.qs.iter().all(|q| q.unsigned_abs() == 127))));
        let y: Vec<&[BlockQ8K]> = tokens.iter().map(|t| t.0.as_slice()).collect();
        let s: Vec<&[BlockSums]> = tokens.iter().map(|t| t.1.as_slice()).collect();
        let mut want = vec![vec![f32::NAN; rows]; MAX_TOKENS];
        {
            let mut o: Vec<&mut [f32]> = want.iter_mut().map(|o| o.as_mut_slice()).collect();
            dot_scalar(&r8, nbk, &y, &s, &mut o);
        }
        for isa in [Isa::Avx2, Isa::Avx512, Isa::Neon] {
            let Some(simd) = Simd::new(isa) else { continue };
            let mut got = vec![vec![f32::NAN; rows]; MAX_TOKENS];
            {
                let mut o: Vec<&mut [f32]> = got.iter_mut().map(|o| o.as_mut_slice()).collect();
                dot_with(simd, &r8, nbk, &y, &s, &mut o);
            }
            assert_eq!(got, want, "{isa:?}: extreme blocks");
        }
    }

    #[test]
    fn refuses_bad_operands() {
        let simd = crate::isa::current();
        let w = vec![0u8; 1184 * 2];
        let y = vec![0u8; 292 * 2];
        let s = [BlockSums::default(); 16];
        let (y, s): (&[u8], &[BlockSums]) = (&y, &s);
        let mut o = [0f32; 8];
        assert!(dot(simd, &w, 16, &[y], &[s], &mut [&mut o]).is_ok());
        // Not whole super-blocks; sums of another length; more outputs than rows; too many tokens.
        assert!(dot(simd, &w, 12, &[y], &[s], &mut [&mut o]).is_err());
        assert!(dot(simd, &w, 16, &[y], &[&s[..8]], &mut [&mut o]).is_err());
        assert!(dot(simd, &w, 16, &[y], &[s], &mut [&mut [0f32; 9]]).is_err());
        let mut many = [[0f32; 8]; MAX_TOKENS + 1];
        let mut outs: Vec<&mut [f32]> = many.iter_mut().map(|o| o.as_mut_slice()).collect();
        assert!(dot(simd, &w, 16, &[y; MAX_TOKENS], &[s; MAX_TOKENS], &mut outs[..MAX_TOKENS]).is_ok());
        assert!(dot(simd, &w, 16, &[y; MAX_TOKENS + 1], &[s; MAX_TOKENS + 1], &mut outs).is_err());
        assert!(interleave(&[0u8; 144 * 3], 3, 256, &mut [0u8; 1184 * 2]).is_err());
        assert!(row_to_float(&w, 512, 8, &mut [0f32; 512]).is_err());
    }
}
