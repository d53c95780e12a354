//! The `llamux` binary end to end: info, synth, and clean failures on bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use std::path::PathBuf;

#[path = "../../llamux-core/tests/common/mod.rs"]
mod common;
use common::asset;

fn gemma() -> Option<PathBuf> {
    asset("LLAMUX_GEMMA")
}

fn vocab() -> Option<PathBuf> {
    asset("LLAMUX_VOCAB_DIR").map(|d| d.join("ggml-vocab-llama-spm.gguf"))
}

fn llamux() -> Command {
    Command::cargo_bin("llamux").unwrap()
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

/// Output to a reader that has gone away (`llamux info MODEL | head -1`) ends the command
/// quietly (SIGPIPE), without a panic message.
#[test]
fn closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let Some(path) = gemma() else { return };
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("llamux"))
        .args(["info", "--tensors"])
        .arg(&path)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(SIGPIPE), "{:?}: {stderr}", out.status);
}

/// SIGPIPE's number on Linux.
const SIGPIPE: i32 = 13;

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

/// The tiny synthetic model, written once per test binary run.
fn tiny_model(dir: &std::path::Path) -> Option<PathBuf> {
    let vocab = vocab()?;
    let p = dir.join("tiny.gguf");
    llamux().args(["synth", "--shape", "tiny", "--vocab"]).arg(&vocab).arg("-o").arg(&p).assert().success();
    Some(p)
}

fn run_json(args: &[&str], model: &std::path::Path) -> (Option<i32>, serde_json::Value, String) {
    let out = llamux().arg("run").arg("-m").arg(model).args(["--json", "--temp", "0"]).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let j = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), j, stderr)
}

#[test]
fn run_json_reports_tokens_text_and_timings() {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = tiny_model(dir.path()) else { return };
    let (code, j, err) = run_json(&["-p", "Hello world", "-n", "8"], &m);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(j["prompt_tokens"][0], 1, "BOS first");
    assert_eq!(j["tokens"].as_array().unwrap().len(), 8);
    assert!(j["text"].is_string());
    assert!(j["timings"]["tokens_per_s"].as_f64().unwrap() > 0.0);
    // Greedy decoding is deterministic, sampling is deterministic per seed.
    let (_, j2, _) = run_json(&["-p", "Hello world", "-n", "8"], &m);
    assert_eq!(j["tokens"], j2["tokens"]);
    let s = |seed: &str| run_json(&["-p", "Hello", "-n", "8", "--temp", "1.0", "--seed", seed], &m).1["tokens"].clone();
    assert_eq!(s("3"), s("3"));
    // A stop string ends generation at the token that completes it.
    let text = j["text"].as_str().unwrap().to_string();
    let toks = j["tokens"].as_array().unwrap().len();
    let stop: String = text.chars().skip(2).take(4).collect();
    if !stop.is_empty() {
        let (_, js, _) = run_json(&["-p", "Hello world", "-n", "8", "--stop", &stop], &m);
        let short = js["text"].as_str().unwrap();
        assert!(short.contains(&stop) && text.starts_with(short), "{short:?} vs {text:?} stop {stop:?}");
        assert!(js["tokens"].as_array().unwrap().len() <= toks);
    }
    // An f32 KV cache works too.
    let (code, j3, err) = run_json(&["-p", "Hello world", "-n", "8", "--kv-type", "f32"], &m);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(j3["tokens"].as_array().unwrap().len(), 8);
}

#[test]
fn hostile_run_inputs_fail_cleanly_or_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = tiny_model(dir.path()) else { return };
    // Empty prompt: BOS alone is a valid prompt.
    let (code, j, err) = run_json(&["-p", "", "-n", "4"], &m);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(j["prompt_tokens"].as_array().unwrap().len(), 1);
    // -n 0 generates nothing.
    let (code, j, _) = run_json(&["-p", "hi", "-n", "0"], &m);
    assert_eq!(code, Some(0));
    assert!(j["tokens"].as_array().unwrap().is_empty());
    // Huge -n stops when the context is full (documented truncation), without error.
    let (code, j, err) = run_json(&["-p", "hi", "-n", "1000000", "-c", "32"], &m);
    assert_eq!(code, Some(0), "{err}");
    assert!(j["tokens"].as_array().unwrap().len() <= 32);
    // Non-finite or negative temperatures are refused with one line.
    for t in ["nan", "inf", "-1"] {
        let out = llamux().arg("run").arg("-m").arg(&m).args(["-p", "x", &format!("--temp={t}")]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "--temp {t}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("temperature") && !e.contains("panicked"), "{e}");
    }
    // Invalid UTF-8 bytes in the prompt are tokenized through byte fallback.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"caf\xe9 \xff\xfe end");
        let out = llamux()
            .arg("run")
            .arg("-m")
            .arg(&m)
            .args(["--json", "--temp", "0", "-n", "2", "-p"])
            .arg(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A 1 MB prompt is longer than the context: a clear error, no panic.
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "lorem ipsum dolor sit amet ".repeat(40_000)).unwrap();
    let out = llamux().arg("run").arg("-m").arg(&m).arg("-f").arg(&big).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("context holds") && !e.contains("panicked"), "{e}");
    // Bad context sizes and token ids.
    for c in ["0", "99999999999"] {
        let out = llamux().arg("run").arg("-m").arg(&m).args(["-p", "x", "-c", c]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "-c {c}");
    }
    let out = llamux().arg("detokenize").arg("-m").arg(&m).args(["999999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn tokenize_and_detokenize_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = tiny_model(dir.path()) else { return };
    let out = llamux().arg("tokenize").arg("-m").arg(&m).args(["--json", "Hello world"]).output().unwrap();
    let j = json_of(&out.stdout);
    // llama.cpp's llama-spm vocabulary: <s> ▁Hello ▁world
    assert_eq!(j["ids"], serde_json::json!([1, 15043, 3186]));
    let out = llamux().arg("detokenize").arg("-m").arg(&m).args(["1", "15043", "3186"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), "Hello world");
}

/// Perplexity against llama.cpp's on the same text and context (fixture from
/// `tools/oracle.py perplexity`, all 29 chunks of 256 tokens): within 0.5% with the matrices as
/// stored; with interleaved matrices (another summation order in every product) within 0.75%.
/// Rounding differences grow through the layers: over this text the engine's own variants spread
/// from -0.53% (interleaved, AVX-512) to +0.29% (stored, AVX2), while interleaving only the output
/// matrix leaves the perplexity unchanged to five digits.
#[test]
fn perplexity_matches_llama_cpp_within_half_a_percent() {
    let Some(gemma) = gemma() else { return };
    let fx: serde_json::Value =
        serde_json::from_str(include_str!("../../llamux-core/tests/fixtures/oracle/perplexity-gemma3-270m.json"))
            .unwrap();
    let text = fx["text"].as_str().unwrap();
    let bytes = std::fs::read(text).unwrap_or_else(|e| panic!("{text}: {e} (Debian's base-files ships it)"));
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(digest, fx["text_sha256"].as_str().unwrap(), "{text} differs from the one the fixture used");
    for (layout, bound) in [("rows", 0.005), ("interleaved", 0.0075)] {
        let out = llamux()
            .env("LLAMUX_LAYOUT", layout)
            .args(["perplexity", "--json", "-c", &fx["n_ctx"].to_string(), "--chunks", &fx["chunks"].to_string(), "-m"])
            .arg(&gemma)
            .arg("-f")
            .arg(text)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let ours = json_of(&out.stdout);
        let (a, b) = (ours["ppl"].as_f64().unwrap(), fx["ppl"].as_f64().unwrap());
        eprintln!("perplexity ({layout}): llamux {a:.4}, llama.cpp {b:.4} ({:+.3}%)", (a / b - 1.0) * 100.0);
        assert_eq!(ours["tokens_scored"], fx["tokens_scored"]);
        assert!((a / b - 1.0).abs() < bound, "{layout}: {a} vs {b}");
    }
}

#[test]
fn chat_reads_turns_from_stdin_and_exits_on_eof() {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = tiny_model(dir.path()) else { return };
    for template in [None, Some("chatml")] {
        let mut cmd = llamux();
        cmd.arg("chat").arg("-m").arg(&m).args(["--temp", "0", "-n", "5", "-c", "128"]);
        if let Some(t) = template {
            cmd.args(["--template", t]);
        }
        // Enough turns to overflow the 128-token context: old turns are dropped, no error.
        let input = "hello there\n/reset\nwhat now\n".to_string() + &"tell me more about it please\n".repeat(12);
        let out = cmd.write_stdin(input).output().unwrap();
        assert!(out.status.success(), "{template:?}: {}", String::from_utf8_lossy(&out.stderr));
        let replies = String::from_utf8_lossy(&out.stdout);
        assert_eq!(replies.lines().count(), 14, "{template:?}: one reply line per turn: {replies:?}");
    }
    let out = llamux().arg("chat").arg("-m").arg(&m).args(["--template", "nope"]).write_stdin("").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}
