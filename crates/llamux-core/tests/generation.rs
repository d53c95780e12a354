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
    let mut sess = Session::new(model, 256);
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
            let mut sess = Session::new(&model, 256);
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
        let mut sess = Session::new(&model, 256);
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
        let mut sess = Session::new(&model, n_ctx);
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
        let mut sess = Session::new(&model, 256);
        let mut gen = Generation::new(sampler(&model, 0.0), whole.clone(), 0, 12, &[]).unwrap();
        let (want, _, _) = run(&model, &tok, &mut sess, &Serial, &mut gen);

        // First a turn on a prefix, then the whole text with that prefix reused from the cache.
        let mut sess = Session::new(&model, 256);
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
