//! Every hostile model of `llamux-core/tests/common/hostile.rs` through the binary: `llamux run`
//! either runs normally (exit 0) or fails with exit status 1 and one line on stderr naming the
//! error the core gives; `llamux info`, `tokenize` and `detokenize` never panic (the last two
//! need only a vocabulary, and fail exactly when the tokenizer is refused).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;

#[path = "../../llamux-core/tests/common/mod.rs"]
mod common;
#[path = "../../llamux-core/tests/common/hostile.rs"]
mod hostile;

use hostile::{cases, Expect};

fn llamux() -> Command {
    let mut c = Command::cargo_bin("llamux").unwrap();
    c.env_remove("LLAMUX_ISA");
    c
}

#[test]
fn hostile_models_fail_with_one_line_or_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    let all = cases();
    for c in &all {
        let path = dir.path().join(format!("{}.gguf", c.name));
        std::fs::write(&path, c.model.bytes().unwrap()).unwrap();
        let out = llamux()
            .args(["run", "-t", "1", "-c", "64", "-n", "4", "--temp", "0", "-p", "Once upon a time", "-m"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = match &c.expect {
            Expect::Runs | Expect::RunsNonFinite => None,
            Expect::Model(e) => Some(e.to_string()),
            Expect::Vocab(e) => Some(e.to_string()),
        };
        let ok = match &want {
            None => out.status.success() && !stderr.contains("panicked"),
            Some(msg) => {
                out.status.code() == Some(1)
                    && stderr.lines().count() == 1
                    && stderr.starts_with("llamux: error:")
                    && stderr.contains(msg.as_str())
            }
        };
        if !ok {
            wrong.push(format!("{}: want {want:?}, got {:?}: {stderr}", c.name, out.status.code()));
        }
        // `info`, `tokenize` and `detokenize` report what they can: exit 0, or 1 with one line
        // (the tokenizer's error exactly, for a tokenizer that is refused).
        for args in
            [&["info"][..], &["tokenize", "--json", "Once upon a time", "-m"], &["detokenize", "1", "2", "300", "-m"]]
        {
            let out = llamux().args(args).arg(&path).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let ok = match (out.status.code(), &c.expect) {
                (Some(1), Expect::Vocab(e)) if args[0] != "info" => {
                    stderr.lines().count() == 1 && stderr.contains(e.to_string().as_str())
                }
                (_, Expect::Vocab(_)) if args[0] != "info" => false,
                (Some(0), _) => !stderr.contains("panicked"),
                (Some(1), _) => stderr.lines().count() == 1 && stderr.starts_with("llamux: error:"),
                _ => false,
            };
            if !ok {
                wrong.push(format!("{} ({}): {:?}: {stderr}", c.name, args[0], out.status.code()));
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), all.len(), wrong.join("\n"));
}

/// A file with only a vocabulary (llama.cpp's `ggml-vocab-*.gguf`) tokenizes and detokenizes,
/// as `llama-tokenize` does; `run` refuses it with one line.
#[test]
fn vocabulary_only_files_tokenize() {
    let Some(dir) = common::asset("LLAMUX_VOCAB_DIR") else { return };
    let vocab = dir.join("ggml-vocab-llama-spm.gguf");
    let out = llamux().args(["tokenize", "--json", "-m"]).arg(&vocab).arg("Hello world").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ids"], serde_json::json!([1, 15043, 3186]));
    let out = llamux().args(["detokenize", "-m"]).arg(&vocab).args(["1", "15043", "3186"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Hello world\n");
    let out = llamux().args(["detokenize", "-m"]).arg(&vocab).arg("32000").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside the vocabulary of 32000"));
    let out = llamux().args(["run", "-p", "Hi", "-m"]).arg(&vocab).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("token_embd.weight is missing"), "{err}");
}

/// Every tokenizer family works from its vocabulary-only file through the CLI, as llama.cpp's
/// own test vectors (`ggml-vocab-NAME.gguf.inp` / `.out`) say it should: SentencePiece (llama,
/// phi-3) and byte-level BPE (llama 3, Qwen2, GPT-2, StarCoder). `detokenize` gives the text back.
#[test]
fn vocabulary_only_files_of_every_family_match_llama_cpp() {
    let Some(dir) = common::asset("LLAMUX_VOCAB_DIR") else { return };
    for name in ["llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2", "starcoder"] {
        let vocab = dir.join(format!("ggml-vocab-{name}.gguf"));
        let inp = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.inp"))).unwrap();
        let out = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.out"))).unwrap();
        let cases: Vec<(&str, &str)> = inp.split("\n__ggml_vocab_test__\n").zip(out.lines()).collect();
        assert!(cases.len() > 10, "{name}: {} vectors", cases.len());
        let mut checked = 0;
        // Texts an argument can carry (no NUL), with some words in them.
        for (text, want) in cases.iter().filter(|(t, _)| !t.contains('\0') && t.trim().len() > 3).take(5) {
            let want: Vec<u64> = want.split_whitespace().map(|t| t.parse().unwrap()).collect();
            let out = llamux()
                .args(["tokenize", "--json", "--no-special", "--no-parse-special", "-m"])
                .arg(&vocab)
                .arg("--")
                .arg(text)
                .output()
                .unwrap();
            assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(j["ids"], serde_json::json!(want), "{name}: {text:?}");
            let ids: Vec<String> = want.iter().map(u64::to_string).collect();
            let out = llamux().args(["detokenize", "-m"]).arg(&vocab).args(&ids).output().unwrap();
            assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            checked += 1;
        }
        assert_eq!(checked, 5, "{name}");
    }
}
