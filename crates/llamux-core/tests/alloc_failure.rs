//! Memory running out while loading a model or starting a session is a typed error, never a
//! panic or an abort: under a global allocator that fails on command, every allocation of the
//! sequence a host goes through (parse, `Model::load`, `Tokenizer::from_gguf`, session, shared
//! batch buffers, sampler, generation) is made to fail in turn — once, and from then on — and
//! the step that met it must return its `OutOfMemory` error; the rest of the sequence still
//! runs afterwards when memory comes back.
//!
//! Allocations of fewer than [`MIN_FAIL`] bytes are never failed: error messages and a prompt's
//! tokens are small, bounded allocations made with `alloc`'s infallible API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use hostile::{Arch, TinyModel, TINY};
use llamux_core::gguf::{Gguf, GgufErrorKind};
use llamux_core::model::{Model, ModelError};
use llamux_core::platform::Serial;
use llamux_core::sample::{Sampler, SamplerConfig, SamplerError};
use llamux_core::session::{BatchScratch, GenerateError, Generation, KvType, Session, SessionError, Step};
use llamux_core::tokenizer::{Tokenizer, VocabError};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Smallest allocation the allocator fails.
const MIN_FAIL: usize = 256;

/// Fails allocations of at least [`MIN_FAIL`] bytes on command.
struct Failing;

thread_local! {
    /// Whether failures are armed on this thread (other threads, such as the test harness's,
    /// allocate freely).
    static ARMED: Cell<bool> = const { Cell::new(false) };
}
/// Large allocations still allowed before the first failure.
static ALLOW: AtomicUsize = AtomicUsize::new(0);
/// After the first failure: fail every later large allocation too (memory exhausted), or only
/// that one.
static STICKY: AtomicBool = AtomicBool::new(false);
/// Whether a failure was injected.
static INJECTED: AtomicBool = AtomicBool::new(false);
/// One test at a time drives the allocator.
static LOCK: Mutex<()> = Mutex::new(());

fn fail(size: usize) -> bool {
    if size < MIN_FAIL || !ARMED.with(Cell::get) {
        return false;
    }
    if INJECTED.load(Ordering::SeqCst) {
        return STICKY.load(Ordering::SeqCst);
    }
    if ALLOW.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return false;
    }
    INJECTED.store(true, Ordering::SeqCst);
    true
}

// SAFETY: forwards to the system allocator, or returns null (a failed allocation) as the
// `GlobalAlloc` contract allows.
unsafe impl GlobalAlloc for Failing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if fail(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if fail(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Failing = Failing;

/// Which step met the failure.
#[derive(Debug, PartialEq, Eq)]
enum Oom {
    Parse,
    Model,
    Tokenizer,
    Session,
    Batch,
    Sampler,
    Generation,
}

/// The host's sequence over `bytes` with `prompt` (tokenized before, unarmed); `Err` names
/// the step that returned its out-of-memory error. Any other error, or a panic, fails the test.
fn sequence(bytes: &[u8], prompt: &[u32], tokenizer_only: bool) -> Result<(), Oom> {
    let g = match Gguf::parse(bytes) {
        Ok(g) => g,
        Err(e) if e.kind == GgufErrorKind::OutOfMemory => return Err(Oom::Parse),
        Err(e) => panic!("parse: {e}"),
    };
    let tok = match Tokenizer::from_gguf(&g) {
        Ok(t) => t,
        Err(VocabError::OutOfMemory) => return Err(Oom::Tokenizer),
        Err(e) => panic!("tokenizer: {e}"),
    };
    if tokenizer_only {
        return Ok(());
    }
    let model = match Model::load(&g) {
        Ok(m) => m,
        Err(ModelError::OutOfMemory) => return Err(Oom::Model),
        Err(e) => panic!("model: {e}"),
    };
    let mut sess = match Session::with_options(&model, 64, KvType::F16, 8) {
        Ok(s) => s,
        Err(SessionError::OutOfMemory) => return Err(Oom::Session),
        Err(e) => panic!("session: {e}"),
    };
    match BatchScratch::try_new(&model, 4, 64) {
        Ok(_) => {}
        Err(SessionError::OutOfMemory) => return Err(Oom::Batch),
        Err(e) => panic!("batch: {e}"),
    }
    let sampler = match Sampler::new(SamplerConfig::default(), model.hp.n_vocab as usize) {
        Ok(s) => s,
        Err(SamplerError::OutOfMemory) => return Err(Oom::Sampler),
        Err(e) => panic!("sampler: {e}"),
    };
    let mut gen = match Generation::new(sampler, prompt.to_vec(), 0, 4, &[b"\n\n"]) {
        Ok(g) => g,
        Err(GenerateError::OutOfMemory) => return Err(Oom::Generation),
        Err(e) => panic!("generation: {e}"),
    };
    while let Step::Prompt | Step::Token { .. } = gen.step(&model, &tok, &mut sess, &Serial).unwrap() {}
    Ok(())
}

/// Fails every large allocation of the sequence in turn (once, then from then on); returns the
/// steps that met a failure.
fn each_allocation_fails(bytes: &[u8], tokenizer_only: bool) -> Vec<Oom> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let g = Gguf::parse(bytes).unwrap();
    let prompt = Tokenizer::from_gguf(&g).unwrap().encode(b"Once upon a time", true, true);
    assert!(sequence(bytes, &prompt, tokenizer_only).is_ok());
    let mut seen = Vec::new();
    for sticky in [false, true] {
        for n in 0.. {
            STICKY.store(sticky, Ordering::SeqCst);
            INJECTED.store(false, Ordering::SeqCst);
            ALLOW.store(n, Ordering::SeqCst);
            ARMED.with(|a| a.set(true));
            let r = sequence(bytes, &prompt, tokenizer_only);
            ARMED.with(|a| a.set(false));
            let injected = INJECTED.load(Ordering::SeqCst);
            match r {
                Ok(()) if !injected => break,
                // A failed allocation some step could do without (none are, today) is fine too,
                // as long as the sequence went on correctly.
                Ok(()) => {}
                Err(step) => {
                    assert!(injected, "{step:?} reported running out of memory without a failure");
                    if !seen.contains(&step) {
                        seen.push(step);
                    }
                }
            }
            assert!(n < 100_000, "the sequence never completes");
        }
    }
    seen
}

#[test]
fn out_of_memory_is_a_typed_error_at_every_step() {
    for arch in [Arch::Llama, Arch::Gemma3, Arch::Qwen2] {
        let bytes = TinyModel::new(arch, TINY, 1).bytes().unwrap();
        let seen = each_allocation_fails(&bytes, false);
        let all = [Oom::Parse, Oom::Tokenizer, Oom::Model, Oom::Session, Oom::Batch, Oom::Sampler, Oom::Generation];
        for step in all {
            assert!(seen.contains(&step), "{arch:?}: no failure reached {step:?} ({seen:?})");
        }
    }
}

/// The byte-level BPE tables (merges) of a real vocabulary, as the kernel loads them.
#[test]
fn out_of_memory_in_a_bpe_vocabulary_is_a_typed_error() {
    let Some(dir) = common::asset("LLAMUX_VOCAB_DIR") else { return };
    let bytes = std::fs::read(dir.join("ggml-vocab-qwen2.gguf")).unwrap();
    let seen = each_allocation_fails(&bytes, true);
    assert_eq!(seen, [Oom::Parse, Oom::Tokenizer]);
}
