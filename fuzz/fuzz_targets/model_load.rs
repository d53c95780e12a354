//! Structure-aware: the input chooses a tiny model's architecture, shape and matrix type, then
//! up to four lies (hyper-parameters, floats, tensor shapes, types and contents, missing
//! tensors and keys, special token ids; `llamux-core/tests/common/hostile.rs`). Loading it gives
//! a typed error, or a model whose prompt batches, decoding steps and sampling never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::platform::Serial;
use llamux_core::sample::{Sampler, SamplerConfig};
use llamux_core::session::{BatchScratch, Generation, KvType, Session, Step};
use llamux_core::tokenizer::Tokenizer;

#[path = "../../crates/llamux-core/tests/common/hostile.rs"]
mod hostile;

fuzz_target!(|data: &[u8]| {
    let Some(m) = hostile::from_fuzz_bytes(data) else { return };
    let Some(bytes) = m.bytes() else { return };
    let Ok(g) = Gguf::parse(&bytes) else { return };
    let Ok(model) = Model::load(&g) else { return };
    let Ok(tok) = Tokenizer::from_gguf(&g) else { return };
    let n_vocab = model.hp.n_vocab;
    let mut prompt = tok.encode(b"Once upon a time the quick brown fox", true, true);
    prompt.retain(|&t| t < n_vocab);
    prompt.truncate(24);
    if prompt.is_empty() {
        prompt.push(0);
    }
    let mut sess = Session::with_options(&model, 32, KvType::F16, 16).expect("a tiny session");
    for chunk in prompt.chunks(16) {
        model.forward_batch(&mut sess, chunk, &Serial).expect("a model that loads runs");
    }
    model.forward(&mut sess, n_vocab - 1, &Serial).expect("a model that loads runs");
    let mut a = Session::with_options(&model, 8, KvType::F32, 1).expect("a tiny session");
    let mut b = Session::with_options(&model, 8, KvType::F16, 1).expect("a tiny session");
    let mut scratch = BatchScratch::try_new(&model, 2, 8).expect("tiny buffers");
    model.forward_multi(&mut [&mut a, &mut b], &[0, n_vocab - 1], &mut scratch, &Serial).expect("runs");
    let cfg = SamplerConfig { temperature: 0.7, top_k: 10, ..SamplerConfig::default() };
    let sampler = Sampler::new(cfg, n_vocab as usize).expect("a sampler");
    let mut gen = Generation::new(sampler, prompt, 0, 3, &[b"x"]).expect("a generation");
    sess.reset();
    while let Ok(Step::Prompt | Step::Token { .. }) = gen.step(&model, &tok, &mut sess, &Serial) {}
});
