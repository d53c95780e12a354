//! `llamux run`: generate a continuation of a prompt, streamed to stdout.

use anyhow::{bail, Context, Result};
pub use llamux_client::models::loaded::{Loaded, Residence, Workload};
use llamux_core::model::Model;
use llamux_core::platform::Threads;
use llamux_core::sample::{Sampler, SamplerConfig};
use llamux_core::session::{Generation, KvType, Session, Step, Stop};
use llamux_core::tokenizer::Tokenizer;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Model-loading and sampling options shared by `run`, `chat` and `perplexity`.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// Model file or known model name.
    #[arg(short = 'm', long = "model", default_value = crate::registry::DEFAULT_MODEL)]
    pub model: String,
    /// Context length (default: the model's training context, at most 4096).
    #[arg(short = 'c', long = "ctx")]
    pub ctx: Option<usize>,
    /// Threads (default: one per physical core).
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    pub threads: usize,
    /// Pin threads to these CPUs (hexadecimal mask, e.g. 0x3; the thread count defaults to its size).
    #[arg(long = "cpu-mask")]
    pub cpu_mask: Option<String>,
    /// KV cache element type.
    #[arg(long = "kv-type", value_enum, default_value = "f16")]
    pub kv_type: KvTypeArg,
}

/// Largest KV cache a session may allocate.
pub const MAX_KV_BYTES: u64 = 16 << 30;

/// `--kv-type` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum KvTypeArg {
    /// Half precision (llama.cpp's default).
    F16,
    /// Single precision.
    F32,
}

impl ModelArgs {
    /// The thread pool these options ask for.
    pub fn pool(&self) -> Result<Threads> {
        crate::pool::threads(self.threads, self.cpu_mask.as_deref())
    }

    /// A session for `model` with the chosen context length and cache type.
    pub fn session(&self, model: &Model<'_>) -> Result<Session> {
        checked_session(model, context_len(model, self.ctx)?, self.kv_type, "lower -c")
    }
}

/// A session of `n_ctx` positions with a `kv_type` cache, refused (with `hint` on what to lower)
/// when the cache would exceed [`MAX_KV_BYTES`].
pub fn checked_session(model: &Model<'_>, n_ctx: usize, kv_type: KvTypeArg, hint: &str) -> Result<Session> {
    let ty = kv_type.kv_type();
    let elem = if ty == KvType::F16 { 2u64 } else { 4 };
    let kv_bytes = 2 * u64::from(model.hp.n_layer) * n_ctx as u64 * model.kv_dim() as u64 * elem;
    if kv_bytes > MAX_KV_BYTES {
        bail!(
            "a context of {n_ctx} tokens needs a {:.1} GiB KV cache (limit {} GiB); {hint}",
            kv_bytes as f64 / (1u64 << 30) as f64,
            MAX_KV_BYTES >> 30
        );
    }
    Ok(Session::with_kv_type(model, n_ctx, ty)?)
}

impl KvTypeArg {
    /// The core's cache type.
    pub fn kv_type(self) -> KvType {
        match self {
            KvTypeArg::F16 => KvType::F16,
            KvTypeArg::F32 => KvType::F32,
        }
    }
}

/// Sampling options.
#[derive(clap::Args, Clone)]
pub struct SampleArgs {
    /// Temperature (0 = greedy).
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temp: f32,
    /// Top-k (0 = off).
    #[arg(long = "top-k", default_value_t = 40)]
    pub top_k: usize,
    /// Top-p (1 = off).
    #[arg(long = "top-p", default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p (0 = off).
    #[arg(long = "min-p", default_value_t = 0.05)]
    pub min_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed.
    #[arg(long = "seed", default_value_t = 0)]
    pub seed: u64,
}

impl SampleArgs {
    /// The core's sampler configuration.
    pub fn config(&self) -> SamplerConfig {
        SamplerConfig {
            temperature: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: 64,
            seed: self.seed,
        }
    }
}

/// Arguments of `llamux run`.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt text.
    #[arg(short = 'p', long = "prompt", conflicts_with = "file")]
    pub prompt: Option<std::ffi::OsString>,
    /// Read the prompt from a file.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Tokens to generate (stops earlier at end of generation or when the context is full).
    #[arg(short = 'n', long = "n-predict", default_value_t = 256)]
    pub n_predict: usize,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Stop when the output contains this string (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

/// Opens and maps `arg` (path or known name).
pub fn open_model(arg: &str) -> Result<Loaded> {
    Loaded::open(&crate::resolve_model(arg)?)
}

/// Context length for a model: `-c`, else its training context capped at 4096.
pub fn context_len(model: &Model<'_>, requested: Option<usize>) -> Result<usize> {
    let n = requested.unwrap_or_else(|| (model.hp.n_ctx_train as usize).min(4096));
    if n == 0 || n > 1 << 20 {
        bail!("context length {n} is out of range (1 to 1048576)");
    }
    Ok(n)
}

/// What a generation produced.
pub struct Generated {
    /// Token ids, without the end-of-generation token.
    pub tokens: Vec<u32>,
    /// Their text.
    pub text: Vec<u8>,
    /// Generation stopped because the context was full.
    pub stopped_by_context: bool,
}

/// Runs `gen` to its end (feeding whatever prompt it still has), handing the bytes of each
/// generated token to `on_piece` as it is produced.
pub fn generate(
    model: &Model<'_>,
    tok: &Tokenizer<'_>,
    sess: &mut Session,
    par: &Threads,
    gen: &mut Generation,
    mut on_piece: impl FnMut(&[u8]) -> Result<()>,
) -> Result<Generated> {
    let mut out = Generated { tokens: Vec::new(), text: Vec::new(), stopped_by_context: false };
    loop {
        match gen.step(model, tok, sess, par)? {
            Step::Prompt => {}
            Step::Token { id, piece } => {
                out.tokens.push(id);
                out.text.extend_from_slice(piece);
                on_piece(piece)?;
            }
            Step::End(stop) => {
                out.stopped_by_context = stop == Stop::ContextFull;
                return Ok(out);
            }
        }
    }
}

/// Emits complete UTF-8 from a byte stream, holding back an incomplete trailing sequence.
#[derive(Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Appends bytes; returns the text that is now complete (invalid bytes become U+FFFD).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let cut = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let out = String::from_utf8_lossy(&self.pending[..cut]).into_owned();
        self.pending.drain(..cut);
        out
    }

    /// Whatever is left.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

fn prompt_bytes(a: &RunArgs) -> Result<Vec<u8>> {
    if let Some(f) = &a.file {
        return std::fs::read(f).with_context(|| format!("cannot read prompt file {}", f.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(a.prompt.as_deref().map(|p| p.as_bytes().to_vec()).unwrap_or_default())
    }
    #[cfg(not(unix))]
    Ok(a.prompt.as_deref().map(|p| p.to_string_lossy().into_owned().into_bytes()).unwrap_or_default())
}

/// Runs `llamux run`.
pub fn run(a: RunArgs) -> Result<()> {
    let cfg = a.sample.config();
    cfg.validate()?;
    let prompt = prompt_bytes(&a)?;
    let loaded = crate::run::open_model(&a.model.model)?;
    let (model, tok) = loaded.bind(Workload::Decode, Residence::Mapped)?;
    let mut sess = a.model.session(&model)?;
    let n_ctx = sess.n_ctx();
    let par = a.model.pool()?;
    let prompt_tokens = tok.encode(&prompt, true, true);
    if prompt_tokens.is_empty() {
        bail!("the prompt is empty and the model adds no BOS token; give a prompt with -p");
    }
    if prompt_tokens.len() >= n_ctx {
        bail!("the prompt has {} tokens but the context holds {n_ctx}; shorten it or raise -c", prompt_tokens.len());
    }
    let sampler = Sampler::new(cfg, model.hp.n_vocab as usize)?;

    let stop: Vec<&[u8]> = a.stop.iter().map(|s| s.as_bytes()).collect();
    let mut gen = Generation::new(sampler, prompt_tokens.clone(), 0, a.n_predict, &stop)?;
    let t0 = Instant::now();
    while gen.feeding_prompt() {
        gen.step(&model, &tok, &mut sess, &par)?;
    }
    let prompt_ms = t0.elapsed().as_secs_f64() * 1e3;

    let t1 = Instant::now();
    let mut stream = Utf8Stream::default();
    let mut stdout = std::io::stdout().lock();
    let json = a.json;
    let out = generate(&model, &tok, &mut sess, &par, &mut gen, |piece| {
        if !json {
            write!(stdout, "{}", stream.push(piece))?;
            stdout.flush()?;
        }
        Ok(())
    })?;
    let (generated, text, stopped_by_context) = (out.tokens, out.text, out.stopped_by_context);
    let gen_s = t1.elapsed().as_secs_f64();
    if a.json {
        let out = serde_json::json!({
            "prompt_tokens": prompt_tokens,
            "tokens": generated,
            "text": String::from_utf8_lossy(&text),
            "timings": {
                "prompt_ms": prompt_ms,
                "gen_ms": gen_s * 1e3,
                "tokens_per_s": if gen_s > 0.0 { generated.len() as f64 / gen_s } else { 0.0 },
            },
            "stopped_by_context": stopped_by_context,
        });
        writeln!(stdout, "{out}")?;
    } else {
        writeln!(stdout, "{}", stream.finish())?;
        eprintln!(
            "\n[{} prompt tokens in {:.0} ms; {} tokens in {:.0} ms, {:.2} tok/s{}]",
            prompt_tokens.len(),
            prompt_ms,
            generated.len(),
            gen_s * 1e3,
            if gen_s > 0.0 { generated.len() as f64 / gen_s } else { 0.0 },
            if stopped_by_context { "; stopped: context full" } else { "" }
        );
    }
    Ok(())
}
