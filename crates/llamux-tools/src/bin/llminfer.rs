//! `llminfer [-m MODEL] "prompt"`: one answer, streamed to standard output, from whichever
//! backend is configured (the kernel module, a running `llamux serve`, or in-process).

use clap::Parser;
use llamux_client::{ClientError, Message, Request, Role};
use llamux_tools::common::{self, CommonArgs};
use std::io::Write;
use std::process::ExitCode;

/// Large buffers (the weights' copy, the KV caches) in transparent huge pages.
#[cfg(not(test))]
#[global_allocator]
static ALLOC: llamux_client::models::huge_pages::HugePageAlloc = llamux_client::models::huge_pages::HugePageAlloc;

/// One-shot inference, streamed.
#[derive(Parser, Debug)]
#[command(name = "llminfer", version)]
struct Args {
    /// The prompt; `-` reads it from standard input.
    prompt: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
    /// Longest answer, in tokens (default: limits.max_tokens).
    #[arg(short = 'n', long = "max-tokens")]
    max_tokens: Option<usize>,
    /// Temperature (0 = greedy; default: sampling.temperature).
    #[arg(long = "temp")]
    temp: Option<f32>,
    /// Random seed (default: sampling.seed).
    #[arg(long)]
    seed: Option<u64>,
    /// A system message before the prompt.
    #[arg(long)]
    system: Option<String>,
    /// Continue the prompt as plain text instead of chatting.
    #[arg(long)]
    raw: bool,
    /// Stop where this string begins (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Print one JSON object (text, finish reason, token counts, time) instead of streaming.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    common::main("llminfer", || run(Args::parse()))
}

fn run(a: Args) -> Result<(), ClientError> {
    let mut cfg = a.common.config()?;
    if let Some(n) = a.max_tokens {
        cfg.limits.max_tokens = n;
    }
    if let Some(t) = a.temp {
        cfg.sampling.temperature = t;
    }
    if let Some(s) = a.seed {
        cfg.sampling.seed = s;
    }
    cfg.validate().map_err(ClientError::Config)?;
    let prompt = common::prompt_text(a.prompt.as_deref(), cfg.limits.max_prompt_bytes, "prompt")?;
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(Message::new(Role::System, s.clone()));
    }
    messages.push(Message::new(Role::User, prompt));
    let mut req = Request::chat(&cfg, messages);
    req.raw = a.raw;
    req.stop = a.stop.clone();
    req.check(cfg.limits.max_prompt_bytes)?;
    let mut backend = common::connect(&cfg)?;
    let mut out = std::io::stdout().lock();
    let json = a.json;
    let outcome = backend.generate(&req, &mut |text| {
        if json {
            return Ok(());
        }
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| ClientError::Cancelled(format!("writing the answer: {e}")))
    })?;
    let io = |e: std::io::Error| ClientError::Cancelled(format!("writing the answer: {e}"));
    if json {
        let v = serde_json::json!({
            "backend": backend.kind(),
            "text": outcome.text,
            "finish_reason": outcome.finish,
            "prompt_tokens": outcome.prompt_tokens,
            "tokens": outcome.tokens,
            "cached_tokens": outcome.cached_tokens,
            "seconds": outcome.elapsed.as_secs_f64(),
        });
        writeln!(out, "{v}").map_err(io)?;
    } else {
        writeln!(out).map_err(io)?;
    }
    Ok(())
}
