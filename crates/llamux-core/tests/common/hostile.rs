//! Tiny llama-family models built in memory, and hostile variants of them: files that parse
//! but lie (hyper-parameters against shapes, tensor shapes and types, NaN/Inf and extreme
//! weights, tokenizer metadata). [`cases`] perturbs one relation of a valid model at a time and
//! says what loading it must give: a specific error, or a model that runs.
//!
//! Shared by the core's tests (`tests/hostile_models.rs`), the CLI's (`tests/hostile.rs`) and
//! the fuzz target `fuzz_targets/model_load.rs`, each including this file with `#[path]`.

#![allow(dead_code)]

use llamux_core::gguf::{GgufWriter, MetaValue, ValueType};
use llamux_core::model::ModelError;
use llamux_core::quant::traits;
use llamux_core::sample::Rng;
use llamux_core::tokenizer::VocabError;
use llamux_core::GgmlType;

/// Architectures of the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama: SiLU, normal RoPE.
    Llama,
    /// Qwen2: Q/K/V biases, NeoX RoPE.
    Qwen2,
    /// Gemma 3: Q/K norms, post-norms, GELU, sliding window, tied output.
    Gemma3,
}

impl Arch {
    /// `general.architecture`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Gemma3 => "gemma3",
        }
    }
}

/// The shape of a model.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    /// Embedding width.
    pub n_embd: u32,
    /// Blocks.
    pub n_layer: u32,
    /// Feed-forward width.
    pub n_ff: u32,
    /// Query heads.
    pub n_head: u32,
    /// Key/value heads.
    pub n_head_kv: u32,
    /// Width of one head (`attention.key_length`).
    pub head_dim: u32,
    /// Training context.
    pub n_ctx: u32,
}

/// A small model that is quick to build and run: two blocks of width 64, grouped-query
/// attention with 4 query heads over 2 KV heads of 16.
pub const TINY: Dims = Dims { n_embd: 64, n_layer: 2, n_ff: 128, n_head: 4, n_head_kv: 2, head_dim: 16, n_ctx: 256 };

/// How a tensor's elements are made.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fill {
    /// Normally distributed: `center + std · N(0, 1)`.
    Random {
        /// Mean.
        center: f32,
        /// Standard deviation.
        std: f32,
    },
    /// Every element equal.
    Value(f32),
    /// Random, with every `every`-th element replaced by `value` (NaN, ±Inf, huge).
    Spiked {
        /// Standard deviation of the others.
        std: f32,
        /// The planted value.
        value: f32,
        /// Its period.
        every: usize,
    },
}

/// One tensor to write.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Name.
    pub name: String,
    /// GGUF dimensions (`ne[0]` is the row length).
    pub ne: Vec<u64>,
    /// Element type.
    pub ty: GgmlType,
    /// Contents.
    pub fill: Fill,
}

/// A model file in the making: metadata in order, then tensors.
#[derive(Clone, Debug)]
pub struct TinyModel {
    /// Metadata.
    pub meta: Vec<(String, MetaValue)>,
    /// Tensors.
    pub tensors: Vec<Tensor>,
    /// Seed of the random weights.
    pub seed: u64,
    /// Architecture.
    pub arch: Arch,
}

/// The vocabulary of [`TinyModel::new`]: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then
/// these SentencePiece pieces.
const PIECES: &[&str] = &[
    "\u{2581}",
    "\u{2581}the",
    "\u{2581}a",
    "\u{2581}quick",
    "\u{2581}brown",
    "\u{2581}fox",
    "\u{2581}Once",
    "\u{2581}upon",
    "\u{2581}time",
    "e",
    "t",
    "a",
    "o",
    "i",
    "n",
    "s",
    "h",
    "r",
    "d",
    "l",
    "u",
    "c",
    "m",
    "w",
    "f",
    "g",
    "y",
    "p",
    "b",
    "v",
    "k",
    "j",
    "x",
    "q",
    "z",
    ".",
    ",",
    "\u{2581}is",
    "\u{2581}of",
    "er",
];

/// Tokens of the default vocabulary.
pub fn vocab_size() -> u32 {
    3 + 256 + PIECES.len() as u32
}

impl TinyModel {
    /// A valid model of `arch` with shape `d`, random weights of `seed` in F32 and a
    /// SentencePiece vocabulary of [`vocab_size`] tokens.
    pub fn new(arch: Arch, d: Dims, seed: u64) -> Self {
        let mut m = TinyModel { meta: Vec::new(), tensors: Vec::new(), seed, arch };
        let a = arch.name();
        m.set("general.architecture", a.into());
        m.set(&format!("{a}.context_length"), MetaValue::U32(d.n_ctx));
        m.set(&format!("{a}.embedding_length"), MetaValue::U32(d.n_embd));
        m.set(&format!("{a}.block_count"), MetaValue::U32(d.n_layer));
        m.set(&format!("{a}.feed_forward_length"), MetaValue::U32(d.n_ff));
        m.set(&format!("{a}.attention.head_count"), MetaValue::U32(d.n_head));
        m.set(&format!("{a}.attention.head_count_kv"), MetaValue::U32(d.n_head_kv));
        m.set(&format!("{a}.attention.key_length"), MetaValue::U32(d.head_dim));
        m.set(&format!("{a}.attention.value_length"), MetaValue::U32(d.head_dim));
        m.set(&format!("{a}.rope.dimension_count"), MetaValue::U32(d.head_dim));
        m.set(&format!("{a}.attention.layer_norm_rms_epsilon"), MetaValue::F32(1e-6));
        m.set(&format!("{a}.rope.freq_base"), MetaValue::F32(10_000.0));
        if arch == Arch::Gemma3 {
            m.set(&format!("{a}.attention.sliding_window"), MetaValue::U32(8));
            m.set(&format!("{a}.rope.freq_base_swa"), MetaValue::F32(10_000.0));
        }
        m.set_spm_vocab();

        let n_vocab = u64::from(vocab_size());
        let (e, ff, hd) = (u64::from(d.n_embd), u64::from(d.n_ff), u64::from(d.head_dim));
        let (q, kv) = (u64::from(d.n_head) * hd, u64::from(d.n_head_kv) * hd);
        let inv = |n: u64| 1.0 / (n as f32).sqrt();
        let rand = |std: f32| Fill::Random { center: 0.0, std };
        let norm = Fill::Random { center: 1.0, std: 0.1 };
        m.tensor("token_embd.weight", &[e, n_vocab], rand(1.0));
        for l in 0..d.n_layer {
            let t = |s: &str| format!("blk.{l}.{s}");
            m.tensor(&t("attn_norm.weight"), &[e], norm);
            m.tensor(&t("attn_q.weight"), &[e, q], rand(inv(e)));
            m.tensor(&t("attn_k.weight"), &[e, kv], rand(inv(e)));
            m.tensor(&t("attn_v.weight"), &[e, kv], rand(inv(e)));
            m.tensor(&t("attn_output.weight"), &[q, e], rand(inv(q) * 0.5));
            match arch {
                Arch::Qwen2 => {
                    m.tensor(&t("attn_q.bias"), &[q], rand(0.5));
                    m.tensor(&t("attn_k.bias"), &[kv], rand(0.5));
                    m.tensor(&t("attn_v.bias"), &[kv], rand(0.5));
                }
                Arch::Gemma3 => {
                    m.tensor(&t("attn_q_norm.weight"), &[hd], norm);
                    m.tensor(&t("attn_k_norm.weight"), &[hd], norm);
                    m.tensor(&t("post_attention_norm.weight"), &[e], norm);
                    m.tensor(&t("post_ffw_norm.weight"), &[e], norm);
                }
                Arch::Llama => {}
            }
            m.tensor(&t("ffn_norm.weight"), &[e], norm);
            m.tensor(&t("ffn_gate.weight"), &[e, ff], rand(inv(e)));
            m.tensor(&t("ffn_up.weight"), &[e, ff], rand(inv(e)));
            m.tensor(&t("ffn_down.weight"), &[ff, e], rand(inv(ff) * 0.5));
        }
        m.tensor("output_norm.weight", &[e], norm);
        if arch != Arch::Gemma3 {
            m.tensor("output.weight", &[e, n_vocab], rand(3.0 * inv(e)));
        }
        m
    }

    /// The `tokenizer.*` metadata of a SentencePiece vocabulary.
    fn set_spm_vocab(&mut self) {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        tokens.extend(PIECES.iter().map(|p| p.to_string()));
        let mut types = vec![2, 3, 3];
        types.extend(core::iter::repeat_n(6, 256));
        types.extend(core::iter::repeat_n(1, PIECES.len()));
        let scores = (0..tokens.len()).map(|i| -(i as f32));
        self.set("tokenizer.ggml.model", "llama".into());
        self.set("tokenizer.ggml.tokens", MetaValue::strings(&tokens));
        self.set("tokenizer.ggml.scores", MetaValue::f32s(scores));
        self.set("tokenizer.ggml.token_type", MetaValue::i32s(types));
        self.set("tokenizer.ggml.unknown_token_id", MetaValue::U32(0));
        self.set("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
        self.set("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
        self.set("tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
    }

    /// `{arch}.{k}`.
    pub fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch.name())
    }

    /// Sets (or adds) a metadata key.
    pub fn set(&mut self, key: &str, v: MetaValue) {
        match self.meta.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = v,
            None => self.meta.push((key.to_string(), v)),
        }
    }

    /// Sets `{arch}.{k}`.
    pub fn set_hp(&mut self, k: &str, v: MetaValue) {
        let key = self.key(k);
        self.set(&key, v);
    }

    /// Removes a metadata key.
    pub fn remove(&mut self, key: &str) {
        self.meta.retain(|(k, _)| k != key);
    }

    /// Adds a tensor of element type F32.
    pub fn tensor(&mut self, name: &str, ne: &[u64], fill: Fill) {
        self.tensors.push(Tensor { name: name.to_string(), ne: ne.to_vec(), ty: GgmlType::F32, fill });
    }

    /// The tensor called `name`.
    pub fn get_tensor(&mut self, name: &str) -> Option<&mut Tensor> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }

    /// Removes the tensor called `name`.
    pub fn remove_tensor(&mut self, name: &str) {
        self.tensors.retain(|t| t.name != name);
    }

    /// Every 2-D tensor (the matrices) stored as `ty`.
    pub fn matrices_as(&mut self, ty: GgmlType) {
        self.tensors.iter_mut().filter(|t| t.ne.len() == 2).for_each(|t| t.ty = ty);
    }

    /// The file's bytes. `None` when the writer refuses the description (a duplicate name, a
    /// row that is not whole blocks of its type) or a type cannot be quantized here.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        let mut w = GgufWriter::new();
        for (k, v) in &self.meta {
            w.add(k, v.clone()).ok()?;
        }
        for t in &self.tensors {
            w.add_tensor(&t.name, &t.ne, t.ty).ok()?;
        }
        let mut s = w.start(Vec::new()).ok()?;
        for (i, t) in self.tensors.iter().enumerate() {
            s.write_tensor(&self.data(i as u64, t)?).ok()?;
        }
        s.finish().ok()
    }

    /// One tensor's data in its type.
    fn data(&self, index: u64, t: &Tensor) -> Option<Vec<u8>> {
        let n = t.ne.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        let n = usize::try_from(n).ok().filter(|&n| n <= 1 << 22)?;
        let mut rng = Rng::new(self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let xs: Vec<f32> = (0..n)
            .map(|i| match t.fill {
                Fill::Random { center, std } => center + std * rng.normal(),
                Fill::Value(v) => v,
                Fill::Spiked { std, value, every } => {
                    let r = std * rng.normal();
                    if i % every.max(1) == 0 {
                        value
                    } else {
                        r
                    }
                }
            })
            .collect();
        let bytes = usize::try_from(t.ty.bytes_for(n as u64)?).ok()?;
        let mut out = vec![0u8; bytes];
        match t.ty {
            GgmlType::I8 | GgmlType::I16 | GgmlType::I32 => {}
            ty => (traits(ty).ok()?.from_float)(&xs, &mut out).ok()?,
        }
        Some(out)
    }
}

/// What loading a hostile model must give.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// `Model::load` and `Tokenizer::from_gguf` succeed and a few forward steps give finite
    /// logits.
    Runs,
    /// As `Runs`, but the logits may be NaN or infinite (the weights are): still no panic.
    RunsNonFinite,
    /// `Model::load` fails with exactly this error.
    Model(ModelError),
    /// The model loads; `Tokenizer::from_gguf` fails with exactly this error.
    Vocab(VocabError),
}

/// One named hostile model.
pub struct Case {
    /// A name for messages and file names.
    pub name: &'static str,
    /// The model.
    pub model: TinyModel,
    /// What loading it gives.
    pub expect: Expect,
}

fn bad(k: &str) -> Expect {
    Expect::Model(ModelError::BadValue(k.to_string()))
}

fn bad_tensor(t: &str) -> Expect {
    Expect::Model(ModelError::BadTensor(t.to_string()))
}

fn unsupported(what: &str) -> Expect {
    Expect::Model(ModelError::Unsupported(what.to_string()))
}

/// A model of `arch` and shape `d` with `f` applied.
pub fn variant(arch: Arch, d: Dims, f: impl FnOnce(&mut TinyModel)) -> TinyModel {
    let mut m = TinyModel::new(arch, d, 7);
    f(&mut m);
    m
}

fn llama(f: impl FnOnce(&mut TinyModel)) -> TinyModel {
    variant(Arch::Llama, TINY, f)
}

fn qwen2(f: impl FnOnce(&mut TinyModel)) -> TinyModel {
    variant(Arch::Qwen2, TINY, f)
}

fn gemma3(f: impl FnOnce(&mut TinyModel)) -> TinyModel {
    variant(Arch::Gemma3, TINY, f)
}

/// Small random weights with every seventh one `value`.
fn spike(value: f32) -> Fill {
    Fill::Spiked { std: 0.1, value, every: 7 }
}

/// Every hostile case, one perturbed relation each, with the valid models they start from.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut case = |name: &'static str, model: TinyModel, expect: Expect| v.push(Case { name, model, expect });
    let u32v = MetaValue::U32;
    let f32v = MetaValue::F32;

    // The valid starting points run.
    case("valid_llama", llama(|_| {}), Expect::Runs);
    case("valid_qwen2", qwen2(|_| {}), Expect::Runs);
    case("valid_gemma3", gemma3(|_| {}), Expect::Runs);
    case("valid_llama_q8_0", llama(|m| m.matrices_as(GgmlType::Q8_0)), Expect::Runs);
    case("valid_gemma3_f16", gemma3(|m| m.matrices_as(GgmlType::F16)), Expect::Runs);

    // Head widths larger than the embedding (legal: llama.cpp runs them), with and without GQA.
    let wide = Dims { n_head: 2, n_head_kv: 1, head_dim: 128, ..TINY };
    case("head_dim_exceeds_n_embd_llama", variant(Arch::Llama, wide, |_| {}), Expect::Runs);
    case("head_dim_exceeds_n_embd_gemma3", variant(Arch::Gemma3, wide, |_| {}), Expect::Runs);
    let wide_mha = Dims { n_head: 4, n_head_kv: 4, head_dim: 96, ..TINY };
    case("head_dim_exceeds_n_embd_qwen2", variant(Arch::Qwen2, wide_mha, |_| {}), Expect::Runs);
    // Partial RoPE, and none.
    case("rope_dims_half_head", llama(|m| m.set_hp("rope.dimension_count", MetaValue::U32(8))), Expect::Runs);
    case("rope_dims_zero", llama(|m| m.set_hp("rope.dimension_count", MetaValue::U32(0))), Expect::Runs);
    // Per-layer arrays whose layers agree.
    case(
        "head_count_kv_per_layer_equal",
        llama(|m| m.set_hp("attention.head_count_kv", MetaValue::i32s([2, 2]))),
        Expect::Runs,
    );

    // Head counts and widths.
    case(
        "head_count_zero",
        llama(|m| m.set_hp("attention.head_count", MetaValue::U32(0))),
        bad("llama.attention.head_count"),
    );
    case(
        "head_count_kv_zero",
        llama(|m| m.set_hp("attention.head_count_kv", u32v(0))),
        bad("llama.attention.head_count_kv"),
    );
    case(
        "head_count_kv_not_divisor",
        llama(|m| m.set_hp("attention.head_count_kv", u32v(3))),
        bad("llama.attention.head_count_kv"),
    );
    case(
        "head_count_kv_above_head_count",
        llama(|m| m.set_hp("attention.head_count_kv", u32v(8))),
        bad("llama.attention.head_count_kv"),
    );
    case(
        "key_length_zero",
        llama(|m| {
            m.set_hp("attention.key_length", u32v(0));
            m.set_hp("attention.value_length", u32v(0))
        }),
        bad("llama.attention.key_length"),
    );
    case(
        "key_length_odd",
        llama(|m| {
            m.set_hp("attention.key_length", u32v(15));
            m.set_hp("attention.value_length", u32v(15))
        }),
        bad("llama.attention.key_length"),
    );
    case(
        "key_length_lies",
        llama(|m| m.set_hp("attention.key_length", u32v(32))),
        Expect::Model(ModelError::Unsupported(
            "llama.attention.value_length different from llama.attention.key_length".into(),
        )),
    );
    case(
        "key_length_lies_no_value_length",
        llama(|m| {
            m.remove("llama.attention.value_length");
            m.set_hp("attention.key_length", u32v(32));
        }),
        bad_tensor("blk.0.attn_q.weight"),
    );
    case(
        "key_length_huge",
        llama(|m| {
            m.remove("llama.attention.value_length");
            m.set_hp("attention.key_length", u32v(u32::MAX - 1))
        }),
        bad("llama.attention.head_count"),
    );
    case(
        "value_length_differs",
        llama(|m| m.set_hp("attention.value_length", u32v(32))),
        unsupported("llama.attention.value_length different from llama.attention.key_length"),
    );
    case(
        "head_count_kv_per_layer_differs",
        llama(|m| m.set_hp("attention.head_count_kv", MetaValue::i32s([2, 1]))),
        unsupported("per-layer values of llama.attention.head_count_kv"),
    );
    case(
        "head_count_empty_array",
        llama(|m| m.set_hp("attention.head_count", MetaValue::i32s([]))),
        bad("llama.attention.head_count"),
    );
    case(
        "head_count_negative",
        llama(|m| m.set_hp("attention.head_count", MetaValue::I32(-4))),
        bad("llama.attention.head_count"),
    );
    case(
        "head_count_string",
        llama(|m| m.set_hp("attention.head_count", "4".into())),
        bad("llama.attention.head_count"),
    );
    case("head_count_float", llama(|m| m.set_hp("attention.head_count", f32v(4.0))), bad("llama.attention.head_count"));
    case(
        "head_count_above_u32",
        llama(|m| m.set_hp("attention.head_count", MetaValue::U64(1 << 32))),
        bad("llama.attention.head_count"),
    );
    case(
        "head_count_lies",
        llama(|m| {
            m.remove("llama.attention.key_length");
            m.remove("llama.attention.value_length");
            m.set_hp("attention.head_count", u32v(8));
            m.set_hp("attention.head_count_kv", u32v(8))
        }),
        bad("llama.rope.dimension_count"),
    );

    // RoPE.
    case(
        "rope_dims_above_head_dim",
        llama(|m| m.set_hp("rope.dimension_count", u32v(32))),
        bad("llama.rope.dimension_count"),
    );
    case("rope_dims_odd", llama(|m| m.set_hp("rope.dimension_count", u32v(7))), bad("llama.rope.dimension_count"));
    case("rope_base_zero", llama(|m| m.set_hp("rope.freq_base", f32v(0.0))), bad("llama.rope.freq_base"));
    case("rope_base_negative", llama(|m| m.set_hp("rope.freq_base", f32v(-10_000.0))), bad("llama.rope.freq_base"));
    case("rope_base_nan", llama(|m| m.set_hp("rope.freq_base", f32v(f32::NAN))), bad("llama.rope.freq_base"));
    case("rope_base_inf", llama(|m| m.set_hp("rope.freq_base", f32v(f32::INFINITY))), bad("llama.rope.freq_base"));
    case(
        "rope_base_f64_overflows_f32",
        llama(|m| m.set_hp("rope.freq_base", MetaValue::F64(1e300))),
        bad("llama.rope.freq_base"),
    );
    case("rope_base_string", llama(|m| m.set_hp("rope.freq_base", "1e4".into())), bad("llama.rope.freq_base"));
    case(
        "rope_scaling_linear_nan",
        llama(|m| {
            m.set_hp("rope.scaling.type", "linear".into());
            m.set_hp("rope.scaling.factor", f32v(f32::NAN))
        }),
        bad("llama.rope.scaling.factor"),
    );
    case(
        "rope_scaling_linear_zero",
        llama(|m| {
            m.set_hp("rope.scaling.type", "linear".into());
            m.set_hp("rope.scaling.factor", f32v(0.0))
        }),
        Expect::Runs,
    );
    case(
        "rope_scaling_linear_4",
        llama(|m| {
            m.set_hp("rope.scaling.type", "linear".into());
            m.set_hp("rope.scaling.factor", f32v(4.0))
        }),
        Expect::Runs,
    );
    // Gemma 3 scales RoPE on its global layers only (every sixth), as llama.cpp does.
    case(
        "rope_scaling_linear_8_gemma3",
        variant(Arch::Gemma3, Dims { n_layer: 6, ..TINY }, |m| {
            m.set_hp("rope.scaling.type", "linear".into());
            m.set_hp("rope.scaling.factor", f32v(8.0))
        }),
        Expect::Runs,
    );
    case(
        "rope_scaling_yarn",
        llama(|m| m.set_hp("rope.scaling.type", "yarn".into())),
        unsupported("llama.rope.scaling.type yarn"),
    );
    case("rope_scaling_type_number", llama(|m| m.set_hp("rope.scaling.type", u32v(1))), bad("llama.rope.scaling.type"));
    case(
        "rope_freqs_wrong_length",
        llama(|m| m.tensor("rope_freqs.weight", &[5], Fill::Value(1.0))),
        bad_tensor("rope_freqs.weight"),
    );
    case("rope_freqs_zero", llama(|m| m.tensor("rope_freqs.weight", &[8], Fill::Value(0.0))), Expect::RunsNonFinite);

    // Norm epsilon.
    case(
        "rms_eps_nan",
        llama(|m| m.set_hp("attention.layer_norm_rms_epsilon", f32v(f32::NAN))),
        bad("llama.attention.layer_norm_rms_epsilon"),
    );
    case(
        "rms_eps_negative",
        llama(|m| m.set_hp("attention.layer_norm_rms_epsilon", f32v(-1.0))),
        bad("llama.attention.layer_norm_rms_epsilon"),
    );
    case("rms_eps_zero", llama(|m| m.set_hp("attention.layer_norm_rms_epsilon", f32v(0.0))), Expect::Runs);

    // Layers, widths, context.
    case("block_count_zero", llama(|m| m.set_hp("block_count", u32v(0))), bad("llama.block_count"));
    case("block_count_huge", llama(|m| m.set_hp("block_count", u32v(1 << 30))), bad("llama.block_count"));
    case(
        "block_count_above_tensors",
        llama(|m| m.set_hp("block_count", u32v(3))),
        Expect::Model(ModelError::MissingTensor("blk.2.attn_norm.weight".into())),
    );
    case("block_count_below_tensors", llama(|m| m.set_hp("block_count", u32v(1))), Expect::Runs);
    case("embedding_length_zero", llama(|m| m.set_hp("embedding_length", u32v(0))), bad("llama.embedding_length"));
    case("embedding_length_lies", llama(|m| m.set_hp("embedding_length", u32v(96))), bad_tensor("token_embd.weight"));
    case(
        "embedding_length_missing",
        llama(|m| m.remove("llama.embedding_length")),
        Expect::Model(ModelError::MissingKey("llama.embedding_length".into())),
    );
    case("feed_forward_zero", llama(|m| m.set_hp("feed_forward_length", u32v(0))), bad("llama.feed_forward_length"));
    case(
        "feed_forward_lies",
        llama(|m| m.set_hp("feed_forward_length", u32v(256))),
        bad_tensor("blk.0.ffn_gate.weight"),
    );
    case("context_length_zero", llama(|m| m.set_hp("context_length", u32v(0))), Expect::Runs);
    case("context_length_huge", llama(|m| m.set_hp("context_length", u32v(u32::MAX))), Expect::Runs);
    case(
        "architecture_unknown",
        llama(|m| m.set("general.architecture", "mamba".into())),
        Expect::Model(ModelError::UnsupportedArch("mamba".into())),
    );
    case(
        "architecture_missing",
        llama(|m| m.remove("general.architecture")),
        Expect::Model(ModelError::NoArchitecture),
    );

    // Mixture of experts.
    case(
        "expert_count",
        llama(|m| {
            m.set_hp("expert_count", u32v(8));
            m.set_hp("expert_used_count", u32v(2))
        }),
        unsupported("mixture of experts (llama.expert_count = 8)"),
    );
    case("expert_count_zero", llama(|m| m.set_hp("expert_count", u32v(0))), Expect::Runs);

    // Vocabulary against the embedding rows and the logits: the token list decides, as in
    // llama.cpp (which ignores vocab_size when there is a list).
    case("vocab_size_below_tokens", llama(|m| m.set_hp("vocab_size", u32v(100))), Expect::Runs);
    case("vocab_size_above_tokens", llama(|m| m.set_hp("vocab_size", u32v(vocab_size() + 1))), Expect::Runs);
    case("vocab_size_zero", llama(|m| m.set_hp("vocab_size", u32v(0))), Expect::Runs);
    case(
        "tokens_fewer_than_rows",
        llama(|m| {
            let t = MetaValue::strings((0..200).map(|i| format!("t{i}")));
            m.set("tokenizer.ggml.tokens", t);
            m.remove("tokenizer.ggml.scores");
            m.remove("tokenizer.ggml.token_type")
        }),
        bad_tensor("token_embd.weight"),
    );
    // vocab_size is read only without a token list (then the tokenizer is refused).
    case(
        "vocab_size_without_tokens",
        llama(|m| {
            m.set_hp("vocab_size", u32v(vocab_size()));
            m.remove("tokenizer.ggml.tokens");
            m.remove("tokenizer.ggml.scores");
            m.remove("tokenizer.ggml.token_type");
        }),
        Expect::Vocab(VocabError::NoTokens),
    );
    case(
        "tokens_missing",
        llama(|m| m.remove("tokenizer.ggml.tokens")),
        Expect::Model(ModelError::MissingKey("tokenizer.ggml.tokens".into())),
    );
    case(
        "tokens_empty",
        llama(|m| {
            m.set("tokenizer.ggml.tokens", MetaValue::Array { elem: ValueType::String, items: vec![] });
            m.remove("tokenizer.ggml.scores");
            m.remove("tokenizer.ggml.token_type")
        }),
        bad("tokenizer.ggml.tokens"),
    );
    case(
        "output_rows_differ",
        llama(|m| m.get_tensor("output.weight").unwrap().ne = vec![64, 200]),
        bad_tensor("output.weight"),
    );

    // Sliding window and soft-capping.
    case("sliding_window_one", gemma3(|m| m.set_hp("attention.sliding_window", u32v(1))), Expect::Runs);
    case("sliding_window_zero", gemma3(|m| m.set_hp("attention.sliding_window", u32v(0))), Expect::Runs);
    case("sliding_window_huge", gemma3(|m| m.set_hp("attention.sliding_window", u32v(u32::MAX))), Expect::Runs);
    case(
        "sliding_window_negative",
        gemma3(|m| m.set_hp("attention.sliding_window", MetaValue::I32(-1))),
        bad("gemma3.attention.sliding_window"),
    );
    case(
        "rope_base_swa_nan",
        gemma3(|m| m.set_hp("rope.freq_base_swa", f32v(f32::NAN))),
        bad("gemma3.rope.freq_base_swa"),
    );
    case("softcap_30", gemma3(|m| m.set_hp("final_logit_softcapping", f32v(30.0))), Expect::Runs);
    case("softcap_tiny", gemma3(|m| m.set_hp("final_logit_softcapping", f32v(1e-30))), Expect::Runs);
    case("softcap_zero", gemma3(|m| m.set_hp("final_logit_softcapping", f32v(0.0))), Expect::Runs);
    case(
        "softcap_negative",
        gemma3(|m| m.set_hp("final_logit_softcapping", f32v(-30.0))),
        bad("gemma3.final_logit_softcapping"),
    );
    case(
        "softcap_inf",
        gemma3(|m| m.set_hp("final_logit_softcapping", f32v(f32::INFINITY))),
        bad("gemma3.final_logit_softcapping"),
    );
    case(
        "softcap_nan",
        gemma3(|m| m.set_hp("final_logit_softcapping", f32v(f32::NAN))),
        bad("gemma3.final_logit_softcapping"),
    );

    // Tensor shapes and types.
    case(
        "q_rows_short",
        llama(|m| m.get_tensor("blk.0.attn_q.weight").unwrap().ne = vec![64, 32]),
        bad_tensor("blk.0.attn_q.weight"),
    );
    case(
        "k_transposed",
        llama(|m| m.get_tensor("blk.1.attn_k.weight").unwrap().ne = vec![32, 64]),
        bad_tensor("blk.1.attn_k.weight"),
    );
    case(
        "output_proj_wrong_cols",
        llama(|m| m.get_tensor("blk.0.attn_output.weight").unwrap().ne = vec![32, 64]),
        bad_tensor("blk.0.attn_output.weight"),
    );
    case("down_3d", llama(|m| m.get_tensor("blk.0.ffn_down.weight").unwrap().ne = vec![128, 64, 1]), Expect::Runs);
    case(
        "down_3d_not_1",
        llama(|m| m.get_tensor("blk.0.ffn_down.weight").unwrap().ne = vec![128, 32, 2]),
        bad_tensor("blk.0.ffn_down.weight"),
    );
    case(
        "norm_wrong_length",
        llama(|m| m.get_tensor("blk.1.ffn_norm.weight").unwrap().ne = vec![32]),
        bad_tensor("blk.1.ffn_norm.weight"),
    );
    case(
        "output_norm_missing",
        llama(|m| m.remove_tensor("output_norm.weight")),
        Expect::Model(ModelError::MissingTensor("output_norm.weight".into())),
    );
    case(
        "embeddings_missing",
        llama(|m| m.remove_tensor("token_embd.weight")),
        Expect::Model(ModelError::MissingTensor("token_embd.weight".into())),
    );
    case("output_missing_is_tied", llama(|m| m.remove_tensor("output.weight")), Expect::Runs);
    case(
        "matrix_type_i8",
        llama(|m| m.get_tensor("blk.0.attn_v.weight").unwrap().ty = GgmlType::I8),
        bad_tensor("blk.0.attn_v.weight"),
    );
    case(
        "norm_type_i32",
        llama(|m| m.get_tensor("output_norm.weight").unwrap().ty = GgmlType::I32),
        bad_tensor("output_norm.weight"),
    );
    case(
        "bias_wrong_length",
        qwen2(|m| m.get_tensor("blk.0.attn_k.bias").unwrap().ne = vec![64]),
        bad_tensor("blk.0.attn_k.bias"),
    );
    case(
        "q_norm_wrong_length",
        gemma3(|m| m.get_tensor("blk.1.attn_q_norm.weight").unwrap().ne = vec![8]),
        bad_tensor("blk.1.attn_q_norm.weight"),
    );
    case("q_norm_on_llama", llama(|m| m.tensor("blk.0.attn_q_norm.weight", &[16], Fill::Value(1.0))), Expect::Runs);

    // Weights: NaN, infinities, extremes, zeros.
    case(
        "nan_in_q",
        llama(|m| m.get_tensor("blk.0.attn_q.weight").unwrap().fill = spike(f32::NAN)),
        Expect::RunsNonFinite,
    );
    case(
        "inf_in_embeddings",
        llama(|m| m.get_tensor("token_embd.weight").unwrap().fill = spike(f32::INFINITY)),
        Expect::RunsNonFinite,
    );
    case(
        "neg_inf_in_down",
        llama(|m| m.get_tensor("blk.1.ffn_down.weight").unwrap().fill = spike(f32::NEG_INFINITY)),
        Expect::RunsNonFinite,
    );
    case(
        "nan_norm",
        llama(|m| m.get_tensor("output_norm.weight").unwrap().fill = Fill::Value(f32::NAN)),
        Expect::RunsNonFinite,
    );
    case(
        "huge_embeddings",
        llama(|m| m.get_tensor("token_embd.weight").unwrap().fill = Fill::Value(3e38)),
        Expect::RunsNonFinite,
    );
    case(
        "huge_q8_0_scales",
        llama(|m| {
            m.matrices_as(GgmlType::Q8_0);
            m.get_tensor("blk.0.attn_k.weight").unwrap().fill = spike(6e4)
        }),
        Expect::RunsNonFinite,
    );
    case(
        "f16_overflow",
        gemma3(|m| {
            m.matrices_as(GgmlType::F16);
            m.get_tensor("blk.0.ffn_up.weight").unwrap().fill = Fill::Value(1e6)
        }),
        Expect::RunsNonFinite,
    );
    case(
        "gelu_extremes",
        gemma3(|m| m.get_tensor("blk.0.ffn_gate.weight").unwrap().fill = spike(1e4)),
        Expect::RunsNonFinite,
    );
    case("all_zero_weights", llama(|m| m.tensors.iter_mut().for_each(|t| t.fill = Fill::Value(0.0))), Expect::Runs);
    case(
        "nan_bias",
        qwen2(|m| m.get_tensor("blk.0.attn_v.bias").unwrap().fill = Fill::Value(f32::NAN)),
        Expect::RunsNonFinite,
    );

    // Tokenizer metadata.
    case(
        "bos_out_of_range",
        llama(|m| m.set("tokenizer.ggml.bos_token_id", u32v(100_000))),
        Expect::Vocab(VocabError::Inconsistent("special token id out of range")),
    );
    case(
        "eos_out_of_range",
        llama(|m| m.set("tokenizer.ggml.eos_token_id", u32v(vocab_size()))),
        Expect::Vocab(VocabError::Inconsistent("special token id out of range")),
    );
    case(
        "scores_short",
        llama(|m| m.set("tokenizer.ggml.scores", MetaValue::f32s([0.0; 5]))),
        Expect::Vocab(VocabError::Inconsistent("tokenizer.ggml.scores length")),
    );
    case(
        "token_types_short",
        llama(|m| m.set("tokenizer.ggml.token_type", MetaValue::i32s([1; 5]))),
        Expect::Vocab(VocabError::Inconsistent("tokenizer.ggml.token_type length")),
    );
    case(
        "tokenizer_model_unknown",
        llama(|m| m.set("tokenizer.ggml.model", "bert".into())),
        Expect::Vocab(VocabError::UnsupportedModel("bert".into())),
    );
    case(
        "bpe_without_merges",
        llama(|m| m.set("tokenizer.ggml.model", "gpt2".into())),
        Expect::Vocab(VocabError::Inconsistent("byte-level BPE without tokenizer.ggml.merges")),
    );
    case(
        "bpe_unknown_pre",
        llama(|m| {
            m.set("tokenizer.ggml.model", "gpt2".into());
            m.set("tokenizer.ggml.pre", "tekken".into());
            m.set("tokenizer.ggml.merges", MetaValue::strings(["a b"]))
        }),
        Expect::Vocab(VocabError::UnsupportedPreTokenizer("tekken".into())),
    );
    case(
        "bpe_garbage_merges",
        llama(|m| {
            m.set("tokenizer.ggml.model", "gpt2".into());
            m.set("tokenizer.ggml.merges", MetaValue::strings(["", " ", "abc", "a  b", "\u{2581} \u{2581}", "x y z"]))
        }),
        Expect::Runs,
    );
    case(
        "token_types_garbage",
        llama(|m| {
            m.set("tokenizer.ggml.token_type", MetaValue::i32s((0..vocab_size() as i32).map(|i| i * 7919 - 1_000_000)))
        }),
        Expect::Runs,
    );
    case(
        "token_types_strings",
        llama(|m| m.set("tokenizer.ggml.token_type", MetaValue::strings((0..vocab_size()).map(|_| "x")))),
        Expect::Runs,
    );
    case(
        "scores_nan",
        llama(|m| m.set("tokenizer.ggml.scores", MetaValue::f32s((0..vocab_size()).map(|_| f32::NAN)))),
        Expect::Runs,
    );
    case(
        "all_tokens_control",
        llama(|m| m.set("tokenizer.ggml.token_type", MetaValue::i32s((0..vocab_size()).map(|_| 3)))),
        Expect::Runs,
    );
    case(
        "all_tokens_empty",
        llama(|m| m.set("tokenizer.ggml.tokens", MetaValue::strings((0..vocab_size()).map(|_| "")))),
        Expect::Runs,
    );
    case(
        "byte_tokens_malformed",
        llama(|m| {
            m.set(
                "tokenizer.ggml.tokens",
                MetaValue::strings((0..vocab_size()).map(|i| {
                    if (3..259).contains(&i) {
                        "<0x".to_string()
                    } else {
                        format!("p{i}")
                    }
                })),
            )
        }),
        Expect::Runs,
    );
    case("unk_is_bos", llama(|m| m.set("tokenizer.ggml.unknown_token_id", u32v(1))), Expect::Runs);
    case("bos_id_negative", llama(|m| m.set("tokenizer.ggml.bos_token_id", MetaValue::I32(-1))), Expect::Runs);
    case("add_bos_not_bool", llama(|m| m.set("tokenizer.ggml.add_bos_token", u32v(7))), Expect::Runs);
    v
}

/// Integer hyper-parameters a random perturbation may set.
const INT_KEYS: &[&str] = &[
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "rope.dimension_count",
    "attention.sliding_window",
    "expert_count",
    "vocab_size",
];

/// Float hyper-parameters a random perturbation may set.
const FLOAT_KEYS: &[&str] = &[
    "rope.freq_base",
    "rope.freq_base_swa",
    "attention.layer_norm_rms_epsilon",
    "final_logit_softcapping",
    "rope.scaling.factor",
];

/// A model made from arbitrary bytes (the fuzz target's input): random architecture and shape,
/// random matrix type, then up to four random lies (a hyper-parameter, a float, a tensor's
/// shape, type or contents, a missing tensor or key, a special token id). `None` when the bytes
/// describe nothing buildable.
pub fn from_fuzz_bytes(data: &[u8]) -> Option<TinyModel> {
    let mut it = data.iter().copied();
    let mut next = move || it.next().unwrap_or(0);
    let arch = [Arch::Llama, Arch::Qwen2, Arch::Gemma3][usize::from(next() % 3)];
    let d = Dims {
        n_embd: 32 * (1 + u32::from(next() % 4)),
        n_layer: 1 + u32::from(next() % 3),
        n_ff: 32 * (1 + u32::from(next() % 8)),
        n_head: 1 + u32::from(next() % 8),
        n_head_kv: 1 + u32::from(next() % 8),
        head_dim: (2 * (1 + u32::from(next() % 64))).saturating_sub(u32::from(next() % 16 == 0)),
        n_ctx: 1 + u32::from(next()) * 4,
    };
    let mut m = TinyModel::new(arch, d, u64::from(next()));
    let types = [GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_1];
    m.matrices_as(types[usize::from(next()) % types.len()]);
    for _ in 0..next() % 5 {
        let what = next();
        let pick = usize::from(next());
        let val = u32::from_le_bytes([next(), next(), next(), next()]);
        // Mostly small values, sometimes any.
        let small = val >> (next() % 32);
        let n_tensors = m.tensors.len().max(1);
        match what % 8 {
            0 => m.set_hp(INT_KEYS[pick % INT_KEYS.len()], MetaValue::U32(small)),
            1 => m.set_hp(FLOAT_KEYS[pick % FLOAT_KEYS.len()], MetaValue::F32(f32::from_bits(val))),
            2 => {
                if let Some(t) = m.tensors.get_mut(pick % n_tensors) {
                    let i = usize::from(what / 8) % t.ne.len();
                    t.ne[i] = u64::from(small % 512 + 1);
                }
            }
            3 => {
                if let Some(t) = m.tensors.get_mut(pick % n_tensors) {
                    t.ty = types[(small as usize) % types.len()];
                }
            }
            4 => {
                if let Some(t) = m.tensors.get_mut(pick % n_tensors) {
                    t.fill = Fill::Spiked { std: 0.5, value: f32::from_bits(val), every: 1 + usize::from(what / 8) };
                }
            }
            5 => {
                if pick % n_tensors < m.tensors.len() {
                    m.tensors.remove(pick % n_tensors);
                }
            }
            6 => {
                if pick % m.meta.len().max(1) < m.meta.len() {
                    m.meta.remove(pick % m.meta.len());
                }
            }
            _ => {
                let key =
                    ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"];
                m.set(key[pick % key.len()], MetaValue::U32(small % (vocab_size() + 8)));
            }
        }
    }
    Some(m)
}
