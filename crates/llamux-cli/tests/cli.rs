//! The `llamux` binary end to end: info, synth, and clean failures on bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use std::path::PathBuf;

fn llamux() -> Command {
    Command::cargo_bin("llamux").unwrap()
}

fn gemma() -> Option<PathBuf> {
    match std::env::var_os("LLAMUX_GEMMA") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("LLAMUX_REQUIRE_ASSETS").is_some() => panic!("LLAMUX_GEMMA is not set"),
        None => {
            eprintln!("skipped: LLAMUX_GEMMA is not set (run through `cargo xtask test`)");
            None
        }
    }
}

fn vocab() -> Option<PathBuf> {
    match std::env::var_os("LLAMUX_VOCAB_DIR") {
        Some(p) => Some(PathBuf::from(p).join("ggml-vocab-llama-spm.gguf")),
        None if std::env::var_os("LLAMUX_REQUIRE_ASSETS").is_some() => panic!("LLAMUX_VOCAB_DIR is not set"),
        None => {
            eprintln!("skipped: LLAMUX_VOCAB_DIR is not set (run through `cargo xtask test`)");
            None
        }
    }
}

fn json_of(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).expect("stdout is one JSON object")
}

#[test]
fn info_json_on_gemma() {
    let Some(path) = gemma() else { return };
    let out = llamux().args(["info", "--json"]).arg(&path).output().unwrap();
    assert!(out.status.success());
    let j = json_of(&out.stdout);
    assert_eq!(j["architecture"], "gemma3");
    assert_eq!(j["tensors"].as_array().unwrap().len(), 236);
    assert_eq!(j["hparams"]["n_layer"], 18);
    assert_eq!(j["file_type"], "Q4_K_M");
    assert_eq!(j["tokenizer"]["tokens"], 262_144);
    assert_eq!(j["parameters"], 268_098_176u64);
}

#[test]
fn info_text_lists_tensors() {
    let Some(path) = gemma() else { return };
    let out = llamux().args(["info", "--tensors"]).arg(&path).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("architecture:  gemma3"));
    assert!(text.contains("token_embd.weight"));
    assert!(text.contains("quantization mix:"));
}

#[test]
fn bad_files_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.gguf", b"", "file ends"),
        ("garbage.gguf", b"this is not a model at all, just some text", "bad magic"),
        (
            "v1.gguf",
            b"GGUF\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            "version 1",
        ),
    ];
    for (name, bytes, needle) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = llamux().arg("info").arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.starts_with("llamux: error:") && err.contains(needle), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let out = llamux().args(["info", "/no/such/file.gguf"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("not a known model name"));
}

#[test]
fn truncated_model_fails_cleanly() {
    let Some(path) = gemma() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for cut in [10usize, 5000, 3_000_000, bytes.len() - 1] {
        let p = dir.path().join("cut.gguf");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let out = llamux().arg("info").arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "cut at {cut}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("llamux: error:") && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn synth_tiny_is_deterministic_and_readable() {
    let Some(vocab) = vocab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"), dir.path().join("c.gguf"));
    for (p, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        llamux()
            .args(["synth", "--shape", "tiny", "--ftype", "q4_k_m", "--seed", seed, "--vocab"])
            .arg(&vocab)
            .arg("-o")
            .arg(p)
            .assert()
            .success();
    }
    let (ba, bb, bc) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), std::fs::read(&c).unwrap());
    assert_eq!(ba, bb, "same seed, same file");
    assert_ne!(ba, bc, "different seed, different weights");
    let out = llamux().args(["info", "--json"]).arg(&a).output().unwrap();
    let j = json_of(&out.stdout);
    assert_eq!(j["architecture"], "llama");
    assert_eq!(j["tokenizer"]["tokens"], 32000);
    assert_eq!(j["hparams"]["n_layer"], 2);
    let types: Vec<(String, String)> = j["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["type"].as_str().unwrap().to_string()))
        .collect();
    let ty = |n: &str| types.iter().find(|(name, _)| name == n).map(|(_, t)| t.as_str()).unwrap();
    assert_eq!(ty("output.weight"), "q6_K");
    assert_eq!(ty("token_embd.weight"), "q4_K");
    assert_eq!(ty("blk.0.attn_q.weight"), "q4_K");
    assert_eq!(ty("blk.1.attn_v.weight"), "q6_K");
    assert_eq!(ty("blk.0.attn_norm.weight"), "f32");
}

#[test]
fn synth_every_ftype_round_trips_through_info() {
    let Some(vocab) = vocab() else { return };
    let dir = tempfile::tempdir().unwrap();
    for ftype in
        ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m", "q4_k_s", "q5_k_m", "q6_k"]
    {
        let p = dir.path().join(format!("{ftype}.gguf"));
        llamux()
            .args(["synth", "--shape", "tiny", "--ftype", ftype, "--vocab"])
            .arg(&vocab)
            .arg("-o")
            .arg(&p)
            .assert()
            .success();
        let out = llamux().args(["info", "--json"]).arg(&p).output().unwrap();
        assert!(out.status.success(), "{ftype}");
        assert_eq!(json_of(&out.stdout)["file_type"].as_str().unwrap().to_lowercase(), ftype);
    }
    let out = llamux().args(["synth", "--ftype", "q9_z", "-o"]).arg(dir.path().join("x.gguf")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("unknown file type"));
}

#[test]
fn quantize_requantizes_and_refuses_bad_types() {
    let Some(vocab) = vocab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f32.gguf");
    llamux()
        .args(["synth", "--shape", "tiny", "--ftype", "f32", "--vocab"])
        .arg(&vocab)
        .arg("-o")
        .arg(&src)
        .assert()
        .success();
    let mixed = dir.path().join("q4km.gguf");
    llamux().arg("quantize").arg(&src).arg(&mixed).arg("q4_k_m").assert().success();
    let pure = dir.path().join("q5k.gguf");
    llamux().arg("quantize").arg(&src).arg(&pure).args(["q5_k_s", "--pure"]).assert().success();
    let types = |p: &PathBuf| -> Vec<String> {
        let j = json_of(&llamux().args(["info", "--json"]).arg(p).output().unwrap().stdout);
        j["tensors"].as_array().unwrap().iter().map(|t| t["type"].as_str().unwrap().to_string()).collect()
    };
    let m = types(&mixed);
    assert!(m.contains(&"q6_K".to_string()) && m.contains(&"q4_K".to_string()) && m.contains(&"f32".to_string()));
    assert!(types(&pure).iter().all(|t| t == "q5_K" || t == "f32"));
    // Requantizing a synth f32 model to q4_k_m gives the same bytes as synthesizing q4_k_m directly.
    let direct = dir.path().join("direct.gguf");
    llamux()
        .args(["synth", "--shape", "tiny", "--ftype", "q4_k_m", "--vocab"])
        .arg(&vocab)
        .arg("-o")
        .arg(&direct)
        .assert()
        .success();
    let (a, b) = (std::fs::read(&mixed).unwrap(), std::fs::read(&direct).unwrap());
    let (ga, gb) = (llamux_core::gguf::Gguf::parse(&a).unwrap(), llamux_core::gguf::Gguf::parse(&b).unwrap());
    assert_eq!(ga.tensors().len(), gb.tensors().len());
    for (ta, tb) in ga.tensors().iter().zip(gb.tensors()) {
        assert_eq!((ta.name, ta.ggml_type), (tb.name, tb.ggml_type));
        assert!(ga.tensor_data(ta) == gb.tensor_data(tb), "{} differs", ta.name);
    }
    let out = llamux().arg("quantize").arg(&src).arg(dir.path().join("x.gguf")).arg("q7").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}
