//! Every SIMD kernel against its scalar twin (ggml's `test-quantize-fns`, as properties): random
//! blocks (from the quantizers and as raw bytes), extreme and zero scales, all-equal blocks, odd
//! block counts, for every tier this CPU runs.

use super::*;
use crate::sample::Rng;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

/// u32-aligned storage for `n` bytes (Q8_K holds f32/i16 fields).
struct Buf {
    words: Vec<u32>,
    len: usize,
}

impl Buf {
    fn new(len: usize) -> Self {
        Buf { words: vec![0; len.div_ceil(4)], len }
    }
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len]
    }
}

/// How the float data of a case is drawn.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Normal,
    Tiny,
    Huge,
    Zero,
    AllEqual,
    Sparse,
}

fn floats(rng: &mut Rng, n: usize, shape: Shape) -> Vec<f32> {
    let c = rng.normal();
    (0..n)
        .map(|i| match shape {
            Shape::Normal => rng.normal(),
            Shape::Tiny => rng.normal() * 1e-30,
            Shape::Huge => rng.normal() * 6e4,
            Shape::Zero => 0.0,
            Shape::AllEqual => c,
            Shape::Sparse => {
                if i % 17 == 0 {
                    rng.normal() * 100.0
                } else {
                    0.0
                }
            }
        })
        .collect()
}

fn quantized(t: GgmlType, x: &[f32], act: bool) -> Buf {
    let tr = traits(t).unwrap();
    let mut b = Buf::new(t.bytes_for(x.len() as u64).unwrap() as usize);
    if act {
        (tr.from_float_act_with)(Simd::SCALAR, x, b.bytes_mut()).unwrap();
    } else {
        (tr.from_float)(x, b.bytes_mut()).unwrap();
    }
    b
}

/// `Σ |w_i a_i|` of the dequantized operands: the scale of the rounding error of any summation order.
fn abs_dot(t: GgmlType, w: &[u8], at: GgmlType, a: &[u8], n: usize) -> f64 {
    let (mut wf, mut af) = (vec![0f32; n], vec![0f32; n]);
    (traits(t).unwrap().to_float)(w, &mut wf).unwrap();
    (traits(at).unwrap().to_float)(a, &mut af).unwrap();
    wf.iter().zip(&af).map(|(x, y)| f64::from(x.abs()) * f64::from(y.abs())).sum()
}

/// One weight row and one activation row of `blocks` blocks, compared on every tier.
fn check_dot(t: GgmlType, blocks: usize, seed: u64, wshape: Shape, ashape: Shape, raw_weights: bool) {
    let tr = traits(t).unwrap();
    let n = blocks * t.block_size();
    let mut rng = Rng::new(seed);
    let w = if raw_weights && !matches!(t, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::Q8_K) {
        // Any bit pattern is a block (f16 scales may be huge, subnormal or non-finite).
        let mut b = Buf::new(t.bytes_for(n as u64).unwrap() as usize);
        b.bytes_mut().iter_mut().for_each(|v| *v = rng.next_u64() as u8);
        b
    } else {
        quantized(t, &floats(&mut rng, n, wshape), false)
    };
    let a = quantized(tr.vec_dot_type, &floats(&mut rng, n, ashape), true);
    let want = (tr.vec_dot_unopt)(w.bytes(), a.bytes()).unwrap();
    let scale = abs_dot(t, w.bytes(), tr.vec_dot_type, a.bytes(), n);
    for simd in Simd::available() {
        let got = (tr.vec_dot_with)(simd, w.bytes(), a.bytes()).unwrap();
        if !want.is_finite() || !scale.is_finite() {
            assert_eq!(got.is_finite(), want.is_finite(), "{t} on {}: {got} vs scalar {want}", simd.isa());
            continue;
        }
        let tol = 2e-5 * scale + 1e-30;
        assert!(
            f64::from((got - want).abs()) <= tol,
            "{t} on {} ({blocks} blocks, {wshape:?}/{ashape:?}, raw {raw_weights}): {got} vs scalar {want} (tol {tol})",
            simd.isa()
        );
    }
}

/// Activation quantizers must give the scalar quantizer's bytes exactly on every tier.
fn check_quantize(t: GgmlType, blocks: usize, seed: u64, shape: Shape) {
    let tr = traits(t).unwrap();
    let n = blocks * t.block_size();
    let x = floats(&mut Rng::new(seed), n, shape);
    let want = quantized(t, &x, true);
    for simd in Simd::available() {
        let mut got = Buf::new(want.len);
        (tr.from_float_act_with)(simd, &x, got.bytes_mut()).unwrap();
        assert_eq!(got.bytes(), want.bytes(), "{t} activations on {} ({shape:?})", simd.isa());
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        4 => Just(Shape::Normal),
        1 => Just(Shape::Tiny),
        1 => Just(Shape::Huge),
        1 => Just(Shape::Zero),
        1 => Just(Shape::AllEqual),
        1 => Just(Shape::Sparse),
    ]
}

fn weight_type() -> impl Strategy<Value = GgmlType> {
    let types: Vec<GgmlType> = supported_types().collect();
    proptest::sample::select(types)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn simd_dot_matches_scalar_twin(
        t in weight_type(),
        blocks in 1usize..=9,
        seed in any::<u64>(),
        ws in shape(),
        a_s in shape(),
        raw in any::<bool>(),
    ) {
        check_dot(t, blocks, seed, ws, a_s, raw);
    }

    #[test]
    fn simd_activation_quantizers_match_scalar(
        t in proptest::sample::select(vec![GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K]),
        blocks in 1usize..=9,
        seed in any::<u64>(),
        s in shape(),
    ) {
        check_quantize(t, blocks, seed, s);
    }
}

/// Long rows (a model's widest) on every format, so unrolled main loops and their tails both run.
#[test]
fn simd_dot_long_rows() {
    for t in supported_types() {
        for blocks in [64, 65, 71] {
            check_dot(t, blocks, blocks as u64, Shape::Normal, Shape::Normal, false);
            check_dot(t, blocks, blocks as u64 + 1, Shape::Normal, Shape::Normal, true);
        }
    }
}

/// The matrix–vector inner loop (`vec_dot_rows`, where a format may read several rows per pass)
/// gives each row's scalar dot, for row counts around any unrolling factor.
#[test]
fn simd_dot_rows_match_scalar_twin_per_row() {
    for t in supported_types() {
        let tr = traits(t).unwrap();
        let blocks = 3;
        let n = blocks * t.block_size();
        let mut rng = Rng::new(t.id() as u64);
        let a = quantized(tr.vec_dot_type, &floats(&mut rng, n, Shape::Normal), true);
        for n_rows in [1usize, 2, 3, 4, 5, 7, 8, 9, 17] {
            let w = quantized(t, &floats(&mut rng, n * n_rows, Shape::Normal), false);
            let row_bytes = w.len / n_rows;
            for simd in Simd::available() {
                let mut out = vec![f32::NAN; n_rows];
                (tr.vec_dot_rows)(simd, w.bytes(), a.bytes(), &mut out).unwrap();
                for (r, &got) in out.iter().enumerate() {
                    let row = &w.bytes()[r * row_bytes..(r + 1) * row_bytes];
                    let want = (tr.vec_dot_unopt)(row, a.bytes()).unwrap();
                    let tol = 2e-5 * abs_dot(t, row, tr.vec_dot_type, a.bytes(), n) + 1e-30;
                    assert!(
                        f64::from((got - want).abs()) <= tol,
                        "{t} on {}: row {r} of {n_rows}: {got} vs {want}",
                        simd.isa()
                    );
                }
            }
        }
        // A row count that does not divide the weights is refused.
        let w = quantized(t, &floats(&mut rng, n * 2, Shape::Normal), false);
        assert!((tr.vec_dot_rows)(Simd::SCALAR, w.bytes(), a.bytes(), &mut [0.0; 3]).is_err());
    }
}

/// The batch inner loop (`vec_dot_rows_x4`: one weight row against four activation rows, where a
/// format may unpack each weight block once for the four) gives exactly what `vec_dot_rows` gives
/// for each activation row on the same tier, bit for bit (the batched forward pass relies on it),
/// for row lengths around the 8-block groups and row counts around any unrolling.
#[test]
fn simd_dot_rows_x4_equal_dot_rows_bit_for_bit() {
    for t in supported_types() {
        let tr = traits(t).unwrap();
        let mut rng = Rng::new(t.id() as u64 + 99);
        // Across the 8-block groups and the 32-block chunks and 4-row tiles of the batch kernels.
        for blocks in [1usize, 3, 8, 9, 17, 33, 40] {
            let n = blocks * t.block_size();
            let acts: Vec<_> =
                (0..4).map(|_| quantized(tr.vec_dot_type, &floats(&mut rng, n, Shape::Normal), true)).collect();
            let a = [acts[0].bytes(), acts[1].bytes(), acts[2].bytes(), acts[3].bytes()];
            for n_rows in [1usize, 2, 5, 9] {
                let w = quantized(t, &floats(&mut rng, n * n_rows, Shape::Normal), false);
                for simd in Simd::available() {
                    let mut got = vec![vec![f32::NAN; n_rows]; 4];
                    {
                        let [g0, g1, g2, g3] = &mut got[..] else { unreachable!() };
                        (tr.vec_dot_rows_x4)(simd, w.bytes(), a, [g0, g1, g2, g3]).unwrap();
                    }
                    for (c, got) in got.iter().enumerate() {
                        let mut want = vec![f32::NAN; n_rows];
                        (tr.vec_dot_rows)(simd, w.bytes(), a[c], &mut want).unwrap();
                        let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                        assert!(
                            same,
                            "{t} on {}, {blocks} blocks, {n_rows} rows, column {c}: {got:?} vs {want:?}",
                            simd.isa()
                        );
                    }
                }
            }
        }
        // Activation rows of different lengths, or outputs that do not match the rows, are refused.
        let n = 2 * t.block_size();
        let short = quantized(tr.vec_dot_type, &floats(&mut rng, n / 2, Shape::Normal), true);
        let a = quantized(tr.vec_dot_type, &floats(&mut rng, n, Shape::Normal), true);
        let w = quantized(t, &floats(&mut rng, n * 2, Shape::Normal), false);
        let (mut o0, mut o1, mut o2, mut o3) = ([0.0; 2], [0.0; 2], [0.0; 2], [0.0; 3]);
        let ok = [a.bytes(), a.bytes(), a.bytes(), a.bytes()];
        assert!((tr.vec_dot_rows_x4)(Simd::SCALAR, w.bytes(), ok, [&mut o0, &mut o1, &mut o2, &mut o3]).is_err());
        let (mut o3,) = ([0.0; 2],);
        let bad = [a.bytes(), short.bytes(), a.bytes(), a.bytes()];
        if short.len > 0 {
            assert!((tr.vec_dot_rows_x4)(Simd::SCALAR, w.bytes(), bad, [&mut o0, &mut o1, &mut o2, &mut o3]).is_err());
        }
        assert!((tr.vec_dot_rows_x4)(Simd::SCALAR, w.bytes(), ok, [&mut o0, &mut o1, &mut o2, &mut o3]).is_ok());
    }
}

/// The tile kernels (weight rows against a batch laid out as tiles, sixteen tokens per group)
/// give exactly what `vec_dot_rows` gives for each token on the same tier, bit for bit (the
/// batched forward pass relies on it), for row lengths around the 8-block groups and the
/// kernels' 64-block chunks, token counts around the groups, row counts around the row pairs;
/// padding tokens come out as zeros.
#[test]
fn simd_dot_tiles_equal_dot_rows_bit_for_bit() {
    use super::tiles::{build, lines_for, tiled_type, Line, Tiles, TILE_COLS};
    let mut ran = 0;
    for t in supported_types() {
        let tr = traits(t).unwrap();
        if !tiled_type(tr.vec_dot_type) {
            continue;
        }
        let mut rng = Rng::new(t.id() as u64 + 7);
        for blocks in [1usize, 3, 8, 9, 17, 64, 70, 130] {
            let n = blocks * t.block_size();
            if !n.is_multiple_of(tr.vec_dot_type.block_size()) {
                continue;
            }
            for n_tok in [1usize, 5, 16, 17, 33] {
                let acts: Vec<_> =
                    (0..n_tok).map(|_| quantized(tr.vec_dot_type, &floats(&mut rng, n, Shape::Normal), true)).collect();
                let row_len = acts[0].len;
                let bytes: Vec<u8> = acts.iter().flat_map(|a| a.bytes().iter().copied()).collect();
                let mut lines = vec![<Line as bytemuck::Zeroable>::zeroed(); lines_for(n_tok, n)];
                let act_blocks = build(tr.vec_dot_type, &bytes, n_tok, row_len, &mut lines).unwrap();
                let groups = n_tok.div_ceil(TILE_COLS);
                let tiles = match tr.vec_dot_type {
                    GgmlType::Q8_K => Tiles::K {
                        tiles: bytemuck::cast_slice(&lines[..groups * act_blocks * 73]),
                        blocks: act_blocks,
                        tokens: n_tok,
                    },
                    ty => Tiles::B32 {
                        ty,
                        tiles: bytemuck::cast_slice(&lines[..groups * act_blocks * 11]),
                        blocks: act_blocks,
                        tokens: n_tok,
                    },
                };
                for n_rows in [1usize, 2, 3, 16] {
                    let w = quantized(t, &floats(&mut rng, n * n_rows, Shape::Normal), false);
                    for simd in Simd::available() {
                        let mut got = vec![f32::NAN; groups * TILE_COLS * n_rows];
                        if !(tr.vec_dot_tile)(simd, w.bytes(), tiles, &mut got).unwrap() {
                            continue;
                        }
                        ran += 1;
                        for (c, got) in got.chunks_exact(n_rows).enumerate() {
                            if c >= n_tok {
                                assert!(got.iter().all(|&g| g == 0.0), "{t}: padding token {c}: {got:?}");
                                continue;
                            }
                            let mut want = vec![f32::NAN; n_rows];
                            (tr.vec_dot_rows)(simd, w.bytes(), acts[c].bytes(), &mut want).unwrap();
                            let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                            assert!(
                                same,
                                "{t} on {}, {blocks} blocks, {n_tok} tokens, {n_rows} rows, token {c}: {got:?} vs {want:?}",
                                simd.isa()
                            );
                        }
                    }
                }
            }
        }
    }
    if Simd::new(crate::isa::Isa::Avx512).is_some() {
        assert!(ran > 0, "no tile kernel ran on an AVX-512 CPU");
    }
}

/// Activation quantizers on inputs the random shapes never make: NaN and infinities (scalar
/// `as i8` turns NaN into 0 and saturates), a block maximum so small that `127 / amax` is
/// infinite, exact rounding ties, and negative zeros; bytes must equal the scalar quantizer's.
#[test]
fn simd_activation_quantizers_match_scalar_on_special_values() {
    let specials = [
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        1e-40,
        -3e-39,
        f32::MIN_POSITIVE,
        f32::MAX,
        0.5,
        -2.5,
        1.5,
    ];
    let mut rng = Rng::new(7);
    let mut blocks: Vec<[f32; 32]> = Vec::new();
    for &s in &specials {
        // The special value alone, among normal values, and among values it dwarfs or rounds to ties.
        blocks.push([s; 32]);
        let mut b: [f32; 32] = core::array::from_fn(|_| rng.normal());
        b[(rng.next_u64() % 32) as usize] = s;
        blocks.push(b);
        let mut t: [f32; 32] = core::array::from_fn(|i| (i as f32 - 16.0) * 0.5);
        t[31] = 127.0;
        t[(rng.next_u64() % 31) as usize] = s;
        blocks.push(t);
    }
    // All subnormal: the multiplier overflows to infinity.
    blocks.push(core::array::from_fn(|i| (i as f32 - 15.0) * 1e-44));
    let x: Vec<f32> = blocks.iter().flatten().copied().collect();
    for t in [GgmlType::Q8_0, GgmlType::Q8_1] {
        let want = quantized(t, &x, true);
        for simd in Simd::available() {
            let mut got = Buf::new(want.len);
            (traits(t).unwrap().from_float_act_with)(simd, &x, got.bytes_mut()).unwrap();
            assert_eq!(got.bytes(), want.bytes(), "{t} activations on {}", simd.isa());
        }
    }
}
