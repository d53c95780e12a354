//! `llamux serve`: an OpenAI-compatible HTTP server. HTTP runs on a small tokio runtime; one
//! engine thread owns the sessions and the thread pool and generates for every request at once
//! (continuous batching, `engine`). Handlers and engine talk through channels.

mod api;
mod engine;
mod metrics;
mod policy;

use crate::run::{context_len, Loaded, ModelArgs};
use anyhow::{bail, Context, Result};
use llamux_core::chat::ChatTemplate;
use llamux_core::gguf::Gguf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `llamux serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: any free port; the address is printed on stderr).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Requests generated together, each in its own session of -c tokens.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Requests that may wait for a session; beyond --parallel plus these, requests get 429.
    #[arg(long, default_value_t = 16)]
    queue: usize,
    /// Most tokens a request may generate (max_tokens; also the default of chat requests).
    #[arg(long = "max-tokens", default_value_t = 2048)]
    max_tokens: usize,
    /// Largest request body, in bytes.
    #[arg(long = "max-body", default_value_t = 1 << 20)]
    max_body: usize,
    /// Chat format (chatml, gemma, llama3, llama2, phi3) instead of the model's own.
    #[arg(long)]
    template: Option<String>,
    /// Requests one client address may have running or waiting at once (0: no limit); beyond,
    /// 429 with code quota_exceeded.
    #[arg(long = "quota-sessions", default_value_t = 0)]
    quota_sessions: u32,
    /// Tokens (prompt and generated) one client address may use per minute (0: no limit);
    /// beyond, 429 with code quota_exceeded until its count has drained.
    #[arg(long = "quota-tokens-per-min", default_value_t = 0)]
    quota_tokens_per_min: u32,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT before they are cancelled.
    #[arg(long = "shutdown-timeout", default_value_t = 10)]
    shutdown_timeout: u64,
}

/// Most sessions one server runs.
const MAX_PARALLEL: usize = 256;

/// Runs `llamux serve`.
pub fn run(a: ServeArgs) -> Result<()> {
    if a.parallel == 0 || a.parallel > MAX_PARALLEL {
        bail!("--parallel must be between 1 and {MAX_PARALLEL} (got {})", a.parallel);
    }
    if a.queue > 65_536 {
        bail!("--queue must be at most 65536 (got {})", a.queue);
    }
    if a.max_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    if a.max_body < 1024 {
        bail!("--max-body must be at least 1024 bytes");
    }
    // The model lives as long as the process: handlers and the engine borrow it for 'static.
    let loaded: &'static Loaded = Box::leak(Box::new(crate::run::open_model(&a.model.model)?));
    // Several requests decode together when --parallel allows it: the layout for batched steps.
    let workload = if a.parallel > 1 { crate::run::Workload::Batched } else { crate::run::Workload::Decode };
    let (model, tok) = loaded.bind(workload, crate::run::Residence::Copied)?;
    let template = match &a.template {
        Some(name) => {
            Some(ChatTemplate::from_name(name).ok_or_else(|| anyhow::anyhow!("unknown chat template {name}"))?)
        }
        None => Gguf::parse(loaded.bytes())?.get_str("tokenizer.chat_template").and_then(ChatTemplate::detect),
    };
    let n_ctx = context_len(&model, a.model.ctx)?;
    let model_id = model_id(&a.model.model);
    let n_vocab = model.hp.n_vocab;
    let model: &'static _ = Box::leak(Box::new(model));
    let tok: &'static _ = Box::leak(Box::new(tok));

    let metrics = Arc::new(metrics::Metrics::new(a.parallel, a.queue));
    let limits = llamux_trust::quota::Limits { sessions: a.quota_sessions, tokens_per_minute: a.quota_tokens_per_min };
    // Clients counted at once: those with requests in flight, and as many again still draining.
    let policy = Arc::new(policy::Policy::new(limits, 2 * (a.parallel + a.queue) + 64)?);
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let cfg = engine::EngineConfig {
        parallel: a.parallel,
        n_ctx,
        kv_type: a.model.kv_type.kv_type(),
        threads: a.model.threads,
        cpu_mask: a.model.cpu_mask.clone(),
    };
    let (m, c) = (metrics.clone(), cancel.clone());
    let engine = std::thread::Builder::new()
        .name("llamux-engine".into())
        .spawn(move || match engine::Engine::new(model, tok, &cfg, m, c) {
            Ok(mut e) => {
                let _ = ready_tx.send(Ok(e.threads()));
                e.run(&mut rx);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .context("cannot start the engine thread")?;
    let threads = ready_rx.recv().context("the engine thread failed to start")??;

    let app = Arc::new(api::App::new(
        tok,
        template,
        model_id.clone(),
        n_ctx,
        n_vocab,
        a.max_tokens,
        a.parallel + a.queue,
        tx.clone(),
        metrics,
        policy,
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("llamux-http")
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    let grace = Duration::from_secs(a.shutdown_timeout);
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind((a.host.as_str(), a.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", a.host, a.port))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "llamux serve: listening on http://{addr} (model {model_id}, --parallel {}, {n_ctx}-token contexts, {threads} threads, chat format {})",
            a.parallel,
            template.map_or("none".to_string(), |t| format!("{t:?}").to_lowercase())
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let signal = {
            let app = app.clone();
            async move {
                shutdown_signal().await;
                eprintln!("llamux serve: shutting down");
                app.shutting_down.store(true, Ordering::Relaxed);
                let _ = stop_tx.send(true);
            }
        };
        let routes = api::router(app.clone(), a.max_body).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(listener, routes).with_graceful_shutdown(signal);
        let mut stopped = stop_rx.clone();
        let deadline = async move {
            // In-flight requests get `grace` to finish, then are cancelled (their responses end
            // with an error) and get a little longer to say so.
            let _ = stopped.wait_for(|&s| s).await;
            tokio::time::sleep(grace).await;
            cancel.store(true, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(5)).await;
        };
        tokio::select! {
            r = server => r.context("the server failed")?,
            () = deadline => eprintln!("llamux serve: connections still open after the deadline; closing them"),
        }
        anyhow::Ok(())
    });
    let _ = tx.send(engine::Msg::Stop);
    drop(app);
    drop(rt);
    if engine.join().is_err() {
        bail!("the engine thread panicked");
    }
    served
}

/// The model's name in responses: a known name as given, else the file's stem.
fn model_id(arg: &str) -> String {
    if crate::registry::model(arg).is_some() {
        return arg.to_string();
    }
    std::path::Path::new(arg).file_stem().map_or_else(|| arg.to_string(), |s| s.to_string_lossy().into_owned())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the server runs until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
