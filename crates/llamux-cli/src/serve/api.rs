//! The OpenAI-compatible HTTP API: request parsing and checks, admission (`--parallel` running
//! plus `--queue` waiting, 429 beyond), responses whole or as server-sent events, and OpenAI-style
//! JSON errors for everything refused.

use super::engine::{Event, Job, Msg};
use super::metrics::Metrics;
use super::policy::{Policy, Ticket};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use llamux_client::text::TextOut;
use llamux_core::chat::{ChatTemplate, Message, Role};
use llamux_core::sample::SamplerConfig;
use llamux_core::session::Stop;
use llamux_core::tokenizer::Tokenizer;
use llamux_trust::audit::Outcome;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

/// Most stop strings a request may give, and their longest length in bytes.
const MAX_STOPS: usize = 16;
const MAX_STOP_BYTES: usize = 1024;
/// Sampling defaults beyond OpenAI's parameters (llama.cpp's server uses the same).
const DEFAULT_TOP_K: usize = 40;
const DEFAULT_MIN_P: f32 = 0.05;
/// OpenAI's default `max_tokens` for `/v1/completions`.
const DEFAULT_COMPLETION_TOKENS: usize = 16;

/// What every handler shares.
pub struct App {
    pub tok: &'static Tokenizer<'static>,
    pub template: Option<ChatTemplate>,
    pub model_id: String,
    /// Unix time the server started (the model's `created`).
    pub created: u64,
    pub n_ctx: usize,
    pub n_vocab: u32,
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens: usize,
    /// Requests admitted at once: `--parallel` + `--queue`.
    pub capacity: usize,
    pub engine: UnboundedSender<Msg>,
    pub metrics: Arc<Metrics>,
    /// Per-client quotas and the audit trail.
    pub policy: Arc<Policy>,
    pub shutting_down: AtomicBool,
    next_id: AtomicU64,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tok: &'static Tokenizer<'static>,
        template: Option<ChatTemplate>,
        model_id: String,
        n_ctx: usize,
        n_vocab: u32,
        max_tokens: usize,
        capacity: usize,
        engine: UnboundedSender<Msg>,
        metrics: Arc<Metrics>,
        policy: Arc<Policy>,
    ) -> Self {
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        App {
            tok,
            template,
            model_id,
            created,
            n_ctx,
            n_vocab,
            max_tokens,
            capacity,
            engine,
            metrics,
            policy,
            shutting_down: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
        }
    }

    fn id(&self, prefix: &str) -> String {
        format!("{prefix}-{:x}{:06x}", self.created, self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

/// The routes, with the body limit and the request counter.
pub fn router(app: Arc<App>, max_body: usize) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(app.clone(), count))
        .with_state(app)
}

/// Counts every answer by endpoint (the route, so that unknown paths share one label) and status.
async fn count(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let endpoint = match req.extensions().get::<MatchedPath>().map(MatchedPath::as_str) {
        Some("/v1/chat/completions") => "/v1/chat/completions",
        Some("/v1/completions") => "/v1/completions",
        Some("/v1/models") => "/v1/models",
        Some("/v1/models/{id}") => "/v1/models/{id}",
        Some("/health") => "/health",
        Some("/metrics") => "/metrics",
        _ => "other",
    };
    let resp = next.run(req).await;
    app.metrics.count_request(endpoint, resp.status().as_u16());
    resp
}

/// An OpenAI-style error: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    code: &'static str,
    param: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), kind, code, param: None }
    }

    fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message)
    }

    fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    fn json(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.json())).into_response()
    }
}

async fn not_found(req: Request) -> ApiError {
    let what = format!("{} {}", req.method(), req.uri().path());
    ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", "not_found", format!("no such endpoint: {what}"))
}

async fn method_not_allowed(req: Request) -> ApiError {
    let what = format!("{} {}", req.method(), req.uri().path());
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        format!("method not allowed: {what}"),
    )
}

async fn health(State(app): State<Arc<App>>) -> Response {
    if app.shutting_down.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "shutting down"}))).into_response();
    }
    Json(json!({"status": "ok"})).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render()).into_response()
}

fn model_object(app: &App) -> Value {
    json!({"id": app.model_id, "object": "model", "created": app.created, "owned_by": "llamux"})
}

async fn models(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [model_object(&app)]}))
}

async fn model(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if id != app.model_id {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("no model {id:?}; this server has {:?}", app.model_id),
        ));
    }
    Ok(Json(model_object(&app)))
}

/// The body of either endpoint. Parameters that would change the output in ways not
/// supported are refused rather than ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct GenRequest {
    messages: Option<Vec<ChatMessage>>,
    prompt: Option<Value>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<u64>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    stop: Option<Value>,
    seed: Option<serde_json::Number>,
    n: Option<u64>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    /// An extension: each choice (or chunk) also carries its token ids.
    return_tokens: Option<bool>,
    echo: Option<bool>,
    best_of: Option<u64>,
    logprobs: Option<Value>,
    top_logprobs: Option<Value>,
    suffix: Option<Value>,
    logit_bias: Option<Value>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    tools: Option<Value>,
    functions: Option<Value>,
    response_format: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Completion,
}

/// A request checked and ready for the engine, but for its tokens.
struct Prepared {
    kind: Kind,
    prompt: PromptInput,
    sampling: SamplerConfig,
    max_tokens: usize,
    stop: Vec<String>,
    stream: bool,
    include_usage: bool,
    return_tokens: bool,
}

enum PromptInput {
    Text(String),
    Tokens(Vec<u32>),
}

async fn chat_completions(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(app, client, Kind::Chat, body).await
}

async fn completions(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(app, client, Kind::Completion, body).await
}

async fn respond(app: Arc<App>, client: SocketAddr, kind: Kind, body: Result<Bytes, BytesRejection>) -> Response {
    let received = Instant::now();
    let prepared = body
        .map_err(|e| {
            let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "invalid_body" };
            ApiError::new(e.status(), "invalid_request_error", code, e.body_text())
        })
        .and_then(|b| prepare(&app, kind, &b));
    match prepared {
        Ok(p) => generate(app, client, p, received).await.unwrap_or_else(IntoResponse::into_response),
        Err(e) => e.into_response(),
    }
}

/// Parses and checks a request body.
fn prepare(app: &App, kind: Kind, body: &[u8]) -> Result<Prepared, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let req: GenRequest = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return ApiError::invalid("invalid_json", format!("the body is not valid JSON: {inner}"));
        }
        let msg = match path.as_str() {
            "" | "." | "?" => format!("the body is not a valid request: {inner}"),
            _ => format!("invalid value for {path}: {inner}"),
        };
        ApiError::invalid("invalid_value", msg)
    })?;
    de.end().map_err(|e| ApiError::invalid("invalid_json", format!("the body is not valid JSON: {e}")))?;
    refuse_unsupported(&req)?;

    let prompt = match kind {
        Kind::Chat => {
            if req.prompt.is_some() {
                return Err(
                    ApiError::invalid("invalid_value", "chat completions take messages, not prompt").param("prompt")
                );
            }
            let Some(template) = app.template else {
                return Err(ApiError::invalid(
                    "no_chat_template",
                    format!(
                        "{} has no chat template; use /v1/completions, or start the server with --template",
                        app.model_id
                    ),
                ));
            };
            let messages = chat_messages(req.messages.as_deref().unwrap_or_default())?;
            PromptInput::Text(template.apply(&messages, true))
        }
        Kind::Completion => {
            if req.messages.is_some() {
                return Err(
                    ApiError::invalid("invalid_value", "completions take prompt, not messages").param("messages")
                );
            }
            completion_prompt(req.prompt.as_ref(), app.n_vocab)?
        }
    };

    let max_tokens = match req.max_tokens.or(req.max_completion_tokens) {
        Some(0) => return Err(ApiError::invalid("invalid_value", "max_tokens must be at least 1").param("max_tokens")),
        Some(n) if n > app.max_tokens as u64 => {
            return Err(ApiError::invalid(
                "invalid_value",
                format!("max_tokens is {n}; this server generates at most {} tokens per request", app.max_tokens),
            )
            .param("max_tokens"))
        }
        Some(n) => n as usize,
        None if kind == Kind::Completion => DEFAULT_COMPLETION_TOKENS.min(app.max_tokens),
        None => app.max_tokens,
    };

    let seed = match &req.seed {
        None => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            (t as u64) ^ app.next_id.load(Ordering::Relaxed).rotate_left(32)
        }
        Some(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u,
            (None, Some(i)) => i as u64,
            _ => return Err(ApiError::invalid("invalid_value", "seed must be an integer").param("seed")),
        },
    };
    let top_k = match req.top_k {
        Some(k) => usize::try_from(k).unwrap_or(usize::MAX),
        None => DEFAULT_TOP_K,
    };
    let temperature = req.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid("invalid_value", "temperature must be between 0 and 2").param("temperature"));
    }
    let sampling = SamplerConfig {
        temperature,
        top_k,
        top_p: req.top_p.unwrap_or(1.0),
        min_p: req.min_p.unwrap_or(DEFAULT_MIN_P),
        repeat_penalty: req.repeat_penalty.unwrap_or(1.0),
        repeat_last_n: 64,
        seed,
    };
    sampling.validate().map_err(|e| ApiError::invalid("invalid_value", e.to_string()))?;

    Ok(Prepared {
        kind,
        prompt,
        sampling,
        max_tokens,
        stop: stop_strings(req.stop.as_ref())?,
        stream: req.stream.unwrap_or(false),
        include_usage: req.stream_options.is_some_and(|o| o.include_usage),
        return_tokens: req.return_tokens.unwrap_or(false),
    })
}

fn refuse_unsupported(req: &GenRequest) -> Result<(), ApiError> {
    let unsupported = |param: &'static str, what: &str| {
        Err(ApiError::invalid("unsupported_parameter", format!("{param}: {what} is not supported")).param(param))
    };
    if req.n.is_some_and(|n| n != 1) {
        return unsupported("n", "more than one choice per request");
    }
    if req.best_of.is_some_and(|n| n != 1) {
        return unsupported("best_of", "more than one candidate");
    }
    if req.echo == Some(true) {
        return unsupported("echo", "echoing the prompt");
    }
    let given = |v: &Option<Value>| v.as_ref().is_some_and(|v| !matches!(v, Value::Bool(false) | Value::Null));
    if given(&req.logprobs) || given(&req.top_logprobs) {
        return unsupported("logprobs", "returning log probabilities");
    }
    if req.suffix.as_ref().is_some_and(|s| s.as_str() != Some("")) {
        return unsupported("suffix", "a suffix");
    }
    if req.logit_bias.as_ref().is_some_and(|b| b.as_object().is_none_or(|o| !o.is_empty())) {
        return unsupported("logit_bias", "a logit bias");
    }
    if req.presence_penalty.is_some_and(|p| p != 0.0) {
        return unsupported("presence_penalty", "a presence penalty (repeat_penalty is)");
    }
    if req.frequency_penalty.is_some_and(|p| p != 0.0) {
        return unsupported("frequency_penalty", "a frequency penalty (repeat_penalty is)");
    }
    if req.tools.as_ref().is_some_and(|t| t.as_array().is_none_or(|a| !a.is_empty())) || req.functions.is_some() {
        return unsupported("tools", "tool calling");
    }
    if req.response_format.as_ref().is_some_and(|f| f.get("type").and_then(Value::as_str) != Some("text")) {
        return unsupported("response_format", "a response format other than text");
    }
    Ok(())
}

/// A chat request's messages (text content only).
fn chat_messages(messages: &[ChatMessage]) -> Result<Vec<Message>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid("invalid_value", "messages must hold at least one message").param("messages"));
    }
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(ApiError::invalid(
                    "invalid_value",
                    format!("messages[{i}]: role {other:?} is not supported"),
                )
                .param("messages"))
            }
        };
        let content = match &m.content {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            Value::Array(parts) => {
                let mut text = String::new();
                for p in parts {
                    match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                        (Some("text"), Some(t)) => text.push_str(t),
                        _ => {
                            return Err(ApiError::invalid(
                                "invalid_value",
                                format!("messages[{i}]: only text content parts are supported"),
                            )
                            .param("messages"))
                        }
                    }
                }
                text
            }
            _ => {
                return Err(ApiError::invalid(
                    "invalid_value",
                    format!("messages[{i}]: content must be a string or an array of text parts"),
                )
                .param("messages"))
            }
        };
        out.push(Message { role, content });
    }
    Ok(out)
}

/// A completion's prompt: a string, a list of one string, or a list of token ids.
fn completion_prompt(prompt: Option<&Value>, n_vocab: u32) -> Result<PromptInput, ApiError> {
    let bad = |msg: &str| Err(ApiError::invalid("invalid_value", msg).param("prompt"));
    match prompt {
        None => bad("prompt is required"),
        Some(Value::String(s)) => Ok(PromptInput::Text(s.clone())),
        Some(Value::Array(items)) => match items.as_slice() {
            [] => bad("prompt is empty"),
            [Value::String(s)] => Ok(PromptInput::Text(s.clone())),
            [Value::String(_), ..] | [Value::Array(_), ..] => bad("one prompt per request"),
            ids => {
                let mut out = Vec::with_capacity(ids.len());
                for v in ids {
                    match v.as_u64().and_then(|t| u32::try_from(t).ok()).filter(|&t| t < n_vocab) {
                        Some(t) => out.push(t),
                        None => return bad(&format!("token ids must be integers below the vocabulary size {n_vocab}")),
                    }
                }
                Ok(PromptInput::Tokens(out))
            }
        },
        Some(_) => bad("prompt must be a string or an array of token ids"),
    }
}

fn stop_strings(stop: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let bad = |msg: String| Err(ApiError::invalid("invalid_value", msg).param("stop"));
    let list = match stop {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            let mut v = Vec::with_capacity(items.len());
            for s in items {
                match s.as_str() {
                    Some(s) => v.push(s.to_string()),
                    None => return bad("stop must be a string or an array of strings".into()),
                }
            }
            v
        }
        Some(_) => return bad("stop must be a string or an array of strings".into()),
    };
    if list.len() > MAX_STOPS {
        return bad(format!("at most {MAX_STOPS} stop strings"));
    }
    if list.iter().any(|s| s.len() > MAX_STOP_BYTES) {
        return bad(format!("stop strings are at most {MAX_STOP_BYTES} bytes"));
    }
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

/// A place among the admitted requests, given back when the response has been sent.
struct Admission(Arc<App>);

impl Admission {
    fn try_new(app: &Arc<App>) -> Option<Self> {
        let n = &app.metrics.in_flight;
        n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |k| (k < app.capacity).then_some(k + 1))
            .ok()
            .map(|_| Admission(app.clone()))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.metrics.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Admits, tokenizes and hands the request to the engine, then answers with its result.
async fn generate(app: Arc<App>, client: SocketAddr, p: Prepared, received: Instant) -> Result<Response, ApiError> {
    if app.shutting_down.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "shutting_down",
            "the server is shutting down",
        ));
    }
    let Some(admission) = Admission::try_new(&app) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "server_busy",
            format!("the server is busy: {} requests are running or waiting; retry later", app.capacity),
        ));
    };
    // The audit record's digest: the prompt as formatted for the model, or its token ids (u32
    // little-endian).
    let prompt_sha256 = match &p.prompt {
        PromptInput::Text(text) => llamux_trust::sha256(text.as_bytes()),
        PromptInput::Tokens(t) => llamux_trust::sha256(&t.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()),
    };
    let tokens = match p.prompt {
        PromptInput::Tokens(t) => t,
        PromptInput::Text(text) => {
            // Tokenizing a long prompt takes a while: off the runtime's threads.
            let tok = app.tok;
            tokio::task::spawn_blocking(move || tok.encode(text.as_bytes(), true, true)).await.map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal_error",
                    "tokenization failed",
                )
            })?
        }
    };
    if tokens.is_empty() {
        return Err(
            ApiError::invalid("invalid_value", "the prompt is empty (and the model adds no BOS token)").param("prompt")
        );
    }
    if tokens.len() >= app.n_ctx {
        return Err(ApiError::invalid(
            "context_length_exceeded",
            format!(
                "the prompt has {} tokens; this server's context holds {} (the prompt must leave room for at least one more)",
                tokens.len(),
                app.n_ctx
            ),
        ));
    }
    let prompt_tokens = tokens.len();
    let ticket = app.policy.admit(client.ip(), prompt_sha256, prompt_tokens).map_err(|e| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "quota_exceeded",
            format!("{e} (per client address)"),
        )
    })?;
    let (tx, rx) = mpsc::unbounded_channel();
    let job = Job {
        prompt: tokens,
        sampling: p.sampling,
        max_tokens: p.max_tokens,
        stop: p.stop.iter().map(|s| s.as_bytes().to_vec()).collect(),
        events: tx,
        received,
    };
    app.metrics.enqueued();
    if app.engine.send(Msg::Job(job)).is_err() {
        app.metrics.dequeued(1);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "shutting_down",
            "the engine has stopped",
        ));
    }
    let out = Output {
        kind: p.kind,
        id: app.id(if p.kind == Kind::Chat { "chatcmpl" } else { "cmpl" }),
        created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        model: app.model_id.clone(),
        return_tokens: p.return_tokens,
        prompt_tokens,
    };
    let text = TextOut::new(p.stop.iter().map(|s| s.as_bytes().to_vec()).collect());
    if p.stream {
        Ok(stream(out, text, rx, p.include_usage, (admission, ticket)).into_response())
    } else {
        whole(out, text, rx, (admission, ticket)).await
    }
}

/// What a response says about itself.
struct Output {
    kind: Kind,
    id: String,
    created: u64,
    model: String,
    return_tokens: bool,
    prompt_tokens: usize,
}

fn finish_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::EndOfGeneration | Stop::StopString => "stop",
        Stop::Length | Stop::ContextFull => "length",
    }
}

impl Output {
    fn usage(&self, completion: usize) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        })
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Completion, _) => "text_completion",
        }
    }

    /// One choice: the message (chat) or text (completion), with its token ids when asked.
    fn choice(&self, text: &str, finish: Option<&str>, tokens: &[u32], chunk: bool, first: bool) -> Value {
        let mut c = match (self.kind, chunk) {
            (Kind::Chat, false) => json!({"index": 0, "message": {"role": "assistant", "content": text}}),
            (Kind::Chat, true) => {
                let delta = match (first, text.is_empty()) {
                    (true, _) => json!({"role": "assistant", "content": text}),
                    (false, false) => json!({"content": text}),
                    (false, true) => json!({}),
                };
                json!({"index": 0, "delta": delta})
            }
            (Kind::Completion, _) => json!({"index": 0, "text": text}),
        };
        c["logprobs"] = Value::Null;
        c["finish_reason"] = finish.map_or(Value::Null, |f| f.into());
        if self.return_tokens {
            c["tokens"] = tokens.into();
        }
        c
    }

    fn envelope(&self, chunk: bool, choices: Value) -> Value {
        json!({"id": self.id, "object": self.object(chunk), "created": self.created, "model": self.model, "choices": choices})
    }
}

fn engine_error(msg: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "generation_failed", msg)
}

fn cancelled() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "shutting_down",
        "the server is shutting down; the request was cancelled",
    )
}

/// Waits for the whole generation and answers with one JSON object.
async fn whole(
    out: Output,
    mut text: TextOut,
    mut rx: UnboundedReceiver<Event>,
    (_admission, mut ticket): (Admission, Ticket),
) -> Result<Response, ApiError> {
    let mut tokens = Vec::new();
    let mut content = String::new();
    let stop = loop {
        match rx.recv().await {
            Some(Event::Token { id, piece }) => {
                tokens.push(id);
                ticket.token();
                content.push_str(&text.push(piece.bytes()));
            }
            Some(Event::End(stop)) => break stop,
            Some(Event::Error(e)) => {
                ticket.end(Outcome::Failed);
                return Err(engine_error(e));
            }
            Some(Event::Cancelled) => return Err(cancelled()),
            None => {
                ticket.end(Outcome::Failed);
                return Err(engine_error("the engine stopped".into()));
            }
        }
    };
    ticket.end(Outcome::Completed);
    content.push_str(&text.finish());
    let choice = out.choice(&content, Some(finish_reason(stop)), &tokens, false, false);
    let mut body = out.envelope(false, json!([choice]));
    body["usage"] = out.usage(tokens.len());
    Ok(Json(body).into_response())
}

/// State of a streamed response.
struct Streaming {
    out: Output,
    text: TextOut,
    rx: UnboundedReceiver<Event>,
    include_usage: bool,
    /// Token ids not yet sent in a chunk (their text may be held back).
    tokens: Vec<u32>,
    completion: usize,
    /// Events ready to go, in order.
    ready: VecDeque<SseEvent>,
    first: bool,
    done: bool,
    /// Dropped with the stream: the place given back, the tokens charged, the request audited.
    places: (Admission, Ticket),
}

impl Streaming {
    fn chunk(&mut self, text: &str, finish: Option<&str>) -> SseEvent {
        let choice = self.out.choice(text, finish, &self.tokens, true, self.first);
        self.first = false;
        self.tokens.clear();
        SseEvent::default().data(self.out.envelope(true, json!([choice])).to_string())
    }

    /// The next events to send, or `None` once the stream is over.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            if self.first && self.out.kind == Kind::Chat {
                return Some(self.chunk("", None));
            }
            match self.rx.recv().await {
                Some(Event::Token { id, piece }) => {
                    self.tokens.push(id);
                    self.completion += 1;
                    self.places.1.token();
                    let t = self.text.push(piece.bytes());
                    if !t.is_empty() {
                        return Some(self.chunk(&t, None));
                    }
                }
                Some(Event::End(stop)) => {
                    self.places.1.end(Outcome::Completed);
                    let rest = self.text.finish();
                    if !rest.is_empty() && self.out.kind == Kind::Chat {
                        let e = self.chunk(&rest, None);
                        self.ready.push_back(e);
                        let e = self.chunk("", Some(finish_reason(stop)));
                        self.ready.push_back(e);
                    } else {
                        let e = self.chunk(&rest, Some(finish_reason(stop)));
                        self.ready.push_back(e);
                    }
                    if self.include_usage {
                        let mut u = self.out.envelope(true, json!([]));
                        u["usage"] = self.out.usage(self.completion);
                        self.ready.push_back(SseEvent::default().data(u.to_string()));
                    }
                    self.ready.push_back(SseEvent::default().data("[DONE]"));
                    self.done = true;
                }
                Some(Event::Error(e)) => {
                    self.places.1.end(Outcome::Failed);
                    self.ready.push_back(SseEvent::default().data(engine_error(e).json().to_string()));
                    self.done = true;
                }
                Some(Event::Cancelled) => {
                    self.ready.push_back(SseEvent::default().data(cancelled().json().to_string()));
                    self.done = true;
                }
                None => {
                    self.places.1.end(Outcome::Failed);
                    self.ready.push_back(
                        SseEvent::default().data(engine_error("the engine stopped".into()).json().to_string()),
                    );
                    self.done = true;
                }
            }
        }
    }
}

/// A streamed response: server-sent events in OpenAI's chunk format, ending with `[DONE]`.
/// Dropping it (the client went away) drops the receiver, which the engine notices.
fn stream(
    out: Output,
    text: TextOut,
    rx: UnboundedReceiver<Event>,
    include_usage: bool,
    places: (Admission, Ticket),
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let state = Streaming {
        out,
        text,
        rx,
        include_usage,
        tokens: Vec::new(),
        completion: 0,
        ready: VecDeque::new(),
        first: true,
        done: false,
        places,
    };
    Sse::new(futures_util::stream::unfold(state, |mut s| async move {
        let e = s.next().await?;
        Some((Ok(e), s))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> Result<GenRequest, String> {
        let de = &mut serde_json::Deserializer::from_slice(body.as_bytes());
        serde_path_to_error::deserialize(de).map_err(|e| e.to_string())
    }

    #[test]
    fn bad_fields_name_their_path() {
        let e = req(r#"{"prompt": "x", "temperature": "hot"}"#).err().unwrap();
        assert!(e.contains("temperature"), "{e}");
        let e = req(r#"{"max_tokens": -1}"#).err().unwrap();
        assert!(e.contains("max_tokens"), "{e}");
        assert!(req("[1, 2]").is_err());
        assert!(req("{").is_err());
        assert!(req(r#"{"prompt": null, "max_tokens": null, "stream": null}"#).is_ok());
    }

    #[test]
    fn prompts_and_stops() {
        let v = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert!(matches!(completion_prompt(Some(&v(r#""hi""#)), 10), Ok(PromptInput::Text(t)) if t == "hi"));
        assert!(matches!(completion_prompt(Some(&v(r#"["hi"]"#)), 10), Ok(PromptInput::Text(_))));
        assert!(matches!(completion_prompt(Some(&v("[1, 2, 9]")), 10), Ok(PromptInput::Tokens(t)) if t == [1, 2, 9]));
        for bad in ["[]", r#"["a", "b"]"#, "[[1]]", "[1, 10]", "[1, -1]", "[1.5]", "3", "{}"] {
            assert!(completion_prompt(Some(&v(bad)), 10).is_err(), "{bad}");
        }
        assert!(completion_prompt(None, 10).is_err());
        assert_eq!(stop_strings(Some(&v(r#""\n""#))).unwrap(), ["\n"]);
        assert_eq!(stop_strings(Some(&v(r#"["a", "", "b"]"#))).unwrap(), ["a", "b"]);
        assert!(stop_strings(Some(&v("[1]"))).is_err());
        assert!(stop_strings(Some(&v(&format!("[{}]", vec!["\"x\""; 17].join(","))))).is_err());
    }

    #[test]
    fn chat_content_parts() {
        let m = |s: &str| serde_json::from_str::<Vec<ChatMessage>>(s).unwrap();
        let ok = chat_messages(&m(r#"[{"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null}]"#))
        .unwrap();
        assert_eq!(ok[0].role, Role::System);
        assert_eq!(ok[1].content, "ab");
        assert_eq!(ok[2].content, "");
        assert!(chat_messages(&[]).is_err());
        assert!(chat_messages(&m(r#"[{"role": "tool", "content": "x"}]"#)).is_err());
        assert!(chat_messages(&m(r#"[{"role": "user", "content": [{"type": "image_url"}]}]"#)).is_err());
        assert!(chat_messages(&m(r#"[{"role": "user", "content": 3}]"#)).is_err());
    }
}
