//! The engine in this process: the model memory-mapped, one session reused across requests (a
//! prompt sharing a prefix with the previous one feeds only the rest), and the KV state of a
//! request's system prompt kept on disk (`prompt-cache/` in the model cache), so that a tool's
//! fixed system prompt is computed once, not by every command.

use super::{core_message, Backend, BackendKind, Finish, Info, Outcome, Request, Sink};
use crate::config::Config;
use crate::error::{ClientError, Result};
use crate::models::loaded::{Loaded, Residence, Workload};
use crate::models::{cache, pool, registry};
use crate::state::Counters;
use crate::text::TextOut;
use llamux_core::chat::{self, ChatTemplate};
use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::platform::Threads;
use llamux_core::sample::{Sampler, SamplerConfig};
use llamux_core::session::{Generation, KvSlice, KvType, Session, Step, Stop, DEFAULT_MAX_BATCH};
use llamux_core::tokenizer::Tokenizer;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const B: BackendKind = BackendKind::InProcess;

fn err(e: impl std::fmt::Display) -> ClientError {
    ClientError::backend(B, e.to_string())
}

/// The in-process backend.
pub struct InProcess {
    path: PathBuf,
    /// The model file, with its matrices interleaved where that pays.
    loaded: Loaded,
    threads: Threads,
    n_threads: usize,
    n_ctx: usize,
    max_prompt_bytes: usize,
    template: Option<ChatTemplate>,
    session: Option<Session>,
    /// Tokens in the session's cache.
    cached: Vec<u32>,
    /// Where system-prompt states are kept (`None`: not kept).
    prompt_cache: Option<PathBuf>,
}

impl InProcess {
    /// Resolves and maps the configured model (a known name is pulled on first use) and checks
    /// that it loads.
    pub fn open(cfg: &Config) -> Result<Self> {
        let path = registry::resolve(&cfg.model).map_err(|e| ClientError::NoModel(format!("{e:#}")))?;
        let loaded = Loaded::open(&path).map_err(|e| ClientError::NoModel(format!("{e:#}")))?;
        let template = match &cfg.template {
            Some(name) => Some(
                ChatTemplate::from_name(name)
                    .ok_or_else(|| ClientError::Config(format!("unknown chat template {name:?}")))?,
            ),
            None => None,
        };
        let n_threads = if cfg.threads == 0 { pool::physical_cores() } else { cfg.threads };
        let mut me = InProcess {
            path,
            loaded,
            threads: Threads::new(n_threads),
            n_threads,
            n_ctx: cfg.limits.n_ctx,
            max_prompt_bytes: cfg.limits.max_prompt_bytes,
            template,
            session: None,
            cached: Vec::new(),
            prompt_cache: cache::dir("prompt-cache").ok(),
        };
        {
            let (g, model, _tok) = bind(&me.loaded, &me.path)?;
            me.n_ctx = me.n_ctx.min(model.hp.n_ctx_train.max(1) as usize);
            if me.template.is_none() {
                me.template = g.get_str("tokenizer.chat_template").and_then(ChatTemplate::detect);
            }
        }
        Ok(me)
    }

    /// Keeps system-prompt states in `dir` (`None`: nowhere).
    pub fn set_prompt_cache(&mut self, dir: Option<PathBuf>) {
        self.prompt_cache = dir;
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        &self.path
    }

    fn bind(&self) -> Result<(Gguf<'_>, Model<'_>, Tokenizer<'_>)> {
        bind(&self.loaded, &self.path)
    }

    /// The text a request becomes, and its fixed start (a system prompt and the messages after it
    /// but the last).
    fn format(&self, req: &Request) -> Result<(String, Option<String>)> {
        if req.raw {
            return Ok((req.raw_text(), None));
        }
        let Some(t) = self.template else {
            return Err(ClientError::BadInput(format!(
                "{} has no chat template (set `template` in the configuration, or ask for plain continuation)",
                self.path.display()
            )));
        };
        let msgs: Vec<chat::Message> = req.messages.iter().map(core_message).collect();
        // Everything before the last message (the system prompt and any fixed examples) is the part
        // whose state is worth keeping for the next command.
        let system = match msgs.first() {
            Some(m) if m.role == chat::Role::System && msgs.len() > 1 => Some(t.apply(&msgs[..msgs.len() - 1], false)),
            _ => None,
        };
        Ok((t.apply(&msgs, true), system))
    }
}

/// Parses the mapped file and binds model and tokenizer (the matrices interleaved once, at the
/// first call, where that pays for one session's decoding).
fn bind<'a>(loaded: &'a Loaded, path: &Path) -> Result<(Gguf<'a>, Model<'a>, Tokenizer<'a>)> {
    let bad = |e: &dyn std::fmt::Display| ClientError::NoModel(format!("{}: {e}", path.display()));
    let g = Gguf::parse(loaded.bytes()).map_err(|e| bad(&e))?;
    let (model, tok) = loaded.bind(Workload::Decode, Residence::Mapped).map_err(|e| bad(&format_args!("{e:#}")))?;
    Ok((g, model, tok))
}

/// The file holding the state of `tokens` for this model file, in `dir`.
fn cache_file(dir: Option<&PathBuf>, path: &Path, model: &Model<'_>, tokens: &[u32]) -> Option<PathBuf> {
    let dir = dir?;
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
    let mut h = Sha256::new();
    h.update(std::fs::canonicalize(path).ok()?.to_string_lossy().as_bytes());
    h.update(meta.len().to_le_bytes());
    h.update(mtime.as_nanos().to_le_bytes());
    h.update(model.hp.n_layer.to_le_bytes());
    h.update((model.kv_dim() as u64).to_le_bytes());
    for t in tokens {
        h.update(t.to_le_bytes());
    }
    let name: String = h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect();
    Some(dir.join(format!("{name}.kv")))
}

const MAGIC: &[u8; 8] = b"LXKVST01";

/// Stored states kept: the newest, by modification time.
const KEEP_STATES: usize = 32;

/// Removes all but the `keep` newest `.kv` files of `dir`.
fn prune(dir: Option<&Path>, keep: usize) {
    let Some(Ok(entries)) = dir.map(std::fs::read_dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "kv"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, p) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(p);
    }
}

/// Writes positions `0..tokens.len()` of `sess`'s cache: a header, the tokens, then each layer's
/// keys and values as f16.
fn save_state(path: &Path, sess: &Session, n_layer: usize, tokens: &[u32]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("no directory"))?;
    let kv_dim = sess.kv.kv_dim;
    let n = tokens.len();
    let mut out = Vec::with_capacity(32 + 4 * n + 4 * n_layer * n * kv_dim);
    out.extend_from_slice(MAGIC);
    for v in [n_layer, kv_dim, n] {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    for t in tokens {
        out.extend_from_slice(&t.to_le_bytes());
    }
    for layer in 0..n_layer {
        for slice in [sess.kv.keys(layer), sess.kv.values(layer)] {
            match slice {
                Some(KvSlice::F16(s)) if s.len() >= n * kv_dim => {
                    for x in &s[..n * kv_dim] {
                        out.extend_from_slice(&x.0);
                    }
                }
                _ => return Err(std::io::Error::other("the cache is not f16")),
            }
        }
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&out)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Loads a state written by [`save_state`] for exactly `tokens` into `sess` (positions
/// `0..tokens.len()`); `false` (the session untouched) when the file is missing or does not match.
fn load_state(path: &Path, sess: &mut Session, n_layer: usize, tokens: &[u32]) -> bool {
    let kv_dim = sess.kv.kv_dim;
    let n = tokens.len();
    if n >= sess.n_ctx() {
        return false;
    }
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let mut b = Vec::new();
    if f.read_to_end(&mut b).is_err() {
        return false;
    }
    let head = 8 + 12 + 4 * n;
    let want = head + 2 * 2 * n_layer * n * kv_dim;
    if b.len() != want || &b[..8] != MAGIC {
        return false;
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if (u32_at(8), u32_at(12), u32_at(16)) != (n_layer as u32, kv_dim as u32, n as u32) {
        return false;
    }
    if (0..n).any(|i| u32_at(20 + 4 * i) != tokens[i]) {
        return false;
    }
    let f16_at = |i: usize| half::f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32();
    let (mut k, mut v) = (vec![0f32; kv_dim], vec![0f32; kv_dim]);
    let plane = n * kv_dim * 2;
    for layer in 0..n_layer {
        let kbase = head + layer * 2 * plane;
        let vbase = kbase + plane;
        for pos in 0..n {
            for j in 0..kv_dim {
                k[j] = f16_at(kbase + (pos * kv_dim + j) * 2);
                v[j] = f16_at(vbase + (pos * kv_dim + j) * 2);
            }
            sess.kv.store(layer, pos, &k, &v);
        }
    }
    sess.pos = n;
    true
}

impl Backend for InProcess {
    fn kind(&self) -> BackendKind {
        B
    }

    fn generate(&mut self, req: &Request, sink: &mut Sink<'_>) -> Result<Outcome> {
        req.check(self.max_prompt_bytes)?;
        let t0 = Instant::now();
        let (text, system) = self.format(req)?;
        let cfg = SamplerConfig {
            temperature: req.sampling.temperature,
            top_k: req.sampling.top_k,
            top_p: req.sampling.top_p,
            min_p: req.sampling.min_p,
            repeat_penalty: req.sampling.repeat_penalty,
            repeat_last_n: 64,
            seed: req.sampling.seed,
        };
        cfg.validate().map_err(|e| ClientError::BadInput(e.to_string()))?;
        let session = self.session.take();
        let mut cached = std::mem::take(&mut self.cached);
        let (_g, model, tok) = bind(&self.loaded, &self.path)?;
        let tokens = tok.encode(text.as_bytes(), true, true);
        if tokens.is_empty() {
            return Err(ClientError::BadInput("the prompt is empty".into()));
        }
        if tokens.len() >= self.n_ctx {
            return Err(ClientError::BadInput(format!(
                "the prompt has {} tokens but the context holds {} (limits.n_ctx)",
                tokens.len(),
                self.n_ctx
            )));
        }
        let mut sess = match session {
            Some(s) => s,
            None => Session::with_options(&model, self.n_ctx, KvType::F16, DEFAULT_MAX_BATCH)
                .map_err(|_| err(format!("out of memory for a session of {} tokens", self.n_ctx)))?,
        };
        let n_layer = model.hp.n_layer as usize;
        // Reuse what the session holds, else the system prompt's stored state.
        let mut keep = cached.iter().zip(&tokens).take_while(|(a, b)| a == b).count().min(tokens.len() - 1);
        let mut save_to = None;
        if let Some(system) = system {
            let sys = tok.encode(system.as_bytes(), true, true);
            if !sys.is_empty() && sys.len() < tokens.len() && tokens.starts_with(&sys) && keep < sys.len() {
                if let Some(file) = cache_file(self.prompt_cache.as_ref(), &self.path, &model, &sys) {
                    if load_state(&file, &mut sess, n_layer, &sys) {
                        keep = sys.len();
                    } else {
                        save_to = Some((file, sys.len()));
                    }
                }
            }
        }
        sess.truncate(keep);
        cached.truncate(keep);
        let sampler = Sampler::new(cfg, model.hp.n_vocab as usize).map_err(err)?;
        let stops: Vec<&[u8]> = req.stop.iter().map(|s| s.as_bytes()).collect();
        let prompt_len = tokens.len();
        let mut gen = Generation::new(sampler, tokens, keep, req.max_tokens, &stops).map_err(err)?;
        let mut out = TextOut::new(req.stop.iter().map(|s| s.as_bytes().to_vec()).collect());
        let mut all = String::new();
        let mut generated = 0usize;
        let mut first_token = None;
        let mut prompt_done = None;
        let result: Result<Stop> = loop {
            let step = match gen.step(&model, &tok, &mut sess, &self.threads) {
                Ok(s) => s,
                Err(e) => break Err(err(e)),
            };
            match step {
                Step::Prompt => {}
                Step::Token { piece, .. } => {
                    generated += 1;
                    prompt_done.get_or_insert_with(Instant::now);
                    first_token.get_or_insert_with(|| t0.elapsed());
                    let s = out.push(piece);
                    if !s.is_empty() {
                        all.push_str(&s);
                        if let Err(e) = sink(&s) {
                            break Err(e);
                        }
                    }
                }
                Step::End(stop) => break Ok(stop),
            }
        };
        let (_, in_cache) = gen.finish();
        // The state of the system prompt, for the next command.
        if let Some((file, n)) = save_to {
            if in_cache.len() >= n && sess.pos >= n && save_state(&file, &sess, n_layer, &in_cache[..n]).is_ok() {
                prune(file.parent(), KEEP_STATES);
            }
        }
        self.cached = in_cache;
        self.session = Some(sess);
        let stop = result?;
        let rest = out.finish();
        if !rest.is_empty() {
            all.push_str(&rest);
            sink(&rest)?;
        }
        let elapsed = t0.elapsed();
        let decode = prompt_done.map_or(std::time::Duration::ZERO, |t| t.elapsed());
        Counters::add(&Counters {
            requests: 1,
            prompt_tokens: prompt_len as u64,
            cached_prompt_tokens: keep as u64,
            tokens: generated as u64,
            prompt_us: (elapsed.saturating_sub(decode)).as_micros() as u64,
            decode_us: decode.as_micros() as u64,
            first_token_us: first_token.map_or(0, |d| d.as_micros() as u64),
        });
        Ok(Outcome {
            text: all,
            finish: match stop {
                Stop::Length | Stop::ContextFull => Finish::Length,
                Stop::EndOfGeneration | Stop::StopString => Finish::Stop,
            },
            prompt_tokens: Some(prompt_len),
            tokens: Some(generated),
            cached_tokens: keep,
            elapsed,
        })
    }

    fn status(&mut self) -> Result<Info> {
        let (g, model, _) = self.bind()?;
        let name = g.get_str("general.name").unwrap_or("").to_string();
        Ok(vec![
            ("backend".into(), B.name().into()),
            ("model".into(), self.path.display().to_string()),
            ("name".into(), name),
            ("bytes".into(), self.loaded.bytes().len().to_string()),
            ("vocab".into(), model.hp.n_vocab.to_string()),
            ("layers".into(), model.hp.n_layer.to_string()),
            ("context_train".into(), model.hp.n_ctx_train.to_string()),
            ("context".into(), self.n_ctx.to_string()),
            ("threads".into(), self.n_threads.to_string()),
            ("chat_template".into(), self.template.map_or("none".into(), |t| format!("{t:?}").to_lowercase())),
        ])
    }

    fn stats(&mut self) -> Result<Info> {
        let c = Counters::read();
        let per_s =
            |n: u64, us: u64| if us > 0 { format!("{:.3}", n as f64 * 1e6 / us as f64) } else { "0.000".into() };
        Ok(vec![
            ("requests".into(), c.requests.to_string()),
            ("prompt_tokens".into(), c.prompt_tokens.to_string()),
            ("cached_prompt_tokens".into(), c.cached_prompt_tokens.to_string()),
            ("tokens".into(), c.tokens.to_string()),
            ("decode_us".into(), c.decode_us.to_string()),
            ("tokens_per_s".into(), per_s(c.tokens, c.decode_us)),
            ("first_token_ms".into(), (c.first_token_us.checked_div(c.requests).unwrap_or(0) / 1000).to_string()),
            ("model_bytes".into(), self.loaded.bytes().len().to_string()),
        ])
    }

    fn settings(&mut self) -> Result<Info> {
        Ok(vec![
            ("n_ctx".into(), self.n_ctx.to_string()),
            ("threads".into(), self.n_threads.to_string()),
            ("max_prompt_bytes".into(), self.max_prompt_bytes.to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_states_only() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        for i in 0..5u64 {
            let f = std::fs::File::create(dir.path().join(format!("{i}.kv"))).unwrap();
            f.set_modified(t0 + std::time::Duration::from_secs(i)).unwrap();
        }
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        prune(Some(dir.path()), 2);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["3.kv", "4.kv", "other.txt"]);
    }
}
