//! `llmstats [--json]`: the backend's counters — requests, tokens, decoding speed, first-token
//! latency (the kernel's `/proc/llamux/stats`, the server's `/metrics`, or the in-process
//! backend's lifetime counters).

use clap::Parser;
use llamux_client::ClientError;
use llamux_tools::common::{self, CommonArgs};
use std::process::ExitCode;

/// Engine statistics.
#[derive(Parser, Debug)]
#[command(name = "llmstats", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// One JSON object instead of `key: value` lines.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    common::main("llmstats", || run(Args::parse()))
}

fn run(a: Args) -> Result<(), ClientError> {
    let cfg = a.common.config()?;
    let mut b = common::connect(&cfg)?;
    let mut info = vec![("backend".to_string(), b.kind().name().to_string())];
    info.extend(b.stats()?);
    common::print_info(&info, a.json);
    Ok(())
}
