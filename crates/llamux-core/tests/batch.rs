//! The batched forward pass against feeding the same tokens one at a time: a batch of any size
//! leaves the same logits and the same KV cache (checked by decoding on from both), bit for bit,
//! on every model CI provides; bad batches are refused without touching the session.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::platform::{Parallel, Threads};
use llamux_core::session::{BatchScratch, KvType, Session, SessionError};
use llamux_core::tokenizer::Tokenizer;

mod common;
use common::asset;

const TEXT: &[u8] = b"The Linux kernel is a free and open-source, monolithic, modular, multitasking, Unix-like \
operating system kernel. It was originally written in 1991 by Linus Torvalds for his i386-based PC.";

/// Logits after `tokens` fed in batches of `chunk`, then after each of `more` fed alone. Batches
/// before the last go without logits (`feed_batch`) unless `chunk` is 1 (the reference).
fn logits(model: &Model<'_>, par: &dyn Parallel, tokens: &[u32], chunk: usize, more: &[u32]) -> Vec<Vec<f32>> {
    let mut sess = Session::with_options(model, 256, KvType::F16, chunk.max(1)).unwrap();
    let mut out = Vec::new();
    let n_chunks = tokens.len().div_ceil(chunk);
    for (i, c) in tokens.chunks(chunk).enumerate() {
        if chunk > 1 && i + 1 < n_chunks {
            model.feed_batch(&mut sess, c, par).unwrap();
        } else {
            out = vec![model.forward_batch(&mut sess, c, par).unwrap().to_vec()];
        }
    }
    assert_eq!(sess.pos, tokens.len());
    for &t in more {
        out.push(model.forward(&mut sess, t, par).unwrap().to_vec());
    }
    out
}

#[test]
fn batches_equal_one_token_at_a_time() {
    let mut checked = 0;
    for var in ["LLAMUX_GEMMA", "LLAMUX_TINYLLAMA", "LLAMUX_QWEN2", "LLAMUX_SMOLLM2"] {
        let Some(path) = asset(var) else { continue };
        let bytes = std::fs::read(path).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let tokens = tok.encode(TEXT, true, true);
        assert!(tokens.len() > 40, "{var}: {} tokens", tokens.len());
        let more = &tokens[1..4];
        let pool = Threads::new(2);
        let want = logits(&model, &pool, &tokens, 1, more);
        for chunk in [2, 7, 32, tokens.len()] {
            let got = logits(&model, &pool, &tokens, chunk, more);
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                let diff = w.iter().zip(g).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(diff, 0, "{var}: batches of {chunk}, logits {i}: {diff} values differ");
            }
        }
        checked += 1;
    }
    eprintln!("batched = one at a time, bit for bit, on {checked} models");
}

#[test]
fn bad_batches_are_refused_and_change_nothing() {
    let Some(path) = asset("LLAMUX_SMOLLM2") else { return };
    let bytes = std::fs::read(path).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::load(&g).unwrap();
    let par = Threads::new(2);
    let mut sess = Session::with_options(&model, 8, KvType::F16, 4).unwrap();
    assert_eq!(sess.max_batch(), 4);
    let e = model.forward_batch(&mut sess, &[], &par).err();
    assert!(matches!(e, Some(SessionError::BatchSize { got: 0, max: 4 })), "{e:?}");
    let e = model.forward_batch(&mut sess, &[1; 5], &par).err();
    assert!(matches!(e, Some(SessionError::BatchSize { got: 5, max: 4 })), "{e:?}");
    let e = model.forward_batch(&mut sess, &[1, 2, model.hp.n_vocab], &par).err();
    assert!(matches!(e, Some(SessionError::TokenOutOfRange(_))), "{e:?}");
    assert_eq!(sess.pos, 0);
    model.forward_batch(&mut sess, &[1; 4], &par).unwrap();
    model.forward_batch(&mut sess, &[1; 3], &par).unwrap();
    let e = model.forward_batch(&mut sess, &[1; 2], &par).err();
    assert!(matches!(e, Some(SessionError::ContextFull { n_ctx: 8 })), "{e:?}");
    assert_eq!(sess.pos, 7);
    model.forward_batch(&mut sess, &[1], &par).unwrap();
    assert_eq!(sess.pos, 8);
}

#[test]
fn a_session_too_large_for_memory_is_an_error_not_a_panic() {
    let Some(path) = asset("LLAMUX_SMOLLM2") else { return };
    let bytes = std::fs::read(path).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::load(&g).unwrap();
    // 2^40 positions: terabytes of cache, and sizes that overflow.
    for n_ctx in [1usize << 40, usize::MAX / 2] {
        assert!(
            matches!(Session::with_options(&model, n_ctx, KvType::F16, 32), Err(SessionError::OutOfMemory)),
            "n_ctx {n_ctx}"
        );
    }
    assert!(matches!(Session::with_options(&model, 64, KvType::F16, usize::MAX / 2), Err(SessionError::OutOfMemory)));
    let s = Session::with_options(&model, 64, KvType::F32, 3).unwrap();
    assert_eq!((s.n_ctx(), s.max_batch()), (64, 3));
}

/// One decoding step for several sessions together (continuous batching) against each session
/// decoding alone: same logits, bit for bit, step after step, for sessions at different
/// positions with different context lengths, joining and leaving between steps.
#[test]
fn sessions_decoding_together_equal_each_alone() {
    let mut checked = 0;
    for var in ["LLAMUX_GEMMA", "LLAMUX_SMOLLM2", "LLAMUX_QWEN2"] {
        let Some(path) = asset(var) else { continue };
        let bytes = std::fs::read(path).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let pool = Threads::new(2);
        let prompts: [&[u8]; 5] =
            [b"Once upon a time", b"The capital of France is", TEXT, b"fn main() {", b"Il \xc3\xa9tait une fois"];
        let n_ctx = [128, 256, 96, 64, 200];
        let open = |i: usize| {
            let mut s = Session::with_options(&model, n_ctx[i], KvType::F16, 32).unwrap();
            let t = tok.encode(prompts[i], true, true);
            for c in t.chunks(32) {
                model.forward_batch(&mut s, c, &pool).unwrap();
            }
            s
        };
        // Two copies of every session: one decodes alone, one in the shared steps.
        let mut alone: Vec<Session> = (0..5).map(open).collect();
        let mut shared: Vec<Session> = (0..5).map(open).collect();
        let mut scratch = BatchScratch::try_new(&model, 8, 256).unwrap();
        for step in 0..6usize {
            // Sessions 0-2 from the start, 3 joins at step 2, 1 leaves after step 3, 4 joins at 4.
            let active: Vec<usize> = (0..5)
                .filter(|&i| match i {
                    3 => step >= 2,
                    1 => step <= 3,
                    4 => step >= 4,
                    _ => true,
                })
                .collect();
            let tokens: Vec<u32> = active.iter().map(|&i| argmax(shared[i].logits_mut())).collect();
            let mut rows: Vec<&mut Session> =
                shared.iter_mut().enumerate().filter(|(i, _)| active.contains(i)).map(|(_, s)| s).collect();
            model.forward_multi(&mut rows, &tokens, &mut scratch, &pool).unwrap();
            for (&i, &t) in active.iter().zip(&tokens) {
                let want = model.forward(&mut alone[i], t, &pool).unwrap().to_vec();
                let got = shared[i].logits_mut().to_vec();
                let diff = want.iter().zip(&got).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(diff, 0, "{var}: step {step}, session {i}: {diff} logits differ");
                assert_eq!(alone[i].pos, shared[i].pos);
            }
        }
        // A session longer than the scratch's context, or a mismatch of rows and tokens, is refused.
        let mut long = Session::with_options(&model, 512, KvType::F16, 1).unwrap();
        long.pos = 0;
        let e = model.forward_multi(&mut [&mut long], &[1], &mut scratch, &pool).err();
        assert!(matches!(e, Some(SessionError::BatchSize { .. })), "{e:?}");
        let e = model.forward_multi(&mut [&mut alone[0]], &[1, 2], &mut scratch, &pool).err();
        assert!(matches!(e, Some(SessionError::BatchSize { .. })), "{e:?}");
        checked += 1;
    }
    eprintln!("sessions decoding together = alone, bit for bit, on {checked} models");
}

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().fold((0, f32::MIN), |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) }).0 as u32
}

#[test]
fn buffers_made_for_another_model_are_refused() {
    let (Some(a), Some(b)) = (asset("LLAMUX_SMOLLM2"), asset("LLAMUX_GEMMA")) else { return };
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    let (ga, gb) = (Gguf::parse(&a).unwrap(), Gguf::parse(&b).unwrap());
    let (small, big) = (Model::load(&ga).unwrap(), Model::load(&gb).unwrap());
    let par = Threads::new(2);
    // gemma3's activations are wider than SmolLM2's: SmolLM2's buffers cannot hold them.
    let mut sess = Session::with_options(&small, 64, KvType::F16, 2).unwrap();
    assert!(big.forward_batch(&mut sess, &[1, 2], &par).is_err());
    let mut scratch = BatchScratch::try_new(&small, 2, 64).unwrap();
    let mut s1 = Session::with_options(&big, 64, KvType::F16, 1).unwrap();
    assert!(big.forward_multi(&mut [&mut s1], &[1], &mut scratch, &par).is_err());
}
