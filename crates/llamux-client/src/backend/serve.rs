//! A running `llamux serve`, over its OpenAI-compatible HTTP API: chat requests to
//! `/v1/chat/completions`, plain continuation to `/v1/completions`, both streamed (server-sent
//! events); `/health`, `/v1/models` and `/metrics` for status and statistics.

use super::{Backend, BackendKind, Finish, Info, Outcome, Request, Sink};
use crate::config::Config;
use crate::error::{ClientError, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

const B: BackendKind = BackendKind::Serve;

/// The serve backend.
pub struct Serve {
    base: String,
    agent: ureq::Agent,
    max_prompt_bytes: usize,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(3).min(timeout)).timeout_read(timeout).build()
}

/// One line from an HTTP failure: the server's OpenAI-style message when it sent one.
fn http_error(e: ureq::Error) -> ClientError {
    match e {
        ureq::Error::Status(code, resp) => {
            let body = resp.into_string().unwrap_or_default();
            let msg = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or(body);
            if code == 400 {
                ClientError::BadInput(msg)
            } else {
                ClientError::backend(B, format!("HTTP {code}: {msg}"))
            }
        }
        ureq::Error::Transport(t) => ClientError::Unavailable { backend: B, reason: t.to_string() },
    }
}

impl Serve {
    /// Whether a server answers `/health` at `url` within `timeout`.
    pub fn answers(url: &str, timeout: Duration) -> bool {
        agent(timeout).get(&format!("{}/health", url.trim_end_matches('/'))).call().is_ok()
    }

    /// A client of the server at the configured URL (which must answer `/health`).
    pub fn open(cfg: &Config) -> Result<Self> {
        let base = cfg.serve_url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            return Err(ClientError::Config(format!("serve_url {base:?} must start with http://")));
        }
        let me = Serve {
            base,
            agent: agent(Duration::from_secs(cfg.limits.timeout_s)),
            max_prompt_bytes: cfg.limits.max_prompt_bytes,
        };
        me.agent.get(&me.url("/health")).call().map_err(|e| match http_error(e) {
            ClientError::Unavailable { reason, .. } => {
                ClientError::Unavailable { backend: B, reason: format!("no llamux serve at {} ({reason})", me.base) }
            }
            other => other,
        })?;
        Ok(me)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get_json(&self, path: &str) -> Result<Value> {
        let r = self.agent.get(&self.url(path)).call().map_err(http_error)?;
        let s = r.into_string().map_err(|e| ClientError::backend(B, e.to_string()))?;
        serde_json::from_str(&s).map_err(|e| ClientError::backend(B, format!("{path}: {e}")))
    }
}

impl Backend for Serve {
    fn kind(&self) -> BackendKind {
        B
    }

    fn generate(&mut self, req: &Request, sink: &mut Sink<'_>) -> Result<Outcome> {
        req.check(self.max_prompt_bytes)?;
        let t0 = Instant::now();
        let s = &req.sampling;
        let mut body = json!({
            "max_tokens": req.max_tokens,
            "temperature": s.temperature,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "min_p": s.min_p,
            "repeat_penalty": s.repeat_penalty,
            "seed": s.seed,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        let path = if req.raw {
            body["prompt"] = json!(req.raw_text());
            "/v1/completions"
        } else {
            body["messages"] = json!(req.messages);
            "/v1/chat/completions"
        };
        let resp = self
            .agent
            .post(&self.url(path))
            .set("content-type", "application/json")
            .send_string(&body.to_string())
            .map_err(http_error)?;
        let mut text = String::new();
        let mut finish = Finish::Stop;
        let (mut prompt_tokens, mut tokens) = (None, None);
        for line in BufReader::new(resp.into_reader()).lines() {
            let line = line.map_err(|e| ClientError::backend(B, format!("reading the stream: {e}")))?;
            let Some(data) = line.strip_prefix("data: ") else { continue };
            if data == "[DONE]" {
                break;
            }
            let v: Value =
                serde_json::from_str(data).map_err(|e| ClientError::backend(B, format!("bad event: {e}")))?;
            if let Some(m) = v["error"]["message"].as_str() {
                return Err(ClientError::backend(B, m));
            }
            if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                prompt_tokens = u["prompt_tokens"].as_u64().map(|n| n as usize);
                tokens = u["completion_tokens"].as_u64().map(|n| n as usize);
            }
            let Some(c) = v["choices"].get(0) else { continue };
            let piece = c["delta"]["content"].as_str().or_else(|| c["text"].as_str()).unwrap_or("");
            if !piece.is_empty() {
                text.push_str(piece);
                sink(piece)?;
            }
            if c["finish_reason"].as_str() == Some("length") {
                finish = Finish::Length;
            }
        }
        Ok(Outcome { text, finish, prompt_tokens, tokens, cached_tokens: 0, elapsed: t0.elapsed() })
    }

    fn status(&mut self) -> Result<Info> {
        let models = self.get_json("/v1/models")?;
        let ids: Vec<&str> =
            models["data"].as_array().map_or(Vec::new(), |a| a.iter().filter_map(|m| m["id"].as_str()).collect());
        let mut out = vec![
            ("backend".into(), B.name().into()),
            ("url".into(), self.base.clone()),
            ("model".into(), ids.join(",")),
        ];
        if let Ok(h) = self.get_json("/health") {
            if let Some(o) = h.as_object() {
                out.extend(
                    o.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))),
                );
            }
        }
        Ok(out)
    }

    fn stats(&mut self) -> Result<Info> {
        let r = self.agent.get(&self.url("/metrics")).call().map_err(http_error)?;
        let text = r.into_string().map_err(|e| ClientError::backend(B, e.to_string()))?;
        Ok(parse_metrics(&text))
    }

    fn settings(&mut self) -> Result<Info> {
        Ok(vec![("serve_url".into(), self.base.clone())])
    }
}

/// Prometheus text: every sample line as `name{labels}` and its value.
pub fn parse_metrics(text: &str) -> Info {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_parse() {
        let m = parse_metrics("# HELP x y\n# TYPE x counter\nllamux_requests_total{endpoint=\"chat\",status=\"200\"} 3\nllamux_queue_depth 0\n\n");
        assert_eq!(
            m,
            vec![
                ("llamux_requests_total{endpoint=\"chat\",status=\"200\"}".to_string(), "3".to_string()),
                ("llamux_queue_depth".to_string(), "0".to_string()),
            ]
        );
    }
}
