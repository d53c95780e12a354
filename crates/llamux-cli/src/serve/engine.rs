//! The engine thread: it owns the model's sessions and the thread pool and runs every request's
//! generation (`session::Generation`, the loop of every host). Each step, requests that arrived
//! get a free session; one prompt chunk (at most a session's `max_batch` tokens) is fed, so that
//! decoding requests wait at most that long; then every decoding request advances one token in
//! one shared pass over the weights (`Model::forward_multi`). Requests join and leave between
//! steps; one whose client went away (its event receiver dropped) is dropped at the next step.

use super::metrics::Metrics;
use anyhow::{bail, Result};
use llamux_core::model::Model;
use llamux_core::platform::Threads;
use llamux_core::sample::{Sampler, SamplerConfig};
use llamux_core::session::{BatchScratch, Generation, KvType, Session, SessionError, Step, Stop, DEFAULT_MAX_BATCH};
use llamux_core::tokenizer::Tokenizer;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// What the HTTP side sends the engine.
pub enum Msg {
    /// A request to generate for.
    Job(Job),
    /// The server has stopped: cancel whatever is left and return.
    Stop,
}

/// One request: its prompt tokens (shorter than the context), sampling and limits, and where
/// its events go.
pub struct Job {
    pub prompt: Vec<u32>,
    pub sampling: SamplerConfig,
    pub max_tokens: usize,
    pub stop: Vec<Vec<u8>>,
    pub events: UnboundedSender<Event>,
    /// When the request arrived (time to first token is measured from here).
    pub received: Instant,
}

/// What the engine tells a request, in order: tokens, then one `End`, `Error` or `Cancelled`.
pub enum Event {
    Token {
        id: u32,
        piece: Piece,
    },
    End(Stop),
    Error(String),
    /// The server is shutting down and the request ran out of time.
    Cancelled,
}

/// A token's bytes, held inline when short (almost always), so that sending one allocates
/// nothing beyond the channel's own blocks.
pub struct Piece {
    len: u8,
    inline: [u8; 30],
    long: Vec<u8>,
}

impl Piece {
    pub fn new(bytes: &[u8]) -> Self {
        let mut p = Piece { len: 0, inline: [0; 30], long: Vec::new() };
        match p.inline.get_mut(..bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                p.len = bytes.len() as u8;
            }
            None => p.long = bytes.to_vec(),
        }
        p
    }

    pub fn bytes(&self) -> &[u8] {
        if self.long.is_empty() {
            &self.inline[..usize::from(self.len)]
        } else {
            &self.long
        }
    }
}

/// How the engine is set up.
pub struct EngineConfig {
    pub parallel: usize,
    pub n_ctx: usize,
    pub kv_type: KvType,
    pub threads: usize,
    pub cpu_mask: Option<String>,
}

/// A session and the request using it, if any.
struct Slot {
    sess: Session,
    req: Option<Running>,
}

struct Running {
    gen: Generation,
    events: UnboundedSender<Event>,
    received: Instant,
    /// Arrival order: prompts are fed first come, first served.
    seq: u64,
    /// A token has been sent (time to first token recorded).
    started: bool,
}

pub struct Engine<'m> {
    model: &'m Model<'m>,
    tok: &'m Tokenizer<'m>,
    par: Threads,
    slots: Vec<Slot>,
    scratch: BatchScratch,
    waiting: VecDeque<Job>,
    metrics: Arc<Metrics>,
    /// Set when in-flight requests are out of time at shutdown.
    cancel: Arc<AtomicBool>,
    seq: u64,
    // Per-step lists, reused so that a step allocates nothing.
    tokens: Vec<u32>,
    rows_of: Vec<usize>,
    ended: Vec<usize>,
}

impl<'m> Engine<'m> {
    /// Allocates the sessions, the shared step's buffers and the thread pool (on the calling
    /// thread, which becomes the pool's caller).
    pub fn new(
        model: &'m Model<'m>,
        tok: &'m Tokenizer<'m>,
        cfg: &EngineConfig,
        metrics: Arc<Metrics>,
        cancel: Arc<AtomicBool>,
    ) -> Result<Self> {
        let par = crate::pool::threads(cfg.threads, cfg.cpu_mask.as_deref())?;
        let elem = if cfg.kv_type == KvType::F16 { 2u64 } else { 4 };
        let kv_bytes = 2 * u64::from(model.hp.n_layer) * cfg.n_ctx as u64 * model.kv_dim() as u64 * elem;
        let total = kv_bytes.saturating_mul(cfg.parallel as u64);
        if total > crate::run::MAX_KV_BYTES {
            bail!(
                "{} sessions of {} tokens need {:.1} GiB of KV cache (limit {} GiB); lower --parallel or -c",
                cfg.parallel,
                cfg.n_ctx,
                total as f64 / (1u64 << 30) as f64,
                crate::run::MAX_KV_BYTES >> 30
            );
        }
        let oom = || anyhow::anyhow!("not enough memory for {} sessions of {} tokens", cfg.parallel, cfg.n_ctx);
        let mut slots = Vec::with_capacity(cfg.parallel);
        for _ in 0..cfg.parallel {
            let sess = Session::with_options(model, cfg.n_ctx, cfg.kv_type, DEFAULT_MAX_BATCH).map_err(|_| oom())?;
            slots.push(Slot { sess, req: None });
        }
        let scratch = BatchScratch::try_new(model, cfg.parallel, cfg.n_ctx).map_err(|_| oom())?;
        Ok(Engine {
            model,
            tok,
            par,
            slots,
            scratch,
            waiting: VecDeque::with_capacity(64),
            metrics,
            cancel,
            seq: 0,
            tokens: Vec::with_capacity(cfg.parallel),
            rows_of: Vec::with_capacity(cfg.parallel),
            ended: Vec::with_capacity(cfg.parallel),
        })
    }

    /// Threads of the pool.
    pub fn threads(&self) -> usize {
        use llamux_core::platform::Parallel;
        self.par.n_threads()
    }

    fn idle(&self) -> bool {
        self.waiting.is_empty() && self.slots.iter().all(|s| s.req.is_none())
    }

    /// Runs until told to stop (or every sender is gone).
    pub fn run(&mut self, rx: &mut UnboundedReceiver<Msg>) {
        let mut rows: Vec<&mut Session> = Vec::with_capacity(self.slots.len());
        loop {
            if self.idle() {
                self.metrics.set_active(0);
                match rx.blocking_recv() {
                    Some(Msg::Job(j)) => self.waiting.push_back(j),
                    Some(Msg::Stop) | None => return,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(Msg::Job(j)) => self.waiting.push_back(j),
                    Err(TryRecvError::Empty) => break,
                    Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => {
                        self.cancel_all();
                        return;
                    }
                }
            }
            if self.cancel.load(Ordering::Relaxed) {
                self.cancel_all();
            }
            rows = self.step(rows);
        }
    }

    /// One step over the requests that have arrived: drop the abandoned, admit, feed a prompt
    /// chunk, decode a token for all. `rows` is an empty list whose allocation is reused.
    fn step<'r>(&mut self, rows: Vec<&'r mut Session>) -> Vec<&'r mut Session> {
        self.drop_abandoned();
        self.admit();
        self.prefill();
        let rows = self.decode(rows);
        self.metrics.set_active(self.slots.iter().filter(|s| s.req.is_some()).count());
        self.metrics.sample_rate(Instant::now());
        rows
    }

    /// Ends every request.
    fn cancel_all(&mut self) {
        self.metrics.dequeued(self.waiting.len());
        for job in self.waiting.drain(..) {
            let _ = job.events.send(Event::Cancelled);
        }
        for slot in &mut self.slots {
            if let Some(r) = slot.req.take() {
                let _ = r.events.send(Event::Cancelled);
            }
        }
        self.metrics.set_active(0);
    }

    /// Drops requests whose client went away.
    fn drop_abandoned(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|j| !j.events.is_closed());
        let mut gone = before - self.waiting.len();
        self.metrics.dequeued(gone);
        for slot in &mut self.slots {
            if slot.req.as_ref().is_some_and(|r| r.events.is_closed()) {
                slot.req = None;
                gone += 1;
            }
        }
        self.metrics.add_cancelled(gone);
    }

    /// Gives waiting requests the free sessions.
    fn admit(&mut self) {
        while !self.waiting.is_empty() {
            let Some(slot) = self.slots.iter_mut().find(|s| s.req.is_none()) else { return };
            let Some(job) = self.waiting.pop_front() else { return };
            self.metrics.dequeued(1);
            if job.prompt.len() >= slot.sess.n_ctx() {
                let msg =
                    format!("the prompt has {} tokens; the context holds {}", job.prompt.len(), slot.sess.n_ctx());
                let _ = job.events.send(Event::Error(msg));
                continue;
            }
            let n_prompt = job.prompt.len();
            let stop: Vec<&[u8]> = job.stop.iter().map(Vec::as_slice).collect();
            let gen = Sampler::new(job.sampling, self.model.hp.n_vocab as usize)
                .map_err(|e| e.to_string())
                .and_then(|s| Generation::new(s, job.prompt, 0, job.max_tokens, &stop).map_err(|e| e.to_string()));
            match gen {
                Ok(gen) => {
                    slot.sess.reset();
                    self.seq += 1;
                    self.metrics.add_prompt_tokens(n_prompt);
                    slot.req = Some(Running {
                        gen,
                        events: job.events,
                        received: job.received,
                        seq: self.seq,
                        started: false,
                    });
                }
                Err(e) => {
                    let _ = job.events.send(Event::Error(e));
                }
            }
        }
    }

    /// Feeds one chunk of the oldest prompt still being fed; a prompt fed completely gives its
    /// first token at once.
    fn prefill(&mut self) {
        let next = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.req.as_ref().is_some_and(|r| r.gen.feeding_prompt()))
            .min_by_key(|(_, s)| s.req.as_ref().map_or(u64::MAX, |r| r.seq))
            .map(|(i, _)| i);
        let Some(i) = next else { return };
        let Engine { model, tok, par, slots, .. } = self;
        let Slot { sess, req: Some(r) } = &mut slots[i] else { return };
        let outcome = match r.gen.step(model, tok, sess, par) {
            Ok(Step::Prompt) => Ok(None),
            Ok(Step::End(stop)) => Ok(Some(stop)),
            Ok(Step::Token { .. }) => Err("a token during the prompt".to_string()),
            Err(e) => Err(session_error(&e)),
        };
        match outcome {
            Ok(None) if r.gen.feeding_prompt() => {}
            Ok(None) => self.sample(i),
            Ok(Some(stop)) => self.finish(i, Ok(stop)),
            Err(e) => self.finish(i, Err(e)),
        }
    }

    /// One shared decoding step for every request with a token to feed, then a sample for each.
    /// `rows` is an empty list whose allocation is reused from step to step.
    fn decode<'r>(&mut self, mut rows: Vec<&'r mut Session>) -> Vec<&'r mut Session> {
        let Engine { model, par, slots, scratch, tokens, rows_of, ended, .. } = self;
        tokens.clear();
        rows_of.clear();
        ended.clear();
        let mut batch = recycle(rows);
        for (i, slot) in slots.iter_mut().enumerate() {
            let Slot { sess, req: Some(r) } = slot else { continue };
            if r.gen.feeding_prompt() {
                continue;
            }
            match r.gen.pending(sess) {
                Some(t) => {
                    tokens.push(t);
                    rows_of.push(i);
                    batch.push(sess);
                }
                // A full context ended it.
                None => ended.push(i),
            }
        }
        let result = if batch.is_empty() { Ok(()) } else { model.forward_multi(&mut batch, tokens, scratch, par) };
        rows = recycle(batch);
        for k in 0..self.ended.len() {
            let i = self.ended[k];
            let stop = self.slots[i].req.as_ref().and_then(|r| r.gen.end());
            self.finish(i, Ok(stop.unwrap_or(Stop::ContextFull)));
        }
        for k in 0..self.rows_of.len() {
            let i = self.rows_of[k];
            match &result {
                Ok(()) => {
                    if let Some(r) = self.slots[i].req.as_mut() {
                        r.gen.fed_externally();
                    }
                    self.sample(i);
                }
                Err(e) => self.finish(i, Err(session_error(e))),
            }
        }
        rows
    }

    /// Samples slot `i`'s next token and sends it; an ending generation leaves its slot.
    fn sample(&mut self, i: usize) {
        let Engine { tok, slots, metrics, .. } = self;
        let Slot { sess, req: Some(r) } = &mut slots[i] else { return };
        let (sent, end) = match r.gen.sample(tok, sess) {
            Some(Step::Token { id, piece }) => {
                let sent = r.events.send(Event::Token { id, piece: Piece::new(piece) }).is_ok();
                metrics.add_generated(1);
                if !r.started {
                    r.started = true;
                    metrics.observe_ttft(r.received.elapsed());
                }
                (sent, r.gen.end())
            }
            Some(Step::End(stop)) => (true, Some(stop)),
            Some(Step::Prompt) | None => (true, None),
        };
        if !sent {
            // The client went away.
            slots[i].req = None;
            metrics.add_cancelled(1);
        } else if let Some(stop) = end {
            self.finish(i, Ok(stop));
        }
    }

    /// Sends a request its end (or error) and frees its slot.
    fn finish(&mut self, i: usize, end: Result<Stop, String>) {
        if let Some(r) = self.slots.get_mut(i).and_then(|s| s.req.take()) {
            let _ = r.events.send(match end {
                Ok(stop) => Event::End(stop),
                Err(e) => Event::Error(e),
            });
        }
    }
}

fn session_error(e: &SessionError) -> String {
    format!("inference failed: {e}")
}

/// An empty list of session borrows with `v`'s allocation (only the borrows' lifetime changes:
/// the in-place collect of an empty vector keeps its buffer).
#[allow(clippy::unnecessary_filter_map)] // a filter would keep the type, lifetime and all
fn recycle<'b>(v: Vec<&mut Session>) -> Vec<&'b mut Session> {
    v.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use llamux_core::gguf::Gguf;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// Counts the allocations of the threads that ask it to.
    struct Counting;

    thread_local! {
        static COUNTING: Cell<bool> = const { Cell::new(false) };
        static ALLOCS: Cell<usize> = const { Cell::new(0) };
    }

    fn count() {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|n| n.set(n.get() + 1));
        }
    }

    // SAFETY: forwards to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: same contract as ours.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            // SAFETY: same contract as ours.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Steady decoding of several requests: the engine thread allocates (next to) nothing per
    /// token; what is left is the event channels' blocks, shared by 32 events each and reused.
    #[test]
    fn decoding_steps_allocate_next_to_nothing() {
        let Some(path) = std::env::var_os("LLAMUX_SMOLLM2") else {
            assert!(std::env::var_os("LLAMUX_REQUIRE_ASSETS").is_none(), "LLAMUX_SMOLLM2 is not set");
            eprintln!("skipped: LLAMUX_SMOLLM2 is not set");
            return;
        };
        let bytes = std::fs::read(path).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let (model, tok) = (Model::load(&g).unwrap(), Tokenizer::from_gguf(&g).unwrap());
        let cfg = EngineConfig { parallel: 4, n_ctx: 256, kv_type: KvType::F16, threads: 2, cpu_mask: None };
        let metrics = Arc::new(Metrics::new(4, 0));
        let mut e = Engine::new(&model, &tok, &cfg, metrics, Arc::new(AtomicBool::new(false))).unwrap();
        let mut rxs = Vec::new();
        // Prompts that SmolLM2 goes on from for more than the steps here, greedily.
        for p in [
            "Once upon a time",
            "The history of the Roman Empire",
            "It was a dark and stormy night",
            "The quick brown fox",
        ] {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let sampling = SamplerConfig { temperature: 0.0, ..SamplerConfig::default() };
            let prompt = tok.encode(p.as_bytes(), true, true);
            e.waiting.push_back(Job {
                prompt,
                sampling,
                max_tokens: 200,
                stop: vec![],
                events: tx,
                received: Instant::now(),
            });
            rxs.push(rx);
        }
        let drain = |rxs: &mut Vec<UnboundedReceiver<Event>>| {
            let mut n = 0;
            for rx in rxs.iter_mut() {
                while let Ok(ev) = rx.try_recv() {
                    assert!(matches!(ev, Event::Token { .. }), "a request ended early");
                    n += 1;
                }
            }
            n
        };
        let mut rows = Vec::with_capacity(4);
        for _ in 0..24 {
            rows = e.step(rows);
            drain(&mut rxs);
        }
        let mut tokens = 0;
        COUNTING.with(|c| c.set(true));
        for _ in 0..64 {
            rows = e.step(rows);
            tokens += drain(&mut rxs);
        }
        COUNTING.with(|c| c.set(false));
        let allocs = ALLOCS.with(Cell::get);
        assert_eq!(tokens, 4 * 64, "every step decodes a token for each request");
        assert!(allocs * 16 <= tokens, "{allocs} allocations for {tokens} tokens");
        eprintln!("{allocs} allocations on the engine thread for {tokens} tokens");
    }

    #[test]
    fn recycled_row_lists_keep_their_allocation() {
        let v: Vec<&mut Session> = Vec::with_capacity(8);
        let at = v.as_ptr() as usize;
        let w = recycle(v);
        assert_eq!((w.capacity(), w.as_ptr() as usize), (8, at));
    }

    #[test]
    fn pieces_round_trip_inline_and_long() {
        for n in [0usize, 1, 29, 30, 31, 300] {
            let bytes: Vec<u8> = (0..n).map(|i| i as u8).collect();
            assert_eq!(Piece::new(&bytes).bytes(), &bytes[..], "{n}");
        }
    }
}
