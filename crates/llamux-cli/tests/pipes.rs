//! Every `llamux` command whose reader goes away (`llamux info MODEL | head -1`) ends quietly:
//! killed by SIGPIPE as Unix tools are, no panic, no error line. Commands that write only to
//! stderr (`synth`, `quantize`) finish normally.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "../../llamux-core/tests/common/mod.rs"]
mod common;

/// SIGPIPE's number on Linux.
const SIGPIPE: i32 = 13;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("llamux")
}

/// Runs `llamux ARGS` with stdout a pipe whose reader is closed; returns its status and stderr.
fn closed_stdout(args: &[&std::ffi::OsStr], stdin: &[u8]) -> (std::process::ExitStatus, String) {
    use std::io::Write;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child =
        Command::new(bin()).args(args).stdin(Stdio::piped()).stdout(writer).stderr(Stdio::piped()).spawn().unwrap();
    // The command may be gone before it reads: a failed write here is no error.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn synth_tiny(vocab: &Path, out: &Path) {
    let st = Command::new(bin())
        .args(["synth", "--shape", "tiny", "--vocab"])
        .arg(vocab)
        .arg("-o")
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn every_command_ends_quietly_on_a_closed_stdout() {
    let Some(vocabs) = common::asset("LLAMUX_VOCAB_DIR") else { return };
    let vocab = vocabs.join("ggml-vocab-llama-spm.gguf");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("tiny.gguf");
    synth_tiny(&vocab, &model);
    let text = d.join("text.txt");
    std::fs::write(&text, "Once upon a time there was a little model that read its own weights. ".repeat(40)).unwrap();
    let (m, v, t) = (model.as_os_str(), vocab.as_os_str(), text.as_os_str());
    let key = d.join("k");
    let key_pub = d.join("k.pub");
    let signed = d.join("signed.gguf");
    std::fs::copy(&model, &signed).unwrap();
    let (k, kp, s) = (key.as_os_str(), key_pub.as_os_str(), signed.as_os_str());
    let quantized = d.join("q.gguf");
    let synth_out = d.join("s.gguf");
    // (arguments, stdin, whether it writes to stdout)
    let cases: Vec<(Vec<&std::ffi::OsStr>, &[u8], bool)> = vec![
        (vec![os("info"), m], b"", true),
        (vec![os("info"), os("--json"), m], b"", true),
        (vec![os("info"), os("--system")], b"", true),
        (vec![os("tokenize"), os("-m"), v, os("Hello world")], b"", true),
        (vec![os("tokenize"), os("--json"), os("-m"), v, os("Hello world")], b"", true),
        (vec![os("detokenize"), os("-m"), v, os("1"), os("15043")], b"", true),
        (vec![os("run"), os("-m"), m, os("-p"), os("Once"), os("-n"), os("4"), os("-c"), os("64")], b"", true),
        (vec![os("run"), os("--json"), os("-m"), m, os("-p"), os("Once"), os("-n"), os("4")], b"", true),
        (vec![os("chat"), os("-m"), m, os("-n"), os("4")], b"Hello\n", true),
        (vec![os("perplexity"), os("-m"), m, os("-f"), t, os("-c"), os("64"), os("--chunks"), os("1")], b"", true),
        (
            vec![os("bench"), os("--json"), os("-m"), m, os("-p"), os("8"), os("-n"), os("4"), os("-r"), os("1")],
            b"",
            true,
        ),
        (vec![os("models")], b"", true),
        (vec![os("keygen"), os("-o"), k], b"", true),
        (vec![os("sign"), os("-m"), s, os("--key"), k], b"", true),
        (vec![os("verify"), os("-m"), s, os("--pubkey"), kp], b"", true),
        (vec![os("quantize"), m, quantized.as_os_str(), os("q8_0")], b"", false),
        (vec![os("synth"), os("--shape"), os("tiny"), os("--vocab"), v, os("-o"), synth_out.as_os_str()], b"", false),
    ];
    for (args, stdin, writes) in cases {
        let shown: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
        let (status, stderr) = closed_stdout(&args, stdin);
        assert!(!stderr.contains("panicked"), "{shown:?}: {stderr}");
        assert!(!stderr.contains("error"), "{shown:?}: {stderr}");
        if writes {
            assert_eq!(status.signal(), Some(SIGPIPE), "{shown:?}: {status:?}: {stderr}");
        } else {
            assert!(status.success(), "{shown:?}: {status:?}: {stderr}");
        }
    }
}
