//! `llamux serve` end to end: the real binary on a free port with SmolLM2, driven by the official
//! `openai` Python client (`tools/serve_client.py`, from the venv in `LLAMUX_OPENAI_PY`), by curl
//! and by raw sockets. Greedy answers, streamed or whole, alone or with many others at once, must
//! be `llamux run`'s tokens for the same prompt exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../../llamux-core/tests/common/mod.rs"]
mod common;
#[path = "../../llamux-core/tests/common/hostile.rs"]
mod hostile;
use common::asset;

const CTX: usize = 512;
const PARALLEL: usize = 6;
const QUEUE: usize = 6;
const MAX_BODY: usize = 64 << 10;

fn bin() -> PathBuf {
    std::env::var_os("LLAMUX_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_llamux")), PathBuf::from)
}

/// A running `llamux serve`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(model: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .arg("serve")
            .arg("-m")
            .arg(model)
            .args(["--port", "0", "-c", &CTX.to_string(), "-t", "2"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (err, log) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let addr = line[at + "listening on http://".len()..].split_whitespace().next().unwrap_or("");
                    let _ = tx.send(addr.to_string());
                }
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start: {}", stderr.lock().unwrap());
            }
        };
        Server { child, addr, stderr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `curl` a path: (status, body).
    fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        self.curl_with_input(args, path, b"")
    }

    /// `curl` a path with `input` on its standard input.
    fn curl_with_input(&self, args: &[&str], path: &str, input: &[u8]) -> (u16, String) {
        let mut child = Command::new("curl")
            .args(["-sS", "--noproxy", "*", "-o", "-", "-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("{}{path}", self.url()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl runs");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn post(&self, path: &str, body: &str) -> (u16, String) {
        self.curl_with_input(
            &["-H", "Expect:", "-H", "content-type: application/json", "--data-binary", "@-"],
            path,
            body.as_bytes(),
        )
    }

    fn metrics(&self) -> Metrics {
        let (code, text) = self.curl(&[], "/metrics");
        assert_eq!(code, 200, "{text}");
        Metrics(text)
    }

    /// Polls the metrics until `ok` holds (or panics after `secs`).
    fn wait_for(&self, what: &str, secs: u64, ok: impl Fn(&Metrics) -> bool) -> Metrics {
        let t0 = Instant::now();
        loop {
            let m = self.metrics();
            if ok(&m) {
                return m;
            }
            assert!(t0.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}:\n{}", m.0);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Metrics(String);

impl Metrics {
    fn get(&self, series: &str) -> f64 {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{}", self.0))
    }
}

/// An OpenAI-style JSON error with this status and code.
fn assert_error(got: (u16, String), status: u16, code: &str) -> Value {
    let (s, body) = got;
    assert_eq!(s, status, "{body}");
    let j: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let err = &j["error"];
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(err["type"].as_str().is_some(), "{body}");
    assert_eq!(err["code"], code, "{body}");
    j
}

/// A streaming request on a raw socket, left open until dropped.
struct OpenStream {
    sock: TcpStream,
    seen: Vec<u8>,
}

impl OpenStream {
    fn start(addr: &str, body: &Value) -> OpenStream {
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let body = body.to_string();
        write!(
            sock,
            "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        OpenStream { sock, seen: Vec::new() }
    }

    /// Reads until `needle` has arrived.
    fn read_until(&mut self, needle: &str) {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&self.seen).contains(needle) {
            let n = self.sock.read(&mut buf).unwrap();
            assert!(n > 0, "the stream ended before {needle:?}: {}", String::from_utf8_lossy(&self.seen));
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    fn read_to_end(mut self) -> String {
        let _ = self.sock.read_to_end(&mut self.seen);
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// `llamux run`'s greedy tokens and text for a prompt.
fn run_alone(model: &Path, prompt: &str, n: usize) -> (Vec<u64>, String) {
    let out = Command::new(bin())
        .arg("run")
        .arg("-m")
        .arg(model)
        .args(["--json", "--temp", "0", "-t", "2", "-c", &CTX.to_string(), "-n", &n.to_string(), "-p", prompt])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tokens = j["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    (tokens, j["text"].as_str().unwrap().to_string())
}

fn tokens_of(v: &Value) -> Vec<u64> {
    v["tokens"].as_array().unwrap_or_else(|| panic!("no tokens in {v}")).iter().map(|t| t.as_u64().unwrap()).collect()
}

/// A greedy answer and the same request run alone by `llamux run`: same tokens, same text, and
/// usage and finish reason that agree with them.
fn assert_alone(model: &Path, what: &str, got: &Value, prompt: &str, max_tokens: usize) {
    assert!(got.get("error").is_none(), "{what}: {got}");
    let (want, text) = run_alone(model, prompt, max_tokens);
    assert_eq!(tokens_of(got), want, "{what}: tokens differ from llamux run's");
    assert_eq!(got["text"], text.as_str(), "{what}: text differs from llamux run's");
    assert_eq!(got["usage"]["completion_tokens"], want.len(), "{what}");
    let (p, c, t) = (&got["usage"]["prompt_tokens"], &got["usage"]["completion_tokens"], &got["usage"]["total_tokens"]);
    assert_eq!(p.as_u64().unwrap() + c.as_u64().unwrap(), t.as_u64().unwrap(), "{what}");
    let finish = if want.len() == max_tokens { "length" } else { "stop" };
    assert_eq!(got["finish_reason"], finish, "{what}");
}

const SYSTEM: &str = "You are a helpful assistant. Answer briefly.";
const QUESTION: &str = "What are the three primary colours?";
const PROMPT: &str = "The history of the Roman Empire";

const PROMPTS: [&str; 10] = [
    "Once upon a time",
    "The capital of France is",
    "def fibonacci(n):",
    "Water boils at",
    "Linux is",
    "The quick brown fox",
    "A haiku about autumn:",
    "In 1969, the first",
    "My favourite recipe is",
    "Three reasons to exercise:",
];

#[test]
fn serve_end_to_end() {
    let Some(model) = asset("LLAMUX_SMOLLM2") else { return };
    let t0 = Instant::now();
    let (parallel, queue, max_body) = (PARALLEL.to_string(), QUEUE.to_string(), MAX_BODY.to_string());
    let server = Server::start(&model, &["--parallel", &parallel, "--queue", &queue, "--max-body", &max_body]);
    let model_id = model.file_stem().unwrap().to_string_lossy().into_owned();

    // ---- plain endpoints and refusals, with curl ----
    let (code, body) = server.curl(&[], "/health");
    assert_eq!((code, serde_json::from_str::<Value>(&body).unwrap()), (200, json!({"status": "ok"})));
    let (code, body) = server.curl(&[], "/v1/models");
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["data"][0]["id"], model_id.as_str());
    assert_error(server.post("/v1/completions", r#"{"prompt": "x", "#), 400, "invalid_json");
    assert_error(server.post("/v1/chat/completions", "not json at all"), 400, "invalid_json");
    let e =
        assert_error(server.post("/v1/completions", r#"{"prompt": "x", "temperature": "hot"}"#), 400, "invalid_value");
    assert!(e["error"]["message"].as_str().unwrap().contains("temperature"), "{e}");
    assert_error(server.post("/v1/completions", r#"{"prompt": "x", "max_tokens": -3}"#), 400, "invalid_value");
    assert_error(server.post("/v1/completions", r#"{"prompt": "x", "n": 2}"#), 400, "unsupported_parameter");
    assert_error(server.post("/v1/completions", r#"{"prompt": "x", "max_tokens": 100000}"#), 400, "invalid_value");
    assert_error(server.post("/v1/completions", r#"{"prompt": [1, 99999999]}"#), 400, "invalid_value");
    assert_error(server.post("/v1/chat/completions", r#"{"messages": []}"#), 400, "invalid_value");
    assert_error(
        server.post("/v1/chat/completions", r#"{"messages": [{"role": "tool", "content": "x"}]}"#),
        400,
        "invalid_value",
    );
    let long = json!({"prompt": "word ".repeat(CTX + 100), "max_tokens": 4}).to_string();
    let e = assert_error(server.post("/v1/completions", &long), 400, "context_length_exceeded");
    assert!(e["error"]["message"].as_str().unwrap().contains(&CTX.to_string()), "{e}");
    // Over --max-body, yet small enough for the socket buffers to take it all before the
    // refusal, so that the client reads the answer rather than a reset.
    let huge = format!(r#"{{"prompt": "{}"}}"#, "a".repeat(MAX_BODY + 30_000));
    let too_big = server.post("/v1/completions", &huge);
    assert_error(too_big, 413, "body_too_large");
    assert_error(server.curl(&[], "/no/such/route"), 404, "not_found");
    assert_error(server.curl(&[], "/v1/completions"), 405, "method_not_allowed");
    hostile_bodies(&server);
    stop_strings_are_cut(&server);
    eprintln!("refusals checked ({:.1} s)", t0.elapsed().as_secs_f64());

    // ---- the openai client: chat and completions, whole and streamed, and many at once ----
    match asset("LLAMUX_OPENAI_PY") {
        Some(py) => openai_checks(&server, &py, &model, &model_id),
        None => eprintln!("the openai client checks are skipped"),
    }
    eprintln!("client checks done ({:.1} s)", t0.elapsed().as_secs_f64());

    // ---- over capacity, then every client hangs up ----
    let before = server.metrics();
    let long_stream = json!({"prompt": "Once upon a time", "max_tokens": 256, "temperature": 0, "stream": true});
    // The first is answering before the others arrive; it is mid-answer when its client goes away.
    let mut open = vec![OpenStream::start(&server.addr, &long_stream)];
    open[0].read_until("\"text\"");
    for _ in 1..PARALLEL + QUEUE {
        open.push(OpenStream::start(&server.addr, &long_stream));
    }
    server.wait_for("every stream admitted", 30, |m| m.get("llamux_requests_in_flight") == (PARALLEL + QUEUE) as f64);
    let e = assert_error(
        server.post("/v1/completions", r#"{"prompt": "one too many", "max_tokens": 1}"#),
        429,
        "server_busy",
    );
    assert_eq!(e["error"]["type"], "rate_limit_error");
    let m = server.wait_for("sessions busy", 30, |m| m.get("llamux_active_sessions") == PARALLEL as f64);
    assert_eq!(m.get("llamux_queue_depth"), QUEUE as f64, "{}", m.0);
    drop(open);
    let after = server.wait_for("sessions dropped", 30, |m| {
        m.get("llamux_active_sessions") == 0.0
            && m.get("llamux_queue_depth") == 0.0
            && m.get("llamux_requests_in_flight") == 0.0
    });
    let cancelled = after.get("llamux_requests_cancelled_total") - before.get("llamux_requests_cancelled_total");
    assert_eq!(cancelled, (PARALLEL + QUEUE) as f64, "every abandoned request is dropped");
    let generated = after.get("llamux_generated_tokens_total");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.metrics().get("llamux_generated_tokens_total"), generated, "nothing generates for them");
    let generated_for_them = generated - before.get("llamux_generated_tokens_total");
    assert!(generated_for_them < (256 * PARALLEL) as f64, "the streams were cut short: {generated_for_them}");

    // ---- the metrics say what happened ----
    let m = server.metrics();
    for series in [
        "llamux_requests_total{endpoint=\"/v1/completions\",status=\"200\"}",
        "llamux_requests_total{endpoint=\"/v1/completions\",status=\"400\"}",
        "llamux_requests_total{endpoint=\"/v1/completions\",status=\"429\"}",
        "llamux_requests_total{endpoint=\"other\",status=\"404\"}",
        "llamux_prompt_tokens_total",
        "llamux_generated_tokens_total",
        "llamux_time_to_first_token_seconds_count",
    ] {
        assert!(m.get(series) > 0.0, "{series} is 0:\n{}", m.0);
    }
    let ttft = m.get("llamux_time_to_first_token_seconds_count");
    assert_eq!(m.get("llamux_time_to_first_token_seconds_bucket{le=\"+Inf\"}"), ttft);
    assert!(m.get("llamux_tokens_per_second") >= 0.0);
    assert!(m.0.contains("# TYPE llamux_time_to_first_token_seconds histogram"), "{}", m.0);

    // ---- SIGTERM: the stream in flight finishes, nothing new is taken, exit status 0 ----
    shutdown(server, t0);
}

/// Bodies no client should send: a JSON error (4xx) every time, never a 5xx, a dropped
/// connection or a crash; odd but valid ones are answered.
fn hostile_bodies(server: &Server) {
    let deep = format!("{{\"prompt\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let refused: Vec<&str> = vec![
        "",
        "null",
        "[]",
        "42",
        "\"x\"",
        "{}",
        "\u{0}\u{1}\u{ff}",
        r#"{"prompt": "x"} trailing"#,
        r#"{"prompt": {"a": 1}}"#,
        r#"{"prompt": [[1, 2], [3]]}"#,
        r#"{"prompt": [-1]}"#,
        r#"{"prompt": [1e99]}"#,
        r#"{"prompt": ["a", 1]}"#,
        r#"{"prompt": "x", "temperature": 1e400}"#,
        r#"{"prompt": "x", "temperature": -0.5}"#,
        r#"{"prompt": "x", "top_p": 7}"#,
        r#"{"prompt": "x", "top_k": 1e30}"#,
        r#"{"prompt": "x", "seed": 1.5}"#,
        r#"{"prompt": "x", "seed": "abc"}"#,
        r#"{"prompt": "x", "stop": 3}"#,
        r#"{"prompt": "x", "stop": [null]}"#,
        r#"{"prompt": "x", "stream": "yes"}"#,
        r#"{"prompt": "x", "max_tokens": 18446744073709551616}"#,
        r#"{"prompt": "x", "max_tokens": 0}"#,
        r#"{"prompt": "x", "logprobs": 5}"#,
        r#"{"prompt": "x", "min_p": NaN}"#,
        r#"{"prompt": "x", "repeat_penalty": 0}"#,
        r#"{"prompt": "x", "presence_penalty": 0.5}"#,
        r#"{"prompt": "x", "messages": []}"#,
        r#"{"messages": "hi"}"#,
        r#"{"messages": [{"content": "no role"}]}"#,
        &deep,
    ];
    for path in ["/v1/completions", "/v1/chat/completions"] {
        for body in &refused {
            let (code, text) = server.post(path, body);
            assert!((400..500).contains(&code), "{path} {body:.80}: {code} {text}");
            let j: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} {body:.80}: {e}: {text}"));
            assert!(j["error"]["message"].is_string(), "{path} {body:.80}: {text}");
        }
    }
    let odd = [
        r#"{"prompt": "<|im_start|><|im_end|>\u0000 \u00e9 \ud83c\udf89", "max_tokens": 3}"#,
        r#"{"prompt": [1, 2, 3], "max_tokens": 3}"#,
        r#"{"prompt": " ", "max_tokens": 3, "stop": ["", "\u0000"], "seed": -7}"#,
        r#"{"prompt": "x", "max_tokens": 3, "n": 1, "logprobs": null, "echo": false, "user": "u", "tools": []}"#,
    ];
    for body in odd {
        let (code, text) = server.post("/v1/completions", body);
        assert_eq!(code, 200, "{body}: {text}");
        let j: Value = serde_json::from_str(&text).unwrap();
        assert!(j["choices"][0]["text"].is_string(), "{body}: {text}");
    }
    assert_eq!(server.curl(&[], "/health").0, 200, "the server survived");
}

/// Stop strings end the answer without appearing in it, whole or streamed.
fn stop_strings_are_cut(server: &Server) {
    // SmolLM2's greedy continuation of "Once upon a time" begins ", the city of".
    let ask = |stop: Value, stream: bool| {
        let body =
            json!({"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0, "stop": stop, "stream": stream});
        let (code, text) = server.post("/v1/completions", &body.to_string());
        assert_eq!(code, 200, "{text}");
        if !stream {
            let j: Value = serde_json::from_str(&text).unwrap();
            let c = &j["choices"][0];
            return (c["text"].as_str().unwrap().to_string(), c["finish_reason"].clone(), j["usage"].clone());
        }
        let (mut out, mut finish) = (String::new(), Value::Null);
        for data in text.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|d| *d != "[DONE]") {
            let j: Value = serde_json::from_str(data).unwrap();
            out.push_str(j["choices"][0]["text"].as_str().unwrap_or(""));
            if !j["choices"][0]["finish_reason"].is_null() {
                finish = j["choices"][0]["finish_reason"].clone();
            }
        }
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        (out, finish, Value::Null)
    };
    let (text, finish, usage) = ask(json!(","), false);
    assert_eq!((text.as_str(), finish), ("", json!("stop")), "the first token is the stop string");
    assert_eq!(usage["completion_tokens"], 1);
    for stream in [false, true] {
        let (text, finish, _) = ask(json!(["zzz", " city"]), stream);
        assert_eq!((text.as_str(), finish), (", the", json!("stop")), "stream {stream}");
        let (text, finish, _) = ask(json!("\u{1}never"), stream);
        assert!(text.starts_with(", the city of"), "stream {stream}: {text}");
        assert_eq!(finish, "length");
    }
}

fn openai_checks(server: &Server, py: &Path, model: &Path, model_id: &str) {
    let chat_tokens = 48;
    let spec = json!({
        "model": model_id,
        "chat": {
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
            "max_tokens": chat_tokens,
        },
        "completion": {"prompt": PROMPT, "max_tokens": 40},
        "concurrent": PROMPTS.iter().enumerate().map(|(i, p)| json!({"prompt": p, "max_tokens": 12 + 4 * i})).collect::<Vec<_>>(),
    });
    let spec_path = std::env::temp_dir().join(format!("llamux-serve-spec-{}.json", std::process::id()));
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/serve_client.py");
    let out = Command::new(py)
        .arg(script)
        .args(["check", &server.url()])
        .arg(&spec_path)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&spec_path);
    assert!(
        out.status.success(),
        "serve_client.py failed:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.stderr.lock().unwrap()
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["models"], json!([model_id]));

    // Chat: the model's ChatML template, so `llamux run` on the formatted text is the same request.
    let (whole, streamed) = (&r["chat"]["whole"], &r["chat"]["stream"]);
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(whole["model"], model_id);
    assert_eq!(streamed["role"], "assistant");
    let chatml = format!(
        "<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_alone(model, "chat", whole, &chatml, chat_tokens);
    for key in ["text", "tokens", "finish_reason", "usage"] {
        assert_eq!(streamed[key], whole[key], "chat: streamed {key} differs from the whole answer");
    }
    assert!(streamed["chunks"].as_u64().unwrap() > 3, "chat: not streamed: {streamed}");

    let (whole, streamed) = (&r["completion"]["whole"], &r["completion"]["stream"]);
    assert_eq!(whole["object"], "text_completion");
    assert_alone(model, "completion", whole, PROMPT, 40);
    for key in ["text", "tokens", "finish_reason", "usage"] {
        assert_eq!(streamed[key], whole[key], "completion: streamed {key} differs from the whole answer");
    }
    assert!(streamed["chunks"].as_u64().unwrap() > 3, "completion: not streamed: {streamed}");

    // Many at once (more than --parallel: some wait, then join as others leave), each as if alone.
    let all = r["concurrent"].as_array().unwrap();
    assert_eq!(all.len(), PROMPTS.len());
    for (i, (got, prompt)) in all.iter().zip(PROMPTS).enumerate() {
        assert_alone(model, &format!("concurrent request {i} ({prompt:?})"), got, prompt, 12 + 4 * i);
    }

    assert_eq!(r["n2"]["status"], 400);
    assert_eq!(r["n2"]["body"]["code"], "unsupported_parameter");
}

fn shutdown(mut server: Server, t0: Instant) {
    let body = json!({"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0, "stream": true});
    let mut stream = OpenStream::start(&server.addr, &body);
    stream.read_until("\"text\"");
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) }, 0);
    let text = stream.read_to_end();
    assert!(text.contains("data: [DONE]"), "the stream in flight was not finished:\n{text}");
    assert!(text.contains("\"finish_reason\":\"length\""), "{text}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running 30 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", server.stderr.lock().unwrap());
    assert!(TcpStream::connect(&server.addr).is_err(), "still accepting after exit");
    eprintln!("serve end to end: {:.1} s", t0.elapsed().as_secs_f64());
}

/// Per-client quotas: a client over its tokens per minute gets 429 (`quota_exceeded`) while
/// another address is still served, and every request leaves an audit line. A tiny generated
/// model, so this runs without downloads.
#[test]
fn quota_excess_is_429_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    std::fs::write(&model, hostile::variant(hostile::Arch::Llama, hostile::TINY, |_| {}).bytes().unwrap()).unwrap();
    let server = Server::start(&model, &["--parallel", "2", "--quota-sessions", "1", "--quota-tokens-per-min", "60"]);
    let body = json!({"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0}).to_string();
    let from = |ip: &str| {
        server.curl_with_input(
            &["--interface", ip, "-H", "Expect:", "-H", "content-type: application/json", "--data-binary", "@-"],
            "/v1/completions",
            body.as_bytes(),
        )
    };
    // 60 tokens a minute: two requests of up to 45 tokens take it over, well before it drains.
    let mut refused = None;
    let mut requests = 0;
    for _ in 0..5 {
        requests += 1;
        let (code, text) = from("127.0.0.1");
        if code == 429 {
            refused = Some((code, text));
            break;
        }
        assert_eq!(code, 200, "{text}");
    }
    let refused = refused.expect("no 429 after five requests over a 60 tokens/min quota");
    let j = assert_error(refused, 429, "quota_exceeded");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(msg.contains("60 tokens per minute") && msg.contains("per client address"), "{msg}");
    // Another client address is served meanwhile.
    let (code, text) = from("127.0.0.2");
    assert_eq!(code, 200, "{text}");
    requests += 1;
    // A request's audit line is written when its session is released, which may come just after
    // the reply has reached the client: wait (boundedly) for one line per request.
    let is_audit = |l: &&str| l.starts_with("llamux serve: audit: seq=");
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = server.stderr.lock().unwrap().clone();
        if log.lines().filter(is_audit).count() >= requests || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let audit: Vec<&str> = log.lines().filter(is_audit).collect();
    assert_eq!(audit.len(), requests, "one audit line per request: {log}");
    assert!(audit.iter().any(|l| l.contains("client=127.0.0.1 ") && l.contains("outcome=over_token_quota")), "{log}");
    assert!(audit.iter().any(|l| l.contains("client=127.0.0.2 ") && l.contains("outcome=completed")), "{log}");
    assert!(audit.iter().all(|l| l.contains(" prompt_sha256=") && l.contains(" tokens_in=")), "{log}");
    let completed = audit.iter().filter(|l| l.contains("outcome=completed")).count();
    assert_eq!(completed + 1, audit.len(), "one refusal, every other request completed: {log}");
}

#[test]
fn bad_arguments_fail_with_one_line() {
    let fails = |args: &[&str], needle: &str| {
        let out = Command::new(bin()).arg("serve").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("llamux: error:") && err.contains(needle), "{args:?}: {err}");
    };
    fails(&["--parallel", "0"], "--parallel");
    fails(&["--max-tokens", "0"], "--max-tokens");
    fails(&["-m", "/no/such/model.gguf"], "not a known model name");
    let Some(model) = asset("LLAMUX_SMOLLM2") else { return };
    let m = model.to_string_lossy().into_owned();
    fails(&["-m", &m, "--template", "nope"], "unknown chat template");
    // A port that is taken.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    fails(&["-m", &m, "-c", "64", "--parallel", "1", "--port", &port], "cannot listen");
}
