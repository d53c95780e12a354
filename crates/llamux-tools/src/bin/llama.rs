//! `llama "QUESTION"`: the system assistant. It measures the system, prints what it found (ranked,
//! with numbers), then streams the model's explanation of those facts. A request for an action
//! ("kill the process eating my CPU") becomes one allowlisted action with arguments from the
//! measurements; it is shown, and runs confined only after the user answers `y`.

use clap::Parser;
use llamux_client::{ClientError, Message, Request, Role};
use llamux_tools::action::{self, Action};
use llamux_tools::audit::Audit;
use llamux_tools::common::{self, CommonArgs};
use llamux_tools::findings::{self, Finding};
use llamux_tools::guard::Guard;
use llamux_tools::intent::{self, Intent};
use llamux_tools::probe::{self, Snapshot};
use serde_json::json;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Large buffers (the weights' copy, the KV caches) in transparent huge pages.
#[cfg(not(test))]
#[global_allocator]
static ALLOC: llamux_client::models::huge_pages::HugePageAlloc = llamux_client::models::huge_pages::HugePageAlloc;

/// The system assistant: measures the system, explains it, and proposes allowlisted actions.
#[derive(Parser, Debug)]
#[command(name = "llama", version)]
struct Args {
    /// A question ("why is my system slow?") or a request ("kill the process eating my CPU"); `-` reads it from standard input.
    question: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
    /// Approve the proposed action without asking.
    #[arg(long)]
    yes: bool,
    /// Show the proposed action only; never run it.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Print the findings only, without the model's explanation.
    #[arg(long = "no-model")]
    no_model: bool,
    /// How long to measure CPU use, in milliseconds (default: tools.sample_ms, 500).
    #[arg(long = "sample-ms")]
    sample_ms: Option<u64>,
}

/// The fixed start of every explanation request: instructions, then one worked example (small
/// models follow an example better than a rule). Its KV state is cached by the in-process backend.
const SYSTEM: &str = "You are llama, the assistant of a Linux computer. You get facts measured on this computer and \
a question. Answer in one or two short sentences: name the process or resource from the facts that explains the \
problem, with its numbers, and say what the user could do. Use only the facts; never invent numbers or commands.";
const EXAMPLE_FACTS: &str =
    "Facts:\n- pid 812 `ffmpeg` uses 180% of one CPU (90% of all 2 CPUs)\n- load average 3.10 on 2 \
CPUs (1.6 runnable tasks per CPU)\n- overall: load 3.10/2.00/1.20 on 2 CPUs, CPUs 5% idle, memory 40% used (4.0 GiB \
available), swap 0% used\n\nQuestion: why is my computer slow?";
const EXAMPLE_ANSWER: &str = "Your computer is slow because pid 812 `ffmpeg` uses 180% of one CPU, which keeps both \
CPUs busy. If you do not need it, ask me to kill the process eating your CPU.";

fn main() -> ExitCode {
    common::quiet_on_closed_stdout();
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => common::fail("llama", e),
    }
}

fn print_findings(out: &mut impl Write, snap: &Snapshot, found: &[Finding], exclude: &[u32]) -> std::io::Result<()> {
    writeln!(out, "Findings (CPU sampled over {:.1} s):", snap.sample.as_secs_f64())?;
    for (i, f) in found.iter().enumerate() {
        writeln!(out, "  {}. {}", i + 1, f.text)?;
    }
    let top: Vec<_> = findings::blameable(snap, exclude).take(5).collect();
    if !top.is_empty() {
        writeln!(out, "Top processes by CPU:")?;
        for p in top {
            writeln!(
                out,
                "  pid {:>7} {:<16} {:>5.1}% CPU {:>10} resident",
                p.pid,
                p.comm,
                p.cpu_pct,
                findings::human(p.rss)
            )?;
        }
    }
    out.flush()
}

fn run(a: Args) -> Result<ExitCode, ClientError> {
    let mut cfg = a.common.config()?;
    if let Some(ms) = a.sample_ms {
        cfg.tools.sample_ms = ms;
        cfg.validate().map_err(ClientError::Config)?;
    }
    let question = common::prompt_text(a.question.as_deref(), cfg.limits.max_prompt_bytes, "question")?;
    let exclude = probe::ancestors(std::process::id());
    // The intent needs the process list (a pid or name in the request), so measure first.
    let snap = probe::snapshot(Duration::from_millis(cfg.tools.sample_ms));
    let found = findings::analyze(&snap, &exclude);
    let intent = intent::classify(&question, &snap, &exclude);
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| ClientError::Cancelled(format!("writing the answer: {e}"));
    if intent != Intent::Question {
        print_findings(&mut out, &snap, &found, &exclude).map_err(io)?;
        return propose(&cfg, &a, &question, &intent, &snap, &exclude, &mut out);
    }
    // Questions: the model must be there before anything is printed.
    let mut backend = if a.no_model { None } else { Some(common::connect(&cfg)?) };
    print_findings(&mut out, &snap, &found, &exclude).map_err(io)?;
    let Some(b) = backend.as_mut() else { return Ok(ExitCode::SUCCESS) };
    let facts = findings::facts_text(&snap, &found);
    let user = format!("Facts:\n{facts}\nQuestion: {question}");
    let messages = vec![
        Message::new(Role::System, SYSTEM),
        Message::new(Role::User, EXAMPLE_FACTS),
        Message::new(Role::Assistant, EXAMPLE_ANSWER),
        Message::new(Role::User, user),
    ];
    let mut req = Request::chat(&cfg, messages);
    req.max_tokens = req.max_tokens.min(120);
    writeln!(out, "Explanation ({}, {} backend):", cfg.model, b.kind()).map_err(io)?;
    out.flush().map_err(io)?;
    // Sentences quoting numbers that are not in the facts are left out.
    let mut guard = Guard::new(&format!("{facts}\n{question}"));
    let mut at_line_start = true;
    let mut emit = |out: &mut std::io::StdoutLock<'_>, text: &str| -> Result<(), ClientError> {
        let mut s = String::new();
        for c in text.chars() {
            if at_line_start && c != '\n' {
                s.push_str("  ");
            }
            at_line_start = c == '\n';
            s.push(c);
        }
        out.write_all(s.as_bytes()).and_then(|()| out.flush()).map_err(io)
    };
    b.generate(&req, &mut |text| {
        let s = guard.push(text);
        emit(&mut out, &s)
    })?;
    let rest = guard.finish();
    emit(&mut out, &rest)?;
    if !at_line_start {
        writeln!(out).map_err(io)?;
    }
    if guard.dropped > 0 {
        writeln!(out, "  ({} sentence(s) quoting numbers not in the findings were left out.)", guard.dropped)
            .map_err(io)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn propose(
    cfg: &llamux_client::Config,
    a: &Args,
    question: &str,
    intent: &Intent,
    snap: &Snapshot,
    exclude: &[u32],
    out: &mut impl Write,
) -> Result<ExitCode, ClientError> {
    let io = |e: std::io::Error| ClientError::Cancelled(format!("writing the answer: {e}"));
    let act: Action = match action::resolve(intent, snap, exclude) {
        Ok(Some(act)) => act,
        Ok(None) => return Ok(ExitCode::SUCCESS),
        Err(why) => {
            writeln!(out, "No action: {why}.").map_err(io)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut audit = Audit::open(cfg).map_err(ClientError::Config)?;
    let base = json!({"tool": "llama", "request": question, "action": act.to_json()});
    let record = |audit: &mut Audit, decision: &str, extra: serde_json::Value| {
        let mut ev = base.clone();
        ev["decision"] = json!(decision);
        if let (Some(o), Some(x)) = (ev.as_object_mut(), extra.as_object()) {
            o.extend(x.clone());
        }
        audit.record(ev).map_err(ClientError::Config)
    };
    record(&mut audit, "proposed", json!({}))?;
    writeln!(out, "Proposed action: {}", act.describe()).map_err(io)?;
    writeln!(
        out,
        "  command: {}  (run confined: no new privileges, seccomp, landlock, rlimits, no network)",
        act.command()
    )
    .map_err(io)?;
    if a.dry_run {
        writeln!(out, "Dry run: nothing was done.").map_err(io)?;
        record(&mut audit, "dry-run", json!({}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let approved = if a.yes {
        writeln!(out, "Approved by --yes.").map_err(io)?;
        true
    } else {
        write!(out, "Run it? [y/N] ").map_err(io)?;
        out.flush().map_err(io)?;
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line).unwrap_or(0);
        read > 0 && matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
    };
    if !approved {
        writeln!(out, "Not run.").map_err(io)?;
        record(&mut audit, "declined", json!({}))?;
        return Ok(ExitCode::SUCCESS);
    }
    record(&mut audit, if a.yes { "approved-by-flag" } else { "approved" }, json!({}))?;
    match act.execute(&cfg.tools.sandbox) {
        Ok(how) => {
            record(&mut audit, "executed", json!({"result": "ok", "sandbox": how}))?;
            writeln!(out, "Done: {} ({how}).", act.command()).map_err(io)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            record(&mut audit, "failed", json!({"result": e}))?;
            Err(ClientError::BadInput(format!("the action failed: {e}")))
        }
    }
}
