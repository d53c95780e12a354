//! `llamux synth`: llama-architecture GGUF models with seeded random weights and a real vocabulary,
//! quantized with llama.cpp's per-tensor type mix. They stand in for TinyLlama-shaped checkpoints
//! in tests and benchmarks.

use crate::mapped::MappedFile;
use crate::quantize::{params_bar, parse_ftype, quantize_rows, write_model};
use anyhow::{Context, Result};
use llamux_core::gguf::{Gguf, GgufWriter, MetaValue};
use llamux_core::model::{FileType, TensorRole};
use llamux_core::sample::Rng;
use llamux_core::GgmlType;
use std::path::PathBuf;

/// Model shapes `synth` can write.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Shape {
    /// TinyLlama-1.1B: 22 layers, n_embd 2048, FFN 5632, 32 heads, 4 KV heads, ctx 2048.
    Tinyllama,
    /// A few-MB model for fast tests: 2 layers, n_embd 256, FFN 512, 4 heads, 2 KV heads, ctx 512.
    Tiny,
}

/// Architectures `synth` can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// LLaMA (TinyLlama): SentencePiece vocabulary, normal RoPE.
    Llama,
    /// Qwen2: Q/K/V biases, NeoX RoPE (base 1e6), byte-level BPE vocabulary.
    Qwen2,
}

impl Arch {
    fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }

    /// The llama.cpp test vocabulary used by default.
    fn vocab(self) -> &'static str {
        match self {
            Arch::Llama => "llama-spm",
            Arch::Qwen2 => "qwen2",
        }
    }
}

/// Hyper-parameters of a synthetic model.
struct Dims {
    n_layer: u32,
    n_embd: u64,
    n_ff: u64,
    n_head: u32,
    n_head_kv: u32,
    n_ctx: u32,
    rope_base: f32,
    rms_eps: f32,
}

impl Shape {
    fn dims(self) -> Dims {
        match self {
            Shape::Tinyllama => Dims {
                n_layer: 22,
                n_embd: 2048,
                n_ff: 5632,
                n_head: 32,
                n_head_kv: 4,
                n_ctx: 2048,
                rope_base: 10_000.0,
                rms_eps: 1e-5,
            },
            Shape::Tiny => Dims {
                n_layer: 2,
                n_embd: 256,
                n_ff: 512,
                n_head: 4,
                n_head_kv: 2,
                n_ctx: 512,
                rope_base: 10_000.0,
                rms_eps: 1e-5,
            },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Shape::Tinyllama => "tinyllama",
            Shape::Tiny => "tiny",
        }
    }
}

/// Arguments of `llamux synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Output file.
    #[arg(short, long)]
    out: PathBuf,
    /// Model shape.
    #[arg(long, value_enum, default_value = "tiny")]
    shape: Shape,
    /// Architecture.
    #[arg(long, value_enum, default_value = "llama")]
    arch: Arch,
    /// llama.cpp file type: q4_k_m, q8_0, f16, f32, q4_0, q6_k, …
    #[arg(long, default_value = "q4_k_m")]
    ftype: String,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// GGUF file whose `tokenizer.*` metadata is copied (default: llama.cpp's
    /// ggml-vocab-llama-spm.gguf, fetched on first use).
    #[arg(long)]
    vocab: Option<PathBuf>,
}

/// One tensor to generate.
struct Spec {
    name: String,
    ne: [u64; 2],
    role: TensorRole,
    /// Standard deviation of the weights.
    std: f32,
    /// Mean of the weights (1 for norm weights).
    center: f32,
    ggml_type: GgmlType,
}

impl Spec {
    /// GGUF dimensions: vectors are 1-D.
    fn dims(&self) -> &[u64] {
        if self.role == TensorRole::Vector {
            &self.ne[..1]
        } else {
            &self.ne
        }
    }
}

fn specs(d: &Dims, n_vocab: u64, ftype: FileType, arch: Arch) -> Vec<Spec> {
    let head_dim = d.n_embd / u64::from(d.n_head);
    let n_embd_kv = head_dim * u64::from(d.n_head_kv);
    let inv = |n: u64| 1.0 / (n as f32).sqrt();
    // Residual branches are scaled down with depth so activations stay O(1) through the stack.
    let resid = 1.0 / (2.0 * d.n_layer as f32).sqrt();
    let mut v = vec![Spec {
        name: "token_embd.weight".into(),
        ne: [d.n_embd, n_vocab],
        role: TensorRole::TokenEmbedding,
        std: 1.0,
        center: 0.0,
        ggml_type: GgmlType::F32,
    }];
    for l in 0..d.n_layer {
        let t = |name: &str, ne: [u64; 2], role: TensorRole, std: f32| Spec {
            name: format!("blk.{l}.{name}.weight"),
            ne,
            role,
            std,
            center: if role == TensorRole::Vector { 1.0 } else { 0.0 },
            ggml_type: GgmlType::F32,
        };
        let bias = |name: &str, n: u64| Spec {
            name: format!("blk.{l}.{name}.bias"),
            ne: [n, 1],
            role: TensorRole::Vector,
            std: 0.5,
            center: 0.0,
            ggml_type: GgmlType::F32,
        };
        v.push(t("attn_norm", [d.n_embd, 1], TensorRole::Vector, 0.1));
        v.push(t("attn_q", [d.n_embd, d.n_embd], TensorRole::OtherMatrix, inv(d.n_embd)));
        v.push(t("attn_k", [d.n_embd, n_embd_kv], TensorRole::OtherMatrix, inv(d.n_embd)));
        v.push(t("attn_v", [d.n_embd, n_embd_kv], TensorRole::AttnV { layer: l }, inv(d.n_embd)));
        if arch == Arch::Qwen2 {
            v.push(bias("attn_q", d.n_embd));
            v.push(bias("attn_k", n_embd_kv));
            v.push(bias("attn_v", n_embd_kv));
        }
        v.push(t("attn_output", [d.n_embd, d.n_embd], TensorRole::OtherMatrix, inv(d.n_embd) * resid));
        v.push(t("ffn_norm", [d.n_embd, 1], TensorRole::Vector, 0.1));
        v.push(t("ffn_gate", [d.n_embd, d.n_ff], TensorRole::OtherMatrix, inv(d.n_embd)));
        v.push(t("ffn_up", [d.n_embd, d.n_ff], TensorRole::OtherMatrix, inv(d.n_embd)));
        v.push(t("ffn_down", [d.n_ff, d.n_embd], TensorRole::FfnDown { layer: l }, inv(d.n_ff) * resid * 2.0));
    }
    v.push(Spec {
        name: "output_norm.weight".into(),
        ne: [d.n_embd, 1],
        role: TensorRole::Vector,
        std: 0.1,
        center: 1.0,
        ggml_type: GgmlType::F32,
    });
    // Logits with a standard deviation of about 3: peaked enough to prefer tokens, far from one-hot.
    v.push(Spec {
        name: "output.weight".into(),
        ne: [d.n_embd, n_vocab],
        role: TensorRole::Output,
        std: 3.0 * inv(d.n_embd),
        center: 0.0,
        ggml_type: GgmlType::F32,
    });
    for s in &mut v {
        s.ggml_type = ftype.tensor_type(s.role, d.n_layer, s.ne[0]);
    }
    v
}

/// FNV-1a, to give every tensor its own random stream independent of generation order.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Generates and quantizes one tensor; every row has its own random stream.
fn generate(spec: &Spec, seed: u64) -> Result<Vec<u8>> {
    let stream = seed ^ fnv1a(&spec.name);
    quantize_rows(spec.ggml_type, spec.ne[1] as usize, spec.ne[0] as usize, |r, row| {
        let mut rng = Rng::new(stream.wrapping_add((r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        for x in row.iter_mut() {
            *x = spec.center + rng.normal() * spec.std;
        }
        Ok(())
    })
}

/// Runs `llamux synth`.
pub fn run(a: SynthArgs) -> Result<()> {
    let ftype = parse_ftype(&a.ftype)?;
    let vocab_path = match &a.vocab {
        Some(p) => p.clone(),
        None => crate::registry::vocab_file(a.arch.vocab())?,
    };
    let vocab_file = MappedFile::open(&vocab_path)?;
    let vocab = Gguf::parse(vocab_file.bytes()).with_context(|| format!("{}", vocab_path.display()))?;
    let n_vocab = vocab
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .map(|a| a.len() as u64)
        .filter(|&n| n > 0)
        .with_context(|| format!("{} has no tokenizer.ggml.tokens", vocab_path.display()))?;

    let mut d = a.shape.dims();
    if a.arch == Arch::Qwen2 {
        d.rope_base = 1_000_000.0;
        d.rms_eps = 1e-6;
    }
    let specs = specs(&d, n_vocab, ftype, a.arch);
    let mut w = GgufWriter::new();
    let add = |w: &mut GgufWriter, k: &str, v: MetaValue| w.add(k, v).map_err(|e| anyhow::anyhow!("{e}"));
    let arch = a.arch.name();
    add(&mut w, "general.architecture", arch.into())?;
    add(
        &mut w,
        "general.name",
        format!("llamux-synth-{}-{}-{}", arch, a.shape.name(), ftype.name().to_lowercase()).as_str().into(),
    )?;
    add(&mut w, "general.file_type", MetaValue::U32(ftype.id()))?;
    add(&mut w, "general.quantization_version", MetaValue::U32(2))?;
    add(&mut w, "llamux.synth.seed", MetaValue::U64(a.seed))?;
    add(&mut w, &format!("{arch}.context_length"), MetaValue::U32(d.n_ctx))?;
    add(&mut w, &format!("{arch}.embedding_length"), MetaValue::U32(d.n_embd as u32))?;
    add(&mut w, &format!("{arch}.block_count"), MetaValue::U32(d.n_layer))?;
    add(&mut w, &format!("{arch}.feed_forward_length"), MetaValue::U32(d.n_ff as u32))?;
    add(&mut w, &format!("{arch}.rope.dimension_count"), MetaValue::U32((d.n_embd / u64::from(d.n_head)) as u32))?;
    add(&mut w, &format!("{arch}.attention.head_count"), MetaValue::U32(d.n_head))?;
    add(&mut w, &format!("{arch}.attention.head_count_kv"), MetaValue::U32(d.n_head_kv))?;
    add(&mut w, &format!("{arch}.attention.layer_norm_rms_epsilon"), MetaValue::F32(d.rms_eps))?;
    add(&mut w, &format!("{arch}.rope.freq_base"), MetaValue::F32(d.rope_base))?;
    for kv in vocab.metadata().iter().filter(|kv| kv.key.starts_with("tokenizer.")) {
        add(&mut w, kv.key, kv.value.into())?;
    }
    for s in &specs {
        w.add_tensor(&s.name, s.dims(), s.ggml_type).map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    let total: u64 = specs.iter().map(|s| s.ne[0] * s.ne[1]).sum();
    let pb = params_bar(total, "synth");
    let size = write_model(&w, &a.out, specs.len(), |i| {
        let s = &specs[i];
        pb.set_message(s.name.clone());
        let data = generate(s, a.seed)?;
        pb.inc(s.ne[0] * s.ne[1]);
        Ok(data)
    })?;
    pb.finish_and_clear();
    eprintln!(
        "wrote {} ({} shape, {}, {} parameters, {:.1} MiB, seed {})",
        a.out.display(),
        a.shape.name(),
        ftype.name(),
        total,
        size as f64 / 1048576.0,
        a.seed
    );
    Ok(())
}
