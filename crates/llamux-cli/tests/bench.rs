//! `llamux bench`, `LLAMUX_ISA` and `llamux info --system` end to end. No assertion depends on speed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[path = "../../llamux-core/tests/common/mod.rs"]
mod common;
use common::asset;

fn llamux() -> Command {
    Command::cargo_bin("llamux").unwrap()
}

/// The tiny synthetic model with llama.cpp's SPM vocabulary, written into `dir`.
fn tiny_model(dir: &Path) -> Option<PathBuf> {
    let vocab = asset("LLAMUX_VOCAB_DIR")?.join("ggml-vocab-llama-spm.gguf");
    let p = dir.join("tiny.gguf");
    llamux().args(["synth", "--shape", "tiny", "--vocab"]).arg(&vocab).arg("-o").arg(&p).assert().success();
    Some(p)
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Exit code 1 and a single `llamux: error:` line containing `needle`.
fn fails_with(cmd: &mut Command, needle: &str) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("llamux: error:") && err.contains(needle), "wanted {needle:?}: {err}");
}

#[test]
fn bench_json_lines_have_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = tiny_model(dir.path()) else { return };
    let info: Value =
        serde_json::from_slice(&llamux().arg("info").arg(&m).arg("--json").output().unwrap().stdout).unwrap();
    let hp = &info["hparams"];
    let out = llamux()
        .arg("bench")
        .arg("-m")
        .arg(&m)
        .args(["-p", "8", "-n", "8", "-r", "1", "-t", "1,2", "--json"])
        .env("LLAMUX_ISA", "scalar")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = lines(&out.stdout);
    let tests: Vec<(&str, u64)> =
        rows.iter().map(|j| (j["test"].as_str().unwrap(), j["threads"].as_u64().unwrap())).collect();
    assert_eq!(tests, [("pp8", 1), ("tg8", 1), ("pp8", 2), ("tg8", 2)]);
    let model_bytes: u64 =
        info["quantization"].as_object().unwrap().values().map(|q| q["bytes"].as_u64().unwrap()).sum();
    // The KV cache holds prompt + generated tokens: K and V, f16, every layer.
    let kv_dim = hp["n_head_kv"].as_u64().unwrap() * hp["head_dim"].as_u64().unwrap();
    let kv_bytes = 2 * hp["n_layer"].as_u64().unwrap() * 16 * kv_dim * 2;
    for j in &rows {
        for key in ["model", "model_bytes", "isa", "threads", "test", "n_prompt", "n_gen", "stddev", "samples"] {
            assert!(!j[key].is_null(), "{key} missing: {j}");
        }
        for key in ["bytes_per_token", "gb_per_s", "peak_rss_bytes", "kv_cache_bytes"] {
            assert!(!j[key].is_null(), "{key} missing: {j}");
        }
        assert_eq!(j["isa"], "scalar", "LLAMUX_ISA is applied");
        assert_eq!(j["model_bytes"].as_u64().unwrap(), model_bytes);
        assert_eq!(j["kv_cache_bytes"].as_u64().unwrap(), kv_bytes);
        assert_eq!(j["samples"].as_array().unwrap().len(), 1);
        let bpt = j["bytes_per_token"].as_u64().unwrap();
        assert!(bpt > 0 && bpt < model_bytes, "every matrix but the embedding table: {bpt} of {model_bytes}");
        let pp = j["test"] == "pp8";
        let rate = if pp { &j["pp_tokens_per_s"] } else { &j["tg_tokens_per_s"] };
        assert!(rate.as_f64().unwrap().is_finite(), "{j}");
        assert_eq!((j["n_prompt"].as_u64().unwrap(), j["n_gen"].as_u64().unwrap()), if pp { (8, 0) } else { (0, 8) });
    }
    // The same model gives the same bytes per token whatever runs it; -p 0 skips pp.
    let out =
        llamux().arg("bench").arg("-m").arg(&m).args(["-p", "0", "-n", "4", "-r", "2", "--json"]).output().unwrap();
    assert!(out.status.success());
    let rows2 = lines(&out.stdout);
    assert_eq!(rows2.len(), 1);
    assert_eq!(rows2[0]["test"], "tg4");
    assert_eq!(rows2[0]["samples"].as_array().unwrap().len(), 2);
    assert_eq!(rows2[0]["bytes_per_token"], rows[0]["bytes_per_token"]);
    // --sessions N: N sessions decode together, tokens/s is their aggregate.
    let out = llamux()
        .arg("bench")
        .arg("-m")
        .arg(&m)
        .args(["-p", "0", "-n", "4", "-r", "1", "--sessions", "3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows3 = lines(&out.stdout);
    assert_eq!((rows3.len(), &rows3[0]["test"], &rows3[0]["sessions"]), (1, &"tg4x3".into(), &3.into()));
    assert!(rows3[0]["tg_tokens_per_s"].as_f64().unwrap() > 0.0);
    // The text form is a markdown table with one row per test.
    let out = llamux().arg("bench").arg("-m").arg(&m).args(["-p", "4", "-n", "0", "-r", "1"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let table: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(table.len(), 3, "{text}");
    assert!(table[0].contains("t/s") && table[1].contains("---:") && table[2].contains("pp4"), "{text}");
}

#[test]
fn bench_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = tiny_model(dir.path()) else { return };
    let bench = |args: &[&str]| {
        let mut c = llamux();
        c.arg("bench").arg("-m").arg(&m).args(args);
        c
    };
    fails_with(&mut bench(&["-t", "0"]), "thread counts");
    fails_with(&mut bench(&["-t", "1,0"]), "thread counts");
    fails_with(&mut bench(&["-r", "0"]), "-r");
    fails_with(&mut bench(&["-p", "8", "-n", "8", "-c", "10"]), "context of 16 tokens");
    fails_with(&mut bench(&["-p", "100000000", "-n", "1"]), "training context");
    fails_with(&mut bench(&["-p", "0", "-n", "0"]), "nothing to measure");
    fails_with(&mut bench(&["--sessions", "0"]), "--sessions");
    fails_with(&mut bench(&["--sessions", "100000"]), "--sessions");
    fails_with(bench(&["-p", "1", "-n", "1"]).env("LLAMUX_ISA", "sse9"), "LLAMUX_ISA");
    fails_with(llamux().args(["bench", "-m", "/no/such/model.gguf"]), "not a known model name");
}

#[test]
fn mem_bw_reads_the_buffer_at_each_thread_count() {
    let out = llamux()
        .args(["bench", "--mem-bw", "--mem-bw-mib", "8", "--mem-bw-passes", "2", "-t", "1,2", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = lines(&out.stdout);
    assert_eq!(rows.iter().map(|j| j["threads"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    for j in &rows {
        assert_eq!(j["test"], "mem_bw");
        assert_eq!(j["buffer_bytes"].as_u64().unwrap(), 8 << 20);
        assert_eq!(j["samples"].as_array().unwrap().len(), 2);
        assert!(j["gb_per_s"].as_f64().unwrap().is_finite());
    }
    // A single -t N measures 1..=N.
    let out =
        llamux().args(["bench", "--mem-bw", "--mem-bw-mib", "4", "--mem-bw-passes", "1", "-t", "3"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with('|')).count(), 2 + 3, "{text}");
    fails_with(llamux().args(["bench", "--mem-bw", "--mem-bw-mib", "0"]), "--mem-bw-mib");
    fails_with(llamux().args(["bench", "--mem-bw", "--mem-bw-passes", "0"]), "--mem-bw-passes");
    fails_with(llamux().args(["bench", "--mem-bw", "-t", "0"]), "thread counts");
}

#[test]
fn a_closed_stdout_ends_the_bench_without_a_panic() {
    use std::process::{Command as Std, Stdio};
    let bin = assert_cmd::cargo::cargo_bin("llamux");
    // The read end is closed before the child starts: its first write fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = Std::new(bin)
        .args(["bench", "--mem-bw", "--mem-bw-mib", "4", "--mem-bw-passes", "1", "-t", "1"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    // Ended by SIGPIPE (13), as Unix tools are.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(13), "{:?}: {err}", out.status);
}

#[test]
fn info_system_reports_tiers_and_honours_llamux_isa() {
    let out = llamux().args(["info", "--system", "--json"]).env_remove("LLAMUX_ISA").output().unwrap();
    assert!(out.status.success());
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tiers: Vec<&str> = j["isa_available"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tiers[0], "scalar");
    assert_eq!(j["isa"], j["isa_best"]);
    assert!(tiers.contains(&j["isa"].as_str().unwrap()));
    assert!(j["default_threads"].as_u64().unwrap() >= 1);
    assert!(j["features"].as_object().unwrap().contains_key("avx2"));
    for tier in &tiers {
        let out = llamux().args(["info", "--system", "--json"]).env("LLAMUX_ISA", tier).output().unwrap();
        assert!(out.status.success());
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j["isa"], *tier);
    }
    let text = llamux().args(["info", "--system"]).env("LLAMUX_ISA", "SCALAR").output().unwrap();
    assert!(String::from_utf8(text.stdout).unwrap().contains("isa in use:    scalar (LLAMUX_ISA=SCALAR)"));
    for bad in ["avx9", "scalar,avx2"] {
        fails_with(llamux().args(["info", "--system"]).env("LLAMUX_ISA", bad), "is not a kernel tier");
    }
    // A tier this CPU lacks (neon on x86-64, avx2 elsewhere) is refused.
    let missing = ["neon", "avx2", "avx512"].into_iter().find(|t| !tiers.contains(t)).unwrap();
    fails_with(llamux().args(["info", "--system"]).env("LLAMUX_ISA", missing), "cannot run");
}
