//! llama.cpp's tokenizer test vectors (`models/ggml-vocab-*.gguf` with `.inp`/`.out`, from the
//! `llama-cpp-python` sdist): tokenization without special tokens must match exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::Gguf;
use llamux_core::tokenizer::Tokenizer;

mod common;
use common::asset;

/// Runs the vectors of `ggml-vocab-{name}.gguf`; returns (passed, total).
fn run(name: &str) -> Option<(usize, usize)> {
    let dir = asset("LLAMUX_VOCAB_DIR")?;
    let model = std::fs::read(dir.join(format!("ggml-vocab-{name}.gguf"))).unwrap();
    let inp = std::fs::read(dir.join(format!("ggml-vocab-{name}.gguf.inp"))).unwrap();
    let out = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.out"))).unwrap();
    let g = Gguf::parse(&model).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let sep = b"\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut pos = 0;
    while pos < inp.len() {
        match inp[pos..].windows(sep.len()).position(|w| w == sep) {
            Some(n) => {
                inputs.push(&inp[pos..pos + n]);
                pos += n + sep.len();
            }
            None => {
                inputs.push(&inp[pos..]);
                break;
            }
        }
    }
    let expected: Vec<Vec<u32>> =
        out.lines().map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect()).collect();
    assert_eq!(inputs.len(), expected.len(), "{name}: test count");
    let mut passed = 0;
    for (text, want) in inputs.iter().zip(&expected) {
        let got = tok.encode(text, false, false);
        if &got == want {
            passed += 1;
        } else {
            eprintln!("{name}: {:?}\n  ours  {got:?}\n  llama {want:?}", String::from_utf8_lossy(text));
        }
    }
    Some((passed, inputs.len()))
}

#[test]
fn llama_spm() {
    if let Some((p, n)) = run("llama-spm") {
        assert_eq!(p, n, "llama-spm: {p}/{n}");
    }
}

#[test]
fn phi_3_spm() {
    if let Some((p, n)) = run("phi-3") {
        assert_eq!(p, n, "phi-3: {p}/{n}");
    }
}

#[test]
fn llama_bpe() {
    if let Some((p, n)) = run("llama-bpe") {
        assert_eq!(p, n, "llama-bpe: {p}/{n}");
    }
}

#[test]
fn qwen2_bpe() {
    if let Some((p, n)) = run("qwen2") {
        assert_eq!(p, n, "qwen2: {p}/{n}");
    }
}

#[test]
fn gpt_2_bpe() {
    if let Some((p, n)) = run("gpt-2") {
        assert_eq!(p, n, "gpt-2: {p}/{n}");
    }
}

/// StarCoder's, Refact's and Command-R's vocabularies use the same rules as SmolLM's
/// (`tokenizer.ggml.pre` `starcoder`, `refact`, `command-r`: `\p{N}`, then GPT-2's regex).
#[test]
fn starcoder_bpe() {
    if let Some((p, n)) = run("starcoder") {
        assert_eq!(p, n, "starcoder: {p}/{n}");
    }
}

#[test]
fn refact_bpe() {
    if let Some((p, n)) = run("refact") {
        assert_eq!(p, n, "refact: {p}/{n}");
    }
}

#[test]
fn command_r_bpe() {
    if let Some((p, n)) = run("command-r") {
        assert_eq!(p, n, "command-r: {p}/{n}");
    }
}

/// MPT's vocabulary uses GPT-2's rules under another name.
#[test]
fn mpt_bpe() {
    if let Some((p, n)) = run("mpt") {
        assert_eq!(p, n, "mpt: {p}/{n}");
    }
}

/// Compares a model's tokenization with a fixture of llama.cpp's (`tools/tokenizer_vectors.py`):
/// every case must match, and the fixture must hold `n` cases.
fn fixture(var: &str, json: &str, n: usize) {
    let Some(path) = asset(var) else { return };
    let model = std::fs::read(path).unwrap();
    let g = Gguf::parse(&model).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let fx: serde_json::Value = serde_json::from_str(json).unwrap();
    let name = fx["model"].as_str().unwrap();
    let cases = fx["cases"].as_array().unwrap();
    let mut failed = 0;
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want: Vec<u32> = c["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let got = tok.encode(text.as_bytes(), false, false);
        if got != want {
            failed += 1;
            eprintln!("{name}: {text:?}\n  ours  {got:?}\n  llama {want:?}");
        }
    }
    assert_eq!(cases.len(), n, "{name}: case count");
    assert_eq!(failed, 0, "{name}: {failed} of {} differ", cases.len());
}

/// gemma3's vocabulary ships no vectors: llama.cpp's tokenization of its own test strings with
/// gemma3-270m's vocabulary (`tools/tokenizer_vectors.py`).
#[test]
fn gemma3_spm() {
    fixture("LLAMUX_GEMMA", include_str!("fixtures/gemma3_tokenizer.json"), 94);
}

/// SmolLM2's vocabulary (`smollm` pre-tokenizer): llama.cpp's tokenization of its test strings
/// and of the extra pre-tokenizer cases (`tools/tokenizer_vectors.py --extra`).
#[test]
fn smollm2_bpe() {
    fixture("LLAMUX_SMOLLM2", include_str!("fixtures/smollm2_tokenizer.json"), 104);
}
