//! `llminfer`, `llmctl`, `llmstats` (and `llama`'s refusals) driven as binaries: bad input gives
//! one line and a non-zero exit; with SmolLM2 the in-process backend answers, caches the state of a
//! system prompt across commands without changing the answer, counts what it did, and a running
//! `llamux serve` gives the same greedy answer through the same API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

#[path = "../../llamux-core/tests/common/mod.rs"]
mod common;
use common::asset;

const TOOLS: [&str; 4] = [
    env!("CARGO_BIN_EXE_llama"),
    env!("CARGO_BIN_EXE_llminfer"),
    env!("CARGO_BIN_EXE_llmctl"),
    env!("CARGO_BIN_EXE_llmstats"),
];

/// An Ed25519 public key (made by `llamux keygen`).
const TRUSTED_KEY: &str = "35488de7071139db4b6dd1c6613d2325690b8a556383f80ff9363c683a486b34";

/// A command with its own state, audit log, prompt cache and no configuration files.
fn tool(bin: &str, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("LLAMUX_CONFIG", "")
        .env("LLAMUX_STATE_DIR", dir)
        .env("LLAMUX_AUDIT_LOG", dir.join("audit.log"))
        .env("LLAMUX_CACHE", dir.join("cache"))
        .env("LLAMUX_ACT_BIN", env!("CARGO_BIN_EXE_llamux-act"))
        .stdin(Stdio::null());
    c
}

fn with_stdin(c: &mut Command, input: &[u8]) -> Output {
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The tool may stop reading at its limit: a broken pipe is expected then.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Fails unless the command failed with exactly one line on stderr containing `needle`.
fn refused(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

#[test]
fn every_tool_has_help() {
    for bin in TOOLS {
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("--backend") && text.contains("Usage:"), "{bin}: {text}");
    }
}

#[test]
fn bad_input_gives_one_line_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |bin: &str, args: &[&str]| tool(bin, d).args(args).output().unwrap();
    let [llama, llminfer, llmctl, llmstats] = TOOLS;
    // Empty question or prompt.
    refused(&run(llama, &[""]), "the question is empty");
    refused(&run(llama, &["   "]), "the question is empty");
    refused(&run(llama, &[]), "no question given");
    refused(&run(llminfer, &[""]), "the prompt is empty");
    // 1 MB (through standard input: one argument cannot be that long).
    let big = vec![b'a'; 1 << 20];
    refused(&with_stdin(tool(llama, d).arg("-"), &big), "longer than 8192 bytes");
    refused(&with_stdin(tool(llminfer, d).arg("-"), &big), "longer than 8192 bytes");
    let long = "x".repeat(100_000);
    refused(&run(llminfer, &[&long]), "the prompt is 100000 bytes; the limit is 8192");
    // Unknown backend, in every tool.
    refused(&run(llama, &["--backend", "quantum", "why?"]), "unknown backend \"quantum\"");
    refused(&run(llminfer, &["--backend", "quantum", "hi"]), "unknown backend \"quantum\"");
    refused(&run(llmctl, &["--backend", "quantum", "status"]), "unknown backend \"quantum\"");
    refused(&run(llmstats, &["--backend", "quantum"]), "unknown backend \"quantum\"");
    // No model.
    let missing = d.join("missing.gguf");
    let m = missing.to_str().unwrap();
    refused(
        &run(llama, &["--backend", "in-process", "--sample-ms", "50", "-m", m, "why is my system slow?"]),
        "no model",
    );
    refused(&run(llminfer, &["--backend", "in-process", "-m", m, "hi"]), "no model");
    refused(&run(llmstats, &["--backend", "in-process", "-m", m]), "no model");
    refused(&run(llmctl, &["--backend", "in-process", "-m", m, "status"]), "no model");
    refused(&run(llminfer, &["--backend", "in-process", "-m", "", "hi"]), "the model name is empty");
    // A file that is not a model.
    let junk = d.join("junk.gguf");
    std::fs::write(&junk, b"not a model at all").unwrap();
    refused(&run(llminfer, &["--backend", "in-process", "-m", junk.to_str().unwrap(), "hi"]), "no model");
    // A trusted key configured: an unsigned model is refused before it is read as a model.
    let cfg = d.join("trust.toml");
    std::fs::write(&cfg, format!("trusted_key = \"{TRUSTED_KEY}\"\n")).unwrap();
    let out = tool(llminfer, d)
        .env("LLAMUX_CONFIG", &cfg)
        .args(["--backend", "in-process", "-m", junk.to_str().unwrap(), "hi"])
        .output()
        .unwrap();
    refused(&out, "junk.gguf is not signed (no ");
    std::fs::write(&cfg, "trusted_key = \"1234\"\n").unwrap();
    let out = tool(llminfer, d)
        .env("LLAMUX_CONFIG", &cfg)
        .args(["--backend", "in-process", "-m", junk.to_str().unwrap(), "hi"])
        .output()
        .unwrap();
    refused(&out, "cannot read the public key 1234");
    // Backends that are not there.
    refused(
        &run(llminfer, &["--backend", "serve", "--url", "http://127.0.0.1:9", "hi"]),
        "the serve backend is unavailable",
    );
    let out = tool(llminfer, d)
        .env("LLAMUX_PROC_DIR", d.join("no-proc"))
        .args(["--backend", "kernel", "hi"])
        .output()
        .unwrap();
    refused(&out, "the kernel backend is unavailable");
    // Bad configuration files and values.
    let cfg = d.join("config.toml");
    std::fs::write(&cfg, "modle = \"x\"\n").unwrap();
    refused(&tool(llminfer, d).env("LLAMUX_CONFIG", &cfg).arg("hi").output().unwrap(), "modle");
    std::fs::write(&cfg, "[limits]\nmax_tokens = 0\n").unwrap();
    refused(&tool(llmstats, d).env("LLAMUX_CONFIG", &cfg).output().unwrap(), "max_tokens");
    refused(&run(llminfer, &["--temp", "99", "hi"]), "temperature");
}

#[test]
fn llmctl_sets_and_shows_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("etc/config.toml");
    let ctl = |args: &[&str]| tool(TOOLS[2], dir.path()).env("LLAMUX_CONFIG", &cfg).args(args).output().unwrap();
    let out = ctl(&["config", "set", "limits.max_tokens", "42"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(ctl(&["config", "set", "sampling.temperature", "0.5"]).status.success());
    assert!(ctl(&["config", "set", "backend", "in-process"]).status.success());
    refused(&ctl(&["config", "set", "limits.max_tokens", "-3"]), "max_tokens");
    refused(&ctl(&["config", "set", "backend", "pigeon"]), "unknown backend");
    let show = String::from_utf8_lossy(&ctl(&["config", "show"]).stdout).into_owned();
    assert!(show.contains("max_tokens = 42"), "{show}");
    assert!(show.contains("temperature = 0.5"), "{show}");
    assert!(show.contains("backend = \"in-process\""), "{show}");
    assert!(show.contains(&cfg.display().to_string()), "{show}");
}

fn smollm2() -> Option<PathBuf> {
    asset("LLAMUX_SMOLLM2")
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

const QUESTION: &str = "What is the capital of France?";

#[test]
fn in_process_backend_answers_caches_and_counts() {
    let Some(model) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let m = model.to_str().unwrap();
    let run = |args: &[&str]| {
        tool(TOOLS[1], dir.path())
            .args(["--backend", "in-process", "-m", m, "--temp", "0"])
            .args(args)
            .output()
            .unwrap()
    };
    // Streamed text and the JSON answer are the same greedy tokens.
    let streamed = run(&["-n", "24", QUESTION]);
    assert!(streamed.status.success(), "{}", String::from_utf8_lossy(&streamed.stderr));
    let text = String::from_utf8_lossy(&streamed.stdout).trim_end().to_string();
    assert!(text.contains("Paris"), "{text}");
    let j = json_of(&run(&["-n", "24", "--json", QUESTION]));
    assert_eq!(j["text"].as_str().unwrap().trim_end(), text);
    assert_eq!(j["backend"], "in-process");
    assert!(j["tokens"].as_u64().unwrap() > 0);
    // A system prompt's state is stored by the first command and reused by the second: same answer.
    let sys =
        ["--system", "You are a geography teacher. Answer in one short sentence.", "-n", "24", "--json", QUESTION];
    let first = json_of(&run(&sys));
    let second = json_of(&run(&sys));
    assert_eq!(first["cached_tokens"], 0);
    assert!(second["cached_tokens"].as_u64().unwrap() >= 10, "{second}");
    assert_eq!(first["text"], second["text"]);
    assert!(std::fs::read_dir(dir.path().join("cache/prompt-cache")).unwrap().count() >= 1);
    // Stop strings end the answer before them.
    let j = json_of(&run(&["-n", "24", "--json", "--stop", "Paris", QUESTION]));
    assert!(!j["text"].as_str().unwrap().contains("Paris"), "{j}");
    // Counted: five requests so far.
    let stats =
        json_of(&tool(TOOLS[3], dir.path()).args(["--backend", "in-process", "-m", m, "--json"]).output().unwrap());
    assert_eq!(stats["backend"], "in-process");
    assert_eq!(stats["requests"], 5, "{stats}");
    assert!(stats["tokens"].as_u64().unwrap() > 0 && stats["cached_prompt_tokens"].as_u64().unwrap() >= 10, "{stats}");
    // Status names the model; load/unload are refused (no resident model) in one line.
    let st = json_of(
        &tool(TOOLS[2], dir.path()).args(["--backend", "in-process", "-m", m, "--json", "status"]).output().unwrap(),
    );
    assert_eq!(st["chat_template"], "chatml");
    assert_eq!(st["model"], m);
    refused(
        &tool(TOOLS[2], dir.path()).args(["--backend", "in-process", "-m", m, "unload"]).output().unwrap(),
        "cannot unload",
    );
    // A prompt longer than the context is refused in one line, before any generation.
    let cfg = dir.path().join("small.toml");
    std::fs::write(&cfg, "[limits]\nn_ctx = 64\n").unwrap();
    let long = "the quick brown fox ".repeat(50);
    let out = tool(TOOLS[1], dir.path())
        .env("LLAMUX_CONFIG", &cfg)
        .args(["--backend", "in-process", "-m", m, &long])
        .output()
        .unwrap();
    refused(&out, "but the context holds 64");
}

fn llamux_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LLAMUX_BIN") {
        return Some(PathBuf::from(p));
    }
    // Beside the tools (`cargo build -p llamux-cli` puts it there).
    let p = Path::new(env!("CARGO_BIN_EXE_llminfer")).with_file_name("llamux");
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("LLAMUX_REQUIRE_ASSETS").is_some() {
        panic!("no llamux binary: set LLAMUX_BIN");
    }
    eprintln!("skipped: no llamux binary (set LLAMUX_BIN)");
    None
}

#[test]
fn serve_backend_gives_the_in_process_answer() {
    let Some(model) = smollm2() else { return };
    let Some(llamux) = llamux_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(llamux)
        .args(["serve", "--port", "0", "-c", "512", "-t", "2", "--parallel", "2", "-m"])
        .arg(&model)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = server.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let addr = line[at + "listening on ".len()..].split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send(addr);
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(60)).expect("llamux serve did not start");
    let m = model.to_str().unwrap();
    let args = ["--temp", "0", "-n", "24", "--json", QUESTION];
    let via_serve =
        json_of(&tool(TOOLS[1], dir.path()).args(["--backend", "serve", "--url", &url]).args(args).output().unwrap());
    let in_process =
        json_of(&tool(TOOLS[1], dir.path()).args(["--backend", "in-process", "-m", m]).args(args).output().unwrap());
    assert_eq!(via_serve["backend"], "serve");
    assert_eq!(via_serve["text"], in_process["text"], "serve: {via_serve}\nin-process: {in_process}");
    assert_eq!(via_serve["tokens"], in_process["tokens"]);
    // Auto finds the server when no kernel module is loaded.
    let auto = json_of(
        &tool(TOOLS[1], dir.path())
            .env("LLAMUX_PROC_DIR", dir.path().join("no-proc"))
            .args(["--backend", "auto", "--url", &url])
            .args(args)
            .output()
            .unwrap(),
    );
    assert_eq!(auto["backend"], "serve");
    // Its statistics and status come through the same tools.
    let stats = String::from_utf8_lossy(
        &tool(TOOLS[3], dir.path()).args(["--backend", "serve", "--url", &url]).output().unwrap().stdout,
    )
    .into_owned();
    assert!(stats.contains("llamux_requests_total"), "{stats}");
    let st = String::from_utf8_lossy(
        &tool(TOOLS[2], dir.path()).args(["--backend", "serve", "--url", &url, "status"]).output().unwrap().stdout,
    )
    .into_owned();
    assert!(st.contains("backend: serve") && st.contains("status: ok"), "{st}");
    // Settings of the server are not changed through llmctl: one line.
    refused(
        &tool(TOOLS[2], dir.path())
            .args(["--backend", "serve", "--url", &url, "set", "max_tokens", "3"])
            .output()
            .unwrap(),
        "cannot change settings",
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// The kernel backend's status, statistics and settings files, as `llamux.ko` writes them (a
/// directory standing in for `/proc/llamux`; generation itself is tested in the VM).
#[test]
fn kernel_backend_reads_and_sets_the_module_files() {
    let dir = tempfile::tempdir().unwrap();
    let proc_dir = dir.path().join("proc");
    std::fs::create_dir(&proc_dir).unwrap();
    std::fs::write(proc_dir.join("prompt"), "").unwrap();
    std::fs::write(
        proc_dir.join("status"),
        "model: /lib/firmware/llamux/model.gguf\nbytes: 98362432\nvocab: 49152\nlayers: 30\ncontext_train: 8192\nsessions: 0/32\nthreads: 2\n",
    )
    .unwrap();
    std::fs::write(
        proc_dir.join("stats"),
        "requests: 7\ntokens: 512\ndecode_us: 1000000\ntokens_per_s: 512.000\nfirst_token_ms: 12\n",
    )
    .unwrap();
    std::fs::write(proc_dir.join("config"), "n_ctx=512\nmax_tokens=128\ntemp=0.000\n").unwrap();
    let k =
        |bin: &str, args: &[&str]| tool(bin, dir.path()).env("LLAMUX_PROC_DIR", &proc_dir).args(args).output().unwrap();
    // auto picks the kernel when its prompt file is there.
    let stats = json_of(&k(TOOLS[3], &["--json"]));
    assert_eq!(stats["backend"], "kernel");
    assert_eq!((stats["requests"].as_i64(), stats["tokens_per_s"].as_f64()), (Some(7), Some(512.0)), "{stats}");
    let st = String::from_utf8_lossy(&k(TOOLS[2], &["status"]).stdout).into_owned();
    assert!(st.contains("backend: kernel") && st.contains("sessions: 0/32"), "{st}");
    let lim = String::from_utf8_lossy(&k(TOOLS[2], &["limits"]).stdout).into_owned();
    assert!(lim.contains("kernel.max_tokens: 128"), "{lim}");
    assert!(k(TOOLS[2], &["set", "max_tokens", "64"]).status.success());
    assert_eq!(std::fs::read_to_string(proc_dir.join("config")).unwrap(), "max_tokens=64\n");
    refused(&k(TOOLS[2], &["set", "max tokens", "64"]), "not a key=value setting");
    refused(&k(TOOLS[2], &["load", "x.gguf"]), "loaded already");
    // The audit ring, as the module prints it.
    refused(&k(TOOLS[2], &["audit"]), "audit");
    let line = "seq=1 time=1764660000 uid=0 pid=42 comm=cat client=- prompt_sha256=00 tokens_in=5 tokens_out=24 outcome=completed\n";
    std::fs::write(proc_dir.join("audit"), line).unwrap();
    let out = k(TOOLS[2], &["audit"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), line);
}
