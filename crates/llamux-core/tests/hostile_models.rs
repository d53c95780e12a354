//! Hostile models (files that parse but lie, `common/hostile.rs`): each gives its specific
//! error at load, or loads and runs — prompt batches, single decoding steps, several sessions
//! decoding together and sampling — without a panic. Models whose heads are wider than the
//! embedding run, and their logits match a plain reference forward pass written here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/hostile.rs"]
mod hostile;

use hostile::{cases, Arch, Dims, Expect, TinyModel, TINY};
use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::platform::{Serial, Threads};
use llamux_core::sample::{Sampler, SamplerConfig};
use llamux_core::session::{BatchScratch, Generation, KvType, Session, Step};
use llamux_core::tokenizer::Tokenizer;

/// Loads and runs `g` as every host would; returns what happened.
fn outcome(g: &Gguf<'_>, par: &Threads) -> Expect {
    let model = match Model::load(g) {
        Ok(m) => m,
        Err(e) => return Expect::Model(e),
    };
    let tok = match Tokenizer::from_gguf(g) {
        Ok(t) => t,
        Err(e) => return Expect::Vocab(e),
    };
    let mut finite = true;
    // A prompt long enough for the batched kernels (and past the 8-token sliding window).
    let mut prompt = tok.encode(b"Once upon a time the quick brown fox is a fox of the time", true, true);
    prompt.retain(|&t| t < model.hp.n_vocab);
    prompt.truncate(40);
    if prompt.is_empty() {
        prompt.push(0);
    }
    let mut sess = Session::new(&model, 64).unwrap();
    for chunk in prompt.chunks(16) {
        let logits = model.forward_batch(&mut sess, chunk, par).unwrap();
        finite &= logits.iter().all(|v| v.is_finite());
    }
    for t in [1u32, 5, 300] {
        let logits = model.forward(&mut sess, t % model.hp.n_vocab, &Serial).unwrap();
        finite &= logits.iter().all(|v| v.is_finite());
    }
    // Two sessions decoding together.
    let mut a = Session::with_options(&model, 32, KvType::F32, 4).unwrap();
    let mut b = Session::with_options(&model, 32, KvType::F16, 4).unwrap();
    let mut scratch = BatchScratch::try_new(&model, 2, 32).unwrap();
    for step in 0..3u32 {
        let mut rows = [&mut a, &mut b];
        model.forward_multi(&mut rows, &[step, step + 2], &mut scratch, par).unwrap();
        finite &= a.logits_mut().iter().chain(b.logits_mut().iter()).all(|v| v.is_finite());
    }
    // The generation loop with a sampler over whatever logits came out.
    let cfg = SamplerConfig { temperature: 0.8, top_k: 20, seed: 3, ..SamplerConfig::default() };
    let sampler = Sampler::new(cfg, model.hp.n_vocab as usize).unwrap();
    let mut gen = Generation::new(sampler, prompt, 0, 4, &[b"\n"]).unwrap();
    sess.reset();
    while let Step::Prompt | Step::Token { .. } = gen.step(&model, &tok, &mut sess, par).unwrap() {}
    let _ = tok.decode(gen.tokens(), true);
    if finite {
        Expect::Runs
    } else {
        Expect::RunsNonFinite
    }
}

/// Every case of `common/hostile.rs` gives exactly its error, or runs without a panic.
#[test]
fn every_hostile_model_gives_its_error_or_runs() {
    let all = cases();
    assert!(all.len() > 100, "{} cases", all.len());
    let par = Threads::new(2);
    // LLAMUX_HOSTILE_DIR=DIR writes every case's file there (to load them elsewhere: llama.cpp).
    let dump = std::env::var_os("LLAMUX_HOSTILE_DIR").map(std::path::PathBuf::from);
    let mut names = std::collections::HashSet::new();
    let mut wrong = Vec::new();
    for c in &all {
        assert!(names.insert(c.name), "case {} twice", c.name);
        let bytes = c.model.bytes().unwrap_or_else(|| panic!("{}: the writer refused the model", c.name));
        if let Some(dir) = &dump {
            std::fs::write(dir.join(format!("{}.gguf", c.name)), &bytes).unwrap();
        }
        let g = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{}: does not parse: {e}", c.name));
        let got = outcome(&g, &par);
        match (&c.expect, &got) {
            (Expect::RunsNonFinite, Expect::Runs | Expect::RunsNonFinite) => {}
            (want, got) if want == got => {}
            (want, got) => wrong.push(format!("{}: want {want:?}, got {got:?}", c.name)),
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), all.len(), wrong.join("\n"));
}

/// Models from random hyper-parameters and perturbations (what the fuzz target does, with a
/// fixed seed, 300 of them): never a panic.
#[test]
fn random_models_never_panic() {
    let mut rng = llamux_core::sample::Rng::new(12);
    let mut loaded = 0;
    let par = Threads::new(2);
    for _ in 0..300 {
        let bytes: Vec<u8> = (0..48).map(|_| rng.next_u64() as u8).collect();
        let Some(m) = hostile::from_fuzz_bytes(&bytes) else { continue };
        let Some(file) = m.bytes() else { continue };
        let Ok(g) = Gguf::parse(&file) else { continue };
        if matches!(outcome(&g, &par), Expect::Runs | Expect::RunsNonFinite) {
            loaded += 1;
        }
    }
    assert!(loaded > 20, "only {loaded} random models loaded");
}

/// A model's weights as f32, by name.
fn weights(g: &Gguf<'_>, name: &str) -> Vec<f32> {
    let t = g.tensor(name).unwrap();
    let mut out = vec![0.0; t.n_elements() as usize];
    (llamux_core::quant::traits(t.ggml_type).unwrap().to_float)(g.tensor_data(t), &mut out).unwrap();
    out
}

/// `w` (`rows × x.len()`, row-major) times `x`, in f64.
fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len())
        .map(|r| r.iter().zip(x).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>() as f32)
        .collect()
}

fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let ms = x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / x.len() as f64;
    let s = 1.0 / (ms + f64::from(eps)).sqrt();
    x.iter().zip(w).map(|(v, w)| (f64::from(*v) * s) as f32 * w).collect()
}

/// The logits after each of `tokens` for a llama-architecture model with F32 weights, computed
/// the textbook way (f64 sums, angles from `powf`, no cache types, no kernels).
fn reference_logits(g: &Gguf<'_>, d: Dims, tokens: &[u32]) -> Vec<Vec<f32>> {
    let (e, hd, nh, nkv) = (d.n_embd as usize, d.head_dim as usize, d.n_head as usize, d.n_head_kv as usize);
    let n_vocab = hostile::vocab_size() as usize;
    let eps = 1e-6;
    let embd = weights(g, "token_embd.weight");
    let mut keys: Vec<Vec<Vec<f32>>> = vec![Vec::new(); d.n_layer as usize];
    let mut vals: Vec<Vec<Vec<f32>>> = vec![Vec::new(); d.n_layer as usize];
    let rope = |v: &mut [f32], pos: usize| {
        for h in v.chunks_exact_mut(hd) {
            for i in 0..hd / 2 {
                let theta = pos as f64 * 10_000f64.powf(-2.0 * i as f64 / hd as f64);
                let (s, c) = theta.sin_cos();
                let (x0, x1) = (f64::from(h[2 * i]), f64::from(h[2 * i + 1]));
                h[2 * i] = (x0 * c - x1 * s) as f32;
                h[2 * i + 1] = (x0 * s + x1 * c) as f32;
            }
        }
    };
    let mut out = Vec::new();
    for (pos, &t) in tokens.iter().enumerate() {
        let mut x = embd[t as usize * e..(t as usize + 1) * e].to_vec();
        for l in 0..d.n_layer as usize {
            let w = |s: &str| weights(g, &format!("blk.{l}.{s}.weight"));
            let xb = rms_norm(&x, &w("attn_norm"), eps);
            let mut q = matvec(&w("attn_q"), &xb);
            let mut k = matvec(&w("attn_k"), &xb);
            let v = matvec(&w("attn_v"), &xb);
            rope(&mut q, pos);
            rope(&mut k, pos);
            keys[l].push(k);
            vals[l].push(v);
            let mut att_out = vec![0.0f32; nh * hd];
            for h in 0..nh {
                let kvh = h / (nh / nkv);
                let qh = &q[h * hd..(h + 1) * hd];
                let scores: Vec<f64> = keys[l]
                    .iter()
                    .map(|k| {
                        let kh = &k[kvh * hd..(kvh + 1) * hd];
                        qh.iter().zip(kh).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let p: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = p.iter().sum();
                for (pt, vt) in p.iter().zip(&vals[l]) {
                    for i in 0..hd {
                        att_out[h * hd + i] += (pt / sum * f64::from(vt[kvh * hd + i])) as f32;
                    }
                }
            }
            let o = matvec(&w("attn_output"), &att_out);
            x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
            let xb = rms_norm(&x, &w("ffn_norm"), eps);
            let gate = matvec(&w("ffn_gate"), &xb);
            let up = matvec(&w("ffn_up"), &xb);
            let h: Vec<f32> = gate
                .iter()
                .zip(&up)
                .map(|(g, u)| (f64::from(*g) / (1.0 + (-f64::from(*g)).exp())) as f32 * u)
                .collect();
            let down = matvec(&w("ffn_down"), &h);
            x.iter_mut().zip(&down).for_each(|(x, o)| *x += o);
        }
        let xn = rms_norm(&x, &weights(g, "output_norm.weight"), eps);
        let logits = matvec(&weights(g, "output.weight"), &xn);
        assert_eq!(logits.len(), n_vocab);
        out.push(logits);
    }
    out
}

/// Heads wider than the embedding (`key_length` 128 > `embedding_length` 64; 2 query heads
/// over 1 KV head, and 3 over 3): the engine's logits, fed one token at a time and as one
/// batch, match the reference pass.
#[test]
fn head_dim_above_n_embd_matches_reference() {
    for d in [
        Dims { n_head: 2, n_head_kv: 1, head_dim: 128, ..TINY },
        Dims { n_head: 3, n_head_kv: 3, head_dim: 96, ..TINY },
    ] {
        let m = TinyModel::new(Arch::Llama, d, 5);
        let bytes = m.bytes().unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let model = Model::load(&g).unwrap();
        assert!(model.q_dim() > model.hp.n_embd as usize);
        let tokens = [1u32, 40, 270, 7, 99, 260, 3, 12, 150, 298];
        let want = reference_logits(&g, d, &tokens);
        let mut sess = Session::with_kv_type(&model, 32, KvType::F32).unwrap();
        let mut batch = vec![0.0; tokens.len() * model.hp.n_vocab as usize];
        let mut sess_b = Session::with_kv_type(&model, 32, KvType::F32).unwrap();
        model.forward_batch_all(&mut sess_b, &tokens, &Serial, &mut batch).unwrap();
        for (i, (&t, want)) in tokens.iter().zip(&want).enumerate() {
            let got = model.forward(&mut sess, t, &Serial).unwrap().to_vec();
            let rows = batch.chunks_exact(model.hp.n_vocab as usize).nth(i).unwrap();
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (which, got) in [("one at a time", &got[..]), ("batched", rows)] {
                let err = got.iter().zip(want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(err <= 1e-4 * scale.max(1.0), "{d:?}, token {i} ({which}): max error {err}, scale {scale}");
            }
        }
    }
}
