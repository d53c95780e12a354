//! Sessions decoding together as the kernel module's engine steps them: each step feeds a
//! prompt chunk to every session still feeding its prompt (`Generation::step`, small chunks, so
//! prompts span several steps between decoding ones), then every other session samples
//! (`Generation::sample`) and all the sampled tokens are fed in one `Model::forward_multi`, except
//! a session whose context the shared buffers do not hold, which is fed alone. Sessions join
//! at different steps and leave when they end (length, stop string, full context, end of
//! generation). Each greedy generation must give exactly the tokens, text, end and cache it
//! gives run alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::platform::{Parallel, Threads};
use llamux_core::sample::{Sampler, SamplerConfig};
use llamux_core::session::{BatchScratch, Generation, KvType, Session, Step, Stop};
use llamux_core::tokenizer::Tokenizer;

mod common;
use common::asset;

/// One generation of the test.
struct Case {
    prompt: &'static [u8],
    max_tokens: usize,
    n_ctx: usize,
    stop: &'static [u8],
    /// The engine step at which it joins.
    joins: usize,
}

const CASES: [Case; 6] = [
    Case { prompt: b"Once upon a time", max_tokens: 20, n_ctx: 96, stop: b"", joins: 0 },
    Case { prompt: b"The Linux kernel is a free and open-source", max_tokens: 7, n_ctx: 96, stop: b"", joins: 0 },
    // Its context fills before its limit.
    Case { prompt: b"The quick brown fox", max_tokens: 40, n_ctx: 14, stop: b"", joins: 2 },
    Case { prompt: b"fn main() {", max_tokens: 25, n_ctx: 96, stop: b"\x01never", joins: 3 },
    // A longer context than the shared buffers hold: fed alone in the same steps.
    Case { prompt: b"Il \xc3\xa9tait une fois", max_tokens: 15, n_ctx: 160, stop: b"", joins: 5 },
    Case { prompt: b"1, 2, 3, 4,", max_tokens: 18, n_ctx: 64, stop: b" 9", joins: 9 },
];

/// Prompt tokens per chunk: prompts take several steps.
const CHUNK: usize = 4;

fn greedy(model: &Model<'_>) -> Sampler {
    Sampler::new(SamplerConfig { temperature: 0.0, ..SamplerConfig::default() }, model.hp.n_vocab as usize).unwrap()
}

fn generation(model: &Model<'_>, tok: &Tokenizer<'_>, c: &Case) -> Generation {
    Generation::new(greedy(model), tok.encode(c.prompt, true, true), 0, c.max_tokens, &[c.stop]).unwrap()
}

/// What a generation produced: token ids, their pieces, its end, and the cache's length.
type Outcome = (Vec<u32>, Vec<Vec<u8>>, Option<Stop>, usize);

fn alone(model: &Model<'_>, tok: &Tokenizer<'_>, par: &dyn Parallel, c: &Case) -> Outcome {
    let mut sess = Session::with_options(model, c.n_ctx, KvType::F16, CHUNK).unwrap();
    let mut gen = generation(model, tok, c);
    let (mut ids, mut pieces) = (Vec::new(), Vec::new());
    loop {
        match gen.step(model, tok, &mut sess, par).unwrap() {
            Step::Prompt => {}
            Step::Token { id, piece } => {
                ids.push(id);
                pieces.push(piece.to_vec());
            }
            Step::End(stop) => return (ids, pieces, Some(stop), sess.pos),
        }
    }
}

#[test]
fn sessions_stepped_together_equal_each_alone() {
    let mut checked = 0;
    for var in ["LLAMUX_SMOLLM2", "LLAMUX_TINYLLAMA"] {
        let Some(path) = asset(var) else { continue };
        let bytes = std::fs::read(path).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let pool = Threads::new(2);
        let want: Vec<Outcome> = CASES.iter().map(|c| alone(&model, &tok, &pool, c)).collect();

        let n = CASES.len();
        // Shared buffers for every session, with contexts of up to 96 positions.
        let mut scratch = BatchScratch::try_new(&model, n, 96).unwrap();
        let mut sessions: Vec<Session> =
            CASES.iter().map(|c| Session::with_options(&model, c.n_ctx, KvType::F16, CHUNK).unwrap()).collect();
        let mut gens: Vec<Option<Generation>> = (0..n).map(|_| None).collect();
        let mut got: Vec<Outcome> = (0..n).map(|_| (Vec::new(), Vec::new(), None, 0)).collect();
        let (mut shared_steps, mut alone_feeds, mut prompt_steps_while_decoding) = (0, 0, 0);
        for step in 0..200 {
            for (i, c) in CASES.iter().enumerate().filter(|(_, c)| c.joins == step) {
                gens[i] = Some(generation(&model, &tok, c));
            }
            // A prompt chunk for each session still feeding its prompt.
            let decoding = gens.iter().flatten().filter(|g| !g.feeding_prompt()).count();
            for (gen, sess) in gens.iter_mut().zip(&mut sessions) {
                let Some(g) = gen.as_mut().filter(|g| g.feeding_prompt()) else { continue };
                let fed = g.fed_tokens().len();
                assert_eq!(g.step(&model, &tok, sess, &pool).unwrap(), Step::Prompt);
                assert!(g.fed_tokens().len() - fed <= CHUNK);
                prompt_steps_while_decoding += usize::from(decoding > 0);
            }
            // Every other session samples; its token is fed with the others', or alone.
            let (mut rows, mut tokens, mut fed) = (Vec::new(), Vec::new(), Vec::new());
            for (i, (gen, sess)) in gens.iter_mut().zip(sessions.iter_mut()).enumerate() {
                let Some(g) = gen.as_mut().filter(|g| !g.feeding_prompt()) else { continue };
                match g.sample(&tok, sess).expect("logits to sample from") {
                    Step::Token { id, piece } => {
                        got[i].0.push(id);
                        got[i].1.push(piece.to_vec());
                    }
                    Step::End(_) => {}
                    Step::Prompt => panic!("{var}: sample fed a prompt"),
                }
                match g.pending(sess) {
                    Some(t) if sess.n_ctx() <= 96 => {
                        rows.push(sess);
                        tokens.push(t);
                        fed.push(i);
                    }
                    Some(t) => {
                        model.forward(sess, t, &pool).unwrap();
                        g.fed_externally();
                        alone_feeds += 1;
                    }
                    None => {
                        // Ended: it leaves.
                        got[i].2 = g.end();
                        got[i].3 = sess.pos;
                        *gen = None;
                    }
                }
            }
            if !rows.is_empty() {
                shared_steps += usize::from(rows.len() > 1);
                model.forward_multi(&mut rows, &tokens, &mut scratch, &pool).unwrap();
                for &i in &fed {
                    gens[i].as_mut().unwrap().fed_externally();
                }
            }
            if gens.iter().all(Option::is_none) && CASES.iter().all(|c| c.joins <= step) {
                break;
            }
        }
        assert!(shared_steps >= 10, "{var}: only {shared_steps} steps decoded several sessions");
        assert!(
            alone_feeds > 0 && prompt_steps_while_decoding > 0,
            "{var}: {alone_feeds} {prompt_steps_while_decoding}"
        );
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(g.0, w.0, "{var}: session {i}'s tokens");
            assert_eq!(g.1, w.1, "{var}: session {i}'s text");
            assert_eq!(g.2, w.2, "{var}: session {i}'s end");
            assert_eq!(g.3, w.3, "{var}: session {i}'s cache");
        }
        let ends: Vec<_> = got.iter().map(|g| g.2).collect();
        assert!(ends.contains(&Some(Stop::ContextFull)) && ends.contains(&Some(Stop::Length)), "{var}: {ends:?}");
        checked += 1;
    }
    eprintln!("sessions stepped together = each alone, on {checked} models");
}
