//! `llamux`: inspect, fetch and synthesize GGUF models for the Llamux engine.

mod bench;
mod chat;
mod info;
mod perplexity;
mod pull;
mod quantize;
mod run;
mod serve;
mod sign;
mod synth;
mod tokenize;

use anyhow::Result;
// Model names, the cache, mapping and the thread pool are shared with the tools.
use clap::{Parser, Subcommand};
pub(crate) use llamux_client::models::{mapped, pool, registry};
use std::path::PathBuf;
use std::process::ExitCode;

/// Large buffers (the weights' copy, the KV caches) in transparent huge pages.
#[cfg(not(test))]
#[global_allocator]
static ALLOC: llamux_client::models::huge_pages::HugePageAlloc = llamux_client::models::huge_pages::HugePageAlloc;

/// The Llamux command-line tool.
#[derive(Parser)]
#[command(name = "llamux", version, about = "Run and inspect quantized GGUF language models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt, streamed to stdout.
    Run(run::RunArgs),
    /// Chat with a model (its chat template when it has one).
    Chat(chat::ChatArgs),
    /// Serve the model over an OpenAI-compatible HTTP API (continuous batching).
    Serve(serve::ServeArgs),
    /// Perplexity of a text file, computed as llama.cpp's llama-perplexity does.
    Perplexity(perplexity::PerplexityArgs),
    /// Split text into token ids and pieces.
    Tokenize(tokenize::TokenizeArgs),
    /// Turn token ids back into text.
    Detokenize(tokenize::DetokenizeArgs),
    /// Measure prompt and generation speed (llama-bench style), or memory bandwidth with --mem-bw.
    Bench(bench::BenchArgs),
    /// Show a model's architecture, hyper-parameters, quantization mix, tokenizer and tensors.
    Info(info::InfoArgs),
    /// Download a known model (or asset) into the cache and verify its digest.
    Pull(pull::PullArgs),
    /// Write a llama-architecture GGUF model with seeded random weights and a real vocabulary.
    Synth(synth::SynthArgs),
    /// Requantize a model to a llama.cpp file type (llama.cpp's per-tensor mix, or --pure).
    Quantize(quantize::QuantizeArgs),
    /// List the known model names and where they are cached.
    Models,
    /// Make an Ed25519 key pair for signing models (KEY, mode 0600, and KEY.pub).
    Keygen(sign::KeygenArgs),
    /// Sign a model: an Ed25519 signature of its SHA-256, written to MODEL.sig.
    Sign(sign::SignArgs),
    /// Check a model's signature against the trusted key.
    Verify(sign::VerifyArgs),
}

/// Commands whose reader goes away (`llamux info MODEL | head -1`) end quietly, killed by
/// SIGPIPE as Unix tools are, instead of panicking in `println!` (Rust ignores SIGPIPE). The
/// server keeps it ignored: a client hanging up is an `EPIPE` on its socket, not the end.
fn quiet_on_closed_stdout() {
    // SAFETY: sets the default disposition of one signal, before any thread is started.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        quiet_on_closed_stdout();
    }
    if let Err(e) = select_isa(std::env::var_os("LLAMUX_ISA")) {
        eprintln!("llamux: error: {e:#}");
        return ExitCode::FAILURE;
    }
    let result: Result<()> = match cli.command {
        Command::Bench(a) => bench::run(a),
        Command::Run(a) => run::run(a),
        Command::Chat(a) => chat::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Perplexity(a) => perplexity::run(a),
        Command::Tokenize(a) => tokenize::tokenize(a),
        Command::Detokenize(a) => tokenize::detokenize(a),
        Command::Info(a) => info::run(a),
        Command::Pull(a) => pull::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Quantize(a) => quantize::run(a),
        Command::Models => registry::list(),
        Command::Keygen(a) => sign::keygen(a),
        Command::Sign(a) => sign::sign(a),
        Command::Verify(a) => sign::verify(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`llamux bench | head`): nothing left to say to it.
        Err(e) if is_broken_pipe(&e) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("llamux: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Applies `LLAMUX_ISA` (`scalar`, `avx2`, `avx512`, `neon`; unset or empty: the CPU's best).
fn select_isa(var: Option<std::ffi::OsString>) -> Result<()> {
    use llamux_core::isa::{self, Isa};
    let Some(var) = var.filter(|v| !v.is_empty()) else { return Ok(()) };
    let name = var.to_string_lossy();
    let runs = || isa::Simd::available().map(|s| s.isa().name()).collect::<Vec<_>>().join(", ");
    let Some(tier) = Isa::from_name(&name) else {
        let all: Vec<_> = Isa::ALL.iter().map(|i| i.name()).collect();
        anyhow::bail!("LLAMUX_ISA={name:?} is not a kernel tier (one of {}; this CPU runs {})", all.join(", "), runs());
    };
    isa::set(tier).map_err(|e| anyhow::anyhow!("LLAMUX_ISA={}: {e} (it runs {})", tier.name(), runs()))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// A model given by `-m`: a path, or a known name (pulled on first use).
pub(crate) fn resolve_model(arg: &str) -> Result<PathBuf> {
    registry::resolve(arg)
}
