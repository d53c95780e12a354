//! Every block format against ggml's definitions, as implemented by the PyPI `gguf` package.
//! The fixture is written by `tools/quant_fixtures.py` (`cargo xtask fixtures`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::Gguf;
use llamux_core::quant::traits;
use llamux_core::GgmlType;

const FIXTURE: &[u8] = include_bytes!("fixtures/quant_golden.gguf");

fn floats(g: &Gguf<'_>, name: &str) -> Vec<f32> {
    let t = g.tensor(name).unwrap_or_else(|| panic!("fixture lacks {name}"));
    assert_eq!(t.ggml_type, GgmlType::F32);
    g.tensor_data(t).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn bytes<'a>(g: &Gguf<'a>, name: &str, ty: GgmlType) -> &'a [u8] {
    let t = g.tensor(name).unwrap_or_else(|| panic!("fixture lacks {name}"));
    assert_eq!(t.ggml_type, ty, "{name}");
    g.tensor_data(t)
}

fn dequantize(ty: GgmlType, q: &[u8]) -> Vec<f32> {
    let n = q.len() / ty.type_size() * ty.block_size();
    let mut out = vec![0.0f32; n];
    (traits(ty).unwrap().to_float)(q, &mut out).unwrap();
    out
}

fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let n = ty.bytes_for(x.len() as u64).unwrap() as usize;
    let mut words = vec![0u32; n.div_ceil(4)]; // 4-aligned for Q8_K
    let out = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..n];
    (traits(ty).unwrap().from_float)(x, out).unwrap();
    out.to_vec()
}

fn assert_bits_eq(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        assert!(same, "{what}[{i}]: ours {a:e} ({:#x}) vs gguf {b:e} ({:#x})", a.to_bits(), b.to_bits());
    }
}

const ALL: [GgmlType; 11] = [
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];
const QUANTIZABLE: [GgmlType; 6] =
    [GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0];

#[test]
fn dequantization_of_random_blocks_is_bit_exact() {
    let g = Gguf::parse(FIXTURE).unwrap();
    for ty in ALL.into_iter().filter(|t| *t != GgmlType::BF16) {
        let n = ty.name().to_lowercase();
        let ours = dequantize(ty, bytes(&g, &format!("{n}.raw"), ty));
        assert_bits_eq(&format!("{n}.raw"), &ours, &floats(&g, &format!("{n}.raw.deq")));
    }
}

#[test]
fn quantization_is_bit_exact_where_gguf_implements_it() {
    let g = Gguf::parse(FIXTURE).unwrap();
    for ty in QUANTIZABLE {
        let n = ty.name().to_lowercase();
        let src = floats(&g, &format!("{n}.src"));
        let theirs = bytes(&g, &format!("{n}.q"), ty);
        let ours = quantize(ty, &src);
        if let Some(i) = ours.iter().zip(theirs).position(|(a, b)| a != b) {
            let b = i / ty.type_size();
            panic!(
                "{n}: first difference in byte {i} (block {b}); source {:?}",
                &src[b * ty.block_size()..][..ty.block_size()]
            );
        }
        assert_bits_eq(&format!("{n}.deq"), &dequantize(ty, theirs), &floats(&g, &format!("{n}.deq")));
    }
}

#[test]
fn f16_and_bf16_conversions_match_numpy_and_ggml() {
    let g = Gguf::parse(FIXTURE).unwrap();
    let src = floats(&g, "f16.src");
    assert_eq!(quantize(GgmlType::F16, &src), bytes(&g, "f16.q", GgmlType::F16));
    let edge = floats(&g, "bf16.edge.src");
    assert_eq!(quantize(GgmlType::BF16, &edge), bytes(&g, "bf16.edge.q", GgmlType::BF16));
}

/// Fused dot products against the f64 dot of the dequantized operands. The weights' dequantization
/// is the bit-exact one checked above; activations use our (checked) Q8_0 and the Q8_1 / Q8_K
/// quantizers ggml pairs with the other formats.
#[test]
fn fused_dot_products_within_tolerance() {
    let g = Gguf::parse(FIXTURE).unwrap();
    let act = floats(&g, "q8_0.src");
    let mut worst = Vec::new();
    for ty in ALL.into_iter().chain([GgmlType::F16]) {
        let n = ty.name().to_lowercase();
        let w = if ty == GgmlType::F16 {
            bytes(&g, "f16.q", ty).to_vec()
        } else if QUANTIZABLE.contains(&ty) {
            bytes(&g, &format!("{n}.q"), ty).to_vec()
        } else {
            bytes(&g, &format!("{n}.raw"), ty).to_vec()
        };
        let tr = traits(ty).unwrap();
        let aq = quantize(tr.vec_dot_type, &act);
        let (wd, ad) = (dequantize(ty, &w), dequantize(tr.vec_dot_type, &aq));
        // Compare row by row (rows of 256) so that cancellation in a long sum cannot hide errors.
        for (r, ((wr, ar), (wdr, adr))) in w
            .chunks(ty.bytes_for(256).unwrap() as usize)
            .zip(aq.chunks(tr.vec_dot_type.bytes_for(256).unwrap() as usize))
            .zip(wd.chunks(256).zip(ad.chunks(256)))
            .enumerate()
        {
            let wr32 = aligned(wr);
            let ar32 = aligned(ar);
            let (wb, ab) = (&bytemuck::cast_slice(&wr32)[..wr.len()], &bytemuck::cast_slice(&ar32)[..ar.len()]);
            let exact: f64 = wdr.iter().zip(adr).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
            let mag: f64 = wdr.iter().zip(adr).map(|(a, b)| (f64::from(*a) * f64::from(*b)).abs()).sum();
            for (kind, got) in
                [("vec_dot", (tr.vec_dot)(wb, ab).unwrap()), ("unopt", (tr.vec_dot_unopt)(wb, ab).unwrap())]
            {
                let rel = (f64::from(got) - exact).abs() / mag.max(1e-30);
                // Q8_1 keeps d·Σq as f16, which the Q4_1/Q5_1 kernels use for the minimum term.
                let tol = if tr.vec_dot_type == GgmlType::Q8_1 { 2e-3 } else { 1e-5 };
                assert!(rel <= tol, "{n} row {r} {kind}: {got} vs {exact} (relative {rel:e})");
                worst.push(rel);
            }
        }
    }
    assert!(!worst.is_empty());
}

fn aligned(b: &[u8]) -> Vec<u32> {
    let mut w = vec![0u32; b.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..b.len()].copy_from_slice(b);
    w
}
