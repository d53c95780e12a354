//! The reader on real files: the default model and llama.cpp's tokenizer vocabularies.
//!
//! Paths come from `LLAMUX_GEMMA` and `LLAMUX_VOCAB_DIR` (set by `cargo xtask test`, which fetches
//! both). Without them the tests say so and pass, unless `LLAMUX_REQUIRE_ASSETS` is set, as it is
//! in CI, where a missing asset fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::Gguf;
use llamux_core::model::HParams;
use llamux_core::quant::traits;

mod common;
use common::asset;

#[test]
fn gemma3_270m_parses_with_its_236_tensors_and_dequantizes() {
    let Some(path) = asset("LLAMUX_GEMMA") else { return };
    let bytes = std::fs::read(&path).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.tensors().len(), 236);
    assert_eq!(g.architecture(), Some("gemma3"));
    let hp = HParams::from_gguf(&g).unwrap();
    assert_eq!((hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.head_dim), (18, 640, 4, 1, 256));
    assert_eq!(hp.n_vocab, 262_144);
    assert_eq!(hp.sliding_window, Some(512));
    // Every tensor dequantizes to finite values with our kernels.
    for t in g.tensors() {
        let tr = traits(t.ggml_type).unwrap();
        let data = g.tensor_data(t);
        let row_bytes = t.ggml_type.bytes_for(t.row_len()).unwrap() as usize;
        let mut row = vec![0f32; t.row_len() as usize];
        // First and last rows of every tensor.
        for r in [0, t.n_rows() as usize - 1] {
            (tr.to_float)(&data[r * row_bytes..(r + 1) * row_bytes], &mut row).unwrap();
            assert!(row.iter().all(|x| x.is_finite()), "{} row {r}", t.name);
        }
    }
}

#[test]
fn every_llama_cpp_vocabulary_parses() {
    let Some(dir) = asset("LLAMUX_VOCAB_DIR") else { return };
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("gguf") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        let g = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let tokens = g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).unwrap();
        assert!(tokens.len() > 1000, "{}", p.display());
        assert_eq!(tokens.strings().flatten().count(), tokens.len());
        n += 1;
    }
    assert!(n >= 19, "only {n} vocabularies in {}", dir.display());
}
