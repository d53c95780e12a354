//! `llamux`: inspect, fetch and synthesize GGUF models for the Llamux engine.

mod cache;
mod chat;
mod info;
mod mapped;
mod perplexity;
mod pool;
mod pull;
mod quantize;
mod registry;
mod run;
mod synth;
mod tokenize;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Perplexity of a text file, computed as llama.cpp's llama-perplexity does.
    Perplexity(perplexity::PerplexityArgs),
    /// Split text into token ids and pieces.
    Tokenize(tokenize::TokenizeArgs),
    /// Turn token ids back into text.
    Detokenize(tokenize::DetokenizeArgs),
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Chat(a) => chat::run(a),
        Command::Perplexity(a) => perplexity::run(a),
        Command::Tokenize(a) => tokenize::tokenize(a),
        Command::Detokenize(a) => tokenize::detokenize(a),
        Command::Info(a) => info::run(a),
        Command::Pull(a) => pull::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Quantize(a) => quantize::run(a),
        Command::Models => registry::list(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llamux: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A model given by `-m`: a path, or a known name (pulled on first use).
pub(crate) fn resolve_model(arg: &str) -> Result<PathBuf> {
    registry::resolve(arg)
}
