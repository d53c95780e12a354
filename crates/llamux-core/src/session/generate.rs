//! The generation loop: feed a prompt, then sample, emit and feed tokens until a limit, the
//! end-of-generation token, a stop string or a full context ends it. One loop for every host:
//! the CLI's `run` and `chat`, the kernel module (bounded steps it can stop between: prompt
//! chunks by [`Generation::step`], then [`Generation::sample`] for every session, whose tokens
//! it feeds together) and the server.
//!
//! Sampling reads the session's own logits buffer in place: no copy of the vocabulary-sized
//! row per token, and no heap allocation per token (everything is reserved up front).

use alloc::collections::TryReserveError;
use alloc::vec::Vec;

use super::{Session, SessionError};
use crate::model::Model;
use crate::platform::Parallel;
use crate::sample::Sampler;
use crate::tokenizer::Tokenizer;

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `max_tokens` tokens were generated.
    Length,
    /// The model produced an end-of-generation token (not emitted).
    EndOfGeneration,
    /// The text ended in a stop string (the token completing it was emitted).
    StopString,
    /// The context is full.
    ContextFull,
}

/// What one [`Generation::step`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Fed a batch of prompt tokens.
    Prompt,
    /// Generated a token; `piece` is its text (possibly part of a UTF-8 sequence, possibly empty).
    Token {
        /// Token id.
        id: u32,
        /// Its bytes.
        piece: &'a [u8],
    },
    /// Generation has ended; every later step says the same.
    End(Stop),
}

/// One sequence being generated: its tokens, sampler, limits and stop strings.
pub struct Generation {
    sampler: Sampler,
    /// Every token of the sequence: the prompt (or conversation so far), then generated ones.
    tokens: Vec<u32>,
    /// How many of `tokens` are in the session's cache.
    fed: usize,
    /// Tokens generated so far.
    generated: usize,
    max_tokens: usize,
    /// Stop strings, concatenated; `stop_ends[i]` is where string `i` ends.
    stop_bytes: Vec<u8>,
    stop_ends: Vec<usize>,
    /// The end of the generated text: the last `keep` bytes before the newest piece, then it.
    tail: Vec<u8>,
    /// One byte less than the longest stop string.
    keep: usize,
    piece: Vec<u8>,
    end: Option<Stop>,
}

impl Generation {
    /// A generation continuing `tokens`, whose first `cached` are already in the session's cache
    /// (0 for a fresh session; a reused prefix for a conversation). At least one token must be
    /// left to feed: its logits are what the first sample reads. Generates at most `max_tokens`
    /// tokens; stops after a token that completes one of `stop` (empty strings are ignored).
    pub fn new(
        sampler: Sampler,
        mut tokens: Vec<u32>,
        cached: usize,
        max_tokens: usize,
        stop: &[&[u8]],
    ) -> Result<Self, GenerateError> {
        if cached >= tokens.len() {
            return Err(GenerateError::NothingToFeed);
        }
        tokens.try_reserve(max_tokens)?;
        let mut stop_bytes = Vec::new();
        let mut stop_ends = Vec::new();
        let mut longest = 0;
        for s in stop.iter().filter(|s| !s.is_empty()) {
            stop_bytes.try_reserve(s.len())?;
            stop_bytes.extend_from_slice(s);
            stop_ends.try_reserve(1)?;
            stop_ends.push(stop_bytes.len());
            longest = longest.max(s.len());
        }
        // A piece is rarely longer than this; a longer one grows the buffers once.
        const PIECE: usize = 256;
        let mut tail = Vec::new();
        tail.try_reserve(if longest > 0 { longest + PIECE } else { 0 })?;
        let mut piece = Vec::new();
        piece.try_reserve(PIECE)?;
        Ok(Generation {
            sampler,
            tokens,
            fed: cached,
            generated: 0,
            max_tokens,
            stop_bytes,
            stop_ends,
            tail,
            keep: longest.saturating_sub(1),
            piece,
            end: if max_tokens == 0 { Some(Stop::Length) } else { None },
        })
    }

    /// Every token of the sequence so far (prompt, then generated).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The tokens that are in the session's cache (the last generated token is not fed when the
    /// generation ends on it).
    pub fn fed_tokens(&self) -> &[u32] {
        &self.tokens[..self.fed]
    }

    /// Tokens generated so far.
    pub fn generated(&self) -> usize {
        self.generated
    }

    /// Whether prompt tokens are still to be fed.
    pub fn feeding_prompt(&self) -> bool {
        self.end.is_none() && self.generated == 0 && self.fed < self.tokens.len()
    }

    /// Ends the generation: its sampler (to go on with in a later one) and the tokens in the
    /// session's cache.
    pub fn finish(self) -> (Sampler, Vec<u32>) {
        let mut tokens = self.tokens;
        tokens.truncate(self.fed);
        (self.sampler, tokens)
    }

    /// Why the generation ended, once it has.
    pub fn end(&self) -> Option<Stop> {
        self.end
    }

    /// One bounded unit of work: feeds a batch of prompt tokens (at most the session's
    /// [`max_batch`](Session::max_batch)), or samples a token, emits it and feeds it (one forward
    /// pass either way; a token left [`pending`](Self::pending) by [`sample`](Self::sample) is
    /// fed first). The session must be the one the cached tokens were fed to, and nothing else
    /// may feed it in between.
    pub fn step(
        &mut self,
        model: &Model<'_>,
        tok: &Tokenizer<'_>,
        sess: &mut Session,
        par: &dyn Parallel,
    ) -> Result<Step<'_>, SessionError> {
        if let Some(stop) = self.end {
            return Ok(Step::End(stop));
        }
        if self.feeding_prompt() {
            // The prompt goes in batches: every weight is read once per batch.
            self.feed(model, sess, par, self.tokens.len().min(self.fed + sess.max_batch()))?;
            return Ok(self.end.map_or(Step::Prompt, Step::End));
        }
        if self.is_pending() {
            self.feed(model, sess, par, self.fed + 1)?;
            if let Some(stop) = self.end {
                return Ok(Step::End(stop));
            }
        }
        let Some(next) = self.sample_and_emit(tok, sess) else {
            return Ok(self.end.map_or(Step::Prompt, Step::End));
        };
        if self.end.is_none() {
            self.feed(model, sess, par, self.fed + 1)?;
        }
        Ok(Step::Token { id: next, piece: &self.piece })
    }

    /// The sampling half of [`step`](Self::step), for hosts that feed several sessions in one
    /// pass ([`Model::forward_multi`]): samples from the session's logits and emits the token
    /// without feeding it. Unless generation ends on it, the token is then
    /// [`pending`](Self::pending) until the host feeds it and calls
    /// [`fed_externally`](Self::fed_externally). `None` when the session must be fed first (prompt
    /// tokens left, or a token pending): there are no logits to sample from.
    pub fn sample(&mut self, tok: &Tokenizer<'_>, sess: &mut Session) -> Option<Step<'_>> {
        if let Some(stop) = self.end {
            return Some(Step::End(stop));
        }
        if self.feeding_prompt() || self.is_pending() {
            return None;
        }
        Some(match self.sample_and_emit(tok, sess) {
            Some(id) => Step::Token { id, piece: &self.piece },
            None => Step::End(self.end.unwrap_or(Stop::EndOfGeneration)),
        })
    }

    /// The token the host must feed to this session next (at its next position) when it feeds
    /// sessions itself: the last one [`sample`](Self::sample) emitted. `None` when nothing is
    /// pending (prompt tokens left, nothing sampled yet, generation ended). A session whose
    /// context is full cannot take it: that ends the generation here, as a failed feed in
    /// [`step`](Self::step) does.
    pub fn pending(&mut self, sess: &Session) -> Option<u32> {
        if !self.is_pending() {
            return None;
        }
        if sess.pos >= sess.n_ctx() {
            self.end = Some(Stop::ContextFull);
            return None;
        }
        self.tokens.get(self.fed).copied()
    }

    /// Records that the host fed the [`pending`](Self::pending) token to the session (nothing
    /// happens when none is pending).
    pub fn fed_externally(&mut self) {
        if self.is_pending() {
            self.fed += 1;
        }
    }

    /// A sampled token awaits feeding.
    fn is_pending(&self) -> bool {
        self.end.is_none() && self.generated > 0 && self.fed < self.tokens.len()
    }

    /// Samples, records and decodes the next token into `self.piece` (`None`: end of
    /// generation), ending the generation when the token completes a stop string or the limit.
    fn sample_and_emit(&mut self, tok: &Tokenizer<'_>, sess: &mut Session) -> Option<u32> {
        let next = self.sampler.sample(sess.logits_mut(), &self.tokens);
        if tok.vocab.is_eog(next) {
            self.end = Some(Stop::EndOfGeneration);
            return None;
        }
        self.generated += 1;
        self.tokens.push(next); // within the reserve: at most max_tokens are pushed
        self.piece.clear();
        tok.append_piece(next, false, &mut self.piece);
        if self.matches_stop() {
            self.end = Some(Stop::StopString);
        } else if self.generated >= self.max_tokens {
            // The last token is not fed: nothing would read its logits.
            self.end = Some(Stop::Length);
        }
        Some(next)
    }

    /// Feeds the tokens from `self.fed` to `end` as one batch; a full context ends the
    /// generation.
    fn feed(
        &mut self,
        model: &Model<'_>,
        sess: &mut Session,
        par: &dyn Parallel,
        end: usize,
    ) -> Result<(), SessionError> {
        // Only the last token's logits are ever read.
        let batch = &self.tokens[self.fed..end];
        let fed = if end < self.tokens.len() {
            model.feed_batch(sess, batch, par)
        } else {
            model.forward_batch(sess, batch, par).map(|_| ())
        };
        match fed {
            Ok(()) => self.fed = end,
            Err(SessionError::ContextFull { .. }) => self.end = Some(Stop::ContextFull),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Appends the new piece to the tail and tells whether a stop string ends in it.
    fn matches_stop(&mut self) -> bool {
        if self.stop_ends.is_empty() {
            return false;
        }
        let before = self.tail.len();
        self.tail.extend_from_slice(&self.piece);
        let mut start = 0;
        let mut hit = false;
        for &end in &self.stop_ends {
            let s = &self.stop_bytes[start..end];
            start = end;
            // Only a match that ends in the new piece is new.
            let from = (before + 1).saturating_sub(s.len());
            if self.tail.len() >= s.len() && self.tail[from..].windows(s.len()).any(|w| w == s) {
                hit = true;
            }
        }
        let cut = self.tail.len().saturating_sub(self.keep);
        self.tail.drain(..cut);
        hit
    }
}

/// A generation could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerateError {
    /// Every token is already cached: there are no logits to sample from.
    NothingToFeed,
    /// Memory for the token buffers could not be reserved.
    OutOfMemory,
}

impl From<TryReserveError> for GenerateError {
    fn from(_: TryReserveError) -> Self {
        GenerateError::OutOfMemory
    }
}

impl core::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GenerateError::NothingToFeed => write!(f, "no token left to feed: generation needs at least one"),
            GenerateError::OutOfMemory => write!(f, "out of memory for the generation's buffers"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for GenerateError {}
