//! `llama-mon`: a live dashboard of the engine — tokens per second and time to first token
//! (sparklines), sessions and queue, KV-cache and model memory, quotas, the last requests from the
//! audit log, the system's CPU and memory. `p` pauses, `q` (or Esc, Ctrl-C) quits.
//! `--once --json` prints one snapshot (two samples `--interval-ms` apart) for scripts.

use clap::Parser;
use llamux_client::{Backend, ClientError, Config};
use llamux_tools::common::{self, CommonArgs};
use llamux_tools::findings::human;
use llamux_tools::monitor::{self, Sample, View};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Gauge, List, ListItem, Paragraph, Sparkline};
use ratatui::Frame;
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Live dashboard of the Llamux engine.
#[derive(Parser, Debug)]
#[command(name = "llama-mon", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Print one snapshot and exit (with --json: one JSON object).
    #[arg(long)]
    once: bool,
    /// With --once: JSON instead of `key: value` lines.
    #[arg(long)]
    json: bool,
    /// Time between samples, in milliseconds (100 to 60000).
    #[arg(long = "interval-ms", default_value_t = 1000)]
    interval_ms: u64,
}

fn main() -> ExitCode {
    common::main("llama-mon", || run(Args::parse()))
}

fn run(a: Args) -> Result<(), ClientError> {
    if !(100..=60_000).contains(&a.interval_ms) {
        return Err(ClientError::BadInput(format!("--interval-ms {} is outside 100..60000", a.interval_ms)));
    }
    if a.json && !a.once {
        return Err(ClientError::BadInput("--json goes with --once".into()));
    }
    let cfg = a.common.config()?;
    let mut b = common::connect(&cfg)?;
    let interval = Duration::from_millis(a.interval_ms);
    if a.once {
        let first = monitor::sample(b.as_mut())?;
        std::thread::sleep(interval);
        let second = monitor::sample(b.as_mut())?;
        let v = monitor::view(&cfg, Some(&first), &second, monitor::recent_audit(&cfg, 5));
        if a.json {
            println!("{}", serde_json::to_string(&v).map_err(|e| ClientError::BadInput(e.to_string()))?);
        } else {
            for l in text_lines(&v) {
                println!("{l}");
            }
        }
        return Ok(());
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(ClientError::BadInput("not a terminal: the dashboard needs one (or use --once --json)".into()));
    }
    let mut term =
        ratatui::try_init().map_err(|e| ClientError::BadInput(format!("cannot set up the terminal: {e}")))?;
    let r = dashboard(&mut term, &cfg, b.as_mut(), interval);
    ratatui::restore();
    r
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "n/a".to_string(), |x| x.to_string())
}

fn bytes(v: Option<u64>) -> String {
    v.map_or_else(|| "n/a".to_string(), human)
}

fn text_lines(v: &View) -> Vec<String> {
    let mut l = vec![
        format!("backend: {}", v.backend),
        format!("model: {}", opt(v.model.as_deref())),
        format!("tokens_per_s: {}", opt(v.tokens_per_s)),
        format!("reported_tokens_per_s: {}", opt(v.reported_tokens_per_s)),
        format!("first_token_ms: {}", opt(v.first_token_ms.map(|x| format!("{x:.1}")))),
        format!("requests: {}", opt(v.requests)),
        format!("sessions: {}/{}", opt(v.sessions), opt(v.max_sessions)),
        format!("queue: {}", opt(v.queue)),
        format!("kv_bytes: {}", opt(v.kv_bytes)),
        format!("model_bytes: {}", opt(v.model_bytes)),
        format!("cpu_pct: {}", opt(v.system.cpu_pct)),
        format!("mem_used_pct: {}", v.system.mem_used_pct),
    ];
    l.extend(v.quotas.iter().map(|(k, q)| format!("quota {k}: {q}")));
    l.extend(v.recent.iter().map(|e| format!("recent: {}", monitor::audit_line(e))));
    l
}

struct History {
    tps: VecDeque<u64>,
    ttft: VecDeque<u64>,
}

impl History {
    fn push(&mut self, v: &View) {
        const KEEP: usize = 240;
        // Sparklines take integers: hundredths of a token per second, tenths of a millisecond.
        self.tps.push_back(v.tokens_per_s.map_or(0, |x| (x * 100.0).round() as u64));
        self.ttft.push_back(v.first_token_ms.map_or(0, |x| (x * 10.0).round() as u64));
        for q in [&mut self.tps, &mut self.ttft] {
            while q.len() > KEEP {
                q.pop_front();
            }
        }
    }
}

fn dashboard(
    term: &mut ratatui::DefaultTerminal,
    cfg: &Config,
    b: &mut dyn Backend,
    interval: Duration,
) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::BadInput(format!("terminal: {e}"));
    let mut prev: Option<Sample> = None;
    let mut view: Option<View> = None;
    let mut error: Option<String> = None;
    let mut hist = History { tps: VecDeque::new(), ttft: VecDeque::new() };
    let mut paused = false;
    let mut next = Instant::now();
    loop {
        if !paused && Instant::now() >= next {
            next = Instant::now() + interval;
            match monitor::sample(b) {
                Ok(s) => {
                    let v = monitor::view(cfg, prev.as_ref(), &s, monitor::recent_audit(cfg, 8));
                    if prev.is_some() {
                        hist.push(&v);
                    }
                    view = Some(v);
                    prev = Some(s);
                    error = None;
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        term.draw(|f| draw(f, view.as_ref(), &hist, paused, error.as_deref())).map_err(io)?;
        let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(250));
        if event::poll(wait).map_err(io)? {
            if let Event::Key(k) = event::read().map_err(io)? {
                if k.kind != KeyEventKind::Press {
                    continue;
                }
                match k.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
                    KeyCode::Char('p') | KeyCode::Char(' ') => {
                        paused = !paused;
                        // Rates across a pause would average over it: start again from the next sample.
                        prev = None;
                        next = Instant::now();
                    }
                    _ => {}
                }
            }
        }
    }
}

fn draw(f: &mut Frame<'_>, v: Option<&View>, hist: &History, paused: bool, error: Option<&str>) {
    let [title, sparks, panels, system, recent] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(f.area());
    let state = if paused { " PAUSED ".black().on_yellow() } else { " live ".black().on_green() };
    let head = match v {
        Some(v) => format!(" llama-mon — {} backend — {} ", v.backend, opt(v.model.as_deref())),
        None => " llama-mon — sampling… ".to_string(),
    };
    f.render_widget(Paragraph::new(Line::from(vec![head.bold(), state, "  p pause  q quit".dark_gray()])), title);
    let Some(v) = v else { return };
    let [left, right] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(sparks);
    let tps: Vec<u64> = hist.tps.iter().copied().collect();
    let ttft: Vec<u64> = hist.ttft.iter().copied().collect();
    spark(f, left, &format!("tokens/s {}", opt(v.tokens_per_s)), &tps, Color::Green);
    spark(
        f,
        right,
        &format!("first token {} ms", opt(v.first_token_ms.map(|x| format!("{x:.1}")))),
        &ttft,
        Color::Cyan,
    );

    let [engine, quotas] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(panels);
    let e = vec![
        Line::from(format!("sessions   {} / {}", opt(v.sessions), opt(v.max_sessions))),
        Line::from(format!("queue      {}", opt(v.queue))),
        Line::from(format!("requests   {}   tokens {}", opt(v.requests), opt(v.tokens))),
        Line::from(format!("engine     {} tok/s (as reported)", opt(v.reported_tokens_per_s))),
        Line::from(format!("KV cache   {}", bytes(v.kv_bytes))),
        Line::from(format!("model      {}", bytes(v.model_bytes))),
    ];
    f.render_widget(Paragraph::new(e).block(Block::bordered().title(" engine ")), engine);
    let q: Vec<Line> = v.quotas.iter().map(|(k, x)| Line::from(format!("{k:<18} {x}"))).collect();
    f.render_widget(Paragraph::new(q).block(Block::bordered().title(" quotas ")), quotas);

    let [cpu, mem] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(system);
    let cpu_pct = v.system.cpu_pct.unwrap_or(0.0).clamp(0.0, 100.0);
    f.render_widget(
        Gauge::default()
            .block(Block::bordered().title(format!(
                " CPU ({} CPUs, load {:.2} {:.2} {:.2}) ",
                v.system.cpus, v.system.load[0], v.system.load[1], v.system.load[2]
            )))
            .gauge_style(Style::default().fg(Color::Yellow))
            .ratio(cpu_pct / 100.0)
            .label(format!("{cpu_pct:.1}%")),
        cpu,
    );
    f.render_widget(
        Gauge::default()
            .block(Block::bordered().title(format!(
                " memory ({} of {} available) ",
                human(v.system.mem_available),
                human(v.system.mem_total)
            )))
            .gauge_style(Style::default().fg(Color::Magenta))
            .ratio((v.system.mem_used_pct / 100.0).clamp(0.0, 1.0))
            .label(format!("{:.1}% used", v.system.mem_used_pct)),
        mem,
    );
    let mut items: Vec<ListItem> = v.recent.iter().rev().map(|e| ListItem::new(monitor::audit_line(e))).collect();
    if items.is_empty() {
        items.push(ListItem::new("(no requests in the audit log)"));
    }
    if let Some(err) = error {
        items.insert(0, ListItem::new(format!("backend error: {err}")).red());
    }
    f.render_widget(List::new(items).block(Block::bordered().title(" last requests (audit log) ")), recent);
}

fn spark(f: &mut Frame<'_>, area: Rect, title: &str, data: &[u64], color: Color) {
    // The newest samples, as many as fit.
    let w = area.width.saturating_sub(2) as usize;
    let shown = &data[data.len().saturating_sub(w)..];
    f.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(format!(" {title} ")))
            .data(shown)
            .style(Style::default().fg(color)),
        area,
    );
}
