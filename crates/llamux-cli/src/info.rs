//! `llamux info`: what is inside a GGUF file.

use crate::mapped::MappedFile;
use anyhow::{Context, Result};
use llamux_core::gguf::{Gguf, TensorInfo, Value};
use llamux_core::model::{FileType, HParams};
use llamux_core::GgmlType;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;

/// Arguments of `llamux info`.
#[derive(clap::Args)]
pub struct InfoArgs {
    /// Model file, or a known model name.
    #[arg(required_unless_present = "system")]
    model: Option<String>,
    /// Describe this machine instead: CPU features, kernel tiers, threads, page size, memory.
    #[arg(long, conflicts_with_all = ["model", "tensors"])]
    system: bool,
    /// Also list every tensor.
    #[arg(long)]
    tensors: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Per-type totals of the tensors.
struct Mix {
    by_type: BTreeMap<GgmlType, (usize, u64, u64)>, // tensors, elements, bytes
}

impl Mix {
    fn of(tensors: &[TensorInfo<'_>]) -> Self {
        let mut by_type = BTreeMap::new();
        for t in tensors {
            let e = by_type.entry(t.ggml_type).or_insert((0usize, 0u64, 0u64));
            e.0 += 1;
            e.1 += t.n_elements();
            e.2 += t.size as u64;
        }
        Mix { by_type }
    }

    fn params(&self) -> u64 {
        self.by_type.values().map(|v| v.1).sum()
    }

    fn bytes(&self) -> u64 {
        self.by_type.values().map(|v| v.2).sum()
    }
}

/// Short human form of a metadata value (arrays summarized).
fn show(v: &Value<'_>) -> String {
    match v {
        Value::String(s) if s.chars().count() > 60 => format!("{:?}…", s.chars().take(60).collect::<String>()),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("[{:?}; {}]", a.elem_type(), a.len()),
        Value::F32(x) => format!("{x}"),
        Value::F64(x) => format!("{x}"),
        Value::Bool(b) => format!("{b}"),
        v => v.as_i64().map(|x| x.to_string()).or_else(|| v.as_u64().map(|x| x.to_string())).unwrap_or_default(),
    }
}

fn to_json(v: &Value<'_>, depth: usize) -> Json {
    match v {
        Value::String(s) => json!(s),
        Value::Bool(b) => json!(b),
        Value::F32(x) => json!(x),
        Value::F64(x) => json!(x),
        // Large arrays (vocabularies) are summarized; small ones are shown in full.
        Value::Array(a) if a.len() > 64 || depth > 2 => json!({"type": format!("{:?}", a.elem_type()), "len": a.len()}),
        Value::Array(a) => Json::Array(a.iter().map(|x| to_json(&x, depth + 1)).collect()),
        v => v.as_i64().map(|x| json!(x)).or_else(|| v.as_u64().map(|x| json!(x))).unwrap_or(Json::Null),
    }
}

struct TokenizerSummary {
    model: Option<String>,
    pre: Option<String>,
    n_tokens: usize,
    n_merges: usize,
    bos: Option<(u64, String)>,
    eos: Option<(u64, String)>,
    chat_template: bool,
}

fn tokenizer_summary(g: &Gguf<'_>) -> TokenizerSummary {
    let tokens = g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array());
    let token = |key: &str| {
        let id = g.get_u64(key)?;
        let text = tokens.and_then(|a| usize::try_from(id).ok().and_then(|i| a.get(i))).and_then(|v| v.as_str());
        Some((id, text.unwrap_or("?").to_string()))
    };
    TokenizerSummary {
        model: g.get_str("tokenizer.ggml.model").map(str::to_string),
        pre: g.get_str("tokenizer.ggml.pre").map(str::to_string),
        n_tokens: tokens.map_or(0, |a| a.len()),
        n_merges: g.get("tokenizer.ggml.merges").and_then(|v| v.as_array()).map_or(0, |a| a.len()),
        bos: token("tokenizer.ggml.bos_token_id"),
        eos: token("tokenizer.ggml.eos_token_id"),
        chat_template: g.get_str("tokenizer.chat_template").is_some(),
    }
}

fn file_type_name(g: &Gguf<'_>) -> Option<String> {
    let id = g.get_u64("general.file_type")?;
    Some(u32::try_from(id).ok().and_then(FileType::from_id).map_or(format!("unknown ({id})"), |f| f.name().to_string()))
}

/// Runs `llamux info`.
pub fn run(a: InfoArgs) -> Result<()> {
    if a.system {
        return system(a.json);
    }
    let path = crate::resolve_model(a.model.as_deref().context("a model is required (or --system)")?)?;
    let file = MappedFile::open(&path)?;
    let g = Gguf::parse(file.bytes()).with_context(|| format!("{}", path.display()))?;
    let hp = HParams::from_gguf(&g);
    let mix = Mix::of(g.tensors());
    let tok = tokenizer_summary(&g);
    if a.json {
        print_json(&path.display().to_string(), &g, &hp, &mix, &tok);
    } else {
        print_text(&path.display().to_string(), &g, &hp, &mix, &tok, a.tensors);
    }
    Ok(())
}

fn shape(t: &TensorInfo<'_>) -> String {
    let d: Vec<_> = t.dims().iter().map(|d| d.to_string()).collect();
    format!("[{}]", d.join(", "))
}

fn print_text(
    path: &str,
    g: &Gguf<'_>,
    hp: &Result<HParams, llamux_core::model::ModelError>,
    mix: &Mix,
    tok: &TokenizerSummary,
    tensors: bool,
) {
    println!("file:          {path}");
    println!(
        "format:        GGUF v{}, {} bytes, alignment {}, data at {}",
        g.version(),
        g.bytes().len(),
        g.alignment(),
        g.data_offset()
    );
    println!("architecture:  {}", g.architecture().unwrap_or("(none)"));
    if let Some(n) = g.get_str("general.name") {
        println!("name:          {n}");
    }
    if let Some(ft) = file_type_name(g) {
        println!("file type:     {ft}");
    }
    println!(
        "parameters:    {} ({:.1} M) in {} tensors, {:.1} MiB",
        mix.params(),
        mix.params() as f64 / 1e6,
        g.tensors().len(),
        mix.bytes() as f64 / 1048576.0
    );
    match hp {
        Ok(h) => {
            println!("hyper-parameters:");
            println!(
                "  vocab {}, context {}, embedding {}, layers {}, feed-forward {}",
                h.n_vocab, h.n_ctx_train, h.n_embd, h.n_layer, h.n_ff
            );
            println!(
                "  heads {} (kv {}), head dim {}, rope dims {}, rope base {}, rms eps {:e}",
                h.n_head, h.n_head_kv, h.head_dim, h.n_rot, h.rope_freq_base, h.rms_eps
            );
            if let Some(w) = h.sliding_window {
                println!("  sliding window {w}");
            }
        }
        Err(e) if !g.tensors().is_empty() => println!("hyper-parameters: unavailable ({e})"),
        Err(_) => {}
    }
    if !mix.by_type.is_empty() {
        println!("quantization mix:");
        for (t, (n, e, b)) in &mix.by_type {
            println!("  {:<6} {:>4} tensors {:>12} params {:>9.1} MiB", t.name(), n, e, *b as f64 / 1048576.0);
        }
    }
    if tok.model.is_some() || tok.n_tokens > 0 {
        print!("tokenizer:     {} ", tok.model.as_deref().unwrap_or("?"));
        if let Some(p) = &tok.pre {
            print!("(pre {p}) ");
        }
        print!("{} tokens", tok.n_tokens);
        if tok.n_merges > 0 {
            print!(", {} merges", tok.n_merges);
        }
        if let Some((id, t)) = &tok.bos {
            print!(", bos {id} {t:?}");
        }
        if let Some((id, t)) = &tok.eos {
            print!(", eos {id} {t:?}");
        }
        if tok.chat_template {
            print!(", chat template");
        }
        println!();
    }
    println!("metadata ({} keys):", g.metadata().len());
    for kv in g.metadata() {
        println!("  {:<44} {}", kv.key, show(&kv.value));
    }
    if tensors {
        println!("tensors:");
        println!("  {:<40} {:<6} {:<22} {:>12} {:>12}", "name", "type", "shape", "bytes", "offset");
        for t in g.tensors() {
            println!("  {:<40} {:<6} {:<22} {:>12} {:>12}", t.name, t.ggml_type.name(), shape(t), t.size, t.offset);
        }
    }
}

fn print_json(
    path: &str,
    g: &Gguf<'_>,
    hp: &Result<HParams, llamux_core::model::ModelError>,
    mix: &Mix,
    tok: &TokenizerSummary,
) {
    let mut metadata = Map::new();
    for kv in g.metadata() {
        metadata.insert(kv.key.to_string(), to_json(&kv.value, 0));
    }
    let quant: Map<String, Json> = mix
        .by_type
        .iter()
        .map(|(t, (n, e, b))| (t.name().to_string(), json!({"tensors": n, "elements": e, "bytes": b})))
        .collect();
    let hparams = match hp {
        Ok(h) => json!({
            "n_vocab": h.n_vocab, "n_ctx_train": h.n_ctx_train, "n_embd": h.n_embd, "n_layer": h.n_layer,
            "n_ff": h.n_ff, "n_head": h.n_head, "n_head_kv": h.n_head_kv, "head_dim": h.head_dim,
            "n_rot": h.n_rot, "rope_freq_base": h.rope_freq_base, "rms_eps": h.rms_eps,
            "sliding_window": h.sliding_window,
        }),
        Err(e) => json!({"error": e.to_string()}),
    };
    let tensors: Vec<Json> = g
        .tensors()
        .iter()
        .map(|t| json!({"name": t.name, "type": t.ggml_type.name(), "shape": t.dims(), "offset": t.offset, "bytes": t.size}))
        .collect();
    let out = json!({
        "file": path,
        "gguf_version": g.version(),
        "size": g.bytes().len(),
        "alignment": g.alignment(),
        "data_offset": g.data_offset(),
        "architecture": g.architecture(),
        "name": g.get_str("general.name"),
        "file_type": file_type_name(g),
        "parameters": mix.params(),
        "hparams": hparams,
        "quantization": quant,
        "tokenizer": {
            "model": tok.model, "pre": tok.pre, "tokens": tok.n_tokens, "merges": tok.n_merges,
            "bos": tok.bos.as_ref().map(|b| b.0), "eos": tok.eos.as_ref().map(|e| e.0),
            "chat_template": tok.chat_template,
        },
        "metadata": metadata,
        "tensors": tensors,
    });
    println!("{out}");
}

/// `llamux info --system`.
fn system(json_out: bool) -> Result<()> {
    use llamux_core::isa::{self, Simd};
    use std::io::Write;
    let f = isa::features();
    let flags = [
        ("avx2", f.avx2),
        ("fma", f.fma),
        ("f16c", f.f16c),
        ("avx512f", f.avx512f),
        ("avx512bw", f.avx512bw),
        ("avx512vl", f.avx512vl),
        ("avx512dq", f.avx512dq),
        ("avx512vnni", f.avx512vnni),
        ("avxvnni", f.avxvnni),
        ("neon", f.neon),
        ("dotprod", f.dotprod),
    ];
    let have: Vec<&str> = flags.iter().filter(|x| x.1).map(|x| x.0).collect();
    let tiers: Vec<&str> = Simd::available().map(|s| s.isa().name()).collect();
    let env = std::env::var("LLAMUX_ISA").ok().filter(|v| !v.is_empty());
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let threads = crate::bench::default_threads();
    let page = page_size();
    let mem = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| crate::bench::proc_kib(&s, "MemTotal:"));
    let mut out = std::io::stdout().lock();
    if json_out {
        let j = json!({
            "arch": std::env::consts::ARCH,
            "cpu": cpu,
            "features": flags.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<String, Json>>(),
            "isa": isa::active().name(),
            "isa_best": f.best().name(),
            "isa_available": tiers,
            "llamux_isa": env,
            "default_threads": threads,
            "page_size": page,
            "physical_memory_bytes": mem,
        });
        writeln!(out, "{j}")?;
        return Ok(());
    }
    writeln!(out, "arch:          {}", std::env::consts::ARCH)?;
    if let Some(c) = &cpu {
        writeln!(out, "cpu:           {c}")?;
    }
    writeln!(out, "features:      {}", if have.is_empty() { "(none)".to_string() } else { have.join(" ") })?;
    let why = match &env {
        Some(v) => format!("LLAMUX_ISA={v}"),
        None => "the CPU's best".to_string(),
    };
    writeln!(out, "isa in use:    {} ({why})", isa::active().name())?;
    writeln!(out, "isa available: {}", tiers.join(", "))?;
    writeln!(out, "threads:       {threads} (default of -t)")?;
    if let Some(p) = page {
        writeln!(out, "page size:     {p} bytes")?;
    }
    if let Some(m) = mem {
        writeln!(out, "memory:        {:.1} GiB", m as f64 / (1u64 << 30) as f64)?;
    }
    Ok(())
}

/// The page size from the auxiliary vector (`AT_PAGESZ`), on Linux.
fn page_size() -> Option<u64> {
    const AT_PAGESZ: u64 = 6;
    let aux = std::fs::read("/proc/self/auxv").ok()?;
    let word = |b: &[u8]| b.try_into().ok().map(u64::from_ne_bytes);
    aux.chunks_exact(16).map(|e| (word(&e[..8]), word(&e[8..]))).find_map(|(k, v)| (k? == AT_PAGESZ).then_some(v?))
}
