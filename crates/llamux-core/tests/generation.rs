//! The generation loop every host uses (`session::Generation`) against a plain loop written
//! here from the model's forward pass and the sampler, and its limits: token count, stop
//! strings, a full context, a cached prefix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::platform::{Parallel, Serial, Threads};
use llamux_core::sample::{Sampler, SamplerConfig};
use llamux_core::session::{GenerateError, Generation, Session, Step, Stop};
use llamux_core::tokenizer::Tokenizer;

mod common;
use common::asset;

const PROMPT: &[u8] = b"The quick brown fox";

fn sampler(model: &Model<'_>, temp: f32) -> Sampler {
    let cfg = SamplerConfig { temperature: temp, seed: 42, repeat_penalty: 1.1, ..SamplerConfig::default() };
    Sampler::new(cfg, model.hp.n_vocab as usize).unwrap()
}

/// Tokens and text of a generation run to its end.
fn run(
    model: &Model<'_>,
    tok: &Tokenizer<'_>,
    sess: &mut Session,
    par: &dyn Parallel,
    gen: &mut Generation,
) -> (Vec<u32>, Vec<Vec<u8>>, Stop) {
    let (mut ids, mut pieces) = (Vec::new(), Vec::new());
    loop {
        match gen.step(model, tok, sess, par).unwrap() {
            Step::Prompt => assert!(ids.is_empty(), "a prompt step after a token"),
            Step::Token { id, piece } => {
                ids.push(id);
                pieces.push(piece.to_vec());
            }
            Step::End(stop) => return (ids, pieces, stop),
        }
    }
}

/// The loop hosts used to write for themselves: feed the prompt, then sample from a copy of
/// the logits and feed each token, `n` tokens or until end of generation.
fn reference(model: &Model<'_>, tok: &Tokenizer<'_>, par: &dyn Parallel, temp: f32, n: usize) -> Vec<u32> {
    let mut sess = Session::new(model, 256).unwrap();
    let mut s = sampler(model, temp);
    let mut history = tok.encode(PROMPT, true, true);
    let mut logits = Vec::new();
    for &t in &history {
        logits = model.forward(&mut sess, t, par).unwrap().to_vec();
    }
    let mut out = Vec::new();
    while out.len() < n {
        let next = s.sample(&mut logits, &history);
        if tok.vocab.is_eog(next) {
            break;
        }
        out.push(next);
        history.push(next);
        logits = model.forward(&mut sess, next, par).unwrap().to_vec();
    }
    out
}

fn models() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = Vec::new();
    for var in ["LLAMUX_SMOLLM2", "LLAMUX_TINYLLAMA"] {
        if let Some(p) = asset(var) {
            v.push((var, std::fs::read(p).unwrap()));
        }
    }
    v
}

#[test]
fn matches_the_plain_loop_greedy_and_sampled() {
    for (var, bytes) in models() {
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let pool = Threads::new(2);
        for (par, temp) in [(&pool as &dyn Parallel, 0.0), (&Serial as &dyn Parallel, 0.9)] {
            let want = reference(&model, &tok, par, temp, 40);
            let mut sess = Session::new(&model, 256).unwrap();
            let prompt = tok.encode(PROMPT, true, true);
            let mut gen = Generation::new(sampler(&model, temp), prompt.clone(), 0, 40, &[]).unwrap();
            let (ids, pieces, stop) = run(&model, &tok, &mut sess, par, &mut gen);
            assert_eq!(ids, want, "{var} temp {temp}");
            assert_eq!(stop, if ids.len() == 40 { Stop::Length } else { Stop::EndOfGeneration });
            for (id, piece) in ids.iter().zip(&pieces) {
                let mut p = Vec::new();
                tok.append_piece(*id, false, &mut p);
                assert_eq!(&p, piece);
            }
            assert_eq!(gen.generated(), ids.len());
            assert_eq!(&gen.tokens()[..prompt.len()], &prompt[..]);
            assert_eq!(&gen.tokens()[prompt.len()..], &ids[..]);
            // Ending on the limit, the last token is not fed.
            let fed = prompt.len() + ids.len() - usize::from(stop == Stop::Length);
            assert_eq!(gen.fed_tokens().len(), fed);
            assert_eq!(sess.pos, fed);
            assert_eq!(gen.step(&model, &tok, &mut sess, par).unwrap(), Step::End(stop), "ended stays ended");
        }
    }
}

#[test]
fn stops_on_the_token_that_completes_a_stop_string() {
    for (var, bytes) in models() {
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let prompt = tok.encode(PROMPT, true, true);
        let mut sess = Session::new(&model, 256).unwrap();
        let mut gen = Generation::new(sampler(&model, 0.0), prompt.clone(), 0, 30, &[]).unwrap();
        let (_, pieces, _) = run(&model, &tok, &mut sess, &Serial, &mut gen);
        let text: Vec<u8> = pieces.concat();
        // A stop string spanning tokens 5..=7's text: the last byte of token 5 to the first of 7.
        let at = |i: usize| pieces[..i].iter().map(Vec::len).sum::<usize>();
        assert!(pieces.len() > 8 && pieces[5..8].iter().all(|p| !p.is_empty()), "{var}: too short a text");
        let stop = text[at(6) - 1..=at(7)].to_vec();
        let first = text.windows(stop.len()).position(|w| w == stop).unwrap();
        let ends_in = (0..pieces.len()).find(|&i| at(i + 1) >= first + stop.len()).unwrap();

        sess.reset();
        let mut gen = Generation::new(sampler(&model, 0.0), prompt, 0, 30, &[b"", b"\x01never", &stop]).unwrap();
        let (ids, got, end) = run(&model, &tok, &mut sess, &Serial, &mut gen);
        assert_eq!(end, Stop::StopString, "{var}");
        assert_eq!(ids.len(), ends_in + 1, "{var}: stops on the token completing the string");
        assert_eq!(got[..], pieces[..=ends_in]);
    }
}

#[test]
fn a_full_context_ends_the_generation() {
    for (var, bytes) in models() {
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let prompt = tok.encode(PROMPT, true, true);
        let n_ctx = prompt.len() + 3;
        let mut sess = Session::new(&model, n_ctx).unwrap();
        // Greedy with a repetition penalty of 1: SmolLM2 does not end this prompt within 4 tokens.
        let cfg = SamplerConfig { temperature: 0.0, ..SamplerConfig::default() };
        let s = Sampler::new(cfg, model.hp.n_vocab as usize).unwrap();
        let mut gen = Generation::new(s, prompt, 0, 100, &[]).unwrap();
        let (ids, _, end) = run(&model, &tok, &mut sess, &Serial, &mut gen);
        assert_eq!((ids.len(), end), (4, Stop::ContextFull), "{var}: 3 tokens fit, the 4th is sampled last");
        assert_eq!(sess.pos, n_ctx);
    }
}

#[test]
fn a_cached_prefix_continues_as_if_fed_in_one_go() {
    for (var, bytes) in models() {
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let whole = tok.encode(b"The quick brown fox jumps over the lazy dog. Then", true, true);
        let mut sess = Session::new(&model, 256).unwrap();
        let mut gen = Generation::new(sampler(&model, 0.0), whole.clone(), 0, 12, &[]).unwrap();
        let (want, _, _) = run(&model, &tok, &mut sess, &Serial, &mut gen);

        // First a turn on a prefix, then the whole text with that prefix reused from the cache.
        let mut sess = Session::new(&model, 256).unwrap();
        let mut gen = Generation::new(sampler(&model, 0.0), whole[..5].to_vec(), 0, 3, &[]).unwrap();
        run(&model, &tok, &mut sess, &Serial, &mut gen);
        let (_, cached) = gen.finish();
        assert_eq!(cached.len(), sess.pos);
        let keep = cached.iter().zip(&whole).take_while(|(a, b)| a == b).count();
        assert!((5..whole.len()).contains(&keep), "{var}: {keep}");
        sess.truncate(keep);
        let mut gen = Generation::new(sampler(&model, 0.0), whole.clone(), keep, 12, &[]).unwrap();
        let (got, _, _) = run(&model, &tok, &mut sess, &Serial, &mut gen);
        assert_eq!(got, want, "{var}");
    }
}

#[test]
fn nothing_to_feed_is_refused() {
    let s = || Sampler::new(SamplerConfig::default(), 10).unwrap();
    assert_eq!(Generation::new(s(), vec![1, 2], 2, 5, &[]).err(), Some(GenerateError::NothingToFeed));
    assert_eq!(Generation::new(s(), vec![], 0, 5, &[]).err(), Some(GenerateError::NothingToFeed));
}

/// Several generations decoding together, as a server runs them: each prompt fed on its own
/// (`step`), then every step one shared pass ([`Model::forward_multi`]) feeds each session its
/// pending token and each samples alone (`sample`), sessions joining and leaving between steps.
/// Every generation's tokens, pieces, end and cache equal the same generation run alone.
#[test]
fn generations_decoding_together_equal_each_alone() {
    use llamux_core::session::{BatchScratch, KvType};
    let prompts: [&[u8]; 5] =
        [b"Once upon a time", b"The capital of France is", PROMPT, b"fn main() {", b"Il \xc3\xa9tait une fois"];
    // (max tokens, context length, stop string, step at which it joins)
    let cases: [(usize, usize, &[u8], usize); 5] =
        [(14, 128, b"", 0), (5, 128, b"", 0), (30, 12, b"", 1), (12, 128, b"\x01never", 3), (8, 96, b"", 6)];
    for (var, bytes) in models() {
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let pool = Threads::new(2);
        for temp in [0.0, 0.9] {
            let new_gen = |i: usize| {
                let (max, _, stop, _) = cases[i];
                Generation::new(sampler(&model, temp), tok.encode(prompts[i], true, true), 0, max, &[stop]).unwrap()
            };
            let session = |i: usize| Session::with_options(&model, cases[i].1, KvType::F16, 8).unwrap();
            let want: Vec<_> = (0..5)
                .map(|i| {
                    let (mut sess, mut gen) = (session(i), new_gen(i));
                    let out = run(&model, &tok, &mut sess, &pool, &mut gen);
                    (out, sess.pos)
                })
                .collect();

            let mut sessions: Vec<Session> = (0..5).map(session).collect();
            let mut gens: Vec<Option<Generation>> = (0..5).map(|_| None).collect();
            // Per generation: tokens, pieces, end.
            type Out = (Vec<u32>, Vec<Vec<u8>>, Option<Stop>);
            let mut got: Vec<Out> = vec![(vec![], vec![], None); 5];
            let mut scratch = BatchScratch::try_new(&model, 5, 128).unwrap();
            let mut shared_steps = 0;
            for step in 0..200 {
                for i in (0..5).filter(|&i| cases[i].3 == step) {
                    let mut gen = new_gen(i);
                    while gen.feeding_prompt() {
                        assert_eq!(gen.step(&model, &tok, &mut sessions[i], &pool).unwrap(), Step::Prompt);
                    }
                    gens[i] = Some(gen);
                }
                // Sample where logits are ready; whatever ends leaves.
                for i in 0..5 {
                    let Some(gen) = gens[i].as_mut() else { continue };
                    match gen.sample(&tok, &mut sessions[i]) {
                        Some(Step::Token { id, piece }) => {
                            got[i].0.push(id);
                            got[i].1.push(piece.to_vec());
                        }
                        Some(Step::End(_)) | Some(Step::Prompt) => {}
                        None => panic!("{var}: session {i} had nothing to sample"),
                    }
                    assert!(gen.sample(&tok, &mut sessions[i]).is_none() || gen.end().is_some(), "pending");
                }
                let mut rows: Vec<&mut Session> = Vec::new();
                let mut tokens = Vec::new();
                let mut fed = Vec::new();
                for (i, (gen, sess)) in gens.iter_mut().zip(sessions.iter_mut()).enumerate() {
                    let Some(g) = gen.as_mut() else { continue };
                    match g.pending(sess) {
                        Some(t) => {
                            tokens.push(t);
                            rows.push(sess);
                            fed.push(i);
                        }
                        None => {
                            got[i].2 = g.end();
                            *gen = None;
                        }
                    }
                }
                if rows.is_empty() {
                    if (0..5).all(|i| cases[i].3 <= step) {
                        break;
                    }
                    continue;
                }
                model.forward_multi(&mut rows, &tokens, &mut scratch, &pool).unwrap();
                shared_steps += 1;
                for &i in &fed {
                    gens[i].as_mut().unwrap().fed_externally();
                }
            }
            assert!(shared_steps > 10, "{var}: {shared_steps} shared steps");
            for (i, ((ids, pieces, stop), pos)) in want.into_iter().enumerate() {
                assert_eq!(got[i].0, ids, "{var} temp {temp}: session {i}'s tokens");
                assert_eq!(got[i].1, pieces, "{var} temp {temp}: session {i}'s pieces");
                assert_eq!(got[i].2, Some(stop), "{var} temp {temp}: session {i}'s end");
                assert_eq!(sessions[i].pos, pos, "{var} temp {temp}: session {i}'s cache");
            }
        }
    }
}

/// `step` after `sample` feeds the pending token first: the same tokens as `step` alone.
#[test]
fn step_feeds_what_sample_left_pending() {
    for (var, bytes) in models() {
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let prompt = tok.encode(PROMPT, true, true);
        let mut sess = Session::new(&model, 256).unwrap();
        let mut gen = Generation::new(sampler(&model, 0.0), prompt.clone(), 0, 12, &[]).unwrap();
        let (want, _, _) = run(&model, &tok, &mut sess, &Serial, &mut gen);

        let mut sess = Session::new(&model, 256).unwrap();
        let mut gen = Generation::new(sampler(&model, 0.0), prompt, 0, 12, &[]).unwrap();
        assert!(gen.sample(&tok, &mut sess).is_none(), "{var}: nothing to sample before the prompt");
        assert_eq!(gen.pending(&sess), None);
        while gen.feeding_prompt() {
            gen.step(&model, &tok, &mut sess, &Serial).unwrap();
        }
        let mut ids = Vec::new();
        for i in 0.. {
            let step = if i % 2 == 0 {
                gen.sample(&tok, &mut sess).unwrap()
            } else {
                gen.step(&model, &tok, &mut sess, &Serial).unwrap()
            };
            match step {
                Step::Token { id, .. } => ids.push(id),
                Step::End(_) => break,
                Step::Prompt => panic!("{var}: a prompt step"),
            }
            if i % 2 == 0 && gen.end().is_none() {
                assert_eq!(gen.pending(&sess), Some(*ids.last().unwrap()), "{var}");
                assert!(gen.sample(&tok, &mut sess).is_none(), "{var}: a token is pending");
            }
        }
        assert_eq!(ids, want, "{var}");
    }
}
