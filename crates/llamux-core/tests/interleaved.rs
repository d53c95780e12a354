//! Models with their matrices interleaved (eight rows per block) against the same models as
//! stored: the logits agree to rounding (another summation order) and pick the same tokens; and
//! with interleaved weights, batches of any size still equal one token at a time, bit for bit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::ops::QuantizedInput;
use llamux_core::platform::{Parallel, Serial, Threads};
use llamux_core::quant::interleaved::Workload;
use llamux_core::session::{KvType, Session};
use llamux_core::tokenizer::Tokenizer;

mod common;
use common::asset;

const TEXT: &[u8] = b"Interleaving eight rows of a matrix block by block lets one vector load feed eight dot products.";

/// Logits after each token fed in batches of `chunk` (the last batch's final token only when
/// `chunk` > 1).
fn run(model: &Model<'_>, par: &dyn Parallel, tokens: &[u32], chunk: usize) -> Vec<Vec<f32>> {
    let mut sess = Session::with_options(model, 128, KvType::F16, chunk.max(1)).unwrap();
    let mut out = Vec::new();
    for c in tokens.chunks(chunk) {
        out.push(model.forward_batch(&mut sess, c, par).unwrap().to_vec());
    }
    out
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0
}

/// The top logit's lead over the second.
fn margin(v: &[f32]) -> f32 {
    let top = argmax(v);
    let second = v.iter().enumerate().filter(|&(i, _)| i != top).fold(f32::MIN, |m, (_, &x)| m.max(x));
    v[top] - second
}

#[test]
fn interleaved_models_match_stored_ones() {
    let mut checked = 0;
    for var in ["LLAMUX_SMOLLM2", "LLAMUX_GEMMA", "LLAMUX_TINYLLAMA"] {
        let Some(path) = asset(var) else { continue };
        let bytes = std::fs::read(path).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let tok = Tokenizer::from_gguf(&g).unwrap();
        let plain = Model::load(&g).unwrap();
        let mut released = 0usize;
        let weights = plain.interleave(Some(Workload::Batched), |piece| released += piece.len()).unwrap();
        assert!(weights.bytes() > 0, "{var}: nothing to interleave");
        assert_eq!(weights.bytes(), plain.interleaved_bytes(Workload::Batched));
        if var == "LLAMUX_TINYLLAMA" {
            // Q4_K and Q6_K only: for one session's decoding the stored layout is kept where
            // the tier's Q4_K kernels do not pay for one token (AVX-512), and Q4_K interleaved
            // elsewhere.
            let decode = plain.interleaved_bytes(Workload::Decode);
            let q4k = llamux_core::quant::interleaved::interleaved(llamux_core::GgmlType::Q4_K).unwrap();
            let isa = llamux_core::isa::current().isa();
            assert_eq!(decode == 0, q4k.batched_only.contains(&isa), "{isa:?}: {decode} bytes for decoding");
        }
        let mut model = Model::load(&g).unwrap();
        model.use_interleaved(&weights).unwrap();
        let stored: usize = plain.matrices().map(|m| m.bytes()).sum();
        assert_eq!(released, stored, "{var}: every matrix's bytes handed back once");
        assert!(model.matrices().any(|m| m.is_interleaved()));
        // Made from another model's shapes: refused.
        let mut again = Model::load(&g).unwrap();
        again.layers.pop();
        assert!(again.use_interleaved(&weights).is_err());

        // Matrix by matrix, on random inputs: the products agree to rounding.
        let mut rng = llamux_core::sample::Rng::new(1);
        for (a, b) in plain.matrices().zip(model.matrices()).filter(|(_, b)| b.is_interleaved()) {
            let x: Vec<f32> = (0..3 * a.cols).map(|_| rng.normal()).collect();
            let mut q = QuantizedInput::try_new(3, a.cols).unwrap();
            q.quantize_rows(&x, a.cols, a.input_type()).unwrap();
            let (mut ya, mut yb) = (vec![0f32; 3 * a.rows], vec![f32::NAN; 3 * a.rows]);
            a.matvec(&Serial, &q, &mut ya).unwrap();
            // Interleaved matrices need the block sums: refused without them.
            assert!(b.matvec(&Serial, &q, &mut yb).is_err());
            q.summarize().unwrap();
            b.matvec(&Serial, &q, &mut yb).unwrap();
            let scale = ya.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = ya.iter().zip(&yb).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                diff <= 1e-5 * scale,
                "{var} {} {}x{}: products differ by {diff} (largest {scale})",
                a.ggml_type,
                a.rows,
                a.cols
            );
        }

        let tokens = tok.encode(TEXT, true, true);
        let pool = Threads::new(2);
        let want = run(&plain, &pool, &tokens, 1);
        let got = run(&model, &pool, &tokens, 1);
        for (p, (a, b)) in want.iter().zip(&got).enumerate() {
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            // Rounding differences grow through the layers (each one can move an activation
            // across a quantization step): the engine's own scalar and SIMD kernels, other
            // summation orders again, differ by up to 4% (SmolLM2) and 4.8% (gemma3) of the
            // largest logit over this text. The products themselves agree to 1e-5 (above).
            assert!(diff <= 8e-2 * scale, "{var} position {p}: logits differ by {diff} (largest {scale})");
            if margin(a) > 0.1 * scale {
                assert_eq!(argmax(a), argmax(b), "{var} position {p}");
            }
        }
        // Batched with interleaved weights: the single-token results, bit for bit.
        for chunk in [3, 4, 7, 16] {
            let batched = run(&model, &pool, &tokens, chunk);
            for (i, l) in batched.iter().enumerate() {
                let last = ((i + 1) * chunk).min(tokens.len()) - 1;
                assert!(l == &got[last], "{var} batch of {chunk}, token {last}");
            }
        }
        checked += 1;
    }
    if std::env::var_os("LLAMUX_REQUIRE_ASSETS").is_some() {
        assert!(checked >= 2, "no models checked");
    }
}

/// A copy of the matrices as stored (`interleave(None)`, what hosts make to hold the weights in
/// huge pages): nothing is interleaved, every byte is handed back once, and the logits are the
/// stored model's, bit for bit.
#[test]
fn copies_as_stored_are_the_stored_model() {
    let mut checked = 0;
    for var in ["LLAMUX_SMOLLM2", "LLAMUX_TINYLLAMA"] {
        let Some(path) = asset(var) else { continue };
        let bytes = std::fs::read(path).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let tok = Tokenizer::from_gguf(&g).unwrap();
        let plain = Model::load(&g).unwrap();
        let mut released = 0usize;
        let weights = plain.interleave(None, |piece| released += piece.len()).unwrap();
        let stored: usize = plain.matrices().map(|m| m.bytes()).sum();
        assert_eq!((weights.bytes(), released), (stored, stored), "{var}");
        assert_eq!(plain.copy_bytes(None), stored);
        let mut model = Model::load(&g).unwrap();
        model.use_interleaved(&weights).unwrap();
        assert!(model.matrices().all(|m| !m.is_interleaved()));
        assert!(model.matrices().zip(plain.matrices()).all(|(a, b)| !core::ptr::eq(a.data(), b.data())));
        let tokens = tok.encode(TEXT, true, true);
        let pool = Threads::new(2);
        assert!(run(&plain, &pool, &tokens, 1) == run(&model, &pool, &tokens, 1), "{var}");
        checked += 1;
    }
    if std::env::var_os("LLAMUX_REQUIRE_ASSETS").is_some() {
        assert!(checked >= 1, "no models checked");
    }
}
